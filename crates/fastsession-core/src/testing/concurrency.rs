//! Concurrency: concurrent saves of one session are merged, with real concurrent tasks;
//! concurrent increments of one key all count.

use std::sync::Arc;

use tokio::sync::Barrier;

use super::StoreUnderTest;
use super::harness::{IDLE, ROUNDS, World, ensure, flashes, get, put};
use crate::store::SaveKind;

/// Two concurrent requests on one session that change different keys (one also removes a
/// key, each adds a flash under its own key) both persist, and keys neither touched stay
/// (case 46). A store that cannot merge (a sealed cookie) pins its documented limit instead:
/// both saves succeed and each response's cookie holds only its own change.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn concurrent_writes_to_different_keys_both_persist(sut: &StoreUnderTest) {
    let w = World::new(sut, "concurrent_writes_to_different_keys_both_persist");
    if !w.merges {
        let token = w.create("base", 0).await;
        let a = w.open(Some(&token)).await;
        let b = w.open(Some(&token)).await;
        put(&w, &a.session, "a", 1);
        put(&w, &b.session, "b", 2);
        let (ta, tb) = (
            w.close(a).await.token("the first of two writes"),
            w.close(b).await.token("the second of two writes"),
        );
        let sa = w.live(&ta, "the first response's cookie").await;
        let sb = w.live(&tb, "the second response's cookie").await;
        ensure!(
            w,
            get::<i32>(&w, &sa, "a") == Some(1) && get::<i32>(&w, &sa, "b").is_none(),
            "pinned: a sealed cookie holds exactly its own request's change"
        );
        ensure!(
            w,
            get::<i32>(&w, &sb, "b") == Some(2) && get::<i32>(&w, &sb, "a").is_none(),
            "pinned: a sealed cookie holds exactly its own request's change"
        );
        return;
    }
    for round in 0..ROUNDS {
        let reply = w
            .send(None, |s| {
                put(&w, s, "keep", round);
                put(&w, s, "gone", round);
            })
            .await;
        let token = reply.token("creating a session");
        let (ra, rb) = w
            .race(
                &token,
                move |w, s| {
                    put(w, s, "a", round);
                    s.remove("gone");
                    if let Err(e) = s.add_flash_under("fa", round) {
                        w.fail(format_args!("add_flash_under failed: {e}"));
                    }
                },
                move |w, s| {
                    put(w, s, "b", round);
                    if let Err(e) = s.add_flash_under("fb", round) {
                        w.fail(format_args!("add_flash_under failed: {e}"));
                    }
                },
            )
            .await;
        ra.ok("the first of two concurrent writes");
        rb.ok("the second of two concurrent writes");
        let s = w.live(&token, "after two concurrent writes").await;
        ensure!(
            w,
            get::<usize>(&w, &s, "a") == Some(round) && get::<usize>(&w, &s, "b") == Some(round),
            "a concurrent write to another key was lost (round {round}; keys now {:?})",
            s.keys()
        );
        ensure!(
            w,
            get::<usize>(&w, &s, "keep") == Some(round),
            "a key neither request touched was lost"
        );
        ensure!(
            w,
            get::<usize>(&w, &s, "gone").is_none(),
            "a concurrent write brought back a removed key"
        );
        ensure!(
            w,
            flashes::<usize>(&w, &s, "fa") == [round] && flashes::<usize>(&w, &s, "fb") == [round],
            "a concurrent flash was lost"
        );
    }
}

/// A value one request writes: big enough that a torn write would show.
type Written = (usize, String, Vec<u32>);

