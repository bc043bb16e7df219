#!/usr/bin/env bash
# Instructions per operation of the `codec` bench, counted by valgrind (callgrind): unlike
# times, they do not move with the load of a shared machine. Instructions are not time (AES-NI
# and AVX2 instructions cost more than others), so this complements the criterion numbers.
# Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
cargo build --release -p fastsession-benches --example count --quiet
bin=target/release/examples/count
count() {
    local out
    out="$(mktemp)"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$2" 2>/dev/null >/dev/null
    awk '/^summary:/ {print $2}' "$out"
    rm -f "$out"
}
printf '%-30s %12s\n' operation instructions
for op in seal_open seal open; do
    for imp in fastsession sketch cookie_private_jar; do
        base=$(count "$op/$imp" 0)
        total=$(count "$op/$imp" "$n")
        printf '%-30s %12d\n' "$op/$imp" $(((total - base) / n))
    done
done
