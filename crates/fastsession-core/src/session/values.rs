//! The session handle's values: typed reads and writes, each recorded in the change set.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::{Change, Session, State, from_raw, to_raw};
use crate::error::{Error, ErrorKind, Result};

impl Session {
    /// Returns the value under `key` as a `T`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if the stored value is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("visits", 3)?;
    /// assert_eq!(session.get::<u32>("visits")?, Some(3));
    /// assert_eq!(session.get::<u32>("missing")?, None);
    /// // Stored as a number: not a string.
    /// assert!(session.get::<String>("visits").is_err());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let state = self.lock();
        state.record.value(key).map(from_raw).transpose()
    }

    /// Stores `value` under `key`, replacing any value there. Storing the value the key
    /// already holds (the same JSON) is no change: nothing is saved for it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialize`] if `value` cannot be represented as JSON (a map with
    /// non-string keys, for example); the session is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct Cart { items: Vec<String> }
    ///
    /// session.insert("cart", Cart { items: vec!["tea".into()] })?;
    /// assert_eq!(session.get::<Cart>("cart")?.map(|c| c.items.len()), Some(1));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn insert(&self, key: impl Into<String>, value: impl Serialize) -> Result<()> {
        let raw = to_raw(&value)?;
        let key = key.into();
        set_value(&mut self.lock(), key, raw);
        Ok(())
    }

    /// Replaces the value under `key` with `f` of it, if there is one, and returns the new
    /// value; `None` (and no change) if there is none. Other handles of this request's session
    /// wait while `f` runs, so two updates in one request never lose each other; across
    /// concurrent requests a server-side store keeps the last save of the value. An `f` that
    /// returns the value unchanged changes nothing: nothing is saved for it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if the stored value is not a `T`, [`ErrorKind::Serialize`]
    /// if the new one cannot be JSON; the session is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// assert_eq!(session.update("visits", |n: u32| n + 1)?, None);
    /// session.insert("visits", 1)?;
    /// assert_eq!(session.update("visits", |n: u32| n + 1)?, Some(2));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn update<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        f: impl FnOnce(T) -> T,
    ) -> Result<Option<T>> {
        let mut state = self.lock();
        let Some(raw) = state.record.value(key) else {
            return Ok(None);
        };
        let value = f(from_raw(raw)?);
        set_value(&mut state, key, to_raw(&value)?);
        Ok(Some(value))
    }

    /// Replaces the value under `key` with `f` of it, or stores `default` if there is none;
    /// returns what is stored now. See [`update`](Self::update).
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // A page counter: 1 on the first visit, then one more each time.
    /// assert_eq!(session.update_or("visits", 1, |n: u32| n + 1)?, 1);
    /// assert_eq!(session.update_or("visits", 1, |n: u32| n + 1)?, 2);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn update_or<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        default: T,
        f: impl FnOnce(T) -> T,
    ) -> Result<T> {
        let mut state = self.lock();
        let value = match state.record.value(key) {
            Some(raw) => f(from_raw(raw)?),
            None => default,
        };
        set_value(&mut state, key, to_raw(&value)?);
        Ok(value)
    }

    /// Adds `delta` to the integer under `key` (a missing key counts as 0) and returns the
    /// value this request now sees: an atomic counter, merged by the store.
    ///
    /// A server-side store (memory, files, Redis, PostgreSQL) adds this request's increments
    /// to the value it holds when it saves, atomically, instead of writing the request's
    /// whole value: concurrent requests that increment one key all count (8 requests adding
    /// 25 times each leave 200 more). The value returned is the one this request loaded plus
    /// its own increments; increments saved meanwhile by other requests show on the next
    /// load. The `CookieStore` cannot merge (the browser keeps the last cookie): there an
    /// increment is a plain set of the value returned.
    ///
    /// The arithmetic is checked, never saturating or wrapping. In one request the last
    /// operation on a key wins: an [`insert`](Self::insert) or [`update`](Self::update)
    /// after an increment makes it a plain set, a [`remove`](Self::remove) a removal, and an
    /// increment after one of those (or after an update of the same key) adds to the value
    /// the request sees and is saved as a plain set. After [`clear`](Self::clear) an
    /// increment counts from 0 and the value it gives replaces whatever is stored; increments
    /// before the clear are dropped with it. [`regenerate`](Self::regenerate) keeps the
    /// merge (the new id gets the stored value plus the increments); after
    /// [`destroy`](Self::destroy) nothing is saved. When the store merges, the increment is
    /// dropped if the stored value is no longer an `i64` (another request stored something
    /// else under the key: its whole value stays) or if the sum would overflow; a key another
    /// request removed counts from 0 again. A save that fails with a store error may or may
    /// not have added the increments, as for any write.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if the value under `key` is not an `i64` (text, a float, a
    /// number beyond `i64`), [`ErrorKind::Serialize`] if the sum overflows `i64`; the session
    /// is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{ErrorKind, Session};
    ///
    /// let session = Session::new_detached();
    /// assert_eq!(session.increment("visits", 1)?, 1);
    /// assert_eq!(session.increment("visits", 1)?, 2);
    /// assert_eq!(session.increment("visits", -5)?, -3);
    /// assert_eq!(session.get::<i64>("visits")?, Some(-3));
    ///
    /// session.insert("name", "ada")?;
    /// assert_eq!(session.increment("name", 1).unwrap_err().kind(), ErrorKind::Deserialize);
    /// session.insert("max", i64::MAX)?;
    /// assert_eq!(session.increment("max", 1).unwrap_err().kind(), ErrorKind::Serialize);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let mut state = self.lock();
        let current = match state.record.value(key) {
            Some(raw) => from_raw::<i64>(raw)?,
            None => 0,
        };
        if delta == 0 && state.record.value(key).is_some() {
            return Ok(current);
        }
        let value = current.checked_add(delta).ok_or_else(|| {
            Error::new(
                ErrorKind::Serialize,
                "the incremented value is out of the range of i64",
            )
        })?;
        let raw = to_raw(&value)?;
        state.record.insert_value(key.to_owned(), raw);
        let changes = &mut state.changes;
        match changes.values.get(key) {
            None => {
                changes.values.insert(key.to_owned(), Change::Set);
                changes.deltas.insert(key.to_owned(), delta);
            }
            // Only incremented so far: one more delta (a plain set if the sum overflows).
            Some(Change::Set) => {
                if let Some(sum) = changes.deltas.get_mut(key) {
                    match sum.checked_add(delta) {
                        Some(total) => *sum = total,
                        None => {
                            changes.deltas.remove(key);
                        }
                    }
                }
            }
            // Removed earlier in this request: a plain set of what it sees.
            Some(Change::Removed) => {
                changes.values.insert(key.to_owned(), Change::Set);
            }
        }
        Ok(value)
    }

    /// Removes the value under `key`; `true` if there was one.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("token", "abc")?;
    /// assert!(session.remove("token"));
    /// assert!(!session.remove("token"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[allow(
        clippy::must_use_candidate,
        reason = "callers mostly remove for the effect"
    )]
    pub fn remove(&self, key: &str) -> bool {
        let mut state = self.lock();
        let existed = state.record.remove_value(key).is_some();
        if existed {
            state.changes.values.insert(key.to_owned(), Change::Removed);
            state.changes.deltas.remove(key);
        }
        existed
    }

    /// Returns `true` if there is a value under `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("user", "ada")?;
    /// assert!(session.contains("user"));
    /// assert!(!session.contains("cart"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.lock().record.value(key).is_some()
    }

    /// Removes every value (flashes stay), also those a store keeps out of sight (values of
    /// another format that sessions cannot show, say: the save drops them). A session with
    /// no value, in sight or out of it, is left as it is, and nothing is saved.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("a", 1)?;
    /// session.add_flash("kept")?;
    /// session.clear();
    /// assert!(session.is_empty());
    /// assert_eq!(session.take_flashes::<String>()?, ["kept"]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn clear(&self) {
        let mut state = self.lock();
        // Values out of sight (another format's) are the store's to drop.
        if !state.record.value_map().is_empty() || state.hidden_values {
            state.hidden_values = false;
            state.record.clear_values();
            state.changes.values.clear();
            state.changes.deltas.clear();
            state.changes.values_cleared = true;
        }
    }

    /// Returns the number of values.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("a", 1)?;
    /// session.insert("b", 2)?;
    /// assert_eq!(session.len(), 2);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().record.values().len()
    }

    /// Returns `true` if there are no values.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// assert!(session.is_empty());
    /// session.insert("a", 1)?;
    /// assert!(!session.is_empty());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().record.value_map().is_empty()
    }

    /// Returns the keys of all values, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("b", 2)?;
    /// session.insert("a", 1)?;
    /// assert_eq!(session.keys(), ["a", "b"]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.lock().record.value_map().keys().cloned().collect()
    }

    /// Returns every value, by key in order, each as its JSON text: a copy of what the session
    /// holds now (flash messages are not values and are left out).
    ///
    /// The values are copied as the text they are kept in, not parsed: this cannot fail, and
    /// costs one copy of the data. Read one with `serde_json::from_str(raw.get())`, or
    /// serialize the whole map, which gives a JSON object.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("name", "ada")?;
    /// session.insert("visits", 3)?;
    /// session.add_flash("not a value")?;
    /// let entries = session.entries();
    /// assert_eq!(entries["visits"].get(), "3");
    /// assert_eq!(serde_json::to_string(&entries)?, r#"{"name":"ada","visits":3}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn entries(&self) -> BTreeMap<String, Box<RawValue>> {
        let state = self.lock();
        let values = state.record.value_map().iter();
        values.map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Sets `key` to `raw` as a plain set, unless it already holds that value: nothing to save
/// then. The key is copied only where a map has none yet (rewriting a key is the common case).
fn set_value<K: AsRef<str> + Into<String>>(state: &mut State, key: K, raw: Box<RawValue>) {
    // Compared before asking to write: the values may be shared with the store's copy.
    let held = state.record.value_map().get(key.as_ref());
    if held.is_some_and(|held| held.get() == raw.get()) {
        return;
    }
    super::record::put(state.record.values_mut(), key.as_ref(), raw);
    match state.changes.values.get_mut(key.as_ref()) {
        Some(change) => *change = Change::Set,
        None => {
            // No change yet, so no increment either.
            state.changes.values.insert(key.into(), Change::Set);
            return;
        }
    }
    // Written over after an increment: a plain set now.
    state.changes.deltas.remove(key.as_ref());
}
