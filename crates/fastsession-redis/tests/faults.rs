//! Faults, each against redis-server processes of the test's own (killed when the test ends,
//! also on panic): the server down at load and at save, a stalled server, a read-only
//! replica, killed connections. Every failure is a typed error, never "saved" and never a
//! fresh session in place of the stored one, and the store recovers by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastsession_core::ErrorKind;
use fastsession_core::http::Sessions;
use fastsession_core::store::{AnonymousBudget, NearCacheConfig};
use fastsession_redis::{RedisConfig, RedisStore};
use http::HeaderMap;

use crate::support::{NAME, OwnServer, clock, config, key, request, session_key, unique_prefix};

/// The command timeout of the stores here.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Every test here is over well within this.
const LIMIT: Duration = Duration::from_secs(60);

async fn store_on(server: &OwnServer) -> Arc<RedisStore> {
    let config = RedisConfig::new(server.url())
        .with_key_prefix(unique_prefix())
        .with_connect_timeout(TIMEOUT)
        .with_command_timeout(TIMEOUT);
    Arc::new(
        fastsession_redis::redis_store(&config, &key())
            .await
            .unwrap(),
    )
}

/// Polls `done` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connecting_to_a_missing_server_fails_in_time() {
    tokio::time::timeout(LIMIT, async {
        let port = crate::support::free_port();
        let config =
            RedisConfig::new(format!("redis://127.0.0.1:{port}")).with_connect_timeout(TIMEOUT);
        let started = Instant::now();
        let err = fastsession_redis::redis_store(&config, &key())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2));

        let bad = RedisConfig::new("redis://127.0.0.1:1").with_key_prefix("a{b}:");
        let err = fastsession_redis::redis_store(&bad, &key())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let err = fastsession_redis::redis_store(&RedisConfig::new("nope://x"), &key())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(!format!("{err:?}").contains("nope"), "URLs are not echoed");
    })
    .await
    .unwrap();
}

/// 52, 53: down at load and at save; then back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_down_at_load_and_save_is_an_error_and_recovery_is_automatic() {
    tokio::time::timeout(LIMIT, async {
        let mut server = OwnServer::start();
        let store = store_on(&server).await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();

        // Down at load: an error, not a fresh session.
        server.stop();
        let started = Instant::now();
        let reply = request(&cfg, Some(&id), |_| panic!("handler must not run")).await;
        let err = reply.loaded.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2));
        // Nor for a request without a cookie that writes: its save fails.
        let reply = request(&cfg, None, |s| s.insert("n", 1).unwrap()).await;
        assert_eq!(reply.result.unwrap_err().kind(), ErrorKind::Store);
        assert_eq!(
            reply.set, None,
            "no cookie for a session that was not stored"
        );

        // Back (empty: it keeps nothing on disk): requests work again by themselves.
        server.restart();
        let mut id = String::new();
        eventually("reconnection", async || {
            let reply = request(&cfg, None, |s| s.insert("n", 1).unwrap()).await;
            match reply.result {
                Ok(()) => {
                    id = reply.set.unwrap();
                    true
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Store);
                    false
                }
            }
        })
        .await;

        // Down at save, after the load and the handler: an error, nothing claims success.
        let headers = {
            let mut h = HeaderMap::new();
            h.insert("cookie", format!("{NAME}={id}").parse().unwrap());
            h
        };
        let sessions = Sessions::new(&headers);
        let session = sessions.get(&cfg).await.unwrap();
        assert!(!session.is_new());
        session.insert("n", 2).unwrap();
        server.stop();
        let mut out = HeaderMap::new();
        let err = sessions.save_all(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
        assert!(out.get("set-cookie").is_none(), "{out:?}");
        server.restart();
        eventually("reconnection", async || {
            request(&cfg, None, |s| s.insert("n", 1).unwrap())
                .await
                .result
                .is_ok()
        })
        .await;
    })
    .await
    .unwrap();
}

