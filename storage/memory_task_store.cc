#include "storage/memory_task_store.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/id_index.h"

namespace bmos::storage {
namespace {

constexpr int kShardBits = 6;
constexpr size_t kShardCount = size_t{1} << kShardBits;
constexpr size_t kMaxListLimit = 1000;

using StateCounts = std::array<uint64_t, kTaskStateCount>;

// Copies everything a transition may change. The spec is left alone: the stored record keeps its
// spec pointer (the contents are immutable), which saves two atomic reference-count updates per
// write and keeps one spec object per task.
void AssignMutableFields(TaskRecord& dst, const TaskRecord& src) {
  dst.state = src.state;
  dst.retry_count = src.retry_count;
  dst.run_at_ms = src.run_at_ms;
  dst.started_ms = src.started_ms;
  dst.completed_ms = src.completed_ms;
  dst.progress = src.progress;
  dst.progress_message = src.progress_message;
  dst.result_json = src.result_json;
  dst.error = src.error;
}

// Records in fixed-size chunks that never move: a slot number names a record for as long as it
// is stored. Growing adds a chunk; nothing is copied (a hash map of whole records moves every
// record on each rehash and leaves a quarter of its slots empty).
class SlotArray {
 public:
  static constexpr uint32_t kChunk = 256;

  TaskRecord& operator[](uint32_t slot) { return chunks_[slot / kChunk][slot % kChunk]; }
  const TaskRecord& operator[](uint32_t slot) const {
    return chunks_[slot / kChunk][slot % kChunk];
  }

  // A free slot (its record empty, without a spec): one purged earlier, else a new one.
  uint32_t Take() {
    if (!free_.empty()) {
      const uint32_t slot = free_.back();
      free_.pop_back();
      return slot;
    }
    if (used_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<TaskRecord[]>(kChunk));
    return used_++;
  }

  // Empties the record and makes the slot free for the next Take. Large string buffers go.
  void Release(uint32_t slot) {
    (*this)[slot] = TaskRecord();
    free_.push_back(slot);
  }

  // Calls `visit` with every stored record (slots with a spec), in slot order.
  template <typename Visit>
  void ForEach(Visit&& visit) const {
    for (uint32_t slot = 0; slot < used_; ++slot) {
      const TaskRecord& r = (*this)[slot];
      if (r.spec != nullptr) visit(r);
    }
  }

 private:
  std::vector<std::unique_ptr<TaskRecord[]>> chunks_;
  uint32_t used_ = 0;  // slots ever handed out; free_ holds those given back
  std::vector<uint32_t> free_;
};

// A terminal record's place in its shard's retention order: by completion time, then by id (of
// two tasks finished in the same millisecond, the older goes first).
struct Completion {
  int64_t completed_ms;
  TaskId id;

  friend auto operator<=>(const Completion&, const Completion&) = default;
};

using RecordIndex = IdIndex<uint32_t, kShardBits>;

class MemoryTaskStore final : public TaskStore {
 public:
  Durability durability() const override { return Durability::kMemory; }

  Status Write(std::span<const TaskRecord> records) override {
    // Validate everything first: a memory write cannot fail afterwards, so applying shard by
    // shard is still all-or-nothing.
    for (const TaskRecord& r : records) {
      if (r.spec == nullptr) return Status::InvalidArgument("task record without a spec");
    }
    for (const TaskRecord& r : records) Apply(r);
    return Status::Ok();
  }

  Result<TaskRecord> Get(const TaskId& id) const override {
    const Shard& shard = ShardFor(id);
    {
      std::lock_guard lock(shard.mu);
      if (const uint32_t slot = shard.index.Find(id)) return shard.slots[slot - 1];
    }
    return Status::NotFound("task " + id.ToString() + " not found");
  }

  Result<ListPage> List(const ListQuery& query) const override {
    if (query.limit < 1 || query.limit > kMaxListLimit) {
      return Status::InvalidArgument("limit must be between 1 and 1000");
    }
    // Pass 1 gathers only the ids of matches (16 bytes each) so that records are copied just for
    // the page itself; pass 2 copies those records.
    std::vector<TaskId> ids;
    for (const Shard& shard : shards_) {
      std::lock_guard lock(shard.mu);
      shard.slots.ForEach([&](const TaskRecord& r) {
        if (query.Matches(r)) ids.push_back(r.id());
      });
    }
    const size_t want = std::min(ids.size(), query.limit + 1);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(want), ids.end(),
                      std::greater<>());
    const bool more = ids.size() > query.limit;
    ids.resize(std::min(ids.size(), query.limit));

