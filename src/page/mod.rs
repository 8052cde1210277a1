//! Response caching: [`CacheLayer`] for a whole router, [`cache_page`] for one route, and the
//! split [`FetchFromCacheLayer`] / [`UpdateCacheLayer`] pair for Django's middleware order.
//!
//! See the [response caching chapter](crate::docs::page) for how to use them, and the
//! [stampede chapter](crate::docs::stampede) for coalescing, locks and stale serving.
//!
//! Inside, in the order a request meets them: `layer`, `split` and `around` are the public
//! layers; `serve` runs a request through the cache (flights, store locks, stale serving);
//! `lookup` finds its entry; `respond` builds the response a hit gives and marks the others;
//! `update` decides whether the origin's response is stored, and `write` stores it. Under
//! them: `config` (the settings and running state), `key` and `scheme` (store keys), `entry`
//! (the stored form), `memo` (entries decoded from a remote store's bytes), `flight`
//! (coalesced misses), `status` (what the cache did), `body` (the response body that records
//! what it streams) and `background` (bounded work after answering).

#[cfg(feature = "axum")]
mod around;
mod background;
mod body;
mod config;
mod entry;
mod flight;
mod key;
mod layer;
mod lookup;
mod memo;
mod purge;
mod respond;
mod scheme;
mod serve;
mod split;
mod stats;
mod status;
mod update;
mod write;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName};
use http::{Response, StatusCode};

use crate::log::PageSpan;
use crate::stampede::HeldLock;

#[cfg(feature = "axum")]
pub use around::{CachedRouter, CachedRouterFuture};
pub use background::{DEFAULT_BACKGROUND_TIMEOUT, DEFAULT_MAX_BACKGROUND_TASKS};
pub use body::CacheBody;
pub use layer::{CacheLayer, cache_page};
pub use serve::{CacheFuture, CacheService};
pub use split::{
    FetchFromCacheLayer, FetchFromCacheService, UpdateCacheFuture, UpdateCacheLayer,
    UpdateCacheService,
};
pub use status::{Bypass, CacheStatus, NotStored, Stale};

use config::Config;
use entry::{Entry, Record};
#[cfg(test)]
pub(crate) use entry::{decode as decode_entry, encode as encode_entry};
use flight::PageLeader;
use key::Class;
pub use purge::PurgeService;
pub use stats::PageStats;
use status::MissKind;

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
    leader: Option<PageLeader>,
    lock: Option<HeldLock>,
    /// The request's span, which the work done for it after it is answered runs in.
    span: PageSpan,
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
pub(crate) enum Verdict {
    /// Decide whether to store it (the update step).
    Finish(Box<Pending>),
    /// Mark it as not looked up.
    Bypass(Bypass),
    /// Pass it through unmarked: another layer decides.
    Pass,
}

/// The response header a handler can list tags in (comma-separated); the cache layers remove it
/// before the response leaves.
pub const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// Tags for a response, set by a handler in the response's extensions, so that
/// [`Cache::invalidate_tag`](crate::Cache::invalidate_tag) removes the page with everything else that carries the tag.
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
