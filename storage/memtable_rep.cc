#include "storage/memtable_rep.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
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

  // The memtable key (length-prefixed internal key) to look for.
  const char* Target(const rocksdb::Slice& internal_key, const char* memtable_key) {
    if (memtable_key != nullptr) return memtable_key;
    scratch_.clear();
    uint32_t n = static_cast<uint32_t>(internal_key.size());
    while (n >= 0x80) {
      scratch_.push_back(static_cast<char>(n | 0x80));
      n >>= 7;
    }
    scratch_.push_back(static_cast<char>(n));
    scratch_.append(internal_key.data(), internal_key.size());
    return scratch_.data();
  }

  const AppendSkipListRep* list_;
  IteratorPool* pooled_;
  Node* node_ = nullptr;
  std::string scratch_;
};

static_assert(sizeof(SkipListIterator) <= 128, "IteratorPool's slots hold an iterator");
static_assert(alignof(SkipListIterator) <= alignof(std::max_align_t));

// Get's iterator, handed from Get to the GetDynamicPrefixIterator call RocksDB's Get makes.
thread_local SkipListIterator* t_get_iterator = nullptr;
thread_local const AppendSkipListRep* t_get_rep = nullptr;

void AppendSkipListRep::Get(const rocksdb::LookupKey& k, void* callback_args,
                            bool (*callback_func)(void* arg, const char* entry)) {
  SkipListIterator it(this, nullptr);
  t_get_iterator = &it;
  t_get_rep = this;
  MemTableRep::Get(k, callback_args, callback_func);
  t_get_iterator = nullptr;
  t_get_rep = nullptr;
}

rocksdb::MemTableRep::Iterator* AppendSkipListRep::GetDynamicPrefixIterator(rocksdb::Arena* arena) {
  if (arena == nullptr && t_get_iterator != nullptr && t_get_rep == this) {
    SkipListIterator* it = t_get_iterator;
    t_get_iterator = nullptr;
    return it;
  }
  return GetIterator(arena);
}

rocksdb::MemTableRep::Iterator* AppendSkipListRep::GetIterator(rocksdb::Arena* arena) {
  if (arena == nullptr) return new SkipListIterator(this, nullptr);
  return new (pool_.Take()) SkipListIterator(this, &pool_);
}

}  // namespace

rocksdb::MemTableRep* AppendSkipListFactory::CreateMemTableRep(
    const rocksdb::MemTableRep::KeyComparator& compare, rocksdb::Allocator* allocator,
    const rocksdb::SliceTransform* /*transform*/, rocksdb::Logger* /*logger*/) {
  return new AppendSkipListRep(compare, allocator);
}

}  // namespace bmos::storage
