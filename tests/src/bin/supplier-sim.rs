//! The supplier simulator as a process, for demos, manual runs and benchmarks.
//!
//! `cargo run -p bookhub-tests --bin supplier-sim -- --listen 127.0.0.1:9001 --jsonrest-hub-url URL
//!  --ota-hub-url URL --confirm later --confirm-delay-ms 2000`
//!
//! Faults and settings change at run time through the control API printed at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use bookhub_tests::sim::{Confirmation, Protocol, SimConfig, SupplierSim};
use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Confirm {
    /// Confirmed in the booking answer.
    Instant,
    /// Pending, confirmed by a signed webhook after `--confirm-delay-ms`.
    Later,
}

#[derive(Parser)]
#[command(about = "Simulates the jsonrest and ota hotel suppliers over HTTP")]
struct Args {
    #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// Where jsonrest confirmations are posted (bookhub's supplier webhook URL).
    #[arg(long, env = "SIM_JSONREST_HUB_URL")]
    jsonrest_hub_url: Option<String>,
    /// Where ota notifications are posted.
    #[arg(long, env = "SIM_OTA_HUB_URL")]
    ota_hub_url: Option<String>,
    #[arg(long, env = "SIM_CONFIRM", value_enum, default_value = "instant")]
    confirm: Confirm,
    #[arg(long, env = "SIM_CONFIRM_DELAY_MS", default_value_t = 2000)]
    confirm_delay_ms: u64,
    #[arg(long, env = "SIM_JSONREST_API_KEY", hide_env_values = true)]
    jsonrest_api_key: Option<String>,
    #[arg(long, env = "SIM_JSONREST_API_SECRET", hide_env_values = true)]
    jsonrest_api_secret: Option<String>,
    /// `whsec_<base64>`.
    #[arg(long, env = "SIM_JSONREST_WEBHOOK_SECRET", hide_env_values = true)]
    jsonrest_webhook_secret: Option<String>,
    #[arg(long, env = "SIM_OTA_USERNAME", hide_env_values = true)]
    ota_username: Option<String>,
    #[arg(long, env = "SIM_OTA_PASSWORD", hide_env_values = true)]
    ota_password: Option<String>,
    #[arg(long, env = "SIM_OTA_WEBHOOK_SECRET", hide_env_values = true)]
    ota_webhook_secret: Option<String>,
}

impl Args {
    /// The defaults of [`SimConfig`], overridden by whatever was given.
    fn config(self) -> SimConfig {
        let mut config = SimConfig { listen: self.listen, ..SimConfig::default() };
        let set = |target: &mut String, value: Option<String>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(&mut config.jsonrest.api_key, self.jsonrest_api_key);
        set(&mut config.jsonrest.api_secret, self.jsonrest_api_secret);
        set(&mut config.jsonrest.webhook_secret, self.jsonrest_webhook_secret);
        set(&mut config.ota.username, self.ota_username);
        set(&mut config.ota.password, self.ota_password);
        set(&mut config.ota.webhook_secret, self.ota_webhook_secret);
        config.jsonrest.hub_webhook_url = self.jsonrest_hub_url;
        config.ota.hub_webhook_url = self.ota_hub_url;
        config
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let args = Args::parse();
    let confirmation = match args.confirm {
        Confirm::Instant => Confirmation::Instant,
        Confirm::Later => Confirmation::Later { delay: Duration::from_millis(args.confirm_delay_ms) },
    };
    let sim = SupplierSim::start(args.config()).await?;
    for protocol in [Protocol::Jsonrest, Protocol::Ota] {
        sim.set_confirmation(protocol, confirmation);
    }
    let control = format!("{}/_sim", sim.address());
    println!("jsonrest base URL: {}", sim.jsonrest_url());
    println!("ota base URL:      {}", sim.ota_url());
    println!("control API:       GET {control}/stats, POST {control}/reset,");
    println!("                   PUT {control}/{{jsonrest|ota}}/faults | /confirmation | /hub,");
    println!("                   GET {control}/{{jsonrest|ota}}/bookings/{{client_reference}}");
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping");
    sim.stop().await;
    Ok(())
}
