//! `matrix-server SERVER ADDR [--namespace NS] [--dir DIR] [--exit-on-stdin-eof]`: one server
//! of the benchmark matrix (`framework/library/store`, or `framework/bare`), serving
//! `/hot`, `/read`, `/new` and `/untouched` on one thread until killed. The first line on
//! stdout is the bound address, printed once the store is reachable.
//!
//! `matrix-server --cleanup SERVER NS` deletes what the server left in Redis or PostgreSQL
//! under the namespace `NS` (letters, digits and `_`).
//!
//! The floors (`hyper/floor/memory`, `axum/floor/memory`, `actix/floor/cookie`) are no
//! library: a session layer for one memory store, and a handler sealing the session in the
//! cookie, written by hand at the least cost the contract allows (see the crate's `floor`
//! module).
//!
//! Every library gets the same handlers, written the way its documentation shows (the
//! session from the request's extensions behind a tower service, an extractor in axum and
//! actix-web), and the same settings where they differ by default: cookie `id`, not
//! `Secure` (plain HTTP on loopback), ten minutes of idleness for the server-side stores.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::PathBuf;

use bytes::Bytes;
use fastsession_bench_matrix::floor::{CookieFloorSession, FloorLayer, FloorSession, MemoryFloor};
use fastsession_bench_matrix::{Framework, Library, Path, SERVERS, Server, Store};
use fastsession_benches::serving::{
    BoxError, announce, delete_prefix, exit_on_stdin_eof, flush_tower_sessions_db, postgres_url,
    redis_url, serve, valid_namespace,
};
use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::store::{CookieStore, MemoryStore, NearCacheConfig};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;

type Body = Full<Bytes>;

fn main() {
    if let Err(error) = run() {
        eprintln!("matrix-server: {error}");
        std::process::exit(1);
    }
}

struct Options {
    server: Server,
    namespace: String,
    dir: PathBuf,
}

fn usage() -> String {
    let servers: Vec<String> = SERVERS.iter().map(ToString::to_string).collect();
    format!(
        "usage: matrix-server SERVER ADDR [--namespace NS] [--dir DIR] [--exit-on-stdin-eof]\n       matrix-server --cleanup SERVER NS\nservers: {}",
        servers.join(" ")
    )
}

fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |text: &String| Server::parse(text).ok_or_else(usage);
    if args.first().is_some_and(|a| a == "--cleanup") {
        let (Some(server), Some(namespace), None) = (args.get(1), args.get(2), args.get(3)) else {
            return Err(usage().into());
        };
        return cleanup(parse(server)?, &valid_namespace(namespace)?);
    }
    let (Some(server), Some(addr)) = (args.first(), args.get(1)) else {
        return Err(usage().into());
    };
    let mut options = Options {
        server: parse(server)?,
        namespace: format!("fsmatrix_{}", std::process::id()),
        dir: std::env::temp_dir().join(format!("fsmatrix_{}", std::process::id())),
    };
    let mut rest = args.iter().skip(2);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--exit-on-stdin-eof" => exit_on_stdin_eof(),
            "--namespace" => {
                options.namespace =
                    valid_namespace(rest.next().ok_or("--namespace needs a value")?)?;
            }
            "--dir" => options.dir = rest.next().ok_or("--dir needs a value")?.into(),
            other => return Err(format!("unknown argument {other:?}\n{}", usage()).into()),
        }
    }
    let listener = StdTcpListener::bind(addr.parse::<SocketAddr>()?)?;
    listener.set_nonblocking(true)?;
    match options.server.framework {
        Framework::Actix => actix::run(listener, &options),
        Framework::Hyper | Framework::Axum => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve_hyper(listener, &options))
        }
    }
}

/// The Redis key prefix of a server in a namespace.
fn key_prefix(namespace: &str, server: Server) -> String {
    format!(
        "{namespace}:{}-{}-{}:",
        server.framework.name(),
        server.library.name(),
        server.store.name()
    )
}

