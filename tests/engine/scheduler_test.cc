#include "engine/scheduler.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "storage/rocksdb_task_store.h"
#include "tests/engine/engine_test_util.h"
#include "tests/storage/store_test_util.h"

namespace bmos::engine {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;
namespace json = boost::json;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kStart = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z, ManualClock's start

json::object Obj(std::string_view text) { return json::parse(text).as_object(); }

// Every test moves a ManualClock and waits for the scheduler to catch up (TEST_WaitIdle); tasks
// run on real worker threads. Nothing sleeps to wait for a fire.
class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenEngine(); }
  void TearDown() override {
    if (scheduler_) scheduler_->Stop();
    gate_.Open();
    if (engine_) BMOS_EXPECT_OK(engine_->Stop(10s));
  }

  // The engine: memory mode, or the RocksDB store in dir_ (`durable`).
  void OpenEngine(bool durable = false) {
    EngineOptions o = MakeOptions(2, &clock_);
    if (durable) {
      storage::RocksDbStoreOptions so;
      so.path = dir_.path();
      so.durability = Durability::kSync;
      auto store = storage::RocksDbTaskStore::Open(so);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      o.durability = Durability::kSync;
      o.store = std::move(store).value();
    }
    auto engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    BMOS_ASSERT_OK(engine_->RegisterHandler("job.count", [this](TaskContext& ctx) -> HandlerResult {
      runs_.Add();
      return json::value(ctx.data_json());
    }));
    BMOS_ASSERT_OK(engine_->RegisterHandler("job.block", [this](TaskContext& ctx) -> HandlerResult {
      started_.Add();
      if (!gate_.Wait(&ctx)) return Status::Cancelled("gate not opened");
      return json::value(nullptr);
    }));
    BMOS_ASSERT_OK(engine_->RegisterHandler("job.fail", [](TaskContext&) -> HandlerResult {
      return Status::InvalidArgument("always fails");
    }));
    OpenScheduler();
  }

  void OpenScheduler() {
    auto s = Scheduler::Open(engine_.get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    scheduler_ = std::move(s).value();
  }

  // A restart: scheduler and engine stop, the store closes; then all open again.
  void Restart(int64_t downtime_us) {
    scheduler_->Stop();
    scheduler_.reset();
    BMOS_ASSERT_OK(engine_->Stop(100ms));  // blocked handlers are cancelled, not waited for
    engine_.reset();
    clock_.AdvanceMicros(downtime_us);
    OpenEngine(/*durable=*/true);
  }

  static JobSpec Interval(std::string id, std::string trigger, std::string function = "job.count") {
    JobSpec s;
    s.id = std::move(id);
    s.name = "job " + s.id;
    s.function = std::move(function);
    s.type = TriggerType::kInterval;
    s.trigger_config = Obj(trigger);
    return s;
  }

  JobInfo Add(JobSpec spec) {
    Result<JobInfo> r = scheduler_->Add(std::move(spec));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : JobInfo{};
  }

  JobInfo GetJob(std::string_view id) {
    Result<JobInfo> r = scheduler_->Get(id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : JobInfo{};
  }

  // Moves the clock and waits until the scheduler has handled what fell due.
  void Advance(int64_t micros) {
    clock_.AdvanceMicros(micros);
    ASSERT_TRUE(scheduler_->TEST_WaitIdle());
  }

  // Waits until every task of the job has ended (the job saw them end).
  void WaitRunsEnded(std::string_view id, uint64_t ended) {
    ASSERT_TRUE(Eventually([&] {
      JobStats s = GetJob(id).stats;
      return s.completed_runs + s.failed_runs + s.cancelled_runs >= ended;
    })) << "job "
        << id << " ended runs: " << GetJob(id).stats.completed_runs;
  }

  ManualClock clock_{kStart};
  storage::test_util::TempDir dir_{"sched"};
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Scheduler> scheduler_;
  Counter runs_, started_;
  Gate gate_;
};

TEST_F(SchedulerTest, IntervalJobRunsItsTaskOnEachFireTime) {
  JobSpec spec = Interval("every-10s", R"({"seconds": 10})");
  spec.data = Obj(R"({"file": "a.csv"})");
  JobInfo job = Add(spec);
  EXPECT_EQ(job.state, JobState::kActive);
  ASSERT_TRUE(job.next_run_us.has_value());
  EXPECT_EQ(*job.next_run_us, kStart + 10 * kSecond);  // one interval after creation
  EXPECT_EQ(job.next_run_local, "2026-01-01T00:00:10+00:00");

  Advance(9 * kSecond);
  EXPECT_EQ(GetJob("every-10s").stats.runs, 0u);
  Advance(1 * kSecond);
  ASSERT_TRUE(runs_.WaitAtLeast(1));
  WaitRunsEnded("every-10s", 1);  // else the next run is skipped (max_instances 1)
  Advance(10 * kSecond);
  ASSERT_TRUE(runs_.WaitAtLeast(2));
  WaitRunsEnded("every-10s", 2);

  job = GetJob("every-10s");
  EXPECT_EQ(job.stats.runs, 2u);
  EXPECT_EQ(job.stats.completed_runs, 2u);
  EXPECT_EQ(job.stats.missed_runs, 0u);
  EXPECT_EQ(*job.stats.last_run_us, kStart + 20 * kSecond);
  EXPECT_EQ(*job.next_run_us, kStart + 30 * kSecond);
  EXPECT_TRUE(job.running.empty());
  // The task carries the job's data.
  Result<TaskRecord> last = engine_->Get(job.stats.last_task_id);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->state, TaskState::kCompleted);
  EXPECT_EQ(last->spec->name, "job.count");
  EXPECT_EQ(json::parse(last->spec->data_json), json::parse(R"({"file": "a.csv"})"));
  EXPECT_EQ(*job.stats.last_task_state, TaskState::kCompleted);
}

