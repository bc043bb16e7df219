//! Go's gob format, as far as gorilla/sessions values go: every type gob can send except
//! recursive ones, read with the type it was sent with and written back in that type.
//!
//! A gob stream is a sequence of messages, each `uint(length) · bytes`. A message starts with
//! a type id: a negative one defines type `-id` (a `wireType`), a positive one is followed by
//! a value of that type. Interface values carry their concrete type's registered name, any
//! type definitions it needs, its type id and a byte count of the value. Everything here is
//! bounded: lengths are checked against the input before anything is allocated, nesting and
//! the size of types are limited, and every malformed input is an [`Error`] of kind
//! [`ErrorKind::Deserialize`], never a panic.
//!
//! Values ([`GoValue`]) carry no types of their own: a value is read and written with a
//! [`GoType`], and a value inside an interface ([`GoValue::Named`]) carries its type and the
//! name Go registered it under. The wire does not say an `int8` from an `int`; the registered
//! name does, and where it spells a built-in type (`"int8"`, `"[]float32"`,
//! `"map[string]int16"`) the type read carries the width, so that writing a number that does
//! not fit it fails here instead of in Go.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};

/// Deepest nesting of values (and of types) accepted.
const MAX_DEPTH: usize = 32;
/// Most type definitions one stream may make.
const MAX_TYPES: usize = 256;
/// Most nodes all the types of one stream may add up to (types nest, so a few definitions
/// could otherwise describe a huge tree).
const MAX_TYPE_NODES: usize = 4096;

// Go's predefined type ids.
const BOOL: i64 = 1;
const INT: i64 = 2;
const UINT: i64 = 3;
const FLOAT: i64 = 4;
const BYTES: i64 = 5;
const STRING: i64 = 6;
const COMPLEX: i64 = 7;
const INTERFACE: i64 = 8;
/// The first id a stream may define.
const FIRST_ID: i64 = 65;

/// A Go type as gob sends it, with the width of numbers where the registered name told it.
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::gob::GoType;
///
/// // What a gorilla session's Values is.
/// let values = GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface));
/// assert_eq!(values, GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface)));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum GoType {
    /// `bool`.
    Bool,
    /// A signed integer of this many bits (8, 16, 32 or 64; 64 where the Go type is not
    /// known, as in a struct field).
    Int(u8),
    /// An unsigned integer of this many bits.
    Uint(u8),
    /// A float of this many bits (32 or 64).
    Float(u8),
    /// `complex64` or `complex128`.
    Complex,
    /// `[]byte`.
    Bytes,
    /// `string` (Go strings may hold any bytes).
    String,
    /// `interface{}`: the value is a [`GoValue::Named`] or [`GoValue::Nil`].
    Interface,
    /// A slice.
    Slice(Box<GoType>),
    /// An array of this many elements.
    Array(u64, Box<GoType>),
    /// A map from the first type to the second.
    Map(Box<GoType>, Box<GoType>),
    /// A struct.
    Struct(Arc<StructType>),
    /// A type that encodes itself (`GobEncoder`, `BinaryMarshaler` or `TextMarshaler`, such
    /// as `time.Time`): its value is the bytes it wrote, kept as they are.
    Encoded(Arc<EncodedType>),
}

/// A struct type: its name and exported fields, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct StructType {
    name: String,
    fields: Vec<(String, GoType)>,
}

impl StructType {
    /// A struct named `name` (Go's type name without the package, `Person`) with `fields`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::gob::{GoType, StructType};
    ///
    /// let person = StructType::new("Person", vec![("Name".into(), GoType::String)]);
    /// assert_eq!(person.fields()[0].0, "Name");
    /// ```
    #[must_use]
    pub fn new(name: impl Into<String>, fields: Vec<(String, GoType)>) -> Self {
        StructType {
            name: name.into(),
            fields,
        }
    }

    /// The struct's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::gob::{GoType, StructType};
    ///
    /// // type Person struct { Name string }, in package main.
    /// let person = StructType::new("Person", vec![("Name".into(), GoType::String)]);
    /// assert_eq!(person.name(), "Person");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fields, in order: name and type.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::gob::{GoType, StructType};
    ///
    /// let person = StructType::new("Person", vec![
    ///     ("Name".into(), GoType::String),
    ///     ("Age".into(), GoType::Int(64)),
    /// ]);
    /// let names: Vec<&str> = person.fields().iter().map(|(name, _)| name.as_str()).collect();
    /// assert_eq!(names, ["Name", "Age"]);
    /// ```
    #[must_use]
    pub fn fields(&self) -> &[(String, GoType)] {
        &self.fields
    }

