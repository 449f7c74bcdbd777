#include "engine/task_context.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <mutex>
#include <string>

#include "engine/engine.h"
#include "tests/engine/engine_test_util.h"

namespace bmos::engine {
namespace {

using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

// What a handler saw through its context.
struct Seen {
  std::string id_string;
  TaskId id;
  std::string name, queue, data_json;
  Priority priority = Priority::kLow;
  int attempt = 0;
  int max_retries = -1;
  boost::json::value data;
  bool cancelled = true;
};

class TaskContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Engine>> r = Engine::Open(MakeOptions(2, nullptr, {"default", "high"}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
  }
  Engine& engine() { return *engine_; }

  std::mutex mu_;
  Seen seen_;
  Gate gate1_, gate2_;
  Counter stage_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(TaskContextTest, ExposesTheTask) {
  BMOS_ASSERT_OK(engine().RegisterHandler("inspect", [this](TaskContext& ctx) -> HandlerResult {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.id = ctx.id();
    seen_.id_string = ctx.id_string();
    seen_.name = ctx.name();
    seen_.queue = ctx.queue();
    seen_.priority = ctx.priority();
    seen_.attempt = ctx.attempt();
    seen_.max_retries = ctx.max_retries();
    seen_.data_json = ctx.data_json();
    seen_.data = ctx.data();
    seen_.cancelled = ctx.cancelled() || ctx.cancel_token().cancelled();
    return NoopResult();
  }));
  EnqueueRequest request = Req("inspect", {{"file", "a.csv"}, {"n", 3}});
  request.queue = "high";
  request.priority = Priority::kHigh;
  request.max_retries = 4;
  TaskId id = EnqueueOrFail(engine(), request);
  EXPECT_EQ(WaitTerminal(engine(), id).state, TaskState::kCompleted);

  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(seen_.id, id);
  EXPECT_EQ(seen_.id_string, id.ToString());
  EXPECT_EQ(seen_.name, "inspect");
  EXPECT_EQ(seen_.queue, "high");
  EXPECT_EQ(seen_.priority, Priority::kHigh);
  EXPECT_EQ(seen_.attempt, 1);
  EXPECT_EQ(seen_.max_retries, 4);
  EXPECT_EQ(boost::json::parse(seen_.data_json), boost::json::parse(R"({"file":"a.csv","n":3})"));
  EXPECT_EQ(seen_.data, boost::json::parse(R"({"file":"a.csv","n":3})"));
  EXPECT_FALSE(seen_.cancelled);
}

TEST_F(TaskContextTest, EmptyDataIsAnEmptyObject) {
  BMOS_ASSERT_OK(engine().RegisterHandler("inspect", [this](TaskContext& ctx) -> HandlerResult {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.data = ctx.data();
    return NoopResult();
  }));
  EXPECT_EQ(WaitTerminal(engine(), EnqueueOrFail(engine(), Req("inspect"))).state,
            TaskState::kCompleted);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_TRUE(seen_.data.is_object());
  EXPECT_TRUE(seen_.data.as_object().empty());
}

TEST_F(TaskContextTest, ProgressIsVisibleWhileRunning) {
  BMOS_ASSERT_OK(engine().RegisterHandler("work", [this](TaskContext& ctx) -> HandlerResult {
    ctx.ReportProgress(0.25, "read 1 of 4 files");
    stage_.Add();
    if (!gate1_.Wait(&ctx)) return Status::Internal("gate 1");
    ctx.ReportProgress(1.7, "over the top");  // clamped to 1
    stage_.Add();
    if (!gate2_.Wait(&ctx)) return Status::Internal("gate 2");
    ctx.ReportProgress(-3);  // clamped to 0, message cleared or kept: not asserted
    stage_.Add();
    return NoopResult();
  }));
  TaskId id = EnqueueOrFail(engine(), Req("work"));

  ASSERT_TRUE(stage_.WaitAtLeast(1));
  Result<TaskRecord> r = engine().Get(id);
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kRunning);
  EXPECT_GT(r->started_ms, 0);
  EXPECT_DOUBLE_EQ(r->progress, 0.25);
  EXPECT_EQ(r->progress_message, "read 1 of 4 files");
  // The list view shows live progress too.
  Result<ListPage> page = engine().List(Query(TaskState::kRunning));
  BMOS_ASSERT_OK(page);
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].id(), id);

  gate1_.Open();
  ASSERT_TRUE(stage_.WaitAtLeast(2));
  r = engine().Get(id);
  BMOS_ASSERT_OK(r);
  EXPECT_DOUBLE_EQ(r->progress, 1.0);
  EXPECT_EQ(r->progress_message, "over the top");

  gate2_.Open();
  ASSERT_TRUE(stage_.WaitAtLeast(3));
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kCompleted);
  EXPECT_GE(done.progress, 0.0);
  EXPECT_LE(done.progress, 1.0);
}

TEST_F(TaskContextTest, AttemptCountsRetries) {
  EngineOptions o = MakeOptions(1);
  o.retry.base = 1ms;
  o.retry.cap = 1ms;
  o.retry.jitter = 0;
  engine_.reset();
  Result<std::unique_ptr<Engine>> r = Engine::Open(o);
  BMOS_ASSERT_OK(r);
  engine_ = std::move(r).value();
  std::vector<int> attempts;
  BMOS_ASSERT_OK(engine().RegisterHandler("flaky", [&](TaskContext& ctx) -> HandlerResult {
    {
      std::lock_guard<std::mutex> lock(mu_);
      attempts.push_back(ctx.attempt());
    }
    if (ctx.attempt() < 3) return Status::Internal("again");
    return boost::json::value(ctx.attempt());
  }));
  EnqueueRequest request = Req("flaky");
  request.max_retries = 5;
  TaskRecord done = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(done.state, TaskState::kCompleted);
  EXPECT_EQ(done.retry_count, 2);
  EXPECT_EQ(done.result_json, "3");
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3}));
}

}  // namespace
}  // namespace bmos::engine
