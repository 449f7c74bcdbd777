#include "engine/cron.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <span>
#include <utility>

namespace bmos::engine {
namespace {

using storage::Result;
using storage::Status;

constexpr int kMinYear = 1970;
constexpr int kMaxYear = 9999;
constexpr int kYearCount = kMaxYear - kMinYear + 1;

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
// APScheduler numbering: 0 = Monday.
constexpr std::array<std::string_view, 7> kWeekdayNames = {"mon", "tue", "wed", "thu",
                                                           "fri", "sat", "sun"};
// Crontab numbering: 0 = Sunday.
constexpr std::array<std::string_view, 7> kCronWeekdayNames = {"sun", "mon", "tue", "wed",
                                                               "thu", "fri", "sat"};
constexpr std::array<std::string_view, 6> kPositionNames = {"1st", "2nd", "3rd",
                                                            "4th", "5th", "last"};

// ---- Civil calendar (proleptic Gregorian), after Howard Hinnant's public-domain algorithms ----

constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

constexpr bool IsLeap(int y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

constexpr int DaysInMonth(int y, int m) {
  constexpr int kDays[] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m];
}

// Days from 1970-01-01 to y-m-d.
constexpr int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int y, m, d;
};

constexpr Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {static_cast<int>(yoe + era * 400 + (m <= 2)), m, d};
}

// 0 = Monday.
constexpr int WeekdayFromDays(int64_t z) {
  return static_cast<int>(FloorDiv(z + 3, 7) * -7 + z + 3);
}

// Number of ISO weeks (52 or 53) in ISO year y.
constexpr int IsoWeeksInYear(int y) {
  auto p = [](int v) { return (v + v / 4 - v / 100 + v / 400) % 7; };
  return p(y) == 4 || p(y - 1) == 3 ? 53 : 52;
}

constexpr int DayOfYear(int y, int m, int d) {
  constexpr int kBefore[] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  return kBefore[m] + d + (m > 2 && IsLeap(y));
}

// The ISO week number (1-53) of y-m-d, whose weekday is `wd` (0 = Monday).
constexpr int IsoWeek(int y, int m, int d, int wd) {
  const int week = (DayOfYear(y, m, d) - wd + 9) / 7;
  if (week < 1) return IsoWeeksInYear(y - 1);
  if (week > IsoWeeksInYear(y)) return 1;
  return week;
}

// ---- Expression parsing ----

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// How one field is written.
struct FieldSyntax {
  std::string_view context;  // "cron field" or "crontab field"
  std::string_view name;
  int min;
  int max;
  std::span<const std::string_view> names;  // names[i] stands for names_base + i
  int names_base = 0;
  bool day_specials = false;      // `last`, `2nd mon`, `last fri`
  bool step_within_range = true;  // APScheduler refuses a step larger than its range
  bool sunday_is_seven = false;   // crontab day-of-week: "sun" ending a range means 7
};

Status FieldError(const FieldSyntax& f, std::string_view message) {
  std::string m;
  m.append(f.context).append(" '").append(f.name).append("': ").append(message);
  return Status::InvalidArgument(std::move(m));
}

// 'token'. (Appended piecewise: GCC 12 at -O3 warns, wrongly, that "'" + std::string(token)
// overlaps itself: -Wrestrict, GCC bug 105329.)
std::string Quoted(std::string_view token) {
  std::string q;
  q.reserve(token.size() + 2);
  q.push_back('\'');
  q.append(token);
  q.push_back('\'');
  return q;
}

// A number or (where the field has them) a name. `range_end`: the value ends a range.
Status ParseValue(std::string_view token, const FieldSyntax& f, bool range_end, int* out) {
  if (token.empty()) return FieldError(f, "missing value");
  if (std::isdigit(static_cast<unsigned char>(token.front()))) {
    int64_t v = 0;
    for (char c : token) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        return FieldError(f, Quoted(token) + " is not a number");
      }
      v = v * 10 + (c - '0');
      if (v > 1'000'000) return FieldError(f, Quoted(token) + " is too large");
    }
    *out = static_cast<int>(v);
    return Status::Ok();
  }
  for (size_t i = 0; i < f.names.size(); ++i) {
    if (token == f.names[i]) {
      *out = f.names_base + static_cast<int>(i);
      if (f.sunday_is_seven && range_end && *out == 0) *out = 7;
      return Status::Ok();
    }
  }
  return FieldError(f, "unknown value '" + std::string(token) + "'");
}

