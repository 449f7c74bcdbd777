// Integration tests of bmos-taskd: the real binary on an ephemeral loopback port, real RocksDB,
// real sockets. Every endpoint and status code, every permission, bad bodies, limits, slow and
// idle clients, keep-alive, concurrent clients, and SIGTERM while tasks run.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "api/jwt.h"
#include "tests/api/taskd_process.h"
#include "tests/storage/store_test_util.h"

namespace bmos::api {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;
using storage::test_util::TempDir;

boost::json::value Parse(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) ADD_FAILURE() << "not JSON: " << text;
  return v;
}

std::string Detail(const HttpResponse& r) {
  boost::json::value v = Parse(r.body);
  if (!v.is_object() || !v.as_object().contains("detail")) return "<no detail: " + r.body + ">";
  return std::string(v.at("detail").as_string());
}

// A plain TCP connection for what HttpClient would never send: byte-by-byte, garbage, pipelines.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, std::chrono::milliseconds recv_timeout = 10s) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = recv_timeout.count() / 1000;
    tv.tv_usec = (recv_timeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads until the peer closes, the receive timeout passes, or `until` appears.
  std::string Read(std::string_view until = {}) {
    std::string out;
    char buf[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = n == 0;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
      if (!until.empty() && out.find(until) != std::string::npos) break;
    }
    return out;
  }
  // True once the peer closed (a Read returned 0 bytes).
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

// One server for the tests that do not need special flags.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("taskd");
    server_ = new TaskdProcess(kTaskd, dir_->Sub("data"));
    ASSERT_TRUE(server_->Start()) << server_->log();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Terminate(), std::optional<int>(0)) << server_->log();
    delete server_;
    delete dir_;
  }

  static HttpClient Client(const std::string& role = "admin") {
    HttpClientOptions o;
    o.timeout = 20s;
    if (!role.empty()) o.bearer_token = TokenFor(role);
    return HttpClient(HttpEndpoint{"127.0.0.1", server_->port()}, o);
  }
  static HttpResponse Must(storage::Result<HttpResponse> r) {
    if (!r.ok()) {
      ADD_FAILURE() << "request failed: " << r.status().ToString();
      return HttpResponse{};
    }
    return std::move(r).value();
  }
  static std::string Enqueue(HttpClient& c, const std::string& body) {
    HttpResponse r = Must(c.Post("/api/v1/tasks/enqueue", body));
    EXPECT_EQ(r.status, 200) << r.body;
    boost::json::value v = Parse(r.body);
    if (!v.is_object() || !v.as_object().contains("task_id")) return "";
    return std::string(v.at("task_id").as_string());
  }
  // Polls GET until the task is terminal (bounded); returns its record.
  static boost::json::object WaitTerminal(HttpClient& c, const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    boost::json::object last;
    while (std::chrono::steady_clock::now() < deadline) {
      HttpResponse r = Must(c.Get("/api/v1/tasks/" + id));
      if (r.status != 200) break;
      last = Parse(r.body).as_object();
      const std::string status(last.at("status").as_string());
      if (status == "COMPLETED" || status == "FAILED" || status == "CANCELLED") return last;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "task " << id << " not terminal: " << boost::json::serialize(last);
    return last;
  }

  static TempDir* dir_;
  static TaskdProcess* server_;
};
TempDir* ServerTest::dir_ = nullptr;
TaskdProcess* ServerTest::server_ = nullptr;

TEST_F(ServerTest, HealthNeedsNoTokenAndShowsTheStore) {
  HttpClient c = Client("");
  HttpResponse r = Must(c.Get("/health"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.content_type, HasSubstr("application/json"));
  boost::json::value v = Parse(r.body);
  EXPECT_EQ(v.at("status").as_string(), "ok");
  EXPECT_EQ(v.at("storage").at("durability").as_string(), "async");
  EXPECT_TRUE(v.at("storage").at("writable").as_bool());
}

TEST_F(ServerTest, EnqueueGetAndTheTaskCompletesWithItsResult) {
  HttpClient c = Client();
  HttpResponse r = Must(c.Post("/api/v1/tasks/enqueue",
                               R"({"task_name":"bmos.echo","task_data":{"rows":[1,2,3]},)"
                               R"("priority":"high","max_retries":2})"));
  ASSERT_EQ(r.status, 200) << r.body;
  boost::json::value v = Parse(r.body);
  EXPECT_EQ(v.at("status").as_string(), "PENDING");
  EXPECT_TRUE(v.at("created").as_bool());
  EXPECT_EQ(v.at("task_name").as_string(), "bmos.echo");
  const std::string id(v.at("task_id").as_string());
  boost::json::object rec = WaitTerminal(c, id);
  EXPECT_EQ(rec.at("status").as_string(), "COMPLETED");
  EXPECT_EQ(rec.at("priority").as_string(), "HIGH");
  EXPECT_EQ(rec.at("max_retries").as_int64(), 2);
  EXPECT_EQ(boost::json::serialize(rec.at("result")), R"({"rows":[1,2,3]})");
  EXPECT_EQ(boost::json::serialize(rec.at("task_data")), R"({"rows":[1,2,3]})");
  for (const char* field :
       {"task_id", "task_name", "queue_name", "priority", "status", "task_data", "result", "error",
        "retry_count", "max_retries", "progress", "created_at", "started_at", "completed_at"}) {
    EXPECT_TRUE(rec.contains(field)) << field;
  }
}

TEST_F(ServerTest, FailingTaskIsRetriedThenCompletes) {
  HttpClient c = Client();
  const std::string id =
      Enqueue(c, R"({"task_name":"bmos.fail","task_data":{"times":1},"max_retries":3})");
  boost::json::object rec = WaitTerminal(c, id);
  EXPECT_EQ(rec.at("status").as_string(), "COMPLETED");
  EXPECT_EQ(rec.at("retry_count").as_int64(), 1);
}

TEST_F(ServerTest, EveryPermissionIsChecked) {
  HttpClient admin = Client("admin");
  const std::string id = Enqueue(admin, R"({"task_name":"bmos.noop"})");
  const std::string sleeping = Enqueue(admin, R"({"task_name":"bmos.noop","delay_seconds":3600})");

  HttpClient viewer = Client("viewer");
  HttpResponse r = Must(viewer.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})"));
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(Detail(r), HasSubstr("TASK_CREATE"));
  EXPECT_EQ(Must(viewer.Post("/api/v1/tasks/enqueue/batch", R"({"tasks":[]})")).status, 403);
  EXPECT_EQ(Must(viewer.Get("/api/v1/tasks/" + id)).status, 200);
  EXPECT_EQ(Must(viewer.Get("/api/v1/tasks/")).status, 200);
  EXPECT_EQ(Must(viewer.Get("/api/v1/tasks/stats/overview")).status, 200);
  EXPECT_EQ(Must(viewer.Delete("/api/v1/tasks/" + sleeping)).status, 403);

  HttpClient op = Client("operator");
  EXPECT_EQ(Must(op.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})")).status, 200);
  r = Must(op.Delete("/api/v1/tasks/" + sleeping));
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(Detail(r), HasSubstr("TASK_DELETE"));

  // An explicit permissions claim instead of a role.
  Claims claims;
  claims.permissions = Permission::kTaskDelete;
  claims.exp = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() +
               60;
  HttpClient deleter = Client("");
  deleter.set_bearer_token(SignJwt(kTestSecret, claims));
  EXPECT_EQ(Must(deleter.Delete("/api/v1/tasks/" + sleeping)).status, 200);
  EXPECT_EQ(Must(deleter.Get("/api/v1/tasks/" + id)).status, 403);
}

