#!/usr/bin/env bash
# The README's run command: installs what is missing (Debian 12), builds the server and the CLI
# in build/, and runs bmos-taskd on 127.0.0.1:8080 with its durable default (RocksDB in
# ./bmos-data, no other service needed). Arguments go to bmos-taskd (see `tools/run.sh --help`);
# BMOS_* environment variables work too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/install-deps.sh

jobs="$(nproc)"
# Tests and benchmarks are not needed to run the program (tools/test.sh builds them).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBMOS_BUILD_TESTS=OFF -DBMOS_BUILD_BENCH=OFF >/dev/null
cmake --build build --target bmos-taskd bmos-task bmos-sample-data -j "$jobs"

cat <<HINT
------------------------------------------------------------------------------
bmos-taskd starts below (Ctrl-C or SIGTERM drains and stops it). In another terminal:
  export BMOS_TOKEN=\$($PWD/build/tools/bmos-task token --role admin --data-dir $PWD/bmos-data)
  curl -s -X POST http://127.0.0.1:8080/api/v1/tasks/enqueue \\
       -H "Authorization: Bearer \$BMOS_TOKEN" -H 'Content-Type: application/json' \\
       -d '{"task_name": "bmos.echo", "task_data": {"hello": "world"}}'
  $PWD/build/tools/bmos-task list
The BMOS handlers (process_data, check_data_quality, train_model, ...) read and write under
bmos-data/bmos; sample data for them: build/tools/bmos-sample-data --out bmos-data/bmos/demo
(the bmos.* test handlers are registered by this command too).
------------------------------------------------------------------------------
HINT
exec build/tools/bmos-taskd --listen 127.0.0.1:8080 --data-dir bmos-data --with-test-handlers "$@"