    ListPage page;
    page.records.reserve(ids.size());
    for (const TaskId& id : ids) {
      const Shard& shard = ShardFor(id);
      std::lock_guard lock(shard.mu);
      const uint32_t slot = shard.index.Find(id);
      // A record purged or changed since pass 1 is left out rather than shown stale.
      if (slot != 0 && query.Matches(shard.slots[slot - 1])) {
        page.records.push_back(shard.slots[slot - 1]);
      }
    }
    if (more && !ids.empty()) page.next_cursor = ids.back();
    return page;
  }

  Result<StoreCounts> Counts() const override {
    StoreCounts out;
    for (const Shard& shard : shards_) {
      std::lock_guard lock(shard.mu);
      for (const auto& [queue, counts] : shard.counts) {
        auto it = out.by_queue.find(queue);
        if (it == out.by_queue.end()) it = out.by_queue.emplace(queue, StateCounts{}).first;
        for (int s = 0; s < kTaskStateCount; ++s) it->second[s] += counts[s];
      }
    }
    return out;
  }

  Status ForEachLive(const std::function<void(const TaskRecord&)>& visit) const override {
    // Copy one shard's live records under its lock and visit them outside it, so `visit` may
    // call back into the store (or take its time) without blocking writers or deadlocking.
    std::vector<TaskRecord> live;
    for (const Shard& shard : shards_) {
      live.clear();
      {
        std::lock_guard lock(shard.mu);
        if (shard.index.size() == shard.terminal) continue;  // nothing live here
        shard.slots.ForEach([&](const TaskRecord& r) {
          if (!IsTerminal(r.state)) live.push_back(r);
        });
      }
      for (const TaskRecord& r : live) visit(r);
    }
    return Status::Ok();
  }

  Result<size_t> PurgeTerminal(const PurgeOptions& options) override {
    std::lock_guard purge_lock(purge_mu_);
    // Each shard keeps its terminal records in completion order; merging the shards' oldest
    // entries through a heap purges oldest-first across the whole store.
    uint64_t terminal = 0;
    using Front = std::pair<Completion, size_t>;  // (a shard's oldest entry, shard), oldest first
    std::priority_queue<Front, std::vector<Front>, std::greater<>> fronts;
    for (size_t i = 0; i < kShardCount; ++i) {
      Shard& shard = shards_[i];
      std::lock_guard lock(shard.mu);
      terminal += shard.terminal;
      if (!shard.completions.empty()) fronts.emplace(shard.completions.front(), i);
    }
    size_t removed = 0;
    while (removed < options.max_batch && !fronts.empty()) {
      const size_t i = fronts.top().second;
      fronts.pop();
      Shard& shard = shards_[i];
      std::lock_guard lock(shard.mu);
      if (shard.completions.empty()) continue;
      // Read again under the lock: a write may have put an older completion in front since.
      const Completion oldest = shard.completions.front();
      const bool too_old = oldest.completed_ms < options.completed_before_ms;
      const bool too_many = options.keep_at_most > 0 && terminal > options.keep_at_most;
      if (!too_old && !too_many) break;  // nothing older anywhere: every other front is younger
      shard.completions.pop_front();
      if (!shard.completions.empty()) fronts.emplace(shard.completions.front(), i);
      const uint32_t found = shard.index.Find(oldest.id);
      // An entry may name a record purged already or, after an out-of-table rewrite, no longer
      // terminal; such entries are simply dropped.
      if (found == 0) continue;
      const uint32_t slot = found - 1;
      const TaskRecord& r = shard.slots[slot];
      if (!IsTerminal(r.state)) continue;
      auto counts = shard.counts.find(r.spec->queue);
      if (counts != shard.counts.end()) {
        --counts->second[static_cast<size_t>(r.state)];
        // Writes never lower a queue's total, so only here can a queue's counts reach zero;
        // dropping it keeps Counts() from listing queues that no longer hold anything.
        if (std::all_of(counts->second.begin(), counts->second.end(),
                        [](uint64_t c) { return c == 0; })) {
          if (shard.last_counts == &counts->second) shard.last_counts = nullptr;
          shard.counts.erase(counts);
        }
      }
      shard.index.Erase(oldest.id);
      shard.slots.Release(slot);
      --shard.terminal;
      --terminal;
      ++removed;
    }
    return removed;
  }

