//! Several named caches side by side, configurable from URLs.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::redact::{redact_url, split_scheme};
use crate::store::{DummyStore, MemoryStore, Store};
use crate::{Cache, CacheBuilder, Error, Timeout};

/// The name of the cache every application has.
pub const DEFAULT_CACHE: &str = "default";

/// Named caches ("default", "sessions", "long", …), Django's `caches[...]`.
///
/// A `Caches` always has a cache named [`"default"`](DEFAULT_CACHE). It is cheap to clone; put
/// it in your application state and pick a cache by name where it is needed.
///
/// # Example
///
/// ```
/// use axum_cache::{Cache, Caches, Timeout, store::MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
/// let caches = Caches::builder()
///     .cache("default", Cache::new(MemoryStore::new()))
///     .cache(
///         "long",
///         Cache::builder(MemoryStore::new()).default_timeout(Timeout::Never).build(),
///     )
///     .build()?;
///
/// caches.get("long")?.set("config", "v2", Timeout::Default).await?;
/// assert!(caches.default().get::<String>("config").await?.is_none());
/// assert!(caches.get("nonexistent").is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Caches {
    default: Cache,
    caches: Arc<BTreeMap<String, Cache>>,
}

/// Configures [`Caches`]; made by [`Caches::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct CachesBuilder {
    caches: BTreeMap<String, Cache>,
}

impl Caches {
    /// Starts naming caches.
    pub fn builder() -> CachesBuilder {
        CachesBuilder::default()
    }

    /// The cache called `name`, or [`Error::UnknownCache`].
    pub fn get(&self, name: &str) -> Result<&Cache, Error> {
        self.caches
            .get(name)
            .ok_or_else(|| Error::UnknownCache(name.to_owned()))
    }

    /// The cache called `"default"`.
    pub fn default(&self) -> &Cache {
        &self.default
    }

    /// The configured names, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.caches.keys().map(String::as_str)
    }

    /// Builds every cache from a `(name, url)` list; see [`Cache::from_url`] for the URL forms.
    ///
    /// ```
    /// # use axum_cache::Caches;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let caches = Caches::from_urls([
    ///     ("default", "memory://?max_entries=10000"),
    ///     ("sessions", "memory://?timeout=never&key_prefix=sess"),
    /// ])
    /// .await?;
    /// assert_eq!(caches.names().collect::<Vec<_>>(), ["default", "sessions"]);
    /// # Ok(()) }
    /// ```
    pub async fn from_urls<I, N, U>(urls: I) -> Result<Caches, Error>
    where
        I: IntoIterator<Item = (N, U)>,
        N: Into<String>,
        U: AsRef<str>,
    {
        let mut builder = Caches::builder();
        for (name, url) in urls {
            let name = name.into();
            let cache = Cache::from_url(url.as_ref())
                .await
                .map_err(|error| Error::Config(format!("cache {name:?}: {error}")))?;
            builder = builder.cache(name, cache);
        }
        builder.build()
    }

    /// Builds the caches named by environment variables: `{prefix}` holds the URL of the
    /// default cache and `{prefix}_{NAME}` the URL of the cache `name` (lower-cased). With
    /// `prefix = "CACHE_URL"`, `CACHE_URL=memory://` and `CACHE_URL_SESSIONS=memory://`
    /// configure "default" and "sessions". Without `{prefix}` the default cache is an in-memory
    /// one with default settings.
    pub async fn from_env(prefix: &str) -> Result<Caches, Error> {
        let variables = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        Caches::from_urls(urls_from_variables(prefix, variables)).await
    }
}

impl CachesBuilder {
    /// Adds (or replaces) the cache called `name`.
    pub fn cache(mut self, name: impl Into<String>, cache: Cache) -> Self {
        self.caches.insert(name.into(), cache);
        self
    }

