//! Configuring a [`RedisStore`]: [`RedisOptions`] and [`RedisStoreBuilder`].

use std::fmt;
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config, ReconnectPolicy};

use super::RedisStore;
use crate::Error;
use crate::redact::{redact_url, scrub, split_scheme};
use crate::store::StoreError;

/// The longest command or connect timeout: anything longer is no timeout in practice, and the
/// bound keeps every deadline computed from it inside the clock's range.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A command or connect timeout kept between 1 ms and [`MAX_TIMEOUT`].
fn bounded(timeout: Duration) -> Duration {
    timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT)
}

/// How a [`RedisStore`] uses its connections: key prefix, command timeout, circuit breaker.
///
/// [`RedisStore::builder`] sets these through its own methods; build them yourself only for
/// [`RedisStore::from_pool`].
///
/// ```
/// use axum_cache::store::RedisOptions;
/// use std::time::Duration;
///
/// let options = RedisOptions::new()
///     .prefix("shop")
///     .command_timeout(Duration::from_millis(50))
///     .breaker(10, Duration::from_secs(2));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisOptions {
    pub(super) prefix: String,
    pub(super) command_timeout: Duration,
    pub(super) failure_threshold: u32,
    pub(super) cool_down: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: RedisStore::DEFAULT_PREFIX.to_owned(),
            command_timeout: RedisStore::DEFAULT_COMMAND_TIMEOUT,
            failure_threshold: RedisStore::DEFAULT_FAILURE_THRESHOLD,
            cool_down: RedisStore::DEFAULT_COOL_DOWN,
        }
    }
}

impl RedisOptions {
    /// The defaults: prefix `axum-cache`, 100 ms command timeout, breaker opening after 5
    /// consecutive failures for 1 s.
    pub fn new() -> Self {
        RedisOptions::default()
    }

