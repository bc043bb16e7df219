//! Decoding the subset of Go's gob format that gorilla/sessions cookies hold.
//!
//! A gob stream is a sequence of messages, each `uint(length) · bytes`. A message starts with
//! a type id: a negative one defines type `-id` (a `wireType`), a positive one is followed by
//! a value of that type. Interface values carry their concrete type's registered name, any
//! type definitions it needs (each ends the current message: the value goes on in the next),
//! its type id and a byte count of the value. Everything here is bounded: lengths are checked against the input before
//! anything is allocated, nesting is limited, and every malformed input is an [`Error`] of
//! kind [`ErrorKind::Deserialize`], never a panic.

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Result};

/// Deepest nesting of values (and of type definitions) accepted.
const MAX_DEPTH: usize = 32;
/// Most type definitions one stream may make.
const MAX_TYPES: usize = 256;

// Go's predefined type ids.
const BOOL: i64 = 1;
const INT: i64 = 2;
const UINT: i64 = 3;
const FLOAT: i64 = 4;
const BYTES: i64 = 5;
const STRING: i64 = 6;
const INTERFACE: i64 = 8;

/// A Go value decoded from gob, as an untyped tree.
///
/// Values that sat in an `interface{}` (everything in a gorilla session) keep the name Go
/// registered for their concrete type in [`GoValue::Named`] (`"string"`, `"int16"`,
/// `"[]interface {}"`, `"main.Person"`, …), which tells the Go types apart that share a wire
/// form (`int` and `int16`, `float32` and `float64`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum GoValue {
    /// A nil interface.
    Nil,
    /// `bool`.
    Bool(bool),
    /// Any signed integer type.
    Int(i64),
    /// Any unsigned integer type.
    Uint(u64),
    /// `float32` or `float64`.
    Float(f64),
    /// `[]byte`.
    Bytes(Vec<u8>),
    /// `string`.
    String(String),
    /// A slice or array.
    List(Vec<GoValue>),
    /// A map, entries in stream order (Go's map order is random).
    Map(Vec<(GoValue, GoValue)>),
    /// A struct: its type name and the fields gob sent (zero fields are left out by Go).
    Struct {
        /// The struct's type name (`Person`).
        name: String,
        /// Field names and values, in the order sent.
        fields: Vec<(String, GoValue)>,
    },
    /// A value that sat in an interface, with its concrete type's registered name.
    Named(String, Box<GoValue>),
}

#[derive(Clone, Debug)]
enum Type {
    Slice(i64),
    Array(i64),
    Map(i64, i64),
    Struct(String, Vec<(String, i64)>),
}

/// Decodes one gob value (with the type definitions before it) from `bytes`, as gob's
/// `Decoder.Decode` reads the first value of a stream. Gorilla's `GobEncoder` writes exactly
/// one.
///
/// # Errors
///
/// [`ErrorKind::Deserialize`] for anything malformed, truncated, too deep, or outside the
/// subset (complex numbers, `GobEncoder` types, channels).
///
/// # Examples
///
/// ```
/// use fastsession_gorilla::gob::{self, GoValue};
///
/// // Go: gob.NewEncoder(w).Encode(42)
/// assert_eq!(gob::decode(&[0x03, 0x04, 0x00, 0x54])?, GoValue::Int(42));
/// # Ok::<(), fastsession_gorilla::Error>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<GoValue> {
    let mut decoder = Decoder {
        input: bytes,
        message: &[],
        types: HashMap::new(),
    };
    let id = decoder.type_sequence(false)?;
    decoder.top_level_value(id, 0)
}

fn bad() -> Error {
    Error::new(ErrorKind::Deserialize)
}