/// 54: a stalled server fails each operation within the timeout; it works once resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_server_fails_within_the_timeout() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let store = store_on(&server).await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();

        server.signal("STOP");
        let started = Instant::now();
        let reply = request(&cfg, Some(&id), |_| panic!("handler must not run")).await;
        let elapsed = started.elapsed();
        let err = reply.loaded.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
        assert!(
            elapsed >= TIMEOUT / 2 && elapsed < TIMEOUT + Duration::from_secs(2),
            "{elapsed:?}"
        );
        let started = Instant::now();
        let reply = request(&cfg, None, |s| s.insert("n", 1).unwrap()).await;
        assert_eq!(reply.result.unwrap_err().kind(), ErrorKind::Store);
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2));

        server.signal("CONT");
        eventually("recovery after the stall", async || {
            request(&cfg, Some(&id), |s| s.insert("n", 2).unwrap())
                .await
                .result
                .is_ok()
        })
        .await;
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("n").unwrap(), Some(2));
        })
        .await
        .result
        .unwrap();
    })
    .await
    .unwrap();
}

/// 57: writes that reach a read-only replica are typed errors and save nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_replica_refuses_saves() {
    tokio::time::timeout(LIMIT, async {
        let primary = OwnServer::start();
        let replica = OwnServer::start();
        let prefix = unique_prefix();
        let connect = |url: String| {
            let config = RedisConfig::new(url)
                .with_key_prefix(prefix.clone())
                .with_command_timeout(TIMEOUT);
            async move {
                Arc::new(
                    fastsession_redis::redis_store(&config, &key())
                        .await
                        .unwrap(),
                )
            }
        };
        let on_primary = connect(primary.url()).await;
        let on_replica = connect(replica.url()).await;
        let clock = clock();
        let primary_cfg = config(&on_primary, &clock);
        let replica_cfg = config(&on_replica, &clock);

        let id = request(&primary_cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        let _: String = replica.query(redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port));
        let redis_key = session_key(&on_primary, &id);
        eventually("replication", async || {
            replica.query::<i64>(redis::cmd("EXISTS").arg(&redis_key)) == 1
        })
        .await;

        // Reads work on the replica; the save after them fails.
        let reply = request(&replica_cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("n").unwrap(), Some(1));
            s.insert("n", 2).unwrap();
        })
        .await;
        assert!(!reply.was_new());
        let err = reply.result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
        assert_eq!(reply.set, None);
        // So does a create.
        let reply = request(&replica_cfg, None, |s| s.insert("n", 1).unwrap()).await;
        assert_eq!(reply.result.unwrap_err().kind(), ErrorKind::Store);
        assert_eq!(reply.set, None);

        let n: String = primary.query(redis::cmd("HGET").arg(&redis_key).arg("v:n"));
        assert_eq!(n, "1", "nothing saved");

        // The replica's refusal was passing: once it takes writes, a create is a `RESTORE`
        // again, not the script kept for servers that refuse the command itself.
        let _: String = replica.query(redis::cmd("REPLICAOF").arg("NO").arg("ONE"));
        let _: String = replica.query(redis::cmd("CONFIG").arg("RESETSTAT"));
        request(&replica_cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .result
            .unwrap();
        let stats: String = replica.query(redis::cmd("INFO").arg("commandstats"));
        assert!(stats.contains("cmdstat_restore:calls=1,"), "{stats}");
        assert!(!stats.contains("cmdstat_evalsha"), "{stats}");
        drop(replica);
    })
    .await
    .unwrap();
}

/// 55: connections killed under the store; the next request works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_are_replaced() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let store = store_on(&server).await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let id = request(&cfg, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        for i in 1..=3 {
            let killed: i64 =
                server.query(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal"));
            assert!(killed >= 1);
            // The load is retried on the new connection, so the request succeeds.
            let reply = request(&cfg, Some(&id), |s| {
                assert_eq!(s.get::<i32>("n").unwrap(), Some(i - 1));
                s.insert("n", i).unwrap();
            })
            .await;
            assert!(!reply.was_new());
            reply.result.unwrap();
        }
        // A write right after a kill is not retried (it might apply twice): an error, or done
        // once; never twice, never silently lost.
        let _: i64 = server.query(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal"));
        let sessions_before: usize = count_sessions(&server, &store);
        let reply = request(&cfg, None, |s| s.insert("n", 1).unwrap()).await;
        let after = count_sessions(&server, &store);
        match reply.result {
            Ok(()) => assert_eq!(after, sessions_before + 1),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Store);
                assert_eq!(after, sessions_before);
            }
        }
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("n").unwrap(), Some(3))
        })
        .await
        .result
        .unwrap();
    })
    .await
    .unwrap();
}

