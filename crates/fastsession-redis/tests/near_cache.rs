//! The near cache (`RedisConfig::with_near_cache`): two app servers' stores on one
//! redis-server of the test's own, each with its cache. A load is served from the cache only
//! while Redis tracks it; a write on one server is seen by the other once its invalidation
//! arrives; a session ended on one is never served by the other again; a lost connection, a
//! restart or a `FLUSHALL` drops the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastsession_core::ErrorKind;
use fastsession_core::http::SessionConfig;
use fastsession_core::store::{AnonymousBudget, NearCacheConfig, NearCacheStats};
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

/// Two app servers' stores with their caches on one redis-server of the test's own, and a
/// session holding `n = 0`, created through the first.
struct TwoServers {
    server: OwnServer,
    a: Arc<RedisStore>,
    on_a: SessionConfig,
    on_b: SessionConfig,
    cookie: String,
}

async fn two_servers() -> TwoServers {
    let server = OwnServer::start();
    let prefix = unique_prefix();
    let (a, b) = (
        app_server(&server, &prefix).await,
        app_server(&server, &prefix).await,
    );
    let clock = clock();
    let (on_a, on_b) = (config(&a, &clock), config(&b, &clock));
    let cookie = request(&on_a, None, |s| s.insert("n", 0).unwrap())
        .await
        .cookie();
    TwoServers {
        server,
        a,
        on_a,
        on_b,
        cookie,
    }
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
        let TwoServers {
            server: _server,
            a,
            on_a,
            on_b,
            cookie,
        } = two_servers().await;

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
            assert_eq!(read_n(&cfg, &cookie).await, Some(n - 1));
            request(&cfg, Some(&cookie), |s| s.insert("n", n).unwrap())
                .await
                .result
                .unwrap();
            // Nobody else wrote between: the write put the merged session in the cache, and
            // the next read is served from there.
            let hits = stats(&store).hits();
            assert_eq!(read_n(&cfg, &cookie).await, Some(n));
            assert_eq!(stats(&store).hits(), hits + 1, "{:?}", stats(&store));
        }
        // Increments too: Redis adds them, and the cache holds the sum.
        for n in 51..=60 {
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

/// A server that cached its own write still hears of the other server's next one: Redis
/// stops tracking a key once anyone writes it (this server's own write too, which under
/// `NOLOOP` it is not told of), so the write must track it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cached_its_own_write_still_hears_of_the_next_one() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            server: _server,
            a,
            on_a,
            on_b,
            cookie,
        } = two_servers().await;
        for n in 1..=10 {
            assert_eq!(read_n(&on_a, &cookie).await, Some(2 * n - 2));
            // A's write: its merged session is cached.
            request(&on_a, Some(&cookie), |s| s.insert("n", 2 * n - 1).unwrap())
                .await
                .result
                .unwrap();
            let hits = stats(&a).hits();
            assert_eq!(read_n(&on_a, &cookie).await, Some(2 * n - 1));
            assert_eq!(stats(&a).hits(), hits + 1);
            // B's write: A must hear of it.
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

/// Writes through both servers at once, each server caching what its own writes merged: when
/// they stop, both read every one of them (a cached merge that missed the other server's
/// write would be served until its maximum age, a minute here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_two_servers_are_all_read_by_both() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            server: _server,
            a: _,
            on_a,
            on_b,
            cookie,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_drops_the_cache_until_tracking_is_back() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            server,
            a,
            on_a,
            on_b,
            cookie,
        } = two_servers().await;
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

/// The ids of the clients whose reads Redis tracks (the near caches' connections).
fn tracked_clients(server: &OwnServer) -> Vec<String> {
    let list: String = server.query(redis::cmd("CLIENT").arg("LIST"));
    list.lines()
        .filter(|line| {
            line.split(' ').any(|field| {
                field
                    .strip_prefix("flags=")
                    .is_some_and(|f| f.contains('t'))
            })
        })
        .filter_map(|line| {
            line.split(' ')
                .next()?
                .strip_prefix("id=")
                .map(str::to_owned)
        })
        .collect()
}

