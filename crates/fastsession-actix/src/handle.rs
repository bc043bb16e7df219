//! The per-request handle a handler asks for sessions.

use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use fastsession_core::Session;
use fastsession_core::http::{SessionConfig, SessionSet, Sessions};

use crate::Error;

/// The sessions of one request, as [`SessionMiddleware`](crate::SessionMiddleware) put them
/// into its extensions; an extractor.
///
/// Cheap to clone: clones share the request's sessions. Nothing is loaded until
/// [`session`](Self::session) or [`named`](Self::named) is called; each session is loaded at
/// most once per request, whether through this handle or the extractors.
///
/// # Examples
///
/// A handler that must keep its changes even if it then fails saves them itself:
///
/// ```
/// use actix_web::HttpResponse;
/// use fastsession_actix::{Error, RequestSessions};
///
/// async fn checkout(sessions: RequestSessions) -> Result<HttpResponse, Error> {
///     let session = sessions.session().await?;
///     session.insert("step", "payment")?;
///     sessions.save().await?; // kept, and its cookie sent, even though this is a 502
///     Ok(HttpResponse::BadGateway().body("payment provider down"))
/// }
/// # let _ = checkout;
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

    /// The handle of `request`, or the error (logged) that the middleware is missing.
    pub(crate) fn of(request: &HttpRequest) -> Result<Self, Error> {
        request
            .extensions()
            .get::<RequestSessions>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!(
                    target: "fastsession",
                    path = request.path(),
                    "SessionMiddleware is not installed for this route; \
                     wrap the App or scope with fastsession_actix::SessionMiddleware"
                );
                Error::middleware_missing()
            })
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

    /// The session given to the middleware as `name`, loaded on first use.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownSession`](crate::ErrorKind::UnknownSession) if the middleware has
    /// no session of that name; [`ErrorKind::Session`](crate::ErrorKind::Session) if the
    /// store failed.
    pub async fn named(&self, name: &str) -> Result<Session, Error> {
        let config = self
            .named_config(name)
            .ok_or_else(|| Error::unknown_session(name))?;
        Ok(self.sessions.get(config).await?)
    }

    /// Saves the sessions that changed now, before the handler returns: what a handler that
    /// may then fail (5xx, or an error) must do to keep its changes. Their cookies are added
    /// to the response by the middleware, whatever its status.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Session`](crate::ErrorKind::Session) with the first failure.
    pub async fn save(&self) -> Result<(), Error> {
        Ok(self.sessions.save().await?)
    }

    /// The default session's configuration.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        self.shared.default_session()
    }

    /// The configuration of the session named `name`, if the middleware has one.
    #[must_use]
    pub fn named_config(&self, name: &str) -> Option<&SessionConfig> {
        self.shared.named(name)
    }

    /// The request's registry, for sessions the middleware was not configured with and for
    /// settings such as
    /// [`set_cache_control_no_store`](Sessions::set_cache_control_no_store).
    #[must_use]
    pub fn registry(&self) -> &Sessions {
        &self.sessions
    }
}

impl fmt::Debug for RequestSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSessions")
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

/// Takes the handle from the request's extensions; loads nothing.
///
/// Fails with [`ErrorKind::MiddlewareMissing`](crate::ErrorKind::MiddlewareMissing) (a 500,
/// and an error in the log) if no [`SessionMiddleware`](crate::SessionMiddleware) wraps the
/// route.
impl FromRequest for RequestSessions {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(RequestSessions::of(request))
    }
}
