//! Retries and the circuit breaker against a real HTTP peer (wiremock on loopback), through the
//! jsonrest adapter: what is retried, what is not, how long it waits, and when the breaker
//! stops calling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bookhub_adapters::suppliers::http_client;
use bookhub_adapters::suppliers::jsonrest::{JsonrestAdapter, JsonrestSettings};
use bookhub_adapters::suppliers::resilience::{BreakerState, ResilienceSettings, Resilient};
use chrono::NaiveDate;
use domain::supplier::{RejectionReason, SupplierBookingRequest, SupplierGuest, SupplierRoom};
use domain::{Money, SupplierAdapter, SupplierError};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn settings(max_retries: u32) -> ResilienceSettings {
    ResilienceSettings {
        timeout: Duration::from_secs(10),
        max_retries,
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_secs(5),
        breaker_failure_threshold: 50,
        breaker_cooldown: Duration::from_secs(30),
    }
}

fn supplier(server: &MockServer, timeout: Duration, resilience: ResilienceSettings) -> Resilient {
    let adapter = JsonrestAdapter::new(
        "jsonrest".parse().unwrap(),
        JsonrestSettings {
            base_url: server.uri(),
            api_key: "key".into(),
            api_secret: "secret".into(),
            webhook_secrets: vec![],
            allow_http: true,
        },
        http_client(timeout),
        chrono::Duration::minutes(5),
    )
    .unwrap();
    Resilient::new(Arc::new(adapter), resilience)
}

fn request() -> SupplierBookingRequest {
    let ana =
        SupplierGuest { first_name: "Ana".into(), last_name: "Pérez".into(), email: Some("ana@example.com".into()) };
    SupplierBookingRequest {
        client_reference: "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b".into(),
        hotel_code: "PMI-00042".into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 15).unwrap(),
        check_out: NaiveDate::from_ymd_opt(2027, 3, 18).unwrap(),
        holder: ana.clone(),
        rooms: vec![SupplierRoom { room_type_code: "DBL.ST".into(), board_code: "BB".into(), guests: vec![ana] }],
        expected_total: Money::parse("450.00", "EUR").unwrap(),
    }
}

