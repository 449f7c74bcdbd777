#include "storage/rocksdb_task_store.h"

#include <pthread.h>
#include <rocksdb/cache.h>
#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/container/small_vector.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <utility>
#include <vector>

#include "storage/callback_batch.h"
#include "storage/futex.h"
#include "storage/memtable_rep.h"
#include "storage/object_pool.h"
#include "storage/record_codec.h"
#include "storage/wal_file_system.h"

namespace bmos::storage {
namespace {

namespace fs = std::filesystem;
using StateCounts = std::array<uint64_t, kTaskStateCount>;

constexpr std::string_view kFormatKey = "format";
// Format 2: one index key per terminal record (record_codec.h). Format 1 (three index keys per
// record) is rewritten to 2 by a read-write open (MigrateIndexFromFormat1).
constexpr std::string_view kFormatValue = "bmos-task-store 2";
constexpr std::string_view kFormat1Value = "bmos-task-store 1";
constexpr size_t kBatchHeader = 12;  // WriteBatch rep: fixed64 sequence, fixed32 count
constexpr size_t kMaxListLimit = 1000;

enum Cf : size_t { kMeta = 0, kLive = 1, kDone = 2, kIndex = 3, kJobs = 4, kCfCount = 5 };
constexpr std::array<const char*, kCfCount> kCfNames = {"default", "live", "done", "index", "jobs"};
// Column families every store has; `jobs` came later and is added to older stores when they are
// opened for writing (a read-only open of such a store sees no jobs).
constexpr size_t kRequiredCfs = 4;

// The index prefix of a key is all but its trailing 16-byte id. Memtable inserts use it to keep
// one insert hint per prefix: ids arrive roughly in order, so most inserts land next to the last
// one of their prefix instead of searching the whole skip list.
class StripIdTransform final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "bmos.StripId"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - codec::kIdKeySize);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() >= codec::kIdKeySize;
  }
};

// The file system a reader's open (a RocksDB secondary) runs on: it notes the write-ahead logs
// in the store's directory just before the open reads the MANIFEST, and the logs the open finds
// when it lists the directory after that read (to replay them). A log of the first list missing
// from the second was deleted in between: the version read may have needed it (see
// OpenInstance). Used by the opening thread only.
class LogListingsFs final : public rocksdb::FileSystemWrapper {
 public:
  LogListingsFs(const std::shared_ptr<rocksdb::FileSystem>& target, std::string dir)
      : rocksdb::FileSystemWrapper(target), dir_(Trimmed(std::move(dir))) {}
  const char* Name() const override { return "bmos.LogListings"; }

  rocksdb::IOStatus NewSequentialFile(const std::string& fname, const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    if (!before_read_ && fname.find("MANIFEST-") != std::string::npos) {
      std::vector<std::string> names;
      if (target()->GetChildren(dir_, rocksdb::IOOptions(), &names, nullptr).ok()) {
        before_ = Logs(std::move(names));
        before_read_ = true;
      }
    }
    return target()->NewSequentialFile(fname, options, result, dbg);
  }
  rocksdb::IOStatus GetChildren(const std::string& dir, const rocksdb::IOOptions& options,
                                std::vector<std::string>* result,
                                rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->GetChildren(dir, options, result, dbg);
    if (s.ok() && before_read_ && !found_read_ && Trimmed(dir) == dir_) {
      found_ = Logs(*result);
      found_read_ = true;
    }
    return s;
  }

  // Whether both lists were taken.
  bool Noted() const { return before_read_ && found_read_; }
  // Whether every log of the first list was in the second.
  bool NoLogDeleted() const {
    return std::includes(found_.begin(), found_.end(), before_.begin(), before_.end());
  }

 private:
  static std::string Trimmed(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path;
  }
  static std::vector<std::string> Logs(std::vector<std::string> names) {
    std::erase_if(names, [](const std::string& n) { return !n.ends_with(".log"); });
    std::sort(names.begin(), names.end());
    return names;
  }

  const std::string dir_;
  std::vector<std::string> before_, found_;
  bool before_read_ = false;
  bool found_read_ = false;
};

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(message));
  if (s.IsCorruption()) return Status::Corruption(std::move(message));
  if (s.IsNotSupported()) return Status::NotSupported(std::move(message));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(message));
  if (s.IsNoSpace()) return Status::Unavailable("disk full: " + message);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut())
    return Status::Unavailable(std::move(message));
  if (s.IsIOError()) return Status::IOError(std::move(message));
  return Status::Internal(std::move(message));
}

// A thread's encoding buffer is kept for the next record up to this size; larger ones are freed.
constexpr size_t kKeepEncodeBuffer = 64 * 1024;
// A pooled request keeps its body's buffer up to this size: enough for the records of ordinary
// tasks, while the pool's thousands of idle requests never pin more than a few MiB.
constexpr size_t kKeepRequestBody = 4 * 1024;

// One Write/WriteAsync call on its way to the commit thread.
struct Request {
  struct CountDelta {
    std::string queue;
    TaskState state;
    int64_t delta;
    TaskId id;  // the record counted in (+1) or out (-1)
  };
  std::string body;  // WriteBatch entries, without the batch header
  uint32_t entries = 0;
  uint32_t records = 0;
  boost::container::small_vector<CountDelta, 1> deltas;
  // Asynchronous: `done` is told, or (`detached`) nobody is and errors are logged; the commit
  // thread deletes the request. Synchronous (`waited`): the writer waits on `finished` for
  // `status`; `done`, if set, is told first, on the commit thread.
  WriteCallback* done = nullptr;
  bool detached = false;
  bool waited = false;
  // Detached writes (the engine's attempt-start records) are logged without forcing an fsync:
  // they ride on the next fsync of a write that needs one.
  bool needs_sync = true;
  // An attempt's start record (one RUNNING record, detached): dropped when the task's outcome
  // is in the same commit (see DropSupersededStarts).
  bool is_start = false;
  TaskId start_of{};
  std::atomic<uint32_t> finished{0};  // kPending, kSleeping (its writer sleeps), kFinished
  // The bit of the batch (commit generation) this request went into: its writer sleeps with it
  // (see WaitFinished). Set by Submit; 0 for a request committed inline (never sleeps).
  uint32_t wake_bit = 0;
  Status status;
  // The request submitted before this one, while both wait for the commit thread (Submit).
  Request* next_submitted = nullptr;

  // Back to a fresh request's state, keeping the body's buffer unless it is large. Every field
  // above is reset here.
  void Reset() {
    internal::ClearKeepingBuffer(body, kKeepRequestBody);
    entries = 0;
    records = 0;
    deltas.clear();
    done = nullptr;
    detached = false;
    waited = false;
    needs_sync = true;
    is_start = false;
    start_of = TaskId{};
    finished.store(0, std::memory_order_relaxed);
    wake_bit = 0;
    next_submitted = nullptr;
    status = Status::Ok();
  }
};
constexpr uint32_t kPending = 0, kSleeping = 1, kFinished = 2;

// Requests of WriteAsync come from a pool: a producer or worker takes one, the thread that
// answers it gives it back (with its body's buffer, so encoding into it allocates nothing).
Request* NewRequest() { return ObjectPool<Request>::TakeOrNew(); }
void FreeRequest(Request* r) {
  r->Reset();
  ObjectPool<Request>::Give(r);
}

bool IsLiveState(TaskState s) { return !IsTerminal(s); }

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Sleeps until the commit thread has answered `req`.

// What a WriteBatch needs of a column family (its id and comparator), detached from any open
// database: writers encode their batches with these, so the commit thread may close and reopen
// the database (whose handles then change; the ids do not) while they do.
class StableCfHandle final : public rocksdb::ColumnFamilyHandle {
 public:
  StableCfHandle(std::string name, uint32_t id) : name_(std::move(name)), id_(id) {}
  const std::string& GetName() const override { return name_; }
  uint32_t GetID() const override { return id_; }
  rocksdb::Status GetDescriptor(rocksdb::ColumnFamilyDescriptor*) override {
    return rocksdb::Status::NotSupported("an encoding handle has no descriptor");
  }
  const rocksdb::Comparator* GetComparator() const override {
    return rocksdb::BytewiseComparator();
  }

 private:
  std::string name_;
  uint32_t id_;
};

// Declines RocksDB's automatic recovery from background errors (see OpenDb).
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

class RocksDbTaskStoreImpl final : public RocksDbTaskStore {
 public:
  RocksDbTaskStoreImpl(RocksDbStoreOptions options) : options_(std::move(options)) {}

