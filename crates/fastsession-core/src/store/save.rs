//! What a store is asked at a save, and what it answers.

use std::fmt;

use super::Memo;
use crate::session::{ChangeSet, Expiry, Record, SessionId};
use crate::time::UnixTime;

/// Why a session is being saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveKind {
    /// A new session's first write: create it; never overwrite an existing record.
    Create,
    /// A loaded session was changed: merge the change set onto the stored record.
    Update,
    /// A loaded session was only read and its refresh is due: move its last-activity time,
    /// never its data.
    Touch,
    /// Move the session to a new id with its data (the record, after the change set); the old
    /// id must load nothing afterwards.
    Regenerate,
    /// End the session.
    Destroy,
}

/// What [`Store::save`](super::Store::save) is asked.
#[derive(Clone, Copy)]
pub struct SaveRequest<'a> {
    cookie_name: &'a str,
    kind: SaveKind,
    record: &'a Record,
    changes: &'a ChangeSet,
    expiry: &'a Expiry,
    now: UnixTime,
    memo: Option<&'a Memo>,
    max_cookie_value_len: Option<usize>,
}

impl<'a> SaveRequest<'a> {
    /// Returns a save of `record` (its state after the request, `last_active` already `now`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::{Expiry, Record};
    /// use fastsession::store::{MemoryStore, SaveKind, SaveRequest, Saved, Store};
    /// use fastsession::time::UnixTime;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// // The first save of a new session, as the registry asks it (and as a store's test does).
    /// let store = MemoryStore::new()?;
    /// let now = UnixTime::now();
    /// let mut record = Record::new(now);
    /// record.set_user_id(Some("ada".to_owned()));
    /// let session = Session::new_detached();
    /// session.set_user_id("ada");
    /// let (changes, expiry) = (session.changes(), Expiry::default());
    /// let saved = store.save(SaveRequest::new("__Host-id", SaveKind::Create, &record, &changes, &expiry, now)).await?;
    /// assert!(matches!(saved, Saved::Cookie { id: Some(_), .. }));
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(
        cookie_name: &'a str,
        kind: SaveKind,
        record: &'a Record,
        changes: &'a ChangeSet,
        expiry: &'a Expiry,
        now: UnixTime,
    ) -> Self {
        SaveRequest {
            cookie_name,
            kind,
            record,
            changes,
            expiry,
            now,
            memo: None,
            max_cookie_value_len: None,
        }
    }

    /// Tells the store the longest cookie value that fits the response's `Set-Cookie` limit,
    /// so that a store with side effects (revoking the old id at a regeneration) can refuse
    /// an oversize value before any of them.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// let request = SaveRequest::new("id", SaveKind::Regenerate, &record, &changes, &expiry, now)
    ///     .with_max_cookie_value_len(4000);
    /// assert_eq!(request.max_cookie_value_len(), Some(4000));
    /// ```
    #[must_use]
    pub fn with_max_cookie_value_len(mut self, max: usize) -> Self {
        self.max_cookie_value_len = Some(max);
        self
    }

    /// Returns the longest cookie value that fits, if the caller said
    /// ([`with_max_cookie_value_len`](Self::with_max_cookie_value_len)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// // In a store's save: refuse a value that cannot be set before revoking anything.
    /// fn fits(request: &SaveRequest<'_>, value: &str) -> bool {
    ///     request.max_cookie_value_len().is_none_or(|max| value.len() <= max)
    /// }
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// let request = SaveRequest::new("id", SaveKind::Regenerate, &record, &changes, &expiry, now)
    ///     .with_max_cookie_value_len(10);
    /// assert!(!fits(&request, "a value longer than ten bytes"));
    /// ```
    #[must_use]
    pub fn max_cookie_value_len(&self) -> Option<usize> {
        self.max_cookie_value_len
    }

    /// Hands the store what it attached to the session when it loaded it
    /// ([`Loaded::with_memo`](super::Loaded::with_memo)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{Memo, SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// let memo = Memo::new("the key it was loaded under");
    /// let request = SaveRequest::new("id", SaveKind::Update, &record, &changes, &expiry, now)
    ///     .with_memo(Some(&memo));
    /// assert_eq!(request.memo().and_then(Memo::get::<&str>), Some(&"the key it was loaded under"));
    /// ```
    #[must_use]
    pub fn with_memo(mut self, memo: Option<&'a Memo>) -> Self {
        self.memo = memo;
        self
    }

