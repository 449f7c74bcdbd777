#include "api/request_json.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>

#include "storage/task_id.h"
#include "storage/task_record.h"

namespace bmos::api {
namespace {

namespace ondemand = simdjson::ondemand;
using engine::EnqueueRequest;

// Mirrors of the engine's own limits (engine/engine.cc), checked here so that a 1 MB task name
// is refused with a short message before it is copied into a request.
constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxUniqueKeyBytes = 512;
// delay_seconds and timeout_seconds: 10 Julian years. Large enough for any real use, small
// enough that milliseconds (and the engine's microseconds past now) cannot overflow int64.
constexpr double kMaxDurationSeconds = 315'576'000;
// eta as a number: 9999-12-31T23:59:59Z, the last second the ISO form can write.
constexpr double kMaxEtaSeconds = 253'402'300'799;
// A field name quoted in a message is cut to this many bytes: the text is the client's.
constexpr size_t kMaxQuotedBytes = 64;

constexpr std::string_view kPriorities = "LOW, NORMAL, HIGH, CRITICAL";
constexpr std::string_view kStates = "PENDING, RUNNING, RETRYING, COMPLETED, FAILED, CANCELLED";

enum Field : int {
  kTaskName,
  kTaskData,
  kPriority,
  kMaxRetries,
  kQueueName,
  kDelaySeconds,
  kEta,
  kTimeoutSeconds,
  kUniqueKey,
  kFieldCount,
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "task_name",     "task_data", "priority",        "max_retries", "queue_name",
    "delay_seconds", "eta",       "timeout_seconds", "unique_key"};
constexpr std::string_view kAllowedFields =
    "task_name, task_data, priority, max_retries, queue_name, delay_seconds, eta, "
    "timeout_seconds, unique_key";

int FindField(std::string_view key) {
  for (int i = 0; i < kFieldCount; ++i) {
    if (kFieldNames[i] == key) return i;
  }
  return -1;
}

// `text` cut to kMaxQuotedBytes without splitting a UTF-8 sequence.
std::string Clip(std::string_view text) {
  if (text.size() <= kMaxQuotedBytes) return std::string(text);
  size_t n = kMaxQuotedBytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n)) + "...";
}

// 422: `field` (under `prefix`, "" or "tasks[3].") is wrong.
ApiError Invalid(std::string_view prefix, std::string_view field, std::string_view what) {
  std::string detail;
  detail.reserve(prefix.size() + field.size() + what.size() + 2);
  detail.append(prefix).append(field).append(": ").append(what);
  return ApiError{422, std::move(detail)};
}

// 400: the body is not a JSON document we accept.
ApiError Malformed(simdjson::error_code error) {
  switch (error) {
    case simdjson::EMPTY:
      return {400, "body: invalid JSON (empty body)"};
    case simdjson::UTF8_ERROR:
      return {400, "body: invalid UTF-8"};
    case simdjson::DEPTH_ERROR:
      return {400, "body: invalid JSON (nested deeper than " + std::to_string(kMaxJsonDepth) +
                       " levels)"};
    case simdjson::NUMBER_ERROR:
      return {400, "body: invalid JSON (a number is malformed or does not fit in 64 bits)"};
    default:
      return {400, std::string("body: invalid JSON (") + simdjson::error_message(error) + ")"};
  }
}

// Pass 1: the DOM parser validates the whole document, so that a syntax error late in the body
// is a 400 even when an earlier field would already have been a 422 (On-Demand only checks what
// it visits). On success `view` covers the body, padded in place.
std::optional<ApiError> ValidateBody(std::string& body, simdjson::padded_string_view& view) {
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  view = simdjson::padded_string_view(body.data(), body.size(), body.capacity());
  thread_local simdjson::dom::parser dom_parser;
  if (dom_parser.max_depth() != kMaxJsonDepth) {
    // First use on this thread. The depth sticks: when a later body needs more capacity,
    // dom::parser::parse reallocates with the same max_depth().
    if (auto error = dom_parser.allocate(std::max<size_t>(body.size(), 4096), kMaxJsonDepth)) {
      return Malformed(error);
    }
  }
  simdjson::dom::element root;
  if (auto error = dom_parser.parse(view).get(root)) return Malformed(error);
  return std::nullopt;
}

