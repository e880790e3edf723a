//! Idempotency-Key semantics: missing, replay, other payload, per agency, in flight, expiry.

use std::collections::HashSet;

use adapters::store::idempotency;
use bookhub_tests::{Backend, TestApp, booking_body, postgres_available_or_skip, problem};
use serde_json::Value;

async fn booking_count(app: &TestApp, key: &str) -> usize {
    let list = app.get_json(key, "/v1/bookings?limit=100").await;
    list["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_create_without_a_key_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;

    let response = app.create_booking(&key, None, &booking_body()).await;

    assert_eq!(problem(response, 400).await["code"], "idempotency_key_missing");
    assert_eq!(booking_count(&app, &key).await, 0);
}

#[tokio::test]
async fn a_retry_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let first = app.create_booking(&key, Some("retry-me"), &booking_body()).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();

    // Same payload, formatted differently: still the same request.
    let compact = serde_json::to_string(&booking_body()).unwrap();
    let spaced = serde_json::to_string_pretty(&booking_body()).unwrap();
    assert_ne!(compact, spaced);
    let retry = app
        .post(&key, "/v1/bookings")
        .header("Idempotency-Key", "retry-me")
        .header("content-type", "application/json")
        .body(spaced)
        .send()
        .await
        .unwrap();

    assert_eq!(retry.status(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(booking_count(&app, &key).await, 1);
}

#[tokio::test]
async fn a_key_reused_with_another_payload_is_422() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;
    app.create_booking(&key, Some("once"), &booking_body()).await;
    let mut other = booking_body();
    other["hotel_code"] = "PMI-00043".into();

    let response = app.create_booking(&key, Some("once"), &other).await;

    assert_eq!(problem(response, 422).await["code"], "idempotency_key_reused");
    assert_eq!(booking_count(&app, &key).await, 1);
}

#[tokio::test]
async fn keys_are_scoped_per_agency() {
    let app = TestApp::spawn().await;
    let (_, sol) = app.agency("Viajes Sol").await;
    let (_, luna) = app.agency("Viajes Luna").await;

    let a: Value = app.create_booking(&sol, Some("shared"), &booking_body()).await.json().await.unwrap();
    let b = app.create_booking(&luna, Some("shared"), &booking_body()).await;

    assert_eq!(b.status(), 202);
    assert!(b.headers().get("idempotent-replayed").is_none());
    assert_ne!(b.json::<Value>().await.unwrap()["id"], a["id"]);
}

#[tokio::test]
async fn an_expired_key_is_purged_and_can_be_used_again() {
    let app = TestApp::spawn().await;
    let (agency, key) = app.agency("Viajes Sol").await;
    let first: Value = app.create_booking(&key, Some("daily"), &booking_body()).await.json().await.unwrap();
    let record = idempotency::find(&app.db, &agency, "daily").await.unwrap().unwrap();
    assert_eq!(record.expires_at - record.created_at, chrono::Duration::hours(24));

    assert_eq!(idempotency::purge_expired(&app.db, record.expires_at - chrono::Duration::seconds(1)).await.unwrap(), 0);
    assert_eq!(idempotency::purge_expired(&app.db, record.expires_at + chrono::Duration::seconds(1)).await.unwrap(), 1);

    let second = app.create_booking(&key, Some("daily"), &booking_body()).await;
    assert!(second.headers().get("idempotent-replayed").is_none());
    assert_ne!(second.json::<Value>().await.unwrap()["id"], first["id"]);
}

/// 50 concurrent POSTs with one key and one body: one booking; each answer is that booking
/// or 409 while the first is in flight; never a 5xx.
async fn storm(backend: Backend) {
    let app = TestApp::spawn_with(backend, |_| {}).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let body = booking_body();

    let answers = futures::future::join_all((0..50).map(|_| async {
        let response = app.create_booking(&key, Some("storm"), &body).await;
        let status = response.status().as_u16();
        let json: Value = response.json().await.unwrap();
        (status, json)
    }))
    .await;

    let ids: HashSet<&str> =
        answers.iter().filter(|(s, _)| *s == 202).map(|(_, b)| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "every success is the same booking");
    for (status, body) in &answers {
        assert!(*status == 202 || (*status == 409 && body["code"] == "idempotency_key_in_flight"), "{status}: {body}");
    }
    let list = app.get_json(&key, "/v1/bookings").await;
    let stored = list["data"].as_array().unwrap();
    assert_eq!(stored.len(), 1);
    assert!(ids.contains(stored[0]["id"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_retries_make_one_booking_on_sqlite() {
    storm(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_retries_make_one_booking_on_postgres() {
    if postgres_available_or_skip("fifty_concurrent_retries_make_one_booking_on_postgres") {
        storm(Backend::Postgres).await;
    }
}

/// Two bookhub processes sharing one Postgres: the database's unique key decides, and the
/// loser replays the winner's booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_make_one_booking() {
    if !postgres_available_or_skip("two_servers_on_one_postgres_make_one_booking") {
        return;
    }
    let first = TestApp::spawn_with(Backend::Postgres, |_| {}).await;
    let (agency, key) = first.agency("Viajes Sol").await;
    let second = api::Application::build(bookhub_tests::test_settings(&first.database_url)).await.unwrap();
    let second_url = format!("http://127.0.0.1:{}/v1/bookings", second.port());
    tokio::spawn(second.run_until_stopped());

    let body = booking_body();
    let answers = futures::future::join_all((0..20).map(|i| {
        let request = if i % 2 == 0 {
            first.post(&key, "/v1/bookings")
        } else {
            first.client.post(&second_url).bearer_auth(&key)
        };
        request.header("Idempotency-Key", "across").json(&body).send()
    }))
    .await;

    let mut ids = HashSet::new();
    for response in answers {
        let response = response.unwrap();
        let status = response.status().as_u16();
        assert!(status == 202 || status == 409, "{status}");
        if status == 202 {
            ids.insert(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 1);
    assert!(idempotency::find(&first.db, &agency, "across").await.unwrap().is_some());
}
