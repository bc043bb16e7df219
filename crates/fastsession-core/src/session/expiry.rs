//! Server-side expiry: the idle timeout, the absolute lifetime and the clock-skew window.

use std::time::Duration;

use super::Record;
use crate::error::{Error, ErrorKind, Result};
use crate::store::RejectReason;
use crate::time::UnixTime;

/// When sessions end on the server, whatever the browser keeps.
///
/// * **Idle timeout**: a session not used for this long ends.
/// * **Absolute lifetime**: a session ends this long after it was created, however active.
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
/// expired at the exact second `last_active + idle_timeout` or `created + absolute_lifetime`.
///
/// # Examples
///
/// ```
/// use fastsession_core::session::Expiry;
/// use std::time::Duration;
///
/// let expiry = Expiry::new(Duration::from_secs(30 * 60), Duration::from_secs(12 * 3600))?
///     .with_clock_skew(Duration::from_secs(30))
///     .with_refresh_share(0.5)?;
/// assert_eq!(expiry.idle_timeout(), Duration::from_secs(1800));
/// # Ok::<(), fastsession_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expiry {
    idle_timeout: Duration,
    /// Never longer than `idle_timeout` (see [`Expiry::anonymous_idle_timeout`]).
    anonymous_idle_timeout: Duration,
    absolute_lifetime: Duration,
    clock_skew: Duration,
    refresh_share: f64,
}

/// The longest idle time of an anonymous server-side session unless set otherwise.
pub const DEFAULT_ANONYMOUS_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

impl Default for Expiry {
    /// 24 hours idle (one hour for anonymous server-side sessions), 30 days absolute, 60
    /// seconds of skew, refresh after a quarter.
    fn default() -> Self {
        Expiry {
            idle_timeout: Duration::from_secs(24 * 3600),
            anonymous_idle_timeout: DEFAULT_ANONYMOUS_IDLE_TIMEOUT,
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            clock_skew: Duration::from_secs(60),
            refresh_share: 0.25,
        }
    }
}