  ~RocksDbTaskStoreImpl() override {
    if (committer_.joinable()) {
      stopping_flag_.store(true, std::memory_order_seq_cst);
      WakeCommitter();
      committer_.join();
      {
        std::lock_guard<std::mutex> lock(answer_mu_);
        answerer_stopping_ = true;
      }
      answer_cv_.notify_one();
      answerer_.join();
    }
    CloseInstance();
    if (!secondary_dir_.empty()) {
      std::error_code ec;
      fs::remove_all(secondary_dir_, ec);
    }
  }

  Status OpenDb() {
    const std::string& path = options_.path;
    const std::string where = "task store " + path;
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    const bool has_current = exists && fs::exists(fs::path(path) / "CURRENT", ec);
    if (exists && !fs::is_directory(path, ec)) {
      return Status::FailedPrecondition(where + ": not a directory");
    }
    if (exists && !has_current && !fs::is_empty(path, ec)) {
      return Status::FailedPrecondition(
          where +
          ": the directory holds files but no store (no RocksDB CURRENT file); "
          "refusing to create a store among them");
    }
    if (!has_current && options_.read_only) {
      return Status::NotFound(where + ": no store in this directory");
    }
    if (!exists) {
      fs::create_directories(path, ec);
      if (ec) return Status::IOError(where + ": cannot create the directory: " + ec.message());
    }

    rocksdb::DBOptions& db_options = db_options_;
    db_options.create_if_missing = !has_current;
    db_options.create_missing_column_families = true;  // checked below for existing stores
    db_options.paranoid_checks = true;
    db_options.allow_concurrent_memtable_write = false;  // one writer: the commit thread
    db_options.max_background_jobs = 2;
    db_options.max_total_wal_size = 256u << 20;
    db_options.keep_log_file_num = 3;
    db_options.max_log_file_size = 4u << 20;
    db_options.write_buffer_manager =
        std::make_shared<rocksdb::WriteBufferManager>(options_.write_buffer_bytes);
    if (options_.env != nullptr) db_options.env = options_.env;
    if (options_.durability == Durability::kSync && options_.zero_ahead_wal &&
        !options_.read_only) {
      // The environment's files, with the WAL's zeroed ahead (its other parts are the default
      // environment's, as they are in the environments tests pass).
      wal_fs_ = std::make_shared<ZeroAheadWalFileSystem>(db_options.env->GetFileSystem());
      wal_env_ = rocksdb::NewCompositeEnv(wal_fs_);
      db_options.env = wal_env_.get();
    }
    // A failed WAL write or fsync is recovered by reopening the database (Commit), never by
    // RocksDB's own recovery: RocksDB 7.8 treats those errors as fatal anyway, and its recovery
    // from a full disk can resume on a WAL writer that still holds the error and abort the
    // process on an assertion (seen with Debian's build; tests/storage/rocksdb_fault_test.cc).
    db_options.listeners.push_back(std::make_shared<NoAutoRecovery>());

    cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
    std::vector<rocksdb::ColumnFamilyDescriptor>& cfs = cf_descriptors_;
    const auto append_skip_list = std::make_shared<AppendSkipListFactory>();
    for (size_t i = 0; i < kCfCount; ++i) {
      rocksdb::ColumnFamilyOptions cf;
      rocksdb::BlockBasedTableOptions table;
      table.block_cache = cache_;
      table.cache_index_and_filter_blocks = true;
      table.pin_l0_filter_and_index_blocks_in_cache = true;
      if (i == kLive || i == kDone) {
        table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // point lookups by id
      }
      cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
      cf.write_buffer_size = (i == kDone || i == kIndex) ? options_.write_buffer_bytes / 2
                                                         : options_.write_buffer_bytes / 4;
      // Live records are short-lived (most die in the memtable); terminal ones compress well.
      cf.compression = i == kLive ? rocksdb::kNoCompression : rocksdb::kLZ4Compression;
      if (i == kLive && !options_.read_only) {
        // Live records are written (at enqueue, start and outcome) far more than they are read:
        // the engine serves live tasks from memory and reads this family only when it opens.
        // Their keys come in a few ascending streams (enqueues, and the deletes of finished
        // tasks a little behind them), which a rep of sorted runs appends with a comparison or
        // two each and merges once at the flush (memtable_rep.h). Before it, RocksDB's vector
        // memtable (session 11: `async` +7-22%, `sync` +7-11% over the skip list), whose flush
        // sorted it whole. Point reads look in `done` first, and the whole-key bloom filter
        // answers for keys that are not here. A reader (read_only: tools, checks) writes nothing
        // and may read many live records one by one, so it keeps the skip list.
        cf.memtable_factory = std::make_shared<SortedRunsFactory>();
        cf.memtable_whole_key_filtering = true;
        cf.memtable_prefix_bloom_size_ratio = 0.02;
      } else {
        // Keys that mostly arrive in order (ids are process-wide ordered), one writer: a skip
        // list that appends them with one comparison (memtable_rep.h says why not RocksDB's).
        cf.memtable_factory = append_skip_list;
        if (i != kJobs) {
          cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<StripIdTransform>();
        }
      }
      cfs.emplace_back(kCfNames[i], cf);
    }
    if (has_current) {
      std::vector<std::string> names;
      rocksdb::Status s =
          rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(db_options), path, &names);
      if (!s.ok()) return OpenError(s);
      for (size_t i = 0; i < kRequiredCfs; ++i) {
        if (std::find(names.begin(), names.end(), kCfNames[i]) == names.end()) {
          return Status::FailedPrecondition(where + ": a RocksDB database, but not a BMOS task " +
                                            "store (no column family '" + kCfNames[i] + "')");
        }
      }
      if (options_.read_only &&
          std::find(names.begin(), names.end(), kCfNames[kJobs]) == names.end()) {
        cfs.pop_back();  // an older store without jobs: a reader cannot add the family
      }
    }
    rocksdb::Status s = OpenInstance(options_.read_only);
    if (!s.ok()) return OpenError(s);
    for (size_t i = 0; i < kCfCount; ++i) {
      if (cf_[i] != nullptr) {
        encode_cf_[i] = std::make_unique<StableCfHandle>(kCfNames[i], cf_[i]->GetID());
      }
    }

