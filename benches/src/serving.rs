//! What the load servers (`benches/load/server.rs`, `benches/matrix`) share: announcing the
//! address, dying with the driver, namespaces for what they leave in Redis and PostgreSQL,
//! and the hyper accept loop.

use std::error::Error as StdError;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;

/// The servers' error type.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Prints the bound address on stdout: the driver's signal that the server is ready, so
/// call it once the store is reachable.
///
/// # Errors
///
/// If stdout cannot be written.
pub fn announce(addr: SocketAddr) -> Result<(), BoxError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{addr}")?;
    stdout.flush()?;
    Ok(())
}

/// Ends the process when its stdin closes: the driver holds it, so a server never outlives
/// the driver.
pub fn exit_on_stdin_eof() {
    std::thread::spawn(|| {
        let mut sink = String::new();
        let mut stdin = io::stdin().lock();
        while matches!(stdin.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
        std::process::exit(0);
    });
}

/// Checks a namespace: it ends up in Redis keys and PostgreSQL schema names, so at most 40
/// of `a-z`, `0-9` and `_`, not starting with a digit.
///
/// # Errors
///
/// If it is not one.
pub fn valid_namespace(namespace: &str) -> Result<String, BoxError> {
    let ok = namespace
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && namespace
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && namespace.len() <= 40;
    if ok {
        Ok(namespace.to_owned())
    } else {
        Err(format!(
            "namespace {namespace:?}: use at most 40 of a-z, 0-9 and _, not starting with a digit"
        )
        .into())
    }
}

/// Redis: `FASTSESSION_BENCH_REDIS_URL`, or [`crate::REDIS_URL`].
#[must_use]
pub fn redis_url() -> String {
    std::env::var("FASTSESSION_BENCH_REDIS_URL").unwrap_or_else(|_| crate::REDIS_URL.to_owned())
}

/// PostgreSQL: `FASTSESSION_BENCH_POSTGRES_URL`, or [`crate::POSTGRES_URL`].
#[must_use]
pub fn postgres_url() -> String {
    std::env::var("FASTSESSION_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| crate::POSTGRES_URL.to_owned())
}

/// Empties Redis database [`crate::TOWER_SESSIONS_REDIS_DB`], where tower-sessions' Redis
/// store keeps its unprefixable keys.
///
/// # Errors
///
/// Redis' error.
pub async fn flush_tower_sessions_db() -> Result<(), BoxError> {
    let mut info = redis::IntoConnectionInfo::into_connection_info(redis_url())?;
    info.redis.db = i64::from(crate::TOWER_SESSIONS_REDIS_DB);
    let client = redis::Client::open(info)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut connection)
        .await?;
    Ok(())
}

/// Deletes every Redis key that starts with `prefix` (SCAN, then UNLINK in batches).
///
/// # Errors
///
/// Redis' error.
pub async fn delete_prefix(prefix: &str) -> Result<(), BoxError> {
    let client = redis::Client::open(redis_url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}*");
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut connection)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Announces the address, then accepts connections forever, each served by hyper's
/// HTTP/1.1 connection (keep-alive on, the default) in a task of the current runtime.
///
/// # Errors
///
/// If the address cannot be announced or a connection accepted.
pub async fn serve<S, B>(listener: tokio::net::TcpListener, service: S) -> Result<(), BoxError>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    announce(listener.local_addr()?)?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let service = service.clone();
        tokio::spawn(async move {
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("load server: connection error: {error}");
            }
        });
    }
}
