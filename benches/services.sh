# Sourced by the benches: PostgreSQL and docker-registry, each started on a free port of
# 127.0.0.1 under $WORK, which must be set; free ports; peak memory.
#
#   rss CMD ARGS...                  runs CMD; prints its peak memory in MiB: resident,
#                                    anonymous, file-backed
#   rss_pid PID STOP                 the same of the running process PID, sampled until the
#                                    file STOP exists (a server, around one request)
#   install_missing CMD:PACKAGE...   installs Debian's PACKAGE where CMD is missing (`initdb`:
#                                    PostgreSQL's, which is not on the PATH)
#   start_postgres DBNAME    initdb in $WORK/pg, start it; sets PGPORT, PGOPTS, DB
#   pg ARGS                  pg_ctl on it, as the postgres user ("-m immediate stop", ...)
#   start_oci                docker-registry in $WORK/oci; sets OCIPORT, OCIPID

# Peak memory, sampled from /proc every 2 ms: the largest resident set of any process of the
# command, split into anonymous memory (heap) and file-backed pages (mapped files, page cache
# that the kernel can drop).
rss() { peak_memory run "$@"; }
rss_pid() { peak_memory pid "$@"; }

# The sampler of both: "run CMD ARGS..." or "pid PID STOP"; a process and its children.
peak_memory() { python3 - "$@" <<'PY'
import os, subprocess, sys, time
mode, args = sys.argv[1], sys.argv[2:]
peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
def pids(root):
    out = [root]
    try:
        for child in open(f"/proc/{root}/task/{root}/children").read().split():
            out += pids(int(child))
    except OSError:
        pass
    return out
if mode == "run":
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    root, running = proc.pid, lambda: proc.poll() is None
else:
    root, stop = int(args[0]), args[1]
    running = lambda: not os.path.exists(stop) and os.path.exists(f"/proc/{root}")
while running():
    for pid in pids(root):
        try:
            for line in open(f"/proc/{pid}/status"):
                key = line.split(":")[0]
                if key in peak:
                    peak[key] = max(peak[key], int(line.split()[1]))
        except OSError:
            pass
    time.sleep(0.002)
if mode == "run" and proc.returncode != 0:
    sys.exit(f"{args} failed with exit code {proc.returncode}")
print(peak["VmRSS"] // 1024, peak["RssAnon"] // 1024, peak["RssFile"] // 1024)
PY
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

install_missing() {
  local need=() pair cmd
  for pair in "$@"; do
    cmd=${pair%%:*}
    if [ "$cmd" = initdb ]; then
      ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && continue
    else
      command -v "$cmd" >/dev/null && continue
    fi
    need+=("${pair#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

pgbin() { dirname "$(ls /usr/lib/postgresql/*/bin/initdb | head -n1)"; }
pg() { su postgres -s /bin/sh -c "$(pgbin)/pg_ctl -D $WORK/pg $*"; }

start_postgres() {
  rm -rf "$WORK/pg" && mkdir -p "$WORK/pg"
  chown postgres "$WORK/pg"
  PGPORT=$(port)
  PGOPTS="-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=400"
  su postgres -s /bin/sh -c "$(pgbin)/initdb -D $WORK/pg -A trust -U webcpm --no-sync -E UTF8" >/dev/null
  pg "-l $WORK/pg/log -w -o '$PGOPTS' start" >/dev/null
  psql -q -h 127.0.0.1 -p "$PGPORT" -U webcpm -d postgres -c "CREATE DATABASE $1"
  DB=postgres://webcpm@127.0.0.1:$PGPORT/$1
}

start_oci() {
  rm -rf "$WORK/oci" && mkdir -p "$WORK/oci"
  OCIPORT=$(port)
  cat > "$WORK/oci/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/oci/storage
http:
  addr: 127.0.0.1:$OCIPORT
YML
  docker-registry serve "$WORK/oci/config.yml" >/dev/null 2>&1 &
  OCIPID=$!
  until curl -sf "http://127.0.0.1:$OCIPORT/v2/" >/dev/null; do sleep 0.1; done
}
