// bmos-taskbench: the end-to-end harness of the embedded engine.
//
// Runs no-op tasks ("bench.noop", which returns null) through a real Engine and reports:
//   throughput        P producer threads enqueue N tasks; time until every handler has run, and
//                     a check that the engine counts N completions.
//   latency.enqueue   one producer enqueues M tasks back to back; the duration of each call.
//   latency.start     tasks enqueued at a fixed rate (paced by absolute deadlines); the time from
//                     just before the Enqueue call to the start of the handler.
//   idle              an engine with 8 workers and nothing to do; the process's CPU time.
//   recovery          (sync/async) a store holding R PENDING tasks: the time Engine::Open takes
//                     to replay it and accept work, then the time to run them all.
//   http              the HTTP server (api/server.h) in this process over an engine, driven by
//                     a closed-loop keep-alive client (bench/http_load.h): requests/s, latency
//                     of each request, CPU per request.
//   schedule          J interval jobs of the scheduler (engine/scheduler.h): firing lateness,
//                     fires/s, CPU of the timer thread and of the process, against a baseline
//                     that enqueues the same tasks at the same times without the scheduler.
//   schedule-restart  (sync/async) J persisted jobs: the time until a reopened scheduler runs.
//   disk              plain RocksDB on this machine: fsync'd Puts, WriteBatches with and without
//                     sync; the ground the durable modes stand on.
// Each scenario runs --repeat times on a fresh engine; the reported figure is the median.
// Output is an aligned table, or with --json one JSON object per scenario and line.
//
// Every loop is bounded in count, and every wait in time (--max-wait): a stuck engine ends the
// run with an error (exit 1) instead of hanging. Bad flags exit 2.
#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "api/jwt.h"
#include "api/server.h"
#include "api/service.h"
#include "api/test_handlers.h"
#include "bench/http_load.h"
#include "engine/engine.h"
#include "engine/options.h"
#include "engine/scheduler.h"
#include "engine/task_context.h"
#include "storage/allocator.h"
#include "storage/callback_batch.h"
#include "storage/futex.h"
#include "storage/rocksdb_task_store.h"
#include "storage/status.h"
#include "storage/task_store.h"
#include "storage/wal_file_system.h"

namespace bmos::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::string_view kNoop = "bench.noop";

constexpr char kUsage[] = R"(usage: bmos-taskbench [flags]

Runs no-op tasks through the embedded engine and reports throughput, latency and idle CPU.

Scenarios (--scenario):
  throughput   --producers threads enqueue --tasks no-op tasks in total (with --batch > 1 as
               EnqueueBatch calls of that size; with --inflight > 1 as that many asynchronous
               clients per thread) into an engine with --workers workers; reports
               the time until every task's handler has run (then checks that the engine counts
               them all COMPLETED), tasks/s, and the enqueue call rate.
  latency      two figures, one producer, --workers workers:
               latency.enqueue: --latency-tasks Enqueue calls back to back, each one timed;
               latency.start: tasks enqueued at --rate per second for --seconds, each timed from
               just before its Enqueue call to the start of its handler.
               Both report p50, p99, p99.9 and max in microseconds.
  idle         an engine with --idle-workers workers, after a short burst of work, left idle for
               --seconds; reports the process CPU time as a percentage of one core.
  recovery     (--mode sync or async; not part of "all") --recovery-tasks PENDING records are
               written to a fresh store, which is closed; reports open_s, the time Engine::Open
               takes to replay them and accept work, the resident memory then, and the rate at
               which --workers workers then run them all.
  schedule     (not part of "all") --jobs interval jobs (every --interval-ms) on a scheduler over
               an engine (--mode, --workers) running no-op tasks. The jobs' start times are
               spread evenly over one interval (with --aligned all start together, so every
               fire is a burst of --jobs runs). After --warmup-s of fires, --seconds are
               measured: fires/s, the firing lateness (when the timer handed a run's task to the
               engine minus its scheduled time; p50, p99, p99.9, max in µs, to the scheduler's
               histogram resolution of ~6%), the CPU of the scheduler's timer thread
               (tmr_cpu_%, % of one core) and of the whole process (cpu_%). A second row,
               schedule.base, enqueues the same tasks at the same times from a plain timed loop
               (EnqueueAsync, no scheduler): cpu_% minus its cpu_% is the scheduler's CPU
               excluding the tasks themselves. Missed or skipped runs fail the run.
  schedule-restart  (--mode sync or async; not part of "all") --jobs jobs (hourly) are added
               through the scheduler, then scheduler and engine are closed; reports
               engine_open_s (Engine::Open) and open_s (Scheduler::Open: loading every job and
               starting the timer, i.e. until the timetable runs).