TEST_F(SchedulerTest, CronJobRunsAtItsWallClockTime) {
  JobSpec spec;
  spec.id = "nightly";
  spec.name = "nightly";
  spec.function = "job.count";
  spec.type = TriggerType::kCron;
  spec.trigger_config = Obj(R"({"hour": 2, "minute": 0, "timezone": "Europe/Berlin"})");
  JobInfo job = Add(spec);
  // 2026-01-01T02:00 CET = 01:00Z.
  EXPECT_EQ(*job.next_run_us, kStart + 3600 * kSecond);
  EXPECT_EQ(job.next_run_local, "2026-01-01T02:00:00+01:00");
  EXPECT_EQ(job.timezone, "Europe/Berlin");
  Advance(3600 * kSecond);
  ASSERT_TRUE(runs_.WaitAtLeast(1));
  EXPECT_EQ(*GetJob("nightly").next_run_us, kStart + (24 + 1) * 3600 * kSecond);
}

TEST_F(SchedulerTest, CoalescedBacklogRunsOnceAndCountsTheRestAsMissed) {
  Add(Interval("coalesce", R"({"seconds": 10})"));  // misfire_grace_time 60 s, coalesce
  Advance(100 * kSecond);                           // due: 10, 20, ..., 100 s (the clock jumped)
  ASSERT_TRUE(runs_.WaitAtLeast(1));
  WaitRunsEnded("coalesce", 1);
  JobInfo job = GetJob("coalesce");
  EXPECT_EQ(job.stats.runs, 1u);
  EXPECT_EQ(job.stats.missed_runs, 9u);
  EXPECT_EQ(*job.stats.last_run_us, kStart + 100 * kSecond);  // the latest due run
  EXPECT_EQ(*job.next_run_us, kStart + 110 * kSecond);
  EXPECT_EQ(runs_.Get(), 1);
}

