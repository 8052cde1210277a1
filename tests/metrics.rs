//! The `metrics` example after known traffic: its `/metrics` page shows the response cache's
//! counts under the documented names and labels.
#![cfg(feature = "metrics")]

#[path = "../examples/metrics/app.rs"]
mod app;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum_cache::CacheStatus;
use http_body_util::BodyExt;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::ServiceExt;

async fn send(app: &axum::Router, method: Method, path: &str) -> (Option<CacheStatus>, String) {
    let request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "example.com")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    if method == Method::GET {
        assert_eq!(response.status(), StatusCode::OK);
    }
    let status = response.extensions().get::<CacheStatus>().copied();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The value of the sample whose line starts with `series` (name and labels as Prometheus
/// writes them).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn the_metrics_page_counts_what_the_cache_did() {
    // The only recorder of this test binary: this file holds one test.
    let metrics = PrometheusBuilder::new().install_recorder().unwrap();
    let app = app::router(metrics);
    assert_eq!(
        send(&app, Method::GET, "/articles").await.0,
        Some(CacheStatus::Stored)
    );
    for _ in 0..3 {
        assert_eq!(
            send(&app, Method::GET, "/articles").await.0,
            Some(CacheStatus::Hit)
        );
    }
    for _ in 0..2 {
        let (status, body) = send(&app, Method::GET, "/me").await;
        assert!(matches!(status, Some(CacheStatus::Miss(_))));
        assert_eq!(body, "your page");
    }
    let (status, _) = send(&app, Method::POST, "/articles").await;
    assert!(matches!(status, Some(CacheStatus::Bypass(_))));

    let (_, page) = send(&app, Method::GET, "/metrics").await;
    let requests = |outcome: &str, reason: &str| {
        let series = format!(
            "axum_cache_page_requests_total{{cache=\"pages\",outcome=\"{outcome}\",reason=\"{reason}\"}}"
        );
        sample(&page, &series)
    };
    assert_eq!(requests("stored", ""), Some(1.0), "{page}");
    assert_eq!(requests("hit", ""), Some(3.0), "{page}");
    assert_eq!(requests("miss", "cache-control"), Some(2.0), "{page}");
    assert_eq!(requests("bypass", "method"), Some(1.0), "{page}");
    assert_eq!(
        sample(
            &page,
            "axum_cache_page_writes_total{cache=\"pages\",result=\"ok\"}"
        ),
        Some(1.0),
        "{page}"
    );
}
