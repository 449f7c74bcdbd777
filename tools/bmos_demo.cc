// bmos-demo: runs BMOS-like background work on the embedded engine (memory mode) and prints what
// happened, step by step: typed tasks, priorities, retries with backoff, cancellation, timeouts,
// unique keys, a bulk run, the dead-letter view, statistics and a graceful stop.
//
// The handlers do small real computations on generated data (CSV parsing, data-quality figures, a
// least-squares fit, predictions, a cleanup plan) so that the run time and queue-wait figures mean
// something. Exit status: 0 when every step behaved as the task model says, 1 with a message on
// stderr otherwise, 2 for bad flags.

#include <algorithm>
#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/options.h"
#include "engine/task_context.h"
#include "engine/typed_task.h"
#include "storage/status.h"
#include "storage/task_record.h"

namespace {

namespace json = boost::json;
using bmos::engine::CallOptions;
using bmos::engine::Engine;
using bmos::engine::EngineOptions;
using bmos::engine::EngineStats;
using bmos::engine::EnqueueRequest;
using bmos::engine::EnqueueResult;
using bmos::engine::HandlerOptions;
using bmos::engine::HandlerResult;
using bmos::engine::TaskContext;
using bmos::engine::TaskDef;
using bmos::engine::WorkerGroupOptions;
using bmos::storage::ListPage;
using bmos::storage::ListQuery;
using bmos::storage::Priority;
using bmos::storage::Result;
using bmos::storage::Status;
using bmos::storage::TaskId;
using bmos::storage::TaskRecord;
using bmos::storage::TaskState;
using std::chrono::milliseconds;

constexpr milliseconds kWaitDeadline{10'000};  // no step of the demo should take this long
constexpr int kMaxTasks = 1'000'000;

// ----------------------------------------------------------------------------------------------
// Output and error plumbing.

struct Flags {
  int tasks = 2000;
  bool quiet = false;
};

bool g_quiet = false;
const auto g_start = std::chrono::steady_clock::now();

double MillisSinceStart() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - g_start)
      .count();
}

// printf to stdout unless --quiet.
__attribute__((format(printf, 1, 2))) void Say(const char* format, ...) {
  if (g_quiet) return;
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
}

void Section(const char* title) { Say("\n== %s\n", title); }

// `s` with `what` in front of its message, keeping its code.
Status Annotate(const Status& s, const std::string& what) {
  return Status(s.code(), what + ": " + s.message());
}

// An outcome that contradicts the task model (a bug in the engine, or in this demo).
Status Unexpected(const std::string& what) { return Status::Internal("unexpected: " + what); }

#define DEMO_CONCAT_INNER(a, b) a##b
#define DEMO_CONCAT(a, b) DEMO_CONCAT_INNER(a, b)

// Returns from the enclosing function (which returns Status) if `expr` is not OK.
#define DEMO_RETURN_IF_ERROR(expr, what)                         \
  do {                                                           \
    Status demo_status_ = (expr);                                \
    if (!demo_status_.ok()) return Annotate(demo_status_, what); \
  } while (0)

// Declares `lhs` from a Result<T> or returns its error from the enclosing function.
#define DEMO_ASSIGN_OR_RETURN(lhs, expr, what) \
  DEMO_ASSIGN_OR_RETURN_IMPL(DEMO_CONCAT(demo_result_, __LINE__), lhs, expr, what)
#define DEMO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr, what) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return Annotate(tmp.status(), what);    \
  lhs = std::move(tmp).value()

std::string Fixed(double v, int decimals = 2) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// JSON text as JSON, but with numbers written for people (Boost.JSON writes 2.5 as 2.5E0).
void AppendReadable(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : v.get_object()) {
        if (!first) out += ", ";
        first = false;
        out += key;
        out += ": ";
        AppendReadable(value, out);
      }
      out += '}';
      break;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const json::value& e : v.get_array()) {
        if (!first) out += ", ";
        first = false;
        AppendReadable(e, out);
      }
      out += ']';
      break;
    }
    case json::kind::double_: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.10g", v.get_double());
      out += buf;
      break;
    }
    default:
      out += json::serialize(v);
  }
}

std::string Readable(const std::string& json_text) {
  json::error_code ec;
  json::value v = json::parse(json_text, ec);
  if (ec) return json_text;
  std::string out;
  AppendReadable(v, out);
  return out;
}

