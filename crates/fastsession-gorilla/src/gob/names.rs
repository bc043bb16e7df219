//! Go's spelling of types (reflect's `String()`), for the registered names.

use super::MAX_DEPTH;
use super::types::GoType;

/// A registered type name, parsed as far as it spells built-in types.
#[derive(Debug)]
enum Spelled {
    Builtin(&'static str, GoType),
    Slice(Box<Spelled>),
    Array(u64, Box<Spelled>),
    Map(Box<Spelled>, Box<Spelled>),
    Pointer(Box<Spelled>),
    /// A declared type (`main.Person`): only the wire says what it is.
    Declared(String),
}

const BUILTINS: &[(&str, GoType)] = &[
    ("bool", GoType::Bool),
    ("int", GoType::Int(64)),
    ("int8", GoType::Int(8)),
    ("int16", GoType::Int(16)),
    ("int32", GoType::Int(32)),
    ("int64", GoType::Int(64)),
    ("uint", GoType::Uint(64)),
    ("uint8", GoType::Uint(8)),
    ("uint16", GoType::Uint(16)),
    ("uint32", GoType::Uint(32)),
    ("uint64", GoType::Uint(64)),
    ("uintptr", GoType::Uint(64)),
    ("float32", GoType::Float(32)),
    ("float64", GoType::Float(64)),
    ("complex64", GoType::Complex),
    ("complex128", GoType::Complex),
    ("string", GoType::String),
    ("interface {}", GoType::Interface),
];

impl Spelled {
    /// Parses all of `text`, `None` if it is not a type's spelling.
    fn parse(text: &str) -> Option<Spelled> {
        match Spelled::parse_prefix(text, 0)? {
            (spelled, "") => Some(spelled),
            _ => None,
        }
    }

    fn parse_prefix(text: &str, depth: usize) -> Option<(Spelled, &str)> {
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some(rest) = text.strip_prefix('*') {
            let (inner, rest) = Spelled::parse_prefix(rest, depth + 1)?;
            return Some((Spelled::Pointer(Box::new(inner)), rest));
        }
        if let Some(rest) = text.strip_prefix("[]") {
            let (inner, rest) = Spelled::parse_prefix(rest, depth + 1)?;
            return Some((Spelled::Slice(Box::new(inner)), rest));
        }
        if let Some(rest) = text.strip_prefix("map[") {
            let (key, rest) = Spelled::parse_prefix(rest, depth + 1)?;
            let (elem, rest) = Spelled::parse_prefix(rest.strip_prefix(']')?, depth + 1)?;
            return Some((Spelled::Map(Box::new(key), Box::new(elem)), rest));
        }
        if let Some(rest) = text.strip_prefix('[') {
            let end = rest.find(']')?;
            let len = rest[..end].parse().ok()?;
            let (inner, rest) = Spelled::parse_prefix(&rest[end + 1..], depth + 1)?;
            return Some((Spelled::Array(len, Box::new(inner)), rest));
        }
        for spelling in ["interface {}", "interface{}"] {
            if let Some(rest) = text.strip_prefix(spelling) {
                return Some((Spelled::Builtin("interface {}", GoType::Interface), rest));
            }
        }
        // A name, with a generic type's arguments if any.
        let mut end = text
            .find(['[', ']', '{', '}', ' ', '*'])
            .unwrap_or(text.len());
        if end == 0 {
            return None;
        }
        if text[end..].starts_with('[') {
            let mut open = 0usize;
            for (i, c) in text[end..].char_indices() {
                match c {
                    '[' => open += 1,
                    ']' => open -= 1,
                    _ => {}
                }
                if open == 0 {
                    end += i + 1;
                    break;
                }
            }
        }
        let (name, rest) = text.split_at(end);
        let spelled = match BUILTINS.iter().find(|(n, _)| *n == name) {
            Some((n, ty)) => Spelled::Builtin(n, ty.clone()),
            None => Spelled::Declared(name.to_owned()),
        };
        Some((spelled, rest))
    }

    /// The type, if the spelling says all of it.
    fn go_type(&self) -> Option<GoType> {
        Some(match self {
            Spelled::Builtin(_, ty) => ty.clone(),
            Spelled::Slice(elem) => match elem.go_type()? {
                GoType::Uint(8) => GoType::Bytes,
                elem => GoType::Slice(Box::new(elem)),
            },
            Spelled::Array(len, elem) => GoType::Array(*len, Box::new(elem.go_type()?)),
            Spelled::Map(key, elem) => {
                GoType::Map(Box::new(key.go_type()?), Box::new(elem.go_type()?))
            }
            Spelled::Pointer(inner) => inner.go_type()?,
            Spelled::Declared(_) => return None,
        })
    }

    /// Go's own spelling (`interface {}` with its space).
    fn write(&self, out: &mut String) {
        match self {
            Spelled::Builtin(name, _) => out.push_str(name),
            Spelled::Slice(elem) => {
                out.push_str("[]");
                elem.write(out);
            }
            Spelled::Array(len, elem) => {
                out.push_str(&format!("[{len}]"));
                elem.write(out);
            }
            Spelled::Map(key, elem) => {
                out.push_str("map[");
                key.write(out);
                out.push(']');
                elem.write(out);
            }
            Spelled::Pointer(inner) => {
                out.push('*');
                inner.write(out);
            }
            Spelled::Declared(name) => out.push_str(name),
        }
    }
}

/// `wire` with the widths of numbers the registered `name` spells (`[]int8`: a slice of
/// `Int(8)`); parts the name does not spell (declared types) keep the wire's.
pub(super) fn refine(wire: &GoType, name: &str) -> GoType {
    match Spelled::parse(name) {
        Some(spelled) => refine_with(wire, &spelled),
        None => wire.clone(),
    }
}

fn refine_with(wire: &GoType, spelled: &Spelled) -> GoType {
    match (wire, spelled) {
        (_, Spelled::Pointer(inner)) => refine_with(wire, inner),
        (GoType::Int(_), Spelled::Builtin(_, ty @ GoType::Int(_)))
        | (GoType::Uint(_), Spelled::Builtin(_, ty @ GoType::Uint(_)))
        | (GoType::Float(_), Spelled::Builtin(_, ty @ GoType::Float(_))) => ty.clone(),
        (GoType::Slice(elem), Spelled::Slice(inner)) => {
            GoType::Slice(Box::new(refine_with(elem, inner)))
        }
        (GoType::Array(len, elem), Spelled::Array(n, inner)) if len == n => {
            GoType::Array(*len, Box::new(refine_with(elem, inner)))
        }
        (GoType::Map(key, elem), Spelled::Map(k, e)) => GoType::Map(
            Box::new(refine_with(key, k)),
            Box::new(refine_with(elem, e)),
        ),
        _ => wire.clone(),
    }
}

/// The type a Go type name spells and Go's spelling of the name, for built-in types and
/// composites of them (`"int64"`, `"[]string"`, `"map[string]interface{}"`); `None` for
/// anything else (a declared type's fields are not in its name).
pub(crate) fn builtin_type(name: &str) -> Option<(String, GoType)> {
    let spelled = Spelled::parse(name.trim())?;
    let ty = spelled.go_type()?;
    let mut canonical = String::new();
    spelled.write(&mut canonical);
    Some((canonical, ty))
}
