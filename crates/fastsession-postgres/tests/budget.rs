//! The anonymous budget and the anonymous idle timeout: sessions without a user id are
//! bounded in count and bytes, the least recently active goes first, and nothing a logged-in
//! user has (a session with a user id, a revocation marker) is ever evicted or expires sooner.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastsession_core::events::{self, Event};
use fastsession_core::http::{CookieConfig, SessionConfig};
use fastsession_core::session::{Expiry, Record, SessionId};
use fastsession_core::store::{AnonymousBudget, Backend as _, RevocationList as _, StorageKey};
use fastsession_core::testing::{
    Instance, StoreUnderTest, anonymous_floods_spare_logged_in_sessions,
};
use fastsession_core::time::{Clock as _, UnixTime};
use fastsession_postgres::PostgresStore;

use crate::support::{Schema, T0, clock, config, open, raw, request, session_config};

/// What the table holds, counted, and what the budget's counters say.
#[derive(Debug, PartialEq, Eq)]
struct Census {
    anonymous: i64,
    anonymous_bytes: i64,
    logged_in: i64,
    counted: i64,
    counted_bytes: i64,
}

async fn census(schema: &Schema) -> Census {
    let client = raw().await;
    let s = &schema.0;
    let row = client
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE user_id IS NULL), \
                        coalesce(sum(data_len) FILTER (WHERE user_id IS NULL), 0)::bigint, \
                        count(*) FILTER (WHERE user_id IS NOT NULL), \
                        (SELECT sum(sessions)::bigint FROM \"{s}\".sessions_budget), \
                        (SELECT sum(bytes)::bigint FROM \"{s}\".sessions_budget) \
                 FROM \"{s}\".sessions"
            ),
            &[],
        )
        .await
        .unwrap();
    Census {
        anonymous: row.get(0),
        anonymous_bytes: row.get(1),
        logged_in: row.get(2),
        counted: row.get(3),
        counted_bytes: row.get(4),
    }
}

/// Asserts the counters agree with the rows, and returns the census.
async fn counted_right(schema: &Schema) -> Census {
    let c = census(schema).await;
    assert_eq!(
        (c.counted, c.counted_bytes),
        (c.anonymous, c.anonymous_bytes),
        "the budget's counters agree with the rows: {c:?}"
    );
    c
}

/// A migrated store with `budget`, in a fresh schema.
async fn budgeted(budget: AnonymousBudget) -> (Arc<PostgresStore>, Schema) {
    let (config, schema) = config();
    (
        Arc::new(open(config.with_anonymous_budget(budget)).await),
        schema,
    )
}

/// The conformance check with a budget of 50 and a flood of 200 (4x): every logged-in
/// session survives with its data, the logout stays a logout, and afterwards the table holds
/// at most 50 anonymous rows, counted right, beside the 5 logged-in ones.
#[test]
fn anonymous_floods_spare_logged_in_sessions_and_stay_within_the_budget() {
    const BUDGET: usize = 50;
    // The schema outlives the check so that its rows can be counted afterwards.
    let schemas: Arc<Mutex<Vec<Schema>>> = Arc::default();
    let kept = schemas.clone();
    let sut = StoreUnderTest::new(move || {
        let (config, schema) = config();
        kept.lock().unwrap().push(schema);
        let config = config.with_anonymous_budget(AnonymousBudget::new(BUDGET, 1 << 20));
        let store = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(open(config))
        });
        Instance::from(store)
    });
    let evicted = events::counts().of(Event::AnonymousEvicted);
    fastsession_core::testing::run(anonymous_floods_spare_logged_in_sessions(
        &sut,
        5,
        4 * BUDGET,
    ));
    assert!(events::counts().of(Event::AnonymousEvicted) >= evicted + 150);
    let schema = schemas.lock().unwrap().pop().unwrap();
    fastsession_core::testing::run(async {
        let c = counted_right(&schema).await;
        assert_eq!(c.anonymous, 50, "{c:?}");
        assert_eq!(c.logged_in, 5, "{c:?}");
    });
}

