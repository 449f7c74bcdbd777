// bmos-task: the command-line tool of the BMOS task engine.
//
// main() dispatches to a command group or an HTTP command:
//   store   (a group) reads a task store directory directly, without a server (dump, stats)
//   schedule (a group) scheduled jobs: `schedule preview` checks a trigger locally (its next
//           fire times); add, list, get, pause, resume, run, delete and stats manage the jobs of
//           a running bmos-taskd over HTTP, with the HTTP commands' connection flags
//   enqueue, get, cancel, list, stats, wait, token
//           talk to a running bmos-taskd over HTTP through bmos::api::HttpClient (token only
//           mints a JWT from the server's secret)
// Later groups are added to kGroups; later HTTP commands to kHttpCommands.
//
// Exit status: 0 on success, 1 when the work itself failed (the store cannot be opened or read,
// the server answered an error or could not be reached, stdout cannot be written), 2 on bad
// usage (unknown command or flag, missing or bad value); `wait` adds 3 (the task ended FAILED or
// CANCELLED) and 4 (it did not finish in time).

#include <algorithm>
#include <array>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "api/http_client.h"
#include "api/jwt.h"
#include "engine/trigger.h"
#include "storage/rocksdb_task_store.h"
#include "storage/status.h"
#include "storage/task_record.h"
#include "storage/task_store.h"

namespace {

namespace json = boost::json;
using bmos::api::Role;
using bmos::storage::ListPage;
using bmos::storage::ListQuery;
using bmos::storage::Result;
using bmos::storage::RocksDbStoreOptions;
using bmos::storage::RocksDbTaskStore;
using bmos::storage::Status;
using bmos::storage::StoreCounts;
using bmos::storage::TaskRecord;
using bmos::storage::TaskState;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Records asked of the store per List call: the most one call may return.
constexpr size_t kPageSize = 1000;

using Args = std::span<const std::string_view>;

void PrintStoreUsage(FILE* out) {
  std::fputs(
      "bmos-task store: read a task store directory directly, without a server. The store is\n"
      "opened read-only, so these commands also work while a server holds the directory; they\n"
      "show the store as it was when they opened it, and never create or change a store.\n"
      "\n"
      "  bmos-task store dump --data-dir DIR [--state S] [--queue Q] [--name N] [--limit N]\n"
      "      Print every matching task record as one JSON object per line (JSON Lines), newest\n"
      "      first, in the task JSON of the HTTP API.\n"
      "      --data-dir DIR  the store's data directory (required)\n"
      "      --state S       only tasks in state S: PENDING, RUNNING, RETRYING, COMPLETED,\n"
      "                      FAILED or CANCELLED (any case)\n"
      "      --queue Q       only tasks of queue Q\n"
      "      --name N        only tasks with task name N\n"
      "      --limit N       print at most N records (N >= 1; default: all)\n"
      "\n"
      "  bmos-task store stats --data-dir DIR [--json]\n"
      "      Print the number of tasks per queue and state, the totals per state and the\n"
      "      store's approximate size on disk (SST files plus write-ahead log).\n"
      "      --data-dir DIR  the store's data directory (required)\n"
      "      --json          print one JSON object instead of a table\n",
      out);
}

// -- Command groups ----------------------------------------------------------------------------

int RunStoreGroup(Args args);
int RunScheduleGroup(Args args);
void PrintScheduleUsage(FILE* out);

bool IsScheduleHttpCommand(std::string_view command);

struct CommandGroup {
  std::string_view name;
  int (*run)(Args args);  // the arguments after the group's name; returns the exit status
  void (*print_usage)(FILE* out);
  // Whether the group's `command` talks to the server, and so also takes the HTTP commands'
  // global flags before the group's name (bmos-task --url U schedule list); null: none does.
  bool (*is_http_command)(std::string_view command) = nullptr;
};

constexpr CommandGroup kGroups[] = {
    {"store", RunStoreGroup, PrintStoreUsage},
    {"schedule", RunScheduleGroup, PrintScheduleUsage, IsScheduleHttpCommand},
};

void PrintHttpUsage(FILE* out);

void PrintUsage(FILE* out) {
  std::fputs(
      "usage: bmos-task [--url URL] [--token TOKEN] [--data-dir DIR] [--json] COMMAND [ARGS]\n"
      "       bmos-task GROUP COMMAND [FLAGS]\n"
      "       bmos-task [GROUP] [COMMAND] --help\n"
      "\n"
      "The command-line tool of the BMOS task engine.\n"
      "\n",
      out);
  PrintHttpUsage(out);
  for (const CommandGroup& group : kGroups) {
    std::fputs("\n", out);
    group.print_usage(out);
  }
  std::fputs(
      "\n"
      "Flags take their value as the next argument or after '=' (--limit 10, --limit=10).\n"
      "Exit status: 0 on success, 1 when the store cannot be opened or read, the server answered\n"
      "an error or could not be reached (or stdout cannot be written), 2 on bad usage; wait also\n"
      "exits 3 (FAILED or CANCELLED) and 4 (timeout).\n",
      out);
}

bool IsHelp(std::string_view arg) { return arg == "--help" || arg == "-h" || arg == "help"; }

// -- Flags -------------------------------------------------------------------------------------

struct FlagSpec {
  std::string_view name;  // with the dashes: "--data-dir"
  bool takes_value;
};

// Flag name -> value ("" for a switch). Values are views of argv, which outlives them.
using ParsedFlags = std::map<std::string_view, std::string_view, std::less<>>;

// Parses `args` against `specs`. Returns false after printing why (prefixed by `command`) on an
// unknown flag, a stray argument, a missing or empty value, or a repeated flag. Sets *help for
// --help. When `positional` is given, arguments that are not flags are appended to it instead of
// being stray.
bool ParseFlags(std::string_view command, Args args, std::span<const FlagSpec> specs,
                ParsedFlags* out, bool* help, std::vector<std::string_view>* positional = nullptr) {
  const std::string cmd(command);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string_view name = arg.starts_with("--") ? arg.substr(0, eq) : arg;
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr && positional != nullptr && !arg.starts_with("-")) {
      positional->push_back(arg);
      continue;
    }
    if (spec == nullptr) {
      if (arg.starts_with("-")) {
        std::fprintf(stderr, "%s: unknown flag '%.*s' (try --help)\n", cmd.c_str(),
                     static_cast<int>(name.size()), name.data());
      } else {
        std::fprintf(stderr, "%s: unexpected argument '%.*s' (try --help)\n", cmd.c_str(),
                     static_cast<int>(arg.size()), arg.data());
      }
      return false;
    }
    std::string_view value;
    if (!spec->takes_value) {
      if (eq != std::string_view::npos) {
        std::fprintf(stderr, "%s: %.*s takes no value\n", cmd.c_str(),
                     static_cast<int>(name.size()), name.data());
        return false;
      }
    } else if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      std::fprintf(stderr, "%s: %.*s needs a value\n", cmd.c_str(), static_cast<int>(name.size()),
                   name.data());
      return false;
    }
    if (spec->takes_value && value.empty()) {
      std::fprintf(stderr, "%s: %.*s needs a non-empty value\n", cmd.c_str(),
                   static_cast<int>(name.size()), name.data());
      return false;
    }
    if (!out->emplace(spec->name, value).second) {
      std::fprintf(stderr, "%s: %.*s is given more than once\n", cmd.c_str(),
                   static_cast<int>(name.size()), name.data());
      return false;
    }
  }
  return true;
}

std::optional<std::string_view> Flag(const ParsedFlags& flags, std::string_view name) {
  auto it = flags.find(name);
  if (it == flags.end()) return std::nullopt;
  return it->second;
}

// -- store -------------------------------------------------------------------------------------

// The store at `dir`, opened read-only: no lock is taken and nothing is written, so this works
// while a server holds the directory, and a missing directory or one without a store is an
// error (NotFound, FailedPrecondition) instead of a new store.
Result<std::shared_ptr<RocksDbTaskStore>> OpenStoreReadOnly(std::string_view dir) {
  RocksDbStoreOptions options;
  options.path = std::string(dir);
  // A secondary RocksDB instance (see RocksDbStoreOptions::read_only): safe beside a server
  // that holds the directory and keeps writing.
  options.read_only = true;
  return RocksDbTaskStore::Open(options);
}

void PrintError(const std::string& command, const Status& status) {
  std::fprintf(stderr, "%s: %s\n", command.c_str(), status.ToString().c_str());
}

// Reads --data-dir, which every store command requires. Prints why on failure.
std::optional<std::string_view> DataDir(const std::string& command, const ParsedFlags& flags) {
  std::optional<std::string_view> dir = Flag(flags, "--data-dir");
  if (!dir) {
    std::fprintf(stderr, "%s: --data-dir DIR is required (try --help)\n", command.c_str());
  }
  return dir;
}

// The start every store command shares: parses its flags, answers --help, and reads --data-dir.
// Returns the exit status when the command ends here (help, bad usage), or nullopt to go on.
std::optional<int> StartStoreCommand(const std::string& command, Args args,
                                     std::span<const FlagSpec> specs, ParsedFlags* flags,
                                     std::string_view* data_dir) {
  bool help = false;
  if (!ParseFlags(command, args, specs, flags, &help)) return kExitUsage;
  if (help) {
    PrintStoreUsage(stdout);
    return kExitOk;
  }
  const std::optional<std::string_view> dir = DataDir(command, *flags);
  if (!dir) return kExitUsage;
  *data_dir = *dir;
  return std::nullopt;
}

