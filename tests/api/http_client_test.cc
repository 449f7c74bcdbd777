// bmos::api::HttpClient against a scripted loopback server (tests/api/fake_http_server.h):
// URL parsing, the request it writes, keep-alive reuse, the one resend after a server closed a
// kept-alive connection, timeouts, refused connections and oversized bodies.
#include "api/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/api/fake_http_server.h"

namespace bmos::api {
namespace {

using storage::Result;
using storage::Status;
using test_util::FakeHttpServer;
using Reply = FakeHttpServer::Reply;
using Seen = FakeHttpServer::Seen;

// -- URLs --------------------------------------------------------------------------------------

TEST(ParseBaseUrl, AcceptsHostsPortsAndIpv6Literals) {
  struct Case {
    const char* url;
    const char* host;
    uint16_t port;
  };
  for (const Case& c :
       {Case{"http://127.0.0.1:8080", "127.0.0.1", 8080},
        Case{"http://127.0.0.1:8080/", "127.0.0.1", 8080},
        Case{"HTTP://example.com", "example.com", 80}, Case{"http://localhost:1", "localhost", 1},
        Case{"http://[::1]:9000", "::1", 9000}, Case{"http://[fe80::1]", "fe80::1", 80},
        Case{"http://host:65535", "host", 65535}}) {
    SCOPED_TRACE(c.url);
    Result<HttpEndpoint> e = ParseBaseUrl(c.url);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->host, c.host);
    EXPECT_EQ(e->port, c.port);
  }
}

TEST(ParseBaseUrl, RefusesWhatItCannotServeAndSaysWhy) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c :
       {Case{"https://127.0.0.1:8443", "https is not supported"},
        Case{"ftp://host", "unsupported scheme 'ftp'"}, Case{"127.0.0.1:8080", "expected http://"},
        Case{"http://", "no host"}, Case{"http://:8080", "no host"},
        Case{"http://host:", "empty port"}, Case{"http://host:0", "bad port '0'"},
        Case{"http://host:65536", "bad port '65536'"}, Case{"http://host:80x", "bad port '80x'"},
        Case{"http://[::1", "unterminated"}, Case{"http://[::1]x", "':PORT'"},
        Case{"http://user@host", "user info"}, Case{"http://host/api/v1", "no path"},
        Case{"http://host?x=1", "no path"}}) {
    SCOPED_TRACE(c.url);
    Result<HttpEndpoint> e = ParseBaseUrl(c.url);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(e.status().message().find(c.says), std::string::npos) << e.status().message();
    EXPECT_NE(e.status().message().find(c.url), std::string::npos) << e.status().message();
  }
  EXPECT_FALSE(HttpClient::FromUrl("https://x").ok());
}

TEST(PercentEncode, KeepsUnreservedAndEncodesEverythingElse) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("a b&c=d/e?f#g%"), "a%20b%26c%3Dd%2Fe%3Ff%23g%25");
  EXPECT_EQ(PercentEncode("\xc3\xa9"), "%C3%A9");
  EXPECT_EQ(PercentEncode(""), "");
}

// -- Requests ----------------------------------------------------------------------------------

