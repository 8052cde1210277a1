//! The response cache in the same stack as the tower-http middleware most axum apps use:
//! `CompressionLayer`, `TraceLayer`, `TimeoutLayer`, `CatchPanicLayer`,
//! `SetResponseHeaderLayer` and `CorsLayer`, each in the order the docs recommend and in the
//! wrong one, around each placement of the cache (`CacheLayer` on the router, around it with
//! `CacheLayer::around`, `cache_page` on the route, the split pair). What a client sees is
//! asserted: bodies (decompressed when compressed), headers, the `CacheStatus` extension, and how
//! many times the origin was asked.
#![cfg(feature = "axum")]

mod support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use axum_cache::page::{Bypass, NotStored, Stale};
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer, CacheStatus, ConditionalGetLayer, cache_page, condition};
use bytes::Bytes;
use http_body_util::BodyExt;
use support::clock::Clock;
use support::http::request;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The page the origin renders, after the number of the call that rendered it. Longer than the
/// 32 bytes under which tower-http does not compress.
const PAGE: &str = "the same page for everyone, long enough to be worth compressing";

/// A Unix time for the clocks of the tests that move time.
const T0: u64 = 1_700_000_000;

/// How long the origin may take before `TimeoutLayer` answers.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Past the lifetime of every placement's pages (`CacheLayer`'s default and `cache_page`'s
/// forced timeout are both 600 s).
const EXPIRED: Duration = Duration::from_secs(601);

/// The page rendered by the origin's `n`th call.
fn page(n: usize) -> String {
    format!("{n}: {PAGE}")
}

/// Where the response cache sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// `Router::layer(CacheLayer)`.
    OnRouter,
    /// `CacheLayer::around(router)`.
    Around,
    /// `cache_page` on the route (`MethodRouter::layer`).
    CachePage,
    /// `CacheLayer::split()`: the fetch half on the router, the update half outside it.
    Split,
}

const PLACEMENTS: [Placement; 4] = [
    Placement::OnRouter,
    Placement::Around,
    Placement::CachePage,
    Placement::Split,
];

/// The cache layer of a placement, before its settings: `cache_page`'s forced 600 s, or
/// `CacheLayer`'s default 600 s for responses without `max-age`.
fn cache_layer(placement: Placement, cache: &Cache) -> CacheLayer {
    match placement {
        Placement::CachePage => cache_page(cache, Duration::from_secs(600)),
        _ => CacheLayer::new(cache.clone()),
    }
}

/// A whole stack as one service, whatever the body types of its layers.
type App = BoxCloneSyncService<Request<Body>, Response, Infallible>;

fn boxed<S, B>(service: S) -> App
where
    S: Service<Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneSyncService::new(service.map_response(|response| response.map(Body::new)))
}

/// Wraps a stack in `layer`: the outermost layer so far.
fn outside<L, B>(app: App, layer: L) -> App
where
    L: Layer<App>,
    L::Service: Service<Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as Service<Request<Body>>>::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    boxed(layer.layer(app))
}

/// The app serving `/page` from `route` through the cache at `placement`: `inner` adds layers
/// to the route, inside the cache; `outer` adds layers around the whole, outside it.
fn stack(
    placement: Placement,
    layer: CacheLayer,
    route: MethodRouter,
    inner: impl FnOnce(MethodRouter) -> MethodRouter,
    outer: impl FnOnce(App) -> App,
) -> App {
    let route = inner(route);
    let cached = match placement {
        Placement::OnRouter => boxed(Router::new().route("/page", route).layer(layer)),
        Placement::Around => boxed(layer.around(Router::new().route("/page", route))),
        Placement::CachePage => boxed(Router::new().route("/page", route.layer(layer))),
        Placement::Split => {
            let (update, fetch) = layer.split();
            boxed(
                Router::new()
                    .route("/page", route)
                    .layer(fetch)
                    .layer(update),
            )
        }
    };
    outer(cached)
}

/// Opens once; whoever waits on it waits until then. A condition, not a pause.
#[derive(Clone)]
struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    fn new() -> Gate {
        Gate(Arc::new(watch::channel(false).0))
    }

    fn open(&self) {
        self.0.send_replace(true);
    }

    async fn wait(&self) {
        let mut open = self.0.subscribe();
        open.wait_for(|open| *open).await.unwrap();
    }
}

/// What the origin does on a call.
enum Act {
    /// Renders the page.
    Answer,
    /// Never answers.
    Hang,
    /// Panics.
    Panic,
    /// Renders the page once the gate opens.
    AnswerAfter(Gate),
    /// Panics once the gate opens.
    PanicAfter(Gate),
}

/// The origin: counts its calls, and does what its script says on each (renders the page once
/// the script is empty).
#[derive(Clone, Default)]
struct Origin {
    calls: Arc<AtomicUsize>,
    script: Arc<Mutex<VecDeque<Act>>>,
}

impl Origin {
    /// What the next call not yet scripted does.
    fn then(&self, act: Act) -> &Self {
        self.script.lock().unwrap().push_back(act);
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn route(&self) -> MethodRouter {
        let origin = self.clone();
        get(move || {
            let origin = origin.clone();
            async move {
                let n = origin.calls.fetch_add(1, Ordering::SeqCst) + 1;
                let act = origin.script.lock().unwrap().pop_front();
                match act.unwrap_or(Act::Answer) {
                    Act::Answer => {}
                    Act::Hang => std::future::pending::<()>().await,
                    Act::Panic => panic!("deliberate panic in origin call {n}"),
                    Act::AnswerAfter(gate) => gate.wait().await,
                    Act::PanicAfter(gate) => {
                        gate.wait().await;
                        panic!("deliberate panic in origin call {n}");
                    }
                }
                page(n)
            }
        })
    }
}

/// What a client received.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    /// The bytes on the wire, compressed or not.
    body: Bytes,
    cache: Option<CacheStatus>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    /// The body as the client reads it: decompressed when the response says gzip.
    fn text(&self) -> String {
        match self.header("content-encoding") {
            None => String::from_utf8(self.body.to_vec()).unwrap(),
            Some("gzip") => gunzip(&self.body),
            Some(other) => panic!("unexpected content-encoding {other}"),
        }
    }

    /// Whether `Vary` names `name`, in any of its field lines.
    fn varies_on(&self, name: &str) -> bool {
        self.headers.get_all(header::VARY).iter().any(|value| {
            value
                .to_str()
                .unwrap()
                .split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(name))
        })
    }
}

