#include "api/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bmos::api {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const std::string& l : Lines(text)) {
    if (l == line) return true;
  }
  return false;
}

// The value of the sample whose text before the value is exactly `series`; -1 if absent.
double Value(const std::string& text, const std::string& series) {
  for (const std::string& l : Lines(text)) {
    if (l.size() > series.size() && l.compare(0, series.size(), series) == 0 &&
        l[series.size()] == ' ') {
      return std::stod(l.substr(series.size() + 1));
    }
  }
  return -1;
}

// Every family has exactly one HELP and one TYPE line, HELP first, before its samples; every
// line ends with a newline; samples of one family are contiguous.
void ExpectWellFormed(const std::string& text) {
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::map<std::string, int> help, type;
  std::string current;  // family of the last TYPE line
  std::map<std::string, bool> closed;
  for (const std::string& l : Lines(text)) {
    if (l.rfind("# HELP ", 0) == 0) {
      const std::string name = l.substr(7, l.find(' ', 7) - 7);
      ++help[name];
      continue;
    }
    if (l.rfind("# TYPE ", 0) == 0) {
      const std::string name = l.substr(7, l.find(' ', 7) - 7);
      ++type[name];
      EXPECT_EQ(help[name], 1) << "TYPE before HELP for " << name;
      if (!current.empty()) closed[current] = true;
      current = name;
      continue;
    }
    const std::string metric = l.substr(0, l.find_first_of("{ "));
    EXPECT_EQ(metric.rfind(current, 0), 0u) << "sample outside its family: " << l;
    EXPECT_FALSE(closed[current]) << l;
  }
  for (const auto& [name, n] : help) EXPECT_EQ(n, 1) << name;
  for (const auto& [name, n] : type) EXPECT_EQ(n, 1) << name;
}

TEST(HttpMetrics, CountsRequestsByRouteAndCode) {
  HttpMetrics m({"GET /health", "POST /api/v1/tasks/enqueue"});
  for (int i = 0; i < 3; ++i) m.Record(0, 200, 0.0001);
  m.Record(1, 201, 0.002);
  m.Record(1, 422, 0.0003);
  m.Record(1, 418, 0.0003);   // not in the fixed set
  m.Record(7, 404, 0.00001);  // no such route
  EXPECT_EQ(m.Requests(0, 200), 3u);
  EXPECT_EQ(m.Requests(1, 418), 1u);
  EXPECT_EQ(m.Requests(1, 599), 1u);  // the same "other" slot
  EXPECT_EQ(m.Requests(99, 404), 1u);

  std::string out;
  m.AppendHttpMetrics(out);
  ExpectWellFormed(out);
  EXPECT_TRUE(HasLine(out, R"(bmos_http_requests_total{route="GET /health",code="200"} 3)")) << out;
  EXPECT_TRUE(
      HasLine(out, R"(bmos_http_requests_total{route="POST /api/v1/tasks/enqueue",code="201"} 1)"));
  EXPECT_TRUE(
      HasLine(out, R"(bmos_http_requests_total{route="POST /api/v1/tasks/enqueue",code="422"} 1)"));
  EXPECT_TRUE(HasLine(
      out, R"(bmos_http_requests_total{route="POST /api/v1/tasks/enqueue",code="other"} 1)"));
  EXPECT_TRUE(HasLine(out, R"(bmos_http_requests_total{route="other",code="404"} 1)"));
  // Zero series are left out.
  EXPECT_EQ(out.find(R"(route="GET /health",code="500")"), std::string::npos);
  EXPECT_TRUE(HasLine(out, "# TYPE bmos_http_requests_total counter"));
  EXPECT_TRUE(HasLine(out, "# TYPE bmos_http_request_duration_seconds histogram"));
}

