//! gorilla/sessions' `Values` map and fastsession's [`Record`], both ways (see
//! [`GorillaFormat`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fastsession_core::session::{DEFAULT_FLASH_KEY, Record, SessionId};
use fastsession_core::time::UnixTime;
use serde_json::value::RawValue;
use serde_json::{Number, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::gob::{self, GoValue};

/// How a gorilla session maps onto a fastsession session: which keys hold flash messages,
/// which one (if any) holds the user id, and whether the cookie is "remember me".
///
/// A gorilla session is a gob `map[interface{}]interface{}`; flash messages are
/// `[]interface{}` under their key (`"_flash"` by default). Values become JSON as Go's
/// `encoding/json` would write them (`[]byte` as base64, structs as objects of their fields).
/// Going back, each value keeps the Go type it was read with, so a Go service's type
/// assertions (`.(int64)`, `.(Person)`) still hold after a Rust service saved the session:
///
/// * a value the Rust side did not change is written back exactly as it was read;
/// * a changed value takes the Go type of the one it replaces where the new value fits it;
/// * a new value gets Go's natural type: `string`, `bool`, `int` (`uint64` above `int64`'s
///   range), `float64` (JSON numbers with a fraction or exponent), `[]interface{}`,
///   `map[interface{}]interface{}`, or nil.
///
/// Entries whose key is not a string (Go allows any comparable key) are not visible to Rust;
/// they are written back unchanged unless the session was cleared.
///
/// # Examples
///
/// ```
/// use fastsession_gorilla::GorillaFormat;
///
/// // The Go service calls session.AddFlash(msg) and session.AddFlash(err, "errors"),
/// // and keeps the logged-in user's id under "user_id".
/// let format = GorillaFormat::new()
///     .with_flash_key("errors")
///     .with_user_key("user_id");
/// assert_eq!(format.flash_keys(), ["_flash", "errors"]);
/// ```
#[derive(Clone, Debug)]
pub struct GorillaFormat {
    flash_keys: Vec<String>,
    user_key: Option<String>,
    meta_key: Option<String>,
    persistent: bool,
}

/// The default key of the entry that carries what Go's format has no place for.
pub const DEFAULT_META_KEY: &str = "_fastsession";

/// What the meta entry holds (as a JSON string, so Go needs no registered type for it).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Meta {
    /// Creation time, Unix seconds.
    #[serde(rename = "c")]
    created: u64,
    /// "Remember me".
    #[serde(rename = "p", default)]
    persistent: bool,
    /// Flash keys beyond the configured ones.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    flash_keys: Vec<String>,
    /// The user id, when there is no user key.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

impl Default for GorillaFormat {
    fn default() -> Self {
        GorillaFormat {
            flash_keys: vec![DEFAULT_FLASH_KEY.to_owned()],
            user_key: None,
            meta_key: Some(DEFAULT_META_KEY.to_owned()),
            persistent: true,
        }
    }
}

impl GorillaFormat {
    /// Flashes under `"_flash"` (gorilla's default key), no user key, the meta entry under
    /// [`DEFAULT_META_KEY`], persistent cookies for sessions Go created (gorilla's stores
    /// default to a 30-day `MaxAge`).
    #[must_use]
    pub fn new() -> Self {
        GorillaFormat::default()
    }

    /// Also treats a `[]interface{}` under `key` as flash messages (Go's
    /// `session.AddFlash(v, key)`).
    #[must_use]
    pub fn with_flash_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        if !self.flash_keys.contains(&key) {
            self.flash_keys.push(key);
        }
        self
    }

    /// Reads the session's user id (see `Session::set_user_id`) from the string under `key`,
    /// and writes it there, where the Go service can read it. Without a user key the user id
    /// is kept in the meta entry.
    #[must_use]
    pub fn with_user_key(mut self, key: impl Into<String>) -> Self {
        self.user_key = Some(key.into());
        self
    }

    /// Keeps what the Go format has no place for in a string entry under `key`
    /// ([`DEFAULT_META_KEY`] by default): the creation time (so the absolute lifetime holds),
    /// "remember me", flash keys beyond the configured ones, and the user id when there is no
    /// [user key](Self::with_user_key). Go services carry it along like any other value.
    #[must_use]
    pub fn with_meta_key(mut self, key: impl Into<String>) -> Self {
        self.meta_key = Some(key.into());
        self
    }

    /// Writes no meta entry, for Go services that must see only their own keys. Then a
    /// session's creation time is its last save (the absolute lifetime is not enforced),
    /// flash messages under unconfigured keys and "remember me" are not kept, and a user id
    /// needs a [user key](Self::with_user_key).
    #[must_use]
    pub fn without_meta(mut self) -> Self {
        self.meta_key = None;
        self
    }

    /// Whether sessions Go created count as "remember me" (the cookie's lifetime is not in
    /// the cookie; this says which one the Rust service gives them).
    #[must_use]
    pub fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The keys read as flash messages.
    #[must_use]
    pub fn flash_keys(&self) -> &[String] {
        &self.flash_keys
    }

    /// The key of the user id, if any.
    #[must_use]
    pub fn user_key(&self) -> Option<&str> {
        self.user_key.as_deref()
    }

    /// Turns a gob-encoded gorilla `Values` map, signed at `timestamp`, into a record; the
    /// record's [origin](Record::origin) is a [`GorillaOrigin`] that keeps the Go types.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if the bytes are not such a map, or hold a value JSON cannot
    /// (NaN or an infinity) or a map with non-string keys inside a value.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::time::UnixTime;
    /// use fastsession_gorilla::gob::{self, GoValue};
    /// use fastsession_gorilla::GorillaFormat;
    ///
    /// let values = GoValue::Map(vec![(GoValue::String("count".into()), GoValue::Int(3))]);
    /// // Go's own keys only: no meta entry.
    /// let format = GorillaFormat::new().without_meta();
    /// let now = UnixTime::from_secs(1_700_000_000);
    /// let record = format.read_gob(&gob::encode(&values)?, now)?;
    /// assert_eq!(record.value("count").map(|v| v.get()), Some("3"));
    /// assert_eq!(format.write_gob(&record)?, gob::encode(&values)?);
    /// # Ok::<(), fastsession_gorilla::Error>(())
    /// ```
    pub fn read_gob(&self, bytes: &[u8], timestamp: UnixTime) -> Result<Record> {
        self.read(bytes, timestamp, GorillaOrigin::default())
    }

    /// [`read_gob`](Self::read_gob), the origin starting as `origin`.
    pub(crate) fn read(
        &self,
        bytes: &[u8],
        timestamp: UnixTime,
        mut origin: GorillaOrigin,
    ) -> Result<Record> {
        let GoValue::Map(entries) = strip(gob::decode(bytes)?) else {
            return Err(Error::new(ErrorKind::Deserialize));
        };
        let mut record = Record::new(timestamp);
        record.set_persistent(self.persistent);
        let meta = self.meta_key.as_deref().and_then(|meta_key| {
            entries
                .iter()
                .find_map(|(k, v)| match (strip_ref(k), strip_ref(v)) {
                    (GoValue::String(k), GoValue::String(text)) if k == meta_key => {
                        serde_json::from_str::<Meta>(text).ok()
                    }
                    _ => None,
                })
        });
        let mut extra_flash_keys = Vec::new();
        if let Some(meta) = meta {
            // A creation time after the last save is not ours to trust; the save's is.
            record.set_created(UnixTime::from_secs(meta.created).min(timestamp));
            record.set_persistent(meta.persistent);
            if self.user_key.is_none() {
                record.set_user_id(meta.user);
            }
            extra_flash_keys = meta.flash_keys;
        }
        for (key, value) in entries {
            let GoValue::String(name) = strip_ref(&key) else {
                origin.hidden.push((key, value));
                continue;
            };
            let name = name.clone();
            if self.meta_key.as_deref() == Some(name.as_str()) {
                continue;
            }
            if self.user_key.as_deref() == Some(name.as_str())
                && let GoValue::String(user) = strip_ref(&value)
            {
                record.set_user_id(Some(user.clone()));
                continue;
            }
            if (self.flash_keys.contains(&name) || extra_flash_keys.contains(&name))
                && let GoValue::List(items) = strip_ref(&value)
            {
                let list = items.iter().map(raw_json).collect::<Result<Vec<_>>>()?;
                record.set_flash_list(name, list);
                continue;
            }
            let json = raw_json(&value)?;
            let text = Box::from(json.get());
            record.insert_value(name.clone(), json);
            origin.values.insert(name, (value, text));
        }
        origin.last_active = Some(timestamp);
        record.set_origin(Some(Arc::new(origin)));
        Ok(record)
    }

    /// The gob bytes of `record` as a gorilla `Values` map, keeping the Go types of the
    /// values it was read with (see [`GorillaFormat`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialize`] for a user id with neither a [user key](Self::with_user_key)
    /// nor the meta entry, a key that holds both a value and flash messages, a value or flash
    /// key that is the user or meta key, or a value gob cannot hold.
    pub fn write_gob(&self, record: &Record) -> Result<Vec<u8>> {
        let reserved = |key: &str| {
            self.meta_key.as_deref() == Some(key) || self.user_key.as_deref() == Some(key)
        };
        if record.values().any(|(k, _)| reserved(k)) || record.flashes().any(|(k, _)| reserved(k)) {
            return Err(Error::new(ErrorKind::Serialize));
        }
        let origin = GorillaOrigin::of(record);
        let previous = |key: &str| origin.and_then(|o| o.values.get(key));
        let mut entries = Vec::with_capacity(record.values().len() + record.flashes().len() + 1);
        for (key, value) in record.values() {
            // The common case, a value as it was read, needs no parsing.
            if let Some((old, read)) = previous(key)
                && **read == *value.get()
            {
                entries.push((GoValue::String(key.to_owned()), old.clone()));
                continue;
            }
            let value: Value = serde_json::from_str(value.get())
                .map_err(|e| Error::with_source(ErrorKind::Serialize, e))?;
            let go = match previous(key).map(|(old, _)| old) {
                Some(old) if to_json(old).is_ok_and(|j| j == value) => old.clone(),
                old => from_json(&value, old),
            };
            entries.push((GoValue::String(key.to_owned()), go));
        }
        for (key, list) in record.flashes() {
            if record.value(key).is_some() {
                return Err(Error::new(ErrorKind::Serialize));
            }
            let items = list
                .iter()
                .map(|item| {
                    serde_json::from_str::<Value>(item.get())
                        .map(|v| from_json(&v, None))
                        .map_err(|e| Error::with_source(ErrorKind::Serialize, e))
                })
                .collect::<Result<Vec<_>>>()?;
            entries.push((GoValue::String(key.to_owned()), GoValue::List(items)));
        }
        let mut user_in_meta = None;
        match (record.user_id(), &self.user_key, &self.meta_key) {
            (None, _, _) => {}
            (Some(user), Some(key), _) => {
                entries.push((
                    GoValue::String(key.clone()),
                    GoValue::String(user.to_owned()),
                ));
            }
            (Some(user), None, Some(_)) => user_in_meta = Some(user.to_owned()),
            (Some(_), None, None) => return Err(Error::new(ErrorKind::Serialize)),
        }
        if let Some(meta_key) = &self.meta_key {
            let meta = Meta {
                created: record.created().as_secs(),
                persistent: record.is_persistent(),
                flash_keys: record
                    .flashes()
                    .map(|(k, _)| k)
                    .filter(|k| !self.flash_keys.iter().any(|f| f == k))
                    .map(str::to_owned)
                    .collect(),
                user: user_in_meta,
            };
            let text = serde_json::to_string(&meta)
                .map_err(|e| Error::with_source(ErrorKind::Serialize, e))?;
            entries.push((GoValue::String(meta_key.clone()), GoValue::String(text)));
        }
        if let Some(origin) = origin {
            // Keys Rust cannot see; a cleared session drops them with the rest.
            let cleared = record.values().len() == 0 && record.flashes().len() == 0;
            if !cleared {
                entries.extend(origin.hidden.iter().cloned());
            }
        }
        gob::encode(&GoValue::Map(entries))
    }
}