/// Two concurrent requests that write the same key: the result is exactly one of the two whole
/// values, never a mix, and both saves succeed (case 47).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn concurrent_writes_to_one_key_keep_one_whole_value(sut: &StoreUnderTest) {
    let w = World::new(sut, "concurrent_writes_to_one_key_keep_one_whole_value");
    let len = if w.server_side { 1024 } else { 16 };
    for round in 0..ROUNDS {
        let token = w.create("v", "initial").await;
        let va: Written = (round, "a".repeat(len), vec![1; len]);
        let vb: Written = (round, "b".repeat(len), vec![2; len]);
        let (a, b) = (va.clone(), vb.clone());
        let (ra, rb) = w
            .race(
                &token,
                move |w, s| put(w, s, "v", a),
                move |w, s| put(w, s, "v", b),
            )
            .await;
        let ta = w.rewritten(&ra, &token, "the first of two writes to one key");
        let tb = w.rewritten(&rb, &token, "the second of two writes to one key");
        if w.merges {
            let s = w.live(&token, "after two writes to one key").await;
            let v = get::<Written>(&w, &s, "v");
            ensure!(
                w,
                v.as_ref() == Some(&va) || v.as_ref() == Some(&vb),
                "two writes to one key left neither whole value (round {round})"
            );
        } else {
            for (token, expected) in [(ta, &va), (tb, &vb)] {
                let s = w.live(&token, "a response's cookie").await;
                ensure!(
                    w,
                    get::<Written>(&w, &s, "v").as_ref() == Some(expected),
                    "a response's cookie does not hold its own whole value"
                );
            }
        }
    }
}

/// Logout resurrection: request A loads, B logs out, then A saves. Whatever A did (changed a
/// value, only read with a refresh due, regenerated, switched remember-me), its save fails
/// with `ErrorKind::SessionEnded`, its response clears the cookie, no new cookie value is
/// issued, and the id loads nothing afterwards (case 48; the same path as 56). Then the two
/// race as real concurrent tasks: whichever order they land in, the session stays ended.
///
/// Skipped for stores that cannot revoke (a sealed cookie; documented).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn logout_is_never_undone_by_a_slower_request(sut: &StoreUnderTest) {
    let w = World::new(sut, "logout_is_never_undone_by_a_slower_request");
    if !w.revokes {
        return;
    }
    type Slow = fn(&World, &crate::Session);
    let slow: [(&str, Slow); 4] = [
        ("a slower request that changed a value", |w, s| {
            put(w, s, "late", 1)
        }),
        ("a slower request that only read, refresh due", |_, _| {}),
        ("a slower request that regenerated", |_, s| s.regenerate()),
        ("a slower request that switched remember-me", |_, s| {
            s.set_persistent(true)
        }),
    ];
    for (what, handler) in slow {
        let token = w.create("user", "alice").await;
        w.advance(IDLE / 2);
        let a = w.open(Some(&token)).await;
        ensure!(w, !a.was_new, "the session did not load");
        handler(&w, &a.session);
        let logout = w.send(Some(&token), |s| s.destroy()).await;
        logout.ok("logout");
        ensure!(w, logout.cleared(), "logout did not clear the cookie");
        let issued = w.spy.issued().len();
        w.close(a).await.assert_ended(what);
        ensure!(
            w,
            w.spy.issued().len() == issued,
            "{what}: the store issued a new cookie value"
        );
        w.assert_gone(&token, what).await;
    }

    for round in 0..ROUNDS {
        let token = w.create("user", "alice").await;
        let issued = w.spy.issued().len();
        let (ra, rb) = w
            .race(
                &token,
                move |w, s| put(w, s, "late", round),
                |_, s| s.destroy(),
            )
            .await;
        rb.ok("a logout racing a write");
        ensure!(w, rb.cleared(), "logout did not clear the cookie");
        if ra.result.is_err() {
            ra.assert_ended("a write racing a logout");
        }
        ensure!(
            w,
            w.spy.issued()[issued..].iter().all(|t| *t == token),
            "a write racing a logout was given a new id (round {round})"
        );
        w.assert_gone(&token, "a write racing a logout").await;
    }
}

/// Regeneration is never undone: request A loads, B regenerates (the session moves to a new
/// id), then A saves a change: A gets `ErrorKind::SessionEnded` and a clearing cookie, the old
/// id stays dead, and the new id holds B's data without A's (cases 48 and 49).
///
/// Skipped for stores that cannot revoke.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn regeneration_is_never_undone_by_a_slower_request(sut: &StoreUnderTest) {
    let w = World::new(sut, "regeneration_is_never_undone_by_a_slower_request");
    if !w.revokes {
        return;
    }
    let token = w.create("base", 1).await;
    let a = w.open(Some(&token)).await;
    ensure!(w, !a.was_new, "the session did not load");
    put(&w, &a.session, "slow", 1);
    let reply = w
        .send(Some(&token), |s| {
            s.regenerate();
            put(&w, s, "fast", 1);
        })
        .await;
    let moved = reply.token("regenerating");
    ensure!(w, moved != token, "regenerate kept the id");
    let issued = w.spy.issued().len();
    w.close(a)
        .await
        .assert_ended("a change saved after another request regenerated the session");
    ensure!(
        w,
        w.spy.issued().len() == issued,
        "the slower request was issued a cookie value"
    );
    w.assert_gone(&token, "the id before regenerate").await;
    let s = w.live(&moved, "the regenerated session").await;
    ensure!(
        w,
        get::<i32>(&w, &s, "base") == Some(1) && get::<i32>(&w, &s, "fast") == Some(1),
        "the regenerated session lost data"
    );
    ensure!(
        w,
        get::<i32>(&w, &s, "slow").is_none(),
        "a save for the old id reached the regenerated session"
    );
}

