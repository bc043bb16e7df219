//! The statements' answers: whether a write was applied, and a row as a record.

use std::collections::BTreeMap;

use fastsession_core::events::{self, Event};
use fastsession_core::session::Record;
use fastsession_core::time::UnixTime;
use serde_json::value::RawValue;
use tokio_postgres::Row;

use crate::nul_escape::{unescape_json, unescape_text};

/// The answer of a create or merge: `SELECT applied, over[, held_back[, version]]`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Written {
    /// The row was inserted or merged.
    pub(super) applied: bool,
    /// The write may have taken the anonymous budget over: `evict` has to run.
    pub(super) over: bool,
    /// A plain merge was held back because it would grow an anonymous row: the budgeted
    /// merge has to run instead.
    pub(super) held_back: bool,
    /// The version a merge made, if it applied.
    pub(super) version: Option<i64>,
}

impl Written {
    pub(super) fn from_rows(rows: &[Row]) -> Self {
        let Some(row) = rows.first() else {
            return Written::default();
        };
        Written {
            applied: row.try_get::<_, i64>(0).unwrap_or(0) > 0,
            over: row.try_get(1).unwrap_or(false),
            held_back: row.try_get(2).unwrap_or(false),
            version: row.try_get(3).unwrap_or(None),
        }
    }
}

/// The answer of `evict`: `(evicted, short)`, each eviction counted as an
/// [`Event::AnonymousEvicted`]; `short` if the walk ran out of rows before the budget held.
pub(super) fn evicted(rows: &[Row]) -> bool {
    let Some(row) = rows.first() else {
        return false;
    };
    let evicted: i64 = row.try_get(0).unwrap_or(0);
    for _ in 0..evicted {
        events::record(Event::AnonymousEvicted);
    }
    row.try_get(1).unwrap_or(false)
}

/// A row of `sql::RECORD_COLUMNS` followed by `version` as a record and its version (`None`
/// if the row does not hold one).
pub(super) fn decode_versioned(row: &Row) -> Option<(Record, Option<u64>)> {
    let version = row
        .try_get::<_, i64>(7)
        .ok()
        .and_then(|v| u64::try_from(v).ok());
    decode(row).map(|record| (record, version))
}

/// A row of `sql::RECORD_COLUMNS` as a record; `None` (and an [`Event::UnreadableRecord`]) if
/// it is not one.
pub(super) fn decode(row: &Row) -> Option<Record> {
    let parsed = (|| -> std::result::Result<Record, &'static str> {
        let time = |i: usize| -> std::result::Result<UnixTime, &'static str> {
            let t: i64 = row.try_get(i).map_err(|_| "timestamp column")?;
            Ok(UnixTime::from_secs(
                u64::try_from(t).map_err(|_| "negative timestamp")?,
            ))
        };
        let mut record = Record::new(time(0)?);
        record.set_last_active(time(1)?);
        record.set_persistent(row.try_get(2).map_err(|_| "persistent column")?);
        let user: Option<String> = row.try_get(3).map_err(|_| "user column")?;
        record.set_user_id(user.map(unescape_text));
        let vals: &str = row.try_get(4).map_err(|_| "vals column")?;
        let values: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(&unescape_json(vals)).map_err(|_| "vals is not an object")?;
        for (key, value) in values {
            record.insert_value(key, value);
        }
        let flashes: &str = row.try_get(5).map_err(|_| "flashes column")?;
        let flashes: BTreeMap<String, Vec<Box<RawValue>>> =
            serde_json::from_str(&unescape_json(flashes))
                .map_err(|_| "flashes is not an object of arrays")?;
        for (key, list) in flashes {
            record.set_flash_list(key, list);
        }
        // NULL in rows written before sessions had their own deadline: none.
        let expires_at: Option<i64> = row.try_get(6).map_err(|_| "expires_at column")?;
        if let Some(at) = expires_at {
            let at = u64::try_from(at).map_err(|_| "negative expires_at")?;
            record.set_expires_at(Some(UnixTime::from_secs(at)));
        }
        Ok(record)
    })();
    match parsed {
        Ok(record) => Some(record),
        Err(detail) => {
            // Counted and summarised: whoever can make such a row can make many.
            events::record(Event::UnreadableRecord);
            tracing::debug!(target: "fastsession::security", reason = "corrupt", detail, "stored session row is not valid; treated as absent");
            None
        }
    }
}
