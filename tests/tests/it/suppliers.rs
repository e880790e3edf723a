//! Bookings reach suppliers: through the API, the submit job, the adapters and the supplier
//! simulator (a real HTTP server on loopback), on the suite's database. Each test starts its
//! own simulator and bookhub.

use std::time::{Duration, Instant};

use adapters::store::api_keys::Role;
use api::config::SupplierSettings;
use bookhub_tests::sim::{Confirmation, Faults, Protocol, SimConfig, SupplierSim};
use bookhub_tests::{Backend, TestApp, booking_body, eventually, fast_jobs, with_simulator};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(20);

async fn start() -> (SupplierSim, TestApp) {
    with_simulator(|_| {}).await
}

fn body_for(supplier: &str) -> Value {
    let mut body = booking_body();
    body["supplier"] = json!(supplier);
    body
}

fn protocol(supplier: &str) -> Protocol {
    if supplier == "ota" { Protocol::Ota } else { Protocol::Jsonrest }
}

async fn books_and_ends_confirmed(supplier: &str, confirmation: Confirmation) {
    let (sim, app) = start().await;
    sim.set_confirmation(protocol(supplier), confirmation);
    let (_, key) = app.agency("Viajes Sol").await;

    let accepted = app.booked(&key, &body_for(supplier)).await;
    assert_eq!(accepted["status"], "pending");
    let id = accepted["id"].as_str().unwrap();

    let confirmed = app.wait_for_status(&key, id, "confirmed", SETTLE).await;
    let at_supplier = sim.booking(protocol(supplier), id).expect("the supplier holds the booking");
    assert_eq!(confirmed["supplier_reference"], json!(at_supplier.reference));
    let stats = sim.stats();
    assert_eq!(stats.get(protocol(supplier)).bookings_created.get(id), Some(&1));
    if let Confirmation::Later { .. } = confirmation {
        // The simulator counts a delivery once it has read the hub's answer, which can come
        // after the hub has already applied it: waited for, not read at once.
        sim.wait_for(SETTLE, |stats| stats.get(protocol(supplier)).webhooks_delivered >= 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrest_confirms_at_once() {
    books_and_ends_confirmed("jsonrest", Confirmation::Instant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrest_confirms_later_by_webhook() {
    books_and_ends_confirmed("jsonrest", Confirmation::Later { delay: Duration::from_millis(200) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ota_confirms_at_once() {
    books_and_ends_confirmed("ota", Confirmation::Instant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ota_confirms_later_by_webhook() {
    books_and_ends_confirmed("ota", Confirmation::Later { delay: Duration::from_millis(200) }).await;
}

/// The sandbox's bookings end confirmed; returns the booking and the sandbox's webhook log.
async fn sandbox_ends_confirmed(confirm_delay_ms: u64) -> (Value, Vec<Value>) {
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        fast_jobs(s);
        let Some(SupplierSettings::Sandbox(sandbox)) = s.suppliers.get_mut(&"sandbox".parse().unwrap()) else {
            panic!("the sandbox is configured by default")
        };
        sandbox.confirm_delay = Duration::from_millis(confirm_delay_ms);
    })
    .await;
    let (_, key) = app.agency("Viajes Sol").await;
    let accepted = app.booked(&key, &booking_body()).await;
    let confirmed = app.wait_for_status(&key, accepted["id"].as_str().unwrap(), "confirmed", SETTLE).await;
    assert!(confirmed["supplier_reference"].as_str().is_some_and(|r| r.starts_with("SBX-")), "{confirmed}");
    let staff = app.key(Role::Staff).await;
    // The booking shows the change once its transaction commits; the webhook's log row says
    // `applied` a moment after (read too early once in CI).
    let log = eventually(SETTLE, || async {
        let log = app.get_json(&staff, "/v1/webhook-events?supplier=sandbox").await["data"].clone();
        let rows = log.as_array().unwrap().clone();
        if rows.iter().any(|r| r["status"] == "queued") { Err(format!("still queued: {log}")) } else { Ok(rows) }
    })
    .await;
    (confirmed, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_confirms_at_once() {
    let (_, webhooks) = sandbox_ends_confirmed(0).await;
    assert!(webhooks.is_empty(), "confirmed in the booking answer, no webhook: {webhooks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_confirms_later_through_the_public_webhook_endpoint() {
    let (confirmed, webhooks) = sandbox_ends_confirmed(100).await;
    let [webhook] = &webhooks[..] else { panic!("one webhook expected: {webhooks:?}") };
    assert_eq!((webhook["verification"].as_str(), webhook["status"].as_str()), (Some("verified"), Some("applied")));
    assert_eq!(webhook["booking_id"], confirmed["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_changes_and_unknown_hotels_end_rejected_with_the_reason() {
    let (sim, app) = start().await;
    let (_, key) = app.agency("Viajes Sol").await;
    sim.set_faults(Protocol::Jsonrest, Faults { price_change: true, ..Faults::default() });
    sim.set_faults(Protocol::Ota, Faults { price_change: true, ..Faults::default() });

    let mut cases = Vec::new();
    for supplier in ["jsonrest", "ota"] {
        let priced = app.booked(&key, &body_for(supplier)).await;
        cases.push((priced["id"].as_str().unwrap().to_owned(), "price_changed"));
    }
    for (id, reason) in &cases {
        let rejected = app.wait_for_status(&key, id, "rejected", SETTLE).await;
        assert!(rejected["status_reason"].as_str().unwrap().starts_with(reason), "{rejected}");
    }

    sim.set_faults(Protocol::Jsonrest, Faults::default());
    sim.set_faults(Protocol::Ota, Faults::default());
    for supplier in ["jsonrest", "ota"] {
        let mut body = body_for(supplier);
        body["hotel_code"] = json!("NOHOTEL-404");
        let booking = app.booked(&key, &body).await;
        let rejected = app.wait_for_status(&key, booking["id"].as_str().unwrap(), "rejected", SETTLE).await;
        assert!(rejected["status_reason"].as_str().unwrap().starts_with("hotel_unknown"), "{rejected}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_reaches_the_supplier() {
    let (sim, app) = start().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let booking = app.booked(&key, &body_for("jsonrest")).await;
    let id = booking["id"].as_str().unwrap();
    app.wait_for_status(&key, id, "confirmed", SETTLE).await;

    // 202: the answer comes before the cancel job can have run.
    let response = app.post(&key, &format!("/v1/bookings/{id}/cancel")).send().await.unwrap();
    assert_eq!(response.status(), 202);

    app.wait_for_status(&key, id, "cancelled", SETTLE).await;
    assert_eq!(sim.booking(Protocol::Jsonrest, id).unwrap().status, "CXL");
    assert_eq!(sim.stats().jsonrest.cancels, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_to_a_single_booking() {
    let (sim, app) = start().await;
    let (_, key) = app.agency("Viajes Sol").await;
    // Two 503s, a timeout and a malformed answer: the adapter retries within the job, the job
    // retries after that; the supplier's dedupe on the client reference keeps it one booking.
    sim.set_faults(
        Protocol::Jsonrest,
        Faults { fail_next: 2, timeout_next: 1, malformed_next: 1, ..Faults::default() },
    );

    let booking = app.booked(&key, &body_for("jsonrest")).await;
    let id = booking["id"].as_str().unwrap();
    app.wait_for_status(&key, id, "confirmed", SETTLE).await;

    let stats = sim.stats();
    assert!(stats.jsonrest.requests >= 5, "{stats:?}");
    assert_eq!(stats.jsonrest.bookings_created.get(id), Some(&1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_drill_nothing_is_lost_or_booked_twice() {
    const BOOKINGS: usize = 20;
    let (sim, app) = start().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;

    // Normal API latency first, for comparison.
    let mut normal = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        app.booked(&key, &body_for("jsonrest")).await;
        normal.push(started.elapsed());
    }

    sim.set_faults(Protocol::Jsonrest, Faults { outage: true, ..Faults::default() });
    let mut during = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..BOOKINGS {
        let started = Instant::now();
        let booking = app.booked(&key, &body_for("jsonrest")).await;
        during.push(started.elapsed());
        ids.push(booking["id"].as_str().unwrap().to_owned());
    }
    // The supplier is being called and failing; the breaker opens.
    let stats = sim.wait_for(SETTLE, |s| s.jsonrest.requests >= 10).await;
    assert!(ids.iter().all(|id| !stats.jsonrest.bookings_created.contains_key(id)), "{stats:?}");
    let health = wait_for_breaker(&app, &staff, "open").await;
    assert!(health["health"]["failures"].as_u64().unwrap() >= 5, "{health}");
    for id in &ids {
        let booking = app.get_json(&key, &format!("/v1/bookings/{id}")).await;
        assert_eq!(booking["status"], "pending", "stays pending during the outage");
    }

    sim.set_faults(Protocol::Jsonrest, Faults::default());
    for id in &ids {
        app.wait_for_status(&key, id, "confirmed", Duration::from_secs(60)).await;
    }
    let stats = sim.stats();
    for id in &ids {
        assert_eq!(stats.jsonrest.bookings_created.get(id), Some(&1), "{id} booked exactly once");
    }
    wait_for_breaker(&app, &staff, "closed").await;

    normal.sort();
    during.sort();
    let (normal_median, during_median) = (normal[normal.len() / 2], during[during.len() / 2]);
    println!("API latency: median {normal_median:?} before the outage, {during_median:?} during it");
    // Acceptance never waits on the supplier (1 s timeouts, retries, breaker): it stays far
    // under one supplier timeout.
    assert!(during_median < Duration::from_millis(500), "median {during_median:?} during the outage");
}

async fn wait_for_breaker(app: &TestApp, staff: &str, state: &str) -> Value {
    bookhub_tests::eventually(SETTLE, || async {
        let health = app.get_json(staff, "/v1/suppliers/jsonrest/health").await;
        if health["health"]["breaker"] == state { Ok(health) } else { Err(format!("breaker not {state}: {health}")) }
    })
    .await
}

#[tokio::test]
async fn supplier_health_is_for_staff() {
    let (_sim, app) = start().await;
    let staff = app.key(Role::Staff).await;
    let (_, agency_key) = app.agency("Viajes Sol").await;

    let list = app.get_json(&staff, "/v1/suppliers").await;
    let codes: Vec<_> = list["data"].as_array().unwrap().iter().map(|s| s["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["jsonrest", "ota", "sandbox"]);
    assert_eq!(list["data"][1]["kind"], "ota");
    assert_eq!(list["data"][0]["health"]["breaker"], "closed");

    bookhub_tests::problem(app.get(&agency_key, "/v1/suppliers").send().await.unwrap(), 403).await;
    bookhub_tests::problem(app.get(&staff, "/v1/suppliers/nowhere/health").send().await.unwrap(), 404).await;
}

#[tokio::test]
async fn webhooks_that_do_not_verify_are_refused_and_change_nothing() {
    use adapters::suppliers::signing::{StandardKey, sign_ota};
    // The supplier is down: only the webhook can move the booking.
    let (sim, app) = start().await;
    sim.set_faults(Protocol::Jsonrest, Faults { outage: true, ..Faults::default() });
    let (_, key) = app.agency("Viajes Sol").await;
    let booking = app.booked(&key, &body_for("jsonrest")).await;
    let id = booking["id"].as_str().unwrap();
    let body = json!({"id": "evt_1", "type": "booking.confirmed", "occurred_at": "2027-01-10T12:00:00Z",
        "data": {"reference": "JR-1", "client_reference": id, "status": "CNF"}})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let post = |supplier: &str, headers: Vec<(&'static str, String)>, body: String| {
        let mut request = app.client.post(app.url(&format!("/v1/webhooks/suppliers/{supplier}"))).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let standard = |secret: &str, at: i64| {
        let signature = StandardKey::parse(secret).unwrap().sign("evt_1", at, body.as_bytes());
        vec![
            ("webhook-id", "evt_1".to_owned()),
            ("webhook-timestamp", at.to_string()),
            ("webhook-signature", signature),
        ]
    };

    let wrong_secret = post("jsonrest", standard("whsec_d3Jvbmctc2VjcmV0", now), body.clone()).await.unwrap();
    assert_eq!(bookhub_tests::problem(wrong_secret, 401).await["code"], "invalid_signature");
    let right_secret = SimConfig::default().jsonrest.webhook_secret;
    let stale = post("jsonrest", standard(&right_secret, now - 600), body.clone()).await.unwrap();
    bookhub_tests::problem(stale, 401).await;
    let tampered = post("jsonrest", standard(&right_secret, now), body.replace("CNF", "CXL")).await.unwrap();
    bookhub_tests::problem(tampered, 401).await;
    let unsigned = post("jsonrest", vec![], body.clone()).await.unwrap();
    bookhub_tests::problem(unsigned, 401).await;
    let ota = post(
        "ota",
        vec![("x-ota-timestamp", now.to_string()), ("x-ota-signature", sign_ota("wrong", now, b"<x/>"))],
        "<x/>".into(),
    )
    .await
    .unwrap();
    bookhub_tests::problem(ota, 401).await;
    bookhub_tests::problem(post("nowhere", standard(&right_secret, now), body.clone()).await.unwrap(), 404).await;
    assert_eq!(app.get_json(&key, &format!("/v1/bookings/{id}")).await["status"], "pending");

    let valid = post("jsonrest", standard(&right_secret, now), body.clone()).await.unwrap();
    assert_eq!(valid.status(), 200);
    let confirmed = app.wait_for_status(&key, id, "confirmed", SETTLE).await;
    assert_eq!(confirmed["supplier_reference"], "JR-1");
}
