// bmos-task, run as a user runs it: a store is written in a temporary directory, the tool is
// started as a child process, and its stdout, stderr and exit status are checked.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "api/jwt.h"
#include "storage/rocksdb_task_store.h"
#include "storage/task_record.h"
#include "tests/api/fake_http_server.h"
#include "tests/storage/store_test_util.h"

extern char** environ;

namespace bmos::storage {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using S = TaskState;
using test_util::IdFor;
using test_util::MakeRecord;
using test_util::TempDir;
using test_util::With;

// -- Running the tool --------------------------------------------------------------------------

struct RunResult {
  int exit_code = -1;  // the exit status; -1 when the tool did not exit normally
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs bmos-task with `args`; stdout and stderr go to files (no pipe can fill up and block).
// The tool sees this process's environment without its BMOS_* variables (a developer's
// BMOS_URL or BMOS_TOKEN must not leak into a test), plus `env` ("NAME=value" each).
RunResult RunTool(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  TempDir scratch("bmos-task-out");
  const std::string out_path = scratch.Sub("stdout");
  const std::string err_path = scratch.Sub("stderr");

  std::vector<char*> argv;
  std::string bin = BMOS_TASK_BIN;
  argv.push_back(bin.data());
  std::vector<std::string> copies(args);
  for (std::string& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = 0;
  RunResult result;
  std::vector<std::string> env_copies;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("BMOS_")) env_copies.emplace_back(*e);
  }
  env_copies.insert(env_copies.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : env_copies) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << bin << ": " << std::strerror(rc);
    return result;
  }
  int wstatus = 0;
  if (waitpid(pid, &wstatus, 0) != pid) {
    ADD_FAILURE() << "waitpid failed";
    return result;
  }
  if (WIFEXITED(wstatus)) result.exit_code = WEXITSTATUS(wstatus);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The task ids of a dump, in output order, as indexes of IdFor; each line must be a JSON object
// with a task_id that is one of IdFor(0..max_index).
std::vector<uint64_t> DumpIndexes(const std::string& out, uint64_t max_index = 100) {
  std::map<std::string, uint64_t> by_id;
  for (uint64_t i = 0; i <= max_index; ++i) by_id[IdFor(i).ToString()] = i;
  std::vector<uint64_t> indexes;
  for (const std::string& line : Lines(out)) {
    std::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object() || !v.as_object().contains("task_id") ||
        !v.at("task_id").is_string()) {
      ADD_FAILURE() << "not a task JSON object: " << line;
      continue;
    }
    auto it = by_id.find(std::string(v.at("task_id").as_string()));
    if (it == by_id.end()) {
      ADD_FAILURE() << "unknown task id in: " << line;
      continue;
    }
    indexes.push_back(it->second);
  }
  return indexes;
}

// -- The store under test ----------------------------------------------------------------------

struct Task {
  uint64_t index;
  const char* queue;
  const char* name;
  S state;
};

// Two queues, every state, three task names; ids (and creation times) grow with the index.
const std::vector<Task> kTasks = {
    {1, "default", "clean_data", S::kCompleted},    {2, "ml", "train_model", S::kFailed},
    {3, "default", "clean_data", S::kPending},      {4, "ml", "train_model", S::kRunning},
    {5, "default", "check_quality", S::kCancelled}, {6, "default", "clean_data", S::kCompleted},
    {7, "ml", "train_model", S::kRetrying},         {8, "ml", "train_model", S::kCompleted},
    {9, "default", "clean_data", S::kPending},      {10, "default", "check_quality", S::kFailed},
};

std::shared_ptr<RocksDbTaskStore> OpenWriter(const std::string& path) {
  RocksDbStoreOptions options;
  options.path = path;
  Result<std::shared_ptr<RocksDbTaskStore>> store = RocksDbTaskStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? *store : nullptr;
}

// Writes kTasks as the engine would: each task is written PENDING first, then (in a later write)
// moved through RUNNING to its final state, so terminal tasks leave the live column family.
void WriteTasks(TaskStore& store) {
  std::vector<TaskRecord> created;
  for (const Task& t : kTasks) created.push_back(MakeRecord(t.index, t.queue, t.name));
  ASSERT_TRUE(store.Write(created).ok());
  for (const Task& t : kTasks) {
    if (t.state == S::kPending) continue;
    TaskRecord running = With(MakeRecord(t.index, t.queue, t.name), S::kRunning);
    ASSERT_TRUE(store.Write({&running, 1}).ok());
    if (t.state == S::kRunning) continue;
    TaskRecord last = With(running, t.state, test_util::kBaseMs + 1000);
    if (t.state == S::kFailed) last.error = "boom";
    if (t.state == S::kCompleted) last.result_json = R"({"rows":3})";
    ASSERT_TRUE(store.Write({&last, 1}).ok());
  }
}

class BmosTaskStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    std::shared_ptr<RocksDbTaskStore> store = OpenWriter(dir_.path());
    ASSERT_NE(store, nullptr);
    WriteTasks(*store);
  }  // the writer closes here

  RunResult Dump(std::vector<std::string> flags) {
    std::vector<std::string> args = {"store", "dump", "--data-dir", dir_.path()};
    args.insert(args.end(), flags.begin(), flags.end());
    return RunTool(args);
  }

  TempDir dir_{"bmos-task-store"};
};

// -- store dump --------------------------------------------------------------------------------

TEST_F(BmosTaskStoreTest, DumpPrintsEveryRecordAsJsonNewestFirst) {
  RunResult r = Dump({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), kTasks.size()) << r.out;
  // Newest first: kTasks in reverse; every field of interest matches what was written.
  for (size_t i = 0; i < lines.size(); ++i) {
    const Task& want = kTasks[kTasks.size() - 1 - i];
    json::value v = json::parse(lines[i]);
    SCOPED_TRACE(lines[i]);
    EXPECT_EQ(v.at("task_id").as_string(), IdFor(want.index).ToString());
    EXPECT_EQ(v.at("status").as_string(), ToString(want.state));
    EXPECT_EQ(v.at("queue_name").as_string(), want.queue);
    EXPECT_EQ(v.at("task_name").as_string(), want.name);
    if (want.state == S::kFailed) {
      EXPECT_EQ(v.at("error").as_string(), "boom");
    }
    if (want.state == S::kCompleted) {
      EXPECT_EQ(v.at("result").at("rows").as_int64(), 3);
    }
  }
}

TEST_F(BmosTaskStoreTest, DumpFiltersByStateInAnyCase) {
  RunResult r = Dump({"--state", "completed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{8, 6, 1}));

  r = Dump({"--state=Pending"});  // a live state
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{9, 3}));

  r = Dump({"--state", "RETRYING"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{7}));
}

