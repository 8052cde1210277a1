//! Stampede protection with counted origin calls: coalesced misses, hit-for-pass, stale serving,
//! early refresh, jitter, and the lock across processes on a real Redis.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::get;
use axum_cache::page::Stale;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer, CacheStatus, Timeout};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use support::clock::Clock;

/// Counts origin calls and holds them at a gate until the test opens it.
#[derive(Clone)]
struct Origin {
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Origin {
    fn gated() -> Origin {
        Origin {
            calls: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    fn open() -> Origin {
        let origin = Origin::gated();
        origin.release();
        origin
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Lets every waiting and future call through.
    fn release(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    /// Counts the call, waits at the gate, and answers `page <n>` with `headers`.
    async fn answer(&self, headers: &[(&'static str, &'static str)]) -> Response {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        drop(self.gate.acquire().await.expect("gate open"));
        let mut response = format!("page {n}").into_response();
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        response
    }
}

fn app(
    layer: CacheLayer,
    origin: &Origin,
    headers: &'static [(&'static str, &'static str)],
) -> Router {
    let origin = origin.clone();
    Router::new()
        .route(
            "/page",
            get(move || {
                let origin = origin.clone();
                async move { origin.answer(headers).await }
            }),
        )
        .layer(layer)
}

fn request() -> Request<Body> {
    request_with(Method::GET)
}

fn request_with(method: Method) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/page")
        .header("host", "example.com")
        .body(Body::empty())
        .expect("request")
}

struct Reply {
    status: StatusCode,
    body: String,
    cache: Option<CacheStatus>,
}

async fn send(app: &Router) -> Reply {
    send_with(app, Method::GET).await
}

async fn send_with(app: &Router, method: Method) -> Reply {
    let response = app
        .clone()
        .oneshot(request_with(method))
        .await
        .expect("infallible");
    let cache = response.extensions().get::<CacheStatus>().copied();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        body: String::from_utf8(body.to_vec()).expect("utf-8"),
        cache,
    }
}

/// Awaits every request of a burst and checks each got the one page the origin computed.
async fn every_reply_is_the_first_page(tasks: Vec<tokio::task::JoinHandle<Reply>>) {
    for task in tasks {
        let reply = task.await.expect("task");
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "page 1")
        );
    }
}

/// Yields until `ready` holds; the test fails (instead of hanging) if it does not within a
/// generous real-time bound.
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if ready() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// The reply to a request if it is ready at once, without waiting (an in-process store answers
/// hits synchronously). Used to watch for a background refresh landing without sending
/// requests that would wait themselves.
fn reply_now(app: &Router) -> Option<Reply> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut context = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(response)) = Box::pin(app.clone().oneshot(request()))
        .as_mut()
        .poll(&mut context)
    else {
        return None;
    };
    let cache = response.extensions().get::<CacheStatus>().copied();
    let status = response.status();
    let Poll::Ready(Ok(body)) = Box::pin(response.into_body().collect())
        .as_mut()
        .poll(&mut context)
    else {
        return None;
    };
    Some(Reply {
        status,
        body: String::from_utf8(body.to_bytes().to_vec()).ok()?,
        cache,
    })
}

/// `get_or_set` of the key `report`, computed by a counted call that waits at `origin`'s gate
/// and answers its call number.
async fn report(cache: &Cache, origin: &Origin) -> usize {
    cache
        .get_or_set("report", Timeout::Default, || async move {
            let n = origin.calls.fetch_add(1, Ordering::SeqCst) + 1;
            drop(origin.gate.acquire().await.expect("gate"));
            n
        })
        .await
        .expect("get_or_set")
}

mod coalescing {
    use super::*;

