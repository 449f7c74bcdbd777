// Crash test of the durable store: a child process (bmos-crash-child) runs an engine on the
// RocksDB store in sync mode and is killed with SIGKILL at random moments; after each kill the
// store must hold every task whose enqueue the child acknowledged, and in the end every one of
// them must run to COMPLETED within its attempts, with the persisted counts matching the records.
//
// The seed is printed; rerun a failure with BMOS_CRASH_SEED=<seed>. Every wait is bounded by a
// real-time deadline; the only process ever killed is the child this test started, by its pid.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "storage/rocksdb_task_store.h"
#include "tests/crash/crash_work.h"
#include "tests/engine/engine_test_util.h"
#include "tests/storage/store_test_util.h"

extern char** environ;

namespace bmos::crash {
namespace {

using engine::Engine;
using engine::EngineStats;
using storage::ListPage;
using storage::ListQuery;
using storage::Result;
using storage::RocksDbStoreOptions;
using storage::RocksDbTaskStore;
using storage::Status;
using storage::TaskId;
using storage::TaskIdHash;
using storage::TaskRecord;
using storage::TaskState;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr char kChildPath[] = BMOS_CRASH_CHILD;
constexpr int kKills = 20;
constexpr int kThreads = 4;
// Every task may be interrupted once per kill and fail once on purpose; it gets more attempts.
constexpr int kMinRetries = kKills + 2;
// Bounds of the steps (generous: CI runs this on two loaded cores).
constexpr auto kFirstIdTimeout = 20s;   // child start, store open and recovery
constexpr auto kReapTimeout = 10s;      // a SIGKILLed process to be reaped
constexpr auto kDrainTimeout = 10s;     // the pipe to reach end of file after the kill
constexpr auto kFinishTimeout = 40s;    // the final engine to finish every task
constexpr auto kRunningTimeout = 15s;   // the blocking task to show RUNNING in the store
constexpr auto kChildLongestRun = 30s;  // the child's own bound (--max-seconds)

uint64_t TestSeed() {
  if (const char* env = std::getenv("BMOS_CRASH_SEED"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

std::string Describe(const TaskRecord& r) {
  return r.id().ToString() + " " + engine::test_util::Describe(r) +
         " max_retries=" + std::to_string(r.spec->max_retries);
}

Result<std::shared_ptr<RocksDbTaskStore>> OpenStore(const std::string& path, bool read_only) {
  RocksDbStoreOptions options;
  options.path = path;
  options.durability = storage::Durability::kSync;
  options.read_only = read_only;
  return RocksDbTaskStore::Open(options);
}

// One run of bmos-crash-child with its stdout on a pipe. The destructor kills (SIGKILL, by pid)
// and reaps the child if it is still there. Not thread-safe: the test body owns it.
class Child {
 public:
  static Result<std::unique_ptr<Child>> Start(std::vector<std::string> args) {
    args.insert(args.begin(), kChildPath);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int fds[2];
    // Close-on-exec on both ends: only the child's stdout (a dup2, which clears the flag) stays
    // open in the child, so end of file on the pipe means the child is gone.
    if (::pipe2(fds, O_CLOEXEC) != 0) return Status::IOError("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, kChildPath, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      return Status::IOError(std::string("posix_spawn ") + kChildPath + ": " + std::strerror(rc));
    }
    return std::unique_ptr<Child>(new Child(pid, fds[0]));
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (!reaped_) {
      Kill();
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    ::close(fd_);
  }

  // Reads ids until `want` of them have arrived in all, `until` has passed, or end of file.
  void ReadUntil(SteadyClock::time_point until, size_t want = SIZE_MAX) {
    while (!eof_ && ids_.size() < want) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - SteadyClock::now());
      if (left <= 0ms) return;
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) {
        ADD_FAILURE() << "poll: " << std::strerror(errno);
        return;
      }
      if (n > 0) ReadOnce();
    }
  }

  // Reads to end of file (the child is dead, so it comes at once). False after `timeout`.
  bool Drain(SteadyClock::duration timeout) {
    ReadUntil(SteadyClock::now() + timeout);
    return eof_;
  }

  void Kill() {
    if (!reaped_) ::kill(pid_, SIGKILL);  // only our own child, by its pid
  }

  // Waits for the child to end; its wait status, or nullopt after `timeout`.
  std::optional<int> Reap(SteadyClock::duration timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return status;
      }
      if (r < 0 && errno != EINTR) return std::nullopt;
      if (SteadyClock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(1ms);
    }
  }

  // Ids in the order their lines arrived (duplicates included: a unique-key hit repeats an id).
  const std::vector<TaskId>& ids() const { return ids_; }
  const std::vector<std::string>& bad_lines() const { return bad_lines_; }
  // Bytes after the last newline at end of file (a torn line; never expected).
  size_t torn_bytes() const { return eof_ ? partial_.size() : 0; }
  bool eof() const { return eof_; }

 private:
  Child(pid_t pid, int fd) : pid_(pid), fd_(fd) {}

  void ReadOnce() {
    char buf[64 * 1024];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n == 0) {
      eof_ = true;
      return;
    }
    if (n < 0) {
      if (errno != EINTR && errno != EAGAIN) {
        ADD_FAILURE() << "read: " << std::strerror(errno);
        eof_ = true;
      }
      return;
    }
    partial_.append(buf, static_cast<size_t>(n));
    // Complete lines only; the rest waits for more bytes.
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(partial_.data() + start, nl - start);
      if (std::optional<TaskId> id = TaskId::Parse(line)) {
        ids_.push_back(*id);
      } else {
        bad_lines_.emplace_back(line);
      }
    }
    partial_.erase(0, start);
  }

