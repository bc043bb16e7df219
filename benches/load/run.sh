#!/usr/bin/env bash
# Builds the three load-benchmark binaries (release) and runs the driver; arguments go to
# load-bench (try --help; `--suite redis` compares the stores over Redis). See
# benches/load/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p fastsession-benches --bin load-server --bin load-gen --bin load-bench --quiet
exec target/release/load-bench "$@"
