#include "engine/handlers/sample_data.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

#include "engine/handlers/csv.h"
#include "engine/handlers/data_root.h"
#include "engine/handlers/internal/common.h"
#include "storage/json_writer.h"

namespace bmos::engine::handlers {

namespace fs = std::filesystem;

namespace {

// SplitMix64: small, fast, and the same on every platform.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t Below(uint64_t n) { return Next() % n; }
  bool Chance(double p) { return Uniform() < p; }
  // Box-Muller.
  double Normal(double sd) {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }

 private:
  uint64_t state_;
};

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// "1,234.56" for values of 1000 and more.
std::string WithThousands(double v) {
  std::string plain = Format("%.2f", v);
  const size_t point = plain.find('.');
  std::string digits = plain.substr(0, point);
  const bool negative = !digits.empty() && digits[0] == '-';
  if (negative) digits.erase(0, 1);
  std::string grouped;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped.push_back(',');
    grouped.push_back(digits[i]);
  }
  return (negative ? "-" : "") + grouped + plain.substr(point);
}

struct Feedback {
  std::string_view text;
  std::string_view category;
  int rating_low, rating_high;
};

constexpr std::array<Feedback, 14> kFeedback = {{
    {"Delivery was slow and the package arrived late", "delivery", 1, 2},
    {"Fast delivery, great packaging", "delivery", 4, 5},
    {"Customer service was very helpful", "service", 4, 5},
    {"Customer service never answered my emails", "service", 1, 2},
    {"The price is too high for this quality", "price", 2, 3},
    {"Great quality, worth the price", "quality", 5, 5},
    {"The app crashes when I check out", "app", 1, 1},
    {"\xE7\x89\xA9\xE6\xB5\x81\xE5\xA4\xAA\xE6\x85\xA2\xE4\xBA\x86\xEF\xBC\x8C\xE7\xAD\x89\xE4\xBA"
     "\x86\xE4\xB8\x80\xE4\xB8\xAA\xE6\x98\x9F\xE6\x9C\x9F",
     "delivery", 1, 2},  // 物流太慢了，等了一个星期
    {"\xE5\xAE\xA2\xE6\x9C\x8D\xE6\x80\x81\xE5\xBA\xA6\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x8C\xE9\x97"
     "\xAE\xE9\xA2\x98\xE5\xBE\x88\xE5\xBF\xAB\xE8\xA7\xA3\xE5\x86\xB3",
     "service", 5, 5},  // 客服态度很好，问题很快解决
    {"\xE4\xBB\xB7\xE6\xA0\xBC\xE5\xA4\xAA\xE8\xB4\xB5\xEF\xBC\x8C\xE6\x80\xA7\xE4\xBB\xB7\xE6\xAF"
     "\x94\xE4\xB8\x8D\xE9\xAB\x98",
     "price", 2, 2},  // 价格太贵，性价比不高
    {"\xE8\xB4\xA8\xE9\x87\x8F\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xBC\x9A\xE5\x86\x8D\xE6\xAC"
     "\xA1\xE8\xB4\xAD\xE4\xB9\xB0",
     "quality", 5, 5},  // 质量很好，会再次购买
    {"\xE5\xBA\x94\xE7\x94\xA8\xE7\xBB\x8F\xE5\xB8\xB8\xE9\x97\xAA\xE9\x80\x80\xEF\xBC\x8C\xE4\xBD"
     "\x93\xE9\xAA\x8C\xE5\xBE\x88\xE5\xB7\xAE",
     "app", 1, 1},  // 应用经常闪退，体验很差
    {"Checkout is confusing and the app is slow", "app", 2, 3},
    {"Good value, delivery on time", "delivery", 4, 5},
}};

}  // namespace