    /// Returns what the store attached to this session when it loaded it, if anything.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// // A new session was never loaded: nothing attached.
    /// let request = SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);
    /// assert!(request.memo().is_none());
    /// ```
    #[must_use]
    pub fn memo(&self) -> Option<&'a Memo> {
        self.memo
    }

    /// Returns the cookie's full name, prefix included.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// let request = SaveRequest::new("__Host-id", SaveKind::Create, &record, &changes, &expiry, now);
    /// // A store that seals the session binds the sealed value to this name.
    /// assert_eq!(request.cookie_name(), "__Host-id");
    /// ```
    #[must_use]
    pub fn cookie_name(&self) -> &'a str {
        self.cookie_name
    }

    /// Returns why the session is saved.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{SaveKind, SaveRequest};
    ///
    /// // The outline of a server-side store's save.
    /// fn plan(request: &SaveRequest<'_>) -> &'static str {
    ///     match request.kind() {
    ///         SaveKind::Create => "insert, failing if the key exists",
    ///         SaveKind::Update => "merge the change set onto the stored record",
    ///         SaveKind::Touch => "move last_active and the TTL, nothing else",
    ///         SaveKind::Regenerate => "write under a new id, delete the old one",
    ///         SaveKind::Destroy => "delete",
    ///         _ => "unknown kind: refuse",
    ///     }
    /// }
    /// # let _ = plan;
    /// ```
    #[must_use]
    pub fn kind(&self) -> SaveKind {
        self.kind
    }

    /// Returns the session as the request leaves it; [`Record::id`] is the id it was loaded under.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// let request = SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);
    /// // A store that keeps whole records writes this one as it is.
    /// let blob = request.record().to_bytes();
    /// assert_eq!(Record::from_bytes(&blob).unwrap(), record);
    /// ```
    #[must_use]
    pub fn record(&self) -> &'a Record {
        self.record
    }

    /// Returns what the request changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// // A server-side store merges the request's changes onto what it holds: another request's
    /// // changes to other keys stay.
    /// fn merged(stored: &Record, request: &SaveRequest<'_>) -> Record {
    ///     let mut merged = stored.clone();
    ///     merged.apply(request.changes(), request.record());
    ///     merged.set_last_active(request.now());
    ///     merged
    /// }
    ///
    /// let now = UnixTime::from_secs(100);
    /// let session = fastsession::Session::new_detached();
    /// session.set_persistent(true);
    /// let mut record = Record::new(now);
    /// record.set_persistent(true);
    /// let (changes, expiry) = (session.changes(), Expiry::default());
    /// let request = SaveRequest::new("id", SaveKind::Update, &record, &changes, &expiry, now);
    /// assert!(merged(&Record::new(now), &request).is_persistent());
    /// ```
    #[must_use]
    pub fn changes(&self) -> &'a ChangeSet {
        self.changes
    }

    /// Returns the expiry policy (stores use [`Expiry::deadline`] for their own TTLs).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// let request = SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);
    /// // The backend's own TTL: when the session ends if nobody uses it again.
    /// let ttl = request.expiry().deadline(request.record()).since(request.now());
    /// assert_eq!(ttl, expiry.anonymous_idle_timeout());
    /// ```
    #[must_use]
    pub fn expiry(&self) -> &'a Expiry {
        self.expiry
    }

    /// Returns the current time.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::{SaveKind, SaveRequest};
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(100);
    /// let (record, changes, expiry) = (Record::new(now), ChangeSet::default(), Expiry::default());
    /// let request = SaveRequest::new("id", SaveKind::Touch, &record, &changes, &expiry, now);
    /// // A touch moves the stored last activity to this time, and nothing else.
    /// assert_eq!(request.now(), request.record().last_active());
    /// ```
    #[must_use]
    pub fn now(&self) -> UnixTime {
        self.now
    }
}

/// What the cookie must say after a save.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum Saved {
    /// Set the cookie to `value`; `id` is the session's id afterwards, if it has one.
    Cookie {
        /// The cookie value.
        value: String,
        /// The session id the value names or seals, if the store gives sessions ids (every
        /// server-side store; a cookie store with a revocation list).
        id: Option<SessionId>,
    },
    /// Clear the cookie.
    Remove,
}

// The Debug impls below never show cookie values or session values: they are bearer secrets.

impl fmt::Debug for SaveRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaveRequest")
            .field("cookie_name", &self.cookie_name)
            .field("kind", &self.kind)
            .field("record", self.record)
            .field("changes", self.changes)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Saved::Cookie { value, id } => f
                .debug_struct("Cookie")
                .field("value_len", &value.len())
                .field("id", id)
                .finish(),
            Saved::Remove => f.write_str("Remove"),
        }
    }
}
