//! RFC 6570 URI Templates: parsing, expansion and matching.
//!
//! Mercure topic selectors may be URI templates, and a topic matches such a
//! selector when it is a possible expansion of the template. This module owns
//! that question, for all four levels of the RFC. It is written here because no
//! permissively licensed crate matches Level 4 templates.
//!
//! A template is compiled once into an anchored expression for `regex-lite`,
//! whose matching runs in time linear in the candidate: a hostile selector
//! cannot make matching backtrack, and the compiled size is capped. The lite
//! engine keeps a plain NFA, a small fraction of what the full `regex` crate
//! holds per expression; a hub keeps one per distinct subscriber selector.
//!
//! Matching is generous where the RFC leaves room: percent-encoding is read in
//! either case, raw non-ASCII characters stand for their encoding (as in an
//! IRI), and literals match as written or encoded.

use std::collections::HashMap;
use std::fmt::{self, Write};

use regex_lite::{Regex, RegexBuilder};

/// Cap on the compiled matcher, so one template cannot claim unbounded memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Largest prefix length the RFC grammar allows (`max-length`).
const MAX_PREFIX: usize = 9999;

/// Longest prefix whose length is checked when matching. A counted repetition
/// costs a copy of the character pattern per position, so longer prefixes
/// match like an unprefixed string instead of exhausting the size cap.
const MAX_COUNTED_PREFIX: usize = 64;

/// Characters a value may show unencoded: RFC 3986 `unreserved`, plus
/// non-ASCII characters, which an expansion encodes but an IRI carries raw.
const UNRESERVED_CLASS: &str = r"A-Za-z0-9\-._~\x{80}-\x{10FFFF}";

/// RFC 3986 `reserved`, left as-is by the `+` and `#` operators.
const RESERVED_CLASS: &str = r":/?#\[\]@!$&'()*+,;=";

/// One percent-encoded octet, in either case.
const PCT_ENCODED: &str = "%[0-9A-Fa-f]{2}";

/// One percent-encoded character: a lead octet and up to three UTF-8
/// continuation octets. Used where the RFC counts characters.
const PCT_ENCODED_CHAR: &str = "%[0-9A-Fa-f]{2}(?:%[89ABab][0-9A-Fa-f]){0,3}";

/// A variable's value, as RFC 6570 section 2.3 defines them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    String(String),
    List(Vec<String>),
    /// An associative array; order is kept as given.
    Assoc(Vec<(String, String)>),
}

/// Values by variable name; a missing name is an undefined variable.
pub type Variables = HashMap<String, Value>;

/// Why a template was rejected.
#[derive(Debug)]
pub struct TemplateError {
    reason: String,
}

impl TemplateError {
    fn new(reason: impl Into<String>) -> TemplateError {
        TemplateError {
            reason: reason.into(),
        }
    }

    fn too_complex() -> TemplateError {
        TemplateError::new("template too complex")
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed URI template with its compiled matcher.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    source: String,
    parts: Vec<Part>,
    regex: Regex,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Expression(Expression),
}

#[derive(Debug, Clone)]
struct Expression {
    op: Operator,
    specs: Vec<VarSpec>,
}

#[derive(Debug, Clone)]
struct VarSpec {
    name: String,
    modifier: Modifier,
}

#[derive(Debug, Clone, Copy)]
enum Modifier {
    None,
    Prefix(usize),
    Explode,
}

/// Expression operators (RFC 6570 section 3.2, and the table in appendix A).
#[derive(Debug, Clone, Copy)]
enum Operator {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    PathParam,
    Query,
    QueryContinuation,
}

impl UriTemplate {
    /// Parses `template` and compiles its matcher.
    pub fn parse(template: &str) -> Result<UriTemplate, TemplateError> {
        let parts = parse_parts(template)?;
        let mut pattern = String::from(r"\A(?:");
        for part in &parts {
            part.write_pattern(&mut pattern)?;
        }
        pattern.push_str(r")\z");
        let regex = RegexBuilder::new(&pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|err| {
                // regex-lite's errors have no kinds; its size error names the limit.
                let reason = err.to_string();
                if reason.contains("limit") {
                    TemplateError::too_complex()
                } else {
                    TemplateError::new(reason)
                }
            })?;
        Ok(UriTemplate {
            source: template.to_owned(),
            parts,
            regex,
        })
    }

    /// Whether `s` contains an expression, and so is meant as a template
    /// rather than a plain string.
    pub fn is_template(s: &str) -> bool {
        s.find('{').is_some_and(|open| s[open..].contains('}'))
    }

    /// Whether some assignment of the variables expands to exactly `candidate`.
    pub fn matches(&self, candidate: &str) -> bool {
        self.regex.is_match(candidate)
    }

    /// Expands the template (RFC 6570 section 3).
    pub fn expand(&self, vars: &Variables) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) => encode(literal, true, &mut out),
                Part::Expression(expr) => expr.expand(vars, &mut out),
            }
        }
        out
    }

    /// The template as it was parsed.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Splits a template into literals and expressions.
