//! Stores for tests: one that keeps bytes only (as a remote store does), one that makes every
//! call wait once, and one that is down.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_cache::store::{MemoryStore, Store, StoreError, StoreFuture, Ttl};
use bytes::Bytes;

use super::clock::Clock;

/// A memory store seen through the byte API only, as a remote store is: no objects, keys made
/// store-safe. It remembers the keys written, so tests can tamper with them, its `get_many`
/// fails while `fail_get_many` is set, and after [`BytesOnly::lag_reads`] every `get` takes
/// time on a test clock.
#[derive(Debug, Clone, Default)]
pub struct BytesOnly {
    pub inner: MemoryStore,
    written: Arc<Mutex<Vec<String>>>,
    pub fail_get_many: Arc<AtomicBool>,
    lag: Arc<Mutex<Option<(Clock, Duration)>>>,
    held: Arc<Mutex<Option<Arc<tokio::sync::Semaphore>>>>,
}

impl BytesOnly {
    /// Makes every later `get` answer only after `clock` (and tokio's paused clock) moved on by
    /// `lag`, as a slow remote store would.
    pub fn lag_reads(&self, clock: &Clock, lag: Duration) {
        *self.lag.lock().unwrap() = Some((clock.clone(), lag));
    }

    /// Makes every later `set` wait for a permit of the returned gate (none to start with), as
    /// writes to a store that hangs do.
    pub fn hold_writes(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *self.held.lock().unwrap() = Some(Arc::clone(&gate));
        gate
    }

    pub fn written(&self) -> Vec<String> {
        self.written.lock().unwrap().clone()
    }

    fn record(&self, key: &str) {
        self.written.lock().unwrap().push(key.to_owned());
    }
}

impl Store for BytesOnly {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        let lag = self.lag.lock().unwrap().clone();
        let Some((clock, lag)) = lag else {
            return self.inner.get(key);
        };
        Box::pin(async move {
            let value = self.inner.get(key).await;
            clock.advance(lag).await;
            value
        })
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        if self.fail_get_many.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::Timeout) });
        }
        self.inner.get_many(keys)
    }
    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, ()> {
        self.record(key);
        let held = self.held.lock().unwrap().clone();
        let Some(gate) = held else {
            return self.inner.set(key, value, ttl);
        };
        Box::pin(async move {
            drop(gate.acquire().await);
            self.inner.set(key, value, ttl).await
        })
    }
    fn set_many<'a>(
        &'a self,
        entries: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> StoreFuture<'a, Vec<String>> {
        for (key, _) in &entries {
            self.record(key);
        }
        self.inner.set_many(entries, ttl)
    }
    fn add<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, bool> {
        self.inner.add(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, u64> {
        self.inner.delete_many(keys)
    }
    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> StoreFuture<'a, i64> {
        self.inner.incr(key, delta)
    }
    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> StoreFuture<'a, bool> {
        self.inner.touch(key, ttl)
    }
    fn delete_pattern<'a>(&'a self, pattern: &'a str) -> StoreFuture<'a, u64> {
        self.inner.delete_pattern(pattern)
    }
    fn clear(&self) -> StoreFuture<'_, ()> {
        self.inner.clear()
    }
}

/// A memory store whose every call waits (yields once) before answering, as a remote one would.
#[derive(Debug, Clone, Default)]
pub struct Slow {
    pub inner: MemoryStore,
}

/// Yields once: a future that is pending on its first poll.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

impl Store for Slow {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            yield_once().await;
            self.inner.get(key).await
        })
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            yield_once().await;
            self.inner.get_many(keys).await
        })
    }
    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            yield_once().await;
            self.inner.set(key, value, ttl).await
        })
    }
    fn set_many<'a>(
        &'a self,
        entries: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            yield_once().await;
            self.inner.set_many(entries, ttl).await
        })
    }
    fn add<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            yield_once().await;
            self.inner.add(key, value, ttl).await
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            yield_once().await;
            self.inner.delete(key).await
        })
    }
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            yield_once().await;
            self.inner.delete_many(keys).await
        })
    }
    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            yield_once().await;
            self.inner.incr(key, delta).await
        })
    }
    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            yield_once().await;
            self.inner.touch(key, ttl).await
        })
    }
    fn clear(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            yield_once().await;
            self.inner.clear().await
        })
    }
}

/// A store that fails every call, as a Redis that is down would.
#[derive(Debug, Default)]
pub struct DownStore;

fn down<'a, T: Send + 'a>() -> StoreFuture<'a, T> {
    Box::pin(async { Err(StoreError::Unavailable("connection refused".into())) })
}

impl Store for DownStore {
    fn get<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        down()
    }
    fn get_many<'a>(&'a self, _: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        down()
    }
    fn set<'a>(&'a self, _: &'a str, _: Bytes, _: Ttl) -> StoreFuture<'a, ()> {
        down()
    }
    fn set_many<'a>(&'a self, _: Vec<(String, Bytes)>, _: Ttl) -> StoreFuture<'a, Vec<String>> {
        down()
    }
    fn add<'a>(&'a self, _: &'a str, _: Bytes, _: Ttl) -> StoreFuture<'a, bool> {
        down()
    }
    fn delete<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
        down()
    }
    fn delete_many<'a>(&'a self, _: &'a [String]) -> StoreFuture<'a, u64> {
        down()
    }
    fn incr<'a>(&'a self, _: &'a str, _: i64) -> StoreFuture<'a, i64> {
        down()
    }
    fn touch<'a>(&'a self, _: &'a str, _: Ttl) -> StoreFuture<'a, bool> {
        down()
    }
    fn clear(&self) -> StoreFuture<'_, ()> {
        down()
    }
}