    std::string format;
    s = db_->Get(rocksdb::ReadOptions(), cf_[kMeta], kFormatKey, &format);
    if (s.IsNotFound()) {
      if (has_current) {
        return Status::FailedPrecondition(where + ": not a BMOS task store (no format marker)");
      }
      rocksdb::WriteOptions wo;
      wo.sync = true;
      s = db_->Put(wo, cf_[kMeta], kFormatKey, kFormatValue);
      if (!s.ok()) return FromRocks(s, where + ": cannot write the format marker");
    } else if (!s.ok()) {
      return OpenError(s);
    } else if (format == kFormat1Value) {
      if (options_.read_only) {
        legacy_index_ = true;  // read as it is; filtered lists scan the records
      } else if (Status m = MigrateIndexFromFormat1(); !m.ok()) {
        return Status(m.code(),
                      where + ": rewriting the index of a format-1 store: " + m.message());
      }
    } else if (format != kFormatValue) {
      return Status::NotSupported(where + ": written in format '" + format +
                                  "'; this build reads '" + std::string(kFormatValue) + "'");
    }
    if (Status c = LoadCounts(); !c.ok()) return c;
    if (!options_.read_only) {
      answerer_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "bmos-answer");  // for top -H, perf and gdb
        AnswerLoop();
      });
      committer_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "bmos-commit");
        CommitLoop();
      });
    }
    return Status::Ok();
  }

  // Opens db_ and cf_ with the options OpenDb made. REQUIRES: db_ closed.
  rocksdb::Status OpenInstance(bool read_only) {
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s;
    if (options_.read_only) {
      // A secondary instance: RocksDB's way to read a directory that a writer may hold (a plain
      // read-only open can trip over files the writer deletes meanwhile). Its own info log goes
      // to a private temporary directory. It reads the MANIFEST, then replays the logs it finds;
      // a flush the writer finishes in between can delete logs that the version it read still
      // needs, and it would then show an older store (or an empty one) without an error. So the
      // open counts only if no log that was there just before it read the MANIFEST was gone
      // when it listed the logs (LogListingsFs): a log the version needs and that was deleted
      // in between is one of those, or is newer than all of them, and RocksDB deletes a log
      // only with all the older ones. (Should RocksDB list in a way LogListingsFs does not
      // see, the logs before and after the whole open are compared: sound, but a busy writer
      // deletes logs during most opens.) A failed open is tried again too if the MANIFEST
      // changed meanwhile (a compaction deleted a table file it wanted). See
      // AReaderOpenedAcrossAFlushSeesEveryRecord.
      rocksdb::DBOptions secondary = db_options_;
      secondary.max_open_files = -1;  // every table file opened now: later deletions are harmless
      for (int attempt = 1;; ++attempt) {
        auto listings =
            std::make_shared<LogListingsFs>(db_options_.env->GetFileSystem(), options_.path);
        std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(listings);
        secondary.env = env.get();
        const FilesMark before = StoreFilesMark();
        s = rocksdb::DB::OpenAsSecondary(secondary, options_.path, SecondaryDir(), cf_descriptors_,
                                         &handles, &db);
        const FilesMark after = StoreFilesMark();
        const bool logs_deleted = listings->Noted()
                                      ? !listings->NoLogDeleted()
                                      : !std::includes(after.logs.begin(), after.logs.end(),
                                                       before.logs.begin(), before.logs.end());
        if (!logs_deleted && (s.ok() || after.manifest == before.manifest)) {
          reader_env_ = std::move(env);  // the instance uses it as long as it is open
          break;
        }
        if (db != nullptr) {
          for (rocksdb::ColumnFamilyHandle* h : handles) (void)db->DestroyColumnFamilyHandle(h);
          handles.clear();
          delete db;
          db = nullptr;
        }
        if (attempt == kReaderOpenAttempts) {
          return rocksdb::Status::TryAgain(
              "the writer deleted files during each of " + std::to_string(kReaderOpenAttempts) +
              " attempts to open a consistent view of the store; try again");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
      }
    } else if (read_only) {
      s = rocksdb::DB::OpenForReadOnly(db_options_, options_.path, cf_descriptors_, &handles, &db);
    } else {
      s = rocksdb::DB::Open(db_options_, options_.path, cf_descriptors_, &handles, &db);
    }
    if (!s.ok()) return s;
    db_.reset(db);
    for (size_t i = 0; i < kCfCount; ++i) cf_[i] = i < handles.size() ? handles[i] : nullptr;
    return s;
  }

  // What a reader's open compares before and after (OpenInstance): the MANIFEST's name (from
  // CURRENT) and size, which change with every flush and compaction, and the write-ahead logs
  // (sorted names). Parts that cannot be read are left empty (the open then reports why).
  struct FilesMark {
    std::string manifest;
    std::vector<std::string> logs;
  };
  FilesMark StoreFilesMark() const {
    const std::shared_ptr<rocksdb::FileSystem>& fs = db_options_.env->GetFileSystem();
    FilesMark mark;
    std::vector<std::string> names;
    if (fs->GetChildren(options_.path, rocksdb::IOOptions(), &names, nullptr).ok()) {
      for (std::string& name : names) {
        if (name.ends_with(".log")) mark.logs.push_back(std::move(name));
      }
      std::sort(mark.logs.begin(), mark.logs.end());
    }
    std::string current;
    uint64_t size = 0;
    if (rocksdb::ReadFileToString(fs.get(), options_.path + "/CURRENT", &current).ok()) {
      while (!current.empty() && current.back() == '\n') current.pop_back();
      if (fs->GetFileSize(options_.path + "/" + current, rocksdb::IOOptions(), &size, nullptr)
              .ok()) {
        mark.manifest = current + ":" + std::to_string(size);
      }
    }
    return mark;
  }

  const std::string& SecondaryDir() {
    if (secondary_dir_.empty()) {
      std::string pattern = (fs::temp_directory_path() / "bmos-task-reader-XXXXXX").string();
      if (mkdtemp(pattern.data()) != nullptr) secondary_dir_ = pattern;
    }
    return secondary_dir_;
  }

  void CloseInstance() {
    if (db_ == nullptr) return;
    for (rocksdb::ColumnFamilyHandle*& h : cf_) {
      if (h != nullptr) (void)db_->DestroyColumnFamilyHandle(h);
      h = nullptr;
    }
    (void)db_->Close();
    db_.reset();
  }

  // -- TaskStore -------------------------------------------------------------------------------

  Durability durability() const override { return options_.durability; }

  Status Write(std::span<const TaskRecord> records) override {
    if (records.empty()) return Status::Ok();
    return WriteAndThen(records, nullptr);
  }

  // `then` may be null (Write).
  Status WriteAndThen(std::span<const TaskRecord> records, WriteCallback* then) override {
    if (options_.read_only) return ReadOnlyError();
    Request req;
    Encode(records, &req);
    return WriteAndWait(req, then);
  }

  void WriteAsync(std::span<const TaskRecord> records, WriteCallback* done) override {
    if (options_.read_only) {
      if (done != nullptr) done->OnWritten(ReadOnlyError());
      return;
    }
    Request* req = NewRequest();
    Encode(records, req);
    // Set either way (not left to Reset): a start record dropped wrongly would be an outcome lost.
    req->is_start =
        done == nullptr && records.size() == 1 && records[0].state == TaskState::kRunning;
    req->start_of = req->is_start ? records[0].id() : TaskId{};
    WriteWithoutWaiting(req, done);
  }

  Status WriteJobs(std::span<const JobWrite> writes) override {
    if (options_.read_only) return ReadOnlyError();
    if (writes.empty()) return Status::Ok();
    Request req;
    EncodeJobs(writes, &req);
    return WriteAndWait(req, nullptr);
  }

  void WriteJobsAsync(std::span<const JobWrite> writes, WriteCallback* done) override {
    if (options_.read_only) {
      if (done != nullptr) done->OnWritten(ReadOnlyError());
      return;
    }
    Request* req = NewRequest();
    EncodeJobs(writes, req);
    WriteWithoutWaiting(req, done);
  }

  Status ForEachJob(
      const std::function<void(std::string_view, std::string_view)>& visit) const override {
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return Unready();
    if (cf_[kJobs] == nullptr) return Status::Ok();  // an older store opened read-only
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[kJobs]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) visit(ToView(it->key()), ToView(it->value()));
    return FromRocks(it->status(), "task store " + options_.path + ": read jobs");
  }

  Status Health() const override {
    std::lock_guard<std::mutex> lock(health_mu_);
    return health_;
  }

  Status Flush() override {
    if (options_.read_only) return Status::Ok();
    Request marker;
    marker.waited = true;
    Submit(&marker);
    WaitFinished(marker);
    return Status::Ok();
  }

  Result<TaskRecord> Get(const TaskId& id) const override {
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return Unready();
    const std::string key = codec::IdKey(id);
    std::string value;
    // `done` first: most tasks read here are finished, and a read of `live` can cost a sort of
    // its memtable (see OpenDb). The third read finds a record that moved from live to done
    // between the first two.
    for (Cf cf : {kDone, kLive, kDone}) {
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_[cf], key, &value);
      if (s.ok()) return codec::DecodeRecord(id, value);
      if (!s.IsNotFound()) return FromRocks(s, "get task " + id.ToString());
    }
    return Status::NotFound("task " + id.ToString() + " not found");
  }

  Result<ListPage> List(const ListQuery& query) const override {
    if (query.limit < 1 || query.limit > kMaxListLimit) {
      return Status::InvalidArgument("limit must be between 1 and 1000");
    }
    if (query.terminal_only && query.state && IsLiveState(*query.state)) return ListPage{};
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return Unready();
    // One more than the limit from each part tells whether another page follows.
    const size_t want = query.limit + 1;
    std::vector<TaskRecord> found;
    if (!query.state || IsTerminal(*query.state)) {
      if (Status s = ListTerminal(query, want, &found); !s.ok()) return s;
    }
    if (!query.terminal_only && (!query.state || IsLiveState(*query.state))) {
      if (Status s = ListByScan(rocksdb::ReadOptions(), kLive, query, want, &found); !s.ok()) {
        return s;
      }
    }
    std::sort(found.begin(), found.end(),
              [](const TaskRecord& a, const TaskRecord& b) { return b.id() < a.id(); });
    ListPage page;
    const bool more = found.size() > query.limit;
    if (more) found.resize(query.limit);
    page.records = std::move(found);
    if (more && !page.records.empty()) page.next_cursor = page.records.back().id();
    return page;
  }

  Result<StoreCounts> Counts() const override {
    Result<StoreCounts> out = TerminalCounts();
    if (!out.ok()) return out;
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return Unready();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[kLive]));
    TaskState state;
    std::string queue;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Slice v = it->value();
      if (Status s = codec::PeekStateAndQueue(std::string_view(v.data(), v.size()), &state, &queue);
          !s.ok()) {
        return s;
      }
      out->by_queue[queue][static_cast<int>(state)] += 1;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "count live tasks");
    return out;
  }

  Result<StoreCounts> TerminalCounts() const override {
    StoreCounts out;
    std::lock_guard<std::mutex> lock(counts_mu_);
    for (const auto& [queue, per_state] : counts_) {
      bool any = false;
      for (uint64_t c : per_state) any = any || c != 0;
      if (any) out.by_queue.emplace(queue, per_state);
    }
    return out;
  }

  Status ForEachLive(const std::function<void(const TaskRecord&)>& visit) const override {
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return Unready();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[kLive]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      Result<TaskRecord> r = RecordAt(*it, "live");
      if (!r.ok()) return r.status();
      visit(*r);
    }
    return FromRocks(it->status(), "read live tasks");
  }

  Result<size_t> PurgeTerminal(const PurgeOptions& options) override {
    if (options_.read_only) return ReadOnlyError();
    // One purge at a time: two would both count the same records out.
    std::lock_guard<std::mutex> purge_lock(purge_mu_);
    uint64_t total = 0;
    {
      std::lock_guard<std::mutex> lock(counts_mu_);
      for (const auto& [queue, per_state] : counts_) {
        for (int i = 0; i < kTaskStateCount; ++i) total += per_state[i];
      }
    }
    int64_t excess = options.keep_at_most == 0
                         ? 0
                         : static_cast<int64_t>(total) - static_cast<int64_t>(options.keep_at_most);
    const size_t max_batch = std::max<size_t>(1, options.max_batch);
    std::vector<TaskRecord> victims;
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return Unready();
    // Oldest first (id order is creation order). created <= completed for every record, so once
    // records are created after the cutoff none further on can have completed before it.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[kDone]));
    for (it->SeekToFirst(); it->Valid() && victims.size() < max_batch; it->Next()) {
      Result<TaskRecord> r = RecordAt(*it, "done");
      if (!r.ok()) return r.status();
      const bool too_old = r->completed_ms < options.completed_before_ms;
      if (excess > 0 || too_old) {
        victims.push_back(std::move(*r));
        --excess;
      } else if (r->spec->created_ms >= options.completed_before_ms) {
        break;
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scan terminal tasks");
    it.reset();
    db_lock.unlock();  // the commit thread may need the database to itself (reopen)
    if (victims.empty()) return size_t{0};
    Request req;
    scratch_batch_.Clear();
    for (const TaskRecord& r : victims) {
      AppendIndexEdits(r, codec::IdKey(r.id()), /*insert=*/false);
      req.deltas.push_back({r.spec->queue, r.state, -1, r.id()});
    }
    AppendBody(&req);
    req.records = static_cast<uint32_t>(victims.size());
    req.waited = true;
    Submit(&req);
    WaitFinished(req);
    if (!req.status.ok()) return req.status;
    purged_since_compaction_ += victims.size();
    if (purged_since_compaction_ >= kCompactAfterPurged) {
      purged_since_compaction_ = 0;
      // Reclaims the space of the purged records and drops their tombstones, so scans from the
      // oldest record stay fast. Runs on the caller (the janitor), never on the hot path.
      const std::string last = codec::IdKey(victims.back().id());
      rocksdb::Slice end(last);
      db_lock.lock();
      if (db_ == nullptr) return victims.size();
      rocksdb::CompactRangeOptions co;
      (void)db_->CompactRange(co, cf_[kDone], nullptr, &end);
      (void)db_->CompactRange(co, cf_[kIndex], nullptr, nullptr);
    }
    return victims.size();
  }

  // -- RocksDbTaskStore ------------------------------------------------------------------------

  CommitStats commit_stats() const override {
    CommitStats s;
    s.commits = commits_.load(std::memory_order_relaxed);
    s.writes = committed_writes_.load(std::memory_order_relaxed);
    s.records = committed_records_.load(std::memory_order_relaxed);
    s.inline_commits = inline_commits_.load(std::memory_order_relaxed);
    s.dropped_starts = dropped_starts_.load(std::memory_order_relaxed);
    return s;
  }

  const std::string& path() const override { return options_.path; }

  uint64_t ApproximateDiskBytes() const override {
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return 0;
    uint64_t total = 0;
    for (rocksdb::ColumnFamilyHandle* h : cf_) {
      uint64_t v = 0;
      if (h != nullptr && db_->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
    }
    rocksdb::VectorLogPtr wals;
    if (db_->GetSortedWalFiles(wals).ok()) {
      for (const auto& w : wals) total += w->SizeFileBytes();
    }
    return total;
  }

  Status CompactAll() override {
    if (options_.read_only) return ReadOnlyError();
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    if (db_ == nullptr) return Unready();
    for (rocksdb::ColumnFamilyHandle* h : cf_) {
      if (h == nullptr) continue;
      rocksdb::Status s = db_->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr);
      if (!s.ok()) return FromRocks(s, "compact " + options_.path);
    }
    return Status::Ok();
  }

 private:
  static constexpr size_t kCompactAfterPurged = 100'000;
  // Opens a reader (read_only) tries before it gives up on a writer that keeps changing files.
  static constexpr int kReaderOpenAttempts = 10;
  // Longest a callback write waits for an urgent write to share its fsync (sync mode).
  static constexpr std::chrono::microseconds kLazyCommit{1000};
  // The same in `async`, where a commit costs no fsync: shorter, so outcomes show soon.
  static constexpr std::chrono::microseconds kLazyCommitAsync{200};
  // `async` waits for company only after a batch of at least this many writes (under load).
  static constexpr size_t kLazyAsyncMinBatch = 8;
  // How long the commit thread looks for a waited-for write before it sleeps.
  static constexpr std::chrono::microseconds kSpinBeforeSleep{50};
  // A commit of at most this many writes is answered by the commit thread itself when no
  // answer is pending (CommitLoop); larger ones go to the answer thread (in `sync`).
  static constexpr size_t kAnswerHereUpTo = 8;
  // After a failed write, how long writes fail fast before the next reopen attempt.
  static constexpr std::chrono::milliseconds kReopenInterval{1000};

  static std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

  // The record under the position of an iterator over `live` or `done` (`family` names it in
  // the error about a malformed key).
  Result<TaskRecord> RecordAt(const rocksdb::Iterator& it, std::string_view family) const {
    std::optional<TaskId> id = codec::IdFromKey(ToView(it.key()));
    if (!id) {
      return Status::Corruption("task store " + options_.path + ": malformed " +
                                std::string(family) + " key");
    }
    return codec::DecodeRecord(*id, ToView(it.value()));
  }

  Status Unready() const {
    return Status::Unavailable("task store " + options_.path +
                               " is closed after a write error and could not be reopened yet");
  }

  void SetHealth(const Status& s) {
    std::lock_guard<std::mutex> lock(health_mu_);
    health_ =
        s.ok()
            ? s
            : Status::Unavailable(s.message() + " (writes resume once the store can be reopened)");
  }

  Status ReadOnlyError() const {
    return Status::FailedPrecondition("task store " + options_.path + " is open read-only");
  }

  Status OpenError(const rocksdb::Status& s) const {
    const std::string where = "task store " + options_.path;
    const std::string text = s.ToString();
    if (s.IsIOError() &&
        (text.find("lock") != std::string::npos || text.find("LOCK") != std::string::npos)) {
      return Status::FailedPrecondition(where + " is already open in another process (or " +
                                        "another store of this one): " + text);
    }
    if (s.IsCorruption()) {
      return Status::Corruption(where + " is damaged and cannot be opened: " + text);
    }
    return FromRocks(s, where + ": cannot open");
  }

  Status LoadCounts() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[kMeta]));
    std::string queue;
    TaskState state;
    for (it->Seek("c"); it->Valid() && it->key().starts_with("c"); it->Next()) {
      uint64_t n = 0;
      if (!codec::ParseCountKey(ToView(it->key()), &queue, &state) ||
          !codec::DecodeFixed64(ToView(it->value()), &n)) {
        return Status::Corruption("task store " + options_.path + ": malformed count entry");
      }
      counts_[queue][static_cast<int>(state)] = n;
    }
    return FromRocks(it->status(), "task store " + options_.path + ": read counts");
  }

  // Rewrites a format-1 store's index (three keys per terminal record: 's', 'q' and 'n') as one
  // key per record, in batches, then marks the store as format 2 in the batch that removes the
  // old keys. A crash on the way leaves format 1 and the next open starts again (each step is
  // idempotent). Runs at open, before the commit thread starts.
  Status MigrateIndexFromFormat1() {
    constexpr size_t kBatch = 10'000;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[kDone]));
    rocksdb::WriteBatch wb;
    rocksdb::WriteOptions wo;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      Result<TaskRecord> r = RecordAt(*it, "done");
      if (!r.ok()) return r.status();
      const std::string key =
          codec::IndexPrefix(r->state, r->spec->queue, r->spec->name) + codec::IdKey(r->id());
      wb.Put(cf_[kIndex], key, rocksdb::Slice());
      if (wb.Count() >= kBatch) {
        if (rocksdb::Status w = db_->Write(wo, &wb); !w.ok()) return FromRocks(w, "write");
        wb.Clear();
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "read terminal records");
    static_assert(codec::kIndexKind > 's', "the new index kind is outside the ranges removed");
    for (const char kind : {'n', 'q', 's'}) {  // the old kinds; the new one ('t') sorts after
      const char begin[1] = {kind};
      const char end[1] = {static_cast<char>(kind + 1)};
      wb.DeleteRange(cf_[kIndex], rocksdb::Slice(begin, 1), rocksdb::Slice(end, 1));
    }
    wb.Put(cf_[kMeta], kFormatKey, kFormatValue);
    wo.sync = true;
    if (rocksdb::Status w = db_->Write(wo, &wb); !w.ok()) return FromRocks(w, "write");
    (void)db_->CompactRange(rocksdb::CompactRangeOptions(), cf_[kIndex], nullptr, nullptr);
    return Status::Ok();
  }

  // Index entries of a terminal record: added by a terminal write, removed by a purge. A purge
  // also removes the record itself; a terminal write moves it out of `live`.
  void AppendIndexEdits(const TaskRecord& r, const std::string& id_key, bool insert) {
    // Per thread and reused: its buffer stays, so building a key allocates nothing.
    static thread_local std::string key;
    key.clear();
    codec::AppendIndexPrefix(r.state, r.spec->queue, r.spec->name, &key);
    key += id_key;
    if (insert) {
      scratch_batch_.Put(encode_cf_[kIndex].get(), key, rocksdb::Slice());
    } else {
      scratch_batch_.Delete(encode_cf_[kDone].get(), id_key);
      scratch_batch_.Delete(encode_cf_[kIndex].get(), key);
    }
  }

  // Moves scratch_batch_'s entries into `req`.
  void AppendBody(Request* req) {
    const std::string& rep = scratch_batch_.Data();
    req->body.append(rep, kBatchHeader, std::string::npos);
    req->entries += static_cast<uint32_t>(scratch_batch_.Count());
  }

  void Encode(std::span<const TaskRecord> records, Request* req) {
    // Per thread and reused: their buffers stay, so encoding allocates nothing once they have
    // grown to a record's size (from empty, a record's value took four allocations).
    static thread_local std::string key, value;
    scratch_batch_.Clear();
    for (const TaskRecord& r : records) {
      key.clear();
      codec::AppendIdKey(r.id(), &key);
      value.clear();
      codec::EncodeRecord(r, &value);
      if (IsTerminal(r.state)) {
        scratch_batch_.Delete(encode_cf_[kLive].get(), key);
        scratch_batch_.Put(encode_cf_[kDone].get(), key, value);
        AppendIndexEdits(r, key, /*insert=*/true);
        req->deltas.push_back({r.spec->queue, r.state, +1, r.id()});
      } else {
        scratch_batch_.Put(encode_cf_[kLive].get(), key, value);
      }
    }
    AppendBody(req);
    req->records = static_cast<uint32_t>(records.size());
    // A large record (big data or result) does not pin its buffer to the thread.
    internal::ClearKeepingBuffer(value, kKeepEncodeBuffer);
  }

  // Commits the encoded `req` (inline when the store is idle, else through the commit thread)
  // and waits for it; `then`, when not null, is told first.
  Status WriteAndWait(Request& req, WriteCallback* then) {
    req.waited = true;
    req.done = then;
    if (!CommitInlineIfIdle(&req)) {
      Submit(&req);
      WaitFinished(req);
    }
    return req.status;
  }

  // Hands the encoded `req` (owned by the store from now on) over without waiting; `done` is
  // told the outcome, or (null) errors are logged and no fsync is forced for it.
  void WriteWithoutWaiting(Request* req, WriteCallback* done) {
    req->done = done;
    req->detached = done == nullptr;
    req->needs_sync = !req->detached;
    if (!CommitInlineIfIdle(req)) Submit(req);
  }

  void EncodeJobs(std::span<const JobWrite> writes, Request* req) {
    scratch_batch_.Clear();
    for (const JobWrite& w : writes) {
      if (w.erase) {
        scratch_batch_.Delete(encode_cf_[kJobs].get(), w.id);
      } else {
        scratch_batch_.Put(encode_cf_[kJobs].get(), w.id, w.value);
      }
    }
    AppendBody(req);
  }

  // In `async` mode, a write whose caller waits for the answer (an enqueue) and that finds the
  // store idle (nothing queued, nothing committing) is committed on the caller's thread: it would
  // be the commit thread's whole next batch anyway, and the hand-off (a wake-up of the commit
  // thread, and of the caller for the answer) costs more than the write itself, which takes no
  // fsync. Writes that arrive meanwhile queue for the commit thread, which starts once this
  // commit is done, so writes stay in submission order.
  // Not in `sync`: the caller would hold the fsync alone instead of sharing the next one.
  // True if `req` was committed and answered here.
  bool CommitInlineIfIdle(Request* req) {
    if (options_.durability != Durability::kAsync) return false;
    // Only for a writer that waits for the answer (an enqueue): start and outcome records of
    // workers go to the commit thread, where they share commits with each other.
    if (!req->waited && (req->done == nullptr || !req->done->caller_waits())) return false;
    // Nor while the answer thread has answers to give: this one would overtake them.
    const auto busy = [&] {
      return submitted_.load(std::memory_order_seq_cst) != nullptr ||
             stopping_flag_.load(std::memory_order_acquire) ||
             answers_pending_.load(std::memory_order_acquire) != 0;
    };
    if (busy()) return false;
    bool idle = false;
    if (!committing_.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) return false;
    // Checked again now that no commit can start: a write submitted before this point is
    // committed first (by the commit thread, once this gives way).
    if (busy()) {
      StopCommitting();
      return false;
    }
    Request* one[1] = {req};
    Answer(std::span<Request*>(one, 1), Commit(std::span<Request*>(one, 1)));
    StopCommitting();
    inline_commits_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Ends a Commit started by CommitInlineIfIdle, and wakes the commit thread if writes came
  // meanwhile and it sleeps waiting for the commit to end (CommitLoop).
  void StopCommitting() {
    committing_.store(false, std::memory_order_seq_cst);
    if (submitted_.load(std::memory_order_seq_cst) != nullptr) WakeCommitterFrom(kSleepsForWrites);
  }

  // Hands `req` to the commit thread: a push onto a lock-free stack (the commit thread takes the
  // whole stack at once), and a wake-up if the commit thread sleeps and this write is one it
  // waits for. Before it, a mutex guarded a queue here; with more threads than cores its
  // holders were preempted, and a third of a futex call per task went to waiting for it.
  void Submit(Request* req) {
    // A writer that waits (Write, Flush) is urgent; callback writes may wait a little for
    // company (see CommitLoop).
    const bool urgent = req->waited || (req->done != nullptr && req->done->caller_waits());
    // Spreads sleeping writers over the wake-up bits (any bit is correct: Answer wakes the bits
    // of the requests it answers).
    req->wake_bit = uint32_t{1} << (batch_generation_.load(std::memory_order_relaxed) % 32);
    Request* head = submitted_.load(std::memory_order_relaxed);
    do {
      req->next_submitted = head;
    } while (!submitted_.compare_exchange_weak(head, req, std::memory_order_seq_cst,
                                               std::memory_order_relaxed));
    const bool was_empty = head == nullptr;
    if (was_empty) {
      oldest_submit_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                              std::memory_order_relaxed);
    }
    if (urgent) urgent_pending_.store(1, std::memory_order_seq_cst);
    // Pairs with the commit thread's store of committer_sleeping_ and its second look at
    // submitted_ and urgent_pending_ (all seq_cst): either it sees this write, or this sees it
    // asleep.
    uint32_t sleeping = committer_sleeping_.load(std::memory_order_seq_cst);
    if ((sleeping == kSleepsForWrites && (was_empty || urgent)) ||
        (sleeping == kSleepsLazily && urgent)) {
      WakeCommitterFrom(sleeping);
    }
  }

  // Wakes the commit thread if it is still in state `sleeping`: the first of several wakers
  // takes the state back to kAwake and makes the one system call.
  void WakeCommitterFrom(uint32_t sleeping) {
    if (committer_sleeping_.compare_exchange_strong(sleeping, kAwake, std::memory_order_seq_cst)) {
      WakeCommitter();
    }
  }

  void WakeCommitter() {
    committer_epoch_.fetch_add(1, std::memory_order_seq_cst);
    FutexWake(committer_epoch_, 1);
  }

  // Sleeps (commit thread) until `ready` holds, another thread wakes it, or `timeout` (if not
  // null) passes. `state` says which wake-ups it wants (see Submit).
  template <typename Ready>
  void CommitterSleep(uint32_t state, Ready ready, const timespec* timeout) {
    const uint32_t epoch = committer_epoch_.load(std::memory_order_seq_cst);
    committer_sleeping_.store(state, std::memory_order_seq_cst);
    if (!ready()) {
      if (timeout != nullptr) {
        FutexWaitFor(committer_epoch_, epoch, *timeout);
      } else {
        FutexWait(committer_epoch_, epoch);
      }
    }
    committer_sleeping_.store(kAwake, std::memory_order_seq_cst);
  }

  // A start record and the outcome of the same task in one batch: the outcome moves the task
  // out of `live`, where the start record would only have rewritten it. The start record is
  // left out: a short task (most are) costs one record and one key fewer. Nobody waits for a
  // start record (they are detached), and the engine never relies on one being on disk: until
  // the outcome is (it follows in the same WriteBatch, or in the next when max_commit_bytes
  // splits the batch), a crash leaves the task PENDING, as if its start were not written yet.
  void DropSupersededStarts(std::vector<Request*>& batch) {
    if (batch.size() < 2) return;
    // From the back: a start record is dropped when an outcome of its task comes after it.
    ended_.clear();
    size_t dropped = 0;
    for (size_t i = batch.size(); i-- > 0;) {
      Request* r = batch[i];
      if (r->is_start && ended_.contains(r->start_of)) {
        FreeRequest(r);
        batch[i] = nullptr;
        ++dropped;
        continue;
      }
      for (const Request::CountDelta& d : r->deltas) {
        if (d.delta > 0) ended_.insert(d.id);
      }
    }
    if (dropped == 0) return;
    std::erase(batch, nullptr);
    dropped_starts_.fetch_add(dropped, std::memory_order_relaxed);
  }

  void CommitLoop() {
    std::vector<Request*> batch;
    for (;;) {
      // A waiting writer usually submits its next write within microseconds of being answered
      // (one producer enqueueing back to back): look for it briefly before sleeping, which saves
      // the wake-up (tens of µs on a VM) on the path of every such write. Bounded and short, so
      // an idle store costs nothing measurable.
      // Only in `sync`: there the answer takes an fsync, so the spin is a small share of the
      // commit thread's time; in `async` commits are quick and the spin would take CPU from
      // the workers.
      const auto spin_until =
          std::chrono::steady_clock::now() + (options_.durability == Durability::kSync
                                                  ? kSpinBeforeSleep
                                                  : std::chrono::microseconds(0));
      while (urgent_pending_.load(std::memory_order_acquire) == 0 &&
             !stopping_flag_.load(std::memory_order_acquire) &&
             std::chrono::steady_clock::now() < spin_until) {
        CpuRelax();
      }
      // Writes to commit, and no caller committing inline (CommitInlineIfIdle: its write came
      // first).
      const auto writes_ready = [&] {
        return (submitted_.load(std::memory_order_seq_cst) != nullptr &&
                !committing_.load(std::memory_order_seq_cst)) ||
               stopping_flag_.load(std::memory_order_seq_cst);
      };
      while (!writes_ready()) CommitterSleep(kSleepsForWrites, writes_ready, nullptr);
      // In `async` only under load (the last batch was large): with one enqueue at a time the
      // wait would leave the queue non-empty when the next enqueue comes, which then could not
      // commit on its own thread (CommitInlineIfIdle).
      const bool lazy =
          options_.durability == Durability::kSync || last_batch_size_ >= kLazyAsyncMinBatch;
      const auto urgent_or_stopping = [&] {
        return urgent_pending_.load(std::memory_order_seq_cst) != 0 ||
               stopping_flag_.load(std::memory_order_seq_cst);
      };
      if (lazy && !urgent_or_stopping()) {
        // Only outcome and start records are waiting: give them a moment to share the commit
        // of the next enqueue (in `sync` its fsync) instead of taking one of their own, which
        // the next enqueue would then have to wait behind.
        const auto window =
            options_.durability == Durability::kSync ? kLazyCommit : kLazyCommitAsync;
        const std::chrono::steady_clock::time_point until(
            std::chrono::steady_clock::duration(oldest_submit_ns_.load(std::memory_order_relaxed)) +
            window);
        for (;;) {
          const auto left = until - std::chrono::steady_clock::now();
          if (left <= std::chrono::steady_clock::duration::zero() || urgent_or_stopping()) break;
          const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
          const timespec timeout{static_cast<time_t>(ns / 1'000'000'000),
                                 static_cast<long>(ns % 1'000'000'000)};
          CommitterSleep(kSleepsLazily, urgent_or_stopping, &timeout);
        }
      }
      bool idle = false;
      if (!committing_.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) {
        // A caller commits inline: it wakes this thread when done (or, stopping, it is waited
        // out here).
        std::this_thread::yield();
        continue;
      }
      // Cleared before the take: an urgent write that comes after it is taken now, or sets the
      // flag again for the next batch.
      urgent_pending_.store(0, std::memory_order_seq_cst);
      Request* taken = submitted_.exchange(nullptr, std::memory_order_seq_cst);
      if (taken == nullptr) {
        // Stopping. Done once every commit is answered too: an answer's callback may still
        // submit a write.
        committing_.store(false, std::memory_order_release);
        if (answers_pending_.load(std::memory_order_acquire) == 0 &&
            submitted_.load(std::memory_order_seq_cst) == nullptr) {
          return;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
      batch_generation_.fetch_add(1, std::memory_order_relaxed);
      // The stack holds the newest first: the batch is in submission order.
      for (Request* r = taken; r != nullptr; r = r->next_submitted) batch.push_back(r);
      std::reverse(batch.begin(), batch.end());
      last_batch_size_ = batch.size();
      DropSupersededStarts(batch);
      size_t begin = 0;
      while (begin < batch.size()) {
        size_t end = begin, bytes = 0;
        while (end < batch.size() && (end == begin || bytes < options_.max_commit_bytes)) {
          bytes += batch[end]->body.size();
          ++end;
        }
        const std::span<Request*> part(batch.data() + begin, end - begin);
        Status status = Commit(part);
        // A commit with no answer before it is answered here when it is small (handing it over
        // would only add a wake-up to its writers' wait: one enqueue at a time, in `sync`, waits
        // ~15% longer), and in `async` whatever its size: there the next commit takes no fsync
        // that the answers could overlap, so on a small machine the hand-off (a wake-up and a
        // context switch per commit) cost more than it saved (64 asynchronous clients: 177-208k
        // tasks/s with it, 231-271k without). In `sync`, 64 blocking producers lose a tenth
        // when the commit thread answers large commits itself.
        const bool answer_here =
            part.size() <= kAnswerHereUpTo || options_.durability == Durability::kAsync;
        if (answer_here && answers_pending_.load(std::memory_order_acquire) == 0) {
          Answer(part, status);
        } else {
          HandToAnswerer(part, std::move(status));
        }
        begin = end;
      }
      batch.clear();
      committing_.store(false, std::memory_order_seq_cst);
    }
  }

  // After a failed write: closes and reopens the database (at most once per kReopenInterval),
  // which is how RocksDB leaves the state a failed WAL write or fsync puts it in. While the
  // read-write open fails, a read-only instance keeps serving reads.
  Status RecoverFromWriteError() {
    const auto now = std::chrono::steady_clock::now();
    if (now - write_error_at_ < kReopenInterval) return write_error_;
    std::unique_lock<std::shared_mutex> lock(db_mu_);
    CloseInstance();
    rocksdb::Status s = OpenInstance(/*read_only=*/false);
    if (!s.ok()) {
      (void)OpenInstance(/*read_only=*/true);
      write_error_ = FromRocks(s, "task store " + options_.path + ": reopen after a write error");
      write_error_at_ = now;
      return write_error_;
    }
    // The reopened WAL may hold a batch that was reported failed (its fsync failed after the
    // write): counts come from disk again, and terminal writes check for records already there.
    {
      std::lock_guard<std::mutex> counts_lock(counts_mu_);
      counts_.clear();
    }
    if (Status c = LoadCounts(); !c.ok()) return c;
    needs_reopen_ = false;
    verify_terminal_ = true;
    SetHealth(Status::Ok());
    std::fprintf(stderr, "bmos: task store %s reopened after a write error; writing again\n",
                 options_.path.c_str());
    return Status::Ok();
  }

  // Whether the terminal record of `id` is already in `done` (only asked after a reopen).
  bool AlreadyTerminal(const TaskId& id) {
    std::string value;
    return db_->Get(rocksdb::ReadOptions(), cf_[kDone], codec::IdKey(id), &value).ok();
  }

  // Writes `requests` as one WriteBatch; returns the outcome, for Answer. Runs on one thread at
  // a time: the commit thread, or a caller committing inline (`committing_` says who).
  Status Commit(std::span<Request*> requests) {
    if (needs_reopen_) {
      if (Status s = RecoverFromWriteError(); !s.ok()) {
        return Status(s.code(), s.message() + " (writes resume once the store can be reopened)");
      }
    }
    std::string rep(kBatchHeader, '\0');
    uint32_t entries = 0;
    uint64_t records = 0;
    bool needs_sync = false;
    size_t bytes = kBatchHeader;
    for (const Request* r : requests) bytes += r->body.size();
    rep.reserve(bytes + 256);
    // New values of the counts this commit touches, written in the same batch: only the states
    // that changed (`changed`, a bit per state), each count being a key rewritten per commit.
    struct Touched {
      StateCounts counts;
      uint32_t changed = 0;
    };
    std::map<std::string, Touched, std::less<>> touched;
    for (const Request* r : requests) {
      rep.append(r->body);
      needs_sync = needs_sync || r->needs_sync;
      entries += r->entries;
      records += r->records;
      for (const Request::CountDelta& d : r->deltas) {
        if (verify_terminal_ && d.delta > 0 && AlreadyTerminal(d.id)) continue;
        auto it = touched.find(d.queue);
        if (it == touched.end()) {
          StateCounts base{};
          {
            std::lock_guard<std::mutex> lock(counts_mu_);
            auto c = counts_.find(d.queue);
            if (c != counts_.end()) base = c->second;
          }
          it = touched.emplace(d.queue, Touched{base, 0}).first;
        }
        uint64_t& n = it->second.counts[static_cast<int>(d.state)];
        n = d.delta < 0 && n < static_cast<uint64_t>(-d.delta) ? 0 : n + d.delta;
        it->second.changed |= uint32_t{1} << static_cast<int>(d.state);
      }
    }
    Status status = Status::Ok();
    if (entries > 0) {
      // The merged bodies carry no header of their own: the batch's count is theirs together.
      for (int i = 0; i < 4; ++i) rep[8 + i] = static_cast<char>(entries >> (8 * i));
      rocksdb::WriteBatch wb(std::move(rep));
      std::string count_value;
      for (const auto& [queue, t] : touched) {
        for (int i = 0; i < kTaskStateCount; ++i) {
          if (!IsTerminal(static_cast<TaskState>(i)) || (t.changed >> i & 1) == 0) continue;
          count_value.clear();
          codec::EncodeFixed64(t.counts[i], &count_value);
          wb.Put(cf_[kMeta], codec::CountKey(queue, static_cast<TaskState>(i)), count_value);
        }
      }
      rocksdb::WriteOptions wo;
      wo.sync = options_.durability == Durability::kSync && needs_sync;
      rocksdb::Status s = db_->Write(wo, &wb);
      status = FromRocks(s, "task store " + options_.path + ": write");
      if (!status.ok()) {
        needs_reopen_ = true;
        write_error_ = status;
        write_error_at_ = std::chrono::steady_clock::now();
        SetHealth(status);
      }
      if (status.ok()) {
        std::lock_guard<std::mutex> lock(counts_mu_);
        for (auto& [queue, t] : touched) counts_[queue] = t.counts;
        commits_.fetch_add(1, std::memory_order_relaxed);
        committed_records_.fetch_add(records, std::memory_order_relaxed);
      }
    }
    if (status.ok()) committed_writes_.fetch_add(requests.size(), std::memory_order_relaxed);
    return status;
  }

  // The commit thread leaves the answers of a commit (callbacks, which dispatch tasks and retire
  // finished ones, and the wake-ups of waiting writers) to the answer thread and goes on with
  // the next commit: under load in `sync` the commit thread is the store's bottleneck, and the
  // answers were about 40% of its work. One answer thread keeps answers in commit order (in
  // `async` it takes a commit only while it still answers an earlier one; see CommitLoop).
  void HandToAnswerer(std::span<Request*> requests, Status status) {
    answers_pending_.fetch_add(1, std::memory_order_acq_rel);
    bool wake;
    {
      std::lock_guard<std::mutex> lock(answer_mu_);
      answers_.push_back(
          {std::vector<Request*>(requests.begin(), requests.end()), std::move(status)});
      wake = answerer_idle_;
    }
    if (wake) answer_cv_.notify_one();
  }

  void AnswerLoop() {
    std::deque<Answers> mine;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(answer_mu_);
        answerer_idle_ = true;
        answer_cv_.wait(lock, [&] { return !answers_.empty() || answerer_stopping_; });
        answerer_idle_ = false;
        if (answers_.empty()) return;  // stopping, and every commit is answered
        mine.swap(answers_);
      }
      for (Answers& a : mine) {
        Answer(a.requests, a.status);
        answers_pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
      mine.clear();
    }
  }

  // Tells every request of a commit its outcome; callback and detached requests are freed. Runs
  // on the answer thread, the commit thread, or a caller that committed inline.
  // Callbacks run inside one CallbackBatch (the engine wakes its workers once per commit, not
  // once per task); the writers that wait are answered after it ends, so a Flush that returns
  // finds the deferred work of every callback before it done. Entries of `requests` that are
  // freed here are set to null.
  void Answer(std::span<Request*> requests, const Status& status) {
    {
      CallbackBatch batch;
      for (Request*& r : requests) {
        if (r->done != nullptr) r->done->OnWritten(status);
        if (r->waited) continue;
        if (r->detached && !status.ok()) {
          std::fprintf(stderr, "bmos: store write failed: %s\n", status.ToString().c_str());
        }
        FreeRequest(r);
        r = nullptr;
      }
    }
    uint32_t wake_bits = 0;
    for (Request* r : requests) {
      if (r == nullptr) continue;
      r->status = status;
      const uint32_t bit = r->wake_bit;  // the request may be gone once `finished` is set
      if (r->finished.exchange(kFinished, std::memory_order_acq_rel) == kSleeping) {
        wake_bits |= bit;
      }
    }
    if (wake_bits != 0) {
      // One call wakes every sleeping writer this commit answered, and only them: writers of
      // the next batch sleep with another bit. (One call for all would also wake those, only
      // for them to sleep again; one call per writer lets each woken writer preempt the answering
      // thread before it has answered the rest.)
      answered_.fetch_add(1, std::memory_order_acq_rel);
      FutexWakeBitset(answered_, wake_bits);
    }
  }

  // Sleeps until `req` is answered (see Answer).
  void WaitFinished(Request& req) {
    uint32_t state = kPending;
    if (!req.finished.compare_exchange_strong(state, kSleeping, std::memory_order_acq_rel)) {
      return;  // kFinished already
    }
    for (;;) {
      const uint32_t epoch = answered_.load(std::memory_order_acquire);
      if (req.finished.load(std::memory_order_acquire) == kFinished) return;
      FutexWaitBitset(answered_, epoch, req.wake_bit);
    }
  }

  // Positions `it` on the newest key `prefix` + id with id < `before` (any id without `before`),
  // for a walk towards older ids with Prev().
  static void SeekNewestBefore(rocksdb::Iterator* it, const std::string& prefix,
                               const std::optional<TaskId>& before) {
    std::string start = prefix;
    if (before) {
      codec::AppendIdKey(*before, &start);
    } else {
      start.append(codec::kIdKeySize, '\xff');
    }
    it->SeekForPrev(start);
    if (it->Valid() && before && it->key() == rocksdb::Slice(start)) it->Prev();
  }

  Status ListTerminal(const ListQuery& q, size_t want, std::vector<TaskRecord>* out) const {
    // One view for the index and the records (a secondary instance has no snapshots, and needs
    // none: it changes only when told to catch up, which it never is).
    const rocksdb::Snapshot* snapshot = options_.read_only ? nullptr : db_->GetSnapshot();
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    const bool filtered = q.state || !q.queue.empty() || !q.name.empty();
    // A store of format 1 that this (read-only) instance could not rewrite has no usable index:
    // its records are filtered as they are read.
    Status status = filtered && !legacy_index_ ? ListByIndex(ro, q, want, out)
                                               : ListByScan(ro, kDone, q, want, out);
    if (snapshot != nullptr) db_->ReleaseSnapshot(snapshot);
    return status;
  }

  // Records of `cf` (`live` or `done`) newest first, filtered as they are read: by state and
  // queue from the record's first bytes, then by the whole record.
  Status ListByScan(const rocksdb::ReadOptions& ro, Cf cf, const ListQuery& q, size_t want,
                    std::vector<TaskRecord>* out) const {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[cf]));
    SeekNewestBefore(it.get(), std::string(), q.before);
    size_t added = 0;
    TaskState state;
    std::string queue;
    for (; it->Valid() && added < want; it->Prev()) {
      if (Status s = codec::PeekStateAndQueue(ToView(it->value()), &state, &queue); !s.ok()) {
        return s;
      }
      if ((q.state && state != *q.state) || (!q.queue.empty() && queue != q.queue)) continue;
      Result<TaskRecord> r = RecordAt(*it, kCfNames[cf]);
      if (!r.ok()) return r.status();
      if (!q.Matches(*r)) continue;
      out->push_back(std::move(*r));
      ++added;
    }
    return FromRocks(it->status(), cf == kLive ? "list live tasks" : "list tasks");
  }

  // Terminal records newest first through the index: the newest `want` ids (older than the
  // cursor) of each (state, queue, name) prefix that matches the filters, merged; then their
  // records.
  Status ListByIndex(const rocksdb::ReadOptions& ro, const ListQuery& q, size_t want,
                     std::vector<TaskRecord>* out) const {
    std::vector<TaskId> ids;
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[kIndex]));
      std::vector<std::string> prefixes;
      if (Status s = MatchingIndexPrefixes(it.get(), q, &prefixes); !s.ok()) return s;
      for (const std::string& prefix : prefixes) {
        SeekNewestBefore(it.get(), prefix, q.before);
        for (size_t n = 0; it->Valid() && n < want; it->Prev(), ++n) {
          const std::string_view key = ToView(it->key());
          if (key.size() != prefix.size() + codec::kIdKeySize || !key.starts_with(prefix)) break;
          std::optional<TaskId> id = codec::IdFromKey(key.substr(prefix.size()));
          if (!id) break;
          ids.push_back(*id);
        }
        if (!it->status().ok()) return FromRocks(it->status(), "list tasks");
      }
    }
    std::sort(ids.begin(), ids.end(), [](const TaskId& a, const TaskId& b) { return b < a; });
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::string value;
    size_t added = 0;
    for (const TaskId& id : ids) {
      if (added == want) break;
      rocksdb::Status s = db_->Get(ro, cf_[kDone], codec::IdKey(id), &value);
      if (s.IsNotFound()) continue;  // index ahead of a purge (no snapshot): skip
      if (!s.ok()) return FromRocks(s, "list tasks");
      Result<TaskRecord> r = codec::DecodeRecord(id, value);
      if (!r.ok()) return r.status();
      if (!q.Matches(*r)) continue;
      out->push_back(std::move(*r));
      ++added;
    }
    return Status::Ok();
  }

  // The index prefixes (one per state, queue and task name that terminal records have) that
  // match the query's filters, found by skipping from one prefix to the next: one seek each.
  Status MatchingIndexPrefixes(rocksdb::Iterator* it, const ListQuery& q,
                               std::vector<std::string>* out) const {
    std::string scope(1, codec::kIndexKind);
    if (q.state) scope.push_back(static_cast<char>(*q.state));
    TaskState state;
    std::string queue, name;
    for (it->Seek(scope); it->Valid() && it->key().starts_with(scope);) {
      const std::string_view key = ToView(it->key());
      if (key.size() <= codec::kIdKeySize ||
          !codec::ParseIndexPrefix(key.substr(0, key.size() - codec::kIdKeySize), &state, &queue,
                                   &name)) {
        return Status::Corruption("task store " + options_.path + ": malformed index key");
      }
      std::string prefix(key.substr(0, key.size() - codec::kIdKeySize));
      if ((q.queue.empty() || queue == q.queue) && (q.name.empty() || name == q.name)) {
        out->push_back(prefix);
      }
      prefix.append(codec::kIdKeySize, '\xff');  // after every id of this prefix
      it->Seek(prefix);
    }
    return FromRocks(it->status(), "list tasks");
  }

  const RocksDbStoreOptions options_;
  std::shared_ptr<ZeroAheadWalFileSystem> wal_fs_;  // kSync: the WAL's file system, and
  std::unique_ptr<rocksdb::Env> wal_env_;           // the environment over it (outlive db_)
  std::shared_ptr<rocksdb::Cache> cache_;
  // A reader's environment (over LogListingsFs), for as long as its instance is open; declared
  // before db_ so that it outlives it.
  std::unique_ptr<rocksdb::Env> reader_env_;
  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, kCfCount> cf_{};
  // Handles for encoding writes (any thread); set once at open, never changed.
  std::array<std::unique_ptr<StableCfHandle>, kCfCount> encode_cf_{};

  // Submission to the commit thread (Submit, CommitLoop, CommitInlineIfIdle).
  std::atomic<Request*> submitted_{nullptr};  // a stack: the newest first
  std::atomic<bool> committing_{false};       // a Commit runs (commit thread or inline caller)
  size_t last_batch_size_ = 0;                // commit thread only: writes in its last batch
  std::atomic<uint32_t> urgent_pending_{0};   // a waiting writer is among the submitted
  std::atomic<bool> stopping_flag_{false};
  // steady_clock ticks when the stack last went from empty to not empty.
  std::atomic<std::chrono::steady_clock::rep> oldest_submit_ns_{0};
  // The commit thread sleeps on the epoch; a wake-up bumps it. What it waits for:
  static constexpr uint32_t kAwake = 0;
  static constexpr uint32_t kSleepsForWrites = 1;  // any write (or the end of an inline commit)
  static constexpr uint32_t kSleepsLazily = 2;     // an urgent write only (the lazy window)
  std::atomic<uint32_t> committer_epoch_{0};
  std::atomic<uint32_t> committer_sleeping_{kAwake};
  std::thread committer_;
  // Commits waiting for the answer thread (HandToAnswerer), oldest first.
  struct Answers {
    std::vector<Request*> requests;
    Status status;
  };
  std::mutex answer_mu_;
  std::condition_variable answer_cv_;
  std::deque<Answers> answers_;             // GUARDED_BY(answer_mu_)
  bool answerer_idle_ = false;              // GUARDED_BY(answer_mu_)
  bool answerer_stopping_ = false;          // GUARDED_BY(answer_mu_)
  std::atomic<size_t> answers_pending_{0};  // handed over and not yet answered
  std::thread answerer_;
  // What Health() answers: written by the commit thread, read by any thread.
  mutable std::mutex health_mu_;
  Status health_ = Status::Ok();  // GUARDED_BY(health_mu_)
  // Write-error recovery; commit thread only.
  bool needs_reopen_ = false;
  bool verify_terminal_ = false;
  Status write_error_ = Status::Ok();
  std::chrono::steady_clock::time_point write_error_at_{};

  // Readers hold it shared; the commit thread holds it exclusively to reopen the database.
  mutable std::shared_mutex db_mu_;
  rocksdb::DBOptions db_options_;
  std::string secondary_dir_;  // read-only stores: the secondary instance's own directory
  std::vector<rocksdb::ColumnFamilyDescriptor> cf_descriptors_;

  // Terminal counts per queue; written by the commit thread after each commit.
  mutable std::mutex counts_mu_;
  std::map<std::string, StateCounts, std::less<>> counts_;  // GUARDED_BY(counts_mu_)

  std::mutex purge_mu_;
  uint64_t purged_since_compaction_ = 0;  // GUARDED_BY(purge_mu_)

  std::atomic<uint64_t> commits_{0}, committed_writes_{0}, committed_records_{0};
  std::atomic<uint64_t> inline_commits_{0};
  // Batches taken by the commit thread so far (only spreads sleeping writers over wake bits).
  std::atomic<uint32_t> batch_generation_{0};
  // Bumped by each commit that wakes writers; they sleep on it (FutexWaitBitset).
  std::atomic<uint32_t> answered_{0};
  // A format-1 store opened read-only: its index is not rewritten, so not used (ListTerminal).
  bool legacy_index_ = false;
  std::atomic<uint64_t> dropped_starts_{0};
  // Tasks that end in the batch at hand (DropSupersededStarts); commit thread only.
  boost::unordered_flat_set<TaskId, TaskIdHash> ended_;

  static thread_local rocksdb::WriteBatch scratch_batch_;
};

thread_local rocksdb::WriteBatch RocksDbTaskStoreImpl::scratch_batch_;

}  // namespace

Result<std::shared_ptr<RocksDbTaskStore>> RocksDbTaskStore::Open(
    const RocksDbStoreOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("path: the data directory is required");
  if (options.durability == Durability::kMemory) {
    return Status::InvalidArgument(
        "durability: the RocksDB store serves `sync` and `async`; `memory` needs no store");
  }
  if (options.write_buffer_bytes < (4u << 20)) {
    return Status::InvalidArgument("write_buffer_bytes must be at least 4 MiB");
  }
  auto store = std::make_shared<RocksDbTaskStoreImpl>(options);
  if (Status s = store->OpenDb(); !s.ok()) return s;
  return std::shared_ptr<RocksDbTaskStore>(std::move(store));
}

}  // namespace bmos::storage
