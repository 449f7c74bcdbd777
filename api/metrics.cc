#include "api/metrics.h"

#include <charconv>
#include <cmath>
#include <string_view>
#include <utility>

#include "storage/task_record.h"

namespace bmos::api {
namespace {

// kLatencyBounds in integer nanoseconds (recording compares integers) and as `le` label text in
// the form Prometheus' own clients write.
constexpr std::array<uint64_t, HttpMetrics::kLatencyBounds.size()> kBoundsNs = {
    50'000,      100'000,     250'000,     500'000,       1'000'000,
    2'500'000,   5'000'000,   10'000'000,  25'000'000,    50'000'000,
    100'000'000, 250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000};
constexpr std::array<std::string_view, HttpMetrics::kLatencyBounds.size() + 1> kBoundLabels = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "+Inf"};

constexpr std::array<std::string_view, 3> kRejectionLabels = {"body_too_large", "headers_too_large",
                                                              "timeout"};

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;  // 24 bytes always hold a uint64
  out.append(buf, end);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out.append(buf, end);
}

// Shortest round-trip text; the format's spellings for the non-finite values.
void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    (void)ec;  // 32 bytes hold the shortest form of any double
    out.append(buf, end);
  }
}

void AppendEscaped(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out.append("\\\\");
        break;
      case '"':
        out.append("\\\"");
        break;
      case '\n':
        out.append("\\n");
        break;
      default:
        out.push_back(c);
    }
  }
}

void AppendHeader(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// Builds one sample line: name{label="value",...} value\n.
class Sample {
 public:
  Sample(std::string& out, std::string_view name) : out_(out) { out_.append(name); }
  Sample& Label(std::string_view key, std::string_view value) {
    out_.push_back(first_ ? '{' : ',');
    first_ = false;
    out_.append(key).append("=\"");
    AppendEscaped(out_, value);
    out_.push_back('"');
    return *this;
  }
  void Uint(uint64_t v) {
    Finish();
    AppendUint(out_, v);
    out_.push_back('\n');
  }
  void Int(int64_t v) {
    Finish();
    AppendInt(out_, v);
    out_.push_back('\n');
  }
  void Double(double v) {
    Finish();
    AppendDouble(out_, v);
    out_.push_back('\n');
  }

 private:
  void Finish() { out_.append(first_ ? " " : "} "); }
  std::string& out_;
  bool first_ = true;
};

}  // namespace

HttpMetrics::HttpMetrics(std::vector<std::string> route_names)
    : route_names_(std::move(route_names)),
      routes_(std::make_unique<RouteStats[]>(route_names_.size() + 1)) {}

size_t HttpMetrics::CodeSlot(int status_code) {
  for (size_t i = 0; i < kStatusCodes.size(); ++i) {
    if (kStatusCodes[i] == status_code) return i;
  }
  return kStatusCodes.size();
}

