#include "storage/wal_file_system.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <utility>

namespace bmos::storage {
namespace {

constexpr size_t kZeroBlock = 64u << 10;  // bytes per write of zeros
const std::array<char, kZeroBlock> kZeros{};

class ZeroAheadWalFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  ZeroAheadWalFile(std::unique_ptr<rocksdb::FSWritableFile> file,
                   std::unique_ptr<rocksdb::FSRandomRWFile> zeroer, uint64_t chunk_bytes)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(file)),
        zeroer_(std::move(zeroer)),
        chunk_bytes_(chunk_bytes) {}

  ~ZeroAheadWalFile() override {
    if (zeroer_ != nullptr) zeroer_->Close(rocksdb::IOOptions(), nullptr).PermitUncheckedError();
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    ZeroAhead(data.size(), options, dbg);
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Append(data, options, dbg);
    if (s.ok()) end_ += data.size();
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    ZeroAhead(data.size(), options, dbg);
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
    if (s.ok()) end_ += data.size();
    return s;
  }
  // RocksDB's WAL writer appends; positioned appends (direct I/O) are passed through untouched,
  // and NewWritableFile does not wrap files opened for direct writes.

  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Truncate(size, options, dbg);
    if (s.ok()) {
      end_ = size;
      zeroed_ = std::min(zeroed_, size);
    }
    return s;
  }

  // Cuts the zeros behind the last append, then closes the file. A failed cut leaves a zero tail,
  // which readers take for the end of the log: it is not an error of the log.
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (zeroer_ != nullptr) {
      zeroer_->Close(options, dbg).PermitUncheckedError();
      zeroer_.reset();
    }
    if (zeroed_ > end_) {
      FSWritableFileOwnerWrapper::Truncate(end_, options, dbg).PermitUncheckedError();
      zeroed_ = end_;
    }
    return FSWritableFileOwnerWrapper::Close(options, dbg);
  }

 private:
  // Before an append of `n` bytes: if it would reach past the zeros, writes zeros up to the next
  // chunk boundary beyond it and syncs them (the size change is committed here, once per chunk,
  // not by the commits' fsyncs). On error, stops zeroing for good.
  void ZeroAhead(uint64_t n, const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) {
    if (zeroer_ == nullptr || end_ + n <= zeroed_) return;
    const uint64_t target = (end_ + n + chunk_bytes_) / chunk_bytes_ * chunk_bytes_;
    rocksdb::IOStatus s;
    uint64_t at = std::max(zeroed_, end_);
    while (s.ok() && at < target) {
      const uint64_t len = std::min<uint64_t>(kZeroBlock, target - at);
      s = zeroer_->Write(at, rocksdb::Slice(kZeros.data(), len), options, dbg);
      at += len;
    }
    if (s.ok()) s = zeroer_->Sync(options, dbg);
    if (!s.ok()) {
      zeroer_->Close(options, dbg).PermitUncheckedError();
      zeroer_.reset();
      zeroed_ = std::max(zeroed_, at);  // some of it may be there: Close cuts it off
      return;
    }
    zeroed_ = target;
  }

  std::unique_ptr<rocksdb::FSRandomRWFile> zeroer_;  // null once closed or failed
  const uint64_t chunk_bytes_;
  uint64_t end_ = 0;     // bytes appended
  uint64_t zeroed_ = 0;  // zeros written (and synced) up to here; Close cuts the file to end_
};

}  // namespace

ZeroAheadWalFileSystem::ZeroAheadWalFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                                               uint64_t chunk_bytes)
    : rocksdb::FileSystemWrapper(std::move(base)),
      chunk_bytes_(std::max<uint64_t>(chunk_bytes, 1)) {}

bool ZeroAheadWalFileSystem::IsWalFileName(const std::string& fname) {
  constexpr std::string_view kSuffix = ".log";
  if (fname.size() <= kSuffix.size() ||
      fname.compare(fname.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return false;
  }
  const size_t stem_end = fname.size() - kSuffix.size();
  const size_t slash = fname.rfind('/', stem_end - 1);
  const size_t stem_begin = slash == std::string::npos ? 0 : slash + 1;
  if (stem_begin == stem_end) return false;
  return std::all_of(fname.begin() + static_cast<std::ptrdiff_t>(stem_begin),
                     fname.begin() + static_cast<std::ptrdiff_t>(stem_end),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

rocksdb::IOStatus ZeroAheadWalFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = target()->NewWritableFile(fname, options, result, dbg);
  if (!s.ok() || !IsWalFileName(fname) || options.use_direct_writes || options.use_mmap_writes) {
    return s;
  }
  std::unique_ptr<rocksdb::FSRandomRWFile> zeroer;
  if (!target()->NewRandomRWFile(fname, rocksdb::FileOptions(), &zeroer, dbg).ok()) {
    return s;  // no second handle: the log is written as RocksDB would write it
  }
  *result = std::make_unique<ZeroAheadWalFile>(std::move(*result), std::move(zeroer), chunk_bytes_);
  return s;
}

}  // namespace bmos::storage