fn gunzip(bytes: &[u8]) -> String {
    assert_eq!(
        bytes.get(..2),
        Some(&[0x1f, 0x8b][..]),
        "not gzip: {bytes:?}"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

async fn send(app: &App, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let cache = response.extensions().get::<CacheStatus>().copied();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
        cache,
    }
}

/// `GET /page` with `headers`.
fn get_page(headers: &[(&str, &str)]) -> Request<Body> {
    request(Method::GET, "/page", headers)
}

/// Sends a request on a task of its own, for requests that must be in flight together.
fn spawn_send(app: &App, request: Request<Body>) -> tokio::task::JoinHandle<Reply> {
    let app = app.clone();
    tokio::spawn(async move { send(&app, request).await })
}

/// Lets the other tasks run until `condition` holds (without moving the paused clock: the
/// runtime is never idle while this task yields), failing after a generous number of rounds.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// `CompressionLayer` belongs outside the cache: the cache then stores the identity page once and
/// every client gets it in the encoding it asked for. Inside, the cache stores compressed bytes
/// and has to keep one entry per `Accept-Encoding` value, which it does: safe, but an origin call
/// and an entry for each distinct header value.
mod compression {
    use super::*;

    #[tokio::test]
    async fn outside_the_cache_one_identity_entry_serves_every_encoding() {
        for placement in PLACEMENTS {
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache),
                origin.route(),
                |route| route,
                |app| outside(app, CompressionLayer::new()),
            );
            let gzip = send(&app, get_page(&[("accept-encoding", "gzip")])).await;
            assert_eq!(gzip.cache, Some(CacheStatus::Stored), "{placement:?}");
            assert_eq!(
                gzip.header("content-encoding"),
                Some("gzip"),
                "{placement:?}"
            );
            assert_eq!(gzip.text(), page(1), "{placement:?}");
            assert!(gzip.varies_on("accept-encoding"), "{placement:?}");

            // The entry the gzip client's request stored holds the identity bytes: a client
            // that accepts no encoding is served from it, byte for byte.
            let identity = send(&app, get_page(&[])).await;
            assert_eq!(identity.cache, Some(CacheStatus::Hit), "{placement:?}");
            assert_eq!(identity.header("content-encoding"), None, "{placement:?}");
            assert_eq!(identity.body, page(1).as_bytes(), "{placement:?}");
            assert!(identity.varies_on("accept-encoding"), "{placement:?}");
            assert_eq!(
                identity.header("content-length"),
                Some(page(1).len().to_string().as_str()),
                "{placement:?}"
            );

            // An encoding this server does not offer gets identity, from the same entry.
            let brotli = send(&app, get_page(&[("accept-encoding", "br")])).await;
            assert_eq!(brotli.cache, Some(CacheStatus::Hit), "{placement:?}");
            assert_eq!(brotli.header("content-encoding"), None, "{placement:?}");
            assert_eq!(brotli.body, page(1).as_bytes(), "{placement:?}");

            // And gzip clients get the hit compressed, whatever else they list.
            for accept in ["gzip", "gzip, deflate, br"] {
                let hit = send(&app, get_page(&[("accept-encoding", accept)])).await;
                assert_eq!(hit.cache, Some(CacheStatus::Hit), "{placement:?} {accept}");
                assert_eq!(hit.header("content-encoding"), Some("gzip"), "{accept}");
                assert_eq!(hit.text(), page(1), "{placement:?} {accept}");
            }
            assert_eq!(origin.calls(), 1, "{placement:?}");
        }
    }

    /// What a stack with compression inside the cache gives, request after request.
    async fn compressed_inside(name: &str, app: &App, origin: &Origin) {
        let gzip = send(app, get_page(&[("accept-encoding", "gzip")])).await;
        assert_eq!(gzip.cache, Some(CacheStatus::Stored), "{name}");
        assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{name}");
        assert_eq!(gzip.text(), page(1), "{name}");
        assert!(gzip.varies_on("accept-encoding"), "{name}");

        // The cache saw `Vary: Accept-Encoding` and keys on it: the identity client is not
        // served the compressed entry, but asks the origin and gets its own.
        let identity = send(app, get_page(&[])).await;
        assert_eq!(identity.cache, Some(CacheStatus::Stored), "{name}");
        assert_eq!(identity.header("content-encoding"), None, "{name}");
        assert_eq!(identity.body, page(2).as_bytes(), "{name}");

        // Each is then a hit for its own kind of client, never for the other.
        let gzip = send(app, get_page(&[("accept-encoding", "gzip")])).await;
        assert_eq!(gzip.cache, Some(CacheStatus::Hit), "{name}");
        assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{name}");
        assert_eq!(gzip.text(), page(1), "{name}");
        let identity = send(app, get_page(&[])).await;
        assert_eq!(identity.cache, Some(CacheStatus::Hit), "{name}");
        assert_eq!(identity.header("content-encoding"), None, "{name}");
        assert_eq!(identity.body, page(2).as_bytes(), "{name}");

        // The key is the header's value, not the encoding it selects: another spelling of the
        // same wish is another entry and another origin call.
        let spelled = send(app, get_page(&[("accept-encoding", "gzip, deflate")])).await;
        assert_eq!(spelled.cache, Some(CacheStatus::Stored), "{name}");
        assert_eq!(spelled.text(), page(3), "{name}");
        assert_eq!(origin.calls(), 3, "{name}");
    }

    #[tokio::test]
    async fn inside_the_cache_each_accept_encoding_is_stored_apart() {
        for placement in PLACEMENTS {
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache),
                origin.route(),
                |route| route.layer(CompressionLayer::new()),
                |app| app,
            );
            compressed_inside(&format!("{placement:?}"), &app, &origin).await;
        }
        // Between the split halves it is the same: the update half stores what compression made.
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let (update, fetch) = CacheLayer::new(cache).split();
        let app = boxed(
            Router::new()
                .route("/page", origin.route())
                .layer(fetch)
                .layer(CompressionLayer::new())
                .layer(update),
        );
        compressed_inside("between the split halves", &app, &origin).await;
    }

    /// Compression outside the conditional layers: they see the identity body (or compute the
    /// tag before the handler), so gzip and identity clients get one tag and revalidate a hit to
    /// a `304`.
    #[tokio::test]
    async fn the_conditional_layers_inside_compression_revalidate_every_encoding() {
        let origin = Origin::default();
        let conditional_get = Router::new()
            .route("/page", origin.route())
            .layer(CacheLayer::new(Cache::new(MemoryStore::new())))
            .layer(ConditionalGetLayer::new())
            .layer(CompressionLayer::new());
        let condition = Router::new()
            .route("/page", origin.route())
            .layer(CacheLayer::new(Cache::new(MemoryStore::new())))
            .layer(condition().etag(|_| async { Some("v1".to_owned()) }))
            .layer(CompressionLayer::new());
        for (name, app) in [
            ("ConditionalGetLayer", boxed(conditional_get)),
            ("condition()", boxed(condition)),
        ] {
            let calls = origin.calls();
            let gzip = send(&app, get_page(&[("accept-encoding", "gzip")])).await;
            assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{name}");
            let etag = gzip.header("etag").expect(name).to_owned();
            let identity = send(&app, get_page(&[])).await;
            assert_eq!(identity.cache, Some(CacheStatus::Hit), "{name}");
            assert_eq!(identity.header("etag"), Some(etag.as_str()), "{name}");
            for accept in ["gzip", "identity"] {
                let current = send(
                    &app,
                    get_page(&[("accept-encoding", accept), ("if-none-match", &etag)]),
                )
                .await;
                assert_eq!(current.status, StatusCode::NOT_MODIFIED, "{name} {accept}");
                assert!(current.body.is_empty(), "{name} {accept}");
            }
            assert_eq!(origin.calls(), calls + 1, "{name}");
        }
    }

    /// The wrong order: `ConditionalGetLayer` outside compression sees a compressed body that
    /// streams without a length, which it never holds in memory, so gzip clients get no tag and
    /// cannot revalidate; identity clients still can.
    #[tokio::test]
    async fn conditional_get_outside_compression_tags_only_identity() {
        let origin = Origin::default();
        let app = boxed(
            Router::new()
                .route("/page", origin.route())
                .layer(CacheLayer::new(Cache::new(MemoryStore::new())))
                .layer(CompressionLayer::new())
                .layer(ConditionalGetLayer::new()),
        );
        let gzip = send(&app, get_page(&[("accept-encoding", "gzip")])).await;
        assert_eq!(gzip.header("content-encoding"), Some("gzip"));
        assert_eq!(gzip.text(), page(1));
        assert_eq!(gzip.header("etag"), None);
        let identity = send(&app, get_page(&[])).await;
        assert_eq!(identity.cache, Some(CacheStatus::Hit));
        let etag = identity
            .header("etag")
            .expect("identity is tagged")
            .to_owned();
        let current = send(&app, get_page(&[("if-none-match", &etag)])).await;
        assert_eq!(current.status, StatusCode::NOT_MODIFIED);
        let gzip_current = send(
            &app,
            get_page(&[("accept-encoding", "gzip"), ("if-none-match", &etag)]),
        )
        .await;
        assert_eq!(
            gzip_current.status,
            StatusCode::OK,
            "no 304 for gzip clients"
        );
        assert_eq!(gzip_current.text(), page(1));
        assert_eq!(origin.calls(), 1);
    }
}

