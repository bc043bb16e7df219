//! A record back to a gorilla `Values` map, with the Go types it was read with.

use fastsession_core::session::{ChangeSet, Record};
use fastsession_core::time::UnixTime;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{GorillaFormat, GorillaOrigin, Meta, go_string, string_of, values_type};
use crate::convert;
use crate::error::{Error, ErrorKind, Result};
use crate::gob::{self, GoType, GoValue};

impl GorillaFormat {
    /// Returns the gob bytes of `record` as a gorilla `Values` map, keeping the Go types of the
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
