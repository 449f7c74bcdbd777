// Helpers shared by the store tests: deterministic ids and records, every state, a one-record
// write, a callback that records what it is told, and a temporary directory that removes itself.
#ifndef BMOS_TESTS_STORAGE_STORE_TEST_UTIL_H_
#define BMOS_TESTS_STORAGE_STORE_TEST_UTIL_H_

#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "storage/task_record.h"
#include "storage/task_store.h"
#include "storage/wal_file_system.h"

namespace bmos::storage::test_util {

inline constexpr int64_t kBaseMs = 1'795'896'972'123;

// Ids that order as their index: the same millisecond layout as NewTaskId, made by hand so tests
// are deterministic.
inline TaskId IdFor(uint64_t i) {
  return TaskId{(static_cast<uint64_t>(kBaseMs + i) << 16) | 0x7000,
                0x8000000000000000ull | (i * 0x9E3779B97F4A7C15ull >> 2)};
}

inline TaskRecord MakeRecord(uint64_t i, std::string queue = "default", std::string name = "work",
                             TaskState state = TaskState::kPending) {
  auto spec = std::make_shared<TaskSpec>();
  spec->id = IdFor(i);
  spec->name = std::move(name);
  spec->queue = std::move(queue);
  spec->data_json = "{}";
  spec->created_ms = kBaseMs + static_cast<int64_t>(i);
  TaskRecord r;
  r.spec = std::move(spec);
  r.state = state;
  return r;
}

// `r` moved to `state` at `now_ms` (sets completed_ms when terminal).
inline TaskRecord With(TaskRecord r, TaskState state, int64_t now_ms = kBaseMs) {
  r.state = state;
  if (IsTerminal(state)) r.completed_ms = now_ms;
  if (state == TaskState::kRunning) r.started_ms = now_ms;
  return r;
}

// Every task state, in the enum's order.
inline constexpr std::array<TaskState, kTaskStateCount> kAllStates = {
    TaskState::kPending,   TaskState::kRunning, TaskState::kRetrying,
    TaskState::kCompleted, TaskState::kFailed,  TaskState::kCancelled};

inline Status WriteOne(TaskStore& store, const TaskRecord& r) { return store.Write({&r, 1}); }

// A write callback that keeps every status it is told, in the order told.
class RecordingCallback final : public WriteCallback {
 public:
  void OnWritten(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.push_back(status);
  }
  std::vector<Status> statuses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return statuses_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Status> statuses_;
};

// A fresh directory under the system's temporary directory, removed with its contents at the
// end of the scope.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "store") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("bmos-" + tag + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // A path inside the directory.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The non-empty write-ahead log files in `dir` that are whole chunks of `chunk_bytes` ending in
// zeros written ahead (storage/wal_file_system.h), and those that are not.
inline std::pair<int, int> ZeroTailedAndPlainLogs(
    const std::string& dir, uint64_t chunk_bytes = ZeroAheadWalFileSystem::kDefaultChunkBytes) {
  std::pair<int, int> logs{0, 0};
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!ZeroAheadWalFileSystem::IsWalFileName(entry.path().string())) continue;
    std::ifstream in(entry.path(), std::ios::binary | std::ios::ate);
    const auto size = static_cast<uint64_t>(in.tellg());
    if (size == 0) continue;
    in.seekg(-1, std::ios::end);
    const bool zero_tail = in.get() == 0 && size % chunk_bytes == 0;
    ++(zero_tail ? logs.first : logs.second);
  }
  return logs;
}

}  // namespace bmos::storage::test_util

#endif  // BMOS_TESTS_STORAGE_STORE_TEST_UTIL_H_
