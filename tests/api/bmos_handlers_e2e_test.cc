// End to end through the HTTP API: the real bmos-taskd with its default BMOS handlers (an `ml`
// worker group, a data root) and default timetable. Sample data (engine/handlers/sample_data.h)
// goes through the first design's example request, then quality check, training, predictions and
// memory extraction; a path that leaves the data root fails the task at once; the default
// timetable is installed once and can be edited and paused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "api/http_client.h"
#include "engine/handlers/sample_data.h"
#include "tests/api/taskd_process.h"
#include "tests/storage/store_test_util.h"

namespace bmos::api {
namespace {

using storage::test_util::TempDir;
using test_util::kTaskd;
using test_util::TaskdProcess;
using test_util::TokenFor;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace json = boost::json;

class BmosHandlersE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.Sub("files");
    auto sample =
        engine::handlers::GenerateSampleData(std::filesystem::path(root_) / "demo", 2000, 7);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    server_ = std::make_unique<TaskdProcess>(
        kTaskd, dir_.Sub("data"),
        std::vector<std::string>{"--durability", "sync", "--bmos-data-dir", root_});
    ASSERT_TRUE(server_->Start()) << server_->log();
    HttpClientOptions o;
    o.timeout = 60s;
    o.bearer_token = TokenFor("admin");
    client_ = std::make_unique<HttpClient>(HttpEndpoint{"127.0.0.1", server_->port()}, o);
  }
  void TearDown() override {
    client_.reset();
    if (server_) {
      EXPECT_EQ(server_->Terminate(), std::optional<int>(0)) << server_->log();
    }
  }

  HttpResponse Must(storage::Result<HttpResponse> r) {
    if (!r.ok()) {
      ADD_FAILURE() << r.status().ToString();
      return HttpResponse{};
    }
    return std::move(r).value();
  }
  // Enqueues `name` with `data`; returns the task id.
  std::string Enqueue(const std::string& name, const std::string& data) {
    HttpResponse r = Must(client_->Post(
        "/api/v1/tasks/enqueue", R"({"task_name":")" + name + R"(","task_data":)" + data + "}"));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    return std::string(json::parse(r.body).at("task_id").as_string());
  }
  // The task's record once it is terminal (bounded wait).
  json::object Finished(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    json::object last;
    while (std::chrono::steady_clock::now() < deadline) {
      HttpResponse r = Must(client_->Get("/api/v1/tasks/" + id));
      if (r.status != 200) break;
      last = json::parse(r.body).as_object();
      const std::string status(last.at("status").as_string());
      if (status == "COMPLETED" || status == "FAILED" || status == "CANCELLED") return last;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "task " << id << " did not finish: " << json::serialize(last);
    return last;
  }
  // Runs a task to COMPLETED and returns its result.
  json::object Run(const std::string& name, const std::string& data) {
    json::object rec = Finished(Enqueue(name, data));
    EXPECT_EQ(rec["status"], "COMPLETED") << name << ": " << json::serialize(rec);
    EXPECT_EQ(rec["queue_name"], "ml") << name;
    return rec["result"].is_object() ? rec["result"].as_object() : json::object();
  }

  TempDir dir_{"taskd-bmos"};
  std::string root_;
  std::unique_ptr<TaskdProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(BmosHandlersE2eTest, SampleDataThroughEveryHandler) {
  // The first design's example request, under its old task name.
  json::object cleaned = Run(
      "data_processing", R"({"data_source":"demo/sales_data.csv","processing_type":"standard"})");
  EXPECT_GT(cleaned["rows_in"].to_number<int64_t>(), 1900);
  EXPECT_GT(cleaned["duplicates_removed"].to_number<int64_t>(), 0);
  const std::string output(cleaned["output"].as_string());
  EXPECT_EQ(output, "demo/sales_data_cleaned.csv");
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(root_) / output));

  json::object quality = Run("check_data_quality", R"({"data_source":"demo/sales_data.csv"})");
  const double score = quality["score"].to_number<double>();
  EXPECT_GT(score, 0);
  EXPECT_LT(score, 100);  // the sample has dirty rows
  EXPECT_FALSE(quality["issues"].as_array().empty());

