//! Waiting for conditions rather than pausing: the tasks a request spawned, or a state that
//! polling finds.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The tasks alive on this runtime now: take it before a request, then
/// [`wait_for`](Self::wait_for) the tasks the request spawned.
pub struct Tasks(usize);

impl Tasks {
    pub fn now() -> Tasks {
        Tasks(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        )
    }

    /// Waits until no more tasks are alive than when `self` was taken, so that the tasks
    /// spawned since (such as the write of a page to a remote store, which starts when its
    /// body ends) have finished: a condition to wait for, not a pause. Long-lived tasks from
    /// before (a Redis client's connections) do not count. Fails after a generous bound
    /// instead of hanging.
    pub async fn wait_for(self) {
        let handle = tokio::runtime::Handle::current();
        let deadline = Instant::now() + Duration::from_secs(60);
        while handle.metrics().num_alive_tasks() > self.0 {
            assert!(Instant::now() < deadline, "spawned tasks never finished");
            tokio::task::yield_now().await;
        }
    }
}

/// Polls `attempt` until it returns true and returns how long that took, failing after
/// `deadline`. The pause between attempts only paces the polling; the condition ends it.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut attempt: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if attempt().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < deadline, "{what} within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
