//! An HTTP body that passes every frame of another through unchanged and
//! shows each to an observer first: the one body wrapper behind the tower
//! layers that count messages, record a request's status or hold a permit
//! until the response ends (the observer is dropped with the body).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

/// Sees the frames of an [`ObservedBody`] as they pass.
pub(crate) trait FrameObserver: Send + Unpin + 'static {
    /// Called with each frame before it is passed on, and with `None` when
    /// the body ends. The default ignores them.
    fn observe(&mut self, _frame: Option<&Result<Frame<Bytes>, Status>>) {}
}

/// `body`, with `observer` looking at its frames.
pub(crate) struct ObservedBody<O> {
    body: Body,
    observer: O,
}

impl<O: FrameObserver> ObservedBody<O> {
    /// `body` with `observer`, as a tonic [`Body`].
    pub(crate) fn wrap(body: Body, observer: O) -> Body {
        Body::new(Self { body, observer })
    }
}

impl<O: FrameObserver> http_body::Body for ObservedBody<O> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        this.observer.observe(frame.as_ref());
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