// Writes `text` and a newline to stdout; false if stdout failed (a closed pipe, a full disk).
bool WriteLine(std::string_view text) {
  return std::fwrite(text.data(), 1, text.size(), stdout) == text.size() &&
         std::fputc('\n', stdout) != EOF;
}

int FinishStdout(const std::string& command) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "%s: cannot write to stdout: %s\n", command.c_str(), std::strerror(errno));
    return kExitFailure;
  }
  return kExitOk;
}

int RunStoreDump(Args args) {
  const std::string command = "bmos-task store dump";
  static constexpr FlagSpec kSpecs[] = {{"--data-dir", true},
                                        {"--state", true},
                                        {"--queue", true},
                                        {"--name", true},
                                        {"--limit", true}};
  ParsedFlags flags;
  std::string_view data_dir;
  if (std::optional<int> done = StartStoreCommand(command, args, kSpecs, &flags, &data_dir)) {
    return *done;
  }
  const std::optional<std::string_view> dir = data_dir;

  ListQuery query;
  if (std::optional<std::string_view> state = Flag(flags, "--state")) {
    query.state = bmos::storage::ParseTaskState(*state);
    if (!query.state) {
      std::fprintf(stderr,
                   "%s: --state: unknown state '%.*s'; expected PENDING, RUNNING, RETRYING, "
                   "COMPLETED, FAILED or CANCELLED\n",
                   command.c_str(), static_cast<int>(state->size()), state->data());
      return kExitUsage;
    }
  }
  if (std::optional<std::string_view> queue = Flag(flags, "--queue")) query.queue = *queue;
  if (std::optional<std::string_view> name = Flag(flags, "--name")) query.name = *name;
  std::optional<uint64_t> limit;
  if (std::optional<std::string_view> text = Flag(flags, "--limit")) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (ec != std::errc() || end != text->data() + text->size() || n == 0) {
      std::fprintf(stderr, "%s: --limit wants a whole number from 1 to %llu, got '%.*s'\n",
                   command.c_str(),
                   static_cast<unsigned long long>(std::numeric_limits<uint64_t>::max()),
                   static_cast<int>(text->size()), text->data());
      return kExitUsage;
    }
    limit = n;
  }

  Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStoreReadOnly(*dir);
  if (!store.ok()) {
    PrintError(command, store.status());
    return kExitFailure;
  }
  // One page in memory at a time: each is printed and dropped before the next is read.
  uint64_t printed = 0;
  for (;;) {
    const uint64_t left = limit ? *limit - printed : kPageSize;
    query.limit = static_cast<size_t>(std::min<uint64_t>(kPageSize, left));
    Result<ListPage> page = (*store)->List(query);
    if (!page.ok()) {
      std::fflush(stdout);
      PrintError(command, page.status());
      return kExitFailure;
    }
    for (const TaskRecord& record : page->records) {
      if (!WriteLine(bmos::storage::ToJson(record))) return FinishStdout(command);
    }
    printed += page->records.size();
    if (!page->next_cursor || (limit && printed >= *limit)) break;
    query.before = page->next_cursor;
  }
  return FinishStdout(command);
}

// "12.3 KiB" for 12595.
std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char out[32];
  if (unit == 0) {
    std::snprintf(out, sizeof(out), "%llu bytes", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(out, sizeof(out), "%.1f %s", value, kUnits[unit]);
  }
  return out;
}

using StateCounts = std::array<uint64_t, bmos::storage::kTaskStateCount>;

uint64_t Sum(const StateCounts& counts) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  return total;
}

json::object CountsJson(const StateCounts& counts) {
  json::object o;
  for (int i = 0; i < bmos::storage::kTaskStateCount; ++i) {
    o[bmos::storage::ToString(static_cast<TaskState>(i))] = counts[i];
  }
  o["total"] = Sum(counts);
  return o;
}

void PrintStatsTable(const std::string& dir, const StoreCounts& counts, const StateCounts& totals,
                     uint64_t disk_bytes) {
  constexpr std::string_view kAll = "(all queues)";
  std::vector<std::pair<std::string_view, const StateCounts*>> rows;
  for (const auto& [queue, per_state] : counts.by_queue) rows.emplace_back(queue, &per_state);
  rows.emplace_back(kAll, &totals);

  // Column widths: the header or the widest number, whichever is wider.
  std::vector<std::string> headers = {"queue"};
  for (int i = 0; i < bmos::storage::kTaskStateCount; ++i) {
    headers.emplace_back(bmos::storage::ToString(static_cast<TaskState>(i)));
  }
  headers.emplace_back("total");
  std::vector<size_t> widths;
  for (const std::string& h : headers) widths.push_back(h.size());
  for (const auto& [queue, per_state] : rows) {
    widths[0] = std::max(widths[0], queue.size());
    for (int i = 0; i <= bmos::storage::kTaskStateCount; ++i) {
      const uint64_t n = i < bmos::storage::kTaskStateCount ? (*per_state)[i] : Sum(*per_state);
      widths[i + 1] = std::max(widths[i + 1], std::to_string(n).size());
    }
  }

  std::printf("task store %s (read-only view)\n", dir.c_str());
  std::printf("%-*s", static_cast<int>(widths[0]), headers[0].c_str());
  for (size_t i = 1; i < headers.size(); ++i) {
    std::printf("  %*s", static_cast<int>(widths[i]), headers[i].c_str());
  }
  std::printf("\n");
  for (const auto& [queue, per_state] : rows) {
    std::printf("%-*.*s", static_cast<int>(widths[0]), static_cast<int>(queue.size()),
                queue.data());
    for (int i = 0; i <= bmos::storage::kTaskStateCount; ++i) {
      const uint64_t n = i < bmos::storage::kTaskStateCount ? (*per_state)[i] : Sum(*per_state);
      std::printf("  %*llu", static_cast<int>(widths[i + 1]), static_cast<unsigned long long>(n));
    }
    std::printf("\n");
  }
  if (disk_bytes < 1024) {
    std::printf("disk: %s (approximate)\n", HumanBytes(disk_bytes).c_str());
  } else {
    std::printf("disk: %s (%llu bytes, approximate)\n", HumanBytes(disk_bytes).c_str(),
                static_cast<unsigned long long>(disk_bytes));
  }
}

int RunStoreStats(Args args) {
  const std::string command = "bmos-task store stats";
  static constexpr FlagSpec kSpecs[] = {{"--data-dir", true}, {"--json", false}};
  ParsedFlags flags;
  std::string_view data_dir;
  if (std::optional<int> done = StartStoreCommand(command, args, kSpecs, &flags, &data_dir)) {
    return *done;
  }
  const std::optional<std::string_view> dir = data_dir;
  const bool as_json = flags.contains("--json");

  Result<std::shared_ptr<RocksDbTaskStore>> store = OpenStoreReadOnly(*dir);
  if (!store.ok()) {
    PrintError(command, store.status());
    return kExitFailure;
  }
  Result<StoreCounts> counts = (*store)->Counts();
  if (!counts.ok()) {
    PrintError(command, counts.status());
    return kExitFailure;
  }
  const uint64_t disk_bytes = (*store)->ApproximateDiskBytes();
  StateCounts totals{};
  for (const auto& [queue, per_state] : counts->by_queue) {
    for (int i = 0; i < bmos::storage::kTaskStateCount; ++i) totals[i] += per_state[i];
  }

  if (as_json) {
    json::object queues;
    for (const auto& [queue, per_state] : counts->by_queue) queues[queue] = CountsJson(per_state);
    json::object out;
    out["data_dir"] = (*store)->path();
    out["queues"] = std::move(queues);
    out["totals"] = CountsJson(totals);
    out["disk_bytes"] = disk_bytes;
    WriteLine(json::serialize(out));
  } else {
    PrintStatsTable((*store)->path(), *counts, totals, disk_bytes);
  }
  return FinishStdout(command);
}

// One command of a group ("dump" of "store").
struct GroupCommand {
  std::string_view name;
  int (*run)(Args args);
};

// Runs the command of group `group` that args[0] names, with the arguments after it; answers
// --help, a missing or an unknown command.
int RunGroupCommand(std::string_view group, std::span<const GroupCommand> commands,
                    void (*print_usage)(FILE*), Args args) {
  std::string names;
  for (const GroupCommand& c : commands) names += (names.empty() ? "" : ", ") + std::string(c.name);
  const std::string prefix = "bmos-task " + std::string(group);
  if (args.empty()) {
    std::fprintf(stderr, "%s: missing command (%s)\n\n", prefix.c_str(), names.c_str());
    print_usage(stderr);
    return kExitUsage;
  }
  const std::string_view command = args[0];
  if (IsHelp(command)) {
    print_usage(stdout);
    return kExitOk;
  }
  for (const GroupCommand& c : commands) {
    if (c.name == command) return c.run(args.subspan(1));
  }
  std::fprintf(stderr, "%s: unknown command '%.*s' (commands: %s; try '%s --help')\n",
               prefix.c_str(), static_cast<int>(command.size()), command.data(), names.c_str(),
               prefix.c_str());
  return kExitUsage;
}

