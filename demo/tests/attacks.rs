//! The attack suite: the demo attacked over real HTTP on loopback, once per store, one test per
//! claim of SECURITY.md ("Hostile traffic" and the threat table point here). Every attack is
//! bounded in requests and time and talks only to 127.0.0.1.

use std::time::Duration;

use fastsession_demo::{Options, PREFS_COOKIE, SESSION_COOKIE, StoreKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Demo, Proxy, isolated, per_store};

/// The anonymous budget the attacked demos run with: small, so that a flood of three times
/// it takes a second or two.
const BUDGET: u64 = 200;

fn attacked(store: StoreKind) -> Options {
    isolated(store)
        .with_anonymous_sessions(BUDGET)
        .with_max_session_bytes(16 * 1024)
}

/// One request with exactly `cookie` (no jar), as an attacker or a script sends it.
async fn raw(demo: &Demo, method: Method, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, demo.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request reaches the demo")
}

/// The value the response sets for `name`, if it sets one that is not a removal.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|line| !line.contains("Max-Age=0"))
        .find_map(|line| {
            let (n, rest) = line.split_once('=')?;
            (n == name).then(|| rest.split(';').next().unwrap_or_default().to_owned())
        })
}

/// `GET /api/session` with exactly `cookie`.
async fn session_of(demo: &Demo, cookie: &str) -> Value {
    let response = raw(
        demo,
        Method::GET,
        "/api/session",
        Some(&format!("{SESSION_COOKIE}={cookie}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("JSON body")
}

/// Findings 1 and 2: an anonymous flood of three times the budget (each cookie-less request
/// creating a session; with the cookie store, then logging it out) leaves a logged-in user
/// logged in with their data, and a logged-out cookie refused; the store evicts only
/// anonymous sessions (or markers), and keeps no more of them than the budget.
async fn an_anonymous_flood_logs_nobody_out_and_revives_no_logout(store: StoreKind) {
    let demo = Demo::start_with(attacked(store)).await;
    let alice = demo.client();
    alice.post("/api/login?user=alice").await;
    alice.post("/api/incr?key=a").await;
    let bob = demo.client();
    bob.post("/api/login?user=bob").await;
    let bob_copy = bob.session_cookie().expect("bob's cookie");
    bob.post("/api/logout").await;

    let mut flood = Vec::new();
    for _ in 0..3 * BUDGET {
        let created = raw(&demo, Method::POST, "/api/incr?key=a", None).await;
        assert_eq!(created.status(), StatusCode::OK);
        flood.extend(set_cookie(&created, SESSION_COOKIE));
        if store == StoreKind::Cookie {
            // Each logout leaves a marker in the revocation list: those are what fill it.
            let cookie = set_cookie(&created, SESSION_COOKIE).expect("a session cookie");
            let cookie = format!("{SESSION_COOKIE}={cookie}");
            let out = raw(&demo, Method::POST, "/api/logout", Some(&cookie)).await;
            assert_eq!(out.status(), StatusCode::OK);
        }
    }
    let view = alice.session().await;
    assert_eq!(view["user"], json!("alice"), "alice is still logged in");
    assert_eq!(view["counters"]["a"], json!(1), "with her data");
    assert_eq!(
        session_of(&demo, &bob_copy).await["user"],
        json!(null),
        "bob's logout holds"
    );
    // The flood was three times the budget, so the store kept at most the budget of its
    // anonymous records: the other flood sessions are gone; with the cookie store, the other
    // logouts' markers are (their cookies open their anonymous sessions again: the
    // documented limit). Which ones go among those of one second is the store's choice.
    let mut evicted = 0;
    for cookie in &flood {
        let view = session_of(&demo, cookie).await;
        let gone = if store == StoreKind::Cookie {
            view["counters"]["a"] == json!(1)
        } else {
            view["counters"] == json!({})
        };
        evicted += usize::from(gone);
    }
    let budget = usize::try_from(BUDGET).expect("small");
    assert!(
        evicted >= flood.len() - budget,
        "the budget was not enforced: {evicted} of {} evicted",
        flood.len()
    );
}

/// Finding 4: a restart with the same secret and store does not undo a logout (the cookie
/// store's revocation list is durable), and does not log out a logged-in user (except the
/// memory store, whose sessions a restart loses: documented).
async fn a_restart_undoes_no_logout(store: StoreKind) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = attacked(store);
    let demo = Demo::start_in(options.clone(), dir.path()).await;
    let client = demo.client();
    client.post("/api/login?user=alice").await;
    let copy = client.session_cookie().expect("alice's cookie");
    client.post("/api/logout").await;
    let carol = demo.client();
    carol.post("/api/login?user=carol").await;
    let carol_cookie = carol.session_cookie().expect("carol's cookie");
    drop(demo);

    let demo = Demo::start_in(options, dir.path()).await;
    assert_eq!(session_of(&demo, &copy).await["user"], json!(null));
    let expected = if store == StoreKind::Memory {
        json!(null)
    } else {
        json!("carol")
    };
    assert_eq!(session_of(&demo, &carol_cookie).await["user"], expected);
}

/// Finding 6: a logout whose request carries the session cookie twice ends the session the
/// browser holds, whichever of the two it is.
async fn a_logout_with_a_duplicated_cookie_ends_the_session(store: StoreKind) {
    let demo = Demo::start_with(attacked(store)).await;
    let client = demo.client();
    client.post("/api/login?user=alice").await;
    let cookie = client.session_cookie().expect("alice's cookie");
    for tossed in ["tossed", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let both = format!("{SESSION_COOKIE}={tossed}; {SESSION_COOKIE}={cookie}");
        let out = raw(&demo, Method::POST, "/api/logout", Some(&both)).await;
        assert_eq!(out.status(), StatusCode::OK);
    }
    assert_eq!(session_of(&demo, &cookie).await["user"], json!(null));
}

/// Finding 8: input a store cannot hold (a NUL character, which PostgreSQL's text refuses) is
/// a clear 400 or is held; it is never a store outage, and the session is never lost.
async fn input_a_store_cannot_hold_loses_no_session(store: StoreKind) {
    let demo = Demo::start_with(attacked(store)).await;
    let client = demo.client();
    client.post("/api/login?user=alice").await;
    for path in ["/api/flash?msg=a%00b", "/api/login?user=a%00b"] {
        let status = client.send(Method::POST, path).await.status();
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "POST {path}: {status}"
        );
    }
    let user = client.session().await["user"].clone();
    assert!(
        user == json!("alice") || user == json!("a\u{0}b"),
        "still logged in: {user}"
    );
}

/// Finding 13: with the store down, a login answers 503 and sets no cookie at all, not even
/// the preferences session's (which saved fine in its cookie store).
async fn a_failed_save_sets_no_cookie(store: StoreKind) {
    let mut options = attacked(store);
    let dir = tempfile::tempdir().expect("temporary directory");
    let proxy = match store {
        StoreKind::Redis => {
            let proxy = Proxy::to("127.0.0.1:6379".parse().expect("address")).await;
            options.redis_url = format!("redis://{}", proxy.addr);
            Some(proxy)
        }
        StoreKind::Postgres => {
            let proxy = Proxy::to("127.0.0.1:5432".parse().expect("address")).await;
            options.database_url = format!("postgres://postgres@{}/test", proxy.addr);
            Some(proxy)
        }
        _ => None,
    };
    let demo = Demo::start_in(options, dir.path()).await;
    match &proxy {
        Some(proxy) => proxy.cut(),
        // The filesystem store's directory goes away under it.
        None => std::fs::remove_dir_all(dir.path().join("sessions")).expect("removed"),
    }
    let login = raw(&demo, Method::POST, "/api/login?user=mallory", None).await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(login.headers().get_all("set-cookie").iter().count(), 0);
    assert!(set_cookie(&login, PREFS_COOKIE).is_none());
}

/// Finding 12: a session's data is bounded: flash messages past the bound are refused, and
/// the session stays as it was (logged in, usable).
async fn a_session_cannot_grow_without_end(store: StoreKind) {
    let demo = Demo::start_with(attacked(store)).await;
    let client = demo.client();
    client.post("/api/login?user=alice").await;
    let message = "m".repeat(200);
    let mut refused = false;
    for _ in 0..200 {
        let status = client
            .send(Method::POST, &format!("/api/flash?msg={message}"))
            .await
            .status();
        if status.is_server_error() {
            refused = true;
            break;
        }
        assert_eq!(status, StatusCode::OK);
    }
    assert!(refused, "40 KB of flash messages were accepted");
    let view = client.session().await;
    assert_eq!(view["user"], json!("alice"));
    let huge = "x".repeat(2 << 20);
    let status = raw(&demo, Method::GET, "/api/session", Some(&huge))
        .await
        .status();
    assert!(status.is_client_error(), "a 2 MB header: {status}");
}

/// Tampering: every flipped character of a session cookie gives a fresh session, never the
/// user's and never an error.
async fn a_tampered_cookie_opens_nothing(store: StoreKind) {
    let demo = Demo::start_with(attacked(store)).await;
    let client = demo.client();
    client.post("/api/login?user=alice").await;
    let cookie = client.session_cookie().expect("alice's cookie");
    let bytes = cookie.as_bytes();
    for at in (0..bytes.len()).step_by(7) {
        let mut flipped = bytes.to_vec();
        flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ASCII");
        assert_eq!(
            session_of(&demo, &flipped).await["user"],
            json!(null),
            "at {at}"
        );
    }
    assert_eq!(session_of(&demo, &cookie).await["user"], json!("alice"));
}

/// Fixation and racing logins: a cookie planted before login is never logged in, and two
/// logins racing on one cookie leave at most one session with the old session's data.
async fn logins_rotate_and_racing_logins_do_not_fork(store: StoreKind) {
    let demo = Demo::start_with(attacked(store)).await;
    let planted = raw(&demo, Method::POST, "/api/incr?key=a", None).await;
    let planted = set_cookie(&planted, SESSION_COOKIE).expect("a session");
    let cookie = format!("{SESSION_COOKIE}={planted}");
    let (first, second) = tokio::join!(
        raw(&demo, Method::POST, "/api/login?user=alice", Some(&cookie)),
        raw(&demo, Method::POST, "/api/login?user=alice", Some(&cookie)),
    );
    assert_eq!(session_of(&demo, &planted).await["user"], json!(null));
    let mut with_data = 0;
    for response in [first, second] {
        assert!(
            response.status() == StatusCode::OK || response.status() == StatusCode::CONFLICT,
            "{}",
            response.status()
        );
        if let Some(new) = set_cookie(&response, SESSION_COOKIE) {
            let view = session_of(&demo, &new).await;
            if view["counters"]["a"] == json!(1) {
                with_data += 1;
            }
        }
    }
    assert!(with_data <= 1, "the session forked into {with_data}");
}

/// Finding 7, for the cookie store: a login whose new cookie would be over the size limit is
/// refused before the old cookie is revoked, so the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regeneration_too_large_for_a_cookie_keeps_the_session() {
    let demo = Demo::start_with(attacked(StoreKind::Cookie)).await;
    let client = demo.client();
    // Counters with long keys until the cookie is full (the last one refused).
    let mut full = false;
    for i in 0..200 {
        let status = client
            .send(Method::POST, &format!("/api/incr?key={i:0>32}"))
            .await
            .status();
        if status.is_server_error() {
            full = true;
            break;
        }
    }
    assert!(full, "the cookie never filled");
    let before = client.session_cookie().expect("a full session");
    let user = "u".repeat(64);
    let login = client
        .send(Method::POST, &format!("/api/login?user={user}"))
        .await;
    assert!(login.status().is_server_error(), "{}", login.status());
    let view = session_of(&demo, &before).await;
    assert_eq!(
        view["counters"][format!("{:0>32}", 0)],
        json!(1),
        "still open"
    );
}

per_store!(
    an_anonymous_flood_logs_nobody_out_and_revives_no_logout,
    a_restart_undoes_no_logout,
    a_logout_with_a_duplicated_cookie_ends_the_session,
    input_a_store_cannot_hold_loses_no_session,
    a_tampered_cookie_opens_nothing,
    logins_rotate_and_racing_logins_do_not_fork,
    a_session_cannot_grow_without_end,
);

mod outage {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fs_a_failed_save_sets_no_cookie() {
        a_failed_save_sets_no_cookie(StoreKind::Fs).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_a_failed_save_sets_no_cookie() {
        a_failed_save_sets_no_cookie(StoreKind::Redis).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_failed_save_sets_no_cookie() {
        a_failed_save_sets_no_cookie(StoreKind::Postgres).await;
    }
}
