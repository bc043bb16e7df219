//! One kind of session: a store, its cookie, its expiry and its clock.

use std::fmt;
use std::sync::Arc;

use super::CookieConfig;
use crate::session::Expiry;
use crate::store::Store;
use crate::time::{Clock, SystemClock};

/// The default limit on a `Set-Cookie` header (name, value and attributes), in bytes: the
/// least that browsers promise to keep (RFC 6265 §6.1).
pub const MAX_SET_COOKIE_LEN: usize = 4096;

/// Everything needed to load and save one named session: the store, the cookie, the expiry
/// policy and the clock. Built once at start-up and shared (cloning is cheap).
///
/// The cookie's name identifies the session within a request: asking a
/// [`Sessions`](super::Sessions) registry twice for configurations with the same cookie name
/// returns the same session.
///
/// # Examples
///
/// ```
/// use fastsession_core::codec::{Key, KeyRing};
/// use fastsession_core::http::{CookieConfig, SessionConfig};
/// use fastsession_core::session::Expiry;
/// use fastsession_core::store::CookieStore;
/// use std::time::Duration;
///
/// let keys = KeyRing::new(Key::generate()?);
/// let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("session")?)
///     .with_expiry(Expiry::new(Duration::from_secs(1800), Duration::from_secs(43_200))?);
/// assert_eq!(config.cookie().name(), "__Host-session");
/// # Ok::<(), fastsession_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    store: Arc<dyn Store>,
    cookie: CookieConfig,
    expiry: Expiry,
    clock: Arc<dyn Clock>,
    max_set_cookie_len: usize,
}

impl SessionConfig {
    /// Sessions in `store`, named and sent by `cookie`, with the default [`Expiry`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert_eq!(sessions.cookie().name(), "__Host-id");
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn new(store: impl Store, cookie: CookieConfig) -> Self {
        SessionConfig::with_shared_store(Arc::new(store), cookie)
    }

    /// Like [`new`](Self::new), for a store shared with other configurations.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// use std::sync::Arc;
    ///
    /// // One store behind two cookies: the app's session and a preferences session.
    /// let store = Arc::new(MemoryStore::new()?);
    /// let app = SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id")?);
    /// let prefs = SessionConfig::with_shared_store(store, CookieConfig::new("prefs")?);
    /// assert!(Arc::ptr_eq(app.store(), prefs.store()));
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_shared_store(store: Arc<dyn Store>, cookie: CookieConfig) -> Self {
        SessionConfig {
            inner: Arc::new(Inner {
                store,
                cookie,
                expiry: Expiry::default(),
                clock: Arc::new(SystemClock),
                max_set_cookie_len: MAX_SET_COOKIE_LEN,
            }),
        }
    }

    /// Sets the expiry policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// // Ends after 2 hours unused, and 12 hours after login whatever happens.
    /// let expiry = Expiry::new(Duration::from_secs(2 * 3600), Duration::from_secs(12 * 3600))?;
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?).with_expiry(expiry);
    /// assert_eq!(sessions.expiry().idle_timeout(), Duration::from_secs(7200));
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_expiry(mut self, expiry: Expiry) -> Self {
        Arc::make_mut(&mut self.inner).expiry = expiry;
        self
    }

    /// Sets the clock every expiry decision reads (tests inject a
    /// [`ManualClock`](crate::time::ManualClock)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// use fastsession_core::time::{ManualClock, UnixTime};
    ///
    /// // In a test: move time forward by hand to see sessions expire.
    /// let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?).with_clock(clock.clone());
    /// assert_eq!(sessions.clock().now(), UnixTime::from_secs(1_700_000_000));
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        Arc::make_mut(&mut self.inner).clock = Arc::new(clock);
        self
    }

    /// Sets the largest `Set-Cookie` header a save may produce (default
    /// [`MAX_SET_COOKIE_LEN`]); lower it for clients with smaller limits.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)
    ///     .with_max_set_cookie_len(2048);
    /// assert_eq!(sessions.max_set_cookie_len(), 2048);
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_max_set_cookie_len(mut self, len: usize) -> Self {
        Arc::make_mut(&mut self.inner).max_set_cookie_len = len;
        self
    }

    /// The store.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let _store = sessions.store(); // an `Arc<dyn Store>`
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The cookie settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert!(sessions.cookie().is_secure());
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn cookie(&self) -> &CookieConfig {
        &self.inner.cookie
    }

    /// The expiry policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// use fastsession_core::session::Expiry;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert_eq!(*sessions.expiry(), Expiry::default());
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn expiry(&self) -> &Expiry {
        &self.inner.expiry
    }

    /// The clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// use fastsession_core::time::UnixTime;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert!(sessions.clock().now() <= UnixTime::now());
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// The largest `Set-Cookie` header a save may produce.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::http::{CookieConfig, SessionConfig};
    /// use fastsession_core::store::MemoryStore;
    ///
    /// use fastsession_core::http::MAX_SET_COOKIE_LEN;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert_eq!(sessions.max_set_cookie_len(), MAX_SET_COOKIE_LEN);
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn max_set_cookie_len(&self) -> usize {
        self.inner.max_set_cookie_len
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("store", &self.inner.store)
            .field("cookie", &self.inner.cookie)
            .field("expiry", &self.inner.expiry)
            .field("clock", &self.inner.clock)
            .field("max_set_cookie_len", &self.inner.max_set_cookie_len)
            .finish()
    }
}
