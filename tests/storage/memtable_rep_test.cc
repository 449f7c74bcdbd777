#include "storage/memtable_rep.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/storage/store_test_util.h"

namespace bmos::storage {
namespace {

using test_util::TempDir;

// Keys as the store writes them: a prefix, then a big-endian number (the id).
std::string Key(const std::string& prefix, uint64_t n) {
  std::string key = prefix;
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(n >> (8 * i)));
  return key;
}

std::string ValueOf(const std::string& key, int version) {
  return key + "#" + std::to_string(version);
}

// The prefix of a key: all but its 8-byte number (the store strips its 16-byte id the same way).
class StripNumber final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "test.StripNumber"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 8);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() >= 8; }
};

// Which memtable a test database's default column family uses.
enum class Rep { kSkipList, kSkipListHinted, kSortedRuns, kRocksDbVector };

std::string RepName(Rep rep) {
  switch (rep) {
    case Rep::kSkipList:
      return "SkipList";
    case Rep::kSkipListHinted:
      return "SkipListHinted";
    case Rep::kSortedRuns:
      return "SortedRuns";
    case Rep::kRocksDbVector:
      return "RocksDbVector";
  }
  return "?";
}

struct Db {
  explicit Db(const std::string& path, Rep rep = Rep::kSkipListHinted,
              const rocksdb::Comparator* comparator = nullptr) {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.allow_concurrent_memtable_write = false;
    switch (rep) {
      case Rep::kSkipList:
      case Rep::kSkipListHinted:
        o.memtable_factory = std::make_shared<AppendSkipListFactory>();
        break;
      case Rep::kSortedRuns:
        o.memtable_factory = std::make_shared<SortedRunsFactory>();
        break;
      case Rep::kRocksDbVector:
        o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
        break;
    }
    if (rep == Rep::kSkipListHinted) {
      o.memtable_insert_with_hint_prefix_extractor = std::make_shared<StripNumber>();
    }
    if (comparator != nullptr) o.comparator = comparator;
    o.write_buffer_size = 64u << 20;  // everything stays in the memtable until Flush
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(o, path, &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db.reset(raw);
  }
  std::unique_ptr<rocksdb::DB> db;
};

using Model = std::map<std::string, std::string>;

// Every read the memtable serves, against the model: point reads (present and absent keys),
// both directions of iteration, Seek and SeekForPrev to keys present and between them.
void ExpectMatches(rocksdb::DB& db, const Model& model, const std::vector<std::string>& probes) {
  std::string value;
  for (const auto& [key, want] : model) {
    ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), key, &value).ok()) << "missing key";
    ASSERT_EQ(value, want);
  }
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  auto m = model.begin();
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++m) {
    ASSERT_NE(m, model.end());
    ASSERT_EQ(it->key().ToString(), m->first);
    ASSERT_EQ(it->value().ToString(), m->second);
  }
  ASSERT_TRUE(it->status().ok());
  ASSERT_EQ(m, model.end());
  auto r = model.rbegin();
  for (it->SeekToLast(); it->Valid(); it->Prev(), ++r) {
    ASSERT_NE(r, model.rend());
    ASSERT_EQ(it->key().ToString(), r->first);
  }
  ASSERT_EQ(r, model.rend());
  for (const std::string& probe : probes) {
    const bool present = model.contains(probe);
    const rocksdb::Status s = db.Get(rocksdb::ReadOptions(), probe, &value);
    ASSERT_EQ(s.ok(), present) << s.ToString();
    auto lower = model.lower_bound(probe);
    it->Seek(probe);
    ASSERT_EQ(it->Valid(), lower != model.end());
    if (it->Valid()) {
      ASSERT_EQ(it->key().ToString(), lower->first);
    }
    auto upper = model.upper_bound(probe);
    it->SeekForPrev(probe);
    ASSERT_EQ(it->Valid(), upper != model.begin());
    if (it->Valid()) {
      ASSERT_EQ(it->key().ToString(), std::prev(upper)->first);
    }
  }
}

// kLiveStreams: the store's `live` family: each key put in order, and deleted a little later,
// the deletes roughly in order too (some overtake others).
enum class Order { kAscending, kDescending, kRandom, kInterleavedPrefixes, kLiveStreams };

