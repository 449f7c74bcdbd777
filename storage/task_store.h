// TaskStore: where task records live. The engine writes one record per state transition and
// reads records back for get, list, counts, retention and recovery.
//
// Thread-safety: every method may be called from any thread concurrently. Implementations:
// MemoryTaskStore (storage/memory_task_store.h; durability mode `memory`) and, later, the
// RocksDB store (write-ahead log; `sync` and `async`). Tests wrap a store to inject faults.
#ifndef BMOS_STORAGE_TASK_STORE_H_
#define BMOS_STORAGE_TASK_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"
#include "storage/task_record.h"

namespace bmos::storage {

// How much of an acknowledged write survives a failure.
enum class Durability : uint8_t {
  kSync,    // on disk (fsynced) before the write returns; survives a power cut
  kAsync,   // written to the OS before returning, not fsynced; survives a process crash only
  kMemory,  // kept in process memory only; lost with the process
};
std::string_view ToString(Durability durability);  // "sync", "async", "memory"
std::optional<Durability> ParseDurability(std::string_view text);

// A filter and a page of a list, newest first.
struct ListQuery {
  std::optional<TaskState> state{};  // nullopt = any
  std::string queue{};               // empty = any
  std::string name{};                // empty = any
  size_t limit = 50;                 // at most this many records; REQUIRES: 1 <= limit <= 1000
  std::optional<TaskId> before{};    // cursor: only ids strictly older than this
  bool terminal_only = false;        // only COMPLETED, FAILED and CANCELLED records

  // Whether `record` passes every filter (cursor included).
  bool Matches(const TaskRecord& record) const;
};

struct ListPage {
  std::vector<TaskRecord> records{};    // newest first
  std::optional<TaskId> next_cursor{};  // set when more records may follow
};

// Number of tasks per queue and state.
struct StoreCounts {
  std::map<std::string, std::array<uint64_t, kTaskStateCount>, std::less<>> by_queue;
  uint64_t total(TaskState state) const;
};

struct PurgeOptions {
  int64_t completed_before_ms = 0;  // purge terminal records completed before this (Unix ms)
  uint64_t keep_at_most = 0;  // also purge the oldest terminal records beyond this; 0 = no cap
  size_t max_batch = 1000;    // purge at most this many per call, so callers stay responsive
};

// One change to a scheduled job's persisted state (engine/scheduler.h owns the value's format;
// the store keeps it as opaque bytes under the job id).
struct JobWrite {
  std::string id;
  std::string value{};  // the job's new state (ignored when `erase`)
  bool erase = false;   // remove the job instead
};

// Told when an asynchronous write (TaskStore::WriteAsync) is done.
class WriteCallback {
 public:
  // `status` is OK once the records are as durable as the store's durability() promises, or the
  // error that kept them out. After an error the records may still turn up later (a WAL write
  // whose fsync failed is replayed when the store reopens), so a caller retries with the same
  // records rather than assuming they are absent. Runs on a thread of the store (or
  // the caller's, before WriteAsync returns); it must be quick and must not call Flush. A store
  // that answers many writes in a row runs their callbacks inside one CallbackBatch
  // (callback_batch.h), and answers a blocking writer (Write, WriteAndThen, Flush) only after
  // the batch's deferred actions ran: once Flush returns, so has everything a callback started.
  virtual void OnWritten(const Status& status) = 0;

  // True when a caller is blocked until OnWritten runs (an enqueue waiting for its record): the
  // store then commits at once. False lets a store hold the write briefly so that it shares one
  // commit (one fsync) with the next waited-for write. Default: false.
  virtual bool caller_waits() const { return false; }

 protected:
  ~WriteCallback() = default;
};

class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // The durability this store gives to every acknowledged write.
  virtual Durability durability() const = 0;

  // Inserts or replaces each record (by id), all or nothing. On OK the records are as durable as
  // durability() promises. On error none of them was applied.
  // REQUIRES: every record has a spec; a replaced record keeps its spec's contents.
  virtual Status Write(std::span<const TaskRecord> records) = 0;

  // Write without waiting: the records are read (copied) before the call returns, and `done`,
  // when not null, is told the outcome later. Writes are applied in the order they were
  // submitted, so a later write of the same id wins. A null `done` drops the outcome (errors are
  // logged). The default implementation writes synchronously and calls `done` before returning.
  virtual void WriteAsync(std::span<const TaskRecord> records, WriteCallback* done);

  // Write, and on success run `then->OnWritten` before returning: on the store's thread (the
  // RocksDB store's commit thread) or this one. The engine admits enqueued tasks this way, so the
  // commit thread, not every producer, pushes them to the worker queues. `then` may be null.
  // Default: Write, then `then` on this thread.
  virtual Status WriteAndThen(std::span<const TaskRecord> records, WriteCallback* then) {
    const Status s = Write(records);
    if (then != nullptr) then->OnWritten(s);
    return s;
  }

  // Waits until every write submitted before the call is done and its callback has returned.
  virtual Status Flush() { return Status::Ok(); }

  // Whether the store accepts writes now: OK, or the error that stops them (the RocksDB store
  // after a failed write, until it could reopen its database). For health checks; cheap, any
  // thread. Default: OK.
  virtual Status Health() const { return Status::Ok(); }

  // The record of `id`, or NotFound. Meant for finished tasks (the engine keeps live ones in
  // memory): in a writable RocksDB store, a live record that is still in the memtable costs a
  // sort of that memtable to read (see rocksdb_task_store.cc); read many live records with
  // ForEachLive, or from a read-only store.
  virtual Result<TaskRecord> Get(const TaskId& id) const = 0;

  // One page of records matching the query, newest first.
  virtual Result<ListPage> List(const ListQuery& query) const = 0;

  // Counts by queue and state.
  virtual Result<StoreCounts> Counts() const = 0;

  // Counts of the terminal states only (live states read 0): what the engine asks for its stats,
  // since it counts live tasks itself. Cheap in every store. Default: Counts() with live zeroed.
  virtual Result<StoreCounts> TerminalCounts() const;

  // Calls `visit` once for every PENDING, RUNNING and RETRYING record (recovery). No order.
  virtual Status ForEachLive(const std::function<void(const TaskRecord&)>& visit) const = 0;

  // Removes terminal records as `options` say; returns how many were removed.
  virtual Result<size_t> PurgeTerminal(const PurgeOptions& options) = 0;

  // -- Scheduled jobs ---------------------------------------------------------------------------
  // The scheduler's jobs live beside the task records and are written through the same ordered
  // path: a job write submitted after a task write is never applied before it (and in the
  // RocksDB store never survives a crash that the task write did not). Defaults: a store that
  // keeps no jobs (writes fail with NotSupported; ForEachJob visits nothing).

  // Applies `writes` in order, all or nothing, as durable as durability() promises.
  virtual Status WriteJobs(std::span<const JobWrite> writes);
  // WriteJobs without waiting, ordered with WriteAsync: `done` (may be null: errors are logged)
  // is told the outcome as WriteAsync's callbacks are. A null `done` also lets a `sync` store
  // apply the write without an fsync of its own: it becomes durable with the next fsynced write.
  virtual void WriteJobsAsync(std::span<const JobWrite> writes, WriteCallback* done);
  // Calls `visit` for every job (id, value), in id order.
  virtual Status ForEachJob(
      const std::function<void(std::string_view id, std::string_view value)>& visit) const;
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_TASK_STORE_H_