Every run of sync and async uses a fresh store in its own directory under --data-dir, removed
after the run. Throughput and recovery runs end when the engine counts every task COMPLETED,
which in sync and async mode means its completion record is written (fsynced in sync).
  all          throughput, latency and idle, in that order.
  disk         (not part of "all"; --mode does not apply) what this machine's disk and RocksDB
               give the durable modes, measured with plain RocksDB (default options; with
               --disk-zero-ahead its WAL written over zeros, as the store's sync mode writes
               it) on a fresh directory under --data-dir: --disk-ops single Puts with sync (an fsync each:
               p50, p99, p99.9 and max in µs, and puts/s), then --disk-ops WriteBatches of
               --disk-batch records with sync (syncrec/s: records per second, what group
               commits of that size can reach in sync mode) and as many without sync
               (asyncrec/s). Records are 16-byte keys in ascending order with 128-byte
               values, about a task record's size. The engine's sync and async figures are
               best read against these.
  http         (not part of "all") the HTTP API: an engine (--mode, --workers) with the test
               handlers, the ApiService with JWT auth on (a random secret) and the Beast server
               on 127.0.0.1, an ephemeral port and --io-threads threads, all in this process.
               A closed-loop client (--client-threads threads, --connections keep-alive
               connections, each sending its next request only after the whole answer to the
               last) runs for --warmup-s, then is measured for --duration-s. --http-op picks
               the request: enqueue, POST /api/v1/tasks/enqueue {"task_name":"bmos.noop"}; or
               get, GET /api/v1/tasks/{id} cycling over --get-tasks tasks enqueued (and run)
               before the load. Reports requests/s, the latency of each request (write to last
               byte of the answer; p50, p99, p99.9, max in µs), the CPU time of the process
               (server and client) and of the client threads alone per request, and cpu_% (the
               process's CPU in % of one core). Any answer but 200, in warm-up too, or a lost
               connection fails the run (exit 1) with the counts by status. In the table,
               column prod shows --connections.

Flags (a value may follow as "--flag value" or "--flag=value"):
  --scenario S        throughput | latency | idle | recovery | http | schedule |
                      schedule-restart | disk | all. Default: all.
  --data-dir D        where the stores of sync and async runs (and of disk) go. Default: a new
                      directory under $TMPDIR (or /tmp), removed at the end.
  --recovery-tasks R  PENDING tasks of the recovery scenario, 1..100000000. Default: 1000000.
  --mode M            durability mode: memory | sync | async. Default: memory. sync and async
                      run on a fresh RocksDB store per run (see --data-dir).
  --producers P       producer threads of the throughput scenario, 1..64. Default: 2.
  --workers W         engine workers for throughput and latency, 1..256. Default: 2.
  --tasks N           tasks of the throughput scenario, 1..100000000. Default: 1000000.
  --batch K           tasks per enqueue call in throughput; 1 = Enqueue, more = EnqueueBatch,
                      1..100000. Default: 1.
  --inflight K        with K > 1, each producer thread of throughput runs K clients instead of
                      one blocking Enqueue loop: each client keeps one EnqueueAsync of one task
                      in flight and sends its next once the last is acknowledged (as the HTTP
                      server's connections do), the thread sleeping while all wait. Concurrent
                      producers = producers x K (column prod shows that). 1..4096. Default: 1.
  --latency-tasks M   Enqueue calls timed by latency.enqueue, 1..100000000. Default: 200000.
  --rate R            tasks per second of latency.start, 1..10000000. Default: 10000.
  --seconds S         duration of latency.start and of idle, in seconds (decimals allowed),
                      0.01..3600. Default: 3.
  --idle-workers W    workers of the idle engine, 1..256. Default: 8.
  --repeat R          runs of each scenario (a fresh engine each); the median is reported,
                      1..1000. Default: 1.
  --max-wait S        the longest any single wait for tasks may take before the run fails, in
                      seconds, 1..86400. Default: 120.
  --http-op OP        http: enqueue | get. Default: enqueue.
  --connections C     http: keep-alive client connections, 1..10000. Default: 64.
  --client-threads T  http: client threads (each runs an Asio loop), 1..64. Default: 1.
  --io-threads N      http: the server's I/O threads, 1..256. Default: 2.
  --duration-s S      http: the measured window in seconds, 0.1..3600. Default: 5.
  --warmup-s S        http: load before the window, not measured, 0..3600. Default: 1.
  --get-tasks N       http get: tasks enqueued (and completed) before the load, whose ids the
                      GETs cycle over, 1..10000000. Default: 1000.
  --disk-ops N        disk: single Puts, and WriteBatches of each kind, 1..10000000.
                      Default: 2000.
  --disk-batch B      disk: records per WriteBatch, 1..100000. Default: 100.
  --disk-zero-ahead   disk: write the WAL over zeros written ahead, as the store does in sync
                      mode (storage/wal_file_system.h), instead of growing it with each write.
  --jobs J            schedule and schedule-restart: jobs, 1..1000000. Default: 10000.
  --interval-ms I     schedule: the jobs' interval in ms, 1..86400000. Default: 1000.
  --aligned           schedule: every job starts at the same instant.
  --json              one JSON object per scenario and line instead of a table. Its top-level
                      figures are the medians; "runs" lists every run's figures.

Every run also reports others_cpu_pct ("others_%"): the CPU time other processes used while it
was measured (machine busy time from /proc/stat minus this process), in % of one core; -1 when
/proc/stat is unreadable. A high figure means the run shared the machine and is skewed.
  --help              this text.

Exit status: 0 success; 1 a run failed (enqueue error, tasks not done within --max-wait, count
mismatch); 2 bad flags or the engine could not be opened.
)";

struct Flags {
  std::string scenario = "all";
  std::string mode = "memory";
  int64_t producers = 2;
  int64_t workers = 2;
  int64_t tasks = 1'000'000;
  int64_t batch = 1;
  int64_t inflight = 1;
  int64_t latency_tasks = 200'000;
  int64_t rate = 10'000;
  double seconds = 3;
  int64_t idle_workers = 8;
  int64_t repeat = 1;
  double max_wait = 120;
  bool json = false;
  std::string data_dir;  // empty: a temporary directory
  int64_t recovery_tasks = 1'000'000;
  std::string http_op = "enqueue";
  int64_t connections = 64;
  int64_t client_threads = 1;
  int64_t io_threads = 2;
  double duration_s = 5;
  double warmup_s = 1;
  int64_t get_tasks = 1000;
  int64_t jobs = 10'000;
  int64_t interval_ms = 1000;
  bool aligned = false;
  bool disk_zero_ahead = false;
  int64_t disk_ops = 2000;
  int64_t disk_batch = 100;
};

// A failed run: the message, and the exit status it leads to.
struct Failure {
  std::string message;
  int exit_code = 1;
};

[[noreturn]] void UsageError(const std::string& message) {
  std::fprintf(stderr, "bmos-taskbench: %s\n(see bmos-taskbench --help)\n", message.c_str());
  std::exit(2);
}

int64_t ParseInt(std::string_view flag, std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    UsageError("--" + std::string(flag) + ": '" + std::string(text) + "' is not an integer");
  }
  if (value < min || value > max) {
    UsageError("--" + std::string(flag) + ": " + std::string(text) + " is outside " +
               std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

double ParseSeconds(std::string_view flag, std::string_view text, double min, double max) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    UsageError("--" + std::string(flag) + ": '" + std::string(text) + "' is not a number");
  }
  if (value < min || value > max) {
    char range[64];
    std::snprintf(range, sizeof range, "%g..%g", min, max);
    UsageError("--" + std::string(flag) + ": " + std::string(text) + " is outside " + range);
  }
  return value;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg == "--aligned") {
      f.aligned = true;
      continue;
    }
    if (arg == "--disk-zero-ahead") {
      f.disk_zero_ahead = true;
      continue;
    }
    if (arg == "--json") {
      f.json = true;
      continue;
    }
    if (!arg.starts_with("--")) UsageError("unexpected argument '" + std::string(arg) + "'");
    std::string_view name = arg.substr(2);
    std::string_view value;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= argc) UsageError("--" + std::string(name) + " needs a value");
      value = argv[++i];
    }
    if (name == "scenario") {
      if (value != "throughput" && value != "latency" && value != "idle" && value != "all" &&
          value != "recovery" && value != "http" && value != "schedule" &&
          value != "schedule-restart" && value != "disk") {
        UsageError("--scenario: '" + std::string(value) +
                   "' is not one of throughput, latency, idle, recovery, http, schedule, "
                   "schedule-restart, disk, all");
      }
      f.scenario = value;
    } else if (name == "mode") {
      if (!storage::ParseDurability(value)) {
        UsageError("--mode: '" + std::string(value) + "' is not one of memory, sync, async");
      }
      f.mode = value;
    } else if (name == "producers") {
      f.producers = ParseInt(name, value, 1, 64);
    } else if (name == "workers") {
      f.workers = ParseInt(name, value, 1, 256);
    } else if (name == "tasks") {
      f.tasks = ParseInt(name, value, 1, 100'000'000);
    } else if (name == "batch") {
      f.batch = ParseInt(name, value, 1, 100'000);
    } else if (name == "inflight") {
      f.inflight = ParseInt(name, value, 1, 4096);
    } else if (name == "latency-tasks") {
      f.latency_tasks = ParseInt(name, value, 1, 100'000'000);
    } else if (name == "rate") {
      f.rate = ParseInt(name, value, 1, 10'000'000);
    } else if (name == "seconds") {
      f.seconds = ParseSeconds(name, value, 0.01, 3600);
    } else if (name == "idle-workers") {
      f.idle_workers = ParseInt(name, value, 1, 256);
    } else if (name == "repeat") {
      f.repeat = ParseInt(name, value, 1, 1000);
    } else if (name == "max-wait") {
      f.max_wait = ParseSeconds(name, value, 1, 86'400);
    } else if (name == "data-dir") {
      if (value.empty()) UsageError("--data-dir must not be empty");
      f.data_dir = value;
    } else if (name == "recovery-tasks") {
      f.recovery_tasks = ParseInt(name, value, 1, 100'000'000);
    } else if (name == "http-op") {
      if (value != "enqueue" && value != "get") {
        UsageError("--http-op: '" + std::string(value) + "' is not one of enqueue, get");
      }
      f.http_op = value;
    } else if (name == "connections") {
      f.connections = ParseInt(name, value, 1, 10'000);
    } else if (name == "client-threads") {
      f.client_threads = ParseInt(name, value, 1, 64);
    } else if (name == "io-threads") {
      f.io_threads = ParseInt(name, value, 1, 256);
    } else if (name == "duration-s") {
      f.duration_s = ParseSeconds(name, value, 0.1, 3600);
    } else if (name == "warmup-s") {
      f.warmup_s = ParseSeconds(name, value, 0, 3600);
    } else if (name == "get-tasks") {
      f.get_tasks = ParseInt(name, value, 1, 10'000'000);
    } else if (name == "jobs") {
      f.jobs = ParseInt(name, value, 1, 1'000'000);
    } else if (name == "interval-ms") {
      f.interval_ms = ParseInt(name, value, 1, 86'400'000);
    } else if (name == "disk-ops") {
      f.disk_ops = ParseInt(name, value, 1, 10'000'000);
    } else if (name == "disk-batch") {
      f.disk_batch = ParseInt(name, value, 1, 100'000);
    } else {
      UsageError("unknown flag '--" + std::string(name) + "'");
    }
  }
  // latency.start keeps two timestamps per task; bound the table it needs.
  if (static_cast<double>(f.rate) * f.seconds > 100'000'000) {
    UsageError("--rate times --seconds must be at most 100000000 tasks");
  }
  if (f.inflight > 1 && f.batch > 1) {
    UsageError("--inflight and --batch cannot both be above 1 (a client sends one task at a time)");
  }
  if (f.scenario == "recovery" && f.mode == "memory") {
    UsageError("--scenario recovery needs --mode sync or async (memory has nothing to recover)");
  }
  if (f.scenario == "schedule-restart" && f.mode == "memory") {
    UsageError("--scenario schedule-restart needs --mode sync or async (memory keeps no jobs)");
  }
  return f;
}

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Busy CPU time of the whole machine (all cores) in seconds, from /proc/stat; -1 if unreadable.
double MachineBusySeconds() {
  std::FILE* file = std::fopen("/proc/stat", "r");
  if (file == nullptr) return -1;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     steal = 0;
  const int n = std::fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice,
                            &system, &idle, &iowait, &irq, &softirq, &steal);
  std::fclose(file);
  if (n < 4) return -1;
  const double ticks = static_cast<double>(user + nice + system + irq + softirq + steal);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Measures how much CPU other processes used while a run was measured: the machine's busy time
// minus this process's CPU time, as a percentage of one core. Other agents build on the same
// machine; a run with a high figure here is skewed, whatever it reports.
class OthersProbe {
 public:
  OthersProbe()
      : machine_(MachineBusySeconds()), self_(ProcessCpuSeconds()), start_(SteadyClock::now()) {}
  // -1 when /proc/stat is unreadable.
  double OthersPct() const {
    const double machine = MachineBusySeconds();
    if (machine_ < 0 || machine < 0) return -1;
    const double others = (machine - machine_) - (ProcessCpuSeconds() - self_);
    const double wall = SecondsSince(start_);
    return wall > 0 ? std::max(0.0, 100.0 * others / wall) : 0;
  }

 private:
  double machine_;
  double self_;
  SteadyClock::time_point start_;
};

// ---------------------------------------------------------------------------------------------
// The engine under test.

// An open engine whose "bench.noop" handler counts its calls and, when `started` is set,
// stamps the steady time at which the handler of task number `seq` (its data is {"s":seq})
// started.
// A fresh directory for one run's store, removed (with the store) when the run ends.
class RunDir {
 public:
  explicit RunDir(const Flags& f) {
    static int runs = 0;
    std::error_code ec;
    if (f.data_dir.empty()) {
      if (base().empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern =
            std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/bmos-taskbench-XXXXXX";
        if (mkdtemp(pattern.data()) != nullptr) {
          base() = pattern;
          std::atexit([] {
            std::error_code e;
            std::filesystem::remove_all(base(), e);
          });
        }
      }
      path_ = base() + "/run-" + std::to_string(++runs);
    } else {
      path_ = f.data_dir + "/run-" + std::to_string(getpid()) + "-" + std::to_string(++runs);
    }
    std::filesystem::remove_all(path_, ec);
  }
  ~RunDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  static std::string& base() {
    static std::string b;
    return b;
  }
  std::string path_;
};

// Resident memory of this process in MiB (VmRSS), or -1.
double ResidentMiB() {
  std::FILE* file = std::fopen("/proc/self/status", "r");
  if (file == nullptr) return -1;
  char line[256];
  double kib = -1;
  while (std::fgets(line, sizeof line, file) != nullptr) {
    if (std::sscanf(line, "VmRSS: %lf kB", &kib) == 1) break;
  }
  std::fclose(file);
  return kib < 0 ? -1 : kib / 1024.0;
}

struct Bench {
  explicit Bench(const Flags& f) : dir(f) {}
  RunDir dir;  // first, so it is removed last: after the engine has closed its store
  // Handler calls so far. The handler adds with release after writing started[seq]; a reader
  // that loads the final count with acquire sees every stamp.
  std::atomic<int64_t> done{0};
  // WaitDone's target, and the word it sleeps on: the handler that brings `done` to the target
  // sets it and wakes the waiter (a polling waiter would take the CPU from the engine thousands
  // of times a second).
  std::atomic<int64_t> target{INT64_MAX};
  std::atomic<uint32_t> reached{0};
  std::vector<int64_t> started;  // steady ns per seq; empty when not stamping
  // Last, so it is destroyed first: its destructor waits for running handlers, which use the
  // fields above.
  std::unique_ptr<engine::Engine> engine;
};

std::optional<storage::Durability> DurabilityOf(const std::string& mode) {
  return storage::ParseDurability(mode);
}

bool OpenEngine(const Flags& f, int64_t workers, Bench* bench, Failure* failure);

// Opens a fresh engine with `workers` workers serving "default", and registers the handler.
// An engine that cannot be opened is a configuration error (exit 2).
std::unique_ptr<Bench> OpenBench(const Flags& f, int64_t workers, size_t stamp_slots,
                                 Failure* failure) {
  auto bench = std::make_unique<Bench>(f);
  bench->started.assign(stamp_slots, 0);
  if (!OpenEngine(f, workers, bench.get(), failure)) return nullptr;
  return bench;
}

// Opens the engine of `bench` on its directory and registers the handler.
bool OpenEngine(const Flags& f, int64_t workers, Bench* bench, Failure* failure) {
  engine::EngineOptions options;
  options.durability = *DurabilityOf(f.mode);
  options.data_dir = bench->dir.path();
  options.groups = {
      {.name = "default", .queues = {"default"}, .workers = static_cast<int>(workers)}};
  auto opened = engine::Engine::Open(std::move(options));
  if (!opened.ok()) {
    *failure = {"cannot open the engine in mode '" + f.mode + "': " + opened.status().ToString(),
                2};
    return false;
  }
  bench->engine = std::move(opened).value();
  Bench* b = bench;
  storage::Status s = bench->engine->RegisterHandler(
      std::string(kNoop), [b](engine::TaskContext& ctx) -> engine::HandlerResult {
        if (!b->started.empty()) {
          const int64_t now = SteadyNanos();          // first, so parsing the seq is not counted
          const std::string& data = ctx.data_json();  // {"s":<seq>}
          uint64_t seq = 0;
          if (data.size() > 5) std::from_chars(data.data() + 5, data.data() + data.size(), seq);
          if (seq < b->started.size()) b->started[seq] = now;
        }
        if (b->done.fetch_add(1, std::memory_order_seq_cst) + 1 ==
            b->target.load(std::memory_order_seq_cst)) {
          b->reached.store(1, std::memory_order_seq_cst);
          storage::FutexWakeAll(b->reached);
        }
        return boost::json::value(nullptr);
      });
  if (!s.ok()) {
    *failure = {"cannot register the handler: " + s.ToString(), 2};
    return false;
  }
  return true;
}

// A request for one no-op task. (Built field by field: GCC 12 warns about designated
// initializers that leave members to their defaults.)
engine::EnqueueRequest NoopRequest() {
  engine::EnqueueRequest request;
  request.name = kNoop;
  return request;
}

// How often a sleeping wait of the harness wakes to look at its time limit (--max-wait).
constexpr timespec kRecheck{0, 100'000'000};  // 100 ms

// Waits until the handler has run `target` times, or `failed` is set, or `limit` passes.
bool WaitDone(Bench& b, int64_t target, double limit_s, const std::atomic<bool>* failed = nullptr) {
  const auto start = SteadyClock::now();
  b.reached.store(0, std::memory_order_seq_cst);
  b.target.store(target, std::memory_order_seq_cst);
  // Either the handler that reaches the target sees it set, or this load sees that handler's
  // count (both sequentially consistent).
  bool ok = true;
  while (b.done.load(std::memory_order_seq_cst) < target) {
    if ((failed != nullptr && failed->load(std::memory_order_acquire)) ||
        SecondsSince(start) > limit_s) {
      ok = false;
      break;
    }
    // Sleeps until the handler wakes it; every kRecheck it looks at the failure flag and limit.
    storage::FutexWaitFor(b.reached, 0, kRecheck);
  }
  b.target.store(INT64_MAX, std::memory_order_seq_cst);
  return ok;
}

// Waits until the engine counts `target` completions (Stats().completed), polling every 1 ms.
bool WaitStatsCompleted(const Bench& b, uint64_t target, double limit_s, uint64_t* last) {
  const auto start = SteadyClock::now();
  for (;;) {
    *last = b.engine->Stats().completed;
    if (*last >= target) return *last == target;
    if (SecondsSince(start) > limit_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// ---------------------------------------------------------------------------------------------
// Results.

// One figure of a run: name (the JSON field) and value.
struct Figure {
  std::string name;
  double value = 0;
};
using Run = std::vector<Figure>;

struct ScenarioResult {
  std::string scenario;
  int64_t producers = 0;
  int64_t workers = 0;
  int64_t tasks = 0;
  std::vector<Run> runs;  // every run has the same figures in the same order
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Run MedianRun(const std::vector<Run>& runs) {
  Run out = runs.front();
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<double> values;
    for (const Run& r : runs) values.push_back(r[i].value);
    out[i].value = Median(std::move(values));
  }
  return out;
}

// Exact quantile (nearest rank) of sorted nanosecond samples, in microseconds.
double QuantileUs(const std::vector<int64_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted_ns.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  i = std::min(i, sorted_ns.size() - 1);
  return static_cast<double>(sorted_ns[i]) / 1000.0;
}

void AddLatencyFigures(std::vector<int64_t> ns, Run& run) {
  std::sort(ns.begin(), ns.end());
  run.push_back({"p50_us", QuantileUs(ns, 0.50)});
  run.push_back({"p99_us", QuantileUs(ns, 0.99)});
  run.push_back({"p999_us", QuantileUs(ns, 0.999)});
  run.push_back({"max_us", ns.empty() ? 0 : static_cast<double>(ns.back()) / 1000.0});
}

// ---------------------------------------------------------------------------------------------
// Scenarios. Each returns one run's figures, or a failure.

// The acknowledgements of one producer thread's clients (RunClients). Owned by the scenario, and
// declared before its engine: a wake-up deferred to the end of a commit's callbacks may run after
// the producer has given up (--max-wait), never after the engine is closed.
struct ClientAcks {
  std::atomic<uint32_t> acked{0};  // acknowledgements so far (wraps; compared as a count)
  // 1 while the thread sleeps on `acked` and no acknowledgement has woken it yet (the first
  // one clears it). Pairs with `acked` (both seq_cst): the thread sets it, then reads `acked`;
  // an acknowledgement adds to `acked`, then reads it. One of them sees the other.
  std::atomic<uint32_t> waiting{0};
  std::mutex mu;
  storage::Status error = storage::Status::Ok();  // GUARDED_BY(mu)

  // Wakes the thread if it sleeps; a CallbackBatch action (`arg` is the ClientAcks).
  static void Wake(void* arg, int /*times*/) {
    auto* a = static_cast<ClientAcks*>(arg);
    if (a->waiting.load(std::memory_order_seq_cst) != 0 &&
        a->waiting.exchange(0, std::memory_order_seq_cst) != 0) {
      storage::FutexWakeAll(a->acked);
    }
  }
};

// `clients` concurrent producers on the calling thread, `total` tasks among them: each client
// keeps one EnqueueAsync of one no-op task in flight and sends its next once the last is
// acknowledged (its record written, fsynced in sync). The thread sleeps while every client waits,
// as an HTTP I/O thread serving `clients` connections does. `acks` must outlive the engine.
// Returns the first enqueue error.
storage::Status RunClients(engine::Engine& engine, ClientAcks& acks, int64_t total, int64_t clients,
                           double limit_s) {
  auto on_ack = [&acks](storage::Result<std::vector<engine::EnqueueResult>> r) {
    if (!r.ok()) {
      std::lock_guard lock(acks.mu);
      if (acks.error.ok()) acks.error = r.status();
    }
    acks.acked.fetch_add(1, std::memory_order_seq_cst);
    // One wake-up per commit at most, as an event loop fed by a completion queue gets: the
    // store answers a commit's writes in one CallbackBatch, and the wake-up waits for its end.
    // Woken at the first acknowledgement instead, the thread (on a small machine often on the
    // answering thread's core, which it then took over) saw one acknowledgement, sent one
    // enqueue and slept again, once per acknowledgement: 2 x 32 clients in `async` made 0.20
    // sleeps and 0.18 preemptions of the commit thread per task, against 0.03 and 0.02 now.
    if (!storage::CallbackBatch::Defer(&ClientAcks::Wake, &acks)) ClientAcks::Wake(&acks, 1);
  };
  auto send = [&] {
    std::vector<engine::EnqueueRequest> one(1);
    one[0] = NoopRequest();
    engine.EnqueueAsync(std::move(one), on_ack);
  };
  int64_t sent = 0;
  uint32_t seen = 0;
  for (; sent < std::min(total, clients); ++sent) send();
  auto last_progress = SteadyClock::now();
  for (int64_t acked_total = 0; acked_total < total;) {
    uint32_t now = acks.acked.load(std::memory_order_acquire);
    if (now == seen) {
      if (SecondsSince(last_progress) > limit_s) {
        // Outstanding callbacks use `acks`, which outlives the engine: returning now is safe.
        return storage::Status::DeadlineExceeded("no enqueue acknowledged within --max-wait (" +
                                                 std::to_string(acked_total) + " of " +
                                                 std::to_string(total) + " so far)");
      }
      acks.waiting.store(1, std::memory_order_seq_cst);
      now = acks.acked.load(std::memory_order_seq_cst);
      // Every kRecheck at the latest it looks at the clock.
      if (now == seen) storage::FutexWaitFor(acks.acked, seen, kRecheck);
      acks.waiting.store(0, std::memory_order_relaxed);
      continue;
    }
    last_progress = SteadyClock::now();
    const uint32_t fresh = now - seen;
    seen = now;
    acked_total += fresh;
    for (uint32_t i = 0; i < fresh && sent < total; ++i, ++sent) send();
  }
  std::lock_guard lock(acks.mu);
  return acks.error;
}

std::optional<Run> RunThroughput(const Flags& f, Failure* failure) {
  const int64_t producers = f.producers;
  // Before the engine: callbacks and their deferred wake-ups use them until it is closed.
  std::vector<ClientAcks> acks(static_cast<size_t>(producers));
  std::unique_ptr<Bench> b = OpenBench(f, f.workers, 0, failure);
  if (b == nullptr) return std::nullopt;

  std::latch ready(producers + 1);
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  std::string error;  // GUARDED_BY(error_mu): the first enqueue error
  std::vector<double> enqueue_seconds(static_cast<size_t>(producers), 0);
  std::vector<std::thread> threads;
  for (int64_t p = 0; p < producers; ++p) {
    const int64_t share = f.tasks / producers + (p < f.tasks % producers ? 1 : 0);
    threads.emplace_back([&, p, share] {
      pthread_setname_np(pthread_self(), "producer");  // for top -H and perf
      auto fail = [&](const storage::Status& s) {
        std::lock_guard lock(error_mu);
        if (error.empty()) error = "enqueue failed: " + s.ToString();
        // Release pairs with the waiter's acquire: it sees `error` once it sees the flag.
        failed.store(true, std::memory_order_release);
      };
      ready.arrive_and_wait();
      const auto start = SteadyClock::now();
      if (f.inflight > 1) {
        if (storage::Status s = RunClients(*b->engine, acks[p], share, f.inflight, f.max_wait);
            !s.ok())
          return fail(s);
      } else if (f.batch <= 1) {
        for (int64_t i = 0; i < share; ++i) {
          auto r = b->engine->Enqueue(NoopRequest());
          if (!r.ok()) return fail(r.status());
        }
      } else {
        for (int64_t sent = 0; sent < share;) {
          const int64_t k = std::min(f.batch, share - sent);
          std::vector<engine::EnqueueRequest> requests(static_cast<size_t>(k));
          for (auto& req : requests) req.name = kNoop;
          auto r = b->engine->EnqueueBatch(std::move(requests));
          if (!r.ok()) return fail(r.status());
          sent += k;
        }
      }
      enqueue_seconds[static_cast<size_t>(p)] = SecondsSince(start);
    });
  }
  ready.arrive_and_wait();
  const OthersProbe probe;
  const auto start = SteadyClock::now();
  const bool all_ran = WaitDone(*b, f.tasks, f.max_wait, &failed);
  // The run ends once the engine counts every task COMPLETED: in sync and async mode, once
  // every completion record is written.
  uint64_t completed = 0;
  const bool all_counted =
      all_ran && WaitStatsCompleted(*b, static_cast<uint64_t>(f.tasks), f.max_wait, &completed);
  const double seconds = SecondsSince(start);
  const double others_pct = probe.OthersPct();
  for (auto& t : threads) t.join();
  if (failed.load(std::memory_order_acquire)) {
    std::lock_guard lock(error_mu);
    *failure = {error, 1};
    return std::nullopt;
  }
  if (!all_ran) {
    *failure = {"throughput: only " + std::to_string(b->done.load()) + " of " +
                    std::to_string(f.tasks) + " handlers ran within --max-wait",
                1};
    return std::nullopt;
  }
  if (!all_counted) {
    *failure = {"throughput: Stats().completed is " + std::to_string(completed) + ", expected " +
                    std::to_string(f.tasks),
                1};
    return std::nullopt;
  }
  const double enqueue_span = *std::max_element(enqueue_seconds.begin(), enqueue_seconds.end());
  Run run;
  run.push_back({"seconds", seconds});
  run.push_back({"tasks_per_sec", static_cast<double>(f.tasks) / seconds});
  run.push_back(
      {"enqueue_per_sec", enqueue_span > 0 ? static_cast<double>(f.tasks) / enqueue_span : 0});
  // With every task finished and (sync/async) in the store: what memory holds then.
  run.push_back({"rss_mib", ResidentMiB()});
  if (auto* rocks = dynamic_cast<storage::RocksDbTaskStore*>(&b->engine->store())) {
    // Group commit at work: how many records each WAL write (and fsync) carried.
    const storage::CommitStats cs = rocks->commit_stats();
    run.push_back({"commits", static_cast<double>(cs.commits)});
    run.push_back(
        {"records_per_commit",
         cs.commits > 0 ? static_cast<double>(cs.records) / static_cast<double>(cs.commits) : 0});
    // Start records left out because the outcome shared their commit, per task.
    run.push_back({"dropped_starts_per_task",
                   static_cast<double>(cs.dropped_starts) / static_cast<double>(f.tasks)});
  }
  run.push_back({"others_cpu_pct", others_pct});
  return run;
}

std::optional<Run> RunRecovery(const Flags& f, Failure* failure) {
  auto b = std::make_unique<Bench>(f);
  {
    // The records an engine writes for enqueued tasks, written straight to a fresh store.
    storage::RocksDbStoreOptions so;
    so.path = b->dir.path();
    so.durability = *DurabilityOf(f.mode);
    auto store = storage::RocksDbTaskStore::Open(so);
    if (!store.ok()) {
      *failure = {"cannot create the store: " + store.status().ToString(), 2};
      return std::nullopt;
    }
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    std::vector<storage::TaskRecord> batch;
    for (int64_t i = 0; i < f.recovery_tasks;) {
      batch.clear();
      for (int64_t k = 0; k < 1000 && i < f.recovery_tasks; ++k, ++i) {
        auto spec = std::make_shared<storage::TaskSpec>();
        spec->id = storage::NewTaskId(now_ms);
        spec->name = kNoop;
        spec->queue = "default";
        spec->data_json = "{}";
        spec->created_ms = now_ms;
        storage::TaskRecord r;
        r.spec = std::move(spec);
        batch.push_back(std::move(r));
      }
      if (auto s = (*store)->Write(batch); !s.ok()) {
        *failure = {"cannot write the records: " + s.ToString(), 1};
        return std::nullopt;
      }
    }
  }
  const OthersProbe probe;
  const auto start = SteadyClock::now();
  // Open replays the store; its handler is registered right after, as a server does.
  if (!OpenEngine(f, f.workers, b.get(), failure)) return std::nullopt;
  const double open_seconds = SecondsSince(start);
  const double rss = ResidentMiB();
  const auto drain_start = SteadyClock::now();
  uint64_t completed = 0;
  if (!WaitStatsCompleted(*b, static_cast<uint64_t>(f.recovery_tasks), f.max_wait, &completed)) {
    *failure = {"recovery: " + std::to_string(completed) + " of " +
                    std::to_string(f.recovery_tasks) +
                    " recovered tasks completed within --max-wait",
                1};
    return std::nullopt;
  }
  const double drain_seconds = SecondsSince(drain_start);
  Run run;
  run.push_back({"open_s", open_seconds});
  run.push_back({"seconds", drain_seconds});
  run.push_back({"tasks_per_sec", static_cast<double>(f.recovery_tasks) / drain_seconds});
  run.push_back({"rss_mib", rss});
  run.push_back({"others_cpu_pct", probe.OthersPct()});
  return run;
}

// The disk scenario: plain RocksDB on a fresh directory (see the usage text).
std::optional<Run> RunDisk(const Flags& f, Failure* failure) {
  const RunDir dir(f);  // first, so it is removed after the database is closed
  rocksdb::Options options;
  options.create_if_missing = true;
  std::unique_ptr<rocksdb::Env> zero_ahead_env;  // outlives the database (declared before it)
  if (f.disk_zero_ahead) {
    zero_ahead_env = rocksdb::NewCompositeEnv(
        std::make_shared<storage::ZeroAheadWalFileSystem>(rocksdb::FileSystem::Default()));
    options.env = zero_ahead_env.get();
  }
  rocksdb::DB* opened = nullptr;
  if (rocksdb::Status s = rocksdb::DB::Open(options, dir.path(), &opened); !s.ok()) {
    *failure = {"cannot open RocksDB in " + dir.path() + ": " + s.ToString(), 2};
    return std::nullopt;
  }
  const std::unique_ptr<rocksdb::DB> db(opened);
  const auto deadline = SteadyClock::now() + std::chrono::duration<double>(f.max_wait);
  uint64_t seq = 0;
  std::string key(16, '\0');
  std::string value(128, '\0');
  std::mt19937_64 random(42);
  for (char& c : value) c = static_cast<char>(random());
  // The next record: an ascending big-endian key, its number in the value's first bytes.
  auto next = [&] {
    uint64_t v = ++seq;
    for (int i = 15; i >= 8; --i, v >>= 8) key[i] = static_cast<char>(v & 0xff);
    std::memcpy(value.data(), &seq, sizeof seq);
  };
  // Runs `one` --disk-ops times; false (and the failure set) on an error or past --max-wait.
  auto repeat = [&](const char* what, auto one) {
    for (int64_t i = 0; i < f.disk_ops; ++i) {
      if (rocksdb::Status s = one(); !s.ok()) {
        *failure = {std::string("disk: ") + what + ": " + s.ToString(), 1};
        return false;
      }
      if (SteadyClock::now() > deadline) {
        *failure = {std::string("disk: ") + what + " not done within --max-wait", 1};
        return false;
      }
    }
    return true;
  };
  const OthersProbe probe;
  rocksdb::WriteOptions synced;
  synced.sync = true;
  std::vector<int64_t> put_ns;
  put_ns.reserve(static_cast<size_t>(f.disk_ops));
  auto start = SteadyClock::now();
  if (!repeat("sync Put", [&] {
        next();
        const int64_t t0 = SteadyNanos();
        rocksdb::Status s = db->Put(synced, key, value);
        put_ns.push_back(SteadyNanos() - t0);
        return s;
      })) {
    return std::nullopt;
  }
  const double put_seconds = SecondsSince(start);
  rocksdb::WriteBatch batch;
  auto write_batch = [&](const rocksdb::WriteOptions& wo) {
    batch.Clear();
    for (int64_t k = 0; k < f.disk_batch; ++k) {
      next();
      if (rocksdb::Status s = batch.Put(key, value); !s.ok()) return s;
    }
    return db->Write(wo, &batch);
  };
  start = SteadyClock::now();
  if (!repeat("sync WriteBatch", [&] { return write_batch(synced); })) return std::nullopt;
  const double sync_seconds = SecondsSince(start);
  start = SteadyClock::now();
  if (!repeat("WriteBatch", [&] { return write_batch(rocksdb::WriteOptions()); })) {
    return std::nullopt;
  }
  const double async_seconds = SecondsSince(start);
  const double records = static_cast<double>(f.disk_ops) * static_cast<double>(f.disk_batch);
  Run run;
  AddLatencyFigures(std::move(put_ns), run);
  run.push_back({"puts_per_sec", static_cast<double>(f.disk_ops) / put_seconds});
  run.push_back({"sync_records_per_sec", records / sync_seconds});
  run.push_back({"async_records_per_sec", records / async_seconds});
  run.push_back({"others_cpu_pct", probe.OthersPct()});
  return run;
}

std::optional<Run> RunEnqueueLatency(const Flags& f, Failure* failure) {
  std::unique_ptr<Bench> b = OpenBench(f, f.workers, 0, failure);
  if (b == nullptr) return std::nullopt;
  std::vector<int64_t> ns(static_cast<size_t>(f.latency_tasks));
  const OthersProbe probe;
  const auto start = SteadyClock::now();
  for (int64_t i = 0; i < f.latency_tasks; ++i) {
    engine::EnqueueRequest request = NoopRequest();
    const auto t0 = SteadyClock::now();
    auto r = b->engine->Enqueue(std::move(request));
    const auto t1 = SteadyClock::now();
    if (!r.ok()) {
      *failure = {"enqueue failed: " + r.status().ToString(), 1};
      return std::nullopt;
    }
    ns[static_cast<size_t>(i)] =
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
  }
  const double seconds = SecondsSince(start);
  const double others_pct = probe.OthersPct();
  if (!WaitDone(*b, f.latency_tasks, f.max_wait)) {
    *failure = {"latency.enqueue: tasks did not complete within --max-wait", 1};
    return std::nullopt;
  }
  Run run;
  run.push_back({"seconds", seconds});
  run.push_back({"enqueue_per_sec", static_cast<double>(f.latency_tasks) / seconds});
  AddLatencyFigures(std::move(ns), run);
  run.push_back({"others_cpu_pct", others_pct});
  return run;
}

std::optional<Run> RunStartLatency(const Flags& f, int64_t count, Failure* failure) {
  std::unique_ptr<Bench> b = OpenBench(f, f.workers, static_cast<size_t>(count), failure);
  if (b == nullptr) return std::nullopt;
  // The data of every task, made before the clock starts so the paced loop only enqueues.
  std::vector<std::string> data(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    data[static_cast<size_t>(i)] = "{\"s\":" + std::to_string(i) + "}";
  std::vector<int64_t> sent(static_cast<size_t>(count));
  const double period_ns = 1e9 / static_cast<double>(f.rate);
  const OthersProbe probe;
  const auto start = SteadyClock::now();
  for (int64_t i = 0; i < count; ++i) {
    // Absolute deadlines: a late wake-up is not carried into the next interval, so the average
    // rate holds even when single sleeps overshoot.
    const auto deadline =
        start + std::chrono::nanoseconds(static_cast<int64_t>(period_ns * static_cast<double>(i)));
    if (SteadyClock::now() < deadline) std::this_thread::sleep_until(deadline);
    engine::EnqueueRequest request = NoopRequest();
    request.data_json = std::move(data[static_cast<size_t>(i)]);
    sent[static_cast<size_t>(i)] = SteadyNanos();
    auto r = b->engine->Enqueue(std::move(request));
    if (!r.ok()) {
      *failure = {"enqueue failed: " + r.status().ToString(), 1};
      return std::nullopt;
    }
  }
  const double seconds = SecondsSince(start);
  const double others_pct = probe.OthersPct();
  if (!WaitDone(*b, count, f.max_wait)) {
    *failure = {"latency.start: tasks did not complete within --max-wait", 1};
    return std::nullopt;
  }
  std::vector<int64_t> ns(static_cast<size_t>(count));
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = b->started[i] - sent[i];
  Run run;
  run.push_back({"seconds", seconds});
  run.push_back({"tasks_per_sec", static_cast<double>(count) / seconds});
  AddLatencyFigures(std::move(ns), run);
  run.push_back({"others_cpu_pct", others_pct});
  return run;
}

std::optional<Run> RunIdle(const Flags& f, Failure* failure) {
  std::unique_ptr<Bench> b = OpenBench(f, f.idle_workers, 0, failure);
  if (b == nullptr) return std::nullopt;
  // A burst of work first, so every worker has run and then gone idle, as in a real process.
  constexpr int64_t kBurst = 1000;
  for (int64_t i = 0; i < kBurst; ++i) {
    auto r = b->engine->Enqueue(NoopRequest());
    if (!r.ok()) {
      *failure = {"enqueue failed: " + r.status().ToString(), 1};
      return std::nullopt;
    }
  }
  if (!WaitDone(*b, kBurst, f.max_wait)) {
    *failure = {"idle: the burst did not complete within --max-wait", 1};
    return std::nullopt;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let workers park
  const OthersProbe probe;
  const double cpu0 = ProcessCpuSeconds();
  const auto start = SteadyClock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
  const double seconds = SecondsSince(start);
  const double cpu = ProcessCpuSeconds() - cpu0;
  Run run;
  run.push_back({"seconds", seconds});
  run.push_back({"cpu_pct", 100.0 * cpu / seconds});
  run.push_back({"others_cpu_pct", probe.OthersPct()});
  return run;
}

// The HTTP API served from this process over a Bench's engine. Shutdown follows bmos-taskd:
// stop accepting, stop the engine (running tasks finish, the store is flushed), then close the
// connections and join the I/O threads.
struct ServedBench {
  std::unique_ptr<Bench> bench;
  std::unique_ptr<api::ApiService> service;
  std::unique_ptr<api::Server> server;

  ServedBench() = default;
  ServedBench(const ServedBench&) = delete;
  ServedBench& operator=(const ServedBench&) = delete;
  ~ServedBench() { (void)Shutdown(std::chrono::seconds(5)); }

  // Idempotent; the engine's Stop status (OK when there was nothing to stop).
  storage::Status Shutdown(std::chrono::milliseconds drain) {
    storage::Status stopped = storage::Status::Ok();
    if (server != nullptr) server->StopAccepting();
    if (bench != nullptr && bench->engine != nullptr) stopped = bench->engine->Stop(drain);
    if (server != nullptr) server->Stop();
    server.reset();
    service.reset();  // REQUIRES the server gone: it calls the service
    bench.reset();    // the engine, then its directory
    return stopped;
  }
};

// A secret for one run: 32 random bytes as 64 hex digits.
std::string RandomSecret() {
  std::random_device device;
  std::string secret;
  for (int i = 0; i < 8; ++i) {
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(device()));
    secret += hex;
  }
  return secret;
}

std::string HttpRequest(std::string_view method, std::string_view target, uint16_t port,
                        const std::string& token, std::string_view body) {
  std::string r;
  r.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  r.append("Host: 127.0.0.1:").append(std::to_string(port)).append("\r\n");
  r.append("Authorization: Bearer ").append(token).append("\r\n");
  if (!body.empty()) {
    r.append("Content-Type: application/json\r\n");
    r.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  r.append("\r\n").append(body);
  return r;
}

std::optional<Run> RunHttp(const Flags& f, Failure* failure) {
  ServedBench served;
  served.bench = OpenBench(f, f.workers, 0, failure);
  if (served.bench == nullptr) return std::nullopt;
  engine::Engine& engine = *served.bench->engine;
  if (storage::Status s = api::RegisterTestHandlers(engine); !s.ok()) {
    *failure = {"cannot register the test handlers: " + s.ToString(), 2};
    return std::nullopt;
  }
  const std::string secret = RandomSecret();
  api::ApiServiceOptions service_options;
  service_options.auth = true;
  service_options.jwt_secret = secret;
  auto service = api::ApiService::Create(&engine, service_options);
  if (!service.ok()) {
    *failure = {"cannot create the API service: " + service.status().ToString(), 2};
    return std::nullopt;
  }
  served.service = std::move(service).value();
  api::ServerOptions server_options;
  server_options.address = "127.0.0.1";
  server_options.port = 0;
  server_options.io_threads = static_cast<int>(f.io_threads);
  auto server = api::Server::Start(server_options, served.service.get());
  if (!server.ok()) {
    *failure = {"cannot start the server: " + server.status().ToString(), 2};
    return std::nullopt;
  }
  served.server = std::move(server).value();
  const uint16_t port = served.server->port();

  api::Claims claims;
  claims.subject = "bmos-taskbench";
  claims.role = "admin";
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  claims.iat = now_s;
  claims.exp = now_s + 7 * 24 * 3600;
  const std::string token = api::SignJwt(secret, claims);

  HttpLoadOptions load;
  load.host = "127.0.0.1";
  load.port = port;
  load.connections = static_cast<int>(f.connections);
  load.client_threads = static_cast<int>(f.client_threads);
  load.warmup_s = f.warmup_s;
  load.duration_s = f.duration_s;
  load.max_wait_s = f.max_wait;
  if (f.http_op == "enqueue") {
    load.requests.push_back(
        HttpRequest("POST", "/api/v1/tasks/enqueue", port, token, R"({"task_name":"bmos.noop"})"));
  } else {
    // The tasks to read, enqueued straight into the engine and run to completion first, so
    // every GET reads a finished task's record.
    for (int64_t i = 0; i < f.get_tasks; ++i) {
      engine::EnqueueRequest request;
      request.name = "bmos.noop";
      auto r = engine.Enqueue(std::move(request));
      if (!r.ok()) {
        *failure = {"enqueue failed: " + r.status().ToString(), 1};
        return std::nullopt;
      }
      char id[36];
      r->id.Format(id);
      load.requests.push_back(
          HttpRequest("GET", "/api/v1/tasks/" + std::string(id, sizeof id), port, token, ""));
    }
    uint64_t completed = 0;
    if (!WaitStatsCompleted(*served.bench, static_cast<uint64_t>(f.get_tasks), f.max_wait,
                            &completed)) {
      *failure = {"http.get: " + std::to_string(completed) + " of " + std::to_string(f.get_tasks) +
                      " tasks completed within --max-wait",
                  1};
      return std::nullopt;
    }
  }

  const OthersProbe probe;
  storage::Result<HttpLoadResult> result = RunHttpLoad(load);
  const double others_pct = probe.OthersPct();
  double records_per_commit = -1;
  if (auto* rocks = dynamic_cast<storage::RocksDbTaskStore*>(&engine.store())) {
    const storage::CommitStats cs = rocks->commit_stats();
    records_per_commit =
        cs.commits > 0 ? static_cast<double>(cs.records) / static_cast<double>(cs.commits) : 0;
  }
  const storage::Status stopped =
      served.Shutdown(std::chrono::milliseconds(static_cast<int64_t>(f.max_wait * 1000)));
  if (!result.ok()) {
    *failure = {result.status().ToString(), 1};
    return std::nullopt;
  }
  if (!result->clean()) {
    *failure = {"answers other than 200, or lost connections (" + result->Summary() + ")", 1};
    return std::nullopt;
  }
  if (result->measured == 0) {
    *failure = {"no answer completed within the measured window (" + result->Summary() + ")", 1};
    return std::nullopt;
  }
  if (!stopped.ok()) {
    *failure = {"engine stop: " + stopped.ToString(), 1};
    return std::nullopt;
  }
  const double requests = static_cast<double>(result->measured);
  Run run;
  run.push_back({"seconds", result->measured_s});
  run.push_back({"requests", requests});
  run.push_back({"requests_per_sec", requests / result->measured_s});
  run.push_back({"p50_us", static_cast<double>(result->p50_ns) / 1000.0});
  run.push_back({"p99_us", static_cast<double>(result->p99_ns) / 1000.0});
  run.push_back({"p999_us", static_cast<double>(result->p999_ns) / 1000.0});
  run.push_back({"max_us", static_cast<double>(result->max_ns) / 1000.0});
  run.push_back({"cpu_pct", 100.0 * result->process_cpu_s / result->measured_s});
  run.push_back({"cpu_us_per_req", 1e6 * result->process_cpu_s / requests});
  run.push_back({"client_cpu_us_per_req", 1e6 * result->client_cpu_s / requests});
  if (records_per_commit >= 0) run.push_back({"records_per_commit", records_per_commit});
  run.push_back({"others_cpu_pct", others_pct});
  return run;
}

// ---------------------------------------------------------------------------------------------
// The scheduler.

double UnixSecondsNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The first fire time of job i of the schedule scenario (Unix seconds): jobs spread evenly over
// one interval after `base`, or all at `base` (--aligned).
double FirstFire(const Flags& f, double base, int64_t i) {
  if (f.aligned) return base;
  return base + static_cast<double>(f.interval_ms) / 1000.0 * static_cast<double>(i) /
                    static_cast<double>(f.jobs);
}

// How long adding the jobs may take before their first fires (a generous bound: about 100 µs a
// job, and at least 1 s).
double SetupSeconds(const Flags& f) { return 1.0 + 1e-4 * static_cast<double>(f.jobs); }

// Adds `jobs` interval jobs "bench-<i>" running the no-op task, job i with the trigger config
// `trigger(i)`. False (and `failure` set) at the first refusal.
bool AddJobs(engine::Scheduler& scheduler, int64_t jobs, Failure* failure,
             const std::function<boost::json::object(int64_t)>& trigger) {
  for (int64_t i = 0; i < jobs; ++i) {
    engine::JobSpec spec;
    spec.id = "bench-" + std::to_string(i);
    spec.name = spec.id;
    spec.function = kNoop;
    spec.type = engine::TriggerType::kInterval;
    spec.trigger_config = trigger(i);
    auto added = scheduler.Add(std::move(spec));
    if (!added.ok()) {
      *failure = {"cannot add job " + std::to_string(i) + ": " + added.status().ToString(), 1};
      return false;
    }
  }
  return true;
}

// The schedule scenario: `baseline` runs the plain timed loop instead of the scheduler.
std::optional<Run> RunSchedule(const Flags& f, bool baseline, Failure* failure) {
  std::unique_ptr<Bench> b = OpenBench(f, f.workers, 0, failure);
  if (b == nullptr) return std::nullopt;
  const double base = UnixSecondsNow() + SetupSeconds(f);
  const double interval_s = static_cast<double>(f.interval_ms) / 1000.0;
  std::unique_ptr<engine::Scheduler> scheduler;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> base_fires{0};
  // Shared with the baseline's enqueue callbacks, which may run until the engine closes.
  auto base_failed = std::make_shared<std::atomic<bool>>(false);
  std::thread loop;
  if (!baseline) {
    auto opened = engine::Scheduler::Open(b->engine.get());
    if (!opened.ok()) {
      *failure = {"cannot open the scheduler: " + opened.status().ToString(), 2};
      return std::nullopt;
    }
    scheduler = std::move(opened).value();
    const bool added = AddJobs(*scheduler, f.jobs, failure, [&](int64_t i) {
      return boost::json::object{{"seconds", interval_s}, {"start_date", FirstFire(f, base, i)}};
    });
    if (!added) return std::nullopt;
  } else {
    // The same tasks at the same times: sleep until the next due time, enqueue what is due.
    loop = std::thread([&] {
      int64_t round = 0;
      double last_pass = 0;
      while (!stop.load(std::memory_order_acquire)) {
        for (int64_t i = 0; i < f.jobs && !stop.load(std::memory_order_acquire);) {
          const double due = FirstFire(f, base, i) + interval_s * static_cast<double>(round);
          // The scheduler's default min_wake_interval (500 µs) between passes, so both enqueue
          // the same batches.
          const double earliest = last_pass + 500e-6;
          const auto wait =
              std::chrono::duration<double>(std::max(due, earliest) - UnixSecondsNow());
          if (wait.count() > 0) std::this_thread::sleep_for(wait);
          last_pass = UnixSecondsNow();
          const double now = UnixSecondsNow();
          std::vector<engine::EnqueueRequest> requests;
          while (i < f.jobs &&
                 FirstFire(f, base, i) + interval_s * static_cast<double>(round) <= now) {
            requests.push_back(NoopRequest());
            ++i;
          }
          const auto n = static_cast<int64_t>(requests.size());
          b->engine->EnqueueAsync(
              std::move(requests),
              [base_failed](storage::Result<std::vector<engine::EnqueueResult>> r) {
                if (!r.ok()) base_failed->store(true);
              });
          base_fires.fetch_add(n, std::memory_order_relaxed);
        }
        ++round;
      }
    });
  }
  const double setup_left = base - UnixSecondsNow();
  if (setup_left < 0) {
    *failure = {"adding the jobs took longer than the " + std::to_string(SetupSeconds(f)) +
                    " s allowed before their first fires",
                1};
    return std::nullopt;
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(setup_left + f.warmup_s));
  const auto fires = [&]() -> int64_t {
    return baseline ? base_fires.load() : static_cast<int64_t>(scheduler->Stats().fired_total);
  };
  const OthersProbe probe;
  const int64_t fires0 = fires();
  const double cpu0 = ProcessCpuSeconds();
  const int64_t timer0 = baseline ? 0 : scheduler->Stats().timer_cpu_us;
  const auto start = SteadyClock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
  const double measured = SecondsSince(start);
  const double cpu = ProcessCpuSeconds() - cpu0;
  const int64_t fired = fires() - fires0;
  Run run;
  run.push_back({"fires_per_sec", static_cast<double>(fired) / measured});
  if (!baseline) {
    const engine::SchedulerStats st = scheduler->Stats();
    if (st.missed_total + st.skipped_total > 0) {
      *failure = {std::to_string(st.missed_total) + " missed and " +
                      std::to_string(st.skipped_total) + " skipped runs",
                  1};
      return std::nullopt;
    }
    run.push_back({"p50_us", st.lateness.p50_ms * 1000});
    run.push_back({"p99_us", st.lateness.p99_ms * 1000});
    run.push_back({"p999_us", st.lateness.p999_ms * 1000});
    run.push_back({"max_us", st.lateness.max_ms * 1000});
    run.push_back(
        {"timer_cpu_pct", 100.0 * static_cast<double>(st.timer_cpu_us - timer0) / 1e6 / measured});
    scheduler->Stop();
  } else {
    stop.store(true, std::memory_order_release);
    loop.join();
    if (base_failed->load()) {
      *failure = {"an enqueue of the baseline failed", 1};
      return std::nullopt;
    }
  }
  run.push_back({"cpu_pct", 100.0 * cpu / measured});
  run.push_back({"others_cpu_pct", probe.OthersPct()});
  return run;
}

std::optional<Run> RunScheduleRestart(const Flags& f, Failure* failure) {
  std::unique_ptr<Bench> b = OpenBench(f, f.workers, 0, failure);
  if (b == nullptr) return std::nullopt;
  {
    auto opened = engine::Scheduler::Open(b->engine.get());
    if (!opened.ok()) {
      *failure = {"cannot open the scheduler: " + opened.status().ToString(), 2};
      return std::nullopt;
    }
    const bool added = AddJobs(**opened, f.jobs, failure, [](int64_t) {
      return boost::json::object{{"hours", 1}};
    });
    if (!added) return std::nullopt;
    (*opened)->Stop();
  }
  b->engine.reset();  // closes the store
  const OthersProbe probe;
  const auto start = SteadyClock::now();
  if (!OpenEngine(f, f.workers, b.get(), failure)) return std::nullopt;
  const double engine_open = SecondsSince(start);
  const auto sched_start = SteadyClock::now();
  auto reopened = engine::Scheduler::Open(b->engine.get());
  const double open = SecondsSince(sched_start);
  if (!reopened.ok()) {
    *failure = {"cannot reopen the scheduler: " + reopened.status().ToString(), 1};
    return std::nullopt;
  }
  const engine::SchedulerStats st = (*reopened)->Stats();
  if (static_cast<int64_t>(st.jobs) != f.jobs) {
    *failure = {"reopened with " + std::to_string(st.jobs) + " jobs, not " + std::to_string(f.jobs),
                1};
    return std::nullopt;
  }
  Run run;
  run.push_back({"engine_open_s", engine_open});
  run.push_back({"open_s", open});
  run.push_back({"rss_mib", ResidentMiB()});
  run.push_back({"others_cpu_pct", probe.OthersPct()});
  (*reopened)->Stop();
  return run;
}

// ---------------------------------------------------------------------------------------------
// Output.

struct Column {
  std::string_view header;
  std::string_view figure;  // the Figure name shown; empty for the fixed columns
  int width;
  int decimals;
};
constexpr Column kColumns[] = {
    {"seconds", "seconds", 9, 3},
    {"tasks/s", "tasks_per_sec", 12, 0},
    {"enqueue/s", "enqueue_per_sec", 12, 0},
    {"req/s", "requests_per_sec", 10, 0},
    {"fires/s", "fires_per_sec", 10, 0},
    {"p50_us", "p50_us", 9, 2},
    {"p99_us", "p99_us", 9, 2},
    {"p99.9_us", "p999_us", 9, 2},
    {"max_us", "max_us", 10, 2},
    {"tmr_cpu_%", "timer_cpu_pct", 9, 3},
    {"cpu_%", "cpu_pct", 7, 3},
    {"cpu_us/req", "cpu_us_per_req", 10, 1},
    {"cli_us/req", "client_cpu_us_per_req", 10, 1},
    {"eng_open_s", "engine_open_s", 10, 3},
    {"open_s", "open_s", 7, 3},
    {"rss_MiB", "rss_mib", 8, 1},
    {"rec/commit", "records_per_commit", 10, 1},
    {"put/s", "puts_per_sec", 9, 0},
    {"syncrec/s", "sync_records_per_sec", 11, 0},
    {"asyncrec/s", "async_records_per_sec", 11, 0},
    {"others_%", "others_cpu_pct", 8, 1},
};

void PrintTableHeader() {
  std::printf("%-16s %-7s %-6s %4s %4s %10s", "scenario", "mode", "run", "prod", "wrk", "tasks");
  for (const Column& c : kColumns) {
    std::printf(" %*.*s", c.width, static_cast<int>(c.header.size()), c.header.data());
  }
  std::printf("\n");
}

void PrintTableRow(const Flags& f, const ScenarioResult& r, const std::string& label,
                   const Run& run) {
  std::printf("%-16s %-7s %-6s %4" PRId64 " %4" PRId64 " %10" PRId64, r.scenario.c_str(),
              f.mode.c_str(), label.c_str(), r.producers, r.workers, r.tasks);
  for (const Column& c : kColumns) {
    auto it = std::find_if(run.begin(), run.end(),
                           [&](const Figure& fig) { return fig.name == c.figure; });
    if (it == run.end()) {
      std::printf(" %*s", c.width, "-");
    } else {
      std::printf(" %*.*f", c.width, c.decimals, it->value);
    }
  }
  std::printf("\n");
}

std::string JsonNumber(double v) {
  char buf[64];
  if (std::fabs(v) >= 1000 && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f", v);
  }
  return buf;
}

std::string JsonFigures(const Run& run) {
  std::string out;
  for (const Figure& fig : run) {
    if (!out.empty()) out += ',';
    out += '"' + fig.name + "\":" + JsonNumber(fig.value);
  }
  return out;
}

void PrintJson(const Flags& f, const ScenarioResult& r) {
  std::string line = "{\"scenario\":\"" + r.scenario + "\",\"mode\":\"" + f.mode + "\"";
  line += ",\"allocator\":\"" + storage::AllocatorName() + "\"";
  line += ",\"producers\":" + std::to_string(r.producers);
  line += ",\"workers\":" + std::to_string(r.workers);
  line += ",\"tasks\":" + std::to_string(r.tasks);
  if (r.scenario == "throughput") {
    line += ",\"batch\":" + std::to_string(f.batch);
    line += ",\"inflight\":" + std::to_string(f.inflight);
  }
  if (r.scenario == "latency.start") line += ",\"rate\":" + std::to_string(f.rate);
  if (r.scenario.starts_with("schedule")) {
    line += ",\"jobs\":" + std::to_string(f.jobs);
    line += ",\"interval_ms\":" + std::to_string(f.interval_ms);
    line += std::string(",\"aligned\":") + (f.aligned ? "true" : "false");
  }
  if (r.scenario.starts_with("http.")) {
    line += ",\"connections\":" + std::to_string(f.connections);
    line += ",\"client_threads\":" + std::to_string(f.client_threads);
    line += ",\"io_threads\":" + std::to_string(f.io_threads);
    line += ",\"warmup_s\":" + JsonNumber(f.warmup_s);
    line += ",\"duration_s\":" + JsonNumber(f.duration_s);
    line += ",\"auth\":true";
  }
  line += ",\"repeat\":" + std::to_string(r.runs.size());
  line += ",\"median\":{" + JsonFigures(MedianRun(r.runs)) + "}";
  line += "," + JsonFigures(MedianRun(r.runs));
  line += ",\"runs\":[";
  for (size_t i = 0; i < r.runs.size(); ++i) {
    if (i > 0) line += ',';
    line += '{' + JsonFigures(r.runs[i]) + '}';
  }
  line += "]}";
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void Report(const Flags& f, const ScenarioResult& r) {
  if (f.json) {
    PrintJson(f, r);
    return;
  }
  // The header goes out with the first result, so a run that fails at once prints no table.
  static bool header_printed = false;
  if (!header_printed) {
    std::printf("malloc: %s\n", storage::AllocatorName().c_str());
    PrintTableHeader();
    header_printed = true;
  }
  for (size_t i = 0; i < r.runs.size(); ++i) PrintTableRow(f, r, std::to_string(i + 1), r.runs[i]);
  if (r.runs.size() > 1) PrintTableRow(f, r, "median", MedianRun(r.runs));
  std::fflush(stdout);
}

// Runs `one` --repeat times and reports the result. Exits on a failure.
template <typename Fn>
void RunScenario(const Flags& f, ScenarioResult result, Fn one) {
  for (int64_t i = 0; i < f.repeat; ++i) {
    Failure failure;
    std::optional<Run> run = one(&failure);
    if (!run) {
      std::fflush(stdout);
      std::fprintf(stderr, "bmos-taskbench: %s: %s\n", result.scenario.c_str(),
                   failure.message.c_str());
      std::exit(failure.exit_code);
    }
    result.runs.push_back(std::move(*run));
  }
  Report(f, result);
}

int Main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  const bool all = f.scenario == "all";
  if (all || f.scenario == "throughput") {
    RunScenario(f,
                {.scenario = "throughput",
                 .producers = f.producers * f.inflight,
                 .workers = f.workers,
                 .tasks = f.tasks,
                 .runs = {}},
                [&](Failure* failure) { return RunThroughput(f, failure); });
  }
  if (all || f.scenario == "latency") {
    RunScenario(f,
                {.scenario = "latency.enqueue",
                 .producers = 1,
                 .workers = f.workers,
                 .tasks = f.latency_tasks,
                 .runs = {}},
                [&](Failure* failure) { return RunEnqueueLatency(f, failure); });
    const int64_t count =
        std::max<int64_t>(1, std::llround(static_cast<double>(f.rate) * f.seconds));
    RunScenario(f,
                {.scenario = "latency.start",
                 .producers = 1,
                 .workers = f.workers,
                 .tasks = count,
                 .runs = {}},
                [&](Failure* failure) { return RunStartLatency(f, count, failure); });
  }
  if (f.scenario == "recovery") {
    RunScenario(f,
                {.scenario = "recovery",
                 .producers = 0,
                 .workers = f.workers,
                 .tasks = f.recovery_tasks,
                 .runs = {}},
                [&](Failure* failure) { return RunRecovery(f, failure); });
  }
  if (f.scenario == "http") {
    // A client that writes to a connection the server has closed gets EPIPE, not a signal.
    std::signal(SIGPIPE, SIG_IGN);
    RunScenario(f,
                {.scenario = "http." + f.http_op,
                 .producers = f.connections,
                 .workers = f.workers,
                 .tasks = f.http_op == "get" ? f.get_tasks : 0,
                 .runs = {}},
                [&](Failure* failure) { return RunHttp(f, failure); });
  }
  if (f.scenario == "schedule") {
    RunScenario(
        f,
        {.scenario = "schedule", .producers = 0, .workers = f.workers, .tasks = f.jobs, .runs = {}},
        [&](Failure* failure) { return RunSchedule(f, /*baseline=*/false, failure); });
    RunScenario(f,
                {.scenario = "schedule.base",
                 .producers = 0,
                 .workers = f.workers,
                 .tasks = f.jobs,
                 .runs = {}},
                [&](Failure* failure) { return RunSchedule(f, /*baseline=*/true, failure); });
  }
  if (f.scenario == "schedule-restart") {
    RunScenario(f,
                {.scenario = "schedule-restart",
                 .producers = 0,
                 .workers = f.workers,
                 .tasks = f.jobs,
                 .runs = {}},
                [&](Failure* failure) { return RunScheduleRestart(f, failure); });
  }
  if (f.scenario == "disk") {
    Flags plain = f;  // reported as mode "rocksdb": no engine, no durability mode
    plain.mode = "rocksdb";
    RunScenario(plain,
                {.scenario = "disk", .producers = 1, .workers = 0, .tasks = f.disk_ops, .runs = {}},
                [&](Failure* failure) { return RunDisk(f, failure); });
  }
  if (all || f.scenario == "idle") {
    RunScenario(
        f, {.scenario = "idle", .producers = 0, .workers = f.idle_workers, .tasks = 0, .runs = {}},
        [&](Failure* failure) { return RunIdle(f, failure); });
  }
  return 0;
}

}  // namespace
}  // namespace bmos::bench

int main(int argc, char** argv) { return bmos::bench::Main(argc, argv); }
