#include "engine/scheduler.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <queue>
#include <thread>
#include <type_traits>
#include <utility>

#include "engine/internal/histogram.h"
#include "engine/internal/percentiles.h"
#include "engine/internal/sleeper.h"

namespace bmos::engine {
namespace {

namespace json = boost::json;
using internal::kNever;

constexpr int64_t kMicrosPerSecond = 1'000'000;
// Most runs handed to the engine in one EnqueueAsync (one store batch).
constexpr size_t kMaxEnqueueBatch = 4096;
// Without coalesce, the most due runs of one job considered at once; older ones count as missed.
constexpr size_t kMaxBacklogRuns = 1000;
// Most fire times walked to count a cron job's backlog; beyond it the count is a lower bound.
constexpr uint64_t kMaxWalkedFireTimes = 100'000;
// Warning lines per timer pass; the rest are summed up in one line.
constexpr int kMaxWarningsPerPass = 20;
constexpr size_t kMaxJobIdLength = 128;
constexpr size_t kMaxJobNameLength = 200;
constexpr int32_t kMaxInstancesLimit = 1000;
constexpr int kJobFormat = 1;

int64_t ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kMicrosPerSecond + ts.tv_nsec / 1000;
}

bool ValidJobId(std::string_view id) {
  if (id.empty() || id.size() > kMaxJobIdLength) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '~' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status JobNotFound(std::string_view id) {
  return Status::NotFound("job '" + std::string(id) + "' not found");
}

std::string FormatUtc(int64_t micros) {
  Result<std::string> s = FormatIsoWithOffset(micros, "UTC");
  return s.ok() ? *s : std::to_string(micros);
}

// Tells a caller blocked in Wait that a store write is done.
class WriteWaiter final : public storage::WriteCallback {
 public:
  void OnWritten(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }
  bool caller_waits() const override { return true; }
  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Status status_;
};

}  // namespace

std::string_view ToString(JobState state) {
  switch (state) {
    case JobState::kActive:
      return "active";
    case JobState::kPaused:
      return "paused";
    case JobState::kFinished:
      return "finished";
  }
  return "active";
}

// ---------------------------------------------------------------------------------------------
// A job in memory.

namespace {

struct Job {
  JobSpec spec;
  std::unique_ptr<Trigger> trigger;
  std::string data_json;  // spec.data serialised once, for every run's task
  std::string spec_json;  // EncodeSpec: the persisted record's spec part
  // The store holds this spec (the whole record under the id): later writes only rewrite the
  // run-state record. False for a new or replaced spec.
  bool spec_written = false;
  int64_t created_us = 0;
  std::optional<int64_t> next_us;
  JobStats stats;
  TaskId last_task{};
  std::vector<TaskId> running;  // tasks enqueued and not seen ending
  uint32_t pending = 0;         // runs handed to the engine and not answered yet
  uint64_t gen = 0;             // bumped when next_us changes: older heap entries are stale
  bool removed = false;
  bool dirty = false;  // changed since last written (statistics of ended runs)

