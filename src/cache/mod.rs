//! The low-level cache API: the [`Cache`] handle.
//!
//! This file holds the handle, how it makes store keys and how it treats store errors. The
//! rest is split by job: `values` (typed reads and writes, counters, versions, raw bytes),
//! `compute` (`get_or_set` with its coalescing and locks), `tags` (tagged values and their
//! invalidation), `fragment` (template fragments), `builder`, and `internal`: the small
//! interface the response cache uses beyond the public API.

mod builder;
mod compute;
mod fragment;
mod internal;
mod tags;
mod values;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::key::{self, Digester, KeyFn};
use crate::stampede::{Flights, Stampede};
use crate::store::{Store, StoreError, Ttl};
use crate::{Error, Timeout};

pub use builder::CacheBuilder;
#[cfg(feature = "minijinja")]
pub(crate) use compute::Patience;
pub use fragment::VaryOn;

/// The default timeout of a cache: 300 seconds, as Django's.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A handle on a cache: key prefix, version and default timeout over a [`Store`].
///
/// This is Django's low-level cache API in Rust. Values are any `serde` type; integers are stored
/// as decimal text so that [`incr`](Cache::incr) works on them, everything else as MessagePack.
/// `Cache` is cheap to clone (an `Arc` inside) and every clone shares the store.
///
/// Each key goes through the key function (Django's `prefix:version:key` by default) before it
/// reaches the store. A resulting key longer than 250 bytes, or one holding a space or a control
/// character, is stored under its SHA-256 digest instead, so every key works on every store and
/// is never truncated.
///
/// See the [low-level API chapter](crate::docs::low_level) for the full guide.
///
/// # Example
///
/// ```
/// use axum_cache::{Cache, Timeout, store::MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
/// let cache = Cache::new(MemoryStore::new());
///
/// cache.set("greeting", "hello", Timeout::Default).await?;
/// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
///
/// let total: u64 = cache
///     .get_or_set("total", Timeout::secs(60), || async { 6 * 7 })
///     .await?;
/// assert_eq!(total, 42);
/// assert_eq!(cache.incr("total", 1).await?, 43);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    shared: Arc<Shared>,
    version: i64,
    /// Tags written with every value through this handle (see [`Cache::with_tags`]).
    tags: Option<Arc<[String]>>,
}

struct Shared {
    store: Arc<dyn Store>,
    key_prefix: String,
    default_timeout: Ttl,
    key_fn: Option<KeyFn>,
    ignore_errors: bool,
    digester: Digester,
    store_errors: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    flights: Arc<Flights<Bytes>>,
    coalesced: AtomicU64,
    lock_waits: AtomicU64,
    stampede: Stampede,
}

impl Cache {
    /// A cache over `store` with Django's defaults: no key prefix, version 1, a default timeout
    /// of 300 seconds, and store errors reported as errors.
    pub fn new(store: impl Store) -> Cache {
        Cache::builder(store).build()
    }

    /// Starts configuring a cache over `store`.
    pub fn builder(store: impl Store) -> CacheBuilder {
        CacheBuilder::from_arc(Arc::new(store))
    }

    /// The same cache, reading and writing another version of every key (Django's `version=`
    /// argument). Cheap: it shares the store and the settings.
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::new(MemoryStore::new());
    /// cache.with_version(2).set("answer", &42, Timeout::Default).await?;
    /// assert_eq!(cache.get::<i32>("answer").await?, None);
    /// assert_eq!(cache.with_version(2).get::<i32>("answer").await?, Some(42));
    /// # Ok(()) }
    /// ```
    pub fn with_version(&self, version: i64) -> Cache {
        Cache {
            shared: Arc::clone(&self.shared),
            version,
            tags: self.tags.clone(),
        }
    }

