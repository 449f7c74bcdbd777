#include "storage/wal_file_system.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/storage/store_test_util.h"

namespace bmos::storage {
namespace {

namespace fs = std::filesystem;
using test_util::TempDir;

constexpr uint64_t kChunk = 64u << 10;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Bytes that are not zero in [from, end of file).
size_t NonZeroFrom(const std::string& contents, size_t from) {
  size_t n = 0;
  for (size_t i = from; i < contents.size(); ++i) n += contents[i] != '\0';
  return n;
}

std::string Piece(size_t i, size_t size) {
  std::string s(size, static_cast<char>('a' + i % 26));
  s[0] = static_cast<char>(1 + i % 200);  // never a zero byte
  return s;
}

TEST(ZeroAheadWalFileSystemTest, RecognisesWalFileNames) {
  EXPECT_TRUE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/000012.log"));
  EXPECT_TRUE(ZeroAheadWalFileSystem::IsWalFileName("000012.log"));
  EXPECT_TRUE(ZeroAheadWalFileSystem::IsWalFileName("dir.log/7.log"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/LOG"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/LOG.old.1700000000"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/app.log"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/.log"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName(".log"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/000012.log.trash"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/000012.sst"));
  EXPECT_FALSE(ZeroAheadWalFileSystem::IsWalFileName("/data/store/MANIFEST-000005"));
}

// A WAL file is zeros from its last append to a chunk boundary beyond it while it is open, and
// exactly what was appended once closed. Other files are written as the target writes them.
TEST(ZeroAheadWalFileSystemTest, ZeroesAheadOfAppendsAndCutsTheZerosOnClose) {
  TempDir dir("walfs");
  ASSERT_FALSE(dir.path().empty());
  auto wal_fs = std::make_shared<ZeroAheadWalFileSystem>(rocksdb::FileSystem::Default(), kChunk);
  for (const std::string name : {"000007.log", "MANIFEST-000001"}) {
    SCOPED_TRACE(name);
    const bool is_wal = name == "000007.log";
    const std::string path = dir.Sub(name);
    std::unique_ptr<rocksdb::FSWritableFile> file;
    ASSERT_TRUE(wal_fs->NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr).ok());
    std::string expected;
    for (size_t i = 0; i < 40; ++i) {  // 40 × 7,000 bytes: four and a bit chunks
      const std::string piece = Piece(i, 7000);
      ASSERT_TRUE(file->Append(piece, rocksdb::IOOptions(), nullptr).ok());
      expected += piece;
      ASSERT_EQ(file->GetFileSize(rocksdb::IOOptions(), nullptr), expected.size());
      const uint64_t on_disk = fs::file_size(path);
      if (is_wal) {
        EXPECT_EQ(on_disk % kChunk, 0u) << "after " << expected.size() << " bytes";
        EXPECT_GT(on_disk, expected.size());
        EXPECT_LE(on_disk, expected.size() + kChunk);
      } else {
        EXPECT_EQ(on_disk, expected.size());
      }
    }
    ASSERT_TRUE(file->Sync(rocksdb::IOOptions(), nullptr).ok());
    if (is_wal) {
      const std::string open_contents = ReadFile(path);
      EXPECT_TRUE(open_contents.compare(0, expected.size(), expected) == 0);
      EXPECT_EQ(NonZeroFrom(open_contents, expected.size()), 0u);
    }
    ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
    EXPECT_EQ(fs::file_size(path), expected.size());
    EXPECT_TRUE(ReadFile(path) == expected);
  }
}

// A file system whose random-access writes fail as on a full disk once `room` of them have
// succeeded: the zeros cannot be written, or only some of them.
class NoRoomForZerosFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit NoRoomForZerosFs(int room)
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()), room_(room) {}
  const char* Name() const override { return "NoRoomForZerosFs"; }
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewRandomRWFile(fname, options, result, dbg);
    if (s.ok()) *result = std::make_unique<File>(std::move(*result), &room_);
    return s;
  }

 private:
  class File final : public rocksdb::FSRandomRWFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSRandomRWFile> f, int* room)
        : rocksdb::FSRandomRWFileOwnerWrapper(std::move(f)), room_(room) {}
    rocksdb::IOStatus Write(uint64_t offset, const rocksdb::Slice& data,
                            const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (*room_ <= 0) return rocksdb::IOStatus::NoSpace("no room for zeros");
      --*room_;
      return FSRandomRWFileOwnerWrapper::Write(offset, data, options, dbg);
    }

   private:
    int* const room_;
  };
  int room_;
};

