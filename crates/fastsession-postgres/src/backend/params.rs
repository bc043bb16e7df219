//! The statements' parameters: times, sizes and the user hash as PostgreSQL takes them, the
//! liveness bounds, the change set of an update, and the anonymous budget's bounds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use fastsession_core::session::{Change, Expiry};
use fastsession_core::store::Update;
use fastsession_core::time::UnixTime;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};
use tokio_postgres::types::ToSql;

use super::PostgresBackend;
use crate::nul_escape::{escape_json, escape_text};

impl PostgresBackend {
    /// The anonymous budget's bounds (sessions, bytes), the parameters after a statement's
    /// own in those that keep the budget.
    pub(super) fn budget_bounds(&self) -> [&(dyn ToSql + Sync); 2] {
        [&self.inner.max_anonymous, &self.inner.max_anonymous_bytes]
    }
}

/// Seconds as PostgreSQL's `bigint`; times past year 292 billion saturate (a record dated
/// there is refused as from the future anyway).
pub(super) fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn dur(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A size or count as PostgreSQL's `bigint`.
pub(super) fn len(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The lookup key of a user in the user index: a hash, so the index never holds the id.
pub(super) fn user_hash(user: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"fastsession-user\0");
    h.update(user.as_bytes());
    h.finalize().to_vec()
}

/// The parameters `$2..$11` of the liveness rule and the new deadline (see `sql::LIVE` and
/// `sql::deadline`): the same rules as [`Expiry::check`] and [`Expiry::deadline`], with the
/// idle timeout of each class (a row with a user, an anonymous row, a remembered row with a
/// user), rearranged so that no addition can overflow. The row's own deadline is a column.
pub(super) struct Liveness {
    now: i64,
    latest: i64,
    created_after: i64,
    active_after: i64,
    anonymous_active_after: i64,
    remembered_active_after: i64,
    idle_deadline: i64,
    anonymous_idle_deadline: i64,
    remembered_idle_deadline: i64,
    absolute: i64,
}

impl Liveness {
    pub(super) fn new(now: UnixTime, expiry: &Expiry) -> Self {
        let n = secs(now);
        let (idle, anonymous, remembered) = (
            expiry.idle_timeout(),
            expiry.anonymous_idle_timeout(),
            expiry.remembered_idle_timeout(),
        );
        Liveness {
            now: n,
            latest: secs(now.saturating_add(expiry.clock_skew())),
            created_after: n.saturating_sub(dur(expiry.absolute_lifetime())),
            active_after: n.saturating_sub(dur(idle)),
            anonymous_active_after: n.saturating_sub(dur(anonymous)),
            remembered_active_after: n.saturating_sub(dur(remembered)),
            idle_deadline: secs(now.saturating_add(idle)),
            anonymous_idle_deadline: secs(now.saturating_add(anonymous)),
            remembered_idle_deadline: secs(now.saturating_add(remembered)),
            absolute: dur(expiry.absolute_lifetime()),
        }
    }

    /// `$2..$11`, in order.
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.now,
            &self.latest,
            &self.created_after,
            &self.active_after,
            &self.anonymous_active_after,
            &self.remembered_active_after,
            &self.idle_deadline,
            &self.anonymous_idle_deadline,
            &self.remembered_idle_deadline,
            &self.absolute,
        ]
    }
}

/// JSON text as stored: with U+0000 escaped (see `nul`), without a copy when there is none.
fn stored_json(json: String) -> String {
    match escape_json(&json) {
        Cow::Borrowed(_) => json,
        Cow::Owned(escaped) => escaped,
    }
}

/// A record's values and flashes as the JSON objects stored in `vals` and `flashes`.
pub(super) fn values_json<'a>(items: impl Iterator<Item = (&'a str, &'a RawValue)>) -> String {
    let map: BTreeMap<&str, &RawValue> = items.collect();
    stored_json(
        serde_json::to_string(&map).unwrap_or_else(|_| unreachable!("maps of raw JSON serialize")),
    )
}

pub(super) fn flashes_json<'a>(
    items: impl Iterator<Item = (&'a str, &'a [Box<RawValue>])>,
) -> String {
    let map: BTreeMap<&str, &[Box<RawValue>]> = items.collect();
    stored_json(
        serde_json::to_string(&map).unwrap_or_else(|_| unreachable!("maps of raw JSON serialize")),
    )
}

/// The change set as SQL parameters: keys to remove and an object of keys to set, for values
/// and for flashes, and an object of the values' increments (keys only incremented, with the
/// sum to add to the stored integer).
pub(super) struct Delta<'a> {
    pub(super) remove_values: Vec<Cow<'a, str>>,
    pub(super) set_values: String,
    pub(super) add_values: String,
    pub(super) remove_flashes: Vec<Cow<'a, str>>,
    pub(super) set_flashes: String,
}

impl<'a> Delta<'a> {
    pub(super) fn new(update: &Update<'a>) -> Self {
        let (changes, from) = (update.changes(), update.from());
        let mut remove_values = Vec::new();
        let mut set_values = Vec::new();
        let mut add_values = BTreeMap::new();
        for (key, change) in changes.values() {
            // A key set but missing from the record counts as removed, as in `Record::apply`.
            match (change, changes.delta(key), from.value(key)) {
                (Change::Set, Some(delta), _) => {
                    add_values.insert(key, delta);
                }
                (Change::Set, None, Some(v)) => set_values.push((key, v)),
                _ => remove_values.push(escape_text(key)),
            }
        }
        let mut remove_flashes = Vec::new();
        let mut set_flashes = Vec::new();
        for (key, change) in changes.flashes() {
            match (change, from.flash_list(key)) {
                (Change::Set, Some(list)) => set_flashes.push((key, list)),
                _ => remove_flashes.push(escape_text(key)),
            }
        }
        let add_values = if add_values.is_empty() {
            String::from("{}")
        } else {
            stored_json(
                serde_json::to_string(&add_values)
                    .unwrap_or_else(|_| unreachable!("maps of integers serialize")),
            )
        };
        Delta {
            remove_values,
            set_values: values_json(set_values.into_iter()),
            add_values,
            remove_flashes,
            set_flashes: flashes_json(set_flashes.into_iter()),
        }
    }
}
