//! What a framework adapter serves: the sessions of an app and how failures are answered.

use http::StatusCode;

use super::SessionConfig;
use crate::error::{Error, ErrorKind};

/// What an adapter does when saving the sessions after a successful handler fails.
///
/// Loading failures are the handler's to answer: the adapters' extractors turn them into an
/// opaque 503/500, and a handler that can do without the session asks for an optional one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreErrorPolicy {
    /// Replace the handler's response with an empty one with the status of
    /// [`status_for`]: the client never sees a success for a change that was not saved.
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
/// # Examples
///
/// ```
/// use fastsession_core::codec::{Key, KeyRing};
/// use fastsession_core::http::{CookieConfig, SessionConfig, SessionSet, StoreErrorPolicy};
/// use fastsession_core::store::{CookieStore, MemoryStore};
///
/// let keys = KeyRing::new(Key::generate(1)?);
/// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?))
///     .with_named("prefs", SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("prefs")?))
///     .with_store_error_policy(StoreErrorPolicy::KeepResponse);
/// assert_eq!(set.named("prefs").map(|c| c.cookie().name()), Some("__Host-prefs"));
/// assert!(set.named("other").is_none());
/// # Ok::<(), fastsession_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionSet {
    default: SessionConfig,
    named: Vec<(&'static str, SessionConfig)>,
    policy: StoreErrorPolicy,
}

impl SessionSet {
    /// A set whose default session is described by `config`.
    #[must_use]
    pub fn new(config: SessionConfig) -> Self {
        SessionSet {
            default: config,
            named: Vec::new(),
            policy: StoreErrorPolicy::default(),
        }
    }

    /// Adds a session asked for by `name`. A name given twice keeps the later config. Its
    /// cookie name must differ from the other sessions' (sessions with one cookie name are
    /// one session).
    #[must_use]
    pub fn with_named(mut self, name: &'static str, config: SessionConfig) -> Self {
        self.named.retain(|(n, _)| *n != name);
        self.named.push((name, config));
        self
    }

    /// Sets what happens when saving fails after a successful handler (default
    /// [`StoreErrorPolicy::Fail`]).
    #[must_use]
    pub fn with_store_error_policy(mut self, policy: StoreErrorPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The default session's configuration.
    #[must_use]
    pub fn default_session(&self) -> &SessionConfig {
        &self.default
    }

    /// The configuration of the session named `name`, if there is one.
    #[must_use]
    pub fn named(&self, name: &str) -> Option<&SessionConfig> {
        self.named.iter().find(|(n, _)| *n == name).map(|(_, c)| c)
    }

    /// The policy for failed saves.
    #[must_use]
    pub fn store_error_policy(&self) -> StoreErrorPolicy {
        self.policy
    }
}

/// The status a client gets for a failed load or save: 503 when the store failed or is full
/// (both temporary), 409 when another request ended the session meanwhile, 400 for input the
/// store cannot hold, 500 otherwise.
///
/// # Examples
///
/// ```
/// use fastsession_core::Error;
/// use fastsession_core::http::status_for;
///
/// let down = Error::store("no connection", std::io::Error::other("refused"));
/// assert_eq!(status_for(&down), http::StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[must_use]
pub fn status_for(error: &Error) -> StatusCode {
    match error.kind() {
        ErrorKind::Store | ErrorKind::StoreFull => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::SessionEnded => StatusCode::CONFLICT,
        ErrorKind::Unstorable => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
