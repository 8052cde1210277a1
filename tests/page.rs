//! The response cache through real axum routers: Django's middleware tests, the flaws of
//! Django's version fixed here, bodies, store failures and layer placement.

mod support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_cache::page::{Bypass, NotStored};
use axum_cache::store::{MemoryStore, Store};
use axum_cache::{Cache, CacheLayer, CacheStatus, cache_page};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use support::clock::Clock;
use support::http::request;
use support::stores::{BytesOnly, DownStore};
use tower::ServiceExt;

/// Counts origin calls; each call's number goes into the body, as Django's `hello_world(value)`.
#[derive(Clone, Default)]
struct Origin(Arc<AtomicUsize>);

impl Origin {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn calls(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Both kinds of store the page cache writes to: objects in process, bytes elsewhere.
fn caches() -> [(&'static str, Cache); 2] {
    [
        ("memory", Cache::new(MemoryStore::new())),
        ("bytes", Cache::new(BytesOnly::default())),
    ]
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    cache: Option<CacheStatus>,
}

impl Reply {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

async fn send<S>(app: &S, request: Request<Body>) -> Reply
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    let tasks = support::tasks::Tasks::now();
    let response = app.clone().oneshot(request).await.unwrap();
    let cache = response.extensions().get::<CacheStatus>().copied();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    // Let a remote-store write spawned at the end of the body land before the next request.
    tasks.wait_for().await;
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
        cache,
    }
}

fn get_req(uri: &str) -> Request<Body> {
    request(Method::GET, uri, &[])
}

/// A route whose handler counts calls and answers `Hello World <n>` with `headers`.
fn counting(
    origin: &Origin,
    headers: &[(&'static str, &'static str)],
) -> axum::routing::MethodRouter {
    let origin = origin.clone();
    let headers = headers.to_vec();
    get(move || {
        let origin = origin.clone();
        let headers = headers.clone();
        async move {
            let mut response = format!("Hello World {}", origin.next()).into_response();
            // The first value of a name replaces axum's default; later ones are added.
            let mut seen = Vec::new();
            for (name, value) in headers {
                let value = HeaderValue::from_static(value);
                if seen.contains(&name) {
                    response.headers_mut().append(name, value);
                } else {
                    response.headers_mut().insert(name, value);
                    seen.push(name);
                }
            }
            response
        }
    })
}

fn site(
    cache: &Cache,
    origin: &Origin,
    headers: &'static [(&'static str, &'static str)],
) -> Router {
    Router::new()
        .route("/view/", counting(origin, headers))
        .layer(CacheLayer::new(cache.clone()))
}

mod hits_and_misses {
    use super::*;

    /// Something an outer middleware put on the request.
    #[derive(Debug, Clone, PartialEq)]
    struct RequestNote(&'static str);

    #[tokio::test]
    async fn a_hit_carries_its_status_and_none_of_the_request_extensions() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = site(&cache, &origin, &[]);
            let noted = || {
                let mut request = get_req("/view/");
                request
                    .extensions_mut()
                    .insert(RequestNote("for the handler"));
                request
            };
            send(&app, noted()).await;
            let response = app.clone().oneshot(noted()).await.unwrap();
            let extensions = response.extensions();
            assert_eq!(
                extensions.get::<CacheStatus>(),
                Some(&CacheStatus::Hit),
                "{kind}"
            );
            assert_eq!(extensions.get::<RequestNote>(), None, "{kind}");
            assert_eq!(extensions.len(), 1, "{kind}");
            assert_eq!(origin.calls(), 1, "{kind}");
        }
    }

    #[tokio::test]
    async fn a_second_request_is_served_from_the_cache() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = site(&cache, &origin, &[]);
            let first = send(&app, get_req("/view/")).await;
            assert_eq!(first.text(), "Hello World 1", "{kind}");
            assert_eq!(first.cache, Some(CacheStatus::Stored), "{kind}");
            let second = send(&app, get_req("/view/")).await;
            assert_eq!(second.text(), "Hello World 1", "{kind}");
            assert_eq!(second.cache, Some(CacheStatus::Hit), "{kind}");
            assert_eq!(second.header("content-type"), first.header("content-type"));
            assert_eq!(second.header("content-length"), Some("13"));
            assert_eq!(origin.calls(), 1, "{kind}");
        }
    }

    #[tokio::test]
    async fn the_key_is_the_full_url() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = site(&cache, &origin, &[]);
            for uri in [
                "/view/",
                "/view/?a=1",
                "/view/?a=2",
                "/view/?a=1&b=2",
                "/view/?b=2&a=1",
            ] {
                send(&app, get_req(uri)).await;
            }
            let sub = request(Method::GET, "/view/", &[]);
            let mut other_host = sub;
            other_host
                .headers_mut()
                .insert("host", HeaderValue::from_static("sub-1.example.com"));
            send(&app, other_host).await;
            assert_eq!(origin.calls(), 6, "{kind}");
            // Host case does not matter.
            let mut upper = get_req("/view/");
            upper
                .headers_mut()
                .insert("host", HeaderValue::from_static("WWW.Example.COM"));
            assert_eq!(send(&app, upper).await.text(), "Hello World 1", "{kind}");
        }
    }

    #[tokio::test]
    async fn prefixes_separate_entries_and_timeouts_do_not() {
        // As in Django: a key prefix gives a separate entry, a different timeout does not.
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = |layer: CacheLayer| {
            Router::new()
                .route("/view/", counting(&origin, &[]))
                .layer(layer)
        };
        let plain = app(CacheLayer::new(cache.clone()));
        assert_eq!(
            send(&plain, get_req("/view/")).await.text(),
            "Hello World 1"
        );
        assert_eq!(
            send(&plain, get_req("/view/")).await.text(),
            "Hello World 1"
        );
        let prefixed = app(CacheLayer::new(cache.clone()).key_prefix("prefix1"));
        assert_eq!(
            send(&prefixed, get_req("/view/")).await.text(),
            "Hello World 2"
        );
        let short = app(CacheLayer::new(cache.clone()).timeout(Duration::from_secs(1)));
        assert_eq!(
            send(&short, get_req("/view/")).await.text(),
            "Hello World 1"
        );
    }

    #[tokio::test]
    async fn other_methods_bypass_the_cache() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let counter = origin.clone();
        let app = Router::new()
            .route(
                "/view/",
                get(|| async { "get" }).post(move || {
                    let counter = counter.clone();
                    async move { format!("post {}", counter.next()) }
                }),
            )
            .layer(CacheLayer::new(cache));
        for expected in ["post 1", "post 2"] {
            let reply = send(&app, request(Method::POST, "/view/", &[])).await;
            assert_eq!(reply.text(), expected);
            assert_eq!(reply.cache, Some(CacheStatus::Bypass(Bypass::Method)));
        }
    }

    #[tokio::test]
    async fn a_malformed_host_is_not_cached() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = site(&cache, &origin, &[]);
        for _ in 0..2 {
            let mut bad = get_req("/view/");
            bad.headers_mut()
                .insert("host", HeaderValue::from_static("evil.com/view/"));
            let reply = send(&app, bad).await;
            assert_eq!(reply.cache, Some(CacheStatus::Bypass(Bypass::Host)));
        }
        assert_eq!(origin.calls(), 2);
    }

    /// An absolute-form target names one host and the `Host` header another (or two `Host`
    /// headers disagree): the key would follow one, a handler reading `Host` the other, so such
    /// a request is never cached, or it could plant a page rendered for the attacker's host
    /// under the victim's URL.
    #[tokio::test]
    async fn a_target_that_disagrees_with_the_host_header_is_not_cached() {
        let cache = Cache::new(MemoryStore::new());
        let app = Router::new()
            .route(
                "/p",
                get(|headers: HeaderMap| async move {
                    let host = headers.get("host").and_then(|h| h.to_str().ok());
                    format!("links to //{}", host.unwrap_or("?"))
                }),
            )
            .layer(CacheLayer::new(cache));
        let with_host = |uri: &str, hosts: &[&str]| {
            let mut builder = Request::builder().uri(uri);
            for host in hosts {
                builder = builder.header("host", *host);
            }
            builder.body(Body::empty()).unwrap()
        };
        for attack in [
            with_host("http://victim.example/p", &["evil.example"]),
            with_host("/p", &["victim.example", "evil.example"]),
        ] {
            let reply = send(&app, attack).await;
            assert_eq!(reply.cache, Some(CacheStatus::Bypass(Bypass::Host)));
        }

        let victim = send(&app, with_host("/p", &["victim.example"])).await;
        assert_eq!(victim.cache, Some(CacheStatus::Stored));
        assert_eq!(victim.text(), "links to //victim.example");
        // A target that agrees with `Host` (case aside) is the same page.
        let agreeing = with_host("http://victim.example/p", &["VICTIM.example"]);
        let reply = send(&app, agreeing).await;
        assert_eq!(reply.cache, Some(CacheStatus::Hit));
        assert_eq!(reply.text(), "links to //victim.example");
    }
}

