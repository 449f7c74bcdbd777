// Helpers shared by the handlers' implementation: error propagation, typed access to task data,
// JSON conveniences.
//
// Thread-safety: values and pure functions.
#ifndef BMOS_ENGINE_HANDLERS_INTERNAL_COMMON_H_
#define BMOS_ENGINE_HANDLERS_INTERNAL_COMMON_H_

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

// Returns the error of a Status expression.
#define BMOS_HANDLERS_RETURN_IF_ERROR(expr)                        \
  do {                                                             \
    ::bmos::storage::Status bmos_handlers_status_ = (expr);        \
    if (!bmos_handlers_status_.ok()) return bmos_handlers_status_; \
  } while (0)

#define BMOS_HANDLERS_CONCAT_INNER(a, b) a##b
#define BMOS_HANDLERS_CONCAT(a, b) BMOS_HANDLERS_CONCAT_INNER(a, b)
// `lhs = value of expr` (a Result), or returns its error.
#define BMOS_HANDLERS_ASSIGN_OR_RETURN(lhs, expr)                                                 \
  BMOS_HANDLERS_ASSIGN_OR_RETURN_IMPL(BMOS_HANDLERS_CONCAT(bmos_handlers_result_, __LINE__), lhs, \
                                      expr)
#define BMOS_HANDLERS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                        \
  if (!tmp.ok()) return tmp.status();                       \
  lhs = std::move(tmp).value()

namespace bmos::engine::handlers::internal {

using storage::Result;
using storage::Status;

// The fields of one task's data, read with errors that name the handler and the field. A field
// set to null reads as absent.
class TaskData {
 public:
  // InvalidArgument when `data` has a field that is not in `allowed` (a typo would otherwise be
  // ignored silently).
  static Result<TaskData> Parse(std::string_view handler, const boost::json::object& data,
                                std::initializer_list<std::string_view> allowed);

  // A required, non-empty string.
  Result<std::string> String(std::string_view key) const;
  // A string, or nullopt when absent. Empty strings are refused.
  Result<std::optional<std::string>> OptionalString(std::string_view key) const;
  // A number in [min, max]; `fallback` when absent, or an error when there is none.
  Result<double> Number(std::string_view key, std::optional<double> fallback, double min,
                        double max) const;
  // An integer in [min, max], or nullopt when absent.
  Result<std::optional<int64_t>> OptionalInteger(std::string_view key, int64_t min,
                                                 int64_t max) const;
  Result<bool> Bool(std::string_view key, bool fallback) const;
  // A non-empty list of non-empty strings, or nullopt when absent.
  Result<std::optional<std::vector<std::string>>> OptionalStringList(std::string_view key) const;

  Status Invalid(std::string_view key, std::string_view what) const;

 private:
  TaskData(std::string handler, const boost::json::object* data)
      : handler_(std::move(handler)), data_(data) {}
  const boost::json::value* Get(std::string_view key) const;

  std::string handler_;
  const boost::json::object* data_;
};

// A JSON number, or null when `v` is not finite (JSON has no NaN).
boost::json::value JsonNumber(double v);

// An array of strings.
boost::json::array JsonStrings(const std::vector<std::string>& items);

// JSON text for files people read: indented by two spaces, arrays of scalars on one line,
// numbers in their shortest form, a final newline.
std::string JsonFileText(const boost::json::value& v);

}  // namespace bmos::engine::handlers::internal

#endif  // BMOS_ENGINE_HANDLERS_INTERNAL_COMMON_H_
