//! A cookie session on plain hyper: `GET /set?name=gopher` stores a name in the session,
//! `GET /` shows it.
//!
//! ```text
//! cargo run --example quickstart
//! curl -c jar -b jar 'http://127.0.0.1:8080/set?name=gopher'
//! curl -c jar -b jar http://127.0.0.1:8080/
//! ```
//!
//! `ADDR` overrides the address; `FASTSESSION_SECRET` holds the master secret (base64 of at
//! least 32 random bytes, e.g. from `openssl rand -base64 32`).

use std::convert::Infallible;

use bytes::Bytes;
use fastsession::{CookieConfig, CookieStore, Key, KeyRing, SessionConfig, Sessions};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const SECRET_VAR: &str = "FASTSESSION_SECRET";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let key = match std::env::var(SECRET_VAR) {
        Ok(secret) => Key::from_base64(&secret)?,
        Err(_) => {
            tracing::warn!(
                "{SECRET_VAR} is not set: using a random key, so sessions will not survive a restart"
            );
            Key::generate()?
        }
    };
    // Plain HTTP on loopback, so the cookie cannot be `Secure`; drop development mode (and
    // serve HTTPS) in production.
    let cookie = CookieConfig::builder("GOSESSION")
        .with_insecure_development_mode()
        .build()?;
    let config = SessionConfig::new(CookieStore::new(&KeyRing::new(key)), cookie);

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let config = config.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, config.clone()));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    config: SessionConfig,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let sessions = Sessions::new(req.headers());
    let mut response = match respond(&req, &sessions, &config).await {
        Ok(body) => Response::new(Full::new(Bytes::from(body))),
        Err(e) => return Ok(internal_error(&e)),
    };
    match sessions.save_all(response.headers_mut()).await {
        Ok(()) => Ok(response),
        Err(e) => Ok(internal_error(&e)),
    }
}

async fn respond(
    req: &Request<Incoming>,
    sessions: &Sessions,
    config: &SessionConfig,
) -> fastsession::Result<String> {
    let session = sessions.get(config).await?;
    if req.uri().path() == "/set" {
        let name = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if name.is_empty() {
            return Ok("No name specified.".to_owned());
        }
        session.insert("name", &name)?;
        return Ok(format!("name has been set as: {name}\n"));
    }
    if let Some(name) = session.get::<String>("name")? {
        return Ok(format!("name: {name}\n"));
    }
    Ok("\n\tYou should navigate to http://127.0.0.1:8080/set?name=yourname to set specified name.\n\t".to_owned())
}

fn internal_error(e: &fastsession::Error) -> Response<Full<Bytes>> {
    // Details go to the log, never to the client.
    tracing::error!(error = %e, "session error");
    let mut response = Response::new(Full::new(Bytes::from_static(b"Internal Server Error")));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