int RunStoreGroup(Args args) {
  static constexpr GroupCommand kCommands[] = {{"dump", RunStoreDump}, {"stats", RunStoreStats}};
  return RunGroupCommand("store", kCommands, PrintStoreUsage, args);
}

// -- schedule ----------------------------------------------------------------------------------

void PrintScheduleUsage(FILE* out) {
  std::fputs(
      "bmos-task schedule: scheduled jobs. `preview` checks a timetable locally, without a\n"
      "server; the other commands manage the jobs of a running bmos-taskd over HTTP\n"
      "(/api/v1/tasks/scheduled) and take the HTTP commands' flags --url, --token, --data-dir\n"
      "and --json, before `schedule` or after the command (see bmos-task --help).\n"
      "\n"
      "  bmos-task schedule preview --type cron|interval|date --trigger JSON --from ISO\n"
      "                             [--count N] [--tz ZONE]\n"
      "      Print the next N fire times of the trigger, one ISO 8601 instant with its UTC\n"
      "      offset per line, in the trigger's time zone. The first is the earliest fire time\n"
      "      at or after --from (a fire time equal to --from counts). An interval trigger\n"
      "      without start_date counts from --from, as if the job were created then.\n"
      "      --type T       cron, interval or date\n"
      "      --trigger JSON the trigger config as BMOS sends it, e.g. '{\"hour\": 2, \"minute\": "
      "0}'\n"
      "                     or '{\"crontab\": \"0 2 * * 1-5\"}'\n"
      "      --from ISO     the start: 2026-03-29T01:00:00+01:00, 2026-03-29 01:00 (wall time in\n"
      "                     the zone), ...\n"
      "      --count N      how many fire times (1..10000; default 10)\n"
      "      --tz ZONE      the default IANA time zone (a \"timezone\" field of the trigger wins;\n"
      "                     default UTC)\n"
      "      An invalid trigger exits 2 with the reason (naming the field) on stderr. Fewer\n"
      "      than N lines mean the trigger never fires again after the last one.\n"
      "\n"
      "  bmos-task schedule add --name NAME --function TASK --type cron|interval|date\n"
      "                         --trigger JSON [--data JSON] [--queue Q] [--priority P]\n"
      "                         [--max-retries N] [--misfire-grace SECONDS|none] [--no-coalesce]\n"
      "                         [--max-instances N] [--id JOB_ID] [--paused]\n"
      "      Add a job (POST /api/v1/tasks/scheduled); print its id, state and next run time.\n"
      "      --name NAME        the job's name (required)\n"
      "      --function TASK    the registered task each run enqueues (required)\n"
      "      --type T           cron, interval or date (required)\n"
      "      --trigger JSON     the trigger config, a JSON object as for preview (required)\n"
      "      --data JSON        the data of every run's task, a JSON object (default: {})\n"
      "      --queue Q          the queue of its tasks (default: the task's)\n"
      "      --priority P       LOW, NORMAL, HIGH or CRITICAL (any case; default NORMAL)\n"
      "      --max-retries N    attempts after a run's first failure (default: the server's)\n"
      "      --misfire-grace S  a run more than S seconds late (S > 0) is missed instead; none:\n"
      "                         no limit (default 60)\n"
      "      --no-coalesce      after a downtime run every due run, not only the latest\n"
      "      --max-instances N  most runs of the job unfinished at once (default 1)\n"
      "      --id JOB_ID        the job's id, 1..128 of A-Z a-z 0-9 . _ ~ - (default: generated)\n"
      "      --paused           add the job paused: no runs until it is resumed\n"
      "\n"
      "  bmos-task schedule list [--state active|paused|finished] [--limit N] [--cursor C]\n"
      "      Print a page of jobs by id (GET /api/v1/tasks/scheduled/) and the cursor of the\n"
      "      next page if there is one.\n"
      "      --state S   only jobs in state S (finished: the trigger fires no more)\n"
      "      --limit N   at most N jobs (default: the server's, 100)\n"
      "      --cursor C  the page after cursor C (printed by the previous page)\n"
      "\n"
      "  bmos-task schedule get JOB_ID\n"
      "      Print the job (GET /api/v1/tasks/scheduled/JOB_ID) as a key/value table.\n"
      "\n"
      "  bmos-task schedule pause JOB_ID\n"
      "  bmos-task schedule resume JOB_ID\n"
      "      Pause the job (no runs until resumed), or resume it (its next run is computed from\n"
      "      now: runs that fell due while it was paused are not made up); print its id, state\n"
      "      and next run time.\n"
      "\n"
      "  bmos-task schedule run JOB_ID\n"
      "      Enqueue a run now, outside the timetable; print its task's id and status (follow it\n"
      "      with bmos-task wait TASK_ID).\n"
      "\n"
      "  bmos-task schedule delete JOB_ID\n"
      "      Delete the job; tasks it already enqueued run on.\n"
      "\n"
      "  bmos-task schedule stats\n"
      "      Print the scheduler's totals (GET /api/v1/tasks/scheduled/stats/overview): jobs by\n"
      "      state, runs and how they ended, the next run time and the firing lateness.\n"
      "\n"
      "Exit status of the commands that talk to the server: 0 on success, 1 when the server\n"
      "answered an error (its HTTP status and detail on stderr) or could not be reached, 2 on\n"
      "bad usage (checked before any request: a missing flag, --trigger or --data not a JSON\n"
      "object, a bad number).\n",
      out);
}

int RunSchedulePreview(Args args) {
  const std::string command = "bmos-task schedule preview";
  static constexpr FlagSpec kSpecs[] = {
      {"--type", true}, {"--trigger", true}, {"--from", true}, {"--count", true}, {"--tz", true}};
  ParsedFlags flags;
  bool help = false;
  if (!ParseFlags(command, args, kSpecs, &flags, &help)) return kExitUsage;
  if (help) {
    PrintScheduleUsage(stdout);
    return kExitOk;
  }
  for (std::string_view required : {"--type", "--trigger", "--from"}) {
    if (!Flag(flags, required)) {
      std::fprintf(stderr, "%s: %.*s is required (try --help)\n", command.c_str(),
                   static_cast<int>(required.size()), required.data());
      return kExitUsage;
    }
  }
  Result<bmos::engine::TriggerType> type = bmos::engine::ParseTriggerType(*Flag(flags, "--type"));
  if (!type.ok()) {
    std::fprintf(stderr, "%s: --type: %s\n", command.c_str(), type.status().message().c_str());
    return kExitUsage;
  }
  int64_t count = 10;
  if (std::optional<std::string_view> c = Flag(flags, "--count")) {
    auto [end, ec] = std::from_chars(c->data(), c->data() + c->size(), count);
    if (ec != std::errc() || end != c->data() + c->size() || count < 1 || count > 10'000) {
      std::fprintf(stderr, "%s: --count: must be an integer in 1..10000\n", command.c_str());
      return kExitUsage;
    }
  }
  const std::string tz(Flag(flags, "--tz").value_or("UTC"));
  boost::system::error_code ec;
  json::value config = json::parse(*Flag(flags, "--trigger"), ec);
  if (ec || !config.is_object()) {
    std::fprintf(stderr, "%s: --trigger: not a JSON object%s%s\n", command.c_str(), ec ? ": " : "",
                 ec ? ec.message().c_str() : "");
    return kExitUsage;
  }
  Result<int64_t> from = bmos::engine::ParseDateTime(*Flag(flags, "--from"), tz);
  if (!from.ok()) {
    std::fprintf(stderr, "%s: --from: %s\n", command.c_str(), from.status().message().c_str());
    return kExitUsage;
  }
  bmos::engine::TriggerParseOptions options;
  options.default_timezone = tz;
  options.created_at_micros = *from;
  Result<std::unique_ptr<bmos::engine::Trigger>> trigger =
      bmos::engine::Trigger::Parse(*type, config.as_object(), options);
  if (!trigger.ok()) {
    std::fprintf(stderr, "%s: invalid trigger: %s\n", command.c_str(),
                 trigger.status().message().c_str());
    return kExitUsage;
  }
  int64_t at = *from;
  for (int64_t i = 0; i < count; ++i) {
    std::optional<int64_t> next = (*trigger)->NextFireTime(at);
    if (!next) break;
    if (!WriteLine((*trigger)->FormatTime(*next))) break;
    at = *next + 1;
  }
  return FinishStdout(command);
}

// -- HTTP commands -----------------------------------------------------------------------------
//
// Each command is one request (wait: a bounded series of them) to bmos-taskd through
// bmos::api::HttpClient. Human output is built from the server's JSON with Boost.JSON and reads
// fields defensively: a field the server does not send prints as "-", never as a crash.

constexpr int kExitWaitFailed = 3;   // wait: the task ended FAILED or CANCELLED
constexpr int kExitWaitTimeout = 4;  // wait: the task was still not finished at --timeout