TEST_F(ServerTest, BadTokensAreRefusedWith401) {
  auto status_with = [&](const std::string& token) {
    HttpClient c = Client("");
    if (!token.empty()) c.set_bearer_token(token);
    HttpResponse r = Must(c.Get("/api/v1/tasks/"));
    EXPECT_EQ(r.Header("WWW-Authenticate").value_or(""), "Bearer") << token;
    return std::make_pair(r.status, Detail(r));
  };
  EXPECT_EQ(status_with("").first, 401);
  std::string forged = TokenFor("admin");
  forged[forged.size() - 2] = forged[forged.size() - 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(status_with(forged).first, 401);
  EXPECT_EQ(status_with(TokenFor("admin", -10)).first, 401);
  EXPECT_THAT(status_with(TokenFor("admin", -10)).second, HasSubstr("expired"));
  Claims c;
  c.role = "admin";
  c.exp = 4'000'000'000;
  EXPECT_EQ(status_with(SignJwt("another-secret-of-enough-length", c)).first, 401);
  // alg none: an unsigned token with an empty signature part.
  const std::string none = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
                           Base64UrlEncode(R"({"role":"admin","exp":4000000000})") + ".";
  auto [code, detail] = status_with(none);
  EXPECT_EQ(code, 401);
  const std::string hs512 = SignJwtParts(kTestSecret, R"({"alg":"HS512","typ":"JWT"})",
                                         R"({"role":"admin","exp":4000000000})");
  EXPECT_EQ(status_with(hs512).first, 401);
  EXPECT_EQ(status_with("not-a-jwt").first, 401);
  // Another scheme is no token.
  HttpClient basic = Client("");
  HttpResponse r = Must(basic.Request(HttpMethod::kGet, "/api/v1/tasks/", "",
                                      {{"Authorization", "Basic YWRtaW46YWRtaW4="}}));
  EXPECT_EQ(r.status, 401);
}

TEST_F(ServerTest, BadBodiesGetAClearErrorAndCreateNothing) {
  HttpClient c = Client();
  struct Case {
    const char* body;
    int status;
    const char* detail;
  };
  const std::vector<Case> cases = {
      {R"({"task_name": "bmos.noop")", 400, "JSON"},
      {"", 400, ""},
      {"[1,2]", 422, ""},
      {R"({"task_name": 5})", 422, "task_name"},
      {R"({"task_data": {}})", 422, "task_name"},
      {R"({"task_name": "bmos.noop", "priority": "URGENT"})", 422, "priority"},
      {R"({"task_name": "bmos.noop", "max_retries": "3"})", 422, "max_retries"},
      {R"({"task_name": "bmos.noop", "max_retries": -1})", 422, "max_retries"},
      {R"({"task_name": "bmos.noop", "task_data": [1]})", 422, "task_data"},
      {R"({"task_name": "bmos.noop", "delay_seconds": -5})", 422, "delay_seconds"},
      {R"({"task_name": "bmos.noop", "eta": "tomorrow"})", 422, "eta"},
      {R"({"task_name": "no.such.task"})", 422, "no.such.task"},
      {R"({"task_name": "bmos.noop", "queue_name": "nowhere"})", 422, "queue_name"},
      {"{\"task_name\": \"bmos.noop\", \"task_data\": {\"x\": \"\xff\xfe\"}}", 400, "UTF-8"},
  };
  HttpResponse before = Must(c.Get("/api/v1/tasks/stats/overview"));
  const auto enqueued_before = Parse(before.body).at("enqueued").as_int64();
  for (const Case& k : cases) {
    HttpResponse r = Must(c.Post("/api/v1/tasks/enqueue", k.body));
    EXPECT_EQ(r.status, k.status) << k.body << " -> " << r.body;
    EXPECT_THAT(Detail(r), HasSubstr(k.detail)) << k.body;
  }
  // Deep nesting and a huge (but allowed) string.
  std::string deep = R"({"task_name":"bmos.noop","task_data":{"a":)" + std::string(5000, '[') +
                     std::string(5000, ']') + "}}";
  EXPECT_EQ(Must(c.Post("/api/v1/tasks/enqueue", deep)).status, 400);
  // Batch: one bad item refuses all.
  HttpResponse b = Must(c.Post("/api/v1/tasks/enqueue/batch",
                               R"({"tasks":[{"task_name":"bmos.noop"},{"task_name":"nope"}]})"));
  EXPECT_EQ(b.status, 422);
  EXPECT_THAT(Detail(b), HasSubstr("1"));
  HttpResponse after = Must(c.Get("/api/v1/tasks/stats/overview"));
  EXPECT_EQ(Parse(after.body).at("enqueued").as_int64(), enqueued_before);
  // The server is fine afterwards.
  EXPECT_EQ(Must(c.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})")).status, 200);
}

TEST_F(ServerTest, BatchEnqueuesAllAndUniqueKeysDeduplicate) {
  HttpClient c = Client();
  HttpResponse r = Must(c.Post(
      "/api/v1/tasks/enqueue/batch",
      R"({"tasks":[{"task_name":"bmos.noop"},{"task_name":"bmos.echo","task_data":{"a":1}}]})"));
  ASSERT_EQ(r.status, 200) << r.body;
  boost::json::value v = Parse(r.body);
  ASSERT_EQ(v.at("count").as_int64(), 2);
  for (const auto& t : v.at("tasks").as_array()) {
    EXPECT_EQ(WaitTerminal(c, std::string(t.at("task_id").as_string())).at("status").as_string(),
              "COMPLETED");
  }
  const std::string body =
      R"({"task_name":"bmos.noop","unique_key":"nightly-1","delay_seconds":3600})";
  HttpResponse a = Must(c.Post("/api/v1/tasks/enqueue", body));
  HttpResponse b = Must(c.Post("/api/v1/tasks/enqueue", body));
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(Parse(a.body).at("task_id"), Parse(b.body).at("task_id"));
  EXPECT_FALSE(Parse(b.body).at("created").as_bool());
}

TEST_F(ServerTest, CancelRunningPendingTerminalAndUnknown) {
  HttpClient c = Client();
  const std::string running = Enqueue(c, R"({"task_name":"bmos.sleep","task_data":{"ms":20000}})");
  // Wait until it runs.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline &&
         Parse(Must(c.Get("/api/v1/tasks/" + running)).body).at("status").as_string() !=
             "RUNNING") {
    std::this_thread::sleep_for(5ms);
  }
  HttpResponse r = Must(c.Delete("/api/v1/tasks/" + running));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(WaitTerminal(c, running).at("status").as_string(), "CANCELLED");

  const std::string pending = Enqueue(c, R"({"task_name":"bmos.noop","delay_seconds":3600})");
  r = Must(c.Delete("/api/v1/tasks/" + pending));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Parse(r.body).at("status").as_string(), "CANCELLED");
  r = Must(c.Delete("/api/v1/tasks/" + pending));
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(Detail(r), HasSubstr("CANCELLED"));
  EXPECT_EQ(Must(c.Delete("/api/v1/tasks/0190a000-0000-7000-8000-000000000000")).status, 404);
  EXPECT_EQ(Must(c.Delete("/api/v1/tasks/not-an-id")).status, 404);
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/0190a000-0000-7000-8000-000000000000")).status, 404);
}