fn parse_parts(template: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut start = 0;
    while let Some(found) = template[start..].find(['{', '}']) {
        let open = start + found;
        if template[open..].starts_with('}') {
            return Err(TemplateError::new(format!("unmatched '}}' at byte {open}")));
        }
        let close = match template[open + 1..].find(['{', '}']) {
            Some(len) if template[open + 1 + len..].starts_with('}') => open + 1 + len,
            _ => {
                return Err(TemplateError::new(format!(
                    "unclosed expression at byte {open}"
                )))
            }
        };
        if open > start {
            parts.push(Part::Literal(template[start..open].to_owned()));
        }
        let expr = parse_expression(&template[open + 1..close], open)?;
        parts.push(Part::Expression(expr));
        start = close + 1;
    }
    if start < template.len() {
        parts.push(Part::Literal(template[start..].to_owned()));
    }
    Ok(parts)
}

/// Parses the text between braces; `open` is the byte offset of the `{`.
fn parse_expression(body: &str, open: usize) -> Result<Expression, TemplateError> {
    let first = body
        .chars()
        .next()
        .ok_or_else(|| TemplateError::new(format!("empty expression at byte {open}")))?;
    // `op-reserve`: kept by the RFC for future extensions.
    if matches!(first, '=' | ',' | '!' | '@' | '|') {
        return Err(TemplateError::new(format!(
            "unsupported operator '{first}' at byte {}",
            open + 1
        )));
    }
    let (op, list) = match Operator::from_char(first) {
        Some(op) => (op, &body[1..]),
        None => (Operator::Simple, body),
    };
    let mut at = open + 1 + body.len() - list.len();
    let mut specs = Vec::new();
    for spec in list.split(',') {
        specs.push(parse_varspec(spec, at)?);
        at += spec.len() + 1;
    }
    Ok(Expression { op, specs })
}

/// Parses `name`, `name*` or `name:n`; `at` is the spec's byte offset.
fn parse_varspec(spec: &str, at: usize) -> Result<VarSpec, TemplateError> {
    let (name, modifier) = if let Some(name) = spec.strip_suffix('*') {
        (name, Modifier::Explode)
    } else if let Some((name, len)) = spec.split_once(':') {
        let len = parse_prefix(len).ok_or_else(|| {
            TemplateError::new(format!("invalid prefix length at byte {}", at + name.len()))
        })?;
        (name, Modifier::Prefix(len))
    } else {
        (spec, Modifier::None)
    };
    if !is_varname(name) {
        return Err(TemplateError::new(format!(
            "invalid variable name at byte {at}"
        )));
    }
    Ok(VarSpec {
        name: name.to_owned(),
        modifier,
    })
}

/// `max-length`: 1 to 9999 without leading zeros.
fn parse_prefix(len: &str) -> Option<usize> {
    if len.starts_with('0') || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    len.parse().ok().filter(|&n| n <= MAX_PREFIX)
}

/// `varname`: varchars (ALPHA, DIGIT, `_`, pct-encoded) with single inner dots.
fn is_varname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    let mut after_dot = true;
    while i < bytes.len() {
        match bytes[i] {
            b'.' if !after_dot => after_dot = true,
            b'%' if starts_pct_encoded(&name[i..]) => {
                after_dot = false;
                i += 2;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => after_dot = false,
            _ => return false,
        }
        i += 1;
    }
    !after_dot
}

impl Operator {
    fn from_char(c: char) -> Option<Operator> {
        Some(match c {
            '+' => Operator::Reserved,
            '#' => Operator::Fragment,
            '.' => Operator::Label,
            '/' => Operator::Path,
            ';' => Operator::PathParam,
            '?' => Operator::Query,
            '&' => Operator::QueryContinuation,
            _ => return None,
        })
    }

    fn first(self) -> &'static str {
        match self {
            Operator::Simple | Operator::Reserved => "",
            Operator::Fragment => "#",
            Operator::Label => ".",
            Operator::Path => "/",
            Operator::PathParam => ";",
            Operator::Query => "?",
            Operator::QueryContinuation => "&",
        }
    }

    fn separator(self) -> &'static str {
        match self {
            Operator::Simple | Operator::Reserved | Operator::Fragment => ",",
            Operator::Label => ".",
            Operator::Path => "/",
            Operator::PathParam => ";",
            Operator::Query | Operator::QueryContinuation => "&",
        }
    }

    /// Whether values are written as `name=value` pairs.
    fn named(self) -> bool {
        matches!(
            self,
            Operator::PathParam | Operator::Query | Operator::QueryContinuation
        )
    }

    /// What follows the name of a named empty value.
    fn if_empty(self) -> &'static str {
        match self {
            Operator::Query | Operator::QueryContinuation => "=",
            _ => "",
        }
    }

    fn allows_reserved(self) -> bool {
        matches!(self, Operator::Reserved | Operator::Fragment)
    }
}