mod head {
    use super::*;

    #[tokio::test]
    async fn head_is_answered_from_the_get_entry() {
        // As in Django, GET then HEAD is one call, with the GET's headers and no body.
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = site(&cache, &origin, &[("x-custom", "1")]);
            send(&app, get_req("/view/")).await;
            let head = send(&app, request(Method::HEAD, "/view/", &[])).await;
            assert_eq!(head.cache, Some(CacheStatus::Hit), "{kind}");
            assert!(head.body.is_empty(), "{kind}");
            assert_eq!(head.header("x-custom"), Some("1"));
            assert_eq!(head.header("content-length"), Some("13"));
            assert_eq!(origin.calls(), 1, "{kind}");
        }
    }

    #[tokio::test]
    async fn a_head_miss_stores_for_head_only() {
        // As in Django, HEAD then HEAD is one call; HEAD then GET is two, and the GET never gets
        // the empty HEAD body.
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = site(&cache, &origin, &[]);
            send(&app, request(Method::HEAD, "/view/", &[])).await;
            let again = send(&app, request(Method::HEAD, "/view/", &[])).await;
            assert_eq!(again.cache, Some(CacheStatus::Hit), "{kind}");
            assert_eq!(origin.calls(), 1, "{kind}");
            let get = send(&app, get_req("/view/")).await;
            assert_eq!(get.text(), "Hello World 2", "{kind}");
            assert_eq!(send(&app, get_req("/view/")).await.text(), "Hello World 2");
        }
    }
}

mod storability {
    use super::*;

    async fn calls_for(headers: &[(&'static str, &'static str)]) -> (usize, Reply) {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route("/view/", counting(&origin, headers))
            .layer(cache_page(&cache, Duration::from_secs(3)));
        send(&app, get_req("/view/")).await;
        let second = send(&app, get_req("/view/")).await;
        (origin.calls(), second)
    }

    #[tokio::test]
    async fn private_no_cache_and_no_store_are_never_stored() {
        // As in Django, matched case-insensitively (CVE-2026-8404).
        for value in [
            "private",
            "no-cache",
            "no-store",
            "PRIVATE",
            "NO-store",
            "no-cache=\"Set-Cookie\"",
            "private=\"x-user\", max-age=60",
        ] {
            let (calls, second) = calls_for(&[("cache-control", value)]).await;
            assert_eq!(calls, 2, "{value}");
            assert_eq!(
                second.cache,
                Some(CacheStatus::Miss(NotStored::CacheControl))
            );
        }
    }

    #[tokio::test]
    async fn directives_are_parsed_not_substring_matched() {
        // An extension whose value contains "private" does not block storage: directives are
        // matched whole.
        let (calls, second) = calls_for(&[("cache-control", "community=\"unprivate\"")]).await;
        assert_eq!(calls, 1);
        assert_eq!(second.cache, Some(CacheStatus::Hit));
    }

    #[tokio::test]
    async fn vary_star_is_never_stored() {
        // As in Django, a response with `Vary: *` is never stored; here `*` is found however it
        // is spaced (CVE-2026-6907 / CVE-2026-48587).
        for value in ["*", " * ", "Cookie, * , Pony"] {
            let (calls, second) = calls_for(&[("vary", value)]).await;
            assert_eq!(calls, 2, "{value:?}");
            assert_eq!(second.cache, Some(CacheStatus::Miss(NotStored::VaryStar)));
        }
    }

    #[tokio::test]
    async fn set_cookie_is_not_stored_unless_allowed() {
        // Not stored by default: Django would replay the cookie to everyone.
        let (calls, second) = calls_for(&[("set-cookie", "foo=bar")]).await;
        assert_eq!(calls, 2);
        assert_eq!(second.cache, Some(CacheStatus::Miss(NotStored::SetCookie)));

        // Allowed: the cookie round-trips, as in Django's backend tests...
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route(
                "/view/",
                counting(
                    &origin,
                    &[("set-cookie", "foo=bar"), ("set-cookie", "baz=1")],
                ),
            )
            .layer(CacheLayer::new(cache.clone()).store_set_cookie(true));
        send(&app, get_req("/view/")).await;
        let hit = send(&app, get_req("/view/")).await;
        assert_eq!(hit.cache, Some(CacheStatus::Hit));
        let cookies: Vec<_> = hit.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["foo=bar", "baz=1"]);

        // ...but never with Vary: Cookie, as in Django (CVE-2026-48588).
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route(
                "/view/",
                counting(
                    &origin,
                    &[("set-cookie", "csrftoken=abc"), ("vary", "Cookie")],
                ),
            )
            .layer(CacheLayer::new(cache).store_set_cookie(true));
        for cookie in [None, Some("unrelated=value"), Some("session=old_value")] {
            let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
            send(&app, request(Method::GET, "/view/", &headers)).await;
            let again = send(&app, request(Method::GET, "/view/", &headers)).await;
            assert_eq!(again.cache, Some(CacheStatus::Miss(NotStored::SetCookie)));
        }
    }

    #[tokio::test]
    async fn only_200_is_stored_unless_configured() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let not_found = |origin: &Origin| {
            let origin = origin.clone();
            axum::routing::get(move || {
                let origin = origin.clone();
                async move { (StatusCode::NOT_FOUND, format!("missing {}", origin.next())) }
            })
        };
        let app = Router::new()
            .route("/gone", not_found(&origin))
            .layer(CacheLayer::new(cache.clone()));
        send(&app, get_req("/gone")).await;
        let second = send(&app, get_req("/gone")).await;
        assert_eq!(second.cache, Some(CacheStatus::Miss(NotStored::Status)));
        assert_eq!(
            second.header("expires"),
            None,
            "Django: a 404 gets no headers"
        );
        assert_eq!(second.header("cache-control"), None);

        // `statuses` is an allow-list: a listed 404 is stored.
        let origin = Origin::default();
        let app = Router::new().route("/gone", not_found(&origin)).layer(
            CacheLayer::new(cache)
                .key_prefix("404s")
                .statuses([StatusCode::OK, StatusCode::NOT_FOUND]),
        );
        send(&app, get_req("/gone")).await;
        let hit = send(&app, get_req("/gone")).await;
        assert_eq!(
            (hit.status, hit.text()),
            (StatusCode::NOT_FOUND, "missing 1")
        );
        assert_eq!(origin.calls(), 1);
    }

    /// Even when listed, partial content and 304s are never stored: replayed to everyone they
    /// would be a piece of a page, or an empty answer to someone else's conditional request.
    #[tokio::test]
    async fn partial_content_and_304_are_never_stored_even_when_listed() {
        for status in [StatusCode::PARTIAL_CONTENT, StatusCode::NOT_MODIFIED] {
            let origin = Origin::default();
            let counter = origin.clone();
            let app = Router::new()
                .route(
                    "/view/",
                    get(move || {
                        counter.next();
                        async move { (status, "part") }
                    }),
                )
                .layer(CacheLayer::new(Cache::new(MemoryStore::new())).statuses([
                    StatusCode::OK,
                    StatusCode::PARTIAL_CONTENT,
                    StatusCode::NOT_MODIFIED,
                ]));
            for _ in 0..2 {
                let reply = send(&app, get_req("/view/")).await;
                assert_eq!(reply.status, status);
                assert_eq!(
                    reply.cache,
                    Some(CacheStatus::Miss(NotStored::Status)),
                    "{status}"
                );
            }
            assert_eq!(origin.calls(), 2, "{status}");
        }
    }

    #[tokio::test]
    async fn a_304_from_the_view_gets_headers_but_is_not_stored() {
        // As in Django, a 304 from the view gets the cache headers but is never stored.
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let counter = origin.clone();
        let app = Router::new()
            .route(
                "/view/",
                get(move || {
                    counter.next();
                    async { StatusCode::NOT_MODIFIED }
                }),
            )
            .layer(cache_page(&cache, Duration::from_secs(2)));
        for _ in 0..2 {
            let reply = send(&app, get_req("/view/")).await;
            assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
            assert!(reply.header("cache-control").is_some());
            assert!(reply.header("expires").is_some());
        }
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test]
    async fn max_age_zero_is_not_stored_and_gets_no_headers() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = site(&cache, &origin, &[("cache-control", "max-age=0")]);
        send(&app, get_req("/view/")).await;
        let second = send(&app, get_req("/view/")).await;
        assert_eq!(
            second.cache,
            Some(CacheStatus::Miss(NotStored::ZeroTimeout))
        );
        assert_eq!(second.header("expires"), None);
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test]
    async fn a_malformed_max_age_never_crashes() {
        // A malformed max-age is treated as absent, so the layer's timeout applies.
        let (calls, second) = calls_for(&[("cache-control", "max-age=abc")]).await;
        assert_eq!(calls, 1);
        assert_eq!(second.status, StatusCode::OK);
        assert!(
            second
                .header("cache-control")
                .unwrap()
                .contains("max-age=3")
        );
    }
}