TEST_F(BmosTaskStoreTest, DumpFiltersByQueueAndName) {
  RunResult r = Dump({"--queue", "ml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{8, 7, 4, 2}));

  r = Dump({"--name", "check_quality"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{10, 5}));

  r = Dump({"--queue", "default", "--state", "failed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{10}));

  r = Dump({"--queue", "default", "--name", "clean_data", "--state", "PENDING"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{9, 3}));

  // Nothing matches: no output, still success.
  r = Dump({"--queue", "ml", "--name", "clean_data"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = Dump({"--queue", "no-such-queue"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(BmosTaskStoreTest, DumpLimitKeepsTheNewest) {
  RunResult r = Dump({"--limit", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{10, 9, 8}));

  r = Dump({"--limit=2", "--queue", "ml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{8, 7}));

  r = Dump({"--limit", "1000000"});  // more than there is
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out).size(), kTasks.size());
}

// Names, sizes and modification times of the files in `dir`.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> Snapshot(const std::string& dir) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    files[e.path().filename().string()] = {e.file_size(), e.last_write_time()};
  }
  return files;
}

TEST_F(BmosTaskStoreTest, ReadsWithoutChangingTheStore) {
  const auto before = Snapshot(dir_.path());
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(Dump({}).exit_code, 0);
  EXPECT_EQ(RunTool({"store", "stats", "--data-dir", dir_.path()}).exit_code, 0);
  EXPECT_EQ(Snapshot(dir_.path()), before);
}

// More records than one page (1000): the tool must follow the cursor, across live and terminal
// records, without repeating or skipping any.
TEST(BmosTaskStore, DumpPagesThroughLargeStores) {
  TempDir dir("bmos-task-large");
  constexpr uint64_t kCount = 2500;
  {
    std::shared_ptr<RocksDbTaskStore> store = OpenWriter(dir.path());
    ASSERT_NE(store, nullptr);
    std::vector<TaskRecord> records;
    for (uint64_t i = 0; i < kCount; ++i) {
      TaskRecord r = MakeRecord(i, i % 2 == 0 ? "default" : "ml");
      records.push_back(i % 7 == 0 ? r : With(r, S::kCompleted));  // 1 in 7 live
    }
    ASSERT_TRUE(store->Write(records).ok());
  }
  RunResult r = RunTool({"store", "dump", "--data-dir", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<uint64_t> got = DumpIndexes(r.out, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (uint64_t i = 0; i < kCount; ++i) ASSERT_EQ(got[i], kCount - 1 - i) << "line " << i;

  r = RunTool({"store", "dump", "--data-dir", dir.path(), "--limit", "1500"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  got = DumpIndexes(r.out, kCount);
  ASSERT_EQ(got.size(), 1500u);
  EXPECT_EQ(got.front(), kCount - 1);
  EXPECT_EQ(got.back(), kCount - 1500);

  r = RunTool({"store", "dump", "--data-dir", dir.path(), "--queue", "ml", "--state", "completed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  got = DumpIndexes(r.out, kCount);
  std::vector<uint64_t> want;
  for (uint64_t i = kCount; i-- > 0;) {
    if (i % 2 == 1 && i % 7 != 0) want.push_back(i);
  }
  ASSERT_GT(want.size(), 1000u);
  EXPECT_EQ(got, want);
}

// A server holding the store (an open writer) does not keep the tool out: the tool opens the
// store read-only, takes no lock and sees what was acknowledged before it started.
TEST(BmosTaskStore, WorksWhileAWriterHoldsTheStore) {
  TempDir dir("bmos-task-shared");
  std::shared_ptr<RocksDbTaskStore> writer = OpenWriter(dir.path());
  ASSERT_NE(writer, nullptr);
  WriteTasks(*writer);

  RunResult r = RunTool({"store", "dump", "--data-dir", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}));

  r = RunTool({"store", "stats", "--data-dir", dir.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).at("totals").at("total").to_number<uint64_t>(), kTasks.size());

  // The writer still works after the tool has been and gone, and the tool sees its new write.
  TaskRecord more = MakeRecord(11, "ml", "train_model");
  ASSERT_TRUE(writer->Write({&more, 1}).ok());
  r = RunTool({"store", "dump", "--data-dir", dir.path(), "--limit", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DumpIndexes(r.out), (std::vector<uint64_t>{11}));
}

// A writer that keeps writing (small memtables, so it flushes and compacts, deleting WAL and SST
// files while the tool opens the store): every run of the tool succeeds and sees a store that
// only grows.
TEST(BmosTaskStore, WorksWhileAWriterKeepsWriting) {
  TempDir dir("bmos-task-busy");
  RocksDbStoreOptions options;
  options.path = dir.path();
  options.durability = Durability::kAsync;
  options.write_buffer_bytes = 4u << 20;  // the smallest allowed: frequent flushes
  Result<std::shared_ptr<RocksDbTaskStore>> opened = RocksDbTaskStore::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::shared_ptr<RocksDbTaskStore> writer = *opened;

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> written{0};
  std::atomic<bool> write_failed{false};
  std::thread writing([&] {
    std::vector<TaskRecord> batch;
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); i += 100) {
      batch.clear();
      for (uint64_t j = i; j < i + 100; ++j) {
        batch.push_back(With(MakeRecord(j, j % 2 == 0 ? "default" : "ml"), S::kCompleted));
      }
      if (!writer->Write(batch).ok()) {
        write_failed.store(true, std::memory_order_relaxed);
        return;
      }
      written.store(i + 100, std::memory_order_relaxed);  // pairs with nothing: a figure only
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // leave the tool some CPU
    }
  });
  // Stops the writer however the test ends (a failed ASSERT returns early).
  struct Joiner {
    std::atomic<bool>* stop;
    std::thread* thread;
    ~Joiner() {
      stop->store(true, std::memory_order_relaxed);
      thread->join();
    }
  } joiner{&stop, &writing};
  while (written.load(std::memory_order_relaxed) < 1000 &&
         !write_failed.load(std::memory_order_relaxed)) {
    std::this_thread::yield();
  }

  uint64_t last_total = 0;
  for (int run = 0; run < 8; ++run) {
    SCOPED_TRACE(run);
    RunResult r = RunTool({"store", "stats", "--data-dir", dir.path(), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const uint64_t total = json::parse(r.out).at("totals").at("total").to_number<uint64_t>();
    EXPECT_GE(total, last_total);
    // At most the one batch in flight is committed but not yet counted in `written`.
    EXPECT_LE(total, written.load(std::memory_order_relaxed) + 100);
    last_total = total;
    r = RunTool({"store", "dump", "--data-dir", dir.path(), "--limit", "5"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Lines(r.out).size(), 5u);
  }
  EXPECT_GT(last_total, 0u);
  EXPECT_FALSE(write_failed.load(std::memory_order_relaxed));
}

// -- store stats -------------------------------------------------------------------------------

// Expected counts of kTasks, by queue, in TaskState order.
const std::map<std::string, std::vector<uint64_t>> kWantCounts = {
    {"default", {2, 0, 0, 2, 1, 1}},
    {"ml", {0, 1, 1, 1, 1, 0}},
};
const std::vector<uint64_t> kWantTotals = {2, 1, 1, 3, 2, 1};

TEST_F(BmosTaskStoreTest, StatsPrintsATable) {
  RunResult r = RunTool({"store", "stats", "--data-dir", dir_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // Rows by their first word; the header row names the columns.
  std::map<std::string, std::vector<std::string>> rows;
  std::vector<std::string> header;
  std::string disk_line;
  for (const std::string& line : Lines(r.out)) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (words.empty()) continue;
    if (words[0] == "queue") header = words;
    if (words[0] == "disk:") disk_line = line;
    rows[words[0]] = words;
  }
  ASSERT_EQ(header, (std::vector<std::string>{"queue", "PENDING", "RUNNING", "RETRYING",
                                              "COMPLETED", "FAILED", "CANCELLED", "total"}))
      << r.out;
  for (const auto& [queue, want] : kWantCounts) {
    SCOPED_TRACE(queue);
    ASSERT_TRUE(rows.contains(queue)) << r.out;
    std::vector<std::string> expect = {queue};
    uint64_t total = 0;
    for (uint64_t n : want) {
      expect.push_back(std::to_string(n));
      total += n;
    }
    expect.push_back(std::to_string(total));
    EXPECT_EQ(rows[queue], expect);
  }
  // The totals row: "(all queues)" is two words.
  ASSERT_TRUE(rows.contains("(all")) << r.out;
  std::vector<std::string> expect = {"(all", "queues)"};
  for (uint64_t n : kWantTotals) expect.push_back(std::to_string(n));
  expect.push_back(std::to_string(kTasks.size()));
  EXPECT_EQ(rows["(all"], expect);
  EXPECT_NE(disk_line.find("bytes"), std::string::npos) << r.out;
  EXPECT_EQ(disk_line.find(" 0 bytes"), std::string::npos) << r.out;
}

TEST_F(BmosTaskStoreTest, StatsJsonHasCountsTotalsAndDiskBytes) {
  RunResult r = RunTool({"store", "stats", "--data-dir", dir_.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
  json::value v = json::parse(r.out);
  EXPECT_EQ(v.at("data_dir").as_string(), dir_.path());
  const json::object& queues = v.at("queues").as_object();
  EXPECT_EQ(queues.size(), kWantCounts.size());
  for (const auto& [queue, want] : kWantCounts) {
    SCOPED_TRACE(queue);
    uint64_t total = 0;
    for (int i = 0; i < kTaskStateCount; ++i) {
      EXPECT_EQ(queues.at(queue).at(ToString(static_cast<S>(i))).to_number<uint64_t>(), want[i])
          << ToString(static_cast<S>(i));
      total += want[i];
    }
    EXPECT_EQ(queues.at(queue).at("total").to_number<uint64_t>(), total);
  }
  for (int i = 0; i < kTaskStateCount; ++i) {
    EXPECT_EQ(v.at("totals").at(ToString(static_cast<S>(i))).to_number<uint64_t>(), kWantTotals[i]);
  }
  EXPECT_EQ(v.at("totals").at("total").to_number<uint64_t>(), kTasks.size());

  // The store's own figure, read the same way.
  RocksDbStoreOptions options;
  options.path = dir_.path();
  options.read_only = true;
  Result<std::shared_ptr<RocksDbTaskStore>> store = RocksDbTaskStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_GT(v.at("disk_bytes").to_number<uint64_t>(), 0u);
  EXPECT_EQ(v.at("disk_bytes").to_number<uint64_t>(), (*store)->ApproximateDiskBytes());
}

TEST(BmosTaskStore, StatsOfAnEmptyStore) {
  TempDir dir("bmos-task-empty");
  ASSERT_NE(OpenWriter(dir.path()), nullptr);  // creates the store, then closes it
  RunResult r = RunTool({"store", "stats", "--data-dir", dir.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json::value v = json::parse(r.out);
  EXPECT_TRUE(v.at("queues").as_object().empty());
  EXPECT_EQ(v.at("totals").at("total").to_number<uint64_t>(), 0u);

  r = RunTool({"store", "dump", "--data-dir", dir.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

// -- Help and usage errors ---------------------------------------------------------------------

void ExpectUsageOfEveryCommand(const std::string& text) {
  for (const char* want : {"store dump", "store stats", "--data-dir", "--state", "--queue",
                           "--name", "--limit", "--json"}) {
    EXPECT_NE(text.find(want), std::string::npos) << "no '" << want << "' in:\n" << text;
  }
}

TEST(BmosTask, HelpListsEveryCommandAndFlag) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"},
                                             {"-h"},
                                             {"store", "--help"},
                                             {"store", "dump", "--help"},
                                             {"store", "stats", "--help"}}) {
    SCOPED_TRACE(args.back());
    RunResult r = RunTool(args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.err, "");
    ExpectUsageOfEveryCommand(r.out);
  }
}

TEST(BmosTask, NoArgumentsIsAUsageError) {
  RunResult r = RunTool({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  ExpectUsageOfEveryCommand(r.err);

  r = RunTool({"store"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing command"), std::string::npos) << r.err;
}

// A bad command line and what stderr must say about it.
struct UsageCase {
  std::vector<std::string> args;
  std::vector<std::string> says;  // each must appear in stderr
};

// Each case exits 2, prints nothing on stdout and names the problem on stderr.
void ExpectUsageErrors(const std::vector<UsageCase>& cases) {
  for (const UsageCase& c : cases) {
    std::string line;
    for (const std::string& a : c.args) line += a + " ";
    SCOPED_TRACE(line);
    RunResult r = RunTool(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.out, "");
    for (const std::string& want : c.says) {
      EXPECT_NE(r.err.find(want), std::string::npos) << "no '" << want << "' in: " << r.err;
    }
  }
}

// Each bad command line exits 2, prints nothing on stdout and names the problem on stderr.
TEST(BmosTask, BadUsageExitsTwoAndNamesTheProblem) {
  TempDir dir("bmos-task-usage");
  ASSERT_NE(OpenWriter(dir.path()), nullptr);
  const std::string d = dir.path();
  const std::vector<UsageCase> cases = {
      {{"frobnicate"}, {"unknown command", "'frobnicate'"}},
      {{"store", "compact", "--data-dir", d}, {"unknown command", "'compact'"}},
      {{"store", "dump", "--data-dir", d, "--bogus"}, {"unknown flag", "'--bogus'"}},
      {{"store", "dump", "--data-dir", d, "--json"}, {"unknown flag", "'--json'"}},
      {{"store", "stats", "--data-dir", d, "--limit", "3"}, {"unknown flag", "'--limit'"}},
      {{"store", "dump", "--data-dir", d, "stray"}, {"unexpected argument", "'stray'"}},
      {{"store", "dump"}, {"--data-dir", "required"}},
      {{"store", "stats", "--json"}, {"--data-dir", "required"}},
      {{"store", "dump", "--data-dir"}, {"--data-dir", "needs a value"}},
      {{"store", "dump", "--data-dir="}, {"--data-dir", "non-empty"}},
      {{"store", "dump", "--data-dir", d, "--state", "done"}, {"--state", "'done'", "PENDING"}},
      {{"store", "dump", "--data-dir", d, "--state", ""}, {"--state", "non-empty"}},
      {{"store", "dump", "--data-dir", d, "--limit", "0"}, {"--limit", "'0'"}},
      {{"store", "dump", "--data-dir", d, "--limit", "-1"}, {"--limit", "'-1'"}},
      {{"store", "dump", "--data-dir", d, "--limit", "ten"}, {"--limit", "'ten'"}},
      {{"store", "dump", "--data-dir", d, "--limit", "12x"}, {"--limit", "'12x'"}},
      {{"store", "dump", "--data-dir", d, "--limit"}, {"--limit", "needs a value"}},
      {{"store", "dump", "--data-dir", d, "--limit", "1", "--limit", "2"},
       {"--limit", "more than once"}},
      {{"store", "stats", "--data-dir", d, "--json=yes"}, {"--json", "takes no value"}},
  };
  ExpectUsageErrors(cases);
}

// -- Stores that cannot be opened --------------------------------------------------------------

void ExpectStoreError(const std::string& data_dir, const std::string& says) {
  for (const char* command : {"dump", "stats"}) {
    SCOPED_TRACE(command);
    RunResult r = RunTool({"store", command, "--data-dir", data_dir});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(data_dir), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
}

// -- schedule preview: computed locally, no server.

TEST(BmosTaskSchedule, PreviewPrintsFireTimesWithOffsetsAcrossDaylightSaving) {
  RunResult r =
      RunTool({"schedule", "preview", "--type", "cron", "--trigger", R"({"hour": 2, "minute": 30})",
               "--from", "2026-03-28T02:30:00+01:00", "--count", "3", "--tz", "Europe/Berlin"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The first line is --from itself (a fire time equal to --from counts); 02:30 does not exist on
  // 2026-03-29 in Berlin, so that run fires at the first instant after the gap.
  EXPECT_EQ(r.out,
            "2026-03-28T02:30:00+01:00\n2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n");
}

TEST(BmosTaskSchedule, PreviewOfCrontabIntervalAndDate) {
  RunResult cron = RunTool({"schedule", "preview", "--type", "cron", "--trigger",
                            R"({"crontab": "0 9 * * 0"})", "--from", "2026-11-29", "--count", "2"});
  EXPECT_EQ(cron.exit_code, 0) << cron.err;
  EXPECT_EQ(cron.out, "2026-11-29T09:00:00+00:00\n2026-12-06T09:00:00+00:00\n");  // 0 = Sunday
  RunResult interval =
      RunTool({"schedule", "preview", "--type", "interval", "--trigger", R"({"minutes": 90})",
               "--from", "2026-01-01T00:00:00Z", "--count", "2"});
  EXPECT_EQ(interval.exit_code, 0) << interval.err;
  EXPECT_EQ(interval.out, "2026-01-01T01:30:00+00:00\n2026-01-01T03:00:00+00:00\n");
  // A date trigger fires once: fewer lines than asked for.
  RunResult date = RunTool({"schedule", "preview", "--type", "date", "--trigger",
                            R"({"run_date": "2026-12-24 18:00", "timezone": "America/New_York"})",
                            "--from", "2026-01-01", "--count", "3"});
  EXPECT_EQ(date.exit_code, 0) << date.err;
  EXPECT_EQ(date.out, "2026-12-24T18:00:00-05:00\n");
}

TEST(BmosTaskSchedule, PreviewRefusesAnInvalidTriggerNamingTheField) {
  RunResult r = RunTool({"schedule", "preview", "--type", "cron", "--trigger", R"({"hour": 24})",
                         "--from", "2026-01-01"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("hour"), std::string::npos) << r.err;
  RunResult zone = RunTool({"schedule", "preview", "--type", "cron", "--trigger", "{}", "--from",
                            "2026-01-01", "--tz", "Mars/Base"});
  EXPECT_EQ(zone.exit_code, 2);
  EXPECT_NE(zone.err.find("Mars/Base"), std::string::npos) << zone.err;
  EXPECT_EQ(RunTool({"schedule", "preview", "--type", "weekly", "--trigger", "{}", "--from",
                     "2026-01-01"})
                .exit_code,
            2);
  EXPECT_EQ(
      RunTool({"schedule", "preview", "--type", "cron", "--trigger", "[1]", "--from", "2026-01-01"})
          .exit_code,
      2);
}

TEST(BmosTaskStore, MissingDirectoryIsAnErrorAndIsNotCreated) {
  TempDir dir("bmos-task-missing");
  const std::string missing = dir.Sub("no/such/store");
  ExpectStoreError(missing, "no store");
  EXPECT_FALSE(fs::exists(dir.Sub("no")));
}

TEST(BmosTaskStore, EmptyDirectoryIsAnErrorAndStaysEmpty) {
  TempDir dir("bmos-task-emptydir");
  ExpectStoreError(dir.path(), "no store");
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(BmosTaskStore, DirectoryOfOtherFilesIsAnError) {
  TempDir dir("bmos-task-other");
  std::ofstream(dir.Sub("notes.txt")) << "not a store\n";
  ExpectStoreError(dir.path(), "no store");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(BmosTaskStore, DamagedStoreIsAnError) {
  TempDir dir("bmos-task-damaged");
  {
    std::shared_ptr<RocksDbTaskStore> store = OpenWriter(dir.path());
    ASSERT_NE(store, nullptr);
    WriteTasks(*store);
  }
  // Overwrite the middle of every MANIFEST (the store's catalogue of files) with garbage.
  int damaged = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir.path())) {
    if (!e.path().filename().string().starts_with("MANIFEST-")) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(fs::file_size(e.path()));
    f.seekp(size / 4);
    for (std::streamoff i = size / 4; i < size; ++i) f.put('\x5a');
    ++damaged;
  }
  ASSERT_GT(damaged, 0);
  ExpectStoreError(dir.path(), "Corruption");
}

// -- HTTP commands against a scripted server ---------------------------------------------------
//
// tests/api/fake_http_server.h answers as each test says and records what the tool sent, so
// these tests pin down the requests, the output and the exit statuses without a real server.

using bmos::test_util::FakeHttpServer;
using bmos::test_util::RefusingPort;
using Reply = FakeHttpServer::Reply;
using Seen = FakeHttpServer::Seen;

Reply JsonReply(std::string body, int status = 200) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

constexpr char kRecordJson[] =
    R"({"task_id":"0190aaaa-0000-7000-8000-000000000001","task_name":"bmos.echo",)"
    R"("queue_name":"default","priority":"NORMAL","status":"COMPLETED","task_data":{"a":1},)"
    R"("result":{"a":1},"error":null,"retry_count":0,"max_retries":3,"progress":100,)"
    R"("progress_message":null,"timeout_seconds":null,"eta":null,"unique_key":null,)"
    R"("created_at":"2026-11-28T10:00:00.000Z","started_at":"2026-11-28T10:00:00.001Z",)"
    R"("completed_at":"2026-11-28T10:00:00.002Z","run_at":null})";

std::string RecordWithStatus(const std::string& status) {
  json::value v = json::parse(kRecordJson);
  v.as_object()["status"] = status;
  return json::serialize(v);
}

TEST(BmosTaskHttp, EnqueueSendsEveryFieldAndPrintsIdAndStatus) {
  FakeHttpServer server([](const Seen&) {
    return JsonReply(R"({"task_id":"0190aaaa","status":"PENDING","created":true,)"
                     R"("task_name":"bmos.echo","queue_name":"q1","priority":"HIGH"})");
  });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"--url",         server.url(), "--token",      "tok",
                         "enqueue",       "bmos.echo",  "--data",       R"({"a": [1, 2]})",
                         "--queue",       "q1",         "--priority",   "high",
                         "--max-retries", "2",          "--delay",      "1.5",
                         "--timeout",     "30",         "--unique-key", "k1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0190aaaa PENDING\n");
  EXPECT_EQ(r.err, "");
  std::vector<Seen> seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/v1/tasks/enqueue");
  EXPECT_EQ(seen[0].headers["authorization"], "Bearer tok");
  EXPECT_EQ(seen[0].headers["content-type"], "application/json");
  json::value body = json::parse(seen[0].body);
  EXPECT_EQ(body, json::parse(R"({"task_name":"bmos.echo","task_data":{"a":[1,2]},)"
                              R"("queue_name":"q1","priority":"HIGH","max_retries":2,)"
                              R"("delay_seconds":1.5,"timeout_seconds":30,"unique_key":"k1"})"))
      << seen[0].body;

  // --eta, no --data (an empty object), and the global flags after the command.
  r = RunTool({"enqueue", "bmos.noop", "--eta", "2030-01-02T03:04:05Z", "--url", server.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(
      json::parse(seen[1].body),
      json::parse(R"({"task_name":"bmos.noop","task_data":{},"eta":"2030-01-02T03:04:05Z"})"));
  EXPECT_FALSE(seen[1].headers.contains("authorization"));  // no token, no secret
}

TEST(BmosTaskHttp, EnqueueSaysWhenTheUniqueKeyFoundALiveTask) {
  FakeHttpServer server([](const Seen&) {
    return JsonReply(R"({"task_id":"0190bbbb","status":"RUNNING","created":false})");
  });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"enqueue", "x", "--unique-key", "k", "--url", server.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0190bbbb RUNNING"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unique key"), std::string::npos) << r.out;
}

TEST(BmosTaskHttp, GetPrintsAKeyValueTableAndEncodesTheId) {
  FakeHttpServer server([](const Seen&) { return JsonReply(kRecordJson); });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"--url", server.url(), "get", "a/b c"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(server.requests()[0].target, "/api/v1/tasks/a%2Fb%20c");
  std::map<std::string, std::string> rows;
  for (const std::string& line : Lines(r.out)) {
    const size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const size_t value = line.find_first_not_of(' ', space);
    rows[line.substr(0, space)] = value == std::string::npos ? "" : line.substr(value);
  }
  EXPECT_EQ(rows.size(), json::parse(kRecordJson).as_object().size()) << r.out;
  EXPECT_EQ(rows["task_id"], "0190aaaa-0000-7000-8000-000000000001");
  EXPECT_EQ(rows["status"], "COMPLETED");
  EXPECT_EQ(rows["task_data"], R"({"a":1})");
  EXPECT_EQ(rows["error"], "-");
  EXPECT_EQ(rows["retry_count"], "0");
  EXPECT_EQ(rows["created_at"], "2026-11-28T10:00:00.000Z");
}

TEST(BmosTaskHttp, JsonPrintsTheServersBodyOnOneLine) {
  FakeHttpServer server([](const Seen&) { return JsonReply(std::string(kRecordJson) + "\n"); });
  ASSERT_TRUE(server.ok());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--json", "--url", server.url(), "get", "x"},
                                             {"get", "x", "--json", "--url", server.url()},
                                             {"--url=" + server.url(), "get", "--json", "x"}}) {
    RunResult r = RunTool(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, std::string(kRecordJson) + "\n");
  }
}

TEST(BmosTaskHttp, CancelSendsDeleteAndPrintsTheAnswer) {
  FakeHttpServer server([](const Seen&) {
    return JsonReply(R"({"task_id":"0190cccc","status":"CANCELLED","message":"cancelled"})");
  });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"cancel", "0190cccc", "--url", server.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0190cccc CANCELLED: cancelled\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "DELETE");
  EXPECT_EQ(server.requests()[0].target, "/api/v1/tasks/0190cccc");
}

TEST(BmosTaskHttp, ListBuildsTheQueryAndPrintsATableAndTheCursor) {
  const std::string page = std::string(R"({"tasks":[)") + kRecordJson + "," +
                           RecordWithStatus("PENDING") + R"(],"count":2,"next_cursor":"0190aaaa"})";
  FakeHttpServer server([&page](const Seen&) { return JsonReply(page); });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"list", "--url", server.url(), "--status", "pending", "--queue", "my q",
                         "--name", "a&b", "--limit", "5", "--cursor", "c1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target,
            "/api/v1/tasks/?status=PENDING&queue_name=my%20q&task_name=a%26b&limit=5&cursor=c1");
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  std::istringstream header(lines[0]);
  std::vector<std::string> words;
  for (std::string w; header >> w;) words.push_back(w);
  EXPECT_EQ(words, (std::vector<std::string>{"ID", "NAME", "QUEUE", "PRIORITY", "STATUS", "RETRIES",
                                             "CREATED"}));
  for (const char* want : {"0190aaaa-0000-7000-8000-000000000001", "bmos.echo", "default", "NORMAL",
                           "COMPLETED", "0/3", "2026-11-28T10:00:00.000Z"}) {
    EXPECT_NE(lines[1].find(want), std::string::npos) << want << " not in " << lines[1];
  }
  EXPECT_NE(lines[2].find("PENDING"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[3], "next cursor: 0190aaaa");

  // No filters: the bare path; an empty page says so and has no cursor line.
  FakeHttpServer empty(
      [](const Seen&) { return JsonReply(R"({"tasks":[],"count":0,"next_cursor":null})"); });
  ASSERT_TRUE(empty.ok());
  r = RunTool({"list", "--url", empty.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(empty.requests().at(0).target, "/api/v1/tasks/");
  EXPECT_EQ(r.out, "(no tasks)\n");
}

TEST(BmosTaskHttp, StatsPrintsTotalsQueuesAndWorkers) {
  FakeHttpServer server([](const Seen&) {
    return JsonReply(
        R"({"total_tasks":7,"by_status":{"PENDING":2,"RUNNING":1,"RETRYING":0,"COMPLETED":3,)"
        R"("FAILED":1,"CANCELLED":0},"queues":{"default":{"PENDING":2,"RUNNING":1,)"
        R"("RETRYING":0,"COMPLETED":3,"FAILED":1,"CANCELLED":0}},"enqueued":7,"completed":3,)"
        R"("failed":1,"retried":2,"cancelled":0,"completed_per_second":1.25,)"
        R"("failed_per_second":0.5,"success_rate":0.75,"live_tasks":3,)"
        R"("workers":[{"group":"main","queues":["default","ml"],"workers":4,"busy":1,)"
        R"("idle":3}],"queue_wait_ms":{"p50":0.5,"p90":1,"p99":2,"max":3},)"
        R"("run_time_ms":{"p50":1,"p90":2,"p99":3,"max":4}})");
  });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"stats", "--url", server.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.requests().at(0).target, "/api/v1/tasks/stats/overview");
  for (const char* want :
       {"tasks: 7 total, 3 live", "default", "(all queues)", "COMPLETED", "enqueued 7", "retried 2",
        "completed 1.2", "failed 0.5/s", "success rate 0.750", "main", "default,ml",
        "queue wait ms: p50 0.500", "run time ms"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << "no '" << want << "' in:\n" << r.out;
  }
}

TEST(BmosTaskHttp, ServerErrorsPrintStatusAndDetailAndExitOne) {
  struct Case {
    Reply reply;
    std::string says;
  };
  Reply plain = JsonReply("bad gateway\n", 502);
  plain.content_type = "text/plain";
  const std::vector<Case> cases = {
      {JsonReply(R"({"detail":"task_name: unknown task 'x'"})", 422),
       "bmos-task: 422: task_name: unknown task 'x'\n"},
      {JsonReply(R"({"detail":[{"loc":["body"],"msg":"bad"}]})", 422),
       R"(bmos-task: 422: [{"loc":["body"],"msg":"bad"}])"},
      {plain, "bmos-task: 502: bad gateway \n"},
      {JsonReply("", 503), "bmos-task: 503: (empty body)\n"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    FakeHttpServer server([&c](const Seen&) { return c.reply; });
    ASSERT_TRUE(server.ok());
    RunResult r = RunTool({"enqueue", "x", "--url", server.url()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

TEST(BmosTaskHttp, UnreachableServerExitsOneAndNamesTheAddress) {
  const RefusingPort refusing;  // nothing listens there
  const uint16_t port = refusing.port();
  ASSERT_NE(port, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  RunResult r = RunTool({"stats", "--url", url});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("cannot connect to 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << r.err;
  // BMOS_URL is the default when --url is absent.
  r = RunTool({"stats"}, {"BMOS_URL=" + url});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
}

TEST(BmosTaskHttp, WaitPollsUntilTerminalAndMapsTheStatusToTheExitCode) {
  struct Case {
    std::string final_status;
    int exit_code;
  };
  for (const Case& c : {Case{"COMPLETED", 0}, Case{"FAILED", 3}, Case{"CANCELLED", 3}}) {
    SCOPED_TRACE(c.final_status);
    std::atomic<int> polls{0};
    FakeHttpServer server([&](const Seen&) {
      const int n = polls.fetch_add(1, std::memory_order_relaxed);
      return JsonReply(RecordWithStatus(n < 2 ? "RUNNING" : c.final_status));
    });
    ASSERT_TRUE(server.ok());
    RunResult r = RunTool({"wait", "0190aaaa", "--interval-ms", "10", "--url", server.url()});
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_EQ(polls.load(), 3);
    EXPECT_NE(r.out.find(c.final_status), std::string::npos) << r.out;
    EXPECT_EQ(server.requests().at(0).target, "/api/v1/tasks/0190aaaa");
    EXPECT_EQ(server.connections(), 1);  // one kept-alive connection for every poll
  }
}

TEST(BmosTaskHttp, WaitGivesUpAtItsTimeoutWithExitFour) {
  FakeHttpServer server([](const Seen&) { return JsonReply(RecordWithStatus("RUNNING")); });
  ASSERT_TRUE(server.ok());
  const auto start = std::chrono::steady_clock::now();
  RunResult r = RunTool(
      {"wait", "0190aaaa", "--timeout", "0.3", "--interval-ms", "20", "--url", server.url()});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("still RUNNING"), std::string::npos) << r.err;
  EXPECT_GE(elapsed, std::chrono::milliseconds(250));
  EXPECT_LT(elapsed, std::chrono::seconds(20));
  EXPECT_GE(server.requests().size(), 3u);
}

TEST(BmosTaskHttp, WaitJsonPrintsTheFinalRecord) {
  FakeHttpServer server([](const Seen&) { return JsonReply(kRecordJson); });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"wait", "x", "--json", "--url", server.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), json::parse(kRecordJson));
}

// The token of a request: --token, else BMOS_TOKEN, else one minted from the server's secret
// when it exists, else none; the client never creates the secret or the data directory.
TEST(BmosTaskHttp, TokenComesFromFlagEnvOrTheServersSecret) {
  FakeHttpServer server([](const Seen&) { return JsonReply(kRecordJson); });
  ASSERT_TRUE(server.ok());
  TempDir dir("bmos-task-token");
  const std::string secret = "0123456789abcdef0123456789abcdef";
  auto authorization = [&](std::vector<std::string> args, std::vector<std::string> env) {
    args.insert(args.end(), {"--url", server.url()});
    RunResult r = RunTool(args, env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::string> headers = server.requests().back().headers;
    return headers.contains("authorization") ? headers["authorization"] : "(none)";
  };
  EXPECT_EQ(authorization({"get", "x", "--token", "flag"}, {"BMOS_TOKEN=env"}), "Bearer flag");
  EXPECT_EQ(authorization({"get", "x"}, {"BMOS_TOKEN=env"}), "Bearer env");

  const std::string missing = dir.Sub("no-data");
  EXPECT_EQ(authorization({"get", "x", "--data-dir", missing}, {}), "(none)");
  EXPECT_EQ(authorization({"get", "x"}, {"BMOS_DATA_DIR=" + missing}), "(none)");
  EXPECT_FALSE(fs::exists(missing));

  // From BMOS_JWT_SECRET: a short-lived admin token.
  const std::string minted = authorization({"get", "x"}, {"BMOS_JWT_SECRET=" + secret});
  ASSERT_TRUE(minted.starts_with("Bearer ")) << minted;
  Result<std::unique_ptr<api::JwtVerifier>> verifier = api::JwtVerifier::Create(secret);
  ASSERT_TRUE(verifier.ok());
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  Result<api::Claims> claims = (*verifier)->Verify(minted.substr(7), now);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->role, "admin");
  EXPECT_EQ(claims->permissions, api::Permissions::All());
  EXPECT_LE(claims->exp, now + 301);

  // From <data-dir>/jwt.secret, as bmos-taskd writes it.
  Result<std::string> file_secret = api::LoadOrCreateSecret(dir.Sub("data"));
  ASSERT_TRUE(file_secret.ok()) << file_secret.status().ToString();
  const std::string from_file = authorization({"get", "x", "--data-dir", dir.Sub("data")}, {});
  verifier = api::JwtVerifier::Create(*file_secret);
  ASSERT_TRUE(verifier.ok());
  EXPECT_TRUE((*verifier)->Verify(from_file.substr(7), now).ok()) << from_file;
}

TEST(BmosTaskHttp, TokenCommandMintsARoleTokenFromTheServersSecret) {
  TempDir dir("bmos-task-mint");
  const std::string secret = "fedcba9876543210fedcba9876543210";
  RunResult r = RunTool({"token", "--role", "viewer", "--ttl", "120", "--subject", "ci"},
                        {"BMOS_JWT_SECRET=" + secret});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 1u);
  const std::string token = Lines(r.out)[0];
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  Result<std::unique_ptr<api::JwtVerifier>> verifier = api::JwtVerifier::Create(secret);
  ASSERT_TRUE(verifier.ok());
  Result<api::Claims> claims = (*verifier)->Verify(token, now);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->role, "viewer");
  EXPECT_EQ(claims->subject, "ci");
  EXPECT_EQ(claims->permissions, api::Permissions(api::Permission::kTaskRead));
  EXPECT_GE(claims->exp, now + 110);
  EXPECT_LE(claims->exp, now + 130);

  // From the data directory's secret file.
  Result<std::string> file_secret = api::LoadOrCreateSecret(dir.Sub("data"));
  ASSERT_TRUE(file_secret.ok());
  r = RunTool({"token", "--role", "operator", "--data-dir", dir.Sub("data")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  verifier = api::JwtVerifier::Create(*file_secret);
  claims = (*verifier)->Verify(Lines(r.out).at(0), now);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->role, "operator");
  EXPECT_EQ(claims->subject, "bmos-task");

  // No secret anywhere: an error, and nothing is created.
  r = RunTool({"token", "--role", "admin", "--data-dir", dir.Sub("none")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("no secret: start bmos-taskd once or set BMOS_JWT_SECRET"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir.Sub("none")));
}

TEST(BmosTaskHttp, HelpOfEveryCommandListsTheCommandsAndFlags) {
  for (const char* command : {"enqueue", "get", "cancel", "list", "stats", "wait", "token"}) {
    SCOPED_TRACE(command);
    RunResult r = RunTool({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    for (const char* want : {"--url",
                             "--token",
                             "--json",
                             "bmos-task enqueue NAME",
                             "--data JSON",
                             "--priority",
                             "--max-retries",
                             "--delay",
                             "--eta",
                             "--unique-key",
                             "bmos-task get ID",
                             "bmos-task cancel ID",
                             "bmos-task list",
                             "--cursor",
                             "bmos-task stats",
                             "bmos-task wait ID",
                             "--interval-ms",
                             "bmos-task token --role",
                             "--ttl",
                             "--subject",
                             "3 FAILED or CANCELLED",
                             "4 not finished"}) {
      EXPECT_NE(r.out.find(want), std::string::npos) << "no '" << want << "' in:\n" << r.out;
    }
  }
  RunResult r = RunTool({"--help"});
  EXPECT_NE(r.out.find("bmos-task enqueue NAME"), std::string::npos);
}

TEST(BmosTaskHttp, BadUsageExitsTwoAndSendsNothing) {
  FakeHttpServer server([](const Seen&) { return JsonReply("{}"); });
  ASSERT_TRUE(server.ok());
  const std::string u = server.url();
  const std::vector<UsageCase> cases = {
      {{"enqueue", "--url", u}, {"missing task NAME"}},
      {{"enqueue", "a", "b", "--url", u}, {"unexpected argument 'b'"}},
      {{"enqueue", "a", "--bogus", "--url", u}, {"unknown flag", "'--bogus'"}},
      {{"enqueue", "a", "--data", "[1]", "--url", u}, {"--data", "JSON object"}},
      {{"enqueue", "a", "--data", "{", "--url", u}, {"--data", "JSON object"}},
      {{"enqueue", "a", "--max-retries", "-1", "--url", u}, {"--max-retries", "'-1'"}},
      {{"enqueue", "a", "--delay", "soon", "--url", u}, {"--delay", "'soon'"}},
      {{"enqueue", "a", "--timeout", "-3", "--url", u}, {"--timeout", "'-3'"}},
      {{"get", "--url", u}, {"missing task ID"}},
      {{"cancel", "a", "b", "--url", u}, {"unexpected argument 'b'"}},
      {{"list", "--status", "done", "--url", u}, {"--status", "'done'"}},
      {{"list", "--limit", "0", "--url", u}, {"--limit", "'0'"}},
      {{"list", "x", "--url", u}, {"unexpected argument 'x'"}},
      {{"stats", "--limit", "3", "--url", u}, {"unknown flag", "'--limit'"}},
      {{"wait", "a", "--timeout", "x", "--url", u}, {"--timeout", "'x'"}},
      {{"wait", "a", "--interval-ms", "0", "--url", u}, {"--interval-ms", "'0'"}},
      {{"get", "a", "--url", "https://127.0.0.1:1"}, {"https is not supported"}},
      {{"get", "a", "--url", "127.0.0.1:8080"}, {"bad URL", "http://"}},
      {{"get", "a", "--json", "--json", "--url", u}, {"--json", "more than once"}},
      {{"token"}, {"--role", "required"}},
      {{"token", "--role", "root"}, {"--role", "'root'", "admin, operator or viewer"}},
      {{"token", "--role", "admin", "--ttl", "0"}, {"--ttl", "'0'"}},
      {{"token", "--role", "admin", "--url", u}, {"token", "--url"}},
      {{"--url", u}, {"missing command"}},
      {{"--url", u, "frob"}, {"unknown command", "'frob'"}},
      {{"--url", u, "store", "stats"}, {"'store'", "bmos-task store --help"}},
  };
  ExpectUsageErrors(cases);
  EXPECT_TRUE(server.requests().empty());
}

// -- schedule commands against a scripted server -----------------------------------------------

// A job as the server shows it (api/service.cc: JobJson), with a next run.
constexpr char kJobJson[] =
    R"({"job_id":"nightly","job_name":"Nightly report","job_function":"bmos.echo",)"
    R"("job_type":"cron","trigger_config":{"hour":2,"minute":0},)"
    R"("trigger":"cron[hour='2', minute='0', timezone='Europe/Berlin']",)"
    R"("timezone":"Europe/Berlin","job_data":{"a":1},"queue_name":null,"priority":null,)"
    R"("max_retries":null,"misfire_grace_time":60.0,"coalesce":true,"max_instances":1,)"
    R"("paused":false,"state":"active","next_run_time":"2026-11-29T01:00:00.000Z",)"
    R"("next_run_time_local":"2026-11-29T02:00:00+01:00","created_at":"2026-11-28T10:00:00.000Z",)"
    R"("running_tasks":[],"stats":{"runs":4,"missed_runs":1,"skipped_runs":0,)"
    R"("completed_runs":3,"failed_runs":0,"cancelled_runs":0,)"
    R"("last_run_time":"2026-11-28T01:00:00.000Z","last_task_id":"0190aaaa",)"
    R"("last_task_status":"COMPLETED","avg_duration_ms":1.5}})";

// kJobJson paused: no next run.
std::string PausedJobJson() {
  json::value v = json::parse(kJobJson);
  v.as_object()["state"] = "paused";
  v.as_object()["paused"] = true;
  v.as_object()["next_run_time"] = nullptr;
  v.as_object()["next_run_time_local"] = nullptr;
  return json::serialize(v);
}

TEST(BmosTaskScheduleHttp, AddSendsEveryFieldAndPrintsIdStateAndNextRun) {
  FakeHttpServer server([](const Seen&) { return JsonReply(kJobJson); });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"schedule",
                         "add",
                         "--name",
                         "Nightly report",
                         "--function",
                         "bmos.echo",
                         "--type",
                         "cron",
                         "--trigger",
                         R"({"hour": 2, "minute": 0, "timezone": "Europe/Berlin"})",
                         "--data",
                         R"({"a": [1, 2]})",
                         "--queue",
                         "reports",
                         "--priority",
                         "high",
                         "--max-retries",
                         "2",
                         "--misfire-grace",
                         "none",
                         "--no-coalesce",
                         "--max-instances",
                         "3",
                         "--id",
                         "nightly",
                         "--paused",
                         "--url",
                         server.url(),
                         "--token",
                         "tok"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "nightly active (next run 2026-11-29T02:00:00+01:00)\n");
  EXPECT_EQ(r.err, "");
  std::vector<Seen> seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/v1/tasks/scheduled");
  EXPECT_EQ(seen[0].headers["authorization"], "Bearer tok");
  EXPECT_EQ(seen[0].headers["content-type"], "application/json");
  const json::value body = json::parse(seen[0].body);
  EXPECT_EQ(body, json::parse(R"({"job_name":"Nightly report","job_function":"bmos.echo",)"
                              R"("job_type":"cron","trigger_config":{"hour":2,"minute":0,)"
                              R"("timezone":"Europe/Berlin"},"job_data":{"a":[1,2]},)"
                              R"("queue_name":"reports","priority":"HIGH","max_retries":2,)"
                              R"("misfire_grace_time":null,"coalesce":false,"max_instances":3,)"
                              R"("job_id":"nightly","paused":true})"))
      << seen[0].body;
  ASSERT_TRUE(body.as_object().contains("misfire_grace_time"));
  EXPECT_TRUE(body.at("misfire_grace_time").is_null());
  EXPECT_FALSE(body.at("coalesce").as_bool());

  // Only the required flags (and a fractional grace time): nothing else is sent, so the
  // server's defaults apply; the global flags may also come before `schedule`.
  r = RunTool({"--url", server.url(), "--token", "t2", "schedule", "add", "--name", "n",
               "--function", "bmos.noop", "--type", "interval", "--trigger", R"({"minutes":5})",
               "--misfire-grace", "2.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].headers["authorization"], "Bearer t2");
  EXPECT_EQ(json::parse(seen[1].body),
            json::parse(R"({"job_name":"n","job_function":"bmos.noop","job_type":"interval",)"
                        R"("trigger_config":{"minutes":5},"misfire_grace_time":2.5})"))
      << seen[1].body;
  // A whole number of seconds is sent as an integer.
  r = RunTool({"schedule", "add", "--name", "n", "--function", "f", "--type", "date", "--trigger",
               R"({"run_date":"2030-01-01T00:00:00Z"})", "--misfire-grace", "30", "--url",
               server.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::serialize(json::parse(server.requests().at(2).body).at("misfire_grace_time")),
            "30");
}

TEST(BmosTaskScheduleHttp, ListBuildsTheQueryAndPrintsATableAndTheCursor) {
  const std::string page = std::string(R"({"jobs":[)") + kJobJson + "," + PausedJobJson() +
                           R"(],"count":2,"next_cursor":"nightly"})";
  FakeHttpServer server([&page](const Seen&) { return JsonReply(page); });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"schedule", "list", "--state", "PAUSED", "--limit", "2", "--cursor", "a b",
                         "--url", server.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(server.requests()[0].target,
            "/api/v1/tasks/scheduled/?state=paused&limit=2&cursor=a%20b");
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  for (const char* want : {"ID", "NAME", "FUNCTION", "TRIGGER", "STATE", "NEXT RUN", "RUNS"}) {
    EXPECT_NE(lines[0].find(want), std::string::npos) << want << " not in " << lines[0];
  }
  for (const char* want : {"nightly", "Nightly report", "bmos.echo", "cron[hour='2'", "active",
                           "2026-11-29T02:00:00+01:00", "4"}) {
    EXPECT_NE(lines[1].find(want), std::string::npos) << want << " not in " << lines[1];
  }
  EXPECT_NE(lines[2].find("paused"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[3], "next cursor: nightly");

  // No filters: the bare path; an empty page says so and has no cursor line.
  FakeHttpServer empty(
      [](const Seen&) { return JsonReply(R"({"jobs":[],"count":0,"next_cursor":null})"); });
  ASSERT_TRUE(empty.ok());
  r = RunTool({"schedule", "list", "--url", empty.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(empty.requests().at(0).target, "/api/v1/tasks/scheduled/");
  EXPECT_EQ(r.out, "(no jobs)\n");
}

TEST(BmosTaskScheduleHttp, JobCommandsSendTheirMethodAndPathAndPrintTheAnswer) {
  FakeHttpServer server([](const Seen& s) {
    if (s.target.ends_with("/pause")) return JsonReply(PausedJobJson());
    if (s.target.ends_with("/run")) {
      return JsonReply(
          R"({"job_id":"nightly","task_id":"0190bbbb","status":"PENDING","created":true})");
    }
    if (s.target.ends_with("/stats/overview")) {
      return JsonReply(
          R"({"total":3,"active":1,"paused":1,"finished":1,"runs":9,"missed":2,"skipped":1,)"
          R"("completed":7,"failed":1,"running":1,"next_run_time":"2026-11-29T01:00:00.000Z",)"
          R"("fire_lateness_ms":{"count":9,"p50":0.25,"p90":1,"p99":2,"p999":2,"max":3}})");
    }
    if (s.method == "DELETE") {
      return JsonReply(
          R"({"job_id":"nightly","message":"job deleted; tasks it already enqueued run on"})");
    }
    return JsonReply(kJobJson);  // get, resume
  });
  ASSERT_TRUE(server.ok());
  struct Case {
    std::vector<std::string> args;
    std::string method;
    std::string target;
    std::string out;  // "" to check below instead
  };
  const std::vector<Case> cases = {
      {{"get", "a/b c"}, "GET", "/api/v1/tasks/scheduled/a%2Fb%20c", ""},
      {{"pause", "nightly"}, "POST", "/api/v1/tasks/scheduled/nightly/pause", "nightly paused\n"},
      {{"resume", "nightly"},
       "POST",
       "/api/v1/tasks/scheduled/nightly/resume",
       "nightly active (next run 2026-11-29T02:00:00+01:00)\n"},
      {{"run", "nightly"}, "POST", "/api/v1/tasks/scheduled/nightly/run", "0190bbbb PENDING\n"},
      {{"delete", "nightly"},
       "DELETE",
       "/api/v1/tasks/scheduled/nightly",
       "nightly: job deleted; tasks it already enqueued run on\n"},
      {{"stats"}, "GET", "/api/v1/tasks/scheduled/stats/overview", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args[0]);
    std::vector<std::string> args = {"schedule"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.insert(args.end(), {"--url", server.url()});
    const size_t before = server.requests().size();
    RunResult r = RunTool(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    ASSERT_EQ(server.requests().size(), before + 1);
    const Seen seen = server.requests().back();
    EXPECT_EQ(seen.method, c.method);
    EXPECT_EQ(seen.target, c.target);
    if (c.method == "POST") {
      EXPECT_EQ(seen.body, "");
    }
    if (!c.out.empty()) {
      EXPECT_EQ(r.out, c.out);
    }
    if (c.args[0] == "get") {
      // A key/value table: one row per field, the statistics one per row.
      std::map<std::string, std::string> rows;
      for (const std::string& line : Lines(r.out)) {
        const size_t space = line.find(' ');
        ASSERT_NE(space, std::string::npos) << line;
        rows[line.substr(0, space)] = line.substr(line.find_first_not_of(' ', space));
      }
      EXPECT_EQ(rows["job_id"], "nightly");
      EXPECT_EQ(rows["state"], "active");
      EXPECT_EQ(rows["trigger_config"], R"({"hour":2,"minute":0})");
      EXPECT_EQ(rows["priority"], "-");
      EXPECT_EQ(rows["stats.runs"], "4");
      EXPECT_EQ(rows["stats.last_task_status"], "COMPLETED");
      EXPECT_FALSE(rows.contains("stats")) << r.out;
    }
    if (c.args[0] == "stats") {
      for (const char* want :
           {"jobs: 3 total, 1 active, 1 paused, 1 finished",
            "runs: 9 (completed 7, failed 1, running 1), missed 2, skipped 1",
            "next run: 2026-11-29T01:00:00.000Z", "fire lateness ms: p50 0.250"}) {
        EXPECT_NE(r.out.find(want), std::string::npos) << "no '" << want << "' in:\n" << r.out;
      }
    }
  }

  // --json: the server's body as-is, for every command.
  for (const char* command : {"get", "pause", "run", "delete"}) {
    SCOPED_TRACE(command);
    RunResult r = RunTool({"schedule", command, "nightly", "--json", "--url", server.url()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Lines(r.out).size(), 1u) << r.out;
    EXPECT_EQ(json::parse(r.out).at("job_id").as_string(), "nightly");
  }
  RunResult r = RunTool({"--json", "--url", server.url(), "schedule", "stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).at("total").as_int64(), 3);
}

TEST(BmosTaskScheduleHttp, ServerErrorsPrintStatusAndDetailAndExitOne) {
  FakeHttpServer server([](const Seen& s) {
    if (s.method == "POST" && s.target == "/api/v1/tasks/scheduled") {
      return JsonReply(R"({"detail":"job 'nightly' already exists"})", 409);
    }
    return JsonReply(R"({"detail":"job 'nope' not found"})", 404);
  });
  ASSERT_TRUE(server.ok());
  RunResult r = RunTool({"schedule", "add", "--name", "n", "--function", "f", "--type", "cron",
                         "--trigger", "{}", "--id", "nightly", "--url", server.url()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "bmos-task: 409: job 'nightly' already exists\n");
  for (const char* command : {"get", "pause", "resume", "run", "delete"}) {
    SCOPED_TRACE(command);
    r = RunTool({"schedule", command, "nope", "--url", server.url()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "bmos-task: 404: job 'nope' not found\n");
  }
}

TEST(BmosTaskScheduleHttp, HelpListsEveryScheduleCommandAndFlag) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"schedule", "--help"},
                                             {"schedule", "help"},
                                             {"schedule", "add", "--help"},
                                             {"schedule", "list", "-h"},
                                             {"schedule", "get", "--help"},
                                             {"schedule", "stats", "--help"},
                                             {"schedule", "preview", "--help"},
                                             {"--help"}}) {
    SCOPED_TRACE(args.size() > 1 ? args[1] : args[0]);
    RunResult r = RunTool(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    for (const char* want : {"bmos-task schedule preview",
                             "bmos-task schedule add --name NAME --function TASK",
                             "--type cron|interval|date",
                             "--trigger JSON",
                             "--data JSON",
                             "--priority P",
                             "--max-retries N",
                             "--misfire-grace SECONDS|none",
                             "--no-coalesce",
                             "--max-instances N",
                             "--id JOB_ID",
                             "--paused",
                             "bmos-task schedule list [--state active|paused|finished]",
                             "--cursor C",
                             "bmos-task schedule get JOB_ID",
                             "bmos-task schedule pause JOB_ID",
                             "bmos-task schedule resume JOB_ID",
                             "bmos-task schedule run JOB_ID",
                             "bmos-task schedule delete JOB_ID",
                             "bmos-task schedule stats",
                             "--url",
                             "--token"}) {
      EXPECT_NE(r.out.find(want), std::string::npos) << "no '" << want << "' in:\n" << r.out;
    }
  }
}

TEST(BmosTaskScheduleHttp, BadUsageExitsTwoAndSendsNothing) {
  FakeHttpServer server([](const Seen&) { return JsonReply(kJobJson); });
  ASSERT_TRUE(server.ok());
  const std::string u = server.url();
  // A complete add, with one flag replaced or dropped per case.
  auto add = [&](std::map<std::string, std::string> change) {
    std::map<std::string, std::string> flags = {{"--name", "n"},
                                                {"--function", "bmos.noop"},
                                                {"--type", "cron"},
                                                {"--trigger", R"({"hour":2})"}};
    for (const auto& [flag, value] : change) flags[flag] = value;
    std::vector<std::string> args = {"schedule", "add", "--url", u};
    for (const auto& [flag, value] : flags) {
      if (value == "(drop)") continue;
      args.push_back(flag);
      if (!value.empty()) args.push_back(value);
    }
    return args;
  };
  const std::vector<UsageCase> cases = {
      {{"schedule", "frob", "--url", u}, {"unknown command", "'frob'", "add", "preview"}},
      {add({{"--name", "(drop)"}}), {"--name", "required"}},
      {add({{"--function", "(drop)"}}), {"--function", "required"}},
      {add({{"--type", "(drop)"}}), {"--type", "required"}},
      {add({{"--trigger", "(drop)"}}), {"--trigger", "required"}},
      {add({{"--type", "weekly"}}), {"--type", "'weekly'", "cron, interval or date"}},
      {add({{"--type", "CRON"}}), {"--type", "'CRON'"}},
      {add({{"--trigger", "{"}}), {"--trigger", "JSON object", "'{'"}},
      {add({{"--trigger", "[1]"}}), {"--trigger", "JSON object"}},
      {add({{"--trigger", "2"}}), {"--trigger", "JSON object"}},
      {add({{"--data", "[1]"}}), {"--data", "JSON object"}},
      {add({{"--data", R"({"a":)"}}), {"--data", "JSON object"}},
      {add({{"--priority", "urgent"}}),
       {"--priority", "'urgent'", "LOW, NORMAL, HIGH or CRITICAL"}},
      {add({{"--max-retries", "-1"}}), {"--max-retries", "'-1'"}},
      {add({{"--max-retries", "2.5"}}), {"--max-retries", "'2.5'"}},
      {add({{"--max-retries", "1001"}}), {"--max-retries", "'1001'", "0 to 1000"}},
      {add({{"--max-instances", "0"}}), {"--max-instances", "'0'", "1 to 1000"}},
      {add({{"--max-instances", "many"}}), {"--max-instances", "'many'"}},
      {add({{"--misfire-grace", "0"}}), {"--misfire-grace", "'0'", "'none'"}},
      {add({{"--misfire-grace", "-5"}}), {"--misfire-grace", "'-5'"}},
      {add({{"--misfire-grace", "never"}}), {"--misfire-grace", "'never'"}},
      {add({{"--misfire-grace", "inf"}}), {"--misfire-grace", "'inf'"}},
      {add({{"--no-coalesce=yes", ""}}), {"--no-coalesce", "takes no value"}},
      {add({{"--bogus", ""}}), {"unknown flag", "'--bogus'"}},
      {{"schedule", "add", "stray", "--url", u}, {"unexpected argument 'stray'"}},
      {{"schedule", "list", "--state", "sleeping", "--url", u},
       {"--state", "'sleeping'", "active, paused or finished"}},
      {{"schedule", "list", "--limit", "0", "--url", u}, {"--limit", "'0'"}},
      {{"schedule", "list", "x", "--url", u}, {"unexpected argument 'x'"}},
      {{"schedule", "stats", "x", "--url", u}, {"unexpected argument 'x'"}},
      {{"schedule", "stats", "--limit", "3", "--url", u}, {"unknown flag", "'--limit'"}},
      {{"--url", u, "schedule", "preview", "--type", "cron"},
       {"'schedule preview'", "bmos-task schedule --help"}},
      {{"schedule", "get", "a", "--url", "https://127.0.0.1:1"}, {"https is not supported"}},
  };
  ExpectUsageErrors(cases);
  std::vector<UsageCase> missing_id;
  for (const char* command : {"get", "pause", "resume", "run", "delete"}) {
    missing_id.push_back({{"schedule", command, "--url", u}, {"missing job ID"}});
    missing_id.push_back(
        {{"schedule", command, "a", "b", "--url", u}, {"unexpected argument 'b'"}});
  }
  ExpectUsageErrors(missing_id);
  EXPECT_TRUE(server.requests().empty());
}

// -- HTTP commands against the real server -----------------------------------------------------

#ifdef BMOS_TASKD_BIN

// bmos-taskd on an ephemeral loopback port with a fresh data directory, async durability and
// the test handlers, its output in files. The destructor stops it: SIGTERM, a bounded wait,
// then SIGKILL. Only the pid started here is ever signalled.
class Taskd {
 public:
  Taskd() {
    const std::string port_file = scratch_.Sub("port");
    const std::vector<std::string> args = {BMOS_TASKD_BIN,    "--listen",
                                           "127.0.0.1:0",     "--port-file",
                                           port_file,         "--data-dir",
                                           data_dir(),        "--durability",
                                           "async",           "--with-test-handlers",
                                           "--workers",       "2",
                                           "--drain-seconds", "2"};
    std::vector<std::string> copies(args);
    std::vector<char*> argv;
    for (std::string& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_copies;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!std::string_view(*e).starts_with("BMOS_")) env_copies.emplace_back(*e);
    }
    std::vector<char*> envp;
    for (std::string& e : env_copies) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, scratch_.Sub("out").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, scratch_.Sub("err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int rc =
        posix_spawn(&pid_, copies[0].c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      ADD_FAILURE() << "cannot start " << BMOS_TASKD_BIN << ": " << std::strerror(rc);
      return;
    }
    // The port file appears once the server listens: poll it, bounded.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = ReadFile(port_file);
      unsigned port = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
      if (ec == std::errc() && port > 0 && port < 65536 &&
          (end == text.data() + text.size() || *end == '\n')) {
        port_ = static_cast<uint16_t>(port);
        return;
      }
      int wstatus = 0;
      if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "bmos-taskd exited at start:\n" << log();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "bmos-taskd wrote no port within 30 s:\n" << log();
  }

  ~Taskd() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int wstatus = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, &wstatus, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "bmos-taskd did not stop within 20 s of SIGTERM; killing it\n" << log();
    kill(pid_, SIGKILL);
    waitpid(pid_, &wstatus, 0);
  }

  Taskd(const Taskd&) = delete;
  Taskd& operator=(const Taskd&) = delete;

  bool ok() const { return port_ != 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string data_dir() const { return scratch_.Sub("data"); }
  std::string log() const { return ReadFile(scratch_.Sub("out")) + ReadFile(scratch_.Sub("err")); }

 private:
  TempDir scratch_{"bmos-taskd"};
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// One server for the suite (starting one opens a store); each test uses its own tasks.
class BmosTaskServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new Taskd(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_->ok()) << server_->log(); }

  // A token of `role`, minted by the tool from the server's secret.
  std::string Token(const std::string& role) {
    RunResult r = RunTool({"token", "--role", role, "--data-dir", server_->data_dir()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> lines = Lines(r.out);
    return lines.empty() ? "" : lines[0];
  }

  // bmos-task with --url and --token of `role` added ("" for no token).
  RunResult Run(std::vector<std::string> args, const std::string& role = "admin") {
    args.insert(args.end(), {"--url", server_->url()});
    if (!role.empty()) args.insert(args.end(), {"--token", Token(role)});
    return RunTool(args);
  }

  // Enqueues and returns the task id (the first word printed).
  std::string Enqueue(std::vector<std::string> args) {
    args.insert(args.begin(), "enqueue");
    RunResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.out);
    std::string id;
    std::string status;
    in >> id >> status;
    EXPECT_EQ(status, "PENDING") << r.out;
    return id;
  }

  static Taskd* server_;
};

Taskd* BmosTaskServerTest::server_ = nullptr;

TEST_F(BmosTaskServerTest, EnqueueGetWaitListAndStats) {
  const std::string id = Enqueue(
      {"bmos.echo", "--data", R"({"file":"a.csv"})", "--queue", "default", "--priority", "high"});
  ASSERT_FALSE(id.empty());

  RunResult r = Run({"get", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bmos.echo"), std::string::npos) << r.out;

  r = Run({"wait", id, "--timeout", "30", "--interval-ms", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.err << server_->log();
  EXPECT_NE(r.out.find("COMPLETED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"({"file":"a.csv"})"), std::string::npos) << r.out;  // the result

  r = Run({"list", "--name", "bmos.echo", "--status", "completed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HIGH"), std::string::npos) << r.out;

  r = Run({"stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want : {"tasks:", "default", "COMPLETED", "workers:"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << "no '" << want << "' in:\n" << r.out;
  }
}

TEST_F(BmosTaskServerTest, JsonOutputIsTheServersJson) {
  const std::string id = Enqueue({"bmos.noop"});
  ASSERT_FALSE(id.empty());
  RunResult r = Run({"wait", id, "--json", "--timeout", "30", "--interval-ms", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
  EXPECT_EQ(json::parse(r.out).at("task_id").as_string(), id);
  EXPECT_EQ(json::parse(r.out).at("status").as_string(), "COMPLETED");

  r = Run({"--json", "get", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).at("task_name").as_string(), "bmos.noop");

  r = Run({"list", "--json", "--limit", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json::value page = json::parse(r.out);
  EXPECT_EQ(page.at("tasks").as_array().size(), 1u);
  EXPECT_TRUE(page.as_object().contains("next_cursor"));

  r = Run({"stats", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(json::parse(r.out).at("total_tasks").to_number<int64_t>(), 1);

  r = Run({"enqueue", "bmos.noop", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).at("status").as_string(), "PENDING");
}

TEST_F(BmosTaskServerTest, CancelASleepingTask) {
  const std::string id = Enqueue({"bmos.sleep", "--data", R"({"ms":60000})"});
  ASSERT_FALSE(id.empty());
  RunResult r = Run({"cancel", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;

  r = Run({"wait", id, "--timeout", "30", "--interval-ms", "20"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.out.find("CANCELLED"), std::string::npos) << r.out;

  // Cancelling it again is an impossible transition: 409, exit 1.
  r = Run({"cancel", id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 409: "), std::string::npos) << r.err;
}

TEST_F(BmosTaskServerTest, FailedTaskExitsThree) {
  const std::string id = Enqueue({"bmos.fail", "--data", R"({"times":5})", "--max-retries", "0"});
  ASSERT_FALSE(id.empty());
  RunResult r = Run({"wait", id, "--timeout", "30", "--interval-ms", "20"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.out.find("FAILED"), std::string::npos) << r.out;
}

TEST_F(BmosTaskServerTest, ServerErrorsShowStatusAndDetail) {
  RunResult r = Run({"enqueue", "no.such.task"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("bmos-task: 422: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no.such.task"), std::string::npos) << r.err;

  r = Run({"get", "0190aaaa-0000-7000-8000-000000000001"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 404: "), std::string::npos) << r.err;

  r = Run({"enqueue", "bmos.noop", "--priority", "urgent"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 422: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("priority"), std::string::npos) << r.err;
}

TEST_F(BmosTaskServerTest, PermissionsFollowTheTokensRole) {
  RunResult r = Run({"enqueue", "bmos.noop"}, "viewer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 403: "), std::string::npos) << r.err;

  EXPECT_EQ(Run({"stats"}, "viewer").exit_code, 0);  // a viewer may read

  // No token at all (and no secret where the tool looks): 401.
  TempDir elsewhere("bmos-task-nosecret");
  r = RunTool({"stats", "--url", server_->url(), "--data-dir", elsewhere.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 401: "), std::string::npos) << r.err;

  // No token given, but the server's secret is readable: the tool mints an admin token.
  r = RunTool({"stats", "--url", server_->url(), "--data-dir", server_->data_dir()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(BmosTaskServerTest, ScheduleAddListGetPauseResumeRunStatsDelete) {
  // An hourly job: its timetable does not fire during the test, so every run below is run-now.
  RunResult r =
      Run({"schedule", "add", "--name", "cli job", "--function", "bmos.echo", "--type", "interval",
           "--trigger", R"({"hours":1})", "--data", R"({"from":"cli"})", "--priority", "high",
           "--misfire-grace", "none", "--no-coalesce", "--id", "cli-job-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err << server_->log();
  EXPECT_TRUE(r.out.starts_with("cli-job-1 active (next run ")) << r.out;

  r = Run({"schedule", "list", "--state", "active"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cli-job-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cli job"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("interval[1:00:00"), std::string::npos) << r.out;

  r = Run({"schedule", "get", "cli-job-1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json::value job = json::parse(r.out);
  EXPECT_EQ(job.at("job_function").as_string(), "bmos.echo");
  EXPECT_EQ(job.at("priority").as_string(), "HIGH");
  EXPECT_TRUE(job.at("misfire_grace_time").is_null());
  EXPECT_FALSE(job.at("coalesce").as_bool());
  EXPECT_EQ(json::serialize(job.at("job_data")), R"({"from":"cli"})");
  r = Run({"schedule", "get", "cli-job-1"}, "viewer");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stats.runs"), std::string::npos) << r.out;

  r = Run({"schedule", "pause", "cli-job-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "cli-job-1 paused\n");
  r = Run({"schedule", "list", "--state", "paused", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool listed = false;
  const json::value paused = json::parse(r.out);
  for (const json::value& j : paused.at("jobs").as_array()) {
    listed = listed || j.at("job_id").as_string() == "cli-job-1";
  }
  EXPECT_TRUE(listed) << r.out;
  r = Run({"schedule", "resume", "cli-job-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("cli-job-1 active (next run ")) << r.out;

  // Run now: a task of the job, which completes with the job's data.
  r = Run({"schedule", "run", "cli-job-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::string task;
  std::string status;
  in >> task >> status;
  ASSERT_FALSE(task.empty()) << r.out;
  r = Run({"wait", task, "--json", "--timeout", "30", "--interval-ms", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.err << server_->log();
  const json::value record = json::parse(r.out);
  EXPECT_EQ(record.at("status").as_string(), "COMPLETED");
  EXPECT_EQ(record.at("task_name").as_string(), "bmos.echo");
  EXPECT_EQ(json::serialize(record.at("task_data")), R"({"from":"cli"})");

  // The job counts the run once its statistics catch up (bounded poll).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    r = Run({"schedule", "get", "cli-job-1", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    job = json::parse(r.out);
    if (job.at("stats").at("completed_runs").as_int64() >= 1) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << r.out;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(job.at("stats").at("runs").as_int64(), 1);
  EXPECT_EQ(job.at("stats").at("last_task_id").as_string(), task);

  r = Run({"schedule", "stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("jobs: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" active"), std::string::npos) << r.out;
  r = Run({"schedule", "stats", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(json::parse(r.out).at("total").as_int64(), 1);
  EXPECT_GE(json::parse(r.out).at("runs").as_int64(), 1);

  // A second job with the same id: 409. A viewer may not add or pause; an operator may not
  // delete.
  r = Run({"schedule", "add", "--name", "again", "--function", "bmos.noop", "--type", "cron",
           "--trigger", R"({"hour":3})", "--id", "cli-job-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 409: "), std::string::npos) << r.err;
  r = Run({"schedule", "pause", "cli-job-1"}, "viewer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 403: "), std::string::npos) << r.err;
  r = Run({"schedule", "delete", "cli-job-1"}, "operator");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 403: "), std::string::npos) << r.err;
  // The server refuses what only it can check (an unknown task, a bad trigger field): 422.
  r = Run({"schedule", "add", "--name", "bad", "--function", "no.such.task", "--type", "cron",
           "--trigger", R"({"hour":3})"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bmos-task: 422: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no.such.task"), std::string::npos) << r.err;
  r = Run({"schedule", "add", "--name", "bad", "--function", "bmos.noop", "--type", "cron",
           "--trigger", R"({"hour":24})"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("hour"), std::string::npos) << r.err;

  r = Run({"schedule", "delete", "cli-job-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("cli-job-1: ")) << r.out;
  for (const char* command : {"get", "delete", "run"}) {
    SCOPED_TRACE(command);
    r = Run({"schedule", command, "cli-job-1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("bmos-task: 404: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("cli-job-1"), std::string::npos) << r.err;
  }
}

#endif  // BMOS_TASKD_BIN
}  // namespace
}  // namespace bmos::storage
