//! One WebSocket connection: its requests, its subscriptions and its
//! publications, served by one task.
//!
//! Each subscription is a subscriber of the hub like an event stream's,
//! with its own bounded queue, fed by the same dispatch and swept by the
//! same sweeper; the socket's task takes every queued batch and writes it
//! with one flush. A client that stops reading overflows a queue and is
//! closed as slow; the token's expiry and the hub's shutdown close it too.

use super::message::{self, ClientMessage, Subject};
use super::wire::{Incoming, Outgoing, ReadError, Wire, NO_STATUS};
use crate::auth::{Grants, Role};
use crate::event::Update;
use crate::frame::Encoding;
use crate::http::HubHttp;
use crate::hub::{SubscribeError, SubscribeRequest};
use crate::matcher::MatchKind;
use crate::outbox::CloseReason;
use crate::per_ip::IpSlot;
use crate::publish_rate::Publisher;
use crate::stream::EventStream;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};

/// Subscriptions one socket may hold; each counts as a subscriber
/// connection towards `--max-connections`.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// Publications of one socket waiting for the log at once; past it the
/// socket's next message is not read until one is answered.
const MAX_IN_FLIGHT: usize = 64;
/// Longest subscription name or publication reference, in bytes.
const MAX_NAME: usize = 256;
/// How long the close handshake may take before the socket is dropped.
const CLOSING: Duration = Duration::from_secs(1);

/// What the socket may do, from its token.
pub enum Access {
    /// No token yet on a hub that requires one: the first message must be
    /// `auth`.
    Pending,
    Granted {
        /// `None`: anonymous, public updates only.
        reader: Option<Arc<Grants>>,
        /// `None`: may not publish.
        publisher: Option<Arc<Grants>>,
    },
}

impl Access {
    /// Verifies `token` for both roles; refused only when it is valid for
    /// neither.
    pub fn verify(http: &HubHttp, token: &str) -> Option<Access> {
        let auth = http.hub.authorizer();
        let reader = auth.verify(token, Role::Subscriber).ok();
        let publisher = auth.verify(token, Role::Publisher).ok();
        (reader.is_some() || publisher.is_some()).then_some(Access::Granted { reader, publisher })
    }
}

struct Subscription {
    /// `{"subscription":"<name>",`, joined to every body; also what names
    /// the subscription here.
    prefix: Box<str>,
    stream: EventStream,
}

/// How the socket ends: with a close frame, or dropped (the client is
/// gone, or closed first and has been answered).
type Ending = Option<(u16, String)>;

pub struct Session<S> {
    ws: Wire<S>,
    http: Arc<HubHttp>,
    access: Access,
    /// The client's address, for its publish rate.
    client: Option<IpAddr>,
    /// Its count under `--max-connections-per-ip`, held while it is open.
    _slot: Option<IpSlot>,
    subscriptions: Vec<Subscription>,
    /// Publications waiting for the log, with their answers; made at the
    /// first one, so that a socket that only listens holds nothing here.
    publishing: Option<FuturesUnordered<BoxFuture<'static, String>>>,
}

/// What a read from the socket brought.
enum Received {
    Text(String),
    /// A ping, to be answered with its payload.
    Ping(Vec<u8>),
    /// A pong: nothing to serve.
    Pong,
}

/// What woke the session.
enum Step {
    Message(Result<Incoming, ReadError>),
    Frames(Outgoing),
    Ended(Ending),
    Answer(String),
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub fn new(
        ws: Wire<S>,
        http: Arc<HubHttp>,
        access: Access,
        client: Option<IpAddr>,
        slot: Option<IpSlot>,
    ) -> Session<S> {
        Session {
            ws,
            http,
            access,
            client,
            _slot: slot,
            subscriptions: Vec::new(),
            publishing: None,
        }
    }

    /// Serves the socket until it closes. Takes `&mut self`: a future that
    /// owns its argument holds it twice, and this one lives as long as the
    /// connection.
    pub async fn run(&mut self) {
        // The futures of rare steps are boxed, here and in `serve`: a
        // socket's task is sized for its largest state, and it spends its
        // life in the smallest one, waiting.
        let ending = match Box::pin(self.authenticate()).await {
            Ok(()) => self.serve().await,
            Err(ending) => ending,
        };
        // Subscriptions end before the close is sent: nothing is dispatched
        // to a socket that is going.
        self.subscriptions.clear();
        if let Some((code, reason)) = ending {
            tracing::debug!(code, %reason, "closing a WebSocket");
            let mut frames = Outgoing::default();
            frames.close(code, &truncated(reason));
            let _ = Box::pin(tokio::time::timeout(CLOSING, self.ws.close(&frames))).await;
        }
    }

