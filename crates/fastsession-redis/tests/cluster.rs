//! Redis Cluster: three masters of the test's own, and a set of conformance checks run on
//! them through the cluster connection.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastsession_core::events::{self, Event};
use fastsession_core::store::AnonymousBudget;
use fastsession_core::testing::{self, Instance, StoreUnderTest};
use fastsession_redis::RedisConfig;

use crate::support::{
    OwnServer, anonymous_sessions, clock, config as session_config, free_port, key, request,
    session_key, unique_prefix,
};

/// Three cluster-enabled redis-servers joined into one cluster; killed when dropped.
struct Cluster {
    nodes: Vec<OwnServer>,
}

impl Cluster {
    fn start() -> Self {
        let nodes: Vec<OwnServer> = (0..3)
            .map(|_| {
                // The bus port is given explicitly: port + 10000 may not exist.
                let bus = free_port().to_string();
                OwnServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus,
                ])
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = nodes.iter().all(|n| {
                n.query::<String>(redis::cmd("CLUSTER").arg("INFO"))
                    .contains("cluster_state:ok")
            });
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "cluster did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Cluster { nodes }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(OwnServer::url).collect()
    }
}

#[test]
fn conformance_checks_pass_on_a_cluster() {
    let cluster = Cluster::start();
    let urls = cluster.urls();
    let sut = StoreUnderTest::new(move || {
        let config = RedisConfig::cluster(urls.clone()).with_key_prefix(unique_prefix());
        let store = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(fastsession_redis::redis_store(&config, &key()))
        })
        .unwrap();
        Instance::from(Arc::new(store))
    });
    testing::run(testing::values_round_trip(&sut));
    testing::run(testing::regenerate_rotates_the_id(&sut));
    testing::run(testing::destroy_ends_the_session(&sut));
    testing::run(testing::expired_records_are_never_returned(&sut));
    testing::run(testing::sessions_end_at_their_own_deadline(&sut));
    testing::run(testing::remembered_sessions_outlive_the_idle_timeout(&sut));
    testing::run(testing::concurrent_writes_to_different_keys_both_persist(
        &sut,
    ));
    testing::run(testing::concurrent_increments_all_count(&sut));
    testing::run(testing::increments_merge_onto_the_stored_value(&sut));
    testing::run(testing::logout_is_never_undone_by_a_slower_request(&sut));
    testing::run(testing::racing_regenerations_leave_one_id(&sut));
    testing::run(testing::touch_never_overwrites_data(&sut));
    testing::run(testing::sign_out_everywhere(&sut));

    // Sessions spread over the masters: the hash tags do not pin them to one slot.
    let holding = cluster
        .nodes
        .iter()
        .filter(|n| n.query::<i64>(&mut redis::cmd("DBSIZE")) > 0)
        .count();
    assert!(holding >= 2, "keys on {holding} of 3 masters");
    // The servers, and every key with them, go when `cluster` drops.
}

/// The anonymous budget through the Cluster's separate index and eviction steps: a flood of
/// four times the budget logs nobody out, and the index stays within it.
#[test]
fn anonymous_floods_spare_logged_in_sessions_on_a_cluster() {
    let cluster = Cluster::start();
    let budget_urls = cluster.urls();
    let made: Arc<Mutex<Vec<Arc<fastsession_redis::RedisStore>>>> = Arc::default();
    let keep = made.clone();
    let budgeted = StoreUnderTest::new(move || {
        let config = RedisConfig::cluster(budget_urls.clone())
            .with_key_prefix(unique_prefix())
            .with_anonymous_budget(AnonymousBudget::new(20, 1 << 20));
        let store = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(fastsession_redis::redis_store(&config, &key()))
        })
        .unwrap();
        let store = Arc::new(store);
        keep.lock().unwrap().push(store.clone());
        Instance::from(store)
    });
    let evicted = events::counts().of(Event::AnonymousEvicted);
    testing::run(testing::anonymous_floods_spare_logged_in_sessions(
        &budgeted, 3, 80,
    ));
    assert!(events::counts().of(Event::AnonymousEvicted) - evicted >= 60);
    let mut con = redis::cluster::ClusterClient::new(cluster.urls())
        .unwrap()
        .get_connection()
        .unwrap();
    for store in made.lock().unwrap().iter() {
        let indexed: usize = redis::cmd("LLEN")
            .arg(store.backend().anonymous_index_key())
            .query(&mut con)
            .unwrap();
        assert!(indexed <= 20, "{indexed}");
    }
}

/// On a Cluster the index cannot see the sessions (they are in other slots): the entries it
/// takes out are judged on their own slots, and a session active since it was queued is queued
/// again while the next entry is taken out.
#[test]
fn a_cluster_gives_active_sessions_their_second_chance() {
    let cluster = Cluster::start();
    let urls = cluster.urls();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = RedisConfig::cluster(urls.clone())
            .with_key_prefix(unique_prefix())
            .with_anonymous_budget(AnonymousBudget::new(4, 1 << 20));
        let store = Arc::new(
            fastsession_redis::redis_store(&config, &key())
                .await
                .unwrap(),
        );
        let clock = clock();
        let cfg = session_config(&store, &clock);
        let ids = anonymous_sessions(&cfg, 4).await;
        clock.advance(Duration::from_secs(1));
        for id in &ids[..2] {
            request(&cfg, Some(id), |s| s.insert("j", 1).unwrap())
                .await
                .result
                .unwrap();
        }
        clock.advance(Duration::from_secs(1));
        let fifth = request(&cfg, None, |s| s.insert("i", 5).unwrap())
            .await
            .cookie();
        let mut con = redis::cluster::ClusterClient::new(urls)
            .unwrap()
            .get_connection()
            .unwrap();
        let mut exists = |cookie: &str| -> bool {
            redis::cmd("EXISTS")
                .arg(session_key(&store, cookie))
                .query::<i64>(&mut con)
                .unwrap()
                == 1
        };
        let kept: Vec<bool> = ids.iter().map(|id| exists(id)).collect();
        assert_eq!(kept, [true, true, false, true], "the first idle one went");
        assert!(exists(&fifth));
        let indexed: usize = redis::cmd("LLEN")
            .arg(store.backend().anonymous_index_key())
            .query(&mut con)
            .unwrap();
        assert_eq!(indexed, 4);
    });
}