void HttpMetrics::Record(size_t route, int status_code, double seconds) {
  RouteStats& r = routes_[route < route_names_.size() ? route : route_names_.size()];
  // Clamp to [0, 1e9 s] before converting: NaN and negatives count as 0, and the product must fit
  // in uint64.
  uint64_t ns = 0;
  if (seconds >= 1e9) {
    ns = uint64_t{1'000'000'000'000'000'000};
  } else if (seconds > 0) {
    ns = static_cast<uint64_t>(std::llround(seconds * 1e9));
  }
  size_t bucket = 0;
  while (bucket < kBoundsNs.size() && ns > kBoundsNs[bucket]) ++bucket;
  // Relaxed: each counter is read on its own by AppendHttpMetrics; no other memory is published.
  r.codes[CodeSlot(status_code)].fetch_add(1, std::memory_order_relaxed);
  r.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  r.sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

void HttpMetrics::ConnectionOpened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
void HttpMetrics::ConnectionClosed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
void HttpMetrics::ConnectionRefused() {
  refused_connections_.fetch_add(1, std::memory_order_relaxed);
}
void HttpMetrics::RequestRejected(Rejection reason) {
  rejected_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
}

uint64_t HttpMetrics::Requests(size_t route, int status_code) const {
  const RouteStats& r = routes_[route < route_names_.size() ? route : route_names_.size()];
  return r.codes[CodeSlot(status_code)].load(std::memory_order_relaxed);
}

int64_t HttpMetrics::OpenConnections() const {
  return open_connections_.load(std::memory_order_relaxed);
}

void HttpMetrics::AppendHttpMetrics(std::string& out) const {
  const size_t n = route_names_.size() + 1;
  auto route_name = [&](size_t i) -> std::string_view {
    return i < route_names_.size() ? std::string_view(route_names_[i]) : "other";
  };

  AppendHeader(out, "bmos_http_requests_total", "counter",
               "HTTP requests answered, by route and status code.");
  for (size_t i = 0; i < n; ++i) {
    for (size_t c = 0; c < kCodeSlots; ++c) {
      const uint64_t v = routes_[i].codes[c].load(std::memory_order_relaxed);
      if (v == 0) continue;
      char code[8];
      std::string_view code_text = "other";
      if (c < kStatusCodes.size()) {
        auto [end, ec] = std::to_chars(code, code + sizeof(code), kStatusCodes[c]);
        (void)ec;
        code_text = std::string_view(code, static_cast<size_t>(end - code));
      }
      Sample(out, "bmos_http_requests_total")
          .Label("route", route_name(i))
          .Label("code", code_text)
          .Uint(v);
    }
  }

  AppendHeader(out, "bmos_http_request_duration_seconds", "histogram",
               "Time to handle an HTTP request, by route.");
  for (size_t i = 0; i < n; ++i) {
    std::array<uint64_t, kBucketSlots> counts;
    uint64_t total = 0;
    for (size_t b = 0; b < kBucketSlots; ++b) {
      counts[b] = routes_[i].buckets[b].load(std::memory_order_relaxed);
      total += counts[b];
    }
    if (total == 0) continue;
    const uint64_t sum_ns = routes_[i].sum_ns.load(std::memory_order_relaxed);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBucketSlots; ++b) {
      cumulative += counts[b];
      Sample(out, "bmos_http_request_duration_seconds_bucket")
          .Label("route", route_name(i))
          .Label("le", kBoundLabels[b])
          .Uint(cumulative);
    }
    Sample(out, "bmos_http_request_duration_seconds_sum")
        .Label("route", route_name(i))
        .Double(static_cast<double>(sum_ns) / 1e9);
    Sample(out, "bmos_http_request_duration_seconds_count")
        .Label("route", route_name(i))
        .Uint(total);
  }

  AppendHeader(out, "bmos_http_connections_open", "gauge", "HTTP connections open now.");
  Sample(out, "bmos_http_connections_open").Int(open_connections_.load(std::memory_order_relaxed));

  AppendHeader(out, "bmos_http_connections_refused_total", "counter",
               "HTTP connections closed at once because the server was at its connection limit.");
  Sample(out, "bmos_http_connections_refused_total")
      .Uint(refused_connections_.load(std::memory_order_relaxed));

  AppendHeader(out, "bmos_http_requests_rejected_total", "counter",
               "HTTP requests refused before routing, by reason.");
  for (size_t i = 0; i < rejected_.size(); ++i) {
    Sample(out, "bmos_http_requests_rejected_total")
        .Label("reason", kRejectionLabels[i])
        .Uint(rejected_[i].load(std::memory_order_relaxed));
  }
}