    /// Builds the registry; fails if no cache is called `"default"`.
    pub fn build(self) -> Result<Caches, Error> {
        let default =
            self.caches.get(DEFAULT_CACHE).cloned().ok_or_else(|| {
                Error::Config(format!("a cache named {DEFAULT_CACHE:?} is required"))
            })?;
        Ok(Caches {
            default,
            caches: Arc::new(self.caches),
        })
    }
}

/// The `(name, url)` pairs that [`Caches::from_env`] reads from `variables`. Later pairs replace
/// earlier ones of the same name, so `{prefix}` wins over the built-in default.
fn urls_from_variables(
    prefix: &str,
    variables: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let named = format!("{prefix}_");
    let mut urls = vec![(DEFAULT_CACHE.to_owned(), "memory://".to_owned())];
    for (variable, value) in variables {
        if variable == prefix {
            urls.push((DEFAULT_CACHE.to_owned(), value));
        } else if let Some(name) = variable.strip_prefix(&named)
            && !name.is_empty()
        {
            urls.push((name.to_ascii_lowercase(), value));
        }
    }
    urls
}

impl Cache {
    /// Builds a cache from a URL, so that configuration can come from the environment.
    ///
    /// | URL | Store |
    /// |---|---|
    /// | `memory://` | [`MemoryStore`]; `max_entries=N`, `max_bytes=N` (a number of bytes, or with `KiB`, `MiB`, `GiB`) |
    /// | `dummy://` | [`DummyStore`] |
    /// | `redis://`, `redis+cluster://`, `redis+sentinel://`, and `rediss…` for TLS | `RedisStore` (`redis` feature); see below |
    ///
    /// A Redis URL is `RedisStore::builder`'s URL (with its
    /// `node`, `sentinelServiceName`, `sentinelUsername` and `sentinelPassword` parameters) and
    /// takes the store settings `store_prefix`, `command_timeout_ms`, `connect_timeout_ms`,
    /// `pool_size`, `failure_threshold`, `cool_down_ms`, `reconnect_min_ms` and
    /// `reconnect_max_ms`, for example
    /// `redis://cache.internal:6379/0?store_prefix=shop&command_timeout_ms=50&key_prefix=v2`.
    /// With the `redis-tls` feature, `rediss://` (and `rediss+cluster://`,
    /// `rediss+sentinel://`) connect over TLS, and `tls_ca_file` (PEM authorities to trust
    /// instead of the system's), `tls_cert_file` and `tls_key_file` (a client identity) name
    /// files that are read when the cache is built.
    /// Building it connects to Redis. Without the `redis` feature these URLs are an error that
    /// says so.
    ///
    /// Every scheme also takes the cache settings `timeout` (seconds, fractions allowed, or
    /// `never`), `key_prefix`, `version`, `ignore_errors` (`true`/`false`) and `key_secret`
    /// (see [`CacheBuilder::key_secret`]; percent-encode it, and read the whole URL from a
    /// secret store or the environment). An unknown
    /// scheme or parameter is an error, so a typo never silently falls back to a default. No
    /// error message quotes a password of the URL (see
    /// [secrets in URLs](crate::docs::configuration#security-secrets-in-urls)).
    ///
    /// ```
    /// # use axum_cache::Cache;
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::from_url("memory://?max_bytes=32MiB&timeout=60&key_prefix=app&version=2").await?;
    /// assert_eq!(cache.default_timeout(), Some(Duration::from_secs(60)));
    /// assert_eq!(cache.make_key("k"), "app:2:k");
    /// assert!(Cache::from_url("memory://?max_entires=10").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn from_url(url: &str) -> Result<Cache, Error> {
        let (scheme, rest) = split_scheme(url).ok_or_else(|| {
            config(format!(
                "{:?} is not a URL of the form scheme://…",
                redact_url(url)
            ))
        })?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let scheme = scheme.to_ascii_lowercase();
        let redis = scheme.starts_with("redis") || scheme.starts_with("valkey");
        let passthrough: &[&str] = if redis { REDIS_URL_PARAMS } else { &[] };
        let (mut params, passed) = Params::parse(query, passthrough)?;
        // The cache settings are read first, so that a bad one fails before a store connects.
        let timeout = params
            .take("timeout")
            .map(|value| parse_timeout(&value))
            .transpose()?;
        let key_prefix = params.take("key_prefix");
        let version = params.number("version")?;
        let ignore_errors = params
            .take("ignore_errors")
            .map(|value| parse_bool("ignore_errors", &value))
            .transpose()?;
        let key_secret = params.take("key_secret");
        let store: Arc<dyn Store> = match scheme.as_str() {
            "memory" | "locmem" => {
                let mut builder = MemoryStore::builder();
                if let Some(max_entries) = params.number("max_entries")? {
                    builder = builder.max_entries(max_entries);
                }
                if let Some(value) = params.take("max_bytes") {
                    builder = builder.max_bytes(parse_size(&value)?);
                }
                Arc::new(builder.build())
            }
            "dummy" => Arc::new(DummyStore),
            _ if redis => redis_store(&scheme, location, &passed, &mut params).await?,
            other => return Err(config(format!("unknown cache scheme {other:?}"))),
        };
        params.finish()?;
        let mut builder = CacheBuilder::from_arc(store);
        if let Some(timeout) = timeout {
            builder = builder.default_timeout(timeout);
        }
        if let Some(key_prefix) = key_prefix {
            builder = builder.key_prefix(key_prefix);
        }
        if let Some(version) = version {
            builder = builder.version(version);
        }
        if let Some(ignore_errors) = ignore_errors {
            builder = builder.ignore_errors(ignore_errors);
        }
        if let Some(secret) = key_secret {
            builder = builder.key_secret(secret);
        }
        Ok(builder.build())
    }
}