TEST_F(SchedulerTest, RunsLaterThanTheGraceTimeAreMissedNotRun) {
  JobSpec spec = Interval("late", R"({"seconds": 10})");
  spec.coalesce = false;
  spec.misfire_grace_seconds = 25;
  spec.max_instances = 100;
  Add(spec);
  Advance(100 * kSecond);  // due 10..100 s; only 80, 90 and 100 are within 25 s of now
  ASSERT_TRUE(runs_.WaitAtLeast(3));
  WaitRunsEnded("late", 3);
  JobInfo job = GetJob("late");
  EXPECT_EQ(job.stats.runs, 3u);
  EXPECT_EQ(job.stats.missed_runs, 7u);
  EXPECT_EQ(job.stats.skipped_runs, 0u);
  SchedulerStats stats = scheduler_->Stats();
  EXPECT_EQ(stats.missed_total, 7u);
  EXPECT_EQ(stats.fired_total, 3u);
}

TEST_F(SchedulerTest, WithoutGraceLimitEveryDueRunRuns) {
  JobSpec spec = Interval("no-limit", R"({"seconds": 10})");
  spec.coalesce = false;
  spec.misfire_grace_seconds = std::nullopt;
  spec.max_instances = 1000;
  Add(spec);
  Advance(3600 * kSecond);  // 360 runs due, an hour late at most
  ASSERT_TRUE(runs_.WaitAtLeast(360));
  WaitRunsEnded("no-limit", 360);
  JobInfo job = GetJob("no-limit");
  EXPECT_EQ(job.stats.runs, 360u);
  EXPECT_EQ(job.stats.missed_runs, 0u);
}

TEST_F(SchedulerTest, MaxInstancesSkipsRunsWhileOneIsStillRunning) {
  Add(Interval("overlap", R"({"seconds": 10})", "job.block"));
  Advance(10 * kSecond);
  ASSERT_TRUE(started_.WaitAtLeast(1));
  Advance(10 * kSecond);  // the first run still blocks: skipped
  Advance(10 * kSecond);
  JobInfo job = GetJob("overlap");
  EXPECT_EQ(job.stats.runs, 1u);
  EXPECT_EQ(job.stats.skipped_runs, 2u);
  ASSERT_EQ(job.running.size(), 1u);
  EXPECT_EQ(*job.stats.last_task_state, TaskState::kRunning);
  // Run-now respects max_instances too.
  Result<EnqueueResult> now = scheduler_->RunNow("overlap");
  EXPECT_EQ(now.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(now.status().message(), HasSubstr("max_instances 1"));

  gate_.Open();
  WaitRunsEnded("overlap", 1);
  Advance(10 * kSecond);
  ASSERT_TRUE(started_.WaitAtLeast(2));
  WaitRunsEnded("overlap", 2);
  job = GetJob("overlap");
  EXPECT_EQ(job.stats.runs, 2u);
  EXPECT_EQ(job.stats.skipped_runs, 2u);
  EXPECT_EQ(job.stats.completed_runs, 2u);
}

TEST_F(SchedulerTest, FailedRunsAreCounted) {
  Add(Interval("failing", R"({"seconds": 10})", "job.fail"));
  Advance(10 * kSecond);
  WaitRunsEnded("failing", 1);
  JobInfo job = GetJob("failing");
  EXPECT_EQ(job.stats.failed_runs, 1u);
  EXPECT_EQ(*job.stats.last_task_state, TaskState::kFailed);
  EXPECT_EQ(scheduler_->Stats().failed_runs, 1u);
}

TEST_F(SchedulerTest, PausedJobsDoNotRunAndResumeFromNow) {
  Add(Interval("pausable", R"({"seconds": 10})"));
  Result<JobInfo> paused = scheduler_->Pause("pausable");
  ASSERT_TRUE(paused.ok()) << paused.status().ToString();
  EXPECT_EQ(paused->state, JobState::kPaused);
  EXPECT_FALSE(paused->next_run_us.has_value());
  BMOS_EXPECT_OK(scheduler_->Pause("pausable"));  // idempotent
  Advance(35 * kSecond);
  EXPECT_EQ(GetJob("pausable").stats.runs, 0u);
  EXPECT_EQ(GetJob("pausable").stats.missed_runs, 0u);  // paused time is not a miss

  Result<JobInfo> resumed = scheduler_->Resume("pausable");
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->state, JobState::kActive);
  EXPECT_EQ(*resumed->next_run_us, kStart + 40 * kSecond);  // the first fire time after now
  Advance(5 * kSecond);
  ASSERT_TRUE(runs_.WaitAtLeast(1));
  EXPECT_EQ(GetJob("pausable").stats.runs, 1u);
  EXPECT_EQ(scheduler_->Stats().active, 1u);
}

