//! The [`Store`] operations of [`RedisStore`]: each one atomic Redis step.

use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{Expiration, Key, KeysInterface, SetOptions, Value};

use super::command::{Command, by_slot, fred};
use super::expiry::{Expiry, expiry};
use super::reply::{bytes_reply, int_reply, set_reply, unexpected, values_reply};
use super::{RedisLock, RedisStore, lock};
use crate::store::{LockToken, Store, StoreError, StoreFuture, Ttl};

/// Adds a delta to a decimal integer in one atomic step, without creating a missing key and
/// keeping the expiry. `INCRBY` does the arithmetic (Lua numbers are doubles and would round
/// large integers); the new value is read back as text for the same reason.
const INCR: &str = "\
local found, current = pcall(redis.call, 'GET', KEYS[1])
if not found then return 'NOTINT' end
if not current then return 'NOTFOUND' end
local done, failure = pcall(redis.call, 'INCRBY', KEYS[1], ARGV[1])
if done then return redis.call('GET', KEYS[1]) end
local message = type(failure) == 'table' and failure.err or tostring(failure)
if string.find(message, 'overflow', 1, true) then return 'OVERFLOW' end
return 'NOTINT'";

/// Makes a key persistent, answering whether it exists (`PERSIST` alone answers 0 for a key
/// that exists but already had no expiry).
const PERSIST: &str = "\
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PERSIST', KEYS[1])
  return 1
end
return 0";

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let reply: Value = self.run(fred(self.client().get(self.key(key)))).await?;
            bytes_reply(reply)
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<Key> = keys.iter().map(|key| self.key(key)).collect();
            if !self.clustered() {
                let expected = keys.len();
                let reply: Value = self.run(fred(self.client().mget(keys))).await?;
                return values_reply(reply, expected);
            }
            let slots = by_slot(&keys);
            let replies = self
                .pipelined(slots.values().map(|positions| {
                    Command::Mget(
                        positions
                            .iter()
                            .filter_map(|&i| keys.get(i).cloned())
                            .collect(),
                    )
                }))
                .await?;
            let mut found = vec![None; keys.len()];
            for (positions, reply) in slots.values().zip(replies) {
                let values = values_reply(reply?, positions.len())?;
                for (&position, value) in positions.iter().zip(values) {
                    if let Some(slot) = found.get_mut(position) {
                        *slot = value;
                    }
                }
            }
            Ok(found)
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.key(key);
            let expiration = match expiry(ttl) {
                Expiry::Now => {
                    let _: i64 = self.run(fred(self.client().unlink(key))).await?;
                    return Ok(());
                }
                Expiry::Never => None,
                Expiry::Millis(millis) => Some(Expiration::PX(millis)),
            };
            let reply: Value = self
                .run(fred(self.client().set(key, value, expiration, None, false)))
                .await?;
            if set_reply(&reply)? {
                Ok(())
            } else {
                Err(unexpected("SET", &reply))
            }
        })
    }

    fn set_many<'a>(
        &'a self,
        entries: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(Vec::new());
            }
            let expiration = match expiry(ttl) {
                Expiry::Now => {
                    let keys = entries.iter().map(|(key, _)| self.key(key)).collect();
                    self.unlink(keys).await?;
                    return Ok(Vec::new());
                }
                Expiry::Never => None,
                Expiry::Millis(millis) => Some(Expiration::PX(millis)),
            };
            let commands: Vec<Command> = entries
                .iter()
                .map(|(key, value)| Command::Set(self.key(key), value.clone(), expiration.clone()))
                .collect();
            let replies = self.pipelined(commands.into_iter()).await?;
            Ok(entries
                .into_iter()
                .zip(replies)
                .filter(|(_, reply)| !matches!(reply.as_ref().map(set_reply), Ok(Ok(true))))
                .map(|((key, _), _)| key)
                .collect())
        })
    }

    fn add<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.key(key);
            let expiration = match expiry(ttl) {
                Expiry::Now => {
                    let present: i64 = self.run(fred(self.client().exists(key))).await?;
                    return Ok(present == 0);
                }
                Expiry::Never => None,
                Expiry::Millis(millis) => Some(Expiration::PX(millis)),
            };
            let reply: Value = self
                .run(fred(self.client().set(
                    key,
                    value,
                    expiration,
                    Some(SetOptions::NX),
                    false,
                )))
                .await?;
            set_reply(&reply)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let removed: i64 = self.run(fred(self.client().unlink(self.key(key)))).await?;
            Ok(removed > 0)
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            self.unlink(keys.iter().map(|key| self.key(key)).collect())
                .await
        })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let reply = self
                .eval(INCR, vec![self.key(key)], vec![Value::from(delta)])
                .await?;
            let text = bytes_reply(reply.clone())?.ok_or_else(|| unexpected("incr", &reply))?;
            match &text[..] {
                b"NOTFOUND" => Err(StoreError::NotFound),
                b"NOTINT" => Err(StoreError::NotAnInteger),
                b"OVERFLOW" => Err(StoreError::Overflow),
                digits => std::str::from_utf8(digits)
                    .ok()
                    .and_then(|digits| digits.parse().ok())
                    .ok_or_else(|| unexpected("incr", &reply)),
            }
        })
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let key = self.key(key);
            let changed = match expiry(ttl) {
                Expiry::Now => self.run(fred(self.client().unlink::<i64, _>(key))).await?,
                Expiry::Never => int_reply(self.eval(PERSIST, vec![key], Vec::new()).await?)?,
                Expiry::Millis(millis) => {
                    self.run(fred(self.client().pexpire::<i64, _>(key, millis, None)))
                        .await?
                }
            };
            Ok(changed > 0)
        })
    }

    fn has_key<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let present: i64 = self.run(fred(self.client().exists(self.key(key)))).await?;
            Ok(present > 0)
        })
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            // Every key of the namespace matches `*` after the prefix.
            RedisStore::delete_pattern(self, "*").await?;
            Ok(())
        })
    }

    fn delete_pattern<'a>(&'a self, pattern: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(RedisStore::delete_pattern(self, pattern))
    }

    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockToken>> {
        Box::pin(async move {
            let lock = self.lock(key, ttl).await?;
            Ok(lock.map(RedisLock::into_token))
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, token: &'a LockToken) -> StoreFuture<'a, bool> {
        Box::pin(lock::release_token(self, key, token.as_str()))
    }
}