TEST(HttpMetrics, HistogramIsCumulativeAndEndsAtCount) {
  HttpMetrics m({"GET /health", "GET /unused"});
  // 50 us exactly falls in le="5e-05" (upper bounds are inclusive).
  const double samples[] = {0.00005, 0.00007, 0.0002, 0.0009, 0.003, 0.02, 0.7, 3.0, 100.0};
  double sum = 0;
  for (double s : samples) {
    m.Record(0, 200, s);
    sum += s;
  }
  m.Record(0, 200, -1);   // counts as 0
  m.Record(0, 200, NAN);  // counts as 0
  std::string out;
  m.AppendHttpMetrics(out);
  ExpectWellFormed(out);
  const std::string b = R"(bmos_http_request_duration_seconds_bucket{route="GET /health",le=")";
  EXPECT_TRUE(HasLine(out, b + R"(5e-05"} 3)")) << out;
  EXPECT_TRUE(HasLine(out, b + R"(0.0001"} 4)"));
  EXPECT_TRUE(HasLine(out, b + R"(0.00025"} 5)"));
  EXPECT_TRUE(HasLine(out, b + R"(0.001"} 6)"));
  EXPECT_TRUE(HasLine(out, b + R"(0.005"} 7)"));
  EXPECT_TRUE(HasLine(out, b + R"(0.025"} 8)"));
  EXPECT_TRUE(HasLine(out, b + R"(1"} 9)"));
  EXPECT_TRUE(HasLine(out, b + R"(2.5"} 9)"));
  EXPECT_TRUE(HasLine(out, b + R"(+Inf"} 11)"));
  EXPECT_TRUE(HasLine(out, R"(bmos_http_request_duration_seconds_count{route="GET /health"} 11)"));
  EXPECT_NEAR(Value(out, R"(bmos_http_request_duration_seconds_sum{route="GET /health"})"), sum,
              1e-6);

  // Buckets never decrease and there is one per bound plus +Inf.
  double last = -1;
  int buckets = 0;
  for (const std::string& l : Lines(out)) {
    if (l.rfind(b, 0) != 0) continue;
    const double v = std::stod(l.substr(l.rfind(' ') + 1));
    EXPECT_GE(v, last) << l;
    last = v;
    ++buckets;
  }
  EXPECT_EQ(buckets, static_cast<int>(HttpMetrics::kLatencyBounds.size()) + 1);
  // A route without requests has no histogram.
  EXPECT_EQ(out.find("GET /unused"), std::string::npos);
}

TEST(HttpMetrics, ConnectionsAndRejections) {
  HttpMetrics m({"GET /health"});
  m.ConnectionOpened();
  m.ConnectionOpened();
  m.ConnectionOpened();
  m.ConnectionClosed();
  m.ConnectionRefused();
  m.RequestRejected(HttpMetrics::Rejection::kBodyTooLarge);
  m.RequestRejected(HttpMetrics::Rejection::kTimeout);
  m.RequestRejected(HttpMetrics::Rejection::kTimeout);
  EXPECT_EQ(m.OpenConnections(), 2);
  std::string out;
  m.AppendHttpMetrics(out);
  ExpectWellFormed(out);
  EXPECT_TRUE(HasLine(out, "# TYPE bmos_http_connections_open gauge"));
  EXPECT_TRUE(HasLine(out, "bmos_http_connections_open 2")) << out;
  EXPECT_TRUE(HasLine(out, "bmos_http_connections_refused_total 1"));
  EXPECT_TRUE(HasLine(out, R"(bmos_http_requests_rejected_total{reason="body_too_large"} 1)"));
  EXPECT_TRUE(HasLine(out, R"(bmos_http_requests_rejected_total{reason="headers_too_large"} 0)"));
  EXPECT_TRUE(HasLine(out, R"(bmos_http_requests_rejected_total{reason="timeout"} 2)"));
  // No requests yet: the request families have their headers and no samples.
  EXPECT_TRUE(HasLine(out, "# TYPE bmos_http_requests_total counter"));
  EXPECT_EQ(out.find("bmos_http_requests_total{"), std::string::npos);
}

TEST(HttpMetrics, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue(R"(a"b\c)"
                             "\nd"),
            R"(a\"b\\c\nd)");
  EXPECT_EQ(EscapeLabelValue("plain /api/v1"), "plain /api/v1");
  HttpMetrics m({"GET /\"odd\"\\path\n"});
  m.Record(0, 200, 0.001);
  std::string out;
  m.AppendHttpMetrics(out);
  EXPECT_TRUE(
      HasLine(out, R"(bmos_http_requests_total{route="GET /\"odd\"\\path\n",code="200"} 1)"))
      << out;
}

