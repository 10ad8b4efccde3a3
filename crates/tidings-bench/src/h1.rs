//! A minimal HTTP/1.1 client for one SSE subscription.
//!
//! No client crate served here because of per-connection memory: hyper or
//! reqwest keep a read buffer of 8 KiB or more, header maps and a body
//! channel per connection, so at 100,000 subscriptions the load generator
//! would need more memory than some servers under test. This client keeps
//! one fixed buffer (`BUF` bytes) in which it reads the headers, decodes
//! chunked framing in place and parses event lines, so its footprint is that
//! buffer plus the task and socket.

use crate::chunked;
use crate::sse::{Event, Parser};
use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Large enough for the response headers of every server under test and
/// for any event line this tool publishes.
const BUF: usize = 2048;

/// Builds the GET request for a subscription.
pub fn request(authority: &str, path: &str, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
    );
    for (name, value) in extra_headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Sends `request` on `stream` and reads the event stream until the server
/// closes it. `ready` is called once the server has answered 200.
pub async fn subscribe(
    mut stream: TcpStream,
    request: &[u8],
    ready: impl FnOnce(),
    mut on_event: impl FnMut(Event<'_>),
) -> anyhow::Result<()> {
    stream.write_all(request).await?;
    let mut buf = vec![0u8; BUF];
    let (body_start, filled, chunked) = read_head(&mut stream, &mut buf).await?;
    ready();

    let mut decoder = chunked.then(chunked::Decoder::default);
    let mut parser = Parser::default();
    buf.copy_within(body_start..filled, 0);
    let mut raw = filled - body_start;
    let mut pending = 0;
    loop {
        let decoded = match decoder.as_mut() {
            Some(d) => d.decode(&mut buf[pending..pending + raw])?,
            None => raw,
        };
        pending += decoded;
        let used = parser.feed(&buf[..pending], &mut on_event);
        buf.copy_within(used..pending, 0);
        pending -= used;
        if decoder.as_ref().is_some_and(chunked::Decoder::is_done) {
            return Ok(());
        }
        if pending == buf.len() {
            bail!("event line longer than {BUF} bytes");
        }
        raw = stream.read(&mut buf[pending..]).await?;
        if raw == 0 {
            return Ok(());
        }
    }
}

/// Reads and checks the response head; returns where the body starts, how
/// much of `buf` is filled, and whether the body is chunked.
pub async fn read_head(
    stream: &mut TcpStream,
    buf: &mut [u8],
) -> anyhow::Result<(usize, usize, bool)> {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            bail!("connection closed before the response head");
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response
            .parse(&buf[..filled])
            .context("bad response head")?
        {
            httparse::Status::Complete(body_start) => {
                let code = response.code.unwrap_or(0);
                if code != 200 {
                    bail!("subscription answered {code}");
                }
                let chunked = response.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("transfer-encoding")
                        && String::from_utf8_lossy(h.value)
                            .to_ascii_lowercase()
                            .contains("chunked")
                });
                return Ok((body_start, filled, chunked));
            }
            httparse::Status::Partial if filled == buf.len() => {
                bail!("response head longer than {BUF} bytes")
            }
            httparse::Status::Partial => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves `response` to one client, in small writes, then closes.
    async fn serve_once(response: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 512];
            let _ = sock.read(&mut req).await.unwrap();
            for piece in response.chunks(7) {
                sock.write_all(piece).await.unwrap();
                sock.flush().await.unwrap();
            }
        });
        addr
    }

    async fn collect(response: &'static [u8]) -> anyhow::Result<(bool, Vec<String>)> {
        let addr = serve_once(response).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut was_ready = false;
        let mut events = Vec::new();
        let req = request("127.0.0.1", "/events?topic=a", &[]);
        subscribe(
            stream,
            &req,
            || was_ready = true,
            |e| events.push(String::from_utf8_lossy(e.data).into_owned()),
        )
        .await?;
        Ok((was_ready, events))
    }

    #[tokio::test]
    async fn chunked_stream() {
        let (ready, events) = collect(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\n:\n\n\r\n11\r\nid: 1\ndata: a b\n\n\r\n9\r\ndata: c\n\n\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
        assert!(ready);
        assert_eq!(events, vec!["a b", "c"]);
    }

    #[tokio::test]
    async fn close_delimited_stream() {
        let (_, events) = collect(b"HTTP/1.1 200 OK\r\n\r\ndata: x\n\ndata: y\n\n")
            .await
            .unwrap();
        assert_eq!(events, vec!["x", "y"]);
    }

    #[tokio::test]
    async fn refusal_is_an_error() {
        let err = collect(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("403"));
    }
}
