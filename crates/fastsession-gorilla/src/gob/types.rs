//! The type model: a Go type as gob sends it ([`GoType`], [`StructType`], [`EncodedType`]),
//! a value read and written with one ([`GoValue`]), and whether a number fits a width.

use std::sync::Arc;

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
    pub(super) name: String,
    pub(super) fields: Vec<(String, GoType)>,
}

impl StructType {
    /// Returns a struct named `name` (Go's type name without the package, `Person`) with `fields`.
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

    /// Returns the struct's name.
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

    /// Returns the fields, in order: name and type.
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
    pub(super) name: String,
    /// `wireType`'s field: 4 `GobEncoder`, 5 `BinaryMarshaler`, 6 `TextMarshaler`.
    pub(super) field: u8,
}

impl EncodedType {
    /// Returns the type's name (`Time`).
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
    /// Returns a value in an interface, its type registered under `name`.
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
