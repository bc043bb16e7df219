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
//! * `floor-cookie`: no session library: bare hyper, the counter and two timestamps (24 bytes)
//!   sealed with fastsession's codec (XChaCha20-Poly1305, base64url) into the `id` cookie, and
//!   the headers fastsession's defaults ask for (`Set-Cookie` with the same attributes,
//!   `Vary: Cookie`, `Cache-Control: no-store`). What a sealed-cookie read-modify-write with
//!   these security defaults costs at least (see [`floor_cookie`]).
//!
//! Modes over a shared store, all with the read-modify-write handler; the servers
//! are at `FASTSESSION_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`) and
//! `FASTSESSION_BENCH_POSTGRES_URL` (default `postgres://127.0.0.1:5432/test`):
//!
//! * `tower-sessions-redis`: tower-sessions 0.14 with `tower-sessions-redis-store` 0.16 (a
//!   fred `Pool`, size `FASTSESSION_BENCH_FRED_POOL`, default
//!   [`fastsession_benches::FRED_POOL_SIZE`]), in Redis database 13 (its keys cannot be
//!   prefixed);
//! * `actix-session-redis`: actix-session 0.11 with `RedisSessionStore` (redis-rs
//!   `ConnectionManager`), keys prefixed `NAMESPACE:actix-session-redis:`;
//! * `tower-sessions-postgres`: tower-sessions 0.14 with `tower-sessions-sqlx-store` 0.15
//!   (`PostgresStore`, sqlx pool), table in the schema `NAMESPACE_tower_sessions`;
//! * `fastsession-redis`, `fastsession-postgres`: fastsession's stores, prefix
//!   `NAMESPACE:fastsession-redis:` and schema `NAMESPACE_fastsession`;
//! * `floor-redis`: no session library, only the Redis commands fastsession's store sends for
//!   a read-modify-write, through the same client (redis-rs `ConnectionManager`,
//!   `TCP_NODELAY`): an `HGETALL`, then one `MULTI`/`EXEC` of `HEXISTS`, `HSET`, `HINCRBY`,
//!   `EXPIRE`. The cookie is the bare random id, nothing is signed, hashed or parsed as JSON.
//!   What any store keeping fastsession's contract (merge, never revive) over this client
//!   costs at least (see [`floor`]); prefix `NAMESPACE:floor-redis:`.
//! * `floor-plain-redis`: `floor-redis` with a bare `HSET` of the two fields instead of the
//!   `MULTI`/`EXEC` (no version, no TTL, no check that the session still exists: it breaks the
//!   contract, and shows what the atomic step costs); in the `distributed` suite, not in
//!   `redis`.
//!
//! `NAMESPACE` is `--namespace NS` (letters, digits and `_`; default `fsbench_PID`), so that
//! runs never share keys. `load-server --cleanup MODE NS` deletes what `MODE` left under `NS`
//! (for `tower-sessions-redis`: empties database 13).

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};

use bytes::Bytes;
use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::Sessions;
use fastsession_core::http::{CookieConfig, SessionConfig};
use fastsession_core::store::{CookieStore, MemoryStore};
use fastsession_tower::SessionLayer;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

type Body = Full<Bytes>;

/// The fixed body of the modes whose handler does not use a session.
const HELLO: &[u8] = b"Hello, World!";

use fastsession_benches::all_load_modes;
use fastsession_benches::serving::{
    BoxError, announce, delete_prefix, exit_on_stdin_eof, flush_tower_sessions_db, postgres_url,
    redis_url, serve, valid_namespace,
};

fn main() {
    if let Err(error) = run() {
        eprintln!("load-server: {error}");
        std::process::exit(1);
    }
}

/// The options after `MODE ADDR`.
struct Options {
    exit_on_stdin_eof: bool,
    namespace: String,
}

fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let modes = || all_load_modes().collect::<Vec<_>>().join(" ");
    let usage = || {
        format!(
            "usage: load-server MODE ADDR [--exit-on-stdin-eof] [--namespace NS]\n       load-server --cleanup MODE NS\nmodes: {}",
            modes()
        )
    };
    let check_mode = |mode: &str| {
        if all_load_modes().any(|m| m == mode) {
            Ok(())
        } else {
            Err(format!("unknown mode {mode:?}; modes: {}", modes()))
        }
    };
    if args.first().is_some_and(|a| a == "--cleanup") {
        let (Some(mode), Some(namespace), None) = (args.get(1), args.get(2), args.get(3)) else {
            return Err(usage().into());
        };
        check_mode(mode)?;
        return cleanup(mode, &valid_namespace(namespace)?);
    }
    let (Some(mode), Some(addr)) = (args.first(), args.get(1)) else {
        return Err(usage().into());
    };
    check_mode(mode)?;
    let mut options = Options {
        exit_on_stdin_eof: false,
        namespace: format!("fsbench_{}", std::process::id()),
    };
    let mut rest = args.iter().skip(2);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--exit-on-stdin-eof" => options.exit_on_stdin_eof = true,
            "--namespace" => {
                let namespace = rest.next().ok_or("--namespace needs a value")?;
                options.namespace = valid_namespace(namespace)?;
            }
            other => return Err(format!("unknown argument {other:?}\n{}", usage()).into()),
        }
    }
    let addr: SocketAddr = addr.parse()?;
    let listener = StdTcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;

    if options.exit_on_stdin_eof {
        exit_on_stdin_eof();
    }

    match mode.as_str() {
        "actix" => actix::run(listener, actix::Store::None),
        "actix-session" => actix::run(listener, actix::Store::Cookie),
        "actix-session-redis" => actix::run(
            listener,
            actix::Store::Redis {
                url: redis_url(),
                prefix: key_prefix(&options.namespace, mode),
            },
        ),
        _ => run_hyper(mode, listener, &options.namespace),
    }
}

/// The Redis key prefix of `mode` in `namespace`.
fn key_prefix(namespace: &str, mode: &str) -> String {
    format!("{namespace}:{mode}:")
}

/// The PostgreSQL schema of `mode` in `namespace`.
fn schema(namespace: &str, mode: &str) -> String {
    let mode = mode.strip_suffix("-postgres").unwrap_or(mode);
    format!("{namespace}_{}", mode.replace('-', "_"))
}

/// Cookie settings of the fastsession modes: cookie `id`, not `Secure` (plain HTTP).
fn cookie() -> Result<CookieConfig, BoxError> {
    Ok(CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()?)
}

/// fastsession's Redis store, keys under `prefix` (the clean-up deletes every key that starts
/// with it), in the same `SessionConfig` as `fastsession-memory`.
async fn fastsession_redis_store(url: &str, prefix: &str) -> Result<SessionConfig, BoxError> {
    let config = fastsession_redis::RedisConfig::new(url).with_key_prefix(prefix);
    let store = fastsession_redis::redis_store(&config, &Key::generate()?).await?;
    Ok(SessionConfig::new(store, cookie()?))
}

/// fastsession's PostgreSQL store, its table (and migration) in `schema` (the clean-up drops
/// that schema).
async fn fastsession_postgres_store(url: &str, schema: &str) -> Result<SessionConfig, BoxError> {
    let config = fastsession_postgres::PostgresConfig::new(url).with_schema(schema);
    let store = fastsession_postgres::postgres_store(config, &Key::generate()?).await?;
    store.backend().migrate().await?;
    Ok(SessionConfig::new(store, cookie()?))
}