// Writes `n` keys in `order` (in batches, with overwrites and deletes of earlier keys mixed in),
// keeping the model; returns probes (keys present, deleted and never written).
std::vector<std::string> Fill(rocksdb::DB& db, Order order, uint64_t n, Model* model) {
  std::mt19937_64 rng(42);
  std::vector<std::string> keys;
  const std::vector<std::string> prefixes = {"done/", "index/a/", "index/b/", "index/c/"};
  for (uint64_t i = 0; i < n; ++i) {
    switch (order) {
      case Order::kAscending:
        keys.push_back(Key("k/", 1000 + i * 2));
        break;
      case Order::kDescending:
        keys.push_back(Key("k/", 1000 + (n - i) * 2));
        break;
      case Order::kRandom:
        keys.push_back(Key("k/", 1000 + (rng() % (n * 4)) * 2));
        break;
      case Order::kInterleavedPrefixes:
        keys.push_back(Key(prefixes[rng() % prefixes.size()], 1000 + i * 2));
        break;
      case Order::kLiveStreams:  // written below, with its deletes
        break;
    }
  }
  std::vector<std::string> probes;
  rocksdb::WriteBatch batch;
  if (order == Order::kLiveStreams) {
    // Key i is put at step i and deleted at about step i + 40 (jittered), until the end; a key in
    // five is never deleted (a task still running).
    std::multimap<uint64_t, std::string> deletes;  // step -> key
    for (uint64_t i = 0; i < n; ++i) {
      const std::string key = Key("live/", 1000 + i * 2);
      EXPECT_TRUE(batch.Put(key, ValueOf(key, 1)).ok());
      (*model)[key] = ValueOf(key, 1);
      if (i % 5 != 0) deletes.emplace(i + 40 + rng() % 8, key);
      for (auto due = deletes.begin(); due != deletes.end() && due->first <= i;) {
        EXPECT_TRUE(batch.Delete(due->second).ok());
        model->erase(due->second);
        if (i % 13 == 0) probes.push_back(due->second);
        due = deletes.erase(due);
      }
      if (batch.Count() >= 16 || i + 1 == n) {
        EXPECT_TRUE(db.Write(rocksdb::WriteOptions(), &batch).ok());
        batch.Clear();
      }
      if (i % 13 == 0) {
        probes.push_back(key);
        std::string between = key;
        between.back() = static_cast<char>(between.back() + 1);
        probes.push_back(between);
      }
    }
    probes.push_back(std::string());
    probes.push_back(std::string("\xff\xff", 2));
    return probes;
  }
  for (uint64_t i = 0; i < keys.size(); ++i) {
    const std::string& key = keys[i];
    const int version = model->contains(key) ? 2 : 1;
    EXPECT_TRUE(batch.Put(key, ValueOf(key, version)).ok());
    (*model)[key] = ValueOf(key, version);
    if (i % 7 == 3) {  // rewrite an earlier key
      const std::string& again = keys[rng() % (i + 1)];
      EXPECT_TRUE(batch.Put(again, ValueOf(again, 3)).ok());
      (*model)[again] = ValueOf(again, 3);
    }
    if (i % 11 == 5) {  // delete an earlier key
      const std::string& gone = keys[rng() % (i + 1)];
      EXPECT_TRUE(batch.Delete(gone).ok());
      model->erase(gone);
      probes.push_back(gone);
    }
    if (batch.Count() >= 16 || i + 1 == keys.size()) {
      EXPECT_TRUE(db.Write(rocksdb::WriteOptions(), &batch).ok());
      batch.Clear();
    }
    if (i % 13 == 0) {
      probes.push_back(key);
      std::string between = key;
      between.back() = static_cast<char>(between.back() + 1);  // odd numbers are never written
      probes.push_back(between);
    }
  }
  probes.push_back(std::string());
  probes.push_back(std::string("\xff\xff", 2));
  return probes;
}

class MemtableRepOrders : public ::testing::TestWithParam<std::tuple<Order, Rep>> {};

