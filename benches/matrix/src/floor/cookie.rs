//! The cookie store's floor on actix-web: a session middleware written by hand that seals the
//! session into the `id` cookie with fastsession's codec.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, COOKIE, HeaderValue, SET_COOKIE, VARY};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use fastsession_core::codec::{Codec, Key, KeyRing};
use pin_project_lite::pin_project;
use serde_json::value::RawValue;

use super::{ATTRIBUTES, MAX_COOKIE_LINE, REFRESH_SECS, cookie_value, is_live, now};

type Values = BTreeMap<String, Box<RawValue>>;

/// The floor of the cookie store's cells (`actix/floor/cookie`, beside actix-session's
/// cookie store): the session sealed into the `id` cookie with fastsession's codec
/// (XChaCha20-Poly1305 under a key derived for the purpose, the cookie's name bound).
pub struct CookieFloor {
    codec: Codec,
}

impl std::fmt::Debug for CookieFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieFloor").finish_non_exhaustive()
    }
}

/// A session as the cookie carried it, and whether the handler changed it.
struct Held {
    created: u64,
    last_active: u64,
    values: Values,
    changed: bool,
    /// Whether the request carried a live session: a new one is sealed only if written.
    opened: bool,
}

impl CookieFloor {
    /// Returns a floor sealing under a random key.
    ///
    /// # Errors
    ///
    /// If the OS random number generator fails.
    pub fn new() -> Result<CookieFloor, fastsession_core::Error> {
        let ring = KeyRing::new(Key::generate()?);
        Ok(CookieFloor {
            codec: Codec::new(&ring, "session"),
        })
    }

    /// The session a request's `id` cookie carries if it is authentic and live at `now`, or a
    /// new one.
    fn open(&self, sealed: Option<&[u8]>, now: u64) -> Held {
        let opened = sealed.and_then(|sealed| {
            let opened = self
                .codec
                .open("id", std::str::from_utf8(sealed).ok()?)
                .ok()?;
            let plaintext = opened.plaintext();
            let word = |at: usize| -> Option<u64> {
                Some(u64::from_le_bytes(
                    plaintext.get(at..at + 8)?.try_into().ok()?,
                ))
            };
            let (created, last_active) = (word(0)?, word(8)?);
            let live = is_live(created, last_active, now);
            let values = serde_json::from_slice(plaintext.get(16..)?).ok()?;
            live.then_some((created, last_active, values))
        });
        match opened {
            Some((created, last_active, values)) => Held {
                created,
                last_active,
                values,
                changed: false,
                opened: true,
            },
            None => Held {
                created: now,
                last_active: now,
                values: Values::new(),
                changed: false,
                opened: false,
            },
        }
    }

    /// The `Set-Cookie` line of a session sealed anew at `now`, if it fits.
    fn seal(&self, held: &Held, now: u64) -> Option<String> {
        let mut plaintext = Vec::with_capacity(64);
        plaintext.extend_from_slice(&held.created.to_le_bytes());
        plaintext.extend_from_slice(&now.to_le_bytes());
        serde_json::to_writer(&mut plaintext, &held.values).ok()?;
        let sealed = self.codec.seal("id", &plaintext).ok()?;
        let mut line = String::with_capacity(3 + sealed.len() + ATTRIBUTES.len());
        line.push_str("id=");
        line.push_str(&sealed);
        line.push_str(ATTRIBUTES);
        (line.len() <= MAX_COOKIE_LINE).then_some(line)
    }
}

/// A request's session, which the middleware puts in the request's extensions: opened at the
/// handler's first use, sealed by the middleware after the handler if it changed.
#[derive(Clone)]
pub struct CookieFloorSession {
    inner: Rc<Shared>,
}

struct Shared {
    floor: Arc<CookieFloor>,
    /// The request's `id` cookie, as sent.
    sealed: Option<Box<[u8]>>,
    held: RefCell<Option<Held>>,
}

impl std::fmt::Debug for CookieFloorSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieFloorSession").finish_non_exhaustive()
    }
}

