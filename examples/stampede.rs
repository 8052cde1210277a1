//! A cold burst on one page, with and without stampede protection: origin calls and latency.
//!
//! The origin is an expensive page behind a small pool (10 connections, as a database pool
//! would be), so a stampede queues at the pool.
//!
//! ```text
//! cargo run --release --example stampede            # 500 concurrent requests, 100 ms origin
//! REQUESTS=2000 ORIGIN_MS=50 POOL=20 cargo run --release --example stampede
//! ```
//!
//! Everything runs in this process (axum router, in-memory store); no network is involved.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

struct Run {
    origin_calls: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    total: Duration,
}

async fn burst(coalesce: bool, requests: usize, origin_time: Duration, pool: usize) -> Run {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let pool = Arc::new(tokio::sync::Semaphore::new(pool));
    let app = Router::new()
        .route(
            "/report",
            get(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                let pool = Arc::clone(&pool);
                async move {
                    // An expensive page: a slow query on a connection from the pool.
                    let _connection = pool.acquire().await.expect("pool");
                    tokio::time::sleep(origin_time).await;
                    "the report"
                }
            }),
        )
        .layer(CacheLayer::new(Cache::new(MemoryStore::new())).coalesce(coalesce));
    let started = Instant::now();
    let tasks: Vec<_> = (0..requests)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let sent = Instant::now();
                let request = Request::builder()
                    .uri("/report")
                    .header("host", "example.com")
                    .body(Body::empty())
                    .expect("request");
                let response = app.oneshot(request).await.expect("response");
                let body = response.into_body().collect().await.expect("body");
                assert_eq!(body.to_bytes(), "the report");
                sent.elapsed()
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.push(task.await.expect("request task"));
    }
    let total = started.elapsed();
    latencies.sort();
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction) as usize];
    Run {
        origin_calls: calls.load(Ordering::Relaxed),
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        total,
    }
}

#[tokio::main]
async fn main() {
    let requests = setting("REQUESTS", 500) as usize;
    let origin_time = Duration::from_millis(setting("ORIGIN_MS", 100));
    let pool = setting("POOL", 10) as usize;
    println!(
        "cold burst: {requests} concurrent requests for one uncached page; \
         the origin takes {origin_time:?} on one of {pool} pooled connections\n"
    );
    println!(
        "{:<22} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "", "origin calls", "p50", "p99", "max", "total"
    );
    for (label, coalesce) in [("without protection", false), ("with coalescing", true)] {
        let run = burst(coalesce, requests, origin_time, pool).await;
        println!(
            "{label:<22} {:>12} {:>10.1?} {:>10.1?} {:>10.1?} {:>10.1?}",
            run.origin_calls, run.p50, run.p99, run.max, run.total
        );
    }
}