/// The byte budget: anonymous sessions of 1003 bytes each in a budget of 5000 bytes keep the
/// four most recent; a logged-in session of 4000 bytes does not count and is not evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_bytes_stay_within_the_byte_budget_and_logged_in_bytes_do_not_count() {
    let (store, schema) = budgeted(AnonymousBudget::new(1000, 5000)).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let user = request(&cfg, None, |s| {
        s.set_user_id("alice");
        s.insert("v", "x".repeat(4000)).unwrap();
    })
    .await
    .cookie();
    let mut anonymous = Vec::new();
    for i in 0..12 {
        clock.advance(Duration::from_secs(1));
        // "v" and a JSON string of 1002 bytes.
        let id = request(&cfg, None, |s| {
            s.insert("v", format!("{i:x>1000}")).unwrap()
        })
        .await
        .cookie();
        anonymous.push(id);
        let c = counted_right(&schema).await;
        assert!(c.anonymous_bytes <= 5000, "{c:?}");
        assert_eq!(c.anonymous, (i + 1).min(4), "{c:?}");
    }
    for (i, id) in anonymous.iter().enumerate() {
        let reply = request(&cfg, Some(id), |s| {
            assert_eq!(s.is_new(), i < 8, "session {i}");
        })
        .await;
        reply.result.unwrap();
    }
    request(&cfg, Some(&user), |s| {
        assert_eq!(s.get::<String>("v").unwrap().map(|v| v.len()), Some(4000));
    })
    .await
    .result
    .unwrap();
}

/// Eviction order is last activity, not creation: the session used most recently stays even
/// if it is the oldest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_takes_the_least_recently_active_anonymous_session_first() {
    let (store, schema) = budgeted(AnonymousBudget::new(3, 1 << 20)).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            request(&cfg, None, |s| s.insert("i", i).unwrap())
                .await
                .cookie(),
        );
        clock.advance(Duration::from_secs(1));
    }
    // The first becomes the most recently active.
    request(&cfg, Some(&ids[0]), |s| s.insert("seen", true).unwrap())
        .await
        .result
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let evicted = events::counts().of(Event::AnonymousEvicted);
    let newest = request(&cfg, None, |s| s.insert("i", 3).unwrap())
        .await
        .cookie();
    assert!(events::counts().of(Event::AnonymousEvicted) > evicted);
    assert_eq!(counted_right(&schema).await.anonymous, 3);
    for (id, gone) in [
        (&ids[0], false),
        (&ids[1], true),
        (&ids[2], false),
        (&newest, false),
    ] {
        request(&cfg, Some(id), |s| assert_eq!(s.is_new(), gone))
            .await
            .result
            .unwrap();
    }
}

/// A row written with an older last activity than the rows already evicted (a server whose
/// clock is behind) is still found by the next eviction: the walk starts after the eviction
/// floor, and such a row lowers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_older_than_the_evicted_ones_is_still_evicted_first() {
    let (store, _schema) = budgeted(AnonymousBudget::new(3, 1 << 20)).await;
    let backend = store.backend();
    let create = |key: u8, active: u64| {
        let record = Record::new(UnixTime::from_secs(T0 + active));
        async move {
            let key = StorageKey::from_bytes([key; 32]);
            let expires = UnixTime::from_secs(T0 + 10_000);
            assert!(backend.create(&key, &record, expires).await.unwrap());
        }
    };
    // 1..=3 fill the budget; 4 evicts 1 (the floor moves to it); 5, from a clock behind,
    // evicts 2; 6 must then evict 5, the least recently active.
    for (key, active) in [(1, 10), (2, 20), (3, 30), (4, 40), (5, 5), (6, 50)] {
        create(key, active).await;
    }
    let mut left = Vec::new();
    for key in 1..=6 {
        if backend
            .read(&StorageKey::from_bytes([key; 32]))
            .await
            .unwrap()
            .is_some()
        {
            left.push(key);
        }
    }
    assert_eq!(left, [3, 4, 6]);
}

/// A merge that grows an anonymous session past the byte budget evicts the least recently
/// active others (never itself), as a create does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_session_growing_past_the_byte_budget_evicts_others() {
    let (store, schema) = budgeted(AnonymousBudget::new(100, 3000)).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            request(&cfg, None, |s| s.insert("v", "x".repeat(497)).unwrap())
                .await
                .cookie(),
        );
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(counted_right(&schema).await.anonymous_bytes, 1500);
    request(&cfg, Some(&ids[2]), |s| {
        s.insert("w", "y".repeat(1997)).unwrap();
    })
    .await
    .result
    .unwrap();
    let c = counted_right(&schema).await;
    assert_eq!((c.anonymous, c.anonymous_bytes), (2, 3000), "{c:?}");
    for (id, gone) in [(&ids[0], true), (&ids[1], false), (&ids[2], false)] {
        request(&cfg, Some(id), |s| assert_eq!(s.is_new(), gone))
            .await
            .result
            .unwrap();
    }
}