    async fn cold_burst(cache: Cache) {
        const REQUESTS: usize = 1000;
        let origin = Origin::gated();
        let layer = CacheLayer::new(cache);
        let app = app(layer.clone(), &origin, &[]);
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { send(&app).await })
            })
            .collect();
        // Every request but the first is waiting for it before the origin answers.
        until("999 requests waiting", || {
            layer.stats().coalesced == REQUESTS as u64 - 1 && origin.calls() == 1
        })
        .await;
        origin.release();
        every_reply_is_the_first_page(tasks).await;
        assert_eq!(origin.calls(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cold_burst_calls_the_origin_once() {
        cold_burst(Cache::new(MemoryStore::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cold_burst_on_a_remote_store_calls_the_origin_once() {
        cold_burst(Cache::new(support::stores::BytesOnly::default())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn get_or_set_computes_once_for_a_burst() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::gated();
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (cache, origin) = (cache.clone(), origin.clone());
                tokio::spawn(async move { report(&cache, &origin).await })
            })
            .collect();
        until("999 tasks waiting", || {
            cache.coalesced() == 999 && origin.calls() == 1
        })
        .await;
        origin.release();
        for task in tasks {
            assert_eq!(task.await.expect("task"), 1);
        }
        assert_eq!(origin.calls(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_that_panics_hands_over_to_a_waiter() {
        let cache = Cache::new(MemoryStore::new());
        let layer = CacheLayer::new(cache);
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let router = {
            let (calls, gate) = (Arc::clone(&calls), Arc::clone(&gate));
            Router::new()
                .route(
                    "/page",
                    get(move || {
                        let (calls, gate) = (Arc::clone(&calls), Arc::clone(&gate));
                        async move {
                            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                            drop(gate.acquire().await.expect("gate"));
                            assert!(n > 1, "the first origin call fails hard");
                            format!("page {n}")
                        }
                    }),
                )
                .layer(layer.clone())
        };
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let router = router.clone();
                tokio::spawn(async move { send(&router).await })
            })
            .collect();
        until("49 waiting", || layer.stats().coalesced == 49).await;
        gate.add_permits(1000);
        let mut ok = 0;
        for task in tasks {
            if let Ok(reply) = task.await {
                assert_eq!(reply.body, "page 2");
                ok += 1;
            }
        }
        assert_eq!(ok, 49, "only the request whose handler panicked fails");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one failure, then one call for all"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_with_an_unstorable_answer_releases_the_waiters_to_the_origin() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::gated();
        let layer = CacheLayer::new(cache);
        let app = app(layer.clone(), &origin, &[("cache-control", "private")]);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { send(&app).await })
            })
            .collect();
        until("19 waiting", || layer.stats().coalesced == 19).await;
        origin.release();
        let mut bodies: Vec<String> = Vec::new();
        for task in tasks {
            let reply = task.await.expect("task");
            assert_eq!(reply.status, StatusCode::OK);
            bodies.push(reply.body);
        }
        bodies.sort();
        bodies.dedup();
        assert_eq!(
            bodies.len(),
            20,
            "a private page is never shared: {bodies:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unstorable_page_is_not_serialised() {
        // Learn that the page is not storable, then send 100 requests whose handlers can only
        // finish once all 100 are inside at the same time.
        let cache = Cache::new(MemoryStore::new());
        let layer = CacheLayer::new(cache);
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let router = {
            let barrier = Arc::clone(&barrier);
            Router::new()
                .route(
                    "/page",
                    get(move |headers: HeaderMap| {
                        let barrier = Arc::clone(&barrier);
                        async move {
                            if headers.contains_key("x-burst") {
                                barrier.wait().await;
                            }
                            ([("cache-control", "no-store")], "uncacheable")
                        }
                    }),
                )
                .layer(layer.clone())
        };
        assert_eq!(send(&router).await.body, "uncacheable");
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let router = router.clone();
                tokio::spawn(async move {
                    let request = Request::builder()
                        .uri("/page")
                        .header("host", "example.com")
                        .header("x-burst", "1")
                        .body(Body::empty())
                        .expect("request");
                    router.oneshot(request).await.expect("response").status()
                })
            })
            .collect();
        let all = async {
            for task in tasks {
                assert_eq!(task.await.expect("task"), StatusCode::OK);
            }
        };
        tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .expect("the requests ran one after another");
        assert_eq!(layer.stats().coalesced, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn coalescing_can_be_turned_off() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::gated();
        let layer = CacheLayer::new(cache).coalesce(false);
        let app = app(layer.clone(), &origin, &[]);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { send(&app).await })
            })
            .collect();
        until("10 origin calls", || origin.calls() == 10).await;
        origin.release();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(layer.stats().coalesced, 0);
    }

    /// A lock wait of `Duration::MAX` ("wait for ever") is no deadline, not an overflow.
    #[tokio::test]
    async fn an_endless_lock_wait_is_no_deadline() {
        let store = support::stores::BytesOnly::default();
        let cache = Cache::builder(store.clone())
            .lock_across_processes(Duration::from_secs(1), Duration::MAX)
            .build();
        let value: u32 = cache
            .get_or_set("k", Timeout::Default, || async { 7 })
            .await
            .expect("computed");
        assert_eq!(value, 7);
        let layer = CacheLayer::new(Cache::new(store))
            .lock_across_processes(Duration::from_secs(1), Duration::MAX);
        let app = app(layer, &Origin::open(), &[]);
        assert_eq!(send(&app).await.body, "page 1");
        assert_eq!(send(&app).await.cache, Some(CacheStatus::Hit));
    }
    /// Starts a request that leads the page's fetch and waits at the gate, then one that
    /// waits for it; returns the origin calls after `after` of (paused) time.
    async fn calls_after_a_wait(layer: CacheLayer, after: Duration) -> (Origin, usize) {
        let origin = Origin::gated();
        let app = app(layer, &origin, &[]);
        let leader = app.clone();
        tokio::spawn(async move { send(&leader).await });
        until("the leader asks the origin", || origin.calls() == 1).await;
        let waiter = app.clone();
        tokio::spawn(async move { send(&waiter).await });
        tokio::time::sleep(after).await;
        let calls = origin.calls();
        (origin, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_cache_waits_as_long_as_its_cache_says() {
        let cache = Cache::builder(MemoryStore::new())
            .wait_timeout(Duration::from_secs(3))
            .build();
        let layer = CacheLayer::new(cache);
        let (origin, calls) = calls_after_a_wait(layer.clone(), Duration::from_secs(5)).await;
        assert_eq!(
            calls, 2,
            "the waiter gave up after the cache's 3 s, not the default 10 s"
        );
        assert_eq!(layer.stats().coalesced, 1);
        origin.release();
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_cache_may_wait_longer_than_its_cache() {
        let cache = Cache::builder(MemoryStore::new())
            .wait_timeout(Duration::from_secs(3))
            .build();
        let layer = CacheLayer::new(cache).wait_timeout(Duration::from_secs(30));
        let (origin, calls) = calls_after_a_wait(layer.clone(), Duration::from_secs(5)).await;
        assert_eq!(calls, 1, "the layer's own 30 s wins over the cache's 3 s");
        assert_eq!(layer.stats().coalesced, 1);
        origin.release();
    }
}

mod stale {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stale_while_revalidate_serves_at_once_and_refreshes_once() {
        let clock = Clock::at(1_700_000_000);
        let origin = Origin::gated();
        let layer = CacheLayer::new(Cache::new(MemoryStore::new())).clock(clock.reader());
        let app = app(
            layer.clone(),
            &origin,
            &[("cache-control", "max-age=10, stale-while-revalidate=60")],
        );
        origin.gate.add_permits(1);
        assert_eq!(send(&app).await.body, "page 1");
        clock.advance(Duration::from_secs(15)).await;
        // The refresh waits at the closed gate while more requests come.
        for _ in 0..5 {
            let reply = send(&app).await;
            assert_eq!(reply.body, "page 1", "the stale page, at once");
            assert_eq!(
                reply.cache,
                Some(CacheStatus::Stale(Stale::WhileRevalidate))
            );
        }
        until("the refresh reached the origin", || origin.calls() == 2).await;
        assert_eq!(
            layer.stats().refreshes,
            1,
            "one refresh for all stale requests"
        );
        assert_eq!(layer.stats().stale_served, 5);
        origin.release();
        until("the refreshed page is served", || {
            reply_now(&app).is_some_and(|reply| reply.body == "page 2")
        })
        .await;
        let fresh = send(&app).await;
        assert_eq!(
            (fresh.cache, fresh.body.as_str()),
            (Some(CacheStatus::Hit), "page 2")
        );
        assert_eq!(origin.calls(), 2);
        assert_eq!(layer.stats().refreshes, 1);
    }

    /// A `HEAD` request's answer has no body, so it must never be what refreshes the `GET`
    /// entry: during `stale-while-revalidate` and in the early-refresh window it refreshes
    /// nothing, and `GET` keeps getting whole pages.
    #[tokio::test(start_paused = true)]
    async fn a_head_request_never_refreshes_the_get_page() {
        for early in [false, true] {
            let clock = Clock::at(1_700_000_000);
            let origin = Origin::open();
            let mut layer = CacheLayer::new(Cache::new(MemoryStore::new())).clock(clock.reader());
            if early {
                layer = layer.refresh_before(Duration::from_secs(5));
            }
            let app = app(
                layer.clone(),
                &origin,
                &[("cache-control", "max-age=10, stale-while-revalidate=60")],
            );
            assert_eq!(send(&app).await.body, "page 1");
            clock
                .advance(Duration::from_secs(if early { 6 } else { 15 }))
                .await;

            let head = send_with(&app, Method::HEAD).await;
            assert_eq!(head.status, StatusCode::OK);
            let expected = if early {
                // Still fresh: served as it is.
                CacheStatus::Hit
            } else {
                // Stale: the origin answers the HEAD itself, and a headers-only entry is kept.
                CacheStatus::Stored
            };
            assert_eq!(head.cache, Some(expected), "early refresh: {early}");
            assert_eq!(layer.stats().refreshes, 0, "a HEAD refreshed the GET page");

            let get = send(&app).await;
            assert_eq!(get.body, "page 1", "early refresh: {early}");
            assert_eq!(layer.stats().refreshes, 1, "the GET refreshes the page");
            let page = if early { "page 2" } else { "page 3" };
            until("the GET's refresh is served", || {
                reply_now(&app).is_some_and(|reply| reply.body == page)
            })
            .await;
        }
    }

    /// A page that answers "good" with `headers` the first time, and 503 "down" after that,
    /// behind a cache on `clock`; and the count of its calls.
    fn failing_after_first(
        clock: &Clock,
        headers: &'static [(&'static str, &'static str)],
    ) -> (Router, Arc<AtomicUsize>) {
        failing_after_first_with(clock, headers, |layer| layer)
    }

    /// [`failing_after_first`] behind a cache with more settings.
    pub(super) fn failing_after_first_with(
        clock: &Clock,
        headers: &'static [(&'static str, &'static str)],
        configure: impl FnOnce(CacheLayer) -> CacheLayer,
    ) -> (Router, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let layer =
            configure(CacheLayer::new(Cache::new(MemoryStore::new())).clock(clock.reader()));
        let counted = Arc::clone(&calls);
        let router = Router::new()
            .route(
                "/page",
                get(move || {
                    let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        if n == 1 {
                            (AppendHeaders(headers.iter().copied()), "good").into_response()
                        } else {
                            (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
                        }
                    }
                }),
            )
            .layer(layer);
        (router, calls)
    }

    const STALE_IF_ERROR: (&str, &str) = ("cache-control", "max-age=10, stale-if-error=300");

    #[tokio::test(start_paused = true)]
    async fn stale_if_error_stands_in_for_a_failing_origin_within_its_window() {
        let clock = Clock::at(1_700_000_000);
        let (router, calls) = failing_after_first(&clock, &[STALE_IF_ERROR]);
        assert_eq!(send(&router).await.body, "good");
        clock.advance(Duration::from_secs(20)).await;
        let reply = send(&router).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "good")
        );
        assert_eq!(reply.cache, Some(CacheStatus::Stale(Stale::IfError)));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the origin was asked first"
        );
        clock.advance(Duration::from_secs(300)).await;
        let reply = send(&router).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "down")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_stand_in_answers_a_matching_validator_with_304() {
        let clock = Clock::at(1_700_000_000);
        let (router, calls) = failing_after_first(&clock, &[STALE_IF_ERROR, ("etag", "\"v1\"")]);
        assert_eq!(send(&router).await.body, "good");
        clock.advance(Duration::from_secs(20)).await;
        let mut revalidation = request();
        revalidation
            .headers_mut()
            .insert("if-none-match", HeaderValue::from_static("\"v1\""));
        let response = router
            .clone()
            .oneshot(revalidation)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            response.extensions().get::<CacheStatus>(),
            Some(&CacheStatus::Stale(Stale::IfError))
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the origin was asked first"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stale_if_error_covers_service_errors_and_layer_settings() {
        let clock = Clock::at(1_700_000_000);
        let calls = Arc::new(AtomicUsize::new(0));
        let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
            .clock(clock.reader())
            .stale_if_error(Duration::from_secs(60));
        let service = {
            let calls = Arc::clone(&calls);
            tower::ServiceBuilder::new()
                .layer(layer)
                .service_fn(move |_: Request<Body>| {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        if n == 1 {
                            let mut response = Response::new(Body::from("good"));
                            response
                                .headers_mut()
                                .insert("cache-control", HeaderValue::from_static("max-age=10"));
                            Ok(response)
                        } else {
                            Err(std::io::Error::other("connection refused"))
                        }
                    }
                })
        };
        let first = service.clone().oneshot(request()).await.expect("first");
        first.into_body().collect().await.expect("body");
        clock.advance(Duration::from_secs(30)).await;
        let response = service
            .clone()
            .oneshot(request())
            .await
            .expect("stale instead of the error");
        assert_eq!(
            response.extensions().get::<CacheStatus>(),
            Some(&CacheStatus::Stale(Stale::IfError))
        );
        assert_eq!(
            response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes(),
            "good"
        );
        clock.advance(Duration::from_secs(60)).await;
        assert!(
            service.clone().oneshot(request()).await.is_err(),
            "past the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_before_keeps_a_popular_page_from_expiring() {
        let clock = Clock::at(1_700_000_000);
        let origin = Origin::open();
        let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
            .clock(clock.reader())
            .refresh_before(Duration::from_secs(5));
        let app = app(layer.clone(), &origin, &[("cache-control", "max-age=10")]);
        assert_eq!(send(&app).await.body, "page 1");
        clock.advance(Duration::from_secs(6)).await;
        let reply = send(&app).await;
        assert_eq!(
            (reply.cache, reply.body.as_str()),
            (Some(CacheStatus::Hit), "page 1")
        );
        until("the early refresh ran", || origin.calls() == 2).await;
        until("the refreshed page is served", || {
            reply_now(&app).is_some_and(|reply| reply.body == "page 2")
        })
        .await;
        assert_eq!(layer.stats().refreshes, 1);
        // At 11 s the first copy would have expired; the refreshed one (stored at 6 s) answers.
        clock.advance(Duration::from_secs(5)).await;
        let reply = send(&app).await;
        assert_eq!(
            (reply.cache, reply.body.as_str()),
            (Some(CacheStatus::Hit), "page 2")
        );
        // The refreshed copy is itself in its refresh window now, so it is refreshed in turn.
        assert_eq!(layer.stats().refreshes, 2);
    }
}

