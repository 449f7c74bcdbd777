// bmos-task, run as a user runs it: a store is written in a temporary directory, the tool is
// started as a child process, and its stdout, stderr and exit status are checked.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
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
#include <system_error>
#include <thread>
#include <vector>

#include "storage/rocksdb_task_store.h"
#include "storage/task_record.h"
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
RunResult RunTool(const std::vector<std::string>& args) {
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
  const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
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

// Each bad command line exits 2, prints nothing on stdout and names the problem on stderr.
TEST(BmosTask, BadUsageExitsTwoAndNamesTheProblem) {
  TempDir dir("bmos-task-usage");
  ASSERT_NE(OpenWriter(dir.path()), nullptr);
  const std::string d = dir.path();
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> says;  // each must appear in stderr
  };
  const std::vector<Case> cases = {
      {{"frobnicate"}, {"unknown command group", "'frobnicate'"}},
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
  for (const Case& c : cases) {
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

}  // namespace
}  // namespace bmos::storage
