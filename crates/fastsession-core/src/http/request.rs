//! The sessions of one request, as a framework middleware hands them to handlers, and the
//! extractor types built on them.
//!
//! These types know no framework: the tower layer and the actix-web middleware put a
//! [`RequestSessions`] into the request's extensions, and the `axum` and `actix` features of
//! this crate make [`Session`], [`NamedSession`], [`Flashes`] and [`RequestSessions`] the
//! extractors of those frameworks. They live here, beside [`Session`], because Rust lets only
//! the crate of a type implement a framework's traits for it: one `Session` type can then be
//! the extractor of every framework.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{SessionSet, Sessions};
use crate::error::{Error, ErrorKind, Result};
use crate::session::Session;

/// The sessions of one request, as the session middleware put them into its extensions.
///
/// Cheap to clone: clones share the request's sessions. Nothing is loaded until
/// [`session`](Self::session) or [`named`](Self::named) is called; each session is loaded at
/// most once per request, whether through this handle or the extractors. With the `axum` or
/// `actix` feature it is an extractor itself.
///
/// # Examples
///
/// A plain tower (or hyper) handler finds it in the request's extensions:
///
/// ```
/// use fastsession::RequestSessions;
/// use http::{Request, Response};
///
/// async fn visits(request: Request<()>) -> fastsession::Result<Response<String>> {
///     let sessions = RequestSessions::of(request.extensions())?;
///     let session = sessions.session().await?;
///     let visits = session.update_or("visits", 1_u64, |n| n + 1)?;
///     Ok(Response::new(format!("visit {visits}")))
/// }
/// # let _ = visits;
/// ```
#[derive(Clone)]
pub struct RequestSessions {
    sessions: Sessions,
    set: Arc<SessionSet>,
}

