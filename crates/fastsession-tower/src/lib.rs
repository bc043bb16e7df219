//! The tower adapter of [`fastsession`](https://docs.rs/fastsession), for axum, hyper and any
//! tower stack.
//!
//! [`SessionLayer`] gives each request lazy sessions: nothing is parsed, decrypted or loaded
//! until the handler asks, and an untouched session costs no store I/O and no header. After
//! the handler it saves what changed and writes the cookies. A 5xx response, a handler error
//! or a panic saves nothing that the handler did not save itself. A store failure becomes an
//! empty response with the status of `Error::status` (503 when the store is down or full,
//! 409 when another request ended the session, 400 for input the store cannot hold, 500
//! otherwise); the details go to the log.
//!
//! Handlers ask for sessions through the request's `Sessions` (in its extensions), or
//! with the `axum` feature through the extractors `Session`, `Option<Session>`,
//! `NamedSession<N>`, `Flashes` and `Sessions`. They are the types of the
//! `fastsession` crate itself, so a handler's `?` on `fastsession::Error` gives the right
//! response in axum and actix-web alike.
//!
//! # Examples
//!
//! Plain hyper through tower:
//!
//! ```no_run
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use fastsession::tower::SessionLayer;
//! use fastsession::{CookieConfig, CookieStore, Key, KeyRing, Sessions, SessionConfig};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::ServiceBuilder;
//!
//! async fn count(request: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     let visits = async {
//!         let session = Sessions::of(request.extensions())?.session().await?;
//!         session.update_or("visits", 1_u64, |n| n + 1)
//!     };
//!     Ok(match visits.await {
//!         Ok(n) => Response::new(Full::from(n.to_string())),
//!         Err(error) => {
//!             let mut response = Response::new(Full::default());
//!             *response.status_mut() = error.status();
//!             response
//!         }
//!     })
//! }
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeyRing::new(Key::generate()?);
//! let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("id")?);
//! let service = ServiceBuilder::new()
//!     .layer(SessionLayer::new(config))
//!     .service_fn(count);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     let service = hyper_util::service::TowerToHyperService::new(service.clone());
//!     tokio::spawn(async move {
//!         let io = hyper_util::rt::TokioIo::new(stream);
//!         let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
//!     });
//! }
//! # }
//! ```
//!
//! With axum (feature `axum` of the `fastsession` crate):
//!
//! ```
//! use axum::{Router, routing::post};
//! use fastsession::tower::SessionLayer;
//! use fastsession::{CookieConfig, MemoryStore, Session, SessionConfig};
//!
//! async fn login(session: Session) -> Result<&'static str, fastsession::Error> {
//!     session.regenerate();
//!     session.set_user_id("gopher");
//!     Ok("welcome")
//! }
//!
//! let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .layer(SessionLayer::new(config));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod layer;

pub use layer::{ResponseFuture, SessionLayer, SessionService};