/// `TimeoutLayer` belongs inside the cache: its timeout status is an origin failure the cache
/// sees, so `stale_if_error` can stand in for it and nothing is stored. Outside, the timeout
/// drops the cache's request instead: the client gets the timeout status even with a stale page
/// there.
mod timeout {
    use super::*;

    /// The statuses a `TimeoutLayer` is built with: its historical default, and the one for a
    /// gateway.
    const STATUSES: [StatusCode; 2] = [StatusCode::REQUEST_TIMEOUT, StatusCode::GATEWAY_TIMEOUT];

    #[tokio::test(start_paused = true)]
    async fn inside_the_cache_stale_if_error_answers_for_a_hung_origin() {
        for placement in PLACEMENTS {
            for status in STATUSES {
                let clock = Clock::at(T0);
                let cache = Cache::new(MemoryStore::new());
                let origin = Origin::default();
                let layer = cache_layer(placement, &cache)
                    .stale_if_error(Duration::from_secs(3600))
                    .clock(clock.reader());
                let app = stack(
                    placement,
                    layer,
                    origin.route(),
                    |route| route.layer(TimeoutLayer::with_status_code(status, TIMEOUT)),
                    |app| app,
                );
                let what = format!("{placement:?} {status}");
                assert_eq!(send(&app, get_page(&[])).await.text(), page(1), "{what}");
                clock.advance(EXPIRED).await;

                origin.then(Act::Hang);
                let started = Instant::now();
                let stale = send(&app, get_page(&[])).await;
                assert_eq!(
                    started.elapsed(),
                    TIMEOUT,
                    "{what}: answered at the timeout"
                );
                assert_eq!(stale.status, StatusCode::OK, "{what}");
                assert_eq!(stale.text(), page(1), "{what}");
                assert_eq!(
                    stale.cache,
                    Some(CacheStatus::Stale(Stale::IfError)),
                    "{what}"
                );
                assert_eq!(origin.calls(), 2, "{what}: the origin was asked");

                // The origin answers again: the page is fetched and stored anew.
                let fresh = send(&app, get_page(&[])).await;
                assert_eq!(fresh.cache, Some(CacheStatus::Stored), "{what}");
                assert_eq!(fresh.text(), page(3), "{what}");
                let hit = send(&app, get_page(&[])).await;
                assert_eq!(hit.cache, Some(CacheStatus::Hit), "{what}");
                assert_eq!(hit.text(), page(3), "{what}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn inside_the_cache_without_stale_if_error_the_timeout_passes_through_unstored() {
        for placement in PLACEMENTS {
            for status in STATUSES {
                let clock = Clock::at(T0);
                let cache = Cache::new(MemoryStore::new());
                let origin = Origin::default();
                let app = stack(
                    placement,
                    cache_layer(placement, &cache).clock(clock.reader()),
                    origin.route(),
                    |route| route.layer(TimeoutLayer::with_status_code(status, TIMEOUT)),
                    |app| app,
                );
                let what = format!("{placement:?} {status}");
                assert_eq!(send(&app, get_page(&[])).await.text(), page(1), "{what}");
                clock.advance(EXPIRED).await;

                origin.then(Act::Hang);
                let started = Instant::now();
                let timed_out = send(&app, get_page(&[])).await;
                assert_eq!(started.elapsed(), TIMEOUT, "{what}");
                assert_eq!(timed_out.status, status, "{what}");
                assert!(timed_out.body.is_empty(), "{what}");
                assert_eq!(
                    timed_out.cache,
                    Some(CacheStatus::Miss(NotStored::Status)),
                    "{what}"
                );

                // Not stored: the next request asks the origin, and its page is stored.
                let next = send(&app, get_page(&[])).await;
                assert_eq!(next.status, StatusCode::OK, "{what}");
                assert_eq!(next.cache, Some(CacheStatus::Stored), "{what}");
                assert_eq!(next.text(), page(3), "{what}");
                assert_eq!(
                    send(&app, get_page(&[])).await.cache,
                    Some(CacheStatus::Hit),
                    "{what}"
                );
                assert_eq!(origin.calls(), 3, "{what}");
            }
        }
    }

    /// The wrong order. Outside the cache, the timeout drops the cache's unfinished request: the
    /// cache never sees a failure, so `stale_if_error` cannot answer and the client gets the
    /// timeout status though a stale page is there. The dropped request leaves nothing behind:
    /// the next one asks the origin at once and is stored.
    #[tokio::test(start_paused = true)]
    async fn outside_the_cache_the_timeout_hides_the_failure_from_stale_if_error() {
        for placement in PLACEMENTS {
            let status = StatusCode::GATEWAY_TIMEOUT;
            let clock = Clock::at(T0);
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let layer = cache_layer(placement, &cache)
                .stale_if_error(Duration::from_secs(3600))
                .clock(clock.reader());
            let app = stack(
                placement,
                layer,
                origin.route(),
                |route| route,
                |app| outside(app, TimeoutLayer::with_status_code(status, TIMEOUT)),
            );
            assert_eq!(
                send(&app, get_page(&[])).await.text(),
                page(1),
                "{placement:?}"
            );
            clock.advance(EXPIRED).await;

            origin.then(Act::Hang);
            let started = Instant::now();
            let timed_out = send(&app, get_page(&[])).await;
            assert_eq!(started.elapsed(), TIMEOUT, "{placement:?}");
            assert_eq!(
                timed_out.status, status,
                "{placement:?}: not the stale page"
            );
            assert_eq!(timed_out.cache, None, "{placement:?}");

            let started = Instant::now();
            let next = send(&app, get_page(&[])).await;
            assert_eq!(started.elapsed(), Duration::ZERO, "{placement:?}: no wait");
            assert_eq!(next.cache, Some(CacheStatus::Stored), "{placement:?}");
            assert_eq!(next.text(), page(3), "{placement:?}");
            assert_eq!(origin.calls(), 3, "{placement:?}");
        }
    }
}

/// `CatchPanicLayer` belongs inside the cache: the panic becomes a `500` the cache sees, which it
/// does not store and for which `stale_if_error` can stand in. Outside, the panic unwinds through
/// the cache, which lets go of the page (requests waiting for it go on) but cannot serve a stale
/// page.
mod catch_panic {
    use super::*;

    #[tokio::test]
    async fn inside_the_cache_a_panic_is_a_500_that_is_not_stored() {
        for placement in PLACEMENTS {
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache),
                origin.route(),
                |route| route.layer(CatchPanicLayer::new()),
                |app| app,
            );
            origin.then(Act::Panic);
            let panicked = send(&app, get_page(&[])).await;
            assert_eq!(
                panicked.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{placement:?}"
            );
            assert_eq!(
                panicked.cache,
                Some(CacheStatus::Miss(NotStored::Status)),
                "{placement:?}"
            );
            let next = send(&app, get_page(&[])).await;
            assert_eq!(next.cache, Some(CacheStatus::Stored), "{placement:?}");
            assert_eq!(next.text(), page(2), "{placement:?}");
            let hit = send(&app, get_page(&[])).await;
            assert_eq!(hit.cache, Some(CacheStatus::Hit), "{placement:?}");
            assert_eq!(hit.text(), page(2), "{placement:?}");
            assert_eq!(origin.calls(), 2, "{placement:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn inside_the_cache_stale_if_error_stands_in_for_a_panic() {
        for placement in PLACEMENTS {
            let clock = Clock::at(T0);
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let layer = cache_layer(placement, &cache)
                .stale_if_error(Duration::from_secs(3600))
                .clock(clock.reader());
            let app = stack(
                placement,
                layer,
                origin.route(),
                |route| route.layer(CatchPanicLayer::new()),
                |app| app,
            );
            send(&app, get_page(&[])).await;
            clock.advance(EXPIRED).await;
            origin.then(Act::Panic);
            let stale = send(&app, get_page(&[])).await;
            assert_eq!(stale.status, StatusCode::OK, "{placement:?}");
            assert_eq!(stale.text(), page(1), "{placement:?}");
            assert_eq!(
                stale.cache,
                Some(CacheStatus::Stale(Stale::IfError)),
                "{placement:?}"
            );
            assert_eq!(origin.calls(), 2, "{placement:?}");
        }
    }

    /// The wrong order for `stale_if_error`: with the panic caught outside the cache, the client
    /// gets the `500` though a stale page is there, and the `500` carries no cache status (the
    /// cache's request never ended). Nothing is stored, and the next request is.
    #[tokio::test(start_paused = true)]
    async fn outside_the_cache_the_panic_unwinds_through_it() {
        for placement in PLACEMENTS {
            let clock = Clock::at(T0);
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let layer = cache_layer(placement, &cache)
                .stale_if_error(Duration::from_secs(3600))
                .clock(clock.reader());
            let app = stack(
                placement,
                layer,
                origin.route(),
                |route| route,
                |app| outside(app, CatchPanicLayer::new()),
            );
            send(&app, get_page(&[])).await;
            clock.advance(EXPIRED).await;
            origin.then(Act::Panic);
            let panicked = send(&app, get_page(&[])).await;
            assert_eq!(
                panicked.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{placement:?}"
            );
            assert_eq!(panicked.cache, None, "{placement:?}");
            let next = send(&app, get_page(&[])).await;
            assert_eq!(next.cache, Some(CacheStatus::Stored), "{placement:?}");
            assert_eq!(next.text(), page(3), "{placement:?}");
            assert_eq!(origin.calls(), 3, "{placement:?}");
        }
    }

    /// A request waiting for another's fetch of the page is released when that fetch panics,
    /// whichever side of the cache catches the panic: it asks the origin itself at once (not
    /// after the wait timeout), and its page is stored.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_fetch_releases_the_requests_waiting_for_it() {
        for caught_inside in [true, false] {
            for placement in PLACEMENTS {
                let what = format!("{placement:?}, caught inside: {caught_inside}");
                let cache = Cache::new(MemoryStore::new());
                let origin = Origin::default();
                let layer = cache_layer(placement, &cache);
                let counters = layer.clone();
                let app = stack(
                    placement,
                    layer,
                    origin.route(),
                    |route| {
                        if caught_inside {
                            route.layer(CatchPanicLayer::new())
                        } else {
                            route
                        }
                    },
                    |app| {
                        if caught_inside {
                            app
                        } else {
                            outside(app, CatchPanicLayer::new())
                        }
                    },
                );
                let gate = Gate::new();
                origin.then(Act::PanicAfter(gate.clone()));
                let first = spawn_send(&app, get_page(&[]));
                until("the first request reached the origin", || {
                    origin.calls() == 1
                })
                .await;
                let started = Instant::now();
                let second = spawn_send(&app, get_page(&[]));
                until("the second request waits for the first", || {
                    counters.stats().coalesced == 1
                })
                .await;
                gate.open();

                let first = first.await.unwrap();
                assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
                let expected = caught_inside.then_some(CacheStatus::Miss(NotStored::Status));
                assert_eq!(first.cache, expected, "{what}");
                let second = second.await.unwrap();
                assert_eq!(
                    started.elapsed(),
                    Duration::ZERO,
                    "{what}: released at once"
                );
                assert_eq!(second.status, StatusCode::OK, "{what}");
                assert_eq!(second.text(), page(2), "{what}");
                assert_eq!(second.cache, Some(CacheStatus::Stored), "{what}");
                let hit = send(&app, get_page(&[])).await;
                assert_eq!(hit.cache, Some(CacheStatus::Hit), "{what}");
                assert_eq!(origin.calls(), 2, "{what}");
            }
        }
    }
}

/// What the cache does for a page right after its origin failed, and concurrent requests come.
mod after_a_failure {
    use super::*;

    /// How a request fails inside the cache.
    #[derive(Debug, Clone, Copy)]
    enum Failure {
        /// A panic, caught by `CatchPanicLayer` as a `500`.
        Panic,
        /// A hung origin, answered by `TimeoutLayer` with a `504`.
        Timeout,
    }

    fn failing_app(failure: Failure, layer: CacheLayer, origin: &Origin) -> App {
        stack(
            Placement::OnRouter,
            layer,
            origin.route(),
            |route| match failure {
                Failure::Panic => route.layer(CatchPanicLayer::new()),
                Failure::Timeout => route.layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    TIMEOUT,
                )),
            },
            |app| app,
        )
    }

