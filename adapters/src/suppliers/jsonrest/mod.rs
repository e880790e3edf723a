//! The `jsonrest` supplier: partner booking API v2 (JSON over HTTP, `Api-Key` + `X-Signature`
//! request auth, Standard Webhooks), exactly as its partner document describes it.
//!
//! This file holds the adapter, its settings and the request signing; `answer` maps each
//! endpoint's statuses and error bodies, `wire` is the JSON itself.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::supplier::{InboundWebhook, SupplierEvent, WebhookError};
use domain::{SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierCode, SupplierError};
use reqwest::{Method, RequestBuilder, StatusCode};
use sha2::{Digest, Sha256};

use self::answer::{Answer, book_answer, booking_answer, list_answer};
use self::wire::{BookRequest, WireEvent};
use super::signing::{self, InvalidSecret, StandardKey};
use super::{read_answer, unreachable};
use crate::settings::Secret;

mod answer;
mod wire;

/// The most pages one `list_modified` follows: a supplier that always names a next page would
/// otherwise keep a reconciliation run going for ever.
pub const MAX_LIST_PAGES: u32 = 500;

#[cfg(test)]
mod tests;

/// Where and how to reach a `jsonrest` supplier: its keys in a `[suppliers.<code>]` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JsonrestSettings {
    pub base_url: String,
    pub api_key: Secret,
    /// Signs each request (`X-Signature`).
    pub api_secret: Secret,
    /// `whsec_…` secrets accepted on inbound webhooks (several while the supplier rotates).
    #[serde(default)]
    pub webhook_secrets: Vec<Secret>,
    /// Lets `base_url` be plain `http://` (tests, the demo); otherwise only `https://` is taken,
    /// so the credentials and the guests' data never cross the network in the clear.
    #[serde(default)]
    pub allow_http: bool,
}

#[derive(Debug)]
pub struct JsonrestAdapter {
    code: SupplierCode,
    base_url: String,
    api_key: Secret,
    api_secret: Secret,
    webhook_keys: Vec<StandardKey>,
    http: reqwest::Client,
    webhook_tolerance: chrono::Duration,
}

impl JsonrestAdapter {
    pub fn new(
        code: SupplierCode,
        settings: JsonrestSettings,
        http: reqwest::Client,
        webhook_tolerance: chrono::Duration,
    ) -> Result<Self, InvalidSecret> {
        Ok(JsonrestAdapter {
            code,
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            api_key: settings.api_key,
            api_secret: settings.api_secret,
            webhook_keys: settings
                .webhook_secrets
                .iter()
                .map(|s| StandardKey::parse(s.expose()))
                .collect::<Result<_, _>>()?,
            http,
            webhook_tolerance,
        })
    }

    /// A request with the partner's authentication: `Api-Key`, `X-Timestamp` and
    /// `X-Signature = hex(sha256(api_key + secret + unix_seconds))`.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let seconds = Utc::now().timestamp();
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .header("Api-Key", self.api_key.expose())
            .header("X-Timestamp", seconds.to_string())
            .header("X-Signature", request_signature(self.api_key.expose(), self.api_secret.expose(), seconds))
    }

    /// `GET` or `DELETE /v2/bookings/{reference}`: the booking, or 404.
    async fn one_booking(&self, method: Method, reference: &str) -> Result<SupplierBooking, SupplierError> {
        let path = format!("/v2/bookings/{}", urlencode(reference));
        let (status, body) = self.send(self.request(method, &path)).await?;
        booking_answer(status, &body)
    }

    async fn send(&self, request: RequestBuilder) -> Result<(StatusCode, Answer), SupplierError> {
        let (status, body) = read_answer(request.send().await.map_err(unreachable)?).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(SupplierError::Permanent(format!("authentication refused (HTTP {})", status.as_u16())));
        }
        Ok((status, Answer(body)))
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The partner's request signature: `hex(sha256(api_key + secret + unix_seconds))`.
fn request_signature(api_key: &str, secret: &str, unix_seconds: i64) -> String {
    hex::encode(Sha256::digest(format!("{api_key}{secret}{unix_seconds}")))
}

#[async_trait::async_trait]
impl SupplierAdapter for JsonrestAdapter {
    fn code(&self) -> &SupplierCode {
        &self.code
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code, booking.id = %request.client_reference))]
    async fn book(&self, request: &SupplierBookingRequest) -> Result<SupplierBooking, SupplierError> {
        let (status, body) =
            self.send(self.request(Method::POST, "/v2/bookings").json(&BookRequest::new(request))).await?;
        book_answer(status, &body)
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code))]
    async fn cancel(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        self.one_booking(Method::DELETE, reference).await
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code))]
    async fn get(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        self.one_booking(Method::GET, reference).await
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code))]
    async fn list_modified(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SupplierBooking>, SupplierError> {
        let mut bookings = Vec::new();
        let mut page = Some(1u32);
        let mut read = 0;
        while let Some(n) = page {
            if read == MAX_LIST_PAGES {
                return Err(SupplierError::Permanent(format!(
                    "the supplier's list goes on past {MAX_LIST_PAGES} pages; narrow the window"
                )));
            }
            read += 1;
            let request = self.request(Method::GET, "/v2/bookings").query(&[
                ("modified_from", rfc3339(from)),
                ("modified_to", rfc3339(to)),
                ("page", n.to_string()),
            ]);
            let (status, body) = self.send(request).await?;
            let answer = list_answer(status, &body)?;
            bookings.extend(answer.bookings.into_iter().map(SupplierBooking::from));
            // A page number that does not move forward would loop for ever.
            page = answer.next_page.filter(|next| *next > n);
        }
        Ok(bookings)
    }

    fn verify_webhook(&self, webhook: &InboundWebhook, now: DateTime<Utc>) -> Result<(), WebhookError> {
        signing::verify_standard(&self.webhook_keys, webhook, now, self.webhook_tolerance)
    }

    fn parse_webhook(&self, webhook: &InboundWebhook) -> Result<Vec<SupplierEvent>, WebhookError> {
        parse_standard_event(webhook)
    }
}

/// Parses a Standard Webhooks body in the jsonrest event form (also what the sandbox sends).
pub(crate) fn parse_standard_event(webhook: &InboundWebhook) -> Result<Vec<SupplierEvent>, WebhookError> {
    let event: WireEvent = serde_json::from_slice(&webhook.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if webhook.header("webhook-id").is_some_and(|id| id != event.id) {
        return Err(WebhookError::Malformed("the body's id differs from webhook-id".into()));
    }
    Ok(vec![SupplierEvent { event_id: event.id, occurred_at: event.occurred_at, booking: event.data.into() }])
}

/// A reference as one path segment.
fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
