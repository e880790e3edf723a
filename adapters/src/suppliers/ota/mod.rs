//! The `ota` supplier: a small profile of the OpenTravel Alliance (OTA 2003/05) hotel messages,
//! XML over HTTP POST with Basic authentication and `X-OTA-Signature` webhooks, exactly as its
//! partner document (`shared/partners/ota.md`) describes it.
//!
//! Messages are written and read with quick-xml's serde support. Elements and attributes are
//! matched on their local names, so an answer reads the same with or without a namespace prefix.
//! Failures follow the document: 429/5xx, dropped connections and `SystemUnavailable` are
//! transient, every other `<Errors>` is final.
//!
//! This file holds the adapter and its settings; `request` writes the messages, `answer`
//! reads the answers and notifications (and maps the errors), `wire` is the XML itself.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use crate::settings::Secret;
use chrono::{DateTime, Utc};
use domain::supplier::{InboundWebhook, SupplierEvent, WebhookAck, WebhookError};
use domain::{SupplierAdapter, SupplierBooking, SupplierBookingRequest, SupplierCode, SupplierError};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use self::answer::{echo_token, parse_booking_answer, parse_cancel_answer, parse_notification, parse_read_answer};
use self::request::{ack_xml, booking_request_xml, cancel_request_xml, read_request_xml, seconds};
use super::{read_answer, signing, unreachable};

mod answer;
mod request;
mod wire;

#[cfg(test)]
mod tests;

const OTA_NS: &str = "http://www.opentravel.org/OTA/2003/05";
const VERSION: &str = "1.0";
/// `UniqueID/@Type` of the partner's (bookhub's) reference.
const PARTNER_REFERENCE: &str = "14";
/// `ResID_Type` (and cancel `UniqueID/@Type`) of the supplier's confirmation number.
const SUPPLIER_REFERENCE: &str = "10";
/// The most reservations one `OTA_ReadRQ` answers; a full answer means the window must narrow.
const READ_CAP: usize = 500;

/// Where and how to reach an `ota` supplier: its keys in a `[suppliers.<code>]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct OtaSettings {
    pub base_url: String,
    /// HTTP Basic credentials: the partner id and password the supplier gave us.
    pub username: String,
    pub password: Secret,
    /// Raw shared secrets accepted on `X-OTA-Signature` (several while one is rotated out).
    #[serde(default)]
    pub webhook_secrets: Vec<Secret>,
    /// Lets `base_url` be plain `http://` (tests, the demo); otherwise only `https://` is taken.
    #[serde(default)]
    pub allow_http: bool,
}

#[derive(Debug)]
pub struct OtaAdapter {
    code: SupplierCode,
    settings: OtaSettings,
    http: reqwest::Client,
    webhook_tolerance: chrono::Duration,
}

impl OtaAdapter {
    pub fn new(
        code: SupplierCode,
        mut settings: OtaSettings,
        http: reqwest::Client,
        webhook_tolerance: chrono::Duration,
    ) -> Self {
        settings.base_url = settings.base_url.trim_end_matches('/').to_owned();
        OtaAdapter { code, settings, http, webhook_tolerance }
    }

    /// POSTs one message to `{base}/{operation}` and returns the body of its `200` answer.
    async fn post(&self, operation: &str, xml: String) -> Result<String, SupplierError> {
        let response = self
            .http
            .post(format!("{}/{operation}", self.settings.base_url))
            .basic_auth(&self.settings.username, Some(self.settings.password.expose()))
            .header(CONTENT_TYPE, "application/xml")
            .body(xml)
            .send()
            .await
            .map_err(unreachable)?;
        let (status, body) = read_answer(response).await?;
        match status {
            StatusCode::OK => Ok(String::from_utf8_lossy(&body).into_owned()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(SupplierError::Permanent("authentication refused".into()))
            }
            other => Err(SupplierError::Permanent(format!("unexpected HTTP {}", other.as_u16()))),
        }
    }

    /// One `OTA_ReadRQ` for `[start, end]` (whole seconds, both ends included): how many
    /// reservations the supplier answered, and those reservations.
    #[tracing::instrument(skip_all, fields(supplier = %self.code, window.start = start, window.end = end))]
    async fn read_window(&self, start: i64, end: i64) -> Result<(usize, Vec<SupplierBooking>), SupplierError> {
        let body = self.post("OTA_ReadRQ", read_request_xml(seconds(start), seconds(end))?).await?;
        parse_read_answer(&body)
    }
}

