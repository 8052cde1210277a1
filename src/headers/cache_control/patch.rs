//! Django's patch functions over `Cache-Control`: merging directives into a response, and the
//! `Expires` and `max-age` of a cache timeout or of "never cache".

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{CACHE_CONTROL, EXPIRES};

use super::{CacheControl, delta_seconds, field_names, lists_field_names};
use crate::headers::{fmt_http_date, header_value, latest_http_date};

impl CacheControl {
    fn remove(&mut self, name: &str) {
        self.directives.retain(|directive| directive.name != name);
    }

    /// Merges one occurrence of a field-list directive, bare or with its argument.
    fn merge_fields(&mut self, name: &str, argument: Option<&str>) {
        self.add_fields(name, argument.and_then(field_names));
    }

    /// Keeps the smaller of the current and the new `max-age`; a malformed value on either side
    /// counts as absent, and when neither is valid the new one is written.
    fn merge_max_age(&mut self, argument: Option<String>) {
        let current = self.get("max-age").flatten().and_then(delta_seconds);
        let new = argument.as_deref().and_then(delta_seconds);
        let keep_current = match (current, new) {
            (Some(current), Some(new)) => current <= new,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !keep_current {
            self.set("max-age", argument);
        }
    }

    /// One occurrence per directive: the first one's argument and position, except that
    /// field-list directives gather their field names (a bare occurrence wins).
    fn normalised(&self) -> Self {
        let mut out = Self::new();
        for directive in &self.directives {
            if lists_field_names(&directive.name) {
                out.merge_fields(&directive.name, directive.value.as_deref());
            } else if !out.has(&directive.name) {
                out.directives.push(directive.clone());
            }
        }
        out
    }
}

/// Merges `directives` into the response's `Cache-Control`: Django's `patch_cache_control`, except
/// that a malformed current `max-age` counts as absent instead of failing the patch, and field
/// names come out in first-seen order rather than in the arbitrary order of a set.
///
/// - `max-age` keeps the smaller value; a malformed current value counts as absent, so the new one
///   is written.
/// - `public` removes a current `private`, and `private` a current `public`; both given in the one
///   `directives` are both kept.
/// - The field names of `no-cache` and `private` accumulate (each directive written once, as a
///   quoted list), and the bare form wins over field names, so a patch never narrows them.
/// - Any other directive replaces the current one in place; new ones are appended in order.
/// - The current header's repeated directives are collapsed (first occurrence kept), so the
///   output is one deterministic field line. It is written even when empty, as Django's
///   `cache_control()` writes `Cache-Control: ""`.
///
/// ```
/// use axum_cache::headers::{CacheControl, patch_cache_control};
/// use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
/// use std::time::Duration;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60, private"));
/// patch_cache_control(
///     &mut headers,
///     &CacheControl::new().with_max_age(Duration::from_secs(300)).with_public(),
/// );
/// assert_eq!(headers[CACHE_CONTROL], "max-age=60, public");
/// ```
pub fn patch_cache_control(headers: &mut HeaderMap, directives: &CacheControl) {
    let mut merged = CacheControl::from_headers(headers).normalised();
    let new = directives.normalised();
    if new.is_public() {
        merged.remove("private");
    }
    if new.is_private() {
        merged.remove("public");
    }
    for directive in new.directives {
        match directive.name.as_str() {
            "max-age" => merged.merge_max_age(directive.value),
            name if lists_field_names(name) => {
                merged.merge_fields(&directive.name, directive.value.as_deref());
            }
            _ => merged.set(&directive.name, directive.value),
        }
    }
    headers.insert(CACHE_CONTROL, merged.to_header_value());
}

/// Adds the headers that let clients cache a response for `timeout`: Django's
/// `patch_response_headers`.
///
/// `Expires` is set to `now + timeout` unless the response has one already (kept even when it is
/// in the past), and `max-age` is merged in with [`patch_cache_control`], so a smaller current
/// `max-age` wins. `Last-Modified` and `ETag` are not touched.
///
/// ```
/// use axum_cache::headers::patch_response_headers;
/// use http::HeaderMap;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_468_749_600);
/// let mut headers = HeaderMap::new();
/// patch_response_headers(&mut headers, Duration::from_secs(2), now);
/// assert_eq!(headers["expires"], "Sun, 17 Jul 2016 10:00:02 GMT");
/// assert_eq!(headers["cache-control"], "max-age=2");
/// ```
pub fn patch_response_headers(headers: &mut HeaderMap, timeout: Duration, now: SystemTime) {
    if !headers.contains_key(EXPIRES) {
        let expires = now.checked_add(timeout).unwrap_or_else(latest_http_date);
        headers.insert(EXPIRES, header_value(fmt_http_date(expires).into_bytes()));
    }
    patch_cache_control(headers, &CacheControl::new().with_max_age(timeout));
}

/// Marks a response as never to be cached: Django's `add_never_cache_headers`.
///
/// `Expires` becomes `now` unless already set, `max-age` becomes 0, and `no-cache`, `no-store`,
/// `must-revalidate` and `private` are added (removing `public`). On a response without those
/// headers the result is exactly
/// `Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private`.
///
/// ```
/// use axum_cache::headers::add_never_cache_headers;
/// use http::HeaderMap;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let mut headers = HeaderMap::new();
/// add_never_cache_headers(&mut headers, UNIX_EPOCH + Duration::from_secs(1_167_616_461));
/// assert_eq!(headers["expires"], "Mon, 01 Jan 2007 01:54:21 GMT");
/// assert_eq!(
///     headers["cache-control"],
///     "max-age=0, no-cache, no-store, must-revalidate, private"
/// );
/// ```
pub fn add_never_cache_headers(headers: &mut HeaderMap, now: SystemTime) {
    patch_response_headers(headers, Duration::ZERO, now);
    patch_cache_control(
        headers,
        &CacheControl::new()
            .with_no_cache()
            .with_no_store()
            .with_must_revalidate()
            .with_private(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn patched(initial: Option<&str>, directives: &CacheControl) -> String {
        let mut headers = HeaderMap::new();
        if let Some(initial) = initial {
            headers.insert(CACHE_CONTROL, HeaderValue::from_str(initial).unwrap());
        }
        patch_cache_control(&mut headers, directives);
        assert_eq!(headers.get_all(CACHE_CONTROL).iter().count(), 1);
        headers[CACHE_CONTROL].to_str().unwrap().to_owned()
    }

    #[test]
    fn max_age_keeps_the_minimum_and_survives_malformed_values() {
        let new = CacheControl::new().with_max_age(secs(30));
        assert_eq!(patched(Some("max-age=60"), &new), "max-age=30");
        assert_eq!(patched(Some("max-age=10"), &new), "max-age=10");
        assert_eq!(
            patched(Some("max-age=abc, public"), &new),
            "max-age=30, public"
        );
        assert_eq!(patched(Some("max-age"), &new), "max-age=30");
        let malformed = CacheControl::parse("max-age=abc");
        assert_eq!(patched(Some("max-age=10"), &malformed), "max-age=10");
        assert_eq!(patched(None, &malformed), "max-age=abc");
    }

    #[test]
    fn patching_never_narrows_private() {
        assert_eq!(
            patched(
                Some("private"),
                &CacheControl::new().with_private_field("X")
            ),
            "private"
        );
        assert_eq!(
            patched(
                Some(r#"private="A""#),
                &CacheControl::new().with_private_field("B")
            ),
            r#"private="A, B""#
        );
    }

    /// Field names are gathered in one pass: a list of many distinct names, as a hostile or
    /// broken upstream might send, costs time in proportion to its length, not its square.
    #[test]
    fn long_field_lists_are_read_and_patched_in_linear_time() {
        let names: Vec<String> = (0..40_000).map(|i| format!("x-{i}")).collect();
        let value = format!(
            "private=\"{}\", no-cache=\"{}\"",
            names.join(","),
            names.join(",")
        );
        let started = std::time::Instant::now();
        let cc = CacheControl::parse(&value);
        assert_eq!(cc.private_fields().len(), 40_000);
        let new = CacheControl::new()
            .with_no_cache_field("X-1")
            .with_private_field("y");
        let patched = patched(Some(&value), &new);
        assert_eq!(CacheControl::parse(&patched).private_fields().len(), 40_001);
        // Gathering names pairwise is quadratic and would not finish within the bound.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn repeated_current_directives_collapse_to_the_first() {
        assert_eq!(
            patched(
                Some("a=1, no-cache=X, a=2, no-cache=Y"),
                &CacheControl::new().with_extension("b", None)
            ),
            r#"a=1, no-cache="X, Y", b"#
        );
    }

    #[test]
    fn expires_is_kept_when_present() {
        let now = SystemTime::UNIX_EPOCH + secs(1_167_616_461);
        let mut headers = HeaderMap::new();
        headers.insert(EXPIRES, HeaderValue::from_static("tomorrow"));
        add_never_cache_headers(&mut headers, now);
        assert_eq!(headers[EXPIRES], "tomorrow");
    }

    #[test]
    fn an_overflowing_timeout_gives_the_latest_date() {
        let mut headers = HeaderMap::new();
        patch_response_headers(&mut headers, Duration::MAX, SystemTime::UNIX_EPOCH);
        assert_eq!(headers[EXPIRES], "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(headers[CACHE_CONTROL], "max-age=18446744073709551615");
    }
}