Status ParseNumber(std::string_view token, const FieldSyntax& f, std::string_view what, int* out) {
  if (token.empty() || token.size() > 7 || !std::all_of(token.begin(), token.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      })) {
    return FieldError(f, "bad " + std::string(what) + " '" + std::string(token) + "'");
  }
  *out = std::stoi(std::string(token));
  return Status::Ok();
}

// Adds the values of one comma-separated item to `values` (indexed by value) or `specials`.
Status ParseItem(std::string_view item, const FieldSyntax& f, std::vector<bool>* values,
                 std::vector<CronSchedule::DaySpecial>* specials) {
  if (item.empty()) return FieldError(f, "empty expression");
  if (f.day_specials) {
    if (item == "last") {
      specials->push_back({-1, 0});
      return Status::Ok();
    }
    const size_t space = item.find_first_of(" \t");
    if (space != std::string_view::npos) {
      const std::string_view pos = item.substr(0, space);
      const std::string_view day = Trim(item.substr(space));
      auto p = std::find(kPositionNames.begin(), kPositionNames.end(), pos);
      if (p == kPositionNames.end()) {
        return FieldError(f, "unknown weekday position '" + std::string(pos) +
                                 "' (expected 1st, 2nd, 3rd, 4th, 5th or last)");
      }
      auto w = std::find(kWeekdayNames.begin(), kWeekdayNames.end(), day);
      if (w == kWeekdayNames.end()) {
        return FieldError(f, "unknown weekday name '" + std::string(day) + "'");
      }
      specials->push_back({static_cast<int>(p - kPositionNames.begin()),
                           static_cast<int>(w - kWeekdayNames.begin())});
      return Status::Ok();
    }
  }
  std::string_view base = item;
  int step = 0;
  const size_t slash = item.find('/');
  if (slash != std::string_view::npos) {
    base = Trim(item.substr(0, slash));
    if (Status s = ParseNumber(Trim(item.substr(slash + 1)), f, "step", &step); !s.ok()) return s;
    if (step == 0)
      return FieldError(f, "the step must be at least 1 in '" + std::string(item) + "'");
  }
  int first = f.min;
  int last = f.max;
  const bool star = base == "*";
  if (!star) {
    const size_t dash = base.find('-');
    if (dash == std::string_view::npos) {
      if (Status s = ParseValue(base, f, false, &first); !s.ok()) return s;
      last = step != 0 ? f.max : first;
    } else {
      if (Status s = ParseValue(Trim(base.substr(0, dash)), f, false, &first); !s.ok()) return s;
      if (Status s = ParseValue(Trim(base.substr(dash + 1)), f, true, &last); !s.ok()) return s;
    }
    if (first < f.min) {
      return FieldError(f,
                        std::to_string(first) + " is below the minimum " + std::to_string(f.min));
    }
    if (last > f.max) {
      return FieldError(f, std::to_string(last) + " is above the maximum " + std::to_string(f.max));
    }
    if (first > last) {
      return FieldError(f, "the range '" + std::string(base) + "' is reversed (" +
                               std::to_string(first) + " > " + std::to_string(last) + ")");
    }
  }
  if (step != 0 && f.step_within_range && step > last - first) {
    return FieldError(f, "the step " + std::to_string(step) + " is larger than the range " +
                             std::to_string(first) + "-" + std::to_string(last));
  }
  for (int v = first; v <= last; v += std::max(step, 1)) (*values)[v] = true;
  return Status::Ok();
}

