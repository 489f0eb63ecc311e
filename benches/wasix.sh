#!/usr/bin/env bash
# The warm run of a WASIX program under webcpm against its floor: a minimal program
# (benches/wasix-floor) that maps the same precompiled module into Wasmer's headless engine and
# runs it with wasmer-wasix. Never part of CI: it builds webcpm and the floor in release mode.
#
#   benches/wasix.sh          10 runs per command (RUNS=N to change)
#
# The program is example-longjmp from ../shared/real-programs (a real WASIX build from Wasmer's
# own tests). Raw hyperfine JSON goes to target/bench-work/results/wasix-warm.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/bench-work/wasix
RUNS=${RUNS:-10}
mkdir -p "$WORK" "$ROOT/target/bench-work/results"
say() { printf '\n== %s\n' "$*" >&2; }

command -v hyperfine >/dev/null && [ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq hyperfine time >/dev/null; }
say "building webcpm and the floor (release)"
cargo build --release --locked
# The floor shares webcpm's lock file and target directory: the crates both use are built once.
cp Cargo.lock benches/wasix-floor/Cargo.lock
cargo build --release --manifest-path benches/wasix-floor/Cargo.toml --target-dir "$ROOT/target"
W=$ROOT/target/release/webcpm
FLOOR=$ROOT/target/release/wasix-floor

export WEBCPM_HOME=$WORK/store WEBCPM_CONFIG=$WORK/config.toml WEBCPM_SYSTEM_CONFIG=$WORK/none.toml
rm -rf "$WORK/store" "$WORK/registry" "$WORK/pkg"
mkdir -p "$WORK/pkg"
REAL=$ROOT/../shared/real-programs/example-longjmp.wasm
[ -f "$REAL" ] || { echo "needs $REAL (see ../shared/real-programs/README.md)" >&2; exit 2; }
cp "$REAL" "$WORK/pkg/main.wasm"
cat > "$WORK/pkg/wasmer.toml" <<'TOML'
[package]
name = "bench/wasix"
version = "1.0.0"

[[module]]
name = "main"
source = "main.wasm"
abi = "wasi"

[[command]]
name = "main"
module = "main"
runner = "wasi"
TOML
"$W" registry add --root "$WORK/registry" "$WORK/pkg" >/dev/null
"$W" registry serve --root "$WORK/registry" --listen 127.0.0.1:0 --rate-limit 0 > "$WORK/serve.out" &
SERVER=$!
trap 'kill $SERVER' EXIT
until grep -q listening "$WORK/serve.out"; do sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$WORK/serve.out")
"$W" install bench/wasix --registry "$URL" >&2
ARTIFACT=$(find "$WORK/store/compiled" -name '*.cwasm' | head -n1)
say "artifact: $ARTIFACT ($(stat -c %s "$ARTIFACT") bytes)"

hyperfine -N --style basic --warmup 3 --runs "$RUNS" \
  --export-json "$ROOT/target/bench-work/results/wasix-warm.json" \
  -n "webcpm run (warm, WASIX)" "$W run bench/wasix" \
  -n "floor: headless Wasmer + wasmer-wasix on the same artifact" "$FLOOR $ARTIFACT" \
  -n "start-up of webcpm alone (webcpm --version)" "$W --version" \
  -n "start-up of the floor alone (wasix-floor --start-up)" "$FLOOR --start-up" >&2
# What each binary's loader does at start: its relative relocations, and the pages it touches.
for b in "$W" "$FLOOR"; do
  printf '%s: %s bytes, %s relative relocations, ' "$(basename "$b")" "$(stat -c %s "$b")" \
    "$(readelf -r "$b" | grep -c R_X86_64_RELATIVE)" >&2
  /usr/bin/time -f '%R minor page faults at start-up' "$b" "$([ "$b" = "$W" ] && echo --version || echo --start-up)" >/dev/null
done 2>&1 | cat >&2
printf 'page faults of the warm run: webcpm %s, floor %s\n' \
  "$( { /usr/bin/time -f %R "$W" run bench/wasix >/dev/null; } 2>&1 | tail -n1)" \
  "$( { /usr/bin/time -f %R "$FLOOR" "$ARTIFACT" >/dev/null; } 2>&1 | tail -n1)" >&2