mod timeouts {
    use super::*;

    const T0: u64 = 1_468_749_600;

    /// From a remote store, an entry's age runs until the store answered: a slow read counts in
    /// `Age` and can make the entry stale (the response time an HTTP cache ages entries from).
    #[tokio::test(start_paused = true)]
    async fn a_remote_hit_is_as_old_as_when_the_store_answered() {
        let clock = Clock::at(T0);
        let store = BytesOnly::default();
        let cache = Cache::new(store.clone());
        let origin = Origin::default();
        let app = Router::new()
            .route("/view/", counting(&origin, &[]))
            .layer(cache_page(&cache, Duration::from_secs(12)).clock(clock.reader()));
        send(&app, get_req("/view/")).await;
        clock.advance(Duration::from_secs(5)).await;
        store.lag_reads(&clock, Duration::from_secs(3));
        let hit = send(&app, get_req("/view/")).await;
        assert_eq!(hit.cache, Some(CacheStatus::Hit));
        assert_eq!(hit.header("age"), Some("8"));
        // Asked at 8 s, fresh until 12 s, answered at 11 s: still fresh. Asked at 11 s,
        // answered at 14 s: stale.
        assert_eq!(
            send(&app, get_req("/view/")).await.cache,
            Some(CacheStatus::Hit)
        );
        let late = send(&app, get_req("/view/")).await;
        assert_ne!(late.cache, Some(CacheStatus::Hit));
        assert_eq!(late.text(), "Hello World 2");
    }