impl CookieFloorSession {
    fn with<R>(&self, f: impl FnOnce(&mut Held) -> R) -> R {
        let mut held = self.inner.held.borrow_mut();
        let held =
            held.get_or_insert_with(|| self.inner.floor.open(self.inner.sealed.as_deref(), now()));
        f(held)
    }

    /// The value `name` as a number, if the session holds one.
    #[must_use]
    pub fn number(&self, name: &str) -> Option<u64> {
        self.with(|held| serde_json::from_str(held.values.get(name)?.get()).ok())
    }

    /// Sets the value `name` to the number `n`.
    pub fn set_number(&self, name: &str, n: u64) {
        let Ok(json) = RawValue::from_string(n.to_string()) else {
            return;
        };
        self.with(|held| {
            held.values.insert(name.to_owned(), json);
            held.changed = true;
        });
    }
}

impl FromRequest for CookieFloorSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<CookieFloorSession>()
                .cloned()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("no CookieFloorLayer")),
        )
    }
}

/// The floor's actix-web middleware: a [`CookieFloorSession`] in each request's extensions,
/// sealed after the handler.
#[derive(Clone, Debug)]
pub struct CookieFloorLayer {
    floor: Arc<CookieFloor>,
}

impl CookieFloorLayer {
    /// Returns a middleware over `floor`.
    #[must_use]
    pub fn new(floor: CookieFloor) -> CookieFloorLayer {
        CookieFloorLayer {
            floor: Arc::new(floor),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for CookieFloorLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = CookieFloorService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CookieFloorService {
            service,
            floor: Arc::clone(&self.floor),
        }))
    }
}

/// The service of [`CookieFloorLayer`].
#[derive(Debug)]
pub struct CookieFloorService<S> {
    service: S,
    floor: Arc<CookieFloor>,
}

impl<S, B> Service<ServiceRequest> for CookieFloorService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = CookieFloorFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let sealed = request
            .headers()
            .get_all(COOKIE)
            .find_map(|value| cookie_value(value.as_bytes(), b"id"))
            .map(Box::from);
        let session = CookieFloorSession {
            inner: Rc::new(Shared {
                floor: Arc::clone(&self.floor),
                sealed,
                held: RefCell::new(None),
            }),
        };
        request.extensions_mut().insert(session.clone());
        CookieFloorFuture {
            handler: self.service.call(request),
            session: Some(session),
        }
    }
}

pin_project! {
    /// The future of [`CookieFloorService`]: the handler, then the seal.
    pub struct CookieFloorFuture<F> {
        #[pin]
        handler: F,
        session: Option<CookieFloorSession>,
    }
}

