//! One kind of session: a store, its cookie, its expiry and its clock.

use std::fmt;
use std::sync::Arc;

use super::CookieConfig;
use crate::codec::{KeyRing, SIGNED_OVERHEAD, Signer};
use crate::session::{Expiry, ID_TEXT_LEN};
use crate::store::{CookieContent, Store};
use crate::time::{Clock, SystemClock};

/// The default limit on a `Set-Cookie` header (name, value and attributes), in bytes: the
/// least that browsers promise to keep (RFC 6265 §6.1).
pub const MAX_SET_COOKIE_LEN: usize = 4096;

/// The purpose the keys that sign session id cookies are derived for.
const SIGNED_ID_PURPOSE: &str = "signed-session-id";

/// Length of a signed session id cookie value: 32 id bytes and [`SIGNED_OVERHEAD`], in
/// unpadded base64url.
pub(crate) const SIGNED_ID_LEN: usize = (4 * (32 + SIGNED_OVERHEAD)).div_ceil(3);

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
/// use fastsession::{Key, KeyRing};
/// use fastsession::{CookieConfig, SessionConfig};
/// use fastsession::Expiry;
/// use fastsession::CookieStore;
/// use std::time::Duration;
///
/// let keys = KeyRing::new(Key::generate()?);
/// let expiry = Expiry::default()
///     .with_idle_timeout(Duration::from_secs(1800))?
///     .with_absolute_lifetime(Duration::from_secs(43_200))?;
/// let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("session")?)
///     .with_expiry(expiry);
/// assert_eq!(config.cookie().name(), "__Host-session");
/// # Ok::<(), fastsession::Error>(())
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
    id_signer: Option<Signer>,
}

