#include "engine/trigger.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <utility>
#include <vector>

#include "engine/cron.h"

namespace bmos::engine {
namespace {

using storage::Result;
using storage::Status;

constexpr int64_t kMicrosPerSecond = 1'000'000;
// 10000-01-01T00:00:00Z: no fire time is at or after it (cron years end at 9999).
constexpr int64_t kEndOfTimeSeconds = 253'402'300'800;

constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}
constexpr int64_t CeilDiv(int64_t a, int64_t b) { return -FloorDiv(-a, b); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// An IANA time zone with the DST policy of trigger.h. A cheap value: the zone itself lives in
// date's process-wide database, which is never unloaded.
class Zone {
 public:
  // `what` names the field in the error message ("cron field 'timezone'").
  static Result<Zone> Locate(std::string_view name, std::string_view what) {
    const date::time_zone* tz = nullptr;
    try {
      try {
        tz = date::locate_zone(name);
      } catch (const std::runtime_error&) {
        // pytz, which APScheduler uses, finds names ignoring case ("utc", "europe/berlin").
        for (const date::time_zone& z : date::get_tzdb().zones) {
          if (EqualsIgnoreCase(z.name(), name)) {
            tz = &z;
            break;
          }
        }
      }
      // The zone loads its transitions lazily on first use; load them now, where a failure
      // can still be reported, and not in NextFireTime.
      if (tz != nullptr) (void)tz->get_info(date::sys_seconds{});
    } catch (const std::exception& e) {
      return Status::InvalidArgument(std::string(what) + ": cannot load time zone '" +
                                     std::string(name) + "': " + e.what());
    }
    if (tz == nullptr) {
      return Status::InvalidArgument(std::string(what) + ": unknown time zone '" +
                                     std::string(name) + "'");
    }
    Zone zone;
    zone.name_ = std::string(tz->name());
    // UTC needs no conversion at all; skip the database for it.
    if (zone.name_ != "UTC" && zone.name_ != "Etc/UTC") zone.tz_ = tz;
    return zone;
  }

  const std::string& name() const { return name_; }

  // UTC offset in force at `sys_seconds`.
  int64_t OffsetSeconds(int64_t sys_seconds) const {
    if (tz_ == nullptr) return 0;
    return tz_->get_info(date::sys_seconds{std::chrono::seconds{sys_seconds}}).offset.count();
  }

  // The instant of wall-clock time `local_seconds` under the DST policy: a time in a gap maps
  // to the first instant after the gap, a repeated time to its first occurrence. Monotonic
  // (non-decreasing) in `local_seconds`, which NextFireTime relies on.
  // `in_gap` (optional) is set to whether the wall time does not exist.
  int64_t LocalToSys(int64_t local_seconds, bool* in_gap = nullptr) const {
    if (in_gap != nullptr) *in_gap = false;
    if (tz_ == nullptr) return local_seconds;
    const date::local_info li =
        tz_->get_info(date::local_seconds{std::chrono::seconds{local_seconds}});
    if (li.result == date::local_info::nonexistent) {
      if (in_gap != nullptr) *in_gap = true;
      return li.first.end.time_since_epoch().count();
    }
    // unique, or ambiguous: `first` is the earlier occurrence.
    return local_seconds - li.first.offset.count();
  }

  int64_t LocalMicrosToSys(int64_t local_micros) const {
    const int64_t secs = FloorDiv(local_micros, kMicrosPerSecond);
    const int64_t frac = local_micros - secs * kMicrosPerSecond;
    bool in_gap = false;
    const int64_t sys = LocalToSys(secs, &in_gap);
    // A time in a gap maps to the transition instant itself, fraction and all.
    return sys * kMicrosPerSecond + (in_gap ? 0 : frac);
  }

  // The smallest wall-clock time L with LocalToSys(L) >= sys_seconds.
  int64_t FirstLocalAtOrAfter(int64_t sys_seconds) const {
    if (tz_ == nullptr) return sys_seconds;
    const date::sys_info si = tz_->get_info(date::sys_seconds{std::chrono::seconds{sys_seconds}});
    const int64_t offset = si.offset.count();
    const int64_t begin = si.begin.time_since_epoch().count();
    const int64_t local = sys_seconds + offset;
    // Only near the start of the current period can the previous one matter (offset changes
    // are far shorter than two days).
    if (sys_seconds - begin < 2 * 86400) {
      const int64_t prev = tz_->get_info(si.begin - std::chrono::seconds{1}).offset.count();
      // Inside the second pass of a repeated hour: those wall times fired on the first pass;
      // continue after the repeat.
      if (prev > offset && local < begin + prev) return begin + prev;
      // Exactly at the end of a gap: the skipped wall times map to this instant.
      if (prev < offset && sys_seconds == begin) return begin + prev;
    }
    return local;
  }

  // ISO 8601 with offset; see FormatIsoWithOffset.
  std::string Format(int64_t unix_micros) const {
    const int64_t secs = FloorDiv(unix_micros, kMicrosPerSecond);
    const int64_t frac = unix_micros - secs * kMicrosPerSecond;
    const int64_t offset = OffsetSeconds(secs);
    const int64_t local = secs + offset;
    const int64_t days = FloorDiv(local, 86400);
    const int64_t sod = local - days * 86400;
    const date::year_month_day ymd{date::sys_days{date::days{days}}};
    char buf[80];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", int(ymd.year()),
                          unsigned(ymd.month()), unsigned(ymd.day()), int(sod / 3600),
                          int(sod / 60 % 60), int(sod % 60));
    if (frac != 0) n += std::snprintf(buf + n, sizeof buf - n, ".%06d", int(frac));
    const int64_t a = offset < 0 ? -offset : offset;
    n += std::snprintf(buf + n, sizeof buf - n, "%c%02d:%02d", offset < 0 ? '-' : '+',
                       int(a / 3600), int(a / 60 % 60));
    if (a % 60 != 0) std::snprintf(buf + n, sizeof buf - n, ":%02d", int(a % 60));
    return buf;
  }

 private:
  const date::time_zone* tz_ = nullptr;  // nullptr = UTC
  std::string name_;
};

// ---- Date-time text ----

// Reads 1..max_digits digits from `s` at `*pos`.
bool ReadNumber(std::string_view s, size_t* pos, size_t min_digits, size_t max_digits, int* out) {
  size_t i = *pos;
  int v = 0;
  while (i < s.size() && i - *pos < max_digits && std::isdigit(static_cast<unsigned char>(s[i]))) {
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  if (i - *pos < min_digits) return false;
  *pos = i;
  *out = v;
  return true;
}

// Parses the start_date/run_date forms; Unix microseconds. `what` names the field.
Result<int64_t> ParseDateTimeText(std::string_view text, const Zone& zone, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(std::string(what) + ": '" + std::string(text) + "' " +
                                   std::string(why) +
                                   " (expected YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|+HH:MM])");
  };
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  size_t p = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  int64_t frac_us = 0;
  if (!ReadNumber(s, &p, 4, 4, &y) || p >= s.size() || s[p++] != '-' ||
      !ReadNumber(s, &p, 1, 2, &mo) || p >= s.size() || s[p++] != '-' ||
      !ReadNumber(s, &p, 1, 2, &d)) {
    return bad("is not a date");
  }
  if (p < s.size() && (s[p] == ' ' || s[p] == 'T' || s[p] == 't')) {
    ++p;
    if (!ReadNumber(s, &p, 1, 2, &h) || p >= s.size() || s[p++] != ':' ||
        !ReadNumber(s, &p, 1, 2, &mi)) {
      return bad("has a malformed time");
    }
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!ReadNumber(s, &p, 1, 2, &sec)) return bad("has malformed seconds");
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        const size_t start = p;
        int64_t scale = 100'000;
        while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
          frac_us += (s[p] - '0') * scale;  // digits past microseconds are truncated
          scale /= 10;
          ++p;
        }
        if (p == start) return bad("has an empty fraction");
      }
    }
  }
  bool has_offset = false;
  int64_t offset = 0;
  if (p < s.size()) {
    if (s[p] == 'Z' || s[p] == 'z') {
      has_offset = true;
      ++p;
    } else if (s[p] == '+' || s[p] == '-') {
      const int sign = s[p] == '-' ? -1 : 1;
      ++p;
      int oh = 0, om = 0;
      if (!ReadNumber(s, &p, 2, 2, &oh)) return bad("has a malformed UTC offset");
      if (p < s.size() && s[p] == ':') ++p;
      if (p < s.size() && !ReadNumber(s, &p, 2, 2, &om)) return bad("has a malformed UTC offset");
      if (oh > 23 || om > 59) return bad("has a UTC offset out of range");
      has_offset = true;
      offset = sign * (oh * 3600 + om * 60);
    }
  }
  if (p != s.size()) return bad("has trailing text");
  if (y < 1 || mo < 1 || mo > 12 || d < 1 ||
      date::year_month_day{date::year{y}, date::month(static_cast<unsigned>(mo)),
                           date::day(static_cast<unsigned>(d))}
              .ok() == false) {
    return bad("is not a valid calendar date");
  }
  if (h > 23 || mi > 59 || sec > 59) return bad("has a time of day out of range");
  const int64_t days = date::sys_days{date::year{y} / mo / d}.time_since_epoch().count();
  const int64_t local_us = (days * 86400 + h * 3600 + mi * 60 + sec) * kMicrosPerSecond + frac_us;
  if (has_offset) return local_us - offset * kMicrosPerSecond;
  return zone.LocalMicrosToSys(local_us);
}

