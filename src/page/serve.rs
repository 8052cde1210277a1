//! Running a request through the cache: answered at once from an in-process store when
//! possible, otherwise through an async path that waits for other requests fetching the same
//! page, takes the opt-in lock shared across processes, serves stale pages and refreshes them.

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::sync::watch;
use tower_service::Service;

use super::flight::{self, Outcome, Role, Waited};
use super::key::class_of;
use super::lookup::{Hit, Lookup};
use super::stats::Event;
use super::status::Member;
use super::{Bypass, CacheBody, CacheStatus, Config, Pending, Stale, Verdict};
use crate::log::PageSpan;
use crate::stampede::{Locked, MAX_ROUNDS, lock_or_wait};

type BoxedResponse<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<CacheBody<B>>, E>> + Send + 'static>>;

pin_project! {
    /// The response future of the cache services.
    pub struct CacheFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        // Answered without waiting.
        Ready { response: Option<Response<CacheBody<B>>> },
        // The inner service answers, then `then` says what to do with its response.
        Inner {
            #[pin]
            future: F,
            verdict: Option<Verdict>,
            config: Arc<Config>,
            span: PageSpan,
        },
        // Anything that has to wait: a remote store, another request, a lock.
        Boxed { future: BoxedResponse<B, E> },
    }
}

impl<F, B, E> Future for CacheFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<CacheBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            // Polled again after completion (a contract violation by the caller): stay pending
            // rather than panic.
            StateProj::Ready { response } => response
                .take()
                .map_or(Poll::Pending, |response| Poll::Ready(Ok(response))),
            StateProj::Inner {
                future,
                verdict,
                config,
                span,
            } => {
                let result = ready!(future.poll(cx));
                Poll::Ready(span.in_scope(|| match result {
                    Ok(response) => Ok(config.apply(verdict.take(), response)),
                    Err(error) => config.recover(verdict.take()).ok_or(error),
                }))
            }
            StateProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for CacheFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheFuture").finish_non_exhaustive()
    }
}

/// Which part of a response cache a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The whole cache ([`CacheLayer`](super::CacheLayer)): it applies the verdict on a miss to
    /// the response itself, and refreshes pages in the background (stale-while-revalidate,
    /// early refresh).
    Whole,
    /// The fetch half of a split cache: it hands the verdict to the update half through the
    /// request's extensions, and never refreshes in the background, since a background fetch
    /// would skip the middleware between the halves.
    Fetch,
}

impl Part {
    /// The verdict this part's own response future applies, once `verdict` is delivered.
    fn deliver(self, verdict: Verdict, extensions: &mut http::Extensions) -> Verdict {
        match self {
            Part::Whole => verdict,
            Part::Fetch => {
                if let Some(handoff) = extensions.get::<Handoff>() {
                    handoff.put(verdict);
                }
                Verdict::Pass
            }
        }
    }

    fn refreshes(self) -> bool {
        self == Part::Whole
    }
}

/// Carries the fetch half's verdict on a miss to the update half, in the request's extensions.
#[derive(Clone, Default)]
pub(crate) struct Handoff(Arc<Mutex<Option<Verdict>>>);

impl Handoff {
    fn put(&self, verdict: Verdict) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
    }

    pub(crate) fn take(&self) -> Option<Verdict> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The service of [`CacheLayer`](super::CacheLayer) and [`cache_page`](super::cache_page), and of the fetch half of a
/// [split](super::CacheLayer::split) cache.
#[derive(Clone)]
pub struct CacheService<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
    /// Which part of the cache this service is.
    pub(super) part: Part,
}