  JobState state() const {
    if (spec.paused) return JobState::kPaused;
    return next_us ? JobState::kActive : JobState::kFinished;
  }
  uint64_t instances() const { return running.size() + pending; }
};

using JobPtr = std::shared_ptr<Job>;

struct HeapEntry {
  int64_t at;
  uint64_t gen;
  JobPtr job;
  bool operator>(const HeapEntry& o) const { return at > o.at; }
};

// The persisted form of a job is a JSON object (format kJobFormat). Its spec part changes only
// with the spec and is serialised once (Job::spec_json); the run state is appended by hand on
// every write (a fire writes its job), which costs a fraction of building a JSON tree.

// The spec part: the opening of the record up to and including the comma before the run state.
std::string EncodeSpec(const Job& job) {
  const JobSpec& s = job.spec;
  json::object o;
  o["v"] = kJobFormat;
  o["id"] = s.id;
  o["name"] = s.name;
  o["function"] = s.function;
  o["type"] = ToString(s.type);
  o["trigger"] = s.trigger_config;
  o["data"] = s.data;
  o["queue"] = s.queue;
  if (s.priority) {
    o["priority"] = storage::ToString(*s.priority);
  } else {
    o["priority"] = nullptr;
  }
  if (s.max_retries) {
    o["max_retries"] = *s.max_retries;
  } else {
    o["max_retries"] = nullptr;
  }
  if (s.misfire_grace_seconds) {
    o["misfire_grace_s"] = *s.misfire_grace_seconds;
  } else {
    o["misfire_grace_s"] = nullptr;
  }
  o["coalesce"] = s.coalesce;
  o["max_instances"] = s.max_instances;
  o["created_us"] = job.created_us;
  std::string text = json::serialize(o);
  text.back() = ',';  // the closing brace: the run state follows
  return text;
}

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;  // 32 bytes hold any int64 or the shortest form of any double
  out.append(buf, end);
}

template <typename T>
void AppendOptional(std::string& out, const std::optional<T>& v) {
  if (v) {
    AppendNumber(out, *v);
  } else {
    out += "null";
  }
}

// Appends the run state's fields (no braces): "paused", "next_us", "stats", "running".
void AppendState(std::string& out, const Job& job) {
  const JobStats& st = job.stats;
  out += job.spec.paused ? "\"paused\":true" : "\"paused\":false";
  out += ",\"next_us\":";
  AppendOptional(out, job.next_us);
  const std::pair<std::string_view, uint64_t> counts[] = {{"runs", st.runs},
                                                          {"missed", st.missed_runs},
                                                          {"skipped", st.skipped_runs},
                                                          {"completed", st.completed_runs},
                                                          {"failed", st.failed_runs},
                                                          {"cancelled", st.cancelled_runs}};
  out += ",\"stats\":{";
  for (const auto& [key, n] : counts) {
    out += '"';
    out += key;
    out += "\":";
    AppendNumber(out, n);
    out += ',';
  }
  out += "\"last_run_us\":";
  AppendOptional(out, st.last_run_us);
  // A task id's text and a state's name need no escaping.
  out += ",\"last_task\":\"";
  out += st.last_task_id;
  out += "\",\"last_state\":";
  if (st.last_task_state) {
    out += '"';
    out += storage::ToString(*st.last_task_state);
    out += '"';
  } else {
    out += "null";
  }
  out += ",\"duration_ms\":";
  AppendNumber(out, st.total_duration_ms);
  out += ",\"timed\":";
  AppendNumber(out, st.timed_runs);
  out += "},\"running\":[";
  for (size_t i = 0; i < job.running.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    out += job.running[i].ToString();
    out += '"';
  }
  out += ']';
}

// The whole record: the spec part and the run state.
std::string EncodeJob(const Job& job) {
  std::string out;
  out.reserve(job.spec_json.size() + 320 + 40 * job.running.size());
  out += job.spec_json;
  AppendState(out, job);
  out += '}';
  return out;
}

// The run state alone, the record under StateKey(id) that every run rewrites (a fraction of the
// whole record's bytes).
std::string EncodeState(const Job& job) {
  std::string out;
  out.reserve(320 + 40 * job.running.size());
  out += '{';
  AppendState(out, job);
  out += '}';
  return out;
}

// A job's run-state key: its id and a byte no id contains, so that it sorts right after the id.
constexpr char kStateSuffix = '\x01';
std::string StateKey(std::string_view id) {
  std::string key(id);
  key += kStateSuffix;
  return key;
}

template <typename T>
std::optional<T> Number(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if constexpr (std::is_floating_point_v<T>) {
    if (v->is_double()) return static_cast<T>(v->get_double());
  }
  if (v->is_int64()) return static_cast<T>(v->get_int64());
  if (v->is_uint64()) return static_cast<T>(v->get_uint64());
  if (v->is_double()) return static_cast<T>(v->get_double());
  return std::nullopt;
}

std::string Text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

void ApplyState(const json::object& o, Job& job);

// The job a persisted record describes, its trigger parsed again. Corruption for a record this
// build cannot read; InvalidArgument when its trigger no longer parses.
Result<JobPtr> DecodeJob(std::string_view id, std::string_view value,
                         const std::string& default_timezone) {
  json::error_code ec;
  json::value v = json::parse(value, ec);
  if (ec || !v.is_object()) {
    return Status::Corruption("scheduled job '" + std::string(id) + "': malformed record");
  }
  const json::object& o = v.get_object();
  if (Number<int>(o, "v").value_or(0) != kJobFormat) {
    return Status::NotSupported("scheduled job '" + std::string(id) + "': unknown format");
  }
  auto job = std::make_shared<Job>();
  JobSpec& s = job->spec;
  s.id = std::string(id);
  s.name = Text(o, "name");
  s.function = Text(o, "function");
  Result<TriggerType> type = ParseTriggerType(Text(o, "type"));
  if (!type.ok())
    return Status::Corruption("scheduled job '" + s.id + "': " + type.status().message());
  s.type = *type;
  if (const json::value* t = o.if_contains("trigger"); t != nullptr && t->is_object()) {
    s.trigger_config = t->get_object();
  }
  if (const json::value* d = o.if_contains("data"); d != nullptr && d->is_object()) {
    s.data = d->get_object();
  }
  s.queue = Text(o, "queue");
  if (std::string p = Text(o, "priority"); !p.empty()) s.priority = storage::ParsePriority(p);
  s.max_retries = Number<int32_t>(o, "max_retries");
  s.misfire_grace_seconds = Number<double>(o, "misfire_grace_s");
  if (const json::value* c = o.if_contains("coalesce"); c != nullptr && c->is_bool()) {
    s.coalesce = c->get_bool();
  }
  s.max_instances = Number<int32_t>(o, "max_instances").value_or(1);
  job->created_us = Number<int64_t>(o, "created_us").value_or(0);
  ApplyState(o, *job);
  Result<std::unique_ptr<Trigger>> trigger =
      Trigger::Parse(s.type, s.trigger_config, {default_timezone, job->created_us});
  if (!trigger.ok()) {
    return Status::InvalidArgument("scheduled job '" + s.id +
                                   "': trigger_config: " + trigger.status().message());
  }
  job->trigger = std::move(trigger).value();
  job->data_json = json::serialize(s.data);
  job->spec_json = EncodeSpec(*job);
  return job;
}

// Reads the run state (AppendState's fields) of `o` into `job`: from a whole record, or from a
// run-state record, which then overrides the whole record's (older) state.
void ApplyState(const json::object& o, Job& job_ref) {
  Job* job = &job_ref;
  if (const json::value* p = o.if_contains("paused"); p != nullptr && p->is_bool()) {
    job->spec.paused = p->get_bool();
  }
  job->next_us = Number<int64_t>(o, "next_us");
  if (const json::value* sv = o.if_contains("stats"); sv != nullptr && sv->is_object()) {
    const json::object& so = sv->get_object();
    JobStats& st = job->stats;
    st.runs = Number<uint64_t>(so, "runs").value_or(0);
    st.missed_runs = Number<uint64_t>(so, "missed").value_or(0);
    st.skipped_runs = Number<uint64_t>(so, "skipped").value_or(0);
    st.completed_runs = Number<uint64_t>(so, "completed").value_or(0);
    st.failed_runs = Number<uint64_t>(so, "failed").value_or(0);
    st.cancelled_runs = Number<uint64_t>(so, "cancelled").value_or(0);
    st.last_run_us = Number<int64_t>(so, "last_run_us");
    st.last_task_id = Text(so, "last_task");
    if (std::string ls = Text(so, "last_state"); !ls.empty()) {
      st.last_task_state = storage::ParseTaskState(ls);
    }
    st.total_duration_ms = Number<double>(so, "duration_ms").value_or(0);
    st.timed_runs = Number<uint64_t>(so, "timed").value_or(0);
    if (std::optional<TaskId> t = TaskId::Parse(st.last_task_id)) job->last_task = *t;
  }
  job->running.clear();
  if (const json::value* r = o.if_contains("running"); r != nullptr && r->is_array()) {
    for (const json::value& e : r->get_array()) {
      if (!e.is_string()) continue;
      if (std::optional<TaskId> t = TaskId::Parse(e.get_string())) job->running.push_back(*t);
    }
  }
}

// Due run times of a trigger, from `first` (a fire time <= now) up to `now`.
struct Due {
  uint64_t count = 0;           // how many (a lower bound when `capped`)
  bool capped = false;          // too many to walk: counted up to kMaxWalkedFireTimes
  int64_t latest = 0;           // the latest of them
  std::vector<int64_t> kept;    // the first `keep` of them
  std::optional<int64_t> next;  // the first fire time after now
};

Due FindDue(const Trigger& trigger, int64_t first, int64_t now, size_t keep) {
  Due due;
  if (std::optional<int64_t> iv = trigger.FixedIntervalMicros(); iv && now - first > *iv) {
    // first + k * iv: count without walking (unless end_date cuts the run short).
    const int64_t k = (now - first) / *iv;
    const int64_t latest = first + k * *iv;
    if (trigger.NextFireTime(latest) == latest) {
      due.count = static_cast<uint64_t>(k) + 1;
      due.latest = latest;
      for (int64_t i = 0; i <= k && due.kept.size() < keep; ++i)
        due.kept.push_back(first + i * *iv);
      due.next = trigger.NextFireTime(now + 1);
      return due;
    }
  }
  std::optional<int64_t> at = first;
  while (at && *at <= now) {
    ++due.count;
    due.latest = *at;
    if (due.kept.size() < keep) due.kept.push_back(*at);
    if (due.count >= kMaxWalkedFireTimes) {
      due.capped = true;
      at = trigger.NextFireTime(now + 1);
      break;
    }
    at = trigger.NextFireTime(*at + 1);
  }
  due.next = at;
  return due;
}

// Warnings of one timer pass, printed after the scheduler's lock is released.
class Warnings {
 public:
  void Add(std::string line) {
    if (lines_.size() < kMaxWarningsPerPass) {
      lines_.push_back(std::move(line));
    } else {
      ++more_;
    }
  }
  void Print() {
    for (const std::string& l : lines_)
      std::fprintf(stderr, "bmos: scheduler: warning: %s\n", l.c_str());
    if (more_ > 0) {
      std::fprintf(stderr, "bmos: scheduler: warning: and %llu more jobs missed or skipped runs\n",
                   static_cast<unsigned long long>(more_));
    }
    lines_.clear();
    more_ = 0;
  }

