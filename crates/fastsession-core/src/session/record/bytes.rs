//! A record's bytes: a fixed binary header, then the data as JSON.

use serde::{Deserialize, Serialize};

use super::{Flashes, Record, Values};
use crate::session::KeyMap;
use crate::session::id::{ID_BYTES, SessionId};
use crate::time::UnixTime;

const FLAG_PERSISTENT: u8 = 1;
const FLAG_HAS_ID: u8 = 2;
/// The record carries its own deadline ([`Record::expires_at`]). A flag rather than a new
/// layout, so that records written before it existed (no flag) read as they always did; a
/// build that predates it refuses such a record as it refuses any unknown flag.
const FLAG_EXPIRES_AT: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_PERSISTENT | FLAG_HAS_ID | FLAG_EXPIRES_AT;
const FIXED_LEN: usize = 1 + 8 + 8;
/// Deepest JSON nesting a record may hold (the body object and its maps count).
const MAX_DEPTH: usize = 64;

#[derive(Serialize)]
struct BodyRef<'a> {
    #[serde(
        rename = "v",
        skip_serializing_if = "KeyMap::is_empty",
        serialize_with = "as_object"
    )]
    values: &'a Values,
    #[serde(
        rename = "f",
        skip_serializing_if = "KeyMap::is_empty",
        serialize_with = "as_object"
    )]
    flashes: &'a Flashes,
    #[serde(rename = "u", skip_serializing_if = "Option::is_none")]
    user: &'a Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(rename = "v", default, deserialize_with = "unique_keys")]
    values: Values,
    #[serde(rename = "f", default, deserialize_with = "unique_keys")]
    flashes: Flashes,
    #[serde(rename = "u", default)]
    user: Option<String>,
}

/// A map as a JSON object, its keys in order.
fn as_object<S: serde::Serializer, V: Serialize>(
    map: &&KeyMap<V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.iter())
}

/// A JSON object as a map, refusing duplicate keys (serde would keep the last silently).
///
/// The records this crate writes list their keys in order, so each key goes at the end; an
/// object in another order is sorted once, never inserted key by key (quadratic in its size).
fn unique_keys<'de, D, V>(deserializer: D) -> Result<KeyMap<V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = KeyMap<V>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object with unique keys")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries: Vec<(String, V)> = Vec::new();
            let mut in_order = true;
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                in_order &= entries.last().is_none_or(|(last, _)| *last < key);
                entries.push((key, value));
            }
            if !in_order {
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                if entries.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                    return Err(serde::de::Error::custom("duplicate key"));
                }
            }
            Ok(KeyMap::from_sorted_store_unchecked(entries))
        }
    }

    deserializer.deserialize_map(Unique(std::marker::PhantomData))
}

/// A record's bytes were not a valid encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordError(());

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("session record is not valid")
    }
}

impl std::error::Error for RecordError {}

