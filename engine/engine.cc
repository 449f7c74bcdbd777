#include "engine/engine.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <exception>
#include <set>
#include <span>
#include <unordered_set>

#include "engine/internal/engine_impl.h"
#include "engine/internal/percentiles.h"
#include "storage/callback_batch.h"
#include "storage/memory_task_store.h"
#include "storage/object_pool.h"
#include "storage/rocksdb_task_store.h"

namespace bmos::engine {

using internal::Task;
using storage::TaskSpec;

namespace {

constexpr size_t kMaxNameLength = 200;
constexpr size_t kMaxUniqueKeyLength = 512;
constexpr int32_t kMaxRetriesLimit = 1000;
// How long a task waits before its refused outcome record is written again.
constexpr int64_t kRetryLaterUs = 1'000'000;

// Runs `then` once a store write succeeded (see TaskStore::WriteAndThen).
template <typename Fn>
class ThenOnSuccess final : public storage::WriteCallback {
 public:
  explicit ThenOnSuccess(Fn& then) : then_(then) {}
  void OnWritten(const Status& status) override {
    if (status.ok()) then_();
  }

 private:
  Fn& then_;
};

// How long a task taken while a Cancel writes its record waits before it is looked at again.
constexpr int64_t kCancelSettleUs = 2'000;

std::atomic<uint64_t> next_engine_uid{1};

// Transparent hashing so lookups by string_view do not build a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// Per-thread copy of the handler registry, so the enqueue hot path reads no shared lock.
struct HandlerCache {
  uint64_t engine_uid = 0;
  uint64_t version = ~uint64_t{0};
  std::unordered_map<std::string, const internal::HandlerEntry*, StringHash, std::equal_to<>> map;
};
thread_local HandlerCache handler_cache;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out.empty() ? "(none)" : out;
}

HandlerResult Invoke(const Handler& fn, TaskContext& ctx) {
  // Exceptions never cross our API: a throwing handler is a failed attempt.
  try {
    return fn(ctx);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("handler threw: ") + e.what());
  } catch (...) {
    return Status::Internal("handler threw a non-standard exception");
  }
}

void AssertTransition(storage::TaskState from, storage::TaskState to) {
  // Debug builds stop at an illegal transition; the engine only makes legal ones by construction.
  assert(storage::IsLegalTransition(from, to) && "illegal task state transition");
  (void)from;
  (void)to;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Validation and start.

EngineImpl::EngineImpl(EngineOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : SystemClock()),
      store_(options_.store),
      retry_policy_(options_.retry),
      persist_live_(options_.durability != storage::Durability::kMemory),
      uid_(next_engine_uid.fetch_add(1, std::memory_order_relaxed)) {
  uint64_t seed = options_.seed != 0 ? options_.seed : std::random_device{}();
  jitter_rng_.seed(seed);
}

EngineImpl::~EngineImpl() { (void)Stop(std::chrono::milliseconds(0)); }

Status EngineImpl::Validate(const EngineOptions& o) {
  if (o.groups.empty())
    return Status::InvalidArgument("groups: at least one worker group is required");
  std::set<std::string, std::less<>> group_names;
  std::set<std::string, std::less<>> queue_names;
  for (size_t i = 0; i < o.groups.size(); ++i) {
    const WorkerGroupOptions& g = o.groups[i];
    std::string where = "groups[" + std::to_string(i) + "]";
    if (g.name.empty() || g.name.size() > kMaxNameLength) {
      return Status::InvalidArgument(where + ".name must be 1.." + std::to_string(kMaxNameLength) +
                                     " characters");
    }
    if (!group_names.insert(g.name).second) {
      return Status::InvalidArgument(where + ".name '" + g.name + "' is used by two groups");
    }
    if (g.workers < 1 || g.workers > WorkerGroup::kMaxWorkers) {
      return Status::InvalidArgument(where + ".workers must be within 1.." +
                                     std::to_string(WorkerGroup::kMaxWorkers));
    }
    if (g.queues.empty()) return Status::InvalidArgument(where + ".queues must not be empty");
    for (const std::string& q : g.queues) {
      if (q.empty() || q.size() > kMaxNameLength) {
        return Status::InvalidArgument(where + ".queues: a queue name must be 1.." +
                                       std::to_string(kMaxNameLength) + " characters");
      }
      if (!queue_names.insert(q).second) {
        return Status::InvalidArgument(where + ".queues: queue '" + q +
                                       "' is served by two groups");
      }
    }
  }
  if (Status s = RetryPolicy::Validate(o.retry); !s.ok()) return s;
  if (o.retention.max_age.count() < 0) {
    return Status::InvalidArgument("retention.max_age must be >= 0");
  }
  if (o.retention.interval.count() <= 0) {
    return Status::InvalidArgument("retention.interval must be > 0");
  }
  if (o.retention.batch < 1) return Status::InvalidArgument("retention.batch must be >= 1");
  if (o.default_max_retries < 0 || o.default_max_retries > kMaxRetriesLimit) {
    return Status::InvalidArgument("default_max_retries must be within 0..1000");
  }
  if (o.default_timeout.count() < 0) {
    return Status::InvalidArgument("default_timeout must be >= 0");
  }
  if (o.anti_starvation_interval < 0) {
    return Status::InvalidArgument("anti_starvation_interval must be >= 0");
  }
  if (o.dequeue_batch < 1 || o.dequeue_batch > 256) {
    return Status::InvalidArgument("dequeue_batch must be within 1..256");
  }
  if (o.store == nullptr && o.durability != storage::Durability::kMemory && o.data_dir.empty()) {
    return Status::InvalidArgument("data_dir: durability '" +
                                   std::string(storage::ToString(o.durability)) +
                                   "' needs a data directory (or a store in EngineOptions::store)");
  }
  if (o.store != nullptr && o.store->durability() != o.durability) {
    return Status::InvalidArgument(
        "durability: the store gives '" + std::string(storage::ToString(o.store->durability())) +
        "' but '" + std::string(storage::ToString(o.durability)) + "' was asked for");
  }
  return Status::Ok();
}

Status EngineImpl::Start() {
  started_at_s_ = NowUs() / 1'000'000;
  if (store_ == nullptr) {
    if (options_.durability == storage::Durability::kMemory) {
      store_ = storage::NewMemoryTaskStore();
    } else {
      storage::RocksDbStoreOptions so;
      so.path = options_.data_dir;
      so.durability = options_.durability;
      so.zero_ahead_wal = options_.wal_zero_ahead;
      Result<std::shared_ptr<storage::RocksDbTaskStore>> opened =
          storage::RocksDbTaskStore::Open(so);
      if (!opened.ok()) return opened.status();
      store_ = std::move(opened).value();
    }
  }
  for (const WorkerGroupOptions& g : options_.groups) {
    std::vector<internal::QueueSlot*> slots;
    for (const std::string& q : g.queues) {
      auto slot = std::make_unique<internal::QueueSlot>();
      slot->name = q;
      slot->index_in_group = static_cast<int>(slots.size());
      slots.push_back(slot.get());
      queues_.emplace(q, slot.get());
      queue_slots_.push_back(std::move(slot));
    }
    auto group = std::make_unique<WorkerGroup>(
        g.name, slots, this, options_.anti_starvation_interval, options_.dequeue_batch);
    for (internal::QueueSlot* s : slots) s->group = group.get();
    groups_.push_back(std::move(group));
  }
  timer_ = std::make_unique<internal::DelayTimer>(
      clock_, [this](Task* t) { OnDue(t); },
      [this](const TaskId& id, int attempt) { OnTimeout(id, attempt); });

  // Recovery: every live record returns to a queue or the timer, in priority then creation
  // order; an attempt that was running when the process died counts as a failed attempt.
  std::vector<TaskRecord> live;
  Status s = store_->ForEachLive([&](const TaskRecord& r) { live.push_back(r); });
  if (!s.ok()) return s;
  std::sort(live.begin(), live.end(), [](const TaskRecord& a, const TaskRecord& b) {
    if (a.spec->priority != b.spec->priority) return a.spec->priority > b.spec->priority;
    return a.id() < b.id();
  });
  const int64_t now = NowUs();
  std::vector<TaskRecord> rewritten;
  std::vector<std::pair<std::unique_ptr<Task>, int64_t>> recovered;
  for (TaskRecord& r : live) {
    auto qit = queues_.find(r.spec->queue);
    if (qit == queues_.end()) {
      return Status::InvalidArgument("recovery: live task " + r.id().ToString() + " is in queue '" +
                                     r.spec->queue +
                                     "', which no worker group serves; add it to a group");
    }
    int64_t run_at_us = r.run_at_ms * 1000;
    if (r.state == TaskState::kRunning) {
      TaskRecord next = r;
      next.error = "interrupted: the process stopped while this attempt was running";
      if (r.retry_count >= r.spec->max_retries) {
        AssertTransition(r.state, TaskState::kFailed);
        next.state = TaskState::kFailed;
        next.completed_ms = now / 1000;
        rewritten.push_back(std::move(next));
        continue;
      }
      AssertTransition(r.state, TaskState::kRetrying);
      next.state = TaskState::kRetrying;
      next.retry_count = r.retry_count + 1;
      next.run_at_ms = now / 1000;
      run_at_us = now;
      rewritten.push_back(next);
      r = std::move(next);
    }
    auto task = std::make_unique<Task>();
    task->queue = qit->second;
    task->handler = FindHandler(r.spec->name);  // may be null until the handler is registered
    task->state.store(r.state, std::memory_order_relaxed);
    if (!r.spec->unique_key.empty())
      unique_keys_[r.spec->unique_key] = UniqueKeyEntry{r.id(), false};
    task->rec = std::move(r);
    recovered.emplace_back(std::move(task), run_at_us);
  }
  s = WriteInChunks(rewritten);
  if (!s.ok()) return s;

  for (size_t i = 0; i < groups_.size(); ++i) {
    s = groups_[i]->Resize(options_.groups[i].workers);
    if (!s.ok()) return s;
  }
  timer_->Start();
  for (auto& [task, run_at_us] : recovered) {
    Task* t = task.release();
    {
      IndexShard& shard = ShardOf(t->id());
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.tasks.Insert(t->id(), t);
    }
    CountLive(t->queue, TaskState::kCompleted, t->state.load(std::memory_order_relaxed));
    if (t->state.load(std::memory_order_relaxed) == TaskState::kRetrying) {
      timer_->ScheduleTask(t, run_at_us);
    } else {
      Dispatch(t, run_at_us);
    }
  }

  janitor_sleeper_ = std::make_unique<internal::Sleeper>(clock_);
  janitor_ = std::thread([this] { JanitorLoop(); });
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Handlers.

Status EngineImpl::RegisterHandler(std::string name, Handler handler, HandlerOptions options) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return Status::InvalidArgument("handler name must be 1.." + std::to_string(kMaxNameLength) +
                                   " characters");
  }
  if (!handler) return Status::InvalidArgument("handler '" + name + "' is empty");
  auto qit = queues_.find(options.queue);
  if (qit == queues_.end()) {
    return Status::InvalidArgument("handler '" + name + "': " + UnservedQueueText(options.queue));
  }
  if (options.max_retries &&
      (*options.max_retries < 0 || *options.max_retries > kMaxRetriesLimit)) {
    return Status::InvalidArgument("handler '" + name + "': max_retries must be within 0..1000");
  }
  if (options.timeout && options.timeout->count() < 0) {
    return Status::InvalidArgument("handler '" + name + "': timeout must be >= 0");
  }
  std::vector<Task*> waiting;
  {
    std::unique_lock<std::shared_mutex> lock(handlers_mu_);
    if (handlers_.count(name) != 0) {
      return Status::InvalidArgument("handler '" + name + "' is already registered");
    }
    auto entry = std::make_unique<internal::HandlerEntry>();
    entry->name = name;
    entry->fn = std::move(handler);
    entry->options = std::move(options);
    entry->queue = qit->second;
    handlers_.emplace(name, std::move(entry));
    // Release: a thread that sees the new version (acquire) sees the entry.
    handlers_version_.fetch_add(1, std::memory_order_release);
    // Recovered tasks that were waiting for this handler run now.
    if (auto w = awaiting_handler_.find(name); w != awaiting_handler_.end()) {
      waiting = std::move(w->second);
      awaiting_handler_.erase(w);
    }
  }
  for (Task* t : waiting) Dispatch(t, 0);
  return Status::Ok();
}

