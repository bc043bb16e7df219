//! The per-request registry with the cookie store: named sessions, several stores, duplicate
//! cookies, failed handlers, "remember me", flashes, and what a cookie store cannot do
//! (security cases 31, 34, 40, 44, 46).

use std::time::Duration;

use fastsession_core::time::Clock as _;

use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::Session;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};

use crate::support::{Env, NAME, cookie_header, next_request, ring, set_cookies, set_value};
use crate::tamper::{assert_rejected_request, issue, vary_only};

/// Issues a session holding `user = name`, returning its cookie value.
async fn issue_for(env: &Env, name: &str) -> String {
    env.send(None, |s| s.insert("user", name).unwrap())
        .await
        .value()
}

/// Case 31: the session cookie twice is no session, even when both copies are valid; the
/// request never silently picks one.
#[tokio::test]
async fn duplicate_session_cookies_give_a_fresh_session() {
    let env = Env::new();
    let alice = issue_for(&env, "alice").await;
    let bob = issue_for(&env, "bob").await;
    let cases = [
        format!("{NAME}={alice}; {NAME}={bob}"),
        format!("{NAME}={alice}; {NAME}={alice}"),
        format!("{NAME}={alice}; other=1; {NAME}=tossed"),
        format!("{NAME}=tossed; {NAME}={alice}"),
        format!("{NAME}={alice};{NAME}="),
    ];
    for case in &cases {
        assert_rejected_request(&env, &cookie_header(case), "duplicate_cookies").await;
    }
    // Split over two Cookie headers (HTTP/2 sends one per cookie).
    let mut request = HeaderMap::new();
    request.append(COOKIE, format!("{NAME}={alice}").parse().unwrap());
    request.append(COOKIE, format!("x=1; {NAME}={bob}").parse().unwrap());
    assert_rejected_request(&env, &request, "duplicate_cookies").await;

    // Writing then replaces both with one new session.
    let response = env
        .send(Some(&cases[0]), |s| s.insert("user", "carol").unwrap())
        .await;
    assert_eq!(env.reasons(), ["duplicate_cookies"]);
    env.send(Some(&response.cookie()), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("carol"));
    })
    .await;

    // Names are case-sensitive and matched whole: these are other cookies, not duplicates.
    let others = format!("__host-id={bob}; {NAME}x={bob}; x{NAME}={bob}; {NAME}={alice}");
    env.send(Some(&others), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("alice"));
    })
    .await;
    assert!(env.reasons().is_empty());
}

/// Asking twice for one name in one request gives the same session, even through another
/// configuration object with that cookie name.
#[tokio::test]
async fn one_name_is_one_session_per_request() {
    let env = Env::new();
    let value = issue(&env).await;
    let sessions = Sessions::new(&cookie_header(&format!("{NAME}={value}")));
    let first = sessions.get(&env.config).await.unwrap();
    let second = sessions.get(&env.config).await.unwrap();
    let same_name = env.config(&ring(9), CookieConfig::new("id").unwrap());
    let third = sessions.get(&same_name).await.unwrap();
    first.insert("n", 1).unwrap();
    assert_eq!(second.get::<u8>("n").unwrap(), Some(1));
    assert_eq!(
        third.get::<String>("user").unwrap().as_deref(),
        Some("gopher")
    );
    let mut headers = HeaderMap::new();
    sessions.save_all(&mut headers).await.unwrap();
    assert_eq!(headers.get_all(SET_COOKIE).iter().count(), 1);
    assert!(env.reasons().is_empty());
}

