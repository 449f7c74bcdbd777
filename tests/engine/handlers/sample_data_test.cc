#include "engine/handlers/sample_data.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/handlers/internal/table.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::ElementsAre;
using namespace test_util;  // NOLINT: test helpers

class SampleDataTest : public HandlerTest {};

TEST_F(SampleDataTest, WritesBothFilesDeterministically) {
  Result<SampleDataSummary> a = GenerateSampleData(root() / "a", 500, 7);
  Result<SampleDataSummary> b = GenerateSampleData(root() / "b", 500, 7);
  Result<SampleDataSummary> c = GenerateSampleData(root() / "c", 500, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(Read("a/sales_data.csv"), Read("b/sales_data.csv"));
  EXPECT_EQ(Read("a/feedback.jsonl"), Read("b/feedback.jsonl"));
  EXPECT_NE(Read("a/sales_data.csv"), Read("c/sales_data.csv"));
  EXPECT_EQ(a->sales_rows, 500u);
  EXPECT_EQ(a->feedback_lines, 125u);
  EXPECT_GT(a->duplicates, 0u);
  EXPECT_GT(a->blank_cells, 0u);
}

TEST_F(SampleDataTest, TheFilesParseAndHoldTheAdvertisedDirt) {
  ASSERT_TRUE(GenerateSampleData(root(), 3000, 42).ok());
  const auto rows = ParseCsv(Read("sales_data.csv"));
  ASSERT_EQ(rows.size(), 3001u);
  EXPECT_THAT(rows[0],
              ElementsAre("date", "region", "product", "units", "price", "discount", "revenue"));
  bool comma_product = false, quote_product = false, thousands = false, odd_date = false,
       padded = false, chinese = false;
  for (const auto& row : rows) {
    comma_product |= row[2] == "Gizmo, Deluxe";
    quote_product |= row[2] == "12\" Monitor";
    thousands |= row[6].find(',') != std::string::npos;
    odd_date |= row[0].find('/') != std::string::npos || row[0].find('.') != std::string::npos;
    padded |= !row[1].empty() && row[1][0] == ' ';
    chinese |= row[1] == "华东";
  }
  EXPECT_TRUE(comma_product && quote_product && thousands && odd_date && padded && chinese);
  TestJob job;
  Result<internal::Table> feedback =
      internal::ReadTable(root() / "feedback.jsonl", "feedback.jsonl", job, 0, 1);
  ASSERT_TRUE(feedback.ok()) << feedback.status().ToString();
  EXPECT_THAT(feedback->columns, ElementsAre("text", "rating", "time", "category"));
  EXPECT_EQ(feedback->rows.size(), 750u);
}

TEST_F(SampleDataTest, RefusesABadRowCount) {
  EXPECT_EQ(GenerateSampleData(root(), 0, 1).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace bmos::engine::handlers
