//! Latency of one command: samples sent back to back in one transaction, their percentiles
//! (nearest rank) and the APDU rate.

use super::failure::CheckFailure;
use serde::{Deserialize, Serialize};
use sscard_transport::Transaction;
use std::time::{Duration, Instant};

/// Latency figures of one command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// The command measured (`READ RECORD`, `ECHO 128 bytes`): the key of the threshold
    /// profile's per-command limits.
    pub command: String,
    pub samples: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub apdus_per_s: f64,
}

impl Latency {
    /// The figures of `times` (any order) taken over `total`.
    pub fn of(command: &str, mut times: Vec<Duration>, total: Duration) -> Self {
        times.sort();
        Self {
            command: command.into(),
            samples: times.len(),
            min_ms: percentile(&times, 0.0),
            p50_ms: percentile(&times, 50.0),
            p90_ms: percentile(&times, 90.0),
            p95_ms: percentile(&times, 95.0),
            p99_ms: percentile(&times, 99.0),
            max_ms: percentile(&times, 100.0),
            apdus_per_s: if total.is_zero() {
                0.0
            } else {
                times.len() as f64 / total.as_secs_f64()
            },
        }
    }

    /// `p50 0.210 ms, p95 …`: the figure of a report.
    pub fn figure(&self) -> String {
        format!(
            "p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {:.0} APDU/s ({} samples)",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms, self.apdus_per_s, self.samples
        )
    }
}

/// Percentile of sorted samples (nearest rank; 0 is the smallest), in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Sends `once` `samples` times in `tx` and times each.
pub fn measure(
    tx: &mut Transaction<'_>,
    command: &str,
    samples: usize,
    mut once: impl FnMut(&mut Transaction<'_>) -> Result<(), CheckFailure>,
) -> Result<Latency, CheckFailure> {
    let mut times = Vec::with_capacity(samples);
    let all = Instant::now();
    for i in 0..samples {
        let t0 = Instant::now();
        once(tx).map_err(|e| e.within(format!("sample {}", i + 1)))?;
        times.push(t0.elapsed());
    }
    Ok(Latency::of(command, times, all.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of(
            "X",
            ms(&[10, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            Duration::from_secs(1),
        );
        assert_eq!(
            (l.min_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.max_ms),
            (1.0, 5.0, 9.0, 10.0, 10.0, 10.0)
        );
        assert_eq!(l.apdus_per_s, 10.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