TEST_P(MemtableRepOrders, ServesTheSameReadsAsAnOrderedMapInTheMemtableAndAfterAFlush) {
  const auto [order, rep] = GetParam();
  TempDir dir;
  Db db(dir.path(), rep);
  ASSERT_NE(db.db, nullptr);
  Model model;
  const std::vector<std::string> probes = Fill(*db.db, order, 3000, &model);
  ASSERT_FALSE(model.empty());
  ExpectMatches(*db.db, model, probes);                     // from the memtable
  ASSERT_TRUE(db.db->Flush(rocksdb::FlushOptions()).ok());  // the flush iterates it in order
  ExpectMatches(*db.db, model, probes);                     // from the table file
}

const char* OrderName(Order order) {
  static const char* const kOrders[] = {"Ascending", "Descending", "Random", "InterleavedPrefixes",
                                        "LiveStreams"};
  return kOrders[static_cast<int>(order)];
}

using OrderAndRep = ::testing::TestParamInfo<std::tuple<Order, Rep>>;
std::string OrderAndRepName(const OrderAndRep& info) {
  return std::string(OrderName(std::get<0>(info.param))) + "_" + RepName(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    Orders, MemtableRepOrders,
    ::testing::Combine(::testing::Values(Order::kAscending, Order::kDescending, Order::kRandom,
                                         Order::kInterleavedPrefixes, Order::kLiveStreams),
                       ::testing::Values(Rep::kSkipList, Rep::kSkipListHinted, Rep::kSortedRuns)),
    OrderAndRepName);

// The reason for the rep: keys in order (one run per prefix) cost a comparison or two each, not a
// search. Comparisons go through RocksDB's comparator, which the perf context counts.
double ComparisonsPerKey(rocksdb::DB& db, const std::vector<std::string>& prefixes, uint64_t first,
                         uint64_t keys) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  rocksdb::WriteBatch batch;
  for (uint64_t i = first; i < first + keys; ++i) {
    EXPECT_TRUE(batch.Put(Key(prefixes[i % prefixes.size()], i), "v").ok());
    if (batch.Count() == 20) {
      EXPECT_TRUE(db.Write(rocksdb::WriteOptions(), &batch).ok());
      batch.Clear();
    }
  }
  EXPECT_TRUE(db.Write(rocksdb::WriteOptions(), &batch).ok());
  const uint64_t comparisons = rocksdb::get_perf_context()->user_key_comparison_count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  return static_cast<double>(comparisons) / static_cast<double>(keys);
}

TEST(AppendSkipList, KeysInOrderTakeAComparisonOrTwoEach) {
  constexpr uint64_t kKeys = 50'000;
  const std::vector<std::string> interleaved = {"done/", "index/a/", "index/b/"};
  TempDir dir, unhinted_dir;
  Db db(dir.path());
  Db unhinted(unhinted_dir.path(), Rep::kSkipList);
  ASSERT_NE(db.db, nullptr);
  ASSERT_NE(unhinted.db, nullptr);
  // After 50k keys in the memtable: the next 50k, in order, then three runs interleaved.
  ComparisonsPerKey(*db.db, {"seq/"}, 0, kKeys);
  ComparisonsPerKey(*unhinted.db, {"seq/"}, 0, kKeys);
  const double appended = ComparisonsPerKey(*db.db, {"seq/"}, kKeys, kKeys);
  const double hinted = ComparisonsPerKey(*db.db, interleaved, 0, kKeys);
  // Without hints, two keys in three land inside the memtable: a search each.
  const double searched = ComparisonsPerKey(*unhinted.db, interleaved, 0, kKeys);
  EXPECT_LE(appended, 1.5);  // one comparison with the last key
  // The hint: two comparisons for nodes on the lowest level only (three in four), a search for
  // the rest.
  EXPECT_LT(hinted, searched / 2) << "hinted " << hinted << ", searched " << searched;
  std::printf("comparisons per key: appended %.2f, hinted %.2f, searched %.2f\n", appended, hinted,
              searched);
}

// One writer, readers at the same time: every reader sees keys in order, each with its value,
// and never a node it cannot read whole (ThreadSanitizer checks the publication).
class MemtableRepConcurrency : public ::testing::TestWithParam<Rep> {};

