//! Input that costs the server more than it should: huge room lists, long names, several errors
//! at once, and the built-in sandbox where it has no place.

use std::time::{Duration, Instant};

use bookhub_tests::{Backend, TestApp, booking_body, postgres_available_or_skip, problem};
use serde_json::{Value, json};

/// A booking whose `rooms` is `count` empty rooms.
fn empty_rooms(count: usize) -> Value {
    let mut body = booking_body();
    body["rooms"] = Value::Array(vec![json!({}); count]);
    body
}

#[tokio::test]
async fn a_flood_of_empty_rooms_is_one_error_and_a_megabyte_never_reaches_the_parser() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;

    // ~60 KiB: within the bookings' body limit, 20,000 rooms.
    let flood = empty_rooms(20_000);
    assert!(flood.to_string().len() < 64 * 1024);
    let started = Instant::now();
    let answer = problem(app.create_booking(&key, Some("flood-1"), &flood).await, 422).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(
        answer["errors"],
        json!([{"field": "rooms", "code": "too_many", "message": "at most 9 rooms per booking"}])
    );

    // 1 MiB (~350,000 rooms): refused by size before any parsing.
    let huge = empty_rooms(350_000);
    assert!(huge.to_string().len() > 1024 * 1024 - 64 * 1024);
    let answer = problem(app.create_booking(&key, Some("flood-2"), &huge).await, 413).await;
    assert_eq!(answer["code"], "payload_too_large");
}

#[tokio::test]
async fn at_most_fifty_errors_are_listed_with_a_truncated_flag() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let mut body = booking_body();
    body["rooms"] = Value::Array(vec![json!({"guests": vec![json!({}); 8]}); 9]);
    let answer = problem(app.create_booking(&key, Some("many-errors"), &body).await, 422).await;
    assert_eq!(answer["errors"].as_array().unwrap().len(), 50);
    assert_eq!(answer["truncated"], true);

    let one = problem(app.create_booking(&key, Some("one-error"), &empty_rooms(0)).await, 422).await;
    assert!(one.get("truncated").is_none(), "only said when true: {one}");
}

#[tokio::test]
async fn every_fields_error_is_listed_in_one_answer() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let mut body = booking_body();
    body["total"] = json!({"amount": "-5.00", "currency": "XXZ"});
    body["rooms"][0]["guests"][0]["first_name"] = json!("a".repeat(201));
    let answer = problem(app.create_booking(&key, Some("all-errors"), &body).await, 422).await;
    let mut listed: Vec<(String, String)> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("rooms[0].guests[0].first_name".to_owned(), "too_long".to_owned()),
            ("total.amount".to_owned(), "invalid_amount".to_owned()),
            ("total.currency".to_owned(), "unknown_currency".to_owned()),
        ]
    );
}

#[tokio::test]
async fn the_sandbox_is_off_on_postgres_unless_it_is_switched_on() {
    if !postgres_available_or_skip("the_sandbox_is_off_on_postgres_unless_it_is_switched_on") {
        return;
    }
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        // As an operator's Postgres deployment has it: the sandbox table left as it comes.
        s.suppliers.insert("sandbox".parse().unwrap(), api::config::SupplierSettings::Sandbox(Default::default()));
    })
    .await;
    let (_, key) = app.agency("Viajes Sol").await;
    let answer = problem(app.create_booking(&key, Some("sandbox-off"), &booking_body()).await, 422).await;
    assert_eq!(answer["errors"][0]["field"], "supplier");
    assert_eq!(answer["errors"][0]["code"], "unknown_supplier");
    let staff = app.key(adapters::store::api_keys::Role::Staff).await;
    let suppliers = app.get_json(&staff, "/v1/suppliers").await;
    assert!(!suppliers.to_string().contains("sandbox"), "{suppliers}");
}