fn count_sessions(server: &OwnServer, store: &RedisStore) -> usize {
    let mut con = crate::support::sync_connection(&server.url()).unwrap();
    crate::support::keys(&mut con, &format!("{}s:*", store.backend().key_prefix())).len()
}

/// A server that lost its scripts (a restart, a failover, `SCRIPT FLUSH`) is sent each script
/// again by the first call that needs it: every kind of write goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scripts_are_loaded_again_after_the_server_lost_them() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let store = store_on(&server).await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let flush = || {
            let _: String = server.query(redis::cmd("SCRIPT").arg("FLUSH"));
        };
        let loads = || -> u64 {
            let text: String = server.query(redis::cmd("INFO").arg("commandstats"));
            text.lines()
                .find_map(|line| line.strip_prefix("cmdstat_script|load:calls="))
                .and_then(|rest| rest.split(',').next()?.parse().ok())
                .unwrap_or(0)
        };

        flush();
        // A create within the budget is a `RESTORE`: no script.
        let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        let after_create = loads();
        flush();
        let login = request(&cfg, Some(&id), |s| s.set_user_id("ada")).await;
        login.result.unwrap();
        let id = login.set.clone().unwrap_or(id);
        let after_login = loads();
        assert!(after_login > after_create, "the login loaded its scripts");
        flush();
        request(&cfg, Some(&id), fastsession_core::Session::destroy)
            .await
            .result
            .unwrap();
        assert!(loads() > after_login, "the destroy loaded its script");
        assert!(request(&cfg, Some(&id), |_| {}).await.was_new());
    })
    .await
    .unwrap();
}

/// A server that refuses `RESTORE` and `DUMP` (here an ACL user without them; a renamed
/// command or a server that cannot read the payload alike) gets sessions created by script
/// and loaded by `HGETALL`: every request still goes through, and anonymous sessions are still
/// counted and evicted by the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_are_kept_where_restore_and_dump_are_refused() {
    kept_where_restore_and_dump_are_refused(false).await;
}

/// The same through the near cache's RESP3 connection, where `HGETALL` answers a map.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_are_kept_where_restore_and_dump_are_refused_with_the_near_cache() {
    kept_where_restore_and_dump_are_refused(true).await;
}

async fn kept_where_restore_and_dump_are_refused(near: bool) {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let _: String = server.query(
            redis::cmd("ACL")
                .arg("SETUSER")
                .arg("app")
                .arg("on")
                .arg("nopass")
                .arg("~*")
                .arg("&*")
                .arg("+@all")
                .arg("-restore")
                .arg("-dump"),
        );
        let url = format!("redis://app:x@127.0.0.1:{}", server.port);
        let mut redis = RedisConfig::new(url)
            .with_key_prefix(unique_prefix())
            .with_command_timeout(TIMEOUT)
            .with_anonymous_budget(AnonymousBudget::new(4, 1 << 20));
        if near {
            redis = redis.with_near_cache(NearCacheConfig::new());
        }
        let store = Arc::new(
            fastsession_redis::redis_store(&redis, &key())
                .await
                .unwrap(),
        );
        if near {
            crate::support::tracking(&store).await;
        }
        let clock = clock();
        let cfg = config(&store, &clock);
        let mut ids = Vec::new();
        for n in 0..6 {
            let response = request(&cfg, None, |s| s.insert("n", n).unwrap()).await;
            ids.push(response.cookie());
            response.result.unwrap();
        }
        let refused: String = server.query(redis::cmd("INFO").arg("errorstats"));
        assert!(
            refused.contains("errorstat_NOPERM"),
            "the first create met the ACL: {refused}"
        );
        let queued: i64 =
            server.query(redis::cmd("LLEN").arg(store.backend().anonymous_index_key()));
        assert_eq!(queued, 4, "the budget still holds");
        let last = request(&cfg, ids.last().map(String::as_str), |s| {
            assert_eq!(s.get::<i64>("n").unwrap(), Some(5));
        })
        .await;
        assert!(!last.was_new(), "the newest session was kept");
        assert!(
            request(&cfg, Some(&ids[0]), |_| {}).await.was_new(),
            "the oldest was evicted"
        );
    })
    .await
    .unwrap();
}