    /// Two requests for the page, the second sent while the first is at the origin: returns how
    /// many of them reached the origin, and both replies.
    async fn two_at_once(app: &App, origin: &Origin, counters: &CacheLayer) -> (usize, Reply) {
        let (calls, coalesced) = (origin.calls(), counters.stats().coalesced);
        let gate = Gate::new();
        origin
            .then(Act::AnswerAfter(gate.clone()))
            .then(Act::AnswerAfter(gate.clone()));
        let first = spawn_send(app, get_page(&[]));
        until("the first request reached the origin", || {
            origin.calls() == calls + 1
        })
        .await;
        let second = spawn_send(app, get_page(&[]));
        until("the second request waits or reaches the origin", || {
            origin.calls() == calls + 2 || counters.stats().coalesced == coalesced + 1
        })
        .await;
        gate.open();
        let first = first.await.unwrap();
        assert_eq!(first.cache, Some(CacheStatus::Stored));
        let second = second.await.unwrap();
        assert_eq!(second.status, StatusCode::OK);
        (origin.calls() - calls, second)
    }

    /// SURPRISE, documented rather than fixed (`src/` is not this test's to change): a failure
    /// inside the cache (a caught panic's `500`, a timeout's `504` or `408`) that no stale page
    /// stands in for counts as a verdict on the page for everyone, so the page stops coalescing for
    /// `pass_timeout` (10 s by default). Two requests arriving together in that window both go to
    /// the origin, where without the failure, once the window has passed, or when `stale_if_error`
    /// answered for the failure, the second waits for the first and is served its page. The next
    /// request after a failure does ask the origin and is stored, so nothing is poisoned for good;
    /// but the burst that follows an origin failure reaches the failing origin unmerged.
    #[tokio::test(start_paused = true)]
    async fn after_an_origin_failure_the_page_stops_coalescing_for_pass_timeout() {
        for failure in [Failure::Panic, Failure::Timeout] {
            // Without a failure: the second request waits for the first and gets its page.
            let origin = Origin::default();
            let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
            let app = failing_app(failure, layer.clone(), &origin);
            let (calls, second) = two_at_once(&app, &origin, &layer).await;
            assert_eq!(calls, 1, "{failure:?}: control");
            assert_eq!(second.cache, Some(CacheStatus::Hit), "{failure:?}: control");
            assert_eq!(second.text(), page(1), "{failure:?}: control");

            // Right after a failure: both go to the origin.
            let origin = Origin::default();
            let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
            let app = failing_app(failure, layer.clone(), &origin);
            origin.then(match failure {
                Failure::Panic => Act::Panic,
                Failure::Timeout => Act::Hang,
            });
            let failed = send(&app, get_page(&[])).await;
            assert!(failed.status.is_server_error(), "{failure:?}");
            let (calls, second) = two_at_once(&app, &origin, &layer).await;
            assert_eq!(calls, 2, "{failure:?}: both asked the origin");
            assert_eq!(layer.stats().coalesced, 0, "{failure:?}: neither waited");
            assert_eq!(second.text(), page(3), "{failure:?}");

            // Once `pass_timeout` has passed since a failure, requests coalesce again.
            let origin = Origin::default();
            let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
            let app = failing_app(failure, layer.clone(), &origin);
            origin.then(match failure {
                Failure::Panic => Act::Panic,
                Failure::Timeout => Act::Hang,
            });
            send(&app, get_page(&[])).await;
            tokio::time::advance(Duration::from_secs(11)).await;
            let (calls, second) = two_at_once(&app, &origin, &layer).await;
            assert_eq!(calls, 1, "{failure:?}: after pass_timeout");
            assert_eq!(second.cache, Some(CacheStatus::Hit), "{failure:?}");
            assert_eq!(second.text(), page(2), "{failure:?}");

            // With a stale page that `stale_if_error` sends instead of the failure, the page is
            // not marked: requests coalesce at once.
            let clock = Clock::at(T0);
            let origin = Origin::default();
            let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
                .stale_if_error(Duration::from_secs(3600))
                .clock(clock.reader());
            let app = failing_app(failure, layer.clone(), &origin);
            send(&app, get_page(&[])).await;
            clock.advance(EXPIRED).await;
            origin.then(match failure {
                Failure::Panic => Act::Panic,
                Failure::Timeout => Act::Hang,
            });
            let stale = send(&app, get_page(&[])).await;
            assert_eq!(
                stale.cache,
                Some(CacheStatus::Stale(Stale::IfError)),
                "{failure:?}"
            );
            let (calls, second) = two_at_once(&app, &origin, &layer).await;
            assert_eq!(calls, 1, "{failure:?}: after a stale answer");
            assert_eq!(second.cache, Some(CacheStatus::Hit), "{failure:?}");
            assert_eq!(second.text(), page(3), "{failure:?}");
        }
    }
}