  pid_t pid_;
  int fd_;
  bool reaped_ = false;
  bool eof_ = false;
  std::string partial_;
  std::vector<TaskId> ids_;
  std::vector<std::string> bad_lines_;
};

std::string WaitStatusText(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "wait status " + std::to_string(status);
}

// Kills the child, reaps it and drains its pipe; records a failure unless it died of our SIGKILL
// and every line it wrote was a whole id.
void KillAndDrain(Child& child) {
  child.Kill();
  std::optional<int> status = child.Reap(kReapTimeout);
  ASSERT_TRUE(status.has_value()) << "the killed child was not reaped within the deadline";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
      << "the child ended before the kill: " << WaitStatusText(*status);
  EXPECT_TRUE(child.Drain(kDrainTimeout)) << "no end of file on the child's stdout";
  EXPECT_TRUE(child.bad_lines().empty())
      << child.bad_lines().size() << " bad lines, first: '" << child.bad_lines().front() << "'";
  EXPECT_EQ(child.torn_bytes(), 0u) << "a torn line at the end of the child's output";
}

// Every terminal record of `state`, by paging List. Records a failure on a store error.
uint64_t CountByListing(const storage::TaskStore& store, TaskState state) {
  uint64_t n = 0;
  ListQuery q;
  q.state = state;
  q.limit = 1000;
  for (int page = 0; page < 100'000; ++page) {
    Result<ListPage> r = store.List(q);
    if (!r.ok()) {
      ADD_FAILURE() << "List: " << r.status().ToString();
      return n;
    }
    n += r->records.size();
    if (!r->next_cursor || r->records.empty()) return n;
    q.before = r->next_cursor;
  }
  ADD_FAILURE() << "List did not end";
  return n;
}

int64_t FailAttempts(const TaskRecord& r) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.spec->data_json, ec);
  if (ec || !v.is_object()) return 0;
  const boost::json::value* f = v.as_object().if_contains("fail_attempts");
  return f != nullptr && f->is_int64() ? f->as_int64() : 0;
}

// What the test saw of a task in the store after some kill.
struct Seen {
  TaskState state = TaskState::kPending;
  int32_t retry_count = 0;
};