// The On-Demand parser of this thread, for pass 2.
ondemand::parser& OnDemandParser() {
  thread_local ondemand::parser parser;
  return parser;
}

// The end of the array or object that starts at `p`. REQUIRES: the document is valid JSON (pass
// 1) and *p is '{' or '['. A byte scan suffices then: brackets inside strings are the only trap,
// and a backslash always escapes exactly the next byte.
const char* ContainerEnd(const char* p, const char* end) {
  int depth = 0;
  bool in_string = false;
  for (; p < end; ++p) {
    const char c = *p;
    if (in_string) {
      if (c == '\\') {
        ++p;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return p + 1;
    }
  }
  return end;
}

// Reads one enqueue object (pass 2). `prefix` names it in messages ("" or "tasks[3].");
// `body_end` is the end of the body text, for ContainerEnd.
class TaskReader {
 public:
  TaskReader(std::string_view prefix, const char* body_end)
      : prefix_(prefix), body_end_(body_end) {}

  std::optional<ApiError> Read(ondemand::object& object, EnqueueRequest& out) {
    uint32_t seen = 0;
    bool has_delay = false;
    bool has_eta = false;
    for (auto field_result : object) {
      ondemand::field field;
      if (auto error = std::move(field_result).get(field)) return Malformed(error);
      std::string_view key;
      if (auto error = field.unescaped_key().get(key)) return Malformed(error);
      const int index = FindField(key);
      if (index < 0) {
        return Invalid(prefix_, Clip(key),
                       "unknown field (allowed: " + std::string(kAllowedFields) + ")");
      }
      if (seen & (1u << index)) return Invalid(prefix_, key, "given more than once");
      seen |= 1u << index;
      ondemand::value value = field.value();
      ondemand::json_type type;
      if (auto error = value.type().get(type)) return Malformed(error);
      if (type == ondemand::json_type::null) {
        if (index == kTaskName) return Invalid(prefix_, key, "must be a non-empty string");
        continue;  // an optional field given as null: not given
      }
      std::optional<ApiError> problem;
      switch (index) {
        case kTaskName:
          problem = ReadName(value, type, key, out.name);
          break;
        case kTaskData:
          problem = ReadData(value, type, out.data_json);
          break;
        case kPriority:
          problem = ReadPriority(value, type, out);
          break;
        case kMaxRetries:
          problem = ReadMaxRetries(value, type, out);
          break;
        case kQueueName:
          problem = ReadName(value, type, key, out.queue);
          break;
        case kDelaySeconds: {
          int64_t ms = 0;
          problem = ReadDuration(value, type, key, ms);
          out.delay = std::chrono::milliseconds(ms);
          has_delay = true;
          break;
        }
        case kEta:
          problem = ReadEta(value, type, out);
          has_eta = true;
          break;
        case kTimeoutSeconds: {
          int64_t ms = 0;
          problem = ReadDuration(value, type, key, ms);
          out.timeout = std::chrono::milliseconds(ms);
          break;
        }
        case kUniqueKey:
          problem = ReadUniqueKey(value, type, out);
          break;
      }
      if (problem) return problem;
    }
    if (!(seen & (1u << kTaskName))) return Invalid(prefix_, "task_name", "field required");
    if (has_delay && has_eta) {
      return Invalid(prefix_, "delay_seconds", "cannot be combined with eta (give one of them)");
    }
    return std::nullopt;
  }

 private:
  // task_name and queue_name: 1..kMaxNameBytes bytes.
  std::optional<ApiError> ReadName(ondemand::value& value, ondemand::json_type type,
                                   std::string_view key, std::string& out) {
    std::string_view text;
    if (type != ondemand::json_type::string) return Invalid(prefix_, key, "must be a string");
    if (auto error = value.get_string().get(text)) return Malformed(error);
    if (text.empty()) return Invalid(prefix_, key, "must be a non-empty string");
    if (text.size() > kMaxNameBytes) {
      return Invalid(prefix_, key, "must be at most " + std::to_string(kMaxNameBytes) + " bytes");
    }
    out.assign(text);
    return std::nullopt;
  }

  std::optional<ApiError> ReadData(ondemand::value& value, ondemand::json_type type,
                                   std::string& out) {
    if (type != ondemand::json_type::object) {
      return Invalid(prefix_, "task_data", "must be a JSON object");
    }
    // raw_json_token() starts at the '{'; the rest of the object is found by a byte scan (the
    // document is known valid) and compacted by simdjson::minify, which only drops whitespace
    // outside strings. The value itself stays unconsumed: the object iteration skips it.
    const char* begin = value.raw_json_token().data();
    const char* end = ContainerEnd(begin, body_end_);
    const size_t size = static_cast<size_t>(end - begin);
    out.resize(size + simdjson::SIMDJSON_PADDING);  // minify's implementations may write ahead
    size_t written = 0;
    if (auto error = simdjson::minify(begin, size, out.data(), written)) return Malformed(error);
    out.resize(written);
    return std::nullopt;
  }

  std::optional<ApiError> ReadPriority(ondemand::value& value, ondemand::json_type type,
                                       EnqueueRequest& out) {
    const std::string what = "must be one of " + std::string(kPriorities);
    if (type != ondemand::json_type::string) return Invalid(prefix_, "priority", what);
    std::string_view text;
    if (auto error = value.get_string().get(text)) return Malformed(error);
    out.priority = storage::ParsePriority(text);
    if (!out.priority) return Invalid(prefix_, "priority", what);
    return std::nullopt;
  }

  std::optional<ApiError> ReadMaxRetries(ondemand::value& value, ondemand::json_type type,
                                         EnqueueRequest& out) {
    constexpr std::string_view kWhat = "must be an integer in 0..1000";
    if (type != ondemand::json_type::number) return Invalid(prefix_, "max_retries", kWhat);
    ondemand::number number;
    if (auto error = value.get_number().get(number)) return Malformed(error);
    double v = 0;
    switch (number.get_number_type()) {
      case ondemand::number_type::signed_integer:
        v = static_cast<double>(number.get_int64());  // exact in 0..1000, checked below
        break;
      case ondemand::number_type::unsigned_integer:
        return Invalid(prefix_, "max_retries", kWhat);  // above INT64_MAX
      default:
        v = number.get_double();
        if (v != std::floor(v)) return Invalid(prefix_, "max_retries", kWhat);  // 2.5
        break;
    }
    if (!(v >= 0 && v <= 1000)) return Invalid(prefix_, "max_retries", kWhat);
    out.max_retries = static_cast<int32_t>(v);
    return std::nullopt;
  }

  // delay_seconds and timeout_seconds: a number of seconds in 0..kMaxDurationSeconds -> ms.
  std::optional<ApiError> ReadDuration(ondemand::value& value, ondemand::json_type type,
                                       std::string_view key, int64_t& ms) {
    const std::string what = "must be a number of seconds in 0..315576000 (10 years)";
    if (type != ondemand::json_type::number) return Invalid(prefix_, key, what);
    double seconds = 0;
    if (auto error = value.get_double().get(seconds)) return Malformed(error);
    if (!(seconds >= 0 && seconds <= kMaxDurationSeconds)) return Invalid(prefix_, key, what);
    ms = std::llround(seconds * 1000);
    // A positive timeout must not round to 0, which means "no timeout".
    if (ms == 0 && seconds > 0) ms = 1;
    return std::nullopt;
  }

  std::optional<ApiError> ReadEta(ondemand::value& value, ondemand::json_type type,
                                  EnqueueRequest& out) {
    if (type == ondemand::json_type::number) {
      double seconds = 0;
      if (auto error = value.get_double().get(seconds)) return Malformed(error);
      if (!(seconds >= 0 && seconds <= kMaxEtaSeconds)) {
        return Invalid(prefix_, "eta",
                       "as Unix seconds must be in 0..253402300799 (1970..9999 UTC)");
      }
      out.eta_ms = std::llround(seconds * 1000);
      return std::nullopt;
    }
    if (type != ondemand::json_type::string) {
      return Invalid(prefix_, "eta",
                     "must be an ISO 8601 date-time string (2024-05-01T12:00:00Z) or Unix "
                     "seconds");
    }
    std::string_view text;
    if (auto error = value.get_string().get(text)) return Malformed(error);
    ParseResult<int64_t> ms = ParseIsoDateTimeMs(text, std::string(prefix_) + "eta");
    if (!ms.ok()) return ms.error();
    out.eta_ms = *ms;
    return std::nullopt;
  }

  std::optional<ApiError> ReadUniqueKey(ondemand::value& value, ondemand::json_type type,
                                        EnqueueRequest& out) {
    if (type != ondemand::json_type::string)
      return Invalid(prefix_, "unique_key", "must be a string");
    std::string_view text;
    if (auto error = value.get_string().get(text)) return Malformed(error);
    if (text.size() > kMaxUniqueKeyBytes) {
      return Invalid(prefix_, "unique_key",
                     "must be at most " + std::to_string(kMaxUniqueKeyBytes) + " bytes");
    }
    out.unique_key.assign(text);
    return std::nullopt;
  }

  std::string_view prefix_;
  const char* body_end_;
};

// Reads the items of a batch array (pass 2).
std::optional<ApiError> ReadBatchArray(ondemand::array& array, const char* body_end,
                                       std::vector<EnqueueRequest>& out) {
  size_t count = 0;
  if (auto error = array.count_elements().get(count)) return Malformed(error);
  if (count == 0 || count > kMaxBatchTasks) {
    return Invalid("", "tasks",
                   "must hold 1.." + std::to_string(kMaxBatchTasks) + " tasks (got " +
                       std::to_string(count) + ")");
  }
  out.reserve(count);
  std::string prefix;
  for (auto item_result : array) {
    prefix = "tasks[" + std::to_string(out.size()) + "]";
    ondemand::value item;
    if (auto error = std::move(item_result).get(item)) return Malformed(error);
    ondemand::json_type type;
    if (auto error = item.type().get(type)) return Malformed(error);
    if (type != ondemand::json_type::object) return Invalid("", prefix, "must be a JSON object");
    ondemand::object object;
    if (auto error = item.get_object().get(object)) return Malformed(error);
    prefix.push_back('.');
    EnqueueRequest request;
    if (auto problem = TaskReader(prefix, body_end).Read(object, request)) return problem;
    out.push_back(std::move(request));
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Query strings.

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: "%XX" is a byte, '+' a space. False for a '%' not
// followed by two hex digits.
bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c != '%') {
      out.push_back(c);
    } else {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// ISO 8601.

// Reads exactly `n` digits at `pos` into `value`; advances `pos`.
bool Digits(std::string_view text, size_t& pos, size_t n, int& value) {
  if (pos + n > text.size()) return false;
  value = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool Expect(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

}  // namespace

ParseResult<int64_t> ParseIsoDateTimeMs(std::string_view text, std::string_view field) {
  const ApiError bad =
      Invalid("", field, "must be an ISO 8601 date-time such as 2024-05-01T12:00:00Z");
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(text, pos, 4, year) || !Expect(text, pos, '-') || !Digits(text, pos, 2, month) ||
      !Expect(text, pos, '-') || !Digits(text, pos, 2, day)) {
    return bad;
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ')) {
    return bad;  // a date alone is not an instant
  }
  ++pos;
  if (!Digits(text, pos, 2, hour) || !Expect(text, pos, ':') || !Digits(text, pos, 2, minute)) {
    return bad;
  }
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == ':') {
    ++pos;
    if (!Digits(text, pos, 2, second)) return bad;
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      ++pos;
      const size_t start = pos;
      int64_t scale = 100;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        millis += (text[pos] - '0') * scale;  // digits past the third are truncated
        scale /= 10;
        ++pos;
      }
      if (pos == start) return bad;
    }
  }
  int offset_minutes = 0;
  if (pos == text.size()) return Invalid("", field, "needs a UTC offset (Z or +HH:MM)");
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int offset_hours = 0, offset_mins = 0;
    if (!Digits(text, pos, 2, offset_hours) || !Expect(text, pos, ':') ||
        !Digits(text, pos, 2, offset_mins)) {
      return Invalid("", field, "needs a UTC offset (Z or +HH:MM)");
    }
    if (offset_hours > 23 || offset_mins > 59) {
      return Invalid("", field, "UTC offset out of range (-23:59..+23:59)");
    }
    offset_minutes = sign * (offset_hours * 60 + offset_mins);
  } else {
    return bad;
  }
  if (pos != text.size()) return bad;

  using namespace std::chrono;
  const year_month_day date{std::chrono::year{year},
                            std::chrono::month{static_cast<unsigned>(month)},
                            std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) {
    return Invalid("", field, "no such date " + std::string(text.substr(0, 10)));
  }
  if (hour > 23 || minute > 59 || second > 59) {
    return Invalid("", field, "time of day out of range (00:00:00..23:59:59)");
  }
  const int64_t days = sys_days(date).time_since_epoch().count();
  const int64_t ms = days * 86'400'000 + int64_t{hour} * 3'600'000 + int64_t{minute} * 60'000 +
                     int64_t{second} * 1000 + millis - int64_t{offset_minutes} * 60'000;
  if (ms < 0) return Invalid("", field, "must not be before 1970-01-01T00:00:00Z");
  return ms;
}

