// check_data_quality (engine/handlers/operations.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/handlers/operations.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

class QualityTest : public HandlerTest {
 protected:
  Result<json::value> Run(std::string_view data) {
    TestJob job;
    return CheckDataQuality(ws(), Obj(data), job);
  }
  static const json::object& Column(const json::value& report, std::string_view name) {
    for (const json::value& c : report.at("column_stats").as_array()) {
      if (c.at("name").as_string() == name) return c.as_object();
    }
    static const json::object none;
    ADD_FAILURE() << "no column " << name;
    return none;
  }
  static std::vector<std::string> Issues(const json::value& report) {
    std::vector<std::string> out;
    for (const json::value& i : report.at("issues").as_array()) out.emplace_back(i.as_string());
    return out;
  }
};

TEST_F(QualityTest, MeasuresMissingValuesOutliersAndDuplicates) {
  // 20 rows: value is 10..19 except one outlier (1000); note is missing in 5 rows; 2 duplicates.
  std::string csv = "id,value,note\n";
  for (int i = 0; i < 18; ++i) {
    const int v = i == 7 ? 1000 : 10 + i % 10;
    csv += std::to_string(i) + "," + std::to_string(v) + "," + (i % 4 == 0 ? "" : "ok") + "\n";
  }
  csv += "1,11,ok\n2,12,ok\n";  // duplicates of rows 1 and 2
  Write("data/q.csv", csv);
  Result<json::value> r = Run(R"({"data_source": "data/q.csv"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rows"), 20);
  EXPECT_EQ(r->at("columns"), 3);
  EXPECT_EQ(r->at("duplicate_rows"), 2);

  const json::object& note = Column(*r, "note");
  EXPECT_EQ(note.at("missing"), 5);  // i = 0, 4, 8, 12, 16
  EXPECT_DOUBLE_EQ(Num(note.at("missing_ratio")), 0.25);
  EXPECT_EQ(note.at("type").as_string(), "text");
  EXPECT_EQ(note.at("distinct"), 1);

  const json::object& value = Column(*r, "value");
  EXPECT_EQ(value.at("type").as_string(), "integer");
  EXPECT_EQ(value.at("missing"), 0);
  EXPECT_EQ(value.at("outliers"), 1);
  const json::object& example = value.at("outlier_examples").as_array()[0].as_object();
  EXPECT_EQ(example.at("line"), 9);  // row i = 7 is on line 9
  EXPECT_DOUBLE_EQ(Num(example.at("value")), 1000);
  EXPECT_DOUBLE_EQ(Num(value.at("min")), 10);
  EXPECT_DOUBLE_EQ(Num(value.at("max")), 1000);
  EXPECT_DOUBLE_EQ(Num(value.at("median")), 13.5);

  const std::vector<std::string> issues = Issues(*r);
  EXPECT_THAT(issues, Contains(HasSubstr("column 'note': 5 missing values (25.0%)")));
  EXPECT_THAT(issues, Contains(HasSubstr("column 'value': 1 outliers")));
  EXPECT_THAT(issues, Contains(HasSubstr("2 duplicate rows")));

  // Score: 100 (1 - 0.4 m - 0.2 d - 0.3 v - 0.1 o) with m = 5/60, d = 2/20, v = 0,
  // o = 1/40 (40 non-empty numeric cells: id and value).
  const double expected = 100 * (1 - 0.4 * 5 / 60 - 0.2 * 2 / 20 - 0.1 * 1 / 40);
  EXPECT_NEAR(Num(r->at("score")), expected, 0.051);

  // The report is saved beside the data and holds what the result says.
  EXPECT_EQ(r->at("report").as_string(), "data/q.quality.json");
  const json::value saved = ReadJson("data/q.quality.json");
  EXPECT_EQ(saved.at("issues"), r->at("issues"));
  EXPECT_EQ(saved.at("rows"), r->at("rows"));
  EXPECT_DOUBLE_EQ(Num(saved.at("score")), Num(r->at("score")));
  EXPECT_EQ(saved.at("column_stats").as_array().size(), 3u);
}

TEST_F(QualityTest, ReportsValuesThatDoNotFitTheColumnType) {
  Write("t.csv", "day,amount\n2026-01-01,1\n2026-01-02,2\nnot a date,3\n2026-01-04,three\n");
  Result<json::value> r = Run(R"({"data_source": "t.csv", "output": "reports/t.json"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Column(*r, "day").at("invalid"), 1);
  EXPECT_EQ(Column(*r, "amount").at("invalid"), 1);
  EXPECT_THAT(Issues(*r),
              Contains(HasSubstr("column 'amount' (integer): 1 values are not of that type, e.g. "
                                 "'three' at line 5")));
  EXPECT_TRUE(Exists("reports/t.json"));
  EXPECT_LT(Num(r->at("score")), 100);
}

TEST_F(QualityTest, CleanDataScoresOneHundred) {
  Write("clean.csv", "a,b\n1,x\n2,y\n3,z\n");
  Result<json::value> r = Run(R"({"data_source": "clean.csv"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(Num(r->at("score")), 100);
  EXPECT_TRUE(r->at("issues").as_array().empty());
}

TEST_F(QualityTest, ZeroMadFallsBackToTheMeanAbsoluteDeviation) {
  // More than half the values equal: the MAD is 0, the outlier is still found.
  std::string csv = "v\n";
  for (int i = 0; i < 12; ++i) csv += "5\n";
  csv += "6\n7\n500\n";
  Write("z.csv", csv);
  Result<json::value> r = Run(R"({"data_source": "z.csv"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(Num(Column(*r, "v").at("mad")), 0);
  EXPECT_EQ(Column(*r, "v").at("outliers"), 1);
}

TEST_F(QualityTest, BadInputIsRefusedAndNoReportIsLeft) {
  Write("bad.csv", "a,b\n1,2,3\n");
  Result<json::value> r = Run(R"({"data_source": "bad.csv"})");
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("bad.csv: line 2, column 5"));
  EXPECT_FALSE(Exists("bad.quality.json"));
  EXPECT_EQ(Run(R"({"data_source": "../etc/passwd"})").status().code(),
            Status::Code::kInvalidArgument);
  TestJob cancelled(0);
  Write("ok.csv", "a\n1\n");
  EXPECT_EQ(CheckDataQuality(ws(), Obj(R"({"data_source": "ok.csv"})"), cancelled).status().code(),
            Status::Code::kCancelled);
  EXPECT_FALSE(Exists("ok.quality.json"));
}

}  // namespace
}  // namespace bmos::engine::handlers
