//! The body of responses that pass through the response cache.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::util::poll_bytes;

pin_project! {
    /// The response body of the cache layers: a stored body on a hit, otherwise the inner
    /// service's body, passed through frame by frame (and copied, when the response is being
    /// stored).
    pub struct CacheBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Cached { data: Option<Bytes> },
        Inner { #[pin] inner: B, recorder: Option<Recorder> },
    }
}

/// Copies a body as it streams past, and hands the whole of it over if it ends cleanly within
/// the size limit. Dropped without handing over when the limit is passed, the body fails, it
/// carries trailers, or the client goes away first.
pub(crate) struct Recorder {
    buffer: BytesMut,
    limit: usize,
    commit: Box<dyn FnOnce(Bytes) + Send>,
}

impl Recorder {
    pub(crate) fn new(limit: usize, commit: impl FnOnce(Bytes) + Send + 'static) -> Recorder {
        Recorder {
            buffer: BytesMut::new(),
            limit,
            commit: Box::new(commit),
        }
    }

    /// Copies a chunk; `false` when the body has grown past the limit.
    fn push(&mut self, chunk: &Bytes) -> bool {
        if self.buffer.len().saturating_add(chunk.len()) > self.limit {
            return false;
        }
        self.buffer.extend_from_slice(chunk);
        true
    }

    fn finish(self) {
        (self.commit)(self.buffer.freeze());
    }
}

/// An empty body, as middleware that answers by itself (tower-http's `CorsLayer` and
/// `TimeoutLayer`) needs of the bodies it wraps.
impl<B> Default for CacheBody<B> {
    fn default() -> Self {
        Self::cached(None)
    }
}

impl<B> CacheBody<B> {
    /// A stored body (`None` for the empty body of a `HEAD` or `304` answer).
    pub(crate) fn cached(data: Option<Bytes>) -> Self {
        CacheBody {
            kind: Kind::Cached {
                data: data.filter(|data| !data.is_empty()),
            },
        }
    }

    /// The inner service's body, untouched.
    pub(crate) fn passthrough(inner: B) -> Self {
        CacheBody {
            kind: Kind::Inner {
                inner,
                recorder: None,
            },
        }
    }
}

impl<B: Body> CacheBody<B> {
    /// The inner service's body, copied into `recorder` as it streams.
    pub(crate) fn recording(inner: B, recorder: Recorder) -> Self {
        // A body that is already complete may never be polled.
        if inner.is_end_stream() {
            recorder.finish();
            return CacheBody::passthrough(inner);
        }
        CacheBody {
            kind: Kind::Inner {
                inner,
                recorder: Some(recorder),
            },
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Cached { data } => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            KindProj::Inner {
                mut inner,
                recorder,
            } => {
                let frame = match ready!(poll_bytes(inner.as_mut(), cx)) {
                    None => {
                        if let Some(recorder) = recorder.take() {
                            recorder.finish();
                        }
                        return Poll::Ready(None);
                    }
                    Some(Err(error)) => {
                        *recorder = None;
                        return Poll::Ready(Some(Err(error)));
                    }
                    Some(Ok(frame)) => frame,
                };
                if let Some(active) = recorder {
                    let kept = frame.data_ref().is_some_and(|data| active.push(data));
                    if !kept {
                        *recorder = None;
                    } else if inner.is_end_stream() {
                        // The server may stop polling once the body says it has ended.
                        if let Some(recorder) = recorder.take() {
                            recorder.finish();
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Cached { data } => data.is_none(),
            Kind::Inner { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Cached { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |data| data.len() as u64))
            }
            Kind::Inner { inner, .. } => inner.size_hint(),
        }
    }
}

impl<B> fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cached { data } => f
                .debug_struct("CacheBody::Cached")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Inner { recorder, .. } => f
                .debug_struct("CacheBody::Inner")
                .field("recording", &recorder.is_some())
                .finish(),
        }
    }
}