/// Two named sessions from two stores with different key rings, in one request, saved by
/// one call in cookie-name order.
#[tokio::test]
async fn sessions_from_two_stores_are_saved_together_in_name_order() {
    let env = Env::new();
    env.watch_key(2);
    let cart = env.config(&ring(1), CookieConfig::new("cart").unwrap());
    let auth = env.config(&ring(2), CookieConfig::new("auth").unwrap());

    let sessions = Sessions::new(&HeaderMap::new());
    // Asked for in reverse name order.
    sessions
        .get(&cart)
        .await
        .unwrap()
        .insert("items", [1, 2])
        .unwrap();
    sessions
        .get(&auth)
        .await
        .unwrap()
        .insert("user", "gopher")
        .unwrap();
    let mut headers = HeaderMap::new();
    sessions.save_all(&mut headers).await.unwrap();
    let lines = set_cookies(&headers);
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("__Host-auth="), "{lines:?}");
    assert!(lines[1].starts_with("__Host-cart="), "{lines:?}");
    let auth_value = set_value(&headers, "__Host-auth").unwrap();
    let cart_value = set_value(&headers, "__Host-cart").unwrap();

    // Next request: both load; only the changed one is written.
    let request = cookie_header(&format!(
        "__Host-cart={cart_value}; __Host-auth={auth_value}"
    ));
    let sessions = Sessions::new(&request);
    let c = sessions.get(&cart).await.unwrap();
    let a = sessions.get(&auth).await.unwrap();
    assert_eq!(c.get::<Vec<u8>>("items").unwrap(), Some(vec![1, 2]));
    assert_eq!(a.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    c.insert("items", [3]).unwrap();
    let mut headers = HeaderMap::new();
    sessions.save_all(&mut headers).await.unwrap();
    let lines = set_cookies(&headers);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("__Host-cart="));
    assert!(env.reasons().is_empty());

    // Each store's cookie is bound to its own key and name.
    let swapped = cookie_header(&format!("__Host-auth={cart_value}"));
    let sessions = Sessions::new(&swapped);
    assert!(sessions.get(&auth).await.unwrap().is_new());
    assert_eq!(env.reasons(), ["unknown_key"]);
}

/// Case 44: a handler that fails does not save, and a registry dropped without saving writes
/// nothing; only an explicit `save` commits before the response is built.
#[tokio::test]
async fn a_failed_handler_persists_nothing() {
    let env = Env::new();
    let value = issue(&env).await;
    let request = cookie_header(&format!("{NAME}={value}"));

    async fn handler(sessions: &Sessions, env: &Env, commit: bool) -> Result<(), &'static str> {
        let session = sessions.get(&env.config).await.unwrap();
        session.insert("user", "mallory").unwrap();
        if commit {
            sessions.save().await.unwrap();
        }
        Err("database down")
    }

    // The adapter's rule: save only after success. On error the registry is dropped.
    let sessions = Sessions::new(&request);
    let mut response = HeaderMap::new();
    if handler(&sessions, &env, false).await.is_ok() {
        sessions.save_all(&mut response).await.unwrap();
    }
    drop(sessions);
    assert!(response.is_empty());
    // The browser's cookie is untouched, so the next request sees the old data.
    env.send(Some(&format!("{NAME}={value}")), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await;

    // A handler that committed explicitly keeps its write even if it then fails.
    let sessions = Sessions::new(&request);
    assert!(handler(&sessions, &env, true).await.is_err());
    let mut response = HeaderMap::new();
    sessions.write_headers(&mut response);
    let committed = set_value(&response, NAME).unwrap();
    env.send(Some(&format!("{NAME}={committed}")), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("mallory"));
    })
    .await;
}

