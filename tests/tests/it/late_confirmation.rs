//! A supplier confirmation that arrives after bookhub cancelled the booking: the supplier holds
//! a live booking nobody will pay for, so bookhub cancels it there and says so on the booking.
//! End to end with the supplier simulator: its webhook brings the confirmation, its DELETE
//! endpoint takes the cancel.

use std::time::Duration;

use adapters::suppliers::http_client;
use adapters::suppliers::jsonrest::{JsonrestAdapter, JsonrestSettings};
use bookhub_tests::sim::{Confirmation, Faults, Protocol, SimConfig, SupplierSim};
use bookhub_tests::{TestApp, booking_body, eventually, with_simulator};
use chrono::NaiveDate;
use domain::booking::LATE_CONFIRMATION_REASON;
use domain::supplier::{SupplierGuest, SupplierRoom};
use domain::{Money, SupplierAdapter, SupplierBookingRequest};
use serde_json::json;

const SETTLE: Duration = Duration::from_secs(20);

/// A jsonrest booking that bookhub cancelled while its submission was failing, and whose
/// submission then failed for good: `cancelled`, with no supplier reference. Its id.
async fn cancelled_before_the_supplier_answered(sim: &SupplierSim, app: &TestApp, key: &str) -> String {
    sim.set_faults(Protocol::Jsonrest, Faults { outage: true, ..Faults::default() });
    let mut body = booking_body();
    body["supplier"] = json!("jsonrest");
    let id = app.booked(key, &body).await["id"].as_str().unwrap().to_owned();
    let cancel = app.post(key, &format!("/v1/bookings/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancel.status(), 202, "cancelling while the submission retries");
    // The next attempt is refused for good: nothing was booked, so the cancellation completes.
    sim.set_faults(Protocol::Jsonrest, Faults { fail_next: 1, fail_status: 400, ..Faults::default() });
    let booking = app.wait_for_status(key, &id, "cancelled", SETTLE).await;
    assert_eq!(booking["supplier_reference"], json!(null), "{booking}");
    id
}

/// What an earlier attempt that reached the supplier left there: the booking, under bookhub's
/// id as its client reference (booked here straight at the simulator). Its supplier reference.
async fn the_supplier_holds(sim: &SupplierSim, client_reference: &str) -> String {
    let partner = SimConfig::default().jsonrest;
    let settings = JsonrestSettings {
        base_url: sim.jsonrest_url(),
        api_key: partner.api_key.into(),
        api_secret: partner.api_secret.into(),
        webhook_secrets: vec![],
        allow_http: true,
    };
    let adapter = JsonrestAdapter::new(
        "jsonrest".parse().unwrap(),
        settings,
        http_client(Duration::from_secs(5)),
        chrono::Duration::minutes(5),
    )
    .unwrap();
    let ana = SupplierGuest { first_name: "Ana".into(), last_name: "Pérez".into(), email: None };
    let request = SupplierBookingRequest {
        client_reference: client_reference.to_owned(),
        hotel_code: "PMI-00042".into(),
        check_in: NaiveDate::from_ymd_opt(2027, 3, 15).unwrap(),
        check_out: NaiveDate::from_ymd_opt(2027, 3, 18).unwrap(),
        holder: ana.clone(),
        rooms: vec![SupplierRoom { room_type_code: "DBL.ST".into(), board_code: "BB".into(), guests: vec![ana] }],
        expected_total: Money::parse("450.00", "EUR").unwrap(),
    };
    adapter.book(&request).await.expect("the simulator takes the booking").reference
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_after_cancellation_cancels_at_the_supplier_and_says_so() {
    let (sim, app) = with_simulator(|_| {}).await;
    let (_, key) = app.agency("Viajes Sol").await;
    let id = cancelled_before_the_supplier_answered(&sim, &app, &key).await;
    assert_eq!(sim.stats().jsonrest.cancels, 0);

    // The supplier had it after all, and confirms it by webhook.
    sim.set_confirmation(Protocol::Jsonrest, Confirmation::Later { delay: Duration::from_millis(100) });
    let reference = the_supplier_holds(&sim, &id).await;

    let stats = sim.wait_for(SETTLE, |s| s.jsonrest.webhooks_delivered >= 1 && s.jsonrest.cancels >= 1).await;
    assert_eq!(stats.jsonrest.cancels, 1, "one cancel at the supplier: {stats:?}");
    let at_supplier = sim.booking(Protocol::Jsonrest, &id).expect("the simulator holds it");
    assert_eq!((at_supplier.reference.as_str(), at_supplier.status.as_str()), (reference.as_str(), "CXL"));

    let booking = eventually(SETTLE, || async {
        let booking = app.get_json(&key, &format!("/v1/bookings/{id}")).await;
        if booking["status_reason"] == LATE_CONFIRMATION_REASON {
            Ok(booking)
        } else {
            Err(format!("no reason recorded yet: {booking}"))
        }
    })
    .await;
    assert_eq!(booking["status"], "cancelled");
    assert_eq!(booking["supplier_reference"], json!(reference));

    sim.stop().await;
    app.stop().await;
}
