//! The behaviour every [`Store`] must have, as a reusable test suite.
//!
//! The checks port the backend cases of Django's cache test suite (`BaseCacheTests`) to the
//! store level, and add what a shared cache needs: atomic `add` and `incr` under real
//! concurrency, exact expiry, binary, empty and large values, and huge or zero TTLs.
//!
//! Run [`run`] from a test with a fresh store and a [`TestClock`] that moves the store's clock,
//! and [`run_concurrent`] from a multi-threaded runtime. Each check panics with a message naming
//! the broken rule, so a failure reads like any other test failure.
//!
//! ```
//! use axum_cache::store::{MemoryStore, conformance::{self, TestClock}};
//!
//! # fn main() {
//! // MemoryStore follows tokio's clock, so a paused runtime can be advanced instantly.
//! tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .start_paused(true)
//!     .build()
//!     .unwrap()
//!     .block_on(async {
//!         let store = MemoryStore::new();
//!         conformance::run(&store, &TestClock::new(tokio::time::advance)).await;
//!     });
//! # }
//! ```
//!
//! A store whose clock cannot be moved (a remote server) passes `TestClock::new(tokio::time::sleep)`;
//! the checks only ever advance by a few seconds in all.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::Store;

mod concurrency;
mod expiry;
mod locks;
mod namespace;
mod values;

pub use concurrency::{
    add_race_has_one_winner, incr_loses_no_update, readers_never_see_torn_values,
};
pub use expiry::{
    add_keeps_the_existing_expiry, expiry, incr_keeps_the_expiry, long_and_missing_ttls,
    overwrite_replaces_the_expiry, touch, zero_ttl_keeps_nothing,
};
pub use locks::locks;
pub use namespace::{clear_empties_the_namespace, pattern_delete};
pub use values::{
    add_only_when_absent, binary_empty_and_unicode, delete_reports_live_values, get_many_in_order,
    incr_and_decr, large_values, set_get_and_overwrite, set_many_and_delete_many,
};

type Advance = Box<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Moves time forward as the store under test sees it.
pub struct TestClock {
    advance: Advance,
}

impl TestClock {
    /// A clock moved by `advance`: `tokio::time::advance` for a store on tokio's clock in a
    /// paused runtime, `tokio::time::sleep` for a store with a real clock.
    pub fn new<F, Fut>(advance: F) -> TestClock
    where
        F: Fn(Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        TestClock {
            advance: Box::new(move |by| Box::pin(advance(by))),
        }
    }

    async fn advance(&self, by: Duration) {
        (self.advance)(by).await;
    }
}

impl fmt::Debug for TestClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TestClock")
    }
}

const SECOND: Duration = Duration::from_secs(1);

fn b(value: &str) -> Bytes {
    Bytes::copy_from_slice(value.as_bytes())
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Asserts that `key` reads as `expected` (`None`: missing or expired); `rule` names what a
/// mismatch breaks.
async fn assert_get(store: &dyn Store, key: &str, expected: Option<Bytes>, rule: &str) {
    assert_eq!(store.get(key).await.unwrap(), expected, "{rule}");
}

/// Runs every sequential check. The store should be empty and used by nothing else; the checks
/// clear it.
pub async fn run(store: &dyn Store, clock: &TestClock) {
    store.clear().await.expect("clear");
    set_get_and_overwrite(store).await;
    binary_empty_and_unicode(store).await;
    large_values(store).await;
    add_only_when_absent(store).await;
    get_many_in_order(store).await;
    set_many_and_delete_many(store).await;
    delete_reports_live_values(store).await;
    incr_and_decr(store).await;
    expiry(store, clock).await;
    add_keeps_the_existing_expiry(store, clock).await;
    incr_keeps_the_expiry(store, clock).await;
    touch(store, clock).await;
    zero_ttl_keeps_nothing(store).await;
    long_and_missing_ttls(store, clock).await;
    overwrite_replaces_the_expiry(store, clock).await;
    locks(store, clock).await;
    pattern_delete(store, clock).await;
    clear_empties_the_namespace(store).await;
}

/// Runs the concurrency checks: 1,000 tasks racing `add` on one key, and 1,000 concurrent
/// `incr`s. Call it from a multi-threaded runtime so that the tasks really run in parallel.
pub async fn run_concurrent(store: Arc<dyn Store>) {
    add_race_has_one_winner(Arc::clone(&store)).await;
    incr_loses_no_update(Arc::clone(&store)).await;
    readers_never_see_torn_values(store).await;
}
