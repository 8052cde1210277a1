//! What the response cache did with a request.

use http::HeaderValue;

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
    /// evaluate (RFC 9111 §4.3.2: they do not apply to a cache).
    Precondition,
}

impl NotStored {
    fn detail(self) -> &'static str {
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
    fn detail(self) -> &'static str {
        match self {
            Bypass::Method => "method",
            Bypass::Host => "host",
            Bypass::Precondition => "precondition",
        }
    }
}

/// Whether a miss found nothing for the URL, or only variants for other request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissKind {
    Uri,
    Vary,
}

/// The RFC 9211 `Cache-Status` value for an outcome.
pub(crate) fn cache_status_value(status: CacheStatus, miss: MissKind) -> HeaderValue {
    let fwd = match miss {
        MissKind::Uri => "uri-miss",
        MissKind::Vary => "vary-miss",
    };
    let text = match status {
        CacheStatus::Hit => return HeaderValue::from_static("axum-cache; hit"),
        CacheStatus::Stale(Stale::WhileRevalidate) => {
            return HeaderValue::from_static("axum-cache; hit; fwd=stale; detail=while-revalidate");
        }
        CacheStatus::Stale(Stale::IfError) => {
            return HeaderValue::from_static("axum-cache; hit; fwd=stale; detail=if-error");
        }
        CacheStatus::Stored => format!("axum-cache; fwd={fwd}; stored"),
        CacheStatus::Miss(reason) => format!("axum-cache; fwd={fwd}; detail={}", reason.detail()),
        CacheStatus::Bypass(reason) => {
            format!("axum-cache; fwd=bypass; detail={}", reason.detail())
        }
    };
    // Built from fixed ASCII tokens only.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("axum-cache"))
}