std::vector<std::string> EngineImpl::HandlerNames() const {
  std::shared_lock<std::shared_mutex> lock(handlers_mu_);
  std::vector<std::string> names;
  for (const auto& [name, entry] : handlers_) names.push_back(name);
  return names;
}

const internal::HandlerEntry* EngineImpl::FindHandler(std::string_view name) const {
  HandlerCache& cache = handler_cache;
  uint64_t version = handlers_version_.load(std::memory_order_acquire);
  if (cache.engine_uid != uid_ || cache.version != version) {
    std::shared_lock<std::shared_mutex> lock(handlers_mu_);
    cache.map.clear();
    for (const auto& [n, entry] : handlers_) cache.map.emplace(n, entry.get());
    cache.engine_uid = uid_;
    cache.version = handlers_version_.load(std::memory_order_relaxed);
  }
  auto it = cache.map.find(name);
  return it == cache.map.end() ? nullptr : it->second;
}

std::string EngineImpl::KnownHandlersText() const { return Join(HandlerNames()); }

std::string EngineImpl::UnservedQueueText(std::string_view queue) const {
  std::vector<std::string> served;
  for (const auto& [q, slot] : queues_) served.push_back(q);
  return "queue '" + std::string(queue) +
         "' is not served by any worker group (served: " + Join(served) + ")";
}

// ---------------------------------------------------------------------------------------------
// Enqueue.

Status EngineImpl::Check(const EnqueueRequest& req, Checked* out) const {
  if (req.name.empty()) return Status::InvalidArgument("task_name: required");
  const internal::HandlerEntry* entry = FindHandler(req.name);
  if (entry == nullptr) {
    return Status::InvalidArgument("task_name: unknown task '" + req.name +
                                   "'; registered tasks: " + KnownHandlersText());
  }
  internal::QueueSlot* queue = entry->queue;
  if (!req.queue.empty()) {
    auto it = queues_.find(req.queue);
    if (it == queues_.end()) {
      return Status::InvalidArgument("queue_name: " + UnservedQueueText(req.queue));
    }
    queue = it->second;
  }
  int32_t max_retries =
      req.max_retries.value_or(entry->options.max_retries.value_or(options_.default_max_retries));
  if (max_retries < 0 || max_retries > kMaxRetriesLimit) {
    return Status::InvalidArgument("max_retries: must be within 0..1000");
  }
  std::chrono::milliseconds timeout =
      req.timeout.value_or(entry->options.timeout.value_or(options_.default_timeout));
  if (timeout.count() < 0) return Status::InvalidArgument("timeout: must be >= 0");
  if (req.eta_ms && req.delay) {
    return Status::InvalidArgument("eta: give either eta or delay, not both");
  }
  if (req.eta_ms && *req.eta_ms < 0) return Status::InvalidArgument("eta: must not be before 1970");
  if (req.delay && req.delay->count() < 0) return Status::InvalidArgument("delay: must be >= 0");
  if (req.unique_key.size() > kMaxUniqueKeyLength) {
    return Status::InvalidArgument("unique_key: at most 512 bytes");
  }
  out->entry = entry;
  out->queue = queue;
  out->max_retries = max_retries;
  out->timeout = timeout;
  return Status::Ok();
}

