//! Decoding HTTP/1.1 `Transfer-Encoding: chunked` in place.
//!
//! Streaming responses from every server under test arrive chunked. The
//! decoder is a byte-level state machine, so it never needs to hold raw
//! bytes back: it rewrites the payload over the framing inside the caller's
//! buffer, which keeps the client at one small buffer per connection.

use anyhow::bail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    /// Skipping a chunk extension up to the end of the size line.
    Extension,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    /// The zero-size chunk was seen: the stream is over.
    Done,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
    size: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size,
            size: 0,
        }
    }
}

impl Decoder {
    /// Decodes `buf` in place and returns the payload length now at its start.
    pub fn decode(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let mut out = 0;
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).unwrap_or(0);
                        self.size = self.size.saturating_mul(16) + u64::from(digit);
                    }
                    b';' | b' ' | b'\t' => self.state = State::Extension,
                    b'\r' => self.state = State::SizeLf,
                    b'\n' => self.end_size_line(),
                    _ => bail!("bad chunk size byte {b:#04x}"),
                },
                State::Extension => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' => self.end_size_line(),
                    _ => {}
                },
                State::SizeLf => {
                    if b != b'\n' {
                        bail!("bad chunk size line");
                    }
                    self.end_size_line();
                }
                State::Data(left) => {
                    let take = (left as usize).min(buf.len() - i);
                    buf.copy_within(i..i + take, out);
                    out += take;
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::DataCr => match b {
                    b'\r' => self.state = State::DataLf,
                    b'\n' => self.state = State::Size,
                    _ => bail!("chunk longer than its size"),
                },
                State::DataLf => {
                    if b != b'\n' {
                        bail!("chunk longer than its size");
                    }
                    self.state = State::Size;
                }
                State::Done => break,
            }
            i += 1;
        }
        Ok(out)
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn end_size_line(&mut self) {
        self.state = if self.size == 0 {
            State::Done
        } else {
            State::Data(self.size)
        };
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(wire: &[u8], piece: usize) -> Vec<u8> {
        let mut decoder = Decoder::default();
        let mut payload = Vec::new();
        for part in wire.chunks(piece) {
            let mut buf = part.to_vec();
            let n = decoder.decode(&mut buf).unwrap();
            payload.extend_from_slice(&buf[..n]);
        }
        payload
    }

    #[test]
    fn decodes_whatever_the_split() {
        let wire = b"5\r\nhello\r\nA;ext=1\r\n, world!!!\r\n0\r\n\r\n";
        for piece in 1..wire.len() {
            assert_eq!(decode_in_pieces(wire, piece), b"hello, world!!!");
        }
    }

    #[test]
    fn reports_the_end() {
        let mut decoder = Decoder::default();
        let mut buf = b"1\r\nx\r\n0\r\n\r\n".to_vec();
        assert_eq!(decoder.decode(&mut buf).unwrap(), 1);
        assert!(decoder.is_done());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Decoder::default().decode(&mut b"zz\r\n".to_vec()).is_err());
        assert!(Decoder::default().decode(&mut b"1\r\nxy".to_vec()).is_err());
    }
}
