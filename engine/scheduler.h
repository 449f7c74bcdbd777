// Scheduler: jobs that enqueue ordinary tasks on a timetable (APScheduler-compatible cron,
// interval and date triggers, engine/trigger.h), persisted in the engine's store.
//
// A job names a registered task (job_function) with its data, queue, priority and retries, and
// a trigger. One timer thread sleeps until the earliest next run time of all jobs (a heap; no
// polling) and, when it comes, enqueues the job's task and computes the next run time. What a
// due run becomes (APScheduler 3.x's rules):
//   - it runs (a task is enqueued) when it is at most misfire_grace_time late (default 60 s;
//     no limit when unset) and fewer than max_instances (default 1) tasks of the job are still
//     running (not yet COMPLETED, FAILED or CANCELLED);
//   - later than the grace time: a missed run; with max_instances tasks running: a skipped run;
//   - several due runs at once (after a downtime, or a clock step) with coalesce (the default)
//     run once, for the latest of them; the others count as missed runs.
// Missed and skipped runs are never silent: each is counted on its job (stats, API, metrics)
// and logged at warning level on stderr.
//
// Persistence (TaskStore::WriteJobs): a job's spec, pause state, next run time, statistics and
// its running tasks' ids are one record, written when the job changes. A run's task is written
// first; the job record that advances its next run time is submitted once the task's record is
// committed and before the task can start, so after a crash either the job still shows the run
// as due (it runs again with the same task unique key, which the still-live task answers: no
// second task) or the run is recorded. After a restart, runs missed while the process was down
// follow the rules above.
//
// Thread-safety: every method may be called from any thread. The Engine must outlive the
// Scheduler; Stop (or the destructor) must run before Engine::Stop.
#ifndef BMOS_ENGINE_SCHEDULER_H_
#define BMOS_ENGINE_SCHEDULER_H_

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "engine/trigger.h"

namespace bmos::engine {

// What a client asks for (the HTTP body of POST /tasks/scheduled).
struct JobSpec {
  std::string id{};        // job_id: 1..128 of [A-Za-z0-9._~-]; empty: a generated UUIDv7
  std::string name{};      // job_name: required, 1..200 bytes
  std::string function{};  // job_function: a registered task name
  TriggerType type = TriggerType::kCron;
  boost::json::object trigger_config{};
  boost::json::object data{};  // job_data: the task data of every run
  std::string queue{};         // queue_name; empty: the task's default queue
  std::optional<Priority> priority{};
  std::optional<int32_t> max_retries{};
  // misfire_grace_time in seconds (> 0); nullopt: no limit (a late run always runs).
  std::optional<double> misfire_grace_seconds = 60.0;
  bool coalesce = true;
  int32_t max_instances = 1;  // 1..1000
  bool paused = false;        // added paused: no next run until resumed
};

enum class JobState { kActive, kPaused, kFinished };  // finished: the trigger fires no more
std::string_view ToString(JobState state);            // "active", "paused", "finished"

struct JobStats {
  uint64_t runs = 0;          // tasks enqueued (timetable and run-now)
  uint64_t missed_runs = 0;   // due runs not run: later than misfire_grace_time, or coalesced
  uint64_t skipped_runs = 0;  // due runs not run: max_instances tasks were running
  uint64_t completed_runs = 0, failed_runs = 0, cancelled_runs = 0;  // ended tasks
  std::optional<int64_t> last_run_us{};  // the scheduled time of the last run (run-now: its time)
  std::string last_task_id{};
  std::optional<TaskState> last_task_state{};
  double total_duration_ms = 0;  // handler time of ended runs that started, summed
  uint64_t timed_runs = 0;       // how many runs total_duration_ms sums
  double avg_duration_ms() const {
    return timed_runs == 0 ? 0 : total_duration_ms / static_cast<double>(timed_runs);
  }
};

// A job as the API shows it.
struct JobInfo {
  JobSpec spec{};
  JobState state = JobState::kActive;
  std::string trigger{};   // Trigger::Describe()
  std::string timezone{};  // the trigger's zone
  int64_t created_us = 0;
  std::optional<int64_t> next_run_us{};
  std::string next_run_local{};  // next_run_us as ISO 8601 in the job's zone; empty when none
  JobStats stats{};
  std::vector<TaskId> running{};  // its tasks that have not ended
};

struct JobListQuery {
  std::optional<JobState> state{};
  std::string after{};  // cursor: only jobs whose id sorts after this
  size_t limit = 100;   // 1..1000
};

struct JobListPage {
  std::vector<JobInfo> jobs{};  // by id
  std::string next_cursor{};    // set when more jobs may follow
};

struct SchedulerStats {
  // Jobs now, and their statistics summed.
  uint64_t jobs = 0, active = 0, paused = 0, finished = 0;
  uint64_t runs = 0, missed_runs = 0, skipped_runs = 0, completed_runs = 0, failed_runs = 0;
  uint64_t running = 0;  // tasks of jobs not yet ended
  // Since open, including jobs deleted meanwhile.
  uint64_t fired_total = 0, missed_total = 0, skipped_total = 0;
  // Firing lateness: when the timer handed a run's task to the engine minus its scheduled time.
  EngineStats::Percentiles lateness{};
  int64_t timer_cpu_us = 0;              // CPU time of the timer thread since open
  std::optional<int64_t> next_run_us{};  // the earliest next run of all jobs
};

struct SchedulerOptions {
  // The time zone of triggers without a "timezone" field. Default: UTC.
  std::string default_timezone = "UTC";
  // Statistics of ended runs reach the store at the job's next write, or after this long.
  std::chrono::milliseconds stats_flush_interval{1000};
  // Most jobs the scheduler holds (an Add beyond it is refused). Default: 1,000,000.
  size_t max_jobs = 1'000'000;
  // The timer thread sleeps at least this long between two passes: runs that fall due within
  // it wait for the next pass and are enqueued together. Under a dense timetable (thousands of
  // fires a second) this turns one wake-up per fire into one per interval, at the price of up to
  // this much lateness; a sparse timetable is not affected (the timer sleeps until its next run).
  // 0: wake for every run. Default: 500 µs.
  std::chrono::microseconds min_wake_interval{500};
};

class Scheduler {
 public:
  // Loads the jobs persisted in engine->store() and starts the timer thread; runs that fell due
  // while the process was down are handled at once, by the rules above. Errors: a bad
  // default_timezone (InvalidArgument), a store that cannot be read. A persisted job that no
  // longer parses (its time zone vanished from the system) is logged and left in the store.
  static Result<std::unique_ptr<Scheduler>> Open(Engine* engine, SchedulerOptions options = {});

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();