/// `SetResponseHeaderLayer` setting `Cache-Control` changes what is stored only inside the
/// cache; outside it, it changes what clients are told and nothing else.
mod set_header {
    use super::*;

    fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
        SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )
    }

    fn max_age_60() -> SetResponseHeaderLayer<HeaderValue> {
        SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn inside_the_cache_it_decides_what_is_stored() {
        for placement in PLACEMENTS {
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache),
                origin.route(),
                |route| route.layer(no_store()),
                |app| app,
            );
            for n in 1..=2 {
                let reply = send(&app, get_page(&[])).await;
                assert_eq!(
                    reply.header("cache-control"),
                    Some("no-store"),
                    "{placement:?}"
                );
                assert_eq!(
                    reply.cache,
                    Some(CacheStatus::Miss(NotStored::CacheControl)),
                    "{placement:?}"
                );
                assert_eq!(reply.text(), page(n), "{placement:?}");
            }

            let clock = Clock::at(T0);
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache).clock(clock.reader()),
                origin.route(),
                |route| route.layer(max_age_60()),
                |app| app,
            );
            let stored = send(&app, get_page(&[])).await;
            assert_eq!(stored.cache, Some(CacheStatus::Stored), "{placement:?}");
            assert_eq!(
                stored.header("cache-control"),
                Some("max-age=60"),
                "{placement:?}"
            );
            clock.advance(Duration::from_secs(59)).await;
            let hit = send(&app, get_page(&[])).await;
            assert_eq!(hit.cache, Some(CacheStatus::Hit), "{placement:?}");
            clock.advance(Duration::from_secs(2)).await;
            let later = send(&app, get_page(&[])).await;
            if placement == Placement::CachePage {
                // `cache_page`'s own timeout decides how long the page is kept, as documented;
                // clients are still told the shorter max-age.
                assert_eq!(later.cache, Some(CacheStatus::Hit), "{placement:?}");
                assert_eq!(later.header("cache-control"), Some("max-age=60"));
            } else {
                assert_eq!(later.cache, Some(CacheStatus::Stored), "{placement:?}");
                assert_eq!(later.text(), page(2), "{placement:?}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outside_the_cache_it_changes_only_what_clients_see() {
        for placement in PLACEMENTS {
            // `no-store` outside: clients are told not to keep the page, but this cache never
            // saw the header: it stores the page and serves hits.
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache),
                origin.route(),
                |route| route,
                |app| outside(app, no_store()),
            );
            let stored = send(&app, get_page(&[])).await;
            assert_eq!(stored.cache, Some(CacheStatus::Stored), "{placement:?}");
            assert_eq!(
                stored.header("cache-control"),
                Some("no-store"),
                "{placement:?}"
            );
            let hit = send(&app, get_page(&[])).await;
            assert_eq!(hit.cache, Some(CacheStatus::Hit), "{placement:?}");
            assert_eq!(
                hit.header("cache-control"),
                Some("no-store"),
                "{placement:?}"
            );
            assert_eq!(origin.calls(), 1, "{placement:?}");

            // `max-age=60` if not present, outside: the cache has already written its own
            // max-age, so the layer finds one and does nothing; the page lives 600 s.
            let clock = Clock::at(T0);
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache).clock(clock.reader()),
                origin.route(),
                |route| route,
                |app| outside(app, max_age_60()),
            );
            let stored = send(&app, get_page(&[])).await;
            assert_eq!(
                stored.header("cache-control"),
                Some("max-age=600"),
                "{placement:?}"
            );
            clock.advance(Duration::from_secs(61)).await;
            let hit = send(&app, get_page(&[])).await;
            assert_eq!(hit.cache, Some(CacheStatus::Hit), "{placement:?}");
            assert_eq!(
                hit.header("cache-control"),
                Some("max-age=600"),
                "{placement:?}"
            );
            assert_eq!(origin.calls(), 1, "{placement:?}");
        }
    }

    /// Between the cache and `TimeoutLayer`, a layer that sets `Cache-Control` stamps the
    /// timeout's own response too: the cache does not store the error (its status), but the
    /// client and every cache downstream are told they may keep it for a minute. Innermost, next
    /// to the handler, it marks only the handler's responses.
    #[tokio::test(start_paused = true)]
    async fn outside_the_timeout_it_marks_the_timeouts_response_too() {
        for innermost in [true, false] {
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let timeout = TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, TIMEOUT);
            let route = if innermost {
                origin
                    .route()
                    .layer(ServiceBuilder::new().layer(timeout).layer(max_age_60()))
            } else {
                origin
                    .route()
                    .layer(ServiceBuilder::new().layer(max_age_60()).layer(timeout))
            };
            let app = boxed(
                Router::new()
                    .route("/page", route)
                    .layer(CacheLayer::new(cache)),
            );
            origin.then(Act::Hang);
            let timed_out = send(&app, get_page(&[])).await;
            assert_eq!(timed_out.status, StatusCode::GATEWAY_TIMEOUT);
            assert_eq!(timed_out.cache, Some(CacheStatus::Miss(NotStored::Status)));
            let expected = (!innermost).then_some("max-age=60");
            assert_eq!(
                timed_out.header("cache-control"),
                expected,
                "innermost: {innermost}"
            );
            let page = send(&app, get_page(&[])).await;
            assert_eq!(page.header("cache-control"), Some("max-age=60"));
            assert_eq!(page.cache, Some(CacheStatus::Stored));
        }
    }
}

