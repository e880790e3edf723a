//! The webhook intake: verified messages logged and queued by a group commit.

use adapters::store::group_commit::IntakeConfig;
use adapters::store::queue::{self, EnqueuedJob};
use adapters::store::webhook_intake::{VerifiedWebhook, WebhookIntake};
use adapters::store::webhooks::{ReceivedWebhook, Recorded};
use adapters::suppliers::signing::StandardKey;
use api::config::SupplierSettings;
use bookhub_tests::{Backend, TestApp, postgres_available_or_skip};
use domain::WebhookEventId;
use domain::supplier::InboundWebhook;
use jobs::ProcessWebhook;
use serde_json::{Value, json};

const SECRET: &str = "whsec_dGVzdC13ZWJob29rLWludGFrZS1zZWNyZXQ=";

/// A bookhub with a `jsonrest` supplier (nothing listens at its base URL: only its webhooks are
/// used) and no job workers, so that jobs are seen as the intake wrote them.
async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.jobs.enabled = false;
        s.suppliers.insert(
            "jsonrest".parse().unwrap(),
            // Never called: only its webhooks are used.
            SupplierSettings::Jsonrest(bookhub_tests::jsonrest_table("http://127.0.0.1:9", "key", "secret", SECRET)),
        );
    })
    .await
}

/// Delivers the jsonrest event `id` as the supplier signs it; the answer's status.
async fn deliver(app: &TestApp, id: &str) -> u16 {
    let body = json!({"id": id, "type": "booking.confirmed", "occurred_at": "2027-01-10T12:00:00Z",
        "data": {"reference": "JR-1", "client_reference": "bk_01JD0000000000000000000000", "status": "CNF"}})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let signature = StandardKey::parse(SECRET).unwrap().sign(id, now, body.as_bytes());
    let response = app
        .client
        .post(app.url("/v1/webhooks/suppliers/jsonrest"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .expect("the request is answered");
    response.status().as_u16()
}

/// Runs `sql` (one count) on the app's database, whichever backend it is.
async fn count(app: &TestApp, sql: &str) -> i64 {
    match app.backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap()
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap()
        }
    }
}

/// On Postgres the intake writes apalis's table itself (one statement per batch); every
/// column but the task's identity and time must match what apalis's own insert writes.
#[tokio::test]
async fn the_webhook_intake_queues_jobs_exactly_as_apalis_does() {
    if !postgres_available_or_skip("the_webhook_intake_queues_jobs_exactly_as_apalis_does") {
        return;
    }
    let app = spawn(Backend::Postgres).await;
    assert_eq!(deliver(&app, "evt_apalis").await, 200);
    let reference = EnqueuedJob::new(ProcessWebhook::QUEUE, b"{}".to_vec(), "by-apalis".into());
    queue::push(app.db.pool(), &[reference]).await.unwrap();

    let pg = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let rows: Vec<(String, Value, Vec<u8>, i32)> = sqlx::query_as(
        "SELECT idempotency_key, to_jsonb(j) - 'id' - 'job' - 'idempotency_key' - 'run_at', job, length(id) \
         FROM apalis.jobs j WHERE job_type = $1 ORDER BY idempotency_key = 'by-apalis'",
    )
    .bind(ProcessWebhook::QUEUE)
    .fetch_all(&pg)
    .await
    .unwrap();

    let [(ours_key, ours, payload, id_len), (theirs_key, theirs, _, their_id_len)] = &rows[..] else {
        panic!("two jobs expected: {rows:?}")
    };
    assert_eq!(theirs_key, "by-apalis");
    assert_eq!(ours, theirs, "the columns apalis reads must match");
    assert_eq!(id_len, their_id_len, "task ids are ULIDs");
    let logged: String =
        sqlx::query_scalar("SELECT id FROM webhook_events WHERE event_id = 'evt_apalis' AND status = 'queued'")
            .fetch_one(&pg)
            .await
            .unwrap();
    let job: ProcessWebhook = serde_json::from_slice(payload).unwrap();
    assert_eq!(job.event.as_str(), logged, "the job processes the logged row");
    assert_eq!(ours_key, &format!("{logged}:0"));
}

