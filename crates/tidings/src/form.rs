//! Strict `application/x-www-form-urlencoded` decoding.
//!
//! `form_urlencoded` replaces invalid UTF-8 with U+FFFD, which would silently
//! change a topic or a payload; both generations require valid UTF-8, so
//! invalid input must be refused instead.

use percent_encoding::percent_decode;
use std::borrow::Cow;

/// Decodes `name=value&…` pairs; `None` names the first invalid pair.
pub fn pairs(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    input
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

fn decode(raw: &[u8]) -> Result<String, String> {
    // Most names and values hold neither `+` nor `%`: they are copied once.
    let spaced: Cow<[u8]> = match raw.contains(&b'+') {
        true => raw
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect(),
        false => Cow::Borrowed(raw),
    };
    let bytes: Cow<[u8]> = percent_decode(&spaced).into();
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => {
            let shown = String::from_utf8_lossy(raw);
            Err(format!("`{shown}` is not valid UTF-8 once decoded"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pairs;

    #[test]
    fn decodes_like_url_search_params() {
        let got = pairs(b"topic=a%2Fb&data=x+y&private&empty=&&id=%C3%A9").unwrap();
        let want = [
            ("topic", "a/b"),
            ("data", "x y"),
            ("private", ""),
            ("empty", ""),
            ("id", "é"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert!(pairs(b"topic=%FF").is_err());
        assert!(pairs(b"%C3=x").is_err());
    }
}
