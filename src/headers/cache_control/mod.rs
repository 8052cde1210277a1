//! `Cache-Control`: the parsed directive list, how it is read and written; its builders are in
//! `build` and Django's patch functions over it in `patch`.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue};

use super::{header_value, is_ows, is_token, split_list};

mod build;
mod patch;

pub use patch::{add_never_cache_headers, patch_cache_control, patch_response_headers};

/// The largest delta-seconds value the accessors report: 2^31 seconds (about 68 years). RFC 9111
/// lets a cache treat any larger value as this one, and the cap keeps `now + max_age` far from
/// overflowing.
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// The directives whose argument is a list of header field names.
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

/// The directives of a `Cache-Control` header (RFC 9111), in order.
///
/// Parsing never fails: items that are not `name` or `name=value` with a token name are skipped,
/// names are lower-cased, and quoted arguments are unquoted. Accessors look directives up by
/// name, never by substring, so `community=unprivate` is not `private`. When a directive appears
/// more than once, the accessors use the first occurrence (a cache may either do that or treat the
/// response as stale), except `private` and `no-cache`, whose field names are gathered from every
/// occurrence (a bare occurrence wins).
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
    /// (letters, digits and ``!#$%&'*+-.^_`|~``) is skipped. ASCII control characters in arguments (other than tab) are
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

    /// A delta-seconds argument, a whole number of seconds: `None` if absent, bare or not a plain
    /// non-negative integer; capped at 2^31 seconds.
    fn delta(&self, name: &str) -> Option<Duration> {
        self.get(name)
            .flatten()
            .and_then(delta_seconds)
            .map(|seconds| Duration::from_secs(seconds.min(MAX_DELTA_SECONDS)))
    }

    /// `max-age`: `None` when absent, bare, or not a non-negative integer (a malformed value
    /// counts as missing). Values above 2^31 seconds (about 68 years) are capped there, as RFC
    /// 9111 allows.
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

    /// The header value, as [`Display`](fmt::Display) writes it.
    pub fn to_header_value(&self) -> HeaderValue {
        header_value(self.to_string().into_bytes())
    }
}

/// Writes the directives joined by `", "`. An argument is written as a token when it is one,
/// otherwise as a quoted string with `"` and `\` escaped by a backslash; the field lists of
/// `private` and `no-cache` are always quoted, as RFC 9111 asks of senders.
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
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
}
