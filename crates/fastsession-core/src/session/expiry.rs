//! Server-side expiry: the idle timeouts, the absolute lifetime, a session's own deadline and
//! the clock-skew window.

use std::time::Duration;

use super::{Record, RejectReason};
use crate::error::{Error, ErrorKind, Result};
use crate::time::UnixTime;

/// When sessions end on the server, whatever the browser keeps.
///
/// * **Idle timeout**: a session not used for this long ends.
/// * **Remembered idle timeout**: the idle timeout of a logged-in session the user asked to be
///   remembered ([`Session::set_persistent`](crate::Session::set_persistent) with a user id):
///   by default 30 days, as long as the cookie's default `Max-Age`, so that "remember me"
///   keeps the user logged in for as long as the browser keeps the cookie. Never shorter than
///   the idle timeout. A persistent session *without* a user id keeps the (anonymous) idle
///   timeout: anybody can create sessions, and a flood of them must not be long-lived.
/// * **Absolute lifetime**: a session ends this long after it was created, however active.
/// * **A session's own deadline** ([`Session::set_expires_at`](crate::Session::set_expires_at)):
///   the session ends then, if the policy has not ended it before; it can only shorten it.
/// * **Clock skew**: how far in the future a timestamp may be (written by a server whose clock
///   is ahead) and still be believed.
/// * **Anonymous idle timeout**: a session held on the server without a user id (see
///   [`Session::set_user_id`](crate::Session::set_user_id)) ends after this shorter idle time,
///   so that sessions nobody logged into free their room first: Redis's TTL eviction and the
///   stores' reapers take them before any logged-in session. By default the idle timeout, at
///   most one hour. A cookie store holds nothing on the server and applies the idle timeout
///   to every session.
/// * **Refresh share**: a session that is read but not changed is written again, to push its
///   idle deadline back, only once this share of the idle timeout has passed since it was last
///   written. With the default of 0.25 and a 24-hour idle timeout, an active reader causes at
///   most one write per 6 hours, and is never logged out in less than 18 hours of inactivity.
///
/// These are separate from the cookie's browser lifetime ("remember me", see
/// [`CookieConfigBuilder::with_max_age`](crate::http::CookieConfigBuilder::with_max_age)). A session is
/// expired at the exact second `last_active + idle_timeout_of(record)`, `created +
/// absolute_lifetime` or `expires_at`, whichever comes first.
///
/// # Examples
///
/// ```
/// use fastsession::Expiry;
/// use std::time::Duration;
///
/// let expiry = Expiry::default()
///     .with_idle_timeout(Duration::from_secs(30 * 60))?
///     .with_absolute_lifetime(Duration::from_secs(12 * 3600))?
///     .with_clock_skew(Duration::from_secs(30))
///     .with_refresh_share(0.5)?
///     .with_remembered_idle_timeout(Duration::from_secs(7 * 86_400));
/// assert_eq!(expiry.idle_timeout(), Duration::from_secs(1800));
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expiry {
    idle_timeout: Duration,
    /// Never longer than `idle_timeout` (see [`Expiry::anonymous_idle_timeout`]).
    anonymous_idle_timeout: Duration,
    /// Never shorter than `idle_timeout` (see [`Expiry::remembered_idle_timeout`]).
    remembered_idle_timeout: Duration,
    absolute_lifetime: Duration,
    clock_skew: Duration,
    refresh_share: f64,
}

/// The longest idle time of an anonymous server-side session unless set otherwise.
pub const DEFAULT_ANONYMOUS_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The idle timeout of a remembered ("remember me") logged-in session unless set otherwise:
/// 30 days, the default `Max-Age` of a persistent cookie.
pub const DEFAULT_REMEMBERED_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

impl Default for Expiry {
    /// 24 hours idle (one hour for anonymous server-side sessions, 30 days for remembered
    /// logged-in ones), 30 days absolute, 60 seconds of skew, refresh after a quarter.
    fn default() -> Self {
        Expiry {
            idle_timeout: Duration::from_secs(24 * 3600),
            anonymous_idle_timeout: DEFAULT_ANONYMOUS_IDLE_TIMEOUT,
            remembered_idle_timeout: DEFAULT_REMEMBERED_IDLE_TIMEOUT,
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            clock_skew: Duration::from_secs(60),
            refresh_share: 0.25,
        }
    }
}

