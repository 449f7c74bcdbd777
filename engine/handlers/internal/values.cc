#include "engine/handlers/internal/values.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

#include "engine/handlers/internal/utf8.h"

namespace bmos::engine::handlers::internal {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && AsciiLower(a) == AsciiLower(b);
}

// Digits of "1,234,567" grouped by `sep` (first group 1..3 digits not starting with 0, then
// groups of exactly 3), or nullopt.
std::optional<std::string> Ungroup(std::string_view s, char sep) {
  std::string digits;
  size_t start = 0;
  bool first = true;
  for (;;) {
    const size_t end = s.find(sep, start);
    const std::string_view group =
        s.substr(start, end == std::string_view::npos ? s.npos : end - start);
    if (!AllDigits(group)) return std::nullopt;
    if (first) {
      if (group.size() > 3 || group[0] == '0') return std::nullopt;
      first = false;
    } else if (group.size() != 3) {
      return std::nullopt;
    }
    digits.append(group);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return digits;
}

constexpr std::array<std::string_view, 5> kCurrency = {"$", "\xE2\x82\xAC", "\xC2\xA3", "\xC2\xA5",
                                                       "\xEF\xBF\xA5"};

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2) {
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[month - 1];
}

std::optional<Date> MakeDate(int year, int month, int day) {
  if (year < 1000 || year > 9999 || month < 1 || month > 12 || day < 1) return std::nullopt;
  if (day > DaysInMonth(year, month)) return std::nullopt;
  return Date{year, month, day};
}

int ToInt(std::string_view digits) {
  int v = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), v);
  return v;
}

// 1..12 for an English month name or its abbreviation ("Jan", "Sept", "january"), else 0.
int MonthFromName(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "january", "february", "march",     "april",   "may",      "june",
      "july",    "august",   "september", "october", "november", "december"};
  const std::string lower = AsciiLower(name);
  if (lower.size() < 3) return 0;
  if (lower == "sept") return 9;
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (lower == kMonths[i] || (lower.size() == 3 && StartsWith(kMonths[i], lower))) {
      return static_cast<int>(i) + 1;
    }
  }
  return 0;
}

struct Token {
  std::string_view text;
  bool digits;
};

}  // namespace

std::string_view Trim(std::string_view s) {
  static constexpr std::string_view kNbsp = "\xC2\xA0";
  static constexpr std::string_view kIdeoSpace = "\xE3\x80\x80";
  for (bool changed = true; changed && !s.empty();) {
    changed = false;
    const char c = s.front();
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      s.remove_prefix(1);
      changed = true;
    } else if (StartsWith(s, kNbsp)) {
      s.remove_prefix(kNbsp.size());
      changed = true;
    } else if (StartsWith(s, kIdeoSpace)) {
      s.remove_prefix(kIdeoSpace.size());
      changed = true;
    }
  }
  for (bool changed = true; changed && !s.empty();) {
    changed = false;
    const char c = s.back();
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      s.remove_suffix(1);
      changed = true;
    } else if (s.size() >= kNbsp.size() && s.substr(s.size() - kNbsp.size()) == kNbsp) {
      s.remove_suffix(kNbsp.size());
      changed = true;
    } else if (s.size() >= kIdeoSpace.size() &&
               s.substr(s.size() - kIdeoSpace.size()) == kIdeoSpace) {
      s.remove_suffix(kIdeoSpace.size());
      changed = true;
    }
  }
  return s;
}

bool IsNullMarker(std::string_view s) {
  for (const std::string_view m : {"na", "n/a", "#n/a", "null", "none", "nan"}) {
    if (EqualsIgnoreCase(s, m)) return true;
  }
  return false;
}