    /// The store's namespace (default `"axum-cache"`): every key is stored as `{prefix}:{key}`,
    /// and [`clear`](crate::store::Store::clear) removes exactly the keys that start with
    /// `{prefix}:`. Give each store that shares a database its own prefix, and do not make one
    /// prefix another one followed by `:` (`app` and `app:x`), or clearing the first clears
    /// the second. It must not be empty.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most one Redis command may take (default 100 ms); a slower one fails with
    /// [`StoreError::Timeout`]. Commands that page through keys
    /// ([`clear`](crate::store::Store::clear), [`RedisStore::delete_pattern`]) get this
    /// bound per page. It is kept between 1 ms and 1 hour.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = bounded(timeout);
        self
    }

    /// The circuit breaker: after `failures` consecutive timeouts or connection failures
    /// (default 5), every call fails at once with [`StoreError::Unavailable`] for `cool_down`
    /// (default 1 s); then one call is let through as a probe, and the breaker closes as soon as
    /// Redis answers it. `failures = 0` switches the breaker off.
    pub fn breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.failure_threshold = failures;
        self.cool_down = cool_down;
        self
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.prefix.is_empty() {
            return Err(Error::Config(
                "the Redis store prefix must not be empty (use flush_db to empty a whole database)"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// Configures and connects a [`RedisStore`]; made by [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    options: RedisOptions,
    pool_size: usize,
    connect_timeout: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
    #[cfg(feature = "redis-tls")]
    tls: super::tls::TlsSettings,
}

impl RedisStoreBuilder {
    pub(super) fn new(url: String) -> Self {
        RedisStoreBuilder {
            url,
            options: RedisOptions::default(),
            pool_size: RedisStore::DEFAULT_POOL_SIZE,
            connect_timeout: RedisStore::DEFAULT_CONNECT_TIMEOUT,
            reconnect_min: RedisStore::DEFAULT_RECONNECT_MIN,
            reconnect_max: RedisStore::DEFAULT_RECONNECT_MAX,
            #[cfg(feature = "redis-tls")]
            tls: super::tls::TlsSettings::default(),
        }
    }

    /// The key prefix (default `"axum-cache"`); see [`RedisOptions::prefix`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options = self.options.prefix(prefix);
        self
    }

    /// The per-command timeout (default 100 ms); see [`RedisOptions::command_timeout`].
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.options = self.options.command_timeout(timeout);
        self
    }

    /// The circuit breaker (default: 5 failures, 1 s); see [`RedisOptions::breaker`].
    pub fn breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.options = self.options.breaker(failures, cool_down);
        self
    }

    /// How many connections to open (default 4, at least 1). Commands are pipelined on each
    /// connection, so a few serve many concurrent requests; more help when values are large.
    /// With a cluster or Sentinel, each one is a connection set to every node it needs.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The most a connection attempt may take, TCP handshake and the `HELLO`/`AUTH`/`SELECT`
    /// that follow (default 1 s). [`build`](Self::build) fails after this long if Redis cannot
    /// be reached. It is kept between 1 ms and 1 hour.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = bounded(timeout);
        self
    }

    /// The pause before each reconnection attempt after a connection is lost: `min` at first,
    /// doubling up to `max` (defaults 100 ms and 1 s). The store never stops reconnecting, so
    /// it recovers on its own when Redis comes back.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// For `rediss://` URLs: trust the certificate authorities in `pem` (one or more PEM
    /// `CERTIFICATE` blocks) instead of the system's, as for a Redis whose certificate a
    /// private authority signed. The server's certificate is always verified, and must name
    /// the host of the URL (a DNS name or an IP address in its subject alternative names).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), axum_cache::Error> {
    /// use axum_cache::store::RedisStore;
    ///
    /// let store = RedisStore::builder("rediss://cache.internal:6380")
    ///     .tls_root_certificates_pem(std::fs::read("/etc/redis/ca.pem").expect("CA file"))
    ///     .build()
    ///     .await?;
    /// # let _ = store; Ok(()) }
    /// ```
    #[cfg(feature = "redis-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn tls_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.roots = Some(pem.into());
        self
    }

    /// For `rediss://` URLs whose server verifies clients (`tls-auth-clients yes`): the
    /// client's certificate chain and private key, both as PEM text (the key in PKCS #8,
    /// PKCS #1 or SEC1 form).
    #[cfg(feature = "redis-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn tls_client_identity_pem(
        mut self,
        certificate_chain: impl Into<Vec<u8>>,
        private_key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.identity = Some((certificate_chain.into(), private_key.into()));
        self
    }

    /// Connects to Redis and returns the store.
    ///
    /// Fails with [`Error::Config`] for a URL that is invalid or needs something this build
    /// lacks (`rediss://` without the `redis-tls` feature, Unix sockets), for TLS settings on a
    /// URL that is not `rediss://` (rather than connecting in the clear) or that cannot be
    /// used, and with [`Error::Store`] ([`StoreError::Unavailable`] or
    /// [`StoreError::Timeout`]) if the first connection, TLS handshake included, cannot be
    /// made within the connect timeout. Once built, the store reconnects by itself.
    pub async fn build(self) -> Result<RedisStore, Error> {
        self.options.validate()?;
        let (url, tls) = normalize_url(&self.url)?;
        // fred's messages may quote the URL or parts of it (a `node` value): scrubbed.
        #[cfg_attr(not(feature = "redis-tls"), allow(unused_mut))]
        let mut config = Config::from_url(&url).map_err(|error| {
            Error::Config(format!(
                "invalid Redis URL: {}",
                scrub(&error.to_string(), &self.url)
            ))
        })?;
        #[cfg(feature = "redis-tls")]
        if tls {
            config.tls = Some(self.tls.connector()?.into());
        } else if self.tls.is_set() {
            return Err(Error::Config(
                "TLS settings were given for a URL without TLS: use rediss://".to_owned(),
            ));
        }
        #[cfg(not(feature = "redis-tls"))]
        if tls {
            return Err(Error::Config(
                "rediss:// needs TLS: enable the `redis-tls` feature of axum-cache".to_owned(),
            ));
        }
        let mut builder = Builder::from_config(config);
        let connect_timeout = self.connect_timeout;
        let command_timeout = self.options.command_timeout;
        builder.with_connection_config(|connection| {
            connection.connection_timeout = connect_timeout;
            connection.internal_command_timeout = connect_timeout;
            // A command in flight when its connection drops is not sent again: a cache would
            // rather miss than run `incr` twice, and the timeout already bounds the call.
            connection.max_command_attempts = 1;
            // A connection with no answer for this long is closed and reopened, so a silently
            // dead peer (no TCP reset) is noticed without waiting for TCP's own timeouts.
            let unresponsive = connect_timeout.max(command_timeout.saturating_mul(4));
            connection.unresponsive.max_timeout = Some(unresponsive);
            connection.unresponsive.interval = (unresponsive / 2).max(Duration::from_millis(10));
        });
        builder.set_policy(ReconnectPolicy::new_exponential(
            0,
            millis_u32(self.reconnect_min),
            millis_u32(self.reconnect_max),
            2,
        ));
        let pool = builder.build_pool(self.pool_size).map_err(|error| {
            Error::Config(format!(
                "invalid Redis configuration: {}",
                scrub(&error.to_string(), &self.url)
            ))
        })?;
        // Bounded twice over: the TCP connection and then the handshake commands.
        match tokio::time::timeout(connect_timeout.saturating_mul(2), pool.init()).await {
            Ok(Ok(_connection_task)) => {}
            Ok(Err(error)) => {
                return Err(Error::Store(StoreError::Unavailable(format!(
                    "cannot connect to Redis at {}: {}",
                    redact_url(&self.url),
                    scrub(&error.to_string(), &self.url)
                ))));
            }
            // The connection task gives up by itself: the first connection fails fast.
            Err(_) => return Err(Error::Store(StoreError::Timeout)),
        }
        Ok(RedisStore::new(pool, self.options, true))
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RedisStoreBuilder");
        debug
            .field("url", &redact_url(&self.url))
            .field("options", &self.options)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max);
        #[cfg(feature = "redis-tls")]
        debug.field("tls", &self.tls);
        debug.finish()
    }
}