impl Record {
    /// Returns the record's bytes: a fixed binary header, then the values and flashes as JSON.
    ///
    /// ```text
    /// flags (1) ‖ created (8, BE) ‖ last active (8, BE) ‖ [session id (32) if flag 2]
    ///   ‖ [expires at (8, BE) if flag 4] ‖ JSON
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // A store that keeps whole records as blobs (a file, a key-value entry).
    /// let record = Record::new(UnixTime::from_secs(1_000));
    /// let blob = record.to_bytes();
    /// assert_eq!(blob.len(), 17); // the flags and two timestamps: no data yet
    /// assert_eq!(Record::from_bytes(&blob).unwrap(), record);
    /// ```
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out);
        out
    }

    /// Appends [`to_bytes`](Self::to_bytes) to `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // A header of the store's own, then the record, in one buffer.
    /// let record = Record::new(UnixTime::from_secs(1_000));
    /// let mut file = b"v1\n".to_vec();
    /// record.write_to(&mut file);
    /// assert_eq!(Record::from_bytes(&file[3..]).unwrap(), record);
    /// ```
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.persistent {
            flags |= FLAG_PERSISTENT;
        }
        if self.id.is_some() {
            flags |= FLAG_HAS_ID;
        }
        if self.expires_at.is_some() {
            flags |= FLAG_EXPIRES_AT;
        }
        out.push(flags);
        out.extend_from_slice(&self.created.as_secs().to_be_bytes());
        out.extend_from_slice(&self.last_active.as_secs().to_be_bytes());
        if let Some(id) = &self.id {
            out.extend_from_slice(id.as_bytes());
        }
        if let Some(at) = self.expires_at {
            out.extend_from_slice(&at.as_secs().to_be_bytes());
        }
        if !self.is_empty() {
            let body = BodyRef {
                values: &self.values,
                flashes: &self.flashes,
                user: &self.user,
            };
            // Serializing maps of strings to already-valid JSON cannot fail.
            if serde_json::to_writer(&mut *out, &body).is_err() {
                unreachable!("record body serializes");
            }
        }
    }

    /// Parses [`to_bytes`](Self::to_bytes) output.
    ///
    /// # Errors
    ///
    /// [`RecordError`] for truncated input, unknown flags, or JSON that is not a record body
    /// (including nesting deeper than 64 levels).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let record = Record::new(UnixTime::from_secs(1_000));
    /// assert_eq!(Record::from_bytes(&record.to_bytes()), Ok(record));
    /// // A truncated or foreign blob is an error (the store treats it as no session).
    /// assert!(Record::from_bytes(b"not a record").is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let bad = RecordError(());
        if bytes.len() < FIXED_LEN {
            return Err(bad);
        }
        let (fixed, mut rest) = bytes.split_at(FIXED_LEN);
        let flags = fixed[0];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(bad);
        }
        let secs = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        let created = UnixTime::from_secs(secs(&fixed[1..9]));
        let last_active = UnixTime::from_secs(secs(&fixed[9..17]));
        let id = if flags & FLAG_HAS_ID != 0 {
            if rest.len() < ID_BYTES {
                return Err(bad);
            }
            let (id, tail) = rest.split_at(ID_BYTES);
            rest = tail;
            Some(SessionId::from_bytes(id.try_into().unwrap_or_default()))
        } else {
            None
        };
        let expires_at = if flags & FLAG_EXPIRES_AT != 0 {
            if rest.len() < 8 {
                return Err(bad);
            }
            let (at, tail) = rest.split_at(8);
            rest = tail;
            Some(UnixTime::from_secs(secs(at)))
        } else {
            None
        };
        let body: Body = if rest.is_empty() {
            Body::default()
        } else if rest[0] != b'{'
            || (bracket_count(rest) > MAX_DEPTH && nesting_depth(rest) > MAX_DEPTH)
        {
            // serde would also read a struct from an array; raw values skip its depth limit.
            return Err(bad);
        } else {
            serde_json::from_slice(rest).map_err(|_| bad)?
        };
        Ok(Record {
            values: super::SharedValues::new(body.values),
            flashes: body.flashes,
            created,
            last_active,
            persistent: flags & FLAG_PERSISTENT != 0,
            id,
            user: body.user,
            expires_at,
        })
    }
}

/// How many `[` and `{` a text holds: a cheap bound on its nesting depth.
fn bracket_count(json: &[u8]) -> usize {
    json.iter().filter(|&&b| b == b'[' || b == b'{').count()
}