double RoundTo(double v, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

// NUL-terminated names for printf (ToString returns string_views).
const char* StateName(TaskState s) {
  static const auto* names = [] {
    auto* n = new std::vector<std::string>();
    for (int i = 0; i < bmos::storage::kTaskStateCount; ++i) {
      n->emplace_back(bmos::storage::ToString(static_cast<TaskState>(i)));
    }
    return n;
  }();
  return (*names)[static_cast<size_t>(s)].c_str();
}
const char* PriorityName(Priority p) {
  static const auto* names = [] {
    auto* n = new std::vector<std::string>();
    for (int i = 0; i < bmos::storage::kPriorityCount; ++i) {
      n->emplace_back(bmos::storage::ToString(static_cast<Priority>(i)));
    }
    return n;
  }();
  return (*names)[static_cast<size_t>(p)].c_str();
}

// Milliseconds a finished task spent running its last attempt.
double RunMillis(const TaskRecord& r) {
  return r.completed_ms >= r.started_ms && r.started_ms > 0
             ? static_cast<double>(r.completed_ms - r.started_ms)
             : 0.0;
}

// Waits for `id` and checks that it ended in `want`.
Result<TaskRecord> WaitFor(Engine& engine, const TaskId& id, TaskState want) {
  Result<TaskRecord> r = engine.Wait(id, kWaitDeadline);
  if (!r.ok()) return Annotate(r.status(), "wait for " + id.ToString());
  if (r->state != want) {
    return Unexpected("task " + r->spec->name + " " + id.ToString() + " ended " +
                      StateName(r->state) + ", expected " + StateName(want) +
                      (r->error.empty() ? "" : " (error: " + r->error + ")"));
  }
  return r;
}

// Times, relative to the demo's start, at which attempts of a task began (for the retry step).
class AttemptLog {
 public:
  void Record(const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu_);
    times_[task_id].push_back(MillisSinceStart());
  }
  // "+0, +53, +161 ms" relative to the first attempt.
  std::string Describe(const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<double>& t = times_[task_id];
    std::string out;
    for (double v : t) {
      if (!out.empty()) out += ", ";
      out += "+" + Fixed(v - t.front(), 0);
    }
    return out + " ms";
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<double>> times_;
};
AttemptLog g_attempts;

// Order in which handlers started (for the priority step).
std::atomic<uint64_t> g_start_seq{0};

// ----------------------------------------------------------------------------------------------
// Task arguments and their JSON conversions (found by Boost.JSON through argument-dependent
// lookup of tag_invoke).

template <typename T>
T Field(const json::value& jv, std::string_view key) {
  return json::value_to<T>(jv.as_object().at(key));
}

struct ProcessDataArgs {
  std::string file;
  int rows = 200;
  uint64_t seed = 1;
};
void tag_invoke(const json::value_from_tag&, json::value& jv, const ProcessDataArgs& a) {
  jv = {{"file", a.file}, {"rows", a.rows}, {"seed", a.seed}};
}
ProcessDataArgs tag_invoke(const json::value_to_tag<ProcessDataArgs>&, const json::value& jv) {
  return {.file = Field<std::string>(jv, "file"),
          .rows = Field<int>(jv, "rows"),
          .seed = Field<uint64_t>(jv, "seed")};
}

struct QualityArgs {
  std::string dataset;
  int rows = 500;
  int columns = 6;
  double missing_rate = 0.03;
  uint64_t seed = 1;
};
void tag_invoke(const json::value_from_tag&, json::value& jv, const QualityArgs& a) {
  jv = {{"dataset", a.dataset},
        {"rows", a.rows},
        {"columns", a.columns},
        {"missing_rate", a.missing_rate},
        {"seed", a.seed}};
}
QualityArgs tag_invoke(const json::value_to_tag<QualityArgs>&, const json::value& jv) {
  return {.dataset = Field<std::string>(jv, "dataset"),
          .rows = Field<int>(jv, "rows"),
          .columns = Field<int>(jv, "columns"),
          .missing_rate = Field<double>(jv, "missing_rate"),
          .seed = Field<uint64_t>(jv, "seed")};
}

struct TrainArgs {
  std::string model;
  int points = 200;
  int64_t epochs = 2000;
  uint64_t seed = 1;
};
void tag_invoke(const json::value_from_tag&, json::value& jv, const TrainArgs& a) {
  jv = {{"model", a.model}, {"points", a.points}, {"epochs", a.epochs}, {"seed", a.seed}};
}
TrainArgs tag_invoke(const json::value_to_tag<TrainArgs>&, const json::value& jv) {
  return {.model = Field<std::string>(jv, "model"),
          .points = Field<int>(jv, "points"),
          .epochs = Field<int64_t>(jv, "epochs"),
          .seed = Field<uint64_t>(jv, "seed")};
}

struct PredictArgs {
  std::string model;
  double slope = 1;
  double intercept = 0;
  int count = 1000;
  uint64_t seed = 1;
};
void tag_invoke(const json::value_from_tag&, json::value& jv, const PredictArgs& a) {
  jv = {{"model", a.model},
        {"slope", a.slope},
        {"intercept", a.intercept},
        {"count", a.count},
        {"seed", a.seed}};
}
PredictArgs tag_invoke(const json::value_to_tag<PredictArgs>&, const json::value& jv) {
  return {.model = Field<std::string>(jv, "model"),
          .slope = Field<double>(jv, "slope"),
          .intercept = Field<double>(jv, "intercept"),
          .count = Field<int>(jv, "count"),
          .seed = Field<uint64_t>(jv, "seed")};
}

struct CleanupArgs {
  int older_than_days = 30;
  int entries = 2000;
  uint64_t seed = 1;
};
void tag_invoke(const json::value_from_tag&, json::value& jv, const CleanupArgs& a) {
  jv = {{"older_than_days", a.older_than_days}, {"entries", a.entries}, {"seed", a.seed}};
}
CleanupArgs tag_invoke(const json::value_to_tag<CleanupArgs>&, const json::value& jv) {
  return {.older_than_days = Field<int>(jv, "older_than_days"),
          .entries = Field<int>(jv, "entries"),
          .seed = Field<uint64_t>(jv, "seed")};
}

struct FeedbackArgs {
  std::string source;
  int failing_attempts = 0;  // the first N attempts fail (the source is "unreachable")
  int items = 300;
  uint64_t seed = 1;
};
void tag_invoke(const json::value_from_tag&, json::value& jv, const FeedbackArgs& a) {
  jv = {{"source", a.source},
        {"failing_attempts", a.failing_attempts},
        {"items", a.items},
        {"seed", a.seed}};
}
FeedbackArgs tag_invoke(const json::value_to_tag<FeedbackArgs>&, const json::value& jv) {
  return {.source = Field<std::string>(jv, "source"),
          .failing_attempts = Field<int>(jv, "failing_attempts"),
          .items = Field<int>(jv, "items"),
          .seed = Field<uint64_t>(jv, "seed")};
}

// ----------------------------------------------------------------------------------------------
// Handlers.

std::string MakeSalesCsv(int rows, uint64_t seed) {
  static constexpr const char* kCategories[] = {"hardware", "software", "services", "training"};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> amount(5.0, 5000.0);
  std::string csv = "order_id,customer,amount,category\n";
  csv.reserve(static_cast<size_t>(rows) * 40);
  char buf[64];
  for (int i = 0; i < rows; ++i) {
    uint64_t kind = rng() % 25;  // 0: empty amount, 1: "n/a", 2: missing column, else valid
    std::snprintf(buf, sizeof(buf), "%d,C%03u,", i + 1, static_cast<unsigned>(rng() % 500));
    csv += buf;
    if (kind == 1) {
      csv += "n/a";
    } else if (kind != 0) {
      std::snprintf(buf, sizeof(buf), "%.2f", amount(rng));
      csv += buf;
    }
    if (kind != 2) {
      csv += ',';
      csv += kCategories[rng() % 4];
    }
    csv += '\n';
  }
  return csv;
}

// process_data: cleans a (generated) sales CSV: counts rows, rejects invalid ones, sums amounts
// per category.
HandlerResult ProcessData(const ProcessDataArgs& args, TaskContext& ctx) {
  if (args.rows < 0 || args.rows > 1'000'000) return Status::InvalidArgument("rows out of range");
  const std::string csv = MakeSalesCsv(args.rows, args.seed);
  std::string_view rest = csv;
  rest.remove_prefix(rest.find('\n') + 1);  // header
  int64_t rows = 0, invalid = 0;
  double total = 0;
  std::map<std::string, double, std::less<>> by_category;
  while (!rest.empty()) {
    if (rows % 4096 == 0 && ctx.cancelled()) return Status::Cancelled("stopped while parsing");
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    ++rows;
    std::string_view fields[4];
    int n = 0;
    for (size_t start = 0; n < 4;) {
      size_t comma = line.find(',', start);
      fields[n++] = line.substr(start, comma - start);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    double amount = 0;
    std::string_view a = n == 4 ? fields[2] : std::string_view();
    auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), amount);
    if (n != 4 || a.empty() || ec != std::errc() || end != a.data() + a.size() ||
        fields[3].empty()) {
      ++invalid;
      continue;
    }
    total += amount;
    by_category[std::string(fields[3])] += amount;
  }
  json::object categories;
  for (const auto& [name, sum] : by_category) categories[name] = RoundTo(sum, 2);
  json::object out;
  out["file"] = args.file;
  out["rows"] = rows;
  out["valid_rows"] = rows - invalid;
  out["invalid_rows"] = invalid;
  out["total_amount"] = RoundTo(total, 2);
  out["by_category"] = std::move(categories);
  return json::value(std::move(out));
}

