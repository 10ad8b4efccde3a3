//! The bounded queue between dispatch and one subscriber's connection.
//!
//! Hand-written rather than a channel: an idle subscriber must cost almost
//! nothing (no preallocated slots), the writer must be able to take every
//! queued frame at once to coalesce them into one write, and overflow must
//! close the queue with a reason instead of blocking the publisher.
//!
//! On the direct HTTP/1.1 path the queue also writes through: when nothing
//! is queued and the connection's writer is idle, dispatch writes the frame
//! to the socket itself. Most deliveries then cost one system call, with no
//! task to wake and schedule; a frame the socket cannot take at once is
//! queued and the writer woken, so order is kept.

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// Why the hub ends a subscriber's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The queue overflowed: the client reads slower than events arrive.
    Slow,
    /// The token expired or the maximum connection lifetime ran out.
    Expired,
    /// The hub is shutting down.
    Shutdown,
    /// This node missed events of the shared log (it fell behind its
    /// retention, or the log was emptied): the client reconnects and resumes
    /// from the log itself.
    Behind,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Slow => "slow consumer",
            CloseReason::Expired => "token expired or connection lifetime reached",
            CloseReason::Shutdown => "hub shutting down",
            CloseReason::Behind => "this node fell behind the shared log",
        }
    }
}

/// Queue bounds; whichever is reached first closes the queue.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub events: usize,
    pub bytes: usize,
}

pub struct Outbox {
    queue: Mutex<Queue>,
    waker: AtomicWaker,
}

#[derive(Default)]
struct Queue {
    /// A `Vec`, not a deque: the writer always takes all of it at once.
    frames: Vec<Bytes>,
    /// Bytes queued; `u32` keeps the struct small, and a total past it
    /// overflows the queue like any other bound.
    bytes: u32,
    /// The connection's socket, on the direct path. Under the lock, which
    /// write-through holds anyway.
    socket: Option<Arc<TcpStream>>,
    closed: Option<CloseReason>,
    /// The writer is idle with nothing in flight: dispatch may write through.
    write_through: bool,
}

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// This push overflowed the queue and closed it.
    Overflowed,
    /// The queue was already closed.
    Closed,
}

/// What the writer gets when it polls.
pub enum Batch {
    Frames(Vec<Bytes>),
    Closed(CloseReason),
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox {
            queue: Mutex::new(Queue::default()),
            waker: AtomicWaker::new(),
        }
    }

    /// Lets dispatch write to this socket once the writer allows it.
    pub fn attach(&self, socket: Arc<TcpStream>) {
        self.queue.lock().socket = Some(socket);
    }

    /// Called by the writer when it has written everything it took: later
    /// frames may go straight to the socket until the next one is queued.
    pub fn allow_write_through(&self) {
        let mut queue = self.queue.lock();
        if queue.frames.is_empty() && queue.closed.is_none() && queue.socket.is_some() {
            queue.write_through = true;
        }
    }

    /// Queues a frame, or with `write_through` writes it to an idle socket
    /// at once; overflow closes the queue as [`CloseReason::Slow`].
    pub fn push(&self, frame: Bytes, bounds: Bounds, write_through: bool) -> Push {
        let mut queue = self.queue.lock();
        if queue.closed.is_some() {
            return Push::Closed;
        }
        let frame = if write_through {
            match queue.write_through(frame) {
                None => return Push::Queued,
                Some(rest) => rest,
            }
        } else {
            frame
        };
        let bytes = (queue.bytes as usize + frame.len())
            .try_into()
            .ok()
            .filter(|&total: &u32| total as usize <= bounds.bytes);
        let outcome = match bytes {
            Some(total) if queue.frames.len() < bounds.events => {
                queue.bytes = total;
                queue.frames.push(frame);
                Push::Queued
            }
            _ => {
                queue.close(CloseReason::Slow);
                Push::Overflowed
            }
        };
        drop(queue);
        self.waker.wake();
        outcome
    }

    /// Closes the queue; frames already queued are still delivered first,
    /// except after overflow, where the client will replay them anyway.
    pub fn close(&self, reason: CloseReason) {
        self.queue.lock().close(reason);
        self.waker.wake();
    }

    /// Ready once the queue has overflowed: the writer, stuck behind a
    /// client that stopped reading, gives up on the connection instead of
    /// waiting for the client (whose events will be replayed on reconnect).
    pub fn poll_overflowed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_with(cx, || {
            (self.queue.lock().closed == Some(CloseReason::Slow)).then_some(())
        })
    }

    /// Takes every queued frame at once, so the writer can send them in a
    /// single write; `Pending` registers the writer to be woken.
    pub fn poll_batch(&self, cx: &mut Context<'_>) -> Poll<Batch> {
        self.poll_with(cx, || self.try_batch())
    }

    /// Ready with what `check` finds, or registers the writer to be woken
    /// and checks again: a push between the check and the registration
    /// would otherwise be missed.
    fn poll_with<T>(&self, cx: &mut Context<'_>, check: impl Fn() -> Option<T>) -> Poll<T> {
        if let Some(found) = check() {
            return Poll::Ready(found);
        }
        self.waker.register(cx.waker());
        match check() {
            Some(found) => Poll::Ready(found),
            None => Poll::Pending,
        }
    }

    fn try_batch(&self) -> Option<Batch> {
        let mut queue = self.queue.lock();
        if !queue.frames.is_empty() {
            queue.write_through = false;
            queue.bytes = 0;
            // Give the allocation away: an idle subscriber keeps no buffer.
            return Some(Batch::Frames(std::mem::take(&mut queue.frames)));
        }
        queue.closed.map(Batch::Closed)
    }
}

