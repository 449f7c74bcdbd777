// The task model shared by every layer: states, priorities, the one table of legal transitions,
// and the record that the store keeps for each task.
//
// TaskSpec is what the caller asked for; it never changes after enqueue and is shared (by
// shared_ptr<const>) between the engine and the store, so writing a record per transition copies
// no strings of the request. TaskRecord adds the fields that change. Both are values: a
// TaskRecord may be copied and read from any thread; writers own their copy.
#ifndef BMOS_STORAGE_TASK_RECORD_H_
#define BMOS_STORAGE_TASK_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "storage/task_id.h"

namespace bmos::storage {

// PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED, RUNNING -> RETRYING -> PENDING, and
// PENDING | RETRYING -> CANCELLED. COMPLETED, FAILED and CANCELLED are terminal.
enum class TaskState : uint8_t {
  kPending = 0,
  kRunning = 1,
  kRetrying = 2,
  kCompleted = 3,
  kFailed = 4,
  kCancelled = 5,
};
inline constexpr int kTaskStateCount = 6;

// "PENDING", "RUNNING", "RETRYING", "COMPLETED", "FAILED", "CANCELLED".
std::string_view ToString(TaskState state);
// Accepts the names above in any case; nullopt otherwise.
std::optional<TaskState> ParseTaskState(std::string_view text);

constexpr bool IsTerminal(TaskState s) {
  return s == TaskState::kCompleted || s == TaskState::kFailed || s == TaskState::kCancelled;
}

// The one table of legal transitions (DESIGN.md). Every state change in the project goes
// through it; anything else is a bug.
bool IsLegalTransition(TaskState from, TaskState to);

// Workers take CRITICAL before HIGH before NORMAL before LOW. The numeric value is the dispatch
// level (higher runs first).
enum class Priority : uint8_t { kLow = 0, kNormal = 1, kHigh = 2, kCritical = 3 };
inline constexpr int kPriorityCount = 4;

// "LOW", "NORMAL", "HIGH", "CRITICAL".
std::string_view ToString(Priority priority);
// Accepts the names above in any case; nullopt otherwise.
std::optional<Priority> ParsePriority(std::string_view text);

// The immutable part of a task: what the caller asked for.
struct TaskSpec {
  TaskId id{};
  std::string name{};   // a registered handler
  std::string queue{};  // a queue served by some worker group
  Priority priority = Priority::kNormal;
  std::string data_json{};   // a JSON object, compact text
  int32_t max_retries = 3;   // attempts = max_retries + 1
  int64_t timeout_ms = 0;    // per attempt; 0 = none
  int64_t eta_ms = 0;        // Unix ms before which the first attempt must not start; 0 = none
  std::string unique_key{};  // empty = none
  int64_t created_ms = 0;    // Unix ms
};

namespace internal {
// Swaps two strings unless both are empty.
inline void SwapText(std::string& a, std::string& b) noexcept {
  if (!a.empty() || !b.empty()) a.swap(b);
}
// Empties `s` for reuse, keeping its buffer unless that is larger than `keep` bytes (a reused
// object must not hold on to one big value for ever).
inline void ClearKeepingBuffer(std::string& s, size_t keep) {
  if (s.capacity() > keep) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}
}  // namespace internal

// One task as stored: the spec plus everything a transition changes.
struct TaskRecord {
  std::shared_ptr<const TaskSpec> spec{};  // never null in a valid record
  TaskState state = TaskState::kPending;
  int32_t retry_count = 0;   // retries so far: the attempt running or next is retry_count + 1
  int64_t run_at_ms = 0;     // PENDING/RETRYING: Unix ms at which it becomes runnable; 0 = now
  int64_t started_ms = 0;    // start of the latest attempt; 0 = never started
  int64_t completed_ms = 0;  // time of the terminal transition; 0 = not terminal
  double progress = 0;       // 0..1, as last reported by the handler
  std::string progress_message{};
  std::string result_json{};  // COMPLETED: the handler's JSON result
  std::string error{};        // FAILED: the last attempt's error; CANCELLED: why

  const TaskId& id() const { return spec->id; }

  // Member by member: cheaper than std::swap's three whole-record moves (the engine swaps a
  // task's record with its outcome once per attempt). Two empty strings are left as they are
  // (usually two of the three): a std::string swap costs about 50 instructions.
  friend void swap(TaskRecord& a, TaskRecord& b) noexcept {
    using std::swap;
    swap(a.spec, b.spec);
    swap(a.state, b.state);
    swap(a.retry_count, b.retry_count);
    swap(a.run_at_ms, b.run_at_ms);
    swap(a.started_ms, b.started_ms);
    swap(a.completed_ms, b.completed_ms);
    swap(a.progress, b.progress);
    internal::SwapText(a.progress_message, b.progress_message);
    internal::SwapText(a.result_json, b.result_json);
    internal::SwapText(a.error, b.error);
  }
};

// ISO 8601 UTC with milliseconds and 'Z': "2026-11-28T20:16:12.123Z". `unix_ms` >= 0.
std::string FormatIsoTime(int64_t unix_ms);

// The record as the JSON object of the HTTP contract: task_id, task_name, queue_name, priority,
// status, task_data, result, error, retry_count, max_retries, progress, progress_message,
// timeout_seconds, eta, unique_key, created_at, started_at, completed_at, run_at (times ISO 8601
// or null).
std::string ToJson(const TaskRecord& record);

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_TASK_RECORD_H_
