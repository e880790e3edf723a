//! The `sandbox` supplier runs inside bookhub, for demos and first runs. It accepts every
//! booking; with no confirmation delay it confirms at once, otherwise it answers "pending" and
//! confirms later by sending itself a correctly signed Standard Webhooks event through bookhub's
//! public webhook endpoint — so a newcomer sees the whole path, webhook included.
//!
//! It speaks the jsonrest event form and its own codes, which the seeded mapping rows translate
//! like any other supplier's. Its bookings live in memory, the latest [`MAX_HELD`] of them: a
//! restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::supplier::{InboundWebhook, SupplierEvent, WebhookError};
use domain::{SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierCode, SupplierError};
use serde_json::json;

use super::jsonrest::parse_standard_event;
use super::signing::{self, InvalidSecret, StandardKey};

/// The sandbox's status codes (what its seeded mapping rows translate).
pub const PENDING: &str = "PND";
pub const CONFIRMED: &str = "CNF";
pub const CANCELLED: &str = "CXL";

#[derive(Debug)]
pub struct SandboxAdapter {
    code: SupplierCode,
    keys: Vec<StandardKey>,
    confirm_delay: Duration,
    /// Where bookhub answers (`http://host:port`), known once the server is bound.
    hub_url: Arc<OnceLock<String>>,
    http: reqwest::Client,
    webhook_tolerance: chrono::Duration,
    bookings: Arc<Mutex<Held>>,
}

/// The most bookings the sandbox remembers; past it, the oldest is forgotten.
pub const MAX_HELD: usize = 10_000;

/// The sandbox's bookings by client reference, oldest first.
#[derive(Debug, Default)]
struct Held {
    by_client_reference: HashMap<String, SupplierBooking>,
    order: VecDeque<String>,
}

impl Held {
    /// The booking for `client_reference`, made with `make` when new (`true`).
    fn get_or_insert(
        &mut self,
        client_reference: &str,
        make: impl FnOnce() -> SupplierBooking,
    ) -> (SupplierBooking, bool) {
        if let Some(held) = self.by_client_reference.get(client_reference) {
            return (held.clone(), false);
        }
        let booking = make();
        self.by_client_reference.insert(client_reference.to_owned(), booking.clone());
        self.order.push_back(client_reference.to_owned());
        while self.order.len() > MAX_HELD {
            if let Some(oldest) = self.order.pop_front() {
                self.by_client_reference.remove(&oldest);
            }
        }
        (booking, true)
    }

    fn get_mut(&mut self, client_reference: &str) -> Option<&mut SupplierBooking> {
        self.by_client_reference.get_mut(client_reference)
    }

    fn values(&self) -> impl Iterator<Item = &SupplierBooking> {
        self.by_client_reference.values()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut SupplierBooking> {
        self.by_client_reference.values_mut()
    }
}

impl SandboxAdapter {
    /// `webhook_secrets` sign (the first) and verify (any) its events; `hub_url` is filled in
    /// when bookhub knows its own address.
    pub fn new(
        code: SupplierCode,
        webhook_secrets: &[String],
        confirm_delay: Duration,
        hub_url: Arc<OnceLock<String>>,
        http: reqwest::Client,
        webhook_tolerance: chrono::Duration,
    ) -> Result<Self, InvalidSecret> {
        let keys: Vec<StandardKey> = webhook_secrets.iter().map(|s| StandardKey::parse(s)).collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err(InvalidSecret);
        }
        Ok(SandboxAdapter { code, keys, confirm_delay, hub_url, http, webhook_tolerance, bookings: Arc::default() })
    }

    fn bookings(&self) -> std::sync::MutexGuard<'_, Held> {
        self.bookings.lock().expect("the sandbox's bookings are never poisoned")
    }

    /// Sends the confirmation to bookhub's webhook endpoint after the delay, retrying until it
    /// is taken (as a real supplier would), for up to ten minutes.
    fn confirm_later(&self, booking: SupplierBooking) {
        let (key, delay, http, bookings) =
            (self.keys[0].clone(), self.confirm_delay, self.http.clone(), self.bookings.clone());
        let (hub_url, code) = (self.hub_url.clone(), self.code.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(hub) = hub_url.get() else {
                tracing::warn!(supplier = %code, "the sandbox does not know bookhub's address; no confirmation sent");
                return;
            };
            // Confirm only what is still pending: a booking cancelled meanwhile stays cancelled.
            let confirmed = {
                let mut bookings = bookings.lock().expect("never poisoned");
                let Some(held) = bookings.get_mut(booking.client_reference.as_deref().unwrap_or_default()) else {
                    return;
                };
                if held.status_code != PENDING {
                    return;
                }
                held.status_code = CONFIRMED.into();
                held.modified_at = Some(crate::store::now());
                held.clone()
            };
            let id = format!("evt_{}", random_hex());
            let body = event_body(&id, &confirmed).to_string();
            let url = format!("{}/v1/webhooks/suppliers/{code}", hub.trim_end_matches('/'));
            let mut wait = Duration::from_millis(100);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
            while tokio::time::Instant::now() < deadline {
                let now = Utc::now().timestamp();
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", now.to_string())
                    .header("webhook-signature", key.sign(&id, now, body.as_bytes()))
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(supplier = %code, status = r.status().as_u16(), "sandbox webhook refused; retrying")
                    }
                    Err(e) => tracing::warn!(supplier = %code, error = %e, "sandbox webhook not delivered; retrying"),
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        });
    }
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The jsonrest event form.
fn event_body(id: &str, b: &SupplierBooking) -> serde_json::Value {
    let type_ = if b.status_code == CANCELLED { "booking.cancelled" } else { "booking.confirmed" };
    json!({
        "id": id,
        "type": type_,
        "occurred_at": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": {
            "reference": b.reference,
            "client_reference": b.client_reference,
            "status": b.status_code,
            "hotel_code": b.hotel_code,
            "check_in": b.check_in,
            "check_out": b.check_out,
            "rooms": b.rooms.iter().map(|(room, board)| json!({"room_type_code": room, "board_code": board})).collect::<Vec<_>>(),
            "total": b.total.map(|t| json!({"amount": t.amount().to_string(), "currency": t.currency().code()})),
        }
    })
}

