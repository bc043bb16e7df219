//! The actix-web middleware: `Transform`, its `Service`, and the work after the handler.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{CACHE_CONTROL, COOKIE, HeaderMap, HeaderValue, SET_COOKIE, VARY};
use fastsession_core::http::{
    Handled, ResponseHeaders, SessionConfig, SessionSet, Sessions, StoreErrorPolicy,
};

/// The actix-web middleware that gives every request lazy sessions and saves them after the
/// handler.
///
/// For each request it puts a `Sessions` into the request's extensions; this parses
/// nothing, decrypts nothing and touches no store. Handlers ask for sessions through the
/// extractors (`Session`, `NamedSession<N>`, `Flashes`, `Sessions`), or from a
/// request with [`SessionExt`](crate::SessionExt). After the handler the middleware saves
/// the sessions that changed and adds their headers: `Vary: Cookie` (if a session was asked
/// for), one `Set-Cookie` per saved session, and `Cache-Control: no-store` with them.
///
/// A 5xx response, a handler that returned an error, or one that panicked saves nothing,
/// except what the handler saved itself with `Sessions::save` (whose cookies are
/// still set). A failed save is answered by the [`StoreErrorPolicy`].
///
/// Wrap it once, around the `App` or a scope: a second instance inside the first would
/// replace the first's sessions for the routes it wraps.
///
/// # Examples
///
/// ```
/// use actix_web::{App, web};
/// use fastsession::actix::SessionMiddleware;
/// use fastsession::http::StoreErrorPolicy;
/// use fastsession::{CookieConfig, CookieStore, Key, KeyRing, MemoryStore, Session, SessionConfig};
///
/// struct Prefs; // names the second session
///
/// async fn login(session: Session) -> Result<&'static str, fastsession::Error> {
///     session.regenerate();
///     session.set_user_id("gopher");
///     Ok("welcome")
/// }
///
/// let keys = KeyRing::new(Key::generate()?);
/// let login_config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
/// let prefs = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("prefs")?);
/// let middleware = SessionMiddleware::new(login_config)
///     .with_named::<Prefs>(prefs)
///     .with_store_error_policy(StoreErrorPolicy::Fail);
///
/// // In `HttpServer::new(move || ...)`, clone it into each worker's App:
/// let app = App::new()
///     .wrap(middleware.clone())
///     .route("/login", web::post().to(login));
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SessionMiddleware {
    shared: Arc<SessionSet>,
}

impl SessionMiddleware {
    /// Returns a middleware whose default session (the one `Session` extracts) is described by
    /// `config`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::actix::SessionMiddleware;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = SessionMiddleware::new(config);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(config: SessionConfig) -> Self {
        SessionMiddleware::from_set(SessionSet::new(config))
    }

    /// Returns a middleware serving the sessions of `set`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::actix::SessionMiddleware;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// use fastsession::SessionSet;
    ///
    /// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?));
    /// let sessions = SessionMiddleware::from_set(set);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn from_set(set: SessionSet) -> Self {
        SessionMiddleware {
            shared: Arc::new(set),
        }
    }

    /// Adds a session named by the type `N`, possibly from another store, which handlers ask
    /// for as `NamedSession<N>`. As [`SessionSet::with_named`].
    ///
    /// # Panics
    ///
    /// At start-up, if `config`'s cookie name is another session's.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::actix::SessionMiddleware;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// struct Cart; // handlers take `NamedSession<Cart>`
    ///
    /// let login = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let cart = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("cart")?);
    /// let sessions = SessionMiddleware::new(login).with_named::<Cart>(cart);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_named<N: 'static>(self, config: SessionConfig) -> Self {
        let set = Arc::unwrap_or_clone(self.shared);
        SessionMiddleware::from_set(set.with_named::<N>(config))
    }

    /// Sets what happens when saving fails after a successful handler (default
    /// [`StoreErrorPolicy::Fail`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::actix::SessionMiddleware;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// use fastsession::http::StoreErrorPolicy;
    ///
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// // A page that shows nothing of the session: answer even if saving failed.
    /// let sessions = SessionMiddleware::new(config).with_store_error_policy(StoreErrorPolicy::KeepResponse);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_store_error_policy(self, policy: StoreErrorPolicy) -> Self {
        let set = Arc::unwrap_or_clone(self.shared);
        SessionMiddleware::from_set(set.with_store_error_policy(policy))
    }
}

