//! The session model: typed values, flashes, expiry, and the change set a save carries.
//!
//! A [`Session`] is a cheap, cloneable handle; clones see the same session, so the handle can
//! be passed around a handler freely (it is `Send + Sync`). Values are kept as JSON, so any
//! `serde` type can be stored and read back as the same or a compatible type.

mod changes;
mod expiry;
mod id;
mod record;
mod reject;
mod status;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

pub use changes::{Change, ChangeSet};
pub use expiry::{DEFAULT_ANONYMOUS_IDLE_TIMEOUT, DEFAULT_REMEMBERED_IDLE_TIMEOUT, Expiry};
pub use id::{ID_TEXT_LEN, SessionId};
pub use record::{Record, RecordError};
pub use reject::RejectReason;
pub use status::SessionStatus;

use crate::error::{Error, ErrorKind, Result};
use crate::time::UnixTime;

/// The flash key used when none is named (the same as gorilla/sessions').
pub const DEFAULT_FLASH_KEY: &str = "_flash";

/// What will happen to the session when the request's sessions are saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Save if modified, refresh if due.
    Keep,
    /// Move the data to a new id and end the old one.
    Regenerate,
    /// End the session and clear its cookie.
    Destroy,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) record: Record,
    pub(crate) changes: ChangeSet,
    pub(crate) is_new: bool,
    pub(crate) action: Action,
    /// The store asked for the session to be written again (sealed by a retired key).
    pub(crate) reseal: bool,
}

/// One session of one request.
///
/// # Examples
///
/// ```
/// use fastsession::Session;
///
/// let session = Session::new_detached();
/// session.insert("user", "gopher")?;
/// session.insert("visits", 3)?;
/// assert_eq!(session.get::<String>("user")?.as_deref(), Some("gopher"));
/// assert_eq!(session.get::<u32>("visits")?, Some(3));
/// assert!(session.get::<u32>("user").is_err()); // wrong type
///
/// session.add_flash("Saved.")?;
/// assert_eq!(session.take_flashes::<String>()?, ["Saved."]);
/// assert!(session.take_flashes::<String>()?.is_empty()); // read once
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<State>>,
}

impl Session {
    /// A fresh, empty session outside any request, for tests and examples.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// assert!(session.is_new() && session.is_empty());
    /// ```
    #[must_use]
    pub fn new_detached() -> Self {
        Session::from_state(State::fresh(UnixTime::now()))
    }

    pub(crate) fn from_state(state: State) -> Self {
        Session {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value under `key` as a `T`, or `None` if there is none.
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

    /// Stores `value` under `key`, replacing any value there.
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
        let mut state = self.lock();
        // Rewriting a key is the common case: the maps keep their own copies of it.
        let values = state.record.values_mut();
        match values.get_mut(&key) {
            Some(slot) => *slot = raw,
            None => {
                values.insert(key.clone(), raw);
            }
        }
        match state.changes.values.get_mut(&key) {
            Some(change) => *change = Change::Set,
            None => {
                state.changes.values.insert(key, Change::Set);
                return Ok(());
            }
        }
        // Written over after an increment: a plain set now.
        state.changes.deltas.remove(&key);
        Ok(())
    }

    /// Replaces the value under `key` with `f` of it, if there is one, and returns the new
    /// value; `None` (and no change) if there is none. Other handles of this request's session
    /// wait while `f` runs, so two updates in one request never lose each other; across
    /// concurrent requests a server-side store keeps the last save of the value.
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
        let raw = to_raw(&value)?;
        state.record.insert_value(key.to_owned(), raw);
        state.changes.values.insert(key.to_owned(), Change::Set);
        state.changes.deltas.remove(key);
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
        let raw = to_raw(&value)?;
        state.record.insert_value(key.to_owned(), raw);
        state.changes.values.insert(key.to_owned(), Change::Set);
        state.changes.deltas.remove(key);
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

    /// `true` if there is a value under `key`.
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
    /// another format that sessions cannot show, say): on a session that was loaded it is a
    /// change even if no value is visible, and the save drops whatever the store holds.
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
        // A loaded session may hold values this request cannot see: the store's to drop.
        if !state.record.value_map().is_empty() || !state.is_new {
            state.record.values_mut().clear();
            state.changes.values.clear();
            state.changes.deltas.clear();
            state.changes.values_cleared = true;
        }
    }