impl SessionConfig {
    /// Returns a configuration of sessions in `store`, named and sent by `cookie`, with the default
    /// [`Expiry`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert_eq!(sessions.cookie().name(), "__Host-id");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(store: impl Store, cookie: CookieConfig) -> Self {
        SessionConfig::with_shared_store(Arc::new(store), cookie)
    }

    /// Returns a configuration like [`new`](Self::new), for a store shared with other
    /// configurations.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// use std::sync::Arc;
    ///
    /// // One store behind two cookies: the app's session and a preferences session.
    /// let store = Arc::new(MemoryStore::new()?);
    /// let app = SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id")?);
    /// let prefs = SessionConfig::with_shared_store(store, CookieConfig::new("prefs")?);
    /// assert!(Arc::ptr_eq(app.store(), prefs.store()));
    /// # Ok::<(), fastsession::Error>(())
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
                id_signer: None,
            }),
        }
    }

    /// Sets the expiry policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// // Ends after 2 hours unused, and 12 hours after login whatever happens.
    /// let expiry = Expiry::default()
    ///     .with_idle_timeout(Duration::from_secs(2 * 3600))?
    ///     .with_absolute_lifetime(Duration::from_secs(12 * 3600))?;
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?).with_expiry(expiry);
    /// assert_eq!(sessions.expiry().idle_timeout(), Duration::from_secs(7200));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_expiry(mut self, expiry: Expiry) -> Self {
        Arc::make_mut(&mut self.inner).expiry = expiry;
        self
    }

    /// Says at start-up (when a middleware's [`SessionSet`](super::SessionSet) takes this
    /// config) when "remember me" would not keep a user logged in for as long as the browser
    /// keeps the cookie: the server ends the session first and the user, who chose to be
    /// remembered, finds themselves logged out.
    pub(crate) fn warn_if_remembered_sessions_end_before_their_cookie(&self) {
        let cookie = self.inner.cookie.max_age();
        let expiry = &self.inner.expiry;
        let server = expiry
            .remembered_idle_timeout()
            .min(expiry.absolute_lifetime());
        if server < cookie {
            tracing::warn!(
                target: "fastsession",
                cookie = self.inner.cookie.name(),
                cookie_max_age_secs = cookie.as_secs(),
                server_secs = server.as_secs(),
                "a remembered session ends on the server before its cookie expires in the \
                 browser: raise Expiry::with_remembered_idle_timeout and \
                 Expiry::with_absolute_lifetime, or lower the cookie's max age"
            );
        }
    }

    /// Sets the clock every expiry decision reads (tests inject a
    /// [`ManualClock`](crate::time::ManualClock)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// use fastsession::time::{ManualClock, UnixTime};
    ///
    /// // In a test: move time forward by hand to see sessions expire.
    /// let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?).with_clock(clock.clone());
    /// assert_eq!(sessions.clock().now(), UnixTime::from_secs(1_700_000_000));
    /// # Ok::<(), fastsession::Error>(())
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
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// // A proxy in front limits response headers: keep session cookies well below it.
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)
    ///     .with_max_set_cookie_len(2048);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_max_set_cookie_len(mut self, len: usize) -> Self {
        Arc::make_mut(&mut self.inner).max_set_cookie_len = len;
        self
    }

    /// Signs the session id cookie of a server-side store with the keys of `keys`, so that
    /// an id nobody signed is refused before the store is asked for it.
    ///
    /// The cookie then holds the id and an HMAC-SHA256 tag (71 characters instead of 43)
    /// bound to the cookie's name and the signing key's id. A cookie that is unsigned (a bare
    /// id, as the cookie held before this option was set), forged, tampered with, moved from
    /// another cookie or signed by a key no longer in the ring gives a fresh session with a
    /// security event, and costs no store look-up: a flood of made-up ids reaches no store.
    /// Retired keys still verify; a session whose id a retired key signed is signed again with
    /// the active key in the same response (a refresh of the session in its store).
    ///
    /// Turning this on ends the sessions whose cookies hold bare ids; turning it off ends the
    /// signed ones. The id itself is unchanged, so is every store's data.
    ///
    /// It applies to stores whose cookie holds a session id
    /// ([`CookieContent::SessionId`]): every server-side store. A cookie store's cookie is
    /// sealed or signed already, and a store that parses its own cookie (a migrating store) is
    /// left as it is; for them the option does nothing and [`id_signer`](Self::id_signer) is
    /// `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// let keys = KeyRing::new(Key::generate()?.with_id(2)).with_retired(Key::generate()?)?;
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)
    ///     .with_signed_id(&keys);
    /// assert!(sessions.id_signer().is_some());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_signed_id(mut self, keys: &KeyRing) -> Self {
        if self.inner.store.cookie_content() != CookieContent::SessionId {
            tracing::warn!(
                target: "fastsession",
                cookie = self.inner.cookie.name(),
                "with_signed_id has no effect: this store's cookie is not a session id"
            );
        }
        Arc::make_mut(&mut self.inner).id_signer = Some(Signer::new(keys, SIGNED_ID_PURPOSE));
        self
    }

    /// Returns the signer of the session id cookie, if [`with_signed_id`](Self::with_signed_id) was
    /// set and the store's cookie holds a session id.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::{CookieStore, MemoryStore};
    ///
    /// let keys = KeyRing::new(Key::generate()?);
    /// let plain = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert!(plain.id_signer().is_none());
    /// // A cookie store's cookie is no session id: nothing to sign.
    /// let cookie = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("c")?)
    ///     .with_signed_id(&keys);
    /// assert!(cookie.id_signer().is_none());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn id_signer(&self) -> Option<&Signer> {
        self.inner
            .id_signer
            .as_ref()
            .filter(|_| self.inner.store.cookie_content() == CookieContent::SessionId)
    }

    /// How much longer than a bare id the cookie value is with the id signed.
    pub(crate) fn signed_id_overhead(&self) -> usize {
        self.id_signer().map_or(0, |_| SIGNED_ID_LEN - ID_TEXT_LEN)
    }

    /// Returns the store.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let _store = sessions.store(); // an `Arc<dyn Store>`
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Returns the cookie settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert!(sessions.cookie().is_secure());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn cookie(&self) -> &CookieConfig {
        &self.inner.cookie
    }

    /// Returns the expiry policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// use fastsession::Expiry;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert_eq!(*sessions.expiry(), Expiry::default());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn expiry(&self) -> &Expiry {
        &self.inner.expiry
    }

    /// Returns the clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// use fastsession::time::UnixTime;
    ///
    /// let sessions = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert!(sessions.clock().now() <= UnixTime::now());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// The largest `Set-Cookie` header a save may produce.
    pub(crate) fn max_set_cookie_len(&self) -> usize {
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
            .field("id_signer", &self.inner.id_signer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::SessionSet;
    use crate::store::MemoryStore;
    use std::time::Duration;

    fn config(cookie: CookieConfig) -> SessionConfig {
        SessionConfig::new(MemoryStore::new().expect("store"), cookie)
    }

    #[test]
    fn remembered_sessions_that_end_before_their_cookie_are_reported_at_start_up() {
        let year = Duration::from_secs(365 * 86_400);
        let long_cookie = CookieConfig::builder("id")
            .with_max_age(year)
            .build()
            .expect("cookie");
        let logs = crate::logs_of(|| drop(SessionSet::new(config(long_cookie.clone()))));
        assert!(
            logs.contains("remembered session ends on the server"),
            "{logs}"
        );

        let matching = Expiry::default()
            .with_absolute_lifetime(year)
            .expect("lifetime")
            .with_remembered_idle_timeout(year);
        let set = || SessionSet::new(config(long_cookie.clone()).with_expiry(matching));
        assert!(crate::logs_of(|| drop(set())).is_empty());

        let named = || {
            SessionSet::new(config(CookieConfig::new("login").expect("cookie")))
                .with_named::<()>(config(long_cookie.clone()))
        };
        assert!(crate::logs_of(|| drop(named())).contains("remembered session ends"));
    }
}
