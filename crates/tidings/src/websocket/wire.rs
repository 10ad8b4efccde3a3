//! RFC 6455 framing on the server's side: client frames read into
//! messages, the hub's messages written as frames.
//!
//! Written here rather than taken whole from tungstenite because an idle
//! socket must cost next to nothing. tungstenite's stream keeps a read
//! buffer, a write buffer, its configuration and, in tokio-tungstenite, two
//! waker proxies for every socket (about 800 bytes in all); this keeps a
//! few words, and its read buffer exists only while a frame is arriving.
//! Frame headers are still parsed and checked by tungstenite's
//! `FrameHeader`, close codes by its `CloseCode`; what is ours is the small
//! state machine around them (fragments, control frames, limits) and the
//! writing, which is the hot path.

use std::future::poll_fn;
use std::io::{self, Cursor};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// What a read reserves at least: most client messages fit in one read.
const READ_CHUNK: usize = 1024;
/// The most a read reserves ahead of the bytes a frame header announces.
const MAX_RESERVE: usize = 64 * 1024;
/// The payload a control frame may carry (RFC 6455 section 5.5).
const MAX_CONTROL: usize = 125;
/// The close code that stands for no code: never sent, it makes a close
/// frame with an empty payload.
pub const NO_STATUS: u16 = 1005;

/// A socket speaking WebSocket frames.
pub struct Wire<S> {
    socket: S,
    /// Bytes read; unallocated between frames.
    input: Vec<u8>,
    /// How many bytes at the front of `input` are taken: they are dropped
    /// once per read, not once per frame, so that a read full of tiny
    /// frames is not moved again for each of them.
    taken: usize,
    /// The text message whose fragments are arriving.
    fragments: Option<Fragments>,
    /// Bytes read since the last complete message, headers and control
    /// frames included: a message sent as endless empty fragments has no
    /// payload to cap, so the wire is capped too.
    since_message: usize,
    limits: Limits,
    /// The client has sent its close frame.
    peer_closed: bool,
}

#[derive(Clone, Copy)]
pub struct Limits {
    /// Largest message payload.
    pub message: usize,
    /// Most bytes on the wire towards one message.
    pub wire: usize,
}

/// A message or control frame from the client.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Text(String),
    /// A binary message (its first frame; the rest is not waited for).
    Binary,
    Ping(Vec<u8>),
    Pong,
    /// The client's close, with its code if it gave one.
    Close(Option<u16>),
    /// The connection ended without a close.
    Gone,
}

