//! The [`Store`] trait and the stores of this crate: the [`CookieStore`], which keeps the whole
//! session in the cookie, the [`MemoryStore`], and the [`ServerStore`] that every server-side
//! store (memory, files, Redis, PostgreSQL) builds on with a [`Backend`].
//!
//! A store turns a cookie value into a session record and back. The trait is dyn-compatible
//! (futures are boxed), so one request can hold sessions from several stores behind
//! `Arc<dyn Store>`.
//!
//! # The contract
//!
//! * **Load** gets the cookie value (and, for stores of [`CookieContent::SessionId`], the
//!   already-parsed [`SessionId`]: a malformed id never reaches a store). It returns the record,
//!   or a [`RejectReason`] for anything that is not a live session: unknown, expired (checked
//!   with [`Expiry::check`] even if the backend still holds it), tampered. Only a failure of the
//!   store itself is an `Err`.
//! * **Save** gets a [`SaveKind`], the full record after the request, and the request's
//!   [`ChangeSet`]. Server-side stores apply the change set onto the record they hold
//!   ([`Record::apply`]) atomically, so concurrent requests that change different keys both
//!   persist; a save for a session that another request destroyed or regenerated fails with
//!   [`ErrorKind::SessionEnded`](crate::ErrorKind::SessionEnded) and never brings it back.
//!   [`SaveKind::Create`] must never overwrite an existing record.
//! * Neither is called for a request that never asked for its session.

mod backend;
mod budget;
mod cookie;
mod future;
mod memo;
mod memory;
#[cfg(feature = "tokio")]
mod reaper;
mod revocation;
mod server;
mod storage_key;

use std::fmt;

pub use backend::{Backend, IdSource, OsIdSource, SessionInfo, Update};
pub use budget::{
    AnonymousBudget, DEFAULT_ANONYMOUS_BYTES, DEFAULT_ANONYMOUS_SESSIONS, DEFAULT_MAX_SESSION_BYTES,
};
pub use cookie::{CookieStore, revoke_replaced};
pub use future::StoreFuture;
pub use memo::Memo;
pub use memory::{DEFAULT_MAX_SESSIONS, MemoryBackend, MemoryStore};
#[cfg(feature = "tokio")]
pub use reaper::spawn_reaper;
pub use revocation::{RevocationList, UserRevocation};
pub use server::ServerStore;
pub use storage_key::StorageKey;

// Defined with the expiry checks that produce it; stores answer with it.
pub use crate::session::RejectReason;

use crate::error::Result;
use crate::session::{ChangeSet, Expiry, Record, SessionId};
use crate::time::UnixTime;

/// Where sessions live.
///
/// See the [module documentation](self) for the contract every implementation keeps; the
/// conformance suite checks it.
///
/// # Examples
///
/// A store is used through a [`SessionConfig`](crate::http::SessionConfig); this is how the
/// registry calls it:
///
/// ```
/// use fastsession::{Key, KeyRing};
/// use fastsession::session::{Expiry, Record};
/// use fastsession::store::{CookieStore, LoadRequest, SaveKind, SaveRequest, Saved, Store};
/// use fastsession::time::UnixTime;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = CookieStore::new(&KeyRing::new(Key::generate()?));
/// let expiry = Expiry::default();
/// let now = UnixTime::now();
/// let record = Record::new(now);
/// let changes = Default::default();
/// let saved = store
///     .save(SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now))
///     .await?;
/// let Saved::Cookie { value, .. } = saved else { unreachable!() };
/// let loaded = store.load(LoadRequest::new("id", &value, None, &expiry, now)).await?;
/// assert_eq!(loaded.record(), Some(&record));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Store: fmt::Debug + Send + Sync + 'static {
    /// What the cookie holds for this store.
    fn cookie_content(&self) -> CookieContent;

    /// Finds the session a cookie names.
    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded>;

    /// Persists a session, returning what the cookie must say afterwards.
    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved>;
}

/// What a store keeps in the cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieContent {
    /// A [`SessionId`]; the registry parses it before the store sees it.
    SessionId,
    /// A value only the store can open or verify (the whole session, sealed or signed, for
    /// [`CookieStore`]).
    Sealed,
}

/// What [`Store::load`] is asked.
#[derive(Clone, Copy)]
pub struct LoadRequest<'a> {
    cookie_name: &'a str,
    cookie_value: &'a str,
    session_id: Option<&'a SessionId>,
    expiry: &'a Expiry,
    now: UnixTime,
}

