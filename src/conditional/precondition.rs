//! Evaluating the preconditions of a request (RFC 9110) against the current validators.

use std::time::SystemTime;

use http::header::{
    CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, IF_MATCH, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED, SET_COOKIE, VARY,
};
use http::{HeaderMap, HeaderName, Method};

use super::etag::{EntityTag, EntityTagList, parse_etag_list};
use crate::headers::{parse_http_date, unix_seconds};

/// What to answer a conditional request with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precondition {
    /// No condition stops the request: handle it as usual.
    Proceed,
    /// `304 Not Modified`: the client's copy is current (GET and HEAD only).
    NotModified,
    /// `412 Precondition Failed`.
    PreconditionFailed,
}

/// Evaluates the request's `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` against the resource's current `etag` and `last_modified`: Django's
/// `get_conditional_response`, in the order HTTP prescribes:
///
/// 1. `If-Match` fails unless there is a current ETag and the list is `*` or holds it under
///    strong comparison: [`Precondition::PreconditionFailed`], whatever the method.
/// 2. Only without `If-Match`: a valid `If-Unmodified-Since` fails unless `last_modified` is known
///    and not later; no `last_modified` means it fails.
/// 3. `If-None-Match` matches when there is a current ETag and the list is `*` or holds it under
///    weak comparison: [`Precondition::NotModified`] for GET and HEAD,
///    [`Precondition::PreconditionFailed`] for other methods.
/// 4. Only without `If-None-Match` and only for GET and HEAD: a valid `If-Modified-Since` gives
///    [`Precondition::NotModified`] when `last_modified` is known and not later.
///
/// Lists with no valid entity tag and invalid dates count as absent. Times are compared in whole
/// seconds, since HTTP dates have no finer precision. The caller decides when to evaluate: Django
/// leaves non-2xx responses alone.
///
/// ```
/// use axum_cache::conditional::{EntityTag, Precondition, evaluate_preconditions};
/// use http::{HeaderMap, HeaderValue, Method, header::IF_NONE_MATCH};
///
/// let etag = EntityTag::strong("v7").unwrap();
/// let mut request = HeaderMap::new();
/// request.insert(IF_NONE_MATCH, HeaderValue::from_static(r#"W/"v6", W/"v7""#));
/// assert_eq!(
///     evaluate_preconditions(&Method::GET, &request, Some(&etag), None),
///     Precondition::NotModified
/// );
/// assert_eq!(
///     evaluate_preconditions(&Method::PUT, &request, Some(&etag), None),
///     Precondition::PreconditionFailed
/// );
/// ```
pub fn evaluate_preconditions(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&EntityTag>,
    last_modified: Option<SystemTime>,
) -> Precondition {
    evaluate(method, request, etag, last_modified, etag.is_some())
}

/// [`evaluate_preconditions`] for a representation known to exist, such as a stored response
/// the cache is about to serve: `*` in `If-Match` or `If-None-Match` then matches whether or not
/// the response has an ETag.
pub(crate) fn evaluate_for_existing(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&EntityTag>,
    last_modified: Option<SystemTime>,
) -> Precondition {
    evaluate(method, request, etag, last_modified, true)
}

/// The evaluation; `exists` says whether a current representation exists, which is all `*`
/// asks.
fn evaluate(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&EntityTag>,
    last_modified: Option<SystemTime>,
    exists: bool,
) -> Precondition {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    let last_modified = last_modified.map(unix_seconds);
    // Whether the resource has not changed since the date in `header`; `None` without a date.
    let unmodified_since = |header: HeaderName| {
        let since = unix_seconds(request_date(request, header)?);
        Some(last_modified.is_some_and(|modified| modified <= since))
    };

    let any = |list: &EntityTagList| matches!(list, EntityTagList::Any) && exists;
    match parse_etag_list(request, IF_MATCH) {
        Some(list) if !(any(&list) || list.matches_strong(etag)) => {
            return Precondition::PreconditionFailed;
        }
        Some(_) => {}
        None if unmodified_since(IF_UNMODIFIED_SINCE) == Some(false) => {
            return Precondition::PreconditionFailed;
        }
        None => {}
    }
    match parse_etag_list(request, IF_NONE_MATCH) {
        Some(list) if any(&list) || list.matches_weak(etag) => {
            if get_or_head {
                Precondition::NotModified
            } else {
                Precondition::PreconditionFailed
            }
        }
        Some(_) => Precondition::Proceed,
        None if get_or_head && unmodified_since(IF_MODIFIED_SINCE) == Some(true) => {
            Precondition::NotModified
        }
        None => Precondition::Proceed,
    }
}

