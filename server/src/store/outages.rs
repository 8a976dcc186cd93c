//! What the health probe knows about database outages, for the pool.
//!
//! When PostgreSQL restarts, every connection the pool holds is dead, but
//! the pool only finds out when a request uses one and fails. The health
//! probe notices an outage first (its own connection dies with the others),
//! so it records the moment here, and the pool refuses to hand out a
//! connection opened before it: the request gets a fresh connection instead.
//!
//! While the probe fails, the database is down as far as this server
//! knows: requests are refused at once rather than each waiting out the
//! pool's connect timeout, until the probe answers again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The last outage seen, as a moment the pool can compare connection ages to.
#[derive(Debug)]
pub struct Outages {
    /// The reference point of `last`.
    origin: Instant,
    /// Nanoseconds from `origin` to the last outage; 0 for none.
    last: AtomicU64,
    /// Whether the last probe failed.
    down: AtomicBool,
}

impl Default for Outages {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }
    }
}

impl Outages {
    /// Records that the database failed now: it is down until
    /// [`Outages::record_recovery`].
    pub fn record(&self) {
        let now = self.origin.elapsed().as_nanos().max(1) as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
        self.down.store(true, Ordering::Relaxed);
    }

    /// Records that the database answered again.
    pub fn record_recovery(&self) {
        self.down.store(false, Ordering::Relaxed);
    }

    /// Whether the database failed and has not answered since.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Whether a connection opened `age` ago predates the last outage.
    pub fn predates_last(&self, age: Duration) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        if last == 0 {
            return false;
        }
        let opened = self.origin.elapsed().saturating_sub(age);
        opened <= Duration::from_nanos(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_an_outage_predate_it_and_later_ones_do_not() {
        let outages = Outages::default();
        assert!(!outages.predates_last(Duration::from_secs(3600)), "no outage yet");
        std::thread::sleep(Duration::from_millis(2));
        let before = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        outages.record();
        std::thread::sleep(Duration::from_millis(2));
        let after = Instant::now();
        assert!(outages.predates_last(before.elapsed()));
        assert!(!outages.predates_last(after.elapsed()));
    }

    #[test]
    fn the_database_is_down_from_an_outage_until_its_recovery() {
        let outages = Outages::default();
        assert!(!outages.is_down());
        outages.record();
        assert!(outages.is_down());
        outages.record_recovery();
        assert!(!outages.is_down());
    }
}
