//! What the response cache did with a request.

use http::{HeaderName, HeaderValue};

/// The response header that says what caches did with a request.
pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// What the response cache did with a request, in the response's extensions.
///
/// ```
/// use axum_cache::CacheStatus;
/// # let response = http::Response::new(());
/// match response.extensions().get::<CacheStatus>() {
///     Some(CacheStatus::Hit) => { /* served from the cache */ }
///     Some(CacheStatus::Stored) => { /* a miss whose response is being stored */ }
///     Some(CacheStatus::Miss(reason)) => { /* a miss that is not stored, and why */ let _ = reason; }
///     Some(CacheStatus::Bypass(reason)) => { /* the cache was not consulted */ let _ = reason; }
///     Some(CacheStatus::Stale(why)) => { /* served past its freshness */ let _ = why; }
///     _ => { /* no cache layer on this route */ }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheStatus {
    /// Served from the cache; the inner service was not called.
    Hit,
    /// Not in the cache; the inner service's response is being stored. It is stored only if its
    /// body ends cleanly within the size limit.
    Stored,
    /// Not in the cache, and the inner service's response is not stored.
    Miss(NotStored),
    /// Served from the cache after its freshness ran out.
    Stale(Stale),
    /// The cache was not consulted and nothing is stored.
    Bypass(Bypass),
}

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotStored {
    /// The status code is not one the layer stores (by default only 200).
    Status,
    /// `Cache-Control` says `private`, `no-cache` or `no-store`.
    CacheControl,
    /// `Vary: *`: the response varies on something no request header shows.
    VaryStar,
    /// The response sets a cookie (see
    /// [`store_set_cookie`](crate::CacheLayer::store_set_cookie)).
    SetCookie,
    /// The timeout is zero: `max-age=0`, or a zero page timeout.
    ZeroTimeout,
    /// The body is known to be larger than [`max_body_size`](crate::CacheLayer::max_body_size).
    TooLarge,
    /// A server-sent event stream, which never ends.
    EventStream,
}

/// Why a stale page was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stale {
    /// Within its `stale-while-revalidate` window; a fresh copy is being fetched in the
    /// background.
    WhileRevalidate,
    /// Within its `stale-if-error` window, in place of a failed origin response.
    IfError,
}

/// Why the cache was not consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bypass {
    /// Only `GET` and `HEAD` are cached.
    Method,
    /// The request's host could not be used in a key: not valid text, malformed, given in
    /// several `Host` headers, or an absolute-form target (`GET http://a.example/`) whose
    /// authority is not the `Host` header.
    Host,
    /// The request carries `If-Match` or `If-Unmodified-Since`, which only the origin can
    /// evaluate (they do not apply to a cache).
    Precondition,
    /// The request has a body (a `GET` or `HEAD` with content), which the key does not cover:
    /// its response is neither looked up nor stored.
    Body,
}

impl NotStored {
    /// How many reasons there are.
    pub(crate) const COUNT: usize = 7;

    /// The reason's place among its counters, below [`COUNT`](NotStored::COUNT).
    pub(crate) fn index(self) -> usize {
        match self {
            NotStored::Status => 0,
            NotStored::CacheControl => 1,
            NotStored::VaryStar => 2,
            NotStored::SetCookie => 3,
            NotStored::ZeroTimeout => 4,
            NotStored::TooLarge => 5,
            NotStored::EventStream => 6,
        }
    }

    /// The reason as diagnostics and metrics name it.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            NotStored::Status => "status",
            NotStored::CacheControl => "cache-control",
            NotStored::VaryStar => "vary-star",
            NotStored::SetCookie => "set-cookie",
            NotStored::ZeroTimeout => "zero-timeout",
            NotStored::TooLarge => "too-large",
            NotStored::EventStream => "event-stream",
        }
    }
}

impl Bypass {
    /// How many reasons there are.
    pub(crate) const COUNT: usize = 4;

