//! Page keys: the primary key names the URL, the variant key adds the request's values of the
//! headers the responses vary on.
//!
//! Every part whose content a client controls is either validated (the host), length-prefixed
//! and escaped (the path and query, extra key parts) or replaced by its digest (header values),
//! so two different requests never produce the same key and no header value (a session cookie,
//! a bearer token) ever appears in one. Keys are printable ASCII without spaces; the store key
//! built from them is hashed with SHA-256 only when a remote store could not hold it verbatim.

use std::borrow::Cow;
use std::fmt::Write;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::scheme::KeyScheme;
use super::status::Bypass;
use crate::key::{Digester, ValueDigest};
use crate::util::{push_decimal, push_hex};

/// Which stored responses may answer a request: `GET` entries answer `GET` and `HEAD`; entries
/// stored from a `HEAD` miss (headers only) answer `HEAD` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Get,
    Head,
}

impl Class {
    fn tag(self) -> char {
        match self {
            Class::Get => 'G',
            Class::Head => 'H',
        }
    }
}

/// The parts of a request's URL that name a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url<'a> {
    pub(super) scheme: &'a str,
    host: Cow<'a, str>,
    path_and_query: Cow<'a, str>,
}

impl<'a> Url<'a> {
    /// Bytes of the parts, for sizing a key.
    pub(crate) fn len(&self) -> usize {
        self.scheme.len() + self.host.len() + self.path_and_query.len()
    }

    /// The URL of a request: the scheme as `scheme` says, the authority from an absolute-form
    /// target or the `Host` header, with the named query parameters removed. `Err` when the
    /// host cannot be used,
    /// including several `Host` headers and a target whose authority disagrees with the
    /// `Host` header: the key would
    /// follow the one and a handler that reads `Host` the other, so an attacker could store
    /// a page rendered for their host under the victim's URL.
    pub(crate) fn of_request(
        parts: &'a Parts,
        ignored: &[String],
        scheme: &'a KeyScheme,
    ) -> Result<Url<'a>, Bypass> {
        let uri = &parts.uri;
        let scheme = scheme.of_request(&parts.headers);
        let mut hosts = parts.headers.get_all(http::header::HOST).iter();
        let host_header = match (hosts.next(), hosts.next()) {
            (Some(host), None) => Some(host.to_str().map_err(|_| Bypass::Host)?),
            (None, _) => None,
            // Which of several would the handler read? HTTP/1.1 calls such a request bad.
            (Some(_), Some(_)) => return Err(Bypass::Host),
        };
        let host = match (uri.authority(), host_header) {
            (Some(authority), Some(host)) if !authority.as_str().eq_ignore_ascii_case(host) => {
                return Err(Bypass::Host);
            }
            (Some(authority), _) => authority.as_str(),
            (None, host) => host.unwrap_or(""),
        };
        Url::new(scheme, host, requested_path_and_query(parts), ignored)
    }

    /// The URL of an absolute URI such as `https://example.com/a?b=c`, keyed as requests for
    /// it are.
    pub(crate) fn parse(
        uri: &'a http::Uri,
        ignored: &[String],
        scheme: &'a KeyScheme,
    ) -> Result<Url<'a>, Bypass> {
        let host = uri.authority().map_or("", |authority| authority.as_str());
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        Url::new(
            scheme.of_url(uri),
            host,
            Cow::Borrowed(path_and_query),
            ignored,
        )
    }

    fn new(
        scheme: &'a str,
        host: &'a str,
        path_and_query: Cow<'a, str>,
        ignored: &[String],
    ) -> Result<Url<'a>, Bypass> {
        let mut uppercase = false;
        for byte in host.bytes() {
            if !is_host_byte(byte) {
                return Err(Bypass::Host);
            }
            uppercase |= byte.is_ascii_uppercase();
        }
        let host = if uppercase {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let path_and_query = match path_and_query {
            Cow::Borrowed(path_and_query) => without_params(path_and_query, ignored),
            Cow::Owned(path_and_query) => match without_params(&path_and_query, ignored) {
                Cow::Borrowed(_) => Cow::Owned(path_and_query),
                Cow::Owned(kept) => Cow::Owned(kept),
            },
        };
        Ok(Url {
            scheme,
            host,
            path_and_query,
        })
    }
}

