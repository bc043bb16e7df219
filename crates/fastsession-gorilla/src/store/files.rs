//! The files and ids of gorilla/sessions' `FilesystemStore`, as Go writes them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use fastsession_core::Error as CoreError;

use super::CoreResult;

/// The most a gorilla `FilesystemStore` file may hold (Go's own limit is the codec's maximum
/// length, 4096 by default).
const MAX_FILE_LEN: u64 = 1 << 20;

/// A gorilla `FilesystemStore` id: unpadded base32 (52 characters for its 32 random bytes).
/// Anything else, a path separator or `..` above all, never reaches the file system.
pub(super) fn is_gorilla_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Go's `strings.TrimRight(base32.StdEncoding.EncodeToString(bytes), "=")`: the id
/// `FilesystemStore.Save` gives a new session.
pub(super) fn gorilla_id(bytes: &[u8; 32]) -> String {
    let mut id = String::with_capacity(52);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            id.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        id.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    id
}

/// The 32 bytes of an id [`gorilla_id`] writes, `None` for any other text.
pub(super) fn gorilla_id_bytes(id: &str) -> Option<[u8; 32]> {
    if id.len() != 52 {
        return None;
    }
    let mut bytes = [0u8; 32];
    let (mut buffer, mut bits, mut at) = (0u32, 0u32, 0);
    for c in id.bytes() {
        let digit = BASE32.iter().position(|&d| d == c)?;
        buffer = (buffer << 5) | u32::try_from(digit).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *bytes.get_mut(at)? = u8::try_from((buffer >> bits) & 0xff).ok()?;
            at += 1;
            buffer &= (1 << bits) - 1;
        }
    }
    // The last character's 4 spare bits are zero in Go's ids.
    (buffer == 0 && at == 32).then_some(bytes)
}

/// The file's bytes, `None` if there is no such file, at most [`MAX_FILE_LEN`] of them (a
/// longer file is an error). Blocking I/O runs on Tokio's blocking pool when there is one.
pub(super) async fn read_small_file(path: PathBuf) -> CoreResult<Option<Vec<u8>>> {
    blocking(move || read_bounded(&path))
        .await
        .map_err(|e| CoreError::store("gorilla filesystem: cannot read a session file", e))
}

/// [`read_small_file`], blocking.
fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut content = Vec::new();
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut content)?;
    if content.len() as u64 > MAX_FILE_LEN {
        return Err(io::Error::other("gorilla session file is too large"));
    }
    Ok(Some(content))
}

/// Writes `content` to `path` through a new temporary file (mode 0600) in the same directory
/// and a rename, so that a reader sees the old file or the new one, never a part of one. With
/// `existing`, only while `path` exists (`Ok(false)` otherwise): a save must not bring back a
/// session that another request ended. `lock` orders that check and the rename against
/// [`remove_session_file`].
pub(super) fn put_file(
    path: &Path,
    content: &[u8],
    existing: bool,
    lock: &Mutex<()>,
) -> io::Result<bool> {
    let temp = write_temp(path, content)?;
    let renamed = {
        let _order = lock.lock().unwrap_or_else(PoisonError::into_inner);
        match exists(path) {
            Ok(false) if existing => Ok(false),
            Ok(_) => std::fs::rename(&temp, path).map(|()| true),
            Err(e) => Err(e),
        }
    };
    if !matches!(renamed, Ok(true)) {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

/// Replaces the file at `path` with `reseal` of its current content, under `lock` so that no
/// other write of this process comes between the read and the rename; `Ok(false)` if there
/// is no file or `reseal` refuses its content.
pub(super) fn reseal_file(
    path: &Path,
    lock: &Mutex<()>,
    reseal: impl FnOnce(&[u8]) -> Option<String>,
) -> io::Result<bool> {
    let _order = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(content) = read_bounded(path)?.and_then(|content| reseal(&content)) else {
        return Ok(false);
    };
    let temp = write_temp(path, content.as_bytes())?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    Ok(true)
}

/// A new file (mode 0600) beside `path` holding `content`, for a rename over `path`.
fn write_temp(path: &Path, content: &[u8]) -> io::Result<PathBuf> {
    use std::io::Write as _;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(io::Error::other)?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // A name no cookie can ask for: ids never hold '.'.
    let temp = path.with_file_name(format!(".{file_name}.{suffix}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    // No fsync: Go's `WriteFile` has none either, and a session is not worth one per save.
    if let Err(e) = file.write_all(content) {
        drop(file);
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(temp)
}

/// Deletes a session file; `false` if there was none.
pub(super) fn remove_session_file(path: &Path, lock: &Mutex<()>) -> io::Result<bool> {
    let _order = lock.lock().unwrap_or_else(PoisonError::into_inner);
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs blocking file I/O on Tokio's blocking pool, or inline outside a Tokio runtime.
pub(super) async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(job).await.map_err(io::Error::other)?,
        Err(_) => job(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_go_s_base32_and_read_back() {
        // Go's FilesystemStore id for the random bytes 0, 1, ..., 31 (the vectors' counter).
        let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        let id = gorilla_id(&bytes);
        assert_eq!(id, "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ");
        assert!(is_gorilla_id(&id));
        assert_eq!(gorilla_id_bytes(&id), Some(bytes));
        assert_eq!(gorilla_id_bytes(&gorilla_id(&[0xff; 32])), Some([0xff; 32]));
        // Spare bits set, another length, or not base32: not one of Go's 32-byte ids.
        for other in [
            "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPR",
            "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYP",
            "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq",
            "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DY1Q",
        ] {
            assert_eq!(gorilla_id_bytes(other), None, "{other}");
        }
    }

    #[test]
    fn a_file_is_replaced_whole_and_only_while_it_exists_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (path, lock) = (dir.path().join("session_A"), Mutex::new(()));
        let put = |content: &[u8], existing| put_file(&path, content, existing, &lock);
        assert!(!put(b"late", true).unwrap());
        assert!(!path.exists(), "an ended session is not brought back");
        assert!(put(b"first", false).unwrap());
        assert!(put(b"second", true).unwrap());
        assert_eq!(std::fs::read(&path).ok().as_deref(), Some(&b"second"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["session_A"], "no temporary file left behind");
        assert!(remove_session_file(&path, &lock).unwrap());
        assert!(!remove_session_file(&path, &lock).unwrap());
    }
}
