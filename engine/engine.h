// Engine: the embeddable task engine. Enqueue, get, cancel, list, stats, wait, handlers.
//
// An Engine owns its worker groups, its delay timer (ETA, retry backoff, timeouts), its janitor
// (retention) and its store. Tasks flow PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED,
// with RUNNING -> RETRYING -> PENDING between attempts. With a logging store (sync, async) every
// transition is written to it; in memory mode only terminal records are (there is nothing to
// recover from), and live tasks are served from the engine's own index.
//
// Thread-safety: every method may be called from any thread, including from inside a handler.
// Open returns a running engine; Stop (or the destructor) stops it. Exceptions never leave it.
//
//   auto engine = bmos::engine::Engine::Open(options);            // Result<unique_ptr<Engine>>
//   (*engine)->RegisterHandler("clean", [](TaskContext& ctx) -> HandlerResult { ... });
//   auto id = (*engine)->Enqueue({.name = "clean", .data = {{"file", "a.csv"}}});
#ifndef BMOS_ENGINE_ENGINE_H_
#define BMOS_ENGINE_ENGINE_H_

#include <array>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/options.h"
#include "engine/task_context.h"
#include "storage/status.h"
#include "storage/task_record.h"
#include "storage/task_store.h"

namespace bmos::engine {

using storage::ListPage;
using storage::ListQuery;
using storage::Priority;
using storage::Result;
using storage::Status;
using storage::TaskId;
using storage::TaskRecord;
using storage::TaskState;

// Defaults a handler gives the tasks enqueued under its name (each overridable per enqueue).
struct HandlerOptions {
  std::string queue = "default";
  Priority priority = Priority::kNormal;
  std::optional<int32_t> max_retries{};  // nullopt: EngineOptions::default_max_retries
  std::optional<std::chrono::milliseconds> timeout{};  // nullopt: EngineOptions::default_timeout
};

struct EnqueueRequest {
  std::string name{};          // a registered handler; REQUIRED
  boost::json::object data{};  // the task's data
  // Pre-serialised data, used instead of `data` when not empty. REQUIRES: a JSON object's text
  // (the HTTP layer passes the body it already validated, so it is not parsed twice).
  std::string data_json{};
  std::string queue{};  // empty: the handler's queue
  std::optional<Priority> priority{};
  std::optional<int32_t> max_retries{};                // 0..1000
  std::optional<std::chrono::milliseconds> timeout{};  // per attempt; 0 = none
  std::optional<int64_t> eta_ms{};                     // Unix ms; not before this
  std::optional<std::chrono::milliseconds> delay{};  // not before now + delay (exclusive with eta)
  // While a task with this key is PENDING, RUNNING or RETRYING, enqueueing the same key returns
  // that task instead of creating another. Empty = none.
  std::string unique_key{};
};

struct EnqueueResult {
  TaskId id{};
  TaskState state = TaskState::kPending;  // the state right after enqueue
  bool created = true;  // false: the unique key was live and `id` is the existing task
};

// Told of a task that ended (COMPLETED, FAILED or CANCELLED), once its terminal record is written.
using TaskEndObserver = std::function<void(const TaskRecord&)>;

// Told the outcome of Engine::EnqueueAsync.
using EnqueueCallback = std::function<void(Result<std::vector<EnqueueResult>>)>;

// A point-in-time view for dashboards and the stats endpoint.
struct EngineStats {
  struct Group {
    std::string name{};
    std::vector<std::string> queues{};
    int workers = 0;
    int busy = 0;  // workers running a handler now
    int idle = 0;  // workers - busy
  };
  // Upper bounds (ms) of the cumulative buckets in Percentiles::buckets (Prometheus histograms).
  static constexpr std::array<double, 20> kBucketBoundsMs = {
      0.05, 0.1, 0.25, 0.5,  1,    2.5,  5,     10,    25,    50,
      100,  250, 500,  1000, 2500, 5000, 10000, 30000, 60000, 300000};
  struct Percentiles {
    uint64_t count = 0;  // samples in the histogram since open
    double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
    // buckets[i]: samples <= kBucketBoundsMs[i] (cumulative), to the engine histogram's ~6%
    // resolution (a sample counts at the lower bound of its log-linear bucket). Samples above
    // the last bound are only in `count`.
    std::array<uint64_t, kBucketBoundsMs.size()> buckets{};
    // Sum of the samples, each taken at the lower bound of its log-linear bucket: within ~6%
    // below the true sum.
    double sum_ms = 0;
  };
  std::vector<Group> groups{};
  // Tasks per queue and state, from the store (terminal ones until retention purges them).
  std::map<std::string, std::array<uint64_t, storage::kTaskStateCount>, std::less<>> by_queue;
  std::array<uint64_t, storage::kTaskStateCount> by_state{};
  // Since open. completed, failed and cancelled count tasks that ended so (failed: FAILED after
  // their last attempt); retried counts failed attempts that were retried.
  uint64_t enqueued = 0, completed = 0, failed = 0, retried = 0, cancelled = 0;
  double completed_per_second = 0;  // COMPLETED tasks/s over the last 60 s (or since open)
  double failed_per_second = 0;     // FAILED tasks/s, same window
  double success_rate = 1;          // completed / (completed + failed); 1 when both are 0
  Percentiles queue_wait{};         // runnable -> handler start
  Percentiles run_time{};           // handler start -> handler return
  uint64_t live_tasks = 0;          // PENDING + RUNNING + RETRYING held in memory
};

class Engine {
 public:
  // Validates `options` (InvalidArgument naming the field), recovers live tasks from the store,
  // and starts the workers, timer and janitor. The engine owns what it returns.
  static Result<std::unique_ptr<Engine>> Open(EngineOptions options);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Stops as Stop(0s) would: cancels running tasks' tokens and waits for handlers to return.
  ~Engine();

