//! The axum-cache demo: a small site whose handlers use the low-level cache API.
//!
//! ```text
//! cargo run --example demo            # listens on 127.0.0.1:3000, or on $PORT
//! curl -s localhost:3000/report       # slow the first time, instant for the next 30 s
//! curl -s localhost:3000/hits         # an atomic counter
//! ```
//!
//! Everything lives in an in-memory store; no other service is needed.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, Timeout};
use serde::{Deserialize, Serialize};

#[derive(Clone)]
struct AppState {
    cache: Cache,
    store: MemoryStore,
}

/// Something expensive to compute.
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

async fn report(State(state): State<AppState>) -> Json<Timed<Report>> {
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
    Json(Timed {
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        value: report,
    })
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
        generated_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        primes_below_two_million: primes,
    }
}

#[derive(Serialize)]
struct Hits {
    hits: i64,
}

async fn hits(State(state): State<AppState>) -> Json<Hits> {
    // `add` creates the counter once; `incr` is atomic however many requests race.
    state
        .cache
        .add("hits", &0, Timeout::Never)
        .await
        .expect("add");
    let hits = state.cache.incr("hits", 1).await.expect("incr");
    Json(Hits { hits })
}

#[derive(Serialize)]
struct Stats {
    entries: usize,
    bytes: usize,
}

async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(Stats {
        entries: state.store.entry_count(),
        bytes: state.store.size_bytes(),
    })
}

async fn index() -> &'static str {
    "axum-cache demo\n\
     GET /report  slow the first time, then served from the cache for 30 s\n\
     GET /hits    a counter kept with add + incr\n\
     GET /stats   what the memory store holds\n"
}

#[tokio::main]
async fn main() {
    let store = MemoryStore::builder().max_bytes(64 << 20).build();
    let state = AppState {
        cache: Cache::builder(store.clone()).key_prefix("demo").build(),
        store,
    };
    let app = Router::new()
        .route("/", get(index))
        .route("/report", get(report))
        .route("/hits", get(hits))
        .route("/stats", get(stats))
        .with_state(state);

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let address = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    println!("axum-cache demo listening on http://{address}");
    println!("  curl -s http://{address}/report   # run twice: the second is instant");
    println!("  curl -s http://{address}/hits");
    println!("  curl -s http://{address}/stats");
    axum::serve(listener, app).await.expect("server error");
}
