// train_model, batch_predictions and retrain_models (engine/handlers/operations.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/handlers/operations.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

// y = 3 x1 - 2 x2 + 5 + noise (normal, sd `noise`), with a text column the default features skip.
std::string LinearCsv(int rows, double noise, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> x(0, 10);
  std::normal_distribution<double> e(0, noise);
  std::string csv = "x1,x2,label,y\n";
  for (int i = 0; i < rows; ++i) {
    const double x1 = x(rng), x2 = x(rng);
    const double y = 3 * x1 - 2 * x2 + 5 + (noise > 0 ? e(rng) : 0);
    char line[128];
    std::snprintf(line, sizeof(line), "%.6f,%.6f,row%d,%.6f\n", x1, x2, i, y);
    csv += line;
  }
  return csv;
}

class ModelTest : public HandlerTest {
 protected:
  Result<json::value> Train(std::string_view data) {
    TestJob job;
    return TrainModel(ws(), Obj(data), job);
  }
  Result<json::value> Predict(std::string_view data) {
    TestJob job;
    return BatchPredictions(ws(), Obj(data), job);
  }
  static double Coef(const json::value& r, std::string_view f) {
    return Num(r.at("coefficients").at(f));
  }
};

TEST_F(ModelTest, LinearModelRecoversTheCoefficients) {
  Write("data/lin.csv", LinearCsv(500, 0.01, 1));
  Result<json::value> r =
      Train(R"({"data_source": "data/lin.csv", "target": "y", "model_name": "lin"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->at("features").as_array(), ElementsAre("x1", "x2"));  // label is text
  EXPECT_NEAR(Coef(*r, "x1"), 3, 0.01);
  EXPECT_NEAR(Coef(*r, "x2"), -2, 0.01);
  EXPECT_NEAR(Num(r->at("intercept")), 5, 0.02);
  const json::value& validation = r->at("metrics").at("validation");
  EXPECT_GT(Num(validation.at("r2")), 0.9999);
  EXPECT_LT(Num(validation.at("rmse")), 0.02);
  EXPECT_LT(Num(validation.at("mae")), 0.02);
  // A fifth of the rows, give or take, by the deterministic split.
  EXPECT_GT(Num(validation.at("rows")), 60);
  EXPECT_LT(Num(validation.at("rows")), 140);
  EXPECT_EQ(Num(validation.at("rows")) + Num(r->at("metrics").at("train").at("rows")), 500);
  EXPECT_EQ(r->at("version"), 1);
  EXPECT_EQ(r->at("promoted"), true);
  EXPECT_TRUE(r->at("previous_version").is_null());
  EXPECT_EQ(r->at("rows_skipped"), 0);

  // The model file records what a retrain and a prediction need.
  const json::value model = ReadJson("models/lin/v1.json");
  EXPECT_EQ(model.at("version"), 1);
  EXPECT_EQ(model.at("target").as_string(), "y");
  EXPECT_EQ(model.at("model_type").as_string(), "linear");
  EXPECT_EQ(model.at("data_source").at("path").as_string(), "data/lin.csv");
  Result<FileFingerprint> fp = FingerprintFile(root() / "data/lin.csv", "lin", nullptr);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(model.at("data_source").at("hash").as_string(), fp->hash);
  EXPECT_EQ(Num(model.at("data_source").at("size")), static_cast<double>(fp->size));
  EXPECT_EQ(model.at("standardization").at("mean").as_array().size(), 2u);
  EXPECT_EQ(model.at("created_at").as_string(), "2026-01-01T00:00:00.000Z");  // the clock's
  EXPECT_EQ(ReadJson("models/lin/current.json").at("version"), 1);

  // The split is deterministic: the same data gives the same model.
  Result<json::value> again =
      Train(R"({"data_source": "data/lin.csv", "target": "y", "model_name": "lin"})");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->at("metrics"), r->at("metrics"));
  EXPECT_EQ(again->at("version"), 2);
}

