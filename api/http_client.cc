#include "api/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <string>
#include <utility>

namespace bmos::api {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using storage::Result;
using storage::Status;

namespace {

// ASCII case-insensitive comparison (header names, URL schemes).
bool EqualsIgnoreCase(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

std::string Authority(const HttpEndpoint& e) {
  const bool ipv6 = e.host.find(':') != std::string::npos;
  std::string out = ipv6 ? "[" + e.host + "]" : e.host;
  out += ":" + std::to_string(e.port);
  return out;
}

http::verb ToVerb(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return http::verb::get;
    case HttpMethod::kHead:
      return http::verb::head;
    case HttpMethod::kPost:
      return http::verb::post;
    case HttpMethod::kPut:
      return http::verb::put;
    case HttpMethod::kPatch:
      return http::verb::patch;
    case HttpMethod::kDelete:
      return http::verb::delete_;
  }
  return http::verb::get;
}

// The errors that mean "the server closed this connection before answering": on a kept-alive
// connection they are expected (an idle timeout, a restart) and the request is worth one resend.
bool IsClosedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::connection_aborted;
}

}  // namespace

// -- URL helpers -------------------------------------------------------------------------------

Result<HttpEndpoint> ParseBaseUrl(std::string_view url) {
  const std::string quoted = "'" + std::string(url) + "'";
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Status::InvalidArgument("bad URL " + quoted + ": expected http://HOST[:PORT]");
  }
  const std::string_view scheme = url.substr(0, sep);
  if (EqualsIgnoreCase(scheme, "https")) {
    return Status::InvalidArgument("bad URL " + quoted +
                                   ": https is not supported (use http://, with a TLS proxy in "
                                   "front of the server if needed)");
  }
  if (!EqualsIgnoreCase(scheme, "http")) {
    return Status::InvalidArgument("bad URL " + quoted + ": unsupported scheme '" +
                                   std::string(scheme) + "' (only http:// is supported)");
  }
  std::string_view rest = url.substr(sep + 3);
  const size_t path_at = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_at);
  if (path_at != std::string_view::npos) {
    const std::string_view tail = rest.substr(path_at);
    if (tail != "/") {
      return Status::InvalidArgument("bad URL " + quoted +
                                     ": a base URL has no path, query or fragment (expected "
                                     "http://HOST[:PORT])");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument("bad URL " + quoted + ": user info is not supported");
  }
  HttpEndpoint endpoint;
  std::string_view port_text;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("bad URL " + quoted + ": unterminated '[' in IPv6 host");
    }
    endpoint.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) {
        return Status::InvalidArgument("bad URL " + quoted + ": expected ':PORT' after ']'");
      }
      port_text = after.substr(1);
      if (port_text.empty()) {
        return Status::InvalidArgument("bad URL " + quoted + ": empty port");
      }
    }
  } else {
    const size_t colon = authority.find(':');
    endpoint.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) {
        return Status::InvalidArgument("bad URL " + quoted + ": empty port");
      }
    }
  }
  if (endpoint.host.empty()) return Status::InvalidArgument("bad URL " + quoted + ": no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return Status::InvalidArgument("bad URL " + quoted + ": bad port '" + std::string(port_text) +
                                     "' (expected 1..65535)");
    }
    endpoint.port = static_cast<uint16_t>(port);
  }
  return endpoint;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string_view ToString(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return "GET";
    case HttpMethod::kHead:
      return "HEAD";
    case HttpMethod::kPost:
      return "POST";
    case HttpMethod::kPut:
      return "PUT";
    case HttpMethod::kPatch:
      return "PATCH";
    case HttpMethod::kDelete:
      return "DELETE";
  }
  return "GET";
}

std::optional<std::string_view> HttpResponse::Header(std::string_view name) const {
  for (const HttpHeader& h : headers) {
    if (EqualsIgnoreCase(h.first, name)) return std::string_view(h.second);
  }
  return std::nullopt;
}

// -- HttpClient --------------------------------------------------------------------------------

// The synchronous calls of the client run asynchronous Beast operations on this private
// io_context until they finish: tcp_stream's timeouts apply only to asynchronous operations.
struct HttpClient::Connection {
  net::io_context ioc{1};
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  uint64_t responses = 0;  // responses read on this connection (> 0: a reused connection)

  // Starts one asynchronous operation through `start(handler)` and runs the io_context until it
  // completes; returns its error.
  template <typename Start>
  beast::error_code Run(Start&& start) {
    beast::error_code result = net::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }
};

HttpClient::HttpClient(HttpEndpoint endpoint, HttpClientOptions options)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      authority_(Authority(endpoint_)) {}

HttpClient::~HttpClient() { Close(); }