/// The path and query that name the page. Inside a router nested with axum's `Router::nest`,
/// the request's path has lost the nesting prefix (`/v1/users` reads `/users`), so two nested
/// routers would share keys. axum keeps the URI as received in its `OriginalUri` extension:
/// when the request's path is the tail of that URI's path (what stripping a prefix leaves),
/// the whole original path is used, with the request's query. A path that middleware rewrote
/// into something else is keyed as rewritten, as the handler sees it.
fn requested_path_and_query(parts: &Parts) -> Cow<'_, str> {
    let current = parts
        .uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(original)) = parts.extensions.get() {
        let (original_path, path) = (original.path(), parts.uri.path());
        // Stripping a prefix from `/v1` leaves `/`: every original path ends with the empty
        // rest.
        let rest = if path == "/" { "" } else { path };
        if original_path != path && original_path.ends_with(rest) {
            let mut nested = String::with_capacity(original_path.len() + current.len());
            nested.push_str(original_path);
            if let Some(query) = parts.uri.query() {
                nested.push('?');
                nested.push_str(query);
            }
            return Cow::Owned(nested);
        }
    }
    Cow::Borrowed(current)
}

/// Characters of a host name, IP literal or port. Anything else (`/`, `@`, spaces) would make the
/// boundary between host and path ambiguous, so such a request is not cached.
// A `u8` always indexes a 256-entry table.
#[allow(clippy::indexing_slicing)]
fn is_host_byte(byte: u8) -> bool {
    HOST_BYTES[usize::from(byte)]
}

#[allow(clippy::indexing_slicing)]
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] =
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']');
        byte += 1;
    }
    table
};

/// Bytes copied into keys as they are: printable ASCII except `%`, the escape character.
#[allow(clippy::indexing_slicing)]
const PLAIN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_graphic() && b != b'%';
        byte += 1;
    }
    table
};

/// `path_and_query` without the query parameters named in `ignored`, order otherwise kept.
fn without_params<'a>(path_and_query: &'a str, ignored: &[String]) -> Cow<'a, str> {
    if ignored.is_empty() {
        return Cow::Borrowed(path_and_query);
    }
    let Some((path, query)) = path_and_query.split_once('?') else {
        return Cow::Borrowed(path_and_query);
    };
    let is_ignored = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        ignored.iter().any(|ignored| ignored == name)
    };
    if !query.split('&').any(is_ignored) {
        return Cow::Borrowed(path_and_query);
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !is_ignored(pair)).collect();
    if kept.is_empty() {
        Cow::Owned(path.to_owned())
    } else {
        Cow::Owned(format!("{path}?{}", kept.join("&")))
    }
}

/// Appends the key of the record that holds a URL's response (when it does not vary) or the list
/// of headers its responses vary on.
pub(crate) fn push_primary_key(key: &mut String, prefix: &str, class: Class, url: &Url<'_>) {
    push_page_head(key, prefix);
    push_url(key, class, url);
}

/// Appends the part of every page key that depends only on the layer's prefix.
pub(crate) fn push_page_head(key: &mut String, prefix: &str) {
    key.push_str("page:");
    push_escaped_str(key, prefix);
    key.push(':');
}

/// Appends the part of a page key that depends on the request.
pub(crate) fn push_url(key: &mut String, class: Class, url: &Url<'_>) {
    key.push(class.tag());
    key.push(':');
    // Every part that comes from the request is length-prefixed, so none can run into the next.
    push_escaped_str(key, url.scheme);
    push_escaped_str(key, &url.host);
    push_escaped_str(key, &url.path_and_query);
}

/// Appends what names one variant of a URL to its primary key: the generation of its variant
/// list, the extra key part and the digest of the request's value (or its absence) of each
/// header in `names`.
pub(crate) fn push_variant_suffix(
    key: &mut String,
    generation: u64,
    extra: &str,
    names: &[HeaderName],
    request: &mut RequestValues<'_>,
) {
    let _ = write!(key, "|{generation:016x}|");
    push_escaped_str(key, extra);
    for name in names {
        key.push('|');
        push_escaped_str(key, name.as_str());
        match request.digest(name) {
            Some(digest) => {
                key.push('=');
                push_hex(key, &digest);
            }
            None => key.push('!'),
        }
    }
}

/// Appends `text` length-prefixed and escaped: `<length>:` then the bytes, with anything but
/// printable ASCII (and `%` itself) written as `%XX`. The length is of the raw bytes, so the
/// encoding is unambiguous whatever the text holds; plain text is copied in one go.
fn push_escaped_str(key: &mut String, text: &str) {
    if text.bytes().all(is_plain) {
        push_decimal(key, text.len() as u64);
        key.push(':');
        key.push_str(text);
    } else {
        push_escaped_slow(key, text.as_bytes());
    }
}

