//! Security cases 63 and 64: permissions, symlinks, foreign and corrupt files.

use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;
use std::time::Duration;

use fastsession_core::ErrorKind;
use fastsession_core::store::{Backend as _, StorageKey};
use fastsession_fs::FilesystemBackend;
use rustix::fs::Mode;
use sha2::{Digest as _, Sha256};

use crate::support::{
    Events, Rng, assert_private, assert_success, child, clock, config, fixture, open, request,
    results, session_file, storage_key, temp, var,
};

#[tokio::test]
async fn files_are_0600_and_directories_0700() {
    let (_tmp, dir, _clock, _store, cfg) = fixture();
    request(&cfg, None, |s| s.set_user_id("alice"))
        .await
        .cookie();
    // A session file, a lock file and a user link at least.
    assert!(assert_private(&dir) >= 3);
}

#[test]
fn files_are_0600_and_directories_0700_under_umask_000() {
    // The umask is per process: a child sets it, so parallel tests here are unaffected.
    let (_tmp, dir) = temp();
    let output = child("umask").env("STORE_DIR", &dir).output().unwrap();
    assert_success("umask child", &output);
    assert_eq!(results(&output), ["umask 0"]);
    assert!(assert_private(&dir) >= 3);
}

/// Child side of the umask test.
pub(crate) fn umask_child() {
    rustix::process::umask(Mode::empty());
    // Reading the umask sets it; set it to the same value again.
    println!(
        "RESULT umask {:o}",
        rustix::process::umask(Mode::empty()).bits()
    );
    let dir = std::path::PathBuf::from(var("STORE_DIR"));
    crate::support::runtime().block_on(async {
        let store = open(&dir);
        let cfg = config(&store, &clock());
        request(&cfg, None, |s| s.set_user_id("alice"))
            .await
            .cookie();
    });
}

#[test]
fn directory_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let (tmp, dir) = temp();
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
    symlink(&target, &dir).unwrap();
    let err = FilesystemBackend::open(&dir).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing created"
    );

    // A symlink in place of a subdirectory is refused the same way.
    let (_tmp2, dir2) = temp();
    FilesystemBackend::open(&dir2).unwrap();
    std::fs::remove_dir(dir2.join("locks")).unwrap();
    symlink(&target, dir2.join("locks")).unwrap();
    let err = FilesystemBackend::open(&dir2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing created"
    );
}

#[test]
fn foreign_open_or_wrong_kind_of_directory_is_refused() {
    let (tmp, dir) = temp();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = FilesystemBackend::open(&dir).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("755"), "{err}");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o755,
        "never chmod-ed"
    );

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(4242), Some(4242)).unwrap();
    let err = FilesystemBackend::open(&dir).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("4242"), "{err}");

    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = FilesystemBackend::open(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn replacing_the_directory_after_open_redirects_nothing() {
    // Every operation goes through descriptors opened once, not through the path.
    let (tmp, dir, _clock, store, cfg) = fixture();
    let moved = tmp.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    let decoy = tmp.path().join("decoy");
    std::fs::create_dir(&decoy).unwrap();
    symlink(&decoy, &dir).unwrap();
    let id = request(&cfg, None, |s| s.insert("a", 1).unwrap())
        .await
        .cookie();
    assert!(session_file(&moved, &storage_key(&store, &id)).is_file());
    assert_eq!(std::fs::read_dir(&decoy).unwrap().count(), 0);
}

#[tokio::test]
async fn symlink_at_a_session_path_is_never_followed() {
    let (tmp, dir, _clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("a", 1).unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id);
    let path = session_file(&dir, &key);
    // The target is a perfectly valid session file, moved out of the directory.
    let target = tmp.path().join("outside");
    std::fs::rename(&path, &target).unwrap();
    let original = std::fs::read(&target).unwrap();
    symlink(&target, &path).unwrap();

    let (events, _guard) = Events::capture();
    let reply = request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("a").unwrap(), None);
        s.insert("b", 2).unwrap();
    })
    .await;
    assert!(reply.was_new, "fresh session");
    assert_ne!(reply.cookie(), id, "new id, never the old one");
    let about = events.about(&key);
    assert_eq!(about[0].field("reason"), Some("untrusted"), "{about:?}");
    assert_eq!(about[0].field("detail"), Some("symlink"));

    // Writing paths refuse too; a remove deletes the link itself, never its target.
    assert!(store.backend().update_is_none(&key).await);
    symlink(&target, &path).unwrap();
    assert_eq!(store.backend().remove(&key).await.unwrap(), None);
    assert!(std::fs::symlink_metadata(&path).is_err(), "link removed");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        original,
        "target untouched"
    );
}

