#include "engine/engine.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/engine/engine_test_util.h"

namespace bmos::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

// What a handler saw of its task on each attempt.
struct Attempt {
  int attempt = 0;
  TaskState state_seen = TaskState::kPending;  // the record's state from inside the handler
  int32_t retry_count_seen = -1;
};

class AttemptLog {
 public:
  void Add(Attempt a) {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.push_back(a);
  }
  std::vector<int> Numbers() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int> n;
    for (const Attempt& a : attempts_) n.push_back(a.attempt);
    return n;
  }
  std::vector<Attempt> All() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Attempt> attempts_;
};

// Retries under a manual clock: backoff happens only when the test moves time.
class ManualClockTest : public ::testing::Test {
 protected:
  void OpenWith(int workers, RetryOptions retry) {
    EngineOptions o = MakeOptions(workers, &clock_);
    o.retry = retry;
    Result<std::unique_ptr<Engine>> r = Engine::Open(std::move(o));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
    ASSERT_TRUE(engine_->RegisterHandler("noop", NoopHandler()).ok());
  }
  static RetryOptions Backoff(int64_t base_ms, int64_t cap_ms = 600'000, double jitter = 0) {
    RetryOptions r;
    r.base = std::chrono::milliseconds(base_ms);
    r.cap = std::chrono::milliseconds(cap_ms);
    r.multiplier = 2;
    r.jitter = jitter;
    return r;
  }
  Engine& engine() { return *engine_; }

  // Runs a no-op task to completion: by then the engine has had the chance to act on whatever
  // the test did before (a weak "nothing else happened" check, never a false failure).
  void Settle() {
    TaskId id = EnqueueOrFail(engine(), Req("noop"));
    EXPECT_EQ(WaitTerminal(engine(), id).state, TaskState::kCompleted);
  }

  // A handler that logs each attempt with what Get showed from inside it.
  Handler Logging(std::function<HandlerResult(TaskContext&)> body) {
    return [this, body = std::move(body)](TaskContext& ctx) -> HandlerResult {
      Attempt a;
      a.attempt = ctx.attempt();
      Result<TaskRecord> me = engine_->Get(ctx.id());
      if (me.ok()) {
        a.state_seen = me->state;
        a.retry_count_seen = me->retry_count;
      }
      log_.Add(a);
      started_.Add();
      return body(ctx);
    };
  }

  // Declared before the engine, which handlers borrow them from, so the engine goes first.
  ManualClock clock_;
  AttemptLog log_;
  Counter started_;
  Counter saw_token_;
  Gate gate_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ManualClockTest, FirstFailureRetriesAfterBackoff) {
  OpenWith(2, Backoff(1000));
  BMOS_ASSERT_OK(engine().RegisterHandler("flaky", Logging([](TaskContext& ctx) -> HandlerResult {
                                            if (ctx.attempt() == 1)
                                              return Status::Internal("attempt 1 failed");
                                            return boost::json::value("ok");
                                          })));
  EnqueueRequest request = Req("flaky");
  request.max_retries = 3;
  TaskId id = EnqueueOrFail(engine(), request);

  Result<TaskRecord> retrying = WaitForState(engine(), id, TaskState::kRetrying);
  BMOS_ASSERT_OK(retrying);
  EXPECT_EQ(retrying->retry_count, 1);
  EXPECT_EQ(retrying->run_at_ms, clock_.NowMillis() + 1000);
  EXPECT_THAT(retrying->error, HasSubstr("attempt 1 failed"));
  EXPECT_GT(retrying->started_ms, 0);
  EXPECT_EQ(retrying->completed_ms, 0);

  // Not yet: 1 ms short of the backoff.
  clock_.AdvanceMillis(999);
  Settle();
  Result<TaskRecord> still = engine().Get(id);
  BMOS_ASSERT_OK(still);
  EXPECT_EQ(still->state, TaskState::kRetrying);
  EXPECT_EQ(log_.size(), 1u);

  clock_.AdvanceMillis(1);
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kCompleted) << Describe(done);
  EXPECT_EQ(done.retry_count, 1);
  EXPECT_EQ(done.result_json, "\"ok\"");
  EXPECT_EQ(done.completed_ms, clock_.NowMillis());

  std::vector<Attempt> attempts = log_.All();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].attempt, 1);
  EXPECT_EQ(attempts[0].state_seen, TaskState::kRunning);
  EXPECT_EQ(attempts[0].retry_count_seen, 0);
  EXPECT_EQ(attempts[1].attempt, 2);
  EXPECT_EQ(attempts[1].state_seen, TaskState::kRunning);
  EXPECT_EQ(attempts[1].retry_count_seen, 1);
}

