#!/usr/bin/env bash
# Fuzzes the HTTP request parsers (api/request_json.h) for a bounded time.
#   1. configures a clang-14 build tree in build-fuzz/ (-DBMOS_BUILD_FUZZ=ON, no tests or bench)
#      and builds only the libFuzzer target bmos_request_fuzz;
#   2. runs it for FUZZ_SECONDS (default 60) on a copy of tests/fuzz/corpus/ in a temporary
#      directory: nothing is written into the repository.
# Exits non-zero if the build fails or the fuzzer finds a crash, a leak, a sanitizer report or a
# broken invariant; the crashing input is then printed (base64) and kept in the temporary
# directory, whose path is printed. Of the fuzzer's output only the last 40 lines are printed
# (the report and the statistics); all of it is kept in the temporary directory on failure. Environment: FUZZ_SECONDS, FUZZ_CXX (default clang++-14),
# FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (build jobs; default nproc).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-60}"
cxx="${FUZZ_CXX:-clang++-14}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${FUZZ_JOBS:-$(nproc)}"

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DBMOS_BUILD_FUZZ=ON -DBMOS_BUILD_TESTS=OFF -DBMOS_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target bmos_request_fuzz

fuzzer="$build/tests/fuzz/bmos_request_fuzz"
work="$(mktemp -d "${TMPDIR:-/tmp}/bmos-fuzz.XXXXXX")"
cp -R tests/fuzz/corpus "$work/corpus"
mkdir "$work/artifacts"

# Sanitized programs can die at start-up on kernels whose address-space randomisation uses more
# bits than the sanitizer's memory layout allows; run with ASLR off for this process then.
prefix=()
if ! "$fuzzer" -runs=0 "$work/artifacts" >"$work/probe.log" 2>&1; then
  if setarch "$(uname -m)" -R "$fuzzer" -runs=0 "$work/artifacts" >"$work/probe.log" 2>&1; then
    prefix=(setarch "$(uname -m)" -R)
  else
    cat "$work/probe.log" >&2
    echo "fuzz.sh: $fuzzer does not start; kept $work" >&2
    exit 1
  fi
fi

status=0
"${prefix[@]}" "$fuzzer" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" \
  >"$work/fuzz.log" 2>&1 || status=$?
# libFuzzer's progress lines run to thousands; its report and final statistics are at the end,
# before and after the dictionary it recommends (left out).
awk '/^###### Recommended dictionary/ { skip = 1 } !skip { print } /^###### End of/ { skip = 0 }' \
  "$work/fuzz.log" | tail -n 40

if [[ $status -ne 0 ]] || [[ -n "$(ls -A "$work/artifacts")" ]]; then
  echo "fuzz.sh: the fuzzer failed (exit status $status); its output is in $work/fuzz.log," \
    "inputs kept in $work/artifacts:" >&2
  for input in "$work"/artifacts/*; do
    [[ -e "$input" ]] || continue
    echo "--- $input (base64)" >&2
    base64 "$input" >&2
  done
  exit 1
fi
echo "fuzz.sh: no crash in ${seconds}s; corpus grew to $(find "$work/corpus" -type f | wc -l) inputs"
rm -rf "$work"
