//! Waiting on a condition instead of sleeping a guessed time.

use std::future::Future;
use std::time::Duration;

/// Checks every 20 ms until `check` answers `Ok`; panics after `timeout` with what the last
/// `Err` said (the state it was waiting to change).
pub async fn eventually<T, Fut>(timeout: Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(state) => assert!(tokio::time::Instant::now() < deadline, "gave up after {timeout:?}: {state}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