/// Parameters of a Redis URL that belong to the Redis client (and may repeat, like `node`).
const REDIS_URL_PARAMS: &[&str] = &[
    "node",
    "sentinelServiceName",
    "sentinelUsername",
    "sentinelPassword",
];

/// The store of a `redis…://` URL: the builder's URL is the scheme, the location and the
/// `passed` parameters; the store settings come from `params`.
#[cfg(feature = "redis")]
async fn redis_store(
    scheme: &str,
    location: &str,
    passed: &[(String, String)],
    params: &mut Params,
) -> Result<Arc<dyn Store>, Error> {
    use crate::store::RedisStore;

    let mut url = format!("{scheme}://{location}");
    if !passed.is_empty() {
        url.push('?');
        url.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .extend_pairs(passed)
                .finish(),
        );
    }
    let mut builder = RedisStore::builder(url);
    if let Some(value) = params.take("store_prefix") {
        builder = builder.prefix(value);
    }
    if let Some(timeout) = params.millis("command_timeout_ms")? {
        builder = builder.command_timeout(timeout);
    }
    if let Some(timeout) = params.millis("connect_timeout_ms")? {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(size) = params.number("pool_size")? {
        builder = builder.pool_size(size);
    }
    // Unset parameters keep the builder's defaults.
    builder = builder
        .breaker(
            params
                .number("failure_threshold")?
                .unwrap_or(RedisStore::DEFAULT_FAILURE_THRESHOLD),
            params
                .millis("cool_down_ms")?
                .unwrap_or(RedisStore::DEFAULT_COOL_DOWN),
        )
        .reconnect_backoff(
            params
                .millis("reconnect_min_ms")?
                .unwrap_or(RedisStore::DEFAULT_RECONNECT_MIN),
            params
                .millis("reconnect_max_ms")?
                .unwrap_or(RedisStore::DEFAULT_RECONNECT_MAX),
        );
    let tls_ca = params.take("tls_ca_file");
    let tls_identity = (params.take("tls_cert_file"), params.take("tls_key_file"));
    #[cfg(feature = "redis-tls")]
    {
        let read = |name: &str, path: &str| {
            std::fs::read(path)
                .map_err(|error| config(format!("{name}: cannot read {path:?}: {error}")))
        };
        if let Some(path) = tls_ca {
            builder = builder.tls_root_certificates_pem(read("tls_ca_file", &path)?);
        }
        match tls_identity {
            (Some(cert), Some(key)) => {
                builder = builder.tls_client_identity_pem(
                    read("tls_cert_file", &cert)?,
                    read("tls_key_file", &key)?,
                );
            }
            (None, None) => {}
            _ => {
                return Err(config(
                    "tls_cert_file and tls_key_file go together: give both or neither".to_owned(),
                ));
            }
        }
    }
    #[cfg(not(feature = "redis-tls"))]
    if tls_ca.is_some() || tls_identity.0.is_some() || tls_identity.1.is_some() {
        return Err(config(
            "tls_ca_file, tls_cert_file and tls_key_file need the `redis-tls` feature of axum-cache"
                .to_owned(),
        ));
    }
    // Unknown parameters fail before connecting.
    params.check_empty()?;
    Ok(Arc::new(builder.build().await?))
}