mod jitter {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn jittered_pages_expire_apart() {
        let clock = Clock::at(1_700_000_000);
        let calls = Arc::new(AtomicUsize::new(0));
        let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
            .clock(clock.reader())
            .jitter(0.5);
        let router = {
            let calls = Arc::clone(&calls);
            Router::new()
                .route(
                    "/{n}",
                    get(move || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        async { ([("cache-control", "max-age=100")], "page") }
                    }),
                )
                .layer(layer)
        };
        let get = |n: usize| {
            Request::builder()
                .uri(format!("/{n}"))
                .header("host", "example.com")
                .body(Body::empty())
                .expect("request")
        };
        for n in 0..50 {
            let response = router.clone().oneshot(get(n)).await.expect("response");
            assert_eq!(
                response.headers()["cache-control"],
                "max-age=100",
                "clients see it all"
            );
            response.into_body().collect().await.expect("body");
        }
        clock.advance(Duration::from_secs(75)).await;
        let mut hits = 0;
        for n in 0..50 {
            let response = router.clone().oneshot(get(n)).await.expect("response");
            if response.extensions().get::<CacheStatus>() == Some(&CacheStatus::Hit) {
                hits += 1;
            }
            response.into_body().collect().await.expect("body");
        }
        assert!(
            hits > 0 && hits < 50,
            "{hits} of 50 pages still fresh at 75 s"
        );
    }
}

