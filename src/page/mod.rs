//! Response caching: [`CacheLayer`] for a whole router, [`cache_page`] for one route, and the
//! split [`FetchFromCacheLayer`] / [`UpdateCacheLayer`] pair for Django's middleware order.
//!
//! See the [response caching chapter](crate::docs::page) for how to use them.

mod body;
mod entry;
mod key;
mod layer;
mod split;
mod status;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body::Body;

use crate::Cache;
use crate::conditional::{Precondition, evaluate_preconditions, not_modified_headers};
use crate::headers::{CacheControl, Vary, patch_response_headers, patch_vary_headers, vary};
use crate::store::{LocalStore, LocalValue, Ttl};

pub use body::CacheBody;
pub use layer::{CacheLayer, CacheService, ResponseFuture, cache_page};
pub use split::{FetchFromCache, FetchFromCacheLayer, UpdateCache, UpdateCacheLayer, UpdateFuture};
pub use status::{Bypass, CacheStatus, NotStored};

use body::Recorder;
use entry::{Entry, Record, Variants};
pub(crate) use key::push_decimal;
use key::{
    Class, Url, class_of, push_page_head, push_primary_key, push_url, push_variant_suffix,
    request_value,
};
use status::{MissKind, cache_status_value};

/// Default timeout of the per-site layers: Django's `CACHE_MIDDLEWARE_SECONDS`.
pub const DEFAULT_PAGE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default [`max_body_size`](CacheLayer::max_body_size): 4 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 4 << 20;

type KeyPartFn = Arc<dyn Fn(&Parts) -> String + Send + Sync>;
type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The settings shared by both halves of a response cache.
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
    key_part: Option<KeyPartFn>,
    ignored_params: Vec<String>,
    clock: ClockFn,
}

impl Config {
    pub(crate) fn new(cache: Cache) -> Config {
        let mut config = Config {
            cache,
            key_prefix: String::new(),
            key_head: None,
            cache_timeout: DEFAULT_PAGE_TIMEOUT,
            page_timeout: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            statuses: vec![StatusCode::OK],
            store_set_cookie: false,
            cache_status_header: false,
            key_part: None,
            ignored_params: Vec::new(),
            clock: Arc::new(SystemTime::now),
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
        if verbatim {
            key
        } else {
            crate::key::store_safe(key)
        }
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
        headers: &HeaderMap,
    ) -> String {
        let mut key = String::with_capacity(primary.len() + 64);
        key.push_str(primary);
        push_variant_suffix(&mut key, generation, extra, names, headers);
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
            .field("key_part", &self.key_part.is_some())
            .field("ignored_params", &self.ignored_params)
            .finish_non_exhaustive()
    }
}

/// What the fetch step learned on a miss; the update step needs it to store the response.
#[derive(Debug)]
pub(crate) struct Pending {
    class: Class,
    /// Store key of the primary record for `class`.
    primary: String,
    /// What that record held.
    found: Found,
    /// The request headers as the fetch step saw them, for the variant key.
    headers: HeaderMap,
    extra: String,
    miss: MissKind,
}

/// The primary record found by a lookup.
#[derive(Debug)]
enum Found {
    Nothing,
    Entry,
    Variants(Variants),
}

/// What to do with the inner service's response.
#[derive(Debug)]
pub(crate) enum Then {
    /// Decide whether to store it (the update step).
    Finish(Pending),
    /// Mark it as not looked up.
    Bypass(Bypass),
    /// Pass it through unmarked: another layer decides.
    Pass,
}

/// The result of looking a request up.
pub(crate) enum Lookup {
    Hit(Arc<Entry>),
    Miss(Pending),
    Bypass(Bypass),
}

/// One class's primary record and, through it, the matching entry if there is one.
struct Probe {
    primary: String,
    found: Found,
    hit: Option<Arc<Entry>>,
}

impl Probe {
    /// Interprets the primary record; returns the variant key to read when it is a variant list.
    fn start(
        config: &Config,
        primary: String,
        record: Option<PrimaryRecord>,
        headers: &HeaderMap,
        extra: &str,
    ) -> (Probe, Option<String>) {
        match record {
            None => (
                Probe {
                    primary,
                    found: Found::Nothing,
                    hit: None,
                },
                None,
            ),
            Some(PrimaryRecord::Entry(entry)) => {
                let hit = entry.matches(headers, extra).then_some(entry);
                (
                    Probe {
                        primary,
                        found: Found::Entry,
                        hit,
                    },
                    None,
                )
            }
            Some(PrimaryRecord::Variants(variants)) => {
                let key = config.variant_store_key(
                    &primary,
                    variants.generation,
                    extra,
                    &variants.names,
                    headers,
                );
                (
                    Probe {
                        primary,
                        found: Found::Variants(variants),
                        hit: None,
                    },
                    Some(key),
                )
            }
        }
    }

