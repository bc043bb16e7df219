//! Expiry with an injected clock: idle timeout, absolute lifetime, expired records, refresh.

use std::time::Duration;

use super::StoreUnderTest;
use super::harness::{ABSOLUTE, IDLE, World, ensure, get, login, put};
use crate::session::Expiry;
use crate::store::SaveKind;

/// Idle timeout: a session used at T is live at T + idle − 1 s (and that read extends it), and
/// a session left alone for the whole idle timeout loads nothing (case 36).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn idle_timeout_is_enforced(sut: &StoreUnderTest) {
    let w = World::new(sut, "idle_timeout_is_enforced");
    let mut token = w.create("a", 1).await;
    for round in 0..3 {
        w.advance(IDLE - 1);
        let reply = w
            .send(Some(&token), |s| {
                ensure!(
                    w,
                    get::<i32>(&w, s, "a") == Some(1),
                    "a live session lost its data"
                );
            })
            .await;
        ensure!(
            w,
            !reply.was_new,
            "a session used {} s ago was expired (round {round})",
            IDLE - 1
        );
        token = reply.token_or(&token, "refreshing a session");
    }
    ensure!(
        w,
        w.spy.saves_of(SaveKind::Touch) == 3,
        "reads past the refresh share did not refresh the session"
    );
    w.advance(IDLE);
    let reply = w
        .send(Some(&token), |s| {
            ensure!(
                w,
                get::<i32>(&w, s, "a").is_none(),
                "an expired session's data was returned"
            );
        })
        .await;
    ensure!(
        w,
        reply.was_new,
        "a session idle for the whole idle timeout still loads"
    );
    reply
        .ok("an expired session")
        .sets_nothing("a read-only request after expiry");

    // Exactly at the boundary, from creation.
    let token = w.create("b", 2).await;
    w.advance(IDLE);
    ensure!(
        w,
        w.peek(&token).await.is_none(),
        "a session is still live at last activity + idle timeout"
    );
}

/// Absolute lifetime: a session active every minute (and regenerated half-way) ends exactly at
/// creation + absolute lifetime (case 37).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn absolute_lifetime_is_enforced(sut: &StoreUnderTest) {
    let w = World::new(sut, "absolute_lifetime_is_enforced");
    let mut token = w.create("n", 0).await;
    let steps = ABSOLUTE / 60 - 1;
    for step in 1..=steps {
        w.advance(60);
        let reply = w
            .send(Some(&token), |s| {
                if step == steps / 2 {
                    s.regenerate();
                }
                put(&w, s, "n", step);
            })
            .await;
        ensure!(
            w,
            !reply.was_new,
            "an active session ended after {} s",
            step * 60
        );
        token = reply.token_or(&token, "an active session");
    }
    w.advance(59);
    let reply = w.send(Some(&token), |_| {}).await;
    ensure!(
        w,
        !reply.was_new,
        "a session ended one second before its absolute lifetime"
    );
    token = reply.token_or(&token, "a read one second before the end");
    w.advance(1);
    let reply = w
        .send(Some(&token), |s| {
            ensure!(
                w,
                get::<u64>(&w, s, "n").is_none(),
                "data of a session past its lifetime was returned"
            );
        })
        .await;
    ensure!(
        w,
        reply.was_new,
        "an active session outlived its absolute lifetime"
    );
    reply
        .ok("after the absolute lifetime")
        .sets_nothing("a read-only request after expiry");
}

/// Returns an expired record is never returned, even if still stored, and is deleted when found
/// (case 38). A session that expires while a request is in flight is not brought back by that
/// request's save, whether it changes data or only refreshes (case 56's "expired between load
/// and save", for stores that revoke).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn expired_records_are_never_returned(sut: &StoreUnderTest) {
    let w = World::new(sut, "expired_records_are_never_returned");
    let token = w.create("a", 1).await;
    w.advance(IDLE);
    for _ in 0..2 {
        let reply = w
            .send(Some(&token), |s| {
                ensure!(w, s.is_empty(), "an expired session's data was returned");
            })
            .await;
        ensure!(w, reply.was_new, "an expired session loads");
        reply
            .ok("an expired session")
            .sets_nothing("a read-only request with an expired cookie");
    }
    ensure!(
        w,
        !matches!(w.stored(&token).await, Some(Some(_))),
        "an expired record found at load was left in the store"
    );

    if !w.revokes {
        return;
    }
    for refresh_only in [false, true] {
        let token = w.create("a", 1).await;
        w.advance(IDLE - 1);
        let pending = w.open(Some(&token)).await;
        ensure!(w, !pending.was_new, "a live session did not load");
        if !refresh_only {
            put(&w, &pending.session, "b", 2);
        }
        w.advance(1);
        let what = if refresh_only {
            "a refresh of a session that expired while the request ran"
        } else {
            "a save of a session that expired while the request ran"
        };
        w.close(pending).await.assert_ended(what);
        w.assert_gone(&token, what).await;
    }
}

