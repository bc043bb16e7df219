//! The session handle's unit tests.

use super::*;

#[test]
fn change_tracking() {
    let s = Session::new_detached();
    assert!(!s.is_modified());
    assert!(!s.remove("missing"));
    s.clear();
    assert!(!s.is_modified(), "removing nothing is not a change");
    s.insert("a", 1).unwrap();
    s.insert("b", 2).unwrap();
    assert!(s.remove("b"));
    let c = s.changes();
    assert_eq!(
        c.values().collect::<Vec<_>>(),
        [("a", Change::Set), ("b", Change::Removed)]
    );
    s.clear();
    let c = s.changes();
    assert!(c.values_cleared() && c.values().next().is_none());
    s.set_persistent(true);
    assert!(s.changes().persistent_changed());
}

/// A store may hold values a request cannot see (another format's): clearing a loaded
/// session that holds them tells it to drop them, even with no value in sight. With nothing
/// in sight or out of it, clearing is no change.
#[test]
fn clearing_reaches_values_out_of_sight_and_nothing_else() {
    let mut state = State::with_record(Record::new(UnixTime::from_secs(100)), false);
    state.hidden_values = true;
    let hiding = Session::from_state(state);
    hiding.clear();
    assert!(hiding.changes().values_cleared());
    assert_eq!(hiding.status(), SessionStatus::Changed);

    let loaded = Session::from_state(State::with_record(
        Record::new(UnixTime::from_secs(100)),
        false,
    ));
    loaded.clear();
    assert!(!loaded.is_modified(), "a loaded session holding nothing");
    let fresh = Session::new_detached();
    fresh.clear();
    assert!(!fresh.is_modified(), "a new session holds nothing anywhere");
}

#[test]
fn updates_record_a_change_only_when_they_store_and_fail_without_one() {
    let s = Session::new_detached();
    assert_eq!(s.update("n", |n: u32| n + 1).unwrap(), None);
    assert!(!s.is_modified(), "nothing to update is no change");
    assert_eq!(s.update_or("n", 5, |n: u32| n + 1).unwrap(), 5);
    assert_eq!(
        s.changes().values().collect::<Vec<_>>(),
        [("n", Change::Set)]
    );
    s.insert("text", "x").unwrap();
    let before = s.changes();
    assert_eq!(
        s.update("text", |n: u32| n + 1).unwrap_err().kind(),
        ErrorKind::Deserialize
    );
    assert_eq!(s.changes(), before);
    assert_eq!(s.get::<String>("text").unwrap().as_deref(), Some("x"));
    // Threads sharing one request's session never lose an update.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..100 {
                    s.update_or("count", 1u32, |n| n + 1).unwrap();
                }
            });
        }
    });
    assert_eq!(s.get::<u32>("count").unwrap(), Some(800));
}

#[test]
fn increments_carry_a_delta_until_another_operation_on_the_key() {
    let s = Session::new_detached();
    assert_eq!(s.increment("n", 2).unwrap(), 2);
    assert_eq!(s.increment("n", 3).unwrap(), 5);
    let c = s.changes();
    assert_eq!(c.values().collect::<Vec<_>>(), [("n", Change::Set)]);
    assert_eq!(c.deltas().collect::<Vec<_>>(), [("n", 5)]);
    // An insert after an increment is a plain set; an increment after it adds on top
    // and stays a plain set.
    s.insert("n", 10).unwrap();
    assert_eq!(s.changes().delta("n"), None);
    assert_eq!(s.increment("n", 1).unwrap(), 11);
    assert_eq!(s.changes().delta("n"), None);
    // So does an update.
    assert_eq!(s.increment("u", 1).unwrap(), 1);
    assert_eq!(s.update("u", |n: i64| n * 7).unwrap(), Some(7));
    assert_eq!(s.changes().delta("u"), None);
    // A removal drops the delta; an increment after it counts from 0, as a set.
    assert_eq!(s.increment("r", 4).unwrap(), 4);
    assert!(s.remove("r"));
    assert_eq!(s.changes().delta("r"), None);
    assert_eq!(
        s.changes().values().find(|(k, _)| *k == "r"),
        Some(("r", Change::Removed))
    );
    assert_eq!(s.increment("r", 1).unwrap(), 1);
    assert_eq!(s.changes().delta("r"), None);
    // A clear drops every delta; an increment after it counts from 0 again, as a delta
    // on top of the clear.
    s.clear();
    assert_eq!(s.changes().deltas().count(), 0);
    assert_eq!(s.increment("n", 1).unwrap(), 1);
    let c = s.changes();
    assert!(c.values_cleared());
    assert_eq!(c.delta("n"), Some(1));
}

