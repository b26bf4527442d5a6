//! Per-client rate limits: a token bucket per client, refilled continuously. The clock is a
//! parameter so tests step it instead of sleeping.

use crate::policy::Rate;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets by client key.
#[derive(Default)]
pub struct RateLimiter<K> {
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub fn new() -> Self {
        Self {
            buckets: HashMap::new(),
        }
    }

    /// Takes one token from `client`'s bucket at time `now`: `false` when it is empty.
    pub fn admit(&mut self, client: K, rate: Rate, now: Instant) -> bool {
        let burst = f64::from(rate.burst);
        let b = self.buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate.per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let rate = Rate {
            per_second: 2.0,
            burst: 3,
        };
        let mut l = RateLimiter::new();
        let t0 = Instant::now();
        assert_eq!(
            [0; 4].map(|_| l.admit("a", rate, t0)),
            [true, true, true, false]
        );
        // Another client has its own bucket.
        assert!(l.admit("b", rate, t0));
        // Half a second gives one token back at 2 per second.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!([0; 2].map(|_| l.admit("a", rate, t1)), [true, false]);
        // A long pause refills to the burst, no more.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(
            [0; 4].map(|_| l.admit("a", rate, t2)),
            [true, true, true, false]
        );
    }
}