TEST_P(MemtableRepConcurrency, ReadersSeeCompleteEntriesInOrderWhileOneThreadWrites) {
  TempDir dir;
  Db db(dir.path(), GetParam());
  ASSERT_NE(db.db, nullptr);
  constexpr uint64_t kKeys = 20'000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> written{0};
  constexpr int kReaders = 2;
  std::latch readers_ready(kReaders + 1);  // the writer starts once both readers run
  std::thread writer([&] {
    readers_ready.arrive_and_wait();
    std::mt19937_64 rng(7);
    rocksdb::WriteBatch batch;
    for (uint64_t i = 0; i < kKeys; ++i) {
      // Mostly in order, some anywhere: both insert paths.
      const uint64_t n = i % 5 == 0 ? rng() % (kKeys * 2) : kKeys * 2 + i;
      const std::string key = Key(i % 3 == 0 ? "a/" : "b/", n);
      EXPECT_TRUE(batch.Put(key, ValueOf(key, 1)).ok());
      if (batch.Count() == 8) {
        EXPECT_TRUE(db.db->Write(rocksdb::WriteOptions(), &batch).ok());
        batch.Clear();
        written.store(i + 1, std::memory_order_release);
      }
    }
    EXPECT_TRUE(db.db->Write(rocksdb::WriteOptions(), &batch).ok());
    done.store(true);
  });
  std::vector<std::thread> readers;
  std::atomic<uint64_t> scans{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937_64 rng(100 + r);
      readers_ready.arrive_and_wait();
      // At least one scan each, however the threads are scheduled.
      for (bool first = true;
           first || (!done.load() && std::chrono::steady_clock::now() < deadline); first = false) {
        // Written before the iterator's snapshot: it sees them (all but repeated random keys).
        const uint64_t before = written.load(std::memory_order_acquire);
        std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator(rocksdb::ReadOptions()));
        std::string previous;
        uint64_t seen = 0;
        for (it->SeekToFirst(); it->Valid(); it->Next(), ++seen) {
          const std::string key = it->key().ToString();
          EXPECT_LT(previous, key);
          EXPECT_EQ(it->value().ToString(), ValueOf(key, 1));
          previous = key;
        }
        EXPECT_GE(seen, before * 3 / 4);
        const std::string probe = Key("b/", kKeys * 2 + rng() % kKeys);
        std::string value;
        if (db.db->Get(rocksdb::ReadOptions(), probe, &value).ok()) {
          EXPECT_EQ(value, ValueOf(probe, 1));
        }
        it->SeekForPrev(probe);
        if (it->Valid()) {
          EXPECT_LE(it->key().ToString(), probe);
        }
        scans.fetch_add(1);
      }
    });
  }
  writer.join();
  for (std::thread& t : readers) t.join();
  EXPECT_GT(scans.load(), 0u);
  std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator(rocksdb::ReadOptions()));
  uint64_t total = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++total;
  EXPECT_GT(total, kKeys * 3 / 4);  // the random keys may repeat
}

INSTANTIATE_TEST_SUITE_P(Reps, MemtableRepConcurrency,
                         ::testing::Values(Rep::kSkipListHinted, Rep::kSortedRuns),
                         [](const ::testing::TestParamInfo<Rep>& info) {
                           return RepName(info.param);
                         });

// -- SortedRuns, by itself ---------------------------------------------------------------------

// Memtable entries as RocksDB lays them out (a varint32 length, then the key), compared bytewise;
// the comparator counts its calls.
class CountingKeyComparator final : public rocksdb::MemTableRep::KeyComparator {
 public:
  int operator()(const char* a, const char* b) const override {
    ++calls;
    return decode_key(a).compare(decode_key(b));
  }
  int operator()(const char* a, const rocksdb::Slice& key) const override {
    ++calls;
    return decode_key(a).compare(key);
  }
  mutable uint64_t calls = 0;
};

