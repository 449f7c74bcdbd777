// process_data: cleans a table (operations.h has the contract).

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "engine/handlers/csv.h"
#include "engine/handlers/internal/clean.h"
#include "engine/handlers/internal/common.h"
#include "engine/handlers/internal/io.h"
#include "engine/handlers/operations.h"

namespace bmos::engine::handlers {

namespace json = boost::json;
using namespace internal;  // NOLINT: the handlers' own helpers

namespace {

// The column process_data adds in standard mode; an input that already has it (a cleaned file
// cleaned again) loses the old one.
constexpr std::string_view kInvalidColumn = "_invalid_columns";

struct ColumnCounts {
  uint64_t missing = 0, invalid = 0, filled = 0;
};

}  // namespace

Result<json::value> ProcessData(const Workspace& ws, const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(
      TaskData fields,
      TaskData::Parse("process_data", data, {"data_source", "processing_type", "output"}));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::string source, fields.String("data_source"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<std::string> mode,
                                 fields.OptionalString("processing_type"));
  const std::string processing = mode.value_or("standard");
  if (processing != "standard" && processing != "strict") {
    return fields.Invalid("processing_type", "must be \"standard\" or \"strict\"");
  }
  const bool strict = processing == "strict";
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<std::string> output_field,
                                 fields.OptionalString("output"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef input, ResolveInput(ws, source, "data_source"));
  const std::string output_name =
      output_field ? *output_field : Beside(input.display, "_cleaned.csv");
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef output, ResolveOutput(ws, output_name, "output"));
  if (output.path == input.path) {
    return fields.Invalid("output",
                          "must differ from data_source (the input is never overwritten)");
  }

  job.ReportProgress(0, "reading " + input.display);
  BMOS_HANDLERS_ASSIGN_OR_RETURN(Table table, ReadTable(input.path, input.display, job, 0, 0.4));
  if (auto it = std::find(table.columns.begin(), table.columns.end(), kInvalidColumn);
      it != table.columns.end()) {
    const auto drop = static_cast<size_t>(it - table.columns.begin());
    table.columns.erase(it);
    for (Row& row : table.rows)
      row.values.erase(row.values.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  const uint64_t rows_in = table.rows.size();
  BMOS_HANDLERS_ASSIGN_OR_RETURN(CleanTable clean, NormalizeTable(std::move(table), job, 0.4, 0.7));
  const size_t width = clean.columns.size();

  // Blank rows and exact duplicates (after normalisation) go; the first of equal rows stays.
  uint64_t blank_rows = 0, duplicates = 0, invalid_rows = 0, incomplete_rows = 0, dropped = 0;
  std::vector<ColumnCounts> counts(width);
  std::vector<CleanRow> kept;
  kept.reserve(clean.rows.size());
  {
    std::unordered_set<std::string> seen;
    for (size_t r = 0; r < clean.rows.size(); ++r) {
      CleanRow& row = clean.rows[r];
      if ((r & 4095) == 4095 && job.cancelled()) return CancelledStatus(input.display);
      if (row.blank()) {
        ++blank_rows;
        continue;
      }
      if (!seen.insert(RowKey(row)).second) {
        ++duplicates;
        continue;
      }
      const bool invalid = row.has(CellState::kInvalid);
      const bool incomplete = row.has(CellState::kMissing);
      invalid_rows += invalid ? 1 : 0;
      incomplete_rows += incomplete ? 1 : 0;
      for (size_t c = 0; c < width; ++c) {
        if (row.states[c] == CellState::kMissing) ++counts[c].missing;
        if (row.states[c] == CellState::kInvalid) ++counts[c].invalid;
      }
      if (strict && (invalid || incomplete)) {
        ++dropped;
        continue;
      }
      kept.push_back(std::move(row));
    }
  }
  clean.rows.clear();
  job.ReportProgress(0.8, "filling missing values");

  // Standard mode: missing numeric cells take the column's median of the valid cells kept.
  uint64_t filled = 0;
  if (!strict) {
    for (size_t c = 0; c < width; ++c) {
      const CleanColumn& col = clean.columns[c];
      if (!IsNumeric(col.type) || counts[c].missing == 0) continue;
      std::vector<double> values;
      for (const CleanRow& row : kept) {
        if (row.states[c] != CellState::kOk) continue;
        if (std::optional<Number> n = ParseNumber(row.values[c])) values.push_back(n->value);
      }
      if (values.empty()) continue;
      const double median = Median(&values);
      const std::string text = col.type == ColumnType::kInteger
                                   ? std::to_string(std::llround(median))
                                   : FormatDouble(median);
      for (CleanRow& row : kept) {
        if (row.states[c] != CellState::kMissing) continue;
        row.values[c] = text;
        ++counts[c].filled;
        ++filled;
      }
    }
  }
  if (job.cancelled()) return CancelledStatus(input.display);

  job.ReportProgress(0.9, "writing " + output.display);
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file,
                                 AtomicFile::Create(output.path, output.display));
  std::string buffer;
  std::vector<std::string> header;
  for (const CleanColumn& col : clean.columns) header.push_back(col.name);
  if (!strict) header.emplace_back(kInvalidColumn);
  AppendCsvRecord(&buffer, std::span<const std::string>(header));
  std::vector<std::string> record;
  for (size_t r = 0; r < kept.size(); ++r) {
    CleanRow& row = kept[r];
    record.clear();
    for (std::string& v : row.values) record.push_back(std::move(v));
    if (!strict) {
      std::string invalid;
      for (size_t c = 0; c < width; ++c) {
        if (row.states[c] != CellState::kInvalid) continue;
        if (!invalid.empty()) invalid += ';';
        invalid += clean.columns[c].name;
      }
      record.push_back(std::move(invalid));
    }
    AppendCsvRecord(&buffer, std::span<const std::string>(record));
    if (buffer.size() >= (1u << 16)) {
      BMOS_HANDLERS_RETURN_IF_ERROR(file->Append(buffer));
      buffer.clear();
      if (job.cancelled()) return CancelledStatus(input.display);
    }
  }
  BMOS_HANDLERS_RETURN_IF_ERROR(file->Append(buffer));
  if (job.cancelled()) return CancelledStatus(input.display);
  BMOS_HANDLERS_RETURN_IF_ERROR(file->Commit());

  json::array columns;
  for (size_t c = 0; c < width; ++c) {
    columns.push_back(json::object{{"name", clean.columns[c].name},
                                   {"type", ToString(clean.columns[c].type)},
                                   {"missing", counts[c].missing},
                                   {"invalid", counts[c].invalid},
                                   {"filled", counts[c].filled}});
  }
  job.ReportProgress(1, "done");
  return json::value(json::object{
      {"data_source", input.display},
      {"output", output.display},
      {"processing_type", strict ? "strict" : "standard"},
      {"rows_in", rows_in},
      {"rows_out", kept.size()},
      {"blank_rows_removed", blank_rows},
      {"duplicates_removed", duplicates},
      {"invalid_rows", invalid_rows},
      {"incomplete_rows", incomplete_rows},
      {"rows_dropped", dropped},
      {"filled_cells", filled},
      {"columns", std::move(columns)},
  });
}

}  // namespace bmos::engine::handlers
