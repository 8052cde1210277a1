//! The settings of a response cache, shared by both halves, with their running state (flights,
//! background tasks, counters), and the store keys they give a request.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use http::{HeaderName, StatusCode};

use super::background::Background;
use super::flight::PageFlights;
use super::key::{
    Class, RequestValues, Url, push_page_head, push_primary_key, push_url, push_variant_suffix,
};
use super::memo::Memo;
use super::purge::Token;
use super::scheme::KeyScheme;
use super::stats::{Counters, Event, PageStats};
use super::status::CacheStatus;
use super::{
    DEFAULT_CACHE_STATUS_NAME, DEFAULT_MAX_BODY_SIZE, DEFAULT_PAGE_TIMEOUT, DEFAULT_PASS_TIMEOUT,
};
use crate::Cache;
use crate::stampede::Stampede;
use crate::store::{LocalStore, StoreError};

type KeyPartFn = Arc<dyn Fn(&Parts) -> String + Send + Sync>;
type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The settings shared by both halves of a response cache, and their shared running state.
#[derive(Clone)]
pub(crate) struct Config {
    pub(super) cache: Cache,
    pub(super) key_prefix: String,
    /// The start of every primary store key (cache prefix, version, page prefix), when the cache
    /// uses the default key function.
    pub(super) key_head: Option<String>,
    pub(super) cache_timeout: Duration,
    pub(super) page_timeout: Option<Duration>,
    pub(super) max_body_size: usize,
    pub(super) statuses: Vec<StatusCode>,
    pub(super) store_set_cookie: bool,
    pub(super) cache_status_header: bool,
    /// This cache's name in `Cache-Status`, as a structured-field token or string.
    pub(super) cache_status_name: Arc<str>,
    pub(super) key_part: Option<KeyPartFn>,
    pub(super) ignored_params: Vec<String>,
    /// Where the scheme in keys comes from.
    pub(super) scheme: KeyScheme,
    pub(super) clock: ClockFn,
    pub(super) coalesce: bool,
    pub(super) pass_timeout: Duration,
    pub(super) stale_while_revalidate: Option<Duration>,
    pub(super) stale_if_error: Option<Duration>,
    pub(super) refresh_before: Option<Duration>,
    pub(super) jitter: f64,
    /// Coalescing waits and the lock across processes: the cache's, unless the layer sets
    /// its own.
    pub(super) stampede: Stampede,
    pub(super) flights: Arc<PageFlights>,
    /// Remote writes and background refreshes, bounded in number and time.
    pub(super) background: Arc<Background>,
    /// Entries decoded from a remote store's bytes, reused while those bytes do not change.
    pub(super) memo: Arc<Memo>,
    pub(super) counters: Arc<Counters>,
    /// The token `PURGE` requests must carry, when the layer answers them.
    pub(super) purge: Option<Arc<Token>>,
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
            cache_status_name: Arc::from(DEFAULT_CACHE_STATUS_NAME),
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
            purge: None,
        };
        config.set_key_prefix(String::new());
        config
    }

    pub(super) fn now(&self) -> SystemTime {
        (self.clock)()
    }

    pub(super) fn local(&self) -> Option<&dyn LocalStore> {
        self.cache.store().as_local()
    }

    pub(crate) fn stats(&self) -> PageStats {
        let background = (self.background.skipped(), self.background.timed_out());
        self.counters
            .snapshot(background, self.cache.store_errors())
    }

    /// Counts what the cache did with a request, and logs it.
    pub(super) fn outcome(&self, status: CacheStatus) {
        crate::log::page_outcome(&status);
        self.counters.outcome(status, &self.cache_status_name);
    }

    /// Counts one of the events that are not outcomes.
    pub(super) fn count(&self, event: Event) {
        self.counters.event(event, &self.cache_status_name);
    }

    /// The store key of a URL's primary record: the cache's prefix and version around the page
    /// key, verbatim for an in-process store and made store-safe for a remote one.
    pub(super) fn primary_store_key(&self, class: Class, url: &Url<'_>) -> String {
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
    pub(super) fn variant_store_key(
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

    /// Deletes the primary records of `url` in both classes, which makes every stored variant
    /// of it unreachable. Returns whether anything was stored, or the key whose delete failed
    /// and the store's error.
    pub(super) async fn delete_pages(&self, url: &Url<'_>) -> Result<bool, (String, StoreError)> {
        let mut deleted = false;
        for class in [Class::Get, Class::Head] {
            let key = self.primary_store_key(class, url);
            match self.cache.store().delete(&key).await {
                Ok(removed) => deleted |= removed,
                Err(error) => return Err((key, error)),
            }
        }
        Ok(deleted)
    }

    /// A key as the store may hold it: verbatim in process, digested if too long for a remote
    /// store.
    pub(super) fn store_safe(&self, key: String) -> String {
        if self.local().is_some() {
            key
        } else {
            crate::key::store_safe(key)
        }
    }

    pub(super) fn extra(&self, parts: &Parts) -> String {
        self.key_part
            .as_ref()
            .map_or_else(String::new, |key_part| key_part(parts))
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
