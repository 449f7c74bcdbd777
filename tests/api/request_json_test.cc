#include "api/request_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <string>
#include <thread>
#include <vector>

#include "storage/task_id.h"

namespace bmos::api {
namespace {

using engine::EnqueueRequest;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kPriorityError = "priority: must be one of LOW, NORMAL, HIGH, CRITICAL";
constexpr std::string_view kMaxRetriesError = "max_retries: must be an integer in 0..1000";
constexpr int64_t k20240501Noon = 1714564800000;  // 2024-05-01T12:00:00Z in Unix ms

ParseResult<EnqueueRequest> Enqueue(std::string body) { return ParseEnqueueBody(body); }
ParseResult<std::vector<EnqueueRequest>> Batch(std::string body) {
  return ParseEnqueueBatchBody(body);
}

// The request of {"task_name":"t", <fields>}; fails the test if it does not parse.
EnqueueRequest EnqueueOk(std::string_view fields) {
  std::string body = "{\"task_name\":\"t\"";
  if (!fields.empty()) body.append(",").append(fields);
  body.append("}");
  auto result = ParseEnqueueBody(body);
  EXPECT_TRUE(result.ok()) << body << " -> " << (result.ok() ? "" : result.error().detail);
  return result.ok() ? std::move(result).value() : EnqueueRequest{};
}

// The error of {"task_name":"t", <fields>}.
ApiError EnqueueError(std::string_view fields) {
  std::string body = "{\"task_name\":\"t\"";
  if (!fields.empty()) body.append(",").append(fields);
  body.append("}");
  auto result = ParseEnqueueBody(body);
  EXPECT_FALSE(result.ok()) << body;
  return result.ok() ? ApiError{0, "parsed"} : result.error();
}

ApiError BodyError(std::string body) {
  auto result = ParseEnqueueBody(body);
  EXPECT_FALSE(result.ok()) << body;
  return result.ok() ? ApiError{0, "parsed"} : result.error();
}

ApiError Err422(std::string detail) { return ApiError{422, std::move(detail)}; }

// ---------------------------------------------------------------------------------------------
// Whole bodies.

TEST(EnqueueBody, MinimalBodyFillsOnlyTheName) {
  auto r = Enqueue(R"({"task_name": "clean_data"})");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->name, "clean_data");
  EXPECT_TRUE(r->data_json.empty());
  EXPECT_TRUE(r->data.empty());
  EXPECT_TRUE(r->queue.empty());
  EXPECT_FALSE(r->priority);
  EXPECT_FALSE(r->max_retries);
  EXPECT_FALSE(r->timeout);
  EXPECT_FALSE(r->eta_ms);
  EXPECT_FALSE(r->delay);
  EXPECT_TRUE(r->unique_key.empty());
}

TEST(EnqueueBody, EveryFieldAtOnce) {
  auto r = Enqueue(R"({
    "task_name": "train_model",
    "task_data": {"model": "churn", "epochs": 10},
    "priority": "high",
    "max_retries": 5,
    "queue_name": "training",
    "eta": "2024-05-01T12:00:00Z",
    "timeout_seconds": 3600,
    "unique_key": "train:churn"
  })");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->name, "train_model");
  EXPECT_EQ(r->data_json, R"({"model":"churn","epochs":10})");
  EXPECT_EQ(r->priority, storage::Priority::kHigh);
  EXPECT_EQ(r->max_retries, 5);
  EXPECT_EQ(r->queue, "training");
  EXPECT_EQ(r->eta_ms, k20240501Noon);
  EXPECT_EQ(r->timeout, std::chrono::milliseconds(3'600'000));
  EXPECT_EQ(r->unique_key, "train:churn");
  EXPECT_FALSE(r->delay);
}

TEST(EnqueueBody, NullOptionalFieldsMeanNotGiven) {
  auto r = EnqueueOk(R"("task_data":null,"priority":null,"max_retries":null,"queue_name":null,)"
                     R"("delay_seconds":null,"eta":null,"timeout_seconds":null,"unique_key":null)");
  EXPECT_TRUE(r.data_json.empty());
  EXPECT_FALSE(r.priority);
  EXPECT_FALSE(r.max_retries);
  EXPECT_TRUE(r.queue.empty());
  EXPECT_FALSE(r.delay);
  EXPECT_FALSE(r.eta_ms);
  EXPECT_FALSE(r.timeout);
  EXPECT_TRUE(r.unique_key.empty());
}

TEST(EnqueueBody, LeavesTheBodyTextUnchanged) {
  std::string body = R"({"task_name":"a","task_data":{ "x" : 1 }})";
  const std::string copy = body;
  ASSERT_TRUE(ParseEnqueueBody(body).ok());
  EXPECT_EQ(body, copy);
  EXPECT_GE(body.capacity(), body.size() + simdjson::SIMDJSON_PADDING);
}

TEST(EnqueueBody, EmptyAndWhitespaceBodiesAre400) {
  EXPECT_EQ(BodyError("").http_status, 400);
  EXPECT_EQ(BodyError("").detail, "body: invalid JSON (empty body)");
  EXPECT_EQ(BodyError(" \n\t\r ").http_status, 400);
}

TEST(EnqueueBody, NonObjectTopLevelIs422) {
  for (const char* body : {"[]", R"([{"task_name":"a"}])", "42", R"("task")", "null", "true"}) {
    EXPECT_EQ(BodyError(body), Err422("body: must be a JSON object")) << body;
  }
}

