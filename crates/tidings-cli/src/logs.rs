//! The hub's logs on stderr: colours only on a terminal, and never a token.
//!
//! tidings itself logs no request URL, header or token; every line is
//! still scrubbed on its way out, so that no library's debug output and no
//! future log line can write one: anything shaped like a JWT, the value of
//! an `authorization=` parameter and what follows `Bearer ` are replaced.
//! Without colours, an escape byte that reached a line some other way is
//! written as `\x1b`, so a log file never holds terminal control sequences.

use anyhow::{bail, Context};
use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use tracing_subscriber::fmt::MakeWriter;

/// Sets the global subscriber: `filter` (default `info`), `format` `text`
/// (default) or `json`.
pub fn init(filter: Option<&str>, format: Option<&str>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("info"))
        .context("--log is not a valid filter")?;
    let colour = io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(Scrubbed { colour });
    match format.unwrap_or("text") {
        "text" => builder.init(),
        "json" => builder.json().init(),
        other => bail!("unknown log format `{other}` (use text or json)"),
    }
    Ok(())
}

/// Stderr, through [`scrub`]. The formatter writes each line whole.
struct Scrubbed {
    colour: bool,
}

impl<'a> MakeWriter<'a> for Scrubbed {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> ScrubbedLine {
        ScrubbedLine {
            colour: self.colour,
        }
    }
}

struct ScrubbedLine {
    colour: bool,
}

impl Write for ScrubbedLine {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        io::stderr().lock().write_all(&scrub(line, self.colour))?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

const REDACTED: &[u8] = b"[redacted]";

/// The line without tokens (and, without colours, without escape bytes).
fn scrub(line: &[u8], colour: bool) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut copied, mut at) = (0, 0);
    while at < line.len() {
        let secret = secret_at(line, at);
        let escape = !colour && line[at] == 0x1b;
        if secret.is_none() && !escape {
            at += 1;
            continue;
        }
        let out = out.get_or_insert_with(|| Vec::with_capacity(line.len() + 16));
        out.extend_from_slice(&line[copied..at]);
        match secret {
            Some((start, end)) => {
                out.extend_from_slice(&line[at..start]);
                out.extend_from_slice(REDACTED);
                at = end;
            }
            None => {
                out.extend_from_slice(b"\\x1b");
                at += 1;
            }
        }
        copied = at;
    }
    match out {
        None => Cow::Borrowed(line),
        Some(mut out) => {
            out.extend_from_slice(&line[copied..]);
            Cow::Owned(out)
        }
    }
}

/// A secret starting at `at`: where its value starts and ends.
fn secret_at(line: &[u8], at: usize) -> Option<(usize, usize)> {
    let rest = &line[at..];
    let starts_word = at == 0 || !is_token_byte(line[at - 1]);
    if starts_word && rest.starts_with(b"eyJ") {
        // A JWS or JWE: base64url segments joined by dots, the first a
        // JSON object (`{"` encodes as `eyJ`).
        let length = rest
            .iter()
            .take_while(|&&b| is_token_byte(b) || b == b'.')
            .count();
        let dots = rest[..length].iter().filter(|&&b| b == b'.').count();
        return (dots >= 2).then_some((at, at + length));
    }
    for prefix in [&b"authorization="[..], b"bearer "] {
        if starts_word
            && rest.len() > prefix.len()
            && rest[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            let start = at + prefix.len();
            let length = line[start..]
                .iter()
                .take_while(|&&b| {
                    !matches!(b, b'&' | b'"' | b'\'' | b',' | b';') && !b.is_ascii_whitespace()
                })
                .count();
            return (length > 0).then_some((start, start + length));
        }
    }
    None
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(line: &str) -> String {
        String::from_utf8(scrub(line.as_bytes(), false).into_owned()).unwrap()
    }

    #[test]
    fn tokens_are_redacted_wherever_they_appear() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(
            clean(&format!(
                "GET /.well-known/mercure?topic=a&authorization={jwt}&x=1 done"
            )),
            "GET /.well-known/mercure?topic=a&authorization=[redacted]&x=1 done"
        );
        assert_eq!(clean(&format!("token={jwt}")), "token=[redacted]");
        assert_eq!(
            clean(&format!("{{\"cookie\":\"mercureAuthorization={jwt}\"}}")),
            "{\"cookie\":\"mercureAuthorization=[redacted]\"}"
        );
        assert_eq!(
            clean("Authorization: Bearer not-a-jwt at all"),
            "Authorization: Bearer [redacted] at all"
        );
        assert_eq!(
            clean("unsigned eyJhbGciOiJub25lIn0.eyJ9. ok"),
            "unsigned [redacted] ok"
        );
        let plain = "listening url=http://127.0.0.1:8080/.well-known/mercure bound=127.0.0.1:8080";
        assert!(matches!(scrub(plain.as_bytes(), false), Cow::Borrowed(_)));
        assert_eq!(clean("www.example.com"), "www.example.com");
    }

    #[test]
    fn escape_bytes_are_written_out_without_colours() {
        assert_eq!(clean("a\x1b[31mred"), "a\\x1b[31mred");
        assert_eq!(&*scrub(b"a\x1b[31mred", true), b"a\x1b[31mred");
    }
}
