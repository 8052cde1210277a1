//! Django's conditional-request cases as evaluations, and property tests
//! that the entity-tag and date parsers never panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum_cache::conditional::{
    EntityTag, EntityTagList, Precondition, evaluate_preconditions, fmt_http_date,
    not_modified_headers, parse_etag_list, parse_http_date, parse_http_date_at,
};
use http::header::{
    CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_LOCATION, DATE, ETAG, EXPIRES, IF_MATCH,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED, SET_COOKIE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

fn at(seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    headers
}

/// The fixtures of Django's conditional_processing tests.
const ETAG_VALUE: &str = r#""b4246ffc4f62314ca13147c9d4f76974""#;
const WEAK_ETAG: &str = r#"W/"b4246ffc4f62314ca13147c9d4f76974""#;
const EXPIRED_ETAG: &str = r#""7fae4cd4b0f81e7d2914700043aa8ed6""#;
const LAST_MODIFIED_STR: &str = "Sun, 21 Oct 2007 23:21:47 GMT";
const NEWER: &str = "Mon, 18 Oct 2010 16:56:23 GMT";
const INVALID: &str = "Mon, 32 Oct 2010 16:56:23 GMT";
const OLDER: &str = "Sat, 20 Oct 2007 23:21:47 GMT";

/// The current validators of one of the routes of Django's conditional_processing tests.
#[derive(Clone, Copy, Debug)]
enum Route {
    /// `/condition/`: ETag and Last-Modified.
    Condition,
    /// `/condition/last_modified/` and `/last_modified2/`: Last-Modified only.
    LastModified,
    /// `/condition/etag/` and `/etag2/`: ETag only.
    Etag,
    /// `/condition/unquoted_etag/`: the ETag function returns the tag without quotes.
    UnquotedEtag,
    /// `/condition/weak_etag/`: a weak ETag only.
    WeakEtag,
    /// `/condition/no_etag/`: the ETag function returns nothing.
    NoEtag,
}

impl Route {
    fn etag(self) -> Option<EntityTag> {
        match self {
            Route::Condition | Route::Etag => Some(EntityTag::quote(ETAG_VALUE)),
            Route::UnquotedEtag => Some(EntityTag::quote(ETAG_VALUE.trim_matches('"'))),
            Route::WeakEtag => Some(EntityTag::quote(WEAK_ETAG)),
            Route::LastModified | Route::NoEtag => None,
        }
    }

    fn last_modified(self) -> Option<SystemTime> {
        match self {
            Route::Condition | Route::LastModified => Some(at(1_193_008_907)),
            _ => None,
        }
    }
}

use Precondition::{NotModified as NM, PreconditionFailed as FAILED, Proceed as FULL};

fn evaluate(method: &Method, route: Route, request: &[(HeaderName, &str)]) -> Precondition {
    evaluate_preconditions(
        method,
        &headers(request),
        route.etag().as_ref(),
        route.last_modified(),
    )
}

/// One case: name, method, route, request headers, expected outcome.
type Case<'a> = (
    &'a str,
    &'a Method,
    Route,
    Vec<(HeaderName, &'a str)>,
    Precondition,
);

/// Every request of Django's conditional_processing tests, with the routes' decorator variants,
/// as (method, route, request headers) → outcome. "Full" there is `Proceed` here.
#[test]
fn conditional_processing_cases() {
    let get = Method::GET;
    let put = Method::PUT;
    let head = Method::HEAD;
    let inm_both = format!("{ETAG_VALUE}, {EXPIRED_ETAG}");
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        ("1 no conditions", &get, Route::Condition, vec![], FULL),
        ("2 IMS=LM GET", &get, Route::Condition, vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR)], NM),
        ("2 IMS=LM PUT", &put, Route::Condition, vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR)], FULL),
        ("2 IMS=NEWER GET", &get, Route::Condition, vec![(IF_MODIFIED_SINCE, NEWER)], NM),
        ("2 IMS=NEWER PUT", &put, Route::Condition, vec![(IF_MODIFIED_SINCE, NEWER)], FULL),
        ("2 IMS=INVALID", &get, Route::Condition, vec![(IF_MODIFIED_SINCE, INVALID)], FULL),
        ("2 IMS=OLDER", &get, Route::Condition, vec![(IF_MODIFIED_SINCE, OLDER)], FULL),
        ("3 IUS=LM", &get, Route::Condition, vec![(IF_UNMODIFIED_SINCE, LAST_MODIFIED_STR)], FULL),
        ("3 IUS=NEWER", &get, Route::Condition, vec![(IF_UNMODIFIED_SINCE, NEWER)], FULL),
        ("3 IUS=INVALID", &get, Route::Condition, vec![(IF_UNMODIFIED_SINCE, INVALID)], FULL),
        ("3 IUS=OLDER", &get, Route::Condition, vec![(IF_UNMODIFIED_SINCE, OLDER)], FAILED),
        ("4 INM=ETAG GET", &get, Route::Condition, vec![(IF_NONE_MATCH, ETAG_VALUE)], NM),
        ("4 INM=ETAG PUT", &put, Route::Condition, vec![(IF_NONE_MATCH, ETAG_VALUE)], FAILED),
        ("4 INM=EXPIRED", &get, Route::Condition, vec![(IF_NONE_MATCH, EXPIRED_ETAG)], FULL),
        ("4 INM=ETAG,EXPIRED", &get, Route::Condition, vec![(IF_NONE_MATCH, &inm_both)], NM),
        ("5 INM=ETAG weak GET", &get, Route::WeakEtag, vec![(IF_NONE_MATCH, ETAG_VALUE)], NM),
        ("5 INM=ETAG weak PUT", &put, Route::WeakEtag, vec![(IF_NONE_MATCH, ETAG_VALUE)], FAILED),
        ("5 INM=WEAK weak GET", &get, Route::WeakEtag, vec![(IF_NONE_MATCH, WEAK_ETAG)], NM),
        ("5 INM=WEAK weak PUT", &put, Route::WeakEtag, vec![(IF_NONE_MATCH, WEAK_ETAG)], FAILED),
        ("5 INM=WEAK GET", &get, Route::Condition, vec![(IF_NONE_MATCH, WEAK_ETAG)], NM),
        ("5 INM=WEAK PUT", &put, Route::Condition, vec![(IF_NONE_MATCH, WEAK_ETAG)], FAILED),
        ("6 INM=* GET", &get, Route::Condition, vec![(IF_NONE_MATCH, "*")], NM),
        ("6 INM=* PUT", &put, Route::Condition, vec![(IF_NONE_MATCH, "*")], FAILED),
        ("6 INM=* no etag", &get, Route::NoEtag, vec![(IF_NONE_MATCH, "*")], FULL),
        ("7 IM=ETAG PUT", &put, Route::Condition, vec![(IF_MATCH, ETAG_VALUE)], FULL),
        ("7 IM=EXPIRED PUT", &put, Route::Condition, vec![(IF_MATCH, EXPIRED_ETAG)], FAILED),
        ("8 IM=ETAG weak", &get, Route::WeakEtag, vec![(IF_MATCH, ETAG_VALUE)], FAILED),
        ("8 IM=WEAK weak", &get, Route::WeakEtag, vec![(IF_MATCH, WEAK_ETAG)], FAILED),
        ("8 IM=WEAK", &get, Route::Condition, vec![(IF_MATCH, WEAK_ETAG)], FAILED),
        ("9 IM=*", &get, Route::Condition, vec![(IF_MATCH, "*")], FULL),
        ("9 IM=* no etag", &get, Route::NoEtag, vec![(IF_MATCH, "*")], FAILED),
        ("10 IMS=LM INM=ETAG", &get, Route::Condition,
            vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR), (IF_NONE_MATCH, ETAG_VALUE)], NM),
        ("10 IMS=OLDER INM=ETAG", &get, Route::Condition,
            vec![(IF_MODIFIED_SINCE, OLDER), (IF_NONE_MATCH, ETAG_VALUE)], NM),
        ("10 IMS=LM INM=EXPIRED", &get, Route::Condition,
            vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR), (IF_NONE_MATCH, EXPIRED_ETAG)], FULL),
        ("10 IMS=OLDER INM=EXPIRED", &get, Route::Condition,
            vec![(IF_MODIFIED_SINCE, OLDER), (IF_NONE_MATCH, EXPIRED_ETAG)], FULL),
        ("11 IUS=LM IM=ETAG", &get, Route::Condition,
            vec![(IF_UNMODIFIED_SINCE, LAST_MODIFIED_STR), (IF_MATCH, ETAG_VALUE)], FULL),
        ("11 IUS=OLDER IM=ETAG", &get, Route::Condition,
            vec![(IF_UNMODIFIED_SINCE, OLDER), (IF_MATCH, ETAG_VALUE)], FULL),
        ("11 IUS=OLDER IM=EXPIRED", &get, Route::Condition,
            vec![(IF_UNMODIFIED_SINCE, OLDER), (IF_MATCH, EXPIRED_ETAG)], FAILED),
        ("11 IUS=LM IM=EXPIRED", &get, Route::Condition,
            vec![(IF_UNMODIFIED_SINCE, LAST_MODIFIED_STR), (IF_MATCH, EXPIRED_ETAG)], FAILED),
        ("12.1 IMS=LM last_modified", &get, Route::LastModified,
            vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR)], NM),
        ("12.1 IMS=LM etag", &get, Route::Etag, vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR)], FULL),
        ("12.2 INM=ETAG etag", &get, Route::Etag, vec![(IF_NONE_MATCH, ETAG_VALUE)], NM),
        ("12.2 INM=ETAG last_modified", &get, Route::LastModified,
            vec![(IF_NONE_MATCH, ETAG_VALUE)], FULL),
        ("12.3 IMS=OLDER last_modified", &get, Route::LastModified,
            vec![(IF_MODIFIED_SINCE, OLDER)], FULL),
        ("12.4 INM=EXPIRED etag", &get, Route::Etag, vec![(IF_NONE_MATCH, EXPIRED_ETAG)], FULL),
        ("12.5 IMS=LM last_modified2", &get, Route::LastModified,
            vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR)], NM),
        ("12.5 IMS=LM etag2", &get, Route::Etag, vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR)], FULL),
        ("12.6 INM=ETAG etag2", &get, Route::Etag, vec![(IF_NONE_MATCH, ETAG_VALUE)], NM),
        ("12.6 INM=ETAG last_modified2", &get, Route::LastModified,
            vec![(IF_NONE_MATCH, ETAG_VALUE)], FULL),
        ("12.7 IUS=OLDER last_modified", &get, Route::LastModified,
            vec![(IF_UNMODIFIED_SINCE, OLDER)], FAILED),
        ("12.7 IUS=OLDER etag", &get, Route::Etag, vec![(IF_UNMODIFIED_SINCE, OLDER)], FAILED),
        ("12.8 IUS=LM last_modified", &get, Route::LastModified,
            vec![(IF_UNMODIFIED_SINCE, LAST_MODIFIED_STR)], FULL),
        ("12.9 IUS=OLDER last_modified2", &get, Route::LastModified,
            vec![(IF_UNMODIFIED_SINCE, OLDER)], FAILED),
        ("12.9 IUS=OLDER etag2", &get, Route::Etag, vec![(IF_UNMODIFIED_SINCE, OLDER)], FAILED),
        ("13 HEAD IMS=LM", &head, Route::Condition, vec![(IF_MODIFIED_SINCE, LAST_MODIFIED_STR)], NM),
        ("15 INM=ETAG unquoted GET", &get, Route::UnquotedEtag, vec![(IF_NONE_MATCH, ETAG_VALUE)], NM),
        ("15 INM=ETAG unquoted PUT", &put, Route::UnquotedEtag, vec![(IF_NONE_MATCH, ETAG_VALUE)], FAILED),
        ("15 INM=EXPIRED unquoted", &get, Route::UnquotedEtag, vec![(IF_NONE_MATCH, EXPIRED_ETAG)], FULL),
        ("16 INM invalid", &get, Route::Etag, vec![(IF_NONE_MATCH, r#"""""#)], FULL),
    ];
    for (name, method, route, request, expected) in &cases {
        assert_eq!(evaluate(method, *route, request), *expected, "{name}");
    }
}

/// The results Django's decorator gives with `condition(etag="abc")`.
#[test]
fn condition_decorator_cases() {
    let abc = EntityTag::quote("abc");
    let evaluate = |method: Method, request: &[(HeaderName, &str)]| {
        evaluate_preconditions(&method, &headers(request), Some(&abc), None)
    };
    assert_eq!(
        evaluate(Method::GET, &[(IF_NONE_MATCH, r#""zzz", W/"abc""#)]),
        NM
    );
    assert_eq!(evaluate(Method::PUT, &[(IF_MATCH, r#""abc""#)]), FULL);
    assert_eq!(evaluate(Method::GET, &[(IF_MATCH, r#""zzz""#)]), FAILED);
    assert_eq!(evaluate(Method::DELETE, &[(IF_NONE_MATCH, "*")]), FAILED);
    assert_eq!(evaluate(Method::POST, &[(IF_NONE_MATCH, r#""zzz""#)]), FULL);
}

/// Quoting the tag a route returns unquoted gives the quoted route's tag.
#[test]
fn unquoted_etags_are_quoted() {
    assert_eq!(Route::UnquotedEtag.etag(), Route::Etag.etag());
    assert_eq!(
        Route::UnquotedEtag.etag().unwrap().to_header_value(),
        ETAG_VALUE
    );
}

/// Django's ConditionalGetMiddleware cases that are evaluations: a response's ETag and
/// Last-Modified against the request.
#[test]
fn conditional_get_evaluations() {
    let spam = EntityTag::parse(r#""spam""#);
    let eval = |request: &[(HeaderName, &str)], etag: Option<&EntityTag>, lm: Option<&str>| {
        let last_modified = lm.map(|lm| parse_http_date(lm).unwrap());
        evaluate_preconditions(&Method::GET, &headers(request), etag, last_modified)
    };
    // An unquoted If-None-Match is no condition.
    let computed = EntityTag::quote("31a17fbf85aaca78fa5e019fdbc432df");
    assert_eq!(
        eval(&[(IF_NONE_MATCH, "spam")], Some(&computed), None),
        FULL
    );
    // A quoted If-None-Match that matches the response's tag.
    assert_eq!(
        eval(&[(IF_NONE_MATCH, r#""spam""#)], spam.as_ref(), None),
        NM
    );
    // If-Modified-Since without Last-Modified.
    let ims = "Sat, 12 Feb 2011 17:38:44 GMT";
    assert_eq!(
        eval(&[(IF_MODIFIED_SINCE, ims)], Some(&computed), None),
        FULL
    );
    // Last-Modified without If-Modified-Since.
    assert_eq!(eval(&[], None, Some(ims)), FULL);
    // Last-Modified equal to, before and after If-Modified-Since.
    assert_eq!(eval(&[(IF_MODIFIED_SINCE, ims)], None, Some(ims)), NM);
    let earlier = "Sat, 12 Feb 2011 17:35:44 GMT";
    assert_eq!(eval(&[(IF_MODIFIED_SINCE, ims)], None, Some(earlier)), NM);
    let later = "Sat, 12 Feb 2011 17:41:44 GMT";
    assert_eq!(eval(&[(IF_MODIFIED_SINCE, ims)], None, Some(later)), FULL);
}

/// The headers a 304 keeps: the ones Django's ConditionalGetMiddleware keeps.
#[test]
fn not_modified_keeps_djangos_header_set() {
    let original = headers(&[
        (DATE, "Sat, 12 Feb 2011 17:35:44 GMT"),
        (LAST_MODIFIED, "Sat, 12 Feb 2011 17:35:44 GMT"),
        (EXPIRES, "Sun, 13 Feb 2011 17:35:44 GMT"),
        (VARY, "Cookie"),
        (CACHE_CONTROL, "public"),
        (CONTENT_LOCATION, "/alt"),
        (CONTENT_LANGUAGE, "en"),
        (ETAG, r#""spam""#),
        (SET_COOKIE, "key=value; Path=/"),
        (SET_COOKIE, "other=1"),
    ]);
    let request = headers(&[(IF_NONE_MATCH, r#""spam""#)]);
    let etag = EntityTag::parse(original[ETAG].to_str().unwrap());
    assert_eq!(
        evaluate_preconditions(&Method::GET, &request, etag.as_ref(), None),
        NM
    );

    let kept = not_modified_headers(&original);
    for name in [
        CACHE_CONTROL,
        CONTENT_LOCATION,
        DATE,
        ETAG,
        EXPIRES,
        LAST_MODIFIED,
        VARY,
        SET_COOKIE,
    ] {
        assert_eq!(
            kept.get_all(&name).iter().collect::<Vec<_>>(),
            original.get_all(&name).iter().collect::<Vec<_>>(),
            "{name}"
        );
    }
    assert!(!kept.contains_key(CONTENT_LANGUAGE));
    assert_eq!(kept.len(), 9);
}

/// Django's `parse_etags` cases, through `parse_etag_list`.
#[test]
fn etag_lists() {
    let list = |value: &str| parse_etag_list(&headers(&[(IF_NONE_MATCH, value)]), IF_NONE_MATCH);
    let tags = |tags: &[&str]| {
        Some(EntityTagList::Tags(
            tags.iter()
                .map(|tag| EntityTag::parse(tag).unwrap())
                .collect(),
        ))
    };
    assert_eq!(
        list(r#""" ,  "etag", "e\\tag", W/"weak""#),
        tags(&[r#""""#, r#""etag""#, r#""e\\tag""#, r#"W/"weak""#])
    );
    assert_eq!(list("*"), Some(EntityTagList::Any));
    assert_eq!(list(" * "), Some(EntityTagList::Any));
    assert_eq!(list(r#""etag", "e\"t\"ag""#), tags(&[r#""etag""#]));
    assert_eq!(list("spam"), None);
    assert_eq!(parse_etag_list(&HeaderMap::new(), IF_NONE_MATCH), None);
}

/// Django's `quote_etag` cases, through `EntityTag::quote`.
#[test]
fn quoting() {
    assert_eq!(EntityTag::quote("etag").to_string(), r#""etag""#);
    assert_eq!(EntityTag::quote(r#""etag""#).to_string(), r#""etag""#);
    assert_eq!(EntityTag::quote(r#"W/"etag""#).to_string(), r#"W/"etag""#);
    assert!(EntityTag::quote(r#"W/"etag""#).is_weak());
}

mod dates {
    use super::*;

    /// 1994-11-06 08:49:37 UTC.
    const NOV_6_1994: i64 = 784_111_777;

    #[test]
    fn http_date_formats_imf_fixdate() {
        assert_eq!(
            fmt_http_date(at(1_167_616_461)),
            "Mon, 01 Jan 2007 01:54:21 GMT"
        );
    }

    #[test]
    fn rfc1123() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(at(NOV_6_1994))
        );
    }

    #[test]
    fn rfc850_two_digit_years_depend_on_now() {
        let now_2019 = at(1_573_030_177);
        let now_2020 = at(1_604_652_577);
        let now_2048 = at(2_488_265_377);
        let cases = [
            (now_2019, "Tuesday, 31-Dec-69 08:49:37 GMT", 3_155_705_377),
            (now_2019, "Tuesday, 10-Nov-70 08:49:37 GMT", 27_074_977),
            (now_2019, "Sunday, 06-Nov-94 08:49:37 GMT", NOV_6_1994),
            (now_2020, "Wednesday, 31-Dec-70 08:49:37 GMT", 3_187_241_377),
            (now_2020, "Friday, 31-Dec-71 08:49:37 GMT", 63_017_377),
            (now_2048, "Sunday, 31-Dec-00 08:49:37 GMT", 978_252_577),
            (now_2048, "Friday, 31-Dec-99 08:49:37 GMT", 946_630_177),
        ];
        for (now, value, expected) in cases {
            assert_eq!(
                parse_http_date_at(value, now),
                Some(at(expected)),
                "{value}"
            );
        }
    }

    #[test]
    fn asctime() {
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(at(NOV_6_1994))
        );
    }

    #[test]
    fn non_ascii_digits_are_rejected() {
        for value in [
            "Sun Nov  ６ 08:49:37 1994",
            "Sun, ０6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-9٤ 08:49:37 GMT",
            "Sun Nov  6 08:49:37 １994",
        ] {
            assert_eq!(parse_http_date(value), None, "{value}");
        }
    }

    #[test]
    fn a_four_digit_year_below_100_is_a_two_digit_year() {
        let now_2019 = at(1_573_030_177);
        assert_eq!(
            parse_http_date_at("Sun Nov  6 08:49:37 0037", now_2019),
            Some(at(2_141_110_177))
        );
    }

    #[test]
    fn an_invalid_date_is_absent() {
        assert_eq!(parse_http_date(INVALID), None);
        assert_eq!(parse_http_date("tomorrow"), None);
    }
}

/// Strings that hit the parsers' corners.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 ,\"\\\\\t*/W:-]{0,40}",
        proptest::collection::vec(
            prop::sample::select(vec![
                "\"", "W/", ",", " ", "*", "abc", "é", "\u{0}", "Sun", "Nov", "06", "-", ":",
                "GMT", "1994", "94", " 6",
            ]),
            0..12,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn header_lines(name: HeaderName) -> impl Strategy<Value = HeaderMap> {
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        tricky_string().prop_map(String::into_bytes),
    ]
    .prop_filter_map("not a header value", |bytes| {
        HeaderValue::from_bytes(&bytes).ok()
    });
    proptest::collection::vec(value, 0..4).prop_map(move |values| {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), value);
        }
        headers
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![Method::GET, Method::HEAD, Method::PUT, Method::POST])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn etag_lists_never_panic_and_tags_round_trip(headers in header_lines(IF_MATCH)) {
        if let Some(EntityTagList::Tags(tags)) = parse_etag_list(&headers, IF_MATCH) {
            prop_assert!(!tags.is_empty());
            for tag in tags {
                let written = tag.to_header_value();
                let text = tag.to_string();
                prop_assert_eq!(&written, text.as_str());
                let reread = EntityTag::parse(&String::from_utf8_lossy(written.as_bytes()));
                prop_assert_eq!(reread, Some(tag));
            }
        }
    }

    #[test]
    fn quote_always_gives_a_valid_one_to_one_tag(a in tricky_string(), b in tricky_string()) {
        let quoted = EntityTag::quote(&a);
        let written = quoted.to_header_value();
        let text = quoted.to_string();
        prop_assert_eq!(written, text.as_str());
        prop_assert_eq!(EntityTag::parse(&text), Some(quoted.clone()));
        if a != b && EntityTag::parse(&a).is_none() && EntityTag::parse(&b).is_none() {
            prop_assert_ne!(quoted, EntityTag::quote(&b));
        }
    }

    #[test]
    fn constructors_accept_exactly_what_can_be_written(tag in tricky_string()) {
        if let Ok(strong) = EntityTag::strong(tag.clone()) {
            let text = strong.to_string();
            prop_assert_eq!(EntityTag::parse(&text), Some(strong.clone()));
            prop_assert_eq!(strong.to_header_value(), text.as_str());
        } else {
            prop_assert!(tag.contains(|c: char| c == '"' || c == ' ' || c.is_ascii_control()));
        }
    }

    #[test]
    fn date_parsing_never_panics(value in tricky_string(), now in any::<i64>()) {
        let now = UNIX_EPOCH.checked_add(Duration::from_secs(now.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH);
        let _ = parse_http_date(&value);
        if let Some(time) = parse_http_date_at(&value, now) {
            let _ = fmt_http_date(time);
        }
    }

    #[test]
    fn formatted_dates_parse_back_in_all_three_formats(seconds in 0_i64..253_402_300_800) {
        let time = at(seconds);
        let imf = fmt_http_date(time);
        prop_assert_eq!(parse_http_date(&imf), Some(time));
        // `Sun, 06 Nov 1994 08:49:37 GMT` → `Sun Nov  6 08:49:37 1994`
        let parts: Vec<&str> = imf.split(' ').collect();
        let day = parts[1].trim_start_matches('0');
        let asctime = format!("{} {} {:>2} {} {}", &parts[0][..3], parts[2], day, parts[4], parts[3]);
        prop_assert_eq!(parse_http_date(&asctime), Some(time), "{}", asctime);
    }

    #[test]
    fn evaluation_never_panics(
        method in method(),
        if_match in header_lines(IF_MATCH),
        if_none_match in header_lines(IF_NONE_MATCH),
        dates in proptest::collection::vec(tricky_string(), 2),
        etag in proptest::option::of(tricky_string()),
        last_modified in proptest::option::of(any::<i64>()),
    ) {
        let mut request = if_match;
        request.extend(if_none_match);
        for (name, value) in [IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE].into_iter().zip(&dates) {
            if let Ok(value) = HeaderValue::from_str(value) {
                request.insert(name, value);
            }
        }
        let etag = etag.map(|tag| EntityTag::quote(&tag));
        let last_modified = last_modified.and_then(|s| {
            UNIX_EPOCH.checked_add(Duration::from_secs(s.unsigned_abs()))
        });
        let _ = evaluate_preconditions(&method, &request, etag.as_ref(), last_modified);
        let _ = not_modified_headers(&request);
    }
}
