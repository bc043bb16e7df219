//! actix-web extractors.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::{Error, RequestSessions};

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Logs a failure the client will only see as an opaque status.
fn logged(error: Error) -> Error {
    if let Some(source) = error.session_error() {
        fastsession_core::events::report_failure(fastsession_core::events::Action::Load, source);
    } else {
        tracing::error!(target: "fastsession", error = %error, "no session for this request");
    }
    error
}

/// The default session of the request, as an actix-web extractor.
///
/// Derefs to [`fastsession_core::Session`]. Extracting it loads the session (once per
/// request); a store failure fails the request with an opaque 503 (500 for other failures,
/// including a missing [`SessionMiddleware`](crate::SessionMiddleware)), logged with
/// `tracing`.
///
/// A handler that can do without the session takes `Option<Session>`: actix-web's own
/// `impl<T: FromRequest> FromRequest for Option<T>` turns any extraction error into `None`,
/// so it is `None` when the store failed. It is also `None` when the middleware is missing
/// (actix-web offers no way to tell the two apart there); the error log says which.
///
/// # Examples
///
/// ```
/// use fastsession_actix::{Error, Session};
///
/// async fn counter(session: Session) -> Result<String, Error> {
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

impl FromRequest for Session {
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = RequestSessions::of(request);
        Box::pin(async move {
            let session = sessions?.session().await.map_err(logged)?;
            Ok(Session(session))
        })
    }
}

/// Names a session given to [`SessionMiddleware::with_named`](crate::SessionMiddleware::with_named),
/// for the [`NamedSession`] extractor.
///
/// # Examples
///
/// ```
/// use fastsession_actix::{NamedSession, SessionName};
///
/// struct Prefs;
/// impl SessionName for Prefs {
///     const NAME: &'static str = "prefs";
/// }
///
/// async fn theme(prefs: NamedSession<Prefs>) -> Result<String, fastsession_actix::Error> {
///     Ok(prefs.get::<String>("theme")?.unwrap_or_else(|| "light".to_owned()))
/// }
/// # let _ = theme;
/// ```
pub trait SessionName {
    /// The name the session was given to the middleware under.
    const NAME: &'static str;
}

/// A named session of the request (see [`SessionName`]), as an actix-web extractor; it can
/// live in a different store than the default session, and both are saved together.
///
/// Derefs to [`fastsession_core::Session`]. A store failure fails the request like
/// [`Session`]'s; a name the middleware does not know is a 500 (and an error in the log).
/// `Option<NamedSession<N>>` is `None` instead.
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

impl<N: SessionName + 'static> FromRequest for NamedSession<N> {
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = RequestSessions::of(request);
        Box::pin(async move {
            let session = sessions?.named(N::NAME).await.map_err(logged)?;
            Ok(NamedSession {
                session,
                name: PhantomData,
            })
        })
    }
}

/// The default session's flash messages, taken (so consumed) when the handler runs; an
/// actix-web extractor.
///
/// The session is saved without them after the handler (unless the response is a 5xx or an
/// error). A message that is not a `T` fails the request with a 500 and stays in the session.
///
/// # Examples
///
/// ```
/// use fastsession_actix::Flashes;
///
/// async fn page(Flashes(messages): Flashes) -> String {
///     messages.join("\n")
/// }
/// # let _ = page;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flashes<T = String>(pub Vec<T>);

impl<T> Flashes<T> {
    /// The messages, oldest first.
    #[must_use]
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T> Deref for Flashes<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Flashes<T> {
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = RequestSessions::of(request);
        Box::pin(async move {
            let session = sessions?.session().await.map_err(logged)?;
            let flashes = session.take_flashes::<T>().map_err(|e| logged(e.into()))?;
            Ok(Flashes(flashes))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles may cross threads (spawned tasks, `web::block`); actix-web itself needs none of
    /// this, but applications do.
    #[test]
    fn handles_are_send() {
        fn send<T: Send + Sync>() {}
        struct Name;
        impl SessionName for Name {
            const NAME: &'static str = "n";
        }
        send::<Session>();
        send::<NamedSession<Name>>();
        send::<Flashes>();
        send::<RequestSessions>();
        send::<Error>();
    }

    #[test]
    fn wrappers_give_their_session_back() {
        let core = fastsession_core::Session::new_detached();
        core.insert("k", 1).unwrap();
        let session = Session(core.clone());
        assert_eq!(session.get::<i32>("k").unwrap(), Some(1));
        assert_eq!(session.into_inner().get::<i32>("k").unwrap(), Some(1));
        let named = NamedSession::<()> {
            session: core,
            name: PhantomData,
        };
        assert_eq!(named.clone().into_inner().len(), 1);
        let flashes = Flashes(vec!["a".to_owned()]);
        assert_eq!(flashes.len(), 1);
        assert_eq!(flashes.into_inner(), ["a"]);
    }
}
