#include "engine/handlers/internal/values.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/handlers/internal/memory_themes.h"
#include "engine/handlers/internal/utf8.h"

namespace bmos::engine::handlers::internal {
namespace {

using ::testing::ElementsAre;

std::string NumberText(std::string_view s) {
  std::optional<Number> n = ParseNumber(s);
  return n ? n->text : "<none>";
}

TEST(Values, TrimRemovesAsciiAndUnicodeSpaces) {
  EXPECT_EQ(Trim("  a b \t"), "a b");
  EXPECT_EQ(Trim("\xC2\xA0x\xE3\x80\x80"), "x");
  EXPECT_EQ(Trim("   "), "");
}

TEST(Values, NumbersWithSeparators) {
  EXPECT_EQ(NumberText("1234"), "1234");
  EXPECT_EQ(NumberText("-12.50"), "-12.50");
  EXPECT_EQ(NumberText("+7"), "7");
  EXPECT_EQ(NumberText(".5"), "0.5");
  EXPECT_EQ(NumberText("1,234,567"), "1234567");
  EXPECT_EQ(NumberText("1.234.567"), "1234567");
  EXPECT_EQ(NumberText("1,234.56"), "1234.56");
  EXPECT_EQ(NumberText("1.234,56"), "1234.56");
  EXPECT_EQ(NumberText("1,234"), "1234");  // ambiguous: thousands
  EXPECT_EQ(NumberText("12,5"), "12.5");   // decimal comma
  EXPECT_EQ(NumberText("0,25"), "0.25");
  EXPECT_EQ(NumberText("1234,5"), "1234.5");
  EXPECT_EQ(NumberText("$1,200.00"), "1200.00");
  EXPECT_EQ(NumberText("-\xC2\xA5"
                       "3"),
            "-3");  // -¥3
  EXPECT_EQ(NumberText("1e3"), "1e3");
  EXPECT_EQ(NumberText("2.5E-2"), "2.5e-2");
  EXPECT_DOUBLE_EQ(ParseNumber("1.234,56")->value, 1234.56);
  EXPECT_TRUE(ParseNumber("42")->integer);
  EXPECT_FALSE(ParseNumber("42.0")->integer);
}

TEST(Values, NotNumbers) {
  for (const char* s :
       {"", "abc", "1,2,3", "1.2.3.4", "12,34,5", "0123", "00.5", "1,234,56", "5.", "1,2.3",
        "1.234,567.8", "nan", "inf", "--1", "1e", "12%", "1 234", "2026-01-05", "05.01.2026"}) {
    EXPECT_FALSE(ParseNumber(s).has_value()) << s;
  }
}

TEST(Values, FormatDoubleIsShortest) {
  EXPECT_EQ(FormatDouble(2.5), "2.5");
  EXPECT_EQ(FormatDouble(1234), "1234");
  EXPECT_EQ(FormatDouble(-0.0), "0");
  EXPECT_EQ(FormatDouble(0.1 + 0.2), "0.30000000000000004");
}

std::string DateText(std::string_view s, DateOrder order = DateOrder::kUnknown) {
  std::optional<ParsedDate> d = ParseDate(s, order);
  return d ? FormatDate(d->date) : "<none>";
}

TEST(Values, DatesInCommonForms) {
  EXPECT_EQ(DateText("2026-01-05"), "2026-01-05");
  EXPECT_EQ(DateText("2026-1-5"), "2026-01-05");
  EXPECT_EQ(DateText("2026/01/05"), "2026-01-05");
  EXPECT_EQ(DateText("2026.01.05"), "2026-01-05");
  EXPECT_EQ(DateText("05.01.2026"), "2026-01-05");  // day first
  EXPECT_EQ(DateText("25/12/2026"), "2026-12-25");  // only day-first fits
  EXPECT_EQ(DateText("12/25/2026"), "2026-12-25");  // only month-first fits
  EXPECT_EQ(DateText("01/02/2026"), "2026-01-02");  // '/' ambiguous: month first
  EXPECT_EQ(DateText("01/02/2026", DateOrder::kDayFirst), "2026-02-01");
  EXPECT_EQ(DateText("01-02-2026"), "2026-02-01");  // '-' ambiguous: day first
  EXPECT_EQ(DateText("5 Jan 2026"), "2026-01-05");
  EXPECT_EQ(DateText("Jan 5, 2026"), "2026-01-05");
  EXPECT_EQ(DateText("September 30 2026"), "2026-09-30");
  EXPECT_EQ(DateText("2026年1月5日"), "2026-01-05");
  EXPECT_EQ(DateText("2024-02-29"), "2024-02-29");
  EXPECT_EQ(ParseDate("25/12/2026", DateOrder::kUnknown)->proven, DateOrder::kDayFirst);
}

TEST(Values, NotDates) {
  for (const char* s :
       {"2026-02-30", "2025-02-29", "2026-13-01", "2026/01-05", "1/2/26", "hello world", "Jan 2026",
        "2026-01-05T10:00", "Foo 5, 2026", "32.01.2026", "0999-01-01"}) {
    EXPECT_FALSE(ParseDate(s, DateOrder::kUnknown).has_value()) << s;
  }
}

TEST(Values, Booleans) {
  EXPECT_EQ(ParseBool("TRUE"), true);
  EXPECT_EQ(ParseBool("no"), false);
  EXPECT_EQ(ParseBool("是"), true);
  EXPECT_FALSE(ParseBool("1").has_value());
}

ColumnType Infer(std::initializer_list<std::string_view> values) {
  TypeInference t;
  for (const std::string_view v : values) t.Add(v);
  return t.type();
}

TEST(Values, TypeInferenceTakesTheMajority) {
  EXPECT_EQ(Infer({"1", "2", "", "3"}), ColumnType::kInteger);
  EXPECT_EQ(Infer({"1", "2.5", "x"}), ColumnType::kNumber);
  EXPECT_EQ(Infer({"1", "x", "y"}), ColumnType::kText);
  EXPECT_EQ(Infer({"2026-01-05", "05.01.2026", "oops"}), ColumnType::kDate);
  EXPECT_EQ(Infer({"yes", "no", "true"}), ColumnType::kBoolean);
  EXPECT_EQ(Infer({"", "NA", "null"}), ColumnType::kEmpty);
  EXPECT_EQ(Infer({"0123", "0456"}), ColumnType::kText);  // identifiers keep their zeros
  TypeInference dates;
  for (const char* d : {"25/12/2026", "01/02/2026", "13/01/2026"}) dates.Add(d);
  EXPECT_EQ(dates.date_order(), DateOrder::kDayFirst);
}

TEST(Values, NormalizeValueByType) {
  EXPECT_EQ(NormalizeValue("1,234", ColumnType::kInteger, DateOrder::kUnknown), "1234");
  EXPECT_FALSE(NormalizeValue("1.5", ColumnType::kInteger, DateOrder::kUnknown).has_value());
  EXPECT_EQ(NormalizeValue("01/02/2026", ColumnType::kDate, DateOrder::kDayFirst), "2026-02-01");
  EXPECT_EQ(NormalizeValue("Yes", ColumnType::kBoolean, DateOrder::kUnknown), "true");
  EXPECT_EQ(NormalizeValue("any", ColumnType::kText, DateOrder::kUnknown), "any");
}

TEST(Values, Median) {
  std::vector<double> odd = {5, 1, 3};
  EXPECT_DOUBLE_EQ(Median(&odd), 3);
  std::vector<double> even = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Median(&even), 2.5);
}

TEST(Utf8, FindsTheFirstBadByte) {
  EXPECT_EQ(FindInvalidUtf8("abc华"), std::string_view::npos);
  EXPECT_EQ(FindInvalidUtf8("ab\x80"), 2u);
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(CountChars("华东x"), 3u);
  std::string s;
  AppendUtf8(&s, U'华');
  EXPECT_EQ(s, "华");
}

std::vector<std::string> Themes(std::string_view text) {
  std::vector<std::string> out;
  for (const Theme& t : ExtractThemes(text)) out.push_back(t.text);
  return out;
}

TEST(Themes, EnglishWordsAndPairsWithoutStopWords) {
  EXPECT_THAT(Themes("The delivery was slow."), ElementsAre("delivery", "slow", "delivery slow"));
  // Punctuation ends a clause: no pair across it; repeated themes count once.
  EXPECT_THAT(Themes("Great app, great app!"), ElementsAre("great", "app", "great app"));
  // Negations join pairs but are no theme alone.
  EXPECT_THAT(Themes("Not good"), ElementsAre("good", "not good"));
  EXPECT_THAT(Themes("I waited 10 days"), ElementsAre("waited", "days", "waited days"));
}

TEST(Themes, ChineseCharacterBigrams) {
  EXPECT_THAT(Themes("物流太慢了"), ElementsAre("物流", "流太", "太慢"));
  // 的 is a function character: pairs with it are dropped.
  EXPECT_THAT(Themes("我的客服"), ElementsAre("客服"));
  // Mixed text: CJK runs and words apart.
  EXPECT_THAT(Themes("App闪退"), ElementsAre("app", "闪退"));
  for (const Theme& t : ExtractThemes("客服")) EXPECT_TRUE(t.cjk);
}

}  // namespace
}  // namespace bmos::engine::handlers::internal