 private:
  std::vector<std::string> lines_;
  uint64_t more_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Core: the scheduler's state, shared with the engine's callbacks (which may outlive a pass).

class Scheduler::Core : public std::enable_shared_from_this<Scheduler::Core> {
 public:
  Core(Engine* engine, SchedulerOptions options)
      : engine_(engine),
        clock_(&engine->clock()),
        store_(&engine->store()),
        options_(std::move(options)),
        sleeper_(clock_) {}

  ~Core() { StopThread(); }

  Status Load();
  void Start() {
    std::weak_ptr<Core> weak = weak_from_this();
    engine_->SetTaskEndObserver([weak](const TaskRecord& r) {
      if (!r.spec->unique_key.starts_with(kScheduleKeyPrefix)) return;
      if (std::shared_ptr<Core> core = weak.lock()) core->OnTaskEnd(r);
    });
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop();

  Result<JobInfo> Add(JobSpec spec);
  Result<JobInfo> Replace(std::string_view id, JobSpec spec);
  Result<JobInfo> Get(std::string_view id) const;
  Result<JobListPage> List(const JobListQuery& query) const;
  Status Remove(std::string_view id);
  Result<JobInfo> SetPaused(std::string_view id, bool paused);
  Result<EnqueueResult> RunNow(std::string_view id);
  SchedulerStats Stats() const;
  bool WaitIdle(std::chrono::milliseconds timeout) const;

 private:
  struct Fire {
    JobPtr job;
    int64_t scheduled_us;
    bool manual = false;  // RunNow: its caller hears of a failure; not a missed run
  };
  // Runs decided in one pass, and the jobs to write once their tasks are enqueued.
  struct Batch {
    std::vector<EnqueueRequest> requests;
    std::vector<Fire> fires;
    std::vector<JobPtr> touched;
  };

  // A job for `spec` (validated; id generated when empty), not yet added.
  Result<JobPtr> Build(JobSpec spec, int64_t now) const;
  void Loop();
  int64_t RunDue();
  // Decides what the due runs of `job` become (REQUIRES mu_).
  void Decide(const JobPtr& job, int64_t now, Batch& batch, Warnings& warnings);
  // Adds a run of `job` at `scheduled_us` to `batch` (REQUIRES mu_).
  void AddRun(const JobPtr& job, int64_t scheduled_us, std::string unique_key, Batch& batch,
              bool manual = false);
  // Hands `batch` to the engine (REQUIRES: not mu_; inflight_ counted for it).
  void Submit(Batch batch, std::function<void(const Result<std::vector<EnqueueResult>>&)> then);
  void OnEnqueued(const std::vector<Fire>& fires, const std::vector<JobPtr>& touched,
                  const Result<std::vector<EnqueueResult>>& result);
  void OnTaskEnd(const TaskRecord& record);
  // Forgets running tasks that ended unseen (REQUIRES mu_; reads the engine).
  void PruneRunning(Job& job);
  void CountEnded(Job& job, const TaskRecord& record);
  void MarkDirty(const JobPtr& job);                                     // REQUIRES mu_
  void FlushDirty(int64_t now, bool all, storage::WriteCallback* done);  // REQUIRES mu_
  // Writes `jobs` (REQUIRES mu_: submission order is the order of the states written).
  void Persist(const std::vector<JobPtr>& jobs, storage::WriteCallback* done);
  void Schedule(const JobPtr& job);    // pushes job->next_us to the heap (REQUIRES mu_)
  JobInfo Info(const Job& job) const;  // REQUIRES mu_
  EnqueueRequest MakeRequest(const Job& job, std::string unique_key) const;
  void StopThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    sleeper_.Wake();
    if (thread_.joinable()) thread_.join();
  }

