//! A page hit through `CacheLayer` + `MemoryStore` against a handler returning ready bytes, and
//! the overhead of a miss that stores, all in one run. The same handler behind a layer that does
//! nothing shows what any Tower layer costs here, apart from the cache's own work.
//!
//! Run with `cargo bench --bench page_hit`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use axum::routing::get;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower::util::MapResponseLayer;

static PAGE: [u8; 2048] = [b'x'; 2048];

fn bare() -> Router {
    Router::new().route("/page", get(|| async { Bytes::from_static(&PAGE) }))
}

/// The same route behind a layer that does nothing: the least any Tower layer adds, for reading
/// the cache's own share of a hit.
fn identity_layered() -> Router {
    bare().layer(MapResponseLayer::new(|response: Response| response))
}

fn cached() -> Router {
    let store = MemoryStore::builder().max_entries(10_000).build();
    bare().layer(CacheLayer::new(Cache::new(store)))
}

fn request(uri: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .header("host", "bench.example.com")
        .header("accept-encoding", "gzip, br")
        .header("user-agent", "criterion")
        .body(Body::empty())
        .expect("request")
}

async fn fetch(app: &Router, uri: &str) -> Bytes {
    let response = app.clone().oneshot(request(uri)).await.expect("response");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

fn page_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Routers as `axum::serve` runs them: `with_state(())` turns every handler into a route
    // once, instead of on each request.
    let bare = bare().with_state::<()>(());
    let identity = identity_layered().with_state::<()>(());
    let cached = cached().with_state::<()>(());
    rt.block_on(fetch(&cached, "/page"));
    assert_eq!(rt.block_on(fetch(&cached, "/page")).len(), PAGE.len());

    let mut group = c.benchmark_group("page_hit");
    group.bench_function("bare_handler", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(fetch(&bare, "/page").await) })
    });
    group.bench_function("identity_layer", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(fetch(&identity, "/page").await) })
    });
    group.bench_function("cache_layer_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(fetch(&cached, "/page").await) })
    });
    group.finish();

    // Every request a different URL: the bare handler against a miss that stores the page.
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("page_miss");
    group.bench_function("bare_handler", |b| {
        b.to_async(&rt).iter(|| async {
            let uri = format!("/page?n={}", counter.fetch_add(1, Ordering::Relaxed));
            black_box(fetch(&bare, &uri).await)
        })
    });
    group.bench_function("cache_layer_miss_and_store", |b| {
        b.to_async(&rt).iter(|| async {
            let uri = format!("/page?n={}", counter.fetch_add(1, Ordering::Relaxed));
            black_box(fetch(&cached, &uri).await)
        })
    });
    group.finish();
}

criterion_group!(benches, page_hit);
criterion_main!(benches);
