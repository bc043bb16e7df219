//! Security cases 61 and 62: crashes, power loss, stray temporary files, and failing writes
//! (a planted obstacle in-process; `EFBIG`, `ENOSPC`, `EROFS` and `EACCES` from the kernel in
//! child processes, since the tests run as root, which permission bits do not stop).

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use fastsession_core::ErrorKind;
use fastsession_core::store::StorageKey;
use fastsession_core::time::UnixTime;

use crate::support::{
    Events, Rng, T0, assert_success, clock, config, fixture, open, request, results, session_file,
    storage_key, temp, var,
};

#[tokio::test]
async fn a_crash_leaves_the_old_or_the_new_version_never_a_partial_one() {
    let (_tmp, dir, clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("v", "old").unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id);
    let path = session_file(&dir, &key);
    let tmp_path = dir.join("sessions").join(format!("{}.tmp", key.to_hex()));
    let old = std::fs::read(&path).unwrap();
    request(&cfg, Some(&id), |s| {
        s.insert("v", "new").unwrap();
        s.insert("pad", "x".repeat(300)).unwrap();
    })
    .await
    .result
    .unwrap();
    let new = std::fs::read(&path).unwrap();
    drop(cfg);
    drop(store);

    let mut rng = Rng::new(61);
    let (events, _guard) = Events::capture();
    for round in 0..40 {
        let cut = rng.below(new.len() + 1);
        // What the disk holds after the crash, and what a reader may then see.
        let expect = match round % 3 {
            // Killed before the rename: a partial (or complete, unsynced) temporary file.
            0 => {
                std::fs::write(&path, &old).unwrap();
                std::fs::write(&tmp_path, &new[..cut]).unwrap();
                Some("old")
            }
            // Power lost after the rename but before the data reached the disk (a lying
            // cache): the new name holds a torn file.
            1 => {
                std::fs::write(&path, &new[..cut]).unwrap();
                (cut == new.len()).then_some("new")
            }
            // Killed after the temporary file was complete, before the rename.
            _ => {
                std::fs::write(&path, &old).unwrap();
                std::fs::write(&tmp_path, &new).unwrap();
                Some("old")
            }
        };
        // A restart: a new store on the same directory.
        let store = open(&dir);
        let cfg = config(&store, &clock);
        let reply = request(&cfg, Some(&id), |s| {
            let v = s.get::<String>("v").unwrap();
            assert_eq!(v.as_deref(), expect, "round {round}, cut {cut}");
            if v.as_deref() == Some("new") {
                assert_eq!(s.get::<String>("pad").unwrap().unwrap().len(), 300);
            } else {
                assert_eq!(s.get::<String>("pad").unwrap(), None, "round {round}");
            }
        })
        .await;
        assert_eq!(reply.was_new, expect.is_none());
        assert_eq!(
            events.about(&key).is_empty(),
            expect.is_some(),
            "round {round}"
        );
        events.clear();
    }

    // Stray temporary files are cleaned by the reaper; files it does not know are left alone.
    let store = open(&dir);
    std::fs::write(&path, &old).unwrap();
    std::fs::write(&tmp_path, &new[..10]).unwrap();
    let orphan = dir
        .join("sessions")
        .join(format!("{}.tmp", StorageKey::from_bytes([3; 32]).to_hex()));
    std::fs::write(&orphan, b"partial").unwrap();
    let unknown = dir.join("sessions").join("README");
    std::fs::write(&unknown, b"notes").unwrap();
    assert_eq!(store.reap(UnixTime::from_secs(T0), 100).await.unwrap(), 0);
    assert!(!tmp_path.exists() && !orphan.exists());
    assert!(unknown.exists() && path.exists());
}

#[tokio::test]
async fn a_failed_write_is_a_store_error_and_the_previous_version_stays() {
    // An obstacle the store cannot remove (a non-empty directory at the temporary path)
    // makes the write fail after the record was read and merged.
    let (_tmp, dir, _clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("v", "old").unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id);
    let obstacle = dir.join("sessions").join(format!("{}.tmp", key.to_hex()));
    std::fs::create_dir(&obstacle).unwrap();
    std::fs::write(obstacle.join("x"), b"").unwrap();

    let reply = request(&cfg, Some(&id), |s| s.insert("v", "new").unwrap()).await;
    let err = reply.result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<io::Error>().is_some(), "{source:?}");
    assert!(reply.set.is_none(), "no cookie for unsaved state");
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<String>("v").unwrap().as_deref(), Some("old"));
    })
    .await;

    std::fs::remove_dir_all(&obstacle).unwrap();
    request(&cfg, Some(&id), |s| s.insert("v", "new").unwrap())
        .await
        .result
        .unwrap();
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<String>("v").unwrap().as_deref(), Some("new"));
    })
    .await;
}

/// Runs `script` with `sh`, the test binary as `$BIN` and its child arguments as `$ARGS`.
fn shell(script: &str) -> Command {
    let bin = std::env::current_exe().unwrap();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .env("BIN", bin)
        .env(
            "ARGS",
            "--exact child_process_entry --nocapture --test-threads=1",
        )
        .env(crate::support::CHILD, "fault");
    command
}

