//! The near cache (`RedisConfig::with_near_cache`): two app servers' stores on one
//! redis-server of the test's own, each with its cache. A load is served from the cache only
//! while Redis tracks it; a write on one server is seen by the other once its invalidation
//! arrives; a session ended on one is never served by the other again; a lost connection, a
//! restart or a `FLUSHALL` drops the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastsession_core::ErrorKind;
use fastsession_core::http::SessionConfig;
use fastsession_core::store::{NearCacheConfig, NearCacheStats};
use fastsession_redis::{RedisConfig, RedisStore};

use crate::support::{OwnServer, clock, config, key, request, tracking, unique_prefix};

/// Every test here is over well within this.
const LIMIT: Duration = Duration::from_secs(60);

/// An app server's store on `server`, sharing `prefix` with the others, its cache tracking.
async fn app_server(server: &OwnServer, prefix: &str) -> Arc<RedisStore> {
    let config = RedisConfig::new(server.url())
        .with_key_prefix(prefix)
        .with_connect_timeout(Duration::from_secs(1))
        .with_command_timeout(Duration::from_secs(1))
        // Long enough that only an invalidation can explain a fresh read here.
        .with_near_cache(
            NearCacheConfig::new()
                .with_max_age(Duration::from_secs(60))
                .unwrap(),
        );
    let store = Arc::new(
        fastsession_redis::redis_store(&config, &key())
            .await
            .unwrap(),
    );
    tracking(&store).await;
    store
}

fn stats(store: &RedisStore) -> NearCacheStats {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_or_a_logout_on_one_server_reaches_the_other_and_nothing_revives() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let prefix = unique_prefix();
        let (a, b) = (
            app_server(&server, &prefix).await,
            app_server(&server, &prefix).await,
        );
        let clock = clock();
        let (on_a, on_b) = (config(&a, &clock), config(&b, &clock));
        let cookie = request(&on_b, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();

        // The first load reads Redis, the next ones are served from A's cache.
        assert_eq!(read_n(&on_a, &cookie).await, Some(0));
        let hits = stats(&a).hits();
        for _ in 0..5 {
            assert_eq!(read_n(&on_a, &cookie).await, Some(0));
        }
        assert_eq!(stats(&a).hits(), hits + 5, "{:?}", stats(&a));

        // B changes it: A's entry is invalidated and the change read.
        for n in 1..=20 {
            request(&on_b, Some(&cookie), |s| s.insert("n", n).unwrap())
                .await
                .result
                .unwrap();
            until_read(&on_a, &cookie, Some(n)).await;
            // Served from the cache again once read.
            let hits = stats(&a).hits();
            assert_eq!(read_n(&on_a, &cookie).await, Some(n));
            assert_eq!(stats(&a).hits(), hits + 1);
        }
        assert!(stats(&a).invalidations() >= 20, "{:?}", stats(&a));

        // B logs out: A refuses the session from then on, and never serves it again.
        request(&on_b, Some(&cookie), |s| s.destroy())
            .await
            .result
            .unwrap();
        until_read(&on_a, &cookie, None).await;
        for _ in 0..20 {
            assert_eq!(read_n(&on_a, &cookie).await, None);
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_reads_its_own_writes_at_once() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let store = app_server(&server, &unique_prefix()).await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let cookie = request(&cfg, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        for n in 1..=50 {
            // Cached by the read, dropped by the write, read again from Redis.
            assert_eq!(read_n(&cfg, &cookie).await, Some(n - 1));
            request(&cfg, Some(&cookie), |s| s.insert("n", n).unwrap())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_drops_the_cache_until_tracking_is_back() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let prefix = unique_prefix();
        let (a, b) = (
            app_server(&server, &prefix).await,
            app_server(&server, &prefix).await,
        );
        let clock = clock();
        let (on_a, on_b) = (config(&a, &clock), config(&b, &clock));
        let cookie = request(&on_b, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        for round in 1..=3 {
            assert_eq!(read_n(&on_a, &cookie).await, Some(round - 1));
            assert!(stats(&a).entries() >= 1);
            let flushes = stats(&a).flushes();
            // Every client's connection, A's tracked one among them.
            let _: i64 = server.query(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while stats(&a).flushes() == flushes {
                assert!(Instant::now() < deadline, "the cache was not dropped");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // B's write while A's invalidations cannot arrive: A must read Redis. (B's own
            // connection was killed too: a write is not retried, so the first may fail.)
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Err(e) = request(&on_b, Some(&cookie), |s| s.insert("n", round).unwrap())
                .await
                .result
            {
                assert_eq!(e.kind(), ErrorKind::Store);
                assert!(Instant::now() < deadline, "B did not recover: {e}");
            }
            assert_eq!(read_n(&on_a, &cookie).await, Some(round));
            tracking(&a).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_or_a_flushall_drops_every_entry() {
    tokio::time::timeout(LIMIT, async {
        let mut server = OwnServer::start();
        let store = app_server(&server, &unique_prefix()).await;
        let clock = clock();
        let cfg = config(&store, &clock);

        let cookie = request(&cfg, None, |s| s.insert("n", 7).unwrap())
            .await
            .cookie();
        assert_eq!(read_n(&cfg, &cookie).await, Some(7));
        assert_eq!(read_n(&cfg, &cookie).await, Some(7));
        let flushes = stats(&store).flushes();
        let _: () = server.query(&mut redis::cmd("FLUSHALL"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats(&store).flushes() == flushes {
            assert!(Instant::now() < deadline, "FLUSHALL did not drop the cache");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(read_n(&cfg, &cookie).await, None);

        // A restart (no persistence): every session is gone, and none is served.
        let cookie = request(&cfg, None, |s| s.insert("n", 8).unwrap())
            .await
            .cookie();
        assert_eq!(read_n(&cfg, &cookie).await, Some(8));
        assert_eq!(read_n(&cfg, &cookie).await, Some(8));
        server.stop();
        server.restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match request(&cfg, Some(&cookie), |_| {}).await.loaded {
                Ok(fresh) => {
                    assert!(fresh, "a session of the stopped server was served");
                    break;
                }
                Err(e) => assert_eq!(e.kind(), ErrorKind::Store),
            }
            assert!(Instant::now() < deadline, "the store did not recover");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracking(&store).await;
        assert_eq!(read_n(&cfg, &cookie).await, None);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_cluster_with_a_near_cache_is_refused() {
    let config =
        RedisConfig::cluster(["redis://127.0.0.1:1"]).with_near_cache(NearCacheConfig::new());
    let error = fastsession_redis::redis_store(&config, &key())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(error.to_string().contains("near cache"), "{error}");
}
