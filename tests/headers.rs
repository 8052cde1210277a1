//! Django's header-utility and decorator cases, the flaws of Django's versions fixed here, and
//! property tests that the `Cache-Control` and `Vary` functions never panic.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum_cache::headers::{
    CacheControl, Vary, add_never_cache_headers, has_vary_header, patch_cache_control,
    patch_response_headers, patch_vary_headers, vary,
};
use http::header::{CACHE_CONTROL, EXPIRES, VARY};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + secs(seconds)
}

fn headers_with(name: HeaderName, value: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = value {
        headers.insert(name, HeaderValue::from_str(value).unwrap());
    }
    headers
}

fn text(headers: &HeaderMap, name: HeaderName) -> &str {
    assert_eq!(headers.get_all(&name).iter().count(), 1, "one {name} line");
    headers[name].to_str().unwrap()
}

/// The items of a `Cache-Control` value the way Django's tests compare them: a set, with a field
/// list such as `no-cache="A, B"` counted as `no-cache=A` and `no-cache=B`.
fn items(value: &str) -> BTreeSet<String> {
    let mut items = BTreeSet::new();
    for (name, argument) in CacheControl::parse(value).iter() {
        match argument {
            None => {
                items.insert(name.to_owned());
            }
            Some(fields) if name == "no-cache" || name == "private" => {
                for field in fields.split(',') {
                    items.insert(format!("{name}={}", field.trim()));
                }
            }
            Some(argument) => {
                items.insert(format!("{name}={argument}"));
            }
        }
    }
    items
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

mod patch_vary {
    use super::*;

    fn patched(initial: Option<&str>, names: &[&str]) -> String {
        let mut headers = headers_with(VARY, initial);
        patch_vary_headers(&mut headers, names);
        text(&headers, VARY).to_owned()
    }

    /// `patch_vary_headers` on Django's eleven cases, plus a name repeated in one call and `*`
    /// written with whitespace, which Django gets wrong.
    #[test]
    fn django_cases() {
        let cases: &[(Option<&str>, &[&str], &str)] = &[
            (None, &["Accept-Encoding"], "Accept-Encoding"),
            (
                Some("Accept-Encoding"),
                &["accept-encoding"],
                "Accept-Encoding",
            ),
            (
                Some("Accept-Encoding"),
                &["ACCEPT-ENCODING"],
                "Accept-Encoding",
            ),
            (
                Some("Cookie"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie, Accept-Encoding"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie, Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (
                None,
                &["Accept-Encoding", "COOKIE"],
                "Accept-Encoding, COOKIE",
            ),
            (
                Some("Cookie,     Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie    ,     Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (Some("*"), &["Accept-Language", "Cookie"], "*"),
            (Some("Accept-Language, Cookie"), &["*"], "*"),
            // Django would give `Accept, accept`: a name repeated in one call is added once.
            (None, &["Accept", "accept"], "Accept"),
            // Django would keep ` * ` as a literal entry: `*` with whitespace is still `*`.
            (Some("Cookie, * "), &["Accept"], "*"),
            (Some("Cookie"), &[" * "], "*"),
        ];
        for (initial, names, expected) in cases {
            assert_eq!(
                patched(*initial, names),
                *expected,
                "{initial:?} + {names:?}"
            );
        }
    }

    /// Django's decorator tests of `vary_on_headers("Header", "Another-header")` and
    /// `vary_on_cookie`.
    #[test]
    fn vary_on_headers_and_vary_on_cookie() {
        assert_eq!(
            patched(None, &["Header", "Another-header"]),
            "Header, Another-header"
        );
        assert_eq!(patched(None, &["Cookie"]), "Cookie");
    }

    #[test]
    fn vary_reads_what_patch_wrote() {
        let mut headers = HeaderMap::new();
        patch_vary_headers(&mut headers, ["Cookie", "Accept-Language"]);
        patch_vary_headers(&mut headers, [String::from("accept-encoding")]);
        assert_eq!(
            vary(&headers),
            Vary::Names(vec![
                http::header::ACCEPT_ENCODING,
                http::header::ACCEPT_LANGUAGE,
                http::header::COOKIE,
            ])
        );
    }
}

/// `has_vary_header`, on Django's cases.
#[test]
fn has_vary_header_cases() {
    let cases = [
        ("*", "*", true),
        ("Cookie, *", "*", true),
        ("Cookie,*", "*", true),
        ("Cookie , *", "*", true),
        ("* ", "*", true),
        (" *", "*", true),
        ("Cookie, * ", "*", true),
        (" Cookie", "Cookie", true),
        ("Cookie", "*", false),
        ("*", "Cookie", false),
        ("cookie", "Cookie", true),
        ("Cookie", "cookie", true),
    ];
    for (value, name, expected) in cases {
        let headers = headers_with(VARY, Some(value));
        assert_eq!(
            has_vary_header(&headers, name),
            expected,
            "{value:?} has {name:?}"
        );
    }
    assert!(!has_vary_header(&HeaderMap::new(), "Cookie"));
}

mod patch_cache_control {
    use super::*;

    fn patched(initial: Option<&str>, directives: &CacheControl) -> String {
        let mut headers = headers_with(CACHE_CONTROL, initial);
        patch_cache_control(&mut headers, directives);
        text(&headers, CACHE_CONTROL).to_owned()
    }

    fn new() -> CacheControl {
        CacheControl::new()
    }

    /// `patch_cache_control` on Django's cases, compared as sets like Django, and as the exact
    /// (deterministic) output.
    #[test]
    fn django_cases() {
        let cases: Vec<(Option<&str>, CacheControl, &[&str], &str)> = vec![
            (None, new().with_private(), &["private"], "private"),
            (Some(""), new().with_private(), &["private"], "private"),
            (
                Some(""),
                new().with_no_cache_field("Set-Cookie"),
                &["no-cache=Set-Cookie"],
                r#"no-cache="Set-Cookie""#,
            ),
            // Django's hyphenated keyword spelling: the directive set by name.
            (
                Some(""),
                new().with_extension("no-cache", Some("Set-Cookie")),
                &["no-cache=Set-Cookie"],
                r#"no-cache="Set-Cookie""#,
            ),
            (
                Some("no-cache=Set-Cookie"),
                new().with_no_cache(),
                &["no-cache"],
                "no-cache",
            ),
            (
                Some("no-cache=Set-Cookie,no-cache=Link"),
                new().with_no_cache(),
                &["no-cache"],
                "no-cache",
            ),
            (
                Some("no-cache=Set-Cookie"),
                new().with_no_cache_field("Link"),
                &["no-cache=Set-Cookie", "no-cache=Link"],
                r#"no-cache="Set-Cookie, Link""#,
            ),
            (
                Some("no-cache=Set-Cookie,no-cache=Link"),
                new().with_no_cache_field("Custom"),
                &["no-cache=Set-Cookie", "no-cache=Link", "no-cache=Custom"],
                r#"no-cache="Set-Cookie, Link, Custom""#,
            ),
            (
                Some("private"),
                new().with_private(),
                &["private"],
                "private",
            ),
            (Some("private"), new().with_public(), &["public"], "public"),
            (Some("public"), new().with_public(), &["public"], "public"),
            (
                Some("public"),
                new().with_private(),
                &["private"],
                "private",
            ),
            (
                Some("must-revalidate,max-age=60,private"),
                new().with_public(),
                &["must-revalidate", "max-age=60", "public"],
                "must-revalidate, max-age=60, public",
            ),
            (
                Some("must-revalidate,max-age=60,public"),
                new().with_private(),
                &["must-revalidate", "max-age=60", "private"],
                "must-revalidate, max-age=60, private",
            ),
            (
                Some("must-revalidate,max-age=60"),
                new().with_public(),
                &["must-revalidate", "max-age=60", "public"],
                "must-revalidate, max-age=60, public",
            ),
            // The smaller max-age wins, and directive names are lower-cased.
            (
                Some("max-age=60"),
                new().with_max_age(secs(30)),
                &["max-age=30"],
                "max-age=30",
            ),
            (
                Some("max-age=10"),
                new().with_max_age(secs(30)),
                &["max-age=10"],
                "max-age=10",
            ),
            (
                Some("Max-Age=10, No-Cache"),
                new().with_public(),
                &["max-age=10", "no-cache", "public"],
                "max-age=10, no-cache, public",
            ),
        ];
        for (initial, directives, expected_items, expected_text) in cases {
            let output = patched(initial, &directives);
            assert_eq!(
                items(&output),
                set(expected_items),
                "{initial:?} + {directives}"
            );
            assert_eq!(output, expected_text, "{initial:?} + {directives}");
        }
    }

    /// No-cache field names come out in first-seen order, the same every time.
    #[test]
    fn output_order_is_deterministic() {
        let directives = new()
            .with_no_cache_field("X-Zebra")
            .with_no_cache_field("Set-Cookie")
            .with_max_age(secs(5));
        let expected = r#"no-cache="Link, Custom, X-Zebra, Set-Cookie", s=1, max-age=5"#;
        for _ in 0..20 {
            let output = patched(
                Some("no-cache=Link, s=1, no-cache=Custom, no-cache=link"),
                &directives,
            );
            assert_eq!(output, expected);
        }
    }

    /// As in Django's decorator tests, `cache_control()` writes an empty header.
    #[test]
    fn no_directives_write_an_empty_header() {
        assert_eq!(patched(None, &new()), "");
    }

    /// As in Django's decorator tests, `cache_control(max_age=123, private=True, public=True,
    /// custom=456)` keeps both `private` and `public`.
    #[test]
    fn private_and_public_in_one_patch_are_both_kept() {
        let directives = new()
            .with_max_age(secs(123))
            .with_private()
            .with_public()
            .with_extension("custom", Some("456"));
        let output = patched(None, &directives);
        assert_eq!(
            items(&output),
            set(&["max-age=123", "private", "public", "custom=456"])
        );
        assert_eq!(output, "max-age=123, private, public, custom=456");
        let output = patched(Some("public, private"), &directives);
        assert_eq!(output, "max-age=123, private, public, custom=456");
    }

    /// A malformed current max-age does not crash, where Django's would, and counts as absent.
    #[test]
    fn malformed_max_age_is_treated_as_absent() {
        let directives = new().with_max_age(secs(300));
        assert_eq!(patched(Some("max-age=abc"), &directives), "max-age=300");
        assert_eq!(
            patched(Some("private, max-age=, x=1"), &directives),
            "private, max-age=300, x=1"
        );
        assert_eq!(CacheControl::parse("max-age=abc").max_age(), None);
    }

    /// Directives are parsed whole and case-insensitively, never matched as substrings
    /// (CVE-2026-8404).
    #[test]
    fn directives_are_parsed_not_substring_matched() {
        let cc = CacheControl::parse("community=unprivate, x-public-ish");
        assert!(!cc.is_private());
        assert!(!cc.is_public());
        let cc = CacheControl::parse("PRIVATE, No-Store");
        assert!(cc.is_private());
        assert!(cc.is_no_store());
        assert_eq!(
            patched(Some("community=unprivate"), &new().with_public()),
            "community=unprivate, public"
        );
    }
}

/// `never_cache` at t=1167616461, as in Django's decorator tests, and `patch_response_headers`
/// as `cache_page` applies it.
mod response_headers {
    use super::*;

    #[test]
    fn never_cache_on_a_fresh_response() {
        let mut headers = HeaderMap::new();
        add_never_cache_headers(&mut headers, at(1_167_616_461));
        assert_eq!(text(&headers, EXPIRES), "Mon, 01 Jan 2007 01:54:21 GMT");
        assert_eq!(
            text(&headers, CACHE_CONTROL),
            "max-age=0, no-cache, no-store, must-revalidate, private"
        );
    }

    #[test]
    fn never_cache_keeps_a_views_expires_and_overrides_public() {
        let mut headers = headers_with(EXPIRES, Some("tomorrow"));
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600, no-cache=\"Set-Cookie\""),
        );
        add_never_cache_headers(&mut headers, at(1_167_616_461));
        assert_eq!(text(&headers, EXPIRES), "tomorrow");
        assert_eq!(
            text(&headers, CACHE_CONTROL),
            "max-age=0, no-cache, no-store, must-revalidate, private"
        );
    }

    #[test]
    fn cache_page_headers() {
        let mut headers = HeaderMap::new();
        patch_response_headers(&mut headers, secs(2), at(1_468_749_600));
        assert_eq!(text(&headers, EXPIRES), "Sun, 17 Jul 2016 10:00:02 GMT");
        assert_eq!(text(&headers, CACHE_CONTROL), "max-age=2");
    }

    #[test]
    fn an_existing_expires_is_kept_even_in_the_past() {
        let past = "Thu, 01 Jan 1970 00:00:00 GMT";
        let mut headers = headers_with(EXPIRES, Some(past));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=1"));
        patch_response_headers(&mut headers, secs(600), at(1_468_749_600));
        assert_eq!(text(&headers, EXPIRES), past);
        assert_eq!(text(&headers, CACHE_CONTROL), "max-age=1");
    }
}

/// Strings that hit the parsers' corners: quotes, escapes, commas, `=`, whitespace, `*`.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 ,=\"\\\\\t*/W;-]{0,40}",
        proptest::collection::vec(
            prop::sample::select(vec![
                "max-age",
                "=",
                "60",
                "\"",
                "\\",
                ",",
                " ",
                "private",
                "no-cache",
                "*",
                "é",
                "\u{0}",
                "\n",
                "Set-Cookie",
                "-1",
                "99999999999999999999999",
            ]),
            0..12,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// Arbitrary bytes that form a valid header value (and some that would not, filtered out).
fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        tricky_string().prop_map(String::into_bytes),
    ]
    .prop_filter_map("not a header value", |bytes| {
        HeaderValue::from_bytes(&bytes).ok()
    })
}

fn header_lines(name: HeaderName) -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec(header_value(), 0..4).prop_map(move |values| {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), value);
        }
        headers
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cache_control_parse_round_trips_through_display(value in tricky_string()) {
        let parsed = CacheControl::parse(&value);
        let written = parsed.to_string();
        prop_assert_eq!(parsed.to_header_value(), written.as_str());
        prop_assert_eq!(CacheControl::parse(&written), parsed.clone());
        let _ = (parsed.max_age(), parsed.private_fields(), parsed.no_cache_fields());
    }

    #[test]
    fn cache_control_from_arbitrary_header_bytes(headers in header_lines(CACHE_CONTROL)) {
        let parsed = CacheControl::from_headers(&headers);
        prop_assert_eq!(CacheControl::parse(&parsed.to_string()), parsed.clone());
        let _ = parsed.to_header_value();
    }

    #[test]
    fn builders_always_write_valid_headers(
        name in tricky_string(),
        value in proptest::option::of(tricky_string()),
        field in tricky_string(),
        seconds in any::<u64>(),
    ) {
        let built = CacheControl::new()
            .with_extension(&name, value.as_deref())
            .with_private_field(&field)
            .with_no_cache_field(&field)
            .with_max_age(secs(seconds));
        let written = built.to_string();
        prop_assert_eq!(built.to_header_value(), written.as_str());
        prop_assert_eq!(CacheControl::parse(&written), built);
    }

    #[test]
    fn patch_cache_control_never_panics(
        mut headers in header_lines(CACHE_CONTROL),
        directives in tricky_string(),
    ) {
        patch_cache_control(&mut headers, &CacheControl::parse(&directives));
        prop_assert_eq!(headers.get_all(CACHE_CONTROL).iter().count(), 1);
        let written = String::from_utf8_lossy(headers[CACHE_CONTROL].as_bytes()).into_owned();
        prop_assert_eq!(CacheControl::parse(&written).to_string(), written);
    }

    #[test]
    fn vary_functions_never_panic(
        mut headers in header_lines(VARY),
        names in proptest::collection::vec(tricky_string(), 0..4),
        query in tricky_string(),
    ) {
        let _ = vary(&headers);
        let _ = has_vary_header(&headers, &query);
        patch_vary_headers(&mut headers, &names);
        let after = vary(&headers);
        for name in names.iter().filter(|name| HeaderName::try_from(name.trim_ascii()).is_ok()) {
            prop_assert!(after == Vary::Any || has_vary_header(&headers, name));
        }
    }
}