/// Why reading stopped.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The client broke the protocol: the close to send, code and reason.
    Violation(u16, &'static str),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// `rest`: bytes of the socket already read past the handshake.
    pub fn new(socket: S, rest: Vec<u8>, limits: Limits) -> Wire<S> {
        Wire {
            socket,
            since_message: rest.len(),
            input: rest,
            taken: 0,
            fragments: None,
            limits,
            peer_closed: false,
        }
    }

    /// The next message or control frame.
    pub fn poll_incoming(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadError>> {
        loop {
            if let Some(incoming) = self.take_frame().map_err(violation)? {
                return Poll::Ready(Ok(incoming));
            }
            self.compact();
            if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
                self.input.reserve(READ_CHUNK);
            }
            let before = self.input.len();
            let read =
                tokio_util::io::poll_read_buf(Pin::new(&mut self.socket), cx, &mut self.input);
            match read {
                Poll::Pending => {
                    // Compacted above: empty means nothing pending.
                    if self.input.is_empty() {
                        // An idle socket keeps no buffer.
                        self.input = Vec::new();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(ReadError::Io(error))),
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(Incoming::Gone)),
                Poll::Ready(Ok(_)) => {
                    self.since_message += self.input.len() - before;
                    if self.since_message > self.limits.wire {
                        return Poll::Ready(Err(violation(TOO_LONG)));
                    }
                }
            }
        }
    }

    /// What the whole frames at the front of `input` bring, fragments
    /// gathered on the way; `None` when more bytes are needed.
    fn take_frame(&mut self) -> Result<Option<Incoming>, Violation> {
        loop {
            let rest = &self.input[self.taken..];
            let mut cursor = Cursor::new(rest);
            let Some((header, length)) = FrameHeader::parse(&mut cursor).map_err(|_| MALFORMED)?
            else {
                return Ok(None);
            };
            let start = cursor.position() as usize;
            let length = usize::try_from(length).map_err(|_| TOO_LONG)?;
            check(&header, length, self.limits.message)?;
            let Some(end) = start.checked_add(length).filter(|end| *end <= rest.len()) else {
                // Room for more of the frame; a claimed length is not
                // trusted with more than a chunk before its bytes arrive.
                let missing = start + length - rest.len();
                self.compact();
                self.input.reserve(missing.min(MAX_RESERVE));
                return Ok(None);
            };
            let mut payload = rest[start..end].to_vec();
            self.taken += end;
            if let Some(mask) = header.mask {
                unmask(&mut payload, mask);
            }
            if let Some(incoming) = self.frame(header, payload)? {
                return Ok(Some(incoming));
            }
        }
    }

    /// Drops the bytes taken.
    fn compact(&mut self) {
        self.input.drain(..self.taken);
        self.taken = 0;
    }

    /// What one checked, unmasked frame brings.
    fn frame(
        &mut self,
        header: FrameHeader,
        payload: Vec<u8>,
    ) -> Result<Option<Incoming>, Violation> {
        let text = match header.opcode {
            OpCode::Control(Control::Ping) => return Ok(Some(Incoming::Ping(payload))),
            OpCode::Control(Control::Pong) => return Ok(Some(Incoming::Pong)),
            OpCode::Control(Control::Close) => {
                self.peer_closed = true;
                return close_code(&payload).map(|code| Some(Incoming::Close(code)));
            }
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                unreachable!("refused on its header")
            }
            OpCode::Data(Data::Binary) => return Ok(Some(Incoming::Binary)),
            OpCode::Data(Data::Text) => match self.fragments {
                Some(_) => return Err(INTERLEAVED),
                None if header.is_final => payload,
                None => {
                    let mut fragments = Fragments::default();
                    fragments.add(&payload)?;
                    self.fragments = Some(fragments);
                    return Ok(None);
                }
            },
            OpCode::Data(Data::Continue) => {
                let Some(fragments) = self.fragments.as_mut() else {
                    return Err(ORPHAN_CONTINUATION);
                };
                if fragments.text.len() + payload.len() > self.limits.message {
                    return Err(TOO_LONG);
                }
                fragments.add(&payload)?;
                if !header.is_final {
                    return Ok(None);
                }
                self.fragments.take().map(|f| f.text).unwrap_or_default()
            }
        };
        self.since_message = self.input.len() - self.taken;
        String::from_utf8(text)
            .map(|text| Some(Incoming::Text(text)))
            .map_err(|_| NOT_UTF8)
    }

    /// Writes `frames` and flushes them.
    pub async fn write(&mut self, frames: &Outgoing) -> io::Result<()> {
        self.socket.write_all(frames.bytes()).await?;
        self.socket.flush().await
    }

    /// Sends the close in `frames`, waits for the client's own close unless
    /// it came first, then closes the connection.
    pub async fn close(&mut self, frames: &Outgoing) -> io::Result<()> {
        self.write(frames).await?;
        while !self.peer_closed {
            match poll_fn(|cx| self.poll_incoming(cx)).await {
                Ok(Incoming::Close(_) | Incoming::Gone) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.socket.shutdown().await
    }
}

/// A text message arriving in fragments.
#[derive(Default)]
struct Fragments {
    text: Vec<u8>,
    /// How much of `text` is known to be UTF-8: a message that cannot be
    /// is refused at the fragment that shows it, not at its end.
    checked: usize,
}

impl Fragments {
    fn add(&mut self, payload: &[u8]) -> Result<(), Violation> {
        self.text.extend_from_slice(payload);
        match std::str::from_utf8(&self.text[self.checked..]) {
            Ok(_) => self.checked = self.text.len(),
            // A character cut by the fragment's end: the next one ends it.
            Err(error) if error.error_len().is_none() => self.checked += error.valid_up_to(),
            Err(_) => return Err(NOT_UTF8),
        }
        Ok(())
    }
}

/// A protocol violation: the close code and reason it is answered with.
type Violation = (u16, &'static str);

const MALFORMED: Violation = (1002, "a malformed frame header");
const TOO_LONG: Violation = (1009, "a message exceeds the size limit");
const UNKNOWN_OPCODE: Violation = (1002, "an unknown opcode");
const INTERLEAVED: Violation = (1002, "a new message began before the last one ended");
const ORPHAN_CONTINUATION: Violation = (1002, "a continuation frame with no message to continue");
const NOT_UTF8: Violation = (1007, "a text message is not valid UTF-8");

fn violation((code, reason): Violation) -> ReadError {
    ReadError::Violation(code, reason)
}

/// The rules of a frame's header (RFC 6455 sections 5.2 and 5.5).
fn check(header: &FrameHeader, length: usize, max_message: usize) -> Result<(), Violation> {
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err((1002, "reserved bits set without an extension"));
    }
    if header.mask.is_none() {
        return Err((1002, "a client frame must be masked"));
    }
    if let OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) = header.opcode {
        return Err(UNKNOWN_OPCODE);
    }
    if let OpCode::Control(_) = header.opcode {
        if !header.is_final {
            return Err((1002, "a fragmented control frame"));
        }
        if length > MAX_CONTROL {
            return Err((1002, "a control frame exceeds 125 bytes"));
        }
    }
    if length > max_message {
        return Err(TOO_LONG);
    }
    Ok(())
}

