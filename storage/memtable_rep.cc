#include "storage/memtable_rep.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bmos::storage {
namespace {

using Link = std::atomic<struct Node*>;

constexpr int kMaxHeight = 12;  // 4^12 ≈ 16.7M entries before the top level stops helping

// A node is its links and its key in one arena allocation: link `level` lies `level` words
// below the node's address (the highest first), the key starts right after link 0. Until the
// node is inserted, link 0 holds its height (see Stash).
struct Node {
  Link* At(int level) { return reinterpret_cast<Link*>(this) - level; }
  Node* Next(int level) { return At(level)->load(std::memory_order_acquire); }
  const char* Key() const { return reinterpret_cast<const char*>(this) + sizeof(Link); }
  static Node* OfKey(const char* key) {
    return reinterpret_cast<Node*>(const_cast<char*>(key) - sizeof(Link));
  }
  void Stash(int height) {
    At(0)->store(reinterpret_cast<Node*>(static_cast<uintptr_t>(height)),
                 std::memory_order_relaxed);
  }
  int Unstash() {
    return static_cast<int>(reinterpret_cast<uintptr_t>(At(0)->load(std::memory_order_relaxed)));
  }
};

class AppendSkipListRep;

// Iterators handed out with an arena are destroyed by an explicit destructor call (RocksDB's
// MemTableIterator), never freed: their storage comes from this pool, which the rep frees. The
// pool keeps the rep free of RocksDB's private Arena class.
// An iterator gives its storage back from its destructor, whose members and base are destroyed
// after that: only the thread that ran the destructor takes that storage again (by then the
// destructor has finished, in that thread's order), never another one.
class IteratorPool {
 public:
  void* Take() {
    const std::thread::id me = std::this_thread::get_id();
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].by == me) {
        void* slot = free_[i].slot;
        free_[i] = free_.back();
        free_.pop_back();
        return slot;
      }
    }
    slots_.push_back(std::make_unique<Slot>());
    return slots_.back()->bytes;
  }
  void Give(void* slot) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back({slot, std::this_thread::get_id()});
  }

 private:
  struct Slot {
    alignas(std::max_align_t) unsigned char bytes[128];
  };
  struct Free {
    void* slot;
    std::thread::id by;  // the thread that gave it back
  };
  std::mutex mu_;
  std::vector<std::unique_ptr<Slot>> slots_;  // GUARDED_BY(mu_)
  std::vector<Free> free_;                    // GUARDED_BY(mu_)
};

class AppendSkipListRep final : public rocksdb::MemTableRep {
 public:
  AppendSkipListRep(const KeyComparator& compare, rocksdb::Allocator* allocator)
      : MemTableRep(allocator), compare_(compare), head_(NewNode(kMaxHeight, 0)) {
    for (int i = 0; i < kMaxHeight; ++i) {
      head_->At(i)->store(nullptr, std::memory_order_relaxed);
      last_[i].store(head_, std::memory_order_relaxed);
    }
  }

  rocksdb::KeyHandle Allocate(const size_t len, char** buf) override {
    Node* x = NewNode(RandomHeight(), len);
    *buf = const_cast<char*>(x->Key());
    return *buf;
  }

  void Insert(rocksdb::KeyHandle handle) override {
    LinkIn(Node::OfKey(static_cast<const char*>(handle)), nullptr);
  }

  void InsertWithHint(rocksdb::KeyHandle handle, void** hint) override {
    LinkIn(Node::OfKey(static_cast<const char*>(handle)), hint);
  }

  bool Contains(const char* key) const override {
    Node* x = FindGreaterOrEqual(key);
    return x != nullptr && compare_(x->Key(), key) == 0;
  }

  // RocksDB 7.8's MemTableRep::Get (the lookup key's encoding is private to RocksDB) asks
  // GetDynamicPrefixIterator for an iterator and never frees it: this one lives on the stack.
  void Get(const rocksdb::LookupKey& k, void* callback_args,
           bool (*callback_func)(void* arg, const char* entry)) override;
  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override;
  Iterator* GetIterator(rocksdb::Arena* arena) override;

  // The nodes live in the memtable's arena, which RocksDB counts itself.
  size_t ApproximateMemoryUsage() override { return 0; }