ParseResult<EnqueueRequest> ParseEnqueueBody(std::string& body) {
  simdjson::padded_string_view view;
  if (auto problem = ValidateBody(body, view)) return *std::move(problem);
  ondemand::document doc;
  if (auto error = OnDemandParser().iterate(view).get(doc)) return Malformed(error);
  ondemand::json_type type;
  if (auto error = doc.type().get(type)) return Malformed(error);
  if (type != ondemand::json_type::object) return Invalid("", "body", "must be a JSON object");
  ondemand::object object;
  if (auto error = doc.get_object().get(object)) return Malformed(error);
  EnqueueRequest request;
  if (auto problem = TaskReader("", body.data() + body.size()).Read(object, request)) {
    return *std::move(problem);
  }
  return request;
}

ParseResult<std::vector<EnqueueRequest>> ParseEnqueueBatchBody(std::string& body) {
  simdjson::padded_string_view view;
  if (auto problem = ValidateBody(body, view)) return *std::move(problem);
  const char* body_end = body.data() + body.size();
  ondemand::document doc;
  if (auto error = OnDemandParser().iterate(view).get(doc)) return Malformed(error);
  ondemand::json_type type;
  if (auto error = doc.type().get(type)) return Malformed(error);
  std::vector<EnqueueRequest> requests;
  if (type == ondemand::json_type::array) {
    ondemand::array array;
    if (auto error = doc.get_array().get(array)) return Malformed(error);
    if (auto problem = ReadBatchArray(array, body_end, requests)) return *std::move(problem);
    return requests;
  }
  if (type != ondemand::json_type::object) {
    return Invalid("", "body", "must be a JSON object {\"tasks\": [...]} or a JSON array");
  }
  ondemand::object object;
  if (auto error = doc.get_object().get(object)) return Malformed(error);
  bool seen_tasks = false;
  for (auto field_result : object) {
    ondemand::field field;
    if (auto error = std::move(field_result).get(field)) return Malformed(error);
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return Malformed(error);
    if (key != "tasks") return Invalid("", Clip(key), "unknown field (allowed: tasks)");
    if (seen_tasks) return Invalid("", "tasks", "given more than once");
    seen_tasks = true;
    ondemand::value value = field.value();
    ondemand::json_type value_type;
    if (auto error = value.type().get(value_type)) return Malformed(error);
    if (value_type != ondemand::json_type::array) {
      return Invalid("", "tasks", "must be a JSON array of task objects");
    }
    ondemand::array array;
    if (auto error = value.get_array().get(array)) return Malformed(error);
    if (auto problem = ReadBatchArray(array, body_end, requests)) return *std::move(problem);
  }
  if (!seen_tasks) return Invalid("", "tasks", "field required");
  return requests;
}

