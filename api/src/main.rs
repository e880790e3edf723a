//! The `bookhub` binary: `serve` (the default way to run it), `migrate`, `agency create`,
//! `key create|list|revoke|rotate`, `mappings import`, `reconcile` and `openapi`.

use std::process::ExitCode;

use adapters::store::api_keys::{self, ApiKeyRecord, NewKey, Role};
use adapters::store::{Database, agencies};
use anyhow::{Context, bail};
use bookhub_api::auth::{issue, issue_key, rotate};
use bookhub_api::cli_reconcile::{self, Display, ReconcileArgs};
use bookhub_api::error::ApiError;
use bookhub_api::routes::mapping_files::import_csv;
use bookhub_api::{Application, Settings};
use clap::{Parser, Subcommand};
use domain::validation::EmailAddress;
use domain::{AgencyId, ApiKeyId, SupplierCode};
use mappings::{Actor, CodeKind, Mappings, Table, Via};
use serde_json::json;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

#[derive(Debug, Parser)]
#[command(name = "bookhub", version, about = "B2B booking-integration hub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations and serve the API (SQLite by default; see bookhub.example.toml).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage agencies.
    Agency {
        #[command(subcommand)]
        command: AgencyCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage the code-mapping tables.
    Mappings {
        #[command(subcommand)]
        command: MappingsCommand,
    },
    /// Reconcile one supplier's bookings modified in a window, in this process: progress on
    /// stderr (a bar on a terminal, a line per step otherwise), then the run's id and its counts
    /// per reason on stdout.
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Subcommand)]
enum MappingsCommand {
    /// Replace a table with a CSV file, all or nothing (as `PUT /v1/mappings/{S}/{K}.csv`);
    /// prints what it added, changed and removed, or each bad row.
    Import {
        #[arg(long)]
        supplier: SupplierCode,
        #[arg(long, value_parser = |s: &str| s.parse::<CodeKind>())]
        kind: CodeKind,
        /// Report what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AgencyCommand {
    /// Create an agency and its first API key; prints {"agency_id", "api_key"}.
    Create {
        #[arg(long)]
        name: String,
        /// Where its booking emails go. (Its webhook URL it sets itself: `PUT /v1/agency/webhook`
        /// checks the URL and returns the signing secret.)
        #[arg(long, value_parser = parse_email)]
        email: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key; prints {"api_key", "id"}. The key is shown only this once.
    Create {
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        role: Role,
        /// The agency, for `--role agency`.
        #[arg(long)]
        agency: Option<AgencyId>,
        /// What the key is for.
        #[arg(long)]
        label: Option<String>,
        /// A lifetime such as `90d`; none means the key does not expire.
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<chrono::Duration>,
    },
    /// List every key, one JSON object a line (never the key or its hash).
    List,
    /// Revoke a key: every process refuses it within `rate_limit.key_cache_ttl` (≤ 5 s).
    Revoke { id: ApiKeyId },
    /// Issue a successor of a key (same role, agency and label); prints {"api_key", "id"} once.
    /// The old key keeps working for `--grace`, then expires.
    Rotate {
        id: ApiKeyId,
        #[arg(long, value_parser = parse_lifetime, default_value = "7d")]
        grace: chrono::Duration,
    },
}

fn parse_lifetime(s: &str) -> Result<chrono::Duration, String> {
    let max = bookhub_api::auth::MAX_KEY_LIFETIME.to_std().expect("a positive lifetime");
    bookhub_api::routes::keys::parse_duration(s, max)
}

/// A key as `key list` prints it.
fn key_json(k: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id, "role": k.role.as_str(), "agency": k.agency_id, "label": k.label,
        "created_at": k.created_at, "last_used_at": k.last_used_at,
        "expires_at": k.expires_at, "revoked_at": k.revoked_at,
    })
}