constexpr std::string_view kDefaultUrl = "http://127.0.0.1:8080";
constexpr std::string_view kDefaultDataDir = "bmos-data";
constexpr std::string_view kTasksPath = "/api/v1/tasks/";
// Lifetime of the admin token minted for one command when no token is given.
constexpr int64_t kConvenienceTokenTtlSeconds = 300;

void PrintHttpUsage(FILE* out) {
  std::fputs(
      "bmos-task [--url URL] [--token TOKEN] [--data-dir DIR] [--json] COMMAND ...: talk to a\n"
      "running bmos-taskd over HTTP. These global flags may also follow the command.\n"
      "  --url URL       the server, http://HOST[:PORT] (default: $BMOS_URL, else\n"
      "                  http://127.0.0.1:8080; https is not supported)\n"
      "  --token TOKEN   the bearer token (default: $BMOS_TOKEN; else, for local use, a 5-minute\n"
      "                  admin token minted from the server's secret when one is readable here:\n"
      "                  $BMOS_JWT_SECRET, else DIR/jwt.secret; else no Authorization header)\n"
      "  --data-dir DIR  the server's data directory, where jwt.secret lives (default:\n"
      "                  $BMOS_DATA_DIR, else ./bmos-data); never created by this tool\n"
      "  --json          print the server's JSON answer as-is, on one line\n"
      "The schedule commands but preview (bmos-task schedule --help) talk to the server too and\n"
      "take the same flags.\n"
      "\n"
      "  bmos-task enqueue NAME [--data JSON] [--queue Q] [--priority P] [--max-retries N]\n"
      "                    [--delay SECONDS] [--eta ISO] [--timeout SECONDS] [--unique-key K]\n"
      "      Enqueue a task (POST /api/v1/tasks/enqueue); print its id and status.\n"
      "      --data JSON        the task's arguments, a JSON object (default: {})\n"
      "      --queue Q          the queue (default: the server's, \"default\")\n"
      "      --priority P       LOW, NORMAL, HIGH or CRITICAL (any case; default NORMAL)\n"
      "      --max-retries N    attempts after the first failure (default: the server's, 3)\n"
      "      --delay SECONDS    run no sooner than SECONDS from now\n"
      "      --eta ISO          run no sooner than this time (ISO 8601, e.g.\n"
      "                         2030-01-02T03:04:05Z)\n"
      "      --timeout SECONDS  limit on one attempt\n"
      "      --unique-key K     no second live task with the same key (the live one is shown)\n"
      "\n"
      "  bmos-task get ID\n"
      "      Print the task's record (GET /api/v1/tasks/ID) as a key/value table.\n"
      "\n"
      "  bmos-task cancel ID\n"
      "      Cancel the task (DELETE /api/v1/tasks/ID): a waiting task at once, a running one "
      "when\n"
      "      its handler observes the cancellation.\n"
      "\n"
      "  bmos-task list [--status S] [--queue Q] [--name N] [--limit N] [--cursor C]\n"
      "      Print a page of tasks, newest first (GET /api/v1/tasks/), and the cursor of the\n"
      "      next page if there is one.\n"
      "      --status S  only tasks in status S (PENDING, RUNNING, RETRYING, COMPLETED, FAILED,\n"
      "                  CANCELLED)\n"
      "      --queue Q   only tasks of queue Q\n"
      "      --name N    only tasks with task name N\n"
      "      --limit N   at most N tasks (default: the server's)\n"
      "      --cursor C  the page after cursor C (printed by the previous page)\n"
      "\n"
      "  bmos-task stats\n"
      "      Print the server's statistics (GET /api/v1/tasks/stats/overview): tasks by status\n"
      "      and queue, counters, rates, worker groups and latency percentiles.\n"
      "\n"
      "  bmos-task wait ID [--timeout SECONDS] [--interval-ms MS]\n"
      "      Poll the task until it is COMPLETED, FAILED or CANCELLED and print its record.\n"
      "      --timeout SECONDS  give up after this long (default 60)\n"
      "      --interval-ms MS   pause between polls (default 200)\n"
      "      Exit status: 0 COMPLETED, 3 FAILED or CANCELLED, 4 not finished within --timeout,\n"
      "      1 the server could not be asked.\n"
      "\n"
      "  bmos-task token --role admin|operator|viewer [--ttl SECONDS] [--subject S]\n"
      "                  [--data-dir DIR]\n"
      "      Print a JWT signed with the server's secret: $BMOS_JWT_SECRET, else DIR/jwt.secret\n"
      "      (bmos-taskd creates it at first start; this tool never does).\n"
      "      --role R       admin (everything), operator (all but cancel/delete), viewer (read)\n"
      "      --ttl SECONDS  lifetime (default 3600)\n"
      "      --subject S    the token's subject (default bmos-task)\n"
      "\n"
      "Exit status of these commands: 0 on success, 1 when the server answered an error (its\n"
      "HTTP status and detail are printed on stderr, e.g. 'bmos-task: 404: task ... not found')\n"
      "or could not be reached, 2 on bad usage; wait also exits 3 and 4 (see above).\n",
      out);
}

// The flags every HTTP command accepts, before or after the command.
constexpr FlagSpec kGlobalSpecs[] = {
    {"--url", true}, {"--token", true}, {"--data-dir", true}, {"--json", false}};

bool IsGlobalFlag(std::string_view arg) {
  const std::string_view name = arg.substr(0, arg.find('='));
  for (const FlagSpec& s : kGlobalSpecs) {
    if (s.name == name) return true;
  }
  return false;
}

// An environment variable, or nullopt when it is unset or empty.
std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::string DataDirOf(const ParsedFlags& flags) {
  if (std::optional<std::string_view> d = Flag(flags, "--data-dir")) return std::string(*d);
  if (std::optional<std::string> d = Env("BMOS_DATA_DIR")) return *d;
  return std::string(kDefaultDataDir);
}

// True when ResolveSecret(data_dir) would read an existing secret rather than create one.
bool SecretExists(const std::string& data_dir) {
  if (Env("BMOS_JWT_SECRET")) return true;
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(data_dir) / "jwt.secret", ec);
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string MintToken(const std::string& secret, Role role, std::string subject,
                      int64_t ttl_seconds) {
  bmos::api::Claims claims;
  claims.subject = std::move(subject);
  claims.role = std::string(bmos::api::ToString(role));
  claims.iat = UnixNow();
  claims.exp = claims.iat + ttl_seconds;
  return bmos::api::SignJwt(secret, claims);
}

// What every HTTP command works with once its flags are read.
struct HttpContext {
  std::string command;  // "bmos-task get", for messages
  bool as_json = false;
  std::unique_ptr<bmos::api::HttpClient> client;
};

// Builds the client from --url/$BMOS_URL and the token from --token/$BMOS_TOKEN/the secret.
// Returns the exit status when that fails (bad URL: usage; unreadable secret: failure).
std::optional<int> MakeHttpContext(const std::string& command, const ParsedFlags& flags,
                                   HttpContext* ctx) {
  ctx->command = command;
  ctx->as_json = flags.contains("--json");
  std::string url(kDefaultUrl);
  if (std::optional<std::string_view> u = Flag(flags, "--url")) {
    url = std::string(*u);
  } else if (std::optional<std::string> e = Env("BMOS_URL")) {
    url = *e;
  }
  Result<std::unique_ptr<bmos::api::HttpClient>> client = bmos::api::HttpClient::FromUrl(url);
  if (!client.ok()) {
    std::fprintf(stderr, "%s: %s\n", command.c_str(), client.status().message().c_str());
    return kExitUsage;
  }
  ctx->client = std::move(*client);
  ctx->client->set_bearer_token([&]() -> std::string {
    if (std::optional<std::string_view> t = Flag(flags, "--token")) return std::string(*t);
    if (std::optional<std::string> t = Env("BMOS_TOKEN")) return *t;
    return {};
  }());
  if (!Flag(flags, "--token") && !Env("BMOS_TOKEN")) {
    const std::string data_dir = DataDirOf(flags);
    if (SecretExists(data_dir)) {
      Result<std::string> secret = bmos::api::ResolveSecret(data_dir);
      if (!secret.ok()) {
        std::fprintf(stderr, "%s: cannot mint a token from the server's secret: %s\n",
                     command.c_str(), secret.status().ToString().c_str());
        return kExitFailure;
      }
      ctx->client->set_bearer_token(
          MintToken(*secret, Role::kAdmin, "bmos-task", kConvenienceTokenTtlSeconds));
    }
  }
  return std::nullopt;
}

// The server's error message: `detail` of a {"detail": ...} body (a string as-is, anything else
// as JSON), else the body itself (shortened), else "(empty body)".
std::string ErrorDetail(const std::string& body) {
  std::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const json::value* d = v.as_object().if_contains("detail")) {
      if (d->is_string()) return std::string(d->as_string());
      return json::serialize(*d);
    }
  }
  if (body.empty()) return "(empty body)";
  constexpr size_t kMaxShown = 300;
  std::string shown = body.substr(0, kMaxShown);
  if (body.size() > kMaxShown) shown += "...";
  for (char& c : shown) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return shown;
}