    #[tokio::test(start_paused = true)]
    async fn expires_max_age_and_age_follow_the_stored_time() {
        // A hit keeps the Expires and max-age the page was stored with, as in Django, and `Age`
        // counts from when it was stored.
        let clock = Clock::at(T0);
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route("/view/", counting(&origin, &[]))
            .layer(cache_page(&cache, Duration::from_secs(2)).clock(clock.reader()));
        let first = send(&app, get_req("/view/")).await;
        assert_eq!(
            first.header("expires"),
            Some("Sun, 17 Jul 2016 10:00:02 GMT")
        );
        assert_eq!(first.header("cache-control"), Some("max-age=2"));
        assert_eq!(first.header("age"), None);
        clock.advance(Duration::from_secs(1)).await;
        let second = send(&app, get_req("/view/")).await;
        assert_eq!(second.cache, Some(CacheStatus::Hit));
        assert_eq!(
            second.header("expires"),
            Some("Sun, 17 Jul 2016 10:00:02 GMT")
        );
        assert_eq!(second.header("cache-control"), Some("max-age=2"));
        assert_eq!(second.header("age"), Some("1"));
        clock.advance(Duration::from_secs(1)).await;
        assert_eq!(
            send(&app, get_req("/view/")).await.text(),
            "Hello World 2",
            "expired"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_page_timeout_beats_max_age_and_age_stays_honest() {
        // As in Django, the page timeout decides how long the page is kept; unlike Django's,
        // `Expires` agrees with the max-age clients are told, and `Age` gives the real age.
        let clock = Clock::at(T0);
        let cache = Cache::new(MemoryStore::new());
        let app = |origin: &Origin,
                   headers: &'static [(&'static str, &'static str)],
                   page: u64,
                   prefix: &str| {
            Router::new()
                .route("/view/", counting(origin, headers))
                .layer(
                    cache_page(&cache, Duration::from_secs(page))
                        .key_prefix(prefix)
                        .clock(clock.reader()),
                )
        };
        let (short_max_age, long_max_age) = (Origin::default(), Origin::default());
        let a = app(&short_max_age, &[("cache-control", "max-age=1")], 3, "a");
        let b = app(&long_max_age, &[("cache-control", "max-age=3")], 1, "b");
        let first = send(&a, get_req("/view/")).await;
        send(&b, get_req("/view/")).await;
        // Expires agrees with the max-age clients are told (1 s), not the 3 s page timeout.
        assert_eq!(first.header("cache-control"), Some("max-age=1"));
        assert_eq!(
            first.header("expires"),
            Some("Sun, 17 Jul 2016 10:00:01 GMT")
        );
        clock.advance(Duration::from_secs(2)).await;
        let hit = send(&a, get_req("/view/")).await;
        assert_eq!(hit.text(), "Hello World 1", "the page timeout wins");
        assert_eq!(hit.header("age"), Some("2"), "the real age, past max-age");
        assert_eq!(
            send(&b, get_req("/view/")).await.text(),
            "Hello World 2",
            "expired"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_view_decorator_matrix() {
        // Django's view-decorator matrix: two caches, prefixes, and expiry.
        let clock = Clock::at(T0);
        let default = Cache::new(MemoryStore::new());
        let other = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let view = |layer: CacheLayer| {
            Router::new()
                .route("/view/", counting(&origin, &[]))
                .layer(layer.clock(clock.reader()))
        };
        let steps: Vec<(Router, &str)> = vec![
            (view(cache_page(&default, Duration::from_secs(3))), "1"),
            (view(cache_page(&default, Duration::from_secs(3))), "1"),
            (
                view(cache_page(&default, Duration::from_secs(3)).key_prefix("prefix1")),
                "2",
            ),
            (
                view(cache_page(&default, Duration::from_secs(3)).key_prefix("prefix1")),
                "2",
            ),
            (view(cache_page(&other, Duration::from_secs(1))), "3"),
            (view(cache_page(&other, Duration::from_secs(1))), "3"),
            (
                view(cache_page(&other, Duration::from_secs(1)).key_prefix("prefix2")),
                "4",
            ),
        ];
        for (app, expected) in &steps {
            assert_eq!(
                send(app, get_req("/view/")).await.text(),
                format!("Hello World {expected}")
            );
        }
        clock.advance(Duration::from_secs(2)).await;
        for (index, expected) in [(0, "1"), (2, "2"), (4, "5"), (6, "6")] {
            let (app, _) = &steps[index];
            assert_eq!(
                send(app, get_req("/view/")).await.text(),
                format!("Hello World {expected}")
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_site_layer_defaults_to_600_seconds() {
        // Django's default CACHE_MIDDLEWARE_SECONDS, 600, for responses that give no max-age.
        let clock = Clock::at(T0);
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route("/view/", counting(&origin, &[]))
            .layer(CacheLayer::new(cache).clock(clock.reader()));
        let first = send(&app, get_req("/view/")).await;
        assert_eq!(first.header("cache-control"), Some("max-age=600"));
        assert_eq!(
            first.header("expires"),
            Some("Sun, 17 Jul 2016 10:10:00 GMT")
        );
        clock.advance(Duration::from_secs(599)).await;
        assert_eq!(
            send(&app, get_req("/view/")).await.cache,
            Some(CacheStatus::Hit)
        );
        clock.advance(Duration::from_secs(2)).await;
        assert_eq!(send(&app, get_req("/view/")).await.text(), "Hello World 2");
    }

    #[tokio::test(start_paused = true)]
    async fn s_maxage_sets_the_stored_lifetime() {
        let clock = Clock::at(T0);
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route(
                "/view/",
                counting(&origin, &[("cache-control", "s-maxage=100, max-age=10")]),
            )
            .layer(CacheLayer::new(cache).clock(clock.reader()));
        let first = send(&app, get_req("/view/")).await;
        assert!(
            first
                .header("cache-control")
                .unwrap()
                .contains("max-age=10")
        );
        clock.advance(Duration::from_secs(50)).await;
        assert_eq!(
            send(&app, get_req("/view/")).await.cache,
            Some(CacheStatus::Hit)
        );
        clock.advance(Duration::from_secs(51)).await;
        assert_eq!(
            send(&app, get_req("/view/")).await.cache,
            Some(CacheStatus::Stored)
        );
    }
}

mod vary {
    use super::*;

    /// A page that varies on a header and shows the value it was generated for.
    fn echo(cache: &Cache, origin: &Origin, vary: &'static str, header: &'static str) -> Router {
        let origin = origin.clone();
        Router::new()
            .route(
                "/view/",
                get(move |headers: HeaderMap| {
                    let origin = origin.clone();
                    async move {
                        origin.next();
                        let value = headers
                            .get(header)
                            .map_or("<absent>".to_owned(), |v| format!("{v:?}"));
                        ([("vary", vary)], format!("for {value}"))
                    }
                }),
            )
            .layer(CacheLayer::new(cache.clone()))
    }

    #[tokio::test]
    async fn each_variant_is_kept_and_served_only_to_its_own_values() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = echo(&cache, &origin, "Accept-Encoding", "accept-encoding");
            for value in ["gzip", "br", "gzip", "br"] {
                let reply = send(
                    &app,
                    request(Method::GET, "/view/", &[("accept-encoding", value)]),
                )
                .await;
                assert_eq!(reply.text(), format!("for {value:?}"), "{kind}");
            }
            assert_eq!(origin.calls(), 2, "{kind}");
        }
    }

    #[tokio::test]
    async fn absent_and_empty_headers_are_different_variants() {
        // An absent header and an empty one key differently (CVE-2026-113593).
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = echo(&cache, &origin, "Pony", "pony");
            let absent = send(&app, request(Method::GET, "/view/", &[])).await;
            let empty = send(&app, request(Method::GET, "/view/", &[("pony", "")])).await;
            assert_eq!(absent.text(), "for <absent>", "{kind}");
            assert_eq!(empty.text(), "for \"\"", "{kind}");
            assert_eq!(origin.calls(), 2, "{kind}");
        }
    }

    #[tokio::test]
    async fn shifted_values_never_share_an_entry() {
        // Django would give (X-A: ab, X-B: c) and (X-A: a, X-B: bc) the same key.
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let counter = origin.clone();
            let app = Router::new()
                .route(
                    "/view/",
                    get(move |headers: HeaderMap| {
                        counter.next();
                        let a = headers.get("x-a").map(|v| v.to_str().unwrap().to_owned());
                        let b = headers.get("x-b").map(|v| v.to_str().unwrap().to_owned());
                        async move { ([("vary", "X-A, X-B")], format!("{a:?}/{b:?}")) }
                    }),
                )
                .layer(CacheLayer::new(cache.clone()));
            let first = send(
                &app,
                request(Method::GET, "/view/", &[("x-a", "ab"), ("x-b", "c")]),
            )
            .await;
            let second = send(
                &app,
                request(Method::GET, "/view/", &[("x-a", "a"), ("x-b", "bc")]),
            )
            .await;
            assert_eq!(first.text(), "Some(\"ab\")/Some(\"c\")", "{kind}");
            assert_eq!(second.text(), "Some(\"a\")/Some(\"bc\")", "{kind}");
        }
    }

    #[tokio::test]
    async fn a_url_that_only_sometimes_varies_keeps_users_apart() {
        // Anonymous responses have no Vary, logged-in ones vary on Cookie. Django's last
        // writer wins; here the variant list grows and each entry checks what it was stored for.
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let counter = origin.clone();
            let app = Router::new()
                .route(
                    "/view/",
                    get(move |headers: HeaderMap| {
                        counter.next();
                        let user = headers
                            .get("cookie")
                            .map(|v| v.to_str().unwrap().to_owned());
                        async move {
                            match user {
                                Some(user) => {
                                    ([("vary", "Cookie")], format!("private page of {user}"))
                                        .into_response()
                                }
                                None => "public page".into_response(),
                            }
                        }
                    }),
                )
                .layer(CacheLayer::new(cache.clone()));
            // While only an unvaried response is known, it answers anyone: the response said it
            // does not vary (HTTP's rule, and Django's).
            assert_eq!(
                send(&app, request(Method::GET, "/view/", &[])).await.text(),
                "public page"
            );
            let alice = send(
                &app,
                request(Method::GET, "/view/", &[("cookie", "user=alice")]),
            )
            .await;
            assert_eq!(
                (alice.cache, alice.text()),
                (Some(CacheStatus::Hit), "public page"),
                "{kind}"
            );
            // Once a varying response is seen, every user gets their own entry, and later
            // unvaried responses no longer replace the list.
            let calls = origin.calls();
            let alice_page = send(
                &app,
                request(Method::GET, "/view/?v", &[("cookie", "user=alice")]),
            )
            .await;
            assert_eq!(alice_page.text(), "private page of user=alice", "{kind}");
            let public_page = send(&app, request(Method::GET, "/view/?v", &[])).await;
            assert_eq!(public_page.text(), "public page", "{kind}");
            let bob_page = send(
                &app,
                request(Method::GET, "/view/?v", &[("cookie", "user=bob")]),
            )
            .await;
            assert_eq!(bob_page.text(), "private page of user=bob", "{kind}");
            for _ in 0..2 {
                assert_eq!(
                    send(
                        &app,
                        request(Method::GET, "/view/?v", &[("cookie", "user=alice")])
                    )
                    .await
                    .text(),
                    "private page of user=alice"
                );
                assert_eq!(
                    send(&app, request(Method::GET, "/view/?v", &[]))
                        .await
                        .text(),
                    "public page"
                );
                assert_eq!(
                    send(
                        &app,
                        request(Method::GET, "/view/?v", &[("cookie", "user=bob")])
                    )
                    .await
                    .text(),
                    "private page of user=bob"
                );
            }
            assert_eq!(
                origin.calls(),
                calls + 3,
                "{kind}: every later request was a hit"
            );
        }
    }

    #[tokio::test]
    async fn authorization_adds_vary_unless_public() {
        // A request with Authorization gets `Vary: Authorization`, unless the header is empty or
        // the response is public.
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = site(&cache, &origin, &[]);
        let reply = send(
            &app,
            request(Method::GET, "/view/", &[("authorization", "token")]),
        )
        .await;
        assert!(reply.header("vary").unwrap().contains("Authorization"));
        let reply = send(
            &app,
            request(Method::GET, "/view/?empty", &[("authorization", "")]),
        )
        .await;
        assert_eq!(reply.header("vary"), None);
        let public = site(
            &Cache::new(MemoryStore::new()),
            &origin,
            &[("cache-control", "public")],
        );
        let reply = send(
            &public,
            request(Method::GET, "/view/", &[("authorization", "token")]),
        )
        .await;
        assert_eq!(reply.header("vary"), None);
    }

    #[tokio::test]
    async fn an_entry_stored_for_one_authorization_never_answers_another() {
        // Even a `public` response (no Vary: Authorization) is only replayed to the same
        // Authorization value.
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let counter = origin.clone();
            let app = Router::new()
                .route(
                    "/view/",
                    get(move |headers: HeaderMap| {
                        counter.next();
                        let who = headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned());
                        async move { ([("cache-control", "public")], format!("for {who:?}")) }
                    }),
                )
                .layer(CacheLayer::new(cache.clone()));
            let as_user = |token: Option<&'static str>| {
                let headers: Vec<(&str, &str)> =
                    token.map(|t| ("authorization", t)).into_iter().collect();
                request(Method::GET, "/view/", &headers)
            };
            for token in [
                Some("alice"),
                Some("bob"),
                None,
                Some("alice"),
                None,
                Some("bob"),
            ] {
                let reply = send(&app, as_user(token)).await;
                assert_eq!(
                    reply.text(),
                    format!("for {:?}", token.map(str::to_owned)),
                    "{kind}"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_key_part_hook_separates_entries() {
        // Django I5: the language is part of the key.
        let cache = Cache::new(MemoryStore::new());
        let counter = Origin::default();
        let origin = counter.clone();
        let app = Router::new()
            .route(
                "/view/",
                get(move |headers: HeaderMap| {
                    origin.next();
                    let language = headers
                        .get("x-lang")
                        .map_or("en", |v| if v == "es" { "es" } else { "en" });
                    async move {
                        if language == "es" {
                            "Hola mundo!"
                        } else {
                            "Hello world!"
                        }
                    }
                }),
            )
            .layer(CacheLayer::new(cache).key_part(|request| {
                request
                    .headers
                    .get("x-lang")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("en")
                    .to_owned()
            }));
        for _ in 0..2 {
            assert_eq!(
                send(&app, request(Method::GET, "/view/", &[("x-lang", "es")]))
                    .await
                    .text(),
                "Hola mundo!"
            );
            assert_eq!(
                send(&app, request(Method::GET, "/view/", &[("x-lang", "en")]))
                    .await
                    .text(),
                "Hello world!"
            );
        }
        assert_eq!(counter.calls(), 2);
    }

    #[tokio::test]
    async fn ignored_query_parameters_share_an_entry() {
        // Requests that differ only in ignored parameters, in any order, share one entry.
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route("/view/", counting(&origin, &[]))
            .layer(CacheLayer::new(cache.clone()).ignore_query_params(["utm_source", "gclid"]));
        for uri in [
            "/view/?id=1",
            "/view/?id=1&utm_source=mail",
            "/view/?gclid=x&id=1",
        ] {
            assert_eq!(
                send(&app, get_req(uri)).await.text(),
                "Hello World 1",
                "{uri}"
            );
        }
        assert_eq!(
            send(&app, get_req("/view/?id=2")).await.text(),
            "Hello World 2"
        );
    }
}

mod conditional {
    use super::*;

    #[tokio::test]
    async fn hits_answer_if_none_match_and_if_modified_since() {
        // Hits answer If-None-Match and If-Modified-Since; Django ignores them on hits.
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = site(
                &cache,
                &origin,
                &[
                    ("etag", "\"v1\""),
                    ("last-modified", "Sat, 12 Feb 2011 17:38:44 GMT"),
                    ("content-language", "en"),
                ],
            );
            send(&app, get_req("/view/")).await;
            let reply = send(
                &app,
                request(Method::GET, "/view/", &[("if-none-match", "W/\"v1\"")]),
            )
            .await;
            assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{kind}");
            assert!(reply.body.is_empty());
            assert_eq!(reply.header("etag"), Some("\"v1\""));
            assert!(reply.header("cache-control").is_some());
            assert_eq!(
                reply.header("content-language"),
                None,
                "304 keeps only validator headers"
            );
            let reply = send(
                &app,
                request(
                    Method::GET,
                    "/view/",
                    &[("if-modified-since", "Sat, 12 Feb 2011 17:38:44 GMT")],
                ),
            )
            .await;
            assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{kind}");
            let reply = send(
                &app,
                request(Method::GET, "/view/", &[("if-none-match", "\"v2\"")]),
            )
            .await;
            assert_eq!(
                (reply.status, reply.text()),
                (StatusCode::OK, "Hello World 1"),
                "{kind}"
            );
            assert_eq!(origin.calls(), 1, "{kind}");
        }
    }

    /// `If-Match` and `If-Unmodified-Since` do not apply to a cache (HTTP leaves them to the
    /// origin): such requests go to the origin, which alone decides between 200 and 412, and the
    /// stored page is left as it is. (Evaluated on a hit, `If-Unmodified-Since` against a page
    /// without `Last-Modified` answered 412 where the origin answers 200.)
    #[tokio::test]
    async fn if_match_and_if_unmodified_since_go_to_the_origin() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = site(&cache, &origin, &[("etag", "\"v1\"")]);
            send(&app, get_req("/view/")).await;
            for (name, value) in [
                ("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("if-match", "\"v1\""),
                ("if-match", "\"other\""),
            ] {
                let reply = send(&app, request(Method::GET, "/view/", &[(name, value)])).await;
                assert_eq!(reply.status, StatusCode::OK, "{kind} {name}: {value}");
                assert_eq!(
                    reply.cache,
                    Some(CacheStatus::Bypass(Bypass::Precondition)),
                    "{kind} {name}"
                );
            }
            assert_eq!(origin.calls(), 4, "{kind}");
            let reply = send(&app, get_req("/view/")).await;
            assert_eq!(
                (reply.cache, reply.text()),
                (Some(CacheStatus::Hit), "Hello World 1"),
                "{kind}"
            );
        }
    }
}

