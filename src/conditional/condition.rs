//! `condition()`: Django's `@condition(etag_func, last_modified_func)` as a Tower layer.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use http::header::{ETAG, LAST_MODIFIED};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{ConditionalBody, EntityTag, Precondition, evaluate_preconditions, fmt_http_date};
use crate::headers::header_value;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A validator function: the request head to a future of the validator's current value.
type ValidatorFn<T> = Arc<dyn Fn(&Parts) -> BoxFuture<Option<T>> + Send + Sync>;

/// Answers conditional requests from validators computed before the handler runs: Django's
/// `@condition(etag_func=…, last_modified_func=…)`. Build it with [`condition`].
///
/// For each request the layer calls the functions given to [`etag`](Self::etag) and
/// [`last_modified`](Self::last_modified) (concurrently), then evaluates the request's
/// `If-Match`, `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` against the
/// results with [`evaluate_preconditions`]:
///
/// - `304 Not Modified` or `412 Precondition Failed`: answered at once, **without calling the
///   inner service**, with an empty body;
/// - otherwise the inner service answers.
///
/// On `GET` and `HEAD` the computed `ETag` and `Last-Modified` are added to the response (the
/// 304 and 412 included) unless the handler set its own. Other methods never get them: after a
/// `PUT` the validators computed before it are out of date.
///
/// Place it outside a [`CacheLayer`](crate::CacheLayer): a client with a current copy is then
/// answered before the cache is asked; see the [ordering](crate::docs::headers#ordering).
///
/// ```
/// use axum::{Router, extract::State, routing::get};
/// use axum_cache::condition;
/// use std::{sync::Arc, time::SystemTime};
///
/// #[derive(Clone)]
/// struct Db;
/// impl Db {
///     async fn article_version(&self, path: &str) -> Option<u64> { Some(7) }
///     async fn article_updated(&self, path: &str) -> Option<SystemTime> { Some(SystemTime::UNIX_EPOCH) }
/// }
///
/// let db = Db;
/// let (etag_db, updated_db) = (db.clone(), db.clone());
/// let app: Router = Router::new()
///     .route("/articles/{id}", get(|| async { "the article" }))
///     .route_layer(
///         condition()
///             .etag(move |request| {
///                 // Clone what the lookup needs: the future must not borrow the request.
///                 let (db, path) = (etag_db.clone(), request.uri.path().to_owned());
///                 async move { db.article_version(&path).await.map(|v| format!("v{v}")) }
///             })
///             .last_modified(move |request| {
///                 let (db, path) = (updated_db.clone(), request.uri.path().to_owned());
///                 async move { db.article_updated(&path).await }
///             }),
///     );
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct ConditionLayer {
    etag: Option<ValidatorFn<EntityTag>>,
    last_modified: Option<ValidatorFn<SystemTime>>,
}

/// A [`ConditionLayer`] without validators; add them with [`etag`](ConditionLayer::etag) and
/// [`last_modified`](ConditionLayer::last_modified). Django's `@condition`.
pub fn condition() -> ConditionLayer {
    ConditionLayer::default()
}

impl ConditionLayer {
    /// Computes the current entity tag of the requested resource, from the request head; `None`
    /// when the resource has none (it does not exist, for example).
    ///
    /// The string goes through [`EntityTag::quote`], as Django's `quote_etag`: a value that is
    /// already a quoted tag (`"v7"` or `W/"v7"`) is kept, anything else becomes a strong tag.
    /// The function gets the request head by reference and returns a `Send + 'static` future, so
    /// copy what it needs (the path, an id, a clone of your state) before the `async` block.
    pub fn etag<F, Fut>(mut self, etag: F) -> Self
    where
        F: Fn(&Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.etag = Some(Arc::new(move |request: &Parts| -> BoxFuture<_> {
            let etag = etag(request);
            Box::pin(async move { etag.await.map(|tag| EntityTag::quote(&tag)) })
        }));
        self
    }

    /// Computes when the requested resource last changed, from the request head; `None` when
    /// unknown. HTTP dates have whole seconds: the fraction is dropped. Called like
    /// [`etag`](Self::etag).
    pub fn last_modified<F, Fut>(mut self, last_modified: F) -> Self
    where
        F: Fn(&Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<SystemTime>> + Send + 'static,
    {
        self.last_modified = Some(Arc::new(move |request: &Parts| -> BoxFuture<_> {
            Box::pin(last_modified(request))
        }));
        self
    }
}

impl fmt::Debug for ConditionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionLayer")
            .field("etag", &self.etag.is_some())
            .field("last_modified", &self.last_modified.is_some())
            .finish()
    }
}

impl<S> Layer<S> for ConditionLayer {
    type Service = ConditionService<S>;

