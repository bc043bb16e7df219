//! Faults against the shared server (never stopped): terminated backends, a read-only role, a
//! statement timeout, an exhausted pool, an unreachable port, and which clock decides
//! (cases 52-59 that apply to PostgreSQL).

use std::time::{Duration, Instant};

use fastsession_core::ErrorKind;
use fastsession_postgres::{PostgresBackend, PostgresConfig, PostgresErrorKind};

use crate::support::{
    URL, clock, config, open, pg_kind, raw, request, session_config, storage_key, unique,
};

/// The error of a failed request, checked to be a typed store error.
fn store_error(reply: &crate::support::Reply) -> PostgresErrorKind {
    let error = reply.result.as_ref().expect_err("the request must fail");
    assert_eq!(error.kind(), ErrorKind::Store, "{error:?}");
    pg_kind(error).unwrap_or_else(|| panic!("no PostgresError source: {error:?}"))
}

/// Case 55: the pool's backends are terminated between requests. A load is retried
/// transparently; a save either succeeds on a fresh connection or fails with a typed error
/// (never reported saved when it was not); the next request works without intervention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_are_replaced() {
    let app = unique("fs_app");
    let (config, _schema) = config();
    let store = std::sync::Arc::new(open(config.with_application_name(app.clone())).await);
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 0).unwrap())
        .await
        .cookie();
    let admin = raw().await;
    for round in 1..=5 {
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        assert!(killed >= 1, "the pool had a connection to terminate");
        let reply = request(&cfg, Some(&id), |s| s.insert("n", round).unwrap()).await;
        let saved = match &reply.result {
            Ok(()) => true,
            Err(_) => {
                assert_eq!(store_error(&reply), PostgresErrorKind::Unavailable);
                false
            }
        };
        // The next request works, and sees the save exactly when it was reported.
        let seen = request(&cfg, Some(&id), |_| {}).await;
        seen.result.unwrap();
        request(&cfg, Some(&id), |s| {
            let n = s.get::<i32>("n").unwrap().unwrap();
            if saved {
                assert_eq!(n, round);
            }
        })
        .await
        .result
        .unwrap();
    }
}

/// Case 57: the database refuses writes (a role whose transactions are read-only): a load
/// works, a save fails with `ReadOnly`, and nothing is reported saved or is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_database_fails_saves_with_a_typed_error() {
    let (config, schema) = config();
    let store = std::sync::Arc::new(open(config.clone()).await);
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
        .await
        .cookie();

    let role = unique("fs_ro");
    let admin = raw().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN; \
             ALTER ROLE \"{role}\" SET default_transaction_read_only = on; \
             GRANT USAGE ON SCHEMA \"{s}\" TO \"{role}\"; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{s}\" TO \"{role}\";",
            s = schema.0
        ))
        .await
        .unwrap();
    let ro_url = URL.replace("user=postgres", &format!("user={role}"));
    let ro_config = PostgresConfig::new(ro_url)
        .with_schema(schema.0.clone())
        .with_table("sessions");
    let ro_store = std::sync::Arc::new(fastsession_core::store::ServerStore::with_backend(
        PostgresBackend::connect(ro_config).await.unwrap(),
        fastsession_core::codec::IdHasher::new(&crate::support::key()),
    ));
    let ro_cfg = session_config(&ro_store, &clock);

    let reply = request(&ro_cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(1), "loads still work");
        s.insert("n", 2).unwrap();
    })
    .await;
    assert_eq!(store_error(&reply), PostgresErrorKind::ReadOnly);
    assert_eq!(reply.set, None, "no cookie for a failed save");
    let created = request(&ro_cfg, None, |s| s.insert("m", 1).unwrap()).await;
    assert_eq!(store_error(&created), PostgresErrorKind::ReadOnly);
    assert_eq!(
        created.line, None,
        "no cookie for a session that was never stored"
    );

    request(&cfg, Some(&id), |s| {
        assert_eq!(
            s.get::<i32>("n").unwrap(),
            Some(1),
            "the refused save changed nothing"
        );
    })
    .await
    .result
    .unwrap();
    drop(ro_cfg);
    drop(ro_store);
    admin
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";"))
        .await
        .unwrap();
}