  // The first node whose key is >= key, or nullptr.
  Node* FindGreaterOrEqual(const char* key) const {
    Node* next = nullptr;
    FindLessThan(key, &next);
    return next;
  }

  // The last node whose key is < key, or head_; `*next_out`, when given, the node after it as
  // this search read it (a reader must not read that link again: a writer may have linked a
  // node < key there meanwhile).
  Node* FindLessThan(const char* key, Node** next_out = nullptr) const {
    Node* x = head_;
    Node* bigger = nullptr;  // known to be >= key: not compared again on the levels below
    for (int level = max_height_.load(std::memory_order_relaxed) - 1;;) {
      Node* next = x->Next(level);
      if (next != nullptr && next != bigger && compare_(next->Key(), key) < 0) {
        x = next;
      } else if (level == 0) {
        if (next_out != nullptr) *next_out = next;
        return x;
      } else {
        bigger = next;
        --level;
      }
    }
  }

  // The last node, or head_ when empty.
  Node* FindLast() const {
    Node* x = head_;
    for (int level = max_height_.load(std::memory_order_relaxed) - 1;;) {
      Node* next = x->Next(level);
      if (next != nullptr) {
        x = next;
      } else if (level == 0) {
        return x;
      } else {
        --level;
      }
    }
  }

  const KeyComparator& compare() const { return compare_; }
  Node* head() const { return head_; }

 private:
  Node* NewNode(int height, size_t key_len) {
    const size_t links = sizeof(Link) * static_cast<size_t>(height);
    char* raw = nullptr;
    // The arena's unaligned allocation, aligned here for the links.
    MemTableRep::Allocate(links + key_len + alignof(Link) - 1, &raw);
    const uintptr_t at = (reinterpret_cast<uintptr_t>(raw) + alignof(Link) - 1) &
                         ~static_cast<uintptr_t>(alignof(Link) - 1);
    char* base = reinterpret_cast<char*>(at);
    for (int i = 0; i < height; ++i) new (base + sizeof(Link) * i) Link(nullptr);
    Node* x = reinterpret_cast<Node*>(base + links - sizeof(Link));
    x->Stash(height);
    return x;
  }

  // Branching factor 4, as RocksDB's skip list. One writer at a time (the state is atomic only
  // so that a change of writer thread needs no fence the sanitizers can see).
  int RandomHeight() {
    uint64_t s = rng_.load(std::memory_order_relaxed);
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    rng_.store(s, std::memory_order_relaxed);
    int height = 1;
    while (height < kMaxHeight && (s & 3) == 0) {
      ++height;
      s >>= 2;
    }
    return height;
  }

  // Links `x` in, publishing each level with a release store, from the bottom up: a reader
  // that finds `x` on a level finds it on every level below.
  void LinkIn(Node* x, void** hint) {
    const int height = x->Unstash();
    const char* key = x->Key();
    // The hint is the node inserted last with the same prefix (null at first); `x` from now on.
    Node* const hinted = hint != nullptr ? static_cast<Node*>(*hint) : nullptr;
    if (hint != nullptr) *hint = x;

    if (hinted != nullptr && compare_(hinted->Key(), key) < 0) {
      Node* next = hinted->At(0)->load(std::memory_order_relaxed);
      if (next == nullptr) return Append(x, height);  // the hint is the last node
      if (compare_(key, next->Key()) < 0) {
        if (height > 1) return Search(x, height);
        // Right after the previous key of its prefix, on the lowest level only.
        x->At(0)->store(next, std::memory_order_relaxed);
        hinted->At(0)->store(x, std::memory_order_release);
        return;
      }
    }
    Node* last = last_[0].load(std::memory_order_relaxed);
    if (last == head_ || compare_(last->Key(), key) < 0) return Append(x, height);
    Search(x, height);
  }

  // `x` sorts after every node: behind the last node of each of its levels.
  void Append(Node* x, int height) {
    Node* prev[kMaxHeight];
    for (int i = 0; i < height; ++i) prev[i] = last_[i].load(std::memory_order_relaxed);
    LinkAfter(x, height, prev);
  }

