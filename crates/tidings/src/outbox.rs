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
//!
//! On the direct path, a connection written to less than [`LINGER`] ago is
//! neither written through nor woken: its frames wait for the hub's next flush
//! ([`crate::flush`]), which wakes its writer once for all of them. A write
//! to a socket costs far more than the bytes in it (on loopback most of it
//! is waking the reader), so at high rates this turns many writes into
//! one; an event after a quiet spell still goes out at once. A busy
//! connection, whose last write carried [`BUSY_FRAMES`] or more, lingers
//! twice as long, and a flooded one ([`FLOODED_FRAMES`]) three times: its
//! events are already waiting for one another, and fewer writes is what the
//! longer wait buys.

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long after a write a connection's next frames wait to be written
/// together. At 1,000 events/s that is ten events per write; events further
/// apart than this never wait.
pub const LINGER: Duration = Duration::from_millis(10);

/// Frames in one write from which a connection counts as busy. At 100
/// events a second a write carries one or two; at 1,000, ten, then twenty
/// once busy and thirty once flooded.
const BUSY_FRAMES: usize = 6;
/// Frames in one write from which a busy connection counts as flooded: at
/// 800 events a second and more, or after a stall of 160 ms at 100.
const FLOODED_FRAMES: usize = 16;

/// How fast a connection's events came, judged by its last write.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Pace {
    #[default]
    Calm,
    Busy,
    Flooded,
}

impl Pace {
    fn of_write(frames: usize) -> Pace {
        match frames {
            n if n >= FLOODED_FRAMES => Pace::Flooded,
            n if n >= BUSY_FRAMES => Pace::Busy,
            _ => Pace::Calm,
        }
    }

    /// How long after a write the connection's next frames wait.
    fn linger(self) -> Duration {
        match self {
            Pace::Calm => LINGER,
            Pace::Busy => 2 * LINGER,
            Pace::Flooded => 3 * LINGER,
        }
    }
}

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
    /// Frames wait for the next flush, which will wake the writer.
    deferred: bool,
    /// How many frames the last write carried, as a pace.
    pace: Pace,
    /// When frames were last taken for writing or written through.
    written_at: Tick,
}

/// A moment in milliseconds, wrapping every 65 s: all a queue needs to
/// know whether it was written to within [`LINGER`], in two bytes. (Once
/// per wrap a connection idle for exactly a multiple of 65 s has one frame
/// wait a flush for nothing.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick(u16);

impl Tick {
    pub fn now() -> Tick {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        Tick(start.elapsed().as_millis() as u16)
    }

    fn minus(self, span: Duration) -> Tick {
        Tick(self.0.wrapping_sub(span.as_millis() as u16))
    }