    /// The number of values.
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

    /// `true` if there are no values.
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

    /// The keys of all values, in order.
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

    /// Every value, by key in order, each as its JSON text: a copy of what the session holds
    /// now (flash messages are not values and are left out).
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
        self.lock().record.value_map().clone()
    }

    /// Adds a flash message under the default key, [`DEFAULT_FLASH_KEY`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialize`] if `value` cannot be represented as JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // Before a redirect:
    /// session.add_flash("Profile saved.")?;
    /// // On the page after it:
    /// assert_eq!(session.take_flashes::<String>()?, ["Profile saved."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn add_flash(&self, value: impl Serialize) -> Result<()> {
        self.add_flash_under(DEFAULT_FLASH_KEY, value)
    }

    /// Adds a flash message under `key`, after any already there.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialize`] if `value` cannot be represented as JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash_under("errors", "Name is required.")?;
    /// assert!(session.take_flashes::<String>()?.is_empty());
    /// assert_eq!(session.take_flashes_under::<String>("errors")?, ["Name is required."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn add_flash_under(&self, key: &str, value: impl Serialize) -> Result<()> {
        let raw = to_raw(&value)?;
        let mut state = self.lock();
        state
            .record
            .flashes_mut()
            .entry(key.to_owned())
            .or_default()
            .push(raw);
        state.changes.flashes.insert(key.to_owned(), Change::Set);
        Ok(())
    }

    /// Reads and removes the flash messages under the default key, oldest first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if a message is not a `T`; the messages then stay.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash("one")?;
    /// session.add_flash("two")?;
    /// assert_eq!(session.take_flashes::<String>()?, ["one", "two"]);
    /// assert!(session.take_flashes::<String>()?.is_empty());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn take_flashes<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.take_flashes_under(DEFAULT_FLASH_KEY)
    }

    /// Reads and removes the flash messages under `key`, oldest first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if a message is not a `T`; the messages then stay.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Notice { level: String, text: String }
    ///
    /// session.add_flash_under("notices", Notice { level: "info".into(), text: "Welcome".into() })?;
    /// let notices: Vec<Notice> = session.take_flashes_under("notices")?;
    /// assert_eq!(notices[0].text, "Welcome");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn take_flashes_under<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        let mut state = self.lock();
        let Some(list) = state.record.flash_list(key) else {
            return Ok(Vec::new());
        };
        let taken = list
            .iter()
            .map(|raw| from_raw(raw))
            .collect::<Result<Vec<T>>>()?;
        state.record.flashes_mut().remove(key);
        state
            .changes
            .flashes
            .insert(key.to_owned(), Change::Removed);
        Ok(taken)
    }

    /// Reads the flash messages under the default key, oldest first, leaving them in place:
    /// the session is not modified, and a later request (or [`take_flashes`](Self::take_flashes))
    /// still gets them.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if a message is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash("Saved.")?;
    /// let before = session.changes();
    /// assert_eq!(session.peek_flashes::<String>()?, ["Saved."]);
    /// assert_eq!(session.changes(), before); // peeking records nothing
    /// assert_eq!(session.take_flashes::<String>()?, ["Saved."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn peek_flashes<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.peek_flashes_under(DEFAULT_FLASH_KEY)
    }

    /// Reads the flash messages under `key`, oldest first, leaving them in place (see
    /// [`peek_flashes`](Self::peek_flashes)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`] if a message is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash_under("errors", "Name is required.")?;
    /// // A layout shows how many errors there are; the page itself takes them.
    /// assert_eq!(session.peek_flashes_under::<String>("errors")?.len(), 1);
    /// assert_eq!(session.take_flashes_under::<String>("errors")?, ["Name is required."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn peek_flashes_under<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        let state = self.lock();
        state.record.flash_list(key).map_or(Ok(Vec::new()), |list| {
            list.iter().map(|raw| from_raw(raw)).collect()
        })
    }

    /// `true` if the request came without a valid session (it was created for this request).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // Created for this request: no cookie came with it.
    /// assert!(session.is_new());
    /// ```
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.lock().is_new
    }

    /// `true` if saving would write something: changed values or flashes, "remember me"
    /// switched, or a regenerate or destroy pending.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// assert!(!session.is_modified());
    /// session.insert("a", 1)?;
    /// assert!(session.is_modified());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_modified(&self) -> bool {
        let state = self.lock();
        !state.changes.is_empty() || state.action != Action::Keep
    }

    /// What the next save will do: nothing, write changes, move the session to a new id, or
    /// end it (see [`SessionStatus`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Session, SessionStatus};
    ///
    /// let session = Session::new_detached();
    /// session.set_persistent(true);
    /// assert_eq!(session.status(), SessionStatus::Changed);
    /// session.regenerate();
    /// assert_eq!(session.status(), SessionStatus::Renewed);
    /// ```
    #[must_use]
    pub fn status(&self) -> SessionStatus {
        let state = self.lock();
        match state.action {
            Action::Destroy => SessionStatus::Purged,
            Action::Regenerate => SessionStatus::Renewed,
            Action::Keep if state.changes.is_empty() => SessionStatus::Unchanged,
            Action::Keep => SessionStatus::Changed,
        }
    }

    /// Switches "remember me": a persistent cookie (with `Max-Age`) survives the browser
    /// closing; a browser-session cookie does not. A persistent session with a user id also
    /// gets the longer [remembered idle timeout](Expiry::remembered_idle_timeout) on the
    /// server (30 days by default), so that the user stays logged in while away.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // The login form's "remember me" box:
    /// let remember_me = true;
    /// session.set_persistent(remember_me);
    /// assert!(session.is_persistent());
    /// ```
    pub fn set_persistent(&self, persistent: bool) {
        let mut state = self.lock();
        if state.record.is_persistent() != persistent {
            state.record.set_persistent(persistent);
            state.changes.persistent_changed = true;
        }
    }

    /// Ties the session to a user, so that a server-side store can list and end all of a
    /// user's sessions ("log out everywhere"). Call it at login, after
    /// [`regenerate`](Self::regenerate).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // At login: a new identity first, then the user.
    /// session.regenerate();
    /// session.set_user_id("user-42");
    /// assert_eq!(session.user_id().as_deref(), Some("user-42"));
    /// ```
    pub fn set_user_id(&self, user: impl Into<String>) {
        let user = user.into();
        let mut state = self.lock();
        if state.record.user_id() != Some(user.as_str()) {
            state.record.set_user_id(Some(user));
            state.changes.user_changed = true;
        }
    }

    /// Unties the session from its user.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.set_user_id("user-42");
    /// session.clear_user_id();
    /// assert_eq!(session.user_id(), None);
    /// ```
    pub fn clear_user_id(&self) {
        let mut state = self.lock();
        if state.record.user_id().is_some() {
            state.record.set_user_id(None);
            state.changes.user_changed = true;
        }
    }

    /// The user the session is tied to, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// assert_eq!(session.user_id(), None);
    /// session.set_user_id("user-42");
    /// assert_eq!(session.user_id().as_deref(), Some("user-42"));
    /// ```
    #[must_use]
    pub fn user_id(&self) -> Option<String> {
        // A destroyed session belongs to nobody; its record keeps the user for the save, so
        // that a revocation marker of a logged-in session outranks anonymous ones.
        let state = self.lock();
        (state.action != Action::Destroy).then(|| state.record.user_id().map(str::to_owned))?
    }

    /// `true` if the cookie is persistent ("remember me").
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.set_persistent(false);
    /// assert!(!session.is_persistent());
    /// ```
    #[must_use]
    pub fn is_persistent(&self) -> bool {
        let state = self.lock();
        state.action != Action::Destroy && state.record.is_persistent()
    }

    /// Gives the session a new identity at the next save, keeping its data; the old one ends.
    ///
    /// Call it when privileges change, at login above all, against session fixation. For
    /// cookie sessions the cookie is sealed again; server-side stores issue a new id and delete
    /// the old record.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // Login: keep the cart, drop the pre-login identity.
    /// session.insert("cart", ["tea"])?;
    /// session.regenerate();
    /// session.set_user_id("user-42");
    /// assert!(session.is_modified());
    /// assert_eq!(session.get::<Vec<String>>("cart")?.map(|c| c.len()), Some(1));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn regenerate(&self) {
        let mut state = self.lock();
        if state.action == Action::Keep {
            state.action = Action::Regenerate;
        }
    }

    /// Ends the session: its data, user id, "remember me" and deadline are dropped, the store
    /// forgets it and the save clears the cookie (same name, Path, Domain and prefix,
    /// `Max-Age=0`).
    ///
    /// Values and flash messages written after it go to a new session, saved in the same
    /// response: a logout can leave a "You have been logged out" message for the next page.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.set_user_id("ada");
    /// // Logout.
    /// session.destroy();
    /// assert!(session.is_destroyed() && session.is_empty());
    /// assert_eq!(session.user_id(), None);
    /// session.add_flash("You have been logged out.")?; // for the next page, in a new session
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn destroy(&self) {
        let mut state = self.lock();
        state.action = Action::Destroy;
        state.record.values_mut().clear();
        state.record.flashes_mut().clear();
    }

    /// `true` once [`destroy`](Self::destroy) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// assert!(!session.is_destroyed());
    /// session.destroy();
    /// assert!(session.is_destroyed());
    /// ```
    #[must_use]
    pub fn is_destroyed(&self) -> bool {
        self.lock().action == Action::Destroy
    }

    /// When the session was created.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// assert!(session.created() <= fastsession::time::UnixTime::now());
    /// ```
    #[must_use]
    pub fn created(&self) -> UnixTime {
        self.lock().record.created()
    }

    /// Ends this one session at `at` (or, with `None`, takes back a deadline set before): from
    /// that second on no store returns it, and stores let it go then (their TTLs and reapers
    /// use it). It can only shorten the session: the policy's idle timeout and absolute
    /// lifetime ([`Expiry`]) still end it if they come first. Kept with the session in every
    /// store, across regenerations.
    ///
    /// For an offer link valid until midnight, a support session for an hour, a login that
    /// must end when the user's contract does.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// let session = Session::new_detached();
    /// // An impersonation session for support staff: one hour, however active.
    /// let end = UnixTime::now().saturating_add(Duration::from_secs(3600));
    /// session.set_expires_at(Some(end));
    /// assert_eq!(session.expires_at(), Some(end));
    /// ```
    pub fn set_expires_at(&self, at: Option<UnixTime>) {
        let mut state = self.lock();
        if state.record.expires_at() != at {
            state.record.set_expires_at(at);
            state.changes.expires_at_changed = true;
        }
    }

    /// The session's own deadline, if one was set with
    /// [`set_expires_at`](Self::set_expires_at) (in this request or an earlier one).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// // Sessions end by the policy alone unless told otherwise.
    /// assert_eq!(Session::new_detached().expires_at(), None);
    /// ```
    #[must_use]
    pub fn expires_at(&self) -> Option<UnixTime> {
        let state = self.lock();
        (state.action != Action::Destroy).then_some(state.record.expires_at())?
    }

    /// When the session was last saved or refreshed.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // A new session was last active when it was created.
    /// assert_eq!(session.last_active(), session.created());
    /// ```
    #[must_use]
    pub fn last_active(&self) -> UnixTime {
        self.lock().record.last_active()
    }

    /// A copy of the changes made so far in this request.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.insert("a", 1)?;
    /// let changes = session.changes();
    /// assert_eq!(changes.values().map(|(key, _)| key).collect::<Vec<_>>(), ["a"]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn changes(&self) -> ChangeSet {
        self.lock().changes.clone()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and flags only: values may be secret.
        let state = self.lock();
        f.debug_struct("Session")
            .field("keys", &state.record.value_map().keys().collect::<Vec<_>>())
            .field("is_new", &state.is_new)
            .field("persistent", &state.record.is_persistent())
            .field("action", &state.action)
            .finish_non_exhaustive()
    }
}

