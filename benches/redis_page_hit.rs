//! A page hit served from Redis against the physical limit: a raw `fred` `GET` of the very bytes
//! the cached page is stored as, at the same concurrency, in one run. The page hit goes through
//! the per-site cache around the router (`CacheLayer::around`), where a hit skips routing. More
//! figures show where the difference goes: `RedisStore::get` of the same key (the store's own
//! cost), a bare axum handler that answers with a raw `GET` of those bytes (the least any axum
//! app serving them from Redis pays, with no cache logic at all), and the same cache added with
//! `Router::layer` (a hit routed first).
//!
//! Run with `cargo bench --bench redis_page_hit --features redis`. It starts its own
//! `redis-server` on a free loopback port, and skips with a message if there is none.
//!
//! Every measurement keeps [`IN_FLIGHT`] operations in flight on a two-worker runtime (the
//! machine has two cores, and `redis-server` needs one of them too). After criterion's own
//! report, interleaved rounds of all five give the throughputs and the ratio printed last, so
//! that a change in the machine's load during the run affects all of them alike. The rounds
//! also print the CPU time this process spends per operation, a steadier figure than
//! throughput on a machine where the two busy workers and `redis-server` share two cores.
//!
//! The HTTP subjects get their requests and give their bodies as hyper would: request values
//! shared rather than copied, bodies read frame by frame (see [`request`] and [`body_bytes`]).

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::header::{ACCEPT_ENCODING, HOST, USER_AGENT};
use axum::http::{HeaderValue, Request, Uri};
use axum::routing::get;
use axum_cache::page::CachedRouter;
use axum_cache::store::{RedisStore, Store};
use axum_cache::{Cache, CacheLayer, CacheStatus};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fred::prelude::{Builder, ClientLike, Config, KeysInterface, Pool};
use http_body_util::BodyExt;
use support::redis::RedisServer;
use tower::ServiceExt;

/// Requests in flight at once, in every measurement.
const IN_FLIGHT: usize = 16;
/// Operations per interleaved round, and rounds of each kind.
const ROUND: u64 = 40_000;
const ROUNDS: usize = 15;
const PREFIX: &str = "bench";

static PAGE: [u8; 2048] = [b'x'; 2048];

/// A request as hyper hands one to the service: its URI and header values share the
/// connection's read buffer, so they are made here without copying (from static strings) rather
/// than through `Request::builder`, which copies each into an allocation of its own.
fn request() -> Request<Body> {
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = Uri::from_static("/page");
    let headers = request.headers_mut();
    headers.insert(HOST, HeaderValue::from_static("bench.example.com"));
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
    headers.insert(USER_AGENT, HeaderValue::from_static("criterion"));
    request
}

/// A response body's bytes, read as hyper writes a body out: frame by frame, with no buffer to
/// gather them in when there is only one.
async fn body_bytes(mut body: Body) -> Bytes {
    let mut bytes = Bytes::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.expect("body").into_data() else {
            continue;
        };
        bytes = if bytes.is_empty() {
            data
        } else {
            [bytes, data].concat().into()
        };
    }
    bytes
}

/// What is measured, set up once.
#[derive(Clone)]
struct Subjects {
    /// The per-site cache around the router (`CacheLayer::around`): a hit skips routing.
    app: CachedRouter,
    /// The same cache on the router (`Router::layer`): a hit is routed first.
    routed: Router,
    /// The same route without the cache: its handler answers with a raw `GET` of the page's
    /// stored bytes.
    bare: Router,
    store: RedisStore,
    pool: Pool,
    /// The cached page's Redis key, with and without the store's prefix.
    redis_key: Arc<str>,
    store_key: Arc<str>,
    /// Page requests that were not hits (there should be none).
    not_hits: Arc<AtomicU64>,
}

impl Subjects {
    async fn raw_get(&self) -> Bytes {
        let value: Option<Bytes> = self.pool.get(&*self.redis_key).await.expect("GET");
        value.expect("the page is stored")
    }

    async fn store_get(&self) -> Bytes {
        let value = self.store.get(&self.store_key).await.expect("get");
        value.expect("the page is stored")
    }

    async fn bare_handler(&self) -> Bytes {
        let response = self
            .bare
            .clone()
            .oneshot(request())
            .await
            .expect("response");
        body_bytes(response.into_body()).await
    }

