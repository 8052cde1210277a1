//! `CacheLayer::stats`: every request counted once by outcome and reason, the pages written and
//! the writes that failed, on an in-process store, a remote one, a failing one and a split
//! cache; and `Cache::stats`: the reads that hit and missed.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::routing::get;
use axum_cache::page::{Bypass, NotStored, PageStats};
use axum_cache::store::{MemoryStore, Store};
use axum_cache::{Cache, CacheBuilder, CacheLayer, CacheStatus};
use http_body_util::BodyExt;
use tower::ServiceExt;

use support::stores::{BytesOnly, DownStore};
use support::tasks::Tasks;

/// Pages of each kind, the origin calls counted.
fn site(calls: &Arc<AtomicUsize>) -> Router {
    let counted = |text: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let calls = Arc::clone(calls);
        get(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut response = axum::response::Response::new(Body::from(text));
                for (name, value) in headers {
                    response
                        .headers_mut()
                        .insert(*name, value.parse().expect("header value"));
                }
                response
            }
        })
    };
    Router::new()
        .route("/page", counted("page", &[]))
        .route(
            "/private",
            counted("yours", &[("cache-control", "private")]),
        )
        .route("/cookie", counted("session", &[("set-cookie", "id=1")]))
}

async fn send(
    app: &Router,
    method: Method,
    path: &str,
    header: Option<(&str, &str)>,
) -> CacheStatus {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.com");
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let tasks = Tasks::now();
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = *response.extensions().get::<CacheStatus>().expect("marked");
    response.into_body().collect().await.expect("body");
    // A remote store's write runs in a task spawned when the body ends.
    tasks.wait_for().await;
    status
}

/// The same traffic on any store: one page stored then hit twice, two pages not stored for
/// two reasons, two requests not looked up for two reasons.
async fn traffic(store: Arc<dyn Store>) -> (PageStats, usize) {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(CacheBuilder::from_arc(store).ignore_errors(true).build());
    let app = site(&calls).layer(layer.clone());
    send(&app, Method::GET, "/page", None).await;
    send(&app, Method::GET, "/page", None).await;
    send(&app, Method::GET, "/page", None).await;
    send(&app, Method::GET, "/private", None).await;
    send(&app, Method::GET, "/cookie", None).await;
    send(&app, Method::DELETE, "/page", None).await;
    send(&app, Method::GET, "/page", Some(("if-match", "\"v1\""))).await;
    (layer.stats(), calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn every_request_is_counted_once_by_outcome_and_reason() {
    let stores = [
        (Arc::new(MemoryStore::new()) as Arc<dyn Store>, false),
        (Arc::new(BytesOnly::default()), true),
    ];
    for (store, remote) in stores {
        let (stats, calls) = traffic(store).await;
        // Lookups read records from a remote store (timed); an in-process one answers in place.
        assert_eq!(stats.store_reads > 0, remote, "{stats:?}");
        assert_eq!(stats.hits, 2);
        assert_eq!(stats.misses, 3, "{stats:?}");
        assert_eq!(stats.stored, 1);
        assert_eq!(stats.writes, 1, "the page was written once");
        assert_eq!(stats.write_failures, 0);
        assert_eq!(stats.not_stored(NotStored::CacheControl), 1);
        assert_eq!(stats.not_stored(NotStored::SetCookie), 1);
        assert_eq!(stats.not_stored(NotStored::Status), 0);
        assert_eq!(stats.bypasses, 2);
        assert_eq!(stats.bypassed(Bypass::Method), 1);
        assert_eq!(stats.bypassed(Bypass::Precondition), 1);
        assert_eq!(stats.stale_served, 0);
        assert_eq!(stats.store_errors, 0);
        // Only the `GET`s that were not hits reached a handler (there is no `DELETE` route).
        assert_eq!(calls, 4);
    }
}

#[tokio::test]
async fn a_failing_store_counts_failed_writes_and_store_errors() {
    let (stats, calls) = traffic(Arc::new(DownStore)).await;
    assert_eq!(stats.hits, 0, "nothing can be read back");
    assert_eq!(
        stats.stored, 3,
        "the page was set out to be stored each time"
    );
    assert_eq!(stats.writes, 0);
    assert_eq!(stats.write_failures, 3);
    assert!(
        stats.store_errors >= 6,
        "reads and writes failed: {stats:?}"
    );
    assert_eq!(calls, 6, "every GET reached its handler");
}

#[tokio::test]
async fn the_halves_of_a_split_cache_count_together() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
    let (update, fetch) = layer.clone().split();
    let app = site(&calls).layer(fetch).layer(update);
    assert_eq!(
        send(&app, Method::GET, "/page", None).await,
        CacheStatus::Stored
    );
    assert_eq!(
        send(&app, Method::GET, "/page", None).await,
        CacheStatus::Hit
    );
    assert_eq!(
        send(&app, Method::GET, "/private", None).await,
        CacheStatus::Miss(NotStored::CacheControl)
    );
    let stats = layer.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.stored, stats.writes),
        (1, 2, 1, 1)
    );
    assert_eq!(stats.not_stored(NotStored::CacheControl), 1);
}

#[tokio::test]
async fn a_cache_counts_its_reads_waits_and_store_errors() {
    use axum_cache::Timeout;
    let cache = Cache::new(MemoryStore::new());
    cache.set("n", &7u32, Timeout::Default).await.unwrap();
    cache.set("text", "seven", Timeout::Default).await.unwrap();
    assert_eq!(cache.get::<u32>("n").await.unwrap(), Some(7));
    assert_eq!(cache.get::<u32>("missing").await.unwrap(), None);
    // A value of another type is a miss for this reader.
    assert_eq!(cache.get::<u32>("text").await.unwrap(), None);
    let found = cache
        .get_many::<u32, _, _>(["n", "missing", "other"])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let computed: u32 = cache
        .get_or_set("computed", Timeout::Default, || async { 1 })
        .await
        .unwrap();
    assert_eq!(computed, 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (2, 5), "{stats:?}");
    assert_eq!(stats.store_errors, 0);

    let down = Cache::builder(DownStore).ignore_errors(true).build();
    assert_eq!(down.get::<u32>("n").await.unwrap(), None);
    let stats = down.stats();
    assert_eq!((stats.hits, stats.misses, stats.store_errors), (0, 0, 1));
}