namespace {

// Calls `visit(index, value)` for each parameter of `query_string` whose name is
// `names[index]`, with its percent-decoded value (empty values are skipped: "not given").
// Refuses unknown and repeated names (422) and malformed escapes or non-UTF-8 text (400). A
// `visit` that returns an error stops the walk with it.
template <size_t N, typename Visit>
std::optional<ApiError> ForEachQueryParam(std::string_view query_string,
                                          const std::array<std::string_view, N>& names,
                                          std::string_view allowed, Visit visit) {
  if (!query_string.empty() && query_string.front() == '?') query_string.remove_prefix(1);
  uint32_t seen = 0;
  std::string key;
  std::string value;
  while (!query_string.empty()) {
    const size_t amp = query_string.find('&');
    const std::string_view pair = query_string.substr(0, amp);
    query_string =
        amp == std::string_view::npos ? std::string_view() : query_string.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2"
    const size_t eq = pair.find('=');
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (!PercentDecode(pair.substr(0, eq), key) || !PercentDecode(raw_value, value)) {
      // The raw pair is echoed only when it is UTF-8: details must be (api/json_writer.h).
      const std::string shown = Clip(pair);
      return ApiError{400, simdjson::validate_utf8(shown.data(), shown.size())
                               ? "query: invalid percent-encoding in '" + shown + "'"
                               : std::string("query: invalid percent-encoding")};
    }
    if (!simdjson::validate_utf8(key.data(), key.size()) ||
        !simdjson::validate_utf8(value.data(), value.size())) {
      return ApiError{400, "query: not valid UTF-8 once percent-decoded"};
    }
    int param = -1;
    for (size_t i = 0; i < N; ++i) {
      if (names[i] == key) param = static_cast<int>(i);
    }
    if (param < 0) {
      return Invalid("", Clip(key),
                     "unknown query parameter (allowed: " + std::string(allowed) + ")");
    }
    if (seen & (1u << param)) return Invalid("", key, "given more than once");
    seen |= 1u << param;
    if (value.empty()) continue;  // "status=": not given
    if (std::optional<ApiError> e = visit(param, key, value)) return e;
  }
  return std::nullopt;
}

// The limit parameters: an integer 1..1000 into *out, else the error naming `key`.
std::optional<ApiError> ParseLimit(const std::string& key, const std::string& value, size_t* out) {
  size_t limit = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, limit);
  if (ec != std::errc() || ptr != end || limit < 1 || limit > 1000) {
    return Invalid("", key, "must be an integer in 1..1000");
  }
  *out = limit;
  return std::nullopt;
}

}  // namespace