impl Expiry {
    /// Sets the idle timeout: sessions with a user id end after `timeout` unused (default 24
    /// hours). Remembered logged-in sessions keep the remembered idle timeout (30 days, or
    /// `timeout` if that is longer), and anonymous ones the shorter anonymous idle timeout; the
    /// absolute lifetime ends every session.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] if `timeout` is under one second.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// // Ends after 30 minutes unused, or 8 hours after it began.
    /// let expiry = Expiry::default()
    ///     .with_idle_timeout(Duration::from_secs(30 * 60))?
    ///     .with_absolute_lifetime(Duration::from_secs(8 * 3600))?;
    /// assert_eq!(expiry.idle_timeout(), Duration::from_secs(30 * 60));
    /// assert!(Expiry::default().with_idle_timeout(Duration::ZERO).is_err());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Result<Self> {
        self.idle_timeout = at_least_a_second(timeout, "the idle timeout")?;
        Ok(self)
    }

    /// Sets the absolute lifetime: every session ends `lifetime` after it began (default 30 days),
    /// however active: the bound on how long a stolen session can be used.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] if `lifetime` is under one second.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// let expiry = Expiry::default().with_absolute_lifetime(Duration::from_secs(7 * 86_400))?;
    /// assert_eq!(expiry.absolute_lifetime(), Duration::from_secs(7 * 86_400));
    /// assert!(Expiry::default().with_absolute_lifetime(Duration::from_millis(500)).is_err());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_absolute_lifetime(mut self, lifetime: Duration) -> Result<Self> {
        self.absolute_lifetime = at_least_a_second(lifetime, "the absolute lifetime")?;
        Ok(self)
    }

    /// Ends server-side sessions without a user id after `timeout` unused (at least one
    /// second, at most the idle timeout: a longer one is cut to it).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// let expiry = Expiry::default().with_anonymous_idle_timeout(Duration::from_secs(600));
    /// assert_eq!(expiry.anonymous_idle_timeout(), Duration::from_secs(600));
    /// let cut = Expiry::default().with_anonymous_idle_timeout(Duration::from_secs(999_999));
    /// assert_eq!(cut.anonymous_idle_timeout(), cut.idle_timeout());
    /// ```
    #[must_use]
    pub fn with_anonymous_idle_timeout(mut self, timeout: Duration) -> Self {
        self.anonymous_idle_timeout = timeout.max(Duration::from_secs(1));
        self
    }

    /// Ends remembered logged-in sessions (persistent, with a user id) after `timeout` unused
    /// (default 30 days). It never shortens the idle timeout: a shorter `timeout` leaves
    /// remembered sessions at the idle timeout. The absolute lifetime still applies.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// // "Remember me" keeps a user logged in for a week away, not a month.
    /// let expiry = Expiry::default().with_remembered_idle_timeout(Duration::from_secs(7 * 86_400));
    /// assert_eq!(expiry.remembered_idle_timeout(), Duration::from_secs(7 * 86_400));
    /// // Never below the idle timeout (24 hours here).
    /// let short = Expiry::default().with_remembered_idle_timeout(Duration::from_secs(60));
    /// assert_eq!(short.remembered_idle_timeout(), short.idle_timeout());
    /// ```
    #[must_use]
    pub fn with_remembered_idle_timeout(mut self, timeout: Duration) -> Self {
        self.remembered_idle_timeout = timeout;
        self
    }

    /// Accepts timestamps up to `skew` in the future (default 60 seconds).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// // Servers whose clocks may differ by up to 5 seconds.
    /// let expiry = Expiry::default().with_clock_skew(Duration::from_secs(5));
    /// assert_eq!(expiry.clock_skew(), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Refreshes an unchanged session once `share` of the idle timeout has passed
    /// (default 0.25; 0 refreshes on every read).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] unless `0.0 <= share < 1.0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// // Write an unchanged session again at most once per half of the idle timeout.
    /// let expiry = Expiry::default().with_refresh_share(0.5)?;
    /// # let _ = expiry;
    /// assert!(Expiry::default().with_refresh_share(1.0).is_err());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_refresh_share(mut self, share: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&share) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "refresh share must be in [0, 1)",
            ));
        }
        self.refresh_share = share;
        Ok(self)
    }

    /// Returns the idle timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().idle_timeout(), Duration::from_secs(24 * 3600));
    /// ```
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Returns the idle timeout of server-side sessions without a user id (never longer than
    /// [`idle_timeout`](Self::idle_timeout)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().anonymous_idle_timeout(), Duration::from_secs(3600));
    /// ```
    #[must_use]
    pub fn anonymous_idle_timeout(&self) -> Duration {
        self.anonymous_idle_timeout.min(self.idle_timeout)
    }

    /// Returns the idle timeout of remembered logged-in sessions (never shorter than
    /// [`idle_timeout`](Self::idle_timeout)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().remembered_idle_timeout(), Duration::from_secs(30 * 86_400));
    /// ```
    #[must_use]
    pub fn remembered_idle_timeout(&self) -> Duration {
        self.remembered_idle_timeout.max(self.idle_timeout)
    }

    /// Returns the idle timeout that applies to `record`: the anonymous one if it has no user id,
    /// the remembered one if it has one and is persistent ("remember me"), else the idle timeout.
    ///
    /// A persistent session without a user id gets the anonymous timeout: "remember me" is
    /// about keeping a user logged in, and sessions anyone can create must stay short-lived.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let expiry = Expiry::default();
    /// let mut record = Record::new(UnixTime::now());
    /// record.set_persistent(true);
    /// assert_eq!(expiry.idle_timeout_of(&record), expiry.anonymous_idle_timeout());
    /// record.set_user_id(Some("ada".into()));
    /// assert_eq!(expiry.idle_timeout_of(&record), expiry.remembered_idle_timeout());
    /// record.set_persistent(false);
    /// assert_eq!(expiry.idle_timeout_of(&record), expiry.idle_timeout());
    /// ```
    #[must_use]
    pub fn idle_timeout_of(&self, record: &Record) -> Duration {
        match (record.user_id().is_some(), record.is_persistent()) {
            (false, _) => self.anonymous_idle_timeout(),
            (true, true) => self.remembered_idle_timeout(),
            (true, false) => self.idle_timeout,
        }
    }

    /// The shortest idle timeout any session can have: a session live under it is live under
    /// the one that applies to it, whatever its class.
    pub(crate) fn shortest_idle_timeout(&self) -> Duration {
        // anonymous <= idle <= remembered, by their getters.
        self.anonymous_idle_timeout()
    }

    /// Returns this policy with the idle timeout for every session, anonymous or not: what stores
    /// that hold nothing on the server (cookie stores) enforce.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// // What a cookie store applies: one idle timeout for every session.
    /// let expiry = Expiry::default().without_anonymous_idle_timeout();
    /// assert_eq!(expiry.anonymous_idle_timeout(), expiry.idle_timeout());
    /// ```
    #[must_use]
    pub fn without_anonymous_idle_timeout(mut self) -> Self {
        // The getter cuts it to the idle timeout, whatever that is set to later.
        self.anonymous_idle_timeout = Duration::MAX;
        self
    }

    /// Returns the absolute lifetime.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().absolute_lifetime(), Duration::from_secs(30 * 86_400));
    /// ```
    #[must_use]
    pub fn absolute_lifetime(&self) -> Duration {
        self.absolute_lifetime
    }

    /// Returns the accepted clock skew.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().clock_skew(), Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// Checks a record's timestamps at `now`: skew, order, absolute lifetime, the record's own
    /// deadline ([`Record::expires_at`], reported as [`RejectReason::AbsoluteTimeout`]) and
    /// the idle timeout of its class ([`idle_timeout_of`](Self::idle_timeout_of)).
    ///
    /// # Errors
    ///
    /// The [`RejectReason`] if the record is expired, dated beyond the skew window, or its
    /// timestamps are inconsistent.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession::session::Record;
    /// use fastsession::session::RejectReason;
    /// use fastsession::time::UnixTime;
    ///
    /// let expiry = Expiry::default()
    ///     .with_idle_timeout(Duration::from_secs(600))?
    ///     .with_absolute_lifetime(Duration::from_secs(3600))?;
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_user_id(Some("ada".into()));
    /// assert!(expiry.check(&record, UnixTime::from_secs(1_500)).is_ok());
    /// assert_eq!(expiry.check(&record, UnixTime::from_secs(1_600)), Err(RejectReason::IdleTimeout));
    /// // Its own deadline ends it sooner.
    /// record.set_expires_at(Some(UnixTime::from_secs(1_200)));
    /// assert_eq!(expiry.check(&record, UnixTime::from_secs(1_200)), Err(RejectReason::AbsoluteTimeout));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn check(&self, record: &Record, now: UnixTime) -> Result<(), RejectReason> {
        let latest = now.saturating_add(self.clock_skew);
        if record.created() > latest || record.last_active() > latest {
            return Err(RejectReason::FromTheFuture);
        }
        if record.last_active() < record.created() {
            return Err(RejectReason::Corrupt);
        }
        if now >= record.created().saturating_add(self.absolute_lifetime)
            || record.expires_at().is_some_and(|at| now >= at)
        {
            return Err(RejectReason::AbsoluteTimeout);
        }
        if now
            >= record
                .last_active()
                .saturating_add(self.idle_timeout_of(record))
        {
            return Err(RejectReason::IdleTimeout);
        }
        Ok(())
    }

    /// Returns `true` if an unchanged session read at `now` is due to be written again.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // 24 hours idle, refreshed after a quarter: 6 hours.
    /// let expiry = Expiry::default();
    /// let mut record = Record::new(UnixTime::from_secs(0));
    /// record.set_user_id(Some("ada".into()));
    /// assert!(!expiry.needs_refresh(&record, UnixTime::from_secs(3600)));
    /// assert!(expiry.needs_refresh(&record, UnixTime::from_secs(6 * 3600)));
    /// ```
    #[must_use]
    pub fn needs_refresh(&self, record: &Record, now: UnixTime) -> bool {
        let threshold = self.idle_timeout_of(record).mul_f64(self.refresh_share);
        now.since(record.last_active()) >= threshold
    }

    /// Returns when a record expires if left alone: the earliest of its idle deadline (with the
    /// idle timeout of its class, [`idle_timeout_of`](Self::idle_timeout_of)), its absolute
    /// deadline and its own deadline ([`Record::expires_at`]). Stores set their TTLs and reapers'
    /// deadlines from it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let expiry = Expiry::default()
    ///     .with_idle_timeout(Duration::from_secs(600))?
    ///     .with_absolute_lifetime(Duration::from_secs(3600))?;
    /// let mut record = Record::new(UnixTime::from_secs(0));
    /// record.set_user_id(Some("ada".into()));
    /// assert_eq!(expiry.deadline(&record), UnixTime::from_secs(600));
    /// record.set_expires_at(Some(UnixTime::from_secs(300)));
    /// assert_eq!(expiry.deadline(&record), UnixTime::from_secs(300));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn deadline(&self, record: &Record) -> UnixTime {
        let policy = record
            .last_active()
            .saturating_add(self.idle_timeout_of(record))
            .min(record.created().saturating_add(self.absolute_lifetime));
        record.expires_at().map_or(policy, |at| policy.min(at))
    }

    /// The `Max-Age` a persistent cookie of `record` should have at `now`, given the
    /// configured one: never past the record's own deadline ([`Record::expires_at`]), so that
    /// the browser drops the cookie when the server would refuse it. At least one second
    /// while the record is live (a `Max-Age` of 0 would delete the cookie at once).
    pub(crate) fn cookie_max_age(
        &self,
        record: &Record,
        now: UnixTime,
        configured: Duration,
    ) -> Duration {
        // The policy's deadlines stay with `CookieConfig::with_max_age`, as before: only a
        // deadline the application set for this one session shortens the cookie.
        match record.expires_at() {
            Some(at) => configured.min(at.since(now).max(Duration::from_secs(1))),
            None => configured,
        }
    }

    /// [`deadline`](Self::deadline) of a session with a user id, not remembered and without a
    /// deadline of its own, created at `created` and last active at `last_active` (for a
    /// store that knows the times a record had when it was loaded).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// let expiry = Expiry::default()
    ///     .with_idle_timeout(Duration::from_secs(600))?
    ///     .with_absolute_lifetime(Duration::from_secs(3600))?;
    /// let t = UnixTime::from_secs;
    /// assert_eq!(expiry.deadline_of(t(0), t(100)), t(700));
    /// assert_eq!(expiry.deadline_of(t(0), t(3500)), t(3600));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn deadline_of(&self, created: UnixTime, last_active: UnixTime) -> UnixTime {
        last_active
            .saturating_add(self.idle_timeout)
            .min(created.saturating_add(self.absolute_lifetime))
    }
}

