//! The combined response-cache layer (Django's `CacheMiddleware`) and `cache_page`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Buf;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::key::{Class, Url};
use super::serve::{ResponseFuture, call_cached};
use super::split::{FetchFromCacheLayer, UpdateCacheLayer};
use super::{CacheBody, Config, LockSettings, PageStats};
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

    /// Whether responses carry an RFC 9211 `Cache-Status` header saying what the cache did
    /// (default `false`; the [`CacheStatus`](crate::CacheStatus) extension is always set).
    pub fn cache_status_header(mut self, enabled: bool) -> Self {
        self.config().cache_status_header = enabled;
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
    /// the origin itself (default 10 s).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.config().wait_timeout = timeout;
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
    /// an in-process store.
    pub fn lock_across_processes(mut self, ttl: Duration, wait: Duration) -> Self {
        self.config().lock = Some(LockSettings {
            ttl,
            wait,
            poll: Duration::from_millis(25),
        });
        self
    }

    /// What the stampede protection has done so far, over every service built from this layer.
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
    /// ignores are ignored here too.
    pub async fn delete_page(&self, url: &str) -> Result<bool, Error> {
        let uri: http::Uri = url
            .parse()
            .map_err(|error| Error::Config(format!("{url:?} is not a URL: {error}")))?;
        if uri.authority().is_none() {
            return Err(Error::Config(format!(
                "{url:?} needs a scheme and host, as in https://example.com/path"
            )));
        }
        let url = Url::parse(&uri, &self.config.ignored_params)
            .map_err(|_| Error::Config(format!("{url:?} has an unusable host")))?;
        let mut deleted = false;
        for class in [Class::Get, Class::Head] {
            let key = self.config.primary_store_key(class, &url);
            deleted |= self.config.cache.store().delete(&key).await?;
        }
        Ok(deleted)
    }
}

impl Cache {
    /// Deletes the pages a [`CacheLayer`] or [`cache_page`] with default settings stored for an
    /// absolute URL, every variant included. For a layer with a key prefix or ignored query
    /// parameters, use [`CacheLayer::delete_page`] on that layer.
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
        }
    }
}

/// The service of [`CacheLayer`] and [`cache_page`].
#[derive(Clone)]
pub struct CacheService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Buf,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        call_cached(&self.config, &mut self.inner, request, |then, _| then, true)
    }
}
