//! The gob module's unit tests.

use std::sync::Arc;

use super::encoder::unnamed_definition;
use super::names::{builtin_type, refine};
use super::wire::{FIRST_ID, INT, put_int, put_message};
use super::*;
use crate::error::ErrorKind;

fn slice(elem: GoType) -> GoType {
    GoType::Slice(Box::new(elem))
}

#[test]
fn registered_names_give_numbers_their_widths() {
    assert_eq!(refine(&GoType::Int(64), "int8"), GoType::Int(8));
    assert_eq!(
        refine(&slice(GoType::Float(64)), "[]float32"),
        slice(GoType::Float(32))
    );
    let map = GoType::Map(Box::new(GoType::String), Box::new(GoType::Uint(64)));
    assert_eq!(
        refine(&map, "map[string]uint16"),
        GoType::Map(Box::new(GoType::String), Box::new(GoType::Uint(16)))
    );
    // A declared type says nothing of its fields; a mismatch keeps the wire's.
    assert_eq!(refine(&GoType::Int(64), "main.Level"), GoType::Int(64));
    assert_eq!(refine(&GoType::Int(64), "[]int8"), GoType::Int(64));
    assert_eq!(refine(&GoType::Int(64), "*int16"), GoType::Int(16));
}

#[test]
fn builtin_names_are_spelled_as_go_spells_them() {
    assert_eq!(
        builtin_type("map[string]interface{}"),
        Some((
            "map[string]interface {}".to_owned(),
            GoType::Map(Box::new(GoType::String), Box::new(GoType::Interface))
        ))
    );
    assert_eq!(
        builtin_type("[]uint8"),
        Some(("[]uint8".to_owned(), GoType::Bytes))
    );
    assert_eq!(
        builtin_type("[2][]int32"),
        Some((
            "[2][]int32".to_owned(),
            GoType::Array(2, Box::new(slice(GoType::Int(32))))
        ))
    );
    assert_eq!(builtin_type("main.Person"), None);
    assert_eq!(builtin_type("[]main.Person"), None);
    assert_eq!(builtin_type("map[string"), None);
    assert_eq!(builtin_type("[x]int"), None);
}

#[test]
fn typed_containers_round_trip_with_their_types() {
    let person = GoType::Struct(Arc::new(StructType::new(
        "Person",
        vec![
            ("Name".into(), GoType::String),
            ("Tags".into(), slice(GoType::String)),
            ("Extra".into(), GoType::Interface),
        ],
    )));
    let ty = GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface));
    let s = |t: &str| GoValue::String(t.into());
    let value = GoValue::Map(vec![
        (
            GoValue::named("string", GoType::String, s("tags")),
            GoValue::named(
                "[]int8",
                slice(GoType::Int(8)),
                GoValue::List(vec![GoValue::Int(-3)]),
            ),
        ),
        (
            GoValue::named("string", GoType::String, s("who")),
            GoValue::named(
                "main.Person",
                person.clone(),
                GoValue::Struct(vec![
                    ("Name".into(), s("Ada")),
                    ("Tags".into(), GoValue::List(vec![s("x")])),
                    (
                        "Extra".into(),
                        GoValue::named("float32", GoType::Float(32), GoValue::Float(0.5)),
                    ),
                ]),
            ),
        ),
        (
            GoValue::named("string", GoType::String, s("c")),
            GoValue::named("complex128", GoType::Complex, GoValue::Complex(1.0, -2.0)),
        ),
        (
            GoValue::named("string", GoType::String, s("bad utf-8")),
            GoValue::named("string", GoType::String, GoValue::Bytes(vec![0xff, 0x41])),
        ),
    ]);
    let bytes = encode(&ty, &value).unwrap();
    assert_eq!(decode(&bytes).unwrap(), (ty.clone(), value));

    // A number beyond its width is refused here rather than by Go.
    let too_big = GoValue::Map(vec![(
        GoValue::named("string", GoType::String, s("n")),
        GoValue::named("int8", GoType::Int(8), GoValue::Int(300)),
    )]);
    assert_eq!(
        encode(&ty, &too_big).unwrap_err().kind(),
        ErrorKind::Serialize
    );
    let huge = GoValue::Map(vec![(
        GoValue::named("string", GoType::String, s("f")),
        GoValue::named("float32", GoType::Float(32), GoValue::Float(1e300)),
    )]);
    assert_eq!(encode(&ty, &huge).unwrap_err().kind(), ErrorKind::Serialize);
}

#[test]
fn widths_bound_integers_as_go_does() {
    for (i, bits, fits) in [
        (127, 8, true),
        (128, 8, false),
        (-128, 8, true),
        (-129, 8, false),
        (i64::from(i32::MIN), 32, true),
        (i64::from(i32::MAX) + 1, 32, false),
        (i64::MIN, 64, true),
    ] {
        assert_eq!(fits_int(i, bits), fits, "{i} in int{bits}");
    }
    for (u, bits, fits) in [
        (255, 8, true),
        (256, 8, false),
        (65_535, 16, true),
        (u64::MAX, 64, true),
    ] {
        assert_eq!(fits_uint(u, bits), fits, "{u} in uint{bits}");
    }
}

#[test]
fn type_trees_are_bounded() {
    // Each type a map of the one before, twice: 2^n nodes from n definitions.
    let mut stream = Vec::new();
    for i in 0..20i64 {
        let id = FIRST_ID + i;
        let inner = if i == 0 { INT } else { id - 1 };
        put_message(&mut stream, &unnamed_definition(id, 3, &[inner, inner]));
    }
    let mut m = Vec::new();
    put_int(&mut m, FIRST_ID + 19);
    m.extend_from_slice(&[0, 0]);
    put_message(&mut stream, &m);
    assert_eq!(decode(&stream).unwrap_err().kind(), ErrorKind::Deserialize);
}