fn at_least_a_second(duration: Duration, what: &str) -> Result<Duration> {
    if duration.as_secs() == 0 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("{what} must be at least one second"),
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(created: u64, last: u64) -> Record {
        let mut r = Record::new(UnixTime::from_secs(created));
        r.set_last_active(UnixTime::from_secs(last));
        r
    }

    #[test]
    fn boundaries_are_exclusive() {
        let e = Expiry::default()
            .with_idle_timeout(Duration::from_secs(100))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(1000))
            .unwrap();
        let r = record(1000, 1000);
        assert_eq!(e.check(&r, UnixTime::from_secs(1099)), Ok(()));
        assert_eq!(
            e.check(&r, UnixTime::from_secs(1100)),
            Err(RejectReason::IdleTimeout)
        );
        let r = record(1000, 1950);
        assert_eq!(e.check(&r, UnixTime::from_secs(1999)), Ok(()));
        assert_eq!(
            e.check(&r, UnixTime::from_secs(2000)),
            Err(RejectReason::AbsoluteTimeout)
        );
        assert_eq!(e.deadline(&r), UnixTime::from_secs(2000));
    }

    #[test]
    fn future_and_inconsistent_times() {
        let e = Expiry::default().with_clock_skew(Duration::from_secs(60));
        let now = UnixTime::from_secs(10_000);
        assert_eq!(e.check(&record(10_030, 10_030), now), Ok(()));
        assert_eq!(
            e.check(&record(10_061, 10_061), now),
            Err(RejectReason::FromTheFuture)
        );
        assert_eq!(
            e.check(&record(u64::MAX, u64::MAX), now),
            Err(RejectReason::FromTheFuture)
        );
        assert_eq!(
            e.check(&record(9_000, 8_000), now),
            Err(RejectReason::Corrupt)
        );
    }

    #[test]
    fn refresh_only_after_the_share() {
        let e = Expiry::default()
            .with_idle_timeout(Duration::from_secs(100))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(1000))
            .unwrap()
            .with_refresh_share(0.25)
            .unwrap();
        let r = record(0, 0);
        assert!(!e.needs_refresh(&r, UnixTime::from_secs(24)));
        assert!(e.needs_refresh(&r, UnixTime::from_secs(25)));
    }

    #[test]
    fn the_idle_timeout_follows_the_class_of_the_record() {
        let e = Expiry::default()
            .with_idle_timeout(Duration::from_secs(100))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(100_000))
            .unwrap()
            .with_anonymous_idle_timeout(Duration::from_secs(10))
            .with_remembered_idle_timeout(Duration::from_secs(1000));
        let mut r = record(0, 0);
        r.set_persistent(true);
        // A remembered anonymous session is still anonymous.
        assert_eq!(
            e.check(&r, UnixTime::from_secs(10)),
            Err(RejectReason::IdleTimeout)
        );
        r.set_user_id(Some("ada".into()));
        assert_eq!(e.check(&r, UnixTime::from_secs(999)), Ok(()));
        assert_eq!(
            e.check(&r, UnixTime::from_secs(1000)),
            Err(RejectReason::IdleTimeout)
        );
        assert_eq!(e.deadline(&r), UnixTime::from_secs(1000));
        r.set_persistent(false);
        assert_eq!(
            e.check(&r, UnixTime::from_secs(100)),
            Err(RejectReason::IdleTimeout)
        );
        // Never shorter than the idle timeout, and the absolute lifetime still ends it.
        let short = e.with_remembered_idle_timeout(Duration::from_secs(5));
        assert_eq!(short.remembered_idle_timeout(), Duration::from_secs(100));
        let capped = Expiry::default()
            .with_idle_timeout(Duration::from_secs(100))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(500))
            .unwrap();
        r.set_persistent(true);
        assert_eq!(capped.deadline(&r), UnixTime::from_secs(500));
        assert_eq!(e.shortest_idle_timeout(), Duration::from_secs(10));
    }

    #[test]
    fn a_records_own_deadline_only_shortens_it() {
        let e = Expiry::default()
            .with_idle_timeout(Duration::from_secs(100))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(1000))
            .unwrap();
        let mut r = record(0, 0);
        r.set_user_id(Some("ada".into()));
        r.set_expires_at(Some(UnixTime::from_secs(50)));
        assert_eq!(e.check(&r, UnixTime::from_secs(49)), Ok(()));
        assert_eq!(
            e.check(&r, UnixTime::from_secs(50)),
            Err(RejectReason::AbsoluteTimeout)
        );
        assert_eq!(e.deadline(&r), UnixTime::from_secs(50));
        // Later than the policy's deadline: the policy's still holds.
        r.set_expires_at(Some(UnixTime::from_secs(5_000)));
        assert_eq!(e.deadline(&r), UnixTime::from_secs(100));
        assert_eq!(
            e.check(&r, UnixTime::from_secs(100)),
            Err(RejectReason::IdleTimeout)
        );
        // The cookie's Max-Age stops at the deadline, but never reaches zero.
        let day = Duration::from_secs(86_400);
        r.set_expires_at(Some(UnixTime::from_secs(60)));
        assert_eq!(
            e.cookie_max_age(&r, UnixTime::from_secs(0), day),
            Duration::from_secs(60)
        );
        assert_eq!(
            e.cookie_max_age(&r, UnixTime::from_secs(90), day),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn invalid_settings_are_refused() {
        assert!(
            Expiry::default()
                .with_idle_timeout(Duration::ZERO)
                .and_then(|e| e.with_absolute_lifetime(Duration::from_secs(1)))
                .is_err()
        );
        assert!(Expiry::default().with_refresh_share(1.0).is_err());
        assert!(Expiry::default().with_refresh_share(f64::NAN).is_err());
    }
}