/// The code of a close frame's payload (section 5.5.1).
fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err((1002, "a close frame with a one-byte payload")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !CloseCode::from(code).is_allowed() {
                return Err((1002, "a close code that may not be sent"));
            }
            std::str::from_utf8(reason).map_err(|_| (1007, "a close reason is not valid UTF-8"))?;
            Ok(Some(code))
        }
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// Server frames gathered for one write: copied once into one buffer,
/// which lives only until it is written.
#[derive(Default)]
pub struct Outgoing(Vec<u8>);

impl Outgoing {
    /// A text frame of `parts` joined.
    pub fn text(&mut self, parts: &[&[u8]]) {
        let length = parts.iter().map(|part| part.len()).sum();
        self.header(OpCode::Data(Data::Text), length);
        for part in parts {
            self.0.extend_from_slice(part);
        }
    }

    pub fn ping(&mut self) {
        self.header(OpCode::Control(Control::Ping), 0);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn pong(&mut self, payload: &[u8]) {
        self.header(OpCode::Control(Control::Pong), payload.len());
        self.0.extend_from_slice(payload);
    }

    /// A close frame; `NO_STATUS` makes one without a code. `reason` must
    /// fit a control frame (123 bytes).
    pub fn close(&mut self, code: u16, reason: &str) {
        if code == NO_STATUS {
            self.header(OpCode::Control(Control::Close), 0);
            return;
        }
        self.header(OpCode::Control(Control::Close), 2 + reason.len());
        self.0.extend_from_slice(&code.to_be_bytes());
        self.0.extend_from_slice(reason.as_bytes());
    }

    fn header(&mut self, opcode: OpCode, length: usize) {
        let header = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        self.0.reserve(header.len(length as u64) + length);
        // Writing to a Vec cannot fail.
        let _ = header.format(length as u64, &mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, DuplexStream};

    const LIMITS: Limits = Limits {
        message: 1 << 20,
        wire: 2 << 20,
    };

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match u16::try_from(payload.len()).unwrap() {
            short @ 0..126 => out.push(0x80 | short as u8),
            long => {
                out.push(0x80 | 126);
                out.extend_from_slice(&long.to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        out
    }

    fn wire() -> (Wire<DuplexStream>, DuplexStream) {
        let (hub, client) = duplex(1 << 16);
        (Wire::new(hub, Vec::new(), LIMITS), client)
    }

    fn poll(wire: &mut Wire<DuplexStream>) -> Poll<Result<Incoming, ReadError>> {
        wire.poll_incoming(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[tokio::test]
    async fn an_idle_socket_keeps_no_buffer() {
        let (mut wire, mut client) = wire();
        client.write_all(&frame(true, 0x1, b"{}")).await.unwrap();
        let Poll::Ready(Ok(Incoming::Text(text))) = poll(&mut wire) else {
            panic!("a text message");
        };
        assert_eq!(text, "{}");
        assert!(poll(&mut wire).is_pending());
        assert_eq!(wire.input.capacity(), 0);
    }

    #[tokio::test]
    async fn a_claimed_length_is_not_reserved_before_it_arrives() {
        let (mut wire, mut client) = wire();
        // A header announcing 1 MiB, then nothing.
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 20).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        client.write_all(&header).await.unwrap();
        assert!(poll(&mut wire).is_pending());
        assert!(wire.input.capacity() <= MAX_RESERVE + READ_CHUNK);
    }

    #[tokio::test]
    async fn pieces_make_one_message_whatever_their_sizes() {
        let message = "é".repeat(300);
        let mut bytes = frame(false, 0x1, &message.as_bytes()[..100]);
        bytes.extend(frame(true, 0xa, b""));
        bytes.extend(frame(false, 0x0, &message.as_bytes()[100..]));
        bytes.extend(frame(true, 0x0, b""));
        for piece in [1, 7, 64, bytes.len()] {
            let (mut wire, mut client) = wire();
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                client.write_all(chunk).await.unwrap();
                while let Poll::Ready(incoming) = poll(&mut wire) {
                    got.push(incoming.unwrap());
                }
            }
            assert_eq!(
                got,
                [Incoming::Pong, Incoming::Text(message.clone())],
                "{piece}"
            );
        }
    }

    /// Found by the `websocket_frames` fuzz target: tungstenite refuses
    /// a fragment that no continuation can make UTF-8 at once.
    #[tokio::test]
    async fn a_fragment_that_cannot_be_utf8_is_refused_before_the_message_ends() {
        let (mut wire, mut client) = wire();
        // A character cut between fragments is fine...
        client.write_all(&frame(false, 0x1, b"\xc3")).await.unwrap();
        client.write_all(&frame(false, 0x0, b"\xa9")).await.unwrap();
        assert!(poll(&mut wire).is_pending());
        // ...a continuation byte with nothing to continue is not.
        client.write_all(&frame(false, 0x0, b"\xa9")).await.unwrap();
        let Poll::Ready(Err(ReadError::Violation(code, _))) = poll(&mut wire) else {
            panic!("a violation");
        };
        assert_eq!(code, 1007);
    }

    #[tokio::test]
    async fn a_read_full_of_tiny_frames_gives_each_in_order() {
        let (mut wire, mut client) = wire();
        let mut bytes = Vec::new();
        for n in 0..5_000u16 {
            bytes.extend(frame(true, 0x9, &n.to_be_bytes()));
        }
        bytes.extend(frame(true, 0x1, b"{}"));
        client.write_all(&bytes).await.unwrap();
        for n in 0..5_000u16 {
            let Poll::Ready(Ok(Incoming::Ping(payload))) = poll(&mut wire) else {
                panic!("ping {n}");
            };
            assert_eq!(payload, n.to_be_bytes());
        }
        assert!(matches!(
            poll(&mut wire),
            Poll::Ready(Ok(Incoming::Text(_)))
        ));
        assert!(poll(&mut wire).is_pending());
        assert_eq!(wire.input.capacity(), 0);
    }

    #[tokio::test]
    async fn endless_fragments_are_capped_on_the_wire() {
        let (hub, mut client) = duplex(1 << 16);
        let limits = Limits {
            message: 100,
            wire: 1000,
        };
        let mut wire = Wire::new(hub, Vec::new(), limits);
        client.write_all(&frame(false, 0x1, b"{")).await.unwrap();
        let empty = frame(false, 0x0, b"");
        for _ in 0..200 {
            client.write_all(&empty).await.unwrap();
        }
        let Poll::Ready(Err(ReadError::Violation(code, _))) = poll(&mut wire) else {
            panic!("a violation");
        };
        assert_eq!(code, 1009);
    }

    #[test]
    fn server_frames_read_back_with_tungstenite() {
        use tungstenite::protocol::frame::FrameSocket;
        let long = "x".repeat(70_000);
        let mut frames = Outgoing::default();
        frames.text(&[b"{\"a\":", b"1}"]);
        frames.ping();
        frames.pong(b"p");
        frames.text(&[long.as_bytes()]);
        frames.close(4000, "slow");
        frames.close(NO_STATUS, "");
        let mut reader = FrameSocket::new(Cursor::new(frames.bytes().to_vec()));
        let mut read = Vec::new();
        while let Some(frame) = reader.read(None).unwrap() {
            assert!(frame.header().is_final && frame.header().mask.is_none());
            read.push((frame.header().opcode, frame.into_payload().to_vec()));
        }
        let expected = [
            (OpCode::Data(Data::Text), b"{\"a\":1}".to_vec()),
            (OpCode::Control(Control::Ping), Vec::new()),
            (OpCode::Control(Control::Pong), b"p".to_vec()),
            (OpCode::Data(Data::Text), long.into_bytes()),
            (OpCode::Control(Control::Close), b"\x0f\xa0slow".to_vec()),
            (OpCode::Control(Control::Close), Vec::new()),
        ];
        assert_eq!(read, expected);
    }
}
