// A RocksDB file system whose write-ahead log files are written ahead with zeros, so that the
// fsync of a commit overwrites blocks the file already has.
//
// An fdatasync after an append that grows a file must also commit the file's new size (on ext4,
// a journal commit: a second write and cache flush); after an overwrite of blocks that are
// already written, it writes the data alone. On the 2-vCPU VMs we measure on, a 20 KB commit's
// write + fdatasync takes ~250-360 µs when it grows the file and ~150-170 µs when it overwrites
// zeros written ahead (bench/RESULTS.md, session 13). RocksDB's own answers to this do not fit:
// its preallocation (fallocate with FALLOC_FL_KEEP_SIZE) leaves the size to grow, and its WAL
// recycling is switched off by RocksDB 7.8 under the recovery mode the store uses
// (kPointInTimeRecovery).
//
// So each WAL file gets a second handle that writes zeros (`chunk_bytes` at a time, then one
// fdatasync) ahead of where RocksDB appends; the appends themselves go through the file RocksDB
// would have used (the target's), and land on the zeros. Closing the file cuts the zeros off.
// A process or machine that dies leaves a zero tail behind the last record; RocksDB's log reader
// skips zero-filled space as the end of the log (it is what its mmap writer leaves) without
// reporting corruption. tests/storage/wal_file_system_test.cc checks both, and the crash test
// kills a writer 20 times over this file system.
//
// Zeros are written on the appending thread (the store's commit thread) when an append would
// reach past them: one chunk per `chunk_bytes` of log. If zeroing fails (disk full), the file
// stops zeroing and RocksDB's appends grow it as before; their own errors reach RocksDB as ever.
//
// Thread-safety: a file's Append, Truncate and Close come from one thread at a time (RocksDB's
// WAL writer); Sync, which RocksDB may call from another thread, touches none of the file's own
// state. The file system itself holds no state but the chunk size.
#pragma once

#include <rocksdb/file_system.h>

#include <cstdint>
#include <memory>
#include <string>

namespace bmos::storage {

class ZeroAheadWalFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  static constexpr uint64_t kDefaultChunkBytes = 1u << 20;  // ~1.3 ms to write and sync

  // Wraps `base` (must not be null); WAL files are zeroed `chunk_bytes` (> 0) at a time.
  explicit ZeroAheadWalFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                                  uint64_t chunk_bytes = kDefaultChunkBytes);

  static const char* kClassName() { return "bmos.ZeroAheadWalFileSystem"; }
  const char* Name() const override { return kClassName(); }

  // True for RocksDB's WAL file names: digits followed by ".log" (e.g. "/db/000012.log").
  static bool IsWalFileName(const std::string& fname);

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;

 private:
  const uint64_t chunk_bytes_;
};

}  // namespace bmos::storage
