//! Storage backends: the [`Store`] trait and the stores that ship with the crate.
//!
//! A store keeps opaque [`Bytes`] under string keys, each with an optional time to live. It knows
//! nothing of key prefixes, versions or serialization: that is the job of the
//! [`Cache`](crate::Cache) handle in front of it. See the [stores chapter](crate::docs::stores)
//! for which store to pick and how to write your own.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

#[cfg(any(test, feature = "conformance"))]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod dummy;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use crate::error::StoreError;
pub use dummy::DummyStore;
pub use memory::{MemoryStore, MemoryStoreBuilder};
#[cfg(all(test, feature = "redis"))]
pub(crate) use redis::normalize_url;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisLock, RedisOptions, RedisStats, RedisStore, RedisStoreBuilder};

/// The future returned by every [`Store`] method: boxed so that the trait stays object-safe and a
/// [`Cache`](crate::Cache) can hold any store as `Arc<dyn Store>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How long a stored value lives.
///
/// `None` keeps the value until it is deleted or evicted. `Some(Duration::ZERO)` means the value
/// expires at once: [`Store::set`] then removes any current value, [`Store::add`] reports whether
/// the key was free but stores nothing, and [`Store::touch`] deletes the key. A duration too large
/// for the store's clock is treated as `None`.
pub type Ttl = Option<Duration>;

/// A key-value backend with expiry: the storage under a [`Cache`](crate::Cache).
///
/// Keys are the final keys the `Cache` made (prefix and version included); they are at most 250
/// bytes of UTF-8 without spaces or control characters, so every store can hold them verbatim.
/// Values are opaque bytes.
///
/// Every method must be safe to call concurrently. [`add`](Store::add) and
/// [`incr`](Store::incr) must be atomic with respect to every other operation on the same key,
/// also across processes for a shared store. Remote stores should bound every call with a timeout
/// and report it as [`StoreError::Timeout`].
///
/// Check an implementation with the conformance suite, `store::conformance`, which needs the
/// `conformance` feature (turn it on for your tests only: see the
/// [stores chapter](crate::docs::stores#writing-a-store)).
///
/// # Example
///
/// ```
/// use axum_cache::store::{MemoryStore, Store};
/// use bytes::Bytes;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::store::StoreError> {
/// let store = MemoryStore::new();
/// store.set("greeting", Bytes::from_static(b"hello"), Some(Duration::from_secs(60))).await?;
/// assert_eq!(store.get("greeting").await?, Some(Bytes::from_static(b"hello")));
/// assert!(!store.add("greeting", Bytes::from_static(b"bye"), None).await?);
/// # Ok(()) }
/// ```
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The value under `key`, or `None` when it is missing or expired.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>>;

    /// The values under `keys`, in the same order, `None` for each missing or expired key.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>>;

    /// Stores `value` under `key`, replacing any current value and its expiry.
    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, ()>;

    /// Stores each pair with the same `ttl` and returns the keys that could not be stored (for
    /// example a value over the store's size limit). An error means the store could not be
    /// reached at all.
    fn set_many<'a>(
        &'a self,
        entries: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> StoreFuture<'a, Vec<String>>;

    /// Stores `value` only if `key` is missing or expired, atomically. Returns whether it was
    /// free. A present key keeps its value and its expiry.
    fn add<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, bool>;

    /// Removes `key`. Returns whether a live value was removed.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;

    /// Removes every key in `keys`. Returns how many live values were removed.
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, u64>;

    /// Adds `delta` to the integer under `key` atomically and returns the new value, keeping the
    /// key's expiry.
    ///
    /// The value must be an integer in ASCII decimal (what [`Cache`](crate::Cache) stores for
    /// integer values). A missing key is [`StoreError::NotFound`] and is not created; any other
    /// value is [`StoreError::NotAnInteger`]; a result outside `i64` is
    /// [`StoreError::Overflow`].
    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> StoreFuture<'a, i64>;

    /// Gives a live `key` a new expiry. Returns whether the key was there.
    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> StoreFuture<'a, bool>;

    /// Whether `key` holds a live value.
    fn has_key<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.get(key).await?.is_some()) })
    }

    /// Removes every key in this store's namespace, and nothing outside it.
    fn clear(&self) -> StoreFuture<'_, ()>;

    /// The in-process side of this store, if it lives in this process (see [`LocalStore`]).
    /// Remote stores keep the default, `None`.
    fn as_local(&self) -> Option<&dyn LocalStore> {
        None
    }

    /// Removes every key in this store's namespace that matches the glob `pattern` (`*`, `?`,
    /// `[a-z]`, `\` as in Redis) and returns how many live keys were removed.
    ///
    /// **Expensive:** no store indexes keys by pattern, so this walks every key. Prefer versions
    /// and tags for routine invalidation. The default is [`StoreError::Unsupported`].
    fn delete_pattern<'a>(&'a self, pattern: &'a str) -> StoreFuture<'a, u64> {
        let _ = pattern;
        ready(Err(StoreError::Unsupported("delete_pattern")))
    }

    /// Takes the lock named `key` for `ttl` if no one holds it: `Some(token)` when it is now
    /// ours. Used to keep processes that share a store from computing the same response at
    /// once.
    ///
    /// The default stores a [random token](LockToken::random) with [`add`](Store::add), which
    /// is atomic on every conforming store. The lock expires after `ttl` even if its holder
    /// dies. When the operating system gives no random bytes, it fails with
    /// [`StoreError::Backend`] and takes no lock, as the Redis store does: callers then go on
    /// without the lock, as after any store failure.
    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockToken>> {
        Box::pin(async move {
            let token = LockToken::random()?;
            let taken = self
                .add(key, Bytes::from(token.0.clone()), Some(ttl))
                .await?;
            Ok(taken.then_some(token))
        })
    }

    /// Releases a lock taken with [`try_lock`](Store::try_lock), only if it still holds `token`.
    /// Returns whether it was released.
    ///
    /// The default reads the token and then deletes the key, which is not atomic: a lock that
    /// expired between the two steps and was taken by someone else is deleted too. Stores that
    /// can compare and delete in one step (Redis) override it.
    fn unlock<'a>(&'a self, key: &'a str, token: &'a LockToken) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            match self.get(key).await? {
                Some(held) if held == token.0.as_bytes() => self.delete(key).await,
                _ => Ok(false),
            }
        })
    }
}