impl<S> fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("part", &self.part)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S>
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
    type Future = CacheFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    /// Looks `request` up and answers it from the cache or through the inner service.
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (config, inner, part) = (&self.config, &mut self.inner, self.part);
        let (mut parts, body) = request.into_parts();
        let span = PageSpan::new(&parts);
        let _entered = span.enter();
        if config.purge.is_some() && parts.method.as_str() == "PURGE" {
            let config = Arc::clone(config);
            let future: BoxedResponse<ResBody, S::Error> = Box::pin(
                span.clone()
                    .instrument(async move { Ok(config.purge_request(&parts).await) }),
            );
            return CacheFuture {
                state: State::Boxed { future },
            };
        }
        let origin = |inner: &mut S, verdict: Verdict, mut parts: Parts, body: ReqBody| {
            let verdict = part.deliver(verdict, &mut parts.extensions);
            CacheFuture {
                state: State::Inner {
                    future: inner.call(Request::from_parts(parts, body)),
                    verdict: Some(verdict),
                    config: Arc::clone(config),
                    span: span.clone(),
                },
            }
        };
        if class_of(&parts.method).is_none() {
            return origin(inner, Verdict::Bypass(Bypass::Method), parts, body);
        }
        if has_body(&body) {
            return origin(inner, Verdict::Bypass(Bypass::Body), parts, body);
        }
        let mut first_wait = None;
        if let Some(local) = config.local() {
            let lookup = config.lookup_local(local, &parts);
            match config.settle_now(lookup, &mut parts, part, false) {
                Ok(Settled::Answer(response)) => return ready(response),
                Ok(Settled::Refresh(response, pending)) => {
                    refresh(config, inner.clone(), parts, body, pending);
                    return ready(response);
                }
                Ok(Settled::Ask(verdict)) => return origin(inner, verdict, parts, body),
                Err(mut pending) => match config.join(&pending) {
                    Role::Leader(leader) => {
                        pending.leader = Some(leader);
                        return origin(inner, Verdict::Finish(pending), parts, body);
                    }
                    Role::Pass => return origin(inner, Verdict::Finish(pending), parts, body),
                    Role::Waiter(receiver) => first_wait = Some(receiver),
                },
            }
        }
        // The clone takes the place of the service that was driven to readiness, which moves into
        // the waiting path.
        let clone = inner.clone();
        let mut inner = std::mem::replace(inner, clone);
        let config = Arc::clone(config);
        let future: BoxedResponse<ResBody, S::Error> =
            Box::pin(span.clone().instrument(async move {
                let verdict = match settle(&config, &mut parts, first_wait, part).await {
                    Settled::Answer(response) => return Ok(response),
                    Settled::Refresh(response, pending) => {
                        refresh(&config, inner, parts, body, pending);
                        return Ok(response);
                    }
                    Settled::Ask(verdict) => part.deliver(verdict, &mut parts.extensions),
                };
                // Readiness was reached for this call before the service was moved here.
                match inner.call(Request::from_parts(parts, body)).await {
                    Ok(response) => Ok(config.apply(Some(verdict), response)),
                    Err(error) => config.recover(Some(verdict)).ok_or(error),
                }
            }));
        CacheFuture {
            state: State::Boxed { future },
        }
    }
}

/// Whether a request carries a body. The key does not cover it, so a `GET` with a body (which
/// a handler may read) must neither be answered from nor stored in the cache: otherwise one
/// client's body could decide the page every other client gets. The body itself tells (hyper's
/// says it has ended when the request declared no content); one that cannot tell counts as a
/// body.
fn has_body<B: Body>(body: &B) -> bool {
    !body.is_end_stream() && body.size_hint().exact() != Some(0)
}

fn ready<F, B, E>(response: Response<CacheBody<B>>) -> CacheFuture<F, B, E> {
    CacheFuture {
        state: State::Ready {
            response: Some(response),
        },
    }
}

fn refresh_status(stale: bool) -> CacheStatus {
    if stale {
        CacheStatus::Stale(Stale::WhileRevalidate)
    } else {
        CacheStatus::Hit
    }
}

/// What a request settles for: a response to send (perhaps while the page is refreshed), or a
/// verdict to ask the origin with.
enum Settled<B> {
    Answer(Response<CacheBody<B>>),
    Refresh(Response<CacheBody<B>>, Box<Pending>),
    Ask(Verdict),
}

/// Looks the request up until it can be answered from the cache, or it is this request's turn
/// to ask the origin.
async fn settle<B>(
    config: &Arc<Config>,
    parts: &mut Parts,
    mut wait_for: Option<watch::Receiver<Option<Outcome>>>,
    part: Part,
) -> Settled<B> {
    let mut join = config.coalesce;
    let mut round = 0;
    let mut waited = false;
    loop {
        round += 1;
        if let Some(receiver) = wait_for.take() {
            waited = true;
            config.count(Event::Coalesced);
            // Boxed, as the lock below: rare paths, kept out of the size of every lookup's future.
            match Box::pin(flight::wait(receiver, config.stampede.wait_timeout)).await {
                // The page cannot be shared, or the leader is too slow: ask the origin now.
                Waited::Done(Outcome::NotStorable) | Waited::TimedOut => join = false,
                Waited::Done(Outcome::Stored) | Waited::LeaderGone => {}
            }
        }
        let lookup = config.lookup(parts).await;
        let mut pending = match config.settle_now(lookup, parts, part, waited) {
            Ok(settled) => return settled,
            Err(pending) => pending,
        };
        if !join || round >= MAX_ROUNDS {
            return Settled::Ask(Verdict::Finish(pending));
        }
        match config.flights.join(pending.flight_key.clone()) {
            Role::Leader(leader) => {
                pending.leader = Some(leader);
                let locked = Box::pin(config.lock_across_processes(&mut pending, parts)).await;
                if let Some((hit, waited_for_lock)) = locked {
                    let collapsed = waited || waited_for_lock;
                    return Settled::Answer(config.answer(hit, parts, collapsed));
                }
                return Settled::Ask(Verdict::Finish(pending));
            }
            Role::Pass => return Settled::Ask(Verdict::Finish(pending)),
            Role::Waiter(receiver) => wait_for = Some(receiver),
        }
    }
}