#[test]
fn a_failed_increment_changes_nothing() {
    let s = Session::new_detached();
    s.insert("text", "x").unwrap();
    s.insert("float", 1.5).unwrap();
    s.insert("big", u64::MAX).unwrap();
    s.insert("max", i64::MAX).unwrap();
    s.insert("min", i64::MIN).unwrap();
    let before = s.changes();
    for key in ["text", "float", "big"] {
        assert_eq!(
            s.increment(key, 1).unwrap_err().kind(),
            ErrorKind::Deserialize,
            "{key}"
        );
    }
    assert_eq!(
        s.increment("max", 1).unwrap_err().kind(),
        ErrorKind::Serialize
    );
    assert_eq!(
        s.increment("min", -1).unwrap_err().kind(),
        ErrorKind::Serialize
    );
    assert_eq!(s.changes(), before);
    assert_eq!(s.get::<i64>("max").unwrap(), Some(i64::MAX));
    assert_eq!(s.increment("max", -1).unwrap(), i64::MAX - 1);
}

#[test]
fn adding_zero_to_a_value_changes_nothing() {
    let s = Session::from_state(State::with_record(
        {
            let mut record = Record::new(UnixTime::from_secs(100));
            record.insert_value("n".to_owned(), to_raw(&4).unwrap());
            record
        },
        false,
    ));
    assert_eq!(s.increment("n", 0).unwrap(), 4);
    assert!(!s.is_modified());
    assert_eq!(s.increment("missing", 0).unwrap(), 0);
    assert_eq!(s.get::<i64>("missing").unwrap(), Some(0));
}

#[test]
fn deltas_that_overflow_together_become_a_set() {
    let s = Session::from_state(State::with_record(
        {
            let mut record = Record::new(UnixTime::from_secs(100));
            record.insert_value("n".to_owned(), to_raw(&i64::MIN).unwrap());
            record
        },
        false,
    ));
    assert_eq!(s.increment("n", i64::MAX).unwrap(), -1);
    assert_eq!(s.increment("n", i64::MAX).unwrap(), i64::MAX - 1);
    assert_eq!(s.changes().delta("n"), None);
    assert_eq!(s.get::<i64>("n").unwrap(), Some(i64::MAX - 1));
}

#[test]
fn threads_of_one_request_never_lose_an_increment() {
    let s = Session::new_detached();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..100 {
                    s.increment("count", 1).unwrap();
                }
            });
        }
    });
    assert_eq!(s.get::<i64>("count").unwrap(), Some(800));
    assert_eq!(s.changes().delta("count"), Some(800));
}

#[test]
fn insert_failure_leaves_the_session_unchanged() {
    let s = Session::new_detached();
    let mut bad = std::collections::HashMap::new();
    bad.insert((1, 2), 3);
    assert_eq!(s.insert("k", bad).unwrap_err().kind(), ErrorKind::Serialize);
    assert!(!s.is_modified() && !s.contains("k"));
}

#[test]
fn named_flashes_and_failed_takes() {
    let s = Session::new_detached();
    s.add_flash_under("errors", "bad").unwrap();
    s.add_flash_under("errors", "worse").unwrap();
    s.add_flash(1).unwrap();
    assert!(s.take_flashes::<String>().is_err());
    assert_eq!(s.take_flashes::<u8>().unwrap(), [1]);
    assert_eq!(
        s.take_flashes_under::<String>("errors").unwrap(),
        ["bad", "worse"]
    );
    assert!(s.take_flashes_under::<String>("errors").unwrap().is_empty());
}