/// Two requests regenerate one session at the same time (real concurrent tasks): exactly one
/// succeeds with a new id, the other gets `ErrorKind::SessionEnded` and a clearing cookie, the
/// old id loads nothing, and the one new id holds the winner's data (case 49).
///
/// Skipped for stores that cannot revoke.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn racing_regenerations_leave_one_id(sut: &StoreUnderTest) {
    let w = World::new(sut, "racing_regenerations_leave_one_id");
    if !w.revokes {
        return;
    }
    for round in 0..ROUNDS {
        let token = w.create("base", round).await;
        let (ra, rb) = w
            .race(
                &token,
                |w, s| {
                    s.regenerate();
                    put(w, s, "who", "a");
                },
                |w, s| {
                    s.regenerate();
                    put(w, s, "who", "b");
                },
            )
            .await;
        let (winner, loser, who) = match (ra.result.is_ok(), rb.result.is_ok()) {
            (true, false) => (ra, rb, "a"),
            (false, true) => (rb, ra, "b"),
            (true, true) => w.fail(format_args!(
                "both racing regenerations succeeded: two live ids for one session"
            )),
            (false, false) => w.fail(format_args!(
                "both racing regenerations failed ({:?}, {:?})",
                ra.error_kind(),
                rb.error_kind()
            )),
        };
        loser.assert_ended("the losing regeneration");
        let moved = winner.token("the winning regeneration");
        ensure!(w, moved != token, "regenerate kept the id");
        w.assert_gone(&token, "the id both requests regenerated")
            .await;
        let s = w.live(&moved, "the surviving id").await;
        ensure!(
            w,
            get::<String>(&w, &s, "who").as_deref() == Some(who)
                && get::<usize>(&w, &s, "base") == Some(round),
            "the surviving id does not hold the winner's data"
        );
    }
}

/// Returns a request that only refreshes the expiry never overwrites data another request wrote or
/// removed at the same time, in either order and racing (case 50).
///
/// Skipped for stores that cannot merge (a sealed cookie's refresh reseals all of it; see
/// case 46).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn touch_never_overwrites_data(sut: &StoreUnderTest) {
    let w = World::new(sut, "touch_never_overwrites_data");
    if !w.merges {
        return;
    }
    for touch_last in [true, false] {
        let reply = w
            .send(None, |s| {
                put(&w, s, "k", 1);
                put(&w, s, "gone", 1);
            })
            .await;
        let token = reply.token("creating a session");
        w.advance(IDLE / 2);
        let reader = w.open(Some(&token)).await;
        let writer = w.open(Some(&token)).await;
        put(&w, &writer.session, "k", 2);
        put(&w, &writer.session, "new", 3);
        writer.session.remove("gone");
        let touches = w.spy.saves_of(SaveKind::Touch);
        if touch_last {
            w.close(writer).await.ok("a write");
            w.close(reader).await.ok("a refresh after a write");
        } else {
            w.close(reader).await.ok("a refresh before a write");
            w.close(writer).await.ok("a write after a refresh");
        }
        ensure!(
            w,
            w.spy.saves_of(SaveKind::Touch) == touches + 1,
            "the read-only request did not refresh"
        );
        let s = w.live(&token, "after a refresh and a write").await;
        ensure!(
            w,
            get::<i32>(&w, &s, "k") == Some(2) && get::<i32>(&w, &s, "new") == Some(3),
            "a refresh overwrote data written by another request"
        );
        ensure!(
            w,
            get::<i32>(&w, &s, "gone").is_none(),
            "a refresh brought back a removed key"
        );
    }

    let touches = w.spy.saves_of(SaveKind::Touch);
    for round in 0..ROUNDS {
        let token = w.create("k", usize::MAX).await;
        w.advance(IDLE / 2);
        let (ra, rb) = w
            .race(&token, |_, _| {}, move |w, s| put(w, s, "k", round))
            .await;
        ra.ok("a refresh racing a write");
        rb.ok("a write racing a refresh");
        let s = w.live(&token, "after a refresh raced a write").await;
        ensure!(
            w,
            get::<usize>(&w, &s, "k") == Some(round),
            "a refresh racing a write overwrote its data (round {round})"
        );
    }
    ensure!(
        w,
        w.spy.saves_of(SaveKind::Touch) == touches + ROUNDS,
        "the racing reads did not refresh"
    );
}