/// "Remember me": a persistent session's cookie carries `Max-Age`; switching it off removes
/// it. The flag lives in the sealed record, so reads and refreshes keep it.
#[tokio::test]
async fn remember_me_switches_max_age() {
    let env = Env::new();
    let response = env
        .send(None, |s| {
            s.insert("user", "gopher").unwrap();
            s.set_persistent(true);
        })
        .await;
    let line = response.set_cookies().remove(0);
    assert!(line.ends_with("; Path=/; Max-Age=2592000"), "{line}");
    let persistent = response.cookie();

    let response = env
        .send(Some(&persistent), |s| assert!(s.is_persistent()))
        .await;
    assert_eq!(response.dump(), vary_only());
    // A refresh keeps it persistent.
    env.set_time(env.now() + 7 * 3600);
    let response = env.send(Some(&persistent), |_| {}).await;
    assert!(response.set_cookies()[0].ends_with("; Max-Age=2592000"));

    let response = env
        .send(Some(&persistent), |s| s.set_persistent(false))
        .await;
    let line = response.set_cookies().remove(0);
    assert!(line.ends_with("; Secure; Path=/"), "{line}");
    assert!(!line.contains("Max-Age") && !line.contains("Expires"));
    env.send(Some(&response.cookie()), |s| {
        assert!(!s.is_persistent());
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await;

    // Persistent by default, with a chosen lifetime.
    let mut env = env;
    env.config = env.config(
        &env.ring,
        CookieConfig::builder("id")
            .with_persistent_by_default(true)
            .with_max_age(Duration::from_secs(7 * 24 * 3600))
            .build()
            .unwrap(),
    );
    let response = env.send(None, |s| s.insert("k", 1).unwrap()).await;
    assert!(response.was_new && response.session.is_persistent());
    assert!(response.set_cookies()[0].ends_with("; Max-Age=604800"));
}

/// Flashes survive one round trip and are gone after they are read.
#[tokio::test]
async fn flashes_are_read_once() {
    let env = Env::new();
    let first = env
        .send(None, |s| {
            s.add_flash("Saved.").unwrap();
            s.add_flash_under("errors", "bad").unwrap();
            s.add_flash_under("errors", "worse").unwrap();
        })
        .await;
    let second = env
        .send(Some(&first.cookie()), |s| {
            assert_eq!(s.take_flashes::<String>().unwrap(), ["Saved."]);
            assert!(s.take_flashes::<String>().unwrap().is_empty());
        })
        .await;
    let third = env
        .send(Some(&second.cookie()), |s| {
            assert!(s.take_flashes::<String>().unwrap().is_empty());
            assert_eq!(
                s.take_flashes_under::<String>("errors").unwrap(),
                ["bad", "worse"]
            );
        })
        .await;
    env.send(Some(&third.cookie()), |s| {
        assert!(s.take_flashes_under::<String>("errors").unwrap().is_empty());
    })
    .await;
    // A cookie store cannot stop a replay: the first cookie still holds its flash.
    env.send(Some(&first.cookie()), |s| {
        assert_eq!(s.take_flashes::<String>().unwrap(), ["Saved."]);
    })
    .await;
}

/// Cases 34 and 40 for the cookie store: regenerate re-seals the same data; logout clears the
/// browser's cookie, but a copy taken before still opens until it expires or its key is
/// removed (documented on `CookieStore`). Pinned so that adding revocation changes this test.
#[tokio::test]
async fn regenerate_and_logout_cannot_revoke_a_copied_cookie() {
    let env = Env::new();
    let before = issue(&env).await;
    let response = env
        .send(Some(&format!("{NAME}={before}")), Session::regenerate)
        .await;
    let after = response.value();
    assert_ne!(after, before);
    env.send(Some(&format!("{NAME}={after}")), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await;

    let logout = env
        .send(Some(&format!("{NAME}={after}")), Session::destroy)
        .await;
    assert!(logout.set_cookies()[0].contains("Max-Age=0"));
    for copy in [&before, &after] {
        env.send(Some(&format!("{NAME}={copy}")), |s| {
            assert!(!s.is_new(), "a cookie store has no server state to revoke");
        })
        .await;
    }
}

/// Case 46 for the cookie store: it cannot merge concurrent writes. Two requests from one
/// cookie each get back a cookie with only their own change; the browser keeps the last.
#[tokio::test]
async fn concurrent_writes_are_not_merged() {
    let env = Env::new();
    let value = issue(&env).await;
    let cookie = format!("{NAME}={value}");
    let a = env.send(Some(&cookie), |s| s.insert("a", 1).unwrap()).await;
    let b = env.send(Some(&cookie), |s| s.insert("b", 2).unwrap()).await;
    env.send(Some(&a.cookie()), |s| assert_eq!(s.keys(), ["a", "user"]))
        .await;
    env.send(Some(&b.cookie()), |s| assert_eq!(s.keys(), ["b", "user"]))
        .await;
}

/// A store that counts its calls, around a cookie store.
#[derive(Debug)]
struct Spy {
    inner: fastsession_core::store::CookieStore,
    loads: std::sync::atomic::AtomicUsize,
    saves: std::sync::atomic::AtomicUsize,
}

impl fastsession_core::store::Store for Spy {
    fn cookie_content(&self) -> fastsession_core::store::CookieContent {
        self.inner.cookie_content()
    }

    fn load<'a>(
        &'a self,
        request: fastsession_core::store::LoadRequest<'a>,
    ) -> fastsession_core::store::StoreFuture<'a, fastsession_core::store::Loaded> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load(request)
    }

    fn save<'a>(
        &'a self,
        request: fastsession_core::store::SaveRequest<'a>,
    ) -> fastsession_core::store::StoreFuture<'a, fastsession_core::store::Saved> {
        self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.save(request)
    }
}

