//! Requests as the integration tests send them.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request};

/// A request for `uri` on `www.example.com`, with `headers`.
pub fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "www.example.com");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}
