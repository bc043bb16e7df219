//! The session model: typed values, flashes, expiry, and the change set a save carries.
//!
//! A [`Session`] is a cheap, cloneable handle; clones see the same session, so the handle can
//! be passed around a handler freely (it is `Send + Sync`). Values are kept as JSON, so any
//! `serde` type can be stored and read back as the same or a compatible type.

mod changes;
mod expiry;
mod flash;
mod id;
mod record;
mod reject;
mod status;
mod values;

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

/// A session's values, flashes and changes by key, kept as a vector sorted by key: a session
/// holds a few keys, where a B-tree's code (search, node splits, node-by-node drops) is more
/// than a request otherwise runs through for them.
pub(crate) type KeyMap<V> = litemap::LiteMap<String, V>;

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
    /// The store holds values the record does not show, for `clear` to reach.
    pub(crate) hidden_values: bool,
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
    /// Returns a fresh, empty session outside any request, for tests and examples.
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

    /// The state, if this is its only handle: nothing else can lock it meanwhile.
    pub(crate) fn sole_state(&mut self) -> Option<&mut State> {
        let state = Arc::get_mut(&mut self.state)?;
        Some(state.get_mut().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns `true` if the request came without a valid session (it was created for this
    /// request).
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

    /// Returns `true` if saving would write something: changed values or flashes, "remember me"
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

    /// Returns what the next save will do: nothing, write changes, move the session to a new id, or
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

    /// Returns the user the session is tied to, if any.
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

    /// Returns `true` if the cookie is persistent ("remember me").
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
        state.record.clear_values();
        state.record.flashes_mut().clear();
    }

    /// Returns `true` once [`destroy`](Self::destroy) was called.
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

    /// Returns when the session was created.
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

    /// Returns the session's own deadline, if one was set with
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

    /// Returns when the session was last saved or refreshed.
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

    /// Returns a copy of the changes made so far in this request.
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
        let values = self.record.take_values();
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
        self.record.set_values(values);
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
            hidden_values: false,
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
mod tests;