  // Adds a job (written to the store before this returns). InvalidArgument naming the field for
  // a bad spec (unknown job_function, bad trigger, a trigger that never fires again, ...);
  // FailedPrecondition when the id is taken or max_jobs are held.
  Result<JobInfo> Add(JobSpec spec);
  // Replaces the spec of job `id` (an edit: spec.id empty or `id`), validated as Add does. The
  // job keeps its statistics, its running tasks and its pause state (spec.paused is ignored: use
  // Pause and Resume); its timetable starts anew from now. NotFound for an unknown id.
  Result<JobInfo> Replace(std::string_view id, JobSpec spec);
  // NotFound for an unknown id.
  Result<JobInfo> Get(std::string_view id) const;
  Result<JobListPage> List(const JobListQuery& query) const;
  // Deletes the job; its tasks already enqueued run on. NotFound for an unknown id.
  Status Remove(std::string_view id);
  // Pause: no runs until resumed (idempotent). Resume: the next run is computed from now (runs
  // that fell due while paused are not made up). FailedPrecondition for a finished job.
  Result<JobInfo> Pause(std::string_view id);
  Result<JobInfo> Resume(std::string_view id);
  // Enqueues a run now, outside the timetable (the next run time stays). FailedPrecondition when
  // max_instances tasks of the job are running.
  Result<EnqueueResult> RunNow(std::string_view id);

  SchedulerStats Stats() const;

  // Stops the timer thread, waits for enqueues in flight and writes pending statistics.
  // Idempotent. Jobs stay in the store.
  void Stop();

  // Tests: blocks until the timer thread has handled every run due at the clock's current time
  // and the enqueues it started have been answered, or `timeout` (real time) passes. True when
  // caught up.
  bool TEST_WaitIdle(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  class Core;

 private:
  explicit Scheduler(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

// The unique key of the task of a job's run: "bmos.schedule:<job id>:<run>".
inline constexpr std::string_view kScheduleKeyPrefix = "bmos.schedule:";

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_SCHEDULER_H_