#[cfg(feature = "redis")]
mod across_processes {
    use super::*;
    use axum_cache::store::RedisStore;
    use support::redis;

    /// Where an instance's lock across processes is set.
    #[derive(Clone, Copy)]
    enum LockOn {
        Layer,
        Cache,
    }

    async fn instance(url: &str, origin: &Origin, lock_on: LockOn) -> (Router, CacheLayer) {
        let store = RedisStore::builder(url)
            .prefix("stampede")
            .command_timeout(Duration::from_secs(5))
            .build()
            .await
            .expect("connects");
        let (ttl, wait) = (Duration::from_secs(10), Duration::from_secs(10));
        let layer = match lock_on {
            LockOn::Layer => CacheLayer::new(Cache::new(store)).lock_across_processes(ttl, wait),
            LockOn::Cache => CacheLayer::new(
                Cache::builder(store)
                    .lock_across_processes(ttl, wait)
                    .build(),
            ),
        };
        (app(layer.clone(), origin, &[]), layer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_sharing_redis_call_the_origin_once() {
        two_instances_call_the_origin_once(LockOn::Layer).await;
    }

    /// A page cache takes its cache's lock across processes when it sets none itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_locking_through_their_caches_call_the_origin_once() {
        two_instances_call_the_origin_once(LockOn::Cache).await;
    }

    async fn two_instances_call_the_origin_once(lock_on: LockOn) {
        let Some(server) = redis::redis() else { return };
        let origin = Origin::gated();
        let (a, layer_a) = instance(&server.url(), &origin, lock_on).await;
        let (b, layer_b) = instance(&server.url(), &origin, lock_on).await;
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let app = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { send(&app).await })
            })
            .collect();
        until(
            "one leader per instance, one of them waiting for the other's lock",
            || {
                let (sa, sb) = (layer_a.stats(), layer_b.stats());
                let (waiting, locked) =
                    (sa.coalesced + sb.coalesced, sa.lock_waits + sb.lock_waits);
                waiting == 198 && locked == 1 && origin.calls() == 1
            },
        )
        .await;
        origin.release();
        every_reply_is_the_first_page(tasks).await;
        assert_eq!(origin.calls(), 1, "one origin call across both instances");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn get_or_set_computes_once_across_instances() {
        let Some(server) = redis::redis() else { return };
        let cache = |url: String| async move {
            let store = RedisStore::builder(url)
                .prefix("stampede-values")
                .command_timeout(Duration::from_secs(5))
                .build()
                .await
                .expect("connects");
            Cache::builder(store)
                .lock_across_processes(Duration::from_secs(10), Duration::from_secs(10))
                .build()
        };
        let (a, b) = (cache(server.url()).await, cache(server.url()).await);
        let origin = Origin::gated();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
                let origin = origin.clone();
                tokio::spawn(async move { report(&cache, &origin).await })
            })
            .collect();
        until(
            "one computing, the other instance waiting for its lock",
            || {
                a.coalesced() + b.coalesced() == 98
                    && a.lock_waits() + b.lock_waits() == 1
                    && origin.calls() == 1
            },
        )
        .await;
        origin.release();
        for task in tasks {
            assert_eq!(task.await.expect("task"), 1);
        }
        assert_eq!(origin.calls(), 1, "one computation across both instances");
    }

    #[test]
    fn a_lock_whose_holder_died_only_delays_others_until_it_expires() {
        let Some(server) = redis::redis() else { return };
        let url = server.url();
        let origin = Origin::gated();
        // The "dying" process: its own runtime, shut down while its request holds the lock.
        let doomed = tokio::runtime::Runtime::new().expect("runtime");
        let store = doomed.block_on(RedisStore::builder(&url).prefix("stampede-dead").build());
        let store = store.expect("connects");
        let ttl = Duration::from_secs(1);
        let layer =
            CacheLayer::new(Cache::new(store)).lock_across_processes(ttl, Duration::from_secs(10));
        let dying = app(layer, &origin, &[]);
        doomed.spawn(async move { send(&dying).await });
        let survivor_runtime = tokio::runtime::Runtime::new().expect("runtime");
        survivor_runtime.block_on(until("the doomed request reached the origin", || {
            origin.calls() == 1
        }));
        doomed.shutdown_background();

        survivor_runtime.block_on(async {
            let (survivor, layer) = {
                let store = RedisStore::builder(&url)
                    .prefix("stampede-dead")
                    .build()
                    .await
                    .expect("connects");
                let layer = CacheLayer::new(Cache::new(store))
                    .lock_across_processes(ttl, Duration::from_secs(10));
                (app(layer.clone(), &origin, &[]), layer)
            };
            origin.release();
            let started = tokio::time::Instant::now();
            let reply = send(&survivor).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (StatusCode::OK, "page 2")
            );
            assert_eq!(
                layer.stats().lock_waits,
                1,
                "it found the dead holder's lock"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "it went on once the lock expired, well before its 10 s wait"
            );
        });
    }
}

