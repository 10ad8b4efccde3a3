//! The `urlpattern` matcher type, on the `urlpattern` crate.
//!
//! The crate compiles patterns to the `regex` crate, whose matching time is
//! linear in the input: that is the evaluation-cost bound the spec asks for,
//! together with the length limit the caller applies to patterns and the
//! topic length limit applied at publication.

use url::Url;
use urlpattern::{UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

pub type PatternError = urlpattern::Error;

pub struct UrlPatternMatcher {
    pattern: UrlPattern,
    base: Url,
}

impl UrlPatternMatcher {
    pub fn parse(source: &str, base: &Url) -> Result<UrlPatternMatcher, PatternError> {
        let init = UrlPatternInit::parse_constructor_string::<regex::Regex>(source, Some(base.clone()))?;
        // ignoreCase stays off: the spec forbids it.
        let pattern = UrlPattern::parse(init, UrlPatternOptions::default())?;
        Ok(UrlPatternMatcher {
            pattern,
            base: base.clone(),
        })
    }

    /// A topic that does not parse as a URL reference never matches.
    pub fn matches(&self, topic: &str) -> bool {
        match self.base.join(topic) {
            Ok(url) => self.pattern.test(UrlPatternMatchInput::Url(url)).unwrap_or(false),
            Err(_) => false,
        }
    }
}
