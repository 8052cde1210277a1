//! `Cache-Control`: the parsed directive list, and Django's patch functions over it.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime};

use http::header::{CACHE_CONTROL, EXPIRES};
use http::{HeaderMap, HeaderValue};

use super::{fmt_http_date, latest_http_date};
use super::{header_value, is_ows, is_token, split_list};

/// The largest delta-seconds value the accessors report: 2^31 seconds (about 68 years). RFC 9111
/// §1.2.2 lets a cache treat any larger value as this one, and it keeps `now + max_age` far from
/// overflowing.
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// The directives whose argument is a list of header field names (RFC 9111 §5.2.2.4, §5.2.2.7).
fn lists_field_names(name: &str) -> bool {
    name == "private" || name == "no-cache"
}

/// One directive: a lower-case token name and, unless bare, its argument with quoting removed.
/// The argument never holds an ASCII control character other than a tab, so it can always be
/// written back into a header.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Directive {
    name: String,
    value: Option<String>,
}

/// Field names in first-seen order without case-insensitive duplicates, each checked against
/// a set of those seen, so a long list is gathered in one pass.
#[derive(Default)]
struct FieldNames<'a> {
    names: Vec<&'a str>,
    seen: HashSet<String>,
}

impl<'a> FieldNames<'a> {
    fn extend(&mut self, fields: impl IntoIterator<Item = &'a str>) {
        for field in fields {
            if self.seen.insert(field.to_ascii_lowercase()) {
                self.names.push(field);
            }
        }
    }
}

/// What a field-list directive (`private`, `no-cache`) says, over all its occurrences.
enum Fields<'a> {
    /// Not there.
    Absent,
    /// There without a usable field list: it covers the whole response.
    Bare,
    /// There, restricted to these field names (first-seen order, no duplicates).
    Names(Vec<&'a str>),
}

/// The directives of a `Cache-Control` header, in order (RFC 9111 §5.2).
///
/// Parsing never fails: items that are not `name` or `name=value` with a token name are skipped,
/// names are lower-cased, and quoted arguments are unquoted. Accessors look directives up by
/// name, never by substring, so `community=unprivate` is not `private`. When a directive appears
/// more than once, the accessors use the first occurrence (RFC 9111 §4.2.1), except `private`
/// and `no-cache`, whose field names are gathered from every occurrence (a bare occurrence wins).
///
/// The `with_*` builders are Django's `cache_control(**kwargs)`: each sets one directive,
/// replacing an earlier value of the same directive in place or appending it.
///
/// ```
/// use axum_cache::headers::CacheControl;
/// use std::time::Duration;
///
/// let cc = CacheControl::parse("Max-Age=60, private=\"Set-Cookie\", x-ext");
/// assert_eq!(cc.max_age(), Some(Duration::from_secs(60)));
/// assert!(cc.is_private());
/// assert_eq!(cc.private_fields(), ["Set-Cookie"]);
/// assert_eq!(cc.get("X-EXT"), Some(None));
///
/// let built = CacheControl::new().with_max_age(Duration::from_secs(300)).with_public();
/// assert_eq!(built.to_string(), "max-age=300, public");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    directives: Vec<Directive>,
}

impl CacheControl {
    /// No directives.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one `Cache-Control` field value. Never fails: what cannot be parsed is skipped.
    ///
    /// Items are separated by commas outside quoted strings. An item whose name is not a token
    /// (RFC 9110 §5.6.2) is skipped. ASCII control characters in arguments (other than tab) are
    /// dropped, so the result can always be written back into a header.
    pub fn parse(value: &str) -> Self {
        let mut parsed = Self::new();
        parsed.extend_parsed(value);
        parsed
    }

