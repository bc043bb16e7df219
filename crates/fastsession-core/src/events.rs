//! Security and capacity events: counted for the application, logged without flooding.
//!
//! A hostile client can cause a rejected cookie, an eviction or a refused value on every
//! request. Logging each would let it fill the disk and bury what matters, so each kind of
//! [`Event`] is logged at most once per [`LOG_INTERVAL`], with how many happened since the
//! last line; every occurrence is counted, and [`counts`] reads the totals (for metrics, a
//! health page, or a test).
//!
//! Summary lines go to `tracing` with target `fastsession::security::summary` and the fields
//! `event` (see [`Event::as_str`]), `count` (occurrences since the previous line of that
//! kind, this one included) and, for rejected cookies, `reason`; expired sessions are
//! summarised at `INFO`, the rest at `WARN`. Each occurrence is also an event of its own at
//! `DEBUG`, with target `fastsession::security`, for tracing one request.
//!
//! # Examples
//!
//! ```
//! use fastsession::events::{self, Event};
//! use fastsession::store::RejectReason;
//!
//! let before = events::counts().of(Event::Rejected(RejectReason::Malformed));
//! events::record(Event::Rejected(RejectReason::Malformed));
//! assert!(events::counts().of(Event::Rejected(RejectReason::Malformed)) > before);
//! ```

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::store::RejectReason;

/// The shortest time between two log lines of one kind of event.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Something a store or the registry refused, dropped or could not do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A session cookie gave no session (the request got a fresh one), and why.
    Rejected(RejectReason),
    /// A store out of room for anonymous sessions dropped the least recently active one.
    AnonymousEvicted,
    /// A store had no room for a session with a user id or a revocation marker, and refused
    /// the save rather than evict one ([`ErrorKind::StoreFull`](crate::ErrorKind::StoreFull)).
    StoreFull,
    /// A save was refused: the session was over the store's size bound.
    SessionTooLarge,
    /// A save was refused: it held something the store cannot hold (a number beyond
    /// PostgreSQL's range, say).
    Unstorable,
    /// What a store found under a session's key was not a record it wrote (corrupt, foreign
    /// or of another type); it was treated as no session.
    UnreadableRecord,
    /// A session's cookie would have been over the browser's size limit: not set.
    CookieTooLarge,
    /// A store failed (unreachable, timed out, refused): the request got an error.
    StoreFailed,
}

/// How many kinds of event there are, rejection reasons included.
const KINDS: usize = REASONS.len() + 7;

/// Every rejection reason, in the order of their counters.
const REASONS: [RejectReason; 11] = [
    RejectReason::Malformed,
    RejectReason::UnknownVersion,
    RejectReason::UnknownKey,
    RejectReason::NotAuthentic,
    RejectReason::Corrupt,
    RejectReason::FromTheFuture,
    RejectReason::IdleTimeout,
    RejectReason::AbsoluteTimeout,
    RejectReason::DuplicateCookies,
    RejectReason::UnknownId,
    RejectReason::Revoked,
];

