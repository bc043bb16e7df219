//! Key rotation: securecookie's `EncodeMulti` and `DecodeMulti`, trying each codec in turn.

use fastsession_core::time::UnixTime;

use super::{SecureCookie, first_json_value};
use crate::error::{Error, ErrorKind, Result};
use crate::go_json;

/// Encodes with the first codec that succeeds, as securecookie's `EncodeMulti` (new cookies
/// under the newest key pair, listed first).
///
/// # Errors
///
/// [`ErrorKind::NoCodecs`] for an empty list; else the last codec's error.
///
/// # Examples
///
/// ```
/// use fastsession::time::UnixTime;
/// use fastsession::gorilla::{SecureCookie, decode_multi, encode_multi};
///
/// let old = SecureCookie::new(b"an old hash key, still accepted!", None)?;
/// let new = SecureCookie::new(b"the new hash key, used to encode", None)?;
/// let now = UnixTime::from_secs(1_700_000_000);
/// let cookie = old.encode_bytes("session", b"value", now)?;
/// // During the rotation both are accepted; new cookies use the first.
/// assert_eq!(decode_multi(&[new.clone(), old], "session", &cookie, now)?, b"value");
/// let fresh = encode_multi(&[new.clone()], "session", b"value", now)?;
/// assert!(new.decode_bytes("session", &fresh, now).is_ok());
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
pub fn encode_multi(
    codecs: &[SecureCookie],
    name: &str,
    payload: &[u8],
    now: UnixTime,
) -> Result<String> {
    let mut last = Error::new(ErrorKind::NoCodecs);
    for codec in codecs {
        match codec.encode_bytes(name, payload, now) {
            Ok(out) => return Ok(out),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Decodes with each codec in turn until one succeeds, as securecookie's `DecodeMulti` (the
/// format has no key id: every key is tried).
///
/// # Errors
///
/// [`ErrorKind::NoCodecs`] for an empty list; else the first codec's error (a cookie under
/// no known key is [`ErrorKind::MacInvalid`] for each).
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::{SecureCookie, decode_multi};
/// use fastsession::time::UnixTime;
///
/// // Go: securecookie.CodecsFromPairs(newHash, nil, oldHash, nil): the new key first.
/// let new = SecureCookie::new(b"the new hash key, used to encode", None)?;
/// let old = SecureCookie::new(b"an old hash key, still accepted!", None)?;
/// let now = UnixTime::now();
/// let from_before_the_rotation = old.encode_bytes("session", b"value", now)?;
/// let codecs = [new, old];
/// assert_eq!(decode_multi(&codecs, "session", &from_before_the_rotation, now)?, b"value");
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
pub fn decode_multi(
    codecs: &[SecureCookie],
    name: &str,
    value: &str,
    now: UnixTime,
) -> Result<Vec<u8>> {
    open_multi(codecs, name, value, now).map(|opened| opened.payload)
}

/// [`encode_multi`] of `value` in Go's JSON: byte for byte securecookie's `EncodeMulti` with
/// codecs whose serializer is `JSONEncoder` (for cookies a Go service writes with
/// `securecookie.EncodeMulti` directly; gorilla/sessions stores cannot use that serializer).
///
/// # Errors
///
/// [`ErrorKind::NoCodecs`] for an empty list; [`ErrorKind::Serialize`] for NaN or infinities;
/// else as [`encode_multi`].
///
/// # Examples
///
/// ```
/// use fastsession::time::UnixTime;
/// use fastsession::gorilla::{SecureCookie, decode_multi_json, encode_multi_json};
///
/// // Go: securecookie.CodecsFromPairs(newHash, nil, oldHash, nil), each with
/// // SetSerializer(securecookie.JSONEncoder{}).
/// let new = SecureCookie::new(b"the new hash key, used to encode", None)?;
/// let old = SecureCookie::new(b"an old hash key, still accepted!", None)?;
/// let codecs = [new, old.clone()];
/// let now = UnixTime::from_secs(1_700_000_000);
/// let value = serde_json::json!({"theme": "dark"});
/// let cookie = encode_multi_json(&codecs, "prefs", &value, now)?;
/// assert_eq!(decode_multi_json(&codecs, "prefs", &cookie, now)?, value);
/// // A cookie from before the rotation still opens.
/// let before = old.encode_json("prefs", &value, now)?;
/// assert_eq!(decode_multi_json(&codecs, "prefs", &before, now)?, value);
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
pub fn encode_multi_json(
    codecs: &[SecureCookie],
    name: &str,
    value: &serde_json::Value,
    now: UnixTime,
) -> Result<String> {
    if codecs.is_empty() {
        return Err(Error::new(ErrorKind::NoCodecs));
    }
    encode_multi(codecs, name, &go_json::to_vec(value)?, now)
}

/// [`decode_multi`] of a value in Go's JSON: as securecookie's `DecodeMulti` with
/// `JSONEncoder` codecs, the value of the first codec that both opens and parses the cookie.
///
/// # Errors
///
/// [`ErrorKind::NoCodecs`] for an empty list; [`ErrorKind::Deserialize`] if a codec opened the
/// cookie but none could parse it; else the first codec's error.
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::{SecureCookie, decode_multi_json};
/// use fastsession::time::UnixTime;
///
/// let new = SecureCookie::new(b"the new hash key, used to encode", None)?;
/// let old = SecureCookie::new(b"an old hash key, still accepted!", None)?;
/// let now = UnixTime::now();
/// let cookie = old.encode_json("prefs", &serde_json::json!({"theme": "dark"}), now)?;
/// let prefs = decode_multi_json(&[new, old], "prefs", &cookie, now)?;
/// assert_eq!(prefs["theme"], "dark");
/// # Ok::<(), fastsession::gorilla::Error>(())
/// ```
pub fn decode_multi_json(
    codecs: &[SecureCookie],
    name: &str,
    value: &str,
    now: UnixTime,
) -> Result<serde_json::Value> {
    let mut first = None;
    let mut unparsed = None;
    for codec in codecs {
        // Go moves on to the next codec when deserializing fails, not only when opening does.
        match codec.decode_bytes(name, value, now) {
            Ok(payload) => match first_json_value(&payload) {
                Ok(json) => return Ok(json),
                Err(e) => {
                    unparsed.get_or_insert(e);
                }
            },
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(unparsed
        .or(first)
        .unwrap_or_else(|| Error::new(ErrorKind::NoCodecs)))
}

/// What [`open_multi`] found.
pub(crate) struct Opened {
    pub(crate) payload: Vec<u8>,
    /// The signed timestamp (Unix seconds; Go accepts negative ones).
    pub(crate) timestamp: i64,
    /// Which codec opened it: above 0, an older key pair.
    pub(crate) codec_index: usize,
}

/// [`decode_multi`], saying which codec opened the value and when it was signed.
pub(crate) fn open_multi(
    codecs: &[SecureCookie],
    name: &str,
    value: &str,
    now: UnixTime,
) -> Result<Opened> {
    let mut first = None;
    for (codec_index, codec) in codecs.iter().enumerate() {
        match codec.open(name, value, now) {
            Ok((payload, timestamp)) => {
                return Ok(Opened {
                    payload,
                    timestamp,
                    codec_index,
                });
            }
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| Error::new(ErrorKind::NoCodecs)))
}
