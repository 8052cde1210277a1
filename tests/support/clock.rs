//! A wall clock for the page cache (`Expires`, `Age`, freshness) that moves with tokio's paused
//! clock, which drives store expiry.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    /// A clock reading `unix` seconds since the epoch.
    pub fn at(unix: u64) -> Clock {
        Clock(Arc::new(AtomicU64::new(unix * 1000)))
    }

    /// What a layer's `clock` setting reads.
    pub fn reader(&self) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        let millis = Arc::clone(&self.0);
        move || UNIX_EPOCH + Duration::from_millis(millis.load(Ordering::SeqCst))
    }

    /// Moves this clock and tokio's together.
    pub async fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        tokio::time::advance(by).await;
    }
}
