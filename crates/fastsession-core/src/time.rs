//! Time: whole seconds since the Unix epoch, and an injectable clock.
//!
//! Sessions record when they were created and last active in whole seconds, inside the sealed
//! cookie or the stored record. Every expiry decision reads the time from a [`Clock`], so tests
//! (and the conformance suite) can move time forward without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in whole seconds since the Unix epoch (UTC).
///
/// # Examples
///
/// ```
/// use fastsession::time::UnixTime;
/// use std::time::Duration;
///
/// let t = UnixTime::from_secs(1_700_000_000);
/// assert_eq!(t.saturating_add(Duration::from_secs(60)).as_secs(), 1_700_000_060);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself, 1970-01-01T00:00:00Z.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// Returns a time `secs` seconds after the epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// let t = UnixTime::from_secs(1_700_000_000);
    /// assert_eq!(t.as_secs(), 1_700_000_000);
    /// ```
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// assert_eq!(UnixTime::from_secs(60).as_secs(), 60);
    /// ```
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Returns the current wall-clock time; times before the epoch read as the epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// assert!(UnixTime::now() > UnixTime::from_secs(1_700_000_000));
    /// ```
    #[must_use]
    pub fn now() -> Self {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(Self::EPOCH, |d| UnixTime(d.as_secs()))
    }

    /// `self + d`, saturating at the far future instead of overflowing.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// let t = UnixTime::from_secs(100);
    /// assert_eq!(t.saturating_add(Duration::from_secs(20)), UnixTime::from_secs(120));
    /// assert_eq!(UnixTime::from_secs(u64::MAX).saturating_add(Duration::from_secs(1)).as_secs(), u64::MAX);
    /// ```
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        UnixTime(self.0.saturating_add(d.as_secs()))
    }

    /// `self - d`, saturating at the epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// let t = UnixTime::from_secs(100);
    /// assert_eq!(t.saturating_sub(Duration::from_secs(20)), UnixTime::from_secs(80));
    /// assert_eq!(t.saturating_sub(Duration::from_secs(999)), UnixTime::EPOCH);
    /// ```
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        UnixTime(self.0.saturating_sub(d.as_secs()))
    }

    /// Returns the time from `earlier` to `self`, or zero if `earlier` is later.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::UnixTime;
    /// use std::time::Duration;
    ///
    /// let (start, end) = (UnixTime::from_secs(100), UnixTime::from_secs(160));
    /// assert_eq!(end.since(start), Duration::from_secs(60));
    /// assert_eq!(start.since(end), Duration::ZERO);
    /// ```
    #[must_use]
    pub fn since(self, earlier: UnixTime) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }
}

/// A source of the current time.
///
/// The library reads the time only through this trait. [`SystemClock`] is the default;
/// [`ManualClock`] lets tests move time by hand.
///
/// # Examples
///
/// ```
/// use fastsession::time::{Clock, ManualClock, UnixTime};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(UnixTime::from_secs(1_000));
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), UnixTime::from_secs(1_030));
/// ```
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The system's wall clock.
///
/// # Examples
///
/// ```
/// use fastsession::time::{Clock, SystemClock};
///
/// assert!(SystemClock.now().as_secs() > 1_600_000_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// # Examples
///
/// ```
/// use fastsession::time::{Clock, ManualClock, UnixTime};
///
/// let clock = ManualClock::new(UnixTime::from_secs(10));
/// let other = clock.clone();
/// other.set(UnixTime::from_secs(20));
/// assert_eq!(clock.now().as_secs(), 20);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// Returns a clock stopped at `start`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::{Clock, ManualClock, UnixTime};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(UnixTime::from_secs(1_000));
    /// assert_eq!(clock.now(), UnixTime::from_secs(1_000));
    /// ```
    #[must_use]
    pub fn new(start: UnixTime) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start.as_secs())))
    }

    /// Moves the clock forward by `d`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::{Clock, ManualClock, UnixTime};
    /// use std::time::Duration;
    ///
    /// // A test that waits out an idle timeout without sleeping.
    /// let clock = ManualClock::new(UnixTime::from_secs(1_000));
    /// clock.advance(Duration::from_secs(25 * 3600));
    /// assert_eq!(clock.now(), UnixTime::from_secs(1_000 + 25 * 3600));
    /// ```
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_secs(), Ordering::SeqCst);
    }

    /// Sets the clock to `t` (which may be earlier than now, to test clock steps).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::time::{Clock, ManualClock, UnixTime};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(UnixTime::from_secs(1_000));
    /// clock.set(UnixTime::from_secs(500)); // a clock stepped back
    /// assert_eq!(clock.now(), UnixTime::from_secs(500));
    /// ```
    pub fn set(&self, t: UnixTime) {
        self.0.store(t.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let max = UnixTime::from_secs(u64::MAX);
        assert_eq!(max.saturating_add(Duration::from_secs(1)), max);
        assert_eq!(
            UnixTime::EPOCH.saturating_sub(Duration::from_secs(1)),
            UnixTime::EPOCH
        );
        assert_eq!(UnixTime::EPOCH.since(max), Duration::ZERO);
    }
}
