//! The save path of [`Sessions`]: which sessions a request saves, how, and the `Set-Cookie`
//! lines their saves queue.

use http::HeaderValue;

use super::cookies::parse_id;
use super::response::Line;
use super::sessions::Entry;
use super::{SessionConfig, Sessions};
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Action, ChangeSet, Record, Session, SessionId, State};
use crate::store::{CookieContent, LoadRequest, Memo, SaveKind, SaveRequest, Saved};
use crate::time::UnixTime;
use smallvec::SmallVec;

impl Sessions {
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
        let mut first_error = None;
        let (to_save, any_presented) = self.to_save();
        if any_presented {
            for (config, values) in self.take_presented() {
                if let Err(e) = Box::pin(end_presented(&config, &values)).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        for (config, session, had_cookie) in to_save {
            let name = config.cookie().name();
            let mut memo = self.lock().entry_mut(name).and_then(|e| e.memo.take());
            let mut pending = None;
            let slot = Slot {
                memo: &mut memo,
                pending: &mut pending,
            };
            let saved = save_session(&config, Target::Shared(&session), had_cookie, slot).await;
            if memo.is_some() || pending.is_some() {
                // Entries are never removed: it is there.
                if let Some(entry) = self.lock().entry_mut(name) {
                    if memo.is_some() {
                        entry.memo = memo;
                    }
                    if pending.is_some() {
                        entry.pending = pending;
                    }
                }
            }
            if let Err(e) = saved {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
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
}

/// [`Sessions::save`] for a registry nothing else can reach any more (the last handle's
/// [`Sessions::finish`]): its entries are saved where they are, with no registry lock, and a
/// session with no handle elsewhere is saved with no lock or copy either.
pub(super) async fn save_entries(entries: &mut [Entry]) -> Result<()> {
    let mut first_error = None;
    for entry in entries {
        if !entry.presented.is_empty() && entry.session.is_destroyed() {
            let values = std::mem::take(&mut entry.presented);
            if let Err(e) = Box::pin(end_presented(&entry.config, &values)).await {
                first_error.get_or_insert(e);
            }
        }
        let Entry {
            config,
            session,
            had_cookie,
            memo,
            pending,
            ..
        } = entry;
        let target = if let Some(state) = session.sole_state() {
            Target::Sole(state)
        } else {
            Target::Shared(session)
        };
        let slot = Slot { memo, pending };
        if let Err(e) = save_session(config, target, *had_cookie, slot).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Ends every authentic session among `values`, the duplicated values of the cookie of
/// `config` that a request destroying its session carried: the user meant to log out of
/// whichever the browser sent.
///
/// Rare, and larger than a save: its callers box it, so that every request's future (which
/// an adapter may box) stays the size of a save.
async fn end_presented(config: &SessionConfig, values: &[Box<str>]) -> Result<()> {
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
        let Ok(record) = store.load(request).await?.outcome else {
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

/// The session one save works on.
enum Target<'a> {
    /// Nothing else can reach it: the store is sent its record in place, and nothing is
    /// locked or copied.
    Sole(&'a mut State),
    /// Other handles may use it meanwhile: the store is sent a copy of its record, and its
    /// changes are taken, so that what is written meanwhile stays for the next save.
    Shared(&'a Session),
}

impl Target<'_> {
    fn with<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> R {
        match self {
            Target::Sole(state) => f(state),
            Target::Shared(session) => f(&mut session.lock()),
        }
    }
}

/// What the save of a session reads and writes beside the session: the memo its store left
/// at the load (taken by a save, given back if the save failed) and its pending
/// `Set-Cookie` line.
struct Slot<'a> {
    memo: &'a mut Option<Memo>,
    pending: &'a mut Option<(HeaderValue, Line)>,
}

/// What a store is sent: the session's own record and changes ([`Target::Sole`], its last
/// activity before the save kept to restore), or copies ([`Target::Shared`]; boxed, so that
/// the future of every save stays small enough for the allocator's fast path).
enum Sent<'a> {
    InPlace {
        state: &'a State,
        last_active: UnixTime,
    },
    Copied(Box<(Record, ChangeSet)>),
}

impl Sent<'_> {
    fn record(&self) -> &Record {
        match self {
            Sent::InPlace { state, .. } => &state.record,
            Sent::Copied(copy) => &copy.0,
        }
    }

    fn changes(&self) -> &ChangeSet {
        match self {
            Sent::InPlace { state, .. } => &state.changes,
            Sent::Copied(copy) => &copy.1,
        }
    }
}

/// Saves one session, and then what was written to it after a `destroy`, as a new one.
async fn save_session(
    config: &SessionConfig,
    mut target: Target<'_>,
    mut had_cookie: bool,
    slot: Slot<'_>,
) -> Result<()> {
    loop {
        let now = config.clock().now();
        let Some(kind) =
            target.with(|state| begin_save(config, state, had_cookie, now, slot.pending))
        else {
            return Ok(());
        };
        let reseal = target.with(|state| state.reseal);
        let sent = match &mut target {
            Target::Sole(state) => {
                let last_active = state.record.last_active();
                state.record.set_last_active(now);
                Sent::InPlace { state, last_active }
            }
            Target::Shared(session) => {
                let mut state = session.lock();
                let mut record = state.record.clone();
                record.set_last_active(now);
                let changes = std::mem::take(&mut state.changes);
                Sent::Copied(Box::new((record, changes)))
            }
        };
        let memo = slot.memo.take();
        let mut request = SaveRequest::new(
            config.cookie().name(),
            kind,
            sent.record(),
            sent.changes(),
            config.expiry(),
            now,
        )
        .with_memo(memo.as_ref());
        let persistent = sent.record().is_persistent();
        // The browser already holds the cookie this save would set again: a session cookie
        // (no `Max-Age` to slide) naming the same id, signed by the active key. Sending it
        // once more would cost a header and change nothing.
        let cookie_held = matches!(kind, SaveKind::Update | SaveKind::Touch)
            && !persistent
            && !sent.changes().persistent_changed()
            && config.store().cookie_content() == CookieContent::SessionId
            && !reseal;
        if kind == SaveKind::Regenerate {
            // The old id ends at a regeneration: the store must know before whether the
            // new cookie fits.
            let overhead =
                config.cookie().line_for("", persistent).len() + config.signed_id_overhead();
            request = request
                .with_max_cookie_value_len(config.max_set_cookie_len().saturating_sub(overhead));
        }
        let saved = config.store().save(request).await;
        let (last_active, copied) = match sent {
            Sent::InPlace { last_active, .. } => (Some(last_active), None),
            Sent::Copied(copy) => (None, Some(copy.1)),
        };
        let outcome = target.with(|state| {
            if let Some(last_active) = last_active {
                // As before the save; the outcome sets it again if saved.
                state.record.set_last_active(last_active);
            }
            let sent_changes = copied.unwrap_or_else(|| std::mem::take(&mut state.changes));
            match apply_outcome(
                config,
                state,
                saved,
                persistent,
                cookie_held,
                now,
                slot.pending,
            ) {
                Ok(()) => Ok(state.is_carried()),
                Err(e) => {
                    if !e.is_session_ended() {
                        // Nothing was saved: what was sent is still to send, before what
                        // came since.
                        state.changes.put_back(sent_changes);
                    }
                    Err(e)
                }
            }
        });
        match outcome {
            Ok(false) => return Ok(()),
            // A destroyed session with what was written after `destroy`: now a new one.
            Ok(true) => had_cookie = false,
            Err(e) => {
                if !e.is_session_ended() {
                    *slot.memo = memo;
                }
                return Err(e);
            }
        }
    }
}

/// What a save of this session must do, or `None` if it needs none (an unmodified
/// session, or a new one destroyed before it was ever saved).
fn begin_save(
    config: &SessionConfig,
    state: &mut State,
    had_cookie: bool,
    now: UnixTime,
    pending: &mut Option<(HeaderValue, Line)>,
) -> Option<SaveKind> {
    if state.is_new_and_written_after_destroy() {
        // Never saved, so nothing to end but the cookie it came with.
        if had_cookie {
            queue_removal(pending, config);
        }
        state.begin_anew(now);
    }
    match (state.action, state.is_new) {
        (Action::Destroy, true) => {
            if had_cookie {
                queue_removal(pending, config);
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

/// Applies a save's outcome to the session and queues its cookie, unless the browser
/// already holds that very cookie. `persistent` is what was saved, `cookie_held` whether the
/// request's cookie is the one the save would set if the id stays.
fn apply_outcome(
    config: &SessionConfig,
    state: &mut State,
    saved: Result<Saved>,
    persistent: bool,
    cookie_held: bool,
    now: UnixTime,
    pending: &mut Option<(HeaderValue, Line)>,
) -> Result<()> {
    let (value, id) = match saved {
        Ok(Saved::Cookie { value, id }) => (value, id),
        Ok(Saved::Remove) => {
            queue_removal(pending, config);
            // What the handler wrote after `destroy` goes to a new session, saved next.
            state.begin_anew(now);
            return Ok(());
        }
        Err(e) => {
            if e.is_session_ended() {
                queue_removal(pending, config);
                *state = State::fresh(now);
            }
            return Err(e);
        }
    };
    let held = cookie_held && id.as_ref().is_some_and(|id| state.record.id() == Some(id));
    let id = if held {
        id
    } else {
        queue_cookie(config, &state.record, value, id, persistent, now, pending)?
    };
    state.record.set_last_active(now);
    state.record.set_id(id);
    state.is_new = false;
    state.reseal = false;
    if state.action == Action::Regenerate {
        state.action = Action::Keep;
    }
    Ok(())
}

/// Queues the `Set-Cookie` line for the cookie `value` a store returned for `record` (naming
/// `id`), signing the id if configured; returns the id. Fails if the line is too long.
fn queue_cookie(
    config: &SessionConfig,
    record: &Record,
    mut value: String,
    mut id: Option<SessionId>,
    persistent: bool,
    now: UnixTime,
    pending: &mut Option<(HeaderValue, Line)>,
) -> Result<Option<SessionId>> {
    let name = config.cookie().name();
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
    let line = match record.expires_at() {
        Some(_) if persistent => {
            let max_age = config
                .expiry()
                .cookie_max_age(record, now, config.cookie().max_age());
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
    queue_line(pending, name, line, Line::Sets);
    Ok(id)
}

/// Queues a `Set-Cookie` line built for this response, without copying it.
fn queue_line(pending: &mut Option<(HeaderValue, Line)>, name: &str, line: String, kind: Line) {
    match HeaderValue::from_maybe_shared(bytes::Bytes::from(line)) {
        Ok(mut value) => {
            value.set_sensitive(true);
            *pending = Some((value, kind));
        }
        Err(_) => {
            tracing::error!(target: "fastsession", cookie = name, "Set-Cookie line is not a valid header")
        }
    }
}

/// Queues the line that clears the cookie of an ended session.
fn queue_removal(pending: &mut Option<(HeaderValue, Line)>, config: &SessionConfig) {
    let cookie = config.cookie();
    queue_line(
        pending,
        cookie.name(),
        cookie.removal().to_owned(),
        Line::Clears,
    );
}

/// The sessions of a request to save: config, handle, and whether the request had its cookie.
type ToSave = SmallVec<[(SessionConfig, Session, bool); 1]>;
