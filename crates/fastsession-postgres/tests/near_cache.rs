//! The near cache (`PostgresConfig::with_near_cache`): two app servers' backends on one table,
//! each with its cache. A load is served from the cache only while the listener listens and
//! the triggers are there; a write on one server is seen by the other once its notification
//! arrives; a session ended on one is never served by the other again; a lost listener, a
//! `TRUNCATE` or missing triggers keep stale sessions from being served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastsession_core::http::SessionConfig;
use fastsession_core::session::SessionId;
use fastsession_core::store::{AnonymousBudget, NearCacheConfig, NearCacheStats};
use fastsession_postgres::{PostgresConfig, PostgresStore};

use crate::support::{Schema, clock, config, open, raw, request, session_config, tracking, unique};

/// Every test here is over well within this.
const LIMIT: Duration = Duration::from_secs(60);

/// `config` with a near cache whose entries live long enough that only a notification can
/// explain a fresh read.
fn near(config: PostgresConfig) -> PostgresConfig {
    config.with_near_cache(
        NearCacheConfig::new()
            .with_max_age(Duration::from_secs(60))
            .unwrap(),
    )
}

/// A migrated store with `config` and its near cache serving.
async fn app_server(config: PostgresConfig) -> Arc<PostgresStore> {
    let store = Arc::new(open(near(config)).await);
    tracking(&store).await;
    store
}

/// Two app servers' stores with their caches on one table, and a session holding `n = 0`,
/// created through the first.
struct TwoServers {
    /// Bind it in a pattern (`_schema: _keep`): left to `..`, it is dropped, and the table.
    _schema: Schema,
    /// A's connections' `application_name` (its listener's is this with `-listen`).
    app_a: String,
    a: Arc<PostgresStore>,
    b: Arc<PostgresStore>,
    on_a: SessionConfig,
    on_b: SessionConfig,
    cookie: String,
}

async fn two_servers() -> TwoServers {
    let (config, schema) = config();
    let app_a = unique("fs_app");
    let a = app_server(config.clone().with_application_name(app_a.clone())).await;
    let b = app_server(config).await;
    let clock = clock();
    let (on_a, on_b) = (session_config(&a, &clock), session_config(&b, &clock));
    let cookie = request(&on_a, None, |s| s.insert("n", 0).unwrap())
        .await
        .cookie();
    TwoServers {
        _schema: schema,
        app_a,
        a,
        b,
        on_a,
        on_b,
        cookie,
    }
}

fn stats(store: &PostgresStore) -> NearCacheStats {
    store.backend().near_cache().unwrap().stats()
}

/// The counter `n` a request with `cookie` reads on `config`, or `None` for a fresh session.
async fn read_n(config: &SessionConfig, cookie: &str) -> Option<i64> {
    let mut n = None;
    let reply = request(config, Some(cookie), |s| {
        if !s.is_new() {
            n = Some(s.get::<i64>("n").unwrap().unwrap_or(-1));
        }
    })
    .await;
    reply.result.unwrap();
    n
}

