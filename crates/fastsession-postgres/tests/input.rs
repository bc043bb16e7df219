//! Input PostgreSQL's types cannot hold as such: U+0000 (held, escaped), and JSON `jsonb`
//! refuses (refused as `Unstorable`, with nothing changed). Finding 8: a NUL in a flash or a
//! user id used to fail the request with a store error, and a login carrying one lost the
//! session.

use fastsession_core::ErrorKind;
use fastsession_core::events::{self, Event};
use fastsession_core::store::Backend as _;
use serde_json::value::RawValue;

use crate::support::{clock, expiry, fresh, raw, request, session_config, storage_key};

/// Texts that hold U+0000, and the escape character U+0001 around it, so that an escape that
/// confused the two would show.
const TRICKY: [&str; 7] = [
    "a\0b",
    "\0",
    "\u{1}",
    "\u{1}0",
    "\u{1}1\0\u{1}",
    "\\u0000",
    "ünï\0cødé ☃",
];

/// A NUL in a value, a flash, a key and a user id is stored and read back exactly; keys with
/// one are merged and removed like any other; the user's sessions are listed under it; and
/// the row holds U+0000 escaped (PostgreSQL could not store it as such).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_values_flashes_keys_and_user_ids_is_held_faithfully() {
    let (store, schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let user = "us\0er\u{1}0";
    let id = request(&cfg, None, |s| {
        for (i, text) in TRICKY.iter().enumerate() {
            s.insert(format!("key{text}"), format!("value{text}"))
                .unwrap();
            s.insert(format!("n{i}"), *text).unwrap();
            s.add_flash_under(&format!("flash{text}"), *text).unwrap();
        }
        s.add_flash(TRICKY[0]).unwrap();
    })
    .await
    .cookie();
    // A later request merges more, removes a key with a NUL, and logs in with one.
    request(&cfg, Some(&id), |s| {
        for (i, text) in TRICKY.iter().enumerate() {
            assert_eq!(
                s.get::<String>(&format!("key{text}")).unwrap(),
                Some(format!("value{text}")),
                "{text:?}"
            );
            assert_eq!(
                s.get::<String>(&format!("n{i}")).unwrap().as_deref(),
                Some(*text)
            );
        }
        assert!(s.remove(&format!("key{}", TRICKY[0])));
        s.insert("later\0", "b\0").unwrap();
        s.set_user_id(user);
    })
    .await
    .result
    .unwrap();
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<String>(&format!("key{}", TRICKY[0])).unwrap(), None);
        assert_eq!(
            s.get::<String>(&format!("key{}", TRICKY[1])).unwrap(),
            Some(format!("value{}", TRICKY[1]))
        );
        assert_eq!(s.get::<String>("later\0").unwrap().as_deref(), Some("b\0"));
        assert_eq!(s.user_id().as_deref(), Some(user));
        for text in TRICKY {
            let flashes: Vec<String> = s.take_flashes_under(&format!("flash{text}")).unwrap();
            assert_eq!(flashes, [text], "{text:?}");
        }
        let flashes: Vec<String> = s.take_flashes().unwrap();
        assert_eq!(flashes, [TRICKY[0]]);
    })
    .await
    .result
    .unwrap();
    let listed = store
        .sessions_of(user, &expiry(), clock_now(&clock))
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the user's sessions are listed under the NUL id"
    );
    let record = store
        .backend()
        .read(&storage_key(&store, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.user_id(), Some(user));
    // At rest: U+0000 and U+0001 each as U+0001 and a digit.
    let client = raw().await;
    let row = client
        .query_one(
            &format!("SELECT user_id, vals ->> $1 FROM \"{}\".sessions", schema.0),
            &[&"later\u{1}0"],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "us\u{1}0er\u{1}10");
    assert_eq!(row.get::<_, String>(1), "b\u{1}0");
}