/// Returns an unchanged session is written again only once the configured share of the idle timeout
/// has passed (here half of it), and that refresh moves the idle deadline without touching the
/// data; for id stores it keeps the id (the write contract; case 41 (c) for the headers).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn refresh_waits_for_the_configured_share(sut: &StoreUnderTest) {
    let expiry = Expiry::default()
        .with_idle_timeout(Duration::from_secs(IDLE))
        .and_then(|e| e.with_absolute_lifetime(Duration::from_secs(ABSOLUTE)))
        .and_then(|e| e.with_refresh_share(0.5))
        .unwrap_or_else(|e| panic!("valid expiry: {e}"));
    let w = World::with_expiry(sut, "refresh_waits_for_the_configured_share", expiry);
    let token = w.create("a", 1).await;
    let saves = w.spy.saves();
    w.advance(IDLE / 2 - 1);
    w.send(Some(&token), |_| {})
        .await
        .ok("a read before the refresh share")
        .sets_nothing("a read before the refresh share");
    ensure!(
        w,
        w.spy.saves() == saves,
        "a read before the refresh share wrote to the store"
    );

    w.advance(1);
    let reply = w.send(Some(&token), |_| {}).await;
    let refreshed = w.rewritten(&reply, &token, "a read at the refresh share");
    ensure!(
        w,
        w.spy.saves_of(SaveKind::Touch) == 1,
        "a read at the refresh share was not a refresh"
    );
    if w.server_side {
        ensure!(w, refreshed == token, "a refresh changed the session id");
    }
    let s = w.live(&refreshed, "after a refresh").await;
    ensure!(
        w,
        get::<i32>(&w, &s, "a") == Some(1),
        "a refresh changed the data"
    );

    w.send(Some(&refreshed), |_| {})
        .await
        .ok("a read right after a refresh")
        .sets_nothing("a read right after a refresh");
    w.advance(IDLE - 1);
    let reply = w.send(Some(&refreshed), |_| {}).await;
    ensure!(
        w,
        !reply.was_new,
        "a refresh did not move the idle deadline"
    );
    reply.ok("a read before the refreshed deadline");
}

