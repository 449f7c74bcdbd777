// process_data (engine/handlers/operations.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/handlers/operations.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

class ProcessDataTest : public HandlerTest {
 protected:
  Result<json::value> Run(std::string_view data) {
    TestJob job;
    return ProcessData(ws(), Obj(data), job);
  }
  // The type process_data inferred for `column`.
  static std::string TypeOf(const json::value& result, std::string_view column) {
    for (const json::value& c : result.at("columns").as_array()) {
      if (c.at("name").as_string() == column) return std::string(c.at("type").as_string());
    }
    return "<none>";
  }
};

TEST_F(ProcessDataTest, RemovesExactlyTheDuplicates) {
  std::string csv = "id,name,amount\n";
  for (int i = 0; i < 10; ++i) {
    csv += std::to_string(i) + ",item" + std::to_string(i) + "," + std::to_string(i * 10) + "\n";
  }
  csv += "3,item3,30\n7,item7,70\n3,item3,30\n";  // 3 exact duplicates
  csv += "5, item5 ,\"50\"\n";                    // equal once trimmed: a 4th
  Write("in/sales.csv", csv);
  Result<json::value> r = Run(R"({"data_source": "in/sales.csv"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rows_in"), 14);
  EXPECT_EQ(r->at("duplicates_removed"), 4);
  EXPECT_EQ(r->at("rows_out"), 10);
  EXPECT_EQ(r->at("output"), "in/sales_cleaned.csv");
  const auto rows = ParseCsv(Read("in/sales_cleaned.csv"));
  ASSERT_EQ(rows.size(), 11u);
  EXPECT_THAT(rows[0], ElementsAre("id", "name", "amount", "_invalid_columns"));
  EXPECT_THAT(rows[4], ElementsAre("3", "item3", "30", ""));
}

