//! Supplier webhooks: verified per scheme, logged, deduplicated, processed by a job that
//! applies them through the state machine — in any order, once — and the staff API over the log.

use std::time::Duration;

use adapters::store::api_keys::Role;
use adapters::suppliers::signing::{StandardKey, sign_ota};
use bookhub_tests::sim::{Faults, Protocol, SimConfig, SupplierSim};
use bookhub_tests::{TestApp, booking_body, eventually, problem, with_simulator};
use futures::future::join_all;
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(20);
const OLD_SECRET: &str = "whsec_b2xkLXNlY3JldC1iZWluZy1yb3RhdGVkLW91dA==";

fn jsonrest_secret() -> String {
    SimConfig::default().jsonrest.webhook_secret
}

fn ota_secret() -> String {
    SimConfig::default().ota.webhook_secret
}

/// bookhub on the simulator, whose jsonrest supplier is down: only webhooks move bookings.
pub(crate) async fn start() -> (SupplierSim, TestApp) {
    start_with(|_| {}).await
}

/// As [`start`], without background workers: the test runs the jobs with `run_due_jobs`.
async fn start_draining() -> (SupplierSim, TestApp) {
    start_with(bookhub_tests::no_workers).await
}

pub(crate) async fn start_with(configure: impl FnOnce(&mut api::Settings)) -> (SupplierSim, TestApp) {
    let (sim, app) = with_simulator(configure).await;
    sim.set_faults(Protocol::Jsonrest, Faults { outage: true, ..Faults::default() });
    (sim, app)
}

/// The log's row for `event_id` once the due jobs have run: processing must be done with it.
async fn drained(app: &TestApp, staff: &str, event_id: &str) -> Value {
    assert!(app.run_due_jobs().await > 0, "{event_id}: its processing job was due");
    let rows = log(app, staff, "").await;
    let done = |r: &&Value| r["event_id"] == event_id && r["status"] != "queued" && r["status"] != "duplicate";
    rows.iter().find(done).cloned().unwrap_or_else(|| panic!("{event_id} not processed: {rows:?}"))
}

pub(crate) fn event(id: &str, kind: &str, booking: &str, status: &str) -> String {
    json!({"id": id, "type": kind, "occurred_at": "2027-01-10T12:00:00Z",
        "data": {"reference": "JR-000777", "client_reference": booking, "status": status,
                 "rooms": [{"room_type_code": "DBL.ST", "board_code": "BB"}]}})
    .to_string()
}