  // Anywhere else: search from the top, as a skip list does.
  void Search(Node* x, int height) {
    const char* key = x->Key();
    const int max_height = max_height_.load(std::memory_order_relaxed);
    Node* prev[kMaxHeight];
    Node* p = head_;
    for (int level = std::max(max_height, height) - 1; level >= 0; --level) {
      if (level < max_height) {
        for (;;) {
          Node* next = p->At(level)->load(std::memory_order_relaxed);
          if (next == nullptr || compare_(next->Key(), key) >= 0) break;
          p = next;
        }
      }
      prev[level] = p;
    }
    LinkAfter(x, height, prev);
  }

  // Links `x` behind prev[i] on each level i below `height`.
  void LinkAfter(Node* x, int height, Node* const* prev) {
    if (height > max_height_.load(std::memory_order_relaxed)) {
      max_height_.store(height, std::memory_order_relaxed);
    }
    for (int i = 0; i < height; ++i) {
      Node* next = prev[i]->At(i)->load(std::memory_order_relaxed);
      x->At(i)->store(next, std::memory_order_relaxed);
      prev[i]->At(i)->store(x, std::memory_order_release);
      if (next == nullptr) last_[i].store(x, std::memory_order_relaxed);
    }
  }

  const KeyComparator& compare_;
  Node* const head_;
  std::atomic<int> max_height_{1};
  std::atomic<Node*> last_[kMaxHeight];  // the last node of each level, head_ when empty
  std::atomic<uint64_t> rng_{0x9E3779B97F4A7C15ull};
  IteratorPool pool_;
};

// The memtable key (length-prefixed internal key) to look for: `memtable_key` when given, else
// `internal_key` encoded into `scratch`.
const char* MemtableKey(const rocksdb::Slice& internal_key, const char* memtable_key,
                        std::string* scratch) {
  if (memtable_key != nullptr) return memtable_key;
  scratch->clear();
  uint32_t n = static_cast<uint32_t>(internal_key.size());
  while (n >= 0x80) {
    scratch->push_back(static_cast<char>(n | 0x80));
    n >>= 7;
  }
  scratch->push_back(static_cast<char>(n));
  scratch->append(internal_key.data(), internal_key.size());
  return scratch->data();
}

class SkipListIterator final : public rocksdb::MemTableRep::Iterator {
 public:
  // `pooled`: the storage came from the rep's pool and goes back there (see IteratorPool).
  SkipListIterator(const AppendSkipListRep* list, IteratorPool* pooled)
      : list_(list), pooled_(pooled) {}
  ~SkipListIterator() override {
    if (pooled_ != nullptr) pooled_->Give(this);
  }
  SkipListIterator(const SkipListIterator&) = delete;
  SkipListIterator& operator=(const SkipListIterator&) = delete;

  bool Valid() const override { return node_ != nullptr; }
  const char* key() const override { return node_->Key(); }
  void Next() override { node_ = node_->Next(0); }
  void Prev() override { Set(list_->FindLessThan(node_->Key())); }
  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    node_ = list_->FindGreaterOrEqual(Target(internal_key, memtable_key));
  }
  // The last entry <= the target.
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    const char* target = Target(internal_key, memtable_key);
    Node* next = nullptr;
    Node* before = list_->FindLessThan(target, &next);
    if (next != nullptr && list_->compare()(next->Key(), target) == 0) {
      node_ = next;
    } else {
      Set(before);
    }
  }
  void SeekToFirst() override { node_ = list_->head()->Next(0); }
  void SeekToLast() override { Set(list_->FindLast()); }

 private:
  void Set(Node* x) { node_ = x == list_->head() ? nullptr : x; }

  const char* Target(const rocksdb::Slice& internal_key, const char* memtable_key) {
    return MemtableKey(internal_key, memtable_key, &scratch_);
  }

  const AppendSkipListRep* list_;
  IteratorPool* pooled_;
  Node* node_ = nullptr;
  std::string scratch_;
};

static_assert(sizeof(SkipListIterator) <= 128, "IteratorPool's slots hold an iterator");
static_assert(alignof(SkipListIterator) <= alignof(std::max_align_t));

