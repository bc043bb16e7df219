//! JSON exactly as Go's `encoding/json` writes it for securecookie's `JSONEncoder`.

use serde_json::{Number, Value};

use crate::error::{Error, ErrorKind, Result};

/// Returns `value` as Go 1.19's `json.NewEncoder(w).Encode(value)` writes it: compact, object keys
/// in byte order, `<`, `>`, `&`, U+2028 and U+2029 escaped, control characters as `\n`, `\r`, `\t`
/// or `\u00XX`, floats in Go's format (`1e-7`, `1e+21`, `100`), and a trailing newline.
///
/// Go structs keep their fields in declaration order; a `Value` object has no order of its
/// own, so its keys are sorted, as Go does for maps.
///
/// # Errors
///
/// [`ErrorKind::Serialize`] for a NaN or infinite number (Go refuses them too).
///
/// # Examples
///
/// ```
/// let value = serde_json::json!({"b": 0.1, "a": "<tag>", "n": 1e21});
/// let bytes = fastsession::gorilla::go_json::to_vec(&value)?;
/// assert_eq!(bytes, br#"{"a":"\u003ctag\u003e","b":0.1,"n":1e+21}"#.iter().chain(b"\n").copied().collect::<Vec<u8>>());
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value)?;
    out.push(b'\n');
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            // Go sorts map keys as byte strings; so does `str`'s order.
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<()> {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        write_float(out, f)?;
    }
    Ok(())
}

/// Go's float encoder: the shortest digits that read back exactly; exponent form below 1e-6
/// and from 1e21 on, with a sign and no leading zero in the exponent.
pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) -> Result<()> {
    if !f.is_finite() {
        return Err(Error::new(ErrorKind::Serialize));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the same shortest digits: `1e-7`, `1.5e300`.
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => {
                out.extend_from_slice(mantissa.as_bytes());
                out.extend_from_slice(b"e+");
                out.extend_from_slice(exp.as_bytes());
            }
            _ => out.extend_from_slice(text.as_bytes()),
        }
    } else {
        // Rust's `{}` never uses an exponent and drops a `.0`, as Go's 'f' with -1 does.
        out.extend_from_slice(format!("{f}").as_bytes());
    }
    Ok(())
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            // Go 1.19 writes \b and \f as \u0008 and \u000c (1.22 and later as \b and \f).
            '\u{0}'..='\u{1f}' | '<' | '>' | '&' => {
                let b = c as u32;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[((b >> 4) & 0xf) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> String {
        String::from_utf8(to_vec(v).unwrap()).unwrap()
    }

    #[test]
    fn floats_as_go_writes_them() {
        let cases = [
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (1e21, "1e+21"),
            (123_456_789.0, "123456789"),
            (1.5e300, "1.5e+300"),
            (-2.5, "-2.5"),
            (1e20, "100000000000000000000"),
            (0.000_001, "0.000001"),
            (1e-100, "1e-100"),
        ];
        for (f, want) in cases {
            assert_eq!(text(&json!(f)), format!("{want}\n"), "{f}");
        }
        assert!(to_vec(&Value::Number(Number::from_f64(1.0).unwrap())).is_ok());
    }

    #[test]
    fn strings_escaped_as_go_does() {
        assert_eq!(
            text(&json!("\u{0}\u{8}\u{c}\t\u{7f}<&>\u{2028}é")),
            "\"\\u0000\\u0008\\u000c\\t\u{7f}\\u003c\\u0026\\u003e\\u2028é\"\n"
        );
    }
}