    /// The directives of every `Cache-Control` field line of `headers`, in order.
    ///
    /// Each line is parsed on its own, so a malformed line cannot hide the next one. Bytes that
    /// are not UTF-8 are replaced by U+FFFD rather than dropping the line, so a `no-store` next to
    /// an odd byte is still seen.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut parsed = Self::new();
        for line in headers.get_all(CACHE_CONTROL) {
            parsed.extend_parsed(&String::from_utf8_lossy(line.as_bytes()));
        }
        parsed
    }

    fn extend_parsed(&mut self, value: &str) {
        for item in split_list(value, true) {
            let (name, argument) = match item.split_once('=') {
                Some((name, argument)) => (name, Some(argument)),
                None => (item, None),
            };
            let name = name.trim_matches(is_ows);
            if is_token(name) {
                self.directives.push(Directive {
                    name: name.to_ascii_lowercase(),
                    value: argument.map(parse_argument),
                });
            }
        }
    }

    /// A directive by name (case-insensitive), including extensions: `None` if absent,
    /// `Some(None)` if bare, `Some(Some(argument))` otherwise, unquoted. The first occurrence
    /// counts.
    ///
    /// This tells a malformed `max-age` apart from a missing one:
    ///
    /// ```
    /// # use axum_cache::headers::CacheControl;
    /// let cc = CacheControl::parse("max-age=abc");
    /// assert_eq!(cc.max_age(), None);
    /// assert_eq!(cc.get("max-age"), Some(Some("abc")));
    /// ```
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.directives
            .iter()
            .find(|directive| directive.name.eq_ignore_ascii_case(name))
            .map(|directive| directive.value.as_deref())
    }

    /// The directives in order, as `(lower-case name, unquoted argument)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.directives
            .iter()
            .map(|directive| (directive.name.as_str(), directive.value.as_deref()))
    }

    /// Whether there are no directives.
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A delta-seconds argument (RFC 9111 §1.2.2): `None` if absent, bare or not a plain
    /// non-negative integer; capped at 2^31 seconds.
    fn delta(&self, name: &str) -> Option<Duration> {
        self.get(name)
            .flatten()
            .and_then(delta_seconds)
            .map(|seconds| Duration::from_secs(seconds.min(MAX_DELTA_SECONDS)))
    }

    /// `max-age`: `None` when absent, bare, or not a non-negative integer (a malformed value
    /// counts as missing). Values above 2^31 seconds are capped there (RFC 9111 §1.2.2).
    pub fn max_age(&self) -> Option<Duration> {
        self.delta("max-age")
    }

    /// `s-maxage`, read like [`max_age`](Self::max_age).
    pub fn s_maxage(&self) -> Option<Duration> {
        self.delta("s-maxage")
    }

    /// `stale-while-revalidate` (RFC 5861), read like [`max_age`](Self::max_age).
    pub fn stale_while_revalidate(&self) -> Option<Duration> {
        self.delta("stale-while-revalidate")
    }

    /// `stale-if-error` (RFC 5861), read like [`max_age`](Self::max_age).
    pub fn stale_if_error(&self) -> Option<Duration> {
        self.delta("stale-if-error")
    }

    /// Whether `public` is present.
    pub fn is_public(&self) -> bool {
        self.has("public")
    }

    /// Whether `private` is present, bare or with field names.
    pub fn is_private(&self) -> bool {
        self.has("private")
    }

    /// Whether `no-store` is present.
    pub fn is_no_store(&self) -> bool {
        self.has("no-store")
    }

    /// Whether `no-cache` is present, bare or with field names.
    pub fn is_no_cache(&self) -> bool {
        self.has("no-cache")
    }

    /// Whether `must-revalidate` is present.
    pub fn must_revalidate(&self) -> bool {
        self.has("must-revalidate")
    }

    /// Whether `proxy-revalidate` is present.
    pub fn proxy_revalidate(&self) -> bool {
        self.has("proxy-revalidate")
    }

    /// Whether `no-transform` is present.
    pub fn no_transform(&self) -> bool {
        self.has("no-transform")
    }

    /// Whether `must-understand` is present.
    pub fn must_understand(&self) -> bool {
        self.has("must-understand")
    }

    /// Whether `immutable` (RFC 8246) is present.
    pub fn immutable(&self) -> bool {
        self.has("immutable")
    }

    /// The field names of `private="a, b"`, gathered from every occurrence, in first-seen order
    /// without (case-insensitive) duplicates.
    ///
    /// Empty when `private` is absent or covers the whole response: when any occurrence is bare,
    /// or has an argument that is not a list of field names. Check
    /// [`is_private`](Self::is_private) first.
    pub fn private_fields(&self) -> Vec<&str> {
        match self.fields("private") {
            Fields::Names(names) => names,
            Fields::Absent | Fields::Bare => Vec::new(),
        }
    }

    /// The field names of `no-cache="Set-Cookie"`, read like
    /// [`private_fields`](Self::private_fields).
    pub fn no_cache_fields(&self) -> Vec<&str> {
        match self.fields("no-cache") {
            Fields::Names(names) => names,
            Fields::Absent | Fields::Bare => Vec::new(),
        }
    }

    fn fields(&self, name: &str) -> Fields<'_> {
        let mut present = false;
        let mut names = FieldNames::default();
        for directive in self.directives.iter().filter(|d| d.name == name) {
            present = true;
            let Some(listed) = directive.value.as_deref().and_then(field_names) else {
                return Fields::Bare;
            };
            names.extend(listed);
        }
        if present {
            Fields::Names(names.names)
        } else {
            Fields::Absent
        }
    }

    /// Sets `name` (already lower-case and a token): the first occurrence takes `value` in place
    /// and later ones go; a new directive is appended.
    fn set(&mut self, name: &str, value: Option<String>) {
        let mut value = Some(value);
        self.directives.retain_mut(|directive| {
            if directive.name != name {
                return true;
            }
            match value.take() {
                Some(value) => {
                    directive.value = value;
                    true
                }
                None => false,
            }
        });
        if let Some(value) = value {
            self.directives.push(Directive {
                name: name.to_owned(),
                value,
            });
        }
    }

    fn remove(&mut self, name: &str) {
        self.directives.retain(|directive| directive.name != name);
    }

    /// Adds one field name (or, with `None`, the bare form) to a field-list directive.
    fn add_field(&mut self, name: &str, field: Option<&str>) {
        self.add_fields(name, field.map(|field| vec![field]));
    }

    /// Merges one occurrence of a field-list directive, bare or with its argument.
    fn merge_fields(&mut self, name: &str, argument: Option<&str>) {
        self.add_fields(name, argument.and_then(field_names));
    }

    /// Adds field names (or, with `None`, the bare form) to a field-list directive, in one
    /// pass. A bare directive wins over field names; names accumulate without duplicates.
    fn add_fields(&mut self, name: &str, fields: Option<Vec<&str>>) {
        let merged = match (self.fields(name), fields) {
            (Fields::Bare, _) | (_, None) => None,
            (Fields::Absent, Some(fields)) => {
                let mut names = FieldNames::default();
                names.extend(fields);
                Some(names.names.join(", "))
            }
            (Fields::Names(current), Some(fields)) => {
                let mut names = FieldNames::default();
                names.extend(current);
                names.extend(fields);
                Some(names.names.join(", "))
            }
        };
        self.set(name, merged);
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

    fn with_delta(mut self, name: &str, duration: Duration) -> Self {
        self.set(name, Some(duration.as_secs().to_string()));
        self
    }

    fn with_bare(mut self, name: &str) -> Self {
        self.set(name, None);
        self
    }

    /// Sets `max-age` to `duration` in whole seconds (sub-seconds are dropped).
    pub fn with_max_age(self, duration: Duration) -> Self {
        self.with_delta("max-age", duration)
    }

    /// Sets `s-maxage` to `duration` in whole seconds.
    pub fn with_s_maxage(self, duration: Duration) -> Self {
        self.with_delta("s-maxage", duration)
    }

    /// Sets `stale-while-revalidate` to `duration` in whole seconds.
    pub fn with_stale_while_revalidate(self, duration: Duration) -> Self {
        self.with_delta("stale-while-revalidate", duration)
    }

    /// Sets `stale-if-error` to `duration` in whole seconds.
    pub fn with_stale_if_error(self, duration: Duration) -> Self {
        self.with_delta("stale-if-error", duration)
    }

    /// Adds `public`. It does not remove `private`: as in Django, asking for both in one set of
    /// directives keeps both; [`patch_cache_control`] makes them exclude each other across
    /// patches.
    pub fn with_public(self) -> Self {
        self.with_bare("public")
    }

    /// Sets bare `private` (the whole response), replacing any field names.
    pub fn with_private(self) -> Self {
        self.with_bare("private")
    }

    /// Adds a field name to `private="…"`. No effect when `private` is already bare, or when
    /// `name` is not a token (a header name cannot be anything else).
    pub fn with_private_field(mut self, name: &str) -> Self {
        let name = name.trim_matches(is_ows);
        if is_token(name) {
            self.add_field("private", Some(name));
        }
        self
    }

    /// Sets bare `no-cache` (the whole response), replacing any field names.
    pub fn with_no_cache(self) -> Self {
        self.with_bare("no-cache")
    }

    /// Adds a field name to `no-cache="…"`. No effect when `no-cache` is already bare, or when
    /// `name` is not a token.
    pub fn with_no_cache_field(mut self, name: &str) -> Self {
        let name = name.trim_matches(is_ows);
        if is_token(name) {
            self.add_field("no-cache", Some(name));
        }
        self
    }

    /// Adds `no-store`.
    pub fn with_no_store(self) -> Self {
        self.with_bare("no-store")
    }

    /// Adds `must-revalidate`.
    pub fn with_must_revalidate(self) -> Self {
        self.with_bare("must-revalidate")
    }

    /// Adds `proxy-revalidate`.
    pub fn with_proxy_revalidate(self) -> Self {
        self.with_bare("proxy-revalidate")
    }

    /// Adds `no-transform`.
    pub fn with_no_transform(self) -> Self {
        self.with_bare("no-transform")
    }

    /// Adds `must-understand`.
    pub fn with_must_understand(self) -> Self {
        self.with_bare("must-understand")
    }

    /// Adds `immutable`.
    pub fn with_immutable(self) -> Self {
        self.with_bare("immutable")
    }

    /// Sets any directive: bare with `None`, else with the argument (quoted on output when it
    /// is not a token). The name is lower-cased.
    ///
    /// A name that is not a token (RFC 9110 §5.6.2) cannot be written into a header, so the call
    /// then has no effect; ASCII control characters other than tab are dropped from the argument.
    ///
    /// ```
    /// # use axum_cache::headers::CacheControl;
    /// let cc = CacheControl::new()
    ///     .with_extension("Community", Some("UCI"))
    ///     .with_extension("note", Some("a, b"))
    ///     .with_extension("bad name", None);
    /// assert_eq!(cc.to_string(), "community=UCI, note=\"a, b\"");
    /// ```
    pub fn with_extension(mut self, name: &str, value: Option<&str>) -> Self {
        if is_token(name) {
            self.set(
                &name.to_ascii_lowercase(),
                value.map(|value| without_controls(value.to_owned())),
            );
        }
        self
    }

    /// The header value, as [`Display`](fmt::Display) writes it.
    pub fn to_header_value(&self) -> HeaderValue {
        header_value(self.to_string().into_bytes())
    }
}

