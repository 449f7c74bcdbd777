#include "storage/callback_batch.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace bmos::storage {
namespace {

// Appends the int an action was deferred with, how often, and whether a batch was open as it
// ran.
struct Log {
  std::vector<int> ran;
  std::vector<int> times;
  std::vector<bool> active;
};
thread_local Log* tls_log = nullptr;
void Record(void* arg, int times) {
  tls_log->ran.push_back(*static_cast<int*>(arg));
  tls_log->times.push_back(times);
  tls_log->active.push_back(CallbackBatch::Active());
}

TEST(CallbackBatch, OutsideAScopeNothingIsDeferred) {
  int one = 1;
  EXPECT_FALSE(CallbackBatch::Active());
  EXPECT_FALSE(CallbackBatch::Defer(&Record, &one));
}

TEST(CallbackBatch, DeferredActionsRunOnceEachAtTheEndOfTheOutermostScope) {
  Log log;
  tls_log = &log;
  int one = 1, two = 2;
  {
    CallbackBatch outer;
    EXPECT_TRUE(CallbackBatch::Active());
    EXPECT_TRUE(CallbackBatch::Defer(&Record, &one));
    {
      CallbackBatch inner;
      EXPECT_TRUE(CallbackBatch::Defer(&Record, &two));
      EXPECT_TRUE(CallbackBatch::Defer(&Record, &one));  // already deferred: runs once
      EXPECT_TRUE(CallbackBatch::Defer(&Record, &one));
    }
    EXPECT_TRUE(log.ran.empty()) << "an inner scope ran the batch's actions";
  }
  EXPECT_EQ(log.ran, (std::vector<int>{1, 2}));
  EXPECT_EQ(log.times, (std::vector<int>{3, 1}));
  // They run outside any scope, so what they push is not deferred again (and lost).
  EXPECT_EQ(log.active, (std::vector<bool>{false, false}));
  EXPECT_FALSE(CallbackBatch::Active());

  // The next batch starts empty.
  log.ran.clear();
  { CallbackBatch again; }
  EXPECT_TRUE(log.ran.empty());
  tls_log = nullptr;
}

TEST(CallbackBatch, AFullBatchDeclinesAndTheCallerActsItself) {
  Log log;
  tls_log = &log;
  std::vector<int> args(CallbackBatch::kMaxDeferred + 1);
  {
    CallbackBatch batch;
    for (size_t i = 0; i < CallbackBatch::kMaxDeferred; ++i) {
      args[i] = static_cast<int>(i);
      EXPECT_TRUE(CallbackBatch::Defer(&Record, &args[i]));
    }
    EXPECT_FALSE(CallbackBatch::Defer(&Record, &args.back()));
  }
  EXPECT_EQ(log.ran.size(), CallbackBatch::kMaxDeferred);
  tls_log = nullptr;
}

TEST(CallbackBatch, ScopesArePerThread) {
  CallbackBatch batch;
  bool other_active = true;
  std::thread([&] { other_active = CallbackBatch::Active(); }).join();
  EXPECT_FALSE(other_active);
  EXPECT_TRUE(CallbackBatch::Active());
}

}  // namespace
}  // namespace bmos::storage
