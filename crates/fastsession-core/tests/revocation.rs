//! Ending sessions for good: revocable cookie sessions and "log out everywhere" on a
//! server-side store (security cases 34, 39, 40).

use std::sync::Arc;
use std::time::Duration;

use fastsession_core::Session;
use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::Expiry;
use fastsession_core::store::{CookieStore, MemoryStore, Store};
use fastsession_core::time::{Clock, ManualClock, UnixTime};
use http::HeaderMap;

const NAME: &str = "__Host-id";

struct App {
    config: SessionConfig,
    clock: ManualClock,
}

impl App {
    fn new(store: Arc<dyn Store>) -> Self {
        let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
        let config = SessionConfig::with_shared_store(store, CookieConfig::new("id").unwrap())
            .with_clock(clock.clone())
            .with_expiry(
                Expiry::new(Duration::from_secs(3600), Duration::from_secs(86_400)).unwrap(),
            );
        App { config, clock }
    }

    /// One request with `cookie`; returns whether the session was new, and the cookie after.
    async fn send(&self, cookie: Option<&str>, f: impl FnOnce(&Session)) -> (bool, Option<String>) {
        let mut headers = HeaderMap::new();
        if let Some(c) = cookie {
            headers.insert("cookie", format!("{NAME}={c}").parse().unwrap());
        }
        let sessions = Sessions::new(&headers);
        let session = sessions.get(&self.config).await.unwrap();
        let is_new = session.is_new();
        f(&session);
        let mut out = HeaderMap::new();
        sessions.save_all(&mut out).await.unwrap();
        let after = match out
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
        {
            Some(line) if line.contains("Max-Age=0") => None,
            Some(line) => Some(
                line.split(';')
                    .next()
                    .unwrap()
                    .split_once('=')
                    .unwrap()
                    .1
                    .to_owned(),
            ),
            None => cookie.map(str::to_owned),
        };
        (is_new, after)
    }
}

fn revocable(ended: Arc<MemoryStore>) -> Arc<CookieStore> {
    Arc::new(CookieStore::new(&KeyRing::new(Key::generate(1).unwrap())).with_revocation(ended))
}

/// Case 34 with revocation on: a copy of the cookie taken before logout no longer opens.
#[tokio::test]
async fn logout_ends_a_copied_cookie() {
    let ended = Arc::new(MemoryStore::new().unwrap());
    let app = App::new(revocable(ended.clone()));
    let (_, cookie) = app.send(None, |s| s.insert("user", "alice").unwrap()).await;
    let copy = cookie.clone().unwrap();
    let (is_new, after) = app.send(cookie.as_deref(), Session::destroy).await;
    assert!(!is_new && after.is_none());
    assert!(app.send(Some(&copy), |_| {}).await.0, "the copy is refused");
    assert_eq!(ended.backend().len(), 1, "one marker, no session record");
}

/// Case 40: after regenerate the old cookie is dead, the new one lives, data carried over.
#[tokio::test]
async fn regenerate_ends_the_old_cookie() {
    let app = App::new(revocable(Arc::new(MemoryStore::new().unwrap())));
    let (_, first) = app.send(None, |s| s.insert("cart", 3).unwrap()).await;
    let (_, second) = app.send(first.as_deref(), Session::regenerate).await;
    assert_ne!(first, second);
    assert!(app.send(first.as_deref(), |_| {}).await.0);
    let (is_new, _) = app
        .send(second.as_deref(), |s| {
            assert_eq!(s.get::<i32>("cart").unwrap(), Some(3))
        })
        .await;
    assert!(!is_new);
}

/// Case 39 for cookie sessions: every cookie of the user sealed before the call stops opening;
/// the session regenerated in the same request survives; other users are untouched.
#[tokio::test]
async fn log_out_everywhere_with_cookies() {
    let ended = Arc::new(MemoryStore::new().unwrap());
    let store = revocable(ended);
    let app = App::new(store.clone());
    let (_, laptop) = app.send(None, |s| s.set_user_id("alice")).await;
    let (_, phone) = app.send(None, |s| s.set_user_id("alice")).await;
    let (_, bob) = app.send(None, |s| s.set_user_id("bob")).await;
    app.clock.advance(Duration::from_secs(5));

    let now = app.clock.now();
    let (_, kept) = app.send(phone.as_deref(), |s| s.regenerate()).await;
    assert!(
        store
            .end_sessions_of("alice", now, app.config.expiry())
            .await
            .unwrap()
    );
    // The phone's session was sealed at `now`, in the request that ended the others.
    assert!(!app.send(kept.as_deref(), |_| {}).await.0);
    assert!(app.send(laptop.as_deref(), |_| {}).await.0);
    assert!(!app.send(bob.as_deref(), |_| {}).await.0);
}

/// Without a revocation list the cookie store says so, and a copy still opens (the documented
/// limit, pinned in `registry.rs` too).
#[tokio::test]
async fn without_a_list_nothing_is_revoked() {
    let store = Arc::new(CookieStore::new(&KeyRing::new(Key::generate(1).unwrap())));
    let app = App::new(store.clone());
    let (_, cookie) = app.send(None, |s| s.set_user_id("alice")).await;
    assert!(
        !store
            .end_sessions_of("alice", app.clock.now(), app.config.expiry())
            .await
            .unwrap()
    );
    app.send(cookie.as_deref(), Session::destroy).await;
    assert!(!app.send(cookie.as_deref(), |_| {}).await.0);
}

/// Case 39 on a server-side store: list a user's sessions, end all but the current one; each
/// ended session is refused on its very next request.
#[tokio::test]
async fn server_side_sessions_of_a_user() {
    let store = Arc::new(MemoryStore::new().unwrap());
    let app = App::new(store.clone());
    let mut alice = Vec::new();
    for _ in 0..3 {
        alice.push(app.send(None, |s| s.set_user_id("alice")).await.1.unwrap());
        app.clock.advance(Duration::from_secs(1));
    }
    let (_, bob) = app.send(None, |s| s.set_user_id("bob")).await;
    let now = app.clock.now();
    let listed = store
        .sessions_of("alice", app.config.expiry(), now)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.windows(2).all(|w| w[0].created <= w[1].created));

    // End one by its listed key.
    assert!(store.end_session("alice", &listed[0].key).await.unwrap());
    assert!(
        !store.end_session("bob", &listed[1].key).await.unwrap(),
        "not bob's to end"
    );
    assert!(app.send(Some(&alice[0]), |_| {}).await.0);

    // End the rest but the current one.
    let current = fastsession_core::session::SessionId::parse(&alice[2]).unwrap();
    assert_eq!(
        store
            .end_sessions_of("alice", Some(&current))
            .await
            .unwrap(),
        1
    );
    assert!(app.send(Some(&alice[1]), |_| {}).await.0);
    assert!(!app.send(Some(&alice[2]), |_| {}).await.0);
    assert!(!app.send(bob.as_deref(), |_| {}).await.0);
    assert_eq!(
        store
            .sessions_of("alice", app.config.expiry(), now)
            .await
            .unwrap()
            .len(),
        1
    );

    // Untying the user removes the session from the list.
    app.send(Some(&alice[2]), Session::clear_user_id).await;
    assert!(
        store
            .sessions_of("alice", app.config.expiry(), now)
            .await
            .unwrap()
            .is_empty()
    );
}
