//! Graph's throttling, as a sliding-window counter per quota class.
//!
//! A request is admitted when fewer than `limit` requests of its class were admitted within the
//! last `window`; otherwise it is refused with the time until the oldest admitted one leaves
//! the window. Refused requests do not count, like Graph's.

use crate::route::QuotaClass;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// One quota class's limit: at most `limit` requests per sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaLimit {
    /// Requests admitted per window.
    pub limit: NonZeroU32,
    /// The window length, as a humantime duration (`1s`, `150s`).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl QuotaLimit {
    const fn new(limit: u32, window_secs: u64) -> QuotaLimit {
        QuotaLimit {
            limit: match NonZeroU32::new(limit) {
                Some(n) => n,
                None => NonZeroU32::MIN,
            },
            window: Duration::from_secs(window_secs),
        }
    }
}

/// The scenario's `quotas:` section; each class defaults to Graph's published limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// riskyUsers, riskDetections, confirmCompromised, dismiss: 1 per 1 s, 429 without Retry-After.
    pub identity_protection: QuotaLimit,
    /// signIns: 5 per 10 s, 429 with Retry-After.
    pub reports: QuotaLimit,
    /// revokeSignInSessions and user PATCH: 3000 per 150 s, 429 with Retry-After.
    pub directory_write: QuotaLimit,
    /// user and group-membership reads: 3500 per 10 s, 429 with Retry-After.
    pub directory_read: QuotaLimit,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            identity_protection: QuotaLimit::new(1, 1),
            reports: QuotaLimit::new(5, 10),
            directory_write: QuotaLimit::new(3000, 150),
            directory_read: QuotaLimit::new(3500, 10),
        }
    }
}

impl Quotas {
    fn limit(&self, class: QuotaClass) -> QuotaLimit {
        match class {
            QuotaClass::IdentityProtection => self.identity_protection,
            QuotaClass::Reports => self.reports,
            QuotaClass::DirectoryWrite => self.directory_write,
            QuotaClass::DirectoryRead => self.directory_read,
        }
    }
}

/// Admission times per class, pruned as they leave the window.
#[derive(Debug)]
pub(crate) struct Limiter {
    quotas: Quotas,
    admitted: HashMap<QuotaClass, VecDeque<Instant>>,
}

impl Limiter {
    pub(crate) fn new(quotas: Quotas) -> Limiter {
        Limiter {
            quotas,
            admitted: HashMap::new(),
        }
    }

    /// Admits a request at `now`, or returns how long until a slot frees.
    pub(crate) fn admit(&mut self, class: QuotaClass, now: Instant) -> Result<(), Duration> {
        let QuotaLimit { limit, window } = self.quotas.limit(class);
        let times = self.admitted.entry(class).or_default();
        while times
            .front()
            .is_some_and(|&t| now.duration_since(t) >= window)
        {
            times.pop_front();
        }
        if times.len() < limit.get() as usize {
            times.push_back(now);
            return Ok(());
        }
        // The window is full, so it has an oldest entry; an empty deque would have been admitted.
        let oldest = times.front().copied().unwrap_or(now);
        Err(window.saturating_sub(now.duration_since(oldest)))
    }
}

/// `Retry-After` seconds for a wait: rounded up, and at least 1 so a client never spins.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_admits_limit_then_refuses_until_oldest_leaves() {
        let mut limiter = Limiter::new(Quotas {
            reports: QuotaLimit::new(2, 10),
            ..Quotas::default()
        });
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(limiter.admit(QuotaClass::Reports, at(0)), Ok(()));
        assert_eq!(limiter.admit(QuotaClass::Reports, at(4000)), Ok(()));
        assert_eq!(
            limiter.admit(QuotaClass::Reports, at(6000)),
            Err(Duration::from_secs(4))
        );
        // Other classes have their own buckets.
        assert_eq!(limiter.admit(QuotaClass::DirectoryRead, at(6000)), Ok(()));
        assert_eq!(limiter.admit(QuotaClass::Reports, at(10_000)), Ok(()));
        assert_eq!(
            limiter.admit(QuotaClass::Reports, at(10_500)),
            Err(Duration::from_millis(3500))
        );
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(3500)), 4);
        assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
    }
}
