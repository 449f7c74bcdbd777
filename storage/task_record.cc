#include "storage/task_record.h"

#include <array>
#include <boost/json.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <cstdio>

#include "storage/json_writer.h"
#include "storage/task_store.h"

namespace bmos::storage {
namespace {

constexpr std::array<std::string_view, kTaskStateCount> kStateNames = {
    "PENDING", "RUNNING", "RETRYING", "COMPLETED", "FAILED", "CANCELLED"};
constexpr std::array<std::string_view, kPriorityCount> kPriorityNames = {"LOW", "NORMAL", "HIGH",
                                                                         "CRITICAL"};
constexpr std::array<std::string_view, 3> kDurabilityNames = {"sync", "async", "memory"};

// kLegal[from][to]: the one table of legal transitions (DESIGN.md, "Task model"). Rows and
// columns follow the TaskState values: PENDING, RUNNING, RETRYING, COMPLETED, FAILED, CANCELLED.
// A RUNNING task never goes straight back to PENDING: a retry always passes through RETRYING so
// the backoff is recorded. Terminal rows are all false.
constexpr bool kLegal[kTaskStateCount][kTaskStateCount] = {
    //          PEND   RUN    RETRY  COMPL  FAIL   CANCEL
    /* PEND  */ {false, true, false, false, false, true},
    /* RUN   */ {false, false, true, true, true, true},
    /* RETRY */ {true, false, false, false, false, true},
    /* COMPL */ {false, false, false, false, false, false},
    /* FAIL  */ {false, false, false, false, false, false},
    /* CANCEL*/ {false, false, false, false, false, false},
};

constexpr bool TableMatchesTerminality() {
  for (int from = 0; from < kTaskStateCount; ++from) {
    if (!IsTerminal(static_cast<TaskState>(from))) continue;
    for (int to = 0; to < kTaskStateCount; ++to) {
      if (kLegal[from][to]) return false;
    }
  }
  return true;
}
static_assert(TableMatchesTerminality(), "nothing may leave a terminal state");

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// The index of `text` in `names`, ignoring case; -1 when absent.
template <size_t N>
int FindName(const std::array<std::string_view, N>& names, std::string_view text) {
  for (size_t i = 0; i < N; ++i) {
    if (EqualsIgnoreCase(names[i], text)) return static_cast<int>(i);
  }
  return -1;
}

// Howard Hinnant's civil_from_days: days since 1970-01-01 to a proleptic Gregorian date.
// http://howardhinnant.github.io/date_algorithms.html#civil_from_days
struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};
constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}
static_assert(CivilFromDays(0).year == 1970 && CivilFromDays(0).month == 1);
static_assert(CivilFromDays(19782).year == 2024 && CivilFromDays(19782).month == 2 &&
              CivilFromDays(19782).day == 29);

