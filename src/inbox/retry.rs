//! Retry policy as data: a schedule of delays plus jitter.
//!
//! The schedule comes from configuration (`retry_schedule`), so operators can
//! stretch it for a long outage and tests can shrink it to milliseconds. The
//! jitter (±10 %) keeps a burst of events that failed together, for example
//! during an image-server outage, from retrying in lockstep.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
    pub max_retries: u32,
}

impl RetryPolicy {
    /// `delays` must not be empty (the configuration loader checks it).
    pub fn new(delays: Vec<Duration>, max_retries: u32) -> Self {
        assert!(
            !delays.is_empty(),
            "a retry schedule needs at least one delay"
        );
        Self {
            delays,
            max_retries,
        }
    }

    /// Delay before retry number `retry_count + 1`; the last entry repeats.
    pub fn base_delay(&self, retry_count: u32) -> Duration {
        let i = (retry_count as usize).min(self.delays.len() - 1);
        self.delays[i]
    }

    /// The base delay scaled by a random factor in [0.9, 1.1).
    pub fn delay_with_jitter(&self, retry_count: u32) -> Duration {
        let base = self.base_delay(retry_count);
        // Any source of randomness will do; a v4 UUID is already at hand.
        let r = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        base.mul_f64(0.9 + 0.2 * r)
    }

    /// Whether an event that has been retried `retry_count` times may try again.
    pub fn may_retry(&self, retry_count: u32) -> bool {
        retry_count < self.max_retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_then_repeats_the_last_delay() {
        let p = RetryPolicy::new(vec![Duration::from_secs(5), Duration::from_secs(10)], 4);
        assert_eq!(p.base_delay(0), Duration::from_secs(5));
        assert_eq!(p.base_delay(1), Duration::from_secs(10));
        assert_eq!(p.base_delay(7), Duration::from_secs(10));
        for _ in 0..100 {
            let d = p.delay_with_jitter(0);
            assert!(
                d >= Duration::from_millis(4500) && d < Duration::from_millis(5500),
                "{d:?}"
            );
        }
        assert!(p.may_retry(3));
        assert!(!p.may_retry(4));
    }
}
