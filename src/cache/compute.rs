//! `get_or_set` and its kin: a missing value computed once, however many tasks (and, with the
//! opt-in lock, processes) ask for it at the same time.

use std::future::Future;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use crate::stampede::{self, HeldLock, Joined, Locked, MAX_ROUNDS, Waited};
use crate::util::now_micros;
use crate::{Error, Timeout, codec, key};

/// Whether a computation may wait for another task computing the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Wait (bounded), then take the result.
    Wait,
    /// Never wait: compute at once. For callers that cannot wait where they run (a template
    /// rendered outside a multi-threaded runtime, or inside a render of the same key).
    Never,
}

impl Cache {
    /// The value under `key`; when there is none, runs `init`, stores its result and returns it.
    ///
    /// **Single flight:** when many tasks of this process miss the same key at once, `init` runs
    /// in one of them and the others wait for its result. If that task fails, is cancelled or
    /// panics, a waiting task takes over and runs its own `init`.
    ///
    /// A result that cannot be stored (the store is down) is still returned, and the failure is
    /// logged and counted in [`store_errors`](Cache::store_errors). A failed read is an error
    /// unless [`ignore_errors`](crate::CacheBuilder::ignore_errors) is set, in which case it is a miss.
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
            match stampede::wait(receiver, self.shared.stampede.wait_timeout).await {
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
    pub(super) async fn lock_across_processes<T: DeserializeOwned>(
        &self,
        store_key: &str,
    ) -> Result<(Option<Bytes>, Option<HeldLock>), Error> {
        let found = self.read_bytes_for_flight::<T>(store_key).await?;
        let Some(settings) = self.shared.stampede.lock.filter(|_| found.is_none()) else {
            return Ok((found, None));
        };
        if self.shared.store.as_local().is_some() {
            return Ok((None, None));
        }
        let locked = stampede::lock_or_wait(
            &self.shared.store,
            key::internal_key("lock", store_key),
            settings,
            || self.read_bytes_for_flight::<T>(store_key),
            || {
                self.shared.lock_waits.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await?;
        Ok(match locked {
            Locked::Held { lock, found, .. } => (found, Some(lock)),
            Locked::Found(bytes) => (Some(bytes), None),
            Locked::GaveUp => (None, None),
            Locked::Failed { key, error } => {
                self.note_store_error("lock", &key, &error);
                (None, None)
            }
        })
    }

    /// Runs `init` and stores its result; a failed write is counted, and the value returned.
    pub(super) async fn compute<T, E, F, Fut>(
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
    /// [`lock_across_processes`](crate::CacheBuilder::lock_across_processes)).
    pub fn lock_waits(&self) -> u64 {
        self.shared.lock_waits.load(Ordering::Relaxed)
    }

    /// The stored bytes under `store_key` if they decode as `T`, for a flight's double check.
    pub(super) async fn read_bytes_for_flight<T: DeserializeOwned>(
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
}

fn decode_computed<T: DeserializeOwned, E: From<Error>>(key: &str, bytes: &[u8]) -> Result<T, E> {
    codec::decode(bytes).map_err(|reason| {
        E::from(Error::Encode {
            key: key.to_owned(),
            reason,
        })
    })
}