fn push_escaped_slow(key: &mut String, bytes: &[u8]) {
    push_decimal(key, bytes.len() as u64);
    key.push(':');
    for &byte in bytes {
        if is_plain(byte) {
            key.push(char::from(byte));
        } else {
            let _ = write!(key, "%{byte:02X}");
        }
    }
}

/// The glob patterns that match the keys of every page under `url`: the same scheme and host,
/// and a path (with query) that starts with `url`'s, in either class, variants included. `head`
/// is the start of every primary key. The path's length comes before it in a key, so there is
/// one pattern per number of digits that length can have.
pub(crate) fn prefix_patterns(head: &str, url: &Url<'_>) -> Vec<String> {
    let mut fixed = String::new();
    push_escaped_str(&mut fixed, url.scheme);
    push_escaped_str(&mut fixed, &url.host);
    let mut path = String::new();
    push_escaped_slow(&mut path, url.path_and_query.as_bytes());
    // Drop the length that `push_escaped_slow` wrote: the pattern matches any length.
    let path = path.split_once(':').map_or("", |(_, escaped)| escaped);
    let start = format!(
        "{}[GH]:{}",
        crate::glob::escape(head),
        crate::glob::escape(&fixed)
    );
    let rest = format!(":{}*", crate::glob::escape(path));
    (1..=6)
        .map(|digits| format!("{start}{}{rest}", "[0-9]".repeat(digits)))
        .collect()
}

// A `u8` always indexes a 256-entry table.
#[allow(clippy::indexing_slicing)]
fn is_plain(byte: u8) -> bool {
    PLAIN_BYTES[usize::from(byte)]
}

/// A request header's value for keying: its one field line, or all of them joined the way a
/// reader of the header would join them: `"; "` for `Cookie` (as HTTP/2 and RFC 6265 rejoin cookie lines), `", "`
/// for every other (list-valued) field. So two `Cookie` lines `a=1` and `b=2` key like the one
/// line `a=1; b=2` they mean, and never like `a=1, b=2`. `None` when absent, which keys
/// differently from an empty value.
pub(crate) fn request_value(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(first.clone());
    };
    let separator: &[u8] = if name == http::header::COOKIE {
        b"; "
    } else {
        b", "
    };
    let mut joined = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        joined.extend_from_slice(separator);
        joined.extend_from_slice(value.as_bytes());
    }
    // Joining valid values with a valid separator gives a valid value.
    HeaderValue::from_bytes(&joined).ok()
}

/// One request's header values as keys and stored entries see them: digests, each computed at
/// most once however many keys and entries a lookup or a store compares them with.
pub(crate) struct RequestValues<'a> {
    headers: &'a HeaderMap,
    digester: &'a Digester,
    digests: Vec<(HeaderName, Option<ValueDigest>)>,
}

impl<'a> RequestValues<'a> {
    pub(crate) fn new(headers: &'a HeaderMap, digester: &'a Digester) -> RequestValues<'a> {
        RequestValues {
            headers,
            digester,
            digests: Vec::new(),
        }
    }

    /// Whether the request carries `name` at all (no digest needed).
    pub(crate) fn has(&self, name: &HeaderName) -> bool {
        self.headers.contains_key(name)
    }

    /// The digest of the request's value of `name` (see [`request_value`]); `None` when absent.
    pub(crate) fn digest(&mut self, name: &HeaderName) -> Option<ValueDigest> {
        if let Some((_, digest)) = self.digests.iter().find(|(known, _)| known == name) {
            return *digest;
        }
        let mut lines = self.headers.get_all(name).iter();
        let digest = match (lines.next(), lines.next()) {
            (None, _) => None,
            (Some(only), None) => Some(self.digester.digest(only.as_bytes())),
            (Some(_), Some(_)) => request_value(self.headers, name)
                .map(|value| self.digester.digest(value.as_bytes())),
        };
        self.digests.push((name.clone(), digest));
        digest
    }
}

