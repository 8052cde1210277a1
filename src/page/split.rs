//! The two halves of the response cache, for Django's middleware order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::key::class_of;
use super::serve::{ResponseFuture, call_cached};
use super::{Bypass, CacheBody, Config, Then};
use crate::Cache;

/// The request half of a split response cache (Django's `FetchFromCacheMiddleware`): answers
/// hits, and on a miss tells the [`UpdateCacheLayer`] outside it how to store the response.
///
/// Place it **innermost**, right around the router, so that it sees the request as the handler
/// will (after middleware that changes it). Build both halves with [`CacheLayer::split`] so that
/// they share settings; `FetchFromCacheLayer::new` uses the defaults.
///
/// [`CacheLayer::split`]: crate::CacheLayer::split
#[derive(Clone)]
#[must_use]
pub struct FetchFromCacheLayer {
    config: Arc<Config>,
}

/// The response half of a split response cache (Django's `UpdateCacheMiddleware`): stores the
/// responses its [`FetchFromCacheLayer`] could not answer.
///
/// Place it **outermost**, so that it sees the final response, with the `Vary` headers and
/// cookies that middleware between the halves added. Without a fetch layer inside it stores
/// nothing.
#[derive(Clone)]
#[must_use]
pub struct UpdateCacheLayer {
    config: Arc<Config>,
}

impl FetchFromCacheLayer {
    /// The fetch half with default settings.
    pub fn new(cache: Cache) -> Self {
        Self::from_config(Arc::new(Config::new(cache)))
    }

    pub(crate) fn from_config(config: Arc<Config>) -> Self {
        FetchFromCacheLayer { config }
    }
}

impl UpdateCacheLayer {
    /// The update half with default settings.
    pub fn new(cache: Cache) -> Self {
        Self::from_config(Arc::new(Config::new(cache)))
    }

    pub(crate) fn from_config(config: Arc<Config>) -> Self {
        UpdateCacheLayer { config }
    }
}

impl fmt::Debug for FetchFromCacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchFromCacheLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl fmt::Debug for UpdateCacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateCacheLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<S> Layer<S> for FetchFromCacheLayer {
    type Service = FetchFromCache<S>;

    fn layer(&self, inner: S) -> FetchFromCache<S> {
        FetchFromCache {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl<S> Layer<S> for UpdateCacheLayer {
    type Service = UpdateCache<S>;

    fn layer(&self, inner: S) -> UpdateCache<S> {
        UpdateCache {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`FetchFromCacheLayer`].
#[derive(Clone)]
pub struct FetchFromCache<S> {
    inner: S,
    config: Arc<Config>,
}

/// The service of [`UpdateCacheLayer`].
#[derive(Clone)]
pub struct UpdateCache<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for FetchFromCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchFromCache").finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for UpdateCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateCache").finish_non_exhaustive()
    }
}

/// Carries the fetch half's verdict on a miss to the update half, in the request's extensions.
#[derive(Clone, Default)]
struct Handoff(Arc<Mutex<Option<Then>>>);

impl Handoff {
    fn put(&self, then: Then) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(then);
    }

    fn take(&self) -> Option<Then> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The fetch half's delivery: the verdict goes to the update half; the response passes
/// through.
fn hand_off(then: Then, extensions: &mut http::Extensions) -> Then {
    if let Some(handoff) = extensions.get::<Handoff>() {
        handoff.put(then);
    }
    Then::Pass
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for FetchFromCache<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Buf,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // No background refreshes here: they would skip the middleware between the halves.
        call_cached(&self.config, &mut self.inner, request, hand_off, false)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for UpdateCache<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
    ResBody::Data: Buf,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = UpdateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let verdict = if class_of(request.method()).is_some() {
            let handoff = Handoff::default();
            request.extensions_mut().insert(handoff.clone());
            Verdict::Handoff(handoff)
        } else {
            Verdict::Known(Some(Then::Bypass(Bypass::Method)))
        };
        UpdateFuture {
            future: self.inner.call(request),
            verdict,
            config: Arc::clone(&self.config),
        }
    }
}

enum Verdict {
    Handoff(Handoff),
    Known(Option<Then>),
}

pin_project! {
    /// The response future of [`UpdateCache`].
    pub struct UpdateFuture<F> {
        #[pin]
        future: F,
        verdict: Verdict,
        config: Arc<Config>,
    }
}

impl<F, B, E> Future for UpdateFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<CacheBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        // No verdict means the fetch half answered (a hit) or did not run: pass through.
        let then = match this.verdict {
            Verdict::Handoff(handoff) => handoff.take(),
            Verdict::Known(then) => then.take(),
        };
        Poll::Ready(match result {
            Ok(response) => Ok(this.config.apply(then, response)),
            Err(error) => this.config.recover(then).ok_or(error),
        })
    }
}

impl<F> fmt::Debug for UpdateFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateFuture").finish_non_exhaustive()
    }
}