class Entries {
 public:
  // A memtable entry for `key` (kept until the Entries go).
  const char* Add(const std::string& key) {
    std::string e;
    uint32_t n = static_cast<uint32_t>(key.size());
    while (n >= 0x80) {
      e.push_back(static_cast<char>(n | 0x80));
      n >>= 7;
    }
    e.push_back(static_cast<char>(n));
    e += key;
    entries_.push_back(std::make_unique<std::string>(std::move(e)));
    return entries_.back()->data();
  }

 private:
  std::vector<std::unique_ptr<std::string>> entries_;
};

std::string KeyOf(const rocksdb::MemTableRep::KeyComparator& c, const char* entry) {
  return c.decode_key(entry).ToString();
}

// Every way to read an iterator, against the sorted keys.
void ExpectIteratorMatches(const rocksdb::MemTableRep::KeyComparator& c,
                           rocksdb::MemTableRep::Iterator& it,
                           const std::vector<std::string>& sorted,
                           const std::vector<std::string>& probes) {
  size_t i = 0;
  for (it.SeekToFirst(); it.Valid(); it.Next(), ++i) {
    ASSERT_LT(i, sorted.size());
    ASSERT_EQ(KeyOf(c, it.key()), sorted[i]);
  }
  ASSERT_EQ(i, sorted.size());
  i = sorted.size();
  for (it.SeekToLast(); it.Valid(); it.Prev()) {
    ASSERT_GT(i, 0u);
    ASSERT_EQ(KeyOf(c, it.key()), sorted[--i]);
  }
  ASSERT_EQ(i, 0u);
  for (const std::string& probe : probes) {
    auto lower = std::lower_bound(sorted.begin(), sorted.end(), probe);
    it.Seek(rocksdb::Slice(probe), nullptr);
    ASSERT_EQ(it.Valid(), lower != sorted.end()) << probe;
    if (it.Valid()) {
      ASSERT_EQ(KeyOf(c, it.key()), *lower);
      it.Next();  // and on from there
      ASSERT_EQ(it.Valid(), lower + 1 != sorted.end());
      if (it.Valid()) {
        ASSERT_EQ(KeyOf(c, it.key()), *(lower + 1));
      }
    }
    auto upper = std::upper_bound(sorted.begin(), sorted.end(), probe);
    it.SeekForPrev(rocksdb::Slice(probe), nullptr);
    ASSERT_EQ(it.Valid(), upper != sorted.begin()) << probe;
    if (it.Valid()) {
      ASSERT_EQ(KeyOf(c, it.key()), *(upper - 1));
    }
    // Prev from a Seek (Get's iterator switches to the whole memtable for it).
    it.Seek(rocksdb::Slice(probe), nullptr);
    if (it.Valid()) {
      it.Prev();
      ASSERT_EQ(it.Valid(), lower != sorted.begin());
      if (it.Valid()) {
        ASSERT_EQ(KeyOf(c, it.key()), *(lower - 1));
      }
    }
  }
}

class SortedRunsOrders : public ::testing::TestWithParam<Order> {};

