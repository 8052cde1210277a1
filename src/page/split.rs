//! The two halves of the response cache, for Django's middleware order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::key::class_of;
use super::serve::{CacheService, Handoff, Part};
use super::{Bypass, CacheBody, Config, Verdict};

/// The request half of a split response cache (Django's `FetchFromCacheMiddleware`): answers
/// hits, and on a miss tells the [`UpdateCacheLayer`] outside it how to store the response.
///
/// Place it **innermost**, right around the router, so that it sees the request as the handler
/// will (after middleware that changes it). Both halves come from [`CacheLayer::split`], which
/// gives them the layer's settings and one shared state (flights, counters).
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
/// nothing. Made, with its fetch half, by [`CacheLayer::split`].
///
/// [`CacheLayer::split`]: crate::CacheLayer::split
#[derive(Clone)]
#[must_use]
pub struct UpdateCacheLayer {
    config: Arc<Config>,
}

impl FetchFromCacheLayer {
    pub(crate) fn from_config(config: Arc<Config>) -> Self {
        FetchFromCacheLayer { config }
    }
}

impl UpdateCacheLayer {
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
    type Service = FetchFromCacheService<S>;

    fn layer(&self, inner: S) -> FetchFromCacheService<S> {
        CacheService {
            inner,
            config: Arc::clone(&self.config),
            part: Part::Fetch,
        }
    }
}

impl<S> Layer<S> for UpdateCacheLayer {
    type Service = UpdateCacheService<S>;

    fn layer(&self, inner: S) -> UpdateCacheService<S> {
        UpdateCacheService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`FetchFromCacheLayer`]: the response cache's service in its fetch part,
/// which answers hits and hands the verdict on a miss to the [`UpdateCacheLayer`] outside it.
pub type FetchFromCacheService<S> = CacheService<S>;

/// The service of [`UpdateCacheLayer`].
#[derive(Clone)]
pub struct UpdateCacheService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for UpdateCacheService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateCacheService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for UpdateCacheService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
    ResBody::Data: Buf,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = UpdateCacheFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let verdict = if class_of(request.method()).is_some() {
            let handoff = Handoff::default();
            request.extensions_mut().insert(handoff.clone());
            Source::Handoff(handoff)
        } else {
            Source::Known(Some(Verdict::Bypass(Bypass::Method)))
        };
        UpdateCacheFuture {
            future: self.inner.call(request),
            verdict,
            config: Arc::clone(&self.config),
        }
    }
}

/// Where the update half gets the verdict on a request from.
enum Source {
    /// The fetch half hands it over on a miss.
    Handoff(Handoff),
    /// Known without the fetch half (a method the cache never looks up).
    Known(Option<Verdict>),
}

pin_project! {
    /// The response future of [`UpdateCacheService`].
    pub struct UpdateCacheFuture<F> {
        #[pin]
        future: F,
        verdict: Source,
        config: Arc<Config>,
    }
}

impl<F, B, E> Future for UpdateCacheFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<CacheBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        // No verdict means the fetch half answered (a hit) or did not run: pass through.
        let verdict = match this.verdict {
            Source::Handoff(handoff) => handoff.take(),
            Source::Known(verdict) => verdict.take(),
        };
        Poll::Ready(match result {
            Ok(response) => Ok(this.config.apply(verdict, response)),
            Err(error) => this.config.recover(verdict).ok_or(error),
        })
    }
}

impl<F> fmt::Debug for UpdateCacheFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateCacheFuture").finish_non_exhaustive()
    }
}