impl State {
    pub(crate) fn fresh(now: UnixTime) -> Self {
        State::with_record(Record::new(now), true)
    }

    /// Makes this a fresh session; what a destroyed session was given after `destroy` (which
    /// emptied its values and flash messages) moves into it, as changes to create it with.
    /// `true` if anything moved.
    pub(crate) fn begin_anew(&mut self, now: UnixTime) -> bool {
        let destroyed = self.action == Action::Destroy;
        let values = std::mem::take(self.record.values_mut());
        let flashes = std::mem::take(self.record.flashes_mut());
        *self = State::fresh(now);
        if !destroyed || (values.is_empty() && flashes.is_empty()) {
            return false;
        }
        for key in values.keys() {
            self.changes.values.insert(key.clone(), Change::Set);
        }
        for key in flashes.keys() {
            self.changes.flashes.insert(key.clone(), Change::Set);
        }
        *self.record.values_mut() = values;
        *self.record.flashes_mut() = flashes;
        true
    }

    /// `true` for a session [`begin_anew`](Self::begin_anew) gave something to: it needs a
    /// save of its own.
    pub(crate) fn is_carried(&self) -> bool {
        self.is_new && self.action == Action::Keep && !self.changes.is_empty()
    }

    /// `true` for a session destroyed before it was ever saved, that was given something
    /// after `destroy`.
    pub(crate) fn is_new_and_written_after_destroy(&self) -> bool {
        self.is_new
            && self.action == Action::Destroy
            && !(self.record.value_map().is_empty() && self.record.flashes().len() == 0)
    }

