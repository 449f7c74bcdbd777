#include "engine/handlers/handlers.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "engine/handlers/sample_data.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using namespace test_util;                  // NOLINT: test helpers
using namespace ::bmos::engine::test_util;  // NOLINT: engine test helpers

// Long enough (and generous on two loaded cores under sanitizers) for the big training file.
constexpr std::chrono::milliseconds kLongWait{120'000};

class HandlersEngineTest : public HandlerTest {
 protected:
  void Open(std::string handlers_queue = "ml") {
    EngineOptions o = MemoryOptions();
    o.groups = {WorkerGroupOptions{.name = "default", .queues = {"default"}, .workers = 2},
                WorkerGroupOptions{.name = "ml", .queues = {"ml"}, .workers = 1}};
    o.seed = 1;
    Result<std::unique_ptr<Engine>> e = Engine::Open(std::move(o));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    BmosHandlerOptions h;
    h.data_root = root();
    h.queue = std::move(handlers_queue);
    BMOS_ASSERT_OK(RegisterBmosHandlers(*engine_, h));
  }
  void TearDown() override {
    if (engine_) BMOS_EXPECT_OK(engine_->Stop(std::chrono::seconds(30)));
    engine_.reset();
  }
  // Runs a task to its end; its result when COMPLETED (a test failure otherwise).
  json::value Run(std::string name, boost::json::object data) {
    const TaskRecord r =
        WaitTerminal(*engine_, EnqueueOrFail(*engine_, Req(name, data)), kLongWait);
    EXPECT_EQ(r.state, TaskState::kCompleted) << name << ": " << Describe(r);
    EXPECT_EQ(r.spec->queue, "ml");
    return r.result_json.empty() ? json::value() : json::parse(r.result_json);
  }

  std::unique_ptr<Engine> engine_;
};

TEST_F(HandlersEngineTest, RegistersEveryHandlerOnTheQueue) {
  Open();
  EXPECT_THAT(engine_->HandlerNames(), IsSupersetOf(BmosHandlerNames()));
  EXPECT_THAT(BmosHandlerNames(),
              IsSupersetOf({"process_data", "data_processing", "check_data_quality", "train_model",
                            "batch_predictions", "extract_memory", "system_cleanup",
                            "retrain_models", "sync_inbox"}));
  // Registering twice clashes on the first name.
  BmosHandlerOptions h;
  h.data_root = root();
  EXPECT_EQ(RegisterBmosHandlers(*engine_, h).code(), Status::Code::kInvalidArgument);
}

TEST_F(HandlersEngineTest, RefusesAQueueNoGroupServesAndAnEmptyRoot) {
  Result<std::unique_ptr<Engine>> e = Engine::Open(MemoryOptions());
  ASSERT_TRUE(e.ok());
  BmosHandlerOptions h;
  EXPECT_EQ(RegisterBmosHandlers(**e, h).code(), Status::Code::kInvalidArgument);  // no root
  h.data_root = root();
  EXPECT_EQ(RegisterBmosHandlers(**e, h).code(), Status::Code::kInvalidArgument);  // no "ml"
  EXPECT_TRUE((*e)->HandlerNames().empty());
  h.queue = "default";
  BMOS_EXPECT_OK(RegisterBmosHandlers(**e, h));
  BMOS_EXPECT_OK((*e)->Stop());
}

TEST_F(HandlersEngineTest, BadInputFailsAtOnceWithoutRetries) {
  Open();
  struct Case {
    std::string name;
    boost::json::object data;
    std::string message;
  };
  std::ofstream(base() / "outside.csv") << "a\n1\n";
  fs::create_symlink(base() / "outside.csv", root() / "escape.csv");
  const std::vector<Case> cases = {
      {"process_data", {{"data_source", "missing.csv"}}, "does not exist"},
      {"process_data", {{"data_source", "../outside.csv"}}, "leaves the data root"},
      {"check_data_quality", {{"data_source", "/etc/passwd"}}, "is absolute"},
      {"data_processing", {{"data_source", "escape.csv"}}, "resolves outside the data root"},
      {"train_model", {{"data_source", "x.csv"}}, "field 'model_name' is required"},
      {"extract_memory", {{"feedback", "x.jsonl"}}, "unknown field 'feedback'"},
  };
  for (const Case& c : cases) {
    const TaskRecord r = WaitTerminal(*engine_, EnqueueOrFail(*engine_, Req(c.name, c.data)));
    EXPECT_EQ(r.state, TaskState::kFailed) << c.name;
    EXPECT_EQ(r.retry_count, 0) << c.name;
    EXPECT_THAT(r.error, HasSubstr(c.message)) << c.name;
  }
}

TEST_F(HandlersEngineTest, SampleDataEndToEnd) {
  Open();
  Result<SampleDataSummary> sample = GenerateSampleData(root() / "demo", 2000, 42);
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();

  const json::value cleaned = Run("data_processing", {{"data_source", "demo/sales_data.csv"}});
  EXPECT_EQ(cleaned.at("rows_in"), 2000);
  EXPECT_EQ(Num(cleaned.at("duplicates_removed")), static_cast<double>(sample->duplicates));
  EXPECT_EQ(cleaned.at("output").as_string(), "demo/sales_data_cleaned.csv");

  const json::value quality = Run("check_data_quality", {{"data_source", "demo/sales_data.csv"}});
  EXPECT_EQ(Num(quality.at("duplicate_rows")), static_cast<double>(sample->duplicates));
  EXPECT_GT(Num(quality.at("score")), 50);
  EXPECT_LT(Num(quality.at("score")), 100);
  EXPECT_TRUE(Exists("demo/sales_data.quality.json"));

  const json::value model =
      Run("train_model", {{"data_source", "demo/sales_data_cleaned.csv"},
                          {"target", "revenue"},
                          {"features", boost::json::array{"units", "price", "discount"}},
                          {"model_name", "sales"}});
  // revenue = 40 + 9.5 units + 4.2 price - 300 discount + noise, plus a few outliers.
  EXPECT_NEAR(Num(model.at("coefficients").at("units")), 9.5, 1.0);
  EXPECT_NEAR(Num(model.at("coefficients").at("price")), 4.2, 0.5);
  EXPECT_EQ(model.at("promoted"), true);

  const json::value predictions =
      Run("batch_predictions", {{"model_name", "sales"}, {"data_source", "demo/sales_data.csv"}});
  EXPECT_EQ(predictions.at("rows"), 2000);
  EXPECT_EQ(Num(predictions.at("missing_feature_rows")), static_cast<double>(sample->blank_cells));
  EXPECT_TRUE(Exists("demo/sales_data_predictions.csv"));

  const json::value memory = Run("extract_memory", {{"feedback_source", "demo/feedback.jsonl"}});
  EXPECT_EQ(Num(memory.at("items")), static_cast<double>(sample->feedback_lines));
  EXPECT_FALSE(memory.at("themes").as_array().empty());
  EXPECT_FALSE(memory.at("insights").as_array().empty());

  const json::value retrain = Run("retrain_models", {});
  EXPECT_EQ(retrain.at("unchanged").as_array().size(), 1u);
  Write("inbox/new.csv", "a,b\n1,2\n");
  const json::value inbox = Run("sync_inbox", {});
  EXPECT_EQ(inbox.at("processed").as_array().size(), 1u);
  const json::value cleanup = Run("system_cleanup", {{"older_than_days", 30}, {"dry_run", true}});
  EXPECT_EQ(cleanup.at("store").at("kind").as_string(), "memory");
  EXPECT_TRUE(TempFiles().empty());
}

TEST_F(HandlersEngineTest, CancellingALongTrainingEndsItCancelled) {
  Open();
  {
    // About 30 MB: seconds of reading, of which the test needs only the first moments.
    std::ofstream out(root() / "big.csv", std::ios::binary);
    out << "x1,x2,x3,y\n";
    char line[128];
    for (int i = 0; i < 1'000'000; ++i) {
      const double a = (i % 1000) * 0.01, b = (i % 777) * 0.03, c = (i % 313) * 0.1;
      std::snprintf(line, sizeof(line), "%.4f,%.4f,%.4f,%.4f\n", a, b, c, 3 * a - 2 * b + c + 5);
      out << line;
    }
    ASSERT_TRUE(out.good());
  }
  const TaskId id = EnqueueOrFail(
      *engine_,
      Req("train_model", {{"data_source", "big.csv"}, {"target", "y"}, {"model_name", "big"}}));
  // Running and past its first progress report: the reading loop is under way.
  Result<TaskRecord> running = WaitForRecord(
      *engine_, id,
      [](const TaskRecord& r) { return storage::IsTerminal(r.state) || r.progress > 0; },
      kLongWait);
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  ASSERT_EQ(running->state, TaskState::kRunning) << Describe(*running);
  BMOS_ASSERT_OK(engine_->Cancel(id));
  const TaskRecord done = WaitTerminal(*engine_, id, kLongWait);
  EXPECT_EQ(done.state, TaskState::kCancelled) << Describe(done);
  EXPECT_FALSE(Exists("models/big/v1.json"));
  EXPECT_FALSE(Exists("models/big/current.json"));
  EXPECT_TRUE(TempFiles().empty());
}

}  // namespace
}  // namespace bmos::engine::handlers