    /// Waits for the `auth` message on a socket that came without a token;
    /// like a request head, it must come within `--head-timeout`.
    async fn authenticate(&mut self) -> Result<(), Ending> {
        if !matches!(self.access, Access::Pending) {
            return Ok(());
        }
        let limit = self.http.hub.config().limits.head_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let text = loop {
            let incoming = poll_fn(|cx| self.ws.poll_incoming(cx));
            let Ok(incoming) = tokio::time::timeout_at(deadline, incoming).await else {
                return Err(close(4401, "no access token in time"));
            };
            match received(incoming)? {
                Received::Text(text) => break text,
                Received::Ping(payload) => self.pong(&payload).await?,
                Received::Pong => {}
            }
        };
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Auth { token }) => match Access::verify(&self.http, &token) {
                Some(access) => {
                    self.access = access;
                    Ok(())
                }
                None => Err(close(4401, "the access token is not valid")),
            },
            Ok(_) => Err(close(
                4401,
                "this hub requires an access token: send `auth` first",
            )),
            Err(error) => Err(close(4400, format!("not a message: {error}"))),
        }
    }

    async fn serve(&mut self) -> Ending {
        loop {
            let in_flight = self.publishing.as_ref().map_or(0, FuturesUnordered::len);
            let publishing = &mut self.publishing;
            let step = tokio::select! {
                incoming = poll_fn(|cx| self.ws.poll_incoming(cx)), if in_flight < MAX_IN_FLIGHT => {
                    Step::Message(incoming)
                }
                step = poll_fn(|cx| poll_subscriptions(&mut self.subscriptions, cx)) => step,
                answer = poll_fn(|cx| poll_answer(publishing, cx)), if in_flight > 0 => {
                    Step::Answer(answer)
                }
            };
            let outcome = match step {
                Step::Message(incoming) => match received(incoming) {
                    Ok(Received::Text(text)) => Box::pin(self.handle(&text)).await,
                    Ok(Received::Ping(payload)) => Box::pin(self.pong(&payload)).await,
                    Ok(Received::Pong) => Ok(()),
                    Err(ending) => return ending,
                },
                Step::Frames(frames) => Box::pin(self.send(frames)).await,
                Step::Ended(ending) => return ending,
                Step::Answer(answer) => Box::pin(self.send_text(&answer)).await,
            };
            if let Err(ending) = outcome {
                return ending;
            }
        }
    }

    /// Serves one request.
    async fn handle(&mut self, text: &str) -> Result<(), Ending> {
        let request = serde_json::from_str::<ClientMessage>(text)
            .map_err(|error| close(4400, format!("not a message: {error}")))?;
        match request {
            ClientMessage::Auth { .. } => {
                let answer = message::error(
                    Subject::Publication(None),
                    400,
                    "this socket is already authenticated",
                );
                self.send_text(&answer).await
            }
            ClientMessage::Subscribe {
                subscription,
                exact,
                match_urlpattern,
                topic,
                last_event_id,
            } => {
                let mut matchers = Vec::new();
                matchers.extend(exact.0.into_iter().map(|m| (MatchKind::Exact, m)));
                let patterns = match_urlpattern.0.into_iter();
                matchers.extend(patterns.map(|m| (MatchKind::UrlPattern, m)));
                if !topic.0.is_empty() && !self.http.hub.config().legacy {
                    let detail = "`topic` selectors are draft-07, which this hub does not serve";
                    return self
                        .refuse(Subject::Subscription(&subscription), 400, detail)
                        .await;
                }
                matchers.extend(topic.0.into_iter().map(|m| (MatchKind::Selector, m)));
                self.subscribe(subscription, matchers, last_event_id).await
            }
            ClientMessage::Unsubscribe { subscription } => {
                let prefix = message::subscription_prefix(&subscription);
                let found = self.subscriptions.iter().position(|s| s.prefix == prefix);
                let answer = match found {
                    Some(at) => {
                        self.subscriptions.swap_remove(at);
                        message::unsubscribed(&subscription)
                    }
                    None => message::error(
                        Subject::Subscription(&subscription),
                        404,
                        &format!("no subscription `{subscription}` on this socket"),
                    ),
                };
                self.send_text(&answer).await
            }
            ClientMessage::Publish {
                reference,
                topic,
                data,
                private,
                id,
                event,
                retry,
            } => {
                let update = Update {
                    topics: topic.0,
                    data,
                    private,
                    id,
                    kind: event,
                    retry,
                };
                self.publish(reference, update).await
            }
        }
    }

    async fn subscribe(
        &mut self,
        name: String,
        matchers: Vec<(MatchKind, String)>,
        cursor: Option<String>,
    ) -> Result<(), Ending> {
        let subject = Subject::Subscription(&name);
        if name.len() > MAX_NAME {
            let detail = format!("a subscription name exceeds {MAX_NAME} bytes");
            return self.refuse(subject, 400, &detail).await;
        }
        let prefix = message::subscription_prefix(&name);
        if self.subscriptions.iter().any(|s| s.prefix == prefix) {
            let detail = format!("this socket already has a subscription `{name}`");
            return self.refuse(subject, 409, &detail).await;
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            let detail = format!("a socket holds at most {MAX_SUBSCRIPTIONS} subscriptions");
            return self.refuse(subject, 400, &detail).await;
        }
        let Access::Granted { reader, .. } = &self.access else {
            return Err(close(4401, "no access token"));
        };
        if reader.is_none() && !self.http.hub.config().anonymous {
            let detail = "the access token does not allow subscribing";
            return self.refuse(subject, 401, detail).await;
        }
        let request = SubscribeRequest {
            matchers,
            cursor,
            grants: reader.clone(),
        };
        let hub = &self.http.hub;
        match hub.subscribe_encoded(request, Encoding::WebSocket).await {
            Ok(stream) => {
                // One more at a time: most sockets hold one or two.
                self.subscriptions.reserve_exact(1);
                self.subscriptions.push(Subscription { prefix, stream });
                Ok(())
            }
            Err(SubscribeError::ShuttingDown) => Err(close(1001, CloseReason::Shutdown.as_str())),
            Err(error) => {
                let reply = crate::http::subscribe::refusal(error);
                let detail = reply.detail();
                self.refuse(subject, reply.status.as_u16(), &detail).await
            }
        }
    }

    /// Checks a publication and sends it on its way to the log; its answer
    /// comes when the log has it, while the socket goes on.
    async fn publish(&mut self, reference: Option<String>, update: Update) -> Result<(), Ending> {
        let subject = Subject::Publication(reference.as_deref());
        if reference.as_ref().is_some_and(|r| r.len() > MAX_NAME) {
            let detail = format!("a publication reference exceeds {MAX_NAME} bytes");
            return self.refuse(subject, 400, &detail).await;
        }
        let Access::Granted { publisher, .. } = &self.access else {
            return Err(close(4401, "no access token"));
        };
        let Some(grants) = publisher.clone() else {
            let detail = "publishing requires an access token that allows it";
            return self.refuse(subject, 401, detail).await;
        };
        if grants.expires_at.is_some_and(|at| at <= SystemTime::now()) {
            return Err(close(4001, CloseReason::Expired.as_str()));
        }
        if let Err(reply) = self.admit(&update) {
            return self
                .refuse(subject, reply.status.as_u16(), &reply.detail())
                .await;
        }
        let http = self.http.clone();
        let publishing = self.publishing.get_or_insert_with(FuturesUnordered::new);
        publishing.push(Box::pin(async move {
            let subject = Subject::Publication(reference.as_deref());
            match crate::http::publish::publish_granted(&http, &grants, update).await {
                Ok(id) => message::ack(reference.as_deref(), &id),
                Err(reply) => message::error(subject, reply.status.as_u16(), &reply.detail()),
            }
        }));
        Ok(())
    }

    /// The client address's publish rate, then the publication's rules.
    #[allow(clippy::result_large_err)] // the refusal is the rare case
    fn admit(&self, update: &Update) -> Result<(), crate::http::Reply> {
        let http = &self.http;
        if let Some(client) = self.client {
            let publisher = Publisher::address(client);
            http.admission.publish(publisher, http.hub.metrics())?;
        }
        crate::publish::check(update, http.hub.config()).map_err(crate::http::publish::rejection)
    }

    async fn refuse(
        &mut self,
        subject: Subject<'_>,
        status: u16,
        detail: &str,
    ) -> Result<(), Ending> {
        let answer = message::error(subject, status, detail);
        self.send_text(&answer).await
    }

    async fn send_text(&mut self, text: &str) -> Result<(), Ending> {
        let mut frames = Outgoing::default();
        frames.text(&[text.as_bytes()]);
        self.send(frames).await
    }

    async fn pong(&mut self, payload: &[u8]) -> Result<(), Ending> {
        let mut frames = Outgoing::default();
        frames.pong(payload);
        self.send(frames).await
    }

    /// Writes `frames` with one flush. A client that stops reading
    /// meanwhile is closed once a queue overflows, not waited for.
    async fn send(&mut self, frames: Outgoing) -> Result<(), Ending> {
        // Borrowed mutably: a stream is not `Sync`, and a shared borrow held
        // across the await would make the session's future not `Send`.
        let subscriptions = &mut self.subscriptions;
        tokio::select! {
            // A failed write: the client is gone, nothing to say.
            sent = self.ws.write(&frames) => sent.map_err(|_| None),
            () = poll_fn(move |cx| poll_overflowed(subscriptions, cx)) => {
                Err(close(4000, CloseReason::Slow.as_str()))
            }
        }
    }
}

