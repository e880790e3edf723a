//! The schema: applied by whoever starts first, safely when many start at once.

use adapters::store::Database;
use bookhub_tests::{Backend, TestDatabase, postgres_available_or_skip};

async fn migrate_concurrently(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let processes: Vec<Database> = futures::future::join_all((0..4).map(|_| Database::connect(&url, 2)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let results = futures::future::join_all(processes.iter().map(Database::migrate)).await;

    for result in results {
        result.expect("every process starts");
    }
    assert_eq!(processes[0].pending_migrations().await.unwrap(), 0);
    processes[0].migrate().await.expect("migrating again is a no-op");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_on_postgres_all_start() {
    if postgres_available_or_skip("processes_starting_together_on_postgres_all_start") {
        migrate_concurrently(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_sqlite_file_is_migrated_once_and_again_as_a_no_op() {
    let (_database, url) = TestDatabase::create(Backend::Sqlite).await;
    let db = Database::connect(&url, 2).await.unwrap();
    assert!(db.pending_migrations().await.unwrap() > 0);
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(db.pending_migrations().await.unwrap(), 0);
}

#[tokio::test]
async fn readiness_is_503_until_every_migration_is_applied() {
    let (_database, url) = TestDatabase::create(Backend::from_env()).await;
    let db = Database::connect(&url, 2).await.unwrap();
    let settings = bookhub_tests::test_settings(&url);
    let app = api::Application::build_with(settings, db.clone()).await.unwrap();
    let readyz = format!("http://127.0.0.1:{}/readyz", app.port());
    tokio::spawn(app.run_until_stopped());

    let not_ready = bookhub_tests::problem(reqwest::get(&readyz).await.unwrap(), 503).await;
    assert_eq!(not_ready["code"], "unavailable");
    assert_eq!(not_ready["detail"], "the service is not ready; try again shortly", "no internals in a 5xx");

    db.migrate().await.unwrap();
    // Readiness answers are reused for a second (see `routes::health`).
    bookhub_tests::eventually(std::time::Duration::from_secs(5), || async {
        match reqwest::get(&readyz).await.unwrap().status().as_u16() {
            200 => Ok(()),
            other => Err(format!("still {other}")),
        }
    })
    .await;
}
