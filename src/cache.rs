//! The low-level cache API: the [`Cache`] handle.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::key::{self, Digester, KeyFn};
use crate::stampede::{self, Flights, HeldLock, Joined, Waited};
use crate::store::{Store, StoreError, Ttl};
use crate::{Error, Timeout};

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
    flights: Arc<Flights<Bytes>>,
    coalesced: AtomicU64,
    lock_waits: AtomicU64,
    wait_timeout: Duration,
    lock: Option<(Duration, Duration)>,
}

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
    wait_timeout: Duration,
    lock: Option<(Duration, Duration)>,
}

/// How often `get_or_set` looks for the value while another process holds its lock.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// A vary-on value of a fragment: anything displayable (and shareable between threads, so that
/// the futures of handlers that pass them stay `Send`).
pub type VaryOn = dyn std::fmt::Display + Sync;

/// How many times `get_or_set` waits for another task before computing by itself.
const MAX_ROUNDS: usize = 3;

/// Default bound on how long `get_or_set` waits for another task computing the same key.
const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

fn decode_computed<T: DeserializeOwned, E: From<Error>>(key: &str, bytes: &[u8]) -> Result<T, E> {
    codec::decode(bytes).map_err(|reason| {
        E::from(Error::Encode {
            key: key.to_owned(),
            reason,
        })
    })
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

    /// The same cache, writing every value with these tags, so that
    /// [`invalidate_tag`](Cache::invalidate_tag) can make them all misses at once. Reads through
    /// any handle check the tags of what they find.
    ///
    /// A tagged value carries its tags in front of it, so it is no longer decimal text:
    /// [`incr`](Cache::incr) on an integer written through a tagged handle fails with
    /// [`Error::NotAnInteger`]. Keep counters untagged.
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::new(MemoryStore::new());
    /// cache.with_tags(["articles"]).set("article:1", "Hello", Timeout::Never).await?;
    /// cache.with_tags(["articles"]).set("article:2", "World", Timeout::Never).await?;
    /// cache.invalidate_tag("articles").await?;
    /// assert_eq!(cache.get::<String>("article:1").await?, None);
    /// assert_eq!(cache.get::<String>("article:2").await?, None);
    /// # Ok(()) }
    /// ```
    pub fn with_tags<I, T>(&self, tags: I) -> Cache
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let tags: Arc<[String]> = tags.into_iter().map(Into::into).collect();
        Cache {
            shared: Arc::clone(&self.shared),
            version: self.version,
            tags: (!tags.is_empty()).then_some(tags),
        }
    }

    /// Makes every value and page written with `tag` (through any cache sharing this store and
    /// key prefix, in any process) a miss from now on. Costs one write, however many entries
    /// carry the tag.
    ///
    /// Entries remember when their computation started; the tag remembers when it was last
    /// invalidated. An entry is served only if it started after that, so a value computed by
    /// [`get_or_set`](Cache::get_or_set), [`fragment`](Cache::fragment) or a page before an
    /// invalidation and stored after it is still a miss. ([`set`](Cache::set) counts from the
    /// write. Across machines this relies on their clocks agreeing to within the time a
    /// computation takes.)
    pub async fn invalidate_tag(&self, tag: &str) -> Result<(), Error> {
        let key = self.tag_store_key(tag);
        let now = Bytes::from(now_micros().to_string());
        self.shared
            .store
            .set(&key, now, None)
            .await
            .map_err(|error| {
                self.note_store_error("set", &key, &error);
                Error::Store(error)
            })
    }

    /// The store key holding the last invalidation time of `tag`: the tag through the key
    /// function (so under this cache's prefix, whatever the handle's version), in the crate's
    /// own key space.
    pub(crate) fn tag_store_key(&self, tag: &str) -> String {
        key::internal_key("tag", &self.full_key(tag, 0))
    }

    /// Whether an entry with `tags`, whose computation started at `started_micros`, is still
    /// valid: each tag's key exists (it is created with an entry and an eviction counts as an
    /// invalidation) and was last invalidated before the entry's computation started. `None` when the store failed: the
    /// entry cannot be used now, but it is not known to be dead either.
    pub(crate) async fn tags_current(&self, tags: &[String], started_micros: u64) -> Option<bool> {
        let keys: Vec<String> = tags.iter().map(|tag| self.tag_store_key(tag)).collect();
        match self.shared.store.get_many(&keys).await {
            Ok(times) => Some(
                times
                    .iter()
                    .all(|time| tag_allows(time.as_deref(), started_micros)),
            ),
            Err(error) => {
                self.note_store_error("get_many", keys.first().map_or("", String::as_str), &error);
                None
            }
        }
    }

    /// Whether stored bytes are a live value: untagged, or with every tag still current.
    /// `None` when the tags could not be checked.
    async fn live(&self, bytes: &[u8]) -> Option<bool> {
        match codec::unwrap(bytes) {
            Ok(Some((tagged, _))) => self.tags_current(&tagged.tags, tagged.started_micros).await,
            // Untagged, or a damaged envelope that decoding will reject.
            Ok(None) | Err(_) => Some(true),
        }
    }

    /// Whether the value stored under `store_key` is live; one whose tag was invalidated is
    /// deleted on the way. Tags that cannot be checked count as not live (a miss), without a
    /// delete.
    async fn live_or_evict(&self, store_key: &str, bytes: &[u8]) -> bool {
        match self.live(bytes).await {
            Some(true) => true,
            Some(false) => {
                self.evict(store_key).await;
                false
            }
            None => false,
        }
    }

    async fn evict(&self, store_key: &str) {
        if let Err(error) = self.shared.store.delete(store_key).await {
            self.note_store_error("delete", store_key, &error);
        }
    }

    /// Creates the keys of the tags a new entry carries, where missing; see [`tag_birth`].
    async fn register_tags(&self, tags: &[String], started_micros: u64) -> Result<(), Error> {
        for tag in tags {
            let key = self.tag_store_key(tag);
            if let Err(error) = self
                .shared
                .store
                .add(&key, tag_birth(started_micros), None)
                .await
            {
                self.note_store_error("add", &key, &error);
                return Err(Error::Store(error));
            }
        }
        Ok(())
    }

    /// What makes the digests that stand for request values in page keys and stored pages.
    pub(crate) fn digester(&self) -> &Digester {
        &self.shared.digester
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

    fn make_versioned_key(&self, key: &str, version: i64) -> String {
        key::store_safe(self.full_key(key, version))
    }

    /// The key function's result, before it is made store-safe.
    fn full_key(&self, key: &str, version: i64) -> String {
        let prefix = &self.shared.key_prefix;
        match &self.shared.key_fn {
            Some(key_fn) => key_fn(key, prefix, version),
            None => key::default_key(key, prefix, version),
        }
    }

    /// `prefix:version:`, what the default key function puts before every key; `None` with a
    /// custom key function.
    pub(crate) fn default_key_head(&self) -> Option<String> {
        if self.shared.key_fn.is_some() {
            return None;
        }
        let mut head = String::with_capacity(self.shared.key_prefix.len() + 8);
        key::push_default_head(&mut head, &self.shared.key_prefix, self.version);
        Some(head)
    }

    /// The store key for the key that `push` writes, built in one buffer when the default key
    /// function is in use. `verbatim` skips the digest, for in-process stores, which hold keys
    /// of any length and content.
    pub(crate) fn store_key_with(&self, verbatim: bool, push: impl FnOnce(&mut String)) -> String {
        let full = match &self.shared.key_fn {
            Some(key_fn) => {
                let mut key = String::new();
                push(&mut key);
                key_fn(&key, &self.shared.key_prefix, self.version)
            }
            None => {
                let mut full = String::with_capacity(self.shared.key_prefix.len() + 96);
                key::push_default_head(&mut full, &self.shared.key_prefix, self.version);
                push(&mut full);
                full
            }
        };
        if verbatim {
            full
        } else {
            key::store_safe(full)
        }
    }

    fn ttl(&self, timeout: Timeout) -> Ttl {
        timeout.resolve(self.shared.default_timeout)
    }

    /// Records a store failure; returns `fallback` when errors are ignored, the error otherwise.
    fn tolerate<T>(
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

    /// Counts and logs a store failure about the page at URL path `path`, if any.
    pub(crate) fn note_store_error_at(
        &self,
        operation: &'static str,
        path: Option<&str>,
        key: &str,
        error: &StoreError,
    ) {
        self.shared.store_errors.fetch_add(1, Ordering::Relaxed);
        crate::log::store_failure(operation, path, key, error);
    }

    /// Decodes a stored value. A value whose tag was invalidated is deleted and read as a miss;
    /// one that does not decode as `T` is a miss for this reader and stays in the store, since
    /// another version of the application sharing the store may write and read it (a rolling
    /// deploy). Tags that cannot be checked are a miss too.
    async fn decode_live<T: DeserializeOwned>(&self, store_key: &str, bytes: &[u8]) -> Option<T> {
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

    /// Encodes a value, wrapped with this handle's tags (registering them) if it has any.
    async fn encode_value<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        started_micros: u64,
    ) -> Result<Bytes, Error> {
        let inner = encode(key, value)?;
        let Some(tags) = &self.tags else {
            return Ok(inner);
        };
        let tagged = codec::Tagged {
            tags: tags.to_vec(),
            started_micros,
        };
        let wrapped = codec::wrap(&tagged, &inner).map_err(|reason| Error::Encode {
            key: key.to_owned(),
            reason,
        })?;
        self.register_tags(tags, started_micros).await?;
        Ok(wrapped)
    }

    async fn read<T: DeserializeOwned>(&self, store_key: &str) -> Result<Option<T>, Error> {
        match self.shared.store.get(store_key).await {
            Ok(Some(bytes)) => Ok(self.decode_live(store_key, &bytes).await),
            Ok(None) => Ok(None),
            Err(error) => self.tolerate("get", store_key, error, None),
        }
    }

    /// The value under `key`, or `None` when it is missing, expired, or does not decode as `T`
    /// (such a value stays in the store, for whoever wrote it).
    ///
    /// Django's `get(key, default)` is `get(key).await?.unwrap_or(default)`. A stored `None` is
    /// read back with `T = Option<_>`: `Some(None)`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.read(&self.make_key(key)).await
    }

    /// Stores `value` under `key`, replacing any value there.
    ///
    /// A value the store refuses (over its size limit) is an error and leaves no older value
    /// behind.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: Timeout,
    ) -> Result<(), Error> {
        let bytes = self.encode_value(key, value, now_micros()).await?;
        self.set_raw(key, bytes, timeout).await
    }

    /// Stores `value` only if `key` is missing or expired. Returns whether it was stored; an
    /// existing value keeps its value and its expiry. With [`Timeout::EXPIRE_NOW`] it returns
    /// whether the key was free but stores nothing.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: Timeout,
    ) -> Result<bool, Error> {
        let bytes = self.encode_value(key, value, now_micros()).await?;
        self.add_raw(key, bytes, timeout).await
    }

    /// The value under `key`; when there is none, runs `init`, stores its result and returns it.
    ///
    /// **Single flight:** when many tasks of this process miss the same key at once, `init` runs
    /// in one of them and the others wait for its result. If that task fails, is cancelled or
    /// panics, a waiting task takes over and runs its own `init`.
    ///
    /// A result that cannot be stored (the store is down) is still returned, and the failure is
    /// logged and counted in [`store_errors`](Cache::store_errors). A failed read is an error
    /// unless [`ignore_errors`](CacheBuilder::ignore_errors) is set, in which case it is a miss.
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::new(MemoryStore::new());
    /// let first: String = cache.get_or_set("motd", Timeout::Default, || async { "hi".to_owned() }).await?;
    /// let second: String = cache.get_or_set("motd", Timeout::Default, || async { "bye".to_owned() }).await?;
    /// assert_eq!((first.as_str(), second.as_str()), ("hi", "hi"));
    /// # Ok(()) }
    /// ```
    pub async fn get_or_set<T, F, Fut>(
        &self,
        key: &str,
        timeout: Timeout,
        init: F,
    ) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.get_or_try_set(key, timeout, || async { Ok::<T, Error>(init().await) })
            .await
    }

    /// [`get_or_set`](Cache::get_or_set) with a fallible `init`: its error is returned and
    /// nothing is stored. The error type only has to absorb this crate's [`Error`].
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// #[derive(Debug)]
    /// enum AppError { Cache(axum_cache::Error), Db(String) }
    /// impl From<axum_cache::Error> for AppError {
    ///     fn from(error: axum_cache::Error) -> Self { AppError::Cache(error) }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = Cache::new(MemoryStore::new());
    /// let result: Result<u32, AppError> = cache
    ///     .get_or_try_set("user:7:posts", Timeout::Default, || async { Err(AppError::Db("down".into())) })
    ///     .await;
    /// assert!(matches!(result, Err(AppError::Db(_))));
    /// assert!(!cache.has_key("user:7:posts").await.unwrap());
    /// # }
    /// ```
    pub async fn get_or_try_set<T, E, F, Fut>(
        &self,
        key: &str,
        timeout: Timeout,
        init: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_try_set_with(key, timeout, init, Patience::Wait)
            .await
    }

    /// [`get_or_try_set`](Cache::get_or_try_set), where a caller that cannot wait for another
    /// task computing the same key (`Patience::Never`) computes at once instead.
    pub(crate) async fn get_or_try_set_with<T, E, F, Fut>(
        &self,
        key: &str,
        timeout: Timeout,
        init: F,
        patience: Patience,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let store_key = self.make_key(key);
        if let Some(value) = self.read::<T>(&store_key).await? {
            return Ok(value);
        }
        for _ in 0..MAX_ROUNDS {
            let receiver = match self.shared.flights.join(store_key.clone()) {
                Joined::Leader(leader) => {
                    // Another task, or process, may have stored the value since the first read.
                    let (found, _lock) = self.lock_across_processes::<T>(&store_key).await?;
                    if let Some(bytes) = found {
                        leader.finish(bytes.clone());
                        return decode_computed(key, &bytes);
                    }
                    let (value, bytes) = self.compute(key, &store_key, timeout, init).await?;
                    leader.finish(bytes);
                    return Ok(value);
                }
                Joined::Waiter(_) if patience == Patience::Never => {
                    let (value, _) = self.compute(key, &store_key, timeout, init).await?;
                    return Ok(value);
                }
                Joined::Waiter(receiver) => receiver,
            };
            self.shared.coalesced.fetch_add(1, Ordering::Relaxed);
            match stampede::wait(receiver, self.shared.wait_timeout).await {
                Waited::Done(bytes) => return decode_computed(key, &bytes),
                // The leader failed or was cancelled: look again, perhaps leading this time.
                Waited::LeaderGone => {
                    if let Some(value) = self.read::<T>(&store_key).await? {
                        return Ok(value);
                    }
                }
                Waited::TimedOut => break,
            }
        }
        // Waited long enough: compute without the others.
        let (value, _) = self.compute(key, &store_key, timeout, init).await?;
        Ok(value)
    }

    /// Before computing: with the opt-in lock, takes the key's lock in the store, or waits for
    /// the process holding it until the value appears, the lock is free or the wait runs out.
    /// Returns the value if another task or process stored it, and the lock if it is ours
    /// (released when dropped, after the value is stored).
    async fn lock_across_processes<T: DeserializeOwned>(
        &self,
        store_key: &str,
    ) -> Result<(Option<Bytes>, Option<HeldLock>), Error> {
        let found = self.read_bytes_for_flight::<T>(store_key).await?;
        let Some((ttl, wait)) = self.shared.lock.filter(|_| found.is_none()) else {
            return Ok((found, None));
        };
        if self.shared.store.as_local().is_some() {
            return Ok((None, None));
        }
        let store = &self.shared.store;
        let lock_key = key::internal_key("lock", store_key);
        // `None`: a wait too long to represent, that is, no deadline.
        let deadline = tokio::time::Instant::now().checked_add(wait);
        let mut waited = false;
        loop {
            match store.try_lock(&lock_key, ttl).await {
                Ok(Some(token)) => {
                    let held = HeldLock::new(Arc::clone(store), lock_key, token);
                    let found = self.read_bytes_for_flight::<T>(store_key).await?;
                    return Ok((found, Some(held)));
                }
                Ok(None)
                    if deadline.is_none_or(|deadline| tokio::time::Instant::now() < deadline) =>
                {
                    if !waited {
                        waited = true;
                        self.shared.lock_waits.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(LOCK_POLL).await;
                    if let Some(bytes) = self.read_bytes_for_flight::<T>(store_key).await? {
                        return Ok((Some(bytes), None));
                    }
                }
                Ok(None) => return Ok((None, None)),
                Err(error) => {
                    self.note_store_error("lock", &lock_key, &error);
                    return Ok((None, None));
                }
            }
        }
    }

    /// Runs `init` and stores its result; a failed write is counted, and the value returned.
    async fn compute<T, E, F, Fut>(
        &self,
        key: &str,
        store_key: &str,
        timeout: Timeout,
        init: F,
    ) -> Result<(T, Bytes), E>
    where
        T: Serialize,
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = now_micros();
        let value = init().await?;
        let bytes = self.encode_value(key, &value, started).await?;
        if let Err(error) = self
            .shared
            .store
            .set(store_key, bytes.clone(), self.ttl(timeout))
            .await
        {
            self.note_store_error("set", store_key, &error);
        }
        Ok((value, bytes))
    }

    /// How many tasks of this process have waited for another one computing the same key in
    /// [`get_or_set`](Cache::get_or_set).
    pub fn coalesced(&self) -> u64 {
        self.shared.coalesced.load(Ordering::Relaxed)
    }

    /// How many times [`get_or_set`](Cache::get_or_set) waited for another process's lock (see
    /// [`lock_across_processes`](CacheBuilder::lock_across_processes)).
    pub fn lock_waits(&self) -> u64 {
        self.shared.lock_waits.load(Ordering::Relaxed)
    }

    /// The stored bytes under `store_key` if they decode as `T`, for a flight's double check.
    async fn read_bytes_for_flight<T: DeserializeOwned>(
        &self,
        store_key: &str,
    ) -> Result<Option<Bytes>, Error> {
        let bytes = match self.shared.store.get(store_key).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(error) => return self.tolerate("get", store_key, error, None),
        };
        Ok(self
            .decode_live::<T>(store_key, &bytes)
            .await
            .map(|_| bytes))
    }

    /// The values under `keys` that are present and decode as `T`, by the caller's keys.
    /// Missing keys are left out, and so are values that do not decode as `T` (they stay in the
    /// store).
    pub async fn get_many<T, I, K>(&self, keys: I) -> Result<HashMap<String, T>, Error>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let keys: Vec<String> = keys
            .into_iter()
            .map(|key| key.as_ref().to_owned())
            .collect();
        let store_keys: Vec<String> = keys.iter().map(|key| self.make_key(key)).collect();
        let values = match self.shared.store.get_many(&store_keys).await {
            Ok(values) => values,
            Err(error) => {
                let first = store_keys.first().map_or("", String::as_str);
                return self.tolerate("get_many", first, error, HashMap::new());
            }
        };
        let mut found = HashMap::new();
        for ((key, store_key), value) in keys.into_iter().zip(&store_keys).zip(values) {
            if let Some(bytes) = value
                && let Some(value) = self.decode_live(store_key, &bytes).await
            {
                found.insert(key, value);
            }
        }
        Ok(found)
    }

    /// Stores every pair with one timeout. Returns the (caller's) keys the store refused, so an
    /// empty list means everything was stored. Nothing is written if a value fails to encode.
    pub async fn set_many<I, K, V>(&self, items: I, timeout: Timeout) -> Result<Vec<String>, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Serialize,
    {
        let mut keys = HashMap::new();
        let mut entries = Vec::new();
        let started = now_micros();
        for (key, value) in items {
            let key = key.as_ref();
            let store_key = self.make_key(key);
            entries.push((
                store_key.clone(),
                self.encode_value(key, &value, started).await?,
            ));
            keys.insert(store_key, key.to_owned());
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let all_keys = || keys.values().cloned().collect();
        match self.shared.store.set_many(entries, self.ttl(timeout)).await {
            Ok(failed) => Ok(failed
                .into_iter()
                .map(|store_key| keys.get(&store_key).cloned().unwrap_or(store_key))
                .collect()),
            Err(error) => {
                let fallback = all_keys();
                self.tolerate("set_many", "", error, fallback)
            }
        }
    }

    /// Removes `key`. Returns whether a live value was removed.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        let store_key = self.make_key(key);
        match self.shared.store.delete(&store_key).await {
            Ok(deleted) => Ok(deleted),
            Err(error) => self.tolerate("delete", &store_key, error, false),
        }
    }

    /// Removes every key in `keys`. Returns how many live values were removed.
    pub async fn delete_many<I, K>(&self, keys: I) -> Result<u64, Error>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let store_keys: Vec<String> = keys
            .into_iter()
            .map(|key| self.make_key(key.as_ref()))
            .collect();
        if store_keys.is_empty() {
            return Ok(0);
        }
        match self.shared.store.delete_many(&store_keys).await {
            Ok(deleted) => Ok(deleted),
            Err(error) => self.tolerate("delete_many", "", error, 0),
        }
    }

    /// Adds `delta` (which may be negative) to the integer under `key` and returns the result.
    /// The expiry is kept. A missing key is [`Error::NotFound`] and is not created; a value that
    /// is not an integer is [`Error::NotAnInteger`]. Store failures are always returned, even
    /// with `ignore_errors`, as there is no value to fall back on.
    pub async fn incr(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let store_key = self.make_key(key);
        self.shared
            .store
            .incr(&store_key, delta)
            .await
            .map_err(|error| self.counted(key, &store_key, error))
    }

    /// Subtracts `delta` from the integer under `key`: [`incr`](Cache::incr) with `-delta`.
    pub async fn decr(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let negated = delta.checked_neg().ok_or_else(|| Error::Overflow {
            key: key.to_owned(),
        })?;
        self.incr(key, negated).await
    }

    /// Turns a store error into an [`Error`] for `key`, counting real store failures.
    fn counted(&self, key: &str, store_key: &str, error: StoreError) -> Error {
        if !matches!(
            error,
            StoreError::NotFound | StoreError::NotAnInteger | StoreError::Overflow
        ) {
            self.note_store_error("incr", store_key, &error);
        }
        Error::from_store(key, error)
    }

    /// Whether `key` holds a live value (a stored `None` counts). A value whose tag was
    /// invalidated is not live; to tell, `has_key` reads the value rather than only asking the
    /// store whether the key exists.
    pub async fn has_key(&self, key: &str) -> Result<bool, Error> {
        self.holds_live(&self.make_key(key)).await
    }

    /// Gives `key` a new expiry. Returns whether the key was there (and live: a value whose
    /// tag was invalidated is deleted instead).
    pub async fn touch(&self, key: &str, timeout: Timeout) -> Result<bool, Error> {
        let store_key = self.make_key(key);
        if !self.holds_live(&store_key).await? {
            return Ok(false);
        }
        match self.shared.store.touch(&store_key, self.ttl(timeout)).await {
            Ok(touched) => Ok(touched),
            Err(error) => self.tolerate("touch", &store_key, error, false),
        }
    }

    async fn holds_live(&self, store_key: &str) -> Result<bool, Error> {
        match self.shared.store.get(store_key).await {
            Ok(Some(bytes)) => Ok(self.live_or_evict(store_key, &bytes).await),
            Ok(None) => Ok(false),
            Err(error) => self.tolerate("has_key", store_key, error, false),
        }
    }

    /// Removes everything in the store's namespace: every key of every `Cache` that shares this
    /// store, whatever its prefix or version. Give caches that must be cleared separately their
    /// own stores.
    pub async fn clear(&self) -> Result<(), Error> {
        match self.shared.store.clear().await {
            Ok(()) => Ok(()),
            Err(error) => self.tolerate("clear", "", error, ()),
        }
    }

    /// Moves the value under `key` from this handle's version to version + `delta` and returns
    /// the new version. The moved value gets the default timeout (a store does not report the
    /// remaining one), as in Django. A missing key is [`Error::NotFound`].
    pub async fn incr_version(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let new_version = self
            .version
            .checked_add(delta)
            .ok_or_else(|| Error::Overflow {
                key: key.to_owned(),
            })?;
        let old_key = self.make_key(key);
        let store = &self.shared.store;
        let value = store
            .get(&old_key)
            .await
            .map_err(|error| self.counted(key, &old_key, error))?
            .ok_or_else(|| Error::NotFound {
                key: key.to_owned(),
            })?;
        let new_key = self.make_versioned_key(key, new_version);
        if new_key == old_key {
            // A delta of 0, or a key function that ignores the version: nothing moves (moving
            // would store the value and then delete it).
            return Ok(new_version);
        }
        let ttl = self.shared.default_timeout;
        store
            .set(&new_key, value, ttl)
            .await
            .map_err(|error| self.counted(key, &new_key, error))?;
        store
            .delete(&old_key)
            .await
            .map_err(|error| self.counted(key, &old_key, error))?;
        Ok(new_version)
    }

    /// [`incr_version`](Cache::incr_version) with `-delta`.
    pub async fn decr_version(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let negated = delta.checked_neg().ok_or_else(|| Error::Overflow {
            key: key.to_owned(),
        })?;
        self.incr_version(key, negated).await
    }

    /// Removes every key of this cache (its prefix and version) matching the glob `pattern`
    /// (`*`, `?`, `[a-z]`, `\\` as in Redis), and returns how many live keys were removed:
    /// `delete_pattern("user:42:*")`.
    ///
    /// **Expensive:** the store walks all its keys (Redis with `SCAN`, never `KEYS`). Keys that
    /// were stored under their digest (over 250 bytes, or with spaces) cannot match. Prefer
    /// [tags](Cache::with_tags) or [versions](Cache::incr_version) for routine invalidation.
    /// Needs the default key function; the in-memory and Redis stores support it.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64, Error> {
        let head = self.default_key_head().ok_or_else(|| {
            Error::Config("delete_pattern needs the default key function".to_owned())
        })?;
        let full = format!("{}{pattern}", crate::glob::escape(&head));
        self.shared
            .store
            .delete_pattern(&full)
            .await
            .map_err(|error| self.counted(pattern, &full, error))
    }

    /// The key of a template fragment: Django's `make_template_fragment_key`, without its
    /// ambiguity. The vary-on values are hashed (SHA-256) length-prefixed, so `["a:b"]` and
    /// `["a", "b"]` get different keys.
    ///
    /// ```
    /// # use axum_cache::Cache;
    /// let key = Cache::fragment_key("sidebar", &[&"ada", &42]);
    /// assert!(key.starts_with("template.cache.sidebar."));
    /// assert_ne!(Cache::fragment_key("f", &[&"a:b"]), Cache::fragment_key("f", &[&"a", &"b"]));
    /// ```
    pub fn fragment_key(name: &str, vary_on: &[&VaryOn]) -> String {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        for value in vary_on {
            let text = value.to_string();
            digest.update((text.len() as u64).to_be_bytes());
            digest.update(text.as_bytes());
        }
        let mut key = format!("template.cache.{name}.");
        crate::util::push_hex(&mut key, &digest.finalize());
        key
    }

    /// A rendered fragment of a page (Django's `{% cache %}`): the cached text for `name` and
    /// the `vary_on` values, or `render`'s result, stored for `timeout`. Single-flight like
    /// [`get_or_set`](Cache::get_or_set); tagged like any write through
    /// [`with_tags`](Cache::with_tags).
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::new(MemoryStore::new());
    /// let user = "ada";
    /// let sidebar = cache
    ///     .fragment("sidebar", &[&user], Timeout::secs(500), || async move {
    ///         format!("<aside>Hello {user}</aside>")
    ///     })
    ///     .await?;
    /// assert_eq!(sidebar, "<aside>Hello ada</aside>");
    /// # Ok(()) }
    /// ```
    pub fn fragment<'a, F, Fut>(
        &'a self,
        name: &str,
        vary_on: &[&VaryOn],
        timeout: Timeout,
        render: F,
    ) -> impl Future<Output = Result<String, Error>> + use<'a, F, Fut>
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = String> + 'a,
    {
        // The key is made now, so that the future does not borrow the values.
        let key = Cache::fragment_key(name, vary_on);
        async move { self.get_or_set(&key, timeout, render).await }
    }

    /// Deletes the cached fragment for `name` and `vary_on`; returns whether there was one.
    pub fn invalidate_fragment<'a>(
        &'a self,
        name: &str,
        vary_on: &[&VaryOn],
    ) -> impl Future<Output = Result<bool, Error>> + use<'a> {
        let key = Cache::fragment_key(name, vary_on);
        async move { self.delete(&key).await }
    }

    /// The raw bytes under `key`, without decoding.
    pub async fn get_raw(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let store_key = self.make_key(key);
        match self.shared.store.get(&store_key).await {
            Ok(value) => Ok(value),
            Err(error) => self.tolerate("get", &store_key, error, None),
        }
    }

    /// Stores raw bytes under `key`, without encoding. [`get`](Cache::get) reads them only if
    /// they happen to be in this crate's encoding; use [`get_raw`](Cache::get_raw).
    pub async fn set_raw(&self, key: &str, value: Bytes, timeout: Timeout) -> Result<(), Error> {
        let store_key = self.make_key(key);
        match self
            .shared
            .store
            .set(&store_key, value, self.ttl(timeout))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) => self.tolerate("set", &store_key, error, ()),
        }
    }

    /// [`add`](Cache::add) with raw bytes.
    pub async fn add_raw(&self, key: &str, value: Bytes, timeout: Timeout) -> Result<bool, Error> {
        let store_key = self.make_key(key);
        let ttl = self.ttl(timeout);
        let store = &self.shared.store;
        let added = match store.add(&store_key, value.clone(), ttl).await {
            Ok(added) => added,
            Err(error) => return self.tolerate("add", &store_key, error, false),
        };
        if added {
            return Ok(true);
        }
        // The value in the way may be dead (a tag of it was invalidated): then it goes, and the
        // key is free once more.
        let dead = match store.get(&store_key).await {
            Ok(Some(bytes)) => self.live(&bytes).await == Some(false),
            Ok(None) => false,
            Err(error) => return self.tolerate("get", &store_key, error, false),
        };
        if !dead {
            return Ok(false);
        }
        self.evict(&store_key).await;
        match store.add(&store_key, value, ttl).await {
            Ok(added) => Ok(added),
            Err(error) => self.tolerate("add", &store_key, error, false),
        }
    }
}

