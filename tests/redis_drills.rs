//! Outage drills: a real axum app with the response cache on Redis, under concurrent load, while
//! the test kills, hangs and restarts its own `redis-server`. Each phase asserts on counts and
//! latency bounds; nothing waits on a fixed sleep.
//!
//! The load goes through `tower::ServiceExt::oneshot` on a two-worker multi-thread runtime, not
//! through a socket: what is measured is what the cache layer and the store add to a request,
//! without an HTTP client and server of the test's own sharing the machine's two cores with it.
//!
//! Run with `cargo test --all-features --test redis_drills -- --nocapture` to see the figures.
#![cfg(feature = "redis")]

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum_cache::store::{RedisStats, RedisStore, Store};
use axum_cache::{Cache, CacheLayer, CacheStatus};
use bytes::Bytes;
use http_body_util::BodyExt;
use support::redis::{self, RedisServer};
use tower::ServiceExt;

/// The store's command timeout in these drills: what a hung Redis may add to one request.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(100);
/// Consecutive failures that open the breaker (the default).
const FAILURES: u32 = 5;
/// How long the breaker stays open before it lets one probe through.
const COOL_DOWN: Duration = Duration::from_millis(250);
/// Scheduling slack on a busy two-core machine, on top of the command timeout.
const MARGIN: Duration = Duration::from_millis(150);
/// "Near zero": what the bulk of requests (p90) may take while the breaker is open. A request
/// answered by the origin in process takes tens of microseconds; this leaves room for a loaded
/// machine and is still a fifth of the timeout.
const NEAR_ZERO: Duration = Duration::from_millis(20);
/// How soon after Redis is back hits must resume.
const RECOVERY: Duration = Duration::from_secs(5);
/// The most one drill may take before it fails instead of hanging CI.
const DRILL_DEADLINE: Duration = Duration::from_secs(60);

/// Concurrent clients, and the requests each sends per phase at least.
const CLIENTS: usize = 24;
const PER_CLIENT: usize = 40;
const REQUESTS: usize = CLIENTS * PER_CLIENT;
/// How long an outage phase keeps the load on, so that the breaker goes through several
/// cool-downs and probes; and the most requests a client sends in it.
const OUTAGE_SPAN: Duration = Duration::from_secs(1);
/// A hung server is kept under load longer: past the store's check for unresponsive
/// connections (1 s here), which drops them and reconnects to a server that accepts the TCP
/// connection and then answers nothing.
const HUNG_SPAN: Duration = Duration::from_secs(2);
const MAX_PER_CLIENT: usize = 8_000;
/// Distinct cacheable pages, and users of the `Vary: Cookie` page.
const PAGES: usize = 8;
const USERS: usize = 4;

/// Drills run one at a time: two load tests at once on two cores would measure each other.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `body` against a server of its own, alone, on a fresh runtime, within the deadline.
/// Skips (or fails under `REQUIRE_REDIS=1`) without `redis-server`.
fn drill<F, Fut>(body: F)
where
    F: FnOnce(RedisServer) -> Fut,
    Fut: Future<Output = ()>,
{
    let _alone = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = redis::own_server() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(DRILL_DEADLINE, body(server))
            .await
            .expect("the drill finishes within its deadline");
    });
}

/// Origin calls per route.
#[derive(Default)]
struct Origin {
    pages: AtomicUsize,
    dashboards: AtomicUsize,
}

impl Origin {
    fn calls(&self) -> usize {
        self.pages.load(Ordering::SeqCst) + self.dashboards.load(Ordering::SeqCst)
    }
}

async fn page(Path(id): Path<usize>, State(origin): State<Arc<Origin>>) -> String {
    origin.pages.fetch_add(1, Ordering::SeqCst);
    format!("page {id}")
}

