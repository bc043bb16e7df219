//! Reading a gob stream: type definitions, then one value.

use std::collections::HashMap;
use std::sync::Arc;

use super::names::refine;
use super::types::{EncodedType, GoType, GoValue, StructType};
use super::wire::{BOOL, BYTES, COMPLEX, FIRST_ID, FLOAT, INT, INTERFACE, STRING, UINT, read_uint};
use super::{MAX_DEPTH, MAX_TYPE_NODES, MAX_TYPES, bad};
use crate::error::Result;

#[derive(Clone, Debug)]
enum Wire {
    Slice(i64),
    Array(i64, u64),
    Map(i64, i64),
    Struct(String, Vec<(String, i64)>),
    Encoded(String, u8),
}

/// Decodes one gob value (with the type definitions before it) from `bytes`, as gob's
/// `Decoder.Decode` reads the first value of a stream; gorilla's `GobEncoder` writes exactly
/// one. Returns its type and the value.
///
/// # Errors
///
/// [`ErrorKind::Deserialize`] for anything malformed, truncated, too deep or too large, or a
/// recursive type.
///
/// [`ErrorKind::Deserialize`]: crate::ErrorKind::Deserialize
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::gob::{self, GoType, GoValue};
///
/// // Go: gob.NewEncoder(w).Encode(42)
/// assert_eq!(gob::decode(&[0x03, 0x04, 0x00, 0x54])?, (GoType::Int(64), GoValue::Int(42)));
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<(GoType, GoValue)> {
    let mut decoder = Decoder {
        input: bytes,
        message: &[],
        wire: HashMap::new(),
        types: HashMap::new(),
        type_nodes: 0,
    };
    let id = decoder.type_sequence(false)?;
    let ty = decoder.go_type(id, 0)?;
    let value = decoder.top_level_value(&ty, 0)?;
    Ok((ty, value))
}

struct Decoder<'a> {
    /// What follows the current message.
    input: &'a [u8],
    /// The rest of the current message.
    message: &'a [u8],
    wire: HashMap<i64, Wire>,
    /// Types built from `wire`, with their node counts.
    types: HashMap<i64, (GoType, usize)>,
    type_nodes: usize,
}

impl<'a> Decoder<'a> {
    fn next_message(&mut self) -> Result<()> {
        let mut input = self.input;
        let len = read_uint(&mut input)?;
        let len = usize::try_from(len).map_err(|_| bad())?;
        if len == 0 || len > input.len() {
            return Err(bad());
        }
        self.message = &input[..len];
        self.input = &input[len..];
        Ok(())
    }

    fn uint(&mut self) -> Result<u64> {
        read_uint(&mut self.message)
    }

    /// The number of the next field of a struct being read, after `field` (gob sends the
    /// difference; 0 ends the struct): `None` at the end.
    fn next_field(&mut self, field: i64) -> Result<Option<i64>> {
        match self.uint()? {
            0 => Ok(None),
            delta => {
                let delta = i64::try_from(delta).map_err(|_| bad())?;
                Ok(Some(field.checked_add(delta).ok_or_else(bad)?))
            }
        }
    }

    fn int(&mut self) -> Result<i64> {
        let u = self.uint()?;
        // Bit 0 is the sign: set means the value is the complement of the rest.
        let v = (u >> 1) as i64;
        Ok(if u & 1 == 1 { !v } else { v })
    }

    fn float(&mut self) -> Result<f64> {
        // The IEEE bits, byte-reversed so that small numbers are short.
        Ok(f64::from_bits(self.uint()?.swap_bytes()))
    }

