//! A `text/event-stream` parser for the CLI's subscriber, per the HTML
//! standard's interpretation rules (fields, comments, BOM-free UTF-8).

/// One dispatched event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub data: String,
}

/// Incremental parser: feed bytes, collect events and `retry:` values.
#[derive(Default)]
pub struct Parser {
    pending: Vec<u8>,
    /// The data buffer: every `data:` value followed by LF.
    data: String,
    kind: Option<String>,
    id: Option<String>,
    /// The last `retry:` received, in milliseconds.
    pub retry: Option<u64>,
}

impl Parser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Message> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
            // A CR at the end of the buffer may be the first half of CRLF.
            if self.pending[end] == b'\r' && end + 1 == self.pending.len() {
                break;
            }
            let crlf = self.pending[end] == b'\r' && self.pending.get(end + 1) == Some(&b'\n');
            let line: Vec<u8> = self
                .pending
                .drain(..end + 1 + usize::from(crlf))
                .take(end)
                .collect();
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<Message> {
        if line.is_empty() {
            let kind = self.kind.take();
            if self.data.is_empty() {
                return None;
            }
            let mut data = std::mem::take(&mut self.data);
            data.pop();
            return Some(Message {
                id: self.id.clone(),
                kind,
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.kind = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "retry" if value.bytes().all(|b| b.is_ascii_digit()) => self.retry = value.parse().ok(),
            _ => {}
        }
        None
    }

    /// The id of the last event seen, for `Last-Event-ID` on reconnection.
    pub fn last_event_id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_frames_and_multiline_data() {
        let mut parser = Parser::default();
        assert!(parser
            .feed(b"retry: 500\n\n:keep\n\nid: 1\nevent: bo")
            .is_empty());
        let events = parser.feed(b"ok\r\ndata: a\ndata:b\n\ndata\n\n");
        assert_eq!(parser.retry, Some(500));
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0],
            Message {
                id: Some("1".into()),
                kind: Some("book".into()),
                data: "a\nb".into()
            }
        );
        assert_eq!(events[1].data, "");
        assert_eq!(parser.last_event_id(), Some("1"));
    }
}
