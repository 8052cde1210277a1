//! The response body of the conditional layers.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::util::poll_bytes;

pin_project! {
    /// The response body of [`ConditionService`](super::ConditionService) and
    /// [`ConditionalGetService`](super::ConditionalGetService): the inner service's body
    /// untouched, the empty body of a `304` or `412` answer, or a body that was read ahead to
    /// compute its entity tag and is replayed frame by frame.
    pub struct ConditionalBody<B>
    where
        B: Body,
    {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B>
    where
        B: Body,
    {
        // The inner service's body, passed through.
        Inner {
            #[pin]
            inner: B,
        },
        // Frames read ahead, sent first; then the error that stopped the reading, if any; then
        // the rest of the body, if the reading stopped before its end.
        ReadAhead {
            frames: VecDeque<Frame<Bytes>>,
            error: Option<B::Error>,
            rest: Option<Pin<Box<B>>>,
        },
    }
}

/// An empty body, as middleware that answers by itself (tower-http's `CorsLayer` and
/// `TimeoutLayer`) needs of the bodies it wraps.
impl<B: Body> Default for ConditionalBody<B> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<B: Body> ConditionalBody<B> {
    /// The inner service's body, untouched.
    pub(crate) fn passthrough(inner: B) -> Self {
        ConditionalBody {
            kind: Kind::Inner { inner },
        }
    }

    /// No content: the body of a `304` or `412` answer.
    pub(crate) fn empty() -> Self {
        Self::read_ahead(VecDeque::new(), None, None)
    }

    /// Replays `frames`, then `error`, then whatever `rest` still yields.
    pub(crate) fn read_ahead(
        frames: VecDeque<Frame<Bytes>>,
        error: Option<B::Error>,
        rest: Option<Pin<Box<B>>>,
    ) -> Self {
        ConditionalBody {
            kind: Kind::ReadAhead {
                frames,
                error,
                rest,
            },
        }
    }
}

impl<B> Body for ConditionalBody<B>
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
            KindProj::Inner { inner } => poll_bytes(inner, cx),
            KindProj::ReadAhead {
                frames,
                error,
                rest,
            } => {
                if let Some(frame) = frames.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(error) = error.take() {
                    *rest = None;
                    return Poll::Ready(Some(Err(error)));
                }
                let Some(body) = rest else {
                    return Poll::Ready(None);
                };
                let frame = ready!(poll_bytes(body.as_mut(), cx));
                if frame.is_none() {
                    *rest = None;
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { inner } => inner.is_end_stream(),
            Kind::ReadAhead {
                frames,
                error,
                rest,
            } => {
                frames.is_empty()
                    && error.is_none()
                    && rest.as_ref().is_none_or(|rest| rest.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { inner } => inner.size_hint(),
            Kind::ReadAhead { frames, rest, .. } => {
                let buffered = frames
                    .iter()
                    .filter_map(Frame::data_ref)
                    .fold(0_u64, |sum, data| sum.saturating_add(data.len() as u64));
                let Some(rest) = rest else {
                    return SizeHint::with_exact(buffered);
                };
                let rest = rest.size_hint();
                // Adding the same amount to both bounds keeps lower <= upper, which
                // `set_upper` requires.
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(buffered));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(buffered));
                }
                hint
            }
        }
    }
}

impl<B: Body> fmt::Debug for ConditionalBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.debug_struct("ConditionalBody::Inner").finish(),
            Kind::ReadAhead {
                frames,
                error,
                rest,
            } => f
                .debug_struct("ConditionalBody::ReadAhead")
                .field("frames", &frames.len())
                .field("error", &error.is_some())
                .field("rest", &rest.is_some())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    /// A body of unknown length that yields the frames it was given.
    struct Scripted(VecDeque<Result<Frame<Bytes>, &'static str>>);

    impl Body for Scripted {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    fn data(frame: Frame<Bytes>) -> Bytes {
        frame.into_data().unwrap()
    }

    #[tokio::test]
    async fn read_ahead_frames_come_before_the_rest() {
        let rest = Full::new(Bytes::from_static(b"c"));
        let frames = VecDeque::from([Frame::data(Bytes::from("a")), Frame::data("b".into())]);
        let mut body = ConditionalBody::read_ahead(frames, None, Some(Box::pin(rest)));
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(!body.is_end_stream());
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            seen.push(data(frame.unwrap()));
        }
        assert_eq!(seen, ["a", "b", "c"]);
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn an_error_read_ahead_ends_the_body() {
        let rest = Scripted(VecDeque::from([Ok(Frame::data(Bytes::from("never")))]));
        let frames = VecDeque::from([Frame::data(Bytes::from("a"))]);
        let mut body = ConditionalBody::read_ahead(frames, Some("boom"), Some(Box::pin(rest)));
        assert_eq!(data(body.frame().await.unwrap().unwrap()), "a");
        assert_eq!(body.frame().await.unwrap().unwrap_err(), "boom");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn the_empty_body_is_exactly_empty() {
        let mut body = ConditionalBody::<Full<Bytes>>::empty();
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.frame().await.is_none());
    }

    #[test]
    fn size_hints_add_the_frames_read_ahead() {
        let frames = VecDeque::from([Frame::data(Bytes::from("ab"))]);
        let rest = Box::pin(Scripted(VecDeque::new()));
        let body = ConditionalBody::read_ahead(frames, None, Some(rest));
        assert_eq!(body.size_hint().lower(), 2);
        assert_eq!(body.size_hint().upper(), None);
    }
}