TEST_F(ServerTest, ListFiltersAndPagesNewestFirst) {
  HttpClient c = Client();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(Enqueue(c, R"({"task_name":"bmos.echo","queue_name":"default",)"
                             R"("task_data":{"list":true}})"));
  }
  for (const std::string& id : ids) WaitTerminal(c, id);
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    std::string target = "/api/v1/tasks/?task_name=bmos.echo&status=COMPLETED&limit=2";
    if (!cursor.empty()) target += "&cursor=" + cursor;
    HttpResponse r = Must(c.Get(target));
    ASSERT_EQ(r.status, 200) << r.body;
    boost::json::value v = Parse(r.body);
    for (const auto& t : v.at("tasks").as_array()) {
      EXPECT_EQ(t.at("task_name").as_string(), "bmos.echo");
      EXPECT_EQ(t.at("status").as_string(), "COMPLETED");
      seen.emplace_back(t.at("task_id").as_string());
    }
    if (v.at("next_cursor").is_null()) break;
    cursor = std::string(v.at("next_cursor").as_string());
  }
  // Newest first, and ours are the newest five echo tasks.
  ASSERT_GE(seen.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(seen[i], ids[4 - i]);
  EXPECT_TRUE(std::is_sorted(seen.rbegin(), seen.rend()));
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/?limit=0")).status, 422);
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/?status=DONE")).status, 422);
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/?colour=red")).status, 422);
  EXPECT_EQ(Must(c.Get("/api/v1/tasks")).status, 200);  // without the trailing slash too
}