// Get's iterator, handed from Get to the GetDynamicPrefixIterator call RocksDB's Get makes.
// (Either rep's: t_get_rep says whose.)
thread_local rocksdb::MemTableRep::Iterator* t_get_iterator = nullptr;
thread_local const rocksdb::MemTableRep* t_get_rep = nullptr;

// RocksDB's MemTableRep::Get for `rep`, over `it` (on the caller's stack).
void GetOver(rocksdb::MemTableRep* rep, rocksdb::MemTableRep::Iterator* it,
             const rocksdb::LookupKey& k, void* callback_args,
             bool (*callback_func)(void* arg, const char* entry)) {
  t_get_iterator = it;
  t_get_rep = rep;
  rep->rocksdb::MemTableRep::Get(k, callback_args, callback_func);
  t_get_iterator = nullptr;
  t_get_rep = nullptr;
}

// The iterator GetOver handed over for `rep`, once; null otherwise.
rocksdb::MemTableRep::Iterator* TakeGetIterator(const rocksdb::MemTableRep* rep) {
  if (t_get_iterator == nullptr || t_get_rep != rep) return nullptr;
  return std::exchange(t_get_iterator, nullptr);
}

void AppendSkipListRep::Get(const rocksdb::LookupKey& k, void* callback_args,
                            bool (*callback_func)(void* arg, const char* entry)) {
  SkipListIterator it(this, nullptr);
  GetOver(this, &it, k, callback_args, callback_func);
}

rocksdb::MemTableRep::Iterator* AppendSkipListRep::GetDynamicPrefixIterator(rocksdb::Arena* arena) {
  if (arena == nullptr) {
    if (rocksdb::MemTableRep::Iterator* it = TakeGetIterator(this)) return it;
  }
  return GetIterator(arena);
}

rocksdb::MemTableRep::Iterator* AppendSkipListRep::GetIterator(rocksdb::Arena* arena) {
  if (arena == nullptr) return new SkipListIterator(this, nullptr);
  return new (pool_.Take()) SkipListIterator(this, &pool_);
}

// -- SortedRunsRep -----------------------------------------------------------------------------

constexpr int kMaxRuns = 8;
constexpr size_t kFirstCapacity = 1024;

// An array that one thread appends to while any thread reads it (see SortedRunsFactory). A reader
// loads the size, then the data, and reads that many entries.
class AppendArray {
 public:
  size_t size() const { return size_.load(std::memory_order_acquire); }
  // Holds at least size() entries, for a size() loaded before it.
  const char* const* data() const { return data_.load(std::memory_order_acquire); }
  // Writer only: the last entry (the array is not empty).
  const char* back() const {
    return data_.load(std::memory_order_relaxed)[size_.load(std::memory_order_relaxed) - 1];
  }
  size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  void push_back(const char* key) {
    const size_t n = size_.load(std::memory_order_relaxed);
    if (n == capacity_) Grow();
    data_.load(std::memory_order_relaxed)[n] = key;
    size_.store(n + 1, std::memory_order_release);
  }

 private:
  void Grow() {
    const size_t capacity = capacity_ == 0 ? kFirstCapacity : capacity_ * 2;
    auto fresh = std::make_unique<const char*[]>(capacity);
    const char** old = data_.load(std::memory_order_relaxed);
    if (old != nullptr) std::copy(old, old + capacity_, fresh.get());
    data_.store(fresh.get(), std::memory_order_release);
    arrays_.push_back(std::move(fresh));
    capacity_ = capacity;
    bytes_.fetch_add(capacity * sizeof(const char*), std::memory_order_relaxed);
  }

  std::atomic<const char**> data_{nullptr};
  std::atomic<size_t> size_{0};
  std::atomic<size_t> bytes_{0};
  size_t capacity_ = 0;                                 // writer only
  std::vector<std::unique_ptr<const char*[]>> arrays_;  // writer only: the current one and older
};

class SortedRunsRep final : public rocksdb::MemTableRep {
 public:
  SortedRunsRep(const KeyComparator& compare, rocksdb::Allocator* allocator)
      : MemTableRep(allocator), compare_(compare) {}