/// Polls `read` until it gives `want`, for up to 2 s; returns how long that took.
async fn until_read(config: &SessionConfig, cookie: &str, want: Option<i64>) -> Duration {
    let start = Instant::now();
    loop {
        let got = read_n(config, cookie).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "still read {got:?}, not {want:?}, after 2 s"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Reads `cookie` on `config` twice and says whether the second load was served from the
/// cache of `store`.
async fn cached(store: &PostgresStore, config: &SessionConfig, cookie: &str) -> bool {
    let _ = read_n(config, cookie).await;
    let hits = stats(store).hits();
    let _ = read_n(config, cookie).await;
    stats(store).hits() > hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_or_a_logout_on_one_server_reaches_the_other_and_nothing_revives() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            _schema: _keep,
            a,
            b,
            on_a,
            on_b,
            cookie,
            ..
        } = two_servers().await;

        // The first load reads the table, the next ones are served from A's cache.
        assert_eq!(read_n(&on_a, &cookie).await, Some(0));
        let hits = stats(&a).hits();
        for _ in 0..5 {
            assert_eq!(read_n(&on_a, &cookie).await, Some(0));
        }
        assert_eq!(stats(&a).hits(), hits + 5, "{:?}", stats(&a));

        // B changes it: A's entry is dropped and the change read.
        let mut windows = Vec::new();
        for n in 1..=20 {
            request(&on_b, Some(&cookie), |s| s.insert("n", n).unwrap())
                .await
                .result
                .unwrap();
            windows.push(until_read(&on_a, &cookie, Some(n)).await);
            // Served from the cache again once read.
            let hits = stats(&a).hits();
            assert_eq!(read_n(&on_a, &cookie).await, Some(n));
            assert_eq!(stats(&a).hits(), hits + 1);
        }
        assert!(stats(&a).invalidations() >= 20, "{:?}", stats(&a));
        windows.sort();
        eprintln!(
            "postgres near cache: a write on B read on A after p50 {:?}, max {:?}",
            windows[windows.len() / 2],
            windows[windows.len() - 1]
        );

        // B logs out: A refuses the session from then on, and never serves it again.
        request(&on_b, Some(&cookie), |s| s.destroy())
            .await
            .result
            .unwrap();
        until_read(&on_a, &cookie, None).await;
        for _ in 0..20 {
            assert_eq!(read_n(&on_a, &cookie).await, None);
        }

        // "Log out everywhere" through B: A's cached sessions of the user are not served again.
        let mut mine = Vec::new();
        for _ in 0..2 {
            let cookie = request(&on_a, None, |s| {
                s.set_user_id("u");
                s.insert("n", 1).unwrap();
            })
            .await
            .cookie();
            assert!(cached(&a, &on_a, &cookie).await, "{:?}", stats(&a));
            mine.push(cookie);
        }
        assert_eq!(b.end_sessions_of("u", None).await.unwrap(), 2);
        for cookie in &mine {
            until_read(&on_a, cookie, None).await;
            assert_eq!(
                a.storage_key(&SessionId::parse(cookie).unwrap()),
                b.storage_key(&SessionId::parse(cookie).unwrap())
            );
        }
        for _ in 0..10 {
            for cookie in &mine {
                assert_eq!(read_n(&on_a, cookie).await, None);
            }
        }
    })
    .await
    .unwrap();
}

/// A's own writes: read at once, and (nobody else having written) the merged session is cached
/// by the write, so the next load costs no statement. The listener skips the notification of
/// such a merge: were it not skipped, the entry would be dropped soon after the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_reads_its_own_writes_at_once() {
    tokio::time::timeout(LIMIT, async {
        let (config, _schema) = config();
        let store = app_server(config).await;
        let clock = clock();
        let cfg = session_config(&store, &clock);
        let cookie = request(&cfg, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        for n in 1..=20 {
            assert_eq!(read_n(&cfg, &cookie).await, Some(n - 1));
            request(&cfg, Some(&cookie), |s| s.insert("n", n).unwrap())
                .await
                .result
                .unwrap();
            // Time for the write's own notification to arrive.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let hits = stats(&store).hits();
            assert_eq!(read_n(&cfg, &cookie).await, Some(n));
            assert_eq!(stats(&store).hits(), hits + 1, "{:?}", stats(&store));
        }
        // Increments too: PostgreSQL adds them, and the cache holds the sum.
        for n in 21..=30 {
            request(&cfg, Some(&cookie), |s| {
                let _ = s.increment("n", 1).unwrap();
            })
            .await
            .result
            .unwrap();
            assert_eq!(read_n(&cfg, &cookie).await, Some(n));
        }
        request(&cfg, Some(&cookie), |s| s.destroy())
            .await
            .result
            .unwrap();
        assert_eq!(read_n(&cfg, &cookie).await, None);
    })
    .await
    .unwrap();
}

/// A server that cached its own write still hears of the other server's next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cached_its_own_write_still_hears_of_the_next_one() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            _schema: _keep,
            a,
            on_a,
            on_b,
            cookie,
            ..
        } = two_servers().await;
        for n in 1..=10 {
            assert_eq!(read_n(&on_a, &cookie).await, Some(2 * n - 2));
            request(&on_a, Some(&cookie), |s| s.insert("n", 2 * n - 1).unwrap())
                .await
                .result
                .unwrap();
            let hits = stats(&a).hits();
            assert_eq!(read_n(&on_a, &cookie).await, Some(2 * n - 1));
            assert_eq!(stats(&a).hits(), hits + 1);
            request(&on_b, Some(&cookie), |s| s.insert("n", 2 * n).unwrap())
                .await
                .result
                .unwrap();
            until_read(&on_a, &cookie, Some(2 * n)).await;
        }
    })
    .await
    .unwrap();
}