impl Expiry {
    /// Sessions end after `idle_timeout` unused, or `absolute_lifetime` after creation.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] if either is under one second.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// // Ends after 30 minutes unused, or 8 hours after it began.
    /// let expiry = Expiry::new(Duration::from_secs(30 * 60), Duration::from_secs(8 * 3600))?;
    /// assert_eq!(expiry.absolute_lifetime(), Duration::from_secs(8 * 3600));
    /// assert!(Expiry::new(Duration::ZERO, Duration::from_secs(60)).is_err());
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    pub fn new(idle_timeout: Duration, absolute_lifetime: Duration) -> Result<Self> {
        if idle_timeout.as_secs() == 0 || absolute_lifetime.as_secs() == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "idle timeout and absolute lifetime must be at least one second",
            ));
        }
        Ok(Expiry {
            idle_timeout,
            anonymous_idle_timeout: idle_timeout.min(DEFAULT_ANONYMOUS_IDLE_TIMEOUT),
            absolute_lifetime,
            ..Expiry::default()
        })
    }

    /// Ends server-side sessions without a user id after `timeout` unused (at least one
    /// second, at most the idle timeout: a longer one is cut to it).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
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

    /// Accepts timestamps up to `skew` in the future (default 60 seconds).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
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
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// // Write an unchanged session again at most once per half of the idle timeout.
    /// let expiry = Expiry::default().with_refresh_share(0.5)?;
    /// assert_eq!(expiry.refresh_share(), 0.5);
    /// assert!(Expiry::default().with_refresh_share(1.0).is_err());
    /// # Ok::<(), fastsession_core::Error>(())
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

    /// The idle timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().idle_timeout(), Duration::from_secs(24 * 3600));
    /// ```
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The idle timeout of server-side sessions without a user id (never longer than
    /// [`idle_timeout`](Self::idle_timeout)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().anonymous_idle_timeout(), Duration::from_secs(3600));
    /// ```
    #[must_use]
    pub fn anonymous_idle_timeout(&self) -> Duration {
        self.anonymous_idle_timeout.min(self.idle_timeout)
    }

    /// The idle timeout that applies to `record`: the anonymous one if it has no user id.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession_core::session::Record;
    /// use fastsession_core::time::UnixTime;
    ///
    /// let expiry = Expiry::default();
    /// let mut record = Record::new(UnixTime::now());
    /// assert_eq!(expiry.idle_timeout_of(&record), expiry.anonymous_idle_timeout());
    /// record.set_user_id(Some("ada".into()));
    /// assert_eq!(expiry.idle_timeout_of(&record), expiry.idle_timeout());
    /// ```
    #[must_use]
    pub fn idle_timeout_of(&self, record: &Record) -> Duration {
        if record.user_id().is_some() {
            self.idle_timeout
        } else {
            self.anonymous_idle_timeout()
        }
    }

    /// This policy with the idle timeout for every session, anonymous or not: what stores
    /// that hold nothing on the server (cookie stores) enforce.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// // What a cookie store applies: one idle timeout for every session.
    /// let expiry = Expiry::default().without_anonymous_idle_timeout();
    /// assert_eq!(expiry.anonymous_idle_timeout(), expiry.idle_timeout());
    /// ```
    #[must_use]
    pub fn without_anonymous_idle_timeout(mut self) -> Self {
        self.anonymous_idle_timeout = self.idle_timeout;
        self
    }

    /// The absolute lifetime.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().absolute_lifetime(), Duration::from_secs(30 * 86_400));
    /// ```
    #[must_use]
    pub fn absolute_lifetime(&self) -> Duration {
        self.absolute_lifetime
    }

    /// The accepted clock skew.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().clock_skew(), Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// The share of the idle timeout after which a read refreshes the session.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Expiry::default().refresh_share(), 0.25);
    /// ```
    #[must_use]
    pub fn refresh_share(&self) -> f64 {
        self.refresh_share
    }

    /// Checks a record's timestamps at `now`.
    ///
    /// # Errors
    ///
    /// The [`RejectReason`] if the record is expired, dated beyond the skew window, or its
    /// timestamps are inconsistent.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession_core::session::Record;
    /// use fastsession_core::store::RejectReason;
    /// use fastsession_core::time::UnixTime;
    ///
    /// let expiry = Expiry::new(Duration::from_secs(600), Duration::from_secs(3600))?;
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_user_id(Some("ada".into()));
    /// assert!(expiry.check(&record, UnixTime::from_secs(1_500)).is_ok());
    /// assert_eq!(expiry.check(&record, UnixTime::from_secs(1_600)), Err(RejectReason::IdleTimeout));
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    pub fn check(&self, record: &Record, now: UnixTime) -> Result<(), RejectReason> {
        let latest = now.saturating_add(self.clock_skew);
        if record.created > latest || record.last_active > latest {
            return Err(RejectReason::FromTheFuture);
        }
        if record.last_active < record.created {
            return Err(RejectReason::Corrupt);
        }
        if now >= record.created.saturating_add(self.absolute_lifetime) {
            return Err(RejectReason::AbsoluteTimeout);
        }
        if now
            >= record
                .last_active
                .saturating_add(self.idle_timeout_of(record))
        {
            return Err(RejectReason::IdleTimeout);
        }
        Ok(())
    }

    /// `true` if an unchanged session read at `now` is due to be written again.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession_core::session::Record;
    /// use fastsession_core::time::UnixTime;
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
        now.since(record.last_active) >= threshold
    }

    /// When a record expires if left alone: the earlier of its idle deadline (the anonymous
    /// one if it has no user id) and its absolute deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use std::time::Duration;
    ///
    /// use fastsession_core::session::Record;
    /// use fastsession_core::time::UnixTime;
    ///
    /// let expiry = Expiry::new(Duration::from_secs(600), Duration::from_secs(3600))?;
    /// let mut record = Record::new(UnixTime::from_secs(0));
    /// record.set_user_id(Some("ada".into()));
    /// assert_eq!(expiry.deadline(&record), UnixTime::from_secs(600));
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn deadline(&self, record: &Record) -> UnixTime {
        record
            .last_active
            .saturating_add(self.idle_timeout_of(record))
            .min(record.created.saturating_add(self.absolute_lifetime))
    }

    /// [`deadline`](Self::deadline) of a session with a user id created at `created` and last
    /// active at `last_active` (for a store that knows the times a record had when it was
    /// loaded).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::session::Expiry;
    /// use fastsession_core::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// let expiry = Expiry::new(Duration::from_secs(600), Duration::from_secs(3600))?;
    /// let t = UnixTime::from_secs;
    /// assert_eq!(expiry.deadline_of(t(0), t(100)), t(700));
    /// assert_eq!(expiry.deadline_of(t(0), t(3500)), t(3600));
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn deadline_of(&self, created: UnixTime, last_active: UnixTime) -> UnixTime {
        last_active
            .saturating_add(self.idle_timeout)
            .min(created.saturating_add(self.absolute_lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(created: u64, last: u64) -> Record {
        let mut r = Record::new(UnixTime::from_secs(created));
        r.last_active = UnixTime::from_secs(last);
        r
    }

    #[test]
    fn boundaries_are_exclusive() {
        let e = Expiry::new(Duration::from_secs(100), Duration::from_secs(1000)).unwrap();
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
        let e = Expiry::new(Duration::from_secs(100), Duration::from_secs(1000))
            .unwrap()
            .with_refresh_share(0.25)
            .unwrap();
        let r = record(0, 0);
        assert!(!e.needs_refresh(&r, UnixTime::from_secs(24)));
        assert!(e.needs_refresh(&r, UnixTime::from_secs(25)));
    }

    #[test]
    fn invalid_settings_are_refused() {
        assert!(Expiry::new(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Expiry::default().with_refresh_share(1.0).is_err());
        assert!(Expiry::default().with_refresh_share(f64::NAN).is_err());
    }
}
