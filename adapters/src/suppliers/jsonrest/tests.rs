//! The jsonrest adapter's unit tests: the request signature against a fixed vector, and the
//! adapter against a real HTTP peer (wiremock on loopback) for authentication, every status and
//! error body the partner document lists, and the paging of the reconciliation list.

use std::time::Duration;

use chrono::NaiveDate;
use domain::supplier::{Rejection, RejectionReason, SupplierGuest, SupplierRoom};
use domain::{Money, SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierError};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const KEY: &str = "partner-key";
const SECRET: &str = "partner-secret";

fn adapter_for(base_url: &str) -> JsonrestAdapter {
    let settings = JsonrestSettings {
        base_url: format!("{base_url}/"),
        api_key: KEY.into(),
        api_secret: SECRET.into(),
        webhook_secrets: vec![],
        allow_http: true,
    };
    let http = super::super::http_client(Duration::from_secs(5));
    JsonrestAdapter::new("jsonrest".parse().unwrap(), settings, http, chrono::Duration::minutes(5)).unwrap()
}

fn request() -> SupplierBookingRequest {
    let ana =
        SupplierGuest { first_name: "Ana".into(), last_name: "Pérez".into(), email: Some("ana@example.com".into()) };
    SupplierBookingRequest {
        client_reference: "bk_01JD5QAB".into(),
        hotel_code: "PMI-00042".into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 15).unwrap(),
        check_out: NaiveDate::from_ymd_opt(2027, 3, 18).unwrap(),
        holder: ana.clone(),
        rooms: vec![SupplierRoom { room_type_code: "DBL.ST".into(), board_code: "BB".into(), guests: vec![ana] }],
        expected_total: Money::parse("450.00", "EUR").unwrap(),
    }
}

fn booked(status: &str) -> Value {
    json!({"reference": "JR-000123", "client_reference": "bk_01JD5QAB", "status": status,
           "total": {"amount": "450.00", "currency": "EUR"}, "created_at": "2027-01-10T12:00:00Z"})
}

/// Books against a peer answering `answer` to `POST /v2/bookings` carrying the API key.
async fn book_against(answer: ResponseTemplate) -> Result<SupplierBooking, SupplierError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings"))
        .and(header("Api-Key", KEY))
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    adapter_for(&server.uri()).book(&request()).await
}