#[async_trait::async_trait]
impl SupplierAdapter for OtaAdapter {
    fn code(&self) -> &SupplierCode {
        &self.code
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code, booking.id = %request.client_reference))]
    async fn book(&self, request: &SupplierBookingRequest) -> Result<SupplierBooking, SupplierError> {
        let body = self.post("OTA_HotelResRQ", booking_request_xml(request, Utc::now())?).await?;
        parse_booking_answer(&body)
    }

    #[tracing::instrument(skip_all, fields(supplier = %self.code, supplier.reference = %reference))]
    async fn cancel(&self, reference: &str) -> Result<SupplierBooking, SupplierError> {
        let body = self.post("OTA_CancelRQ", cancel_request_xml(reference)?).await?;
        parse_cancel_answer(reference, &body)
    }

    /// Not offered: the OTA profile has no read-by-reference message (only `OTA_ReadRQ` by
    /// modification window), so this always answers [`SupplierError::Permanent`] without
    /// calling the supplier. Bookings are followed through webhooks and [`Self::list_modified`].
    async fn get(&self, _reference: &str) -> Result<SupplierBooking, SupplierError> {
        Err(SupplierError::Permanent("the ota profile cannot read one booking by reference".into()))
    }

    /// Reads `[from, to]` widened to whole seconds. The supplier answers at most 500
    /// reservations per read, so a full answer splits its window in two halves, read in turn,
    /// until every answer is below the cap; a booking seen twice is kept once (the latest
    /// `LastModifyDateTime`). A one-second window that is still full cannot be narrowed: that is
    /// a permanent error rather than a silently short list.
    #[tracing::instrument(skip_all, fields(supplier = %self.code, window.from = %from, window.to = %to))]
    async fn list_modified(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SupplierBooking>, SupplierError> {
        let start = from.timestamp();
        let end = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
        let mut windows = if start <= end { vec![(start, end)] } else { Vec::new() };
        let mut found: BTreeMap<String, SupplierBooking> = BTreeMap::new();
        while let Some((start, end)) = windows.pop() {
            let (count, bookings) = self.read_window(start, end).await?;
            for booking in bookings {
                match found.entry(booking.reference.clone()) {
                    Entry::Vacant(slot) => {
                        slot.insert(booking);
                    }
                    Entry::Occupied(mut slot) if booking.modified_at >= slot.get().modified_at => {
                        slot.insert(booking);
                    }
                    Entry::Occupied(_) => {}
                }
            }
            if count >= READ_CAP {
                if start == end {
                    return Err(SupplierError::Permanent(format!(
                        "{count} reservations modified within the second {}: OTA_ReadRQ cannot list them all",
                        seconds(start)
                    )));
                }
                let middle = start + (end - start) / 2;
                windows.push((middle + 1, end));
                windows.push((start, middle));
            }
        }
        Ok(found.into_values().collect())
    }

    fn verify_webhook(&self, webhook: &InboundWebhook, now: DateTime<Utc>) -> Result<(), WebhookError> {
        signing::verify_ota(&self.settings.webhook_secrets, webhook, now, self.webhook_tolerance)
    }

    /// One event per `HotelReservation`: its id is the `EchoToken`, or `{EchoToken}/{index}`
    /// (from 0, in document order) when the notification carries several reservations.
    fn parse_webhook(&self, webhook: &InboundWebhook) -> Result<Vec<SupplierEvent>, WebhookError> {
        parse_notification(&webhook.body)
    }

    /// The notification's `EchoToken`, whatever the number of reservations in it.
    fn message_id(&self, events: &[SupplierEvent]) -> Option<String> {
        echo_token(events).map(str::to_owned)
    }

    /// `OTA_HotelResNotifRS` with `<Success/>`, echoing the notification's `EchoToken`.
    fn webhook_ack(&self, events: &[SupplierEvent]) -> WebhookAck {
        WebhookAck { content_type: "application/xml", body: ack_xml(echo_token(events)) }
    }
}