  Engine* const engine_;
  Clock* const clock_;
  storage::TaskStore* const store_;
  const SchedulerOptions options_;

  mutable std::mutex mu_;
  mutable std::condition_variable idle_cv_;
  std::map<std::string, JobPtr, std::less<>> jobs_;  // GUARDED_BY(mu_)
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<HeapEntry>>
      heap_;                   // GUARDED_BY(mu_)
  std::vector<JobPtr> dirty_;  // GUARDED_BY(mu_)
  int64_t flush_at_ = kNever;  // GUARDED_BY(mu_)
  uint64_t inflight_ = 0;      // GUARDED_BY(mu_): EnqueueAsync calls not answered
  uint64_t fired_total_ = 0, missed_total_ = 0, skipped_total_ = 0;  // GUARDED_BY(mu_)
  bool stop_ = false;                                                // GUARDED_BY(mu_)
  bool stopped_ = false;                                             // GUARDED_BY(mu_)

  internal::Sleeper sleeper_;
  std::thread thread_;
  internal::Histogram lateness_;  // written by the timer thread only
  std::atomic<int64_t> timer_cpu_us_{0};
};

Status Scheduler::Core::Load() {
  // Per id: the whole record and, when the job ran since it was written, its run-state record
  // (which sorts right after it).
  std::vector<std::pair<std::string, std::string>> records;
  std::map<std::string, std::string, std::less<>> states;
  Status s = store_->ForEachJob([&](std::string_view key, std::string_view value) {
    if (!key.empty() && key.back() == kStateSuffix) {
      states.emplace(std::string(key.substr(0, key.size() - 1)), std::string(value));
    } else {
      records.emplace_back(std::string(key), std::string(value));
    }
  });
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, value] : records) {
    Result<JobPtr> job = DecodeJob(id, value, options_.default_timezone);
    if (!job.ok()) {
      std::fprintf(stderr,
                   "bmos: scheduler: error: job '%s' not loaded (it stays in the store): %s\n",
                   id.c_str(), job.status().ToString().c_str());
      continue;
    }
    JobPtr j = std::move(job).value();
    j->spec_written = true;
    if (auto st = states.find(id); st != states.end()) {
      json::error_code ec;
      json::value state = json::parse(st->second, ec);
      if (!ec && state.is_object()) {
        ApplyState(state.get_object(), *j);
      } else {
        std::fprintf(stderr,
                     "bmos: scheduler: error: job '%s': malformed run state; the job's whole "
                     "record (older) is used\n",
                     id.c_str());
      }
    }
    // Tasks that ended while the scheduler was not watching (the process was down, or they
    // ended between the engine's recovery and now) are found here; the rest are watched.
    PruneRunning(*j);
    if (j->stats.last_task_state && !storage::IsTerminal(*j->stats.last_task_state)) {
      Result<TaskRecord> r = engine_->Get(j->last_task);
      if (r.ok()) j->stats.last_task_state = r->state;
    }
    Schedule(j);
    jobs_.emplace(j->spec.id, std::move(j));
  }
  return Status::Ok();
}

void Scheduler::Core::Schedule(const JobPtr& job) {
  ++job->gen;
  if (job->next_us && !job->spec.paused && !job->removed) {
    heap_.push(HeapEntry{*job->next_us, job->gen, job});
  }
}

EnqueueRequest Scheduler::Core::MakeRequest(const Job& job, std::string unique_key) const {
  EnqueueRequest r;
  r.name = job.spec.function;
  r.data_json = job.data_json;
  r.queue = job.spec.queue;
  r.priority = job.spec.priority;
  r.max_retries = job.spec.max_retries;
  r.unique_key = std::move(unique_key);
  return r;
}

JobInfo Scheduler::Core::Info(const Job& job) const {
  JobInfo info;
  info.spec = job.spec;
  info.state = job.state();
  info.trigger = job.trigger->Describe();
  info.timezone = job.trigger->timezone();
  info.created_us = job.created_us;
  if (!job.spec.paused) info.next_run_us = job.next_us;
  if (info.next_run_us) info.next_run_local = job.trigger->FormatTime(*info.next_run_us);
  info.stats = job.stats;
  info.running = job.running;
  return info;
}

// -- The timer thread ------------------------------------------------------------------------

void Scheduler::Core::Loop() {
  pthread_setname_np(pthread_self(), "bmos-scheduler");  // for top -H, perf and gdb
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    const int64_t pass_start = clock_->NowMicros();
    int64_t next = RunDue();
    timer_cpu_us_.store(ThreadCpuMicros(), std::memory_order_relaxed);
    if (next != kNever) next = std::max(next, pass_start + options_.min_wake_interval.count());
    sleeper_.SleepUntil(next);
  }
}

