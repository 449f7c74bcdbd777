#include "engine/trigger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace bmos::engine {
namespace {

using storage::Status;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

boost::json::object Json(std::string_view text) { return boost::json::parse(text).as_object(); }

std::unique_ptr<Trigger> Make(TriggerType type, std::string_view config,
                              const TriggerParseOptions& options = {}) {
  auto t = Trigger::Parse(type, Json(config), options);
  EXPECT_TRUE(t.ok()) << config << ": " << t.status().ToString();
  if (!t.ok()) return nullptr;
  return std::move(t).value();
}

std::unique_ptr<Trigger> Cron(std::string_view config) { return Make(TriggerType::kCron, config); }

// Unix microseconds of an ISO date-time (UTC unless it carries an offset).
int64_t At(std::string_view iso, std::string_view zone = "UTC") {
  auto t = ParseDateTime(iso, zone);
  EXPECT_TRUE(t.ok()) << iso << ": " << t.status().ToString();
  return t.ok() ? *t : 0;
}

// The next `n` fire times at or after `from`, formatted in the trigger's zone.
std::vector<std::string> Fires(const Trigger& t, std::string_view from, int n) {
  std::vector<std::string> out;
  std::optional<int64_t> next = t.NextFireTime(At(from));
  while (next && static_cast<int>(out.size()) < n) {
    out.push_back(t.FormatTime(*next));
    next = t.NextFireTime(*next + 1);
  }
  return out;
}

std::string Next(const Trigger& t, std::string_view from) {
  std::optional<int64_t> next = t.NextFireTime(At(from));
  return next ? t.FormatTime(*next) : "never";
}

Status ParseError(TriggerType type, std::string_view config,
                  const TriggerParseOptions& options = {}) {
  auto t = Trigger::Parse(type, Json(config), options);
  return t.status();
}

// ---------------------------------------------------------------------------------------------
// Trigger types, formatting and date-time parsing

TEST(TriggerType, ParseAndToStringRoundTrip) {
  for (TriggerType t : {TriggerType::kCron, TriggerType::kInterval, TriggerType::kDate}) {
    auto parsed = ParseTriggerType(ToString(t));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(ToString(TriggerType::kInterval), "interval");
  auto bad = ParseTriggerType("Cron");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("Cron"));
}

TEST(FormatIsoWithOffset, FormatsWallTimeWithOffset) {
  const int64_t t = At("2026-03-29T01:00:00Z");
  EXPECT_EQ(*FormatIsoWithOffset(t, "UTC"), "2026-03-29T01:00:00+00:00");
  EXPECT_EQ(*FormatIsoWithOffset(t, "Europe/Berlin"), "2026-03-29T03:00:00+02:00");
  EXPECT_EQ(*FormatIsoWithOffset(t - 1'000'000, "Europe/Berlin"), "2026-03-29T01:59:59+01:00");
  EXPECT_EQ(*FormatIsoWithOffset(t, "America/New_York"), "2026-03-28T21:00:00-04:00");
  EXPECT_EQ(*FormatIsoWithOffset(t, "Asia/Kathmandu"), "2026-03-29T06:45:00+05:45");
  EXPECT_EQ(*FormatIsoWithOffset(t + 250'000, "UTC"), "2026-03-29T01:00:00.250000+00:00");
  EXPECT_EQ(*FormatIsoWithOffset(0, "UTC"), "1970-01-01T00:00:00+00:00");
  EXPECT_EQ(*FormatIsoWithOffset(-1, "UTC"), "1969-12-31T23:59:59.999999+00:00");
  auto bad = FormatIsoWithOffset(t, "Mars/Olympus_Mons");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("Mars/Olympus_Mons"));
}

TEST(ParseDateTime, AcceptsApschedulerForms) {
  const int64_t midnight = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
  EXPECT_EQ(At("2026-01-01"), midnight);
  EXPECT_EQ(At("2026-1-1"), midnight);
  EXPECT_EQ(At("2026-01-01 00:00:00"), midnight);
  EXPECT_EQ(At("2026-01-01T00:00:00"), midnight);
  EXPECT_EQ(At("2026-01-01T00:00"), midnight);
  EXPECT_EQ(At("2026-01-01T00:00:00Z"), midnight);
  EXPECT_EQ(At("2026-01-01T02:00:00+02:00"), midnight);
  EXPECT_EQ(At("2026-01-01T02:00:00+0200"), midnight);
  EXPECT_EQ(At("2025-12-31T19:00:00-05"), midnight);
  EXPECT_EQ(At("2026-01-01 00:00:00.5"), midnight + 500'000);
  EXPECT_EQ(At("2026-01-01 00:00:00.123456789"), midnight + 123'456);
  EXPECT_EQ(At("2026-01-01 01:00:00", "Europe/Berlin"), midnight);
  EXPECT_EQ(At("2026-01-01 01:00:00Z", "Europe/Berlin"), midnight + 3'600'000'000);
  EXPECT_EQ(At("2024-02-29"), At("2024-03-01") - 86'400'000'000);
}

TEST(ParseDateTime, WallTimesFollowTheDstPolicy) {
  // Spring forward: 02:30 does not exist in Berlin on 2026-03-29; the first instant after the
  // gap is 03:00 CEST = 01:00Z.
  EXPECT_EQ(At("2026-03-29 02:30:00", "Europe/Berlin"), At("2026-03-29T01:00:00Z"));
  EXPECT_EQ(At("2026-03-29 02:30:00.75", "Europe/Berlin"), At("2026-03-29T01:00:00Z"));
  // Fall back: 02:30 occurs twice on 2026-10-25; the first occurrence is CEST (00:30Z).
  EXPECT_EQ(At("2026-10-25 02:30:00", "Europe/Berlin"), At("2026-10-25T00:30:00Z"));
  EXPECT_EQ(At("2026-11-01 01:30:00", "America/New_York"), At("2026-11-01T05:30:00Z"));
  EXPECT_EQ(At("2026-03-08 02:30:00", "America/New_York"), At("2026-03-08T07:00:00Z"));
}

TEST(ParseDateTime, RefusesMalformedDates) {
  for (std::string_view bad :
       {"", "tomorrow", "2026", "2026-01", "26-01-01", "2026-02-30", "2026-13-01", "2026-00-10",
        "2026-01-01 24:00:00", "2026-01-01 12:60:00", "2026-01-01 12:00:60", "2026-01-01 12",
        "2026-01-01 12:00:00+25:00", "2026-01-01 12:00:00 UTC", "2026-01-01 12:00:00.",
        "2026-01-01x"}) {
    auto t = ParseDateTime(bad, "UTC");
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), Status::Code::kInvalidArgument);
    }
  }
  EXPECT_FALSE(ParseDateTime("2026-01-01", "Nowhere/City").ok());
}

// ---------------------------------------------------------------------------------------------
// Cron: defaulting

TEST(CronTrigger, HourOnlyMeansDailyAtThatHour) {
  auto t = Cron(R"({"hour": 2})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 3),
              ElementsAre("2026-01-01T02:00:00+00:00", "2026-01-02T02:00:00+00:00",
                          "2026-01-03T02:00:00+00:00"));
  EXPECT_EQ(t->Describe(), "cron[hour='2', timezone='UTC']");
}

TEST(CronTrigger, MinuteStepFiresAtSecondZero) {
  auto t = Cron(R"({"minute": "*/5"})");
  EXPECT_THAT(Fires(*t, "2026-01-01T10:03:10Z", 3),
              ElementsAre("2026-01-01T10:05:00+00:00", "2026-01-01T10:10:00+00:00",
                          "2026-01-01T10:15:00+00:00"));
}

TEST(CronTrigger, DayOfWeekOnlyMeansMidnight) {
  auto t = Cron(R"({"day_of_week": "mon"})");  // 2026-01-05 is a Monday
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 2),
              ElementsAre("2026-01-05T00:00:00+00:00", "2026-01-12T00:00:00+00:00"));
}

TEST(CronTrigger, YearOnlyMeansJanuaryFirstMidnightOnce) {
  auto t = Cron(R"({"year": 2027})");
  EXPECT_THAT(Fires(*t, "2026-06-01T00:00:00Z", 5), ElementsAre("2027-01-01T00:00:00+00:00"));
}

TEST(CronTrigger, FieldsCoarserThanTheFinestGivenAreStars) {
  // second given: every minute of every hour on the 15th, at :30.
  auto t = Cron(R"({"day": 15, "second": 30})");
  EXPECT_THAT(Fires(*t, "2026-01-14T23:58:00Z", 3),
              ElementsAre("2026-01-15T00:00:30+00:00", "2026-01-15T00:01:30+00:00",
                          "2026-01-15T00:02:30+00:00"));
  // week given: every day of ISO week 2 at 00:00:00 (week and day_of_week default to *).
  auto w = Cron(R"({"week": 2})");
  EXPECT_THAT(Fires(*w, "2026-01-01T00:00:00Z", 8),
              ElementsAre("2026-01-05T00:00:00+00:00", "2026-01-06T00:00:00+00:00",
                          "2026-01-07T00:00:00+00:00", "2026-01-08T00:00:00+00:00",
                          "2026-01-09T00:00:00+00:00", "2026-01-10T00:00:00+00:00",
                          "2026-01-11T00:00:00+00:00", "2027-01-11T00:00:00+00:00"));
}

TEST(CronTrigger, NoFieldsFiresEverySecond) {
  auto t = Cron("{}");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00.5Z", 2),
              ElementsAre("2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"));
  EXPECT_EQ(t->Describe(), "cron[timezone='UTC']");
}

