// Cell values of the handlers' tables: trimming, numbers, dates, booleans, per-column type
// inference and normalisation.
//
// Numbers: an optional sign and currency sign ($ € £ ¥ ￥), digits with thousands separators and
// a decimal point or comma, an optional exponent. Which separator is which:
//   "1,234,567" "1.234.567"  thousands (groups of three after a first group of 1 to 3 digits)
//   "1,234.5" "1.234,5"      the last separator is the decimal one, the other groups thousands
//   "1,234"                  ambiguous: read as thousands (1234), the common case in BMOS data
//   "12,5" "0,25" "1234,5"   decimal comma (a single comma not followed by exactly 3 digits, or
//                            after a leading "0")
// Digits with a leading zero ("0123") are identifiers (zip codes, part numbers), not numbers.
// The canonical text keeps the digits as written: "-$1.234,50" -> "-1234.50".
//
// Dates (normalised to ISO "YYYY-MM-DD"): "2026-01-05", "2026/1/5", "2026.01.05", "05.01.2026"
// (day first), "13/01/2026" and "01/13/2026" (whichever order the numbers allow; when both fit,
// the order the column's unambiguous dates show, else day first for '.' and '-' and month first
// for '/'), "5 Jan 2026", "Jan 5, 2026", "January 5 2026", "2026年1月5日". Years 1000..9999, and
// the day must exist in its month.
//
// Booleans: true/false, yes/no (any case), 是/否.
//
// Thread-safety: pure functions; a TypeInference belongs to one thread.
#ifndef BMOS_ENGINE_HANDLERS_INTERNAL_VALUES_H_
#define BMOS_ENGINE_HANDLERS_INTERNAL_VALUES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bmos::engine::handlers::internal {

// `s` without ASCII white space, NO-BREAK SPACE (U+00A0) and IDEOGRAPHIC SPACE (U+3000) at
// either end.
std::string_view Trim(std::string_view s);

// Whether a (trimmed) value is a common marker of a missing value: NA, N/A, #N/A, NULL, None,
// NaN (any case). Only columns of a non-text type read these as missing.
bool IsNullMarker(std::string_view s);

struct Number {
  double value = 0;
  bool integer = false;  // no decimal separator and no exponent
  std::string text;      // canonical: [-]digits[.digits][e[-]digits]
};
// The number written in `s` (trimmed), or nullopt.
std::optional<Number> ParseNumber(std::string_view s);

// The shortest text that reads back as `v` ("2.5", "1234", "1e+21"). REQUIRES: finite.
std::string FormatDouble(double v);

enum class DateOrder : uint8_t { kUnknown, kDayFirst, kMonthFirst };

struct Date {
  int year = 0, month = 0, day = 0;
};
struct ParsedDate {
  Date date{};
  // For "a/b/yyyy" forms: the order the numbers prove (one of them above 12), else kUnknown.
  DateOrder proven = DateOrder::kUnknown;
};
// The date written in `s` (trimmed); `order` decides "a/b/yyyy" when both orders fit
// (kUnknown: by the separator, see above).
std::optional<ParsedDate> ParseDate(std::string_view s, DateOrder order);
std::string FormatDate(const Date& date);  // "2026-01-05"

std::optional<bool> ParseBool(std::string_view s);

enum class ColumnType : uint8_t { kEmpty, kInteger, kNumber, kDate, kBoolean, kText };
// "empty", "integer", "number", "date", "boolean", "text".
std::string_view ToString(ColumnType type);
inline bool IsNumeric(ColumnType t) {
  return t == ColumnType::kInteger || t == ColumnType::kNumber;
}

// A column's type from its values: the first of number (integer when every number is), date,
// boolean that more than half of the non-empty values read as; text otherwise; empty when no
// value is. Null markers do not count.
class TypeInference {
 public:
  // `value` trimmed.
  void Add(std::string_view value);
  ColumnType type() const;
  // The order of "a/b/yyyy" dates that the column's unambiguous ones show (majority).
  DateOrder date_order() const;

 private:
  uint64_t non_empty_ = 0, numbers_ = 0, integers_ = 0, dates_ = 0, bools_ = 0;
  uint64_t day_first_ = 0, month_first_ = 0;
};

// The canonical text of `value` (trimmed, not empty) as a value of `type`, or nullopt when it is
// not one. Text and empty columns take any value as it is.
std::optional<std::string> NormalizeValue(std::string_view value, ColumnType type, DateOrder order);

// The median of `values` (the mean of the middle two for an even count). Reorders `values`.
// REQUIRES: not empty.
double Median(std::vector<double>* values);

}  // namespace bmos::engine::handlers::internal

#endif  // BMOS_ENGINE_HANDLERS_INTERNAL_VALUES_H_
