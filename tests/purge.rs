//! Purging from outside the process: the purge service by URL, prefix and tag behind a bearer
//! token, and the opt-in `PURGE` method, on an in-process and a remote store.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::http::{Method, Request, StatusCode};
use axum::routing::get;
use axum_cache::store::{MemoryStore, Store};
use axum_cache::{CacheBuilder, CacheLayer, CacheStatus, CacheTags};
use http_body_util::BodyExt;
use tower::ServiceExt;

use support::stores::BytesOnly;
use support::tasks::Tasks;

const TOKEN: &str = "s3cret-purge-token";

struct Site {
    app: Router,
    renders: Arc<AtomicUsize>,
}

/// Pages under `/articles/`, pages that only look related, and a tagged page, behind `layer`,
/// with the purge service at `/cache/purge`.
fn site(layer: CacheLayer) -> Site {
    let renders = Arc::new(AtomicUsize::new(0));
    let counted = |text: &'static str| {
        let renders = Arc::clone(&renders);
        get(move || {
            renders.fetch_add(1, Ordering::SeqCst);
            async move { text }
        })
    };
    let tagged = {
        let renders = Arc::clone(&renders);
        get(move || {
            renders.fetch_add(1, Ordering::SeqCst);
            async move { (Extension(CacheTags::new(["menu"])), "tagged") }
        })
    };
    let app = Router::new()
        .route("/articles/1", counted("one"))
        .route("/articles/2", counted("two"))
        .route("/articlesX", counted("not an article"))
        .route("/other", counted("other"))
        .route("/tagged", tagged)
        .layer(layer.clone())
        .route_service("/cache/purge", layer.purge_service(TOKEN));
    Site { app, renders }
}

struct Reply {
    status: StatusCode,
    cache: Option<CacheStatus>,
    body: String,
    www_authenticate: bool,
}

async fn send(app: &Router, method: Method, uri: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "example.com");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let tasks = Tasks::now();
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let cache = response.extensions().get::<CacheStatus>().copied();
    let www_authenticate = response.headers().contains_key("www-authenticate");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    // A remote store's write runs in a task spawned when the body ends.
    tasks.wait_for().await;
    Reply {
        status,
        cache,
        body: String::from_utf8(body.to_vec()).unwrap(),
        www_authenticate,
    }
}

async fn warm(app: &Router, paths: &[&str]) {
    for path in paths {
        assert_eq!(
            send(app, Method::GET, path, None).await.cache,
            Some(CacheStatus::Stored)
        );
        assert_eq!(
            send(app, Method::GET, path, None).await.cache,
            Some(CacheStatus::Hit)
        );
    }
}

async fn is_hit(app: &Router, path: &str) -> bool {
    send(app, Method::GET, path, None).await.cache == Some(CacheStatus::Hit)
}

fn stores() -> [Arc<dyn Store>; 2] {
    [Arc::new(MemoryStore::new()), Arc::new(BytesOnly::default())]
}

#[tokio::test]
async fn the_service_refuses_requests_without_the_token() {
    let site = site(CacheLayer::new(
        CacheBuilder::from_arc(Arc::new(MemoryStore::new())).build(),
    ));
    warm(&site.app, &["/articles/1"]).await;
    let purge = "/cache/purge?url=http://example.com/articles/1";
    for token in [None, Some("wrong"), Some("")] {
        let reply = send(&site.app, Method::POST, purge, token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.www_authenticate);
    }
    assert_eq!(
        send(&site.app, Method::GET, purge, Some(TOKEN))
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let nothing = send(&site.app, Method::POST, "/cache/purge", Some(TOKEN)).await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);
    let bad = send(
        &site.app,
        Method::POST,
        "/cache/purge?url=/no-host",
        Some(TOKEN),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(is_hit(&site.app, "/articles/1").await, "nothing was purged");
}

#[tokio::test]
async fn an_empty_token_admits_nobody() {
    let layer = CacheLayer::new(CacheBuilder::from_arc(Arc::new(MemoryStore::new())).build());
    let app = Router::new().route_service("/purge", layer.purge_service(""));
    let reply = send(&app, Method::POST, "/purge?tag=menu", Some("")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_service_purges_by_url_prefix_and_tag() {
    for store in stores() {
        let site = site(CacheLayer::new(CacheBuilder::from_arc(store).build()));
        let app = &site.app;
        warm(
            app,
            &[
                "/articles/1",
                "/articles/2",
                "/articlesX",
                "/other?x=:/articles/",
                "/tagged",
            ],
        )
        .await;
        let renders = site.renders.load(Ordering::SeqCst);

        let reply = send(
            app,
            Method::POST,
            "/cache/purge?url=http://example.com/articles/1",
            Some(TOKEN),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body,
            r#"{"urls":[{"url":"http://example.com/articles/1","deleted":true}],"prefixes":[],"tags":[]}"#
        );
        assert!(
            !is_hit(app, "/articles/1").await,
            "purged, so rendered again"
        );
        assert!(is_hit(app, "/articles/2").await);

        let reply = send(
            app,
            Method::POST,
            "/cache/purge?prefix=http://example.com/articles/&tag=menu",
            Some(TOKEN),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            reply.body,
            r#"{"urls":[],"prefixes":[{"prefix":"http://example.com/articles/","deleted":2}],"tags":["menu"]}"#
        );
        assert!(!is_hit(app, "/articles/1").await);
        assert!(!is_hit(app, "/articles/2").await);
        assert!(!is_hit(app, "/tagged").await, "its tag was invalidated");
        assert!(is_hit(app, "/articlesX").await, "not under the prefix");
        assert!(
            is_hit(app, "/other?x=:/articles/").await,
            "the prefix is not in its path"
        );
        assert_eq!(
            site.renders.load(Ordering::SeqCst),
            renders + 4,
            "the purged pages rendered again, once each"
        );
    }
}

#[tokio::test]
async fn the_purge_method_is_opt_in_and_needs_the_token() {
    for store in stores() {
        let layer = CacheLayer::new(CacheBuilder::from_arc(store).build());
        let plain = site(layer.clone());
        warm(&plain.app, &["/articles/1"]).await;
        let reply = send(
            &plain.app,
            Method::from_bytes(b"PURGE").unwrap(),
            "/articles/1",
            Some(TOKEN),
        )
        .await;
        assert_ne!(
            reply.status,
            StatusCode::OK,
            "without the opt-in, PURGE reaches the router"
        );
        assert!(is_hit(&plain.app, "/articles/1").await);

        let purging = site(layer.purge_method(TOKEN));
        let purge = Method::from_bytes(b"PURGE").unwrap();
        let refused = send(&purging.app, purge.clone(), "/articles/1", Some("wrong")).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(is_hit(&purging.app, "/articles/1").await);
        let reply = send(&purging.app, purge, "/articles/1", Some(TOKEN)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body,
            r#"{"urls":[{"url":"/articles/1","deleted":true}],"prefixes":[],"tags":[]}"#
        );
        assert!(!is_hit(&purging.app, "/articles/1").await);
    }
}
