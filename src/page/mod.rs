//! Response caching: [`CacheLayer`] for a whole router, [`cache_page`] for one route, and the
//! split [`FetchFromCacheLayer`] / [`UpdateCacheLayer`] pair for Django's middleware order.
//!
//! See the [response caching chapter](crate::docs::page) for how to use them, and the
//! [stampede chapter](crate::docs::stampede) for coalescing, locks and stale serving.
//!
//! Inside: `lookup` finds a request's entry, `update` decides what to store and writes it,
//! `serve` runs a request through both (with flights, store locks and stale serving), `flight`
//! coalesces concurrent misses, `entry` is the stored form, `memo` keeps entries decoded from a
//! remote store's bytes, `key` builds keys (with the scheme `scheme` says), `status` says what
//! the cache did, `background` bounds the work done after answering.

#[cfg(feature = "axum")]
mod around;
mod background;
mod body;
mod entry;
mod flight;
mod key;
mod layer;
mod lookup;
mod memo;
mod scheme;
mod serve;
mod split;
mod status;
mod update;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body::Body;

use crate::Cache;
use crate::conditional::{Precondition, evaluate_for_existing, not_modified_headers};
use crate::stampede::{HeldLock, Stampede};
use crate::store::LocalStore;

#[cfg(feature = "axum")]
pub use around::{CachedRouter, CachedRouterFuture};
pub use background::{DEFAULT_BACKGROUND_TIMEOUT, DEFAULT_MAX_BACKGROUND_TASKS};
pub use body::CacheBody;
pub use layer::{CacheLayer, CacheService, cache_page};
pub use serve::ResponseFuture;
pub use split::{FetchFromCache, FetchFromCacheLayer, UpdateCache, UpdateCacheLayer, UpdateFuture};
pub use status::{Bypass, CacheStatus, NotStored, Stale};

use background::Background;
use entry::{Entry, Record};
#[cfg(test)]
pub(crate) use entry::{decode as decode_entry, encode as encode_entry};
use flight::{Leader, PageFlights};
use key::{
    Class, RequestValues, Url, push_page_head, push_primary_key, push_url, push_variant_suffix,
};
use lookup::Hit;
use memo::Memo;
use scheme::KeyScheme;
use status::{Member, MissKind, cache_status_value};

/// Default timeout of the per-site layers: Django's `CACHE_MIDDLEWARE_SECONDS`.
pub const DEFAULT_PAGE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default [`max_body_size`](CacheLayer::max_body_size): 4 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 4 << 20;
/// Default bound on how long a request waits for another one fetching the same page.
pub const DEFAULT_WAIT_TIMEOUT: Duration = crate::stampede::DEFAULT_WAIT_TIMEOUT;
/// Default name of the cache in its `Cache-Status` member.
pub const DEFAULT_CACHE_STATUS_NAME: &str = "axum-cache";
/// Default time a page found not storable skips coalescing ("hit-for-pass").
pub const DEFAULT_PASS_TIMEOUT: Duration = Duration::from_secs(10);

type KeyPartFn = Arc<dyn Fn(&Parts) -> String + Send + Sync>;
type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The settings shared by both halves of a response cache, and their shared running state.
#[derive(Clone)]
pub(crate) struct Config {
    cache: Cache,
    key_prefix: String,
    /// The start of every primary store key (cache prefix, version, page prefix), when the cache
    /// uses the default key function.
    key_head: Option<String>,
    cache_timeout: Duration,
    page_timeout: Option<Duration>,
    max_body_size: usize,
    statuses: Vec<StatusCode>,
    store_set_cookie: bool,
    cache_status_header: bool,
    /// This cache's name in `Cache-Status`, as a structured-field token or string.
    cache_status_name: String,
    key_part: Option<KeyPartFn>,
    ignored_params: Vec<String>,
    /// Where the scheme in keys comes from.
    scheme: KeyScheme,
    clock: ClockFn,
    coalesce: bool,
    pass_timeout: Duration,
    stale_while_revalidate: Option<Duration>,
    stale_if_error: Option<Duration>,
    refresh_before: Option<Duration>,
    jitter: f64,
    /// Coalescing waits and the lock across processes: the cache's, unless the layer sets
    /// its own.
    stampede: Stampede,
    flights: Arc<PageFlights>,
    /// Remote writes and background refreshes, bounded in number and time.
    background: Arc<Background>,
    /// Entries decoded from a remote store's bytes, reused while those bytes do not change.
    memo: Arc<Memo>,
    counters: Arc<Counters>,
}

