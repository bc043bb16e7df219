//! Two instances of the demo over one server-side store, as two app servers behind a load
//! balancer: one browser alternating between them keeps one session, concurrent writes
//! through both to different keys all persist, and concurrent increments of one key all count.

use fastsession_demo::StoreKind;
use serde_json::json;

use crate::support::{Demo, isolated};

async fn two_instances(store: StoreKind) {
    let options = isolated(store);
    let a = Demo::start_with(options.clone()).await;
    let b = Demo::start_with(options).await;
    let on_a = a.client();
    let on_b = b.client_sharing(&on_a);

    on_a.post("/api/login?user=grace").await;
    let cookie = on_a.session_cookie().expect("a session after login");
    assert_eq!(
        on_b.session().await["user"],
        json!("grace"),
        "B sees A's login"
    );

    // One session throughout: counters and flashes move between the instances.
    for round in 1..=3 {
        let (this, other) = if round % 2 == 1 {
            (&on_a, &on_b)
        } else {
            (&on_b, &on_a)
        };
        assert_eq!(
            this.post("/api/incr?key=n").await,
            json!({"key": "n", "value": round})
        );
        this.post(&format!("/api/flash?msg=m{round}")).await;
        let view = other.session().await;
        assert_eq!(view["counters"]["n"], json!(round));
        assert_eq!(
            view["flashes"],
            json!([format!("m{round}")]),
            "flash shown once, on the other instance"
        );
    }
    assert_eq!(
        on_a.session_cookie(),
        Some(cookie),
        "no new session on the way"
    );

    // Concurrent writes to different keys through both instances.
    const KEYS: [&str; 4] = ["w", "x", "y", "z"];
    const ROUNDS: u64 = 10;
    let tasks: Vec<_> = KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (first, second) = if i % 2 == 0 {
                (on_a.clone(), on_b.clone())
            } else {
                (on_b.clone(), on_a.clone())
            };
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let client = if round % 2 == 0 { &first } else { &second };
                    client.post(&format!("/api/incr?key={key}")).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    for client in [&on_a, &on_b] {
        let counters = client.session().await["counters"].clone();
        for key in KEYS {
            assert_eq!(counters[key], json!(ROUNDS), "lost writes: {counters}");
        }
    }

    // Concurrent increments of one counter through both instances all count.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = if i % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    client.post("/api/incr?key=same").await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let counters = on_b.session().await["counters"].clone();
    assert_eq!(
        counters["same"],
        json!(8 * ROUNDS),
        "lost increments: {counters}"
    );

    // Logout on one instance ends the session on both; the old cookie is worth nothing.
    let before = on_a.session_cookie().expect("session cookie");
    on_b.post("/api/logout").await;
    assert_eq!(on_a.session().await["user"], json!(null));
    assert_eq!(
        on_a.replay(&before).await["user"],
        json!(null),
        "replayed on A"
    );
    assert_eq!(
        on_b.replay(&before).await["user"],
        json!(null),
        "replayed on B"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis() {
    two_instances(StoreKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    two_instances(StoreKind::Postgres).await;
}

/// Polls `check` every 10 ms for up to 5 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what} within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// With `--near-cache`, an instance serves repeated reads from its cache and says so on its
/// page, and a login or logout on the other instance reaches it (by Redis's invalidation,
/// within milliseconds; polled here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_near_cache() {
    near_cache(StoreKind::Redis).await;
}

/// The same with PostgreSQL's notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_near_cache() {
    near_cache(StoreKind::Postgres).await;
}

async fn near_cache(store: StoreKind) {
    let mut options = isolated(store);
    options.near_cache = true;
    let a = Demo::start_with(options.clone()).await;
    let b = Demo::start_with(options).await;
    let on_a = a.client();
    let on_b = b.client_sharing(&on_a);
    let page = async |client: &crate::support::Client| {
        let response = client.send(reqwest::Method::GET, "/").await;
        assert_eq!(response.status(), 200);
        response.text().await.expect("the page")
    };
    eventually("B's cache tracking", async || {
        page(&on_b)
            .await
            .contains(r#"<p id="near-cache">tracking:"#)
    })
    .await;

    on_a.post("/api/login?user=grace").await;
    eventually("B sees the login", async || {
        on_b.session().await["user"] == json!("grace")
    })
    .await;
    for _ in 0..5 {
        assert_eq!(on_b.session().await["user"], json!("grace"));
    }
    let shown = page(&on_b).await;
    let hits: u64 = shown
        .split(r#"<p id="near-cache">tracking: "#)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the near cache's counts on the page");
    assert!(hits >= 5, "{shown}");

    on_a.post("/api/logout").await;
    eventually("B sees the logout", async || {
        on_b.session().await["user"] == json!(null)
    })
    .await;
}