fn answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn rejection(result: Result<SupplierBooking, SupplierError>) -> (RejectionReason, String) {
    match result {
        Err(SupplierError::Rejected(Rejection { reason, detail })) => (reason, detail),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn the_request_signature_is_hex_sha256_of_key_secret_and_seconds() {
    // The partner document gives the scheme but no worked example; this vector is
    // `printf %s key secret1700000000 | sha256sum`, computed outside bookhub.
    assert_eq!(
        request_signature("key", "secret", 1_700_000_000),
        "278d74471a3b5267e27221967122169ad26fac349e0fb6a94779cdf050a0d038"
    );
}

#[tokio::test]
async fn every_request_carries_the_key_the_timestamp_and_its_signature() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(answer(200, booked("CNF"))).expect(1).mount(&server).await;
    let before = Utc::now().timestamp();
    adapter_for(&server.uri()).get("JR-000123").await.unwrap();
    let after = Utc::now().timestamp();

    let received = server.received_requests().await.unwrap();
    let headers = &received[0].headers;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(text("api-key"), KEY);
    let seconds: i64 = text("x-timestamp").parse().unwrap();
    assert!((before..=after).contains(&seconds), "{seconds} not in {before}..={after}");
    assert_eq!(text("x-signature"), request_signature(KEY, SECRET, seconds));
    assert_eq!(received[0].url.path(), "/v2/bookings/JR-000123");
}

#[tokio::test]
async fn book_reads_the_new_and_the_repeated_booking() {
    for status in [201, 200] {
        let booking = book_against(answer(status, booked("PND"))).await.unwrap();
        assert_eq!((booking.reference.as_str(), booking.status_code.as_str()), ("JR-000123", "PND"));
        assert_eq!(booking.total, Some(Money::parse("450.00", "EUR").unwrap()));
    }
}

#[tokio::test]
async fn the_documents_refusals_become_rejections() {
    let price = json!({"error": "price_changed", "total": {"amount": "480.00", "currency": "EUR"}});
    assert_eq!(
        rejection(book_against(answer(409, price)).await),
        (RejectionReason::PriceChanged, "the supplier now asks 480.00 EUR".into())
    );
    let hotel = book_against(answer(404, json!({"error": "hotel_not_found"}))).await;
    assert_eq!(rejection(hotel).0, RejectionReason::HotelUnknown);
    let full = book_against(answer(422, json!({"error": "no_availability"}))).await;
    assert_eq!(rejection(full).0, RejectionReason::NoAvailability);
    let invalid = json!({"error": "invalid_request", "details": [
        {"field": "check_out", "message": "before check_in"}, {"field": "rooms", "message": "empty"}]});
    assert_eq!(
        rejection(book_against(answer(422, invalid)).await),
        (RejectionReason::InvalidRequest, "check_out: before check_in; rooms: empty".into())
    );
}

#[tokio::test]
async fn transient_statuses_are_retryable_and_the_rest_is_final() {
    let limited = book_against(ResponseTemplate::new(429).insert_header("Retry-After", "7")).await;
    assert_eq!(
        limited,
        Err(SupplierError::Transient { reason: "HTTP 429".into(), retry_after: Some(Duration::from_secs(7)) })
    );
    for status in [500, 502, 503, 504] {
        let failed = book_against(ResponseTemplate::new(status)).await;
        assert_eq!(failed, Err(SupplierError::transient(format!("HTTP {status}"))));
    }
    for status in [401, 403] {
        let refused = book_against(ResponseTemplate::new(status)).await;
        assert_eq!(refused, Err(SupplierError::Permanent(format!("authentication refused (HTTP {status})"))));
    }
    let odd = book_against(answer(400, json!({"error": "bad_json"}))).await;
    assert_eq!(odd, Err(SupplierError::Permanent("unexpected HTTP 400 (bad_json)".into())));
    let garbled = book_against(ResponseTemplate::new(201).set_body_string("<html>")).await;
    assert_eq!(garbled, Err(SupplierError::transient("malformed answer")));
    let nobody = adapter_for("http://127.0.0.1:1").book(&request()).await;
    assert!(matches!(nobody, Err(SupplierError::Transient { .. })), "{nobody:?}");
}

#[tokio::test]
async fn get_and_cancel_read_the_booking_or_not_found() {
    let server = MockServer::start().await;
    let cancelled = json!({"reference": "JR-000123", "status": "CXL",
                           "cancellation_fee": {"amount": "0.00", "currency": "EUR"}});
    Mock::given(method("DELETE"))
        .and(path("/v2/bookings/JR-000123"))
        .respond_with(answer(200, cancelled))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/bookings/JR%2F9"))
        .respond_with(answer(404, json!({"error": "not_found"})))
        .expect(1)
        .mount(&server)
        .await;
    let adapter = adapter_for(&server.uri());
    for _ in 0..2 {
        let booking = adapter.cancel("JR-000123").await.unwrap();
        assert_eq!((booking.reference.as_str(), booking.status_code.as_str()), ("JR-000123", "CXL"));
    }
    assert_eq!(adapter.get("JR/9").await, Err(SupplierError::NotFound));
}

fn page(references: &[&str], number: u32, next: Option<u32>) -> ResponseTemplate {
    let bookings: Vec<Value> = references
        .iter()
        .map(|r| {
            json!({"reference": r, "client_reference": format!("bk_{r}"), "status": "CNF",
                        "modified_at": "2027-01-01T00:00:05Z"})
        })
        .collect();
    answer(200, json!({"bookings": bookings, "page": number, "next_page": next}))
}

async fn mount_page(server: &MockServer, number: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path("/v2/bookings"))
        .and(query_param("modified_from", "2027-01-01T00:00:00Z"))
        .and(query_param("modified_to", "2027-01-02T00:00:00Z"))
        .and(query_param("page", number))
        .respond_with(answer)
        .expect(1)
        .mount(server)
        .await;
}

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    (at("2027-01-01T00:00:00Z"), at("2027-01-02T00:00:00Z"))
}