TEST(CronTrigger, IntegersAndStringsAreTheSame) {
  auto a = Cron(R"({"hour": 2, "minute": 30})");
  auto b = Cron(R"({"hour": "2", "minute": "30"})");
  const int64_t from = At("2026-01-01T00:00:00Z");
  EXPECT_EQ(a->NextFireTime(from), b->NextFireTime(from));
  EXPECT_EQ(a->Describe(), b->Describe());
  // null means absent.
  auto c = Cron(R"({"hour": 2, "minute": 30, "second": null, "timezone": null})");
  EXPECT_EQ(c->NextFireTime(from), a->NextFireTime(from));
}

TEST(CronTrigger, AFireTimeEqualToFromCounts) {
  auto t = Cron(R"({"hour": 2})");
  EXPECT_EQ(Next(*t, "2026-01-01T02:00:00Z"), "2026-01-01T02:00:00+00:00");
  EXPECT_EQ(Next(*t, "2026-01-01T02:00:00.000001Z"), "2026-01-02T02:00:00+00:00");
}

// ---------------------------------------------------------------------------------------------
// Cron: expression forms

TEST(CronTrigger, StarStepIsAlignedToTheFieldMinimum) {
  EXPECT_THAT(Fires(*Cron(R"({"hour": "*/5"})"), "2026-01-01T00:00:00Z", 6),
              ElementsAre("2026-01-01T00:00:00+00:00", "2026-01-01T05:00:00+00:00",
                          "2026-01-01T10:00:00+00:00", "2026-01-01T15:00:00+00:00",
                          "2026-01-01T20:00:00+00:00", "2026-01-02T00:00:00+00:00"));
  // Days start at 1: 1, 11, 21, 31.
  EXPECT_THAT(Fires(*Cron(R"({"day": "*/10"})"), "2026-01-02T00:00:00Z", 4),
              ElementsAre("2026-01-11T00:00:00+00:00", "2026-01-21T00:00:00+00:00",
                          "2026-01-31T00:00:00+00:00", "2026-02-01T00:00:00+00:00"));
  // Weekdays start at 0 = Monday: mon, wed, fri, sun.
  EXPECT_THAT(Fires(*Cron(R"({"day_of_week": "*/2"})"), "2026-01-05T00:00:00Z", 5),
              ElementsAre("2026-01-05T00:00:00+00:00", "2026-01-07T00:00:00+00:00",
                          "2026-01-09T00:00:00+00:00", "2026-01-11T00:00:00+00:00",
                          "2026-01-12T00:00:00+00:00"));
}

