//! The bookings API end to end: create, read, list, cancel, tenancy, validation.

use adapters::store::api_keys::Role;
use adapters::store::queue;
use bookhub_tests::{Backend, TestApp, booking_body, problem};
use jobs::{CancelBooking, SubmitBooking};
use serde_json::{Value, json};

#[tokio::test]
async fn a_booking_is_accepted_pending_with_its_submit_job_queued() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;

    let response = app.create_booking(&key, Some("first"), &booking_body()).await;

    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let booking: Value = response.json().await.unwrap();
    let id = booking["id"].as_str().unwrap();
    assert!(id.starts_with("bk_"));
    assert_eq!(location, format!("/v1/bookings/{id}"));
    assert_eq!(booking["status"], "pending");
    assert_eq!(booking["total"], json!({"amount": "450.00", "currency": "EUR"}));
    assert_eq!(booking["rooms"][0]["guests"][1]["last_name"], "Gómez");
    assert_eq!(queue::count(app.db.pool(), SubmitBooking::QUEUE, Some(id)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_booking_reads_back_with_an_etag_and_304_when_unchanged() {
    // No workers: the submit job would change the booking (and its ETag) between the reads.
    let app = TestApp::spawn_with(Backend::from_env(), bookhub_tests::no_workers).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let created = app.booked(&key, &booking_body()).await;
    let path = format!("/v1/bookings/{}", created["id"].as_str().unwrap());

    let first = app.get(&key, &path).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(first.json::<Value>().await.unwrap(), created);

    let again = app.get(&key, &path).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["cache-control"], "private, no-cache");
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);

    // A change gives a new ETag, so the old one no longer matches.
    app.post(&key, &format!("{path}/cancel")).send().await.unwrap();
    let changed = app.get(&key, &path).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn agencies_see_only_their_own_bookings_and_staff_see_all() {
    let app = TestApp::spawn().await;
    let (_, sol) = app.agency("Viajes Sol").await;
    let (_, luna) = app.agency("Viajes Luna").await;
    let staff = app.key(Role::Staff).await;
    let booking = app.booked(&sol, &booking_body()).await;
    let path = format!("/v1/bookings/{}", booking["id"].as_str().unwrap());

    problem(app.get(&luna, &path).send().await.unwrap(), 404).await;
    problem(app.post(&luna, &format!("{path}/cancel")).send().await.unwrap(), 404).await;
    let luna_list = app.get_json(&luna, "/v1/bookings").await;
    assert_eq!(luna_list["data"], json!([]));

    assert_eq!(app.get(&staff, &path).send().await.unwrap().status(), 200);
    let all = app.get_json(&staff, "/v1/bookings").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    // Staff read; only agencies book.
    problem(app.create_booking(&staff, Some("k"), &booking_body()).await, 403).await;
}

async fn page(app: &TestApp, key: &str, query: &str) -> (Vec<String>, Option<String>) {
    let body = app.get_json(key, &format!("/v1/bookings?{query}")).await;
    let ids = body["data"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_owned()).collect();
    (ids, body["next_cursor"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn pages_stay_stable_while_new_bookings_arrive() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(app.booked(&key, &booking_body()).await["id"].as_str().unwrap().to_owned());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let (first, cursor) = page(&app, &key, "limit=2").await;
    assert_eq!(first, newest_first[0..2]);
    for _ in 0..2 {
        app.booked(&key, &booking_body()).await;
    }
    let (second, cursor) = page(&app, &key, &format!("limit=2&cursor={}", cursor.unwrap())).await;
    assert_eq!(second, newest_first[2..4]);
    let (third, cursor) = page(&app, &key, &format!("limit=2&cursor={}", cursor.unwrap())).await;
    assert_eq!(third, newest_first[4..5]);
    assert_eq!(cursor, None);

    let (fresh, _) = page(&app, &key, "limit=100").await;
    assert_eq!(fresh.len(), 7);
}

#[tokio::test]
async fn lists_filter_by_status_and_refuse_bad_parameters() {
    // No workers: the statuses stay as the API set them.
    let app = TestApp::spawn_with(Backend::from_env(), |s| s.jobs.enabled = false).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let kept = app.booked(&key, &booking_body()).await;
    let cancelled = app.booked(&key, &booking_body()).await;
    app.post(&key, &format!("/v1/bookings/{}/cancel", cancelled["id"].as_str().unwrap())).send().await.unwrap();

    let (pending, _) = page(&app, &key, "status=pending").await;
    assert_eq!(pending, [kept["id"].as_str().unwrap()]);
    let (cancelling, _) = page(&app, &key, "status=cancellation_pending").await;
    assert_eq!(cancelling, [cancelled["id"].as_str().unwrap()]);

    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=abc", "invalid_query"),
        ("status=lost", "invalid_status"),
        ("cursor=!!", "invalid_cursor"),
    ] {
        let body = problem(app.get(&key, &format!("/v1/bookings?{query}")).send().await.unwrap(), 400).await;
        assert_eq!(body["code"], code, "{query}");
    }
}

#[tokio::test]
async fn cancelling_is_idempotent_and_queues_one_cancellation() {
    // No workers: the cancellation stays pending while it is asked again.
    let app = TestApp::spawn_with(Backend::from_env(), |s| s.jobs.enabled = false).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let booking = app.booked(&key, &booking_body()).await;
    let id = booking["id"].as_str().unwrap();
    let path = format!("/v1/bookings/{id}/cancel");

    for _ in 0..3 {
        let response = app.post(&key, &path).send().await.unwrap();
        assert_eq!(response.status(), 202);
        assert_eq!(response.json::<Value>().await.unwrap()["status"], "cancellation_pending");
    }
    assert_eq!(queue::count(app.db.pool(), CancelBooking::QUEUE, None).await.unwrap(), 1);
}

/// Breaks one rule in a valid request.
type BreakIt = Box<dyn Fn(&mut Value)>;

/// Each validation rule, by the field it names.
#[tokio::test]
async fn every_validation_rule_answers_422_with_its_field() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let cases: Vec<(&str, BreakIt, &str, &str)> = vec![
        ("dates in order", Box::new(|b| b["check_out"] = json!("2027-03-15")), "check_out", "stay_dates"),
        ("a real date", Box::new(|b| b["check_in"] = json!("2027-02-30")), "check_in", "invalid_date"),
        ("at least one room", Box::new(|b| b["rooms"] = json!([])), "rooms", "required"),
        ("a guest per room", Box::new(|b| b["rooms"][0]["guests"] = json!([])), "rooms[0].guests", "required"),
        (
            "a lead guest email",
            Box::new(|b| b["rooms"][0]["guests"][0]["email"] = Value::Null),
            "rooms[0].guests[0].email",
            "required",
        ),
        (
            "a valid email",
            Box::new(|b| b["rooms"][0]["guests"][0]["email"] = json!("ana@")),
            "rooms[0].guests[0].email",
            "invalid_email",
        ),
        ("a positive amount", Box::new(|b| b["total"]["amount"] = json!("0.00")), "total.amount", "invalid_amount"),
        (
            "the currency's minor units",
            Box::new(|b| b["total"] = json!({"amount": "450.5", "currency": "JPY"})),
            "total.amount",
            "minor_units",
        ),
        (
            "an ISO 4217 currency",
            Box::new(|b| b["total"]["currency"] = json!("EUX")),
            "total.currency",
            "unknown_currency",
        ),
        ("a known supplier", Box::new(|b| b["supplier"] = json!("acme")), "supplier", "unknown_supplier"),
        (
            "a known room type",
            Box::new(|b| b["rooms"][0]["room_type"] = json!("PENTHOUSE")),
            "rooms[0].room_type",
            "unknown_code",
        ),
        ("a known board", Box::new(|b| b["rooms"][0]["board"] = json!("XX")), "rooms[0].board", "unknown_code"),
        ("a hotel", Box::new(|b| b["hotel_code"] = json!("")), "hotel_code", "required"),
        ("no control characters", Box::new(|b| b["hotel_code"] = json!("PMI\u{0}")), "hotel_code", "invalid_text"),
        (
            "names without control characters",
            Box::new(|b| b["rooms"][0]["guests"][1]["last_name"] = json!("G\u{7}")),
            "rooms[0].guests[1].last_name",
            "invalid_text",
        ),
        ("a plausible year", Box::new(|b| b["check_in"] = json!("-5000-01-01")), "check_in", "invalid_date"),
        ("at most 90 nights", Box::new(|b| b["check_out"] = json!("2027-08-01")), "check_out", "stay_dates"),
        ("JSON types", Box::new(|b| b["total"]["amount"] = json!(450)), "total.amount", "invalid_type"),
    ];
    for (rule, break_it, field, code) in cases {
        let mut body = booking_body();
        break_it(&mut body);
        let response = app.create_booking(&key, Some(&rule.replace(' ', "-")), &body).await;
        let problem = problem(response, 422).await;
        assert_eq!(problem["code"], "validation_failed", "{rule}");
        let errors = problem["errors"].as_array().unwrap();
        assert!(errors.iter().any(|e| e["field"] == field && e["code"] == code), "{rule}: {errors:?}");
    }
    let list = app.get_json(&key, "/v1/bookings").await;
    assert_eq!(list["data"], json!([]), "nothing invalid is stored");
}

#[tokio::test]
async fn all_violations_are_listed_at_once() {
    let app = TestApp::spawn().await;
    let (_, key) = app.agency("Viajes Sol").await;

    let response = app.create_booking(&key, Some("k"), &json!({"rooms": [{"guests": [{}]}]})).await;

    let problem = problem(response, 422).await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in [
        "supplier",
        "hotel_code",
        "check_in",
        "check_out",
        "rooms[0].room_type",
        "rooms[0].board",
        "rooms[0].guests[0].first_name",
        "rooms[0].guests[0].email",
        "total.currency",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
}