    fn finish(mut self, entry: Option<Arc<Entry>>, headers: &HeaderMap, extra: &str) -> Probe {
        self.hit = entry.filter(|entry| entry.matches(headers, extra));
        self
    }
}

/// A primary record as read: an entry, or a variant list.
enum PrimaryRecord {
    Entry(Arc<Entry>),
    Variants(Variants),
}

impl PrimaryRecord {
    fn from_local(value: LocalValue) -> Option<PrimaryRecord> {
        match value.downcast::<Entry>() {
            Ok(entry) => Some(PrimaryRecord::Entry(entry)),
            Err(value) => value
                .downcast::<Variants>()
                .ok()
                .map(|variants| PrimaryRecord::Variants((*variants).clone())),
        }
    }

    fn from_bytes(bytes: &Bytes) -> Option<PrimaryRecord> {
        match entry::decode(bytes)? {
            Record::Entry(entry) => Some(PrimaryRecord::Entry(Arc::from(entry))),
            Record::Variants(variants) => Some(PrimaryRecord::Variants(variants)),
        }
    }

    fn into_entry(self) -> Option<Arc<Entry>> {
        match self {
            PrimaryRecord::Entry(entry) => Some(entry),
            PrimaryRecord::Variants(_) => None,
        }
    }
}

impl Config {
    /// The classes a request is looked up in: `GET` entries, then for `HEAD` also the entries
    /// stored from `HEAD` misses.
    fn classes(class: Class) -> &'static [Class] {
        match class {
            Class::Get => &[Class::Get],
            Class::Head => &[Class::Get, Class::Head],
        }
    }

    fn pending(&self, class: Class, probe: Probe, parts: &Parts, extra: String) -> Pending {
        let miss = match probe.found {
            Found::Nothing => MissKind::Uri,
            Found::Entry | Found::Variants(_) => MissKind::Vary,
        };
        Pending {
            class,
            primary: probe.primary,
            found: probe.found,
            headers: parts.headers.clone(),
            extra,
            miss,
        }
    }

    /// Looks a request up in an in-process store, without waiting.
    pub(crate) fn lookup_local(&self, local: &dyn LocalStore, parts: &Parts) -> Lookup {
        let Some(class) = class_of(&parts.method) else {
            return Lookup::Bypass(Bypass::Method);
        };
        let url = match Url::of_request(parts, &self.ignored_params) {
            Ok(url) => url,
            Err(bypass) => return Lookup::Bypass(bypass),
        };
        let extra = self.extra(parts);
        let mut last = None;
        for &probe_class in Config::classes(class) {
            let primary = self.primary_store_key(probe_class, &url);
            let record = local
                .get_object(&primary)
                .and_then(PrimaryRecord::from_local);
            let (mut probe, variant) = Probe::start(self, primary, record, &parts.headers, &extra);
            if let Some(variant) = variant {
                let entry = local
                    .get_object(&variant)
                    .and_then(|value| value.downcast::<Entry>().ok());
                probe = probe.finish(entry, &parts.headers, &extra);
            }
            if let Some(entry) = probe.hit {
                return Lookup::Hit(entry);
            }
            last = Some(probe);
        }
        match last {
            Some(probe) => Lookup::Miss(self.pending(class, probe, parts, extra)),
            None => Lookup::Bypass(Bypass::Method),
        }
    }

    /// Looks a request up in a remote store. A store error or an undecodable record is a miss.
    pub(crate) async fn lookup_remote(&self, parts: &Parts) -> Lookup {
        let Some(class) = class_of(&parts.method) else {
            return Lookup::Bypass(Bypass::Method);
        };
        let url = match Url::of_request(parts, &self.ignored_params) {
            Ok(url) => url,
            Err(bypass) => return Lookup::Bypass(bypass),
        };
        let extra = self.extra(parts);
        let mut last = None;
        for &probe_class in Config::classes(class) {
            let primary = self.primary_store_key(probe_class, &url);
            let record = self.read_remote(&primary).await;
            let (mut probe, variant) = Probe::start(self, primary, record, &parts.headers, &extra);
            if let Some(variant) = variant {
                let entry = self
                    .read_remote(&variant)
                    .await
                    .and_then(PrimaryRecord::into_entry);
                probe = probe.finish(entry, &parts.headers, &extra);
            }
            if let Some(entry) = probe.hit {
                return Lookup::Hit(entry);
            }
            last = Some(probe);
        }
        match last {
            Some(probe) => Lookup::Miss(self.pending(class, probe, parts, extra)),
            None => Lookup::Bypass(Bypass::Method),
        }
    }

