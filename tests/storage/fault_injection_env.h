// FaultInjectionFs: a RocksDB file system for tests whose writable files fail on demand, and
// FaultInjectionEnv, the Env over it that RocksDbStoreOptions::env takes.
//
// Three faults, each switched on and off at run time:
//   write error  Append and PositionedAppend return IOError ("injected write error"); nothing of
//                the failed call reaches the file.
//   sync error   Sync, Fsync and RangeSync return IOError ("injected sync error"); the bytes
//                appended before stay in the file (as after a real failed fsync, they may or
//                may not be on disk: here they are in the OS page cache).
//   disk full    Append and PositionedAppend return IOStatus::NoSpace ("injected disk full");
//                nothing of the failed call reaches the file.
// A fault hits the write-ahead log files (*.log) only, or every writable file RocksDB opens
// (WAL, SST, MANIFEST, OPTIONS, info LOG), as set_scope says. The file's kind is decided when it
// is opened; a file opened while a fault is on is wrapped like any other, so faults switched on
// later reach it. Counters say how many calls each fault failed. Close, Flush, Truncate and every
// read pass through untouched, so a store can always be closed and reopened.
//
// Thread-safety: the switches and counters are atomics; tests flip them from their own thread
// while RocksDB's threads write. A switch is read once per file call, so a call that is already
// running when a fault is switched on may still succeed.
#ifndef BMOS_TESTS_STORAGE_FAULT_INJECTION_ENV_H_
#define BMOS_TESTS_STORAGE_FAULT_INJECTION_ENV_H_

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/io_status.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace bmos::storage::test_util {

class FaultInjectionFs final : public rocksdb::FileSystemWrapper {
 public:
  // Which writable files a fault hits.
  enum class Scope : uint8_t {
    kWalOnly,   // write-ahead log files (names ending in ".log")
    kAllFiles,  // every writable file
  };

  // Wraps `base` (must not be null). Default: the process's default (POSIX) file system.
  explicit FaultInjectionFs(
      std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default())
      : rocksdb::FileSystemWrapper(base) {}

  const char* Name() const override { return "BmosFaultInjectionFs"; }

  // Switches. Release stores: pair with the acquire loads in the file calls, so a call that sees
  // a fault on also sees whatever the test did before switching it on (e.g. set_scope).
  void set_write_errors(bool on) { write_errors_.store(on, std::memory_order_release); }
  void set_sync_errors(bool on) { sync_errors_.store(on, std::memory_order_release); }
  void set_disk_full(bool on) { disk_full_.store(on, std::memory_order_release); }
  void set_scope(Scope scope) { scope_.store(scope, std::memory_order_release); }
  // Switches every fault off (the scope stays).
  void ClearFaults() {
    set_write_errors(false);
    set_sync_errors(false);
    set_disk_full(false);
  }

  // While on, each Sync of a file in scope waits (without failing) until it is switched off:
  // writes then queue behind a commit that is still syncing. Off by default.
  void set_hold_syncs(bool on) {
    {
      std::lock_guard<std::mutex> lock(hold_mu_);
      hold_syncs_ = on;
    }
    hold_cv_.notify_all();
  }
  // Waits up to `timeout` until some Sync is held; false on timeout.
  bool WaitForHeldSync(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(hold_mu_);
    return hold_cv_.wait_for(lock, timeout, [&] { return held_syncs_ > 0; });
  }

  // Calls failed so far by each fault. Relaxed: plain event counts, no data hangs on them.
  uint64_t injected_write_errors() const {
    return injected_write_errors_.load(std::memory_order_relaxed);
  }
  uint64_t injected_sync_errors() const {
    return injected_sync_errors_.load(std::memory_order_relaxed);
  }
  uint64_t injected_disk_full() const {
    return injected_disk_full_.load(std::memory_order_relaxed);
  }
  uint64_t injected_total() const {
    return injected_write_errors() + injected_sync_errors() + injected_disk_full();
  }

  // -- rocksdb::FileSystem: every way of opening a writable file returns a wrapped one. ----------

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(fname, target()->NewWritableFile(fname, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(fname, target()->ReopenWritableFile(fname, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(fname, target()->ReuseWritableFile(fname, old_fname, options, result, dbg), result);
  }

 private:
  class File final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(FaultInjectionFs* fs, bool is_wal, std::unique_ptr<rocksdb::FSWritableFile> target)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), is_wal_(is_wal) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->AppendFault(is_wal_); !s.ok()) return s;
      return FSWritableFileOwnerWrapper::Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->AppendFault(is_wal_); !s.ok()) return s;
      return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->AppendFault(is_wal_); !s.ok()) return s;
      return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& options,
                                       const rocksdb::DataVerificationInfo& info,
                                       rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->AppendFault(is_wal_); !s.ok()) return s;
      return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->SyncFault(is_wal_); !s.ok()) return s;
      return FSWritableFileOwnerWrapper::Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->SyncFault(is_wal_); !s.ok()) return s;
      return FSWritableFileOwnerWrapper::Fsync(options, dbg);
    }
    rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->SyncFault(is_wal_); !s.ok()) return s;
      return FSWritableFileOwnerWrapper::RangeSync(offset, nbytes, options, dbg);
    }

   private:
    FaultInjectionFs* const fs_;  // must outlive the file: RocksDB closes its files first
    const bool is_wal_;
  };

  static bool IsWal(const std::string& fname) {
    return fname.size() >= 4 && fname.compare(fname.size() - 4, 4, ".log") == 0;
  }

  rocksdb::IOStatus Wrap(const std::string& fname, rocksdb::IOStatus opened,
                         std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (opened.ok()) {
      *result = std::make_unique<File>(this, IsWal(fname), std::move(*result));
    }
    return opened;
  }

  bool Hits(bool is_wal) const {
    return is_wal || scope_.load(std::memory_order_acquire) == Scope::kAllFiles;
  }

  // The error an Append of a file of this kind gets now, or OK. Disk full wins over a write
  // error when both are on.
  rocksdb::IOStatus AppendFault(bool is_wal) {
    if (!Hits(is_wal)) return rocksdb::IOStatus::OK();
    if (disk_full_.load(std::memory_order_acquire)) {
      injected_disk_full_.fetch_add(1, std::memory_order_relaxed);
      return rocksdb::IOStatus::NoSpace("injected disk full");
    }
    if (write_errors_.load(std::memory_order_acquire)) {
      injected_write_errors_.fetch_add(1, std::memory_order_relaxed);
      return rocksdb::IOStatus::IOError("injected write error");
    }
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus SyncFault(bool is_wal) {
    if (Hits(is_wal)) {
      std::unique_lock<std::mutex> lock(hold_mu_);
      if (hold_syncs_) {
        ++held_syncs_;
        hold_cv_.notify_all();
        hold_cv_.wait(lock, [&] { return !hold_syncs_; });
        --held_syncs_;
      }
    }
    if (!Hits(is_wal) || !sync_errors_.load(std::memory_order_acquire)) {
      return rocksdb::IOStatus::OK();
    }
    injected_sync_errors_.fetch_add(1, std::memory_order_relaxed);
    return rocksdb::IOStatus::IOError("injected sync error");
  }

  std::mutex hold_mu_;
  std::condition_variable hold_cv_;
  bool hold_syncs_ = false;  // GUARDED_BY(hold_mu_)
  int held_syncs_ = 0;       // GUARDED_BY(hold_mu_): Sync calls waiting now
  std::atomic<bool> write_errors_{false};
  std::atomic<bool> sync_errors_{false};
  std::atomic<bool> disk_full_{false};
  std::atomic<Scope> scope_{Scope::kWalOnly};
  std::atomic<uint64_t> injected_write_errors_{0};
  std::atomic<uint64_t> injected_sync_errors_{0};
  std::atomic<uint64_t> injected_disk_full_{0};
};

// A FaultInjectionFs and the Env over it. Pass env() as RocksDbStoreOptions::env; this object
// must outlive every store opened on it.
class FaultInjectionEnv {
 public:
  FaultInjectionEnv()
      : fs_(std::make_shared<FaultInjectionFs>()), env_(rocksdb::NewCompositeEnv(fs_)) {}

  FaultInjectionEnv(const FaultInjectionEnv&) = delete;
  FaultInjectionEnv& operator=(const FaultInjectionEnv&) = delete;

  rocksdb::Env* env() const { return env_.get(); }
  FaultInjectionFs& fs() const { return *fs_; }

 private:
  std::shared_ptr<FaultInjectionFs> fs_;
  std::unique_ptr<rocksdb::Env> env_;  // holds a reference to fs_ too
};

}  // namespace bmos::storage::test_util

#endif  // BMOS_TESTS_STORAGE_FAULT_INJECTION_ENV_H_
