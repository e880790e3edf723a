//! The `jsonrest` supplier: partner booking API v2 (JSON over HTTP, `Api-Key` + `X-Signature`
//! request auth, Standard Webhooks), exactly as its partner document describes it.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use domain::supplier::{InboundWebhook, Rejection, RejectionReason, SupplierEvent, SupplierGuest, WebhookError};
use domain::{Money, SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierCode, SupplierError};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::signing::{self, InvalidSecret, StandardKey};
use super::{transient_status, unreachable};

/// Where and how to reach a `jsonrest` supplier.
#[derive(Clone)]
pub struct JsonrestSettings {
    pub base_url: String,
    pub api_key: String,
    pub api_secret: String,
    /// `whsec_…` secrets accepted on inbound webhooks (several while the supplier rotates).
    pub webhook_secrets: Vec<String>,
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

/// A string that never reaches a log.
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
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
            api_key: Secret(settings.api_key),
            api_secret: Secret(settings.api_secret),
            webhook_keys: settings.webhook_secrets.iter().map(|s| StandardKey::parse(s)).collect::<Result<_, _>>()?,
            http,
            webhook_tolerance,
        })
    }

    /// A request with the partner's authentication: `Api-Key`, `X-Timestamp` and
    /// `X-Signature = hex(sha256(api_key + secret + unix_seconds))`.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let seconds = Utc::now().timestamp().to_string();
        let signature = hex::encode(Sha256::digest(format!("{}{}{seconds}", self.api_key.0, self.api_secret.0)));
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .header("Api-Key", &self.api_key.0)
            .header("X-Timestamp", seconds)
            .header("X-Signature", signature)
    }

    /// `GET` or `DELETE /v2/bookings/{reference}`: the booking, or 404.
    async fn one_booking(&self, method: Method, reference: &str) -> Result<SupplierBooking, SupplierError> {
        let path = format!("/v2/bookings/{}", urlencode(reference));
        let (status, body) = self.send(self.request(method, &path)).await?;
        match status.as_u16() {
            200 => Ok(body.parse::<WireBooking>()?.into()),
            404 => Err(SupplierError::NotFound),
            _ => Err(unexpected(status, &body.error())),
        }
    }

    async fn send(&self, request: RequestBuilder) -> Result<(StatusCode, Answer), SupplierError> {
        let response: Response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if let Some(transient) = transient_status(status, response.headers()) {
            return Err(transient);
        }
        let body = response.bytes().await.map_err(unreachable)?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(SupplierError::Permanent(format!("authentication refused (HTTP {})", status.as_u16())));
        }
        Ok((status, Answer(body.to_vec())))
    }
}

/// A response body, parsed on demand.
struct Answer(Vec<u8>);

impl Answer {
    /// A success answer that does not parse: the supplier may have acted, so it is worth
    /// asking again (the supplier dedupes on the client reference).
    fn parse<T: DeserializeOwned>(&self) -> Result<T, SupplierError> {
        serde_json::from_slice(&self.0).map_err(|_| SupplierError::transient("malformed answer"))
    }

    fn error(&self) -> ErrorAnswer {
        serde_json::from_slice(&self.0).unwrap_or_default()
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct WireMoney {
    amount: String,
    currency: String,
}

impl From<&Money> for WireMoney {
    fn from(m: &Money) -> Self {
        WireMoney { amount: m.amount().to_string(), currency: m.currency().code().to_owned() }
    }
}

impl WireMoney {
    fn parse(&self) -> Option<Money> {
        Money::parse(&self.amount, &self.currency).ok()
    }
}

#[derive(Serialize)]
struct BookRequest<'a> {
    client_reference: &'a str,
    hotel_code: &'a str,
    check_in: NaiveDate,
    check_out: NaiveDate,
    holder: Holder<'a>,
    rooms: Vec<RoomRequest<'a>>,
    expected_total: WireMoney,
}

#[derive(Serialize)]
struct Holder<'a> {
    name: &'a str,
    surname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Serialize)]
struct RoomRequest<'a> {
    room_type_code: &'a str,
    board_code: &'a str,
    paxes: Vec<Pax<'a>>,
}

