//! The typed reads and writes of [`Cache`], its counters, versions, pattern deletes and raw
//! bytes.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use crate::store::StoreError;
use crate::util::now_micros;
use crate::{Error, Timeout};

impl Cache {
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
            let value = match value {
                Some(bytes) => self.decode_live::<T>(store_key, &bytes).await,
                None => None,
            };
            self.count_read(value.is_some());
            if let Some(value) = value {
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
    pub(super) fn counted(&self, key: &str, store_key: &str, error: StoreError) -> Error {
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

    pub(super) async fn holds_live(&self, store_key: &str) -> Result<bool, Error> {
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
