//! The supplier simulator over real HTTP: dedupe, request signatures, faults, OTA round trips
//! and signed confirmations checked by an independent receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use bookhub_tests::sim::{Confirmation, Faults, Protocol, SimConfig, SupplierSim};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<sha2::Sha256>;

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().timeout(Duration::from_secs(5)).build().expect("a client")
}

fn booking(client_reference: &str) -> Value {
    json!({
        "client_reference": client_reference,
        "hotel_code": "PMI-00042",
        "check_in": "2027-03-15",
        "check_out": "2027-03-18",
        "holder": {"name": "Ana", "surname": "Pérez", "email": "ana@example.com"},
        "rooms": [{"room_type_code": "DBL.ST", "board_code": "BB", "paxes": [
            {"name": "Ana", "surname": "Pérez", "type": "AD"},
            {"name": "Luis", "surname": "Gómez", "type": "CH", "age": 7}
        ]}],
        "expected_total": {"amount": "450.00", "currency": "EUR"}
    })
}

/// `POST /v2/bookings` signed as the jsonrest document says, with the given secret.
async fn post_booking(sim: &SupplierSim, secret: &str, body: &Value) -> Response {
    let seconds = chrono::Utc::now().timestamp().to_string();
    let signature = hex::encode(Sha256::digest(format!("jr-key{secret}{seconds}")));
    client()
        .post(format!("{}/v2/bookings", sim.jsonrest_url()))
        .header("Api-Key", "jr-key")
        .header("X-Timestamp", seconds)
        .header("X-Signature", signature)
        .json(body)
        .send()
        .await
        .expect("the simulator answers")
}

fn hotel_res_rq(client_reference: &str, room_type: &str) -> String {
    format!(
        r#"<OTA_HotelResRQ xmlns="http://www.opentravel.org/OTA/2003/05" EchoToken="{client_reference}" Version="1.0">
  <HotelReservations><HotelReservation>
    <UniqueID Type="14" ID="{client_reference}"/>
    <RoomStays><RoomStay>
      <RoomTypes><RoomType RoomTypeCode="{room_type}"/></RoomTypes>
      <RatePlans><RatePlan MealPlanCodes="3"/></RatePlans>
      <GuestCounts><GuestCount AgeQualifyingCode="10" Count="2"/></GuestCounts>
      <TimeSpan Start="2027-03-15" End="2027-03-18"/>
      <Total AmountAfterTax="450.00" CurrencyCode="EUR"/>
      <BasicPropertyInfo HotelCode="PMI-00042"/>
    </RoomStay></RoomStays>
    <ResGuests><ResGuest><Profiles><ProfileInfo><Profile><Customer>
      <PersonName><GivenName>Ana</GivenName><Surname>P&#233;rez &amp; co</Surname></PersonName>
      <Email>ana@example.com</Email>
    </Customer></Profile></ProfileInfo></Profiles></ResGuest></ResGuests>
  </HotelReservation></HotelReservations>
</OTA_HotelResRQ>"#
    )
}

async fn post_ota(sim: &SupplierSim, message: &str, password: &str, body: String) -> Response {
    client()
        .post(format!("{}/{message}", sim.ota_url()))
        .basic_auth("bookhub", Some(password))
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .expect("the simulator answers")
}

