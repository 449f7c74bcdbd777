#!/usr/bin/env bash
# The README's run command: installs what is missing (Debian 12), builds the main program in
# build/ and runs it. Arguments go to the program (see `tools/run.sh --help`).
# Until the HTTP server (bmos-taskd) exists, the main program is bmos-demo: BMOS-like tasks on
# the embedded engine in memory mode.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/install-deps.sh

jobs="$(nproc)"
# Tests and benchmarks are not needed to run the program (tools/test.sh builds them).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBMOS_BUILD_TESTS=OFF -DBMOS_BUILD_BENCH=OFF >/dev/null
cmake --build build --target bmos-demo -j "$jobs"

exec build/tools/bmos-demo "$@"