TEST(HttpMetrics, ConcurrentRecordingAddsUp) {
  HttpMetrics m({"a", "b"});
  constexpr int kThreads = 4, kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        m.Record(static_cast<size_t>(i % 2), i % 3 == 0 ? 500 : 200, 0.001 * (t + 1));
        m.ConnectionOpened();
        m.ConnectionClosed();
      }
    });
  }
  // Scrape while recording: always well formed.
  for (int i = 0; i < 20; ++i) {
    std::string out;
    m.AppendHttpMetrics(out);
    ExpectWellFormed(out);
  }
  for (auto& th : threads) th.join();

  uint64_t total = 0;
  for (size_t route : {0, 1}) {
    for (int code : {200, 500}) total += m.Requests(route, code);
  }
  EXPECT_EQ(total, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(m.OpenConnections(), 0);
  // Each thread recorded 1/3 of its requests (rounded up) as 500, split evenly by route.
  EXPECT_EQ(m.Requests(0, 500) + m.Requests(1, 500), uint64_t{kThreads} * 6667);

  std::string out;
  m.AppendHttpMetrics(out);
  const double count_a = Value(out, R"(bmos_http_request_duration_seconds_count{route="a"})");
  const double count_b = Value(out, R"(bmos_http_request_duration_seconds_count{route="b"})");
  EXPECT_EQ(count_a + count_b, kThreads * kPerThread);
  EXPECT_EQ(Value(out, R"(bmos_http_request_duration_seconds_bucket{route="a",le="+Inf"})"),
            count_a);
  // Each thread's samples are (t + 1) ms: 1 ms lands in le="0.001", 2..4 ms in le="0.005".
  EXPECT_EQ(Value(out, R"(bmos_http_request_duration_seconds_bucket{route="a",le="0.001"})"),
            kPerThread / 2);
  EXPECT_EQ(Value(out, R"(bmos_http_request_duration_seconds_bucket{route="a",le="0.005"})"),
            count_a);
  EXPECT_NEAR(Value(out, R"(bmos_http_request_duration_seconds_sum{route="a"})"),
              kPerThread / 2 * (0.001 + 0.002 + 0.003 + 0.004), 1e-6);
}

engine::EngineStats SampleStats() {
  engine::EngineStats s;
  s.groups.push_back({"default", {"default", "mail"}, 4, 1, 3});
  s.groups.push_back({"empty", {"x"}, 0, 0, 0});
  // PENDING, RUNNING, RETRYING, COMPLETED, FAILED, CANCELLED
  s.by_queue["default"] = {5, 1, 2, 100, 3, 4};
  s.by_queue["we\"ird"] = {1, 0, 0, 0, 0, 0};
  s.enqueued = 120;
  s.completed = 100;
  s.failed = 3;
  s.retried = 7;
  s.cancelled = 4;
  s.queue_wait.count = 110;
  s.queue_wait.p50_ms = 0.25;
  s.queue_wait.p90_ms = 1.5;
  s.queue_wait.p99_ms = 4;
  s.queue_wait.p999_ms = 9.5;
  s.queue_wait.max_ms = 12;
  // Cumulative: 10 samples <= 0.05 ms, 100 <= 1 ms, all 110 <= 25 ms.
  s.queue_wait.buckets.fill(110);
  for (size_t i = 0; i < 5; ++i) s.queue_wait.buckets[i] = i == 0 ? 10 : 100;
  for (size_t i = 5; i < 8; ++i) s.queue_wait.buckets[i] = 105;
  s.queue_wait.sum_ms = 66;
  s.run_time.count = 103;
  s.run_time.p50_ms = 10;
  s.run_time.p90_ms = 20;
  s.run_time.p99_ms = 40;
  s.run_time.p999_ms = 80;
  s.run_time.max_ms = 123.5;
  s.live_tasks = 9;
  return s;
}

