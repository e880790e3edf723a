//! The webhook path under attack and under operator mistakes: refused deliveries cost bounded
//! storage and are limited, the log keeps only allowlisted headers, no taken confirmation is
//! lost to a misconfigured worker, finished events can be replayed harmlessly, and a mapping
//! change requeues its waiting messages in the background.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use adapters::store::api_keys::Role;
use adapters::store::webhooks::{LOGGED_HEADER_BYTES, LOGGED_HEADERS};
use adapters::suppliers::registry::Suppliers;
use adapters::suppliers::signing::StandardKey;
use bookhub_tests::sim::{Faults, Protocol, SimConfig, SupplierSim};
use bookhub_tests::{Backend, TestApp, booking_body, problem, with_simulator};
use jobs::supplier::SupplierJobs;
use serde_json::{Value, json};

/// bookhub on the simulator without background workers (jobs run with `run_due_jobs`); the
/// simulator's jsonrest is down, so only webhooks move bookings.
async fn start(configure: impl FnOnce(&mut api::Settings)) -> (SupplierSim, TestApp) {
    let (sim, app) = with_simulator(|s| {
        bookhub_tests::no_workers(s);
        configure(s);
    })
    .await;
    sim.set_faults(Protocol::Jsonrest, Faults { outage: true, ..Faults::default() });
    (sim, app)
}

fn signed(id: &str, body: &str) -> Vec<(String, String)> {
    let at = chrono::Utc::now().timestamp();
    let secret = SimConfig::default().jsonrest.webhook_secret;
    let signature = StandardKey::parse(&secret).unwrap().sign(id, at, body.as_bytes());
    vec![
        ("webhook-id".into(), id.to_owned()),
        ("webhook-timestamp".into(), at.to_string()),
        ("webhook-signature".into(), signature),
        ("content-type".into(), "application/json".into()),
    ]
}

fn event(id: &str, booking: &str, room: &str) -> String {
    json!({"id": id, "type": "booking.confirmed", "occurred_at": "2027-01-10T12:00:00Z",
        "data": {"reference": "JR-000777", "client_reference": booking, "status": "CNF",
                 "rooms": [{"room_type_code": room, "board_code": "BB"}]}})
    .to_string()
}

/// A client whose requests leave from `address` (any of 127.0.0.0/8 reaches the server).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(address.parse::<IpAddr>().unwrap()).build().unwrap()
}

async fn post(
    client: &reqwest::Client,
    app: &TestApp,
    supplier: &str,
    headers: &[(String, String)],
    body: &str,
) -> reqwest::Response {
    let mut request = client.post(app.url(&format!("/v1/webhooks/suppliers/{supplier}"))).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.expect("the webhook is answered")
}

async fn deliver(app: &TestApp, id: &str, body: &str) -> reqwest::Response {
    post(&app.client, app, "jsonrest", &signed(id, body), body).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    match app.db.pool() {
        adapters::store::Pool::Postgres(p) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(p).await.unwrap()
        }
        adapters::store::Pool::Sqlite(p) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(p).await.unwrap()
        }
    }
}

async fn pending_booking(app: &TestApp, key: &str) -> String {
    let mut body = booking_body();
    body["supplier"] = json!("jsonrest");
    let id = app.booked(key, &body).await["id"].as_str().unwrap().to_owned();
    // Its submit job is dropped: only webhooks move this booking, and the drains run only the
    // webhooks' jobs (a failed submit would be due again a second later, whenever that is).
    let sql = match app.backend {
        Backend::Postgres => "DELETE FROM apalis.jobs WHERE job_type = 'bookhub.submit_booking'",
        Backend::Sqlite => "DELETE FROM Jobs WHERE job_type = 'bookhub.submit_booking'",
    };
    match app.db.pool() {
        adapters::store::Pool::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop).unwrap(),
        adapters::store::Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop).unwrap(),
    }
    id
}

