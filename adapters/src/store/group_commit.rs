//! A group commit: concurrent requests share one durable write.
//!
//! Each request hands its item to a writer and waits. A writer takes every item that is
//! waiting (up to `max_batch`), writes them with one [`GroupWrite::write_batch`] call, and only
//! after the commit answers each request. Under load many requests share one commit; alone, a
//! request waits for nobody. The engine knows nothing of what it writes: the booking intake
//! (`super::booking_intake`) and the webhook intake (`super::webhook_intake`) are its two users.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Database, Pool, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct IntakeConfig {
    /// Most requests written in one transaction.
    pub max_batch: usize,
    /// Writers working at once: one can commit while the next gathers its batch.
    pub writers: usize,
}

type Reply<O> = oneshot::Sender<Result<O, StoreError>>;

/// A kind of write that concurrent requests can share a commit for: each request is one item,
/// and a batch of items is written durably by one call.
pub(crate) trait GroupWrite: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Outcome: Send + 'static;
    /// Names the intake in logs.
    const NAME: &'static str;

    /// Writes `items` in one commit and returns one outcome per item, in order; an error fails
    /// the whole batch (nothing of it is committed).
    fn write_batch(
        pool: &Pool,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Self::Outcome>, StoreError>> + Send;
}

/// A group commit: each request hands its item to a writer and waits. A writer takes every
/// item that is waiting (up to `max_batch`), writes them with [`GroupWrite::write_batch`], and
/// only after the commit answers each request. Under load many requests share one commit;
/// alone, a request waits for nobody.
pub(crate) struct GroupCommit<W: GroupWrite> {
    queue: mpsc::Sender<(W::Item, Reply<W::Outcome>)>,
}

impl<W: GroupWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        GroupCommit { queue: self.queue.clone() }
    }
}

impl<W: GroupWrite> std::fmt::Debug for GroupCommit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("intake", &W::NAME).finish_non_exhaustive()
    }
}

impl<W: GroupWrite> GroupCommit<W> {
    /// Starts the writers; they stop when every handle to the intake is dropped.
    pub(crate) fn start(db: Database, config: IntakeConfig) -> Self {
        let (queue, rx) = mpsc::channel(config.max_batch.max(1) * config.writers.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..config.writers.max(1) {
            tokio::spawn(run_writer::<W>(db.clone(), rx.clone(), config.max_batch.max(1)));
        }
        GroupCommit { queue }
    }

    /// Writes the item durably; returns after the commit.
    pub(crate) async fn submit(&self, item: W::Item) -> Result<W::Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((item, reply)).await.map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

type Inbox<W> = Arc<Mutex<mpsc::Receiver<(<W as GroupWrite>::Item, Reply<<W as GroupWrite>::Outcome>)>>>;

async fn run_writer<W: GroupWrite>(db: Database, rx: Inbox<W>, max_batch: usize) {
    loop {
        let mut batch = Vec::with_capacity(max_batch);
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        for (reply, outcome) in replies.into_iter().zip(write::<W>(db.pool(), &items).await) {
            // The requester may have gone (client hung up); the rows are committed regardless.
            let _ = reply.send(outcome);
        }
    }
}

/// Writes the batch. If the database refused the data, writes each item alone so that one bad
/// item fails only itself; if it could not be reached, the whole batch fails at once rather than
/// waiting out the outage item by item.
async fn write<W: GroupWrite>(pool: &Pool, items: &[W::Item]) -> Vec<Result<W::Outcome, StoreError>> {
    match W::write_batch(pool, items).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if items.len() == 1 || !matches!(e, StoreError::Sqlx(sqlx::Error::Database(_))) => {
            tracing::error!(intake = W::NAME, error = %e, batch.size = items.len(), "intake write failed");
            let cause = std::sync::Arc::new(e);
            items.iter().map(|_| Err(StoreError::Batch(cause.clone()))).collect()
        }
        Err(e) => {
            tracing::warn!(intake = W::NAME, error = %e, batch.size = items.len(), "batched write failed; writing items one by one");
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                outcomes.push(match W::write_batch(pool, std::slice::from_ref(item)).await {
                    Ok(mut one) => one.pop().ok_or(StoreError::NoOutcome),
                    Err(e) => {
                        tracing::error!(intake = W::NAME, error = %e, batch.size = 1, "intake write failed");
                        Err(StoreError::Batch(std::sync::Arc::new(e)))
                    }
                });
            }
            outcomes
        }
    }
}