/// Every batch queued for the socket's subscriptions, as messages; or how
/// the socket ends, when the hub ended one of them.
fn poll_subscriptions(subscriptions: &mut [Subscription], cx: &mut Context<'_>) -> Poll<Step> {
    let mut frames = Outgoing::default();
    for subscription in subscriptions.iter_mut() {
        match subscription.stream.poll_batch(cx) {
            Poll::Ready(Some(batch)) => {
                for body in batch.iter() {
                    // An empty frame is a keep-alive.
                    match body.is_empty() {
                        true => frames.ping(),
                        false => frames.text(&[subscription.prefix.as_bytes(), body]),
                    }
                }
            }
            Poll::Ready(None) => return Poll::Ready(Step::Ended(ended(&subscription.stream))),
            Poll::Pending => {}
        }
    }
    match frames.is_empty() {
        true => Poll::Pending,
        false => Poll::Ready(Step::Frames(frames)),
    }
}

/// The next answer to a publication.
fn poll_answer(
    publishing: &mut Option<FuturesUnordered<BoxFuture<'static, String>>>,
    cx: &mut Context<'_>,
) -> Poll<String> {
    match publishing
        .as_mut()
        .map(|answers| answers.poll_next_unpin(cx))
    {
        Some(Poll::Ready(Some(answer))) => Poll::Ready(answer),
        _ => Poll::Pending,
    }
}

