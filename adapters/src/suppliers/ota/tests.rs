//! The ota adapter's unit tests: requests read back against the partner document, the
//! document's own answers and notifications, and (in `loopback`) the adapter against a real HTTP
//! peer.

use std::time::Duration;

use chrono::NaiveDate;
use domain::Money;
use domain::supplier::{SupplierGuest, SupplierRoom};
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

use super::request::split_total;
use super::wire::{PropertyIn, RatePlanIn, RoomTypeIn, TimeSpanIn, TotalIn, UniqueIdIn};
use super::*;

mod loopback;

/// The namespace as the partner document spells it (not the module's constant).
const NS: &str = "http://www.opentravel.org/OTA/2003/05";
const RES_RS: &str = include_str!("../../../tests/fixtures/ota/hotel_res_rs.xml");
const NOTIF_RQ: &str = include_str!("../../../tests/fixtures/ota/hotel_res_notif_rq.xml");

fn guest(first: &str, last: &str, email: Option<&str>) -> SupplierGuest {
    SupplierGuest { first_name: first.into(), last_name: last.into(), email: email.map(Into::into) }
}

fn two_room_request() -> SupplierBookingRequest {
    let adult = || guest("Guest", "Adult", None);
    SupplierBookingRequest {
        client_reference: "bk_01JD5QAB".into(),
        hotel_code: "PMI-00042".into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 15).unwrap(),
        check_out: NaiveDate::from_ymd_opt(2027, 3, 18).unwrap(),
        holder: guest("Ana & \"Bea\"", "Pérez <O'Brien>", Some("ana@example.com")),
        rooms: vec![
            SupplierRoom { room_type_code: "DBS".into(), board_code: "3".into(), guests: vec![adult(), adult()] },
            SupplierRoom { room_type_code: "SNG".into(), board_code: "14".into(), guests: vec![adult()] },
        ],
        expected_total: Money::parse("450.01", "EUR").unwrap(),
    }
}

/// Every element as (path of local names, the namespace it resolves to), in document order.
fn elements(xml: &str) -> Vec<(String, String)> {
    let mut reader = quick_xml::NsReader::from_str(xml);
    let (mut stack, mut found) = (Vec::<String>::new(), Vec::new());
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        let ns = match ns {
            ResolveResult::Bound(Namespace(ns)) => ns.to_owned(),
            other => format!("{other:?}"),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                stack.push(e.local_name().into_inner().to_owned());
                found.push((stack.join("/"), ns));
                if matches!(event, Event::Empty(_)) {
                    stack.pop();
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => return found,
            _ => {}
        }
    }
}

/// An element's only child, whatever its name (names are checked with [`elements`]).
#[derive(Deserialize)]
struct Child<T> {
    #[serde(rename = "$value")]
    inner: T,
}

#[derive(Deserialize)]
struct RequestView {
    #[serde(rename = "@EchoToken")]
    echo_token: String,
    #[serde(rename = "@TimeStamp")]
    time_stamp: String,
    #[serde(rename = "@Version")]
    version: String,
    #[serde(rename = "HotelReservations")]
    reservations: Child<ReservationView>,
}

#[derive(Deserialize)]
struct ReservationView {
    #[serde(rename = "UniqueID")]
    unique_id: UniqueIdIn,
    #[serde(rename = "RoomStays")]
    room_stays: Child<Vec<RoomStayView>>,
    /// ResGuests/ResGuest/Profiles/ProfileInfo/Profile/Customer
    #[serde(rename = "ResGuests")]
    res_guests: Child<Child<Child<Child<Child<CustomerView>>>>>,
}

#[derive(Deserialize)]
struct RoomStayView {
    #[serde(rename = "RoomTypes")]
    room_types: Child<RoomTypeIn>,
    #[serde(rename = "RatePlans")]
    rate_plans: Child<RatePlanIn>,
    #[serde(rename = "GuestCounts")]
    guest_counts: Child<GuestCountView>,
    #[serde(rename = "TimeSpan")]
    time_span: TimeSpanIn,
    #[serde(rename = "Total")]
    total: TotalIn,
    #[serde(rename = "BasicPropertyInfo")]
    property: PropertyIn,
}

#[derive(Deserialize)]
struct GuestCountView {
    #[serde(rename = "@AgeQualifyingCode")]
    age: String,
    #[serde(rename = "@Count")]
    count: String,
}

#[derive(Deserialize)]
struct CustomerView {
    #[serde(rename = "PersonName")]
    name: PersonNameView,
    #[serde(rename = "Email")]
    email: Option<String>,
}

#[derive(Deserialize)]
struct PersonNameView {
    #[serde(rename = "GivenName")]
    given: String,
    #[serde(rename = "Surname")]
    surname: String,
}