impl Queue {
    /// Writes `frame` to the socket if allowed; returns what remains to queue.
    fn write_through(&mut self, frame: Bytes) -> Option<Bytes> {
        if !self.write_through {
            return Some(frame);
        }
        let Some(socket) = &self.socket else {
            return Some(frame);
        };
        match socket.try_write(&frame) {
            Ok(written) if written == frame.len() => None,
            outcome => {
                // The writer takes over: it will finish the frame, or meet
                // the error and end the stream.
                self.write_through = false;
                Some(frame.slice(outcome.unwrap_or(0)..))
            }
        }
    }

    fn close(&mut self, reason: CloseReason) {
        self.write_through = false;
        if self.closed.is_none() {
            self.closed = Some(reason);
            if reason == CloseReason::Slow {
                self.frames = Vec::new();
                self.bytes = 0;
            }
        }
    }
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    const BOUNDS: Bounds = Bounds {
        events: 2,
        bytes: 100,
    };

    fn poll(outbox: &Outbox) -> Poll<Batch> {
        outbox.poll_batch(&mut Context::from_waker(noop_waker_ref()))
    }

    #[test]
    fn batches_everything_queued() {
        let outbox = Outbox::new();
        assert!(poll(&outbox).is_pending());
        assert_eq!(
            outbox.push(Bytes::from_static(b"a"), BOUNDS, true),
            Push::Queued
        );
        assert_eq!(
            outbox.push(Bytes::from_static(b"b"), BOUNDS, true),
            Push::Queued
        );
        match poll(&outbox) {
            Poll::Ready(Batch::Frames(frames)) => assert_eq!(frames, vec!["a", "b"]),
            _ => panic!("expected frames"),
        }
        assert!(poll(&outbox).is_pending());
    }

    #[test]
    fn overflow_closes_as_slow_and_drops_the_backlog() {
        let outbox = Outbox::new();
        outbox.push(Bytes::from_static(b"a"), BOUNDS, true);
        outbox.push(Bytes::from_static(b"b"), BOUNDS, true);
        assert_eq!(
            outbox.push(Bytes::from_static(b"c"), BOUNDS, true),
            Push::Overflowed
        );
        assert!(matches!(
            poll(&outbox),
            Poll::Ready(Batch::Closed(CloseReason::Slow))
        ));
        assert_eq!(
            outbox.push(Bytes::from_static(b"d"), BOUNDS, true),
            Push::Closed
        );
    }

    #[test]
    fn byte_bound_applies_too() {
        let outbox = Outbox::new();
        assert_eq!(
            outbox.push(Bytes::from(vec![0; 101]), BOUNDS, true),
            Push::Overflowed
        );
        assert_eq!(
            outbox.push(Bytes::from_static(b"a"), BOUNDS, true),
            Push::Closed
        );
    }

    #[test]
    fn shutdown_delivers_what_was_queued_first() {
        let outbox = Outbox::new();
        outbox.push(Bytes::from_static(b"a"), BOUNDS, true);
        outbox.close(CloseReason::Shutdown);
        assert!(matches!(poll(&outbox), Poll::Ready(Batch::Frames(_))));
        assert!(matches!(
            poll(&outbox),
            Poll::Ready(Batch::Closed(CloseReason::Shutdown))
        ));
    }

    #[tokio::test]
    async fn an_idle_writer_lets_dispatch_write_through() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let outbox = Outbox::new();
        outbox.attach(Arc::new(server));
        // Not before the writer says it is idle: order comes first.
        assert_eq!(
            outbox.push(Bytes::from_static(b"a"), BOUNDS, true),
            Push::Queued
        );
        assert!(matches!(poll(&outbox), Poll::Ready(Batch::Frames(_))));
        outbox.allow_write_through();
        assert_eq!(
            outbox.push(Bytes::from_static(b"b"), BOUNDS, true),
            Push::Queued
        );
        assert!(poll(&outbox).is_pending(), "written, not queued");
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"b");
        // A caller may ask to queue anyway.
        outbox.push(Bytes::from_static(b"c"), BOUNDS, false);
        assert!(matches!(poll(&outbox), Poll::Ready(Batch::Frames(_))));
    }
}
