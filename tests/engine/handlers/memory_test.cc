// extract_memory (engine/handlers/operations.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/handlers/operations.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

std::string Line(std::string_view text, int rating, std::string_view category,
                 std::string_view time = "2026-01-05T10:00:00Z") {
  json::object o{{"text", text}, {"rating", rating}, {"time", time}, {"category", category}};
  return json::serialize(o) + "\n";
}

std::vector<std::string> Strings(const json::value& array) {
  std::vector<std::string> out;
  for (const json::value& v : array.as_array()) out.emplace_back(v.as_string());
  return out;
}

class MemoryTest : public HandlerTest {
 protected:
  Result<json::value> Run(std::string_view source = "feedback.jsonl") {
    TestJob job;
    return ExtractMemory(ws(), json::object{{"feedback_source", source}}, job);
  }
  // The theme entry of `theme` in the list `key` of the result, or null.
  static json::value Find(const json::value& r, std::string_view key, std::string_view theme) {
    for (const json::value& t : r.at(key).as_array()) {
      if (t.at("theme").as_string() == theme) return t;
    }
    return nullptr;
  }
};

TEST_F(MemoryTest, FindsRecurringEnglishThemesWithTheirRatings) {
  std::string lines;
  for (int i = 0; i < 4; ++i) lines += Line("Delivery was slow", 1 + i % 2, "delivery");
  for (int i = 0; i < 3; ++i) lines += Line("Great customer service!", 5, "service");
  lines += Line("The price is fair", 4, "price", "2026-01-01T00:00:00Z");
  lines += Line("Slow app", 2, "app", "2026-01-09T00:00:00Z");
  Write("feedback.jsonl", lines);
  Result<json::value> r = Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("items"), 9);
  EXPECT_EQ(r->at("rated_items"), 9);

  const json::value delivery = Find(*r, "themes", "delivery");
  ASSERT_FALSE(delivery.is_null());
  EXPECT_EQ(delivery.at("count"), 4);
  EXPECT_DOUBLE_EQ(Num(delivery.at("average_rating")), 1.5);
  EXPECT_EQ(delivery.at("script").as_string(), "latin");
  EXPECT_EQ(Find(*r, "themes", "slow").at("count"), 5);  // 4 deliveries and the app
  EXPECT_EQ(Find(*r, "themes", "delivery slow").at("count"), 4);
  EXPECT_EQ(Find(*r, "themes", "customer service").at("count"), 3);
  EXPECT_TRUE(Find(*r, "themes", "the").is_null());    // a stop word
  EXPECT_TRUE(Find(*r, "themes", "price").is_null());  // mentioned once: not recurring
  // Most mentioned first.
  EXPECT_EQ(r->at("themes").as_array()[0].at("theme").as_string(), "slow");
  EXPECT_EQ(Find(*r, "lowest_rated", "delivery").at("count"), 4);
  EXPECT_EQ(r->at("lowest_rated").as_array()[0].at("theme").as_string(), "delivery");
  EXPECT_EQ(r->at("categories").at("delivery").at("items"), 4);
  EXPECT_DOUBLE_EQ(Num(r->at("categories").at("service").at("average_rating")), 5);
  EXPECT_EQ(r->at("period").at("from").as_string(), "2026-01-01T00:00:00Z");
  EXPECT_EQ(r->at("period").at("to").as_string(), "2026-01-09T00:00:00Z");
  EXPECT_TRUE(r->at("previous_snapshot").is_null());
  EXPECT_TRUE(r->at("rising").as_array().empty());
  EXPECT_THAT(Strings(r->at("insights")), Contains(HasSubstr("Most mentioned: 'slow'")));
  EXPECT_THAT(Strings(r->at("insights")), Contains(HasSubstr("Lowest rated: 'delivery'")));
  // The snapshot is kept for the next extraction.
  const json::value snapshot = ReadJson("memory/themes.json");
  EXPECT_EQ(snapshot.at("items"), 9);
  EXPECT_EQ(snapshot.at("themes").at("delivery").at("count"), 4);
}

TEST_F(MemoryTest, FindsChineseThemesByCharacterPairs) {
  std::string lines;
  lines += Line("物流太慢了，等了一个星期", 1, "delivery");
  lines += Line("物流很慢", 2, "delivery");
  lines += Line("客服态度很好", 5, "service");
  lines += Line("客服回复及时", 4, "service");
  lines += Line("物流快，客服好", 4, "general");
  Write("feedback.jsonl", lines);
  Result<json::value> r = Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const json::value logistics = Find(*r, "themes", "物流");
  ASSERT_FALSE(logistics.is_null());
  EXPECT_EQ(logistics.at("count"), 3);
  EXPECT_EQ(logistics.at("script").as_string(), "cjk");
  EXPECT_NEAR(Num(logistics.at("average_rating")), 7.0 / 3, 0.01);
  EXPECT_EQ(Find(*r, "themes", "客服").at("count"), 3);
  EXPECT_TRUE(Find(*r, "themes", "了一").is_null());  // a pair with a function character
}