int64_t Scheduler::Core::RunDue() {
  const int64_t now = clock_->NowMicros();
  Batch batch;
  Warnings warnings;
  int64_t next = kNever;
  bool caught_up = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!heap_.empty() && heap_.top().at <= now) {
      if (batch.requests.size() >= kMaxEnqueueBatch) {
        caught_up = false;  // the rest in the next pass, right after this batch is handed over
        break;
      }
      HeapEntry e = heap_.top();
      heap_.pop();
      if (e.job->removed || e.gen != e.job->gen || e.job->spec.paused) continue;
      Decide(e.job, now, batch, warnings);
    }
    if (flush_at_ <= now) FlushDirty(now, /*all=*/false, nullptr);
    if (batch.requests.empty()) {
      Persist(batch.touched, nullptr);  // only missed or skipped runs: nothing to wait for
      batch.touched.clear();
    } else {
      ++inflight_;
    }
    next = caught_up ? std::min(heap_.empty() ? kNever : heap_.top().at, flush_at_) : now;
  }
  warnings.Print();
  if (!batch.requests.empty()) {
    const int64_t handed_at = clock_->NowMicros();
    for (const Fire& f : batch.fires) {
      lateness_.Record(static_cast<uint64_t>(std::max<int64_t>(0, handed_at - f.scheduled_us)));
    }
    Submit(std::move(batch), nullptr);
  }
  idle_cv_.notify_all();
  return next;
}

void Scheduler::Core::Decide(const JobPtr& job, int64_t now, Batch& batch, Warnings& warnings) {
  const JobSpec& spec = job->spec;
  Due due = FindDue(*job->trigger, *job->next_us, now, spec.coalesce ? 0 : kMaxBacklogRuns);
  std::vector<int64_t> runs =
      spec.coalesce ? std::vector<int64_t>{due.latest} : std::move(due.kept);
  // Coalesced runs (all but the latest), and without coalesce the backlog beyond what is kept.
  const uint64_t merged = due.count - runs.size();
  uint64_t late = 0, skipped = 0;
  const std::optional<int64_t> grace_us =
      spec.misfire_grace_seconds
          ? std::optional<int64_t>(std::llround(*spec.misfire_grace_seconds * kMicrosPerSecond))
          : std::nullopt;
  bool pruned = false;
  for (int64_t at : runs) {
    if (grace_us && now - at > *grace_us) {
      ++late;
      continue;
    }
    if (job->instances() >= static_cast<uint64_t>(spec.max_instances) && !pruned) {
      PruneRunning(*job);
      pruned = true;
    }
    if (job->instances() >= static_cast<uint64_t>(spec.max_instances)) {
      ++skipped;
      continue;
    }
    AddRun(job, at, std::string(kScheduleKeyPrefix) + spec.id + ":" + std::to_string(at), batch);
  }
  if (merged + late + skipped > 0) {
    job->stats.missed_runs += merged + late;
    job->stats.skipped_runs += skipped;
    missed_total_ += merged + late;
    skipped_total_ += skipped;
    std::string line = "job '" + spec.id + "' (" + spec.name + "):";
    if (merged > 0) {
      line += " " + std::to_string(merged) + (due.capped ? "+" : "") + " due run(s) " +
              (spec.coalesce ? "coalesced into one" : "dropped (backlog too long)") +
              " (first due " + FormatUtc(*job->next_us) + ");";
    }
    if (late > 0) {
      char grace[32];
      std::snprintf(grace, sizeof grace, "%g", *spec.misfire_grace_seconds);
      line += " " + std::to_string(late) + " run(s) missed: later than misfire_grace_time " +
              grace + " s (latest due " + FormatUtc(due.latest) + ", now " + FormatUtc(now) + ");";
    }
    if (skipped > 0) {
      line += " " + std::to_string(skipped) +
              " run(s) skipped: " + std::to_string(job->instances()) +
              " task(s) still running (max_instances " + std::to_string(spec.max_instances) + ");";
    }
    warnings.Add(std::move(line));
  }
  job->next_us = due.next;
  Schedule(job);
  batch.touched.push_back(job);
}

void Scheduler::Core::AddRun(const JobPtr& job, int64_t scheduled_us, std::string unique_key,
                             Batch& batch, bool manual) {
  ++job->pending;
  ++job->stats.runs;
  ++fired_total_;
  job->stats.last_run_us = scheduled_us;
  batch.requests.push_back(MakeRequest(*job, std::move(unique_key)));
  batch.fires.push_back(Fire{job, scheduled_us, manual});
}

void Scheduler::Core::Submit(Batch batch,
                             std::function<void(const Result<std::vector<EnqueueResult>>&)> then) {
  std::shared_ptr<Core> self = shared_from_this();
  engine_->EnqueueAsync(std::move(batch.requests),
                        [self, fires = std::move(batch.fires), touched = std::move(batch.touched),
                         then = std::move(then)](Result<std::vector<EnqueueResult>> result) {
                          self->OnEnqueued(fires, touched, result);
                          if (then) then(result);
                        });
}

// Runs on the store's commit thread (or the submitting thread) after the tasks' records are
// committed and before the engine dispatches them: the job records written here are therefore
// ordered before anything the tasks do.
void Scheduler::Core::OnEnqueued(const std::vector<Fire>& fires, const std::vector<JobPtr>& touched,
                                 const Result<std::vector<EnqueueResult>>& result) {
  std::vector<Fire> singles;  // a batch refused as a whole: its runs again, one by one
  Warnings warnings;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < fires.size(); ++i) {
      Job& job = *fires[i].job;
      --job.pending;
      if (result.ok()) {
        const EnqueueResult& r = (*result)[i];
        if (std::find(job.running.begin(), job.running.end(), r.id) == job.running.end()) {
          job.running.push_back(r.id);
        }
        job.last_task = r.id;
        job.stats.last_task_id = r.id.ToString();
        job.stats.last_task_state = r.state;
        continue;
      }
      --job.stats.runs;
      --fired_total_;
      if (result.status().code() == Status::Code::kInvalidArgument && fires.size() > 1) {
        ++job.pending;
        ++job.stats.runs;
        ++fired_total_;
        singles.push_back(fires[i]);
        continue;
      }
      if (fires[i].manual) continue;  // RunNow returns the error
      ++job.stats.missed_runs;
      ++missed_total_;
      warnings.Add("job '" + job.spec.id + "' (" + job.spec.name + "): the run due at " +
                   FormatUtc(fires[i].scheduled_us) +
                   " could not be enqueued (counted as missed): " + result.status().ToString());
    }
    Persist(touched, nullptr);  // every fired job is in `touched`
    inflight_ += singles.size();
    --inflight_;
  }
  warnings.Print();
  idle_cv_.notify_all();
  for (const Fire& f : singles) {
    Batch one;
    {
      std::lock_guard<std::mutex> lock(mu_);
      one.requests.push_back(MakeRequest(*f.job, std::string(kScheduleKeyPrefix) + f.job->spec.id +
                                                     ":" + std::to_string(f.scheduled_us)));
    }
    one.fires.push_back(f);
    one.touched.push_back(f.job);
    Submit(std::move(one), nullptr);
  }
}

