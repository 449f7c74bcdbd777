// RocksDbTaskStore: the durable TaskStore (durability `sync` and `async`), a write-ahead log of
// task states in RocksDB.
//
// Layout (column families):
//   live     id -> record of every PENDING, RUNNING and RETRYING task (what recovery reads)
//   done     id -> record of every COMPLETED, FAILED and CANCELLED task
//   index    secondary indexes of terminal records by state, queue and task name (see
//            record_codec.h); creation time is the id order of `done` itself
//   default  the store's format marker and the persisted terminal counts per queue and state
// A write moves a record between `live` and `done` and updates the indexes and counts in one
// WriteBatch, so they never disagree. Live records are found by id in `live`; the engine keeps
// live tasks in memory and lists them from there, so only terminal records are indexed.
//
// Group commit: every write is handed to one commit thread, which takes everything submitted
// since its last commit, merges it into one WriteBatch and writes it with one WAL write (and in
// `sync` mode one fsync). Synchronous writers wait for their commit; asynchronous ones are told
// by callback. The commit thread is the only RocksDB writer, so writes apply in submission order.
//
// What an acknowledged write survives:
//   sync   process crash and power cut: the WAL is fsynced before the write is acknowledged.
//   async  process crash (the WAL is in the OS page cache); a power cut or kernel crash can lose
//          the writes of the last moments (those not yet flushed by the OS).
// A write that reported an error may or may not be there later (after a restart, or after the
// store reopened itself following the error: see "Write errors" in the README); an acknowledged
// one always is.
//
// Thread-safety: every method may be called from any thread.
#ifndef BMOS_STORAGE_ROCKSDB_TASK_STORE_H_
#define BMOS_STORAGE_ROCKSDB_TASK_STORE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "storage/task_store.h"

namespace rocksdb {
class Env;
}

namespace bmos::storage {

struct RocksDbStoreOptions {
  // The data directory. Created when missing (with its parent directories), unless read_only.
  // Required.
  std::string path;
  // kSync or kAsync. Default: kSync.
  Durability durability = Durability::kSync;
  // Open without writing (tools): a RocksDB secondary instance, so it may read a directory that
  // a running writer holds; it sees the store as it was when opened. No commit thread; every
  // write fails with FailedPrecondition; a missing directory is NotFound (never created).
  // Default: false.
  bool read_only = false;
  // Memory for RocksDB's write buffers (memtables) of all column families together, in bytes.
  // Default: 64 MiB.
  size_t write_buffer_bytes = 64u << 20;
  // Block cache for reads, in bytes. Default: 32 MiB.
  size_t block_cache_bytes = 32u << 20;
  // Most bytes of records merged into one commit. Default: 4 MiB.
  size_t max_commit_bytes = 4u << 20;
  // The RocksDB environment (tests inject faults through it). Must outlive the store. Default:
  // null (RocksDB's default environment).
  rocksdb::Env* env = nullptr;
  // kSync only: write the write-ahead log's files ahead with zeros, so that each commit's fsync
  // overwrites blocks the file already has instead of growing it (storage/wal_file_system.h).
  // Default: true.
  bool zero_ahead_wal = true;
};

// Figures of the commit thread since open (tests and benchmarks).
struct CommitStats {
  uint64_t commits = 0;  // WriteBatches written (each one WAL write, and one fsync in sync mode)
  uint64_t writes = 0;   // Write / WriteAsync calls committed
  uint64_t records = 0;  // records committed
  // Commits made on the writer's own thread because the store was idle (`async` only).
  uint64_t inline_commits = 0;
  // Start records left out because the task's outcome was in the same commit.
  uint64_t dropped_starts = 0;
};

class RocksDbTaskStore : public TaskStore {
 public:
  // Opens (or creates) the store at options.path. Errors, each naming the directory:
  //   FailedPrecondition  another process (or this one) has the directory open; the directory
  //                       holds something that is not a BMOS task store
  //   Corruption          the store's files are damaged
  //   NotSupported        the store was written in a newer format
  //   IOError             the directory cannot be read or created
  static Result<std::shared_ptr<RocksDbTaskStore>> Open(const RocksDbStoreOptions& options);

  virtual CommitStats commit_stats() const = 0;
  // The directory this store was opened on.
  virtual const std::string& path() const = 0;
  // Approximate bytes on disk (SST files plus WAL).
  virtual uint64_t ApproximateDiskBytes() const = 0;
  // Compacts all column families (after large purges; tools).
  virtual Status CompactAll() = 0;
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_ROCKSDB_TASK_STORE_H_