TEST(CrashTest, AcknowledgedEnqueuesSurviveRepeatedKills) {
  const uint64_t seed = TestSeed();
  std::printf("[ crash    ] seed %" PRIu64 " (rerun with BMOS_CRASH_SEED=%" PRIu64 ")\n", seed,
              seed);
  std::fflush(stdout);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);

  storage::test_util::TempDir dir("crash");
  ASSERT_FALSE(dir.path().empty());
  const std::string data_dir = dir.Sub("db");
  const auto test_start = SteadyClock::now();

  std::vector<TaskId> acked;  // distinct, in the order first acknowledged
  std::unordered_map<TaskId, Seen, TaskIdHash> seen;
  uint64_t lines = 0, running_at_kills = 0;
  int zero_tailed_kills = 0;  // kills that left a log ending in zeros (storage/wal_file_system.h)
  for (int kill = 0; kill < kKills; ++kill) {
    SCOPED_TRACE("kill " + std::to_string(kill + 1) + " of " + std::to_string(kKills));
    // Mostly early kills; every fourth run lives past the engine's 1 s wait for handlers of
    // recovered tasks, so recovered tasks also run (and are interrupted) in a child.
    const int delay_ms =
        kill % 4 == 3 ? 1100 + static_cast<int>(rng() % 500) : 30 + static_cast<int>(rng() % 371);
    Result<std::unique_ptr<Child>> started = Child::Start(
        {"--data-dir", data_dir, "--mode", "work", "--threads", std::to_string(kThreads), "--seed",
         std::to_string(seed + static_cast<uint64_t>(kill)), "--min-retries",
         std::to_string(kMinRetries), "--max-seconds", std::to_string(kChildLongestRun.count())});
    BMOS_ASSERT_OK(started);
    Child& child = **started;
    child.ReadUntil(SteadyClock::now() + kFirstIdTimeout, 1);
    ASSERT_FALSE(child.ids().empty()) << "no id from the child within " << kFirstIdTimeout.count()
                                      << " s (eof=" << child.eof() << ")";
    child.ReadUntil(SteadyClock::now() + std::chrono::milliseconds(delay_ms));
    ASSERT_FALSE(child.eof()) << "the child closed its stdout before the kill";
    ASSERT_NO_FATAL_FAILURE(KillAndDrain(child));
    // The log as the kill left it: its last commits followed by the zeros written ahead of them.
    zero_tailed_kills += storage::test_util::ZeroTailedAndPlainLogs(data_dir).first > 0;

    lines += child.ids().size();
    for (const TaskId& id : child.ids()) {
      if (seen.emplace(id, Seen{}).second) acked.push_back(id);
    }

    // The crash state exactly as the next child will recover it: read-only, nothing replayed
    // into new files.
    Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStore(data_dir, /*read_only=*/true);
    BMOS_ASSERT_OK(store);
    std::vector<std::string> missing, regressed;
    for (const TaskId& id : acked) {
      Result<TaskRecord> r = (*store)->Get(id);
      if (!r.ok()) {
        missing.push_back(id.ToString() + " (" + r.status().ToString() + ")");
        continue;
      }
      Seen& s = seen[id];
      // A terminal state never changes, and the attempt count never goes down.
      if ((storage::IsTerminal(s.state) && r->state != s.state) || r->retry_count < s.retry_count) {
        regressed.push_back(Describe(*r) + " after " + std::string(storage::ToString(s.state)) +
                            " retry_count=" + std::to_string(s.retry_count));
      }
      s = Seen{r->state, r->retry_count};
      if (r->state == TaskState::kRunning) ++running_at_kills;
    }
    EXPECT_TRUE(missing.empty()) << missing.size() << " of " << acked.size()
                                 << " acknowledged ids are not in the store, first: "
                                 << missing.front();
    EXPECT_TRUE(regressed.empty())
        << regressed.size() << " records went back, first: " << regressed.front();
    if (!missing.empty() || !regressed.empty()) return;
  }
  const auto kills_done = SteadyClock::now();

  // Final run: an engine in this process recovers what the last child left and finishes it.
  uint64_t max_retry_count = 0, retried = 0;
  {
    Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStore(data_dir, /*read_only=*/false);
    BMOS_ASSERT_OK(store);
    Result<std::unique_ptr<Engine>> opened =
        Engine::Open(CrashEngineOptions(std::move(store).value(), seed));
    BMOS_ASSERT_OK(opened);
    Engine& engine = **opened;
    BMOS_ASSERT_OK(RegisterCrashHandlers(engine));
    EngineStats stats;
    const bool finished = engine::test_util::Eventually(
        [&] {
          stats = engine.Stats();
          return stats.live_tasks == 0;
        },
        std::chrono::duration_cast<std::chrono::milliseconds>(kFinishTimeout));
    EXPECT_TRUE(finished) << stats.live_tasks << " tasks still live after "
                          << kFinishTimeout.count() << " s";
    std::vector<std::string> wrong;
    for (const TaskId& id : acked) {
      Result<TaskRecord> r = engine.Get(id);
      if (!r.ok()) {
        wrong.push_back(id.ToString() + ": " + r.status().ToString());
        continue;
      }
      const TaskRecord& rec = *r;
      max_retry_count = std::max<uint64_t>(max_retry_count, static_cast<uint64_t>(rec.retry_count));
      if (rec.retry_count > 0) ++retried;
      if (rec.state != TaskState::kCompleted || rec.retry_count > rec.spec->max_retries ||
          rec.retry_count > kKills + FailAttempts(rec) || rec.retry_count < FailAttempts(rec) ||
          // The handler returns its attempt number: the attempt that completed is the last.
          rec.result_json != std::to_string(rec.retry_count + 1)) {
        wrong.push_back(Describe(rec) + " result=" + rec.result_json);
      }
    }
    EXPECT_TRUE(wrong.empty()) << wrong.size() << " of " << acked.size()
                               << " acknowledged tasks did not end as expected, first: "
                               << wrong.front();
    BMOS_EXPECT_OK(engine.Stop(5s));
  }

  // The persisted counts agree with the records, after one more restart.
  Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStore(data_dir, /*read_only=*/true);
  BMOS_ASSERT_OK(store);
  Result<storage::StoreCounts> terminal = (*store)->TerminalCounts();
  BMOS_ASSERT_OK(terminal);
  Result<storage::StoreCounts> counts = (*store)->Counts();
  BMOS_ASSERT_OK(counts);
  const uint64_t completed = CountByListing(**store, TaskState::kCompleted);
  EXPECT_EQ(terminal->total(TaskState::kCompleted), completed);
  EXPECT_EQ(terminal->total(TaskState::kFailed), CountByListing(**store, TaskState::kFailed));
  EXPECT_EQ(terminal->total(TaskState::kCancelled), CountByListing(**store, TaskState::kCancelled));
  EXPECT_EQ(terminal->total(TaskState::kFailed), 0u);
  EXPECT_EQ(terminal->total(TaskState::kCancelled), 0u);
  for (TaskState live : {TaskState::kPending, TaskState::kRunning, TaskState::kRetrying}) {
    EXPECT_EQ(counts->total(live), 0u) << storage::ToString(live);
  }
  bool live_left = false;
  BMOS_EXPECT_OK((*store)->ForEachLive([&](const TaskRecord&) { live_left = true; }));
  EXPECT_FALSE(live_left) << "live records remain in the store";
  // Besides the acknowledged tasks, the store may hold only enqueues that were durable but not
  // yet acknowledged when a kill came: at most one per enqueuing thread per kill.
  EXPECT_GE(completed, acked.size());
  EXPECT_LE(completed, acked.size() + static_cast<uint64_t>(kKills * kThreads));
  // Recovery read logs that end in zeros: a kill right after RocksDB started a new log (before
  // its first commit) leaves none, so not every kill must.
  EXPECT_GE(zero_tailed_kills, kKills / 2);

  const auto end = SteadyClock::now();
  std::printf("[ crash    ] %d kills (%d left a zero-tailed log): %" PRIu64
              " ids acknowledged (%zu distinct tasks), %" PRIu64
              " records RUNNING at the kills, %" PRIu64 " COMPLETED records in the store, %" PRIu64
              " tasks retried, most retries %" PRIu64 "; kills %.1f s, final run %.1f s\n",
              kKills, zero_tailed_kills, lines, acked.size(), running_at_kills, completed, retried,
              max_retry_count, std::chrono::duration<double>(kills_done - test_start).count(),
              std::chrono::duration<double>(end - kills_done).count());
  ::testing::Test::RecordProperty("acknowledged", std::to_string(acked.size()));
}