// ---- JSON helpers ----

// The field's value, or nullptr when it is absent or null.
const boost::json::value* Find(const boost::json::object& config, std::string_view key) {
  const boost::json::value* v = config.if_contains(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

std::string FieldName(std::string_view type, std::string_view field) {
  return std::string(type) + " field '" + std::string(field) + "'";
}

// A date field: string (see ParseDateTimeText) or number of Unix seconds.
Result<std::optional<int64_t>> GetDate(const boost::json::object& config, std::string_view type,
                                       std::string_view key, const Zone& zone) {
  const boost::json::value* v = Find(config, key);
  if (v == nullptr) return std::optional<int64_t>();
  const std::string what = FieldName(type, key);
  if (v->is_string()) {
    Result<int64_t> t = ParseDateTimeText(v->get_string(), zone, what);
    if (!t.ok()) return t.status();
    return std::optional<int64_t>(*t);
  }
  if (v->is_number()) {
    const double secs = v->to_number<double>();
    if (!std::isfinite(secs) || secs < -1e12 || secs > 1e12) {
      return Status::InvalidArgument(what + ": Unix time out of range");
    }
    if (v->is_int64()) return std::optional<int64_t>(v->get_int64() * kMicrosPerSecond);
    if (v->is_uint64()) {
      return std::optional<int64_t>(static_cast<int64_t>(v->get_uint64()) * kMicrosPerSecond);
    }
    return std::optional<int64_t>(std::llround(secs * 1e6));
  }
  return Status::InvalidArgument(what + ": must be a date-time string or Unix seconds");
}

Status CheckFields(const boost::json::object& config, std::string_view type,
                   std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : config) {
    if (std::find(allowed.begin(), allowed.end(), kv.key()) != allowed.end()) continue;
    std::string list;
    for (std::string_view a : allowed) {
      if (!list.empty()) list += ", ";
      list += a;
    }
    return Status::InvalidArgument(std::string(type) + " trigger: unknown field '" +
                                   std::string(kv.key()) + "' (expected " + list + ")");
  }
  return Status::Ok();
}

Status CheckRange(std::string_view type, const std::optional<int64_t>& start,
                  const std::optional<int64_t>& end, const Zone& zone) {
  if (start && end && *end < *start) {
    return Status::InvalidArgument(FieldName(type, "end_date") + ": " + zone.Format(*end) +
                                   " is before start_date " + zone.Format(*start));
  }
  return Status::Ok();
}

std::string DescribeDates(const std::optional<int64_t>& start, const std::optional<int64_t>& end,
                          const Zone& zone) {
  std::string out;
  if (start) out += ", start_date='" + zone.Format(*start) + "'";
  if (end) out += ", end_date='" + zone.Format(*end) + "'";
  out += ", timezone='" + zone.name() + "'";
  return out;
}

// ---- The three triggers ----

class CronTrigger final : public Trigger {
 public:
  CronTrigger(CronSchedule schedule, Zone zone, std::optional<int64_t> start,
              std::optional<int64_t> end)
      : schedule_(std::move(schedule)), zone_(std::move(zone)), start_(start), end_(end) {}

  TriggerType type() const override { return TriggerType::kCron; }

  std::optional<int64_t> NextFireTime(int64_t from_micros) const override {
    int64_t from = start_ ? std::max(from_micros, *start_) : from_micros;
    if (from >= kEndOfTimeSeconds * kMicrosPerSecond) return std::nullopt;
    // Fire times are whole seconds; before 1970 nothing matches anyway.
    const int64_t t = std::max<int64_t>(CeilDiv(from, kMicrosPerSecond), -2 * 86400);
    int64_t local = zone_.FirstLocalAtOrAfter(t);
    // LocalToSys is monotonic and maps FirstLocalAtOrAfter(t) to >= t, so the first match is
    // the answer; the loop only guards against a time zone database that breaks monotonicity.
    for (int attempt = 0; attempt < 8; ++attempt) {
      const std::optional<int64_t> match = schedule_.NextMatch(local);
      if (!match) return std::nullopt;
      const int64_t fire = zone_.LocalToSys(*match);
      if (fire < t) {
        local = *match + 1;
        continue;
      }
      const int64_t fire_us = fire * kMicrosPerSecond;
      if (end_ && fire_us > *end_) return std::nullopt;
      return fire_us;
    }
    return std::nullopt;
  }

  std::string Describe() const override {
    std::string options = schedule_.Describe() + DescribeDates(start_, end_, zone_);
    if (schedule_.Describe().empty()) options.erase(0, 2);  // the leading ", "
    return "cron[" + options + "]";
  }

  const std::string& timezone() const override { return zone_.name(); }
  std::string FormatTime(int64_t unix_micros) const override { return zone_.Format(unix_micros); }

 private:
  CronSchedule schedule_;
  Zone zone_;
  std::optional<int64_t> start_;
  std::optional<int64_t> end_;
};

class IntervalTrigger final : public Trigger {
 public:
  IntervalTrigger(int64_t interval, int64_t start, std::optional<int64_t> end, Zone zone)
      : interval_(interval), start_(start), end_(end), zone_(std::move(zone)) {}

  TriggerType type() const override { return TriggerType::kInterval; }
  std::optional<int64_t> FixedIntervalMicros() const override { return interval_; }

  std::optional<int64_t> NextFireTime(int64_t from_micros) const override {
    __int128 fire = start_;
    if (from_micros > start_) {
      const __int128 elapsed = static_cast<__int128>(from_micros) - start_;
      fire += (elapsed + interval_ - 1) / interval_ * interval_;
    }
    if (fire > std::numeric_limits<int64_t>::max()) return std::nullopt;
    if (end_ && fire > *end_) return std::nullopt;
    return static_cast<int64_t>(fire);
  }

  std::string Describe() const override {
    // Python's str(timedelta): "1:00:00", "2 days, 0:30:00", "0:00:00.500000".
    const int64_t total_s = interval_ / kMicrosPerSecond;
    const int64_t days = total_s / 86400;
    const int64_t sod = total_s % 86400;
    char buf[96];
    int n = 0;
    if (days > 0) {
      n = std::snprintf(buf, sizeof buf, "%lld day%s, ", static_cast<long long>(days),
                        days == 1 ? "" : "s");
    }
    n += std::snprintf(buf + n, sizeof buf - n, "%d:%02d:%02d", int(sod / 3600), int(sod / 60 % 60),
                       int(sod % 60));
    if (interval_ % kMicrosPerSecond != 0) {
      std::snprintf(buf + n, sizeof buf - n, ".%06d", int(interval_ % kMicrosPerSecond));
    }
    return "interval[" + std::string(buf) + DescribeDates(start_, end_, zone_) + "]";
  }

  const std::string& timezone() const override { return zone_.name(); }
  std::string FormatTime(int64_t unix_micros) const override { return zone_.Format(unix_micros); }

 private:
  int64_t interval_;  // > 0
  int64_t start_;
  std::optional<int64_t> end_;
  Zone zone_;
};

class DateTrigger final : public Trigger {
 public:
  DateTrigger(int64_t run, Zone zone) : run_(run), zone_(std::move(zone)) {}

  TriggerType type() const override { return TriggerType::kDate; }
  std::optional<int64_t> NextFireTime(int64_t from_micros) const override {
    if (run_ < from_micros) return std::nullopt;
    return run_;
  }
  std::string Describe() const override {
    return "date[run_date='" + zone_.Format(run_) + "', timezone='" + zone_.name() + "']";
  }
  const std::string& timezone() const override { return zone_.name(); }
  std::string FormatTime(int64_t unix_micros) const override { return zone_.Format(unix_micros); }

 private:
  int64_t run_;
  Zone zone_;
};

Result<std::unique_ptr<Trigger>> ParseCron(const boost::json::object& config, Zone zone) {
  constexpr std::string_view kType = "cron";
  if (Status s = CheckFields(config, kType,
                             {"year", "month", "day", "week", "day_of_week", "hour", "minute",
                              "second", "crontab", "start_date", "end_date", "timezone"});
      !s.ok()) {
    return s;
  }
  Result<std::optional<int64_t>> start = GetDate(config, kType, "start_date", zone);
  if (!start.ok()) return start.status();
  Result<std::optional<int64_t>> end = GetDate(config, kType, "end_date", zone);
  if (!end.ok()) return end.status();
  if (Status s = CheckRange(kType, *start, *end, zone); !s.ok()) return s;

  CronSchedule::Fields fields;
  bool any_field = false;
  for (int i = 0; i < CronSchedule::kNumFields; ++i) {
    const std::string_view name = CronSchedule::kFieldNames[i];
    const boost::json::value* v = Find(config, name);
    if (v == nullptr) continue;
    any_field = true;
    if (v->is_string()) {
      fields[i] = std::string(v->get_string());
    } else if (v->is_int64() || v->is_uint64()) {
      if (v->is_int64() && v->get_int64() < 0) {
        return Status::InvalidArgument(FieldName(kType, name) + ": " +
                                       std::to_string(v->get_int64()) + " is negative");
      }
      fields[i] = v->is_int64() ? std::to_string(v->get_int64()) : std::to_string(v->get_uint64());
    } else {
      return Status::InvalidArgument(FieldName(kType, name) + ": must be a string or an integer");
    }
  }
  Result<CronSchedule> schedule = Status::Internal("unset");
  if (const boost::json::value* crontab = Find(config, "crontab")) {
    if (any_field) {
      for (std::string_view name : CronSchedule::kFieldNames) {
        if (Find(config, name) != nullptr) {
          return Status::InvalidArgument(FieldName(kType, "crontab") +
                                         ": cannot be combined with field '" + std::string(name) +
                                         "'");
        }
      }
    }
    if (!crontab->is_string()) {
      return Status::InvalidArgument(FieldName(kType, "crontab") + ": must be a string");
    }
    schedule = CronSchedule::FromCrontab(crontab->get_string());
  } else {
    schedule = CronSchedule::FromFields(fields);
  }
  if (!schedule.ok()) return schedule.status();
  return std::unique_ptr<Trigger>(
      new CronTrigger(std::move(schedule).value(), std::move(zone), *start, *end));
}

Result<std::unique_ptr<Trigger>> ParseInterval(const boost::json::object& config, Zone zone,
                                               int64_t created_at) {
  constexpr std::string_view kType = "interval";
  if (Status s = CheckFields(
          config, kType,
          {"weeks", "days", "hours", "minutes", "seconds", "start_date", "end_date", "timezone"});
      !s.ok()) {
    return s;
  }
  static constexpr std::array<std::pair<std::string_view, double>, 5> kUnits = {{
      {"weeks", 7.0 * 86400e6},
      {"days", 86400e6},
      {"hours", 3600e6},
      {"minutes", 60e6},
      {"seconds", 1e6},
  }};
  long double total = 0;
  for (const auto& [name, micros] : kUnits) {
    const boost::json::value* v = Find(config, name);
    if (v == nullptr) continue;
    if (!v->is_number()) {
      return Status::InvalidArgument(FieldName(kType, name) + ": must be a number");
    }
    const double x = v->to_number<double>();
    if (!std::isfinite(x) || x < 0) {
      return Status::InvalidArgument(FieldName(kType, name) + ": must be a non-negative number");
    }
    total += static_cast<long double>(x) * micros;
  }
  // Ten thousand years: far beyond any real timetable, far below int64 microseconds.
  if (total > 3.2e17L) {
    return Status::InvalidArgument(std::string(kType) +
                                   " trigger: weeks, days, hours, minutes and seconds sum to "
                                   "more than 10000 years");
  }
  const int64_t interval = std::llround(static_cast<double>(total));
  if (interval <= 0) {
    return Status::InvalidArgument(std::string(kType) +
                                   " trigger: weeks, days, hours, minutes and seconds sum to 0; "
                                   "the interval must be positive");
  }
  Result<std::optional<int64_t>> start = GetDate(config, kType, "start_date", zone);
  if (!start.ok()) return start.status();
  Result<std::optional<int64_t>> end = GetDate(config, kType, "end_date", zone);
  if (!end.ok()) return end.status();
  const int64_t first = start->has_value() ? **start : created_at + interval;
  if (Status s = CheckRange(kType, first, *end, zone); !s.ok()) return s;
  return std::unique_ptr<Trigger>(new IntervalTrigger(interval, first, *end, std::move(zone)));
}

Result<std::unique_ptr<Trigger>> ParseDate(const boost::json::object& config, Zone zone) {
  constexpr std::string_view kType = "date";
  if (Status s = CheckFields(config, kType, {"run_date", "timezone"}); !s.ok()) return s;
  Result<std::optional<int64_t>> run = GetDate(config, kType, "run_date", zone);
  if (!run.ok()) return run.status();
  if (!run->has_value()) {
    return Status::InvalidArgument(FieldName(kType, "run_date") + ": is required");
  }
  return std::unique_ptr<Trigger>(new DateTrigger(**run, std::move(zone)));
}

}  // namespace