// Sends one request. On a transport error or a non-2xx answer prints why and returns nullopt.
std::optional<bmos::api::HttpResponse> Send(HttpContext& ctx, bmos::api::HttpMethod method,
                                            const std::string& target, std::string_view body = {}) {
  Result<bmos::api::HttpResponse> r = ctx.client->Request(method, target, body);
  if (!r.ok()) {
    std::fprintf(stderr, "bmos-task: %s\n", r.status().message().c_str());
    return std::nullopt;
  }
  if (r->status < 200 || r->status >= 300) {
    std::fprintf(stderr, "bmos-task: %d: %s\n", r->status, ErrorDetail(r->body).c_str());
    return std::nullopt;
  }
  return std::move(*r);
}

// The answer as a JSON object; prints why and returns nullopt when it is not one.
std::optional<json::object> ParseObject(const HttpContext& ctx, const std::string& body) {
  std::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    std::fprintf(stderr, "%s: the server's answer is not a JSON object: %s\n", ctx.command.c_str(),
                 ErrorDetail(body).c_str());
    return std::nullopt;
  }
  return std::move(v.as_object());
}

// Prints the server's body on one line (--json).
int PrintBody(const HttpContext& ctx, std::string body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  WriteLine(body);
  return FinishStdout(ctx.command);
}

// A field for a table cell: strings as they are, null or missing as "-", anything else as JSON.
std::string Cell(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

void PrintKeyValues(const json::object& o) {
  size_t width = 0;
  for (const auto& kv : o) width = std::max(width, kv.key().size());
  for (const auto& kv : o) {
    const std::string value = Cell(o, kv.key());
    std::printf("%-*.*s  %s\n", static_cast<int>(width), static_cast<int>(kv.key().size()),
                kv.key().data(), value.c_str());
  }
}

// Prints rows under a header, each column as wide as its widest cell, separated by two spaces.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const std::string& h : header) widths.push_back(h.size());
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size(), ' ');
    }
    WriteLine(line);
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

bool ParseUint(std::string_view text, uint64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool ParseSeconds(std::string_view text, double* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(*out) && *out >= 0;
}

// A count of seconds as JSON: an integer when whole (as BMOS clients send), else a double.
json::value SecondsJson(double s) {
  if (s == std::floor(s) && s < 9.0e15) return static_cast<int64_t>(s);
  return s;
}

int UsageError(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "%s: %s (try --help)\n", command.c_str(), message.c_str());
  return kExitUsage;
}

// The common start of an HTTP command: parses its flags (its own and the global ones) and
// positional arguments, answers --help (with `print_usage`), checks the number of positional
// arguments and builds the client. Returns the exit status when the command ends here.
std::optional<int> StartHttpCommand(const std::string& command, Args args,
                                    std::span<const FlagSpec> own_specs, size_t positional_count,
                                    std::string_view positional_name, ParsedFlags* flags,
                                    std::vector<std::string_view>* positional, HttpContext* ctx,
                                    void (*print_usage)(FILE*) = PrintHttpUsage) {
  std::vector<FlagSpec> specs(own_specs.begin(), own_specs.end());
  for (const FlagSpec& g : kGlobalSpecs) {
    if (std::none_of(specs.begin(), specs.end(),
                     [&](const FlagSpec& s) { return s.name == g.name; }))
      specs.push_back(g);
  }
  bool help = false;
  if (!ParseFlags(command, args, specs, flags, &help, positional)) return kExitUsage;
  if (help) {
    print_usage(stdout);
    return kExitOk;
  }
  if (positional->size() < positional_count) {
    return UsageError(command, "missing " + std::string(positional_name));
  }
  if (positional->size() > positional_count) {
    const std::string_view extra = (*positional)[positional_count];
    return UsageError(command, "unexpected argument '" + std::string(extra) + "'");
  }
  if (ctx == nullptr) return std::nullopt;
  return MakeHttpContext(command, *flags, ctx);
}

// The common end of an HTTP command: sends one request and prints the answer, the server's
// body as-is with --json, else what `print` makes of it as a JSON object. Returns the exit
// status (1 when the request failed, the answer is not a JSON object or stdout failed).
template <typename Print>
int SendAndPrint(HttpContext& ctx, bmos::api::HttpMethod method, const std::string& target,
                 std::string_view body, Print print) {
  std::optional<bmos::api::HttpResponse> r = Send(ctx, method, target, body);
  if (!r) return kExitFailure;
  if (ctx.as_json) return PrintBody(ctx, std::move(r->body));
  std::optional<json::object> o = ParseObject(ctx, r->body);
  if (!o) return kExitFailure;
  print(*o);
  return FinishStdout(ctx.command);
}

// Reads a whole-number flag into *out when given; false after printing a usage error when its
// value is not a whole number in [min, max].
bool WholeNumberFlag(const std::string& command, const ParsedFlags& flags, std::string_view name,
                     uint64_t min, uint64_t max, std::optional<uint64_t>* out) {
  std::optional<std::string_view> text = Flag(flags, name);
  if (!text) return true;
  uint64_t n = 0;
  if (!ParseUint(*text, &n) || n < min || n > max) {
    UsageError(command, std::string(name) + " wants a whole number " +
                            (max == std::numeric_limits<uint64_t>::max()
                                 ? ">= " + std::to_string(min)
                                 : "from " + std::to_string(min) + " to " + std::to_string(max)) +
                            ", got '" + std::string(*text) + "'");
    return false;
  }
  *out = n;
  return true;
}

// Reads a JSON-object flag (--data, --trigger) into *out when given; false after printing a
// usage error naming the flag when its value is not a JSON object.
bool JsonObjectFlag(const std::string& command, const ParsedFlags& flags, std::string_view name,
                    std::string_view example, std::optional<json::object>* out) {
  std::optional<std::string_view> text = Flag(flags, name);
  if (!text) return true;
  std::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) {
    UsageError(command, std::string(name) + " wants a JSON object, e.g. '" + std::string(example) +
                            "', got '" + std::string(*text) + "'");
    return false;
  }
  *out = std::move(v.as_object());
  return true;
}

// Appends "?key=value" or "&key=value" to a query string, the value percent-encoded.
void AddQuery(std::string* query, std::string_view key, std::string_view value) {
  *query += query->empty() ? "?" : "&";
  *query += key;
  *query += "=";
  *query += bmos::api::PercentEncode(value);
}

// An enqueue's answer (also a scheduled job's run-now): "TASK_ID STATUS", and why nothing was
// created when a live task had the unique key.
void PrintEnqueued(const json::object& o) {
  std::string line = Cell(o, "task_id") + " " + Cell(o, "status");
  if (const json::value* created = o.if_contains("created");
      created != nullptr && created->is_bool() && !created->as_bool()) {
    line += " (not created: a live task has this unique key)";
  }
  WriteLine(line);
}

int RunEnqueue(Args args) {
  const std::string command = "bmos-task enqueue";
  static constexpr FlagSpec kSpecs[] = {
      {"--data", true},  {"--queue", true}, {"--priority", true}, {"--max-retries", true},
      {"--delay", true}, {"--eta", true},   {"--timeout", true},  {"--unique-key", true}};
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartHttpCommand(command, args, kSpecs, 1, "task NAME", &flags, &positional, &ctx)) {
    return *done;
  }
  json::object body;
  body["task_name"] = positional[0];
  std::optional<json::object> data;
  if (!JsonObjectFlag(command, flags, "--data", R"({"file":"a.csv"})", &data)) return kExitUsage;
  body["task_data"] = data ? std::move(*data) : json::object();
  if (std::optional<std::string_view> q = Flag(flags, "--queue")) body["queue_name"] = *q;
  if (std::optional<std::string_view> p = Flag(flags, "--priority")) {
    std::string upper(*p);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    body["priority"] = upper;
  }
  if (std::optional<std::string_view> n = Flag(flags, "--max-retries")) {
    uint64_t retries = 0;
    if (!ParseUint(*n, &retries) || retries > 1000000) {
      return UsageError(command,
                        "--max-retries wants a whole number >= 0, got '" + std::string(*n) + "'");
    }
    body["max_retries"] = retries;
  }
  for (const auto& [flag, field] :
       {std::pair<std::string_view, std::string_view>{"--delay", "delay_seconds"},
        {"--timeout", "timeout_seconds"}}) {
    if (std::optional<std::string_view> t = Flag(flags, flag)) {
      double seconds = 0;
      if (!ParseSeconds(*t, &seconds)) {
        return UsageError(command, std::string(flag) + " wants a number of seconds >= 0, got '" +
                                       std::string(*t) + "'");
      }
      body[field] = SecondsJson(seconds);
    }
  }
  if (std::optional<std::string_view> eta = Flag(flags, "--eta")) body["eta"] = *eta;
  if (std::optional<std::string_view> k = Flag(flags, "--unique-key")) body["unique_key"] = *k;

  return SendAndPrint(ctx, bmos::api::HttpMethod::kPost, std::string(kTasksPath) + "enqueue",
                      json::serialize(body), PrintEnqueued);
}

std::string TaskPath(std::string_view id) {
  return std::string(kTasksPath) + bmos::api::PercentEncode(id);
}

int RunGet(Args args) {
  const std::string command = "bmos-task get";
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartHttpCommand(command, args, {}, 1, "task ID", &flags, &positional, &ctx)) {
    return *done;
  }
  return SendAndPrint(ctx, bmos::api::HttpMethod::kGet, TaskPath(positional[0]), {},
                      PrintKeyValues);
}

