//! PostgreSQL specifics: migration, the jsonb merge under many concurrent tasks, what is at
//! rest, batched reaping, injection-looking input stored verbatim (case 27).

use std::time::Duration;

use fastsession_core::store::Backend as _;
use fastsession_core::time::UnixTime;

use crate::support::{T0, clock, fresh, open, raw, request, session_config, storage_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_also_when_run_concurrently() {
    let (config, _schema) = crate::support::config();
    let store = open(config.clone()).await;
    store.backend().migrate().await.unwrap();
    let other = open(config.clone()).await;
    let (a, b) = tokio::join!(store.backend().migrate(), other.backend().migrate());
    a.unwrap();
    b.unwrap();
    let client = raw().await;
    let indexes: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'sessions'",
            &[&config.schema()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        indexes, 4,
        "primary key, expiry index, user index, anonymous eviction index"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_changing_different_keys_all_persist_in_jsonb() {
    let (store, _schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("start", 0).unwrap())
        .await
        .cookie();
    for round in 0..3 {
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let (cfg, id) = (cfg.clone(), id.clone());
                tokio::spawn(async move {
                    let reply = request(&cfg, Some(&id), |s| {
                        s.insert(format!("k{round}_{i}"), i).unwrap();
                        s.insert("same", vec![i; 32]).unwrap();
                        if i == 0 {
                            s.remove("start");
                        }
                    })
                    .await;
                    reply.result.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    request(&cfg, Some(&id), |s| {
        for round in 0..3 {
            for i in 0..24 {
                assert_eq!(s.get::<i32>(&format!("k{round}_{i}")).unwrap(), Some(i));
            }
        }
        assert_eq!(
            s.get::<i32>("start").unwrap(),
            None,
            "a removal persists too"
        );
        let same = s.get::<Vec<i32>>("same").unwrap().unwrap();
        assert!(
            same.len() == 32 && same.iter().all(|v| *v == same[0]),
            "one whole value"
        );
    })
    .await;
    // The merges happened in the database: one row, 72 + 1 keys, version counts every save.
    let client = raw().await;
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM jsonb_object_keys(vals)), version FROM \"{}\".sessions",
                _schema.0
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 73);
    assert_eq!(row.get::<_, i64>(1), 1 + 72);
}

/// Case 33 at the database level: no column of any row holds the raw id (or its hex/base64
/// text), and the user index holds a hash, not the user id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_id_and_user_index_text_are_never_stored() {
    let (store, schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let cookie = request(&cfg, None, |s| {
        s.insert("n", 1).unwrap();
        s.set_user_id("alice@example.com");
    })
    .await
    .cookie();
    let id = fastsession_core::session::SessionId::parse(&cookie).unwrap();
    let client = raw().await;
    let rows = client
        .query(
            &format!(
                "SELECT key, encode(key, 'hex'), vals::text, flashes::text, user_hash, \
                 t::text FROM \"{}\".sessions t",
                schema.0
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let key: Vec<u8> = row.get(0);
    assert_eq!(key, storage_key(&store, &cookie).as_bytes().to_vec());
    assert_ne!(&key[..], &id.as_bytes()[..]);
    let whole: String = row.get(5);
    assert!(!whole.contains(&cookie), "the cookie value is at rest");
    let raw_hex: String = id.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!whole.contains(&raw_hex), "the raw id is at rest");
    let user_hash: Vec<u8> = row.get(4);
    assert_eq!(user_hash.len(), 32);
    assert!(!String::from_utf8_lossy(&user_hash).contains("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_are_reaped_in_batches() {
    let (store, schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    for _ in 0..25 {
        request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
    }
    clock.advance(Duration::from_secs(50));
    let live = request(&cfg, None, |s| s.insert("n", 2).unwrap())
        .await
        .cookie();
    // 100 s idle: the first 25 expire at T0 + 100, the last at T0 + 150.
    let at = UnixTime::from_secs(T0 + 100);
    assert_eq!(
        store.reap(UnixTime::from_secs(T0 + 99), 10).await.unwrap(),
        0
    );
    assert_eq!(store.reap(at, 10).await.unwrap(), 10);
    assert_eq!(store.reap(at, 10).await.unwrap(), 10);
    assert_eq!(store.reap(at, 10).await.unwrap(), 5);
    assert_eq!(store.reap(at, 10).await.unwrap(), 0);
    let client = raw().await;
    let left: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".sessions", schema.0),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1);
    clock.advance(Duration::from_secs(60));
    request(&cfg, Some(&live), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(2));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_reaper_runs_until_the_store_is_dropped() {
    let (store, _schema) = fresh().await;
    let reaper = fastsession_postgres::spawn_reaper(&store, Duration::from_millis(20), 100);
    tokio::time::sleep(Duration::from_millis(60)).await;
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), reaper)
        .await
        .expect("the reaper ends once the store is gone")
        .unwrap();
}

/// Case 27: keys and values that look like SQL are data, stored and returned verbatim, and
/// the table is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_looking_keys_and_values_are_stored_verbatim() {
    let (store, schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let hostile = [
        "'; DROP TABLE sessions; --",
        "\" OR 1=1 --",
        "$1",
        "key') || jsonb_build_object('x', 1) --",
        "{\"a\": 1}",
        "\\x00' --",
        "ünïcødé ☃ \u{1F600}",
    ];
    let id = request(&cfg, None, |s| {
        for (i, text) in hostile.iter().enumerate() {
            s.insert(*text, format!("{text}{i}")).unwrap();
            s.add_flash_under(text, *text).unwrap();
        }
        s.set_user_id(hostile[0]);
    })
    .await
    .cookie();
    request(&cfg, Some(&id), |s| {
        for (i, text) in hostile.iter().enumerate() {
            assert_eq!(s.get::<String>(text).unwrap(), Some(format!("{text}{i}")));
        }
        s.remove(hostile[1]);
        let flashes: Vec<String> = s.take_flashes_under(hostile[2]).unwrap();
        assert_eq!(flashes, [hostile[2]]);
    })
    .await
    .result
    .unwrap();
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<String>(hostile[1]).unwrap(), None);
        assert_eq!(s.user_id().as_deref(), Some(hostile[0]));
    })
    .await;
    let listed = store
        .sessions_of(hostile[0], &crate::support::expiry(), clock_now(&clock))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let client = raw().await;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        tables, 3,
        "the sessions, the budget's counters and the eviction floor"
    );
    // The backend reads the raw row back exactly.
    let record = store
        .backend()
        .read(&storage_key(&store, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.user_id(), Some(hostile[0]));
}

fn clock_now(clock: &fastsession_core::time::ManualClock) -> UnixTime {
    use fastsession_core::time::Clock as _;
    clock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_and_urls_are_refused_at_connect() {
    use fastsession_core::ErrorKind;
    use fastsession_postgres::{PostgresBackend, PostgresConfig};
    for config in [
        PostgresConfig::new(crate::support::URL).with_table("x\"; DROP TABLE y; --"),
        PostgresConfig::new(crate::support::URL).with_schema("Public"),
        PostgresConfig::new("postgres://u:secret@[::1"),
    ] {
        let err = PostgresBackend::connect(config).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(!format!("{err:?}").contains("secret"));
    }
}

/// The liveness rule written in SQL agrees with `Expiry::check` at and around every
/// boundary (idle, anonymous idle, absolute, skew, inconsistent times, times beyond `i64`),
/// for rows with a user and anonymous rows, in a refresh and in a merge; a row found not live
/// is deleted by the same statement, and a live one gets the deadline `Expiry::deadline`
/// gives its class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_liveness_matches_expiry_check_at_the_boundaries() {
    use fastsession_core::session::{ChangeSet, Expiry, Record};
    use fastsession_core::store::{StorageKey, Update};

    let (store, schema) = fresh().await;
    let client = raw().await;
    let backend = store.backend();
    // Idle 100 s with a user, 40 s without.
    let expiry = Expiry::default()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(1000))
        .unwrap()
        .with_clock_skew(Duration::from_secs(60))
        .with_anonymous_idle_timeout(Duration::from_secs(40));
    let now = T0;
    let mut cases = Vec::new();
    for created in [
        now - 1001,
        now - 1000,
        now - 999,
        now - 101,
        now - 100,
        now - 99,
        now - 41,
        now - 40,
        now - 39,
        now,
        now + 60,
        now + 61,
        u64::MAX,
    ] {
        for last in [
            now - 101,
            now - 100,
            now - 99,
            now - 41,
            now - 40,
            now - 39,
            now - 1,
            now,
            now + 60,
            now + 61,
            u64::MAX,
        ] {
            for user in [None, Some("alice")] {
                for merge in [false, true] {
                    cases.push((created, last, user, merge));
                }
            }
        }
    }
    let changes = ChangeSet::default();
    let (mut live, mut anonymous_only_dead) = (0, 0);
    for (i, (created, last, user, merge)) in cases.into_iter().enumerate() {
        let mut record = Record::new(UnixTime::from_secs(created));
        record.set_last_active(UnixTime::from_secs(last));
        record.set_user_id(user.map(str::to_owned));
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&u64::try_from(i).unwrap().to_be_bytes());
        let key = StorageKey::from_bytes(bytes);
        assert!(
            backend
                .create(&key, &record, UnixTime::from_secs(now))
                .await
                .unwrap()
        );
        let at = UnixTime::from_secs(now);
        let expected = expiry.check(&record, at).is_ok();
        let case = format!("created {created}, last active {last}, user {user:?}, merge {merge}");
        let applied = if merge {
            let mut from = record.clone();
            from.set_last_active(at);
            let update = Update::new(&changes, &from, at, &expiry);
            backend.update(&key, update).await.unwrap()
        } else {
            backend.touch(&key, at, &expiry).await.unwrap()
        };
        assert_eq!(applied, expected, "{case}");
        let kept = backend.read(&key).await.unwrap().is_some();
        assert_eq!(kept, expected, "a row not live is deleted: {case}");
        if expected {
            live += 1;
            // The reaping deadline moves to what `Expiry::deadline` says for its class.
            record.set_last_active(at);
            let expires: i64 = client
                .query_one(
                    &format!(
                        "SELECT expires FROM \"{}\".sessions WHERE key = $1",
                        schema.0
                    ),
                    &[&&key.as_bytes()[..]],
                )
                .await
                .unwrap()
                .get(0);
            let deadline = expiry.deadline(&record).as_secs();
            assert_eq!(u64::try_from(expires).unwrap(), deadline, "{case}");
        } else if user.is_none() {
            record.set_user_id(Some("bob".to_owned()));
            if expiry.check(&record, at).is_ok() {
                anonymous_only_dead += 1;
            }
        }
    }
    // The anonymous timeout decided cases: a rule with one idle timeout would fail them.
    assert!(
        live > 20 && anonymous_only_dead > 10,
        "{live}, {anonymous_only_dead}"
    );
}

