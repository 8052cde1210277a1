//! `ConditionalGetLayer`: Django's `ConditionalGetMiddleware` as a Tower layer.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::header::{
    ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
};
use http::response::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use sha2::{Digest, Sha256};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    ConditionalBody, EntityTag, Precondition, evaluate_preconditions, not_modified_headers,
    parse_http_date,
};
use crate::headers::CacheControl;
use crate::util::{poll_bytes, push_hex};

/// Default [`max_body_size`](ConditionalGetLayer::max_body_size): 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1 << 20;

/// Gives responses an entity tag computed from their body and answers conditional `GET` and
/// `HEAD` requests with `304 Not Modified`: Django's `ConditionalGetMiddleware`, also for
/// `HEAD`.
///
/// For a `GET` or `HEAD` request whose response is successful (2xx):
///
/// 1. If the response has no `ETag`, its body is complete (its size is known exactly, at most
///    [`max_body_size`](Self::max_body_size)) and not empty, and its `Cache-Control` has no
///    `no-store`, the body is read and the response gets a strong `ETag`: the SHA-256 of the
///    body, in hex. Streaming bodies, bodies of unknown or larger size, and `206 Partial Content`
///    are passed through without one.
/// 2. If the response has an `ETag` (its own or the computed one) or a `Last-Modified`, the
///    request's preconditions are evaluated with [`evaluate_preconditions`]: a match gives a
///    `304` with the headers of [`not_modified_headers`], a failed `If-Match` or
///    `If-Unmodified-Since` a `412`.
///
/// Other methods and non-2xx responses pass through untouched: it is too late to refuse an
/// unsafe request once the handler has run (use [`condition`](super::condition) for that).
///
/// `HEAD` gets the tag the `GET` would and its `304`, unlike in Django: behind axum's routing
/// (on `Router::layer`, `Router::route_layer` or `MethodRouter::layer`) the layer sees the body
/// the handler produced, and axum drops it afterwards. Around a service that already answers
/// `HEAD` with an empty body there is nothing to hash, and `HEAD` gets no computed tag.
///
/// The inner service still runs for every request: this layer saves the transfer, not the work.
/// To skip the handler, compute the validators up front with [`condition`](super::condition).
/// Place it outside a [`CacheLayer`](crate::CacheLayer), so that cache hits get their tag and
/// their `304` too; see the [ordering](crate::docs::headers#ordering).
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::ConditionalGetLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "home" }))
///     .layer(ConditionalGetLayer::new());
/// ```
///
/// The tag is a SHA-256 rather than Django's MD5: MD5 collisions can be manufactured, so someone
/// who controls part of a page could make two versions of it share a tag, and a client would
/// keep the wrong one. Hashing reads the whole body once, so its cost grows with the body, up to
/// the body limit.
#[derive(Clone, Debug)]
#[must_use]
pub struct ConditionalGetLayer {
    max_body_size: usize,
}

impl ConditionalGetLayer {
    /// The layer with the default body limit of 1 MiB.
    pub fn new() -> Self {
        ConditionalGetLayer {
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        }
    }

    /// The largest body read to compute an entity tag (default 1 MiB). The body is held in
    /// memory until it is complete, so this bounds the memory and the delay per response;
    /// larger bodies pass through without a computed `ETag`.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }
}

impl Default for ConditionalGetLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for ConditionalGetLayer {
    type Service = ConditionalGetService<S>;

    fn layer(&self, inner: S) -> ConditionalGetService<S> {
        ConditionalGetService {
            inner,
            max_body_size: self.max_body_size,
        }
    }
}

/// The service of [`ConditionalGetLayer`].
#[derive(Clone, Debug)]
pub struct ConditionalGetService<S> {
    inner: S,
    max_body_size: usize,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ConditionalGetService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
    ResBody::Data: Buf,
{
    type Response = Response<ConditionalBody<ResBody>>;
    type Error = S::Error;
    type Future = ConditionalGetFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let conditions = Conditions::of(&request);
        ConditionalGetFuture {
            state: State::Waiting {
                future: self.inner.call(request),
            },
            conditions,
            max_body_size: self.max_body_size,
        }
    }
}

/// What the response step needs of a `GET` or `HEAD` request.
struct Conditions {
    method: Method,
    /// The request's precondition headers only (nothing is copied when it has none).
    headers: HeaderMap,
}

impl Conditions {
    /// `None` for methods other than `GET` and `HEAD`, which pass through.
    fn of<B>(request: &Request<B>) -> Option<Conditions> {
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let mut headers = HeaderMap::new();
        for name in [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
        ] {
            for value in request.headers().get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
        Some(Conditions {
            method: method.clone(),
            headers,
        })
    }

    /// Answers with `304` or `412` instead of `parts` and `body` when the preconditions say so.
    fn conclude<B: Body>(
        &self,
        mut parts: Parts,
        body: ConditionalBody<B>,
    ) -> Response<ConditionalBody<B>> {
        if self.headers.is_empty() {
            return Response::from_parts(parts, body);
        }
        let etag = parts
            .headers
            .get(ETAG)
            .and_then(|value| value.to_str().ok())
            .and_then(EntityTag::parse);
        let last_modified = parts
            .headers
            .get(LAST_MODIFIED)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_http_date);
        if etag.is_none() && last_modified.is_none() {
            return Response::from_parts(parts, body);
        }
        match evaluate_preconditions(&self.method, &self.headers, etag.as_ref(), last_modified) {
            Precondition::Proceed => return Response::from_parts(parts, body),
            Precondition::NotModified => {
                parts.status = StatusCode::NOT_MODIFIED;
                parts.headers = not_modified_headers(&parts.headers);
            }
            Precondition::PreconditionFailed => {
                parts.status = StatusCode::PRECONDITION_FAILED;
                parts.headers = HeaderMap::new();
            }
        }
        Response::from_parts(parts, ConditionalBody::empty())
    }
}