impl RequestSessions {
    /// The handle a middleware puts into a request's extensions: the request's registry and
    /// the sessions the middleware serves. For authors of framework adapters.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fastsession::{CookieConfig, RequestSessions, SessionConfig, SessionSet, Sessions};
    /// use fastsession::MemoryStore;
    ///
    /// let set = Arc::new(SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)));
    /// let mut request = http::Request::new(());
    /// let handle = RequestSessions::new(Sessions::new(request.headers()), set);
    /// request.extensions_mut().insert(handle);
    /// assert!(RequestSessions::of(request.extensions()).is_ok());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(sessions: Sessions, set: Arc<SessionSet>) -> Self {
        RequestSessions { sessions, set }
    }

    /// The handle in a request's extensions.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotInstalled`] (a 500, and an error in the log when answered) if no
    /// session middleware ran for the request.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::ErrorKind;
    /// use fastsession::RequestSessions;
    ///
    /// let request = http::Request::new(()); // no middleware ran
    /// let error = RequestSessions::of(request.extensions()).unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::NotInstalled);
    /// ```
    pub fn of(extensions: &http::Extensions) -> Result<Self> {
        extensions
            .get::<RequestSessions>()
            .cloned()
            .ok_or_else(not_installed)
    }

    /// The default session, loaded on first use.
    ///
    /// A missing, invalid or expired cookie gives a fresh session (with a `tracing` event);
    /// that is not an error.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] if the store failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::{CookieConfig, RequestSessions, SessionConfig, SessionSet, Sessions};
    /// # use fastsession::MemoryStore;
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # let set = Arc::new(SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)));
    /// # let sessions = RequestSessions::new(Sessions::new(&http::HeaderMap::new()), set);
    /// let session = sessions.session().await?;
    /// session.insert("theme", "dark")?;
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn session(&self) -> Result<Session> {
        self.sessions.get(self.set.default_session()).await
    }

    /// The session named by `N` (given to the middleware's `with_named::<N>`), loaded on
    /// first use.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownSession`] if the middleware has no session named by `N`;
    /// [`ErrorKind::Store`] if the store failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::{CookieConfig, RequestSessions, SessionConfig, SessionSet, Sessions};
    /// # use fastsession::MemoryStore;
    /// struct Prefs;
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?))
    /// #     .with_named::<Prefs>(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("prefs")?));
    /// # let sessions = RequestSessions::new(Sessions::new(&http::HeaderMap::new()), Arc::new(set));
    /// let prefs = sessions.named::<Prefs>().await?;
    /// prefs.insert("theme", "dark")?;
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn named<N: 'static>(&self) -> Result<Session> {
        let Some(config) = self.set.named::<N>() else {
            let type_name = std::any::type_name::<N>();
            let known: Vec<&str> = self.set.named_types().collect();
            return Err(Error::new(
                ErrorKind::UnknownSession,
                format!(
                    "no session named by `{type_name}` was given to the session middleware \
                     (it has: {known:?}); add it with `with_named::<{type_name}>(config)`"
                ),
            ));
        };
        self.sessions.get(config).await
    }

    /// Saves the sessions that changed now, before the handler returns: what a handler that
    /// may then fail (5xx, or an error) must do to keep its changes. Their cookies are added
    /// to the response by the middleware, whatever its status.
    ///
    /// # Errors
    ///
    /// The first failure, as [`Sessions::save`] reports it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::RequestSessions;
    ///
    /// async fn checkout(sessions: RequestSessions) -> fastsession::Result<http::StatusCode> {
    ///     let session = sessions.session().await?;
    ///     session.insert("step", "payment")?;
    ///     sessions.save().await?; // kept, and its cookie sent, even though this is a 502
    ///     Ok(http::StatusCode::BAD_GATEWAY)
    /// }
    /// # let _ = checkout;
    /// ```
    pub async fn save(&self) -> Result<()> {
        self.sessions.save().await
    }

    /// The sessions the middleware serves.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::{CookieConfig, RequestSessions, SessionConfig, SessionSet, Sessions};
    /// # use fastsession::MemoryStore;
    /// # let set = Arc::new(SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)));
    /// # let sessions = RequestSessions::new(Sessions::new(&http::HeaderMap::new()), set);
    /// assert_eq!(sessions.set().default_session().cookie().name(), "__Host-id");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn set(&self) -> &SessionSet {
        &self.set
    }

    /// The request's registry: for sessions the middleware was not configured with, and for
    /// settings such as [`set_cache_control_no_store`](Sessions::set_cache_control_no_store).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::{CookieConfig, RequestSessions, SessionConfig, SessionSet, Sessions};
    /// # use fastsession::MemoryStore;
    /// # let set = Arc::new(SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)));
    /// # let sessions = RequestSessions::new(Sessions::new(&http::HeaderMap::new()), set);
    /// // This response may be cached: it shows nothing of the session.
    /// sessions.registry().set_cache_control_no_store(false);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
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

pub(super) fn not_installed() -> Error {
    Error::new(
        ErrorKind::NotInstalled,
        "no session middleware ran for this request: add the tower `SessionLayer` \
         (fastsession::tower) or wrap the actix-web App or scope with `SessionMiddleware` \
         (fastsession::actix)",
    )
}

/// A named session of the request: the one given to the middleware's `with_named::<N>`. It
/// can live in another store than the default session; both are saved together.
///
/// Derefs to [`Session`]. With the `axum` or `actix` feature it is an extractor; asking for
/// a name the middleware was not given is a 500 whose log line says what to add.
///
/// # Examples
///
/// ```
/// use fastsession::NamedSession;
///
/// struct Prefs; // the name: the middleware got `with_named::<Prefs>(config)`
///
/// async fn theme(prefs: NamedSession<Prefs>) -> fastsession::Result<String> {
///     Ok(prefs.get::<String>("theme")?.unwrap_or_else(|| "light".to_owned()))
/// }
/// # let _ = theme;
/// ```
pub struct NamedSession<N> {
    session: Session,
    name: PhantomData<fn() -> N>,
}

impl<N: 'static> NamedSession<N> {
    /// The session named by `N` in `sessions`, loaded on first use.
    ///
    /// # Errors
    ///
    /// As [`RequestSessions::named`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{NamedSession, RequestSessions};
    ///
    /// struct Prefs;
    ///
    /// async fn theme(sessions: &RequestSessions) -> fastsession::Result<Option<String>> {
    ///     let prefs = NamedSession::<Prefs>::of(sessions).await?;
    ///     prefs.get("theme")
    /// }
    /// # let _ = theme;
    /// ```
    pub async fn of(sessions: &RequestSessions) -> Result<Self> {
        let session = sessions.named::<N>().await?;
        Ok(NamedSession {
            session,
            name: PhantomData,
        })
    }
}

