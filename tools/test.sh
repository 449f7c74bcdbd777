#!/usr/bin/env bash
# shellcheck disable=SC2317  # the step functions are called indirectly, through an array
# The README's test command (and what CI runs, through .ci/run). On a fresh Debian 12 machine:
#   1. installs what is missing (tools/install-deps.sh);
#   2. builds everything (tests, benchmarks, tools) in build/ and runs every test with CTest;
#   3. builds the engine, storage and api tests (the api ones start the TSan-built server) with
#      ThreadSanitizer in build-tsan/ and runs them;
#   4. builds every test with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/ and
#      runs them;
#   5. fuzzes the HTTP request parsers with libFuzzer (clang) for FUZZ_SECONDS (default 60).
# Every step runs even if an earlier one failed; the last line sums up, and the exit status is
# non-zero if any step failed. Sized for a 2-core machine: well under 30 minutes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs="$(nproc)"
cxx="${CXX:-c++}"
ctest_jobs=2

# failure_report DIR: the names of the tests that failed in DIR's last run and, for each, the
# 30 lines of its output from its first failure or sanitizer report on, and its last 10 lines,
# so that the end of a long log (what CI shows) says what failed and why.
failure_report() {
  local dir="$1" failed="$1/Testing/Temporary/LastTestsFailed.log"
  local log="$1/Testing/Temporary/LastTest.log" name
  if [ ! -s "$failed" ]; then
    echo "$dir: no test failed there; the step failed outside its tests (see its output above)"
    return 0
  fi
  echo "failed in $dir:"
  while IFS= read -r line; do
    name="${line#*:}"
    echo "--- $name"
    awk -v name="$name" '
      index($0, "\"" name "\" start time:") == 1 { on = 1; n = 0; first = -1; next }
      on && index($0, "\"" name "\" end time:") == 1 { on = 0 }
      on && n < 100000 {
        out[n] = $0
        if (first < 0 && $0 ~ /Failure|ERROR|runtime error|WARNING: ThreadSanitizer|Timeout|terminate|Exception/)
          first = n
        n++
      }
      END {
        if (first >= 0) for (i = first; i < n && i < first + 30; i++) print out[i]
        print "[...]"
        for (i = (n > 10 ? n - 10 : 0); i < n; i++) print out[i]
      }
    ' "$log"
  done <"$failed"
}

header() {
  printf '\n==============================================================================\n'
  printf '==> %s\n' "$*"
  printf '==============================================================================\n'
}

# configure DIR [CMAKE ARGS...]: a Ninja build tree of the project.
configure() {
  local dir="$1"
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBMOS_BUILD_TESTS=ON "$@"
}

# Sanitized programs built by g++ 12 can die at start-up on newer kernels whose address-space
# randomisation uses more bits than the sanitizer's memory layout allows ("FATAL:
# ThreadSanitizer: unexpected memory mapping"). sanitizer_prefix FLAG prints the command prefix
# that makes a tiny threaded program built with -fsanitize=FLAG run: nothing, or
# `setarch <arch> -R` (ASLR off for that process and its children). Fails if neither works.
sanitizer_prefix() {
  local flag="$1" dir
  dir="$(mktemp -d)"
  cat >"$dir/probe.cc" <<'PROBE'
#include <atomic>
#include <thread>
int main() {
  std::atomic<int> n{0};
  std::thread t([&n] { n.fetch_add(1); });
  t.join();
  int* p = new int[2];
  p[1] = n.load();
  int r = p[1] - 1;
  delete[] p;
  return r;
}
PROBE
  if ! "$cxx" -std=c++20 -g -fsanitize="$flag" -pthread "$dir/probe.cc" -o "$dir/probe" \
    >"$dir/log" 2>&1; then
    echo "cannot build a -fsanitize=$flag program with $cxx:" >&2
    cat "$dir/log" >&2
    rm -rf "$dir"
    return 1
  fi
  if "$dir/probe" >"$dir/log" 2>&1; then
    echo ""
  elif setarch "$(uname -m)" -R "$dir/probe" >"$dir/log.setarch" 2>&1; then
    echo "-fsanitize=$flag needs ASLR off on this kernel; running under setarch -R:" >&2
    head -3 "$dir/log" >&2
    echo "setarch $(uname -m) -R"
  else
    echo "a -fsanitize=$flag program does not run on this machine, even without ASLR:" >&2
    cat "$dir/log" "$dir/log.setarch" >&2
    rm -rf "$dir"
    return 1
  fi
  rm -rf "$dir"
}

