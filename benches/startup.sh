#!/usr/bin/env bash
# Start-up of `webcpm` client binaries side by side (hyperfine): the process floor
# (`--version`), a no-op `install` and a warm `run` of a small WASI package. Made to compare a
# build of this checkout against others (an older commit, another link mode); never part of CI.
#
#   benches/startup.sh BIN BIN...    paths of `webcpm` binaries, two or more
#                                    (ROUNDS rounds of RUNS runs each, default 5 of 20)
#
# Each binary gets a store of its own; all talk to one `webcpm-registry` of this checkout on
# 127.0.0.1 (this checkout is built in release mode if it is not yet). Results go to
# target/bench-startup/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BINS=()
for b in "$@"; do BINS+=("$(realpath "$b")"); done
RUNS=${RUNS:-20}
WORK=$ROOT/target/bench-startup
mkdir -p "$WORK"
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
REGISTRY=$ROOT/target/release/webcpm-registry
[ -x "$REGISTRY" ] && [ -x "$ROOT/target/release/webcpm" ] || cargo build --release --locked

export WEBCPM_CONFIG=$WORK/config.toml WEBCPM_SYSTEM_CONFIG=$WORK/no-system.toml
unset WEBCPM_WEBC WEBCPM_TOKEN WEBCPM_HOME
rm -rf "$WORK/registry" "$WORK/demo" "$WORK"/home-*

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

# Each binary: a store of its own (named by its position), the package installed and run once.
ARGS_VERSION=() ARGS_INSTALL=() ARGS_RUN=()
for i in "${!BINS[@]}"; do
  b=${BINS[$i]} h=$WORK/home-$i n="$i:$(basename "$b")"
  "$b" --home "$h" install -q bench/greeter
  "$b" --home "$h" run bench/greeter >/dev/null
  ARGS_VERSION+=(-n "$n --version" "$b --version")
  ARGS_INSTALL+=(-n "$n install (already installed)" "$b --home $h install -q bench/greeter")
  ARGS_RUN+=(-n "$n run (warm)" "$b --home $h run bench/greeter")
done

# The machine drifts: each measurement is taken in ROUNDS rounds of RUNS runs per binary, the
# binaries one after another within a round, and the figure is the median over all runs.
ROUNDS=${ROUNDS:-5}
hf() {
  local name=$1
  shift
  for r in $(seq "$ROUNDS"); do
    hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-json "$WORK/$name-$r.json" "$@" >&2
  done
}
hf version "${ARGS_VERSION[@]}"
hf noop-install "${ARGS_INSTALL[@]}"
hf warm-run "${ARGS_RUN[@]}"

{
  for i in "${!BINS[@]}"; do
    b=${BINS[$i]}
    echo "- $i:$(basename "$b"): $(stat -c %s "$b") bytes, $(readelf -h "$b" | awk '/Type:/ {print $2}'), $(readelf -r -W "$b" | grep -c R_X86_64_RELATIVE) relative relocations"
  done
  echo
  python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
for name in ("version", "noop-install", "warm-run"):
    times = {}
    for r in range(1, rounds + 1):
        for result in json.load(open(f"{work}/{name}-{r}.json"))["results"]:
            times.setdefault(result["command"], []).extend(result["times"])
    first = None
    print(f"| {name} | median | p10 | p90 | ratio to the first |")
    print("|---|---:|---:|---:|---:|")
    for command, t in times.items():
        t = sorted(t)
        med = statistics.median(t) * 1e3
        first = first or med
        p10, p90 = t[len(t) // 10] * 1e3, t[len(t) * 9 // 10] * 1e3
        print(f"| `{command}` | {med:.2f} ms | {p10:.2f} | {p90:.2f} | {med / first:.2f} |")
    print()
PY
} > "$WORK/results.md"
cat "$WORK/results.md"
