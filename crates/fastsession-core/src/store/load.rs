//! What a store is asked at a load, and what it answers.

use std::fmt;

use super::{Memo, RejectReason};
use crate::error::Result;
use crate::session::{Expiry, Record, SessionId};
use crate::time::UnixTime;

/// What [`Store::load`](super::Store::load) is asked.
#[derive(Clone, Copy)]
pub struct LoadRequest<'a> {
    cookie_name: &'a str,
    cookie_value: &'a str,
    session_id: Option<&'a SessionId>,
    expiry: &'a Expiry,
    now: UnixTime,
}

impl<'a> LoadRequest<'a> {
    /// Returns a load of the cookie `cookie_name=cookie_value` at `now`.
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

    /// Returns the cookie's full name, prefix included.
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

    /// Returns the cookie's value as sent (at most 4096 bytes); with a signed id
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

    /// Returns the parsed id, for stores of
    /// [`CookieContent::SessionId`](super::CookieContent::SessionId).
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

    /// Returns the expiry policy to enforce.
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

    /// Returns the current time.
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

/// What [`Store::load`](super::Store::load) found.
#[must_use]
pub struct Loaded {
    // Read by the registry, which takes a load apart.
    pub(crate) outcome: Result<Record, RejectReason>,
    pub(crate) reseal: bool,
    pub(crate) hidden_values: bool,
    pub(crate) memo: Option<Memo>,
}

impl Loaded {
    /// Returns a live session.
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
            hidden_values: false,
            memo: None,
        }
    }

    /// Returns the outcome of a load that found no live session, and why.
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
            hidden_values: false,
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

    /// Says that this store holds values of the session that its record does not show
    /// (another format's, say): [`Session::clear`](crate::Session::clear) must reach them, so
    /// it is a change even when no value is in sight. Without it, clearing a session with no
    /// values is no change, and saves nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::Loaded;
    /// use fastsession::time::UnixTime;
    ///
    /// // A Go session with an entry JSON cannot hold: the record shows none of it.
    /// let loaded = Loaded::found(Record::new(UnixTime::from_secs(100))).with_hidden_values();
    /// assert!(format!("{loaded:?}").contains("hidden_values: true"));
    /// ```
    pub fn with_hidden_values(mut self) -> Self {
        self.hidden_values = true;
        self
    }

    /// Attaches what this store wants back when it saves the session it found: the registry
    /// hands it to the next [`SaveRequest`](super::SaveRequest) for this session, and to no
    /// other store.
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

    /// Returns the record, if found.
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

    /// Returns the reason, if rejected.
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

    /// Returns `true` if the session must be written again.
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
            .field("hidden_values", &self.hidden_values)
            .field("memo", &self.memo.is_some())
            .finish()
    }
}