/// A body played from a script of frames, with no size hint.
struct Scripted {
    frames: VecDeque<Result<Frame<Bytes>, std::io::Error>>,
}

impl Scripted {
    fn chunks(chunks: &[&'static str]) -> Scripted {
        Scripted {
            frames: chunks
                .iter()
                .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
                .collect(),
        }
    }

    fn then_error(mut self) -> Scripted {
        self.frames
            .push_back(Err(std::io::Error::other("origin broke")));
        self
    }

    fn then_trailers(mut self) -> Scripted {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", HeaderValue::from_static("1"));
        self.frames.push_back(Ok(Frame::trailers(trailers)));
        self
    }
}

impl http_body::Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.frames.pop_front())
    }
}

mod bodies {
    use super::*;

    fn streaming(cache: &Cache, origin: &Origin, make: fn() -> Scripted, max: usize) -> Router {
        let origin = origin.clone();
        Router::new()
            .route(
                "/stream",
                get(move || {
                    origin.next();
                    async move { Response::new(Body::new(make())) }
                }),
            )
            .layer(CacheLayer::new(cache.clone()).max_body_size(max))
    }

    #[tokio::test]
    async fn a_streamed_body_within_the_limit_is_stored_whole() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = streaming(
                &cache,
                &origin,
                || Scripted::chunks(&["one ", "two ", "three"]),
                64,
            );
            assert_eq!(send(&app, get_req("/stream")).await.text(), "one two three");
            let hit = send(&app, get_req("/stream")).await;
            assert_eq!(
                (hit.cache, hit.text()),
                (Some(CacheStatus::Hit), "one two three"),
                "{kind}"
            );
            assert_eq!(hit.header("content-length"), Some("13"));
            assert_eq!(origin.calls(), 1);
        }
    }

    #[tokio::test]
    async fn an_oversized_body_reaches_the_client_and_is_not_stored() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = streaming(
                &cache,
                &origin,
                || Scripted::chunks(&["0123456789", "0123456789", "tail"]),
                16,
            );
            for _ in 0..2 {
                assert_eq!(
                    send(&app, get_req("/stream")).await.text(),
                    "01234567890123456789tail",
                    "{kind}"
                );
            }
            assert_eq!(origin.calls(), 2, "{kind}");
        }
        // A body known in advance to be too large is not even copied.
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route("/big", counting(&origin, &[]))
            .layer(CacheLayer::new(cache).max_body_size(4));
        assert_eq!(
            send(&app, get_req("/big")).await.cache,
            Some(CacheStatus::Miss(NotStored::TooLarge))
        );
    }

    #[tokio::test]
    async fn a_failed_body_is_passed_on_and_not_stored() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = streaming(
                &cache,
                &origin,
                || Scripted::chunks(&["partial"]).then_error(),
                64,
            );
            for _ in 0..2 {
                let response = app.clone().oneshot(get_req("/stream")).await.unwrap();
                assert!(
                    response.into_body().collect().await.is_err(),
                    "{kind}: the client sees the error"
                );
            }
            assert_eq!(origin.calls(), 2, "{kind}");
        }
    }

    #[tokio::test]
    async fn a_body_with_trailers_is_not_stored() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = streaming(
            &cache,
            &origin,
            || Scripted::chunks(&["data"]).then_trailers(),
            64,
        );
        for _ in 0..2 {
            let collected = app
                .clone()
                .oneshot(get_req("/stream"))
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap();
            assert!(collected.trailers().is_some());
        }
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test]
    async fn a_body_the_client_abandons_is_not_stored() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = streaming(
            &cache,
            &origin,
            || Scripted::chunks(&["first", "second"]),
            64,
        );
        let response = app.clone().oneshot(get_req("/stream")).await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        drop(body);
        assert_eq!(send(&app, get_req("/stream")).await.text(), "firstsecond");
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test]
    async fn server_sent_events_pass_through() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = site(&cache, &origin, &[("content-type", "text/event-stream")]);
        let reply = send(&app, get_req("/view/")).await;
        assert_eq!(reply.cache, Some(CacheStatus::Miss(NotStored::EventStream)));
        send(&app, get_req("/view/")).await;
        assert_eq!(origin.calls(), 2);
    }
}

mod failures {
    use super::*;

    #[tokio::test]
    async fn a_failing_store_never_costs_the_response() {
        let cache = Cache::new(DownStore);
        let origin = Origin::default();
        let app = site(&cache, &origin, &[]);
        for n in 1..=3 {
            let reply = send(&app, get_req("/view/")).await;
            assert_eq!(
                (reply.status, reply.text()),
                (StatusCode::OK, format!("Hello World {n}").as_str())
            );
        }
        assert!(
            cache.store_errors() >= 3,
            "failures are counted: {}",
            cache.store_errors()
        );
    }

    #[tokio::test]
    async fn garbage_under_page_keys_is_a_miss() {
        let store = BytesOnly::default();
        let cache = Cache::new(store.clone());
        let origin = Origin::default();
        let app = Router::new()
            .route("/view/", counting(&origin, &[("vary", "Accept-Encoding")]))
            .layer(CacheLayer::new(cache.clone()));
        let gzip = || request(Method::GET, "/view/", &[("accept-encoding", "gzip")]);
        send(&app, gzip()).await;
        assert_eq!(send(&app, gzip()).await.cache, Some(CacheStatus::Hit));
        let keys = store.written();
        assert_eq!(keys.len(), 2, "a variant list and one variant: {keys:?}");
        let real: Vec<Bytes> = {
            let mut real = Vec::new();
            for key in &keys {
                real.push(store.get(key).await.unwrap().unwrap());
            }
            real
        };
        let garbage = |original: &Bytes| -> Vec<Bytes> {
            vec![
                Bytes::from_static(b"not a page"),
                Bytes::new(),
                original.slice(..original.len() / 2),
                Bytes::from_static(&[1, 0, 0xff, 0xff, 0xff, 0xff]),
                Bytes::from(vec![0xffu8; 64]),
            ]
        };
        for (index, key) in keys.iter().enumerate() {
            for bad in garbage(&real[index]) {
                store.set(key, bad, None).await.unwrap();
                let reply = send(&app, gzip()).await;
                assert_eq!(reply.status, StatusCode::OK);
                assert_ne!(
                    reply.cache,
                    Some(CacheStatus::Hit),
                    "garbage under {key} was served"
                );
                // Put the real records back for the next round.
                for (key, bytes) in keys.iter().zip(&real) {
                    store.set(key, bytes.clone(), None).await.unwrap();
                }
            }
        }
    }
}

