#include "engine/handlers/internal/common.h"

#include <boost/json/serialize.hpp>
#include <cmath>

#include "engine/handlers/internal/values.h"

namespace bmos::engine::handlers::internal {

namespace json = boost::json;

Result<TaskData> TaskData::Parse(std::string_view handler, const json::object& data,
                                 std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : data) {
    bool known = false;
    for (const std::string_view a : allowed) known = known || kv.key() == a;
    if (!known) {
      std::string list;
      for (const std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Status::InvalidArgument(std::string(handler) + ": unknown field '" +
                                     std::string(kv.key()) +
                                     "' (accepted: " + (list.empty() ? "none" : list) + ")");
    }
  }
  return TaskData(std::string(handler), &data);
}

Status TaskData::Invalid(std::string_view key, std::string_view what) const {
  return Status::InvalidArgument(handler_ + ": field '" + std::string(key) + "' " +
                                 std::string(what));
}

const json::value* TaskData::Get(std::string_view key) const {
  const json::value* v = data_->if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

Result<std::string> TaskData::String(std::string_view key) const {
  Result<std::optional<std::string>> s = OptionalString(key);
  if (!s.ok()) return s.status();
  if (!s->has_value()) return Invalid(key, "is required");
  return std::move(**s);
}

Result<std::optional<std::string>> TaskData::OptionalString(std::string_view key) const {
  const json::value* v = Get(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return Invalid(key, "must be a string");
  if (v->get_string().empty()) return Invalid(key, "must not be empty");
  return std::optional<std::string>(std::string(v->get_string()));
}

Result<double> TaskData::Number(std::string_view key, std::optional<double> fallback, double min,
                                double max) const {
  const json::value* v = Get(key);
  if (v == nullptr) {
    if (!fallback) return Invalid(key, "is required");
    return *fallback;
  }
  double d;
  if (v->is_int64()) {
    d = static_cast<double>(v->get_int64());
  } else if (v->is_uint64()) {
    d = static_cast<double>(v->get_uint64());
  } else if (v->is_double()) {
    d = v->get_double();
  } else {
    return Invalid(key, "must be a number");
  }
  if (!(d >= min && d <= max)) {
    return Invalid(key, "must be between " + FormatDouble(min) + " and " + FormatDouble(max));
  }
  return d;
}

Result<std::optional<int64_t>> TaskData::OptionalInteger(std::string_view key, int64_t min,
                                                         int64_t max) const {
  const json::value* v = Get(key);
  if (v == nullptr) return std::optional<int64_t>();
  int64_t n;
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    n = static_cast<int64_t>(v->get_uint64());
  } else if (v->is_double() && std::floor(v->get_double()) == v->get_double() &&
             std::fabs(v->get_double()) < 9e15) {
    n = static_cast<int64_t>(v->get_double());
  } else {
    return Invalid(key, "must be an integer");
  }
  if (n < min || n > max) {
    return Invalid(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return std::optional<int64_t>(n);
}

Result<bool> TaskData::Bool(std::string_view key, bool fallback) const {
  const json::value* v = Get(key);
  if (v == nullptr) return fallback;
  if (!v->is_bool()) return Invalid(key, "must be true or false");
  return v->get_bool();
}

Result<std::optional<std::vector<std::string>>> TaskData::OptionalStringList(
    std::string_view key) const {
  const json::value* v = Get(key);
  if (v == nullptr) return std::optional<std::vector<std::string>>();
  if (!v->is_array() || v->get_array().empty()) {
    return Invalid(key, "must be a non-empty list of strings");
  }
  std::vector<std::string> out;
  for (const json::value& item : v->get_array()) {
    if (!item.is_string() || item.get_string().empty()) {
      return Invalid(key, "must be a non-empty list of strings");
    }
    out.emplace_back(item.get_string());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

json::value JsonNumber(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

json::array JsonStrings(const std::vector<std::string>& items) {
  json::array a;
  a.reserve(items.size());
  for (const std::string& s : items) a.emplace_back(s);
  return a;
}

namespace {

void Pretty(const json::value& v, int indent, std::string* out) {
  const auto newline = [&](int level) {
    out->push_back('\n');
    out->append(static_cast<size_t>(level) * 2, ' ');
  };
  switch (v.kind()) {
    case json::kind::object: {
      const json::object& o = v.get_object();
      if (o.empty()) {
        out->append("{}");
        return;
      }
      out->push_back('{');
      bool first = true;
      for (const auto& kv : o) {
        if (!first) out->push_back(',');
        first = false;
        newline(indent + 1);
        out->append(json::serialize(json::value(kv.key())));
        out->append(": ");
        Pretty(kv.value(), indent + 1, out);
      }
      newline(indent);
      out->push_back('}');
      return;
    }
    case json::kind::array: {
      const json::array& a = v.get_array();
      if (a.empty()) {
        out->append("[]");
        return;
      }
      // Arrays of scalars stay on one line.
      bool scalars = true;
      for (const json::value& item : a) scalars = scalars && !item.is_structured();
      out->push_back('[');
      bool first = true;
      for (const json::value& item : a) {
        if (!first) out->append(scalars ? ", " : ",");
        first = false;
        if (!scalars) newline(indent + 1);
        Pretty(item, indent + 1, out);
      }
      if (!scalars) newline(indent);
      out->push_back(']');
      return;
    }
    case json::kind::double_:
      out->append(std::isfinite(v.get_double()) ? FormatDouble(v.get_double()) : "null");
      return;
    default:
      out->append(json::serialize(v));
  }
}

}  // namespace

std::string JsonFileText(const json::value& v) {
  std::string out;
  Pretty(v, 0, &out);
  out.push_back('\n');
  return out;
}

}  // namespace bmos::engine::handlers::internal
