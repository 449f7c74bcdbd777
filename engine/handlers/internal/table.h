// Tables of the handlers: a streaming reader of the rows of a CSV file (header first) or a JSON
// Lines file (one object per line; the columns are the union of the keys, in order of first
// appearance), and a whole table in memory.
//
// The format follows the extension: ".jsonl", ".ndjson" and ".jsonlines" are JSON Lines, anything
// else is CSV. JSON values become cell text: strings as they are, numbers as written, true /
// false, null as an empty cell, arrays and objects as compact JSON.
//
// Errors (InvalidArgument, naming the file, and the line and column where it applies): an empty
// file, a header with a repeated column name, a CSV error (csv.h), a line that is not a JSON
// object. NotFound when the file does not exist. Header names are trimmed; an empty one becomes
// "column_<n>".
//
// Thread-safety: a TableReader belongs to one thread.
#ifndef BMOS_ENGINE_HANDLERS_INTERNAL_TABLE_H_
#define BMOS_ENGINE_HANDLERS_INTERNAL_TABLE_H_

#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/handlers/operations.h"

namespace bmos::engine::handlers::internal {

struct Row {
  std::vector<std::string> values;  // one per column
  uint64_t line = 0;                // where the row starts in the file
};

class TableReader {
 public:
  virtual ~TableReader() = default;

  // Opens `file` and reads its header (a JSON Lines file is read once through to collect its
  // keys, checking `job` for cancellation). `display` names the file in errors.
  static Result<std::unique_ptr<TableReader>> Open(const std::filesystem::path& file,
                                                   std::string display, Job& job);

  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& display() const { return display_; }
  // The index of the column `name`, or nullopt.
  std::optional<size_t> Find(std::string_view name) const;
  // InvalidArgument "<file>: line 1: missing required column 'x' (columns: a, b, c)".
  Status MissingColumn(std::string_view name) const;

  // The next row: true when one was read, false at the end, or an error.
  virtual Result<bool> Next(Row* row) = 0;
  // Share of the file read so far, in [0, 1].
  virtual double fraction() const = 0;
  // The content hash of the file (valid once Next has returned false).
  virtual std::string content_hash() const = 0;

 protected:
  std::string display_;
  std::vector<std::string> columns_;
};

// A whole table in memory.
struct Table {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  std::string content_hash;
};

// Reads all of `file`, reporting progress as [progress_from, progress_to] of the job and
// returning Cancelled when the job is cancelled.
Result<Table> ReadTable(const std::filesystem::path& file, std::string display, Job& job,
                        double progress_from, double progress_to);

// Progress of the part [from, to] of a job: a fraction f of the part is from + f (to - from).
class SubJob final : public Job {
 public:
  SubJob(Job* parent, double from, double to) : parent_(parent), from_(from), to_(to) {}
  bool cancelled() const override { return parent_->cancelled(); }
  void ReportProgress(double fraction, std::string_view message) override {
    parent_->ReportProgress(from_ + fraction * (to_ - from_), message);
  }

 private:
  Job* parent_;
  double from_, to_;
};

// Parses line `number` of a JSON Lines file (without its line ending): the object, nullopt for
// a blank line, or InvalidArgument naming the file, line and column (invalid UTF-8, invalid
// JSON, a value that is not an object). A byte-order mark on line 1 is skipped.
Result<std::optional<boost::json::object>> ParseJsonObjectLine(std::string_view line,
                                                               uint64_t number,
                                                               std::string_view display);

// "<file>: cancelled".
Status CancelledStatus(std::string_view what);

}  // namespace bmos::engine::handlers::internal

#endif  // BMOS_ENGINE_HANDLERS_INTERNAL_TABLE_H_