/// How many requests increment one key at once in [`concurrent_increments_all_count`].
const INCREMENTERS: usize = 8;
/// How many requests, one after the other, each of them sends.
const INCREMENTS: usize = 25;

/// Adds `delta` to the counter under `key`, failing the check if it cannot.
fn add(world: &World, session: &crate::Session, key: &str, delta: i64) -> i64 {
    match session.increment(key, delta) {
        Ok(value) => value,
        Err(e) => world.fail(format_args!("incrementing `{key}` failed: {e}")),
    }
}

/// Concurrent increments of one key of one session all count: 8 clients, each sending 25
/// requests one after the other that each add 1, all at once: the counter ends exactly 200
/// higher (the store adds each request's delta to the value it holds, atomically). A store
/// that cannot merge (a sealed cookie) pins its documented limit instead: each client's last
/// cookie holds exactly its own 25 increments.
///
/// # Panics
///
/// If the store does not behave as described.
///
/// # Examples
///
/// ```
/// use fastsession::MemoryStore;
/// use fastsession::testing::{StoreUnderTest, concurrent_increments_all_count, run};
///
/// let sut = StoreUnderTest::new(|| MemoryStore::new().unwrap());
/// run(concurrent_increments_all_count(&sut));
/// ```
pub async fn concurrent_increments_all_count(sut: &StoreUnderTest) {
    let w = World::new(sut, "concurrent_increments_all_count");
    let token = w.create("n", 1000).await;
    let barrier = Arc::new(Barrier::new(INCREMENTERS));
    let tasks: Vec<_> = (0..INCREMENTERS)
        .map(|_| {
            let (w, barrier, mut token) = (Arc::clone(&w), Arc::clone(&barrier), token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..INCREMENTS {
                    let reply = w
                        .send(Some(&token), |s| {
                            add(&w, s, "n", 1);
                        })
                        .await;
                    ensure!(
                        w,
                        !reply.was_new,
                        "an incrementing request found no session"
                    );
                    token = reply.token_or(&token, "an increment racing others");
                }
                token
            })
        })
        .collect();
    let mut last = Vec::with_capacity(INCREMENTERS);
    for task in tasks {
        match task.await {
            Ok(token) => last.push(token),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => w.fail(format_args!("an incrementing task was cancelled: {e}")),
        }
    }
    let total = i64::try_from(INCREMENTERS * INCREMENTS).unwrap_or(i64::MAX);
    if w.merges {
        let s = w.live(&token, "after concurrent increments").await;
        let n = get::<i64>(&w, &s, "n");
        ensure!(
            w,
            n == Some(1000 + total),
            "concurrent increments were lost: {total} added to 1000 left {n:?}"
        );
    } else {
        let own = i64::try_from(INCREMENTS).unwrap_or(i64::MAX);
        for token in last {
            let s = w.live(&token, "a client's last cookie").await;
            ensure!(
                w,
                get::<i64>(&w, &s, "n") == Some(1000 + own),
                "pinned: a sealed cookie holds exactly its own client's increments"
            );
        }
    }
}

