#!/usr/bin/env bash
# The benchmark matrix (see BENCHMARKS.md, "The matrix"): builds the servers, the load
# generator and the driver (release), then runs the driver; options go to it
# (`bash benches/matrix/run.sh --help`). Needs Linux, taskset and two CPUs; Redis and
# PostgreSQL for those stores (or `--stores cookie,memory,fs`); valgrind for --instructions.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p fastsession-bench-matrix --bins -p fastsession-benches --bin load-gen
exec target/release/matrix-bench "$@"