/// Two writes of this server on one key, both under way: the first one back, though a
/// later mark refused to cache it, is read at once (the entry it found is dropped, not served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_overtaken_by_another_of_this_server_is_read_at_once() {
    use fastsession_core::Session;
    use fastsession_core::session::Record;
    use fastsession_core::store::{Backend as _, StorageKey, Update};
    use fastsession_core::time::UnixTime;

    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let store = app_server(&server, &unique_prefix()).await;
        let backend = store.backend();
        let (key, now) = (StorageKey::from_bytes([7; 32]), UnixTime::now());
        let n = |n: i64| serde_json::value::to_raw_value(&n).unwrap();
        let mut record = Record::new(now);
        record.set_user_id(Some("ada".to_owned()));
        record.insert_value("n".to_owned(), n(0));
        let expires = UnixTime::from_secs(now.as_secs() + 3600);
        assert!(backend.create(&key, &record, expires).await.unwrap());
        let read = async || {
            let record = backend.read(&key).await.unwrap().unwrap();
            serde_json::from_str::<i64>(record.value("n").unwrap().get()).unwrap()
        };
        read().await;
        let hits = stats(&store).hits();
        assert_eq!(read().await, 0);
        assert_eq!(stats(&store).hits(), hits + 1, "the record was not cached");

        // Each write's changes, and the record as its request leaves it.
        let set = |to: i64| {
            let session = Session::new_detached();
            session.insert("n", to).unwrap();
            let mut from = record.clone();
            from.insert_value("n".to_owned(), n(to));
            (session.changes(), from)
        };
        let (one, two) = (set(1), set(2));
        let expiry = crate::support::expiry();
        let update = |changes, from| {
            Update::new(changes, from, now, &expiry).with_previously_active(Some(now))
        };
        // Both marked now, the second over the first; the first is sent and answered alone.
        let first = backend.update(&key, update(&one.0, &one.1));
        let second = backend.update(&key, update(&two.0, &two.1));
        assert!(first.await.unwrap());
        assert_eq!(read().await, 1);
        assert!(second.await.unwrap());
        assert_eq!(read().await, 2);
    })
    .await
    .unwrap();
}