    async fn read_remote(&self, key: &str) -> Option<PrimaryRecord> {
        match self.cache.store().get(key).await {
            Ok(Some(bytes)) => {
                let record = PrimaryRecord::from_bytes(&bytes);
                if record.is_none() {
                    crate::log::undecodable(key, "not a stored page");
                }
                record
            }
            Ok(None) => None,
            Err(error) => {
                self.cache.note_store_error("get", key, &error);
                None
            }
        }
    }

    /// The response a hit sends: the stored one with its age, or a 304/412 when the request's
    /// preconditions decide it.
    pub(crate) fn hit_response<B>(&self, entry: &Entry, parts: &Parts) -> Response<CacheBody<B>> {
        let age = age_value(self.now(), entry.stored_at);
        let precondition = if has_preconditions(&parts.headers) {
            evaluate_preconditions(
                &parts.method,
                &parts.headers,
                entry.etag.as_ref(),
                entry.last_modified,
            )
        } else {
            Precondition::Proceed
        };
        let (status, mut headers, body) = match precondition {
            Precondition::Proceed => {
                let body = (parts.method != http::Method::HEAD).then(|| entry.body.clone());
                (entry.status, entry.headers.clone(), body)
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
        headers.insert(header::AGE, age);
        if self.cache_status_header && status != entry.status {
            headers.insert(CACHE_STATUS, HeaderValue::from_static("axum-cache; hit"));
        }
        let mut response = Response::new(CacheBody::cached(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response.extensions_mut().insert(CacheStatus::Hit);
        crate::log::page_outcome(CacheStatus::Hit);
        response
    }

    /// Applies the update step's verdict to the inner service's response.
    pub(crate) fn apply<B: Body>(
        self: &Arc<Config>,
        then: Option<Then>,
        response: Response<B>,
    ) -> Response<CacheBody<B>> {
        match then {
            Some(Then::Finish(pending)) => self.finish(pending, response),
            Some(Then::Bypass(bypass)) => self.bypass(response, bypass),
            Some(Then::Pass) | None => response.map(CacheBody::passthrough),
        }
    }

    /// Marks a response that was not looked up.
    pub(crate) fn bypass<B>(
        &self,
        response: Response<B>,
        reason: Bypass,
    ) -> Response<CacheBody<B>> {
        let mut response = response.map(CacheBody::passthrough);
        self.mark(&mut response, CacheStatus::Bypass(reason), MissKind::Uri);
        response
    }

    fn mark<B>(&self, response: &mut Response<B>, status: CacheStatus, miss: MissKind) {
        crate::log::page_outcome(status);
        if self.cache_status_header {
            response
                .headers_mut()
                .insert(CACHE_STATUS, cache_status_value(status, miss));
        }
        response.extensions_mut().insert(status);
    }

    /// The update step: decides whether the inner service's response is stored, patches its
    /// headers as Django does, and records its body on the way to the client.
    pub(crate) fn finish<B>(
        self: &Arc<Config>,
        pending: Pending,
        response: Response<B>,
    ) -> Response<CacheBody<B>>
    where
        B: Body,
    {
        let (mut parts, body) = response.into_parts();
        let miss = pending.miss;
        let decision = self.decide(&pending, &mut parts.headers, parts.status, &body);
        let (status, body) = match decision {
            Decision::Skip(reason) => (CacheStatus::Miss(reason), CacheBody::passthrough(body)),
            Decision::Store(ttl) if pending.class == Class::Head => {
                // A HEAD response has no body worth waiting for (axum drops it outside this
                // layer), so its headers are stored at once, with the length the body would
                // have had.
                let mut headers = parts.headers.clone();
                if let Some(length) = body.size_hint().exact() {
                    headers
                        .entry(header::CONTENT_LENGTH)
                        .or_insert_with(|| HeaderValue::from(length));
                }
                self.commit(
                    pending,
                    parts.status,
                    headers,
                    Bytes::new(),
                    ttl,
                    self.now(),
                );
                (CacheStatus::Stored, CacheBody::passthrough(body))
            }
            Decision::Store(ttl) => {
                let config = Arc::clone(self);
                let status = parts.status;
                let headers = parts.headers.clone();
                let stored_at = self.now();
                let recorder = Recorder::new(self.max_body_size, move |body| {
                    config.commit(pending, status, headers, body, ttl, stored_at);
                });
                (CacheStatus::Stored, CacheBody::recording(body, recorder))
            }
        };
        let mut response = Response::from_parts(parts, body);
        self.mark(&mut response, status, miss);
        response
    }
}

/// The outcome of the storage decision.
enum Decision {
    Store(Duration),
    Skip(NotStored),
}

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

impl Config {
    /// Django's `UpdateCacheMiddleware` decision (spec A.5) with the fixes of part C: directives
    /// parsed rather than substring-matched, `s-maxage` honoured, `Set-Cookie` not stored by
    /// default, and `Expires` kept consistent with `max-age`.
    fn decide<B: Body>(
        &self,
        pending: &Pending,
        headers: &mut HeaderMap,
        status: StatusCode,
        body: &B,
    ) -> Decision {
        let storable_status = self.statuses.contains(&status);
        if !storable_status && status != StatusCode::NOT_MODIFIED {
            return Decision::Skip(NotStored::Status);
        }
        if is_event_stream(headers) {
            return Decision::Skip(NotStored::EventStream);
        }
        if body.size_hint().lower() > self.max_body_size as u64 {
            return Decision::Skip(NotStored::TooLarge);
        }
        let vary = vary(headers);
        if headers.contains_key(header::SET_COOKIE) {
            let varies_on_cookie =
                matches!(&vary, Vary::Names(names) if names.contains(&header::COOKIE));
            if varies_on_cookie || !self.store_set_cookie {
                return Decision::Skip(NotStored::SetCookie);
            }
        }
        let cache_control = CacheControl::from_headers(headers);
        if cache_control.is_private() || cache_control.is_no_cache() || cache_control.is_no_store()
        {
            return Decision::Skip(NotStored::CacheControl);
        }
        if vary == Vary::Any {
            return Decision::Skip(NotStored::VaryStar);
        }
        let origin_max_age = cache_control.s_maxage().or_else(|| cache_control.max_age());
        let timeout = match (self.page_timeout, origin_max_age) {
            (Some(page_timeout), _) => page_timeout,
            (None, Some(max_age)) if max_age.is_zero() => {
                return Decision::Skip(NotStored::ZeroTimeout);
            }
            (None, Some(max_age)) => max_age,
            (None, None) => self.cache_timeout,
        };
        // Expires and max-age tell clients the same lifetime: the shorter of the timeout and any
        // max-age the response already had (Django's C.8 inconsistency fixed).
        let client_max_age = cache_control
            .max_age()
            .map_or(timeout, |max_age| max_age.min(timeout));
        patch_response_headers(headers, client_max_age, self.now());
        let has_authorization = request_value(&pending.headers, &header::AUTHORIZATION)
            .is_some_and(|value| !value.is_empty());
        if has_authorization && !cache_control.is_public() {
            patch_vary_headers(headers, ["Authorization"]);
        }
        if timeout.is_zero() {
            Decision::Skip(NotStored::ZeroTimeout)
        } else if !storable_status {
            Decision::Skip(NotStored::Status)
        } else {
            Decision::Store(timeout)
        }
    }

    /// Stores a response whose body ended cleanly: as the URL's only entry when nothing varies,
    /// otherwise as one variant under the URL's variant list (extended with this response's
    /// `Vary` names).
    fn commit(
        &self,
        pending: Pending,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
        ttl: Duration,
        stored_at: SystemTime,
    ) {
        prepare_stored_headers(
            &mut headers,
            pending.class,
            body.len(),
            self.cache_status_header,
        );
        let names = match vary(&headers) {
            Vary::Names(names) => names,
            Vary::Any => return,
        };
        let authorization = request_value(&pending.headers, &header::AUTHORIZATION);
        let direct = names.is_empty()
            && self.key_part.is_none()
            && !matches!(pending.found, Found::Variants(_));
        if direct {
            let entry = Entry::new(
                status,
                headers,
                body,
                stored_at,
                pending.extra,
                authorization,
                Vec::new(),
            );
            self.write(vec![(pending.primary, Record::Entry(Box::new(entry)), ttl)]);
            return;
        }
        let found = match pending.found {
            Found::Variants(variants) => Some(variants),
            Found::Nothing | Found::Entry => None,
        };
        let mut union: Vec<HeaderName> = found
            .as_ref()
            .map_or_else(Vec::new, |found| found.names.clone());
        union.extend(names);
        union.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        union.dedup();
        let lives_until = stored_at.checked_add(ttl).unwrap_or(stored_at);
        let variants = Variants {
            generation: found
                .as_ref()
                .map_or_else(new_generation, |found| found.generation),
            expires_at: found
                .as_ref()
                .map_or(lives_until, |found| found.expires_at.max(lives_until)),
            names: union,
        };
        let variant = self.variant_store_key(
            &pending.primary,
            variants.generation,
            &pending.extra,
            &variants.names,
            &pending.headers,
        );
        let vary_values = variants
            .names
            .iter()
            .map(|name| (name.clone(), request_value(&pending.headers, name)))
            .collect();
        let entry = Entry::new(
            status,
            headers,
            body,
            stored_at,
            pending.extra,
            authorization,
            vary_values,
        );
        let mut writes = Vec::with_capacity(2);
        if found.as_ref() != Some(&variants) {
            let list_ttl = variants
                .expires_at
                .duration_since(stored_at)
                .unwrap_or(ttl)
                .max(ttl);
            writes.push((pending.primary, Record::Variants(variants), list_ttl));
        }
        writes.push((variant, Record::Entry(Box::new(entry)), ttl));
        self.write(writes);
    }

    /// Writes records: at once into an in-process store, in a background task into a remote
    /// one. Failures are counted and logged, never raised.
    fn write(&self, writes: Vec<(String, Record, Duration)>) {
        for (key, _, ttl) in &writes {
            crate::log::page_stored(key, *ttl);
        }
        if let Some(local) = self.local() {
            for (key, record, ttl) in writes {
                let (object, size): (LocalValue, usize) = match record {
                    Record::Entry(entry) => {
                        let size = entry.size();
                        (Arc::<Entry>::from(entry), size)
                    }
                    Record::Variants(variants) => {
                        let size = variants.size();
                        (Arc::new(variants), size)
                    }
                };
                if let Err(error) = local.set_object(&key, object, size, Some(ttl)) {
                    self.cache.note_store_error("set", &key, &error);
                }
            }
            return;
        }
        let encoded: Vec<(String, Bytes, Ttl)> = writes
            .into_iter()
            .map(|(key, record, ttl)| (key, entry::encode(&record), Some(ttl)))
            .collect();
        let cache = self.cache.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            crate::log::no_runtime();
            return;
        };
        runtime.spawn(async move {
            for (key, bytes, ttl) in encoded {
                if let Err(error) = cache.store().set(&key, bytes, ttl).await {
                    cache.note_store_error("set", &key, &error);
                    return;
                }
            }
        });
    }
}

/// Hop-by-hop headers, which describe one connection and must not be replayed.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

/// Turns the response's headers into the ones every hit sends.
fn prepare_stored_headers(
    headers: &mut HeaderMap,
    class: Class,
    body_len: usize,
    cache_status: bool,
) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    // A placeholder, so that a hit replaces the value in place instead of growing the map.
    headers.insert(header::AGE, HeaderValue::from_static("0"));
    if class == Class::Get {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    }
    if cache_status {
        headers.insert(CACHE_STATUS, HeaderValue::from_static("axum-cache; hit"));
    } else {
        headers.remove(CACHE_STATUS);
    }
}

/// Whether a request carries a precondition: one pass over its header names, cheaper than four
/// lookups when (as on most requests) there is none.
fn has_preconditions(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        name == header::IF_NONE_MATCH
            || name == header::IF_MODIFIED_SINCE
            || name == header::IF_MATCH
            || name == header::IF_UNMODIFIED_SINCE
    })
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// A fresh generation for a new variant list: unique within the process and, through the
/// randomly seeded hash, across processes sharing a store.
fn new_generation() -> u64 {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    SEED.get_or_init(RandomState::new).hash_one(count)
}

/// The `Age` value for an entry stored at `stored_at`, in whole seconds. Ages below ten minutes
/// come from a table, so a hit does not allocate for them.
fn age_value(now: SystemTime, stored_at: SystemTime) -> HeaderValue {
    const TABLE: u64 = 600;
    static AGES: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let age = now.duration_since(stored_at).map_or(0, |age| age.as_secs());
    let table = AGES.get_or_init(|| (0..TABLE).map(HeaderValue::from).collect());
    usize::try_from(age)
        .ok()
        .and_then(|index| table.get(index))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(age))
}