/// The per-site cache around the whole router instead of on it (`Router::layer`), served by
/// `axum::serve` over HTTP: hits are answered before routing.
#[cfg(feature = "axum")]
mod around_the_router {
    use super::*;
    use axum::ServiceExt as _;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn http_get(address: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        reply.to_ascii_lowercase()
    }

    #[tokio::test]
    async fn a_cache_around_the_router_serves_hits_over_http() {
        let origin = Origin::default();
        let app = Router::new().route("/view/", counting(&origin, &[]));
        let site = CacheLayer::new(Cache::new(MemoryStore::new()))
            .cache_status_header(true)
            .around(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(axum::serve(listener, site.into_make_service()).into_future());
        let first = http_get(address, "/view/").await;
        let second = http_get(address, "/view/").await;
        http_get(address, "/nowhere").await;
        let unknown = http_get(address, "/nowhere").await;
        server.abort();
        assert!(first.starts_with("http/1.1 200"), "{first}");
        assert!(first.ends_with("hello world 1"), "{first}");
        assert!(!first.contains("cache-status: axum-cache; hit"), "{first}");
        assert!(second.contains("cache-status: axum-cache; hit"), "{second}");
        assert!(second.ends_with("hello world 1"), "{second}");
        assert!(second.contains("\r\nage: "), "{second}");
        // Unknown paths reach the router's fallback, and its 404 is not stored: the second
        // request for one is no hit either.
        assert!(unknown.starts_with("http/1.1 404"), "{unknown}");
        assert!(!unknown.contains("; hit"), "{unknown}");
        assert_eq!(origin.calls(), 1);
    }

    /// A hit around the router never reaches it: middleware on the router runs only for the
    /// miss, and a path no route takes reaches the fallback every time.
    #[tokio::test]
    async fn a_hit_around_the_router_is_answered_before_routing() {
        for (kind, cache) in caches() {
            let (origin, routed) = (Origin::default(), Origin::default());
            let count = {
                let routed = routed.clone();
                move |request: Request<Body>, next: axum::middleware::Next| {
                    routed.next();
                    next.run(request)
                }
            };
            let app = Router::new()
                .route("/view/", counting(&origin, &[]))
                .layer(axum::middleware::from_fn(count));
            let site = CacheLayer::new(cache).around(app);
            assert_eq!(send(&site, get_req("/view/")).await.text(), "Hello World 1");
            let hit = send(&site, get_req("/view/")).await;
            assert_eq!(
                (hit.text(), hit.cache),
                ("Hello World 1", Some(CacheStatus::Hit))
            );
            assert_eq!((origin.calls(), routed.calls()), (1, 1), "{kind}");
            for _ in 0..2 {
                let unknown = send(&site, get_req("/nowhere")).await;
                assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{kind}");
                let not_stored = Some(CacheStatus::Miss(NotStored::Status));
                assert_eq!(unknown.cache, not_stored, "{kind}");
            }
            assert_eq!(routed.calls(), 3, "{kind}");
        }
    }

    /// Around the router, axum has already emptied a `HEAD` response's body and set its
    /// length: `HEAD` is still answered from the `GET` entry, and a `HEAD` miss still never
    /// answers a `GET`.
    #[tokio::test]
    async fn head_around_the_router() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = Router::new()
                .route("/view/", counting(&origin, &[]))
                .route("/head/", counting(&origin, &[]));
            let site = CacheLayer::new(cache).around(app);
            send(&site, get_req("/view/")).await;
            let head = send(&site, request(Method::HEAD, "/view/", &[])).await;
            assert_eq!(head.cache, Some(CacheStatus::Hit), "{kind}");
            assert!(head.body.is_empty(), "{kind}");
            assert_eq!(head.header("content-length"), Some("13"), "{kind}");

            send(&site, request(Method::HEAD, "/head/", &[])).await;
            let again = send(&site, request(Method::HEAD, "/head/", &[])).await;
            assert_eq!(again.cache, Some(CacheStatus::Hit), "{kind}");
            assert_eq!(again.header("content-length"), Some("13"), "{kind}");
            let get = send(&site, get_req("/head/")).await;
            assert_eq!(
                (get.text(), get.cache),
                ("Hello World 3", Some(CacheStatus::Stored)),
                "{kind}"
            );
            assert_eq!(origin.calls(), 3, "{kind}");
        }
    }
}

#[cfg(feature = "axum")]
mod nesting {
    use super::*;

    /// Two API versions nested under their own prefixes, each cached by its own layer on one
    /// cache: inside a nested router the path has lost its prefix, so both routes look like
    /// `/users`.
    fn versions(cache: &Cache, v1: &Origin, v2: &Origin) -> Router {
        let version = |origin: &Origin| {
            Router::new()
                .route("/users", counting(origin, &[]))
                .layer(CacheLayer::new(cache.clone()))
        };
        Router::new()
            .nest("/v1", version(v1))
            .nest("/v2", version(v2))
    }

    #[tokio::test]
    async fn nested_routers_keep_their_pages_apart() {
        for (kind, cache) in caches() {
            let (v1, v2) = (Origin::default(), Origin(Arc::new(AtomicUsize::new(100))));
            let app = versions(&cache, &v1, &v2);
            assert_eq!(
                send(&app, get_req("/v1/users")).await.text(),
                "Hello World 1"
            );
            let v2_page = send(&app, get_req("/v2/users")).await;
            assert_eq!(v2_page.text(), "Hello World 101", "{kind}");
            assert_eq!(v2_page.cache, Some(CacheStatus::Stored), "{kind}");
            for (path, body) in [
                ("/v1/users", "Hello World 1"),
                ("/v2/users", "Hello World 101"),
            ] {
                let hit = send(&app, get_req(path)).await;
                assert_eq!(
                    (hit.text(), hit.cache),
                    (body, Some(CacheStatus::Hit)),
                    "{kind} {path}"
                );
            }
            assert_eq!((v1.calls(), v2.calls() - 100), (1, 1), "{kind}");
        }
    }

    /// Middleware on the router that rewrites the request after routing (here, the query from
    /// a cookie, and the path) changes what the handler sees: the key follows the rewrite,
    /// not the URL as received.
    #[tokio::test]
    async fn a_request_rewritten_after_routing_is_keyed_as_rewritten() {
        let rewrite = |mut request: Request<Body>, next: axum::middleware::Next| {
            let cookie = request.headers().get("cookie").cloned();
            let lang = cookie.as_ref().and_then(|value| value.to_str().ok());
            let target = match lang {
                Some("lang=fr") => "/page?lang=fr",
                Some("lang=de") => "/seite",
                _ => "/page?lang=en",
            };
            *request.uri_mut() = target.parse().unwrap();
            next.run(request)
        };
        for (kind, cache) in caches() {
            let app = Router::new()
                .route(
                    "/page",
                    get(|uri: axum::http::Uri| async move { uri.to_string() }),
                )
                .layer(CacheLayer::new(cache))
                .layer(axum::middleware::from_fn(rewrite));
            for round in 0..2 {
                for (lang, seen) in [
                    ("lang=en", "/page?lang=en"),
                    ("lang=fr", "/page?lang=fr"),
                    ("lang=de", "/seite"),
                ] {
                    let reply =
                        send(&app, request(Method::GET, "/page", &[("cookie", lang)])).await;
                    assert_eq!(reply.text(), seen, "{kind} {lang}");
                    if round == 1 {
                        assert_eq!(reply.cache, Some(CacheStatus::Hit), "{kind} {lang}");
                    }
                }
            }
        }
    }

    /// A nested page is deleted by the URL clients use, prefix included.
    #[tokio::test]
    async fn a_nested_page_is_deleted_by_its_full_url() {
        for (kind, cache) in caches() {
            let (v1, v2) = (Origin::default(), Origin(Arc::new(AtomicUsize::new(100))));
            let app = versions(&cache, &v1, &v2);
            send(&app, get_req("/v1/users")).await;
            send(&app, get_req("/v2/users")).await;
            let deleted = cache.delete_page("http://www.example.com/v2/users").await;
            assert_eq!(deleted.ok(), Some(true), "{kind}");
            assert_eq!(
                send(&app, get_req("/v2/users")).await.text(),
                "Hello World 102",
                "{kind}"
            );
            assert_eq!(
                send(&app, get_req("/v1/users")).await.cache,
                Some(CacheStatus::Hit),
                "{kind}"
            );
        }
    }
}

mod invalidation {
    use super::*;

