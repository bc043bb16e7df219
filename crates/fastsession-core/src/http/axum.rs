//! axum 0.8 extractors (feature `axum`): [`Session`], `Option<Session>`, [`NamedSession`],
//! [`Flashes`] and [`Sessions`], and [`Error`] as a response.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::{Flashes, NamedSession, Sessions};
use crate::error::{Error, ErrorKind};
use crate::session::Session;

/// An empty response with [`Error::status`]; the error and its sources go to the log
/// (`warn` for store failures, `debug` for values of another type, `error` for set-up bugs),
/// never to the client.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log("answering a request");
        self.status().into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Sessions {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Sessions::of(&parts.extensions)
    }
}

/// The default session; a store failure rejects the request with an empty 503.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Sessions::of(&parts.extensions)?.session().await
    }
}

/// `None` when the store failed (logged); still an error when no middleware ran, since that
/// is a bug in the app's set-up.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Error> {
        match Sessions::of(&parts.extensions)?.session().await {
            Ok(session) => Ok(Some(session)),
            Err(error) if matches!(error.kind(), ErrorKind::Store | ErrorKind::StoreFull) => {
                error.log("loading the session");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

impl<S: Send + Sync, N: 'static> FromRequestParts<S> for NamedSession<N> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        NamedSession::of(&Sessions::of(&parts.extensions)?).await
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Flashes<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Flashes::of(&Sessions::of(&parts.extensions)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs_of;

    #[test]
    fn a_handler_error_is_an_empty_response_and_a_log_line_at_its_level() {
        let cases = [
            (
                Error::store(
                    "redis at 10.0.0.7: refused",
                    std::io::Error::other("refused"),
                ),
                503,
                "WARN",
            ),
            (
                Error::new(ErrorKind::Deserialize, "`n` is not a u64"),
                500,
                "DEBUG",
            ),
            (
                Error::new(ErrorKind::NotInstalled, "no session middleware"),
                500,
                "ERROR",
            ),
        ];
        for (error, status, level) in cases {
            let message = error.to_string();
            let mut response = None;
            let logs = logs_of(|| response = Some(error.into_response()));
            let response = response.expect("response");
            assert_eq!(response.status().as_u16(), status, "{message}");
            assert!(logs.contains(level), "{message}: {logs}");
            assert!(logs.contains(&message), "{message}: {logs}");
            assert_eq!(
                logs.lines().filter(|l| l.contains(&message)).count(),
                1,
                "{logs}"
            );
            let body = response.into_body();
            assert_eq!(
                http_body::Body::size_hint(&body).exact(),
                Some(0),
                "empty body"
            );
        }
    }
}
