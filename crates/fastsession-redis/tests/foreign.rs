//! 9: something this store did not write under one of its keys (another type, a hash without
//! timestamps, unknown fields) reads as no session and is cleared by the next write: a
//! client carrying that key's cookie gets a fresh session, never a 503 on every request.

use std::time::Duration;

use fastsession_core::ErrorKind;
use fastsession_core::events::{self, Event};
use fastsession_core::session::SessionId;
use fastsession_core::store::{AnonymousBudget, Backend as _, RejectReason};
use fastsession_core::time::Clock as _;

use crate::support::{
    Cleanup, URL, clock, config, expiry, keys, request, session_key, shared_store, store_with,
    sync_connection,
};

/// Every check here is over well within this.
const LIMIT: Duration = Duration::from_secs(30);

/// Plants one kind of foreign value under `key`, after deleting what was there.
fn plant(con: &mut redis::Connection, key: &str, kind: &str) {
    let _: i64 = redis::cmd("DEL").arg(key).query(con).unwrap();
    let cmd = match kind {
        "string" => redis::cmd("SET").arg(key).arg("junk").clone(),
        "list" => redis::cmd("RPUSH").arg(key).arg("junk").clone(),
        "set" => redis::cmd("SADD").arg(key).arg("junk").clone(),
        "zset" => redis::cmd("ZADD").arg(key).arg(1).arg("junk").clone(),
        // A hash with no timestamps at all.
        "hash without fields" => redis::cmd("HSET").arg(key).arg("v:x").arg("1").clone(),
        "hash with a bad time" => redis::cmd("HSET")
            .arg(key)
            .arg("created")
            .arg("soon")
            .arg("last_active")
            .arg("1")
            .clone(),
        "hash with unknown fields" => redis::cmd("HSET")
            .arg(key)
            .arg("created")
            .arg(crate::support::T0)
            .arg("last_active")
            .arg(crate::support::T0)
            .arg("owner")
            .arg("someone else")
            .clone(),
        other => panic!("{other}"),
    };
    let _: redis::Value = cmd.query(con).unwrap();
}

const KINDS: [&str; 7] = [
    "string",
    "list",
    "set",
    "zset",
    "hash without fields",
    "hash with a bad time",
    "hash with unknown fields",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_foreign_value_under_a_session_key_reads_as_no_session() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let mut con = sync_connection(URL).unwrap();
        for kind in KINDS {
            let id = request(&cfg, None, |s| {
                s.set_user_id("ada");
                s.insert("n", 1).unwrap();
            })
            .await
            .cookie();
            let redis_key = session_key(&store, &id);
            plant(&mut con, &redis_key, kind);
            let storage_key = store.storage_key(&SessionId::parse(&id).unwrap());

            let unreadable = events::counts().of(Event::UnreadableRecord);
            let rejected = events::counts().of(Event::Rejected(RejectReason::UnknownId));
            assert!(
                store.backend().read(&storage_key).await.unwrap().is_none(),
                "{kind}"
            );
            // Every request with the cookie gets a fresh session, not an error.
            for _ in 0..3 {
                let reply = request(&cfg, Some(&id), |s| {
                    assert!(s.get::<i32>("n").unwrap().is_none());
                    s.insert("n", 2).unwrap();
                })
                .await;
                assert!(reply.was_new(), "{kind}");
                assert_ne!(reply.cookie(), id, "{kind}");
            }
            assert!(
                events::counts().of(Event::UnreadableRecord) - unreadable >= 4,
                "{kind}: counted"
            );
            assert!(events::counts().of(Event::Rejected(RejectReason::UnknownId)) > rejected);

            // A refresh or an end of it finds nothing and clears the key.
            let touched = store
                .backend()
                .touch(&storage_key, clock.now(), &expiry())
                .await
                .unwrap();
            if kind == "hash with unknown fields" {
                // Its timestamps are fine: the touch moves them; the next read still
                // refuses it, and the remove deletes it.
                assert!(touched);
            } else {
                assert!(!touched, "{kind}");
                plant(&mut con, &redis_key, kind);
            }
            assert!(
                store
                    .backend()
                    .remove(&storage_key)
                    .await
                    .unwrap()
                    .is_none(),
                "{kind}"
            );
            let left: i64 = redis::cmd("EXISTS")
                .arg(&redis_key)
                .query(&mut con)
                .unwrap();
            assert_eq!(left, 0, "{kind}: deleted");
        }
    })
    .await
    .unwrap();
}