/// A request whose handler never asks for its session costs no store call (so no decoding,
/// no decryption) and writes no header, even with a valid cookie; asking loads exactly once.
#[tokio::test]
async fn untouched_sessions_are_never_loaded() {
    use fastsession_core::http::SessionConfig;
    use fastsession_core::store::{CookieStore, Store};
    use std::sync::Arc;
    use std::sync::atomic::Ordering::SeqCst;

    let env = Env::new();
    let cookie = issue_for(&env, "alice").await;
    let spy = Arc::new(Spy {
        inner: CookieStore::new(&env.ring),
        loads: 0.into(),
        saves: 0.into(),
    });
    let config = SessionConfig::with_shared_store(
        Arc::clone(&spy) as Arc<dyn Store>,
        CookieConfig::new("id").unwrap(),
    )
    .with_clock(env.clock.clone());
    let request = cookie_header(&format!("{NAME}={cookie}"));

    let sessions = Sessions::new(&request);
    let mut response = HeaderMap::new();
    sessions.save_all(&mut response).await.unwrap();
    assert!(response.is_empty());
    assert_eq!((spy.loads.load(SeqCst), spy.saves.load(SeqCst)), (0, 0));

    let sessions = Sessions::new(&request);
    let first = sessions.get(&config).await.unwrap();
    let second = sessions.get(&config).await.unwrap();
    assert_eq!(
        first.get::<String>("user").unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        second.get::<String>("user").unwrap().as_deref(),
        Some("alice")
    );
    sessions.save_all(&mut response).await.unwrap();
    assert_eq!((spy.loads.load(SeqCst), spy.saves.load(SeqCst)), (1, 0));
    assert!(
        response.get(SET_COOKIE).is_none(),
        "read-only and not due for refresh"
    );
}

