//! WebSocket subscriptions, on tokio-tungstenite: tidings' JSON protocol
//! (a `subscribe` message, then `event` messages), or a server that
//! subscribes by URL alone and sends `{"type":"event","data":...}`.

use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::borrow::Cow;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    r#type: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

/// Opens a WebSocket to `url` on `stream`, sends `subscribe` if given and
/// calls `ready` once subscribed (at its `subscribed` answer, or right after
/// the handshake when there is nothing to send); then passes each event's
/// data to `on_data` until the server closes.
pub async fn subscribe(
    stream: TcpStream,
    url: &str,
    subscribe: Option<&str>,
    headers: &[(&str, &str)],
    ready: impl FnOnce(),
    mut on_data: impl FnMut(&[u8]),
) -> anyhow::Result<()> {
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes())?,
            value.parse()?,
        );
    }
    // A small read buffer: the tool holds thousands of these.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let mut ready = Some(ready);
    match subscribe {
        Some(message) => ws.send(Message::text(message)).await?,
        None => ready.take().map_or((), |ready| ready()),
    }
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let incoming: Incoming<'_> = serde_json::from_str(&text)?;
        match &*incoming.r#type {
            "event" => on_data(incoming.data.as_deref().unwrap_or("").as_bytes()),
            "subscribed" => ready.take().map_or((), |ready| ready()),
            "error" => bail!("subscription refused: {text}"),
            _ => {}
        }
    }
    Ok(())
}
