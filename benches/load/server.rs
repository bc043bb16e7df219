//! `load-server MODE ADDR [--exit-on-stdin-eof]`: one minimal HTTP/1.1 server for the load
//! benchmarks (see `benches/load/README.md`).
//!
//! Every server runs on one thread that serves requests (a current-thread Tokio runtime for
//! the hyper-based modes, `workers(1)` for actix-web), so that CPU time per request compares
//! per core. The first line on stdout is the bound address (`ADDR` may use port 0).
//!
//! Modes:
//!
//! * `hyper`: bare hyper 1 `http1` with `service_fn`, a fixed 13-byte body.
//! * `hyper-tower`: the same handler as a tower `service_fn` behind hyper-util's
//!   `TowerToHyperService`, without a layer: the adapter's own cost.
//! * `fastsession-untouched`: `hyper-tower` inside `fastsession_tower::SessionLayer` (cookie
//!   store); the handler never asks for its session.
//! * `fastsession-cookie`, `fastsession-memory`: the read-modify-write handler (read the
//!   counter `n` from the default session, add one, write it back, answer with it) with the
//!   cookie store or the memory store.
//! * `tower-sessions`, `tower-sessions-untouched`: tower-sessions 0.15 with its `MemoryStore`
//!   on the same hyper server, the read-modify-write handler or the fixed body.
//! * `actix`, `actix-session`: actix-web 4 with one worker, the fixed body, or actix-session
//!   0.11 with `CookieSessionStore` (private, the default) and the read-modify-write handler.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpListener as StdTcpListener};

use bytes::Bytes;
use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig};
use fastsession_core::store::{CookieStore, MemoryStore};
use fastsession_tower::{RequestSessions, SessionLayer};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

type BoxError = Box<dyn StdError + Send + Sync>;
type Body = Full<Bytes>;

/// The fixed body of the modes whose handler does not use a session.
const HELLO: &[u8] = b"Hello, World!";

use fastsession_benches::LOAD_MODES as MODES;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(addr)) = (args.first(), args.get(1)) else {
        eprintln!(
            "usage: load-server MODE ADDR [--exit-on-stdin-eof]\nmodes: {}",
            MODES.join(" ")
        );
        std::process::exit(2);
    };
    if !MODES.contains(&mode.as_str()) {
        return Err(format!("unknown mode {mode:?}; modes: {}", MODES.join(" ")).into());
    }
    let addr: SocketAddr = addr.parse()?;
    let listener = StdTcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", listener.local_addr()?)?;
    stdout.flush()?;
    drop(stdout);

    if args.iter().skip(2).any(|a| a == "--exit-on-stdin-eof") {
        // The driver holds our stdin: if it dies, so do we.
        std::thread::spawn(|| {
            let mut sink = String::new();
            let mut stdin = io::stdin().lock();
            while matches!(stdin.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
            std::process::exit(0);
        });
    }

    match mode.as_str() {
        "actix" => actix::run(listener, false),
        "actix-session" => actix::run(listener, true),
        _ => run_hyper(mode, listener),
    }
}