// Zeros that cannot be written leave the log as RocksDB would write it: appends go on and grow
// the file. Zeros written only in part (the disk filled up in the middle of a chunk) are cut off
// on close like any others.
TEST(ZeroAheadWalFileSystemTest, AppendsGoOnWhenTheZerosCannotBeWritten) {
  // A chunk is four writes of zeros: with room for five, the second chunk stops after its first.
  constexpr uint64_t kFourBlocks = 256u << 10;
  for (const int room : {0, 5}) {
    SCOPED_TRACE("room for " + std::to_string(room) + " writes of zeros");
    TempDir dir("walfs");
    ASSERT_FALSE(dir.path().empty());
    auto wal_fs = std::make_shared<ZeroAheadWalFileSystem>(std::make_shared<NoRoomForZerosFs>(room),
                                                           kFourBlocks);
    const std::string path = dir.Sub("000009.log");
    std::unique_ptr<rocksdb::FSWritableFile> file;
    ASSERT_TRUE(wal_fs->NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr).ok());
    std::string expected;
    for (size_t i = 0; i < 30; ++i) {  // 30 × 9,000 bytes: into the second chunk, not past it
      const std::string piece = Piece(i, 9000);
      ASSERT_TRUE(file->Append(piece, rocksdb::IOOptions(), nullptr).ok());
      ASSERT_TRUE(file->Sync(rocksdb::IOOptions(), nullptr).ok());
      expected += piece;
      if (room == 0) {
        EXPECT_EQ(fs::file_size(path), expected.size());
      } else if (expected.size() > kFourBlocks) {  // the partial chunk: 64 KiB of zeros at most
        EXPECT_GE(fs::file_size(path), expected.size());
        EXPECT_LE(fs::file_size(path), std::max<uint64_t>(expected.size(), kFourBlocks + 65536));
      }
    }
    ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
    EXPECT_EQ(fs::file_size(path), expected.size());
    EXPECT_TRUE(ReadFile(path) == expected);
  }
}

// The state a killed process leaves: the live WAL ends in zeros. RocksDB (point-in-time
// recovery, as the store opens it) recovers every synced write from it and reports no
// corruption, and the reopened database writes and recovers on as usual.
TEST(ZeroAheadWalFileSystemTest, RocksDbRecoversEverySyncedWriteFromALogWithAZeroTail) {
  TempDir dir("walfs");
  ASSERT_FALSE(dir.path().empty());
  auto wal_fs = std::make_shared<ZeroAheadWalFileSystem>(rocksdb::FileSystem::Default(), kChunk);
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(wal_fs);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.env = env.get();
  rocksdb::WriteOptions synced;
  synced.sync = true;
  auto key = [](int i) { return "key" + std::to_string(100000 + i); };
  auto value = [](int i) { return std::string(300 + i % 700, static_cast<char>('A' + i % 26)); };

  const std::string db_path = dir.Sub("db");
  const std::string image = dir.Sub("image");  // the files as a kill would leave them
  constexpr int kWrites = 600;                 // ~400 KiB of log: several chunks
  {
    std::unique_ptr<rocksdb::DB> db;
    {
      rocksdb::DB* raw = nullptr;
      ASSERT_TRUE(rocksdb::DB::Open(options, db_path, &raw).ok());
      db.reset(raw);
    }
    for (int i = 0; i < kWrites; ++i) ASSERT_TRUE(db->Put(synced, key(i), value(i)).ok());
    // Copy the files while the database is open: what a SIGKILL leaves (every write above was
    // synced, so nothing of it is only in RocksDB's buffers).
    fs::copy(db_path, image, fs::copy_options::recursive);
  }
  EXPECT_EQ(test_util::ZeroTailedAndPlainLogs(image, kChunk), std::make_pair(1, 0));

  // Reopen the image twice: through the zeroing file system first, with more writes left in a
  // new log as a kill leaves it; then with plain RocksDB, which reads that log.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    rocksdb::Options reopen = options;
    reopen.create_if_missing = false;
    if (round == 1) reopen.env = rocksdb::Env::Default();
    std::unique_ptr<rocksdb::DB> db;
    {
      rocksdb::DB* raw = nullptr;
      const rocksdb::Status s = rocksdb::DB::Open(reopen, image, &raw);
      ASSERT_TRUE(s.ok()) << s.ToString();
      db.reset(raw);
    }
    const int total = kWrites * (round + 1);
    for (int i = 0; i < total; ++i) {
      std::string got;
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), key(i), &got).ok()) << key(i);
      ASSERT_EQ(got, value(i)) << key(i);
    }
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    int seen = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++seen;
    ASSERT_TRUE(it->status().ok());
    EXPECT_EQ(seen, total);
    it.reset();
    if (round == 0) {
      for (int i = kWrites; i < 2 * kWrites; ++i) {
        ASSERT_TRUE(db->Put(synced, key(i), value(i)).ok());
      }
      // Leave the log as a kill would: the database is not closed before the copy.
      fs::remove_all(dir.Sub("image2"));
      fs::copy(image, dir.Sub("image2"), fs::copy_options::recursive);
      EXPECT_EQ(test_util::ZeroTailedAndPlainLogs(dir.Sub("image2"), kChunk), std::make_pair(1, 0));
    }
    db.reset();
    if (round == 0) {
      fs::remove_all(image);
      fs::rename(dir.Sub("image2"), image);
    }
  }
}

}  // namespace
}  // namespace bmos::storage
