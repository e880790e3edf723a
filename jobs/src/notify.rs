//! Telling the agency: each event is delivered to its callback URL (Standard Webhooks, signed
//! with the agency's secret, retried on the configured schedule, every attempt logged) and
//! emailed to its address, the voucher attached on confirmation.
//!
//! Never an older status after a newer one: an event whose booking changed again since is
//! `superseded` — the newer event carries the booking as it is now — and is not sent unless a
//! person asks (a resend).

use adapters::notify::email::{AgencyEmail, Attachment, Mailer};
use adapters::notify::webhook::{AttemptOutcome, OutboundMessage, WebhookSecret};
use adapters::store::agencies::Agency;
use adapters::store::agency_events::{self, AgencyEvent, AttemptRecord, EventScope, Trigger};
use adapters::store::{StoreError, agencies, agency_webhooks, queue, vouchers};
use domain::agency_event::EndpointVerdict;
use domain::{AgencyEventType, Delivery};

use crate::fanout::{DeliverWebhook, EndpointDisabled, NotifyAgency};
use crate::supplier::{JobError, SupplierJobs};

impl SupplierJobs {
    /// The first webhook attempt and the email of one event. Run again, it does neither twice:
    /// the attempt count and the email's mark are in the event's row.
    #[tracing::instrument(skip_all, fields(event.id = %job.event))]
    pub async fn notify_agency(&self, job: &NotifyAgency) -> Result<(), JobError> {
        let Some(event) = agency_events::find(&self.db, &EventScope::All, &job.event).await? else {
            tracing::warn!("notify job for an event that does not exist");
            return Ok(());
        };
        if agency_events::is_superseded(&self.db, &event).await? {
            if event.delivery == Delivery::Pending && event.attempts == 0 {
                agency_events::set_delivery(&self.db, &event.id, Delivery::Superseded, 0).await?;
            }
            tracing::info!("the booking changed again since; its newer event tells the agency instead");
            return Ok(());
        }
        if event.delivery == Delivery::Pending && event.attempts == 0 {
            self.deliver(&event, Trigger::Scheduled, true).await?;
        }
        if event.emailed_at.is_none() {
            self.email(&event).await?;
        }
        Ok(())
    }

    /// One more attempt: a retry on the schedule (skipped when the event was delivered, given
    /// up or superseded meanwhile), or a resend or recover asked by a person (always made).
    #[tracing::instrument(skip_all, fields(event.id = %job.event))]
    pub async fn deliver_webhook(&self, job: &DeliverWebhook) -> Result<(), JobError> {
        let Some(event) = agency_events::find(&self.db, &EventScope::All, &job.event).await? else {
            return Ok(());
        };
        if job.trigger == Trigger::Scheduled {
            if event.delivery != Delivery::Pending {
                return Ok(());
            }
            if agency_events::is_superseded(&self.db, &event).await? {
                agency_events::set_delivery(&self.db, &event.id, Delivery::Superseded, event.attempts).await?;
                tracing::info!("the booking changed again since; its retries stop");
                return Ok(());
            }
        }
        self.deliver(&event, job.trigger, job.schedule).await
    }