TEST_F(ServerTest, StatsAndMetrics) {
  HttpClient c = Client();
  WaitTerminal(c, Enqueue(c, R"({"task_name":"bmos.noop"})"));
  HttpResponse s = Must(c.Get("/api/v1/tasks/stats/overview"));
  ASSERT_EQ(s.status, 200);
  boost::json::value v = Parse(s.body);
  EXPECT_GE(v.at("by_status").at("COMPLETED").as_int64(), 1);
  EXPECT_GE(v.at("enqueued").as_int64(), 1);
  EXPECT_TRUE(v.at("queues").as_object().contains("default"));
  EXPECT_EQ(v.at("workers").as_array().at(0).at("workers").as_int64(), 2);

  HttpClient anon = Client("");
  HttpResponse m = Must(anon.Get("/metrics"));
  ASSERT_EQ(m.status, 200);
  EXPECT_THAT(m.content_type, HasSubstr("text/plain"));
  EXPECT_THAT(
      m.body,
      HasSubstr(R"(bmos_http_requests_total{route="POST /api/v1/tasks/enqueue",code="200"})"));
  EXPECT_THAT(m.body, HasSubstr("bmos_tasks_completed_total"));
  EXPECT_THAT(m.body, HasSubstr("bmos_http_request_duration_seconds_bucket"));
  EXPECT_THAT(m.body, HasSubstr(R"(bmos_task_run_duration_seconds_bucket{le="+Inf"})"));
  EXPECT_THAT(m.body, HasSubstr("bmos_task_queue_wait_duration_seconds_sum"));
}

TEST_F(ServerTest, LargeHeadersWithinTheLimitAreServed) {
  HttpClient c = Client();
  // 12 KiB of headers: under the default 16 KiB limit.
  HttpResponse r =
      Must(c.Request(HttpMethod::kPost, "/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})",
                     {{"X-Trace", std::string(12 * 1024, 't')}}));
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ServerTest, UnknownPathsAndMethods) {
  HttpClient c = Client();
  HttpResponse r = Must(c.Get("/api/v2/tasks/"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Detail(r), "Not Found");
  r = Must(c.Request(HttpMethod::kPut, "/api/v1/tasks/enqueue", "{}"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow").value_or(""), "POST");
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpClient c = Client();
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(Must(c.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})")).status, 200);
    ASSERT_EQ(Must(c.Get("/health")).status, 200);
  }
  EXPECT_EQ(c.connections_opened(), 1u);
}

// Answers given in one group commit reach their loops together (the server defers them to the
// end of the commit's callbacks): each still reaches its own connection, in order.
TEST_F(ServerTest, ConcurrentClientsEachGetTheirOwnAnswers) {
  constexpr int kThreads = 16, kEach = 40;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c = Client();
      for (int i = 0; i < kEach; ++i) {
        const std::string key = "client-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = c.Post("/api/v1/tasks/enqueue",
                        R"({"task_name":"bmos.noop","unique_key":")" + key + R"("})");
        if (!r.ok() || r->status != 200) {
          ids[t].push_back("failed: " + (r.ok() ? r->body : r.status().ToString()));
          continue;
        }
        boost::json::value v = Parse(r->body);
        ids[t].push_back(v.is_object() && v.as_object().contains("task_id")
                             ? std::string(v.at("task_id").as_string())
                             : "no task_id: " + r->body);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct;
  HttpClient c = Client();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(ids[t].size(), static_cast<size_t>(kEach));
    for (int i = 0; i < kEach; ++i) {
      const std::string& id = ids[t][i];
      distinct.insert(id);
      // Every task behind an answer is the one that client sent (its unique key).
      HttpResponse r = Must(c.Get("/api/v1/tasks/" + id));
      ASSERT_EQ(r.status, 200) << id << ": " << r.body;
      EXPECT_EQ(Parse(r.body).at("unique_key"),
                boost::json::value("client-" + std::to_string(t) + "-" + std::to_string(i)))
          << r.body;
    }
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads * kEach));
}

TEST_F(ServerTest, MalformedHttpGets400AndTheServerCarriesOn) {
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Send("THIS IS NOT HTTP\r\n\r\n"));
  const std::string answer = raw.Read();
  EXPECT_THAT(answer, HasSubstr("400"));
  EXPECT_TRUE(raw.closed());
  HttpClient c = Client();
  EXPECT_EQ(Must(c.Get("/health")).status, 200);
}

TEST_F(ServerTest, ExpectContinueIsAnswered) {
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  const std::string body = R"({"task_name":"bmos.noop"})";
  ASSERT_TRUE(raw.Send("POST /api/v1/tasks/enqueue HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                       TokenFor("admin") + "\r\nContent-Type: application/json\r\n" +
                       "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n\r\n"));
  EXPECT_THAT(raw.Read("\r\n\r\n"), HasSubstr("100 Continue"));
  ASSERT_TRUE(raw.Send(body));
  EXPECT_THAT(raw.Read("}"), HasSubstr("200 OK"));
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  std::string two =
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(raw.Send(two));
  const std::string answers = raw.Read("Not Found");
  const size_t ok = answers.find("200 OK");
  const size_t missing = answers.find("404 Not Found");
  ASSERT_NE(ok, std::string::npos) << answers;
  ASSERT_NE(missing, std::string::npos) << answers;
  EXPECT_LT(ok, missing);
}

// ---------------------------------------------------------------------------------------------
// Servers with their own flags.

