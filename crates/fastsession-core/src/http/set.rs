//! What a framework adapter serves: the sessions of an app and how failures are answered.

use std::any::TypeId;

use super::SessionConfig;

/// What an adapter does when saving the sessions after a successful handler fails.
///
/// Loading failures are the handler's to answer: the adapters' extractors turn them into an
/// opaque 503/500, and a handler that can do without the session asks for an optional one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreErrorPolicy {
    /// Replace the handler's response with an empty one with the status of
    /// [`Error::status`](crate::Error::status): the client never sees a success for a change that was not saved.
    /// Cookies of the sessions that did save are still set.
    #[default]
    Fail,
    /// Log the failure and send the handler's response without that session's cookie: for
    /// routes whose answer does not depend on the session being saved.
    KeepResponse,
}

/// The sessions an app's requests may use: a default one and named others (possibly from
/// other stores), with the [`StoreErrorPolicy`]. The framework adapters are built from one.
///
/// A named session is named by a type of the app's own (any `'static` type, usually an
/// empty struct): the handler asks for [`NamedSession<Prefs>`](super::NamedSession) and the
/// set was given `with_named::<Prefs>(..)`, so a name cannot be misspelt in one place only.
///
/// # Examples
///
/// ```
/// use fastsession::{Key, KeyRing};
/// use fastsession::http::{CookieConfig, SessionConfig, SessionSet, StoreErrorPolicy};
/// use fastsession::{CookieStore, MemoryStore};
///
/// struct Prefs; // names the second session
///
/// let keys = KeyRing::new(Key::generate()?);
/// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?))
///     .with_named::<Prefs>(SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("prefs")?))
///     .with_store_error_policy(StoreErrorPolicy::KeepResponse);
/// assert_eq!(set.named::<Prefs>().map(|c| c.cookie().name()), Some("__Host-prefs"));
/// assert!(set.named::<String>().is_none());
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionSet {
    default: SessionConfig,
    named: Vec<Named>,
    policy: StoreErrorPolicy,
}

#[derive(Debug, Clone)]
struct Named {
    id: TypeId,
    type_name: &'static str,
    config: SessionConfig,
}

impl SessionSet {
    /// Returns a set whose default session is described by `config`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig, SessionSet};
    /// use fastsession::MemoryStore;
    ///
    /// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?));
    /// assert_eq!(set.default_session().cookie().name(), "__Host-id");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(config: SessionConfig) -> Self {
        config.warn_if_remembered_sessions_end_before_their_cookie();
        SessionSet {
            default: config,
            named: Vec::new(),
            policy: StoreErrorPolicy::default(),
        }
    }

    /// Adds a session named by the type `N`, which handlers ask for as
    /// [`NamedSession<N>`](super::NamedSession). Giving `N` twice keeps the later config.
    ///
    /// # Panics
    ///
    /// At start-up, if `config`'s cookie name is another session's: two sessions with one
    /// cookie would overwrite each other in the browser.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig, SessionSet};
    /// use fastsession::MemoryStore;
    ///
    /// struct Cart;
    ///
    /// let login = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let cart = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("cart")?);
    /// let set = SessionSet::new(login).with_named::<Cart>(cart);
    /// assert!(set.named::<Cart>().is_some());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_named<N: 'static>(mut self, config: SessionConfig) -> Self {
        let id = TypeId::of::<N>();
        self.named.retain(|n| n.id != id);
        let cookie = config.cookie().name();
        let taken = std::iter::once(&self.default)
            .chain(self.named.iter().map(|n| &n.config))
            .any(|c| c.cookie().name() == cookie);
        assert!(
            !taken,
            "the named session `{}` has the cookie name `{cookie}` of another session; \
             give each session its own cookie name",
            std::any::type_name::<N>()
        );
        config.warn_if_remembered_sessions_end_before_their_cookie();
        self.named.push(Named {
            id,
            type_name: std::any::type_name::<N>(),
            config,
        });
        self
    }

    /// Sets what happens when saving fails after a successful handler (default
    /// [`StoreErrorPolicy::Fail`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::http::{CookieConfig, SessionConfig, SessionSet, StoreErrorPolicy};
    /// use fastsession::MemoryStore;
    ///
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let set = SessionSet::new(config).with_store_error_policy(StoreErrorPolicy::KeepResponse);
    /// assert_eq!(set.store_error_policy(), StoreErrorPolicy::KeepResponse);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_store_error_policy(mut self, policy: StoreErrorPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Returns the default session's configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig, SessionSet};
    /// use fastsession::MemoryStore;
    ///
    /// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?));
    /// assert_eq!(set.default_session().cookie().name(), "__Host-id");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn default_session(&self) -> &SessionConfig {
        &self.default
    }

    /// Returns the configuration of the session named by `N`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, SessionConfig, SessionSet};
    /// use fastsession::MemoryStore;
    ///
    /// struct Prefs;
    /// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?));
    /// assert!(set.named::<Prefs>().is_none());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn named<N: 'static>(&self) -> Option<&SessionConfig> {
        let id = TypeId::of::<N>();
        self.named.iter().find(|n| n.id == id).map(|n| &n.config)
    }

    /// The type names of the named sessions, for error messages.
    pub(crate) fn named_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.named.iter().map(|n| n.type_name)
    }

    /// Returns the policy for failed saves.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::http::{CookieConfig, SessionConfig, SessionSet, StoreErrorPolicy};
    /// use fastsession::MemoryStore;
    ///
    /// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?));
    /// assert_eq!(set.store_error_policy(), StoreErrorPolicy::Fail);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn store_error_policy(&self) -> StoreErrorPolicy {
        self.policy
    }
}
