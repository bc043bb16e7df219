//! Go values as JSON session values, and JSON back into Go values of the types they were read
//! with.
//!
//! Reading: a value becomes the JSON Go's `encoding/json` writes for it (a struct with all
//! its fields, a `float32` with 32-bit digits, `[]byte` as base64), except that a
//! `map[interface{}]interface{}` with string keys is an object too. What JSON cannot say
//! (NaN, infinities, complex numbers, strings that are not UTF-8, types that encode
//! themselves other than `time.Time`, maps keyed by anything but strings and integers) has no
//! JSON: `None`. A `time.Time` is RFC 3339 text, as Go's JSON writes it.
//!
//! Writing: a value keeps the Go type of the one it replaces where it fits that type
//! ([`fit`]), all the way down; otherwise it gets its natural type ([`natural`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::go_json;
use crate::gob::{GoType, GoValue, fits_float, fits_int, fits_uint};

/// The JSON of a value in an interface (a [`GoValue::Named`] or nil).
pub(crate) fn interface_json(value: &GoValue) -> Option<Value> {
    match value {
        GoValue::Nil => Some(Value::Null),
        GoValue::Named { ty, value, .. } => to_json(ty, value),
        _ => None,
    }
}

/// The JSON of `value` of type `ty`, `None` if JSON cannot hold it.
pub(crate) fn to_json(ty: &GoType, value: &GoValue) -> Option<Value> {
    Some(match (ty, value) {
        (GoType::Interface, v) => return interface_json(v),
        (GoType::Bytes | GoType::Slice(_) | GoType::Map(..), GoValue::Nil) => Value::Null,
        (GoType::Bool, GoValue::Bool(b)) => Value::Bool(*b),
        (GoType::Int(_), GoValue::Int(i)) => Value::from(*i),
        (GoType::Uint(_), GoValue::Uint(u)) => Value::from(*u),
        (GoType::Float(bits), GoValue::Float(f)) => float_json(*f, *bits)?,
        (GoType::Encoded(e), GoValue::Bytes(b)) if e.is_time() => Value::String(time_text(b)?),
        (GoType::Bytes, GoValue::Bytes(b)) => Value::String(STANDARD.encode(b)),
        (GoType::String, GoValue::String(s)) => Value::String(s.clone()),
        (GoType::Slice(elem) | GoType::Array(_, elem), GoValue::List(items)) => Value::Array(
            items
                .iter()
                .map(|item| to_json(elem, item))
                .collect::<Option<_>>()?,
        ),
        (GoType::Map(key, elem), GoValue::Map(entries)) => {
            let mut object = Map::new();
            for (k, v) in entries {
                object.insert(key_text(key, k)?, to_json(elem, v)?);
            }
            Value::Object(object)
        }
        (GoType::Struct(st), GoValue::Struct(fields)) => {
            let mut object = Map::new();
            for (name, fty) in st.fields() {
                let json = match fields.iter().find(|(f, _)| f == name) {
                    Some((_, v)) => to_json(fty, v)?,
                    None => zero_json(fty)?,
                };
                object.insert(name.clone(), json);
            }
            Value::Object(object)
        }
        _ => return None,
    })
}

/// Go's JSON of a float, read back: a `float32` with the digits of its own precision (`0.1`,
/// not the `0.10000000149011612` of the same value as a `float64`), and a whole number below
/// 1e21 an integer (`16777216`, not `16777216.0`), as Go writes them; so a value written back
/// unchanged compares equal to what was read.
fn float_json(f: f64, bits: u8) -> Option<Value> {
    let f = if bits == 32 {
        #[allow(clippy::cast_possible_truncation)] // the value is a float32's
        let short = format!("{:e}", f as f32);
        short.parse().ok()?
    } else {
        f
    };
    let mut text = Vec::with_capacity(24);
    go_json::write_float(&mut text, f).ok()?;
    serde_json::from_slice(&text).ok()
}

/// A map key as JSON object key: strings as they are, integers in decimal (as Go's JSON).
fn key_text(ty: &GoType, key: &GoValue) -> Option<String> {
    match (ty, key) {
        (GoType::String, GoValue::String(s)) => Some(s.clone()),
        (GoType::Int(_), GoValue::Int(i)) => Some(i.to_string()),
        (GoType::Uint(_), GoValue::Uint(u)) => Some(u.to_string()),
        (GoType::Interface, GoValue::Named { ty, value, .. }) if *ty == GoType::String => {
            key_text(ty, value)
        }
        _ => None,
    }
}

