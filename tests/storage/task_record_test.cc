#include "storage/task_record.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "storage/task_store.h"
#include "tests/storage/store_test_util.h"

namespace bmos::storage {
namespace {

using S = TaskState;
using test_util::kAllStates;

TEST(TaskState, ToStringAndParse) {
  EXPECT_EQ(ToString(S::kPending), "PENDING");
  EXPECT_EQ(ToString(S::kRunning), "RUNNING");
  EXPECT_EQ(ToString(S::kRetrying), "RETRYING");
  EXPECT_EQ(ToString(S::kCompleted), "COMPLETED");
  EXPECT_EQ(ToString(S::kFailed), "FAILED");
  EXPECT_EQ(ToString(S::kCancelled), "CANCELLED");
  for (S s : kAllStates) EXPECT_EQ(ParseTaskState(ToString(s)), s);
  EXPECT_EQ(ParseTaskState("pending"), S::kPending);
  EXPECT_EQ(ParseTaskState("Completed"), S::kCompleted);
  EXPECT_EQ(ParseTaskState("cAnCeLlEd"), S::kCancelled);
  EXPECT_FALSE(ParseTaskState("").has_value());
  EXPECT_FALSE(ParseTaskState("DONE").has_value());
  EXPECT_FALSE(ParseTaskState("PENDING ").has_value());
  EXPECT_FALSE(ParseTaskState("PENDIN").has_value());
}

TEST(TaskState, Terminal) {
  EXPECT_FALSE(IsTerminal(S::kPending));
  EXPECT_FALSE(IsTerminal(S::kRunning));
  EXPECT_FALSE(IsTerminal(S::kRetrying));
  EXPECT_TRUE(IsTerminal(S::kCompleted));
  EXPECT_TRUE(IsTerminal(S::kFailed));
  EXPECT_TRUE(IsTerminal(S::kCancelled));
}

TEST(TaskState, TransitionTable) {
  // expected[from][to], rows and columns in kAllStates order.
  constexpr bool expected[kTaskStateCount][kTaskStateCount] = {
      // PEND  RUN    RETRY  COMPL  FAIL   CANCEL
      {false, true, false, false, false, true},    // PENDING
      {false, false, true, true, true, true},      // RUNNING (never straight back to PENDING)
      {true, false, false, false, false, true},    // RETRYING
      {false, false, false, false, false, false},  // COMPLETED
      {false, false, false, false, false, false},  // FAILED
      {false, false, false, false, false, false},  // CANCELLED
  };
  int legal = 0;
  for (int f = 0; f < kTaskStateCount; ++f) {
    for (int t = 0; t < kTaskStateCount; ++t) {
      EXPECT_EQ(IsLegalTransition(kAllStates[f], kAllStates[t]), expected[f][t])
          << ToString(kAllStates[f]) << " -> " << ToString(kAllStates[t]);
      legal += IsLegalTransition(kAllStates[f], kAllStates[t]);
    }
  }
  EXPECT_EQ(legal, 8);
}

TEST(TaskState, NothingLeavesTerminal) {
  for (S from : kAllStates) {
    if (!IsTerminal(from)) continue;
    for (S to : kAllStates) EXPECT_FALSE(IsLegalTransition(from, to));
  }
}

TEST(ClearKeepingBuffer, KeepsASmallBufferAndFreesALargeOne) {
  std::string small(100, 'x');
  const size_t small_capacity = small.capacity();
  internal::ClearKeepingBuffer(small, 256);
  EXPECT_TRUE(small.empty());
  EXPECT_EQ(small.capacity(), small_capacity);  // reused as it is

  std::string large(1000, 'x');
  internal::ClearKeepingBuffer(large, 256);
  EXPECT_TRUE(large.empty());
  EXPECT_LE(large.capacity(), 256u);  // freed: back to the inline buffer
}

TEST(Priority, ToStringAndParse) {
  EXPECT_EQ(ToString(Priority::kLow), "LOW");
  EXPECT_EQ(ToString(Priority::kNormal), "NORMAL");
  EXPECT_EQ(ToString(Priority::kHigh), "HIGH");
  EXPECT_EQ(ToString(Priority::kCritical), "CRITICAL");
  for (Priority p : {Priority::kLow, Priority::kNormal, Priority::kHigh, Priority::kCritical}) {
    EXPECT_EQ(ParsePriority(ToString(p)), p);
  }
  EXPECT_EQ(ParsePriority("critical"), Priority::kCritical);
  EXPECT_EQ(ParsePriority("Normal"), Priority::kNormal);
  EXPECT_FALSE(ParsePriority("URGENT").has_value());
  EXPECT_FALSE(ParsePriority("").has_value());
  EXPECT_FALSE(ParsePriority("1").has_value());
  EXPECT_LT(static_cast<int>(Priority::kLow), static_cast<int>(Priority::kCritical));
}

TEST(Durability, ToStringAndParse) {
  EXPECT_EQ(ToString(Durability::kSync), "sync");
  EXPECT_EQ(ToString(Durability::kAsync), "async");
  EXPECT_EQ(ToString(Durability::kMemory), "memory");
  for (Durability d : {Durability::kSync, Durability::kAsync, Durability::kMemory}) {
    EXPECT_EQ(ParseDurability(ToString(d)), d);
  }
  EXPECT_EQ(ParseDurability("SYNC"), Durability::kSync);
  EXPECT_FALSE(ParseDurability("fsync").has_value());
  EXPECT_FALSE(ParseDurability("").has_value());
}

TEST(StoreCounts, TotalSumsQueues) {
  StoreCounts counts;
  counts.by_queue["a"][static_cast<size_t>(S::kPending)] = 3;
  counts.by_queue["b"][static_cast<size_t>(S::kPending)] = 4;
  counts.by_queue["b"][static_cast<size_t>(S::kFailed)] = 2;
  EXPECT_EQ(counts.total(S::kPending), 7u);
  EXPECT_EQ(counts.total(S::kFailed), 2u);
  EXPECT_EQ(counts.total(S::kRunning), 0u);
  EXPECT_EQ(StoreCounts{}.total(S::kPending), 0u);
}

// Every field of `got` equals that of `want`.
void ExpectSameRecord(const TaskRecord& got, const TaskRecord& want) {
  EXPECT_EQ(got.spec, want.spec);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.retry_count, want.retry_count);
  EXPECT_EQ(got.run_at_ms, want.run_at_ms);
  EXPECT_EQ(got.started_ms, want.started_ms);
  EXPECT_EQ(got.completed_ms, want.completed_ms);
  EXPECT_EQ(got.progress, want.progress);
  EXPECT_EQ(got.progress_message, want.progress_message);
  EXPECT_EQ(got.result_json, want.result_json);
  EXPECT_EQ(got.error, want.error);
}

// The engine swaps a task's record with its outcome (ADL picks TaskRecord's own swap): every
// field must move across, strings short (in place) and long (on the heap) alike.
TEST(TaskRecord, SwapExchangesEveryField) {
  TaskRecord a;
  a.spec = std::make_shared<TaskSpec>();
  a.state = S::kRunning;
  a.retry_count = 1;
  a.run_at_ms = 11;
  a.started_ms = 12;
  a.progress = 0.25;
  a.progress_message = "a";
  a.result_json = std::string(300, 'r');
  TaskRecord b;
  b.spec = std::make_shared<TaskSpec>();
  b.state = S::kFailed;
  b.retry_count = 3;
  b.run_at_ms = 21;
  b.started_ms = 22;
  b.completed_ms = 23;
  b.progress = 1;
  b.progress_message = std::string(200, 'm');
  b.result_json = "null";
  b.error = "boom";
  const TaskRecord a_before = a, b_before = b;
  swap(a, b);
  {
    SCOPED_TRACE("a after the swap");
    ExpectSameRecord(a, b_before);
  }
  {
    SCOPED_TRACE("b after the swap");
    ExpectSameRecord(b, a_before);
  }
}

TEST(FormatIsoTime, KnownInstants) {
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(FormatIsoTime(1'709'251'199'999), "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(FormatIsoTime(1'709'251'200'000), "2024-03-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(1'795'896'972'123), "2026-11-28T20:16:12.123Z");
  EXPECT_EQ(FormatIsoTime(951'782'400'000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(4'102'444'799'999), "2099-12-31T23:59:59.999Z");
}

std::shared_ptr<TaskSpec> MakeSpec() {
  auto spec = std::make_shared<TaskSpec>();
  spec->id = TaskId{0x0190a5b27c3e7d41ull, 0x8f2a1b2c3d4e5f60ull};
  spec->name = "data_cleaning";
  spec->queue = "default";
  spec->priority = Priority::kHigh;
  spec->data_json = R"({"dataset":"sales","rows":10})";
  spec->max_retries = 5;
  spec->created_ms = 1'795'896'972'123;
  return spec;
}

TEST(ToJson, PendingRecordHasNulls) {
  TaskRecord r;
  r.spec = MakeSpec();
  const boost::json::object o = boost::json::parse(ToJson(r)).as_object();
  const char* fields[] = {"task_id",         "task_name",    "queue_name", "priority",
                          "status",          "task_data",    "result",     "error",
                          "retry_count",     "max_retries",  "progress",   "progress_message",
                          "timeout_seconds", "eta",          "unique_key", "created_at",
                          "started_at",      "completed_at", "run_at"};
  for (const char* f : fields) EXPECT_TRUE(o.contains(f)) << f;
  EXPECT_EQ(o.size(), std::size(fields));
  EXPECT_EQ(o.at("task_id").as_string(), "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f60");
  EXPECT_EQ(o.at("task_name").as_string(), "data_cleaning");
  EXPECT_EQ(o.at("queue_name").as_string(), "default");
  EXPECT_EQ(o.at("priority").as_string(), "HIGH");
  EXPECT_EQ(o.at("status").as_string(), "PENDING");
  ASSERT_TRUE(o.at("task_data").is_object());
  EXPECT_EQ(o.at("task_data").at("dataset").as_string(), "sales");
  EXPECT_EQ(o.at("task_data").at("rows").to_number<int>(), 10);
  EXPECT_EQ(o.at("retry_count").to_number<int>(), 0);
  EXPECT_EQ(o.at("max_retries").to_number<int>(), 5);
  EXPECT_EQ(o.at("progress").to_number<double>(), 0.0);
  EXPECT_EQ(o.at("created_at").as_string(), "2026-11-28T20:16:12.123Z");
  for (const char* f : {"result", "error", "progress_message", "timeout_seconds", "eta",
                        "unique_key", "started_at", "completed_at", "run_at"}) {
    EXPECT_TRUE(o.at(f).is_null()) << f;
  }
}

TEST(ToJson, CompletedRecordHasValues) {
  auto spec = MakeSpec();
  spec->timeout_ms = 30'000;
  spec->eta_ms = 1'795'896'000'000;
  spec->unique_key = "sales-2026";
  TaskRecord r;
  r.spec = spec;
  r.state = S::kCompleted;
  r.retry_count = 1;
  r.run_at_ms = 1'795'896'000'000;
  r.started_ms = 1'795'896'972'200;
  r.completed_ms = 1'795'896'973'000;
  r.progress = 1.0;
  r.progress_message = "done";
  r.result_json = R"({"cleaned":10,"ok":true})";
  r.error = "first attempt timed out";
  const boost::json::object o = boost::json::parse(ToJson(r)).as_object();
  EXPECT_EQ(o.at("status").as_string(), "COMPLETED");
  EXPECT_EQ(o.at("result").at("cleaned").to_number<int>(), 10);
  EXPECT_TRUE(o.at("result").at("ok").as_bool());
  EXPECT_EQ(o.at("error").as_string(), "first attempt timed out");
  EXPECT_EQ(o.at("retry_count").to_number<int>(), 1);
  EXPECT_EQ(o.at("progress").to_number<double>(), 1.0);
  EXPECT_EQ(o.at("progress_message").as_string(), "done");
  EXPECT_EQ(o.at("timeout_seconds").to_number<double>(), 30.0);
  EXPECT_EQ(o.at("eta").as_string(), "2026-11-28T20:00:00.000Z");
  EXPECT_EQ(o.at("unique_key").as_string(), "sales-2026");
  EXPECT_EQ(o.at("started_at").as_string(), "2026-11-28T20:16:12.200Z");
  EXPECT_EQ(o.at("completed_at").as_string(), "2026-11-28T20:16:13.000Z");
  EXPECT_EQ(o.at("run_at").as_string(), "2026-11-28T20:00:00.000Z");
}

TEST(ToJson, NumbersPrintInTheirShortestPlainForm) {
  TaskRecord r;
  r.spec = MakeSpec();
  r.progress = 0.5;
  const std::string text = ToJson(r);
  EXPECT_NE(text.find(R"("progress":0.5,)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("retry_count":0,)"), std::string::npos) << text;
  r.progress = 0;
  EXPECT_NE(ToJson(r).find(R"("progress":0,)"), std::string::npos) << ToJson(r);
}

TEST(ToJson, FractionalTimeoutAndUnparsableJson) {
  auto spec = MakeSpec();
  spec->timeout_ms = 1500;
  spec->data_json = "not json {";
  TaskRecord r;
  r.spec = spec;
  r.result_json = "[1,2";
  const boost::json::object o = boost::json::parse(ToJson(r)).as_object();
  EXPECT_EQ(o.at("timeout_seconds").to_number<double>(), 1.5);
  EXPECT_EQ(o.at("task_data").as_string(), "not json {");
  EXPECT_EQ(o.at("result").as_string(), "[1,2");
}

TEST(ToJson, EscapesStrings) {
  auto spec = MakeSpec();
  spec->name = "quote\"back\\slash\nnewline";
  TaskRecord r;
  r.spec = spec;
  const boost::json::object o = boost::json::parse(ToJson(r)).as_object();
  EXPECT_EQ(o.at("task_name").as_string(), "quote\"back\\slash\nnewline");
}

}  // namespace
}  // namespace bmos::storage
