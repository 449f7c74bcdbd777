// What the crash test's child (crash_child.cc) and parent (crash_test.cc) share: the handlers and
// the engine options. The parent's final engine runs the tasks the child left behind, so it must
// run them exactly as the child would have.
//
// Handlers (both return the attempt number, so a COMPLETED record's result tells which attempt
// finished it and can be checked against its retry_count):
//   crash.work   spins data.spin_us microseconds (a few tasks are RUNNING at any moment, so a kill
//                interrupts some), and fails its attempts up to data.fail_attempts (RETRYING
//                records are in the log too).
//   crash.block  blocks on its first attempt (until cancelled, or kBlockSafety has passed), so
//                the test can kill the process while the task is RUNNING; later attempts return
//                at once.
//
// Thread-safety: the handlers are called by any worker concurrently; they keep no state.
#ifndef BMOS_TESTS_CRASH_CRASH_WORK_H_
#define BMOS_TESTS_CRASH_CRASH_WORK_H_

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>

#include "engine/engine.h"
#include "engine/options.h"
#include "storage/task_store.h"

namespace bmos::crash {

inline constexpr char kWorkHandler[] = "crash.work";
inline constexpr char kBlockHandler[] = "crash.block";

// How long crash.block blocks at most: longer than any test waits, shorter than CTest's limit.
inline constexpr std::chrono::seconds kBlockSafety{60};

// Reads an integer field of a task's data; `fallback` when it is missing or not an integer.
inline int64_t DataInt(engine::TaskContext& ctx, const char* key, int64_t fallback) {
  const boost::json::value& data = ctx.data();
  if (!data.is_object()) return fallback;
  const boost::json::value* v = data.as_object().if_contains(key);
  if (v == nullptr || !v->is_int64()) return fallback;
  return v->as_int64();
}

inline engine::HandlerResult CrashWork(engine::TaskContext& ctx) {
  if (ctx.attempt() <= DataInt(ctx, "fail_attempts", 0)) {
    return storage::Status::Internal("planned failure of attempt " + std::to_string(ctx.attempt()));
  }
  // Busy work, not a sleep: the worker holds the task RUNNING for this long.
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::microseconds(DataInt(ctx, "spin_us", 100));
  while (std::chrono::steady_clock::now() < until) {
  }
  return boost::json::value(ctx.attempt());
}

inline engine::HandlerResult CrashBlock(engine::TaskContext& ctx) {
  if (ctx.attempt() == 1) {
    const auto until = std::chrono::steady_clock::now() + kBlockSafety;
    while (!ctx.cancelled() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return storage::Status::Unavailable("crash.block: first attempt not killed in time");
  }
  return boost::json::value(ctx.attempt());
}

// Engine options for the durable store: sync durability (set explicitly), one group "default"
// with 2 workers, short retry backoff so RETRYING tasks come back within the test.
inline engine::EngineOptions CrashEngineOptions(std::shared_ptr<storage::TaskStore> store,
                                                uint64_t seed) {
  engine::EngineOptions options;
  options.durability = storage::Durability::kSync;
  options.store = std::move(store);
  options.groups = {
      engine::WorkerGroupOptions{.name = "default", .queues = {"default"}, .workers = 2}};
  options.retry.base = std::chrono::milliseconds(20);
  options.retry.cap = std::chrono::milliseconds(200);
  options.seed = seed == 0 ? 1 : seed;
  return options;
}

// Registers both handlers on `engine`.
inline storage::Status RegisterCrashHandlers(engine::Engine& engine) {
  if (storage::Status s = engine.RegisterHandler(kWorkHandler, CrashWork); !s.ok()) return s;
  return engine.RegisterHandler(kBlockHandler, CrashBlock);
}

}  // namespace bmos::crash

#endif  // BMOS_TESTS_CRASH_CRASH_WORK_H_