/// The date in a request header with exactly one field line; `None` when absent, repeated or
/// invalid.
fn request_date(request: &HeaderMap, name: HeaderName) -> Option<SystemTime> {
    let mut lines = request.get_all(name).into_iter();
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    parse_http_date(line.to_str().ok()?)
}

/// The headers a `304 Not Modified` keeps from the response it stands for: Django's list, those
/// HTTP requires a `304` to carry plus `Last-Modified` and `Set-Cookie`.
const NOT_MODIFIED_HEADERS: [HeaderName; 8] = [
    CACHE_CONTROL,
    CONTENT_LOCATION,
    DATE,
    ETAG,
    EXPIRES,
    LAST_MODIFIED,
    VARY,
    SET_COOKIE,
];

/// The headers of a `304 Not Modified` answering for a response with headers `original`:
/// `Cache-Control`, `Content-Location`, `Date`, `ETag`, `Expires`, `Last-Modified`, `Vary` and
/// every `Set-Cookie`, each with all its field lines. Everything else (`Content-Type`,
/// `Content-Language`, `Content-Length`, …) is left out.
///
/// ```
/// use axum_cache::conditional::not_modified_headers;
/// use http::{HeaderMap, HeaderValue, header};
///
/// let mut original = HeaderMap::new();
/// original.insert(header::ETAG, HeaderValue::from_static(r#""spam""#));
/// original.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static("en"));
/// let kept = not_modified_headers(&original);
/// assert_eq!(kept[header::ETAG], r#""spam""#);
/// assert!(!kept.contains_key(header::CONTENT_LANGUAGE));
/// ```
pub fn not_modified_headers(original: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in NOT_MODIFIED_HEADERS {
        for value in original.get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::{Duration, UNIX_EPOCH};

    fn request(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    const LM: &str = "Sun, 21 Oct 2007 23:21:47 GMT";

    fn lm() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_193_008_907)
    }

    #[test]
    fn times_compare_in_whole_seconds() {
        let later_in_the_same_second = lm() + Duration::from_millis(999);
        let ims = request(&[(IF_MODIFIED_SINCE, LM)]);
        assert_eq!(
            evaluate_preconditions(&Method::GET, &ims, None, Some(later_in_the_same_second)),
            Precondition::NotModified
        );
        let ius = request(&[(IF_UNMODIFIED_SINCE, LM)]);
        assert_eq!(
            evaluate_preconditions(&Method::PUT, &ius, None, Some(later_in_the_same_second)),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate_preconditions(
                &Method::PUT,
                &ius,
                None,
                Some(lm() + Duration::from_secs(1))
            ),
            Precondition::PreconditionFailed
        );
    }

    #[test]
    fn repeated_or_undecodable_dates_are_ignored() {
        let repeated = request(&[(IF_UNMODIFIED_SINCE, LM), (IF_UNMODIFIED_SINCE, LM)]);
        assert_eq!(
            evaluate_preconditions(&Method::PUT, &repeated, None, None),
            Precondition::Proceed
        );
        let mut odd = HeaderMap::new();
        odd.insert(
            IF_UNMODIFIED_SINCE,
            HeaderValue::from_bytes(b"Sun, 21 Oct 2007 23:21:47 GMT\xff").unwrap(),
        );
        assert_eq!(
            evaluate_preconditions(&Method::PUT, &odd, None, None),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_modified_since_is_only_for_get_and_head() {
        let ims = request(&[(IF_MODIFIED_SINCE, LM)]);
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert_eq!(
                evaluate_preconditions(&method, &ims, None, Some(lm())),
                Precondition::Proceed,
                "{method}"
            );
        }
        assert_eq!(
            evaluate_preconditions(&Method::HEAD, &ims, None, Some(lm())),
            Precondition::NotModified
        );
    }

    #[test]
    fn not_modified_keeps_every_line_of_the_listed_headers() {
        let original = request(&[
            (SET_COOKIE, "a=1"),
            (SET_COOKIE, "b=2"),
            (VARY, "Cookie"),
            (VARY, "Accept"),
            (http::header::CONTENT_TYPE, "text/html"),
            (http::header::CONTENT_LENGTH, "12"),
        ]);
        let kept = not_modified_headers(&original);
        assert_eq!(kept.len(), 4);
        assert_eq!(
            kept.get_all(SET_COOKIE).iter().collect::<Vec<_>>(),
            ["a=1", "b=2"]
        );
        assert_eq!(
            kept.get_all(VARY).iter().collect::<Vec<_>>(),
            ["Cookie", "Accept"]
        );
    }
}