TEST_F(ModelTest, RidgeShrinksAsTheFormulaSays) {
  // One feature, an exact line y = 2x + 1, every row in training (test_ratio 0). On standardised
  // x (population sd), ridge gives beta_z = sum(z yc) / (n + alpha) = 2 sd n / (n + alpha), so
  // the coefficient in x units is 2 n / (n + alpha): 1.0 for n = alpha = 10.
  std::string csv = "x,y\n";
  for (int i = 1; i <= 10; ++i) csv += std::to_string(i) + "," + std::to_string(2 * i + 1) + "\n";
  Write("line.csv", csv);
  Result<json::value> r = Train(
      R"({"data_source": "line.csv", "target": "y", "model_name": "r", "model_type": "ridge",
          "alpha": 10, "test_ratio": 0})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(Coef(*r, "x"), 1.0, 1e-9);
  EXPECT_NEAR(Num(r->at("intercept")), 12 - 1.0 * 5.5, 1e-9);  // mean y - coef * mean x
  EXPECT_TRUE(r->at("metrics").at("validation").is_null());
  EXPECT_THAT(r->at("warnings").as_array()[0].as_string().c_str(), HasSubstr("no validation rows"));

  // On the noisy plane: a small alpha stays close to least squares, a huge one shrinks to ~0.
  Write("lin.csv", LinearCsv(400, 0.5, 2));
  Result<json::value> small = Train(
      R"({"data_source": "lin.csv", "target": "y", "model_name": "r2", "model_type": "ridge",
          "alpha": 1.0})");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_NEAR(Coef(*small, "x1"), 3, 0.1);
  EXPECT_NEAR(Coef(*small, "x2"), -2, 0.1);
  Result<json::value> big = Train(
      R"({"data_source": "lin.csv", "target": "y", "model_name": "r3", "model_type": "ridge",
          "alpha": 1e7})");
  ASSERT_TRUE(big.ok());
  EXPECT_LT(std::fabs(Coef(*big, "x1")), 0.01);
  EXPECT_LT(std::fabs(Coef(*big, "x2")), 0.01);
  EXPECT_EQ(ReadJson("models/r3/v1.json").at("model_type").as_string(), "ridge");
}

TEST_F(ModelTest, AWorseVersionIsNotPromoted) {
  Write("good.csv", LinearCsv(300, 0.1, 3));
  Write("noisy.csv", LinearCsv(300, 5.0, 4));
  Result<json::value> v1 =
      Train(R"({"data_source": "good.csv", "target": "y", "model_name": "m"})");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->at("promoted"), true);  // the first version always is

  Result<json::value> v2 =
      Train(R"({"data_source": "noisy.csv", "target": "y", "model_name": "m"})");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->at("version"), 2);
  EXPECT_EQ(v2->at("promoted"), false);
  EXPECT_EQ(v2->at("previous_version"), 1);
  EXPECT_EQ(v2->at("current_version"), 1);
  EXPECT_TRUE(Exists("models/m/v2.json"));
  EXPECT_EQ(ReadJson("models/m/current.json").at("version"), 1);

  // As good as the current one (the same data): "not worse", so promoted.
  Result<json::value> v3 =
      Train(R"({"data_source": "good.csv", "target": "y", "model_name": "m"})");
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->at("promoted"), true);
  EXPECT_EQ(v3->at("previous_version"), 1);
  EXPECT_EQ(ReadJson("models/m/current.json").at("version"), 3);
}

TEST_F(ModelTest, RowsWithMissingOrNonNumericValuesAreSkippedAndCounted) {
  std::string csv = LinearCsv(100, 0.01, 5);
  csv += ",1,a,7\n";              // x1 missing: line 102
  csv += "1,2,b,n/a\n";           // target not a number: line 103
  csv += "\"1,000\",1,c,3001\n";  // thousands separator: usable
  Write("skip.csv", csv);
  Result<json::value> r =
      Train(R"({"data_source": "skip.csv", "target": "y", "features": ["x1", "x2"],
                "model_name": "s", "test_ratio": 0.1})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rows_skipped"), 2);
  EXPECT_THAT(r->at("skipped_lines").as_array(), ElementsAre(102, 103));
  EXPECT_EQ(r->at("rows_used"), 101);
}

TEST_F(ModelTest, BadParametersAndDataAreRefused) {
  Write("lin.csv", LinearCsv(50, 0.01, 6));
  Write("tiny.csv", "x,y\n1,2\n");
  Write("text.csv", "a,y\nfoo,1\nbar,2\n");
  struct Case {
    std::string data, message;
  };
  const std::vector<Case> cases = {
      {R"({"data_source": "lin.csv", "target": "revenue", "model_name": "m"})",
       "lin.csv: line 1: missing required column 'revenue'"},
      {R"({"data_source": "lin.csv", "target": "y", "features": ["x1", "nope"], "model_name": "m"})",
       "missing required column 'nope'"},
      {R"({"data_source": "lin.csv", "target": "y", "features": ["y"], "model_name": "m"})",
       "must not contain the target"},
      {R"({"data_source": "lin.csv", "target": "y", "model_name": "../evil"})", "model_name"},
      {R"({"data_source": "lin.csv", "target": "y", "model_name": "a/b"})", "model_name"},
      {R"({"data_source": "lin.csv", "target": "y", "model_name": "m", "model_type": "tree"})",
       "model_type"},
      {R"({"data_source": "lin.csv", "target": "y", "model_name": "m", "test_ratio": 0.95})",
       "test_ratio"},
      {R"({"data_source": "tiny.csv", "target": "y", "model_name": "m"})",
       "not enough usable rows"},
      {R"({"data_source": "text.csv", "target": "y", "model_name": "m"})",
       "no numeric column besides the target"},
      {R"({"data_source": "../lin.csv", "target": "y", "model_name": "m"})",
       "leaves the data root"},
  };
  for (const Case& c : cases) {
    Result<json::value> r = Train(c.data);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << c.data;
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << c.data;
  }
  EXPECT_FALSE(Exists("models/m/v1.json"));
  EXPECT_FALSE(fs::exists(base() / "evil"));
}

