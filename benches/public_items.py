#!/usr/bin/env python3
"""Counts the public API of crates, from rustdoc's JSON output.

Usage: python3 benches/public_items.py [crate ...]   (default: every fastsession crate)

Each crate is documented with `cargo rustdoc --all-features` in JSON (an unstable rustdoc
format, enabled with RUSTC_BOOTSTRAP=1; nothing is installed), into target/public-items. A
dependency (tower-sessions-core@0.15.0, actix-session, cookie@0.18.2) is documented with
`cargo doc` and its default features. Counted, once each however often re-exported: modules,
structs, enums, unions, traits, functions, constants, statics, macros, type aliases, public
fields, enum variants, trait items, and the public methods of inherent impls. Not counted:
trait impls (`Clone`, `Debug`, `From`, ...) and items of other crates. The `testing` module
(the conformance kit for store authors) is counted apart.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "target", "public-items")
OURS = ["fastsession-core", "fastsession", "fastsession-tower", "fastsession-actix",
        "fastsession-fs", "fastsession-redis", "fastsession-postgres", "fastsession-gorilla"]


def document(krate):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1", CARGO_TARGET_DIR=TARGET)
    json_flags = ["-Z", "unstable-options", "--output-format", "json"]
    if krate in OURS:
        cmd = ["cargo", "rustdoc", "-q", "-p", krate, "--all-features", "--"] + json_flags
    else:
        env["RUSTDOCFLAGS"] = " ".join(json_flags)
        cmd = ["cargo", "doc", "-q", "--no-deps", "-p", krate]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    name = krate.split("@")[0].replace("-", "_")
    return os.path.join(TARGET, "doc", name + ".json")


def count(path):
    doc = json.load(open(path))
    index, root = doc["index"], doc["root"]
    seen, counts = set(), {}

    def add(kind, item_id):
        if item_id not in seen:
            seen.add(item_id)
            counts[kind] = counts.get(kind, 0) + 1

    def walk(item_id, testing=False):
        item = index.get(str(item_id))
        if item is None or item.get("crate_id", 0) != 0:
            return
        inner = item["inner"]
        kind = next(iter(inner))
        if item.get("visibility") != "public" and kind not in ("variant", "impl"):
            return
        if kind == "module":
            testing = testing or item.get("name") == "testing"
            if item_id != root:
                add("testing" if testing else "module", item_id)
            for child in inner["module"]["items"]:
                walk(child, testing)
            return
        if kind == "use":
            if inner["use"].get("id") is not None:
                walk(inner["use"]["id"], testing)
            return
        if kind not in ("struct", "enum", "union", "trait", "function", "constant", "static",
                        "macro", "type_alias", "proc_macro"):
            return
        label = (lambda k: "testing" if testing else k)
        add(label(kind), item_id)
        body = inner[kind] if isinstance(inner[kind], dict) else {}
        if kind == "struct" and isinstance(body["kind"], dict) and "plain" in body["kind"]:
            for field in body["kind"]["plain"]["fields"]:
                if index.get(str(field), {}).get("visibility") == "public":
                    add(label("field"), field)
        if kind == "enum":
            for variant in body["variants"]:
                add(label("variant"), variant)
        if kind == "trait":
            for member in body["items"]:
                add(label("trait item"), member)
        for impl_id in body.get("impls", []):
            impl = index.get(str(impl_id), {}).get("inner", {}).get("impl")
            if not impl or impl.get("trait") is not None or impl.get("is_synthetic") \
                    or impl.get("blanket_impl"):
                continue
            for method in impl["items"]:
                if index.get(str(method), {}).get("visibility") == "public":
                    add(label("method"), method)

    walk(root)
    testing = counts.pop("testing", 0)
    return sum(counts.values()), testing, counts


def main():
    crates = sys.argv[1:] or OURS
    print(f"{'crate':36} {'items':>6} {'testing':>8}  by kind")
    for krate in crates:
        total, testing, counts = count(document(krate))
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"{krate:36} {total:6} {testing:8}  {kinds}")


if __name__ == "__main__":
    main()
