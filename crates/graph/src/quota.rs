//! Graph's quota classes and the per-tenant limiter every Graph request passes through.
//!
//! Each class gets a GCRA limiter (governor) with an emission interval of `per / requests` and
//! a burst of one: calls are spaced evenly, so any window of length `per` sees at most
//! `requests` of them, and pollers and the executor share the tenant's budget instead of
//! racing for it. The limiter reads tokio's clock, so tests can pause time.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::error::GraphError;

/// The budgets Graph enforces separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaClass {
    /// riskyUsers, riskDetections, confirmCompromised, dismiss: shared by every app in the tenant.
    IdentityProtection,
    /// signIns and other audit logs.
    Reports,
    /// revokeSignInSessions and user PATCH.
    DirectoryWrite,
    /// User lookups and group membership.
    DirectoryRead,
}

impl QuotaClass {
    /// Every class, for iteration in metrics and config.
    pub const ALL: [Self; 4] = [
        Self::IdentityProtection,
        Self::Reports,
        Self::DirectoryWrite,
        Self::DirectoryRead,
    ];

    /// The snake_case name used in config keys, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdentityProtection => "identity_protection",
            Self::Reports => "reports",
            Self::DirectoryWrite => "directory_write",
            Self::DirectoryRead => "directory_read",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::IdentityProtection => 0,
            Self::Reports => 1,
            Self::DirectoryWrite => 2,
            Self::DirectoryRead => 3,
        }
    }
}

impl fmt::Display for QuotaClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// At most `requests` calls in any window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimit {
    /// Calls allowed per window (at least 1).
    pub requests: u32,
    /// The window (non-zero).
    pub per: Duration,
}

impl QuotaLimit {
    /// The even spacing between calls that keeps every window within the limit.
    pub fn spacing(&self) -> Duration {
        (self.per / self.requests.max(1)).max(Duration::from_nanos(1))
    }
}

/// One limit per quota class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Identity Protection: 1 request per second per tenant.
    pub identity_protection: QuotaLimit,
    /// Reports: 5 requests per 10 seconds per app.
    pub reports: QuotaLimit,
    /// Directory writes: 3,000 per 150 seconds per app and tenant.
    pub directory_write: QuotaLimit,
    /// Directory reads: 3,500 per 10 seconds (the smallest tenants' resource-unit budget).
    pub directory_read: QuotaLimit,
}

impl Default for QuotaLimits {
    /// Microsoft's published limits.
    fn default() -> Self {
        Self {
            identity_protection: QuotaLimit {
                requests: 1,
                per: Duration::from_secs(1),
            },
            reports: QuotaLimit {
                requests: 5,
                per: Duration::from_secs(10),
            },
            directory_write: QuotaLimit {
                requests: 3000,
                per: Duration::from_secs(150),
            },
            directory_read: QuotaLimit {
                requests: 3500,
                per: Duration::from_secs(10),
            },
        }
    }
}

impl QuotaLimits {
    /// The limit of one class.
    pub fn get(&self, class: QuotaClass) -> QuotaLimit {
        match class {
            QuotaClass::IdentityProtection => self.identity_protection,
            QuotaClass::Reports => self.reports,
            QuotaClass::DirectoryWrite => self.directory_write,
            QuotaClass::DirectoryRead => self.directory_read,
        }
    }

    /// Rejects limits that would mean "never" or "unlimited".
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] naming the class whose `requests` or `per` is zero.
    pub fn validate(&self) -> Result<(), GraphError> {
        for class in QuotaClass::ALL {
            let limit = self.get(class);
            if limit.requests == 0 || limit.per.is_zero() {
                return Err(GraphError::Config(format!(
                    "quota {class}: requests and per must both be greater than zero (got {} per {:?})",
                    limit.requests, limit.per
                )));
            }
        }
        Ok(())
    }
}

/// governor clock on tokio's time, so a paused test clock drives the limiter too.
#[derive(Debug, Clone)]
struct TokioClock {
    origin: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// The limiters of one tenant, one per quota class.
pub struct TenantLimiter {
    clock: TokioClock,
    limiters: [Limiter; 4],
    /// Per class, no request starts before this instant: set when Graph throttles the class,
    /// so every caller of the tenant slows down together, not only the one that got the 429.
    paused_until: [std::sync::Mutex<Option<tokio::time::Instant>>; 4],
}

impl TenantLimiter {
    /// Builds the limiters. Zero values (which [`QuotaLimits::validate`] rejects) are clamped
    /// to one request per nanosecond-or-longer instead of panicking.
    pub fn new(limits: &QuotaLimits) -> Self {
        let clock = TokioClock {
            origin: tokio::time::Instant::now(),
        };
        let limiters = QuotaClass::ALL.map(|class| {
            let quota = Quota::with_period(limits.get(class).spacing())
                // `spacing` is never zero, the only input `with_period` refuses.
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::MIN);
            RateLimiter::direct_with_clock(quota, clock.clone())
        });
        Self {
            clock,
            limiters,
            paused_until: Default::default(),
        }
    }

