//! axum extractors.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::{Error, ErrorKind, RequestSessions};

fn handle(parts: &Parts) -> Result<RequestSessions, Error> {
    parts
        .extensions
        .get::<RequestSessions>()
        .cloned()
        .ok_or_else(RequestSessions::missing)
}

fn logged(error: Error) -> Error {
    if let Some(source) = error.session_error() {
        fastsession_core::events::report_failure(fastsession_core::events::Action::Load, source);
    }
    error
}

impl IntoResponse for Error {
    /// The status of [`Error::status`] with an empty body.
    fn into_response(self) -> Response {
        self.status().into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestSessions {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        handle(parts)
    }
}

/// The default session of the request, as an axum extractor.
///
/// Derefs to [`fastsession_core::Session`]. A store failure rejects the request with an
/// opaque 503 (500 for other failures); a handler that can do without the session takes
/// `Option<Session>` instead, which is `None` when the store failed.
///
/// # Examples
///
/// ```
/// use fastsession_tower::Session;
///
/// async fn counter(session: Session) -> Result<String, fastsession_tower::Error> {
///     let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
///     session.insert("n", n)?;
///     Ok(n.to_string())
/// }
///
/// async fn greeting(session: Option<Session>) -> String {
///     let user = session.and_then(|s| s.user_id());
///     format!("hello {}", user.as_deref().unwrap_or("stranger"))
/// }
/// # let _ = (counter, greeting);
/// ```
#[derive(Clone)]
pub struct Session(fastsession_core::Session);

impl Session {
    /// The session handle.
    #[must_use]
    pub fn into_inner(self) -> fastsession_core::Session {
        self.0
    }
}

impl Deref for Session {
    type Target = fastsession_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let sessions = handle(parts)?;
        sessions.session().await.map(Session).map_err(logged)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Error;

    /// `None` when the store failed (logged); still an error when no layer ran, since that is
    /// a bug in the service stack.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Error> {
        let sessions = handle(parts)?;
        match sessions.session().await {
            Ok(session) => Ok(Some(Session(session))),
            Err(error) if error.kind() == ErrorKind::Session => {
                logged(error);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

/// Names a session given to [`SessionLayer::with_named`](crate::SessionLayer::with_named),
/// for the [`NamedSession`] extractor.
///
/// # Examples
///
/// ```
/// use fastsession_tower::{NamedSession, SessionName};
///
/// struct Prefs;
/// impl SessionName for Prefs {
///     const NAME: &'static str = "prefs";
/// }
///
/// async fn theme(prefs: NamedSession<Prefs>) -> Result<String, fastsession_tower::Error> {
///     Ok(prefs.get::<String>("theme")?.unwrap_or_else(|| "light".to_owned()))
/// }
/// # let _ = theme;
/// ```
pub trait SessionName {
    /// The name the session was given to the layer under.
    const NAME: &'static str;
}

/// A named session of the request (see [`SessionName`]), as an axum extractor; it can live in
/// a different store than the default session, and both are saved together.
///
/// A store failure rejects the request like [`Session`]'s; a name the layer does not know is
/// a 500.
pub struct NamedSession<N> {
    session: fastsession_core::Session,
    name: PhantomData<fn() -> N>,
}

impl<N> NamedSession<N> {
    /// The session handle.
    #[must_use]
    pub fn into_inner(self) -> fastsession_core::Session {
        self.session
    }
}

impl<N> Clone for NamedSession<N> {
    fn clone(&self) -> Self {
        NamedSession {
            session: self.session.clone(),
            name: PhantomData,
        }
    }
}

impl<N> Deref for NamedSession<N> {
    type Target = fastsession_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.session
    }
}

impl<N: SessionName> fmt::Debug for NamedSession<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedSession")
            .field("name", &N::NAME)
            .field("session", &self.session)
            .finish()
    }
}

impl<S: Send + Sync, N: SessionName> FromRequestParts<S> for NamedSession<N> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let sessions = handle(parts)?;
        let session = sessions.named(N::NAME).await.map_err(logged)?;
        Ok(NamedSession {
            session,
            name: PhantomData,
        })
    }
}

/// The default session's flash messages, taken (so consumed) when the handler runs.
///
/// # Examples
///
/// ```
/// use fastsession_tower::Flashes;
///
/// async fn page(Flashes(messages): Flashes) -> String {
///     messages.join("\n")
/// }
/// # let _ = page;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flashes<T = String>(pub Vec<T>);

impl<T> Deref for Flashes<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Flashes<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let sessions = handle(parts)?;
        let session = sessions.session().await.map_err(logged)?;
        let flashes = session.take_flashes::<T>().map_err(|e| logged(e.into()))?;
        Ok(Flashes(flashes))
    }
}
