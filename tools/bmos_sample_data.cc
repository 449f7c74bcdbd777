// bmos-sample-data: writes the sample BMOS data that the handlers' walk-through (README) uses:
// sales_data.csv (a sales table with dirty rows) and feedback.jsonl (customer feedback in
// Chinese and English). engine/handlers/sample_data.h describes the files.
//
//   bmos-sample-data --out DIR [--rows N] [--seed S]
//
// Exit status: 0 on success, 1 when the files cannot be written, 2 for bad flags.
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/handlers/sample_data.h"

namespace {

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: bmos-sample-data --out DIR [--rows N] [--seed S]\n"
               "  --out DIR   folder to write sales_data.csv and feedback.jsonl into (created)\n"
               "  --rows N    data rows of sales_data.csv, 1..10000000 (default 1000)\n"
               "  --seed S    seed of the generator; equal seeds give equal files (default 42)\n");
}

bool ParseUint(std::string_view text, uint64_t* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  uint64_t rows = 1000;
  uint64_t seed = 42;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      PrintUsage(stdout);
      return 0;
    }
    // "--flag value" and "--flag=value".
    std::string_view name = arg, value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    } else if (i + 1 < argc) {
      value = argv[i + 1];
    }
    const auto take = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      ++i;
      return true;
    };
    if (name == "--out" && take()) {
      out = std::string(value);
    } else if (name == "--rows" && take()) {
      if (!ParseUint(value, &rows)) {
        std::fprintf(stderr, "bmos-sample-data: --rows must be a number\n");
        return 2;
      }
    } else if (name == "--seed" && take()) {
      if (!ParseUint(value, &seed)) {
        std::fprintf(stderr, "bmos-sample-data: --seed must be a number\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "bmos-sample-data: unknown or incomplete flag '%s'\n", argv[i]);
      PrintUsage(stderr);
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "bmos-sample-data: --out is required\n");
    PrintUsage(stderr);
    return 2;
  }
  bmos::storage::Result<bmos::engine::handlers::SampleDataSummary> summary =
      bmos::engine::handlers::GenerateSampleData(out, rows, seed);
  if (!summary.ok()) {
    const bool usage = summary.status().code() == bmos::storage::Status::Code::kInvalidArgument;
    std::fprintf(stderr, "bmos-sample-data: %s\n", summary.status().ToString().c_str());
    return usage ? 2 : 1;
  }
  std::printf("%s: %llu rows (%llu duplicates, %llu blank cells, %llu outliers)\n",
              summary->sales_file.c_str(), static_cast<unsigned long long>(summary->sales_rows),
              static_cast<unsigned long long>(summary->duplicates),
              static_cast<unsigned long long>(summary->blank_cells),
              static_cast<unsigned long long>(summary->outliers));
  std::printf("%s: %llu lines\n", summary->feedback_file.c_str(),
              static_cast<unsigned long long>(summary->feedback_lines));
  return 0;
}
