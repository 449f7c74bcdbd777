// libFuzzer target for the request parsers of the HTTP server (api/request_json.h). Every input
// goes to ParseEnqueueBody, ParseEnqueueBatchBody, ParseListQuery, ParseJobBody and
// ParseJobListQuery as it is, and through
// Beast's request parser (body limit 1 MiB, as the server sets one); a complete request is then
// routed to the parser its target names, as bmos-taskd would.
//
// Beyond crashes, sanitizer reports and leaks, it checks the contract the server relies on:
// errors are 400 or 422 with a non-empty UTF-8 detail (DetailJson requires UTF-8); a parsed
// request has a task name; task_data arrives as the compact text of a valid JSON object.
#include <simdjson.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "api/request_json.h"

namespace {

namespace http = boost::beast::http;
using bmos::api::ApiError;

void Check(bool condition, const char* what) {
  if (!condition) {
    fprintf(stderr, "request_fuzz: invariant broken: %s\n", what);
    abort();
  }
}

void CheckError(const ApiError& error) {
  Check(error.http_status == 400 || error.http_status == 422, "status is 400 or 422");
  Check(!error.detail.empty(), "detail is not empty");
  Check(simdjson::validate_utf8(error.detail.data(), error.detail.size()), "detail is UTF-8");
}

void CheckRequest(const bmos::engine::EnqueueRequest& request) {
  Check(!request.name.empty(), "a parsed request has a name");
  if (request.data_json.empty()) return;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object object;
  Check(parser.parse(request.data_json).get(object) == simdjson::SUCCESS,
        "data_json is a JSON object");
  // Compact: minifying it again changes nothing.
  std::string again(request.data_json.size() + simdjson::SIMDJSON_PADDING, '\0');
  size_t again_size = 0;
  Check(simdjson::minify(request.data_json.data(), request.data_json.size(), again.data(),
                         again_size) == simdjson::SUCCESS,
        "data_json minifies");
  again.resize(again_size);
  Check(again == request.data_json, "data_json is compact");
}

void FuzzEnqueue(std::string body) {
  auto result = bmos::api::ParseEnqueueBody(body);
  if (result.ok()) {
    CheckRequest(*result);
  } else {
    CheckError(result.error());
  }
}

void FuzzBatch(std::string body) {
  auto result = bmos::api::ParseEnqueueBatchBody(body);
  if (result.ok()) {
    Check(!result->empty() && result->size() <= bmos::api::kMaxBatchTasks, "batch size");
    for (const auto& request : *result) CheckRequest(request);
  } else {
    CheckError(result.error());
  }
}

void FuzzQuery(std::string_view query) {
  auto result = bmos::api::ParseListQuery(query);
  if (result.ok()) {
    Check(result->limit >= 1 && result->limit <= 1000, "limit in 1..1000");
  } else {
    CheckError(result.error());
  }
}

void FuzzJob(std::string body) {
  auto result = bmos::api::ParseJobBody(body);
  if (result.ok()) {
    Check(!result->name.empty() && !result->function.empty(), "a parsed job has name and function");
    Check(result->max_instances >= 1 && result->max_instances <= 1000, "max_instances in range");
    Check(!result->misfire_grace_seconds || *result->misfire_grace_seconds > 0, "grace > 0");
  } else {
    CheckError(result.error());
  }
}

void FuzzJobQuery(std::string_view query) {
  auto result = bmos::api::ParseJobListQuery(query);
  if (result.ok()) {
    Check(result->limit >= 1 && result->limit <= 1000, "job limit in 1..1000");
  } else {
    CheckError(result.error());
  }
}

// The request as bmos-taskd would route it.
void FuzzHttp(std::string_view bytes) {
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.header_limit(8 * 1024);
  parser.body_limit(1024 * 1024);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  while (!ec && !parser.is_done() && used > 0 && used < bytes.size()) {
    bytes.remove_prefix(used);
    used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return;
  }
  http::request<http::string_body> request = parser.release();
  const std::string_view target(request.target().data(), request.target().size());
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  if (request.method() == http::verb::post && path == "/api/v1/tasks/enqueue") {
    FuzzEnqueue(std::move(request.body()));
  } else if (request.method() == http::verb::post && path == "/api/v1/tasks/enqueue/batch") {
    FuzzBatch(std::move(request.body()));
  } else if (request.method() == http::verb::get && path == "/api/v1/tasks/") {
    FuzzQuery(question == std::string_view::npos ? std::string_view()
                                                 : target.substr(question + 1));
  } else if ((request.method() == http::verb::post && path == "/api/v1/tasks/scheduled") ||
             (request.method() == http::verb::put &&
              path.starts_with("/api/v1/tasks/scheduled/"))) {
    FuzzJob(std::move(request.body()));
  } else if (request.method() == http::verb::get && path == "/api/v1/tasks/scheduled/") {
    FuzzJobQuery(question == std::string_view::npos ? std::string_view()
                                                    : target.substr(question + 1));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FuzzEnqueue(std::string(bytes));
  FuzzBatch(std::string(bytes));
  FuzzQuery(bytes);
  FuzzJob(std::string(bytes));
  FuzzJobQuery(bytes);
  FuzzHttp(bytes);
  return 0;
}
