//! Purging from outside the process: a service that deletes pages by URL or URL prefix and
//! invalidates tags, for a deploy script or a CMS hook, behind a bearer token.

use std::convert::Infallible;
use std::fmt::{self, Write};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_service::Service;

use super::body::CacheBody;
use super::config::Config;
use super::key::Url;
use super::layer::CacheLayer;

/// The token a purge request must carry, kept as its digest: compared in constant time and
/// never shown.
#[derive(Clone)]
pub(super) struct Token([u8; 32]);

impl Token {
    pub(super) fn new(token: &[u8]) -> Token {
        Token(Sha256::digest(token).into())
    }

    /// Whether the request's `Authorization` is `Bearer <this token>`.
    pub(super) fn admits(&self, request: &http::HeaderMap) -> bool {
        let Some(given) = request
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given).into();
        bool::from(self.0.ct_eq(&given))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Tower service that purges a response cache on request, from [`CacheLayer::purge_service`].
/// Mount it as a route (`Router::route_service("/cache/purge", service)`) and call it with
/// `POST` and a bearer token:
///
/// | Query | Does |
/// |---|---|
/// | `url=https://example.com/articles/7` | [`delete_page`](CacheLayer::delete_page) |
/// | `prefix=https://example.com/articles/` | [`delete_pages_under`](CacheLayer::delete_pages_under) |
/// | `tag=articles` | [`Cache::invalidate_tag`](crate::Cache::invalidate_tag) |
///
/// Parameters may repeat and mix; each is done in order. The answer is JSON saying what each
/// removed: `{"urls":[{"url":"…","deleted":true}],"prefixes":[{"prefix":"…","deleted":3}],"tags":["articles"]}`.
/// A missing or wrong token is `401`, another method `405`, no parameter or a bad URL `400`,
/// and a store that fails `503` (with what was done before it).
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::{Cache, CacheLayer, store::MemoryStore};
///
/// let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
/// let token = std::env::var("PURGE_TOKEN").unwrap_or_else(|_| "change me".to_owned());
/// let app: Router = Router::new()
///     .route("/articles/{id}", get(|| async { "an article" }))
///     .layer(layer.clone())
///     .route_service("/cache/purge", layer.purge_service(token));
/// // curl -X POST -H "Authorization: Bearer $PURGE_TOKEN" \
/// //   "http://localhost:3000/cache/purge?url=http://localhost:3000/articles/7"
/// ```
#[derive(Clone, Debug)]
pub struct PurgeService {
    layer: CacheLayer,
    /// `None` for an empty token, which admits nobody.
    token: Option<Arc<Token>>,
}

impl CacheLayer {
    /// A service that purges this cache's pages and tags from outside the process, for requests
    /// that carry `Authorization: Bearer <token>`; see [`PurgeService`]. Use a long random
    /// token; an empty one admits nobody.
    pub fn purge_service(&self, token: impl AsRef<[u8]>) -> PurgeService {
        let token = token.as_ref();
        PurgeService {
            layer: self.clone(),
            token: (!token.is_empty()).then(|| Arc::new(Token::new(token))),
        }
    }
}

/// What a purge request asks for, in order.
enum Target {
    Url(String),
    Prefix(String),
    Tag(String),
}

/// What a purge request did, written as JSON.
#[derive(Default)]
struct Report {
    urls: Vec<(String, bool)>,
    prefixes: Vec<(String, u64)>,
    tags: Vec<String>,
    error: Option<String>,
}

impl Report {
    fn json(&self) -> String {
        let mut out = String::from("{\"urls\":[");
        for (i, (url, deleted)) in self.urls.iter().enumerate() {
            comma(&mut out, i);
            out.push_str("{\"url\":");
            push_json_string(&mut out, url);
            let _ = write!(out, ",\"deleted\":{deleted}}}");
        }
        out.push_str("],\"prefixes\":[");
        for (i, (prefix, deleted)) in self.prefixes.iter().enumerate() {
            comma(&mut out, i);
            out.push_str("{\"prefix\":");
            push_json_string(&mut out, prefix);
            let _ = write!(out, ",\"deleted\":{deleted}}}");
        }
        out.push_str("],\"tags\":[");
        for (i, tag) in self.tags.iter().enumerate() {
            comma(&mut out, i);
            push_json_string(&mut out, tag);
        }
        out.push(']');
        if let Some(error) = &self.error {
            out.push_str(",\"error\":");
            push_json_string(&mut out, error);
        }
        out.push('}');
        out
    }
}

fn comma(out: &mut String, index: usize) {
    if index > 0 {
        out.push(',');
    }
}

/// Appends `text` as a JSON string.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON answer; a `401` also says which scheme it wants.
fn answer(status: StatusCode, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// What a request without a valid token is told.
const UNAUTHORIZED: &str = "a valid bearer token is needed";

fn refusal(status: StatusCode, error: &str) -> Response<String> {
    let report = Report {
        error: Some(error.to_owned()),
        ..Report::default()
    };
    answer(status, report.json())
}

/// The targets of a purge request's query, or why it has none.
fn targets(query: Option<&str>) -> Result<Vec<Target>, &'static str> {
    let targets: Vec<Target> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter_map(|(name, value)| match name.as_ref() {
            "url" => Some(Target::Url(value.into_owned())),
            "prefix" => Some(Target::Prefix(value.into_owned())),
            "tag" => Some(Target::Tag(value.into_owned())),
            _ => None,
        })
        .collect();
    if targets.is_empty() {
        Err("nothing to purge: give url=, prefix= or tag=")
    } else {
        Ok(targets)
    }
}

impl PurgeService {
    async fn purge(self, targets: Vec<Target>) -> Response<String> {
        let mut report = Report::default();
        for target in targets {
            let done = match &target {
                Target::Url(url) => self.layer.delete_page(url).await.map(|deleted| {
                    report.urls.push((url.clone(), deleted));
                }),
                Target::Prefix(prefix) => {
                    self.layer.delete_pages_under(prefix).await.map(|deleted| {
                        report.prefixes.push((prefix.clone(), deleted));
                    })
                }
                Target::Tag(tag) => self.layer.cache().invalidate_tag(tag).await.map(|()| {
                    report.tags.push(tag.clone());
                }),
            };
            if let Err(error) = done {
                let status = match error {
                    crate::Error::Config(_) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                report.error = Some(error.to_string());
                return answer(status, report.json());
            }
        }
        answer(StatusCode::OK, report.json())
    }
}

impl<B> Service<Request<B>> for PurgeService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let refused = |status, error| -> Self::Future {
            Box::pin(std::future::ready(Ok(refusal(status, error))))
        };
        let admitted = self
            .token
            .as_ref()
            .is_some_and(|token| token.admits(request.headers()));
        if !admitted {
            return refused(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
        }
        if request.method() != Method::POST {
            return refused(StatusCode::METHOD_NOT_ALLOWED, "purge with POST");
        }
        match targets(request.uri().query()) {
            Ok(targets) => {
                let service = self.clone();
                Box::pin(async move { Ok(service.purge(targets).await) })
            }
            Err(error) => refused(StatusCode::BAD_REQUEST, error),
        }
    }
}

/// The `PURGE` method, when the layer allows it
/// ([`purge_method`](CacheLayer::purge_method)): deletes the pages of the request's own URL.
impl Config {
    pub(super) async fn purge_request<B>(
        &self,
        parts: &http::request::Parts,
    ) -> Response<CacheBody<B>> {
        let admitted = self
            .purge
            .as_ref()
            .is_some_and(|token| token.admits(&parts.headers));
        let response = if !admitted {
            refusal(StatusCode::UNAUTHORIZED, UNAUTHORIZED)
        } else {
            match Url::of_request(parts, &self.ignored_params, &self.scheme) {
                Ok(url) => {
                    let mut report = Report::default();
                    let status = match self.delete_pages(&url).await {
                        Ok(deleted) => {
                            report.urls.push((parts.uri.to_string(), deleted));
                            StatusCode::OK
                        }
                        Err((key, error)) => {
                            let path = parts.uri.path();
                            self.cache
                                .note_store_error_at("delete", Some(path), &key, &error);
                            report.error = Some(crate::Error::Store(error).to_string());
                            StatusCode::SERVICE_UNAVAILABLE
                        }
                    };
                    answer(status, report.json())
                }
                Err(_) => refusal(StatusCode::BAD_REQUEST, "the request's host is not usable"),
            }
        };
        response.map(|body| CacheBody::cached(Some(body.into())))
    }
}