impl Part {
    fn write_pattern(&self, out: &mut String) -> Result<(), TemplateError> {
        match self {
            Part::Literal(literal) => {
                out.push_str(&literal_pattern(literal));
                check_pattern_size(out)
            }
            Part::Expression(expr) => expr.write_pattern(out),
        }
    }
}

/// Expressions grow quadratically with their variable count, so the pattern
/// text is held to the same cap as the compiled matcher while it is built.
fn check_pattern_size(pattern: &str) -> Result<(), TemplateError> {
    if pattern.len() > REGEX_SIZE_LIMIT {
        return Err(TemplateError::too_complex());
    }
    Ok(())
}

impl Expression {
    /// Appendix A: join the defined variables, each expanded per its modifier.
    fn expand(&self, vars: &Variables, out: &mut String) {
        let mut first = true;
        for spec in &self.specs {
            let Some(value) = vars.get(&spec.name).filter(|v| spec.is_defined_by(v)) else {
                continue;
            };
            out.push_str(if first {
                self.op.first()
            } else {
                self.op.separator()
            });
            first = false;
            self.expand_value(spec, value, out);
        }
    }

    fn expand_value(&self, spec: &VarSpec, value: &Value, out: &mut String) {
        match (value, spec.modifier) {
            (Value::String(s), Modifier::Prefix(len)) => {
                self.push_named(&spec.name, truncate(s, len), out)
            }
            (Value::String(s), _) => self.push_named(&spec.name, s, out),
            (Value::List(items), Modifier::Explode) => self.join(items, out, |item, out| {
                self.push_named(&spec.name, item, out)
            }),
            (Value::Assoc(pairs), Modifier::Explode) => {
                self.join(pairs, out, |(k, v), out| self.push_pair(k, v, out))
            }
            (Value::List(items), _) => {
                self.push_composite(&spec.name, items.iter().map(String::as_str), out)
            }
            (Value::Assoc(pairs), _) => {
                let flat = pairs.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]);
                self.push_composite(&spec.name, flat, out)
            }
        }
    }

    fn join<T>(&self, items: &[T], out: &mut String, mut push: impl FnMut(&T, &mut String)) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(self.op.separator());
            }
            push(item, out);
        }
    }

    /// `name=value` (or `name` plus ifemp when empty) for named operators,
    /// the bare value otherwise.
    fn push_named(&self, name: &str, value: &str, out: &mut String) {
        if self.op.named() {
            out.push_str(name);
            if value.is_empty() {
                out.push_str(self.op.if_empty());
                return;
            }
            out.push('=');
        }
        encode(value, self.op.allows_reserved(), out);
    }

    /// An exploded associative pair: the key takes the place of the name.
    fn push_pair(&self, key: &str, value: &str, out: &mut String) {
        encode(key, self.op.allows_reserved(), out);
        if self.op.named() && value.is_empty() {
            out.push_str(self.op.if_empty());
        } else {
            out.push('=');
            encode(value, self.op.allows_reserved(), out);
        }
    }

    /// An unexploded list or associative array: comma-separated items.
    fn push_composite<'a>(
        &self,
        name: &str,
        items: impl Iterator<Item = &'a str>,
        out: &mut String,
    ) {
        if self.op.named() {
            out.push_str(name);
            out.push('=');
        }
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.push(',');
            }
            encode(item, self.op.allows_reserved(), out);
        }
    }

    /// Any in-order subset of the variables may be defined, joined by the
    /// separator, so there is one branch per choice of the first defined one.
    fn write_pattern(&self, out: &mut String) -> Result<(), TemplateError> {
        let sep = regex_lite::escape(self.op.separator());
        let _ = write!(out, "(?:{}(?:", regex_lite::escape(self.op.first()));
        for (i, spec) in self.specs.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            out.push_str(&self.value_pattern(spec));
            for rest in &self.specs[i + 1..] {
                let _ = write!(out, "(?:{sep}{})?", self.value_pattern(rest));
                check_pattern_size(out)?;
            }
            check_pattern_size(out)?;
        }
        out.push_str("))?");
        Ok(())
    }

    /// Every expansion of one defined variable, whatever its value's type.
    fn value_pattern(&self, spec: &VarSpec) -> String {
        let op = self.op;
        let ch = char_pattern(op, "");
        let sep = regex_lite::escape(op.separator());
        // Strings, unexploded lists and unexploded associative arrays.
        let any = format!("{}*", char_pattern(op, ","));
        let pattern = match (op.named(), spec.modifier) {
            (false, Modifier::None) => any,
            (false, Modifier::Prefix(len)) => prefix_pattern(op, len),
            (false, Modifier::Explode) => {
                format!("{ch}*(?:{sep}{ch}*)*|{ch}*={ch}*(?:{sep}{ch}*={ch}*)*")
            }
            (true, Modifier::None) => assignment(op, &regex_lite::escape(&spec.name), &any),
            (true, Modifier::Prefix(len)) => assignment(
                op,
                &regex_lite::escape(&spec.name),
                &prefix_pattern(op, len),
            ),
            // Exploded pairs subsume exploded lists: a key may equal the name.
            (true, Modifier::Explode) => {
                let pair = assignment(op, &format!("{ch}*"), &format!("{ch}*"));
                format!("{pair}(?:{sep}{pair})*")
            }
        };
        format!("(?:{pattern})")
    }
}

