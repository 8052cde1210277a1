//! The circuit breaker that makes a failing Redis cost no latency.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::StoreError;

/// Counters of a [`RedisStore`](super::RedisStore), read with
/// [`RedisStore::stats`](super::RedisStore::stats).
///
/// Every counter only grows, from the store's creation; clones of a store share them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Commands that failed because Redis did not answer in time or could not be reached
    /// (including the timeouts). Answers such as "not an integer" are not failures.
    pub failures: u64,
    /// Of the failures, those that hit the command timeout.
    pub timeouts: u64,
    /// How many times the circuit breaker opened.
    pub breaker_opens: u64,
    /// Calls refused at once, without asking Redis, because the breaker was open.
    pub fast_failed: u64,
    /// Whether the breaker is open (or half-open, waiting for its probe) right now.
    pub breaker_open: bool,
}

/// Counts consecutive failures; after `threshold` of them it refuses every call for `cool_down`,
/// then lets a single probe through and closes again if the probe gets an answer.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: Duration,
    phase: Mutex<Phase>,
    /// Whether `phase` is closed with no failures: the steady state, in which calls are admitted
    /// and successes recorded without taking the lock or writing to memory shared by every
    /// caller. Written only with the lock held.
    healthy: AtomicBool,
    failures: AtomicU64,
    timeouts: AtomicU64,
    opens: AtomicU64,
    fast_failed: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Calls are refused until `until` (for good if the cool-down is past the clock's range).
    Open { until: Option<Instant> },
    /// One probe is in flight; other calls are refused.
    HalfOpen,
}

/// Permission for one call; report its outcome with [`Permit::settle`].
///
/// A probe permit dropped unsettled (its call was cancelled) counts as a failed probe, so the
/// breaker can never stay half-open for good.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Breaker {
    /// A breaker that opens after `threshold` consecutive failures (never, when zero) for
    /// `cool_down`.
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Breaker {
        Breaker {
            threshold,
            cool_down,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
            healthy: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            fast_failed: AtomicU64::new(0),
        }
    }

    /// Lets a call through, or refuses it with [`StoreError::Unavailable`] while open.
    pub(crate) fn admit(&self) -> Result<Permit<'_>, StoreError> {
        // A call that races with the first failures is admitted as if it came just before them.
        if self.healthy.load(Ordering::Acquire) {
            return Ok(Permit {
                breaker: self,
                probe: false,
                settled: false,
            });
        }
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let probe = match *phase {
            Phase::Closed { .. } => false,
            Phase::Open { until: Some(until) } if Instant::now() >= until => {
                *phase = Phase::HalfOpen;
                true
            }
            Phase::Open { .. } | Phase::HalfOpen => {
                drop(phase);
                self.fast_failed.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Unavailable(
                    "circuit breaker open after repeated Redis failures".to_owned(),
                ));
            }
        };
        Ok(Permit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    /// The counters and the current state.
    pub(crate) fn stats(&self) -> RedisStats {
        let phase = *self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        RedisStats {
            failures: self.failures.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            breaker_opens: self.opens.load(Ordering::Relaxed),
            fast_failed: self.fast_failed.load(Ordering::Relaxed),
            breaker_open: !matches!(phase, Phase::Closed { .. }),
        }
    }

    fn succeeded(&self) {
        if self.healthy.load(Ordering::Acquire) {
            return;
        }
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let was_open = !matches!(*phase, Phase::Closed { .. });
        *phase = Phase::Closed { failures: 0 };
        self.healthy.store(true, Ordering::Release);
        drop(phase);
        if was_open {
            crate::log::breaker_closed();
        }
    }

    fn failed(&self, probe: bool) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        self.healthy.store(false, Ordering::Release);
        let open = match *phase {
            Phase::Closed { failures } => {
                let failures = failures.saturating_add(1);
                *phase = Phase::Closed { failures };
                self.threshold > 0 && failures >= self.threshold
            }
            // The probe failed: Redis is still down.
            Phase::HalfOpen => probe,
            // A call admitted before the breaker opened: already accounted for.
            Phase::Open { .. } => false,
        };
        if open {
            *phase = Phase::Open {
                until: Instant::now().checked_add(self.cool_down),
            };
            self.opens.fetch_add(1, Ordering::Relaxed);
            drop(phase);
            crate::log::breaker_opened(self.cool_down);
        }
    }
}

/// Whether `error` means Redis could not serve the call (rather than answering "no").
pub(crate) fn is_outage(error: &StoreError) -> bool {
    matches!(error, StoreError::Timeout | StoreError::Unavailable(_))
}

impl Permit<'_> {
    /// Records the outcome of the call made under this permit.
    pub(crate) fn settle<T>(mut self, result: &Result<T, StoreError>) {
        self.settled = true;
        match result {
            Err(error) if is_outage(error) => {
                self.breaker.failures.fetch_add(1, Ordering::Relaxed);
                if matches!(error, StoreError::Timeout) {
                    self.breaker.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                self.breaker.failed(self.probe);
            }
            _ => self.breaker.succeeded(),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.failed(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(2);

    fn fail(breaker: &Breaker) {
        let permit = breaker.admit().expect("admitted");
        permit.settle::<()>(&Err(StoreError::Timeout));
    }

    fn succeed(breaker: &Breaker) {
        let permit = breaker.admit().expect("admitted");
        permit.settle(&Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_then_probes_once() {
        let breaker = Breaker::new(3, COOL_DOWN);
        fail(&breaker);
        fail(&breaker);
        succeed(&breaker);
        fail(&breaker);
        fail(&breaker);
        assert!(!breaker.stats().breaker_open, "a success resets the count");
        fail(&breaker);
        let stats = breaker.stats();
        assert!(stats.breaker_open);
        assert_eq!(
            (stats.failures, stats.timeouts, stats.breaker_opens),
            (5, 5, 1)
        );

        assert!(matches!(breaker.admit(), Err(StoreError::Unavailable(_))));
        tokio::time::advance(COOL_DOWN).await;
        let probe = breaker.admit().expect("the probe goes through");
        assert!(breaker.admit().is_err(), "only one probe at a time");
        probe.settle::<()>(&Err(StoreError::Unavailable("down".into())));
        assert!(breaker.admit().is_err(), "a failed probe reopens");
        assert_eq!(breaker.stats().breaker_opens, 2);

        tokio::time::advance(COOL_DOWN).await;
        succeed(&breaker);
        assert!(!breaker.stats().breaker_open, "a good probe closes");
        assert_eq!(breaker.stats().fast_failed, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_that_are_not_outages_count_as_success() {
        let breaker = Breaker::new(1, COOL_DOWN);
        let permit = breaker.admit().unwrap();
        permit.settle::<()>(&Err(StoreError::NotAnInteger));
        assert!(!breaker.stats().breaker_open);
        assert_eq!(breaker.stats().failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_reopens() {
        let breaker = Breaker::new(1, COOL_DOWN);
        fail(&breaker);
        tokio::time::advance(COOL_DOWN).await;
        drop(breaker.admit().expect("probe"));
        assert!(breaker.admit().is_err());
        tokio::time::advance(COOL_DOWN).await;
        assert!(breaker.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_cool_down_does_not_overflow() {
        let breaker = Breaker::new(1, Duration::MAX);
        fail(&breaker);
        tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
        assert!(breaker.admit().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_threshold_never_opens() {
        let breaker = Breaker::new(0, COOL_DOWN);
        for _ in 0..100 {
            fail(&breaker);
        }
        assert!(!breaker.stats().breaker_open);
    }
}