    /// The version this handle reads and writes.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.shared.key_prefix
    }

    /// The timeout that [`Timeout::Default`] stands for; `None` means no expiry.
    pub fn default_timeout(&self) -> Option<Duration> {
        self.shared.default_timeout
    }

    /// The store under this cache.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// How many store operations have failed through this cache (and its clones) so far,
    /// whether the error was returned or, with
    /// [`ignore_errors`](CacheBuilder::ignore_errors), turned into a miss.
    pub fn store_errors(&self) -> u64 {
        self.shared.store_errors.load(Ordering::Relaxed)
    }

    /// The key the store sees for `key`: the key function applied with this cache's prefix and
    /// version, then replaced by its digest if a store could not hold it verbatim.
    ///
    /// ```
    /// # use axum_cache::{Cache, store::MemoryStore};
    /// let cache = Cache::builder(MemoryStore::new()).key_prefix("site").build();
    /// assert_eq!(cache.make_key("answer"), "site:1:answer");
    /// assert_eq!(cache.with_version(3).make_key("answer"), "site:3:answer");
    /// assert!(cache.make_key("has spaces").starts_with('#'));
    /// ```
    pub fn make_key(&self, key: &str) -> String {
        self.make_versioned_key(key, self.version)
    }

    pub(super) fn make_versioned_key(&self, key: &str, version: i64) -> String {
        key::store_safe(self.full_key(key, version))
    }

    /// The key function's result, before it is made store-safe.
    pub(super) fn full_key(&self, key: &str, version: i64) -> String {
        let prefix = &self.shared.key_prefix;
        match &self.shared.key_fn {
            Some(key_fn) => key_fn(key, prefix, version),
            None => key::default_key(key, prefix, version),
        }
    }

    pub(super) fn ttl(&self, timeout: Timeout) -> Ttl {
        timeout.resolve(self.shared.default_timeout)
    }

    /// Records a store failure; returns `fallback` when errors are ignored, the error otherwise.
    pub(super) fn tolerate<T>(
        &self,
        operation: &'static str,
        key: &str,
        error: StoreError,
        fallback: T,
    ) -> Result<T, Error> {
        self.note_store_error(operation, key, &error);
        if self.shared.ignore_errors {
            Ok(fallback)
        } else {
            Err(Error::Store(error))
        }
    }

    pub(crate) fn note_store_error(&self, operation: &'static str, key: &str, error: &StoreError) {
        self.note_store_error_at(operation, None, key, error);
    }

    /// Decodes a stored value. A value whose tag was invalidated is deleted and read as a miss;
    /// one that does not decode as `T` is a miss for this reader and stays in the store, since
    /// another version of the application sharing the store may write and read it (a rolling
    /// deploy). Tags that cannot be checked are a miss too.
    pub(super) async fn decode_live<T: DeserializeOwned>(
        &self,
        store_key: &str,
        bytes: &[u8],
    ) -> Option<T> {
        match self.live(bytes).await {
            None => None,
            Some(false) => {
                self.evict(store_key).await;
                None
            }
            Some(true) => match codec::decode(bytes) {
                Ok(value) => Some(value),
                Err(reason) => {
                    crate::log::undecodable(None, store_key, &reason);
                    None
                }
            },
        }
    }

    pub(super) async fn read<T: DeserializeOwned>(
        &self,
        store_key: &str,
    ) -> Result<Option<T>, Error> {
        let value = match self.shared.store.get(store_key).await {
            Ok(Some(bytes)) => self.decode_live(store_key, &bytes).await,
            Ok(None) => None,
            Err(error) => return self.tolerate("get", store_key, error, None),
        };
        self.count_read(value.is_some());
        Ok(value)
    }

    /// Counts a read that found a live value (`true`) or not.
    pub(super) fn count_read(&self, hit: bool) {
        let counter = if hit {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!(
            "axum_cache_value_reads_total",
            "result" => if hit { "hit" } else { "miss" },
        )
        .increment(1);
    }

    /// What this cache (and every handle sharing its store and settings) has done so far.
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::new(MemoryStore::new());
    /// cache.set("k", &1, Timeout::Default).await?;
    /// cache.get::<u32>("k").await?;
    /// cache.get::<u32>("missing").await?;
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses), (1, 1));
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> CacheStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&self.shared.hits),
            misses: read(&self.shared.misses),
            coalesced: read(&self.shared.coalesced),
            lock_waits: read(&self.shared.lock_waits),
            store_errors: read(&self.shared.store_errors),
        }
    }
}

/// What a [`Cache`] has done, counted since it was built, over every handle sharing it: from
/// [`Cache::stats`]. The response caches built on it count their own work in
/// [`PageStats`](crate::page::PageStats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads (`get`, `get_many` per key, `get_or_set` and fragments before computing) that
    /// found a live value.
    pub hits: u64,
    /// Reads that found no value, an expired or invalidated one, or one that does not decode
    /// as the type asked for.
    pub misses: u64,
    /// Tasks that waited for another one computing the same key
    /// ([`Cache::coalesced`]).
    pub coalesced: u64,
    /// Waits for another process's lock ([`Cache::lock_waits`]).
    pub lock_waits: u64,
    /// Failed store operations ([`Cache::store_errors`]).
    pub store_errors: u64,
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Bytes, Error> {
    codec::encode(value).map_err(|reason| Error::Encode {
        key: key.to_owned(),
        reason,
    })
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("store", &self.shared.store)
            .field("key_prefix", &self.shared.key_prefix)
            .field("version", &self.version)
            .field("default_timeout", &self.shared.default_timeout)
            .field("custom_key_function", &self.shared.key_fn.is_some())
            .field("ignore_errors", &self.shared.ignore_errors)
            .field("digests", &self.shared.digester)
            .finish()
    }
}
