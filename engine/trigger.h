// Trigger: when a scheduled job fires. APScheduler 3.x compatible cron, interval and date
// triggers, parsed from the JSON trigger configs BMOS clients send (DESIGN.md, "Scheduler").
//
// Pure code: no threads, no clock reads, no I/O except that the first use of a time zone in the
// process reads the system tz database (/usr/share/zoneinfo, through Howard Hinnant's date/tz
// built with USE_OS_TZDB). `now` is always passed in. Times are Unix microseconds (int64_t), as
// Clock::NowMicros() returns them.
//
// Time zones and daylight saving time (the declared policy; tests/engine/trigger_test.cc checks
// every example below):
//   - Cron triggers match wall-clock times in the trigger's IANA time zone.
//   - A wall-clock time that does not exist (spring forward) fires at the first instant after the
//     gap. Europe/Berlin, 2026-03-29, clocks jump from 02:00 CET to 03:00 CEST:
//       {hour: 2, minute: 30}              fires at 03:00:00+02:00 that day (01:00Z);
//       {minute: "*/15"}                   fires 01:45+01:00, then once at 03:00+02:00 (for the
//                                          skipped 02:00, 02:15, 02:30 and 02:45 together, and
//                                          03:00 itself), then 03:15+02:00.
//   - A wall-clock time that occurs twice (fall back) fires once, at its first occurrence.
//     Europe/Berlin, 2026-10-25, clocks go back from 03:00 CEST to 02:00 CET:
//       {hour: 2, minute: 30}              fires at 02:30+02:00 (00:30Z) only, not at 02:30+01:00;
//       {minute: 30}  (every hour at :30)  fires 01:30+02:00, 02:30+02:00, then 03:30+01:00: the
//                                          repeated 02:30+01:00 does not fire (two hours between
//                                          the fires around the change);
//       {minute: "*/20"}                   02:00, 02:20, 02:40 (+02:00), then 03:00+01:00.
//     America/New_York behaves the same at its 02:00 changes.
//   - Interval triggers count elapsed time: {hours: 24} started at 12:00 CET the day before the
//     spring change fires at 13:00 CEST (24 h later), not at 12:00 CEST.
//   - Wall-clock start_date, end_date and run_date (without an offset) follow the same rule: a
//     time in the gap means the first instant after it, a repeated time its first occurrence.
//   - Known limit: the date library (3.0.1) reads only the transitions stored in the TZif files,
//     which Debian's tzdata lists up to 2037; later years keep the offset in force at the end of
//     2037 (for Europe/Berlin, CET all year).
//
// Thread-safety: a Trigger is immutable after Parse; its const methods may be called from any
// thread at the same time.
#ifndef BMOS_ENGINE_TRIGGER_H_
#define BMOS_ENGINE_TRIGGER_H_

#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace bmos::engine {

enum class TriggerType { kCron, kInterval, kDate };

// "cron", "interval", "date".
std::string_view ToString(TriggerType type);
// The inverse of ToString (exact, lower case). InvalidArgument for any other text.
[[nodiscard]] storage::Result<TriggerType> ParseTriggerType(std::string_view text);

struct TriggerParseOptions {
  // The IANA time zone of configs without a "timezone" field (the server's, or the CLI's --tz).
  // Default: "UTC".
  std::string default_timezone = "UTC";
  // When the job was created, Unix microseconds. An interval trigger without start_date starts
  // at created_at + interval (APScheduler 3.x: the first run is one interval after creation).
  // Pass the job's persisted creation time, so that parsing the same config again after a
  // restart gives the same timetable. Default: 0 (the Unix epoch, so such intervals are aligned
  // to it).
  int64_t created_at_micros = 0;
};

class Trigger {
 public:
  virtual ~Trigger() = default;

