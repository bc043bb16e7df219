//! Lifecycle: values, untouched sessions, unknown ids, fixation, regeneration, destroy.

use std::collections::HashSet;

use serde_json::json;

use super::StoreUnderTest;
use super::harness::{World, ensure, flashes, get, login, put};
use crate::session::{ID_TEXT_LEN, SessionId};
use crate::store::SaveKind;

/// A fresh, well-formed session id that no store has seen.
pub(crate) fn unknown_id(world: &World) -> String {
    match SessionId::generate() {
        Ok(id) => id.as_str().to_owned(),
        Err(e) => world.fail(format_args!("cannot generate an id: {e}")),
    }
}

/// Values of every JSON shape, flashes, "remember me" and the user id survive a save and a
/// load; `remove` and `clear` persist; a read-only request changes nothing.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn values_round_trip(sut: &StoreUnderTest) {
    let w = World::new(sut, "values_round_trip");
    let nested = json!({"a": {"b": [true, null, "x", 1.5]}, "empty": {}});
    let text = "héllo ✓ \"quoted\" \\ \n\t</script>";
    let first = w
        .send(None, |s| {
            put(&w, s, "name", "gopher");
            put(&w, s, "visits", 42_u32);
            put(&w, s, "list", [1, 2, 3]);
            put(&w, s, "nested", &nested);
            put(&w, s, "text", text);
            put(&w, s, "big", u64::MAX);
            if let Err(e) = s.add_flash("saved") {
                w.fail(format_args!("add_flash failed: {e}"));
            }
            if let Err(e) = s.add_flash_under("errors", "bad") {
                w.fail(format_args!("add_flash_under failed: {e}"));
            }
            s.set_user_id("alice");
        })
        .await;
    ensure!(
        w,
        first.was_new,
        "a request without a cookie got an existing session"
    );
    let t1 = first.token("saving a new session");
    ensure!(
        w,
        w.spy.saves_of(SaveKind::Create) == 1,
        "a new session must be saved with exactly one create"
    );

    let second = w
        .send(Some(&t1), |s| {
            ensure!(
                w,
                !s.is_new(),
                "the cookie of a saved session loads nothing"
            );
            ensure!(
                w,
                get::<String>(&w, s, "name").as_deref() == Some("gopher"),
                "a string value did not round-trip"
            );
            ensure!(
                w,
                get::<u32>(&w, s, "visits") == Some(42),
                "a number did not round-trip"
            );
            ensure!(
                w,
                get::<Vec<i32>>(&w, s, "list") == Some(vec![1, 2, 3]),
                "a list did not round-trip"
            );
            ensure!(
                w,
                get::<serde_json::Value>(&w, s, "nested").as_ref() == Some(&nested),
                "a nested object did not round-trip"
            );
            ensure!(
                w,
                get::<String>(&w, s, "text").as_deref() == Some(text),
                "a string with escapes did not round-trip"
            );
            ensure!(
                w,
                get::<u64>(&w, s, "big") == Some(u64::MAX),
                "u64::MAX did not round-trip"
            );
            ensure!(
                w,
                s.user_id().as_deref() == Some("alice"),
                "the user id did not round-trip"
            );
            ensure!(
                w,
                flashes::<String>(&w, s, "_flash") == ["saved"],
                "a flash did not round-trip"
            );
            ensure!(w, s.remove("visits"), "`remove` found no value");
            put(&w, s, "name", "ferris");
        })
        .await;
    let t2 = w.rewritten(&second, &t1, "saving a changed session");
    if w.server_side {
        ensure!(w, t2 == t1, "an update changed the session id");
    }

    let s = w.live(&t2, "after an update").await;
    ensure!(
        w,
        get::<String>(&w, &s, "name").as_deref() == Some("ferris"),
        "an update was not saved"
    );
    ensure!(
        w,
        get::<u32>(&w, &s, "visits").is_none(),
        "a removed value came back"
    );
    ensure!(
        w,
        get::<Vec<i32>>(&w, &s, "list") == Some(vec![1, 2, 3]),
        "an untouched value was lost by an update"
    );
    ensure!(
        w,
        flashes::<String>(&w, &s, "_flash").is_empty(),
        "a flash read by one request was shown again"
    );
    ensure!(
        w,
        flashes::<String>(&w, &s, "errors") == ["bad"],
        "an unread flash was lost"
    );

    // `clear` drops every value, not the flashes.
    let third = w
        .send(Some(&t2), |s| {
            s.clear();
            put(&w, s, "after", 1);
        })
        .await;
    let t3 = w.rewritten(&third, &t2, "saving a cleared session");
    let s = w.live(&t3, "after clear").await;
    ensure!(
        w,
        s.keys() == ["after"],
        "after `clear` and one insert the keys are {:?}",
        s.keys()
    );
    ensure!(
        w,
        flashes::<String>(&w, &s, "errors") == ["bad"],
        "`clear` dropped a flash"
    );

    // "Remember me" switches the cookie between persistent and browser-session.
    let fourth = w.send(Some(&t3), |s| s.set_persistent(true)).await;
    let t4 = fourth.token("switching remember-me on");
    ensure!(
        w,
        fourth
            .line
            .as_deref()
            .is_some_and(|l| l.contains("Max-Age=")),
        "a persistent session's cookie has no Max-Age"
    );
    ensure!(
        w,
        w.live(&t4, "remember-me").await.is_persistent(),
        "remember-me was not saved"
    );
    let fifth = w.send(Some(&t4), |s| s.set_persistent(false)).await;
    let t5 = fifth.token("switching remember-me off");
    ensure!(
        w,
        fifth
            .line
            .as_deref()
            .is_some_and(|l| !l.contains("Max-Age=")),
        "a browser-session cookie carries a Max-Age"
    );
    ensure!(
        w,
        !w.live(&t5, "remember-me off").await.is_persistent(),
        "remember-me off was not saved"
    );
}