/// Increments and writes through both servers at once, each caching what its own merges
/// made: when they stop, both read every one of them (a cached merge that missed the other
/// server's write would be served for a minute here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_two_servers_are_all_read_by_both() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            _schema: _keep,
            on_a,
            on_b,
            cookie,
            ..
        } = two_servers().await;
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let (cfg, cookie) = (
                    if t % 2 == 0 {
                        on_a.clone()
                    } else {
                        on_b.clone()
                    },
                    cookie.clone(),
                );
                tokio::spawn(async move {
                    for i in 0..50 {
                        request(&cfg, Some(&cookie), |s| {
                            let _ = s.increment("n", 1).unwrap();
                            s.insert(format!("t{t}"), i).unwrap();
                        })
                        .await
                        .result
                        .unwrap();
                        let _ = read_n(&cfg, &cookie).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        for cfg in [&on_a, &on_b] {
            until_read(cfg, &cookie, Some(200)).await;
            let mut last = Vec::new();
            request(cfg, Some(&cookie), |s| {
                last = (0..4)
                    .map(|t| s.get::<i32>(&format!("t{t}")).unwrap())
                    .collect();
            })
            .await
            .result
            .unwrap();
            assert_eq!(last, vec![Some(49); 4]);
        }
    })
    .await
    .unwrap();
}

/// The listener's connection terminated: the cache is dropped and serves nothing until the
/// listener is back (a write meanwhile is read), then serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_drops_the_cache_until_it_listens_again() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            _schema: _keep,
            app_a,
            a,
            on_a,
            on_b,
            cookie,
            ..
        } = two_servers().await;
        let admin = raw().await;
        let listener = format!("{app_a}-listen");
        for round in 1..=3 {
            assert_eq!(read_n(&on_a, &cookie).await, Some(round - 1));
            assert!(cached(&a, &on_a, &cookie).await);
            let flushes = stats(&a).flushes();
            let killed: i64 = admin
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = $1",
                    &[&listener],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(killed, 1, "one listener");
            let deadline = Instant::now() + Duration::from_secs(5);
            while stats(&a).flushes() == flushes {
                assert!(Instant::now() < deadline, "the cache was not dropped");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // B's write while A cannot hear of it: A must read the table.
            request(&on_b, Some(&cookie), |s| s.insert("n", round).unwrap())
                .await
                .result
                .unwrap();
            if !stats(&a).is_tracking() {
                let hits = stats(&a).hits();
                assert_eq!(read_n(&on_a, &cookie).await, Some(round));
                assert_eq!(read_n(&on_a, &cookie).await, Some(round));
                if !stats(&a).is_tracking() {
                    assert_eq!(stats(&a).hits(), hits, "served while not listening");
                }
            }
            tracking(&a).await;
            assert_eq!(read_n(&on_a, &cookie).await, Some(round));
            assert!(cached(&a, &on_a, &cookie).await, "serves again");
        }
    })
    .await
    .unwrap();
}

/// A `TRUNCATE` of the table (by anyone) drops every entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_drops_every_entry() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            _schema: schema,
            a,
            on_a,
            cookie,
            ..
        } = two_servers().await;
        assert!(cached(&a, &on_a, &cookie).await);
        let flushes = stats(&a).flushes();
        raw()
            .await
            .batch_execute(&format!("TRUNCATE \"{}\".sessions", schema.0))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while stats(&a).flushes() == flushes {
            assert!(Instant::now() < deadline, "TRUNCATE did not drop the cache");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(read_n(&on_a, &cookie).await, None);
    })
    .await
    .unwrap();
}

/// The number of notify triggers on the table of `schema`.
async fn notify_triggers(schema: &Schema) -> i64 {
    raw()
        .await
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) \
             AND tgname LIKE 'fastsession_notify_%'",
            &[&format!("\"{}\".sessions", schema.0)],
        )
        .await
        .unwrap()
        .get(0)
}