#[tokio::test]
async fn symlink_at_the_temporary_path_is_removed_not_followed() {
    let (tmp, dir, _clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("a", 1).unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id);
    let target = tmp.path().join("victim");
    std::fs::write(&target, b"precious").unwrap();
    let tmp_path = dir.join("sessions").join(format!("{}.tmp", key.to_hex()));
    symlink(&target, &tmp_path).unwrap();
    request(&cfg, Some(&id), |s| s.insert("a", 2).unwrap())
        .await
        .result
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&tmp_path).is_err());
    request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<i32>("a").unwrap(), Some(2));
    })
    .await;
}

/// A test-only extension: an update with an empty change set, `true` if it found no session.
trait UpdateProbe {
    async fn update_is_none(&self, key: &StorageKey) -> bool;
}

impl UpdateProbe for FilesystemBackend {
    async fn update_is_none(&self, key: &StorageKey) -> bool {
        let now = fastsession_core::time::UnixTime::from_secs(crate::support::T0);
        let from = fastsession_core::session::Record::new(now);
        let changes = fastsession_core::session::ChangeSet::default();
        let expiry = crate::support::expiry();
        let update = fastsession_core::store::Update::new(&changes, &from, now, &expiry);
        !self.update(key, update).await.unwrap()
    }
}

/// The checksum the file format uses, to forge files that pass it.
fn checksum(key: &StorageKey, head: &[u8], body: &[u8]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(head)
        .chain_update(body)
        .finalize();
    digest[..16].try_into().unwrap()
}