impl<'a> LoadRequest<'a> {
    /// A load of the cookie `cookie_name=cookie_value` at `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{Expiry, SessionId};
    /// use fastsession::store::{LoadRequest, Loaded, MemoryStore, Store};
    /// use fastsession::time::UnixTime;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// // What the registry asks a store of session ids for a cookie `__Host-id=<id>`; a test of a
    /// // store asks the same.
    /// let store = MemoryStore::new()?;
    /// let id = SessionId::generate()?;
    /// let expiry = Expiry::default();
    /// let request = LoadRequest::new("__Host-id", id.as_str(), Some(&id), &expiry, UnixTime::now());
    /// let loaded: Loaded = store.load(request).await?;
    /// assert!(loaded.record().is_none()); // an id this store never gave out
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(
        cookie_name: &'a str,
        cookie_value: &'a str,
        session_id: Option<&'a SessionId>,
        expiry: &'a Expiry,
        now: UnixTime,
    ) -> Self {
        LoadRequest {
            cookie_name,
            cookie_value,
            session_id,
            expiry,
            now,
        }
    }

    /// The cookie's full name, prefix included.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Expiry;
    /// use fastsession::store::LoadRequest;
    /// use fastsession::time::UnixTime;
    ///
    /// let expiry = Expiry::default();
    /// let request = LoadRequest::new("__Host-id", "value", None, &expiry, UnixTime::from_secs(100));
    /// // A store that seals or signs binds its cookie to this name: moved to another name, it
    /// // does not open.
    /// assert_eq!(request.cookie_name(), "__Host-id");
    /// ```
    #[must_use]
    pub fn cookie_name(&self) -> &'a str {
        self.cookie_name
    }

    /// The cookie's value as sent (at most 4096 bytes); with a signed id
    /// ([`SessionConfig::with_signed_id`](crate::http::SessionConfig::with_signed_id)), the
    /// id's text without its signature, so that stores see what they wrote.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Expiry;
    /// use fastsession::store::LoadRequest;
    /// use fastsession::time::UnixTime;
    ///
    /// let expiry = Expiry::default();
    /// let request = LoadRequest::new("__Host-id", "sealed.value", None, &expiry, UnixTime::from_secs(100));
    /// // A store whose cookie holds the session opens this.
    /// assert_eq!(request.cookie_value(), "sealed.value");
    /// ```
    #[must_use]
    pub fn cookie_value(&self) -> &'a str {
        self.cookie_value
    }

    /// The parsed id, for stores of [`CookieContent::SessionId`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{Expiry, SessionId};
    /// use fastsession::store::{LoadRequest, Loaded, RejectReason};
    /// use fastsession::time::UnixTime;
    ///
    /// // In a store of session ids: the registry parsed the id already, so a malformed one never
    /// // gets here; look it up.
    /// fn load(request: LoadRequest<'_>) -> Loaded {
    ///     let Some(id) = request.session_id() else {
    ///         return Loaded::rejected(RejectReason::Malformed);
    ///     };
    ///     # let _ = id;
    ///     Loaded::rejected(RejectReason::UnknownId) // ... or Loaded::found(record)
    /// }
    ///
    /// let id = SessionId::generate()?;
    /// let expiry = Expiry::default();
    /// let request = LoadRequest::new("__Host-id", id.as_str(), Some(&id), &expiry, UnixTime::now());
    /// assert_eq!(load(request).reject_reason(), Some(RejectReason::UnknownId));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn session_id(&self) -> Option<&'a SessionId> {
        self.session_id
    }

    /// The expiry policy to enforce.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{Expiry, Record};
    /// use fastsession::store::{LoadRequest, Loaded};
    /// use fastsession::time::UnixTime;
    ///
    /// // A store checks what it found even if its backend still holds it: an expired session is
    /// // no session.
    /// fn found(request: LoadRequest<'_>, record: Record) -> Loaded {
    ///     match request.expiry().check(&record, request.now()) {
    ///         Ok(()) => Loaded::found(record),
    ///         Err(reason) => Loaded::rejected(reason),
    ///     }
    /// }
    ///
    /// let expiry = Expiry::default();
    /// let now = UnixTime::from_secs(10_000_000);
    /// let request = LoadRequest::new("__Host-id", "value", None, &expiry, now);
    /// let stale = Record::new(UnixTime::from_secs(1_000));
    /// assert!(found(request, stale).record().is_none());
    /// ```
    #[must_use]
    pub fn expiry(&self) -> &'a Expiry {
        self.expiry
    }

    /// The current time.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Expiry;
    /// use fastsession::store::LoadRequest;
    /// use fastsession::time::UnixTime;
    ///
    /// // The request's clock (the session config's, so tests can move it): a store uses this,
    /// // never the system clock.
    /// let expiry = Expiry::default();
    /// let request = LoadRequest::new("__Host-id", "value", None, &expiry, UnixTime::from_secs(100));
    /// assert_eq!(request.now(), UnixTime::from_secs(100));
    /// ```
    #[must_use]
    pub fn now(&self) -> UnixTime {
        self.now
    }
}