fn millis_u32(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// Checks the scheme and maps this crate's spellings to fred's plain ones (`redis+cluster://`
/// is `redis-cluster://`, `redis+sentinel://` is `redis-sentinel://`), with whether the URL
/// asks for TLS (`rediss…`, `valkeys…`): the store sets TLS up itself.
pub(crate) fn normalize_url(url: &str) -> Result<(String, bool), Error> {
    let (scheme, rest) = split_scheme(url)
        .ok_or_else(|| Error::Config(format!("{:?} is not a Redis URL", redact_url(url))))?;
    let scheme = scheme.to_ascii_lowercase();
    let (fred_scheme, tls) = match scheme.as_str() {
        "redis" | "valkey" => ("redis", false),
        "rediss" | "valkeys" => ("redis", true),
        "redis-cluster" | "redis+cluster" | "valkey-cluster" => ("redis-cluster", false),
        "rediss-cluster" | "rediss+cluster" | "valkeys-cluster" => ("redis-cluster", true),
        "redis-sentinel" | "redis+sentinel" | "valkey-sentinel" => ("redis-sentinel", false),
        "rediss-sentinel" | "rediss+sentinel" | "valkeys-sentinel" => ("redis-sentinel", true),
        unix if unix.ends_with("+unix") => {
            return Err(Error::Config(format!(
                "{scheme}:// (Unix sockets) is not supported by the Redis store; use redis://host:port"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "{other}:// is not a Redis URL scheme (redis, rediss, redis+cluster, \
                 rediss+cluster, redis+sentinel, rediss+sentinel)"
            )));
        }
    };
    Ok((format!("{fred_scheme}://{rest}"), tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_fred_schemes() {
        let plain = |url: &str| (url.to_owned(), false);
        let tls = |url: &str| (url.to_owned(), true);
        assert_eq!(
            normalize_url("redis://h:1/2").unwrap(),
            plain("redis://h:1/2")
        );
        assert_eq!(
            normalize_url("REDIS+CLUSTER://h:1?node=h:2").unwrap(),
            plain("redis-cluster://h:1?node=h:2")
        );
        assert_eq!(
            normalize_url("redis+sentinel://h:1?sentinelServiceName=m").unwrap(),
            plain("redis-sentinel://h:1?sentinelServiceName=m")
        );
        assert_eq!(
            normalize_url("rediss://h:1/2").unwrap(),
            tls("redis://h:1/2")
        );
        assert_eq!(
            normalize_url("rediss+cluster://h:1?node=h:2").unwrap(),
            tls("redis-cluster://h:1?node=h:2")
        );
        assert_eq!(
            normalize_url("valkeys-sentinel://h:1").unwrap(),
            tls("redis-sentinel://h:1")
        );
        for (url, needle) in [
            ("redis+unix:///tmp/s", "Unix"),
            ("http://h", "not a Redis URL scheme"),
            ("h:6379", "not a Redis URL"),
        ] {
            let error = normalize_url(url).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }

    /// A secret no message may quote.
    const SECRET: &str = "s3cr3t-XYZ";

    fn assert_hidden(what: &str, text: &str) {
        for part in ["s3cr3t", "XYZ"] {
            assert!(!text.contains(part), "{what} shows a secret: {text}");
        }
    }

    #[test]
    fn builders_never_show_a_password() {
        for url in [
            format!("redis://user:{SECRET}@cache.internal:6379/0"),
            format!("redis://{SECRET}@cache.internal"),
            "redis://user:s3cr3t@XYZ@cache.internal".to_owned(),
            "redis://user:s3cr3t:XYZ@cache.internal".to_owned(),
            "redis://user:s3cr3t/XYZ@cache.internal".to_owned(),
            "redis://user:s3cr3t%40XYZ@cache.internal".to_owned(),
            format!(
                "redis+sentinel://h:26379?sentinelServiceName=m&sentinelUsername=u&sentinelPassword={SECRET}"
            ),
            format!("redis://h?password={SECRET}&Auth_Token={SECRET}&x-api-key={SECRET}"),
        ] {
            let builder = RedisStore::builder(url.as_str());
            assert_hidden(&url, &format!("{builder:?}"));
        }
    }

    #[test]
    fn url_errors_never_quote_a_password() {
        for url in [
            format!("user:{SECRET}@cache.internal:6379"),
            format!("user:{SECRET}@h?x=redis://"),
        ] {
            let error = normalize_url(&url).unwrap_err().to_string();
            assert_hidden(&url, &error);
        }
    }

    #[tokio::test]
    async fn build_errors_never_quote_a_password() {
        // fred's own message for a bad `node` quotes the value; nothing listens on port 1.
        for url in [
            format!("redis+cluster://user:{SECRET}@127.0.0.1:1?node={SECRET}"),
            format!("redis+cluster://user:{SECRET}@127.0.0.1:1?node=s3cr3t%2DXYZ"),
            format!("redis://user:{SECRET}@127.0.0.1:1?sentinelPassword={SECRET}"),
            format!("redis://user:{SECRET}@127.0.0.1:1/x"),
        ] {
            let error = RedisStore::builder(url.as_str())
                .connect_timeout(Duration::from_millis(200))
                .build()
                .await
                .unwrap_err()
                .to_string();
            assert_hidden(&url, &error);
        }
    }

    #[test]
    fn timeouts_stay_in_range() {
        let options = RedisOptions::new().command_timeout(Duration::MAX);
        assert_eq!(options.command_timeout, MAX_TIMEOUT);
        let options = RedisOptions::new().command_timeout(Duration::ZERO);
        assert_eq!(options.command_timeout, Duration::from_millis(1));
        let builder = RedisStore::builder("redis://h").connect_timeout(Duration::MAX);
        assert_eq!(builder.connect_timeout, MAX_TIMEOUT);
    }

    #[test]
    fn an_empty_prefix_is_refused() {
        assert!(RedisOptions::new().prefix("").validate().is_err());
        assert!(RedisOptions::new().validate().is_ok());
    }
}
