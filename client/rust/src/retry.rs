//! Retries with exponential backoff for idempotent calls.

use std::future::Future;
use std::time::Duration;

use crate::Error;

/// Attempts before giving up (the first try included).
pub const ATTEMPTS: u32 = 5;
/// First pause; it doubles after each failure, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// The pause before attempt `attempt` (1-based; 0 for the first).
pub fn backoff(attempt: u32) -> Duration {
    FIRST_PAUSE.saturating_mul(1 << attempt.min(10)).min(MAX_PAUSE)
}

/// Runs `call` until it succeeds, fails with a non-retryable error, or
/// [`ATTEMPTS`] tries have failed with UNAVAILABLE.
pub async fn idempotent<T, F, Fut>(mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(error) if error.is_retryable() && attempt + 1 < ATTEMPTS => {
                tracing::debug!(%error, attempt, "retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}
