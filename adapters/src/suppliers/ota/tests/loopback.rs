//! The ota adapter against a real HTTP peer (wiremock on loopback): authentication, error
//! mapping, cancelling, and reading modified reservations window by window.

use domain::supplier::{Rejection, RejectionReason};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn xml(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/xml")
}

/// Books the two-room request against a peer answering `answer` to an authenticated
/// `OTA_HotelResRQ` (anything else gets wiremock's 404).
async fn book_against(answer: ResponseTemplate) -> Result<SupplierBooking, SupplierError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/OTA_HotelResRQ"))
        .and(header("authorization", "Basic cGFydG5lcjpzM2NyZXQ="))
        .and(header("content-type", "application/xml"))
        .and(body_string_contains(r#"<UniqueID Type="14" ID="bk_01JD5QAB"/>"#))
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    adapter_for(&server.uri()).book(&two_room_request()).await
}

fn errors(error: &str) -> ResponseTemplate {
    xml(200, &format!(r#"<OTA_HotelResRS xmlns="{NS}" Version="1.0"><Errors>{error}</Errors></OTA_HotelResRS>"#))
}

fn rejection(result: Result<SupplierBooking, SupplierError>) -> (RejectionReason, String) {
    match result {
        Err(SupplierError::Rejected(Rejection { reason, detail })) => (reason, detail),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn book_sends_basic_auth_and_reads_the_reservation() {
    let booking = book_against(xml(200, RES_RS)).await.unwrap();
    assert_eq!((booking.reference.as_str(), booking.status_code.as_str()), ("OTA-77812", "Reserved"));
}

#[tokio::test]
async fn error_codes_become_refusals_or_final_or_transient_failures() {
    let hotel = book_against(errors(r#"<Error Type="3" Code="392" ShortText="InvalidHotelCode"/>"#)).await;
    assert_eq!(rejection(hotel), (RejectionReason::HotelUnknown, "InvalidHotelCode".into()));
    let price =
        book_against(errors(r#"<Error Type="3" Code="361" ShortText="PriceChanged">now 480.00 EUR</Error>"#)).await;
    assert_eq!(rejection(price), (RejectionReason::PriceChanged, "PriceChanged: now 480.00 EUR".into()));
    let full = book_against(errors(r#"<Error Type="3" Code="322" ShortText="NoAvailability"/>"#)).await;
    assert_eq!(rejection(full).0, RejectionReason::NoAvailability);
    let unavailable = book_against(errors(r#"<Error Type="1" ShortText="SystemUnavailable"/>"#)).await;
    assert!(matches!(unavailable, Err(SupplierError::Transient { .. })), "{unavailable:?}");
    let other = book_against(errors(r#"<Error Type="3" Code="187" ShortText="SystemError"/>"#)).await;
    assert!(matches!(&other, Err(SupplierError::Permanent(m)) if m.contains("187")), "{other:?}");
}

#[tokio::test]
async fn http_failures_map_to_transient_or_permanent() {
    let busy = book_against(xml(503, "").insert_header("Retry-After", "7")).await;
    assert_eq!(
        busy,
        Err(SupplierError::Transient { reason: "HTTP 503".into(), retry_after: Some(Duration::from_secs(7)) })
    );
    let refused = book_against(xml(401, "")).await;
    assert_eq!(refused, Err(SupplierError::Permanent("authentication refused".into())));
    let garbled = book_against(xml(200, "<html><body>Bad gateway")).await;
    assert!(matches!(&garbled, Err(SupplierError::Transient { reason, .. }) if reason.starts_with("malformed answer")));
    let empty = book_against(xml(200, &format!(r#"<OTA_HotelResRS xmlns="{NS}"/>"#))).await;
    assert!(matches!(&empty, Err(SupplierError::Transient { reason, .. }) if reason.starts_with("malformed answer")));
    let nobody = adapter_for("http://127.0.0.1:1").book(&two_room_request()).await;
    assert!(matches!(nobody, Err(SupplierError::Transient { .. })), "{nobody:?}");
}

#[tokio::test]
async fn cancel_commits_and_a_repeat_succeeds_again() {
    let server = MockServer::start().await;
    let answer = format!(r#"<OTA_CancelRS xmlns="{NS}" Status="Cancelled" Version="1.0"><Success/></OTA_CancelRS>"#);
    Mock::given(method("POST"))
        .and(path("/OTA_CancelRQ"))
        .and(header("authorization", "Basic cGFydG5lcjpzM2NyZXQ="))
        .and(body_string_contains(r#"CancelType="Commit""#))
        .and(body_string_contains(r#"<UniqueID Type="10" ID="OTA-77812"/>"#))
        .respond_with(xml(200, &answer))
        .expect(2)
        .mount(&server)
        .await;
    let adapter = adapter_for(&server.uri());
    for _ in 0..2 {
        let cancelled = adapter.cancel("OTA-77812").await.unwrap();
        assert_eq!((cancelled.reference.as_str(), cancelled.status_code.as_str()), ("OTA-77812", "Cancelled"));
    }
    assert!(matches!(adapter.get("OTA-77812").await, Err(SupplierError::Permanent(_))));
}

fn reservation(reference: &str, status: &str, modified: &str) -> String {
    format!(
        r#"<HotelReservation ResStatus="{status}" LastModifyDateTime="{modified}"><UniqueID Type="14" ID="bk_{reference}"/><ResGlobalInfo><HotelReservationIDs><HotelReservationID ResID_Type="10" ResID_Value="{reference}"/></HotelReservationIDs></ResGlobalInfo></HotelReservation>"#
    )
}

fn retrieved(reservations: &[String]) -> ResponseTemplate {
    let list = reservations.concat();
    xml(
        200,
        &format!(
            r#"<OTA_ResRetrieveRS xmlns="{NS}" Version="1.0"><Success/><ReservationsList>{list}</ReservationsList></OTA_ResRetrieveRS>"#
        ),
    )
}

async fn mount_read(server: &MockServer, start: &str, end: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/OTA_ReadRQ"))
        .and(body_string_contains(format!(
            r#"<SelectionCriteria DateType="LastUpdateDate" Start="2027-01-01T00:00:{start}Z" End="2027-01-01T00:00:{end}Z"/>"#
        )))
        .respond_with(answer)
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_full_read_splits_its_window_in_halves_and_dedupes() {
    let server = MockServer::start().await;
    let full: Vec<String> =
        (0..500).map(|i| reservation(&format!("R-{i:03}"), "Reserved", "2027-01-01T00:00:01Z")).collect();
    mount_read(&server, "00", "10", retrieved(&full)).await;
    let first = [
        reservation("R-000", "Reserved", "2027-01-01T00:00:01Z"),
        reservation("R-500", "Reserved", "2027-01-01T00:00:04Z"),
    ];
    mount_read(&server, "00", "05", retrieved(&first)).await;
    let second = [
        reservation("R-499", "Cancelled", "2027-01-01T00:00:08Z"),
        reservation("R-501", "Pending", "2027-01-01T00:00:09Z"),
    ];
    mount_read(&server, "06", "10", retrieved(&second)).await;

    let from = DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z").unwrap().to_utc();
    let to = DateTime::parse_from_rfc3339("2027-01-01T00:00:09.250Z").unwrap().to_utc();
    let bookings = adapter_for(&server.uri()).list_modified(from, to).await.unwrap();

    assert_eq!(bookings.len(), 502);
    let status = |reference: &str| bookings.iter().find(|b| b.reference == reference).map(|b| b.status_code.as_str());
    assert_eq!(
        (status("R-499"), status("R-500"), status("R-501")),
        (Some("Cancelled"), Some("Reserved"), Some("Pending"))
    );
    assert_eq!(bookings.iter().find(|b| b.reference == "R-000").unwrap().client_reference.as_deref(), Some("bk_R-000"));
}

#[tokio::test]
async fn a_full_one_second_window_is_an_error_not_a_short_list() {
    let server = MockServer::start().await;
    let full: Vec<String> =
        (0..500).map(|i| reservation(&format!("R-{i:03}"), "Reserved", "2027-01-01T00:00:03Z")).collect();
    mount_read(&server, "03", "03", retrieved(&full)).await;
    let second = DateTime::parse_from_rfc3339("2027-01-01T00:00:03Z").unwrap().to_utc();
    let result = adapter_for(&server.uri()).list_modified(second, second).await;
    assert!(matches!(result, Err(SupplierError::Permanent(_))), "{result:?}");
}