struct Decoder<'a> {
    /// What follows the current message.
    input: &'a [u8],
    /// The rest of the current message.
    message: &'a [u8],
    types: HashMap<i64, Type>,
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
        if id < 65 || self.types.len() >= MAX_TYPES || self.types.contains_key(&id) {
            return Err(bad());
        }
        let mut ty = None;
        let mut field = -1i64;
        while let Some(next) = self.next_field(field)? {
            field = next;
            // wireType's fields: ArrayT, SliceT, StructT, MapT, then encoder types.
            ty = Some(match field {
                0 => {
                    let (_, common) = self.struct_fields(&["CommonType", "Elem", "Len"])?;
                    let elem = common[1].ok_or_else(bad)?;
                    Type::Array(elem)
                }
                1 => {
                    let (_, common) = self.struct_fields(&["CommonType", "Elem"])?;
                    Type::Slice(common[1].ok_or_else(bad)?)
                }
                2 => self.struct_type()?,
                3 => {
                    let (_, common) = self.struct_fields(&["CommonType", "Key", "Elem"])?;
                    Type::Map(common[1].ok_or_else(bad)?, common[2].ok_or_else(bad)?)
                }
                _ => return Err(bad()),
            });
        }
        self.types.insert(id, ty.ok_or_else(bad)?);
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
    fn struct_type(&mut self) -> Result<Type> {
        let mut name = String::new();
        let mut fields = Vec::new();
        let mut field = -1i64;
        loop {
            let Some(next) = self.next_field(field)? else {
                return Ok(Type::Struct(name, fields));
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

    /// A value at the top of a message: a struct directly, anything else after a zero byte.
    fn top_level_value(&mut self, id: i64, depth: usize) -> Result<GoValue> {
        if !matches!(self.types.get(&id), Some(Type::Struct(..))) && self.uint()? != 0 {
            return Err(bad());
        }
        self.value(id, depth)
    }

    fn value(&mut self, id: i64, depth: usize) -> Result<GoValue> {
        if depth > MAX_DEPTH {
            return Err(bad());
        }
        Ok(match id {
            BOOL => match self.uint()? {
                0 => GoValue::Bool(false),
                1 => GoValue::Bool(true),
                _ => return Err(bad()),
            },
            INT => GoValue::Int(self.int()?),
            UINT => GoValue::Uint(self.uint()?),
            // The IEEE bits, byte-reversed so that small numbers are short.
            FLOAT => GoValue::Float(f64::from_bits(self.uint()?.swap_bytes())),
            BYTES => GoValue::Bytes(self.bytes()?.to_vec()),
            STRING => GoValue::String(self.string()?),
            INTERFACE => self.interface(depth)?,
            _ => match self.types.get(&id).cloned().ok_or_else(bad)? {
                Type::Slice(elem) | Type::Array(elem) => {
                    let n = self.count()?;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.value(elem, depth + 1)?);
                    }
                    GoValue::List(items)
                }
                Type::Map(key, elem) => {
                    let n = self.count()?;
                    let mut entries = Vec::with_capacity(n);
                    for _ in 0..n {
                        let k = self.value(key, depth + 1)?;
                        let v = self.value(elem, depth + 1)?;
                        entries.push((k, v));
                    }
                    GoValue::Map(entries)
                }
                Type::Struct(name, fields) => {
                    let mut values = Vec::new();
                    let mut field = -1i64;
                    while let Some(next) = self.next_field(field)? {
                        field = next;
                        let index = usize::try_from(field).map_err(|_| bad())?;
                        let (fname, fid) = fields.get(index).cloned().ok_or_else(bad)?;
                        values.push((fname, self.value(fid, depth + 1)?));
                    }
                    GoValue::Struct {
                        name,
                        fields: values,
                    }
                }
            },
        })
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
        // The caller counted this level already: an interface adds no depth of its own, as
        // in the encoder.
        let value = self.top_level_value(id, depth)?;
        Ok(GoValue::Named(name, Box::new(value)))
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

/// Encodes `value` as one gob stream that Go's `gob.Decoder` reads back into the same Go
/// value: a [`GoValue::Map`] as `map[interface{}]interface{}` (what a gorilla session's
/// `Values` is), a [`GoValue::List`] as `[]interface{}`, scalars as themselves.
///
/// Every type definition goes in its own message before the value, which Go accepts
/// wherever it writes them; so the bytes equal Go's for values with no nested composite
/// types (a map of scalars, a scalar), and differ only in framing for the others. Values
/// inside maps and lists are Go interfaces: a [`GoValue::Named`] keeps its Go type name
/// (`"int16"`, `"main.Person"`), others get the plain one (`"string"`, `"int"`,
/// `"float64"`, `"[]uint8"`, …). A struct must be `Named` with the name Go registered it
/// under. Lists and maps are always written as `[]interface{}` and
/// `map[interface{}]interface{}`: a typed slice read from Go (`[]string`) comes back as the
/// interface form, with its elements `Named`.
///
/// # Errors
///
/// [`ErrorKind::Serialize`] for a struct in an interface without its registered name, a
/// `Nil` outside an interface, or nesting deeper than the decoder accepts.
///
/// # Examples
///
/// ```
/// use fastsession_gorilla::gob::{self, GoValue};
///
/// // Go: session.Values["foo"] = "bar", as gorilla/sessions' GobEncoder writes it.
/// let values = GoValue::Map(vec![(GoValue::String("foo".into()), GoValue::String("bar".into()))]);
/// let bytes = gob::encode(&values)?;
/// assert_eq!(gob::decode(&bytes)?, GoValue::Map(vec![(
///     GoValue::Named("string".into(), Box::new(GoValue::String("foo".into()))),
///     GoValue::Named("string".into(), Box::new(GoValue::String("bar".into()))),
/// )]));
/// # Ok::<(), fastsession_gorilla::Error>(())
/// ```
pub fn encode(value: &GoValue) -> Result<Vec<u8>> {
    let mut encoder = Encoder {
        out: Vec::new(),
        ids: Vec::new(),
    };
    let mut message = Vec::new();
    if let GoValue::Named(..) = value {
        // A value that was in an interface stays one.
        encoder.interface_types(value, 0)?;
        put_int(&mut message, INTERFACE);
        message.push(0);
        encoder.interface(&mut message, value, 0)?;
    } else {
        let id = encoder.type_of(value, 0)?;
        put_int(&mut message, id);
        encoder.top_level(&mut message, value, 0)?;
    }
    put_message(&mut encoder.out, &message);
    Ok(encoder.out)
}

fn unsupported() -> Error {
    Error::new(ErrorKind::Serialize)
}

/// The composite wire types an encoding defines, by their shape.
#[derive(PartialEq)]
enum Shape {
    Map,
    List,
    Struct(String, Vec<(String, i64)>),
}

struct Encoder {
    /// The type-definition messages written so far.
    out: Vec<u8>,
    ids: Vec<Shape>,
}

impl Encoder {
    /// The wire type id of `value`, defining it (and what it holds) first if needed.
    fn type_of(&mut self, value: &GoValue, depth: usize) -> Result<i64> {
        if depth > MAX_DEPTH {
            return Err(unsupported());
        }
        Ok(match value {
            GoValue::Nil => return Err(unsupported()),
            GoValue::Bool(_) => BOOL,
            GoValue::Int(_) => INT,
            GoValue::Uint(_) => UINT,
            GoValue::Float(_) => FLOAT,
            GoValue::Bytes(_) => BYTES,
            GoValue::String(_) => STRING,
            GoValue::Named(_, inner) => self.type_of(inner, depth)?,
            GoValue::Map(entries) => {
                let id = self.define(Shape::Map)?;
                for (k, v) in entries {
                    self.interface_types(k, depth + 1)?;
                    self.interface_types(v, depth + 1)?;
                }
                id
            }
            GoValue::List(items) => {
                let id = self.define(Shape::List)?;
                for item in items {
                    self.interface_types(item, depth + 1)?;
                }
                id
            }
            GoValue::Struct { name, fields } => {
                let mut wire = Vec::with_capacity(fields.len());
                // Go sends no zero field; its type here lists only the fields sent.
                for (fname, v) in fields.iter().filter(|(_, v)| !is_zero(v)) {
                    // A field that held an interface value is an interface field.
                    let fid = if let GoValue::Named(..) = v {
                        self.interface_types(v, depth + 1)?;
                        INTERFACE
                    } else {
                        self.type_of(v, depth + 1)?
                    };
                    wire.push((fname.clone(), fid));
                }
                self.define(Shape::Struct(name.clone(), wire))?
            }
        })
    }

    fn interface_types(&mut self, value: &GoValue, depth: usize) -> Result<()> {
        if !matches!(value, GoValue::Nil) {
            self.type_of(value, depth)?;
        }
        Ok(())
    }

    /// The id of `shape`, writing its definition message the first time.
    fn define(&mut self, shape: Shape) -> Result<i64> {
        if let Some(i) = self.ids.iter().position(|s| *s == shape) {
            return Ok(65 + i64::try_from(i).map_err(|_| unsupported())?);
        }
        if self.ids.len() >= MAX_TYPES {
            return Err(unsupported());
        }
        let id = 65 + i64::try_from(self.ids.len()).map_err(|_| unsupported())?;
        let mut m = Vec::new();
        put_int(&mut m, -id);
        match &shape {
            // wireType.MapT { CommonType { Id }, Key, Elem }
            Shape::Map => {
                m.extend_from_slice(&[4, 1, 2]);
                put_int(&mut m, id);
                m.extend_from_slice(&[0, 1]);
                put_int(&mut m, INTERFACE);
                m.push(1);
                put_int(&mut m, INTERFACE);
                m.extend_from_slice(&[0, 0]);
            }
            // wireType.SliceT { CommonType { Id }, Elem }
            Shape::List => {
                m.extend_from_slice(&[2, 1, 2]);
                put_int(&mut m, id);
                m.extend_from_slice(&[0, 1]);
                put_int(&mut m, INTERFACE);
                m.extend_from_slice(&[0, 0]);
            }
            // wireType.StructT { CommonType { Name, Id }, Field []{ Name, Id } }
            Shape::Struct(name, fields) => {
                m.extend_from_slice(&[3, 1, 1]);
                put_bytes(&mut m, name.as_bytes());
                m.push(1);
                put_int(&mut m, id);
                m.extend_from_slice(&[0, 1]);
                put_uint(&mut m, fields.len() as u64);
                for (fname, fid) in fields {
                    m.push(1);
                    put_bytes(&mut m, fname.as_bytes());
                    m.push(1);
                    put_int(&mut m, *fid);
                    m.push(0);
                }
                m.extend_from_slice(&[0, 0]);
            }
        }
        put_message(&mut self.out, &m);
        self.ids.push(shape);
        Ok(id)
    }

    /// A value at the top of a message (or of an interface's data): a struct directly,
    /// anything else after a zero byte.
    fn top_level(&mut self, out: &mut Vec<u8>, value: &GoValue, depth: usize) -> Result<()> {
        let inner = match value {
            GoValue::Named(_, inner) => &**inner,
            other => other,
        };
        if !matches!(inner, GoValue::Struct { .. }) {
            out.push(0);
        }
        self.value(out, inner, depth)
    }

    fn value(&mut self, out: &mut Vec<u8>, value: &GoValue, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(unsupported());
        }
        match value {
            GoValue::Nil => return Err(unsupported()),
            GoValue::Bool(b) => put_uint(out, u64::from(*b)),
            GoValue::Int(i) => put_int(out, *i),
            GoValue::Uint(u) => put_uint(out, *u),
            GoValue::Float(f) => put_uint(out, f.to_bits().swap_bytes()),
            GoValue::Bytes(b) => put_bytes(out, b),
            GoValue::String(s) => put_bytes(out, s.as_bytes()),
            GoValue::Named(_, inner) => self.value(out, inner, depth)?,
            GoValue::Map(entries) => {
                put_uint(out, entries.len() as u64);
                for (k, v) in entries {
                    self.interface(out, k, depth + 1)?;
                    self.interface(out, v, depth + 1)?;
                }
            }
            GoValue::List(items) => {
                put_uint(out, items.len() as u64);
                for item in items {
                    self.interface(out, item, depth + 1)?;
                }
            }
            GoValue::Struct { fields, .. } => {
                // The fields the type lists (the non-zero ones), each one after the last.
                for (_, v) in fields.iter().filter(|(_, v)| !is_zero(v)) {
                    put_uint(out, 1);
                    if let GoValue::Named(..) = v {
                        self.interface(out, v, depth + 1)?;
                    } else {
                        self.value(out, v, depth + 1)?;
                    }
                }
                out.push(0);
            }
        }
        Ok(())
    }

    /// `name · type id · uint(byte count) · value`; a nil interface is an empty name.
    fn interface(&mut self, out: &mut Vec<u8>, value: &GoValue, depth: usize) -> Result<()> {
        let name = match value {
            GoValue::Nil => {
                put_uint(out, 0);
                return Ok(());
            }
            GoValue::Named(name, _) => name.as_str(),
            GoValue::Bool(_) => "bool",
            GoValue::Int(_) => "int",
            GoValue::Uint(_) => "uint",
            GoValue::Float(_) => "float64",
            GoValue::Bytes(_) => "[]uint8",
            GoValue::String(_) => "string",
            GoValue::List(_) => "[]interface {}",
            GoValue::Map(_) => "map[interface {}]interface {}",
            GoValue::Struct { .. } => return Err(unsupported()),
        };
        put_bytes(out, name.as_bytes());
        put_int(out, self.type_of(value, depth)?);
        let mut data = Vec::new();
        self.top_level(&mut data, value, depth)?;
        put_bytes(out, &data);
        Ok(())
    }
}

fn is_zero(value: &GoValue) -> bool {
    match value {
        GoValue::Nil => true,
        GoValue::Bool(b) => !b,
        GoValue::Int(i) => *i == 0,
        GoValue::Uint(u) => *u == 0,
        GoValue::Float(f) => f.to_bits() == 0,
        GoValue::Bytes(b) => b.is_empty(),
        GoValue::String(s) => s.is_empty(),
        GoValue::List(items) => items.is_empty(),
        GoValue::Map(entries) => entries.is_empty(),
        GoValue::Struct { .. } => false,
        GoValue::Named(_, inner) => is_zero(inner),
    }
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

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_message(out: &mut Vec<u8>, message: &[u8]) {
    put_bytes(out, message);
}