    /// The reason's place among its counters, below [`COUNT`](Bypass::COUNT).
    pub(crate) fn index(self) -> usize {
        match self {
            Bypass::Method => 0,
            Bypass::Host => 1,
            Bypass::Precondition => 2,
            Bypass::Body => 3,
        }
    }

    /// The reason as diagnostics and metrics name it.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Bypass::Method => "method",
            Bypass::Host => "host",
            Bypass::Precondition => "precondition",
            Bypass::Body => "body",
        }
    }
}

/// Whether a miss found nothing for the URL, or only variants for other request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissKind {
    Uri,
    Vary,
}

/// What a `Cache-Status` member tells besides the outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    /// For a response from the origin: whether the URL or only the variant was missing.
    pub(crate) miss: MissKind,
    /// The status of the origin's response, when the origin was asked.
    pub(crate) fwd_status: Option<http::StatusCode>,
    /// For a response from the cache: its remaining freshness in seconds (negative once stale).
    pub(crate) ttl: Option<i64>,
    /// The request waited for another request's fetch and got its stored response.
    pub(crate) collapsed: bool,
}

impl Member {
    /// A response from the cache; `collapsed` when the request waited for another's fetch.
    pub(crate) fn served(collapsed: bool) -> Member {
        Member {
            miss: MissKind::Uri,
            fwd_status: None,
            ttl: None,
            collapsed,
        }
    }

    /// A response from the origin, with its status.
    pub(crate) fn forwarded(miss: MissKind, status: http::StatusCode) -> Member {
        Member {
            miss,
            fwd_status: Some(status),
            ttl: None,
            collapsed: false,
        }
    }
}

/// The largest magnitude of a structured-field integer.
const MAX_SF_INTEGER: i64 = 999_999_999_999_999;

/// This cache's member of the `Cache-Status` field for an outcome, named `name` (already a
/// structured-field token or string, see [`cache_status_name`]). `hit` and `fwd` never appear
/// together: a stale page served while it is refreshed is a hit with a negative `ttl`, one
/// served because the origin failed is `fwd=stale`, and a request that waited for another's
/// fetch is `fwd=miss` with `collapsed`.
pub(crate) fn cache_status_value(name: &str, status: CacheStatus, member: Member) -> HeaderValue {
    use std::fmt::Write;
    let fwd = match member.miss {
        MissKind::Uri => "uri-miss",
        MissKind::Vary => "vary-miss",
    };
    let mut text = String::with_capacity(name.len() + 48);
    text.push_str(name);
    match status {
        CacheStatus::Hit | CacheStatus::Stale(Stale::WhileRevalidate) if member.collapsed => {
            text.push_str("; fwd=miss");
        }
        CacheStatus::Hit | CacheStatus::Stale(Stale::WhileRevalidate) => text.push_str("; hit"),
        CacheStatus::Stale(Stale::IfError) => text.push_str("; fwd=stale"),
        CacheStatus::Stored | CacheStatus::Miss(_) => {
            let _ = write!(text, "; fwd={fwd}");
        }
        CacheStatus::Bypass(Bypass::Method) => text.push_str("; fwd=method"),
        CacheStatus::Bypass(reason) => {
            let _ = write!(text, "; fwd=bypass; detail={}", reason.detail());
        }
    }
    if let Some(status) = member.fwd_status {
        let _ = write!(text, "; fwd-status={}", status.as_u16());
    }
    if let Some(ttl) = member.ttl {
        let _ = write!(text, "; ttl={}", ttl.clamp(-MAX_SF_INTEGER, MAX_SF_INTEGER));
    }
    match status {
        CacheStatus::Stored => text.push_str("; stored"),
        CacheStatus::Miss(reason) => {
            let _ = write!(text, "; detail={}", reason.detail());
        }
        _ => {}
    }
    if member.collapsed {
        text.push_str("; collapsed");
    }
    // Built from a checked name, fixed ASCII tokens and numbers only.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("axum-cache"))
}