std::string_view ToString(TriggerType type) {
  switch (type) {
    case TriggerType::kCron:
      return "cron";
    case TriggerType::kInterval:
      return "interval";
    case TriggerType::kDate:
      return "date";
  }
  return "unknown";
}

Result<TriggerType> ParseTriggerType(std::string_view text) {
  for (TriggerType t : {TriggerType::kCron, TriggerType::kInterval, TriggerType::kDate}) {
    if (text == ToString(t)) return t;
  }
  return Status::InvalidArgument("unknown trigger type '" + std::string(text) +
                                 "' (expected cron, interval or date)");
}

Result<std::unique_ptr<Trigger>> Trigger::Parse(TriggerType type, const boost::json::object& config,
                                                const TriggerParseOptions& options) {
  const std::string_view type_name = ToString(type);
  std::string zone_name = options.default_timezone;
  std::string zone_what = "default time zone";
  if (const boost::json::value* tz = Find(config, "timezone")) {
    if (!tz->is_string() || tz->get_string().empty()) {
      return Status::InvalidArgument(FieldName(type_name, "timezone") +
                                     ": must be a non-empty string");
    }
    zone_name = std::string(tz->get_string());
    zone_what = FieldName(type_name, "timezone");
  }
  Result<Zone> zone = Zone::Locate(zone_name, zone_what);
  if (!zone.ok()) return zone.status();
  switch (type) {
    case TriggerType::kCron:
      return ParseCron(config, std::move(zone).value());
    case TriggerType::kInterval:
      return ParseInterval(config, std::move(zone).value(), options.created_at_micros);
    case TriggerType::kDate:
      return ParseDate(config, std::move(zone).value());
  }
  return Status::InvalidArgument("unknown trigger type");
}

Result<std::string> FormatIsoWithOffset(int64_t unix_micros, std::string_view timezone) {
  Result<Zone> zone = Zone::Locate(timezone, "time zone");
  if (!zone.ok()) return zone.status();
  return zone->Format(unix_micros);
}

Result<int64_t> ParseDateTime(std::string_view text, std::string_view timezone) {
  Result<Zone> zone = Zone::Locate(timezone, "time zone");
  if (!zone.ok()) return zone.status();
  return ParseDateTimeText(text, *zone, "date-time");
}

}  // namespace bmos::engine