/// A supplier retrying hard: the deliveries race into the same and concurrent batches, and the
/// database still takes the message once.
#[tokio::test]
async fn concurrent_deliveries_of_one_message_are_taken_once() {
    let app = spawn(Backend::from_env()).await;

    let answers = futures::future::join_all((0..20).map(|_| deliver(&app, "evt_once"))).await;

    assert_eq!(answers, [200; 20], "every delivery is acknowledged");
    let rows = |status: &str| {
        format!("SELECT count(*) FROM webhook_events WHERE event_id = 'evt_once' AND status = '{status}'")
    };
    assert_eq!(count(&app, &rows("queued")).await, 1);
    assert_eq!(count(&app, &rows("duplicate")).await, 19);
    assert_eq!(
        count(&app, "SELECT count(*) FROM webhook_events WHERE dedupe_key IS NOT NULL").await,
        1,
        "only the first delivery holds the dedupe key"
    );
    let jobs = match app.backend {
        Backend::Postgres => "SELECT count(*) FROM apalis.jobs WHERE job_type = '",
        Backend::Sqlite => "SELECT count(*) FROM Jobs WHERE job_type = '",
    };
    assert_eq!(count(&app, &format!("{jobs}{}'", ProcessWebhook::QUEUE)).await, 1, "one process job");
}

/// Messages already taken in earlier commits are repeats too, mixed with new ones in a batch.
#[tokio::test]
async fn repeats_of_committed_messages_are_duplicates_and_new_ones_are_queued() {
    let app = spawn(Backend::from_env()).await;
    assert_eq!(deliver(&app, "evt_a").await, 200);

    let ids = ["evt_a", "evt_b", "evt_a", "evt_c", "evt_b"];
    let answers = futures::future::join_all(ids.iter().map(|id| deliver(&app, id))).await;

    assert_eq!(answers, [200; 5]);
    let rows = |status: &str| format!("SELECT count(*) FROM webhook_events WHERE status = '{status}'");
    assert_eq!(count(&app, &rows("queued")).await, 3, "evt_a, evt_b and evt_c once each");
    assert_eq!(count(&app, &rows("duplicate")).await, 3);
    let detail = count(&app, "SELECT count(*) FROM webhook_events WHERE detail = 'repeat of message evt_a'").await;
    assert_eq!(detail, 2);
}

/// A message the database refuses (here: its log row's id is taken) fails alone; the messages
/// sharing its batch are still taken.
#[tokio::test]
async fn a_refused_message_fails_alone() {
    let app = spawn(Backend::from_env()).await;
    let intake = WebhookIntake::start(app.db.clone(), IntakeConfig { max_batch: 64, writers: 1 });
    let message = |id: &str, row: WebhookEventId| VerifiedWebhook {
        job: ProcessWebhook::for_event(&row, 0),
        received: ReceivedWebhook {
            id: row,
            supplier: "jsonrest".into(),
            request: InboundWebhook {
                headers: [("webhook-id".to_owned(), id.to_owned())].into(),
                body: b"{}".to_vec(),
            },
            received_at: adapters::store::now(),
        },
        message_id: id.into(),
    };
    let taken = WebhookEventId::generate();
    assert_eq!(intake.submit(message("evt_0", taken.clone())).await.unwrap(), Recorded::Queued);

    let messages = [
        message("evt_1", WebhookEventId::generate()),
        VerifiedWebhook { job: ProcessWebhook::for_event(&WebhookEventId::generate(), 0), ..message("evt_2", taken) },
        message("evt_3", WebhookEventId::generate()),
        message("evt_1", WebhookEventId::generate()),
    ];
    let results = futures::future::join_all(messages.into_iter().map(|m| intake.submit(m))).await;

    let outcomes: Vec<_> = results.iter().map(|r| r.as_ref().ok().cloned()).collect();
    assert_eq!(outcomes, [Some(Recorded::Queued), None, Some(Recorded::Queued), Some(Recorded::Duplicate)]);
    assert_eq!(count(&app, "SELECT count(*) FROM webhook_events WHERE event_id = 'evt_2'").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM webhook_events WHERE status = 'queued'").await, 3);
}