TEST_F(ModelTest, TrainsFromJsonLines) {
  std::string jsonl;
  for (int i = 0; i < 50; ++i) {
    jsonl += "{\"a\": " + std::to_string(i) + ", \"b\": " + std::to_string(i % 7) +
             ", \"t\": " + std::to_string(2 * i + 3 * (i % 7) + 1) + "}\n";
  }
  Write("t.jsonl", jsonl);
  Result<json::value> r = Train(R"({"data_source": "t.jsonl", "target": "t", "model_name": "j"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(Coef(*r, "a"), 2, 1e-6);
  EXPECT_NEAR(Coef(*r, "b"), 3, 1e-6);
}

TEST_F(ModelTest, CancellationWritesNoVersion) {
  Write("big.csv", LinearCsv(20000, 0.1, 7));
  for (int after : {0, 1, 5, 15}) {
    TestJob job(after);
    Result<json::value> r = TrainModel(
        ws(), Obj(R"({"data_source": "big.csv", "target": "y", "model_name": "c"})"), job);
    EXPECT_EQ(r.status().code(), Status::Code::kCancelled) << after;
  }
  EXPECT_FALSE(Exists("models/c/v1.json"));
  EXPECT_FALSE(Exists("models/c/current.json"));
  EXPECT_TRUE(TempFiles().empty());
}

TEST_F(ModelTest, PredictionsReportRowsWithMissingFeatures) {
  Write("train.csv", LinearCsv(200, 0.001, 8));
  ASSERT_TRUE(Train(R"({"data_source": "train.csv", "target": "y", "model_name": "p"})").ok());
  Write("new/batch.csv",
        "id,x1,x2\n"
        "a,1,1\n"
        "b,,2\n"     // x1 missing: line 3
        "c,2,abc\n"  // x2 not a number: line 4
        "d,\"1,000\",0\n"
        "e,0,0\n");
  Result<json::value> r = Predict(R"({"model_name": "p", "data_source": "new/batch.csv"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rows"), 5);
  EXPECT_EQ(r->at("predicted"), 3);
  EXPECT_EQ(r->at("missing_feature_rows"), 2);
  EXPECT_THAT(r->at("missing_feature_lines").as_array(), ElementsAre(3, 4));
  EXPECT_EQ(r->at("missing_by_feature").at("x1"), 1);
  EXPECT_EQ(r->at("missing_by_feature").at("x2"), 1);
  EXPECT_EQ(r->at("version"), 1);
  EXPECT_EQ(r->at("output").as_string(), "new/batch_predictions.csv");
  const auto rows = ParseCsv(Read("new/batch_predictions.csv"));
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_THAT(rows[0], ElementsAre("id", "x1", "x2", "prediction"));
  EXPECT_NEAR(std::stod(rows[1][3]), 3 - 2 + 5, 0.01);
  EXPECT_EQ(rows[2][3], "");  // never zero-filled
  EXPECT_EQ(rows[3][3], "");
  EXPECT_NEAR(std::stod(rows[4][3]), 3000 + 5, 0.5);
  EXPECT_NEAR(std::stod(rows[5][3]), 5, 0.01);
  EXPECT_EQ(rows[4][1], "1,000");  // input cells as they were
}