std::optional<Number> ParseNumber(std::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  size_t i = 0;
  bool negative = false;
  bool has_sign = false;
  const auto take_sign = [&] {
    if (!has_sign && i < s.size() && (s[i] == '+' || s[i] == '-')) {
      negative = s[i] == '-';
      has_sign = true;
      ++i;
    }
  };
  take_sign();
  for (const std::string_view c : kCurrency) {
    if (StartsWith(s.substr(i), c)) {
      i += c.size();
      take_sign();
      break;
    }
  }
  std::string_view body = s.substr(i);
  std::string_view exponent;
  if (const size_t e = body.find_first_of("eE"); e != std::string_view::npos) {
    exponent = body.substr(e + 1);
    body = body.substr(0, e);
    std::string_view digits = exponent;
    if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) digits.remove_prefix(1);
    if (!AllDigits(digits) || digits.size() > 3) return std::nullopt;
  }
  if (body.empty()) return std::nullopt;
  size_t dots = 0, commas = 0;
  for (const char c : body) {
    if (c == '.') {
      ++dots;
    } else if (c == ',') {
      ++commas;
    } else if (!IsDigit(c)) {
      return std::nullopt;
    }
  }
  if (!exponent.empty() && commas > 0) return std::nullopt;
  std::string int_part;
  std::string frac_part;
  bool has_point = false;
  if (dots == 0 && commas == 0) {
    int_part = std::string(body);
    if (int_part.size() > 1 && int_part[0] == '0') return std::nullopt;  // an identifier
  } else if (commas == 0 && dots == 1) {
    const size_t p = body.find('.');
    int_part = std::string(body.substr(0, p));
    frac_part = std::string(body.substr(p + 1));
    has_point = true;
    if (frac_part.empty()) return std::nullopt;
    if (int_part.size() > 1 && int_part[0] == '0') return std::nullopt;
  } else if (commas == 0 || dots == 0) {
    const char sep = commas == 0 ? '.' : ',';
    const size_t count = commas == 0 ? dots : commas;
    const size_t p = body.find(sep);
    const std::string_view left = body.substr(0, p);
    const std::string_view right = body.substr(p + 1);
    if (count == 1 && !(left.size() <= 3 && !left.empty() && left[0] != '0' && right.size() == 3 &&
                        AllDigits(right))) {
      // A single comma that cannot be a thousands separator: a decimal comma.
      if (!AllDigits(left) || !AllDigits(right)) return std::nullopt;
      if (left.size() > 1 && left[0] == '0') return std::nullopt;
      int_part = std::string(left);
      frac_part = std::string(right);
      has_point = true;
    } else {
      std::optional<std::string> digits = Ungroup(body, sep);
      if (!digits) return std::nullopt;
      int_part = std::move(*digits);
    }
  } else {
    // Both: the last separator is the decimal one and occurs once; the other groups thousands.
    const size_t last = body.find_last_of(".,");
    const char decimal = body[last];
    const char group = decimal == '.' ? ',' : '.';
    if (body.find(decimal) != last) return std::nullopt;
    std::optional<std::string> digits = Ungroup(body.substr(0, last), group);
    if (!digits) return std::nullopt;
    int_part = std::move(*digits);
    frac_part = std::string(body.substr(last + 1));
    if (!AllDigits(frac_part)) return std::nullopt;
    has_point = true;
  }
  if (int_part.empty() && frac_part.empty()) return std::nullopt;
  if (int_part.size() > 30) return std::nullopt;
  Number n;
  n.text = negative ? "-" : "";
  n.text += int_part.empty() ? "0" : int_part;
  if (has_point) n.text += "." + frac_part;
  if (!exponent.empty())
    n.text += "e" + std::string(exponent[0] == '+' ? exponent.substr(1) : exponent);
  const auto [end, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), n.value);
  if (ec != std::errc() || end != n.text.data() + n.text.size() || !std::isfinite(n.value)) {
    return std::nullopt;
  }
  n.integer = !has_point && exponent.empty();
  return n;
}

std::string FormatDouble(double v) {
  if (v == 0) return "0";  // also "-0"
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "0";
  return std::string(buf, end);
}

