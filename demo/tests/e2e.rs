//! The demo over real HTTP, once per store: what a user does, and what an attacker tries.

use std::time::{Duration, Instant};

use fastsession_demo::{PREFS_COOKIE, SESSION_COOKIE, StoreKind};
use reqwest::Method;
use serde_json::json;

use crate::support::{Demo, isolated, per_store};

/// Log in, count, see flashes once, log out; the pre-login and the logged-out cookies are
/// worth nothing afterwards.
async fn lifecycle(store: StoreKind) {
    let demo = Demo::start(store).await;
    let client = demo.client();
    assert_eq!(
        client.session().await,
        json!({"user": null, "counters": {}, "flashes": [], "remember": false})
    );
    assert_eq!(
        client.session_cookie(),
        None,
        "reading an empty session sets nothing"
    );

    client.post("/api/incr?key=a").await;
    let before_login = client.session_cookie().expect("a session after a change");

    let login = client.send(Method::POST, "/api/login?user=alice").await;
    assert_eq!(login.status(), 200);
    let names: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split('=').next().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [SESSION_COOKIE, PREFS_COOKIE],
        "both sessions saved together"
    );
    let after_login = client.session_cookie().expect("logged-in session");
    assert_ne!(
        before_login, after_login,
        "the id changes at login (fixation)"
    );
    assert!(client.prefs_cookie().is_some());
    let planted = client.replay(&before_login).await;
    assert_eq!(
        planted["user"],
        json!(null),
        "the pre-login cookie is not logged in"
    );

    assert_eq!(
        client.post("/api/incr?key=a").await,
        json!({"key": "a", "value": 2})
    );
    assert_eq!(
        client.post("/api/incr?key=b").await,
        json!({"key": "b", "value": 1})
    );
    client.post("/api/flash?msg=hello").await;
    assert_eq!(
        client.session().await,
        json!({
            "user": "alice",
            "counters": {"a": 2, "b": 1},
            "flashes": ["Welcome, alice!", "hello"],
            "remember": false
        })
    );
    assert_eq!(
        client.session().await["flashes"],
        json!([]),
        "flashes are shown once"
    );

    let logged_in = client.session_cookie().expect("logged-in session");
    assert_eq!(client.post("/api/logout").await, json!({"user": null}));
    assert_eq!(client.session_cookie(), None, "logout clears the cookie");
    assert_eq!(
        client.session().await,
        json!({"user": null, "counters": {}, "flashes": [], "remember": false})
    );
    let replayed = client.replay(&logged_in).await;
    assert_eq!(
        replayed,
        json!({"user": null, "counters": {}, "flashes": [], "remember": false}),
        "a copy of the logged-out cookie is rejected"
    );
}

/// "Remember me" switches between a browser-session and a persistent cookie.
async fn remember(store: StoreKind) {
    let demo = Demo::start(store).await;
    let client = demo.client();
    client.post("/api/login?user=bob").await;
    let set_cookie = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
            .map(str::to_owned)
            .expect("session cookie set")
    };
    let on = client.send(Method::POST, "/api/remember?on=true").await;
    assert!(set_cookie(&on).contains("Max-Age="), "{}", set_cookie(&on));
    assert_eq!(client.session().await["remember"], json!(true));
    let off = client.send(Method::POST, "/api/remember?on=false").await;
    assert!(
        !set_cookie(&off).contains("Max-Age="),
        "{}",
        set_cookie(&off)
    );
    assert_eq!(client.session().await["remember"], json!(false));
}

/// A session unused for longer than the idle timeout has ended.
async fn idle_timeout(store: StoreKind) {
    let options = isolated(store).with_timeouts(Duration::from_secs(2), Duration::from_secs(3600));
    let demo = Demo::start_with(options).await;
    let client = demo.client();
    client.post("/api/login?user=carol").await;
    assert_eq!(client.session().await["user"], json!("carol"));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(client.session().await["user"], json!(null));
}