/// A cache name as a `Cache-Status` member starts: the name itself when it is a
/// structured-field token (a letter or `*`, then token characters, `:` or `/`), otherwise a
/// quoted string with `"` and `\` escaped and anything but printable ASCII replaced by `?`.
pub(crate) fn cache_status_name(name: &str) -> String {
    let token = name.bytes().enumerate().all(|(at, byte)| {
        if at == 0 {
            byte.is_ascii_alphabetic() || byte == b'*'
        } else {
            byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&byte)
        }
    });
    if token && !name.is_empty() {
        return name.to_owned();
    }
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for character in name.chars() {
        match character {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(character);
            }
            ' '..='~' => quoted.push(character),
            _ => quoted.push('?'),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn value(status: CacheStatus, member: Member) -> String {
        cache_status_value("axum-cache", status, member)
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn served(ttl: i64, collapsed: bool) -> Member {
        Member {
            miss: MissKind::Uri,
            fwd_status: None,
            ttl: Some(ttl),
            collapsed,
        }
    }

    #[test]
    fn members_say_what_the_cache_did() {
        assert_eq!(
            value(CacheStatus::Hit, served(42, false)),
            "axum-cache; hit; ttl=42"
        );
        assert_eq!(
            value(
                CacheStatus::Stale(Stale::WhileRevalidate),
                served(-5, false)
            ),
            "axum-cache; hit; ttl=-5"
        );
        assert_eq!(
            value(CacheStatus::Hit, served(30, true)),
            "axum-cache; fwd=miss; ttl=30; collapsed"
        );
        let failed = Member {
            fwd_status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..served(-3, false)
        };
        assert_eq!(
            value(CacheStatus::Stale(Stale::IfError), failed),
            "axum-cache; fwd=stale; fwd-status=503; ttl=-3"
        );
        let origin = Member::forwarded(MissKind::Vary, StatusCode::OK);
        assert_eq!(
            value(CacheStatus::Stored, origin),
            "axum-cache; fwd=vary-miss; fwd-status=200; stored"
        );
        assert_eq!(
            value(CacheStatus::Miss(NotStored::SetCookie), origin),
            "axum-cache; fwd=vary-miss; fwd-status=200; detail=set-cookie"
        );
        assert_eq!(
            value(CacheStatus::Bypass(Bypass::Method), origin),
            "axum-cache; fwd=method; fwd-status=200"
        );
        assert_eq!(
            value(CacheStatus::Bypass(Bypass::Body), origin),
            "axum-cache; fwd=bypass; detail=body; fwd-status=200"
        );
        for status in [CacheStatus::Hit, CacheStatus::Stale(Stale::IfError)] {
            for collapsed in [false, true] {
                let text = value(status, served(1, collapsed));
                assert!(!(text.contains("hit") && text.contains("fwd")), "{text}");
            }
        }
        assert_eq!(
            value(CacheStatus::Hit, served(i64::MIN, false)),
            "axum-cache; hit; ttl=-999999999999999"
        );
    }

    #[test]
    fn names_are_tokens_or_quoted_strings() {
        assert_eq!(cache_status_name("edge-1"), "edge-1");
        assert_eq!(cache_status_name("ExampleCache/2"), "ExampleCache/2");
        assert_eq!(cache_status_name("my cache"), "\"my cache\"");
        assert_eq!(cache_status_name("1st"), "\"1st\"");
        assert_eq!(cache_status_name("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(cache_status_name("caché\n"), "\"cach??\"");
        assert_eq!(cache_status_name(""), "\"\"");
        for name in ["edge-1", "my cache", "a\"b", "caché\n", ""] {
            let member =
                cache_status_value(&cache_status_name(name), CacheStatus::Hit, served(1, false));
            assert!(member.to_str().is_ok());
        }
    }
}
