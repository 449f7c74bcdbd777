// system_cleanup: old terminal tasks, stale temporary files, store compaction (operations.h).

#include <chrono>
#include <cmath>

#include "engine/handlers/internal/common.h"
#include "engine/handlers/internal/table.h"
#include "engine/handlers/operations.h"
#include "storage/rocksdb_task_store.h"

namespace bmos::engine::handlers {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace internal;  // NOLINT: the handlers' own helpers

namespace {

constexpr size_t kPurgeBatch = 1000;
// A temporary file this old belongs to no running operation (they finish or fail well within
// it), so it was left by a crash.
constexpr auto kStaleTemp = std::chrono::hours(1);

}  // namespace

Result<json::value> SystemCleanup(const Workspace& ws, storage::TaskStore& store,
                                  const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(
      TaskData fields, TaskData::Parse("system_cleanup", data, {"older_than_days", "dry_run"}));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(double days,
                                 fields.Number("older_than_days", std::nullopt, 0, 36500));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(bool dry_run, fields.Bool("dry_run", false));
  const int64_t now_ms = ws.clock->NowMillis();
  const int64_t cutoff_ms = now_ms - static_cast<int64_t>(std::llround(days * 86'400'000.0));

  // 1. Terminal tasks completed before the cutoff: a dry run counts them page by page, a real
  //    run purges them in batches until none is left.
  uint64_t matching = 0;
  if (dry_run) {
    storage::ListQuery query;
    query.terminal_only = true;
    query.limit = 1000;
    for (;;) {
      if (job.cancelled()) return CancelledStatus("system_cleanup");
      BMOS_HANDLERS_ASSIGN_OR_RETURN(storage::ListPage page, store.List(query));
      for (const storage::TaskRecord& r : page.records) {
        if (storage::IsTerminal(r.state) && r.completed_ms < cutoff_ms) ++matching;
      }
      if (!page.next_cursor || page.records.empty()) break;
      query.before = page.next_cursor;
    }
  }
  job.ReportProgress(0.2, dry_run ? "counted old tasks" : "purging old tasks");
  uint64_t purged = 0;
  if (!dry_run) {
    storage::PurgeOptions purge;
    purge.completed_before_ms = cutoff_ms;
    purge.keep_at_most = 0;
    purge.max_batch = kPurgeBatch;
    for (;;) {
      if (job.cancelled()) return CancelledStatus("system_cleanup");
      BMOS_HANDLERS_ASSIGN_OR_RETURN(size_t n, store.PurgeTerminal(purge));
      if (n == 0) break;
      purged += n;
    }
    matching = purged;
  }

  // 2. The handlers' temporary files left by crashes (the file system's own clock: these are
  //    file times, not task times).
  job.ReportProgress(0.5, "looking for stale temporary files");
  uint64_t temp_matching = 0, temp_removed = 0, temp_bytes = 0;
  json::array temp_errors;
  {
    const auto stale_before = fs::file_time_type::clock::now() - kStaleTemp;
    std::error_code ec;
    fs::recursive_directory_iterator it(ws.root.path(),
                                        fs::directory_options::skip_permission_denied, ec);
    uint64_t visited = 0;
    for (fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
      if ((++visited & 1023) == 0 && job.cancelled()) return CancelledStatus("system_cleanup");
      std::error_code fec;
      if (!it->is_regular_file(fec) || it->is_symlink(fec)) continue;
      if (!IsTempFileName(it->path().filename().string())) continue;
      const fs::file_time_type mtime = it->last_write_time(fec);
      if (fec || mtime >= stale_before) continue;
      const uint64_t size = it->file_size(fec);
      ++temp_matching;
      if (dry_run) {
        temp_bytes += fec ? 0 : size;
        continue;
      }
      if (fs::remove(it->path(), fec)) {
        ++temp_removed;
        temp_bytes += size;
      } else if (fec && temp_errors.size() < 10) {
        temp_errors.emplace_back(ws.root.Relative(it->path()) + ": " + fec.message());
      }
    }
  }

  // 3. Compaction, when the store is RocksDB: purged records only free disk once compacted.
  job.ReportProgress(0.7, dry_run ? "measuring the store" : "compacting the store");
  json::object store_json;
  uint64_t store_freed = 0;
  if (auto* rocks = dynamic_cast<storage::RocksDbTaskStore*>(&store); rocks != nullptr) {
    const uint64_t before = rocks->ApproximateDiskBytes();
    uint64_t after = before;
    if (!dry_run) {
      BMOS_HANDLERS_RETURN_IF_ERROR(rocks->CompactAll());
      after = rocks->ApproximateDiskBytes();
      store_freed = before > after ? before - after : 0;
    }
    store_json = json::object{{"kind", "rocksdb"},
                              {"compacted", !dry_run},
                              {"bytes_before", before},
                              {"bytes_after", after},
                              {"bytes_freed", store_freed}};
  } else {
    store_json = json::object{
        {"kind", store.durability() == storage::Durability::kMemory ? "memory" : "other"},
        {"compacted", false},
        {"bytes_freed", 0}};
  }
  job.ReportProgress(1, "done");
  return json::value(json::object{
      {"dry_run", dry_run},
      {"older_than_days", JsonNumber(days)},
      {"cutoff", storage::FormatIsoTime(std::max<int64_t>(0, cutoff_ms))},
      {"tasks_matching", matching},
      {"tasks_purged", purged},
      {"temp_files_matching", temp_matching},
      {"temp_files_removed", temp_removed},
      {"temp_bytes_matching", temp_bytes},
      {"temp_bytes_freed", dry_run ? 0 : temp_bytes},
      {"temp_errors", std::move(temp_errors)},
      {"store", std::move(store_json)},
      {"bytes_freed", (dry_run ? 0 : temp_bytes) + store_freed},
  });
}

}  // namespace bmos::engine::handlers
