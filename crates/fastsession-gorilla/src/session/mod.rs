//! gorilla/sessions' `Values` map and fastsession's [`Record`], both ways (see
//! [`GorillaFormat`]).

mod write;

use std::collections::BTreeMap;

use fastsession_core::session::{DEFAULT_FLASH_KEY, Record, SessionId};
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

    /// Returns whether sessions Go created count as "remember me" (the cookie's lifetime is not in
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

    /// Returns the keys read as flash messages.
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

    /// Returns the key of the user id, if any.
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
}

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
    /// Returns `true` if the session holds entries a record cannot show.
    pub(crate) fn has_hidden_values(&self) -> bool {
        !self.hidden.is_empty()
    }

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
mod tests;