/// Requests that never change their session cost no store I/O and send no `Set-Cookie`
/// (case 45, including logout without a session), and a request whose handler failed (so
/// `save_all` never ran) persists nothing (case 44, the store's side of it).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn untouched_sessions_cost_nothing(sut: &StoreUnderTest) {
    let w = World::new(sut, "untouched_sessions_cost_nothing");
    for i in 0..100 {
        let reply = w
            .send(None, |s| {
                let _ = get::<String>(&w, s, "user");
                let _ = s.contains("cart");
                let _ = s.keys();
                let _ = flashes::<String>(&w, s, "_flash");
                if i % 10 == 0 {
                    s.destroy(); // "log out" with no session
                }
            })
            .await;
        ensure!(
            w,
            reply.was_new,
            "a request without a cookie got an existing session"
        );
        reply
            .ok("an anonymous request")
            .sets_nothing("an anonymous request that changed nothing");
    }
    ensure!(
        w,
        w.spy.loads() == 0 && w.spy.saves() == 0,
        "100 anonymous requests cost {} loads and {} saves (expected none)",
        w.spy.loads(),
        w.spy.saves()
    );

    let token = w.create("a", 1).await;
    let saves = w.spy.saves();
    for _ in 0..10 {
        let reply = w
            .send(Some(&token), |s| {
                ensure!(
                    w,
                    get::<i32>(&w, s, "a") == Some(1),
                    "a stored value was not loaded"
                );
            })
            .await;
        ensure!(w, !reply.was_new, "a live session's cookie loads nothing");
        reply
            .ok("a read-only request")
            .sets_nothing("a read-only request before the refresh share");
    }
    ensure!(
        w,
        w.spy.saves() == saves,
        "read-only requests wrote to the store"
    );

    // The handler changed the session, then failed: the adapter never calls `save_all`.
    let pending = w.open(Some(&token)).await;
    put(&w, &pending.session, "b", 2);
    drop(pending);
    let pending = w.open(None).await;
    put(&w, &pending.session, "c", 3);
    drop(pending);
    ensure!(
        w,
        w.spy.saves() == saves,
        "a request that never saved wrote to the store"
    );
    let s = w.live(&token, "after a failed request").await;
    ensure!(
        w,
        get::<i32>(&w, &s, "b").is_none(),
        "a change from a request that never saved was persisted"
    );
}

/// Returns a well-formed id the store does not know gets a fresh session, and nothing is written
/// until the session is modified; then it gets a new id, never the one it presented (case 23).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn unknown_ids_are_not_adopted(sut: &StoreUnderTest) {
    let w = World::new(sut, "unknown_ids_are_not_adopted");
    for _ in 0..20 {
        let unknown = unknown_id(&w);
        let saves = w.spy.saves();
        let reply = w.send(Some(&unknown), |_| {}).await;
        ensure!(w, reply.was_new, "an unknown id loaded a session");
        reply
            .ok("an unknown id")
            .sets_nothing("a request with an unknown id that changed nothing");
        ensure!(
            w,
            w.spy.saves() == saves,
            "a request with an unknown id wrote to the store"
        );
        ensure!(
            w,
            !matches!(w.stored(&unknown).await, Some(Some(_))),
            "the store holds a record under an unknown id it was only asked to load"
        );

        let reply = w.send(Some(&unknown), |s| put(&w, s, "k", "v")).await;
        ensure!(w, reply.was_new, "an unknown id loaded a session");
        let token = reply.token("a new session started with an unknown id");
        ensure!(
            w,
            token != unknown,
            "the store adopted an unknown, client-chosen id"
        );
        ensure!(
            w,
            w.peek(&unknown).await.is_none(),
            "an unknown id loads a session once another was created"
        );
        ensure!(
            w,
            !matches!(w.stored(&unknown).await, Some(Some(_))),
            "the store holds a record under the unknown id"
        );
        let s = w.live(&token, "the new session").await;
        ensure!(
            w,
            get::<String>(&w, &s, "k").as_deref() == Some("v"),
            "the new session lost its value"
        );
    }
}