/// What a gorilla-format load attaches to its record ([`Record::origin`]): the Go values as
/// read, for writing them back with their types, and the file they came from.
#[derive(Debug, Default)]
pub struct GorillaOrigin {
    /// Each value as read, and its JSON text.
    values: BTreeMap<String, (GoValue, Box<str>)>,
    hidden: Vec<(GoValue, GoValue)>,
    file: Option<std::path::PathBuf>,
    /// When the session was last saved, as read (the record's own moves to the request's
    /// time before the save).
    last_active: Option<UnixTime>,
}

impl GorillaOrigin {
    pub(crate) fn of(record: &Record) -> Option<&GorillaOrigin> {
        record.origin()?.downcast_ref()
    }

    /// The origin of a session read from `file` (a `FilesystemStore` session).
    pub(crate) fn from_file(file: std::path::PathBuf) -> Self {
        GorillaOrigin {
            file: Some(file),
            ..GorillaOrigin::default()
        }
    }

    /// When the session had last been saved when it was read.
    pub(crate) fn last_active(&self) -> Option<UnixTime> {
        self.last_active
    }

    /// The gorilla `FilesystemStore` file the session was read from.
    pub(crate) fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }
}

/// The stand-in id of a gorilla cookie, for revocation lists (a gorilla cookie has no id):
/// SHA-256 over a label, the name and the value. The value is signed and unpredictable, so the
/// hash needs no key, and nothing about the cookie can be learnt back from it.
pub(crate) fn fingerprint(cookie_name: &str, cookie_value: &str) -> SessionId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"fastsession-gorilla cookie\0")
        .chain_update(cookie_name.as_bytes())
        .chain_update(b"\0")
        .chain_update(cookie_value.as_bytes())
        .finalize();
    SessionId::from_bytes(digest.into())
}

