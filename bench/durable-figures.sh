#!/usr/bin/env bash
# The durable store's figures that issue 3 sets targets for (bench/RESULTS.md, "Durable modes"),
# taken the way RESULTS.md reports them: each figure the median of 3 runs (bmos-taskbench
# --repeat 3), in ROUNDS rounds (default 3: a shared VM drifts within minutes, and the rounds
# show by how much), each round with plain RocksDB's own fsync figures of the same moment; then
# resident memory with 1,000,000 completed tasks and the time from open to accepting work with
# 1,000,000 PENDING tasks. Prints a Markdown table. About 3 minutes on 2 cores.
#
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DBMOS_BUILD_TESTS=OFF
#   ninja -C build-bench bmos-taskbench
#   bench/durable-figures.sh [path/to/bmos-taskbench]
#
# QUICK=1 runs every command with tiny sizes and one round: it checks that the script and the
# harness still fit together (CTest runs it so), and its figures mean nothing.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops the script too

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${1:-$root/build-bench/bench/bmos-taskbench}"
if [ ! -x "$bench" ]; then
  echo "durable-figures.sh: no harness at $bench; build it first (see the top of this script)" >&2
  exit 2
fi

rounds="${ROUNDS:-3}"
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "durable-figures.sh: ROUNDS must be a whole number of rounds, 1 or more (got '$rounds')" >&2
  exit 2
fi
async_tasks=300000 sync_tasks=200000 latency_tasks=3000 latency_seconds=2 repeat=3
rss_tasks=1000000 recovery_tasks=1000000 disk_ops=2000
if [ "${QUICK:-0}" = 1 ]; then
  rounds=1 async_tasks=3000 sync_tasks=2000 latency_tasks=200 latency_seconds=0.3 repeat=1
  rss_tasks=3000 recovery_tasks=3000 disk_ops=50
fi

# run ARGS...: one JSON line per scenario; the harness's own failure (exit status) stops us.
run() { "$bench" "$@" --max-wait 600 --json; }
# figure FIELD UNIT [SCENARIO] < JSON lines: FIELD of the "median" object of the line of
# SCENARIO (default: the first line), as thousands ("k") or with UNIT. Fails when the field is
# missing, so a renamed field stops the script instead of printing an empty table.
figure() {
  local line value
  if [ -n "${3:-}" ]; then line="$(grep "\"scenario\":\"$3\"")" || true; else line="$(head -1)"; fi
  value="$(grep -o '"median":{[^}]*}' <<<"$line" | grep -o "\"$1\":[0-9.]*" | cut -d: -f2)" || true
  if [ -z "$value" ]; then
    echo "durable-figures.sh: no median $1 in: $line" >&2
    return 1
  fi
  if [ "$2" = k ]; then
    awk -v x="$value" 'BEGIN { printf "%.1fk\n", x / 1000 }'
  else
    # Seconds with two decimals (an open takes a few), the rest with one.
    awk -v x="$value" -v unit="$2" 'BEGIN { printf (unit == "s" ? "%.2f %s\n" : "%.1f %s\n"), x, unit }'
  fi
}

declare -a async_clients async_threads sync_clients sync_threads latency disk_p50 disk_batch
for ((r = 0; r < rounds; ++r)); do
  echo "round $((r + 1)) of $rounds: $(date -u +%H:%M:%S) UTC" >&2
  out="$(run --scenario throughput --mode async --producers 2 --inflight 32 --tasks "$async_tasks" --repeat "$repeat")"
  async_clients[r]="$(figure tasks_per_sec k <<<"$out")"
  out="$(run --scenario throughput --mode async --producers 64 --tasks "$async_tasks" --repeat "$repeat")"
  async_threads[r]="$(figure tasks_per_sec k <<<"$out")"
  out="$(run --scenario throughput --mode sync --producers 2 --inflight 32 --tasks "$sync_tasks" --repeat "$repeat")"
  sync_clients[r]="$(figure tasks_per_sec k <<<"$out")"
  out="$(run --scenario throughput --mode sync --producers 64 --tasks "$sync_tasks" --repeat "$repeat")"
  sync_threads[r]="$(figure tasks_per_sec k <<<"$out")"
  out="$(run --scenario latency --mode sync --latency-tasks "$latency_tasks" --rate 1000 --seconds "$latency_seconds" --repeat "$repeat")"
  latency[r]="$(figure p50_us µs latency.enqueue <<<"$out")"
  out="$(run --scenario disk --disk-ops "$disk_ops" --disk-batch 100 --repeat 1)"
  disk_p50[r]="$(figure p50_us µs <<<"$out")"
  disk_batch[r]="$(figure sync_records_per_sec k <<<"$out")"
done
echo "resident memory and open time: $(date -u +%H:%M:%S) UTC" >&2
out="$(run --scenario throughput --mode sync --producers 64 --tasks "$rss_tasks" --repeat "$repeat")"
rss="$(figure rss_mib MiB <<<"$out")"
out="$(run --scenario recovery --mode sync --recovery-tasks "$recovery_tasks" --repeat "$repeat")"
open="$(figure open_s s <<<"$out")"

# commas N: 1000000 as 1,000,000.
commas() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }
# row FIGURE TARGET VALUE...: one line of the table, the values of the rounds in order.
row() {
  local name="$1" target="$2"
  shift 2
  echo "| $name | $target | $(printf '%s, ' "$@" | sed 's/, $//') |"
}
echo "| figure | target | the median of $repeat runs, round by round |"
echo "|---|---|---|"
row '`async`, 64 asynchronous clients (2 × 32), tasks/s' '≥ 250,000' "${async_clients[@]}"
row '`async`, 64 blocking producer threads, tasks/s' '(≥ 250,000)' "${async_threads[@]}"
row '`sync`, 64 asynchronous clients (2 × 32), tasks/s' '≥ 100,000' "${sync_clients[@]}"
row '`sync`, 64 blocking producer threads, tasks/s' '(≥ 100,000)' "${sync_threads[@]}"
row '`sync` enqueue latency, one producer, p50' '≤ 300 µs' "${latency[@]}"
row "resident memory, $(commas "$rss_tasks") completed tasks" '≤ 150 MB' "$rss"
row "open → accepting work, $(commas "$recovery_tasks") PENDING tasks" '≤ 5 s' "$open"
row 'the disk: plain RocksDB, one fsynced `Put`, p50' '' "${disk_p50[@]}"
row 'the disk: plain RocksDB, fsynced batches of 100, records/s' '' "${disk_batch[@]}"
