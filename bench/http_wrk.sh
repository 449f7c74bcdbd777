#!/usr/bin/env bash
# Cross-checks the http scenario of bmos-taskbench with wrk: starts a standalone bmos-taskd
# (test handlers, a fresh data directory, BMOS_JWT_SECRET set), mints an admin token for that
# secret with python3, runs wrk with bench/wrk_enqueue.lua after a 1 s warm-up run, and stops
# the server with SIGTERM. Prints wrk's report.
#
#   bench/http_wrk.sh BUILD_DIR [DURABILITY [CONNECTIONS [SECONDS [WORKERS [IO_THREADS]]]]]
#   bench/http_wrk.sh build-h4 async 64 5      # defaults: async 64 5 2 2
set -euo pipefail
build=${1:?usage: bench/http_wrk.sh BUILD_DIR [DURABILITY [CONNECTIONS [SECONDS [WORKERS [IO_THREADS]]]]]}
durability=${2:-async}
connections=${3:-64}
seconds=${4:-5}
workers=${5:-2}
io_threads=${6:-2}
here=$(cd "$(dirname "$0")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bmos-http-wrk-XXXXXX")
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A known 32-character secret for the server and the token alike.
BMOS_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export BMOS_JWT_SECRET
"$build/tools/bmos-taskd" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" \
  --durability "$durability" --with-test-handlers --workers "$workers" \
  --io-threads "$io_threads" >"$tmp/taskd.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
  [[ -s "$tmp/port" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/taskd.log" >&2; exit 1; }
  sleep 0.05
done
port=$(cat "$tmp/port")

# HS256 JWT as api/jwt.h describes it: admin role, valid for an hour.
BMOS_TOKEN=$(python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
now = int(time.time())
payload = b64(json.dumps({"sub": "wrk", "role": "admin", "iat": now, "exp": now + 3600},
                         separators=(",", ":")).encode())
signing = f"{header}.{payload}".encode()
sig = hmac.new(os.environ["BMOS_JWT_SECRET"].encode(), signing, hashlib.sha256).digest()
print(f"{header}.{payload}.{b64(sig)}")
PY
)
export BMOS_TOKEN

url="http://127.0.0.1:$port"
wrk -t1 -c"$connections" -d1s -s "$here/wrk_enqueue.lua" "$url" >/dev/null

# CPU of the server (from /proc/PID/stat) and of wrk (bash's `times`) over the measured run, so
# the server's CPU per request can be compared with bmos-taskbench's cpu_us/req - cli_us/req.
server_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks0=$(server_ticks)
wrk_out=$( (wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$here/wrk_enqueue.lua" "$url";
            times) )
ticks1=$(server_ticks)
echo "$wrk_out" | head -n -2
# `times` prints the shell's, then its children's user and system time; the subshell's
# children are wrk alone.
wrk_cpu=$(echo "$wrk_out" | tail -1)
requests=$(echo "$wrk_out" | awk '/requests in/ {print $1}')
python3 - "$ticks0" "$ticks1" "$(getconf CLK_TCK)" "$requests" "$wrk_cpu" <<'PY'
import re, sys
t0, t1, hz, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def secs(t):
    m = re.match(r"(\d+)m([\d.]+)s", t)
    return int(m.group(1)) * 60 + float(m.group(2))
user, system = (secs(t) for t in sys.argv[5].split())
server = (t1 - t0) / hz
print(f"server CPU: {server:.2f} s = {1e6 * server / n:.1f} us/request; "
      f"wrk CPU: {user + system:.2f} s = {1e6 * (user + system) / n:.1f} us/request")
PY
