//! Expiry with an injected clock: idle timeout, absolute lifetime, expired records, refresh.

use std::time::Duration;

use super::StoreUnderTest;
use super::harness::{ABSOLUTE, IDLE, World, ensure, get, put};
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

/// An expired record is never returned, even if still stored, and is deleted when found (case
/// 38). A session that expires while a request is in flight is not brought back by that
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

/// An unchanged session is written again only once the configured share of the idle timeout
/// has passed (here half of it), and that refresh moves the idle deadline without touching the
/// data; for id stores it keeps the id (the write contract; case 41 (c) for the headers).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn refresh_waits_for_the_configured_share(sut: &StoreUnderTest) {
    let expiry = Expiry::new(Duration::from_secs(IDLE), Duration::from_secs(ABSOLUTE))
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
    let refreshed = reply.token("a read at the refresh share");
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