/// Logging in takes a session out of the budget, clearing the user puts it back, and every
/// way a row goes (destroy, regenerate, reap, truncate) is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_counts_follow_logins_logouts_and_deletions() {
    let (store, schema) = budgeted(AnonymousBudget::new(100, 1 << 20)).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("a", 1).unwrap())
        .await
        .cookie();
    assert_eq!(counted_right(&schema).await.anonymous, 1);
    request(&cfg, Some(&id), |s| s.set_user_id("alice"))
        .await
        .result
        .unwrap();
    let c = counted_right(&schema).await;
    assert_eq!((c.anonymous, c.logged_in), (0, 1));
    request(&cfg, Some(&id), |s| {
        s.clear_user_id();
        s.insert("b", "more").unwrap();
    })
    .await
    .result
    .unwrap();
    let c = counted_right(&schema).await;
    assert_eq!((c.anonymous, c.logged_in, c.anonymous_bytes), (1, 0, 9));
    let id = request(&cfg, Some(&id), fastsession_core::Session::regenerate)
        .await
        .cookie();
    assert_eq!(counted_right(&schema).await.anonymous, 1);
    request(&cfg, Some(&id), fastsession_core::Session::destroy)
        .await
        .result
        .unwrap();
    assert_eq!(counted_right(&schema).await.anonymous, 0);
    request(&cfg, None, |s| s.insert("a", 1).unwrap())
        .await
        .cookie();
    clock.advance(Duration::from_secs(1000));
    assert_eq!(store.reap(clock.now(), 10).await.unwrap(), 1);
    assert_eq!(counted_right(&schema).await.anonymous, 0);
    request(&cfg, None, |s| s.insert("a", 1).unwrap())
        .await
        .cookie();
    raw()
        .await
        .batch_execute(&format!("TRUNCATE \"{}\".sessions", schema.0))
        .await
        .unwrap();
    assert_eq!(counted_right(&schema).await.anonymous, 0);
}

