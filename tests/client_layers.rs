//! The client-side caching layers through real axum routers: Django's conditional processing,
//! ConditionalGetMiddleware and decorator tests, the flaws of Django's versions fixed here,
//! bodies that are not what they claim, and every layer in every position.

mod support;

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get};
use axum_cache::headers::CacheControl;
use axum_cache::store::MemoryStore;
use axum_cache::{
    Cache, CacheLayer, CacheStatus, ConditionalGetLayer, VaryLayer, cache_control, cache_page,
    condition, never_cache, vary_on_cookie, vary_on_headers,
};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};

use support::http::request;

/// Counts handler calls.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// A `GET` route answering `body` and counting its calls here.
    fn get(&self, body: &'static str) -> MethodRouter {
        let calls = self.clone();
        get(move || {
            calls.hit();
            async move { body }
        })
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    cache: Option<CacheStatus>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let cache = response.extensions().get::<CacheStatus>().copied();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
        cache,
    }
}

fn get_req(uri: &str) -> Request<Body> {
    request(Method::GET, uri, &[])
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// Django's conditional_processing tests, through routes guarded by `condition()`.
mod condition_processing {
    use super::*;

    const FULL_RESPONSE: &str = "Test conditional get response";
    const ETAG: &str = r#""b4246ffc4f62314ca13147c9d4f76974""#;
    const WEAK_ETAG: &str = r#"W/"b4246ffc4f62314ca13147c9d4f76974""#;
    const EXPIRED_ETAG: &str = r#""7fae4cd4b0f81e7d2914700043aa8ed6""#;
    const LAST_MODIFIED: &str = "Sun, 21 Oct 2007 23:21:47 GMT";
    const NEWER: &str = "Mon, 18 Oct 2010 16:56:23 GMT";
    const INVALID: &str = "Mon, 32 Oct 2010 16:56:23 GMT";
    const OLDER: &str = "Sat, 20 Oct 2007 23:21:47 GMT";

    /// `LAST_MODIFIED`, with a fraction of a second the header drops.
    fn last_modified() -> SystemTime {
        at(1_193_008_907) + Duration::from_millis(250)
    }

    /// The routes of Django's conditional_processing/urls.py.
    #[derive(Clone, Copy, Debug)]
    enum View {
        Condition,
        LastModified,
        LastModified2,
        Etag,
        Etag2,
        UnquotedEtag,
        WeakEtag,
        NoEtag,
    }

    impl View {
        fn path(self) -> &'static str {
            match self {
                View::Condition => "/condition/",
                View::LastModified => "/condition/last_modified/",
                View::LastModified2 => "/condition/last_modified2/",
                View::Etag => "/condition/etag/",
                View::Etag2 => "/condition/etag2/",
                View::UnquotedEtag => "/condition/unquoted_etag/",
                View::WeakEtag => "/condition/weak_etag/",
                View::NoEtag => "/condition/no_etag/",
            }
        }

        /// The `ETag` the route's GET and HEAD responses carry.
        fn etag(self) -> Option<&'static str> {
            match self {
                View::Condition | View::Etag | View::Etag2 | View::UnquotedEtag => Some(ETAG),
                View::WeakEtag => Some(WEAK_ETAG),
                View::LastModified | View::LastModified2 | View::NoEtag => None,
            }
        }

        /// The `Last-Modified` the route's GET and HEAD responses carry.
        fn last_modified(self) -> Option<&'static str> {
            match self {
                View::Condition | View::LastModified | View::LastModified2 => Some(LAST_MODIFIED),
                _ => None,
            }
        }
    }

    /// The view: counts its calls and answers every method.
    fn handler(calls: &Calls) -> MethodRouter {
        let calls = calls.clone();
        any(move || {
            calls.hit();
            async { FULL_RESPONSE }
        })
    }

    fn etag_of(
        tag: &'static str,
    ) -> impl Fn(&http::request::Parts) -> std::future::Ready<Option<String>> + Clone {
        move |_| std::future::ready(Some(tag.to_owned()))
    }

    /// Django's conditional_processing views, each guarded as its decorator is. The routes use
    /// `MethodRouter::layer`, `Router::route_layer` is covered by `placement`.
    fn app(calls: &Calls) -> Router {
        let lm = || condition().last_modified(|_| async { Some(last_modified()) });
        Router::new()
            .route(
                View::Condition.path(),
                handler(calls).layer(
                    condition()
                        .etag(etag_of(ETAG))
                        .last_modified(|_| async { Some(last_modified()) }),
                ),
            )
            .route(View::LastModified.path(), handler(calls).layer(lm()))
            .route(View::LastModified2.path(), handler(calls).layer(lm()))
            .route(
                View::Etag.path(),
                handler(calls).layer(condition().etag(etag_of(ETAG))),
            )
            .route(
                View::Etag2.path(),
                handler(calls).layer(condition().etag(etag_of(ETAG))),
            )
            .route(
                View::UnquotedEtag.path(),
                handler(calls).layer(condition().etag(etag_of(ETAG.trim_matches('"')))),
            )
            .route(
                View::WeakEtag.path(),
                handler(calls).layer(condition().etag(etag_of(WEAK_ETAG))),
            )
            .route(
                View::NoEtag.path(),
                handler(calls).layer(condition().etag(|_| async { None })),
            )
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Expect {
        Full,
        NotModified,
        Failed,
    }

    use Expect::{Failed, Full, NotModified};

    type Case = (
        &'static str,
        Method,
        View,
        Vec<(&'static str, &'static str)>,
        Expect,
    );

    const IMS: &str = "if-modified-since";
    const IUS: &str = "if-unmodified-since";
    const INM: &str = "if-none-match";
    const IM: &str = "if-match";

    fn cases() -> Vec<Case> {
        let (get, put, head) = (Method::GET, Method::PUT, Method::HEAD);
        let both: &'static str = concat!(
            r#""b4246ffc4f62314ca13147c9d4f76974""#,
            ", ",
            r#""7fae4cd4b0f81e7d2914700043aa8ed6""#
        );
        use View::*;
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("1 no conditions", get.clone(), Condition, vec![], Full),
            ("2 IMS=LM GET", get.clone(), Condition, vec![(IMS, LAST_MODIFIED)], NotModified),
            ("2 IMS=LM PUT", put.clone(), Condition, vec![(IMS, LAST_MODIFIED)], Full),
            ("2 IMS=NEWER GET", get.clone(), Condition, vec![(IMS, NEWER)], NotModified),
            ("2 IMS=NEWER PUT", put.clone(), Condition, vec![(IMS, NEWER)], Full),
            ("2 IMS=INVALID", get.clone(), Condition, vec![(IMS, INVALID)], Full),
            ("2 IMS=OLDER", get.clone(), Condition, vec![(IMS, OLDER)], Full),
            ("3 IUS=LM", get.clone(), Condition, vec![(IUS, LAST_MODIFIED)], Full),
            ("3 IUS=NEWER", get.clone(), Condition, vec![(IUS, NEWER)], Full),
            ("3 IUS=INVALID", get.clone(), Condition, vec![(IUS, INVALID)], Full),
            ("3 IUS=OLDER", get.clone(), Condition, vec![(IUS, OLDER)], Failed),
            ("4 INM=ETAG GET", get.clone(), Condition, vec![(INM, ETAG)], NotModified),
            ("4 INM=ETAG PUT", put.clone(), Condition, vec![(INM, ETAG)], Failed),
            ("4 INM=EXPIRED", get.clone(), Condition, vec![(INM, EXPIRED_ETAG)], Full),
            ("4 INM=ETAG,EXPIRED", get.clone(), Condition, vec![(INM, both)], NotModified),
            ("5 INM=ETAG weak GET", get.clone(), WeakEtag, vec![(INM, ETAG)], NotModified),
            ("5 INM=ETAG weak PUT", put.clone(), WeakEtag, vec![(INM, ETAG)], Failed),
            ("5 INM=WEAK weak GET", get.clone(), WeakEtag, vec![(INM, WEAK_ETAG)], NotModified),
            ("5 INM=WEAK weak PUT", put.clone(), WeakEtag, vec![(INM, WEAK_ETAG)], Failed),
            ("5 INM=WEAK GET", get.clone(), Condition, vec![(INM, WEAK_ETAG)], NotModified),
            ("5 INM=WEAK PUT", put.clone(), Condition, vec![(INM, WEAK_ETAG)], Failed),
            ("6 INM=* GET", get.clone(), Condition, vec![(INM, "*")], NotModified),
            ("6 INM=* PUT", put.clone(), Condition, vec![(INM, "*")], Failed),
            ("6 INM=* no etag", get.clone(), NoEtag, vec![(INM, "*")], Full),
            ("7 IM=ETAG PUT", put.clone(), Condition, vec![(IM, ETAG)], Full),
            ("7 IM=EXPIRED PUT", put.clone(), Condition, vec![(IM, EXPIRED_ETAG)], Failed),
            ("8 IM=ETAG weak", get.clone(), WeakEtag, vec![(IM, ETAG)], Failed),
            ("8 IM=WEAK weak", get.clone(), WeakEtag, vec![(IM, WEAK_ETAG)], Failed),
            ("8 IM=WEAK", get.clone(), Condition, vec![(IM, WEAK_ETAG)], Failed),
            ("9 IM=*", get.clone(), Condition, vec![(IM, "*")], Full),
            ("9 IM=* no etag", get.clone(), NoEtag, vec![(IM, "*")], Failed),
            ("10 IMS=LM INM=ETAG", get.clone(), Condition, vec![(IMS, LAST_MODIFIED), (INM, ETAG)], NotModified),
            ("10 IMS=OLDER INM=ETAG", get.clone(), Condition, vec![(IMS, OLDER), (INM, ETAG)], NotModified),
            ("10 IMS=LM INM=EXPIRED", get.clone(), Condition, vec![(IMS, LAST_MODIFIED), (INM, EXPIRED_ETAG)], Full),
            ("10 IMS=OLDER INM=EXPIRED", get.clone(), Condition, vec![(IMS, OLDER), (INM, EXPIRED_ETAG)], Full),
            ("11 IUS=LM IM=ETAG", get.clone(), Condition, vec![(IUS, LAST_MODIFIED), (IM, ETAG)], Full),
            ("11 IUS=OLDER IM=ETAG", get.clone(), Condition, vec![(IUS, OLDER), (IM, ETAG)], Full),
            ("11 IUS=OLDER IM=EXPIRED", get.clone(), Condition, vec![(IUS, OLDER), (IM, EXPIRED_ETAG)], Failed),
            ("11 IUS=LM IM=EXPIRED", get.clone(), Condition, vec![(IUS, LAST_MODIFIED), (IM, EXPIRED_ETAG)], Failed),
            ("12.1 IMS=LM last_modified", get.clone(), LastModified, vec![(IMS, LAST_MODIFIED)], NotModified),
            ("12.1 IMS=LM etag", get.clone(), Etag, vec![(IMS, LAST_MODIFIED)], Full),
            ("12.2 INM=ETAG etag", get.clone(), Etag, vec![(INM, ETAG)], NotModified),
            ("12.2 INM=ETAG last_modified", get.clone(), LastModified, vec![(INM, ETAG)], Full),
            ("12.3 IMS=OLDER last_modified", get.clone(), LastModified, vec![(IMS, OLDER)], Full),
            ("12.4 INM=EXPIRED etag", get.clone(), Etag, vec![(INM, EXPIRED_ETAG)], Full),
            ("12.5 IMS=LM last_modified2", get.clone(), LastModified2, vec![(IMS, LAST_MODIFIED)], NotModified),
            ("12.5 IMS=LM etag2", get.clone(), Etag2, vec![(IMS, LAST_MODIFIED)], Full),
            ("12.6 INM=ETAG etag2", get.clone(), Etag2, vec![(INM, ETAG)], NotModified),
            ("12.6 INM=ETAG last_modified2", get.clone(), LastModified2, vec![(INM, ETAG)], Full),
            ("12.7 IUS=OLDER last_modified", get.clone(), LastModified, vec![(IUS, OLDER)], Failed),
            ("12.7 IUS=OLDER etag", get.clone(), Etag, vec![(IUS, OLDER)], Failed),
            ("12.8 IUS=LM last_modified", get.clone(), LastModified, vec![(IUS, LAST_MODIFIED)], Full),
            ("12.9 IUS=OLDER last_modified2", get.clone(), LastModified2, vec![(IUS, OLDER)], Failed),
            ("12.9 IUS=OLDER etag2", get.clone(), Etag2, vec![(IUS, OLDER)], Failed),
            ("13 HEAD IMS=LM", head.clone(), Condition, vec![(IMS, LAST_MODIFIED)], NotModified),
            ("13 HEAD no conditions", head.clone(), Condition, vec![], Full),
            ("15 INM=ETAG unquoted GET", get.clone(), UnquotedEtag, vec![(INM, ETAG)], NotModified),
            ("15 INM=ETAG unquoted PUT", put.clone(), UnquotedEtag, vec![(INM, ETAG)], Failed),
            ("15 INM=EXPIRED unquoted", get.clone(), UnquotedEtag, vec![(INM, EXPIRED_ETAG)], Full),
            ("16 INM invalid", get.clone(), Etag, vec![(INM, r#"""""#)], Full),
        ];
        cases
    }

    /// Every request of Django's conditional_processing tests: the status, the body, the
    /// validators (on GET and HEAD only, whatever the outcome) and whether the view ran.
    #[tokio::test]
    async fn every_case_through_a_router() {
        let calls = Calls::default();
        let app = app(&calls);
        let cases = cases();
        assert_eq!(cases.len(), 60);
        for (name, method, route, headers, expect) in cases {
            let before = calls.count();
            let reply = send(&app, request(method.clone(), route.path(), &headers)).await;
            let ran = calls.count() - before;
            let safe = method == Method::GET || method == Method::HEAD;
            match expect {
                Full => {
                    assert_eq!(reply.status, StatusCode::OK, "{name}");
                    let body = if method == Method::HEAD {
                        ""
                    } else {
                        FULL_RESPONSE
                    };
                    assert_eq!(reply.body, body, "{name}");
                    assert_eq!(ran, 1, "{name}: the view runs");
                }
                NotModified | Failed => {
                    let status = if expect == NotModified {
                        StatusCode::NOT_MODIFIED
                    } else {
                        StatusCode::PRECONDITION_FAILED
                    };
                    assert_eq!(reply.status, status, "{name}");
                    assert!(reply.body.is_empty(), "{name}");
                    assert_eq!(ran, 0, "{name}: the view is not called");
                    assert_eq!(reply.header("content-type"), None, "{name}");
                }
            }
            let (etag, last_modified) = if safe {
                (route.etag(), route.last_modified())
            } else {
                (None, None)
            };
            assert_eq!(reply.header("etag"), etag, "{name}");
            assert_eq!(reply.header("last-modified"), last_modified, "{name}");
        }
    }

    /// The tag of the route that returns it unquoted is the quoted one.
    #[tokio::test]
    async fn unquoted_etags_are_quoted() {
        let app = app(&Calls::default());
        let quoted = send(&app, get_req(View::Etag.path())).await;
        let unquoted = send(&app, get_req(View::UnquotedEtag.path())).await;
        assert_eq!(quoted.header("etag"), Some(ETAG));
        assert_eq!(unquoted.header("etag"), quoted.header("etag"));
    }

    /// The results Django gives with `condition(etag="abc")`, and a handler's own validators.
    #[tokio::test]
    async fn decorator_results() {
        let calls = Calls::default();
        let app = Router::new().route(
            "/",
            handler(&calls).layer(condition().etag(|_| async { Some("abc".to_owned()) })),
        );
        let reply = send(
            &app,
            request(Method::GET, "/", &[(INM, r#""zzz", W/"abc""#)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
        assert_eq!(reply.header("etag"), Some(r#""abc""#));
        assert_eq!(reply.header("last-modified"), None);

        let reply = send(&app, request(Method::PUT, "/", &[(IM, r#""abc""#)])).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("etag"), None);

        let reply = send(&app, request(Method::GET, "/", &[(IM, r#""zzz""#)])).await;
        assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(reply.header("etag"), Some(r#""abc""#));

        let reply = send(&app, request(Method::DELETE, "/", &[(INM, "*")])).await;
        assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);

        let reply = send(&app, request(Method::POST, "/", &[(INM, r#""zzz""#)])).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(calls.count(), 2);
    }

    /// Django's decorator test: a GET without conditions gets both validators, the date in whole
    /// seconds; a handler's own validators are kept.
    #[tokio::test]
    async fn validators_are_set_unless_the_handler_set_its_own() {
        let lm = at(1_672_701_707) + Duration::from_millis(999);
        let layer = condition()
            .etag(|_| async { Some(r#""b4246ffc4f62314ca13147c9d4f76974""#.to_owned()) })
            .last_modified(move |_| async move { Some(lm) });
        let app = Router::new()
            .route("/", get(|| async { "x" }))
            .route(
                "/own",
                get(|| async { ([("etag", r#""mine""#), ("last-modified", "yesterday")], "x") }),
            )
            .route_layer(layer);
        let reply = send(&app, get_req("/")).await;
        assert_eq!(reply.header("etag"), Some(ETAG));
        assert_eq!(
            reply.header("last-modified"),
            Some("Mon, 02 Jan 2023 23:21:47 GMT")
        );
        let own = send(&app, get_req("/own")).await;
        assert_eq!(own.header("etag"), Some(r#""mine""#));
        assert_eq!(own.header("last-modified"), Some("yesterday"));
    }

    /// The validators are computed from the request and the application's state, concurrently,
    /// before the handler: a stale client gets the page, a current one a 304, and the handler
    /// only runs for the first.
    #[tokio::test]
    async fn validators_come_from_state_and_the_request() {
        #[derive(Clone, Default)]
        struct Db(Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>);
        let db = Db::default();
        db.0.lock().unwrap().insert("/articles/1".into(), 3);
        let calls = Calls::default();
        let lookups = Calls::default();
        let (etag_db, etag_lookups) = (db.clone(), lookups.clone());
        // Each lookup waits for the other to start: neither finishes unless both run at once.
        let both_started = Arc::new(tokio::sync::Barrier::new(2));
        let waiter = Arc::clone(&both_started);
        let app = Router::new().route(
            "/articles/{id}",
            calls.get("article").layer(
                condition()
                    .etag(move |request| {
                        let (db, path) = (etag_db.clone(), request.uri.path().to_owned());
                        let (lookups, barrier) = (etag_lookups.clone(), both_started.clone());
                        async move {
                            lookups.hit();
                            barrier.wait().await;
                            let version = *db.0.lock().unwrap().get(&path)?;
                            Some(format!("v{version}"))
                        }
                    })
                    .last_modified(move |_| {
                        let barrier = waiter.clone();
                        async move {
                            barrier.wait().await;
                            None
                        }
                    }),
            ),
        );
        let first = send(&app, get_req("/articles/1")).await;
        assert_eq!(first.header("etag"), Some(r#""v3""#));
        let again = send(
            &app,
            request(Method::GET, "/articles/1", &[(INM, r#""v3""#)]),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        db.0.lock().unwrap().insert("/articles/1".into(), 4);
        let changed = send(
            &app,
            request(Method::GET, "/articles/1", &[(INM, r#""v3""#)]),
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK);
        assert_eq!(changed.header("etag"), Some(r#""v4""#));
        let missing = send(&app, get_req("/articles/2")).await;
        assert_eq!(missing.header("etag"), None);
        assert_eq!(calls.count(), 3);
        assert_eq!(lookups.count(), 4);
    }

    /// `condition()` without validators (Django's `condition(None, None)`) is transparent.
    #[tokio::test]
    async fn no_validators_means_no_conditions() {
        let calls = Calls::default();
        let app = Router::new().route("/", handler(&calls).layer(condition()));
        let reply = send(&app, request(Method::GET, "/", &[(INM, "*"), (IM, "*")])).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("etag"), None);
        assert_eq!(calls.count(), 1);
    }
}

/// A body of unknown length, as a stream produces, yielding `frames`.
struct Chunks(
    VecDeque<Result<Frame<Bytes>, &'static str>>,
    http_body::SizeHint,
);

impl Chunks {
    fn streaming(chunks: &[&'static str]) -> Chunks {
        Chunks(
            chunks
                .iter()
                .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
                .collect(),
            http_body::SizeHint::default(),
        )
    }

    /// Claims an exact length of `len`, whatever it yields.
    fn claiming(mut self, len: u64) -> Chunks {
        self.1 = http_body::SizeHint::with_exact(len);
        self
    }

    fn then(mut self, frame: Result<Frame<Bytes>, &'static str>) -> Chunks {
        self.0.push_back(frame);
        self
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        Poll::Ready(self.0.pop_front())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.1
    }
}

/// Django's ConditionalGetMiddleware tests, with HEAD fixed (it gets the tag and 304s, where
/// Django gives it neither) and SHA-256 instead of MD5.
mod conditional_get {
    use super::*;

    /// SHA-256 of `root is here`.
    const ROOT_ETAG: &str = r#""8a1d11d8ed9bd86144a348fbe4c3b0deeabc351e2190a16a485a36e37ecaf7a3""#;

    /// A router whose handler answers `make()` and counts its calls, behind the layer.
    fn app<F>(calls: &Calls, make: F) -> Router
    where
        F: Fn() -> Response + Clone + Send + Sync + 'static,
    {
        let calls = calls.clone();
        Router::new()
            .route(
                "/",
                any(move || {
                    calls.hit();
                    let response = make();
                    async move { response }
                }),
            )
            .layer(ConditionalGetLayer::new())
    }

    /// Django's `self.resp`: 200 `root is here`, plus `headers` and a status.
    fn root(status: StatusCode, headers: &'static [(&'static str, &'static str)]) -> Response {
        let mut response = (status, "root is here").into_response();
        for (name, value) in headers {
            response
                .headers_mut()
                .append(*name, HeaderValue::from_static(value));
        }
        response
    }

    fn ok(headers: &'static [(&'static str, &'static str)]) -> Response {
        root(StatusCode::OK, headers)
    }

    async fn get_with(make: fn() -> Response, headers: &[(&str, &str)]) -> Reply {
        send(
            &app(&Calls::default(), make),
            request(Method::GET, "/", headers),
        )
        .await
    }

    const IMS: &str = "Sat, 12 Feb 2011 17:38:44 GMT";

    #[tokio::test]
    async fn b7_01_an_etag_is_computed_from_the_body() {
        let reply = get_with(|| ok(&[]), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("etag"), Some(ROOT_ETAG));
        assert_eq!(reply.body, "root is here");
    }

    #[tokio::test]
    async fn b7_02_a_views_etag_is_kept() {
        let reply = get_with(|| ok(&[("etag", "eggs")]), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("etag"), Some("eggs"));
    }

    #[tokio::test]
    async fn b7_03_a_streaming_response_gets_no_etag() {
        let reply = get_with(
            || Response::new(Body::new(Chunks::streaming(&["root ", "is here"]))),
            &[],
        )
        .await;
        assert_eq!(reply.header("etag"), None);
        assert_eq!(reply.body, "root is here");
    }

    #[tokio::test]
    async fn b7_04_an_empty_body_gets_no_etag() {
        let reply = get_with(|| StatusCode::OK.into_response(), &[]).await;
        assert_eq!(reply.header("etag"), None);
    }

    #[tokio::test]
    async fn b7_05_no_store_gets_no_etag() {
        let reply = get_with(
            || ok(&[("cache-control", "No-Cache, No-Store, Max-age=0")]),
            &[],
        )
        .await;
        assert_eq!(reply.header("etag"), None);
    }

    #[tokio::test]
    async fn b7_06_directives_are_parsed_not_substring_matched() {
        let reply = get_with(
            || ok(&[("cache-control", r#"my-directive="my-no-store""#)]),
            &[],
        )
        .await;
        assert_eq!(reply.header("etag"), Some(ROOT_ETAG));
    }

    #[tokio::test]
    async fn b7_07_an_unquoted_if_none_match_is_no_condition() {
        let reply = get_with(|| ok(&[]), &[("if-none-match", "spam")]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("etag"), Some(ROOT_ETAG));
    }

    #[tokio::test]
    async fn b7_08_no_if_none_match() {
        let reply = get_with(|| ok(&[("etag", "eggs")]), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn b7_09_a_matching_if_none_match_is_not_modified() {
        let reply = get_with(
            || ok(&[("etag", r#""spam""#)]),
            &[("if-none-match", r#""spam""#)],
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
        assert!(reply.body.is_empty());
    }

    #[tokio::test]
    async fn b7_10_a_different_etag_is_modified() {
        let reply = get_with(|| ok(&[("etag", "eggs")]), &[("if-none-match", "spam")]).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn b7_11_12_redirects_and_client_errors_are_untouched() {
        for status in [StatusCode::MOVED_PERMANENTLY, StatusCode::BAD_REQUEST] {
            let calls = Calls::default();
            let app = app(&calls, move || root(status, &[("etag", r#""spam""#)]));
            for inm in ["spam", r#""spam""#] {
                let reply = send(&app, request(Method::GET, "/", &[("if-none-match", inm)])).await;
                assert_eq!(reply.status, status, "{inm}");
                assert_eq!(reply.body, "root is here");
            }
            // Unlike Django, no tag is computed for them either.
            let reply = send(&app, get_req("/")).await;
            assert_eq!(reply.all("etag"), [r#""spam""#]);
            let bare = app_without_etag(status);
            assert_eq!(send(&bare, get_req("/")).await.header("etag"), None);
        }
    }

    fn app_without_etag(status: StatusCode) -> Router {
        app(&Calls::default(), move || root(status, &[]))
    }

    #[tokio::test]
    async fn b7_13_if_modified_since_without_last_modified() {
        let reply = get_with(|| ok(&[]), &[("if-modified-since", IMS)]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("etag"), Some(ROOT_ETAG));
    }

    #[tokio::test]
    async fn b7_14_last_modified_without_if_modified_since() {
        let reply = get_with(|| ok(&[("last-modified", IMS)]), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn b7_15_16_17_if_modified_since_against_last_modified() {
        let same = get_with(
            || ok(&[("last-modified", IMS)]),
            &[("if-modified-since", IMS)],
        )
        .await;
        assert_eq!(same.status, StatusCode::NOT_MODIFIED);
        let earlier = get_with(
            || ok(&[("last-modified", "Sat, 12 Feb 2011 17:35:44 GMT")]),
            &[("if-modified-since", IMS)],
        )
        .await;
        assert_eq!(earlier.status, StatusCode::NOT_MODIFIED);
        let later = get_with(
            || ok(&[("last-modified", "Sat, 12 Feb 2011 17:41:44 GMT")]),
            &[("if-modified-since", IMS)],
        )
        .await;
        assert_eq!(later.status, StatusCode::OK);
        assert_eq!(later.body, "root is here");
    }

    #[tokio::test]
    async fn b7_18_19_redirects_and_client_errors_ignore_if_modified_since() {
        for status in [StatusCode::MOVED_PERMANENTLY, StatusCode::BAD_REQUEST] {
            let app = app(&Calls::default(), move || {
                root(
                    status,
                    &[("last-modified", "Sat, 12 Feb 2011 17:35:44 GMT")],
                )
            });
            let reply = send(
                &app,
                request(Method::GET, "/", &[("if-modified-since", IMS)]),
            )
            .await;
            assert_eq!(reply.status, status);
        }
    }

    #[tokio::test]
    async fn b7_20_not_modified_keeps_djangos_headers_and_cookies() {
        const HEADERS: &[(&str, &str)] = &[
            ("date", "Sat, 12 Feb 2011 17:35:44 GMT"),
            ("last-modified", "Sat, 12 Feb 2011 17:35:44 GMT"),
            ("expires", "Sun, 13 Feb 2011 17:35:44 GMT"),
            ("vary", "Cookie"),
            ("cache-control", "public"),
            ("content-location", "/alt"),
            ("content-language", "en"),
            ("etag", r#""spam""#),
            ("set-cookie", "key=value; Path=/"),
        ];
        let full = get_with(|| ok(HEADERS), &[]).await;
        let reply = get_with(|| ok(HEADERS), &[("if-none-match", r#""spam""#)]).await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
        for name in [
            "cache-control",
            "content-location",
            "date",
            "etag",
            "expires",
            "last-modified",
            "vary",
            "set-cookie",
        ] {
            assert_eq!(reply.all(name), full.all(name), "{name}");
            assert!(reply.header(name).is_some(), "{name}");
        }
        assert_eq!(reply.header("content-language"), None);
        assert_eq!(reply.header("content-type"), None);
    }

    #[tokio::test]
    async fn b7_21_unsafe_methods_never_get_412() {
        let calls = Calls::default();
        let app = app(&calls, || ok(&[]));
        let etag = send(&app, get_req("/")).await;
        let etag = etag.header("etag").unwrap().to_owned();
        for if_match in [etag.as_str(), r#""other""#] {
            let reply = send(&app, request(Method::PUT, "/", &[("if-match", if_match)])).await;
            assert_eq!(reply.status, StatusCode::OK, "{if_match}");
            assert_eq!(reply.header("etag"), None);
        }
        assert_eq!(calls.count(), 3);
    }

    /// Django's HEAD case, fixed: where Django sets no tag, HEAD gets the tag a GET would (the
    /// hash of the body the handler produced, which axum drops after the layer), and a 304.
    #[tokio::test]
    async fn head_gets_the_get_etag_and_304() {
        let calls = Calls::default();
        let app = app(&calls, || ok(&[]));
        let head = send(&app, request(Method::HEAD, "/", &[])).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header("etag"), Some(ROOT_ETAG));
        assert_eq!(head.header("content-length"), Some("12"));
        assert!(head.body.is_empty());
        let revalidated = send(
            &app,
            request(Method::HEAD, "/", &[("if-none-match", ROOT_ETAG)]),
        )
        .await;
        assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
        assert_eq!(revalidated.header("etag"), Some(ROOT_ETAG));
        let with_date = app_with_last_modified();
        let head = send(
            &with_date,
            request(Method::HEAD, "/", &[("if-modified-since", IMS)]),
        )
        .await;
        assert_eq!(head.status, StatusCode::NOT_MODIFIED);
    }

    fn app_with_last_modified() -> Router {
        app(&Calls::default(), || ok(&[("last-modified", IMS)]))
    }

    /// Django's ETagGZipMiddlewareTest case of a tag sent back after compression, with the
    /// compression simulated by a handler that sends the weak tag a compressor would: the weak
    /// tag sent back still matches (weak comparison).
    #[tokio::test]
    async fn weak_etags_from_compression_still_match() {
        for inm in [r#"W/"eggs""#, r#""eggs""#] {
            let reply =
                get_with(|| ok(&[("etag", r#"W/"eggs""#)]), &[("if-none-match", inm)]).await;
            assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{inm}");
            assert_eq!(reply.header("etag"), Some(r#"W/"eggs""#));
        }
    }

    #[tokio::test]
    async fn a_201_can_become_304() {
        let reply = get_with(
            || root(StatusCode::CREATED, &[]),
            &[("if-none-match", ROOT_ETAG)],
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    }

    /// Django evaluates the whole algorithm for GET: a failed If-Match or If-Unmodified-Since
    /// is a 412.
    #[tokio::test]
    async fn get_with_failed_preconditions_is_412() {
        let reply = get_with(|| ok(&[]), &[("if-match", r#""other""#)]).await;
        assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
        assert!(reply.body.is_empty());
        let reply = get_with(
            || ok(&[("last-modified", IMS)]),
            &[("if-unmodified-since", "Sat, 12 Feb 2011 17:00:00 GMT")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
        let reply = get_with(|| ok(&[]), &[("if-match", ROOT_ETAG)]).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn the_handler_runs_even_for_a_304() {
        let calls = Calls::default();
        let app = app(&calls, || ok(&[]));
        let reply = send(
            &app,
            request(Method::GET, "/", &[("if-none-match", ROOT_ETAG)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
        assert_eq!(calls.count(), 1);
    }
}

/// Bodies that stream, lie about their length, fail, or carry trailers.
mod bodies {
    use super::*;

    fn app(max: usize, make: fn() -> Chunks) -> Router {
        Router::new()
            .route("/", get(move || async move { Body::new(make()) }))
            .layer(ConditionalGetLayer::new().max_body_size(max))
    }

    async fn chunked(max: usize, make: fn() -> Chunks) -> (Option<String>, Bytes) {
        let reply = send(&app(max, make), get_req("/")).await;
        (reply.header("etag").map(str::to_owned), reply.body)
    }

    #[tokio::test]
    async fn the_tag_covers_the_whole_body_however_it_is_chunked() {
        let (one, body) = chunked(100, || Chunks::streaming(&["abcdef"]).claiming(6)).await;
        let (three, same) =
            chunked(100, || Chunks::streaming(&["ab", "cd", "ef"]).claiming(6)).await;
        assert_eq!(body, "abcdef");
        assert_eq!(same, "abcdef");
        assert_eq!(
            one.as_deref(),
            Some(r#""bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721""#)
        );
        assert_eq!(one, three);
    }

    #[tokio::test]
    async fn max_body_size_bounds_what_is_read() {
        let make = || Chunks::streaming(&["abcdef"]).claiming(6);
        assert!(chunked(6, make).await.0.is_some());
        let (etag, body) = chunked(5, make).await;
        assert_eq!(etag, None);
        assert_eq!(body, "abcdef");
    }

    #[tokio::test]
    async fn a_body_longer_than_it_claimed_passes_through_whole() {
        let (etag, body) = chunked(4, || {
            Chunks::streaming(&["ab", "cd", "ef", "gh"]).claiming(2)
        })
        .await;
        assert_eq!(etag, None);
        assert_eq!(body, "abcdefgh");
    }

    #[tokio::test]
    async fn trailers_are_kept() {
        let make = || {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", HeaderValue::from_static("1"));
            Chunks::streaming(&["abc", "def"])
                .claiming(6)
                .then(Ok(Frame::trailers(trailers)))
        };
        let response = app(100, make).oneshot(get_req("/")).await.unwrap();
        assert!(response.headers().contains_key("etag"));
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "1");
        assert_eq!(collected.to_bytes(), "abcdef");
    }

    #[tokio::test]
    async fn a_failing_body_reaches_the_client_as_a_failure() {
        let make = || {
            Chunks::streaming(&["abc"])
                .claiming(6)
                .then(Err("disk on fire"))
                .then(Ok(Frame::data(Bytes::from_static(b"def"))))
        };
        let app = app(100, make);
        let response = app
            .oneshot(request(Method::GET, "/", &[("if-none-match", "*")]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("etag"));
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "abc");
        assert!(body.frame().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn partial_content_gets_no_tag() {
        let app = Router::new()
            .route(
                "/",
                get(|| async { (StatusCode::PARTIAL_CONTENT, "part of it") }),
            )
            .layer(ConditionalGetLayer::new());
        assert_eq!(send(&app, get_req("/")).await.header("etag"), None);
    }

    #[tokio::test]
    async fn a_large_body_under_the_default_limit_is_tagged_and_kept_intact() {
        let page: String = "0123456789abcdef".repeat(60_000);
        let expected = page.clone();
        let app = Router::new()
            .route("/", get(move || async move { page }))
            .layer(ConditionalGetLayer::new());
        let reply = send(&app, get_req("/")).await;
        assert!(reply.header("etag").is_some());
        assert_eq!(reply.body, expected);
        let over: String = "x".repeat(axum_cache::conditional::DEFAULT_MAX_BODY_SIZE + 1);
        let app = Router::new()
            .route("/", get(move || async move { over }))
            .layer(ConditionalGetLayer::default());
        assert_eq!(send(&app, get_req("/")).await.header("etag"), None);
    }
}

/// Django's decorator tests for the header layers, and its `patch_vary_headers` cases through
/// the layer.
mod decorators {
    use super::*;

    /// `Cache-Control` items as a set.
    fn items(value: &str) -> BTreeSet<&str> {
        value.split(", ").collect()
    }

    #[tokio::test]
    async fn cache_control_without_directives_writes_an_empty_header() {
        let app = Router::new().route(
            "/",
            get(|| async { "x" }).layer(cache_control(CacheControl::new())),
        );
        let reply = send(&app, get_req("/")).await;
        assert_eq!(reply.header("cache-control"), Some(""));
    }

    #[tokio::test]
    async fn cache_control_writes_every_directive() {
        let directives = CacheControl::new()
            .with_max_age(Duration::from_secs(123))
            .with_private()
            .with_public()
            .with_extension("custom", Some("456"));
        let app = Router::new().route("/", get(|| async { "x" }).layer(cache_control(directives)));
        let reply = send(&app, get_req("/")).await;
        assert_eq!(
            items(reply.header("cache-control").unwrap()),
            BTreeSet::from(["max-age=123", "private", "public", "custom=456"])
        );
        let app = Router::new().route(
            "/",
            get(|| async { "x" }).layer(cache_control(
                CacheControl::new().with_extension("a", Some("b")),
            )),
        );
        assert_eq!(
            send(&app, get_req("/")).await.header("cache-control"),
            Some("a=b")
        );
    }

    #[tokio::test]
    async fn cache_control_patches_what_the_handler_set() {
        let app = Router::new().route(
            "/",
            get(|| async {
                (
                    [("cache-control", "Max-Age=600, private, no-cache=\"X\"")],
                    "x",
                )
            })
            .layer(cache_control(
                CacheControl::new()
                    .with_max_age(Duration::from_secs(60))
                    .with_public()
                    .with_no_cache_field("Set-Cookie"),
            )),
        );
        let reply = send(&app, get_req("/")).await;
        assert_eq!(
            reply.header("cache-control"),
            Some(r#"max-age=60, no-cache="X, Set-Cookie", public"#)
        );
        // Every status is patched, as Django's decorator patches whatever the view returns.
        let app = Router::new().route(
            "/",
            get(|| async { StatusCode::NOT_FOUND })
                .layer(cache_control(CacheControl::new().with_no_store())),
        );
        let reply = send(&app, get_req("/")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }

    const T: u64 = 1_167_616_461;

    #[tokio::test]
    async fn never_cache_headers_in_djangos_order() {
        let app = Router::new().route(
            "/",
            get(|| async { "x" }).layer(never_cache().clock(|| at(T))),
        );
        let reply = send(&app, get_req("/")).await;
        assert_eq!(
            reply.header("expires"),
            Some("Mon, 01 Jan 2007 01:54:21 GMT")
        );
        assert_eq!(
            reply.header("cache-control"),
            Some("max-age=0, no-cache, no-store, must-revalidate, private")
        );
    }

    #[tokio::test]
    async fn never_cache_keeps_a_views_expires_and_removes_public() {
        let app = Router::new().route(
            "/",
            get(|| async {
                (
                    [
                        ("expires", "tomorrow"),
                        ("cache-control", "public, max-age=3600"),
                    ],
                    "x",
                )
            })
            .layer(never_cache().clock(|| at(T))),
        );
        let reply = send(&app, get_req("/")).await;
        assert_eq!(reply.header("expires"), Some("tomorrow"));
        assert_eq!(
            reply.header("cache-control"),
            Some("max-age=0, no-cache, no-store, must-revalidate, private")
        );
    }

    #[tokio::test]
    async fn never_cache_reads_its_clock_per_response() {
        let now = Arc::new(AtomicUsize::new(0));
        let clock = Arc::clone(&now);
        let app = Router::new().route(
            "/",
            get(|| async { "x" })
                .layer(never_cache().clock(move || at(T + clock.load(Ordering::SeqCst) as u64))),
        );
        assert_eq!(
            send(&app, get_req("/")).await.header("expires"),
            Some("Mon, 01 Jan 2007 01:54:21 GMT")
        );
        now.store(60, Ordering::SeqCst);
        assert_eq!(
            send(&app, get_req("/")).await.header("expires"),
            Some("Mon, 01 Jan 2007 01:55:21 GMT")
        );
    }

    fn vary_app(handler_vary: Option<&'static str>, layer: axum_cache::VaryLayer) -> Router {
        Router::new().route(
            "/",
            get(move || async move {
                let mut response = "x".into_response();
                if let Some(vary) = handler_vary {
                    response
                        .headers_mut()
                        .insert("vary", HeaderValue::from_static(vary));
                }
                response
            })
            .layer(layer),
        )
    }

    #[tokio::test]
    async fn vary_on_headers_and_cookie_write_djangos_strings() {
        let reply = send(
            &vary_app(None, vary_on_headers(["Header", "Another-header"])),
            get_req("/"),
        )
        .await;
        assert_eq!(reply.header("vary"), Some("Header, Another-header"));
        let reply = send(&vary_app(None, vary_on_cookie()), get_req("/")).await;
        assert_eq!(reply.header("vary"), Some("Cookie"));
    }

    /// Django's `patch_vary_headers` cases, through the layer, with one fix: a name repeated in
    /// one call is added once.
    #[tokio::test]
    async fn vary_patches_the_handlers_vary() {
        let cases: [(Option<&'static str>, &[&str], &str); 8] = [
            (None, &["Accept-Encoding"], "Accept-Encoding"),
            (
                Some("Accept-Encoding"),
                &["accept-encoding"],
                "Accept-Encoding",
            ),
            (
                Some("Cookie"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (
                None,
                &["Accept-Encoding", "COOKIE"],
                "Accept-Encoding, COOKIE",
            ),
            (
                Some("Cookie    ,     Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (Some("*"), &["Accept-Language"], "*"),
            (Some("Accept-Language, Cookie"), &["*"], "*"),
            (None, &["Accept", "accept"], "Accept"),
        ];
        for (initial, names, expected) in cases {
            let reply = send(&vary_app(initial, vary_on_headers(names)), get_req("/")).await;
            assert_eq!(reply.all("vary"), [expected], "{initial:?} + {names:?}");
        }
    }

    /// A misspelt name is a mistake in the code: building the layer refuses it.
    #[test]
    #[should_panic(expected = "\"Accept Language\" is not a header name")]
    fn a_misspelt_vary_name_panics_when_the_layer_is_built() {
        let _ = vary_on_headers(["Accept Language"]);
    }

    /// Names from configuration get the mistake back as an error; `*` alone stays valid.
    #[tokio::test]
    async fn try_new_returns_a_misspelt_vary_name_as_an_error() {
        let error = VaryLayer::try_new(["Cookie", "Accept Language"]).unwrap_err();
        assert_eq!(error.name(), "Accept Language");
        let error: &dyn std::error::Error = &error;
        assert!(
            error
                .to_string()
                .contains("\"Accept Language\" is not a header name"),
            "{error}"
        );
        let star = VaryLayer::try_new(["*"]).expect("`*` is a valid Vary entry");
        let reply = send(&vary_app(None, star), get_req("/")).await;
        assert_eq!(reply.header("vary"), Some("*"));
    }

    /// decorators/tests.py's smoke test: every layer stacked on one route.
    #[tokio::test]
    async fn every_layer_stacked_on_one_route() {
        let cache = Cache::new(MemoryStore::new());
        // `Router::route_layer` stacks like Django's decorators: the last is the outermost.
        let app = Router::new()
            .route("/", get(|| async { "stacked" }))
            .route_layer(condition())
            .route_layer(cache_page(&cache, Duration::from_secs(900)))
            .route_layer(cache_control(CacheControl::new().with_private()))
            .route_layer(never_cache().clock(|| at(T)))
            .route_layer(vary_on_cookie())
            .route_layer(ConditionalGetLayer::new());
        let reply = send(&app, get_req("/")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "stacked");
        assert_eq!(
            reply.header("cache-control"),
            Some("max-age=0, private, no-cache, no-store, must-revalidate")
        );
        assert_eq!(reply.header("vary"), Some("Cookie"));
        // `no-store` from never_cache: ConditionalGet computes no tag.
        assert_eq!(reply.header("etag"), None);
    }
}

/// Where the layers go relative to the response cache (the order the headers chapter gives),
/// and every layer on every kind of service.
mod placement {
    use super::*;
    use axum::routing::Route;
    use tower::{Layer, Service};

    /// `vary_on_cookie` inside `cache_page`: the cache sees `Vary: Cookie` and keeps one entry
    /// per visitor.
    #[tokio::test]
    async fn vary_inside_the_cache_keeps_visitors_apart() {
        let cache = Cache::new(MemoryStore::new());
        let calls = Calls::default();
        let counted = calls.clone();
        let app = Router::new().route(
            "/dashboard",
            get(move |headers: HeaderMap| {
                counted.hit();
                let cookie = headers
                    .get("cookie")
                    .map(|value| value.to_str().unwrap().to_owned());
                async move { format!("dashboard of {cookie:?}") }
            })
            // Several layers on one `MethodRouter`: a `ServiceBuilder` lists them outermost
            // first.
            .layer(
                ServiceBuilder::new()
                    .layer(cache_page(&cache, Duration::from_secs(300)))
                    .layer(vary_on_cookie()),
            ),
        );
        for user in ["a=1", "b=2", "a=1", "b=2"] {
            let reply = send(
                &app,
                request(Method::GET, "/dashboard", &[("cookie", user)]),
            )
            .await;
            assert_eq!(reply.body, format!("dashboard of Some({user:?})"));
            assert_eq!(reply.header("vary"), Some("Cookie"));
        }
        assert_eq!(calls.count(), 2);
    }

    /// `cache_control` inside `CacheLayer`: the stored lifetime follows the directives it sets.
    #[tokio::test]
    async fn cache_control_inside_the_cache_sets_what_is_stored() {
        let cache = Cache::new(MemoryStore::new());
        let calls = Calls::default();
        let app = Router::new()
            .route(
                "/private",
                calls
                    .get("mine")
                    .layer(cache_control(CacheControl::new().with_private())),
            )
            .layer(CacheLayer::new(cache));
        for _ in 0..2 {
            let reply = send(&app, get_req("/private")).await;
            assert_eq!(reply.header("cache-control"), Some("private"));
        }
        assert_eq!(calls.count(), 2);
    }

    /// `ConditionalGetLayer` outside `CacheLayer`: a cache hit still gets its tag and becomes a
    /// 304, and the handler runs once.
    #[tokio::test]
    async fn conditional_get_outside_the_cache_revalidates_hits() {
        let cache = Cache::new(MemoryStore::new());
        let calls = Calls::default();
        let app = Router::new()
            .route("/", calls.get("cached page"))
            .layer(CacheLayer::new(cache))
            .layer(ConditionalGetLayer::new());
        let first = send(&app, get_req("/")).await;
        let etag = first.header("etag").unwrap().to_owned();
        let second = send(&app, request(Method::GET, "/", &[("if-none-match", &etag)])).await;
        assert_eq!(second.status, StatusCode::NOT_MODIFIED);
        assert_eq!(second.header("etag"), Some(etag.as_str()));
        assert_eq!(second.cache, Some(CacheStatus::Hit));
        assert_eq!(calls.count(), 1);
    }

    /// `condition()` outside `CacheLayer`: a current client is answered before the cache is
    /// even asked.
    #[tokio::test]
    async fn condition_outside_the_cache_answers_before_it() {
        let cache = Cache::new(MemoryStore::new());
        let calls = Calls::default();
        let app = Router::new()
            .route("/", calls.get("page"))
            .layer(CacheLayer::new(cache))
            .layer(condition().etag(|_| async { Some("v1".to_owned()) }));
        let first = send(&app, get_req("/")).await;
        assert_eq!(first.cache, Some(CacheStatus::Stored));
        assert_eq!(first.header("etag"), Some(r#""v1""#));
        let current = send(
            &app,
            request(Method::GET, "/", &[("if-none-match", r#""v1""#)]),
        )
        .await;
        assert_eq!(current.status, StatusCode::NOT_MODIFIED);
        assert_eq!(current.cache, None);
        let hit = send(&app, get_req("/")).await;
        assert_eq!(hit.cache, Some(CacheStatus::Hit));
        assert_eq!(calls.count(), 1);
    }

    /// The same route with `layer` on `Router::layer`, `Router::route_layer` and
    /// `MethodRouter::layer`.
    fn positions<L>(layer: L) -> [(&'static str, Router); 3]
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request<Body>>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request<Body>>>::Future: Send + 'static,
    {
        let handler = || get(|| async { "x" });
        [
            (
                "Router::layer",
                Router::new().route("/", handler()).layer(layer.clone()),
            ),
            (
                "Router::route_layer",
                Router::new()
                    .route("/", handler())
                    .route_layer(layer.clone()),
            ),
            (
                "MethodRouter::layer",
                Router::new().route("/", handler().layer(layer)),
            ),
        ]
    }

    /// Each layer works in each position (and the routers compile, which needs `Send` futures,
    /// `Sync` services and bodies axum accepts).
    #[tokio::test]
    async fn every_layer_in_every_position() {
        let cc = || cache_control(CacheControl::new().with_public());
        for (position, app) in positions(cc()) {
            let reply = send(&app, get_req("/")).await;
            assert_eq!(reply.header("cache-control"), Some("public"), "{position}");
        }
        for (position, app) in positions(never_cache()) {
            let reply = send(&app, get_req("/")).await;
            assert!(reply.header("expires").is_some(), "{position}");
        }
        for (position, app) in positions(vary_on_headers(["Accept"])) {
            assert_eq!(
                send(&app, get_req("/")).await.header("vary"),
                Some("Accept"),
                "{position}"
            );
        }
        for (position, app) in positions(vary_on_cookie()) {
            assert_eq!(
                send(&app, get_req("/")).await.header("vary"),
                Some("Cookie"),
                "{position}"
            );
        }
        let cond = condition().etag(|_| async { Some("t".to_owned()) });
        for (position, app) in positions(cond) {
            let reply = send(
                &app,
                request(Method::GET, "/", &[("if-none-match", r#""t""#)]),
            )
            .await;
            assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{position}");
        }
        for (position, app) in positions(ConditionalGetLayer::new()) {
            let etag = send(&app, get_req("/"))
                .await
                .header("etag")
                .map(str::to_owned);
            let etag = etag.unwrap_or_else(|| panic!("{position}: no etag"));
            let reply = send(&app, request(Method::GET, "/", &[("if-none-match", &etag)])).await;
            assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{position}");
        }
    }

    /// Any tower service over `http` types, with bodies that are not axum's.
    #[tokio::test]
    async fn plain_tower_services_with_any_body() {
        let calls = Calls::default();
        let counted = calls.clone();
        let service = ServiceBuilder::new()
            .layer(ConditionalGetLayer::new())
            .layer(condition().last_modified(|_| async { Some(at(1_000_000_000)) }))
            .layer(cache_control(
                CacheControl::new().with_max_age(Duration::from_secs(5)),
            ))
            .layer(vary_on_cookie())
            .service_fn(move |_request: Request<String>| {
                counted.hit();
                async {
                    Ok::<_, Infallible>(Response::new(http_body_util::Full::new(
                        Bytes::from_static(b"plain tower"),
                    )))
                }
            });
        let plain = |headers: &[(&str, &str)]| {
            let mut builder = Request::builder().uri("http://example.com/");
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder.body(String::new()).unwrap()
        };
        let response = service.clone().oneshot(plain(&[])).await.unwrap();
        assert_eq!(response.headers()["vary"], "Cookie");
        assert_eq!(response.headers()["cache-control"], "max-age=5");
        assert_eq!(
            response.headers()["last-modified"],
            "Sun, 09 Sep 2001 01:46:40 GMT"
        );
        let etag = response.headers()["etag"].clone();
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "plain tower"
        );
        let etag = etag.to_str().unwrap();
        let revalidated = service
            .clone()
            .oneshot(plain(&[("if-none-match", etag)]))
            .await
            .unwrap();
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        let unmodified = service
            .oneshot(plain(&[(
                "if-modified-since",
                "Sun, 09 Sep 2001 01:46:40 GMT",
            )]))
            .await
            .unwrap();
        assert_eq!(unmodified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(calls.count(), 2);

        let never = never_cache().clock(|| at(0)).layer(tower::service_fn(
            |_request: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::from("fresh")))
            },
        ));
        let response = never.oneshot(plain(&[])).await.unwrap();
        assert_eq!(
            response.headers()["expires"],
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    /// A service that answers 200 only when called after `poll_ready` on the same instance; a
    /// clone starts unready.
    struct Strict {
        ready: bool,
        calls: Calls,
    }

    impl Clone for Strict {
        fn clone(&self) -> Self {
            Strict {
                ready: false,
                calls: self.calls.clone(),
            }
        }
    }

    impl Service<Request<String>> for Strict {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<String>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<String>) -> Self::Future {
            let status = if std::mem::take(&mut self.ready) {
                self.calls.hit();
                StatusCode::OK
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let mut response = Response::new(String::new());
            *response.status_mut() = status;
            std::future::ready(Ok(response))
        }
    }

    /// `condition()` drives its inner service by the Tower contract: the service made ready is
    /// the one called, and only when the handler is needed.
    #[tokio::test]
    async fn the_ready_service_is_the_one_called() {
        let calls = Calls::default();
        let mut service = condition()
            .etag(|_| async { Some("t".to_owned()) })
            .layer(Strict {
                ready: false,
                calls: calls.clone(),
            });
        let plain = |inm: &str| {
            Request::builder()
                .header("if-none-match", inm)
                .body(String::new())
                .unwrap()
        };
        for (inm, status) in [
            (r#""other""#, StatusCode::OK),
            (r#""t""#, StatusCode::NOT_MODIFIED),
            (r#""other""#, StatusCode::OK),
        ] {
            let response = service
                .ready()
                .await
                .unwrap()
                .call(plain(inm))
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{inm}");
        }
        assert_eq!(calls.count(), 2);
    }

    #[test]
    fn futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let service = ServiceBuilder::new()
            .layer(ConditionalGetLayer::new())
            .layer(condition().etag(|_| async { Some("t".to_owned()) }))
            .layer(cache_control(CacheControl::new()))
            .layer(never_cache())
            .layer(vary_on_cookie())
            .service_fn(|_request: Request<Body>| async {
                Ok::<_, Infallible>(Response::new(Body::empty()))
            });
        is_send(&service);
        is_send(&service.oneshot(get_req("/")));
    }
}
