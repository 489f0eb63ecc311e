#!/usr/bin/env bash
# The registry as a service, under load and faults. Never part of CI: it builds webcpm in release
# mode, installs wrk, nginx, PostgreSQL and docker-registry from Debian's packages when missing,
# and starts everything on 127.0.0.1 under target/bench-work/load.
#
#   benches/load.sh              PHASE=20 (seconds per phase); CONNECTIONS=32 (wrk's)
#
# Three replicas on one PostgreSQL and one docker-registry, behind nginx (as the operator's
# guide sets them up). In each phase, for PHASE seconds:
#   - wrk (2 threads, CONNECTIONS connections) sends a mix through nginx: 3 resolves (the
#     client's own GraphQL query) to 1 download (a package file: a 307 to the blob store);
#   - a publisher runs `webcpm publish` of a new version every 0.5 s;
#   - an installer runs `webcpm install` into a new, empty store every 0.5 s;
# and the phases are: steady; one replica killed (SIGKILL, restarted at the end); PostgreSQL
# restarted; the OCI registry stalled for 5 s (SIGSTOP, SIGCONT); recovered.
# Afterwards every publish that said it succeeded is installed from a fresh store (which checks
# both formats' SHA-256 and size): a lost or corrupt publish fails the run.
# wrk's latencies per phase go to BENCHMARKS.md's table by hand; raw results in
# target/bench-work/results/load-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/bench-work/load
RESULTS=$ROOT/target/bench-work/results
PHASE=${PHASE:-20}
CONNECTIONS=${CONNECTIONS:-32}
mkdir -p "$WORK" "$RESULTS"
say() { printf '\n== %s\n' "$*" >&2; }

. benches/services.sh
install_missing wrk:wrk nginx:nginx-light docker-registry:docker-registry curl:curl initdb:postgresql
say "building webcpm (release)"
cargo build --release --locked
W=$ROOT/target/release/webcpm
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for f in "$WORK"/replica-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -d "$WORK/pg" ] && pg "-m immediate stop" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- PostgreSQL, docker-registry -----------------------------------------------------------------
cleanup
rm -rf "$WORK" && mkdir -p "$WORK/nginx"
start_postgres load
printf '%s\n' "$DB" > "$WORK/database-url"
start_oci
PIDS+=("$OCIPID")