TEST_F(MemoryTest, TrendsCompareWithThePreviousExtraction) {
  // First run: delivery is common, the app rarely mentioned.
  std::string first;
  for (int i = 0; i < 6; ++i) first += Line("delivery late", 2, "delivery");
  for (int i = 0; i < 2; ++i) first += Line("app crashes", 1, "app");
  for (int i = 0; i < 2; ++i) first += Line("friendly staff", 5, "service");
  Write("feedback.jsonl", first);
  ASSERT_TRUE(Run().ok());
  clock_.AdvanceMillis(86'400'000);

  // Second run: the app crashes rise, delivery falls, a new theme appears.
  std::string second;
  for (int i = 0; i < 2; ++i) second += Line("delivery late", 2, "delivery");
  for (int i = 0; i < 6; ++i) second += Line("app crashes", 1, "app");
  for (int i = 0; i < 2; ++i) second += Line("checkout confusing", 2, "app");
  Write("feedback.jsonl", second);
  Result<json::value> r = Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("previous_snapshot").as_string(), "2026-01-01T00:00:00.000Z");

  const json::value crashes = Find(*r, "themes", "app crashes");
  EXPECT_DOUBLE_EQ(Num(crashes.at("previous_share")), 0.2);
  EXPECT_DOUBLE_EQ(Num(crashes.at("share")), 0.6);
  EXPECT_NEAR(Num(crashes.at("trend")), 0.4, 1e-9);
  EXPECT_FALSE(Find(*r, "rising", "app crashes").is_null());
  EXPECT_FALSE(Find(*r, "new_themes", "checkout confusing").is_null());
  const json::value delivery = Find(*r, "falling", "delivery late");
  ASSERT_FALSE(delivery.is_null());
  EXPECT_NEAR(Num(delivery.at("trend")), -0.4, 1e-9);
  const json::value staff = Find(*r, "falling", "friendly staff");  // gone entirely
  ASSERT_FALSE(staff.is_null());
  EXPECT_DOUBLE_EQ(Num(staff.at("share")), 0);
  EXPECT_THAT(Strings(r->at("insights")),
              Contains(HasSubstr("Rising: 'app crashes' from 20.0% to 60.0% of items")));
  // The snapshot it replaced is kept.
  EXPECT_EQ(ReadJson("memory/themes.previous.json").at("generated_at").as_string(),
            "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(ReadJson("memory/themes.json").at("generated_at").as_string(),
            "2026-01-02T00:00:00.000Z");
}

TEST_F(MemoryTest, BadLinesNameFileAndLine) {
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases = {
      {Line("ok", 5, "a") + "{\"text\": \"broken\", \"rating\": }\n",
       "feedback.jsonl: line 2, column 30: invalid JSON"},
      {Line("ok", 5, "a") + "\n" + "{\"rating\": 3}\n",
       "feedback.jsonl: line 3: field 'text' must be a string"},
      {"{\"text\": \"x\", \"rating\": \"five\"}\n", "line 1: field 'rating' must be a number"},
      {"[\"text\"]\n", "line 1: expected a JSON object"},
      {"{\"text\": \"caf\xE9\"}\n", "line 1, column 14: invalid UTF-8"},
      {"\n\n", "feedback.jsonl is empty"},
  };
  for (const Case& c : cases) {
    Write("feedback.jsonl", c.text);
    Result<json::value> r = Run();
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << c.text;
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << c.text;
  }
  EXPECT_FALSE(Exists("memory/themes.json"));
  EXPECT_EQ(Run("../feedback.jsonl").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Run("nothing.jsonl").status().code(), Status::Code::kInvalidArgument);
}

TEST_F(MemoryTest, NullRatingsAndMissingCategoriesAreAllowed) {
  Write("feedback.jsonl",
        "{\"text\": \"slow delivery\", \"rating\": null}\n"
        "{\"text\": \"slow delivery\", \"rating\": 3.5}\n");
  Result<json::value> r = Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("rated_items"), 1);
  EXPECT_DOUBLE_EQ(Num(Find(*r, "themes", "slow delivery").at("average_rating")), 3.5);
  EXPECT_TRUE(r->at("categories").as_object().empty());
}

}  // namespace
}  // namespace bmos::engine::handlers