void Scheduler::Core::Persist(const std::vector<JobPtr>& jobs, storage::WriteCallback* done) {
  std::vector<storage::JobWrite> writes;
  writes.reserve(jobs.size());
  for (const JobPtr& job : jobs) {
    if (job->removed) continue;
    if (job->spec_written) {
      writes.push_back(storage::JobWrite{StateKey(job->spec.id), EncodeState(*job)});
    } else {
      // The whole record, and no run-state record left to override it (one batch: both or none).
      writes.push_back(storage::JobWrite{job->spec.id, EncodeJob(*job)});
      writes.push_back(storage::JobWrite{StateKey(job->spec.id), {}, true});
      job->spec_written = true;
    }
    job->dirty = false;
  }
  if (writes.empty() && done == nullptr) return;
  store_->WriteJobsAsync(writes, done);
}

void Scheduler::Core::MarkDirty(const JobPtr& job) {
  if (job->dirty || job->removed) return;
  job->dirty = true;
  dirty_.push_back(job);
  if (flush_at_ == kNever) {
    flush_at_ = clock_->NowMicros() + options_.stats_flush_interval.count() * 1000;
    sleeper_.Wake();  // the timer thread may sleep past the flush
  }
}

void Scheduler::Core::FlushDirty(int64_t now, bool all, storage::WriteCallback* done) {
  const int64_t horizon = now + 2 * options_.stats_flush_interval.count() * 1000;
  std::vector<JobPtr> write, keep;
  for (JobPtr& job : dirty_) {
    if (!job->dirty || job->removed) continue;  // written meanwhile
    // A job that runs again soon is written then, with these statistics.
    if (!all && job->next_us && !job->spec.paused && *job->next_us <= horizon) {
      keep.push_back(std::move(job));
    } else {
      write.push_back(std::move(job));
    }
  }
  dirty_ = std::move(keep);
  flush_at_ = dirty_.empty() ? kNever : now + options_.stats_flush_interval.count() * 1000;
  Persist(write, done);
}

// -- Ended runs --------------------------------------------------------------------------------

void Scheduler::Core::CountEnded(Job& job, const TaskRecord& r) {
  switch (r.state) {
    case TaskState::kCompleted:
      ++job.stats.completed_runs;
      break;
    case TaskState::kFailed:
      ++job.stats.failed_runs;
      break;
    case TaskState::kCancelled:
      ++job.stats.cancelled_runs;
      break;
    default:
      return;
  }
  if (r.started_ms > 0 && r.completed_ms >= r.started_ms) {
    job.stats.total_duration_ms += static_cast<double>(r.completed_ms - r.started_ms);
    ++job.stats.timed_runs;
  }
  if (r.id() == job.last_task) job.stats.last_task_state = r.state;
}

void Scheduler::Core::OnTaskEnd(const TaskRecord& r) {
  std::string_view rest = std::string_view(r.spec->unique_key).substr(kScheduleKeyPrefix.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return;
  const std::string_view id = rest.substr(0, colon);
  bool failed = false;
  std::string name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    const JobPtr& job = it->second;
    auto run = std::find(job->running.begin(), job->running.end(), r.id());
    if (run == job->running.end()) return;  // counted already (PruneRunning) or not ours
    job->running.erase(run);
    CountEnded(*job, r);
    MarkDirty(job);
    failed = r.state == TaskState::kFailed;
    name = job->spec.name;
  }
  idle_cv_.notify_all();
  if (failed) {
    std::fprintf(stderr, "bmos: scheduler: warning: job '%.*s' (%s): run task %s FAILED: %s\n",
                 static_cast<int>(id.size()), id.data(), name.c_str(), r.id().ToString().c_str(),
                 r.error.c_str());
  }
}

void Scheduler::Core::PruneRunning(Job& job) {
  for (auto it = job.running.begin(); it != job.running.end();) {
    Result<TaskRecord> r = engine_->Get(*it);
    if (r.ok() && !storage::IsTerminal(r->state)) {
      ++it;
      continue;
    }
    if (r.ok()) CountEnded(job, *r);
    // Unknown (purged, or the store lost it): no longer running either way.
    it = job.running.erase(it);
    job.dirty = true;
  }
}

// -- API ---------------------------------------------------------------------------------------