    pub(crate) fn with_record(record: Record, is_new: bool) -> Self {
        State {
            record,
            changes: ChangeSet::default(),
            is_new,
            action: Action::Keep,
            reseal: false,
        }
    }
}

fn to_raw(value: &impl Serialize) -> Result<Box<RawValue>> {
    serde_json::value::to_raw_value(value).map_err(|e| {
        Error::new(ErrorKind::Serialize, "value cannot be stored as JSON").with_source(e)
    })
}

fn from_raw<T: DeserializeOwned>(raw: &RawValue) -> Result<T> {
    serde_json::from_str(raw.get()).map_err(|e| {
        Error::new(
            ErrorKind::Deserialize,
            "stored value is not of the requested type",
        )
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_tracking() {
        let s = Session::new_detached();
        assert!(!s.is_modified());
        assert!(!s.remove("missing"));
        s.clear();
        assert!(!s.is_modified(), "removing nothing is not a change");
        s.insert("a", 1).unwrap();
        s.insert("b", 2).unwrap();
        assert!(s.remove("b"));
        let c = s.changes();
        assert_eq!(
            c.values().collect::<Vec<_>>(),
            [("a", Change::Set), ("b", Change::Removed)]
        );
        s.clear();
        let c = s.changes();
        assert!(c.values_cleared() && c.values().next().is_none());
        s.set_persistent(true);
        assert!(s.changes().persistent_changed());
    }

    /// A store may hold values a request cannot see (another format's): clearing a loaded
    /// session tells it to drop them, even with no value in sight.
    #[test]
    fn clearing_a_loaded_session_is_a_change_even_without_visible_values() {
        let loaded = Session::from_state(State::with_record(
            Record::new(UnixTime::from_secs(100)),
            false,
        ));
        loaded.clear();
        assert!(loaded.changes().values_cleared());
        assert_eq!(loaded.status(), SessionStatus::Changed);
        let fresh = Session::new_detached();
        fresh.clear();
        assert!(!fresh.is_modified(), "a new session holds nothing anywhere");
    }

    #[test]
    fn updates_record_a_change_only_when_they_store_and_fail_without_one() {
        let s = Session::new_detached();
        assert_eq!(s.update("n", |n: u32| n + 1).unwrap(), None);
        assert!(!s.is_modified(), "nothing to update is no change");
        assert_eq!(s.update_or("n", 5, |n: u32| n + 1).unwrap(), 5);
        assert_eq!(
            s.changes().values().collect::<Vec<_>>(),
            [("n", Change::Set)]
        );
        s.insert("text", "x").unwrap();
        let before = s.changes();
        assert_eq!(
            s.update("text", |n: u32| n + 1).unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        assert_eq!(s.changes(), before);
        assert_eq!(s.get::<String>("text").unwrap().as_deref(), Some("x"));
        // Threads sharing one request's session never lose an update.
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        s.update_or("count", 1u32, |n| n + 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.get::<u32>("count").unwrap(), Some(800));
    }

    #[test]
    fn increments_carry_a_delta_until_another_operation_on_the_key() {
        let s = Session::new_detached();
        assert_eq!(s.increment("n", 2).unwrap(), 2);
        assert_eq!(s.increment("n", 3).unwrap(), 5);
        let c = s.changes();
        assert_eq!(c.values().collect::<Vec<_>>(), [("n", Change::Set)]);
        assert_eq!(c.deltas().collect::<Vec<_>>(), [("n", 5)]);
        // An insert after an increment is a plain set; an increment after it adds on top
        // and stays a plain set.
        s.insert("n", 10).unwrap();
        assert_eq!(s.changes().delta("n"), None);
        assert_eq!(s.increment("n", 1).unwrap(), 11);
        assert_eq!(s.changes().delta("n"), None);
        // So does an update.
        assert_eq!(s.increment("u", 1).unwrap(), 1);
        assert_eq!(s.update("u", |n: i64| n * 7).unwrap(), Some(7));
        assert_eq!(s.changes().delta("u"), None);
        // A removal drops the delta; an increment after it counts from 0, as a set.
        assert_eq!(s.increment("r", 4).unwrap(), 4);
        assert!(s.remove("r"));
        assert_eq!(s.changes().delta("r"), None);
        assert_eq!(
            s.changes().values().find(|(k, _)| *k == "r"),
            Some(("r", Change::Removed))
        );
        assert_eq!(s.increment("r", 1).unwrap(), 1);
        assert_eq!(s.changes().delta("r"), None);
        // A clear drops every delta; an increment after it counts from 0 again, as a delta
        // on top of the clear.
        s.clear();
        assert_eq!(s.changes().deltas().count(), 0);
        assert_eq!(s.increment("n", 1).unwrap(), 1);
        let c = s.changes();
        assert!(c.values_cleared());
        assert_eq!(c.delta("n"), Some(1));
    }

    #[test]
    fn a_failed_increment_changes_nothing() {
        let s = Session::new_detached();
        s.insert("text", "x").unwrap();
        s.insert("float", 1.5).unwrap();
        s.insert("big", u64::MAX).unwrap();
        s.insert("max", i64::MAX).unwrap();
        s.insert("min", i64::MIN).unwrap();
        let before = s.changes();
        for key in ["text", "float", "big"] {
            assert_eq!(
                s.increment(key, 1).unwrap_err().kind(),
                ErrorKind::Deserialize,
                "{key}"
            );
        }
        assert_eq!(
            s.increment("max", 1).unwrap_err().kind(),
            ErrorKind::Serialize
        );
        assert_eq!(
            s.increment("min", -1).unwrap_err().kind(),
            ErrorKind::Serialize
        );
        assert_eq!(s.changes(), before);
        assert_eq!(s.get::<i64>("max").unwrap(), Some(i64::MAX));
        assert_eq!(s.increment("max", -1).unwrap(), i64::MAX - 1);
    }

    #[test]
    fn adding_zero_to_a_value_changes_nothing() {
        let s = Session::from_state(State::with_record(
            {
                let mut record = Record::new(UnixTime::from_secs(100));
                record.insert_value("n".to_owned(), to_raw(&4).unwrap());
                record
            },
            false,
        ));
        assert_eq!(s.increment("n", 0).unwrap(), 4);
        assert!(!s.is_modified());
        assert_eq!(s.increment("missing", 0).unwrap(), 0);
        assert_eq!(s.get::<i64>("missing").unwrap(), Some(0));
    }

    #[test]
    fn deltas_that_overflow_together_become_a_set() {
        let s = Session::from_state(State::with_record(
            {
                let mut record = Record::new(UnixTime::from_secs(100));
                record.insert_value("n".to_owned(), to_raw(&i64::MIN).unwrap());
                record
            },
            false,
        ));
        assert_eq!(s.increment("n", i64::MAX).unwrap(), -1);
        assert_eq!(s.increment("n", i64::MAX).unwrap(), i64::MAX - 1);
        assert_eq!(s.changes().delta("n"), None);
        assert_eq!(s.get::<i64>("n").unwrap(), Some(i64::MAX - 1));
    }

    #[test]
    fn threads_of_one_request_never_lose_an_increment() {
        let s = Session::new_detached();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        s.increment("count", 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.get::<i64>("count").unwrap(), Some(800));
        assert_eq!(s.changes().delta("count"), Some(800));
    }

    #[test]
    fn insert_failure_leaves_the_session_unchanged() {
        let s = Session::new_detached();
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        assert_eq!(s.insert("k", bad).unwrap_err().kind(), ErrorKind::Serialize);
        assert!(!s.is_modified() && !s.contains("k"));
    }

    #[test]
    fn named_flashes_and_failed_takes() {
        let s = Session::new_detached();
        s.add_flash_under("errors", "bad").unwrap();
        s.add_flash_under("errors", "worse").unwrap();
        s.add_flash(1).unwrap();
        assert!(s.take_flashes::<String>().is_err());
        assert_eq!(s.take_flashes::<u8>().unwrap(), [1]);
        assert_eq!(
            s.take_flashes_under::<String>("errors").unwrap(),
            ["bad", "worse"]
        );
        assert!(s.take_flashes_under::<String>("errors").unwrap().is_empty());
    }

    #[test]
    fn peeking_flashes_leaves_them_and_modifies_nothing() {
        let s = Session::from_state(State::with_record(
            {
                let mut record = Record::new(UnixTime::from_secs(100));
                record.set_flash_list(
                    DEFAULT_FLASH_KEY.to_owned(),
                    vec![to_raw(&"hello").unwrap(), to_raw(&"again").unwrap()],
                );
                record.set_flash_list("errors".to_owned(), vec![to_raw(&7).unwrap()]);
                record
            },
            false,
        ));
        assert_eq!(s.peek_flashes::<String>().unwrap(), ["hello", "again"]);
        assert_eq!(s.peek_flashes_under::<u8>("errors").unwrap(), [7]);
        assert!(s.peek_flashes_under::<u8>("none").unwrap().is_empty());
        assert!(
            !s.is_modified(),
            "a loaded session only peeked at is not saved"
        );
        assert_eq!(s.changes(), ChangeSet::default());
        // Still there for the request that takes them.
        assert_eq!(s.take_flashes::<String>().unwrap(), ["hello", "again"]);
        assert!(s.is_modified());
    }

    #[test]
    fn a_failed_peek_leaves_the_flashes() {
        let s = Session::new_detached();
        s.add_flash("text").unwrap();
        let before = s.changes();
        assert_eq!(
            s.peek_flashes::<u32>().unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        assert_eq!(s.changes(), before);
        assert_eq!(s.take_flashes::<String>().unwrap(), ["text"]);
    }

    #[test]
    fn status_follows_changes_regeneration_and_destruction() {
        let s = Session::new_detached();
        assert_eq!(s.status(), SessionStatus::Unchanged);
        assert!(!s.remove("missing"));
        assert_eq!(s.status(), SessionStatus::Unchanged, "no change, no status");
        s.set_expires_at(Some(UnixTime::from_secs(10)));
        assert_eq!(s.status(), SessionStatus::Changed);
        let s = Session::new_detached();
        s.set_user_id("ada");
        assert_eq!(s.status(), SessionStatus::Changed);
        s.regenerate();
        assert_eq!(s.status(), SessionStatus::Renewed);
        s.destroy();
        s.regenerate();
        assert_eq!(s.status(), SessionStatus::Purged, "destroy wins");
        // Peeking at a loaded session's flashes is no change; taking them is.
        let s = Session::from_state(State::with_record(
            {
                let mut record = Record::new(UnixTime::from_secs(100));
                record.set_flash_list(DEFAULT_FLASH_KEY.to_owned(), vec![to_raw(&1).unwrap()]);
                record
            },
            false,
        ));
        s.peek_flashes::<u8>().unwrap();
        assert_eq!(s.status(), SessionStatus::Unchanged);
        s.take_flashes::<u8>().unwrap();
        assert_eq!(s.status(), SessionStatus::Changed);
    }

    #[test]
    fn entries_copy_the_values_and_leave_out_flashes() {
        let s = Session::new_detached();
        assert!(s.entries().is_empty());
        s.insert("b", vec![1, 2]).unwrap();
        s.insert("a", "x").unwrap();
        s.add_flash("flash").unwrap();
        let entries = s.entries();
        let texts: Vec<_> = entries.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
        assert_eq!(texts, [("a", "\"x\""), ("b", "[1,2]")]);
        // A copy: later changes do not show in it, and taking it changed nothing.
        s.remove("a");
        assert!(entries.contains_key("a"));
        assert_eq!(s.entries().len(), 1);
    }

    #[test]
    fn expires_at_is_a_change_only_when_it_differs() {
        let s = Session::new_detached();
        s.set_expires_at(None);
        assert!(!s.is_modified());
        let at = Some(UnixTime::from_secs(1_000));
        s.set_expires_at(at);
        assert!(s.changes().expires_at_changed());
        assert_eq!(s.expires_at(), at);
        let s = Session::from_state(State::with_record(
            {
                let mut record = Record::new(UnixTime::from_secs(100));
                record.set_expires_at(at);
                record
            },
            false,
        ));
        s.set_expires_at(at);
        assert!(!s.is_modified(), "the same deadline again is no change");
        s.set_expires_at(None);
        assert!(s.changes().expires_at_changed() && s.expires_at().is_none());
    }

    #[test]
    fn destroy_drops_data_and_wins_over_regenerate() {
        let s = Session::new_detached();
        s.insert("a", 1).unwrap();
        s.destroy();
        s.regenerate();
        assert!(s.is_destroyed() && s.is_empty());
    }

    #[test]
    fn debug_shows_no_values() {
        let s = Session::new_detached();
        s.insert("token", "s3cr3t").unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