/// What the stampede protection did, counted since the layer was built.
#[derive(Debug, Default)]
struct Counters {
    coalesced: AtomicU64,
    lock_waits: AtomicU64,
    stale_served: AtomicU64,
    refreshes: AtomicU64,
}

/// Counts of what a response cache's stampede protection did, from [`CacheLayer::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PageStats {
    /// Requests that waited for another request of this process fetching the same page.
    pub coalesced: u64,
    /// Requests that waited for another process's lock on the same page.
    pub lock_waits: u64,
    /// Stale pages served (`stale-while-revalidate` or `stale-if-error`).
    pub stale_served: u64,
    /// Background refreshes started (stale-while-revalidate and early refresh).
    pub refreshes: u64,
    /// Background work (remote writes, refreshes) skipped because as many tasks as
    /// [`max_background_tasks`](CacheLayer::max_background_tasks) allows were running.
    pub background_skipped: u64,
    /// Background work stopped at its deadline
    /// ([`background_timeout`](CacheLayer::background_timeout)).
    pub background_timed_out: u64,
}

impl Config {
    pub(crate) fn new(cache: Cache) -> Config {
        let mut config = Config {
            stampede: cache.stampede(),
            cache,
            key_prefix: String::new(),
            key_head: None,
            cache_timeout: DEFAULT_PAGE_TIMEOUT,
            page_timeout: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            statuses: vec![StatusCode::OK],
            store_set_cookie: false,
            cache_status_header: false,
            cache_status_name: DEFAULT_CACHE_STATUS_NAME.to_owned(),
            key_part: None,
            ignored_params: Vec::new(),
            scheme: KeyScheme::default(),
            clock: Arc::new(SystemTime::now),
            coalesce: true,
            pass_timeout: DEFAULT_PASS_TIMEOUT,
            stale_while_revalidate: None,
            stale_if_error: None,
            refresh_before: None,
            jitter: 0.0,
            flights: Arc::default(),
            background: Arc::default(),
            memo: Arc::default(),
            counters: Arc::default(),
        };
        config.set_key_prefix(String::new());
        config
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn local(&self) -> Option<&dyn LocalStore> {
        self.cache.store().as_local()
    }

    pub(crate) fn stats(&self) -> PageStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PageStats {
            coalesced: read(&self.counters.coalesced),
            lock_waits: read(&self.counters.lock_waits),
            stale_served: read(&self.counters.stale_served),
            refreshes: read(&self.counters.refreshes),
            background_skipped: self.background.skipped(),
            background_timed_out: self.background.timed_out(),
        }
    }

    /// The store key of a URL's primary record: the cache's prefix and version around the page
    /// key, verbatim for an in-process store and made store-safe for a remote one.
    fn primary_store_key(&self, class: Class, url: &Url<'_>) -> String {
        let verbatim = self.local().is_some();
        let Some(head) = &self.key_head else {
            return self.cache.store_key_with(verbatim, |key| {
                push_primary_key(key, &self.key_prefix, class, url);
            });
        };
        let mut key = String::with_capacity(head.len() + 16 + url.len());
        key.push_str(head);
        push_url(&mut key, class, url);
        self.store_safe(key)
    }

    /// Sets the layer's key prefix and the precomputed start of its keys.
    pub(crate) fn set_key_prefix(&mut self, prefix: String) {
        self.key_head = self.cache.default_key_head().map(|mut head| {
            push_page_head(&mut head, &prefix);
            head
        });
        self.key_prefix = prefix;
    }

