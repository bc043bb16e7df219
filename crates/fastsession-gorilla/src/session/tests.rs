//! The mapping's unit tests, on Go's own bytes where Go wrote them.

use std::sync::Arc;

use super::*;

fn named(name: &str, ty: GoType, v: GoValue) -> GoValue {
    GoValue::named(name, ty, v)
}

fn s(text: &str) -> GoValue {
    GoValue::String(text.to_owned())
}

fn slice(elem: GoType) -> GoType {
    GoType::Slice(Box::new(elem))
}

fn encode(entries: Vec<(GoValue, GoValue)>) -> Vec<u8> {
    gob::encode(&values_type(), &GoValue::Map(entries)).unwrap()
}

fn entries(bytes: &[u8]) -> Vec<(GoValue, GoValue)> {
    let (_, GoValue::Map(entries)) = gob::decode(bytes).unwrap() else {
        panic!("a map")
    };
    entries
}

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn person() -> GoType {
    GoType::Struct(Arc::new(gob::StructType::new(
        "Person",
        vec![
            ("Name".into(), GoType::String),
            ("Age".into(), GoType::Int(64)),
            ("Tags".into(), slice(GoType::String)),
        ],
    )))
}

#[test]
fn unchanged_values_keep_their_go_types() {
    let expected = vec![
        (
            go_string("small"),
            named("int8", GoType::Int(8), GoValue::Int(7)),
        ),
        (
            go_string("token"),
            named("[]uint8", GoType::Bytes, GoValue::Bytes(vec![0, 1, 255])),
        ),
        (
            go_string("ratio"),
            named("float32", GoType::Float(32), GoValue::Float(0.5)),
        ),
        (
            go_string("tags"),
            named(
                "[]string",
                slice(GoType::String),
                GoValue::List(vec![s("a")]),
            ),
        ),
        (
            go_string("who"),
            named(
                "main.Person",
                person(),
                GoValue::Struct(vec![("Name".into(), s("Ada"))]),
            ),
        ),
        (
            named("int", GoType::Int(64), GoValue::Int(42)),
            go_string("int key"),
        ),
    ];
    let format = GorillaFormat::new().without_meta();
    let (record, origin) = format.read_gob(&encode(expected.clone()), NOW).unwrap();
    assert_eq!(record.value("token").unwrap().get(), "\"AAH/\"");
    assert_eq!(
        record.value("who").unwrap().get(),
        "{\"Age\":0,\"Name\":\"Ada\",\"Tags\":null}",
        "every field, as Go's JSON"
    );
    assert_eq!(record.values().len(), 5, "the int key is not a Rust key");
    let back = entries(&format.write_gob(&record, &origin).unwrap());
    for entry in &expected {
        assert!(back.contains(entry), "{entry:?} kept");
    }
    assert_eq!(back.len(), expected.len());
}