/// A child's steps: `write` stores a session (v = "old") and saves its cookie in
/// `COOKIE_FILE`; `fill` fills the file system; `chmod` makes the session directory
/// read-only for its owner; `fail` expects an update to fail with `EXPECT` and the old version
/// to stay readable.
pub(crate) fn fault_child() {
    let dir = PathBuf::from(var("STORE_DIR"));
    let cookie_file = PathBuf::from(var("COOKIE_FILE"));
    crate::support::runtime().block_on(async {
        let store = open(&dir);
        let cfg = config(&store, &clock());
        for step in var("STEPS").split(',') {
            match step {
                "write" => {
                    let id = request(&cfg, None, |s| s.insert("v", "old").unwrap())
                        .await
                        .cookie();
                    std::fs::write(&cookie_file, id).unwrap();
                }
                "fill" => fill(dir.parent().unwrap()),
                "chmod" => set_mode(&dir.join("sessions"), 0o500),
                "fail" => {
                    let id = std::fs::read_to_string(&cookie_file).unwrap();
                    let reply = request(&cfg, Some(&id), |s| {
                        s.insert("v", "new").unwrap();
                        s.insert("pad", "x".repeat(64 * 1024)).unwrap();
                    })
                    .await;
                    let err = reply.result.unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
                    let io = std::error::Error::source(&err)
                        .and_then(|s| s.downcast_ref::<io::Error>())
                        .unwrap_or_else(|| panic!("io source: {err:?}"));
                    println!("RESULT {:?}", io.kind());
                    request(&cfg, Some(&id), |s| {
                        assert_eq!(s.get::<String>("v").unwrap().as_deref(), Some("old"));
                    })
                    .await;
                    println!("RESULT old version intact");
                }
                "unchmod" => set_mode(&dir.join("sessions"), 0o700),
                other => panic!("unknown step {other}"),
            }
        }
    });
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Fills the file system holding `dir` until the kernel says it is full.
fn fill(dir: &Path) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    loop {
        if let Err(e) = file.write_all(&block).and_then(|()| file.sync_data()) {
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
            return;
        }
    }
}

#[test]
fn efbig_from_a_file_size_limit() {
    // `ulimit -f` caps the size of files this process writes; the ignored SIGXFSZ survives
    // the exec, so the write fails with EFBIG instead of killing the child.
    let (tmp, dir) = temp();
    let output = shell(r#"trap '' XFSZ; ulimit -f 16 && exec "$BIN" $ARGS"#)
        .env("STORE_DIR", &dir)
        .env("COOKIE_FILE", tmp.path().join("cookie"))
        .env("STEPS", "write,fail")
        .output()
        .unwrap();
    assert_success("file size limit child", &output);
    assert_eq!(results(&output), ["FileTooLarge", "old version intact"]);
}

/// Runs the fault child's `write` step, the shell commands `between`, then `steps`, in a
/// private mount namespace on a 256 KiB tmpfs.
/// `None` if this machine cannot make one (not root, no `unshare`).
fn on_tmpfs(steps: &str, between: &str) -> Option<std::process::Output> {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let script = format!(
        r#"mount -t tmpfs -o size=256k tmpfs "$MNT" || exit 77
        STEPS=write "$BIN" $ARGS || exit 1
        {between}
        STEPS={steps} exec "$BIN" $ARGS"#
    );
    let output = shell(&format!(
        "exec unshare --mount --propagation private sh -c '{}'",
        script.replace('\'', r"'\''")
    ))
    .env("MNT", &mnt)
    .env("STORE_DIR", mnt.join("store"))
    .env("COOKIE_FILE", tmp.path().join("cookie"))
    .output()
    .unwrap();
    if output.status.code() == Some(77) {
        eprintln!(
            "skipped: cannot mount a tmpfs here: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    Some(output)
}

#[test]
fn enospc_on_a_full_file_system() {
    if let Some(output) = on_tmpfs("fill,fail", "") {
        assert_success("ENOSPC child", &output);
        assert_eq!(results(&output), ["StorageFull", "old version intact"]);
    }
}

#[test]
fn erofs_on_a_read_only_mount() {
    if let Some(output) = on_tmpfs("fail", r#"mount -o remount,ro "$MNT" || exit 1"#) {
        assert_success("EROFS child", &output);
        assert_eq!(
            results(&output),
            ["ReadOnlyFilesystem", "old version intact"]
        );
    }
}

#[test]
fn eacces_for_an_unprivileged_owner() {
    // Root ignores permission bits, so the child drops to `nobody`.
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o755);
    let base = tmp.path().join("base");
    std::fs::create_dir(&base).unwrap();
    set_mode(&base, 0o777);
    let output = shell(
        r#"command -v setpriv >/dev/null || exit 77
        exec setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" $ARGS"#,
    )
    .env("STORE_DIR", base.join("store"))
    .env("COOKIE_FILE", base.join("cookie"))
    .env("STEPS", "write,chmod,fail,unchmod")
    .output()
    .unwrap();
    if output.status.code() == Some(77) {
        eprintln!("skipped: no setpriv");
        return;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("Permission denied") && results(&output).is_empty() {
        eprintln!("skipped: `nobody` cannot run the test binary here: {stderr}");
        return;
    }
    assert_success("EACCES child", &output);
    assert_eq!(results(&output), ["PermissionDenied", "old version intact"]);
}
