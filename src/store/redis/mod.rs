//! The Redis store: [`RedisStore`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::interfaces::ClusterInterface;
use fred::prelude::{
    ClientLike, Error as FredError, ErrorKind, Expiration, Key, KeysInterface, LuaInterface,
    Options, Pool, Server, SetOptions, Value,
};
use fred::types::{ClusterHash, CustomCommand};
use fred::util::redis_keyslot;

use super::{LockToken, Store, StoreError, StoreFuture, Ttl};
use crate::Error;

mod breaker;
mod config;
mod lock;
#[cfg(feature = "redis-tls")]
mod tls;

pub use breaker::RedisStats;
use breaker::{Breaker, is_outage};
#[cfg(test)]
pub(crate) use config::normalize_url;
pub use config::{RedisOptions, RedisStoreBuilder};
pub use lock::RedisLock;

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

/// Keys asked for per `SCAN` page, and so deleted per `UNLINK` batch.
const SCAN_COUNT: u32 = 1000;

/// The longest expiry sent to Redis, in milliseconds (2^62 ms, about 146 million years). Redis
/// adds an expiry to its clock and refuses a sum past `i64::MAX`; a longer [`Ttl`] means "no
/// expiry".
const MAX_PX: u128 = 1 << 62;

/// A [`Store`] in Redis (standalone, behind Sentinel, or a Cluster), shared by every process
/// that uses the same server and prefix. Needs the `redis` feature.
///
/// Values are stored as plain Redis strings (binary-safe) under `{prefix}:{key}`, with the
/// expiry in Redis (`PX`, millisecond precision; a non-zero TTL under 1 ms is rounded up to
/// 1 ms, never down to "delete"). Every operation is one atomic Redis step: `add` is
/// `SET NX PX`, `incr` a Lua script that fails on a missing key instead of creating it,
/// `touch` is `PEXPIRE`/`PERSIST`, `get_many` is `MGET` (one per hash slot in a cluster),
/// `set_many` one pipelined round trip, `delete_many` is `UNLINK`, `clear` walks the prefix
/// with `SCAN` and `UNLINK`s it page by page.
///
/// **Never down with Redis.** Every command is bounded by the command timeout (default 100 ms)
/// and fails with [`StoreError::Timeout`]; a lost connection fails at once with
/// [`StoreError::Unavailable`] while the store reconnects in the background. After 5
/// consecutive failures a circuit breaker fails every call immediately for 1 s, then lets one
/// probe through and closes when Redis answers: an outage costs requests no latency, and
/// recovery needs no restart. Put the store under a [`Cache`](crate::Cache) with
/// [`ignore_errors`](crate::CacheBuilder::ignore_errors) to turn all of that into misses.
///
/// A huge TTL (over about 146 million years, such as `Duration::from_secs(u64::MAX)`) is
/// stored without expiry. A key that holds something this store did not write (a hash, a
/// list) makes `get` fail with [`StoreError::Backend`] and `incr` with
/// [`StoreError::NotAnInteger`]; `set` overwrites it.
///
/// The store is cheap to clone; clones share the connections, the breaker and the
/// [`stats`](RedisStore::stats). See the [stores chapter](crate::docs::stores#the-redis-store).
///
/// # Example
///
/// ```no_run
/// use axum_cache::{Cache, Timeout, store::RedisStore};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0")
///     .prefix("shop")
///     .command_timeout(Duration::from_millis(50))
///     .build()
///     .await?;
/// let cache = Cache::builder(store.clone()).ignore_errors(true).build();
/// cache.set("greeting", "hello", Timeout::secs(60)).await?;
/// store.delete_pattern(":1:user:*").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The pool with the command options, made once: making it per call clones the pool handle,
    /// a reference count that every worker thread would write.
    client: fred::clients::WithOptions<Pool>,
    prefix: String,
    options: Options,
    command_timeout: Duration,
    breaker: Breaker,
    /// Whether the store made the pool, and so closes it when the last clone is dropped.
    owns_pool: bool,
}

/// When a value expires, in Redis terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Now,
    Never,
    Millis(i64),
}

fn expiry(ttl: Ttl) -> Expiry {
    match ttl {
        None => Expiry::Never,
        Some(ttl) if ttl.is_zero() => Expiry::Now,
        Some(ttl) => {
            let millis = ttl.as_nanos().div_ceil(1_000_000);
            match i64::try_from(millis) {
                Ok(millis) if millis as u128 <= MAX_PX => Expiry::Millis(millis),
                _ => Expiry::Never,
            }
        }
    }
}

/// A lock's expiry in milliseconds: at least 1, at most [`MAX_PX`].
pub(crate) fn lock_millis(ttl: Duration) -> i64 {
    match expiry(Some(ttl)) {
        Expiry::Millis(millis) => millis,
        Expiry::Now => 1,
        Expiry::Never => MAX_PX as i64,
    }
}