  void Insert(rocksdb::KeyHandle handle) override {
    const char* key = static_cast<const char*>(handle);
    // order_ lists the runs by their last key, largest first: the first one below `key` is the
    // largest below it. Appending keeps the order (its new last key is still below the last
    // keys before it, and above its old one).
    const int used = used_.load(std::memory_order_relaxed);
    for (int i = 0; i < used; ++i) {
      AppendArray& run = runs_[order_[i]];
      if (compare_(run.back(), key) < 0) {
        run.push_back(key);
        return;
      }
    }
    if (used < kMaxRuns) {
      runs_[used].push_back(key);  // below every last key: a new run, last in the order
      order_[used] = used;
      used_.store(used + 1, std::memory_order_release);
      return;
    }
    overflow_.push_back(key);
  }

  bool Contains(const char* key) const override {
    const int used = used_.load(std::memory_order_acquire);
    for (int r = 0; r < used; ++r) {
      const size_t n = runs_[r].size();
      const char* const* d = runs_[r].data();
      const char* const* at = LowerBound(d, d + n, key);
      if (at != d + n && compare_(*at, key) == 0) return true;
    }
    const size_t n = overflow_.size();
    const char* const* d = overflow_.data();
    return std::any_of(d, d + n, [&](const char* e) { return compare_(e, key) == 0; });
  }

  void MarkReadOnly() override { read_only_.store(true, std::memory_order_release); }

  // RocksDB's Get, over a RunsCursor on the stack (see AppendSkipListRep::Get): a search in
  // each run and a scan of the overflow, then the entries in order until the callback stops (at
  // the first entry of another user key).
  void Get(const rocksdb::LookupKey& k, void* callback_args,
           bool (*callback_func)(void* arg, const char* entry)) override;
  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override;
  rocksdb::MemTableRep::Iterator* GetIterator(rocksdb::Arena* arena) override;

  size_t ApproximateMemoryUsage() override {
    // Not the merge made for reads once read-only: RocksDB takes the usage of an immutable
    // memtable as fixed (it asserts so when it lets one go).
    size_t bytes = overflow_.bytes();
    for (const AppendArray& run : runs_) bytes += run.bytes();
    return bytes;
  }

  // Every entry in order: the rep's own merge, made once, when it is read-only (the flush, and
  // reads of an immutable memtable); otherwise a merge into `copy`, which the caller keeps.
  const std::vector<const char*>* Sorted(std::vector<const char*>* copy) {
    if (!read_only_.load(std::memory_order_acquire)) {
      *copy = Merge();
      return copy;
    }
    std::call_once(merged_once_, [&] { merged_ = Merge(); });
    return &merged_;
  }

  const KeyComparator& compare() const { return compare_; }

  // For each run, where its entries at or after `target` begin and where they end; the overflow's
  // entries at or after `target`, sorted, in `overflow`. A null target: every entry.
  struct Cursor {
    const char* const* at;
    const char* const* end;
  };
  int Cursors(const char* target, Cursor* cursors, std::vector<const char*>* overflow) const {
    int count = 0;
    const int used = used_.load(std::memory_order_acquire);
    for (int r = 0; r < used; ++r) {
      const size_t n = runs_[r].size();
      const char* const* d = runs_[r].data();
      cursors[count++] = {target == nullptr ? d : LowerBound(d, d + n, target), d + n};
    }
    overflow->clear();
    const size_t n = overflow_.size();
    const char* const* d = overflow_.data();
    for (size_t i = 0; i < n; ++i) {
      if (target == nullptr || compare_(d[i], target) >= 0) overflow->push_back(d[i]);
    }
    std::sort(overflow->begin(), overflow->end(),
              [&](const char* a, const char* b) { return compare_(a, b) < 0; });
    cursors[count++] = {overflow->data(), overflow->data() + overflow->size()};
    return count;
  }
  static constexpr int kMaxCursors = kMaxRuns + 1;

 private:
  const char* const* LowerBound(const char* const* begin, const char* const* end,
                                const char* key) const {
    return std::lower_bound(begin, end, key,
                            [&](const char* e, const char* k) { return compare_(e, k) < 0; });
  }