// Every iterator the rep hands out (over the memtable while written, Get's, and over the
// read-only memtable a flush reads), and Contains, against the sorted keys; keys in any order,
// including more streams than it keeps runs (the overflow).
TEST_P(SortedRunsOrders, IteratorsAndContainsMatchTheSortedKeys) {
  CountingKeyComparator c;
  SortedRunsFactory factory;
  std::unique_ptr<rocksdb::MemTableRep> rep(
      factory.CreateMemTableRep(c, nullptr, nullptr, nullptr));
  Entries entries;
  std::mt19937_64 rng(11);
  std::vector<std::string> keys;
  constexpr uint64_t kKeys = 4000;
  for (uint64_t i = 0; i < kKeys; ++i) {
    uint64_t n = 0;
    switch (GetParam()) {
      case Order::kAscending:
        n = i;
        break;
      case Order::kDescending:
        n = kKeys - i;
        break;
      case Order::kRandom:
        n = rng();
        break;
      case Order::kInterleavedPrefixes:  // sixteen ascending streams: more than eight runs
        n = (i % 16) * kKeys * 4 + i;
        break;
      case Order::kLiveStreams:  // ascending, and a second stream behind it, jittered
        n = i % 2 == 0 ? kKeys * 2 + i : i - rng() % 6;
        break;
    }
    const std::string key = Key("k/", 2 * n);  // even: odd ones are absent
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    keys.push_back(key);
    rep->Insert(const_cast<char*>(entries.Add(key)));
  }
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> probes = {std::string(), std::string("\xff", 1)};
  for (size_t i = 0; i < sorted.size(); i += 97) {
    probes.push_back(sorted[i]);
    std::string between = sorted[i];
    between.back() = static_cast<char>(between.back() + 1);
    probes.push_back(between);
  }
  Entries lookups;
  for (const std::string& probe : probes) {
    const bool present = std::binary_search(sorted.begin(), sorted.end(), probe);
    EXPECT_EQ(rep->Contains(lookups.Add(probe)), present) << probe;
  }
  {
    std::unique_ptr<rocksdb::MemTableRep::Iterator> written(rep->GetIterator(nullptr));
    ExpectIteratorMatches(c, *written, sorted, probes);
  }
  {
    std::unique_ptr<rocksdb::MemTableRep::Iterator> get(
        internal::NewSortedRunsGetIterator(rep.get()));
    ExpectIteratorMatches(c, *get, sorted, probes);
  }
  rep->MarkReadOnly();
  for (int twice = 0; twice < 2; ++twice) {  // the second reads the merge the first made
    std::unique_ptr<rocksdb::MemTableRep::Iterator> flushed(rep->GetIterator(nullptr));
    ExpectIteratorMatches(c, *flushed, sorted, probes);
  }
  EXPECT_GT(rep->ApproximateMemoryUsage(), kKeys / 2 * sizeof(const char*));
}

INSTANTIATE_TEST_SUITE_P(Orders, SortedRunsOrders,
                         ::testing::Values(Order::kAscending, Order::kDescending, Order::kRandom,
                                           Order::kInterleavedPrefixes, Order::kLiveStreams),
                         [](const ::testing::TestParamInfo<Order>& info) {
                           return std::string(OrderName(info.param));
                         });

// The reason for the rep: the `live` pattern (enqueues in order, deletes a little behind) costs
// a comparison or two per insert, and the flush a merge instead of a sort. Comparisons of the
// whole life of a memtable (writes, then a flush), against RocksDB's vector memtable, through a
// comparator that counts them (the same count for the same writes: no timing involved).
class CountingComparator final : public rocksdb::Comparator {
 public:
  const char* Name() const override { return "leveldb.BytewiseComparator"; }
  int Compare(const rocksdb::Slice& a, const rocksdb::Slice& b) const override {
    calls.fetch_add(1, std::memory_order_relaxed);
    return a.compare(b);
  }
  void FindShortestSeparator(std::string*, const rocksdb::Slice&) const override {}
  void FindShortSuccessor(std::string*) const override {}
  mutable std::atomic<uint64_t> calls{0};
};

uint64_t LiveComparisons(Rep rep, uint64_t keys) {
  CountingComparator counting;
  TempDir dir;
  Db db(dir.path(), rep, &counting);
  EXPECT_NE(db.db, nullptr);
  if (db.db == nullptr) return 0;
  Model model;
  Fill(*db.db, Order::kLiveStreams, keys, &model);
  EXPECT_TRUE(db.db->Flush(rocksdb::FlushOptions()).ok());
  const uint64_t calls = counting.calls.load();
  db.db.reset();  // before the comparator goes
  return calls;
}

TEST(SortedRuns, TheLivePatternTakesAFractionOfTheVectorMemtablesComparisons) {
  constexpr uint64_t kKeys = 40'000;
  const uint64_t runs = LiveComparisons(Rep::kSortedRuns, kKeys);
  const uint64_t vector = LiveComparisons(Rep::kRocksDbVector, kKeys);
  std::printf("comparisons per key (writes and flush): sorted runs %.2f, vector %.2f\n",
              static_cast<double>(runs) / kKeys, static_cast<double>(vector) / kKeys);
  EXPECT_GT(runs, 0u);
  EXPECT_LT(runs * 2, vector);
}

}  // namespace
}  // namespace bmos::storage