#[async_trait::async_trait]
impl SupplierAdapter for SandboxAdapter {
    fn code(&self) -> &SupplierCode {
        &self.code
    }

    async fn book(&self, request: &SupplierBookingRequest) -> Result<SupplierBooking, SupplierError> {
        let (booking, fresh) = self.bookings().get_or_insert(&request.client_reference, || SupplierBooking {
            reference: format!("SBX-{}", &random_hex()[..10].to_uppercase()),
            client_reference: Some(request.client_reference.clone()),
            status_code: if self.confirm_delay.is_zero() { CONFIRMED } else { PENDING }.into(),
            hotel_code: Some(request.hotel_code.clone()),
            check_in: Some(request.check_in),
            check_out: Some(request.check_out),
            rooms: request.rooms.iter().map(|r| (r.room_type_code.clone(), r.board_code.clone())).collect(),
            total: Some(request.expected_total),
            modified_at: Some(crate::store::now()),
        });
        if fresh && booking.status_code == PENDING {
            self.confirm_later(booking.clone());
        }
        Ok(booking)
    }

    async fn cancel(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        let mut bookings = self.bookings();
        let booking = bookings.values_mut().find(|b| b.reference == reference).ok_or(SupplierError::NotFound)?;
        booking.status_code = CANCELLED.into();
        booking.modified_at = Some(crate::store::now());
        Ok(booking.clone())
    }

    async fn get(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        self.bookings().values().find(|b| b.reference == reference).cloned().ok_or(SupplierError::NotFound)
    }

    async fn list_modified(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SupplierBooking>, SupplierError> {
        let in_window = |b: &&SupplierBooking| b.modified_at.is_some_and(|m| m >= from && m <= to);
        Ok(self.bookings().values().filter(in_window).cloned().collect())
    }

    fn verify_webhook(&self, webhook: &InboundWebhook, now: DateTime<Utc>) -> Result<(), WebhookError> {
        signing::verify_standard(&self.keys, webhook, now, self.webhook_tolerance)
    }

    fn parse_webhook(&self, webhook: &InboundWebhook) -> Result<Vec<SupplierEvent>, WebhookError> {
        parse_standard_event(webhook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sandbox_forgets_its_oldest_booking_past_its_bound() {
        let secret = format!("whsec_{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]));
        let sandbox = SandboxAdapter::new(
            "sandbox".parse().unwrap(),
            &[secret],
            Duration::ZERO,
            Arc::default(),
            super::super::http_client(Duration::from_secs(1)),
            chrono::Duration::minutes(5),
        )
        .unwrap();
        let request = |n: usize| SupplierBookingRequest {
            client_reference: format!("bk_{n}"),
            hotel_code: "PMI-00042".into(),
            check_in: chrono::NaiveDate::from_ymd_opt(2027, 3, 15).unwrap(),
            check_out: chrono::NaiveDate::from_ymd_opt(2027, 3, 18).unwrap(),
            holder: domain::supplier::SupplierGuest {
                first_name: "Ana".into(),
                last_name: "Pérez".into(),
                email: Some("ana@example.com".into()),
            },
            rooms: vec![],
            expected_total: domain::Money::parse("450.00", "EUR").unwrap(),
        };
        let first = sandbox.book(&request(0)).await.unwrap();
        for n in 1..=MAX_HELD {
            sandbox.book(&request(n)).await.unwrap();
        }
        assert_eq!(sandbox.bookings().by_client_reference.len(), MAX_HELD);
        assert_eq!(sandbox.get(&first.reference).await, Err(SupplierError::NotFound));
        let last = sandbox.book(&request(MAX_HELD)).await.unwrap();
        assert_eq!(sandbox.get(&last.reference).await.unwrap().reference, last.reference, "the latest are kept");
    }
}
