// Unit tests of the route table and of ApiService in process (a memory-mode engine, no sockets):
// routing precedence, 404/405, auth header parsing, draining, and the error-code mapping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "api/router.h"
#include "api/service.h"
#include "api/test_handlers.h"
#include "tests/api/taskd_process.h"

namespace bmos::api {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(RouteTable, LiteralsWinOverParametersAndTrailingSlashesMatch) {
  RouteTable t;
  t.Add(Verb::get, "/api/v1/tasks/{task_id}", 1, Permission::kTaskRead);
  t.Add(Verb::get, "/api/v1/tasks/stats/overview", 2, Permission::kTaskRead);
  t.Add(Verb::get, "/api/v1/tasks/scheduled/", 3, Permission::kTaskRead);
  t.Add(Verb::get, "/api/v1/tasks/", 4, Permission::kTaskRead);
  t.Add(Verb::delete_, "/api/v1/tasks/{task_id}", 5, Permission::kTaskDelete);

  RouteMatch m = t.Match(Verb::get, "/api/v1/tasks/abc");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->id, 1);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0], "abc");
  EXPECT_EQ(t.Match(Verb::get, "/api/v1/tasks/stats/overview").route->id, 2);
  EXPECT_EQ(t.Match(Verb::get, "/api/v1/tasks/scheduled").route->id, 3);
  EXPECT_EQ(t.Match(Verb::get, "/api/v1/tasks/").route->id, 4);
  EXPECT_EQ(t.Match(Verb::get, "/api/v1/tasks").route->id, 4);
  EXPECT_EQ(t.Match(Verb::delete_, "/api/v1/tasks/abc").route->id, 5);
  EXPECT_EQ(t.Match(Verb::get, "/api/v1/tasks/abc").route->name, "GET /api/v1/tasks/{task_id}");
}

