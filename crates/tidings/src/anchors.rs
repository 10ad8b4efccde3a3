//! Narrowing down which patterns a topic must be evaluated against.
//!
//! Evaluating every pattern for every new topic costs one regular-expression
//! run per pattern, which grows with the number of pattern subscribers. A
//! pattern's literal start is a necessary condition instead: a topic can
//! only match `https://example.com/users/42/{id}` if it starts with
//! `https://example.com/users/42/`. Each pattern is filed under that prefix
//! (percent-decoded on both sides, since matchers compare encoded and raw
//! forms alike, and cut after its last `/`), and a topic only looks up the
//! prefixes of its own that end in `/`: a handful of hash lookups whatever
//! the number of patterns. URL patterns are filed by their path, compared
//! with the topic's path once resolved against the hub URL; patterns with
//! no usable literal start are evaluated for every topic, as before.

use percent_encoding::percent_decode;
use std::collections::HashMap;
use url::Url;

/// Where a pattern is filed.
#[derive(Debug, PartialEq, Eq)]
pub enum Anchor {
    /// A prefix of the decoded topic (URI templates).
    Topic(Box<[u8]>),
    /// A prefix of the decoded path of the resolved topic (URL patterns).
    Path(Box<[u8]>),
}

impl Anchor {
    /// The anchor for a literal start, if it holds more than `/`.
    pub fn of_literal(literal: &str) -> Option<Box<[u8]>> {
        let decoded: Vec<u8> = percent_decode(literal.as_bytes()).collect();
        let cut = decoded.iter().rposition(|b| *b == b'/')? + 1;
        (cut > 1).then(|| decoded[..cut].into())
    }
}

#[derive(Default)]
pub struct Anchors {
    by_topic: HashMap<Box<[u8]>, Vec<u64>>,
    by_path: HashMap<Box<[u8]>, Vec<u64>>,
    loose: Vec<u64>,
}

impl Anchors {
    pub fn add(&mut self, id: u64, anchor: Option<Anchor>) {
        match anchor {
            Some(Anchor::Topic(prefix)) => self.by_topic.entry(prefix).or_default().push(id),
            Some(Anchor::Path(prefix)) => self.by_path.entry(prefix).or_default().push(id),
            None => self.loose.push(id),
        }
    }

    pub fn remove(&mut self, id: u64, anchor: Option<Anchor>) {
        let (map, prefix) = match anchor {
            Some(Anchor::Topic(prefix)) => (&mut self.by_topic, prefix),
            Some(Anchor::Path(prefix)) => (&mut self.by_path, prefix),
            None => {
                self.loose.retain(|other| *other != id);
                return;
            }
        };
        if let Some(ids) = map.get_mut(&prefix) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                map.remove(&prefix);
            }
        }
    }

    /// Every pattern that could match `topic`; each appears once.
    pub fn candidates(&self, topic: &str, base: &Url, out: &mut Vec<u64>) {
        out.extend_from_slice(&self.loose);
        if !self.by_topic.is_empty() {
            let decoded: Vec<u8> = percent_decode(topic.as_bytes()).collect();
            collect(&self.by_topic, &decoded, out);
        }
        if !self.by_path.is_empty() {
            if let Ok(url) = base.join(topic) {
                let decoded: Vec<u8> = percent_decode(url.path().as_bytes()).collect();
                collect(&self.by_path, &decoded, out);
            }
        }
    }
}

fn collect(map: &HashMap<Box<[u8]>, Vec<u64>>, key: &[u8], out: &mut Vec<u64>) {
    for (at, byte) in key.iter().enumerate() {
        if *byte == b'/' {
            if let Some(ids) = map.get(&key[..=at]) {
                out.extend_from_slice(ids);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://hub.example/.well-known/mercure").unwrap()
    }

    #[test]
    fn literal_starts_are_cut_after_their_last_slash() {
        assert_eq!(
            Anchor::of_literal("https://example.com/t/4").as_deref(),
            Some(&b"https://example.com/t/"[..])
        );
        assert_eq!(
            Anchor::of_literal("/caf%C3%A9/x").as_deref(),
            Some("/café/".as_bytes())
        );
        assert_eq!(Anchor::of_literal("/"), None);
        assert_eq!(Anchor::of_literal("abc"), None);
    }

    #[test]
    fn candidates_come_from_the_topic_prefixes() {
        let mut anchors = Anchors::default();
        anchors.add(
            1,
            Anchor::of_literal("https://example.com/t/1/").map(Anchor::Topic),
        );
        anchors.add(
            2,
            Anchor::of_literal("https://example.com/t/2/").map(Anchor::Topic),
        );
        anchors.add(3, Anchor::of_literal("/p/1/").map(Anchor::Path));
        anchors.add(4, None);
        let mut out = Vec::new();
        anchors.candidates("https://example.com/t/1/x", &base(), &mut out);
        assert_eq!(out, [4, 1]);
        out.clear();
        anchors.candidates("https://other.example/p/1/item/9", &base(), &mut out);
        assert_eq!(out, [4, 3]);
        out.clear();
        anchors.candidates("https://example.com/t/%31/x", &base(), &mut out);
        assert_eq!(out, [4, 1], "encoded forms meet their raw pattern");
        anchors.remove(
            1,
            Anchor::of_literal("https://example.com/t/1/").map(Anchor::Topic),
        );
        anchors.remove(4, None);
        out.clear();
        anchors.candidates("https://example.com/t/1/x", &base(), &mut out);
        assert!(out.is_empty());
    }
}
