//! actix-web 4 adapter for [`fastsession`](https://docs.rs/fastsession).
//!
//! [`SessionMiddleware`] gives each request lazy sessions: nothing is parsed, decrypted or
//! loaded until a handler asks, and an untouched session costs no store I/O and no header.
//! After the handler it saves what changed and writes the cookies, with `Vary: Cookie` and
//! `Cache-Control: no-store`. A 5xx response, a handler error or a panic saves nothing that
//! the handler did not save itself. Store failures become opaque responses with empty bodies
//! and the status of [`status_for`](fastsession_core::http::status_for) (503 when the store is
//! down or full, 409 when another request ended the session, 400 for input the store cannot
//! hold, 500 otherwise); details go to the log.
//!
//! Handlers ask through extractors:
//!
//! | extractor | gives |
//! | --- | --- |
//! | [`Session`] | the default session (derefs to [`fastsession_core::Session`]) |
//! | `Option<Session>` | the same, or `None` if the store failed |
//! | [`NamedSession<N>`](NamedSession) | the session given to [`SessionMiddleware::with_named`] as [`N::NAME`](SessionName::NAME) |
//! | [`Flashes<T>`](Flashes) | the default session's flash messages, consumed |
//! | [`RequestSessions`] | the request's handle: any session by name, and an explicit [`save`](RequestSessions::save) |
//!
//! Several sessions, even from different stores, are saved together after the handler, one
//! `Set-Cookie` each.
//!
//! # Examples
//!
//! A server, with sessions in memory:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use fastsession_actix::{Error, Flashes, Session, SessionMiddleware};
//! use fastsession_core::http::{CookieConfig, SessionConfig};
//! use fastsession_core::store::MemoryStore;
//!
//! async fn set(session: Session, name: web::Query<Name>) -> Result<String, Error> {
//!     session.insert("name", &name.name)?;
//!     session.add_flash(format!("name has been set as: {}", name.name))?;
//!     Ok("ok".to_owned())
//! }
//!
//! async fn show(session: Session, flashes: Flashes) -> Result<String, Error> {
//!     let name = session.get::<String>("name")?.unwrap_or_default();
//!     Ok(format!("{}\nname: {name}", flashes.join("\n")))
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Name {
//!     name: String,
//! }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
//!     let sessions = SessionMiddleware::new(config);
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(sessions.clone())
//!             .route("/set", web::get().to(set))
//!             .route("/", web::get().to(show))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```
//!
//! The same round trip with `actix_web::test`, cookies in a [`CookieStore`] (the cookie
//! holds the sealed session):
//!
//! [`CookieStore`]: fastsession_core::store::CookieStore
//!
//! ```
//! use actix_web::{App, test, web};
//! use fastsession_actix::{Session, SessionMiddleware};
//! use fastsession_core::codec::{Key, KeyRing};
//! use fastsession_core::http::{CookieConfig, SessionConfig};
//! use fastsession_core::store::CookieStore;
//!
//! async fn visit(session: Session) -> Result<String, fastsession_actix::Error> {
//!     let n = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", n)?;
//!     Ok(n.to_string())
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let keys = KeyRing::new(Key::generate(1)?);
//! let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("id")?);
//! let app = test::init_service(
//!     App::new().wrap(SessionMiddleware::new(config)).route("/", web::get().to(visit)),
//! )
//! .await;
//!
//! let response = test::call_service(&app, test::TestRequest::get().to_request()).await;
//! let headers = response.headers();
//! assert_eq!(headers.get("vary").ok_or("no Vary")?, "Cookie");
//! assert_eq!(headers.get("cache-control").ok_or("no Cache-Control")?, "no-store");
//! let set_cookie = headers.get("set-cookie").ok_or("no Set-Cookie")?.to_str()?;
//! let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
//!
//! let request = test::TestRequest::get().insert_header(("cookie", cookie)).to_request();
//! let body = test::call_and_read_body(&app, request).await;
//! assert_eq!(body, "2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors in handlers
//!
//! The session methods fail with [`fastsession_core::Error`], which cannot be an actix-web
//! `ResponseError` (neither crate is actix-web's or this one's to implement it on). This
//! crate's [`Error`] converts from it and is one, with an opaque response: a handler that
//! only touches sessions returns `Result<_, fastsession_actix::Error>` and uses `?`
//! throughout; one that also returns other actix-web errors returns `actix_web::Result<_>`
//! and converts with `.map_err(fastsession_actix::Error::from)?`.
//!
//! ```
//! use actix_web::error::ErrorBadRequest;
//! use fastsession_actix::Session;
//!
//! async fn rename(session: Session, name: String) -> actix_web::Result<&'static str> {
//!     if name.is_empty() {
//!         return Err(ErrorBadRequest("empty name"));
//!     }
//!     session.insert("name", name).map_err(fastsession_actix::Error::from)?;
//!     Ok("renamed")
//! }
//! # let _ = rename;
//! ```
//!
//! # Errors and panics
//!
//! | what fails | response | saved |
//! | --- | --- | --- |
//! | loading, in an extractor | 503 (store) / 500, empty body | nothing |
//! | loading, through [`RequestSessions`] | the handler decides (`?` gives the same 503/500) | as the response says |
//! | the handler returns an error, or a 5xx | the handler's | only what it saved with [`RequestSessions::save`] |
//! | the handler panics | none (actix-web drops the connection) | only what it saved with [`RequestSessions::save`] |
//! | saving after the handler | per [`StoreErrorPolicy`]: empty 503/409/500, or the handler's without that cookie | the sessions that did save |
//! | no [`SessionMiddleware`] on the route | 500, and a `tracing` error saying it is not installed | nothing |
//!
//! Every failure is logged with `tracing` (target `fastsession`); clients only ever see the
//! status.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod extract;
mod handle;
mod middleware;

pub use error::{Error, ErrorKind};
pub use extract::{Flashes, NamedSession, Session, SessionName};
pub use fastsession_core::http::{SessionSet, StoreErrorPolicy};
pub use handle::RequestSessions;
pub use middleware::{SessionMiddleware, SessionMiddlewareService};
