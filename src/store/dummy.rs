//! A store that stores nothing.

use bytes::Bytes;

use super::{Store, StoreError, StoreFuture, Ttl, ready};

/// A store that keeps nothing: every read misses and every write is accepted and dropped, like
/// Django's dummy backend.
///
/// Use it to switch caching off (in development, or to measure the origin) without changing the
/// code that uses the cache. `add` reports success, `delete`, `touch` and `has_key` report
/// `false`, and `incr` fails with [`StoreError::NotFound`], because nothing is ever there.
///
/// # Example
///
/// ```
/// use axum_cache::{Cache, Timeout, store::DummyStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
/// let cache = Cache::new(DummyStore);
/// cache.set("answer", &42, Timeout::Default).await?;
/// assert_eq!(cache.get::<i32>("answer").await?, None);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DummyStore;

impl Store for DummyStore {
    fn get<'a>(&'a self, _key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        ready(Ok(None))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        ready(Ok(vec![None; keys.len()]))
    }

    fn set<'a>(&'a self, _key: &'a str, _value: Bytes, _ttl: Ttl) -> StoreFuture<'a, ()> {
        ready(Ok(()))
    }

    fn set_many<'a>(
        &'a self,
        _entries: Vec<(String, Bytes)>,
        _ttl: Ttl,
    ) -> StoreFuture<'a, Vec<String>> {
        ready(Ok(Vec::new()))
    }

    fn add<'a>(&'a self, _key: &'a str, _value: Bytes, _ttl: Ttl) -> StoreFuture<'a, bool> {
        ready(Ok(true))
    }

    fn delete<'a>(&'a self, _key: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(false))
    }

    fn delete_many<'a>(&'a self, _keys: &'a [String]) -> StoreFuture<'a, u64> {
        ready(Ok(0))
    }

    fn incr<'a>(&'a self, _key: &'a str, _delta: i64) -> StoreFuture<'a, i64> {
        ready(Err(StoreError::NotFound))
    }

    fn touch<'a>(&'a self, _key: &'a str, _ttl: Ttl) -> StoreFuture<'a, bool> {
        ready(Ok(false))
    }

    fn has_key<'a>(&'a self, _key: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(false))
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        ready(Ok(()))
    }
}
