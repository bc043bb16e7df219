//! Two app instances sharing their sessions through Redis, as app servers behind a load
//! balancer do: log in on one, and the other knows you.
//!
//! ```text
//! cargo run --example shared_redis     # instance a on 127.0.0.1:8081, b on 127.0.0.1:8082
//! curl -c jar -b jar -X POST 'http://127.0.0.1:8081/login?user=alice'
//! curl -c jar -b jar http://127.0.0.1:8082/          # instance b: logged in as alice
//! curl -c jar -b jar -X POST http://127.0.0.1:8082/logout
//! curl -c jar -b jar http://127.0.0.1:8081/          # instance a: not logged in
//! ```
//!
//! (Cookies do not tell ports apart, so a browser or curl sends the one cookie to both.) Redis
//! is at `REDIS_URL` (default `redis://127.0.0.1:6379`); `ADDR` and `ADDR_B` override the
//! addresses. Both instances run in this one process for convenience, but share nothing
//! except what separate servers would: the Redis server, the key prefix, and the secret from
//! `FASTSESSION_SECRET` (base64 of at least 32 random bytes, as from `openssl rand -base64
//! 32`). Give every server the same secret: session ids are hashed with it to name their
//! Redis keys, so a server with another secret finds none of the sessions.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use fastsession::redis::{RedisConfig, redis_store};
use fastsession::tower::SessionLayer;
use fastsession::{CookieConfig, Error, Key, Session, SessionConfig};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// One app server: its own connection to Redis, its own name in its answers.
async fn instance(name: &'static str, redis: &RedisConfig, key: &Key) -> Result<Router, Error> {
    let store = redis_store(redis, key).await?; // fails if Redis cannot be reached
    // Plain HTTP on loopback: no `Secure` flag, no `__Host-` prefix. Not for production.
    let cookie = CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()?;
    Ok(Router::new()
        .route("/", get(whoami))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(SessionLayer::new(SessionConfig::new(store, cookie)))
        .with_state(name))
}

async fn whoami(State(name): State<&'static str>, session: Session) -> String {
    match session.user_id() {
        Some(user) => format!("instance {name}: logged in as {user}\n"),
        None => format!("instance {name}: not logged in\n"),
    }
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

// Logging in and out is kept to the bare bones to show the sharing; `axum_login` shows
// the checks a real login needs (a password, a CSRF token).
async fn login(name: State<&'static str>, session: Session, Query(login): Query<Login>) -> String {
    session.regenerate(); // a new id, written to Redis for every instance to find
    session.set_user_id(login.user);
    whoami(name, session).await
}

async fn logout(State(name): State<&'static str>, session: Session) -> String {
    session.destroy(); // deleted from Redis: no instance finds it again
    format!("instance {name}: logged out\n")
}

async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let key = match std::env::var("FASTSESSION_SECRET") {
        Ok(secret) => Key::from_base64(&secret)?,
        Err(_) => {
            tracing::warn!(
                "FASTSESSION_SECRET is not set: using a random key, so sessions will not \
                 survive a restart, nor be found by a server in another process"
            );
            Key::generate()?
        }
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // Every instance uses the same prefix; other apps on this Redis use their own.
    let redis = RedisConfig::new(url).with_key_prefix("fastsession-example:");
    let a = instance("a", &redis, &key).await?;
    let b = instance("b", &redis, &key).await?;

    let addr = |var, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let listener_a = tokio::net::TcpListener::bind(addr("ADDR", "127.0.0.1:8081")).await?;
    let listener_b = tokio::net::TcpListener::bind(addr("ADDR_B", "127.0.0.1:8082")).await?;
    tokio::try_join!(serve(listener_a, a), serve(listener_b, b))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// Sends a request with `cookie`; returns the body and the cookie to send next.
    async fn send(app: &Router, method: &str, uri: &str, cookie: &str) -> (String, String) {
        let request = Request::builder().method(method).uri(uri);
        let request = request
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let next = match response.headers().get(header::SET_COOKIE) {
            Some(line) => line.to_str().unwrap().split(';').next().unwrap().to_owned(),
            None => cookie.to_owned(),
        };
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (String::from_utf8(body.to_vec()).unwrap(), next)
    }

    #[tokio::test]
    async fn a_login_on_one_instance_is_seen_by_the_other() {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        // A prefix of this run's own: nothing left by another run (or app) is found.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let prefix = format!(
            "fastsession-example-test:{}:{}:",
            std::process::id(),
            nanos.unwrap().as_nanos()
        );
        let redis = RedisConfig::new(url.as_str()).with_key_prefix(prefix);
        let key = Key::generate().unwrap();
        let instances = async {
            Ok::<_, Error>((
                instance("a", &redis, &key).await?,
                instance("b", &redis, &key).await?,
            ))
        };
        let (a, b) = instances.await.unwrap_or_else(|e| {
            panic!(
                "cannot reach Redis at {url} ({e}): start it with `.ci/services` from the \
                 repository root, or `redis-server`, or point REDIS_URL at one"
            )
        });

        let (body, cookie) = send(&a, "POST", "/login?user=alice", "").await;
        assert_eq!(body, "instance a: logged in as alice\n");
        assert_eq!(
            send(&b, "GET", "/", &cookie).await.0,
            "instance b: logged in as alice\n"
        );

        let (body, _) = send(&b, "POST", "/logout", &cookie).await;
        assert_eq!(body, "instance b: logged out\n");
        // The old cookie, replayed on a: the session is gone from Redis.
        assert_eq!(
            send(&a, "GET", "/", &cookie).await.0,
            "instance a: not logged in\n"
        );

        // Another secret hashes ids to other keys: its instance finds nothing.
        let (_, cookie) = send(&a, "POST", "/login?user=bob", "").await;
        let stranger = instance("c", &redis, &Key::generate().unwrap())
            .await
            .unwrap();
        assert_eq!(
            send(&stranger, "GET", "/", &cookie).await.0,
            "instance c: not logged in\n"
        );
        send(&a, "POST", "/logout", &cookie).await; // leaves nothing in Redis
    }
}
