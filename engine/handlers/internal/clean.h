// A table with its cells trimmed and normalised to their column's inferred type: what
// process_data writes and check_data_quality measures.
//
// Thread-safety: values and pure functions.
#ifndef BMOS_ENGINE_HANDLERS_INTERNAL_CLEAN_H_
#define BMOS_ENGINE_HANDLERS_INTERNAL_CLEAN_H_

#include <string>
#include <vector>

#include "engine/handlers/internal/table.h"
#include "engine/handlers/internal/values.h"

namespace bmos::engine::handlers::internal {

enum class CellState : uint8_t {
  kOk,       // fits the column's type (or the column is text)
  kMissing,  // empty, or a null marker in a typed column; the cell is ""
  kInvalid,  // does not fit the column's type; the cell holds the trimmed value
};

struct CleanColumn {
  std::string name;
  ColumnType type = ColumnType::kText;
  DateOrder date_order = DateOrder::kUnknown;
};

struct CleanRow {
  std::vector<std::string> values;
  std::vector<CellState> states;
  uint64_t line = 0;
  bool blank() const;  // every cell missing
  bool has(CellState state) const;
};

struct CleanTable {
  std::vector<CleanColumn> columns;
  std::vector<CleanRow> rows;
};

// Trims every cell, infers each column's type and normalises the cells. Checks the job for
// cancellation (Cancelled) and reports progress within [progress_from, progress_to].
Result<CleanTable> NormalizeTable(Table table, Job& job, double progress_from, double progress_to);

// A key equal for rows with equal cells and different otherwise (the cells as a CSV record).
std::string RowKey(const CleanRow& row);

}  // namespace bmos::engine::handlers::internal

#endif  // BMOS_ENGINE_HANDLERS_INTERNAL_CLEAN_H_