TEST_F(SchedulerTest, RunNowEnqueuesAtOnceAndKeepsTheTimetable) {
  Add(Interval("manual", R"({"minutes": 5})"));
  Result<EnqueueResult> r = scheduler_->RunNow("manual");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->created);
  ASSERT_TRUE(runs_.WaitAtLeast(1));
  WaitRunsEnded("manual", 1);
  JobInfo job = GetJob("manual");
  EXPECT_EQ(job.stats.runs, 1u);
  EXPECT_EQ(job.stats.last_task_id, r->id.ToString());
  EXPECT_EQ(*job.next_run_us, kStart + 300 * kSecond);
  EXPECT_EQ(scheduler_->RunNow("nope").status().code(), Status::Code::kNotFound);
}

TEST_F(SchedulerTest, ReplaceEditsTheSpecAndKeepsStatsAndPauseState) {
  Add(Interval("edit", R"({"seconds": 10})"));
  Advance(10 * kSecond);
  WaitRunsEnded("edit", 1);
  BMOS_ASSERT_OK(scheduler_->Pause("edit"));
  JobSpec changed = Interval("", R"({"minutes": 1})");
  changed.name = "edited";
  changed.data = Obj(R"({"v": 2})");
  Result<JobInfo> r = scheduler_->Replace("edit", changed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->spec.id, "edit");
  EXPECT_EQ(r->spec.name, "edited");
  EXPECT_EQ(r->state, JobState::kPaused);  // still paused
  EXPECT_EQ(r->stats.runs, 1u);            // statistics kept
  EXPECT_EQ(r->stats.completed_runs, 1u);
  Result<JobInfo> resumed = scheduler_->Resume("edit");
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(*resumed->next_run_us, kStart + 70 * kSecond);  // one minute after the edit
  Advance(60 * kSecond);
  ASSERT_TRUE(runs_.WaitAtLeast(2));
  WaitRunsEnded("edit", 2);
  Result<TaskRecord> last = engine_->Get(GetJob("edit").stats.last_task_id);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(json::parse(last->spec->data_json), json::parse(R"({"v": 2})"));

  changed.id = "other";
  EXPECT_EQ(scheduler_->Replace("edit", changed).status().code(), Status::Code::kInvalidArgument);
  changed.id.clear();
  EXPECT_EQ(scheduler_->Replace("nope", changed).status().code(), Status::Code::kNotFound);
  changed.trigger_config = Obj(R"({"seconds": -1})");
  EXPECT_EQ(scheduler_->Replace("edit", changed).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(GetJob("edit").spec.name, "edited");  // a refused edit changes nothing
}

// A job is stored as its whole record under its id; each run rewrites only a small run-state
// record beside it (id + '\x01'), which a restart applies on top (JobsSurviveARestart...).
TEST_F(SchedulerTest, RunsRewriteOnlyTheRunStateRecord) {
  auto keys = [&] {
    std::vector<std::pair<std::string, size_t>> out;
    BMOS_EXPECT_OK(engine_->store().ForEachJob([&](std::string_view k, std::string_view v) {
      out.emplace_back(std::string(k), v.size());
    }));
    return out;
  };
  JobSpec spec = Interval("layout", R"({"seconds": 10})");
  spec.data = Obj(R"({"padding": "a job's spec is the larger part of its record"})");
  Add(spec);
  ASSERT_EQ(keys().size(), 1u);
  Advance(10 * kSecond);
  WaitRunsEnded("layout", 1);
  std::vector<std::pair<std::string, size_t>> after = keys();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].first, "layout");
  EXPECT_EQ(after[1].first, std::string("layout\x01"));
  EXPECT_LT(after[1].second, after[0].second);
  // A replaced spec is written whole again, the run state folded into it.
  Result<JobInfo> r = scheduler_->Replace("layout", Interval("", R"({"seconds": 20})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(keys().size(), 1u);
  BMOS_ASSERT_OK(scheduler_->Remove("layout"));
  EXPECT_TRUE(keys().empty());
}

TEST_F(SchedulerTest, DateJobRunsOnceThenIsFinished) {
  JobSpec spec;
  spec.id = "once";
  spec.name = "once";
  spec.function = "job.count";
  spec.type = TriggerType::kDate;
  spec.trigger_config = Obj(R"({"run_date": "2026-01-01T00:00:30Z"})");
  Add(spec);
  Advance(30 * kSecond);
  ASSERT_TRUE(runs_.WaitAtLeast(1));
  JobInfo job = GetJob("once");
  EXPECT_EQ(job.state, JobState::kFinished);
  EXPECT_FALSE(job.next_run_us.has_value());
  EXPECT_EQ(scheduler_->Pause("once").status().code(), Status::Code::kFailedPrecondition);
  Advance(3600 * kSecond);
  EXPECT_EQ(GetJob("once").stats.runs, 1u);
  EXPECT_EQ(scheduler_->Stats().finished, 1u);
}

TEST_F(SchedulerTest, RemovedJobsStopRunning) {
  Add(Interval("gone", R"({"seconds": 10})"));
  BMOS_EXPECT_OK(scheduler_->Remove("gone"));
  EXPECT_EQ(scheduler_->Get("gone").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(scheduler_->Remove("gone").code(), Status::Code::kNotFound);
  Advance(60 * kSecond);
  EXPECT_EQ(scheduler_->Stats().fired_total, 0u);
  EXPECT_EQ(runs_.Get(), 0);
}

TEST_F(SchedulerTest, InvalidJobsAreRefusedNamingTheField) {
  auto refused = [&](JobSpec spec, std::string_view field) {
    Result<JobInfo> r = scheduler_->Add(std::move(spec));
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << field;
    EXPECT_THAT(r.status().message(), HasSubstr(field));
  };
  refused(Interval("a", R"({"seconds": 10})", "no.such.task"), "job_function");
  refused(Interval("a", R"({"seconds": 0})"), "trigger_config");
  refused(Interval("a", R"({"hours": 1, "colour": 2})"), "trigger_config");
  refused(Interval("bad/id", R"({"seconds": 10})"), "job_id");
  JobSpec spec = Interval("a", R"({"seconds": 10})");
  spec.name.clear();
  refused(spec, "job_name");
  spec = Interval("a", R"({"seconds": 10})");
  spec.max_instances = 0;
  refused(spec, "max_instances");
  spec = Interval("a", R"({"seconds": 10})");
  spec.misfire_grace_seconds = 0;
  refused(spec, "misfire_grace_time");
  spec = Interval("a", R"({"seconds": 10})");
  spec.queue = "nowhere";
  refused(spec, "queue_name");
  spec = Interval("a", R"({"seconds": 10})");
  spec.type = TriggerType::kCron;
  spec.trigger_config = Obj(R"({"hour": 24})");
  refused(spec, "hour");
  spec.type = TriggerType::kDate;
  spec.trigger_config = Obj(R"({"run_date": "2025-06-01"})");  // before now: would never run
  refused(spec, "never fires");

  Add(Interval("dup", R"({"seconds": 10})"));
  EXPECT_EQ(scheduler_->Add(Interval("dup", R"({"seconds": 10})")).status().code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(scheduler_->Stats().jobs, 1u);  // nothing half-added
}

TEST_F(SchedulerTest, GeneratedIdsAndListing) {
  JobSpec spec = Interval("", R"({"seconds": 10})");
  spec.name = "generated";
  JobInfo a = Add(spec);
  EXPECT_EQ(a.spec.id.size(), 36u);  // a UUIDv7
  Add(Interval("b", R"({"seconds": 10})"));
  Add(Interval("c", R"({"seconds": 10})"));
  BMOS_ASSERT_OK(scheduler_->Pause("c"));
  Result<JobListPage> page = scheduler_->List({.limit = 2});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 2u);
  Result<JobListPage> rest = scheduler_->List({.after = page->next_cursor, .limit = 2});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->jobs.size(), 1u);
  EXPECT_TRUE(rest->next_cursor.empty());
  Result<JobListPage> paused = scheduler_->List({.state = JobState::kPaused});
  ASSERT_TRUE(paused.ok());
  ASSERT_EQ(paused->jobs.size(), 1u);
  EXPECT_EQ(paused->jobs[0].spec.id, "c");
  EXPECT_EQ(scheduler_->List({.limit = 0}).status().code(), Status::Code::kInvalidArgument);
}

// Jobs, pause state, next run times and statistics survive a restart; runs missed while the
// process was down follow misfire_grace_time and coalesce.
TEST_F(SchedulerTest, JobsSurviveARestartAndMissedRunsFollowTheRules) {
  scheduler_->Stop();
  scheduler_.reset();
  BMOS_ASSERT_OK(engine_->Stop(10s));
  engine_.reset();
  OpenEngine(/*durable=*/true);

  JobSpec within = Interval("within-grace", R"({"minutes": 10})");  // grace 60 s, coalesce
  Add(within);
  JobSpec beyond = Interval("beyond-grace", R"({"minutes": 10})");
  beyond.misfire_grace_seconds = 10;
  Add(beyond);
  JobSpec held = Interval("held", R"({"minutes": 10})");
  Add(held);
  BMOS_ASSERT_OK(scheduler_->Pause("held"));
  Advance(600 * kSecond);  // one run each before the restart
  ASSERT_TRUE(runs_.WaitAtLeast(2));
  WaitRunsEnded("within-grace", 1);
  WaitRunsEnded("beyond-grace", 1);

  // Down from 600 s to 3630 s: due at 1200, ..., 3600 s (5 runs), the latest 30 s late.
  Restart(3030 * kSecond);
  ASSERT_TRUE(scheduler_->TEST_WaitIdle());
  ASSERT_TRUE(runs_.WaitAtLeast(1));  // a new engine: runs_ counts on
  WaitRunsEnded("within-grace", 2);

  JobInfo w = GetJob("within-grace");
  EXPECT_EQ(w.stats.runs, 2u);            // one before, one coalesced run after
  EXPECT_EQ(w.stats.missed_runs, 4u);     // coalesced into it
  EXPECT_EQ(w.stats.completed_runs, 2u);  // the first one's count came back from the store
  EXPECT_EQ(*w.next_run_us, kStart + 4200 * kSecond);
  JobInfo b = GetJob("beyond-grace");
  EXPECT_EQ(b.stats.runs, 1u);
  EXPECT_EQ(b.stats.missed_runs, 5u);  // 4 coalesced + the latest, 30 s late > 10 s
  EXPECT_EQ(*b.next_run_us, kStart + 4200 * kSecond);
  JobInfo h = GetJob("held");
  EXPECT_EQ(h.state, JobState::kPaused);
  EXPECT_EQ(h.stats.runs, 0u);
  EXPECT_EQ(scheduler_->Stats().jobs, 3u);

  // Deletions are persisted too.
  BMOS_ASSERT_OK(scheduler_->Remove("held"));
  Restart(0);
  EXPECT_EQ(scheduler_->Get("held").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(scheduler_->Stats().jobs, 2u);
}

// A run still waiting at a restart is known to its job afterwards (its id is in the job's
// record): when it ends after the restart, the job counts it and frees its max_instances slot.
TEST_F(SchedulerTest, RunsWaitingAtARestartAreCountedWhenTheyEnd) {
  scheduler_->Stop();
  scheduler_.reset();
  BMOS_ASSERT_OK(engine_->Stop(10s));
  engine_.reset();
  OpenEngine(/*durable=*/true);
  // Both workers blocked: the job's run waits PENDING.
  for (int i = 0; i < 2; ++i) BMOS_ASSERT_OK(engine_->Enqueue({.name = "job.block"}));
  ASSERT_TRUE(started_.WaitAtLeast(2));
  Add(Interval("waiting", R"({"seconds": 10})"));
  Advance(10 * kSecond);
  JobInfo job = GetJob("waiting");
  ASSERT_EQ(job.running.size(), 1u);
  const TaskId run = job.running[0];
  EXPECT_EQ(engine_->Get(run)->state, TaskState::kPending);

  Restart(0);  // the run is recovered PENDING and runs on the new engine
  WaitRunsEnded("waiting", 1);
  job = GetJob("waiting");
  EXPECT_EQ(job.stats.completed_runs, 1u);
  EXPECT_TRUE(job.running.empty());
  EXPECT_EQ(job.stats.last_task_id, run.ToString());
}

// A crash after a run's task was written but before the job's record advanced: after the restart
// the job fires that run again, and the task's unique key finds the task already there.
TEST_F(SchedulerTest, ARunRepeatedAfterACrashDoesNotCreateASecondTask) {
  Add(Interval("crashy", R"({"seconds": 10})", "job.block"));
  // Stop the scheduler before the run, then create the run's task as the crashed process had.
  scheduler_->Stop();
  scheduler_.reset();
  EnqueueRequest task{.name = "job.block"};
  task.unique_key =
      std::string(kScheduleKeyPrefix) + "crashy:" + std::to_string(kStart + 10 * kSecond);
  Result<EnqueueResult> first = engine_->Enqueue(task);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(started_.WaitAtLeast(1));

  OpenScheduler();  // the job still says the run at 10 s is due
  Advance(10 * kSecond);
  JobInfo job = GetJob("crashy");
  EXPECT_EQ(job.stats.runs, 1u);
  EXPECT_EQ(job.stats.last_task_id, first->id.ToString());
  ASSERT_EQ(job.running.size(), 1u);
  EXPECT_EQ(job.running[0], first->id);
  gate_.Open();
  WaitRunsEnded("crashy", 1);
  EXPECT_EQ(started_.Get(), 1);  // one task, one run
}

TEST_F(SchedulerTest, StatsSumTheJobsAndMeasureLateness) {
  for (int i = 0; i < 5; ++i) Add(Interval("s" + std::to_string(i), R"({"seconds": 10})"));
  BMOS_ASSERT_OK(scheduler_->Pause("s4"));
  clock_.AdvanceMicros(10 * kSecond + 1500);  // 1.5 ms late, for the test's sake
  ASSERT_TRUE(scheduler_->TEST_WaitIdle());
  ASSERT_TRUE(runs_.WaitAtLeast(4));
  SchedulerStats s = scheduler_->Stats();
  EXPECT_EQ(s.jobs, 5u);
  EXPECT_EQ(s.active, 4u);
  EXPECT_EQ(s.paused, 1u);
  EXPECT_EQ(s.runs, 4u);
  EXPECT_EQ(s.fired_total, 4u);
  EXPECT_EQ(s.lateness.count, 4u);
  EXPECT_GE(s.lateness.p50_ms, 1.4);  // the histogram's lower bound of 1500 us
  EXPECT_LE(s.lateness.p50_ms, 1.5);
  EXPECT_EQ(*s.next_run_us, kStart + 20 * kSecond);
}

}  // namespace
}  // namespace bmos::engine
