//! An [`IdSource`] the checks control, to make new ids collide with stored ones.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::Result;
use crate::session::SessionId;
use crate::store::IdSource;

/// New session ids from a script: queued ids first, then fresh ones from the OS CSPRNG.
///
/// Clones share the script, so a check keeps one clone and gives the other to the store (for a
/// [`ServerStore`](crate::store::ServerStore), with
/// [`with_id_source`](crate::store::ServerStore::with_id_source)). With it the check makes a
/// new session draw the id of an existing one (security case 29) and verifies that the store
/// retries instead of overwriting.
///
/// # Examples
///
/// ```
/// use fastsession::session::SessionId;
/// use fastsession::store::IdSource;
/// use fastsession::testing::ScriptedIds;
///
/// let ids = ScriptedIds::new();
/// let existing = SessionId::generate()?;
/// ids.push(existing.clone());
/// assert_eq!(ids.generate()?, existing);
/// assert_ne!(ids.generate()?, existing); // the script ran out: fresh ids again
/// assert_eq!(ids.drawn(), 2);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ScriptedIds {
    script: Arc<Mutex<Script>>,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<SessionId>,
    repeat: Option<SessionId>,
    drawn: usize,
}

impl ScriptedIds {
    /// Returns a source that returns fresh random ids until told otherwise.
    #[must_use]
    pub fn new() -> Self {
        ScriptedIds::default()
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `id` to be returned by a coming draw (after the ones already queued).
    pub fn push(&self, id: SessionId) {
        self.script().queue.push_back(id);
    }

    /// Makes every draw return `id` (once the queue is empty), or, with `None`, fresh ids again.
    pub fn repeat(&self, id: Option<SessionId>) {
        self.script().repeat = id;
    }

    /// How many ids were drawn so far.
    #[must_use]
    pub fn drawn(&self) -> usize {
        self.script().drawn
    }
}

impl IdSource for ScriptedIds {
    fn generate(&self) -> Result<SessionId> {
        let mut script = self.script();
        script.drawn += 1;
        if let Some(id) = script.queue.pop_front() {
            return Ok(id);
        }
        match &script.repeat {
            Some(id) => Ok(id.clone()),
            None => SessionId::generate(),
        }
    }
}

impl fmt::Debug for ScriptedIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let script = self.script();
        f.debug_struct("ScriptedIds")
            .field("queued", &script.queue.len())
            .field("repeating", &script.repeat.is_some())
            .field("drawn", &script.drawn)
            .finish()
    }
}