    /// The type of field `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&GoType> {
        self.fields.iter().find(|(f, _)| f == name).map(|(_, t)| t)
    }
}

/// A type that encodes itself: its name and the interface it encodes with.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedType {
    name: String,
    /// `wireType`'s field: 4 `GobEncoder`, 5 `BinaryMarshaler`, 6 `TextMarshaler`.
    field: u8,
}

impl EncodedType {
    /// The type's name (`Time`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::gob::{self, GoType};
    ///
    /// // Go: gob.NewEncoder(w).Encode(time.Unix(1700000000, 0).UTC())
    /// let bytes = [
    ///     0x10, 0xff, 0x81, 0x05, 0x01, 0x01, 0x04, b'T', b'i', b'm', b'e', 0x01, 0xff, 0x82, 0x00,
    ///     0x00, 0x00, 0x13, 0xff, 0x82, 0x00, 0x0f, 0x01, 0x00, 0x00, 0x00, 0x0e, 0xdc, 0xe5, 0xe8,
    ///     0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    /// ];
    /// let (GoType::Encoded(ty), _) = gob::decode(&bytes)? else { panic!("not an encoded type") };
    /// assert_eq!(ty.name(), "Time");
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Go's `time.Time`, as gob defines it.
    #[cfg(test)]
    pub(crate) fn time() -> Self {
        EncodedType {
            name: "Time".to_owned(),
            field: 4,
        }
    }

    /// Whether this is Go's `time.Time` (a `GobEncoder` named `Time`).
    pub(crate) fn is_time(&self) -> bool {
        self.field == 4 && self.name == "Time"
    }
}

/// A Go value decoded from gob, read and written with a [`GoType`].
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::gob::{GoType, GoValue};
///
/// // An interface holding []string{"a"}.
/// let tags = GoValue::named("[]string", GoType::Slice(Box::new(GoType::String)),
///     GoValue::List(vec![GoValue::String("a".into())]));
/// assert!(matches!(tags, GoValue::Named { .. }));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum GoValue {
    /// A nil interface, slice, map or `[]byte`.
    Nil,
    /// `bool`.
    Bool(bool),
    /// Any signed integer.
    Int(i64),
    /// Any unsigned integer.
    Uint(u64),
    /// Any float (a `float32` as the `float64` of the same value).
    Float(f64),
    /// A complex number: real and imaginary parts.
    Complex(f64, f64),
    /// `[]byte`, the bytes of an [encoded](GoType::Encoded) value, or a `string` that is not
    /// UTF-8.
    Bytes(Vec<u8>),
    /// A `string`.
    String(String),
    /// A slice or an array.
    List(Vec<GoValue>),
    /// A map, entries in stream order (Go's map order is random).
    Map(Vec<(GoValue, GoValue)>),
    /// A struct: the fields that were sent (gob leaves out zero ones), by name.
    Struct(Vec<(String, GoValue)>),
    /// A value in an interface: the name its type was registered under, the type, the value.
    Named {
        /// The registered name (`"string"`, `"[]string"`, `"main.Person"`).
        name: String,
        /// The value's type.
        ty: GoType,
        /// The value.
        value: Box<GoValue>,
    },
}

impl GoValue {
    /// A value in an interface, its type registered under `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::gob::{GoType, GoValue};
    ///
    /// // Go: session.Values["visits"] = int64(3); both the key and the value sit in an
    /// // interface{}, each with the name its type is registered under.
    /// let key = GoValue::named("string", GoType::String, GoValue::String("visits".into()));
    /// let value = GoValue::named("int64", GoType::Int(64), GoValue::Int(3));
    /// let values = GoValue::Map(vec![(key, value)]);
    /// # let _ = values;
    /// ```
    #[must_use]
    pub fn named(name: impl Into<String>, ty: GoType, value: GoValue) -> Self {
        GoValue::Named {
            name: name.into(),
            ty,
            value: Box::new(value),
        }
    }
}

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