TEST_F(ProcessDataTest, NormalisesNumbersDatesAndWhitespace) {
  Write("a.csv",
        "date,region,revenue,flag\n"
        "2026/01/05,  North ,\"1,234.50\",yes\n"
        "05.01.2026,South,\"1.234,5\",No\n"
        "2026-1-5,东部,99,TRUE\n"
        "\"Jan 6, 2026\",West,\"$2,000\",false\n");
  Result<json::value> r = Run(R"({"data_source": "a.csv", "output": "out/clean.csv"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(TypeOf(*r, "date"), "date");
  EXPECT_EQ(TypeOf(*r, "region"), "text");
  EXPECT_EQ(TypeOf(*r, "revenue"), "number");
  EXPECT_EQ(TypeOf(*r, "flag"), "boolean");
  const auto rows = ParseCsv(Read("out/clean.csv"));
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_THAT(rows[1], ElementsAre("2026-01-05", "North", "1234.50", "true", ""));
  EXPECT_THAT(rows[2], ElementsAre("2026-01-05", "South", "1234.5", "false", ""));
  EXPECT_THAT(rows[3], ElementsAre("2026-01-05", "东部", "99", "true", ""));
  EXPECT_THAT(rows[4], ElementsAre("2026-01-06", "West", "2000", "false", ""));
}

TEST_F(ProcessDataTest, InfersIntegerColumnsAndKeepsIdentifiers) {
  Write("b.csv", "zip,units,score\n02134,1,1.5\n10001,2,2\n00501,3,x\n");
  Result<json::value> r = Run(R"({"data_source": "b.csv"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(TypeOf(*r, "zip"), "text");  // leading zeros: identifiers
  EXPECT_EQ(TypeOf(*r, "units"), "integer");
  EXPECT_EQ(TypeOf(*r, "score"), "number");
  const auto rows = ParseCsv(Read("b_cleaned.csv"));
  EXPECT_EQ(rows[1][0], "02134");
}

TEST_F(ProcessDataTest, StandardFillsMissingNumbersWithTheMedianAndMarksInvalidCells) {
  Write("c.csv",
        "name,units,price\n"
        "a,1,10.5\n"
        "b,,20.5\n"  // units missing: median of 1, 3, 4, 10 = 3.5 -> 4 (integer column)
        "c,3,\n"     // price missing: median of 10.5, 20.5, 30, 40 = 25.25
        "d,4,30\n"
        "e,lots,40\n"  // units invalid: kept, marked
        "f,10,NA\n");  // a null marker in a number column: missing
  Result<json::value> r = Run(R"({"data_source": "c.csv", "processing_type": "standard"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rows_out"), 6);
  EXPECT_EQ(r->at("invalid_rows"), 1);
  EXPECT_EQ(r->at("incomplete_rows"), 3);
  EXPECT_EQ(r->at("filled_cells"), 3);
  EXPECT_EQ(r->at("rows_dropped"), 0);
  const auto rows = ParseCsv(Read("c_cleaned.csv"));
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_THAT(rows[2], ElementsAre("b", "4", "20.5", ""));
  EXPECT_THAT(rows[3], ElementsAre("c", "3", "25.25", ""));
  EXPECT_THAT(rows[5], ElementsAre("e", "lots", "40", "units"));
  EXPECT_THAT(rows[6], ElementsAre("f", "10", "25.25", ""));
  const json::array& columns = r->at("columns").as_array();
  EXPECT_EQ(columns[1].at("invalid"), 1);
  EXPECT_EQ(columns[1].at("filled"), 1);
  EXPECT_EQ(columns[2].at("filled"), 2);
}

TEST_F(ProcessDataTest, StrictDropsInvalidAndIncompleteRows) {
  Write("d.csv",
        "name,units,day\na,1,2026-01-01\nb,,2026-01-02\nc,x,2026-01-03\nd,4,someday\ne,5,2026-01-"
        "05\n");
  Result<json::value> r = Run(R"({"data_source": "d.csv", "processing_type": "strict"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rows_out"), 2);
  EXPECT_EQ(r->at("rows_dropped"), 3);
  EXPECT_EQ(r->at("filled_cells"), 0);
  const auto rows = ParseCsv(Read("d_cleaned.csv"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0], ElementsAre("name", "units", "day"));  // no marker column in strict mode
  EXPECT_THAT(rows[1], ElementsAre("a", "1", "2026-01-01"));
  EXPECT_THAT(rows[2], ElementsAre("e", "5", "2026-01-05"));
}

TEST_F(ProcessDataTest, CleaningACleanedFileReplacesTheMarkerColumn) {
  Write("e.csv", "n,v\na,1\nb,x\nc,3\n");
  ASSERT_TRUE(Run(R"({"data_source": "e.csv"})").ok());
  Result<json::value> again = Run(R"({"data_source": "e_cleaned.csv", "output": "e2.csv"})");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_THAT(ParseCsv(Read("e2.csv"))[0], ElementsAre("n", "v", "_invalid_columns"));
}

TEST_F(ProcessDataTest, ReadsJsonLines) {
  Write("f.jsonl",
        "{\"name\": \"a\", \"amount\": 1.5}\n"
        "\n"
        "{\"name\": \"b\", \"amount\": null, \"extra\": true}\n"
        "{\"name\": \"a\", \"amount\": 1.5}\n");
  Result<json::value> r = Run(R"({"data_source": "f.jsonl"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rows_in"), 3);
  EXPECT_EQ(r->at("duplicates_removed"), 1);
  const auto rows = ParseCsv(Read("f_cleaned.csv"));
  EXPECT_THAT(rows[0], ElementsAre("name", "amount", "extra", "_invalid_columns"));
  EXPECT_THAT(rows[2], ElementsAre("b", "1.5", "true", ""));
}

