// HttpClient: a small synchronous HTTP/1.1 client for bmos-taskd (and any plain-HTTP server),
// used by the bmos-task CLI, the integration tests and the bmos-taskbench harness.
//
//   Result<std::unique_ptr<HttpClient>> client = HttpClient::FromUrl("http://127.0.0.1:8080");
//   if (!client.ok()) ...;
//   (*client)->set_bearer_token(token);
//   Result<HttpResponse> r = (*client)->Post("/api/v1/tasks/enqueue", R"({"task_name":"x"})");
//   if (r.ok() && r->status == 200) ...;  // r->body is the server's JSON text
//
// One client holds at most one TCP connection, opened on the first request and kept alive across
// requests (HTTP/1.1 keep-alive). When the server closed a kept-alive connection (it timed out the
// idle connection, or restarted), the next request notices it before any response byte arrives
// (end of stream, connection reset, broken pipe) and is sent once more on a fresh connection.
// Note that this resend also applies to POST: a server that read the request and then dropped
// the connection without answering may see it twice (the engine's unique keys make enqueue safe
// to repeat where that matters).
//
// Every HTTP status is a successful Result: the caller reads HttpResponse::status (a 422 is an
// answer, not a transport failure). Errors (the Status codes of storage/status.h):
//   kInvalidArgument   a malformed base URL, a scheme other than http, a bad target
//   kUnavailable       the host cannot be resolved or no address accepts the connection
//                      (the message names host:port)
//   kDeadlineExceeded  the request (connect, write and read together) ran past
//                      HttpClientOptions::timeout; the server may still have acted on it
//   kIOError           the connection failed mid-request, the response was not valid HTTP, or
//                      its body exceeded HttpClientOptions::max_body_bytes
// After any error the connection is closed; the next request opens a new one.
//
// Thread-safety: an HttpClient is used by one thread at a time (it owns one connection and its
// buffers). Use one client per thread for concurrent load. Free functions are thread-safe.
#ifndef BMOS_API_HTTP_CLIENT_H_
#define BMOS_API_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/status.h"

namespace bmos::api {

// Where a server listens, from a base URL.
struct HttpEndpoint {
  std::string host;    // a name, an IPv4 literal or an IPv6 literal (without brackets)
  uint16_t port = 80;  // from the URL, else 80
};

// Parses a base URL "http://HOST[:PORT][/]": HOST is a name, an IPv4 literal or a bracketed IPv6
// literal ("http://[::1]:8080"); the scheme is case-insensitive. InvalidArgument (saying why)
// for another scheme (https is not supported: put a TLS proxy in front), a missing host, a bad
// port, user info, or a path, query or fragment (the client sends its own targets).
[[nodiscard]] storage::Result<HttpEndpoint> ParseBaseUrl(std::string_view url);

// `s` percent-encoded for a query-string value or a path segment: every byte except the
// unreserved characters (A-Z a-z 0-9 - . _ ~) becomes %XX.
std::string PercentEncode(std::string_view s);

enum class HttpMethod { kGet, kHead, kPost, kPut, kPatch, kDelete };

// "GET", "POST", ...
std::string_view ToString(HttpMethod method);

// One header of a request or response.
using HttpHeader = std::pair<std::string, std::string>;

struct HttpResponse {
  int status = 0;            // the HTTP status code: 200, 404, ...
  std::string body;          // the whole body, as received
  std::string content_type;  // the Content-Type header; empty when absent
  // Every header, in the order received (names as the server wrote them).
  std::vector<HttpHeader> headers;

  // The value of the first header named `name` (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct HttpClientOptions {
  // Limit on one request: resolving aside, connecting, writing the request and reading the whole
  // response must finish within it, else the request fails with DeadlineExceeded and the
  // connection is closed. Long enough for slow servers; short enough that a hung server is
  // noticed. Default: 30 s.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};

  // Largest response body accepted; a larger one fails the request with IOError (and closes the
  // connection). Protects the caller's memory from a runaway response. Default: 64 MiB.
  size_t max_body_bytes = size_t{64} << 20;

  // Sent as "Authorization: Bearer <token>" on every request when non-empty. Default: none.
  std::string bearer_token;

  // Sent as User-Agent. Default: "bmos-http-client".
  std::string user_agent = "bmos-http-client";
};

class HttpClient {
 public:
  // A client of the server at `endpoint`. Nothing is resolved or connected until the first
  // request.
  explicit HttpClient(HttpEndpoint endpoint, HttpClientOptions options = {});
  // A client of the server at `base_url` (see ParseBaseUrl); InvalidArgument for a bad URL.
  static storage::Result<std::unique_ptr<HttpClient>> FromUrl(std::string_view base_url,
                                                              HttpClientOptions options = {});
  ~HttpClient();  // closes the connection, if any

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response. `target` is the path and query
  // ("/api/v1/tasks/?limit=10"; REQUIRES: starts with '/', no spaces or control characters:
  // InvalidArgument otherwise). Sets Host, User-Agent, Accept: application/json, the bearer token
  // (when set) and, when `body` is non-empty, Content-Type: application/json (unless
  // `extra_headers` names a Content-Type) and Content-Length. `extra_headers` are added as given
  // and override nothing else. On success the HTTP status may be anything: see the file comment
  // for the errors.
  [[nodiscard]] storage::Result<HttpResponse> Request(
      HttpMethod method, std::string_view target, std::string_view body = {},
      const std::vector<HttpHeader>& extra_headers = {});

  // Shorthands for Request.
  [[nodiscard]] storage::Result<HttpResponse> Get(std::string_view target) {
    return Request(HttpMethod::kGet, target);
  }
  [[nodiscard]] storage::Result<HttpResponse> Post(std::string_view target,
                                                   std::string_view json_body) {
    return Request(HttpMethod::kPost, target, json_body);
  }
  [[nodiscard]] storage::Result<HttpResponse> Delete(std::string_view target) {
    return Request(HttpMethod::kDelete, target);
  }

  // Sets (non-empty) or clears (empty) the bearer token of later requests.
  void set_bearer_token(std::string token) { options_.bearer_token = std::move(token); }
  // Changes the per-request timeout of later requests.
  void set_timeout(std::chrono::milliseconds timeout) { options_.timeout = timeout; }

  // Closes the connection now (the next request opens a new one). Idempotent.
  void Close();

  const HttpEndpoint& endpoint() const { return endpoint_; }
  // "host:port" ("[::1]:8080" for IPv6), as used in the Host header and in error messages.
  const std::string& authority() const { return authority_; }
  // TCP connections opened so far (a test sees keep-alive reuse and reconnects in it).
  uint64_t connections_opened() const { return connections_opened_; }

 private:
  struct Connection;  // the Beast stream and its read buffer (kept out of this header)

  HttpEndpoint endpoint_;
  HttpClientOptions options_;
  std::string authority_;
  std::unique_ptr<Connection> conn_;  // null until the first request; reset on errors
  uint64_t connections_opened_ = 0;
};

}  // namespace bmos::api

#endif  // BMOS_API_HTTP_CLIENT_H_