/// A table migrated without the near cache has no notify triggers: a backend with the cache
/// on never serves from it (its listener finds them missing). Once `migrate` with the cache
/// installs them, it serves; a `migrate` without the cache leaves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_triggers_nothing_is_served() {
    tokio::time::timeout(LIMIT, async {
        let (config, schema) = config();
        let plain = open(config.clone()).await;
        assert!(!plain.backend().migration_sql().contains("NOTIFY"));
        assert_eq!(notify_triggers(&schema).await, 0);
        let backend = fastsession_postgres::PostgresBackend::connect(near(config.clone()))
            .await
            .unwrap();
        assert!(backend.migration_sql().contains("pg_notify"));
        let store = Arc::new(fastsession_core::store::ServerStore::with_backend(
            backend,
            fastsession_core::codec::IdHasher::new(&crate::support::key()),
        ));
        let clock = clock();
        let cfg = session_config(&store, &clock);
        let cookie = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        // Longer than the listener's check interval.
        let until = Instant::now() + Duration::from_millis(1_500);
        while Instant::now() < until {
            assert_eq!(read_n(&cfg, &cookie).await, Some(1));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let s = stats(&store);
        assert!(!s.is_tracking(), "{s:?}");
        assert_eq!((s.hits(), s.entries()), (0, 0), "{s:?}");

        store.backend().migrate().await.unwrap();
        assert_eq!(notify_triggers(&schema).await, 3);
        tracking(&store).await;
        assert!(cached(&store, &cfg, &cookie).await);

        // Another app server without the cache migrates: the triggers stay.
        plain.backend().migrate().await.unwrap();
        assert_eq!(notify_triggers(&schema).await, 3);
        // Dropped by hand: the cache stops serving within the check interval.
        raw()
            .await
            .batch_execute(&format!(
                "DROP TRIGGER fastsession_notify_update ON \"{}\".sessions",
                schema.0
            ))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while stats(&store).is_tracking() {
            assert!(Instant::now() < deadline, "still serving without a trigger");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!cached(&store, &cfg, &cookie).await);
    })
    .await
    .unwrap();
}

/// Sessions this server's own creates evict for the anonymous budget: their deletions are
/// notified without a version, so the listener does not skip them although they come from
/// this server, and none is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_evicted_by_this_server_are_not_served_from_its_cache() {
    tokio::time::timeout(LIMIT, async {
        let (config, _schema) = config();
        let store =
            app_server(config.with_anonymous_budget(AnonymousBudget::new(2, 1 << 20))).await;
        let clock = clock();
        let cfg = session_config(&store, &clock);
        let oldest = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        assert!(cached(&store, &cfg, &oldest).await);
        for i in 0..4 {
            clock.advance(Duration::from_secs(1));
            request(&cfg, None, |s| s.insert("n", i).unwrap())
                .await
                .result
                .unwrap();
        }
        until_read(&cfg, &oldest, None).await;
    })
    .await
    .unwrap();
}

/// Rows the reaper deletes are notified as well: a cached session that another server's
/// reaper removed is not served again (even to a request whose clock still finds it live).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_reaped_elsewhere_are_not_served() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            _schema: _keep,
            a,
            b,
            on_a,
            cookie,
            ..
        } = two_servers().await;
        assert!(cached(&a, &on_a, &cookie).await);
        // B's reaper, its clock far ahead: every row has expired for it.
        let later = fastsession_core::time::UnixTime::from_secs(crate::support::T0 + 100_000);
        assert_eq!(b.reap(later, 100).await.unwrap(), 1);
        until_read(&on_a, &cookie, None).await;
    })
    .await
    .unwrap();
}

/// What the near cache saves a load and what the triggers cost a save, measured through the
/// store: `cargo nextest run -p fastsession-postgres --run-ignored only measure_` (add
/// `--release` for the client's own share; `--no-capture` to see the numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_loads_and_saves_with_and_without_the_near_cache() {
    const N: u32 = 2_000;
    let (config, _schema) = config();
    let plain = Arc::new(open(config.clone()).await);
    let near = app_server(config).await;
    let clock = clock();
    let mut report = Vec::new();
    for (name, store) in [("without", &plain), ("with", &near)] {
        let cfg = session_config(store, &clock);
        let cookie = request(&cfg, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        let key = crate::support::storage_key(store, &cookie);
        use fastsession_core::store::Backend;
        let backend = store.backend();
        let _ = backend.read(&key).await.unwrap();
        let start = Instant::now();
        for _ in 0..N {
            assert!(backend.read(&key).await.unwrap().is_some());
        }
        let load = start.elapsed() / N;
        let start = Instant::now();
        for i in 0..N {
            request(&cfg, Some(&cookie), |s| s.insert("n", i).unwrap())
                .await
                .result
                .unwrap();
        }
        let save = start.elapsed() / N;
        report.push(format!(
            "{name} the near cache: load {load:?}, request with a save {save:?}"
        ));
    }
    eprintln!("{}; {:?}", report.join("; "), stats(&near));
}