/// Session fixation: an attacker-chosen id presented before login, then login, gives a new id,
/// and the attacker's id loads nothing (case 24); an attacker's own valid session planted in
/// the victim's browser is rotated at login and never carries the victim's login (case 25).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn fixation_is_prevented(sut: &StoreUnderTest) {
    let w = World::new(sut, "fixation_is_prevented");
    let planted = unknown_id(&w);
    w.send(Some(&planted), |_| {})
        .await
        .ok("visiting with a planted id")
        .sets_nothing("an anonymous visit with a planted id");
    let reply = w.send(Some(&planted), |s| login(&w, s, "victim")).await;
    let token = reply.token("logging in with a planted id");
    ensure!(w, token != planted, "login kept the attacker's id");
    w.assert_gone(&planted, "after login with a planted id")
        .await;
    let s = w.live(&token, "the logged-in session").await;
    ensure!(
        w,
        get::<String>(&w, &s, "user").as_deref() == Some("victim"),
        "login data was not saved"
    );

    // The attacker's own session, obtained legitimately and planted in the victim's browser.
    let attackers = w.create("cart", "attacker's").await;
    let reply = w.send(Some(&attackers), |s| login(&w, s, "victim")).await;
    let token = reply.token("logging in with a planted session");
    ensure!(w, token != attackers, "login kept the planted session's id");
    let s = w.live(&token, "the logged-in session").await;
    ensure!(
        w,
        get::<String>(&w, &s, "user").as_deref() == Some("victim"),
        "login data was not saved"
    );
    ensure!(
        w,
        get::<String>(&w, &s, "cart").is_some(),
        "login did not carry the session's data over"
    );
    if w.revokes {
        w.assert_gone(&attackers, "the planted session after login")
            .await;
    } else if let Some(old) = w.peek(&attackers).await {
        ensure!(
            w,
            get::<String>(&w, &old, "user").is_none(),
            "the attacker's pre-login cookie carries the victim's login"
        );
    }
}

/// `regenerate` gives a new id with the data carried over (values, user, creation time), and
/// the old id loads nothing on the very next request (cases 25, 40). For a store that cannot
/// revoke, the old cookie still opens, without the new data (pinned).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn regenerate_rotates_the_id(sut: &StoreUnderTest) {
    let w = World::new(sut, "regenerate_rotates_the_id");
    let created = w.now();
    let reply = w
        .send(None, |s| {
            put(&w, s, "a", 1);
            s.set_user_id("u");
        })
        .await;
    let t0 = reply.token("creating a session");
    w.advance(10);
    let reply = w
        .send(Some(&t0), |s| {
            s.regenerate();
            put(&w, s, "b", 2);
        })
        .await;
    ensure!(w, !reply.was_new, "the session to regenerate did not load");
    let t1 = reply.token("regenerating");
    ensure!(w, t1 != t0, "regenerate kept the id");
    ensure!(
        w,
        w.spy.saves_of(SaveKind::Regenerate) == 1,
        "regenerate was not saved as a regeneration"
    );
    let s = w.live(&t1, "the regenerated session").await;
    ensure!(
        w,
        get::<i32>(&w, &s, "a") == Some(1) && get::<i32>(&w, &s, "b") == Some(2),
        "regenerate lost data (keys now {:?})",
        s.keys()
    );
    ensure!(
        w,
        s.user_id().as_deref() == Some("u"),
        "regenerate lost the user id"
    );
    ensure!(
        w,
        s.created() == created,
        "regenerate reset the creation time (it would extend the absolute lifetime)"
    );
    if w.revokes {
        w.assert_gone(&t0, "the id before regenerate").await;
    } else {
        let old = w
            .live(&t0, "pinned: a sealed cookie cannot be revoked")
            .await;
        ensure!(
            w,
            get::<i32>(&w, &old, "b").is_none(),
            "the old cookie shows data saved after it was replaced"
        );
    }

    // Regenerate alone, with no other change.
    let t2 = w
        .send(Some(&t1), |s| s.regenerate())
        .await
        .token("regenerating again");
    ensure!(w, t2 != t1, "regenerate kept the id");
    let s = w.live(&t2, "the twice regenerated session").await;
    ensure!(
        w,
        get::<i32>(&w, &s, "b") == Some(2),
        "regenerate lost data"
    );
    if w.revokes {
        w.assert_gone(&t1, "the id before the second regenerate")
            .await;
    }

    // Destroy wins over regenerate.
    let reply = w
        .send(Some(&t2), |s| {
            s.regenerate();
            s.destroy();
        })
        .await;
    reply.ok("regenerate then destroy");
    ensure!(
        w,
        reply.cleared(),
        "regenerate then destroy did not clear the cookie"
    );
    if w.revokes {
        w.assert_gone(&t2, "after regenerate then destroy").await;
    }
}