    fn within(self, span: Duration, earlier: Tick) -> bool {
        u128::from(self.0.wrapping_sub(earlier.0)) < span.as_millis()
    }
}

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// Queued to wait for the next flush: the caller hands the subscriber
    /// to the flusher.
    Deferred,
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
        let queue = Queue {
            written_at: Tick::now().minus(LINGER),
            ..Queue::default()
        };
        Outbox {
            queue: Mutex::new(queue),
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
    /// at once; overflow closes the queue as [`CloseReason::Slow`]. A
    /// connection written to within [`LINGER`] of `now` is left to the next
    /// flush instead.
    pub fn push(&self, frame: Bytes, bounds: Bounds, now: Tick, write_through: bool) -> Push {
        let mut queue = self.queue.lock();
        if queue.closed.is_some() {
            return Push::Closed;
        }
        // Only the direct path lingers: hyper, which serves the other
        // HTTP/1.1 streams, must see every frame at once to notice a client
        // that stopped reading (`server/stall.rs`).
        let lingering = queue.socket.is_some() && now.within(queue.pace.linger(), queue.written_at);
        let frame = if write_through && !lingering {
            match queue.write_through(frame, now) {
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
                // Nothing may overtake a queued frame.
                queue.write_through = false;
                if lingering {
                    // No wake-up now: the flush wakes the writer.
                    return match std::mem::replace(&mut queue.deferred, true) {
                        false => Push::Deferred,
                        true => Push::Queued,
                    };
                }
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

    /// The flush: wakes the writer for the frames that waited, unless the
    /// connection is busy and its longer linger is not over at `now`;
    /// returns whether it woke the writer.
    pub fn flush(&self, now: Tick) -> bool {
        let mut queue = self.queue.lock();
        let lingering =
            queue.pace != Pace::Calm && now.within(queue.pace.linger(), queue.written_at);
        if lingering && queue.closed.is_none() {
            return false;
        }
        queue.deferred = false;
        drop(queue);
        self.waker.wake();
        true
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
            queue.written_at = Tick::now();
            queue.pace = Pace::of_write(queue.frames.len());
            queue.bytes = 0;
            // Give the allocation away: an idle subscriber keeps no buffer.
            return Some(Batch::Frames(std::mem::take(&mut queue.frames)));
        }
        queue.closed.map(Batch::Closed)
    }
}

impl Queue {
    /// Writes `frame` to the socket if allowed; returns what remains to queue.
    fn write_through(&mut self, frame: Bytes, now: Tick) -> Option<Bytes> {
        if !self.write_through {
            return Some(frame);
        }
        let Some(socket) = &self.socket else {
            return Some(frame);
        };
        self.written_at = now;
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

    /// A moment well past any write made so far.
    fn later() -> Tick {
        Tick(Tick::now().0.wrapping_add(1000))
    }

    /// A waker that counts its wake-ups.
    struct Counter(std::sync::atomic::AtomicUsize);

    impl futures_util::task::ArcWake for Counter {
        fn wake_by_ref(counter: &Arc<Self>) {
            counter.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// An outbox on the server side of a loopback connection, and the client side.
    async fn attached() -> (Outbox, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let outbox = Outbox::new();
        outbox.attach(Arc::new(listener.accept().await.unwrap().0));
        (outbox, client)
    }

    #[tokio::test]
    async fn frames_soon_after_a_write_wait_for_the_flush() {
        let (outbox, _client) = attached().await;
        let counter = Arc::new(Counter(Default::default()));
        let waker = futures_util::task::waker(counter.clone());
        let wakes = || counter.0.load(std::sync::atomic::Ordering::Relaxed);
        let mut cx = Context::from_waker(&waker);
        assert!(outbox.poll_batch(&mut cx).is_pending());
        // Quiet before: the first frame wakes the writer at once.
        let now = Tick::now();
        assert_eq!(
            outbox.push(Bytes::from_static(b"a"), BOUNDS, now, true),
            Push::Queued
        );
        assert_eq!(wakes(), 1);
        assert!(matches!(
            outbox.poll_batch(&mut cx),
            Poll::Ready(Batch::Frames(_))
        ));
        assert!(outbox.poll_batch(&mut cx).is_pending());
        // Just written: the next frames wait, and only the first asks for a flush.
        let now = Tick::now();
        assert_eq!(
            outbox.push(Bytes::from_static(b"b"), BOUNDS, now, true),
            Push::Deferred
        );
        assert_eq!(
            outbox.push(Bytes::from_static(b"c"), BOUNDS, now, true),
            Push::Queued
        );
        assert_eq!(wakes(), 1, "no wake-up before the flush");
        outbox.flush(Tick::now());
        assert_eq!(wakes(), 2);
        match outbox.poll_batch(&mut cx) {
            Poll::Ready(Batch::Frames(frames)) => assert_eq!(frames, vec!["b", "c"]),
            _ => panic!("expected both frames in one batch"),
        }
        // Overflow is never deferred: the writer learns of it at once.
        assert!(outbox.poll_batch(&mut cx).is_pending());
        outbox.push(Bytes::from_static(b"d"), BOUNDS, Tick::now(), true);
        outbox.push(Bytes::from_static(b"e"), BOUNDS, Tick::now(), true);
        let before = wakes();
        assert_eq!(
            outbox.push(Bytes::from_static(b"f"), BOUNDS, Tick::now(), true),
            Push::Overflowed
        );
        assert_eq!(wakes(), before + 1);
    }

    #[tokio::test]
    async fn a_busy_connection_lingers_longer_and_a_flooded_one_longer_still() {
        let (outbox, _client) = attached().await;
        let counter = Arc::new(Counter(Default::default()));
        let waker = futures_util::task::waker(counter.clone());
        let wakes = || counter.0.load(std::sync::atomic::Ordering::Relaxed);
        let mut cx = Context::from_waker(&waker);
        // Takes what is queued, then waits (registering the waker) as a writer does.
        let mut take = || {
            let Poll::Ready(Batch::Frames(frames)) = outbox.poll_batch(&mut cx) else {
                panic!("expected frames");
            };
            assert!(outbox.poll_batch(&mut cx).is_pending());
            (frames.len(), Tick::now())
        };
        let bounds = Bounds {
            events: 100,
            bytes: 1000,
        };
        let push = |now| outbox.push(Bytes::from_static(b"x"), bounds, now, false);
        let after = |written: Tick, ms: u16| Tick(written.0.wrapping_add(ms));
        // A write of fewer than BUSY_FRAMES: a frame 15 ms later wakes the writer.
        push(later());
        let (_, written) = take();
        let before = wakes();
        push(after(written, 15));
        assert_eq!(wakes(), before + 1);
        // A write of BUSY_FRAMES: frames wait, also past LINGER...
        for _ in 1..BUSY_FRAMES {
            push(after(written, 15));
        }
        let (taken, written) = take();
        assert_eq!(taken, BUSY_FRAMES);
        let before = wakes();
        assert_eq!(push(after(written, 2)), Push::Deferred);
        assert_eq!(push(after(written, 15)), Push::Queued);
        assert_eq!(wakes(), before, "no wake-up before the flush");
        // ...and a flush before the busy linger is over leaves them for the next.
        assert!(!outbox.flush(after(written, 12)));
        assert_eq!(wakes(), before);
        assert!(outbox.flush(after(written, 25)));
        assert_eq!(wakes(), before + 1);
        let (taken, written) = take();
        assert_eq!(taken, 2);
        // A write of FLOODED_FRAMES: a flush 25 ms on still waits, one 35 ms
        // on wakes the writer.
        for _ in 0..FLOODED_FRAMES {
            push(after(written, 15));
        }
        assert!(outbox.flush(after(written, 25)));
        let (taken, written) = take();
        assert_eq!(taken, FLOODED_FRAMES);
        let before = wakes();
        assert_eq!(push(after(written, 22)), Push::Deferred);
        assert!(!outbox.flush(after(written, 25)));
        assert_eq!(wakes(), before);
        assert!(outbox.flush(after(written, 35)));
        assert_eq!(wakes(), before + 1);
        let (taken, written) = take();
        assert_eq!(taken, 1);
        // One frame in that write: calm again.
        let before = wakes();
        push(after(written, 15));
        assert_eq!(wakes(), before + 1);
    }

    #[test]
    fn ticks_compare_across_the_wrap() {
        let before_wrap = Tick(u16::MAX - 2);
        assert!(Tick(3).within(LINGER, before_wrap));
        assert!(!Tick(3 + LINGER.as_millis() as u16).within(LINGER, before_wrap));
        assert!(!Tick(500).within(LINGER, Tick(0)));
    }

    #[test]
    fn batches_everything_queued() {
        let outbox = Outbox::new();
        assert!(poll(&outbox).is_pending());
        assert_eq!(
            outbox.push(Bytes::from_static(b"a"), BOUNDS, later(), true),
            Push::Queued
        );
        assert_eq!(
            outbox.push(Bytes::from_static(b"b"), BOUNDS, later(), true),
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
        outbox.push(Bytes::from_static(b"a"), BOUNDS, later(), true);
        outbox.push(Bytes::from_static(b"b"), BOUNDS, later(), true);
        assert_eq!(
            outbox.push(Bytes::from_static(b"c"), BOUNDS, later(), true),
            Push::Overflowed
        );
        assert!(matches!(
            poll(&outbox),
            Poll::Ready(Batch::Closed(CloseReason::Slow))
        ));
        assert_eq!(
            outbox.push(Bytes::from_static(b"d"), BOUNDS, later(), true),
            Push::Closed
        );
    }

    #[test]
    fn byte_bound_applies_too() {
        let outbox = Outbox::new();
        assert_eq!(
            outbox.push(Bytes::from(vec![0; 101]), BOUNDS, later(), true),
            Push::Overflowed
        );
        assert_eq!(
            outbox.push(Bytes::from_static(b"a"), BOUNDS, later(), true),
            Push::Closed
        );
    }

    #[test]
    fn shutdown_delivers_what_was_queued_first() {
        let outbox = Outbox::new();
        outbox.push(Bytes::from_static(b"a"), BOUNDS, later(), true);
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
        let (outbox, mut client) = attached().await;
        // Not before the writer says it is idle: order comes first.
        assert_eq!(
            outbox.push(Bytes::from_static(b"a"), BOUNDS, later(), true),
            Push::Queued
        );
        assert!(matches!(poll(&outbox), Poll::Ready(Batch::Frames(_))));
        outbox.allow_write_through();
        assert_eq!(
            outbox.push(Bytes::from_static(b"b"), BOUNDS, later(), true),
            Push::Queued
        );
        assert!(poll(&outbox).is_pending(), "written, not queued");
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"b");
        // A caller may ask to queue anyway.
        outbox.push(Bytes::from_static(b"c"), BOUNDS, later(), false);
        assert!(matches!(poll(&outbox), Poll::Ready(Batch::Frames(_))));
    }

    #[tokio::test]
    async fn a_queued_frame_is_never_overtaken_by_a_write_through() {
        let (outbox, _client) = attached().await;
        outbox.push(Bytes::from_static(b"a"), BOUNDS, later(), true);
        assert!(matches!(poll(&outbox), Poll::Ready(Batch::Frames(_))));
        outbox.allow_write_through();
        // Just written: "b" waits for the flush...
        assert_eq!(
            outbox.push(Bytes::from_static(b"b"), BOUNDS, Tick::now(), true),
            Push::Deferred
        );
        // ...and "c", once the linger is over, must queue behind it.
        assert_eq!(
            outbox.push(Bytes::from_static(b"c"), BOUNDS, later(), true),
            Push::Queued
        );
        match poll(&outbox) {
            Poll::Ready(Batch::Frames(frames)) => assert_eq!(frames, vec!["b", "c"]),
            _ => panic!("expected both frames, in order"),
        }
    }
}