/// A session in constant use still ends at its absolute lifetime.
async fn absolute_timeout(store: StoreKind) {
    let options = isolated(store).with_timeouts(Duration::from_secs(3), Duration::from_secs(5));
    let demo = Demo::start_with(options).await;
    let client = demo.client();
    client.post("/api/login?user=dave").await;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(900)).await;
        let user = client.session().await["user"].clone();
        let elapsed = start.elapsed();
        if elapsed < Duration::from_secs(4) {
            assert_eq!(user, json!("dave"), "alive at {elapsed:?}");
        } else if elapsed > Duration::from_secs(6) {
            assert_eq!(user, json!(null), "ended at {elapsed:?}");
            break;
        }
    }
}

/// Concurrent requests on one session changing counters, different ones and one.
async fn parallel_counters(store: StoreKind) {
    different_counters(store).await;
    one_counter(store).await;
}

/// Concurrent requests on one session incrementing one counter: on a server-side store every
/// increment counts (the store adds each request's); with the cookie store the browser keeps
/// the last cookie, which holds at least its own increment.
async fn one_counter(store: StoreKind) {
    const CLIENTS: u64 = 8;
    const ROUNDS: u64 = 10;
    let demo = Demo::start(store).await;
    let client = demo.client();
    client.post("/api/login?user=frank").await;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    client.post("/api/incr?key=same").await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let counters = client.session().await["counters"].clone();
    let value = counters["same"].as_u64().unwrap_or(0);
    if store == StoreKind::Cookie {
        assert!((1..=CLIENTS * ROUNDS).contains(&value), "{counters}");
    } else {
        assert_eq!(value, CLIENTS * ROUNDS, "lost increments: {counters}");
    }
}

/// Concurrent requests on one session changing different counters: on a server-side store
/// none is lost; the cookie store cannot merge (the browser keeps the last cookie).
async fn different_counters(store: StoreKind) {
    const KEYS: [&str; 4] = ["w", "x", "y", "z"];
    const ROUNDS: u64 = 10;
    let demo = Demo::start(store).await;
    let client = demo.client();
    client.post("/api/login?user=erin").await;
    let tasks: Vec<_> = KEYS
        .iter()
        .map(|key| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    client.post(&format!("/api/incr?key={key}")).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let counters = client.session().await["counters"].clone();
    let values: Vec<u64> = KEYS
        .iter()
        .map(|key| counters[key].as_u64().unwrap_or(0))
        .collect();
    if store == StoreKind::Cookie {
        // The last cookie the client kept wins: at least its own increment survives.
        assert!(values.iter().all(|v| *v <= ROUNDS), "{counters}");
        assert!(values.iter().sum::<u64>() >= 1, "{counters}");
    } else {
        assert_eq!(values, [ROUNDS; 4], "lost writes: {counters}");
    }
    assert_eq!(client.session().await["user"], json!("erin"));
}

/// Bad input is a clear 400; hostile cookies give a fresh session, not an error.
async fn hostile_input(store: StoreKind) {
    let demo = Demo::start(store).await;
    let client = demo.client();
    for path in [
        "/api/login?user=",
        "/api/incr?key=a%20b",
        "/api/incr?key=",
        "/api/flash?msg=",
        "/api/remember?on=maybe",
    ] {
        let response = client.send(Method::POST, path).await;
        assert_eq!(response.status(), 400, "POST {path}");
    }
    for cookie in [
        "garbage",
        "../../etc/passwd",
        "'; DROP TABLE sessions; --",
        &"A".repeat(5000),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let session = client.replay(cookie).await;
        assert_eq!(session["user"], json!(null), "cookie {cookie:.20}");
    }
}

per_store!(
    lifecycle,
    remember,
    idle_timeout,
    absolute_timeout,
    parallel_counters,
    hostile_input,
);

#[tokio::test]
async fn an_unreachable_store_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let mut options = isolated(StoreKind::Redis);
    options.redis_url = "redis://127.0.0.1:1".to_owned();
    let error = fastsession_demo::app(&options)
        .await
        .expect_err("no Redis on port 1");
    assert!(
        error.to_string().contains("`redis` store is not available"),
        "{error}"
    );
    let mut options = isolated(StoreKind::Postgres);
    options.database_url = "postgres://postgres@127.0.0.1:1/test".to_owned();
    let error = fastsession_demo::app(&options)
        .await
        .expect_err("no PostgreSQL on port 1");
    assert!(
        error
            .to_string()
            .contains("`postgres` store is not available"),
        "{error}"
    );
}
