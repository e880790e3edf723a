//! The submit job written with a booking is an ordinary apalis task.

use adapters::store::queue::{self, EnqueuedJob};
use bookhub_tests::{Backend, TestApp, booking_body, postgres_available_or_skip};
use jobs::SubmitBooking;
use serde_json::Value;

/// On Postgres the intake writes apalis's table itself (one statement per batch); every
/// column but the task's identity and time must match what apalis's own insert writes.
#[tokio::test]
async fn the_intake_queues_jobs_exactly_as_apalis_does() {
    if !postgres_available_or_skip("the_intake_queues_jobs_exactly_as_apalis_does") {
        return;
    }
    // No workers: the rows are compared as written, before anything runs them.
    let app = TestApp::spawn_with(Backend::Postgres, |s| s.jobs.enabled = false).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let booking = app.booked(&key, &booking_body()).await;
    let reference = EnqueuedJob::new(SubmitBooking::QUEUE, b"{}".to_vec(), "by-apalis".into());
    queue::push(app.db.pool(), &[reference]).await.unwrap();

    let pg = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let rows: Vec<(String, Value, Vec<u8>, i32)> = sqlx::query_as(
        "SELECT idempotency_key, to_jsonb(j) - 'id' - 'job' - 'idempotency_key' - 'run_at', job, length(id) \
         FROM apalis.jobs j WHERE job_type = $1 ORDER BY idempotency_key",
    )
    .bind(SubmitBooking::QUEUE)
    .fetch_all(&pg)
    .await
    .unwrap();

    let [(ours_key, ours, payload, id_len), (theirs_key, theirs, _, their_id_len)] = &rows[..] else {
        panic!("two jobs expected: {rows:?}")
    };
    assert_eq!(ours_key, booking["id"].as_str().unwrap());
    assert_eq!(theirs_key, "by-apalis");
    assert_eq!(ours, theirs, "the columns apalis reads must match");
    assert_eq!(id_len, their_id_len, "task ids are ULIDs");
    let job: SubmitBooking = serde_json::from_slice(payload).unwrap();
    assert_eq!(job.booking_id.as_str(), booking["id"].as_str().unwrap());
}

/// A dead job (given up) is listed, and a retry gives it a fresh set of attempts, due now;
/// a job that is not dead cannot be retried.
#[tokio::test]
async fn a_dead_job_is_listed_and_retried_with_fresh_attempts() {
    let app = TestApp::spawn_with(Backend::from_env(), |s| s.jobs.enabled = false).await;
    let job = EnqueuedJob::new(SubmitBooking::QUEUE, b"{}".to_vec(), "dead".into());
    queue::push(app.db.pool(), &[job]).await.unwrap();
    let (kill, read) = match app.backend {
        Backend::Postgres => (
            "UPDATE apalis.jobs SET status = 'Killed', attempts = 3 WHERE idempotency_key = 'dead'",
            "SELECT status, attempts::bigint FROM apalis.jobs WHERE idempotency_key = 'dead'",
        ),
        Backend::Sqlite => (
            "UPDATE Jobs SET status = 'Killed', attempts = 3 WHERE idempotency_key = 'dead'",
            "SELECT status, attempts FROM Jobs WHERE idempotency_key = 'dead'",
        ),
    };
    status_of(app.db.pool(), kill).await;

    let dead = queue::dead(app.db.pool(), None, 10).await.unwrap();
    let [listed] = &dead[..] else { panic!("one dead job expected: {dead:?}") };
    assert_eq!((listed.status.as_str(), listed.attempts), ("Killed", 3));

    assert!(queue::retry_dead(app.db.pool(), &listed.id).await.unwrap());
    assert_eq!(status_of(app.db.pool(), read).await, Some(("Pending".to_owned(), 0)));
    assert!(queue::dead(app.db.pool(), None, 10).await.unwrap().is_empty());
    assert!(!queue::retry_dead(app.db.pool(), &listed.id).await.unwrap(), "a pending job is not retried");
}

/// Runs `sql`, which may return a job's (status, attempts).
async fn status_of(pool: &adapters::store::Pool, sql: &'static str) -> Option<(String, i64)> {
    match pool {
        adapters::store::Pool::Postgres(p) => sqlx::query_as(sql).fetch_optional(p).await,
        adapters::store::Pool::Sqlite(p) => sqlx::query_as(sql).fetch_optional(p).await,
    }
    .unwrap()
}