    /// A count of elements: each takes at least one byte of what is left (in this message or,
    /// past nested type definitions, the next), so a larger count is refused before anything
    /// is allocated for it.
    fn count(&mut self) -> Result<usize> {
        let n = usize::try_from(self.uint()?).map_err(|_| bad())?;
        if n > self.message.len() + self.input.len() {
            return Err(bad());
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.uint()?).map_err(|_| bad())?;
        if n > self.message.len() {
            return Err(bad());
        }
        let (head, rest) = self.message.split_at(n);
        self.message = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad())
    }

    /// Type definitions, then the id of the value that follows (Go's `decodeTypeSequence`).
    fn type_sequence(&mut self, in_interface: bool) -> Result<i64> {
        loop {
            if self.message.is_empty() {
                self.next_message()?;
            }
            let id = self.int()?;
            if id >= 0 {
                return Ok(id);
            }
            let id = id.checked_neg().ok_or_else(bad)?;
            self.define(id)?;
            if !self.message.is_empty() {
                if !in_interface {
                    return Err(bad());
                }
                // A delimited value's count left in the buffer; the value follows.
                self.uint()?;
            }
        }
    }

    /// Reads a `wireType` and records it as type `id`.
    fn define(&mut self, id: i64) -> Result<()> {
        if id < FIRST_ID || self.wire.len() >= MAX_TYPES || self.wire.contains_key(&id) {
            return Err(bad());
        }
        let mut ty = None;
        let mut field = -1i64;
        while let Some(next) = self.next_field(field)? {
            field = next;
            // wireType's fields: ArrayT, SliceT, StructT, MapT, GobEncoderT,
            // BinaryMarshalerT, TextMarshalerT.
            ty = Some(match field {
                0 => {
                    let (_, common) = self.struct_fields(&["CommonType", "Elem", "Len"])?;
                    let len = u64::try_from(common[2].unwrap_or(0)).map_err(|_| bad())?;
                    Wire::Array(common[1].ok_or_else(bad)?, len)
                }
                1 => {
                    let (_, common) = self.struct_fields(&["CommonType", "Elem"])?;
                    Wire::Slice(common[1].ok_or_else(bad)?)
                }
                2 => self.struct_type()?,
                3 => {
                    let (_, common) = self.struct_fields(&["CommonType", "Key", "Elem"])?;
                    Wire::Map(common[1].ok_or_else(bad)?, common[2].ok_or_else(bad)?)
                }
                4..=6 => {
                    let (name, _) = self.struct_fields(&["CommonType"])?;
                    Wire::Encoded(name, u8::try_from(field).map_err(|_| bad())?)
                }
                _ => return Err(bad()),
            });
        }
        self.wire.insert(id, ty.ok_or_else(bad)?);
        Ok(())
    }

    /// A struct of a `CommonType` (field 0) and type-id / int fields; returns the common
    /// type's name and each field's value.
    fn struct_fields(&mut self, names: &[&str]) -> Result<(String, Vec<Option<i64>>)> {
        let mut values = vec![None; names.len()];
        let mut name = String::new();
        let mut field = -1i64;
        loop {
            let Some(next) = self.next_field(field)? else {
                return Ok((name, values));
            };
            field = next;
            match usize::try_from(field) {
                Ok(0) => name = self.common_type()?,
                Ok(i) if i < names.len() => values[i] = Some(self.int()?),
                _ => return Err(bad()),
            }
        }
    }

    /// `CommonType { Name string; Id typeId }`: the name.
    fn common_type(&mut self) -> Result<String> {
        let mut name = String::new();
        let mut field = -1i64;
        loop {
            let Some(next) = self.next_field(field)? else {
                return Ok(name);
            };
            field = next;
            match field {
                0 => name = self.string()?,
                1 => {
                    self.int()?;
                }
                _ => return Err(bad()),
            }
        }
    }

    /// `structType { CommonType; Field []fieldType }`, `fieldType { Name string; Id typeId }`.
    fn struct_type(&mut self) -> Result<Wire> {
        let mut name = String::new();
        let mut fields = Vec::new();
        let mut field = -1i64;
        loop {
            let Some(next) = self.next_field(field)? else {
                return Ok(Wire::Struct(name, fields));
            };
            field = next;
            match field {
                0 => name = self.common_type()?,
                1 => {
                    let count = self.count()?;
                    for _ in 0..count {
                        let (mut fname, mut fid) = (String::new(), None);
                        let mut f = -1i64;
                        while let Some(next) = self.next_field(f)? {
                            f = next;
                            match f {
                                0 => fname = self.string()?,
                                1 => fid = Some(self.int()?),
                                _ => return Err(bad()),
                            }
                        }
                        fields.push((fname, fid.ok_or_else(bad)?));
                    }
                }
                _ => return Err(bad()),
            }
        }
    }

    /// The type `id` stands for; a type that contains itself is refused (sessions do not
    /// hold them, and a tree of types cannot).
    fn go_type(&mut self, id: i64, depth: usize) -> Result<GoType> {
        Ok(self.go_type_sized(id, depth)?.0)
    }

    fn go_type_sized(&mut self, id: i64, depth: usize) -> Result<(GoType, usize)> {
        if depth > MAX_DEPTH {
            return Err(bad());
        }
        let builtin = match id {
            BOOL => Some(GoType::Bool),
            INT => Some(GoType::Int(64)),
            UINT => Some(GoType::Uint(64)),
            FLOAT => Some(GoType::Float(64)),
            BYTES => Some(GoType::Bytes),
            STRING => Some(GoType::String),
            COMPLEX => Some(GoType::Complex),
            INTERFACE => Some(GoType::Interface),
            _ => None,
        };
        if let Some(ty) = builtin {
            return Ok((ty, 1));
        }
        if let Some(known) = self.types.get(&id) {
            let known = known.clone();
            self.charge(known.1)?;
            return Ok(known);
        }
        let wire = self.wire.get(&id).cloned().ok_or_else(bad)?;
        let mut nodes = 1;
        let mut sub = |decoder: &mut Self, id: i64| -> Result<GoType> {
            let (ty, n) = decoder.go_type_sized(id, depth + 1)?;
            nodes += n;
            Ok(ty)
        };
        let ty = match wire {
            Wire::Slice(elem) => match sub(self, elem)? {
                // gob sends []uint8 as bytes; a slice type of uint8 is a byte slice too.
                GoType::Uint(8) => GoType::Bytes,
                elem => GoType::Slice(Box::new(elem)),
            },
            Wire::Array(elem, len) => GoType::Array(len, Box::new(sub(self, elem)?)),
            Wire::Map(key, elem) => {
                let key = sub(self, key)?;
                GoType::Map(Box::new(key), Box::new(sub(self, elem)?))
            }
            Wire::Struct(name, fields) => {
                // Go never names two fields alike; values are matched to fields by name.
                if fields
                    .iter()
                    .enumerate()
                    .any(|(i, (f, _))| fields[..i].iter().any(|(g, _)| g == f))
                {
                    return Err(bad());
                }
                let mut typed = Vec::with_capacity(fields.len());
                for (fname, fid) in fields {
                    typed.push((fname, sub(self, fid)?));
                }
                GoType::Struct(Arc::new(StructType::new(name, typed)))
            }
            Wire::Encoded(name, field) => GoType::Encoded(Arc::new(EncodedType { name, field })),
        };
        self.charge(1)?;
        self.types.insert(id, (ty.clone(), nodes));
        Ok((ty, nodes))
    }

    fn charge(&mut self, nodes: usize) -> Result<()> {
        self.type_nodes = self.type_nodes.saturating_add(nodes);
        if self.type_nodes > MAX_TYPE_NODES {
            return Err(bad());
        }
        Ok(())
    }

    /// A value at the top of a message: a struct directly, anything else after a zero byte.
    fn top_level_value(&mut self, ty: &GoType, depth: usize) -> Result<GoValue> {
        if !matches!(ty, GoType::Struct(_)) && self.uint()? != 0 {
            return Err(bad());
        }
        self.value(ty, depth)
    }

    fn value(&mut self, ty: &GoType, depth: usize) -> Result<GoValue> {
        if depth > MAX_DEPTH {
            return Err(bad());
        }
        Ok(match ty {
            GoType::Bool => match self.uint()? {
                0 => GoValue::Bool(false),
                1 => GoValue::Bool(true),
                _ => return Err(bad()),
            },
            GoType::Int(_) => GoValue::Int(self.int()?),
            GoType::Uint(_) => GoValue::Uint(self.uint()?),
            GoType::Float(_) => GoValue::Float(self.float()?),
            GoType::Complex => {
                let re = self.float()?;
                GoValue::Complex(re, self.float()?)
            }
            GoType::Bytes | GoType::Encoded(_) => GoValue::Bytes(self.bytes()?.to_vec()),
            GoType::String => {
                let bytes = self.bytes()?;
                match std::str::from_utf8(bytes) {
                    Ok(text) => GoValue::String(text.to_owned()),
                    Err(_) => GoValue::Bytes(bytes.to_vec()),
                }
            }
            GoType::Interface => self.interface(depth)?,
            GoType::Slice(elem) => GoValue::List(self.items(elem, depth)?),
            GoType::Array(len, elem) => {
                let items = self.items(elem, depth)?;
                if items.len() as u64 != *len {
                    return Err(bad());
                }
                GoValue::List(items)
            }
            GoType::Map(key, elem) => {
                let n = self.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.value(key, depth + 1)?;
                    let v = self.value(elem, depth + 1)?;
                    entries.push((k, v));
                }
                GoValue::Map(entries)
            }
            GoType::Struct(st) => {
                let mut values = Vec::new();
                let mut field = -1i64;
                while let Some(next) = self.next_field(field)? {
                    field = next;
                    let index = usize::try_from(field).map_err(|_| bad())?;
                    let (fname, fty) = st.fields.get(index).ok_or_else(bad)?;
                    values.push((fname.clone(), self.value(fty, depth + 1)?));
                }
                GoValue::Struct(values)
            }
        })
    }

    fn items(&mut self, elem: &GoType, depth: usize) -> Result<Vec<GoValue>> {
        let n = self.count()?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(elem, depth + 1)?);
        }
        Ok(items)
    }

    /// `name · type definitions · type id · uint(byte count) · value`.
    fn interface(&mut self, depth: usize) -> Result<GoValue> {
        let name = self.string()?;
        if name.is_empty() {
            return Ok(GoValue::Nil);
        }
        let id = self.type_sequence(true)?;
        // The byte count lets a reader skip the value; like Go's decoder, read the value
        // instead (nested type definitions split it across messages, so the count does not
        // cover all of it).
        self.uint()?;
        let wire = self.go_type(id, depth)?;
        let ty = refine(&wire, &name);
        // The caller counted this level already: an interface adds no depth of its own, as
        // in the encoder.
        let value = self.top_level_value(&ty, depth)?;
        Ok(GoValue::Named {
            name,
            ty,
            value: Box::new(value),
        })
    }
}
