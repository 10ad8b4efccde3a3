//! The WebSocket message protocol: JSON text messages, one per WebSocket
//! message, each naming its `type` (documented in `docs/websocket.md`).
//!
//! Hub messages about a subscription are built in two parts: a body shared
//! by every socket (an event is encoded once, like its SSE frame) and a
//! prefix naming the socket's own subscription, joined when written.

use crate::event::Event;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What a client sends. Unknown fields are ignored, as in a publish form;
/// an unknown `type` closes the socket.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The token, for clients that cannot send headers (browsers).
    Auth {
        token: String,
    },
    Subscribe {
        subscription: String,
        #[serde(default, rename = "match")]
        exact: Strings,
        #[serde(default)]
        match_urlpattern: Strings,
        /// Draft-07 topic selectors, on a hub serving that generation.
        #[serde(default)]
        topic: Strings,
        /// A resume point: an event id, or `earliest`.
        last_event_id: Option<String>,
    },
    Unsubscribe {
        subscription: String,
    },
    Publish {
        #[serde(rename = "ref")]
        reference: Option<String>,
        #[serde(default)]
        topic: Strings,
        #[serde(default)]
        data: String,
        #[serde(default)]
        private: bool,
        id: Option<String>,
        event: Option<String>,
        retry: Option<u64>,
    },
}

/// One string or a list of them.
#[derive(Debug, Default, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct Strings(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Strings {
    fn from(value: OneOrMany) -> Strings {
        match value {
            OneOrMany::One(one) => Strings(vec![one]),
            OneOrMany::Many(many) => Strings(many),
        }
    }
}

/// What a request's answer refers to: a subscription or a publication.
pub enum Subject<'a> {
    Subscription(&'a str),
    Publication(Option<&'a str>),
}

/// The body of an event message, from the event's SSE frame: `data` is the
/// lines of the frame joined by `\n`, exactly what an `EventSource` gets.
pub fn event_body(event: &Event) -> Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        r#type: &'static str,
        id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        event: Option<&'a str>,
        topics: &'a [Box<str>],
        data: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry: Option<u64>,
    }
    let frame = std::str::from_utf8(&event.frame).unwrap_or_default();
    let mut body = Body {
        r#type: "event",
        id: &event.id,
        event: None,
        topics: &event.topics,
        data: String::new(),
        retry: None,
    };
    let mut lines = 0;
    for line in frame.lines() {
        if let Some(value) = line.strip_prefix("data: ") {
            if lines > 0 {
                body.data.push('\n');
            }
            body.data.push_str(value);
            lines += 1;
        } else if let Some(value) = line.strip_prefix("event: ") {
            body.event = Some(value);
        } else if let Some(value) = line.strip_prefix("retry: ") {
            body.retry = value.parse().ok();
        }
    }
    tail(serde_json::to_vec(&body))
}

/// The body of `subscribed`: where the subscription stands.
pub fn subscribed_body(last_event_id: &str) -> Bytes {
    tail(serde_json::to_vec(
        &json!({"type": "subscribed", "last_event_id": last_event_id}),
    ))
}

/// The prefix that makes a body a message about `subscription`.
pub fn subscription_prefix(subscription: &str) -> Box<str> {
    let name = serde_json::to_string(subscription).unwrap_or_default();
    format!("{{\"subscription\":{name},").into()
}

pub fn unsubscribed(subscription: &str) -> String {
    json!({"type": "unsubscribed", "subscription": subscription}).to_string()
}

pub fn ack(reference: Option<&str>, id: &str) -> String {
    let mut message = json!({"type": "ack", "id": id});
    if let Some(reference) = reference {
        message["ref"] = reference.into();
    }
    message.to_string()
}

/// An answer refusing a request, with the status and detail the HTTP API
/// would give.
pub fn error(subject: Subject<'_>, status: u16, detail: &str) -> String {
    let mut message = json!({"type": "error", "status": status, "detail": detail});
    match subject {
        Subject::Subscription(name) => message["subscription"] = name.into(),
        Subject::Publication(Some(reference)) => message["ref"] = reference.into(),
        Subject::Publication(None) => {}
    }
    message.to_string()
}

/// A serialized object without its opening brace, ready for a prefix.
fn tail(serialized: serde_json::Result<Vec<u8>>) -> Bytes {
    let mut bytes = Bytes::from(serialized.unwrap_or_else(|_| b"{}".to_vec()));
    let _ = bytes.split_to(1);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Update;

    fn message(update: Update) -> serde_json::Value {
        let event = Event::from_update(1, "urn:uuid:1".into(), &update);
        let body = event_body(&event);
        let mut message = subscription_prefix("s\"1").into_string().into_bytes();
        message.extend_from_slice(&body);
        serde_json::from_slice(&message).unwrap()
    }

    #[test]
    fn an_event_carries_every_field_and_its_subscription() {
        let update = Update {
            topics: vec!["a".into(), "b".into()],
            kind: Some("k".into()),
            retry: Some(10),
            ..Update::new("", "x\ny")
        };
        assert_eq!(
            message(update),
            json!({"subscription": "s\"1", "type": "event", "id": "urn:uuid:1",
                   "event": "k", "topics": ["a", "b"], "data": "x\ny", "retry": 10})
        );
    }

    #[test]
    fn data_reads_as_an_event_source_reads_it() {
        let update = Update::new("t", "one\r\ntwo\rthree\n");
        assert_eq!(message(update)["data"], "one\ntwo\nthree\n");
        assert_eq!(message(Update::new("t", ""))["data"], "");
        assert_eq!(
            message(Update::new("t", "data: é\u{2028}"))["data"],
            "data: é\u{2028}"
        );
    }

    #[test]
    fn client_messages_take_one_string_or_many() {
        let parsed: ClientMessage = serde_json::from_str(
            r#"{"type":"subscribe","subscription":"s","match":"a","match_urlpattern":["b","c"]}"#,
        )
        .unwrap();
        let ClientMessage::Subscribe {
            exact,
            match_urlpattern,
            ..
        } = parsed
        else {
            panic!("not a subscribe");
        };
        assert_eq!(exact.0, ["a"]);
        assert_eq!(match_urlpattern.0, ["b", "c"]);
        let unknown = serde_json::from_str::<ClientMessage>(r#"{"type":"shout"}"#);
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("unknown variant `shout`"));
    }
}