TEST(EngineMetrics, RendersEveryFamily) {
  std::string out;
  AppendEngineMetrics(out, SampleStats());
  ExpectWellFormed(out);
  const char* expected[] = {
      "# TYPE bmos_tasks gauge",
      R"(bmos_tasks{queue="default",status="PENDING"} 5)",
      R"(bmos_tasks{queue="default",status="RUNNING"} 1)",
      R"(bmos_tasks{queue="default",status="RETRYING"} 2)",
      R"(bmos_tasks{queue="default",status="COMPLETED"} 100)",
      R"(bmos_tasks{queue="default",status="FAILED"} 3)",
      R"(bmos_tasks{queue="default",status="CANCELLED"} 4)",
      R"(bmos_tasks{queue="we\"ird",status="PENDING"} 1)",
      R"(bmos_tasks{queue="we\"ird",status="CANCELLED"} 0)",
      "# TYPE bmos_queue_depth gauge",
      R"(bmos_queue_depth{queue="default"} 7)",
      R"(bmos_queue_depth{queue="we\"ird"} 1)",
      "# TYPE bmos_tasks_enqueued_total counter",
      "bmos_tasks_enqueued_total 120",
      "bmos_tasks_completed_total 100",
      "bmos_tasks_failed_total 3",
      "bmos_tasks_retried_total 7",
      "bmos_tasks_cancelled_total 4",
      R"(bmos_workers{group="default"} 4)",
      R"(bmos_workers{group="empty"} 0)",
      R"(bmos_workers_busy{group="default"} 1)",
      R"(bmos_worker_utilisation{group="default"} 0.25)",
      R"(bmos_worker_utilisation{group="empty"} 0)",
      "# TYPE bmos_task_queue_wait_seconds summary",
      R"(bmos_task_queue_wait_seconds{quantile="0.5"} 0.00025)",
      R"(bmos_task_queue_wait_seconds{quantile="0.9"} 0.0015)",
      R"(bmos_task_queue_wait_seconds{quantile="0.99"} 0.004)",
      R"(bmos_task_queue_wait_seconds{quantile="0.999"} 0.0095)",
      "bmos_task_queue_wait_seconds_count 110",
      "# TYPE bmos_task_queue_wait_seconds_max gauge",
      "bmos_task_queue_wait_seconds_max 0.012",
      "# TYPE bmos_task_run_seconds summary",
      R"(bmos_task_run_seconds{quantile="0.5"} 0.01)",
      "bmos_task_run_seconds_count 103",
      "bmos_task_run_seconds_max 0.1235",
      "# TYPE bmos_live_tasks gauge",
      "bmos_live_tasks 9",
      "# TYPE bmos_task_queue_wait_duration_seconds histogram",
      R"(bmos_task_queue_wait_duration_seconds_bucket{le="5e-05"} 10)",
      R"(bmos_task_queue_wait_duration_seconds_bucket{le="0.001"} 100)",
      R"(bmos_task_queue_wait_duration_seconds_bucket{le="0.01"} 105)",
      R"(bmos_task_queue_wait_duration_seconds_bucket{le="0.025"} 110)",
      R"(bmos_task_queue_wait_duration_seconds_bucket{le="300"} 110)",
      R"(bmos_task_queue_wait_duration_seconds_bucket{le="+Inf"} 110)",
      "bmos_task_queue_wait_duration_seconds_sum 0.066",
      "bmos_task_queue_wait_duration_seconds_count 110",
      "# TYPE bmos_task_run_duration_seconds histogram",
      R"(bmos_task_run_duration_seconds_bucket{le="+Inf"} 103)",
      "bmos_task_run_duration_seconds_count 103",
  };
  for (const char* line : expected) EXPECT_TRUE(HasLine(out, line)) << line << "\n" << out;
  // The summaries carry no _sum (the histograms below them do).
  EXPECT_EQ(out.find("\nbmos_task_queue_wait_seconds_sum"), std::string::npos);
  EXPECT_EQ(out.find("\nbmos_task_run_seconds_sum"), std::string::npos);
}

TEST(EngineMetrics, EmptyStatsStillWellFormed) {
  std::string out;
  AppendEngineMetrics(out, engine::EngineStats{});
  ExpectWellFormed(out);
  EXPECT_TRUE(HasLine(out, "bmos_tasks_enqueued_total 0"));
  EXPECT_TRUE(HasLine(out, "bmos_live_tasks 0"));
  // Both renderers append to one body without repeating a family.
  HttpMetrics m({"GET /metrics"});
  m.Record(0, 200, 0.001);
  std::string body;
  m.AppendHttpMetrics(body);
  AppendEngineMetrics(body, SampleStats());
  ExpectWellFormed(body);
}

TEST(SchedulerMetrics, RendersEveryFamily) {
  engine::SchedulerStats s;
  s.active = 3;
  s.paused = 1;
  s.finished = 2;
  s.fired_total = 40;
  s.missed_total = 5;
  s.skipped_total = 6;
  s.running = 2;
  s.timer_cpu_us = 1'500'000;
  s.lateness.count = 40;
  s.lateness.buckets.fill(40);
  s.lateness.sum_ms = 12;
  std::string out;
  AppendSchedulerMetrics(out, s);
  ExpectWellFormed(out);
  const char* expected[] = {
      "# TYPE bmos_scheduler_jobs gauge",
      R"(bmos_scheduler_jobs{state="active"} 3)",
      R"(bmos_scheduler_jobs{state="paused"} 1)",
      R"(bmos_scheduler_jobs{state="finished"} 2)",
      "# TYPE bmos_scheduler_runs_total counter",
      "bmos_scheduler_runs_total 40",
      "bmos_scheduler_missed_runs_total 5",
      "bmos_scheduler_skipped_runs_total 6",
      "bmos_scheduler_running_tasks 2",
      "# TYPE bmos_scheduler_fire_lateness_seconds histogram",
      R"(bmos_scheduler_fire_lateness_seconds_bucket{le="+Inf"} 40)",
      "bmos_scheduler_fire_lateness_seconds_sum 0.012",
      "bmos_scheduler_fire_lateness_seconds_count 40",
      "bmos_scheduler_timer_cpu_seconds_total 1.5",
  };
  for (const char* line : expected) EXPECT_TRUE(HasLine(out, line)) << line << "\n" << out;
}

}  // namespace
}  // namespace bmos::api
