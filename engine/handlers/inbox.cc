// sync_inbox: processes the CSV files dropped into inbox/ (operations.h has the contract).

#include <algorithm>

#include "engine/handlers/internal/common.h"
#include "engine/handlers/internal/table.h"
#include "engine/handlers/internal/utf8.h"
#include "engine/handlers/operations.h"

namespace bmos::engine::handlers {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace internal;  // NOLINT: the handlers' own helpers

namespace {

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

// The first of "stem", "stem-2", "stem-3", ... for which none of the names `suffixes` make exists
// in `dir`.
std::string FreeStem(const fs::path& dir, const std::string& stem,
                     const std::vector<std::string>& suffixes) {
  for (int n = 1;; ++n) {
    const std::string candidate = n == 1 ? stem : stem + "-" + std::to_string(n);
    bool taken = false;
    for (const std::string& suffix : suffixes) taken = taken || Exists(dir / (candidate + suffix));
    if (!taken) return candidate;
  }
}

Status MoveFile(const fs::path& from, const fs::path& to, const std::string& what) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (!ec) fs::rename(from, to, ec);
  if (ec) return Status::IOError("cannot move " + what + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<json::value> SyncInbox(const Workspace& ws, const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(TaskData fields, TaskData::Parse("sync_inbox", data, {}));
  (void)fields;
  const fs::path& root = ws.root.path();
  const fs::path inbox = root / "inbox";
  const fs::path processed_dir = root / "processed";
  const fs::path failed_dir = root / "failed";
  for (const fs::path& dir : {inbox, processed_dir, failed_dir}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError(ws.root.Relative(dir) + ": cannot create: " + ec.message());
    // A link in place of one of these folders could lead outside the root.
    if (!ws.root.Contains(fs::canonical(dir, ec)) || ec) {
      return Status::InvalidArgument(ws.root.Relative(dir) + " leads outside the data root");
    }
  }
  std::vector<std::string> names;
  {
    std::error_code ec;
    for (fs::directory_iterator it(inbox, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code fec;
      if (name.empty() || name[0] == '.' || it->is_symlink(fec) || !it->is_regular_file(fec)) {
        continue;
      }
      if (AsciiLower(it->path().extension().string()) != ".csv") continue;
      names.push_back(name);
    }
    if (ec) return Status::IOError("inbox: cannot list: " + ec.message());
  }
  std::sort(names.begin(), names.end());

  json::array processed, failed;
  for (size_t i = 0; i < names.size(); ++i) {
    if (job.cancelled()) return CancelledStatus("sync_inbox");
    const std::string& name = names[i];
    const fs::path file = inbox / name;
    const std::string stem = fs::path(name).stem().string();
    const std::string ext = fs::path(name).extension().string();
    const std::string base = FreeStem(processed_dir, stem, {ext, "_cleaned.csv", ".quality.json"});
    const std::string input = "inbox/" + name;
    const std::string cleaned = "processed/" + base + "_cleaned.csv";
    const std::string report = "processed/" + base + ".quality.json";
    const double from = static_cast<double>(i) / static_cast<double>(names.size());
    const double step = 1.0 / static_cast<double>(names.size());
    SubJob process_job(&job, from, from + step / 2);
    SubJob quality_job(&job, from + step / 2, from + step);

    Result<json::value> cleaning = ProcessData(
        ws,
        json::object{{"data_source", input}, {"processing_type", "standard"}, {"output", cleaned}},
        process_job);
    Result<json::value> quality = Status::Internal("not run");
    if (cleaning.ok()) {
      quality = CheckDataQuality(ws, json::object{{"data_source", input}, {"output", report}},
                                 quality_job);
    }
    if (!cleaning.ok() || !quality.ok()) {
      // Nothing half-done stays: the cleaned file goes when the quality check failed.
      std::error_code ec;
      if (cleaning.ok()) fs::remove(root / cleaned, ec);
      const Status error = cleaning.ok() ? quality.status() : cleaning.status();
      if (error.code() == Status::Code::kCancelled) return error;
      const std::string failed_stem = FreeStem(failed_dir, stem, {ext, ext + ".error.txt"});
      const std::string moved_to = "failed/" + failed_stem + ext;
      BMOS_HANDLERS_RETURN_IF_ERROR(MoveFile(file, root / moved_to, input));
      BMOS_HANDLERS_RETURN_IF_ERROR(WriteFileAtomically(
          root / (moved_to + ".error.txt"), error.ToString() + "\n", moved_to + ".error.txt"));
      failed.push_back(
          json::object{{"file", input}, {"moved_to", moved_to}, {"error", error.ToString()}});
      continue;
    }
    const std::string moved_to = "processed/" + base + ext;
    BMOS_HANDLERS_RETURN_IF_ERROR(MoveFile(file, root / moved_to, input));
    const json::object& c = cleaning->as_object();
    const json::object& q = quality->as_object();
    processed.push_back(json::object{{"file", input},
                                     {"moved_to", moved_to},
                                     {"cleaned", cleaned},
                                     {"quality_report", report},
                                     {"rows_in", c.at("rows_in")},
                                     {"rows_out", c.at("rows_out")},
                                     {"duplicates_removed", c.at("duplicates_removed")},
                                     {"score", q.at("score")},
                                     {"issues", q.at("issues").as_array().size()}});
  }
  job.ReportProgress(1, "done");
  return json::value(
      json::object{{"processed", std::move(processed)}, {"failed", std::move(failed)}});
}

}  // namespace bmos::engine::handlers