TEST(EnqueueBody, MalformedJsonIs400) {
  for (const char* body : {
           R"({"task_name":"a")",                              // truncated
           R"({"task_name":"a)",                               // unterminated string
           R"({"task_name":"a"} x)",                           // trailing garbage
           R"({"task_name":"a"}{})",                           // two documents
           R"({"task_name":"a",})",                            // trailing comma
           R"({"task_name":"a","task_data":{"k":[1,2,]}})",    // trailing comma inside task_data
           R"({"task_name":"a","task_data":{"k":tru}})",       // bad literal inside task_data
           R"({"task_name":'a'})",                             // single quotes
           R"({task_name:"a"})",                               // bare key
           R"({"task_name":"a" "priority":"LOW"})",            // missing comma
           R"({"task_name":"a\q"})",                           // bad escape
           R"({"task_name":"a","task_data":{"k":"\ud800"}})",  // lone surrogate escape
           "{\"task_name\":\"a\x01\"}",                        // raw control character in a string
           R"({"task_name":"a","max_retries":01})",            // leading zero
           R"({"task_name":"a","task_data":{"n":12345678901234567890123}})",  // > 64 bits
           R"({"task_name":"a","task_data":{"n":1e400}})",                    // out of double range
       }) {
    const ApiError e = BodyError(body);
    EXPECT_EQ(e.http_status, 400) << body << " -> " << e.detail;
    EXPECT_THAT(e.detail, StartsWith("body: invalid JSON (")) << body;
  }
}

TEST(EnqueueBody, SyntaxErrorAfterABadFieldIsStill400) {
  // The whole document is validated before any field is read.
  const ApiError e = BodyError(R"({"priority":"URGENT","task_name":"a",)");
  EXPECT_EQ(e.http_status, 400) << e.detail;
}

TEST(EnqueueBody, InvalidUtf8Is400) {
  for (std::string body : {
           std::string("{\"task_name\":\"caf\xff\"}"),                           // in a value
           std::string("{\"task_name\":\"a\",\"task_data\":{\"k\":\"\xc3\"}}"),  // truncated seq
           std::string("{\"task_name\":\"a\",\"task_data\":{\"\xc0\xaf\":1}}"),  // overlong, key
           std::string("{\"task_name\":\"a\",\"task_data\":{\"k\":\"\xed\xa0\x80\"}}"),  // UTF-16
           std::string("{\"task_n\xe9me\":\"a\"}"),  // Latin-1 in a key
       }) {
    EXPECT_EQ(BodyError(body), (ApiError{400, "body: invalid UTF-8"})) << body;
  }
}

