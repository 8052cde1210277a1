//! Response headers that steer caches: `Cache-Control` and `Vary`.
//!
//! These are the parsers and the patch functions that Django's `django.utils.cache` offers,
//! rewritten over [`http`] types and stricter than Django's: directives are parsed, not matched
//! by substring; names are case-insensitive; malformed values never panic and are treated as
//! absent; the output is deterministic.
//!
//! | You want to… | Use | Django counterpart |
//! |---|---|---|
//! | read the directives of a response or request | [`CacheControl::from_headers`], [`CacheControl::parse`] | `get_max_age`, substring checks |
//! | build a `Cache-Control` value | [`CacheControl::new`] and its `with_*` builders | `cache_control(**kwargs)` |
//! | merge directives into a response | [`patch_cache_control`] | `patch_cache_control` |
//! | add `Expires` and `max-age` for a cache timeout | [`patch_response_headers`] | `patch_response_headers` |
//! | forbid caching | [`add_never_cache_headers`] | `add_never_cache_headers`, `@never_cache` |
//! | read the `Vary` list | [`vary`], [`has_vary_header`] | `has_vary_header` |
//! | add names to `Vary` | [`patch_vary_headers`] | `patch_vary_headers` |
//!
//! The layers apply them to every response of the service they wrap:
//!
//! | You want to… | Use | Django counterpart |
//! |---|---|---|
//! | set `Cache-Control` directives on a route or router | [`cache_control`] | `@cache_control` |
//! | forbid caching | [`never_cache`] | `@never_cache` |
//! | declare which request headers select the response | [`vary_on_headers`], [`vary_on_cookie`] | `@vary_on_headers`, `@vary_on_cookie` |
//!
//! See the [client-side caching chapter](crate::docs::headers) for a guided tour.

use bytes::Bytes;
use http::HeaderValue;

mod cache_control;
mod date;
mod layer;
mod vary;

pub use cache_control::{
    CacheControl, add_never_cache_headers, patch_cache_control, patch_response_headers,
};
pub use date::{fmt_http_date, parse_http_date, parse_http_date_at};
pub(crate) use date::{latest_http_date, unix_seconds};
pub use layer::{
    CacheControlLayer, CacheControlService, HeaderFuture, InvalidVaryName, NeverCacheLayer,
    NeverCacheService, VaryLayer, VaryService, cache_control, never_cache, vary_on_cookie,
    vary_on_headers,
};
pub use vary::{Vary, has_vary_header, patch_vary_headers, vary};

/// Whether `byte` is a `tchar`, a character of a token: a letter, a digit or one of
/// ``!#$%&'*+-.^_`|~``.
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Whether `text` is a token: one or more `tchar`.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_tchar)
}

/// Optional whitespace (spaces and tabs) around list items and values.
pub(crate) fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Whether a header value may hold `byte` (what [`HeaderValue::from_bytes`] accepts).
fn is_header_value_byte(byte: u8) -> bool {
    (byte >= 0x20 && byte != 0x7f) || byte == b'\t'
}

/// A header value from `bytes`, dropping any byte a header value cannot hold. Callers pass bytes
/// they have already validated, so nothing is dropped in practice; the filter makes the
/// conversion total, so building a header never fails and never panics.
pub(crate) fn header_value(mut bytes: Vec<u8>) -> HeaderValue {
    bytes.retain(|&byte| is_header_value_byte(byte));
    HeaderValue::from_maybe_shared(Bytes::from(bytes))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Splits a comma-separated header list into its items, untrimmed, keeping commas inside
/// double-quoted strings. With `backslash_escapes`, a backslash inside quotes escapes the next
/// character (as in HTTP's `quoted-string`); entity tags have no escapes.
///
/// A quote left open at the end of `text` is malformed: the text from the start of that item on
/// is split at every comma instead, so an unbalanced quote cannot hide the items after it.
pub(crate) fn split_list(text: &str, backslash_escapes: bool) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes && backslash_escapes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == ',' && !in_quotes {
            items.push(text.get(start..index).unwrap_or_default());
            start = index + 1;
        }
    }
    let rest = text.get(start..).unwrap_or_default();
    if in_quotes {
        items.extend(rest.split(','));
    } else {
        items.push(rest);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_tchar_only() {
        assert!(is_token("max-age"));
        assert!(is_token("x!#$%&'*+-.^_`|~9"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a\"b"));
        assert!(!is_token("é"));
        assert!(!is_token("a=b"));
    }

    #[test]
    fn lists_split_at_commas_outside_quotes() {
        assert_eq!(split_list("a, b,c", true), ["a", " b", "c"]);
        assert_eq!(split_list(r#"a="x, y", b"#, true), [r#"a="x, y""#, " b"]);
        assert_eq!(
            split_list(r#"a="x\", y", b"#, true),
            [r#"a="x\", y""#, " b"]
        );
        assert_eq!(split_list(r#""a\", "b""#, false), [r#""a\""#, r#" "b""#]);
        assert_eq!(split_list("", true), [""]);
    }

    #[test]
    fn an_open_quote_does_not_hide_later_items() {
        assert_eq!(
            split_list(r#"a, b="x, no-store"#, true),
            ["a", r#" b="x"#, " no-store"]
        );
        assert_eq!(split_list(r#"a="\"#, true), [r#"a="\"#]);
    }

    #[test]
    fn header_values_drop_bytes_they_cannot_hold() {
        assert_eq!(header_value(b"a\r\nb\x7f\tc".to_vec()), "ab\tc");
        assert_eq!(
            header_value("é".as_bytes().to_vec()).as_bytes(),
            "é".as_bytes()
        );
    }
}
