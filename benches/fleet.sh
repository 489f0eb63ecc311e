#!/usr/bin/env bash
# Fleet control benchmarks. Never part of CI.
#
#   benches/fleet.sh                 warm-run cost of following the registry's policy, then the
#                                    time from `registry rollout rollback` to the last of 200
#                                    clients on v2 (RUNS=N runs per measurement, default 20)
#   WEBCPM=path/to/webcpm benches/fleet.sh   measure that binary instead of a release build
#
# Warm runs of the demo greeter, measured alternating in one hyperfine invocation:
#   local          no policy key: today's behaviour, the baseline
#   registry-fresh the machine follows the registry and its copy is fresh: one file is read and
#                  its signature checked, no network
#   registry-stale the copy is made stale before every run: each run asks the registry
#                  (If-None-Match, a 304) within its 300 ms budget
# The rollback figure comes from the integration test that drives 200 clients (separate stores,
# polling like a 1 s timer would) against a real `registry serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/bench-work/fleet
RUNS=${RUNS:-20}
mkdir -p "$WORK"
say() { printf '\n== %s\n' "$*" >&2; }

if ! command -v hyperfine >/dev/null; then
  say "installing hyperfine (Debian package)"
  apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null
fi
if [ -z "${WEBCPM:-}" ]; then
  say "building webcpm (release)"
  cargo build --release --locked
  WEBCPM=$ROOT/target/release/webcpm
fi
W=$WEBCPM

export WEBCPM_SYSTEM_CONFIG=$WORK/no-system.toml
unset WEBCPM_WEBC WEBCPM_TOKEN WEBCPM_HOME WEBCPM_CONFIG WEBCPM_POLICY_KEY WEBCPM_ROLLOUT_SOURCE
REG=$WORK/registry
rm -rf "$WORK"/*
"$W" demo --home "$WORK/demo" >/dev/null
"$W" registry add -q --root "$REG" "$WORK/demo/packages/greeter"
KEY=$("$W" registry keygen --root "$REG" 2>/dev/null)
"$W" registry rollout set --root "$REG" --v3-percent 50 --reason bench -q
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$W" registry serve --root "$REG" --listen "127.0.0.1:$PORT" --rate-limit 0 > "$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
URL="http://127.0.0.1:$PORT/graphql"

home() {  # home NAME [policy key] [refresh]
  local h=$WORK/$1
  mkdir -p "$h"
  {
    printf '[registry]\nurl = "%s"\n[rollout]\n' "$URL"
    [ -n "${2:-}" ] && printf 'policy_key = "%s"\nrefresh = %s\n' "$2" "$3"
  } > "$h/config.toml"
  WEBCPM_CONFIG=$h/config.toml "$W" --home "$h/store" install -q demo/greeter
  echo "$h"
}
LOCAL=$(home local)
FRESH=$(home fresh "$KEY" 86400)
STALE=$(home stale "$KEY" 1)
BACKDATE="python3 -c \"import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['checked_at']=0; json.dump(d,open(p,'w'))\" $STALE/store/rollout/policy.json"

say "warm run of the demo greeter: local policy, registry policy fresh, registry policy stale"
# One --prepare per command, in order: only the stale home is backdated.
hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-json "$WORK/warm-run.json" \
  --prepare true --prepare true --prepare "$BACKDATE" \
  -n "local" "env WEBCPM_CONFIG=$LOCAL/config.toml $W --home $LOCAL/store run demo/greeter" \
  -n "registry-fresh" "env WEBCPM_CONFIG=$FRESH/config.toml $W --home $FRESH/store run demo/greeter" \
  -n "registry-stale" "env WEBCPM_CONFIG=$STALE/config.toml $W --home $STALE/store run demo/greeter" >&2
python3 - "$WORK/warm-run.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[0]["median"]
print("| warm run | median | ratio |\n|---|---:|---:|")
for r in results:
    print(f"| {r['command']} | {r['median']*1000:.1f} ms | {r['median']/base:.3f}× |")
PY

say "rollback to the last of 200 clients on v2 (the fleet integration test, 5 runs)"
for i in 1 2 3 4 5; do
  cargo test -q --test it a_fleet_of_200 -- --nocapture 2>&1 | grep -o 'rollback to the last of 200 clients on v2: .*'
done
