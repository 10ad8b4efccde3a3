//! SSE subscriptions multiplexed over HTTP/2 connections (h2c, prior
//! knowledge), using the `h2` crate.
//!
//! Here a crate is the right tool: the per-stream state lives in the shared
//! connection, so there is no per-socket buffer to save.

use crate::sse::{Event, Parser};
use anyhow::{bail, Context};
use bytes::Bytes;
use h2::client::SendRequest;
use std::future::Future;
use tokio::net::TcpStream;

/// Window sizes large enough that a hundred busy streams per connection do
/// not wait on WINDOW_UPDATE round trips.
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Performs the HTTP/2 handshake. The returned future drives the
/// connection and must be spawned.
pub async fn connect(
    stream: TcpStream,
) -> anyhow::Result<(SendRequest<Bytes>, impl Future<Output = ()>)> {
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake(stream)
        .await
        .context("HTTP/2 handshake")?;
    Ok((send, async move {
        let _ = connection.await;
    }))
}

/// Opens one subscription stream on `send` and reads it until the server
/// ends it. `ready` is called once the server has answered 200.
pub async fn subscribe(
    send: SendRequest<Bytes>,
    url: &str,
    extra_headers: &[(&str, &str)],
    ready: impl FnOnce(),
    mut on_event: impl FnMut(Event<'_>),
) -> anyhow::Result<()> {
    let mut builder = http::Request::get(url)
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    for (name, value) in extra_headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(())?;
    let mut send = send.ready().await?;
    let (response, _) = send.send_request(request, true)?;
    let response = response.await?;
    if response.status() != http::StatusCode::OK {
        bail!("subscription answered {}", response.status());
    }
    ready();

    let mut body = response.into_body();
    let mut parser = Parser::default();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(data) = body.data().await {
        let data = data?;
        let _ = body.flow_control().release_capacity(data.len());
        if pending.is_empty() {
            let used = parser.feed(&data, &mut on_event);
            pending.extend_from_slice(&data[used..]);
        } else {
            pending.extend_from_slice(&data);
            let used = parser.feed(&pending, &mut on_event);
            pending.drain(..used);
        }
    }
    Ok(())
}