/// Returns a session's own deadline ([`Session::set_expires_at`](crate::Session::set_expires_at))
/// is kept by the store and ends the session at that second: set at creation (and kept by a
/// refresh), set later and kept across a login's regeneration, never extending the policy's
/// deadline, and taken back with `None`. For stores that revoke, a request in flight at the
/// deadline does not bring the session back, whether it changes data or only refreshes.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn sessions_end_at_their_own_deadline(sut: &StoreUnderTest) {
    let w = World::new(sut, "sessions_end_at_their_own_deadline");
    let at = |secs: u64| w.now().saturating_add(Duration::from_secs(secs));

    // Set at creation, before the idle deadline; the read half-way refreshes it.
    let deadline = at(IDLE / 2);
    let token = w
        .send(None, |s| {
            put(&w, s, "a", 1);
            s.set_expires_at(Some(deadline));
        })
        .await
        .token("creating a session with a deadline");
    if let Some(Some(record)) = w.stored(&token).await {
        ensure!(
            w,
            record.expires_at() == Some(deadline),
            "the store did not keep the session's deadline: {:?}",
            record.expires_at()
        );
    }
    w.advance(IDLE / 2 - 1);
    let reply = w
        .send(Some(&token), |s| {
            ensure!(
                w,
                s.expires_at() == Some(deadline),
                "a loaded session lost its deadline: {:?}",
                s.expires_at()
            );
            ensure!(
                w,
                get::<i32>(&w, s, "a") == Some(1),
                "a live session lost its data"
            );
        })
        .await;
    ensure!(w, !reply.was_new, "a session ended before its deadline");
    let token = reply.token_or(&token, "a read before the deadline");
    w.advance(1);
    let reply = w
        .send(Some(&token), |s| {
            ensure!(
                w,
                s.is_empty(),
                "a session past its deadline returned its data"
            );
        })
        .await;
    ensure!(
        w,
        reply.was_new,
        "a session loads at its own deadline (a refresh must not move it)"
    );
    reply
        .ok("a session past its deadline")
        .sets_nothing("a read-only request after the deadline");
    ensure!(
        w,
        !matches!(w.stored(&token).await, Some(Some(_))),
        "a record past its deadline found at load was left in the store"
    );

    // Set by a later request, in the one that logs in (a new id).
    let token = w.create("a", 1).await;
    w.advance(10);
    let deadline = at(100);
    let token = w
        .send(Some(&token), |s| {
            login(&w, s, "ada");
            s.set_expires_at(Some(deadline));
        })
        .await
        .token("logging in with a deadline");
    w.advance(99);
    let s = w
        .live(&token, "a logged-in session before its deadline")
        .await;
    ensure!(
        w,
        s.expires_at() == Some(deadline) && s.user_id().as_deref() == Some("ada"),
        "the deadline or the user was lost by the regeneration"
    );
    w.advance(1);
    ensure!(
        w,
        w.peek(&token).await.is_none(),
        "a logged-in session outlived its own deadline"
    );

    // Later than the policy's deadline: the idle timeout still ends it.
    let token = w
        .send(None, |s| {
            put(&w, s, "a", 1);
            s.set_expires_at(Some(at(10 * ABSOLUTE)));
        })
        .await
        .token("creating a session with a far deadline");
    w.advance(IDLE);
    ensure!(
        w,
        w.peek(&token).await.is_none(),
        "a deadline past the policy's extended the session"
    );

    // Taken back: the session lives by the policy again.
    let token = w
        .send(None, |s| {
            put(&w, s, "a", 1);
            s.set_expires_at(Some(at(100)));
        })
        .await
        .token("creating a session with a deadline");
    w.advance(50);
    let reply = w.send(Some(&token), |s| s.set_expires_at(None)).await;
    ensure!(w, !reply.was_new, "a session ended before its deadline");
    let token = reply.token_or(&token, "taking a deadline back");
    w.advance(100);
    let s = w
        .live(&token, "a session whose deadline was taken back")
        .await;
    ensure!(
        w,
        s.expires_at().is_none(),
        "a deadline taken back is still set"
    );

    if !w.revokes {
        return;
    }
    for refresh_only in [false, true] {
        let deadline = at(IDLE / 2);
        let token = w
            .send(None, |s| {
                put(&w, s, "a", 1);
                s.set_expires_at(Some(deadline));
            })
            .await
            .token("creating a session with a deadline");
        // Past the refresh share: a read alone writes.
        w.advance(IDLE / 2 - 1);
        let pending = w.open(Some(&token)).await;
        ensure!(w, !pending.was_new, "a session ended before its deadline");
        if !refresh_only {
            put(&w, &pending.session, "b", 2);
        }
        w.advance(1);
        let what = if refresh_only {
            "a refresh of a session whose deadline passed while the request ran"
        } else {
            "a save of a session whose deadline passed while the request ran"
        };
        w.close(pending).await.assert_ended(what);
        w.assert_gone(&token, what).await;
    }
}

/// "Remember me" keeps a logged-in user logged in: with the default [`Expiry`], a persistent
/// session with a user id is live after two days unused (its idle timeout is the remembered
/// one, 30 days), while a logged-in session that is not persistent, and a persistent one
/// without a user id, have ended. The absolute lifetime (30 days) still ends the remembered
/// one.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn remembered_sessions_outlive_the_idle_timeout(sut: &StoreUnderTest) {
    let expiry = Expiry::default();
    let w = World::with_expiry(sut, "remembered_sessions_outlive_the_idle_timeout", expiry);
    let remembered = w
        .send(None, |s| {
            login(&w, s, "ada");
            s.set_persistent(true);
        })
        .await
        .token("logging in with remember-me");
    let forgotten = w
        .send(None, |s| login(&w, s, "bob"))
        .await
        .token("logging in without remember-me");
    let anonymous = w
        .send(None, |s| {
            put(&w, s, "cart", 1);
            s.set_persistent(true);
        })
        .await
        .token("a persistent anonymous session");

    let two_days = 2 * 86_400;
    w.advance(two_days);
    let s = w
        .live(&remembered, "a remembered session after two days away")
        .await;
    ensure!(
        w,
        s.user_id().as_deref() == Some("ada") && s.is_persistent(),
        "a remembered session lost its user or its remember-me"
    );
    ensure!(
        w,
        w.peek(&forgotten).await.is_none(),
        "a logged-in session without remember-me outlived the idle timeout"
    );
    ensure!(
        w,
        w.peek(&anonymous).await.is_none(),
        "a persistent session without a user outlived the idle timeout"
    );

    w.advance(expiry.absolute_lifetime().as_secs() - two_days);
    ensure!(
        w,
        w.peek(&remembered).await.is_none(),
        "a remembered session outlived the absolute lifetime"
    );
}