TEST(EnqueueBody, DeepNestingIs400NotACrash) {
  const std::string open(10'000, '[');
  const std::string close(10'000, ']');
  const ApiError e = BodyError(R"({"task_name":"a","task_data":{"k":)" + open + close + "}}");
  EXPECT_EQ(e, (ApiError{400, "body: invalid JSON (nested deeper than 64 levels)"}));
  // Unbalanced too.
  EXPECT_EQ(BodyError(std::string(100'000, '{')).http_status, 400);
  EXPECT_EQ(BodyError(std::string(100'000, '[')).http_status, 400);
}

TEST(EnqueueBody, DepthLimitCountsTheBodyObject) {
  // body object (1) + task_data (2) + n nested arrays.
  auto body = [](size_t arrays) {
    return R"({"task_name":"a","task_data":{"k":)" + std::string(arrays, '[') +
           std::string(arrays, ']') + "}}";
  };
  EXPECT_TRUE(Enqueue(body(kMaxJsonDepth - 2)).ok());
  EXPECT_EQ(BodyError(body(kMaxJsonDepth - 1)).http_status, 400);
}

TEST(EnqueueBody, UnknownFieldIsRefusedByName) {
  EXPECT_EQ(EnqueueError(R"("priorty":"HIGH")"),
            Err422("priorty: unknown field (allowed: task_name, task_data, priority, "
                   "max_retries, queue_name, delay_seconds, eta, timeout_seconds, unique_key)"));
  // Even with a null value, and with an escaped name.
  EXPECT_THAT(EnqueueError(R"("extra":null)").detail, StartsWith("extra: unknown field"));
  EXPECT_THAT(EnqueueError(R"("t\u00e9":1)").detail, StartsWith("t\xc3\xa9: unknown field"));
  // A huge key is cut in the message.
  const ApiError e = EnqueueError("\"" + std::string(10'000, 'k') + "\":1");
  EXPECT_EQ(e.http_status, 422);
  EXPECT_LT(e.detail.size(), 300u);
  EXPECT_THAT(e.detail, StartsWith(std::string(64, 'k') + "...: unknown field"));
}

TEST(EnqueueBody, EscapedKnownFieldNameIsRecognised) {
  auto r = Enqueue(R"({"task\u005fname":"a","prior\u0069ty":"LOW"})");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->name, "a");
  EXPECT_EQ(r->priority, storage::Priority::kLow);
}

TEST(EnqueueBody, DuplicateKeysAreRefused) {
  EXPECT_EQ(BodyError(R"({"task_name":"a","task_name":"b"})"),
            Err422("task_name: given more than once"));
  EXPECT_EQ(EnqueueError(R"("priority":"LOW","priority":"HIGH")"),
            Err422("priority: given more than once"));
  // Also when the first one was null.
  EXPECT_EQ(EnqueueError(R"("eta":null,"eta":null)"), Err422("eta: given more than once"));
}

// ---------------------------------------------------------------------------------------------
// task_name

TEST(EnqueueBody, TaskNameRequiredAndTyped) {
  EXPECT_EQ(BodyError("{}"), Err422("task_name: field required"));
  EXPECT_EQ(BodyError(R"({"priority":"LOW"})"), Err422("task_name: field required"));
  EXPECT_EQ(BodyError(R"({"task_name":null})"), Err422("task_name: must be a non-empty string"));
  EXPECT_EQ(BodyError(R"({"task_name":""})"), Err422("task_name: must be a non-empty string"));
  EXPECT_EQ(BodyError(R"({"task_name":42})"), Err422("task_name: must be a string"));
  EXPECT_EQ(BodyError(R"({"task_name":["a"]})"), Err422("task_name: must be a string"));
  EXPECT_EQ(BodyError(R"({"task_name":{"a":1}})"), Err422("task_name: must be a string"));
  EXPECT_EQ(BodyError(R"({"task_name":true})"), Err422("task_name: must be a string"));
}

TEST(EnqueueBody, TaskNameUnescapedAndLengthCapped) {
  auto r = Enqueue(R"({"task_name":"caf\u00e9 \"x\""})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "caf\xc3\xa9 \"x\"");
  EXPECT_TRUE(Enqueue(R"({"task_name":")" + std::string(200, 'n') + "\"}").ok());
  EXPECT_EQ(BodyError(R"({"task_name":")" + std::string(201, 'n') + "\"}"),
            Err422("task_name: must be at most 200 bytes"));
  // A 1 MB name: refused quickly with a short message.
  const ApiError e = BodyError(R"({"task_name":")" + std::string(1 << 20, 'n') + "\"}");
  EXPECT_EQ(e, Err422("task_name: must be at most 200 bytes"));
}

// ---------------------------------------------------------------------------------------------
// task_data

TEST(EnqueueBody, TaskDataBecomesCompactText) {
  EXPECT_EQ(EnqueueOk(R"("task_data": {})").data_json, "{}");
  EXPECT_EQ(
      EnqueueOk("\"task_data\" : { \n\t\"a\" : [ 1 , 2.50 , -3e2 ] ,\r\n \"b\":{ } }").data_json,
      R"({"a":[1,2.50,-3e2],"b":{}})");
}

TEST(EnqueueBody, TaskDataStringsKeptByteForByte) {
  // Spaces, escapes (unicode ones included), brackets and quotes inside strings survive.
  const std::string data =
      R"({"s":"a b  c","e":"caf\u00e9 \ud83d\ude00","q":"}] \"{[ \\","k y":"\/\n\t"})";
  EXPECT_EQ(EnqueueOk(R"("task_data":)" + data).data_json, data);
  const std::string utf8 = "{\"s\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}";
  EXPECT_EQ(EnqueueOk(R"("task_data":)" + utf8).data_json, utf8);
  // Duplicate keys inside task_data are the data's business: passed through.
  EXPECT_EQ(EnqueueOk(R"("task_data":{"a":1, "a":2})").data_json, R"({"a":1,"a":2})");
}

TEST(EnqueueBody, TaskDataFollowedByOtherFields) {
  auto r = EnqueueOk(R"("task_data":{"x":{"y":[{"z":"]"}]}} , "priority":"LOW")");
  EXPECT_EQ(r.data_json, R"({"x":{"y":[{"z":"]"}]}})");
  EXPECT_EQ(r.priority, storage::Priority::kLow);
  auto first = Enqueue(R"({"task_data" : {"a" : "}"} , "task_name":"t"})");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->data_json, R"({"a":"}"})");
}

TEST(EnqueueBody, TaskDataMustBeAnObject) {
  for (const char* v : {"[]", "[1,2]", "\"text\"", "42", "true", "false", "1.5"}) {
    EXPECT_EQ(EnqueueError(std::string("\"task_data\":") + v),
              Err422("task_data: must be a JSON object"))
        << v;
  }
}

TEST(EnqueueBody, HugeTaskDataString) {
  const std::string big(1 << 20, 'x');
  auto r = EnqueueOk(R"("task_data":{"blob":")" + big + "\"}");
  EXPECT_EQ(r.data_json, R"({"blob":")" + big + "\"}");
}

// ---------------------------------------------------------------------------------------------
// priority

TEST(EnqueueBody, PriorityAnyCase) {
  EXPECT_EQ(EnqueueOk(R"("priority":"LOW")").priority, storage::Priority::kLow);
  EXPECT_EQ(EnqueueOk(R"("priority":"normal")").priority, storage::Priority::kNormal);
  EXPECT_EQ(EnqueueOk(R"("priority":"High")").priority, storage::Priority::kHigh);
  EXPECT_EQ(EnqueueOk(R"("priority":"cRiTiCaL")").priority, storage::Priority::kCritical);
}

TEST(EnqueueBody, PriorityRejects) {
  for (const char* v : {"\"URGENT\"", "\"\"", "\" HIGH\"", "2", "true", "[\"HIGH\"]", "{}"}) {
    EXPECT_EQ(EnqueueError(std::string("\"priority\":") + v), Err422(std::string(kPriorityError)))
        << v;
  }
}

// ---------------------------------------------------------------------------------------------
// max_retries

TEST(EnqueueBody, MaxRetriesAcceptsIntegersAndIntegralDoubles) {
  EXPECT_EQ(EnqueueOk(R"("max_retries":0)").max_retries, 0);
  EXPECT_EQ(EnqueueOk(R"("max_retries":3)").max_retries, 3);
  EXPECT_EQ(EnqueueOk(R"("max_retries":1000)").max_retries, 1000);
  EXPECT_EQ(EnqueueOk(R"("max_retries":2.0)").max_retries, 2);
  EXPECT_EQ(EnqueueOk(R"("max_retries":1e2)").max_retries, 100);
  EXPECT_EQ(EnqueueOk(R"("max_retries":-0.0)").max_retries, 0);
  EXPECT_EQ(EnqueueOk(R"("max_retries":-0)").max_retries, 0);
}