impl<N> NamedSession<N> {
    /// The session.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::NamedSession;
    ///
    /// struct Prefs;
    ///
    /// fn keep(prefs: NamedSession<Prefs>) -> Session {
    ///     prefs.into_inner()
    /// }
    /// # let _ = keep;
    /// ```
    #[must_use]
    pub fn into_inner(self) -> Session {
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
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl<N> fmt::Debug for NamedSession<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedSession")
            .field("name", &std::any::type_name::<N>())
            .field("session", &self.session)
            .finish()
    }
}

/// The default session's flash messages, taken (so consumed) when the handler runs. With the
/// `axum` or `actix` feature it is an extractor.
///
/// # Examples
///
/// ```
/// use fastsession::Flashes;
///
/// async fn page(Flashes(messages): Flashes) -> String {
///     messages.join("\n")
/// }
/// # let _ = page;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flashes<T = String>(pub Vec<T>);

impl<T: DeserializeOwned> Flashes<T> {
    /// Takes the default session's flash messages from `sessions`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] if the store failed; [`ErrorKind::Deserialize`] if a message is
    /// not a `T` (the messages stay in the session).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Flashes, RequestSessions};
    ///
    /// async fn messages(sessions: &RequestSessions) -> fastsession::Result<Vec<String>> {
    ///     Ok(Flashes::<String>::of(sessions).await?.0)
    /// }
    /// # let _ = messages;
    /// ```
    pub async fn of(sessions: &RequestSessions) -> Result<Self> {
        let session = sessions.session().await?;
        Ok(Flashes(session.take_flashes()?))
    }
}

impl<T> Deref for Flashes<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{CookieConfig, SessionConfig};
    use crate::store::MemoryStore;

    struct Prefs;
    struct Cart;

    fn handle() -> RequestSessions {
        let config = |name| {
            SessionConfig::new(
                MemoryStore::new().expect("store"),
                CookieConfig::new(name).expect("cookie"),
            )
        };
        let set = SessionSet::new(config("id")).with_named::<Prefs>(config("prefs"));
        RequestSessions::new(Sessions::new(&http::HeaderMap::new()), Arc::new(set))
    }

    #[tokio::test]
    async fn named_sessions_are_found_by_type() {
        let sessions = handle();
        let prefs = NamedSession::<Prefs>::of(&sessions).await.expect("prefs");
        prefs.insert("theme", "dark").expect("insert");
        let again = sessions.named::<Prefs>().await.expect("again");
        assert_eq!(
            again.get::<String>("theme").expect("get").as_deref(),
            Some("dark")
        );

        let error = sessions.named::<Cart>().await.expect_err("not given");
        assert_eq!(error.kind(), ErrorKind::UnknownSession);
        assert!(error.to_string().contains("with_named::<"), "{error}");
        assert!(error.to_string().contains("Cart"), "{error}");
    }

    #[tokio::test]
    async fn flashes_are_taken_once() {
        let sessions = handle();
        sessions
            .session()
            .await
            .expect("session")
            .add_flash("hi")
            .expect("flash");
        assert_eq!(
            Flashes::<String>::of(&sessions).await.expect("take").0,
            ["hi"]
        );
        assert!(
            Flashes::<String>::of(&sessions)
                .await
                .expect("again")
                .is_empty()
        );
    }

    #[test]
    fn missing_middleware_is_a_typed_error() {
        let error = RequestSessions::of(&http::Extensions::new()).expect_err("none");
        assert_eq!(error.kind(), ErrorKind::NotInstalled);
        assert_eq!(error.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    #[should_panic(expected = "give each session its own cookie name")]
    fn one_cookie_name_for_two_sessions_is_refused_at_start_up() {
        let config = SessionConfig::new(
            MemoryStore::new().expect("store"),
            CookieConfig::new("id").expect("cookie"),
        );
        let _ = SessionSet::new(config.clone()).with_named::<Prefs>(config);
    }
}