async fn row_of(app: &TestApp, staff: &str, event_id: &str) -> Value {
    let rows = app.get_json(staff, "/v1/webhook-events?limit=100").await["data"].as_array().unwrap().clone();
    let row = rows.into_iter().find(|r| r["event_id"] == event_id).unwrap_or_else(|| panic!("{event_id} is logged"));
    app.get_json(staff, &format!("/v1/webhook-events/{}", row["id"].as_str().unwrap())).await
}

/// Jobs of `queue`, whatever their state.
async fn jobs_in(app: &TestApp, queue: &str) -> i64 {
    let sql = match app.backend {
        Backend::Postgres => format!("SELECT count(*) FROM apalis.jobs WHERE job_type = '{queue}'"),
        Backend::Sqlite => format!("SELECT count(*) FROM Jobs WHERE job_type = '{queue}'"),
    };
    count(app, &sql).await
}

fn assert_limited(answer: &reqwest::Response, case: &str) {
    assert_eq!(answer.status(), 429, "{case}");
    let retry_after: u64 = answer.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{case}: Retry-After {retry_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_for_unknown_suppliers_stores_nothing_and_is_limited() {
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        s.webhooks.refused_per_minute = 1;
        s.webhooks.refused_burst = 5;
    })
    .await;
    let big = "x".repeat(8 * 1024);

    for i in 0..12 {
        let mut request = app.client.post(app.url(&format!("/v1/webhooks/suppliers/x{i}"))).body("{}");
        for name in ["x-padding-a", "x-padding-b", "x-padding-c"] {
            request = request.header(name, &big);
        }
        let answer = request.send().await.unwrap();
        if i < 5 {
            assert_eq!(problem(answer, 404).await["code"], "not_found", "request {i}");
        } else {
            assert_limited(&answer, &format!("request {i}"));
            assert_eq!(problem(answer, 429).await["code"], "rate_limited");
        }
    }

    assert_eq!(count(&app, "SELECT count(*) FROM webhook_events").await, 0, "nothing is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_limited_per_address_and_verified_deliveries_never() {
    let (_sim, app) = start(|s| {
        s.webhooks.refused_per_minute = 1;
        s.webhooks.refused_burst = 3;
    })
    .await;
    let body = event("evt_bad", "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b", "DBL.ST");
    let mut forged = signed("evt_bad", &body);
    forged[2].1 = "v1,bm90LXRoZS1zaWduYXR1cmU=".into();
    let (first, second) = (client_from("127.0.0.1"), client_from("127.0.0.2"));

    for i in 0..3 {
        assert_eq!(post(&first, &app, "jsonrest", &forged, &body).await.status(), 401, "refusal {i}");
    }
    assert_limited(&post(&first, &app, "jsonrest", &forged, &body).await, "past the address's burst");
    assert_limited(&post(&first, &app, "ota", &forged, &body).await, "the address's limit covers every supplier");
    assert_eq!(post(&second, &app, "jsonrest", &forged, &body).await.status(), 401, "another address has its own");

    let rejected = count(&app, "SELECT count(*) FROM webhook_events WHERE status = 'rejected'").await;
    assert_eq!(rejected, 4, "only refusals within the limit are logged");
    let verified = post(&first, &app, "jsonrest", &signed("evt_bad", &body), &body).await;
    assert_eq!(verified.status(), 200, "a verified delivery from a limited address is taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_limited_per_supplier_across_addresses() {
    let (_sim, app) = start(|s| {
        s.webhooks.refused_per_supplier_per_minute = 1;
        s.webhooks.refused_per_supplier_burst = 3;
    })
    .await;
    let body = event("evt_bad", "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b", "DBL.ST");
    let forged: Vec<_> = signed("evt_bad", &body).into_iter().filter(|(name, _)| name != "webhook-signature").collect();
    let clients: Vec<_> = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"].map(client_from).into();

    for client in &clients[..3] {
        assert_eq!(post(client, &app, "jsonrest", &forged, &body).await.status(), 401);
    }
    assert_limited(&post(&clients[3], &app, "jsonrest", &forged, &body).await, "past the supplier's burst");
    assert_eq!(post(&clients[3], &app, "ota", &forged, &body).await.status(), 401, "another supplier has its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_delivery_logs_only_allowlisted_headers_within_the_cap() {
    let (_sim, app) = start(|_| {}).await;
    let staff = app.key(Role::Staff).await;
    let body = event("evt_hdr", "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b", "DBL.ST");
    let mut headers = signed("evt_hdr", &body);
    for name in ["x-api_key", "x-access-key", "x-auth", "true-client-ip", "cf-connecting-ip", "cookie", "x-custom"] {
        headers.push((name.into(), "must-not-be-logged".into()));
    }
    headers.push(("user-agent".into(), "u".repeat(LOGGED_HEADER_BYTES)));

    assert_eq!(post(&app.client, &app, "jsonrest", &headers, &body).await.status(), 200);

    let logged = row_of(&app, &staff, "evt_hdr").await["headers"].as_object().unwrap().clone();
    for name in logged.keys() {
        assert!(LOGGED_HEADERS.contains(&name.as_str()), "{name} is logged: {logged:?}");
    }
    let size: usize = logged.iter().map(|(name, value)| name.len() + value.as_str().unwrap().len()).sum();
    assert!(size <= LOGGED_HEADER_BYTES, "{size} bytes of headers");
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"] {
        assert!(logged.contains_key(name), "{name} is kept: {logged:?}");
    }
    assert!(!logged.contains_key("user-agent"), "a header past the cap is dropped whole");
    assert!(!serde_json::to_string(&logged).unwrap().contains("must-not-be-logged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_a_worker_cannot_process_for_want_of_its_supplier_is_parked_then_applied_on_replay() {
    let (_sim, app) = start(|_| {}).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;
    let booking = pending_booking(&app, &key).await;
    assert_eq!(deliver(&app, "evt_lost", &event("evt_lost", &booking, "DBL.ST")).await.status(), 200);

    // A worker process configured without jsonrest (a rollback, a config drift) takes the job.
    let hub_url = Arc::new(OnceLock::new());
    hub_url.set(app.address.clone()).unwrap();
    let unconfigured = SupplierJobs {
        suppliers: Suppliers::build(&BTreeMap::new(), chrono::Duration::minutes(5), hub_url).unwrap(),
        ..app.jobs().clone()
    };
    assert_eq!(jobs::drain::run_due_jobs(&unconfigured).await.unwrap(), 1);

    let row = row_of(&app, &staff, "evt_lost").await;
    assert_eq!(row["status"], "parked", "{row}");
    assert!(row["detail"].as_str().unwrap().contains("not configured"), "{row}");
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{booking}")).await["status"], "pending");

    // Replayed where jsonrest is configured, it applies.
    let replayed = app.post(&staff, &format!("/v1/webhook-events/{}/replay", row["id"].as_str().unwrap())).send().await;
    assert_eq!(replayed.unwrap().status(), 202);
    assert!(app.run_due_jobs().await >= 1);
    let row = row_of(&app, &staff, "evt_lost").await;
    assert_eq!(row["status"], "applied", "{row}");
    assert_eq!(row["previous_outcomes"][0]["status"], "parked");
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{booking}")).await["status"], "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_an_applied_event_is_accepted_and_changes_nothing() {
    let (_sim, app) = start(|_| {}).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;
    let booking = pending_booking(&app, &key).await;
    deliver(&app, "evt_done", &event("evt_done", &booking, "DBL.ST")).await;
    app.run_due_jobs().await;
    let applied = row_of(&app, &staff, "evt_done").await;
    assert_eq!(applied["status"], "applied");
    let before = app.get_json(&key, &format!("/v1/bookings/{booking}")).await;
    assert_eq!(before["status"], "confirmed");
    let fanout = ["bookhub.update_crm", "bookhub.notify_agency", "bookhub.issue_voucher"];
    let mut jobs_before = Vec::new();
    for queue in fanout {
        jobs_before.push(jobs_in(&app, queue).await);
    }

    let id = applied["id"].as_str().unwrap();
    let replayed = app.post(&staff, &format!("/v1/webhook-events/{id}/replay")).send().await.unwrap();
    assert_eq!(replayed.status(), 202);
    let queued: Value = replayed.json().await.unwrap();
    assert_eq!((queued["status"].clone(), queued["replays"].clone()), (json!("queued"), json!(1)));
    assert_eq!(app.run_due_jobs().await, 1, "the replay's job");

    let after = row_of(&app, &staff, "evt_done").await;
    assert_eq!(after["status"], "applied");
    assert_eq!(after["detail"], "booking stays confirmed");
    assert_eq!(
        after["previous_outcomes"],
        json!([{"status": "applied", "detail": applied["detail"],
        "booking_id": booking, "processed_at": applied["processed_at"]}])
    );
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{booking}")).await, before, "the booking is untouched");
    for (queue, count) in fanout.iter().zip(jobs_before) {
        assert_eq!(jobs_in(&app, queue).await, count, "{queue}: no new fan-out");
    }

    // Two replays at once: each accepted one queued exactly one job; a lost race is a 409.
    let answers =
        futures::future::join_all((0..2).map(|_| app.post(&staff, &format!("/v1/webhook-events/{id}/replay")).send()))
            .await;
    let mut accepted = 0;
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            202 => accepted += 1,
            // Lost the race for the update, or came after the winner queued it.
            _ => {
                let code = problem(answer, 409).await["code"].clone();
                assert!(code == "concurrent_update" || code == "not_replayable", "{code}");
            }
        }
    }
    assert_eq!(app.run_due_jobs().await, accepted);
    // A replay of a queued event would only stack a second job: refused.
    assert_eq!(accepted, 1, "one of two concurrent replays is queued");
    assert_eq!(row_of(&app, &staff, "evt_done").await["replays"], 1 + accepted as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_put_requeues_its_waiting_messages_through_a_background_job() {
    let (_sim, app) = start(|_| {}).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;
    let booking = pending_booking(&app, &key).await;
    // More than one batch of the requeue job.
    let waiting = jobs::requeue::REQUEUE_BATCH as usize + 1;
    let ids: Vec<String> = (0..waiting).map(|i| format!("evt_map_{i}")).collect();
    let answers = futures::future::join_all(ids.iter().map(|id| {
        let (app, body) = (&app, event(id, &booking, "DBL.PANORAMA"));
        async move { deliver(app, id, &body).await }
    }))
    .await;
    assert!(answers.iter().all(|a| a.status() == 200));
    app.run_due_jobs().await;
    let needing = "SELECT count(*) FROM webhook_events WHERE status = 'needs_mapping'";
    assert_eq!(count(&app, needing).await, waiting as i64);

    let mapped = app.put_mapping(&staff, "jsonrest/room_type/DBL.PANORAMA", "DBL_SUP").await;
    assert_eq!(mapped["requeued_events"], waiting);
    assert_eq!(count(&app, needing).await, waiting as i64, "the answer did not wait for the requeue");
    assert_eq!(jobs_in(&app, jobs::RequeueWaiting::QUEUE).await, 1);

    app.run_due_jobs().await;
    assert_eq!(count(&app, needing).await, 0);
    let applied = count(&app, "SELECT count(*) FROM webhook_events WHERE status = 'applied'").await;
    assert_eq!(applied, waiting as i64, "every waiting message ends applied");
    assert_eq!(jobs_in(&app, jobs::RequeueWaiting::QUEUE).await, 2, "two batches");
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{booking}")).await["status"], "confirmed");
}