TEST(EnqueueBody, MaxRetriesRejects) {
  for (const char* v :
       {"-1", "1001", "2.5", "0.1", "\"3\"", "true", "[3]", "{}", "1e30", "-1e30",
        "9223372036854775807", "-9223372036854775808", "18446744073709551615", "1000.5"}) {
    EXPECT_EQ(EnqueueError(std::string("\"max_retries\":") + v),
              Err422(std::string(kMaxRetriesError)))
        << v;
  }
}

// ---------------------------------------------------------------------------------------------
// queue_name, unique_key

TEST(EnqueueBody, QueueName) {
  EXPECT_EQ(EnqueueOk(R"("queue_name":"training")").queue, "training");
  EXPECT_EQ(EnqueueError(R"("queue_name":"")"), Err422("queue_name: must be a non-empty string"));
  EXPECT_EQ(EnqueueError(R"("queue_name":7)"), Err422("queue_name: must be a string"));
  EXPECT_EQ(EnqueueError(R"("queue_name":")" + std::string(201, 'q') + "\""),
            Err422("queue_name: must be at most 200 bytes"));
}

TEST(EnqueueBody, UniqueKey) {
  EXPECT_EQ(EnqueueOk(R"("unique_key":"k-1")").unique_key, "k-1");
  EXPECT_EQ(EnqueueOk(R"("unique_key":"")").unique_key, "");
  EXPECT_EQ(EnqueueOk(R"("unique_key":")" + std::string(512, 'u') + "\"").unique_key.size(), 512u);
  EXPECT_EQ(EnqueueError(R"("unique_key":")" + std::string(513, 'u') + "\""),
            Err422("unique_key: must be at most 512 bytes"));
  EXPECT_EQ(EnqueueError(R"("unique_key":1)"), Err422("unique_key: must be a string"));
  EXPECT_EQ(EnqueueError(R"("unique_key":{})"), Err422("unique_key: must be a string"));
}

// ---------------------------------------------------------------------------------------------
// delay_seconds, timeout_seconds