    /// The store key of one variant: the primary store key extended with the variant's values.
    fn variant_store_key(
        &self,
        primary: &str,
        generation: u64,
        extra: &str,
        names: &[HeaderName],
        request: &mut RequestValues<'_>,
    ) -> String {
        let mut key = String::with_capacity(primary.len() + 32 + 80 * names.len());
        key.push_str(primary);
        push_variant_suffix(&mut key, generation, extra, names, request);
        self.store_safe(key)
    }

    /// A key as the store may hold it: verbatim in process, digested if too long for a remote
    /// store.
    fn store_safe(&self, key: String) -> String {
        if self.local().is_some() {
            key
        } else {
            crate::key::store_safe(key)
        }
    }

    fn extra(&self, parts: &Parts) -> String {
        self.key_part
            .as_ref()
            .map_or_else(String::new, |key_part| key_part(parts))
    }

    /// The response a stored entry gives: the stored one with its age, or a 304/412 when the
    /// request's preconditions decide it. `status` says whether the entry is fresh or stale. An
    /// entry no one else holds (one just decoded from a remote store, too large for the memo)
    /// gives up its headers and body instead of copying them.
    ///
    /// `member` says what the `Cache-Status` header (when on) adds: whether the request waited
    /// for another's fetch, and the origin's status when it stands in for a failed response.
    pub(crate) fn hit_response<B>(
        &self,
        hit: Hit,
        method: &Method,
        request: &HeaderMap,
        status: CacheStatus,
        member: Member,
        extensions: http::Extensions,
    ) -> Response<CacheBody<B>> {
        let Hit {
            entry,
            now,
            conditional,
        } = hit;
        let age = age_value(now, entry.stored_at);
        let ttl = self
            .cache_status_header
            .then(|| remaining_seconds(&entry, now));
        let precondition = if conditional {
            evaluate_for_existing(method, request, entry.etag.as_ref(), entry.last_modified)
        } else {
            Precondition::Proceed
        };
        let (code, mut headers, body) = match precondition {
            Precondition::Proceed => {
                let with_body = method != Method::HEAD;
                let copy = |entry: &Entry| {
                    let body = with_body.then(|| entry.body.clone());
                    (entry.status, entry.headers.clone(), body)
                };
                // Checked first so that a shared entry (the in-process store's) costs no
                // atomic exchange.
                if Arc::strong_count(&entry) == 1 {
                    match Arc::try_unwrap(entry) {
                        Ok(owned) => (owned.status, owned.headers, with_body.then_some(owned.body)),
                        Err(shared) => copy(&shared),
                    }
                } else {
                    copy(&entry)
                }
            }
            Precondition::NotModified => (
                StatusCode::NOT_MODIFIED,
                not_modified_headers(&entry.headers),
                None,
            ),
            Precondition::PreconditionFailed => {
                (StatusCode::PRECONDITION_FAILED, HeaderMap::new(), None)
            }
        };
        // Stored entries carry an `Age` placeholder, replaced in place (`insert` would first make
        // room for one more header, growing a full map).
        match headers.get_mut(header::AGE) {
            Some(value) => *value = age,
            None => {
                headers.insert(header::AGE, age);
            }
        }
        // Stored entries carry a placeholder of this cache's member (and no upstream's: what
        // another cache did for the request that stored the page says nothing about this one).
        if let Some(ttl) = ttl {
            let member = Member {
                ttl: Some(ttl),
                ..member
            };
            let value = cache_status_value(&self.cache_status_name, status, member);
            match headers.get_mut(&CACHE_STATUS) {
                Some(placeholder) => *placeholder = value,
                None => {
                    headers.insert(CACHE_STATUS, value);
                }
            }
        }
        let mut response = Response::new(CacheBody::cached(body));
        *response.status_mut() = code;
        *response.headers_mut() = headers;
        let mut extensions = extensions;
        extensions.clear();
        extensions.insert(status);
        *response.extensions_mut() = extensions;
        crate::log::page_outcome(&status);
        if status != CacheStatus::Hit {
            self.counters.stale_served.fetch_add(1, Ordering::Relaxed);
        }
        response
    }