  // The runs and the sorted overflow merged, pairwise (each entry takes part in about log2 of
  // the number of sequences merges).
  std::vector<const char*> Merge() const {
    std::vector<std::vector<const char*>> parts;
    const int used = used_.load(std::memory_order_acquire);
    for (int r = 0; r < used; ++r) {
      const size_t n = runs_[r].size();
      const char* const* d = runs_[r].data();
      parts.emplace_back(d, d + n);
    }
    const auto less = [&](const char* a, const char* b) { return compare_(a, b) < 0; };
    {
      const size_t n = overflow_.size();
      const char* const* d = overflow_.data();
      if (n > 0) {
        parts.emplace_back(d, d + n);
        std::sort(parts.back().begin(), parts.back().end(), less);
      }
    }
    if (parts.empty()) return {};
    while (parts.size() > 1) {
      std::vector<std::vector<const char*>> next;
      for (size_t i = 0; i + 1 < parts.size(); i += 2) {
        std::vector<const char*> both(parts[i].size() + parts[i + 1].size());
        std::merge(parts[i].begin(), parts[i].end(), parts[i + 1].begin(), parts[i + 1].end(),
                   both.begin(), less);
        next.push_back(std::move(both));
      }
      if (parts.size() % 2 == 1) next.push_back(std::move(parts.back()));
      parts = std::move(next);
    }
    return std::move(parts.front());
  }

  const KeyComparator& compare_;
  AppendArray runs_[kMaxRuns];
  std::atomic<int> used_{0};  // runs in use
  int order_[kMaxRuns] = {};  // writer only: runs by their last key, largest first
  AppendArray overflow_;      // unsorted: keys below every run's last once all are in use
  std::atomic<bool> read_only_{false};
  std::once_flag merged_once_;
  std::vector<const char*> merged_;  // once read-only and first read: every entry in order
  IteratorPool pool_;
};

// An iterator over a sorted array of entries: the rep's own merge (read-only rep) or its copy.
class SortedArrayIterator final : public rocksdb::MemTableRep::Iterator {
 public:
  SortedArrayIterator(SortedRunsRep* rep, IteratorPool* pooled)
      : compare_(rep->compare()), pooled_(pooled), keys_(rep->Sorted(&copy_)) {}
  ~SortedArrayIterator() override {
    if (pooled_ != nullptr) pooled_->Give(this);
  }
  SortedArrayIterator(const SortedArrayIterator&) = delete;
  SortedArrayIterator& operator=(const SortedArrayIterator&) = delete;

  bool Valid() const override { return at_ < keys_->size(); }
  const char* key() const override { return (*keys_)[at_]; }
  void Next() override { ++at_; }
  void Prev() override { at_ = at_ == 0 ? kInvalid : at_ - 1; }
  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    const char* target = MemtableKey(internal_key, memtable_key, &scratch_);
    at_ = static_cast<size_t>(
        std::lower_bound(keys_->begin(), keys_->end(), target, Less{compare_}) - keys_->begin());
  }
  // The last entry <= the target.
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    const char* target = MemtableKey(internal_key, memtable_key, &scratch_);
    const size_t after = static_cast<size_t>(
        std::upper_bound(keys_->begin(), keys_->end(), target, Less{compare_}) - keys_->begin());
    at_ = after == 0 ? kInvalid : after - 1;
  }
  void SeekToFirst() override { at_ = 0; }
  void SeekToLast() override { at_ = keys_->empty() ? kInvalid : keys_->size() - 1; }

 private:
  static constexpr size_t kInvalid = ~size_t{0};
  struct Less {
    const rocksdb::MemTableRep::KeyComparator& compare;
    bool operator()(const char* a, const char* b) const { return compare(a, b) < 0; }
  };

  const rocksdb::MemTableRep::KeyComparator& compare_;
  IteratorPool* pooled_;
  std::vector<const char*> copy_;  // a rep still written to: its merge, this iterator's own
  const std::vector<const char*>* keys_;
  size_t at_ = kInvalid;
  std::string scratch_;
};

static_assert(sizeof(SortedArrayIterator) <= 128, "IteratorPool's slots hold an iterator");
static_assert(alignof(SortedArrayIterator) <= alignof(std::max_align_t));

rocksdb::MemTableRep::Iterator* SortedRunsRep::GetIterator(rocksdb::Arena* arena) {
  if (arena == nullptr) return new SortedArrayIterator(this, nullptr);
  return new (pool_.Take()) SortedArrayIterator(this, &pool_);
}