    /// Two processes share a remote store. A page one of them replaced there is what the other
    /// serves next, whatever it read and decoded before.
    #[tokio::test]
    async fn a_page_replaced_in_a_shared_store_is_served_as_replaced() {
        let cache = Cache::new(BytesOnly::default());
        // Pages of the same length, so that only their bytes tell them apart.
        let (first, second) = (Origin::default(), Origin(Arc::new(AtomicUsize::new(1))));
        let process = |origin: &Origin| {
            Router::new()
                .route("/page", counting(origin, &[]))
                .layer(CacheLayer::new(cache.clone()))
        };
        let (one, two) = (process(&first), process(&second));
        send(&one, get_req("/page")).await;
        let hit = send(&one, get_req("/page")).await;
        assert_eq!(
            (hit.text(), hit.cache),
            ("Hello World 1", Some(CacheStatus::Hit))
        );
        cache
            .delete_page("http://www.example.com/page")
            .await
            .unwrap();
        assert_eq!(send(&two, get_req("/page")).await.text(), "Hello World 2");
        for _ in 0..2 {
            let hit = send(&one, get_req("/page")).await;
            assert_eq!(
                (hit.text(), hit.cache),
                ("Hello World 2", Some(CacheStatus::Hit))
            );
        }
        assert_eq!((first.calls(), second.calls()), (1, 2));
    }

    #[tokio::test]
    async fn delete_page_regenerates_every_variant() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = Router::new()
                .route("/view/", counting(&origin, &[("vary", "Accept-Encoding")]))
                .layer(CacheLayer::new(cache.clone()));
            for encoding in ["gzip", "br"] {
                send(
                    &app,
                    request(Method::GET, "/view/", &[("accept-encoding", encoding)]),
                )
                .await;
            }
            assert!(
                cache
                    .delete_page("http://www.example.com/view/")
                    .await
                    .unwrap(),
                "{kind}"
            );
            for encoding in ["gzip", "br"] {
                let reply = send(
                    &app,
                    request(Method::GET, "/view/", &[("accept-encoding", encoding)]),
                )
                .await;
                assert_ne!(
                    reply.cache,
                    Some(CacheStatus::Hit),
                    "{kind}: {encoding} survived"
                );
            }
            assert_eq!(origin.calls(), 4, "{kind}");
            assert!(
                !cache
                    .delete_page("http://www.example.com/other/")
                    .await
                    .unwrap()
            );
            assert!(
                cache.delete_page("/view/").await.is_err(),
                "a relative URL is refused"
            );
        }
    }
}

mod placement {
    use super::*;
    use axum::middleware::map_response;

    async fn add_vary_cookie(mut response: Response) -> Response {
        response
            .headers_mut()
            .append("vary", HeaderValue::from_static("Cookie"));
        response
    }

    fn user_page(origin: &Origin) -> axum::routing::MethodRouter {
        let origin = origin.clone();
        get(move |headers: HeaderMap| {
            origin.next();
            let cookie = headers
                .get("cookie")
                .map(|v| v.to_str().unwrap().to_owned());
            async move { format!("page for {cookie:?}") }
        })
    }

    #[tokio::test]
    async fn split_layers_see_vary_added_between_them() {
        // The update half stores the final response, with middleware's Vary: Cookie.
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let (update, fetch) = CacheLayer::new(cache).split();
        let app = Router::new()
            .route("/me", user_page(&origin))
            .layer(fetch)
            .layer(map_response(add_vary_cookie))
            .layer(update);
        for user in ["a=1", "b=2", "a=1", "b=2"] {
            let reply = send(&app, request(Method::GET, "/me", &[("cookie", user)])).await;
            assert_eq!(reply.text(), format!("page for Some({user:?})"));
        }
        assert_eq!(origin.calls(), 2);
        let hit = send(&app, request(Method::GET, "/me", &[("cookie", "a=1")])).await;
        assert_eq!(hit.cache, Some(CacheStatus::Hit));
    }

    /// The update half on routes the fetch half does not cover stores nothing, and the
    /// handler's `Cache-Tag` still never reaches the client.
    #[tokio::test]
    async fn the_update_half_alone_stores_nothing_and_strips_cache_tag() {
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let (update, fetch) = CacheLayer::new(cache).split();
        let counter = origin.clone();
        let app = Router::new()
            .route(
                "/tagged",
                get(move || {
                    counter.next();
                    async { ([("cache-tag", "tenant-42")], "tagged") }
                })
                .layer(fetch),
            )
            .route("/bare", counting(&origin, &[("cache-tag", "tenant-42")]))
            .layer(update);
        for _ in 0..2 {
            let reply = send(&app, get_req("/bare")).await;
            assert_eq!(reply.header("cache-tag"), None, "leaked on /bare");
            assert_eq!(reply.cache, None, "no verdict without the fetch half");
        }
        for _ in 0..2 {
            let reply = send(&app, get_req("/tagged")).await;
            assert_eq!(reply.header("cache-tag"), None, "leaked on /tagged");
        }
        assert_eq!(origin.calls(), 3, "/bare twice, /tagged once");
    }

    #[tokio::test]
    async fn layers_fit_router_route_layer_and_method_router() {
        let cache = Cache::new(MemoryStore::new());
        let (update, fetch) = CacheLayer::new(cache.clone()).split();
        let app: Router = Router::new()
            .route(
                "/a",
                get(|| async { "a" }).layer(cache_page(&cache, Duration::from_secs(1))),
            )
            .route("/b", get(|| async { "b" }))
            .route_layer(CacheLayer::new(cache.clone()))
            .layer(fetch)
            .layer(update);
        assert_eq!(send(&app, get_req("/a")).await.text(), "a");
        assert_eq!(send(&app, get_req("/b")).await.text(), "b");
    }

    #[tokio::test]
    async fn any_tower_service_with_any_body_works() {
        let cache = Cache::new(MemoryStore::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let service = tower::ServiceBuilder::new()
            .layer(CacheLayer::new(cache))
            .service_fn(move |_request: Request<String>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    Ok::<_, Infallible>(Response::new(http_body_util::Full::new(
                        Bytes::from_static(b"plain tower"),
                    )))
                }
            });
        for _ in 0..2 {
            let request = Request::builder()
                .uri("http://example.com/x")
                .body(String::new())
                .unwrap();
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(
                response.into_body().collect().await.unwrap().to_bytes(),
                "plain tower"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cache_status_header_reports_the_outcome() {
        let clock = Clock::at(1_700_000_000);
        let cache = Cache::new(MemoryStore::new());
        let origin = Origin::default();
        let app = Router::new()
            .route("/view/", counting(&origin, &[]).post(|| async { "posted" }))
            .route(
                "/private",
                counting(&origin, &[("cache-control", "private")]),
            )
            .layer(
                CacheLayer::new(cache)
                    .cache_status_header(true)
                    .clock(clock.reader()),
            );
        assert_eq!(
            send(&app, get_req("/view/")).await.header("cache-status"),
            Some("axum-cache; fwd=uri-miss; fwd-status=200; stored")
        );
        assert_eq!(
            send(&app, get_req("/view/")).await.header("cache-status"),
            Some("axum-cache; hit; ttl=600")
        );
        clock.advance(Duration::from_secs(10)).await;
        assert_eq!(
            send(&app, get_req("/view/")).await.header("cache-status"),
            Some("axum-cache; hit; ttl=590")
        );
        assert_eq!(
            send(&app, get_req("/private")).await.header("cache-status"),
            Some("axum-cache; fwd=uri-miss; fwd-status=200; detail=cache-control")
        );
        assert_eq!(
            send(&app, request(Method::POST, "/view/", &[]))
                .await
                .header("cache-status"),
            Some("axum-cache; fwd=method; fwd-status=200")
        );
        let with_body = Request::builder()
            .uri("/view/")
            .header("host", "www.example.com")
            .body(Body::from("q=1"))
            .unwrap();
        assert_eq!(
            send(&app, with_body).await.header("cache-status"),
            Some("axum-cache; fwd=bypass; detail=body; fwd-status=200")
        );
    }

    /// Caches nearer the origin keep their members: ours is appended on responses from the
    /// origin, and a hit (from this cache, not from them) carries ours alone. The name is ours
    /// to choose.
    #[tokio::test(start_paused = true)]
    async fn cache_status_is_appended_to_upstream_members_and_never_replayed() {
        let clock = Clock::at(1_700_000_000);
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = Router::new()
                .route(
                    "/view/",
                    counting(&origin, &[("cache-status", "origin-cache; fwd=uri-miss")]),
                )
                .layer(
                    CacheLayer::new(cache)
                        .cache_status_header(true)
                        .cache_status_name("edge 1")
                        .clock(clock.reader()),
                );
            let members = |reply: &Reply| -> Vec<String> {
                reply
                    .headers
                    .get_all("cache-status")
                    .iter()
                    .map(|value| value.to_str().unwrap().to_owned())
                    .collect()
            };
            let miss = send(&app, get_req("/view/")).await;
            assert_eq!(
                members(&miss),
                [
                    "origin-cache; fwd=uri-miss",
                    "\"edge 1\"; fwd=uri-miss; fwd-status=200; stored"
                ],
                "{kind}"
            );
            let hit = send(&app, get_req("/view/")).await;
            assert_eq!(members(&hit), ["\"edge 1\"; hit; ttl=600"], "{kind}");
        }
    }

    #[test]
    fn futures_and_services_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let cache = Cache::new(MemoryStore::new());
        let app: Router = Router::new()
            .route("/", get(|| async { "x" }))
            .layer(CacheLayer::new(cache));
        let future = app.oneshot(get_req("/"));
        is_send(&future);
    }
}

