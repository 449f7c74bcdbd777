// Counters that many threads bump and few read.
//
// ShardedCounter: any thread may Add; Sum reads all shards. Each thread adds to its own shard
// (chosen once per thread), so concurrent adders do not fight over one cache line.
// RateWindow: one writer thread counts events per second of clock time in a ring of 64 seconds;
// any thread may read the count over the last N seconds.
#ifndef BMOS_ENGINE_INTERNAL_COUNTERS_H_
#define BMOS_ENGINE_INTERNAL_COUNTERS_H_

#include <array>
#include <atomic>
#include <cstdint>

namespace bmos::engine::internal {

// A small per-thread number, assigned round-robin at a thread's first use.
unsigned ThreadSlot();

class ShardedCounter {
 public:
  static constexpr unsigned kShards = 16;

  void Add(uint64_t n = 1) {
    // Relaxed: a statistic; nothing else is published through it.
    shards_[ThreadSlot() % kShards].v.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t Sum() const {
    uint64_t s = 0;
    for (const auto& shard : shards_) s += shard.v.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // One cache line per shard so two threads' adds never share a line.
  struct alignas(64) Shard {
    std::atomic<uint64_t> v{0};
  };
  std::array<Shard, kShards> shards_;
};

class RateWindow {
 public:
  static constexpr int kSlots = 64;

  // Writer only: one event at Unix second `now_s`.
  void Add(int64_t now_s) {
    int i = static_cast<int>(now_s & (kSlots - 1));
    if (tag_[i].load(std::memory_order_relaxed) != now_s) {
      count_[i].store(0, std::memory_order_relaxed);
      tag_[i].store(now_s, std::memory_order_relaxed);
    }
    count_[i].store(count_[i].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // Any thread: events in the `seconds` seconds ending at `now_s` (inclusive).
  // REQUIRES: seconds < kSlots.
  uint64_t CountSince(int64_t now_s, int seconds) const {
    uint64_t total = 0;
    for (int i = 0; i < kSlots; ++i) {
      int64_t tag = tag_[i].load(std::memory_order_relaxed);
      if (tag > now_s - seconds && tag <= now_s) total += count_[i].load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  std::array<std::atomic<int64_t>, kSlots> tag_{};
  std::array<std::atomic<uint64_t>, kSlots> count_{};
};

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_COUNTERS_H_
