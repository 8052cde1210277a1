//! The combined response-cache layer (Django's `CacheMiddleware`) and `cache_page`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use http::request::Parts;
use tower_layer::Layer;

use super::background::Background;
use super::key::{Url, prefix_patterns};
use super::purge::Token;
use super::scheme::KeyScheme;
use super::serve::{CacheService, Part};
use super::split::{FetchFromCacheLayer, UpdateCacheLayer};
use super::{Config, PageStats};
use crate::stampede::StoreLock;
use crate::{Cache, Error};

/// Caches whole responses of the service it wraps: Django's `CacheMiddleware`, as one Tower
/// layer.
///
/// On a `GET` or `HEAD` request it looks the response up by URL and by the request's values of
/// the headers the stored responses vary on. A hit is answered from the cache without calling
/// the inner service. On a miss the inner service answers; if its response may be stored
/// (status 200, no `private`/`no-cache`/`no-store`, no `Vary: *`, no `Set-Cookie`, a non-zero
/// timeout), its body is copied while it streams to the client and stored once it has ended
/// cleanly within [`max_body_size`](CacheLayer::max_body_size).
///
/// See the [response caching chapter](crate::docs::page) for the rules, the layer order and the
/// security model.
///
/// # Example
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::{Cache, CacheLayer, store::MemoryStore};
/// use std::time::Duration;
///
/// let cache = Cache::new(MemoryStore::new());
/// let app: Router = Router::new()
///     .route("/", get(|| async { "home" }))
///     .layer(CacheLayer::new(cache).timeout(Duration::from_secs(60)));
/// ```
#[derive(Clone)]
#[must_use]
pub struct CacheLayer {
    config: Arc<Config>,
}

/// Caches one route's responses for `timeout`, whatever `max-age` the response gives: Django's
/// `@cache_page(timeout)`.
///
/// It is a [`CacheLayer`] with a [forced timeout](CacheLayer::force_timeout); everything else
/// (keys, what is stored) is the same. To use a named cache, pass it:
/// `cache_page(caches.get("long")?, ttl)`.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::{Cache, cache_page, store::MemoryStore};
/// use std::time::Duration;
///
/// let cache = Cache::new(MemoryStore::new());
/// let app: Router = Router::new().route(
///     "/articles",
///     get(|| async { "articles" }).layer(cache_page(&cache, Duration::from_secs(900))),
/// );
/// ```
pub fn cache_page(cache: &Cache, timeout: Duration) -> CacheLayer {
    CacheLayer::new(cache.clone()).force_timeout(timeout)
}

impl CacheLayer {
    /// A response cache storing into `cache`, with Django's per-site defaults: 600 s for
    /// responses that set no `max-age`, no key prefix, status 200 only.
    pub fn new(cache: Cache) -> CacheLayer {
        CacheLayer {
            config: Arc::new(Config::new(cache)),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// How long to keep a response that gives no `max-age` or `s-maxage` (default 600 s,
    /// Django's `CACHE_MIDDLEWARE_SECONDS`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config().cache_timeout = timeout;
        self
    }

    /// Keep every stored response for exactly `timeout`, whatever its `max-age` says (Django's
    /// `page_timeout`, what [`cache_page`] sets). A zero timeout stores nothing.
    pub fn force_timeout(mut self, timeout: Duration) -> Self {
        self.config().page_timeout = Some(timeout);
        self
    }

    /// A prefix for this layer's keys (default none), so that two layers on the same cache keep
    /// separate entries for the same URL.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config().set_key_prefix(prefix.into());
        self
    }