TEST(EnqueueBody, DelaySeconds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(EnqueueOk(R"("delay_seconds":0)").delay, milliseconds(0));
  EXPECT_EQ(EnqueueOk(R"("delay_seconds":5)").delay, milliseconds(5000));
  EXPECT_EQ(EnqueueOk(R"("delay_seconds":1.5)").delay, milliseconds(1500));
  EXPECT_EQ(EnqueueOk(R"("delay_seconds":0.29)").delay, milliseconds(290));
  EXPECT_EQ(EnqueueOk(R"("delay_seconds":0.0004)").delay, milliseconds(1));
  EXPECT_EQ(EnqueueOk(R"("delay_seconds":315576000)").delay, milliseconds(315'576'000'000));
  const ApiError range =
      Err422("delay_seconds: must be a number of seconds in 0..315576000 (10 years)");
  for (const char* v : {"-1", "-0.001", "315576000.5", "1e308", "\"5\"", "true", "[1]"}) {
    EXPECT_EQ(EnqueueError(std::string("\"delay_seconds\":") + v), range) << v;
  }
}

TEST(EnqueueBody, TimeoutSeconds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(EnqueueOk(R"("timeout_seconds":0)").timeout, milliseconds(0));
  EXPECT_EQ(EnqueueOk(R"("timeout_seconds":30)").timeout, milliseconds(30'000));
  EXPECT_EQ(EnqueueOk(R"("timeout_seconds":0.25)").timeout, milliseconds(250));
  // Positive but under a millisecond: not "no timeout".
  EXPECT_EQ(EnqueueOk(R"("timeout_seconds":1e-9)").timeout, milliseconds(1));
  const ApiError range =
      Err422("timeout_seconds: must be a number of seconds in 0..315576000 (10 years)");
  for (const char* v : {"-5", "1e20", "\"30\"", "false", "{}"}) {
    EXPECT_EQ(EnqueueError(std::string("\"timeout_seconds\":") + v), range) << v;
  }
}

// ---------------------------------------------------------------------------------------------
// eta

TEST(EnqueueBody, EtaIsoForms) {
  auto eta = [](std::string_view text) {
    return EnqueueOk(R"("eta":")" + std::string(text) + "\"").eta_ms;
  };
  EXPECT_EQ(eta("2024-05-01T12:00:00Z"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01t12:00:00z"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01 12:00:00Z"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01T12:00Z"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01T14:00:00+02:00"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01T06:30:00-05:30"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01T12:00:00+00:00"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01T12:00:00-00:00"), k20240501Noon);
  EXPECT_EQ(eta("2024-05-01T12:00:00.250Z"), k20240501Noon + 250);
  EXPECT_EQ(eta("2024-05-01T12:00:00.5Z"), k20240501Noon + 500);
  EXPECT_EQ(eta("2024-05-01T12:00:00,5Z"), k20240501Noon + 500);
  EXPECT_EQ(eta("2024-05-01T12:00:00.123999999Z"), k20240501Noon + 123);  // truncated
  EXPECT_EQ(eta("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(eta("2024-02-29T00:00:00Z"), 1709164800000);
  EXPECT_EQ(eta("2000-02-29T00:00:00Z"), 951868800000 - 86'400'000);
  EXPECT_EQ(eta("9999-12-31T23:59:59Z"), 253402300799000);
  EXPECT_EQ(eta("2024-05-02T00:00:00+23:59"),
            k20240501Noon + 12 * 3'600'000 - 23 * 3'600'000 - 59 * 60'000);
}

TEST(EnqueueBody, EtaUnixSeconds) {
  EXPECT_EQ(EnqueueOk(R"("eta":1714564800)").eta_ms, k20240501Noon);
  EXPECT_EQ(EnqueueOk(R"("eta":1714564800.25)").eta_ms, k20240501Noon + 250);
  EXPECT_EQ(EnqueueOk(R"("eta":0)").eta_ms, 0);
  const ApiError range = Err422("eta: as Unix seconds must be in 0..253402300799 (1970..9999 UTC)");
  EXPECT_EQ(EnqueueError(R"("eta":-1)"), range);
  EXPECT_EQ(EnqueueError(R"("eta":253402300800)"), range);
  EXPECT_EQ(EnqueueError(R"("eta":1e300)"), range);
}

TEST(EnqueueBody, EtaNeedsAnOffset) {
  const ApiError need = Err422("eta: needs a UTC offset (Z or +HH:MM)");
  EXPECT_EQ(EnqueueError(R"("eta":"2024-05-01T12:00:00")"), need);
  EXPECT_EQ(EnqueueError(R"("eta":"2024-05-01T12:00")"), need);
  EXPECT_EQ(EnqueueError(R"("eta":"2024-05-01T12:00:00.5")"), need);
  EXPECT_EQ(EnqueueError(R"("eta":"2024-05-01T12:00:00+0200")"), need);
  EXPECT_EQ(EnqueueError(R"("eta":"2024-05-01T12:00:00+02")"), need);
}

TEST(EnqueueBody, EtaInvalidDatesAndTimes) {
  auto error = [](std::string_view text) {
    return EnqueueError(R"("eta":")" + std::string(text) + "\"").detail;
  };
  EXPECT_EQ(error("2023-02-29T00:00:00Z"), "eta: no such date 2023-02-29");
  EXPECT_EQ(error("2024-02-30T00:00:00Z"), "eta: no such date 2024-02-30");
  EXPECT_EQ(error("1900-02-29T00:00:00Z"), "eta: no such date 1900-02-29");
  EXPECT_EQ(error("2024-04-31T00:00:00Z"), "eta: no such date 2024-04-31");
  EXPECT_EQ(error("2024-13-01T00:00:00Z"), "eta: no such date 2024-13-01");
  EXPECT_EQ(error("2024-00-10T00:00:00Z"), "eta: no such date 2024-00-10");
  EXPECT_EQ(error("2024-01-00T00:00:00Z"), "eta: no such date 2024-01-00");
  const std::string time = "eta: time of day out of range (00:00:00..23:59:59)";
  EXPECT_EQ(error("2024-05-01T24:00:00Z"), time);
  EXPECT_EQ(error("2024-05-01T12:60:00Z"), time);
  EXPECT_EQ(error("2024-05-01T12:00:60Z"), time);  // no leap seconds
  EXPECT_EQ(error("2024-05-01T12:00:00+24:00"), "eta: UTC offset out of range (-23:59..+23:59)");
  EXPECT_EQ(error("2024-05-01T12:00:00+01:60"), "eta: UTC offset out of range (-23:59..+23:59)");
  EXPECT_EQ(error("1970-01-01T00:00:00+00:01"), "eta: must not be before 1970-01-01T00:00:00Z");
  EXPECT_EQ(error("1969-12-31T23:59:59Z"), "eta: must not be before 1970-01-01T00:00:00Z");
  const std::string bad = "eta: must be an ISO 8601 date-time such as 2024-05-01T12:00:00Z";
  for (const char* text :
       {"", "2024-05-01", "2024-05-01T", "2024-5-1T12:00:00Z", "24-05-01T12:00:00Z",
        "2024/05/01T12:00:00Z", "2024-05-01T12Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zx",
        "2024-05-01T12:00:00 Z", "2024-05-01X12:00:00Z", "+2024-05-01T12:00:00Z", "tomorrow",
        "2024-05-01T12:00:00+02:00 ", "2024-05-01T1a:00:00Z", "2024-05-01T12:00:00.12a3Z"}) {
    EXPECT_EQ(error(text), bad) << text;
  }
}

TEST(EnqueueBody, EtaWrongType) {
  for (const char* v : {"true", "[]", "{}"}) {
    EXPECT_EQ(EnqueueError(std::string("\"eta\":") + v).detail,
              "eta: must be an ISO 8601 date-time string (2024-05-01T12:00:00Z) or Unix seconds")
        << v;
  }
}

TEST(EnqueueBody, DelayAndEtaConflict) {
  const ApiError both = Err422("delay_seconds: cannot be combined with eta (give one of them)");
  EXPECT_EQ(EnqueueError(R"("delay_seconds":5,"eta":"2024-05-01T12:00:00Z")"), both);
  EXPECT_EQ(EnqueueError(R"("eta":1714564800,"delay_seconds":0)"), both);
  // null is "not given": no conflict.
  auto r = EnqueueOk(R"("delay_seconds":5,"eta":null)");
  EXPECT_EQ(r.delay, std::chrono::milliseconds(5000));
  EXPECT_FALSE(r.eta_ms);
}

TEST(IsoDateTime, NamesTheGivenField) {
  auto ok = ParseIsoDateTimeMs("2024-05-01T12:00:00Z", "run_date");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, k20240501Noon);
  auto bad = ParseIsoDateTimeMs("2024-05-01T12:00:00", "run_date");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), Err422("run_date: needs a UTC offset (Z or +HH:MM)"));
}

// ---------------------------------------------------------------------------------------------
// Batches.

TEST(EnqueueBatch, ObjectForm) {
  auto r = Batch(R"({"tasks": [
      {"task_name": "a", "task_data": { "i" : 0 }},
      {"task_name": "b", "priority": "HIGH", "delay_seconds": 2}
  ]})");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "a");
  EXPECT_EQ((*r)[0].data_json, R"({"i":0})");
  EXPECT_EQ((*r)[1].name, "b");
  EXPECT_EQ((*r)[1].priority, storage::Priority::kHigh);
  EXPECT_EQ((*r)[1].delay, std::chrono::milliseconds(2000));
  EXPECT_TRUE((*r)[1].data_json.empty());
}

TEST(EnqueueBatch, BareArrayForm) {
  auto r = Batch(R"([{"task_name":"a"},{"task_name":"b","task_data":{"x":[1, 2]}}])");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].data_json, R"({"x":[1,2]})");
}

