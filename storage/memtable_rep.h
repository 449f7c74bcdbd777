// A RocksDB memtable representation for keys that mostly arrive in order.
//
// The store's `done`, `index`, `meta` and `jobs` column families are written by one thread at a
// time (the commit thread; allow_concurrent_memtable_write is off) and read by many (API reads,
// iterators, the flush thread). Their keys mostly arrive in ascending order: task ids are
// process-wide ordered, so terminal records and index entries (one run of ids per index prefix)
// are appended at the end of the memtable, or of their prefix's run.
//
// RocksDB's own skip list would do such an append with about two comparisons, but Debian's
// librocksdb 7.8 is built with its assertions on, and after every insert the skip list asserts
// the order of its whole search path: ~18 comparisons per insert into a 200k-entry memtable
// (memtable inserts were ~40% of the commit thread's time in `async` runs; bench/RESULTS.md,
// session 12).
// This skip list is ours, compiled with our flags: an insert after the last key links the node
// behind the last node of each of its levels (one comparison); an insert right after the previous
// key of its prefix (RocksDB's insert hint, see memtable_insert_with_hint_prefix_extractor) links
// it there when it sits on the lowest level only (two comparisons, three nodes in four); any
// other insert searches from the top, as a skip list does.
//
// Readers never lock: a node is complete before the release store that links it, level by level
// from the bottom (LevelDB's scheme), and a reader's acquire load of a link sees it whole.
#pragma once

#include <rocksdb/memtablerep.h>

namespace bmos::storage {

class AppendSkipListFactory final : public rocksdb::MemTableRepFactory {
 public:
  static const char* kClassName() { return "bmos.AppendSkipList"; }
  const char* Name() const override { return kClassName(); }

  using rocksdb::MemTableRepFactory::CreateMemTableRep;
  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* transform,
                                          rocksdb::Logger* logger) override;
  // One writer at a time: RocksDB refuses allow_concurrent_memtable_write with this factory.
  bool IsInsertConcurrentlySupported() const override { return false; }
};

// A RocksDB memtable representation for the store's `live` column family: keys in a few
// interleaved ascending streams, written far more than read.
//
// `live` takes a task's record at enqueue (ids in order), its start and outcome records, and the
// delete of the task once it is terminal (ids roughly in order again, a little behind the
// enqueues). Almost nothing reads it while the store runs (the engine serves live tasks from
// memory; the store reads `live` when it opens). RocksDB's vector memtable appends each write
// under a lock and sorts the whole memtable when it is flushed: ~6% of all CPU in `async` runs
// went to that sort (bench/RESULTS.md, session 14).
// This rep keeps up to eight sorted runs. A key is appended to the run whose last key is the
// largest one below it (one comparison for the next enqueue, two for the next delete); a key below
// every run's last starts a new run, and once there are eight, goes to an unsorted overflow. A
// flush merges the runs (and the sorted overflow) once. A point read searches each run and scans
// the overflow; an iterator over a memtable still written to merges a copy.
//
// One writer at a time; readers never lock. Each run is an array whose size the writer publishes
// with a release store after the entry; a full array is copied into one twice as large, which is
// published before the size that needs it, and the old one stays until the rep goes (a reader may
// still be reading it).
class SortedRunsFactory final : public rocksdb::MemTableRepFactory {
 public:
  static const char* kClassName() { return "bmos.SortedRuns"; }
  const char* Name() const override { return kClassName(); }

  using rocksdb::MemTableRepFactory::CreateMemTableRep;
  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* transform,
                                          rocksdb::Logger* logger) override;
  bool IsInsertConcurrentlySupported() const override { return false; }
};

namespace internal {
// The iterator a SortedRunsFactory rep hands RocksDB's Get (which asks only Seek, Valid, key and
// Next of it), for tests of the rest. `rep` must come from a SortedRunsFactory.
rocksdb::MemTableRep::Iterator* NewSortedRunsGetIterator(rocksdb::MemTableRep* rep);
}  // namespace internal

}  // namespace bmos::storage
