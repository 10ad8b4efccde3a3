//! The `urlpattern` matcher type, on the `urlpattern` crate.
//!
//! The crate compiles each of a pattern's eight components to a regular
//! expression, through the engine we give it. We give it `regex-lite`: its
//! matching time is linear in the input (the evaluation-cost bound the spec
//! asks for, with the length limits on patterns and topics), and its
//! compiled form is a plain NFA. The full `regex` crate keeps several
//! engines and caches per expression, tens of kilobytes each, which for
//! eight expressions per subscriber pattern cost more than everything else
//! a subscriber holds. Components that match anything need no expression.

use url::Url;
use urlpattern::regexp::RegExp;
use urlpattern::{
    RegexSyntax, UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions,
};

/// Why a URL pattern was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error(transparent)]
    Syntax(#[from] urlpattern::Error),
    #[error("`[` and `]` may only enclose an IPv6 address")]
    StrayBracket,
    #[error("a URL pattern may have at most {MAX_GROUPS} wildcards and groups")]
    TooManyGroups,
}

/// Most wildcards and groups a pattern may have. Each is a state that stays
/// live through a whole match, so one of hundreds of `*` made every topic
/// it was matched against cost a millisecond or more (found by the
/// `http_head` fuzz target); patterns people write have a few.
pub const MAX_GROUPS: usize = 16;

/// The expression `urlpattern` generates for a wildcard component.
const ANYTHING: &str = "^(.*)$";

pub struct UrlPatternMatcher {
    pattern: UrlPattern<Expression>,
    base: Url,
}

impl UrlPatternMatcher {
    pub fn parse(source: &str, base: &Url) -> Result<UrlPatternMatcher, PatternError> {
        if !brackets_enclose_only_addresses(source) {
            return Err(PatternError::StrayBracket);
        }
        if groups(source) > MAX_GROUPS {
            return Err(PatternError::TooManyGroups);
        }
        let init =
            UrlPatternInit::parse_constructor_string::<Expression>(source, Some(base.clone()))?;
        // ignoreCase stays off: the spec forbids it.
        let pattern = UrlPattern::parse(init, UrlPatternOptions::default())?;
        Ok(UrlPatternMatcher {
            pattern,
            base: base.clone(),
        })
    }

    /// The pattern's path component, as compiled.
    pub fn pathname(&self) -> &str {
        self.pattern.pathname()
    }

    /// A topic that does not parse as a URL reference never matches.
    pub fn matches(&self, topic: &str) -> bool {
        match self.base.join(topic) {
            Ok(url) => self
                .pattern
                .test(UrlPatternMatchInput::Url(url))
                .unwrap_or(false),
            Err(_) => false,
        }
    }
}

/// Whether every `[` and `]` that urlpattern reads as a character of the
/// pattern encloses an IPv6 address. urlpattern 0.6.0 counts a host's
/// brackets in an unsigned integer and subtracts for a `]` that closes no
/// `[` (`constructor_parser.rs`): a panic with overflow checks, a wrapped
/// count without. A URL has brackets nowhere else (RFC 3986 section
/// 3.2.2), so nothing valid is refused; brackets inside a regular
/// expression group, as in `:id([0-9]+)`, are the expression's own.
fn brackets_enclose_only_addresses(source: &str) -> bool {
    let chars: Vec<char> = source.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '\\' if matches!(chars.get(at + 1), Some('[' | ']')) => return false,
            '\\' => at += 2,
            '(' => at = group_end(&chars, at).unwrap_or(at + 1),
            '[' => {
                let inside = chars[at + 1..]
                    .iter()
                    // A pattern escapes the colons: `[\:\:1]`.
                    .take_while(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '\\'))
                    .count();
                let close = at + 1 + inside;
                if chars.get(close) != Some(&']') {
                    return false;
                }
                at = close + 1;
            }
            ']' => return false,
            _ => at += 1,
        }
    }
    true
}

/// The wildcards (`*`), named groups (`:id`) and regular expression groups
/// in a pattern, counted generously: a `*` or `(` inside an expression
/// counts too.
fn groups(source: &str) -> usize {
    let mut count = 0;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '(' => count += 1,
            ':' if chars
                .peek()
                .is_some_and(|next| next.is_alphabetic() || matches!(next, '_' | '$')) =>
            {
                count += 1
            }
            _ => {}
        }
    }
    count
}