/// Runs a hyper-based mode on a current-thread Tokio runtime until the process is killed.
fn run_hyper(mode: &str, listener: StdTcpListener) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let cookie = || {
            CookieConfig::builder("id")
                .with_insecure_development_mode()
                .build()
        };
        let cookie_store = || -> Result<SessionConfig, BoxError> {
            let keys = KeyRing::new(Key::generate(1)?);
            Ok(SessionConfig::new(CookieStore::new(&keys), cookie()?))
        };
        match mode {
            "hyper" => serve(listener, hyper::service::service_fn(hello)).await,
            "hyper-tower" => {
                let service = ServiceBuilder::new().service_fn(hello);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "fastsession-untouched" => {
                let service = ServiceBuilder::new()
                    .layer(SessionLayer::new(cookie_store()?))
                    .service_fn(hello);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "fastsession-cookie" => {
                let service = ServiceBuilder::new()
                    .layer(SessionLayer::new(cookie_store()?))
                    .service_fn(rmw_fastsession);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "fastsession-memory" => {
                let config = SessionConfig::new(MemoryStore::new()?, cookie()?);
                let service = ServiceBuilder::new()
                    .layer(SessionLayer::new(config))
                    .service_fn(rmw_fastsession);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "tower-sessions-untouched" => {
                let layer = tower_sessions::SessionManagerLayer::new(
                    tower_sessions::MemoryStore::default(),
                )
                .with_secure(false);
                let service = ServiceBuilder::new().layer(layer).service_fn(hello);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "tower-sessions" => {
                let layer = tower_sessions::SessionManagerLayer::new(
                    tower_sessions::MemoryStore::default(),
                )
                .with_secure(false);
                let service = ServiceBuilder::new()
                    .layer(layer)
                    .service_fn(rmw_tower_sessions);
                serve(listener, TowerToHyperService::new(service)).await
            }
            other => Err(format!("unknown mode {other:?}").into()),
        }
    })
}

/// Accepts connections forever, each served by hyper's HTTP/1.1 connection (keep-alive on,
/// the default) in a task of the current runtime.
async fn serve<S, B>(listener: tokio::net::TcpListener, service: S) -> Result<(), BoxError>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let service = service.clone();
        tokio::spawn(async move {
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("load-server: connection error: {error}");
            }
        });
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = code;
    response
}

async fn hello<B>(_request: Request<B>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(HELLO))))
}

/// Read-modify-write of the counter `n` in the default fastsession session.
async fn rmw_fastsession<B>(request: Request<B>) -> Result<Response<Body>, Infallible> {
    let Some(sessions) = request.extensions().get::<RequestSessions>().cloned() else {
        return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
    };
    drop(request);
    let session = match sessions.session().await {
        Ok(session) => session,
        Err(error) => return Ok(status(error.status())),
    };
    let n = match session.get::<u64>("n") {
        Ok(n) => n.unwrap_or(0) + 1,
        Err(_) => return Ok(status(StatusCode::INTERNAL_SERVER_ERROR)),
    };
    if session.insert("n", n).is_err() {
        return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
    }
    Ok(Response::new(Full::new(Bytes::from(n.to_string()))))
}

/// Read-modify-write of the counter `n` in the tower-sessions session.
async fn rmw_tower_sessions<B>(request: Request<B>) -> Result<Response<Body>, Infallible> {
    let Some(session) = request
        .extensions()
        .get::<tower_sessions::Session>()
        .cloned()
    else {
        return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
    };
    drop(request);
    let n = match session.get::<u64>("n").await {
        Ok(n) => n.unwrap_or(0) + 1,
        Err(_) => return Ok(status(StatusCode::INTERNAL_SERVER_ERROR)),
    };
    if session.insert("n", n).await.is_err() {
        return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
    }
    Ok(Response::new(Full::new(Bytes::from(n.to_string()))))
}

mod actix {
    use std::net::TcpListener;

    use actix_session::storage::CookieSessionStore;
    use actix_session::{Session, SessionMiddleware};
    use actix_web::{App, HttpServer, web};

    use super::{BoxError, HELLO};

    /// actix-web with one worker thread (its own current-thread runtime); the acceptor
    /// thread and the system thread are idle once the connections are open.
    pub(super) fn run(listener: TcpListener, with_session: bool) -> Result<(), BoxError> {
        actix_web::rt::System::new().block_on(async move {
            if with_session {
                let key = actix_web::cookie::Key::generate();
                HttpServer::new(move || {
                    App::new()
                        .wrap(
                            SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                                .cookie_secure(false)
                                .build(),
                        )
                        .default_service(web::to(rmw))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)?
                .run()
                .await
            } else {
                HttpServer::new(|| App::new().default_service(web::to(hello)))
                    .workers(1)
                    .disable_signals()
                    .listen(listener)?
                    .run()
                    .await
            }
        })?;
        Ok(())
    }

    async fn hello() -> &'static [u8] {
        HELLO
    }

    /// Read-modify-write of the counter `n` in the actix-session session.
    async fn rmw(session: Session) -> actix_web::Result<String> {
        let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
        session.insert("n", n)?;
        Ok(n.to_string())
    }
}
