//! The axum-cache demo: a small site cached per route, per site and with the low-level API.
//!
//! ```text
//! cargo run --example demo            # listens on 127.0.0.1:3000, or on $PORT
//! curl -si localhost:3000/slow        # 1 s the first time (MISS), then instant (HIT) for 30 s
//! ```
//!
//! Everything lives in an in-memory store; no other service is needed. Each request is printed
//! with what the cache did, and responses carry an RFC 9211 `Cache-Status` header.

use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, ServiceExt};
use axum_cache::conditional::fmt_http_date;
use axum_cache::headers::add_never_cache_headers;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer, Timeout, cache_page};
use serde::{Deserialize, Serialize};
use tower::Layer;

#[derive(Clone)]
struct AppState {
    cache: Cache,
    store: MemoryStore,
}

/// A page that takes a second to build, cached for 30 s by `cache_page`.
async fn slow() -> String {
    tokio::time::sleep(Duration::from_secs(1)).await;
    format!("Built at {}\n", fmt_http_date(SystemTime::now()))
}

/// A page for each visitor: it says `Vary: Cookie`, so the cache keeps one copy per cookie.
async fn me(headers: HeaderMap) -> impl IntoResponse {
    let user = headers
        .get(header::COOKIE)
        .and_then(|cookie| cookie.to_str().ok())
        .and_then(|cookies| {
            cookies
                .split(';')
                .find_map(|pair| pair.trim().strip_prefix("user="))
        })
        .unwrap_or("stranger")
        .to_owned();
    (
        [(header::VARY, "Cookie")],
        format!(
            "Hello, {user}! Built at {}\n",
            fmt_http_date(SystemTime::now())
        ),
    )
}

/// A page that must never be cached, anywhere: Django's `never_cache` headers.
async fn now() -> Response {
    let mut response = format!("It is {}\n", fmt_http_date(SystemTime::now())).into_response();
    add_never_cache_headers(response.headers_mut(), SystemTime::now());
    response
}

/// Something expensive to compute, kept with the low-level API.
#[derive(Clone, Serialize, Deserialize)]
struct Report {
    generated_at_unix: u64,
    primes_below_two_million: usize,
}

#[derive(Serialize)]
struct Timed<T> {
    took_ms: f64,
    #[serde(flatten)]
    value: T,
}

async fn report(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let report: Report = state
        .cache
        .get_or_set("report", Timeout::secs(30), || async {
            println!("computing the report (cache miss)");
            tokio::task::spawn_blocking(compute_report)
                .await
                .expect("report computation panicked")
        })
        .await
        .expect("the in-memory store does not fail");
    let timed = Timed {
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        value: report,
    };
    uncached(Json(timed))
}

fn compute_report() -> Report {
    // A deliberately slow sieve, plus a pause so the miss is visible.
    let limit = 2_000_000;
    let mut composite = vec![false; limit];
    let mut primes = 0;
    for n in 2..limit {
        if !composite[n] {
            primes += 1;
            for multiple in (n * n..limit).step_by(n) {
                composite[multiple] = true;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    Report {
        generated_at_unix: SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        primes_below_two_million: primes,
    }
}

#[derive(Serialize)]
struct Hits {
    hits: i64,
}

async fn hits(State(state): State<AppState>) -> Response {
    // `add` creates the counter once; `incr` is atomic however many requests race.
    state
        .cache
        .add("hits", &0, Timeout::Never)
        .await
        .expect("add");
    let hits = state.cache.incr("hits", 1).await.expect("incr");
    uncached(Json(Hits { hits }))
}

#[derive(Serialize)]
struct Stats {
    entries: usize,
    bytes: usize,
}

async fn stats(State(state): State<AppState>) -> Response {
    uncached(Json(Stats {
        entries: state.store.entry_count(),
        bytes: state.store.size_bytes(),
    }))
}

/// The JSON endpoints change on every call, so they tell every cache (ours included) to keep
/// out.
fn uncached(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    add_never_cache_headers(response.headers_mut(), SystemTime::now());
    response
}

async fn index() -> &'static str {
    "axum-cache demo\n\
     GET /slow    1 s to build; cache_page keeps it 30 s\n\
     GET /me      one copy per visitor (Vary: Cookie); try -H 'Cookie: user=ada'\n\
     GET /now     never cached (Cache-Control: no-store, ...)\n\
     GET /report  a slow computation kept with Cache::get_or_set\n\
     GET /hits    a counter kept with add + incr\n\
     GET /stats   what the memory store holds\n"
}

/// Prints each request with the cache's verdict.
async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let line = format!("{} {}", request.method(), request.uri());
    let response = next.run(request).await;
    let status = response
        .headers()
        .get("cache-status")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    println!(
        "{line} -> {} in {:.1} ms [{status}]",
        response.status(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

#[tokio::main]
async fn main() {
    let store = MemoryStore::builder().max_bytes(64 << 20).build();
    let cache = Cache::builder(store.clone()).key_prefix("demo").build();
    let state = AppState {
        cache: cache.clone(),
        store,
    };
    let app = Router::new()
        .route(
            "/slow",
            get(slow).layer(cache_page(&cache, Duration::from_secs(30)).cache_status_header(true)),
        )
        .route("/", get(index))
        .route("/me", get(me))
        .route("/now", get(now))
        .route("/report", get(report))
        .route("/hits", get(hits))
        .route("/stats", get(stats))
        .with_state(state);
    // Per-site: every cacheable response for 60 s (the per-route layer inside wins for /slow),
    // answered before routing. The log goes around it, to see hits too.
    let site = CacheLayer::new(cache)
        .timeout(Duration::from_secs(60))
        .cache_status_header(true)
        .around(app);
    let site = middleware::from_fn(log).layer(site);

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let address = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    println!("axum-cache demo listening on http://{address}");
    println!("  curl -si http://{address}/slow    # twice: MISS (1 s), then HIT");
    println!("  curl -s -H 'Cookie: user=ada' http://{address}/me");
    println!("  curl -si http://{address}/now");
    println!("  curl -s http://{address}/report   # twice: the second is instant");
    println!("  curl -s http://{address}/hits");
    axum::serve(listener, site.into_make_service())
        .await
        .expect("server error");
}
