//! Publication rules: turning a publish form into a valid [`Update`].
//!
//! Every rule of both generations is checked here, for HTTP and in-process
//! publishers alike: topic characters, the reserved hub namespace (after
//! resolution and normalization, so encoded and dot-segment variants are
//! caught), the `*` topic, the reserved `mercure` type, ids, `retry`, limits.

use crate::config::HubConfig;
use crate::event::Update;
use crate::text::forbidden_character;
use std::borrow::Cow;
use url::Url;

/// Why a publication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// 400 Bad Request.
    #[error("{0}")]
    Invalid(String),
    /// 413 Content Too Large.
    #[error("{0}")]
    TooLarge(String),
}

/// Parses and checks a publish request body.
pub fn parse_form(body: &[u8], config: &HubConfig) -> Result<Update, Rejection> {
    if body.len() > config.limits.body {
        return Err(too_large(format!(
            "the body exceeds {} bytes",
            config.limits.body
        )));
    }
    let mut update = Update::default();
    for (name, value) in crate::form::pairs(body).map_err(Rejection::Invalid)? {
        // Single-valued fields keep their first occurrence; unknown fields
        // are ignored for future extensions.
        match name.as_str() {
            "topic" => update.topics.push(value),
            "data" if update.data.is_empty() => update.data = value,
            "private" => update.private = true,
            "id" if update.id.is_none() => update.id = Some(value),
            "type" if update.kind.is_none() => update.kind = Some(value),
            "retry" if update.retry.is_none() => update.retry = Some(parse_retry(&value)?),
            _ => {}
        }
    }
    check(&update, config)?;
    Ok(update)
}

/// Checks an update however it arrived.
pub fn check(update: &Update, config: &HubConfig) -> Result<(), Rejection> {
    let limits = &config.limits;
    if update.topics.is_empty() {
        return Err(invalid("at least one `topic` is required"));
    }
    if update.topics.len() > limits.topics {
        return Err(too_large(format!("more than {} topics", limits.topics)));
    }
    for topic in &update.topics {
        if topic.len() > limits.matcher_len {
            return Err(too_large(format!(
                "a topic exceeds {} bytes",
                limits.matcher_len
            )));
        }
        if let Some(reason) = forbidden_character(topic) {
            return Err(invalid(format!(
                "topic `{}` {reason}",
                topic.escape_debug()
            )));
        }
        if topic == "*" {
            return Err(invalid(
                "`*` is reserved for the wildcard matcher and cannot be a topic",
            ));
        }
        if in_reserved_namespace(topic, &config.url) {
            return Err(invalid(format!(
                "topic `{topic}` is in the hub's reserved namespace `{}`",
                config.path()
            )));
        }
    }
    if let Some(id) = &update.id {
        if id.len() > limits.matcher_len {
            return Err(too_large(format!(
                "the id exceeds {} bytes",
                limits.matcher_len
            )));
        }
        if id.starts_with('#') {
            return Err(invalid("an id must not start with `#`"));
        }
        if id == "earliest" {
            return Err(invalid("`earliest` is reserved and cannot be an id"));
        }
        if id.is_empty() {
            return Err(invalid("an id must not be empty"));
        }
        if let Some(reason) = forbidden_character(id) {
            return Err(invalid(format!("the id {reason}")));
        }
    }
    if let Some(kind) = &update.kind {
        if kind == "mercure" {
            return Err(invalid(
                "the `mercure` type is reserved for events the hub generates",
            ));
        }
        if let Some(reason) = forbidden_character(kind) {
            return Err(invalid(format!("the type {reason}")));
        }
    }
    Ok(())
}

fn parse_retry(value: &str) -> Result<u64, Rejection> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("`retry` must consist of ASCII digits only"));
    }
    value.parse().map_err(|_| invalid("`retry` is too large"))
}

/// True when `topic`, resolved against the hub URL, names the hub's own
/// path or anything below it.
pub fn in_reserved_namespace(topic: &str, hub: &Url) -> bool {
    let Ok(resolved) = hub.join(topic) else {
        return false;
    };
    let path = normalize_path(resolved.path());
    let root = normalize_path(hub.path());
    let root = root.trim_end_matches('/');
    path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Decodes percent-encoded unreserved characters, then removes dot segments
/// (RFC 3986 sections 6.2.2.2 and 5.2.4). The URL parser has already
/// removed every dot segment it could see, so a path without `%` is
/// returned as it is.
fn normalize_path(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    decoded.push(byte as char);
                    i += 3;
                    continue;
                }
            }
        }
        decoded.push(bytes[i] as char);
        i += 1;
    }
    Cow::Owned(remove_dot_segments(&decoded))
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (n, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if n == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if n == last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    out.join("/")
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::Invalid(reason.into())
}

fn too_large(reason: impl Into<String>) -> Rejection {
    Rejection::TooLarge(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Url {
        Url::parse("https://hub.example.com/.well-known/mercure").unwrap()
    }

    #[test]
    fn reserved_namespace_catches_every_spelling() {
        let hub = hub();
        for topic in [
            "/.well-known/mercure",
            "/.well-known/mercure/subscriptions/x",
            "https://hub.example.com/.well-known/mercure/subscriptions/a/b",
            "https://elsewhere.example/.well-known/mercure/x",
            "/.well-known/%6Dercure/x",
            "/.well-known/%6dercure",
            "/.well-known/mercure/../mercure/x",
            "/a/../.well-known/mercure",
            "/.well-known/./mercure/x",
            "/.well-known/%2E/mercure",
            "mercure/subscriptions",
            "urn:x:/.well-known/mercure",
        ] {
            let expected = !topic.starts_with("urn:");
            assert_eq!(in_reserved_namespace(topic, &hub), expected, "{topic}");
        }
        for topic in [
            "/.well-known/mercurex",
            "/.well-known/mercure-other",
            "https://example.com/books/1",
            "/.well-known/%2Fmercure",
            "foo",
        ] {
            assert!(!in_reserved_namespace(topic, &hub), "{topic}");
        }
    }

    #[test]
    fn the_url_parser_leaves_no_dot_segment_a_path_without_percent_could_hide() {
        let hub = hub();
        for topic in [
            "/a/./b/../c",
            "/a/.%2E/b",
            "/a/%2e%2E/b/.",
            "https://x.example/a/b/..",
            "../../../x",
            "./",
            "a\\..\\b",
            "?q",
            "",
        ] {
            let path = hub.join(topic).unwrap().path().to_string();
            if !path.contains('%') {
                assert_eq!(remove_dot_segments(&path), path, "{topic}");
            }
        }
    }

    #[test]
    fn dot_segments() {
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(remove_dot_segments("/../x"), "/x");
    }
}