    /// POSTs the event to the agency's endpoint, logs the attempt, judges the endpoint, and —
    /// when `schedule` — queues the next attempt if this one failed and the schedule has one
    /// left. An attempt without `schedule` (a resend) that fails leaves the event's state as
    /// it was: a delivered event stays delivered, a pending one keeps its retries.
    async fn deliver(&self, event: &AgencyEvent, trigger: Trigger, schedule: bool) -> Result<(), JobError> {
        let settings = &self.fanout.webhook_settings;
        let endpoint = agency_webhooks::find(&self.db, &event.agency_id).await?;
        let Some((endpoint, url)) = endpoint.as_ref().and_then(|e| e.target().map(|url| (e, url))) else {
            agency_events::set_delivery(&self.db, &event.id, Delivery::NoEndpoint, event.attempts).await?;
            return Ok(());
        };
        let url: url::Url =
            url.parse().map_err(|e| StoreError::corrupt(format!("agency_webhooks/{}", event.agency_id), e))?;
        let now = adapters::store::now();
        let secrets = endpoint
            .signing_secrets(now)
            .into_iter()
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::corrupt(format!("agency_webhooks/{}", event.agency_id), e))?;
        let body = (self.fanout.event_body)(event);
        let message = OutboundMessage { id: event.id.as_str(), timestamp: now.timestamp(), body: &body };
        let sent = self.fanout.webhooks.send(&url, &message, &secrets.iter().collect::<Vec<_>>()).await;
        let attempt = event.attempts + 1;
        agency_events::record_attempt(
            &self.db,
            &AttemptRecord {
                event_id: event.id.clone(),
                attempt,
                trigger,
                url: url.to_string(),
                status: sent.status,
                duration_ms: i64::try_from(sent.duration.as_millis()).unwrap_or(i64::MAX),
                response_head: sent.response_head.clone(),
                error: sent.error.clone(),
                created_at: now,
            },
        )
        .await?;
        let verdict = EndpointVerdict::judge(sent.status, endpoint.failing_since, now, settings.disable_after);
        let disabled_now = agency_webhooks::record_verdict(&self.db, &event.agency_id, verdict).await?;
        // What a failure leaves: a delivered event stays delivered whatever a resend meets.
        let failed = match event.delivery {
            Delivery::Delivered => Delivery::Delivered,
            _ => Delivery::Failed,
        };
        let delivery = match (sent.outcome(), verdict) {
            (AttemptOutcome::Delivered, _) => Delivery::Delivered,
            (_, EndpointVerdict::Disable(_)) => failed,
            _ if !schedule => match event.delivery {
                Delivery::NoEndpoint => Delivery::Failed,
                unchanged => unchanged,
            },
            _ => match settings.next_retry(usize::try_from(attempt - 1).unwrap_or(usize::MAX)) {
                Some(wait) => {
                    let wait = wait.max(sent.retry_after.unwrap_or_default());
                    queue::push_once(self.db.pool(), &[DeliverWebhook::retry(&event.id, attempt, wait)]).await?;
                    Delivery::Pending
                }
                None => failed,
            },
        };
        agency_events::set_delivery(&self.db, &event.id, delivery, attempt).await?;
        tracing::info!(attempt, status = ?sent.status, delivery = %delivery, "agency webhook attempt");
        if let (true, EndpointVerdict::Disable(reason)) = (disabled_now, verdict) {
            tracing::warn!(agency.id = %event.agency_id, reason, "agency webhook endpoint disabled");
            let notice = EndpointDisabled::notice(&event.agency_id, now);
            queue::push_once(self.db.pool(), &[notice]).await?;
        }
        Ok(())
    }

    /// The mailer and the agency, when email is on and the agency has an address.
    async fn inbox(&self, agency: &domain::AgencyId) -> Result<Option<(&Mailer, Agency)>, JobError> {
        let Some(mailer) = &self.fanout.mailer else {
            return Ok(None);
        };
        let agency = agencies::find(&self.db, agency).await?.filter(|a| a.email.is_some());
        Ok(agency.map(|agency| (mailer, agency)))
    }

    /// The event's email, once; on confirmation with the voucher attached.
    async fn email(&self, event: &AgencyEvent) -> Result<(), JobError> {
        let Some((mailer, agency)) = self.inbox(&event.agency_id).await? else {
            return Ok(());
        };
        let to = agency.email.as_deref().unwrap_or_default();
        let voucher = match event.event_type {
            AgencyEventType::Confirmed => {
                let voucher = vouchers::issue(&self.db, &event.booking.id).await?;
                let pdf = self.voucher_pdf(&event.booking, &voucher, &agency.name)?;
                Some((format!("{}.pdf", voucher.number), pdf))
            }
            _ => None,
        };
        let email = AgencyEmail {
            to,
            agency_name: &agency.name,
            event_id: event.id.as_str(),
            event_type: event.event_type.as_str(),
            booking: &event.booking,
            voucher: voucher.as_ref().map(|(filename, pdf)| Attachment { filename, pdf }),
        };
        mailer.send(&email).await.map_err(JobError::Email)?;
        agency_events::mark_emailed(&self.db, &event.id).await?;
        Ok(())
    }

    /// Tells the agency by email that its endpoint was disabled, and why — if it still is.
    #[tracing::instrument(skip_all, fields(agency.id = %job.agency_id))]
    pub async fn endpoint_disabled(&self, job: &EndpointDisabled) -> Result<(), JobError> {
        let endpoint = agency_webhooks::find(&self.db, &job.agency_id).await?;
        let Some(reason) = endpoint.and_then(|e| e.disabled_reason) else {
            return Ok(());
        };
        let Some((mailer, agency)) = self.inbox(&job.agency_id).await? else {
            return Ok(());
        };
        let to = agency.email.as_deref().unwrap_or_default();
        mailer.send_endpoint_disabled(to, &agency.name, &reason).await.map_err(JobError::Email)
    }
}