  // Parses the APScheduler trigger config `config` (the JSON object clients send as
  // trigger_config) for `type`.
  //
  // cron:     year, month, day, week, day_of_week, hour, minute, second (see engine/cron.h for
  //           the expressions and the defaulting rule; each a JSON string or integer), or
  //           instead of them "crontab" (a crontab line or @macro, standard cron meaning); plus
  //           start_date, end_date, timezone.
  // interval: weeks, days, hours, minutes, seconds (non-negative JSON numbers, fractions
  //           allowed, summed; the sum must be > 0), start_date, end_date, timezone. Fires at
  //           start + k * interval, k = 0, 1, ... (elapsed time).
  // date:     run_date (required), timezone. Fires once.
  //
  // start_date, end_date, run_date: "YYYY-MM-DD", or "YYYY-MM-DD HH:MM[:SS[.fraction]]" with a
  // space or "T", then optionally "Z" or an offset "+HH:MM" (also "+HHMM", "+HH"); without an
  // offset they are wall-clock time in the trigger's time zone (see the DST policy above). A JSON
  // number is taken as Unix seconds (fractions allowed). start_date and end_date are inclusive.
  // "timezone": an IANA name (exact, else matched ignoring case), overriding
  // options.default_timezone. A JSON null for any field means the field is absent.
  //
  // Returns the trigger (owned by the caller) on success. InvalidArgument, whose message names
  // the field ("cron field 'hour': 24 is above the maximum 23"), for: a field the type does not
  // have, a value of the wrong JSON type, a bad expression or date, an unknown time zone
  // (including a bad options.default_timezone), end_date before start_date, a missing run_date,
  // an interval of zero or overflowing length, crontab mixed with other cron fields.
  [[nodiscard]] static storage::Result<std::unique_ptr<Trigger>> Parse(
      TriggerType type, const boost::json::object& config, const TriggerParseOptions& options = {});

  virtual TriggerType type() const = 0;

  // The earliest fire time at or after `from_micros` (a fire time equal to it counts), or
  // nullopt when the trigger never fires again: past end_date, a date trigger whose run_date is
  // before `from_micros`, a cron that never matches again (day 30 of February, a year range
  // already over) or no match before year 10000. To walk a timetable, call it again with the
  // previous fire time + 1.
  //   cron:     whole seconds, at or after max(from, start_date).
  //   interval: start + k * interval with the smallest k >= 0 for which it is >= from (so a
  //             `from` before start_date gives start_date itself).
  //   date:     run_date if run_date >= from.
  virtual std::optional<int64_t> NextFireTime(int64_t from_micros) const = 0;

  // Interval triggers: the interval in microseconds (their fire times are start + k * it, up to
  // end_date). Others: nullopt. Lets callers count a long run of fire times without walking it.
  virtual std::optional<int64_t> FixedIntervalMicros() const { return std::nullopt; }

  // A canonical one-line description for logs and the API, in APScheduler's str() style with
  // the options that apply:
  //   cron[hour='2', minute='0', timezone='Europe/Berlin']
  //   cron[crontab='0 2 * * 1-5', start_date='2026-01-01T00:00:00+01:00', timezone='UTC']
  //   interval[1 day, 2:00:00, start_date='2026-01-01T00:00:00+00:00', timezone='UTC']
  //   date[run_date='2026-03-29T03:00:00+02:00', timezone='Europe/Berlin']
  virtual std::string Describe() const = 0;

  // The canonical name of the trigger's time zone ("UTC", "Europe/Berlin").
  virtual const std::string& timezone() const = 0;

  // `unix_micros` as ISO 8601 wall time in the trigger's time zone with its UTC offset,
  // as FormatIsoWithOffset does.
  virtual std::string FormatTime(int64_t unix_micros) const = 0;
};

// `unix_micros` as ISO 8601 wall-clock time in the IANA time zone `timezone` with its UTC
// offset: "2026-03-29T03:00:00+02:00"; "+00:00" for UTC; a fraction ".250000" only when the time
// is not a whole second. InvalidArgument naming the zone if it is unknown.
[[nodiscard]] storage::Result<std::string> FormatIsoWithOffset(int64_t unix_micros,
                                                               std::string_view timezone);

// Parses a date-time in the start_date/run_date forms above (a string; wall time without offset
// in `timezone`, under the DST policy above) to Unix microseconds. For `schedule preview --from`.
// InvalidArgument for a malformed or impossible date or an unknown zone.
[[nodiscard]] storage::Result<int64_t> ParseDateTime(std::string_view text,
                                                     std::string_view timezone);

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_TRIGGER_H_
