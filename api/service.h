// ApiService: the HTTP contract of bmos-taskd, without the sockets. It takes one parsed request,
// authenticates it, routes it, calls the engine and answers with a status and a JSON body. The
// Beast server (api/server.h) feeds it; tests and the fuzz target can call it directly.
//
// Routes (DESIGN.md, "HTTP contract"; prefix /api/v1):
//   POST   /tasks/enqueue          TASK_CREATE  200 {"task_id","status","created","task_name"}
//   POST   /tasks/enqueue/batch    TASK_CREATE  200 {"tasks":[{"task_id","status","created"}],
//                                                    "count"}
//   GET    /tasks/{task_id}        TASK_READ    200 the task record (storage::ToJson)
//   DELETE /tasks/{task_id}        TASK_DELETE  200 {"task_id","status","message"}; 409 terminal
//   GET    /tasks/                 TASK_READ    200 {"tasks":[records],"count","next_cursor"}
//   GET    /tasks/stats/overview   TASK_READ    200 totals, per status, per queue, workers, rates
//   POST   /tasks/scheduled        TASK_CREATE  200 the job (JSON below); 409 job_id taken
//   GET    /tasks/scheduled/       TASK_READ    200 {"jobs":[job],"count","next_cursor"}
//   GET    /tasks/scheduled/stats/overview  TASK_READ  200 {"total","active","paused",
//                                               "finished","runs","missed","skipped",
//                                               "completed","failed","running",...}
//   GET    /tasks/scheduled/{job_id}        TASK_READ     200 the job
//   DELETE /tasks/scheduled/{job_id}        TASK_DELETE   200 {"job_id","message"}
//   PUT    /tasks/scheduled/{job_id}        TASK_UPDATE   200 the job: its spec replaced (the
//                                               POST body; stats, running tasks and pause state
//                                               stay; the timetable restarts from now)
//   POST   /tasks/scheduled/{job_id}/pause  TASK_UPDATE   200 the job
//   POST   /tasks/scheduled/{job_id}/resume TASK_UPDATE   200 the job (next run from now)
//   POST   /tasks/scheduled/{job_id}/run    TASK_EXECUTE  200 {"job_id","task_id","status",
//                                               "created"}; 409 max_instances running
//   A job: {"job_id","job_name","job_function","job_type","trigger_config","trigger",
//   "timezone","job_data","queue_name","priority","max_retries","misfire_grace_time",
//   "coalesce","max_instances","paused","state","next_run_time","next_run_time_local",
//   "created_at","running_tasks","stats":{"runs","missed_runs","skipped_runs",
//   "completed_runs","failed_runs","cancelled_runs","last_run_time","last_task_id",
//   "last_task_status","avg_duration_ms"}}.
//   GET    /health                 none         200 {"status":"ok",...}; 503 when the store
//                                               refuses writes or the server is stopping
//   GET    /metrics                none         200 Prometheus text format 0.0.4
// Errors are {"detail": "..."}: 400 malformed JSON, 401 no or bad token, 403 missing permission,
// 404 unknown id or path, 405 wrong method, 409 impossible transition, 413 body too large (the
// server), 422 invalid field, 503 stopping or store unavailable, 500 a bug.
//
// Thread-safety: Handle may be called from any number of threads at once.
#ifndef BMOS_API_SERVICE_H_
#define BMOS_API_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/jwt.h"
#include "api/metrics.h"
#include "api/router.h"
#include "engine/engine.h"
#include "engine/scheduler.h"

namespace bmos::api {

struct ApiRequest {
  Verb method = Verb::get;
  std::string target;         // path and query string, as received
  std::string body;           // the request body (may be empty)
  std::string authorization;  // the Authorization header's value; empty when absent
};

struct ApiResponse {
  unsigned status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::string allow;              // 405: the Allow header
  bool bearer_challenge = false;  // 401: send `WWW-Authenticate: Bearer`
};

// Receives the answer to one request: on the calling thread before Handle returns, or later on
// an engine thread (an enqueue's answer comes when its record is durable). Must be quick.
using Responder = std::function<void(ApiResponse)>;

struct ApiServiceOptions {
  // Check `Authorization: Bearer <JWT>` on every route but /health and /metrics. Default: true.
  bool auth = true;
  // The HS256 secret (REQUIRES: non-empty when `auth`).
  std::string jwt_secret;
  // The version /health reports.
  std::string version = "0.1.0";
  // The scheduler behind /api/v1/tasks/scheduled (must outlive the service); null: those routes
  // answer 503.
  engine::Scheduler* scheduler = nullptr;
};

class ApiService {
 public:
  // InvalidArgument for auth without a usable secret. `engine` must outlive the service.
  static Result<std::unique_ptr<ApiService>> Create(engine::Engine* engine,
                                                    ApiServiceOptions options);

  // Answers `request` through `respond`, exactly once.
  void Handle(ApiRequest request, Responder respond);

  // From now on every route but /health and /metrics answers 503 (graceful stop).
  void SetDraining() { draining_.store(true, std::memory_order_release); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Counters and histograms of the requests handled (the server also counts its refusals here).
  HttpMetrics& metrics() { return *metrics_; }

  // The route number that counts requests that matched no route, in metrics().
  size_t unmatched_route() const { return routes_.routes().size(); }

 private:
  ApiService(engine::Engine* engine, ApiServiceOptions options,
             std::unique_ptr<JwtVerifier> verifier);

  void Dispatch(int route, const RouteMatch& match, std::string_view query, ApiRequest& request,
                Responder& respond);
  void Enqueue(ApiRequest& request, Responder& respond);
  void EnqueueBatch(ApiRequest& request, Responder& respond);
  ApiResponse GetTask(std::string_view id) const;
  ApiResponse CancelTask(std::string_view id);
  ApiResponse ListTasks(std::string_view query) const;
  ApiResponse Stats() const;
  ApiResponse ScheduledJobs(int route, const RouteMatch& match, std::string_view query,
                            ApiRequest& request);
  ApiResponse Health() const;
  ApiResponse Metrics() const;

  engine::Engine* engine_;
  ApiServiceOptions options_;
  std::unique_ptr<JwtVerifier> verifier_;
  RouteTable routes_;
  std::unique_ptr<HttpMetrics> metrics_;
  std::atomic<bool> draining_{false};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// The HTTP status for a non-OK engine or store status (InvalidArgument 422, NotFound 404,
// FailedPrecondition 409, Unavailable and IOError 503, DeadlineExceeded 504, others 500).
unsigned HttpStatusOf(const storage::Status& status);

}  // namespace bmos::api

#endif  // BMOS_API_SERVICE_H_