TEST_F(ProcessDataTest, BadDataNamesFileLineAndColumnAndWritesNothing) {
  struct Case {
    std::string file, text, message;
  };
  const std::vector<Case> cases = {
      {"quote.csv", "a,b\n1,2\n3,\"oops\n",
       "quote.csv: line 3, column 3: unterminated quoted field"},
      {"width.csv", "a,b\n1,2\n3,4,5\n", "width.csv: line 3, column 5: expected 2 fields"},
      {"empty.csv", "", "empty.csv is empty"},
      {"bytes.csv", "a,b\n1,caf\xE9\n", "bytes.csv: line 2, column 6: invalid UTF-8"},
      {"header.csv", "a,b,a\n1,2,3\n", "header.csv: line 1: column name 'a' appears twice"},
      {"bad.jsonl", "{\"a\": 1}\n{\"a\": 2,}\n", "bad.jsonl: line 2, column 9: invalid JSON"},
      {"list.jsonl", "[1, 2]\n", "list.jsonl: line 1: expected a JSON object"},
  };
  for (const Case& c : cases) {
    Write(c.file, c.text);
    Result<json::value> r = Run(R"({"data_source": ")" + c.file + R"("})");
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << c.file;
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
    EXPECT_FALSE(Exists(fs::path(c.file).stem().string() + "_cleaned.csv")) << c.file;
  }
  EXPECT_TRUE(TempFiles().empty());
}

TEST_F(ProcessDataTest, RefusesPathsOutsideTheRoot) {
  std::ofstream(base() / "outside.csv") << "a\n1\n";
  fs::create_symlink(base() / "outside.csv", root() / "link.csv");
  Write("ok.csv", "a\n1\n");
  for (const char* data :
       {R"({"data_source": "../outside.csv"})", R"({"data_source": "/etc/passwd"})",
        R"({"data_source": "link.csv"})", R"({"data_source": "ok.csv", "output": "../x.csv"})",
        R"({"data_source": "ok.csv", "output": "/tmp/x.csv"})"}) {
    Result<json::value> r = Run(data);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << data;
  }
  EXPECT_FALSE(fs::exists(base() / "x.csv"));
  EXPECT_FALSE(fs::exists(base() / "outside_cleaned.csv"));
}

TEST_F(ProcessDataTest, RefusesBadTaskData) {
  Write("ok.csv", "a\n1\n");
  const auto code = [&](std::string_view data) { return Run(data).status().code(); };
  EXPECT_EQ(code(R"({})"), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(R"({"data_source": 5})"), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(R"({"data_source": "missing.csv"})"), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(R"({"data_source": "ok.csv", "processing_type": "loose"})"),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(code(R"({"data_source": "ok.csv", "data_sorce": "x"})"),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(code(R"({"data_source": "ok.csv", "output": "ok.csv"})"),
            Status::Code::kInvalidArgument);
  EXPECT_THAT(Run(R"({"data_source": "ok.csv", "data_sorce": "x"})").status().message(),
              HasSubstr("unknown field 'data_sorce'"));
}

TEST_F(ProcessDataTest, CancellationLeavesNoOutput) {
  std::string csv = "a,b\n";
  for (int i = 0; i < 20000; ++i) csv += std::to_string(i) + ",x\n";
  Write("big.csv", csv);
  for (int after : {0, 1, 3, 5, 8}) {
    TestJob job(after);
    Result<json::value> r = ProcessData(ws(), Obj(R"({"data_source": "big.csv"})"), job);
    EXPECT_EQ(r.status().code(), Status::Code::kCancelled) << after;
    EXPECT_FALSE(Exists("big_cleaned.csv"));
    EXPECT_TRUE(TempFiles().empty());
  }
  TestJob job;
  ASSERT_TRUE(ProcessData(ws(), Obj(R"({"data_source": "big.csv"})"), job).ok());
  EXPECT_GT(job.progress_calls(), 2);
  EXPECT_DOUBLE_EQ(job.last_progress(), 1.0);
}

}  // namespace
}  // namespace bmos::engine::handlers
