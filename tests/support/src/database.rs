//! A database made for one test and removed after it, on the suite's backend; and the rule for
//! tests that need Postgres whatever the backend (skipped without it, except in CI).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

pub const POSTGRES_URL_VAR: &str = "BOOKHUB_TEST_POSTGRES_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Postgres when `BOOKHUB_TEST_POSTGRES_URL` is set (unless `BOOKHUB_TEST_BACKEND=sqlite`),
    /// else SQLite.
    pub fn from_env() -> Backend {
        let forced_sqlite = std::env::var("BOOKHUB_TEST_BACKEND").is_ok_and(|b| b == "sqlite");
        if !forced_sqlite && postgres_url().is_some() { Backend::Postgres } else { Backend::Sqlite }
    }
}

/// The Postgres server tests may create databases on, when one is configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR).ok().filter(|u| !u.is_empty())
}

/// For tests that need Postgres whatever the suite's backend: `true` when it is configured.
/// Without it the test is skipped with a printed reason — except in CI, where it fails.
pub fn postgres_available_or_skip(test: &str) -> bool {
    if postgres_url().is_some() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test}: CI must set {POSTGRES_URL_VAR}");
    eprintln!("skipping {test}: set {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres to run it");
    false
}

/// A database made for one test and removed when dropped (a failing test included).
#[derive(Debug)]
pub enum TestDatabase {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin: Box<PgConnectOptions>, name: String },
}

impl TestDatabase {
    /// An empty database (no migrations applied) and its URL.
    pub async fn create(backend: Backend) -> (TestDatabase, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("bookhub.db").display());
                (TestDatabase::Sqlite { _dir: dir }, url)
            }
            Backend::Postgres => {
                let url = postgres_url().unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not set"));
                Self::create_postgres(&url).await
            }
        }
    }

    /// A new, empty database on the Postgres server at `server_url`, and its URL.
    pub async fn create_postgres(server_url: &str) -> (TestDatabase, String) {
        let admin = PgConnectOptions::from_str(server_url).expect("a valid Postgres URL");
        let name = format!("bookhub_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin.connect().await.unwrap_or_else(|e| panic!("Postgres at {server_url} is unreachable: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        let db_url = admin.clone().database(&name).to_url_lossy().to_string();
        (TestDatabase::Postgres { admin: Box::new(admin), name }, db_url)
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestDatabase::Sqlite { .. } => Backend::Sqlite,
            TestDatabase::Postgres { .. } => Backend::Postgres,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres { admin, name } = self else { return };
        let (admin, name) = ((**admin).clone(), name.clone());
        // Drop runs outside async: a small runtime on a thread of its own removes the database.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = admin.connect().await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await {
                        eprintln!("could not drop the test database {name}: {e}");
                    }
                }
            });
        })
        .join();
    }
}
