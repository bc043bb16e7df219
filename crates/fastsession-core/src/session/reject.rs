//! Why a cookie did not yield a session.

use std::fmt;

use crate::codec::{Failure, OpenError};

/// Why a cookie did not yield a session. The request gets a fresh session, the same for every
/// reason; only the `tracing` event (target `fastsession::security`) says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Not a well-formed value: wrong length, not canonical base64url, not a session id (or,
    /// with a signed id, not a signed one).
    Malformed,
    /// A format version this build does not know.
    UnknownVersion,
    /// Sealed by a key that is not in the key ring (removed, or never ours).
    UnknownKey,
    /// The tag did not verify: tampered, truncated, forged, or sealed or signed for another
    /// name or purpose.
    NotAuthentic,
    /// Authentic but its contents do not parse.
    Corrupt,
    /// A timestamp beyond the clock-skew window.
    FromTheFuture,
    /// Unused for longer than the idle timeout.
    IdleTimeout,
    /// Older than the absolute lifetime.
    AbsoluteTimeout,
    /// The request carried the session cookie more than once.
    DuplicateCookies,
    /// A well-formed id the store does not know (never adopted).
    UnknownId,
    /// Ended by logout or "log out everywhere".
    Revoked,
}

impl RejectReason {
    /// Returns a short, stable name for logs and metrics.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::RejectReason;
    ///
    /// // A metric label, the same as the `reason` field of the log lines.
    /// assert_eq!(RejectReason::IdleTimeout.as_str(), "idle_timeout");
    /// assert_eq!(RejectReason::NotAuthentic.to_string(), "not_authentic");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownVersion => "unknown_version",
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::NotAuthentic => "not_authentic",
            RejectReason::Corrupt => "corrupt",
            RejectReason::FromTheFuture => "from_the_future",
            RejectReason::IdleTimeout => "idle_timeout",
            RejectReason::AbsoluteTimeout => "absolute_timeout",
            RejectReason::DuplicateCookies => "duplicate_cookies",
            RejectReason::UnknownId => "unknown_id",
            RejectReason::Revoked => "revoked",
        }
    }
}

impl RejectReason {
    /// The reason a sealed or signed value did not open.
    pub(crate) fn of_open_error(error: OpenError) -> Self {
        match error.failure() {
            Failure::Malformed => RejectReason::Malformed,
            Failure::UnknownVersion => RejectReason::UnknownVersion,
            Failure::UnknownKey => RejectReason::UnknownKey,
            Failure::NotAuthentic => RejectReason::NotAuthentic,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