/// The PostgreSQL schema of a server in a namespace.
fn schema(namespace: &str, server: Server) -> String {
    // The store too: the near cache's triggers must not reach the plain store's table.
    format!(
        "{namespace}_{}_{}_{}",
        server.framework.name(),
        server.library.name().replace('-', "_"),
        server.store.name().replace('-', "_")
    )
}

/// fastsession's configuration for `store`: cookie `id`, not `Secure`.
async fn fastsession_config(options: &Options) -> Result<SessionConfig, BoxError> {
    let cookie = CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()?;
    let key = Key::generate()?;
    let (namespace, server) = (&options.namespace, options.server);
    Ok(match server.store {
        Store::Cookie => SessionConfig::new(CookieStore::new(&KeyRing::new(key)), cookie),
        Store::Memory => SessionConfig::new(MemoryStore::new()?, cookie),
        Store::Filesystem => {
            let dir = options.dir.join(server.to_string().replace('/', "-"));
            SessionConfig::new(fastsession_fs::filesystem_store(dir, &key)?, cookie)
        }
        Store::Redis | Store::RedisNear => {
            let mut config = fastsession_redis::RedisConfig::new(redis_url())
                .with_key_prefix(key_prefix(namespace, server));
            if server.store == Store::RedisNear {
                config = config.with_near_cache(NearCacheConfig::new());
            }
            SessionConfig::new(fastsession_redis::redis_store(&config, &key).await?, cookie)
        }
        Store::Postgres | Store::PostgresNear => {
            let mut config = fastsession_postgres::PostgresConfig::new(postgres_url())
                .with_schema(schema(namespace, server));
            if server.store == Store::PostgresNear {
                config = config.with_near_cache(NearCacheConfig::new());
            }
            let store = fastsession_postgres::postgres_store(config, &key).await?;
            store.backend().migrate().await?;
            SessionConfig::new(store, cookie)
        }
        Store::None => return Err("fastsession needs a store".into()),
    })
}

/// Deletes what `server` left in its store under `namespace`.
fn cleanup(server: Server, namespace: &str) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match (server.library, server.store) {
            (Library::TowerSessions, Store::Redis) => {
                flush_tower_sessions_db().await?;
            }
            (_, Store::Redis | Store::RedisNear) => {
                delete_prefix(&key_prefix(namespace, server)).await?
            }
            (_, Store::Postgres | Store::PostgresNear) => {
                use tower_sessions_sqlx_store::sqlx;
                let pool = sqlx::PgPool::connect(&postgres_url()).await?;
                // A checked namespace and fixed names: nothing to quote.
                sqlx::query(&format!(
                    r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#,
                    schema(namespace, server)
                ))
                .execute(&pool)
                .await?;
                pool.close().await;
            }
            _ => {}
        }
        Ok(())
    })
}

/// The answer of every path that does not carry a number of the session's.
const ONE: &str = "1";

/// What a path does to a session whose `n` is `current`: the value to write, if any, and
/// the number to answer.
fn step(path: Path, current: Option<u64>) -> (Option<u64>, u64) {
    match path {
        Path::Hot => {
            let n = current.unwrap_or(0) + 1;
            (Some(n), n)
        }
        Path::Read => (None, current.unwrap_or(0)),
        Path::New => (Some(1), 1),
        Path::Untouched => (None, 1),
    }
}

/// A session whose `n` is read and written without waiting: fastsession's and
/// actix-session's.
trait Counter {
    fn n(&self) -> Result<Option<u64>, BoxError>;
    fn set_n(&self, n: u64) -> Result<(), BoxError>;
}

impl Counter for fastsession_core::Session {
    fn n(&self) -> Result<Option<u64>, BoxError> {
        Ok(self.get("n")?)
    }
    fn set_n(&self, n: u64) -> Result<(), BoxError> {
        Ok(self.insert("n", n)?)
    }
}

impl Counter for FloorSession {
    fn n(&self) -> Result<Option<u64>, BoxError> {
        Ok(self.number("n"))
    }
    fn set_n(&self, n: u64) -> Result<(), BoxError> {
        self.set_number("n", n);
        Ok(())
    }
}

