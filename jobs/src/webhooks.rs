//! Processing a logged supplier webhook: parse it with the supplier's adapter, translate its
//! codes, and apply each event to its booking through the state machine. Idempotent and
//! order-tolerant: repeats and late events change nothing; every change fans out once.

use adapters::store::bookings::{self, Applied};
use adapters::store::webhooks::{self, EventStatus, Outcome};
use domain::supplier::SupplierEvent;
use domain::{BookingEvent, BookingId, SupplierAdapter, SupplierCode, WebhookEventId};
use mappings::{CodeKind, Translator};

use crate::fanout;
use crate::supplier::{JobError, SupplierJobs, booking_event};

impl SupplierJobs {
    #[tracing::instrument(skip_all, fields(webhook.id = %id))]
    pub async fn process_webhook(&self, id: &WebhookEventId) -> Result<(), JobError> {
        let Some(logged) = webhooks::find(&self.db, id).await? else {
            tracing::warn!("processing job for a webhook that is not logged");
            return Ok(());
        };
        let outcome = self.outcome(&logged).await?;
        if outcome.status != EventStatus::Applied {
            // The detail stays in the log row: a parse error can quote the body's personal data.
            tracing::info!(status = outcome.status.as_str(), "webhook not applied");
        }
        webhooks::set_outcome(&self.db, id, &outcome).await?;
        Ok(())
    }

    async fn outcome(&self, logged: &webhooks::WebhookEvent) -> Result<Outcome, JobError> {
        let done = |status, detail: Option<String>| Outcome { status, detail, booking_id: None, missing_codes: vec![] };
        let adapter = logged.supplier.parse::<SupplierCode>().ok().and_then(|code| self.suppliers.get(&code));
        let Some(adapter) = adapter else {
            return Ok(done(EventStatus::Ignored, Some("the supplier is no longer configured".into())));
        };
        let inbound = logged.request();
        let events = match adapter.parse_webhook(&inbound) {
            Ok(events) => events,
            Err(e) => return Ok(done(EventStatus::Ignored, Some(e.to_string()))),
        };
        // Every code must translate before anything is applied. A code missing from the cached
        // rows is looked up again in the database before the message is set aside.
        let translator = self.mappings.translator(adapter.code()).await?;
        let (changes, missing) = translate(&translator, &events);
        let (changes, mut missing) = if missing.is_empty() {
            (changes, missing)
        } else {
            translate(&*self.mappings.fresh_translator(adapter.code()).await?, &events)
        };
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            let listed: Vec<_> = missing.iter().map(|(kind, code)| format!("{}:{code}", kind.as_str())).collect();
            return Ok(Outcome {
                status: EventStatus::NeedsMapping,
                detail: Some(format!("no mapping for {}", listed.join(", "))),
                booking_id: None,
                missing_codes: missing.into_iter().map(|(kind, code)| (kind.as_str().to_owned(), code)).collect(),
            });
        }

        let mut outcome = done(EventStatus::Applied, None);
        for (event, change) in changes {
            let booking_id = event.booking.client_reference.as_deref().and_then(|r| r.parse::<BookingId>().ok());
            let Some(booking_id) = booking_id else {
                return Ok(done(EventStatus::Parked, Some("the event names no bookhub booking".into())));
            };
            outcome.booking_id = Some(booking_id.clone());
            // A supplier's events touch only the bookings made with it.
            let scope = bookings::for_supplier(adapter.code());
            match bookings::apply_event(&self.db, &scope, &booking_id, &change, fanout::for_outcome).await? {
                Applied::NotFound => {
                    outcome.status = EventStatus::Parked;
                    outcome.detail = Some(format!("booking {booking_id} is unknown"));
                }
                Applied::Refused(refused, _) => {
                    outcome.status = EventStatus::Ignored;
                    outcome.detail = Some(refused.to_string());
                }
                Applied::Changed(b) => outcome.detail = Some(format!("booking is now {}", b.status)),
                Applied::Unchanged(b) => outcome.detail = Some(format!("booking stays {}", b.status)),
                Applied::CancelQueued(b) => {
                    outcome.detail = Some(format!("booking stays {}; cancelling it at the supplier", b.status))
                }
            }
        }
        Ok(outcome)
    }
}

/// Each event with the booking change it means.
type Changes<'a> = Vec<(&'a SupplierEvent, BookingEvent)>;

/// Each event's booking change, and the codes that have no mapping.
fn translate<'a>(translator: &Translator, events: &'a [SupplierEvent]) -> (Changes<'a>, Vec<(CodeKind, String)>) {
    let mut missing = Vec::new();
    let mut changes = Vec::new();
    for event in events {
        for (room, board) in &event.booking.rooms {
            if let Err(unmapped) = translator.room(room, board) {
                missing.extend(unmapped.missing);
            }
        }
        match booking_event(translator, &event.booking) {
            Ok(change) => changes.push((event, change)),
            Err(unmapped) => missing.extend(unmapped.missing),
        }
    }
    (changes, missing)
}