TEST_F(ManualClockTest, BackoffGrowsIsCappedAndEndsFailedWithLastError) {
  OpenWith(2, Backoff(1000, 3000));
  BMOS_ASSERT_OK(engine().RegisterHandler("bad", Logging([](TaskContext& ctx) -> HandlerResult {
                                            return Status::Internal("fail attempt " +
                                                                    std::to_string(ctx.attempt()));
                                          })));
  EnqueueRequest request = Req("bad");
  request.max_retries = 4;
  TaskId id = EnqueueOrFail(engine(), request);

  const int64_t expected[] = {1000, 2000, 3000, 3000};  // 1000 * 2^(n-1), capped at 3000
  for (int n = 1; n <= 4; ++n) {
    Result<TaskRecord> r = WaitForRecord(engine(), id, [n](const TaskRecord& rec) {
      return rec.state == TaskState::kRetrying && rec.retry_count == n;
    });
    ASSERT_TRUE(r.ok()) << "retry " << n << ": " << r.status().ToString();
    EXPECT_EQ(r->run_at_ms - clock_.NowMillis(), expected[n - 1]) << "retry " << n;
    EXPECT_THAT(r->error, HasSubstr("fail attempt " + std::to_string(n)));
    clock_.AdvanceMillis(expected[n - 1] - 1);
    Settle();
    Result<TaskRecord> waiting = engine().Get(id);
    BMOS_ASSERT_OK(waiting);
    EXPECT_EQ(waiting->state, TaskState::kRetrying) << "retry " << n << " ran early";
    EXPECT_EQ(waiting->retry_count, n);
    clock_.AdvanceMillis(1);
  }
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kFailed) << Describe(done);
  EXPECT_EQ(done.retry_count, 4);
  EXPECT_THAT(done.error, HasSubstr("fail attempt 5"));
  EXPECT_GT(done.completed_ms, 0);
  EXPECT_THAT(log_.Numbers(), ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(ManualClockTest, WorkerIsFreeWhileATaskWaitsForRetry) {
  OpenWith(1, Backoff(1000));
  BMOS_ASSERT_OK(engine().RegisterHandler("flaky", Logging([](TaskContext& ctx) -> HandlerResult {
                                            if (ctx.attempt() == 1)
                                              return Status::Internal("first attempt fails");
                                            return NoopResult();
                                          })));
  EnqueueRequest request = Req("flaky");
  request.max_retries = 1;
  TaskId a = EnqueueOrFail(engine(), request);
  BMOS_ASSERT_OK(WaitForState(engine(), a, TaskState::kRetrying));

  // The only worker is not asleep in A's backoff: B runs now, with the clock standing still.
  TaskId b = EnqueueOrFail(engine(), Req("noop"));
  EXPECT_EQ(WaitTerminal(engine(), b).state, TaskState::kCompleted);
  EXPECT_EQ(engine().Get(a)->state, TaskState::kRetrying);

  clock_.AdvanceMillis(1000);
  TaskRecord done = WaitTerminal(engine(), a);
  EXPECT_EQ(done.state, TaskState::kCompleted) << Describe(done);
  EXPECT_EQ(done.retry_count, 1);
}

TEST_F(ManualClockTest, JitterSpreadsDelaysWithinBounds) {
  OpenWith(2, Backoff(1000, 600'000, 0.5));
  BMOS_ASSERT_OK(engine().RegisterHandler(
      "bad", [](TaskContext&) -> HandlerResult { return Status::Internal("no"); }));
  std::vector<TaskId> ids;
  for (int i = 0; i < 20; ++i) {
    EnqueueRequest request = Req("bad");
    request.max_retries = 2;
    ids.push_back(EnqueueOrFail(engine(), request));
  }
  std::set<int64_t> delays;
  for (const TaskId& id : ids) {
    Result<TaskRecord> r = WaitForState(engine(), id, TaskState::kRetrying);
    BMOS_ASSERT_OK(r);
    const int64_t d = r->run_at_ms - clock_.NowMillis();
    EXPECT_GE(d, 500);
    EXPECT_LE(d, 1500);
    delays.insert(d);
  }
  // 20 uniform draws over 1000 ms do not all coincide unless jitter is ignored.
  EXPECT_GT(delays.size(), 3u);
}

TEST_F(ManualClockTest, DelayedTaskWaitsForTheClock) {
  OpenWith(2, Backoff(1000));
  BMOS_ASSERT_OK(engine().RegisterHandler(
      "later", Logging([](TaskContext&) -> HandlerResult { return NoopResult(); })));
  const int64_t t0 = clock_.NowMillis();
  EnqueueRequest request = Req("later");
  request.delay = 5000ms;
  Result<EnqueueResult> e = engine().Enqueue(request);
  BMOS_ASSERT_OK(e);
  EXPECT_EQ(e->state, TaskState::kPending);
  Result<TaskRecord> r = engine().Get(e->id);
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kPending);
  EXPECT_EQ(r->run_at_ms, t0 + 5000);

  Settle();
  clock_.AdvanceMillis(4999);
  Settle();
  EXPECT_EQ(engine().Get(e->id)->state, TaskState::kPending);
  EXPECT_EQ(log_.size(), 0u);

  clock_.AdvanceMillis(1);
  TaskRecord done = WaitTerminal(engine(), e->id);
  EXPECT_EQ(done.state, TaskState::kCompleted);
  EXPECT_EQ(done.started_ms, t0 + 5000);
  EXPECT_EQ(log_.size(), 1u);
}

TEST_F(ManualClockTest, EtaTaskWaitsForTheClock) {
  OpenWith(2, Backoff(1000));
  BMOS_ASSERT_OK(engine().RegisterHandler(
      "later", Logging([](TaskContext&) -> HandlerResult { return NoopResult(); })));
  const int64_t eta = clock_.NowMillis() + 3000;
  EnqueueRequest request = Req("later");
  request.eta_ms = eta;
  TaskId id = EnqueueOrFail(engine(), request);
  Result<TaskRecord> r = engine().Get(id);
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kPending);
  EXPECT_EQ(r->run_at_ms, eta);
  EXPECT_EQ(r->spec->eta_ms, eta);

  clock_.AdvanceMillis(2000);
  Settle();
  EXPECT_EQ(engine().Get(id)->state, TaskState::kPending);
  EXPECT_EQ(log_.size(), 0u);

  // Jumping well past the ETA runs it once.
  clock_.AdvanceMillis(60'000);
  EXPECT_EQ(WaitTerminal(engine(), id).state, TaskState::kCompleted);
  EXPECT_EQ(log_.size(), 1u);
}

TEST_F(ManualClockTest, EtaInThePastRunsAtOnce) {
  OpenWith(2, Backoff(1000));
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  EnqueueRequest request = Req("t");
  request.eta_ms = clock_.NowMillis() - 60'000;
  EXPECT_EQ(WaitTerminal(engine(), EnqueueOrFail(engine(), request)).state, TaskState::kCompleted);
}

TEST_F(ManualClockTest, DelayedTasksRunInTimeOrder) {
  OpenWith(1, Backoff(1000));
  std::mutex mu;
  std::vector<int> order;
  BMOS_ASSERT_OK(engine().RegisterHandler("t", [&](TaskContext& ctx) -> HandlerResult {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(static_cast<int>(ctx.data().as_object().at("i").as_int64()));
    return NoopResult();
  }));
  std::vector<TaskId> ids;
  for (int i : {3, 1, 2}) {
    EnqueueRequest request = Req("t", {{"i", i}});
    request.delay = std::chrono::milliseconds(1000 * i);
    ids.push_back(EnqueueOrFail(engine(), request));
  }
  for (int step = 1; step <= 3; ++step) {
    clock_.AdvanceMillis(1000);
    ASSERT_TRUE(Eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return order.size() == static_cast<size_t>(step);
    })) << "step "
        << step;
  }
  for (const TaskId& id : ids) WaitTerminal(engine(), id);
  EXPECT_THAT(order, ElementsAre(1, 2, 3));
}

