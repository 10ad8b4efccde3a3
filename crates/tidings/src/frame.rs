//! The `text/event-stream` encoding of events.
//!
//! Written by hand: it is the product's hot path and a few lines long. Each
//! event is encoded once into shared bytes; every subscriber gets a clone of
//! the same buffer.

use crate::event::Update;
use bytes::{BufMut, Bytes, BytesMut};

/// A comment that keeps idle connections open through intermediaries.
pub const KEEP_ALIVE: Bytes = Bytes::from_static(b":\n\n");

/// How a subscriber's frames are encoded: one queue and one dispatch serve
/// every transport, each event encoded once per encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `text/event-stream` frames (HTTP/1.1, HTTP/2, HTTP/3).
    EventStream,
    /// The bodies of WebSocket JSON messages (`crate::websocket::message`).
    WebSocket,
}

/// The frame that keeps an idle connection open. On a WebSocket it is
/// empty, which the socket's writer sends as a ping.
pub fn keep_alive(encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::EventStream => KEEP_ALIVE,
        Encoding::WebSocket => Bytes::new(),
    }
}

/// Encodes an event. `id`, `kind` and topics were checked for line breaks
/// at validation; `data` is split into one `data:` line per line, which is
/// what keeps a value containing `\nid:` from injecting a field.
pub fn encode(id: &str, update: &Update) -> Bytes {
    let mut out = BytesMut::with_capacity(update.data.len() + id.len() + 32);
    out.put_slice(b"id: ");
    out.put_slice(id.as_bytes());
    out.put_u8(b'\n');
    if let Some(kind) = &update.kind {
        out.put_slice(b"event: ");
        out.put_slice(kind.as_bytes());
        out.put_u8(b'\n');
    }
    if let Some(retry) = update.retry {
        out.put_slice(format!("retry: {retry}\n").as_bytes());
    }
    for line in lines(&update.data) {
        out.put_slice(b"data: ");
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// A `retry:` field on its own, sent when a stream opens.
pub fn retry(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

/// An `id:` field on its own: it moves the client's last event id without
/// dispatching an event.
pub fn cursor(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\n\n"))
}

/// Splits on CRLF, CR or LF, as SSE parsers do. An empty value is one empty
/// line, so the event still fires in `EventSource`.
fn lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(text)
            }
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[at + skip..]);
                Some(&text[..at])
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(update: Update) -> String {
        String::from_utf8(encode("urn:uuid:1", &update).to_vec()).unwrap()
    }

    #[test]
    fn minimal_event() {
        assert_eq!(
            frame(Update::new("t", "hello")),
            "id: urn:uuid:1\ndata: hello\n\n"
        );
    }

    #[test]
    fn every_field() {
        let update = Update {
            kind: Some("book".into()),
            retry: Some(1500),
            ..Update::new("t", "a")
        };
        assert_eq!(
            frame(update),
            "id: urn:uuid:1\nevent: book\nretry: 1500\ndata: a\n\n"
        );
    }

    #[test]
    fn splits_data_on_every_line_break() {
        let update = Update::new("t", "one\ntwo\r\nthree\rfour\n");
        assert_eq!(
            frame(update),
            "id: urn:uuid:1\ndata: one\ndata: two\ndata: three\ndata: four\ndata: \n\n"
        );
    }

    #[test]
    fn injection_attempts_stay_data() {
        let update = Update::new("t", "x\nid: forged\nevent: mercure\n\ndata: y");
        assert_eq!(
            frame(update),
            "id: urn:uuid:1\ndata: x\ndata: id: forged\ndata: event: mercure\ndata: \ndata: data: y\n\n"
        );
    }

    #[test]
    fn empty_data_is_one_empty_line() {
        assert_eq!(frame(Update::new("t", "")), "id: urn:uuid:1\ndata: \n\n");
    }
}