// A task RUNNING when the process is killed runs again after the restart, and the interrupted
// attempt counts: it completes with retry_count 1, on its second attempt.
TEST(CrashTest, RunningTaskInterruptedByKillRunsAgainAsAnAttempt) {
  storage::test_util::TempDir dir("crash-block");
  ASSERT_FALSE(dir.path().empty());
  const std::string data_dir = dir.Sub("db");
  TaskId id;
  {
    Result<std::unique_ptr<Child>> started =
        Child::Start({"--data-dir", data_dir, "--mode", "block", "--max-seconds",
                      std::to_string(kChildLongestRun.count())});
    BMOS_ASSERT_OK(started);
    Child& child = **started;
    child.ReadUntil(SteadyClock::now() + kFirstIdTimeout, 1);
    ASSERT_EQ(child.ids().size(), 1u) << "no id from the child (eof=" << child.eof() << ")";
    id = child.ids().front();

    // Poll the store (read-only, beside the child that writes it) until the task is RUNNING.
    std::string last = "never read";
    const auto deadline = SteadyClock::now() + kRunningTimeout;
    bool running = false;
    while (!running && SteadyClock::now() < deadline) {
      Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStore(data_dir, /*read_only=*/true);
      if (!store.ok()) {
        last = store.status().ToString();
      } else if (Result<TaskRecord> r = (*store)->Get(id); !r.ok()) {
        last = r.status().ToString();
      } else {
        last = Describe(*r);
        running = r->state == TaskState::kRunning;
      }
      if (!running) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(running) << "the task never showed RUNNING in the store; last: " << last;
    ASSERT_NO_FATAL_FAILURE(KillAndDrain(child));
    EXPECT_EQ(child.ids().size(), 1u);
  }

  {
    Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStore(data_dir, /*read_only=*/true);
    BMOS_ASSERT_OK(store);
    Result<TaskRecord> r = (*store)->Get(id);
    BMOS_ASSERT_OK(r);
    EXPECT_EQ(r->state, TaskState::kRunning) << Describe(*r);
    EXPECT_EQ(r->retry_count, 0) << Describe(*r);
    EXPECT_GT(r->started_ms, 0) << Describe(*r);
  }

  Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStore(data_dir, /*read_only=*/false);
  BMOS_ASSERT_OK(store);
  Result<std::unique_ptr<Engine>> opened =
      Engine::Open(CrashEngineOptions(std::move(store).value(), 1));
  BMOS_ASSERT_OK(opened);
  Engine& engine = **opened;
  BMOS_ASSERT_OK(RegisterCrashHandlers(engine));
  Result<TaskRecord> done = engine.Wait(id, std::chrono::milliseconds(kFinishTimeout));
  BMOS_ASSERT_OK(done);
  EXPECT_EQ(done->state, TaskState::kCompleted) << Describe(*done);
  EXPECT_EQ(done->retry_count, 1) << Describe(*done);
  EXPECT_EQ(done->result_json, "2") << Describe(*done);  // the second attempt completed it
  BMOS_EXPECT_OK(engine.Stop(5s));
}

}  // namespace
}  // namespace bmos::crash
