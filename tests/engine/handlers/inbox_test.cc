// sync_inbox (engine/handlers/operations.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/handlers/operations.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

class InboxTest : public HandlerTest {
 protected:
  Result<json::value> Sync() {
    TestJob job;
    return SyncInbox(ws(), {}, job);
  }
};

TEST_F(InboxTest, ProcessesGoodFilesAndSetsBadOnesAside) {
  Write("inbox/good.csv", "id,amount\n1,\"1,000\"\n2,\n2,\n3,30\n");
  Write("inbox/bad.csv", "id,amount\n1,2,3\n");
  Write("inbox/.partial.csv", "id\n");  // still being written
  Write("inbox/notes.txt", "not a table");
  Result<json::value> r = Sync();
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  ASSERT_EQ(r->at("processed").as_array().size(), 1u);
  const json::value& good = r->at("processed").as_array()[0];
  EXPECT_EQ(good.at("file").as_string(), "inbox/good.csv");
  EXPECT_EQ(good.at("moved_to").as_string(), "processed/good.csv");
  EXPECT_EQ(good.at("cleaned").as_string(), "processed/good_cleaned.csv");
  EXPECT_EQ(good.at("quality_report").as_string(), "processed/good.quality.json");
  EXPECT_EQ(good.at("rows_in"), 4);
  EXPECT_EQ(good.at("rows_out"), 3);
  EXPECT_EQ(good.at("duplicates_removed"), 1);
  EXPECT_LT(Num(good.at("score")), 100);

  ASSERT_EQ(r->at("failed").as_array().size(), 1u);
  const json::value& bad = r->at("failed").as_array()[0];
  EXPECT_EQ(bad.at("moved_to").as_string(), "failed/bad.csv");
  EXPECT_THAT(std::string(bad.at("error").as_string()),
              HasSubstr("inbox/bad.csv: line 2, column 5"));
  EXPECT_THAT(Read("failed/bad.csv.error.txt"), HasSubstr("expected 2 fields"));

  EXPECT_THAT(Files(), ElementsAre("failed/bad.csv", "failed/bad.csv.error.txt",
                                   "inbox/.partial.csv", "inbox/notes.txt", "processed/good.csv",
                                   "processed/good.quality.json", "processed/good_cleaned.csv"));
  EXPECT_EQ(Read("processed/good.csv"), "id,amount\n1,\"1,000\"\n2,\n2,\n3,30\n");  // as it came
  EXPECT_EQ(ReadJson("processed/good.quality.json").at("data_source").as_string(),
            "inbox/good.csv");
}

TEST_F(InboxTest, NamesAlreadyTakenGetASuffix) {
  Write("inbox/sales.csv", "a\n1\n");
  ASSERT_TRUE(Sync().ok());
  Write("inbox/sales.csv", "a\n2\n");
  Result<json::value> r = Sync();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("processed").as_array()[0].at("moved_to").as_string(), "processed/sales-2.csv");
  EXPECT_EQ(Read("processed/sales-2_cleaned.csv"), "a,_invalid_columns\n2,\n");
  EXPECT_EQ(Read("processed/sales_cleaned.csv"), "a,_invalid_columns\n1,\n");
}

TEST_F(InboxTest, AnEmptyInboxIsNoError) {
  Result<json::value> r = Sync();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->at("processed").as_array().empty());
  EXPECT_TRUE(r->at("failed").as_array().empty());
  EXPECT_TRUE(fs::is_directory(root() / "inbox"));
}

TEST_F(InboxTest, CancellationLeavesTheInputInTheInbox) {
  Write("inbox/a.csv", "a\n1\n");
  for (int after : {0, 1, 2, 4}) {
    TestJob job(after);
    EXPECT_EQ(SyncInbox(ws(), {}, job).status().code(), Status::Code::kCancelled) << after;
    EXPECT_THAT(Files(), ElementsAre("inbox/a.csv")) << after;
  }
}

TEST_F(InboxTest, AnInboxLinkedOutsideIsRefused) {
  fs::create_directories(base() / "elsewhere");
  fs::create_directory_symlink(base() / "elsewhere", root() / "inbox");
  EXPECT_EQ(Sync().status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace bmos::engine::handlers
