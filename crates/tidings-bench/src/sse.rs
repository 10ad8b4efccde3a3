//! Parsing the `text/event-stream` format.
//!
//! The parser is fed whatever bytes the transport produced and consumes only
//! complete lines, telling the caller how much it used; the caller keeps the
//! rest for the next read. That way the HTTP/1.1 client can parse straight
//! out of its small read buffer and the HTTP/2 client out of its frames.
//! Only the fields this tool needs are kept: `id` and `data`.

/// One dispatched event.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The last event ID seen on the stream, as SSE defines it.
    pub id: &'a [u8],
    pub data: &'a [u8],
}

/// Incremental event-stream parser.
#[derive(Debug, Default)]
pub struct Parser {
    id: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl Parser {
    /// Parses the complete lines at the start of `input`, calling `on_event`
    /// for each finished event, and returns how many bytes were consumed.
    pub fn feed(&mut self, input: &[u8], mut on_event: impl FnMut(Event<'_>)) -> usize {
        let mut consumed = 0;
        while let Some(nl) = input[consumed..].iter().position(|&b| b == b'\n') {
            let mut line = &input[consumed..consumed + nl];
            consumed += nl + 1;
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            self.line(line, &mut on_event);
        }
        consumed
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(Event<'_>)) {
        if line.is_empty() {
            if self.has_data {
                on_event(Event {
                    id: &self.id,
                    data: &self.data,
                });
            }
            self.data.clear();
            self.has_data = false;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // a comment, such as a keep-alive
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" => {
                self.id.clear();
                self.id.extend_from_slice(value);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = Parser::default();
        let mut pending = Vec::new();
        let mut events = Vec::new();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            let used = parser.feed(&pending, |e| {
                events.push((
                    String::from_utf8_lossy(e.id).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ))
            });
            pending.drain(..used);
        }
        events
    }

    #[test]
    fn events_split_across_reads() {
        let events = parse_all(&[
            b": hello\n\nid: a\nda",
            b"ta: 1 2\n",
            b"\r\ndata: x\r\n\r\n",
        ]);
        assert_eq!(
            events,
            vec![("a".into(), "1 2".into()), ("a".into(), "x".into())]
        );
    }

    #[test]
    fn multi_line_data_and_other_fields() {
        let events = parse_all(&[b"event: message\nretry: 10\ndata: a\ndata:b\n\n"]);
        assert_eq!(events, vec![("".into(), "a\nb".into())]);
    }

    #[test]
    fn incomplete_line_is_left_unconsumed() {
        let mut parser = Parser::default();
        assert_eq!(parser.feed(b"data: 1\nda", |_| panic!("no event yet")), 8);
    }
}