/// `save` tries every session, whatever fails, and reports the first error; the next `save`
/// tries again the ones that failed, and no others.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_save_tries_every_session_and_again_only_the_failed_ones() {
    use std::sync::Arc;

    use fastsession_core::ErrorKind;
    use fastsession_core::http::SessionConfig;
    use fastsession_core::store::{CookieStore, MemoryStore};
    use fastsession_core::testing::SpyStore;

    let keys = ring(1);
    let spy = |store: Arc<dyn fastsession_core::store::Store>| Arc::new(SpyStore::new(store));
    let a_spy = spy(Arc::new(CookieStore::new(&keys)));
    let b_spy = spy(Arc::new(CookieStore::new(&keys)));
    let c_spy = spy(Arc::new(MemoryStore::new().unwrap()));
    let config = |spy: &Arc<SpyStore>, name| {
        SessionConfig::with_shared_store(spy.clone(), CookieConfig::new(name).unwrap())
    };
    let (a, b, c) = (
        config(&a_spy, "a"),
        config(&b_spy, "b"),
        config(&c_spy, "c"),
    );
    c_spy.fail_saves(true);

    let sessions = Sessions::new(&HeaderMap::new());
    for config in [&c, &b, &a] {
        sessions.get(config).await.unwrap().insert("n", 1).unwrap();
    }
    sessions
        .get(&b)
        .await
        .unwrap()
        .insert("big", "x".repeat(5000))
        .unwrap();

    // b's store sealed it; the registry refused the line.
    let error = sessions.save().await.unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::CookieTooLarge { .. }),
        "b's error, met first: {error}"
    );
    assert_eq!((a_spy.saves(), b_spy.saves(), c_spy.saves()), (1, 1, 1));
    let mut headers = HeaderMap::new();
    sessions.write_headers(&mut headers);
    let lines = set_cookies(&headers);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("__Host-a="), "{lines:?}");

    // The next save tries both again; once all is saved, nothing more is.
    c_spy.fail_saves(false);
    sessions.get(&b).await.unwrap().remove("big");
    sessions.save().await.unwrap();
    sessions.save().await.unwrap();
    assert_eq!((a_spy.saves(), b_spy.saves(), c_spy.saves()), (1, 2, 2));
}

/// A failed save is not skipped by a later one: once the handler fixes the session, the next
/// save writes it.
#[tokio::test]
async fn a_failed_save_is_tried_again_later() {
    use fastsession_core::http::SessionConfig;
    use fastsession_core::store::CookieStore;

    let config = SessionConfig::new(CookieStore::new(&ring(1)), CookieConfig::new("a").unwrap());
    let sessions = Sessions::new(&HeaderMap::new());
    let session = sessions.get(&config).await.unwrap();
    session.insert("big", "x".repeat(5000)).unwrap();
    sessions.save().await.unwrap_err();
    session.remove("big");
    session.insert("n", 1).unwrap();
    sessions.save().await.unwrap();
    let mut headers = HeaderMap::new();
    sessions.write_headers(&mut headers);
    assert_eq!(set_cookies(&headers).len(), 1);
}

/// A store that needs I/O for every save, over a spy of the memory store; a save waits for `gate` if one is set.
#[cfg(feature = "testing")]
#[derive(Debug)]
struct Remote {
    spy: std::sync::Arc<fastsession_core::testing::SpyStore>,
    gate: Option<std::sync::Arc<tokio::sync::Notify>>,
}

#[cfg(feature = "testing")]
impl fastsession_core::store::Store for Remote {
    fn cookie_content(&self) -> fastsession_core::store::CookieContent {
        fastsession_core::store::Store::cookie_content(&*self.spy)
    }

    fn load<'a>(
        &'a self,
        request: fastsession_core::store::LoadRequest<'a>,
    ) -> fastsession_core::store::StoreFuture<'a, fastsession_core::store::Loaded> {
        fastsession_core::store::Store::load(&*self.spy, request)
    }

    fn save<'a>(
        &'a self,
        request: fastsession_core::store::SaveRequest<'a>,
    ) -> fastsession_core::store::StoreFuture<'a, fastsession_core::store::Saved> {
        fastsession_core::store::StoreFuture::io(async move {
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            fastsession_core::store::Store::save(&*self.spy, request).await
        })
    }
}

