// TaskId: a UUIDv7 (RFC 9562), the identity of a task.
//
// Ids are 128-bit values whose top 48 bits are the Unix time in milliseconds, so comparing two
// ids compares their creation times: lists sort newest-first by id alone. A 12-bit counter shared
// by the whole process keeps ids strictly increasing in the order they are made, across threads;
// 62 random bits keep ids of different processes unique. TaskId is a plain value: safe to copy
// between threads. NewTaskId may be called from any thread (its state is thread-local).
#ifndef BMOS_STORAGE_TASK_ID_H_
#define BMOS_STORAGE_TASK_ID_H_

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bmos::storage {

struct TaskId {
  uint64_t hi = 0;  // unix_ts_ms(48) | version(4) | rand_a or counter(12)
  uint64_t lo = 0;  // variant(2) | rand_b(62)

  bool is_nil() const { return hi == 0 && lo == 0; }
  // Milliseconds since the Unix epoch at which the id was made.
  int64_t unix_ms() const { return static_cast<int64_t>(hi >> 16); }
  // Where NewTaskId put the id in its order: (Unix ms << 12) | counter. Distinct and increasing
  // for the ids of one process; ids made by other processes (a previous run) may share it. Hash
  // tables that keep recent ids close together (inserts and erases then touch a few hot cache
  // lines instead of one random line each) place ids by it.
  uint64_t sequence() const { return ((hi >> 16) << 12) | (hi & 0xFFF); }

  // Canonical lower-case form: "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f60" (36 characters).
  std::string ToString() const;
  // Writes the 36 characters to out. REQUIRES: out has room for 36 chars.
  void Format(char* out) const;
  // Accepts the canonical form in either case; nullopt for anything else.
  static std::optional<TaskId> Parse(std::string_view text);

  friend auto operator<=>(const TaskId&, const TaskId&) = default;
};

// A fresh UUIDv7 for a task created at `now_ms` (Unix milliseconds, from the caller's Clock).
TaskId NewTaskId(int64_t now_ms);

struct TaskIdHash {
  size_t operator()(const TaskId& id) const {
    // The low word is random; mixing in hi separates ids that share lo by chance.
    return static_cast<size_t>(id.lo ^ (id.hi * 0x9E3779B97F4A7C15ull));
  }
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_TASK_ID_H_
