//! The per-site cache around a whole axum router, in the shape `axum::serve` takes.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::layer::CacheLayer;
use super::serve::CacheFuture;
use super::serve::CacheService;

impl CacheLayer {
    /// This cache around a whole router, ready for `axum::serve`: a hit is answered before
    /// routing, as Django's per-site middleware answers before URL resolution. Any other service
    /// that answers axum requests without errors, with `Bytes` bodies, can take the router's
    /// place (a router already wrapped in middleware, for example).
    ///
    /// [`Router::layer`](axum::Router::layer) puts a layer after routing, so every hit is routed
    /// first; around the router a hit costs about what the cheapest handler does. The layer still
    /// works on `Router::layer` (needed to cache only some routes, or to sit inside
    /// router-level middleware); see the [response caching chapter](crate::docs::page).
    ///
    /// ```no_run
    /// use axum::{Router, ServiceExt, routing::get};
    /// use axum_cache::{Cache, CacheLayer, store::MemoryStore};
    ///
    /// # async fn serve() -> std::io::Result<()> {
    /// let app = Router::new().route("/", get(|| async { "home" }));
    /// let site = CacheLayer::new(Cache::new(MemoryStore::new())).around(app);
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, site.into_make_service()).await
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn around<S>(&self, app: S) -> CachedRouter<S> {
        CachedRouter {
            inner: self.layer(app),
        }
    }
}

/// A router (or another infallible axum service) behind the per-site cache, made by
/// [`CacheLayer::around`]. Its responses have axum's own body type, as `axum::serve` requires.
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Clone)]
pub struct CachedRouter<S = Router> {
    inner: CacheService<S>,
}

impl<S> fmt::Debug for CachedRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedRouter")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S, B> Service<Request> for CachedRouter<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CachedRouterFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        CachedRouterFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`CachedRouter`].
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub struct CachedRouterFuture<F, B> {
        #[pin]
        inner: CacheFuture<F, B, Infallible>,
    }
}

impl<F, B> fmt::Debug for CachedRouterFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedRouterFuture").finish_non_exhaustive()
    }
}

impl<F, B> Future for CachedRouterFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(response.map(Body::new)))
    }
}
