#include "api/service.h"

#include <boost/json/serialize.hpp>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "api/json_writer.h"
#include "api/request_json.h"

namespace bmos::api {
namespace {

using engine::EnqueueRequest;
using engine::EnqueueResult;
using storage::TaskState;

enum RouteId : int {
  kHealth,
  kMetrics,
  kEnqueue,
  kEnqueueBatch,
  kStats,
  kList,
  kGetTask,
  kCancelTask,
  kAddJob,
  kListJobs,
  kJobStats,
  kGetJob,
  kDeleteJob,
  kReplaceJob,
  kPauseJob,
  kResumeJob,
  kRunJob,
  kRouteCount,
};

ApiResponse Json(unsigned status, std::string body) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

ApiResponse Error(unsigned status, std::string_view detail) {
  return Json(status, DetailJson(detail));
}

ApiResponse Error(const storage::Status& s) { return Error(HttpStatusOf(s), s.message()); }

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The token of an `Authorization: Bearer <token>` header (the scheme in any case, as RFC 7235
// says); empty when the header is absent or uses another scheme.
std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = header[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kScheme[i]) return {};
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return token;
}

void WriteEnqueueResult(JsonWriter& w, const EnqueueResult& r) {
  char id[36];
  r.id.Format(id);
  w.Key("task_id").String(std::string_view(id, sizeof(id)));
  w.Key("status").String(storage::ToString(r.state));
  w.Key("created").Bool(r.created);
}

void WriteStateCounts(JsonWriter& w, const std::array<uint64_t, storage::kTaskStateCount>& c) {
  w.BeginObject();
  for (int i = 0; i < storage::kTaskStateCount; ++i) {
    w.Key(storage::ToString(static_cast<TaskState>(i))).Uint(c[i]);
  }
  w.EndObject();
}

void WritePercentiles(JsonWriter& w, const engine::EngineStats::Percentiles& p) {
  w.BeginObject();
  w.Key("count").Uint(p.count);
  w.Key("p50").Double(p.p50_ms);
  w.Key("p90").Double(p.p90_ms);
  w.Key("p99").Double(p.p99_ms);
  w.Key("p999").Double(p.p999_ms);
  w.Key("max").Double(p.max_ms);
  w.EndObject();
}

// Times of jobs: ISO 8601 UTC with milliseconds, as task times are; null when absent.
void WriteTime(JsonWriter& w, const std::optional<int64_t>& unix_us) {
  if (unix_us) {
    w.String(storage::FormatIsoTime(*unix_us / 1000));
  } else {
    w.Null();
  }
}

// A scheduled job as GET /tasks/scheduled/{job_id} shows it.
std::string JobJson(const engine::JobInfo& job) {
  const engine::JobSpec& s = job.spec;
  std::string body;
  body.reserve(1024);
  JsonWriter w(body);
  w.BeginObject();
  w.Key("job_id").String(s.id);
  w.Key("job_name").String(s.name);
  w.Key("job_function").String(s.function);
  w.Key("job_type").String(engine::ToString(s.type));
  w.Key("trigger_config").Raw(boost::json::serialize(s.trigger_config));
  w.Key("trigger").String(job.trigger);
  w.Key("timezone").String(job.timezone);
  w.Key("job_data").Raw(boost::json::serialize(s.data));
  w.Key("queue_name").StringOrNull(s.queue);
  w.Key("priority");
  if (s.priority) {
    w.String(storage::ToString(*s.priority));
  } else {
    w.Null();
  }
  w.Key("max_retries");
  if (s.max_retries) {
    w.Int(*s.max_retries);
  } else {
    w.Null();
  }
  w.Key("misfire_grace_time");
  if (s.misfire_grace_seconds) {
    w.Double(*s.misfire_grace_seconds);
  } else {
    w.Null();
  }
  w.Key("coalesce").Bool(s.coalesce);
  w.Key("max_instances").Int(s.max_instances);
  w.Key("paused").Bool(s.paused);
  w.Key("state").String(engine::ToString(job.state));
  w.Key("next_run_time");
  WriteTime(w, job.next_run_us);
  w.Key("next_run_time_local").StringOrNull(job.next_run_local);
  w.Key("created_at");
  WriteTime(w, job.created_us);
  w.Key("running_tasks").BeginArray();
  for (const storage::TaskId& id : job.running) w.String(id.ToString());
  w.EndArray();
  const engine::JobStats& st = job.stats;
  w.Key("stats").BeginObject();
  w.Key("runs").Uint(st.runs);
  w.Key("missed_runs").Uint(st.missed_runs);
  w.Key("skipped_runs").Uint(st.skipped_runs);
  w.Key("completed_runs").Uint(st.completed_runs);
  w.Key("failed_runs").Uint(st.failed_runs);
  w.Key("cancelled_runs").Uint(st.cancelled_runs);
  w.Key("last_run_time");
  WriteTime(w, st.last_run_us);
  w.Key("last_task_id").StringOrNull(st.last_task_id);
  w.Key("last_task_status");
  if (st.last_task_state) {
    w.String(storage::ToString(*st.last_task_state));
  } else {
    w.Null();
  }
  w.Key("avg_duration_ms").Double(st.avg_duration_ms());
  w.EndObject();
  w.EndObject();
  return body;
}

}  // namespace

unsigned HttpStatusOf(const storage::Status& status) {
  using Code = storage::Status::Code;
  switch (status.code()) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 422;
    case Code::kNotFound:
      return 404;
    case Code::kFailedPrecondition:
      return 409;
    case Code::kUnavailable:
    case Code::kIOError:
      return 503;
    case Code::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

Result<std::unique_ptr<ApiService>> ApiService::Create(engine::Engine* engine,
                                                       ApiServiceOptions options) {
  std::unique_ptr<JwtVerifier> verifier;
  if (options.auth) {
    if (options.jwt_secret.empty()) {
      return Status::InvalidArgument("auth is on but no JWT secret was given");
    }
    Result<std::unique_ptr<JwtVerifier>> v = JwtVerifier::Create(options.jwt_secret);
    if (!v.ok()) return v.status();
    verifier = std::move(v).value();
  }
  return std::unique_ptr<ApiService>(
      new ApiService(engine, std::move(options), std::move(verifier)));
}

ApiService::ApiService(engine::Engine* engine, ApiServiceOptions options,
                       std::unique_ptr<JwtVerifier> verifier)
    : engine_(engine), options_(std::move(options)), verifier_(std::move(verifier)) {
  routes_.Add(Verb::get, "/health", kHealth, std::nullopt);
  routes_.Add(Verb::get, "/metrics", kMetrics, std::nullopt);
  routes_.Add(Verb::post, "/api/v1/tasks/enqueue", kEnqueue, Permission::kTaskCreate);
  routes_.Add(Verb::post, "/api/v1/tasks/enqueue/batch", kEnqueueBatch, Permission::kTaskCreate);
  routes_.Add(Verb::get, "/api/v1/tasks/stats/overview", kStats, Permission::kTaskRead);
  routes_.Add(Verb::get, "/api/v1/tasks/", kList, Permission::kTaskRead);
  routes_.Add(Verb::get, "/api/v1/tasks/{task_id}", kGetTask, Permission::kTaskRead);
  routes_.Add(Verb::delete_, "/api/v1/tasks/{task_id}", kCancelTask, Permission::kTaskDelete);
  routes_.Add(Verb::post, "/api/v1/tasks/scheduled", kAddJob, Permission::kTaskCreate);
  routes_.Add(Verb::get, "/api/v1/tasks/scheduled/", kListJobs, Permission::kTaskRead);
  routes_.Add(Verb::get, "/api/v1/tasks/scheduled/stats/overview", kJobStats,
              Permission::kTaskRead);
  routes_.Add(Verb::get, "/api/v1/tasks/scheduled/{job_id}", kGetJob, Permission::kTaskRead);
  routes_.Add(Verb::delete_, "/api/v1/tasks/scheduled/{job_id}", kDeleteJob,
              Permission::kTaskDelete);
  routes_.Add(Verb::put, "/api/v1/tasks/scheduled/{job_id}", kReplaceJob, Permission::kTaskUpdate);
  routes_.Add(Verb::post, "/api/v1/tasks/scheduled/{job_id}/pause", kPauseJob,
              Permission::kTaskUpdate);
  routes_.Add(Verb::post, "/api/v1/tasks/scheduled/{job_id}/resume", kResumeJob,
              Permission::kTaskUpdate);
  routes_.Add(Verb::post, "/api/v1/tasks/scheduled/{job_id}/run", kRunJob,
              Permission::kTaskExecute);
  std::vector<std::string> names;
  for (const Route& r : routes_.routes()) names.push_back(r.name);
  metrics_ = std::make_unique<HttpMetrics>(std::move(names));
}

void ApiService::Handle(ApiRequest request, Responder respond) {
  const auto start = std::chrono::steady_clock::now();
  const auto [path, query] = SplitTarget(request.target);
  const RouteMatch match = routes_.Match(request.method, path);
  const size_t route =
      match.route != nullptr ? static_cast<size_t>(match.route->id) : unmatched_route();
  // Every answer is counted with its route, code and latency on its way out.
  Responder answer = [this, route, start, respond = std::move(respond)](ApiResponse r) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics_->Record(route, static_cast<int>(r.status), took.count());
    respond(std::move(r));
  };
  switch (match.kind) {
    case RouteMatch::Kind::kNotFound:
      return answer(Error(404, "Not Found"));
    case RouteMatch::Kind::kMethodNotAllowed: {
      ApiResponse r = Error(405, "Method Not Allowed");
      r.allow = match.allow;
      return answer(std::move(r));
    }
    case RouteMatch::Kind::kFound:
      break;
  }
  const Route& r = *match.route;
  if (r.permission && options_.auth) {
    const std::string_view token = BearerToken(request.authorization);
    if (token.empty()) {
      ApiResponse e = Error(401, "Not authenticated: send 'Authorization: Bearer <token>'");
      e.bearer_challenge = true;
      return answer(std::move(e));
    }
    Result<Claims> claims = verifier_->Verify(token, UnixSeconds());
    if (!claims.ok()) {
      ApiResponse e = Error(401, "invalid token: " + claims.status().message());
      e.bearer_challenge = true;
      return answer(std::move(e));
    }
    if (!claims->permissions.Has(*r.permission)) {
      return answer(Error(
          403,
          "permission " + std::string(ToString(*r.permission)) + " required; the token grants " +
              (claims->permissions.empty() ? std::string("none") : ToString(claims->permissions))));
    }
  }
  if (draining() && r.permission) {
    return answer(Error(503, "the server is shutting down; no new requests are accepted"));
  }
  Dispatch(r.id, match, query, request, answer);
}

void ApiService::Dispatch(int route, const RouteMatch& match, std::string_view query,
                          ApiRequest& request, Responder& respond) {
  switch (route) {
    case kHealth:
      return respond(Health());
    case kMetrics:
      return respond(Metrics());
    case kEnqueue:
      return Enqueue(request, respond);
    case kEnqueueBatch:
      return EnqueueBatch(request, respond);
    case kStats:
      return respond(Stats());
    case kList:
      return respond(ListTasks(query));
    case kGetTask:
      return respond(GetTask(match.params[0]));
    case kCancelTask:
      return respond(CancelTask(match.params[0]));
    case kAddJob:
    case kListJobs:
    case kJobStats:
    case kGetJob:
    case kDeleteJob:
    case kReplaceJob:
    case kPauseJob:
    case kResumeJob:
    case kRunJob:
      return respond(ScheduledJobs(route, match, query, request));
    default:
      return respond(Error(500, "route without a handler"));
  }
}

void ApiService::Enqueue(ApiRequest& request, Responder& respond) {
  ParseResult<EnqueueRequest> parsed = ParseEnqueueBody(request.body);
  if (!parsed.ok()) return respond(Error(parsed.error().http_status, parsed.error().detail));
  std::string name = parsed->name;
  std::vector<EnqueueRequest> one;
  one.push_back(std::move(parsed).value());
  engine_->EnqueueAsync(std::move(one), [respond = std::move(respond), name = std::move(name)](
                                            Result<std::vector<EnqueueResult>> r) {
    if (!r.ok()) return respond(Error(r.status()));
    std::string body;
    body.reserve(128 + name.size());
    JsonWriter w(body);
    w.BeginObject();
    WriteEnqueueResult(w, r->front());
    w.Key("task_name").String(name);
    w.EndObject();
    respond(Json(200, std::move(body)));
  });
}

void ApiService::EnqueueBatch(ApiRequest& request, Responder& respond) {
  ParseResult<std::vector<EnqueueRequest>> parsed = ParseEnqueueBatchBody(request.body);
  if (!parsed.ok()) return respond(Error(parsed.error().http_status, parsed.error().detail));
  engine_->EnqueueAsync(std::move(parsed).value(),
                        [respond = std::move(respond)](Result<std::vector<EnqueueResult>> r) {
                          if (!r.ok()) return respond(Error(r.status()));
                          std::string body;
                          body.reserve(16 + r->size() * 80);
                          JsonWriter w(body);
                          w.BeginObject();
                          w.Key("tasks").BeginArray();
                          for (const EnqueueResult& e : *r) {
                            w.BeginObject();
                            WriteEnqueueResult(w, e);
                            w.EndObject();
                          }
                          w.EndArray();
                          w.Key("count").Uint(r->size());
                          w.EndObject();
                          respond(Json(200, std::move(body)));
                        });
}

ApiResponse ApiService::GetTask(std::string_view id) const {
  Result<storage::TaskRecord> r = engine_->Get(id);
  if (!r.ok()) {
    if (r.status().code() == Status::Code::kNotFound) {
      return Error(404, "task " + std::string(id) + " not found");
    }
    return Error(r.status());
  }
  return Json(200, storage::ToJson(*r));
}

ApiResponse ApiService::CancelTask(std::string_view id) {
  std::optional<storage::TaskId> parsed = storage::TaskId::Parse(id);
  if (!parsed) return Error(404, "task " + std::string(id) + " not found");
  Status s = engine_->Cancel(*parsed);
  if (!s.ok()) {
    if (s.code() == Status::Code::kNotFound) {
      return Error(404, "task " + std::string(id) + " not found");
    }
    return Error(s);
  }
  // The state right after the cancel: CANCELLED, or RUNNING while the handler has yet to
  // observe its token (or already COMPLETED if it finished first).
  Result<storage::TaskRecord> after = engine_->Get(*parsed);
  const TaskState state = after.ok() ? after->state : TaskState::kCancelled;
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("task_id").String(id);
  w.Key("status").String(storage::ToString(state));
  w.Key("message").String(state == TaskState::kRunning
                              ? "cancel requested: the task ends CANCELLED when its handler "
                                "observes the cancellation"
                              : "task cancelled");
  w.EndObject();
  return Json(200, std::move(body));
}

ApiResponse ApiService::ListTasks(std::string_view query) const {
  ParseResult<storage::ListQuery> q = ParseListQuery(query);
  if (!q.ok()) return Error(q.error().http_status, q.error().detail);
  Result<storage::ListPage> page = engine_->List(*q);
  if (!page.ok()) return Error(page.status());
  std::string body;
  body.reserve(64 + page->records.size() * 512);
  JsonWriter w(body);
  w.BeginObject();
  w.Key("tasks").BeginArray();
  for (const storage::TaskRecord& r : page->records) w.Raw(storage::ToJson(r));
  w.EndArray();
  w.Key("count").Uint(page->records.size());
  w.Key("next_cursor");
  if (page->next_cursor) {
    w.String(page->next_cursor->ToString());
  } else {
    w.Null();
  }
  w.EndObject();
  return Json(200, std::move(body));
}

ApiResponse ApiService::Stats() const {
  const engine::EngineStats s = engine_->Stats();
  uint64_t total = 0;
  for (uint64_t n : s.by_state) total += n;
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("total_tasks").Uint(total);
  w.Key("by_status");
  WriteStateCounts(w, s.by_state);
  w.Key("queues").BeginObject();
  for (const auto& [queue, counts] : s.by_queue) {
    w.Key(queue);
    WriteStateCounts(w, counts);
  }
  w.EndObject();
  w.Key("enqueued").Uint(s.enqueued);
  w.Key("completed").Uint(s.completed);
  w.Key("failed").Uint(s.failed);
  w.Key("retried").Uint(s.retried);
  w.Key("cancelled").Uint(s.cancelled);
  w.Key("completed_per_second").Double(s.completed_per_second);
  w.Key("failed_per_second").Double(s.failed_per_second);
  w.Key("success_rate").Double(s.success_rate);
  w.Key("live_tasks").Uint(s.live_tasks);
  w.Key("workers").BeginArray();
  for (const engine::EngineStats::Group& g : s.groups) {
    w.BeginObject();
    w.Key("group").String(g.name);
    w.Key("queues").BeginArray();
    for (const std::string& q : g.queues) w.String(q);
    w.EndArray();
    w.Key("workers").Int(g.workers);
    w.Key("busy").Int(g.busy);
    w.Key("idle").Int(g.idle);
    w.EndObject();
  }
  w.EndArray();
  w.Key("queue_wait_ms");
  WritePercentiles(w, s.queue_wait);
  w.Key("run_time_ms");
  WritePercentiles(w, s.run_time);
  w.EndObject();
  return Json(200, std::move(body));
}

// The scheduled-job routes. Their scheduler calls wait for the store (a job change is durable
// before it is answered), on the connection's I/O thread: these are rare administrative calls.
ApiResponse ApiService::ScheduledJobs(int route, const RouteMatch& match, std::string_view query,
                                      ApiRequest& request) {
  engine::Scheduler* scheduler = options_.scheduler;
  if (scheduler == nullptr) return Error(503, "the scheduler is not running in this server");
  auto job_or_error = [](const Result<engine::JobInfo>& r) {
    return r.ok() ? Json(200, JobJson(*r)) : Error(r.status());
  };
  switch (route) {
    case kAddJob: {
      ParseResult<engine::JobSpec> spec = ParseJobBody(request.body);
      if (!spec.ok()) return Error(spec.error().http_status, spec.error().detail);
      return job_or_error(scheduler->Add(std::move(spec).value()));
    }
    case kListJobs: {
      ParseResult<engine::JobListQuery> q = ParseJobListQuery(query);
      if (!q.ok()) return Error(q.error().http_status, q.error().detail);
      Result<engine::JobListPage> page = scheduler->List(*q);
      if (!page.ok()) return Error(page.status());
      std::string body;
      JsonWriter w(body);
      w.BeginObject();
      w.Key("jobs").BeginArray();
      for (const engine::JobInfo& job : page->jobs) w.Raw(JobJson(job));
      w.EndArray();
      w.Key("count").Uint(page->jobs.size());
      w.Key("next_cursor").StringOrNull(page->next_cursor);
      w.EndObject();
      return Json(200, std::move(body));
    }
    case kJobStats: {
      const engine::SchedulerStats s = scheduler->Stats();
      std::string body;
      JsonWriter w(body);
      w.BeginObject();
      w.Key("total").Uint(s.jobs);
      w.Key("active").Uint(s.active);
      w.Key("paused").Uint(s.paused);
      w.Key("finished").Uint(s.finished);
      w.Key("runs").Uint(s.runs);
      w.Key("missed").Uint(s.missed_runs);
      w.Key("skipped").Uint(s.skipped_runs);
      w.Key("completed").Uint(s.completed_runs);
      w.Key("failed").Uint(s.failed_runs);
      w.Key("running").Uint(s.running);
      w.Key("next_run_time");
      WriteTime(w, s.next_run_us);
      w.Key("fire_lateness_ms");
      WritePercentiles(w, s.lateness);
      w.EndObject();
      return Json(200, std::move(body));
    }
    case kGetJob:
      return job_or_error(scheduler->Get(match.params[0]));
    case kDeleteJob: {
      Status s = scheduler->Remove(match.params[0]);
      if (!s.ok()) return Error(s);
      std::string body;
      JsonWriter w(body);
      w.BeginObject();
      w.Key("job_id").String(match.params[0]);
      w.Key("message").String("job deleted; tasks it already enqueued run on");
      w.EndObject();
      return Json(200, std::move(body));
    }
    case kReplaceJob: {
      ParseResult<engine::JobSpec> spec = ParseJobBody(request.body);
      if (!spec.ok()) return Error(spec.error().http_status, spec.error().detail);
      return job_or_error(scheduler->Replace(match.params[0], std::move(spec).value()));
    }
    case kPauseJob:
      return job_or_error(scheduler->Pause(match.params[0]));
    case kResumeJob:
      return job_or_error(scheduler->Resume(match.params[0]));
    case kRunJob: {
      Result<EnqueueResult> r = scheduler->RunNow(match.params[0]);
      if (!r.ok()) return Error(r.status());
      std::string body;
      JsonWriter w(body);
      w.BeginObject();
      w.Key("job_id").String(match.params[0]);
      WriteEnqueueResult(w, *r);
      w.EndObject();
      return Json(200, std::move(body));
    }
    default:
      return Error(500, "route without a handler");
  }
}

ApiResponse ApiService::Health() const {
  const Status store = engine_->store().Health();
  const bool stopping = draining();
  const char* status = stopping ? "stopping" : (store.ok() ? "ok" : "degraded");
  const std::chrono::duration<double> up = std::chrono::steady_clock::now() - started_;
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("status").String(status);
  w.Key("version").String(options_.version);
  w.Key("uptime_seconds").Double(static_cast<double>(static_cast<int64_t>(up.count() * 10)) / 10);
  w.Key("storage").BeginObject();
  w.Key("durability").String(storage::ToString(engine_->store().durability()));
  w.Key("writable").Bool(store.ok());
  w.Key("detail").StringOrNull(store.message());
  w.EndObject();
  w.Key("auth").String(options_.auth ? "jwt" : "none");
  w.EndObject();
  return Json(stopping || !store.ok() ? 503 : 200, std::move(body));
}

ApiResponse ApiService::Metrics() const {
  std::string body;
  body.reserve(16 * 1024);
  metrics_->AppendHttpMetrics(body);
  AppendEngineMetrics(body, engine_->Stats());
  if (options_.scheduler != nullptr) AppendSchedulerMetrics(body, options_.scheduler->Stats());
  ApiResponse r = Json(200, std::move(body));
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return r;
}

}  // namespace bmos::api
