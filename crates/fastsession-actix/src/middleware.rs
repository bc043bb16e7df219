//! The actix-web middleware: `Transform`, its `Service`, and the work after the handler.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{CACHE_CONTROL, COOKIE, HeaderMap, HeaderValue, SET_COOKIE, VARY};
use fastsession_core::http::{ResponseHeaders, SessionConfig, Sessions};

use crate::{Error, RequestSessions};

/// What the middleware does when saving the sessions after a successful handler fails.
///
/// Loading failures are the handler's to answer: the extractors turn them into an opaque
/// 503/500, and a handler that can do without the session asks for `Option<Session>` or
/// handles the error of [`RequestSessions::session`].
///
/// # Examples
///
/// ```
/// use fastsession_actix::{SessionMiddleware, StoreErrorPolicy};
/// use fastsession_core::http::{CookieConfig, SessionConfig};
/// use fastsession_core::store::MemoryStore;
///
/// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
/// let middleware =
///     SessionMiddleware::new(config).with_store_error_policy(StoreErrorPolicy::KeepResponse);
/// # let _ = middleware;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreErrorPolicy {
    /// Replace the handler's response with an empty one: 503 if the store failed, 409 if the
    /// session was ended meanwhile by another request, 500 otherwise. The client never sees
    /// a success for a change that was not saved. Cookies of the sessions that did save are
    /// still set.
    #[default]
    Fail,
    /// Log the failure and send the handler's response without that session's cookie: for
    /// routes whose answer does not depend on the session being saved.
    KeepResponse,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) default: SessionConfig,
    pub(crate) named: Vec<(&'static str, SessionConfig)>,
    pub(crate) policy: StoreErrorPolicy,
}

/// The actix-web middleware that gives every request lazy sessions and saves them after the
/// handler.
///
/// For each request it puts a [`RequestSessions`] into the request's extensions; this parses
/// nothing, decrypts nothing and touches no store. Handlers ask for sessions through the
/// extractors ([`Session`](crate::Session), [`NamedSession`](crate::NamedSession),
/// [`Flashes`](crate::Flashes), [`RequestSessions`]). After the handler the middleware saves
/// the sessions that changed and adds their headers: `Vary: Cookie` (if a session was asked
/// for), one `Set-Cookie` per saved session, and `Cache-Control: no-store` with them.
///
/// A 5xx response, a handler that returned an error, or one that panicked saves nothing,
/// except what the handler saved itself with [`RequestSessions::save`] (whose cookies are
/// still set). A failed save is answered by the [`StoreErrorPolicy`].
///
/// Wrap it once, around the `App` or a scope: a second instance inside the first would
/// replace the first's sessions for the routes it wraps.
///
/// # Examples
///
/// ```
/// use actix_web::{App, web};
/// use fastsession_actix::{Session, SessionMiddleware, StoreErrorPolicy};
/// use fastsession_core::codec::{Key, KeyRing};
/// use fastsession_core::http::{CookieConfig, SessionConfig};
/// use fastsession_core::store::{CookieStore, MemoryStore};
///
/// async fn login(session: Session) -> actix_web::Result<&'static str> {
///     session.regenerate();
///     session.set_user_id("gopher");
///     Ok("welcome")
/// }
///
/// let keys = KeyRing::new(Key::generate(1)?);
/// let login_config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
/// let prefs = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("prefs")?);
/// let middleware = SessionMiddleware::new(login_config)
///     .with_named("prefs", prefs)
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
    shared: Arc<Shared>,
}

impl SessionMiddleware {
    /// A middleware whose default session (the one [`Session`](crate::Session) extracts) is
    /// described by `config`.
    #[must_use]
    pub fn new(config: SessionConfig) -> Self {
        SessionMiddleware {
            shared: Arc::new(Shared {
                default: config,
                named: Vec::new(),
                policy: StoreErrorPolicy::default(),
            }),
        }
    }

    /// Adds a session that handlers ask for by `name` ([`NamedSession`](crate::NamedSession),
    /// [`RequestSessions::named`]), possibly from another store. A name given twice keeps the
    /// later config. Its cookie name must differ from the other sessions' (sessions with one
    /// cookie name are one session).
    #[must_use]
    pub fn with_named(mut self, name: &'static str, config: SessionConfig) -> Self {
        let shared = Arc::make_mut(&mut self.shared);
        shared.named.retain(|(n, _)| *n != name);
        shared.named.push((name, config));
        self
    }

    /// Sets what happens when saving fails after a successful handler (default
    /// [`StoreErrorPolicy::Fail`]).
    #[must_use]
    pub fn with_store_error_policy(mut self, policy: StoreErrorPolicy) -> Self {
        Arc::make_mut(&mut self.shared).policy = policy;
        self
    }
}

impl fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("default", &self.shared.default)
            .field("named", &self.shared.named)
            .field("policy", &self.shared.policy)
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
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for SessionMiddlewareService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddlewareService")
            .field("policy", &self.shared.policy)
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
            Sessions::from_cookie_headers(request.headers().get_all(COOKIE).map(|v| v.as_bytes()));
        request
            .extensions_mut()
            .insert(RequestSessions::new(sessions.clone(), self.shared.clone()));
        let policy = self.shared.policy;
        let handler = self.service.call(request);
        Box::pin(async move {
            // A panic unwinds through here: nothing after this line runs, nothing is saved.
            let result = handler.await;
            finish(result, &sessions, policy).await
        })
    }
}

/// Saves the sessions of a handled request and writes their headers into its response.
async fn finish<B>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
    sessions: &Sessions,
    policy: StoreErrorPolicy,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            // No response to write to, and no request to build one from: keeping a clone of
            // it would break actix's router, which needs it unshared (`Rc::get_mut`). actix
            // turns handler errors into responses, so only another middleware gets here.
            if !sessions.take_response_headers().set_cookies().is_empty() {
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
    if !failed && let Err(error) = sessions.save().await {
        tracing::error!(
            target: "fastsession",
            error = &error as &(dyn std::error::Error + 'static),
            "saving the session failed"
        );
        if policy == StoreErrorPolicy::Fail {
            let mut response = response.error_response(Error::from(error));
            write_headers(sessions.take_response_headers(), response.headers_mut());
            return Ok(response.map_into_right_body());
        }
    }
    write_headers(sessions.take_response_headers(), response.headers_mut());
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