TEST(CronTrigger, RangesStepsAndLists) {
  EXPECT_THAT(Fires(*Cron(R"({"minute": "10-20/5"})"), "2026-01-01T00:00:00Z", 4),
              ElementsAre("2026-01-01T00:10:00+00:00", "2026-01-01T00:15:00+00:00",
                          "2026-01-01T00:20:00+00:00", "2026-01-01T01:10:00+00:00"));
  EXPECT_THAT(Fires(*Cron(R"({"minute": "10/20"})"), "2026-01-01T00:00:00Z", 4),
              ElementsAre("2026-01-01T00:10:00+00:00", "2026-01-01T00:30:00+00:00",
                          "2026-01-01T00:50:00+00:00", "2026-01-01T01:10:00+00:00"));
  EXPECT_THAT(Fires(*Cron(R"({"hour": "22-23", "minute": "0, 45"})"), "2026-01-01T00:00:00Z", 5),
              ElementsAre("2026-01-01T22:00:00+00:00", "2026-01-01T22:45:00+00:00",
                          "2026-01-01T23:00:00+00:00", "2026-01-01T23:45:00+00:00",
                          "2026-01-02T22:00:00+00:00"));
  EXPECT_THAT(Fires(*Cron(R"({"second": "1,3,58-59"})"), "2026-01-01T00:00:00Z", 5),
              ElementsAre("2026-01-01T00:00:01+00:00", "2026-01-01T00:00:03+00:00",
                          "2026-01-01T00:00:58+00:00", "2026-01-01T00:00:59+00:00",
                          "2026-01-01T00:01:01+00:00"));
}

TEST(CronTrigger, MonthAndWeekdayNames) {
  auto t = Cron(R"({"month": "Feb-Mar,dec", "day": 1})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:01Z", 4),
              ElementsAre("2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00",
                          "2026-12-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00"));
  EXPECT_EQ(t->Describe(), "cron[month='feb-mar,dec', day='1', timezone='UTC']");
  auto w = Cron(R"({"day_of_week": "MON-Wed, sun", "hour": 9})");  // 2026-01-01 is a Thursday
  EXPECT_THAT(Fires(*w, "2026-01-01T00:00:00Z", 5),
              ElementsAre("2026-01-04T09:00:00+00:00", "2026-01-05T09:00:00+00:00",
                          "2026-01-06T09:00:00+00:00", "2026-01-07T09:00:00+00:00",
                          "2026-01-11T09:00:00+00:00"));
  // Numbers: 0 = Monday, 6 = Sunday.
  auto n = Cron(R"({"day_of_week": "6"})");
  EXPECT_EQ(Next(*n, "2026-01-01T00:00:00Z"), "2026-01-04T00:00:00+00:00");
}

TEST(CronTrigger, YearRangeEnds) {
  auto t = Cron(R"({"year": "2026-2027", "month": 6, "day": 1})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 5),
              ElementsAre("2026-06-01T00:00:00+00:00", "2027-06-01T00:00:00+00:00"));
  auto s = Cron(R"({"year": "*/4", "month": 1, "day": 1})");  // 1970, 1974, ..., 2026, 2030
  EXPECT_EQ(Next(*s, "2026-01-01T00:00:01Z"), "2030-01-01T00:00:00+00:00");
}

TEST(CronTrigger, LeapDayAndShortMonths) {
  auto leap = Cron(R"({"month": 2, "day": 29})");
  EXPECT_THAT(Fires(*leap, "2025-01-01T00:00:00Z", 3),
              ElementsAre("2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00",
                          "2036-02-29T00:00:00+00:00"));
  // 2100 is not a leap year, 2400 is.
  EXPECT_EQ(Next(*leap, "2097-01-01T00:00:00Z"), "2104-02-29T00:00:00+00:00");
  EXPECT_EQ(Next(*leap, "2397-01-01T00:00:00Z"), "2400-02-29T00:00:00+00:00");
  auto d31 = Cron(R"({"day": 31})");
  EXPECT_THAT(Fires(*d31, "2026-04-01T00:00:00Z", 3),
              ElementsAre("2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00",
                          "2026-08-31T00:00:00+00:00"));
  auto range = Cron(R"({"day": "29-31", "hour": 12})");
  EXPECT_THAT(Fires(*range, "2026-02-01T00:00:00Z", 2),
              ElementsAre("2026-03-29T12:00:00+00:00", "2026-03-30T12:00:00+00:00"));
  EXPECT_THAT(Fires(*range, "2024-02-01T00:00:00Z", 2),
              ElementsAre("2024-02-29T12:00:00+00:00", "2024-03-29T12:00:00+00:00"));
}

