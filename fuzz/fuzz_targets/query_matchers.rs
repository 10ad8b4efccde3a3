//! The subscribe query string and the matchers it names
//! (`http/subscribe.rs`, `matcher/`): exact topics, URL patterns and
//! draft-07 selectors (exact strings or RFC 6570 URI templates), each then
//! matched against topics.
//!
//! Checked: no panic; `*` matches everything; an exact matcher matches
//! exactly its own text; a selector matches its own text; a URI template
//! matches every expansion of itself (the template matcher promises that
//! some assignment of the variables expands to what it matches, and
//! every expansion is such an assignment).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use tidings::fuzzing::subscribe_query;
use tidings::matcher::{MatchKind, Matcher, UriTemplate, Value};
use url::Url;

/// Longest matcher the hub accepts by default.
const MAX_LEN: usize = 1024;

/// The input, readable as text: a flag byte (bit 0: draft-07 enabled,
/// bit 1: a `QUERY` body follows the query), then lines: the query, the
/// body if any, then topics. Each topic line is also a value for the
/// template variables in turn: `list:a,b` is a list, `assoc:k=v,l=w` an
/// associative array, anything else a string.
struct Input<'a> {
    legacy: bool,
    query: &'a [u8],
    body: Option<&'a [u8]>,
    topics: Vec<String>,
}

impl<'a> Input<'a> {
    fn read(data: &'a [u8]) -> Option<Input<'a>> {
        let (&flags, rest) = data.split_first()?;
        let mut lines = rest.split(|b| *b == b'\n');
        let query = lines.next()?;
        let body = if flags & 2 != 0 { lines.next() } else { None };
        let topics = lines
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        Some(Input {
            legacy: flags & 1 != 0,
            query,
            body,
            topics,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let Ok(parsed) = subscribe_query(input.query, input.body, input.legacy) else {
        return;
    };
    assert!(!parsed.matchers.is_empty());
    let base = Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
    for (kind, source) in &parsed.matchers {
        let Ok(matcher) = Matcher::parse(*kind, source, &base, MAX_LEN) else {
            continue;
        };
        for topic in input
            .topics
            .iter()
            .map(String::as_str)
            .chain([source.as_str()])
        {
            let matched = matcher.matches(topic);
            if matcher.is_wildcard() {
                assert!(matched, "`*` refused {topic:?}");
            } else if matcher.is_exact() {
                assert_eq!(matched, topic == source, "exact {source:?} on {topic:?}");
            }
        }
        if *kind == MatchKind::Selector {
            assert!(
                matcher.matches(source),
                "selector {source:?} refuses its own text"
            );
            // Compiled as a template, not as the plain string a selector
            // without a valid expression is.
            let compiled = !matcher.is_exact() && !matcher.is_wildcard();
            if let Some(template) = compiled.then(|| UriTemplate::parse(source).ok()).flatten() {
                let expanded = template.expand(&variables(source, &input.topics));
                assert!(
                    matcher.matches(&expanded),
                    "template {source:?} refuses its expansion {expanded:?}"
                );
            }
        }
    }
});

/// Binds the input's values to the template's variable names, found the
/// simple way: the names between `{` and `}`, without operator or modifier.
fn variables(template: &str, values: &[String]) -> HashMap<String, Value> {
    let mut names = Vec::new();
    for expression in template.split('{').skip(1) {
        let Some((inside, _)) = expression.split_once('}') else {
            continue;
        };
        let inside = inside.trim_start_matches(['+', '#', '.', '/', ';', '?', '&']);
        for spec in inside.split(',') {
            let name = spec.split(':').next().unwrap_or("").trim_end_matches('*');
            names.push(name.to_string());
        }
    }
    names
        .into_iter()
        .zip(values)
        .map(|(name, value)| (name, value_of(value)))
        .collect()
}

fn value_of(line: &str) -> Value {
    if let Some(list) = line.strip_prefix("list:") {
        Value::List(list.split(',').map(str::to_string).collect())
    } else if let Some(pairs) = line.strip_prefix("assoc:") {
        Value::Assoc(
            pairs
                .split(',')
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (key.to_string(), value.to_string())
                })
                .collect(),
        )
    } else {
        Value::String(line.to_string())
    }
}
