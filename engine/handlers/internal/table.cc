#include "engine/handlers/internal/table.h"

#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>
#include <fstream>
#include <unordered_map>

#include "engine/handlers/csv.h"
#include "engine/handlers/internal/utf8.h"
#include "engine/handlers/internal/values.h"

namespace bmos::engine::handlers::internal {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

bool IsJsonLines(const fs::path& file) {
  const std::string ext = AsciiLower(file.extension().string());
  return ext == ".jsonl" || ext == ".ndjson" || ext == ".jsonlines";
}

uint64_t FileSize(const fs::path& file) {
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

// Header names trimmed, empty ones named, repeated ones refused.
Status CheckHeader(std::vector<std::string>* columns, std::string_view display) {
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < columns->size(); ++i) {
    std::string& name = (*columns)[i];
    name = std::string(Trim(name));
    if (name.empty()) name = "column_" + std::to_string(i + 1);
    auto [it, inserted] = seen.emplace(name, i);
    if (!inserted) {
      return Status::InvalidArgument(std::string(display) + ": line 1: column name '" + name +
                                     "' appears twice (fields " + std::to_string(it->second + 1) +
                                     " and " + std::to_string(i + 1) + ")");
    }
  }
  return Status::Ok();
}

class CsvTableReader final : public TableReader {
 public:
  CsvTableReader(std::unique_ptr<CsvReader> csv, uint64_t size)
      : csv_(std::move(csv)), size_(size) {}

  Status ReadHeader() {
    CsvRecord header;
    Result<bool> got = csv_->Next(&header);
    if (!got.ok()) return got.status();
    if (!*got) return Status::InvalidArgument(display_ + " is empty (no header line)");
    columns_ = std::move(header.fields);
    return CheckHeader(&columns_, display_);
  }

  Result<bool> Next(Row* row) override {
    Result<bool> got = csv_->Next(&record_);
    if (!got.ok() || !*got) return got;
    row->values.swap(record_.fields);
    row->line = record_.line;
    return true;
  }
  double fraction() const override {
    return size_ == 0 ? 1.0
                      : std::min(1.0, static_cast<double>(csv_->bytes_read()) /
                                          static_cast<double>(size_));
  }
  std::string content_hash() const override { return csv_->content_hash(); }

 private:
  std::unique_ptr<CsvReader> csv_;
  uint64_t size_;
  CsvRecord record_;
};

class JsonLinesTableReader final : public TableReader {
 public:
  JsonLinesTableReader(fs::path file, uint64_t size) : file_(std::move(file)), size_(size) {}

  // Pass one: every line parses and is an object; collects the keys.
  Status ReadKeys(Job& job) {
    std::ifstream in(file_, std::ios::binary);
    if (!in) return Status::IOError(display_ + ": cannot open");
    std::unordered_map<std::string, size_t> index;
    std::string line;
    uint64_t number = 0;
    uint64_t objects = 0;
    json::object object;
    while (ReadLine(in, &line, nullptr)) {
      ++number;
      if ((number & 1023) == 0 && job.cancelled()) return CancelledStatus(display_);
      Result<bool> parsed = ParseLine(line, number, &object);
      if (!parsed.ok()) return parsed.status();
      if (!*parsed) continue;
      ++objects;
      for (const auto& kv : object) {
        const std::string key(kv.key());
        if (index.emplace(key, columns_.size()).second) columns_.push_back(key);
      }
    }
    if (in.bad()) return Status::IOError(display_ + ": read failed");
    if (objects == 0) return Status::InvalidArgument(display_ + " is empty (no JSON object)");
    for (size_t i = 0; i < columns_.size(); ++i) index_[columns_[i]] = i;
    in_.open(file_, std::ios::binary);
    if (!in_) return Status::IOError(display_ + ": cannot open");
    return Status::Ok();
  }

  Result<bool> Next(Row* row) override {
    std::string line;
    json::object object;
    for (;;) {
      if (!ReadLine(in_, &line, &hash_)) {
        if (in_.bad()) return Status::IOError(display_ + ": read failed");
        return false;
      }
      ++line_;
      Result<bool> parsed = ParseLine(line, line_, &object);
      if (!parsed.ok()) return parsed.status();
      if (*parsed) break;
    }
    row->values.assign(columns_.size(), std::string());
    row->line = line_;
    for (const auto& kv : object) {
      auto it = index_.find(std::string(kv.key()));
      if (it == index_.end()) continue;  // the file changed since pass one
      row->values[it->second] = CellText(kv.value());
    }
    return true;
  }
  double fraction() const override {
    return size_ == 0 ? 1.0
                      : std::min(1.0, static_cast<double>(consumed_) / static_cast<double>(size_));
  }
  std::string content_hash() const override { return hash_.ToString(); }

 private:
  // One line without its line ending; false at the end. Hashes the bytes as they are.
  bool ReadLine(std::ifstream& in, std::string* line, Fnv1a64* hash) {
    if (!std::getline(in, *line)) return false;
    const bool ended = !in.eof();
    if (hash != nullptr) {
      hash->Update(*line);
      if (ended) hash->Update("\n");
      consumed_ += line->size() + (ended ? 1 : 0);
    }
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return true;
  }

