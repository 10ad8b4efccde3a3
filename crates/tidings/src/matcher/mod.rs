//! Topic matchers: how a subscription or a grant selects topics.
//!
//! One type serves routing (which topics a subscriber listens to) and
//! authorization (which topics a token grants), in both protocol generations:
//! draft-08 `exact` and `urlpattern`, and draft-07 topic selectors (exact
//! string or RFC 6570 URI template). `*` matches every topic in all of them.

mod pattern;
mod template;

pub use pattern::PatternError;
pub use template::{UriTemplate, Value, Variables};

use pattern::UrlPatternMatcher;
use std::fmt;
use std::sync::Arc;
use url::Url;

/// The matcher types a subscription can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// Byte-for-byte comparison (draft-08 `match`, `match_exact`).
    Exact,
    /// WHATWG URL Pattern (draft-08 `match_urlpattern`).
    UrlPattern,
    /// Draft-07 topic selector: exact string or URI template (`topic=`).
    Selector,
}

impl MatchKind {
    /// The canonical matcher type name used in subscription topics and documents.
    pub fn name(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::UrlPattern => "urlpattern",
            MatchKind::Selector => "selector",
        }
    }

    /// Parses a draft-08 `match_type` value; names are case-sensitive.
    pub fn from_name(name: &str) -> Option<MatchKind> {
        match name {
            "exact" => Some(MatchKind::Exact),
            "urlpattern" => Some(MatchKind::UrlPattern),
            _ => None,
        }
    }
}

/// Why a matcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("{0}")]
    Characters(String),
    #[error("is longer than {0} bytes")]
    TooLong(usize),
    #[error("is not a valid URL pattern: {0}")]
    Pattern(#[from] PatternError),
}

/// A compiled matcher.
pub struct Matcher {
    kind: MatchKind,
    /// Shared with the topic index, which keys exact topics by it.
    source: Arc<str>,
    compiled: Compiled,
}

enum Compiled {
    Any,
    Exact,
    Pattern(Box<UrlPatternMatcher>),
    Template(Box<UriTemplate>),
}

impl Matcher {
    /// Compiles `source` as a matcher of `kind`; relative URL patterns and
    /// topics resolve against `base` (the hub's URL).
    pub fn parse(
        kind: MatchKind,
        source: &str,
        base: &Url,
        max_len: usize,
    ) -> Result<Matcher, MatcherError> {
        if source.len() > max_len {
            return Err(MatcherError::TooLong(max_len));
        }
        if let Some(reason) = crate::text::forbidden_character(source) {
            return Err(MatcherError::Characters(reason));
        }
        let compiled = match kind {
            _ if source == "*" => Compiled::Any,
            MatchKind::Exact => Compiled::Exact,
            MatchKind::UrlPattern => {
                Compiled::Pattern(Box::new(UrlPatternMatcher::parse(source, base)?))
            }
            // Draft-07: a selector that is not a valid template is a plain string.
            MatchKind::Selector if !UriTemplate::is_template(source) => Compiled::Exact,
            MatchKind::Selector => match UriTemplate::parse(source) {
                Ok(template) => Compiled::Template(Box::new(template)),
                Err(_) => Compiled::Exact,
            },
        };
        Ok(Matcher {
            kind,
            source: source.into(),
            compiled,
        })
    }

    pub fn kind(&self) -> MatchKind {
        self.kind
    }

