//! The SSE frame encoder (`frame.rs`) against an independent parser,
//! written here from the WHATWG HTML standard's "interpreting an event
//! stream" (section 9.2.6), fed the stream in pieces the fuzzer chooses.
//!
//! A stream as the hub writes it: the opening `retry:` frame, a cursor
//! frame, then events. Every event must parse back to the same id, type,
//! data and retry.
//!
//! What the encoder may refuse or normalize, and how it is treated here:
//! - ids and types the hub refuses at publication (control and format
//!   characters, an empty id, ids starting with `#`, the `mercure` type:
//!   `publish::check`) never reach the encoder, so events carrying them
//!   are dropped from the input rather than expected to round-trip;
//! - line breaks in data (`\r\n`, `\r`, `\n`) all come back as `\n`: SSE
//!   has no way to tell them apart, and `EventSource` gives `\n`;
//! - an empty type comes back as `message`, as it does in `EventSource`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tidings::fuzzing::{sse_cursor, sse_event, sse_retry};
use tidings::publish::check;
use tidings::{HubConfig, Update};
use url::Url;

#[derive(Debug, Arbitrary)]
struct Input {
    opening_retry: u64,
    cursor: String,
    events: Vec<Event>,
    /// Lengths of the pieces the stream arrives in.
    pieces: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Event {
    id: String,
    kind: Option<String>,
    data: String,
    retry: Option<u64>,
}

/// An event as `EventSource` dispatches it.
#[derive(Debug, PartialEq)]
struct Dispatched {
    last_event_id: String,
    kind: String,
    data: String,
    retry: Option<u64>,
}

fuzz_target!(|input: Input| {
    let config = HubConfig::new(
        Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
        Default::default(),
    );
    let mut stream = sse_retry(input.opening_retry).to_vec();
    let mut retry = Some(input.opening_retry);
    let mut last_event_id = String::new();
    if accepted_id(&input.cursor, &config) {
        stream.extend_from_slice(&sse_cursor(&input.cursor));
        last_event_id.clone_from(&input.cursor);
    }
    let mut expected = Vec::new();
    for event in input.events {
        let update = Update {
            topics: vec!["urn:example:topic".into()],
            data: event.data,
            id: Some(event.id),
            kind: event.kind,
            retry: event.retry,
            private: false,
        };
        if check(&update, &config).is_err() {
            continue;
        }
        let id = update.id.as_deref().unwrap();
        stream.extend_from_slice(&sse_event(id, &update));
        retry = update.retry.or(retry);
        expected.push(Dispatched {
            last_event_id: id.to_string(),
            kind: update
                .kind
                .filter(|kind| !kind.is_empty())
                .unwrap_or("message".into()),
            data: update.data.replace("\r\n", "\n").replace('\r', "\n"),
            retry,
        });
        last_event_id = id.to_string();
    }

    let mut parser = Parser::default();
    let mut rest = &stream[..];
    for length in input.pieces {
        let (piece, after) = rest.split_at(usize::from(length).min(rest.len()));
        parser.feed(piece);
        rest = after;
    }
    parser.feed(rest);
    assert_eq!(parser.dispatched, expected);
    assert_eq!(parser.last_event_id, last_event_id);
    assert!(parser.line.is_empty(), "the stream ends mid-line");
});

fn accepted_id(id: &str, config: &HubConfig) -> bool {
    let update = Update {
        id: Some(id.to_string()),
        ..Update::new("urn:example:topic", "")
    };
    check(&update, config).is_ok()
}

/// An event stream parser, as the WHATWG standard describes it.
#[derive(Default)]
struct Parser {
    /// The current line, not yet terminated.
    line: Vec<u8>,
    /// The previous byte was a CR, so an LF right now ends no line.
    after_cr: bool,
    started: bool,
    data: String,
    kind: String,
    last_event_id: String,
    retry: Option<u64>,
    dispatched: Vec<Dispatched>,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\n' => self.end_line(),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line();
                }
                other => self.line.push(other),
            }
        }
    }

    fn end_line(&mut self) {
        let bytes = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&bytes).into_owned();
        // One byte order mark is skipped at the start of the stream.
        if !std::mem::replace(&mut self.started, true) && line.starts_with('\u{feff}') {
            line.remove(0);
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.kind = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_event_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let kind = std::mem::take(&mut self.kind);
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return;
        }
        data.pop(); // the last line's LF
        self.dispatched.push(Dispatched {
            last_event_id: self.last_event_id.clone(),
            kind: if kind.is_empty() {
                "message".into()
            } else {
                kind
            },
            data,
            retry: self.retry,
        });
    }
}