/// `CorsLayer` belongs outside the cache: preflights are answered before the cache, one stored
/// page serves every origin, and each response gets the `Access-Control-Allow-Origin` of its own
/// request. Inside, the cache honours the `Vary: Origin` the layer adds and keeps one entry per
/// origin; without that `Vary`, it would serve one origin's header to another.
mod cors {
    use super::*;

    const A: &str = "https://a.example";
    const B: &str = "https://b.example";
    const STRANGER: &str = "https://stranger.example";

    fn cors() -> CorsLayer {
        CorsLayer::new()
            .allow_origin([A.parse().unwrap(), B.parse().unwrap()])
            .allow_methods([Method::GET])
    }

    fn preflight(origin: &str) -> Request<Body> {
        request(
            Method::OPTIONS,
            "/page",
            &[("origin", origin), ("access-control-request-method", "GET")],
        )
    }

    #[tokio::test]
    async fn preflight_is_never_cached() {
        for inside in [false, true] {
            for placement in PLACEMENTS {
                let what = format!("{placement:?}, inside: {inside}");
                let cache = Cache::new(MemoryStore::new());
                let origin = Origin::default();
                let app = stack(
                    placement,
                    cache_layer(placement, &cache),
                    origin.route(),
                    |route| if inside { route.layer(cors()) } else { route },
                    |app| if inside { app } else { outside(app, cors()) },
                );
                for (from, allowed) in [(A, Some(A)), (B, Some(B)), (STRANGER, None), (A, Some(A))]
                {
                    let reply = send(&app, preflight(from)).await;
                    assert_eq!(reply.status, StatusCode::OK, "{what}");
                    assert_eq!(
                        reply.header("access-control-allow-origin"),
                        allowed,
                        "{what}"
                    );
                    assert_eq!(
                        reply.header("access-control-allow-methods"),
                        Some("GET"),
                        "{what}"
                    );
                    assert!(reply.varies_on("origin"), "{what}");
                    // Outside, the preflight never reaches the cache; inside, the cache lets it
                    // through untouched.
                    let expected = inside.then_some(CacheStatus::Bypass(Bypass::Method));
                    assert_eq!(reply.cache, expected, "{what}");
                }
                assert_eq!(origin.calls(), 0, "{what}");
                // Nothing was stored for the page: the first GET is a miss.
                let first = send(&app, get_page(&[("origin", A)])).await;
                assert_eq!(first.cache, Some(CacheStatus::Stored), "{what}");
                assert_eq!(
                    first.header("access-control-allow-origin"),
                    Some(A),
                    "{what}"
                );
            }
        }
    }

    #[tokio::test]
    async fn outside_the_cache_one_entry_serves_every_origin_its_own_header() {
        for placement in PLACEMENTS {
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache),
                origin.route(),
                |route| route,
                |app| outside(app, cors()),
            );
            let steps = [
                (Some(A), Some(A), CacheStatus::Stored),
                (Some(B), Some(B), CacheStatus::Hit),
                (None, None, CacheStatus::Hit),
                (Some(STRANGER), None, CacheStatus::Hit),
                (Some(A), Some(A), CacheStatus::Hit),
            ];
            for (from, allowed, status) in steps {
                let headers: Vec<(&str, &str)> = from.map(|o| ("origin", o)).into_iter().collect();
                let reply = send(&app, get_page(&headers)).await;
                let what = format!("{placement:?} from {from:?}");
                assert_eq!(reply.cache, Some(status), "{what}");
                assert_eq!(
                    reply.header("access-control-allow-origin"),
                    allowed,
                    "{what}"
                );
                assert!(reply.varies_on("origin"), "{what}");
                assert_eq!(reply.text(), page(1), "{what}");
            }
            assert_eq!(origin.calls(), 1, "{placement:?}");
        }
    }

    #[tokio::test]
    async fn inside_the_cache_vary_origin_keeps_origins_apart() {
        for placement in PLACEMENTS {
            let cache = Cache::new(MemoryStore::new());
            let origin = Origin::default();
            let app = stack(
                placement,
                cache_layer(placement, &cache),
                origin.route(),
                |route| route.layer(cors()),
                |app| app,
            );
            let steps = [
                (Some(A), Some(A), CacheStatus::Stored, 1),
                (Some(B), Some(B), CacheStatus::Stored, 2),
                (Some(A), Some(A), CacheStatus::Hit, 1),
                (Some(B), Some(B), CacheStatus::Hit, 2),
                (None, None, CacheStatus::Stored, 3),
                (Some(STRANGER), None, CacheStatus::Stored, 4),
                (None, None, CacheStatus::Hit, 3),
            ];
            for (from, allowed, status, n) in steps {
                let headers: Vec<(&str, &str)> = from.map(|o| ("origin", o)).into_iter().collect();
                let reply = send(&app, get_page(&headers)).await;
                let what = format!("{placement:?} from {from:?}");
                assert_eq!(reply.cache, Some(status), "{what}");
                assert_eq!(
                    reply.header("access-control-allow-origin"),
                    allowed,
                    "{what}"
                );
                assert_eq!(reply.text(), page(n), "{what}");
            }
            assert_eq!(origin.calls(), 4, "{placement:?}");
        }
    }

    /// A `CorsLayer` told to send no `Vary` (`vary([])`) is safe only outside the cache. Inside,
    /// the cache follows HTTP: a response without `Vary` is the same for everyone, so origin B is
    /// served the page stored for origin A, with A's `Access-Control-Allow-Origin`, and its
    /// browser refuses it.
    #[tokio::test]
    async fn without_vary_only_outside_the_cache_keeps_allow_origin_right() {
        let unvaried = || cors().vary([]);
        for inside in [false, true] {
            let origin = Origin::default();
            let app = stack(
                Placement::OnRouter,
                CacheLayer::new(Cache::new(MemoryStore::new())),
                origin.route(),
                |route| {
                    if inside {
                        route.layer(unvaried())
                    } else {
                        route
                    }
                },
                |app| {
                    if inside {
                        app
                    } else {
                        outside(app, unvaried())
                    }
                },
            );
            let a = send(&app, get_page(&[("origin", A)])).await;
            assert_eq!(a.header("access-control-allow-origin"), Some(A));
            assert!(!a.varies_on("origin"));
            let b = send(&app, get_page(&[("origin", B)])).await;
            assert_eq!(b.cache, Some(CacheStatus::Hit), "inside: {inside}");
            let expected = if inside { A } else { B };
            assert_eq!(
                b.header("access-control-allow-origin"),
                Some(expected),
                "inside: {inside}"
            );
        }
    }
}

