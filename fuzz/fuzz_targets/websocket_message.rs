//! The WebSocket message protocol (`websocket/message.rs`): any text a
//! client sends is read without a panic, and any event the hub accepts
//! reaches a WebSocket subscriber as JSON carrying the same id, type,
//! topics, data and retry, under the subscriber's own subscription name.
//!
//! Data comes back as `EventSource` gives it: line breaks (`\r\n`, `\r`)
//! read as `\n`, the same on every transport. Updates the hub refuses at
//! publication (`publish::check`) never reach the encoder and are skipped.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tidings::fuzzing::{websocket_event, websocket_request};
use tidings::publish::check;
use tidings::{HubConfig, Update};
use url::Url;

#[derive(Debug, Arbitrary)]
struct Input {
    /// What a client sends.
    request: String,
    subscription: String,
    id: String,
    kind: Option<String>,
    topics: Vec<String>,
    data: String,
    retry: Option<u64>,
}

fuzz_target!(|input: Input| {
    let _ = websocket_request(&input.request);

    let config = HubConfig::new(
        Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
        Default::default(),
    );
    let update = Update {
        topics: input.topics,
        data: input.data,
        id: Some(input.id),
        kind: input.kind,
        retry: input.retry,
        private: false,
    };
    if check(&update, &config).is_err() {
        return;
    }
    let id = update.id.as_deref().unwrap();
    let message = websocket_event(id, &update, &input.subscription);
    let parsed: serde_json::Value = serde_json::from_str(&message).expect("valid JSON");
    assert_eq!(parsed["type"], "event");
    assert_eq!(parsed["subscription"], input.subscription.as_str());
    assert_eq!(parsed["id"], id);
    assert_eq!(parsed["topics"], serde_json::json!(update.topics));
    let data = update.data.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(parsed["data"], data.as_str());
    match &update.kind {
        Some(kind) => assert_eq!(parsed["event"], kind.as_str()),
        None => assert!(parsed.get("event").is_none()),
    }
    assert_eq!(parsed["retry"].as_u64(), update.retry);
});