    /// Applies the update step's verdict to the inner service's response.
    pub(crate) fn apply<B: Body>(
        self: &Arc<Config>,
        then: Option<Then>,
        response: Response<B>,
    ) -> Response<CacheBody<B>> {
        match then {
            Some(Then::Finish(pending)) => match pending.stale_instead(&response) {
                Some(entry) => self.stale_if_error(entry, &pending, Some(response.status())),
                None => self.finish(pending, response),
            },
            Some(Then::Bypass(bypass)) => self.bypass(response, bypass),
            // Without the fetch half's verdict (it did not run for this route), nothing is
            // stored, but the tags header is still the handler's note to the cache alone.
            Some(Then::Pass) | None => {
                let mut response = response.map(CacheBody::passthrough);
                response.headers_mut().remove(CACHE_TAG);
                response
            }
        }
    }

    /// Serves the stale entry in place of a failed origin response (`stale-if-error`), whose
    /// status is `origin_status` (`None` when the inner service failed without a response).
    fn stale_if_error<B>(
        &self,
        entry: Arc<Entry>,
        pending: &Pending,
        origin_status: Option<StatusCode>,
    ) -> Response<CacheBody<B>> {
        let method = if pending.class == Class::Head {
            Method::HEAD
        } else {
            Method::GET
        };
        let hit = Hit {
            entry,
            now: self.now(),
            // A request with `If-Match` or `If-Unmodified-Since` never reached an entry.
            conditional: lookup::request_validators(&pending.headers).unwrap_or_default(),
        };
        let member = Member {
            fwd_status: origin_status,
            ..Member::served(false)
        };
        self.hit_response(
            hit,
            &method,
            &pending.headers,
            CacheStatus::Stale(Stale::IfError),
            member,
            http::Extensions::new(),
        )
    }

    /// The stale response to send instead of the inner service's error, if there is one.
    pub(crate) fn recover<B>(&self, then: Option<Then>) -> Option<Response<CacheBody<B>>> {
        match then {
            Some(Then::Finish(pending)) => {
                let entry = Arc::clone(pending.stale.as_ref()?);
                Some(self.stale_if_error(entry, &pending, None))
            }
            _ => None,
        }
    }

    /// Marks a response that was not looked up.
    pub(crate) fn bypass<B>(
        &self,
        response: Response<B>,
        reason: Bypass,
    ) -> Response<CacheBody<B>> {
        let mut response = response.map(CacheBody::passthrough);
        response.headers_mut().remove(CACHE_TAG);
        self.mark(&mut response, CacheStatus::Bypass(reason), MissKind::Uri);
        response
    }

    /// Marks a response from the origin with what the cache did. This cache's `Cache-Status`
    /// member is appended after any the response already carries from caches nearer the origin.
    fn mark<B>(&self, response: &mut Response<B>, status: CacheStatus, miss: MissKind) {
        crate::log::page_outcome(&status);
        if self.cache_status_header {
            let member = Member::forwarded(miss, response.status());
            let value = cache_status_value(&self.cache_status_name, status, member);
            response.headers_mut().append(CACHE_STATUS, value);
        }
        response.extensions_mut().insert(status);
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cache", &self.cache)
            .field("key_prefix", &self.key_prefix)
            .field("cache_timeout", &self.cache_timeout)
            .field("page_timeout", &self.page_timeout)
            .field("max_body_size", &self.max_body_size)
            .field("statuses", &self.statuses)
            .field("store_set_cookie", &self.store_set_cookie)
            .field("cache_status_header", &self.cache_status_header)
            .field("cache_status_name", &self.cache_status_name)
            .field("key_part", &self.key_part.is_some())
            .field("ignored_params", &self.ignored_params)
            .field("scheme", &self.scheme)
            .field("coalesce", &self.coalesce)
            .field("stampede", &self.stampede)
            .field("stale_while_revalidate", &self.stale_while_revalidate)
            .field("stale_if_error", &self.stale_if_error)
            .field("refresh_before", &self.refresh_before)
            .field("jitter", &self.jitter)
            .field("max_background_tasks", &self.background.limit())
            .field("background_timeout", &self.background.timeout())
            .finish_non_exhaustive()
    }
}

