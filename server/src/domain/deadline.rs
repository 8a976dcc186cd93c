//! When the client stops waiting for a request.

use std::time::{Duration, Instant};

/// The most of a deadline's remaining time a statement may use: the rest is
/// left to carry the answer back, so the client hears why the request
/// stopped (DEADLINE_EXCEEDED from the database's cancel) rather than only
/// that its time ran out.
const STATEMENT_SHARE: f64 = 0.9;

/// When the client stops waiting (gRPC's `grpc-timeout`), or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: the request may run as long as the server allows.
    pub const NONE: Deadline = Deadline(None);

    /// The deadline `timeout` after now.
    pub fn after(timeout: Duration) -> Self {
        Self(Instant::now().checked_add(timeout))
    }

    /// The instant, if there is a deadline.
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// How long one statement may run: the server's `statement_timeout`, or
    /// less when the deadline comes first (at least 1 ms, PostgreSQL's unit).
    pub fn statement_timeout(self, statement_timeout: Duration) -> Duration {
        let Some(instant) = self.0 else {
            return statement_timeout;
        };
        let remaining = instant
            .saturating_duration_since(Instant::now())
            .mul_f64(STATEMENT_SHARE);
        remaining.min(statement_timeout).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_deadline_the_server_timeout_applies() {
        assert_eq!(
            Deadline::NONE.statement_timeout(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_near_deadline_shortens_the_statement_timeout() {
        let timeout = Deadline::after(Duration::from_secs(10)).statement_timeout(Duration::from_secs(60));
        assert!(timeout <= Duration::from_secs(9), "{timeout:?}");
        assert!(timeout > Duration::from_secs(8), "{timeout:?}");
    }

    #[test]
    fn a_far_deadline_keeps_the_server_timeout() {
        let timeout = Deadline::after(Duration::from_secs(3600)).statement_timeout(Duration::from_secs(60));
        assert_eq!(timeout, Duration::from_secs(60));
    }

    #[test]
    fn a_passed_deadline_leaves_one_millisecond() {
        let timeout = Deadline::after(Duration::ZERO).statement_timeout(Duration::from_secs(60));
        assert_eq!(timeout, Duration::from_millis(1));
    }
}