Result<JobPtr> Scheduler::Core::Build(JobSpec spec, int64_t now) const {
  if (spec.id.empty()) {
    spec.id = storage::NewTaskId(now / 1000).ToString();
  } else if (!ValidJobId(spec.id)) {
    return Status::InvalidArgument(
        "job_id: 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', '~' and '-'");
  }
  if (spec.name.empty() || spec.name.size() > kMaxJobNameLength) {
    return Status::InvalidArgument("job_name: required, at most 200 bytes");
  }
  if (spec.max_instances < 1 || spec.max_instances > kMaxInstancesLimit) {
    return Status::InvalidArgument("max_instances: must be within 1..1000");
  }
  if (spec.misfire_grace_seconds &&
      !(std::isfinite(*spec.misfire_grace_seconds) && *spec.misfire_grace_seconds > 0 &&
        *spec.misfire_grace_seconds <= 1e9)) {
    return Status::InvalidArgument(
        "misfire_grace_time: a number of seconds > 0 (or null for no limit)");
  }
  if (spec.function.empty()) return Status::InvalidArgument("job_function: required");
  {
    EnqueueRequest probe;
    probe.name = spec.function;
    probe.queue = spec.queue;
    probe.priority = spec.priority;
    probe.max_retries = spec.max_retries;
    if (Status s = engine_->ValidateEnqueue(probe); !s.ok()) {
      std::string m = s.message();
      if (m.starts_with("task_name:")) m = "job_function:" + m.substr(10);
      return Status(s.code(), m);
    }
  }
  auto job = std::make_shared<Job>();
  job->created_us = now;
  job->data_json = json::serialize(spec.data);
  Result<std::unique_ptr<Trigger>> trigger =
      Trigger::Parse(spec.type, spec.trigger_config, {options_.default_timezone, now});
  if (!trigger.ok()) {
    return Status::InvalidArgument("trigger_config: " + trigger.status().message());
  }
  job->trigger = std::move(trigger).value();
  job->next_us = job->trigger->NextFireTime(now);
  if (!job->next_us) {
    return Status::InvalidArgument("trigger_config: " + job->trigger->Describe() +
                                   " never fires after now (" + FormatUtc(now) +
                                   "); the job would never run");
  }
  job->spec = std::move(spec);
  job->spec_json = EncodeSpec(*job);
  return job;
}

Result<JobInfo> Scheduler::Core::Add(JobSpec spec) {
  Result<JobPtr> built = Build(std::move(spec), clock_->NowMicros());
  if (!built.ok()) return built.status();
  JobPtr job = std::move(built).value();
  const std::string id = job->spec.id;
  WriteWaiter written;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jobs_.contains(id)) {
      return Status::FailedPrecondition("job '" + id + "' already exists");
    }
    if (jobs_.size() >= options_.max_jobs) {
      return Status::FailedPrecondition("the scheduler holds its maximum of " +
                                        std::to_string(options_.max_jobs) + " jobs");
    }
    jobs_.emplace(id, job);
    const bool earliest = heap_.empty() || *job->next_us < heap_.top().at;
    Schedule(job);
    Persist({job}, &written);
    if (earliest) sleeper_.Wake();
  }
  if (Status s = written.Wait(); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end() && it->second == job) {
      job->removed = true;
      jobs_.erase(it);
    }
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  return Info(*job);
}

Result<JobInfo> Scheduler::Core::Replace(std::string_view id, JobSpec spec) {
  if (!spec.id.empty() && spec.id != id) {
    return Status::InvalidArgument("job_id: '" + spec.id + "' differs from the job replaced ('" +
                                   std::string(id) + "')");
  }
  spec.id = std::string(id);
  Result<JobPtr> built = Build(std::move(spec), clock_->NowMicros());
  if (!built.ok()) return built.status();
  const JobPtr& fresh = *built;
  WriteWaiter written;
  JobPtr job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return JobNotFound(id);
    job = it->second;
    // In place: runs in flight hold this Job and record their tasks on it. Statistics, running
    // tasks and the pause state stay; the timetable starts anew from now.
    const bool paused = job->spec.paused;
    job->spec = std::move(fresh->spec);
    job->spec.paused = paused;
    job->trigger = std::move(fresh->trigger);
    job->data_json = std::move(fresh->data_json);
    job->created_us = fresh->created_us;
    job->spec_json = EncodeSpec(*job);
    job->spec_written = false;
    job->next_us = fresh->next_us;
    Schedule(job);
    Persist({job}, &written);
    sleeper_.Wake();
  }
  Status s = written.Wait();
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok()) {
    MarkDirty(job);  // written again later
    return s;
  }
  return Info(*job);
}

Result<JobInfo> Scheduler::Core::Get(std::string_view id) const {
  JobInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return JobNotFound(id);
    info = Info(*it->second);
  }
  // The last task's state now, if it may have moved on since the job last heard of it.
  if (info.stats.last_task_state && !storage::IsTerminal(*info.stats.last_task_state)) {
    if (std::optional<TaskId> t = TaskId::Parse(info.stats.last_task_id)) {
      if (Result<TaskRecord> r = engine_->Get(*t); r.ok()) info.stats.last_task_state = r->state;
    }
  }
  return info;
}

Result<JobListPage> Scheduler::Core::List(const JobListQuery& q) const {
  if (q.limit < 1 || q.limit > 1000)
    return Status::InvalidArgument("limit: must be within 1..1000");
  JobListPage page;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = q.after.empty() ? jobs_.begin() : jobs_.upper_bound(q.after);
  for (; it != jobs_.end(); ++it) {
    if (q.state && it->second->state() != *q.state) continue;
    if (page.jobs.size() == q.limit) {
      page.next_cursor = page.jobs.back().spec.id;
      break;
    }
    page.jobs.push_back(Info(*it->second));
  }
  return page;
}

Status Scheduler::Core::Remove(std::string_view id) {
  WriteWaiter written;
  JobPtr job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return JobNotFound(id);
    job = it->second;
    job->removed = true;
    ++job->gen;
    jobs_.erase(it);
    const storage::JobWrite erase[] = {{std::string(id), {}, true}, {StateKey(id), {}, true}};
    store_->WriteJobsAsync(erase, &written);
  }
  if (Status s = written.Wait(); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!jobs_.contains(id)) {  // back, as the store still has it
      job->removed = false;
      jobs_.emplace(std::string(id), job);
      Schedule(job);
      sleeper_.Wake();
    }
    return s;
  }
  return Status::Ok();
}