int RunCancel(Args args) {
  const std::string command = "bmos-task cancel";
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartHttpCommand(command, args, {}, 1, "task ID", &flags, &positional, &ctx)) {
    return *done;
  }
  return SendAndPrint(ctx, bmos::api::HttpMethod::kDelete, TaskPath(positional[0]), {},
                      [](const json::object& o) {
                        std::string line = Cell(o, "task_id") + " " + Cell(o, "status");
                        if (o.contains("message")) line += ": " + Cell(o, "message");
                        WriteLine(line);
                      });
}

// Prints a page of a list answer: a table with a row per object of o[items] (`row` makes its
// cells), or "(no ITEMS)" when there is none; then the next page's cursor when there is one.
void PrintPage(const json::object& o, std::string_view items,
               const std::vector<std::string>& header,
               std::vector<std::string> (*row)(const json::object&)) {
  std::vector<std::vector<std::string>> rows;
  if (const json::value* list = o.if_contains(items); list != nullptr && list->is_array()) {
    for (const json::value& item : list->as_array()) {
      if (item.is_object()) rows.push_back(row(item.as_object()));
    }
  }
  if (rows.empty()) {
    WriteLine("(no " + std::string(items) + ")");
  } else {
    PrintTable(header, rows);
  }
  if (const json::value* next = o.if_contains("next_cursor");
      next != nullptr && next->is_string() && !next->as_string().empty()) {
    WriteLine("next cursor: " + std::string(next->as_string()));
  }
}

int RunList(Args args) {
  const std::string command = "bmos-task list";
  static constexpr FlagSpec kSpecs[] = {{"--status", true},
                                        {"--queue", true},
                                        {"--name", true},
                                        {"--limit", true},
                                        {"--cursor", true}};
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartHttpCommand(command, args, kSpecs, 0, "", &flags, &positional, &ctx)) {
    return *done;
  }
  std::string query;
  auto add = [&](std::string_view key, std::string_view value) { AddQuery(&query, key, value); };
  if (std::optional<std::string_view> s = Flag(flags, "--status")) {
    std::optional<TaskState> state = bmos::storage::ParseTaskState(*s);
    if (!state) {
      return UsageError(command, "--status: unknown status '" + std::string(*s) +
                                     "'; expected PENDING, RUNNING, RETRYING, COMPLETED, FAILED "
                                     "or CANCELLED");
    }
    add("status", bmos::storage::ToString(*state));
  }
  if (std::optional<std::string_view> q = Flag(flags, "--queue")) add("queue_name", *q);
  if (std::optional<std::string_view> n = Flag(flags, "--name")) add("task_name", *n);
  std::optional<uint64_t> limit;
  if (!WholeNumberFlag(command, flags, "--limit", 1, std::numeric_limits<uint64_t>::max(),
                       &limit)) {
    return kExitUsage;
  }
  if (limit) add("limit", std::to_string(*limit));
  if (std::optional<std::string_view> c = Flag(flags, "--cursor")) add("cursor", *c);

  return SendAndPrint(
      ctx, bmos::api::HttpMethod::kGet, std::string(kTasksPath) + query, {},
      [](const json::object& o) {
        PrintPage(o, "tasks", {"ID", "NAME", "QUEUE", "PRIORITY", "STATUS", "RETRIES", "CREATED"},
                  [](const json::object& task) -> std::vector<std::string> {
                    return {Cell(task, "task_id"),
                            Cell(task, "task_name"),
                            Cell(task, "queue_name"),
                            Cell(task, "priority"),
                            Cell(task, "status"),
                            Cell(task, "retry_count") + "/" + Cell(task, "max_retries"),
                            Cell(task, "created_at")};
                  });
      });
}

// A number field as text with up to `decimals` decimals ("-" when missing or not a number).
std::string Number(const json::object& o, std::string_view key, int decimals = 0) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_number()) return "-";
  if (!v->is_double() && decimals == 0) return json::serialize(*v);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v->to_number<double>());
  return buf;
}

void PrintPercentiles(std::string_view label, const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_object()) return;
  const json::object& p = v->as_object();
  WriteLine(std::string(label) + ": p50 " + Number(p, "p50", 3) + "  p90 " + Number(p, "p90", 3) +
            "  p99 " + Number(p, "p99", 3) + "  max " + Number(p, "max", 3));
}

// The answer of GET /tasks/stats/overview, as text.
void PrintTaskStats(const json::object& o) {
  // Statuses in lifecycle order, then any the server adds.
  std::vector<std::string> statuses;
  for (int i = 0; i < bmos::storage::kTaskStateCount; ++i) {
    statuses.emplace_back(bmos::storage::ToString(static_cast<TaskState>(i)));
  }
  auto note_statuses = [&](const json::object& counts) {
    for (const auto& kv : counts) {
      if (std::find(statuses.begin(), statuses.end(), kv.key()) == statuses.end()) {
        statuses.emplace_back(kv.key());
      }
    }
  };
  const json::value* by_status = o.if_contains("by_status");
  const json::value* queues = o.if_contains("queues");
  if (by_status != nullptr && by_status->is_object()) note_statuses(by_status->as_object());
  if (queues != nullptr && queues->is_object()) {
    for (const auto& q : queues->as_object()) {
      if (q.value().is_object()) note_statuses(q.value().as_object());
    }
  }

  WriteLine("tasks: " + Number(o, "total_tasks") + " total, " + Number(o, "live_tasks") + " live");
  std::vector<std::string> header = {"queue"};
  header.insert(header.end(), statuses.begin(), statuses.end());
  std::vector<std::vector<std::string>> rows;
  if (queues != nullptr && queues->is_object()) {
    for (const auto& q : queues->as_object()) {
      std::vector<std::string> row = {std::string(q.key())};
      for (const std::string& s : statuses) {
        row.push_back(q.value().is_object() ? Number(q.value().as_object(), s) : "-");
      }
      rows.push_back(std::move(row));
    }
  }
  if (by_status != nullptr && by_status->is_object()) {
    std::vector<std::string> row = {"(all queues)"};
    for (const std::string& s : statuses) row.push_back(Number(by_status->as_object(), s));
    rows.push_back(std::move(row));
  }
  PrintTable(header, rows);
  WriteLine("since start: enqueued " + Number(o, "enqueued") + ", completed " +
            Number(o, "completed") + ", failed " + Number(o, "failed") + ", retried " +
            Number(o, "retried") + ", cancelled " + Number(o, "cancelled"));
  WriteLine("rates: completed " + Number(o, "completed_per_second", 1) + "/s, failed " +
            Number(o, "failed_per_second", 1) + "/s, success rate " + Number(o, "success_rate", 3));
  if (const json::value* w = o.if_contains("workers"); w != nullptr && w->is_array()) {
    std::vector<std::vector<std::string>> groups;
    for (const json::value& g : w->as_array()) {
      if (!g.is_object()) continue;
      const json::object& group = g.as_object();
      std::string qs;
      if (const json::value* list = group.if_contains("queues");
          list != nullptr && list->is_array()) {
        for (const json::value& q : list->as_array()) {
          if (!qs.empty()) qs += ",";
          qs += q.is_string() ? std::string(q.as_string()) : json::serialize(q);
        }
      }
      groups.push_back({Cell(group, "group"), qs.empty() ? "-" : qs, Number(group, "workers"),
                        Number(group, "busy"), Number(group, "idle")});
    }
    WriteLine("workers:");
    PrintTable({"group", "queues", "workers", "busy", "idle"}, groups);
  }
  PrintPercentiles("queue wait ms", o, "queue_wait_ms");
  PrintPercentiles("run time ms", o, "run_time_ms");
}

int RunStats(Args args) {
  const std::string command = "bmos-task stats";
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartHttpCommand(command, args, {}, 0, "", &flags, &positional, &ctx)) {
    return *done;
  }
  return SendAndPrint(ctx, bmos::api::HttpMethod::kGet, std::string(kTasksPath) + "stats/overview",
                      {}, PrintTaskStats);
}