    /// The largest body stored (default 4 MiB). Larger responses stream to the client
    /// untouched and are not stored.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.config().max_body_size = bytes;
        self
    }

    /// The status codes whose responses are stored (default only 200). RFC 9111 allows more,
    /// for example 203, 301, 404 and 410. `206 Partial Content` and `304 Not Modified` are
    /// never stored, even if listed: one is a piece of a body, the other the answer to one
    /// client's conditional request, and replaying either to everyone would serve a broken
    /// page.
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.config().statuses = statuses
            .into_iter()
            .filter(|status| {
                *status != StatusCode::PARTIAL_CONTENT && *status != StatusCode::NOT_MODIFIED
            })
            .collect();
        self
    }

    /// Whether responses that set cookies are stored and replayed to everyone (default
    /// `false`). Even when allowed, a response that sets a cookie and varies on `Cookie` is never
    /// stored. Only allow it for cookies that are the same for every visitor.
    pub fn store_set_cookie(mut self, store: bool) -> Self {
        self.config().store_set_cookie = store;
        self
    }

    /// Whether responses carry a `Cache-Status` header saying what the cache did (default
    /// `false`; the [`CacheStatus`](crate::CacheStatus) extension is always set).
    ///
    /// This cache's member is appended after any that caches nearer the origin added. A hit
    /// says `hit` and `ttl` (the seconds it stays fresh, negative once stale: a stale page
    /// served while it is refreshed); a request that waited for another request's fetch says
    /// `fwd=miss` and `collapsed`; a stale page served because the origin failed says
    /// `fwd=stale` and the origin's `fwd-status`; a response from the origin says `fwd`
    /// (`uri-miss`, `vary-miss`, `method`, or `bypass` with a `detail`), its `fwd-status`, and
    /// `stored` or why it was not (`detail`).
    ///
    /// ```
    /// # use axum_cache::{Cache, CacheLayer, store::MemoryStore};
    /// let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
    ///     .cache_status_header(true)
    ///     .cache_status_name("edge-1");
    /// // A hit then says `Cache-Status: edge-1; hit; ttl=598`.
    /// # let _ = layer;
    /// ```
    pub fn cache_status_header(mut self, enabled: bool) -> Self {
        self.config().cache_status_header = enabled;
        self
    }

    /// The cache's name in its `Cache-Status` member (default
    /// [`DEFAULT_CACHE_STATUS_NAME`](super::DEFAULT_CACHE_STATUS_NAME), `axum-cache`). A name that
    /// is not a structured-field token (a letter, then letters, digits and `!#$%&'*+-.^_`|~:/`)
    /// is written as a quoted string.
    pub fn cache_status_name(mut self, name: &str) -> Self {
        self.config().cache_status_name = super::status::cache_status_name(name).into();
        self
    }

    /// Adds a part computed from the request to every key, as Django adds the language and the
    /// time zone. Requests whose parts differ never share an entry.
    ///
    /// ```
    /// # use axum_cache::{Cache, CacheLayer, store::MemoryStore};
    /// let layer = CacheLayer::new(Cache::new(MemoryStore::new())).key_part(|request| {
    ///     let language = request.headers.get("accept-language").and_then(|v| v.to_str().ok());
    ///     language.unwrap_or("en").split(',').next().unwrap_or("en").trim().to_owned()
    /// });
    /// ```
    pub fn key_part<F>(mut self, key_part: F) -> Self
    where
        F: Fn(&Parts) -> String + Send + Sync + 'static,
    {
        self.config().key_part = Some(Arc::new(key_part));
        self
    }

    /// Query parameters left out of the key, such as tracking parameters (`utm_source`,
    /// `gclid`), so that they do not split the cache. Only list parameters the page ignores.
    pub fn ignore_query_params<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config().ignored_params = names.into_iter().map(Into::into).collect();
        self
    }

    /// The scheme in every key this layer makes (default `http`), for a site served over one
    /// scheme: `.scheme(Scheme::HTTPS)` behind TLS.
    ///
    /// Keys never take the scheme from the request's URI: HTTP/1.1 requests carry none while
    /// HTTP/2 requests carry `https`, so the same page would be stored twice and
    /// [`delete_page`](CacheLayer::delete_page) would miss one copy. `delete_page` keys its URL
    /// with this scheme too, whatever the URL says.
    ///
    /// ```
    /// # use axum_cache::{Cache, CacheLayer, store::MemoryStore};
    /// use http::uri::Scheme;
    /// let layer = CacheLayer::new(Cache::new(MemoryStore::new())).scheme(Scheme::HTTPS);
    /// # let _ = layer;
    /// ```
    pub fn scheme(mut self, scheme: http::uri::Scheme) -> Self {
        self.config().scheme = KeyScheme::Fixed(scheme.as_str().to_ascii_lowercase());
        self
    }

    /// Take the scheme in keys from a header that a trusted proxy in front of the application
    /// sets, such as `X-Forwarded-Proto`, for a site served over both `http` and `https` whose
    /// pages differ by scheme (a redirect to `https`, absolute links). Its first value, `https`
    /// or `http` in any case, is used; a request without a usable value (absent, repeated,
    /// anything else) is keyed as `http`. [`delete_page`](CacheLayer::delete_page) then keys a
    /// URL with the URL's own scheme.
    ///
    /// Only name a header the proxy always sets or overwrites: a client could otherwise choose
    /// which copy of a page it reads and writes.
    ///
    /// ```
    /// # use axum_cache::{Cache, CacheLayer, store::MemoryStore};
    /// use http::HeaderName;
    /// let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
    ///     .scheme_header(HeaderName::from_static("x-forwarded-proto"));
    /// # let _ = layer;
    /// ```
    pub fn scheme_header(mut self, name: http::HeaderName) -> Self {
        self.config().scheme = KeyScheme::Header(name);
        self
    }

    /// The wall clock used for `Expires`, `Age` and stored times (default
    /// [`SystemTime::now`]). Tests use it to control time.
    pub fn clock<F>(mut self, clock: F) -> Self
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        self.config().clock = Arc::new(clock);
        self
    }

    /// Whether concurrent misses on one page wait for the first one instead of all asking the
    /// origin (default `true`). The waiters then get the stored page; see the
    /// [stampede chapter](crate::docs::stampede).
    pub fn coalesce(mut self, coalesce: bool) -> Self {
        self.config().coalesce = coalesce;
        self
    }

    /// The longest a request waits for another request fetching the same page before asking
    /// the origin itself (default: the cache's [`wait_timeout`](crate::CacheBuilder::wait_timeout),
    /// 10 s unless set there).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.config().stampede.wait_timeout = timeout;
        self
    }

    /// How long a page found not storable skips coalescing, so that requests for it run in
    /// parallel instead of queueing behind each other (default 10 s; Varnish calls this
    /// hit-for-pass).
    pub fn pass_timeout(mut self, timeout: Duration) -> Self {
        self.config().pass_timeout = timeout;
        self
    }

    /// Serve a page for up to `window` after it expires while one request fetches it again in
    /// the background (RFC 5861 `stale-while-revalidate`), for responses that do not set the
    /// directive themselves.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.config().stale_while_revalidate = Some(window);
        self
    }

    /// Serve a page for up to `window` after it expires when the origin fails (an error, a 5xx
    /// or a 408 response) instead of the failure (RFC 5861 `stale-if-error`), for responses
    /// that do not set the directive themselves.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.config().stale_if_error = Some(window);
        self
    }

    /// Refresh a page in the background when a request finds it within `window` of its
    /// expiry, so that a popular page never expires under load.
    pub fn refresh_before(mut self, window: Duration) -> Self {
        self.config().refresh_before = Some(window);
        self
    }

    /// Shorten each stored page's lifetime by a random fraction of at most `fraction` (0 to 1),
    /// so that pages stored together do not all expire together. The headers sent to clients
    /// keep the full lifetime.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.config().jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// Coalesce misses across processes that share a remote store: the first process to miss
    /// takes a lock in the store (living at most `ttl`, in case the process dies) and the others
    /// wait up to `wait` for the page it stores, then ask the origin themselves. No effect with
    /// an in-process store. A cache built with
    /// [`CacheBuilder::lock_across_processes`](crate::CacheBuilder::lock_across_processes)
    /// gives its response caches the same lock unless they set their own here.
    pub fn lock_across_processes(mut self, ttl: Duration, wait: Duration) -> Self {
        self.config().stampede.lock = Some(StoreLock::new(ttl, wait));
        self
    }

    /// The most background tasks (writes to a remote store, background refreshes) this layer
    /// runs at once (default [`DEFAULT_MAX_BACKGROUND_TASKS`](super::DEFAULT_MAX_BACKGROUND_TASKS),
    /// 128). Past it, a write or refresh is skipped (the response still reaches the client; the
    /// page is just not stored or refreshed this time) and counted in
    /// [`PageStats::background_skipped`]: a slow store never makes work pile up in memory.
    /// Zero turns background work off: pages are then stored only into in-process stores and
    /// never refreshed in the background.
    pub fn max_background_tasks(mut self, limit: usize) -> Self {
        let timeout = self.config.background.timeout();
        self.config().background = Arc::new(Background::new(limit, timeout));
        self
    }

    /// The deadline of each background task (default
    /// [`DEFAULT_BACKGROUND_TIMEOUT`](super::DEFAULT_BACKGROUND_TIMEOUT), 30 s). A write or
    /// refresh still running then is stopped (nothing is stored) and counted in
    /// [`PageStats::background_timed_out`].
    pub fn background_timeout(mut self, timeout: Duration) -> Self {
        let limit = self.config.background.limit();
        self.config().background = Arc::new(Background::new(limit, timeout));
        self
    }

    /// Answer `PURGE` requests that carry `Authorization: Bearer <token>` by deleting the stored
    /// pages of their URL (every variant), as Varnish does, instead of passing them on; the
    /// answer is JSON, as [`PurgeService`](super::PurgeService)'s. Without a valid token the
    /// answer is `401`. Off by default: `PURGE` then goes to the inner service like any method
    /// the cache does not look up. An empty token admits nobody.
    pub fn purge_method(mut self, token: impl AsRef<[u8]>) -> Self {
        let token = token.as_ref();
        self.config().purge = Some(Arc::new(Token::new(token))).filter(|_| !token.is_empty());
        self
    }

    /// The cache this layer stores pages in.
    pub(super) fn cache(&self) -> &Cache {
        &self.config.cache
    }

    /// What this response cache has done so far, over every service built from this layer
    /// (both halves of a split included): outcomes by reason, writes and waits. See the
    /// [chapter on counting](crate::docs::metrics).
    pub fn stats(&self) -> PageStats {
        self.config.stats()
    }

    /// The two halves of this cache with the same settings, for Django's order: the update
    /// layer outermost, the fetch layer innermost, other middleware between them.
    ///
    /// ```
    /// # use axum::{Router, routing::get};
    /// # use axum_cache::{Cache, CacheLayer, store::MemoryStore};
    /// let (update, fetch) = CacheLayer::new(Cache::new(MemoryStore::new())).split();
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "home" }))
    ///     .layer(fetch)
    ///     // .layer(session_layer) — middleware that sets Vary or cookies goes here
    ///     .layer(update);
    /// ```
    pub fn split(self) -> (UpdateCacheLayer, FetchFromCacheLayer) {
        (
            UpdateCacheLayer::from_config(Arc::clone(&self.config)),
            FetchFromCacheLayer::from_config(self.config),
        )
    }

    /// Deletes the stored responses for an absolute URL (`https://example.com/path?query`), every
    /// variant included. Returns whether anything was stored. Query parameters this layer
    /// ignores are ignored here too, and the URL's scheme counts only as the layer's
    /// [`scheme`](CacheLayer::scheme) settings say (by default, not at all).
    pub async fn delete_page(&self, url: &str) -> Result<bool, Error> {
        let uri = absolute(url)?;
        let url = Url::parse(&uri, &self.config.ignored_params, &self.config.scheme)
            .map_err(|_| Error::Config(format!("{url:?} has an unusable host")))?;
        self.config
            .delete_pages(&url)
            .await
            .map_err(|(_, error)| Error::Store(error))
    }

    /// Deletes the stored responses for every URL that starts with `prefix`
    /// (`https://example.com/articles/`: the same scheme and host, and a path and query that
    /// start with the prefix's), every variant included. Returns how many records were removed
    /// (a page with variants counts each).
    ///
    /// **Expensive:** the store walks its keys, as for
    /// [`Cache::delete_pattern`]. Needs the default key function and a store that supports
    /// pattern deletes (the in-memory and Redis stores do); pages whose key was too long for a
    /// remote store and was stored under its digest cannot be found this way (expire them, or
    /// use [`delete_page`](CacheLayer::delete_page) or tags).
    pub async fn delete_pages_under(&self, prefix: &str) -> Result<u64, Error> {
        let uri = absolute(prefix)?;
        let url = Url::parse(&uri, &[], &self.config.scheme)
            .map_err(|_| Error::Config(format!("{prefix:?} has an unusable host")))?;
        let Some(head) = &self.config.key_head else {
            return Err(Error::Config(
                "delete_pages_under needs the default key function".to_owned(),
            ));
        };
        let mut deleted = 0;
        for pattern in prefix_patterns(head, &url) {
            deleted += self.config.cache.store().delete_pattern(&pattern).await?;
        }
        Ok(deleted)
    }
}

/// `url` parsed as an absolute URL (scheme and host), or the configuration error saying why not.
fn absolute(url: &str) -> Result<http::Uri, Error> {
    let uri: http::Uri = url
        .parse()
        .map_err(|error| Error::Config(format!("{url:?} is not a URL: {error}")))?;
    if uri.authority().is_none() {
        return Err(Error::Config(format!(
            "{url:?} needs a scheme and host, as in https://example.com/path"
        )));
    }
    Ok(uri)
}

impl Cache {
    /// Deletes the pages a [`CacheLayer`] or [`cache_page`] with default settings stored for an
    /// absolute URL, every variant included. For a layer with a key prefix, ignored query
    /// parameters or a scheme setting, use [`CacheLayer::delete_page`] on that layer.
    pub async fn delete_page(&self, url: &str) -> Result<bool, Error> {
        CacheLayer::new(self.clone()).delete_page(url).await
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> CacheService<S> {
        CacheService {
            inner,
            config: Arc::clone(&self.config),
            part: Part::Whole,
        }
    }
}