TEST(RouteTable, UnknownPathsAreNotFoundAndOtherMethodsListTheAllowedOnes) {
  RouteTable t;
  t.Add(Verb::get, "/api/v1/tasks/{task_id}", 1, Permission::kTaskRead);
  t.Add(Verb::delete_, "/api/v1/tasks/{task_id}", 2, Permission::kTaskDelete);
  EXPECT_EQ(t.Match(Verb::get, "/api/v1/other/x").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(t.Match(Verb::get, "/api/v1/tasks/a/b").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(t.Match(Verb::get, "").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(t.Match(Verb::get, "api/v1/tasks/a").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(t.Match(Verb::get, "/api//v1/tasks/a").kind, RouteMatch::Kind::kNotFound);
  RouteMatch m = t.Match(Verb::post, "/api/v1/tasks/a");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, DELETE");
}

TEST(RouteTable, SplitTargetSeparatesTheQuery) {
  EXPECT_EQ(SplitTarget("/a/b?x=1&y=2").first, "/a/b");
  EXPECT_EQ(SplitTarget("/a/b?x=1&y=2").second, "x=1&y=2");
  EXPECT_EQ(SplitTarget("/a").second, "");
}

TEST(HttpStatusOf, MapsEveryCode) {
  using storage::Status;
  EXPECT_EQ(HttpStatusOf(Status::InvalidArgument("x")), 422u);
  EXPECT_EQ(HttpStatusOf(Status::NotFound("x")), 404u);
  EXPECT_EQ(HttpStatusOf(Status::FailedPrecondition("x")), 409u);
  EXPECT_EQ(HttpStatusOf(Status::Unavailable("x")), 503u);
  EXPECT_EQ(HttpStatusOf(Status::IOError("x")), 503u);
  EXPECT_EQ(HttpStatusOf(Status::DeadlineExceeded("x")), 504u);
  EXPECT_EQ(HttpStatusOf(Status::Internal("x")), 500u);
  EXPECT_EQ(HttpStatusOf(Status::Corruption("x")), 500u);
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::EngineOptions o;
    o.durability = storage::Durability::kMemory;
    auto e = engine::Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    ASSERT_TRUE(RegisterTestHandlers(*engine_).ok());
    ApiServiceOptions so;
    so.jwt_secret = test_util::kTestSecret;
    auto s = ApiService::Create(engine_.get(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    service_ = std::move(s).value();
  }
  void TearDown() override {
    if (engine_) (void)engine_->Stop(0ms);
  }

  // Handles one request and waits (bounded) for its answer.
  ApiResponse Call(Verb verb, std::string target, std::string body = {},
                   std::string authorization = "Bearer " + test_util::TokenFor("admin")) {
    ApiRequest r;
    r.method = verb;
    r.target = std::move(target);
    r.body = std::move(body);
    r.authorization = std::move(authorization);
    std::mutex mu;
    std::condition_variable cv;
    std::optional<ApiResponse> answer;
    service_->Handle(std::move(r), [&](ApiResponse a) {
      std::lock_guard<std::mutex> lock(mu);
      answer = std::move(a);
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return answer.has_value(); }));
    return answer.value_or(ApiResponse{});
  }

  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<ApiService> service_;
};

TEST_F(ServiceTest, TheBearerSchemeIsCaseInsensitiveAndOtherSchemesAreNoToken) {
  const std::string token = test_util::TokenFor("viewer");
  EXPECT_EQ(Call(Verb::get, "/api/v1/tasks/", "", "bearer " + token).status, 200u);
  EXPECT_EQ(Call(Verb::get, "/api/v1/tasks/", "", "BEARER   " + token + " ").status, 200u);
  ApiResponse r = Call(Verb::get, "/api/v1/tasks/", "", "Token " + token);
  EXPECT_EQ(r.status, 401u);
  EXPECT_TRUE(r.bearer_challenge);
  EXPECT_EQ(Call(Verb::get, "/api/v1/tasks/", "", "Bearer").status, 401u);
}

TEST_F(ServiceTest, DrainingAnswers503ButHealthStillAnswers) {
  ASSERT_EQ(Call(Verb::post, "/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})").status, 200u);
  service_->SetDraining();
  ApiResponse r = Call(Verb::post, "/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})");
  EXPECT_EQ(r.status, 503u);
  EXPECT_THAT(r.body, HasSubstr("shutting down"));
  ApiResponse h = Call(Verb::get, "/health", "", "");
  EXPECT_EQ(h.status, 503u);
  EXPECT_THAT(h.body, HasSubstr(R"("status":"stopping")"));
  EXPECT_EQ(Call(Verb::get, "/metrics", "", "").status, 200u);
}

TEST_F(ServiceTest, AnEngineThatStoppedAnswers503) {
  ASSERT_TRUE(engine_->Stop(0ms).ok());
  ApiResponse r = Call(Verb::post, "/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})");
  EXPECT_EQ(r.status, 503u);
  EXPECT_THAT(r.body, HasSubstr("stopping"));
}

TEST_F(ServiceTest, EveryAnswerIsCountedByRouteAndCode) {
  ASSERT_EQ(Call(Verb::get, "/health", "", "").status, 200u);
  ASSERT_EQ(Call(Verb::get, "/nowhere", "", "").status, 404u);
  ASSERT_EQ(Call(Verb::get, "/api/v1/tasks/", "", "").status, 401u);
  std::string text = Call(Verb::get, "/metrics", "", "").body;
  EXPECT_THAT(text, HasSubstr(R"(bmos_http_requests_total{route="GET /health",code="200"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(bmos_http_requests_total{route="other",code="404"} 1)"));
  EXPECT_THAT(text,
              HasSubstr(R"(bmos_http_requests_total{route="GET /api/v1/tasks/",code="401"} 1)"));
}

TEST(ServiceCreate, AuthWithoutASecretIsRefused) {
  ApiServiceOptions so;
  so.jwt_secret = "";
  auto s = ApiService::Create(nullptr, so);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("secret"));
}

}  // namespace
}  // namespace bmos::api
