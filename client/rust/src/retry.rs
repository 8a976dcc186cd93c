//! The retry policy: which failures are retried, and how long to pause
//! between attempts. This is the Rust client's (and so the CLI's) one
//! implementation of the table in `docs/retries.md`; the Python and
//! TypeScript clients implement the same table.

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::Code;

use crate::Error;

/// How failed calls are retried: see `docs/retries.md` for the table of
/// codes and calls. The pause before retry `n` (1-based) is drawn uniformly
/// from zero to `min(max_backoff, initial_backoff × 2^(n−1))` (full
/// jitter), and no retry starts once `budget` has passed since the first
/// attempt (since the last progress, for a stream), so a server that keeps
/// failing is given up on in bounded time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts of a call (unary calls, the start of a search), the first
    /// included: 1 means no retry.
    pub max_attempts: u32,
    /// Attempts of a resumable upsert stream or a scroll without progress in
    /// between (an acknowledged batch, a received document), the first
    /// included: a stream resumes where it was, so it tries longer.
    pub max_stream_attempts: u32,
    /// Ceiling of the first pause; the ceiling doubles after each failure.
    pub initial_backoff: Duration,
    /// Highest ceiling of a pause.
    pub max_backoff: Duration,
    /// No retry starts once this long has passed since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts (10 for streams), pauses from 100 ms doubling to 2 s,
    /// within 10 s: the table's defaults.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_stream_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            budget: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries: every call is tried once.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            max_stream_attempts: 1,
            ..Self::default()
        }
    }

    /// The ceiling of the pause before retry `retry` (1-based).
    fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Whether the table retries a call that failed with `error` (when the call
/// is one it retries): UNAVAILABLE (the server or the database could not be
/// reached, or the connection broke), and RESOURCE_EXHAUSTED when the server
/// marked it as busy (a `google.rpc.RetryInfo` detail). Nothing else: a
/// RESOURCE_EXHAUSTED without the mark (too large), DEADLINE_EXCEEDED and
/// every refusal of the request itself fail the same way again.
pub fn is_retryable(error: &Error) -> bool {
    match error.code() {
        Some(Code::Unavailable) => true,
        Some(Code::ResourceExhausted) => error.is_busy(),
        _ => false,
    }
}

/// The retries of one call or stream: counts failures since the last
/// progress and says how long to pause before the next attempt, if any.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    max_attempts: u32,
    failures: u32,
    since: Instant,
}

impl Backoff {
    /// The retries of a call (unary, or the start of a search).
    pub(crate) fn call(policy: RetryPolicy) -> Self {
        Self::with_attempts(policy, policy.max_attempts)
    }

    /// The reconnects of a stream: `max_attempts` without progress.
    pub(crate) fn with_attempts(policy: RetryPolicy, max_attempts: u32) -> Self {
        Self {
            policy,
            max_attempts: max_attempts.max(1),
            failures: 0,
            since: Instant::now(),
        }
    }

    /// The last attempt got somewhere: failures count afresh from here.
    pub(crate) fn progressed(&mut self) {
        self.failures = 0;
        self.since = Instant::now();
    }

    /// The pause before retrying after `error`, or None: give up (the error
    /// is not retried, or the attempts or the time budget are spent).
    pub(crate) fn next_pause(&mut self, error: &Error) -> Option<Duration> {
        if !is_retryable(error) || self.failures + 1 >= self.max_attempts {
            return None;
        }
        self.failures += 1;
        let pause = self.policy.ceiling(self.failures).mul_f64(fastrand::f64());
        (self.since.elapsed() + pause <= self.policy.budget).then_some(pause)
    }
}

/// Runs `call` under `policy`: until it succeeds, fails with an error the
/// table does not retry, or the attempts or the budget are spent.
pub(crate) async fn idempotent<T, F, Fut>(policy: RetryPolicy, mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut backoff = Backoff::call(policy);
    loop {
        match call().await {
            Err(error) => match backoff.next_pause(&error) {
                Some(pause) => {
                    tracing::debug!(%error, ?pause, "retrying");
                    tokio::time::sleep(pause).await;
                }
                None => return Err(error),
            },
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, busy: bool) -> Error {
        Error::Status {
            code,
            message: String::new(),
            violations: Vec::new(),
            busy,
        }
    }

    #[test]
    fn the_table_retries_unavailable_and_busy_refusals_only() {
        assert!(is_retryable(&status(Code::Unavailable, false)));
        assert!(is_retryable(&status(Code::ResourceExhausted, true)));
        for permanent in [
            Code::ResourceExhausted,
            Code::DeadlineExceeded,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Internal,
        ] {
            assert!(!is_retryable(&status(permanent, false)), "{permanent:?}");
        }
    }

    #[test]
    fn pauses_stay_under_their_doubling_ceiling_and_attempts_are_bounded() {
        let policy = RetryPolicy::default();
        let mut backoff = Backoff::call(policy);
        let unavailable = status(Code::Unavailable, false);
        for retry in 1..policy.max_attempts {
            let pause = backoff.next_pause(&unavailable).expect("a retry");
            assert!(pause <= policy.ceiling(retry), "retry {retry}: {pause:?}");
        }
        assert_eq!(backoff.next_pause(&unavailable), None);
        assert_eq!(policy.ceiling(1), Duration::from_millis(100));
        assert_eq!(policy.ceiling(30), policy.max_backoff);
    }

    #[test]
    fn no_retry_starts_past_the_budget() {
        let policy = RetryPolicy {
            budget: Duration::ZERO,
            initial_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let mut backoff = Backoff::call(policy);
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(backoff.next_pause(&status(Code::Unavailable, false)), None);
    }
}