Result<JobInfo> Scheduler::Core::SetPaused(std::string_view id, bool paused) {
  WriteWaiter written;
  JobPtr job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return JobNotFound(id);
    job = it->second;
    if (job->state() == JobState::kFinished) {
      return Status::FailedPrecondition("job '" + std::string(id) +
                                        "' is finished: its trigger fires no more");
    }
    if (job->spec.paused == paused) return Info(*job);  // nothing to do
    job->spec.paused = paused;
    if (!paused) {
      // Runs that fell due while paused are not made up: the next run is computed from now.
      job->next_us = job->trigger->NextFireTime(clock_->NowMicros());
    }
    Schedule(job);
    Persist({job}, &written);
    if (!paused) sleeper_.Wake();
  }
  Status s = written.Wait();
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok()) {
    MarkDirty(job);  // written again later
    return s;
  }
  return Info(*job);
}

Result<EnqueueResult> Scheduler::Core::RunNow(std::string_view id) {
  Batch batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return JobNotFound(id);
    const JobPtr& job = it->second;
    const auto max = static_cast<uint64_t>(job->spec.max_instances);
    if (job->instances() >= max) PruneRunning(*job);
    if (job->instances() >= max) {
      return Status::FailedPrecondition(
          "job '" + std::string(id) + "' has " + std::to_string(job->instances()) +
          " task(s) still running (max_instances " + std::to_string(max) + ")");
    }
    const int64_t now = clock_->NowMicros();
    AddRun(job, now, std::string(kScheduleKeyPrefix) + job->spec.id + ":now-" + std::to_string(now),
           batch, /*manual=*/true);
    batch.touched.push_back(job);
    ++inflight_;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<EnqueueResult>> answer;
  Submit(std::move(batch), [&](const Result<std::vector<EnqueueResult>>& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.ok()) {
      answer = (*r)[0];
    } else {
      answer = r.status();
    }
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return answer.has_value(); });
  return std::move(*answer);
}

SchedulerStats Scheduler::Core::Stats() const {
  SchedulerStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, job] : jobs_) {
      ++s.jobs;
      switch (job->state()) {
        case JobState::kActive:
          ++s.active;
          break;
        case JobState::kPaused:
          ++s.paused;
          break;
        case JobState::kFinished:
          ++s.finished;
          break;
      }
      s.runs += job->stats.runs;
      s.missed_runs += job->stats.missed_runs;
      s.skipped_runs += job->stats.skipped_runs;
      s.completed_runs += job->stats.completed_runs;
      s.failed_runs += job->stats.failed_runs;
      s.running += job->running.size();
    }
    s.fired_total = fired_total_;
    s.missed_total = missed_total_;
    s.skipped_total = skipped_total_;
    // The heap may hold stale entries; the earliest live one is the next run.
    for (const auto& [id, job] : jobs_) {
      if (job->state() != JobState::kActive) continue;
      if (!s.next_run_us || *job->next_us < *s.next_run_us) s.next_run_us = job->next_us;
    }
  }
  internal::Histogram::Snapshot h;
  lateness_.MergeInto(h);
  s.lateness = internal::ToPercentiles(h);
  s.timer_cpu_us = timer_cpu_us_.load(std::memory_order_relaxed);
  return s;
}

bool Scheduler::Core::WaitIdle(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_until(
      // Idle: nothing due is left in the heap (a pass took it) and every enqueue was answered.
      lock, deadline,
      [&] { return inflight_ == 0 && (heap_.empty() || heap_.top().at > clock_->NowMicros()); });
}

void Scheduler::Core::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  StopThread();
  WriteWaiter written;
  {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [&] { return inflight_ == 0; });
    FlushDirty(clock_->NowMicros(), /*all=*/true, &written);
  }
  if (Status s = written.Wait(); !s.ok()) {
    std::fprintf(stderr, "bmos: scheduler: error: cannot write job statistics at stop: %s\n",
                 s.ToString().c_str());
  }
}

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<Scheduler>> Scheduler::Open(Engine* engine, SchedulerOptions options) {
  if (engine == nullptr) return Status::InvalidArgument("engine: required");
  if (Result<std::string> z = FormatIsoWithOffset(0, options.default_timezone); !z.ok()) {
    return Status::InvalidArgument("default_timezone: " + z.status().message());
  }
  if (options.stats_flush_interval.count() <= 0) {
    return Status::InvalidArgument("stats_flush_interval: must be > 0");
  }
  if (options.min_wake_interval.count() < 0 ||
      options.min_wake_interval > std::chrono::seconds(1)) {
    return Status::InvalidArgument("min_wake_interval: must be within 0..1 s");
  }
  auto core = std::make_shared<Core>(engine, std::move(options));
  if (Status s = core->Load(); !s.ok()) return s;
  core->Start();
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(core)));
}

Scheduler::Scheduler(std::shared_ptr<Core> core) : core_(std::move(core)) {}
Scheduler::~Scheduler() { Stop(); }
Result<JobInfo> Scheduler::Add(JobSpec spec) { return core_->Add(std::move(spec)); }
Result<JobInfo> Scheduler::Replace(std::string_view id, JobSpec spec) {
  return core_->Replace(id, std::move(spec));
}
Result<JobInfo> Scheduler::Get(std::string_view id) const { return core_->Get(id); }
Result<JobListPage> Scheduler::List(const JobListQuery& query) const { return core_->List(query); }
Status Scheduler::Remove(std::string_view id) { return core_->Remove(id); }
Result<JobInfo> Scheduler::Pause(std::string_view id) { return core_->SetPaused(id, true); }
Result<JobInfo> Scheduler::Resume(std::string_view id) { return core_->SetPaused(id, false); }
Result<EnqueueResult> Scheduler::RunNow(std::string_view id) { return core_->RunNow(id); }
SchedulerStats Scheduler::Stats() const { return core_->Stats(); }
void Scheduler::Stop() { core_->Stop(); }
bool Scheduler::TEST_WaitIdle(std::chrono::milliseconds timeout) const {
  return core_->WaitIdle(timeout);
}

}  // namespace bmos::engine
