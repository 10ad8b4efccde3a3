//! The direct HTTP/1.1 path's look at a fresh connection (`server/direct.rs`),
//! fed the way a socket feeds it: the input is split into pieces at points
//! the fuzzer chooses, and the decision is taken again after every piece.
//!
//! Input: one byte `n`, then `n % 16` piece lengths (one byte each, plus
//! one), then the bytes the client sends; what remains after the last
//! piece arrives as one final read.
//!
//! Checked: no panic; the decision does not depend on how the bytes were
//! split (below the 64 KiB head limit, past which a partial head goes to
//! hyper); an event stream's query and headers then go through what
//! opening a subscription reads from them (query, token presentation,
//! `Last-Event-ID`, matchers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::auth::{presented_token, AuthConfig};
use tidings::fuzzing::{request_head, subscribe_query, Head};
use tidings::matcher::Matcher;

const HUB_PATH: &str = "/.well-known/mercure";
const MAX_HEAD: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len());
    let (lengths, sent) = rest.split_at(count);
    if sent.len() >= MAX_HEAD {
        return;
    }

    // As the server reads: append, look, stop at the first decision.
    let mut read = Vec::new();
    let mut rest = sent;
    let mut pieces = lengths.iter().map(|len| usize::from(*len) + 1);
    let decided = loop {
        let take = pieces.next().unwrap_or(rest.len()).min(rest.len());
        if take == 0 {
            break None; // the client closed with the head unfinished
        }
        read.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        match request_head(&read, HUB_PATH) {
            Head::Partial => continue,
            decision => break Some(decision),
        }
    };
    let at_once = match request_head(sent, HUB_PATH) {
        Head::Partial => None,
        decision => Some(decision),
    };
    assert_eq!(
        decided, at_once,
        "the decision depends on how the bytes were split"
    );

    if let Some(Head::EventStream { query, headers }) = decided {
        open_subscription(query.as_bytes(), &headers);
    }
});

/// What `http::subscribe::open` reads from the request before the hub.
fn open_subscription(query: &[u8], headers: &http::HeaderMap) {
    for legacy in [false, true] {
        let Ok(parsed) = subscribe_query(query, None, legacy) else {
            continue;
        };
        let config = AuthConfig {
            legacy,
            query_token: legacy,
            ..AuthConfig::default()
        };
        let _ = presented_token(headers, parsed.query_token.as_deref(), &config);
        if let Some(value) = headers.get("last-event-id") {
            let _ = value.to_str();
        }
        let base = url::Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
        for (kind, source) in &parsed.matchers {
            if let Ok(matcher) = Matcher::parse(*kind, source, &base, 1024) {
                assert!(matcher.matches(source) || !matcher.is_exact());
            }
        }
    }
}