fn bad() -> Error {
    Error::new(ErrorKind::Deserialize)
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

/// gob's unsigned integer: one byte below 128, else the negated byte count and big-endian
/// bytes.
fn read_uint(input: &mut &[u8]) -> Result<u64> {
    let (&first, rest) = input.split_first().ok_or_else(bad)?;
    if first < 0x80 {
        *input = rest;
        return Ok(u64::from(first));
    }
    let n = usize::from(first.wrapping_neg());
    if n == 0 || n > 8 || n > rest.len() {
        return Err(bad());
    }
    let mut v = 0u64;
    for &b in &rest[..n] {
        v = (v << 8) | u64::from(b);
    }
    *input = &rest[n..];
    Ok(v)
}

// ---- Go's spelling of types (reflect's String()), for the registered names ----

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
fn refine(wire: &GoType, name: &str) -> GoType {
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

// ---- Encoding ----

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

/// Whether `i` fits a signed integer of `bits`.
pub(crate) fn fits_int(i: i64, bits: u8) -> bool {
    // The bits above the sign bit all equal it.
    bits >= 64 || matches!(i >> (bits.max(1) - 1), 0 | -1)
}

/// Whether `u` fits an unsigned integer of `bits`.
pub(crate) fn fits_uint(u: u64, bits: u8) -> bool {
    bits >= 64 || u >> bits == 0
}

/// Whether Go decodes `f` into a float of `bits`: a `float32` refuses finite values beyond
/// its range (infinities and underflow are fine).
pub(crate) fn fits_float(f: f64, bits: u8) -> bool {
    bits != 32 || !f.is_finite() || f.abs() <= f64::from(f32::MAX)
}

fn put_uint(out: &mut Vec<u8>, v: u64) {
    match u8::try_from(v) {
        Ok(small) if small < 0x80 => out.push(small),
        _ => {
            let bytes = v.to_be_bytes();
            let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
            // The negated byte count (1 to 8) says how many big-endian bytes follow.
            let count = u8::try_from(significant.len()).unwrap_or(8);
            out.push(count.wrapping_neg());
            out.extend_from_slice(significant);
        }
    }
}

fn put_int(out: &mut Vec<u8>, i: i64) {
    let u = if i < 0 {
        (!(i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    };
    put_uint(out, u);
}

fn put_float(out: &mut Vec<u8>, f: f64) {
    put_uint(out, f.to_bits().swap_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_message(out: &mut Vec<u8>, message: &[u8]) {
    put_bytes(out, message);
}

/// The message defining type `id` as the unnamed composite in `wireType`'s field
/// `wire_field` (0 `ArrayT`, 1 `SliceT`, 3 `MapT`): a `CommonType` with the id alone, then
/// the type's own fields in order (element, length; key, element).
fn unnamed_definition(id: i64, wire_field: u8, fields: &[i64]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(elem: GoType) -> GoType {
        GoType::Slice(Box::new(elem))
    }

    #[test]
    fn registered_names_give_numbers_their_widths() {
        assert_eq!(refine(&GoType::Int(64), "int8"), GoType::Int(8));
        assert_eq!(
            refine(&slice(GoType::Float(64)), "[]float32"),
            slice(GoType::Float(32))
        );
        let map = GoType::Map(Box::new(GoType::String), Box::new(GoType::Uint(64)));
        assert_eq!(
            refine(&map, "map[string]uint16"),
            GoType::Map(Box::new(GoType::String), Box::new(GoType::Uint(16)))
        );
        // A declared type says nothing of its fields; a mismatch keeps the wire's.
        assert_eq!(refine(&GoType::Int(64), "main.Level"), GoType::Int(64));
        assert_eq!(refine(&GoType::Int(64), "[]int8"), GoType::Int(64));
        assert_eq!(refine(&GoType::Int(64), "*int16"), GoType::Int(16));
    }

    #[test]
    fn builtin_names_are_spelled_as_go_spells_them() {
        assert_eq!(
            builtin_type("map[string]interface{}"),
            Some((
                "map[string]interface {}".to_owned(),
                GoType::Map(Box::new(GoType::String), Box::new(GoType::Interface))
            ))
        );
        assert_eq!(
            builtin_type("[]uint8"),
            Some(("[]uint8".to_owned(), GoType::Bytes))
        );
        assert_eq!(
            builtin_type("[2][]int32"),
            Some((
                "[2][]int32".to_owned(),
                GoType::Array(2, Box::new(slice(GoType::Int(32))))
            ))
        );
        assert_eq!(builtin_type("main.Person"), None);
        assert_eq!(builtin_type("[]main.Person"), None);
        assert_eq!(builtin_type("map[string"), None);
        assert_eq!(builtin_type("[x]int"), None);
    }

    #[test]
    fn typed_containers_round_trip_with_their_types() {
        let person = GoType::Struct(Arc::new(StructType::new(
            "Person",
            vec![
                ("Name".into(), GoType::String),
                ("Tags".into(), slice(GoType::String)),
                ("Extra".into(), GoType::Interface),
            ],
        )));
        let ty = GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface));
        let s = |t: &str| GoValue::String(t.into());
        let value = GoValue::Map(vec![
            (
                GoValue::named("string", GoType::String, s("tags")),
                GoValue::named(
                    "[]int8",
                    slice(GoType::Int(8)),
                    GoValue::List(vec![GoValue::Int(-3)]),
                ),
            ),
            (
                GoValue::named("string", GoType::String, s("who")),
                GoValue::named(
                    "main.Person",
                    person.clone(),
                    GoValue::Struct(vec![
                        ("Name".into(), s("Ada")),
                        ("Tags".into(), GoValue::List(vec![s("x")])),
                        (
                            "Extra".into(),
                            GoValue::named("float32", GoType::Float(32), GoValue::Float(0.5)),
                        ),
                    ]),
                ),
            ),
            (
                GoValue::named("string", GoType::String, s("c")),
                GoValue::named("complex128", GoType::Complex, GoValue::Complex(1.0, -2.0)),
            ),
            (
                GoValue::named("string", GoType::String, s("bad utf-8")),
                GoValue::named("string", GoType::String, GoValue::Bytes(vec![0xff, 0x41])),
            ),
        ]);
        let bytes = encode(&ty, &value).unwrap();
        assert_eq!(decode(&bytes).unwrap(), (ty.clone(), value));

        // A number beyond its width is refused here rather than by Go.
        let too_big = GoValue::Map(vec![(
            GoValue::named("string", GoType::String, s("n")),
            GoValue::named("int8", GoType::Int(8), GoValue::Int(300)),
        )]);
        assert_eq!(
            encode(&ty, &too_big).unwrap_err().kind(),
            ErrorKind::Serialize
        );
        let huge = GoValue::Map(vec![(
            GoValue::named("string", GoType::String, s("f")),
            GoValue::named("float32", GoType::Float(32), GoValue::Float(1e300)),
        )]);
        assert_eq!(encode(&ty, &huge).unwrap_err().kind(), ErrorKind::Serialize);
    }

    #[test]
    fn widths_bound_integers_as_go_does() {
        for (i, bits, fits) in [
            (127, 8, true),
            (128, 8, false),
            (-128, 8, true),
            (-129, 8, false),
            (i64::from(i32::MIN), 32, true),
            (i64::from(i32::MAX) + 1, 32, false),
            (i64::MIN, 64, true),
        ] {
            assert_eq!(fits_int(i, bits), fits, "{i} in int{bits}");
        }
        for (u, bits, fits) in [
            (255, 8, true),
            (256, 8, false),
            (65_535, 16, true),
            (u64::MAX, 64, true),
        ] {
            assert_eq!(fits_uint(u, bits), fits, "{u} in uint{bits}");
        }
    }

    #[test]
    fn type_trees_are_bounded() {
        // Each type a map of the one before, twice: 2^n nodes from n definitions.
        let mut stream = Vec::new();
        for i in 0..20i64 {
            let id = FIRST_ID + i;
            let inner = if i == 0 { INT } else { id - 1 };
            put_message(&mut stream, &unnamed_definition(id, 3, &[inner, inner]));
        }
        let mut m = Vec::new();
        put_int(&mut m, FIRST_ID + 19);
        m.extend_from_slice(&[0, 0]);
        put_message(&mut stream, &m);
        assert_eq!(decode(&stream).unwrap_err().kind(), ErrorKind::Deserialize);
    }
}