impl Counter for CookieFloorSession {
    fn n(&self) -> Result<Option<u64>, BoxError> {
        Ok(self.number("n"))
    }
    fn set_n(&self, n: u64) -> Result<(), BoxError> {
        self.set_number("n", n);
        Ok(())
    }
}

impl Counter for actix_session::Session {
    fn n(&self) -> Result<Option<u64>, BoxError> {
        Ok(self.get("n")?)
    }
    fn set_n(&self, n: u64) -> Result<(), BoxError> {
        Ok(self.insert("n", n)?)
    }
}

/// The paths as handlers of a [`Counter`] session: one body for the tower service, axum and
/// actix-web.
fn answer<S: Counter>(path: Path, session: &S) -> Result<u64, BoxError> {
    let (write, answer) = match path {
        Path::New => step(path, None),
        _ => step(path, session.n()?),
    };
    if let Some(n) = write {
        session.set_n(n)?;
    }
    Ok(answer)
}

/// The same for tower-sessions 0.15 and 0.14.
macro_rules! tower_sessions_answer {
    ($name:ident, $krate:ident) => {
        async fn $name(path: Path, session: &$krate::Session) -> Result<u64, BoxError> {
            let (write, answer) = match path {
                Path::New => step(path, None),
                _ => step(path, session.get::<u64>("n").await?),
            };
            if let Some(n) = write {
                session.insert("n", n).await?;
            }
            Ok(answer)
        }
    };
}

tower_sessions_answer!(tower_sessions_answer, tower_sessions);
tower_sessions_answer!(tower_sessions_014_answer, tower_sessions_014);

