//! gorilla/sessions' `Values` map and fastsession's [`Record`], both ways (see
//! [`GorillaFormat`]).

use std::collections::BTreeMap;

use fastsession_core::session::{ChangeSet, DEFAULT_FLASH_KEY, Record, SessionId};
use fastsession_core::time::UnixTime;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::convert;
use crate::error::{Error, ErrorKind, Result};
use crate::gob::{self, GoType, GoValue};

/// How a gorilla session maps onto a fastsession session: which keys hold flash messages,
/// which one (if any) holds the user id, and whether the cookie is "remember me".
///
/// A gorilla session is a gob `map[interface{}]interface{}`; flash messages are
/// `[]interface{}` under their key (`"_flash"` by default). Values become JSON as Go's
/// `encoding/json` would write them (`[]byte` as base64, a struct as an object of all its
/// fields, a `float32` with its own digits). Going back, each value keeps the Go type it was
/// read with, so a Go service's type assertions (`.(int64)`, `.([]string)`, `.(Person)`)
/// still hold after a Rust service saved the session:
///
/// * a value the Rust side did not change is written back exactly as it was read, and so
///   are flash messages it did not take;
/// * a changed value takes the Go type of the one it replaces where the new value fits that
///   type, containers included (`[]int64` with an element added stays `[]int64`; inside
///   `[]interface{}`, maps and structs each element keeps its own type where it fits): numbers
///   within the type's range and without a fraction for integers, base64 text for `[]byte`,
///   arrays of the same length, objects whose keys are all fields of the struct;
/// * a value that does not fit, or a new one, gets Go's natural type: `string`, `bool`,
///   `int` (`uint64` above `int64`'s range), `float64` (a fraction or exponent),
///   `[]interface{}`, `map[string]interface{}`, or nil; or the type
///   [declared](Self::with_go_type) for its key.
///
/// A number Go's type could not hold never reaches Go: a `float32` set to `1e300` becomes a
/// `float64`. The exception is a number inside a struct or a declared non-struct type
/// (`type Level int8`), whose width is not on the wire: it is checked against 64 bits.
///
/// Entries Rust cannot see (keys that are not strings; values JSON cannot hold: NaN,
/// infinities, complex numbers, strings that are not UTF-8, types that encode themselves other
/// than `time.Time` (which reads as RFC 3339 text), maps keyed by other than strings and
/// integers) are written back unchanged,
/// unless the request cleared the session or wrote a value under the same key.
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::GorillaFormat;
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
    /// Declared Go types: key, Go's spelling, type.
    go_types: Vec<(String, String, GoType)>,
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
    /// The session's own deadline, Unix seconds (absent in entries written before it
    /// existed: none).
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

impl Default for GorillaFormat {
    fn default() -> Self {
        GorillaFormat {
            flash_keys: vec![DEFAULT_FLASH_KEY.to_owned()],
            user_key: None,
            meta_key: Some(DEFAULT_META_KEY.to_owned()),
            persistent: true,
            go_types: Vec::new(),
        }
    }
}

impl GorillaFormat {
    /// Flashes under `"_flash"` (gorilla's default key), no user key, the meta entry under
    /// [`DEFAULT_META_KEY`], persistent cookies for sessions Go created (gorilla's stores
    /// default to a 30-day `MaxAge`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{DEFAULT_META_KEY, GorillaFormat};
    ///
    /// // For a Go service that only uses session.AddFlash(msg) and plain values.
    /// let format = GorillaFormat::new();
    /// assert_eq!(format.flash_keys(), ["_flash"]);
    /// assert_eq!(DEFAULT_META_KEY, "_fastsession");
    /// ```
    #[must_use]
    pub fn new() -> Self {
        GorillaFormat::default()
    }