/// The value inside any number of interface wrappers.
fn strip(value: GoValue) -> GoValue {
    match value {
        GoValue::Named(_, inner) => strip(*inner),
        other => other,
    }
}

fn strip_ref(value: &GoValue) -> &GoValue {
    match value {
        GoValue::Named(_, inner) => strip_ref(inner),
        other => other,
    }
}

fn raw_json(value: &GoValue) -> Result<Box<RawValue>> {
    let json = to_json(value)?;
    serde_json::value::to_raw_value(&json)
        .map_err(|e| Error::with_source(ErrorKind::Deserialize, e))
}

/// A Go value as Go's `encoding/json` would write it.
fn to_json(value: &GoValue) -> Result<Value> {
    Ok(match strip_ref(value) {
        GoValue::Nil => Value::Null,
        GoValue::Bool(b) => Value::Bool(*b),
        GoValue::Int(i) => Value::from(*i),
        GoValue::Uint(u) => Value::from(*u),
        GoValue::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| Error::new(ErrorKind::Deserialize))?,
        GoValue::Bytes(b) => Value::String(STANDARD.encode(b)),
        GoValue::String(s) => Value::String(s.clone()),
        GoValue::List(items) => Value::Array(items.iter().map(to_json).collect::<Result<_>>()?),
        GoValue::Map(entries) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                let GoValue::String(k) = strip_ref(k) else {
                    return Err(Error::new(ErrorKind::Deserialize));
                };
                object.insert(k.clone(), to_json(v)?);
            }
            Value::Object(object)
        }
        GoValue::Struct { fields, .. } => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<_>>()?,
        ),
        // strip_ref leaves no Named, and GoValue may grow.
        _ => return Err(Error::new(ErrorKind::Deserialize)),
    })
}