ParseResult<storage::ListQuery> ParseListQuery(std::string_view query_string) {
  enum Param { kStatus, kQueue, kName, kLimit, kCursor, kParamCount };
  static constexpr std::array<std::string_view, kParamCount> kParamNames = {
      "status", "queue_name", "task_name", "limit", "cursor"};
  storage::ListQuery query;
  std::optional<ApiError> error = ForEachQueryParam(
      query_string, kParamNames, "status, queue_name, task_name, limit, cursor",
      [&](int param, const std::string& key, std::string& value) -> std::optional<ApiError> {
        switch (param) {
          case kStatus:
            query.state = storage::ParseTaskState(value);
            if (!query.state) return Invalid("", key, "must be one of " + std::string(kStates));
            break;
          case kQueue:
            query.queue = std::move(value);
            value = std::string();
            break;
          case kName:
            query.name = std::move(value);
            value = std::string();
            break;
          case kLimit:
            return ParseLimit(key, value, &query.limit);
          case kCursor:
            query.before = storage::TaskId::Parse(value);
            if (!query.before) {
              return Invalid("", key, "must be a task id (the next_cursor of the previous page)");
            }
            break;
        }
        return std::nullopt;
      });
  if (error) return *error;
  return query;
}

ParseResult<engine::JobListQuery> ParseJobListQuery(std::string_view query_string) {
  enum Param { kState, kLimit, kCursor, kParamCount };
  static constexpr std::array<std::string_view, kParamCount> kParamNames = {"state", "limit",
                                                                            "cursor"};
  engine::JobListQuery query;
  std::optional<ApiError> error = ForEachQueryParam(
      query_string, kParamNames, "state, limit, cursor",
      [&](int param, const std::string& key, std::string& value) -> std::optional<ApiError> {
        switch (param) {
          case kState:
            // Spelled out rather than engine::ToString(JobState): the fuzz target compiles this
            // file without the engine.
            if (value == "active") query.state = engine::JobState::kActive;
            if (value == "paused") query.state = engine::JobState::kPaused;
            if (value == "finished") query.state = engine::JobState::kFinished;
            if (!query.state) return Invalid("", key, "must be one of active, paused, finished");
            break;
          case kLimit:
            return ParseLimit(key, value, &query.limit);
          case kCursor:
            query.after = std::move(value);
            value = std::string();
            break;
        }
        return std::nullopt;
      });
  if (error) return *error;
  return query;
}