#[tokio::test]
async fn the_list_follows_next_page_until_there_is_none() {
    let server = MockServer::start().await;
    mount_page(&server, "1", page(&["JR-1", "JR-2"], 1, Some(2))).await;
    mount_page(&server, "2", page(&["JR-3"], 2, Some(3))).await;
    mount_page(&server, "3", page(&["JR-4"], 3, None)).await;
    let (from, to) = window();
    let bookings = adapter_for(&server.uri()).list_modified(from, to).await.unwrap();
    let references: Vec<&str> = bookings.iter().map(|b| b.reference.as_str()).collect();
    assert_eq!(references, ["JR-1", "JR-2", "JR-3", "JR-4"]);
    assert_eq!(bookings[3].client_reference.as_deref(), Some("bk_JR-4"));
}

#[tokio::test]
async fn the_list_stops_when_next_page_does_not_move_forward_or_a_page_fails() {
    let server = MockServer::start().await;
    mount_page(&server, "1", page(&["JR-1"], 1, Some(1))).await;
    let (from, to) = window();
    let bookings = adapter_for(&server.uri()).list_modified(from, to).await.unwrap();
    assert_eq!(bookings.len(), 1);

    let server = MockServer::start().await;
    mount_page(&server, "1", page(&["JR-1"], 1, Some(2))).await;
    mount_page(&server, "2", ResponseTemplate::new(503)).await;
    let failed = adapter_for(&server.uri()).list_modified(from, to).await;
    assert_eq!(failed, Err(SupplierError::transient("HTTP 503")));
}

/// The supplier answers `status` with a `Location` on a second host; the answer and what the
/// second host received.
async fn redirected(status: u16) -> (Result<SupplierBooking, SupplierError>, Vec<wiremock::Request>) {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(answer(201, booked("CNF"))).mount(&elsewhere).await;
    let location = format!("{}/v2/bookings", elsewhere.uri());
    let result = book_against(ResponseTemplate::new(status).insert_header("Location", location.as_str())).await;
    (result, elsewhere.received_requests().await.unwrap_or_default())
}

#[tokio::test]
async fn a_redirect_is_refused_and_never_followed_so_no_credential_leaves() {
    for status in [301, 302, 303, 307, 308] {
        let (result, reached) = redirected(status).await;
        assert_eq!(
            result,
            Err(SupplierError::Permanent(format!(
                "the supplier answered a redirect (HTTP {status}); supplier redirects are not followed"
            )))
        );
        assert!(reached.is_empty(), "HTTP {status}: the second host got {} request(s)", reached.len());
    }
}

#[tokio::test]
async fn an_answer_over_the_size_cap_is_refused() {
    let huge = ResponseTemplate::new(201).set_body_bytes(vec![b' '; crate::suppliers::MAX_ANSWER_BYTES + 1]);
    assert_eq!(book_against(huge).await, Err(SupplierError::transient("the answer is larger than 8 MiB")));
    // At the cap it is read (and here, being blank, found malformed).
    let full = ResponseTemplate::new(201).set_body_bytes(vec![b' '; crate::suppliers::MAX_ANSWER_BYTES]);
    assert_eq!(book_against(full).await, Err(SupplierError::transient("malformed answer")));
}

#[tokio::test]
async fn the_list_stops_at_the_page_cap_when_the_supplier_always_has_a_next_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/bookings"))
        .respond_with(|request: &wiremock::Request| {
            let number: u32 =
                request.url.query_pairs().find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok()).unwrap_or(1);
            page(&[], number, Some(number + 1))
        })
        .mount(&server)
        .await;
    let (from, to) = window();
    let endless = adapter_for(&server.uri()).list_modified(from, to).await;
    assert_eq!(
        endless,
        Err(SupplierError::Permanent(format!(
            "the supplier's list goes on past {MAX_LIST_PAGES} pages; narrow the window"
        )))
    );
    assert_eq!(server.received_requests().await.unwrap().len(), MAX_LIST_PAGES as usize);
}