/// `TraceLayer` outside or inside the cache changes nothing a client sees: the same replies, in
/// the same order, hits and misses alike. Outside, it sees every request; inside, only those that
/// reach the origin.
mod trace {
    use super::*;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// A subscriber that enables everything and counts tower-http's request spans and response
    /// events, so spans are really created and entered while the cache runs.
    #[derive(Clone, Default)]
    struct Spans {
        next_id: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
        responses: Arc<AtomicUsize>,
    }

    impl Spans {
        fn take(&self) -> (usize, usize) {
            (
                self.requests.swap(0, Ordering::SeqCst),
                self.responses.swap(0, Ordering::SeqCst),
            )
        }
    }

    impl Subscriber for Spans {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let metadata = span.metadata();
            if metadata.target().starts_with("tower_http") && metadata.name() == "request" {
                self.requests.fetch_add(1, Ordering::SeqCst);
            }
            Id::from_u64(self.next_id.fetch_add(1, Ordering::SeqCst) as u64 + 1)
        }

        fn record(&self, _: &Id, _: &Record<'_>) {}

        fn record_follows_from(&self, _: &Id, _: &Id) {}

        fn event(&self, event: &Event<'_>) {
            if event.metadata().target() == "tower_http::trace::on_response" {
                self.responses.fetch_add(1, Ordering::SeqCst);
            }
        }

        fn enter(&self, _: &Id) {}

        fn exit(&self, _: &Id) {}
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Trace {
        None,
        Outside,
        Inside,
    }

    #[tokio::test(start_paused = true)]
    async fn outside_or_inside_spans_change_nothing() {
        let spans = Spans::default();
        let _subscriber = tracing::subscriber::set_default(spans.clone());
        let script = || {
            [
                get_page(&[]),
                get_page(&[("accept-encoding", "gzip")]),
                request(Method::HEAD, "/page", &[]),
                request(Method::GET, "/page?q=1", &[]),
                get_page(&[]),
            ]
        };
        for placement in PLACEMENTS {
            let mut runs = Vec::new();
            for trace in [Trace::None, Trace::Outside, Trace::Inside] {
                let clock = Clock::at(T0);
                let cache = Cache::new(MemoryStore::new());
                let origin = Origin::default();
                let app = stack(
                    placement,
                    cache_layer(placement, &cache).clock(clock.reader()),
                    origin.route(),
                    |route| match trace {
                        Trace::Inside => route.layer(TraceLayer::new_for_http()),
                        _ => route,
                    },
                    |app| match trace {
                        Trace::Outside => outside(app, TraceLayer::new_for_http()),
                        _ => app,
                    },
                );
                let mut replies = Vec::new();
                for request in script() {
                    replies.push(send(&app, request).await);
                }
                let what = format!("{placement:?} {trace:?}");
                let statuses: Vec<_> = replies.iter().map(|reply| reply.cache).collect();
                use CacheStatus::{Hit, Stored};
                assert_eq!(
                    statuses,
                    [Some(Stored), Some(Hit), Some(Hit), Some(Stored), Some(Hit)],
                    "{what}"
                );
                assert_eq!(origin.calls(), 2, "{what}");
                let (requests, responses) = spans.take();
                let expected = match trace {
                    Trace::None => 0,
                    Trace::Outside => 5,
                    Trace::Inside => 2,
                };
                assert_eq!((requests, responses), (expected, expected), "{what}");
                runs.push(replies);
            }
            assert_eq!(runs[1], runs[0], "{placement:?}: outside");
            assert_eq!(runs[2], runs[0], "{placement:?}: inside");
        }
    }
}

/// The whole stack in the order the response caching chapter recommends, outermost first:
/// `TraceLayer`, `CompressionLayer`, `CorsLayer`, `ConditionalGetLayer`, the cache,
/// `CatchPanicLayer`, `TimeoutLayer`, `SetResponseHeaderLayer`, the handler; on the router, and
/// around it in the shape `axum::serve` takes. Every layer does its job and none undoes another's.
mod recommended {
    use super::*;
    use axum::extract::Request as AxumRequest;
    use axum::response::IntoResponse;

    const A: &str = "https://a.example";
    const B: &str = "https://b.example";

    fn cors() -> CorsLayer {
        CorsLayer::new()
            .allow_origin([A.parse().unwrap(), B.parse().unwrap()])
            .allow_methods([Method::GET])
    }

    fn cache(clock: &Clock) -> CacheLayer {
        CacheLayer::new(Cache::new(MemoryStore::new()))
            .stale_if_error(Duration::from_secs(3600))
            .clock(clock.reader())
    }