TEST(CronTrigger, ImpossibleDatesNeverFire) {
  const auto start = std::chrono::steady_clock::now();
  for (std::string_view config :
       {R"({"month": 2, "day": 30})", R"({"month": "apr", "day": 31})",
        R"({"month": 6, "week": 1})", R"({"day": "5th mon", "month": 2, "year": "2026-2030"})",
        R"({"year": 2025})"}) {
    auto t = Cron(config);
    EXPECT_EQ(t->NextFireTime(At("2026-01-01T00:00:00Z")), std::nullopt) << config;
  }
  // 5th Monday of February exists only when Feb 1 is a Monday in a leap year (2044).
  EXPECT_EQ(Next(*Cron(R"({"day": "5th mon", "month": 2})"), "2026-01-01T00:00:00Z"),
            "2044-02-29T00:00:00+00:00");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(CronTrigger, LastDayOfMonth) {
  auto t = Cron(R"({"day": "last", "hour": 23, "minute": 59, "second": 59})");
  EXPECT_THAT(Fires(*t, "2024-01-31T23:59:59Z", 4),
              ElementsAre("2024-01-31T23:59:59+00:00", "2024-02-29T23:59:59+00:00",
                          "2024-03-31T23:59:59+00:00", "2024-04-30T23:59:59+00:00"));
  EXPECT_EQ(Next(*t, "2025-02-01T00:00:00Z"), "2025-02-28T23:59:59+00:00");
  auto mixed = Cron(R"({"day": "1,last"})");
  EXPECT_THAT(Fires(*mixed, "2026-02-02T00:00:00Z", 3),
              ElementsAre("2026-02-28T00:00:00+00:00", "2026-03-01T00:00:00+00:00",
                          "2026-03-31T00:00:00+00:00"));
}

TEST(CronTrigger, NthAndLastWeekdayOfMonth) {
  // January 2026: Mondays 5, 12, 19, 26; Fridays 2, 9, 16, 23, 30.
  auto second_mon = Cron(R"({"day": "2nd mon", "hour": 8})");
  EXPECT_THAT(Fires(*second_mon, "2026-01-01T00:00:00Z", 3),
              ElementsAre("2026-01-12T08:00:00+00:00", "2026-02-09T08:00:00+00:00",
                          "2026-03-09T08:00:00+00:00"));
  auto last_fri = Cron(R"({"day": "last fri"})");
  EXPECT_THAT(Fires(*last_fri, "2026-01-01T00:00:00Z", 3),
              ElementsAre("2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00",
                          "2026-03-27T00:00:00+00:00"));
  // Only months with five Fridays: Jan, May, Jul, Oct 2026.
  auto fifth_fri = Cron(R"({"day": "5th fri"})");
  EXPECT_THAT(Fires(*fifth_fri, "2026-01-01T00:00:00Z", 4),
              ElementsAre("2026-01-30T00:00:00+00:00", "2026-05-29T00:00:00+00:00",
                          "2026-07-31T00:00:00+00:00", "2026-10-30T00:00:00+00:00"));
  auto first = Cron(R"({"day": "1ST   Sun,  3rd sat"})");
  EXPECT_THAT(Fires(*first, "2026-01-01T00:00:00Z", 3),
              ElementsAre("2026-01-04T00:00:00+00:00", "2026-01-17T00:00:00+00:00",
                          "2026-02-01T00:00:00+00:00"));
  EXPECT_EQ(first->Describe(), "cron[day='1st sun,3rd sat', timezone='UTC']");
}

TEST(CronTrigger, DayAndDayOfWeekMustBothMatch) {
  // APScheduler: the 13th that is a Friday (Feb 13 and Mar 13, 2026, then Nov 13).
  auto t = Cron(R"({"day": 13, "day_of_week": "fri"})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 3),
              ElementsAre("2026-02-13T00:00:00+00:00", "2026-03-13T00:00:00+00:00",
                          "2026-11-13T00:00:00+00:00"));
  auto first_monday = Cron(R"({"day": "1-7", "day_of_week": "mon", "hour": 6})");
  EXPECT_EQ(Next(*first_monday, "2026-02-01T00:00:00Z"), "2026-02-02T06:00:00+00:00");
}

TEST(CronTrigger, IsoWeekField) {
  // 2026 has 53 ISO weeks; week 53 runs Mon 2026-12-28 to Sun 2027-01-03, and matches in both
  // calendar years.
  auto t = Cron(R"({"week": 53, "day_of_week": "thu-sun"})");
  EXPECT_THAT(Fires(*t, "2026-06-01T00:00:00Z", 5),
              ElementsAre("2026-12-31T00:00:00+00:00", "2027-01-01T00:00:00+00:00",
                          "2027-01-02T00:00:00+00:00", "2027-01-03T00:00:00+00:00",
                          "2032-12-30T00:00:00+00:00"));
  // ISO week 1 of 2026 starts on Mon 2025-12-29.
  auto w1 = Cron(R"({"week": 1, "day_of_week": "mon"})");
  EXPECT_EQ(Next(*w1, "2025-12-01T00:00:00Z"), "2025-12-29T00:00:00+00:00");
}

TEST(CronTrigger, StartAndEndDatesAreInclusive) {
  auto t = Cron(
      R"({"hour": 12, "start_date": "2026-01-02 12:00:00", "end_date": "2026-01-04 12:00:00"})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 5),
              ElementsAre("2026-01-02T12:00:00+00:00", "2026-01-03T12:00:00+00:00",
                          "2026-01-04T12:00:00+00:00"));
  EXPECT_EQ(t->NextFireTime(At("2026-01-04T12:00:00.000001Z")), std::nullopt);
  // A fractional start rounds the first fire up to the next whole second that matches.
  auto s = Cron(R"({"start_date": "2026-01-01 00:00:00.5"})");
  EXPECT_EQ(Next(*s, "2025-01-01T00:00:00Z"), "2026-01-01T00:00:01+00:00");
  // Start/end given as wall time in the trigger's zone, or with an offset.
  auto z = Cron(
      R"({"hour": 0, "timezone": "Europe/Berlin", "start_date": "2026-01-02",
          "end_date": "2026-01-03T00:00:00+01:00"})");
  EXPECT_THAT(Fires(*z, "2025-12-01T00:00:00Z", 5),
              ElementsAre("2026-01-02T00:00:00+01:00", "2026-01-03T00:00:00+01:00"));
  EXPECT_EQ(z->Describe(),
            "cron[hour='0', start_date='2026-01-02T00:00:00+01:00', "
            "end_date='2026-01-03T00:00:00+01:00', timezone='Europe/Berlin']");
  // Unix seconds.
  auto u = Cron(R"({"minute": "*", "start_date": 1767225600})");
  EXPECT_EQ(Next(*u, "2000-01-01T00:00:00Z"), "2026-01-01T00:00:00+00:00");
}