namespace {

// A whole number in `e` (an integer, or a double with no fraction, as for max_retries).
std::optional<int64_t> WholeNumber(simdjson::dom::element e) {
  if (e.is_int64()) return e.get_int64().value_unsafe();
  if (e.is_uint64()) return std::nullopt;  // beyond int64: out of every range we accept
  if (e.is_double()) {
    const double d = e.get_double().value_unsafe();
    if (std::trunc(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// `e` (an object) as a Boost.JSON object.
boost::json::object ToBoostObject(simdjson::dom::element e) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(simdjson::minify(e), ec);
  return !ec && v.is_object() ? std::move(v.get_object()) : boost::json::object();
}

}  // namespace

ParseResult<engine::JobSpec> ParseJobBody(std::string& body) {
  simdjson::padded_string_view view;
  if (std::optional<ApiError> e = ValidateBody(body, view)) return *e;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(body.data(), body.size(), /*realloc_if_needed=*/true).get(root)) {
    return Malformed(error);
  }
  simdjson::dom::object object;
  if (root.get_object().get(object)) return ApiError{422, "body: must be a JSON object"};
  enum Field {
    kJobName,
    kJobFunction,
    kJobType,
    kTriggerConfig,
    kJobData,
    kQueue,
    kPriorityField,
    kRetries,
    kGrace,
    kCoalesce,
    kInstances,
    kJobId,
    kPaused,
    kCount
  };
  static constexpr std::array<std::string_view, kCount> kNames = {
      "job_name",      "job_function", "job_type",    "trigger_config",     "job_data",
      "queue_name",    "priority",     "max_retries", "misfire_grace_time", "coalesce",
      "max_instances", "job_id",       "paused"};
  static constexpr std::string_view kAllowed =
      "job_name, job_function, job_type, trigger_config, job_data, queue_name, priority, "
      "max_retries, misfire_grace_time, coalesce, max_instances, job_id, paused";
  engine::JobSpec spec;
  uint32_t seen = 0;
  for (simdjson::dom::key_value_pair member : object) {
    // Named variables, not a structured binding: clang 14 (the fuzz build) cannot capture a
    // binding in the lambda below.
    const std::string_view key = member.key;
    const simdjson::dom::element value = member.value;
    int field = -1;
    for (int i = 0; i < kCount; ++i) {
      if (kNames[static_cast<size_t>(i)] == key) field = i;
    }
    if (field < 0)
      return Invalid("", Clip(key), "unknown field (allowed: " + std::string(kAllowed) + ")");
    if (seen & (1u << field)) return Invalid("", key, "given more than once");
    seen |= 1u << field;
    if (value.is_null() && field != kGrace) {
      if (field == kJobName || field == kJobFunction || field == kJobType ||
          field == kTriggerConfig) {
        return Invalid("", key, "field required");
      }
      continue;  // an optional field: not given
    }
    // A string of 1..max_bytes into *out; false (and *out unchanged) otherwise.
    auto text = [&](size_t max_bytes, std::string* out) {
      std::string_view s;
      if (value.get_string().get(s) || s.empty() || s.size() > max_bytes) return false;
      out->assign(s);
      return true;
    };
    switch (field) {
      case kJobName:
        if (!text(kMaxNameBytes, &spec.name)) {
          return Invalid("", key, "must be a string of 1..200 bytes");
        }
        break;
      case kJobFunction:
        if (!text(kMaxNameBytes, &spec.function)) {
          return Invalid("", key, "must be a registered task name (a string of 1..200 bytes)");
        }
        break;
      case kJobType: {
        // As engine::ParseTriggerType, spelled out: the fuzz target has no engine.
        std::string_view s;
        if (value.get_string().get(s) || (s != "cron" && s != "interval" && s != "date")) {
          return Invalid("", key, "must be cron, interval or date");
        }
        spec.type = s == "cron"       ? engine::TriggerType::kCron
                    : s == "interval" ? engine::TriggerType::kInterval
                                      : engine::TriggerType::kDate;
        break;
      }
      case kTriggerConfig:
        if (!value.is_object()) return Invalid("", key, "must be a JSON object");
        spec.trigger_config = ToBoostObject(value);
        break;
      case kJobData:
        if (!value.is_object()) return Invalid("", key, "must be a JSON object");
        spec.data = ToBoostObject(value);
        break;
      case kQueue:
        if (!text(kMaxNameBytes, &spec.queue)) {
          return Invalid("", key, "must be a string of 1..200 bytes");
        }
        break;
      case kPriorityField: {
        std::string_view s;
        if (value.get_string().get(s) || !(spec.priority = storage::ParsePriority(s))) {
          return Invalid("", key, "must be one of " + std::string(kPriorities));
        }
        break;
      }
      case kRetries: {
        std::optional<int64_t> n = WholeNumber(value);
        if (!n || *n < 0 || *n > 1000) return Invalid("", key, "must be an integer in 0..1000");
        spec.max_retries = static_cast<int32_t>(*n);
        break;
      }
      case kGrace: {
        if (value.is_null()) {
          spec.misfire_grace_seconds = std::nullopt;  // no limit
          break;
        }
        double d = 0;
        if (value.is_int64()) {
          d = static_cast<double>(value.get_int64().value_unsafe());
        } else if (value.is_double()) {
          d = value.get_double().value_unsafe();
        } else {
          return Invalid("", key, "must be a number of seconds > 0, or null for no limit");
        }
        if (!(d > 0) || d > 1e9) {
          return Invalid("", key, "must be a number of seconds > 0, or null for no limit");
        }
        spec.misfire_grace_seconds = d;
        break;
      }
      case kCoalesce:
        if (value.get_bool().get(spec.coalesce)) return Invalid("", key, "must be true or false");
        break;
      case kInstances: {
        std::optional<int64_t> n = WholeNumber(value);
        if (!n || *n < 1 || *n > 1000) return Invalid("", key, "must be an integer in 1..1000");
        spec.max_instances = static_cast<int32_t>(*n);
        break;
      }
      case kJobId:
        if (!text(128, &spec.id)) return Invalid("", key, "must be a string of 1..128 characters");
        break;
      case kPaused:
        if (value.get_bool().get(spec.paused)) return Invalid("", key, "must be true or false");
        break;
    }
  }
  for (int required : {kJobName, kJobFunction, kJobType, kTriggerConfig}) {
    if (!(seen & (1u << required))) {
      return Invalid("", kNames[static_cast<size_t>(required)], "field required");
    }
  }
  return spec;
}

}  // namespace bmos::api