/// The listener's connection stops answering without closing (a proxy forwards nothing): the
/// liveness check notices within the connect timeout after its next run, and the cache is
/// dropped; once the network is back, it listens and serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_stalled_listener_is_noticed() {
    tokio::time::timeout(LIMIT, async {
        let (config, _schema) = config();
        let proxy = crate::proxy::Proxy::start().await;
        let through = PostgresConfig::new(proxy.url())
            .with_schema(config.schema())
            .with_table(config.table())
            .with_connect_timeout(Duration::from_millis(500))
            .with_acquire_timeout(Duration::from_secs(1))
            .with_statement_timeout(Duration::from_millis(300));
        let store = app_server(through).await;
        let clock = clock();
        let cfg = session_config(&store, &clock);
        let cookie = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        assert!(cached(&store, &cfg, &cookie).await);
        proxy.stall();
        let stalled = Instant::now();
        // The check runs every second and waits at most the connect timeout.
        while stats(&store).is_tracking() {
            assert!(
                stalled.elapsed() < Duration::from_secs(3),
                "a stalled listener went unnoticed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stats(&store).entries(), 0);
        eprintln!("stalled listener noticed after {:?}", stalled.elapsed());
        proxy.up();
        tracking(&store).await;
        assert!(cached(&store, &cfg, &cookie).await, "serves again");
    })
    .await
    .unwrap();
}

/// Retries `attempt` while it fails with a store error (a fault under way), up to 20 s.
async fn despite_faults<T>(
    what: &str,
    mut attempt: impl AsyncFnMut() -> Result<T, fastsession_core::Error>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                assert_eq!(e.kind(), fastsession_core::ErrorKind::Store, "{what}: {e}");
                assert!(Instant::now() < deadline, "{what}: no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// A request that reads the session: whether it was served (not a fresh session).
async fn served(config: &SessionConfig, cookie: &str) -> Result<bool, fastsession_core::Error> {
    let mut fresh = true;
    let reply = request(config, Some(cookie), |s| fresh = s.is_new()).await;
    reply.result?;
    Ok(!fresh)
}

/// The near cache's promise on two app servers under load: 300 logouts on A, each timed to
/// B's first refusal of that session, with B's listener and then every connection of both
/// terminated along the way, while both increment a counter. No logged-out session is served
/// again, both read the same count, and no window comes near the maximum age (default 1 s).
/// The windows are printed (`--no-capture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logouts_reach_the_other_server_through_faults_and_nothing_revives() {
    const LOGOUTS: usize = 300;
    let max_age = NearCacheConfig::new().max_age();
    tokio::time::timeout(Duration::from_secs(120), async {
        let (config, _schema) = config();
        let (app_a, app_b) = (unique("fs_app"), unique("fs_app"));
        let connect = async |app: &str| {
            let config = config
                .clone()
                .with_application_name(app)
                .with_near_cache(NearCacheConfig::new());
            let store = Arc::new(open(config).await);
            tracking(&store).await;
            store
        };
        let (a, b) = (connect(&app_a).await, connect(&app_b).await);
        let clock = clock();
        let (on_a, on_b) = (session_config(&a, &clock), session_config(&b, &clock));
        let admin = raw().await;
        let terminate = async |pattern: String| -> i64 {
            admin
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name LIKE $1",
                    &[&pattern],
                )
                .await
                .unwrap()
                .get(0)
        };

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counter = request(&on_a, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        let mut load = Vec::new();
        for (i, cfg) in [on_a.clone(), on_b.clone()].into_iter().enumerate() {
            let (stop, counter) = (Arc::clone(&stop), counter.clone());
            load.push(tokio::spawn(async move {
                let (mut acknowledged, mut unknown) = (0u64, 0u64);
                let mut turn = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    turn += 1;
                    if turn % 4 == i as u64 {
                        let mut fresh = false;
                        let reply = request(&cfg, Some(&counter), |s| {
                            fresh = s.is_new();
                            let _ = s.increment("n", 1).unwrap();
                        })
                        .await;
                        match reply.result {
                            Ok(()) if fresh => panic!("the counter's session was lost"),
                            Ok(()) => acknowledged += 1,
                            // A failed load wrote nothing, a failed save may have landed.
                            Err(_) => unknown += 1,
                        }
                    } else {
                        let _ = served(&cfg, &counter).await;
                    }
                    tokio::time::sleep(Duration::from_micros(100)).await;
                }
                (acknowledged, unknown)
            }));
        }

        let mut windows = Vec::with_capacity(LOGOUTS);
        let mut logged_out = Vec::with_capacity(LOGOUTS);
        let mut cached_before = 0;
        for i in 0..LOGOUTS {
            match i {
                100 => assert_eq!(terminate(format!("{app_b}-listen")).await, 1),
                200 => assert!(terminate("fs_app_%".to_owned()).await >= 4),
                _ => {}
            }
            let cookie = despite_faults("create", async || {
                let reply = request(&on_a, None, |s| s.insert("i", i).unwrap()).await;
                reply
                    .result
                    .map(|()| reply.set.expect("a new session's cookie"))
            })
            .await;
            let hits = stats(&b).hits();
            for _ in 0..2 {
                assert!(despite_faults("read on B", async || served(&on_b, &cookie).await).await);
            }
            if stats(&b).hits() > hits {
                cached_before += 1;
            }
            despite_faults("logout on A", async || {
                request(&on_a, Some(&cookie), |s| s.destroy()).await.result
            })
            .await;
            let logout = Instant::now();
            loop {
                match served(&on_b, &cookie).await {
                    // A request served from the cache never waits: let B's other tasks run,
                    // as a server's would between requests.
                    Ok(true) => tokio::task::yield_now().await,
                    Ok(false) => break,
                    Err(e) => assert_eq!(e.kind(), fastsession_core::ErrorKind::Store),
                }
                assert!(
                    logout.elapsed() <= max_age,
                    "logout {i} still served after {max_age:?}"
                );
            }
            windows.push((logout.elapsed(), i));
            logged_out.push(cookie);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut acknowledged, mut unknown) = (0, 0);
        for task in load {
            let (a, u) = task.await.unwrap();
            acknowledged += a;
            unknown += u;
        }

        let mut revived = 0;
        for cookie in &logged_out {
            for cfg in [&on_a, &on_b] {
                if despite_faults("read", async || served(cfg, cookie).await).await {
                    revived += 1;
                }
            }
        }
        let mut counts = Vec::new();
        for cfg in [&on_a, &on_b] {
            let mut n = None;
            despite_faults("read the counter", async || {
                let reply = request(cfg, Some(&counter), |s| n = s.get::<u64>("n").unwrap()).await;
                reply.result
            })
            .await;
            counts.push(n.expect("the counter"));
        }
        windows.sort();
        // Which logouts make the tail: those next to a fault (100, 200), or any.
        let slowest: Vec<String> = windows
            .iter()
            .rev()
            .take(8)
            .map(|(w, i)| format!("#{i} {w:?}"))
            .collect();
        let windows: Vec<Duration> = windows.into_iter().map(|(w, _)| w).collect();
        eprintln!(
            "postgres near cache: the slowest windows: {}",
            slowest.join(", ")
        );
        eprintln!(
            "postgres near cache, {LOGOUTS} logouts through faults: window p50 {:?}, p99 {:?}, \
             max {:?}; {cached_before} cached on B before their logout; {revived} revived; \
             counters {counts:?} after {acknowledged} acknowledged and {unknown} unknown \
             increments; A {:?}; B {:?}",
            windows[windows.len() / 2],
            windows[(windows.len() - 1) * 99 / 100],
            windows[windows.len() - 1],
            stats(&a),
            stats(&b),
        );
        assert_eq!(revived, 0);
        assert_eq!(counts[0], counts[1], "the servers disagree on the counter");
        let n = counts[0];
        assert!(
            n >= acknowledged && n <= acknowledged + unknown,
            "counter {n}: {acknowledged} acknowledged, {unknown} unknown"
        );
        assert!(
            windows[windows.len() - 1] < max_age / 2,
            "a logout took {:?}: notifications are not arriving",
            windows[windows.len() - 1]
        );
        assert!(
            cached_before >= LOGOUTS / 2,
            "the cache was hardly used: {cached_before}"
        );
    })
    .await
    .unwrap();
}
