//! Writing a gob stream: the type definitions a value needs, then the value.

use super::MAX_DEPTH;
use super::MAX_TYPES;
use super::types::{GoType, GoValue, fits_float, fits_int, fits_uint};
use super::wire::{
    BOOL, BYTES, COMPLEX, FIRST_ID, FLOAT, INT, INTERFACE, STRING, UINT, put_bytes, put_float,
    put_int, put_message, put_uint,
};
use crate::error::{Error, ErrorKind, Result};

/// Encodes `value` of type `ty` as one gob stream that Go's `gob.Decoder` reads back into the
/// same Go value. Type definitions go in their own messages before the value, which Go
/// accepts wherever it writes them (so the bytes equal Go's for a map of scalars, and differ
/// only in framing and type ids otherwise).
///
/// # Errors
///
/// [`ErrorKind::Serialize`] for a value that is not of its type, a number that does not fit
/// its width (Go would refuse the whole stream), a recursive or too deep value.
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::gob::{self, GoType, GoValue};
///
/// // Go: session.Values["tags"] = []string{"a"}, as gorilla/sessions' GobEncoder writes it.
/// let ty = GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface));
/// let values = GoValue::Map(vec![(
///     GoValue::named("string", GoType::String, GoValue::String("tags".into())),
///     GoValue::named("[]string", GoType::Slice(Box::new(GoType::String)),
///         GoValue::List(vec![GoValue::String("a".into())])),
/// )]);
/// let bytes = gob::encode(&ty, &values)?;
/// assert_eq!(gob::decode(&bytes)?, (ty, values));
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
pub fn encode(ty: &GoType, value: &GoValue) -> Result<Vec<u8>> {
    let mut encoder = Encoder {
        out: Vec::new(),
        defined: Vec::new(),
    };
    encoder.define_all(ty, value, 0)?;
    let mut message = Vec::new();
    put_int(&mut message, encoder.type_id(ty, 0)?);
    encoder.top_level(&mut message, ty, value, 0)?;
    put_message(&mut encoder.out, &message);
    Ok(encoder.out)
}

fn unsupported() -> Error {
    Error::new(ErrorKind::Serialize)
}

struct Encoder {
    /// The type-definition messages written so far.
    out: Vec<u8>,
    /// The types defined so far, in the form that decides their wire type (widths erased);
    /// type `FIRST_ID + i` is `defined[i]`.
    defined: Vec<GoType>,
}

/// `ty` with every number at 64 bits: two types that differ only in widths have the same
/// wire type.
fn wire_form(ty: &GoType) -> GoType {
    match ty {
        GoType::Int(_) => GoType::Int(64),
        GoType::Uint(_) => GoType::Uint(64),
        GoType::Float(_) => GoType::Float(64),
        GoType::Slice(elem) => GoType::Slice(Box::new(wire_form(elem))),
        GoType::Array(len, elem) => GoType::Array(*len, Box::new(wire_form(elem))),
        GoType::Map(key, elem) => GoType::Map(Box::new(wire_form(key)), Box::new(wire_form(elem))),
        other => other.clone(),
    }
}

