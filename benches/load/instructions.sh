#!/usr/bin/env bash
# User-space instructions per request of each load-server mode, counted by valgrind's
# callgrind: unlike CPU time they do not move with the load of a shared machine. Each mode
# runs twice under callgrind, serving $1 (default 2000) and then 6 × $1 requests from
# load-gen over 32 keep-alive connections; the difference divided by 5 × $1 is the cost of
# one request, without start-up and connection set-up. Kernel time (the socket system calls,
# a large part of a small request) is not counted: compare with the CPU times of load-bench.
# Needs valgrind (Debian: apt-get install valgrind). LOAD_GEN_ARGS adds options to load-gen:
# LOAD_GEN_ARGS=--no-cookie measures the new-session path (every request comes without a
# cookie, so the read-modify-write creates a session each time; the counter is not checked).
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-2000}"
shift || true
modes=("$@")
if [ ${#modes[@]} -eq 0 ]; then
    modes=(hyper hyper-tower fastsession-untouched fastsession-cookie fastsession-memory
        tower-sessions-untouched tower-sessions actix actix-session)
fi
cargo build --release -p fastsession-benches --bins --quiet
bin=target/release
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Instructions of one server process serving $2 requests in mode $1.
count() {
    local mode=$1 requests=$2 out="$tmp/callgrind.out" counter=()
    case $mode in
    fastsession-cookie | fastsession-memory | tower-sessions | actix-session | floor-cookie) counter=(--counter) ;;
    esac
    case " ${LOAD_GEN_ARGS:-} " in
    *" --no-cookie "*) counter=() ;;
    esac
    rm -f "$out"
    mkfifo "$tmp/stdin"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin/load-server" "$mode" 127.0.0.1:0 --exit-on-stdin-eof \
        <"$tmp/stdin" >"$tmp/addr" 2>"$tmp/valgrind.log" &
    local pid=$!
    exec 3>"$tmp/stdin"
    rm -f "$tmp/stdin"
    while [ ! -s "$tmp/addr" ]; do sleep 0.1; done
    "$bin/load-gen" --addr "$(head -1 "$tmp/addr")" --warmup 0 --duration 120 \
        --max-requests "$requests" "${counter[@]}" ${LOAD_GEN_ARGS:-} >"$tmp/gen" ||
        { cat "$tmp/gen" >&2; exit 1; }
    exec 3>&- # EOF on the server's stdin: it exits and callgrind writes its counts
    wait "$pid" || true
    awk '/^summary:/ {print $2}' "$out"
}

printf '%-26s %14s %12s\n' mode instructions/req "÷ hyper"
base=""
for mode in "${modes[@]}"; do
    small=$(count "$mode" "$n")
    large=$(count "$mode" $((6 * n)))
    per=$(((large - small) / (5 * n)))
    [ "$mode" = hyper ] && base=$per
    if [ -n "$base" ]; then
        printf '%-26s %14d %12s\n' "$mode" "$per" "$(awk -v a="$per" -v b="$base" 'BEGIN {printf "%.3f", a / b}')"
    else
        printf '%-26s %14d %12s\n' "$mode" "$per" "-"
    fi
done
