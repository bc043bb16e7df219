//! actix-web 4 extractors (feature `actix`): [`Session`], [`NamedSession`], [`Flashes`] and
//! [`Sessions`], and [`Error`] as a [`ResponseError`].
//!
//! actix-web turns any extraction error of `Option<T>` into `None`, so `Option<Session>` is
//! `None` when the store failed; it is also `None` when the middleware is missing (actix-web
//! offers no way to tell the two apart there), and the error log says which.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use super::{Flashes, NamedSession, Sessions};
use crate::error::Error;
use crate::session::Session;

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl Sessions {
    /// The handle the actix-web middleware put into `request`'s extensions.
    fn of_actix(request: &impl HttpMessage) -> Result<Self, Error> {
        let found = request.extensions().get::<Sessions>().cloned();
        found.ok_or_else(super::request::not_installed)
    }
}

/// Logs an extractor's failure when it happens: actix-web's `Option<T>` turns it into `None`
/// without ever making it a response.
fn logged<T>(result: Result<T, Error>) -> Result<T, Error> {
    if let Err(error) = &result {
        error.log("loading the session");
    }
    result
}

/// The request's sessions from an actix-web request or service request (in a middleware of
/// your own), without an extractor.
///
/// Guards get no such method: a guard is synchronous, and loading a session may be a store
/// round trip. Route on the session in a handler or a middleware instead.
///
/// # Examples
///
/// ```
/// use actix_web::HttpRequest;
/// use fastsession::http::SessionExt;
///
/// async fn whoami(request: HttpRequest) -> Result<String, fastsession::Error> {
///     let session = request.sessions()?.session().await?;
///     Ok(session.user_id().unwrap_or_default())
/// }
/// # let _ = whoami;
/// ```
pub trait SessionExt {
    /// The handle the session middleware put into the request.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotInstalled`](crate::ErrorKind::NotInstalled) if no session middleware
    /// wraps the route.
    fn sessions(&self) -> Result<Sessions, Error>;
}

impl SessionExt for HttpRequest {
    fn sessions(&self) -> Result<Sessions, Error> {
        Sessions::of_actix(self)
    }
}

impl SessionExt for ServiceRequest {
    fn sessions(&self) -> Result<Sessions, Error> {
        Sessions::of_actix(self)
    }
}

/// An empty response with [`Error::status`]; the error and its sources go to the log
/// (`warn` for store failures, `debug` for values of another type, `error` for set-up bugs),
/// never to the client (actix-web's default would put the `Display` text in the body).
impl ResponseError for Error {
    fn status_code(&self) -> actix_web::http::StatusCode {
        // actix-web 4 has the `http` 0.2 types: convert by number.
        actix_web::http::StatusCode::from_u16(self.status().as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.log("answering a request");
        HttpResponse::new(self.status_code())
    }
}

/// Takes the handle from the request's extensions; loads nothing.
impl FromRequest for Sessions {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(logged(Sessions::of_actix(request)))
    }
}

/// The default session, loaded on first use; a store failure fails the request with an
/// empty 503.
impl FromRequest for Session {
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = Sessions::of_actix(request);
        Box::pin(async move { logged(async { sessions?.session().await }.await) })
    }
}

impl<N: 'static> FromRequest for NamedSession<N> {
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = Sessions::of_actix(request);
        Box::pin(async move { logged(async { NamedSession::of(&sessions?).await }.await) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Flashes<T> {
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = Sessions::of_actix(request);
        Box::pin(async move { logged(async { Flashes::of(&sessions?).await }.await) })
    }
}
