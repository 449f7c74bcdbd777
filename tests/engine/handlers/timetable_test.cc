#include "engine/handlers/timetable.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/handlers/handlers.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::ElementsAre;
using namespace test_util;                  // NOLINT: test helpers
using namespace ::bmos::engine::test_util;  // NOLINT: engine test helpers

constexpr int64_t kHour = 3'600'000'000;
constexpr int64_t kMidnight = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z, a Thursday

// The default timetable on a real scheduler over an engine with the BMOS handlers; a ManualClock
// starting at 00:00:30, so that no job is due when the test begins.
class TimetableTest : public HandlerTest {
 protected:
  void SetUp() override {
    EngineOptions o = MakeOptions(1, &clock_);
    o.groups.push_back(WorkerGroupOptions{.name = "ml", .queues = {"ml"}, .workers = 1});
    Result<std::unique_ptr<Engine>> e = Engine::Open(std::move(o));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    BmosHandlerOptions h;
    h.data_root = root();
    BMOS_ASSERT_OK(RegisterBmosHandlers(*engine_, h));
    Result<std::unique_ptr<Scheduler>> s = Scheduler::Open(engine_.get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    scheduler_ = std::move(s).value();
  }
  void TearDown() override {
    if (scheduler_) scheduler_->Stop();
    if (engine_) BMOS_EXPECT_OK(engine_->Stop(std::chrono::seconds(10)));
  }
  std::vector<std::string> JobIds() {
    std::vector<std::string> ids;
    Result<JobListPage> page = scheduler_->List({});
    EXPECT_TRUE(page.ok());
    if (page.ok()) {
      for (const JobInfo& j : page->jobs) ids.push_back(j.spec.id);
    }
    return ids;
  }

  ManualClock clock_{kMidnight + 30'000'000};
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(TimetableTest, InstallsTheThreeJobsWithTheirTimes) {
  const std::filesystem::path marker = base() / "installed";
  Result<std::vector<std::string>> added = InstallDefaultTimetable(*scheduler_, marker);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_THAT(*added, ElementsAre("daily_model_retrain", "hourly_data_sync", "weekly_cleanup"));
  EXPECT_TRUE(std::filesystem::exists(marker));

  Result<JobInfo> daily = scheduler_->Get("daily_model_retrain");
  ASSERT_TRUE(daily.ok());
  EXPECT_EQ(daily->spec.function, "retrain_models");
  EXPECT_EQ(*daily->next_run_us, kMidnight + 2 * kHour);  // 02:00
  Result<JobInfo> hourly = scheduler_->Get("hourly_data_sync");
  ASSERT_TRUE(hourly.ok());
  EXPECT_EQ(hourly->spec.function, "sync_inbox");
  EXPECT_EQ(*hourly->next_run_us, kMidnight + kHour);  // 01:00
  Result<JobInfo> weekly = scheduler_->Get("weekly_cleanup");
  ASSERT_TRUE(weekly.ok());
  EXPECT_EQ(weekly->spec.function, "system_cleanup");
  EXPECT_EQ(weekly->next_run_local, "2026-01-04T03:00:00+00:00");  // the first Sunday, 03:00
  EXPECT_EQ(json::serialize(weekly->spec.data), R"({"older_than_days":30,"dry_run":false})");
}

TEST_F(TimetableTest, InstallingAgainAddsNothingAndKeepsTheUsersChanges) {
  const std::filesystem::path marker = base() / "installed";
  ASSERT_TRUE(InstallDefaultTimetable(*scheduler_, marker).ok());
  // The user edits one job, pauses another and deletes the third.
  JobSpec later = DefaultTimetable()[0];
  later.trigger_config = {{"hour", 4}, {"minute", 30}};
  Result<JobInfo> edited = scheduler_->Replace("daily_model_retrain", later);
  ASSERT_TRUE(edited.ok()) << edited.status().ToString();
  EXPECT_EQ(edited->next_run_local, "2026-01-01T04:30:00+00:00");
  BMOS_ASSERT_OK(scheduler_->Pause("hourly_data_sync"));
  BMOS_ASSERT_OK(scheduler_->Remove("weekly_cleanup"));

  Result<std::vector<std::string>> again = InstallDefaultTimetable(*scheduler_, marker);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  EXPECT_THAT(JobIds(), ElementsAre("daily_model_retrain", "hourly_data_sync"));
  EXPECT_EQ(scheduler_->Get("daily_model_retrain")->next_run_local, "2026-01-01T04:30:00+00:00");
  EXPECT_EQ(scheduler_->Get("hourly_data_sync")->state, JobState::kPaused);

  // Without a marker (memory mode) the missing job comes back, the others are left alone.
  Result<std::vector<std::string>> unmarked = InstallDefaultTimetable(*scheduler_, {});
  ASSERT_TRUE(unmarked.ok());
  EXPECT_THAT(*unmarked, ElementsAre("weekly_cleanup"));
  EXPECT_EQ(scheduler_->Get("hourly_data_sync")->state, JobState::kPaused);
  Result<std::vector<std::string>> twice = InstallDefaultTimetable(*scheduler_, {});
  ASSERT_TRUE(twice.ok());
  EXPECT_TRUE(twice->empty());
  EXPECT_EQ(scheduler_->Stats().jobs, 3u);
}

TEST_F(TimetableTest, TheDefaultJobsRunTheirHandlers) {
  ASSERT_TRUE(InstallDefaultTimetable(*scheduler_, {}).ok());
  clock_.SetMicros(kMidnight + kHour);  // 01:00: hourly_data_sync on an empty inbox
  ASSERT_TRUE(scheduler_->TEST_WaitIdle());
  ASSERT_TRUE(Eventually([&] {
    return scheduler_->Get("hourly_data_sync")->stats.completed_runs == 1;
  })) << "runs: "
      << scheduler_->Get("hourly_data_sync")->stats.runs;
  EXPECT_EQ(scheduler_->Get("hourly_data_sync")->stats.runs, 1u);
  EXPECT_EQ(scheduler_->Get("daily_model_retrain")->stats.runs, 0u);
  Result<TaskRecord> task = engine_->Get(scheduler_->Get("hourly_data_sync")->stats.last_task_id);
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->spec->queue, "ml");
  EXPECT_EQ(task->state, TaskState::kCompleted);
}

}  // namespace
}  // namespace bmos::engine::handlers