/// `valid` with its body replaced and the length and checksum fixed up.
fn reforge(key: &StorageKey, valid: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = valid[..36].to_vec();
    out[16..20].copy_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    let sum = checksum(key, &out[..20], body);
    out[20..36].copy_from_slice(&sum);
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn corrupt_files_give_a_fresh_session_and_an_event() {
    // Case 63, and the file format pinned: forging a file with a matching checksum must
    // reproduce exactly what the store wrote.
    let (_tmp, dir, _clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("token", "s3cr3t-marker").unwrap())
        .await
        .cookie();
    let key = storage_key(&store, &id);
    let path = session_file(&dir, &key);
    let valid = std::fs::read(&path).unwrap();
    assert_eq!(&valid[..5], b"FSSN\x01");
    assert_eq!(reforge(&key, &valid, &valid[36..]), valid);

    let mut cases: Vec<(String, Vec<u8>, &str)> = vec![
        ("empty".into(), Vec::new(), "truncated"),
        ("magic only".into(), b"FSSN".to_vec(), "truncated"),
        ("header only".into(), valid[..36].to_vec(), "truncated"),
        (
            "trailing byte".into(),
            [&valid[..], b"\n"].concat(),
            "trailing bytes",
        ),
        (
            "text".into(),
            b"{\"token\":\"x\"}".to_vec(),
            "not a session file",
        ),
        (
            "wrong version".into(),
            [&b"FSSN\x02"[..], &valid[5..]].concat(),
            "unknown format version",
        ),
        (
            "reserved bits".into(),
            [&valid[..5], b"\x01", &valid[6..]].concat(),
            "unknown format version",
        ),
        (
            "truncated JSON".into(),
            reforge(&key, &valid, &valid[36..valid.len() - 3]),
            "undecodable record",
        ),
        (
            "JSON array".into(),
            reforge(&key, &valid, &[&valid[36..53], b"[]"].concat()),
            "undecodable record",
        ),
        (
            "unknown flags".into(),
            reforge(&key, &valid, &[&[0x80], &valid[37..]].concat()),
            "undecodable record",
        ),
    ];
    let mut rng = Rng::new(63);
    for len in [1, 17, 36, 37, 100, 4096] {
        let mut bytes = rng.bytes(len);
        if len > 5 && rng.below(2) == 0 {
            bytes[..5].copy_from_slice(b"FSSN\x01"); // get past the magic
        }
        cases.push((format!("{len} random bytes"), bytes, ""));
    }
    for _ in 0..24 {
        let at = rng.below(valid.len());
        let mut flipped = valid.clone();
        flipped[at] ^= 1 << rng.below(8);
        cases.push((format!("bit flip at {at}"), flipped, ""));
    }
    for len in 0..valid.len() {
        cases.push((format!("truncated to {len}"), valid[..len].to_vec(), ""));
    }

    let (events, _guard) = Events::capture();
    for (name, bytes, detail) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let reply = request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<String>("token").unwrap(), None, "{name}");
        })
        .await;
        assert!(reply.was_new, "{name}");
        reply.result.unwrap();
        let about = events.about(&key);
        assert_eq!(about.len(), 1, "{name}: {about:?}");
        assert_eq!(about[0].field("reason"), Some("corrupt"), "{name}");
        if !detail.is_empty() {
            assert_eq!(about[0].field("detail"), Some(detail), "{name}");
        }
        events.clear();
    }
    events.assert_no_leak("s3cr3t");

    // The reaper removes what is left.
    let later = fastsession_core::time::UnixTime::from_secs(crate::support::T0 + 10_000);
    assert_eq!(store.reap(later, 10).await.unwrap(), 1);
    assert!(!path.exists());
}

#[tokio::test]
async fn foreign_fifo_directory_and_oversized_entries_are_untrusted() {
    let (_tmp, dir, _clock, store, cfg) = fixture();
    let (events, _guard) = Events::capture();

    let check = async |plant: &dyn Fn(&Path), reason: &str, detail: &str| {
        let id = request(&cfg, None, |s| s.insert("a", 1).unwrap())
            .await
            .cookie();
        let key = storage_key(&store, &id);
        let path = session_file(&dir, &key);
        plant(&path);
        // Bounded in time: a FIFO must not block the open.
        let reply = tokio::time::timeout(Duration::from_secs(5), request(&cfg, Some(&id), |_| {}))
            .await
            .expect("no hang");
        assert!(reply.was_new, "{detail}");
        let about = events.about(&key);
        assert_eq!(about.len(), 1, "{about:?}");
        assert_eq!(about[0].field("reason"), Some(reason));
        assert_eq!(about[0].field("detail"), Some(detail));
        events.clear();
    };
    check(
        &|p| std::os::unix::fs::chown(p, Some(4242), None).unwrap(),
        "untrusted",
        "owned by another user",
    )
    .await;
    check(
        &|p| {
            std::fs::remove_file(p).unwrap();
            rustix::fs::mkfifoat(rustix::fs::CWD, p, Mode::from_raw_mode(0o600)).unwrap();
        },
        "untrusted",
        "not a regular file",
    )
    .await;
    check(
        &|p| {
            std::fs::remove_file(p).unwrap();
            std::fs::create_dir(p).unwrap();
        },
        "untrusted",
        "not a regular file",
    )
    .await;
    check(
        &|p| {
            let mut bytes = std::fs::read(p).unwrap();
            bytes.resize(fastsession_fs::DEFAULT_MAX_RECORD_SIZE + 1, b' ');
            std::fs::write(p, bytes).unwrap();
        },
        "corrupt",
        "oversized",
    )
    .await;
}