// ----------------------------------------------------------------------------------------------
// Timeouts.

TEST_F(ManualClockTest, TimeoutSetsTokenAndFailsTheAttempt) {
  OpenWith(2, Backoff(1000));
  BMOS_ASSERT_OK(engine().RegisterHandler("slow", Logging([&](TaskContext& ctx) -> HandlerResult {
                                            if (WaitForToken(ctx)) saw_token_.Add();
                                            return Status::Cancelled("stopped on token");
                                          })));
  EnqueueRequest request = Req("slow");
  request.timeout = 100ms;
  request.max_retries = 1;
  TaskId id = EnqueueOrFail(engine(), request);

  ASSERT_TRUE(started_.WaitAtLeast(1));
  clock_.AdvanceMillis(200);
  ASSERT_TRUE(saw_token_.WaitAtLeast(1));
  Result<TaskRecord> retrying = WaitForState(engine(), id, TaskState::kRetrying);
  BMOS_ASSERT_OK(retrying);
  EXPECT_EQ(retrying->retry_count, 1);
  EXPECT_THAT(retrying->error, HasSubstr("timed out"));
  EXPECT_EQ(retrying->run_at_ms, clock_.NowMillis() + 1000);

  clock_.AdvanceMillis(1000);
  ASSERT_TRUE(started_.WaitAtLeast(2));
  clock_.AdvanceMillis(200);
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kFailed) << Describe(done);
  EXPECT_EQ(done.retry_count, 1);
  EXPECT_THAT(done.error, HasSubstr("timed out"));
  EXPECT_EQ(saw_token_.Get(), 2);
  EXPECT_EQ(engine().Stats().cancelled, 0u);
}