/// After a save through a store with I/O the session holds what it held, saved; after a
/// failed save it still holds its unsaved changes, which the next save writes.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_save_leaves_the_session_whole_and_a_failed_one_its_changes() {
    use std::sync::Arc;

    use fastsession_core::http::SessionConfig;
    use fastsession_core::store::MemoryStore;
    use fastsession_core::testing::SpyStore;

    let spy = Arc::new(SpyStore::new(Arc::new(MemoryStore::new().unwrap())));
    let remote = Remote {
        spy: spy.clone(),
        gate: None,
    };
    let config = SessionConfig::new(remote, CookieConfig::new("r").unwrap());
    let sessions = Sessions::new(&HeaderMap::new());
    sessions.get(&config).await.unwrap().insert("n", 1).unwrap();
    sessions.save().await.unwrap();
    let session = sessions.get(&config).await.unwrap();
    assert_eq!(session.get::<u32>("n").unwrap(), Some(1));
    assert!(!session.is_modified(), "saved");
    drop(session);
    let mut headers = HeaderMap::new();
    sessions.write_headers(&mut headers);
    let request = next_request(&headers);

    // A failed save leaves the change in the session, for the next save.
    let sessions = Sessions::new(&request);
    sessions.get(&config).await.unwrap().insert("n", 2).unwrap();
    spy.fail_saves(true);
    sessions.save().await.unwrap_err();
    let session = sessions.get(&config).await.unwrap();
    assert_eq!(session.get::<u32>("n").unwrap(), Some(2));
    assert!(session.is_modified(), "not saved");
    drop(session);
    spy.fail_saves(false);
    sessions.save().await.unwrap();
    assert_eq!(spy.saves(), 3);
    let loaded = Sessions::new(&request);
    let session = loaded.get(&config).await.unwrap();
    assert_eq!(
        session.get::<u32>("n").unwrap(),
        Some(2),
        "the retry wrote it"
    );
}

/// While a save waits on its store, another handle to the registry or to the session still
/// sees the session whole.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_session_others_can_reach_stays_whole_during_the_save() {
    use std::sync::Arc;

    use fastsession_core::http::SessionConfig;
    use fastsession_core::store::MemoryStore;
    use fastsession_core::testing::SpyStore;

    let gate = Arc::new(tokio::sync::Notify::new());
    let remote = Remote {
        spy: Arc::new(SpyStore::new(Arc::new(MemoryStore::new().unwrap()))),
        gate: Some(gate.clone()),
    };
    let config = SessionConfig::new(remote, CookieConfig::new("r").unwrap());

    // Another handle to the registry.
    let sessions = Sessions::new(&HeaderMap::new());
    sessions.get(&config).await.unwrap().insert("n", 1).unwrap();
    let other = sessions.clone();
    let config_ref = &config;
    let look = async {
        let session = other.get(config_ref).await.unwrap();
        let seen = session.get::<u32>("n").unwrap();
        gate.notify_one();
        seen
    };
    let (saved, seen) = tokio::join!(sessions.save(), look);
    saved.unwrap();
    assert_eq!(seen, Some(1));

    // Another handle to the session.
    let sessions = Sessions::new(&HeaderMap::new());
    let session = sessions.get(&config).await.unwrap();
    session.insert("n", 2).unwrap();
    let look = async {
        let seen = session.get::<u32>("n").unwrap();
        // Written while the save runs: not in it, so kept for the next one.
        session.insert("m", 3).unwrap();
        gate.notify_one();
        seen
    };
    let (saved, seen) = tokio::join!(sessions.save(), look);
    saved.unwrap();
    assert_eq!(seen, Some(2));
    assert!(
        session.is_modified(),
        "what came during the save waits for the next"
    );
    gate.notify_one();
    sessions.save().await.unwrap();
    assert!(!session.is_modified());
    assert_eq!(session.get::<u32>("m").unwrap(), Some(3));
}