std::optional<ParsedDate> ParseDate(std::string_view s, DateOrder order) {
  if (s.size() < 6 || s.size() > 40) return std::nullopt;
  // Chinese: 2026年1月5日 (or 号).
  if (const size_t y = s.find("\xE5\xB9\xB4"); y != std::string_view::npos) {  // 年
    const size_t m = s.find("\xE6\x9C\x88", y);                                // 月
    if (m == std::string_view::npos) return std::nullopt;
    std::string_view year = Trim(s.substr(0, y));
    std::string_view month = Trim(s.substr(y + 3, m - y - 3));
    std::string_view rest = s.substr(m + 3);
    std::string_view day = rest;
    for (const std::string_view suffix : {"\xE6\x97\xA5", "\xE5\x8F\xB7"}) {  // 日 号
      if (rest.size() >= 3 && rest.substr(rest.size() - 3) == suffix) {
        day = rest.substr(0, rest.size() - 3);
      }
    }
    day = Trim(day);
    if (year.size() != 4 || !AllDigits(year) || !AllDigits(month) || month.size() > 2 ||
        !AllDigits(day) || day.size() > 2) {
      return std::nullopt;
    }
    std::optional<Date> d = MakeDate(ToInt(year), ToInt(month), ToInt(day));
    if (!d) return std::nullopt;
    return ParsedDate{*d, DateOrder::kUnknown};
  }
  // Tokens of digits or letters; between them the separators - / . , and spaces.
  std::vector<Token> tokens;
  std::string seps;  // the non-space separator between consecutive tokens ('\0' for none)
  char pending = 0;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const bool digit = IsDigit(c);
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (digit || alpha) {
      size_t j = i;
      while (j < s.size() &&
             (digit ? IsDigit(s[j])
                    : ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z')))) {
        ++j;
      }
      if (!tokens.empty()) seps.push_back(pending);
      tokens.push_back({s.substr(i, j - i), digit});
      pending = 0;
      i = j;
      if (tokens.size() > 3) return std::nullopt;
      continue;
    }
    if (c == ' ') {
      ++i;
      continue;
    }
    if (c != '-' && c != '/' && c != '.' && c != ',') return std::nullopt;
    if (pending != 0 || tokens.empty()) return std::nullopt;
    pending = c;
    ++i;
  }
  if (tokens.size() != 3 || pending != 0) return std::nullopt;
  const int alphas = static_cast<int>(!tokens[0].digits) + static_cast<int>(!tokens[1].digits) +
                     static_cast<int>(!tokens[2].digits);
  if (alphas == 0) {
    if (seps[0] != seps[1] || (seps[0] != '-' && seps[0] != '/' && seps[0] != '.')) {
      return std::nullopt;
    }
    const std::string_view a = tokens[0].text, b = tokens[1].text, c = tokens[2].text;
    if (a.size() == 4) {
      if (b.size() > 2 || c.size() > 2) return std::nullopt;
      std::optional<Date> d = MakeDate(ToInt(a), ToInt(b), ToInt(c));
      if (!d) return std::nullopt;
      return ParsedDate{*d, DateOrder::kUnknown};
    }
    if (c.size() != 4 || a.size() > 2 || b.size() > 2) return std::nullopt;
    const int x = ToInt(a), y = ToInt(b), year = ToInt(c);
    DateOrder use;
    DateOrder proven = DateOrder::kUnknown;
    if (x > 12 && y <= 12) {
      use = proven = DateOrder::kDayFirst;
    } else if (y > 12 && x <= 12) {
      use = proven = DateOrder::kMonthFirst;
    } else if (order != DateOrder::kUnknown) {
      use = order;
    } else {
      use = seps[0] == '/' ? DateOrder::kMonthFirst : DateOrder::kDayFirst;
    }
    std::optional<Date> d =
        use == DateOrder::kDayFirst ? MakeDate(year, y, x) : MakeDate(year, x, y);
    if (!d) return std::nullopt;
    return ParsedDate{*d, proven};
  }
  if (alphas != 1) return std::nullopt;
  int month = 0, year = 0, day = 0;
  for (const Token& t : tokens) {
    if (!t.digits) {
      month = MonthFromName(t.text);
    } else if (t.text.size() == 4) {
      if (year != 0) return std::nullopt;
      year = ToInt(t.text);
    } else if (t.text.size() <= 2) {
      if (day != 0) return std::nullopt;
      day = ToInt(t.text);
    } else {
      return std::nullopt;
    }
  }
  if (month == 0 || year == 0 || day == 0) return std::nullopt;
  std::optional<Date> d = MakeDate(year, month, day);
  if (!d) return std::nullopt;
  return ParsedDate{*d, DateOrder::kUnknown};
}

