#include "engine/typed_task.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <mutex>
#include <string>
#include <vector>

#include "tests/engine/engine_test_util.h"

namespace bmos::engine {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

// The args of a data-cleaning task, serialised through Boost.JSON's tag_invoke customisation.
struct CleanArgs {
  std::string file;
  int64_t rows = 0;
};

void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const CleanArgs& args) {
  jv = boost::json::object{{"file", args.file}, {"rows", args.rows}};
}

CleanArgs tag_invoke(boost::json::value_to_tag<CleanArgs>, const boost::json::value& jv) {
  const boost::json::object& o = jv.as_object();
  return CleanArgs{std::string(o.at("file").as_string()), o.at("rows").as_int64()};
}

// Args that do not serialise to an object.
struct NotAnObject {
  int value = 0;
};

void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const NotAnObject& a) {
  jv = a.value;
}

NotAnObject tag_invoke(boost::json::value_to_tag<NotAnObject>, const boost::json::value& jv) {
  return NotAnObject{static_cast<int>(jv.as_int64())};
}

class TypedTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Engine>> r = Engine::Open(MakeOptions(2, nullptr, {"default", "high"}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
  }
  Engine& engine() { return *engine_; }

  std::mutex mu_;
  std::vector<CleanArgs> seen_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(TypedTaskTest, DelayRunsTheHandlerWithTheArgs) {
  Result<TaskDef<CleanArgs>> clean = TaskDef<CleanArgs>::Define(
      engine(), "clean", HandlerOptions{},
      [this](const CleanArgs& args, TaskContext&) -> HandlerResult {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(args);
        return boost::json::value(boost::json::object{{"cleaned", args.rows * 2}});
      });
  BMOS_ASSERT_OK(clean);
  EXPECT_EQ(clean->name(), "clean");
  EXPECT_EQ(engine().HandlerNames(), std::vector<std::string>{"clean"});

  Result<TaskId> id = clean->Delay(CleanArgs{.file = "sales.csv", .rows = 21});
  BMOS_ASSERT_OK(id);
  TaskRecord r = WaitTerminal(engine(), *id);
  EXPECT_EQ(r.state, TaskState::kCompleted) << Describe(r);
  EXPECT_EQ(r.spec->name, "clean");
  EXPECT_EQ(boost::json::parse(r.spec->data_json),
            boost::json::parse(R"({"file":"sales.csv","rows":21})"));
  EXPECT_EQ(boost::json::parse(r.result_json), boost::json::parse(R"({"cleaned":42})"));
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].file, "sales.csv");
  EXPECT_EQ(seen_[0].rows, 21);
}

TEST_F(TypedTaskTest, DefaultsComeFromTheDefinition) {
  Result<TaskDef<CleanArgs>> clean = TaskDef<CleanArgs>::Define(
      engine(), "clean",
      HandlerOptions{
          .queue = "high", .priority = Priority::kHigh, .max_retries = 6, .timeout = 2500ms},
      [](const CleanArgs&, TaskContext&) -> HandlerResult { return NoopResult(); });
  BMOS_ASSERT_OK(clean);
  Result<TaskId> id = clean->Delay(CleanArgs{.file = "a", .rows = 1});
  BMOS_ASSERT_OK(id);
  TaskRecord r = WaitTerminal(engine(), *id);
  EXPECT_EQ(r.state, TaskState::kCompleted);
  EXPECT_EQ(r.spec->queue, "high");
  EXPECT_EQ(r.spec->priority, Priority::kHigh);
  EXPECT_EQ(r.spec->max_retries, 6);
  EXPECT_EQ(r.spec->timeout_ms, 2500);
}

TEST_F(TypedTaskTest, ApplyAsyncOverridesTheDefaults) {
  Result<TaskDef<CleanArgs>> clean = TaskDef<CleanArgs>::Define(
      engine(), "clean", WithPriority(Priority::kLow),
      [](const CleanArgs&, TaskContext&) -> HandlerResult { return NoopResult(); });
  BMOS_ASSERT_OK(clean);
  CallOptions call;
  call.queue = "high";
  call.priority = Priority::kCritical;
  call.max_retries = 0;
  call.timeout = 900ms;
  call.delay = std::chrono::hours(1);
  call.unique_key = "clean:sales.csv";
  Result<EnqueueResult> first = clean->ApplyAsync(CleanArgs{.file = "sales.csv", .rows = 3}, call);
  BMOS_ASSERT_OK(first);
  EXPECT_TRUE(first->created);
  Result<TaskRecord> r = engine().Get(first->id);
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kPending);
  EXPECT_EQ(r->spec->queue, "high");
  EXPECT_EQ(r->spec->priority, Priority::kCritical);
  EXPECT_EQ(r->spec->max_retries, 0);
  EXPECT_EQ(r->spec->timeout_ms, 900);
  EXPECT_EQ(r->spec->unique_key, "clean:sales.csv");
  EXPECT_GE(r->run_at_ms, r->spec->created_ms + 3'599'000);

  // The unique key is live: the same task comes back.
  Result<EnqueueResult> second = clean->ApplyAsync(CleanArgs{.file = "sales.csv", .rows = 3}, call);
  BMOS_ASSERT_OK(second);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->id, first->id);

  // ETA instead of delay.
  CallOptions eta_call;
  eta_call.eta_ms = engine().clock().NowMillis() + 3'600'000;
  Result<EnqueueResult> eta = clean->ApplyAsync(CleanArgs{.file = "b", .rows = 0}, eta_call);
  BMOS_ASSERT_OK(eta);
  EXPECT_EQ(engine().Get(eta->id)->state, TaskState::kPending);
  EXPECT_EQ(engine().Get(eta->id)->spec->queue, "default");
  EXPECT_EQ(engine().Get(eta->id)->spec->priority, Priority::kLow);
}

