// MemoryTaskStore: the TaskStore of durability mode `memory`, and the store of unit tests.
//
// Records are split into shards, each behind its own mutex, so concurrent writers rarely meet.
// A shard keeps its records in chunks that never move, a small hash index from id to record,
// and its terminal records' ids in completion order for retention. List scans the shards (fine
// for the sizes retention allows in memory; the RocksDB store uses indexes).
// Thread-safe: every method may be called from any thread.
#ifndef BMOS_STORAGE_MEMORY_TASK_STORE_H_
#define BMOS_STORAGE_MEMORY_TASK_STORE_H_

#include <memory>

#include "storage/task_store.h"

namespace bmos::storage {

// A new, empty in-memory store. Never fails.
std::unique_ptr<TaskStore> NewMemoryTaskStore();

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_MEMORY_TASK_STORE_H_
