//! The update step: whether a response is stored, for how long, and writing it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::Body;

use super::body::Recorder;
use super::entry::{Entry, Lifetime, Record, Variants};
use super::key::{Class, RequestValues, request_value};
use super::lookup::{Hit, request_validators};
use super::status::{CACHE_STATUS, Member};
use super::write::Waiting;
use super::{
    CACHE_TAG, CacheBody, CacheStatus, CacheTags, Config, NotStored, Pending, Stale, Verdict,
};
use crate::headers::{CacheControl, Vary, patch_response_headers, patch_vary_headers, vary};
use crate::stampede::jittered;
use crate::util::random_u64;

/// The outcome of the storage decision.
enum Decision {
    Store(Lifetime),
    Skip(NotStored),
}

impl Config {
    /// Applies the update step's verdict to the inner service's response.
    pub(crate) fn apply<B: Body>(
        self: &Arc<Config>,
        verdict: Option<Verdict>,
        response: Response<B>,
    ) -> Response<CacheBody<B>> {
        match verdict {
            Some(Verdict::Finish(pending)) => match pending.stale_instead(&response) {
                Some(entry) => self.stale_if_error(entry, &pending, Some(response.status())),
                None => self.finish(pending, response),
            },
            Some(Verdict::Bypass(bypass)) => self.bypass(response, bypass),
            // Without the fetch half's verdict (it did not run for this route), nothing is
            // stored, but the tags header is still the handler's note to the cache alone.
            Some(Verdict::Pass) | None => {
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
            conditional: request_validators(&pending.headers).unwrap_or_default(),
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
    pub(crate) fn recover<B>(&self, verdict: Option<Verdict>) -> Option<Response<CacheBody<B>>> {
        match verdict {
            Some(Verdict::Finish(pending)) => {
                let entry = Arc::clone(pending.stale.as_ref()?);
                Some(self.stale_if_error(entry, &pending, None))
            }
            _ => None,
        }
    }

    /// The update step: decides whether the inner service's response is stored, patches its
    /// headers as Django does, and records its body on the way to the client.
    pub(crate) fn finish<B>(
        self: &Arc<Config>,
        mut pending: Box<Pending>,
        response: Response<B>,
    ) -> Response<CacheBody<B>>
    where
        B: Body,
    {
        let (mut parts, body) = response.into_parts();
        let tags = take_tags(&mut parts);
        let miss = pending.miss;
        let decision = self.decide(&pending, &mut parts.headers, parts.status, &body);
        let (status, body) = match decision {
            Decision::Skip(reason) => {
                let waiting = Waiting::take(&mut pending);
                if answers_this_request_only(reason, parts.status, &pending.headers) {
                    // Says nothing about the other requests for the page: its waiters look
                    // again (one of them asks the origin for itself and the rest), and the
                    // page keeps coalescing.
                    drop(waiting);
                } else {
                    waiting.done(false, self.pass_timeout);
                }
                (CacheStatus::Miss(reason), CacheBody::passthrough(body))
            }
            Decision::Store(lifetime) if pending.class == Class::Head => {
                // A HEAD response has no body worth waiting for (axum drops it outside this
                // layer), so its headers are stored at once, with the length the body would
                // have had.
                let mut headers = parts.headers.clone();
                if let Some(length) = body.size_hint().exact() {
                    headers
                        .entry(header::CONTENT_LENGTH)
                        .or_insert_with(|| HeaderValue::from(length));
                }
                let head = Head {
                    status: parts.status,
                    headers,
                    tags,
                };
                self.commit(pending, head, Bytes::new(), lifetime, self.now());
                (CacheStatus::Stored, CacheBody::passthrough(body))
            }
            Decision::Store(lifetime) => {
                let config = Arc::clone(self);
                let head = Head {
                    status: parts.status,
                    headers: parts.headers.clone(),
                    tags,
                };
                let stored_at = self.now();
                let recorder = Recorder::new(self.max_body_size, move |body| {
                    config.commit(pending, head, body, lifetime, stored_at);
                });
                (CacheStatus::Stored, CacheBody::recording(body, recorder))
            }
        };
        let mut response = Response::from_parts(parts, body);
        self.mark(&mut response, status, miss);
        response
    }

    /// Django's `UpdateCacheMiddleware` decision with its known bugs fixed: directives parsed
    /// rather than substring-matched, `s-maxage` honoured, `Set-Cookie` not stored by
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
        // max-age the response already had (Django lets the two disagree).
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
            return Decision::Skip(NotStored::ZeroTimeout);
        }
        if !storable_status {
            return Decision::Skip(NotStored::Status);
        }
        let (stale_while_revalidate, stale_if_error) = if forbids_stale(&cache_control) {
            // Never served stale by a window of ours, nor by its own `stale-while-revalidate`;
            // only its own `stale-if-error` may still stand in for an origin that fails.
            (
                Duration::ZERO,
                cache_control.stale_if_error().unwrap_or_default(),
            )
        } else {
            self.stale_windows(
                cache_control.stale_while_revalidate(),
                cache_control.stale_if_error(),
            )
        };
        Decision::Store(Lifetime {
            fresh: jittered(timeout, self.jitter),
            stale_while_revalidate,
            stale_if_error,
        })
    }

    /// Stores a response whose body ended cleanly: as the URL's only entry when nothing varies,
    /// otherwise as one variant under the URL's variant list (extended with this response's
    /// `Vary` names).
    fn commit(
        &self,
        pending: Box<Pending>,
        head: Head,
        body: Bytes,
        lifetime: Lifetime,
        stored_at: SystemTime,
    ) {
        let Head {
            status,
            mut headers,
            tags,
        } = head;
        let mut pending = *pending;
        let waiting = Waiting::take(&mut pending);
        prepare_stored_headers(
            &mut headers,
            pending.class,
            body.len(),
            self.cache_status_header.then_some(&*self.cache_status_name),
        );
        let Vary::Names(names) = vary(&headers) else {
            waiting.done(false, self.pass_timeout);
            return;
        };
        let mut request = RequestValues::new(&pending.headers, self.cache.digester());
        let authorization = request.digest(&header::AUTHORIZATION);
        let (etag, last_modified) = Entry::validators(&headers);
        let mut entry = Entry {
            status,
            headers,
            body,
            stored_at,
            lifetime,
            started_micros: pending.started_micros,
            tags,
            extra: pending.extra,
            authorization,
            vary: Vec::new(),
            etag,
            last_modified,
        };
        let kept = lifetime.kept();
        let direct = names.is_empty()
            && self.key_part.is_none()
            && !matches!(pending.found, Some(Record::Variants(_)));
        if direct {
            self.write(
                &pending.path,
                &pending.span,
                vec![(pending.primary, Record::Entry(Arc::new(entry)), kept)],
                waiting,
            );
            return;
        }
        let found = match pending.found {
            Some(Record::Variants(variants)) => Some(variants),
            Some(Record::Entry(_)) | None => None,
        };
        let mut union: Vec<HeaderName> = found
            .as_ref()
            .map_or_else(Vec::new, |found| found.names.clone());
        union.extend(names);
        union.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        union.dedup();
        let lives_until = stored_at.checked_add(kept).unwrap_or(stored_at);
        let variants = Variants {
            generation: found
                .as_ref()
                .map_or_else(random_u64, |found| found.generation),
            expires_at: found
                .as_ref()
                .map_or(lives_until, |found| found.expires_at.max(lives_until)),
            names: union,
        };
        let variant = self.variant_store_key(
            &pending.primary,
            variants.generation,
            &entry.extra,
            &variants.names,
            &mut request,
        );
        entry.vary = variants
            .names
            .iter()
            .map(|name| (name.clone(), request.digest(name)))
            .collect();
        let mut writes = Vec::with_capacity(2);
        if found.as_ref() != Some(&variants) {
            let list_ttl = variants
                .expires_at
                .duration_since(stored_at)
                .unwrap_or(kept)
                .max(kept);
            writes.push((pending.primary, Record::Variants(variants), list_ttl));
        }
        writes.push((variant, Record::Entry(Arc::new(entry)), kept));
        self.write(&pending.path, &pending.span, writes, waiting);
    }
}

/// Whether a response forbids being served once stale: `must-revalidate`, `proxy-revalidate`
/// (which binds shared caches such as this one) or `no-cache` (stored only through settings
/// that allow it, and then never reused without the origin).
fn forbids_stale(cache_control: &CacheControl) -> bool {
    cache_control.must_revalidate()
        || cache_control.proxy_revalidate()
        || cache_control.is_no_cache()
}

/// Whether a response is not storable because of what this one request asked or carried, not
/// because of the page: a `304` or `412` (the answer to the client's validators), a `206` (to
/// its range), a response setting a cookie (usually this client's session), or a response
/// marked `private`, `no-cache` or `no-store` to a request with credentials (`Authorization`
/// or `Cookie`). Only other verdicts, which would hold for every request, mark the page as not
/// storable for everyone.
fn answers_this_request_only(reason: NotStored, status: StatusCode, request: &HeaderMap) -> bool {
    match reason {
        NotStored::Status => matches!(
            status,
            StatusCode::NOT_MODIFIED
                | StatusCode::PRECONDITION_FAILED
                | StatusCode::PARTIAL_CONTENT
        ),
        NotStored::SetCookie => true,
        NotStored::CacheControl => {
            request.contains_key(header::AUTHORIZATION) || request.contains_key(header::COOKIE)
        }
        _ => false,
    }
}

/// What is stored of a response besides its body.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    tags: Vec<String>,
}

