//! The actix-web 4 adapter of [`fastsession`](https://docs.rs/fastsession).
//!
//! [`SessionMiddleware`] gives each request lazy sessions: nothing is parsed, decrypted or
//! loaded until a handler asks, and an untouched session costs no store I/O and no header.
//! After the handler it saves what changed and writes the cookies, with `Vary: Cookie` and
//! `Cache-Control: no-store`. A 5xx response, a handler error or a panic saves nothing that
//! the handler did not save itself.
//!
//! Handlers ask through extractors, which are the `fastsession` crate's own types (the same
//! `Session` is the axum extractor):
//!
//! | extractor | gives |
//! | --- | --- |
//! | `fastsession::Session` | the default session |
//! | `Option<Session>` | the same, or `None` if the store failed |
//! | `fastsession::NamedSession<N>` | the session given to [`SessionMiddleware::with_named::<N>`](SessionMiddleware::with_named) |
//! | `fastsession::Flashes<T>` | the default session's flash messages, consumed |
//! | `fastsession::Sessions` | the request's handle: every session, and an explicit `save` |
//!
//! [`SessionExt`] gives the same handle from an `HttpRequest` or a `ServiceRequest`. Several
//! sessions, even from different stores, are saved together after the handler, one
//! `Set-Cookie` each.
//!
//! # Examples
//!
//! A server, with sessions in memory:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use fastsession::actix::SessionMiddleware;
//! use fastsession::{CookieConfig, Flashes, MemoryStore, Session, SessionConfig};
//!
//! async fn set(session: Session, name: web::Query<Name>) -> Result<String, fastsession::Error> {
//!     session.insert("name", &name.name)?;
//!     session.add_flash(format!("name has been set as: {}", name.name))?;
//!     Ok("ok".to_owned())
//! }
//!
//! async fn show(session: Session, flashes: Flashes) -> Result<String, fastsession::Error> {
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
//! The same round trip with `actix_web::test`, cookies in a `CookieStore` (the cookie holds
//! the sealed session):
//!
//! ```
//! use actix_web::{App, test, web};
//! use fastsession::actix::SessionMiddleware;
//! use fastsession::{CookieConfig, CookieStore, Key, KeyRing, Session, SessionConfig};
//!
//! async fn visit(session: Session) -> Result<String, fastsession::Error> {
//!     let n = session.update_or("visits", 1_u64, |n| n + 1)?;
//!     Ok(n.to_string())
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let keys = KeyRing::new(Key::generate()?);
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
//! `fastsession::Error` is an actix-web `ResponseError`: a handler returns
//! `Result<_, fastsession::Error>` and uses `?` on every session call. As a response it is
//! empty, with the status of `Error::status` (503 when the store is down or full, 409 when
//! another request ended the session, 400 for input the store cannot hold, 500 otherwise),
//! and the error with its sources goes to the log: `warn` for store failures, `debug` for a
//! value of another type, `error` for set-up bugs. A handler that also returns other
//! actix-web errors returns `actix_web::Result<_>`; `?` converts both.
//!
//! ```
//! use actix_web::error::ErrorBadRequest;
//! use fastsession::Session;
//!
//! async fn rename(session: Session, name: String) -> actix_web::Result<&'static str> {
//!     if name.is_empty() {
//!         return Err(ErrorBadRequest("empty name"));
//!     }
//!     session.insert("name", name)?;
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
//! | loading, through `Sessions` | the handler decides (`?` gives the same 503/500) | as the response says |
//! | the handler returns an error, or a 5xx | the handler's | only what it saved with `Sessions::save` |
//! | the handler panics | none (actix-web drops the connection) | only what it saved with `Sessions::save` |
//! | saving after the handler | per [`StoreErrorPolicy`](fastsession_core::http::StoreErrorPolicy): empty 503/409/500, or the handler's without that cookie | the sessions that did save |
//! | no [`SessionMiddleware`] on the route | 500, and a `tracing` error saying it is not installed | nothing |
//!
//! Every failure is logged with `tracing` (target `fastsession`); clients only ever see the
//! status.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod middleware;

pub use fastsession_core::http::SessionExt;
pub use middleware::{SessionMiddleware, SessionMiddlewareService};