/// The rules the stale windows, refreshes, hit-for-pass and background work follow.
mod rules {
    use super::stale::failing_after_first_with;
    use super::*;
    use support::stores::BytesOnly;

    /// `must-revalidate` and `proxy-revalidate` forbid serving the page once stale: neither
    /// the layer's windows nor the response's own `stale-while-revalidate` may, and the origin
    /// answers, even when it fails.
    #[tokio::test(start_paused = true)]
    async fn revalidation_directives_are_never_served_stale_by_our_windows() {
        let cases: [&'static [(&'static str, &'static str)]; 3] = [
            &[("cache-control", "max-age=10, must-revalidate")],
            &[("cache-control", "max-age=10, proxy-revalidate")],
            &[(
                "cache-control",
                "max-age=10, must-revalidate, stale-while-revalidate=60",
            )],
        ];
        for headers in cases {
            let clock = Clock::at(1_700_000_000);
            let origin = Origin::open();
            let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
                .clock(clock.reader())
                .stale_while_revalidate(Duration::from_secs(60))
                .stale_if_error(Duration::from_secs(60));
            let app = app(layer.clone(), &origin, headers);
            assert_eq!(send(&app).await.body, "page 1");
            clock.advance(Duration::from_secs(15)).await;
            let reply = send(&app).await;
            assert_eq!(
                (reply.cache, reply.body.as_str()),
                (Some(CacheStatus::Stored), "page 2"),
                "{headers:?}"
            );
            assert_eq!(layer.stats().stale_served, 0, "{headers:?}");
        }
        // The layer's `stale-if-error` does not stand in for a failing origin either.
        let clock = Clock::at(1_700_000_000);
        let (router, _) = failing_after_first_with(
            &clock,
            &[("cache-control", "max-age=10, must-revalidate")],
            |layer| layer.stale_if_error(Duration::from_secs(300)),
        );
        assert_eq!(send(&router).await.body, "good");
        clock.advance(Duration::from_secs(20)).await;
        let reply = send(&router).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "down")
        );
    }

    /// The response's own `stale-if-error` is the one exception: it may stand in for an origin
    /// that fails, within its own window.
    #[tokio::test(start_paused = true)]
    async fn a_revalidated_page_may_stand_in_by_its_own_stale_if_error() {
        let clock = Clock::at(1_700_000_000);
        let (router, _) = failing_after_first_with(
            &clock,
            &[(
                "cache-control",
                "max-age=10, must-revalidate, stale-if-error=60",
            )],
            |layer| layer,
        );
        assert_eq!(send(&router).await.body, "good");
        clock.advance(Duration::from_secs(20)).await;
        let reply = send(&router).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "good")
        );
        assert_eq!(reply.cache, Some(CacheStatus::Stale(Stale::IfError)));
        clock.advance(Duration::from_secs(60)).await;
        assert_eq!(send(&router).await.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    /// Stale-while-revalidate and early refresh refresh the page with coalescing off too.
    #[tokio::test(start_paused = true)]
    async fn pages_are_refreshed_without_coalescing() {
        for early in [false, true] {
            let clock = Clock::at(1_700_000_000);
            let origin = Origin::open();
            let mut layer = CacheLayer::new(Cache::new(MemoryStore::new()))
                .clock(clock.reader())
                .coalesce(false);
            let headers: &'static [(&'static str, &'static str)] = if early {
                layer = layer.refresh_before(Duration::from_secs(5));
                &[("cache-control", "max-age=10")]
            } else {
                &[("cache-control", "max-age=10, stale-while-revalidate=60")]
            };
            let app = app(layer.clone(), &origin, headers);
            assert_eq!(send(&app).await.body, "page 1");
            clock
                .advance(Duration::from_secs(if early { 6 } else { 15 }))
                .await;
            assert_eq!(send(&app).await.body, "page 1", "served at once");
            until("the refresh reached the origin", || origin.calls() == 2).await;
            until("the refreshed page is served", || {
                reply_now(&app).is_some_and(|reply| reply.body == "page 2")
            })
            .await;
            assert_eq!(layer.stats().refreshes, 1, "early: {early}");
        }
    }

    /// A `304` to one client's validators, or a cookie set for one client, says nothing about
    /// the page for others: the burst that follows still coalesces onto one origin call.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_clients_answer_never_switches_coalescing_off_for_everyone() {
        for (name, value) in [
            ("if-none-match", "\"v1\""),
            ("x-new-visitor", "1"),
            ("authorization", "Bearer own"),
        ] {
            let origin = Origin::gated();
            let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
            let gated = origin.clone();
            let router = Router::new()
                .route(
                    "/page",
                    get(move |request: HeaderMap| {
                        let origin = gated.clone();
                        async move {
                            if request.contains_key("if-none-match") {
                                return (StatusCode::NOT_MODIFIED, [("etag", "\"v1\"")])
                                    .into_response();
                            }
                            if request.contains_key("x-new-visitor") {
                                return ([("set-cookie", "session=new")], "welcome")
                                    .into_response();
                            }
                            if request.contains_key("authorization") {
                                return ([("cache-control", "private")], "yours").into_response();
                            }
                            origin.answer(&[("cache-control", "max-age=60")]).await
                        }
                    }),
                )
                .layer(layer.clone());
            let own = Request::builder()
                .uri("/page")
                .header("host", "example.com")
                .header(name, value)
                .body(Body::empty())
                .expect("request");
            let response = router.clone().oneshot(own).await.expect("response");
            assert!(matches!(
                response.extensions().get::<CacheStatus>(),
                Some(CacheStatus::Miss(_))
            ));
            response.into_body().collect().await.expect("body");
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let app = router.clone();
                    tokio::spawn(async move { send(&app).await })
                })
                .collect();
            until("the burst arrived", || {
                layer.stats().coalesced == 19 || origin.calls() == 20
            })
            .await;
            assert_eq!(layer.stats().coalesced, 19, "after {name}");
            origin.release();
            every_reply_is_the_first_page(tasks).await;
            assert_eq!(origin.calls(), 1, "after {name}");
        }
    }

    /// Writes to a store that hangs are bounded: past `max_background_tasks` they are skipped
    /// (the page is just not stored), and each stops at `background_timeout`, freeing its
    /// place.
    #[tokio::test(start_paused = true)]
    async fn background_writes_are_bounded_in_number_and_time() {
        let store = BytesOnly::default();
        let gate = store.hold_writes();
        let origin = Origin::open();
        let layer = CacheLayer::new(Cache::new(store))
            .max_background_tasks(3)
            .background_timeout(Duration::from_secs(5));
        let router = app(layer.clone(), &origin, &[]);
        let page = |n: usize| {
            Request::builder()
                .uri(format!("/page?n={n}"))
                .header("host", "example.com")
                .body(Body::empty())
                .expect("request")
        };
        for n in 0..5 {
            let response = router.clone().oneshot(page(n)).await.expect("response");
            assert_eq!(
                response.extensions().get::<CacheStatus>(),
                Some(&CacheStatus::Stored)
            );
            response.into_body().collect().await.expect("body");
        }
        assert_eq!(layer.stats().background_skipped, 2);
        // Nothing opens the gate: the three writes reach their deadline (on tokio's paused
        // clock) and give their places back.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(layer.stats().background_timed_out, 3);
        gate.add_permits(100);
        let tasks = support::tasks::Tasks::now();
        let response = router.clone().oneshot(page(9)).await.expect("response");
        response.into_body().collect().await.expect("body");
        tasks.wait_for().await;
        let again = router.clone().oneshot(page(9)).await.expect("response");
        assert_eq!(
            again.extensions().get::<CacheStatus>(),
            Some(&CacheStatus::Hit)
        );
        assert_eq!(layer.stats().background_skipped, 2);
    }
}