  json::object model =
      Run("train_model", R"({"data_source":"demo/sales_data_cleaned.csv","target":"revenue",)"
                         R"("features":["units","price","discount"],"model_name":"sales"})");
  EXPECT_EQ(model["version"].to_number<int64_t>(), 1);
  EXPECT_TRUE(model["promoted"].as_bool());
  EXPECT_GT(model["metrics"].at("validation").at("r2").to_number<double>(), 0.5);

  json::object predicted =
      Run("batch_predictions", R"({"model_name":"sales","data_source":"demo/sales_data.csv"})");
  EXPECT_GT(predicted["predicted"].to_number<int64_t>(), 1000);
  EXPECT_GT(predicted["missing_feature_rows"].to_number<int64_t>(), 0);  // reported, not zeroed

  json::object memory = Run("extract_memory", R"({"feedback_source":"demo/feedback.jsonl"})");
  EXPECT_FALSE(memory["themes"].as_array().empty());
  EXPECT_FALSE(memory["insights"].as_array().empty());

  // A path out of the data root: FAILED at once, no retry, nothing read.
  json::object escaped =
      Finished(Enqueue("process_data", R"({"data_source":"../data/jwt.secret"})"));
  EXPECT_EQ(escaped["status"], "FAILED");
  EXPECT_EQ(escaped["retry_count"].to_number<int64_t>(), 0);
  EXPECT_THAT(std::string(escaped["error"].as_string()), HasSubstr("data root"));
}

TEST_F(BmosHandlersE2eTest, DefaultTimetableIsInstalledOnceAndEditable) {
  HttpResponse r = Must(client_->Get("/api/v1/tasks/scheduled/"));
  ASSERT_EQ(r.status, 200) << r.body;
  json::value page = json::parse(r.body);
  ASSERT_EQ(page.at("count").as_int64(), 3) << r.body;
  EXPECT_THAT(server_->log(), HasSubstr("default timetable installed"));

  // Edited (PUT keeps stats and pause state), paused, one deleted.
  r = Must(client_->Request(HttpMethod::kPut, "/api/v1/tasks/scheduled/daily_model_retrain",
                            R"({"job_name":"retrain at 04:30","job_function":"retrain_models",)"
                            R"("job_type":"cron","trigger_config":{"hour":4,"minute":30}})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(std::string(json::parse(r.body).at("next_run_time").as_string()),
              HasSubstr("T04:30:00.000Z"));
  EXPECT_EQ(Must(client_->Post("/api/v1/tasks/scheduled/hourly_data_sync/pause", "")).status, 200);
  EXPECT_EQ(Must(client_->Delete("/api/v1/tasks/scheduled/weekly_cleanup")).status, 200);
  // A run of the retraining now: nothing to retrain yet.
  r = Must(client_->Post("/api/v1/tasks/scheduled/daily_model_retrain/run", ""));
  ASSERT_EQ(r.status, 200) << r.body;
  json::object run = Finished(std::string(json::parse(r.body).at("task_id").as_string()));
  EXPECT_EQ(run["status"], "COMPLETED") << json::serialize(run);

  // A restart installs nothing again and keeps the user's changes.
  ASSERT_EQ(server_->Terminate(), std::optional<int>(0)) << server_->log();
  server_ = std::make_unique<TaskdProcess>(
      kTaskd, dir_.Sub("data"),
      std::vector<std::string>{"--durability", "sync", "--bmos-data-dir", root_});
  ASSERT_TRUE(server_->Start()) << server_->log();
  HttpClientOptions o;
  o.timeout = 60s;
  o.bearer_token = TokenFor("admin");
  client_ = std::make_unique<HttpClient>(HttpEndpoint{"127.0.0.1", server_->port()}, o);
  // (Both processes log to the same file: the line is there once, from the first start.)
  const std::string log = server_->log();
  const size_t first = log.find("default timetable installed");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(log.find("default timetable installed", first + 1), std::string::npos) << log;
  r = Must(client_->Get("/api/v1/tasks/scheduled/"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body).at("count").as_int64(), 2) << r.body;
  r = Must(client_->Get("/api/v1/tasks/scheduled/daily_model_retrain"));
  EXPECT_EQ(json::parse(r.body).at("job_name").as_string(), "retrain at 04:30");
  EXPECT_EQ(json::parse(r.body).at("stats").at("runs").as_int64(), 1);
  r = Must(client_->Get("/api/v1/tasks/scheduled/hourly_data_sync"));
  EXPECT_EQ(json::parse(r.body).at("state").as_string(), "paused");
}

}  // namespace
}  // namespace bmos::api
