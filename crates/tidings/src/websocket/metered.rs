//! A bound on what a client may send towards one message.
//!
//! tungstenite caps a message's payload, but a message sent as endless
//! empty fragments has no payload to cap: it would keep the socket and a
//! core busy forever. Counting the bytes read since the last complete
//! message, frame headers included, closes that door.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The socket under a WebSocket, counting what it reads.
pub struct Metered<S> {
    inner: S,
    since_message: usize,
    limit: usize,
}

/// The error a read fails with past the limit.
#[derive(Debug)]
pub struct Overlong;

impl std::fmt::Display for Overlong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a message took more bytes than its size limit allows")
    }
}

impl std::error::Error for Overlong {}

impl Overlong {
    pub fn caused(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|inner| inner.is::<Overlong>())
    }
}

impl<S> Metered<S> {
    /// A message may take `limit` bytes on the wire.
    pub fn new(inner: S, limit: usize) -> Metered<S> {
        Metered {
            inner,
            since_message: 0,
            limit,
        }
    }

    /// A text or binary message arrived whole: counting starts again.
    pub fn message_completed(&mut self) {
        self.since_message = 0;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.since_message > self.limit {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, Overlong)));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.since_message += buf.filled().len() - before;
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