fn text(result: Result<u64, BoxError>) -> Response<Body> {
    match result {
        Ok(n) => Response::new(Full::new(Bytes::from(n.to_string()))),
        Err(error) => {
            eprintln!("matrix-server: {error}");
            let mut response = Response::new(Body::default());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

fn path_of<B>(request: &Request<B>) -> Option<Path> {
    Path::of_target(request.uri().path())
}

fn not_found() -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// The tower service of a hyper server: the handler takes the session from the request's
/// extensions, as a tower user's does.
mod tower_handlers {
    use super::*;

    pub(super) async fn bare(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        Ok(match path_of(&request) {
            Some(_) => Response::new(Full::new(Bytes::from_static(ONE.as_bytes()))),
            None => not_found(),
        })
    }

    /// Why a handler answers without a session.
    enum NoSession {
        NotFound,
        Untouched,
        /// The layer put no handle of this type in the request.
        Missing(&'static str),
    }

    impl NoSession {
        fn response(self) -> Response<Body> {
            match self {
                NoSession::NotFound => not_found(),
                NoSession::Untouched => {
                    Response::new(Full::new(Bytes::from_static(ONE.as_bytes())))
                }
                NoSession::Missing(what) => {
                    text(Err(format!("no {what}: the layer is missing").into()))
                }
            }
        }
    }

    /// The path a request asks for and the session handle its layer put in its extensions,
    /// the request itself dropped.
    fn taken<T: Clone + Send + Sync + 'static>(
        request: Request<Incoming>,
    ) -> Result<(Path, T), NoSession> {
        let path = path_of(&request).ok_or(NoSession::NotFound)?;
        if path == Path::Untouched {
            return Err(NoSession::Untouched);
        }
        let session = request.extensions().get::<T>().cloned();
        session
            .map(|session| (path, session))
            .ok_or(NoSession::Missing(std::any::type_name::<T>()))
    }

    pub(super) async fn fastsession(
        request: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let (path, sessions) = match taken::<Sessions>(request) {
            Ok(taken) => taken,
            Err(no) => return Ok(no.response()),
        };
        let result = match sessions.session().await {
            Ok(session) => answer(path, &session),
            Err(error) => Err(error.into()),
        };
        Ok(text(result))
    }

    pub(super) async fn floor(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        Ok(match taken::<FloorSession>(request) {
            Ok((path, session)) => text(answer(path, &session)),
            Err(no) => no.response(),
        })
    }

    macro_rules! tower_sessions_handler {
        ($name:ident, $krate:ident, $answer:ident) => {
            pub(super) async fn $name(
                request: Request<Incoming>,
            ) -> Result<Response<Body>, Infallible> {
                Ok(match taken::<$krate::Session>(request) {
                    Ok((path, session)) => text($answer(path, &session).await),
                    Err(no) => no.response(),
                })
            }
        };
    }

    tower_sessions_handler!(tower_sessions, tower_sessions, tower_sessions_answer);
    tower_sessions_handler!(
        tower_sessions_014,
        tower_sessions_014,
        tower_sessions_014_answer
    );
}

/// The axum router: one route per path, the session as an extractor.
mod axum_handlers {
    use axum::Router;
    use axum::routing::get;

    use super::*;

    pub(super) fn bare() -> Router {
        Router::new()
            .route(Path::Hot.target(), get(|| async { ONE }))
            .route(Path::Read.target(), get(|| async { ONE }))
            .route(Path::New.target(), get(|| async { ONE }))
            .route(Path::Untouched.target(), get(|| async { ONE }))
    }

    fn respond(result: Result<u64, BoxError>) -> Result<String, StatusCode> {
        result.map(|n| n.to_string()).map_err(|error| {
            eprintln!("matrix-server: {error}");
            StatusCode::INTERNAL_SERVER_ERROR
        })
    }

    pub(super) fn fastsession() -> Router {
        use fastsession_core::Session;
        async fn hot(session: Session) -> Result<String, StatusCode> {
            respond(super::answer(Path::Hot, &session))
        }
        async fn read(session: Session) -> Result<String, StatusCode> {
            respond(super::answer(Path::Read, &session))
        }
        async fn new(session: Session) -> Result<String, StatusCode> {
            respond(super::answer(Path::New, &session))
        }
        Router::new()
            .route(Path::Hot.target(), get(hot))
            .route(Path::Read.target(), get(read))
            .route(Path::New.target(), get(new))
            .route(Path::Untouched.target(), get(|| async { ONE }))
    }

    pub(super) fn floor() -> Router {
        use axum::Extension;
        async fn hot(Extension(session): Extension<FloorSession>) -> Result<String, StatusCode> {
            respond(super::answer(Path::Hot, &session))
        }
        async fn read(Extension(session): Extension<FloorSession>) -> Result<String, StatusCode> {
            respond(super::answer(Path::Read, &session))
        }
        async fn new(Extension(session): Extension<FloorSession>) -> Result<String, StatusCode> {
            respond(super::answer(Path::New, &session))
        }
        Router::new()
            .route(Path::Hot.target(), get(hot))
            .route(Path::Read.target(), get(read))
            .route(Path::New.target(), get(new))
            .route(Path::Untouched.target(), get(|| async { ONE }))
    }

    macro_rules! tower_sessions_router {
        ($name:ident, $krate:ident, $answer:ident) => {
            pub(super) fn $name() -> Router {
                use $krate::Session;
                async fn hot(session: Session) -> Result<String, StatusCode> {
                    respond($answer(Path::Hot, &session).await)
                }
                async fn read(session: Session) -> Result<String, StatusCode> {
                    respond($answer(Path::Read, &session).await)
                }
                async fn new(session: Session) -> Result<String, StatusCode> {
                    respond($answer(Path::New, &session).await)
                }
                Router::new()
                    .route(Path::Hot.target(), get(hot))
                    .route(Path::Read.target(), get(read))
                    .route(Path::New.target(), get(new))
                    .route(Path::Untouched.target(), get(|| async { ONE }))
            }
        };
    }

    tower_sessions_router!(tower_sessions, tower_sessions, tower_sessions_answer);
    tower_sessions_router!(
        tower_sessions_014,
        tower_sessions_014,
        tower_sessions_014_answer
    );
}

/// Ten minutes without a request ends a tower-sessions session, as fastsession's default
/// idle timeout would sooner, so that what a run leaves goes away by itself too.
fn ten_minutes() -> tower_sessions_014::Expiry {
    tower_sessions_014::Expiry::OnInactivity(tower_sessions_014::cookie::time::Duration::minutes(
        10,
    ))
}

/// A hyper or axum server over `options.server`'s library and store.
async fn serve_hyper(listener: StdTcpListener, options: &Options) -> Result<(), BoxError> {
    use axum::Router;
    use fastsession_tower::SessionLayer;
    use tower::ServiceBuilder;

    let listener = tokio::net::TcpListener::from_std(listener)?;
    let server = options.server;
    let axum = server.framework == Framework::Axum;
    // Each arm builds its service and serves it: the types differ per library.
    macro_rules! go {
        ($layer:expr, $tower:expr, $router:expr) => {{
            let layer = $layer;
            if axum {
                let router: Router = $router.layer(layer);
                serve(listener, TowerToHyperService::new(router)).await
            } else {
                let service = ServiceBuilder::new().layer(layer).service_fn($tower);
                serve(listener, TowerToHyperService::new(service)).await
            }
        }};
    }
    match (server.library, server.store) {
        (Library::Bare, _) => {
            if axum {
                serve(listener, TowerToHyperService::new(axum_handlers::bare())).await
            } else {
                // Through the same tower adapter as the session layers: the floor of a tower
                // service on hyper.
                let service = ServiceBuilder::new().service_fn(tower_handlers::bare);
                serve(listener, TowerToHyperService::new(service)).await
            }
        }
        (Library::Fastsession, _) => go!(
            SessionLayer::new(fastsession_config(options).await?),
            tower_handlers::fastsession,
            axum_handlers::fastsession()
        ),
        (Library::Floor, Store::Memory) => go!(
            FloorLayer::new(MemoryFloor::new()?),
            tower_handlers::floor,
            axum_handlers::floor()
        ),
        (Library::TowerSessions, Store::Memory) => go!(
            tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                .with_secure(false),
            tower_handlers::tower_sessions,
            axum_handlers::tower_sessions()
        ),
        (Library::TowerSessions, Store::Redis) => {
            use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
            let mut config = Config::from_url(&redis_url())?;
            config.database = Some(fastsession_benches::TOWER_SESSIONS_REDIS_DB);
            // One multiplexed connection, like the other libraries' clients.
            let pool = Pool::new(config, None, None, None, 1)?;
            pool.init().await?;
            go!(
                tower_sessions_014::SessionManagerLayer::new(
                    tower_sessions_redis_store::RedisStore::new(pool)
                )
                .with_secure(false)
                .with_expiry(ten_minutes()),
                tower_handlers::tower_sessions_014,
                axum_handlers::tower_sessions_014()
            )
        }
        (Library::TowerSessions, Store::Postgres) => {
            use tower_sessions_sqlx_store::{PostgresStore, sqlx::PgPool};
            // The store's own example: `PgPool::connect` (up to 10 connections).
            let pool = PgPool::connect(&postgres_url()).await?;
            let store =
                PostgresStore::new(pool).with_schema_name(schema(&options.namespace, server))?;
            store.migrate().await?;
            go!(
                tower_sessions_014::SessionManagerLayer::new(store)
                    .with_secure(false)
                    .with_expiry(ten_minutes()),
                tower_handlers::tower_sessions_014,
                axum_handlers::tower_sessions_014()
            )
        }
        _ => Err(format!("{server} is not a hyper or axum server").into()),
    }
}

/// actix-web with one worker (its own current-thread runtime). A store with a network client
/// is made once, before the server, as the libraries' documentation does: its connection is
/// driven by the system thread's runtime.
mod actix {
    use std::net::TcpListener;

    use actix_session::config::BrowserSession;
    use actix_session::storage::{CookieSessionStore, RedisSessionStore};
    use actix_web::cookie::time::Duration;
    use actix_web::{App, HttpResponse, HttpServer, web};

    use fastsession_bench_matrix::floor::{CookieFloor, CookieFloorLayer, CookieFloorSession};

    use super::{
        BoxError, Library, ONE, Options, Path, Store, announce, answer, fastsession_config,
    };

    fn respond(result: Result<u64, BoxError>) -> HttpResponse {
        match result {
            Ok(n) => HttpResponse::Ok().body(n.to_string()),
            Err(error) => {
                eprintln!("matrix-server: {error}");
                HttpResponse::InternalServerError().finish()
            }
        }
    }

    fn routes(config: &mut web::ServiceConfig, library: Library) {
        async fn one() -> &'static str {
            ONE
        }
        macro_rules! routes {
            ($session:ty, $answer:ident) => {{
                async fn hot(session: $session) -> HttpResponse {
                    respond($answer(Path::Hot, &session))
                }
                async fn read(session: $session) -> HttpResponse {
                    respond($answer(Path::Read, &session))
                }
                async fn new(session: $session) -> HttpResponse {
                    respond($answer(Path::New, &session))
                }
                config
                    .route(Path::Hot.target(), web::get().to(hot))
                    .route(Path::Read.target(), web::get().to(read))
                    .route(Path::New.target(), web::get().to(new))
                    .route(Path::Untouched.target(), web::get().to(one));
            }};
        }
        match library {
            Library::Fastsession => {
                routes!(fastsession_core::Session, answer);
            }
            Library::ActixSession => {
                routes!(actix_session::Session, answer);
            }
            Library::Floor => {
                routes!(CookieFloorSession, answer);
            }
            _ => {
                config
                    .route(Path::Hot.target(), web::get().to(one))
                    .route(Path::Read.target(), web::get().to(one))
                    .route(Path::New.target(), web::get().to(one))
                    .route(Path::Untouched.target(), web::get().to(one));
            }
        }
    }

    pub(super) fn run(listener: TcpListener, options: &Options) -> Result<(), BoxError> {
        let server = options.server;
        actix_web::rt::System::new().block_on(async move {
            let key = actix_web::cookie::Key::generate();
            let library = server.library;
            macro_rules! go {
                ($wrap:expr) => {{
                    announce(listener.local_addr()?)?;
                    HttpServer::new(move || {
                        App::new().wrap($wrap).configure(|c| routes(c, library))
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)?
                    .run()
                    .await?
                }};
            }
            match (library, server.store) {
                (Library::Bare, _) => {
                    announce(listener.local_addr()?)?;
                    HttpServer::new(move || App::new().configure(|c| routes(c, library)))
                        .workers(1)
                        .disable_signals()
                        .listen(listener)?
                        .run()
                        .await?;
                }
                (Library::Fastsession, _) => {
                    let middleware = fastsession_actix::SessionMiddleware::new(
                        fastsession_config(options).await?,
                    );
                    go!(middleware.clone());
                }
                (Library::Floor, Store::Cookie) => {
                    let layer = CookieFloorLayer::new(CookieFloor::new()?);
                    go!(layer.clone())
                }
                (Library::ActixSession, Store::Cookie) => {
                    go!(actix_session::SessionMiddleware::builder(
                        CookieSessionStore::default(),
                        key.clone()
                    )
                    .cookie_secure(false)
                    .build())
                }
                (Library::ActixSession, Store::Redis) => {
                    let prefix = super::key_prefix(&options.namespace, server);
                    let store = RedisSessionStore::builder(super::redis_url())
                        .cache_keygen(move |key| format!("{prefix}{key}"))
                        .build()
                        .await
                        .map_err(|e| format!("connecting to Redis: {e:#}"))?;
                    let lifecycle = BrowserSession::default().state_ttl(Duration::minutes(10));
                    go!(
                        actix_session::SessionMiddleware::builder(store.clone(), key.clone())
                            .cookie_secure(false)
                            .session_lifecycle(lifecycle.clone())
                            .build()
                    );
                }
                _ => return Err(format!("{server} is not an actix-web server").into()),
            }
            Ok::<_, BoxError>(())
        })
    }
}
