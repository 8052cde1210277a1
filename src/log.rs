//! Diagnostics, emitted through `tracing` when the `tracing` feature is on.

use crate::store::StoreError;

/// A store operation failed; the caller carries on (a miss, or an error value).
pub(crate) fn store_failure(operation: &'static str, key: &str, error: &StoreError) {
    #[cfg(feature = "tracing")]
    tracing::warn!(operation, key, %error, "cache store operation failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (operation, key, error);
}

/// A stored value did not decode; it is deleted and read as a miss.
pub(crate) fn undecodable(key: &str, reason: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(key, reason, "cached value does not decode; deleting it");
    #[cfg(not(feature = "tracing"))]
    let _ = (key, reason);
}

/// What the response cache did with a request.
pub(crate) fn page_outcome(status: crate::CacheStatus) {
    #[cfg(feature = "tracing")]
    tracing::debug!(?status, "response cache");
    #[cfg(not(feature = "tracing"))]
    let _ = status;
}

/// A response the cache decided to store has been written (or handed to a writer task).
pub(crate) fn page_stored(key: &str, ttl: std::time::Duration) {
    #[cfg(feature = "tracing")]
    tracing::debug!(key, ?ttl, "response stored");
    #[cfg(not(feature = "tracing"))]
    let _ = (key, ttl);
}

/// A response could not be stored in a remote store because no tokio runtime was running.
pub(crate) fn no_runtime() {
    #[cfg(feature = "tracing")]
    tracing::warn!("no tokio runtime to write the cached response; not stored");
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