impl Event {
    /// Returns a short, stable name for logs and metrics (a rejection is `rejected`; its reason is
    /// a field of its own).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::events::Event;
    /// use fastsession::store::RejectReason;
    ///
    /// // One metric label per kind; a rejection's reason is a label of its own.
    /// assert_eq!(Event::AnonymousEvicted.as_str(), "anonymous_evicted");
    /// assert_eq!(Event::Rejected(RejectReason::Revoked).as_str(), "rejected");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Rejected(_) => "rejected",
            Event::AnonymousEvicted => "anonymous_evicted",
            Event::StoreFull => "store_full",
            Event::SessionTooLarge => "session_too_large",
            Event::Unstorable => "unstorable",
            Event::UnreadableRecord => "unreadable_record",
            Event::CookieTooLarge => "cookie_too_large",
            Event::StoreFailed => "store_failed",
        }
    }

    fn index(self) -> usize {
        match self {
            Event::Rejected(reason) => REASONS.iter().position(|r| *r == reason).unwrap_or(0),
            Event::AnonymousEvicted => REASONS.len(),
            Event::StoreFull => REASONS.len() + 1,
            Event::SessionTooLarge => REASONS.len() + 2,
            Event::Unstorable => REASONS.len() + 3,
            Event::UnreadableRecord => REASONS.len() + 4,
            Event::CookieTooLarge => REASONS.len() + 5,
            Event::StoreFailed => REASONS.len() + 6,
        }
    }

    fn of_index(index: usize) -> Event {
        match index.checked_sub(REASONS.len()) {
            None => Event::Rejected(REASONS[index]),
            Some(0) => Event::AnonymousEvicted,
            Some(1) => Event::StoreFull,
            Some(2) => Event::SessionTooLarge,
            Some(3) => Event::Unstorable,
            Some(4) => Event::UnreadableRecord,
            Some(5) => Event::CookieTooLarge,
            _ => Event::StoreFailed,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Rejected(reason) => write!(f, "rejected ({reason})"),
            other => f.write_str(other.as_str()),
        }
    }
}

struct Counter {
    total: AtomicU64,
    /// Occurrences not yet reported in a log line.
    unlogged: AtomicU64,
    /// When the last line was written, in milliseconds since [`epoch`], plus one (0: never).
    logged_at: AtomicU64,
}

static COUNTERS: [Counter; KINDS] = [const {
    Counter {
        total: AtomicU64::new(0),
        unlogged: AtomicU64::new(0),
        logged_at: AtomicU64::new(0),
    }
}; KINDS];

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Counts `event`, and logs it unless a line of its kind was written less than
/// [`LOG_INTERVAL`] ago (that line's successor then reports it in its count).
///
/// Stores call this for what they drop or refuse; the registry for rejected cookies.
///
/// # Examples
///
/// ```
/// use fastsession::events::{self, Event};
///
/// // A store that had to drop a session to make room says so; a flood logs one line per
/// // interval, with its count, and every occurrence is counted.
/// events::record(Event::AnonymousEvicted);
/// assert!(events::counts().of(Event::AnonymousEvicted) >= 1);
/// ```
pub fn record(event: Event) {
    let counter = &COUNTERS[event.index()];
    counter.total.fetch_add(1, Ordering::Relaxed);
    counter.unlogged.fetch_add(1, Ordering::Relaxed);
    let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
    let last = counter.logged_at.load(Ordering::Relaxed);
    let interval = u64::try_from(LOG_INTERVAL.as_millis()).unwrap_or(u64::MAX);
    if last != 0 && now.saturating_sub(last) < interval {
        return;
    }
    // Of the threads that see the interval over, one writes the line.
    if counter
        .logged_at
        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let count = counter.unlogged.swap(0, Ordering::Relaxed);
    log(event, count);
}

fn log(event: Event, count: u64) {
    let name = event.as_str();
    let message = match event {
        Event::Rejected(RejectReason::IdleTimeout | RejectReason::AbsoluteTimeout) => {
            "session expired; starting a fresh session"
        }
        Event::Rejected(_) => "session cookie rejected; starting a fresh session",
        Event::AnonymousEvicted => {
            "anonymous sessions over their budget: evicted the least recently active"
        }
        Event::StoreFull => {
            "store full: refused to save a logged-in session or a revocation marker"
        }
        Event::SessionTooLarge => "session over the store's size bound: not saved",
        Event::Unstorable => "session holds input the store cannot hold: not saved",
        Event::UnreadableRecord => {
            "a session's stored record could not be read; starting a fresh session"
        }
        Event::CookieTooLarge => "session cookie over the browser's size limit: not set",
        Event::StoreFailed => {
            "session store failed; see the debug events of target `fastsession` for each error"
        }
    };
    let reason = match event {
        Event::Rejected(reason) => reason.as_str(),
        _ => "",
    };
    // Expiry is the normal end of a session, not a sign of trouble.
    if let Event::Rejected(RejectReason::IdleTimeout | RejectReason::AbsoluteTimeout) = event {
        tracing::info!(target: "fastsession::security::summary", event = name, reason, count, "{message}");
    } else {
        tracing::warn!(target: "fastsession::security::summary", event = name, reason, count, "{message}");
    }
}