TEST(ServerLimits, BodyAndHeaderLimitsSlowAndIdleClients) {
  TempDir dir("taskd-limits");
  TaskdProcess server(
      kTaskd, dir.Sub("data"),
      {"--max-body-bytes", "4096", "--max-header-bytes", "2048", "--read-timeout-ms", "400",
       "--idle-timeout-ms", "400", "--max-connections", "4"});
  ASSERT_TRUE(server.Start()) << server.log();
  HttpClientOptions o;
  o.bearer_token = TokenFor("admin");
  {
    HttpClient c(HttpEndpoint{"127.0.0.1", server.port()}, o);
    std::string big =
        R"({"task_name":"bmos.noop","task_data":{"x":")" + std::string(8000, 'a') + "\"}}";
    auto r = c.Post("/api/v1/tasks/enqueue", big);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 413);
    EXPECT_THAT(Detail(*r), HasSubstr("4096"));
    auto h = c.Request(HttpMethod::kGet, "/health", "", {{"X-Filler", std::string(4000, 'f')}});
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_EQ(h->status, 431);
  }
  {
    // One byte every 100 ms: the request cannot arrive within the 400 ms read timeout.
    RawConnection slow(server.port(), 5s);
    ASSERT_TRUE(slow.connected());
    const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    const auto start = std::chrono::steady_clock::now();
    bool sent_all = true;
    for (char ch : request) {
      if (!slow.Send(std::string_view(&ch, 1))) {
        sent_all = false;
        break;
      }
      std::this_thread::sleep_for(100ms);
      if (std::chrono::steady_clock::now() - start > 1500ms) break;
    }
    const std::string answer = slow.Read();
    EXPECT_TRUE(slow.closed() || !sent_all);
    EXPECT_THAT(answer, ::testing::AnyOf(HasSubstr("408"), ::testing::IsEmpty()));
    EXPECT_THAT(answer, ::testing::Not(HasSubstr("200 OK")));
  }
  {
    // An idle keep-alive connection is closed after the idle timeout.
    RawConnection idle(server.port(), 5s);
    ASSERT_TRUE(idle.connected());
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(idle.Read(), "");
    EXPECT_TRUE(idle.closed());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  }
  EXPECT_EQ(server.Terminate(), std::optional<int>(0)) << server.log();
}

// A server of its own, whose idle timeout outlasts the test: with the 400 ms of the test above,
// a machine busy enough to delay the fifth connection's accept by that long let the server close
// the four idle ones first, and the fifth was then served (seen under parallel ctest load).
TEST(ServerLimits, ConnectionBeyondTheCapIsAnswered503) {
  TempDir dir("taskd-cap");
  TaskdProcess server(kTaskd, dir.Sub("data"),
                      {"--idle-timeout-ms", "60000", "--max-connections", "4"});
  ASSERT_TRUE(server.Start()) << server.log();
  {
    // Four connections are allowed; the fifth is answered 503 and closed.
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 4; ++i) {
      held.push_back(std::make_unique<RawConnection>(server.port(), 5s));
      ASSERT_TRUE(held.back()->connected());
    }
    RawConnection fifth(server.port(), 5s);
    ASSERT_TRUE(fifth.connected());
    EXPECT_THAT(fifth.Read(), HasSubstr("503"));
    EXPECT_TRUE(fifth.closed());
  }
  EXPECT_EQ(server.Terminate(), std::optional<int>(0)) << server.log();
}

TEST(ServerLifecycle, SigtermDrainsRunningTasksAndKeepsWaitingOnesForTheNextStart) {
  TempDir dir("taskd-sigterm");
  const std::vector<std::string> flags = {"--durability", "sync", "--drain-seconds", "20"};
  std::vector<std::string> running, waiting;
  {
    TaskdProcess server(kTaskd, dir.Sub("data"), flags);
    ASSERT_TRUE(server.Start()) << server.log();
    HttpClientOptions o;
    o.bearer_token = TokenFor("admin");
    HttpClient c(HttpEndpoint{"127.0.0.1", server.port()}, o);
    for (int i = 0; i < 2; ++i) {
      auto r =
          c.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.sleep","task_data":{"ms":300}})");
      ASSERT_TRUE(r.ok() && r->status == 200);
      running.emplace_back(Parse(r->body).at("task_id").as_string());
    }
    for (int i = 0; i < 20; ++i) {
      auto r = c.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop","delay_seconds":3600})");
      ASSERT_TRUE(r.ok() && r->status == 200);
      waiting.emplace_back(Parse(r->body).at("task_id").as_string());
    }
    // Both sleepers are running before the signal.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (const std::string& id : running) {
      while (std::chrono::steady_clock::now() < deadline &&
             Parse(c.Get("/api/v1/tasks/" + id)->body).at("status").as_string() != "RUNNING") {
        std::this_thread::sleep_for(5ms);
      }
    }
    EXPECT_EQ(server.Terminate(), std::optional<int>(0)) << server.log();
    EXPECT_THAT(server.log(), HasSubstr("draining"));
  }
  TaskdProcess again(kTaskd, dir.Sub("data"), flags);
  ASSERT_TRUE(again.Start()) << again.log();
  HttpClientOptions o;
  o.bearer_token = TokenFor("viewer");
  HttpClient c(HttpEndpoint{"127.0.0.1", again.port()}, o);
  for (const std::string& id : running) {
    auto r = c.Get("/api/v1/tasks/" + id);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Parse(r->body).at("status").as_string(), "COMPLETED") << r->body;
  }
  for (const std::string& id : waiting) {
    auto r = c.Get("/api/v1/tasks/" + id);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Parse(r->body).at("status").as_string(), "PENDING");
  }
  EXPECT_EQ(again.Terminate(), std::optional<int>(0)) << again.log();
}