TEST(EnqueueBatch, SizeLimits) {
  EXPECT_EQ(Batch(R"({"tasks":[]})").error(), Err422("tasks: must hold 1..1000 tasks (got 0)"));
  EXPECT_EQ(Batch("[]").error(), Err422("tasks: must hold 1..1000 tasks (got 0)"));
  auto many = [](size_t n) {
    std::string body = "[";
    for (size_t i = 0; i < n; ++i) body.append(i ? "," : "").append(R"({"task_name":"t"})");
    return body + "]";
  };
  auto thousand = Batch(many(1000));
  ASSERT_TRUE(thousand.ok()) << thousand.error().detail;
  EXPECT_EQ(thousand->size(), 1000u);
  EXPECT_EQ(Batch(many(1001)).error(), Err422("tasks: must hold 1..1000 tasks (got 1001)"));
}

TEST(EnqueueBatch, FirstBadItemNamesItsIndex) {
  auto r = Batch(R"({"tasks":[{"task_name":"a"},{"task_name":"b"},{"task_name":"c"},
                              {"task_name":"d","priority":"URGENT"},{"task_name":7}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Err422("tasks[3]." + std::string(kPriorityError)));
  EXPECT_EQ(Batch(R"([{"task_name":"a"},{}])").error(),
            Err422("tasks[1].task_name: field required"));
  EXPECT_EQ(Batch(R"([{"task_name":"a"},[]])").error(), Err422("tasks[1]: must be a JSON object"));
  EXPECT_EQ(Batch(R"([null])").error(), Err422("tasks[0]: must be a JSON object"));
  EXPECT_EQ(Batch(R"([{"task_name":"a","bogus":1}])").error().detail,
            "tasks[0].bogus: unknown field (allowed: task_name, task_data, priority, max_retries, "
            "queue_name, delay_seconds, eta, timeout_seconds, unique_key)");
  EXPECT_EQ(Batch(R"([{"task_name":"a","eta":"2024-05-01T12:00:00"}])").error(),
            Err422("tasks[0].eta: needs a UTC offset (Z or +HH:MM)"));
  EXPECT_EQ(Batch(R"([{"task_name":"a","eta":"2024-05-01T12:00:00Z","delay_seconds":1}])").error(),
            Err422("tasks[0].delay_seconds: cannot be combined with eta (give one of them)"));
}

TEST(EnqueueBatch, WrapperErrors) {
  EXPECT_EQ(Batch("{}").error(), Err422("tasks: field required"));
  EXPECT_EQ(Batch(R"({"tasks":{}})").error(),
            Err422("tasks: must be a JSON array of task objects"));
  EXPECT_EQ(Batch(R"({"tasks":null})").error(),
            Err422("tasks: must be a JSON array of task objects"));
  EXPECT_EQ(Batch(R"({"tasks":[{"task_name":"a"}],"extra":1})").error(),
            Err422("extra: unknown field (allowed: tasks)"));
  EXPECT_EQ(Batch(R"({"tasks":[{"task_name":"a"}],"tasks":[{"task_name":"b"}]})").error(),
            Err422("tasks: given more than once"));
  for (const char* body : {"1", "\"x\"", "null", "true"}) {
    EXPECT_EQ(Batch(body).error(),
              Err422("body: must be a JSON object {\"tasks\": [...]} or a JSON array"))
        << body;
  }
}

TEST(EnqueueBatch, MalformedIs400) {
  for (const char* body : {"", " ", R"({"tasks":[{"task_name":"a"},]})", R"([{"task_name":"a"})",
                           R"([{"task_name":"a"}] [])", "[\"\xff\"]"}) {
    EXPECT_EQ(Batch(body).error().http_status, 400) << body;
  }
  EXPECT_EQ(Batch(std::string(5000, '[') + std::string(5000, ']')).error().http_status, 400);
}

// ---------------------------------------------------------------------------------------------
// List queries.

storage::ListQuery QueryOk(std::string_view text) {
  auto r = ParseListQuery(text);
  EXPECT_TRUE(r.ok()) << text << " -> " << (r.ok() ? "" : r.error().detail);
  return r.ok() ? *r : storage::ListQuery{};
}

