//! The room a server-side store gives sessions nobody logged into.

/// The default [`AnonymousBudget::max_sessions`].
pub const DEFAULT_ANONYMOUS_SESSIONS: usize = 100_000;
/// The default [`AnonymousBudget::max_bytes`]: 64 MiB of session data.
pub const DEFAULT_ANONYMOUS_BYTES: usize = 64 << 20;
/// The default bound on one session's data ([`Record::data_len`](crate::session::Record::data_len))
/// in a server-side store: 256 KiB.
pub const DEFAULT_MAX_SESSION_BYTES: usize = 256 << 10;

/// How many sessions without a user id a server-side store keeps, and how many bytes of
/// data they may hold together.
///
/// Anyone can create an anonymous session with one request, so they get a budget of their
/// own: when it is full, the least recently active anonymous session is dropped to make room.
/// Sessions with a user id ([`Session::set_user_id`](crate::Session::set_user_id)) and
/// revocation markers are outside it and are never dropped to make room; a store with no room
/// for them refuses the save with [`ErrorKind::StoreFull`](crate::ErrorKind::StoreFull).
///
/// # Examples
///
/// ```
/// use fastsession::store::{AnonymousBudget, MemoryStore};
///
/// let budget = AnonymousBudget::new(10_000, 16 << 20);
/// let store = MemoryStore::new()?.with_anonymous_budget(budget);
/// assert_eq!(store.backend().anonymous_budget(), budget);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnonymousBudget {
    max_sessions: usize,
    max_bytes: usize,
}

impl AnonymousBudget {
    /// Returns a budget of at most `max_sessions` anonymous sessions holding at most `max_bytes` of
    /// data together (each at least one).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::AnonymousBudget;
    /// use fastsession::MemoryStore;
    ///
    /// // Room for 50 000 visitors who did not log in, 32 MiB of their data.
    /// let store = MemoryStore::new()?.with_anonymous_budget(AnonymousBudget::new(50_000, 32 << 20));
    /// # let _ = store;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(max_sessions: usize, max_bytes: usize) -> Self {
        AnonymousBudget {
            max_sessions: max_sessions.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Returns the most anonymous sessions kept at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::AnonymousBudget;
    ///
    /// assert_eq!(AnonymousBudget::new(50_000, 32 << 20).max_sessions(), 50_000);
    /// // Each bound is at least one.
    /// assert_eq!(AnonymousBudget::new(0, 0).max_sessions(), 1);
    /// ```
    #[must_use]
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Returns the most bytes of data ([`Record::data_len`](crate::session::Record::data_len)) the
    /// anonymous sessions hold together.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{AnonymousBudget, DEFAULT_ANONYMOUS_BYTES};
    ///
    /// assert_eq!(AnonymousBudget::default().max_bytes(), DEFAULT_ANONYMOUS_BYTES);
    /// ```
    #[must_use]
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl Default for AnonymousBudget {
    /// [`DEFAULT_ANONYMOUS_SESSIONS`] sessions, [`DEFAULT_ANONYMOUS_BYTES`] bytes.
    fn default() -> Self {
        AnonymousBudget::new(DEFAULT_ANONYMOUS_SESSIONS, DEFAULT_ANONYMOUS_BYTES)
    }
}
