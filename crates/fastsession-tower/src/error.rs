//! The adapter's error type.

use std::error::Error as StdError;
use std::fmt;

use http::StatusCode;

/// What went wrong between the adapter and the sessions of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No [`SessionLayer`](crate::SessionLayer) ran before the code that asked for a session.
    LayerMissing,
    /// A named session was asked for that the layer was not given.
    UnknownSession,
    /// Loading or saving a session failed; [`source`](StdError::source) is the
    /// [`fastsession_core::Error`].
    Session,
}

/// The error of this crate. Its status is 503 for a store failure, 409 when the session
/// was ended by another request meanwhile, and 500 otherwise; as a response (with the
/// `axum` feature) it has that status and an empty body: details go to the log, never to the
/// client.
///
/// # Examples
///
/// ```
/// use fastsession_tower::{Error, ErrorKind};
///
/// let e = Error::from(fastsession_core::Error::store("down", std::io::Error::other("refused")));
/// assert_eq!(e.kind(), ErrorKind::Session);
/// assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    /// The unknown session's name, as the application's code spelled it.
    name: Option<Box<str>>,
    source: Option<fastsession_core::Error>,
}

impl Error {
    pub(crate) fn layer_missing() -> Self {
        Error {
            kind: ErrorKind::LayerMissing,
            name: None,
            source: None,
        }
    }

    pub(crate) fn unknown_session(name: &str) -> Self {
        Error {
            kind: ErrorKind::UnknownSession,
            name: Some(name.into()),
            source: None,
        }
    }

    /// What kind of error this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status a client gets for this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.source.as_ref().map_or(
            StatusCode::INTERNAL_SERVER_ERROR,
            fastsession_core::http::status_for,
        )
    }

    /// The core error behind a [`ErrorKind::Session`] error.
    #[must_use]
    pub fn session_error(&self) -> Option<&fastsession_core::Error> {
        self.source.as_ref()
    }
}

impl From<fastsession_core::Error> for Error {
    fn from(source: fastsession_core::Error) -> Self {
        Error {
            kind: ErrorKind::Session,
            name: None,
            source: Some(source),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::LayerMissing => {
                f.write_str("no SessionLayer ran for this request (add it to the service stack)")
            }
            ErrorKind::UnknownSession => write!(
                f,
                "no session named `{}` was given to the SessionLayer",
                self.name.as_deref().unwrap_or_default()
            ),
            ErrorKind::Session => f.write_str("session load or save failed"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn StdError + 'static))
    }
}