#[test]
fn peeking_flashes_leaves_them_and_modifies_nothing() {
    let s = Session::from_state(State::with_record(
        {
            let mut record = Record::new(UnixTime::from_secs(100));
            record.set_flash_list(
                DEFAULT_FLASH_KEY.to_owned(),
                vec![to_raw(&"hello").unwrap(), to_raw(&"again").unwrap()],
            );
            record.set_flash_list("errors".to_owned(), vec![to_raw(&7).unwrap()]);
            record
        },
        false,
    ));
    assert_eq!(s.peek_flashes::<String>().unwrap(), ["hello", "again"]);
    assert_eq!(s.peek_flashes_under::<u8>("errors").unwrap(), [7]);
    assert!(s.peek_flashes_under::<u8>("none").unwrap().is_empty());
    assert!(
        !s.is_modified(),
        "a loaded session only peeked at is not saved"
    );
    assert_eq!(s.changes(), ChangeSet::default());
    // Still there for the request that takes them.
    assert_eq!(s.take_flashes::<String>().unwrap(), ["hello", "again"]);
    assert!(s.is_modified());
}

#[test]
fn a_failed_peek_leaves_the_flashes() {
    let s = Session::new_detached();
    s.add_flash("text").unwrap();
    let before = s.changes();
    assert_eq!(
        s.peek_flashes::<u32>().unwrap_err().kind(),
        ErrorKind::Deserialize
    );
    assert_eq!(s.changes(), before);
    assert_eq!(s.take_flashes::<String>().unwrap(), ["text"]);
}

#[test]
fn status_follows_changes_regeneration_and_destruction() {
    let s = Session::new_detached();
    assert_eq!(s.status(), SessionStatus::Unchanged);
    assert!(!s.remove("missing"));
    assert_eq!(s.status(), SessionStatus::Unchanged, "no change, no status");
    s.set_expires_at(Some(UnixTime::from_secs(10)));
    assert_eq!(s.status(), SessionStatus::Changed);
    let s = Session::new_detached();
    s.set_user_id("ada");
    assert_eq!(s.status(), SessionStatus::Changed);
    s.regenerate();
    assert_eq!(s.status(), SessionStatus::Renewed);
    s.destroy();
    s.regenerate();
    assert_eq!(s.status(), SessionStatus::Purged, "destroy wins");
    // Peeking at a loaded session's flashes is no change; taking them is.
    let s = Session::from_state(State::with_record(
        {
            let mut record = Record::new(UnixTime::from_secs(100));
            record.set_flash_list(DEFAULT_FLASH_KEY.to_owned(), vec![to_raw(&1).unwrap()]);
            record
        },
        false,
    ));
    s.peek_flashes::<u8>().unwrap();
    assert_eq!(s.status(), SessionStatus::Unchanged);
    s.take_flashes::<u8>().unwrap();
    assert_eq!(s.status(), SessionStatus::Changed);
}

#[test]
fn entries_copy_the_values_and_leave_out_flashes() {
    let s = Session::new_detached();
    assert!(s.entries().is_empty());
    s.insert("b", vec![1, 2]).unwrap();
    s.insert("a", "x").unwrap();
    s.add_flash("flash").unwrap();
    let entries = s.entries();
    let texts: Vec<_> = entries.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
    assert_eq!(texts, [("a", "\"x\""), ("b", "[1,2]")]);
    // A copy: later changes do not show in it, and taking it changed nothing.
    s.remove("a");
    assert!(entries.contains_key("a"));
    assert_eq!(s.entries().len(), 1);
}

#[test]
fn expires_at_is_a_change_only_when_it_differs() {
    let s = Session::new_detached();
    s.set_expires_at(None);
    assert!(!s.is_modified());
    let at = Some(UnixTime::from_secs(1_000));
    s.set_expires_at(at);
    assert!(s.changes().expires_at_changed());
    assert_eq!(s.expires_at(), at);
    let s = Session::from_state(State::with_record(
        {
            let mut record = Record::new(UnixTime::from_secs(100));
            record.set_expires_at(at);
            record
        },
        false,
    ));
    s.set_expires_at(at);
    assert!(!s.is_modified(), "the same deadline again is no change");
    s.set_expires_at(None);
    assert!(s.changes().expires_at_changed() && s.expires_at().is_none());
}

#[test]
fn destroy_drops_data_and_wins_over_regenerate() {
    let s = Session::new_detached();
    s.insert("a", 1).unwrap();
    s.destroy();
    s.regenerate();
    assert!(s.is_destroyed() && s.is_empty());
}

#[test]
fn debug_shows_no_values() {
    let s = Session::new_detached();
    s.insert("token", "s3cr3t").unwrap();
    assert!(!format!("{s:?}").contains("s3cr3t"));
}
