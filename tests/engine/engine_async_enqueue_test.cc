// Engine::EnqueueAsync: the non-blocking enqueue the HTTP server uses. Every test runs on the
// memory store (answer before return) and on the RocksDB store in sync mode (answer from the
// store's commit thread).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "storage/callback_batch.h"
#include "tests/engine/engine_test_util.h"
#include "tests/storage/store_test_util.h"

namespace bmos::engine {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

// Collects EnqueueAsync answers; the test waits for a given number of them.
class Answers {
 public:
  EnqueueCallback Callback() {
    return [this](Result<std::vector<EnqueueResult>> r) {
      std::lock_guard<std::mutex> lock(mu_);
      answers_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  // The answers once `n` have arrived; fails the test after kWaitTimeout.
  std::vector<Result<std::vector<EnqueueResult>>> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, kWaitTimeout, [&] { return answers_.size() >= n; })) {
      ADD_FAILURE() << "only " << answers_.size() << " of " << n << " answers arrived";
    }
    return answers_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Result<std::vector<EnqueueResult>>> answers_;
};

class EnqueueAsyncTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    EngineOptions o = MakeOptions(2);
    if (GetParam()) {
      o.durability = Durability::kSync;
      o.data_dir = dir_.Sub("data");
    }
    Result<std::unique_ptr<Engine>> r = Engine::Open(std::move(o));
    BMOS_ASSERT_OK(r);
    engine_ = std::move(r).value();
    BMOS_ASSERT_OK(engine_->RegisterHandler("noop", NoopHandler()));
  }
  void TearDown() override {
    if (engine_) BMOS_EXPECT_OK(engine_->Stop(0ms));
  }
  static std::vector<EnqueueRequest> One(EnqueueRequest r) {
    std::vector<EnqueueRequest> v;
    v.push_back(std::move(r));
    return v;
  }

  storage::test_util::TempDir dir_{"engine-async"};
  std::unique_ptr<Engine> engine_;
};

TEST_P(EnqueueAsyncTest, AnswersOnceAndTheTaskRuns) {
  Answers answers;
  engine_->EnqueueAsync(One(Req("noop")), answers.Callback());
  auto got = answers.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  BMOS_ASSERT_OK(got[0]);
  ASSERT_EQ(got[0]->size(), 1u);
  const EnqueueResult& r = (*got[0])[0];
  EXPECT_TRUE(r.created);
  EXPECT_EQ(r.state, TaskState::kPending);
  EXPECT_EQ(WaitTerminal(*engine_, r.id).state, TaskState::kCompleted);
}