/// The tags a handler gave its response (the [`CacheTags`] extension and the `Cache-Tag`
/// header), removing the header so that it does not reach the client.
pub(crate) fn take_tags(parts: &mut http::response::Parts) -> Vec<String> {
    let mut tags: Vec<String> = parts
        .extensions
        .get::<CacheTags>()
        .map(|tags| tags.tags().to_vec())
        .unwrap_or_default();
    for value in parts.headers.get_all(&CACHE_TAG) {
        let listed = String::from_utf8_lossy(value.as_bytes()).into_owned();
        tags.extend(
            listed
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned),
        );
    }
    parts.headers.remove(&CACHE_TAG);
    tags.sort();
    tags.dedup();
    tags
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
    cache_status: Option<&str>,
) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    // A placeholder, so that a hit replaces the value in place instead of growing the map.
    headers.insert(header::AGE, HeaderValue::from_static("0"));
    if class == Class::Get {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    }
    // Whatever caches nearer the origin said about the request that stored the page says
    // nothing about later hits: only this cache's member (written per hit) is kept.
    headers.remove(CACHE_STATUS);
    // A placeholder for this cache's member, which a hit replaces in place.
    if let Some(name) = cache_status
        && let Ok(value) = HeaderValue::from_str(&format!("{name}; hit"))
    {
        headers.insert(CACHE_STATUS, value);
    }
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