TEST(CronTrigger, TimeZoneFromConfigOrDefault) {
  TriggerParseOptions opts;
  opts.default_timezone = "America/New_York";
  auto t = Make(TriggerType::kCron, R"({"hour": 2, "minute": 0})", opts);
  EXPECT_EQ(t->timezone(), "America/New_York");
  EXPECT_EQ(Next(*t, "2026-01-01T00:00:00Z"), "2026-01-01T02:00:00-05:00");
  auto b =
      Make(TriggerType::kCron, R"({"hour": 2, "minute": 0, "timezone": "Europe/Berlin"})", opts);
  EXPECT_EQ(b->Describe(), "cron[hour='2', minute='0', timezone='Europe/Berlin']");
  EXPECT_EQ(Next(*b, "2026-01-01T00:00:00Z"), "2026-01-01T02:00:00+01:00");
  // Names are found ignoring case, and reported canonically.
  EXPECT_EQ(Cron(R"({"timezone": "europe/berlin"})")->timezone(), "Europe/Berlin");
  EXPECT_EQ(Cron(R"({"timezone": "utc"})")->timezone(), "UTC");
  // Etc/UTC takes the UTC fast path, other fixed zones the general one.
  EXPECT_EQ(Next(*Cron(R"({"hour": 1, "timezone": "Etc/UTC"})"), "2026-01-01T00:00:00Z"),
            "2026-01-01T01:00:00+00:00");
  EXPECT_EQ(Next(*Cron(R"({"hour": 1, "timezone": "Etc/GMT+5"})"), "2026-01-01T00:00:00Z"),
            "2026-01-01T01:00:00-05:00");
}

// ---------------------------------------------------------------------------------------------
// Cron: daylight saving time (the policy in engine/trigger.h)

TEST(CronDst, BerlinSpringForwardFiresAfterTheGap) {
  // 2026-03-29: 02:00 CET -> 03:00 CEST.
  auto t = Cron(R"({"hour": 2, "minute": 30, "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*t, "2026-03-27T12:00:00Z", 3),
              ElementsAre("2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00",
                          "2026-03-30T02:30:00+02:00"));
  auto q = Cron(R"({"minute": "*/15", "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*q, "2026-03-29T00:30:00Z", 4),
              ElementsAre("2026-03-29T01:30:00+01:00", "2026-03-29T01:45:00+01:00",
                          "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"));
  // A `from` exactly at the end of the gap still sees the skipped 02:30.
  EXPECT_EQ(Next(*t, "2026-03-29T01:00:00Z"), "2026-03-29T03:00:00+02:00");
  EXPECT_EQ(Next(*t, "2026-03-29T01:00:00.000001Z"), "2026-03-30T02:30:00+02:00");
  // Times after the gap are unaffected.
  auto h3 = Cron(R"({"hour": 3, "minute": 30, "timezone": "Europe/Berlin"})");
  EXPECT_EQ(Next(*h3, "2026-03-29T00:00:00Z"), "2026-03-29T03:30:00+02:00");
}

TEST(CronDst, BerlinFallBackFiresOnceAtTheFirstOccurrence) {
  // 2026-10-25: 03:00 CEST -> 02:00 CET; 02:00-02:59 occur twice.
  auto t = Cron(R"({"hour": 2, "minute": 30, "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*t, "2026-10-24T12:00:00Z", 3),
              ElementsAre("2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00",
                          "2026-10-27T02:30:00+01:00"));
  auto hourly = Cron(R"({"minute": 30, "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*hourly, "2026-10-24T23:00:00Z", 4),
              ElementsAre("2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00",
                          "2026-10-25T03:30:00+01:00", "2026-10-25T04:30:00+01:00"));
  auto twenty = Cron(R"({"minute": "*/20", "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*twenty, "2026-10-24T23:50:00Z", 5),
              ElementsAre("2026-10-25T02:00:00+02:00", "2026-10-25T02:20:00+02:00",
                          "2026-10-25T02:40:00+02:00", "2026-10-25T03:00:00+01:00",
                          "2026-10-25T03:20:00+01:00"));
  // A `from` inside the second pass of the repeated hour skips to its end.
  EXPECT_EQ(Next(*twenty, "2026-10-25T01:10:00Z"), "2026-10-25T03:00:00+01:00");
  EXPECT_EQ(Next(*twenty, "2026-10-25T00:10:00Z"), "2026-10-25T02:20:00+02:00");
  // Every second across the change: the last second of the first pass, then 03:00:00 CET.
  auto secs = Cron(R"({"timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*secs, "2026-10-25T00:59:59Z", 2),
              ElementsAre("2026-10-25T02:59:59+02:00", "2026-10-25T03:00:00+01:00"));
}

TEST(CronDst, NewYorkSpringAndFall) {
  // 2026-03-08: 02:00 EST -> 03:00 EDT. 2026-11-01: 02:00 EDT -> 01:00 EST.
  auto t = Cron(R"({"hour": 2, "minute": 30, "timezone": "America/New_York"})");
  EXPECT_THAT(Fires(*t, "2026-03-06T12:00:00Z", 3),
              ElementsAre("2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00",
                          "2026-03-09T02:30:00-04:00"));
  auto f = Cron(R"({"hour": 1, "minute": 30, "timezone": "America/New_York"})");
  EXPECT_THAT(Fires(*f, "2026-10-31T12:00:00Z", 3),
              ElementsAre("2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00",
                          "2026-11-03T01:30:00-05:00"));
  auto hourly = Cron(R"({"minute": 0, "timezone": "America/New_York"})");
  EXPECT_THAT(Fires(*hourly, "2026-11-01T04:30:00Z", 3),
              ElementsAre("2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00",
                          "2026-11-01T03:00:00-05:00"));
  EXPECT_THAT(Fires(*hourly, "2026-03-08T05:30:00Z", 3),
              ElementsAre("2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00",
                          "2026-03-08T04:00:00-04:00"));
}

TEST(CronDst, HalfHourShiftLordHowe) {
  // Australia/Lord_Howe moves by 30 minutes: 2026-04-05 02:00 +11 -> 01:30 +10:30 and
  // 2026-10-04 02:00 +10:30 -> 02:30 +11.
  auto t = Cron(R"({"hour": 1, "minute": "*/20", "timezone": "Australia/Lord_Howe"})");
  EXPECT_THAT(Fires(*t, "2026-04-04T14:00:00Z", 4),
              ElementsAre("2026-04-05T01:00:00+11:00", "2026-04-05T01:20:00+11:00",
                          "2026-04-05T01:40:00+11:00", "2026-04-06T01:00:00+10:30"));
  auto s = Cron(R"({"hour": 2, "minute": "0,15,45", "timezone": "Australia/Lord_Howe"})");
  EXPECT_THAT(Fires(*s, "2026-10-03T12:00:00Z", 3),
              ElementsAre("2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00",
                          "2026-10-05T02:00:00+11:00"));
}

