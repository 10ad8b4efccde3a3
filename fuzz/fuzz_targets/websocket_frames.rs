//! The hub's WebSocket frame reader (`websocket/wire.rs`) against
//! tungstenite's, whose protocol handling passes the Autobahn test suite:
//! for any bytes a client sends, in pieces of any size, both read the same
//! messages and control frames, and stop at the same point for the same
//! kind of reason (a violation, or the bytes ending).
//!
//! Where they differ by design, the comparison allows for it: the hub stops
//! at the first frame of a binary message (it closes the socket with 1003),
//! and it refuses a frame on its header alone, where tungstenite waits for
//! the whole frame first. Both stop at a close.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{self, Cursor, Read, Write};
use tidings::fuzzing::{websocket_frames, WebSocketRead};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error, Message};

/// Message and frame size limit of both readers: small, so that the
/// fuzzer reaches it.
const LIMIT: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((piece, bytes)) = data.split_first() else {
        return;
    };
    let ours = websocket_frames(bytes, usize::from(*piece), LIMIT);
    let mut theirs = tungstenite_reads(bytes);
    if ours.last() != theirs.last() && theirs.last() == Some(&WebSocketRead::Ended) {
        // The hub judges a frame by its header, tungstenite once the frame
        // is whole: give tungstenite the rest of the frame (zeros, whose
        // own frames are unmasked, hence violations) to judge the same one.
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len() + LIMIT + 16, 0);
        theirs = tungstenite_reads(&padded);
        theirs.truncate(ours.len());
    }
    for (index, (mine, reference)) in ours.iter().zip(theirs.iter()).enumerate() {
        if *mine == WebSocketRead::Binary {
            return;
        }
        let agree = match (mine, reference) {
            (WebSocketRead::Violation(_), WebSocketRead::Violation(_)) => true,
            // tungstenite answers a close frame that breaks the rules
            // (a code that may not be sent) as if the client sent 1002.
            (WebSocketRead::Violation(1002), WebSocketRead::Close(Some(1002))) => true,
            (mine, reference) => mine == reference,
        };
        assert!(agree, "read {index}: hub {ours:?}, tungstenite {theirs:?}");
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "hub {ours:?}, tungstenite {theirs:?}"
    );
});

/// What tungstenite, as a server, reads from the same bytes.
fn tungstenite_reads(bytes: &[u8]) -> Vec<WebSocketRead> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(LIMIT))
        .max_frame_size(Some(LIMIT));
    let stream = Client {
        input: Cursor::new(bytes),
    };
    let mut socket = WebSocket::from_raw_socket(stream, Role::Server, Some(config));
    let mut read = Vec::new();
    loop {
        let item = match socket.read() {
            Ok(Message::Text(text)) => WebSocketRead::Text(text.to_string()),
            Ok(Message::Ping(payload)) => WebSocketRead::Ping(payload.to_vec()),
            Ok(Message::Pong(_)) => WebSocketRead::Pong,
            Ok(Message::Close(frame)) => {
                read.push(WebSocketRead::Close(frame.map(|f| f.code.into())));
                return read;
            }
            Ok(Message::Binary(_)) => WebSocketRead::Binary,
            Ok(Message::Frame(_)) => unreachable!("raw frames are not read"),
            Err(Error::Io(_) | Error::ConnectionClosed | Error::AlreadyClosed) => {
                read.push(WebSocketRead::Ended);
                return read;
            }
            Err(Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => {
                read.push(WebSocketRead::Ended);
                return read;
            }
            Err(_) => {
                read.push(WebSocketRead::Violation(0));
                return read;
            }
        };
        read.push(item);
    }
}

/// The client's bytes to read; what the server writes goes nowhere.
struct Client<'a> {
    input: Cursor<&'a [u8]>,
}

impl Read for Client<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Client<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