Result<EngineImpl::Prepared> EngineImpl::Prepare(EnqueueRequest& req, int64_t now_us) {
  Checked checked;
  if (Status s = Check(req, &checked); !s.ok()) return s;
  const internal::HandlerEntry* entry = checked.entry;
  internal::QueueSlot* queue = checked.queue;
  const int32_t max_retries = checked.max_retries;
  const std::chrono::milliseconds timeout = checked.timeout;
  int64_t run_at_us = 0;
  if (req.eta_ms) {
    run_at_us = *req.eta_ms * 1000;
  } else if (req.delay) {
    run_at_us = now_us + req.delay->count() * 1000;
  }
  if (run_at_us <= now_us) run_at_us = 0;

  auto spec = std::make_shared<TaskSpec>();
  spec->id = storage::NewTaskId(now_us / 1000);
  spec->name = std::move(req.name);
  spec->queue = queue->name;
  spec->priority = req.priority.value_or(entry->options.priority);
  if (!req.data_json.empty()) {
    spec->data_json = std::move(req.data_json);
  } else if (req.data.empty()) {
    spec->data_json = "{}";  // the common case of no arguments skips the serializer
  } else {
    spec->data_json = boost::json::serialize(req.data);
  }
  spec->max_retries = max_retries;
  spec->timeout_ms = timeout.count();
  spec->eta_ms = run_at_us / 1000;
  spec->unique_key = std::move(req.unique_key);
  spec->created_ms = now_us / 1000;

  Prepared p;
  p.task = AllocateTask();
  p.task->handler = entry;
  p.task->queue = queue;
  p.task->rec.spec = std::move(spec);
  p.task->rec.state = TaskState::kPending;
  p.task->rec.run_at_ms = run_at_us / 1000;
  p.run_at_us = run_at_us;
  return p;
}

Status EngineImpl::PrepareAll(std::span<EnqueueRequest> requests, std::span<Prepared> prepared,
                              bool* has_keys, int64_t* steady_us) {
  if (stopping_.load(std::memory_order_acquire)) {
    return Status::Unavailable("the engine is stopping; no new tasks are accepted");
  }
  const Clock::Reading now_reading = clock_->Now();
  const int64_t now = now_reading.wall_us;
  *steady_us = now_reading.steady_us;
  const bool batch = requests.size() > 1;
  *has_keys = false;
  for (size_t i = 0; i < requests.size(); ++i) {
    Result<Prepared> p = Prepare(requests[i], now);
    if (!p.ok()) {
      if (!batch) return p.status();
      return Status(p.status().code(),
                    "request " + std::to_string(i) + ": " + p.status().message());
    }
    *has_keys = *has_keys || !p->task->rec.spec->unique_key.empty();
    prepared[i] = std::move(p).value();
  }
  return Status::Ok();
}

void EngineImpl::ReserveKeys(std::span<Prepared> prepared, std::span<EnqueueResult> results,
                             std::vector<bool>& create, ReservedKeys& reserved) {
  create.assign(prepared.size(), true);
  std::unique_lock<std::mutex> key_lock(unique_mu_);
  std::unordered_map<std::string_view, size_t> in_batch;
  for (size_t i = 0; i < prepared.size(); ++i) {
    const std::string& key = prepared[i].task->rec.spec->unique_key;
    if (key.empty()) continue;
    auto it = unique_keys_.find(key);
    while (it != unique_keys_.end() && it->second.reserved) {
      unique_cv_.wait(key_lock);
      it = unique_keys_.find(key);
    }
    std::optional<TaskState> live_state;
    if (it != unique_keys_.end()) {
      // A task that is already terminal (its worker has not released the key yet) no longer
      // holds it: once Wait or Get show a task finished, its key is free.
      Result<TaskRecord> existing = Get(it->second.id);
      if (existing.ok() && !storage::IsTerminal(existing->state)) {
        live_state = existing->state;
      } else {
        unique_keys_.erase(it);
      }
    }
    if (live_state) {
      results[i] = {it->second.id, *live_state, false};
      create[i] = false;
    } else if (auto b = in_batch.find(key); b != in_batch.end()) {
      results[i] = {prepared[b->second].task->id(), TaskState::kPending, false};
      create[i] = false;
    } else {
      in_batch.emplace(key, i);
      unique_keys_[key] = UniqueKeyEntry{prepared[i].task->id(), true};
      reserved.emplace_back(key, prepared[i].task->id());
    }
  }
}

void EngineImpl::SettleKeys(const ReservedKeys& reserved, bool written) {
  if (reserved.empty()) return;
  std::unique_lock<std::mutex> key_lock(unique_mu_);
  for (const auto& [key, id] : reserved) {
    auto it = unique_keys_.find(key);
    if (it == unique_keys_.end() || it->second.id != id) continue;
    if (written) {
      it->second.reserved = false;
    } else {
      unique_keys_.erase(it);
    }
  }
  key_lock.unlock();
  unique_cv_.notify_all();
}

// Indexed (before the key reservations settle, so an enqueue of the same key that then finds the
// key finds the task behind it), counted, and dispatched.
void EngineImpl::Index(std::span<Prepared> prepared, const std::vector<bool>& create,
                       AdmittedList& admitted) {
  admitted.reserve(prepared.size());
  for (size_t i = 0; i < prepared.size(); ++i) {
    if (!create.empty() && !create[i]) continue;
    Task* t = prepared[i].task.release();
    {
      IndexShard& shard = ShardOf(t->id());
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.tasks.Insert(t->id(), t);
    }
    CountLive(t->queue, TaskState::kCompleted, TaskState::kPending);
    enqueued_.Add();
    admitted.push_back({t, prepared[i].run_at_us});
  }
}

void EngineImpl::DispatchAll(const AdmittedList& admitted, int64_t steady_us) {
  if (admitted.size() == 1) return Dispatch(admitted[0].task, admitted[0].run_at_us, steady_us);
  // A batch wakes workers once, at the end (not once per task).
  storage::CallbackBatch batch;
  for (const Admitted& a : admitted) Dispatch(a.task, a.run_at_us, steady_us);
}

void EngineImpl::Admit(std::span<Prepared> prepared, const std::vector<bool>& create,
                       int64_t steady_us) {
  AdmittedList admitted;
  Index(prepared, create, admitted);
  DispatchAll(admitted, steady_us);
}

std::span<const TaskRecord> EngineImpl::RecordsToWrite(std::span<Prepared> prepared,
                                                       const std::vector<bool>& create,
                                                       std::vector<TaskRecord>& storage) const {
  if (!persist_live_) return {};
  // One task (the hot path): its own record, read in place. The store copies what it writes
  // before WriteAsync or WriteAndThen returns, and nobody else reaches the task before that.
  if (prepared.size() == 1) {
    if (!create.empty() && !create[0]) return {};
    return std::span<const TaskRecord>(&prepared[0].task->rec, 1);
  }
  storage.reserve(prepared.size());
  for (size_t i = 0; i < prepared.size(); ++i) {
    if (create.empty() || create[i]) storage.push_back(prepared[i].task->rec);
  }
  return storage;
}