// ---------------------------------------------------------------------------------------------
// Crontab

TEST(Crontab, FiveFieldsStandardMeaning) {
  auto t = Cron(R"({"crontab": "0 2 * * *"})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 2),
              ElementsAre("2026-01-01T02:00:00+00:00", "2026-01-02T02:00:00+00:00"));
  EXPECT_EQ(t->Describe(), "cron[crontab='0 2 * * *', timezone='UTC']");
  auto w = Cron(R"({"crontab": "*/15  9-17 * * mon-fri", "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*w, "2026-01-02T16:50:00Z", 3),  // Friday 17:50 Berlin
              ElementsAre("2026-01-05T09:00:00+01:00", "2026-01-05T09:15:00+01:00",
                          "2026-01-05T09:30:00+01:00"));
  EXPECT_EQ(w->Describe(), "cron[crontab='*/15 9-17 * * mon-fri', timezone='Europe/Berlin']");
}

TEST(Crontab, ZeroAndSevenAreSunday) {
  // 2026-01-04 is a Sunday.
  for (std::string_view dow : {"0", "7", "sun", "SUN"}) {
    auto t = Cron(R"({"crontab": "0 9 * * )" + std::string(dow) + R"("})");
    EXPECT_EQ(Next(*t, "2026-01-01T00:00:00Z"), "2026-01-04T09:00:00+00:00") << dow;
  }
  auto weekend = Cron(R"({"crontab": "0 0 * * 6-7"})");
  EXPECT_THAT(Fires(*weekend, "2026-01-01T00:00:00Z", 3),
              ElementsAre("2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00",
                          "2026-01-10T00:00:00+00:00"));
  auto fri_sun = Cron(R"({"crontab": "0 0 * * fri-sun"})");
  EXPECT_THAT(Fires(*fri_sun, "2026-01-01T00:00:00Z", 4),
              ElementsAre("2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00",
                          "2026-01-04T00:00:00+00:00", "2026-01-09T00:00:00+00:00"));
  auto monday = Cron(R"({"crontab": "0 0 * * 1"})");
  EXPECT_EQ(Next(*monday, "2026-01-01T00:00:00Z"), "2026-01-05T00:00:00+00:00");
}

TEST(Crontab, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // The 13th OR any Friday (January 2026: Fridays 2, 9, 16, ...).
  auto t = Cron(R"({"crontab": "0 0 13 * 5"})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 4),
              ElementsAre("2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00",
                          "2026-01-13T00:00:00+00:00", "2026-01-16T00:00:00+00:00"));
  // One of them '*': the other alone decides.
  auto dom = Cron(R"({"crontab": "0 0 13 * *"})");
  EXPECT_EQ(Next(*dom, "2026-01-01T00:00:00Z"), "2026-01-13T00:00:00+00:00");
  // Vixie cron: a field starting with '*' counts as unrestricted, so "*/2" AND Monday
  // (odd days that are Mondays: 2026-01-05, then 2026-01-19).
  auto star = Cron(R"({"crontab": "0 0 */2 * 1"})");
  EXPECT_THAT(Fires(*star, "2026-01-01T00:00:00Z", 2),
              ElementsAre("2026-01-05T00:00:00+00:00", "2026-01-19T00:00:00+00:00"));
}

TEST(Crontab, Macros) {
  auto next = [](std::string_view macro) {
    auto t = Cron(R"({"crontab": ")" + std::string(macro) + R"("})");
    return Next(*t, "2026-01-01T00:00:01Z");
  };
  EXPECT_EQ(next("@yearly"), "2027-01-01T00:00:00+00:00");
  EXPECT_EQ(next("@annually"), "2027-01-01T00:00:00+00:00");
  EXPECT_EQ(next("@monthly"), "2026-02-01T00:00:00+00:00");
  EXPECT_EQ(next("@weekly"), "2026-01-04T00:00:00+00:00");  // Sunday
  EXPECT_EQ(next("@daily"), "2026-01-02T00:00:00+00:00");
  EXPECT_EQ(next("@midnight"), "2026-01-02T00:00:00+00:00");
  EXPECT_EQ(next("@hourly"), "2026-01-01T01:00:00+00:00");
  EXPECT_EQ(next("@HOURLY"), "2026-01-01T01:00:00+00:00");
}

TEST(Crontab, WithStartEndAndZone) {
  auto t = Cron(R"({"crontab": "30 2 * * *", "timezone": "Europe/Berlin",
                    "start_date": "2026-03-29", "end_date": "2026-03-30 02:30:00"})");
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 5),
              ElementsAre("2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"));
}

// ---------------------------------------------------------------------------------------------
// Interval

TEST(IntervalTrigger, DefaultStartIsCreationPlusInterval) {
  TriggerParseOptions opts;
  opts.created_at_micros = At("2026-01-01T10:00:00Z");
  auto t = Make(TriggerType::kInterval, R"({"hours": 1, "minutes": 30})", opts);
  EXPECT_THAT(Fires(*t, "2026-01-01T00:00:00Z", 3),
              ElementsAre("2026-01-01T11:30:00+00:00", "2026-01-01T13:00:00+00:00",
                          "2026-01-01T14:30:00+00:00"));
  EXPECT_EQ(t->Describe(),
            "interval[1:30:00, start_date='2026-01-01T11:30:00+00:00', "
            "timezone='UTC']");
}

TEST(IntervalTrigger, NextFireIsTheFirstMultipleAtOrAfterFrom) {
  auto t = Make(TriggerType::kInterval, R"({"minutes": 10, "start_date": "2026-01-01 00:00:00"})");
  EXPECT_EQ(Next(*t, "2025-06-01T00:00:00Z"), "2026-01-01T00:00:00+00:00");  // before start
  EXPECT_EQ(Next(*t, "2026-01-01T00:00:00Z"), "2026-01-01T00:00:00+00:00");  // equal counts
  EXPECT_EQ(Next(*t, "2026-01-01T00:00:00.000001Z"), "2026-01-01T00:10:00+00:00");
  EXPECT_EQ(Next(*t, "2026-01-01T00:19:59Z"), "2026-01-01T00:20:00+00:00");
  EXPECT_EQ(Next(*t, "2026-01-01T00:20:00Z"), "2026-01-01T00:20:00+00:00");
  EXPECT_EQ(Next(*t, "2036-01-01T00:05:00Z"), "2036-01-01T00:10:00+00:00");
}