#[derive(Serialize)]
struct Pax<'a> {
    name: &'a str,
    surname: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> BookRequest<'a> {
    fn new(r: &'a SupplierBookingRequest) -> Self {
        let person = |g: &'a SupplierGuest| Pax { name: &g.first_name, surname: &g.last_name, kind: "AD" };
        BookRequest {
            client_reference: &r.client_reference,
            hotel_code: &r.hotel_code,
            check_in: r.check_in,
            check_out: r.check_out,
            holder: Holder {
                name: &r.holder.first_name,
                surname: &r.holder.last_name,
                email: r.holder.email.as_deref(),
            },
            rooms: r
                .rooms
                .iter()
                .map(|room| RoomRequest {
                    room_type_code: &room.room_type_code,
                    board_code: &room.board_code,
                    paxes: room.guests.iter().map(person).collect(),
                })
                .collect(),
            expected_total: WireMoney::from(&r.expected_total),
        }
    }
}

/// The booking object (and the shorter answers to book and cancel, which carry a subset).
#[derive(Deserialize, Debug)]
struct WireBooking {
    reference: String,
    #[serde(default)]
    client_reference: Option<String>,
    status: String,
    #[serde(default)]
    hotel_code: Option<String>,
    #[serde(default)]
    check_in: Option<NaiveDate>,
    #[serde(default)]
    check_out: Option<NaiveDate>,
    #[serde(default)]
    rooms: Vec<WireRoom>,
    #[serde(default)]
    total: Option<WireMoney>,
    #[serde(default)]
    modified_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Debug)]
struct WireRoom {
    room_type_code: String,
    board_code: String,
}

impl From<WireBooking> for SupplierBooking {
    fn from(b: WireBooking) -> Self {
        SupplierBooking {
            reference: b.reference,
            client_reference: b.client_reference,
            status_code: b.status,
            hotel_code: b.hotel_code,
            check_in: b.check_in,
            check_out: b.check_out,
            rooms: b.rooms.into_iter().map(|r| (r.room_type_code, r.board_code)).collect(),
            total: b.total.as_ref().and_then(WireMoney::parse),
            modified_at: b.modified_at,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
struct ErrorAnswer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    total: Option<WireMoney>,
    #[serde(default)]
    details: Vec<FieldDetail>,
}

#[derive(Deserialize, Debug)]
struct FieldDetail {
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize, Debug)]
struct ListAnswer {
    bookings: Vec<WireBooking>,
    next_page: Option<u32>,
}

/// A Standard Webhooks event body.
#[derive(Deserialize, Debug)]
struct WireEvent {
    id: String,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    data: WireBooking,
}

fn rejected(reason: RejectionReason, detail: impl Into<String>) -> SupplierError {
    SupplierError::Rejected(Rejection { reason, detail: detail.into() })
}

fn unexpected(status: StatusCode, answer: &ErrorAnswer) -> SupplierError {
    SupplierError::Permanent(format!("unexpected HTTP {} ({})", status.as_u16(), answer.error))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
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
        match status.as_u16() {
            200 | 201 => Ok(body.parse::<WireBooking>()?.into()),
            409 => {
                let answer = body.error();
                let quoted = answer.total.as_ref().and_then(WireMoney::parse);
                let detail =
                    quoted.map_or_else(|| "the price changed".to_owned(), |t| format!("the supplier now asks {t}"));
                Err(rejected(RejectionReason::PriceChanged, detail))
            }
            404 => Err(rejected(RejectionReason::HotelUnknown, "the supplier does not know the hotel")),
            422 => {
                let answer = body.error();
                if answer.error == "no_availability" {
                    return Err(rejected(RejectionReason::NoAvailability, "no availability for the stay"));
                }
                let details: Vec<String> =
                    answer.details.iter().map(|d| format!("{}: {}", d.field, d.message)).collect();
                Err(rejected(RejectionReason::InvalidRequest, details.join("; ")))
            }
            _ => Err(unexpected(status, &body.error())),
        }
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
        while let Some(n) = page {
            let request = self.request(Method::GET, "/v2/bookings").query(&[
                ("modified_from", rfc3339(from)),
                ("modified_to", rfc3339(to)),
                ("page", n.to_string()),
            ]);
            let (status, body) = self.send(request).await?;
            if status != StatusCode::OK {
                return Err(unexpected(status, &body.error()));
            }
            let answer: ListAnswer = body.parse()?;
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