Result<std::unique_ptr<HttpClient>> HttpClient::FromUrl(std::string_view base_url,
                                                        HttpClientOptions options) {
  Result<HttpEndpoint> endpoint = ParseBaseUrl(base_url);
  if (!endpoint.ok()) return endpoint.status();
  return std::make_unique<HttpClient>(std::move(*endpoint), std::move(options));
}

void HttpClient::Close() {
  if (conn_ == nullptr) return;
  beast::error_code ignored;
  conn_->stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  conn_->stream.close();
  conn_.reset();
}

Result<HttpResponse> HttpClient::Request(HttpMethod method, std::string_view target,
                                         std::string_view body,
                                         const std::vector<HttpHeader>& extra_headers) {
  const std::string what =
      std::string(ToString(method)) + " " + std::string(target) + " on " + authority_;
  if (!target.starts_with('/')) {
    return Status::InvalidArgument("bad request target '" + std::string(target) +
                                   "': must start with '/'");
  }
  for (const char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Status::InvalidArgument("bad request target '" + std::string(target) +
                                     "': spaces and control characters must be percent-encoded");
    }
  }

  http::request<http::string_body> req{ToVerb(method), std::string(target), 11};
  req.set(http::field::host, authority_);
  req.set(http::field::user_agent, options_.user_agent);
  req.set(http::field::accept, "application/json");
  if (!options_.bearer_token.empty()) {
    req.set(http::field::authorization, "Bearer " + options_.bearer_token);
  }
  bool has_content_type = false;
  for (const HttpHeader& h : extra_headers) {
    if (EqualsIgnoreCase(h.first, "Content-Type")) has_content_type = true;
    req.insert(h.first, h.second);
  }
  if (!body.empty() && !has_content_type) req.set(http::field::content_type, "application/json");
  req.body() = std::string(body);
  req.keep_alive(true);
  req.prepare_payload();

  // One deadline for the whole request, the resend after a stale connection included.
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  const auto timeout_ms = std::to_string(options_.timeout.count());

  for (int attempt = 0;; ++attempt) {
    if (conn_ == nullptr) {
      // Resolving has no timeout of its own (getaddrinfo cannot be interrupted); literals and
      // local names resolve at once.
      net::io_context resolve_ioc{1};
      net::ip::tcp::resolver resolver(resolve_ioc);
      beast::error_code ec;
      const net::ip::tcp::resolver::results_type addresses =
          resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
      if (ec) {
        return Status::Unavailable("cannot resolve " + authority_ + ": " + ec.message());
      }
      auto conn = std::make_unique<Connection>();
      conn->stream.expires_at(deadline);
      ec = conn->Run([&](auto handler) { conn->stream.async_connect(addresses, handler); });
      if (ec == beast::error::timeout) {
        return Status::DeadlineExceeded("cannot connect to " + authority_ + ": no answer within " +
                                        timeout_ms + " ms");
      }
      if (ec) {
        return Status::Unavailable("cannot connect to " + authority_ + ": " + ec.message());
      }
      beast::error_code ignored;
      conn->stream.socket().set_option(net::ip::tcp::no_delay(true), ignored);
      conn_ = std::move(conn);
      ++connections_opened_;
    }
    Connection& c = *conn_;
    const bool reused = c.responses > 0;

    c.stream.expires_at(deadline);
    beast::error_code ec = c.Run([&](auto handler) { http::async_write(c.stream, req, handler); });
    if (ec && reused && attempt == 0 && IsClosedByPeer(ec)) {
      Close();
      continue;
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    if (!ec) {
      if (method == HttpMethod::kHead) parser.skip(true);
      c.stream.expires_at(deadline);
      ec = c.Run([&](auto handler) { http::async_read(c.stream, c.buffer, parser, handler); });
      if (ec && reused && attempt == 0 && IsClosedByPeer(ec) && !parser.got_some()) {
        Close();
        continue;
      }
    }
    if (ec) {
      Close();
      if (ec == beast::error::timeout) {
        return Status::DeadlineExceeded(what + ": no complete response within " + timeout_ms +
                                        " ms");
      }
      if (ec == http::error::body_limit) {
        return Status::IOError(what + ": response body larger than " +
                               std::to_string(options_.max_body_bytes) + " bytes");
      }
      if (IsClosedByPeer(ec)) {
        return Status::IOError(what + ": the server closed the connection (" + ec.message() + ")");
      }
      return Status::IOError(what + ": " + ec.message());
    }

    http::response<http::string_body> res = parser.release();
    ++c.responses;
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.headers.reserve(8);
    for (const auto& field : res) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    if (auto it = res.find(http::field::content_type); it != res.end()) {
      out.content_type = std::string(it->value());
    }
    const bool keep_alive = res.keep_alive();
    out.body = std::move(res.body());
    if (!keep_alive) Close();
    return out;
  }
}

}  // namespace bmos::api