/// Two app servers (two stores, two pools, one key) over one table: a client alternating
/// between them keeps one session, and concurrent writes through both to different keys all
/// persist.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_app_servers_share_one_session() {
    let (config, _schema) = crate::support::config();
    let a = std::sync::Arc::new(open(config.clone().with_application_name("fs_app_a")).await);
    let b = std::sync::Arc::new(open(config.with_application_name("fs_app_b")).await);
    let clock = clock();
    let (cfg_a, cfg_b) = (session_config(&a, &clock), session_config(&b, &clock));
    let id = request(&cfg_a, None, |s| s.insert("visits", 1).unwrap())
        .await
        .cookie();
    for visit in 2..=6 {
        let cfg = if visit % 2 == 0 { &cfg_b } else { &cfg_a };
        let reply = request(cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("visits").unwrap(), Some(visit - 1));
            s.insert("visits", visit).unwrap();
        })
        .await;
        reply.result.unwrap();
        assert!(
            reply.set.as_ref().is_none_or(|set| *set == id),
            "the same session throughout"
        );
    }
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let cfg = if i % 2 == 0 {
                cfg_a.clone()
            } else {
                cfg_b.clone()
            };
            let id = id.clone();
            tokio::spawn(async move {
                request(&cfg, Some(&id), |s| s.insert(format!("k{i}"), i).unwrap())
                    .await
                    .result
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    request(&cfg_a, Some(&id), |s| {
        for i in 0..20 {
            assert_eq!(s.get::<i32>(&format!("k{i}")).unwrap(), Some(i));
        }
        assert_eq!(s.get::<i32>("visits").unwrap(), Some(6));
    })
    .await
    .result
    .unwrap();
}

/// A row edited into something that is not a session reads as no session: the request gets a
/// fresh one with a new id, never the broken data and never an error; it is counted as an
/// unreadable record (summarised in the log, not a warning per request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_reads_as_no_session() {
    let (store, schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
        .await
        .cookie();
    let client = raw().await;
    client
        .execute(
            &format!("UPDATE \"{}\".sessions SET vals = '[1, 2]'", schema.0),
            &[],
        )
        .await
        .unwrap();
    let unreadable =
        fastsession_core::events::counts().of(fastsession_core::events::Event::UnreadableRecord);
    let reply = request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), None);
        s.insert("m", 1).unwrap();
    })
    .await;
    let fresh_id = reply.cookie();
    assert_ne!(fresh_id, id);
    assert!(
        fastsession_core::events::counts().of(fastsession_core::events::Event::UnreadableRecord)
            > unreadable
    );
}