#[tokio::test]
async fn a_jsonrest_booking_is_made_once_and_a_repeat_returns_it() {
    let sim = SupplierSim::start(SimConfig::default()).await.expect("the simulator starts");

    let first = post_booking(&sim, "jr-secret", &booking("bk_repeat")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("JSON");
    let again = post_booking(&sim, "jr-secret", &booking("bk_repeat")).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("JSON");

    assert_eq!(first["reference"], again["reference"]);
    assert!(first["reference"].as_str().is_some_and(|r| r.starts_with("JR-")));
    assert_eq!(first["status"], "CNF");
    assert_eq!(first["total"], json!({"amount": "450.00", "currency": "EUR"}));
    let stats = sim.stats();
    assert_eq!(stats.jsonrest.bookings_created["bk_repeat"], 1);
    assert_eq!(stats.jsonrest.book_requests["bk_repeat"], 2);
    assert_eq!(sim.booking(Protocol::Jsonrest, "bk_repeat").map(|b| b.status), Some("CNF".to_owned()));
    sim.stop().await;
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_books_nothing() {
    let sim = SupplierSim::start(SimConfig::default()).await.expect("the simulator starts");

    let response = post_booking(&sim, "not-the-secret", &booking("bk_forged")).await;

    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.expect("JSON"), json!({"error": "unauthorized"}));
    assert!(sim.stats().jsonrest.bookings_created.is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn invalid_bodies_are_answered_with_field_details() {
    let sim = SupplierSim::start(SimConfig::default()).await.expect("the simulator starts");
    let mut body = booking("bk_invalid");
    body["rooms"][0]["room_type_code"] = json!("DBL");
    body["check_out"] = json!("2027-03-15");

    let response = post_booking(&sim, "jr-secret", &body).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_request");
    let fields: Vec<&str> =
        body["details"].as_array().into_iter().flatten().filter_map(|d| d["field"].as_str()).collect();
    assert_eq!(fields, ["check_out", "rooms[0].room_type_code"]);
    sim.stop().await;
}

#[tokio::test]
async fn fail_next_answers_503_then_books_and_counts_every_request() {
    let sim = SupplierSim::start(SimConfig::default()).await.expect("the simulator starts");
    sim.set_faults(Protocol::Jsonrest, Faults { fail_next: 2, ..Faults::default() });

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post_booking(&sim, "jr-secret", &booking("bk_flaky")).await.status().as_u16());
    }

    assert_eq!(statuses, [503, 503, 201]);
    let stats = sim.stats();
    assert_eq!(stats.jsonrest.requests, 3);
    assert_eq!(stats.jsonrest.book_requests["bk_flaky"], 3);
    assert_eq!(stats.jsonrest.bookings_created["bk_flaky"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn an_ota_booking_round_trip_with_basic_auth() {
    let sim = SupplierSim::start(SimConfig::default()).await.expect("the simulator starts");

    let refused = post_ota(&sim, "OTA_HotelResRQ", "wrong", hotel_res_rq("bk_ota", "DBS")).await;
    assert_eq!(refused.status(), 401);
    let booked = post_ota(&sim, "OTA_HotelResRQ", "ota-password", hotel_res_rq("bk_ota", "DBS")).await;
    assert_eq!(booked.status(), 200);
    assert_eq!(booked.headers()["content-type"], "application/xml");
    let booked = booked.text().await.expect("a body");
    let repeat = post_ota(&sim, "OTA_HotelResRQ", "ota-password", hotel_res_rq("bk_ota", "DBS")).await;
    let repeat = repeat.text().await.expect("a body");
    let invalid = post_ota(&sim, "OTA_HotelResRQ", "ota-password", hotel_res_rq("bk_ota_bad", "XXL")).await;
    let invalid = invalid.text().await.expect("a body");

    assert!(booked.contains("<Success/>") && booked.contains(r#"ResStatus="Reserved""#), "{booked}");
    assert!(booked.contains(r#"<HotelReservationID ResID_Type="10" ResID_Value="OTA-000001"/>"#), "{booked}");
    assert_eq!(booked, repeat);
    assert!(invalid.contains(r#"<Error Type="3" Code="450" ShortText="InvalidRequest">"#), "{invalid}");
    let cancel = r#"<OTA_CancelRQ xmlns="http://www.opentravel.org/OTA/2003/05" CancelType="Commit" Version="1.0">
        <UniqueID Type="10" ID="OTA-000001"/></OTA_CancelRQ>"#;
    for _ in 0..2 {
        let cancelled = post_ota(&sim, "OTA_CancelRQ", "ota-password", cancel.into()).await;
        let cancelled = cancelled.text().await.expect("a body");
        assert!(cancelled.contains("<Success/>") && cancelled.contains(r#"Status="Cancelled""#), "{cancelled}");
    }
    let read = r#"<OTA_ReadRQ xmlns="http://www.opentravel.org/OTA/2003/05" Version="1.0"><ReadRequests>
        <HotelReadRequest><SelectionCriteria DateType="LastUpdateDate" Start="2000-01-01T00:00:00Z"/>
        </HotelReadRequest></ReadRequests></OTA_ReadRQ>"#;
    let list = post_ota(&sim, "OTA_ReadRQ", "ota-password", read.into()).await.text().await.expect("a body");
    assert!(list.contains(r#"<HotelReservation ResStatus="Cancelled""#), "{list}");
    let stats = sim.stats();
    assert_eq!((stats.ota.requests, stats.ota.cancels), (7, 2));
    assert_eq!(stats.ota.bookings_created["bk_ota"], 1);
    sim.stop().await;
}

/// What the test's webhook receiver saw: bodies whose signature it verified itself.
#[derive(Default)]
struct Received {
    verified: Mutex<Vec<Value>>,
    notifications: Mutex<Vec<String>>,
}

/// Verifies ota's legacy signature: hex HMAC-SHA256 of `"{timestamp}.{body}"` with the raw secret.
async fn receive_ota(received: web::Data<Received>, request: HttpRequest, body: String) -> HttpResponse {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"ota-webhook-secret").expect("any key length");
    mac.update(format!("{}.{body}", header("X-OTA-Timestamp")).as_bytes());
    if header("X-OTA-Signature") != hex::encode(mac.finalize().into_bytes()) {
        return HttpResponse::Unauthorized().finish();
    }
    received.notifications.lock().expect("not poisoned").push(body);
    HttpResponse::Ok().content_type("application/xml").body(
        r#"<OTA_HotelResNotifRS xmlns="http://www.opentravel.org/OTA/2003/05" Version="1.0"><Success/></OTA_HotelResNotifRS>"#,
    )
}

/// Verifies a Standard Webhooks signature from scratch: key = base64 after `whsec_`.
async fn receive(received: web::Data<Received>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let secret = SimConfig::default().jsonrest.webhook_secret;
    let key = base64::engine::general_purpose::STANDARD.decode(&secret["whsec_".len()..]).expect("a base64 secret");
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    let Ok(event) = serde_json::from_slice::<Value>(&body) else { return HttpResponse::BadRequest().finish() };
    if !header("webhook-signature").split(' ').any(|s| s == expected) || event["id"] != header("webhook-id") {
        return HttpResponse::Unauthorized().finish();
    }
    received.verified.lock().expect("not poisoned").push(event);
    HttpResponse::NoContent().finish()
}

#[tokio::test]
async fn later_confirmations_arrive_as_correctly_signed_webhooks() {
    let received = web::Data::from(Arc::new(Received::default()));
    let data = received.clone();
    let receiver = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(receive))
            .route("/ota-hook", web::post().to(receive_ota))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("a free port");
    let hook_url = format!("http://{}", receiver.addrs()[0]);
    let receiver = receiver.run();
    let receiver_handle = receiver.handle();
    tokio::spawn(receiver);
    let sim = SupplierSim::start(SimConfig::default()).await.expect("the simulator starts");
    sim.set_hub_webhook_url(Protocol::Jsonrest, &format!("{hook_url}/hook"));
    sim.set_hub_webhook_url(Protocol::Ota, &format!("{hook_url}/ota-hook"));
    for protocol in [Protocol::Jsonrest, Protocol::Ota] {
        sim.set_confirmation(protocol, Confirmation::Later { delay: Duration::from_millis(100) });
    }

    let response = post_booking(&sim, "jr-secret", &booking("bk_later")).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("JSON");
    assert_eq!(created["status"], "PND");
    let booked = post_ota(&sim, "OTA_HotelResRQ", "ota-password", hotel_res_rq("bk_ota_later", "DBS")).await;
    assert!(booked.text().await.expect("a body").contains(r#"ResStatus="Pending""#));
    let stats = sim
        .wait_for(Duration::from_secs(10), |s| s.jsonrest.webhooks_delivered == 1 && s.ota.webhooks_delivered == 1)
        .await;

    assert_eq!((stats.jsonrest.webhooks_sent, stats.ota.webhooks_sent), (1, 1));
    let events = received.verified.lock().expect("not poisoned").clone();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert!(event["id"].as_str().is_some_and(|id| id.starts_with("evt_")));
    assert_eq!(event["type"], "booking.confirmed");
    assert_eq!(event["data"]["reference"], created["reference"]);
    assert_eq!(event["data"]["client_reference"], "bk_later");
    assert_eq!(event["data"]["status"], "CNF");
    assert_eq!(event["data"]["total"], json!({"amount": "450.00", "currency": "EUR"}));
    assert_eq!(sim.booking(Protocol::Jsonrest, "bk_later").map(|b| b.status), Some("CNF".to_owned()));
    let notification = received.notifications.lock().expect("not poisoned").concat();
    assert!(notification.starts_with("<OTA_HotelResNotifRQ"), "{notification}");
    assert!(notification.contains(r#"<HotelReservation ResStatus="Reserved""#), "{notification}");
    assert!(notification.contains(r#"<UniqueID Type="14" ID="bk_ota_later"/>"#), "{notification}");
    sim.stop().await;
    receiver_handle.stop(false).await;
}
