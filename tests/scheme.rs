//! The scheme in page keys, through a real `axum::serve` speaking HTTP/1.1 and HTTP/2: an
//! HTTP/1.1 request carries no scheme and an HTTP/2 request carries `https`, and the two must
//! still find the same page, which `delete_page` removes for both.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use axum::routing::get;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer};
use http::uri::Scheme;
use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

/// A server on a free loopback port whose one page counts its renders, behind `layer`.
async fn serve(layer: CacheLayer) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let renders = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&renders);
    let app = Router::new()
        .route(
            "/page",
            get(move || {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                async move { format!("render {n}") }
            }),
        )
        .layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, renders)
}

#[derive(Clone, Copy, Debug)]
enum Protocol {
    Http1,
    Http2,
}

/// Sends `GET /page` over a new connection of `protocol`: HTTP/1.1 in origin form (no scheme),
/// HTTP/2 with `:scheme https`, as a browser sends it over TLS.
async fn fetch(
    address: std::net::SocketAddr,
    protocol: Protocol,
    headers: &[(&'static str, &'static str)],
) -> Response<String> {
    let stream = TokioIo::new(TcpStream::connect(address).await.expect("connect"));
    let mut request = match protocol {
        Protocol::Http1 => Request::builder()
            .uri("/page")
            .header("host", format!("site.example:{}", address.port())),
        Protocol::Http2 => {
            Request::builder().uri(format!("https://site.example:{}/page", address.port()))
        }
    }
    .body(Body::empty())
    .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let response = match protocol {
        Protocol::Http1 => {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(stream)
                .await
                .expect("HTTP/1.1 handshake");
            tokio::spawn(connection);
            sender
                .send_request(request)
                .await
                .expect("HTTP/1.1 response")
        }
        Protocol::Http2 => {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), stream)
                    .await
                    .expect("HTTP/2 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("HTTP/2 response")
        }
    };
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Response::from_parts(parts, String::from_utf8(body.to_vec()).expect("utf-8"))
}

#[tokio::test]
async fn http1_and_http2_requests_share_one_page_and_one_delete() {
    for (first, second) in [
        (Protocol::Http1, Protocol::Http2),
        (Protocol::Http2, Protocol::Http1),
    ] {
        let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
        let (address, renders) = serve(layer.clone()).await;
        assert_eq!(fetch(address, first, &[]).await.body(), "render 1");
        assert_eq!(
            fetch(address, second, &[]).await.body(),
            "render 1",
            "{second:?} after {first:?} finds the same page"
        );
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        let url = format!("https://site.example:{}/page", address.port());
        assert!(layer.delete_page(&url).await.expect("delete"));
        assert_eq!(fetch(address, first, &[]).await.body(), "render 2");
        assert_eq!(fetch(address, second, &[]).await.body(), "render 2");
        assert_eq!(renders.load(Ordering::SeqCst), 2);
    }
}

/// With a fixed scheme, `delete_page` finds the page whatever scheme its URL names.
#[tokio::test]
async fn a_fixed_scheme_keys_every_request_and_delete() {
    let layer = CacheLayer::new(Cache::new(MemoryStore::new())).scheme(Scheme::HTTPS);
    let (address, renders) = serve(layer.clone()).await;
    fetch(address, Protocol::Http1, &[]).await;
    assert_eq!(
        fetch(address, Protocol::Http2, &[]).await.body(),
        "render 1"
    );
    let url = format!("http://site.example:{}/page", address.port());
    assert!(layer.delete_page(&url).await.expect("delete"));
    assert_eq!(
        fetch(address, Protocol::Http2, &[]).await.body(),
        "render 2"
    );
    assert_eq!(renders.load(Ordering::SeqCst), 2);
}

/// With a trusted forwarded-protocol header, `http` and `https` pages are kept apart, whatever
/// protocol carried the request, and `delete_page` takes the URL's own scheme.
#[tokio::test]
async fn a_trusted_header_splits_http_from_https_and_nothing_else() {
    let layer = CacheLayer::new(Cache::new(MemoryStore::new()))
        .scheme_header(HeaderName::from_static("x-forwarded-proto"));
    let (address, renders) = serve(layer.clone()).await;
    let https = [("x-forwarded-proto", "https")];
    let http = [("x-forwarded-proto", "http")];
    assert_eq!(
        fetch(address, Protocol::Http1, &https).await.body(),
        "render 1"
    );
    assert_eq!(
        fetch(address, Protocol::Http2, &https).await.body(),
        "render 1"
    );
    assert_eq!(
        fetch(address, Protocol::Http2, &http).await.body(),
        "render 2"
    );
    assert_eq!(
        fetch(address, Protocol::Http1, &http).await.body(),
        "render 2"
    );
    let url = format!("https://site.example:{}/page", address.port());
    assert!(layer.delete_page(&url).await.expect("delete"));
    assert_eq!(
        fetch(address, Protocol::Http1, &https).await.body(),
        "render 3"
    );
    assert_eq!(
        fetch(address, Protocol::Http1, &http).await.body(),
        "render 2"
    );
    assert_eq!(renders.load(Ordering::SeqCst), 3);
}