/// What an adapter was doing when a session failed, for [`report_failure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Loading a session for the handler.
    Load,
    /// Saving the sessions after the handler.
    Save,
}

/// Reports a failed load or save of a session, as adapters do: logged with its sources
/// (target `fastsession`) at `warn` for a store that failed or is full, `debug` for a value
/// of another type, `info` for a session another request ended, `error` for the rest; store
/// failures count as [`Event::StoreFailed`] and oversize cookies as
/// [`Event::CookieTooLarge`] (what stores record themselves, such as a full store, is not
/// counted twice).
///
/// A handler's `?` on [`Error`](crate::Error) reports the same way when the error becomes
/// the response (features `axum` and `actix`).
///
/// # Examples
///
/// ```
/// use fastsession::events::{self, Event};
/// use fastsession::Error;
///
/// let before = events::counts().of(Event::StoreFailed);
/// let error = Error::store("refused", std::io::Error::other("down"));
/// events::report_failure(events::Action::Save, &error);
/// assert_eq!(events::counts().of(Event::StoreFailed), before + 1);
/// ```
pub fn report_failure(action: Action, error: &crate::Error) {
    error.log(match action {
        Action::Load => "loading the session",
        Action::Save => "saving the sessions",
    });
}

/// The totals of every kind of event since the process started, from [`counts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCounts([u64; KINDS]);

impl EventCounts {
    /// Returns how many times `event` happened.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::events::{self, Event};
    ///
    /// // A health check: is the store failing?
    /// let failures = events::counts().of(Event::StoreFailed);
    /// println!("store failures since start: {failures}");
    /// ```
    #[must_use]
    pub fn of(&self, event: Event) -> u64 {
        self.0[event.index()]
    }

    /// Returns every kind of event that happened, with its total.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::events;
    ///
    /// for (event, total) in events::counts().iter() {
    ///     println!("{event}: {total}");
    /// }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Event, u64)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, total)| **total > 0)
            .map(|(i, total)| (Event::of_index(i), *total))
    }
}

/// Returns the totals of every kind of event since the process started.
///
/// # Examples
///
/// ```
/// use fastsession::events::{self, Event};
/// use fastsession::store::RejectReason;
///
/// // Totals only grow: a metrics exporter reports them as counters.
/// let counts = events::counts();
/// let forged = counts.of(Event::Rejected(RejectReason::NotAuthentic));
/// let expired = counts.of(Event::Rejected(RejectReason::IdleTimeout));
/// println!("forged cookies: {forged}, expired sessions: {expired}");
/// ```
#[must_use]
pub fn counts() -> EventCounts {
    EventCounts(std::array::from_fn(|i| {
        COUNTERS[i].total.load(Ordering::Relaxed)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_counter() {
        let kinds: Vec<Event> = (0..KINDS).map(Event::of_index).collect();
        for (i, event) in kinds.iter().enumerate() {
            assert_eq!(event.index(), i, "{event}");
        }
    }

    #[test]
    fn a_burst_counts_every_event_and_logs_once() {
        let event = Event::SessionTooLarge;
        let before = counts().of(event);
        for _ in 0..1000 {
            record(event);
        }
        assert_eq!(counts().of(event) - before, 1000);
        // The first line was written; the rest wait for the interval.
        let unlogged = COUNTERS[event.index()].unlogged.load(Ordering::Relaxed);
        assert!(unlogged >= 999, "{unlogged}");
    }
}