    async fn page_hit(&self) -> Bytes {
        let response = self.app.clone().oneshot(request()).await.expect("response");
        self.hit_body(response).await
    }

    async fn routed_page_hit(&self) -> Bytes {
        let response = self.routed.clone().oneshot(request()).await;
        self.hit_body(response.expect("response")).await
    }

    async fn hit_body(&self, response: axum::response::Response) -> Bytes {
        if response.extensions().get::<CacheStatus>() != Some(&CacheStatus::Hit) {
            self.not_hits.fetch_add(1, Ordering::Relaxed);
        }
        let body = body_bytes(response.into_body()).await;
        assert_eq!(
            body.len(),
            PAGE.len(),
            "a hit gave less than the whole page"
        );
        body
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    RawGet,
    StoreGet,
    BareHandler,
    PageHit,
    RoutedPageHit,
}

const KINDS: [(&str, Kind); 5] = [
    ("raw_fred_get", Kind::RawGet),
    ("redis_store_get", Kind::StoreGet),
    ("axum_handler_raw_get", Kind::BareHandler),
    ("cache_layer_hit", Kind::PageHit),
    ("route_layer_hit", Kind::RoutedPageHit),
];

/// CPU time this process's threads have used so far (on Linux, from `/proc`; `None` elsewhere).
/// `redis-server` is another process: what it spends per `GET` is the same whatever asks.
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Runs `count` operations of `kind` with [`IN_FLIGHT`] of them in flight, and returns how long
/// that took.
async fn run(subjects: &Subjects, kind: Kind, count: u64) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let subjects = subjects.clone();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let bytes = match kind {
                        Kind::RawGet => subjects.raw_get().await,
                        Kind::StoreGet => subjects.store_get().await,
                        Kind::BareHandler => subjects.bare_handler().await,
                        Kind::PageHit => subjects.page_hit().await,
                        Kind::RoutedPageHit => subjects.routed_page_hit().await,
                    };
                    black_box(bytes);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    started.elapsed()
}

async fn set_up(server: &RedisServer) -> Subjects {
    // The store's defaults: pool of 4, 100 ms command timeout, breaker.
    let store = RedisStore::builder(server.url())
        .prefix(PREFIX)
        .build()
        .await
        .expect("connects");
    // Routers as `axum::serve` runs them: `with_state(())` turns every handler into a route
    // once, instead of on each request.
    let origin = || Router::new().route("/page", get(|| async { Bytes::from_static(&PAGE) }));
    let layer = CacheLayer::new(Cache::new(store.clone()));
    let app = layer.around(origin().with_state::<()>(()));
    // Both layers key the page alike, so they hit the same record.
    let routed = origin().layer(layer).with_state::<()>(());
    // The raw client: the same server, the same number of connections.
    let pool = Builder::from_config(Config::from_url(&server.url()).expect("URL"))
        .build_pool(RedisStore::DEFAULT_POOL_SIZE)
        .expect("pool");
    pool.init().await.expect("connects");

    let subjects = Subjects {
        app,
        routed,
        bare: Router::new(),
        store,
        pool,
        redis_key: Arc::from(""),
        store_key: Arc::from(""),
        not_hits: Arc::new(AtomicU64::new(0)),
    };
    // Store the page, and wait until a request is answered from Redis (the write of a miss
    // happens in the background after its body).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = subjects
            .app
            .clone()
            .oneshot(request())
            .await
            .expect("response");
        let hit = response.extensions().get::<CacheStatus>() == Some(&CacheStatus::Hit);
        let body = body_bytes(response.into_body()).await;
        assert_eq!(body.len(), PAGE.len());
        if hit {
            break;
        }
        assert!(Instant::now() < deadline, "the page was never stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let keys = server.cli(&["--scan", "--pattern", &format!("{PREFIX}:*")]);
    let redis_key = keys.lines().next().expect("the page's key").to_owned();
    let store_key = redis_key[PREFIX.len() + 1..].to_owned();
    let raw = subjects.pool.clone();
    let key: Arc<str> = Arc::from(redis_key.as_str());
    let bare = Router::new()
        .route(
            "/page",
            get(move || {
                let (raw, key) = (raw.clone(), Arc::clone(&key));
                async move {
                    let value: Option<Bytes> = raw.get(&*key).await.expect("GET");
                    value.expect("the page is stored")
                }
            }),
        )
        .with_state::<()>(());
    let subjects = Subjects {
        bare,
        redis_key: Arc::from(redis_key),
        store_key: Arc::from(store_key),
        ..subjects
    };
    let stored = subjects.raw_get().await;
    println!(
        "page of {} bytes stored as {} bytes under {:?}; {IN_FLIGHT} requests in flight",
        PAGE.len(),
        stored.len(),
        &*subjects.redis_key
    );
    subjects
}

fn redis_page_hit(c: &mut Criterion) {
    let Some(server) = support::redis::own_server() else {
        println!("redis_page_hit: skipped, no redis-server on the PATH");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let subjects = rt.block_on(set_up(&server));

    let mut group = c.benchmark_group("redis_page_hit");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, kind) in KINDS {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(run(&subjects, kind, iters)))
        });
    }
    group.finish();

    if common::wants_rounds() {
        interleaved_rounds(&rt, &subjects);
    }
    let not_hits = subjects.not_hits.load(Ordering::Relaxed);
    assert_eq!(not_hits, 0, "{not_hits} page requests were not hits");
    drop(subjects);
    drop(rt);
    drop(server);
}