/// Where the regular expression group opening at `open` ends, as
/// urlpattern's tokenizer reads it; `None` when the tokenizer refuses it
/// and reads the `(` as a character and what follows as more pattern.
fn group_end(chars: &[char], open: usize) -> Option<usize> {
    if chars.get(open + 1) == Some(&'?') {
        return None;
    }
    let mut depth = 1;
    let mut at = open + 1;
    while let Some(&c) = chars.get(at) {
        match c {
            _ if !c.is_ascii() => return None,
            '\\' if !chars.get(at + 1)?.is_ascii() => return None,
            '\\' => at += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return (at > open + 1).then_some(at + 1);
                }
            }
            '(' if chars.get(at + 1) != Some(&'?') => return None,
            '(' => depth += 1,
            _ => {}
        }
        at += 1;
    }
    None
}

/// One component's expression.
pub enum Expression {
    Anything,
    Lite(regex_lite::Regex),
}

impl RegExp for Expression {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Expression, ()> {
        if pattern == ANYTHING {
            return Ok(Expression::Anything);
        }
        regex_lite::Regex::new(pattern)
            .map(Expression::Lite)
            .map_err(|_| ())
    }

    /// Whether `text` matches, without the groups' values: the hub only
    /// asks `UrlPattern::test`, never `exec`, so tracking where each group
    /// starts and ends would be work thrown away.
    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        match self {
            Expression::Anything => Some(Vec::new()),
            Expression::Lite(regex) => regex.is_match(text).then(Vec::new),
        }
    }

    fn pattern_string(&self) -> &str {
        match self {
            Expression::Anything => ANYTHING,
            Expression::Lite(regex) => regex.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Result<UrlPatternMatcher, PatternError> {
        let base = Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
        UrlPatternMatcher::parse(source, &base)
    }

    #[test]
    fn wildcards_and_groups_are_capped() {
        let sixteen = format!("https://example.com/{}", "*/".repeat(MAX_GROUPS));
        let pattern = parse(&sixteen).unwrap();
        let topic = format!("https://example.com/{}", "a/".repeat(MAX_GROUPS));
        assert!(pattern.matches(&topic));
        assert!(!pattern.matches("https://example.com/a"));
        let mixed = "https://example.com:8080/:kind/:id(\\d+)/*";
        assert!(parse(mixed)
            .unwrap()
            .matches("https://example.com:8080/books/7/x"));
        // Found by the http_head fuzz target: hundreds of `*`.
        for hostile in [
            format!("https://example.com/{}", "*".repeat(MAX_GROUPS + 1)),
            format!("/{}", ":a/".repeat(MAX_GROUPS + 1)),
            format!("/{}", "(x)".repeat(MAX_GROUPS + 1)),
            format!("!!#!!*/{}F*****", "*".repeat(200)),
        ] {
            assert!(
                matches!(parse(&hostile), Err(PatternError::TooManyGroups)),
                "{hostile}"
            );
        }
    }

    #[test]
    fn a_bracket_outside_an_ipv6_host_is_refused_not_a_panic() {
        // Found by the query_matchers fuzz target: urlpattern subtracted
        // below zero for the `]` in the host.
        for stray in [
            "https://exampratc]_urlpattern=https://example.*",
            "https://h]:8080/x",
            "https://h(]",
            "https://h\\]",
            "https://[::1/x",
            "https://example.com/a]",
            "https://a@h]",
        ] {
            assert!(
                matches!(parse(stray), Err(PatternError::StrayBracket)),
                "{stray}"
            );
        }
    }

    #[test]
    fn ipv6_hosts_and_expression_classes_keep_their_brackets() {
        let host = parse("https://[\\:\\:1]:8080/books/:id").unwrap();
        assert!(host.matches("https://[::1]:8080/books/1"));
        let class = parse("https://example.com/books/:id([0-9]+)").unwrap();
        assert!(class.matches("https://example.com/books/12"));
        assert!(!class.matches("https://example.com/books/x"));
    }
}
