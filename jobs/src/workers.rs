//! The apalis workers that run bookhub's queues, on the app's own database (apalis-postgres or
//! apalis-sqlite, sharing the app's pool).
//!
//! A job that fails is rescheduled with exponential backoff and full jitter (or the supplier's
//! `Retry-After`) by moving its `run_at`; apalis would otherwise fetch it again at once. A job
//! whose payload does not parse is killed: retrying cannot fix it.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use adapters::store::{Pool, queue};
use adapters::suppliers::resilience::FullJitter;
use apalis::prelude::*;
use apalis_core::backend::codec::Codec;
use apalis_postgres::{Config as PgConfig, PostgresStorage, Pubsub};
use apalis_sqlite::{Config as SqliteConfig, SqliteStorage};
use tokio::task::JoinHandle;

use crate::fanout::{DeliverWebhook, EndpointDisabled, IssueVoucher, NotifyAgency, UpdateCrm};
use crate::supplier::{JobError, SupplierJobs, chain};
use crate::{CancelBooking, ProcessWebhook, RequeueWaiting, SubmitBooking};

/// How the workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs of one queue in flight at once, in this process.
    pub concurrency: usize,
    /// How often an idle worker looks for due jobs (Postgres is also woken on insert).
    pub poll_interval: Duration,
    /// A failed job waits up to `retry_base · 2^(attempt-1)` (full jitter), capped.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Liveness reports; a worker silent for `heartbeat × missed_heartbeats` has its running
    /// jobs taken back and run elsewhere.
    pub heartbeat: Duration,
    pub missed_heartbeats: usize,
}

/// The running workers; [`Workers::stop`] lets in-flight jobs finish.
pub struct Workers {
    contexts: Vec<WorkerContext>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("workers", &self.tasks.len()).finish()
    }
}

/// Hands the stored bytes to the handler untouched: a payload that does not parse then fails
/// one job (killed, visible) instead of stopping the worker.
#[derive(Debug, Clone, Copy, Default)]
struct RawBytes;

impl Codec<Vec<u8>> for RawBytes {
    type Error = std::convert::Infallible;
    type Compact = Vec<u8>;

    fn encode(&self, v: &Vec<u8>) -> Result<Vec<u8>, Self::Error> {
        Ok(v.clone())
    }

    fn decode(&self, v: &Vec<u8>) -> Result<Vec<u8>, Self::Error> {
        Ok(v.clone())
    }
}

/// Polls on a steady tick. (apalis's interval strategy can lose its wake-up and then waits for
/// the next heartbeat, seconds later.)
struct Tick(tokio::time::Interval);

impl Tick {
    fn every(period: Duration) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Tick(interval)
    }
}

impl PollStrategy for Tick {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut fired = false;
        while self.0.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired { Poll::Ready(Some(())) } else { Poll::Pending }
    }
}

/// Every queue the workers run, by name.
pub(crate) fn queue_names() -> impl Iterator<Item = &'static str> {
    Queue::ALL.into_iter().map(Queue::name)
}

/// Which job a queue carries.
#[derive(Debug, Clone, Copy)]
enum Queue {
    Submit,
    Cancel,
    ProcessWebhook,
    RequeueWaiting,
    Reconcile,
    UpdateCrm,
    NotifyAgency,
    DeliverWebhook,
    IssueVoucher,
    Bill,
    FinanceReport,
    EndpointDisabled,
}

impl Queue {
    const ALL: [Queue; 12] = [
        Queue::Submit,
        Queue::Cancel,
        Queue::ProcessWebhook,
        Queue::RequeueWaiting,
        Queue::Reconcile,
        Queue::UpdateCrm,
        Queue::NotifyAgency,
        Queue::DeliverWebhook,
        Queue::IssueVoucher,
        Queue::Bill,
        Queue::FinanceReport,
        Queue::EndpointDisabled,
    ];

    fn name(self) -> &'static str {
        match self {
            Queue::Submit => SubmitBooking::QUEUE,
            Queue::Cancel => CancelBooking::QUEUE,
            Queue::ProcessWebhook => ProcessWebhook::QUEUE,
            Queue::RequeueWaiting => RequeueWaiting::QUEUE,
            Queue::Reconcile => crate::reconcile::Reconcile::QUEUE,
            Queue::UpdateCrm => UpdateCrm::QUEUE,
            Queue::NotifyAgency => NotifyAgency::QUEUE,
            Queue::DeliverWebhook => DeliverWebhook::QUEUE,
            Queue::IssueVoucher => IssueVoucher::QUEUE,
            Queue::Bill => crate::billing::Bill::QUEUE,
            Queue::FinanceReport => crate::finance_report::SendFinanceReport::QUEUE,
            Queue::EndpointDisabled => EndpointDisabled::QUEUE,
        }
    }
}

#[derive(Debug)]
struct Runner {
    jobs: SupplierJobs,
    config: WorkerConfig,
}