/// A login that regenerates the session and sets a user id with a NUL succeeds: the new id
/// carries the data and the user, and the old id is ended, as at any login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_a_nul_user_id_moves_the_session_to_a_new_id() {
    let (store, _schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let old = request(&cfg, None, |s| {
        s.set_user_id("alice");
        s.insert("cart", 3).unwrap();
    })
    .await
    .cookie();
    let reply = request(&cfg, Some(&old), |s| {
        s.regenerate();
        s.set_user_id("a\0b");
        s.add_flash("welcome\0").unwrap();
    })
    .await;
    let new = reply.cookie();
    assert_ne!(new, old);
    request(&cfg, Some(&new), |s| {
        assert!(!s.is_new(), "the new id loads");
        assert_eq!(s.user_id().as_deref(), Some("a\0b"));
        assert_eq!(s.get::<i32>("cart").unwrap(), Some(3));
        let flashes: Vec<String> = s.take_flashes().unwrap();
        assert_eq!(flashes, ["welcome\0"]);
    })
    .await
    .result
    .unwrap();
    request(&cfg, Some(&old), |s| {
        assert!(s.is_new(), "the old id is ended")
    })
    .await
    .result
    .unwrap();
}

/// Values a client may smuggle in as raw JSON that `jsonb` refuses.
fn refused() -> [Box<RawValue>; 3] {
    [
        RawValue::from_string("1e1000000".to_owned()).unwrap(),
        RawValue::from_string("[\"\\ud800\"]".to_owned()).unwrap(),
        RawValue::from_string("{\"k\": -1e-1000000}".to_owned()).unwrap(),
    ]
}

/// A value `jsonb` cannot hold (a number beyond `numeric`'s range, a lone surrogate escape),
/// in a value or a flash, at a create or a merge, fails the save with `Unstorable`, counts
/// the event, and leaves the stored session as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_jsonb_cannot_hold_is_refused_as_unstorable_and_changes_nothing() {
    let (store, schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
        .await
        .cookie();
    for (i, value) in refused().into_iter().enumerate() {
        let before = events::counts().of(Event::Unstorable);
        let as_flash = i % 2 == 1;
        let reply = request(&cfg, Some(&id), |s| {
            s.insert("n", 2).unwrap();
            if as_flash {
                s.add_flash(&value).unwrap();
            } else {
                s.insert("big", &value).unwrap();
            }
        })
        .await;
        let error = reply.result.as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unstorable, "{value}: {error:?}");
        assert_eq!(reply.set, None);
        assert!(events::counts().of(Event::Unstorable) > before);
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("n").unwrap(), Some(1), "unchanged");
            assert_eq!(s.get::<serde_json::Value>("big").unwrap(), None);
            assert!(s.take_flashes::<serde_json::Value>().unwrap().is_empty());
        })
        .await
        .result
        .unwrap();
        // At a create, no row is left.
        let reply = request(&cfg, None, |s| s.insert("big", &value).unwrap()).await;
        let error = reply.result.as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unstorable, "{value}: {error:?}");
    }
    let rows: i64 = raw()
        .await
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".sessions", schema.0),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

/// A login (regenerate and set the user) whose session carries a value `jsonb` refuses fails
/// with `Unstorable` and leaves the logged-in session as it was, loadable under its old id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_leaves_the_logged_in_session_intact() {
    let (store, _schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let old = request(&cfg, None, |s| {
        s.set_user_id("alice");
        s.insert("cart", 3).unwrap();
    })
    .await
    .cookie();
    let [value, ..] = refused();
    let reply = request(&cfg, Some(&old), |s| {
        s.regenerate();
        s.set_user_id("bob");
        s.insert("big", &value).unwrap();
    })
    .await;
    assert_eq!(
        reply.result.as_ref().unwrap_err().kind(),
        ErrorKind::Unstorable
    );
    request(&cfg, Some(&old), |s| {
        assert!(!s.is_new(), "the old session is still there");
        assert_eq!(s.user_id().as_deref(), Some("alice"));
        assert_eq!(s.get::<i32>("cart").unwrap(), Some(3));
    })
    .await
    .result
    .unwrap();
    let listed = store
        .sessions_of("alice", &expiry(), clock_now(&clock))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        store
            .sessions_of("bob", &expiry(), clock_now(&clock))
            .await
            .unwrap()
            .is_empty()
    );
}

fn clock_now(clock: &fastsession_core::time::ManualClock) -> fastsession_core::time::UnixTime {
    use fastsession_core::time::Clock as _;
    clock.now()
}