TEST(IntervalTrigger, UnitsSumAndFractions) {
  auto t = Make(TriggerType::kInterval,
                R"({"weeks": 1, "days": 1, "hours": 1, "minutes": 1, "seconds": 1.5,
                    "start_date": "2026-01-01"})");
  EXPECT_EQ(Next(*t, "2026-01-01T00:00:00.1Z"), "2026-01-09T01:01:01.500000+00:00");
  EXPECT_EQ(t->Describe(),
            "interval[8 days, 1:01:01.500000, start_date='2026-01-01T00:00:00+00:00', "
            "timezone='UTC']");
  auto half = Make(TriggerType::kInterval, R"({"seconds": 0.25, "start_date": "2026-01-01"})");
  EXPECT_EQ(Next(*half, "2026-01-01T00:00:00.3Z"), "2026-01-01T00:00:00.500000+00:00");
  auto day = Make(TriggerType::kInterval, R"({"days": 1, "start_date": "2026-01-01"})");
  EXPECT_EQ(day->Describe(),
            "interval[1 day, 0:00:00, start_date='2026-01-01T00:00:00+00:00', timezone='UTC']");
}

TEST(IntervalTrigger, EndDateIsInclusive) {
  auto t = Make(TriggerType::kInterval,
                R"({"hours": 1, "start_date": "2026-01-01", "end_date": "2026-01-01 02:00:00"})");
  EXPECT_THAT(Fires(*t, "2025-01-01T00:00:00Z", 5),
              ElementsAre("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00",
                          "2026-01-01T02:00:00+00:00"));
}

TEST(IntervalTrigger, CountsElapsedTimeAcrossDst) {
  // 24 h after 12:00 CET the day before the spring change is 13:00 CEST.
  auto b = Make(TriggerType::kInterval, R"({"hours": 24, "start_date": "2026-03-28 12:00:00",
                                            "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*b, "2026-03-28T00:00:00Z", 3),
              ElementsAre("2026-03-28T12:00:00+01:00", "2026-03-29T13:00:00+02:00",
                          "2026-03-30T13:00:00+02:00"));
  // And 11:00 CET the day after the fall change.
  auto f = Make(TriggerType::kInterval, R"({"days": 1, "start_date": "2026-10-24 12:00:00",
                                            "timezone": "Europe/Berlin"})");
  EXPECT_THAT(Fires(*f, "2026-10-24T00:00:00Z", 2),
              ElementsAre("2026-10-24T12:00:00+02:00", "2026-10-25T11:00:00+01:00"));
  // Hourly in New York across fall back: 01:00 EDT, 01:00 EST (an hour later), 02:00 EST.
  auto n = Make(TriggerType::kInterval, R"({"hours": 1, "start_date": "2026-11-01 00:00:00",
                                            "timezone": "America/New_York"})");
  EXPECT_THAT(Fires(*n, "2026-11-01T00:00:00Z", 4),
              ElementsAre("2026-11-01T00:00:00-04:00", "2026-11-01T01:00:00-04:00",
                          "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"));
  // Across spring forward: 01:00 EST, then 03:00 EDT (one hour later).
  auto s = Make(TriggerType::kInterval, R"({"hours": 1, "start_date": "2026-03-08 01:00:00",
                                            "timezone": "America/New_York"})");
  EXPECT_THAT(Fires(*s, "2026-03-08T00:00:00Z", 2),
              ElementsAre("2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"));
}

TEST(IntervalTrigger, HugeFromDoesNotOverflow) {
  auto t = Make(TriggerType::kInterval, R"({"weeks": 1000, "start_date": "2026-01-01"})");
  EXPECT_EQ(t->NextFireTime(std::numeric_limits<int64_t>::max()), std::nullopt);
  EXPECT_EQ(t->NextFireTime(std::numeric_limits<int64_t>::min()), At("2026-01-01T00:00:00Z"));
}

// ---------------------------------------------------------------------------------------------
// Date

TEST(DateTrigger, FiresOnce) {
  auto t = Make(TriggerType::kDate, R"({"run_date": "2026-03-29 02:30:00",
                                        "timezone": "Europe/Berlin"})");
  EXPECT_EQ(Next(*t, "2026-01-01T00:00:00Z"), "2026-03-29T03:00:00+02:00");  // in the gap
  EXPECT_EQ(Next(*t, "2026-03-29T01:00:00Z"), "2026-03-29T03:00:00+02:00");  // equal counts
  EXPECT_EQ(Next(*t, "2026-03-29T01:00:00.000001Z"), "never");
  EXPECT_EQ(t->Describe(), "date[run_date='2026-03-29T03:00:00+02:00', timezone='Europe/Berlin']");
  auto f = Make(TriggerType::kDate, R"({"run_date": "2026-10-25 02:30:00",
                                        "timezone": "Europe/Berlin"})");
  EXPECT_EQ(Next(*f, "2026-01-01T00:00:00Z"), "2026-10-25T02:30:00+02:00");  // first occurrence
  auto o = Make(TriggerType::kDate, R"({"run_date": "2026-05-01T08:00:00.25-04:00"})");
  EXPECT_EQ(Next(*o, "2026-01-01T00:00:00Z"), "2026-05-01T12:00:00.250000+00:00");
}

// ---------------------------------------------------------------------------------------------
// Invalid configs: refused, with a message naming the field

struct BadConfig {
  TriggerType type;
  std::string_view config;
  std::string_view names;  // a substring the message must contain
};