TEST_P(EnqueueAsyncTest, InvalidRequestIsAnsweredWithTheErrorAndCreatesNothing) {
  Answers answers;
  std::vector<EnqueueRequest> batch;
  batch.push_back(Req("noop"));
  batch.push_back(Req("nope"));
  engine_->EnqueueAsync(std::move(batch), answers.Callback());
  auto got = answers.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_FALSE(got[0].ok());
  EXPECT_EQ(got[0].status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(got[0].status().message(), HasSubstr("request 1"));
  Result<ListPage> page = engine_->List(Query());
  BMOS_ASSERT_OK(page);
  EXPECT_TRUE(page->records.empty());
}

TEST_P(EnqueueAsyncTest, ManyInFlightFromOneThreadAllRun) {
  constexpr size_t kCalls = 200;
  Answers answers;
  for (size_t i = 0; i < kCalls; ++i) engine_->EnqueueAsync(One(Req("noop")), answers.Callback());
  auto got = answers.WaitFor(kCalls);
  ASSERT_EQ(got.size(), kCalls);
  std::set<std::string> ids;
  for (const auto& r : got) {
    BMOS_ASSERT_OK(r);
    ids.insert((*r)[0].id.ToString());
  }
  EXPECT_EQ(ids.size(), kCalls);
  for (const auto& r : got)
    EXPECT_EQ(WaitTerminal(*engine_, (*r)[0].id).state, TaskState::kCompleted);
}

// The answers of one commit run in a row inside one storage::CallbackBatch, which is what lets
// the HTTP server and the bench's clients wake their threads once per commit: an action deferred
// from the answers runs once per batch, after all of them, told how many deferred it. On the
// memory store an answer runs on the caller's thread, outside any batch, and acts itself.
TEST_P(EnqueueAsyncTest, TheAnswersOfACommitShareOneCallbackBatch) {
  constexpr size_t kCalls = 200;
  struct Tally {
    std::mutex mu;
    size_t in_batch = 0, acted_alone = 0, deferred = 0, runs = 0;
    size_t runs_with_others_pending = 0;  // an action that ran before all of its deferrals
    static size_t& Pending() {
      static thread_local size_t pending = 0;  // this thread's deferrals not yet acted on
      return pending;
    }
    static void Act(void* arg, int times) {
      auto* t = static_cast<Tally*>(arg);
      std::lock_guard<std::mutex> lock(t->mu);
      ++t->runs;
      t->deferred += static_cast<size_t>(times);
      if (Pending() != static_cast<size_t>(times)) ++t->runs_with_others_pending;
      Pending() = 0;
    }
  } tally;
  Answers answers;
  EnqueueCallback record = answers.Callback();
  for (size_t i = 0; i < kCalls; ++i) {
    engine_->EnqueueAsync(One(Req("noop")), [&](Result<std::vector<EnqueueResult>> r) {
      {
        std::lock_guard<std::mutex> lock(tally.mu);
        if (storage::CallbackBatch::Active()) {
          ++tally.in_batch;
        } else {
          ++tally.acted_alone;
        }
      }
      ++Tally::Pending();
      if (!storage::CallbackBatch::Defer(&Tally::Act, &tally)) Tally::Act(&tally, 1);
      record(std::move(r));
    });
  }
  ASSERT_EQ(answers.WaitFor(kCalls).size(), kCalls);
  // The last batch's action runs just after its answers: wait for it (bounded).
  const auto deadline = std::chrono::steady_clock::now() + kWaitTimeout;
  std::unique_lock<std::mutex> lock(tally.mu);
  while (tally.deferred < kCalls && std::chrono::steady_clock::now() < deadline) {
    lock.unlock();
    std::this_thread::sleep_for(1ms);
    lock.lock();
  }
  EXPECT_EQ(tally.deferred, kCalls);
  EXPECT_EQ(tally.runs_with_others_pending, 0u);
  if (GetParam()) {
    EXPECT_EQ(tally.in_batch, kCalls);  // the store's threads answer inside a batch
    EXPECT_LE(tally.runs, kCalls);
  } else {
    EXPECT_EQ(tally.acted_alone, kCalls);
    EXPECT_EQ(tally.runs, kCalls);
  }
}

TEST_P(EnqueueAsyncTest, UniqueKeyReturnsTheLiveTask) {
  Answers answers;
  EnqueueRequest a = Req("noop");
  a.unique_key = "nightly";
  a.delay = 1h;  // stays PENDING, so the key stays taken
  EnqueueRequest b = a;
  engine_->EnqueueAsync(One(std::move(a)), answers.Callback());
  engine_->EnqueueAsync(One(std::move(b)), answers.Callback());
  auto got = answers.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  BMOS_ASSERT_OK(got[0]);
  BMOS_ASSERT_OK(got[1]);
  EXPECT_EQ((*got[0])[0].id, (*got[1])[0].id);
  EXPECT_NE((*got[0])[0].created, (*got[1])[0].created);
}

// A request answered with the live task of its key writes nothing: after a restart there is
// still one task, not one per duplicate (blocking and asynchronous enqueues alike).
TEST_P(EnqueueAsyncTest, AKeyedDuplicateLeavesNoRecordBehind) {
  if (!GetParam()) GTEST_SKIP() << "needs a store that outlives the engine";
  EnqueueRequest a = Req("noop");
  a.unique_key = "nightly";
  a.delay = 1h;  // stays PENDING, so the key stays taken
  Result<EnqueueResult> first = engine_->Enqueue(a);
  BMOS_ASSERT_OK(first);
  Result<EnqueueResult> again = engine_->Enqueue(a);
  BMOS_ASSERT_OK(again);
  EXPECT_FALSE(again->created);
  Answers answers;
  engine_->EnqueueAsync(One(a), answers.Callback());
  auto got = answers.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  BMOS_ASSERT_OK(got[0]);
  EXPECT_FALSE((*got[0])[0].created);

  BMOS_ASSERT_OK(engine_->Stop(0ms));
  engine_.reset();
  EngineOptions o = MakeOptions(2);
  o.durability = Durability::kSync;
  o.data_dir = dir_.Sub("data");
  Result<std::unique_ptr<Engine>> reopened = Engine::Open(std::move(o));
  BMOS_ASSERT_OK(reopened);
  engine_ = std::move(reopened).value();
  ListQuery q;
  q.limit = 10;
  Result<ListPage> page = engine_->List(q);
  BMOS_ASSERT_OK(page);
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].id(), first->id);
}

TEST_P(EnqueueAsyncTest, AfterStopTheAnswerIsUnavailable) {
  BMOS_ASSERT_OK(engine_->Stop(0ms));
  Answers answers;
  engine_->EnqueueAsync(One(Req("noop")), answers.Callback());
  auto got = answers.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_FALSE(got[0].ok());
  EXPECT_EQ(got[0].status().code(), Status::Code::kUnavailable);
}

INSTANTIATE_TEST_SUITE_P(Stores, EnqueueAsyncTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "RocksDbSync" : "Memory"; });

}  // namespace
}  // namespace bmos::engine