// Get's iterator: a cursor in each run and in the sorted overflow, merged as it moves forward
// (Seek, Next: all Get asks of it). Moves backward, or to the last entry, switch it to a merged
// copy of the whole memtable (correct, and never needed by Get).
class RunsCursor final : public rocksdb::MemTableRep::Iterator {
 public:
  explicit RunsCursor(SortedRunsRep* rep) : rep_(rep) {}

  bool Valid() const override { return whole_ ? whole_->Valid() : least_ != nullptr; }
  const char* key() const override { return whole_ ? whole_->key() : *least_->at; }
  void Next() override {
    if (whole_) return whole_->Next();
    ++least_->at;
    PickLeast();
  }
  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    if (whole_) return whole_->Seek(internal_key, memtable_key);
    count_ =
        rep_->Cursors(MemtableKey(internal_key, memtable_key, &scratch_), cursors_, &overflow_);
    PickLeast();
  }
  void SeekToFirst() override {
    if (whole_) return whole_->SeekToFirst();
    count_ = rep_->Cursors(nullptr, cursors_, &overflow_);
    PickLeast();
  }
  void Prev() override {
    // The entry it is at, found again in the whole memtable (keys are unique), then one back.
    const std::string at = EntryKey(key());
    Whole().Seek(rocksdb::Slice(at), nullptr);
    whole_->Prev();
  }
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    Whole().SeekForPrev(internal_key, memtable_key);
  }
  void SeekToLast() override { Whole().SeekToLast(); }

 private:
  void PickLeast() {
    least_ = nullptr;
    for (int c = 0; c < count_; ++c) {
      SortedRunsRep::Cursor& cur = cursors_[c];
      if (cur.at != cur.end && (least_ == nullptr || rep_->compare()(*cur.at, *least_->at) < 0)) {
        least_ = &cur;
      }
    }
  }
  SortedArrayIterator& Whole() {
    if (!whole_) whole_.emplace(rep_, nullptr);
    return *whole_;
  }
  // The internal key of a memtable entry (its length-prefixed start).
  std::string EntryKey(const char* entry) const {
    const rocksdb::Slice internal = rep_->compare().decode_key(entry);
    return internal.ToString();
  }

  SortedRunsRep* rep_;
  SortedRunsRep::Cursor cursors_[SortedRunsRep::kMaxCursors];
  int count_ = 0;
  SortedRunsRep::Cursor* least_ = nullptr;
  std::vector<const char*> overflow_;
  std::string scratch_;
  std::optional<SortedArrayIterator> whole_;
};

void SortedRunsRep::Get(const rocksdb::LookupKey& k, void* callback_args,
                        bool (*callback_func)(void* arg, const char* entry)) {
  RunsCursor it(this);
  GetOver(this, &it, k, callback_args, callback_func);
}

rocksdb::MemTableRep::Iterator* SortedRunsRep::GetDynamicPrefixIterator(rocksdb::Arena* arena) {
  if (arena == nullptr) {
    if (rocksdb::MemTableRep::Iterator* it = TakeGetIterator(this)) return it;
  }
  return GetIterator(arena);
}

}  // namespace

rocksdb::MemTableRep* AppendSkipListFactory::CreateMemTableRep(
    const rocksdb::MemTableRep::KeyComparator& compare, rocksdb::Allocator* allocator,
    const rocksdb::SliceTransform* /*transform*/, rocksdb::Logger* /*logger*/) {
  return new AppendSkipListRep(compare, allocator);
}

namespace internal {
rocksdb::MemTableRep::Iterator* NewSortedRunsGetIterator(rocksdb::MemTableRep* rep) {
  return new RunsCursor(static_cast<SortedRunsRep*>(rep));
}
}  // namespace internal

rocksdb::MemTableRep* SortedRunsFactory::CreateMemTableRep(
    const rocksdb::MemTableRep::KeyComparator& compare, rocksdb::Allocator* allocator,
    const rocksdb::SliceTransform* /*transform*/, rocksdb::Logger* /*logger*/) {
  return new SortedRunsRep(compare, allocator);
}

}  // namespace bmos::storage