TEST(TriggerParse, RefusesInvalidConfigsNamingTheField) {
  constexpr TriggerType kC = TriggerType::kCron;
  constexpr TriggerType kI = TriggerType::kInterval;
  constexpr TriggerType kD = TriggerType::kDate;
  const BadConfig cases[] = {
      {kC, R"({"hour": 24})", "'hour'"},
      {kC, R"({"hour": "24"})", "above the maximum 23"},
      {kC, R"({"hour": -1})", "'hour'"},
      {kC, R"({"hour": 1.5})", "'hour'"},
      {kC, R"({"hour": true})", "'hour'"},
      {kC, R"({"hour": [1]})", "'hour'"},
      {kC, R"({"hour": "5-3"})", "'hour'"},
      {kC, R"({"hour": "last"})", "'hour'"},
      {kC, R"({"hour": "1,,2"})", "'hour'"},
      {kC, R"({"hour": "99999999999"})", "'hour'"},
      {kC, R"({"minute": "*/0"})", "'minute'"},
      {kC, R"({"minute": "*/60"})", "'minute'"},
      {kC, R"({"minute": "10-20/11"})", "'minute'"},
      {kC, R"({"minute": "a-b"})", "'minute'"},
      {kC, R"({"minute": "*/x"})", "'minute'"},
      {kC, R"({"second": ""})", "'second'"},
      {kC, R"({"second": 60})", "'second'"},
      {kC, R"({"day": 0})", "'day'"},
      {kC, R"({"day": 32})", "'day'"},
      {kC, R"({"day": "6th mon"})", "'day'"},
      {kC, R"({"day": "2nd funday"})", "'day'"},
      {kC, R"({"day": "mon"})", "'day'"},
      {kC, R"({"week": 0})", "'week'"},
      {kC, R"({"week": 54})", "'week'"},
      {kC, R"({"day_of_week": "funday"})", "'day_of_week'"},
      {kC, R"({"day_of_week": 7})", "'day_of_week'"},
      {kC, R"({"day_of_week": "sun-mon"})", "'day_of_week'"},
      {kC, R"({"month": "foo"})", "'month'"},
      {kC, R"({"month": 13})", "'month'"},
      {kC, R"({"year": 1969})", "'year'"},
      {kC, R"({"year": 10000})", "'year'"},
      {kC, R"({"jitter": 5})", "'jitter'"},
      {kC, R"({"hours": 5})", "'hours'"},
      {kC, R"({"timezone": "Mars/Base"})", "'timezone'"},
      {kC, R"({"timezone": 5})", "'timezone'"},
      {kC, R"({"timezone": ""})", "'timezone'"},
      {kC, R"({"start_date": "2026-02-30"})", "'start_date'"},
      {kC, R"({"start_date": "tomorrow"})", "'start_date'"},
      {kC, R"({"end_date": "2026-01-01 25:00:00"})", "'end_date'"},
      {kC, R"({"end_date": true})", "'end_date'"},
      {kC, R"({"start_date": "2026-01-02", "end_date": "2026-01-01"})", "'end_date'"},
      {kC, R"({"crontab": "* * * *"})", "'crontab'"},
      {kC, R"({"crontab": "* * * * * *"})", "'crontab'"},
      {kC, R"({"crontab": "@reboot"})", "'crontab'"},
      {kC, R"({"crontab": 5})", "'crontab'"},
      {kC, R"({"crontab": "61 * * * *"})", "'minute'"},
      {kC, R"({"crontab": "* 24 * * *"})", "'hour'"},
      {kC, R"({"crontab": "* * 0 * *"})", "'day-of-month'"},
      {kC, R"({"crontab": "* * * 13 *"})", "'month'"},
      {kC, R"({"crontab": "* * * * 8"})", "'day-of-week'"},
      {kC, R"({"crontab": "*/0 * * * *"})", "'minute'"},
      {kC, R"({"crontab": "0 0 L * *"})", "'day-of-month'"},
      {kC, R"({"crontab": "0 0 * * *", "hour": 1})", "'crontab'"},
      {kI, R"({})", "interval"},
      {kI, R"({"hours": 0, "seconds": 0})", "interval"},
      {kI, R"({"hours": -1})", "'hours'"},
      {kI, R"({"hours": "1"})", "'hours'"},
      {kI, R"({"weeks": 1e30})", "weeks"},
      {kI, R"({"hour": 1})", "'hour'"},
      {kI, R"({"hours": 1, "start_date": "x"})", "'start_date'"},
      {kI, R"({"hours": 1, "start_date": "2026-01-02", "end_date": "2026-01-01"})", "'end_date'"},
      {kI, R"({"hours": 1, "timezone": "Nowhere/City"})", "'timezone'"},
      {kD, R"({})", "'run_date'"},
      {kD, R"({"run_date": null})", "'run_date'"},
      {kD, R"({"run_date": "2026-13-01"})", "'run_date'"},
      {kD, R"({"run_date": "2026-01-01", "hours": 1})", "'hours'"},
  };
  for (const BadConfig& c : cases) {
    Status s = ParseError(c.type, c.config);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.config;
    EXPECT_THAT(s.message(), HasSubstr(c.names)) << c.config;
  }
  // The server's default zone is checked too.
  TriggerParseOptions opts;
  opts.default_timezone = "Nowhere/City";
  Status s = ParseError(TriggerType::kCron, R"({"hour": 2})", opts);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("Nowhere/City"));
}

TEST(TriggerParse, ErrorMessagesAreSpecific) {
  EXPECT_EQ(ParseError(TriggerType::kCron, R"({"hour": 24})").message(),
            "cron field 'hour': 24 is above the maximum 23");
  EXPECT_EQ(ParseError(TriggerType::kCron, R"({"minute": "*/0"})").message(),
            "cron field 'minute': the step must be at least 1 in '*/0'");
  EXPECT_EQ(ParseError(TriggerType::kCron, R"({"timezone": "Mars/Base"})").message(),
            "cron field 'timezone': unknown time zone 'Mars/Base'");
  EXPECT_THAT(ParseError(TriggerType::kCron, R"({"jitter": 1})").message(),
              HasSubstr("cron trigger: unknown field 'jitter'"));
}

}  // namespace
}  // namespace bmos::engine