/// Rounds of every kind in turn (each round starting with another kind, so that none always
/// runs first or last), and the throughputs and ratios from them.
fn interleaved_rounds(rt: &tokio::runtime::Runtime, subjects: &Subjects) {
    let mut rates: [Vec<f64>; 5] = Default::default();
    let mut cpu: [Vec<f64>; 5] = Default::default();
    rt.block_on(async {
        for round in 0..ROUNDS {
            for turn in 0..KINDS.len() {
                let index = (round + turn) % KINDS.len();
                let cpu_before = process_cpu();
                let took = run(subjects, KINDS[index].1, ROUND).await;
                rates[index].push(ROUND as f64 / took.as_secs_f64());
                if let (Some(before), Some(after)) = (cpu_before, process_cpu()) {
                    cpu[index].push((after - before).as_secs_f64() * 1e6 / ROUND as f64);
                }
            }
        }
    });
    let ratios: Vec<f64> = rates[3]
        .iter()
        .zip(&rates[0])
        .map(|(page, raw)| page / raw)
        .collect();
    let over_bare: Vec<f64> = rates[3]
        .iter()
        .zip(&rates[2])
        .map(|(page, bare)| page / bare)
        .collect();
    let [raw, store, bare, page, routed] = rates.map(|mut rates| common::median(&mut rates));
    let ratio = common::median(&mut ratios.clone());
    let ratio_bare = common::median(&mut over_bare.clone());
    println!(
        "\nredis_page_hit, {ROUNDS} interleaved rounds of {ROUND}, {IN_FLIGHT} in flight (medians):"
    );
    println!("  raw fred GET          {raw:>9.0} req/s");
    println!(
        "  RedisStore::get       {store:>9.0} req/s  ({:.2}x raw)",
        store / raw
    );
    println!(
        "  axum handler, raw GET {bare:>9.0} req/s  ({:.2}x raw)",
        bare / raw
    );
    println!(
        "  CacheLayer::around hit {page:>8.0} req/s  ({ratio:.2}x raw, target 0.80x; \
         {ratio_bare:.2}x the bare handler)"
    );
    println!(
        "  Router::layer hit     {routed:>9.0} req/s  ({:.2}x raw)",
        routed / raw
    );
    if cpu.iter().all(|times| !times.is_empty()) {
        let [raw, store, bare, page, routed] = cpu.map(|mut times| common::median(&mut times));
        println!(
            "  this process's CPU per operation (medians; redis-server's is the same for all): \
             raw GET {raw:.2} us, RedisStore::get {store:.2} us, bare handler {bare:.2} us, \
             CacheLayer::around hit {page:.2} us, Router::layer hit {routed:.2} us"
        );
    }
    println!(
        "  page hit / raw GET per round: {}",
        ratios
            .iter()
            .map(|ratio| format!("{ratio:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

criterion_group!(benches, redis_page_hit);
criterion_main!(benches);
