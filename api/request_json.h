// Request parsing for the HTTP server: the JSON bodies of POST /api/v1/tasks/enqueue and
// /enqueue/batch, and the query string of GET /api/v1/tasks/. Each function turns the request
// text into the engine's types or into an ApiError holding the HTTP status and the "detail"
// text of the FastAPI-style error body ({"detail": "..."}, api/json_writer.h: DetailJson).
//
// JSON is parsed with simdjson in two passes over the body: the DOM parser validates the whole
// document first (UTF-8, structure, numbers, nesting depth), so a malformed body is always a 400
// whatever field comes first; then the On-Demand parser reads the fields and slices task_data's
// text out of the body, so the engine receives it compacted but never re-serialised.
//
// Rules shared by the enqueue bodies (one body per task):
//   task_name        string, REQUIRED, 1..200 bytes
//   task_data        JSON object (default {}); passed on as compact text in
//                    EnqueueRequest::data_json (whitespace outside strings removed, everything
//                    else byte for byte, escapes included); left empty when absent or null
//   priority         "LOW" | "NORMAL" | "HIGH" | "CRITICAL", any case; absent: the handler's
//   max_retries      integer 0..1000; an integral number written as a double (2.0, 1e2) is
//                    accepted, as pydantic's lax int does; 2.5, strings and booleans are not
//   queue_name       string, 1..200 bytes; absent: the handler's queue
//   delay_seconds    number 0..315576000 (10 years), fractional allowed; rounded to the nearest
//                    millisecond
//   eta              ISO 8601 date-time with a UTC offset ("2024-05-01T12:00:00Z",
//                    "2024-05-01 14:00:00.250+02:00"; seconds and fraction optional, fraction
//                    truncated to ms), or a number of Unix seconds; 1970-01-01..9999-12-31 UTC
//   timeout_seconds  number 0..315576000, fractional allowed; 0 = no timeout; a positive value
//                    below 1 ms becomes 1 ms (never "no timeout" by rounding)
//   unique_key       string, 0..512 bytes ("" = none)
//   - null for any optional field means "not given"; null task_name is a type error.
//   - delay_seconds and eta together: 422.
//   - Unknown fields are refused (422 naming the field), as FastAPI with extra=forbid would:
//     a misspelt "priorty" must not silently enqueue a NORMAL task.
//   - Duplicate keys in the body's own object are refused (422 "<field>: given more than once");
//     inside task_data they are passed through untouched (the object is opaque data).
//
// Status codes: 400 when the body is not a JSON document we accept: empty or whitespace only,
// malformed (truncated, trailing garbage, trailing comma...), invalid UTF-8 anywhere, nested
// deeper than kMaxJsonDepth, or a number simdjson cannot represent (an integer beyond 64 bits,
// 1e400). 422 for everything else: wrong top-level type, a missing, unknown, duplicate, mistyped
// or out-of-range field. Only the first problem (in document order) is reported. Messages start
// with the field's path: "task_name: field required", "tasks[3].priority: must be one of LOW,
// NORMAL, HIGH, CRITICAL", "body: invalid UTF-8".
//
// Thread-safety: every function may be called from any thread concurrently; each thread keeps its
// own simdjson parsers (thread_local), which keep the capacity of the largest body that thread
// has parsed (the server caps body sizes before calling us). Nothing here throws.
#ifndef BMOS_API_REQUEST_JSON_H_
#define BMOS_API_REQUEST_JSON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "engine/engine.h"
#include "engine/scheduler.h"
#include "storage/task_store.h"

namespace bmos::api {

// Why a request was refused: the HTTP status (400 or 422, see above) and the "detail" text.
struct ApiError {
  int http_status = 400;
  std::string detail{};

  friend bool operator==(const ApiError&, const ApiError&) = default;
};

// A T on success, an ApiError otherwise (Result<T> of storage/status.h, with an HTTP status
// instead of a Status code).
template <typename T>
class [[nodiscard]] ParseResult {
 public:
  ParseResult(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  ParseResult(ApiError error) : value_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(value_); }

