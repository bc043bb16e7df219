//! Writes that leave a session as it was: nothing to save.

use super::StoreUnderTest;
use super::harness::{World, ensure, flashes, get, put};
use crate::session::Session;

/// Writes that leave a session as it was save nothing and send no `Set-Cookie`: a value
/// inserted, updated or incremented to what it already is, a key removed that is not there,
/// flashes taken where there are none, "remember me", the deadline and the user id set to
/// what they are, a session with no value cleared. A write that does change the value is
/// saved.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn writes_that_change_nothing_save_nothing(sut: &StoreUnderTest) {
    let w = World::new(sut, "writes_that_change_nothing_save_nothing");
    let token = w.create("a", 1).await;
    for round in 0..3 {
        saves_nothing(&w, &token, "writes that changed nothing", |s| {
            put(&w, s, "a", 1);
            let updated = s.update("a", |n: i32| n);
            ensure!(w, matches!(updated, Ok(Some(1))), "update: {updated:?}");
            let updated = s.update_or("a", 0, |n: i32| n);
            ensure!(w, matches!(updated, Ok(1)), "update_or: {updated:?}");
            let incremented = s.increment("a", 0);
            ensure!(
                w,
                matches!(incremented, Ok(1)),
                "increment: {incremented:?}"
            );
            ensure!(w, !s.remove("absent"), "removed a key that was not there");
            ensure!(
                w,
                flashes::<String>(&w, s, "_flash").is_empty(),
                "flashes appeared"
            );
            s.set_persistent(s.is_persistent());
            s.set_expires_at(s.expires_at());
            s.clear_user_id();
            ensure!(
                w,
                !s.is_modified(),
                "writes that changed nothing marked the session modified (round {round})"
            );
        })
        .await;
    }

    // Clearing a session with no value: nothing to drop.
    let reply = w
        .send(Some(&token), |s| {
            ensure!(w, s.remove("a"), "the value to remove was not there");
        })
        .await;
    let token = reply.token_or(&token, "the last value removed");
    saves_nothing(&w, &token, "clearing a session with no value", |s| {
        ensure!(w, s.is_empty(), "the removed value came back");
        s.clear();
        ensure!(
            w,
            !s.is_modified(),
            "clearing a session with no value marked it modified"
        );
    })
    .await;

    // Back and forth within one request: the session ends as it began, but was written; the
    // save is allowed, and what it stores is the value as it is.
    let reply = w
        .send(Some(&token), |s| {
            put(&w, s, "a", 2);
            put(&w, s, "a", 1);
        })
        .await;
    let token = reply.token_or(&token, "a value set and set back");
    ensure!(
        w,
        get::<i32>(&w, &w.live(&token, "after set and set back").await, "a") == Some(1),
        "a value set and set back was not stored as it ended"
    );

    // A write that changes the value is saved.
    let saves = w.spy.saves();
    let reply = w.send(Some(&token), |s| put(&w, s, "a", 2)).await;
    let token = reply.token_or(&token, "a changed value");
    ensure!(
        w,
        w.spy.saves() == saves + 1,
        "a changed value was not saved"
    );
    ensure!(
        w,
        get::<i32>(&w, &w.live(&token, "after a change").await, "a") == Some(2),
        "a changed value was not stored"
    );
}

/// Sends a request with `token` whose `handler` must leave the session as it was: it fails
/// unless the response sets no cookie and the store saw no save.
async fn saves_nothing(w: &World, token: &str, what: &str, handler: impl FnOnce(&Session)) {
    let saves = w.spy.saves();
    let reply = w.send(Some(token), handler).await;
    reply.ok(what).sets_nothing(what);
    ensure!(
        w,
        w.spy.saves() == saves,
        "{what}: {} saves (expected none)",
        w.spy.saves() - saves
    );
}
