//! The work a response cache does after answering: writes to a remote store and background
//! refreshes. It is bounded in number and in time, so a slow store or origin can never make it
//! pile up: past the bound, work is skipped and counted, never queued.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

/// Default bound on the background tasks (remote writes and refreshes) of one layer.
pub const DEFAULT_MAX_BACKGROUND_TASKS: usize = 128;
/// Default deadline of one background task.
pub const DEFAULT_BACKGROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// The permits for background tasks, their deadline, and what was skipped or cut short.
#[derive(Debug)]
pub(crate) struct Background {
    permits: Arc<Semaphore>,
    limit: usize,
    timeout: Duration,
    skipped: AtomicU64,
    timed_out: AtomicU64,
}

impl Default for Background {
    fn default() -> Background {
        Background::new(DEFAULT_MAX_BACKGROUND_TASKS, DEFAULT_BACKGROUND_TIMEOUT)
    }
}

impl Background {
    pub(crate) fn new(limit: usize, timeout: Duration) -> Background {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Background {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            timeout,
            skipped: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Background tasks skipped because the bound was reached.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Background tasks stopped at their deadline.
    pub(crate) fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }

    /// Runs `work` in a task of its own if the bound allows, stopping it at the deadline;
    /// returns whether it started. Work that does not start (the bound is reached, or no tokio
    /// runtime runs) is logged, and dropped: dropping `work` unfinished releases whatever it
    /// holds (a flight's waiters, a lock).
    pub(crate) fn spawn<F>(self: &Arc<Background>, work: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            crate::log::no_runtime();
            return false;
        };
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            crate::log::background_skipped(self.limit);
            return false;
        };
        let background = Arc::clone(self);
        runtime.spawn(async move {
            if tokio::time::timeout(background.timeout, work)
                .await
                .is_err()
            {
                background.timed_out.fetch_add(1, Ordering::Relaxed);
                crate::log::background_timed_out(background.timeout);
            }
            drop(permit);
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_past_the_bound_is_skipped_and_late_work_is_stopped() {
        let background = Arc::new(Background::new(2, Duration::from_secs(5)));
        let (release, released) = tokio::sync::watch::channel(false);
        let finished = Arc::new(AtomicU64::new(0));
        for _ in 0..2 {
            let mut released = released.clone();
            let finished = Arc::clone(&finished);
            let work = async move {
                let _ = released.wait_for(|released| *released).await;
                finished.fetch_add(1, Ordering::Relaxed);
            };
            assert!(background.spawn(work));
        }
        assert!(!background.spawn(async {}));
        assert_eq!(background.skipped(), 1);
        // Nothing releases the two tasks: their deadline stops them and frees the permits.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(background.timed_out(), 2);
        assert_eq!(finished.load(Ordering::Relaxed), 0);
        assert_eq!(background.permits.available_permits(), 2);
        let finished_now = Arc::clone(&finished);
        let work = async move {
            finished_now.fetch_add(1, Ordering::Relaxed);
        };
        assert!(background.spawn(work));
        drop(release);
        tokio::task::yield_now().await;
        assert_eq!(finished.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn without_a_runtime_nothing_starts() {
        let background = Arc::new(Background::default());
        assert!(!background.spawn(async {}));
        assert_eq!(background.skipped(), 0);
    }
}