/// The SQL liveness rule and deadline agree with `Expiry::check` and `Expiry::deadline` for
/// remembered rows (persistent, with a user) and rows with their own deadline, at the
/// boundaries, for a refresh, a merge, and a merge that switches "remember me" and sets a
/// new deadline (the deadline is then the row's after the merge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_liveness_honours_remember_me_and_the_rows_own_deadline() {
    use fastsession_core::session::{Expiry, Record, Session};
    use fastsession_core::store::{StorageKey, Update};

    let (store, schema) = fresh().await;
    let client = raw().await;
    let backend = store.backend();
    // Idle 100 s with a user, 40 s without, 300 s remembered; 1000 s absolute.
    let expiry = Expiry::default()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(1000))
        .unwrap()
        .with_anonymous_idle_timeout(Duration::from_secs(40))
        .with_remembered_idle_timeout(Duration::from_secs(300));
    let now = T0;
    let mut cases = Vec::new();
    for created in [now - 1000, now - 999, now - 300] {
        for last in [now - 300, now - 299, now - 100, now - 99] {
            for (user, persistent) in [(None, true), (Some("alice"), false), (Some("alice"), true)]
            {
                for expires_at in [None, Some(now), Some(now + 1), Some(now + 50)] {
                    for step in ["touch", "merge", "switch"] {
                        cases.push((created, last, user, persistent, expires_at, step));
                    }
                }
            }
        }
    }
    let (mut live, mut by_remembered, mut by_deadline) = (0, 0, 0);
    for (i, (created, last, user, persistent, expires_at, step)) in cases.into_iter().enumerate() {
        let mut record = Record::new(UnixTime::from_secs(created));
        record.set_last_active(UnixTime::from_secs(last));
        record.set_user_id(user.map(str::to_owned));
        record.set_persistent(persistent);
        record.set_expires_at(expires_at.map(UnixTime::from_secs));
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&u64::try_from(i).unwrap().to_be_bytes());
        bytes[8] = 0xee;
        let key = StorageKey::from_bytes(bytes);
        assert!(
            backend
                .create(&key, &record, UnixTime::from_secs(now))
                .await
                .unwrap()
        );
        let at = UnixTime::from_secs(now);
        let expected = expiry.check(&record, at).is_ok();
        let case = format!(
            "created {created}, last {last}, user {user:?}, persistent {persistent}, \
             expires_at {expires_at:?}, {step}"
        );
        // The request's changes, and the row as it is after them.
        let request = Session::new_detached();
        let mut after = record.clone();
        after.set_last_active(at);
        if step == "switch" {
            request.set_persistent(true);
            request.set_persistent(!persistent);
            request.set_expires_at(Some(UnixTime::from_secs(now + 500)));
            after.set_persistent(!persistent);
            after.set_expires_at(Some(UnixTime::from_secs(now + 500)));
        }
        let changes = request.changes();
        let applied = if step == "touch" {
            backend.touch(&key, at, &expiry).await.unwrap()
        } else {
            let update = Update::new(&changes, &after, at, &expiry);
            backend.update(&key, update).await.unwrap()
        };
        assert_eq!(applied, expected, "{case}");
        let read = backend.read(&key).await.unwrap();
        assert_eq!(
            read.is_some(),
            expected,
            "a row not live is deleted: {case}"
        );
        if let Some(read) = read {
            live += 1;
            assert_eq!(read.expires_at(), after.expires_at(), "{case}");
            assert_eq!(read.is_persistent(), after.is_persistent(), "{case}");
            let expires: i64 = client
                .query_one(
                    &format!(
                        "SELECT expires FROM \"{}\".sessions WHERE key = $1",
                        schema.0
                    ),
                    &[&&key.as_bytes()[..]],
                )
                .await
                .unwrap()
                .get(0);
            let deadline = expiry.deadline(&after).as_secs();
            assert_eq!(u64::try_from(expires).unwrap(), deadline, "{case}");
        }
        if user.is_some() && persistent && last == now - 299 && expected {
            by_remembered += 1;
        }
        if expires_at == Some(now) && !expected {
            by_deadline += 1;
        }
    }
    // Cases the new rules decided: live only as remembered, ended only by the deadline.
    assert!(
        live > 50 && by_remembered > 5 && by_deadline > 20,
        "{live}, {by_remembered}, {by_deadline}"
    );
}