fn booked() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "reference": "JR-000123", "client_reference": "bk_0193a5b2c4d27e8f9a0b1c2d3e4f5a6b", "status": "CNF",
        "total": {"amount": "450.00", "currency": "EUR"}, "created_at": "2027-01-10T12:00:00Z"
    }))
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn two_503s_then_success_is_retried_to_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/v2/bookings")).respond_with(booked()).with_priority(2).mount(&server).await;

    let booking = supplier(&server, Duration::from_secs(5), settings(3)).book(&request()).await.unwrap();

    assert_eq!(booking.reference, "JR-000123");
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn final_answers_are_not_retried() {
    for (status, body, expected) in [
        (400, json!({"error": "bad_request"}), None),
        (404, json!({"error": "hotel_not_found"}), Some(RejectionReason::HotelUnknown)),
        (422, json!({"error": "no_availability"}), Some(RejectionReason::NoAvailability)),
        (
            409,
            json!({"error": "price_changed", "total": {"amount": "495.00", "currency": "EUR"}}),
            Some(RejectionReason::PriceChanged),
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;

        let error = supplier(&server, Duration::from_secs(5), settings(3)).book(&request()).await.unwrap_err();

        match (expected, &error) {
            (Some(reason), SupplierError::Rejected(r)) => assert_eq!(r.reason, reason, "HTTP {status}"),
            (None, SupplierError::Permanent(_)) => {}
            _ => panic!("HTTP {status} gave {error:?}"),
        }
        assert_eq!(requests(&server).await, 1, "HTTP {status} must not be retried");
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(booked()).with_priority(2).mount(&server).await;

    let started = Instant::now();
    supplier(&server, Duration::from_secs(5), settings(3)).book(&request()).await.unwrap();

    // The backoff alone would wait at most 10 ms.
    assert!(started.elapsed() >= Duration::from_secs(1), "waited only {:?}", started.elapsed());
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(booked().set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(booked()).with_priority(2).mount(&server).await;

    let booking = supplier(&server, Duration::from_millis(300), settings(2)).book(&request()).await.unwrap();

    assert_eq!(booking.status_code, "CNF");
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_malformed_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string("{\"reference\": "))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(booked()).with_priority(2).mount(&server).await;

    supplier(&server, Duration::from_secs(5), settings(2)).book(&request()).await.unwrap();

    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_half_opens_and_closes() {
    let server = MockServer::start().await;
    let outage = Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount_as_scoped(&server).await;
    let cooldown = Duration::from_millis(400);
    let supplier = supplier(
        &server,
        Duration::from_secs(5),
        ResilienceSettings { max_retries: 0, breaker_failure_threshold: 3, breaker_cooldown: cooldown, ..settings(0) },
    );

    for _ in 0..3 {
        assert!(matches!(supplier.book(&request()).await, Err(SupplierError::Transient { .. })));
    }
    assert_eq!(supplier.health().breaker, BreakerState::Open);
    assert_eq!(supplier.health().consecutive_failures, 3);

    // Open: refused without a request.
    assert_eq!(supplier.book(&request()).await, Err(SupplierError::CircuitOpen));
    assert_eq!(supplier.book(&request()).await, Err(SupplierError::CircuitOpen));
    assert_eq!(requests(&server).await, 3);
    assert_eq!(supplier.health().rejected_calls, 2);

    // After the cool-down one probe goes through; it succeeds, and the breaker closes.
    drop(outage);
    Mock::given(method("POST")).respond_with(booked()).mount(&server).await;
    tokio::time::sleep(cooldown).await;
    supplier.book(&request()).await.unwrap();
    assert_eq!(requests(&server).await, 4);
    assert_eq!(supplier.health().breaker, BreakerState::Closed);
    assert_eq!(supplier.health().consecutive_failures, 0);
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let cooldown = Duration::from_millis(200);
    let supplier = supplier(
        &server,
        Duration::from_secs(5),
        ResilienceSettings { max_retries: 0, breaker_failure_threshold: 2, breaker_cooldown: cooldown, ..settings(0) },
    );
    for _ in 0..2 {
        supplier.book(&request()).await.unwrap_err();
    }
    tokio::time::sleep(cooldown).await;

    assert!(matches!(supplier.book(&request()).await, Err(SupplierError::Transient { .. })), "the probe is sent");
    assert_eq!(supplier.book(&request()).await, Err(SupplierError::CircuitOpen));
    assert_eq!(requests(&server).await, 3);
    assert_eq!(supplier.health().breaker, BreakerState::Open);
}

#[tokio::test]
async fn final_answers_do_not_trip_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "hotel_not_found"})))
        .mount(&server)
        .await;
    let supplier = supplier(
        &server,
        Duration::from_secs(5),
        ResilienceSettings { max_retries: 0, breaker_failure_threshold: 2, ..settings(0) },
    );
    for _ in 0..5 {
        assert!(matches!(supplier.book(&request()).await, Err(SupplierError::Rejected(_))));
    }
    assert_eq!(supplier.health().breaker, BreakerState::Closed);
    assert_eq!(requests(&server).await, 5);
}

#[tokio::test]
async fn requests_carry_the_partners_authentication() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(booked()).mount(&server).await;

    supplier(&server, Duration::from_secs(5), settings(0)).book(&request()).await.unwrap();

    let sent = &server.received_requests().await.unwrap()[0];
    let header = |name: &str| sent.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("api-key"), "key");
    let expected = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(format!("keysecret{}", header("x-timestamp"))))
    };
    assert_eq!(header("x-signature"), expected);
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["rooms"][0]["paxes"][0], json!({"name": "Ana", "surname": "Pérez", "type": "AD"}));
    assert_eq!(body["expected_total"], json!({"amount": "450.00", "currency": "EUR"}));
}