int RunWait(Args args) {
  const std::string command = "bmos-task wait";
  static constexpr FlagSpec kSpecs[] = {{"--timeout", true}, {"--interval-ms", true}};
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartHttpCommand(command, args, kSpecs, 1, "task ID", &flags, &positional, &ctx)) {
    return *done;
  }
  double timeout_s = 60;
  if (std::optional<std::string_view> t = Flag(flags, "--timeout")) {
    if (!ParseSeconds(*t, &timeout_s) || timeout_s > 1e7) {
      return UsageError(command,
                        "--timeout wants a number of seconds >= 0, got '" + std::string(*t) + "'");
    }
  }
  uint64_t interval_ms = 200;
  if (std::optional<std::string_view> i = Flag(flags, "--interval-ms")) {
    if (!ParseUint(*i, &interval_ms) || interval_ms == 0 || interval_ms > 3'600'000) {
      return UsageError(command, "--interval-ms wants a whole number from 1 to 3600000, got '" +
                                     std::string(*i) + "'");
    }
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  const std::string target = TaskPath(positional[0]);
  for (;;) {
    // No single poll may outlast the wait (at least 1 s, so a poll can always finish).
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    ctx.client->set_timeout(
        std::clamp(left, std::chrono::milliseconds(1000), std::chrono::milliseconds(30000)));
    std::optional<bmos::api::HttpResponse> r = Send(ctx, bmos::api::HttpMethod::kGet, target);
    if (!r) return kExitFailure;
    std::optional<json::object> o = ParseObject(ctx, r->body);
    if (!o) return kExitFailure;
    const std::string status = Cell(*o, "status");
    const bool terminal = status == "COMPLETED" || status == "FAILED" || status == "CANCELLED";
    if (terminal) {
      if (ctx.as_json) {
        if (PrintBody(ctx, std::move(r->body)) != kExitOk) return kExitFailure;
      } else {
        PrintKeyValues(*o);
        if (FinishStdout(command) != kExitOk) return kExitFailure;
      }
      return status == "COMPLETED" ? kExitOk : kExitWaitFailed;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      std::fprintf(stderr, "%s: task %.*s is still %s after %g s\n", command.c_str(),
                   static_cast<int>(positional[0].size()), positional[0].data(), status.c_str(),
                   timeout_s);
      return kExitWaitTimeout;
    }
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(interval_ms), deadline - now));
  }
}

int RunToken(Args args) {
  const std::string command = "bmos-task token";
  static constexpr FlagSpec kSpecs[] = {{"--role", true}, {"--ttl", true}, {"--subject", true}};
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  if (std::optional<int> done =
          StartHttpCommand(command, args, kSpecs, 0, "", &flags, &positional, /*ctx=*/nullptr)) {
    return *done;
  }
  for (const char* server_flag : {"--url", "--token", "--json"}) {
    if (flags.contains(server_flag)) {
      return UsageError(command, std::string(server_flag) +
                                     " does not apply: token talks to no server (flags: --role, "
                                     "--ttl, --subject, --data-dir)");
    }
  }
  std::optional<std::string_view> role_name = Flag(flags, "--role");
  if (!role_name) return UsageError(command, "--role admin|operator|viewer is required");
  std::optional<Role> role = bmos::api::ParseRole(*role_name);
  if (!role) {
    return UsageError(command, "--role: unknown role '" + std::string(*role_name) +
                                   "'; expected admin, operator or viewer");
  }
  uint64_t ttl = 3600;
  if (std::optional<std::string_view> t = Flag(flags, "--ttl")) {
    if (!ParseUint(*t, &ttl) || ttl == 0 || ttl > 10ull * 365 * 24 * 3600) {
      return UsageError(command,
                        "--ttl wants a whole number of seconds from 1 to 315360000, "
                        "got '" +
                            std::string(*t) + "'");
    }
  }
  std::string subject = "bmos-task";
  if (std::optional<std::string_view> s = Flag(flags, "--subject")) subject = *s;
  const std::string data_dir = DataDirOf(flags);
  if (!SecretExists(data_dir)) {
    std::fprintf(stderr,
                 "%s: no secret: start bmos-taskd once or set BMOS_JWT_SECRET (looked for %s)\n",
                 command.c_str(), (std::filesystem::path(data_dir) / "jwt.secret").c_str());
    return kExitFailure;
  }
  Result<std::string> secret = bmos::api::ResolveSecret(data_dir);
  if (!secret.ok()) {
    std::fprintf(stderr, "%s: %s\n", command.c_str(), secret.status().ToString().c_str());
    return kExitFailure;
  }
  WriteLine(MintToken(*secret, *role, std::move(subject), static_cast<int64_t>(ttl)));
  return FinishStdout(command);
}

// -- schedule over HTTP ------------------------------------------------------------------------
//
// The schedule group's commands but preview: the scheduled-job routes of bmos-taskd
// (api/service.h), with the preamble and the printing of the HTTP commands above.

constexpr std::string_view kJobsPath = "/api/v1/tasks/scheduled/";

std::string JobPath(std::string_view id, std::string_view action = {}) {
  std::string path = std::string(kJobsPath) + bmos::api::PercentEncode(id);
  if (!action.empty()) path += "/" + std::string(action);
  return path;
}

// A job in one line (add, pause, resume): "JOB_ID STATE", and its next run time in the job's
// zone when it has one.
void PrintJobLine(const json::object& job) {
  std::string line = Cell(job, "job_id") + " " + Cell(job, "state");
  if (const std::string next = Cell(job, "next_run_time_local"); next != "-") {
    line += " (next run " + next + ")";
  }
  WriteLine(line);
}

// A job as a key/value table (get); its statistics one per line, as stats.runs and so on.
void PrintJob(const json::object& job) {
  json::object flat;
  for (const auto& kv : job) {
    if (kv.key() == "stats" && kv.value().is_object()) {
      for (const auto& st : kv.value().as_object()) {
        flat["stats." + std::string(st.key())] = st.value();
      }
    } else {
      flat[kv.key()] = kv.value();
    }
  }
  PrintKeyValues(flat);
}

// The answer of GET /tasks/scheduled/stats/overview, as text.
void PrintScheduleStats(const json::object& o) {
  WriteLine("jobs: " + Number(o, "total") + " total, " + Number(o, "active") + " active, " +
            Number(o, "paused") + " paused, " + Number(o, "finished") + " finished");
  WriteLine("runs: " + Number(o, "runs") + " (completed " + Number(o, "completed") + ", failed " +
            Number(o, "failed") + ", running " + Number(o, "running") + "), missed " +
            Number(o, "missed") + ", skipped " + Number(o, "skipped"));
  WriteLine("next run: " + Cell(o, "next_run_time"));
  PrintPercentiles("fire lateness ms", o, "fire_lateness_ms");
}

// The start of every schedule command that talks to the server: StartHttpCommand with the
// schedule group's usage for --help.
std::optional<int> StartScheduleCommand(const std::string& command, Args args,
                                        std::span<const FlagSpec> own_specs,
                                        size_t positional_count, ParsedFlags* flags,
                                        std::vector<std::string_view>* positional,
                                        HttpContext* ctx) {
  return StartHttpCommand(command, args, own_specs, positional_count, "job ID", flags, positional,
                          ctx, PrintScheduleUsage);
}

int RunScheduleAdd(Args args) {
  const std::string command = "bmos-task schedule add";
  static constexpr FlagSpec kSpecs[] = {
      {"--name", true},         {"--function", true},      {"--type", true},
      {"--trigger", true},      {"--data", true},          {"--queue", true},
      {"--priority", true},     {"--max-retries", true},   {"--misfire-grace", true},
      {"--no-coalesce", false}, {"--max-instances", true}, {"--id", true},
      {"--paused", false}};
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartScheduleCommand(command, args, kSpecs, 0, &flags, &positional, &ctx)) {
    return *done;
  }
  for (std::string_view required : {"--name", "--function", "--type", "--trigger"}) {
    if (!Flag(flags, required)) return UsageError(command, std::string(required) + " is required");
  }
  json::object body;
  body["job_name"] = *Flag(flags, "--name");
  body["job_function"] = *Flag(flags, "--function");
  Result<bmos::engine::TriggerType> type = bmos::engine::ParseTriggerType(*Flag(flags, "--type"));
  if (!type.ok()) return UsageError(command, "--type: " + type.status().message());
  body["job_type"] = bmos::engine::ToString(*type);
  std::optional<json::object> trigger;
  if (!JsonObjectFlag(command, flags, "--trigger", R"({"hour":2,"minute":0})", &trigger)) {
    return kExitUsage;
  }
  body["trigger_config"] = std::move(*trigger);
  std::optional<json::object> data;
  if (!JsonObjectFlag(command, flags, "--data", R"({"file":"a.csv"})", &data)) return kExitUsage;
  if (data) body["job_data"] = std::move(*data);
  if (std::optional<std::string_view> q = Flag(flags, "--queue")) body["queue_name"] = *q;
  if (std::optional<std::string_view> p = Flag(flags, "--priority")) {
    std::optional<bmos::storage::Priority> priority = bmos::storage::ParsePriority(*p);
    if (!priority) {
      return UsageError(command, "--priority: unknown priority '" + std::string(*p) +
                                     "'; expected LOW, NORMAL, HIGH or CRITICAL");
    }
    body["priority"] = bmos::storage::ToString(*priority);
  }
  std::optional<uint64_t> retries;
  std::optional<uint64_t> instances;
  if (!WholeNumberFlag(command, flags, "--max-retries", 0, 1000, &retries) ||
      !WholeNumberFlag(command, flags, "--max-instances", 1, 1000, &instances)) {
    return kExitUsage;
  }
  if (retries) body["max_retries"] = *retries;
  if (std::optional<std::string_view> g = Flag(flags, "--misfire-grace")) {
    double seconds = 0;
    if (*g == "none") {
      body["misfire_grace_time"] = nullptr;
    } else if (ParseSeconds(*g, &seconds) && seconds > 0) {
      body["misfire_grace_time"] = SecondsJson(seconds);
    } else {
      return UsageError(command, "--misfire-grace wants a number of seconds > 0 or 'none', got '" +
                                     std::string(*g) + "'");
    }
  }
  if (flags.contains("--no-coalesce")) body["coalesce"] = false;
  if (instances) body["max_instances"] = *instances;
  if (std::optional<std::string_view> id = Flag(flags, "--id")) body["job_id"] = *id;
  if (flags.contains("--paused")) body["paused"] = true;

  return SendAndPrint(ctx, bmos::api::HttpMethod::kPost, "/api/v1/tasks/scheduled",
                      json::serialize(body), PrintJobLine);
}

