// Sample BMOS data for demonstrations and tests: a sales table with the dirt real exports have,
// and customer feedback in Chinese and English.
//
// sales_data.csv: date, region, product, units, price, discount, revenue, where
//   revenue = 40 + 9.5 units + 4.2 price - 300 discount + noise (normal, sd 12)
// and, among the rows: exact duplicates (~2%), blank units or price cells (~2%), revenue with
// thousands separators ("1,234.56", quoted), dates as 2026/01/05, 05.01.2026 or 2026-1-5 (~15%),
// padded cells ("  North "), revenue outliers (x3, ~0.3%), product names with a comma or a
// quote ("Gizmo, Deluxe", `12" Monitor`), and region names in Chinese.
// feedback.jsonl: {"text", "rating", "time", "category"} per line, in Chinese and English, on
// delivery, service, price, quality and the app; some ratings are null.
//
// The output depends only on (rows, seed): the generator has its own random number generator
// and normal draws, not the standard library's distributions (which differ between libraries).
//
// Thread-safety: GenerateSampleData may run concurrently for different folders.
#ifndef BMOS_ENGINE_HANDLERS_SAMPLE_DATA_H_
#define BMOS_ENGINE_HANDLERS_SAMPLE_DATA_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "storage/status.h"

namespace bmos::engine::handlers {

struct SampleDataSummary {
  std::filesystem::path sales_file;
  std::filesystem::path feedback_file;
  uint64_t sales_rows = 0;   // data lines written (duplicates included)
  uint64_t duplicates = 0;   // exact copies of the line before
  uint64_t blank_cells = 0;  // rows with a blank units or price cell (copies included)
  uint64_t outliers = 0;     // rows with a revenue outlier (copies included)
  uint64_t feedback_lines = 0;
};

// Writes sales_data.csv (`rows` data lines, 1..10,000,000) and feedback.jsonl (max(20, rows/4)
// lines) into `dir`, created when missing; each file is written whole or not at all.
// InvalidArgument for a bad row count; IOError when a file cannot be written.
storage::Result<SampleDataSummary> GenerateSampleData(const std::filesystem::path& dir,
                                                      uint64_t rows, uint64_t seed);

}  // namespace bmos::engine::handlers

#endif  // BMOS_ENGINE_HANDLERS_SAMPLE_DATA_H_