TEST(ServerLifecycle, EnvironmentConfiguresAndFlagsWin) {
  TempDir dir("taskd-env");
  // BMOS_MAX_BODY_BYTES from the environment (inherited by the child); --max-connections given
  // both ways: the flag wins.
  ::setenv("BMOS_MAX_BODY_BYTES", "64", 1);
  ::setenv("BMOS_MAX_CONNECTIONS", "1", 1);
  TaskdProcess server(kTaskd, dir.Sub("data"), {"--max-connections", "100"});
  const bool started = server.Start();
  ::unsetenv("BMOS_MAX_BODY_BYTES");
  ::unsetenv("BMOS_MAX_CONNECTIONS");
  ASSERT_TRUE(started) << server.log();
  HttpClientOptions o;
  o.bearer_token = TokenFor("admin");
  HttpClient a(HttpEndpoint{"127.0.0.1", server.port()}, o);
  HttpClient b(HttpEndpoint{"127.0.0.1", server.port()}, o);
  auto small = a.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->status, 200);
  // Two connections at once: the flag's limit (100), not the variable's (1).
  auto second = b.Get("/health");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, 200);
  auto big = a.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop","task_data":{"pad":")" +
                                                 std::string(100, 'x') + "\"}}");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(server.Terminate(), std::optional<int>(0)) << server.log();
}

// What bmos-taskd prints (stdout and stderr) when run with `flag` alone, and its exit status.
struct TaskdOutput {
  int status = -1;
  std::string text;
};
TaskdOutput RunTaskdWith(const std::string& flag) {
  TempDir dir("taskd-output");
  const std::string out = dir.Sub("out.txt");
  const std::string cmd = std::string(kTaskd) + " " + flag + " > " + out + " 2>&1";
  TaskdOutput r;
  r.status = std::system(cmd.c_str());
  std::ifstream f(out);
  r.text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}