    fn layer(&self, inner: S) -> ConditionService<S> {
        ConditionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`ConditionLayer`].
#[derive(Clone)]
pub struct ConditionService<S> {
    inner: S,
    layer: ConditionLayer,
}

impl<S> fmt::Debug for ConditionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ConditionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Body,
{
    type Response = Response<ConditionalBody<ResBody>>;
    type Error = S::Error;
    type Future = ConditionFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if self.layer.etag.is_none() && self.layer.last_modified.is_none() {
            return ConditionFuture {
                state: State::Calling {
                    future: self.inner.call(request),
                    validators: Validators::default(),
                },
            };
        }
        let (parts, body) = request.into_parts();
        let etag = Slot::start(self.layer.etag.as_ref(), &parts);
        let last_modified = Slot::start(self.layer.last_modified.as_ref(), &parts);
        // The service driven to readiness is the one that will be called, after the validators
        // are known; its clone takes its place for the next request.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        ConditionFuture {
            state: State::Validating {
                etag,
                last_modified,
                call: Some((inner, Request::from_parts(parts, body))),
            },
        }
    }
}

/// One validator: its computation, then its value.
enum Slot<T> {
    Pending(BoxFuture<Option<T>>),
    Ready(Option<T>),
}

impl<T> Slot<T> {
    fn start(compute: Option<&ValidatorFn<T>>, request: &Parts) -> Slot<T> {
        compute.map_or(Slot::Ready(None), |compute| Slot::Pending(compute(request)))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Slot::Pending(future) = self {
            *self = Slot::Ready(ready!(future.as_mut().poll(cx)));
        }
        Poll::Ready(())
    }

    fn take(&mut self) -> Option<T> {
        match mem::replace(self, Slot::Ready(None)) {
            Slot::Ready(value) => value,
            Slot::Pending(_) => None,
        }
    }
}

/// The validators to add to the response: computed ones for `GET` and `HEAD`, none otherwise.
#[derive(Default)]
struct Validators {
    etag: Option<EntityTag>,
    last_modified: Option<SystemTime>,
}

impl Validators {
    /// Adds the validators the headers do not have yet.
    fn add_to(self, headers: &mut HeaderMap) {
        if let Some(last_modified) = self.last_modified {
            headers
                .entry(LAST_MODIFIED)
                .or_insert_with(|| header_value(fmt_http_date(last_modified).into_bytes()));
        }
        if let Some(etag) = self.etag {
            headers
                .entry(ETAG)
                .or_insert_with(|| etag.to_header_value());
        }
    }

    /// An empty answer with `status`, carrying the validators.
    fn respond<B: Body>(self, status: StatusCode) -> Response<ConditionalBody<B>> {
        let mut response = Response::new(ConditionalBody::empty());
        *response.status_mut() = status;
        self.add_to(response.headers_mut());
        response
    }
}

pin_project! {
    /// The response future of [`ConditionService`].
    pub struct ConditionFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        // Computing the validators; the ready inner service and the request wait.
        Validating {
            etag: Slot<EntityTag>,
            last_modified: Slot<SystemTime>,
            call: Option<(S, Request<ReqBody>)>,
        },
        // The inner service answers.
        Calling {
            #[pin]
            future: S::Future,
            validators: Validators,
        },
        Done,
    }
}

impl<S, ReqBody, ResBody> Future for ConditionFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Output = Result<Response<ConditionalBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Validating {
                    etag,
                    last_modified,
                    call,
                } => {
                    // Poll both, so that the two lookups run concurrently.
                    let etag_ready = etag.poll(cx).is_ready();
                    if !(last_modified.poll(cx).is_ready() && etag_ready) {
                        return Poll::Pending;
                    }
                    // Taken only here, and the state moves on right after.
                    let Some((mut inner, request)) = call.take() else {
                        return Poll::Pending;
                    };
                    let etag = etag.take();
                    let last_modified = last_modified.take();
                    let method = request.method();
                    let precondition = evaluate_preconditions(
                        method,
                        request.headers(),
                        etag.as_ref(),
                        last_modified,
                    );
                    let validators = if method == Method::GET || method == Method::HEAD {
                        Validators {
                            etag,
                            last_modified,
                        }
                    } else {
                        Validators::default()
                    };
                    let status = match precondition {
                        Precondition::Proceed => {
                            let future = inner.call(request);
                            state.set(State::Calling { future, validators });
                            continue;
                        }
                        Precondition::NotModified => StatusCode::NOT_MODIFIED,
                        Precondition::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
                    };
                    state.set(State::Done);
                    return Poll::Ready(Ok(validators.respond(status)));
                }
                StateProj::Calling { future, validators } => {
                    let result = ready!(future.poll(cx));
                    let validators = mem::take(validators);
                    state.set(State::Done);
                    return Poll::Ready(result.map(|response| {
                        let (mut parts, body) = response.into_parts();
                        validators.add_to(&mut parts.headers);
                        Response::from_parts(parts, ConditionalBody::passthrough(body))
                    }));
                }
                // Polled after completion, a contract violation by the caller: stay pending
                // rather than panic.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<S, ReqBody> fmt::Debug for ConditionFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionFuture").finish_non_exhaustive()
    }
}