/// Writes the directives joined by `", "`. An argument is written as a token when it is one,
/// otherwise as a quoted string (RFC 9110 §5.6.4); the field lists of `private` and `no-cache`
/// are always quoted, as RFC 9111 §5.2.2.4 asks of senders.
impl fmt::Display for CacheControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, directive) in self.directives.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&directive.name)?;
            if let Some(value) = &directive.value {
                f.write_str("=")?;
                if is_token(value) && !lists_field_names(&directive.name) {
                    f.write_str(value)?;
                } else {
                    write_quoted(f, value)?;
                }
            }
        }
        Ok(())
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        fmt::Write::write_char(f, c)?;
    }
    f.write_str("\"")
}

/// An argument as written after `=`: trimmed, unquoted when it starts with a quote (the quoted
/// string ends at the closing quote, or at the end when unterminated), control characters dropped.
fn parse_argument(raw: &str) -> String {
    let raw = raw.trim_matches(is_ows);
    let value = match raw.strip_prefix('"') {
        Some(quoted) => {
            let mut value = String::with_capacity(quoted.len());
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
            value
        }
        None => raw.to_owned(),
    };
    without_controls(value)
}

/// Drops what a header value cannot hold: ASCII control characters other than tab.
fn without_controls(mut value: String) -> String {
    value.retain(|c| !c.is_ascii_control() || c == '\t');
    value
}