  // REQUIRES: !ok().
  const ApiError& error() const { return std::get<ApiError>(value_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, ApiError> value_;
};

// Deepest nesting of arrays and objects accepted in a body, counting the body's own object (and
// a batch's array): task_data may nest about 60 levels. Deeper: 400.
inline constexpr size_t kMaxJsonDepth = 64;
// Tasks in one batch: 1..kMaxBatchTasks.
inline constexpr size_t kMaxBatchTasks = 1000;

// Parses a POST /tasks/enqueue body: one JSON object with the fields listed above.
// On success the request is filled as far as the body says (name always; data_json when
// task_data was given; optional fields only when given and not null); the engine still checks
// the task name, the queue and its own limits (InvalidArgument -> 422).
// `body` is not modified, but its capacity may grow by simdjson::SIMDJSON_PADDING so that the
// parser can read past its end without a copy.
ParseResult<engine::EnqueueRequest> ParseEnqueueBody(std::string& body);

// Parses a POST /tasks/enqueue/batch body: {"tasks": [<enqueue body>, ...]} (no other key) or a
// bare array [<enqueue body>, ...], with 1..kMaxBatchTasks items (else 422 "tasks: ..."). All or
// nothing: the first bad item fails the whole batch, its path naming the index ("tasks[3].eta:
// ..."; the bare form uses the same paths). Requests are returned in body order. `body`: as for
// ParseEnqueueBody.
ParseResult<std::vector<engine::EnqueueRequest>> ParseEnqueueBatchBody(std::string& body);

// Parses the query string of GET /tasks/ (the part after '?'; a leading '?' is skipped):
//   status      a TaskState name, any case (ParseTaskState)     -> ListQuery::state
//   queue_name  exact queue name                                -> ListQuery::queue
//   task_name   exact task name                                 -> ListQuery::name
//   limit       integer 1..1000; default 50                     -> ListQuery::limit
//   cursor      a task id (the next_cursor of the previous page) -> ListQuery::before
// Pairs are separated by '&'; names and values are percent-decoded with '+' as a space. A
// parameter with an empty value ("status=" or "status") counts as not given. 422 for an unknown
// parameter, a parameter given twice, or a bad value; 400 for a malformed percent escape or
// text that is not UTF-8 once decoded.
ParseResult<storage::ListQuery> ParseListQuery(std::string_view query_string);

// Parses a POST /tasks/scheduled body (the first design's fields) into a JobSpec:
//   job_name            string 1..200 bytes, REQUIRED
//   job_function        string 1..200 bytes, REQUIRED (the scheduler checks it is registered)
//   job_type            "cron" | "interval" | "date", REQUIRED
//   trigger_config      JSON object, REQUIRED (the scheduler parses it: engine/trigger.h)
//   job_data            JSON object (default {}): the data of every run's task
//   queue_name          string 1..200 bytes; absent: the task's default queue
//   priority            as for enqueue
//   max_retries         integer 0..1000
//   misfire_grace_time  number of seconds > 0; null: no limit; absent: 60
//   coalesce            boolean (default true)
//   max_instances       integer 1..1000 (default 1)
//   job_id              string 1..128 bytes (the scheduler checks its characters); absent:
//                       generated
//   paused              boolean (default false): add the job paused
// null for an optional field means "not given" (misfire_grace_time: no limit). Unknown and
// repeated fields: 422. Status codes as for the enqueue bodies.
ParseResult<engine::JobSpec> ParseJobBody(std::string& body);

// Parses the query string of GET /tasks/scheduled/: state (active | paused | finished), limit
// (1..1000, default 100), cursor (the next_cursor of the previous page: a job id). Rules as for
// ParseListQuery.
ParseResult<engine::JobListQuery> ParseJobListQuery(std::string_view query_string);

// Parses an ISO 8601 date-time with a UTC offset into Unix milliseconds, the form eta accepts
// (see above); also meant for the scheduler's date fields. Errors are 422 with the detail
// prefixed by `field` ("run_date: needs a UTC offset (Z or +HH:MM)").
ParseResult<int64_t> ParseIsoDateTimeMs(std::string_view text, std::string_view field);

}  // namespace bmos::api

#endif  // BMOS_API_REQUEST_JSON_H_
