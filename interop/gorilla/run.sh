#!/usr/bin/env bash
# Builds and runs the Go vector program offline against Debian's gorilla packages.
#   interop/gorilla/run.sh            rewrites vectors/gorilla-v1.jsonl
#   interop/gorilla/run.sh -decode    decodes requests on stdin (see main.go)
#   interop/gorilla/run.sh -roundtrip -seed S -count N -dir D         random sessions (roundtrip.go)
#   interop/gorilla/run.sh -roundtrip-check -seed S -count N -dir D   checks them after Rust saved them
# Needs: apt-get install golang-go golang-github-gorilla-securecookie-dev
#        golang-github-gorilla-sessions-dev   (.ci/go-deps does it)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export GO111MODULE=off GOPROXY=off GOFLAGS=
GOPATH="$(dpkg -L golang-github-gorilla-securecookie-dev | grep -m1 '/gocode$')"
export GOPATH
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/fastsession-gocache}"
bin="${TMPDIR:-/tmp}/fastsession-gorilla-vectors"
(cd "$here" && go build -o "$bin" .)
if [ "$#" -eq 0 ]; then
    "$bin" >"$here/vectors/gorilla-v1.jsonl"
    echo "wrote $here/vectors/gorilla-v1.jsonl ($(wc -l <"$here/vectors/gorilla-v1.jsonl") vectors)"
else
    exec "$bin" "$@"
fi