/// A JSON value as a Go value, in the Go type of `old` (the value it replaces) where it fits.
fn from_json(value: &Value, old: Option<&GoValue>) -> GoValue {
    // The name of a Go type a new value may keep.
    let (name, old_inner) = match old {
        Some(GoValue::Named(name, inner)) => (Some(name.as_str()), Some(strip_ref(inner))),
        Some(other) => (None, Some(strip_ref(other))),
        None => (None, None),
    };
    let keep = |v: GoValue| match name {
        Some(name) => GoValue::Named(name.to_owned(), Box::new(v)),
        None => v,
    };
    match (value, old_inner) {
        (Value::Null, _) => GoValue::Nil,
        (Value::Bool(b), Some(GoValue::Bool(_))) => keep(GoValue::Bool(*b)),
        (Value::Bool(b), _) => GoValue::Bool(*b),
        (Value::Number(n), Some(GoValue::Int(_))) if fits_int(n, name) => {
            keep(GoValue::Int(n.as_i64().unwrap_or_default()))
        }
        (Value::Number(n), Some(GoValue::Uint(_))) if fits_uint(n, name) => {
            keep(GoValue::Uint(n.as_u64().unwrap_or_default()))
        }
        (Value::Number(n), Some(GoValue::Float(_))) => {
            keep(GoValue::Float(n.as_f64().unwrap_or_default()))
        }
        (Value::Number(n), _) => {
            if let Some(i) = n.as_i64() {
                GoValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                GoValue::Named("uint64".to_owned(), Box::new(GoValue::Uint(u)))
            } else {
                GoValue::Float(n.as_f64().unwrap_or_default())
            }
        }
        (Value::String(s), Some(GoValue::Bytes(_))) => match STANDARD.decode(s) {
            Ok(bytes) => keep(GoValue::Bytes(bytes)),
            Err(_) => GoValue::String(s.clone()),
        },
        (Value::String(s), Some(GoValue::String(_))) => keep(GoValue::String(s.clone())),
        (Value::String(s), _) => GoValue::String(s.clone()),
        (Value::Array(items), old) => {
            let old_items = match old {
                Some(GoValue::List(old_items)) => old_items.as_slice(),
                _ => &[],
            };
            GoValue::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| from_json(item, old_items.get(i)))
                    .collect(),
            )
        }
        (
            Value::Object(object),
            Some(GoValue::Struct {
                name: type_name,
                fields,
            }),
        ) if object.keys().all(|k| fields.iter().any(|(f, _)| f == k))
            || object.keys().all(|k| is_exported_field(k)) =>
        {
            let field = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v);
            keep(GoValue::Struct {
                name: type_name.clone(),
                fields: object
                    .iter()
                    .map(|(k, v)| (k.clone(), from_json(v, field(k))))
                    .collect(),
            })
        }
        (Value::Object(object), old) => {
            let old_entry = |k: &str| match old {
                Some(GoValue::Map(entries)) => entries
                    .iter()
                    .find(|(ok, _)| matches!(strip_ref(ok), GoValue::String(s) if s == k))
                    .map(|(_, v)| v),
                _ => None,
            };
            GoValue::Map(
                object
                    .iter()
                    .map(|(k, v)| (GoValue::String(k.clone()), from_json(v, old_entry(k))))
                    .collect(),
            )
        }
    }
}

