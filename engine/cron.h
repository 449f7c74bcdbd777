// CronSchedule: the calendar part of a cron trigger, that is which wall-clock seconds match.
//
// It knows nothing of time zones, start or end dates: it works on "local seconds", the seconds
// from 1970-01-01 00:00:00 to a wall-clock time counted as if every day had 86,400 seconds
// (a civil calendar with no UTC offset). engine/trigger.h maps instants to wall-clock times and
// back under its daylight-saving policy; Trigger is the type the rest of the engine uses.
//
// Two syntaxes build one:
//   - APScheduler 3.x fields (FromFields): year, month, day, week, day_of_week, hour, minute,
//     second, with APScheduler's expressions and defaulting rule (see FromFields);
//   - a standard five-field crontab line or macro (FromCrontab), with Vixie cron's meaning.
//
// Matching uses one bitmask per field and a per-month table of matching days, and the search
// moves to the next candidate of the first field that does not match (like APScheduler and
// croniter), so NextMatch costs about 0.1 us for typical expressions (bmos-microbench).
//
// Thread-safety: immutable once built; const methods may be called from any thread.
#ifndef BMOS_ENGINE_CRON_H_
#define BMOS_ENGINE_CRON_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace bmos::engine {

class CronSchedule {
 public:
  // The APScheduler fields, coarsest first; the index of each name in kFieldNames.
  enum Field { kYear, kMonth, kDay, kWeek, kDayOfWeek, kHour, kMinute, kSecond, kNumFields };
  static constexpr std::array<std::string_view, kNumFields> kFieldNames = {
      "year", "month", "day", "week", "day_of_week", "hour", "minute", "second"};

  // One expression per field; nullopt = the field was not given.
  using Fields = std::array<std::optional<std::string>, kNumFields>;

  // Builds a schedule from APScheduler 3.x CronTrigger fields. Each expression is a comma list of
  //   *          every value              */n      every n-th value from the field's minimum
  //   a          one value                a-b      a range (a <= b; no wrap-around)
  //   a-b/n      every n-th from a to b   a/n      every n-th from a to the field's maximum
  // with value ranges year 1970-9999, month 1-12, day 1-31, week 1-53 (ISO week), day_of_week
  // 0-6 (0 = Monday), hour 0-23, minute 0-59, second 0-59. Names stand for numbers in month
  // (jan-dec) and day_of_week (mon-sun). The day field also takes `last` (the month's last
  // day), `<nth> <weekday>` (nth = 1st, 2nd, 3rd, 4th, 5th; "5th fri" does not match in a
  // month with four Fridays) and `last <weekday>`. Case and blanks around items do not matter.
  // A time matches when every field matches: in particular day, week and day_of_week must all
  // match (APScheduler's rule, not Vixie cron's OR).
  //
  // Defaulting (APScheduler's CronTrigger.__init__): fields coarser than the finest given field
  // default to `*`; finer ones to their minimum (month 1, day 1, hour 0, minute 0, second 0),
  // except week and day_of_week, which default to `*`. So {hour: 2} is every day at 02:00:00,
  // {minute: "*/5"} is every five minutes at second 0, {day_of_week: "mon"} is Mondays at
  // 00:00:00, and no field at all is every second.
  //
  // Errors: InvalidArgument naming the field ("cron field 'hour': 24 is above the maximum 23")
  // for an unknown name, a value out of range, a step of 0 or larger than its range (APScheduler
  // refuses these too: "*/60" for minute), a reversed range, `last`/weekday positions outside the
  // day field, or an empty expression.
  [[nodiscard]] static storage::Result<CronSchedule> FromFields(const Fields& fields);

  // Builds a schedule from a crontab line "minute hour day-of-month month day-of-week" or one of
  // the macros @yearly (= @annually), @monthly, @weekly, @daily (= @midnight), @hourly. Standard
  // cron meaning, unlike APScheduler's from_crontab: day-of-week 0 and 7 are Sunday (names
  // sun-sat), and when both day-of-month and day-of-week are restricted a day matches if EITHER
  // matches. As in Vixie cron and cronie, a day field whose text starts with `*` counts as
  // unrestricted for that rule ("*/2" and "mon" = odd days that are Mondays). The second is 0.
  // Same item syntax as above (names also in ranges: "mon-fri", "jan-mar"); steps may exceed the
  // range ("*/90" in minute = minute 0), as in cron.
  // Errors: InvalidArgument naming the crontab and the cron field ("crontab field 'hour': ...").
  [[nodiscard]] static storage::Result<CronSchedule> FromCrontab(std::string_view line);

  // The earliest matching wall-clock second at or after `local_seconds` (see the file comment),
  // or nullopt if none exists before year 10000 (or ever: "day 30, month 2" never matches; such
  // a search gives up after at most one 400-year Gregorian cycle of years, about 1 ms).
  std::optional<int64_t> NextMatch(int64_t local_seconds) const;

  // True if `local_seconds` is a matching wall-clock time. Same result as
  // NextMatch(t) == t, provided for tests and callers that only check.
  bool Matches(int64_t local_seconds) const;

  // The given fields in APScheduler's str() form, e.g. "hour='2', minute='0'" (only the given
  // fields, normalized to lower case without blanks around items), or "crontab='0 2 * * *'".
  const std::string& Describe() const { return description_; }

  // A day-field item that is not a plain number (public only for the parser in cron.cc).
  struct DaySpecial {
    int position;  // 0..4 = 1st..5th; 5 = last; -1 = the month's last day (`last`)
    int weekday;   // 0 = Monday; unused for `last`
  };

 private:
  CronSchedule() = default;
  // Fills month_days_ from the day, day_of_week masks and day specials.
  void PrecomputeMonthDays();
  // Days 1..31 (bit d) of month `month` of `year` that match day, day_of_week and week.
  uint32_t DaysOfMonth(int year, int month) const;
  bool YearAllowed(int year) const;

  // Bit v set = value v matches (bit 0 of month/day/week unused).
  std::vector<uint64_t> years_;  // bit (y - 1970); empty = every year
  uint32_t months_ = 0;
  uint32_t days_ = 0;  // plain day-of-month values
  std::vector<DaySpecial> day_specials_;
  uint64_t weeks_ = 0;
  bool all_weeks_ = true;
  uint32_t weekdays_ = 0;  // bit 0 = Monday
  uint32_t hours_ = 0;
  uint64_t minutes_ = 0;
  uint64_t seconds_ = 0;
  // Crontab only: day matches if day-of-month OR day-of-week matches.
  bool day_or_weekday_ = false;
  // month_days_[w][n - 28]: matching days of a month that has n days and starts on weekday w,
  // ignoring the week field.
  std::array<std::array<uint32_t, 4>, 7> month_days_{};
  std::string description_;
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_CRON_H_
