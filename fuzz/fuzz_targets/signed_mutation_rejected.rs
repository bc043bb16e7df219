//! Any change to a signed value is rejected: a mutated signed id cookie, signed cookie-store
//! session or bare signed value either is byte-identical to the original or does not verify.
//! For the signed id, a mutated cookie never reaches the store except as the original (the
//! registry refuses it first; the store could only answer "unknown id" anyway). Mutations
//! apply to the base64url text or to the decoded bytes (re-encoded canonically), and the name
//! may change too.

#![no_main]

use arbitrary::Arbitrary;
use fastsession_fuzz::{
    COOKIE_NAME, Mutation, assert_only_the_original_opens, mutate, signed_id_config,
    signed_id_session, signed_store_config, signed_store_session, signer,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[derive(Arbitrary, Debug)]
enum Target {
    /// A value signed by the `Signer` itself.
    Value,
    /// The session cookie of a signed cookie store.
    Store,
    /// The signed id cookie of a memory store.
    Id,
}

#[derive(Arbitrary, Debug)]
struct Input {
    target: Target,
    /// Mutate the decoded bytes (and re-encode) rather than the text.
    raw: bool,
    mutations: Vec<Mutation>,
    /// Verify for another name instead (`None` keeps the name).
    rename: Option<String>,
}

fn signed_value() -> &'static str {
    static SIGNED: OnceLock<String> = OnceLock::new();
    SIGNED.get_or_init(|| signer().sign("id", br#"{"user":"gopher","admin":false}"#))
}

fuzz_target!(|input: Input| {
    let (original, config) = match input.target {
        Target::Value => (signed_value(), None),
        Target::Store => (signed_store_session(), Some(signed_store_config())),
        Target::Id => (signed_id_session(), Some(signed_id_config())),
    };
    let mutated = mutate(original, input.raw, &input.mutations);
    let Some(config) = config else {
        let text = String::from_utf8_lossy(&mutated);
        let name = input.rename.as_deref().unwrap_or("id");
        let unchanged = mutated == original.as_bytes() && name == "id";
        let verified = signer().verify(name, &text);
        assert_eq!(
            verified.is_ok(),
            unchanged,
            "a changed value never verifies"
        );
        return;
    };
    let name = input.rename.as_deref().unwrap_or(COOKIE_NAME);
    assert_only_the_original_opens(config, original, name, &mutated);
});