impl VarSpec {
    /// Empty lists and arrays count as undefined (RFC 6570 section 2.3), and a
    /// prefix does not apply to composite values (section 2.4.1), so the
    /// variable is skipped then too.
    fn is_defined_by(&self, value: &Value) -> bool {
        let composite_is_empty = match value {
            Value::String(_) => return true,
            Value::List(items) => items.is_empty(),
            Value::Assoc(pairs) => pairs.is_empty(),
        };
        !composite_is_empty && !matches!(self.modifier, Modifier::Prefix(_))
    }
}

/// `name=value`, where operators with an empty ifemp may drop `=value`.
fn assignment(op: Operator, name: &str, value: &str) -> String {
    if op.if_empty().is_empty() {
        format!("{name}(?:={value})?")
    } else {
        format!("{name}={value}")
    }
}

/// The characters a value may show unencoded under `op`.
fn value_class(op: Operator) -> String {
    if op.allows_reserved() {
        format!("{UNRESERVED_CLASS}{RESERVED_CLASS}")
    } else {
        UNRESERVED_CLASS.to_owned()
    }
}

/// One character of an expanded value, plus the `extra` class characters.
fn char_pattern(op: Operator, extra: &str) -> String {
    format!("(?:[{}{extra}]|{PCT_ENCODED})", value_class(op))
}

/// At most `len` characters, counting each encoded character once.
fn prefix_pattern(op: Operator, len: usize) -> String {
    if len > MAX_COUNTED_PREFIX {
        return format!("{}*", char_pattern(op, ""));
    }
    format!("(?:[{}]|{PCT_ENCODED_CHAR}){{0,{len}}}", value_class(op))
}

/// A literal matches as written or as its expansion encodes it.
fn literal_pattern(literal: &str) -> String {
    let mut pattern = String::new();
    for (i, c) in literal.char_indices() {
        let mut encoded = String::new();
        encode_char(&literal[i..], c, true, &mut encoded);
        let raw = regex_lite::escape(c.encode_utf8(&mut [0; 4]));
        // Unchanged by encoding: the character is allowed in a URI as it is.
        if encoded.len() == c.len_utf8() {
            pattern.push_str(&raw);
        } else {
            let _ = write!(pattern, "(?:{raw}|{})", regex_lite::escape(&encoded));
        }
    }
    pattern
}

/// Percent-encodes `value` for an expansion; with `allow_reserved`, reserved
/// characters and existing pct-encoded triplets are kept (section 3.2.1).
fn encode(value: &str, allow_reserved: bool, out: &mut String) {
    for (i, c) in value.char_indices() {
        encode_char(&value[i..], c, allow_reserved, out);
    }
}

/// Encodes `c`, the first character of `rest`.
fn encode_char(rest: &str, c: char, allow_reserved: bool, out: &mut String) {
    let kept = is_unreserved(c)
        || allow_reserved && (is_reserved(c) || c == '%' && starts_pct_encoded(rest));
    if kept {
        out.push(c);
        return;
    }
    for byte in c.encode_utf8(&mut [0; 4]).bytes() {
        let _ = write!(out, "%{byte:02X}");
    }
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn is_reserved(c: char) -> bool {
    ":/?#[]@!$&'()*+,;=".contains(c)
}

fn starts_pct_encoded(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0] == b'%' && b[1].is_ascii_hexdigit() && b[2].is_ascii_hexdigit()
}