/// What [`Store::load`] found.
#[must_use]
pub struct Loaded {
    outcome: Result<Record, RejectReason>,
    reseal: bool,
    memo: Option<Memo>,
}

impl Loaded {
    /// A live session.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::Loaded;
    /// use fastsession::time::UnixTime;
    ///
    /// let record = Record::new(UnixTime::from_secs(100));
    /// let loaded = Loaded::found(record.clone());
    /// assert_eq!(loaded.record(), Some(&record));
    /// ```
    pub fn found(record: Record) -> Self {
        Loaded {
            outcome: Ok(record),
            reseal: false,
            memo: None,
        }
    }

    /// No live session, and why.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{Loaded, RejectReason};
    ///
    /// // Not an error: the request gets a fresh session, and the reason goes to the log.
    /// let loaded = Loaded::rejected(RejectReason::UnknownId);
    /// assert_eq!(loaded.reject_reason(), Some(RejectReason::UnknownId));
    /// ```
    pub fn rejected(reason: RejectReason) -> Self {
        Loaded {
            outcome: Err(reason),
            reseal: false,
            memo: None,
        }
    }

    /// Asks for the session to be written again even if unchanged (sealed with a retired key).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::Loaded;
    /// use fastsession::time::UnixTime;
    ///
    /// // The cookie opened with a retired key: save it again under the active one, even if the
    /// // request changes nothing.
    /// let record = Record::new(UnixTime::from_secs(100));
    /// let loaded = Loaded::found(record).with_reseal(true);
    /// assert!(loaded.needs_reseal());
    /// ```
    pub fn with_reseal(mut self, reseal: bool) -> Self {
        self.reseal = reseal;
        self
    }

    /// Attaches what this store wants back when it saves the session it found: the registry
    /// hands it to the next [`SaveRequest`] for this session, and to no other store.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::{Loaded, Memo};
    /// use fastsession::time::UnixTime;
    ///
    /// // A store that found the record under a key it computed remembers the key.
    /// let loaded = Loaded::found(Record::new(UnixTime::from_secs(100))).with_memo(Memo::new(42_u64));
    /// assert!(format!("{loaded:?}").contains("memo"));
    /// ```
    pub fn with_memo(mut self, memo: Memo) -> Self {
        self.memo = Some(memo);
        self
    }

    /// The record, if found.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{Loaded, RejectReason};
    ///
    /// assert!(Loaded::rejected(RejectReason::Revoked).record().is_none());
    /// ```
    #[must_use]
    pub fn record(&self) -> Option<&Record> {
        self.outcome.as_ref().ok()
    }

    /// The reason, if rejected.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::Loaded;
    /// use fastsession::time::UnixTime;
    ///
    /// assert_eq!(Loaded::found(Record::new(UnixTime::from_secs(100))).reject_reason(), None);
    /// ```
    #[must_use]
    pub fn reject_reason(&self) -> Option<RejectReason> {
        self.outcome.as_ref().err().copied()
    }

    /// `true` if the session must be written again.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::Loaded;
    /// use fastsession::time::UnixTime;
    ///
    /// assert!(!Loaded::found(Record::new(UnixTime::from_secs(100))).needs_reseal());
    /// ```
    #[must_use]
    pub fn needs_reseal(&self) -> bool {
        self.reseal
    }

    pub(crate) fn into_parts(self) -> (Result<Record, RejectReason>, bool, Option<Memo>) {
        (self.outcome, self.reseal, self.memo)
    }
}

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

/// What [`Store::save`] is asked.
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
    /// A save of `record` (its state after the request, `last_active` already `now`).
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

    /// The longest cookie value that fits, if the caller said
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
    /// ([`Loaded::with_memo`]).
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

    /// What the store attached to this session when it loaded it, if anything.
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

    /// The cookie's full name, prefix included.
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

    /// Why the session is saved.
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

    /// The session as the request leaves it; [`Record::id`] is the id it was loaded under.
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

    /// What the request changed.
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

    /// The expiry policy (stores use [`Expiry::deadline`] for their own TTLs).
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

    /// The current time.
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

impl fmt::Debug for LoadRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadRequest")
            .field("cookie_name", &self.cookie_name)
            .field("cookie_value_len", &self.cookie_value.len())
            .field("session_id", &self.session_id)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("outcome", &self.outcome)
            .field("reseal", &self.reseal)
            .field("memo", &self.memo.is_some())
            .finish()
    }
}

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