/// What the fetch step learned on a miss; the update step needs it to store the response.
pub(crate) struct Pending {
    class: Class,
    /// Store key of the primary record for `class`.
    primary: String,
    /// What that record held.
    found: Option<Record>,
    /// The request's URL path, without the query: what diagnostics name the page by.
    path: String,
    /// The request headers as the fetch step saw them, for the variant key.
    headers: HeaderMap,
    extra: String,
    miss: MissKind,
    /// Names this request's page among concurrent requests: the variant key when the URL's
    /// variants are known, else the primary key with what every entry must match.
    flight_key: String,
    /// When the lookup started, in microseconds since the epoch: a stored response is valid
    /// for its tags only if this is after their last invalidation.
    started_micros: u64,
    /// A stale entry this request may fall back on if the origin fails (`stale-if-error`).
    stale: Option<Arc<Entry>>,
    /// Held while this request fetches the page for others: released when it is stored, found
    /// unstorable, or the request fails.
    leader: Option<Leader>,
    lock: Option<HeldLock>,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the request's headers or keys: they hold request values.
        f.debug_struct("Pending")
            .field("class", &self.class)
            .field("path", &self.path)
            .field("miss", &self.miss)
            .field("leads", &self.leader.is_some())
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// The stale entry to serve instead of an origin response that failed (5xx, or 408).
    fn stale_instead<B>(&self, response: &Response<B>) -> Option<Arc<Entry>> {
        let status = response.status();
        let failed = status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT;
        if failed { self.stale.clone() } else { None }
    }
}

/// What to do with the inner service's response.
#[derive(Debug)]
pub(crate) enum Then {
    /// Decide whether to store it (the update step).
    Finish(Box<Pending>),
    /// Mark it as not looked up.
    Bypass(Bypass),
    /// Pass it through unmarked: another layer decides.
    Pass,
}

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// The response header a handler can list tags in (comma-separated); the cache layers remove it
/// before the response leaves.
pub const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// Tags for a response, set by a handler in the response's extensions, so that
/// [`Cache::invalidate_tag`] removes the page with everything else that carries the tag.
///
/// ```
/// use axum::{Extension, routing::get, Router};
/// use axum_cache::page::CacheTags;
///
/// let app: Router = Router::new().route(
///     "/articles/7",
///     get(|| async { (Extension(CacheTags::new(["articles", "article:7"])), "the article") }),
/// );
/// ```
///
/// The same works with a `Cache-Tag: articles, article:7` response header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheTags(Vec<String>);

impl CacheTags {
    /// Tags for a response.
    pub fn new<I, T>(tags: I) -> CacheTags
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        CacheTags(tags.into_iter().map(Into::into).collect())
    }

    /// The tags.
    pub fn tags(&self) -> &[String] {
        &self.0
    }
}

/// How many seconds an entry stays fresh after `now`: negative once it is stale.
fn remaining_seconds(entry: &Entry, now: SystemTime) -> i64 {
    let fresh_until = entry
        .stored_at
        .checked_add(entry.lifetime.fresh)
        .unwrap_or(entry.stored_at);
    let seconds = |duration: Duration| i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    match fresh_until.duration_since(now) {
        Ok(left) => seconds(left),
        Err(past) => -seconds(past.duration()),
    }
}

/// The `Age` value for an entry stored at `stored_at`, in whole seconds. Ages below ten minutes
/// come from a table of static values, so a hit neither allocates nor touches a reference count
/// for them. (The table's text is built once and kept for the life of the process.)
fn age_value(now: SystemTime, stored_at: SystemTime) -> HeaderValue {
    const TABLE: usize = 600;
    static AGES: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let age = now.duration_since(stored_at).map_or(0, |age| age.as_secs());
    let table = AGES.get_or_init(|| {
        (0..TABLE)
            .map(|age| {
                let text: &'static str = Box::leak(age.to_string().into_boxed_str());
                HeaderValue::from_static(text)
            })
            .collect()
    });
    usize::try_from(age)
        .ok()
        .and_then(|index| table.get(index))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(age))
}
