//! Stores that read (and for cookies, write) gorilla/sessions' formats, and the store that
//! moves sessions from them to a native one; what they share is here.

mod cookie_store;
mod files;
mod filesystem;
mod migrating;

use std::sync::Arc;
use std::time::Duration;

use fastsession_core::http::SessionConfig;
use fastsession_core::session::{Expiry, Record};
use fastsession_core::store::{Loaded, Memo, RejectReason, SaveRequest, Store};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error as CoreError, ErrorKind as CoreErrorKind};

pub use cookie_store::GorillaCookieStore;
pub use filesystem::GorillaFilesystem;
pub use migrating::MigratingStore;

use crate::codec::{SecureCookie, encode_multi};
use crate::error::{Error, ErrorKind};
use crate::options::{GoOptions, expiry_of};
use crate::session::{GorillaFormat, GorillaOrigin};

type CoreResult<T> = Result<T, CoreError>;

/// What a gorilla store shares with the Go service: its codecs (newest key pair first, as
/// Go's `CodecsFromPairs` builds them), how its sessions map, and its options.
#[derive(Clone, Debug)]
struct GoSide {
    codecs: Arc<[SecureCookie]>,
    format: GorillaFormat,
    options: GoOptions,
}

impl GoSide {
    /// `codecs` with the default format and options; refuses an empty list.
    fn new(codecs: Vec<SecureCookie>) -> Result<Self, Error> {
        if codecs.is_empty() {
            return Err(Error::new(ErrorKind::NoCodecs));
        }
        Ok(GoSide {
            codecs: codecs.into(),
            format: GorillaFormat::new(),
            options: GoOptions::new(),
        })
    }

    /// The side of a Go store made with `key_pairs` and configured with `options`.
    fn from_go(key_pairs: &[&[u8]], options: &GoOptions) -> Result<Self, Error> {
        let mut side = GoSide::new(options.codecs(key_pairs)?)?;
        side.options = options.clone();
        Ok(side)
    }

    /// The [`SessionConfig`] of the store `with_side` makes from this side, for the Go
    /// session `cookie_name`: Go's cookie ([`GoOptions::cookie_config`]), an expiry that
    /// refuses nothing the codecs accept ([`go_expiry`]), and sessions Go created
    /// "remember me" exactly when the options' `MaxAge` is above 0, as Go's cookies are.
    fn session_config<S: Store>(
        &self,
        cookie_name: &str,
        with_side: impl FnOnce(GoSide) -> S,
    ) -> CoreResult<SessionConfig> {
        let cookie = self.options.cookie_config(cookie_name)?;
        let persistent = self.options.max_age() > 0;
        let side = GoSide {
            format: self.format.clone().with_persistent(persistent),
            ..self.clone()
        };
        Ok(SessionConfig::new(with_side(side), cookie).with_expiry(go_expiry(&self.codecs)))
    }

    /// `encode_multi` of a session's gob bytes or id for the cookie `name`, with
    /// fastsession's errors: a value beyond the first codec's maximum length is
    /// `too_long(size, limit)`.
    fn seal(
        &self,
        name: &str,
        payload: &[u8],
        now: UnixTime,
        too_long: fn(usize, usize) -> CoreErrorKind,
    ) -> CoreResult<String> {
        let codecs = &self.codecs;
        encode_multi(codecs, name, payload, now).map_err(|e| match e.kind() {
            ErrorKind::EncodeTooLong => {
                let limit = codecs[0].max_length();
                let size = codecs[0]
                    .clone()
                    .with_max_length(0)
                    .encode_bytes(name, payload, now)
                    .map_or(limit, |v| v.len());
                CoreError::new(
                    too_long(size, limit),
                    format!("gorilla session `{name}` is longer than the codec's maximum length"),
                )
            }
            _ => CoreError::new(
                CoreErrorKind::Serialize,
                "gorilla codec refused the session",
            )
            .with_source(e),
        })
    }

    /// The gob bytes of the values `request` saves, as gorilla stores keep them (a clear, or
    /// a change to their key, drops the values Rust could not see).
    fn values_gob(&self, request: &SaveRequest<'_>) -> CoreResult<Vec<u8>> {
        self.format
            .write(
                request.record(),
                origin_of(request),
                Some(request.changes()),
            )
            .map_err(|e| {
                CoreError::new(
                    CoreErrorKind::Serialize,
                    "session cannot be written in gorilla's format",
                )
                .with_source(e)
            })
    }
}

/// A gorilla session as a store read it.
struct Read {
    record: Record,
    /// What the record cannot hold, for the save: the session's memo.
    origin: GorillaOrigin,
    /// An older key pair opened it: write it again under the newest.
    stale: bool,
}

/// What a load answers for a gorilla session read, or refused.
fn loaded(read: Result<Read, RejectReason>) -> Loaded {
    match read {
        Ok(read) => {
            let loaded = Loaded::found(read.record).with_reseal(read.stale);
            let loaded = if read.origin.has_hidden_values() {
                loaded.with_hidden_values()
            } else {
                loaded
            };
            loaded.with_memo(Memo::new(read.origin))
        }
        Err(reason) => Loaded::rejected(reason),
    }
}

/// What the gorilla store that loaded the session `request` saves kept of it, if it did.
fn origin_of<'a>(request: &SaveRequest<'a>) -> Option<&'a GorillaOrigin> {
    request.memo()?.get()
}

/// Why a gorilla value was not accepted, in fastsession's terms.
fn reject_reason(error: &Error) -> RejectReason {
    match error.kind() {
        ErrorKind::MacInvalid => RejectReason::NotAuthentic,
        ErrorKind::TimestampExpired => RejectReason::IdleTimeout,
        ErrorKind::TimestampTooNew => RejectReason::FromTheFuture,
        ErrorKind::Deserialize => RejectReason::Corrupt,
        _ => RejectReason::Malformed,
    }
}

/// The longest maximum age among the codecs, `None` if one has none (its cookies never expire
/// by age).
fn longest_max_age(codecs: &[SecureCookie]) -> Option<Duration> {
    codecs
        .iter()
        .map(SecureCookie::max_age)
        .try_fold(0u64, |longest, age| (age != 0).then_some(longest.max(age)))
        .map(Duration::from_secs)
}

/// The expiry that accepts what Go's codecs accept: idle up to their longest maximum age, no
/// absolute lifetime, any future timestamp.
fn go_expiry(codecs: &[SecureCookie]) -> Expiry {
    expiry_of(longest_max_age(codecs).map_or(0, |age| age.as_secs()))
}

/// The error of a save whose session ended before it: by a logout, a regeneration, or its
/// deadline passing while the request ran.
fn ended() -> CoreError {
    CoreError::new(
        CoreErrorKind::SessionEnded,
        "gorilla session ended before this request saved it",
    )
}

/// Whether a session that was live when the request read it reached its deadline before the
/// save (a save must not extend it).
fn expired_meanwhile(request: &SaveRequest<'_>) -> bool {
    let Some(loaded) = origin_of(request).and_then(GorillaOrigin::last_active) else {
        return false;
    };
    let deadline = request
        .expiry()
        .deadline_of(request.record().created(), loaded);
    // The session's own deadline as loaded (one this request set is its new one).
    let own = Some(request.record())
        .filter(|_| !request.changes().expires_at_changed())
        .and_then(Record::expires_at);
    request.now() >= own.map_or(deadline, |at| deadline.min(at))
}
