// EngineOptions: everything Engine::Open takes. Validated once, at Open.
#ifndef BMOS_ENGINE_OPTIONS_H_
#define BMOS_ENGINE_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/retry_policy.h"
#include "storage/task_store.h"

namespace bmos::engine {

using storage::Durability;

// A set of worker threads serving some queues. Each queue is served by exactly one group, so a
// slow queue (model training) in its own group cannot hold up short tasks in another.
struct WorkerGroupOptions {
  // Unique group name. Default: "default".
  std::string name = "default";
  // The queues this group serves; each named queue exists once the engine opens. Tasks enqueued
  // to a queue that no group serves are refused. Default: {"default"}.
  std::vector<std::string> queues = {"default"};
  // Worker threads, 1..256; changeable at run time with Engine::ResizeGroup. Default: 4.
  int workers = 4;
};

// How long terminal tasks (COMPLETED, FAILED, CANCELLED) are kept in the store. Without
// retention, finished tasks pile up until memory or disk runs out.
struct RetentionOptions {
  // Purge terminal tasks completed longer ago than this. 0 keeps them forever (not advised).
  // Default: 7 days.
  std::chrono::milliseconds max_age{std::chrono::hours(24 * 7)};
  // Also purge the oldest terminal tasks beyond this count. 0 = no cap. Default: 1,000,000.
  uint64_t max_count = 1'000'000;
  // How often the janitor runs. Default: 10 s.
  std::chrono::milliseconds interval{10'000};
  // Records purged per store call; small batches keep the hot path free. Default: 1000.
  size_t batch = 1000;
};

struct EngineOptions {
  // What an acknowledged enqueue survives (README, "Durability"):
  //   kSync    on disk (WAL fsynced, shared by concurrent writers) before Enqueue returns;
  //            survives a process crash and a power cut.
  //   kAsync   written to the WAL before Enqueue returns, not fsynced; survives a process crash,
  //            a power cut may lose the last moments.
  //   kMemory  nothing is written; everything is lost with the process.
  // kSync and kAsync use `store` when given, else the engine opens the RocksDB store in
  // `data_dir`. Default: kSync.
  Durability durability = Durability::kSync;

  // Data directory of the RocksDB store the engine opens itself (kSync or kAsync and no
  // `store`); created when missing. Only one engine may have it open. Default: "bmos-data"
  // (relative to the working directory).
  std::string data_dir = "bmos-data";

  // kSync, the store the engine opens itself: write the WAL's files over zeros written ahead, so
  // that a commit's fsync does not grow the file (storage/wal_file_system.h; +25-45% `sync`
  // throughput on ext4). Turn it off on copy-on-write file systems (btrfs, ZFS), where an
  // overwrite takes a new block anyway and the zeros only double the log's writes.
  // Default: true.
  bool wal_zero_ahead = true;

  // The store to use instead (tests, embedders sharing a store). The engine shares ownership.
  // Its durability() must equal `durability`. Default: null.
  std::shared_ptr<storage::TaskStore> store{};

  // Worker groups; their queue lists must not overlap. Default: one group "default" serving
  // "default" with 4 workers.
  std::vector<WorkerGroupOptions> groups = {WorkerGroupOptions{}};

  // Backoff between attempts of a failing task.
  RetryOptions retry{};

  // Retention of terminal tasks.
  RetentionOptions retention{};

  // Defaults for tasks whose enqueue and handler leave them unset.
  int32_t default_max_retries = 3;               // Default: 3. Must be 0..1000.
  std::chrono::milliseconds default_timeout{0};  // per attempt; 0 = none. Default: 0.

  // Under a constant flood of higher-priority work, every `anti_starvation_interval`-th pick of
  // a worker takes the oldest waiting level first (LOW, NORMAL, HIGH in turn), so every level
  // gets at least 1/(3*interval) of a worker's picks while it has work. 0 disables the guard
  // (strict priority). Default: 32.
  int anti_starvation_interval = 32;

  // How many tasks a worker takes from a shared queue at once into its own deque (where idle
  // workers can steal them). Larger batches cost fewer atomic operations per task. 1..256.
  // Default: 16.
  int dequeue_batch = 16;

  // The time source. Must outlive the engine. Default: SystemClock().
  Clock* clock = nullptr;

  // Seed of the jitter draws; 0 picks a random seed. Default: 0.
  uint64_t seed = 0;
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_OPTIONS_H_