/// Many users with cookies and tokens hitting personalised routes: nobody ever receives a body
/// generated for somebody else.
mod isolation {
    use super::*;

    #[derive(Clone)]
    struct Users(Origin);

    async fn whoami(headers: &HeaderMap) -> String {
        let cookie = headers
            .get("cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        format!("cookie={cookie:?} auth={auth:?}")
    }

    fn app(cache: &Cache) -> Router {
        let state = Users(Origin::default());
        Router::new()
            .route(
                "/vary-cookie",
                get(
                    |State(users): State<Users>, headers: HeaderMap| async move {
                        users.0.next();
                        ([("vary", "Cookie")], whoami(&headers).await)
                    },
                ),
            )
            .route(
                "/private",
                get(|headers: HeaderMap| async move {
                    ([("cache-control", "private")], whoami(&headers).await)
                }),
            )
            .route(
                "/set-cookie",
                get(|headers: HeaderMap| async move {
                    ([("set-cookie", "seen=1")], whoami(&headers).await)
                }),
            )
            .route(
                "/token",
                get(|headers: HeaderMap| async move { whoami(&headers).await }),
            )
            .route("/public", get(|| async { "same for everyone" }))
            .with_state(state)
            .layer(CacheLayer::new(cache.clone()))
    }

    #[tokio::test]
    async fn no_user_ever_receives_another_users_page() {
        for (kind, cache) in caches() {
            let app = app(&cache);
            let routes = [
                "/vary-cookie",
                "/private",
                "/set-cookie",
                "/token",
                "/public",
            ];
            let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let mut hits = 0;
            for _ in 0..600 {
                let user = next() % 12;
                let route = routes[(next() % routes.len() as u64) as usize];
                let mut headers = Vec::new();
                let cookie = format!("session=user{}", user % 6);
                let token = format!("Bearer token{user}");
                if user % 3 != 0 {
                    headers.push(("cookie", cookie.as_str()));
                }
                if user % 4 == 0 {
                    headers.push(("authorization", token.as_str()));
                }
                let reply = send(&app, request(Method::GET, route, &headers)).await;
                if reply.cache == Some(CacheStatus::Hit) {
                    hits += 1;
                }
                if route == "/public" {
                    assert_eq!(reply.text(), "same for everyone");
                    continue;
                }
                let cookie = headers
                    .iter()
                    .find(|(n, _)| *n == "cookie")
                    .map(|(_, v)| v.to_string());
                let auth = headers
                    .iter()
                    .find(|(n, _)| *n == "authorization")
                    .map(|(_, v)| v.to_string());
                let mine = format!("cookie={cookie:?} auth={auth:?}");
                if route == "/token" && reply.cache == Some(CacheStatus::Hit) && auth.is_none() {
                    // An unvaried page stored for a request without a token answers any request
                    // without a token, whatever its cookie: the page said it does not vary.
                    assert!(
                        reply.text().ends_with("auth=None"),
                        "{kind}: {}",
                        reply.text()
                    );
                    continue;
                }
                assert_eq!(reply.text(), mine, "{kind} {route}");
            }
            assert!(
                hits > 100,
                "{kind}: the cache must actually be used ({hits} hits)"
            );
        }
    }
}

/// Rules a request must meet to be looked up, and what a hit answers.
mod request_rules {
    use super::*;

    /// A request body that ends at once without saying so in advance, as a stream does.
    struct UnknownLength;

    impl http_body::Body for UnknownLength {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(None)
        }
    }

    /// A `GET` (or `HEAD`) with a body is never looked up nor stored: the key does not cover
    /// the body, so one client's body must never decide the page others get.
    #[tokio::test]
    async fn a_request_with_a_body_bypasses_the_cache() {
        for (kind, cache) in caches() {
            let app = Router::new()
                .route(
                    "/echo",
                    get(|body: String| async move { format!("[{body}]") }),
                )
                .layer(CacheLayer::new(cache));
            let with_body = |method: Method, body: &'static str| {
                Request::builder()
                    .method(method)
                    .uri("/echo")
                    .header("host", "www.example.com")
                    .body(Body::from(body))
                    .unwrap()
            };
            let poisoned = send(&app, with_body(Method::GET, "evil")).await;
            assert_eq!(poisoned.text(), "[evil]", "{kind}");
            assert_eq!(
                poisoned.cache,
                Some(CacheStatus::Bypass(Bypass::Body)),
                "{kind}"
            );
            let clean = send(&app, get_req("/echo")).await;
            assert_eq!(
                (clean.cache, clean.text()),
                (Some(CacheStatus::Stored), "[]"),
                "{kind}: nothing was stored from the request with a body"
            );
            assert_eq!(
                send(&app, get_req("/echo")).await.cache,
                Some(CacheStatus::Hit)
            );
            // A stored page does not answer a request with a body either.
            let again = send(&app, with_body(Method::GET, "other")).await;
            assert_eq!(
                (again.cache, again.text()),
                (Some(CacheStatus::Bypass(Bypass::Body)), "[other]"),
                "{kind}"
            );
            let head = send(&app, with_body(Method::HEAD, "x")).await;
            assert_eq!(
                head.cache,
                Some(CacheStatus::Bypass(Bypass::Body)),
                "{kind}"
            );
            // A body that cannot tell whether it holds anything counts as one.
            let unknown = Request::builder()
                .uri("/echo")
                .header("host", "www.example.com")
                .body(Body::new(UnknownLength))
                .unwrap();
            assert_eq!(
                send(&app, unknown).await.cache,
                Some(CacheStatus::Bypass(Bypass::Body)),
                "{kind}"
            );
            let empty = request(Method::GET, "/echo", &[("content-length", "0")]);
            assert_eq!(
                send(&app, empty).await.cache,
                Some(CacheStatus::Hit),
                "{kind}"
            );
        }
    }

    /// `If-None-Match: *` matches any current representation, and a stored page is one: a hit
    /// answers 304, with or without an ETag, as it does for a list holding the page's tag.
    #[tokio::test]
    async fn if_none_match_star_on_a_hit_is_not_modified() {
        for (kind, cache) in caches() {
            let origin = Origin::default();
            let app = Router::new()
                .route("/tagged", counting(&origin, &[("etag", "\"v1\"")]))
                .route("/untagged", counting(&origin, &[]))
                .layer(CacheLayer::new(cache));
            for path in ["/tagged", "/untagged"] {
                send(&app, get_req(path)).await;
                let star = send(&app, request(Method::GET, path, &[("if-none-match", "*")])).await;
                assert_eq!(star.status, StatusCode::NOT_MODIFIED, "{kind} {path}");
                assert_eq!(star.cache, Some(CacheStatus::Hit), "{kind} {path}");
                assert!(star.body.is_empty());
                let head = send(&app, request(Method::HEAD, path, &[("if-none-match", "*")])).await;
                assert_eq!(head.status, StatusCode::NOT_MODIFIED, "{kind} {path}");
            }
            let list = request(
                Method::GET,
                "/tagged",
                &[("if-none-match", "\"v0\", W/\"v1\"")],
            );
            assert_eq!(send(&app, list).await.status, StatusCode::NOT_MODIFIED);
            let other = request(
                Method::GET,
                "/tagged",
                &[("if-none-match", "\"v0\", \"v2\"")],
            );
            let full = send(&app, other).await;
            assert_eq!(
                (full.status, full.cache),
                (StatusCode::OK, Some(CacheStatus::Hit))
            );
            assert_eq!(origin.calls(), 2, "{kind}");
        }
    }

    /// A page record of a newer format (written by a newer version of the application during a
    /// rolling deploy) is a miss, and the lookup leaves it in the store.
    #[tokio::test]
    async fn a_page_of_a_newer_format_is_a_miss_and_stays() {
        let store = BytesOnly::default();
        let cache = Cache::new(store.clone());
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let app = Router::new()
            .route(
                "/view/",
                get(move || {
                    // Stored the first time, never after, so nothing overwrites the record.
                    let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                    let control = if n == 1 { "max-age=60" } else { "no-store" };
                    async move { ([("cache-control", control)], format!("page {n}")) }
                }),
            )
            .layer(CacheLayer::new(cache));
        send(&app, get_req("/view/")).await;
        let keys = store.written();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let mut newer = store.get(&keys[0]).await.unwrap().unwrap().to_vec();
        newer[0] = newer[0].wrapping_add(1);
        store
            .set(&keys[0], Bytes::from(newer.clone()), None)
            .await
            .unwrap();
        let reply = send(&app, get_req("/view/")).await;
        assert_eq!(reply.text(), "page 2");
        assert_ne!(reply.cache, Some(CacheStatus::Hit));
        assert_eq!(
            store.get(&keys[0]).await.unwrap().as_deref(),
            Some(&newer[..]),
            "the newer record is still there"
        );
    }
}
