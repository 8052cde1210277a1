//! The header layers: Django's `@cache_control`, `@never_cache`, `@vary_on_headers` and
//! `@vary_on_cookie` as Tower layers. Each patches the headers of every response of the service
//! it wraps, whatever the status, and leaves the body alone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{CacheControl, add_never_cache_headers, patch_cache_control, patch_vary_headers};

type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What a header layer does to each response.
#[derive(Clone)]
enum Patch {
    CacheControl(Arc<CacheControl>),
    NeverCache(ClockFn),
    Vary(Arc<[String]>),
}

impl Patch {
    fn apply(&self, headers: &mut HeaderMap) {
        match self {
            Patch::CacheControl(directives) => patch_cache_control(headers, directives),
            Patch::NeverCache(clock) => add_never_cache_headers(headers, clock()),
            Patch::Vary(names) => patch_vary_headers(headers, names.iter()),
        }
    }
}

impl fmt::Debug for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Patch::CacheControl(directives) => {
                f.debug_tuple("CacheControl").field(directives).finish()
            }
            Patch::NeverCache(_) => f.debug_tuple("NeverCache").finish_non_exhaustive(),
            Patch::Vary(names) => f.debug_tuple("Vary").field(names).finish(),
        }
    }
}

/// Merges `directives` into the `Cache-Control` header of every response: Django's
/// `@cache_control(**kwargs)`.
///
/// The merge is [`patch_cache_control`]'s: the smaller `max-age` wins, `public` and `private`
/// replace each other, `no-cache` and `private` field names accumulate, and any other directive
/// the handler set is replaced in place. With no directives the header is still written, empty,
/// as Django does.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::{cache_control, headers::CacheControl};
/// use std::time::Duration;
///
/// let app: Router = Router::new().route(
///     "/prices",
///     get(|| async { "prices" }).layer(cache_control(
///         CacheControl::new().with_public().with_max_age(Duration::from_secs(60)),
///     )),
/// );
/// ```
pub fn cache_control(directives: CacheControl) -> CacheControlLayer {
    CacheControlLayer {
        directives: Arc::new(directives),
    }
}

/// Marks every response as never to be cached: Django's `@never_cache`.
///
/// Each response gets `Expires` set to now (unless it has one) and
/// `Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private`, merged into what
/// the handler set (a `public` is removed) by [`add_never_cache_headers`].
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::never_cache;
///
/// let app: Router = Router::new().route("/me", get(|| async { "me" }).layer(never_cache()));
/// ```
pub fn never_cache() -> NeverCacheLayer {
    NeverCacheLayer {
        clock: Arc::new(SystemTime::now),
    }
}

/// Adds header names to the `Vary` header of every response: Django's `@vary_on_headers`.
///
/// Names are added with [`patch_vary_headers`], after the handler's own: each once (compared
/// case-insensitively), keeping the spelling given, and `*` wins over everything. Surrounding
/// whitespace is trimmed.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::vary_on_headers;
///
/// let app: Router = Router::new().route(
///     "/",
///     get(|| async { "home" }).layer(vary_on_headers(["Accept-Language", "X-Tenant"])),
/// );
/// ```
///
/// # Panics
///
/// When a name is neither a header name nor `*` (a typo such as `"Accept Language"`), so that
/// the mistake shows when the application starts rather than as responses that no cache can
/// tell apart. For names read from configuration, use [`VaryLayer::try_new`], which returns the
/// mistake as an error instead.
#[allow(
    clippy::panic,
    reason = "a misspelt header name in code is a programming error, best caught at startup"
)]
pub fn vary_on_headers<I, N>(names: I) -> VaryLayer
where
    I: IntoIterator<Item = N>,
    N: AsRef<str>,
{
    match VaryLayer::try_new(names) {
        Ok(layer) => layer,
        Err(error) => panic!("vary_on_headers: {error}"),
    }
}

/// Adds `Cookie` to the `Vary` header of every response: Django's `@vary_on_cookie`, for pages
/// that depend on who is asking.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum_cache::vary_on_cookie;
///
/// let app: Router = Router::new().route("/dashboard", get(|| async { "yours" }).layer(vary_on_cookie()));
/// ```
pub fn vary_on_cookie() -> VaryLayer {
    vary_on_headers(["Cookie"])
}

/// The layer of [`cache_control`]: merges `Cache-Control` directives into every response.
///
/// Place it inside a [`CacheLayer`](crate::CacheLayer), so that the cache stores what the
/// directives allow; see the [ordering](crate::docs::headers#ordering).
#[derive(Clone, Debug)]
#[must_use]
pub struct CacheControlLayer {
    directives: Arc<CacheControl>,
}

impl CacheControlLayer {
    fn patch(&self) -> Patch {
        Patch::CacheControl(Arc::clone(&self.directives))
    }
}

/// The layer of [`never_cache`]: marks every response as never to be cached.
///
/// Place it inside a [`CacheLayer`](crate::CacheLayer), so that the cache does not store the
/// response either; see the [ordering](crate::docs::headers#ordering).
#[derive(Clone)]
#[must_use]
pub struct NeverCacheLayer {
    clock: ClockFn,
}

impl NeverCacheLayer {
    /// The wall clock that dates `Expires` (default [`SystemTime::now`]). Tests use it to get
    /// reproducible headers.
    ///
    /// ```
    /// use axum_cache::never_cache;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let layer = never_cache().clock(|| UNIX_EPOCH + Duration::from_secs(1_167_616_461));
    /// ```
    pub fn clock<F>(mut self, clock: F) -> Self
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        self.clock = Arc::new(clock);
        self
    }

    fn patch(&self) -> Patch {
        Patch::NeverCache(Arc::clone(&self.clock))
    }
}

