// Prometheus metrics for `GET /metrics`: HTTP request counters and latency histograms recorded
// on the hot path, and a rendering of the engine's stats, both in the Prometheus text exposition
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Written by hand: Debian 12 packages no Prometheus C++ client, and what the server needs is a
// fixed set of counters and one text renderer.
//
//   HttpMetrics metrics({"GET /health", "POST /api/v1/tasks/enqueue"});
//   metrics.Record(1, 201, 0.000180);   // on every response
//   std::string body;
//   metrics.AppendHttpMetrics(body);     // on GET /metrics
//   AppendEngineMetrics(body, engine.Stats());
//
// Thread-safety: every HttpMetrics method may be called from any number of threads at once.
// Recording is lock-free (relaxed atomic increments: the counters are independent, and a scrape
// may see one request in the request counter and not yet in the histogram, which Prometheus
// tolerates). The Append functions only read; AppendEngineMetrics is a pure function.
#ifndef BMOS_API_METRICS_H_
#define BMOS_API_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "engine/scheduler.h"

namespace bmos::api {

// Counters and latency histograms of the HTTP server, per route and status code, plus the
// connection gauge and the counters of refused connections and rejected requests.
class HttpMetrics {
 public:
  // Status codes counted under their own `code` label; any other is counted as code="other".
  static constexpr std::array<int, 17> kStatusCodes = {200, 201, 204, 400, 401, 403, 404, 405, 409,
                                                       411, 413, 415, 422, 429, 431, 500, 503};
  // Upper bounds (seconds) of the latency histogram buckets; a last bucket, le="+Inf", follows.
  static constexpr std::array<double, 15> kLatencyBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                            0.0025,  0.005,  0.01,    0.025,  0.05,
                                                            0.1,     0.25,   0.5,     1,      2.5};

  // Why a request was refused before it reached a route.
  enum class Rejection : uint8_t {
    kBodyTooLarge,     // reason="body_too_large" (413 before the body was read)
    kHeadersTooLarge,  // reason="headers_too_large" (431)
    kTimeout,          // reason="timeout" (the read or write deadline passed)
  };

  // `route_names[i]` is the `route` label of route index i ("POST /api/v1/tasks/enqueue").
  // Record with an index >= route_names.size() counts under route="other" (unmatched paths).
  explicit HttpMetrics(std::vector<std::string> route_names);

  // Not copyable or movable: threads hold references to it while recording.
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;

  // Counts one answered request of route `route` with `status_code`, which took `seconds`
  // (negative or NaN counts as 0). A few relaxed atomic increments; never allocates.
  void Record(size_t route, int status_code, double seconds);

  // The connection gauge: call Opened when a connection is accepted and Closed when it ends.
  void ConnectionOpened();
  void ConnectionClosed();
  // Counts a connection closed at once because the server was at its connection limit.
  void ConnectionRefused();
  // Counts a request refused for `reason`.
  void RequestRejected(Rejection reason);

  // Requests recorded so far for (route, status code) (code other than kStatusCodes: all such
  // codes together; route >= the route count: route "other").
  uint64_t Requests(size_t route, int status_code) const;
  // Connections open now (opened minus closed).
  int64_t OpenConnections() const;

  // Appends these families, each with one # HELP and one # TYPE line:
  //   bmos_http_requests_total{route,code}                 counter; only non-zero series
  //   bmos_http_request_duration_seconds{route}            histogram (_bucket{le}, _sum,
  //                                                        _count); only routes with requests
  //   bmos_http_connections_open                           gauge
  //   bmos_http_connections_refused_total                  counter
  //   bmos_http_requests_rejected_total{reason}            counter; every reason
  // Under concurrent recording each series is a valid snapshot; a histogram's buckets and
  // _count come from one read of its buckets, so +Inf always equals _count.
  void AppendHttpMetrics(std::string& out) const;

 private:
  static constexpr size_t kCodeSlots = kStatusCodes.size() + 1;      // + "other"
  static constexpr size_t kBucketSlots = kLatencyBounds.size() + 1;  // + "+Inf"

  // One route's counters, aligned to a cache line so that threads recording different routes do
  // not invalidate each other's lines.
  struct alignas(64) RouteStats {
    std::array<std::atomic<uint64_t>, kCodeSlots> codes{};
    std::array<std::atomic<uint64_t>, kBucketSlots> buckets{};  // not cumulative
    std::atomic<uint64_t> sum_ns{0};
  };

  static size_t CodeSlot(int status_code);

  std::vector<std::string> route_names_;  // size n; slot n of routes_ is "other"
  std::unique_ptr<RouteStats[]> routes_;  // n + 1 entries
  // On its own cache line, away from the last route's counters: every connection touches it.
  alignas(64) std::atomic<int64_t> open_connections_{0};
  std::atomic<uint64_t> refused_connections_{0};
  std::array<std::atomic<uint64_t>, 3> rejected_{};  // by Rejection
};

// Appends the engine's families from `stats`, each with one # HELP and one # TYPE line:
//   bmos_tasks{queue,status}                gauge, every state of every queue in by_queue
//   bmos_queue_depth{queue}                 gauge, PENDING + RETRYING
//   bmos_tasks_enqueued_total, bmos_tasks_completed_total, bmos_tasks_failed_total,
//   bmos_tasks_retried_total, bmos_tasks_cancelled_total          counters
//   bmos_workers{group}, bmos_workers_busy{group}                 gauges
//   bmos_worker_utilisation{group}          gauge, busy / workers (0 for a group of 0 workers)
//   bmos_task_queue_wait_seconds{quantile}  summary of quantiles 0.5, 0.9, 0.99, 0.999 and
//   bmos_task_run_seconds{quantile}         _count; no _sum (EngineStats keeps none)
//   bmos_task_queue_wait_seconds_max, bmos_task_run_seconds_max   gauges (the largest sample)
//   bmos_live_tasks                         gauge
void AppendEngineMetrics(std::string& out, const engine::EngineStats& stats);

// Appends the scheduler's families:
//   bmos_scheduler_jobs{state}                       gauge: jobs active, paused, finished
//   bmos_scheduler_runs_total                        counter: runs enqueued since open
//   bmos_scheduler_missed_runs_total                 counter: late beyond grace, or coalesced
//   bmos_scheduler_skipped_runs_total                counter: max_instances were running
//   bmos_scheduler_running_tasks                     gauge: tasks of jobs not yet ended
//   bmos_scheduler_fire_lateness_seconds             histogram: enqueue time - scheduled time
//   bmos_scheduler_timer_cpu_seconds_total           counter: CPU time of the timer thread
void AppendSchedulerMetrics(std::string& out, const engine::SchedulerStats& stats);

// `value` escaped for a label value of the text format: backslash, double quote and newline
// become \\, \" and \n; other bytes are copied.
std::string EscapeLabelValue(std::string_view value);

}  // namespace bmos::api

#endif  // BMOS_API_METRICS_H_