impl Workers {
    /// Starts one worker per queue.
    pub fn start(jobs: SupplierJobs, config: WorkerConfig) -> Workers {
        let pool = jobs.db.pool().clone();
        let runner = Arc::new(Runner { jobs, config });
        let mut workers = Workers { contexts: Vec::new(), tasks: Vec::new() };
        for queue in Queue::ALL {
            // Names must be unique across processes and restarts.
            let context = WorkerContext::new(&format!("{}-{}-{}", queue.name(), std::process::id(), ulid::Ulid::new()));
            workers.contexts.push(context.clone());
            workers.tasks.push(spawn(&pool, queue, context, runner.clone()));
        }
        workers
    }

    /// Stops fetching, lets in-flight jobs finish (up to 10 s), and returns.
    pub async fn stop(self) {
        for context in &self.contexts {
            let _ = context.stop();
        }
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), task).await.is_err() {
                tracing::warn!("a worker did not stop within 10 s");
            }
        }
    }
}

fn spawn(pool: &Pool, queue: Queue, context: WorkerContext, runner: Arc<Runner>) -> JoinHandle<()> {
    let (concurrency, heartbeat, missed) =
        (runner.config.concurrency, runner.config.heartbeat, runner.config.missed_heartbeats);
    let batch = concurrency.min(10);
    let tick = Tick::every(runner.config.poll_interval);
    let runner = Arc::new(QueueRunner { runner, queue });
    let worker = WorkerBuilder::new(&context);
    let finished = match pool {
        Pool::Postgres(p) => {
            let config = PgConfig::default()
                .queue(queue.name())
                .batch_size(batch)
                .heartbeat_interval(heartbeat)
                .missed_heartbeats(missed);
            let storage =
                PostgresStorage::<Vec<u8>>::new(p).with_config(config).with_codec(RawBytes).poll_with_strategy(
                    Strategy::new().apply(tick).stream(Pubsub::new(p.clone(), queue.name().to_owned())),
                );
            let worker = worker.backend(storage).data(runner).concurrency(concurrency).build(run);
            tokio::spawn(async move { worker.run().await.map_err(|e| e.to_string()) })
        }
        Pool::Sqlite(p) => {
            let config = SqliteConfig::default()
                .queue(queue.name())
                .batch_size(batch)
                .heartbeat_interval(heartbeat)
                .missed_heartbeats(missed);
            let storage =
                SqliteStorage::<Vec<u8>>::new(p).with_config(config).with_codec(RawBytes).poll_with_strategy(tick);
            let worker = worker.backend(storage).data(runner).concurrency(concurrency).build(run);
            tokio::spawn(async move { worker.run().await.map_err(|e| e.to_string()) })
        }
    };
    tokio::spawn(async move {
        match finished.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(queue = queue.name(), error = %e, "worker stopped"),
            Err(e) => tracing::error!(queue = queue.name(), error = %e, "worker panicked"),
        }
    })
}

/// What one queue's worker runs.
#[derive(Debug)]
struct QueueRunner {
    runner: Arc<Runner>,
    queue: Queue,
}

async fn run(payload: Vec<u8>, this: Data<Arc<QueueRunner>>, id: TaskId, attempt: Attempt) -> Result<(), BoxDynError> {
    let result = this.runner.jobs.run_job(this.queue.name(), &payload, attempt.current()).await?;
    this.runner.settle(this.queue, result, &id, &attempt).await
}

impl Runner {
    /// A failure reschedules the job: it runs again after the backoff (or the supplier's
    /// `Retry-After`, when longer), until apalis's attempt limit.
    async fn settle(
        &self,
        queue: Queue,
        result: Result<(), JobError>,
        id: &TaskId,
        attempt: &Attempt,
    ) -> Result<(), BoxDynError> {
        let Err(error) = result else { return Ok(()) };
        if error.gives_up(attempt.current()) {
            tracing::error!(queue = queue.name(), attempt = attempt.current(), error = %chain(&error), "job given up");
            // The whole chain is the reason staff read at `GET /v1/jobs?status=dead`.
            return Err(AbortError::new(chain(&error)).into());
        }
        let delay = self.backoff(attempt.current(), error.retry_after());
        tracing::warn!(queue = queue.name(), attempt = attempt.current(), retry_in_ms = delay.as_millis() as u64, error = %chain(&error), "job failed; retrying later");
        if let Err(e) = queue::retry_later(self.jobs.db.pool(), &id.to_string(), delay).await {
            tracing::error!(queue = queue.name(), error = %e, "could not reschedule a failed job; it runs again at once");
        }
        Err(chain(&error).into())
    }

    /// Attempt `n` (from 1) failed: the full-jitter wait before retry `n - 1`, or the
    /// supplier's `Retry-After` when longer.
    fn backoff(&self, attempt: usize, retry_after: Option<Duration>) -> Duration {
        let retry = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        let jittered = FullJitter::new(self.config.retry_base, self.config.retry_cap).wait(retry);
        jittered.max(retry_after.unwrap_or_default())
    }
}