fn parse_email(s: &str) -> Result<String, String> {
    EmailAddress::parse(s).map(|e| e.as_str().to_owned()).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        print!("{}", bookhub_api::openapi::document());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("bookhub: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log));
    // `reconcile` may draw a progress bar on stderr: log lines go above it.
    let display = matches!(cli.command, Command::Reconcile(_)).then(Display::for_stderr);
    let writer = display.as_ref().map_or_else(|| BoxMakeWriter::new(std::io::stderr), Display::log_writer);
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).init();
    for deprecation in &settings.deprecations {
        tracing::warn!("setting {deprecation}; the old key is read for one more release");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(cli.command, settings, display)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bookhub: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command`; `display` is where `reconcile` shows its progress.
async fn run(command: Command, settings: Settings, display: Option<Display>) -> anyhow::Result<()> {
    if let Command::Serve = command {
        let app = Application::build(settings).await?;
        return app.run_until_stopped().await.context("serving");
    }
    if let Command::Reconcile(args) = command {
        let display = display.unwrap_or_else(Display::for_stderr);
        return cli_reconcile::run(&settings, args, &display).await;
    }
    let db = Database::connect(settings.database_url.as_str(), 2).await.context("connecting to the database")?;
    db.migrate().await.context("applying migrations")?;
    match command {
        Command::Serve | Command::Openapi | Command::Reconcile(_) => unreachable!("handled above"),
        Command::Migrate => eprintln!("bookhub: migrations applied"),
        Command::Agency { command: AgencyCommand::Create { name, email } } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let agency = agencies::create(&db, name.trim(), email.as_deref()).await?;
            let api_key = issue_key(&db, Role::Agency, Some(&agency.id)).await?;
            println!("{}", json!({"agency_id": agency.id, "api_key": api_key}));
        }
        Command::Key { command } => key_command(&db, command).await?,
        Command::Mappings { command } => mappings_command(&settings, &db, command).await?,
    }
    db.close().await;
    Ok(())
}

async fn key_command(db: &Database, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { role, agency, label, expires_in } => {
            match (role, &agency) {
                (Role::Agency, None) => bail!("--role agency needs --agency ag_…"),
                (Role::Agency, Some(id)) if agencies::find(db, id).await?.is_none() => {
                    bail!("no agency {id}")
                }
                (Role::Staff | Role::Finance | Role::Admin, Some(_)) => {
                    bail!("--agency goes only with --role agency")
                }
                _ => {}
            }
            if expires_in.is_some_and(|l| l <= chrono::Duration::zero()) {
                bail!("--expires-in must be more than 0");
            }
            let expires_at = expires_in.map(|lifetime| adapters::store::now() + lifetime);
            let new = NewKey { role, agency_id: agency.as_ref(), label: label.as_deref(), expires_at };
            let (api_key, record) = issue(db, &new).await?;
            println!("{}", json!({"api_key": api_key, "id": record.id}));
        }
        KeyCommand::List => {
            let mut after = None;
            loop {
                let mut page = api_keys::list(db, after.as_ref(), 100).await?;
                let more = adapters::store::next_page(&mut page, 100, |k| k.id.clone());
                for key in &page {
                    println!("{}", key_json(key));
                }
                match more {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
        KeyCommand::Revoke { id } => {
            let key =
                api_keys::revoke(db, &id, adapters::store::now()).await?.with_context(|| format!("no key {id}"))?;
            println!("{}", key_json(&key));
        }
        KeyCommand::Rotate { id, grace } => {
            let old = api_keys::find(db, &id).await?.with_context(|| format!("no key {id}"))?;
            let (api_key, record) = rotate(db, &old, grace).await.with_context(|| format!("rotating key {id}"))?;
            println!("{}", json!({"api_key": api_key, "id": record.id}));
        }
    }
    Ok(())
}

async fn mappings_command(settings: &Settings, db: &Database, command: MappingsCommand) -> anyhow::Result<()> {
    let MappingsCommand::Import { supplier, kind, dry_run, file } = command;
    if !settings.suppliers.contains_key(&supplier) {
        bail!("no supplier {supplier} is configured");
    }
    let csv = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let mappings = Mappings::new(db.orm().clone());
    let table = Table { supplier, kind };
    let actor = Actor { key_id: None, label: Some("cli".into()), via: Via::CliCsv };
    let report = import_csv(&mappings, db, &table, &csv, &actor, dry_run).await;
    match report {
        Ok(report) => println!("{}", serde_json::to_string_pretty(&report)?),
        Err(ApiError::CsvRejected(rejected)) => {
            for e in &rejected.errors {
                eprintln!(
                    "row {}{}: {} ({})",
                    e.row,
                    e.column.as_ref().map(|c| format!(", {c}")).unwrap_or_default(),
                    e.reason,
                    e.code
                );
            }
            bail!("{rejected}; nothing was changed");
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    }
    Ok(())
}