    /// Also treats a `[]interface{}` under `key` as flash messages (Go's
    /// `session.AddFlash(v, key)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// // Go: session.AddFlash("Saved", "notices")
    /// let format = GorillaFormat::new().with_flash_key("notices");
    /// assert_eq!(format.flash_keys(), ["_flash", "notices"]);
    /// ```
    #[must_use]
    pub fn with_flash_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        if !self.flash_keys.contains(&key) {
            self.flash_keys.push(key);
        }
        self
    }

    /// Reads the session's user id (see `Session::set_user_id`) from the string or integer
    /// under `key` (an integer in decimal), and writes it there, where the Go service can read
    /// it: in the Go type it was read with (or [declared](Self::with_go_type) for `key`) where
    /// the id fits it, else as a `string`. Without a user key the user id is kept in the meta
    /// entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// // Go: session.Values["user_id"] = user.ID (an int64), read by both services.
    /// let format = GorillaFormat::new().with_user_key("user_id");
    /// assert_eq!(format.user_key(), Some("user_id"));
    /// ```
    #[must_use]
    pub fn with_user_key(mut self, key: impl Into<String>) -> Self {
        self.user_key = Some(key.into());
        self
    }

    /// Keeps what the Go format has no place for in a string entry under `key`
    /// ([`DEFAULT_META_KEY`] by default): the creation time (so the absolute lifetime holds),
    /// "remember me", the session's own deadline (`Session::set_expires_at`), flash keys beyond
    /// the configured ones, and the user id when there is no [user key](Self::with_user_key).
    /// Go services carry it along like any other value.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// // The Go service already uses "_fastsession" for something of its own.
    /// let format = GorillaFormat::new().with_meta_key("_rust_meta");
    /// # let _ = format;
    /// ```
    #[must_use]
    pub fn with_meta_key(mut self, key: impl Into<String>) -> Self {
        self.meta_key = Some(key.into());
        self
    }

    /// Writes no meta entry, for Go services that must see only their own keys. Then a
    /// session's creation time is its last save (the absolute lifetime is not enforced),
    /// flash messages under unconfigured keys, "remember me" and a session's own deadline are
    /// not kept, and a user id needs a [user key](Self::with_user_key).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// // The Go service ranges over session.Values and must find only its own keys; the user id
    /// // then needs a key of its own.
    /// let format = GorillaFormat::new().without_meta().with_user_key("user_id");
    /// # let _ = format;
    /// ```
    #[must_use]
    pub fn without_meta(mut self) -> Self {
        self.meta_key = None;
        self
    }

    /// Whether sessions Go created count as "remember me" (the cookie's lifetime is not in
    /// the cookie; this says which one the Rust service gives them).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// // The Go service sets Options.MaxAge = 0: its cookies end with the browser session, and
    /// // sessions it created stay so after the Rust service saves them.
    /// let format = GorillaFormat::new().with_persistent(false);
    /// # let _ = format;
    /// ```
    #[must_use]
    pub fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The keys read as flash messages.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// let format = GorillaFormat::new().with_flash_key("errors").with_flash_key("errors");
    /// assert_eq!(format.flash_keys(), ["_flash", "errors"]);
    /// ```
    #[must_use]
    pub fn flash_keys(&self) -> &[String] {
        &self.flash_keys
    }

    /// The key of the user id, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// // Without a user key the user id travels in the meta entry.
    /// assert_eq!(GorillaFormat::new().user_key(), None);
    /// ```
    #[must_use]
    pub fn user_key(&self) -> Option<&str> {
        self.user_key.as_deref()
    }

    /// Writes new or changed values under `key` in the Go type `go_type` (Go's spelling of
    /// a built-in type or a composite of them: `"int64"`, `"[]string"`,
    /// `"map[string]interface{}"`), for keys whose value the Go service asserts to that type.
    /// A value that does not fit it fails the save ([`ErrorKind::NotGoType`]) instead of
    /// reaching Go in a type its assertion refuses. Keys without a declared type keep the
    /// type they were read with where the new value fits it, else get the natural type (see
    /// [`GorillaFormat`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownGoType`] if `go_type` is not built from Go's built-in types (a
    /// declared type's fields are not in its name: such values keep the type Go wrote).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// // Go: visits := session.Values["visits"].(int64); tags := session.Values["tags"].([]string)
    /// let format = GorillaFormat::new()
    ///     .with_go_type("visits", "int64")?
    ///     .with_go_type("tags", "[]string")?;
    /// assert!(GorillaFormat::new().with_go_type("who", "main.Person").is_err());
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    pub fn with_go_type(mut self, key: impl Into<String>, go_type: &str) -> Result<Self> {
        let (name, ty) = gob::builtin_type(go_type)
            .filter(|(_, ty)| *ty != GoType::Interface)
            .ok_or_else(|| Error::new(ErrorKind::UnknownGoType))?;
        let key = key.into();
        self.go_types.retain(|(k, _, _)| *k != key);
        self.go_types.push((key, name, ty));
        Ok(self)
    }

    /// Turns a gob-encoded gorilla `Values` map, signed at `timestamp`, into a record, and the
    /// [`GorillaOrigin`] that keeps the Go types: pass it to [`write_gob`](Self::write_gob)
    /// to write the record back with them. Values JSON cannot hold are left out of the
    /// record and kept in the origin, to be written back as they were.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if the bytes are not such a map.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::UnixTime;
    /// use fastsession::gorilla::gob::{self, GoType, GoValue};
    /// use fastsession::gorilla::GorillaFormat;
    ///
    /// let ty = GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface));
    /// let values = GoValue::Map(vec![(
    ///     GoValue::named("string", GoType::String, GoValue::String("count".into())),
    ///     GoValue::named("int16", GoType::Int(16), GoValue::Int(3)),
    /// )]);
    /// // Go's own keys only: no meta entry.
    /// let format = GorillaFormat::new().without_meta();
    /// let now = UnixTime::from_secs(1_700_000_000);
    /// let (record, origin) = format.read_gob(&gob::encode(&ty, &values)?, now)?;
    /// assert_eq!(record.value("count").map(|v| v.get()), Some("3"));
    /// // Still an int16 for Go.
    /// assert_eq!(format.write_gob(&record, &origin)?, gob::encode(&ty, &values)?);
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    pub fn read_gob(&self, bytes: &[u8], timestamp: UnixTime) -> Result<(Record, GorillaOrigin)> {
        self.read(bytes, timestamp, GorillaOrigin::default())
    }

    /// [`read_gob`](Self::read_gob), the origin starting as `origin`.
    pub(crate) fn read(
        &self,
        bytes: &[u8],
        timestamp: UnixTime,
        mut origin: GorillaOrigin,
    ) -> Result<(Record, GorillaOrigin)> {
        let (GoType::Map(..), GoValue::Map(entries)) = gob::decode(bytes)? else {
            return Err(Error::new(ErrorKind::Deserialize));
        };
        let mut record = Record::new(timestamp);
        record.set_persistent(self.persistent);
        let meta = self.meta_key.as_deref().and_then(|meta_key| {
            entries.iter().find_map(|(k, v)| {
                (string_of(k)? == meta_key)
                    .then(|| serde_json::from_str::<Meta>(string_of(v)?).ok())
                    .flatten()
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
            record.set_expires_at(meta.expires_at.map(UnixTime::from_secs));
            extra_flash_keys = meta.flash_keys;
        }
        for (key, value) in entries {
            let Some(name) = string_of(&key).map(str::to_owned) else {
                origin.hidden.push((key, value));
                continue;
            };
            if self.meta_key.as_deref() == Some(name.as_str()) {
                continue;
            }
            if self.user_key.as_deref() == Some(name.as_str())
                && let Some(user) = user_of(&value)
            {
                record.set_user_id(Some(user));
                origin.user = Some(value);
                continue;
            }
            if (self.flash_keys.contains(&name) || extra_flash_keys.contains(&name))
                && let Some(items) = flash_items(&value)
            {
                let list = items.iter().map(|(_, json)| json.clone()).collect();
                record.set_flash_list(name.clone(), list);
                origin.flashes.insert(name, items);
                continue;
            }
            match convert::interface_json(&value).and_then(|json| raw(&json)) {
                Some(json) => {
                    let text = Box::from(json.get());
                    record.insert_value(name.clone(), json);
                    origin.values.insert(name, (value, text));
                }
                // JSON cannot hold it: kept as it is, out of Rust's sight.
                None => origin.hidden.push((key, value)),
            }
        }
        origin.last_active = Some(timestamp);
        Ok((record, origin))
    }

    /// The gob bytes of `record` as a gorilla `Values` map, keeping the Go types of the
    /// values it was read with (`origin`, from [`read_gob`](Self::read_gob); for a record
    /// that was never read, `GorillaOrigin::default()`), and the values it could not show.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialize`] for a user id with neither a [user key](Self::with_user_key)
    /// nor the meta entry, a key that holds both a value and flash messages, or a value or
    /// flash key that is the user or meta key; [`ErrorKind::NotGoType`] for a value that
    /// does not fit the type [declared](Self::with_go_type) for its key.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GorillaFormat, GorillaOrigin};
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let format = GorillaFormat::new().with_user_key("user_id");
    /// let now = UnixTime::from_secs(1_700_000_000);
    /// let mut record = Record::new(now);
    /// record.set_user_id(Some("42".to_owned()));
    /// record.insert_value("theme".to_owned(), serde_json::value::to_raw_value("dark").unwrap());
    /// // The bytes Go's gob.NewDecoder(r).Decode(&session.Values) reads.
    /// let gob = format.write_gob(&record, &GorillaOrigin::default())?;
    /// let (back, _) = format.read_gob(&gob, now)?;
    /// assert_eq!(back.user_id(), Some("42"));
    /// assert_eq!(back.value("theme").map(|v| v.get()), Some("\"dark\""));
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    pub fn write_gob(&self, record: &Record, origin: &GorillaOrigin) -> Result<Vec<u8>> {
        self.write(record, Some(origin), None)
    }

    /// [`write_gob`](Self::write_gob), with what the request changed: a clear drops the
    /// values Rust could not see with the rest, and so does a write or removal of their key.
    pub(crate) fn write(
        &self,
        record: &Record,
        origin: Option<&GorillaOrigin>,
        changes: Option<&ChangeSet>,
    ) -> Result<Vec<u8>> {
        let reserved = |key: &str| {
            self.meta_key.as_deref() == Some(key) || self.user_key.as_deref() == Some(key)
        };
        if record.values().any(|(k, _)| reserved(k)) || record.flashes().any(|(k, _)| reserved(k)) {
            return Err(Error::new(ErrorKind::Serialize));
        }
        let previous = |key: &str| origin.and_then(|o| o.values.get(key));
        let mut entries = Vec::with_capacity(record.values().len() + record.flashes().len() + 1);
        for (key, value) in record.values() {
            let declared = self.go_types.iter().find(|(k, _, _)| k == key);
            // The common case, a value as it was read, needs no parsing.
            if let Some((old, read)) = previous(key)
                && **read == *value.get()
            {
                entries.push((go_string(key), old.clone()));
                continue;
            }
            let json: Value = serde_json::from_str(value.get())
                .map_err(|e| Error::with_source(ErrorKind::Serialize, e))?;
            let old = previous(key).map(|(old, _)| old);
            let go = match declared {
                Some((_, name, ty)) => {
                    // The old value guides what sits in interfaces inside, if its type is the
                    // declared one.
                    let hint = match old {
                        Some(GoValue::Named {
                            ty: old_ty, value, ..
                        }) if old_ty == ty => Some(&**value),
                        _ => None,
                    };
                    let value = convert::fit(&json, ty, hint).ok_or_else(|| {
                        Error::with_source(
                            ErrorKind::NotGoType,
                            NotGoType {
                                key: key.to_owned(),
                                go_type: name.clone(),
                            },
                        )
                    })?;
                    GoValue::named(name.clone(), ty.clone(), value)
                }
                None => convert::decide(&json, old),
            };
            entries.push((go_string(key), go));
        }
        for (key, list) in record.flashes() {
            if record.value(key).is_some() {
                return Err(Error::new(ErrorKind::Serialize));
            }
            // Messages still there from the Go session keep their Go values.
            let mut unused: Vec<&(GoValue, Box<RawValue>)> = origin
                .and_then(|o| o.flashes.get(key))
                .map(|items| items.iter().collect())
                .unwrap_or_default();
            let mut items = Vec::with_capacity(list.len());
            for item in list {
                if let Some(i) = unused.iter().position(|(_, json)| json.get() == item.get()) {
                    items.push(unused.remove(i).0.clone());
                    continue;
                }
                let json: Value = serde_json::from_str(item.get())
                    .map_err(|e| Error::with_source(ErrorKind::Serialize, e))?;
                items.push(convert::natural(&json));
            }
            entries.push((
                go_string(key),
                GoValue::named(
                    "[]interface {}",
                    GoType::Slice(Box::new(GoType::Interface)),
                    GoValue::List(items),
                ),
            ));
        }
        let mut user_in_meta = None;
        match (record.user_id(), &self.user_key, &self.meta_key) {
            (None, _, _) => {}
            (Some(user), Some(key), _) => {
                // An id Go kept as a number (or declared one) stays that number type.
                let typed = origin
                    .and_then(|o| o.user.as_ref())
                    .and_then(|old| match old {
                        GoValue::Named { name, ty, .. } => Some((name, ty)),
                        _ => None,
                    })
                    .or_else(|| {
                        let declared = self.go_types.iter().find(|(k, _, _)| k == key);
                        declared.map(|(_, name, ty)| (name, ty))
                    });
                let number = user
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| user.parse::<u64>().map(Value::from));
                let id = match (typed, number) {
                    (Some((name, ty)), Ok(n)) => convert::fit(&n, ty, None)
                        .map(|v| GoValue::named(name.clone(), ty.clone(), v)),
                    _ => None,
                };
                let id = id.unwrap_or_else(|| go_string(user));
                entries.push((go_string(key), id));
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
                expires_at: record.expires_at().map(UnixTime::as_secs),
            };
            let text = serde_json::to_string(&meta)
                .map_err(|e| Error::with_source(ErrorKind::Serialize, e))?;
            entries.push((go_string(meta_key), go_string(&text)));
        }
        if let Some(origin) = origin
            && !changes.is_some_and(ChangeSet::values_cleared)
        {
            // What Rust could not see goes back as it was, unless a key of the same name
            // was written over or removed.
            let touched = |key: &str| changes.is_some_and(|c| c.values().any(|(k, _)| k == key));
            let taken = |key: &str| {
                record.value(key).is_some()
                    || record.flash_list(key).is_some()
                    || reserved(key)
                    || touched(key)
            };
            entries.extend(
                origin
                    .hidden
                    .iter()
                    .filter(|(k, _)| string_of(k).is_none_or(|k| !taken(k)))
                    .cloned(),
            );
        }
        gob::encode(&values_type(), &GoValue::Map(entries))
    }
}

/// Why a value was not written: it does not fit the Go type declared for its key.
#[derive(Debug)]
struct NotGoType {
    key: String,
    go_type: String,
}

impl std::fmt::Display for NotGoType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the value under {:?} does not fit Go type {}",
            self.key, self.go_type
        )
    }
}

