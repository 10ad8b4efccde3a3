//! Character rules shared by topics, matchers, ids and event types.
//!
//! Both protocol generations forbid control and Unicode format characters in
//! every value that ends up in an SSE field or a `Last-Event-ID` header: they
//! enable field injection and identifier spoofing.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a value was refused, phrased for a 400 response.
pub fn forbidden_character(value: &str) -> Option<String> {
    // Most values are ASCII, where the only format characters are none and
    // the control characters are a range: no table lookups.
    if value.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) {
        return None;
    }
    value.chars().find_map(|c| {
        let reason = if c.is_control() {
            "a control character"
        } else if c.general_category() == GeneralCategory::Format {
            "a Unicode format character"
        } else {
            return None;
        };
        Some(format!("contains {reason} (U+{:04X})", c as u32))
    })
}

#[cfg(test)]
mod tests {
    use super::forbidden_character;

    #[test]
    fn accepts_plain_iris() {
        assert_eq!(forbidden_character("https://example.com/books/é"), None);
    }

    #[test]
    fn refuses_c0_c1_del_and_format_characters() {
        for bad in [
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{7f}",
            "a\u{85}",
            "a\u{200b}b",
            "\u{202e}x",
            "\u{feff}",
        ] {
            assert!(forbidden_character(bad).is_some(), "{bad:?}");
        }
    }
}
