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

pub type PatternError = urlpattern::Error;

/// The expression `urlpattern` generates for a wildcard component.
const ANYTHING: &str = "^(.*)$";

pub struct UrlPatternMatcher {
    pattern: UrlPattern<Expression>,
    base: Url,
}

impl UrlPatternMatcher {
    pub fn parse(source: &str, base: &Url) -> Result<UrlPatternMatcher, PatternError> {
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

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        match self {
            Expression::Anything => Some(vec![Some(text)]),
            Expression::Lite(regex) => {
                let captures = regex.captures(text)?;
                Some(
                    captures
                        .iter()
                        .skip(1)
                        .map(|c| c.map(|m| m.as_str()))
                        .collect(),
                )
            }
        }
    }

    fn pattern_string(&self) -> &str {
        match self {
            Expression::Anything => ANYTHING,
            Expression::Lite(regex) => regex.as_str(),
        }
    }
}
