// bmos-crash-child: the process that crash_test.cc kills. It opens the RocksDB task store (sync
// durability) and an engine on it, then enqueues tasks, and after each acknowledged Enqueue
// writes the task id as one line ("<36-char id>\n") to stdout with a single write(2). Nothing goes
// through stdio buffers, so a line on the pipe exists only for an id the engine acknowledged, and
// every such line is complete (37 bytes < PIPE_BUF: the write is atomic).
//
//   bmos-crash-child --data-dir DIR [--mode work|block] [--threads N] [--seed S]
//                    [--max-tasks N] [--max-seconds S] [--min-retries N]
//
// Modes:
//   work   N threads enqueue crash.work tasks (mixed priorities, some with a unique key, some
//          delayed a few seconds, some failing their first attempt) until --max-tasks in all or
//          --max-seconds have passed, then stop the engine and exit 0. The test kills it long
//          before either bound.
//   block  enqueues one crash.block task (its first attempt blocks), prints its id, and waits
//          --max-seconds for the kill.
//
// Exit status: 0 when it ran to its bound, 2 for bad arguments or a failed open.
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/prctl.h>

#include <csignal>
#endif

#include "engine/engine.h"
#include "storage/rocksdb_task_store.h"
#include "tests/crash/crash_work.h"

namespace {

using bmos::engine::Engine;
using bmos::engine::EnqueueRequest;
using bmos::engine::EnqueueResult;
using bmos::storage::Priority;
using bmos::storage::Result;
using bmos::storage::TaskId;

struct Args {
  std::string data_dir;
  std::string mode = "work";
  int threads = 4;
  uint64_t seed = 1;
  int64_t max_tasks = 200'000;
  int max_seconds = 20;
  int min_retries = 25;
};

bool ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bmos-crash-child: %s needs a value\n", argv[i]);
      return false;
    }
    const char* value = argv[++i];
    if (flag == "--data-dir") {
      args.data_dir = value;
    } else if (flag == "--mode") {
      args.mode = value;
    } else if (flag == "--threads") {
      args.threads = std::atoi(value);
    } else if (flag == "--seed") {
      args.seed = std::strtoull(value, nullptr, 10);
    } else if (flag == "--max-tasks") {
      args.max_tasks = std::atoll(value);
    } else if (flag == "--max-seconds") {
      args.max_seconds = std::atoi(value);
    } else if (flag == "--min-retries") {
      args.min_retries = std::atoi(value);
    } else {
      std::fprintf(stderr, "bmos-crash-child: unknown flag %s\n", argv[i - 1]);
      return false;
    }
  }
  if (args.data_dir.empty() || args.threads < 1 || args.threads > 64 || args.max_tasks < 1 ||
      args.max_seconds < 1 || args.min_retries < 0 || args.min_retries > 990 ||
      (args.mode != "work" && args.mode != "block")) {
    std::fprintf(stderr, "bmos-crash-child: bad arguments (see the file comment)\n");
    return false;
  }
  return true;
}

// Reports an acknowledged id: one write(2) of the whole line. Exits if stdout is gone (the test
// died), so an orphaned child does not run on.
void AnnounceId(const TaskId& id) {
  char line[37];
  id.Format(line);
  line[36] = '\n';
  for (;;) {
    ssize_t n = ::write(STDOUT_FILENO, line, sizeof line);
    if (n == static_cast<ssize_t>(sizeof line)) return;
    if (n < 0 && errno == EINTR) continue;
    // A short write cannot happen on a pipe for 37 bytes; anything else means the reader is gone.
    std::_Exit(3);
  }
}

EnqueueRequest RandomRequest(std::mt19937_64& rng, int min_retries) {
  auto pick = [&rng](uint64_t n) { return rng() % n; };
  EnqueueRequest request;
  request.name = bmos::crash::kWorkHandler;
  request.data = {{"spin_us", static_cast<int64_t>(50 + pick(151))},
                  {"fail_attempts", pick(10) == 0 ? 1 : 0}};
  request.priority = static_cast<Priority>(pick(4));
  // More attempts than the test has kills: every task must end COMPLETED even if each kill
  // interrupted it.
  request.max_retries = min_retries + static_cast<int32_t>(pick(5));
  if (pick(10) == 0) request.delay = std::chrono::milliseconds(1000 + pick(2000));
  if (pick(10) == 0) request.unique_key = "crash-key-" + std::to_string(pick(64));
  return request;
}

int RunWork(Engine& engine, const Args& args) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(args.max_seconds);
  std::atomic<int64_t> budget{args.max_tasks};
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < args.threads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(args.seed * 1'000'003 + static_cast<uint64_t>(t));
      // Relaxed: the budget only bounds the run; no other memory is published through it.
      while (budget.fetch_sub(1, std::memory_order_relaxed) > 0 &&
             std::chrono::steady_clock::now() < deadline) {
        Result<EnqueueResult> r = engine.Enqueue(RandomRequest(rng, args.min_retries));
        if (r.ok()) {
          AnnounceId(r->id);
        } else if (errors.fetch_add(1, std::memory_order_relaxed) < 5) {
          std::fprintf(stderr, "bmos-crash-child: enqueue failed: %s\n",
                       r.status().ToString().c_str());
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  return 0;
}

int RunBlock(Engine& engine, const Args& args) {
  EnqueueRequest request;
  request.name = bmos::crash::kBlockHandler;
  request.max_retries = 3;
  Result<EnqueueResult> r = engine.Enqueue(std::move(request));
  if (!r.ok()) {
    std::fprintf(stderr, "bmos-crash-child: enqueue failed: %s\n", r.status().ToString().c_str());
    return 2;
  }
  AnnounceId(r->id);
  // Waits for the kill (bounded): the handler holds the task RUNNING meanwhile.
  std::this_thread::sleep_for(std::chrono::seconds(args.max_seconds));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__linux__)
  // If the test dies, so do we (it kills us by pid otherwise).
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  Args args;
  if (!ParseArgs(argc, argv, args)) return 2;

  bmos::storage::RocksDbStoreOptions store_options;
  store_options.path = args.data_dir;
  store_options.durability = bmos::storage::Durability::kSync;
  auto store = bmos::storage::RocksDbTaskStore::Open(store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "bmos-crash-child: store: %s\n", store.status().ToString().c_str());
    return 2;
  }
  auto opened = Engine::Open(bmos::crash::CrashEngineOptions(std::move(store).value(), args.seed));
  if (!opened.ok()) {
    std::fprintf(stderr, "bmos-crash-child: engine: %s\n", opened.status().ToString().c_str());
    return 2;
  }
  Engine& engine = **opened;
  if (auto s = bmos::crash::RegisterCrashHandlers(engine); !s.ok()) {
    std::fprintf(stderr, "bmos-crash-child: handlers: %s\n", s.ToString().c_str());
    return 2;
  }
  const int rc = args.mode == "block" ? RunBlock(engine, args) : RunWork(engine, args);
  (void)engine.Stop(std::chrono::seconds(5));
  return rc;
}
