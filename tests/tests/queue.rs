//! The submit job written with a booking is an ordinary apalis task.

use adapters::store::queue::{self, EnqueuedJob};
use jobs::SubmitBooking;
use serde_json::Value;
use tests::{Backend, TestApp, booking_body, postgres_available_or_skip};

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
    let reference =
        EnqueuedJob { queue: SubmitBooking::QUEUE, payload: b"{}".to_vec(), idempotency_key: "by-apalis".into() };
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