impl Config {
    /// What a lookup settles for the request: an answer (perhaps with the page to refresh), or
    /// a verdict to ask the origin with; `Err` with what the lookup learned for a miss, which
    /// may wait for another request's fetch first. `collapsed`: the request already waited
    /// for one.
    fn settle_now<B>(
        &self,
        lookup: Lookup,
        parts: &mut Parts,
        part: Part,
        collapsed: bool,
    ) -> Result<Settled<B>, Box<Pending>> {
        match lookup {
            Lookup::Hit(hit) => Ok(Settled::Answer(self.answer(hit, parts, collapsed))),
            Lookup::Bypass(bypass) => Ok(Settled::Ask(Verdict::Bypass(bypass))),
            Lookup::Refresh {
                hit,
                stale,
                pending,
            } if part.refreshes() => {
                let response = self.answer_and_go_on(hit, parts, refresh_status(stale));
                Ok(Settled::Refresh(response, pending))
            }
            Lookup::Refresh { pending, .. } | Lookup::Miss(pending) => Err(pending),
        }
    }

    /// The response to a request that ends with this hit: the request's extension storage
    /// carries the response's.
    ///
    /// `collapsed`: the request waited for another request's fetch of the page.
    fn answer<B>(&self, hit: Hit, parts: &mut Parts, collapsed: bool) -> Response<CacheBody<B>> {
        let extensions = std::mem::take(&mut parts.extensions);
        let (method, headers) = (&parts.method, &parts.headers);
        let member = Member::served(collapsed);
        self.hit_response(hit, method, headers, CacheStatus::Hit, member, extensions)
    }

    /// The response to a request that goes on after this hit, whole, to refresh the page.
    fn answer_and_go_on<B>(
        &self,
        hit: Hit,
        parts: &Parts,
        status: CacheStatus,
    ) -> Response<CacheBody<B>> {
        let extensions = http::Extensions::new();
        let (method, headers) = (&parts.method, &parts.headers);
        self.hit_response(
            hit,
            method,
            headers,
            status,
            Member::served(false),
            extensions,
        )
    }

    /// The request's part in the flight for its page (always a pass when coalescing is off).
    fn join(&self, pending: &Pending) -> Role {
        if !self.coalesce {
            return Role::Pass;
        }
        self.flights.join(pending.flight_key.clone())
    }

    /// With the opt-in lock, makes sure only one process asks the origin for a page: takes the
    /// lock (then looks once more, in case another process just stored the page), or waits for
    /// the process that holds it, looking for the page until it appears, the lock is free, or
    /// the wait runs out. Returns the page when another process stored it, with whether this
    /// request waited for that process's lock.
    async fn lock_across_processes(
        &self,
        pending: &mut Pending,
        parts: &Parts,
    ) -> Option<(Hit, bool)> {
        let settings = self.stampede.lock?;
        if self.local().is_some() {
            return None;
        }
        let locked = lock_or_wait(
            self.cache.store(),
            crate::key::internal_key("lock", &pending.flight_key),
            settings,
            || async {
                Ok::<_, Infallible>(match self.lookup_remote(parts).await {
                    Lookup::Hit(hit) => Some(hit),
                    _ => None,
                })
            },
            || {
                self.count(Event::LockWait);
            },
        )
        .await;
        match locked {
            Ok(Locked::Held {
                found: Some(hit),
                waited,
                ..
            }) => Some((hit, waited)),
            Ok(Locked::Held { lock, .. }) => {
                pending.lock = Some(lock);
                None
            }
            Ok(Locked::Found(hit)) => Some((hit, true)),
            Ok(Locked::GaveUp) => None,
            Ok(Locked::Failed { key, error }) => {
                self.cache
                    .note_store_error_at("lock", Some(parts.uri.path()), &key, &error);
                None
            }
            Err(never) => match never {},
        }
    }
}

/// Fetches a page again in the background while its stored copy is served. Only one refresh
/// per page runs at a time, whether or not misses are coalesced: a refresh leads the page's
/// flight, and a page that is already being fetched, or was just found not storable, is not
/// refreshed again. The refresh is a bounded background task.
fn refresh<S, ReqBody, ResBody>(
    config: &Arc<Config>,
    inner: S,
    parts: Parts,
    body: ReqBody,
    pending: Box<Pending>,
) where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Buf,
{
    let mut pending = pending;
    let Role::Leader(leader) = config.flights.join(pending.flight_key.clone()) else {
        return;
    };
    pending.leader = Some(leader);
    let task_config = Arc::clone(config);
    let span = pending.span.clone();
    let work = async move {
        let mut inner = inner;
        if poll_fn(|cx| inner.poll_ready(cx)).await.is_err() {
            return;
        }
        if let Ok(response) = inner.call(Request::from_parts(parts, body)).await {
            let response = task_config.apply(Some(Verdict::Finish(pending)), response);
            drain(response.into_body()).await;
        }
    };
    if config.background.spawn(span.instrument(work)) {
        config.count(Event::Refresh);
    }
}

/// Reads a body to its end, so that a background refresh is recorded and stored.
async fn drain<B: Body>(body: B) {
    let mut body = Box::pin(body);
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if frame.is_err() {
            return;
        }
    }
}