  Status WriteJobs(std::span<const JobWrite> writes) override {
    std::lock_guard lock(jobs_mu_);
    for (const JobWrite& w : writes) {
      if (w.erase) {
        jobs_.erase(w.id);
      } else {
        jobs_[w.id] = w.value;
      }
    }
    return Status::Ok();
  }

  Status ForEachJob(
      const std::function<void(std::string_view, std::string_view)>& visit) const override {
    // A copy, so that `visit` may write jobs.
    std::map<std::string, std::string, std::less<>> jobs;
    {
      std::lock_guard lock(jobs_mu_);
      jobs = jobs_;
    }
    for (const auto& [id, value] : jobs) visit(id, value);
    return Status::Ok();
  }

 private:
  // One slice of the records. Aligned to a cache line so two shards' mutexes never share a line
  // (writers of different shards would otherwise invalidate each other's cache).
  struct alignas(64) Shard {
    mutable std::mutex mu;
    // Id -> 1 + the record's slot. Open addressing, and ids of records written one after another
    // sit side by side (IdIndex), so a write touches a cache line that is likely still warm.
    RecordIndex index;  // GUARDED_BY(mu)
    SlotArray slots;    // GUARDED_BY(mu)
    // The terminal records in retention order (see Completion).
    // Entries may outlive their records; PurgeTerminal skips those.
    std::deque<Completion> completions;  // GUARDED_BY(mu)
    // Per queue, the number of records in each state. Nodes never move, so the last queue's
    // counts are remembered: consecutive writes of one queue skip the lookup.
    std::unordered_map<std::string, StateCounts> counts;  // GUARDED_BY(mu)
    const std::string* last_queue = nullptr;              // GUARDED_BY(mu): key of last_counts
    StateCounts* last_counts = nullptr;                   // GUARDED_BY(mu)
    uint64_t terminal = 0;                                // GUARDED_BY(mu): terminal records
  };

  Shard& ShardFor(const TaskId& id) { return shards_[RecordIndex::ShardOf(id)]; }
  const Shard& ShardFor(const TaskId& id) const { return shards_[RecordIndex::ShardOf(id)]; }

  void Apply(const TaskRecord& r) {
    const TaskId& id = r.id();
    Shard& shard = ShardFor(id);
    std::lock_guard lock(shard.mu);
    const auto [slot_plus_1, inserted] =
        shard.index.FindOrInsert(id, [&shard] { return shard.slots.Take() + 1; });
    TaskRecord& stored = shard.slots[slot_plus_1 - 1];
    StateCounts& counts = CountsFor(shard, r.spec->queue);
    bool became_terminal;
    if (inserted) {
      // The slot's record is empty: assigning into it reuses its string buffers.
      stored = r;
      became_terminal = IsTerminal(r.state);
    } else {
      --counts[static_cast<size_t>(stored.state)];
      const bool was_terminal = IsTerminal(stored.state);
      became_terminal = !was_terminal && IsTerminal(r.state);
      if (was_terminal && !IsTerminal(r.state)) --shard.terminal;
      AssignMutableFields(stored, r);
    }
    ++counts[static_cast<size_t>(r.state)];
    if (became_terminal) {
      ++shard.terminal;
      // Completions arrive nearly in order (each worker stamps its outcome just before the
      // write); one that overtook others is placed behind the last older entry.
      const Completion c{r.completed_ms, id};
      auto pos = shard.completions.end();
      while (pos != shard.completions.begin() && c < *std::prev(pos)) --pos;
      shard.completions.insert(pos, c);
    }
  }

  static StateCounts& CountsFor(Shard& shard, const std::string& queue) {
    if (shard.last_counts != nullptr && *shard.last_queue == queue) return *shard.last_counts;
    auto it = shard.counts.find(queue);
    if (it == shard.counts.end()) it = shard.counts.emplace(queue, StateCounts{}).first;
    shard.last_queue = &it->first;
    shard.last_counts = &it->second;
    return it->second;
  }

  std::array<Shard, kShardCount> shards_;

  mutable std::mutex jobs_mu_;
  std::map<std::string, std::string, std::less<>> jobs_;  // GUARDED_BY(jobs_mu_)

  std::mutex purge_mu_;  // one purge at a time (its running count of terminal records)
};

}  // namespace

std::unique_ptr<TaskStore> NewMemoryTaskStore() { return std::make_unique<MemoryTaskStore>(); }

}  // namespace bmos::storage
