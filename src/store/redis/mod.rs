//! The Redis store: [`RedisStore`], its shared state and how it is made. What it does is split
//! by job: `store` implements the `Store` trait, `command` sends commands, `reply` checks what comes
//! back, `scan` walks the keyspace, `lock` holds locks and `expiry` turns TTLs into Redis terms.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{ClientLike, Options, Pool};

use crate::Error;

mod breaker;
mod command;
mod config;
mod expiry;
mod lock;
mod reply;
mod scan;
mod store;
#[cfg(feature = "redis-tls")]
mod tls;

use breaker::Breaker;
pub use breaker::RedisStats;
#[cfg(test)]
pub(crate) use config::normalize_url;
pub use config::{RedisOptions, RedisStoreBuilder};
pub use lock::RedisLock;

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
///
/// [`Store`]: super::Store
/// [`StoreError::Timeout`]: super::StoreError::Timeout
/// [`StoreError::Unavailable`]: super::StoreError::Unavailable
/// [`StoreError::Backend`]: super::StoreError::Backend
/// [`StoreError::NotAnInteger`]: super::StoreError::NotAnInteger
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
    /// the pool still applies under the store's own, and it makes fewer commands share each write
    /// to a connection, which slows small commands: leave it unset. The store never closes a pool
    /// it did not make.
    /// Fails only if the options are invalid (an empty prefix).
    pub fn from_pool(pool: Pool, options: RedisOptions) -> Result<RedisStore, Error> {
        options.validate()?;
        Ok(RedisStore::new(pool, options, false))
    }

    fn new(pool: Pool, options: RedisOptions, owns_pool: bool) -> RedisStore {
        // No per-command timeout for fred: `run` bounds every call with the command timeout
        // already, and fred's own timeout (through `Options` or the pool's default) makes fewer
        // commands share each write to a connection.
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
