// Helpers of the handlers' tests: a fresh data root per test, a Job the test controls, and small
// file helpers.
//
// Thread-safety: TestJob may be read from the operation's thread while the test sets it; the
// rest belongs to the test's thread.
#ifndef BMOS_TESTS_ENGINE_HANDLERS_HANDLERS_TEST_UTIL_H_
#define BMOS_TESTS_ENGINE_HANDLERS_HANDLERS_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/clock.h"
#include "engine/handlers/csv.h"
#include "engine/handlers/data_root.h"
#include "engine/handlers/operations.h"

namespace bmos::engine::handlers::test_util {

namespace fs = std::filesystem;
namespace json = boost::json;

// A Job that records progress and turns cancelled after `cancel_after` checks (never when
// negative), or when the test calls Cancel.
class TestJob final : public Job {
 public:
  explicit TestJob(int64_t cancel_after = -1) : cancel_after_(cancel_after) {}
  bool cancelled() const override {
    const int64_t n = checks_.fetch_add(1, std::memory_order_relaxed);
    if (cancel_after_ >= 0 && n >= cancel_after_) return true;
    return cancelled_.load(std::memory_order_acquire);
  }
  void ReportProgress(double fraction, std::string_view) override {
    EXPECT_GE(fraction, 0.0);
    EXPECT_LE(fraction, 1.0 + 1e-9);
    last_progress_ = fraction;
    ++progress_calls_;
  }
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  int64_t checks() const { return checks_.load(std::memory_order_relaxed); }
  double last_progress() const { return last_progress_; }
  int progress_calls() const { return progress_calls_; }

 private:
  int64_t cancel_after_;
  mutable std::atomic<int64_t> checks_{0};
  std::atomic<bool> cancelled_{false};
  double last_progress_ = 0;
  int progress_calls_ = 0;
};

// A test with its own data root under the temporary folder, removed afterwards.
class HandlerTest : public ::testing::Test {
 protected:
  HandlerTest() {
    std::string pattern = (fs::temp_directory_path() / "bmos-handlers-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) base_ = pattern;
    root_dir_ = base_ / "root";
    Result<DataRoot> root = DataRoot::Open(root_dir_);
    EXPECT_TRUE(root.ok()) << root.status().ToString();
    if (root.ok()) ws_.emplace(Workspace{*root, &clock_});
  }
  ~HandlerTest() override {
    std::error_code ec;
    if (!base_.empty()) fs::remove_all(base_, ec);
  }

  const Workspace& ws() const { return *ws_; }
  const fs::path& root() const { return ws_->root.path(); }
  // The folder that holds the data root (for things that must lie outside it).
  const fs::path& base() const { return base_; }

  // Writes `text` to `relative` under the root (folders created).
  void Write(const std::string& relative, std::string_view text) {
    const fs::path p = root() / relative;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    ASSERT_TRUE(out.good()) << p;
  }
  std::string Read(const std::string& relative) const {
    std::ifstream in(root() / relative, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  bool Exists(const std::string& relative) const { return fs::exists(root() / relative); }
  json::value ReadJson(const std::string& relative) const { return json::parse(Read(relative)); }

  // Every file under the root, relative and sorted.
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root())) {
      if (e.is_regular_file()) out.push_back(e.path().lexically_relative(root()).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Files whose name marks them as AtomicFile temporaries.
  std::vector<std::string> TempFiles() const {
    std::vector<std::string> out;
    for (const std::string& f : Files()) {
      if (IsTempFileName(fs::path(f).filename().string())) out.push_back(f);
    }
    return out;
  }

  ManualClock clock_;
  fs::path base_;
  fs::path root_dir_;
  std::optional<Workspace> ws_;
};

inline json::object Obj(std::string_view text) { return json::parse(text).as_object(); }

inline double Num(const json::value& v) { return v.to_number<double>(); }

// The records of a CSV text (header included); a failed test when it does not parse.
inline std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::istringstream in(text);
  CsvReader reader(&in, "test.csv");
  std::vector<std::vector<std::string>> rows;
  CsvRecord record;
  for (;;) {
    Result<bool> got = reader.Next(&record);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || !*got) break;
    rows.push_back(record.fields);
  }
  return rows;
}

}  // namespace bmos::engine::handlers::test_util

#endif  // BMOS_TESTS_ENGINE_HANDLERS_HANDLERS_TEST_UTIL_H_
