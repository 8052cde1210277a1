//! [`CacheBuilder`]: the settings of a [`Cache`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::{Cache, DEFAULT_TIMEOUT, Shared};
use crate::Timeout;
use crate::key::{Digester, KeyFn};
use crate::stampede::{Stampede, StoreLock};
use crate::store::{Store, Ttl};

/// Configures a [`Cache`]; made by [`Cache::builder`].
#[must_use]
pub struct CacheBuilder {
    store: Arc<dyn Store>,
    key_prefix: String,
    version: i64,
    default_timeout: Ttl,
    key_fn: Option<KeyFn>,
    ignore_errors: bool,
    digester: Digester,
    stampede: Stampede,
}

impl CacheBuilder {
    /// Starts configuring a cache over a store that is already shared.
    pub fn from_arc(store: Arc<dyn Store>) -> CacheBuilder {
        CacheBuilder {
            store,
            key_prefix: String::new(),
            version: 1,
            default_timeout: Some(DEFAULT_TIMEOUT),
            key_fn: None,
            ignore_errors: false,
            digester: Digester::default(),
            stampede: Stampede::default(),
        }
    }

    /// The secret that keys the digests standing for request values in page keys and stored
    /// pages (default: none).
    ///
    /// The response caches never put a request's header values (`Authorization`, `Cookie`, any
    /// header a page varies on) into a key or a stored page: they put a digest there instead.
    /// Without a secret that digest is SHA-256, which hides a long random value such as a
    /// session token but lets anyone who reads the store check a guess about a short one. With
    /// a secret it is HMAC-SHA-256, which cannot be checked without the secret.
    ///
    /// Every process that shares the store must use the same secret, or they will not find each
    /// other's varied pages. Changing it makes every varied page a miss once. The secret is
    /// never shown by `Debug`.
    ///
    /// ```
    /// # use axum_cache::{Cache, store::MemoryStore};
    /// let secret = std::env::var("CACHE_KEY_SECRET").unwrap_or_default();
    /// let cache = Cache::builder(MemoryStore::new()).key_secret(secret).build();
    /// # let _ = cache;
    /// ```
    pub fn key_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.digester = Digester::new(secret.as_ref());
        self
    }

    /// Make [`get_or_set`](Cache::get_or_set) compute a missing value once across the
    /// processes sharing a remote store: the first takes a lock in the store (living at most
    /// `ttl`, in case it dies) and the others wait up to `wait` for the value it stores, then
    /// compute it themselves. No effect with an in-process store. Response caches built on
    /// this cache lock the same way unless they set their own. See the
    /// [stampede chapter](crate::docs::stampede).
    pub fn lock_across_processes(mut self, ttl: Duration, wait: Duration) -> Self {
        self.stampede.lock = Some(StoreLock::new(ttl, wait));
        self
    }

    /// The longest [`get_or_set`](Cache::get_or_set) waits for another task computing the same
    /// key before computing by itself (default 10 s). Response caches built on this cache wait
    /// as long unless they set their own.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.stampede.wait_timeout = timeout;
        self
    }

    /// Prefix of every key (Django's `KEY_PREFIX`; default empty). Caches with different
    /// prefixes never see each other's entries, even on one store, as long as neither prefix
    /// contains `:` (with the default key function, prefix `a` and key `1:k` give the same
    /// store key as prefix `a:1` and key `k`, as in Django).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Version of every key (Django's `VERSION`; default 1). See [`Cache::with_version`].
    pub fn version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// What [`Timeout::Default`] means for this cache (default 300 s). `Timeout::Default` here
    /// keeps 300 s; [`Timeout::Never`] makes entries persistent by default.
    pub fn default_timeout(mut self, timeout: Timeout) -> Self {
        self.default_timeout = timeout.resolve(Some(DEFAULT_TIMEOUT));
        self
    }

    /// Replaces the key function (Django's `KEY_FUNCTION`): `(key, prefix, version)` to the full
    /// key. The result is still made store-safe (see [`Cache::make_key`]).
    ///
    /// ```
    /// # use axum_cache::{Cache, store::MemoryStore};
    /// let cache = Cache::builder(MemoryStore::new())
    ///     .key_prefix("app")
    ///     .key_function(|key, prefix, version| format!("{prefix}/v{version}/{key}"))
    ///     .build();
    /// assert_eq!(cache.make_key("k"), "app/v1/k");
    /// ```
    pub fn key_function<F>(mut self, key_fn: F) -> Self
    where
        F: Fn(&str, &str, i64) -> String + Send + Sync + 'static,
    {
        self.key_fn = Some(Arc::new(key_fn));
        self
    }

    /// Whether a failing store is treated as a cache that holds nothing (default `false`).
    ///
    /// When set, a store error makes reads miss (`get` → `None`, `has_key` → `false`) and writes
    /// report that nothing happened (`set` → `Ok`, `add`/`delete`/`touch` → `false`, `set_many`
    /// → every key failed). `incr`, `decr` and `incr_version` still return the error. Every
    /// failure is counted in [`Cache::store_errors`] and logged with the `tracing` feature.
    pub fn ignore_errors(mut self, ignore: bool) -> Self {
        self.ignore_errors = ignore;
        self
    }

    /// Builds the cache.
    pub fn build(self) -> Cache {
        Cache {
            shared: Arc::new(Shared {
                store: self.store,
                key_prefix: self.key_prefix,
                default_timeout: self.default_timeout,
                key_fn: self.key_fn,
                ignore_errors: self.ignore_errors,
                digester: self.digester,
                store_errors: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                flights: Arc::default(),
                coalesced: AtomicU64::new(0),
                lock_waits: AtomicU64::new(0),
                stampede: self.stampede,
            }),
            version: self.version,
            tags: None,
        }
    }
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("store", &self.store)
            .field("key_prefix", &self.key_prefix)
            .field("version", &self.version)
            .field("default_timeout", &self.default_timeout)
            .field("custom_key_function", &self.key_fn.is_some())
            .field("ignore_errors", &self.ignore_errors)
            .field("digests", &self.digester)
            .finish()
    }
}
