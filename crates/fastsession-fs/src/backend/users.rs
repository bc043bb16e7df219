//! The user index: `users/<sha256(user)>/<key>` links, made, removed, listed, and swept of
//! links to sessions that are gone.

use std::os::fd::AsFd as _;

use fastsession_core::Result;
use fastsession_core::store::StorageKey;
use sha2::{Digest as _, Sha256};

use super::{Inner, io_error};
use crate::dir;

fn user_dir_name(user: &str) -> String {
    let digest = Sha256::digest(user.as_bytes());
    StorageKey::from_bytes(digest.into()).to_hex()
}

impl Inner {
    pub(super) fn link(&self, user: &str, key: &StorageKey) -> Result<()> {
        let users = self.dirs.users.as_fd();
        let dir_name = user_dir_name(user);
        let (dir, created, linked) = {
            // The reaper removes an empty user directory only under this lock, so the
            // directory made or found here is still there when the link goes in.
            let _lock = dir::lock_user_dir(self.dirs.locks.as_fd(), &dir_name)
                .map_err(io_error("lock a user directory"))?;
            let (dir, created) =
                dir::sub_dir(users, &dir_name).map_err(io_error("create a user directory"))?;
            let linked = dir::touch_new(dir.as_fd(), &key.to_hex())
                .map_err(io_error("link a session to its user"))?;
            (dir, created, linked)
        };
        // Durable: "log out everywhere" must find every session after a crash too. Synced
        // after the lock: a directory holding a link is never removed.
        if created {
            dir::sync_dir(users).map_err(io_error("sync the user directory"))?;
        }
        if linked {
            dir::sync_dir(&dir).map_err(io_error("sync a user directory"))?;
        }
        Ok(())
    }

    pub(super) fn unlink(&self, user: &str, key: &StorageKey) -> Result<()> {
        let Some(dir) = dir::existing_sub_dir(self.dirs.users.as_fd(), &user_dir_name(user))
            .map_err(io_error("open a user directory"))?
        else {
            return Ok(());
        };
        // No sync: a link that comes back after a crash is stale, and readers check records.
        dir::remove(dir.as_fd(), &key.to_hex())
            .map_err(io_error("unlink a session from its user"))?;
        Ok(())
    }

    pub(super) fn user_keys(&self, user: &str) -> Result<Vec<StorageKey>> {
        let Some(dir) = dir::existing_sub_dir(self.dirs.users.as_fd(), &user_dir_name(user))
            .map_err(io_error("open a user directory"))?
        else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        for name in dir::entries(dir.as_fd()).map_err(io_error("list a user directory"))? {
            let name = name.map_err(io_error("list a user directory"))?;
            keys.extend(StorageKey::from_hex(&name));
        }
        keys.sort_unstable();
        Ok(keys)
    }

    /// Removes up to `limit` links to sessions that no longer exist, and emptied user
    /// directories.
    pub(super) fn sweep_links(&self, limit: usize) -> Result<()> {
        let users = self.dirs.users.as_fd();
        let sessions = self.dirs.sessions.as_fd();
        let mut removed = 0;
        for user in dir::entries(users).map_err(io_error("list the user directory"))? {
            if removed >= limit {
                break;
            }
            let user = user.map_err(io_error("list the user directory"))?;
            if StorageKey::from_hex(&user).is_none() {
                // Not a directory this store made.
                continue;
            }
            let Some(dir) =
                dir::existing_sub_dir(users, &user).map_err(io_error("open a user directory"))?
            else {
                continue;
            };
            let mut kept = false;
            for link in dir::entries(dir.as_fd()).map_err(io_error("list a user directory"))? {
                let link = link.map_err(io_error("list a user directory"))?;
                let Some(key) = StorageKey::from_hex(&link) else {
                    kept = true;
                    continue;
                };
                let live =
                    || dir::exists(sessions, &link).map_err(io_error("look up a session file"));
                if removed >= limit || live()? {
                    kept = true;
                    continue;
                }
                // Under the key's lock, since a create links before it writes the session.
                let _lock = self.lock(&key)?;
                if live()? {
                    kept = true;
                    continue;
                }
                dir::remove(dir.as_fd(), &link).map_err(io_error("remove a stale user link"))?;
                removed += 1;
            }
            if !kept {
                // Under the lock `link` holds from making the directory to linking in it;
                // fails harmlessly if a link went in meanwhile.
                let _lock = dir::lock_user_dir(self.dirs.locks.as_fd(), &user)
                    .map_err(io_error("lock a user directory"))?;
                dir::remove_empty_dir(users, &user).map_err(io_error("remove a user directory"))?;
            }
        }
        Ok(())
    }
}