    /// The matcher exactly as the client wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn shared_source(&self) -> Arc<str> {
        self.source.clone()
    }

    /// True when only an equal topic can match, so the topic index can
    /// look it up in a hash map instead of evaluating it.
    pub fn is_exact(&self) -> bool {
        matches!(self.compiled, Compiled::Exact)
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self.compiled, Compiled::Any)
    }

    /// Where the topic index files this pattern (see `anchors.rs`).
    pub(crate) fn anchor(&self) -> Option<crate::anchors::Anchor> {
        use crate::anchors::Anchor;
        match &self.compiled {
            Compiled::Template(_) => {
                let literal = &self.source[..self.source.find('{')?];
                Anchor::of_literal(literal).map(Anchor::Topic)
            }
            Compiled::Pattern(pattern) => {
                let path = pattern.pathname();
                // Stop at the first character with a meaning in URL Pattern syntax.
                let end = path
                    .find([':', '*', '(', ')', '{', '}', '\\', '?', '+'])
                    .unwrap_or(path.len());
                Anchor::of_literal(&path[..end]).map(Anchor::Path)
            }
            Compiled::Any | Compiled::Exact => None,
        }
    }

    pub fn matches(&self, topic: &str) -> bool {
        match &self.compiled {
            Compiled::Any => true,
            Compiled::Exact => *self.source == *topic,
            Compiled::Pattern(pattern) => pattern.matches(topic),
            // A draft-07 selector also matches its own text, which lets a
            // template grant cover a subscription to the same template.
            Compiled::Template(template) => *self.source == *topic || template.matches(topic),
        }
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Url {
        Url::parse("https://hub.example.com/.well-known/mercure").unwrap()
    }

    fn matcher(kind: MatchKind, source: &str) -> Matcher {
        Matcher::parse(kind, source, &hub(), 1024).unwrap()
    }

    #[test]
    fn star_matches_everything_whatever_the_kind() {
        for kind in [MatchKind::Exact, MatchKind::UrlPattern, MatchKind::Selector] {
            assert!(matcher(kind, "*").matches("anything at all"));
        }
    }

    #[test]
    fn exact_is_byte_for_byte() {
        let m = matcher(MatchKind::Exact, "https://example.com/Foo");
        assert!(m.matches("https://example.com/Foo"));
        assert!(!m.matches("https://example.com/foo"));
        assert!(!m.matches("https://example.com/Foo/"));
        assert!(m.is_exact());
    }

    #[test]
    fn url_pattern_resolves_relative_topics_against_the_hub() {
        let m = matcher(
            MatchKind::UrlPattern,
            "/.well-known/mercure/subscriptions/*",
        );
        assert!(m.matches("/.well-known/mercure/subscriptions/exact/a/b"));
        assert!(m.matches("https://hub.example.com/.well-known/mercure/subscriptions/x"));
        assert!(!m.matches("https://other.example.com/.well-known/mercure/subscriptions/x"));
        let books = matcher(MatchKind::UrlPattern, "https://example.com/books/:id");
        assert!(books.matches("https://example.com/books/1"));
        assert!(!books.matches("https://example.com/books/1/2"));
        assert!(!books.matches("urn:isbn:1"));
    }

    #[test]
    fn selector_is_exact_or_template() {
        let plain = matcher(MatchKind::Selector, "https://example.com/a");
        assert!(plain.is_exact());
        let template = matcher(MatchKind::Selector, "https://example.com/books/{id}");
        assert!(!template.is_exact());
        assert!(template.matches("https://example.com/books/1"));
        assert!(template.matches("https://example.com/books/{id}"));
        assert!(!template.matches("https://example.com/books/1/2"));
    }

    #[test]
    fn refuses_bad_input() {
        let base = hub();
        assert!(matches!(
            Matcher::parse(MatchKind::Exact, "a\nb", &base, 64),
            Err(MatcherError::Characters(_))
        ));
        assert!(matches!(
            Matcher::parse(MatchKind::Exact, &"a".repeat(65), &base, 64),
            Err(MatcherError::TooLong(64))
        ));
        assert!(Matcher::parse(MatchKind::UrlPattern, "https://example.com/(", &base, 64).is_err());
        let broken =
            Matcher::parse(MatchKind::Selector, "https://example.com/{", &base, 64).unwrap();
        assert!(broken.is_exact(), "an invalid template is a plain string");
    }
}
