//! tower and axum adapter for [`fastsession`](https://docs.rs/fastsession).
//!
//! [`SessionLayer`] gives each request lazy sessions: nothing is parsed, decrypted or loaded
//! until the handler asks, and an untouched session costs no store I/O and no header. After
//! the handler it saves what changed and writes the cookies. A 5xx response, a handler error
//! or a panic saves nothing that the handler did not save itself. Store failures become
//! opaque responses with the status of
//! [`status_for`](fastsession_core::http::status_for) (503 when the store is down or full, 409
//! when another request ended the session, 400 for input the store cannot hold, 500
//! otherwise); details go to the log.
//!
//! It works with any tower stack, plain hyper included, through [`RequestSessions`] in the
//! request's extensions. With the `axum` feature, the extractors [`Session`],
//! [`NamedSession`] and [`Flashes`] do the asking.
//!
//! # Examples
//!
//! Plain hyper through tower:
//!
//! ```no_run
//! use std::convert::Infallible;
//! use fastsession_core::codec::{Key, KeyRing};
//! use fastsession_core::http::{CookieConfig, SessionConfig};
//! use fastsession_core::store::CookieStore;
//! use fastsession_tower::{RequestSessions, SessionLayer};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::ServiceBuilder;
//!
//! async fn count(request: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     let Some(sessions) = request.extensions().get::<RequestSessions>() else {
//!         return Ok(Response::new(Full::default()));
//!     };
//!     let body = match sessions.session().await {
//!         Ok(session) => {
//!             let n = session.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
//!             let _ = session.insert("n", n);
//!             n.to_string()
//!         }
//!         Err(e) => return Ok(Response::builder().status(e.status()).body(Full::default()).unwrap()),
//!     };
//!     Ok(Response::new(Full::new(Bytes::from(body))))
//! }
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeyRing::new(Key::generate(1)?);
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
#![cfg_attr(
    feature = "axum",
    doc = r#"
With axum:

```
use axum::{Router, routing::post};
use fastsession_core::http::{CookieConfig, SessionConfig};
use fastsession_core::store::MemoryStore;
use fastsession_tower::{Session, SessionLayer};

async fn login(session: Session) -> Result<&'static str, fastsession_tower::Error> {
    session.regenerate();
    session.set_user_id("gopher");
    Ok("welcome")
}

let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
let app: Router = Router::new()
    .route("/login", post(login))
    .layer(SessionLayer::new(config));
# Ok::<(), Box<dyn std::error::Error>>(())
```
"#
)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
#[cfg(feature = "axum")]
mod extract;
mod handle;
mod layer;

pub use error::{Error, ErrorKind};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{Flashes, NamedSession, Session, SessionName};
pub use fastsession_core::http::{SessionSet, StoreErrorPolicy};
pub use handle::RequestSessions;
pub use layer::{ResponseFuture, SessionLayer, SessionService};