/// Cases 54 and 58: another transaction holds the row lock; the save fails with `Timeout` within the
/// statement timeout, and succeeds once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_save_fails_within_the_statement_timeout() {
    let (config, schema) = config();
    let timeout = Duration::from_millis(300);
    let store = std::sync::Arc::new(open(config.with_statement_timeout(timeout)).await);
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id).as_bytes().to_vec();

    let mut holder = raw().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(
        &format!(
            "SELECT 1 FROM \"{}\".sessions WHERE key = $1 FOR UPDATE",
            schema.0
        ),
        &[&key],
    )
    .await
    .unwrap();
    let started = Instant::now();
    let reply = request(&cfg, Some(&id), |s| s.insert("n", 2).unwrap()).await;
    let took = started.elapsed();
    assert_eq!(store_error(&reply), PostgresErrorKind::Timeout);
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(1),
        "{took:?}"
    );
    tx.rollback().await.unwrap();

    request(&cfg, Some(&id), |s| {
        assert_eq!(
            s.get::<i32>("n").unwrap(),
            Some(1),
            "the timed-out save changed nothing"
        );
        s.insert("n", 3).unwrap();
    })
    .await
    .result
    .unwrap();
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(3))
    })
    .await
    .result
    .unwrap();
}

/// Case 58: a pool of one whose connection is busy: the next request fails with
/// `PoolTimeout` within the acquire timeout instead of queueing without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_fails_within_the_acquire_timeout() {
    let (config, schema) = config();
    let acquire = Duration::from_millis(200);
    let store = std::sync::Arc::new(
        open(
            config
                .with_pool_size(1)
                .with_acquire_timeout(acquire)
                .with_statement_timeout(Duration::from_secs(3)),
        )
        .await,
    );
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id).as_bytes().to_vec();

    // Block the pool's only connection in a save waiting on a row lock.
    let mut holder = raw().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(
        &format!(
            "SELECT 1 FROM \"{}\".sessions WHERE key = $1 FOR UPDATE",
            schema.0
        ),
        &[&key],
    )
    .await
    .unwrap();
    let blocked = {
        let (cfg, id) = (cfg.clone(), id.clone());
        tokio::spawn(async move { request(&cfg, Some(&id), |s| s.insert("n", 2).unwrap()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let reply = request(&cfg, Some(&id), |_| {}).await;
    let took = started.elapsed();
    assert_eq!(store_error(&reply), PostgresErrorKind::PoolTimeout);
    assert!(
        took >= acquire && took < acquire + Duration::from_secs(1),
        "{took:?}"
    );

    tx.rollback().await.unwrap();
    blocked.await.unwrap().result.unwrap();
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(2))
    })
    .await
    .result
    .unwrap();
}

/// Case 52 at startup: nothing listens on the port; connecting fails with a typed error
/// within the connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_to_connect_with_a_typed_error() {
    let config = PostgresConfig::new("host=127.0.0.1 port=1 user=postgres dbname=test")
        .with_connect_timeout(Duration::from_millis(500))
        .with_acquire_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let error = PostgresBackend::connect(config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(error.kind(), ErrorKind::Store);
    assert_eq!(pg_kind(&error), Some(PostgresErrorKind::Unavailable));
}

