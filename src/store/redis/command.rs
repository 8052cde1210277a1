//! Sending commands: each one through the circuit breaker and bounded by the command timeout,
//! fred's errors sorted into timeouts, outages and the rest, and multi-key commands split by
//! cluster slot and pipelined.

use std::collections::BTreeMap;
use std::future::Future;

use bytes::Bytes;
use fred::prelude::{
    ClientLike, Error as FredError, ErrorKind, Expiration, Key, KeysInterface, LuaInterface,
    Options, Pool, Server, Value,
};
use fred::util::redis_keyslot;

use super::RedisStore;
use super::breaker::is_outage;
use super::reply::{count, int_reply};
use crate::store::StoreError;

impl RedisStore {
    /// The Redis key of a store key: `{prefix}:{key}`.
    pub(super) fn key(&self, key: &str) -> Key {
        let mut full = String::with_capacity(self.inner.prefix.len() + 1 + key.len());
        full.push_str(&self.inner.prefix);
        full.push(':');
        full.push_str(key);
        Key::from(full)
    }

    pub(super) fn client(&self) -> &fred::clients::WithOptions<Pool> {
        &self.inner.client
    }

    pub(super) fn client_for(&self, node: Option<Server>) -> fred::clients::WithOptions<Pool> {
        let options = Options {
            cluster_node: node,
            ..self.inner.options.clone()
        };
        self.inner.pool.with_options(&options)
    }

    pub(super) fn clustered(&self) -> bool {
        self.inner.pool.is_clustered()
    }

    /// Runs one command through the circuit breaker, bounded by the command timeout.
    pub(super) async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let permit = self.inner.breaker.admit()?;
        let result = match tokio::time::timeout(self.inner.command_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout),
        };
        permit.settle(&result);
        result
    }

    pub(super) async fn eval(
        &self,
        script: &str,
        keys: Vec<Key>,
        args: Vec<Value>,
    ) -> Result<Value, StoreError> {
        self.run(fred(self.client().eval(script, keys, args))).await
    }

    /// `UNLINK`s `keys`: one command for a single server, one per hash slot (pipelined) in a
    /// cluster, where a command's keys must share a slot.
    pub(super) async fn unlink(&self, keys: Vec<Key>) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        if !self.clustered() {
            let removed: i64 = self.run(fred(self.client().unlink(keys))).await?;
            return Ok(count(removed));
        }
        let slots = by_slot(&keys);
        let replies = self
            .pipelined(slots.values().map(|positions| {
                let group: Vec<Key> = positions
                    .iter()
                    .filter_map(|&i| keys.get(i).cloned())
                    .collect();
                Command::Unlink(group)
            }))
            .await?;
        let mut removed = 0;
        for reply in replies {
            removed += count(int_reply(reply?)?);
        }
        Ok(removed)
    }

    /// Sends `commands` in one pipeline (one round trip per node) and returns each reply. An
    /// outage of any command fails the whole call; other errors are returned per command.
    pub(super) async fn pipelined(
        &self,
        commands: impl Iterator<Item = Command>,
    ) -> Result<Vec<Result<Value, StoreError>>, StoreError> {
        let pipeline = self.inner.pool.next_connected().pipeline();
        for command in commands {
            let queued: Result<(), FredError> = match command {
                Command::Unlink(keys) => pipeline.unlink(keys).await,
                Command::Mget(keys) => pipeline.mget(keys).await,
                Command::Set(key, value, expiry) => {
                    pipeline.set(key, value, expiry, None, false).await
                }
            };
            queued.map_err(map_error)?;
        }
        self.run(async {
            let replies: Vec<Result<Value, StoreError>> = pipeline
                .try_all::<Value>()
                .await
                .into_iter()
                .map(|reply| reply.map_err(map_error))
                .collect();
            match replies
                .iter()
                .find_map(|reply| reply.as_ref().err().filter(|e| is_outage(e)))
            {
                Some(StoreError::Timeout) => Err(StoreError::Timeout),
                Some(outage) => Err(StoreError::Unavailable(outage.to_string())),
                None => Ok(replies),
            }
        })
        .await
    }
}

/// A command sent in a pipeline.
pub(super) enum Command {
    Unlink(Vec<Key>),
    Mget(Vec<Key>),
    Set(Key, Bytes, Option<Expiration>),
}

/// Positions of `keys` grouped by cluster hash slot.
pub(super) fn by_slot(keys: &[Key]) -> BTreeMap<u16, Vec<usize>> {
    let mut slots: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (position, key) in keys.iter().enumerate() {
        slots
            .entry(redis_keyslot(key.as_bytes()))
            .or_default()
            .push(position);
    }
    slots
}

/// Maps a fred result to a store result.
///
/// The call is boxed first: a fred command future is large, and every async wrapper that takes
/// one by value and awaits it keeps another copy of it in its own state, copied on each move.
/// Boxed, the wrappers around it hold and move only a pointer.
pub(super) fn fred<'a, T: 'a>(
    call: impl Future<Output = Result<T, FredError>> + Send + 'a,
) -> impl Future<Output = Result<T, StoreError>> + Send + 'a {
    let call = Box::pin(call);
    async move { call.await.map_err(map_error) }
}

/// Sorts a fred error into timeouts, outages (Redis cannot serve now) and everything else.
fn map_error(error: FredError) -> StoreError {
    const UNAVAILABLE_REPLIES: [&str; 6] = [
        "LOADING",
        "MASTERDOWN",
        "READONLY",
        "BUSY",
        "TRYAGAIN",
        "CLUSTERDOWN",
    ];
    match error.kind() {
        ErrorKind::Timeout => StoreError::Timeout,
        ErrorKind::IO
        | ErrorKind::Canceled
        | ErrorKind::Routing
        | ErrorKind::Cluster
        | ErrorKind::Sentinel
        | ErrorKind::Backpressure
        | ErrorKind::Auth => StoreError::Unavailable(error.to_string()),
        _ if UNAVAILABLE_REPLIES
            .iter()
            .any(|reply| error.details().starts_with(reply)) =>
        {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Backend(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_group_by_cluster_slot() {
        let keys: Vec<Key> = ["{u1}:a", "x", "{u1}:b", "y"]
            .into_iter()
            .map(Key::from)
            .collect();
        let slots = by_slot(&keys);
        assert!(slots.values().any(|positions| positions == &[0, 2]));
        assert_eq!(slots.values().map(Vec::len).sum::<usize>(), 4);
    }
}