Result<std::vector<EnqueueResult>> EngineImpl::Enqueue(std::span<EnqueueRequest> requests,
                                                       EnqueueResult* one) {
  // A single request (the hot path) is prepared on the stack: no vector allocation.
  Prepared single;
  std::vector<Prepared> many;
  std::span<Prepared> prepared;
  if (requests.size() > 1) {
    many.resize(requests.size());
    prepared = many;
  } else {
    prepared = std::span<Prepared>(&single, requests.size());
  }
  bool has_keys = false;
  int64_t steady_us = 0;
  if (Status s = PrepareAll(requests, prepared, &has_keys, &steady_us); !s.ok()) return s;

  std::vector<EnqueueResult> results(one != nullptr ? 0 : prepared.size());
  std::span<EnqueueResult> result_span =
      one != nullptr ? std::span<EnqueueResult>(one, 1) : std::span<EnqueueResult>(results);
  std::vector<bool> create;  // empty: every request creates a task (only keys skip creation)
  ReservedKeys reserved;     // keys this call reserved
  // No engine lock is held while the store writes (a group commit may take an fsync, and the
  // store's commit thread takes engine locks in its callbacks). Unique keys are therefore
  // reserved first: a concurrent enqueue of a reserved key waits for the reservation to settle.
  if (has_keys) ReserveKeys(prepared, result_span, create, reserved);
  for (size_t i = 0; i < prepared.size(); ++i) {
    if (create.empty() || create[i]) {
      result_span[i] = {prepared[i].task->id(), TaskState::kPending, true};
    }
  }
  std::vector<TaskRecord> storage;
  const std::span<const TaskRecord> records = RecordsToWrite(prepared, create, storage);
  Status written = Status::Ok();
  // Tasks admitted after a store write become runnable then (their queue wait starts at the
  // dispatch); without one (memory mode) the enqueue's own reading is still fresh.
  auto admit = [this, prepared, &create](int64_t steady) { Admit(prepared, create, steady); };
  if (!records.empty()) {
    // The store's commit thread admits the tasks once their records are written, so it (and
    // not each of many producer threads) is what pushes them to the worker queues: the queues
    // then have a few producers to scan instead of one per calling thread.
    auto admit_written = [&admit] { admit(0); };  // 0: the dispatch reads the clock
    ThenOnSuccess<decltype(admit_written)> then(admit_written);
    written = store_->WriteAndThen(records, &then);
  } else {
    admit(steady_us);
  }
  SettleKeys(reserved, written.ok());
  if (!written.ok()) return written;
  return results;
}

// One EnqueueAsync call between its preparation and the store's answer. Owns itself: OnWritten
// finishes the call and deletes it.
class EngineImpl::AsyncEnqueue final : public storage::WriteCallback {
 public:
  AsyncEnqueue(EngineImpl* engine, EnqueueCallback done)
      : engine_(engine), done_(std::move(done)) {}

  void OnWritten(const Status& status) override {
    AdmittedList admitted;
    if (status.ok()) engine_->Index(PreparedSpan(), create, admitted);
    engine_->SettleKeys(reserved, status.ok());
    EngineImpl* engine = engine_;
    EnqueueCallback done = std::move(done_);
    Result<std::vector<EnqueueResult>> answer =
        status.ok() ? Result<std::vector<EnqueueResult>>(std::move(results))
                    : Result<std::vector<EnqueueResult>>(status);
    delete this;
    done(std::move(answer));
    // The tasks go to the workers after the answer: waking a worker (and, on a small machine,
    // the worker taking the CPU) then no longer delays the client. They are indexed and
    // counted already, so Get, List, Cancel and Stats see them from the answer on. The engine
    // is still alive: Stop flushes the store, which waits for this callback to return.
    engine->DispatchAll(admitted);
  }
  // A client is waiting for the answer: commit at once rather than lazily.
  bool caller_waits() const override { return true; }

  // One request (the usual case) without a heap allocation.
  boost::container::small_vector<EngineImpl::Prepared, 1> prepared;
  std::span<EngineImpl::Prepared> PreparedSpan() { return {prepared.data(), prepared.size()}; }
  std::vector<bool> create;
  ReservedKeys reserved;
  std::vector<EnqueueResult> results;

 private:
  EngineImpl* engine_;
  EnqueueCallback done_;
};

void EngineImpl::EnqueueAsync(std::vector<EnqueueRequest> requests, EnqueueCallback done) {
  auto op = std::make_unique<AsyncEnqueue>(this, std::move(done));
  op->prepared.resize(requests.size());
  bool has_keys = false;
  int64_t steady_us = 0;  // not needed: OnWritten dispatches, reading the clock then
  if (Status s = PrepareAll(requests, op->PreparedSpan(), &has_keys, &steady_us); !s.ok()) {
    op.release()->OnWritten(s);  // nothing was reserved or written: answers, frees the op
    return;
  }
  op->results.resize(op->prepared.size());
  if (has_keys) ReserveKeys(op->PreparedSpan(), op->results, op->create, op->reserved);
  for (size_t i = 0; i < op->prepared.size(); ++i) {
    if (op->create.empty() || op->create[i]) {
      op->results[i] = {op->prepared[i].task->id(), TaskState::kPending, true};
    }
  }
  std::vector<TaskRecord> storage;
  const std::span<const TaskRecord> records =
      RecordsToWrite(op->PreparedSpan(), op->create, storage);
  AsyncEnqueue* raw = op.release();
  if (records.empty()) {
    raw->OnWritten(Status::Ok());
  } else {
    // The store copies the records before WriteAsync returns (its callback, which frees the op
    // and dispatches the tasks, may even run before that, on this thread, after the copy).
    store_->WriteAsync(records, raw);
  }
}

void EngineImpl::Dispatch(Task* t, int64_t run_at_us, int64_t steady_us) {
  if (run_at_us > 0 && run_at_us > NowUs()) {
    timer_->ScheduleTask(t, run_at_us);
    return;
  }
  t->runnable_since_us = steady_us != 0 ? steady_us : Clock::SteadyMicros();
  t->queue->group->Push(t);
}

// ---------------------------------------------------------------------------------------------
// Reads.

Result<TaskRecord> EngineImpl::Get(const TaskId& id) const {
  {
    IndexShard& shard = ShardOf(id);
    std::lock_guard<std::mutex> lock(shard.mu);
    if (Task* t = shard.tasks.Find(id)) {
      std::lock_guard<std::mutex> task_lock(t->mu);
      return t->rec;
    }
  }
  Result<TaskRecord> r = store_->Get(id);
  if (!r.ok() && r.status().code() == Status::Code::kNotFound) {
    return Status::NotFound("task " + id.ToString() + " not found");
  }
  return r;
}

void EngineImpl::CountLive(internal::QueueSlot* queue, TaskState from, TaskState to) {
  auto slot = [](TaskState s) {
    switch (s) {
      case TaskState::kPending:
        return 0;
      case TaskState::kRunning:
        return 1;
      case TaskState::kRetrying:
        return 2;
      default:
        return -1;
    }
  };
  // Unsigned wrap-around makes -1 an add of 2^64-1; the sum over shards comes out right.
  if (int f = slot(from); f >= 0) queue->live[f].Add(~uint64_t{0});
  if (int t = slot(to); t >= 0) queue->live[t].Add(1);
}

