//! One subscription's stream of frames: what it missed, then live events.
//!
//! The same stream feeds the hand-written HTTP/1.1 writer (which takes a
//! batch and writes it with one vectored write), the HTTP/2 pump (one DATA
//! frame per batch), and hyper, for HTTP/1.1 over TLS and applications that
//! mount the hub's routes in their own server.

use crate::event::SharedEvent;
use crate::frame::{self, Encoding};
use crate::history::{HistoryError, Log, Pending, SharedLog};
use crate::hub::Core;
use crate::outbox::{Batch, CloseReason};
use crate::subscriber::Subscriber;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

pub struct EventStream {
    core: Arc<Core>,
    subscriber: Arc<Subscriber>,
    phase: Phase,
}

/// Where a stream starts.
pub(crate) enum Start {
    /// Live from now, told the id of the last event as its cursor.
    Live { cursor: Box<str> },
    /// Replaying history after the sequence `after` first; `answer` is the
    /// cursor the client resumed from, as the hub understood it.
    Resume { after: u64, answer: Box<str> },
}

enum Phase {
    /// The opening frame, which flushes the response head: `retry:`, then
    /// for a live subscriber its cursor as an `id:` (which sets
    /// `EventSource`'s last event id without firing an event), or else a
    /// comment. Boxed: it lasts one poll, and every idle stream would
    /// otherwise carry its size.
    Open(Box<(Start, u64)>),
    /// Replaying history; boxed for the same reason as `Open`.
    Replay(Box<Replay>),
    Live,
    /// Over: closed by the hub for a reason, or cut by a failed read.
    Done(Option<CloseReason>),
}

/// Replaying the log after `after`, up to the first live sequence.
struct Replay {
    after: u64,
    live_after: u64,
    /// A read of a shared log under way.
    reading: Option<Pending<'static, Vec<SharedEvent>>>,
}

impl EventStream {
    pub(crate) fn new(
        core: Arc<Core>,
        subscriber: Arc<Subscriber>,
        start: Start,
        live_after: u64,
    ) -> EventStream {
        EventStream {
            core,
            subscriber,
            phase: Phase::Open(Box::new((start, live_after))),
        }
    }

    /// The value of the `Mercure-Last-Event-ID` response header, when the
    /// request carried a cursor; known until the stream is first polled,
    /// which is all the response head needs.
    pub fn resumed_from(&self) -> Option<&str> {
        match &self.phase {
            Phase::Open(opening) => match &opening.0 {
                Start::Resume { answer, .. } => Some(&**answer),
                Start::Live { .. } => None,
            },
            _ => None,
        }
    }

    /// Live events come from the subscriber's queue (replay is over).
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live)
    }

    pub(crate) fn outbox(&self) -> &crate::outbox::Outbox {
        &self.subscriber.outbox
    }

    pub(crate) fn subscriber(&self) -> &Arc<Subscriber> {
        &self.subscriber
    }

    /// The next frames to write, or `None` when the stream is over.
    pub fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<Bytes>>> {
        loop {
            match self.phase {
                Phase::Open(ref opening) => {
                    let (start, live_after) = (&opening.0, opening.1);
                    let opening = self.opening(start);
                    self.phase = match start {
                        Start::Live { .. } => Phase::Live,
                        Start::Resume { after, .. } => {
                            if *after < live_after {
                                Phase::Replay(Box::new(Replay {
                                    after: *after,
                                    live_after,
                                    reading: None,
                                }))
                            } else {
                                Phase::Live
                            }
                        }
                    };
                    return Poll::Ready(Some(opening));
                }
                Phase::Replay(ref mut replay) => {
                    match ready!(replay.poll_batch(&self.core, &self.subscriber, cx)) {
                        Ok((frames, done)) => {
                            if done {
                                self.phase = Phase::Live;
                            }
                            if !frames.is_empty() {
                                return Poll::Ready(Some(frames));
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "ending a stream: history read failed");
                            self.phase = Phase::Done(None);
                        }
                    }
                }
                Phase::Live => {
                    return match self.subscriber.outbox.poll_batch(cx) {
                        Poll::Ready(Batch::Frames(frames)) => Poll::Ready(Some(frames)),
                        Poll::Ready(Batch::Closed(reason)) => {
                            self.log_close(reason);
                            self.phase = Phase::Done(Some(reason));
                            Poll::Ready(None)
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
                Phase::Done(_) => return Poll::Ready(None),
            }
        }
    }

    /// Why the hub ended the stream, once it has ended; `None` before, or
    /// when a history read cut it.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::Done(reason) => reason,
            _ => None,
        }
    }

    /// The frames a stream opens with. An event stream: `retry:`, then for
    /// a live subscriber its cursor as a bare `id:`, or else a comment,
    /// which flushes the response head. A WebSocket: a `subscribed` message
    /// carrying the cursor or the answer to the client's.
    fn opening(&self, start: &Start) -> Vec<Bytes> {
        let cursor = match start {
            Start::Live { cursor } => cursor,
            Start::Resume { answer, .. } => answer,
        };
        match self.subscriber.encoding {
            Encoding::WebSocket => vec![crate::websocket::message::subscribed_body(cursor)],
            Encoding::EventStream => {
                let mut opening = Vec::with_capacity(2);
                if let Some(retry) = self.core.config.retry {
                    opening.push(frame::retry(retry));
                }
                opening.push(match start {
                    Start::Live { cursor } => frame::cursor(cursor),
                    Start::Resume { .. } => frame::KEEP_ALIVE,
                });
                opening
            }
        }
    }

    fn log_close(&self, reason: CloseReason) {
        let id = &self.subscriber.identifier;
        tracing::debug!(subscriber = %id, "stream closed: {}", reason.as_str());
    }
}