step_setup() {
  tools/install-deps.sh
}

step_build_and_test() {
  configure build -DBMOS_SANITIZER= -DBMOS_BUILD_BENCH=ON
  cmake --build build -j "$jobs"
  ctest --test-dir build --output-on-failure -j "$ctest_jobs"
}

step_tsan() {
  local prefix
  prefix="$(sanitizer_prefix thread)"
  echo "ThreadSanitizer works here${prefix:+ under: $prefix}"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
  # TSan does not model atomic_thread_fence, which moodycamel's queue relies on; the reports it
  # gets wrong inside the queue are suppressed by name (see the file).
  if [ -f tests/engine/tsan.supp ]; then
    TSAN_OPTIONS+=":suppressions=$PWD/tests/engine/tsan.supp"
  fi
  configure build-tsan -DBMOS_SANITIZER=thread -DBMOS_BUILD_BENCH=OFF
  # The engine, storage and api tests (and what they link; the api integration tests start the
  # TSan-built bmos-taskd, whose reports fail them). The build runs the test binaries to
  # discover their tests, so it needs the prefix too.
  $prefix cmake --build build-tsan -j "$jobs" --target tests/engine/all tests/storage/all \
    tests/api/all
  $prefix ctest --test-dir build-tsan --output-on-failure -j "$ctest_jobs" -L 'engine|storage|api'
}

step_asan() {
  local prefix
  prefix="$(sanitizer_prefix address,undefined)"
  echo "AddressSanitizer works here${prefix:+ under: $prefix}"
  export ASAN_OPTIONS="detect_leaks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # Debug: assertions (the transition table check among them) stay on.
  configure build-asan -DBMOS_SANITIZER=address -DBMOS_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug
  $prefix cmake --build build-asan -j "$jobs" --target tests/all
  $prefix ctest --test-dir build-asan --output-on-failure -j "$ctest_jobs"
}

step_fuzz() {
  FUZZ_SECONDS="${FUZZ_SECONDS:-60}" tools/fuzz.sh
}

steps=(step_setup step_build_and_test step_tsan step_asan step_fuzz)
titles=(
  "set-up: install missing Debian packages"
  "build/: build everything (RelWithDebInfo, tests, benchmarks) and run every test"
  "build-tsan/: ThreadSanitizer, engine, storage and api tests"
  "build-asan/: AddressSanitizer + UndefinedBehaviorSanitizer, every test"
  "build-fuzz/: libFuzzer (clang) on the HTTP request parsers, bounded in time"
)
names=(setup tests tsan asan+ubsan fuzz)
test_dirs=("" build build-tsan build-asan "")
summary=()
failed=0
total_start=$SECONDS

for i in "${!steps[@]}"; do
  header "[$((i + 1))/${#steps[@]}] ${titles[$i]}"
  start=$SECONDS
  # A list of failed tests left by an earlier run would be reported if this step's build fails.
  [ -n "${test_dirs[$i]}" ] && rm -f "${test_dirs[$i]}/Testing/Temporary/LastTestsFailed.log"
  set +e
  (
    set -euo pipefail
    "${steps[$i]}"
  )
  rc=$?
  set -e
  took=$((SECONDS - start))
  if [ "$rc" -eq 0 ]; then
    summary+=("${names[$i]} ok (${took}s)")
    echo "--> ${names[$i]}: ok in ${took}s"
  else
    summary+=("${names[$i]} FAILED (${took}s)")
    echo "--> ${names[$i]}: FAILED (exit $rc) after ${took}s"
    failed=1
    # Nothing builds without the packages.
    [ "${names[$i]}" = setup ] && break
  fi
done

header "summary"
for i in "${!summary[@]}"; do
  if [[ "${summary[$i]}" == *FAILED* ]] && [ -n "${test_dirs[$i]}" ]; then
    failure_report "${test_dirs[$i]}"
  fi
done
line="${summary[0]}"
for s in "${summary[@]:1}"; do line+=", $s"; done
if [ "$failed" -eq 0 ]; then
  echo "tools/test.sh: ALL PASSED in $((SECONDS - total_start))s: $line"
else
  echo "tools/test.sh: FAILED after $((SECONDS - total_start))s: $line"
fi
exit "$failed"