impl fmt::Debug for NeverCacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NeverCacheLayer").finish_non_exhaustive()
    }
}

/// The layer of [`vary_on_headers`] and [`vary_on_cookie`]: adds names to `Vary` on every
/// response.
///
/// Place it inside a [`CacheLayer`](crate::CacheLayer), so that the cache keeps one entry per
/// combination of those request headers; see the [ordering](crate::docs::headers#ordering).
#[derive(Clone, Debug)]
#[must_use]
pub struct VaryLayer {
    names: Arc<[String]>,
}

impl VaryLayer {
    /// The layer of [`vary_on_headers`], for names that come from configuration: refuses the
    /// first name that is neither a header name nor `*` instead of panicking. Names are trimmed
    /// of surrounding whitespace.
    ///
    /// ```
    /// use axum_cache::VaryLayer;
    ///
    /// assert!(VaryLayer::try_new(["Accept-Language", "X-Tenant"]).is_ok());
    /// let error = VaryLayer::try_new(["Cookie", "Accept Language"]).unwrap_err();
    /// assert_eq!(error.name(), "Accept Language");
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidVaryName`] naming the first name that is neither a header name nor `*`.
    pub fn try_new<I, N>(names: I) -> Result<VaryLayer, InvalidVaryName>
    where
        I: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let names = names
            .into_iter()
            .map(|name| {
                let name = name.as_ref().trim_ascii();
                if name == "*" || HeaderName::from_bytes(name.as_bytes()).is_ok() {
                    Ok(name.to_owned())
                } else {
                    Err(InvalidVaryName {
                        name: name.to_owned(),
                    })
                }
            })
            .collect::<Result<Vec<String>, InvalidVaryName>>()?;
        Ok(VaryLayer {
            names: names.into(),
        })
    }

    fn patch(&self) -> Patch {
        Patch::Vary(Arc::clone(&self.names))
    }
}

/// A name given to [`VaryLayer::try_new`] that is neither a header name nor `*`, so it cannot
/// be listed in `Vary`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a header name (nor `*`), so it cannot be listed in Vary")]
pub struct InvalidVaryName {
    name: String,
}

impl InvalidVaryName {
    /// The refused name, trimmed of surrounding whitespace.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Defines the service of a header layer, which patches the headers of the inner service's
/// responses with the layer's [`Patch`]. The three services differ only in their patch, and are
/// separate types so that each layer has its own documented service, as tower-http does.
macro_rules! header_service {
    ($(#[$doc:meta])* $name:ident for $layer:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name<S> {
            inner: S,
            patch: Patch,
        }

        impl<S> Layer<S> for $layer {
            type Service = $name<S>;

            fn layer(&self, inner: S) -> $name<S> {
                $name {
                    inner,
                    patch: self.patch(),
                }
            }
        }

        impl<S> fmt::Debug for $name<S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("patch", &self.patch)
                    .finish_non_exhaustive()
            }
        }

        impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for $name<S>
        where
            S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        {
            type Response = Response<ResBody>;
            type Error = S::Error;
            type Future = HeaderFuture<S::Future>;

            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
                HeaderFuture {
                    inner: self.inner.call(request),
                    patch: self.patch.clone(),
                }
            }
        }
    };
}

header_service! {
    /// The service of [`CacheControlLayer`].
    CacheControlService for CacheControlLayer
}

header_service! {
    /// The service of [`NeverCacheLayer`].
    NeverCacheService for NeverCacheLayer
}

header_service! {
    /// The service of [`VaryLayer`].
    VaryService for VaryLayer
}

pin_project! {
    /// The response future of [`CacheControlService`], [`NeverCacheService`] and
    /// [`VaryService`]: the inner service's response with its headers patched.
    pub struct HeaderFuture<F> {
        #[pin]
        inner: F,
        patch: Patch,
    }
}

impl<F, B, E> Future for HeaderFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        this.patch.apply(response.headers_mut());
        Poll::Ready(Ok(response))
    }
}

impl<F> fmt::Debug for HeaderFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderFuture")
            .field("patch", &self.patch)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(layer: &VaryLayer) -> Vec<&str> {
        layer.names.iter().map(String::as_str).collect()
    }

    #[test]
    fn vary_names_are_trimmed_and_kept_as_spelled() {
        assert_eq!(
            names(&vary_on_headers([" Accept-Language ", "X-Tenant"])),
            ["Accept-Language", "X-Tenant"]
        );
        assert_eq!(names(&vary_on_cookie()), ["Cookie"]);
        assert_eq!(names(&vary_on_headers(["*"])), ["*"]);
    }

    #[test]
    fn an_invalid_vary_name_is_refused() {
        for bad in ["Accept Language", "", " ", "é", "a\nb"] {
            let error = VaryLayer::try_new(["Cookie", bad]).unwrap_err();
            assert_eq!(error.name(), bad.trim_ascii(), "{bad:?}");
        }
    }

    #[test]
    #[should_panic(expected = "vary_on_headers: \"a\\nb\" is not a header name")]
    fn vary_on_headers_panics_on_an_invalid_name() {
        let _ = vary_on_headers(["Cookie", "a\nb"]);
    }
}
