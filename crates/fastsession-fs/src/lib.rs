//! A [fastsession](https://docs.rs/fastsession) store that keeps sessions in files: durable
//! across restarts, crash-safe, symlink-proof, and safe to share between processes.
//!
//! [`FilesystemStore`] is a [`ServerStore`] over a [`FilesystemBackend`]: the cookie holds only
//! the session id, the file is named by a keyed hash of it, and every store guarantee holds
//! across processes (concurrent requests changing different keys both persist, a destroyed
//! or regenerated session is never brought back). See [`FilesystemBackend`] for the layout,
//! durability, locking and failure behaviour. Unix only.
//!
//! Sessions without a user id, which anyone can create, live in an
//! [`AnonymousBudget`](fastsession_core::store::AnonymousBudget) (by default 100 000 sessions,
//! 64 MiB of data; set it with [`FilesystemBackend::with_anonymous_budget`]): when it is full,
//! a new one evicts the least recently active anonymous session, never a logged-in session nor
//! a revocation marker of one. With one process the bound holds. Processes sharing the
//! directory each count by their own index, refreshed by their reaper passes, so the directory
//! can exceed the budget by the anonymous sessions the others created since a process's last
//! pass (at worst about the budget per process) until that process's next pass. See
//! [Anonymous sessions](FilesystemBackend#anonymous-sessions).
//!
//! # Example
//!
//! ```
//! use fastsession::Key;
//! use fastsession::{CookieConfig, SessionConfig, Sessions};
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! // Keep the key stable (load it from your secrets): it locates the session files.
//! let key = Key::generate()?;
//! let store = fastsession::fs::filesystem_store(dir.path().join("sessions"), &key)?;
//! let config = SessionConfig::new(store, CookieConfig::new("id")?);
//!
//! let sessions = Sessions::new(&http::HeaderMap::new());
//! sessions.get(&config).await?.insert("name", "gopher")?;
//! let mut response = http::HeaderMap::new();
//! sessions.save_all(&mut response).await?;
//!
//! let set_cookie = response["set-cookie"].to_str()?;
//! let pair = set_cookie.split(';').next().unwrap_or_default();
//! let mut next = http::HeaderMap::new();
//! next.insert("cookie", pair.parse()?);
//! let session = Sessions::new(&next).get(&config).await?;
//! assert_eq!(session.get::<String>("name")?.as_deref(), Some("gopher"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(unix)]
mod anonymous;
#[cfg(unix)]
mod backend;
#[cfg(unix)]
mod dir;
#[cfg(unix)]
mod format;

#[cfg(unix)]
pub use backend::{DEFAULT_MAX_RECORD_SIZE, FilesystemBackend};

use fastsession_core::store::ServerStore;

/// A server-side store whose sessions live in files, one per session.
///
/// Make one with [`filesystem_store`], or with [`ServerStore::with_backend`] to choose the
/// id-hashing key's derivation or the [`FilesystemBackend`] settings yourself.
///
/// # Examples
///
/// ```
/// use fastsession::Key;
/// use fastsession::codec::IdHasher;
/// use fastsession::store::ServerStore;
/// use fastsession::fs::{FilesystemBackend, FilesystemStore};
///
/// let dir = tempfile::tempdir()?;
/// let store: FilesystemStore =
///     ServerStore::with_backend(FilesystemBackend::open(dir.path().join("s"))?, IdHasher::new(&Key::generate()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(unix)]
pub type FilesystemStore = ServerStore<FilesystemBackend>;

/// Returns a [`FilesystemStore`] in `dir` (created with mode 0700 if missing), hashing session ids
/// under a sub-key of `key`.
///
/// Keep `key` stable across restarts: the files are named by the hashes it makes, so with
/// another key every stored session is unreachable (and later reaped). It may be the cookie
/// key ring's active key; the store derives its own purpose-bound sub-key from it.
///
/// # Errors
///
/// As [`FilesystemBackend::open`].
///
/// # Examples
///
/// ```
/// use fastsession::Key;
///
/// let dir = tempfile::tempdir()?;
/// let store = fastsession::fs::filesystem_store(dir.path().join("sessions"), &Key::generate()?)?;
/// assert!(dir.path().join("sessions").is_dir());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(unix)]
pub fn filesystem_store(
    dir: impl AsRef<std::path::Path>,
    key: &fastsession_core::codec::Key,
) -> fastsession_core::Result<FilesystemStore> {
    Ok(ServerStore::with_backend(
        FilesystemBackend::open(dir)?,
        fastsession_core::codec::IdHasher::new(key),
    ))
}

pub use fastsession_core::store::spawn_reaper;