impl std::error::Error for NotGoType {}

/// A gorilla session's `Values`: `map[interface{}]interface{}`.
fn values_type() -> GoType {
    GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface))
}

/// `s` in an interface, as Go's `string`.
fn go_string(s: &str) -> GoValue {
    GoValue::named("string", GoType::String, GoValue::String(s.to_owned()))
}

/// The text of a `string` in an interface.
fn string_of(value: &GoValue) -> Option<&str> {
    match value {
        GoValue::Named { ty, value, .. } if *ty == GoType::String => match &**value {
            GoValue::String(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// A user id: a string, or an integer of any Go integer type in decimal.
fn user_of(value: &GoValue) -> Option<String> {
    if let Some(user) = string_of(value) {
        return Some(user.to_owned());
    }
    match value {
        GoValue::Named { ty, value, .. } => match (ty, &**value) {
            (GoType::Int(_), GoValue::Int(i)) => Some(i.to_string()),
            (GoType::Uint(_), GoValue::Uint(u)) => Some(u.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The messages of a flash list (`[]interface{}`) with their JSON, if JSON holds them all.
fn flash_items(value: &GoValue) -> Option<Vec<(GoValue, Box<RawValue>)>> {
    let GoValue::Named { ty, value, .. } = value else {
        return None;
    };
    let (GoType::Slice(elem), GoValue::List(items)) = (ty, &**value) else {
        return None;
    };
    if **elem != GoType::Interface {
        return None;
    }
    items
        .iter()
        .map(|item| Some((item.clone(), raw(&convert::interface_json(item)?)?)))
        .collect()
}

fn raw(json: &Value) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(json).ok()
}

/// What reading a gorilla session gives beside its [`Record`] ([`GorillaFormat::read_gob`]):
/// the Go values as read, for writing them back with their types
/// ([`GorillaFormat::write_gob`]), and the file they came from. The gorilla stores keep it as
/// the session's [`Memo`](fastsession_core::store::Memo) from its load to its save.
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::{GorillaFormat, GorillaOrigin};
/// use fastsession::session::Record;
/// use fastsession::time::UnixTime;
///
/// // A session Rust creates has no Go values to keep: the empty origin.
/// let format = GorillaFormat::new();
/// let record = Record::new(UnixTime::from_secs(1_700_000_000));
/// let gob = format.write_gob(&record, &GorillaOrigin::default())?;
/// assert_eq!(format.read_gob(&gob, record.created())?.0, record);
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct GorillaOrigin {
    /// Each value as read, and its JSON text.
    values: BTreeMap<String, (GoValue, Box<str>)>,
    /// Each flash list's messages as read, and their JSON.
    flashes: BTreeMap<String, Vec<(GoValue, Box<RawValue>)>>,
    /// Entries Rust cannot see: keys that are not strings, values JSON cannot hold.
    hidden: Vec<(GoValue, GoValue)>,
    /// The value under the user key, as read.
    user: Option<GoValue>,
    file: Option<std::path::PathBuf>,
    /// When the session was last saved, as read (the record's own moves to the request's
    /// time before the save).
    last_active: Option<UnixTime>,
}

impl GorillaOrigin {
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

/// The Unix time of a gorilla timestamp (Go accepts negative ones; they are long expired).
pub(crate) fn unix_time(timestamp: i64) -> UnixTime {
    UnixTime::from_secs(u64::try_from(timestamp).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn named(name: &str, ty: GoType, v: GoValue) -> GoValue {
        GoValue::named(name, ty, v)
    }

    fn s(text: &str) -> GoValue {
        GoValue::String(text.to_owned())
    }

    fn slice(elem: GoType) -> GoType {
        GoType::Slice(Box::new(elem))
    }

    fn encode(entries: Vec<(GoValue, GoValue)>) -> Vec<u8> {
        gob::encode(&values_type(), &GoValue::Map(entries)).unwrap()
    }

    fn entries(bytes: &[u8]) -> Vec<(GoValue, GoValue)> {
        let (_, GoValue::Map(entries)) = gob::decode(bytes).unwrap() else {
            panic!("a map")
        };
        entries
    }

    const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

    fn person() -> GoType {
        GoType::Struct(Arc::new(gob::StructType::new(
            "Person",
            vec![
                ("Name".into(), GoType::String),
                ("Age".into(), GoType::Int(64)),
                ("Tags".into(), slice(GoType::String)),
            ],
        )))
    }

    #[test]
    fn unchanged_values_keep_their_go_types() {
        let expected = vec![
            (
                go_string("small"),
                named("int8", GoType::Int(8), GoValue::Int(7)),
            ),
            (
                go_string("token"),
                named("[]uint8", GoType::Bytes, GoValue::Bytes(vec![0, 1, 255])),
            ),
            (
                go_string("ratio"),
                named("float32", GoType::Float(32), GoValue::Float(0.5)),
            ),
            (
                go_string("tags"),
                named(
                    "[]string",
                    slice(GoType::String),
                    GoValue::List(vec![s("a")]),
                ),
            ),
            (
                go_string("who"),
                named(
                    "main.Person",
                    person(),
                    GoValue::Struct(vec![("Name".into(), s("Ada"))]),
                ),
            ),
            (
                named("int", GoType::Int(64), GoValue::Int(42)),
                go_string("int key"),
            ),
        ];
        let format = GorillaFormat::new().without_meta();
        let (record, origin) = format.read_gob(&encode(expected.clone()), NOW).unwrap();
        assert_eq!(record.value("token").unwrap().get(), "\"AAH/\"");
        assert_eq!(
            record.value("who").unwrap().get(),
            "{\"Age\":0,\"Name\":\"Ada\",\"Tags\":null}",
            "every field, as Go's JSON"
        );
        assert_eq!(record.values().len(), 5, "the int key is not a Rust key");
        let back = entries(&format.write_gob(&record, &origin).unwrap());
        for entry in &expected {
            assert!(back.contains(entry), "{entry:?} kept");
        }
        assert_eq!(back.len(), expected.len());
    }

    #[test]
    fn changed_values_keep_their_type_where_they_fit() {
        let format = GorillaFormat::new().without_meta();
        let bytes = encode(vec![
            (
                go_string("n"),
                named("int16", GoType::Int(16), GoValue::Int(1)),
            ),
            (
                go_string("ids"),
                named(
                    "[]int64",
                    slice(GoType::Int(64)),
                    GoValue::List(vec![GoValue::Int(1)]),
                ),
            ),
            (
                go_string("who"),
                named(
                    "main.Person",
                    person(),
                    GoValue::Struct(vec![("Name".into(), s("Ada"))]),
                ),
            ),
        ]);
        let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
        let set = |record: &mut Record, key: &str, json: &str| {
            record.insert_value(key.into(), RawValue::from_string(json.into()).unwrap());
        };
        set(&mut record, "n", "300");
        set(&mut record, "ids", "[1,2]");
        set(&mut record, "who", r#"{"Name":"Bo","Tags":["x"]}"#);
        let back = entries(&format.write_gob(&record, &origin).unwrap());
        assert!(back.contains(&(
            go_string("n"),
            named("int16", GoType::Int(16), GoValue::Int(300))
        )));
        assert!(back.contains(&(
            go_string("ids"),
            named(
                "[]int64",
                slice(GoType::Int(64)),
                GoValue::List(vec![GoValue::Int(1), GoValue::Int(2)])
            )
        )));
        assert!(back.contains(&(
            go_string("who"),
            named(
                "main.Person",
                person(),
                GoValue::Struct(vec![
                    ("Name".into(), s("Bo")),
                    ("Tags".into(), GoValue::List(vec![s("x")]))
                ])
            )
        )));
        // What no longer fits takes the natural type.
        set(&mut record, "n", "70000");
        set(&mut record, "who", r#"{"Name":"Bo","Nickname":"b"}"#);
        let back = entries(&format.write_gob(&record, &origin).unwrap());
        assert!(back.contains(&(
            go_string("n"),
            named("int", GoType::Int(64), GoValue::Int(70_000))
        )));
        assert!(back.iter().any(|(k, v)| *k == go_string("who")
            && matches!(v, GoValue::Named { name, .. } if name == "map[string]interface {}")));
    }

    #[test]
    fn declared_go_types_hold_or_fail_the_save() {
        let format = GorillaFormat::new()
            .without_meta()
            .with_go_type("visits", "int64")
            .unwrap()
            .with_go_type("tags", "[]string")
            .unwrap();
        let mut record = Record::new(NOW);
        record.insert_value("visits".into(), RawValue::from_string("3".into()).unwrap());
        record.insert_value(
            "tags".into(),
            RawValue::from_string(r#"["a"]"#.into()).unwrap(),
        );
        let back = entries(
            &format
                .write_gob(&record, &GorillaOrigin::default())
                .unwrap(),
        );
        assert!(back.contains(&(
            go_string("visits"),
            named("int64", GoType::Int(64), GoValue::Int(3))
        )));
        assert!(back.contains(&(
            go_string("tags"),
            named(
                "[]string",
                slice(GoType::String),
                GoValue::List(vec![s("a")])
            )
        )));
        record.insert_value(
            "visits".into(),
            RawValue::from_string("1.5".into()).unwrap(),
        );
        let error = format
            .write_gob(&record, &GorillaOrigin::default())
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotGoType);
        let why = std::error::Error::source(&error).unwrap().to_string();
        assert!(why.contains("\"visits\"") && why.contains("int64"), "{why}");
        assert_eq!(
            GorillaFormat::new()
                .with_go_type("x", "chan int")
                .unwrap_err()
                .kind(),
            ErrorKind::UnknownGoType
        );
    }

    #[test]
    fn untaken_flashes_keep_their_go_types() {
        let person_value = named(
            "main.Person",
            person(),
            GoValue::Struct(vec![("Name".into(), s("Ada"))]),
        );
        let object = named(
            "map[string]interface {}",
            GoType::Map(Box::new(GoType::String), Box::new(GoType::Interface)),
            GoValue::Map(vec![(s("k"), go_string("v"))]),
        );
        let bytes = encode(vec![(
            go_string("_flash"),
            named(
                "[]interface {}",
                slice(GoType::Interface),
                GoValue::List(vec![person_value.clone(), object.clone()]),
            ),
        )]);
        let format = GorillaFormat::new().without_meta();
        let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
        let mut list = record.flash_list("_flash").unwrap().to_vec();
        list.push(RawValue::from_string("\"new\"".into()).unwrap());
        record.set_flash_list("_flash".into(), list);
        let back = entries(&format.write_gob(&record, &origin).unwrap());
        assert_eq!(
            back,
            vec![(
                go_string("_flash"),
                named(
                    "[]interface {}",
                    slice(GoType::Interface),
                    GoValue::List(vec![person_value, object, go_string("new")]),
                )
            )]
        );
    }

    #[test]
    fn values_json_cannot_hold_lose_only_themselves() {
        let nan = (
            go_string("nan"),
            named("float64", GoType::Float(64), GoValue::Float(f64::NAN)),
        );
        let complex = (
            go_string("c"),
            named("complex128", GoType::Complex, GoValue::Complex(1.0, 2.0)),
        );
        let bytes = encode(vec![
            nan.clone(),
            complex.clone(),
            (go_string("ok"), go_string("fine")),
        ]);
        let format = GorillaFormat::new().without_meta();
        let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
        assert_eq!(record.values().map(|(k, _)| k).collect::<Vec<_>>(), ["ok"]);
        // Written back as they were (NaN compared by its bits).
        let back = gob::encode(
            &values_type(),
            &GoValue::Map(entries(&format.write_gob(&record, &origin).unwrap())),
        )
        .unwrap();
        assert_eq!(
            back,
            encode(vec![
                (go_string("ok"), go_string("fine")),
                nan,
                complex.clone()
            ])
        );
        // A value written under the same key replaces it; clearing drops them all.
        record.insert_value("c".into(), RawValue::from_string("1".into()).unwrap());
        let back = entries(&format.write_gob(&record, &origin).unwrap());
        assert!(back.contains(&(
            go_string("c"),
            named("int", GoType::Int(64), GoValue::Int(1))
        )));
        assert!(!back.contains(&complex));
        let request = fastsession_core::Session::new_detached();
        request.insert("any", 1).unwrap();
        request.clear();
        assert_eq!(
            entries(
                &format
                    .write(&record, Some(&origin), Some(&request.changes()))
                    .unwrap()
            )
            .len(),
            2,
            "cleared: the meta-less map holds the two visible values"
        );
        // Set and then removed in one request: gone, not back to the Go value.
        let request = fastsession_core::Session::new_detached();
        request.insert("nan", 1).unwrap();
        request.remove("nan");
        let back = entries(
            &format
                .write(&record, Some(&origin), Some(&request.changes()))
                .unwrap(),
        );
        assert!(!back.iter().any(|(k, _)| *k == go_string("nan")));
    }

    #[test]
    fn flashes_and_the_user_map_to_their_places() {
        let values = vec![
            (
                go_string("_flash"),
                named(
                    "[]interface {}",
                    slice(GoType::Interface),
                    GoValue::List(vec![go_string("hi")]),
                ),
            ),
            (go_string("uid"), go_string("ada")),
        ];
        let format = GorillaFormat::new().with_user_key("uid").without_meta();
        let (record, origin) = format.read_gob(&encode(values.clone()), NOW).unwrap();
        assert_eq!(record.flash_list("_flash").unwrap()[0].get(), "\"hi\"");
        assert_eq!(record.user_id(), Some("ada"));
        assert_eq!(record.values().len(), 0);
        assert_eq!(format.write_gob(&record, &origin).unwrap(), encode(values));

        let mut orphan = Record::new(NOW);
        orphan.set_user_id(Some("ada".into()));
        assert_eq!(
            GorillaFormat::new()
                .without_meta()
                .write_gob(&orphan, &GorillaOrigin::default())
                .unwrap_err()
                .kind(),
            ErrorKind::Serialize
        );
        // With the meta entry (the default) it rides there.
        let bytes = GorillaFormat::new()
            .write_gob(&orphan, &GorillaOrigin::default())
            .unwrap();
        assert_eq!(
            GorillaFormat::new()
                .read_gob(&bytes, NOW)
                .unwrap()
                .0
                .user_id(),
            Some("ada")
        );
    }

    /// Go 1.19: gob of `map[interface{}]interface{}` holding `time.Time` values (UTC with
    /// nanoseconds, a +01:30 zone, a -05:00 zone) and a registered struct `Stamp { At
    /// time.Time; Name string }`, once with a zero time (which gob leaves out).
    const GO_TIMES: &str = "0eff81040102ff82000110011000002cff82000506737472696e670c0500037574630974696d652e54696d65ff830501010454696d6501ff84000000ffadff8411000f010000000edd7277c507270e00ffff06737472696e670c07000566697865640974696d652e54696d65ff8411000f010000000edd7262ad00000000005a06737472696e670c0500036e65670974696d652e54696d65ff8411000f010000000eafff80cf3b9ac9fffed406737472696e670c0700057374616d700a6d61696e2e5374616d70ff85030101055374616d7001ff860001020102417401ff840001044e616d65010c00000039ff8615010f010000000ed59dd80000000001ffff0101780006737472696e670c0600047a65726f0a6d61696e2e5374616d70ff860402017a00";

    #[test]
    fn times_read_as_go_s_json_and_keep_their_type() {
        let bytes: Vec<u8> = (0..GO_TIMES.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&GO_TIMES[i..i + 2], 16).unwrap())
            .collect();
        let format = GorillaFormat::new().without_meta();
        let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
        // What Go's json.Marshal printed for each.
        for (key, json) in [
            ("utc", r#""2024-02-29T13:04:05.12Z""#),
            ("fixed", r#""2024-02-29T13:04:05+01:30""#),
            ("neg", r#""1999-12-31T23:59:59.999999999-05:00""#),
            (
                "stamp",
                r#"{"At":"2020-01-01T00:00:00.000000001Z","Name":"x"}"#,
            ),
            ("zero", r#"{"At":"0001-01-01T00:00:00Z","Name":"z"}"#),
        ] {
            assert_eq!(record.value(key).unwrap().get(), json, "{key}");
        }
        let unchanged = entries(&format.write_gob(&record, &origin).unwrap());
        for entry in entries(&bytes) {
            assert!(unchanged.contains(&entry), "{entry:?} kept");
        }
        record.insert_value(
            "utc".into(),
            RawValue::from_string(r#""2025-01-01T00:00:00Z""#.into()).unwrap(),
        );
        record.insert_value(
            "stamp".into(),
            RawValue::from_string(r#"{"At":"2021-06-01T10:00:00+02:00","Name":"y"}"#.into())
                .unwrap(),
        );
        let back = entries(&format.write_gob(&record, &origin).unwrap());
        let (_, utc) = back.iter().find(|(k, _)| *k == go_string("utc")).unwrap();
        assert!(matches!(utc, GoValue::Named { name, .. } if name == "time.Time"));
        let (_, stamp) = back.iter().find(|(k, _)| *k == go_string("stamp")).unwrap();
        assert!(matches!(stamp, GoValue::Named { name, .. } if name == "main.Stamp"));
        assert_eq!(
            convert::interface_json(utc).unwrap(),
            Value::String("2025-01-01T00:00:00Z".into())
        );
    }

    /// Go 1.19's gob of this `map[interface{}]interface{}` (also a fuzz seed), with
    /// `type Profile struct { Tags []string; Score map[string]int; Extra interface{}; Ratio
    /// float64 }` registered: `"tags": []string{"a", "b"}`, `"ids": []int64{1, -2}`,
    /// `"small": []int8{-128, 127}`, `"f32": []float32{0.1, -3.4e38}`, `"pair": [2]string{"x",
    /// "y"}`, `"obj": map[string]interface{}{"n": int16(3), "l": []interface{}{uint8(7), "s"}}`,
    /// `"byint": map[int]string{7: "seven"}`, `"who": Profile{Tags: []string{"t"}, Score:
    /// map[string]int{"a": 1}, Extra: complex(1, 2), Ratio: math.NaN()}`, `"bad": "\xff\xfe"`,
    /// `"inf": math.Inf(1)`, `42: "int key"`, `"_flash": []interface{}{"hi",
    /// map[string]interface{}{"k": "v"}}`.
    const GO_TYPED: &[u8] = include_bytes!("../tests/data/go-typed-session.gob");

    #[test]
    fn a_typed_go_session_reads_and_goes_back_as_go_wrote_it() {
        let format = GorillaFormat::new().without_meta();
        let (record, origin) = format.read_gob(GO_TYPED, NOW).unwrap();
        let mut keys: Vec<&str> = record.values().map(|(k, _)| k).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["byint", "f32", "ids", "obj", "pair", "small", "tags"]
        );
        assert_eq!(record.value("f32").unwrap().get(), "[0.1,-3.4e+38]");
        assert_eq!(record.value("byint").unwrap().get(), r#"{"7":"seven"}"#);
        assert_eq!(record.flash_list("_flash").unwrap().len(), 2);
        // Unchanged, every entry goes back as it came (compared as bytes: NaN is in there).
        let bytes_of = |entry: &(GoValue, GoValue)| {
            gob::encode(&values_type(), &GoValue::Map(vec![entry.clone()])).unwrap()
        };
        let mut went: Vec<Vec<u8>> = entries(&format.write_gob(&record, &origin).unwrap())
            .iter()
            .map(bytes_of)
            .collect();
        let mut came: Vec<Vec<u8>> = entries(GO_TYPED).iter().map(bytes_of).collect();
        went.sort();
        came.sort();
        assert_eq!(went, came);
    }

    #[test]
    fn a_struct_type_with_two_fields_of_one_name_is_refused() {
        // Found by the fuzzer: `Profile` with two fields named `Extra` (Go never writes
        // that); matching values to fields by name would move one value to the other field.
        let found = include_bytes!("../tests/data/struct-with-two-fields-of-one-name");
        assert_eq!(
            GorillaFormat::new()
                .read_gob(found, NOW)
                .unwrap_err()
                .kind(),
            ErrorKind::Deserialize
        );
    }

    #[test]
    fn a_numeric_user_id_keeps_its_go_type() {
        let format = GorillaFormat::new().with_user_key("uid").without_meta();
        let bytes = encode(vec![(
            go_string("uid"),
            named("int64", GoType::Int(64), GoValue::Int(42)),
        )]);
        let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
        assert_eq!(record.user_id(), Some("42"));
        assert_eq!(format.write_gob(&record, &origin).unwrap(), bytes);
        record.set_user_id(Some("43".into()));
        assert_eq!(
            entries(&format.write_gob(&record, &origin).unwrap()),
            vec![(
                go_string("uid"),
                named("int64", GoType::Int(64), GoValue::Int(43))
            )]
        );
        record.set_user_id(Some("ada".into()));
        assert_eq!(
            entries(&format.write_gob(&record, &origin).unwrap()),
            vec![(go_string("uid"), go_string("ada"))]
        );
        // A new session's id in the declared type.
        let declared = format.with_go_type("uid", "uint32").unwrap();
        let mut fresh = Record::new(NOW);
        fresh.set_user_id(Some("7".into()));
        assert_eq!(
            entries(
                &declared
                    .write_gob(&fresh, &GorillaOrigin::default())
                    .unwrap()
            ),
            vec![(
                go_string("uid"),
                named("uint32", GoType::Uint(32), GoValue::Uint(7))
            )]
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
        record.set_expires_at(Some(UnixTime::from_secs(1_900_000_000)));
        let bytes = format
            .write_gob(&record, &GorillaOrigin::default())
            .unwrap();
        let (back, _) = format.read_gob(&bytes, NOW).unwrap();
        assert_eq!(
            back, record,
            "creation time, remember-me, flash key, own deadline"
        );
        // A meta entry written before sessions had their own deadline: none.
        let old = Meta {
            created: 1_600_000_000,
            persistent: true,
            ..Meta::default()
        };
        let old = serde_json::to_string(&old).unwrap();
        assert_eq!(old, r#"{"c":1600000000,"p":true}"#, "as it always was");
        let old = gob::encode(
            &GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface)),
            &GoValue::Map(vec![(go_string(DEFAULT_META_KEY), go_string(&old))]),
        )
        .unwrap();
        let (back, _) = format.read_gob(&old, NOW).unwrap();
        assert_eq!(back.expires_at(), None);
        assert!(back.is_persistent());
        record.set_expires_at(None);
        // A creation time after the save that carries it is not believed.
        record.set_created(UnixTime::from_secs(1_800_000_000));
        let bytes = format
            .write_gob(&record, &GorillaOrigin::default())
            .unwrap();
        assert_eq!(format.read_gob(&bytes, NOW).unwrap().0.created(), NOW);
        // A value under the meta key is refused rather than shadowed.
        let mut clash = Record::new(NOW);
        clash.insert_value(
            DEFAULT_META_KEY.into(),
            RawValue::from_string("1".into()).unwrap(),
        );
        assert_eq!(
            format
                .write_gob(&clash, &GorillaOrigin::default())
                .unwrap_err()
                .kind(),
            ErrorKind::Serialize
        );
    }

    #[test]
    fn what_is_not_a_session_is_refused() {
        let format = GorillaFormat::new();
        let not_a_map = gob::encode(&GoType::String, &s("x")).unwrap();
        assert_eq!(
            format.read_gob(&not_a_map, NOW).unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        assert!(format.read_gob(b"\x03\x04", NOW).is_err());
    }
}
