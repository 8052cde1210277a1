//! The responses the cache gives: a stored page rebuilt for a hit (with its `Age`, and a `304`
//! or `412` where the request's preconditions decide), and the marks (the `CacheStatus`
//! extension, the `Cache-Status` header) on responses that come from the origin.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

use super::entry::Entry;
use super::lookup::Hit;
use super::status::{CACHE_STATUS, Member, MissKind, cache_status_value};
use super::{Bypass, CACHE_TAG, CacheBody, CacheStatus, Config};
use crate::conditional::{Precondition, evaluate_for_existing, not_modified_headers};

impl Config {
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
        self.outcome(status);
        response
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
    pub(super) fn mark<B>(&self, response: &mut Response<B>, status: CacheStatus, miss: MissKind) {
        self.outcome(status);
        if self.cache_status_header {
            let member = Member::forwarded(miss, response.status());
            let value = cache_status_value(&self.cache_status_name, status, member);
            response.headers_mut().append(CACHE_STATUS, value);
        }
        response.extensions_mut().insert(status);
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