/// `Session::status` says what the save will do, and a save resets it: the session is
/// unchanged afterwards (a destroyed one is a fresh session then).
#[tokio::test]
async fn status_says_what_the_save_does_and_the_save_resets_it() {
    use fastsession_core::session::SessionStatus;

    let env = Env::new();
    let created = env
        .send(None, |s| {
            assert_eq!(s.status(), SessionStatus::Unchanged);
            s.insert("a", 1).unwrap();
            assert_eq!(s.status(), SessionStatus::Changed);
        })
        .await;
    created.assert_ok();
    assert_eq!(created.session.status(), SessionStatus::Unchanged);
    let renewed = env
        .send(Some(&created.cookie()), |s| {
            assert_eq!(s.status(), SessionStatus::Unchanged, "only loaded");
            s.regenerate();
            s.insert("b", 2).unwrap();
            assert_eq!(s.status(), SessionStatus::Renewed);
        })
        .await;
    renewed.assert_ok();
    assert_eq!(renewed.session.status(), SessionStatus::Unchanged);
    let purged = env
        .send(Some(&renewed.cookie()), |s| {
            s.destroy();
            assert_eq!(s.status(), SessionStatus::Purged);
        })
        .await;
    purged.assert_ok();
    assert_eq!(purged.session.status(), SessionStatus::Unchanged);
}

/// A remembered session with a deadline of its own gets a cookie that ends with it, not the
/// configured 30 days; without "remember me" the cookie stays a browser-session cookie.
#[tokio::test]
async fn a_persistent_cookie_never_outlives_the_sessions_own_deadline() {
    let env = Env::new();
    let in_an_hour = env.clock.now().saturating_add(Duration::from_secs(3600));
    let remembered = env
        .send(None, |s| {
            s.set_persistent(true);
            s.set_expires_at(Some(in_an_hour));
        })
        .await;
    remembered.assert_ok();
    let max_age = |line: &str| {
        let attribute = line.split("; ").find(|a| a.starts_with("Max-Age="));
        attribute.map(|a| a["Max-Age=".len()..].to_owned())
    };
    assert_eq!(
        max_age(&remembered.set_cookies()[0]).as_deref(),
        Some("3600")
    );

    let plain = env.send(None, |s| s.set_expires_at(Some(in_an_hour))).await;
    assert!(
        !plain.set_cookies()[0].contains("Max-Age"),
        "{:?}",
        plain.set_cookies()
    );

    let far = env
        .clock
        .now()
        .saturating_add(Duration::from_secs(400 * 86_400));
    let capped = env
        .send(None, |s| {
            s.set_persistent(true);
            s.set_expires_at(Some(far));
        })
        .await;
    assert_eq!(
        max_age(&capped.set_cookies()[0]).as_deref(),
        Some("2592000")
    );
}

/// Security case 69: what a handler writes after `destroy` goes to a new session, saved in
/// the same response, so a logout can leave a message for the next page. The ended session
/// stays ended, and the new one belongs to nobody.
#[tokio::test]
async fn writes_after_destroy_go_to_a_new_session() {
    use fastsession_core::store::MemoryStore;

    let env = Env::new();
    let memory = SessionConfig::new(
        MemoryStore::new().unwrap(),
        CookieConfig::new("id").unwrap(),
    )
    .with_clock(env.clock.clone());
    for config in [&env.config, &memory] {
        let login = env
            .send_to(config, None, |s| {
                s.set_user_id("ada");
                s.set_persistent(true);
                s.insert("cart", 3).unwrap();
            })
            .await;
        login.assert_ok();
        let logout = env
            .send_to(config, Some(&login.cookie()), |s| {
                s.destroy();
                assert_eq!((s.user_id(), s.is_persistent()), (None, false));
                s.add_flash("You have been logged out.").unwrap();
            })
            .await;
        logout.assert_ok();
        let lines = logout.set_cookies();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            !lines[0].contains("Max-Age"),
            "a browser-session cookie: {lines:?}"
        );
        assert_ne!(logout.value(), login.value(), "a new session");

        let next = env
            .send_to(config, Some(&logout.cookie()), |s| {
                assert_eq!(s.user_id(), None);
                assert_eq!(s.get::<u32>("cart").unwrap(), None);
                let flashes = s.take_flashes::<String>().unwrap();
                assert_eq!(flashes, ["You have been logged out."]);
            })
            .await;
        next.assert_ok();
        if std::ptr::eq(config, &memory) {
            // The logged-out id opens nothing, even with the new session alive.
            let replay = env
                .send_to(config, Some(&login.cookie()), |s| {
                    assert!(s.is_new());
                    assert_eq!(s.user_id(), None);
                })
                .await;
            replay.assert_ok();
        }
    }

    // A session destroyed before it was ever saved, then written to: saved as a new one.
    let fresh = env
        .send(None, |s| {
            s.destroy();
            s.insert("theme", "dark").unwrap();
        })
        .await;
    fresh.assert_ok();
    let again = env
        .send(Some(&fresh.cookie()), |s| {
            assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("dark"));
        })
        .await;
    again.assert_ok();
}