int RunScheduleList(Args args) {
  const std::string command = "bmos-task schedule list";
  static constexpr FlagSpec kSpecs[] = {{"--state", true}, {"--limit", true}, {"--cursor", true}};
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartScheduleCommand(command, args, kSpecs, 0, &flags, &positional, &ctx)) {
    return *done;
  }
  std::string query;
  if (std::optional<std::string_view> s = Flag(flags, "--state")) {
    std::string state(*s);
    for (char& c : state) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (state != "active" && state != "paused" && state != "finished") {
      return UsageError(command, "--state: unknown state '" + std::string(*s) +
                                     "'; expected active, paused or finished");
    }
    AddQuery(&query, "state", state);
  }
  std::optional<uint64_t> limit;
  if (!WholeNumberFlag(command, flags, "--limit", 1, std::numeric_limits<uint64_t>::max(),
                       &limit)) {
    return kExitUsage;
  }
  if (limit) AddQuery(&query, "limit", std::to_string(*limit));
  if (std::optional<std::string_view> c = Flag(flags, "--cursor")) AddQuery(&query, "cursor", *c);

  return SendAndPrint(
      ctx, bmos::api::HttpMethod::kGet, std::string(kJobsPath) + query, {},
      [](const json::object& o) {
        PrintPage(o, "jobs", {"ID", "NAME", "FUNCTION", "TRIGGER", "STATE", "NEXT RUN", "RUNS"},
                  [](const json::object& job) -> std::vector<std::string> {
                    const json::value* stats = job.if_contains("stats");
                    return {Cell(job, "job_id"),
                            Cell(job, "job_name"),
                            Cell(job, "job_function"),
                            Cell(job, "trigger"),
                            Cell(job, "state"),
                            Cell(job, "next_run_time_local"),
                            stats != nullptr && stats->is_object()
                                ? Number(stats->as_object(), "runs")
                                : "-"};
                  });
      });
}

// get, pause, resume, run and delete: one request about the job that the one argument names.
int RunJobCommand(Args args, std::string_view name, bmos::api::HttpMethod method,
                  std::string_view action, void (*print)(const json::object&)) {
  const std::string command = "bmos-task schedule " + std::string(name);
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartScheduleCommand(command, args, {}, 1, &flags, &positional, &ctx)) {
    return *done;
  }
  return SendAndPrint(ctx, method, JobPath(positional[0], action), {}, print);
}

int RunScheduleStats(Args args) {
  const std::string command = "bmos-task schedule stats";
  ParsedFlags flags;
  std::vector<std::string_view> positional;
  HttpContext ctx;
  if (std::optional<int> done =
          StartScheduleCommand(command, args, {}, 0, &flags, &positional, &ctx)) {
    return *done;
  }
  return SendAndPrint(ctx, bmos::api::HttpMethod::kGet, std::string(kJobsPath) + "stats/overview",
                      {}, PrintScheduleStats);
}

using bmos::api::HttpMethod;

constexpr GroupCommand kScheduleCommands[] = {
    {"preview", RunSchedulePreview},
    {"add", RunScheduleAdd},
    {"list", RunScheduleList},
    {"get", [](Args args) { return RunJobCommand(args, "get", HttpMethod::kGet, {}, PrintJob); }},
    {"pause",
     [](Args args) {
       return RunJobCommand(args, "pause", HttpMethod::kPost, "pause", PrintJobLine);
     }},
    {"resume",
     [](Args args) {
       return RunJobCommand(args, "resume", HttpMethod::kPost, "resume", PrintJobLine);
     }},
    {"run",
     [](Args args) { return RunJobCommand(args, "run", HttpMethod::kPost, "run", PrintEnqueued); }},
    {"delete",
     [](Args args) {
       return RunJobCommand(args, "delete", HttpMethod::kDelete, {}, [](const json::object& o) {
         WriteLine(Cell(o, "job_id") + ": " + Cell(o, "message"));
       });
     }},
    {"stats", RunScheduleStats},
};

bool IsScheduleHttpCommand(std::string_view command) {
  return command != "preview" &&
         std::any_of(std::begin(kScheduleCommands), std::end(kScheduleCommands),
                     [&](const GroupCommand& c) { return c.name == command; });
}

int RunScheduleGroup(Args args) {
  return RunGroupCommand("schedule", kScheduleCommands, PrintScheduleUsage, args);
}

struct HttpCommand {
  std::string_view name;
  int (*run)(Args args);  // the arguments after the command's name (and the global flags)
};

constexpr HttpCommand kHttpCommands[] = {
    {"enqueue", RunEnqueue}, {"get", RunGet},   {"cancel", RunCancel}, {"list", RunList},
    {"stats", RunStats},     {"wait", RunWait}, {"token", RunToken},
};

// The index of the first argument that is not a leading global flag or its value; args.size()
// when there is none.
size_t SkipGlobalFlags(Args args) {
  size_t i = 0;
  while (i < args.size() && IsGlobalFlag(args[i])) {
    const std::string_view arg = args[i];
    const bool has_value = arg != "--json" && arg.find('=') == std::string_view::npos;
    i += has_value ? 2 : 1;
  }
  return std::min(i, args.size());
}

// Runs `bmos-task [GLOBAL FLAGS] COMMAND ...` for the HTTP commands, and `bmos-task [GLOBAL
// FLAGS] GROUP COMMAND ...` for a group's commands that talk to the server; nullopt when the
// words after the global flags name neither. The global flags before the command are handed
// to it first among its arguments, where every HTTP command also takes them.
std::optional<int> RunHttpCommand(Args args) {
  const size_t i = SkipGlobalFlags(args);
  if (i >= args.size()) return std::nullopt;
  // `head`, then the global flags, then the arguments from args[from] on.
  auto arrange = [&](Args head, size_t from) {
    std::vector<std::string_view> out(head.begin(), head.end());
    out.insert(out.end(), args.begin(), args.begin() + static_cast<ptrdiff_t>(i));
    out.insert(out.end(), args.begin() + static_cast<ptrdiff_t>(from), args.end());
    return out;
  };
  for (const HttpCommand& c : kHttpCommands) {
    if (c.name == args[i]) return c.run(arrange({}, i + 1));
  }
  for (const CommandGroup& group : kGroups) {
    if (group.name == args[i] && group.is_http_command != nullptr && i + 1 < args.size() &&
        group.is_http_command(args[i + 1])) {
      return group.run(arrange(args.subspan(i + 1, 1), i + 2));  // the group's command first
    }
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  // Larger than the default, so a dump of many records writes in fewer system calls.
  static char stdout_buffer[1 << 16];
  std::setvbuf(stdout, stdout_buffer, _IOFBF, sizeof(stdout_buffer));

  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs("bmos-task: missing command group\n\n", stderr);
    PrintUsage(stderr);
    return kExitUsage;
  }
  if (IsHelp(args[0])) {
    PrintUsage(stdout);
    return kExitOk;
  }
  for (const CommandGroup& group : kGroups) {
    if (group.name == args[0]) return group.run(Args(args).subspan(1));
  }
  if (std::optional<int> status = RunHttpCommand(args)) return *status;
  // Name the first word that is not a global flag or its value.
  const size_t at = SkipGlobalFlags(args);
  if (at >= args.size()) {
    std::fputs("bmos-task: missing command after the global flags (try 'bmos-task --help')\n",
               stderr);
    return kExitUsage;
  }
  const std::string_view word = args[at];
  for (const CommandGroup& group : kGroups) {
    if (group.name != word) continue;
    const std::string name(word);
    if (group.is_http_command == nullptr || at + 1 >= args.size()) {
      std::fprintf(stderr,
                   "bmos-task: --url, --token, --data-dir and --json go with the HTTP commands; "
                   "'%s' takes its own flags after its command (try 'bmos-task %s --help')\n",
                   name.c_str(), name.c_str());
    } else {  // a command of the group that talks to no server, or an unknown one
      const std::string command = name + " " + std::string(args[at + 1]);
      std::fprintf(stderr,
                   "bmos-task: --url, --token, --data-dir and --json go with the commands that "
                   "talk to a server; '%s' is not one (try 'bmos-task %s --help')\n",
                   command.c_str(), name.c_str());
    }
    return kExitUsage;
  }
  std::fprintf(stderr,
               "bmos-task: unknown command '%.*s' (commands:", static_cast<int>(word.size()),
               word.data());
  for (const HttpCommand& command : kHttpCommands) {
    std::fprintf(stderr, " %.*s", static_cast<int>(command.name.size()), command.name.data());
  }
  for (const CommandGroup& group : kGroups) {
    std::fprintf(stderr, " %.*s", static_cast<int>(group.name.size()), group.name.data());
  }
  std::fputs("; try 'bmos-task --help')\n", stderr);
  return kExitUsage;
}
