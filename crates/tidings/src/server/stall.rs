//! A stalled reader on a hyper HTTP/1.1 connection (TLS without HTTP/2, or
//! a plain event stream the direct path passed on).
//!
//! hyper stops polling a response body while its write buffer is full, so
//! once a client stops reading, the event stream is never polled again and
//! the overflow of its queue would go unnoticed: the connection, the
//! subscriber and hyper's buffers would stay as long as the client keeps
//! the connection open. The connection's I/O is therefore wrapped: while a
//! write waits for the client, it also watches the queue of the event
//! stream the connection serves, and fails the connection once that queue
//! overflows, as the direct path's writer and the HTTP/2 pump do.

use crate::stream::EventStream;
use crate::subscriber::Subscriber;
use parking_lot::Mutex;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The event stream a connection is serving, if any. The router is handed
/// a clone with each request (as an extension) and names the stream it
/// opens; weak, so the watch never keeps a subscriber alive.
#[derive(Clone, Default)]
pub struct StallWatch(Arc<Mutex<Weak<Subscriber>>>);

impl StallWatch {
    pub fn watch(&self, stream: &EventStream) {
        *self.0.lock() = Arc::downgrade(stream.subscriber());
    }

    /// Whether the watched stream's queue has overflowed; if not, the
    /// task is woken when it does.
    fn overflowed(&self, cx: &mut Context<'_>) -> bool {
        let subscriber = self.0.lock().upgrade();
        subscriber.is_some_and(|s| s.outbox.poll_overflowed(cx).is_ready())
    }
}

/// A connection's I/O whose blocked writes give up on overflow.
pub struct Watched<I> {
    io: I,
    watch: StallWatch,
}

impl<I> Watched<I> {
    pub fn new(io: I, watch: StallWatch) -> Watched<I> {
        Watched { io, watch }
    }

    fn give_up_if_overflowed<T>(
        &self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending if self.watch.overflowed(cx) => {
                Poll::Ready(Err(io::Error::other("slow consumer: its queue overflowed")))
            }
            other => other,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.give_up_if_overflowed(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.give_up_if_overflowed(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.give_up_if_overflowed(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