  // Makes `name` runnable. InvalidArgument for an empty name, a name already registered, or a
  // queue that no group serves. Handlers may be registered at any time and are never removed.
  Status RegisterHandler(std::string name, Handler handler, HandlerOptions options = {});
  // Registered names, sorted.
  std::vector<std::string> HandlerNames() const;

  // Creates a PENDING task (or finds the live one with the same unique key). InvalidArgument for
  // an unknown name (the message lists the known ones), an unserved queue or a bad field;
  // Unavailable once stopping; a store error as the store returned it (nothing was created).
  Result<EnqueueResult> Enqueue(EnqueueRequest request);

  // All or nothing: if any request is invalid nothing is enqueued and the error names its index.
  // The records are written in one store batch.
  Result<std::vector<EnqueueResult>> EnqueueBatch(std::vector<EnqueueRequest> requests);

  // EnqueueBatch without blocking the caller on the store: `done` receives what EnqueueBatch
  // would return, once the records are as durable as the engine's durability promises. It runs
  // on a store thread, or on this one before EnqueueAsync returns (invalid requests, memory
  // mode); it must be quick and must not block (the HTTP server posts the answer to the
  // connection's loop). Concurrent asynchronous enqueues share one group commit, so a few
  // threads keep many enqueues in flight. The callbacks of one commit run in a row inside one
  // storage::CallbackBatch: a callback that wakes another thread should defer the wake-up to
  // the batch's end (CallbackBatch::Defer), as the HTTP server and bmos-taskbench's clients do,
  // or the woken thread, taking over the answering thread's core, sees one answer per wake-up.
  // A request with a unique key that another enqueue is writing right now waits here for that
  // write to settle.
  void EnqueueAsync(std::vector<EnqueueRequest> requests, EnqueueCallback done);

  // Whether Enqueue would accept `request` (the same checks, without side effects): OK or the
  // InvalidArgument Enqueue would return. For callers that store a request to enqueue later
  // (the scheduler's jobs).
  Status ValidateEnqueue(const EnqueueRequest& request) const;

  // Installs `observer` (null: none), told of every task that ends from now on, on the thread
  // that ended it (a worker, the store's commit thread or a Cancel caller), outside every engine
  // lock. It must be quick and must not block on the engine (no Wait, no Stop). An observer that
  // is replaced may still be running a call that began before; it is kept alive until the engine
  // is destroyed.
  void SetTaskEndObserver(TaskEndObserver observer);

  // The task's full record (live tasks show their latest progress). NotFound for an unknown or
  // purged id.
  Result<TaskRecord> Get(const TaskId& id) const;
  Result<TaskRecord> Get(std::string_view id) const;

  // PENDING or RETRYING: CANCELLED at once. RUNNING: its cancel token is set and the task ends
  // CANCELLED when the handler returns having observed it (FailedPrecondition is not returned;
  // Get shows it RUNNING until then). Terminal: FailedPrecondition. Unknown: NotFound.
  Status Cancel(const TaskId& id);

  // Records matching the query, newest first, with a cursor for the next page.
  Result<ListPage> List(const ListQuery& query) const;

  EngineStats Stats() const;

  // Blocks until the task is terminal and returns its record, or DeadlineExceeded after
  // `timeout` of real (steady) time. NotFound for an unknown id.
  Result<TaskRecord> Wait(const TaskId& id, std::chrono::milliseconds timeout) const;

  // Changes the number of workers of a group (1..256) while running. Workers taken away finish
  // their current task first; tasks they had taken go back to the shared queues.
  Status ResizeGroup(std::string_view group, int workers);

  // Graceful stop: refuses new enqueues (Unavailable), lets running handlers finish until
  // `drain` has passed, then sets the tokens of those still running and waits for them. Tasks
  // still waiting stay PENDING/RETRYING in the store. Idempotent; later calls return at once.
  // From inside a handler of this engine: FailedPrecondition (a worker cannot wait for itself).
  Status Stop(std::chrono::milliseconds drain = std::chrono::seconds(30));

  // The store (for tools and the HTTP layer's health check). Owned by the engine.
  storage::TaskStore& store() const;
  Clock& clock() const;

  // Runs the janitor once now (tests; the janitor also runs on its own every interval).
  Result<size_t> TEST_RunRetentionOnce();

 private:
  explicit Engine(std::unique_ptr<EngineImpl> impl);
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_ENGINE_H_
