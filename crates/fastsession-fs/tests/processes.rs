//! Security case 65: processes sharing one directory keep the store contract (cases 46–48),
//! and waiting for another process's lock never blocks the async executor.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fastsession_core::store::Backend as _;
use serde_json::Value;

use crate::support::{
    assert_success, child, clock, config, fixture, open, request, results, storage_key, var,
};

/// Updates each child process makes.
const UPDATES: usize = 60;

#[tokio::test]
async fn two_processes_merge_their_changes() {
    let (_tmp, dir, _clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("start", 0).unwrap())
        .await
        .cookie();

    let children: Vec<_> = (1..=2)
        .map(|writer| {
            child("writer")
                .env("STORE_DIR", &dir)
                .env("COOKIE", &id)
                .env("WRITER", writer.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let output = c.wait_with_output().unwrap();
        assert_success("writer", &output);
        assert_eq!(results(&output), ["done"]);
    }

    let record = store
        .backend()
        .read(&storage_key(&store, &id))
        .await
        .unwrap()
        .unwrap();
    let values: std::collections::BTreeMap<&str, Value> = record
        .values()
        .map(|(k, v)| (k, serde_json::from_str(v.get()).unwrap()))
        .collect();
    for writer in 1..=2 {
        for i in 0..UPDATES {
            assert_eq!(
                values[format!("w{writer}-{i}").as_str()],
                i,
                "w{writer}-{i} lost"
            );
        }
    }
    // The same key: one whole value, written by one of them.
    let shared = &values["shared"];
    let (writer, seq) = (&shared["writer"], &shared["seq"]);
    assert_eq!(shared["check"], format!("{writer}-{seq}"));
    assert_eq!(shared["pad"].as_str().unwrap().len(), 512);
    assert_eq!(values.len(), 2 * UPDATES + 2);
}

/// Child side: `UPDATES` requests on session `COOKIE`, each setting its own key and the shared one.
pub(crate) fn writer_child() {
    let dir = PathBuf::from(var("STORE_DIR"));
    let id = var("COOKIE");
    let writer: u32 = var("WRITER").parse().unwrap();
    crate::support::runtime().block_on(async {
        let store = open(&dir);
        let cfg = config(&store, &clock());
        for i in 0..UPDATES {
            let reply = request(&cfg, Some(&id), |s| {
                s.insert(format!("w{writer}-{i}"), i).unwrap();
                s.insert(
                    "shared",
                    serde_json::json!({
                        "writer": writer,
                        "seq": i,
                        "check": format!("{writer}-{i}"),
                        "pad": "p".repeat(512),
                    }),
                )
                .unwrap();
            })
            .await;
            assert!(!reply.was_new, "update {i}: session lost");
            reply.result.unwrap();
        }
    });
    println!("RESULT done");
}

#[tokio::test]
async fn a_session_destroyed_in_one_process_stays_destroyed_in_another() {
    let (_tmp, dir, _clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("start", 0).unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id);
    let mut writer = child("ender")
        .env("STORE_DIR", &dir)
        .env("COOKIE", &id)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Let the other process get going, then log out here.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let record = store.backend().read(&key).await.unwrap().unwrap();
        if record.values().len() > 5 {
            break;
        }
        assert!(Instant::now() < deadline, "child made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reply = request(&cfg, Some(&id), |s| s.destroy()).await;
    reply.result.unwrap();

    let output = writer.wait_with_output_timeout();
    assert_success("ender", &output);
    let said = results(&output);
    assert!(said == ["ended"] || said == ["gone"], "{said:?}");
    assert!(
        store.backend().read(&key).await.unwrap().is_none(),
        "brought back"
    );
    assert!(request(&cfg, Some(&id), |_| {}).await.was_new);
}

trait WaitTimeout {
    fn wait_with_output_timeout(&mut self) -> std::process::Output;
}

impl WaitTimeout for std::process::Child {
    /// Waits up to 30 s, then kills the child (so a bug cannot hang the suite).
    fn wait_with_output_timeout(&mut self) -> std::process::Output {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        use std::io::Read as _;
        if let Some(out) = self.stdout.as_mut() {
            out.read_to_end(&mut stdout).unwrap();
        }
        if let Some(err) = self.stderr.as_mut() {
            err.read_to_end(&mut stderr).unwrap();
        }
        std::process::Output {
            status: self.wait().unwrap(),
            stdout,
            stderr,
        }
    }
}

/// Child side: updates session `COOKIE` until another process ends it; says `ended` if a save
/// was refused as ended, `gone` if a load already found nothing.
pub(crate) fn ender_child() {
    let dir = PathBuf::from(var("STORE_DIR"));
    let id = var("COOKIE");
    crate::support::runtime().block_on(async {
        let store = open(&dir);
        let cfg = config(&store, &clock());
        for i in 0.. {
            let reply = request(&cfg, Some(&id), |s| s.insert(format!("e{i}"), i).unwrap()).await;
            if reply.was_new {
                assert_ne!(reply.cookie(), id, "a new session, never the old id");
                println!("RESULT gone");
                return;
            }
            match reply.result {
                Ok(()) => {}
                Err(e) if e.is_session_ended() => {
                    println!("RESULT ended");
                    return;
                }
                Err(e) => panic!("update {i}: {e:?}"),
            }
        }
    });
}

#[test]
fn waiting_for_a_lock_never_blocks_the_executor() {
    // One executor thread. Another "process" (another open file) holds the lock of the
    // session's shard; the save waits on the blocking pool while a timer on the executor
    // thread still fires.
    crate::support::runtime().block_on(async {
        let (_tmp, dir, _clock, store, cfg) = fixture();
        let id = request(&cfg, None, |s| s.insert("a", 1).unwrap())
            .await
            .cookie();
        let key = storage_key(&store, &id);
        let lock_file = dir.join("locks").join(format!("{:02x}", key.as_bytes()[0]));
        let held = std::fs::File::open(&lock_file).unwrap();
        rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            drop(held);
        });

        let start = Instant::now();
        let save = tokio::spawn({
            let (cfg, id) = (cfg.clone(), id.clone());
            async move { request(&cfg, Some(&id), |s| s.insert("b", 2).unwrap()).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            start.elapsed() < Duration::from_millis(400),
            "the executor was blocked for {:?}",
            start.elapsed()
        );
        assert!(!save.is_finished(), "the save did not wait for the lock");
        save.await.unwrap().result.unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(550),
            "lock ignored"
        );
        release.join().unwrap();
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("b").unwrap(), Some(2));
        })
        .await;
    });
}