Result<ListPage> EngineImpl::List(const ListQuery& query) const {
  // Live tasks come from the index (the truth for them, with their latest progress), terminal
  // ones from the store's indexes. The index is read first:
  // a task that turns terminal in between then shows up in both, and the store's (newer) record
  // wins below, rather than in neither.
  std::vector<TaskRecord> live;
  if (!query.state || !storage::IsTerminal(*query.state)) {
    for (const IndexShard& shard : index_) {
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.tasks.ForEach([&](const TaskId& id, Task* t) {
        if (query.before && !(id < *query.before)) return;
        std::lock_guard<std::mutex> task_lock(t->mu);
        const TaskRecord& r = t->rec;
        if (storage::IsTerminal(r.state)) return;
        if (query.state && r.state != *query.state) return;
        if (!query.queue.empty() && r.spec->queue != query.queue) return;
        if (!query.name.empty() && r.spec->name != query.name) return;
        live.push_back(r);
      });
    }
  }
  ListPage page;
  if (!query.state || storage::IsTerminal(*query.state)) {
    ListQuery terminal = query;
    terminal.terminal_only = true;
    Result<ListPage> stored = store_->List(terminal);
    if (!stored.ok()) return stored;
    page = std::move(stored).value();
  } else if (query.limit < 1 || query.limit > 1000) {
    return Status::InvalidArgument("limit: must be within 1..1000");
  }
  std::vector<TaskRecord> merged = std::move(page.records);
  std::unordered_set<TaskId, storage::TaskIdHash> stored_ids;
  for (const TaskRecord& r : merged) stored_ids.insert(r.id());
  for (TaskRecord& r : live) {
    if (stored_ids.count(r.id()) == 0) merged.push_back(std::move(r));
  }
  std::sort(merged.begin(), merged.end(),
            [](const TaskRecord& a, const TaskRecord& b) { return b.id() < a.id(); });
  bool more = page.next_cursor.has_value() || merged.size() > query.limit;
  if (merged.size() > query.limit) merged.resize(query.limit);
  ListPage out;
  out.records = std::move(merged);
  if (more && !out.records.empty()) out.next_cursor = out.records.back().id();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cancel.

Status EngineImpl::Cancel(const TaskId& id) {
  // The loop covers the short windows in which an enqueue has written its record but not yet
  // indexed the task, or another Cancel of the same task is writing (which may take an fsync).
  // Bounded in time: it yields at first, then sleeps briefly, and gives up after 10 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int turn = 0; std::chrono::steady_clock::now() < deadline; ++turn) {
    if (turn > 0) {
      if (turn < 100) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
    TaskRecord cancelled;  // the record to write, made under the locks
    bool found = false;
    {
      IndexShard& shard = ShardOf(id);
      std::lock_guard<std::mutex> lock(shard.mu);
      if (Task* t = shard.tasks.Find(id)) {
        std::lock_guard<std::mutex> task_lock(t->mu);
        switch (t->rec.state) {
          case TaskState::kRunning:
            // Release pairs with the token's acquire load in the handler.
            t->cancel_flag.store(internal::kCancelByUser, std::memory_order_release);
            return Status::Ok();
          case TaskState::kPending:
          case TaskState::kRetrying:
            if (t->cancel_in_flight) break;  // another Cancel is writing: wait for it
            AssertTransition(t->rec.state, TaskState::kCancelled);
            // The task keeps its state while the record is written (no lock is held across a
            // store write); a worker that takes it meanwhile sets it aside instead of running it.
            t->cancel_in_flight = true;
            cancelled = t->rec;
            cancelled.state = TaskState::kCancelled;
            cancelled.completed_ms = NowUs() / 1000;
            cancelled.error = "cancelled";
            cancelled.run_at_ms = 0;
            found = true;
            break;
          default:
            return Status::FailedPrecondition("task " + id.ToString() + " is already " +
                                              std::string(storage::ToString(t->rec.state)));
        }
      }
    }
    if (found) return FinishCancel(id, cancelled);
    {
      IndexShard& shard = ShardOf(id);
      std::lock_guard<std::mutex> lock(shard.mu);
      if (shard.tasks.Find(id) != nullptr) continue;  // indexed (or being cancelled): again
    }
    Result<TaskRecord> r = store_->Get(id);
    if (!r.ok()) {
      if (r.status().code() == Status::Code::kNotFound) {
        return Status::NotFound("task " + id.ToString() + " not found");
      }
      return r.status();
    }
    if (storage::IsTerminal(r->state)) {
      return Status::FailedPrecondition("task " + id.ToString() + " is already " +
                                        std::string(storage::ToString(r->state)));
    }
  }
  return Status::Unavailable("task " + id.ToString() + " is changing state; try again");
}

Status EngineImpl::FinishCancel(const TaskId& id, const TaskRecord& cancelled) {
  const Status written = store_->Write(std::span<const TaskRecord>(&cancelled, 1));
  std::shared_ptr<const TaskSpec> spec;
  bool watched = false;
  {
    // Found again by id: a Stop meanwhile may have dropped it.
    IndexShard& shard = ShardOf(id);
    std::lock_guard<std::mutex> lock(shard.mu);
    Task* t = shard.tasks.Find(id);
    if (t == nullptr) return written;
    std::lock_guard<std::mutex> task_lock(t->mu);
    t->cancel_in_flight = false;
    if (!written.ok()) return written;  // nothing changed: the task runs as if never cancelled
    // PENDING or RETRYING still: only a Cancel (us) takes such a task out of those states.
    const TaskState from = t->rec.state;
    t->rec.state = TaskState::kCancelled;  // in place: t->rec.spec is never reassigned
    t->rec.completed_ms = cancelled.completed_ms;
    t->rec.error = cancelled.error;
    t->rec.run_at_ms = 0;
    CountLive(t->queue, from, TaskState::kCancelled);
    cancelled_.Add();
    t->state.store(TaskState::kCancelled, std::memory_order_release);
    spec = t->rec.spec;
    watched = t->watched;
    // Out of the index now; the holder frees the task once it sees CANCELLED.
    shard.tasks.Erase(id);
  }
  ReleaseUniqueKey(spec->unique_key, id);
  if (watched) NotifyWaiters();
  NotifyTaskEnd(cancelled);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Running.

void EngineImpl::FreeAfterOthers(Task* t) {
  // Whoever made the task terminal did so under mu; once we hold it they are done with it.
  { std::lock_guard<std::mutex> lock(t->mu); }
  delete t;
}

void EngineImpl::RunTask(Task* t, WorkerStats& stats) {
  // One reading gives the record's start time and the start of the queue-wait and run-time
  // measurements (a clock read per task less on the hot path).
  const Clock::Reading started = clock_->Now();
  const int64_t start = started.wall_us;
  int attempt;
  const internal::HandlerEntry* handler = t->handler;
  if (handler == nullptr) {
    // Recovered before its handler was registered: look again, else wait for RegisterHandler,
    // which dispatches it (checked under the same lock, so the registration cannot slip by).
    {
      std::unique_lock<std::shared_mutex> lock(handlers_mu_);
      if (auto h = handlers_.find(t->rec.spec->name); h != handlers_.end()) {
        handler = h->second.get();
      } else {
        awaiting_handler_[t->rec.spec->name].push_back(t);
        return;
      }
    }
    t->handler = handler;
  }
  {
    // The check and the switch to RUNNING happen under one lock: a Cancel in between would
    // otherwise be overwritten and the cancelled task run.
    std::unique_lock<std::mutex> lock(t->mu);
    if (t->rec.state != TaskState::kPending) {
      lock.unlock();
      // Cancelled while it waited: the canceller made it terminal and left it to us to free.
      FreeAfterOthers(t);
      return;
    }
    if (t->cancel_in_flight) {
      // A Cancel is writing its record: look again shortly instead of running it.
      lock.unlock();
      timer_->ScheduleTask(t, start + kCancelSettleUs);
      return;
    }
    AssertTransition(t->rec.state, TaskState::kRunning);
    TaskRecord& rec = t->rec;  // changed in place: no record copy on the hot path
    rec.state = TaskState::kRunning;
    rec.started_ms = start / 1000;
    rec.run_at_ms = 0;
    // The start is logged without waiting (the worker never waits for an fsync): if the process
    // dies mid-attempt, recovery finds RUNNING and counts the attempt. Should the process die
    // before even this write is on disk, the task is still PENDING there and simply runs again.
    if (persist_live_) store_->WriteAsync(std::span<const TaskRecord>(&rec, 1), nullptr);
    t->state.store(TaskState::kRunning, std::memory_order_release);
    CountLive(t->queue, TaskState::kPending, TaskState::kRunning);
    attempt = t->rec.retry_count + 1;
  }
  {
    const int64_t run_start = started.steady_us;
    stats.queue_wait.Record(
        static_cast<uint64_t>(std::max<int64_t>(0, run_start - t->runnable_since_us)));
    const int64_t timeout_ms = t->rec.spec->timeout_ms;  // spec is immutable: no lock needed
    internal::DelayTimer::Handle timeout_handle;
    if (timeout_ms > 0) {
      timeout_handle = timer_->ScheduleTimeout(t->id(), attempt, start + timeout_ms * 1000);
    }
    stats.busy.store(true, std::memory_order_relaxed);
    HandlerResult result = [&] {
      TaskContext ctx(this, t, attempt);  // lives for the attempt only
      return Invoke(handler->fn, ctx);
    }();
    const Clock::Reading ended = clock_->Now();
    stats.run_time.Record(static_cast<uint64_t>(std::max<int64_t>(0, ended.steady_us - run_start)));
    stats.busy.store(false, std::memory_order_relaxed);
    if (timeout_ms > 0) (void)timer_->CancelTimeout(timeout_handle);

    const int64_t end = ended.wall_us;
    TaskState outcome;
    {
      std::lock_guard<std::mutex> lock(t->mu);
      // The outcome is built beside the record: the task shows RUNNING until the outcome is as
      // durable as the store promises (OnOutcomeWritten), so nobody sees a result that a crash
      // could take back.
      TaskRecord& next = t->outcome;
      next = t->rec;
      const TaskState from = next.state;
      const uint8_t flag = t->cancel_flag.load(std::memory_order_acquire);
      t->retry_at_us = 0;
      if (result.ok()) {
        next.state = TaskState::kCompleted;
        const boost::json::value& v = result.value();
        next.result_json = v.is_null() ? "null" : boost::json::serialize(v);
        next.progress = 1;
        next.error.clear();
      } else {
        const Status& err = result.status();
        if (flag == internal::kCancelByUser) {
          next.state = TaskState::kCancelled;
          next.error = err.message().empty() ? "cancelled while running"
                                             : "cancelled while running: " + err.message();
        } else {
          std::string message =
              err.message().empty() ? std::string(storage::CodeName(err.code())) : err.message();
          if (flag == internal::kCancelByTimeout) {
            message = "timed out after " + std::to_string(timeout_ms) + " ms (" + message + ")";
          }
          // Bad input stays bad: an InvalidArgument from the handler is not retried.
          const bool permanent =
              err.code() == Status::Code::kInvalidArgument && flag != internal::kCancelByTimeout;
          if (!permanent && next.retry_count < next.spec->max_retries) {
            next.state = TaskState::kRetrying;
            next.retry_count += 1;
            int64_t delay_ms = retry_policy_.DelayMillis(attempt, NextJitterDraw());
            t->retry_at_us = end + delay_ms * 1000;
            next.run_at_ms = t->retry_at_us / 1000;
          } else {
            next.state = TaskState::kFailed;
          }
          next.error = std::move(message);
        }
      }
      AssertTransition(from, next.state);
      if (storage::IsTerminal(next.state)) next.completed_ms = end / 1000;
      outcome = next.state;
    }
    // Per-worker rates count finished attempts; the task counters move when the outcome lands.
    const int64_t end_s = end / 1'000'000;
    if (outcome == TaskState::kCompleted) stats.completed.Add(end_s);
    if (outcome == TaskState::kFailed) stats.failed.Add(end_s);
    WriteOutcome(t);  // the task now belongs to the write; OnOutcomeWritten takes it on
  }
}

void EngineImpl::WriteOutcome(Task* t) {
  t->outcome_written.engine = this;
  t->outcome_written.task = t;
  // Memory stores call back at once, on this thread; the RocksDB store from its commit thread
  // once the group commit holding this record is done.
  store_->WriteAsync(std::span<const TaskRecord>(&t->outcome, 1), &t->outcome_written);
}

void EngineImpl::OnOutcomeWritten(Task* t, const Status& status) {
  if (!status.ok()) {
    // Nothing is lost: the task stays RUNNING (in memory and in the store) and the same outcome
    // is written again later; if the process stops first, the task runs again after restart.
    std::fprintf(stderr, "bmos: cannot record the outcome of task %s (will retry): %s\n",
                 t->id().ToString().c_str(), status.ToString().c_str());
    t->rewrite_outcome = true;
    timer_->ScheduleTask(t, NowUs() + kRetryLaterUs);
    return;
  }
  TaskState outcome;
  {
    std::lock_guard<std::mutex> lock(t->mu);
    outcome = t->outcome.state;
    // Keeps the old record's string buffers for the next outcome (no allocation per task).
    swap(t->rec, t->outcome);
    CountLive(t->queue, TaskState::kRunning, outcome);
    // Counters move before the new state is visible, so whoever sees the task finished (Wait,
    // Get) also sees it counted.
    switch (outcome) {
      case TaskState::kCompleted:
        completed_.Add();
        break;
      case TaskState::kFailed:
        failed_.Add();
        break;
      case TaskState::kCancelled:
        cancelled_.Add();
        break;
      default:  // kRetrying
        retried_.Add();
        t->cancel_flag.store(internal::kNotCancelled, std::memory_order_relaxed);
        break;
    }
    t->state.store(outcome, std::memory_order_release);
  }
  if (outcome == TaskState::kRetrying) {
    timer_->ScheduleTask(t, t->retry_at_us);
    return;
  }
  Retire(t);
}

namespace internal {
EngineStats::Percentiles ToPercentiles(const Histogram::Snapshot& h) {
  EngineStats::Percentiles p;
  p.count = h.count;
  p.p50_ms = static_cast<double>(h.Quantile(0.50)) / 1000.0;
  p.p90_ms = static_cast<double>(h.Quantile(0.90)) / 1000.0;
  p.p99_ms = static_cast<double>(h.Quantile(0.99)) / 1000.0;
  p.p999_ms = static_cast<double>(h.Quantile(0.999)) / 1000.0;
  p.max_ms = static_cast<double>(h.max) / 1000.0;
  // Fixed Prometheus buckets from the log-linear ones: each log-linear bucket counts at its
  // lower bound, in the first fixed bucket whose bound holds it, and in all later ones.
  constexpr auto& bounds = EngineStats::kBucketBoundsMs;
  std::array<uint64_t, bounds.size()> own{};
  double sum_us = 0;
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    const uint64_t n = h.buckets[static_cast<size_t>(i)];
    if (n == 0) continue;
    const double lower_us = static_cast<double>(Histogram::LowerBound(i));
    sum_us += lower_us * static_cast<double>(n);
    for (size_t b = 0; b < bounds.size(); ++b) {
      if (lower_us <= bounds[b] * 1000.0) {
        own[b] += n;
        break;
      }
    }
  }
  uint64_t running = 0;
  for (size_t b = 0; b < bounds.size(); ++b) {
    running += own[b];
    p.buckets[b] = running;
  }
  p.sum_ms = sum_us / 1000.0;
  return p;
}

void OutcomeWritten::OnWritten(const Status& status) { engine->OnOutcomeWritten(task, status); }
}  // namespace internal

void EngineImpl::ReleaseUniqueKey(const std::string& key, const TaskId& id) {
  if (key.empty()) return;
  std::lock_guard<std::mutex> lock(unique_mu_);
  auto k = unique_keys_.find(key);
  // Only the holder's own entry: a later task may have taken the key already (see Enqueue).
  if (k != unique_keys_.end() && k->second.id == id && !k->second.reserved) unique_keys_.erase(k);
}

Status EngineImpl::WriteInChunks(const std::vector<TaskRecord>& records) {
  constexpr size_t kChunk = 1000;  // one store batch each
  for (size_t i = 0; i < records.size(); i += kChunk) {
    const size_t n = std::min(kChunk, records.size() - i);
    if (Status s = store_->Write(std::span<const TaskRecord>(records.data() + i, n)); !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

void EngineImpl::SetTaskEndObserver(TaskEndObserver observer) {
  std::lock_guard<std::mutex> lock(observers_mu_);
  const TaskEndObserver* current = nullptr;
  if (observer) {
    observers_.push_back(std::make_unique<TaskEndObserver>(std::move(observer)));
    current = observers_.back().get();
  }
  end_observer_.store(current, std::memory_order_release);
}

void EngineImpl::Retire(Task* t) {
  NotifyTaskEnd(t->rec);  // terminal and written; nobody changes it any more
  bool watched;
  {
    IndexShard& shard = ShardOf(t->id());
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.tasks.Erase(t->id());
    watched = t->watched;
  }
  ReleaseUniqueKey(t->rec.spec->unique_key, t->id());
  if (watched) NotifyWaiters();
  // Out of the index: nobody else can reach the task any more.
  RecycleTask(t);
}

std::unique_ptr<Task> EngineImpl::AllocateTask() {
  return std::unique_ptr<Task>(storage::ObjectPool<Task>::TakeOrNew());
}

namespace {

// What `r = TaskRecord()` would leave, without building a record.
void ResetForReuse(TaskRecord& r) {
  r.spec.reset();
  r.state = TaskState::kPending;
  r.retry_count = 0;
  r.run_at_ms = 0;
  r.started_ms = 0;
  r.completed_ms = 0;
  r.progress = 0;
  // Small buffers stay for the next task; a big result or error goes.
  constexpr size_t kKeepCapacity = 256;
  storage::internal::ClearKeepingBuffer(r.progress_message, kKeepCapacity);
  storage::internal::ClearKeepingBuffer(r.result_json, kKeepCapacity);
  storage::internal::ClearKeepingBuffer(r.error, kKeepCapacity);
}

}  // namespace

void EngineImpl::RecycleTask(Task* t) {
  // Back to a fresh task's state; the queue hand-off publishes these writes to the next user.
  // Field by field, keeping small string buffers for the next task (a fresh record and a move
  // into this one cost about as much as the rest of the recycling).
  ResetForReuse(t->rec);
  ResetForReuse(t->outcome);
  t->state.store(TaskState::kPending, std::memory_order_relaxed);
  t->cancel_flag.store(internal::kNotCancelled, std::memory_order_relaxed);
  t->watched = false;
  t->handler = nullptr;
  t->queue = nullptr;
  t->runnable_since_us = 0;
  t->retry_at_us = 0;
  t->rewrite_outcome = false;
  t->cancel_in_flight = false;
  storage::ObjectPool<Task>::Give(t);
}

void EngineImpl::OnDue(Task* t) {
  if (t->rewrite_outcome) {
    // An outcome the store refused earlier: try again.
    t->rewrite_outcome = false;
    WriteOutcome(t);
    return;
  }
  bool cancelled = false;
  {
    std::lock_guard<std::mutex> lock(t->mu);
    switch (t->rec.state) {
      case TaskState::kCancelled:
        cancelled = true;  // freed below, outside the lock
        break;
      case TaskState::kRetrying: {
        AssertTransition(TaskState::kRetrying, TaskState::kPending);
        // In memory only: the store keeps RETRYING with its due time, which recovery honours
        // the same way, so this transition costs no write (and no wait on the timer thread).
        t->rec.state = TaskState::kPending;  // in place: see Cancel
        t->state.store(TaskState::kPending, std::memory_order_release);
        CountLive(t->queue, TaskState::kRetrying, TaskState::kPending);
        [[fallthrough]];
      }
      default:
        t->runnable_since_us = Clock::SteadyMicros();
        break;
    }
  }
  if (cancelled) {
    FreeAfterOthers(t);
    return;
  }
  t->queue->group->Push(t);  // outside the lock: the worker that takes it locks mu at once
}

void EngineImpl::OnTimeout(const TaskId& id, int attempt) {
  IndexShard& shard = ShardOf(id);
  std::lock_guard<std::mutex> lock(shard.mu);
  Task* t = shard.tasks.Find(id);
  if (t == nullptr) return;
  std::lock_guard<std::mutex> task_lock(t->mu);
  if (t->rec.state != TaskState::kRunning || t->rec.retry_count + 1 != attempt) return;
  uint8_t expected = internal::kNotCancelled;
  // A user's cancel, if first, wins. Release pairs with the token's acquire load.
  t->cancel_flag.compare_exchange_strong(expected, internal::kCancelByTimeout,
                                         std::memory_order_release, std::memory_order_relaxed);
}

void EngineImpl::ReportProgress(Task* t, double fraction, std::string_view message) {
  if (!(fraction >= 0)) fraction = 0;  // also catches NaN
  if (fraction > 1) fraction = 1;
  std::lock_guard<std::mutex> lock(t->mu);
  t->rec.progress = fraction;
  t->rec.progress_message.assign(message);
}

double EngineImpl::NextJitterDraw() {
  std::lock_guard<std::mutex> lock(jitter_mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(jitter_rng_);
}

// ---------------------------------------------------------------------------------------------
// Wait, stats, retention, stop.

void EngineImpl::NotifyWaiters() const {
  // The state change happened before we take wait_mu_; a waiter checks under wait_mu_.
  { std::lock_guard<std::mutex> lock(wait_mu_); }
  wait_cv_.notify_all();
}

Result<TaskRecord> EngineImpl::Wait(const TaskId& id, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    IndexShard& shard = ShardOf(id);
    std::lock_guard<std::mutex> lock(shard.mu);
    if (Task* t = shard.tasks.Find(id)) t->watched = true;
  }
  Result<TaskRecord> out = Status::Internal("unreachable");
  std::unique_lock<std::mutex> lock(wait_mu_);
  for (;;) {
    Result<TaskRecord> r = Get(id);
    if (!r.ok() || storage::IsTerminal(r->state)) {
      out = std::move(r);
      break;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      out = Status::DeadlineExceeded("task " + id.ToString() + " is still " +
                                     std::string(storage::ToString(r->state)));
      break;
    }
    // The 100 ms cap is a safety net only; terminal transitions of watched tasks notify.
    wait_cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(100)));
  }
  return out;
}

EngineStats EngineImpl::Stats() const {
  EngineStats s;
  const int64_t now_s = NowUs() / 1'000'000;
  const int window = static_cast<int>(std::clamp<int64_t>(now_s - started_at_s_ + 1, 1, 60));
  internal::Histogram::Snapshot queue_wait, run_time;
  uint64_t completed_window = 0, failed_window = 0;
  for (const auto& g : groups_) {
    EngineStats::Group group;
    group.name = g->name();
    for (const internal::QueueSlot* q : g->queues()) group.queues.push_back(q->name);
    group.workers = g->workers();
    group.busy = std::min(g->busy(), group.workers);
    group.idle = group.workers - group.busy;
    s.groups.push_back(std::move(group));
    g->CollectStats(queue_wait, run_time, now_s, window, completed_window, failed_window);
  }
  if (Result<storage::StoreCounts> counts = store_->TerminalCounts(); counts.ok()) {
    s.by_queue = std::move(counts->by_queue);
    // Live tasks: the engine's own counts (the store's would need a scan).
    static constexpr TaskState kLive[] = {TaskState::kPending, TaskState::kRunning,
                                          TaskState::kRetrying};
    for (const auto& slot : queue_slots_) {
      auto& per_state = s.by_queue[slot->name];
      for (int i = 0; i < 3; ++i) per_state[static_cast<int>(kLive[i])] = slot->live[i].Sum();
    }
    for (const auto& [queue, per_state] : s.by_queue) {
      for (int i = 0; i < storage::kTaskStateCount; ++i) s.by_state[i] += per_state[i];
    }
  }
  s.enqueued = enqueued_.Sum();
  s.completed = completed_.Sum();
  s.failed = failed_.Sum();
  s.retried = retried_.Sum();
  s.cancelled = cancelled_.Sum();
  s.completed_per_second = static_cast<double>(completed_window) / window;
  s.failed_per_second = static_cast<double>(failed_window) / window;
  s.success_rate = s.completed + s.failed == 0 ? 1.0
                                               : static_cast<double>(s.completed) /
                                                     static_cast<double>(s.completed + s.failed);
  s.queue_wait = internal::ToPercentiles(queue_wait);
  s.run_time = internal::ToPercentiles(run_time);
  // Live tasks are the sum of the per-queue live-state counts (sharded: no shared counter on
  // the hot path).
  uint64_t live = 0;
  for (const auto& slot : queue_slots_) {
    for (const auto& c : slot->live) live += c.Sum();
  }
  s.live_tasks = static_cast<uint64_t>(std::max<int64_t>(0, static_cast<int64_t>(live)));
  return s;
}

Result<size_t> EngineImpl::RunRetentionOnce() {
  const RetentionOptions& r = options_.retention;
  if (r.max_age.count() == 0 && r.max_count == 0) return size_t{0};
  storage::PurgeOptions purge;
  purge.completed_before_ms = r.max_age.count() > 0 ? NowUs() / 1000 - r.max_age.count() : 0;
  purge.keep_at_most = r.max_count;
  purge.max_batch = r.batch;
  size_t total = 0;
  // Small batches with a yield between them keep store locks short for the hot path.
  for (int round = 0; round < 10'000; ++round) {
    Result<size_t> n = store_->PurgeTerminal(purge);
    if (!n.ok()) return n.status();
    total += *n;
    if (*n < purge.max_batch || stopping_.load(std::memory_order_acquire)) break;
    std::this_thread::yield();
  }
  return total;
}

void EngineImpl::JanitorLoop() {
  while (!stopping_.load(std::memory_order_acquire)) {
    Result<size_t> n = RunRetentionOnce();
    if (!n.ok()) {
      std::fprintf(stderr, "bmos: retention failed: %s\n", n.status().ToString().c_str());
    }
    janitor_sleeper_->SleepUntil(NowUs() + options_.retention.interval.count() * 1000);
  }
}

Status EngineImpl::ResizeGroup(std::string_view name, int workers) {
  if (stopping_.load(std::memory_order_acquire)) {
    return Status::Unavailable("the engine is stopping");
  }
  for (auto& g : groups_) {
    if (g->name() == name) return g->Resize(workers);
  }
  return Status::NotFound("no worker group named '" + std::string(name) + "'");
}

Status EngineImpl::Stop(std::chrono::milliseconds drain) {
  for (const auto& g : groups_) {
    // Stop joins the workers; a worker cannot join itself.
    if (g->OnWorkerThread()) {
      return Status::FailedPrecondition("Stop cannot be called from a handler of this engine");
    }
  }
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  if (stopped_) return Status::Ok();
  stopped_ = true;
  // 1. No new work starts, then no new task is accepted (in this order: whoever sees enqueues
  // refused knows no worker starts anything new); running handlers get until the drain deadline.
  for (auto& g : groups_) g->StopAccepting();
  stopping_.store(true, std::memory_order_release);
  if (janitor_sleeper_ != nullptr) janitor_sleeper_->Wake();

  const auto deadline = std::chrono::steady_clock::now() + drain;
  bool idle = true;
  for (auto& g : groups_) idle = g->WaitIdle(deadline) && idle;
  // 2. Past the deadline: ask the handlers still running to stop.
  if (!idle) {
    for (IndexShard& shard : index_) {
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.tasks.ForEach([](const TaskId&, Task* t) {
        std::lock_guard<std::mutex> task_lock(t->mu);
        if (t->rec.state == TaskState::kRunning) {
          uint8_t expected = internal::kNotCancelled;
          t->cancel_flag.compare_exchange_strong(expected, internal::kCancelByUser,
                                                 std::memory_order_release,
                                                 std::memory_order_relaxed);
        }
      });
    }
  }
  for (auto& g : groups_) g->Join();
  // Outcomes of the last attempts land (their callbacks may still hand tasks to the timer);
  // once the timer is stopped, a second flush catches what it wrote in between.
  if (store_ != nullptr) (void)store_->Flush();
  if (timer_ != nullptr) timer_->Stop();
  if (store_ != nullptr) (void)store_->Flush();
  if (janitor_.joinable()) janitor_.join();

  // 3. What never started stays PENDING/RETRYING in the store; free the in-memory handles.
  std::vector<Task*> held;
  if (timer_ != nullptr) held = timer_->TakeAllTasks();
  for (auto& g : groups_) {
    std::vector<Task*> queued = g->TakeAllQueued();
    held.insert(held.end(), queued.begin(), queued.end());
  }
  {
    std::unique_lock<std::shared_mutex> lock(handlers_mu_);
    for (auto& [name, tasks] : awaiting_handler_)
      held.insert(held.end(), tasks.begin(), tasks.end());
    awaiting_handler_.clear();
  }
  if (!persist_live_) {
    // The memory store holds only terminal records; hand it the waiting ones too, so Get and
    // List still show them PENDING/RETRYING after the stop instead of "not found".
    std::vector<TaskRecord> waiting;
    for (Task* t : held) {
      if (!storage::IsTerminal(t->rec.state)) waiting.push_back(t->rec);
    }
    if (Status s = WriteInChunks(waiting); !s.ok()) {
      std::fprintf(stderr, "bmos: cannot record the tasks still waiting at stop: %s\n",
                   s.ToString().c_str());
    }
  }
  for (IndexShard& shard : index_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.tasks.Clear();
  }
  for (Task* t : held) delete t;
  NotifyWaiters();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Facade.

Result<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  if (Status s = EngineImpl::Validate(options); !s.ok()) return s;
  auto impl = std::make_unique<EngineImpl>(std::move(options));
  if (Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Status Engine::RegisterHandler(std::string name, Handler handler, HandlerOptions options) {
  return impl_->RegisterHandler(std::move(name), std::move(handler), std::move(options));
}
std::vector<std::string> Engine::HandlerNames() const { return impl_->HandlerNames(); }

Result<EnqueueResult> Engine::Enqueue(EnqueueRequest request) {
  EnqueueResult result;
  Result<std::vector<EnqueueResult>> r =
      impl_->Enqueue(std::span<EnqueueRequest>(&request, 1), &result);
  if (!r.ok()) return r.status();
  return result;
}

Result<std::vector<EnqueueResult>> Engine::EnqueueBatch(std::vector<EnqueueRequest> requests) {
  return impl_->Enqueue(requests);
}

void Engine::EnqueueAsync(std::vector<EnqueueRequest> requests, EnqueueCallback done) {
  impl_->EnqueueAsync(std::move(requests), std::move(done));
}

Result<TaskRecord> Engine::Get(const TaskId& id) const { return impl_->Get(id); }
Result<TaskRecord> Engine::Get(std::string_view id) const {
  std::optional<TaskId> parsed = TaskId::Parse(id);
  if (!parsed) return Status::NotFound("task " + std::string(id) + " not found");
  return impl_->Get(*parsed);
}
Status Engine::ValidateEnqueue(const EnqueueRequest& request) const {
  return impl_->ValidateEnqueue(request);
}
void Engine::SetTaskEndObserver(TaskEndObserver observer) {
  impl_->SetTaskEndObserver(std::move(observer));
}
Status Engine::Cancel(const TaskId& id) { return impl_->Cancel(id); }
Result<ListPage> Engine::List(const ListQuery& query) const { return impl_->List(query); }
EngineStats Engine::Stats() const { return impl_->Stats(); }
Result<TaskRecord> Engine::Wait(const TaskId& id, std::chrono::milliseconds timeout) const {
  return impl_->Wait(id, timeout);
}
Status Engine::ResizeGroup(std::string_view group, int workers) {
  return impl_->ResizeGroup(group, workers);
}
Status Engine::Stop(std::chrono::milliseconds drain) { return impl_->Stop(drain); }
storage::TaskStore& Engine::store() const { return impl_->store(); }
Clock& Engine::clock() const { return impl_->clock(); }
Result<size_t> Engine::TEST_RunRetentionOnce() { return impl_->RunRetentionOnce(); }

}  // namespace bmos::engine