/// The adapter's last save by the registry's sole owner sends each session nobody else holds
/// to its store in place instead of copying it: what it saves, and what a failed save keeps,
/// are as with `save`. A session still held elsewhere is copied, and stays whole.
#[cfg(feature = "testing")]
#[tokio::test]
async fn the_owners_last_save_works_in_place_on_what_nobody_else_holds() {
    use std::sync::Arc;

    use fastsession_core::http::{Handled, StoreErrorPolicy};
    use fastsession_core::store::MemoryStore;
    use fastsession_core::testing::SpyStore;

    let spy = Arc::new(SpyStore::new(Arc::new(MemoryStore::new().unwrap())));
    let config = SessionConfig::with_shared_store(spy.clone(), CookieConfig::new("r").unwrap());
    // In place: nothing else holds the session.
    let sessions = Sessions::new(&HeaderMap::new());
    sessions.get(&config).await.unwrap().insert("n", 1).unwrap();
    let (headers, error) = sessions
        .finish(Handled::Succeeded, StoreErrorPolicy::Fail)
        .await
        .into_parts();
    assert!(error.is_none());
    let mut response = HeaderMap::new();
    headers.write_to(&mut response);
    let request = next_request(&response);

    // In place and failed: the response gets the error and no cookie; the session kept nothing.
    let sessions = Sessions::new(&request);
    sessions.get(&config).await.unwrap().insert("n", 2).unwrap();
    spy.fail_saves(true);
    let (headers, error) = sessions
        .finish(Handled::Succeeded, StoreErrorPolicy::Fail)
        .await
        .into_parts();
    assert!(error.is_some() && headers.set_cookies().len() == 0);
    spy.fail_saves(false);

    // Copied: a handle is still held, and sees the session whole after the save.
    let sessions = Sessions::new(&request);
    let held = sessions.get(&config).await.unwrap();
    assert_eq!(
        held.get::<u32>("n").unwrap(),
        Some(1),
        "the failed save kept nothing"
    );
    held.insert("n", 3).unwrap();
    let (_, error) = sessions
        .finish(Handled::Succeeded, StoreErrorPolicy::Fail)
        .await
        .into_parts();
    assert!(error.is_none());
    assert_eq!(held.get::<u32>("n").unwrap(), Some(3));
    assert!(!held.is_modified(), "saved");

    let sessions = Sessions::new(&request);
    let session = sessions.get(&config).await.unwrap();
    assert_eq!(session.get::<u32>("n").unwrap(), Some(3));
    drop(session);

    // In place across a logout: what came after `destroy` is put back and saved as a new session.
    session_of(&sessions, &config).await.destroy();
    session_of(&sessions, &config).await.insert("m", 5).unwrap();
    let (headers, error) = sessions
        .finish(Handled::Succeeded, StoreErrorPolicy::Fail)
        .await
        .into_parts();
    assert!(error.is_none());
    let mut response = HeaderMap::new();
    headers.write_to(&mut response);
    let sessions = Sessions::new(&next_request(&response));
    let session = sessions.get(&config).await.unwrap();
    assert_eq!(session.get::<u32>("m").unwrap(), Some(5));
    assert_eq!(session.get::<u32>("n").unwrap(), None);
}

#[cfg(feature = "testing")]
async fn session_of(sessions: &Sessions, config: &SessionConfig) -> Session {
    sessions.get(config).await.unwrap()
}