// check_data_quality: the missing-value ratio and column means of a generated table; the check
// passes when at most 5% of the cells are missing.
HandlerResult CheckDataQuality(const QualityArgs& args, TaskContext&) {
  if (args.rows <= 0 || args.columns <= 0 ||
      args.rows * static_cast<int64_t>(args.columns) > 10'000'000) {
    return Status::InvalidArgument("rows and columns must be positive and at most 1e7 cells");
  }
  std::mt19937_64 rng(args.seed);
  std::bernoulli_distribution missing(std::clamp(args.missing_rate, 0.0, 1.0));
  std::normal_distribution<double> value(100.0, 15.0);
  std::vector<double> sum(args.columns, 0);
  std::vector<int64_t> present(args.columns, 0);
  int64_t missing_cells = 0;
  for (int r = 0; r < args.rows; ++r) {
    for (int c = 0; c < args.columns; ++c) {
      double v = missing(rng) ? std::numeric_limits<double>::quiet_NaN() : value(rng) + c * 10;
      if (std::isnan(v)) {
        ++missing_cells;
      } else {
        sum[c] += v;
        ++present[c];
      }
    }
  }
  const double cells = static_cast<double>(args.rows) * args.columns;
  const double ratio = missing_cells / cells;
  int worst = 0;
  json::array means;
  for (int c = 0; c < args.columns; ++c) {
    means.push_back(present[c] ? RoundTo(sum[c] / present[c], 2) : 0.0);
    if (present[c] < present[worst]) worst = c;
  }
  json::object out;
  out["dataset"] = args.dataset;
  out["cells"] = static_cast<int64_t>(cells);
  out["missing_ratio"] = RoundTo(ratio, 4);
  out["column_means"] = std::move(means);
  out["worst_column"] = worst;
  out["passed"] = ratio <= 0.05;
  return json::value(std::move(out));
}