    /// Waits until a call of this class may go out, and takes its slot.
    pub async fn acquire(&self, class: QuotaClass) {
        let paused = *self.paused_until[class.index()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = paused {
            tokio::time::sleep_until(until).await;
        }
        let limiter = &self.limiters[class.index()];
        while let Err(not_until) = limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
    }

    /// Holds every request of `class` for `pause` (Graph throttled it): the Retry-After Graph
    /// sent, or, where it sends none (identity protection), a backoff. Pauses only extend.
    pub fn pause(&self, class: QuotaClass, pause: Duration) {
        let until = tokio::time::Instant::now() + pause;
        let mut slot = self.paused_until[class.index()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }
}

impl fmt::Debug for TenantLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantLimiter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller_of_the_class_only() {
        let limiter = TenantLimiter::new(&QuotaLimits::default());
        limiter.pause(QuotaClass::IdentityProtection, Duration::from_secs(3));
        limiter.pause(QuotaClass::IdentityProtection, Duration::from_secs(1));
        let start = Instant::now();
        limiter.acquire(QuotaClass::Reports).await;
        assert!(
            start.elapsed() < Duration::from_millis(10),
            "other classes go on"
        );
        limiter.acquire(QuotaClass::IdentityProtection).await;
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "a shorter pause does not shorten it"
        );
    }

    fn limits_with(class: QuotaClass, limit: QuotaLimit) -> QuotaLimits {
        let mut limits = QuotaLimits::default();
        match class {
            QuotaClass::IdentityProtection => limits.identity_protection = limit,
            QuotaClass::Reports => limits.reports = limit,
            QuotaClass::DirectoryWrite => limits.directory_write = limit,
            QuotaClass::DirectoryRead => limits.directory_read = limit,
        }
        limits
    }

    async fn stamps(limiter: &TenantLimiter, class: QuotaClass, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            limiter.acquire(class).await;
            out.push(start.elapsed());
        }
        out
    }

    #[test]
    fn defaults_are_the_published_limits() {
        let limits = QuotaLimits::default();
        assert_eq!(limits.identity_protection.spacing(), Duration::from_secs(1));
        assert_eq!(limits.reports.spacing(), Duration::from_secs(2));
        assert_eq!(limits.directory_write.spacing(), Duration::from_millis(50));
        assert!(limits.validate().is_ok());
        assert_eq!(QuotaClass::DirectoryWrite.as_str(), "directory_write");
    }

    #[test]
    fn zero_limits_are_rejected() {
        let limit = QuotaLimit {
            requests: 0,
            per: Duration::from_secs(1),
        };
        let error = limits_with(QuotaClass::Reports, limit)
            .validate()
            .expect_err("zero requests");
        assert!(error.to_string().starts_with("quota reports:"), "{error}");
        // The limiter itself must still not panic on them.
        let _ = TenantLimiter::new(&limits_with(QuotaClass::Reports, limit));
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_of_length_per_exceeds_the_limit() {
        let limit = QuotaLimit {
            requests: 5,
            per: Duration::from_secs(10),
        };
        let limiter = TenantLimiter::new(&limits_with(QuotaClass::Reports, limit));
        let times = stamps(&limiter, QuotaClass::Reports, 16).await;
        assert_eq!(times[0], Duration::ZERO, "the first call goes at once");
        for (i, start) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|t| **t < *start + limit.per)
                .count();
            assert!(
                in_window <= 5,
                "{in_window} calls in the window from {start:?}"
            );
        }
        // Evenly spaced, not bunched: 15 gaps of 2 s.
        assert!(times[15] >= Duration::from_secs(30), "{:?}", times[15]);
        assert!(times[15] < Duration::from_secs(31), "{:?}", times[15]);
    }

    #[tokio::test(start_paused = true)]
    async fn classes_do_not_share_budgets() {
        let limiter = TenantLimiter::new(&QuotaLimits::default());
        limiter.acquire(QuotaClass::IdentityProtection).await;
        let start = Instant::now();
        limiter.acquire(QuotaClass::DirectoryWrite).await;
        limiter.acquire(QuotaClass::Reports).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire(QuotaClass::IdentityProtection).await;
        assert!(
            start.elapsed() >= Duration::from_millis(999),
            "{:?}",
            start.elapsed()
        );
    }
}