/// Without the `redis` feature, a Redis URL is an error that says how to get one.
#[cfg(not(feature = "redis"))]
async fn redis_store(
    scheme: &str,
    _location: &str,
    _passed: &[(String, String)],
    _params: &mut Params,
) -> Result<Arc<dyn Store>, Error> {
    Err(config(format!(
        "{scheme}:// needs the Redis store: enable the `redis` feature of axum-cache"
    )))
}

/// Query parameters of a cache URL, consumed one by one; leftovers are an error.
struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `query`, setting aside (in order, repeats allowed) the parameters named in
    /// `passthrough`.
    fn parse(query: &str, passthrough: &[&str]) -> Result<(Params, Vec<(String, String)>), Error> {
        let mut params = BTreeMap::new();
        let mut passed = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if passthrough.contains(&name.as_ref()) {
                passed.push((name.into_owned(), value.into_owned()));
            } else if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(config(format!("parameter {} is given twice", shown(&name))));
            }
        }
        Ok((Params(params), passed))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// The parameter `name` as a number, if present.
    fn number<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, Error> {
        self.take(name)
            .map(|value| parse_number(name, &value))
            .transpose()
    }

    /// The parameter `name` as a number of milliseconds, if present.
    #[cfg(feature = "redis")]
    fn millis(&mut self, name: &str) -> Result<Option<std::time::Duration>, Error> {
        Ok(self.number(name)?.map(std::time::Duration::from_millis))
    }

    fn finish(self) -> Result<(), Error> {
        self.check_empty()
    }

    /// Fails if a parameter is left: one nothing took is unknown.
    fn check_empty(&self) -> Result<(), Error> {
        match self.0.keys().next() {
            Some(name) => Err(config(format!("unknown parameter {}", shown(name)))),
            None => Ok(()),
        }
    }
}

fn config(message: String) -> Error {
    Error::Config(message)
}

/// A parameter's name as a message quotes it: only a plain name (letters, digits, `_`, `-`,
/// `.`). Anything else may be a piece of a password whose `?` was not percent-encoded, which
/// the query then began inside of.
fn shown(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        format!("{name:?}")
    } else {
        "(its name is not shown: not a plain name)".to_owned()
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| config(format!("{name}={value:?} is not a valid number")))
}

fn parse_size(value: &str) -> Result<usize, Error> {
    let value = value.trim();
    let (digits, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map_or((value, ""), |at| value.split_at(at));
    let multiplier: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(config(format!(
                "max_bytes={value:?}: use bytes, KiB, MiB or GiB"
            )));
        }
    };
    parse_number::<usize>("max_bytes", digits)?
        .checked_mul(multiplier)
        .ok_or_else(|| config(format!("max_bytes={value:?} is too large")))
}