TEST_F(TypedTaskTest, ApplyAsyncErrorsAsEnqueue) {
  Result<TaskDef<CleanArgs>> clean = TaskDef<CleanArgs>::Define(
      engine(), "clean", HandlerOptions{},
      [](const CleanArgs&, TaskContext&) -> HandlerResult { return NoopResult(); });
  BMOS_ASSERT_OK(clean);
  CallOptions unserved;
  unserved.queue = "nowhere";
  Result<EnqueueResult> r = clean->ApplyAsync(CleanArgs{}, unserved);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  CallOptions too_many;
  too_many.max_retries = 5000;
  r = clean->ApplyAsync(CleanArgs{}, too_many);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(TypedTaskTest, ArgsThatDoNotConvertFailWithoutRetry) {
  int calls = 0;
  Result<TaskDef<CleanArgs>> clean = TaskDef<CleanArgs>::Define(
      engine(), "clean", WithRetries(3), [&calls](const CleanArgs&, TaskContext&) -> HandlerResult {
        ++calls;
        return NoopResult();
      });
  BMOS_ASSERT_OK(clean);
  // Someone enqueues "clean" by name with data of the wrong shape (e.g. through the HTTP API).
  TaskId id = EnqueueOrFail(engine(), Req("clean", {{"file", 5}}));
  TaskRecord r = WaitTerminal(engine(), id);
  EXPECT_EQ(r.state, TaskState::kFailed) << Describe(r);
  EXPECT_EQ(r.retry_count, 0);
  EXPECT_THAT(r.error, HasSubstr("do not match"));
  EXPECT_EQ(calls, 0);
}

TEST_F(TypedTaskTest, DefineErrorsAsRegisterHandler) {
  auto fn = [](const CleanArgs&, TaskContext&) -> HandlerResult { return NoopResult(); };
  BMOS_ASSERT_OK(TaskDef<CleanArgs>::Define(engine(), "clean", HandlerOptions{}, fn));
  Result<TaskDef<CleanArgs>> dup = TaskDef<CleanArgs>::Define(engine(), "clean", {}, fn);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), Status::Code::kInvalidArgument);
  Result<TaskDef<CleanArgs>> unserved =
      TaskDef<CleanArgs>::Define(engine(), "other", OnQueue("gpu"), fn);
  ASSERT_FALSE(unserved.ok());
  EXPECT_EQ(unserved.status().code(), Status::Code::kInvalidArgument);
  Result<TaskDef<CleanArgs>> empty = TaskDef<CleanArgs>::Define(engine(), "", {}, fn);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(TypedTaskTest, NonObjectArgsAreRefusedAtEnqueue) {
  Result<TaskDef<NotAnObject>> def = TaskDef<NotAnObject>::Define(
      engine(), "scalar", HandlerOptions{},
      [](const NotAnObject&, TaskContext&) -> HandlerResult { return NoopResult(); });
  BMOS_ASSERT_OK(def);
  Result<TaskId> id = def->Delay(NotAnObject{.value = 3});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(TypedTaskTest, CopiesShareTheDefinition) {
  Result<TaskDef<CleanArgs>> clean =
      TaskDef<CleanArgs>::Define(engine(), "clean", HandlerOptions{},
                                 [](const CleanArgs& args, TaskContext& ctx) -> HandlerResult {
                                   return boost::json::value(boost::json::object{
                                       {"file", args.file}, {"attempt", ctx.attempt()}});
                                 });
  BMOS_ASSERT_OK(clean);
  TaskDef<CleanArgs> copy = *clean;
  Result<TaskId> id = copy.Delay(CleanArgs{.file = "x.csv", .rows = 1});
  BMOS_ASSERT_OK(id);
  TaskRecord r = WaitTerminal(engine(), *id);
  EXPECT_EQ(boost::json::parse(r.result_json),
            boost::json::parse(R"({"file":"x.csv","attempt":1})"));
}

}  // namespace
}  // namespace bmos::engine