namespace {

void AppendSummary(std::string& out, std::string_view name, std::string_view help,
                   const engine::EngineStats::Percentiles& p) {
  AppendHeader(out, name, "summary", help);
  const std::pair<std::string_view, double> quantiles[] = {
      {"0.5", p.p50_ms}, {"0.9", p.p90_ms}, {"0.99", p.p99_ms}, {"0.999", p.p999_ms}};
  for (const auto& [q, ms] : quantiles) {
    Sample(out, name).Label("quantile", q).Double(ms / 1000.0);
  }
  std::string count_name(name);
  count_name.append("_count");
  Sample(out, count_name).Uint(p.count);

  std::string max_name(name);
  max_name.append("_max");
  AppendHeader(out, max_name, "gauge", "The largest sample of " + std::string(name) + ".");
  Sample(out, max_name).Double(p.max_ms / 1000.0);
}

// The same samples as a Prometheus histogram (fixed buckets, approximate _sum; see
// EngineStats::Percentiles), so rates and quantiles can be aggregated across servers.
void AppendDurationHistogram(std::string& out, std::string_view name, std::string_view help,
                             const engine::EngineStats::Percentiles& p) {
  AppendHeader(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  constexpr auto& bounds = engine::EngineStats::kBucketBoundsMs;
  for (size_t i = 0; i < bounds.size(); ++i) {
    char le[32];
    auto [end, ec] = std::to_chars(le, le + sizeof(le), bounds[i] / 1000.0);
    (void)ec;  // 32 bytes hold the shortest form of any double
    Sample(out, bucket)
        .Label("le", std::string_view(le, static_cast<size_t>(end - le)))
        .Uint(p.buckets[i]);
  }
  Sample(out, bucket).Label("le", "+Inf").Uint(p.count);
  Sample(out, std::string(name) + "_sum").Double(p.sum_ms / 1000.0);
  Sample(out, std::string(name) + "_count").Uint(p.count);
}

void AppendCounter(std::string& out, std::string_view name, std::string_view help, uint64_t v) {
  AppendHeader(out, name, "counter", help);
  Sample(out, name).Uint(v);
}

}  // namespace

void AppendEngineMetrics(std::string& out, const engine::EngineStats& stats) {
  AppendHeader(out, "bmos_tasks", "gauge", "Tasks in the store, by queue and state.");
  for (const auto& [queue, counts] : stats.by_queue) {
    for (int s = 0; s < storage::kTaskStateCount; ++s) {
      Sample(out, "bmos_tasks")
          .Label("queue", queue)
          .Label("status", storage::ToString(static_cast<storage::TaskState>(s)))
          .Uint(counts[static_cast<size_t>(s)]);
    }
  }

  AppendHeader(out, "bmos_queue_depth", "gauge", "Tasks waiting to run (PENDING + RETRYING).");
  for (const auto& [queue, counts] : stats.by_queue) {
    Sample(out, "bmos_queue_depth")
        .Label("queue", queue)
        .Uint(counts[static_cast<size_t>(storage::TaskState::kPending)] +
              counts[static_cast<size_t>(storage::TaskState::kRetrying)]);
  }

  AppendCounter(out, "bmos_tasks_enqueued_total", "Tasks enqueued since the engine opened.",
                stats.enqueued);
  AppendCounter(out, "bmos_tasks_completed_total", "Tasks that ended COMPLETED.", stats.completed);
  AppendCounter(out, "bmos_tasks_failed_total", "Tasks that ended FAILED after their last attempt.",
                stats.failed);
  AppendCounter(out, "bmos_tasks_retried_total", "Failed attempts that were retried.",
                stats.retried);
  AppendCounter(out, "bmos_tasks_cancelled_total", "Tasks that ended CANCELLED.", stats.cancelled);

  AppendHeader(out, "bmos_workers", "gauge", "Workers per group.");
  for (const auto& g : stats.groups)
    Sample(out, "bmos_workers").Label("group", g.name).Int(g.workers);
  AppendHeader(out, "bmos_workers_busy", "gauge", "Workers running a handler now, per group.");
  for (const auto& g : stats.groups) {
    Sample(out, "bmos_workers_busy").Label("group", g.name).Int(g.busy);
  }
  AppendHeader(out, "bmos_worker_utilisation", "gauge",
               "Busy workers / workers, per group (0 for a group without workers).");
  for (const auto& g : stats.groups) {
    Sample(out, "bmos_worker_utilisation")
        .Label("group", g.name)
        .Double(g.workers > 0 ? static_cast<double>(g.busy) / g.workers : 0.0);
  }

  AppendSummary(out, "bmos_task_queue_wait_seconds",
                "Time from runnable to handler start (no _sum: the engine keeps none).",
                stats.queue_wait);
  AppendSummary(out, "bmos_task_run_seconds",
                "Time from handler start to handler return (no _sum: the engine keeps none).",
                stats.run_time);

  AppendDurationHistogram(out, "bmos_task_queue_wait_duration_seconds",
                          "Time from runnable to handler start (the same samples as "
                          "bmos_task_queue_wait_seconds; _sum within ~6%).",
                          stats.queue_wait);
  AppendDurationHistogram(out, "bmos_task_run_duration_seconds",
                          "Time from handler start to handler return (the same samples as "
                          "bmos_task_run_seconds; _sum within ~6%).",
                          stats.run_time);

  AppendHeader(out, "bmos_live_tasks", "gauge",
               "Tasks held in memory (PENDING + RUNNING + RETRYING).");
  Sample(out, "bmos_live_tasks").Uint(stats.live_tasks);
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  AppendEscaped(out, value);
  return out;
}

void AppendSchedulerMetrics(std::string& out, const engine::SchedulerStats& stats) {
  AppendHeader(out, "bmos_scheduler_jobs", "gauge", "Scheduled jobs, by state.");
  Sample(out, "bmos_scheduler_jobs").Label("state", "active").Uint(stats.active);
  Sample(out, "bmos_scheduler_jobs").Label("state", "paused").Uint(stats.paused);
  Sample(out, "bmos_scheduler_jobs").Label("state", "finished").Uint(stats.finished);
  AppendCounter(out, "bmos_scheduler_runs_total",
                "Runs of scheduled jobs enqueued since the scheduler opened.", stats.fired_total);
  AppendCounter(out, "bmos_scheduler_missed_runs_total",
                "Due runs not run: later than misfire_grace_time, or coalesced into one.",
                stats.missed_total);
  AppendCounter(out, "bmos_scheduler_skipped_runs_total",
                "Due runs not run because max_instances tasks of the job were running.",
                stats.skipped_total);
  AppendHeader(out, "bmos_scheduler_running_tasks", "gauge",
               "Tasks of scheduled jobs that have not ended.");
  Sample(out, "bmos_scheduler_running_tasks").Uint(stats.running);
  AppendDurationHistogram(out, "bmos_scheduler_fire_lateness_seconds",
                          "When a run's task was handed to the engine minus its scheduled time.",
                          stats.lateness);
  AppendHeader(out, "bmos_scheduler_timer_cpu_seconds_total", "counter",
               "CPU time of the scheduler's timer thread.");
  Sample(out, "bmos_scheduler_timer_cpu_seconds_total")
      .Double(static_cast<double>(stats.timer_cpu_us) / 1e6);
}

}  // namespace bmos::api
