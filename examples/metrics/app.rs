//! The router of the `metrics` example, shared with the test that scrapes it.

use axum::Router;
use axum::routing::get;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer};
use metrics_exporter_prometheus::PrometheusHandle;

/// Two pages behind a response cache named `pages`, and `/metrics` outside it, rendering what
/// the installed Prometheus recorder holds.
pub(crate) fn router(metrics: PrometheusHandle) -> Router {
    let cache = Cache::new(MemoryStore::new());
    let pages = Router::new()
        .route("/articles", get(|| async { "the articles" }))
        .route(
            "/me",
            get(|| async { ([("cache-control", "private")], "your page") }),
        )
        .layer(CacheLayer::new(cache).cache_status_name("pages"));
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
        .merge(pages)
}