/// A page per user: varies on `Cookie`, so a remote lookup reads the variant list, then the
/// variant.
async fn dashboard(headers: HeaderMap, State(origin): State<Arc<Origin>>) -> impl IntoResponse {
    origin.dashboards.fetch_add(1, Ordering::SeqCst);
    let user = headers
        .get(header::COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|cookie| cookie.strip_prefix("user="))
        .unwrap_or("anonymous")
        .to_owned();
    ([(header::VARY, "Cookie")], format!("dashboard of {user}"))
}

/// The app under test and the handles the drills look through.
struct Site {
    app: Router,
    cache: Cache,
    store: RedisStore,
    origin: Arc<Origin>,
}

async fn site(server: &RedisServer, prefix: &str) -> Site {
    let store = RedisStore::builder(server.url())
        .prefix(prefix)
        .command_timeout(COMMAND_TIMEOUT)
        .breaker(FAILURES, COOL_DOWN)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .await
        .expect("connects");
    let cache = Cache::new(store.clone());
    let origin = Arc::new(Origin::default());
    let app = Router::new()
        .route("/page/{id}", get(page))
        .route("/dashboard", get(dashboard))
        .with_state(Arc::clone(&origin))
        .layer(CacheLayer::new(cache.clone()));
    Site {
        app,
        cache,
        store,
        origin,
    }
}

/// Request number `n` of a phase, and the body the origin gives for it: two in three go to the
/// pages, one in three to a user's dashboard.
fn nth(n: usize) -> (Request<Body>, String) {
    let builder = Request::builder().header(header::HOST, "drill.example.com");
    if n % 3 == 2 {
        let user = format!("u{}", n % USERS);
        let request = builder
            .uri("/dashboard")
            .header(header::COOKIE, format!("user={user}"))
            .body(Body::empty())
            .expect("request");
        (request, format!("dashboard of {user}"))
    } else {
        let id = n % PAGES;
        let request = builder
            .uri(format!("/page/{id}"))
            .body(Body::empty())
            .expect("request");
        (request, format!("page {id}"))
    }
}

/// One request's fate.
struct Sample {
    status: StatusCode,
    correct: bool,
    cache: Option<CacheStatus>,
    latency: Duration,
}

async fn send(app: &Router, n: usize) -> Sample {
    let (request, expected) = nth(n);
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let cache = response.extensions().get::<CacheStatus>().copied();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Sample {
        status,
        correct: body == expected.as_bytes(),
        cache,
        latency: started.elapsed(),
    }
}

/// What a phase of load saw.
struct Phase {
    name: &'static str,
    samples: Vec<Sample>,
    origin_calls: usize,
    store_errors: u64,
    took: Duration,
}

impl Phase {
    fn hits(&self) -> usize {
        self.samples
            .iter()
            .filter(|sample| sample.cache == Some(CacheStatus::Hit))
            .count()
    }

    fn failed(&self) -> usize {
        self.samples
            .iter()
            .filter(|sample| sample.status != StatusCode::OK)
            .count()
    }

    fn wrong(&self) -> usize {
        self.samples.iter().filter(|sample| !sample.correct).count()
    }

    /// The latency below which `fraction` of the requests finished.
    fn percentile(&self, fraction: f64) -> Duration {
        let mut latencies: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        latencies.sort();
        let rank = ((fraction * latencies.len() as f64).ceil() as usize).max(1);
        latencies[rank.min(latencies.len()) - 1]
    }

    fn slower_than(&self, bound: Duration) -> usize {
        self.samples
            .iter()
            .filter(|sample| sample.latency > bound)
            .count()
    }

    fn report(&self, stats: RedisStats) {
        println!(
            "{}: {} requests in {:?} ({:.0}/s): {} hits, {} origin calls, {} non-200, {} wrong \
             bodies, {} store errors; latency p50 {:?} p90 {:?} p99 {:?} max {:?}; {stats:?}",
            self.name,
            self.samples.len(),
            self.took,
            self.samples.len() as f64 / self.took.as_secs_f64(),
            self.hits(),
            self.origin_calls,
            self.failed(),
            self.wrong(),
            self.store_errors,
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(0.99),
            self.percentile(1.0),
        );
    }