ApiError QueryError(std::string_view text) {
  auto r = ParseListQuery(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? ApiError{0, "parsed"} : r.error();
}

TEST(ListQuery, Defaults) {
  for (const char* text : {"", "?", "&", "&&", "limit=", "status&cursor="}) {
    const storage::ListQuery q = QueryOk(text);
    EXPECT_FALSE(q.state) << text;
    EXPECT_TRUE(q.queue.empty());
    EXPECT_TRUE(q.name.empty());
    EXPECT_EQ(q.limit, 50u);
    EXPECT_FALSE(q.before);
    EXPECT_FALSE(q.terminal_only);
  }
}

TEST(ListQuery, EveryParameter) {
  const storage::TaskId id = storage::NewTaskId(1714564800000);
  const storage::ListQuery q = QueryOk(
      "status=failed&queue_name=training&task_name=train_model"
      "&limit=10&cursor=" +
      id.ToString());
  EXPECT_EQ(q.state, storage::TaskState::kFailed);
  EXPECT_EQ(q.queue, "training");
  EXPECT_EQ(q.name, "train_model");
  EXPECT_EQ(q.limit, 10u);
  EXPECT_EQ(q.before, id);
  EXPECT_EQ(QueryOk("?status=RUNNING").state, storage::TaskState::kRunning);
  EXPECT_EQ(QueryOk("status=Cancelled").state, storage::TaskState::kCancelled);
  // Upper-case ids are accepted too.
  std::string upper = id.ToString();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(QueryOk("cursor=" + upper).before, id);
}

TEST(ListQuery, PercentDecoding) {
  EXPECT_EQ(QueryOk("queue_name=my%20queue").queue, "my queue");
  EXPECT_EQ(QueryOk("queue_name=my+queue").queue, "my queue");
  EXPECT_EQ(QueryOk("queue_name=a%2Bb%2fc%3D%26").queue, "a+b/c=&");
  EXPECT_EQ(QueryOk("task_name=caf%C3%A9").name, "caf\xc3\xa9");
  EXPECT_EQ(QueryOk("st%61tus=pending").state, storage::TaskState::kPending);
  EXPECT_EQ(QueryOk("limit=%31%30").limit, 10u);
  EXPECT_EQ(QueryOk("task_name=a=b").name, "a=b");  // only the first '=' splits
}

TEST(ListQuery, MalformedEncodingIs400) {
  for (const char* text : {"queue_name=%", "queue_name=%4", "queue_name=%zz", "queue_name=%4g",
                           "%=1", "task_name=abc%"}) {
    const ApiError e = QueryError(text);
    EXPECT_EQ(e.http_status, 400) << text;
    EXPECT_THAT(e.detail, StartsWith("query: invalid percent-encoding")) << text;
  }
  EXPECT_EQ(QueryError("task_name=%FF"),
            (ApiError{400, "query: not valid UTF-8 once percent-decoded"}));
  EXPECT_EQ(QueryError("task_name=%C3"),
            (ApiError{400, "query: not valid UTF-8 once percent-decoded"}));
}

TEST(ListQuery, Limit) {
  EXPECT_EQ(QueryOk("limit=1").limit, 1u);
  EXPECT_EQ(QueryOk("limit=1000").limit, 1000u);
  EXPECT_EQ(QueryOk("limit=0050").limit, 50u);
  for (const char* v :
       {"0", "1001", "-1", "+5", "abc", "10x", " 10", "1.5", "1e2", "99999999999999999999999"}) {
    EXPECT_EQ(QueryError(std::string("limit=") + v), Err422("limit: must be an integer in 1..1000"))
        << v;
  }
}

TEST(ListQuery, BadStatusNamesTheAllowedValues) {
  EXPECT_EQ(QueryError("status=DONE"),
            Err422("status: must be one of PENDING, RUNNING, RETRYING, COMPLETED, FAILED, "
                   "CANCELLED"));
}

TEST(ListQuery, BadCursor) {
  for (const char* v :
       {"abc", "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f6", "0190a5b27c3e7d418f2a1b2c3d4e5f60",
        "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f60x"}) {
    EXPECT_EQ(QueryError(std::string("cursor=") + v),
              Err422("cursor: must be a task id (the next_cursor of the previous page)"))
        << v;
  }
}

TEST(ListQuery, UnknownAndRepeatedParameters) {
  EXPECT_EQ(QueryError("page=2"),
            Err422("page: unknown query parameter (allowed: status, queue_name, task_name, "
                   "limit, cursor)"));
  EXPECT_THAT(QueryError("limit=5&offset=10").detail,
              StartsWith("offset: unknown query parameter"));
  EXPECT_EQ(QueryError("status=PENDING&status=RUNNING"), Err422("status: given more than once"));
  EXPECT_EQ(QueryError("limit=5&limit=5"), Err422("limit: given more than once"));
  EXPECT_EQ(QueryError("limit=&limit=5"), Err422("limit: given more than once"));
}

// ---------------------------------------------------------------------------------------------
// Scheduled jobs: POST /tasks/scheduled bodies and the job list query.

constexpr std::string_view kJobHead =
    R"("job_name":"nightly","job_function":"process_data","job_type":"cron",)"
    R"("trigger_config":{"hour":2,"minute":0})";

ParseResult<engine::JobSpec> Job(std::string_view extra) {
  std::string body = "{" + std::string(kJobHead) + std::string(extra) + "}";
  return ParseJobBody(body);
}

ApiError JobError(std::string body) {
  auto r = ParseJobBody(body);
  return r.ok() ? ApiError{0, "parsed"} : r.error();
}

TEST(JobBody, ReadsEveryField) {
  auto r = Job(R"(,"job_data":{"data_source":"a.csv"},"queue_name":"ml","priority":"high",)"
               R"("max_retries":2,"misfire_grace_time":30.5,"coalesce":false,"max_instances":3,)"
               R"("job_id":"n-1","paused":true)");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->name, "nightly");
  EXPECT_EQ(r->function, "process_data");
  EXPECT_EQ(r->type, engine::TriggerType::kCron);
  EXPECT_EQ(boost::json::serialize(r->trigger_config), R"({"hour":2,"minute":0})");
  EXPECT_EQ(boost::json::serialize(r->data), R"({"data_source":"a.csv"})");
  EXPECT_EQ(r->queue, "ml");
  EXPECT_EQ(r->priority, storage::Priority::kHigh);
  EXPECT_EQ(r->max_retries, 2);
  EXPECT_EQ(r->misfire_grace_seconds, 30.5);
  EXPECT_FALSE(r->coalesce);
  EXPECT_EQ(r->max_instances, 3);
  EXPECT_EQ(r->id, "n-1");
  EXPECT_TRUE(r->paused);
}