std::string FormatDate(const Date& d) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", d.year, d.month, d.day);
  return buf;
}

std::optional<bool> ParseBool(std::string_view s) {
  if (EqualsIgnoreCase(s, "true") || EqualsIgnoreCase(s, "yes") || s == "\xE6\x98\xAF") {
    return true;
  }
  if (EqualsIgnoreCase(s, "false") || EqualsIgnoreCase(s, "no") || s == "\xE5\x90\xA6") {
    return false;
  }
  return std::nullopt;
}

std::string_view ToString(ColumnType type) {
  switch (type) {
    case ColumnType::kEmpty:
      return "empty";
    case ColumnType::kInteger:
      return "integer";
    case ColumnType::kNumber:
      return "number";
    case ColumnType::kDate:
      return "date";
    case ColumnType::kBoolean:
      return "boolean";
    case ColumnType::kText:
      return "text";
  }
  return "text";
}

void TypeInference::Add(std::string_view value) {
  if (value.empty() || IsNullMarker(value)) return;
  ++non_empty_;
  if (std::optional<Number> n = ParseNumber(value)) {
    ++numbers_;
    if (n->integer) ++integers_;
    return;
  }
  if (std::optional<ParsedDate> d = ParseDate(value, DateOrder::kUnknown)) {
    ++dates_;
    if (d->proven == DateOrder::kDayFirst) ++day_first_;
    if (d->proven == DateOrder::kMonthFirst) ++month_first_;
    return;
  }
  if (ParseBool(value)) ++bools_;
}

ColumnType TypeInference::type() const {
  if (non_empty_ == 0) return ColumnType::kEmpty;
  if (2 * numbers_ > non_empty_) {
    return integers_ == numbers_ ? ColumnType::kInteger : ColumnType::kNumber;
  }
  if (2 * dates_ > non_empty_) return ColumnType::kDate;
  if (2 * bools_ > non_empty_) return ColumnType::kBoolean;
  return ColumnType::kText;
}

DateOrder TypeInference::date_order() const {
  if (day_first_ > month_first_) return DateOrder::kDayFirst;
  if (month_first_ > day_first_) return DateOrder::kMonthFirst;
  return DateOrder::kUnknown;
}

std::optional<std::string> NormalizeValue(std::string_view value, ColumnType type,
                                          DateOrder order) {
  switch (type) {
    case ColumnType::kInteger: {
      std::optional<Number> n = ParseNumber(value);
      if (!n || !n->integer) return std::nullopt;
      return std::move(n->text);
    }
    case ColumnType::kNumber: {
      std::optional<Number> n = ParseNumber(value);
      if (!n) return std::nullopt;
      return std::move(n->text);
    }
    case ColumnType::kDate: {
      std::optional<ParsedDate> d = ParseDate(value, order);
      if (!d) return std::nullopt;
      return FormatDate(d->date);
    }
    case ColumnType::kBoolean: {
      std::optional<bool> b = ParseBool(value);
      if (!b) return std::nullopt;
      return std::string(*b ? "true" : "false");
    }
    case ColumnType::kEmpty:
    case ColumnType::kText:
      return std::string(value);
  }
  return std::string(value);
}

double Median(std::vector<double>* values) {
  const size_t n = values->size();
  const size_t mid = n / 2;
  std::nth_element(values->begin(), values->begin() + static_cast<std::ptrdiff_t>(mid),
                   values->end());
  const double upper = (*values)[mid];
  if (n % 2 == 1) return upper;
  const double lower =
      *std::max_element(values->begin(), values->begin() + static_cast<std::ptrdiff_t>(mid));
  return lower + (upper - lower) / 2;
}

}  // namespace bmos::engine::handlers::internal