/// Many tasks creating, changing, logging in and out, regenerating and destroying sessions at
/// once leave the counters equal to the rows, and the next create brings the anonymous rows
/// back within the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_budget_counters_match_the_rows_after_concurrent_writes() {
    const BUDGET: usize = 20;
    let (store, schema) = budgeted(AnonymousBudget::new(BUDGET, 1 << 20)).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let cfg = cfg.clone();
            tokio::spawn(async move {
                for op in 0..12 {
                    let reply = request(&cfg, None, |s| s.insert("n", op).unwrap()).await;
                    // A concurrent create may evict this one at once: then its save says so.
                    let Some(id) = reply.set else { continue };
                    let reply = request(&cfg, Some(&id), |s| match (t + op) % 4 {
                        0 => s.set_user_id(format!("user{t}")),
                        1 => s.insert("grow", "z".repeat(op * 10)).unwrap(),
                        2 => s.regenerate(),
                        _ => s.destroy(),
                    })
                    .await;
                    if let (Some(id), 0) = (reply.set, (t + op) % 4) {
                        request(&cfg, Some(&id), |s| s.clear_user_id()).await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    counted_right(&schema).await;
    request(&cfg, None, |s| s.insert("last", 1).unwrap())
        .await
        .cookie();
    let c = counted_right(&schema).await;
    assert!(c.anonymous <= i64::try_from(BUDGET).unwrap(), "{c:?}");
}

/// Revocation markers (of sessions with a user) and logged-in sessions are outside the
/// budget: a flood of anonymous sessions many times the budget evicts none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_markers_are_never_evicted_by_anonymous_sessions() {
    let (store, schema) = budgeted(AnonymousBudget::new(5, 1 << 20)).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let until = UnixTime::from_secs(T0 + 10_000);
    let revoked: Vec<SessionId> = (0..3).map(|_| SessionId::generate().unwrap()).collect();
    for (i, id) in revoked.iter().enumerate() {
        store
            .revoke(id, Some(&format!("user{i}")), until)
            .await
            .unwrap();
    }
    store
        .revoke_user("user0", clock.now(), None, until)
        .await
        .unwrap();
    let alice = request(&cfg, None, |s| s.set_user_id("alice"))
        .await
        .cookie();
    clock.advance(Duration::from_secs(1));
    for n in 0..30 {
        request(&cfg, None, |s| s.insert("n", n).unwrap())
            .await
            .cookie();
    }
    let c = counted_right(&schema).await;
    assert_eq!((c.anonymous, c.logged_in), (5, 5), "{c:?}");
    for id in &revoked {
        assert!(store.is_revoked(id).await.unwrap(), "a marker was evicted");
    }
    assert!(
        store
            .user_revocation("user0", None)
            .await
            .unwrap()
            .is_some()
    );
    request(&cfg, Some(&alice), |s| assert!(!s.is_new()))
        .await
        .result
        .unwrap();
}

/// Anonymous rows get the anonymous idle timeout in SQL too: after a merge at T0 + 10, with
/// 100 s idle and 30 s anonymous idle, the reaper takes the anonymous row at T0 + 40 and
/// leaves the logged-in row active at the same moment, which still loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_takes_an_expired_anonymous_row_and_spares_a_logged_in_row_as_old() {
    let (store, _schema) = budgeted(AnonymousBudget::default()).await;
    let clock = clock();
    let expiry = Expiry::default()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(1000))
        .unwrap()
        .with_anonymous_idle_timeout(Duration::from_secs(30));
    let cfg = SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").unwrap())
        .with_clock(clock.clone())
        .with_expiry(expiry);
    let anonymous = request(&cfg, None, |s| s.insert("n", 0).unwrap())
        .await
        .cookie();
    let user = request(&cfg, None, |s| s.set_user_id("alice"))
        .await
        .cookie();
    clock.advance(Duration::from_secs(10));
    for id in [&anonymous, &user] {
        request(&cfg, Some(id), |s| s.insert("n", 1).unwrap())
            .await
            .result
            .unwrap();
    }
    assert_eq!(
        store.reap(UnixTime::from_secs(T0 + 39), 10).await.unwrap(),
        0
    );
    assert_eq!(
        store.reap(UnixTime::from_secs(T0 + 40), 10).await.unwrap(),
        1
    );
    let key = |id: &str| store.storage_key(&SessionId::parse(id).unwrap());
    assert!(
        store
            .backend()
            .read(&key(&anonymous))
            .await
            .unwrap()
            .is_none()
    );
    clock.advance(Duration::from_secs(30));
    request(&cfg, Some(&user), |s| {
        assert!(!s.is_new());
        assert_eq!(s.get::<i32>("n").unwrap(), Some(1));
    })
    .await
    .result
    .unwrap();
    assert_eq!(
        store.reap(UnixTime::from_secs(T0 + 109), 10).await.unwrap(),
        0
    );
}

/// The table `migrate` made before the anonymous budget (no `data_len`, no counters), with
/// rows in it, is upgraded in place: sizes filled in, counters set from the rows, eviction by
/// last activity among the old anonymous rows, the logged-in ones untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_upgrades_a_table_made_before_the_anonymous_budget() {
    let (config, schema) = config();
    let s = &schema.0;
    let client = raw().await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{s}\";
CREATE TABLE \"{s}\".\"sessions\" (
    key bytea PRIMARY KEY CHECK (octet_length(key) = 32),
    created bigint NOT NULL,
    last_active bigint NOT NULL,
    expires bigint NOT NULL,
    persistent boolean NOT NULL DEFAULT false,
    user_id text,
    user_hash bytea,
    version bigint NOT NULL DEFAULT 1,
    vals jsonb NOT NULL DEFAULT '{{}}',
    flashes jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS \"sessions_expires\" ON \"{s}\".\"sessions\" (expires);