/// Deletes what `mode` left in its store under `namespace`; nothing for the modes without a
/// shared store.
fn cleanup(mode: &str, namespace: &str) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match mode {
            "tower-sessions-redis" => {
                flush_tower_sessions_db().await?;
            }
            "actix-session-redis" | "fastsession-redis" | "floor-redis" | "floor-plain-redis" => {
                delete_prefix(&key_prefix(namespace, mode)).await?;
            }
            "tower-sessions-postgres" | "fastsession-postgres" => {
                use tower_sessions_sqlx_store::sqlx;
                let pool = sqlx::PgPool::connect(&postgres_url()).await?;
                // The name is a checked namespace and a fixed suffix: no quoting issue.
                sqlx::query(&format!(
                    r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#,
                    schema(namespace, mode)
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

/// Runs a hyper-based mode on a current-thread Tokio runtime until the process is killed.
fn run_hyper(mode: &str, listener: StdTcpListener, namespace: &str) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let cookie_store = || -> Result<SessionConfig, BoxError> {
            let keys = KeyRing::new(Key::generate()?);
            Ok(SessionConfig::new(CookieStore::new(&keys), cookie()?))
        };
        // Ten minutes without a request ends a peer's session, so that keys and rows a run
        // leaves behind go away by themselves too.
        let ten_minutes = tower_sessions_014::Expiry::OnInactivity(
            tower_sessions_014::cookie::time::Duration::minutes(10),
        );
        match mode {
            "hyper" => serve(listener, hyper::service::service_fn(hello)).await,
            "floor-cookie" => {
                let codec = std::sync::Arc::new(fastsession_core::codec::Codec::new(
                    &KeyRing::new(Key::generate()?),
                    "session-cookie",
                ));
                let service = hyper::service::service_fn(move |request| {
                    std::future::ready(Ok::<_, Infallible>(floor_cookie(&codec, &request)))
                });
                serve(listener, service).await
            }
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
            "tower-sessions-redis" => {
                use tower_sessions_redis_store::fred::prelude::{
                    ClientLike, Config, ConnectionConfig, Pool,
                };
                let mut config = Config::from_url(&redis_url())?;
                config.database = Some(fastsession_benches::TOWER_SESSIONS_REDIS_DB);
                // A fred pool of multiplexed connections, as the store's example sets it up
                // (with 6); 1 is one connection, like actix-session's ConnectionManager.
                let size = match std::env::var("FASTSESSION_BENCH_FRED_POOL") {
                    Ok(size) => size.parse()?,
                    Err(_) => fastsession_benches::FRED_POOL_SIZE,
                };
                // Neither peer's Redis client sets TCP_NODELAY by default (fred: `nodelay:
                // None`; redis-rs: its `tcp_nodelay` feature, off); `FASTSESSION_BENCH_NODELAY=1`
                // sets it here, for a look at what Nagle costs.
                let mut connection = ConnectionConfig::default();
                if std::env::var("FASTSESSION_BENCH_NODELAY").is_ok_and(|v| v == "1") {
                    connection.tcp.nodelay = Some(true);
                }
                let pool = Pool::new(config, None, Some(connection), None, size)?;
                pool.init().await?;
                let layer = tower_sessions_014::SessionManagerLayer::new(
                    tower_sessions_redis_store::RedisStore::new(pool),
                )
                .with_secure(false)
                .with_expiry(ten_minutes);
                let service = ServiceBuilder::new()
                    .layer(layer)
                    .service_fn(rmw_tower_sessions_014);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "tower-sessions-postgres" => {
                use tower_sessions_sqlx_store::{PostgresStore, sqlx::PgPool};
                // The store's own example: `PgPool::connect` (up to 10 connections).
                let pool = PgPool::connect(&postgres_url()).await?;
                let store = PostgresStore::new(pool).with_schema_name(schema(namespace, mode))?;
                store.migrate().await?;
                let layer = tower_sessions_014::SessionManagerLayer::new(store)
                    .with_secure(false)
                    .with_expiry(ten_minutes);
                let service = ServiceBuilder::new()
                    .layer(layer)
                    .service_fn(rmw_tower_sessions_014);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "fastsession-redis" | "fastsession-postgres" => {
                let config = if mode == "fastsession-redis" {
                    fastsession_redis_store(&redis_url(), &key_prefix(namespace, mode)).await?
                } else {
                    fastsession_postgres_store(&postgres_url(), &schema(namespace, mode)).await?
                };
                let service = ServiceBuilder::new()
                    .layer(SessionLayer::new(config))
                    .service_fn(rmw_fastsession);
                serve(listener, TowerToHyperService::new(service)).await
            }
            "floor-redis" | "floor-plain-redis" => {
                let plain = mode == "floor-plain-redis";
                let floor = std::sync::Arc::new(
                    floor::Floor::connect(&redis_url(), key_prefix(namespace, mode), plain).await?,
                );
                let service = hyper::service::service_fn(move |request| {
                    std::sync::Arc::clone(&floor).serve(request)
                });
                serve(listener, service).await
            }
            other => Err(format!("unknown mode {other:?}").into()),
        }
    })
}

/// `floor-redis`: the read-modify-write of the counter `n` with nothing but the Redis commands
/// fastsession's store sends for it in the common case, so that its throughput bounds what
/// any store keeping that contract (a hash per session merged field by field, an atomic save
/// that bumps the version, sets the TTL and never revives a deleted session) can reach over
/// this client and this server.
mod floor {
    use std::convert::Infallible;
    use std::time::{SystemTime, UNIX_EPOCH};

    use bytes::Bytes;
    use http::{Request, Response, StatusCode, header};
    use http_body_util::Full;
    use redis_rs::aio::ConnectionManager;
    use ring::rand::{SecureRandom, SystemRandom};

    use super::{Body, BoxError, status};

    const COOKIE: &str = "id";
    const TTL_SECS: i64 = 600;

    pub(super) struct Floor {
        conn: ConnectionManager,
        /// `floor-plain-redis`: a bare `HSET` instead of the `MULTI`/`EXEC`.
        plain: bool,
        prefix: String,
        random: SystemRandom,
    }

    impl Floor {
        pub(super) async fn connect(
            url: &str,
            prefix: String,
            plain: bool,
        ) -> Result<Self, BoxError> {
            let info = redis_rs::IntoConnectionInfo::into_connection_info(url)?;
            let tcp = info.tcp_settings().clone().set_nodelay(true);
            let client = redis_rs::Client::open(info.set_tcp_settings(tcp))?;
            Ok(Floor {
                conn: ConnectionManager::new(client).await?,
                plain,
                prefix,
                random: SystemRandom::new(),
            })
        }

        pub(super) async fn serve<B>(
            self: std::sync::Arc<Self>,
            request: Request<B>,
        ) -> Result<Response<Body>, Infallible> {
            Ok(self.rmw(&request).await.unwrap_or_else(|error| {
                eprintln!("load-server: floor-redis: {error}");
                status(StatusCode::INTERNAL_SERVER_ERROR)
            }))
        }

        async fn rmw<B>(&self, request: &Request<B>) -> Result<Response<Body>, BoxError> {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let mut conn = self.conn.clone();
            if let Some(id) = session_id(request) {
                let key = format!("{}s:{{{id}}}", self.prefix);
                let fields: Vec<(String, String)> = redis_rs::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await?;
                if fields.iter().any(|(name, _)| name == "created") {
                    let n = match fields.iter().find(|(name, _)| name == "v:n") {
                        Some((_, n)) => n.parse::<u64>()? + 1,
                        None => 1,
                    };
                    let body = Response::new(Full::new(Bytes::from(n.to_string())));
                    if self.plain {
                        redis_rs::cmd("HSET")
                            .arg(&key)
                            .arg("last_active")
                            .arg(now)
                            .arg("v:n")
                            .arg(n)
                            .query_async::<()>(&mut conn)
                            .await?;
                        return Ok(body);
                    }
                    let mut pipe = redis_rs::pipe();
                    pipe.atomic()
                        .hexists(&key, "created")
                        .cmd("HSET")
                        .arg(&key)
                        .arg("last_active")
                        .arg(now)
                        .arg("v:n")
                        .arg(n)
                        .ignore()
                        .hincr(&key, "version", 1)
                        .ignore()
                        .expire(&key, TTL_SECS)
                        .ignore();
                    let (existed,): (bool,) = pipe.query_async(&mut conn).await?;
                    if !existed {
                        redis_rs::cmd("DEL")
                            .arg(&key)
                            .query_async::<()>(&mut conn)
                            .await?;
                        return Err("the session ended during the request".into());
                    }
                    return Ok(body);
                }
            }
            // No session, or an unknown one: a new one holding n = 1.
            let mut bytes = [0u8; 16];
            self.random
                .fill(&mut bytes)
                .map_err(|_| "no random bytes")?;
            let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let key = format!("{}s:{{{id}}}", self.prefix);
            let mut pipe = redis_rs::pipe();
            pipe.atomic()
                .cmd("HSET")
                .arg(&key)
                .arg("created")
                .arg(now)
                .arg("last_active")
                .arg(now)
                .arg("version")
                .arg(1)
                .arg("v:n")
                .arg(1)
                .ignore()
                .expire(&key, TTL_SECS)
                .ignore();
            pipe.query_async::<()>(&mut conn).await?;
            let mut response = Response::new(Full::new(Bytes::from_static(b"1")));
            response.headers_mut().insert(
                header::SET_COOKIE,
                format!("{COOKIE}={id}; Path=/; HttpOnly").parse()?,
            );
            Ok(response)
        }
    }

    /// The id in the request's `id` cookie, if it looks like one of ours.
    fn session_id<B>(request: &Request<B>) -> Option<&str> {
        request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, id)| id)
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
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

/// `floor-cookie`: the read-modify-write of a counter sealed into the `id` cookie, with no
/// session library: what the crypto, the encoding and the headers fastsession's defaults ask
/// for cost at least. The plaintext is the creation time, the last activity and the counter,
/// 8 bytes each (fastsession's JSON record of the same is about 45).
fn floor_cookie<B>(codec: &fastsession_core::codec::Codec, request: &Request<B>) -> Response<Body> {
    use http::HeaderValue;
    use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The value after `id=` at the start of a cookie pair, read as bytes: no splitting or
    // trimming of the other cookies, so that the floor is no higher than it need be.
    let sealed = request.headers().get_all(COOKIE).iter().find_map(|value| {
        let bytes = value.as_bytes();
        let start = (0..bytes.len()).find(|&i| {
            bytes[i..].starts_with(b"id=")
                && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b';')
        })? + 3;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b';')
            .map_or(bytes.len(), |n| start + n);
        std::str::from_utf8(&bytes[start..end]).ok()
    });
    let opened = sealed.and_then(|sealed| codec.open("id", sealed).ok());
    let (created, n) = match opened.as_ref().map(|o| o.plaintext()) {
        Some(
            &[
                c0,
                c1,
                c2,
                c3,
                c4,
                c5,
                c6,
                c7,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                n0,
                n1,
                n2,
                n3,
                n4,
                n5,
                n6,
                n7,
            ],
        ) => (
            u64::from_le_bytes([c0, c1, c2, c3, c4, c5, c6, c7]),
            u64::from_le_bytes([n0, n1, n2, n3, n4, n5, n6, n7]) + 1,
        ),
        _ => (now, 1),
    };
    let mut plaintext = [0u8; 24];
    plaintext[..8].copy_from_slice(&created.to_le_bytes());
    plaintext[8..16].copy_from_slice(&now.to_le_bytes());
    plaintext[16..].copy_from_slice(&n.to_le_bytes());
    let Ok(sealed) = codec.seal("id", &plaintext) else {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    const ATTRIBUTES: &str = "; HttpOnly; SameSite=Lax; Path=/";
    let mut line = String::with_capacity(3 + sealed.len() + ATTRIBUTES.len());
    line.push_str("id=");
    line.push_str(&sealed);
    line.push_str(ATTRIBUTES);
    let Ok(line) = HeaderValue::from_maybe_shared(Bytes::from(line)) else {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut response = Response::new(Full::new(Bytes::from(n.to_string())));
    let headers = response.headers_mut();
    headers.insert(VARY, HeaderValue::from_static("Cookie"));
    headers.insert(SET_COOKIE, line);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Read-modify-write of the counter `n` in the default fastsession session.
async fn rmw_fastsession<B>(request: Request<B>) -> Result<Response<Body>, Infallible> {
    let Some(sessions) = request.extensions().get::<Sessions>().cloned() else {
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

/// Read-modify-write of the counter `n` in a tower-sessions session: the same handler for
/// tower-sessions 0.15 (memory store) and 0.14 (its Redis and SQL stores).
macro_rules! rmw_tower_sessions {
    ($name:ident, $krate:ident) => {
        async fn $name<B>(request: Request<B>) -> Result<Response<Body>, Infallible> {
            let Some(session) = request.extensions().get::<$krate::Session>().cloned() else {
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
    };
}

rmw_tower_sessions!(rmw_tower_sessions, tower_sessions);
rmw_tower_sessions!(rmw_tower_sessions_014, tower_sessions_014);

mod actix {
    use std::net::TcpListener;

    use actix_session::config::BrowserSession;
    use actix_session::storage::{CookieSessionStore, RedisSessionStore};
    use actix_session::{Session, SessionMiddleware};
    use actix_web::cookie::time::Duration;
    use actix_web::{App, HttpServer, web};

    use super::{BoxError, HELLO, announce};

    /// The session store of an actix mode.
    pub(super) enum Store {
        /// No session middleware.
        None,
        /// `CookieSessionStore` (private, the default).
        Cookie,
        /// `RedisSessionStore` at `url`, keys prefixed with `prefix`.
        Redis { url: String, prefix: String },
    }

    /// actix-web with one worker thread (its own current-thread runtime); the acceptor
    /// thread and the system thread are idle once the connections are open, except with
    /// Redis: the store is made once, as its documentation does, so its connection is driven
    /// by the system thread's runtime.
    pub(super) fn run(listener: TcpListener, store: Store) -> Result<(), BoxError> {
        actix_web::rt::System::new().block_on(async move {
            let key = actix_web::cookie::Key::generate();
            match store {
                Store::None => {
                    announce(listener.local_addr()?)?;
                    HttpServer::new(|| App::new().default_service(web::to(hello)))
                        .workers(1)
                        .disable_signals()
                        .listen(listener)?
                        .run()
                        .await?;
                }
                Store::Cookie => {
                    announce(listener.local_addr()?)?;
                    HttpServer::new(move || {
                        App::new()
                            .wrap(
                                SessionMiddleware::builder(
                                    CookieSessionStore::default(),
                                    key.clone(),
                                )
                                .cookie_secure(false)
                                .build(),
                            )
                            .default_service(web::to(rmw))
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)?
                    .run()
                    .await?;
                }
                Store::Redis { url, prefix } => {
                    let store = RedisSessionStore::builder(url)
                        .cache_keygen(move |key| format!("{prefix}{key}"))
                        .build()
                        .await
                        .map_err(|e| format!("connecting to Redis: {e:#}"))?;
                    announce(listener.local_addr()?)?;
                    // Ten minutes without a request ends a session, so that keys a run
                    // leaves behind go away by themselves too.
                    let lifecycle = BrowserSession::default().state_ttl(Duration::minutes(10));
                    HttpServer::new(move || {
                        App::new()
                            .wrap(
                                SessionMiddleware::builder(store.clone(), key.clone())
                                    .cookie_secure(false)
                                    .session_lifecycle(lifecycle.clone())
                                    .build(),
                            )
                            .default_service(web::to(rmw))
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)?
                    .run()
                    .await?;
                }
            }
            Ok::<_, BoxError>(())
        })
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