std::unique_ptr<HttpClient> ClientOf(const FakeHttpServer& server, HttpClientOptions options = {}) {
  Result<std::unique_ptr<HttpClient>> client = HttpClient::FromUrl(server.url(), options);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

TEST(HttpClient, SendsHostTokenAndJsonBodyAndReadsTheAnswer) {
  FakeHttpServer server([](const Seen&) {
    Reply r;
    r.status = 201;
    r.body = R"({"ok":true})";
    return r;
  });
  ASSERT_TRUE(server.ok());
  HttpClientOptions options;
  options.bearer_token = "tok123";
  std::unique_ptr<HttpClient> client = ClientOf(server, options);
  ASSERT_NE(client, nullptr);

  Result<HttpResponse> r = client->Post("/api/v1/tasks/enqueue", R"({"task_name":"x"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->Header("SERVER").value_or(""), "fake");
  EXPECT_FALSE(r->Header("x-none").has_value());

  client->set_bearer_token("");
  r = client->Request(HttpMethod::kGet, "/a?b=c", {}, {{"X-Extra", "1"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  std::vector<Seen> seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/v1/tasks/enqueue");
  EXPECT_EQ(seen[0].body, R"({"task_name":"x"})");
  EXPECT_EQ(seen[0].headers["host"], "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(seen[0].headers["authorization"], "Bearer tok123");
  EXPECT_EQ(seen[0].headers["content-type"], "application/json");
  EXPECT_EQ(seen[0].headers["content-length"], "17");
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_EQ(seen[1].target, "/a?b=c");
  EXPECT_EQ(seen[1].body, "");
  EXPECT_FALSE(seen[1].headers.contains("authorization"));
  EXPECT_FALSE(seen[1].headers.contains("content-type"));
  EXPECT_EQ(seen[1].headers["x-extra"], "1");
}

TEST(HttpClient, RefusesBadTargetsWithoutSending) {
  FakeHttpServer server([](const Seen&) { return Reply{}; });
  ASSERT_TRUE(server.ok());
  std::unique_ptr<HttpClient> client = ClientOf(server);
  for (const char* target : {"", "api", "/a b", "/a\r\nX: y"}) {
    Result<HttpResponse> r = client->Get(target);
    ASSERT_FALSE(r.ok()) << target;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  }
  EXPECT_EQ(client->connections_opened(), 0u);
  EXPECT_TRUE(server.requests().empty());
}

TEST(HttpClient, ErrorStatusesAndNonJsonBodiesAreAnswersNotErrors) {
  FakeHttpServer server([](const Seen&) {
    Reply r;
    r.status = 502;
    r.body = "bad gateway\n";
    r.content_type = "text/plain";
    return r;
  });
  ASSERT_TRUE(server.ok());
  std::unique_ptr<HttpClient> client = ClientOf(server);
  Result<HttpResponse> r = client->Get("/x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->body, "bad gateway\n");
  EXPECT_EQ(r->content_type, "text/plain");
}

TEST(HttpClient, KeepsOneConnectionAcrossRequests) {
  FakeHttpServer server([](const Seen& s) {
    Reply r;
    r.body = s.target;
    return r;
  });
  ASSERT_TRUE(server.ok());
  std::unique_ptr<HttpClient> client = ClientOf(server);
  for (int i = 0; i < 5; ++i) {
    Result<HttpResponse> r = client->Get("/n/" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "/n/" + std::to_string(i));
  }
  EXPECT_EQ(client->connections_opened(), 1u);
  EXPECT_EQ(server.connections(), 1);

  // Close() drops it; the next request opens a new one.
  client->Close();
  client->Close();  // idempotent
  ASSERT_TRUE(client->Get("/again").ok());
  EXPECT_EQ(client->connections_opened(), 2u);
}

TEST(HttpClient, FollowsConnectionClose) {
  FakeHttpServer server([](const Seen&) {
    Reply r;
    r.keep_alive = false;
    return r;
  });
  ASSERT_TRUE(server.ok());
  std::unique_ptr<HttpClient> client = ClientOf(server);
  for (int i = 0; i < 3; ++i) {
    Result<HttpResponse> r = client->Get("/x");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(client->connections_opened(), 3u);
  EXPECT_EQ(server.connections(), 3);
}

// The server answers, then drops the connection although it said keep-alive (an idle timeout,
// a restart): the next request is sent again on a new connection and succeeds.
TEST(HttpClient, ResendsOnceWhenTheServerClosedAKeptAliveConnection) {
  FakeHttpServer server([](const Seen&) {
    Reply r;
    r.close_after = true;
    return r;
  });
  ASSERT_TRUE(server.ok());
  std::unique_ptr<HttpClient> client = ClientOf(server);
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    Result<HttpResponse> r = client->Get("/x");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(client->connections_opened(), 4u);
  EXPECT_EQ(server.connections(), 4);
  EXPECT_EQ(server.requests().size(), 4u);  // each request reached the server once
}

// A fresh connection that closes without an answer is an error: the resend happens only once
// and only for a reused connection.
TEST(HttpClient, DoesNotResendOnAFreshConnection) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&calls](const Seen&) {
    Reply r;
    if (calls.fetch_add(1, std::memory_order_relaxed) == 0) {
      r.close_after = true;  // the first answer, then the connection goes stale
    } else {
      r.kind = Reply::Kind::kCloseWithoutAnswer;
    }
    return r;
  });
  ASSERT_TRUE(server.ok());
  std::unique_ptr<HttpClient> client = ClientOf(server);
  ASSERT_TRUE(client->Get("/first").ok());

  Result<HttpResponse> r = client->Get("/second");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
  EXPECT_NE(r.status().message().find("GET /second on 127.0.0.1:"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("closed the connection"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(client->connections_opened(), 2u);
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClient, TimesOutWhenTheServerDoesNotAnswer) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&calls](const Seen&) {
    Reply r;
    if (calls.fetch_add(1, std::memory_order_relaxed) == 0) r.kind = Reply::Kind::kHang;
    return r;
  });
  ASSERT_TRUE(server.ok());
  HttpClientOptions options;
  options.timeout = std::chrono::milliseconds(200);
  std::unique_ptr<HttpClient> client = ClientOf(server, options);

  const auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> r = client->Get("/slow");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kDeadlineExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("200 ms"), std::string::npos) << r.status().message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(150));
  EXPECT_LT(elapsed, std::chrono::seconds(10));  // bounded, not the server's hour

  // The client recovers on a new connection.
  Result<HttpResponse> again = client->Get("/fast");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(client->connections_opened(), 2u);
}

TEST(HttpClient, RefusedConnectionIsUnavailableAndNamesTheAddress) {
  const test_util::RefusingPort refusing;  // nothing listens there
  const uint16_t port = refusing.port();
  ASSERT_NE(port, 0);
  HttpClient client(HttpEndpoint{"127.0.0.1", port});
  Result<HttpResponse> r = client.Get("/health");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << r.status().message();
  EXPECT_EQ(client.connections_opened(), 0u);
}

TEST(HttpClient, UnknownHostIsUnavailable) {
  HttpClient client(HttpEndpoint{"no-such-host.invalid", 80});
  Result<HttpResponse> r = client.Get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no-such-host.invalid:80"), std::string::npos);
}

TEST(HttpClient, BodyOverTheLimitIsAnIOError) {
  FakeHttpServer server([](const Seen&) {
    Reply r;
    r.body = std::string(4096, 'x');
    return r;
  });
  ASSERT_TRUE(server.ok());
  HttpClientOptions options;
  options.max_body_bytes = 1024;
  std::unique_ptr<HttpClient> client = ClientOf(server, options);
  Result<HttpResponse> r = client->Get("/big");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_NE(r.status().message().find("larger than 1024 bytes"), std::string::npos)
      << r.status().message();
}

TEST(HttpClient, ResolvesNamesAndIpv6Literals) {
  FakeHttpServer v4([](const Seen&) { return Reply{}; });
  ASSERT_TRUE(v4.ok());
  Result<std::unique_ptr<HttpClient>> by_name =
      HttpClient::FromUrl("http://localhost:" + std::to_string(v4.port()));
  ASSERT_TRUE(by_name.ok());
  Result<HttpResponse> r = (*by_name)->Get("/");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(v4.requests().at(0).headers["host"], "localhost:" + std::to_string(v4.port()));

  FakeHttpServer v6([](const Seen&) { return Reply{}; }, "::1");
  if (!v6.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  std::unique_ptr<HttpClient> client = ClientOf(v6);
  r = client->Get("/");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(v6.requests().at(0).headers["host"], "[::1]:" + std::to_string(v6.port()));
  EXPECT_EQ(client->authority(), "[::1]:" + std::to_string(v6.port()));
}

}  // namespace
}  // namespace bmos::api