    /// The layers inside the cache, innermost first.
    fn handler_side(router: Router) -> Router {
        router
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=60"),
            ))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                TIMEOUT,
            ))
            .layer(CatchPanicLayer::new())
    }

    fn on_the_router(clock: &Clock, origin: &Origin) -> App {
        let router = handler_side(Router::new().route("/page", origin.route()));
        boxed(
            router
                .layer(cache(clock))
                .layer(ConditionalGetLayer::new())
                .layer(cors())
                .layer(CompressionLayer::new())
                .layer(TraceLayer::new_for_http()),
        )
    }

    /// What `axum::serve` takes (after `into_make_service`).
    fn servable<S>(service: S) -> S
    where
        S: Service<AxumRequest, Response = Response, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send,
    {
        service
    }

    fn around_the_router(clock: &Clock, origin: &Origin) -> App {
        let router = handler_side(Router::new().route("/page", origin.route()));
        let site = ServiceBuilder::new()
            .map_response(IntoResponse::into_response)
            .layer(TraceLayer::new_for_http())
            .layer(CompressionLayer::new())
            .layer(cors())
            // `CorsLayer` makes some responses itself, with its body's `Default`: this crate's
            // bodies have one (see `plain_tower`).
            .layer(ConditionalGetLayer::new())
            .service(cache(clock).around(router));
        boxed(servable(site))
    }

    #[tokio::test(start_paused = true)]
    async fn the_recommended_stack() {
        type Build = fn(&Clock, &Origin) -> App;
        for (name, build) in [
            ("on the router", on_the_router as Build),
            ("around the router", around_the_router),
        ] {
            let clock = Clock::at(T0);
            let origin = Origin::default();
            let app = build(&clock, &origin);

            let first = send(
                &app,
                get_page(&[("origin", A), ("accept-encoding", "gzip")]),
            )
            .await;
            assert_eq!(first.cache, Some(CacheStatus::Stored), "{name}");
            assert_eq!(first.header("content-encoding"), Some("gzip"), "{name}");
            assert_eq!(first.text(), page(1), "{name}");
            assert_eq!(
                first.header("access-control-allow-origin"),
                Some(A),
                "{name}"
            );
            assert_eq!(first.header("cache-control"), Some("max-age=60"), "{name}");
            assert!(first.varies_on("accept-encoding"), "{name}");
            assert!(first.varies_on("origin"), "{name}");
            let etag = first.header("etag").expect("tagged").to_owned();

            // Another origin, no compression: the same stored page, as identity, with its own
            // CORS header and the same tag.
            let other = send(&app, get_page(&[("origin", B)])).await;
            assert_eq!(other.cache, Some(CacheStatus::Hit), "{name}");
            assert_eq!(other.header("content-encoding"), None, "{name}");
            assert_eq!(other.body, page(1).as_bytes(), "{name}");
            assert_eq!(
                other.header("access-control-allow-origin"),
                Some(B),
                "{name}"
            );
            assert_eq!(other.header("etag"), Some(etag.as_str()), "{name}");

            // A current copy: a 304 from the hit, with the CORS header of its origin.
            let current = send(
                &app,
                get_page(&[
                    ("origin", A),
                    ("accept-encoding", "gzip"),
                    ("if-none-match", &etag),
                ]),
            )
            .await;
            assert_eq!(current.status, StatusCode::NOT_MODIFIED, "{name}");
            assert_eq!(current.cache, Some(CacheStatus::Hit), "{name}");
            assert_eq!(
                current.header("access-control-allow-origin"),
                Some(A),
                "{name}"
            );

            // A preflight is answered before the cache.
            let preflight = send(
                &app,
                request(
                    Method::OPTIONS,
                    "/page",
                    &[("origin", B), ("access-control-request-method", "GET")],
                ),
            )
            .await;
            assert_eq!(
                preflight.header("access-control-allow-origin"),
                Some(B),
                "{name}"
            );
            assert_eq!(preflight.cache, None, "{name}");
            assert_eq!(origin.calls(), 1, "{name}");

            // Expired (the 60 s the innermost layer set): a hung origin and a panicking one are
            // both answered with the stale page, compressed for the client that asks so.
            clock.advance(Duration::from_secs(61)).await;
            origin.then(Act::Hang).then(Act::Panic);
            for _ in 0..2 {
                let started = Instant::now();
                let stale = send(&app, get_page(&[("accept-encoding", "gzip")])).await;
                assert_eq!(
                    stale.cache,
                    Some(CacheStatus::Stale(Stale::IfError)),
                    "{name}"
                );
                assert_eq!(stale.status, StatusCode::OK, "{name}");
                assert_eq!(stale.header("content-encoding"), Some("gzip"), "{name}");
                assert_eq!(stale.text(), page(1), "{name}");
                assert!(started.elapsed() <= TIMEOUT, "{name}");
            }
            let fresh = send(&app, get_page(&[])).await;
            assert_eq!(fresh.cache, Some(CacheStatus::Stored), "{name}");
            assert_eq!(fresh.text(), page(4), "{name}");
            assert_eq!(origin.calls(), 4, "{name}");
        }
    }
}

/// Outside axum's `Router::layer` (which turns every layer's response into axum's own), the
/// layers meet each other's body types as they are.
mod plain_tower {
    use super::*;
    use axum::response::IntoResponse;
    use axum_cache::conditional::ConditionalBody;
    use axum_cache::page::CacheBody;
    use std::marker::PhantomData;

    const A: &str = "https://a.example";

    fn cors() -> CorsLayer {
        CorsLayer::new().allow_origin([HeaderValue::from_static(A)])
    }

    /// Whether `T: Default`, decided where a concrete type is named: the inherent method, taken
    /// when its bound holds, comes before the trait's fallback.
    struct Probe<T>(PhantomData<T>);

    trait Fallback {
        fn is_default(&self) -> bool {
            false
        }
    }

    impl<T> Fallback for Probe<T> {}

    impl<T: Default> Probe<T> {
        fn is_default(&self) -> bool {
            true
        }
    }

    /// tower-http's `CorsLayer` and `TimeoutLayer` (and `ValidateRequestHeaderLayer`) need a
    /// response body with `Default`, for the responses they make themselves. This crate's
    /// bodies have one, so in a plain Tower stack (`ServiceBuilder`, the layers around
    /// `CacheLayer::around`) they wrap `CacheLayer`, `ConditionalGetLayer` and `condition()`
    /// directly. (`Router::layer` converts bodies between layers, so it never needed it.)
    #[test]
    fn our_bodies_have_a_default_so_cors_and_timeout_wrap_them_directly() {
        assert!(
            !Probe::<NoDefault>(PhantomData).is_default(),
            "the probe can say no"
        );
        assert!(Probe::<CacheBody<Body>>(PhantomData).is_default());
        assert!(Probe::<ConditionalBody<Body>>(PhantomData).is_default());
    }

    /// A type without `Default`, for the probe's control.
    struct NoDefault;

    #[tokio::test]
    async fn a_plain_stack_of_cors_timeout_and_our_layers_serves_hits() {
        let origin = Origin::default();
        let router = Router::new().route("/page", origin.route());
        let cache = CacheLayer::new(Cache::new(MemoryStore::new()));
        let stack = ServiceBuilder::new()
            .map_response(IntoResponse::into_response)
            .layer(cors())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                TIMEOUT,
            ))
            .layer(ConditionalGetLayer::new())
            .service(cache.around(router));
        let app = boxed(stack);
        let first = send(&app, get_page(&[("origin", A)])).await;
        assert_eq!(first.cache, Some(CacheStatus::Stored));
        let second = send(&app, get_page(&[("origin", A)])).await;
        assert_eq!(second.cache, Some(CacheStatus::Hit));
        assert_eq!(second.text(), first.text());
        assert_eq!(origin.calls(), 1);
    }
}
