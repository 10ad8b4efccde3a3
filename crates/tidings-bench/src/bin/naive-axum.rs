//! The SSE hub a Rust developer would write by hand in an afternoon: one
//! `tokio::sync::broadcast` channel per topic in a `Mutex<HashMap>`, and
//! axum's `Sse` response. It is a reference point for the benchmarks, not
//! a server to deploy: a subscriber that falls more than `CAPACITY` events
//! behind silently misses events, and empty topics are never removed.
//!
//! GET /events?topic=X streams; POST /publish?topic=X sends the body to it.
//! GET /ws?topic=X is the same broadcast over axum's WebSocket, with its
//! default settings, each event sent as `{"type":"event","data":...}`.
//! Serves HTTP/1.1 and h2c on the same port.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

const CAPACITY: usize = 1024;

type Topics = Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>;

#[derive(Deserialize)]
struct TopicParam {
    topic: String,
}

fn channel(topics: &Topics, topic: String) -> broadcast::Sender<String> {
    let mut topics = topics.lock().unwrap_or_else(|e| e.into_inner());
    topics
        .entry(topic)
        .or_insert_with(|| broadcast::channel(CAPACITY).0)
        .clone()
}

async fn events(
    State(topics): State<Topics>,
    Query(q): Query<TopicParam>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = channel(&topics, q.topic).subscribe();
    let stream = stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(data) => return Some((Ok(Event::default().data(data)), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn websocket(
    State(topics): State<Topics>,
    Query(q): Query<TopicParam>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let rx = channel(&topics, q.topic).subscribe();
    upgrade.on_upgrade(|socket| forward(socket, rx))
}

async fn forward(mut socket: WebSocket, mut rx: broadcast::Receiver<String>) {
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Ok(data) => {
                    let message = serde_json::json!({"type": "event", "data": data}).to_string();
                    if socket.send(Message::Text(message.into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn publish(State(topics): State<Topics>, Query(q): Query<TopicParam>, body: String) {
    // An error only means nobody is listening.
    let _ = channel(&topics, q.topic).send(body);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_string());
    let app = Router::new()
        .route("/events", get(events))
        .route("/publish", post(publish))
        .route("/ws", get(websocket))
        .with_state(Topics::default());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // The bound address, so that port 0 can be used and still found.
    println!("naive-axum listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