#[test]
fn a_two_room_request_follows_the_document_and_escapes_the_names() {
    let now = DateTime::parse_from_rfc3339("2027-01-10T12:00:00.734Z").unwrap().to_utc();
    let xml = booking_request_xml(&two_room_request(), now).unwrap();

    let found = elements(&xml);
    assert!(found.iter().all(|(_, ns)| ns == NS), "every element in the OTA namespace: {found:?}");
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    let stay = "OTA_HotelResRQ/HotelReservations/HotelReservation/RoomStays/RoomStay";
    assert_eq!(paths.iter().filter(|p| **p == stay).count(), 2);
    for leaf in ["RoomTypes/RoomType", "RatePlans/RatePlan", "GuestCounts/GuestCount", "TimeSpan", "Total"] {
        assert_eq!(paths.iter().filter(|p| **p == format!("{stay}/{leaf}")).count(), 2, "{leaf}");
    }
    let name = concat!(
        "OTA_HotelResRQ/HotelReservations/HotelReservation/",
        "ResGuests/ResGuest/Profiles/ProfileInfo/Profile/Customer/PersonName/Surname"
    );
    assert!(paths.contains(&name), "{paths:?}");
    assert!(xml.contains("&amp;") && xml.contains("&lt;O'Brien&gt;") && xml.contains("Pérez"), "{xml}");

    let view: RequestView = quick_xml::de::from_str(&xml).unwrap();
    assert_eq!(
        (view.echo_token.as_str(), view.time_stamp.as_str(), view.version.as_str()),
        ("bk_01JD5QAB", "2027-01-10T12:00:00Z", "1.0")
    );
    let reservation = view.reservations.inner;
    assert_eq!(reservation.unique_id.kind.as_deref(), Some("14"));
    assert_eq!(reservation.unique_id.id.as_deref(), Some("bk_01JD5QAB"));
    let stays = reservation.room_stays.inner;
    let summary: Vec<_> = stays
        .iter()
        .map(|s| {
            (
                s.room_types.inner.code.as_deref().unwrap(),
                s.rate_plans.inner.meal_plan_codes.as_deref().unwrap(),
                (s.guest_counts.inner.age.as_str(), s.guest_counts.inner.count.as_str()),
                s.total.amount.as_deref().unwrap(),
                s.total.currency.as_deref().unwrap(),
                s.property.hotel_code.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("DBS", "3", ("10", "2"), "225.01", "EUR", "PMI-00042"),
            ("SNG", "14", ("10", "1"), "225.00", "EUR", "PMI-00042")
        ]
    );
    assert!(stays.iter().all(
        |s| s.time_span.start.as_deref() == Some("2027-03-15") && s.time_span.end.as_deref() == Some("2027-03-18")
    ));
    let customer = reservation.res_guests.inner.inner.inner.inner.inner;
    assert_eq!(customer.name.given, "Ana & \"Bea\"");
    assert_eq!(customer.name.surname, "Pérez <O'Brien>");
    assert_eq!(customer.email.as_deref(), Some("ana@example.com"));
}

#[test]
fn totals_split_in_whole_minor_units_with_the_remainder_first() {
    let split = |total: &str, currency: &str, rooms| -> Vec<String> {
        split_total(&Money::parse(total, currency).unwrap(), rooms).iter().map(|m| m.amount().to_string()).collect()
    };
    assert_eq!(split("100.00", "EUR", 3), ["33.34", "33.33", "33.33"]);
    assert_eq!(split("1001", "JPY", 2), ["501", "500"]);
    assert_eq!(split("450.00", "EUR", 1), ["450.00"]);
}

#[test]
fn the_documents_booking_answer_reads_into_a_supplier_booking() {
    let booking = parse_booking_answer(RES_RS).unwrap();
    assert_eq!(
        booking,
        SupplierBooking {
            reference: "OTA-77812".into(),
            client_reference: Some("bk_01JD5Q...".into()),
            status_code: "Reserved".into(),
            hotel_code: None,
            check_in: None,
            check_out: None,
            rooms: vec![],
            total: None,
            modified_at: None,
        }
    );
    // The same answer with a namespace prefix reads the same.
    let prefixed = RES_RS.replace("<", "<ota:").replace("<ota:/", "</ota:").replace("xmlns=", "xmlns:ota=");
    assert!(prefixed.contains("<ota:HotelReservationID "));
    assert_eq!(parse_booking_answer(&prefixed), Ok(booking));
}

#[test]
fn the_documents_notification_reads_into_one_event() {
    let events = parse_notification(NOTIF_RQ.as_bytes()).unwrap();
    let time = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    assert_eq!(
        events,
        [SupplierEvent {
            event_id: "ntf-5521".into(),
            occurred_at: Some(time("2027-01-10T12:00:00Z")),
            booking: SupplierBooking {
                reference: "OTA-77812".into(),
                client_reference: Some("bk_01JD5Q...".into()),
                status_code: "Reserved".into(),
                hotel_code: Some("PMI-00042".into()),
                check_in: NaiveDate::from_ymd_opt(2027, 3, 15),
                check_out: NaiveDate::from_ymd_opt(2027, 3, 18),
                rooms: vec![("DBS".into(), "3".into())],
                total: Some(Money::parse("450.00", "EUR").unwrap()),
                modified_at: Some(time("2027-01-10T12:00:00Z")),
            },
        }]
    );
}

#[test]
fn several_reservations_are_several_events_and_the_ack_echoes_the_token() {
    let start = NOTIF_RQ.find("<HotelReservation ").unwrap();
    let end = NOTIF_RQ.find("</HotelReservations>").unwrap();
    let second = NOTIF_RQ[start..end].replace("OTA-77812", "OTA-9").replace("450.00", "99.50");
    let body = NOTIF_RQ.replacen("</HotelReservations>", &format!("{second}</HotelReservations>"), 1);
    let events = parse_notification(body.as_bytes()).unwrap();
    let ids: Vec<_> = events.iter().map(|e| (e.event_id.as_str(), e.booking.reference.as_str())).collect();
    assert_eq!(ids, [("ntf-5521/0", "OTA-77812"), ("ntf-5521/1", "OTA-9")]);
    assert_eq!(events[1].booking.total, Some(Money::parse("99.50", "EUR").unwrap()));

    let adapter = adapter_for("http://127.0.0.1:9");
    let expected = format!(
        r#"<OTA_HotelResNotifRS xmlns="{NS}" EchoToken="ntf-5521" Version="1.0"><Success/></OTA_HotelResNotifRS>"#
    );
    let ack = adapter.webhook_ack(&events);
    assert_eq!((ack.content_type, ack.body.as_str()), ("application/xml", expected.as_str()));
    let single = parse_notification(NOTIF_RQ.replace("ntf-5521", "ntf/7").as_bytes()).unwrap();
    assert!(
        adapter.webhook_ack(&single).body.contains(r#"EchoToken="ntf/7""#),
        "a lone event's id is the token itself"
    );
}

#[test]
fn notifications_missing_their_ids_are_malformed() {
    let malformed = |body: &str| match parse_notification(body.as_bytes()) {
        Err(WebhookError::Malformed(what)) => what,
        other => panic!("expected Malformed, got {other:?}"),
    };
    assert_eq!(malformed(&NOTIF_RQ.replace(r#"EchoToken="ntf-5521" "#, "")), "missing EchoToken");
    assert_eq!(malformed(&NOTIF_RQ.replace(r#"ResStatus="Reserved" "#, "")), "missing ResStatus");
    assert_eq!(
        malformed(&NOTIF_RQ.replace(r#"ResID_Type="10""#, r#"ResID_Type="5""#)),
        "missing HotelReservationID ResID_Type 10"
    );
    assert_eq!(malformed(&NOTIF_RQ.replace(r#"Type="14""#, r#"Type="99""#)), "missing UniqueID Type 14");
    assert_eq!(malformed(r#"{"event": "booking.confirmed"}"#), "not an OTA_HotelResNotifRQ document");
    assert_eq!(malformed("<OTA_HotelResNotifRQ EchoToken=\"x\">"), "not an OTA_HotelResNotifRQ document");
}

#[test]
fn webhooks_verify_with_the_x_ota_signature_and_debug_hides_the_secrets() {
    let adapter = adapter_for("http://127.0.0.1:9");
    let now = Utc::now();
    let signature = signing::sign_ota("shared-secret", now.timestamp(), NOTIF_RQ.as_bytes());
    let headers = [("x-ota-timestamp", now.timestamp().to_string()), ("x-ota-signature", signature)];
    let mut webhook = InboundWebhook {
        headers: headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        body: NOTIF_RQ.as_bytes().to_vec(),
    };
    assert_eq!(adapter.verify_webhook(&webhook, now), Ok(()));
    webhook.body.push(b' ');
    assert_eq!(adapter.verify_webhook(&webhook, now), Err(WebhookError::BadSignature));
    let debug = format!("{adapter:?}");
    assert!(!debug.contains("s3cret") && !debug.contains("shared-secret"), "{debug}");
}

fn adapter_for(base_url: &str) -> OtaAdapter {
    let settings = OtaSettings {
        base_url: format!("{base_url}/"),
        username: "partner".into(),
        password: "s3cret".into(),
        webhook_secrets: vec!["shared-secret".into()],
        allow_http: true,
    };
    let http = super::super::http_client(Duration::from_secs(5));
    OtaAdapter::new("ota".parse().unwrap(), settings, http, chrono::Duration::minutes(5))
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_basic_credentials_never_reach_the_second_host() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
    let elsewhere = MockServer::start().await;
    Mock::given(matchers::any()).respond_with(ResponseTemplate::new(200)).mount(&elsewhere).await;
    let supplier = MockServer::start().await;
    let location = format!("{}/OTA_CancelRQ", elsewhere.uri());
    Mock::given(matchers::method("POST"))
        .respond_with(ResponseTemplate::new(308).insert_header("Location", location.as_str()))
        .expect(1)
        .mount(&supplier)
        .await;
    let result = adapter_for(&supplier.uri()).cancel("OTA-1").await;
    assert_eq!(
        result.unwrap_err(),
        SupplierError::Permanent(
            "the supplier answered a redirect (HTTP 308); supplier redirects are not followed".into()
        )
    );
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}
