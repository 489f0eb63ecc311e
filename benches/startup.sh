#!/usr/bin/env bash
# Start-up of two `webcpm` client binaries side by side, in one hyperfine table each: the process
# floor (`--version`), a no-op `install` and a warm `run` of a small WASI package. Made to compare
# a build of this checkout against another (an older commit, another build); never part of CI.
#
#   benches/startup.sh A B     A and B: paths of `webcpm` binaries (RUNS=N, default 30)
#
# Each binary gets a store of its own; both talk to one `webcpm-registry` of this checkout on
# 127.0.0.1 (this checkout is built in release mode if it is not yet). Results go to target/bench-startup/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
A=$(realpath "$1")
B=$(realpath "$2")
RUNS=${RUNS:-30}
WORK=$ROOT/target/bench-startup
mkdir -p "$WORK"
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
REGISTRY=$ROOT/target/release/webcpm-registry
[ -x "$REGISTRY" ] && [ -x "$ROOT/target/release/webcpm" ] || cargo build --release --locked

export WEBCPM_CONFIG=$WORK/config.toml WEBCPM_SYSTEM_CONFIG=$WORK/no-system.toml
unset WEBCPM_WEBC WEBCPM_TOKEN WEBCPM_HOME
rm -rf "$WORK/registry" "$WORK/demo" "$WORK/home-a" "$WORK/home-b"

# The package: the demo's greeter (it reads a file of its own volume and prints two lines).
"$ROOT/target/release/webcpm" demo --home "$WORK/demo" >/dev/null
"$REGISTRY" add --root "$WORK/registry" "$WORK/demo/packages/greeter" \
  --name bench/greeter --version 1.0.0 -q
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$REGISTRY" serve --root "$WORK/registry" --listen "127.0.0.1:$PORT" >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$WORK/serve.out" && break; sleep 0.1; done
export WEBCPM_REGISTRY="http://127.0.0.1:$PORT/graphql"

"$A" --home "$WORK/home-a" install -q bench/greeter
"$B" --home "$WORK/home-b" install -q bench/greeter
"$A" --home "$WORK/home-a" run bench/greeter >/dev/null
"$B" --home "$WORK/home-b" run bench/greeter >/dev/null

hf() {
  local name=$1
  shift
  hyperfine -N --style basic --warmup 5 --runs "$RUNS" --export-markdown "$WORK/$name.md" "$@" >&2
}
hf version -n "A --version" "$A --version" -n "B --version" "$B --version"
hf noop-install -n "A install (already installed)" "$A --home $WORK/home-a install -q bench/greeter" \
  -n "B install (already installed)" "$B --home $WORK/home-b install -q bench/greeter"
hf warm-run -n "A run (warm)" "$A --home $WORK/home-a run bench/greeter" \
  -n "B run (warm)" "$B --home $WORK/home-b run bench/greeter"

{
  echo "A = $A ($(stat -c %s "$A") bytes), B = $B ($(stat -c %s "$B") bytes)"
  echo
  cat "$WORK/version.md" "$WORK/noop-install.md" "$WORK/warm-run.md"
} > "$WORK/results.md"
cat "$WORK/results.md"