// train_model: fits y = slope*x + intercept to generated points (true line 3.5x - 2 plus noise)
// by gradient descent, reporting progress and stopping when the cancel token is set. The closed
// form least-squares fit is reported next to it as a check.
HandlerResult TrainModel(const TrainArgs& args, TaskContext& ctx) {
  if (args.points < 2 || args.points > 1'000'000 || args.epochs < 1) {
    return Status::InvalidArgument("need 2..1e6 points and at least one epoch");
  }
  std::mt19937_64 rng(args.seed);
  std::uniform_real_distribution<double> ux(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.3);
  std::vector<double> x(args.points), y(args.points);
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < args.points; ++i) {
    x[i] = ux(rng);
    y[i] = 3.5 * x[i] - 2.0 + noise(rng);
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const double n = args.points;
  const double ols_slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const double ols_intercept = (sy - ols_slope * sx) / n;

  double w = 0, b = 0;
  constexpr double kLearningRate = 0.5;
  // About 50 reports per run, and at least every 20,000 epochs (a few ms) for long ones.
  const int64_t report_every = std::clamp<int64_t>(args.epochs / 50, 1, 20'000);
  for (int64_t epoch = 0; epoch < args.epochs; ++epoch) {
    if (ctx.cancelled()) {
      return Status::Cancelled("training stopped at epoch " + std::to_string(epoch));
    }
    double gw = 0, gb = 0;
    for (int i = 0; i < args.points; ++i) {
      double err = w * x[i] + b - y[i];
      gw += err * x[i];
      gb += err;
    }
    w -= kLearningRate * 2 * gw / n;
    b -= kLearningRate * 2 * gb / n;
    if (epoch % report_every == 0) {
      ctx.ReportProgress(static_cast<double>(epoch) / static_cast<double>(args.epochs),
                         "epoch " + std::to_string(epoch) + "/" + std::to_string(args.epochs));
    }
  }
  double mse = 0;
  for (int i = 0; i < args.points; ++i) mse += (w * x[i] + b - y[i]) * (w * x[i] + b - y[i]);
  ctx.ReportProgress(1.0, "done");
  json::object out;
  out["model"] = args.model;
  out["slope"] = RoundTo(w, 4);
  out["intercept"] = RoundTo(b, 4);
  out["mse"] = RoundTo(mse / n, 5);
  out["ols_slope"] = RoundTo(ols_slope, 4);
  out["ols_intercept"] = RoundTo(ols_intercept, 4);
  out["epochs"] = args.epochs;
  return json::value(std::move(out));
}

// batch_predictions: scores generated inputs with a linear model and summarises the scores.
HandlerResult BatchPredictions(const PredictArgs& args, TaskContext& ctx) {
  const uint64_t seq = g_start_seq.fetch_add(1, std::memory_order_relaxed);  // a statistic only
  if (args.count < 0 || args.count > 10'000'000) return Status::InvalidArgument("bad count");
  std::mt19937_64 rng(args.seed);
  std::uniform_real_distribution<double> ux(0.0, 1.0);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  int64_t positive = 0;
  for (int i = 0; i < args.count; ++i) {
    if (i % 65536 == 0 && ctx.cancelled()) return Status::Cancelled("stopped while scoring");
    double p = args.slope * ux(rng) + args.intercept;
    lo = std::min(lo, p);
    hi = std::max(hi, p);
    sum += p;
    positive += p > 0;
  }
  json::object out;
  out["model"] = args.model;
  out["count"] = args.count;
  out["mean"] = args.count ? RoundTo(sum / args.count, 4) : 0.0;
  out["min"] = args.count ? RoundTo(lo, 4) : 0.0;
  out["max"] = args.count ? RoundTo(hi, 4) : 0.0;
  out["positive_share"] = args.count ? RoundTo(static_cast<double>(positive) / args.count, 4) : 0.0;
  out["start_seq"] = seq;
  return json::value(std::move(out));
}

// system_cleanup: plans the removal of old temporary artefacts (a generated listing of ages and
// sizes): what goes, how many bytes that frees.
HandlerResult SystemCleanup(const CleanupArgs& args, TaskContext&) {
  if (args.entries < 0 || args.older_than_days < 0) return Status::InvalidArgument("negative");
  std::mt19937_64 rng(args.seed);
  std::uniform_int_distribution<int> age_days(0, 90);
  std::lognormal_distribution<double> size(11.0, 1.5);  // median ~60 KB
  int64_t removed = 0, kept = 0;
  double freed = 0;
  int oldest_kept = 0;
  for (int i = 0; i < args.entries; ++i) {
    int age = age_days(rng);
    double bytes = size(rng);
    if (age > args.older_than_days) {
      ++removed;
      freed += bytes;
    } else {
      ++kept;
      oldest_kept = std::max(oldest_kept, age);
    }
  }
  json::object out;
  out["scanned"] = args.entries;
  out["removed"] = removed;
  out["kept"] = kept;
  out["freed_mb"] = RoundTo(freed / (1024.0 * 1024.0), 1);
  out["oldest_kept_days"] = oldest_kept;
  return json::value(std::move(out));
}

// sync_feedback: pulls user feedback from a source and extracts "enterprise memory" (average
// rating, complaint share, most frequent topic). The first `failing_attempts` attempts fail as an
// unreachable source would: the first one by throwing, later ones by returning an error.
HandlerResult SyncFeedback(const FeedbackArgs& args, TaskContext& ctx) {
  g_attempts.Record(ctx.id_string());
  if (ctx.attempt() <= args.failing_attempts) {
    if (ctx.attempt() == 1) {
      throw std::runtime_error("connection reset by peer while reading '" + args.source + "'");
    }
    return Status::Unavailable("feedback source '" + args.source + "' unreachable (attempt " +
                               std::to_string(ctx.attempt()) + ")");
  }
  static constexpr const char* kTopics[] = {"latency", "pricing", "accuracy", "ui", "support"};
  std::mt19937_64 rng(args.seed);
  std::uniform_int_distribution<int> rating(1, 5);
  std::map<std::string, int> topics;
  int64_t total = 0, complaints = 0;
  for (int i = 0; i < args.items; ++i) {
    int r = rating(rng);
    total += r;
    if (r <= 2) {
      ++complaints;
      ++topics[kTopics[rng() % 5]];
    }
  }
  std::string top = "none";
  int top_count = 0;
  for (const auto& [topic, count] : topics) {
    if (count > top_count) {
      top = topic;
      top_count = count;
    }
  }
  json::object out;
  out["source"] = args.source;
  out["items"] = args.items;
  out["avg_rating"] = args.items ? RoundTo(static_cast<double>(total) / args.items, 2) : 0.0;
  out["complaint_share"] =
      args.items ? RoundTo(static_cast<double>(complaints) / args.items, 3) : 0.0;
  out["top_complaint"] = top;
  return json::value(std::move(out));
}

// ----------------------------------------------------------------------------------------------
// The demo.

// Handler defaults (the decorator's arguments) and per-call overrides are built field by field:
// GCC's -Wmissing-field-initializers rejects designated initializers that leave out members
// without default member initializers (the std::optional ones).
HandlerOptions Defaults(std::string queue, Priority priority,
                        std::optional<int32_t> max_retries = std::nullopt) {
  HandlerOptions o;
  o.queue = std::move(queue);
  o.priority = priority;
  o.max_retries = max_retries;
  return o;
}

CallOptions WithPriority(Priority priority, std::string queue = {}) {
  CallOptions o;
  o.priority = priority;
  o.queue = std::move(queue);
  return o;
}

struct Tasks {
  TaskDef<ProcessDataArgs> process_data;
  TaskDef<QualityArgs> check_data_quality;
  TaskDef<TrainArgs> train_model;
  TaskDef<PredictArgs> batch_predictions;
  TaskDef<CleanupArgs> system_cleanup;
  TaskDef<FeedbackArgs> sync_feedback;
};

Result<Tasks> DefineTasks(Engine& engine) {
  // Handler defaults mirror the first design's decorators: queue and priority per task type.
  DEMO_ASSIGN_OR_RETURN(
      auto process_data,
      TaskDef<ProcessDataArgs>::Define(engine, "process_data",
                                       Defaults("default", Priority::kNormal), ProcessData),
      "define process_data");
  DEMO_ASSIGN_OR_RETURN(
      auto quality,
      TaskDef<QualityArgs>::Define(engine, "check_data_quality", Defaults("high", Priority::kHigh),
                                   CheckDataQuality),
      "define check_data_quality");
  DEMO_ASSIGN_OR_RETURN(
      auto train,
      TaskDef<TrainArgs>::Define(engine, "train_model", Defaults("ml", Priority::kNormal, 1),
                                 TrainModel),
      "define train_model");
  DEMO_ASSIGN_OR_RETURN(
      auto predict,
      TaskDef<PredictArgs>::Define(engine, "batch_predictions", Defaults("ml", Priority::kNormal),
                                   BatchPredictions),
      "define batch_predictions");
  DEMO_ASSIGN_OR_RETURN(
      auto cleanup,
      TaskDef<CleanupArgs>::Define(engine, "system_cleanup", Defaults("default", Priority::kLow),
                                   SystemCleanup),
      "define system_cleanup");
  DEMO_ASSIGN_OR_RETURN(
      auto feedback,
      TaskDef<FeedbackArgs>::Define(engine, "sync_feedback",
                                    Defaults("default", Priority::kNormal, 3), SyncFeedback),
      "define sync_feedback");
  return Tasks{std::move(process_data), std::move(quality), std::move(train),
               std::move(predict),      std::move(cleanup), std::move(feedback)};
}

void PrintDone(const char* label, const TaskRecord& r) {
  Say("  %-20s %-9s attempt %d  run %3.0f ms  %s\n", label, StateName(r.state), r.retry_count + 1,
      RunMillis(r),
      r.state == TaskState::kCompleted ? Readable(r.result_json).c_str() : r.error.c_str());
}

// Step 1: one task of each kind through the typed API, then their results.
Status StepTypedTasks(Engine& engine, const Tasks& t, double* slope, double* intercept) {
  Section("1. Typed tasks: one of each, enqueued with TaskDef<Args>::Delay, then Wait()");
  DEMO_ASSIGN_OR_RETURN(TaskId csv,
                        t.process_data.Delay({.file = "sales_2026_01.csv", .rows = 400}),
                        "enqueue process_data");
  DEMO_ASSIGN_OR_RETURN(TaskId quality,
                        t.check_data_quality.Delay({.dataset = "customers", .seed = 7}),
                        "enqueue check_data_quality");
  DEMO_ASSIGN_OR_RETURN(TaskId train,
                        t.train_model.Delay({.model = "churn-v1", .points = 500, .epochs = 3000}),
                        "enqueue train_model");
  DEMO_ASSIGN_OR_RETURN(TaskId cleanup, t.system_cleanup.Delay({.older_than_days = 30}),
                        "enqueue system_cleanup");
  Say("  enqueued 4 tasks; first id %s (UUIDv7, time-ordered)\n", csv.ToString().c_str());

  for (const auto& [label, id] :
       {std::pair{"process_data", csv}, std::pair{"check_data_quality", quality},
        std::pair{"system_cleanup", cleanup}}) {
    DEMO_ASSIGN_OR_RETURN(TaskRecord r, WaitFor(engine, id, TaskState::kCompleted), label);
    PrintDone(label, r);
  }
  DEMO_ASSIGN_OR_RETURN(TaskRecord r, WaitFor(engine, train, TaskState::kCompleted), "train_model");
  PrintDone("train_model", r);
  json::value result = json::parse(r.result_json);
  *slope = result.as_object().at("slope").to_number<double>();
  *intercept = result.as_object().at("intercept").to_number<double>();

  DEMO_ASSIGN_OR_RETURN(
      TaskId predict,
      t.batch_predictions.Delay(
          {.model = "churn-v1", .slope = *slope, .intercept = *intercept, .count = 20000}),
      "enqueue batch_predictions");
  DEMO_ASSIGN_OR_RETURN(TaskRecord p, WaitFor(engine, predict, TaskState::kCompleted),
                        "batch_predictions");
  PrintDone("batch_predictions", p);
  Say("  (the trained model's slope/intercept went into batch_predictions' arguments)\n");
  return Status::Ok();
}

// Polls until `id` is RUNNING (bounded by kWaitDeadline).
Status AwaitRunning(Engine& engine, const TaskId& id, TaskRecord* out) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    DEMO_ASSIGN_OR_RETURN(*out, engine.Get(id), "get " + id.ToString());
    if (out->state == TaskState::kRunning) return Status::Ok();
    if (bmos::storage::IsTerminal(out->state)) {
      return Unexpected("task ended " + std::string(StateName(out->state)) +
                        " before it was seen RUNNING");
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return Status::DeadlineExceeded("task " + id.ToString() + " never started");
}

// Step 2: with the single ml worker busy, tasks of the four priorities queue up; they start
// CRITICAL first.
Status StepPriorities(Engine& engine, const Tasks& t, double slope, double intercept) {
  Section("2. Priorities: ml queue (1 worker) busy; LOW, NORMAL, HIGH, CRITICAL enqueued in turn");
  DEMO_ASSIGN_OR_RETURN(
      TaskId blocker,
      t.train_model.Delay({.model = "blocker", .points = 200, .epochs = 200'000, .seed = 3}),
      "enqueue blocker");
  TaskRecord running;
  DEMO_RETURN_IF_ERROR(AwaitRunning(engine, blocker, &running), "priorities");
  std::vector<std::pair<Priority, TaskId>> ids;
  for (Priority p : {Priority::kLow, Priority::kNormal, Priority::kHigh, Priority::kCritical}) {
    DEMO_ASSIGN_OR_RETURN(
        EnqueueResult r,
        t.batch_predictions.ApplyAsync(
            {.model = "churn-v1", .slope = slope, .intercept = intercept, .count = 5000},
            WithPriority(p)),
        "enqueue prediction");
    ids.emplace_back(p, r.id);
  }
  DEMO_ASSIGN_OR_RETURN(TaskRecord b, WaitFor(engine, blocker, TaskState::kCompleted), "blocker");
  std::vector<std::pair<uint64_t, Priority>> order;
  for (const auto& [p, id] : ids) {
    DEMO_ASSIGN_OR_RETURN(TaskRecord r, WaitFor(engine, id, TaskState::kCompleted), "prediction");
    order.emplace_back(json::parse(r.result_json).as_object().at("start_seq").to_number<uint64_t>(),
                       p);
  }
  std::sort(order.begin(), order.end());
  std::string started;
  bool strict = true;
  for (size_t i = 0; i < order.size(); ++i) {
    started += (i ? " -> " : "") + std::string(PriorityName(order[i].second));
    if (i && order[i].second > order[i - 1].second) strict = false;
  }
  Say("  blocker ran %.1f ms; the four then started: %s%s\n", RunMillis(b), started.c_str(),
      strict ? "  (highest first)" : "  (NOT in priority order)");
  return Status::Ok();
}

// Step 3: a flaky task that succeeds on its third attempt, and one that never succeeds.
Status StepRetries(Engine& engine, const Tasks& t) {
  Section("3. Retries: exponential backoff with jitter (base 50 ms, x2), then FAILED");
  DEMO_ASSIGN_OR_RETURN(TaskId flaky,
                        t.sync_feedback.Delay({.source = "crm", .failing_attempts = 2}),
                        "enqueue flaky");
  DEMO_ASSIGN_OR_RETURN(TaskId dead,
                        t.sync_feedback.Delay({.source = "legacy_erp", .failing_attempts = 1000}),
                        "enqueue dead");
  DEMO_ASSIGN_OR_RETURN(TaskRecord f, WaitFor(engine, flaky, TaskState::kCompleted), "flaky");
  Say("  sync_feedback(crm)        COMPLETED on attempt %d; attempts at %s\n", f.retry_count + 1,
      g_attempts.Describe(flaky.ToString()).c_str());
  Say("                            result %s\n", Readable(f.result_json).c_str());
  DEMO_ASSIGN_OR_RETURN(TaskRecord d, WaitFor(engine, dead, TaskState::kFailed), "dead");
  Say("  sync_feedback(legacy_erp) FAILED after %d attempts (max_retries %d); attempts at %s\n",
      d.retry_count + 1, d.spec->max_retries, g_attempts.Describe(dead.ToString()).c_str());
  Say("                            last error: %s\n", d.error.c_str());
  if (f.retry_count != 2 || d.retry_count != d.spec->max_retries) {
    return Unexpected("retry counts " + std::to_string(f.retry_count) + " and " +
                      std::to_string(d.retry_count));
  }
  return Status::Ok();
}

// Step 4: cancelling a waiting task, a running one (cooperatively), and a finished one.
Status StepCancel(Engine& engine, const Tasks& t) {
  Section("4. Cancellation");
  CallOptions in_a_minute;
  in_a_minute.delay = milliseconds(60'000);
  DEMO_ASSIGN_OR_RETURN(EnqueueResult later, t.system_cleanup.ApplyAsync({}, in_a_minute),
                        "enqueue delayed cleanup");
  DEMO_RETURN_IF_ERROR(engine.Cancel(later.id), "cancel pending");
  DEMO_ASSIGN_OR_RETURN(TaskRecord c, engine.Get(later.id), "get cancelled");
  Say("  PENDING system_cleanup (ETA in 60 s)  -> Cancel -> %s at once\n", StateName(c.state));
  if (c.state != TaskState::kCancelled) return Unexpected("pending task not cancelled at once");

  // Long enough that it is still running when cancelled (seconds if it were not).
  DEMO_ASSIGN_OR_RETURN(
      TaskId big,
      t.train_model.Delay({.model = "forecast-xl", .points = 200, .epochs = 20'000'000}),
      "enqueue long training");
  TaskRecord running;
  DEMO_RETURN_IF_ERROR(AwaitRunning(engine, big, &running), "long training");
  std::this_thread::sleep_for(milliseconds(30));
  DEMO_ASSIGN_OR_RETURN(running, engine.Get(big), "get running");
  const double cancel_at = MillisSinceStart();
  DEMO_RETURN_IF_ERROR(engine.Cancel(big), "cancel running");
  DEMO_ASSIGN_OR_RETURN(TaskRecord done, WaitFor(engine, big, TaskState::kCancelled),
                        "long training");
  Say("  RUNNING train_model at %.0f%% (%s) -> Cancel -> %s %.2f ms later: %s\n",
      running.progress * 100, running.progress_message.c_str(), StateName(done.state),
      MillisSinceStart() - cancel_at, done.error.c_str());

  Status again = engine.Cancel(big);
  Say("  Cancel of a terminal task -> %s\n", again.ToString().c_str());
  if (again.code() != Status::Code::kFailedPrecondition) {
    return Unexpected("cancel of a terminal task returned " + again.ToString());
  }
  return Status::Ok();
}

// Step 5: an attempt past its timeout has its token set and counts as a failed attempt.
Status StepTimeout(Engine& engine, const Tasks& t) {
  Section("5. Timeouts: 100 ms per attempt, no retries");
  CallOptions strict;
  strict.max_retries = 0;
  strict.timeout = milliseconds(100);
  DEMO_ASSIGN_OR_RETURN(
      EnqueueResult r,
      t.train_model.ApplyAsync({.model = "too-slow", .points = 200, .epochs = 20'000'000}, strict),
      "enqueue slow training");
  DEMO_ASSIGN_OR_RETURN(TaskRecord d, WaitFor(engine, r.id, TaskState::kFailed), "slow training");
  Say("  train_model(too-slow)     %s after %.0f ms: %s\n", StateName(d.state), RunMillis(d),
      d.error.c_str());
  return Status::Ok();
}

// Step 6: a second enqueue with a live unique key returns the first task.
Status StepUniqueKey(Engine& engine, const Tasks& t) {
  Section("6. Unique keys: the same daily import enqueued twice while the first is waiting");
  CallOptions once;
  once.delay = milliseconds(100);
  once.unique_key = "import:sales:2026-01-01";
  DEMO_ASSIGN_OR_RETURN(EnqueueResult a,
                        t.process_data.ApplyAsync({.file = "sales_2026_01_01.csv"}, once),
                        "first enqueue");
  DEMO_ASSIGN_OR_RETURN(EnqueueResult b,
                        t.process_data.ApplyAsync({.file = "sales_2026_01_01.csv"}, once),
                        "second enqueue");
  Say("  first : %s created=%s\n", a.id.ToString().c_str(), a.created ? "true" : "false");
  Say("  second: %s created=%s  (%s)\n", b.id.ToString().c_str(), b.created ? "true" : "false",
      a.id == b.id ? "same task" : "A COPY");
  if (!a.created || b.created || a.id != b.id) return Unexpected("unique key made a copy");
  DEMO_ASSIGN_OR_RETURN(TaskRecord r, WaitFor(engine, a.id, TaskState::kCompleted), "import");
  PrintDone("process_data (once)", r);
  return Status::Ok();
}

// Step 7: errors are values; an unknown task name is refused with the known names.
Status StepErrors(Engine& engine) {
  Section("7. Errors are values");
  EnqueueRequest bad;
  bad.name = "extract_memories";
  Result<EnqueueResult> r = engine.Enqueue(std::move(bad));
  Say("  Enqueue(\"extract_memories\") -> %s\n", r.status().ToString().c_str());
  if (r.ok() || r.status().code() != Status::Code::kInvalidArgument) {
    return Unexpected("unknown task name accepted");
  }
  EnqueueRequest wrong_queue;
  wrong_queue.name = "process_data";
  wrong_queue.queue = "gpu";
  r = engine.Enqueue(std::move(wrong_queue));
  Say("  Enqueue(process_data, queue=\"gpu\") -> %s\n", r.status().ToString().c_str());
  if (r.ok()) return Unexpected("unserved queue accepted");
  return Status::Ok();
}

// Step 8: a bulk run across both groups, half through EnqueueBatch, half through the typed API.
Status StepBulk(Engine& engine, const Tasks& t, int count) {
  Section("8. Bulk run");
  DEMO_RETURN_IF_ERROR(engine.ResizeGroup("default", 6), "resize default group");
  Say("  default group resized to 6 workers for the run\n");
  std::vector<TaskId> ids;
  ids.reserve(count);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kBatch = 250;
  std::vector<EnqueueRequest> batch;
  for (int i = 0; i < count; ++i) {
    const Priority p = static_cast<Priority>(i % bmos::storage::kPriorityCount);
    const uint64_t seed = static_cast<uint64_t>(i) + 100;
    if (i % 2 == 0) {
      // Raw requests, written to the store in one batch per kBatch.
      EnqueueRequest req;
      if (i % 4 == 0) {
        req.name = "process_data";
        req.data = json::value_from(ProcessDataArgs{.file = "part-" + std::to_string(i) + ".csv",
                                                    .rows = 60,
                                                    .seed = seed})
                       .as_object();
      } else {
        req.name = "check_data_quality";
        req.data = json::value_from(QualityArgs{.dataset = "shard-" + std::to_string(i),
                                                .rows = 60,
                                                .columns = 4,
                                                .seed = seed})
                       .as_object();
      }
      req.priority = p;
      batch.push_back(std::move(req));
      if (static_cast<int>(batch.size()) == kBatch) {
        DEMO_ASSIGN_OR_RETURN(std::vector<EnqueueResult> rs, engine.EnqueueBatch(std::move(batch)),
                              "enqueue batch");
        for (const EnqueueResult& er : rs) ids.push_back(er.id);
        batch.clear();
      }
    } else if (i % 3 == 0) {
      DEMO_ASSIGN_OR_RETURN(
          EnqueueResult er,
          t.system_cleanup.ApplyAsync({.older_than_days = 14, .entries = 200, .seed = seed},
                                      WithPriority(p)),
          "enqueue cleanup");
      ids.push_back(er.id);
    } else {
      DEMO_ASSIGN_OR_RETURN(
          EnqueueResult er,
          t.process_data.ApplyAsync(
              {.file = "upload-" + std::to_string(i) + ".csv", .rows = 60, .seed = seed},
              WithPriority(p, "high")),
          "enqueue process_data");
      ids.push_back(er.id);
    }
  }
  if (!batch.empty()) {
    DEMO_ASSIGN_OR_RETURN(std::vector<EnqueueResult> rs, engine.EnqueueBatch(std::move(batch)),
                          "enqueue batch");
    for (const EnqueueResult& er : rs) ids.push_back(er.id);
  }
  const double enqueue_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  int64_t completed = 0;
  for (const TaskId& id : ids) {
    DEMO_ASSIGN_OR_RETURN(TaskRecord r, WaitFor(engine, id, TaskState::kCompleted), "bulk task");
    completed += r.state == TaskState::kCompleted;
  }
  const double total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Say("  %zu tasks (process_data, check_data_quality, system_cleanup; all four priorities;\n"
      "  queues default and high) enqueued in %.1f ms, all %lld COMPLETED after %.1f ms "
      "(%.0f tasks/s)\n",
      ids.size(), enqueue_ms, static_cast<long long>(completed), total_ms,
      total_ms > 0 ? ids.size() * 1000.0 / total_ms : 0.0);
  DEMO_RETURN_IF_ERROR(engine.ResizeGroup("default", 4), "resize default group back");
  Say("  default group back to 4 workers\n");
  return Status::Ok();
}

// Step 9: the dead-letter view.
Status StepDeadLetters(Engine& engine) {
  Section("9. Dead-letter view: List(status=FAILED), newest first");
  ListQuery q;
  q.state = TaskState::kFailed;
  q.limit = 10;
  DEMO_ASSIGN_OR_RETURN(ListPage page, engine.List(q), "list failed");
  for (const TaskRecord& r : page.records) {
    Say("  %s  %-14s queue=%-8s retries=%d  %s\n", r.id().ToString().c_str(), r.spec->name.c_str(),
        r.spec->queue.c_str(), r.retry_count, r.error.c_str());
  }
  if (page.records.size() != 2) {
    return Unexpected(std::to_string(page.records.size()) + " FAILED tasks listed, expected 2");
  }
  return Status::Ok();
}

void PrintPercentiles(const char* label, const EngineStats::Percentiles& p) {
  Say("  %-14s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (%llu samples)\n", label,
      p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, static_cast<unsigned long long>(p.count));
}

void PrintStats(const EngineStats& s) {
  Section("10. Stats()");
  for (const EngineStats::Group& g : s.groups) {
    std::string queues;
    for (const std::string& q : g.queues) queues += (queues.empty() ? "" : ", ") + q;
    Say("  group %-8s queues [%s]: %d worker%s, %d busy, %d idle\n", g.name.c_str(), queues.c_str(),
        g.workers, g.workers == 1 ? "" : "s", g.busy, g.idle);
  }
  Say("  %-9s", "queue");
  for (int i = 0; i < bmos::storage::kTaskStateCount; ++i) {
    Say(" %10s", StateName(static_cast<TaskState>(i)));
  }
  Say("\n");
  for (const auto& [queue, counts] : s.by_queue) {
    Say("  %-9s", queue.c_str());
    for (uint64_t c : counts) Say(" %10llu", static_cast<unsigned long long>(c));
    Say("\n");
  }
  Say("  %-9s", "all");
  for (uint64_t c : s.by_state) Say(" %10llu", static_cast<unsigned long long>(c));
  Say("\n");
  Say("  since open: %llu enqueued, %llu completed, %llu failed, %llu retried, %llu cancelled; "
      "%llu live\n",
      static_cast<unsigned long long>(s.enqueued), static_cast<unsigned long long>(s.completed),
      static_cast<unsigned long long>(s.failed), static_cast<unsigned long long>(s.retried),
      static_cast<unsigned long long>(s.cancelled), static_cast<unsigned long long>(s.live_tasks));
  Say("  rates: %.1f completed/s, %.2f failed/s; success rate %.2f%%\n", s.completed_per_second,
      s.failed_per_second, s.success_rate * 100);
  PrintPercentiles("queue wait", s.queue_wait);
  PrintPercentiles("run time", s.run_time);
}

Status RunDemo(Engine& engine, const Flags& flags) {
  DEMO_ASSIGN_OR_RETURN(Tasks tasks, DefineTasks(engine), "register handlers");
  std::string names;
  for (const std::string& n : engine.HandlerNames()) names += (names.empty() ? "" : ", ") + n;
  Say("handlers: %s\n", names.c_str());

  double slope = 0, intercept = 0;
  DEMO_RETURN_IF_ERROR(StepTypedTasks(engine, tasks, &slope, &intercept), "step 1");
  DEMO_RETURN_IF_ERROR(StepPriorities(engine, tasks, slope, intercept), "step 2");
  DEMO_RETURN_IF_ERROR(StepRetries(engine, tasks), "step 3");
  DEMO_RETURN_IF_ERROR(StepCancel(engine, tasks), "step 4");
  DEMO_RETURN_IF_ERROR(StepTimeout(engine, tasks), "step 5");
  DEMO_RETURN_IF_ERROR(StepUniqueKey(engine, tasks), "step 6");
  DEMO_RETURN_IF_ERROR(StepErrors(engine), "step 7");
  DEMO_RETURN_IF_ERROR(StepBulk(engine, tasks, flags.tasks), "step 8");
  DEMO_RETURN_IF_ERROR(StepDeadLetters(engine), "step 9");
  PrintStats(engine.Stats());

  Section("11. Graceful stop");
  const double stop_at = MillisSinceStart();
  DEMO_RETURN_IF_ERROR(engine.Stop(milliseconds(2000)), "stop");
  Say("  Stop(drain 2 s) returned after %.1f ms\n", MillisSinceStart() - stop_at);
  Result<TaskId> after = tasks.system_cleanup.Delay({});
  Say("  Enqueue after Stop -> %s\n", after.status().ToString().c_str());
  if (after.ok() || after.status().code() != Status::Code::kUnavailable) {
    return Unexpected("enqueue after stop was not refused with Unavailable");
  }
  return Status::Ok();
}

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: bmos-demo [--tasks N] [--quiet] [--help]\n"
               "\n"
               "Runs BMOS-like tasks (process_data, check_data_quality, train_model,\n"
               "batch_predictions, system_cleanup, sync_feedback) on the embedded BMOS task\n"
               "engine in memory mode and prints what happened: typed tasks, priorities, retries\n"
               "with backoff, cancellation, timeouts, unique keys, a bulk run, statistics and a\n"
               "graceful stop.\n"
               "\n"
               "  --tasks N   tasks in the bulk run (0..%d; default 2000)\n"
               "  --quiet     print only the final summary line (and errors)\n"
               "  --help      print this help and exit\n"
               "\n"
               "Exit status: 0 when every step behaved as expected, 1 on an engine error or an\n"
               "unexpected outcome, 2 on bad usage.\n",
               kMaxTasks);
}

// Parses argv; returns false (after printing why) on bad usage. Sets *help for --help.
bool ParseFlags(int argc, char** argv, Flags* flags, bool* help) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
    } else if (arg == "--quiet" || arg == "-q") {
      flags->quiet = true;
    } else if (arg == "--tasks" || arg.starts_with("--tasks=")) {
      std::string_view value;
      if (arg == "--tasks") {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "bmos-demo: --tasks needs a value\n");
          return false;
        }
        value = argv[++i];
      } else {
        value = arg.substr(std::strlen("--tasks="));
      }
      int n = -1;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 0 || n > kMaxTasks) {
        std::fprintf(stderr, "bmos-demo: --tasks wants a whole number in 0..%d, got '%.*s'\n",
                     kMaxTasks, static_cast<int>(value.size()), value.data());
        return false;
      }
      flags->tasks = n;
    } else {
      std::fprintf(stderr, "bmos-demo: unknown argument '%s' (try --help)\n", argv[i]);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  bool help = false;
  if (!ParseFlags(argc, argv, &flags, &help)) return 2;
  if (help) {
    PrintUsage(stdout);
    return 0;
  }
  g_quiet = flags.quiet;

  EngineOptions options;
  options.durability = bmos::storage::Durability::kMemory;
  options.groups = {
      WorkerGroupOptions{.name = "default", .queues = {"default", "high"}, .workers = 4},
      WorkerGroupOptions{.name = "ml", .queues = {"ml"}, .workers = 1},
  };
  options.retry.base = milliseconds(50);
  options.retry.cap = milliseconds(1000);
  options.retry.jitter = 0.2;

  Say("BMOS Task Engine demo: embedded engine, durability 'memory' (nothing is written to disk)\n");
  Say("groups: default [default, high] x 4 workers, ml [ml] x 1 worker; "
      "retry backoff 50 ms x2, cap 1 s, jitter 20%%\n");
  Result<std::unique_ptr<Engine>> opened = Engine::Open(std::move(options));
  if (!opened.ok()) {
    std::fprintf(stderr, "bmos-demo: cannot open the engine: %s\n",
                 opened.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<Engine> engine = std::move(opened).value();

  Status s = RunDemo(*engine, flags);
  if (!s.ok()) {
    std::fflush(stdout);
    std::fprintf(stderr, "bmos-demo: FAILED: %s\n", s.ToString().c_str());
    (void)engine->Stop(milliseconds(0));
    return 1;
  }
  // Counted after Stop: a counter may trail the state that Wait saw by a moment.
  const EngineStats stats = engine->Stats();
  engine.reset();
  std::printf(
      "%sbmos-demo: OK in %.2f s: %llu tasks enqueued, %llu completed, %llu failed, "
      "%llu cancelled\n",
      g_quiet ? "" : "\n", MillisSinceStart() / 1000.0,
      static_cast<unsigned long long>(stats.enqueued),
      static_cast<unsigned long long>(stats.completed),
      static_cast<unsigned long long>(stats.failed),
      static_cast<unsigned long long>(stats.cancelled));
  return 0;
}