storage::Result<SampleDataSummary> GenerateSampleData(const fs::path& dir, uint64_t rows,
                                                      uint64_t seed) {
  if (rows < 1 || rows > 10'000'000) {
    return storage::Status::InvalidArgument("sample data: rows must be 1..10000000");
  }
  SampleDataSummary summary;
  summary.sales_file = dir / "sales_data.csv";
  summary.feedback_file = dir / "feedback.jsonl";
  Random rng(seed);

  static constexpr std::array<std::string_view, 6> kRegions = {
      "North",
      "South",
      "East",
      "West",
      "\xE5\x8D\x8E\xE4\xB8\x9C" /* 华东 */,
      "\xE5\x8D\x8E\xE5\x8D\x97" /* 华南 */};
  static constexpr std::array<std::string_view, 5> kProducts = {"Widget", "Gadget", "Gizmo, Deluxe",
                                                                "12\" Monitor", "Doohickey"};
  static constexpr std::array<double, 5> kDiscounts = {0, 0.05, 0.1, 0.15, 0.2};

  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> sales,
                                 AtomicFile::Create(summary.sales_file, "sales_data.csv"));
  std::string buffer;
  const std::vector<std::string> header = {"date",  "region",   "product", "units",
                                           "price", "discount", "revenue"};
  AppendCsvRecord(&buffer, std::span<const std::string>(header));
  std::vector<std::string> record;
  std::vector<std::string> previous;
  bool previous_blank = false, previous_outlier = false;
  for (uint64_t i = 0; i < rows; ++i) {
    if (!previous.empty() && rng.Chance(0.02)) {
      AppendCsvRecord(&buffer, std::span<const std::string>(previous));
      ++summary.duplicates;
      ++summary.sales_rows;
      summary.blank_cells += previous_blank ? 1 : 0;
      summary.outliers += previous_outlier ? 1 : 0;
      continue;
    }
    const int day = static_cast<int>(rng.Below(365));
    // Day of 2025 -> month and day of month.
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int month = 0, dom = day;
    while (dom >= kDays[month]) dom -= kDays[month++];
    ++month;
    ++dom;
    char date[32];
    const double style = rng.Uniform();
    if (style < 0.05) {
      std::snprintf(date, sizeof(date), "2025/%02d/%02d", month, dom);
    } else if (style < 0.10) {
      std::snprintf(date, sizeof(date), "%02d.%02d.2025", dom, month);
    } else if (style < 0.15) {
      std::snprintf(date, sizeof(date), "2025-%d-%d", month, dom);
    } else {
      std::snprintf(date, sizeof(date), "2025-%02d-%02d", month, dom);
    }
    const auto units = static_cast<int>(1 + rng.Below(50));
    const double price = std::round((5 + rng.Uniform() * 195) * 100) / 100;
    const double discount = kDiscounts[rng.Below(kDiscounts.size())];
    double revenue = 40 + 9.5 * units + 4.2 * price - 300 * discount + rng.Normal(12);
    previous_outlier = rng.Chance(0.003);
    if (previous_outlier) {
      revenue *= 3;
      ++summary.outliers;
    }
    record.clear();
    record.emplace_back(date);
    std::string region(kRegions[rng.Below(kRegions.size())]);
    if (rng.Chance(0.01)) region = "  " + region + " ";
    record.push_back(std::move(region));
    record.emplace_back(kProducts[rng.Below(kProducts.size())]);
    record.push_back(std::to_string(units));
    record.push_back(Format("%.2f", price));
    record.push_back(Format("%g", discount));
    record.push_back(revenue >= 1000 && rng.Chance(0.3) ? WithThousands(revenue)
                                                        : Format("%.2f", revenue));
    previous_blank = rng.Chance(0.02);
    if (previous_blank) {
      record[rng.Chance(0.5) ? 3 : 4].clear();
      ++summary.blank_cells;
    }
    AppendCsvRecord(&buffer, std::span<const std::string>(record));
    previous = record;
    ++summary.sales_rows;
    if (buffer.size() >= (1u << 16)) {
      BMOS_HANDLERS_RETURN_IF_ERROR(sales->Append(buffer));
      buffer.clear();
    }
  }
  BMOS_HANDLERS_RETURN_IF_ERROR(sales->Append(buffer));
  BMOS_HANDLERS_RETURN_IF_ERROR(sales->Commit());

  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> feedback,
                                 AtomicFile::Create(summary.feedback_file, "feedback.jsonl"));
  buffer.clear();
  const uint64_t lines = std::max<uint64_t>(20, rows / 4);
  for (uint64_t i = 0; i < lines; ++i) {
    const Feedback& f = kFeedback[rng.Below(kFeedback.size())];
    const int rating =
        f.rating_low +
        static_cast<int>(rng.Below(static_cast<uint64_t>(f.rating_high - f.rating_low + 1)));
    char time[32];
    std::snprintf(time, sizeof(time), "2026-01-%02dT%02d:%02d:00Z",
                  static_cast<int>(1 + rng.Below(28)), static_cast<int>(rng.Below(24)),
                  static_cast<int>(rng.Below(60)));
    buffer += "{\"text\":";
    storage::AppendJsonString(buffer, f.text);
    buffer += ",\"rating\":";
    buffer += rng.Chance(0.05) ? "null" : std::to_string(rating);
    buffer += ",\"time\":\"";
    buffer += time;
    buffer += "\",\"category\":";
    storage::AppendJsonString(buffer, f.category);
    buffer += "}\n";
    ++summary.feedback_lines;
  }
  BMOS_HANDLERS_RETURN_IF_ERROR(feedback->Append(buffer));
  BMOS_HANDLERS_RETURN_IF_ERROR(feedback->Commit());
  return summary;
}

}  // namespace bmos::engine::handlers
