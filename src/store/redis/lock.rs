//! A lock held in Redis: [`RedisLock`].

use std::fmt;
use std::time::Duration;

use fred::prelude::{Expiration, Key, KeysInterface, SetOptions, Value};

use super::RedisStore;
use super::command::fred;
use super::expiry::lock_millis;
use super::reply::{int_reply, set_reply};
use crate::store::{LockToken, StoreError};

/// Deletes the lock only if it still holds this holder's token.
const RELEASE: &str = "\
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Gives the lock a new expiry only if it still holds this holder's token.
const EXTEND: &str = "\
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

impl RedisStore {
    /// Takes the lock named `key` (in this store's namespace) for `ttl` (at least 1 ms), if no
    /// one holds it: `Some(lock)` if it is now ours, `None` if someone else has it.
    ///
    /// The lock is a key holding a 128-bit token from the operating system's random generator
    /// ([`LockToken::random`]), set with `SET NX PX`; see [`RedisLock`]. If the generator fails,
    /// this fails with [`StoreError::Backend`] before sending anything. Lock keys share the
    /// namespace with cache entries, so name them apart (for example `lock:{key}`).
    pub async fn lock(&self, key: &str, ttl: Duration) -> Result<Option<RedisLock>, StoreError> {
        let token = LockToken::random()?;
        let redis_key = self.key(key);
        let reply: Value = self
            .run(fred(self.client().set(
                redis_key.clone(),
                token.as_str(),
                Some(Expiration::PX(lock_millis(ttl))),
                Some(SetOptions::NX),
                false,
            )))
            .await?;
        Ok(set_reply(&reply)?
            .then(|| RedisLock::new(self.clone(), key.to_owned(), redis_key, token)))
    }
}

/// A lock acquired with [`RedisStore::lock`]: a key holding a random token, with an expiry.
///
/// Only the holder can [`release`](RedisLock::release) or [`extend`](RedisLock::extend) it: both
/// compare the stored token with this one and act in the same atomic step (a Lua script), so a
/// holder whose lock expired and was taken by someone else cannot remove or prolong the new
/// holder's lock. Dropping a `RedisLock` does not release it; the expiry does.
///
/// This is a single-instance lock (one Redis, or the one primary that owns the key in a
/// cluster): good for keeping a herd of processes from computing the same value at once, not a
/// guarantee of mutual exclusion through failovers or long pauses. Pick an expiry longer than
/// the work it guards, or extend it while working.
#[must_use = "a lock is released by calling `release`, or when it expires"]
pub struct RedisLock {
    store: RedisStore,
    key: String,
    redis_key: Key,
    token: LockToken,
}

impl RedisLock {
    pub(super) fn new(store: RedisStore, key: String, redis_key: Key, token: LockToken) -> Self {
        RedisLock {
            store,
            key,
            redis_key,
            token,
        }
    }

    /// The token, for [`Store::try_lock`](crate::store::Store::try_lock).
    pub(super) fn into_token(self) -> LockToken {
        self.token
    }

    /// The key this lock was taken on, as given to [`RedisStore::lock`].
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Releases the lock. Returns `false` if it was no longer ours (it expired, and perhaps was
    /// taken by someone else, whose lock is left alone).
    pub async fn release(self) -> Result<bool, StoreError> {
        let args = vec![Value::from(self.token.as_str())];
        let reply = self
            .store
            .eval(RELEASE, vec![self.redis_key.clone()], args)
            .await?;
        Ok(int_reply(reply)? > 0)
    }

    /// Sets the lock to expire `ttl` from now (at least 1 ms). Returns `false` if it was no
    /// longer ours, in which case nothing changed.
    pub async fn extend(&self, ttl: Duration) -> Result<bool, StoreError> {
        let args = vec![
            Value::from(self.token.as_str()),
            Value::from(lock_millis(ttl)),
        ];
        let reply = self
            .store
            .eval(EXTEND, vec![self.redis_key.clone()], args)
            .await?;
        Ok(int_reply(reply)? > 0)
    }
}

/// Releases the lock on `key` if it holds `token`, in one atomic step.
pub(super) async fn release_token(
    store: &RedisStore,
    key: &str,
    token: &str,
) -> Result<bool, StoreError> {
    let reply = store
        .eval(RELEASE, vec![store.key(key)], vec![Value::from(token)])
        .await?;
    Ok(int_reply(reply)? > 0)
}

impl fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("key_hash", &crate::util::ShortHash(&self.key).to_string())
            .finish_non_exhaustive()
    }
}