#[test]
fn changed_values_keep_their_type_where_they_fit() {
    let format = GorillaFormat::new().without_meta();
    let bytes = encode(vec![
        (
            go_string("n"),
            named("int16", GoType::Int(16), GoValue::Int(1)),
        ),
        (
            go_string("ids"),
            named(
                "[]int64",
                slice(GoType::Int(64)),
                GoValue::List(vec![GoValue::Int(1)]),
            ),
        ),
        (
            go_string("who"),
            named(
                "main.Person",
                person(),
                GoValue::Struct(vec![("Name".into(), s("Ada"))]),
            ),
        ),
    ]);
    let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
    let set = |record: &mut Record, key: &str, json: &str| {
        record.insert_value(key.into(), RawValue::from_string(json.into()).unwrap());
    };
    set(&mut record, "n", "300");
    set(&mut record, "ids", "[1,2]");
    set(&mut record, "who", r#"{"Name":"Bo","Tags":["x"]}"#);
    let back = entries(&format.write_gob(&record, &origin).unwrap());
    assert!(back.contains(&(
        go_string("n"),
        named("int16", GoType::Int(16), GoValue::Int(300))
    )));
    assert!(back.contains(&(
        go_string("ids"),
        named(
            "[]int64",
            slice(GoType::Int(64)),
            GoValue::List(vec![GoValue::Int(1), GoValue::Int(2)])
        )
    )));
    assert!(back.contains(&(
        go_string("who"),
        named(
            "main.Person",
            person(),
            GoValue::Struct(vec![
                ("Name".into(), s("Bo")),
                ("Tags".into(), GoValue::List(vec![s("x")]))
            ])
        )
    )));
    // What no longer fits takes the natural type.
    set(&mut record, "n", "70000");
    set(&mut record, "who", r#"{"Name":"Bo","Nickname":"b"}"#);
    let back = entries(&format.write_gob(&record, &origin).unwrap());
    assert!(back.contains(&(
        go_string("n"),
        named("int", GoType::Int(64), GoValue::Int(70_000))
    )));
    assert!(back.iter().any(|(k, v)| *k == go_string("who")
        && matches!(v, GoValue::Named { name, .. } if name == "map[string]interface {}")));
}

#[test]
fn declared_go_types_hold_or_fail_the_save() {
    let format = GorillaFormat::new()
        .without_meta()
        .with_go_type("visits", "int64")
        .unwrap()
        .with_go_type("tags", "[]string")
        .unwrap();
    let mut record = Record::new(NOW);
    record.insert_value("visits".into(), RawValue::from_string("3".into()).unwrap());
    record.insert_value(
        "tags".into(),
        RawValue::from_string(r#"["a"]"#.into()).unwrap(),
    );
    let back = entries(
        &format
            .write_gob(&record, &GorillaOrigin::default())
            .unwrap(),
    );
    assert!(back.contains(&(
        go_string("visits"),
        named("int64", GoType::Int(64), GoValue::Int(3))
    )));
    assert!(back.contains(&(
        go_string("tags"),
        named(
            "[]string",
            slice(GoType::String),
            GoValue::List(vec![s("a")])
        )
    )));
    record.insert_value(
        "visits".into(),
        RawValue::from_string("1.5".into()).unwrap(),
    );
    let error = format
        .write_gob(&record, &GorillaOrigin::default())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotGoType);
    let why = std::error::Error::source(&error).unwrap().to_string();
    assert!(why.contains("\"visits\"") && why.contains("int64"), "{why}");
    assert_eq!(
        GorillaFormat::new()
            .with_go_type("x", "chan int")
            .unwrap_err()
            .kind(),
        ErrorKind::UnknownGoType
    );
}

#[test]
fn untaken_flashes_keep_their_go_types() {
    let person_value = named(
        "main.Person",
        person(),
        GoValue::Struct(vec![("Name".into(), s("Ada"))]),
    );
    let object = named(
        "map[string]interface {}",
        GoType::Map(Box::new(GoType::String), Box::new(GoType::Interface)),
        GoValue::Map(vec![(s("k"), go_string("v"))]),
    );
    let bytes = encode(vec![(
        go_string("_flash"),
        named(
            "[]interface {}",
            slice(GoType::Interface),
            GoValue::List(vec![person_value.clone(), object.clone()]),
        ),
    )]);
    let format = GorillaFormat::new().without_meta();
    let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
    let mut list = record.flash_list("_flash").unwrap().to_vec();
    list.push(RawValue::from_string("\"new\"".into()).unwrap());
    record.set_flash_list("_flash".into(), list);
    let back = entries(&format.write_gob(&record, &origin).unwrap());
    assert_eq!(
        back,
        vec![(
            go_string("_flash"),
            named(
                "[]interface {}",
                slice(GoType::Interface),
                GoValue::List(vec![person_value, object, go_string("new")]),
            )
        )]
    );
}

#[test]
fn values_json_cannot_hold_lose_only_themselves() {
    let nan = (
        go_string("nan"),
        named("float64", GoType::Float(64), GoValue::Float(f64::NAN)),
    );
    let complex = (
        go_string("c"),
        named("complex128", GoType::Complex, GoValue::Complex(1.0, 2.0)),
    );
    let bytes = encode(vec![
        nan.clone(),
        complex.clone(),
        (go_string("ok"), go_string("fine")),
    ]);
    let format = GorillaFormat::new().without_meta();
    let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
    assert_eq!(record.values().map(|(k, _)| k).collect::<Vec<_>>(), ["ok"]);
    // Written back as they were (NaN compared by its bits).
    let back = gob::encode(
        &values_type(),
        &GoValue::Map(entries(&format.write_gob(&record, &origin).unwrap())),
    )
    .unwrap();
    assert_eq!(
        back,
        encode(vec![
            (go_string("ok"), go_string("fine")),
            nan,
            complex.clone()
        ])
    );
    // A value written under the same key replaces it; clearing drops them all.
    record.insert_value("c".into(), RawValue::from_string("1".into()).unwrap());
    let back = entries(&format.write_gob(&record, &origin).unwrap());
    assert!(back.contains(&(
        go_string("c"),
        named("int", GoType::Int(64), GoValue::Int(1))
    )));
    assert!(!back.contains(&complex));
    let request = fastsession_core::Session::new_detached();
    request.insert("any", 1).unwrap();
    request.clear();
    assert_eq!(
        entries(
            &format
                .write(&record, Some(&origin), Some(&request.changes()))
                .unwrap()
        )
        .len(),
        2,
        "cleared: the meta-less map holds the two visible values"
    );
    // Set and then removed in one request: gone, not back to the Go value.
    let request = fastsession_core::Session::new_detached();
    request.insert("nan", 1).unwrap();
    request.remove("nan");
    let back = entries(
        &format
            .write(&record, Some(&origin), Some(&request.changes()))
            .unwrap(),
    );
    assert!(!back.iter().any(|(k, _)| *k == go_string("nan")));
}

#[test]
fn flashes_and_the_user_map_to_their_places() {
    let values = vec![
        (
            go_string("_flash"),
            named(
                "[]interface {}",
                slice(GoType::Interface),
                GoValue::List(vec![go_string("hi")]),
            ),
        ),
        (go_string("uid"), go_string("ada")),
    ];
    let format = GorillaFormat::new().with_user_key("uid").without_meta();
    let (record, origin) = format.read_gob(&encode(values.clone()), NOW).unwrap();
    assert_eq!(record.flash_list("_flash").unwrap()[0].get(), "\"hi\"");
    assert_eq!(record.user_id(), Some("ada"));
    assert_eq!(record.values().len(), 0);
    assert_eq!(format.write_gob(&record, &origin).unwrap(), encode(values));

    let mut orphan = Record::new(NOW);
    orphan.set_user_id(Some("ada".into()));
    assert_eq!(
        GorillaFormat::new()
            .without_meta()
            .write_gob(&orphan, &GorillaOrigin::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Serialize
    );
    // With the meta entry (the default) it rides there.
    let bytes = GorillaFormat::new()
        .write_gob(&orphan, &GorillaOrigin::default())
        .unwrap();
    assert_eq!(
        GorillaFormat::new()
            .read_gob(&bytes, NOW)
            .unwrap()
            .0
            .user_id(),
        Some("ada")
    );
}

/// Go 1.19: gob of `map[interface{}]interface{}` holding `time.Time` values (UTC with
/// nanoseconds, a +01:30 zone, a -05:00 zone) and a registered struct `Stamp { At
/// time.Time; Name string }`, once with a zero time (which gob leaves out).
const GO_TIMES: &str = "0eff81040102ff82000110011000002cff82000506737472696e670c0500037574630974696d652e54696d65ff830501010454696d6501ff84000000ffadff8411000f010000000edd7277c507270e00ffff06737472696e670c07000566697865640974696d652e54696d65ff8411000f010000000edd7262ad00000000005a06737472696e670c0500036e65670974696d652e54696d65ff8411000f010000000eafff80cf3b9ac9fffed406737472696e670c0700057374616d700a6d61696e2e5374616d70ff85030101055374616d7001ff860001020102417401ff840001044e616d65010c00000039ff8615010f010000000ed59dd80000000001ffff0101780006737472696e670c0600047a65726f0a6d61696e2e5374616d70ff860402017a00";

#[test]
fn times_read_as_go_s_json_and_keep_their_type() {
    let bytes: Vec<u8> = (0..GO_TIMES.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&GO_TIMES[i..i + 2], 16).unwrap())
        .collect();
    let format = GorillaFormat::new().without_meta();
    let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
    // What Go's json.Marshal printed for each.
    for (key, json) in [
        ("utc", r#""2024-02-29T13:04:05.12Z""#),
        ("fixed", r#""2024-02-29T13:04:05+01:30""#),
        ("neg", r#""1999-12-31T23:59:59.999999999-05:00""#),
        (
            "stamp",
            r#"{"At":"2020-01-01T00:00:00.000000001Z","Name":"x"}"#,
        ),
        ("zero", r#"{"At":"0001-01-01T00:00:00Z","Name":"z"}"#),
    ] {
        assert_eq!(record.value(key).unwrap().get(), json, "{key}");
    }
    let unchanged = entries(&format.write_gob(&record, &origin).unwrap());
    for entry in entries(&bytes) {
        assert!(unchanged.contains(&entry), "{entry:?} kept");
    }
    record.insert_value(
        "utc".into(),
        RawValue::from_string(r#""2025-01-01T00:00:00Z""#.into()).unwrap(),
    );
    record.insert_value(
        "stamp".into(),
        RawValue::from_string(r#"{"At":"2021-06-01T10:00:00+02:00","Name":"y"}"#.into()).unwrap(),
    );
    let back = entries(&format.write_gob(&record, &origin).unwrap());
    let (_, utc) = back.iter().find(|(k, _)| *k == go_string("utc")).unwrap();
    assert!(matches!(utc, GoValue::Named { name, .. } if name == "time.Time"));
    let (_, stamp) = back.iter().find(|(k, _)| *k == go_string("stamp")).unwrap();
    assert!(matches!(stamp, GoValue::Named { name, .. } if name == "main.Stamp"));
    assert_eq!(
        convert::interface_json(utc).unwrap(),
        Value::String("2025-01-01T00:00:00Z".into())
    );
}

/// Go 1.19's gob of this `map[interface{}]interface{}` (also a fuzz seed), with
/// `type Profile struct { Tags []string; Score map[string]int; Extra interface{}; Ratio
/// float64 }` registered: `"tags": []string{"a", "b"}`, `"ids": []int64{1, -2}`,
/// `"small": []int8{-128, 127}`, `"f32": []float32{0.1, -3.4e38}`, `"pair": [2]string{"x",
/// "y"}`, `"obj": map[string]interface{}{"n": int16(3), "l": []interface{}{uint8(7), "s"}}`,
/// `"byint": map[int]string{7: "seven"}`, `"who": Profile{Tags: []string{"t"}, Score:
/// map[string]int{"a": 1}, Extra: complex(1, 2), Ratio: math.NaN()}`, `"bad": "\xff\xfe"`,
/// `"inf": math.Inf(1)`, `42: "int key"`, `"_flash": []interface{}{"hi",
/// map[string]interface{}{"k": "v"}}`.
const GO_TYPED: &[u8] = include_bytes!("../../tests/data/go-typed-session.gob");

#[test]
fn a_typed_go_session_reads_and_goes_back_as_go_wrote_it() {
    let format = GorillaFormat::new().without_meta();
    let (record, origin) = format.read_gob(GO_TYPED, NOW).unwrap();
    let mut keys: Vec<&str> = record.values().map(|(k, _)| k).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["byint", "f32", "ids", "obj", "pair", "small", "tags"]
    );
    assert_eq!(record.value("f32").unwrap().get(), "[0.1,-3.4e+38]");
    assert_eq!(record.value("byint").unwrap().get(), r#"{"7":"seven"}"#);
    assert_eq!(record.flash_list("_flash").unwrap().len(), 2);
    // Unchanged, every entry goes back as it came (compared as bytes: NaN is in there).
    let bytes_of = |entry: &(GoValue, GoValue)| {
        gob::encode(&values_type(), &GoValue::Map(vec![entry.clone()])).unwrap()
    };
    let mut went: Vec<Vec<u8>> = entries(&format.write_gob(&record, &origin).unwrap())
        .iter()
        .map(bytes_of)
        .collect();
    let mut came: Vec<Vec<u8>> = entries(GO_TYPED).iter().map(bytes_of).collect();
    went.sort();
    came.sort();
    assert_eq!(went, came);
}

#[test]
fn a_struct_type_with_two_fields_of_one_name_is_refused() {
    // Found by the fuzzer: `Profile` with two fields named `Extra` (Go never writes
    // that); matching values to fields by name would move one value to the other field.
    let found = include_bytes!("../../tests/data/struct-with-two-fields-of-one-name");
    assert_eq!(
        GorillaFormat::new()
            .read_gob(found, NOW)
            .unwrap_err()
            .kind(),
        ErrorKind::Deserialize
    );
}

#[test]
fn a_numeric_user_id_keeps_its_go_type() {
    let format = GorillaFormat::new().with_user_key("uid").without_meta();
    let bytes = encode(vec![(
        go_string("uid"),
        named("int64", GoType::Int(64), GoValue::Int(42)),
    )]);
    let (mut record, origin) = format.read_gob(&bytes, NOW).unwrap();
    assert_eq!(record.user_id(), Some("42"));
    assert_eq!(format.write_gob(&record, &origin).unwrap(), bytes);
    record.set_user_id(Some("43".into()));
    assert_eq!(
        entries(&format.write_gob(&record, &origin).unwrap()),
        vec![(
            go_string("uid"),
            named("int64", GoType::Int(64), GoValue::Int(43))
        )]
    );
    record.set_user_id(Some("ada".into()));
    assert_eq!(
        entries(&format.write_gob(&record, &origin).unwrap()),
        vec![(go_string("uid"), go_string("ada"))]
    );
    // A new session's id in the declared type.
    let declared = format.with_go_type("uid", "uint32").unwrap();
    let mut fresh = Record::new(NOW);
    fresh.set_user_id(Some("7".into()));
    assert_eq!(
        entries(
            &declared
                .write_gob(&fresh, &GorillaOrigin::default())
                .unwrap()
        ),
        vec![(
            go_string("uid"),
            named("uint32", GoType::Uint(32), GoValue::Uint(7))
        )]
    );
}

#[test]
fn the_meta_entry_keeps_what_go_has_no_place_for() {
    let format = GorillaFormat::new();
    let mut record = Record::new(NOW);
    record.set_created(UnixTime::from_secs(1_600_000_000));
    record.set_persistent(false);
    record.set_flash_list(
        "errors".into(),
        vec![RawValue::from_string("1".into()).unwrap()],
    );
    record.set_expires_at(Some(UnixTime::from_secs(1_900_000_000)));
    let bytes = format
        .write_gob(&record, &GorillaOrigin::default())
        .unwrap();
    let (back, _) = format.read_gob(&bytes, NOW).unwrap();
    assert_eq!(
        back, record,
        "creation time, remember-me, flash key, own deadline"
    );
    // A meta entry written before sessions had their own deadline: none.
    let old = Meta {
        created: 1_600_000_000,
        persistent: true,
        ..Meta::default()
    };
    let old = serde_json::to_string(&old).unwrap();
    assert_eq!(old, r#"{"c":1600000000,"p":true}"#, "as it always was");
    let old = gob::encode(
        &GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface)),
        &GoValue::Map(vec![(go_string(DEFAULT_META_KEY), go_string(&old))]),
    )
    .unwrap();
    let (back, _) = format.read_gob(&old, NOW).unwrap();
    assert_eq!(back.expires_at(), None);
    assert!(back.is_persistent());
    record.set_expires_at(None);
    // A creation time after the save that carries it is not believed.
    record.set_created(UnixTime::from_secs(1_800_000_000));
    let bytes = format
        .write_gob(&record, &GorillaOrigin::default())
        .unwrap();
    assert_eq!(format.read_gob(&bytes, NOW).unwrap().0.created(), NOW);
    // A value under the meta key is refused rather than shadowed.
    let mut clash = Record::new(NOW);
    clash.insert_value(
        DEFAULT_META_KEY.into(),
        RawValue::from_string("1".into()).unwrap(),
    );
    assert_eq!(
        format
            .write_gob(&clash, &GorillaOrigin::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Serialize
    );
}

#[test]
fn what_is_not_a_session_is_refused() {
    let format = GorillaFormat::new();
    let not_a_map = gob::encode(&GoType::String, &s("x")).unwrap();
    assert_eq!(
        format.read_gob(&not_a_map, NOW).unwrap_err().kind(),
        ErrorKind::Deserialize
    );
    assert!(format.read_gob(b"\x03\x04", NOW).is_err());
}