// Parses a comma list. `values` gets size max + 1.
Status ParseExpression(std::string_view expr, const FieldSyntax& f, std::vector<bool>* values,
                       std::vector<CronSchedule::DaySpecial>* specials) {
  values->assign(f.max + 1, false);
  const std::string lower = Lower(expr);
  std::string_view rest = lower;
  while (true) {
    const size_t comma = rest.find(',');
    if (Status s = ParseItem(Trim(rest.substr(0, comma)), f, values, specials); !s.ok()) return s;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return Status::Ok();
}

// Normalized text of an expression: lower case, no blanks around items.
std::string Normalize(std::string_view expr) {
  std::string out;
  const std::string lower = Lower(expr);
  std::string_view rest = lower;
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    // Collapse inner blanks ("2nd   mon" -> "2nd mon").
    bool blank = false;
    for (char c : item) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        blank = true;
        continue;
      }
      if (blank) out.push_back(' ');
      blank = false;
      out.push_back(c);
    }
    if (comma == std::string_view::npos) break;
    out.push_back(',');
    rest.remove_prefix(comma + 1);
  }
  return out;
}

template <typename Mask>
Mask ToMask(const std::vector<bool>& values) {
  Mask m = 0;
  for (size_t v = 0; v < values.size(); ++v) {
    if (values[v]) m |= Mask{1} << v;
  }
  return m;
}

// Lowest set bit of `mask` at or above `from`, or -1. REQUIRES: from >= 0.
template <typename Mask>
inline int NextBit(Mask mask, int from) {
  constexpr int kBits = sizeof(Mask) * 8;
  if (from >= kBits) return -1;
  const Mask m = mask & (~Mask{0} << from);
  return m == 0 ? -1 : std::countr_zero(m);
}

}  // namespace

Result<CronSchedule> CronSchedule::FromFields(const Fields& fields) {
  static constexpr std::array<int, kNumFields> kMin = {kMinYear, 1, 1, 1, 0, 0, 0, 0};
  static constexpr std::array<int, kNumFields> kMax = {kMaxYear, 12, 31, 53, 6, 23, 59, 59};
  // APScheduler's DEFAULT_VALUES, used for fields finer than the finest given one.
  static constexpr std::array<std::string_view, kNumFields> kDefault = {"*", "1", "1", "*",
                                                                        "*", "0", "0", "0"};
  int finest = -1;
  for (int i = 0; i < kNumFields; ++i) {
    if (fields[i].has_value()) finest = i;
  }
  CronSchedule c;
  std::vector<bool> values;
  for (int i = 0; i < kNumFields; ++i) {
    FieldSyntax f{"cron field", kFieldNames[i], kMin[i], kMax[i], {}};
    if (i == kMonth) f.names = kMonthNames, f.names_base = 1;
    if (i == kDayOfWeek) f.names = kWeekdayNames;
    if (i == kDay) f.day_specials = true;
    // APScheduler assigns the defaults only after the finest given field; with no field at
    // all, every field is '*'.
    std::string_view expr = finest >= 0 && i > finest ? kDefault[i] : "*";
    if (fields[i].has_value()) {
      expr = *fields[i];
      if (!c.description_.empty()) c.description_ += ", ";
      c.description_.append(kFieldNames[i]).append("='").append(Normalize(expr)).append("'");
    }
    std::vector<DaySpecial> specials;
    if (Status s = ParseExpression(expr, f, &values, &specials); !s.ok()) return s;
    switch (i) {
      case kYear:
        if (!std::all_of(values.begin() + kMinYear, values.end(), [](bool b) { return b; })) {
          c.years_.assign((kYearCount + 63) / 64, 0);
          for (int y = kMinYear; y <= kMaxYear; ++y) {
            if (values[y]) c.years_[(y - kMinYear) / 64] |= uint64_t{1} << ((y - kMinYear) % 64);
          }
        }
        break;
      case kMonth:
        c.months_ = ToMask<uint32_t>(values);
        break;
      case kDay:
        c.days_ = ToMask<uint32_t>(values);
        c.day_specials_ = std::move(specials);
        break;
      case kWeek:
        c.weeks_ = ToMask<uint64_t>(values);
        c.all_weeks_ = c.weeks_ == (((uint64_t{1} << 54) - 1) & ~uint64_t{1});
        break;
      case kDayOfWeek:
        c.weekdays_ = ToMask<uint32_t>(values);
        break;
      case kHour:
        c.hours_ = ToMask<uint32_t>(values);
        break;
      case kMinute:
        c.minutes_ = ToMask<uint64_t>(values);
        break;
      case kSecond:
        c.seconds_ = ToMask<uint64_t>(values);
        break;
    }
  }
  c.PrecomputeMonthDays();
  return c;
}