TEST(ServerLifecycle, HelpDocumentsEveryFlagAndItsVariable) {
  const TaskdOutput help = RunTaskdWith("--help");
  ASSERT_EQ(help.status, 0);
  const std::string& text = help.text;
  for (const char* want : {"--listen",
                           "BMOS_LISTEN",
                           "--data-dir",
                           "BMOS_DATA_DIR",
                           "--durability",
                           "BMOS_DURABILITY",
                           "--workers",
                           "--group",
                           "--io-threads",
                           "BMOS_IO_THREADS",
                           "--auth",
                           "BMOS_AUTH",
                           "--max-body-bytes",
                           "--max-header-bytes",
                           "--max-connections",
                           "--read-timeout-ms",
                           "--idle-timeout-ms",
                           "--drain-seconds",
                           "--with-test-handlers",
                           "--port-file",
                           "--no-wal-zero-ahead",
                           "BMOS_NO_WAL_ZERO_AHEAD",
                           "BMOS_JWT_SECRET"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want;
  }
}

// The server runs on the malloc its build chose (jemalloc by default; storage/allocator.h), and
// says which.
TEST(ServerLifecycle, VersionNamesTheMallocTheBuildChose) {
  const TaskdOutput version = RunTaskdWith("--version");
  ASSERT_EQ(version.status, 0);
  EXPECT_EQ(version.text.rfind("bmos-taskd 0.1.0 (malloc: " BMOS_ALLOCATOR_EXPECTED, 0), 0u)
      << version.text;
}

TEST(ServerLifecycle, NoAuthIsRefusedOffLoopbackAndBadFlagsExitWith2) {
  TempDir dir("taskd-flags");
  TaskdProcess open(kTaskd, dir.Sub("a"), {"--auth", "none", "--listen", "0.0.0.0:0"});
  EXPECT_FALSE(open.Start());
  EXPECT_THAT(open.log(), HasSubstr("loopback"));
  TaskdProcess bad(kTaskd, dir.Sub("b"), {"--durability", "sometimes"});
  EXPECT_FALSE(bad.Start());
  EXPECT_THAT(bad.log(), HasSubstr("--durability"));
  // --auth none on loopback serves without tokens.
  TaskdProcess local(kTaskd, dir.Sub("c"), {"--auth", "none"});
  ASSERT_TRUE(local.Start()) << local.log();
  HttpClient c(HttpEndpoint{"127.0.0.1", local.port()});
  auto r = c.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(local.Terminate(), std::optional<int>(0));
}

// In `sync` the server writes its WAL over zeros written ahead, unless told not to
// (--no-wal-zero-ahead, or its variable); both serve enqueues.
TEST(ServerLifecycle, WritesTheWalOverZerosUnlessToldNotTo) {
  TempDir dir("taskd-wal");
  struct Case {
    const char* name;
    std::vector<std::string> flags;
    const char* env;           // BMOS_NO_WAL_ZERO_AHEAD for the run, or null
    std::pair<int, int> logs;  // zero-tailed, plain
  };
  for (const Case& c : {Case{"default", {}, nullptr, {1, 0}},
                        Case{"flag", {"--no-wal-zero-ahead"}, nullptr, {0, 1}},
                        Case{"variable", {}, "1", {0, 1}}}) {
    SCOPED_TRACE(c.name);
    if (c.env != nullptr) ::setenv("BMOS_NO_WAL_ZERO_AHEAD", c.env, 1);
    std::vector<std::string> flags = {"--auth", "none", "--durability", "sync"};
    flags.insert(flags.end(), c.flags.begin(), c.flags.end());
    TaskdProcess server(kTaskd, dir.Sub(c.name), flags);
    const bool started = server.Start();
    ::unsetenv("BMOS_NO_WAL_ZERO_AHEAD");
    ASSERT_TRUE(started) << server.log();
    HttpClient client(HttpEndpoint{"127.0.0.1", server.port()});
    auto r = client.Post("/api/v1/tasks/enqueue", R"({"task_name":"bmos.noop"})");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(storage::test_util::ZeroTailedAndPlainLogs(dir.Sub(c.name)), c.logs);
    EXPECT_EQ(server.Terminate(), std::optional<int>(0)) << server.log();
  }
}

// -- Scheduled jobs -------------------------------------------------------------------------------

// Polls GET /tasks/scheduled/{id} until `pred` holds for the job (bounded); returns the job.
boost::json::object WaitJob(HttpClient& c, const std::string& id,
                            const std::function<bool(const boost::json::object&)>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  boost::json::object last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.Get("/api/v1/tasks/scheduled/" + id);
    if (!r.ok() || r->status != 200) break;
    last = Parse(r->body).as_object();
    if (pred(last)) return last;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "job " << id << " never reached the condition: " << boost::json::serialize(last);
  return last;
}

TEST_F(ServerTest, ScheduledJobRunsAndIsPausedResumedRunAndDeleted) {
  HttpClient c = Client();
  HttpResponse r = Must(c.Post("/api/v1/tasks/scheduled",
                               R"({"job_name":"tick","job_function":"bmos.echo","job_type":)"
                               R"("interval","trigger_config":{"seconds":1},)"
                               R"("job_data":{"source":"sched"},"job_id":"tick-1"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  boost::json::value job = Parse(r.body);
  EXPECT_EQ(job.at("job_id").as_string(), "tick-1");
  EXPECT_EQ(job.at("state").as_string(), "active");
  EXPECT_EQ(job.at("misfire_grace_time").to_number<double>(), 60.0);
  EXPECT_TRUE(job.at("coalesce").as_bool());
  EXPECT_EQ(job.at("max_instances").as_int64(), 1);
  EXPECT_THAT(std::string(job.at("trigger").as_string()),
              ::testing::StartsWith("interval[0:00:01"));
  EXPECT_FALSE(job.at("next_run_time").is_null());

  // It runs on its own, every second; its task carries the job's data.
  boost::json::object ran = WaitJob(c, "tick-1", [](const boost::json::object& j) {
    return j.at("stats").at("completed_runs").as_int64() >= 1;
  });
  const std::string task(ran.at("stats").at("last_task_id").as_string());
  boost::json::object rec = WaitTerminal(c, task);
  EXPECT_EQ(rec.at("task_name").as_string(), "bmos.echo");
  EXPECT_EQ(boost::json::serialize(rec.at("task_data")), R"({"source":"sched"})");

  r = Must(c.Post("/api/v1/tasks/scheduled/tick-1/pause", ""));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r.body).at("state").as_string(), "paused");
  EXPECT_TRUE(Parse(r.body).at("next_run_time").is_null());
  r = Must(c.Post("/api/v1/tasks/scheduled/tick-1/resume", ""));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r.body).at("state").as_string(), "active");

  r = Must(c.Post("/api/v1/tasks/scheduled/tick-1/run", ""));
  // 409 only if a timetable run of this 1 s job is still running; run-now is then refused.
  ASSERT_TRUE(r.status == 200 || r.status == 409) << r.body;
  if (r.status == 200) {
    EXPECT_EQ(Parse(r.body).at("job_id").as_string(), "tick-1");
    WaitTerminal(c, std::string(Parse(r.body).at("task_id").as_string()));
  }

  r = Must(c.Get("/api/v1/tasks/scheduled/"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(Parse(r.body).at("count").as_int64(), 1);
  r = Must(c.Get("/api/v1/tasks/scheduled/stats/overview"));
  ASSERT_EQ(r.status, 200) << r.body;
  boost::json::value stats = Parse(r.body);
  EXPECT_GE(stats.at("total").as_int64(), 1);
  EXPECT_GE(stats.at("runs").as_int64(), 1);
  for (const char* field : {"active", "paused", "missed", "failed", "fire_lateness_ms"}) {
    EXPECT_TRUE(stats.as_object().contains(field)) << field;
  }
  HttpResponse m = Must(Client("").Get("/metrics"));
  EXPECT_THAT(m.body, HasSubstr(R"(bmos_scheduler_jobs{state="active"})"));
  EXPECT_THAT(m.body, HasSubstr("bmos_scheduler_fire_lateness_seconds_bucket"));

  r = Must(c.Delete("/api/v1/tasks/scheduled/tick-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/scheduled/tick-1")).status, 404);
  EXPECT_EQ(Must(c.Delete("/api/v1/tasks/scheduled/tick-1")).status, 404);
  EXPECT_EQ(Must(c.Post("/api/v1/tasks/scheduled/tick-1/run", "")).status, 404);
}