/// Whether the method looks up the cache at all.
pub(crate) fn class_of(method: &Method) -> Option<Class> {
    if method == Method::GET {
        Some(Class::Get)
    } else if method == Method::HEAD {
        Some(Class::Head)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn key(uri: &str, host: Option<&str>) -> String {
        let parts = parts(uri, host);
        let mut key = String::new();
        push_primary_key(
            &mut key,
            "",
            Class::Get,
            &Url::of_request(&parts, &[], &KeyScheme::default()).unwrap(),
        );
        key
    }

    /// The path and query a request is keyed on, inside a router that received `original`.
    #[cfg(feature = "axum")]
    fn keyed(original: &str, current: &str) -> String {
        let mut parts = parts(current, Some("example.com"));
        parts
            .extensions
            .insert(axum::extract::OriginalUri(original.parse().unwrap()));
        requested_path_and_query(&parts).into_owned()
    }

    #[cfg(feature = "axum")]
    #[test]
    fn a_stripped_nesting_prefix_is_put_back_and_rewrites_are_kept() {
        let cases = [
            // Not nested: the request as it is.
            ("/users?a=1", "/users?a=1", "/users?a=1"),
            // Nested at /v1 (and at /v1 again inside): the whole path, the request's query.
            ("/v1/users?a=1", "/users?a=1", "/v1/users?a=1"),
            ("/v1/v1/users", "/users", "/v1/v1/users"),
            ("/v1/users", "/users?lang=fr", "/v1/users?lang=fr"),
            // The nesting root: `/v1` and `/v1/` both arrive as `/`, and stay apart.
            ("/v1", "/", "/v1"),
            ("/v1/?q=2", "/?q=2", "/v1/?q=2"),
            // Rewritten by middleware after routing: keyed as the handler sees it.
            ("/page", "/seite", "/seite"),
            ("/page?x=1", "/page?lang=en", "/page?lang=en"),
            ("/v1/users", "/people", "/people"),
        ];
        for (original, current, key) in cases {
            assert_eq!(keyed(original, current), key, "{original} as {current}");
        }
        // Without `OriginalUri` (outside any router): the request's own target.
        assert_eq!(
            requested_path_and_query(&parts("/x?y", None)),
            Cow::Borrowed("/x?y")
        );
    }

    fn variant_key(
        primary: &str,
        generation: u64,
        extra: &str,
        names: &[HeaderName],
        headers: &HeaderMap,
    ) -> String {
        let mut key = primary.to_owned();
        let digester = Digester::default();
        let mut request = RequestValues::new(headers, &digester);
        push_variant_suffix(&mut key, generation, extra, names, &mut request);
        key
    }

    #[test]
    fn the_primary_key_names_scheme_host_path_and_query() {
        assert_eq!(
            key("/cache/test/?test=1", Some("www.example.com")),
            "page:0::G:4:http15:www.example.com19:/cache/test/?test=1"
        );
        assert_eq!(
            key("https://Example.COM:8443/a", None),
            "page:0::G:4:http16:example.com:84432:/a"
        );
    }

    #[test]
    fn host_case_does_not_matter_but_everything_else_does() {
        let base = key("/p?a=1&b=2", Some("example.com"));
        assert_eq!(base, key("/p?a=1&b=2", Some("EXAMPLE.com")));
        for other in [
            key("/p?b=2&a=1", Some("example.com")),
            key("/p?a=1&b=2", Some("sub.example.com")),
            key("/P?a=1&b=2", Some("example.com")),
            key("/p?a=1&b=2", Some("example.com:8080")),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(key("/p", Some("h")), key("/p?", Some("h")));
    }

    #[test]
    fn hosts_that_could_shift_the_path_are_refused() {
        for host in ["evil.com/p", "a b", "user@host", "h\tx", "ünïcode"] {
            let parts = parts("/", Some(host));
            let scheme = KeyScheme::default();
            let url = Url::of_request(&parts, &[], &scheme);
            assert_eq!(url, Err(Bypass::Host), "{host:?}");
        }
        let parts = parts("/", Some("[::1]:3000"));
        assert!(Url::of_request(&parts, &[], &KeyScheme::default()).is_ok());
    }

    #[test]
    fn ignored_query_parameters_are_dropped() {
        let ignored = ["utm_source".to_owned(), "gclid".to_owned()];
        for (uri, expected) in [
            ("/p?utm_source=x&id=2&gclid=y", "/p?id=2"),
            ("/p?utm_source=x", "/p"),
            ("/p?id=2", "/p?id=2"),
            ("/p?utm_sourcex=1", "/p?utm_sourcex=1"),
            ("/p?gclid", "/p"),
        ] {
            let parts = parts(uri, Some("h"));
            let scheme = KeyScheme::default();
            let url = Url::of_request(&parts, &ignored, &scheme).unwrap();
            assert_eq!(url.path_and_query, expected, "{uri}");
        }
    }

    #[test]
    fn variant_keys_never_collide_on_shifted_values() {
        let names = [
            HeaderName::from_static("x-a"),
            HeaderName::from_static("x-b"),
        ];
        let variant = |pairs: &[(&str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            variant_key("p", 1, "", &names, &headers)
        };
        // Values that a plain join of the parts would make collide.
        assert_ne!(
            variant(&[("x-a", "ab"), ("x-b", "c")]),
            variant(&[("x-a", "a"), ("x-b", "bc")])
        );
        assert_ne!(variant(&[("x-a", "-,")]), variant(&[("x-b", "-,")]));
        // Absent and empty differ (CVE-2026-113593).
        assert_ne!(variant(&[]), variant(&[("x-a", "")]));
        // Repeated field lines are joined, as the one-line form.
        assert_eq!(
            variant(&[("x-a", "1"), ("x-a", "2")]),
            variant(&[("x-a", "1, 2")])
        );
        assert!(!variant(&[("x-a", "a b|c=d%")]).contains(' '));
    }

    #[test]
    fn repeated_lines_join_as_their_readers_join_them() {
        let lines = |name: &str, values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            headers
        };
        let value = |headers: &HeaderMap, name: &str| {
            request_value(headers, &HeaderName::from_bytes(name.as_bytes()).unwrap())
        };
        let two_cookies = lines("cookie", &["a=1", "b=2"]);
        assert_eq!(value(&two_cookies, "cookie").unwrap(), "a=1; b=2");
        assert_eq!(
            value(&two_cookies, "cookie"),
            value(&lines("cookie", &["a=1; b=2"]), "cookie")
        );
        assert_ne!(
            value(&two_cookies, "cookie"),
            value(&lines("cookie", &["a=1, b=2"]), "cookie"),
            "one cookie `a` whose value is `1, b=2` is not two cookies"
        );
        let encodings = lines("accept-encoding", &["gzip", "br"]);
        assert_eq!(value(&encodings, "accept-encoding").unwrap(), "gzip, br");
        assert_eq!(value(&encodings, "cookie"), None);
    }

    #[test]
    fn extra_parts_and_generations_separate_variants() {
        let headers = HeaderMap::new();
        let names = [HeaderName::from_static("cookie")];
        let base = variant_key("p", 1, "en", &names, &headers);
        assert_ne!(base, variant_key("p", 2, "en", &names, &headers));
        assert_ne!(base, variant_key("p", 1, "es", &names, &headers));
        assert_ne!(base, variant_key("p", 1, "en", &[], &headers));
    }

    #[test]
    fn each_value_is_digested_once_per_request() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", HeaderValue::from_static("a=1"));
        headers.append("cookie", HeaderValue::from_static("b=2"));
        let digester = Digester::new(b"secret");
        let mut request = RequestValues::new(&headers, &digester);
        let cookie = HeaderName::from_static("cookie");
        let absent = HeaderName::from_static("x-absent");
        let expected = digester.digest(b"a=1; b=2");
        assert_eq!(request.digest(&cookie), Some(expected));
        assert_eq!(request.digest(&cookie), Some(expected));
        assert_eq!(request.digest(&absent), None);
        assert_eq!(request.digests.len(), 2, "one computation per name");
        assert!(request.has(&cookie) && !request.has(&absent));
    }

    #[test]
    fn header_values_appear_only_as_digests() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("session=s3cr3t"));
        headers.insert("x-a", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let names = [
            HeaderName::from_static("cookie"),
            HeaderName::from_static("x-a"),
        ];
        let key = variant_key("p", 0, "", &names, &headers);
        assert!(!key.contains("s3cr3t") && !key.contains("caf"), "{key}");
        let mut expected = String::from("|6:cookie=");
        push_hex(
            &mut expected,
            &Digester::default().digest(b"session=s3cr3t"),
        );
        assert!(key.contains(&expected), "{key}");
        assert!(key.is_ascii());
        // Keyed digests differ from plain ones, and with them the key.
        let mut keyed = "p".to_owned();
        let digester = Digester::new(b"secret");
        let mut request = RequestValues::new(&headers, &digester);
        push_variant_suffix(&mut keyed, 0, "", &names, &mut request);
        assert_ne!(keyed, key);
    }
}
