// check_data_quality: a per-column quality report (operations.h has the contract and the score).

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "engine/handlers/internal/clean.h"
#include "engine/handlers/internal/common.h"
#include "engine/handlers/internal/io.h"
#include "engine/handlers/operations.h"

namespace bmos::engine::handlers {

namespace json = boost::json;
using namespace internal;  // NOLINT: the handlers' own helpers

namespace {

constexpr double kOutlierZ = 3.5;
constexpr size_t kExamples = 5;

std::string Percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", ratio * 100);
  return buf;
}

double Round(double v, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

}  // namespace

Result<json::value> CheckDataQuality(const Workspace& ws, const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(
      TaskData fields, TaskData::Parse("check_data_quality", data, {"data_source", "output"}));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::string source, fields.String("data_source"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<std::string> output_field,
                                 fields.OptionalString("output"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef input, ResolveInput(ws, source, "data_source"));
  const std::string output_name =
      output_field ? *output_field : Beside(input.display, ".quality.json");
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef output, ResolveOutput(ws, output_name, "output"));
  if (output.path == input.path) {
    return fields.Invalid("output", "must differ from data_source");
  }

  job.ReportProgress(0, "reading " + input.display);
  BMOS_HANDLERS_ASSIGN_OR_RETURN(Table table, ReadTable(input.path, input.display, job, 0, 0.5));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(CleanTable clean, NormalizeTable(std::move(table), job, 0.5, 0.8));
  const size_t width = clean.columns.size();
  const uint64_t rows = clean.rows.size();

  uint64_t duplicate_rows = 0;
  {
    std::unordered_set<std::string> seen;
    for (const CleanRow& row : clean.rows) {
      if (!seen.insert(RowKey(row)).second) ++duplicate_rows;
    }
  }
  if (job.cancelled()) return CancelledStatus(input.display);
  job.ReportProgress(0.85, "measuring columns");

  json::array issues;
  if (rows == 0) issues.emplace_back("the file has a header but no rows");
  if (duplicate_rows > 0) {
    issues.emplace_back(std::to_string(duplicate_rows) + " duplicate rows (" +
                        Percent(static_cast<double>(duplicate_rows) / static_cast<double>(rows)) +
                        ")");
  }
  uint64_t all_cells = 0, missing_cells = 0, non_empty_cells = 0, invalid_cells = 0;
  uint64_t numeric_cells = 0, outlier_cells = 0;
  json::array column_stats;
  for (size_t c = 0; c < width; ++c) {
    if (job.cancelled()) return CancelledStatus(input.display);
    const CleanColumn& col = clean.columns[c];
    uint64_t missing = 0, invalid = 0;
    std::string first_invalid;
    uint64_t first_invalid_line = 0;
    std::unordered_set<std::string_view> distinct;
    std::vector<double> values;
    std::vector<uint64_t> lines;
    for (const CleanRow& row : clean.rows) {
      switch (row.states[c]) {
        case CellState::kMissing:
          ++missing;
          continue;
        case CellState::kInvalid:
          if (invalid++ == 0) {
            first_invalid = row.values[c];
            first_invalid_line = row.line;
          }
          break;
        case CellState::kOk:
          if (IsNumeric(col.type)) {
            if (std::optional<Number> n = ParseNumber(row.values[c])) {
              values.push_back(n->value);
              lines.push_back(row.line);
            }
          }
          break;
      }
      distinct.insert(row.values[c]);
    }
    all_cells += rows;
    missing_cells += missing;
    non_empty_cells += rows - missing;
    invalid_cells += invalid;
    const double missing_ratio =
        rows == 0 ? 0 : static_cast<double>(missing) / static_cast<double>(rows);
    json::object stats{{"name", col.name},
                       {"type", ToString(col.type)},
                       {"missing", missing},
                       {"missing_ratio", Round(missing_ratio, 4)},
                       {"distinct", distinct.size()},
                       {"invalid", invalid}};
    if (rows > 0 && missing == rows) {
      issues.emplace_back("column '" + col.name + "' is empty");
    } else if (missing > 0) {
      issues.emplace_back("column '" + col.name + "': " + std::to_string(missing) +
                          " missing values (" + Percent(missing_ratio) + ")");
    }
    if (invalid > 0) {
      issues.emplace_back("column '" + col.name + "' (" + std::string(ToString(col.type)) +
                          "): " + std::to_string(invalid) + " values are not of that type, e.g. '" +
                          first_invalid + "' at line " + std::to_string(first_invalid_line));
    }
    if (rows > 1 && distinct.size() == 1 && missing == 0) {
      issues.emplace_back("column '" + col.name + "' has a single value for every row");
    }
    if (IsNumeric(col.type) && !values.empty()) {
      const size_t n = values.size();
      numeric_cells += n;
      double sum = 0, lo = values[0], hi = values[0];
      for (const double v : values) {
        sum += v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      const double mean = sum / static_cast<double>(n);
      double squares = 0, abs_dev_mean = 0;
      for (const double v : values) squares += (v - mean) * (v - mean);
      const double sd = n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : 0;
      std::vector<double> scratch = values;
      const double median = Median(&scratch);
      for (double& v : scratch) v = std::fabs(v - median);
      for (const double v : scratch) abs_dev_mean += v;
      abs_dev_mean /= static_cast<double>(n);
      const double mad = Median(&scratch);
      // Robust z-score (Iglewicz and Hoaglin); the mean absolute deviation stands in for a
      // zero MAD (more than half the values equal).
      double scale = 0;
      if (mad > 0) {
        scale = mad / 0.6745;
      } else if (abs_dev_mean > 0) {
        scale = 1.253314 * abs_dev_mean;
      }
      uint64_t outliers = 0;
      double first_outlier = 0;
      uint64_t first_outlier_line = 0;
      json::array examples;
      if (scale > 0) {
        for (size_t i = 0; i < n; ++i) {
          const double z = (values[i] - median) / scale;
          if (std::fabs(z) <= kOutlierZ) continue;
          if (outliers++ == 0) {
            first_outlier = values[i];
            first_outlier_line = lines[i];
          }
          if (examples.size() < kExamples) {
            examples.push_back(json::object{{"line", lines[i]},
                                            {"value", JsonNumber(values[i])},
                                            {"z", JsonNumber(Round(z, 2))}});
          }
        }
      }
      outlier_cells += outliers;
      stats["min"] = JsonNumber(lo);
      stats["max"] = JsonNumber(hi);
      stats["mean"] = JsonNumber(mean);
      stats["std"] = JsonNumber(sd);
      stats["median"] = JsonNumber(median);
      stats["mad"] = JsonNumber(mad);
      stats["outliers"] = outliers;
      stats["outlier_examples"] = std::move(examples);
      if (outliers > 0) {
        issues.emplace_back("column '" + col.name + "': " + std::to_string(outliers) +
                            " outliers (robust z-score above 3.5), e.g. " +
                            FormatDouble(first_outlier) + " at line " +
                            std::to_string(first_outlier_line));
      }
    }
    column_stats.push_back(std::move(stats));
  }

  const auto ratio = [](uint64_t a, uint64_t b) {
    return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
  };
  const double m = ratio(missing_cells, all_cells);
  const double d = ratio(duplicate_rows, rows);
  const double v = ratio(invalid_cells, non_empty_cells);
  const double o = ratio(outlier_cells, numeric_cells);
  const double score =
      Round(std::clamp(100 * (1 - 0.4 * m - 0.2 * d - 0.3 * v - 0.1 * o), 0.0, 100.0), 1);

  json::object report{
      {"data_source", input.display},
      {"report", output.display},
      {"generated_at", NowIso(ws)},
      {"rows", rows},
      {"columns", width},
      {"duplicate_rows", duplicate_rows},
      {"score", score},
      {"score_parts", json::object{{"formula",
                                    "100 * (1 - 0.4*missing - 0.2*duplicates - 0.3*invalid - "
                                    "0.1*outliers), clamped to [0, 100]"},
                                   {"missing", Round(m, 4)},
                                   {"duplicates", Round(d, 4)},
                                   {"invalid", Round(v, 4)},
                                   {"outliers", Round(o, 4)}}},
      {"issues", std::move(issues)},
      {"column_stats", std::move(column_stats)},
  };
  if (job.cancelled()) return CancelledStatus(input.display);
  job.ReportProgress(0.95, "writing " + output.display);
  BMOS_HANDLERS_RETURN_IF_ERROR(
      WriteFileAtomically(output.path, JsonFileText(report), output.display));
  job.ReportProgress(1, "done");
  return json::value(std::move(report));
}

}  // namespace bmos::engine::handlers
