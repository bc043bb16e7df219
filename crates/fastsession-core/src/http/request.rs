//! The sessions of one request, as a framework middleware hands them to handlers, and the
//! extractor types built on them.
//!
//! These types know no framework: the tower layer and the actix-web middleware put a
//! [`Sessions`] into the request's extensions, and the `axum` and `actix` features of
//! this crate make [`Session`], [`NamedSession`], [`Flashes`] and [`Sessions`] the
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

/// What a session middleware adds to [`Sessions`]: the app's [`SessionSet`], so that a
/// handler asks for its sessions by name instead of by config.
impl Sessions {
    /// Returns these sessions, serving `set`: what a framework middleware puts into each request's
    /// extensions. For authors of framework adapters.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, SessionSet, Sessions};
    ///
    /// let set = Arc::new(SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)));
    /// let mut request = http::Request::new(());
    /// let sessions = Sessions::new(request.headers()).with_set(set);
    /// request.extensions_mut().insert(sessions);
    /// assert!(Sessions::of(request.extensions()).is_ok());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_set(mut self, set: Arc<SessionSet>) -> Self {
        self.set = Some(set);
        self
    }

    /// Returns the sessions a middleware put into a request's extensions.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotInstalled`] (a 500, and an error in the log when answered) if no
    /// session middleware ran for the request.
    ///
    /// # Examples
    ///
    /// A plain tower (or hyper) handler finds them in the request's extensions:
    ///
    /// ```
    /// use fastsession::Sessions;
    /// use http::{Request, Response};
    ///
    /// async fn visits(request: Request<()>) -> fastsession::Result<Response<String>> {
    ///     let sessions = Sessions::of(request.extensions())?;
    ///     let session = sessions.session().await?;
    ///     let visits = session.update_or("visits", 1_u64, |n| n + 1)?;
    ///     Ok(Response::new(format!("visit {visits}")))
    /// }
    /// # let _ = visits;
    ///
    /// let request = http::Request::new(()); // no middleware ran
    /// let error = Sessions::of(request.extensions()).unwrap_err();
    /// assert_eq!(error.kind(), fastsession::ErrorKind::NotInstalled);
    /// ```
    pub fn of(extensions: &http::Extensions) -> Result<Self> {
        extensions
            .get::<Sessions>()
            .filter(|sessions| sessions.set.is_some())
            .cloned()
            .ok_or_else(not_installed)
    }

    /// Returns the default session of the middleware's set, loaded on first use.
    ///
    /// A missing, invalid or expired cookie gives a fresh session (with a `tracing` event);
    /// that is not an error.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] if the store failed; [`ErrorKind::NotInstalled`] for sessions
    /// made without a set ([`with_set`](Self::with_set)): ask those with
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::{CookieConfig, SessionConfig, SessionSet, Sessions};
    /// # use fastsession::MemoryStore;
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # let set = Arc::new(SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)));
    /// # let sessions = Sessions::new(&http::HeaderMap::new()).with_set(set);
    /// let session = sessions.session().await?;
    /// session.insert("theme", "dark")?;
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn session(&self) -> Result<Session> {
        self.get(self.served()?.default_session()).await
    }

    /// Returns the session named by `N` (given to the middleware's `with_named::<N>`), loaded on
    /// first use.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownSession`] if the middleware has no session named by `N`;
    /// [`ErrorKind::Store`] if the store failed; [`ErrorKind::NotInstalled`] as for
    /// [`session`](Self::session).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::{CookieConfig, SessionConfig, SessionSet, Sessions};
    /// # use fastsession::MemoryStore;
    /// struct Prefs;
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?))
    /// #     .with_named::<Prefs>(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("prefs")?));
    /// # let sessions = Sessions::new(&http::HeaderMap::new()).with_set(Arc::new(set));
    /// let prefs = sessions.named::<Prefs>().await?;
    /// prefs.insert("theme", "dark")?;
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn named<N: 'static>(&self) -> Result<Session> {
        let set = self.served()?;
        let Some(config) = set.named::<N>() else {
            let type_name = std::any::type_name::<N>();
            let known: Vec<&str> = set.named_types().collect();
            return Err(Error::new(
                ErrorKind::UnknownSession,
                format!(
                    "no session named by `{type_name}` was given to the session middleware \
                     (it has: {known:?}); add it with `with_named::<{type_name}>(config)`"
                ),
            ));
        };
        self.get(config).await
    }

    /// Returns the sessions the middleware serves, if these sessions came from one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::{CookieConfig, SessionConfig, SessionSet, Sessions};
    /// # use fastsession::MemoryStore;
    /// # let set = Arc::new(SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?)));
    /// # let sessions = Sessions::new(&http::HeaderMap::new()).with_set(set);
    /// let set = sessions.set().expect("made by a middleware");
    /// assert_eq!(set.default_session().cookie().name(), "__Host-id");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn set(&self) -> Option<&SessionSet> {
        self.set.as_deref()
    }

    fn served(&self) -> Result<&SessionSet> {
        self.set().ok_or_else(|| {
            Error::new(
                ErrorKind::NotInstalled,
                "these sessions were made without a SessionSet: load them with `get(&config)`, \
                 or give them one with `with_set`",
            )
        })
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
    /// Returns the session named by `N` in `sessions`, loaded on first use.
    ///
    /// # Errors
    ///
    /// As [`Sessions::named`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{NamedSession, Sessions};
    ///
    /// struct Prefs;
    ///
    /// async fn theme(sessions: &Sessions) -> fastsession::Result<Option<String>> {
    ///     let prefs = NamedSession::<Prefs>::of(sessions).await?;
    ///     prefs.get("theme")
    /// }
    /// # let _ = theme;
    /// ```
    pub async fn of(sessions: &Sessions) -> Result<Self> {
        let session = sessions.named::<N>().await?;
        Ok(NamedSession {
            session,
            name: PhantomData,
        })
    }
}

impl<N> NamedSession<N> {
    /// Returns the session.
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
    /// use fastsession::{Flashes, Sessions};
    ///
    /// async fn messages(sessions: &Sessions) -> fastsession::Result<Vec<String>> {
    ///     Ok(Flashes::<String>::of(sessions).await?.0)
    /// }
    /// # let _ = messages;
    /// ```
    pub async fn of(sessions: &Sessions) -> Result<Self> {
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

    fn handle() -> Sessions {
        let config = |name| {
            SessionConfig::new(
                MemoryStore::new().expect("store"),
                CookieConfig::new(name).expect("cookie"),
            )
        };
        let set = SessionSet::new(config("id")).with_named::<Prefs>(config("prefs"));
        Sessions::new(&http::HeaderMap::new()).with_set(Arc::new(set))
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
        let error = Sessions::of(&http::Extensions::new()).expect_err("none");
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
