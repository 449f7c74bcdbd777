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

}  // namespace bmos::storage