/// What a store does with an increment whose key another request changed between its load
/// and its save: the delta is added to the value stored meanwhile (set by the other request),
/// counts from 0 if the other request removed the key, and is dropped if the other request
/// stored something that is not an integer (its whole value stays; the save still succeeds).
/// An increment carried by a regeneration is added the same way, and one after an insert in
/// the same request is a plain set. A store that cannot merge pins its limit: the response's
/// cookie holds the value the request computed.
///
/// # Panics
///
/// If the store does not behave as described.
///
/// # Examples
///
/// ```
/// use fastsession::MemoryStore;
/// use fastsession::testing::{StoreUnderTest, increments_merge_onto_the_stored_value, run};
///
/// let sut = StoreUnderTest::new(|| MemoryStore::new().unwrap());
/// run(increments_merge_onto_the_stored_value(&sut));
/// ```
pub async fn increments_merge_onto_the_stored_value(sut: &StoreUnderTest) {
    let w = World::new(sut, "increments_merge_onto_the_stored_value");
    type Meanwhile = fn(&World, &crate::Session);
    let cases: [(&str, Meanwhile, Option<i64>); 4] = [
        (
            "another request set the key",
            |w, s| put(w, s, "n", 100),
            Some(103),
        ),
        (
            "another request incremented the key",
            |w, s| {
                add(w, s, "n", 10);
            },
            Some(18),
        ),
        (
            "another request removed the key",
            |_, s| {
                s.remove("n");
            },
            Some(3),
        ),
        (
            "another request stored text under the key",
            |w, s| put(w, s, "n", "text"),
            None,
        ),
    ];
    for (what, meanwhile, expected) in cases {
        let token = w.create("n", 5).await;
        let slow = w.open(Some(&token)).await;
        ensure!(w, !slow.was_new, "{what}: the session did not load");
        ensure!(
            w,
            add(&w, &slow.session, "n", 3) == 8,
            "{what}: the increment does not see the loaded value"
        );
        let token = w
            .send(Some(&token), |s| meanwhile(&w, s))
            .await
            .token_or(&token, what);
        let saved = w.close(slow).await;
        let after = saved.token_or(&token, what);
        let s = w.live(&after, what).await;
        if !w.merges {
            ensure!(
                w,
                get::<i64>(&w, &s, "n") == Some(8),
                "{what}: pinned: a sealed cookie holds the value its request computed"
            );
            continue;
        }
        match expected {
            Some(n) => ensure!(
                w,
                get::<i64>(&w, &s, "n") == Some(n),
                "{what}: expected {n}, the store holds {:?}",
                s.get::<serde_json::Value>("n").ok().flatten()
            ),
            None => ensure!(
                w,
                get::<String>(&w, &s, "n").as_deref() == Some("text"),
                "{what}: the other request's value did not stay"
            ),
        }
    }

    // An increment saved by a regeneration adds to what another request saved meanwhile.
    let token = w.create("n", 5).await;
    let slow = w.open(Some(&token)).await;
    add(&w, &slow.session, "n", 3);
    slow.session.regenerate();
    let token = w
        .send(Some(&token), |s| {
            add(&w, s, "n", 10);
        })
        .await
        .token_or(&token, "an increment before a regeneration");
    let moved = w
        .close(slow)
        .await
        .token("a regeneration carrying an increment");
    ensure!(w, moved != token, "regenerate kept the id");
    let s = w.live(&moved, "the regenerated session").await;
    let expected = if w.merges { 18 } else { 8 };
    ensure!(
        w,
        get::<i64>(&w, &s, "n") == Some(expected),
        "a regeneration carrying an increment left {:?}, not {expected}",
        get::<i64>(&w, &s, "n")
    );

    // In one request, the last operation wins: an insert after an increment is a plain set,
    // whatever another request saved meanwhile.
    let token = w.create("n", 5).await;
    let slow = w.open(Some(&token)).await;
    add(&w, &slow.session, "n", 3);
    put(&w, &slow.session, "n", 50);
    ensure!(
        w,
        add(&w, &slow.session, "n", 1) == 51,
        "an increment after an insert does not add to the inserted value"
    );
    let token = w
        .send(Some(&token), |s| {
            add(&w, s, "n", 10);
        })
        .await
        .token_or(&token, "an increment racing a set");
    let after = w
        .close(slow)
        .await
        .token_or(&token, "a set after an increment");
    let s = w.live(&after, "after a set").await;
    ensure!(
        w,
        get::<i64>(&w, &s, "n") == Some(51),
        "an insert after an increment was not saved as a plain set: {:?}",
        get::<i64>(&w, &s, "n")
    );
}