/// A struct field name gob can set: exported (an upper-case first letter).
fn is_exported_field(name: &str) -> bool {
    name.chars().next().is_some_and(char::is_uppercase)
}

/// Whether `n` fits the signed Go type `name` (`int` and unnamed: 64 bits).
fn fits_int(n: &Number, name: Option<&str>) -> bool {
    let Some(i) = n.as_i64() else { return false };
    match name {
        Some("int8") => i8::try_from(i).is_ok(),
        Some("int16") => i16::try_from(i).is_ok(),
        Some("int32") => i32::try_from(i).is_ok(),
        _ => true,
    }
}

/// Whether `n` fits the unsigned Go type `name`.
fn fits_uint(n: &Number, name: Option<&str>) -> bool {
    let Some(u) = n.as_u64() else { return false };
    match name {
        Some("uint8") => u8::try_from(u).is_ok(),
        Some("uint16") => u16::try_from(u).is_ok(),
        Some("uint32") => u32::try_from(u).is_ok(),
        _ => true,
    }
}

/// The Unix time of a gorilla timestamp (Go accepts negative ones; they are long expired).
pub(crate) fn unix_time(timestamp: i64) -> UnixTime {
    UnixTime::from_secs(u64::try_from(timestamp).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, v: GoValue) -> GoValue {
        GoValue::Named(name.to_owned(), Box::new(v))
    }

    fn s(text: &str) -> GoValue {
        GoValue::String(text.to_owned())
    }

    const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

    #[test]
    fn unchanged_values_keep_their_go_types() {
        let values = GoValue::Map(vec![
            (named("string", s("small")), named("int8", GoValue::Int(7))),
            (
                named("string", s("token")),
                named("[]uint8", GoValue::Bytes(vec![0, 1, 255])),
            ),
            (
                named("string", s("ratio")),
                named("float32", GoValue::Float(0.5)),
            ),
            (
                named("string", s("who")),
                named(
                    "main.Person",
                    GoValue::Struct {
                        name: "Person".into(),
                        fields: vec![("Name".into(), s("Ada"))],
                    },
                ),
            ),
            (
                named("int", GoValue::Int(42)),
                named("string", s("int key")),
            ),
        ]);
        let format = GorillaFormat::new().without_meta();
        let record = format
            .read_gob(&gob::encode(&values).unwrap(), NOW)
            .unwrap();
        assert_eq!(record.value("token").unwrap().get(), "\"AAH/\"");
        assert_eq!(record.value("who").unwrap().get(), "{\"Name\":\"Ada\"}");
        assert_eq!(record.values().len(), 4, "the int key is not a Rust key");
        let back = gob::decode(&format.write_gob(&record).unwrap()).unwrap();
        let GoValue::Map(entries) = back else {
            panic!()
        };
        let GoValue::Map(expected) = values else {
            panic!()
        };
        for entry in &expected {
            assert!(entries.contains(entry), "{entry:?} kept");
        }
        assert_eq!(entries.len(), expected.len());
    }

    #[test]
    fn changed_values_take_the_old_type_where_they_fit() {
        let old = named("int16", GoValue::Int(1));
        assert_eq!(
            from_json(&Value::from(300), Some(&old)),
            named("int16", GoValue::Int(300))
        );
        assert_eq!(
            from_json(&Value::from(70_000), Some(&old)),
            GoValue::Int(70_000)
        );
        assert_eq!(
            from_json(&Value::from("x"), Some(&old)),
            GoValue::String("x".into())
        );
        let bytes = named("[]uint8", GoValue::Bytes(vec![1]));
        assert_eq!(
            from_json(&Value::from("AgM="), Some(&bytes)),
            named("[]uint8", GoValue::Bytes(vec![2, 3]))
        );
        assert_eq!(
            from_json(&serde_json::json!(1.5), None),
            GoValue::Float(1.5)
        );
        assert_eq!(
            from_json(&serde_json::json!(u64::MAX), None),
            named("uint64", GoValue::Uint(u64::MAX))
        );
    }

    #[test]
    fn flashes_and_the_user_map_to_their_places() {
        let values = GoValue::Map(vec![
            (
                named("string", s("_flash")),
                named(
                    "[]interface {}",
                    GoValue::List(vec![named("string", s("hi"))]),
                ),
            ),
            (named("string", s("uid")), named("string", s("ada"))),
        ]);
        let format = GorillaFormat::new().with_user_key("uid").without_meta();
        let record = format
            .read_gob(&gob::encode(&values).unwrap(), NOW)
            .unwrap();
        assert_eq!(record.flash_list("_flash").unwrap()[0].get(), "\"hi\"");
        assert_eq!(record.user_id(), Some("ada"));
        assert_eq!(record.values().len(), 0);
        assert_eq!(
            gob::decode(&format.write_gob(&record).unwrap()).unwrap(),
            gob::decode(&gob::encode(&values).unwrap()).unwrap()
        );

        let mut orphan = Record::new(NOW);
        orphan.set_user_id(Some("ada".into()));
        assert_eq!(
            GorillaFormat::new()
                .without_meta()
                .write_gob(&orphan)
                .unwrap_err()
                .kind(),
            ErrorKind::Serialize
        );
        // With the meta entry (the default) it rides there.
        let bytes = GorillaFormat::new().write_gob(&orphan).unwrap();
        assert_eq!(
            GorillaFormat::new()
                .read_gob(&bytes, NOW)
                .unwrap()
                .user_id(),
            Some("ada")
        );
    }

    #[test]
    fn the_meta_entry_keeps_what_go_has_no_place_for() {
        let format = GorillaFormat::new();
        let mut record = Record::new(NOW);
        record.set_created(UnixTime::from_secs(1_600_000_000));
        record.set_persistent(false);
        record.set_flash_list(
            "errors".into(),
            vec![RawValue::from_string("1".into()).unwrap()],
        );
        let bytes = format.write_gob(&record).unwrap();
        let back = format.read_gob(&bytes, NOW).unwrap();
        assert_eq!(back, record, "creation time, remember-me, flash key");
        // A creation time after the save that carries it is not believed.
        record.set_created(UnixTime::from_secs(1_800_000_000));
        let bytes = format.write_gob(&record).unwrap();
        assert_eq!(format.read_gob(&bytes, NOW).unwrap().created(), NOW);
        // A value under the meta key is refused rather than shadowed.
        let mut clash = Record::new(NOW);
        clash.insert_value(
            DEFAULT_META_KEY.into(),
            RawValue::from_string("1".into()).unwrap(),
        );
        assert_eq!(
            format.write_gob(&clash).unwrap_err().kind(),
            ErrorKind::Serialize
        );
    }

    #[test]
    fn what_is_not_a_session_is_refused() {
        let format = GorillaFormat::new();
        let not_a_map = gob::encode(&s("x")).unwrap();
        assert_eq!(
            format.read_gob(&not_a_map, NOW).unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        let nan = GoValue::Map(vec![(s("n"), GoValue::Float(f64::NAN))]);
        assert_eq!(
            format
                .read_gob(&gob::encode(&nan).unwrap(), NOW)
                .unwrap_err()
                .kind(),
            ErrorKind::Deserialize
        );
        assert!(format.read_gob(b"\x03\x04", NOW).is_err());
    }
}
