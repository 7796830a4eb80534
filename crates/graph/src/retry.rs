//! How long to wait between attempts when Graph gives no `Retry-After`.
//!
//! Built on `backon` (the maintained successor of the unmaintained `backoff` crate). The
//! client's pager and the engine's executor both draw their delays from here, so a policy in
//! config means the same thing everywhere.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Attempts and delays for retryable failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (so 1 means "never retry").
    pub max_attempts: u32,
    /// The first backoff delay; each later one doubles.
    pub base_delay: Duration,
    /// No delay exceeds this, jitter included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six attempts, 500 ms doubling up to 30 s: rides out a minute of throttling or outage.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delays before attempts 2..=`max_attempts`: exponential from `base_delay`, with
    /// random jitter (up to the current delay again) so that clients throttled together do not
    /// retry together, capped at `max_delay`.
    pub fn backoff_delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let max_delay = self.max_delay;
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(retries)
            .with_jitter()
            .build()
            .map(move |delay| delay.min(max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_delay_per_retry_growing_and_capped() {
        let policy = RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let delays: Vec<_> = policy.backoff_delays().collect();
        assert_eq!(delays.len(), 7);
        for (i, delay) in delays.iter().enumerate() {
            // Without jitter the i-th delay is base * 2^i (capped); jitter adds at most as much again.
            let floor = (Duration::from_millis(100) * 2u32.pow(u32::try_from(i).expect("small")))
                .min(Duration::from_secs(1));
            assert!(*delay >= floor, "delay {i} = {delay:?} < {floor:?}");
            assert!(
                *delay <= Duration::from_secs(1),
                "delay {i} = {delay:?} above the cap"
            );
        }
    }

    #[test]
    fn single_attempt_means_no_retry() {
        let policy = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff_delays().count(), 0);
        let policy = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff_delays().count(), 0);
    }

    #[test]
    fn default_matches_the_documented_policy() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, 6);
        assert_eq!(policy.backoff_delays().count(), 5);
    }
}
