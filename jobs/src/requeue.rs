//! Requeueing the messages that waited for a code mapping, after staff set one: in the
//! background and in batches, so that a mapping `PUT` answers at once however many messages
//! wait, and no request or job holds thousands of rows (bodies up to 1 MiB) at a time. Each
//! batch reads ids only, replays them, and queues the next batch after its last id.

use adapters::store::queue;
use adapters::store::queue::EnqueuedJob;
use adapters::store::webhooks::{self, EventStatus};
use domain::{SupplierCode, WebhookEventId};
use serde::{Deserialize, Serialize};

use crate::supplier::{JobError, SupplierJobs};
use crate::{ProcessWebhook, enqueued};

/// Messages replayed by one job.
pub const REQUEUE_BATCH: u64 = 100;

/// Replays a supplier's `needs_mapping` messages with ids after `after`, [`REQUEUE_BATCH`] at
/// a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequeueWaiting {
    pub supplier: SupplierCode,
    pub after: Option<WebhookEventId>,
    /// Names the mapping change that asked for it, for the batches' idempotency keys.
    pub request: String,
}

impl RequeueWaiting {
    pub const QUEUE: &'static str = "bookhub.requeue_waiting";

    /// The first batch for a mapping change; `request` makes each change's chain its own.
    pub fn for_supplier(supplier: &SupplierCode, request: &str) -> EnqueuedJob {
        let job = RequeueWaiting { supplier: supplier.clone(), after: None, request: request.to_owned() };
        enqueued(Self::QUEUE, &job, format!("{supplier}:{request}"))
    }

    fn next(&self, after: &WebhookEventId) -> EnqueuedJob {
        let job = RequeueWaiting { after: Some(after.clone()), ..self.clone() };
        enqueued(Self::QUEUE, &job, format!("{}:{}:{after}", self.supplier, self.request))
    }
}

impl SupplierJobs {
    /// One batch: replays each waiting message (one replayed or processed meanwhile is
    /// skipped), then queues the next batch when this one was full.
    #[tracing::instrument(skip_all, fields(supplier = %job.supplier))]
    pub async fn requeue_waiting(&self, job: &RequeueWaiting) -> Result<(), JobError> {
        let ids = webhooks::needing_mapping(&self.db, &job.supplier, job.after.as_ref(), REQUEUE_BATCH).await?;
        for id in &ids {
            let waiting = [EventStatus::NeedsMapping];
            match webhooks::replay(&self.db, id, &waiting, |n| ProcessWebhook::for_event(id, n)).await {
                Ok(_) | Err(adapters::store::StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(last) = ids.last().filter(|_| ids.len() as u64 == REQUEUE_BATCH) {
            queue::push(self.db.pool(), &[job.next(last)]).await?;
        }
        tracing::info!(requeued = ids.len(), "messages waiting for a mapping requeued");
        Ok(())
    }
}