/// The first `len` characters of `s`.
fn truncate(s: &str, len: usize) -> &str {
    s.char_indices().nth(len).map_or(s, |(end, _)| &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| s.to_string()).collect())
    }

    fn assoc(pairs: &[(&str, &str)]) -> Value {
        Value::Assoc(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    const KEYS: [(&str, &str); 3] = [("semi", ";"), ("dot", "."), ("comma", ",")];

    /// The variables of RFC 6570 sections 1.2 and 3.2; `undef` stays unset.
    fn rfc_vars() -> Variables {
        HashMap::from([
            ("count".into(), list(&["one", "two", "three"])),
            ("dom".into(), list(&["example", "com"])),
            ("dub".into(), string("me/too")),
            ("hello".into(), string("Hello World!")),
            ("half".into(), string("50%")),
            ("var".into(), string("value")),
            ("who".into(), string("fred")),
            ("base".into(), string("http://example.com/home/")),
            ("path".into(), string("/foo/bar")),
            ("list".into(), list(&["red", "green", "blue"])),
            ("keys".into(), assoc(&KEYS)),
            ("v".into(), string("6")),
            ("x".into(), string("1024")),
            ("y".into(), string("768")),
            ("empty".into(), string("")),
            ("empty_keys".into(), Value::Assoc(Vec::new())),
        ])
    }

    fn template(source: &str) -> UriTemplate {
        UriTemplate::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    /// The RFC's expansion is produced and matched, for each (template, expected).
    fn check(cases: &[(&str, &str)]) {
        let vars = rfc_vars();
        for &(source, expected) in cases {
            let t = template(source);
            assert_eq!(t.expand(&vars), expected, "expanding {source}");
            assert!(t.matches(expected), "{source} should match {expected}");
        }
    }

    /// Associative arrays have no defined order, so every order of `keys`
    /// must expand to a string the template matches.
    fn check_any_key_order(sources: &[&str]) {
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for source in sources {
            let t = template(source);
            for order in orders {
                let mut vars = rfc_vars();
                vars.insert("keys".into(), assoc(&order.map(|i| KEYS[i])));
                let expansion = t.expand(&vars);
                assert!(t.matches(&expansion), "{source} should match {expansion}");
            }
        }
    }

    #[test]
    fn rfc_1_2_level_1() {
        check(&[("{var}", "value"), ("{hello}", "Hello%20World%21")]);
    }

    #[test]
    fn rfc_1_2_level_2() {
        check(&[
            ("{+var}", "value"),
            ("{+hello}", "Hello%20World!"),
            ("{+path}/here", "/foo/bar/here"),
            ("here?ref={+path}", "here?ref=/foo/bar"),
            ("X{#var}", "X#value"),
            ("X{#hello}", "X#Hello%20World!"),
        ]);
    }

    #[test]
    fn rfc_1_2_level_3() {
        check(&[
            ("map?{x,y}", "map?1024,768"),
            ("{x,hello,y}", "1024,Hello%20World%21,768"),
            ("{+x,hello,y}", "1024,Hello%20World!,768"),
            ("{+path,x}/here", "/foo/bar,1024/here"),
            ("{#x,hello,y}", "#1024,Hello%20World!,768"),
            ("{#path,x}/here", "#/foo/bar,1024/here"),
            ("X{.var}", "X.value"),
            ("X{.x,y}", "X.1024.768"),
            ("{/var}", "/value"),
            ("{/var,x}/here", "/value/1024/here"),
            ("{;x,y}", ";x=1024;y=768"),
            ("{;x,y,empty}", ";x=1024;y=768;empty"),
            ("{?x,y}", "?x=1024&y=768"),
            ("{?x,y,empty}", "?x=1024&y=768&empty="),
            ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
            ("{&x,y,empty}", "&x=1024&y=768&empty="),
        ]);
    }

    #[test]
    fn rfc_1_2_level_4() {
        check(&[
            ("{var:3}", "val"),
            ("{var:30}", "value"),
            ("{list}", "red,green,blue"),
            ("{list*}", "red,green,blue"),
            ("{keys}", "semi,%3B,dot,.,comma,%2C"),
            ("{keys*}", "semi=%3B,dot=.,comma=%2C"),
            ("{+path:6}/here", "/foo/b/here"),
            ("{+list}", "red,green,blue"),
            ("{+list*}", "red,green,blue"),
            ("{+keys}", "semi,;,dot,.,comma,,"),
            ("{+keys*}", "semi=;,dot=.,comma=,"),
            ("{#path:6}/here", "#/foo/b/here"),
            ("{#list}", "#red,green,blue"),
            ("{#list*}", "#red,green,blue"),
            ("{#keys}", "#semi,;,dot,.,comma,,"),
            ("{#keys*}", "#semi=;,dot=.,comma=,"),
            ("X{.var:3}", "X.val"),
            ("X{.list}", "X.red,green,blue"),
            ("X{.list*}", "X.red.green.blue"),
            ("X{.keys}", "X.semi,%3B,dot,.,comma,%2C"),
            ("X{.keys*}", "X.semi=%3B.dot=..comma=%2C"),
            ("{/var:1,var}", "/v/value"),
            ("{/list}", "/red,green,blue"),
            ("{/list*}", "/red/green/blue"),
            ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
            ("{/keys}", "/semi,%3B,dot,.,comma,%2C"),
            ("{/keys*}", "/semi=%3B/dot=./comma=%2C"),
            ("{;hello:5}", ";hello=Hello"),
            ("{;list}", ";list=red,green,blue"),
            ("{;list*}", ";list=red;list=green;list=blue"),
            ("{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"),
            ("{;keys*}", ";semi=%3B;dot=.;comma=%2C"),
            ("{?var:3}", "?var=val"),
            ("{?list}", "?list=red,green,blue"),
            ("{?list*}", "?list=red&list=green&list=blue"),
            ("{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"),
            ("{?keys*}", "?semi=%3B&dot=.&comma=%2C"),
            ("{&var:3}", "&var=val"),
            ("{&list}", "&list=red,green,blue"),
            ("{&list*}", "&list=red&list=green&list=blue"),
            ("{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"),
            ("{&keys*}", "&semi=%3B&dot=.&comma=%2C"),
        ]);
        check_any_key_order(&[
            "{keys}",
            "{keys*}",
            "{+keys}",
            "{+keys*}",
            "{#keys}",
            "{#keys*}",
            "X{.keys}",
            "X{.keys*}",
            "{/keys}",
            "{/keys*}",
            "{;keys}",
            "{;keys*}",
            "{?keys}",
            "{?keys*}",
            "{&keys}",
            "{&keys*}",
        ]);
    }

    #[test]
    fn rfc_3_2_1_variable_expansion() {
        check(&[
            ("{count}", "one,two,three"),
            ("{count*}", "one,two,three"),
            ("{/count}", "/one,two,three"),
            ("{/count*}", "/one/two/three"),
            ("{;count}", ";count=one,two,three"),
            ("{;count*}", ";count=one;count=two;count=three"),
            ("{?count}", "?count=one,two,three"),
            ("{?count*}", "?count=one&count=two&count=three"),
            ("{&count*}", "&count=one&count=two&count=three"),
        ]);
    }

    #[test]
    fn rfc_3_2_2_simple_string_expansion() {
        check(&[
            ("{var}", "value"),
            ("{hello}", "Hello%20World%21"),
            ("{half}", "50%25"),
            ("O{empty}X", "OX"),
            ("O{undef}X", "OX"),
            ("{x,y}", "1024,768"),
            ("{x,hello,y}", "1024,Hello%20World%21,768"),
            ("?{x,empty}", "?1024,"),
            ("?{x,undef}", "?1024"),
            ("?{undef,y}", "?768"),
            ("{var:3}", "val"),
            ("{var:30}", "value"),
            ("{list}", "red,green,blue"),
            ("{list*}", "red,green,blue"),
            ("{keys}", "semi,%3B,dot,.,comma,%2C"),
            ("{keys*}", "semi=%3B,dot=.,comma=%2C"),
        ]);
    }

    #[test]
    fn rfc_3_2_3_reserved_expansion() {
        check(&[
            ("{+var}", "value"),
            ("{+hello}", "Hello%20World!"),
            ("{+half}", "50%25"),
            ("{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex"),
            ("{+base}index", "http://example.com/home/index"),
            ("O{+empty}X", "OX"),
            ("O{+undef}X", "OX"),
            ("{+path}/here", "/foo/bar/here"),
            ("here?ref={+path}", "here?ref=/foo/bar"),
            ("up{+path}{var}/here", "up/foo/barvalue/here"),
            ("{+x,hello,y}", "1024,Hello%20World!,768"),
            ("{+path,x}/here", "/foo/bar,1024/here"),
            ("{+path:6}/here", "/foo/b/here"),
            ("{+list}", "red,green,blue"),
            ("{+list*}", "red,green,blue"),
            ("{+keys}", "semi,;,dot,.,comma,,"),
            ("{+keys*}", "semi=;,dot=.,comma=,"),
        ]);
    }

    #[test]
    fn rfc_3_2_4_fragment_expansion() {
        check(&[
            ("{#var}", "#value"),
            ("{#hello}", "#Hello%20World!"),
            ("{#half}", "#50%25"),
            ("foo{#empty}", "foo#"),
            ("foo{#undef}", "foo"),
            ("{#x,hello,y}", "#1024,Hello%20World!,768"),
            ("{#path,x}/here", "#/foo/bar,1024/here"),
            ("{#path:6}/here", "#/foo/b/here"),
            ("{#list}", "#red,green,blue"),
            ("{#list*}", "#red,green,blue"),
            ("{#keys}", "#semi,;,dot,.,comma,,"),
            ("{#keys*}", "#semi=;,dot=.,comma=,"),
        ]);
    }

    #[test]
    fn rfc_3_2_5_label_expansion() {
        check(&[
            ("{.who}", ".fred"),
            ("{.who,who}", ".fred.fred"),
            ("{.half,who}", ".50%25.fred"),
            ("www{.dom*}", "www.example.com"),
            ("X{.var}", "X.value"),
            ("X{.empty}", "X."),
            ("X{.undef}", "X"),
            ("X{.var:3}", "X.val"),
            ("X{.list}", "X.red,green,blue"),
            ("X{.list*}", "X.red.green.blue"),
            ("X{.keys}", "X.semi,%3B,dot,.,comma,%2C"),
            ("X{.keys*}", "X.semi=%3B.dot=..comma=%2C"),
            ("X{.empty_keys}", "X"),
            ("X{.empty_keys*}", "X"),
        ]);
    }

    #[test]
    fn rfc_3_2_6_path_segment_expansion() {
        check(&[
            ("{/who}", "/fred"),
            ("{/who,who}", "/fred/fred"),
            ("{/half,who}", "/50%25/fred"),
            ("{/who,dub}", "/fred/me%2Ftoo"),
            ("{/var}", "/value"),
            ("{/var,empty}", "/value/"),
            ("{/var,undef}", "/value"),
            ("{/var,x}/here", "/value/1024/here"),
            ("{/var:1,var}", "/v/value"),
            ("{/list}", "/red,green,blue"),
            ("{/list*}", "/red/green/blue"),
            ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
            ("{/keys}", "/semi,%3B,dot,.,comma,%2C"),
            ("{/keys*}", "/semi=%3B/dot=./comma=%2C"),
        ]);
    }

    #[test]
    fn rfc_3_2_7_path_style_parameter_expansion() {
        check(&[
            ("{;who}", ";who=fred"),
            ("{;half}", ";half=50%25"),
            ("{;empty}", ";empty"),
            ("{;v,empty,who}", ";v=6;empty;who=fred"),
            ("{;v,bar,who}", ";v=6;who=fred"),
            ("{;x,y}", ";x=1024;y=768"),
            ("{;x,y,empty}", ";x=1024;y=768;empty"),
            ("{;x,y,undef}", ";x=1024;y=768"),
            ("{;hello:5}", ";hello=Hello"),
            ("{;list}", ";list=red,green,blue"),
            ("{;list*}", ";list=red;list=green;list=blue"),
            ("{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"),
            ("{;keys*}", ";semi=%3B;dot=.;comma=%2C"),
        ]);
    }

    #[test]
    fn rfc_3_2_8_form_style_query_expansion() {
        check(&[
            ("{?who}", "?who=fred"),
            ("{?half}", "?half=50%25"),
            ("{?x,y}", "?x=1024&y=768"),
            ("{?x,y,empty}", "?x=1024&y=768&empty="),
            ("{?x,y,undef}", "?x=1024&y=768"),
            ("{?var:3}", "?var=val"),
            ("{?list}", "?list=red,green,blue"),
            ("{?list*}", "?list=red&list=green&list=blue"),
            ("{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"),
            ("{?keys*}", "?semi=%3B&dot=.&comma=%2C"),
        ]);
    }

    #[test]
    fn rfc_3_2_9_form_style_query_continuation() {
        check(&[
            ("{&who}", "&who=fred"),
            ("{&half}", "&half=50%25"),
            ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
            ("{&x,y,empty}", "&x=1024&y=768&empty="),
            ("{&var:3}", "&var=val"),
            ("{&list}", "&list=red,green,blue"),
            ("{&list*}", "&list=red&list=green&list=blue"),
            ("{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"),
            ("{&keys*}", "&semi=%3B&dot=.&comma=%2C"),
        ]);
    }

    fn assert_matching(source: &str, matching: &[&str], not_matching: &[&str]) {
        let t = template(source);
        for candidate in matching {
            assert!(t.matches(candidate), "{source} should match {candidate}");
        }
        for candidate in not_matching {
            assert!(
                !t.matches(candidate),
                "{source} should not match {candidate}"
            );
        }
    }

    #[test]
    fn simple_values_exclude_reserved_characters() {
        assert_matching(
            "https://example.com/books/{id}",
            &[
                "https://example.com/books/1",
                "https://example.com/books/foo%20bar",
                "https://example.com/books/",
                "https://example.com/books/%c3%a9t%C3%A9",
                "https://example.com/books/été",
            ],
            &[
                "https://example.com/books/1/2",
                "https://example.com/authors/1",
                "https://example.com/books/1?x=2",
                "https://example.com/books/1#top",
                "https://example.com/books/foo bar",
                "https://example.com/books/50%",
                "https://example.com/books/a=b",
                "http://example.com/books/1",
            ],
        );
    }

    #[test]
    fn reserved_and_fragment_values_keep_reserved_characters() {
        assert_matching("{+var}", &["a/b?c=d#e", "a%20b", ""], &["a b", "a{b}"]);
        assert_matching("x{#var}", &["x#a/b?c", "x", "x#"], &["xa", "x#a b"]);
    }

    #[test]
    fn operators_require_their_prefix_and_separator() {
        assert_matching("X{.var}", &["X.value", "X"], &["Xvalue", "X/value"]);
        assert_matching(
            "{/a,b}",
            &["/1/2", "/1", "/2", ""],
            &["1/2", "/1/2/3", "/1/a=b"],
        );
        assert_matching("{/list*}", &["/a/b/c"], &["a/b"]);
        assert_matching("{/list}", &["/a,b,c"], &["/a/b"]);
        assert_matching("{x}", &["a,b"], &["a=b"]);
        assert_matching("{x*}", &["a=b,c=d", "a,b"], &["a&b"]);
    }

    #[test]
    fn named_operators_require_names_in_order() {
        assert_matching(
            "{?x,y}",
            &["?x=1&y=2", "?y=768", "?x=", "", "?x=a,b"],
            &["?y=1&x=2", "?x=1&x=2", "?z=1", "x=1", "?x", "?x=1&"],
        );
        assert_matching(";p{;x}", &[";p;x", ";p;x=1"], &[";p;y", ";p;x=1;x=2"]);
        assert_matching("{?q*}", &["?a=1&b=2", "?q=1&q=2"], &["?a&b"]);
        assert_matching("/s{&x}", &["/s&x=1", "/s"], &["/s?x=1"]);
    }

    #[test]
    fn prefix_counts_characters() {
        assert_matching(
            "{var:3}",
            &["val", "va", "", "%C3%A9ab", "%2Fab", "éab"],
            &["value", "abcd", "%2Fabc"],
        );
        let t = template("{var:2}");
        let vars = HashMap::from([("var".into(), string("été"))]);
        assert_eq!(t.expand(&vars), "%C3%A9t");
        assert!(t.matches("%C3%A9t"));
    }

    #[test]
    fn long_prefixes_are_accepted() {
        let t = template("{var:9999}");
        assert!(t.matches(&"a".repeat(20_000)));
        assert!(!t.matches("a/b"));
    }

    #[test]
    fn literals_match_raw_or_encoded() {
        let t = template("a b/{x}");
        let vars = HashMap::from([("x".into(), string("1"))]);
        assert_eq!(t.expand(&vars), "a%20b/1");
        assert_matching("a b/{x}", &["a b/1", "a%20b/1"], &["a+b/1", "ab/1"]);
        assert_matching("%41{x}", &["%41z"], &["Az"]);
    }

    #[test]
    fn prefix_on_composite_values_is_skipped() {
        let t = template("{list:3,x}");
        assert_eq!(t.expand(&rfc_vars()), "1024");
    }

    #[test]
    fn plain_strings_are_not_templates() {
        assert!(UriTemplate::is_template("https://example.com/{id}"));
        assert!(UriTemplate::is_template("{}"));
        assert!(!UriTemplate::is_template("https://example.com/books/1"));
        assert!(!UriTemplate::is_template("a}b{c"));
        assert!(!UriTemplate::is_template("{open"));
    }

    #[test]
    fn as_str_returns_the_source() {
        assert_eq!(template("/books/{id}").as_str(), "/books/{id}");
    }

    #[test]
    fn malformed_templates_are_rejected() {
        let cases = [
            ("/books/{id", "unclosed expression at byte 7"),
            ("{a{b}", "unclosed expression at byte 0"),
            ("a}b", "unmatched '}' at byte 1"),
            ("x{}", "empty expression at byte 1"),
            ("{=a}", "unsupported operator '=' at byte 1"),
            ("{,a}", "unsupported operator ',' at byte 1"),
            ("{!a}", "unsupported operator '!' at byte 1"),
            ("{@a}", "unsupported operator '@' at byte 1"),
            ("{|a}", "unsupported operator '|' at byte 1"),
            ("{a b}", "invalid variable name at byte 1"),
            ("{?x,.y}", "invalid variable name at byte 4"),
            ("{a.}", "invalid variable name at byte 1"),
            ("{a..b}", "invalid variable name at byte 1"),
            ("{%zz}", "invalid variable name at byte 1"),
            ("{a,}", "invalid variable name at byte 3"),
            ("{+}", "invalid variable name at byte 2"),
            ("{a*:3}", "invalid variable name at byte 1"),
            ("{a:3*}", "invalid variable name at byte 1"),
            ("{a:0}", "invalid prefix length at byte 2"),
            ("{a:}", "invalid prefix length at byte 2"),
            ("{a:01}", "invalid prefix length at byte 2"),
            ("{a:1x}", "invalid prefix length at byte 2"),
            ("{a:10000}", "invalid prefix length at byte 2"),
        ];
        for (source, reason) in cases {
            match UriTemplate::parse(source) {
                Ok(_) => panic!("{source} should be rejected"),
                Err(err) => assert_eq!(err.to_string(), reason, "parsing {source}"),
            }
        }
    }

    #[test]
    fn valid_variable_names_are_accepted() {
        for source in ["{a.b}", "{_x1}", "{%41b}", "{a:9999}", "{a.b.c*}"] {
            template(source);
        }
    }

    #[test]
    fn oversized_templates_are_rejected() {
        for count in [300, 50_000] {
            let names: Vec<String> = (0..count).map(|i| format!("v{i}")).collect();
            let source = format!("{{{}}}", names.join(","));
            let err = UriTemplate::parse(&source).expect_err("too large");
            assert_eq!(err.to_string(), "template too complex");
        }
    }

    #[test]
    fn pathological_matching_stays_linear() {
        let source: String = ('a'..='z').map(|c| format!("{{+{c}}}{{{c}}}")).collect();
        let t = template(&source);
        let wide = template("{+a,b,c,d,e,f,g,h}{/i*,j*,k*}{?l,m,n,o*}");
        let candidate = format!("{} ", "a,".repeat(2_000));
        let started = Instant::now();
        assert!(!t.matches(&candidate));
        assert!(!wide.matches(&candidate));
        assert!(t.matches(&"a,".repeat(2_000)));
        // Linear matching takes milliseconds even unoptimized on a loaded
        // machine; a backtracking engine would take longer than the age of
        // the universe. The bound only tells the two apart.
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