/// The JSON of a field gob left out: the type's zero value as Go's JSON writes it.
fn zero_json(ty: &GoType) -> Option<Value> {
    Some(match ty {
        GoType::Bool => Value::Bool(false),
        GoType::Int(_) | GoType::Uint(_) | GoType::Float(_) => Value::from(0),
        GoType::String => Value::String(String::new()),
        GoType::Bytes | GoType::Slice(_) | GoType::Map(..) | GoType::Interface => Value::Null,
        GoType::Encoded(e) if e.is_time() => Value::String("0001-01-01T00:00:00Z".to_owned()),
        GoType::Array(len, elem) => {
            let zero = zero_json(elem)?;
            let len = usize::try_from(*len).ok()?;
            Value::Array(vec![zero; len])
        }
        GoType::Struct(st) => Value::Object(
            st.fields()
                .iter()
                .map(|(name, fty)| Some((name.clone(), zero_json(fty)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// The interface value for `json` replacing `old` (an interface value, if any): `old`'s type
/// where `json` fits it, else the natural type.
pub(crate) fn decide(json: &Value, old: Option<&GoValue>) -> GoValue {
    // Unchanged: the old value as it was (the digits of a float32 at the edge of its range
    // read back as a float64 just beyond it, so fitting alone would lose it).
    if let Some(old) = old
        && interface_json(old).as_ref() == Some(json)
    {
        return old.clone();
    }
    if let Some(GoValue::Named { name, ty, value }) = old
        && let Some(v) = fit(json, ty, Some(value))
    {
        return GoValue::Named {
            name: name.clone(),
            ty: ty.clone(),
            value: Box::new(v),
        };
    }
    natural(json)
}

/// `json` as a value of `ty`, if it fits: numbers within the type's range (no fraction for
/// integers), base64 for `[]byte`, arrays of the right length, objects whose keys are all
/// fields of a struct. `old`, the value it replaces, decides the types of what sits in
/// interfaces inside it, element by element.
pub(crate) fn fit(json: &Value, ty: &GoType, old: Option<&GoValue>) -> Option<GoValue> {
    Some(match (ty, json) {
        (GoType::Interface, json) => decide(json, old),
        (GoType::Bytes | GoType::Slice(_) | GoType::Map(..), Value::Null) => GoValue::Nil,
        (GoType::Bool, Value::Bool(b)) => GoValue::Bool(*b),
        (GoType::Int(bits), Value::Number(n)) => {
            GoValue::Int(n.as_i64().filter(|i| fits_int(*i, *bits))?)
        }
        (GoType::Uint(bits), Value::Number(n)) => {
            GoValue::Uint(n.as_u64().filter(|u| fits_uint(*u, *bits))?)
        }
        (GoType::Float(bits), Value::Number(n)) => {
            let f = n.as_f64().filter(|f| fits_float(*f, *bits))?;
            #[allow(clippy::cast_possible_truncation)] // rounding to float32 is the point
            let f = if *bits == 32 { f64::from(f as f32) } else { f };
            GoValue::Float(f)
        }
        (GoType::String, Value::String(s)) => GoValue::String(s.clone()),
        (GoType::Bytes, Value::String(s)) => GoValue::Bytes(STANDARD.decode(s).ok()?),
        (GoType::Encoded(e), Value::String(s)) if e.is_time() => GoValue::Bytes(time_binary(s)?),
        (GoType::Slice(elem), Value::Array(items)) => GoValue::List(fit_items(items, elem, old)?),
        (GoType::Array(len, elem), Value::Array(items)) if items.len() as u64 == *len => {
            GoValue::List(fit_items(items, elem, old)?)
        }
        (GoType::Map(key, elem), Value::Object(object)) => {
            let old_entry = |k: &str| match old {
                Some(GoValue::Map(entries)) => entries
                    .iter()
                    .find(|(ok, _)| key_text(key, ok).as_deref() == Some(k))
                    .map(|(_, v)| v),
                _ => None,
            };
            let mut entries = Vec::with_capacity(object.len());
            for (k, v) in object {
                entries.push((fit_key(key, k)?, fit(v, elem, old_entry(k))?));
            }
            GoValue::Map(entries)
        }
        (GoType::Struct(st), Value::Object(object)) => {
            if !object.keys().all(|k| st.field(k).is_some()) {
                return None;
            }
            let old_field = |name: &str| match old {
                Some(GoValue::Struct(fields)) => {
                    fields.iter().find(|(f, _)| f == name).map(|(_, v)| v)
                }
                _ => None,
            };
            let mut fields = Vec::with_capacity(object.len());
            for (name, fty) in st.fields() {
                if let Some(v) = object.get(name) {
                    fields.push((name.clone(), fit(v, fty, old_field(name))?));
                }
            }
            GoValue::Struct(fields)
        }
        _ => return None,
    })
}

/// Seconds from 0001-01-01 (where Go's `time.Time` counts from) to 1970-01-01.
const UNIX_TO_GO: i64 = 62_135_596_800;

/// The RFC 3339 text Go's JSON writes for a `time.Time` given as its `MarshalBinary` bytes
/// (version 1 or 2: seconds since year 1, nanoseconds, zone offset in minutes, -1 for UTC,
/// and in version 2 the offset's seconds). `None` for what Go's JSON refuses too (a year
/// outside 0–9999) or bytes that are no time.
fn time_text(bytes: &[u8]) -> Option<String> {
    use time::{OffsetDateTime, UtcOffset};
    let (version, rest) = bytes.split_first()?;
    let expected = match version {
        1 => 14,
        2 => 15,
        _ => return None,
    };
    if rest.len() != expected {
        return None;
    }
    let secs = i64::from_be_bytes(rest[0..8].try_into().ok()?);
    let nanos = i32::from_be_bytes(rest[8..12].try_into().ok()?);
    let minutes = i16::from_be_bytes(rest[12..14].try_into().ok()?);
    let offset = match minutes {
        -1 => 0,
        m => {
            i32::from(m) * 60
                + rest
                    .get(14)
                    .map_or(0, |s| i32::from(i8::from_ne_bytes([*s])))
        }
    };
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    let at = OffsetDateTime::from_unix_timestamp(secs.checked_sub(UNIX_TO_GO)?)
        .ok()?
        .replace_nanosecond(nanos)
        .ok()?
        .checked_to_offset(UtcOffset::from_whole_seconds(offset).ok()?)?;
    if !(0..=9999).contains(&at.year()) {
        return None;
    }
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    if nanos != 0 {
        // Go's ".999999999": the digits that are not trailing zeros.
        let digits = format!("{nanos:09}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    let offset = at.offset();
    if offset.is_utc() {
        text.push('Z');
    } else {
        let (h, m, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        text.push_str(&format!(
            "{sign}{:02}:{:02}",
            h.unsigned_abs(),
            m.unsigned_abs()
        ));
    }
    Some(text)
}

/// The `MarshalBinary` bytes (version 1) of the RFC 3339 time `text`, as Go's
/// `time.Time.UnmarshalJSON` would read it: `Z` is UTC, any other offset a fixed zone.
fn time_binary(text: &str) -> Option<Vec<u8>> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let secs = at.unix_timestamp().checked_add(UNIX_TO_GO)?;
    let nanos = i32::try_from(at.nanosecond()).ok()?;
    let minutes = if text.ends_with(['Z', 'z']) {
        -1
    } else {
        at.offset().whole_minutes()
    };
    let mut bytes = Vec::with_capacity(15);
    bytes.push(1);
    bytes.extend_from_slice(&secs.to_be_bytes());
    bytes.extend_from_slice(&nanos.to_be_bytes());
    bytes.extend_from_slice(&minutes.to_be_bytes());
    Some(bytes)
}

fn fit_items(items: &[Value], elem: &GoType, old: Option<&GoValue>) -> Option<Vec<GoValue>> {
    let old_items = match old {
        Some(GoValue::List(old_items)) => old_items.as_slice(),
        _ => &[],
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| fit(item, elem, old_items.get(i)))
        .collect()
}

/// A JSON object key as a map key of type `ty`.
fn fit_key(ty: &GoType, key: &str) -> Option<GoValue> {
    Some(match ty {
        GoType::String => GoValue::String(key.to_owned()),
        GoType::Int(bits) => GoValue::Int(key.parse().ok().filter(|i| fits_int(*i, *bits))?),
        GoType::Uint(bits) => GoValue::Uint(key.parse().ok().filter(|u| fits_uint(*u, *bits))?),
        GoType::Interface => natural(&Value::String(key.to_owned())),
        _ => return None,
    })
}

/// The Go value a new JSON value becomes: nil, `bool`, `int` (`uint64` beyond `int64`'s
/// range), `float64` (a fraction or exponent), `string`, `[]interface{}`,
/// `map[string]interface{}`.
pub(crate) fn natural(json: &Value) -> GoValue {
    match json {
        Value::Null => GoValue::Nil,
        Value::Bool(b) => GoValue::named("bool", GoType::Bool, GoValue::Bool(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                GoValue::named("int", GoType::Int(64), GoValue::Int(i))
            } else if let Some(u) = n.as_u64() {
                GoValue::named("uint64", GoType::Uint(64), GoValue::Uint(u))
            } else {
                let f = n.as_f64().unwrap_or_default();
                GoValue::named("float64", GoType::Float(64), GoValue::Float(f))
            }
        }
        Value::String(s) => GoValue::named("string", GoType::String, GoValue::String(s.clone())),
        Value::Array(items) => GoValue::named(
            "[]interface {}",
            GoType::Slice(Box::new(GoType::Interface)),
            GoValue::List(items.iter().map(natural).collect()),
        ),
        Value::Object(object) => GoValue::named(
            "map[string]interface {}",
            GoType::Map(Box::new(GoType::String), Box::new(GoType::Interface)),
            GoValue::Map(
                object
                    .iter()
                    .map(|(k, v)| (GoValue::String(k.clone()), natural(v)))
                    .collect(),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(elem: GoType) -> GoType {
        GoType::Slice(Box::new(elem))
    }

    #[test]
    fn float32_reads_with_its_own_digits_and_writes_back_the_same_bits() {
        let tenth = f64::from(0.1f32);
        let json = to_json(&GoType::Float(32), &GoValue::Float(tenth)).unwrap();
        assert_eq!(json.to_string(), "0.1");
        assert_eq!(
            fit(&json, &GoType::Float(32), None),
            Some(GoValue::Float(tenth))
        );
        assert_eq!(fit(&json!(1e300), &GoType::Float(32), None), None);
        assert_eq!(
            decide(
                &json!(1e300),
                Some(&GoValue::named(
                    "float32",
                    GoType::Float(32),
                    GoValue::Float(0.5)
                ))
            ),
            GoValue::named("float64", GoType::Float(64), GoValue::Float(1e300))
        );
    }

    #[test]
    fn whole_floats_read_as_go_writes_them_and_an_unchanged_list_keeps_its_type() {
        let json_of = |bits, f| to_json(&GoType::Float(bits), &GoValue::Float(f)).unwrap();
        assert_eq!(json_of(32, 16_777_216.0).to_string(), "16777216");
        assert_eq!(json_of(64, -3.0).to_string(), "-3");
        // Beyond u64 even Go's whole-number text reads as a float.
        let go_text = |t| serde_json::from_str::<Value>(t).unwrap();
        assert_eq!(json_of(64, 1e20), go_text("100000000000000000000"));
        assert_eq!(json_of(64, 1e21), go_text("1e+21"));
        assert_eq!(json_of(64, -0.0).to_string(), "-0.0");
        // The edge of float32's range does not fit float32 once read as a float64, so only
        // equality keeps this list a []float32; a whole number in it must compare equal too.
        let list = GoValue::named(
            "[]float32",
            slice(GoType::Float(32)),
            GoValue::List(vec![
                GoValue::Float(16_777_216.0),
                GoValue::Float(f64::from(f32::MAX)),
            ]),
        );
        assert_eq!(
            decide(&json!([16_777_216, 3.402_823_5e38]), Some(&list)),
            list
        );
    }

    #[test]
    fn typed_containers_keep_their_type_while_the_new_value_fits() {
        let old = GoValue::named(
            "[]int8",
            slice(GoType::Int(8)),
            GoValue::List(vec![GoValue::Int(1)]),
        );
        assert_eq!(
            decide(&json!([1, 2]), Some(&old)),
            GoValue::named(
                "[]int8",
                slice(GoType::Int(8)),
                GoValue::List(vec![GoValue::Int(1), GoValue::Int(2)])
            )
        );
        // 300 is no int8: the whole slice takes the natural type.
        assert_eq!(
            decide(&json!([1, 300]), Some(&old)),
            natural(&json!([1, 300]))
        );
        // An interface element keeps its own old type.
        let mixed = GoValue::named(
            "map[string]interface {}",
            GoType::Map(Box::new(GoType::String), Box::new(GoType::Interface)),
            GoValue::Map(vec![(
                GoValue::String("n".into()),
                GoValue::named("int16", GoType::Int(16), GoValue::Int(1)),
            )]),
        );
        let GoValue::Named { value, .. } = decide(&json!({"n": 2, "new": "x"}), Some(&mixed))
        else {
            panic!("an interface value")
        };
        let GoValue::Map(entries) = *value else {
            panic!("a map")
        };
        assert!(entries.contains(&(
            GoValue::String("n".into()),
            GoValue::named("int16", GoType::Int(16), GoValue::Int(2))
        )));
        assert!(entries.contains(&(
            GoValue::String("new".into()),
            GoValue::named("string", GoType::String, GoValue::String("x".into()))
        )));
    }

    #[test]
    fn time_reads_as_go_s_json_and_writes_back_what_it_reads() {
        let time = GoType::Encoded(std::sync::Arc::new(crate::gob::EncodedType::time()));
        // Go: time.Date(2024, 2, 29, 13, 4, 5, 120000000, time.UTC).MarshalBinary()
        let utc = time_binary("2024-02-29T13:04:05.12Z").unwrap();
        assert_eq!(
            to_json(&time, &GoValue::Bytes(utc.clone())),
            Some(json!("2024-02-29T13:04:05.12Z"))
        );
        let paris = time_binary("2024-02-29T14:04:05+01:00").unwrap();
        assert_eq!(&paris[13..], &60i16.to_be_bytes());
        assert_eq!(
            to_json(&time, &GoValue::Bytes(paris)),
            Some(json!("2024-02-29T14:04:05+01:00"))
        );
        assert_eq!(
            fit(&json!("2024-02-29T13:04:05.12Z"), &time, None),
            Some(GoValue::Bytes(utc))
        );
        assert_eq!(fit(&json!("yesterday"), &time, None), None);
        assert_eq!(to_json(&time, &GoValue::Bytes(vec![1, 2, 3])), None);
        // The edges of the calendar, with an offset that would cross them: no JSON, no panic.
        for secs in [
            i64::MIN,
            -UNIX_TO_GO - 1,
            0,
            315_537_897_599 + UNIX_TO_GO,
            i64::MAX,
        ] {
            for minutes in [-1i16, -1439, 1439, i16::MAX] {
                let mut bytes = vec![1];
                bytes.extend_from_slice(&secs.to_be_bytes());
                bytes.extend_from_slice(&0i32.to_be_bytes());
                bytes.extend_from_slice(&minutes.to_be_bytes());
                let _ = to_json(&time, &GoValue::Bytes(bytes));
            }
        }
    }

    #[test]
    fn what_json_cannot_hold_has_no_json() {
        assert_eq!(to_json(&GoType::Float(64), &GoValue::Float(f64::NAN)), None);
        assert_eq!(
            to_json(&GoType::Float(64), &GoValue::Float(f64::INFINITY)),
            None
        );
        assert_eq!(to_json(&GoType::Complex, &GoValue::Complex(1.0, 0.0)), None);
        assert_eq!(to_json(&GoType::String, &GoValue::Bytes(vec![0xff])), None);
        let bool_keys = GoType::Map(Box::new(GoType::Bool), Box::new(GoType::Int(64)));
        assert_eq!(
            to_json(
                &bool_keys,
                &GoValue::Map(vec![(GoValue::Bool(true), GoValue::Int(1))])
            ),
            None
        );
        let int_keys = GoType::Map(Box::new(GoType::Int(64)), Box::new(GoType::String));
        let map = GoValue::Map(vec![(GoValue::Int(7), GoValue::String("x".into()))]);
        let json = to_json(&int_keys, &map).unwrap();
        assert_eq!(json, json!({"7": "x"}));
        assert_eq!(fit(&json, &int_keys, None), Some(map));
    }
}