// Writes `value` as exactly `width` decimal digits ending just before `end`.
void PutDigits(char* end, unsigned value, int width) {
  for (int i = 0; i < width; ++i) {
    *--end = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// The JSON text `text` as a value; the raw string when it does not parse (a record written by an
// older or buggy producer should still be shown, not dropped).
// Writes `text` as it is when it is valid JSON (task data and results always are), else as a
// JSON string, so a damaged record still renders. The check parses into a stack buffer: no heap
// allocation for ordinary records.
void JsonOrString(JsonWriter& w, const std::string& text) {
  unsigned char buffer[4096];
  boost::json::monotonic_resource mr(buffer, sizeof(buffer));
  boost::system::error_code ec;
  (void)boost::json::parse(text, ec, &mr);
  if (ec) {
    w.String(text);
  } else {
    w.Raw(text);
  }
}

void TimeOrNull(JsonWriter& w, int64_t unix_ms) {
  if (unix_ms == 0) {
    w.Null();
  } else {
    w.String(FormatIsoTime(unix_ms));
  }
}

}  // namespace

std::string_view ToString(TaskState state) {
  const auto i = static_cast<size_t>(state);
  return i < kStateNames.size() ? kStateNames[i] : "UNKNOWN";
}

std::optional<TaskState> ParseTaskState(std::string_view text) {
  const int i = FindName(kStateNames, text);
  if (i < 0) return std::nullopt;
  return static_cast<TaskState>(i);
}

bool IsLegalTransition(TaskState from, TaskState to) {
  const auto f = static_cast<size_t>(from);
  const auto t = static_cast<size_t>(to);
  if (f >= kTaskStateCount || t >= kTaskStateCount) return false;
  return kLegal[f][t];
}

std::string_view ToString(Priority priority) {
  const auto i = static_cast<size_t>(priority);
  return i < kPriorityNames.size() ? kPriorityNames[i] : "UNKNOWN";
}

std::optional<Priority> ParsePriority(std::string_view text) {
  const int i = FindName(kPriorityNames, text);
  if (i < 0) return std::nullopt;
  return static_cast<Priority>(i);
}

std::string_view ToString(Durability durability) {
  const auto i = static_cast<size_t>(durability);
  return i < kDurabilityNames.size() ? kDurabilityNames[i] : "unknown";
}

std::optional<Durability> ParseDurability(std::string_view text) {
  const int i = FindName(kDurabilityNames, text);
  if (i < 0) return std::nullopt;
  return static_cast<Durability>(i);
}

bool ListQuery::Matches(const TaskRecord& r) const {
  if (state && r.state != *state) return false;
  if (terminal_only && !IsTerminal(r.state)) return false;
  if (before && !(r.id() < *before)) return false;
  if (!queue.empty() && r.spec->queue != queue) return false;
  if (!name.empty() && r.spec->name != name) return false;
  return true;
}

void TaskStore::WriteAsync(std::span<const TaskRecord> records, WriteCallback* done) {
  const Status s = Write(records);
  if (done != nullptr) {
    done->OnWritten(s);
  } else if (!s.ok()) {
    std::fprintf(stderr, "bmos: store write failed: %s\n", s.ToString().c_str());
  }
}

Status TaskStore::WriteJobs(std::span<const JobWrite> writes) {
  if (writes.empty()) return Status::Ok();
  return Status::NotSupported("this task store keeps no scheduled jobs");
}

void TaskStore::WriteJobsAsync(std::span<const JobWrite> writes, WriteCallback* done) {
  const Status s = WriteJobs(writes);
  if (done != nullptr) {
    done->OnWritten(s);
  } else if (!s.ok()) {
    std::fprintf(stderr, "bmos: job write failed: %s\n", s.ToString().c_str());
  }
}

Status TaskStore::ForEachJob(
    const std::function<void(std::string_view, std::string_view)>& /*visit*/) const {
  return Status::Ok();
}

Result<StoreCounts> TaskStore::TerminalCounts() const {
  Result<StoreCounts> counts = Counts();
  if (!counts.ok()) return counts;
  for (auto& [queue, per_state] : counts->by_queue) {
    for (int i = 0; i < kTaskStateCount; ++i) {
      if (!IsTerminal(static_cast<TaskState>(i))) per_state[i] = 0;
    }
  }
  return counts;
}

uint64_t StoreCounts::total(TaskState state) const {
  const auto i = static_cast<size_t>(state);
  uint64_t sum = 0;
  for (const auto& [queue, counts] : by_queue) sum += counts[i];
  return sum;
}

std::string FormatIsoTime(int64_t unix_ms) {
  if (unix_ms < 0) unix_ms = 0;
  const int64_t days = unix_ms / 86'400'000;
  const auto ms_of_day = static_cast<unsigned>(unix_ms % 86'400'000);
  const CivilDate date = CivilFromDays(days);
  // "YYYY-MM-DDTHH:MM:SS.mmmZ": 24 characters for years 0000..9999.
  char buf[24];
  PutDigits(buf + 4, static_cast<unsigned>(date.year % 10000), 4);
  buf[4] = '-';
  PutDigits(buf + 7, date.month, 2);
  buf[7] = '-';
  PutDigits(buf + 10, date.day, 2);
  buf[10] = 'T';
  PutDigits(buf + 13, ms_of_day / 3'600'000, 2);
  buf[13] = ':';
  PutDigits(buf + 16, ms_of_day / 60'000 % 60, 2);
  buf[16] = ':';
  PutDigits(buf + 19, ms_of_day / 1000 % 60, 2);
  buf[19] = '.';
  PutDigits(buf + 23, ms_of_day % 1000, 3);
  buf[23] = 'Z';
  return std::string(buf, sizeof(buf));
}

std::string ToJson(const TaskRecord& record) {
  const TaskSpec& spec = *record.spec;
  char id[36];
  spec.id.Format(id);
  std::string out;
  out.reserve(448 + spec.data_json.size() + record.result_json.size() + record.error.size() +
              spec.name.size() + spec.queue.size());
  JsonWriter w(out);
  w.BeginObject();
  w.Key("task_id").String(std::string_view(id, sizeof(id)));
  w.Key("task_name").String(spec.name);
  w.Key("queue_name").String(spec.queue);
  w.Key("priority").String(ToString(spec.priority));
  w.Key("status").String(ToString(record.state));
  w.Key("task_data");
  JsonOrString(w, spec.data_json);
  w.Key("result");
  if (record.result_json.empty()) {
    w.Null();
  } else {
    JsonOrString(w, record.result_json);
  }
  w.Key("error").StringOrNull(record.error);
  w.Key("retry_count").Int(record.retry_count);
  w.Key("max_retries").Int(spec.max_retries);
  w.Key("progress").Double(record.progress);
  w.Key("progress_message").StringOrNull(record.progress_message);
  w.Key("timeout_seconds");
  if (spec.timeout_ms == 0) {
    w.Null();
  } else if (spec.timeout_ms % 1000 == 0) {
    w.Int(spec.timeout_ms / 1000);  // whole seconds stay integers, as BMOS sends them
  } else {
    w.Double(static_cast<double>(spec.timeout_ms) / 1000.0);
  }
  w.Key("eta");
  TimeOrNull(w, spec.eta_ms);
  w.Key("unique_key").StringOrNull(spec.unique_key);
  w.Key("created_at").String(FormatIsoTime(spec.created_ms));
  w.Key("started_at");
  TimeOrNull(w, record.started_ms);
  w.Key("completed_at");
  TimeOrNull(w, record.completed_ms);
  w.Key("run_at");
  TimeOrNull(w, record.run_at_ms);
  w.EndObject();
  return out;
}

}  // namespace bmos::storage