/// A table made before sessions had their own deadline (no `expires_at`) gets the column from
/// `migrate`; a row written before loads without a deadline and takes one on its next save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_adds_expires_at_and_old_rows_still_load() {
    use fastsession_core::session::SessionId;

    let (config, schema) = crate::support::config();
    let s = &schema.0;
    let before = open(config.clone()).await;
    let client = raw().await;
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{s}\".sessions DROP COLUMN expires_at"
        ))
        .await
        .unwrap();
    // A row as the build before wrote it.
    let id = SessionId::generate().unwrap();
    let key = before.storage_key(&id);
    let t0 = i64::try_from(T0).unwrap();
    client
        .execute(
            &format!(
                "INSERT INTO \"{s}\".sessions \
                 (key, created, last_active, expires, persistent, user_id, vals, data_len) \
                 VALUES ($1, $2::bigint, $2::bigint, $2::bigint + 100, true, 'ada', '{{\"n\": 1}}', 0)"
            ),
            &[&&key.as_bytes()[..], &t0],
        )
        .await
        .unwrap();
    let store = std::sync::Arc::new(open(config).await);
    let columns: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = 'sessions' AND column_name = 'expires_at'",
            &[&s],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(columns, 1, "migrate added the column");
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let deadline = T0 + 30;
    let mut loaded = false;
    request(&cfg, Some(id.as_str()), |s| {
        loaded = !s.is_new();
        assert_eq!(s.get::<i32>("n").unwrap(), Some(1));
        assert_eq!(s.expires_at(), None);
        s.set_expires_at(Some(UnixTime::from_secs(deadline)));
    })
    .await
    .result
    .unwrap();
    assert!(loaded, "a row written before the column loads");
    let row = client
        .query_one(
            &format!("SELECT expires_at, expires FROM \"{s}\".sessions WHERE key = $1"),
            &[&&key.as_bytes()[..]],
        )
        .await
        .unwrap();
    let deadline = i64::try_from(deadline).unwrap();
    assert_eq!(
        (row.get::<_, Option<i64>>(0), row.get::<_, i64>(1)),
        (Some(deadline), deadline)
    );
    clock.advance(Duration::from_secs(30));
    let mut ended = false;
    request(&cfg, Some(id.as_str()), |s| ended = s.is_new()).await;
    assert!(ended, "ended at its deadline");
}