fn poll_overflowed(subscriptions: &[Subscription], cx: &mut Context<'_>) -> Poll<()> {
    for subscription in subscriptions {
        if subscription.stream.outbox().poll_overflowed(cx).is_ready() {
            return Poll::Ready(());
        }
    }
    Poll::Pending
}

/// The close for a subscription the hub ended.
fn ended(stream: &EventStream) -> Ending {
    let Some(reason) = stream.close_reason() else {
        return close(1011, "reading the history failed");
    };
    let code = match reason {
        CloseReason::Slow => 4000,
        CloseReason::Expired => 4001,
        CloseReason::Behind => 4002,
        CloseReason::Shutdown => 1001,
    };
    close(code, reason.as_str())
}

/// What a read brought, or how the socket ends.
fn received(incoming: Result<Incoming, ReadError>) -> Result<Received, Ending> {
    match incoming {
        Ok(Incoming::Text(text)) => Ok(Received::Text(text)),
        Ok(Incoming::Ping(payload)) => Ok(Received::Ping(payload)),
        Ok(Incoming::Pong) => Ok(Received::Pong),
        Ok(Incoming::Binary) => Err(close(1003, "send JSON text messages")),
        // The client's close is answered with its own code.
        Ok(Incoming::Close(code)) => Err(close(code.unwrap_or(NO_STATUS), "")),
        Ok(Incoming::Gone) => Err(None),
        Err(ReadError::Io(error)) => {
            tracing::debug!(%error, "a WebSocket read failed");
            Err(None)
        }
        Err(ReadError::Violation(code, reason)) => Err(close(code, reason)),
    }
}

fn close(code: u16, reason: impl Into<String>) -> Ending {
    Some((code, reason.into()))
}

/// A close reason fits a control frame: at most 123 bytes.
fn truncated(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 120;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str("...");
    }
    reason
}
