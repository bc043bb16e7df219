//! The save path of [`Sessions`]: which sessions a request saves, how, and the `Set-Cookie`
//! lines their saves queue.

use http::HeaderValue;

use super::cookies::parse_id;
use super::response::Line;
use super::{SessionConfig, Sessions};
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Action, ChangeSet, Record, Session, SessionId, State};
use crate::store::{CookieContent, LoadRequest, Memo, SaveKind, SaveRequest, Saved};
use crate::time::UnixTime;
use smallvec::SmallVec;

impl Sessions {
    /// Ends every authentic session among `values`, the duplicated values of the cookie of
    /// `config` that a request destroying its session carried: the user meant to log out of
    /// whichever the browser sent.
    async fn end_presented(&self, config: &SessionConfig, values: &[Box<str>]) -> Result<()> {
        let (store, name, expiry) = (config.store(), config.cookie().name(), config.expiry());
        let now = config.clock().now();
        for value in values {
            let id = match store.cookie_content() {
                CookieContent::SessionId => match parse_id(config, value) {
                    Ok((id, _)) => Some(id),
                    Err(_) => continue,
                },
                _ => None,
            };
            let value = id.as_ref().map_or(&**value, SessionId::as_str);
            let request = LoadRequest::new(name, value, id.as_ref(), expiry, now);
            let (Ok(record), ..) = store.load(request).await?.into_parts() else {
                continue;
            };
            let changes = ChangeSet::default();
            let end = SaveRequest::new(name, SaveKind::Destroy, &record, &changes, expiry, now);
            // A session another request ended meanwhile is as good as ended here.
            match store.save(end).await {
                Ok(_) => {}
                Err(e) if e.is_session_ended() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The destroyed sessions of this request whose cookie came more than once, with those
    /// values, taken so that they are ended once.
    fn take_presented(&self) -> Vec<(SessionConfig, Vec<Box<str>>)> {
        let mut out = Vec::new();
        for (config, session) in self.with_presented() {
            // The session is locked with the registry released: saves lock them the other way.
            if session.is_destroyed()
                && let Some(entry) = self.lock().entry_mut(config.cookie().name())
            {
                out.push((config, std::mem::take(&mut entry.presented)));
            }
        }
        out
    }

    /// The sessions whose cookie came more than once (usually none: nothing allocated).
    fn with_presented(&self) -> Vec<(SessionConfig, Session)> {
        self.lock()
            .entries
            .as_slice()
            .iter()
            .filter(|e| !e.presented.is_empty())
            .map(|e| (e.config.clone(), e.session.clone()))
            .collect()
    }

    /// Saves every session that needs it: modified ones, ones due for an expiry refresh, ones
    /// sealed with a retired key. Their `Set-Cookie` lines wait for
    /// [`write_headers`](Self::write_headers). Unmodified sessions cost no store I/O.
    ///
    /// Adapters call it (through [`finish`](Self::finish)) after a successful
    /// handler; a handler may call it itself to commit before the response is built.
    ///
    /// # Errors
    ///
    /// The first error among the sessions (all are attempted):
    /// [`ErrorKind::CookieTooLarge`] (that session's cookie is not set),
    /// [`ErrorKind::SessionEnded`] (its cookie is cleared), or a store error.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    /// use http::HeaderMap;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&HeaderMap::new());
    /// sessions.get(&config).await?.set_user_id("ada");
    /// // Commit the login before answering (a store error is still the handler's to report).
    /// sessions.save().await?;
    /// let mut response = HeaderMap::new();
    /// sessions.write_headers(&mut response);
    /// assert!(response.contains_key("set-cookie"));
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn save(&self) -> Result<()> {
        self.save_as(Reach::Shared).await
    }

    /// [`save`](Self::save), by a caller that may know nothing else can reach the sessions.
    pub(super) async fn save_as(&self, reach: Reach) -> Result<()> {
        let mut first_error = None;
        let (to_save, any_presented) = self.to_save();
        if any_presented {
            for (config, values) in self.take_presented() {
                // Rare, and larger than a save: boxed, so that every request's future (which
                // an adapter may box) stays the size of a save.
                if let Err(e) = Box::pin(self.end_presented(&config, &values)).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        for (config, session, had_cookie) in to_save {
            // The registry's entry and `session`: no handle anywhere else.
            let reach = match reach {
                Reach::Sole if session.handle_count() == 2 => Reach::Sole,
                _ => Reach::Shared,
            };
            if let Err(e) = self.save_one(&config, &session, had_cookie, reach).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The sessions to save, in cookie-name order, copied so that no save runs while the
    /// registry is locked; and whether any of their cookies came more than once.
    fn to_save(&self) -> (ToSave, bool) {
        let registry = self.lock();
        let entries = registry.entries.as_slice();
        let any_presented = entries.iter().any(|e| !e.presented.is_empty());
        let to_save = entries
            .iter()
            .map(|e| (e.config.clone(), e.session.clone(), e.had_cookie))
            .collect();
        (to_save, any_presented)
    }

    /// Saves one session, and then what was written to it after a `destroy`, as a new one.
    ///
    /// The session is not held during the store's work: the save takes a copy of its record
    /// and its change set, so that a handle still in use elsewhere goes on working, and what
    /// it changes meanwhile stays for the next save. A session nothing else can reach
    /// ([`Reach::Sole`]) lends its record instead of a copy.
    async fn save_one(
        &self,
        config: &SessionConfig,
        session: &Session,
        mut had_cookie: bool,
        reach: Reach,
    ) -> Result<()> {
        loop {
            let Some(save) = self.begin_save(config, session, had_cookie, reach) else {
                return Ok(());
            };
            let mut request = SaveRequest::new(
                config.cookie().name(),
                save.kind,
                &save.record,
                &save.changes,
                config.expiry(),
                save.now,
            )
            .with_memo(save.memo.as_ref());
            if save.kind == SaveKind::Regenerate {
                // The old id ends at a regeneration: the store must know before whether the
                // new cookie fits.
                let overhead = config
                    .cookie()
                    .line_for("", save.record.is_persistent())
                    .len()
                    + config.signed_id_overhead();
                request = request.with_max_cookie_value_len(
                    config.max_set_cookie_len().saturating_sub(overhead),
                );
            }
            let saved = config.store().save(request).await;
            let mut state = session.lock();
            let persistent = save.record.is_persistent();
            if let Some(last_active) = save.lent {
                // Back as it was before the save; the outcome applies to it below.
                let mut record = save.record;
                record.set_last_active(last_active);
                state.record = record;
            }
            if let Err(e) = self.apply_outcome(config, &mut state, saved, persistent, save.now) {
                if !e.is_session_ended() {
                    // Nothing was saved: what was sent is still to send, before what came since.
                    state.changes.put_back(save.changes);
                    drop(state);
                    if let Some(entry) = self.lock().entry_mut(config.cookie().name()) {
                        entry.memo = save.memo;
                    }
                }
                return Err(e);
            }
            if !state.is_carried() {
                return Ok(());
            }
            // A destroyed session with what was written after `destroy`: now a new one.
            had_cookie = false;
        }
    }

    /// What the save of this session needs, taken from it, or `None` if it needs no save.
    fn begin_save(
        &self,
        config: &SessionConfig,
        session: &Session,
        had_cookie: bool,
        reach: Reach,
    ) -> Option<PendingSave> {
        let now = config.clock().now();
        let mut state = session.lock();
        if state.is_new_and_written_after_destroy() {
            // Never saved, so nothing to end but the cookie it came with.
            if had_cookie {
                self.queue_removal(config.cookie().name(), config.cookie().removal());
            }
            state.begin_anew(now);
        }
        let kind = self.save_kind(config, &state, had_cookie, now)?;
        let (mut record, lent) = match reach {
            Reach::Sole => {
                let record = std::mem::replace(&mut state.record, Record::new(now));
                let last_active = record.last_active();
                (record, Some(last_active))
            }
            Reach::Shared => (state.record.clone(), None),
        };
        record.set_last_active(now);
        let changes = std::mem::take(&mut state.changes);
        drop(state);
        let memo = self
            .lock()
            .entry_mut(config.cookie().name())
            .and_then(|e| e.memo.take());
        Some(PendingSave {
            kind,
            now,
            record,
            lent,
            changes,
            memo,
        })
    }

    /// What a save of this session must do, or `None` if it needs none (an unmodified
    /// session, or a new one destroyed before it was ever saved).
    fn save_kind(
        &self,
        config: &SessionConfig,
        state: &State,
        had_cookie: bool,
        now: UnixTime,
    ) -> Option<SaveKind> {
        match (state.action, state.is_new) {
            (Action::Destroy, true) => {
                if had_cookie {
                    self.queue_removal(config.cookie().name(), config.cookie().removal());
                }
                None
            }
            (Action::Destroy, false) => Some(SaveKind::Destroy),
            (Action::Regenerate, false) => Some(SaveKind::Regenerate),
            (_, true) if state.action == Action::Regenerate || !state.changes.is_empty() => {
                Some(SaveKind::Create)
            }
            (_, true) => None,
            (_, false) if !state.changes.is_empty() => Some(SaveKind::Update),
            (_, false) if state.reseal || config.expiry().needs_refresh(&state.record, now) => {
                Some(SaveKind::Touch)
            }
            (_, false) => None,
        }
    }

    /// Applies a save's outcome to the session and queues its header. `persistent` is what
    /// was saved.
    fn apply_outcome(
        &self,
        config: &SessionConfig,
        state: &mut State,
        saved: Result<Saved>,
        persistent: bool,
        now: UnixTime,
    ) -> Result<()> {
        let name = config.cookie().name();
        let (mut value, mut id) = match saved {
            Ok(Saved::Cookie { value, id }) => (value, id),
            Ok(Saved::Remove) => {
                self.queue_removal(name, config.cookie().removal());
                // What the handler wrote after `destroy` goes to a new session, saved next.
                state.begin_anew(now);
                return Ok(());
            }
            Err(e) => {
                if e.is_session_ended() {
                    self.queue_removal(name, config.cookie().removal());
                    *state = State::fresh(now);
                }
                return Err(e);
            }
        };
        if let Some(signer) = config.id_signer() {
            let signed = id
                .take()
                .or_else(|| SessionId::parse(&value))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Internal,
                        "a store of session ids returned a cookie value that is not a session id",
                    )
                })?;
            value = signer.sign(name, signed.as_bytes());
            id = Some(signed);
        }
        // A session with a deadline of its own gets a cookie that ends with it.
        let line = match state.record.expires_at() {
            Some(_) if persistent => {
                let max_age =
                    config
                        .expiry()
                        .cookie_max_age(&state.record, now, config.cookie().max_age());
                config
                    .cookie()
                    .persistent_cookie_line_until(&value, max_age)
            }
            _ => config.cookie().line_for(&value, persistent),
        };
        let limit = config.max_set_cookie_len();
        if line.len() > limit {
            return Err(Error::new(
                ErrorKind::CookieTooLarge {
                    size: line.len(),
                    limit,
                },
                format!("session cookie `{name}` not set"),
            ));
        }
        self.queue_line(name, line, Line::Sets);
        state.record.set_last_active(now);
        state.record.set_id(id);
        state.is_new = false;
        state.reseal = false;
        if state.action == Action::Regenerate {
            state.action = Action::Keep;
        }
        Ok(())
    }

    /// Queues a `Set-Cookie` line built for this response, without copying it.
    fn queue_line(&self, name: &str, line: String, kind: Line) {
        match HeaderValue::from_maybe_shared(bytes::Bytes::from(line)) {
            Ok(mut value) => {
                value.set_sensitive(true);
                // Only the sessions of this registry are saved.
                if let Some(entry) = self.lock().entry_mut(name) {
                    entry.pending = Some((value, kind));
                }
            }
            Err(_) => {
                tracing::error!(target: "fastsession", cookie = name, "Set-Cookie line is not a valid header")
            }
        }
    }

    /// Queues the line that clears the cookie of an ended session.
    fn queue_removal(&self, name: &str, line: &str) {
        self.queue_line(name, line.to_owned(), Line::Clears);
    }
}

/// The sessions of a request to save: config, handle, and whether the request had its cookie.
type ToSave = SmallVec<[(SessionConfig, Session, bool); 1]>;

/// A save taken from a session: the kind of save due, the time it was decided at, and what
/// the store gets.
struct PendingSave {
    kind: SaveKind,
    now: UnixTime,
    record: Record,
    /// `Some` (with its last activity before the save) if `record` is the session's own,
    /// lent for the save, to be put back.
    lent: Option<UnixTime>,
    changes: ChangeSet,
    memo: Option<Memo>,
}

/// Who else may reach the sessions during a save.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// Other handles may exist: the save works on a copy of each record.
    Shared,
    /// The registry is its owner's alone and a session has no handle outside it: the save
    /// lends the session's record to its store and puts it back, copying nothing.
    Sole,
}