/// Whether a computation may wait for another task computing the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Wait (bounded), then take the result.
    Wait,
    /// Never wait: compute at once. For callers that cannot wait where they run (a template
    /// rendered outside a multi-threaded runtime, or inside a render of the same key).
    Never,
}

/// Microseconds since the epoch: when a computation started, or a tag was invalidated.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// The value a missing tag key is created with by an entry whose computation started at
/// `started_micros`: "invalidated just before". A tag key goes missing only by eviction (or
/// `clear`), which counts as an invalidation, so every entry computed earlier stays dead, even
/// once a new entry brings the key back; the new entry itself is live.
pub(crate) fn tag_birth(started_micros: u64) -> Bytes {
    Bytes::from(started_micros.saturating_sub(1).to_string())
}

/// Whether a tag's stored invalidation time (`None`: the tag key is gone) allows an entry whose
/// computation started at `started_micros`.
pub(crate) fn tag_allows(invalidated: Option<&[u8]>, started_micros: u64) -> bool {
    invalidated
        .and_then(|time| std::str::from_utf8(time).ok())
        .and_then(|time| time.parse::<u64>().ok())
        .is_some_and(|invalidated| invalidated < started_micros)
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
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            lock: None,
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
    /// compute it themselves. No effect with an in-process store. See the
    /// [stampede chapter](crate::docs::stampede).
    pub fn lock_across_processes(mut self, ttl: Duration, wait: Duration) -> Self {
        self.lock = Some((ttl, wait));
        self
    }

    /// The longest [`get_or_set`](Cache::get_or_set) waits for another task computing the same
    /// key before computing by itself (default 10 s).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
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
                flights: Arc::default(),
                coalesced: AtomicU64::new(0),
                lock_waits: AtomicU64::new(0),
                wait_timeout: self.wait_timeout,
                lock: self.lock,
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