  Result<bool> ParseLine(std::string_view line, uint64_t number, json::object* out) {
    Result<std::optional<json::object>> parsed = ParseJsonObjectLine(line, number, display_);
    if (!parsed.ok()) return parsed.status();
    if (!parsed->has_value()) return false;
    *out = std::move(**parsed);
    return true;
  }

  static std::string CellText(const json::value& v) {
    switch (v.kind()) {
      case json::kind::string:
        return std::string(v.get_string());
      case json::kind::null:
        return std::string();
      case json::kind::bool_:
        return v.get_bool() ? "true" : "false";
      case json::kind::double_:
        return FormatDouble(v.get_double());
      default:
        return json::serialize(v);
    }
  }

  fs::path file_;
  uint64_t size_;
  std::ifstream in_;
  std::unordered_map<std::string, size_t> index_;
  uint64_t line_ = 0;
  uint64_t consumed_ = 0;
  Fnv1a64 hash_;
};

}  // namespace

Result<std::optional<json::object>> ParseJsonObjectLine(std::string_view line, uint64_t number,
                                                        std::string_view display) {
  if (number == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
  if (Trim(line).empty()) return std::optional<json::object>();
  const std::string where = std::string(display) + ": line " + std::to_string(number);
  if (const size_t bad = FindInvalidUtf8(line); bad != std::string_view::npos) {
    return Status::InvalidArgument(where + ", column " +
                                   std::to_string(CountChars(line.substr(0, bad)) + 1) +
                                   ": invalid UTF-8 byte sequence (the file must be UTF-8 "
                                   "encoded)");
  }
  json::stream_parser parser;
  boost::system::error_code ec;
  const size_t used = parser.write(line.data(), line.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return Status::InvalidArgument(where + ", column " +
                                   std::to_string(CountChars(line.substr(0, used)) + 1) +
                                   ": invalid JSON: " + ec.message());
  }
  json::value v = parser.release();
  if (!v.is_object()) {
    return Status::InvalidArgument(where + ": expected a JSON object, found " +
                                   json::serialize(v).substr(0, 40));
  }
  return std::optional<json::object>(std::move(v.as_object()));
}

Status CancelledStatus(std::string_view what) {
  return Status::Cancelled(std::string(what) + ": cancelled");
}

std::optional<size_t> TableReader::Find(std::string_view name) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] == name) return i;
  }
  return std::nullopt;
}

Status TableReader::MissingColumn(std::string_view name) const {
  std::string list;
  for (const std::string& c : columns_) list += (list.empty() ? "" : ", ") + c;
  return Status::InvalidArgument(display_ + ": line 1: missing required column '" +
                                 std::string(name) + "' (columns: " + list + ")");
}

Result<std::unique_ptr<TableReader>> TableReader::Open(const fs::path& file, std::string display,
                                                       Job& job) {
  std::error_code ec;
  const fs::file_status st = fs::status(file, ec);
  if (ec || !fs::exists(st)) return Status::NotFound(display + " does not exist");
  if (!fs::is_regular_file(st)) {
    return Status::InvalidArgument(display + " is not a regular file");
  }
  const uint64_t size = FileSize(file);
  if (IsJsonLines(file)) {
    auto reader = std::make_unique<JsonLinesTableReader>(file, size);
    reader->display_ = std::move(display);
    if (Status s = reader->ReadKeys(job); !s.ok()) return s;
    return std::unique_ptr<TableReader>(std::move(reader));
  }
  Result<std::unique_ptr<CsvReader>> csv = CsvReader::Open(file, display);
  if (!csv.ok()) return csv.status();
  auto reader = std::make_unique<CsvTableReader>(std::move(csv).value(), size);
  reader->display_ = std::move(display);
  if (Status s = reader->ReadHeader(); !s.ok()) return s;
  return std::unique_ptr<TableReader>(std::move(reader));
}

Result<Table> ReadTable(const fs::path& file, std::string display, Job& job, double progress_from,
                        double progress_to) {
  Result<std::unique_ptr<TableReader>> reader = TableReader::Open(file, display, job);
  if (!reader.ok()) return reader.status();
  Table table;
  table.columns = (*reader)->columns();
  for (uint64_t n = 1;; ++n) {
    Row row;
    Result<bool> got = (*reader)->Next(&row);
    if (!got.ok()) return got.status();
    if (!*got) break;
    table.rows.push_back(std::move(row));
    if ((n & 4095) == 0) {
      if (job.cancelled()) return CancelledStatus(display);
      job.ReportProgress(progress_from + (progress_to - progress_from) * (*reader)->fraction(),
                         "reading " + display);
    }
  }
  table.content_hash = (*reader)->content_hash();
  job.ReportProgress(progress_to, "read " + display);
  return table;
}

}  // namespace bmos::engine::handlers::internal