/// Case 59: the app server's clock decides, not the database's. Sessions dated by a manual
/// clock years away from the database's time live and expire by that clock alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_clock_decides_expiry_not_the_database_clock() {
    let (config, _schema) = config();
    let store = std::sync::Arc::new(open(config).await);
    // Far in the past (2023) and far in the future (2100) of the database's clock.
    for start in [1_700_000_000, 4_102_444_800] {
        let clock = fastsession_core::time::ManualClock::new(
            fastsession_core::time::UnixTime::from_secs(start),
        );
        let cfg = session_config(&store, &clock);
        let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        clock.advance(Duration::from_secs(99));
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("n").unwrap(), Some(1))
        })
        .await
        .result
        .unwrap();
        clock.advance(Duration::from_secs(100));
        let reply = request(&cfg, Some(&id), |s| {
            assert_eq!(
                s.get::<i32>("n").unwrap(),
                None,
                "idle for 100 s by the app clock"
            );
        })
        .await;
        reply.result.unwrap();
    }
}

/// A store on `url` in `config`'s schema (already migrated directly).
async fn through(
    url: String,
    config: &PostgresConfig,
) -> std::sync::Arc<fastsession_postgres::PostgresStore> {
    let config = PostgresConfig::new(url)
        .with_schema(config.schema())
        .with_table(config.table())
        .with_pool_size(2)
        .with_connect_timeout(Duration::from_millis(500))
        .with_acquire_timeout(Duration::from_secs(1))
        .with_statement_timeout(Duration::from_millis(300));
    std::sync::Arc::new(fastsession_core::store::ServerStore::with_backend(
        PostgresBackend::connect(config).await.unwrap(),
        fastsession_core::codec::IdHasher::new(&crate::support::key()),
    ))
}

/// Cases 52 and 53: the server goes away (a proxy cuts every connection) at load and at save.
/// A load fails with a typed error, never an anonymous session; a save fails, sets no cookie
/// and stores nothing; once the server is back the store recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_at_load_and_at_save_then_back() {
    let (config, _schema) = config();
    open(config.clone()).await;
    let proxy = crate::proxy::Proxy::start().await;
    let store = through(proxy.url(), &config).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
        .await
        .cookie();

    proxy.down();
    let started = Instant::now();
    let at_load = request(&cfg, Some(&id), |_| {
        panic!("no session while the server is down")
    })
    .await;
    assert_eq!(store_error(&at_load), PostgresErrorKind::Unavailable);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let anonymous = request(&cfg, None, |s| s.insert("m", 1).unwrap()).await;
    assert_eq!(store_error(&anonymous), PostgresErrorKind::Unavailable);
    assert_eq!(anonymous.line, None, "no cookie for a session never stored");

    proxy.up();
    let at_save = request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(1));
        s.insert("n", 2).unwrap();
        proxy.down();
    })
    .await;
    assert_eq!(store_error(&at_save), PostgresErrorKind::Unavailable);
    assert_eq!(at_save.line, None, "no cookie for a failed save");

    proxy.up();
    request(&cfg, Some(&id), |s| {
        assert_eq!(
            s.get::<i32>("n").unwrap(),
            Some(1),
            "the failed save stored nothing"
        );
        s.insert("n", 3).unwrap();
    })
    .await
    .result
    .unwrap();
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(3))
    })
    .await
    .result
    .unwrap();
}

/// Case 54: the TCP connection stalls (the proxy forwards nothing). A request fails with
/// `Timeout` within the statement timeout plus the client's one-second grace, the stalled
/// connection leaves the pool, and requests work again once traffic flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_fails_within_the_timeout() {
    let (config, _schema) = config();
    open(config.clone()).await;
    let proxy = crate::proxy::Proxy::start().await;
    let store = through(proxy.url(), &config).await;
    let clock = clock();
    let cfg = session_config(&store, &clock);
    let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
        .await
        .cookie();

    proxy.stall();
    let started = Instant::now();
    let stalled = request(&cfg, Some(&id), |_| panic!("no session while stalled")).await;
    let took = started.elapsed();
    assert_eq!(store_error(&stalled), PostgresErrorKind::Timeout);
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_secs(3),
        "{took:?}"
    );

    proxy.up();
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(1));
        s.insert("n", 2).unwrap();
    })
    .await
    .result
    .unwrap();
}