/// A foreign value planted between a request's load and its save: the save reports the
/// session ended (not a store error) and deletes it; the cookie then gets a fresh session.
/// Both update paths: a logged-in session and a small anonymous one (MULTI/EXEC), and an
/// anonymous one over its share of the budget (the script).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_foreign_value_planted_before_a_save_ends_the_session() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        for kind in KINDS {
            for (user, size) in [(Some("ada"), 1), (None, 1), (None, 1_000)] {
                let scripted = size > 1;
                let id = request(&cfg, None, |s| {
                    if let Some(user) = user {
                        s.set_user_id(user);
                    }
                    s.insert("n", "n".repeat(size)).unwrap();
                })
                .await
                .cookie();
                let redis_key = session_key(&store, &id);
                let reply = request(&cfg, Some(&id), |s| {
                    let mut con = sync_connection(URL).unwrap();
                    plant(&mut con, &redis_key, kind);
                    s.insert("m", 2).unwrap();
                })
                .await;
                assert!(!reply.was_new());
                let mut con = sync_connection(URL).unwrap();
                match reply.result {
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::SessionEnded, "{kind} {user:?}: {e:?}");
                        let left: i64 = redis::cmd("EXISTS")
                            .arg(&redis_key)
                            .query(&mut con)
                            .unwrap();
                        assert_eq!(left, 0, "{kind} {user:?}: deleted");
                    }
                    // Merged into a hash whose timestamps pass the check (the script's), or
                    // that has `created` at all (the MULTI/EXEC path checks no more, to stay
                    // a read-free step): still never read as a session, as the next request
                    // shows.
                    Ok(()) => assert!(
                        kind == "hash with unknown fields"
                            || (kind == "hash with a bad time" && !scripted),
                        "{kind} {user:?}"
                    ),
                }
                let reply = request(&cfg, Some(&id), |_| {}).await;
                assert!(reply.was_new(), "{kind} {user:?}");
                reply.result.unwrap();
                // And a logout on it succeeds.
                plant(&mut con, &redis_key, kind);
                request(&cfg, Some(&id), fastsession_core::Session::destroy)
                    .await
                    .result
                    .unwrap();
            }
        }
    })
    .await
    .unwrap();
}

/// The other keys: a foreign value under a user's index or the anonymous index is replaced,
/// so logins and anonymous sessions keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn foreign_values_under_index_keys_are_replaced() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let mut con = sync_connection(URL).unwrap();
        let user_key = store.backend().user_key("ada");
        for kind in ["string", "list", "zset", "hash without fields"] {
            plant(&mut con, &user_key, kind);
            let id = request(&cfg, None, |s| s.set_user_id("ada")).await.cookie();
            let listed = store
                .sessions_of("ada", &expiry(), clock.now())
                .await
                .unwrap();
            assert_eq!(listed.len(), 1, "{kind}");
            assert_eq!(
                listed[0].key,
                store.storage_key(&SessionId::parse(&id).unwrap())
            );
            request(&cfg, Some(&id), fastsession_core::Session::destroy)
                .await
                .result
                .unwrap();
        }
        // Nothing else of anybody's: the keys are all this store's.
        let all = keys(&mut con, &format!("{}*", store.backend().key_prefix()));
        assert!(all.len() <= 1, "{all:?}");

        // Under 128 sessions each create sends its own queue entry; with 128, every second
        // create sends its own and the one before it.
        for (budget, batch) in [(100, 1), (128, 2)] {
            let store = store_with(URL, AnonymousBudget::new(budget, 1 << 20)).await;
            let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
            let cfg = config(&store, &clock);
            let index = store.backend().anonymous_index_key().to_owned();
            let bytes = index.replacen("a:{", "b:{", 1);
            for kind in ["string", "list", "zset", "hash without fields"] {
                for key in [&index, &bytes] {
                    plant(&mut con, key, kind);
                    let mut ids = Vec::new();
                    for n in 0..batch {
                        ids.push(
                            request(&cfg, None, |s| s.insert("n", n).unwrap())
                                .await
                                .cookie(),
                        );
                    }
                    // A value of the wrong type under either key: the index started afresh
                    // and holds the new sessions alone. (A list under the index is taken as
                    // the queue, a hash under the byte counts as theirs: foreign entries are
                    // dropped when their turn comes.)
                    let wrong_type = if key == &index {
                        kind != "list"
                    } else {
                        kind != "hash without fields"
                    };
                    if wrong_type {
                        let queued: usize = redis::cmd("LLEN").arg(&index).query(&mut con).unwrap();
                        assert_eq!(queued, batch, "{kind} under {key}, batch {batch}");
                    }
                    // Under an update too (the MULTI/EXEC path does not touch the index).
                    plant(&mut con, key, kind);
                    for id in &ids {
                        request(&cfg, Some(id), |s| s.insert("n", 2).unwrap())
                            .await
                            .result
                            .unwrap();
                        request(&cfg, Some(id), fastsession_core::Session::destroy)
                            .await
                            .result
                            .unwrap();
                    }
                }
            }
            let all = keys(&mut con, &format!("{}*", store.backend().key_prefix()));
            assert!(all.len() <= 2, "{all:?}");
        }
    })
    .await
    .unwrap();
}