impl Replay {
    /// The next replayed frames this subscriber listens to and may read,
    /// and whether replay reached the live point with them.
    fn poll_batch(
        &mut self,
        core: &Core,
        subscriber: &Subscriber,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(Vec<Bytes>, bool), HistoryError>> {
        let limit = core.config.replay_batch;
        let events = match &core.log {
            Log::Local(history) => history.read_after(self.after, limit),
            Log::Shared(log) => {
                let reading = self.reading.get_or_insert_with(|| {
                    let (log, after) = (log.clone(), self.after);
                    Box::pin(async move { read_patiently(&*log, after, limit).await })
                });
                let events = ready!(reading.as_mut().poll(cx));
                self.reading = None;
                events
            }
        }?;
        let Some(last) = events.last() else {
            return Poll::Ready(Ok((Vec::new(), true)));
        };
        let done = last.seq >= self.live_after;
        let frames = events
            .iter()
            .take_while(|event| event.seq <= self.live_after)
            .filter(|event| subscriber.listens_to(event) && subscriber.may_receive(event))
            .map(|event| event.frame_for(subscriber.encoding))
            .collect();
        self.after = last.seq.min(self.live_after);
        Poll::Ready(Ok((frames, done)))
    }
}

/// How long a replay waits out a shared log that refuses reads (a failover,
/// a leader election) before it ends the stream for the client to retry.
const REPLAY_PATIENCE: Duration = Duration::from_secs(10);

/// Reads a shared log, trying again while it is unavailable for a moment:
/// ending the stream would only send the client round again.
async fn read_patiently(
    log: &dyn SharedLog,
    after: u64,
    limit: usize,
) -> Result<Vec<SharedEvent>, HistoryError> {
    let deadline = Instant::now() + REPLAY_PATIENCE;
    let mut pause = Duration::from_millis(100);
    loop {
        match log.read_after(after, limit).await {
            Err(HistoryError::Unavailable(_)) if Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            read => return read,
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut index = self.core.index.lock();
        index.remove(&self.subscriber);
        if let Some(presence) = &self.core.presence {
            presence.ended(&self.subscriber);
        }
        drop(index);
        let metrics = &self.core.metrics;
        metrics.subscribers.dec();
        metrics
            .subscriptions
            .dec_by(self.subscriber.matchers.len() as i64);
    }
}

/// An [`EventStream`] as an HTTP response body.
pub struct EventBody {
    stream: EventStream,
}

impl EventBody {
    pub fn new(stream: EventStream) -> EventBody {
        EventBody { stream }
    }
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.stream.poll_batch(cx) {
            // One data frame per batch: hyper then writes the batch at once.
            Poll::Ready(Some(frames)) => Poll::Ready(Some(Ok(Frame::data(concat(frames))))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// One buffer for a batch, for writers that send a batch as one piece.
pub(crate) fn concat(frames: Vec<Bytes>) -> Bytes {
    if frames.len() == 1 {
        return frames.into_iter().next().expect("one frame");
    }
    let mut out = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    for frame in frames {
        out.extend_from_slice(&frame);
    }
    out.freeze()
}
