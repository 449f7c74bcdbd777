#include "engine/handlers/internal/clean.h"

#include <algorithm>

#include "engine/handlers/csv.h"

namespace bmos::engine::handlers::internal {

bool CleanRow::blank() const {
  return std::all_of(states.begin(), states.end(),
                     [](CellState s) { return s == CellState::kMissing; });
}

bool CleanRow::has(CellState state) const {
  return std::find(states.begin(), states.end(), state) != states.end();
}

Result<CleanTable> NormalizeTable(Table table, Job& job, double progress_from, double progress_to) {
  const size_t width = table.columns.size();
  const size_t n = table.rows.size();
  CleanTable out;
  out.columns.resize(width);
  std::vector<TypeInference> inference(width);
  const double mid = progress_from + (progress_to - progress_from) / 2;
  for (size_t r = 0; r < n; ++r) {
    Row& row = table.rows[r];
    for (size_t c = 0; c < width; ++c) {
      std::string& cell = row.values[c];
      const std::string_view trimmed = Trim(cell);
      if (trimmed.size() != cell.size()) cell = std::string(trimmed);
      inference[c].Add(cell);
    }
    if ((r & 4095) == 4095) {
      if (job.cancelled()) return CancelledStatus("cleaning");
      job.ReportProgress(
          progress_from + (mid - progress_from) * static_cast<double>(r) / static_cast<double>(n),
          "inferring column types");
    }
  }
  for (size_t c = 0; c < width; ++c) {
    out.columns[c].name = std::move(table.columns[c]);
    out.columns[c].type = inference[c].type();
    out.columns[c].date_order = inference[c].date_order();
  }
  out.rows.reserve(n);
  for (size_t r = 0; r < n; ++r) {
    Row& row = table.rows[r];
    CleanRow& clean = out.rows.emplace_back();
    clean.line = row.line;
    clean.states.assign(width, CellState::kOk);
    clean.values.resize(width);
    for (size_t c = 0; c < width; ++c) {
      std::string& cell = row.values[c];
      const CleanColumn& col = out.columns[c];
      const bool typed = col.type != ColumnType::kText && col.type != ColumnType::kEmpty;
      if (cell.empty() || (typed && IsNullMarker(cell))) {
        clean.states[c] = CellState::kMissing;
        continue;
      }
      if (!typed) {
        clean.values[c] = std::move(cell);
        continue;
      }
      std::optional<std::string> normal = NormalizeValue(cell, col.type, col.date_order);
      if (normal) {
        clean.values[c] = std::move(*normal);
      } else {
        clean.values[c] = std::move(cell);
        clean.states[c] = CellState::kInvalid;
      }
    }
    Row().values.swap(row.values);  // free the raw row as we go
    if ((r & 4095) == 4095) {
      if (job.cancelled()) return CancelledStatus("cleaning");
      job.ReportProgress(
          mid + (progress_to - mid) * static_cast<double>(r) / static_cast<double>(n),
          "normalising values");
    }
  }
  return out;
}

std::string RowKey(const CleanRow& row) {
  std::string key;
  AppendCsvRecord(&key, std::span<const std::string>(row.values));
  return key;
}

}  // namespace bmos::engine::handlers::internal