/// The proof of holding a lock taken with [`Store::try_lock`]: a random token.
#[derive(Clone, PartialEq, Eq)]
pub struct LockToken(String);

impl LockToken {
    /// A token of 128 bits from the operating system's random generator, as 32 lowercase hex
    /// digits: no other holder can guess or repeat it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the operating system's generator fails. There is no
    /// fallback to a weaker source: a token another process could predict would let it release
    /// or extend a lock it does not hold.
    pub fn random() -> Result<LockToken, StoreError> {
        let mut bytes = [0u8; 16];
        crate::util::fill_random(&mut bytes).map_err(|error| {
            StoreError::Backend(format!("no randomness for a lock token: {error}").into())
        })?;
        let mut token = String::with_capacity(32);
        crate::util::push_hex(&mut token, &bytes);
        Ok(LockToken(token))
    }

    /// A token with the given text, for stores that make their own.
    pub fn new(token: impl Into<String>) -> LockToken {
        LockToken(token.into())
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token is a credential: keep it out of logs.
        f.write_str("LockToken(..)")
    }
}

/// A value an in-process store keeps as a live object instead of bytes.
pub type LocalValue = Arc<dyn Any + Send + Sync>;

/// The extra abilities of a store that lives in this process, reached through
/// [`Store::as_local`].
///
/// Such a store can keep a value as a shared object, so a reader gets it back without decoding,
/// and it takes keys of any length and content verbatim. The response cache uses this to serve a
/// hit from the [`MemoryStore`] by cloning a prepared response instead of parsing bytes. Objects
/// share the key space, bounds, expiry and eviction of the store's byte values; reading an
/// object's key with [`Store::get`] gives `None`, and [`Store::incr`] on it is
/// [`StoreError::NotAnInteger`].
pub trait LocalStore: Send + Sync {
    /// The object under `key`, or `None` when the key is missing, expired, or holds bytes.
    fn get_object(&self, key: &str) -> Option<LocalValue>;

    /// Stores `object` under `key`, charged as `size` bytes against the store's bounds.
    fn set_object(
        &self,
        key: &str,
        object: LocalValue,
        size: usize,
        ttl: Ttl,
    ) -> Result<(), StoreError>;

    /// [`Store::get`], without waiting: the bytes under `key`, or `None`.
    fn get_bytes(&self, key: &str) -> Option<Bytes>;

    /// [`Store::add`], without waiting.
    fn add_bytes(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, StoreError>;
}

/// Wraps an already computed result in a [`StoreFuture`], for stores that answer synchronously.
pub(crate) fn ready<'a, T: Send + 'a>(result: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::test_source;

    /// Gives 0x00, 0x11, 0x22, …: bytes a test can recognise in a token.
    fn recognisable(bytes: &mut [u8]) -> Result<(), getrandom::Error> {
        for (byte, value) in bytes.iter_mut().zip((0..=0xffu8).step_by(0x11)) {
            *byte = value;
        }
        Ok(())
    }

    fn failing(_: &mut [u8]) -> Result<(), getrandom::Error> {
        Err(getrandom::Error::UNSUPPORTED)
    }

    #[test]
    fn lock_tokens_are_the_generators_bytes_in_lowercase_hex() {
        let token = test_source::with(recognisable, LockToken::random).unwrap();
        assert_eq!(token.as_str(), "00112233445566778899aabbccddeeff");
    }

    #[test]
    fn lock_tokens_from_the_operating_system_are_distinct_lowercase_hex() {
        let mut tokens: Vec<String> = (0..1000)
            .map(|_| LockToken::random().unwrap().as_str().to_owned())
            .collect();
        assert!(tokens.iter().all(|token| {
            token.len() == 32
                && token
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }));
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(tokens.len(), 1000);
    }

    #[test]
    fn without_random_bytes_no_lock_is_taken() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let store = MemoryStore::new();
        let taken = test_source::with(failing, || {
            runtime.block_on(store.try_lock("lock", Duration::from_secs(5)))
        });
        assert!(matches!(taken, Err(StoreError::Backend(_))), "{taken:?}");
        assert!(store.as_local().unwrap().get_bytes("lock").is_none());
    }
}