/// Logout (`destroy`) clears the cookie with the same name and attributes and `Max-Age=0`
/// (case 35) and the old cookie loads nothing afterwards (case 34; for a store that cannot
/// revoke, the replay still opens: pinned, as documented). Logging out without a session
/// costs nothing.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn destroy_ends_the_session(sut: &StoreUnderTest) {
    let w = World::new(sut, "destroy_ends_the_session");
    let token = w.create("user", "alice").await;
    let reply = w.send(Some(&token), |s| s.destroy()).await;
    reply.ok("logout");
    ensure!(w, !reply.was_new, "the session to destroy did not load");
    ensure!(
        w,
        reply.cleared(),
        "logout did not send the clearing Set-Cookie `{}`",
        w.config.cookie().removal()
    );
    ensure!(
        w,
        w.config.cookie().removal().contains("Max-Age=0"),
        "the clearing cookie lacks Max-Age=0"
    );
    ensure!(
        w,
        w.spy.saves_of(SaveKind::Destroy) == 1,
        "logout was not saved as a destroy"
    );
    if w.revokes {
        w.assert_gone(&token, "the cookie replayed after logout")
            .await;
        let reply = w.send(Some(&token), |_| {}).await;
        ensure!(
            w,
            reply.was_new,
            "the cookie replayed after logout loads a session"
        );
    } else {
        let s = w
            .live(
                &token,
                "pinned: a sealed cookie replayed after logout still opens",
            )
            .await;
        ensure!(
            w,
            get::<String>(&w, &s, "user").as_deref() == Some("alice"),
            "the replayed cookie changed"
        );
    }

    let saves = w.spy.saves();
    w.send(None, |s| s.destroy())
        .await
        .ok("logout without a session")
        .sets_nothing("logout without a session");
    ensure!(
        w,
        w.spy.saves() == saves,
        "logout without a session wrote to the store"
    );
}

/// `Debug` of the store, the configuration, the registry and the session shows no value and no
/// cookie value (case 22).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn debug_output_hides_secrets(sut: &StoreUnderTest) {
    let w = World::new(sut, "debug_output_hides_secrets");
    let secret = "s3cr3t-value-7f3a9c1e5b";
    let token = w.create("secret", secret).await;
    let pending = w.open(Some(&token)).await;
    ensure!(w, !pending.was_new, "the session did not load");
    let texts = [
        ("the store", format!("{:?}", w.spy.inner())),
        ("the spy", format!("{:?}", w.spy)),
        ("the configuration", format!("{:?}", w.config)),
        ("the session", format!("{:?}", pending.session)),
        ("the registry", format!("{pending:?}")),
    ];
    let head: String = token.chars().take(16).collect();
    let tail: String = token
        .chars()
        .rev()
        .take(16)
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    for (what, text) in texts {
        ensure!(
            w,
            !text.contains(secret),
            "Debug of {what} shows a session value"
        );
        ensure!(
            w,
            !text.contains(&head) && !text.contains(&tail),
            "Debug of {what} shows the cookie value"
        );
    }
}

/// Every new session gets a value never handed out before; for id stores, a canonical
/// 43-character id (case 30, for the ids a store issues).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn issued_ids_are_distinct(sut: &StoreUnderTest) {
    let w = World::new(sut, "issued_ids_are_distinct");
    let mut seen = HashSet::new();
    for i in 0..200 {
        let token = w.create("n", i).await;
        if w.server_side {
            let parsed = SessionId::parse(&token);
            ensure!(
                w,
                token.len() == ID_TEXT_LEN && parsed.is_some_and(|id| id.as_str() == token),
                "the store issued a cookie value that is not a canonical session id"
            );
        }
        ensure!(
            w,
            seen.insert(token),
            "the store issued the same cookie value twice"
        );
    }
}
