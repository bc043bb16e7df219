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
                Expiry::default()
                    .with_idle_timeout(Duration::from_secs(3600))
                    .unwrap()
                    .with_absolute_lifetime(Duration::from_secs(86_400))
                    .unwrap(),
            );
        App { config, clock }
    }

    /// The registry of a request that sends `cookie`.
    fn request(&self, cookie: Option<&str>) -> Sessions {
        let mut headers = HeaderMap::new();
        if let Some(c) = cookie {
            headers.insert("cookie", format!("{NAME}={c}").parse().unwrap());
        }
        Sessions::new(&headers)
    }

    /// Saves `request` (sent with `cookie`); the cookie after it, or the save's error.
    async fn finish(
        &self,
        request: &Sessions,
        cookie: Option<&str>,
    ) -> fastsession_core::Result<Option<String>> {
        let mut out = HeaderMap::new();
        request.save_all(&mut out).await?;
        Ok(cookie_after(&out, cookie))
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
        (is_new, cookie_after(&out, cookie))
    }
}

/// The cookie a client holds after a response with `headers`, having sent `cookie`.
fn cookie_after(headers: &HeaderMap, cookie: Option<&str>) -> Option<String> {
    match headers
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
    }
}

fn revocable(ended: Arc<MemoryStore>) -> Arc<CookieStore> {
    Arc::new(CookieStore::new(&KeyRing::new(Key::generate().unwrap())).with_revocation(ended))
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

/// Case 39 for cookie sessions: every cookie of the user sealed up to the call stops opening;
/// the session of the request that made the call, kept, goes on; other users are untouched.
#[tokio::test]
async fn log_out_everywhere_with_cookies() {
    let ended = Arc::new(MemoryStore::new().unwrap());
    let store = revocable(ended);
    let app = App::new(store.clone());
    let (_, laptop) = app.send(None, |s| s.set_user_id("alice")).await;
    let (_, phone) = app.send(None, |s| s.set_user_id("alice")).await;
    let (_, bob) = app.send(None, |s| s.set_user_id("bob")).await;
    app.clock.advance(Duration::from_secs(5));

    let request = app.request(phone.as_deref());
    let session = request.get(&app.config).await.unwrap();
    let now = app.clock.now();
    assert!(
        store
            .end_sessions_of("alice", Some(&session), now, app.config.expiry())
            .await
            .unwrap()
    );
    session.insert("after", true).unwrap();
    let kept = app.finish(&request, phone.as_deref()).await.unwrap();
    assert!(!app.send(kept.as_deref(), |_| {}).await.0);
    assert!(!app.send(phone.as_deref(), |_| {}).await.0, "kept");
    assert!(app.send(laptop.as_deref(), |_| {}).await.0);
    assert!(!app.send(bob.as_deref(), |_| {}).await.0);
    // A new login of the user in the same second is not ended by it.
    let (_, fresh) = app.send(None, |s| s.set_user_id("alice")).await;
    assert!(!app.send(fresh.as_deref(), |_| {}).await.0);
}

/// Finding: a cookie sealed a moment before "log out everywhere", in the same second, used to
/// keep opening (whole seconds compared with `<`).
#[tokio::test]
async fn log_out_everywhere_ends_a_cookie_sealed_in_the_same_second() {
    let store = revocable(Arc::new(MemoryStore::new().unwrap()));
    let app = App::new(store.clone());
    let (_, cookie) = app.send(None, |s| s.set_user_id("alice")).await;
    let now = app.clock.now();
    store
        .end_sessions_of("alice", None, now, app.config.expiry())
        .await
        .unwrap();
    assert!(app.send(cookie.as_deref(), |_| {}).await.0);
}

/// Finding: a request that loaded a session before "log out everywhere" and saved after it
/// used to get a cookie that survived; its save now fails and clears the cookie.
#[tokio::test]
async fn log_out_everywhere_ends_a_request_in_flight() {
    let store = revocable(Arc::new(MemoryStore::new().unwrap()));
    let app = App::new(store.clone());
    for change in [
        |s: &Session| s.insert("late", 1).unwrap(),
        |s: &Session| s.regenerate(),
    ] {
        let (_, cookie) = app.send(None, |s| s.set_user_id("alice")).await;
        app.clock.advance(Duration::from_secs(5));
        let request = app.request(cookie.as_deref());
        let session = request.get(&app.config).await.unwrap();
        assert!(!session.is_new());
        store
            .end_sessions_of("alice", None, app.clock.now(), app.config.expiry())
            .await
            .unwrap();
        change(&session);
        let error = app.finish(&request, cookie.as_deref()).await.unwrap_err();
        assert!(error.is_session_ended(), "{error}");
        assert!(app.send(cookie.as_deref(), |_| {}).await.0);
    }
}

/// Finding: after a save in the middle of a request the record lost its id, so a logout in
/// the same request had nothing to revoke and the old cookie kept opening.
#[tokio::test]
async fn logout_after_a_mid_request_save_ends_the_old_cookie() {
    let app = App::new(revocable(Arc::new(MemoryStore::new().unwrap())));
    let (_, cookie) = app.send(None, |s| s.insert("a", 1).unwrap()).await;
    let request = app.request(cookie.as_deref());
    let session = request.get(&app.config).await.unwrap();
    session.insert("b", 2).unwrap();
    request.save().await.unwrap();
    session.destroy();
    assert_eq!(app.finish(&request, cookie.as_deref()).await.unwrap(), None);
    assert!(app.send(cookie.as_deref(), |_| {}).await.0);
}

/// Finding: a regeneration whose new cookie is over the size limit used to revoke the old id
/// first, so the answer was an error and a dead cookie; now nothing is revoked.
#[tokio::test]
async fn regenerate_near_the_size_limit_keeps_the_old_session() {
    let app = App::new(revocable(Arc::new(MemoryStore::new().unwrap())));
    let (_, cookie) = app.send(None, |s| s.insert("a", 1).unwrap()).await;
    let request = app.request(cookie.as_deref());
    let session = request.get(&app.config).await.unwrap();
    session.insert("big", "x".repeat(4000)).unwrap();
    session.regenerate();
    let error = app.finish(&request, cookie.as_deref()).await.unwrap_err();
    assert!(error.is_cookie_too_large(), "{error}");
    let (is_new, _) = app
        .send(cookie.as_deref(), |s| {
            assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
        })
        .await;
    assert!(!is_new, "the old cookie still opens");
}

/// Finding: a cookie sealed without an id (before the revocation list was turned on) could not
/// be revoked, so logging it out did nothing; with a list, such cookies no longer open.
#[tokio::test]
async fn cookies_without_an_id_do_not_open_with_a_revocation_list() {
    let keys = KeyRing::new(Key::generate().unwrap());
    let plain = App::new(Arc::new(CookieStore::new(&keys)));
    let (_, cookie) = plain.send(None, |s| s.set_user_id("alice")).await;
    let with_list = CookieStore::new(&keys).with_revocation(Arc::new(MemoryStore::new().unwrap()));
    let app = App::new(Arc::new(with_list));
    app.clock.set(plain.clock.now());
    assert!(app.send(cookie.as_deref(), |_| {}).await.0);
}

/// Finding: two requests that loaded the same cookie and both regenerated used to get two live
/// cookies; one wins, the other's save fails.
#[tokio::test]
async fn racing_regenerations_leave_one_successor() {
    let app = App::new(revocable(Arc::new(MemoryStore::new().unwrap())));
    let (_, cookie) = app.send(None, |s| s.insert("a", 1).unwrap()).await;
    let first = app.request(cookie.as_deref());
    let second = app.request(cookie.as_deref());
    first.get(&app.config).await.unwrap().regenerate();
    second.get(&app.config).await.unwrap().regenerate();
    let winner = app.finish(&first, cookie.as_deref()).await.unwrap();
    let loser = app.finish(&second, cookie.as_deref()).await.unwrap_err();
    assert!(loser.is_session_ended(), "{loser}");
    assert!(!app.send(winner.as_deref(), |_| {}).await.0);
    assert!(app.send(cookie.as_deref(), |_| {}).await.0);
}

/// Without a revocation list the cookie store says so, and a copy still opens (the documented
/// limit, pinned in `registry.rs` too).
#[tokio::test]
async fn without_a_list_nothing_is_revoked() {
    let store = Arc::new(CookieStore::new(&KeyRing::new(Key::generate().unwrap())));
    let app = App::new(store.clone());
    let (_, cookie) = app.send(None, |s| s.set_user_id("alice")).await;
    assert!(
        !store
            .end_sessions_of("alice", None, app.clock.now(), app.config.expiry())
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

/// Finding: a logout whose request carried the session cookie twice (`id=V; id=tossed`)
/// answered as if it had logged out, yet V kept opening. Every authentic session presented
/// is ended, on a cookie store with a list and on a server-side store.
#[tokio::test]
async fn logout_with_a_duplicated_cookie_ends_every_authentic_session() {
    let stores: [Arc<dyn Store>; 2] = [
        revocable(Arc::new(MemoryStore::new().unwrap())),
        Arc::new(MemoryStore::new().unwrap()),
    ];
    for store in stores {
        let app = App::new(store);
        let (_, cookie) = app.send(None, |s| s.set_user_id("alice")).await;
        let cookie = cookie.unwrap();
        let mut headers = HeaderMap::new();
        let both = format!("{NAME}={cookie}; {NAME}=tossed");
        headers.insert("cookie", both.parse().unwrap());
        let request = Sessions::new(&headers);
        let session = request.get(&app.config).await.unwrap();
        assert!(session.is_new(), "neither duplicate is trusted to load");
        session.destroy();
        let mut out = HeaderMap::new();
        request.save_all(&mut out).await.unwrap();
        assert!(out["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        assert!(app.send(Some(&cookie), |_| {}).await.0, "V is ended");
    }
}

/// Finding: an anonymous flood of logins and logouts evicted the revocation markers of a
/// memory-store list (closest to expiry first), so a logged-out cookie opened again. Markers
/// of logged-in sessions are outside the anonymous budget: the flood evicts only its own.
#[tokio::test]
async fn an_anonymous_flood_never_revives_a_logout() {
    use fastsession_core::store::AnonymousBudget;

    let list = Arc::new(
        MemoryStore::with_max_sessions(1_000)
            .unwrap()
            .with_anonymous_budget(AnonymousBudget::new(100, 1 << 20)),
    );
    let app = App::new(revocable(list.clone()));
    let (_, alice) = app.send(None, |s| s.set_user_id("alice")).await;
    let copy = alice.clone();
    app.send(alice.as_deref(), Session::destroy).await;
    for _ in 0..300 {
        let (_, anonymous) = app.send(None, |s| s.insert("a", 1).unwrap()).await;
        app.send(anonymous.as_deref(), Session::destroy).await;
    }
    assert!(
        app.send(copy.as_deref(), |_| {}).await.0,
        "alice stays logged out"
    );
    assert!(
        list.backend().len() <= 101,
        "anonymous markers within budget"
    );
}

/// A revocation list with no room left refuses the logout (`StoreFull`) rather than forget an
/// older one; the response then clears nothing, and the cookie is not reported ended.
#[tokio::test]
async fn a_full_revocation_list_fails_closed() {
    let list = Arc::new(MemoryStore::with_max_sessions(2).unwrap());
    let app = App::new(revocable(list));
    let mut cookies = Vec::new();
    for user in ["a", "b", "c"] {
        cookies.push(app.send(None, |s| s.set_user_id(user)).await.1);
    }
    for cookie in &cookies[..2] {
        app.send(cookie.as_deref(), Session::destroy).await;
    }
    let request = app.request(cookies[2].as_deref());
    request.get(&app.config).await.unwrap().destroy();
    let error = app
        .finish(&request, cookies[2].as_deref())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), fastsession_core::ErrorKind::StoreFull);
    for cookie in &cookies[..2] {
        assert!(
            app.send(cookie.as_deref(), |_| {}).await.0,
            "earlier logouts hold"
        );
    }
}