TEST_F(ServerTest, BadScheduledJobsAreRefusedAndNothingIsAdded) {
  HttpClient c = Client();
  auto refused = [&](const std::string& body, int status, const std::string& detail) {
    HttpResponse r = Must(c.Post("/api/v1/tasks/scheduled", body));
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    EXPECT_THAT(Detail(r), HasSubstr(detail)) << body;
  };
  const std::string head = R"({"job_name":"x","job_function":"bmos.noop",)";
  refused(head + R"("job_type":"cron","trigger_config":{"hour":24}})", 422, "hour");
  refused(head + R"("job_type":"cron","trigger_config":{"day_of_week":"funday"}})", 422,
          "day_of_week");
  refused(head + R"("job_type":"interval","trigger_config":{"seconds":0}})", 422, "trigger_config");
  refused(head + R"("job_type":"date","trigger_config":{"run_date":"2020-01-01"}})", 422,
          "never fires");
  refused(head + R"("job_type":"weekly","trigger_config":{}})", 422, "job_type");
  refused(head + R"("job_type":"cron","trigger_config":{"hour":2},"colour":1})", 422, "colour");
  refused(head + R"("job_type":"cron","trigger_config":{"hour":2},"max_instances":0})", 422,
          "max_instances");
  refused(R"({"job_name":"x","job_function":"no.such","job_type":"cron","trigger_config":{}})", 422,
          "job_function");
  refused(R"({"job_name":"x","job_type":"cron","trigger_config":{}})", 422, "job_function");
  refused(head + R"("job_type":"cron","trigger_config":{)", 400, "invalid JSON");
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/scheduled/?state=active")).status, 200);
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/scheduled/?state=sleeping")).status, 422);

  const std::string ok = head + R"("job_type":"cron","trigger_config":{"hour":3},"job_id":"dup"})";
  EXPECT_EQ(Must(c.Post("/api/v1/tasks/scheduled", ok)).status, 200);
  refused(ok, 409, "already exists");
  EXPECT_EQ(Must(c.Get("/api/v1/tasks/scheduled/nope")).status, 404);
  EXPECT_EQ(Must(c.Post("/api/v1/tasks/scheduled/nope/pause", "")).status, 404);
  EXPECT_EQ(Must(c.Delete("/api/v1/tasks/scheduled/dup")).status, 200);
}

TEST_F(ServerTest, ScheduledJobPermissions) {
  HttpClient admin = Client("admin");
  ASSERT_EQ(Must(admin.Post("/api/v1/tasks/scheduled",
                            R"({"job_name":"p","job_function":"bmos.noop","job_type":"cron",)"
                            R"("trigger_config":{"hour":4},"job_id":"perm"})"))
                .status,
            200);
  HttpClient viewer = Client("viewer");
  EXPECT_EQ(Must(viewer.Get("/api/v1/tasks/scheduled/perm")).status, 200);
  EXPECT_EQ(Must(viewer.Get("/api/v1/tasks/scheduled/")).status, 200);
  EXPECT_EQ(Must(viewer.Get("/api/v1/tasks/scheduled/stats/overview")).status, 200);
  EXPECT_EQ(Must(viewer.Post("/api/v1/tasks/scheduled/perm/pause", "")).status, 403);
  EXPECT_EQ(Must(viewer.Post("/api/v1/tasks/scheduled/perm/run", "")).status, 403);
  EXPECT_EQ(Must(viewer.Post("/api/v1/tasks/scheduled",
                             R"({"job_name":"p","job_function":"bmos.noop","job_type":"cron",)"
                             R"("trigger_config":{"hour":4}})"))
                .status,
            403);
  HttpClient op = Client("operator");
  EXPECT_EQ(Must(op.Post("/api/v1/tasks/scheduled/perm/pause", "")).status, 200);
  EXPECT_EQ(Must(op.Post("/api/v1/tasks/scheduled/perm/resume", "")).status, 200);
  HttpResponse r = Must(op.Delete("/api/v1/tasks/scheduled/perm"));
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(Detail(r), HasSubstr("TASK_DELETE"));
  EXPECT_EQ(Must(admin.Delete("/api/v1/tasks/scheduled/perm")).status, 200);
}

TEST(ServerLifecycle, ScheduledJobsSurviveARestart) {
  TempDir dir("taskd-sched");
  const std::vector<std::string> flags = {"--durability", "sync", "--timezone", "Europe/Berlin"};
  std::string next_run;
  {
    TaskdProcess server(kTaskd, dir.Sub("data"), flags);
    ASSERT_TRUE(server.Start()) << server.log();
    HttpClientOptions o;
    o.bearer_token = TokenFor("admin");
    HttpClient c(HttpEndpoint{"127.0.0.1", server.port()}, o);
    auto r = c.Post("/api/v1/tasks/scheduled",
                    R"({"job_name":"nightly","job_function":"bmos.noop","job_type":"cron",)"
                    R"("trigger_config":{"hour":2,"minute":0},"job_id":"nightly"})");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    boost::json::value job = Parse(r->body);
    EXPECT_EQ(job.at("timezone").as_string(), "Europe/Berlin");  // the server's --timezone
    EXPECT_THAT(std::string(job.at("next_run_time_local").as_string()), HasSubstr("T02:00:00+0"));
    next_run = std::string(job.at("next_run_time").as_string());
    r = c.Post("/api/v1/tasks/scheduled",
               R"({"job_name":"held","job_function":"bmos.noop","job_type":"interval",)"
               R"("trigger_config":{"hours":1},"job_id":"held","paused":true})");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(server.Terminate(), std::optional<int>(0)) << server.log();
  }
  TaskdProcess again(kTaskd, dir.Sub("data"), flags);
  ASSERT_TRUE(again.Start()) << again.log();
  HttpClientOptions o;
  o.bearer_token = TokenFor("viewer");
  HttpClient c(HttpEndpoint{"127.0.0.1", again.port()}, o);
  auto r = c.Get("/api/v1/tasks/scheduled/nightly");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Parse(r->body).at("next_run_time").as_string(), next_run);
  r = c.Get("/api/v1/tasks/scheduled/held");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Parse(r->body).at("state").as_string(), "paused");
  EXPECT_EQ(again.Terminate(), std::optional<int>(0)) << again.log();
}

}  // namespace
}  // namespace bmos::api