Result<CronSchedule> CronSchedule::FromCrontab(std::string_view line) {
  const std::string text = Lower(Trim(line));
  std::string_view expr = text;
  if (!expr.empty() && expr.front() == '@') {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros = {{
        {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"},
        {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"},
        {"@daily", "0 0 * * *"},
        {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    }};
    auto it = std::find_if(kMacros.begin(), kMacros.end(),
                           [&](const auto& m) { return m.first == expr; });
    if (it == kMacros.end()) {
      return Status::InvalidArgument(
          "cron field 'crontab': unknown macro '" + text +
          "' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)");
    }
    expr = it->second;
  }
  std::vector<std::string_view> parts;
  for (size_t i = 0; i < expr.size();) {
    if (std::isspace(static_cast<unsigned char>(expr[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < expr.size() && !std::isspace(static_cast<unsigned char>(expr[j]))) ++j;
    parts.push_back(expr.substr(i, j - i));
    i = j;
  }
  if (parts.size() != 5) {
    return Status::InvalidArgument(
        "cron field 'crontab': expected 5 fields (minute hour day-of-month month day-of-week), "
        "got " +
        std::to_string(parts.size()));
  }
  CronSchedule c;
  const FieldSyntax syntax[5] = {
      {"crontab field", "minute", 0, 59, {}, 0, false, false},
      {"crontab field", "hour", 0, 23, {}, 0, false, false},
      {"crontab field", "day-of-month", 1, 31, {}, 0, false, false},
      {"crontab field", "month", 1, 12, kMonthNames, 1, false, false},
      {"crontab field", "day-of-week", 0, 7, kCronWeekdayNames, 0, false, false, true},
  };
  std::vector<bool> values[5];
  for (int i = 0; i < 5; ++i) {
    std::vector<DaySpecial> unused;
    if (Status s = ParseExpression(parts[i], syntax[i], &values[i], &unused); !s.ok()) return s;
  }
  c.years_.clear();
  c.seconds_ = 1;
  c.minutes_ = ToMask<uint64_t>(values[0]);
  c.hours_ = ToMask<uint32_t>(values[1]);
  c.days_ = ToMask<uint32_t>(values[2]);
  c.months_ = ToMask<uint32_t>(values[3]);
  c.weeks_ = ~uint64_t{0};
  c.all_weeks_ = true;
  for (int d = 0; d <= 7; ++d) {
    // Crontab 0 and 7 = Sunday = our 6; crontab 1 = Monday = our 0.
    if (values[4][d]) c.weekdays_ |= 1u << ((d + 6) % 7);
  }
  // Vixie cron: OR only when neither day field starts with '*'.
  c.day_or_weekday_ = parts[2].front() != '*' && parts[4].front() != '*';
  c.description_ = "crontab='" + text + "'";
  if (text.front() != '@') {
    c.description_ = "crontab='";
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i) c.description_ += ' ';
      c.description_.append(parts[i]);
    }
    c.description_ += "'";
  }
  c.PrecomputeMonthDays();
  return c;
}

void CronSchedule::PrecomputeMonthDays() {
  for (int w1 = 0; w1 < 7; ++w1) {
    for (int n = 28; n <= 31; ++n) {
      const uint32_t valid = static_cast<uint32_t>(((uint64_t{1} << (n + 1)) - 1) & ~uint64_t{1});
      uint32_t dom = days_;
      for (const DaySpecial& s : day_specials_) {
        if (s.position < 0) {
          dom |= uint32_t{1} << n;
          continue;
        }
        int first_hit = s.weekday - w1 + 1;
        if (first_hit <= 0) first_hit += 7;
        const int day =
            s.position < 5 ? first_hit + 7 * s.position : first_hit + (n - first_hit) / 7 * 7;
        if (day <= n) dom |= uint32_t{1} << day;
      }
      uint32_t dow = 0;
      for (int d = 1; d <= n; ++d) {
        if (weekdays_ & (1u << ((w1 + d - 1) % 7))) dow |= uint32_t{1} << d;
      }
      month_days_[w1][n - 28] = (day_or_weekday_ ? (dom | dow) : (dom & dow)) & valid;
    }
  }
}

bool CronSchedule::YearAllowed(int year) const {
  if (year < kMinYear || year > kMaxYear) return false;
  if (years_.empty()) return true;
  const int i = year - kMinYear;
  return (years_[i / 64] >> (i % 64)) & 1;
}

uint32_t CronSchedule::DaysOfMonth(int year, int month) const {
  const int n = DaysInMonth(year, month);
  const int w1 = WeekdayFromDays(DaysFromCivil(year, month, 1));
  uint32_t mask = month_days_[w1][n - 28];
  if (!all_weeks_ && mask != 0) {
    uint32_t in_weeks = 0;
    for (int d = 1; d <= n; ++d) {
      if ((mask >> d) & 1) {
        const int week = IsoWeek(year, month, d, (w1 + d - 1) % 7);
        if ((weeks_ >> week) & 1) in_weeks |= uint32_t{1} << d;
      }
    }
    mask = in_weeks;
  }
  return mask;
}

std::optional<int64_t> CronSchedule::NextMatch(int64_t local_seconds) const {
  const int64_t days = FloorDiv(local_seconds, 86400);
  const int sod = static_cast<int>(local_seconds - days * 86400);
  auto [y, m, d] = CivilFromDays(days);
  int hh = sod / 3600, mm = sod / 60 % 60, ss = sod % 60;
  if (y < kMinYear) y = kMinYear, m = 1, d = 1, hh = mm = ss = 0;
  // The days that match in a whole year depend only on the year modulo 400 (the Gregorian
  // cycle is a whole number of weeks), so a year residue that once had no matching day is
  // skipped later: a schedule that never matches ("day 30, month 2") ends after <= 400 scans.
  uint64_t barren[7] = {};
  bool whole_year = m == 1 && d == 1 && hh == 0 && mm == 0 && ss == 0;
  auto next_year = [&] {
    ++y, m = 1, d = 1, hh = mm = ss = 0;
    whole_year = true;
  };
  while (true) {
    if (y > kMaxYear) return std::nullopt;
    if (!YearAllowed(y) || (whole_year && ((barren[(y % 400) / 64] >> (y % 400 % 64)) & 1))) {
      next_year();
      continue;
    }
    const int m2 = NextBit(months_, m);
    if (m2 < 0) {
      if (whole_year) barren[(y % 400) / 64] |= uint64_t{1} << (y % 400 % 64);
      next_year();
      continue;
    }
    if (m2 != m) m = m2, d = 1, hh = mm = ss = 0;
    const int d2 = NextBit(DaysOfMonth(y, m), d);
    if (d2 < 0) {
      ++m, d = 1, hh = mm = ss = 0;
      continue;
    }
    if (d2 != d) d = d2, hh = mm = ss = 0;
    const int h2 = NextBit(hours_, hh);
    if (h2 < 0) {
      ++d, hh = mm = ss = 0;
      continue;
    }
    if (h2 != hh) hh = h2, mm = ss = 0;
    const int mi2 = NextBit(minutes_, mm);
    if (mi2 < 0) {
      ++hh, mm = ss = 0;
      continue;
    }
    if (mi2 != mm) mm = mi2, ss = 0;
    const int s2 = NextBit(seconds_, ss);
    if (s2 < 0) {
      ++mm, ss = 0;
      continue;
    }
    return DaysFromCivil(y, m, d) * 86400 + hh * 3600 + mm * 60 + s2;
  }
}

bool CronSchedule::Matches(int64_t local_seconds) const {
  return NextMatch(local_seconds) == local_seconds;
}

}  // namespace bmos::engine