/// The deepest nesting of `[`/`{` in a JSON text, ignoring brackets inside strings.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::super::tests::raw;
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let mut r = Record::new(UnixTime::from_secs(5));
        r.last_active = UnixTime::from_secs(9);
        r.persistent = true;
        r.id = Some(SessionId::from_bytes([7; ID_BYTES]));
        r.insert_value("name".into(), raw("\"gopher\""));
        r.flashes
            .insert("_flash".into(), vec![raw("1"), raw("{\"a\":[]}")]);
        let bytes = r.to_bytes();
        assert_eq!(Record::from_bytes(&bytes).unwrap(), r);
    }

    #[test]
    fn expires_at_round_trips_behind_its_flag() {
        let mut r = Record::new(UnixTime::from_secs(5));
        r.id = Some(SessionId::from_bytes([7; ID_BYTES]));
        r.insert_value("a".into(), raw("1"));
        r.expires_at = Some(UnixTime::from_secs(0x0102_0304_0506_0708));
        let bytes = r.to_bytes();
        assert_eq!(bytes[0], FLAG_HAS_ID | FLAG_EXPIRES_AT);
        assert_eq!(
            bytes[FIXED_LEN + ID_BYTES..FIXED_LEN + ID_BYTES + 8],
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(Record::from_bytes(&bytes).unwrap(), r);
        // Without an id, the deadline follows the timestamps directly.
        r.id = None;
        assert_eq!(Record::from_bytes(&r.to_bytes()).unwrap(), r);
        // The flag without its eight bytes is refused, not read as a body.
        let mut cut = Record::new(UnixTime::from_secs(5)).to_bytes();
        cut[0] = FLAG_EXPIRES_AT;
        cut.extend_from_slice(&[0; 7]);
        assert!(Record::from_bytes(&cut).is_err());
    }

    /// Bytes written before records had their own deadline (no flag 4) read as they did.
    #[test]
    fn records_written_before_expires_at_still_load() {
        let mut old = vec![FLAG_PERSISTENT];
        old.extend_from_slice(&100u64.to_be_bytes());
        old.extend_from_slice(&150u64.to_be_bytes());
        old.extend_from_slice(br#"{"v":{"n":1},"u":"ada"}"#);
        let r = Record::from_bytes(&old).unwrap();
        assert_eq!(r.expires_at(), None);
        assert!(r.is_persistent());
        assert_eq!(r.user_id(), Some("ada"));
        assert_eq!(r.value("n").map(RawValue::get), Some("1"));
        assert_eq!(r.to_bytes(), old, "and are written back byte for byte");
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(br#"{"a":"[[[{\"]]"}"#), 1);
        assert_eq!(nesting_depth(br#"{"v":{"a":[[1]]}}"#), 4);
    }

    #[test]
    fn keys_in_any_order_read_as_in_order() {
        let header = Record::new(UnixTime::EPOCH).to_bytes();
        let decode = |body: &str| {
            let mut bytes = header.clone();
            bytes.extend_from_slice(body.as_bytes());
            Record::from_bytes(&bytes).unwrap()
        };
        let shuffled = decode(r#"{"v":{"c":3,"a":1,"b":2},"f":{"z":[1],"y":[2]}}"#);
        let sorted = decode(r#"{"v":{"a":1,"b":2,"c":3},"f":{"y":[2],"z":[1]}}"#);
        assert_eq!(shuffled, sorted);
        let keys: Vec<&str> = shuffled.values().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(shuffled.value("b").map(RawValue::get), Some("2"));
        // Written back in order.
        assert_eq!(shuffled.to_bytes(), sorted.to_bytes());
    }

    #[test]
    fn empty_record_is_just_the_header() {
        assert_eq!(Record::new(UnixTime::EPOCH).to_bytes().len(), FIXED_LEN);
    }

    #[test]
    fn hostile_bodies_are_refused_without_panicking() {
        let header = Record::new(UnixTime::EPOCH).to_bytes();
        let deep = format!(
            "{{\"v\":{{\"a\":{}{}}}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        for body in [
            &b"{"[..],
            b"[]",
            b"{\"v\":[]}",
            b"{\"x\":{}}",
            b"{\"v\":{\"a\":}}",
            b"\xff\xfe",
            br#"{"v":{"a":1,"a":2}}"#,
            br#"{"f":{"_flash":[1],"_flash":[2]}}"#,
            // Out of order, so found only after sorting.
            br#"{"v":{"b":1,"a":2,"b":3}}"#,
            deep.as_bytes(),
        ] {
            let mut bytes = header.clone();
            bytes.extend_from_slice(body);
            let shown: String = String::from_utf8_lossy(body).chars().take(40).collect();
            assert!(Record::from_bytes(&bytes).is_err(), "{shown}");
        }
        assert!(Record::from_bytes(&[0x80; 17]).is_err());
        assert!(Record::from_bytes(&[2; 20]).is_err());
    }
}