# --- three replicas behind nginx -------------------------------------------------------------------
export WEBCPM_SYSTEM_CONFIG=$WORK/none.toml
unset WEBCPM_HOME WEBCPM_CONFIG WEBCPM_OCI_AUTH WEBCPM_REGISTRY WEBCPM_TOKEN WEBCPM_DATABASE_URL
LB=$(port)
SHARED=(--database-file "$WORK/database-url" --blobs "oci://127.0.0.1:$OCIPORT/webcpm/packages")
"$W" demo --home "$WORK/demo" >/dev/null
"$W" registry add -q --root "$WORK/r1" "${SHARED[@]}" "$WORK/demo/packages/greeter"
REPLICA_PORTS=()
for i in 1 2 3; do REPLICA_PORTS+=("$(port)"); done
serve() { # N: starts replica N on its port (again, after a kill)
  local n=$1 p=${REPLICA_PORTS[$(($1 - 1))]}
  # The load comes from one address (nginx's, and wrk's behind it): no per-address limits.
  "$W" registry serve --root "$WORK/r$n" "${SHARED[@]}" --listen "127.0.0.1:$p" \
    --public-url "http://127.0.0.1:$LB" --trust-forwarded-for --rate-limit 0 \
    --max-connections-per-address 4096 --access-log "$WORK/access-$n.log" \
    --access-log-format json >> "$WORK/replica-$n.out" 2>>"$WORK/replica-$n.err" &
  echo $! > "$WORK/replica-$n.pid"
  until curl -sf "http://127.0.0.1:$p/readyz" >/dev/null; do sleep 0.1; done
}
for n in 1 2 3; do serve "$n"; done
mkdir -p "$WORK/nginx/tmp"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  upstream webcpm {
    server 127.0.0.1:${REPLICA_PORTS[0]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${REPLICA_PORTS[1]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${REPLICA_PORTS[2]} max_fails=1 fail_timeout=2s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$LB;
    client_max_body_size 17m;
    location / {
      proxy_pass http://webcpm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Request-Id \$request_id;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_connect_timeout 1s;
      proxy_read_timeout 60s;
    }
  }
}
CONF
nginx -c "$WORK/nginx/nginx.conf"
URL=http://127.0.0.1:$LB/graphql
until curl -sf "http://127.0.0.1:$LB/healthz" >/dev/null; do sleep 0.1; done

# --- the load -------------------------------------------------------------------------------------
QUERY=$(python3 -c 'import json,sys; print(json.dumps({"query": open(sys.argv[1]).read(), "variables": {"name": "demo/greeter"}}))' "$ROOT/graphql/get_package.graphql")
BLOB=$(curl -sf "$URL" -H 'content-type: application/json' -d "$QUERY" | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]["getPackage"]["versions"][0]
for v in d.values():
    if isinstance(v, dict) and v.get("piritaDownloadUrl"):
        print("/" + v["piritaDownloadUrl"].split("/", 3)[3].split("?")[0]); break')
python3 - "$QUERY" > "$WORK/mix.lua" <<'PY'
import sys
body = sys.argv[1].replace("\\", "\\\\").replace("'", "\\'")
print(f"""local body = '{body}'
local blob
init = function(args) blob = args[1] end
local n = 0
request = function()
  n = n + 1
  if n % 4 == 0 then return wrk.format("GET", blob) end
  return wrk.format("POST", "/graphql", {{["Content-Type"] = "application/json"}}, body)
end""")
PY

TOKEN=$("$W" registry token create --root "$WORK/r1" "${SHARED[@]}" --namespace load)
mkdir -p "$WORK/pkg" "$WORK/published"
cp "$WORK/demo/packages/wordcount/wordcount.wasm" "$WORK/pkg/"
publisher() { # publishes load/wc@1.0.N every 0.5 s until $WORK/stop exists; at most 1000
  local i=0
  while [ ! -f "$WORK/stop" ] && [ $i -lt 1000 ]; do
    i=$((i + 1))
    printf '[package]\nname = "load/wc"\nversion = "1.0.%s"\n\n[[module]]\nname = "wc"\nsource = "wordcount.wasm"\nabi = "wasi"\n\n[[command]]\nname = "wc"\nmodule = "wc"\nrunner = "wasi"\n' "$i" > "$WORK/pkg/wasmer.toml"
    local rc=0
    WEBCPM_TOKEN=$TOKEN timeout 120 "$W" --home "$WORK/publisher" publish "$WORK/pkg" --registry "$URL" \
      >> "$WORK/published/log" 2>&1 || rc=$?
    echo "1.0.$i $rc $(cat "$WORK/phase")" >> "$WORK/published/results"
    sleep 0.5
  done
}
installer() { # installs demo/greeter into a new store every 0.5 s until $WORK/stop; at most 1000
  local i=0
  while [ ! -f "$WORK/stop" ] && [ $i -lt 1000 ]; do
    i=$((i + 1))
    local rc=0
    timeout 120 "$W" --home "$WORK/installs/$i" install -q demo/greeter --registry "$URL" \
      >> "$WORK/installs.log" 2>&1 || rc=$?
    echo "$i $rc $(cat "$WORK/phase")" >> "$WORK/installs.results"
    rm -rf "$WORK/installs/$i"
    sleep 0.5
  done
}
echo steady > "$WORK/phase"
publisher & PIDS+=($!)
installer & PIDS+=($!)

load() { # NAME: one phase of wrk through nginx
  echo "$1" > "$WORK/phase"
  say "phase: $1 (${PHASE}s)"
  wrk -t2 -c"$CONNECTIONS" -d"${PHASE}s" --timeout 30s --latency -s "$WORK/mix.lua" \
    "http://127.0.0.1:$LB" -- "$BLOB" > "$WORK/wrk-$1.txt"
}
after() { sleep "$1"; shift; "$@"; }

load steady
kill -9 "$(cat "$WORK/replica-2.pid")"
load replica-killed
serve 2
after 2 pg "-m fast -w restart -o '$PGOPTS'" >/dev/null &
load postgres-restarted
wait $!
( sleep 2; kill -STOP "$OCIPID"; sleep 5; kill -CONT "$OCIPID" ) &
load oci-stalled
wait $!
load recovered
touch "$WORK/stop"
wait "${PIDS[@]:1}" 2>/dev/null || true

# --- verdict -------------------------------------------------------------------------------------
say "checking every publish that succeeded: installed from a fresh store, hashes checked"
LOST=0
while read -r version rc _; do
  [ "$rc" = 0 ] || continue
  if ! "$W" --home "$WORK/verify" install -q "load/wc@=$version" --registry "$URL" >> "$WORK/verify.log" 2>&1; then
    LOST=$((LOST + 1)); echo "lost or corrupt: load/wc@$version" >&2
  fi
  rm -rf "$WORK/verify"
done < "$WORK/published/results"

python3 - "$WORK" "$LOST" > "$RESULTS/load.md" <<'PY'
import collections, pathlib, re, sys
work, lost = pathlib.Path(sys.argv[1]), int(sys.argv[2])
phases = ["steady", "replica-killed", "postgres-restarted", "oci-stalled", "recovered"]
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rows, base = [], None
for phase in phases:
    text = (work / f"wrk-{phase}.txt").read_text()
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    bad = int((re.search(r"Non-2xx or 3xx responses: (\d+)", text) or [0, 0])[1])
    err = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    p99 = ms(lat["99"])
    base = base or p99
    rows.append((phase, total, rps, ms(lat["50"]), p99, p99 / base, bad, err))
def tally(name):
    counts = collections.defaultdict(lambda: [0, 0])
    for line in (work / name).read_text().splitlines():
        _, rc, phase = line.split()
        counts[phase][0 if rc == "0" else 1] += 1
    return counts
pubs, installs = tally("published/results"), tally("installs.results")
print("| phase | wrk requests | req/s | p50 | p99 | p99 vs steady | non-2xx/3xx | socket errors | publishes ok/failed | installs ok/failed |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for phase, total, rps, p50, p99, ratio, bad, err in rows:
    p, i = pubs[phase], installs[phase]
    print(f"| {phase} | {total} | {rps:.0f} | {p50:.1f} ms | {p99:.1f} ms | {ratio:.2f}× | {bad} | {err} | {p[0]}/{p[1]} | {i[0]}/{i[1]} |")
print(f"\nPublishes that succeeded but cannot be installed intact (lost or corrupt): {lost}")
PY
cat "$RESULTS/load.md" >&2
[ "$LOST" = 0 ]
