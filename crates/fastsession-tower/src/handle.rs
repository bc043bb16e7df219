//! The per-request handle a handler asks for sessions.

use std::fmt;
use std::sync::Arc;

use fastsession_core::Session;
use fastsession_core::http::{SessionSet, Sessions, StoreErrorPolicy};

use crate::Error;

/// The sessions of one request, as [`SessionLayer`](crate::SessionLayer) put them into its
/// extensions.
///
/// Cheap to clone: clones share the request's sessions. Nothing is loaded until
/// [`session`](Self::session) or [`named`](Self::named) is called; each session is loaded at
/// most once per request.
///
/// # Examples
///
/// A plain tower (or hyper) handler:
///
/// ```
/// use fastsession_tower::RequestSessions;
/// use http::{Request, Response};
///
/// async fn handler(request: Request<()>) -> Result<Response<String>, fastsession_tower::Error> {
///     let sessions = request
///         .extensions()
///         .get::<RequestSessions>()
///         .ok_or_else(RequestSessions::missing)?;
///     let session = sessions.session().await?;
///     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
///     session.insert("visits", visits)?;
///     Ok(Response::new(format!("visit {visits}")))
/// }
/// # let _ = handler;
/// ```
#[derive(Clone)]
pub struct RequestSessions {
    sessions: Sessions,
    shared: Arc<SessionSet>,
}

impl RequestSessions {
    pub(crate) fn new(sessions: Sessions, shared: Arc<SessionSet>) -> Self {
        RequestSessions { sessions, shared }
    }

    /// The error for a request that no [`SessionLayer`](crate::SessionLayer) saw: the
    /// handle is missing from its extensions.
    #[must_use]
    pub fn missing() -> Error {
        tracing::error!(target: "fastsession", "no SessionLayer ran for this request");
        Error::layer_missing()
    }

    /// The default session, loaded on first use.
    ///
    /// A missing, invalid or expired cookie gives a fresh session (with a `tracing` event);
    /// that is not an error.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Session`](crate::ErrorKind::Session) if the store failed.
    pub async fn session(&self) -> Result<Session, Error> {
        Ok(self.sessions.get(self.shared.default_session()).await?)
    }

    /// The session given to the layer as `name`, loaded on first use.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownSession`](crate::ErrorKind::UnknownSession) if the layer has no
    /// session of that name; [`ErrorKind::Session`](crate::ErrorKind::Session) if the store
    /// failed.
    pub async fn named(&self, name: &str) -> Result<Session, Error> {
        let config = self
            .shared
            .named(name)
            .ok_or_else(|| Error::unknown_session(name))?;
        Ok(self.sessions.get(config).await?)
    }

    /// Saves the sessions that changed now, before the handler returns: what a handler that
    /// may then fail (5xx) must do to keep its changes. Their cookies are added to the
    /// response by the layer.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Session`](crate::ErrorKind::Session) with the first failure.
    pub async fn save(&self) -> Result<(), Error> {
        Ok(self.sessions.save().await?)
    }

    /// The sessions the layer serves.
    #[must_use]
    pub fn set(&self) -> &SessionSet {
        &self.shared
    }

    /// The request's registry, for sessions the layer was not configured with.
    #[must_use]
    pub fn registry(&self) -> &Sessions {
        &self.sessions
    }

    /// The layer's own handle, for its last save.
    pub(crate) fn registry_mut(&mut self) -> &mut Sessions {
        &mut self.sessions
    }

    pub(crate) fn policy(&self) -> StoreErrorPolicy {
        self.shared.store_error_policy()
    }
}

impl fmt::Debug for RequestSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSessions")
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}
