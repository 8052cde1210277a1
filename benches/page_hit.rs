//! A page hit through `CacheLayer` + `MemoryStore` against a handler returning ready bytes, and
//! the overhead of a miss that stores, all in one run.
//!
//! The per-site cache is measured where Django's per-site middleware sits: around the whole
//! router (`CacheLayer::around`), so that a hit is answered before routing. The same layer added
//! with `Router::layer` runs after routing, as `cache_page` on a route does; a layer that does
//! nothing, added the same way, shows what any Tower layer costs there, apart from the cache's
//! own work.
//!
//! Run with `cargo bench --bench page_hit`.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use axum::routing::get;
use axum_cache::page::CachedRouter;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer, CacheStatus};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::util::MapResponseLayer;
use tower::{Service, ServiceExt};

static PAGE: [u8; 2048] = [b'x'; 2048];

fn bare() -> Router {
    Router::new().route("/page", get(|| async { Bytes::from_static(&PAGE) }))
}

/// The same route behind a layer that does nothing: the least any Tower layer adds, for reading
/// the cache's own share of a hit.
fn identity_layered() -> Router {
    bare().layer(MapResponseLayer::new(|response: Response| response))
}

fn cache_layer() -> CacheLayer {
    CacheLayer::new(Cache::new(
        MemoryStore::builder().max_entries(10_000).build(),
    ))
}

/// The cache after routing: `Router::layer` wraps each route.
fn route_cached() -> Router {
    bare().layer(cache_layer())
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

async fn fetch<S, B>(service: &S, uri: &str) -> Bytes
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service
        .clone()
        .oneshot(request(uri))
        .await
        .expect("response");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// What the cache did with a request for the page.
async fn status<S, B>(service: &S) -> Option<CacheStatus>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
{
    let response = service
        .clone()
        .oneshot(request("/page"))
        .await
        .expect("response");
    response.extensions().get::<CacheStatus>().copied()
}

fn page_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Routers as `axum::serve` runs them: `with_state(())` turns every handler into a route
    // once, instead of on each request. The per-site cache goes around the whole router, as
    // `axum::serve(listener, site.into_make_service())` serves it.
    let site = cache_layer().around(bare().with_state::<()>(()));
    let bare = bare().with_state::<()>(());
    let identity = identity_layered().with_state::<()>(());
    let route_cached = route_cached().with_state::<()>(());
    for _ in 0..2 {
        assert_eq!(rt.block_on(fetch(&site, "/page")).len(), PAGE.len());
        assert_eq!(rt.block_on(fetch(&route_cached, "/page")).len(), PAGE.len());
    }
    assert_eq!(rt.block_on(status(&site)), Some(CacheStatus::Hit));
    assert_eq!(rt.block_on(status(&route_cached)), Some(CacheStatus::Hit));

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
            .iter(|| async { black_box(fetch(&site, "/page").await) })
    });
    group.bench_function("route_layer_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(fetch(&route_cached, "/page").await) })
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
            black_box(fetch(&site, &uri).await)
        })
    });
    group.finish();

    // The miss benchmark filled the store since: make sure the page is still there.
    assert_eq!(rt.block_on(status(&site)), Some(CacheStatus::Hit));
    if common::wants_rounds() {
        rt.block_on(interleaved_rounds(&bare, &identity, &site, &route_cached));
    }
}

/// Requests per interleaved round of each kind, and rounds.
const ROUND: u32 = 20_000;
const ROUNDS: usize = 25;

/// Nanoseconds per request over `count` requests.
async fn per_request<S, B>(service: &S, count: u32) -> f64
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let started = Instant::now();
    for _ in 0..count {
        black_box(fetch(service, "/page").await);
    }
    started.elapsed().as_secs_f64() * 1e9 / f64::from(count)
}

/// The ratios to the bare handler, from rounds that take turns, so that the machine's speed
/// changing during the run (it does, on a shared machine) affects every kind alike: the median
/// of each round's ratio, and the range.
async fn interleaved_rounds(
    bare: &Router,
    identity: &Router,
    site: &CachedRouter,
    route_cached: &Router,
) {
    let mut times: [Vec<f64>; 4] = Default::default();
    for round in 0..ROUNDS {
        // Each round starts with another kind, so that none always runs first or last.
        for turn in 0..times.len() {
            let kind = (round + turn) % times.len();
            let time = match kind {
                0 => per_request(bare, ROUND).await,
                1 => per_request(identity, ROUND).await,
                2 => per_request(site, ROUND).await,
                _ => per_request(route_cached, ROUND).await,
            };
            times[kind].push(time);
        }
    }
    println!("\ninterleaved rounds: {ROUNDS} x {ROUND} requests of each, taking turns");
    let names = [
        "bare handler",
        "identity layer (Router::layer)",
        "CacheLayer::around hit",
        "CacheLayer via Router::layer hit",
    ];
    for (kind, name) in names.iter().enumerate() {
        let mut ratios: Vec<f64> = times[kind]
            .iter()
            .zip(&times[0])
            .map(|(time, bare)| time / bare)
            .collect();
        let (low, high) = ratios.iter().fold((f64::MAX, f64::MIN), |(low, high), r| {
            (low.min(*r), high.max(*r))
        });
        println!(
            "  {name:34} {:7.0} ns/request (median)   {:.2}x the bare handler \
             (median of rounds; {low:.2}-{high:.2})",
            common::median(&mut times[kind].clone()),
            common::median(&mut ratios),
        );
    }
}

criterion_group!(benches, page_hit);
criterion_main!(benches);