impl Encoder {
    /// Defines the types of `value` and of every value in an interface inside it.
    fn define_all(&mut self, ty: &GoType, value: &GoValue, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(unsupported());
        }
        self.type_id(ty, depth)?;
        match (ty, value) {
            (GoType::Interface, GoValue::Named { ty, value, .. }) => {
                self.define_all(ty, value, depth)?;
            }
            (GoType::Slice(elem) | GoType::Array(_, elem), GoValue::List(items))
                if has_interface(elem) =>
            {
                for item in items {
                    self.define_all(elem, item, depth + 1)?;
                }
            }
            (GoType::Map(key, elem), GoValue::Map(entries))
                if has_interface(key) || has_interface(elem) =>
            {
                for (k, v) in entries {
                    self.define_all(key, k, depth + 1)?;
                    self.define_all(elem, v, depth + 1)?;
                }
            }
            (GoType::Struct(st), GoValue::Struct(fields)) => {
                for (name, v) in fields {
                    if let Some(fty) = st.field(name)
                        && has_interface(fty)
                    {
                        self.define_all(fty, v, depth + 1)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The wire type id of `ty`, defining it (and the types in it) first if needed.
    fn type_id(&mut self, ty: &GoType, depth: usize) -> Result<i64> {
        if depth > MAX_DEPTH {
            return Err(unsupported());
        }
        let builtin = match ty {
            GoType::Bool => BOOL,
            GoType::Int(_) => INT,
            GoType::Uint(_) => UINT,
            GoType::Float(_) => FLOAT,
            GoType::Complex => COMPLEX,
            GoType::Bytes => BYTES,
            GoType::String => STRING,
            GoType::Interface => INTERFACE,
            _ => 0,
        };
        if builtin != 0 {
            return Ok(builtin);
        }
        let form = wire_form(ty);
        if let Some(i) = self.defined.iter().position(|t| *t == form) {
            return Ok(FIRST_ID + i64::try_from(i).map_err(|_| unsupported())?);
        }
        // The types inside first: a definition names them by id.
        let mut m = Vec::new();
        match ty {
            // wireType.SliceT { CommonType { Id }, Elem }
            GoType::Slice(elem) => {
                let elem = self.type_id(elem, depth + 1)?;
                m = unnamed_definition(self.next_id()?, 1, &[elem]);
            }
            // wireType.ArrayT { CommonType { Id }, Elem, Len }
            GoType::Array(len, elem) => {
                let elem = self.type_id(elem, depth + 1)?;
                let len = i64::try_from(*len).map_err(|_| unsupported())?;
                m = unnamed_definition(self.next_id()?, 0, &[elem, len]);
            }
            // wireType.MapT { CommonType { Id }, Key, Elem }
            GoType::Map(key, elem) => {
                let key = self.type_id(key, depth + 1)?;
                let elem = self.type_id(elem, depth + 1)?;
                m = unnamed_definition(self.next_id()?, 3, &[key, elem]);
            }
            // wireType.StructT { CommonType { Name, Id }, Field []{ Name, Id } }
            GoType::Struct(st) => {
                let mut fields = Vec::with_capacity(st.fields.len());
                for (name, fty) in &st.fields {
                    fields.push((name, self.type_id(fty, depth + 1)?));
                }
                let id = self.next_id()?;
                put_int(&mut m, -id);
                m.extend_from_slice(&[3, 1, 1]);
                put_bytes(&mut m, st.name.as_bytes());
                m.push(1);
                put_int(&mut m, id);
                m.extend_from_slice(&[0, 1]);
                put_uint(&mut m, fields.len() as u64);
                for (name, fid) in fields {
                    m.push(1);
                    put_bytes(&mut m, name.as_bytes());
                    m.push(1);
                    put_int(&mut m, fid);
                    m.push(0);
                }
                m.extend_from_slice(&[0, 0]);
            }
            // wireType.{GobEncoderT, BinaryMarshalerT, TextMarshalerT} { CommonType { Name, Id } }
            GoType::Encoded(encoded) => {
                let id = self.next_id()?;
                put_int(&mut m, -id);
                m.push(encoded.field + 1);
                m.extend_from_slice(&[1, 1]);
                put_bytes(&mut m, encoded.name.as_bytes());
                m.push(1);
                put_int(&mut m, id);
                m.extend_from_slice(&[0, 0, 0]);
            }
            _ => return Err(unsupported()),
        }
        put_message(&mut self.out, &m);
        self.defined.push(form);
        Ok(FIRST_ID + i64::try_from(self.defined.len() - 1).map_err(|_| unsupported())?)
    }

    /// The id the next definition gets.
    fn next_id(&self) -> Result<i64> {
        if self.defined.len() >= MAX_TYPES {
            return Err(unsupported());
        }
        Ok(FIRST_ID + i64::try_from(self.defined.len()).map_err(|_| unsupported())?)
    }

    /// A value at the top of a message (or of an interface's data): a struct directly,
    /// anything else after a zero byte.
    fn top_level(
        &mut self,
        out: &mut Vec<u8>,
        ty: &GoType,
        value: &GoValue,
        depth: usize,
    ) -> Result<()> {
        if !matches!(ty, GoType::Struct(_)) {
            out.push(0);
        }
        self.value(out, ty, value, depth)
    }

    fn value(
        &mut self,
        out: &mut Vec<u8>,
        ty: &GoType,
        value: &GoValue,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(unsupported());
        }
        match (ty, value) {
            (GoType::Bool, GoValue::Bool(b)) => put_uint(out, u64::from(*b)),
            (GoType::Int(bits), GoValue::Int(i)) if fits_int(*i, *bits) => put_int(out, *i),
            (GoType::Uint(bits), GoValue::Uint(u)) if fits_uint(*u, *bits) => put_uint(out, *u),
            (GoType::Float(bits), GoValue::Float(f)) if fits_float(*f, *bits) => put_float(out, *f),
            (GoType::Complex, GoValue::Complex(re, im)) => {
                put_float(out, *re);
                put_float(out, *im);
            }
            (GoType::Bytes | GoType::Encoded(_) | GoType::String, GoValue::Bytes(b)) => {
                put_bytes(out, b);
            }
            (GoType::String, GoValue::String(s)) => put_bytes(out, s.as_bytes()),
            // A nil slice, map or []byte goes as an empty one (Go's own encoding of it).
            (GoType::Bytes | GoType::Slice(_) | GoType::Map(..), GoValue::Nil) => put_uint(out, 0),
            (GoType::Interface, _) => self.interface(out, value, depth)?,
            (GoType::Slice(elem), GoValue::List(items)) => self.items(out, elem, items, depth)?,
            (GoType::Array(len, elem), GoValue::List(items)) if items.len() as u64 == *len => {
                self.items(out, elem, items, depth)?;
            }
            (GoType::Map(key, elem), GoValue::Map(entries)) => {
                put_uint(out, entries.len() as u64);
                for (k, v) in entries {
                    self.value(out, key, k, depth + 1)?;
                    self.value(out, elem, v, depth + 1)?;
                }
            }
            (GoType::Struct(st), GoValue::Struct(fields)) => {
                // Fields in the type's order, each after the last; zero ones are not sent.
                let mut sent = Vec::with_capacity(fields.len());
                for (name, v) in fields {
                    let index = st
                        .fields
                        .iter()
                        .position(|(f, _)| f == name)
                        .ok_or_else(unsupported)?;
                    if !is_zero_field(&st.fields[index].1, v) {
                        sent.push((index, v));
                    }
                }
                sent.sort_by_key(|(index, _)| *index);
                let mut last = -1i64;
                for (index, v) in sent {
                    let index = i64::try_from(index).map_err(|_| unsupported())?;
                    if index == last {
                        return Err(unsupported());
                    }
                    put_uint(out, u64::try_from(index - last).map_err(|_| unsupported())?);
                    last = index;
                    let fty = &st.fields[usize::try_from(index).map_err(|_| unsupported())?].1;
                    self.value(out, fty, v, depth + 1)?;
                }
                out.push(0);
            }
            _ => return Err(unsupported()),
        }
        Ok(())
    }

    fn items(
        &mut self,
        out: &mut Vec<u8>,
        elem: &GoType,
        items: &[GoValue],
        depth: usize,
    ) -> Result<()> {
        put_uint(out, items.len() as u64);
        for item in items {
            self.value(out, elem, item, depth + 1)?;
        }
        Ok(())
    }

    /// `name · type id · uint(byte count) · value`; a nil interface is an empty name.
    fn interface(&mut self, out: &mut Vec<u8>, value: &GoValue, depth: usize) -> Result<()> {
        let (name, ty, inner) = match value {
            GoValue::Nil => {
                put_uint(out, 0);
                return Ok(());
            }
            GoValue::Named { name, ty, value } if !name.is_empty() => (name, ty, value),
            _ => return Err(unsupported()),
        };
        put_bytes(out, name.as_bytes());
        put_int(out, self.type_id(ty, depth)?);
        let mut data = Vec::new();
        self.top_level(&mut data, ty, inner, depth)?;
        put_bytes(out, &data);
        Ok(())
    }
}

/// Whether values of `ty` may hold interfaces (whose types must be defined up front).
fn has_interface(ty: &GoType) -> bool {
    match ty {
        GoType::Interface => true,
        GoType::Slice(elem) | GoType::Array(_, elem) => has_interface(elem),
        GoType::Map(key, elem) => has_interface(key) || has_interface(elem),
        GoType::Struct(st) => st.fields.iter().any(|(_, t)| has_interface(t)),
        _ => false,
    }
}

/// Whether gob leaves out a struct field of type `ty` holding `value`: zero numbers, empty
/// strings, slices and byte slices, nil maps and interfaces. Structs, arrays and maps that are
/// empty but not nil are sent.
fn is_zero_field(ty: &GoType, value: &GoValue) -> bool {
    match (ty, value) {
        (_, GoValue::Nil) => true,
        (GoType::Struct(_) | GoType::Array(..) | GoType::Map(..) | GoType::Encoded(_), _) => false,
        (_, GoValue::Bool(b)) => !b,
        (_, GoValue::Int(i)) => *i == 0,
        (_, GoValue::Uint(u)) => *u == 0,
        (_, GoValue::Float(f)) => *f == 0.0,
        (_, GoValue::Complex(re, im)) => *re == 0.0 && *im == 0.0,
        (_, GoValue::Bytes(b)) => b.is_empty(),
        (_, GoValue::String(s)) => s.is_empty(),
        (_, GoValue::List(items)) => items.is_empty(),
        _ => false,
    }
}

/// The message defining type `id` as the unnamed composite in `wireType`'s field
/// `wire_field` (0 `ArrayT`, 1 `SliceT`, 3 `MapT`): a `CommonType` with the id alone, then
/// the type's own fields in order (element, length; key, element).
pub(super) fn unnamed_definition(id: i64, wire_field: u8, fields: &[i64]) -> Vec<u8> {
    let mut m = Vec::new();
    put_int(&mut m, -id);
    m.extend_from_slice(&[wire_field + 1, 1, 2]);
    put_int(&mut m, id);
    m.push(0);
    for field in fields {
        m.push(1);
        put_int(&mut m, *field);
    }
    m.extend_from_slice(&[0, 0]);
    m
}
