//! U+0000 in stored text: PostgreSQL's `text` cannot hold the character, and `jsonb` refuses
//! the escape `\u0000`, so both are written with a two-character escape and read back.
//!
//! The escape character is U+0001, itself a control character: U+0000 is stored as U+0001
//! followed by `0`, and U+0001 as U+0001 followed by `1`, so every text maps to one stored
//! text and back. Inside JSON text the same happens to the escapes `\u0000` and `\u0001` (JSON
//! cannot hold either character unescaped), so a key stored inside `vals` and the same key
//! sent as a `text[]` parameter (to remove it) are escaped alike and still match.
//!
//! Text without either character (nearly all) is passed through without a copy.

use std::borrow::Cow;

/// The escape character.
const MARK: char = '\u{1}';

/// `text` with U+0000 and U+0001 escaped, for a `text` parameter.
pub(crate) fn escape_text(text: &str) -> Cow<'_, str> {
    if !text.contains(['\0', MARK]) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '\0' => out.push_str("\u{1}0"),
            MARK => out.push_str("\u{1}1"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`escape_text`]. A U+0001 followed by anything else (written by hand, or
/// before this escape existed) is kept as it is.
pub(crate) fn unescape_text(text: String) -> String {
    if !text.contains(MARK) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            (MARK, Some('0')) => {
                chars.next();
                out.push('\0');
            }
            (MARK, Some('1')) => {
                chars.next();
                out.push(MARK);
            }
            (c, _) => out.push(c),
        }
    }
    out
}

/// Rewrites each escape of JSON text found in `pairs` (what is found, what replaces it),
/// walking escapes from the left so that an escaped backslash (`\\`) never starts a match.
fn rewrite_json<'a>(json: &'a str, probe: &str, pairs: &[(&str, &str); 2]) -> Cow<'a, str> {
    if !json.contains(probe) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    let mut rest = json;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        if let Some((from, to)) = pairs.iter().find(|(from, _)| escape.starts_with(from)) {
            out.push_str(to);
            rest = &escape[from.len()..];
        } else {
            // Another escape: the backslash and the character after it, as they are (in
            // `\uXXXX`, the `u`; the digits follow as plain text).
            let len = 1 + escape[1..].chars().next().map_or(0, char::len_utf8);
            out.push_str(&escape[..len]);
            rest = &escape[len..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// JSON text (valid, as serde_json writes or checks it) with the escapes `\u0000` and
/// `\u0001` replaced by the escaped forms of [`escape_text`], for a `jsonb` parameter.
pub(crate) fn escape_json(json: &str) -> Cow<'_, str> {
    // Both escapes start with this; most JSON holds neither.
    rewrite_json(
        json,
        "\\u000",
        &[("\\u0000", "\\u00010"), ("\\u0001", "\\u00011")],
    )
}

/// The inverse of [`escape_json`], for JSON text as PostgreSQL writes `jsonb` out (it writes
/// U+0001 as `\u0001`).
pub(crate) fn unescape_json(json: &str) -> Cow<'_, str> {
    rewrite_json(
        json,
        "\\u0001",
        &[("\\u00010", "\\u0000"), ("\\u00011", "\\u0001")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_never_holds_nul() {
        for text in [
            "",
            "plain",
            "\0",
            "a\0b",
            "\u{1}",
            "\u{1}0",
            "\u{1}1",
            "\0\u{1}\0",
            "é\0☃",
            "\u{1}\u{1}0\0",
        ] {
            let stored = escape_text(text);
            assert!(!stored.contains('\0'), "{text:?}");
            assert_eq!(unescape_text(stored.into_owned()), text, "{text:?}");
        }
        assert!(matches!(escape_text("plain"), Cow::Borrowed(_)));
        // Legacy text with a lone escape character is read as it is.
        assert_eq!(unescape_text("a\u{1}x".to_owned()), "a\u{1}x");
    }

    #[test]
    fn json_round_trips_and_never_holds_the_nul_escape() {
        for value in [
            "a\0b",
            "\0",
            "\u{1}",
            "\u{1}0",
            "\\u0000",
            "\\\0",
            "\\\\u0000",
            "\u{1}1\0\u{1}",
            "é\0☃\u{1F600}",
        ] {
            let json = serde_json::to_string(&serde_json::json!({ value: [value, 1] })).unwrap();
            let stored = escape_json(&json);
            // What PostgreSQL would read: no U+0000 once the escapes are decoded.
            let parsed: serde_json::Value = serde_json::from_str(&stored).unwrap();
            let (key, list) = parsed.as_object().unwrap().iter().next().unwrap();
            let string = list[0].as_str().unwrap();
            assert!(!key.contains('\0') && !string.contains('\0'), "{value:?}");
            assert_eq!(key, escape_text(value).as_ref(), "keys escape as text does");
            assert_eq!(string, escape_text(value).as_ref(), "strings too");
            assert_eq!(unescape_json(&stored), json, "{value:?}");
        }
        assert!(matches!(escape_json("{\"a\":\"\\n\"}"), Cow::Borrowed(_)));
    }
}