/// Waits until `server` has `n` tracked clients; returns their ids.
async fn until_tracked(server: &OwnServer, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ids = tracked_clients(server);
        if ids.len() == n {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{} tracked clients, not {n}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An actix-web worker: a thread whose single-threaded runtime drives a tracked connection
/// of its own. Its reads are served from the cache and hear the other server's writes; its
/// connection lost, the cache is dropped; its runtime gone, the link goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_a_runtime_of_its_own_tracks_through_its_own_connection() {
    tokio::time::timeout(LIMIT, async {
        let TwoServers {
            server,
            a,
            on_a,
            on_b,
            cookie,
        } = two_servers().await;
        let homes = until_tracked(&server, 2).await;
        let (to_worker, mut jobs) = tokio::sync::mpsc::unbounded_channel::<Option<i64>>();
        let (answer, mut answers) = tokio::sync::mpsc::unbounded_channel::<(Duration, u64)>();
        let worker = {
            let (a, on_a, cookie) = (Arc::clone(&a), on_a.clone(), cookie.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                // Driven all along, as a worker's runtime is. Each job: read until `n` is the
                // one wanted, then read it once more (a hit, once the link tracks).
                runtime.block_on(async {
                    while let Some(want) = jobs.recv().await {
                        let took = until_read(&on_a, &cookie, want).await;
                        let hits = stats(&a).hits();
                        assert_eq!(read_n(&on_a, &cookie).await, want);
                        answer.send((took, stats(&a).hits() - hits)).unwrap();
                    }
                });
            })
        };
        let mut ask = async |want: i64| {
            to_worker.send(Some(want)).unwrap();
            answers.recv().await.expect("the worker answers")
        };
        assert_eq!(ask(0).await.1, 0, "served before its own link tracked");
        // Its first request started its link: a third tracked client.
        let own: Vec<String> = until_tracked(&server, 3)
            .await
            .into_iter()
            .filter(|id| !homes.contains(id))
            .collect();
        tracking(&a).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while ask(0).await.1 == 0 {
            assert!(
                Instant::now() < deadline,
                "the worker's reads are never hits"
            );
        }
        request(&on_b, Some(&cookie), |s| s.insert("n", 1).unwrap())
            .await
            .result
            .unwrap();
        assert_eq!(ask(1).await.1, 1);

        let flushes = stats(&a).flushes();
        let _: i64 = server.query(redis::cmd("CLIENT").arg("KILL").arg("ID").arg(&own[0]));
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats(&a).flushes() == flushes {
            assert!(
                Instant::now() < deadline,
                "losing the worker's link kept the cache"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        request(&on_b, Some(&cookie), |s| s.insert("n", 2).unwrap())
            .await
            .result
            .unwrap();
        // Within `until_read`'s bound, though the cache's maximum age is a minute.
        ask(2).await;
        until_tracked(&server, 3).await;

        // The worker stops: its runtime, its connection and its link end.
        let flushes = stats(&a).flushes();
        drop(to_worker);
        worker.join().unwrap();
        until_tracked(&server, 2).await;
        assert!(stats(&a).flushes() > flushes, "a link gone kept the cache");
        assert!(stats(&a).is_tracking());
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
                assert_eq!(e.kind(), ErrorKind::Store, "{what}: {e}");
                assert!(Instant::now() < deadline, "{what}: no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// A request that reads the session: whether it was served (not a fresh session).
async fn served(config: &SessionConfig, cookie: &str) -> Result<bool, fastsession_core::Error> {
    let reply = request(config, Some(cookie), |_| {}).await;
    reply.result?;
    reply.loaded.map(|fresh| !fresh)
}

/// The `per_mille`th of `sorted` (nearest rank).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

/// The acceptance test of the near cache's promise, on two app servers under load: 1 000
/// logouts on one, each timed to the other's first refusal of that session, with the other's
/// tracked connection killed, Redis paused and Redis restarted along the way. No logged-out
/// session is ever served again, no increment is lost, and no window exceeds the maximum age.
/// The windows are printed (`--no-capture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logouts_reach_the_other_server_through_faults_and_nothing_revives() {
    const LOGOUTS: usize = 1_000;
    let max_age = NearCacheConfig::new().max_age();
    tokio::time::timeout(Duration::from_secs(120), async {
        // Acknowledged writes survive the restart: the counter must not lose any.
        let mut server = OwnServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
        let prefix = unique_prefix();
        let near = |url: String| {
            RedisConfig::new(url)
                .with_key_prefix(&prefix)
                .with_connect_timeout(Duration::from_secs(1))
                .with_command_timeout(Duration::from_secs(2))
                .with_near_cache(NearCacheConfig::new())
        };
        let connect = async |config: RedisConfig| {
            let store = Arc::new(
                fastsession_redis::redis_store(&config, &key())
                    .await
                    .unwrap(),
            );
            tracking(&store).await;
            store
        };
        let (a, b) = (
            connect(near(server.url())).await,
            connect(near(server.url())).await,
        );
        let clock = clock();
        let (on_a, on_b) = (config(&a, &clock), config(&b, &clock));

        // Load meanwhile: both servers read a few sessions over and over, and increment a
        // counter in turn.
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
                        let reply = request(&cfg, Some(&counter), |s| {
                            let _ = s.increment("n", 1).unwrap();
                        })
                        .await;
                        match (reply.loaded, reply.result) {
                            (Ok(false), Ok(())) => acknowledged += 1,
                            (Ok(true), _) => panic!("the counter's session was lost"),
                            // A failed load wrote nothing; a failed save may have landed.
                            (Err(_), _) => {}
                            (Ok(false), Err(_)) => unknown += 1,
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
                250 => {
                    let killed = tracked_clients(&server);
                    assert_eq!(killed.len(), 2, "both caches track");
                    for id in killed {
                        let _: i64 =
                            server.query(redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id));
                    }
                }
                500 => {
                    server.signal("STOP");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    server.signal("CONT");
                }
                750 => {
                    server.stop();
                    server.restart();
                }
                _ => {}
            }
            let cookie = despite_faults("create", async || {
                let reply = request(&on_a, None, |s| s.insert("i", i).unwrap()).await;
                reply.loaded?;
                reply
                    .result
                    .map(|()| reply.set.expect("a new session's cookie"))
            })
            .await;
            // B reads it twice: the second read is from its cache, when tracking is up.
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
                    Err(e) => assert_eq!(e.kind(), ErrorKind::Store),
                }
                assert!(
                    logout.elapsed() <= max_age,
                    "logout {i} still served after {max_age:?}"
                );
            }
            windows.push((logout.elapsed(), i));
            // Windows near the maximum age mean the entries aged out: no invalidation came.
            let late = windows.iter().filter(|(w, _)| *w > max_age / 2).count();
            assert!(
                late <= 10,
                "{late} logouts took over {:?}: invalidations are not arriving",
                max_age / 2
            );

            logged_out.push(cookie);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut acknowledged, mut unknown) = (0, 0);
        for task in load {
            let (a, u) = task.await.unwrap();
            acknowledged += a;
            unknown += u;
        }

        // No logged-out session is served again, by either server.
        let mut revived = 0;
        for cookie in &logged_out {
            for cfg in [&on_a, &on_b] {
                if despite_faults("read", async || served(cfg, cookie).await).await {
                    revived += 1;
                }
            }
        }
        // Both servers read the same count (a cache that missed a write would not).
        let mut counts = Vec::new();
        for cfg in [&on_a, &on_b] {
            let mut n = None;
            request(cfg, Some(&counter), |s| n = s.get::<u64>("n").unwrap())
                .await
                .result
                .unwrap();
            counts.push(n.expect("the counter"));
        }
        assert_eq!(counts[0], counts[1], "the servers disagree on the counter");
        let n = counts[0];

        windows.sort();
        // Which logouts make the tail: those next to a fault (250, 500, 750), or any.
        let slowest: Vec<String> = windows
            .iter()
            .rev()
            .take(12)
            .map(|(w, i)| format!("#{i} {w:?}"))
            .collect();
        let windows: Vec<Duration> = windows.into_iter().map(|(w, _)| w).collect();
        eprintln!("near cache: the slowest windows: {}", slowest.join(", "));
        eprintln!(
            "near cache, {LOGOUTS} logouts through faults: window p50 {:?}, p99 {:?}, max {:?}; \
             {cached_before} cached on the other server before their logout; {revived} revived; \
             counter {n} after {acknowledged} acknowledged and {unknown} unknown increments; \
             A {:?}; B {:?}",
            percentile(&windows, 500),
            percentile(&windows, 990),
            windows[windows.len() - 1],
            stats(&a),
            stats(&b),
        );
        assert_eq!(revived, 0);
        assert!(
            n >= acknowledged && n <= acknowledged + unknown,
            "counter {n}: {acknowledged} acknowledged, {unknown} unknown"
        );
        assert!(
            cached_before >= LOGOUTS / 2,
            "the cache was hardly used: {cached_before}"
        );
    })
    .await
    .unwrap();
}

/// Sessions this server's own creates evict for the anonymous budget: Redis tells it nothing
/// of its own deletions (`NOLOOP`), so it empties its cache, and none is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_evicted_by_this_server_are_not_served_from_its_cache() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start();
        let config = RedisConfig::new(server.url())
            .with_key_prefix(unique_prefix())
            .with_anonymous_budget(AnonymousBudget::new(2, 1 << 20))
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
        let clock = clock();
        let cfg = crate::support::config(&store, &clock);
        let oldest = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        assert_eq!(read_n(&cfg, &oldest).await, Some(1));
        let hits = stats(&store).hits();
        assert_eq!(read_n(&cfg, &oldest).await, Some(1));
        assert_eq!(stats(&store).hits(), hits + 1, "cached");
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