/// The `Cache-Status` members of stale and collapsed answers, end to end.
mod cache_status {
    use super::stale::failing_after_first_with;
    use super::*;

    async fn member(app: &Router) -> String {
        let response = app.clone().oneshot(request()).await.expect("infallible");
        let member = response
            .headers()
            .get("cache-status")
            .map(|value| value.to_str().expect("ASCII").to_owned())
            .unwrap_or_default();
        response.into_body().collect().await.expect("body");
        member
    }

    #[tokio::test(start_paused = true)]
    async fn stale_answers_are_hits_with_a_negative_ttl_or_forwarded_as_stale() {
        let clock = Clock::at(1_700_000_000);
        let origin = Origin::open();
        let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
            .clock(clock.reader())
            .cache_status_header(true);
        let headers = &[("cache-control", "max-age=10, stale-while-revalidate=60")];
        let app = app(layer, &origin, headers);
        member(&app).await;
        clock.advance(Duration::from_secs(15)).await;
        assert_eq!(member(&app).await, "axum-cache; hit; ttl=-5");

        let (router, _) = failing_after_first_with(
            &clock,
            &[("cache-control", "max-age=10, stale-if-error=60")],
            |layer| layer.cache_status_header(true),
        );
        member(&router).await;
        clock.advance(Duration::from_secs(15)).await;
        assert_eq!(
            member(&router).await,
            "axum-cache; fwd=stale; fwd-status=503; ttl=-5"
        );
    }

    /// Requests that waited for another's fetch say so; the one that fetched is a miss.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_waited_for_another_fetch_are_collapsed() {
        let origin = Origin::gated();
        let clock = Clock::at(1_700_000_000);
        let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
            .clock(clock.reader())
            .cache_status_header(true);
        let app = app(layer.clone(), &origin, &[("cache-control", "max-age=60")]);
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { member(&app).await })
            })
            .collect();
        until("4 waiting", || layer.stats().coalesced == 4).await;
        origin.release();
        let mut members = Vec::new();
        for task in tasks {
            members.push(task.await.expect("task"));
        }
        members.sort();
        assert_eq!(
            members[..4],
            ["axum-cache; fwd=miss; ttl=60; collapsed"; 4],
            "{members:?}"
        );
        assert_eq!(
            members[4],
            "axum-cache; fwd=uri-miss; fwd-status=200; stored"
        );
    }
}