impl fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("sessions", &self.shared)
            .finish()
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddlewareService {
            service,
            shared: self.shared.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around the inner service; the response body is
/// the handler's, or empty when a failed save replaced the response.
pub struct SessionMiddlewareService<S> {
    service: S,
    shared: Arc<SessionSet>,
}

impl<S> fmt::Debug for SessionMiddlewareService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddlewareService")
            .field("policy", &self.shared.store_error_policy())
            .finish_non_exhaustive()
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for SessionMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        // actix-web's header types are its own (http 0.2): hand the registry raw bytes.
        let sessions =
            Sessions::from_cookie_headers(request.headers().get_all(COOKIE).map(|v| v.as_bytes()))
                .with_set(self.shared.clone());
        request.extensions_mut().insert(sessions.clone());
        let policy = self.shared.store_error_policy();
        let handler = self.service.call(request);
        Box::pin(async move {
            // A panic unwinds through here: nothing after this line runs, nothing is saved.
            let result = handler.await;
            finish(result, sessions, policy).await
        })
    }
}

/// Saves the sessions of a handled request and writes their headers into its response.
async fn finish<B>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
    sessions: Sessions,
    policy: StoreErrorPolicy,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            // No response to write to, and no request to build one from: keeping a clone of
            // it would break actix's router, which needs it unshared (`Rc::get_mut`). actix
            // turns handler errors into responses, so only another middleware gets here.
            if sessions.take_response_headers().set_cookies().len() != 0 {
                tracing::warn!(
                    target: "fastsession",
                    "an inner service failed; the cookies of sessions saved by the handler are not sent"
                );
            }
            return Err(error);
        }
    };
    if !sessions.is_accessed() {
        return Ok(response.map_into_left_body());
    }
    // A failed handler (an error, or a 5xx) persists only what it saved itself.
    let failed = response.response().error().is_some() || response.status().is_server_error();
    let handled = if failed {
        Handled::Failed
    } else {
        Handled::Succeeded
    };
    // The request's copy goes first: with the last handle, `finish` saves in place.
    response.request().extensions_mut().remove::<Sessions>();
    let (headers, error) = sessions.finish(handled, policy).await.into_parts();
    if let Some(error) = error {
        let mut response = response.error_response(error);
        write_headers(headers, response.headers_mut());
        return Ok(response.map_into_right_body());
    }
    write_headers(headers, response.headers_mut());
    Ok(response.map_into_left_body())
}

/// Adds the session headers to an actix-web response.
fn write_headers(out: ResponseHeaders, headers: &mut HeaderMap) {
    if out.vary_cookie() && !varies_on_cookie(headers) {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
    for line in out.set_cookies() {
        match HeaderValue::from_bytes(line.as_bytes()) {
            Ok(mut value) => {
                value.set_sensitive(true);
                headers.append(SET_COOKIE, value);
            }
            // Lines are validated header values already; drop rather than emit a broken one.
            Err(_) => {
                tracing::error!(target: "fastsession", "Set-Cookie line is not a valid header")
            }
        }
    }
    if out.cache_control_no_store() {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// `true` if `Vary` already names `Cookie` (any case) or `*`.
fn varies_on_cookie(headers: &HeaderMap) -> bool {
    headers.get_all(VARY).any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t.eq_ignore_ascii_case("cookie") || t == "*")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(VARY, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn vary_detection() {
        assert!(!varies_on_cookie(&vary(&[])));
        assert!(!varies_on_cookie(&vary(&["Accept-Encoding", "Origin"])));
        assert!(!varies_on_cookie(&vary(&["X-Cookie-Thing"])));
        assert!(varies_on_cookie(&vary(&["Accept-Encoding, cookie"])));
        assert!(varies_on_cookie(&vary(&["Origin", " COOKIE "])));
        assert!(varies_on_cookie(&vary(&["*"])));
    }

    #[test]
    fn untouched_registry_writes_nothing() {
        let sessions = Sessions::from_cookie_headers([&b"__Host-id=abc"[..]]);
        let mut headers = HeaderMap::new();
        write_headers(sessions.take_response_headers(), &mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    fn policy_defaults_to_fail() {
        assert_eq!(StoreErrorPolicy::default(), StoreErrorPolicy::Fail);
    }
}