/// The merge of increments in SQL gives what `Record::apply` gives in Rust, on the stored
/// values at the edges (a float with an integer value, a number beyond `bigint`, the ends of
/// `bigint`, text, an object, a key not stored), for a logged-in row (the plain merge
/// statement) and an anonymous one (the budgeted one), with and without a clear of the values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_merge_in_sql_as_record_apply_does() {
    use fastsession_core::session::{Record, Session};
    use fastsession_core::store::Update;
    use serde_json::Value;

    let (store, _schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let values = |r: &Record| -> Vec<(String, Value)> {
        r.values()
            .map(|(k, v)| (k.to_owned(), serde_json::from_str(v.get()).unwrap()))
            .collect()
    };
    for user in [Some("ada"), None] {
        for cleared in [false, true] {
            let id = request(&cfg, None, |s| {
                if let Some(user) = user {
                    s.set_user_id(user);
                }
                s.insert("n", 5).unwrap();
                s.insert("negative", -7).unwrap();
                s.insert("max", i64::MAX).unwrap();
                s.insert("min", i64::MIN).unwrap();
                s.insert("float", 1.0).unwrap();
                s.insert("huge", u64::MAX).unwrap();
                s.insert("text", "x").unwrap();
                s.insert("object", serde_json::json!({"a": 1})).unwrap();
                s.insert("kept", 1).unwrap();
            })
            .await
            .cookie();
            let key = storage_key(&store, &id);
            let before = store.backend().read(&key).await.unwrap().unwrap();
            // A request that loaded none of these keys (or cleared them) increments them.
            let session = Session::new_detached();
            if cleared {
                session.insert("x", 0).unwrap();
                session.clear();
            }
            let mut from = Record::new(before.created());
            for (k, delta) in [
                ("n", 3),
                ("negative", 2),
                ("max", 1),
                ("min", -1),
                ("float", 1),
                ("huge", 1),
                ("text", 1),
                ("object", 1),
                ("missing", 4),
            ] {
                let seen = session.increment(k, delta).unwrap();
                from.insert_value(
                    k.to_owned(),
                    serde_json::value::to_raw_value(&seen).unwrap(),
                );
            }
            from.set_user_id(user.map(str::to_owned));
            let changes = session.changes();
            let now = UnixTime::from_secs(T0 + 1);
            let expiry = crate::support::expiry();
            let update = Update::new(&changes, &from, now, &expiry);
            assert!(store.backend().update(&key, update).await.unwrap());
            let mut expected = before.clone();
            expected.apply(&changes, &from);
            let stored = store.backend().read(&key).await.unwrap().unwrap();
            assert_eq!(
                values(&stored),
                values(&expected),
                "user {user:?}, cleared {cleared}"
            );
        }
    }
}

/// Concurrent increments of two counters of a logged-in session, with sets of other keys in
/// the same requests: every increment counts and every set lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_of_a_logged_in_session_all_count() {
    let (store, _schema) = fresh().await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.set_user_id("ada")).await.cookie();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (cfg, id) = (cfg.clone(), id.clone());
            tokio::spawn(async move {
                for round in 0..10 {
                    request(&cfg, Some(&id), |s| {
                        s.increment("up", 1).unwrap();
                        s.increment("down", -3).unwrap();
                        s.insert(format!("k{i}"), round).unwrap();
                    })
                    .await
                    .result
                    .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i64>("up").unwrap(), Some(160));
        assert_eq!(s.get::<i64>("down").unwrap(), Some(-480));
        for i in 0..16 {
            assert_eq!(s.get::<i32>(&format!("k{i}")).unwrap(), Some(9));
        }
    })
    .await
    .result
    .unwrap();
}