/// The field names of a `private` or `no-cache` argument; `None` when it lists none or holds
/// something that is not a field name, in which case the directive covers the whole response.
fn field_names(argument: &str) -> Option<Vec<&str>> {
    let names: Vec<&str> = argument
        .split(',')
        .map(|name| name.trim_matches(is_ows))
        .filter(|name| !name.is_empty())
        .collect();
    (!names.is_empty() && names.iter().all(|name| is_token(name))).then_some(names)
}

/// `1*DIGIT`, saturating at `u64::MAX`.
fn delta_seconds(argument: &str) -> Option<u64> {
    if argument.is_empty() || !argument.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(argument.parse().unwrap_or(u64::MAX))
}

/// Merges `directives` into the response's `Cache-Control`: Django's `patch_cache_control`, with
/// the fixes of the spec's C.10 and C.18.
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
    fn parses_names_case_insensitively_and_unquotes_arguments() {
        let cc = CacheControl::parse(
            r#" PRIVATE , No-Store,max-age="60", x="a, \"b\"", no-cache=Set-Cookie"#,
        );
        assert_eq!(
            cc.iter().collect::<Vec<_>>(),
            [
                ("private", None),
                ("no-store", None),
                ("max-age", Some("60")),
                ("x", Some(r#"a, "b""#)),
                ("no-cache", Some("Set-Cookie")),
            ]
        );
        assert!(cc.is_private() && cc.is_no_store() && cc.is_no_cache());
        assert_eq!(cc.max_age(), Some(secs(60)));
    }

    #[test]
    fn skips_items_without_a_token_name() {
        let cc = CacheControl::parse(r#", ,=5, "quoted", a b, ok, bad name=1, é"#);
        assert_eq!(cc.iter().collect::<Vec<_>>(), [("ok", None)]);
        assert!(CacheControl::parse("").is_empty());
        assert!(CacheControl::parse(" , ,").is_empty());
    }

    #[test]
    fn directives_are_matched_whole_not_by_substring() {
        let cc = CacheControl::parse("community=unprivate, x-public-ish, my-no-store");
        assert!(!cc.is_private());
        assert!(!cc.is_public());
        assert!(!cc.is_no_store());
        assert_eq!(cc.get("community"), Some(Some("unprivate")));
    }

    #[test]
    fn malformed_delta_seconds_count_as_missing() {
        for value in [
            "max-age=abc",
            "max-age",
            "max-age=",
            "max-age=-1",
            "max-age=+5",
            "max-age=1.5",
            "max-age=٣",
        ] {
            assert_eq!(CacheControl::parse(value).max_age(), None, "{value}");
        }
        assert_eq!(CacheControl::parse("max-age=007").max_age(), Some(secs(7)));
    }

    #[test]
    fn huge_delta_seconds_are_capped_at_two_to_the_31() {
        let cap = Some(secs(1 << 31));
        for value in [
            "max-age=2147483649",
            "max-age=18446744073709551615",
            "max-age=99999999999999999999999999999",
        ] {
            assert_eq!(CacheControl::parse(value).max_age(), cap, "{value}");
        }
        assert_eq!(
            CacheControl::parse("max-age=2147483647").max_age(),
            Some(secs((1 << 31) - 1))
        );
    }

    #[test]
    fn the_first_occurrence_counts() {
        let cc = CacheControl::parse("max-age=10, max-age=20, s-maxage=x, s-maxage=5");
        assert_eq!(cc.max_age(), Some(secs(10)));
        assert_eq!(cc.s_maxage(), None);
    }

    #[test]
    fn reads_every_delta_directive() {
        let cc = CacheControl::parse(
            "s-maxage=1, stale-while-revalidate=2, stale-if-error=3, must-revalidate, \
             proxy-revalidate, no-transform, must-understand, immutable, public",
        );
        assert_eq!(cc.s_maxage(), Some(secs(1)));
        assert_eq!(cc.stale_while_revalidate(), Some(secs(2)));
        assert_eq!(cc.stale_if_error(), Some(secs(3)));
        assert!(cc.must_revalidate() && cc.proxy_revalidate() && cc.no_transform());
        assert!(cc.must_understand() && cc.immutable() && cc.is_public());
        assert!(!cc.is_private() && !cc.is_no_cache() && !cc.is_no_store());
    }

    #[test]
    fn field_names_gather_over_occurrences_and_bare_wins() {
        let cc = CacheControl::parse(r#"private="A, b", private=a, private="C""#);
        assert_eq!(cc.private_fields(), ["A", "b", "C"]);
        let cc = CacheControl::parse(r#"no-cache="Set-Cookie", no-cache"#);
        assert!(cc.is_no_cache());
        assert!(cc.no_cache_fields().is_empty());
        for bare in [r#"private="""#, "private=, ", r#"private="a b""#] {
            let cc = CacheControl::parse(bare);
            assert!(cc.is_private(), "{bare}");
            assert!(cc.private_fields().is_empty(), "{bare}");
        }
    }

    #[test]
    fn display_quotes_what_is_not_a_token() {
        let cc = CacheControl::new()
            .with_max_age(secs(60))
            .with_extension("a", Some(""))
            .with_extension("b", Some("x y"))
            .with_extension("c", Some(r#"q"\"#))
            .with_no_cache_field("Set-Cookie")
            .with_private_field("X-A")
            .with_private_field("x-b");
        assert_eq!(
            cc.to_string(),
            r#"max-age=60, a="", b="x y", c="q\"\\", no-cache="Set-Cookie", private="X-A, x-b""#
        );
        assert_eq!(CacheControl::parse(&cc.to_string()), cc);
        assert_eq!(cc.to_header_value(), cc.to_string().as_str());
    }

    #[test]
    fn builders_replace_in_place() {
        let cc = CacheControl::parse("max-age=1, public, max-age=2")
            .with_max_age(secs(9))
            .with_extension("PUBLIC", Some("x"));
        assert_eq!(cc.to_string(), "max-age=9, public=x");
        let cc = CacheControl::new()
            .with_private_field("A")
            .with_private_field("a")
            .with_private()
            .with_private_field("B");
        assert_eq!(cc.to_string(), "private");
    }

    #[test]
    fn builders_ignore_what_cannot_be_written() {
        let cc = CacheControl::new()
            .with_extension("", None)
            .with_extension("a\nb", None)
            .with_private_field("a b")
            .with_no_cache_field("");
        assert!(cc.is_empty());
        let cc = CacheControl::new().with_extension("x", Some("a\r\nb\u{7f}\tc"));
        assert_eq!(cc.get("x"), Some(Some("ab\tc")));
        assert_eq!(cc.to_header_value(), "x=\"ab\tc\"");
    }

    #[test]
    fn sub_seconds_are_dropped() {
        let cc = CacheControl::new().with_max_age(Duration::from_millis(1999));
        assert_eq!(cc.to_string(), "max-age=1");
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
        // Gathering them pairwise took minutes; one pass takes milliseconds.
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
    fn every_field_line_is_read() {
        let mut headers = HeaderMap::new();
        headers.append(CACHE_CONTROL, HeaderValue::from_static("x=\"open, public"));
        headers.append(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.append(
            CACHE_CONTROL,
            HeaderValue::from_bytes(b"private, y=\xff").unwrap(),
        );
        let cc = CacheControl::from_headers(&headers);
        assert!(cc.is_public() && cc.is_no_store() && cc.is_private());
        assert_eq!(cc.get("y"), Some(Some("\u{fffd}")));
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
