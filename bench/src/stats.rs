//! Summaries of measurements: percentiles of one run's latencies, and the
//! median with min and max of a figure over repeated runs.

use std::time::Duration;

/// The median, min and max of one figure over repeated runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// Summarises `values`; NaN for none.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Self {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Latency percentiles and throughput of one timed run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyRun {
    /// Median latency, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Completed queries per second of wall time.
    pub qps: f64,
    /// Queries completed.
    pub queries: usize,
}

impl LatencyRun {
    /// Summarises the latencies of every query completed in `elapsed`.
    pub fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let at = |p: f64| {
            latencies
                .get(nearest_rank(latencies.len(), p))
                .map_or(f64::NAN, |d| ms(*d))
        };
        Self {
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            qps: latencies.len() as f64 / elapsed.as_secs_f64(),
            queries: latencies.len(),
        }
    }
}

/// The index of the `p` quantile of `n` sorted values (nearest-rank method).
fn nearest_rank(n: usize, p: f64) -> usize {
    ((p * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1
}

/// The spreads of a latency run's figures over repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySpread {
    /// p50 in milliseconds.
    pub p50_ms: Spread,
    /// p95 in milliseconds.
    pub p95_ms: Spread,
    /// p99 in milliseconds.
    pub p99_ms: Spread,
    /// Queries per second.
    pub qps: Spread,
}

impl LatencySpread {
    /// Summarises repeated runs.
    pub fn of(runs: &[LatencyRun]) -> Self {
        let spread = |figure: fn(&LatencyRun) -> f64| Spread::of(&runs.iter().map(figure).collect::<Vec<_>>());
        Self {
            p50_ms: spread(|r| r.p50_ms),
            p95_ms: spread(|r| r.p95_ms),
            p99_ms: spread(|r| r.p99_ms),
            qps: spread(|r| r.qps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let spread = Spread::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((spread.median, spread.min, spread.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let latencies = (1..=100).map(Duration::from_millis).collect();
        let run = LatencyRun::of(latencies, Duration::from_secs(1));
        assert_eq!((run.p50_ms, run.p95_ms, run.p99_ms), (50.0, 95.0, 99.0));
        assert_eq!(run.qps, 100.0);
    }
}