/// Whether the layer computes an entity tag for this response: a successful, complete
/// response that is not a part, has no tag, may be stored, and has a body of known size within
/// the limit.
fn wants_etag<B: Body>(parts: &Parts, body: &B, max_body_size: usize) -> bool {
    let size = body.size_hint().exact();
    parts.status != StatusCode::PARTIAL_CONTENT
        && !parts.headers.contains_key(ETAG)
        && size.is_some_and(|size| size > 0 && size <= max_body_size as u64)
        && !CacheControl::from_headers(&parts.headers).is_no_store()
}

/// A body being read to compute its entity tag.
struct Reading<B> {
    conditions: Conditions,
    parts: Parts,
    body: Pin<Box<B>>,
    frames: VecDeque<Frame<Bytes>>,
    hasher: Sha256,
    len: usize,
}

/// How reading a body ended.
enum Read<E> {
    /// The whole body is in the frames.
    Complete,
    /// It turned out larger than the limit; the frames hold its start.
    TooLarge,
    /// It failed; the frames hold what came before.
    Failed(E),
}

impl<B> Reading<B>
where
    B: Body,
    B::Data: Buf,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, max_body_size: usize) -> Poll<Read<B::Error>> {
        loop {
            let frame = match ready!(poll_bytes(self.body.as_mut(), cx)) {
                None => return Poll::Ready(Read::Complete),
                Some(Err(error)) => return Poll::Ready(Read::Failed(error)),
                Some(Ok(frame)) => frame,
            };
            if let Some(data) = frame.data_ref() {
                self.len = self.len.saturating_add(data.len());
                if self.len > max_body_size {
                    self.frames.push_back(frame);
                    return Poll::Ready(Read::TooLarge);
                }
                self.hasher.update(data);
            }
            self.frames.push_back(frame);
            if self.body.is_end_stream() {
                return Poll::Ready(Read::Complete);
            }
        }
    }

    /// The response for a body read to its end or given up on.
    fn finish(self, read: Read<B::Error>) -> Response<ConditionalBody<B>> {
        let Reading {
            conditions,
            mut parts,
            body,
            frames,
            hasher,
            ..
        } = self;
        match read {
            Read::Complete => {
                let digest = hasher.finalize();
                let mut hex = String::with_capacity(2 * digest.len());
                push_hex(&mut hex, &digest);
                parts
                    .headers
                    .insert(ETAG, EntityTag::quote(&hex).to_header_value());
                conditions.conclude(parts, ConditionalBody::read_ahead(frames, None, None))
            }
            Read::TooLarge => {
                conditions.conclude(parts, ConditionalBody::read_ahead(frames, None, Some(body)))
            }
            // The client gets what the handler produced, failure included; a 304 would hide it.
            Read::Failed(error) => Response::from_parts(
                parts,
                ConditionalBody::read_ahead(frames, Some(error), None),
            ),
        }
    }
}

pin_project! {
    /// The response future of [`ConditionalGetService`].
    pub struct ConditionalGetFuture<F, B> {
        #[pin]
        state: State<F, B>,
        conditions: Option<Conditions>,
        max_body_size: usize,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // The inner service answers.
        Waiting {
            #[pin]
            future: F,
        },
        // Its body is read to compute the entity tag.
        Reading {
            reading: Option<Reading<B>>,
        },
        Done,
    }
}

impl<F, B, E> Future for ConditionalGetFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    B::Data: Buf,
{
    type Output = Result<Response<ConditionalBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Waiting { future } => {
                    let result = ready!(future.poll(cx));
                    let conditions = this.conditions.take();
                    this.state.set(State::Done);
                    let (response, conditions) = match (result, conditions) {
                        (Ok(response), Some(conditions)) if response.status().is_success() => {
                            (response, conditions)
                        }
                        (result, _) => {
                            return Poll::Ready(
                                result.map(|response| response.map(ConditionalBody::passthrough)),
                            );
                        }
                    };
                    let (parts, body) = response.into_parts();
                    if !wants_etag(&parts, &body, *this.max_body_size) {
                        let body = ConditionalBody::passthrough(body);
                        return Poll::Ready(Ok(conditions.conclude(parts, body)));
                    }
                    this.state.set(State::Reading {
                        reading: Some(Reading {
                            conditions,
                            parts,
                            body: Box::pin(body),
                            frames: VecDeque::new(),
                            hasher: Sha256::new(),
                            len: 0,
                        }),
                    });
                }
                StateProj::Reading { reading } => {
                    let Some(active) = reading.as_mut() else {
                        return Poll::Pending;
                    };
                    let read = ready!(active.poll_read(cx, *this.max_body_size));
                    let response = reading.take().map(|reading| reading.finish(read));
                    this.state.set(State::Done);
                    return response.map_or(Poll::Pending, |response| Poll::Ready(Ok(response)));
                }
                // Polled after completion, a contract violation by the caller: stay pending
                // rather than panic.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<F, B> fmt::Debug for ConditionalGetFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionalGetFuture")
            .finish_non_exhaustive()
    }
}
