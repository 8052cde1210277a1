//! The embedded in-process store: [`MemoryStore`] and its builder, over the sharded map of
//! `shards` with the CLOCK eviction of `clock`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{LocalStore, LocalValue, Store, StoreError, StoreFuture, Ttl, ready};

mod clock;
mod shards;

use shards::{Inner, Mode, Value};

/// Default bound on the number of entries.
const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default bound on the total size of keys, values and overhead.
const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Fewest entries a shard is sized for; smaller stores get fewer shards, down to one, so that
/// eviction order stays close to exact LRU.
const MIN_ENTRIES_PER_SHARD: usize = 16;
const MAX_SHARDS: usize = 64;

/// The embedded default store: a bounded, sharded map in this process.
///
/// - **Bounded** by entry count ([`max_entries`](MemoryStoreBuilder::max_entries)) and by bytes
///   ([`max_bytes`](MemoryStoreBuilder::max_bytes); keys, values and 64 bytes of bookkeeping per
///   entry). A write that goes over either bound evicts other entries until both hold.
/// - **Eviction** follows the CLOCK approximation of least-recently-used: an entry read, or
///   overwritten, since the eviction hand last passed it is skipped once; an expired entry is
///   never skipped. The hand does not search for expired entries, so a live entry it reaches
///   first, unused since its last pass, may go before an expired one further on. `touch` and
///   `has_key` do not count as use, as in Django.
/// - **Expiry** is per entry and follows [tokio's clock](tokio::time::Instant), so
///   `tokio::time::pause()` and `advance()` expire entries in tests without sleeping. Expired
///   entries are invisible at once and their memory is reclaimed by the next writes that pass
///   them.
/// - **Atomic** `add` and `incr`: each runs under its shard's write lock. No lock is held across
///   an `.await`; every operation completes synchronously.
///
/// `MemoryStore` is a cheap handle: clones share the same entries. Each store built with
/// [`new`](MemoryStore::new) or [`builder`](MemoryStore::builder) is its own namespace, and
/// [`clear`](Store::clear) empties only it.
///
/// # Example
///
/// ```
/// use axum_cache::{Cache, store::MemoryStore};
///
/// let store = MemoryStore::builder()
///     .max_entries(10_000)
///     .max_bytes(32 << 20)
///     .build();
/// let cache = Cache::new(store);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// Configures a [`MemoryStore`]; made by [`MemoryStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_entries: usize,
    max_bytes: usize,
}

impl MemoryStore {
    /// A store with the default bounds: 100,000 entries and 64 MiB.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Number of entries held, including expired ones whose memory has not been reclaimed yet.
    pub fn entry_count(&self) -> usize {
        self.inner.entries.load(Ordering::Relaxed)
    }

    /// Bytes charged against [`max_bytes`](MemoryStoreBuilder::max_bytes): keys, values and
    /// bookkeeping of every entry held.
    pub fn size_bytes(&self) -> usize {
        self.inner.bytes.load(Ordering::Relaxed)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entry_count())
            .field("bytes", &self.size_bytes())
            .field("max_entries", &self.inner.max_entries)
            .field("max_bytes", &self.inner.max_bytes)
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

impl MemoryStoreBuilder {
    /// The most entries the store holds (default 100,000). Values below 1 are raised to 1.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// The most bytes the store holds, counting keys, values and 64 bytes of bookkeeping per
    /// entry (default 64 MiB). A single entry larger than this is refused with
    /// [`StoreError::ValueTooLarge`].
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        let mut shards = (parallelism * 4).next_power_of_two().min(MAX_SHARDS);
        while shards > 1 && self.max_entries / shards < MIN_ENTRIES_PER_SHARD {
            shards /= 2;
        }
        MemoryStore {
            inner: Arc::new(Inner::new(shards, self.max_entries, self.max_bytes)),
        }
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        ready(Ok(self.inner.get(key)))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        ready(Ok(keys.iter().map(|key| self.inner.get(key)).collect()))
    }

    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, ()> {
        ready(
            self.inner
                .insert(key, Value::Bytes(value), ttl, Mode::Overwrite)
                .map(drop),
        )
    }

    fn set_many<'a>(
        &'a self,
        entries: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> StoreFuture<'a, Vec<String>> {
        let failed = entries
            .into_iter()
            .filter_map(|(key, value)| {
                self.inner
                    .insert(&key, Value::Bytes(value), ttl, Mode::Overwrite)
                    .is_err()
                    .then_some(key)
            })
            .collect();
        ready(Ok(failed))
    }

    fn add<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, bool> {
        ready(
            self.inner
                .insert(key, Value::Bytes(value), ttl, Mode::OnlyIfAbsent),
        )
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(self.inner.delete(key)))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, u64> {
        let deleted = keys.iter().filter(|key| self.inner.delete(key)).count();
        ready(Ok(deleted as u64))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> StoreFuture<'a, i64> {
        ready(self.inner.incr(key, delta))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> StoreFuture<'a, bool> {
        ready(Ok(self.inner.touch(key, ttl)))
    }

    fn has_key<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(self.inner.has_key(key)))
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        self.inner.clear();
        ready(Ok(()))
    }

    fn as_local(&self) -> Option<&dyn LocalStore> {
        Some(self)
    }

    fn delete_pattern<'a>(&'a self, pattern: &'a str) -> StoreFuture<'a, u64> {
        ready(Ok(self.inner.delete_pattern(pattern)))
    }
}

impl LocalStore for MemoryStore {
    fn get_object(&self, key: &str) -> Option<LocalValue> {
        self.inner.get_object(key)
    }

    fn set_object(
        &self,
        key: &str,
        object: LocalValue,
        size: usize,
        ttl: Ttl,
    ) -> Result<(), StoreError> {
        self.inner
            .insert(key, Value::Object { object, size }, ttl, Mode::Overwrite)
            .map(drop)
    }

    fn get_bytes(&self, key: &str) -> Option<Bytes> {
        self.inner.get(key)
    }

    fn add_bytes(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, StoreError> {
        self.inner
            .insert(key, Value::Bytes(value), ttl, Mode::OnlyIfAbsent)
    }
}
