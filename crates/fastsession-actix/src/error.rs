//! The adapter's error type.

use std::error::Error as StdError;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// What went wrong between the adapter and the sessions of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No [`SessionMiddleware`](crate::SessionMiddleware) wraps the route that asked for a
    /// session.
    MiddlewareMissing,
    /// A named session was asked for that the middleware was not given.
    UnknownSession,
    /// Loading, saving or reading a session failed; [`source`](StdError::source) is the
    /// [`fastsession_core::Error`].
    Session,
}

/// The error of this crate.
///
/// As an actix-web [`ResponseError`] it is an opaque response: 503 if the store failed, 409
/// if another request ended the session meanwhile, 500 otherwise, always with an empty
/// body. What went wrong goes to the log (`tracing`, target `fastsession`), never to the
/// client.
///
/// # Examples
///
/// ```
/// use actix_web::ResponseError;
/// use actix_web::http::StatusCode;
/// use fastsession_actix::{Error, ErrorKind};
///
/// let e = Error::from(fastsession_core::Error::store("down", std::io::Error::other("refused")));
/// assert_eq!(e.kind(), ErrorKind::Session);
/// assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    /// The unknown session's name, as the application's code spelled it.
    name: Option<Box<str>>,
    source: Option<fastsession_core::Error>,
}

impl Error {
    pub(crate) fn middleware_missing() -> Self {
        Error {
            kind: ErrorKind::MiddlewareMissing,
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

    /// The core error behind an [`ErrorKind::Session`] error.
    #[must_use]
    pub fn session_error(&self) -> Option<&fastsession_core::Error> {
        self.source.as_ref()
    }
}

/// The status a failed load or save maps to, in actix-web's `http` 0.2 type.
pub(crate) fn status_for(error: Option<&fastsession_core::Error>) -> StatusCode {
    error
        .map(|e| fastsession_core::http::status_for(e).as_u16())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
            ErrorKind::MiddlewareMissing => f.write_str(
                "SessionMiddleware is not installed for this route (wrap the App or scope with it)",
            ),
            ErrorKind::UnknownSession => write!(
                f,
                "no session named `{}` was given to the SessionMiddleware",
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

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_for(self.source.as_ref())
    }

    /// The status with an empty body. actix-web's default would put this error's `Display`
    /// text in the body; clients get nothing of it.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::new(self.status_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_len(response: HttpResponse) -> usize {
        response
            .into_body()
            .try_into_bytes()
            .map_or(usize::MAX, |b| b.len())
    }

    #[test]
    fn statuses_and_empty_bodies() {
        let store = Error::from(fastsession_core::Error::store(
            "redis at 10.0.0.7 refused",
            std::io::Error::other("refused"),
        ));
        assert_eq!(store.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_len(store.error_response()), 0);

        let ended = Error::from(fastsession_core::Error::new(
            fastsession_core::ErrorKind::SessionEnded,
            "ended",
        ));
        assert_eq!(ended.status_code(), StatusCode::CONFLICT);

        for e in [Error::middleware_missing(), Error::unknown_session("prefs")] {
            assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(body_len(e.error_response()), 0);
            assert!(e.session_error().is_none());
        }
    }

    #[test]
    fn display_names_the_problem_and_keeps_the_source() {
        assert!(
            Error::middleware_missing()
                .to_string()
                .contains("SessionMiddleware is not installed")
        );
        assert!(
            Error::unknown_session("prefs")
                .to_string()
                .contains("`prefs`")
        );
        let e = Error::from(fastsession_core::Error::store(
            "down",
            std::io::Error::other("x"),
        ));
        assert_eq!(e.to_string(), "session load or save failed");
        assert!(StdError::source(&e).is_some());
    }
}