TEST(JobBody, DefaultsAndNull) {
  auto r = Job("");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->misfire_grace_seconds, 60.0);
  EXPECT_TRUE(r->coalesce);
  EXPECT_EQ(r->max_instances, 1);
  EXPECT_TRUE(r->id.empty());
  EXPECT_FALSE(r->paused);
  // null: "not given", except misfire_grace_time, where it means no limit.
  r = Job(R"(,"misfire_grace_time":null,"job_data":null,"priority":null)");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_FALSE(r->misfire_grace_seconds.has_value());
  EXPECT_TRUE(r->data.empty());
  EXPECT_FALSE(r->priority.has_value());
}

TEST(JobBody, BadFieldsAreNamed) {
  EXPECT_EQ(Job(R"(,"max_instances":0)").error(),
            Err422("max_instances: must be an integer in 1..1000"));
  EXPECT_EQ(Job(R"(,"max_retries":1.5)").error(), Err422(std::string(kMaxRetriesError)));
  EXPECT_EQ(Job(R"(,"misfire_grace_time":0)").error(),
            Err422("misfire_grace_time: must be a number of seconds > 0, or null for no limit"));
  EXPECT_EQ(Job(R"(,"misfire_grace_time":"60")").error().http_status, 422);
  EXPECT_EQ(Job(R"(,"coalesce":"yes")").error(), Err422("coalesce: must be true or false"));
  EXPECT_EQ(Job(R"(,"priority":"urgent")").error(), Err422(std::string(kPriorityError)));
  EXPECT_EQ(Job(R"(,"job_data":[1])").error(), Err422("job_data: must be a JSON object"));
  EXPECT_EQ(Job(R"(,"job_id":"")").error(),
            Err422("job_id: must be a string of 1..128 characters"));
  EXPECT_THAT(Job(R"(,"colour":1)").error().detail, StartsWith("colour: unknown field"));
  EXPECT_EQ(Job(R"(,"coalesce":true,"coalesce":false)").error(),
            Err422("coalesce: given more than once"));
  EXPECT_EQ(
      JobError(R"({"job_name":"x","job_function":"f","job_type":"weekly","trigger_config":{}})"),
      Err422("job_type: must be cron, interval or date"));
  EXPECT_EQ(JobError(R"({"job_name":"x","job_function":"f","job_type":"cron","trigger_config":3})"),
            Err422("trigger_config: must be a JSON object"));
  EXPECT_EQ(JobError(R"({"job_name":"x","job_type":"cron","trigger_config":{}})"),
            Err422("job_function: field required"));
  EXPECT_EQ(
      JobError(R"({"job_name":null,"job_function":"f","job_type":"cron","trigger_config":{}})"),
      Err422("job_name: field required"));
  EXPECT_EQ(JobError("[1]"), Err422("body: must be a JSON object"));
  EXPECT_EQ(JobError("{").http_status, 400);
  EXPECT_EQ(JobError("").http_status, 400);
}

TEST(JobListQuery, StateLimitCursor) {
  auto q = ParseJobListQuery("state=paused&limit=20&cursor=job-7");
  ASSERT_TRUE(q.ok()) << q.error().detail;
  EXPECT_EQ(q->state, engine::JobState::kPaused);
  EXPECT_EQ(q->limit, 20u);
  EXPECT_EQ(q->after, "job-7");
  q = ParseJobListQuery("");
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->state.has_value());
  EXPECT_EQ(q->limit, 100u);
  EXPECT_EQ(ParseJobListQuery("state=sleeping").error(),
            Err422("state: must be one of active, paused, finished"));
  EXPECT_EQ(ParseJobListQuery("limit=0").error(), Err422("limit: must be an integer in 1..1000"));
  EXPECT_EQ(ParseJobListQuery("status=active").error(),
            Err422("status: unknown query parameter (allowed: state, limit, cursor)"));
  EXPECT_EQ(ParseJobListQuery("limit=5&limit=6").error(), Err422("limit: given more than once"));
}

// ---------------------------------------------------------------------------------------------
// Threads: each has its own parsers.

TEST(RequestJson, ConcurrentParsesFromManyThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 500; ++i) {
        std::string body = R"({"task_name":"t)" + std::to_string(t) + R"(","task_data":{"i": )" +
                           std::to_string(i) + "}}";
        auto r = ParseEnqueueBody(body);
        if (!r.ok() || r->name != "t" + std::to_string(t) ||
            r->data_json != "{\"i\":" + std::to_string(i) + "}") {
          failures.fetch_add(1, std::memory_order_relaxed);
        }
        std::string bad = std::string(static_cast<size_t>(100 + i), '[');
        if (ParseEnqueueBody(bad).ok()) failures.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(std::memory_order_relaxed), 0);
}

}  // namespace
}  // namespace bmos::api
