// Helpers shared by the engine tests: gates a handler waits on, event counters, and polling with
// deadlines. Nothing here sleeps to wait for an outcome: every wait ends as soon as its condition
// holds, and fails the test after a generous real-time deadline (CI runs these under
// ThreadSanitizer on two loaded cores, so deadlines are never tight).
//
// Thread-safety: Gate and Counter may be used from any thread (handlers and the test body).
#ifndef BMOS_TESTS_ENGINE_ENGINE_TEST_UTIL_H_
#define BMOS_TESTS_ENGINE_ENGINE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <utility>

#include "engine/engine.h"
#include "storage/memory_task_store.h"

namespace bmos::storage {
// GoogleTest prints these by name (found by argument-dependent lookup), not as raw bytes.
inline void PrintTo(TaskState state, std::ostream* os) { *os << ToString(state); }
inline void PrintTo(Priority priority, std::ostream* os) { *os << ToString(priority); }
}  // namespace bmos::storage

namespace bmos::engine::test_util {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif
#else
inline constexpr bool kTsan = false;
#endif

// How long a test waits for an outcome before it fails.
inline constexpr std::chrono::milliseconds kWaitTimeout{10'000};
// Real-time bound of a handler that waits for the test; past it the handler gives up.
inline constexpr std::chrono::milliseconds kSafetyTimeout{10'000};

using SteadyClock = std::chrono::steady_clock;

inline std::string StatusText(const Status& s) { return s.ToString(); }
template <typename T>
std::string StatusText(const Result<T>& r) {
  return r.status().ToString();
}

#define BMOS_ASSERT_OK(expr)                                                               \
  do {                                                                                     \
    const auto& bmos_status_ = (expr);                                                     \
    ASSERT_TRUE(bmos_status_.ok()) << ::bmos::engine::test_util::StatusText(bmos_status_); \
  } while (0)

#define BMOS_EXPECT_OK(expr)                                                               \
  do {                                                                                     \
    const auto& bmos_status_ = (expr);                                                     \
    EXPECT_TRUE(bmos_status_.ok()) << ::bmos::engine::test_util::StatusText(bmos_status_); \
  } while (0)

// A one-shot gate: handlers block in Wait until the test calls Open.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

  // Blocks until Open, until `ctx` (if not null) is cancelled, or until kSafetyTimeout.
  // True if the gate was opened.
  bool Wait(const TaskContext* ctx = nullptr) {
    const auto deadline = SteadyClock::now() + kSafetyTimeout;
    std::unique_lock<std::mutex> lock(mu_);
    while (!open_) {
      if (ctx != nullptr && ctx->cancelled()) return false;
      if (SteadyClock::now() >= deadline) return false;
      // Short waits so a cancel token (which does not notify us) is seen promptly.
      cv_.wait_for(lock, std::chrono::milliseconds(2));
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// A monotonic event count that the test can wait on.
class Counter {
 public:
  void Add(int n = 1) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      value_ += n;
    }
    cv_.notify_all();
  }
  int Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }
  // True once the count is >= n; false after `timeout`.
  bool WaitAtLeast(int n, std::chrono::milliseconds timeout = kWaitTimeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return value_ >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int value_ = 0;
};

// A memory store that reports another durability, standing in for a persistent store (the engine
// then writes every transition, live ones included, to it).
class LabelledStore final : public storage::TaskStore {
 public:
  explicit LabelledStore(Durability durability)
      : durability_(durability), inner_(storage::NewMemoryTaskStore()) {}
  Durability durability() const override { return durability_; }
  Status Write(std::span<const TaskRecord> records) override { return inner_->Write(records); }
  Result<TaskRecord> Get(const TaskId& id) const override { return inner_->Get(id); }
  Result<ListPage> List(const ListQuery& query) const override { return inner_->List(query); }
  Result<storage::StoreCounts> Counts() const override { return inner_->Counts(); }
  Status ForEachLive(const std::function<void(const TaskRecord&)>& visit) const override {
    return inner_->ForEachLive(visit);
  }
  Result<size_t> PurgeTerminal(const storage::PurgeOptions& options) override {
    return inner_->PurgeTerminal(options);
  }

 private:
  Durability durability_;
  std::unique_ptr<storage::TaskStore> inner_;
};

// Polls `pred` until it holds (true) or `timeout` passes (false).
inline bool Eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = kWaitTimeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Loops until the token is set or kSafetyTimeout passes; true if it was set.
inline bool WaitForToken(const TaskContext& ctx) {
  return Eventually([&] { return ctx.cancelled(); }, kSafetyTimeout);
}

inline std::string Describe(const TaskRecord& r) {
  return "state=" + std::string(storage::ToString(r.state)) +
         " retry_count=" + std::to_string(r.retry_count) +
         " run_at_ms=" + std::to_string(r.run_at_ms) + " error='" + r.error + "'";
}

// Polls Get until `pred` holds for the record. DeadlineExceeded (with the last record seen)
// after `timeout`.
inline Result<TaskRecord> WaitForRecord(const Engine& engine, const TaskId& id,
                                        const std::function<bool(const TaskRecord&)>& pred,
                                        std::chrono::milliseconds timeout = kWaitTimeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    Result<TaskRecord> r = engine.Get(id);
    if (r.ok() && pred(*r)) return r;
    if (SteadyClock::now() >= deadline) {
      return Status::DeadlineExceeded("condition not reached; last: " +
                                      (r.ok() ? Describe(*r) : r.status().ToString()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

inline Result<TaskRecord> WaitForState(const Engine& engine, const TaskId& id, TaskState state,
                                       std::chrono::milliseconds timeout = kWaitTimeout) {
  return WaitForRecord(
      engine, id, [state](const TaskRecord& r) { return r.state == state; }, timeout);
}

// The engine's defaults, but in memory mode (the default, `sync`, writes to a data directory).
inline EngineOptions MemoryOptions() {
  EngineOptions options;
  options.durability = Durability::kMemory;
  return options;
}

// Options with one group "default" serving `queues` with `workers` workers.
inline EngineOptions MakeOptions(int workers, Clock* clock = nullptr,
                                 std::vector<std::string> queues = {"default"}) {
  EngineOptions options = MemoryOptions();
  options.groups = {
      WorkerGroupOptions{.name = "default", .queues = std::move(queues), .workers = workers}};
  options.clock = clock;
  options.seed = 1;
  return options;
}

// Two groups as BMOS runs them: "default" (2 workers) and "ml" (1 worker, queue "ml").
inline EngineOptions DefaultAndMlGroups() {
  EngineOptions options = MemoryOptions();
  options.groups = {WorkerGroupOptions{.name = "default", .queues = {"default"}, .workers = 2},
                    WorkerGroupOptions{.name = "ml", .queues = {"ml"}, .workers = 1}};
  return options;
}

// Builders for option structs. Designated initialisers that leave out a field without a default
// member initialiser trip GCC's -Wmissing-field-initializers, so tests use these instead.
inline HandlerOptions OnQueue(std::string queue) {
  HandlerOptions o;
  o.queue = std::move(queue);
  return o;
}
inline HandlerOptions WithRetries(int32_t max_retries) {
  HandlerOptions o;
  o.max_retries = max_retries;
  return o;
}
inline HandlerOptions WithPriority(Priority priority) {
  HandlerOptions o;
  o.priority = priority;
  return o;
}
inline ListQuery Query(std::optional<TaskState> state = std::nullopt, std::string queue = {},
                       std::string name = {}, size_t limit = 1000) {
  ListQuery q;
  q.state = state;
  q.queue = std::move(queue);
  q.name = std::move(name);
  q.limit = limit;
  return q;
}

inline EnqueueRequest Req(std::string name, boost::json::object data = {}) {
  EnqueueRequest request;
  request.name = std::move(name);
  request.data = std::move(data);
  return request;
}

// Enqueues and returns the id; records a test failure (and returns a nil id) on error.
inline TaskId EnqueueOrFail(Engine& engine, EnqueueRequest request) {
  Result<EnqueueResult> r = engine.Enqueue(std::move(request));
  if (!r.ok()) {
    ADD_FAILURE() << "Enqueue failed: " << r.status().ToString();
    return TaskId{};
  }
  return r->id;
}

inline HandlerResult NoopResult() { return boost::json::value(nullptr); }

inline Handler NoopHandler() {
  return [](TaskContext&) -> HandlerResult { return NoopResult(); };
}

// Waits (kWaitTimeout) for `id` to be terminal; records a failure and returns a default record
// with state PENDING if it is not.
inline TaskRecord WaitTerminal(const Engine& engine, const TaskId& id,
                               std::chrono::milliseconds timeout = kWaitTimeout) {
  Result<TaskRecord> r = engine.Wait(id, timeout);
  if (!r.ok()) {
    ADD_FAILURE() << "Wait failed for " << id.ToString() << ": " << r.status().ToString();
    TaskRecord none;
    none.spec = std::make_shared<storage::TaskSpec>();
    return none;
  }
  return std::move(r).value();
}

}  // namespace bmos::engine::test_util

#endif  // BMOS_TESTS_ENGINE_ENGINE_TEST_UTIL_H_