impl RedisStore {
    /// The default key prefix: `"axum-cache"`.
    pub const DEFAULT_PREFIX: &str = "axum-cache";
    /// The default per-command timeout: 100 ms. A healthy Redis on the same network answers in
    /// well under a millisecond, and even a 1 MiB value moves in about 10 ms on a 1 Gbit/s
    /// link, so this fires only when something is wrong; and it is short enough that a hung
    /// Redis adds at most a tenth of a second to the few requests that meet it before the
    /// circuit breaker opens.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(100);
    /// The default connect timeout: 1 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// The default number of pooled connections: 4.
    pub const DEFAULT_POOL_SIZE: usize = 4;
    /// The default number of consecutive failures that opens the circuit breaker: 5.
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
    /// The default time the breaker stays open before probing Redis again: 1 s.
    pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(1);
    /// The default first pause before reconnecting after a lost connection: 100 ms.
    pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(100);
    /// The default longest pause between reconnection attempts: 1 s.
    pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(1);

    /// Starts configuring a store for `url`:
    ///
    /// | URL | Deployment |
    /// |---|---|
    /// | `redis://[[user]:password@]host[:port][/db]` | one server |
    /// | `redis+cluster://host:port?node=host2:port2&node=…` (or `redis-cluster://`) | a Redis Cluster: any nodes, the others are discovered |
    /// | `redis+sentinel://host:port[/db]?sentinelServiceName=mymaster&node=…` (or `redis-sentinel://`) | the primary that Sentinel names; `host:port` and `node`s are sentinels |
    ///
    /// With the `redis-tls` feature, `rediss://`, `rediss+cluster://` and `rediss+sentinel://`
    /// connect over TLS (rustls), verifying the server's certificate against the system's
    /// authorities or those given to
    /// [`tls_root_certificates_pem`](RedisStoreBuilder::tls_root_certificates_pem). Without
    /// it, and for Unix sockets, [`build`](RedisStoreBuilder::build) refuses the URL with
    /// [`Error::Config`] rather than connecting in the clear.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url.into())
    }

    /// A store over a [`fred`](https://docs.rs/fred) pool you built and connected yourself, for
    /// settings the builder does not offer. This is the one place where `fred` shows in this
    /// crate's API, so it follows `fred`'s major version.
    ///
    /// The pool is used as it is (its reconnect policy and its own timeouts); the store adds its
    /// prefix, command timeout and circuit breaker from `options`. Give the pool a reconnect
    /// policy, or it stays down after its first disconnection. A default command timeout set on
    /// the pool still applies under the store's own, and costs throughput (about a third on small
    /// `GET`s at 16 in flight): leave it unset. The store never closes a pool it did not make.
    /// Fails only if the options are invalid (an empty prefix).
    pub fn from_pool(pool: Pool, options: RedisOptions) -> Result<RedisStore, Error> {
        options.validate()?;
        Ok(RedisStore::new(pool, options, false))
    }

    fn new(pool: Pool, options: RedisOptions, owns_pool: bool) -> RedisStore {
        // No per-command timeout for fred: `run` bounds every call with the command timeout
        // already, and fred's own timeout (through `Options` or the pool's default) costs about a
        // third of the throughput of small GETs at 16 in flight, because fewer commands share a
        // write (`benches/redis_page_hit.rs`).
        let command_options = Options {
            fail_fast: true,
            ..Options::default()
        };
        RedisStore {
            inner: Arc::new(Inner {
                client: pool.with_options(&command_options),
                pool,
                prefix: options.prefix,
                options: command_options,
                command_timeout: options.command_timeout,
                breaker: Breaker::new(options.failure_threshold, options.cool_down),
                owns_pool,
            }),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Failure, timeout and circuit-breaker counters since the store was made.
    pub fn stats(&self) -> RedisStats {
        self.inner.breaker.stats()
    }

    /// Removes every key of this store that matches the glob `pattern` (Redis `MATCH` syntax:
    /// `*`, `?`, `[abc]`, `\` to escape), applied to the key after the prefix, and returns how
    /// many were removed.
    ///
    /// **Expensive:** Redis has no index by pattern, so this walks every key of the database
    /// (of every primary, in a cluster) with `SCAN`, a page of 1,000 at a time, and `UNLINK`s
    /// the matches page by page. It never blocks Redis the way `KEYS` would, but it takes time
    /// proportional to the whole database, not to the matches. Keys written during the walk may
    /// survive it. Each page is bounded by the command timeout; a failure part-way leaves the
    /// keys removed so far removed.
    ///
    /// Keys reach the store already made by a [`Cache`](crate::Cache) (`{key_prefix}:{version}:{key}`
    /// by default), so a pattern for the cache key `user:*` at version 1 with no key prefix is
    /// `":1:user:*"`.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64, StoreError> {
        let mut full = crate::glob::escape(&self.inner.prefix);
        full.push(':');
        full.push_str(pattern);
        self.scan_unlink(full).await
    }

    /// Empties the whole Redis database (`FLUSHDB ASYNC`; on every primary of a cluster),
    /// including keys of other prefixes and of other applications. Django's `clear()` does this;
    /// [`clear`](Store::clear) removes only this store's prefix.
    pub async fn flush_db(&self) -> Result<(), StoreError> {
        let command = || CustomCommand::new_static("FLUSHDB", ClusterHash::Random, false);
        for node in self.nodes()? {
            let client = self.client_for(node);
            let _: Value = self
                .run(fred(client.custom(command(), vec![Value::from("ASYNC")])))
                .await?;
        }
        Ok(())
    }

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

    fn key(&self, key: &str) -> Key {
        let mut full = String::with_capacity(self.inner.prefix.len() + 1 + key.len());
        full.push_str(&self.inner.prefix);
        full.push(':');
        full.push_str(key);
        Key::from(full)
    }

    fn client(&self) -> &fred::clients::WithOptions<Pool> {
        &self.inner.client
    }

    fn client_for(&self, node: Option<Server>) -> fred::clients::WithOptions<Pool> {
        let options = Options {
            cluster_node: node,
            ..self.inner.options.clone()
        };
        self.inner.pool.with_options(&options)
    }

    fn clustered(&self) -> bool {
        self.inner.pool.is_clustered()
    }

    /// Runs one command through the circuit breaker, bounded by the command timeout.
    async fn run<T>(
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

    async fn eval(
        &self,
        script: &str,
        keys: Vec<Key>,
        args: Vec<Value>,
    ) -> Result<Value, StoreError> {
        self.run(fred(self.client().eval(script, keys, args))).await
    }

    /// The primaries to walk: `None` (whichever server) for a single server, every primary of
    /// a cluster.
    fn nodes(&self) -> Result<Vec<Option<Server>>, StoreError> {
        if !self.clustered() {
            return Ok(vec![None]);
        }
        let routing = self.inner.pool.cached_cluster_state().ok_or_else(|| {
            StoreError::Unavailable("the cluster's layout is not known yet".to_owned())
        })?;
        Ok(routing
            .unique_primary_nodes()
            .into_iter()
            .map(Some)
            .collect())
    }

    /// `SCAN`s every primary for `pattern` and `UNLINK`s each page of matches.
    async fn scan_unlink(&self, pattern: String) -> Result<u64, StoreError> {
        let mut removed = 0;
        for node in self.nodes()? {
            let client = self.client_for(node);
            let mut cursor = "0".to_owned();
            loop {
                let page: Value = self
                    .run(fred(client.scan_page(
                        cursor.clone(),
                        pattern.clone(),
                        Some(SCAN_COUNT),
                        None,
                    )))
                    .await?;
                let (next, keys) = scan_reply(page)?;
                removed += self.unlink(keys).await?;
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
        Ok(removed)
    }

    /// `UNLINK`s `keys`: one command for a single server, one per hash slot (pipelined) in a
    /// cluster, where a command's keys must share a slot.
    async fn unlink(&self, keys: Vec<Key>) -> Result<u64, StoreError> {
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
    async fn pipelined(
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
enum Command {
    Unlink(Vec<Key>),
    Mget(Vec<Key>),
    Set(Key, Bytes, Option<Expiration>),
}

/// Positions of `keys` grouped by cluster hash slot.
fn by_slot(keys: &[Key]) -> BTreeMap<u16, Vec<usize>> {
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
/// The call is boxed first. A fred command future is large (about 5 KiB for a `GET`), and each
/// async wrapper that takes one by value and awaits it keeps a second copy of it in its state:
/// through this function and `run` a `GET` grew to 20 KiB, copied several times per call. Boxed,
/// the wrappers move a pointer: page hits at 16 in flight went from 0.71x to 0.77x the
/// throughput of raw `GET`s (`benches/redis_page_hit.rs`).
fn fred<'a, T: 'a>(
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

fn unexpected(what: &str, reply: &Value) -> StoreError {
    StoreError::Backend(format!("unexpected Redis reply to {what}: {reply:?}").into())
}

/// A `SET` reply: `OK` when the value was written, nil when a condition (`NX`) kept it from
/// being written. Anything else (a peer that is not Redis) is an error rather than taken for
/// success: an `add` or a lock must never believe it won on a reply that says nothing.
fn set_reply(reply: &Value) -> Result<bool, StoreError> {
    match reply {
        Value::Null => Ok(false),
        Value::String(text) if &**text == "OK" => Ok(true),
        Value::Bytes(bytes) if &bytes[..] == b"OK" => Ok(true),
        _ => Err(unexpected("SET", reply)),
    }
}

/// A bulk-string reply as bytes; nil as `None`.
fn bytes_reply(reply: Value) -> Result<Option<Bytes>, StoreError> {
    match reply {
        Value::Null => Ok(None),
        Value::Bytes(bytes) => Ok(Some(bytes)),
        Value::String(text) => Ok(Some(text.into_inner())),
        other => Err(unexpected("a read", &other)),
    }
}

/// An integer reply.
pub(crate) fn int_reply(reply: Value) -> Result<i64, StoreError> {
    match reply {
        Value::Integer(n) => Ok(n),
        other => Err(unexpected("a count", &other)),
    }
}

/// An array reply of bulk strings (`MGET`).
fn values_reply(reply: Value, expected: usize) -> Result<Vec<Option<Bytes>>, StoreError> {
    match reply {
        Value::Array(values) if values.len() == expected => {
            values.into_iter().map(bytes_reply).collect()
        }
        other => Err(unexpected("MGET", &other)),
    }
}

/// A `SCAN` reply: the next cursor and the page of keys.
fn scan_reply(reply: Value) -> Result<(String, Vec<Key>), StoreError> {
    let Value::Array(parts) = reply else {
        return Err(unexpected("SCAN", &reply));
    };
    let mut parts = parts.into_iter();
    let (Some(cursor), Some(Value::Array(keys)), None) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(StoreError::Backend("malformed SCAN reply".into()));
    };
    let cursor = match bytes_reply(cursor)? {
        Some(cursor) => String::from_utf8_lossy(&cursor).into_owned(),
        None => return Err(StoreError::Backend("SCAN returned no cursor".into())),
    };
    let keys = keys
        .into_iter()
        .map(|key| match bytes_reply(key)? {
            Some(key) => Ok(Key::from(key)),
            None => Err(StoreError::Backend("SCAN returned a nil key".into())),
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((cursor, keys))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

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
            let mut pattern = crate::glob::escape(&self.inner.prefix);
            pattern.push_str(":*");
            self.scan_unlink(pattern).await?;
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

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("command_timeout", &self.inner.command_timeout)
            .field("clustered", &self.clustered())
            .field("pool_size", &self.inner.pool.size())
            .field("reconnect", &self.inner.pool.client_reconnect_policy())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.owns_pool {
            return;
        }
        // Close the connections (and stop reconnecting) in the background; without a runtime
        // they go when the runtime that made them shuts down.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                let _ = pool.quit().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_become_milliseconds_rounded_up() {
        assert_eq!(expiry(None), Expiry::Never);
        assert_eq!(expiry(Some(Duration::ZERO)), Expiry::Now);
        assert_eq!(expiry(Some(Duration::from_nanos(1))), Expiry::Millis(1));
        assert_eq!(expiry(Some(Duration::from_micros(1500))), Expiry::Millis(2));
        assert_eq!(expiry(Some(Duration::from_secs(2))), Expiry::Millis(2000));
        assert_eq!(
            expiry(Some(Duration::from_millis(MAX_PX as u64))),
            Expiry::Millis(MAX_PX as i64)
        );
        assert_eq!(
            expiry(Some(Duration::from_millis(MAX_PX as u64 + 1))),
            Expiry::Never
        );
        assert_eq!(expiry(Some(Duration::from_secs(u64::MAX))), Expiry::Never);
        assert_eq!(expiry(Some(Duration::MAX)), Expiry::Never);
        assert_eq!(lock_millis(Duration::ZERO), 1);
        assert_eq!(lock_millis(Duration::MAX), MAX_PX as i64);
    }

    #[test]
    fn globs_are_escaped() {
        assert_eq!(crate::glob::escape("app"), "app");
        assert_eq!(crate::glob::escape(r"a*b?c[d]\e"), r"a\*b\?c\[d\]\\e");
    }

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

    #[test]
    fn replies_parse_strictly() {
        assert_eq!(bytes_reply(Value::Null).unwrap(), None);
        assert_eq!(
            bytes_reply(Value::from("v")).unwrap(),
            Some(Bytes::from_static(b"v"))
        );
        assert!(bytes_reply(Value::Integer(1)).is_err());
        assert!(values_reply(Value::Array(vec![Value::Null]), 2).is_err());
        assert!(scan_reply(Value::Array(vec![Value::from("0")])).is_err());
        let (cursor, keys) = scan_reply(Value::Array(vec![
            Value::from("17"),
            Value::Array(vec![Value::from("k")]),
        ]))
        .unwrap();
        assert_eq!((cursor.as_str(), keys.len()), ("17", 1));
    }
}