TEST_F(ManualClockTest, TimeoutNotReachedDoesNothing) {
  OpenWith(2, Backoff(1000));
  BMOS_ASSERT_OK(engine().RegisterHandler("slow", Logging([&](TaskContext& ctx) -> HandlerResult {
                                            gate_.Wait(&ctx);
                                            if (ctx.cancelled())
                                              return Status::Cancelled("token set");
                                            return boost::json::value("finished");
                                          })));
  EnqueueRequest request = Req("slow");
  request.timeout = 100ms;
  request.max_retries = 0;
  TaskId id = EnqueueOrFail(engine(), request);
  ASSERT_TRUE(started_.WaitAtLeast(1));
  clock_.AdvanceMillis(99);
  Settle();
  gate_.Open();
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kCompleted) << Describe(done);
  EXPECT_EQ(done.result_json, "\"finished\"");
}

TEST(EngineTimeout, RealClockTimeoutFailsTheTask) {
  Result<std::unique_ptr<Engine>> opened = Engine::Open(MakeOptions(2));
  BMOS_ASSERT_OK(opened);
  Engine& engine = **opened;
  BMOS_ASSERT_OK(engine.RegisterHandler("slow", [](TaskContext& ctx) -> HandlerResult {
    if (!WaitForToken(ctx)) return boost::json::value("token never set");
    return Status::Cancelled("stopped on token");
  }));
  EnqueueRequest request = Req("slow");
  request.timeout = 50ms;
  request.max_retries = 0;
  TaskRecord done = WaitTerminal(engine, EnqueueOrFail(engine, request));
  EXPECT_EQ(done.state, TaskState::kFailed) << Describe(done);
  EXPECT_THAT(done.error, HasSubstr("timed out"));
}

// ----------------------------------------------------------------------------------------------
// Failures that must not be retried, and handlers that throw.

class RealClockRetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions o = MakeOptions(2);
    o.retry.base = 1ms;
    o.retry.cap = 2ms;
    o.retry.jitter = 0;
    Result<std::unique_ptr<Engine>> r = Engine::Open(std::move(o));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
  }
  Engine& engine() { return *engine_; }
  AttemptLog log_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(RealClockRetryTest, RetriesOnTheRealTimerThenFails) {
  BMOS_ASSERT_OK(engine().RegisterHandler("bad", [&](TaskContext& ctx) -> HandlerResult {
    log_.Add(Attempt{.attempt = ctx.attempt()});
    return Status::Internal("fail " + std::to_string(ctx.attempt()));
  }));
  EnqueueRequest request = Req("bad");
  request.max_retries = 2;
  TaskRecord done = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(done.state, TaskState::kFailed);
  EXPECT_EQ(done.retry_count, 2);
  EXPECT_THAT(done.error, HasSubstr("fail 3"));
  EXPECT_THAT(log_.Numbers(), ElementsAre(1, 2, 3));
  ASSERT_TRUE(Eventually([&] { return engine().Stats().retried == 2; }));
}

TEST_F(RealClockRetryTest, ZeroRetriesFailsAfterOneAttempt) {
  BMOS_ASSERT_OK(engine().RegisterHandler("bad", [&](TaskContext& ctx) -> HandlerResult {
    log_.Add(Attempt{.attempt = ctx.attempt()});
    return Status::Internal("only once");
  }));
  EnqueueRequest request = Req("bad");
  request.max_retries = 0;
  TaskRecord done = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(done.state, TaskState::kFailed);
  EXPECT_EQ(done.retry_count, 0);
  EXPECT_THAT(done.error, HasSubstr("only once"));
  EXPECT_EQ(log_.size(), 1u);
}

TEST_F(RealClockRetryTest, InvalidArgumentFailsAtOnceWithoutRetry) {
  BMOS_ASSERT_OK(engine().RegisterHandler("strict", [&](TaskContext& ctx) -> HandlerResult {
    log_.Add(Attempt{.attempt = ctx.attempt()});
    return Status::InvalidArgument("column 'price' is missing");
  }));
  EnqueueRequest request = Req("strict");
  request.max_retries = 3;
  TaskRecord done = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(done.state, TaskState::kFailed) << Describe(done);
  EXPECT_EQ(done.retry_count, 0);
  EXPECT_THAT(done.error, HasSubstr("column 'price' is missing"));
  EXPECT_EQ(log_.size(), 1u);
  EXPECT_EQ(engine().Stats().retried, 0u);
}

TEST_F(RealClockRetryTest, ThrowingHandlerIsAFailedAttempt) {
  BMOS_ASSERT_OK(engine().RegisterHandler("throws", [](TaskContext&) -> HandlerResult {
    throw std::runtime_error("kaboom in handler");
  }));
  BMOS_ASSERT_OK(
      engine().RegisterHandler("throws_int", [](TaskContext&) -> HandlerResult { throw 42; }));
  BMOS_ASSERT_OK(engine().RegisterHandler("noop", NoopHandler()));
  EnqueueRequest request = Req("throws");
  request.max_retries = 0;
  TaskRecord a = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(a.state, TaskState::kFailed) << Describe(a);
  EXPECT_THAT(a.error, HasSubstr("kaboom in handler"));

  request.name = "throws_int";
  TaskRecord b = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(b.state, TaskState::kFailed) << Describe(b);
  EXPECT_FALSE(b.error.empty());

  // The workers survived.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(WaitTerminal(engine(), EnqueueOrFail(engine(), Req("noop"))).state,
              TaskState::kCompleted);
  }
}

TEST_F(RealClockRetryTest, ThrowingHandlerIsRetried) {
  BMOS_ASSERT_OK(engine().RegisterHandler("flaky", [&](TaskContext& ctx) -> HandlerResult {
    log_.Add(Attempt{.attempt = ctx.attempt()});
    if (ctx.attempt() == 1) throw std::logic_error("first throws");
    return boost::json::value(ctx.attempt());
  }));
  EnqueueRequest request = Req("flaky");
  request.max_retries = 1;
  TaskRecord done = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(done.state, TaskState::kCompleted) << Describe(done);
  EXPECT_EQ(done.retry_count, 1);
  EXPECT_EQ(done.result_json, "2");
  EXPECT_THAT(log_.Numbers(), ElementsAre(1, 2));
}

}  // namespace
}  // namespace bmos::engine