type Headers = Vec<(&'static str, String)>;

fn standard_headers(secret: &str, id: &str, at: i64, body: &str) -> Headers {
    let signature = StandardKey::parse(secret).unwrap().sign(id, at, body.as_bytes());
    vec![("webhook-id", id.to_owned()), ("webhook-timestamp", at.to_string()), ("webhook-signature", signature)]
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn post(app: &TestApp, supplier: &str, headers: &[(&'static str, String)], body: &str) -> reqwest::Response {
    let mut request = app.client.post(app.url(&format!("/v1/webhooks/suppliers/{supplier}"))).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("the webhook is answered")
}

/// Delivers a correctly signed jsonrest event.
pub(crate) async fn deliver(app: &TestApp, id: &str, body: &str) -> reqwest::Response {
    post(app, "jsonrest", &standard_headers(&jsonrest_secret(), id, now(), body), body).await
}

pub(crate) async fn pending_booking(app: &TestApp, key: &str) -> String {
    let mut body = booking_body();
    body["supplier"] = json!("jsonrest");
    app.booked(key, &body).await["id"].as_str().unwrap().to_owned()
}

async fn log(app: &TestApp, staff: &str, query: &str) -> Vec<Value> {
    app.get_json(staff, &format!("/v1/webhook-events?limit=100&{query}")).await["data"].as_array().unwrap().clone()
}

/// Waits until the log holds a row for `event_id` that processing has finished with.
pub(crate) async fn processed(app: &TestApp, staff: &str, event_id: &str) -> Value {
    eventually(SETTLE, || async {
        let rows = log(app, staff, "").await;
        let done = |r: &&Value| r["event_id"] == event_id && r["status"] != "queued" && r["status"] != "duplicate";
        rows.iter().find(done).cloned().ok_or_else(|| format!("{event_id} not processed: {rows:?}"))
    })
    .await
}

async fn jobs_for(app: &TestApp, queue: &str, booking: &str) -> i64 {
    let prefix = format!("{booking}:%");
    let sql = match app.backend {
        bookhub_tests::Backend::Postgres => {
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND idempotency_key LIKE $2"
        }
        bookhub_tests::Backend::Sqlite => "SELECT count(*) FROM Jobs WHERE job_type = ?1 AND idempotency_key LIKE ?2",
    };
    match app.db.pool() {
        adapters::store::Pool::Postgres(p) => {
            sqlx::query_scalar(sql).bind(queue).bind(&prefix).fetch_one(p).await.unwrap()
        }
        adapters::store::Pool::Sqlite(p) => {
            sqlx::query_scalar(sql).bind(queue).bind(&prefix).fetch_one(p).await.unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_signatures_are_checked() {
    let (_sim, app) = start().await;
    let staff = app.key(Role::Staff).await;
    let body = event("evt_sig", "booking.confirmed", "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b", "CNF");
    let secret = jsonrest_secret();
    let signed = |secret: &str, at: i64| standard_headers(secret, "evt_sig", at, &body);
    let without = |name: &str| signed(&secret, now()).into_iter().filter(|(h, _)| *h != name).collect::<Vec<_>>();

    // The tolerance is 300 s; a minute beyond it, so a slow run cannot bring the future case back in.
    let cases: Vec<(&str, Headers, String, &str)> = vec![
        ("wrong secret", signed(OLD_SECRET, now()), body.clone(), "bad_signature"),
        ("tampered body", signed(&secret, now()), body.replace("CNF", "CXL"), "bad_signature"),
        ("stale timestamp", signed(&secret, now() - 360), body.clone(), "stale_timestamp"),
        ("future timestamp", signed(&secret, now() + 360), body.clone(), "stale_timestamp"),
        ("no webhook-id", without("webhook-id"), body.clone(), "missing_header"),
        ("no webhook-timestamp", without("webhook-timestamp"), body.clone(), "missing_header"),
        ("no webhook-signature", without("webhook-signature"), body.clone(), "missing_header"),
    ];
    for (case, headers, body, verification) in &cases {
        let answer = problem(post(&app, "jsonrest", headers, body).await, 401).await;
        assert_eq!(answer["code"], "invalid_signature", "{case}");
        let rows = log(&app, &staff, "status=rejected").await;
        assert_eq!(rows[0]["verification"], *verification, "{case}: logged as refused");
    }

    let huge = "x".repeat(1024 * 1024 + 1);
    problem(post(&app, "jsonrest", &signed(&secret, now()), &huge).await, 413).await;

    // Several signatures in one header (a supplier mid-rotation): any valid one will do.
    let mut several = signed(&secret, now());
    let other = StandardKey::parse(OLD_SECRET).unwrap().sign("evt_sig", now(), body.as_bytes());
    several[2].1 = format!("{other} {}", several[2].1);
    assert_eq!(post(&app, "jsonrest", &several, &body).await.status(), 200);
    let logged = log(&app, &staff, "").await;
    assert_eq!(logged.iter().filter(|r| r["status"] == "rejected").count(), cases.len());
    assert_eq!(logged.iter().filter(|r| r["verification"] == "verified").count(), 1, "only the valid one is taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ota_signatures_are_checked() {
    let (_sim, app) = start().await;
    let body = r#"<OTA_HotelResNotifRQ xmlns="http://www.opentravel.org/OTA/2003/05" EchoToken="ntf-1" TimeStamp="2027-01-10T12:00:00Z" Version="1.0"><HotelReservations><HotelReservation ResStatus="Reserved"><UniqueID Type="14" ID="bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b"/><ResGlobalInfo><HotelReservationIDs><HotelReservationID ResID_Type="10" ResID_Value="OTA-1"/></HotelReservationIDs></ResGlobalInfo></HotelReservation></HotelReservations></OTA_HotelResNotifRQ>"#;
    let signed = |secret: &str, at: i64, body: &str| {
        vec![("x-ota-timestamp", at.to_string()), ("x-ota-signature", sign_ota(secret, at, body.as_bytes()))]
    };
    let secret = ota_secret();
    for (case, headers, body) in [
        ("wrong secret", signed("not-the-secret", now(), body), body.to_owned()),
        ("tampered body", signed(&secret, now(), body), body.replace("Reserved", "Cancelled")),
        ("stale timestamp", signed(&secret, now() - 400, body), body.to_owned()),
        ("future timestamp", signed(&secret, now() + 400, body), body.to_owned()),
        ("no signature", signed(&secret, now(), body)[..1].to_vec(), body.to_owned()),
        ("no timestamp", signed(&secret, now(), body)[1..].to_vec(), body.to_owned()),
    ] {
        assert_eq!(post(&app, "ota", &headers, &body).await.status(), 401, "{case}");
    }
    let taken = post(&app, "ota", &signed(&secret, now(), body), body).await;
    assert_eq!(taken.status(), 200);
    assert_eq!(taken.headers()["content-type"], "application/xml");
    let ack = taken.text().await.unwrap();
    assert!(ack.contains("<Success/>") && ack.contains(r#"EchoToken="ntf-1""#), "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_works_through_its_grace_period_and_not_after() {
    let sim = SupplierSim::start(SimConfig::default()).await.unwrap();
    let new_secret = jsonrest_secret();
    let body = event("evt_rot", "booking.confirmed", "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b", "CNF");
    let with_secrets = |secrets: Vec<String>| {
        let sim = &sim;
        async move {
            TestApp::spawn_with(bookhub_tests::Backend::from_env(), |s| {
                bookhub_tests::use_simulator(s, sim);
                let Some(api::config::SupplierSettings::Jsonrest(jsonrest)) =
                    s.suppliers.get_mut(&"jsonrest".parse().unwrap())
                else {
                    panic!("use_simulator configures jsonrest")
                };
                jsonrest.protocol.webhook_secrets = secrets.into_iter().map(Into::into).collect();
            })
            .await
        }
    };

    let during = with_secrets(vec![new_secret.clone(), OLD_SECRET.to_owned()]).await;
    for secret in [OLD_SECRET, new_secret.as_str()] {
        let answer = post(&during, "jsonrest", &standard_headers(secret, "evt_rot", now(), &body), &body).await;
        assert_eq!(answer.status(), 200, "both secrets verify during the grace period");
    }

    let after = with_secrets(vec![new_secret.clone()]).await;
    let old = post(&after, "jsonrest", &standard_headers(OLD_SECRET, "evt_rot", now(), &body), &body).await;
    problem(old, 401).await;
    let new = post(&after, "jsonrest", &standard_headers(&new_secret, "evt_rot", now(), &body), &body).await;
    assert_eq!(new.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_storm_is_applied_once_and_fans_out_once() {
    let (_sim, app) = start().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;
    let booking = pending_booking(&app, &key).await;
    let body = event("evt_storm", "booking.confirmed", &booking, "CNF");

    let answers = join_all((0..20).map(|_| deliver(&app, "evt_storm", &body))).await;

    assert!(answers.iter().all(|a| a.status() == 200), "every delivery is acknowledged");
    let row = processed(&app, &staff, "evt_storm").await;
    assert_eq!(row["status"], "applied");
    app.wait_for_status(&key, &booking, "confirmed", SETTLE).await;
    let rows = log(&app, &staff, "").await;
    assert_eq!(rows.iter().filter(|r| r["status"] == "duplicate").count(), 19);
    assert_eq!(rows.iter().filter(|r| r["status"] == "applied").count(), 1);
    for queue in ["bookhub.update_crm", "bookhub.notify_agency", "bookhub.issue_voucher"] {
        assert_eq!(jobs_for(&app, queue, &booking).await, 1, "{queue}: one job for one change");
    }

    // A duplicate was never taken and is not replayed; agencies reach none of the log's
    // endpoints.
    let duplicate = rows.iter().find(|r| r["status"] == "duplicate").unwrap();
    let not_taken = format!("/v1/webhook-events/{}/replay", duplicate["id"].as_str().unwrap());
    assert_eq!(problem(app.post(&staff, &not_taken).send().await.unwrap(), 409).await["code"], "not_replayable");
    let id = row["id"].as_str().unwrap();
    let replay = format!("/v1/webhook-events/{id}/replay");
    problem(app.post(&key, &replay).send().await.unwrap(), 403).await;
    problem(app.get(&key, &format!("/v1/webhook-events/{id}")).send().await.unwrap(), 403).await;
    let mapping = app.client.put(app.url("/v1/mappings/jsonrest/board/X")).bearer_auth(&key);
    problem(mapping.json(&json!({"bookhub_code": "BB"})).send().await.unwrap(), 403).await;
    problem(app.post(&key, "/v1/jobs/01JUNKNOWN/retry").send().await.unwrap(), 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_any_order_end_in_the_right_state() {
    let (_sim, app) = start_draining().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;

    // A confirmation repeated under another id: one change.
    let repeated = pending_booking(&app, &key).await;
    for id in ["evt_r1", "evt_r2"] {
        deliver(&app, id, &event(id, "booking.confirmed", &repeated, "CNF")).await;
        drained(&app, &staff, id).await;
    }
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{repeated}")).await["status"], "confirmed");
    assert_eq!(jobs_for(&app, "bookhub.update_crm", &repeated).await, 1);

    // A cancellation before the confirmation, then a modification after both.
    let cancelled = pending_booking(&app, &key).await;
    for (id, kind, status) in [
        ("evt_c1", "booking.cancelled", "CXL"),
        ("evt_c2", "booking.confirmed", "CNF"),
        ("evt_c3", "booking.modified", "CNF"),
    ] {
        deliver(&app, id, &event(id, kind, &cancelled, status)).await;
        drained(&app, &staff, id).await;
    }
    let booking = app.get_json(&key, &format!("/v1/bookings/{cancelled}")).await;
    assert_eq!(booking["status"], "cancelled");
    assert_eq!(jobs_for(&app, "bookhub.issue_voucher", &cancelled).await, 0, "never confirmed, no voucher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_an_unknown_booking_is_parked_and_can_be_replayed() {
    let (_sim, app) = start_draining().await;
    let staff = app.key(Role::Staff).await;
    let unknown = "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b";

    assert_eq!(deliver(&app, "evt_lost", &event("evt_lost", "booking.confirmed", unknown, "CNF")).await.status(), 200);

    let row = drained(&app, &staff, "evt_lost").await;
    assert_eq!(row["status"], "parked");
    let id = row["id"].as_str().unwrap();
    let detail = app.get_json(&staff, &format!("/v1/webhook-events/{id}")).await;
    assert_eq!(detail["headers"]["webhook-id"], "evt_lost");
    assert!(detail["body"].as_str().unwrap().contains(unknown), "the raw body is kept");
    assert_eq!(log(&app, &staff, "status=parked").await.len(), 1);

    let replayed = app.post(&staff, &format!("/v1/webhook-events/{id}/replay")).send().await.unwrap();
    assert_eq!(replayed.status(), 202);
    assert_eq!(app.run_due_jobs().await, 1, "the replay's job");
    let again = app.get_json(&staff, &format!("/v1/webhook-events/{id}")).await;
    assert!(again["replays"] == 1 && again["status"] == "parked", "the replay has run: {again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_code_waits_for_its_mapping() {
    let (_sim, app) = start().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;
    let booking = pending_booking(&app, &key).await;
    let body = event("evt_map", "booking.confirmed", &booking, "CNF").replace("DBL.ST", "DBL.PANORAMA");

    deliver(&app, "evt_map", &body).await;

    let row = processed(&app, &staff, "evt_map").await;
    assert_eq!(row["status"], "needs_mapping");
    assert_eq!(row["missing_codes"], json!([{"kind": "room_type", "code": "DBL.PANORAMA"}]));
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{booking}")).await["status"], "pending");

    let mapped = app.put_mapping(&staff, "jsonrest/room_type/DBL.PANORAMA", "DBL_SUP").await;
    assert_eq!(mapped["requeued_events"], 1);

    app.wait_for_status(&key, &booking, "confirmed", SETTLE).await;
    let bad = app
        .client
        .put(app.url("/v1/mappings/jsonrest/room_type/X"))
        .bearer_auth(&staff)
        .json(&json!({"bookhub_code": "PENTHOUSE"}));
    problem(bad.send().await.unwrap(), 422).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_listed_and_retried_by_staff() {
    let (_sim, app) = start().await;
    let staff = app.key(Role::Staff).await;
    let (_, agency_key) = app.agency("Viajes Sol").await;
    // A job no handler can read is given up at once.
    let poison =
        adapters::store::queue::EnqueuedJob::new(jobs::ProcessWebhook::QUEUE, b"not json".to_vec(), "poison".into());
    adapters::store::queue::push(app.db.pool(), &[poison]).await.unwrap();

    let dead = eventually(SETTLE, || async {
        let page = app.get_json(&staff, "/v1/jobs?status=dead").await;
        page["data"].as_array().unwrap().first().cloned().ok_or_else(|| "no dead job yet".to_owned())
    })
    .await;
    assert_eq!(dead["queue"], "bookhub.process_webhook");
    assert!(dead["last_result"].as_str().unwrap().contains("does not parse"), "{dead}");

    let retried = app.post(&staff, &format!("/v1/jobs/{}/retry", dead["id"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(retried.status(), 202);
    problem(app.post(&staff, "/v1/jobs/01JUNKNOWN/retry").send().await.unwrap(), 404).await;
    problem(app.get(&agency_key, "/v1/jobs?status=dead").send().await.unwrap(), 403).await;
    problem(app.get(&agency_key, "/v1/webhook-events").send().await.unwrap(), 403).await;
    problem(app.get(&staff, "/v1/jobs?status=pending").send().await.unwrap(), 400).await;
}
