//! Diagnostics, emitted through `tracing` when the `tracing` feature is on.
//!
//! No event carries a store key or a request value: keys can hold request values (a page's
//! query string, a key function's output), so an event names a key by its short hash
//! ([`ShortHash`]) and a page by its URL path, without the query.

#[cfg(feature = "tracing")]
use crate::util::ShortHash;

/// A store operation failed; the caller carries on (a miss, or an error value). `path` is the
/// URL path of the page concerned, if any.
pub(crate) fn store_failure(
    operation: &'static str,
    path: Option<&str>,
    key: &str,
    error: &dyn std::fmt::Display,
) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        operation,
        path,
        key_hash = %ShortHash(key),
        %error,
        "cache store operation failed"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (operation, path, key, error);
}

/// A stored value did not decode as what the reader wanted; it is read as a miss and left in
/// the store (another version of the application may read it).
pub(crate) fn undecodable(path: Option<&str>, key: &str, reason: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        path,
        key_hash = %ShortHash(key),
        reason,
        "cached value does not decode; read as a miss"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (path, key, reason);
}

/// A response the cache would store does not fit the stored form (too many tags, say): it is
/// passed on and not stored.
pub(crate) fn unencodable(path: &str, key: &str, reason: &dyn std::fmt::Display) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        path,
        key_hash = %ShortHash(key),
        %reason,
        "response not stored: it does not fit the stored form"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (path, key, reason);
}

/// What the response cache did with a request: an event, and the `outcome` of the request's
/// span (when it is the current one).
pub(crate) fn page_outcome(status: &dyn std::fmt::Debug) {
    #[cfg(feature = "tracing")]
    {
        tracing::Span::current().record("outcome", tracing::field::debug(status));
        tracing::debug!(?status, "response cache");
    }
    #[cfg(not(feature = "tracing"))]
    let _ = status;
}

/// The span of one request through a response cache: its method and URL path (never the query
/// or a header), then its `outcome` and, for a remote store, how long the store took to answer
/// the lookup (`store_micros`). Background work for the request runs in it too. Without the
/// `tracing` feature it is nothing and costs nothing.
#[derive(Clone, Debug)]
pub(crate) struct PageSpan(#[cfg(feature = "tracing")] tracing::Span);

impl PageSpan {
    pub(crate) fn new(request: &http::request::Parts) -> PageSpan {
        #[cfg(feature = "tracing")]
        return PageSpan(tracing::debug_span!(
            "response_cache",
            method = request.method.as_str(),
            path = request.uri.path(),
            outcome = tracing::field::Empty,
            store_micros = tracing::field::Empty,
        ));
        #[cfg(not(feature = "tracing"))]
        {
            let _ = request;
            PageSpan()
        }
    }

    /// The span the current code runs in, for work that goes on after the request.
    pub(crate) fn current() -> PageSpan {
        #[cfg(feature = "tracing")]
        return PageSpan(tracing::Span::current());
        #[cfg(not(feature = "tracing"))]
        PageSpan()
    }

    /// Enters the span until the guard is dropped.
    pub(crate) fn enter(&self) -> Entered<'_> {
        #[cfg(feature = "tracing")]
        return self.0.enter();
        #[cfg(not(feature = "tracing"))]
        Entered(std::marker::PhantomData)
    }

    /// Runs `f` inside the span.
    pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        #[cfg(feature = "tracing")]
        return self.0.in_scope(f);
        #[cfg(not(feature = "tracing"))]
        f()
    }

    /// `future`, polled inside the span.
    pub(crate) fn instrument<F: std::future::Future>(
        self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        return tracing::Instrument::instrument(future, self.0);
        #[cfg(not(feature = "tracing"))]
        future
    }
}

/// The guard of an entered [`PageSpan`].
#[cfg(feature = "tracing")]
pub(crate) type Entered<'a> = tracing::span::Entered<'a>;

/// The guard of an entered [`PageSpan`]: nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
pub(crate) struct Entered<'a>(std::marker::PhantomData<&'a ()>);

/// How long a remote store took to answer a page lookup, on the current request's span
/// (`store_micros`).
pub(crate) fn store_latency(took: std::time::Duration) {
    #[cfg(feature = "tracing")]
    tracing::Span::current().record(
        "store_micros",
        u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
    );
    #[cfg(not(feature = "tracing"))]
    let _ = took;
}

/// A response the cache decided to store has been written (or handed to a writer task).
pub(crate) fn page_stored(path: &str, key: &str, ttl: std::time::Duration) {
    #[cfg(feature = "tracing")]
    tracing::debug!(path, key_hash = %ShortHash(key), ?ttl, "response stored");
    #[cfg(not(feature = "tracing"))]
    let _ = (path, key, ttl);
}

/// Background work (a remote write, a refresh) could not start: no tokio runtime is running.
pub(crate) fn no_runtime() {
    #[cfg(feature = "tracing")]
    tracing::warn!("response cache: no tokio runtime for background work; skipped");
}

/// The Redis store's circuit breaker opened: calls fail fast until a probe succeeds.
#[cfg(feature = "redis")]
pub(crate) fn breaker_opened(cool_down: std::time::Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        ?cool_down,
        "Redis keeps failing; failing cache calls fast for a while"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = cool_down;
}

/// The Redis store's circuit breaker closed again: Redis answers.
#[cfg(feature = "redis")]
pub(crate) fn breaker_closed() {
    #[cfg(feature = "tracing")]
    tracing::info!("Redis answers again; cache calls go through");
}

/// Background work (a remote write, a refresh) was skipped: as many tasks as allowed run. At
/// debug level, since it happens under load, when a warning per request would add to it; the
/// layer's `background_skipped` counter is the signal to watch.
pub(crate) fn background_skipped(limit: usize) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        limit,
        "response cache: background work skipped, the bound on background tasks is reached"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = limit;
}

/// Background work (a remote write, a refresh) was stopped at its deadline.
pub(crate) fn background_timed_out(deadline: std::time::Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        ?deadline,
        "response cache: background work stopped at its deadline"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = deadline;
}