fn parse_timeout(value: &str) -> Result<Timeout, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "never" | "none" => Ok(Timeout::Never),
        number => {
            let secs: f64 = parse_number("timeout", number)?;
            Ok(Timeout::secs_f64(secs))
        }
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(config(format!("{name}={value:?} is not true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn sizes_accept_binary_units_only() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("3KiB").unwrap(), 3 << 10);
        for bad in ["", "MiB", "64MB", "1.5MiB", "-1", "99999999999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts_parse_seconds_and_never() {
        assert_eq!(parse_timeout("never").unwrap(), Timeout::Never);
        assert_eq!(parse_timeout("None").unwrap(), Timeout::Never);
        assert_eq!(
            parse_timeout("1.5").unwrap(),
            Timeout::After(Duration::from_millis(1500))
        );
        assert_eq!(parse_timeout("0").unwrap(), Timeout::EXPIRE_NOW);
        assert!(parse_timeout("soon").is_err());
    }

    #[tokio::test]
    async fn urls_configure_store_and_cache() {
        let cache = Cache::from_url("memory://?timeout=never&version=7&ignore_errors=true")
            .await
            .unwrap();
        assert_eq!(cache.default_timeout(), None);
        assert_eq!(cache.version(), 7);
        assert!(format!("{cache:?}").contains("ignore_errors: true"));
        assert!(format!("{cache:?}").contains("digests: SHA-256"));

        let keyed = Cache::from_url("memory://?key_secret=k%26ey-s3cr3t")
            .await
            .unwrap();
        let shown = format!("{keyed:?}");
        assert!(
            shown.contains("digests: HMAC-SHA-256 (secret set)"),
            "{shown}"
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let error = Cache::from_url("memory://?key_secret=s3cr3t&key_secret=again")
            .await
            .unwrap_err();
        assert!(!error.to_string().contains("s3cr3t"), "{error}");

        let dummy = Cache::from_url("DUMMY://").await.unwrap();
        assert!(format!("{dummy:?}").contains("DummyStore"));
    }

    #[tokio::test]
    async fn bad_urls_are_errors_that_say_why() {
        for (url, needle) in [
            ("memory", "scheme://"),
            ("ftp://x", "unknown cache scheme"),
            (
                "memory://?max_entires=1",
                "unknown parameter \"max_entires\"",
            ),
            ("memory://?max_entries=ten", "max_entries"),
            ("memory://?version=1&version=2", "given twice"),
            ("dummy://?ignore_errors=maybe", "ignore_errors"),
        ] {
            let error = Cache::from_url(url).await.unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn redis_urls_need_the_feature() {
        let error = Cache::from_url("redis://127.0.0.1:6379").await.unwrap_err();
        assert!(error.to_string().contains("`redis` feature"), "{error}");
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_settings_are_checked_before_connecting() {
        // Nothing listens on port 9: each of these must fail on its parameters alone.
        for (url, needle) in [
            ("redis://127.0.0.1:9?pool_size=many", "pool_size"),
            ("redis://127.0.0.1:9?cool_down_ms=-1", "cool_down_ms"),
            (
                "redis://127.0.0.1:9?reconnect_max_ms=1s",
                "reconnect_max_ms",
            ),
            ("redis://127.0.0.1:9?store_prefix=", "prefix"),
            ("redis://127.0.0.1:9?timeout=soon", "timeout"),
            ("redis://127.0.0.1:9?bogus=1", "unknown parameter \"bogus\""),
            ("redis://127.0.0.1:9?tls_cert_file=/c.pem", "tls_"),
            #[cfg(feature = "redis-tls")]
            (
                "rediss://127.0.0.1:9?tls_ca_file=/nonexistent.pem",
                "cannot read",
            ),
            #[cfg(feature = "redis-tls")]
            ("redis://127.0.0.1:9?tls_ca_file=/dev/null", "without TLS"),
            #[cfg(not(feature = "redis-tls"))]
            ("rediss://127.0.0.1:9", "`redis-tls` feature"),
        ] {
            let error = Cache::from_url(url).await.unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
        let params = Params::parse("node=a:1&version=2&node=b:2", REDIS_URL_PARAMS).unwrap();
        assert_eq!(
            params.1,
            [("node".into(), "a:1".into()), ("node".into(), "b:2".into())]
        );
    }

    /// A secret no message may quote, in any of the places a URL carries one.
    const SECRET: &str = "s3cr3t-XYZ";

    fn assert_hidden(what: &str, text: &str) {
        for part in ["s3cr3t", "XYZ"] {
            assert!(!text.contains(part), "{what} shows a secret: {text}");
        }
    }

    #[tokio::test]
    async fn url_errors_never_quote_a_password() {
        for url in [
            format!("user:{SECRET}@cache.internal:6379"),
            format!("{SECRET}@cache.internal"),
            format!("user:{SECRET}@host?x=memory://"),
            // A password with `?` written without percent-encoding.
            "memory://:s3cr3t?XYZ@host".to_owned(),
            format!("memory://?password={SECRET}&sentinelPassword={SECRET}"),
            format!("dummy://?version=1&version=2&auth_token={SECRET}"),
            format!("ftp://user:{SECRET}@host/?password={SECRET}"),
        ] {
            let error = Cache::from_url(&url).await.unwrap_err().to_string();
            assert_hidden(&url, &error);
            let error = Caches::from_urls([("default", url.as_str())])
                .await
                .unwrap_err()
                .to_string();
            assert_hidden(&url, &error);
        }
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_url_errors_never_quote_a_password() {
        // Nothing listens on port 1: building fails on the parameters, on the URL, or on
        // connecting, and no message may quote the secret on the way.
        for url in [
            format!(
                "redis://user:{SECRET}@127.0.0.1:1/0?sentinelPassword={SECRET}&connect_timeout_ms=200"
            ),
            format!("redis://user:{SECRET}@127.0.0.1:1/0?password={SECRET}"),
            format!("redis://user:{SECRET}@127.0.0.1:1/0?pool_size=x"),
            format!("redis+cluster://user:{SECRET}@127.0.0.1:1?node={SECRET}"),
            format!("redis://{SECRET}@127.0.0.1:1?connect_timeout_ms=200"),
            "redis://:s3cr3t?XYZ@127.0.0.1:1?connect_timeout_ms=200".to_owned(),
        ] {
            let error = Cache::from_url(&url).await.unwrap_err().to_string();
            assert_hidden(&url, &error);
        }
    }

    #[test]
    fn environment_names_caches_after_the_prefix() {
        let variables = [
            ("CACHE_URL_SESSIONS", "dummy://"),
            ("CACHE_URL", "memory://?max_entries=5"),
            ("CACHE_URL_", "ignored://"),
            ("OTHER", "ignored://"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let urls = urls_from_variables("CACHE_URL", variables.into_iter());
        let pairs: Vec<(&str, &str)> = urls.iter().map(|(n, u)| (n.as_str(), u.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("default", "memory://"),
                ("sessions", "dummy://"),
                ("default", "memory://?max_entries=5"),
            ]
        );
    }

    #[tokio::test]
    async fn later_urls_replace_earlier_ones_of_the_same_name() {
        let caches = Caches::from_urls([("default", "memory://"), ("default", "dummy://")])
            .await
            .unwrap();
        assert!(format!("{:?}", caches.default()).contains("DummyStore"));
    }

    #[tokio::test]
    async fn a_registry_needs_a_default_cache() {
        let error = Caches::builder()
            .cache("other", Cache::new(DummyStore))
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("\"default\""));
        let error = Caches::from_urls([("default", "memory://?bogus=1")])
            .await
            .unwrap_err();
        assert!(error.to_string().contains("cache \"default\""));
    }
}