    /// Every request got the origin's own page with a 200, whatever the store did.
    fn assert_all_correct(&self) {
        assert_eq!(self.failed(), 0, "{}: non-200 responses", self.name);
        assert_eq!(self.wrong(), 0, "{}: wrong bodies", self.name);
    }
}

/// Sends requests from [`CLIENTS`] concurrent clients, each one request at a time, back to back:
/// [`PER_CLIENT`] each, and more until `span` has passed (at most [`MAX_PER_CLIENT`] each).
async fn load(name: &'static str, site: &Site, span: Duration) -> Phase {
    let calls_before = site.origin.calls();
    let errors_before = site.cache.store_errors();
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let app = site.app.clone();
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(PER_CLIENT);
                for round in 0..MAX_PER_CLIENT {
                    if round >= PER_CLIENT && started.elapsed() >= span {
                        break;
                    }
                    samples.push(send(&app, round * CLIENTS + client).await);
                    // A request that fails fast and is answered in process never waits, so
                    // without this a client would hold its worker thread for the whole phase
                    // and starve the timers of the requests that do wait. A real client yields
                    // here, reading the next request from its socket.
                    tokio::task::yield_now().await;
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for client in clients {
        samples.extend(client.await.expect("client task"));
    }
    let phase = Phase {
        name,
        samples,
        origin_calls: site.origin.calls() - calls_before,
        store_errors: site.cache.store_errors() - errors_before,
        took: started.elapsed(),
    };
    phase.report(site.store.stats());
    phase
}

/// Warms the cache and checks it serves: most requests are hits, the origin is rarely called.
/// Concurrent first misses each call the origin (there is no miss coalescing yet), and a miss's
/// write lands in a background task after its body ends, so a few dozen origin calls are normal.
async fn warm(site: &Site) -> Phase {
    let phase = load("warm", site, Duration::ZERO).await;
    phase.assert_all_correct();
    assert!(
        phase.origin_calls * 8 < REQUESTS,
        "warm: the origin answered {} of {REQUESTS}",
        phase.origin_calls
    );
    assert!(
        phase.hits() * 4 > REQUESTS * 3,
        "warm: only {} hits of {REQUESTS}",
        phase.hits()
    );
    assert_eq!(phase.store_errors, 0, "warm: store errors");
    phase
}

/// Sends requests for one page and one dashboard until both are hits again; returns how long
/// that took. Redis may come back empty, so a round can be a miss that stores, and the store
/// write happens in the background after the body: the next round finds it.
async fn hits_resume(site: &Site, what: &str) -> Duration {
    let started = Instant::now();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let page = send(&site.app, 0).await;
        let dashboard = send(&site.app, 2).await;
        for sample in [&page, &dashboard] {
            assert_eq!(sample.status, StatusCode::OK, "{what}: during recovery");
            assert!(sample.correct, "{what}: wrong body during recovery");
        }
        if page.cache == Some(CacheStatus::Hit) && dashboard.cache == Some(CacheStatus::Hit) {
            let took = started.elapsed();
            println!(
                "{what}: hits resumed after {took:?} ({rounds} rounds); {:?}",
                site.store.stats()
            );
            return took;
        }
        assert!(
            started.elapsed() < RECOVERY,
            "{what}: no hits within {RECOVERY:?} ({rounds} rounds); {:?}",
            site.store.stats()
        );
        // Pacing, not synchronisation: the loop ends on the first round that hits.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// After recovery the cache serves the load again, and the breaker is closed.
async fn serves_again(site: &Site) {
    let phase = load("after recovery", site, Duration::ZERO).await;
    phase.assert_all_correct();
    assert!(
        phase.hits() * 4 > REQUESTS * 3,
        "after recovery: only {} hits of {REQUESTS}",
        phase.hits()
    );
    assert!(!site.store.stats().breaker_open);
}

/// Redis killed (SIGKILL) under load: every request still gets the origin's page with a 200,
/// none waits longer than the command timeout, the breaker opens and the bulk of requests pay
/// nothing; restarted (empty), hits resume within seconds without restarting the app.
#[test]
fn killed_redis_costs_nothing_and_hits_resume_after_restart() {
    drill(|mut server| async move {
        let site = site(&server, "drill-kill").await;
        warm(&site).await;

        server.kill();
        let down = load("killed", &site, OUTAGE_SPAN).await;
        down.assert_all_correct();
        let sent = down.samples.len();
        let stats = site.store.stats();
        assert_eq!(down.hits(), 0, "nothing can be a hit with Redis gone");
        assert_eq!(down.origin_calls, sent, "the origin answers every request");
        assert!(stats.breaker_opens >= 1, "the breaker opened: {stats:?}");
        assert!(
            stats.fast_failed > 0,
            "the breaker refused calls: {stats:?}"
        );
        assert!(
            down.store_errors >= sent as u64,
            "each failed lookup is counted: {} for {sent} requests",
            down.store_errors
        );
        let worst = down.percentile(1.0);
        assert!(
            worst <= COMMAND_TIMEOUT + MARGIN,
            "killed: the slowest request took {worst:?}"
        );
        let p90 = down.percentile(0.9);
        assert!(p90 <= NEAR_ZERO, "killed: p90 {p90:?}");

        // Still down, the breaker open from the start: near zero for the bulk, and all but the
        // breaker's probes are refused without asking Redis.
        let open = load("killed, breaker open", &site, OUTAGE_SPAN).await;
        open.assert_all_correct();
        let p90 = open.percentile(0.9);
        assert!(p90 <= NEAR_ZERO, "breaker open: p90 {p90:?}");
        let worst = open.percentile(1.0);
        assert!(
            worst <= COMMAND_TIMEOUT + MARGIN,
            "breaker open: the slowest request took {worst:?}"
        );
        let refused = site.store.stats().fast_failed - stats.fast_failed;
        assert!(
            refused * 10 >= open.samples.len() as u64 * 9,
            "breaker open: only {refused} calls refused at once for {} requests",
            open.samples.len()
        );

        server.restart();
        let took = hits_resume(&site, "restarted").await;
        assert!(took < RECOVERY);
        serves_again(&site).await;
    });
}

/// Redis hung (SIGSTOP: connections stay open, nothing answers) under load: every request still
/// gets the origin's page; a request waits at most the command timeout; once the breaker is
/// open the bulk pays nothing, and only the first wave and the breaker's probes wait; resumed
/// (SIGCONT), hits resume within seconds.
#[test]
fn hung_redis_costs_at_most_the_timeout_then_nothing() {
    drill(|server| async move {
        let site = site(&server, "drill-stop").await;
        warm(&site).await;
        let before = site.store.stats();

        server.pause();
        let hung = load("hung", &site, HUNG_SPAN).await;
        server.resume();
        hung.assert_all_correct();
        let stats = site.store.stats();
        assert_eq!(hung.origin_calls, hung.samples.len());
        assert!(
            stats.timeouts >= before.timeouts + u64::from(FAILURES),
            "lookups timed out: {stats:?}"
        );
        assert!(stats.breaker_opens > before.breaker_opens, "{stats:?}");
        assert!(stats.fast_failed > before.fast_failed, "{stats:?}");
        let worst = hung.percentile(1.0);
        assert!(
            worst >= COMMAND_TIMEOUT,
            "hung: some request met the hung server ({worst:?})"
        );
        assert!(
            worst <= COMMAND_TIMEOUT + MARGIN,
            "hung: the slowest request took {worst:?}"
        );
        let p90 = hung.percentile(0.9);
        assert!(p90 <= NEAR_ZERO, "hung: p90 {p90:?}");
        // Who waits: the requests in flight when Redis stopped answering (one per client); the
        // next requests of clients whose lookup failed before the breaker counted enough
        // failures to open (at most FAILURES - 1); and after each cool-down the one call let
        // through as a probe.
        let waited = hung.slower_than(COMMAND_TIMEOUT / 2);
        let probes = (hung.took.as_millis() / COOL_DOWN.as_millis()) as usize + 1;
        let allowed = CLIENTS + FAILURES as usize - 1 + probes;
        println!("hung: {waited} requests waited for the timeout (allowed {allowed})");
        assert!(
            waited <= allowed,
            "hung: {waited} requests waited for the timeout (allowed {allowed})"
        );

        let took = hits_resume(&site, "resumed").await;
        assert!(took < RECOVERY);
        serves_again(&site).await;
    });
}

/// Records under the page cache's Redis keys that it did not write, or that were cut short, are
/// misses answered by the origin (never a panic, never a wrong page), and the next miss
/// overwrites them, so hits come back by themselves.
#[test]
fn garbage_under_page_keys_is_a_miss_and_heals() {
    drill(|server| async move {
        let prefix = "junk";
        let site = site(&server, prefix).await;
        hits_resume(&site, "warm").await;
        // The page's entry; the dashboard's variant list and the variant of request 2's user.
        let keys: Vec<String> = server
            .cli(&["--scan", "--pattern", &format!("{prefix}:*")])
            .lines()
            .map(|key| key[prefix.len() + 1..].to_owned())
            .collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        let mut real = Vec::new();
        for key in &keys {
            real.push(site.store.get(key).await.unwrap().expect("stored"));
        }
        let variant_list = keys
            .iter()
            .zip(&real)
            .find(|(key, _)| key.contains("/dashboard") && !key.contains("|"))
            .map(|(_, bytes)| bytes.clone())
            .expect("the dashboard's variant list");

        for (key, original) in keys.iter().zip(&real) {
            let request = if key.contains("/page/0") { 0 } else { 2 };
            let mut future = original.to_vec();
            future[0] = future[0].wrapping_add(1);
            let garbage: [(&str, Option<Bytes>); 7] = [
                ("foreign text", Some(Bytes::from_static(b"not a page"))),
                ("empty", Some(Bytes::new())),
                ("cut in half", Some(original.slice(..original.len() / 2))),
                ("one byte short", Some(original.slice(..original.len() - 1))),
                ("a newer format", Some(Bytes::from(future))),
                ("a variant list", Some(variant_list.clone())),
                ("a Redis hash", None),
            ];
            for (what, value) in garbage {
                if value.as_ref() == Some(original) {
                    continue;
                }
                let errors_before = site.cache.store_errors();
                match value {
                    Some(value) => site.store.set(key, value, None).await.unwrap(),
                    None => {
                        let full = format!("{prefix}:{key}");
                        server.cli(&["DEL", &full]);
                        server.cli(&["HSET", &full, "field", "value"]);
                    }
                }
                let sample = send(&site.app, request).await;
                assert_eq!(sample.status, StatusCode::OK, "{what} under {key}");
                assert!(sample.correct, "{what} under {key}: wrong body");
                assert_ne!(
                    sample.cache,
                    Some(CacheStatus::Hit),
                    "{what} under {key} was served"
                );
                if what == "a Redis hash" {
                    assert!(
                        site.cache.store_errors() > errors_before,
                        "a wrong-type reply is counted as a store error"
                    );
                }
                hits_resume(&site, "after garbage").await;
                // Back to the original records, for the next round.
                for (key, bytes) in keys.iter().zip(&real) {
                    site.store.set(key, bytes.clone(), None).await.unwrap();
                }
            }
        }
        assert_eq!(
            site.store.stats().failures,
            0,
            "garbage is no outage: the breaker never counted it"
        );
    });
}