impl<F, B> Future for CookieFloorFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.handler.poll(cx) else {
            return Poll::Pending;
        };
        let session = this.session.take();
        let mut response = match result {
            Ok(response) => response,
            Err(error) => return Poll::Ready(Err(error)),
        };
        // A request whose handler never used its session: nothing opened, no header.
        let Some(session) = session else {
            return Poll::Ready(Ok(response));
        };
        let held = session.inner.held.borrow_mut().take();
        let Some(held) = held else {
            return Poll::Ready(Ok(response));
        };
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("Cookie"));
        // A failed handler saves nothing.
        if response.status().is_server_error() {
            return Poll::Ready(Ok(response));
        }
        let now = now();
        let due = held.opened && now >= held.last_active + REFRESH_SECS;
        if !held.changed && !due {
            return Poll::Ready(Ok(response));
        }
        let line = (session.inner.floor.seal(&held, now))
            .and_then(|line| HeaderValue::from_str(&line).ok());
        match line {
            Some(line) => {
                let headers = response.headers_mut();
                headers.append(SET_COOKIE, line);
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            None => *response.response_mut().status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{App, web};

    use super::*;
    use crate::Path;

    async fn answer(path: Path, session: CookieFloorSession) -> String {
        let n = match path {
            Path::New => 1,
            _ => session.number("n").unwrap_or(0) + u64::from(path == Path::Hot),
        };
        if path != Path::Read {
            session.set_number("n", n);
        }
        n.to_string()
    }

    /// Serves `path` with the `id` cookie `sealed`: the body and the new `id` cookie, if any.
    async fn serve(
        floor: &CookieFloorLayer,
        path: Path,
        sealed: Option<&str>,
    ) -> (String, Option<String>, SessionHeaders) {
        let app = init_service(
            App::new()
                .wrap(floor.clone())
                .route(
                    Path::Hot.target(),
                    web::get().to(|s: CookieFloorSession| answer(Path::Hot, s)),
                )
                .route(
                    Path::Read.target(),
                    web::get().to(|s: CookieFloorSession| answer(Path::Read, s)),
                )
                .route(
                    Path::New.target(),
                    web::get().to(|s: CookieFloorSession| answer(Path::New, s)),
                )
                .route(Path::Untouched.target(), web::get().to(|| async { "1" })),
        )
        .await;
        let mut request = TestRequest::get().uri(path.target());
        if let Some(sealed) = sealed {
            request = request.insert_header((COOKIE, format!("_ga=1; id={sealed}")));
        }
        let response = call_service(&app, request.to_request()).await;
        let headers = SessionHeaders {
            vary: response.headers().get(VARY).is_some(),
            no_store: response.headers().get(CACHE_CONTROL).is_some(),
        };
        let cookie = response.headers().get(SET_COOKIE).map(|line| {
            let line = line.to_str().unwrap();
            assert!(line.ends_with(ATTRIBUTES), "{line}");
            let pair = line.split(';').next().unwrap();
            pair.strip_prefix("id=").unwrap().to_owned()
        });
        let body = String::from_utf8(read_body(response).await.to_vec()).unwrap();
        (body, cookie, headers)
    }

    #[derive(Debug, PartialEq)]
    struct SessionHeaders {
        vary: bool,
        no_store: bool,
    }

    const USED: SessionHeaders = SessionHeaders {
        vary: true,
        no_store: false,
    };

    #[actix_web::test]
    async fn a_sealed_session_counts_and_is_sealed_again_only_when_changed() {
        let floor = CookieFloorLayer::new(CookieFloor::new().unwrap());
        let (body, sealed, headers) = serve(&floor, Path::New, None).await;
        assert_eq!((body.as_str(), headers.no_store), ("1", true));
        let sealed = sealed.unwrap();
        let (body, again, _) = serve(&floor, Path::Hot, Some(&sealed)).await;
        assert_eq!(body, "2");
        let again = again.unwrap();
        let (body, none, headers) = serve(&floor, Path::Read, Some(&again)).await;
        assert_eq!((body.as_str(), none, headers), ("2", None, USED));
        let (_, none, headers) = serve(&floor, Path::Untouched, Some(&again)).await;
        let untouched = SessionHeaders {
            vary: false,
            no_store: false,
        };
        assert_eq!((none, headers), (None, untouched));
    }

    #[actix_web::test]
    async fn a_tampered_or_idle_cookie_starts_again() {
        let floor = CookieFloorLayer::new(CookieFloor::new().unwrap());
        let (_, sealed, _) = serve(&floor, Path::New, None).await;
        let sealed = sealed.unwrap();
        let mut tampered = sealed.clone().into_bytes();
        tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(serve(&floor, Path::Read, Some(&tampered)).await.0, "0");
        assert_eq!(serve(&floor, Path::Hot, Some(&tampered)).await.0, "1");

        let then = now() - crate::floor::IDLE_SECS;
        let mut old = floor.floor.open(None, then);
        old.values.insert(
            "n".to_owned(),
            RawValue::from_string("5".to_owned()).unwrap(),
        );
        let line = floor.floor.seal(&old, then).unwrap();
        let idle = line.split(';').next().unwrap().strip_prefix("id=").unwrap();
        assert_eq!(serve(&floor, Path::Read, Some(idle)).await.0, "0");
        let fresh = floor.floor.seal(&old, now()).unwrap();
        let live = fresh
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("id=")
            .unwrap();
        assert_eq!(serve(&floor, Path::Read, Some(live)).await.0, "5");
    }
}