CREATE INDEX IF NOT EXISTS \"sessions_user\" ON \"{s}\".\"sessions\" (user_hash) WHERE user_hash IS NOT NULL;"
        ))
        .await
        .unwrap();
    let key = |i: u8| StorageKey::from_bytes([i; 32]);
    // Keys 1..=3 anonymous (key 1 the least recently active), 4 and 5 logged in and older.
    for i in 1..=5u8 {
        let user = (i > 3).then(|| format!("user{i}"));
        let active = i64::try_from(T0).unwrap() + i64::from(i) - if i > 3 { 100 } else { 0 };
        client
            .execute(
                &format!(
                    "INSERT INTO \"{s}\".sessions (key, created, last_active, expires, user_id, vals) \
                     VALUES ($1, $2::bigint, $2::bigint, $2::bigint + 100, $3, '{{\"n\": 12345}}')"
                ),
                &[&&key(i).as_bytes()[..], &active, &user],
            )
            .await
            .unwrap();
    }
    let store = open(config.with_anonymous_budget(AnonymousBudget::new(3, 1 << 20))).await;
    store.backend().migrate().await.unwrap();
    let c = counted_right(&schema).await;
    assert_eq!((c.anonymous, c.logged_in), (3, 2), "{c:?}");
    assert!(c.anonymous_bytes >= 3 * 6, "sizes estimated: {c:?}");
    let now = UnixTime::from_secs(T0 + 10);
    let record = Record::new(now);
    assert!(
        store
            .backend()
            .create(&key(9), &record, UnixTime::from_secs(T0 + 100))
            .await
            .unwrap()
    );
    let present = |i: u8| {
        let backend = store.backend();
        async move { backend.read(&key(i)).await.unwrap().is_some() }
    };
    assert!(
        !present(1).await,
        "the least recently active anonymous row went"
    );
    for i in [2, 3, 4, 5, 9] {
        assert!(present(i).await, "row {i}");
    }
    assert_eq!(counted_right(&schema).await.anonymous, 3);
}

/// Rows inserted into `schema`'s table, and anonymous-index entries read, as the statistics
/// say once the backends that did the work have flushed them.
async fn index_reads(schema: &Schema) -> (i64, i64) {
    let row = raw()
        .await
        .query_one(
            "SELECT t.n_tup_ins, i.idx_tup_read FROM pg_stat_user_tables t \
             JOIN pg_stat_user_indexes i USING (relid) \
             WHERE t.schemaname = $1 AND t.relname = 'sessions' AND i.indexrelname = 'sessions_anon'",
            &[&schema.0],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// A create reads no other anonymous row when the budget has room, and the one it evicts
/// when it is full: among 3000 anonymous rows, 20 creates with room read none of them from
/// the eviction index, and 20 creates in a full budget read two entries each (the victim, and
/// the next one to see that it is enough). A scan of the whole index, in the walk or in the
/// deletion, would read 3000 per create; a walk from the index's start instead of the
/// eviction floor reads the entries of rows evicted before too (79 here when measured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_create_reads_only_the_rows_it_evicts() {
    const ROWS: i64 = 3000;
    const CREATES: i64 = 20;
    let (config, schema) = config();
    open(config.clone()).await;
    raw()
        .await
        .execute(
            &format!(
                "INSERT INTO \"{}\".sessions (key, created, last_active, expires, data_len) \
                 SELECT sha256(int4send(i)), $1::bigint, $1::bigint + i, $1::bigint + 100000, 8 \
                 FROM generate_series(1, $2::int) i",
                schema.0
            ),
            &[&i64::try_from(T0).unwrap(), &i32::try_from(ROWS).unwrap()],
        )
        .await
        .unwrap();
    let mut inserted = ROWS;
    for (budget, most) in [
        (AnonymousBudget::default(), 0),
        (
            AnonymousBudget::new(usize::try_from(ROWS).unwrap(), 1 << 30),
            2 * CREATES + 5,
        ),
    ] {
        let before = loop {
            let (ins, reads) = index_reads(&schema).await;
            if ins >= inserted {
                break reads;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let store = open(config.clone().with_anonymous_budget(budget)).await;
        for i in 0..CREATES {
            let key = StorageKey::from_bytes(
                [u8::try_from(i).unwrap() + if most == 0 { 1 } else { 101 }; 32],
            );
            let record = Record::new(UnixTime::from_secs(T0 + 10_000));
            let expires = UnixTime::from_secs(T0 + 20_000);
            assert!(
                store
                    .backend()
                    .create(&key, &record, expires)
                    .await
                    .unwrap()
            );
        }
        // Closing its connections makes their backends flush their statistics.
        drop(store);
        inserted += CREATES;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let after = loop {
            let (ins, reads) = index_reads(&schema).await;
            if ins >= inserted {
                break reads;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "statistics never flushed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            after - before <= most,
            "{} index entries read, at most {most} expected",
            after - before
        );
    }
    let c = counted_right(&schema).await;
    assert_eq!(c.anonymous, ROWS, "{c:?}");
}