TEST_F(ModelTest, PredictionsUseTheVersionAskedFor) {
  Write("a.csv", LinearCsv(200, 0.001, 9));
  std::string shifted = "x1,x2,label,y\n";
  for (int i = 0; i < 200; ++i) {
    shifted += std::to_string(i % 13) + "," + std::to_string(i % 7) + ",r," +
               std::to_string(10 * (i % 13) + 1) + "\n";
  }
  Write("b.csv", shifted);
  ASSERT_TRUE(Train(R"({"data_source": "a.csv", "target": "y", "model_name": "v"})").ok());
  ASSERT_TRUE(Train(R"({"data_source": "b.csv", "target": "y", "model_name": "v"})").ok());
  Write("in.csv", "x1,x2,prediction\n1,0,old\n");
  Result<json::value> v2 =
      Predict(R"({"model_name": "v", "version": 2, "data_source": "in.csv", "output": "o2.csv"})");
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(v2->at("prediction_column").as_string(), "prediction_v2");
  EXPECT_NEAR(std::stod(ParseCsv(Read("o2.csv"))[1][3]), 11, 1e-6);
  Result<json::value> v1 =
      Predict(R"({"model_name": "v", "version": 1, "data_source": "in.csv", "output": "o1.csv"})");
  ASSERT_TRUE(v1.ok());
  EXPECT_NEAR(std::stod(ParseCsv(Read("o1.csv"))[1][3]), 8, 0.01);

  EXPECT_EQ(
      Predict(R"({"model_name": "v", "version": 9, "data_source": "in.csv"})").status().code(),
      Status::Code::kNotFound);
  EXPECT_EQ(Predict(R"({"model_name": "none", "data_source": "in.csv"})").status().code(),
            Status::Code::kNotFound);
  Write("nox.csv", "x2\n1\n");
  Result<json::value> missing = Predict(R"({"model_name": "v", "data_source": "nox.csv"})");
  EXPECT_EQ(missing.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("nox.csv: line 1: missing required column 'x1'"));
  EXPECT_FALSE(Exists("nox_predictions.csv"));
}

TEST_F(ModelTest, RetrainOnlyWhenTheDataChanged) {
  Write("d.csv", LinearCsv(200, 0.1, 10));
  ASSERT_TRUE(Train(R"({"data_source": "d.csv", "target": "y", "model_name": "alpha",
                        "model_type": "ridge", "alpha": 0.5})")
                  .ok());
  Write("e.csv", LinearCsv(200, 0.1, 11));
  ASSERT_TRUE(Train(R"({"data_source": "e.csv", "target": "y", "model_name": "beta"})").ok());
  fs::create_directories(root() / "models" / "empty");

  TestJob job;
  Result<json::value> r = RetrainModels(ws(), {}, job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("checked"), 3);
  EXPECT_THAT(r->at("unchanged").as_array(), ElementsAre("alpha", "beta"));
  EXPECT_EQ(r->at("skipped").as_array().size(), 1u);  // "empty": no current version
  EXPECT_TRUE(r->at("retrained").as_array().empty());

  // Touched (a new time), same content: unchanged. Changed content: retrained.
  fs::last_write_time(root() / "d.csv",
                      fs::last_write_time(root() / "d.csv") + std::chrono::hours(1));
  Write("e.csv", LinearCsv(250, 0.01, 12));  // less noise: the retrained version is better
  r = RetrainModels(ws(), {}, job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->at("unchanged").as_array(), ElementsAre("alpha"));
  ASSERT_EQ(r->at("retrained").as_array().size(), 1u);
  const json::value& beta = r->at("retrained").as_array()[0];
  EXPECT_EQ(beta.at("model_name").as_string(), "beta");
  EXPECT_EQ(beta.at("previous_version"), 1);
  EXPECT_EQ(beta.at("version"), 2);
  EXPECT_EQ(beta.at("promoted"), true);
  const json::value v2 = ReadJson("models/beta/v2.json");
  EXPECT_EQ(v2.at("model_type").as_string(), "linear");
  EXPECT_THAT(v2.at("features").as_array(), ElementsAre("x1", "x2"));
  EXPECT_EQ(ReadJson("models/alpha/v1.json").at("alpha"), 0.5);

  // Once retrained, the current version's fingerprint matches: nothing to do.
  r = RetrainModels(ws(), {}, job);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->at("retrained").as_array().empty());
  EXPECT_THAT(r->at("unchanged").as_array(), ElementsAre("alpha", "beta"));

  // Worse data: retrained once, not promoted, and not again for the same content.
  Write("d.csv", LinearCsv(200, 8.0, 13));
  r = RetrainModels(ws(), {}, job);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->at("retrained").as_array().size(), 1u);
  EXPECT_EQ(r->at("retrained").as_array()[0].at("promoted"), false);
  EXPECT_EQ(ReadJson("models/alpha/v2.json").at("model_type").as_string(), "ridge");
  r = RetrainModels(ws(), {}, job);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->at("retrained").as_array().empty());
  EXPECT_FALSE(Exists("models/alpha/v3.json"));
  EXPECT_EQ(RetrainModels(ws(), Obj(R"({"x": 1})"), job).status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace bmos::engine::handlers
