// bmos-task: the command-line tool of the BMOS task engine.
//
// main() is a dispatcher of command groups; each group is one function that takes the arguments
// after its name and returns the exit status. Today there is one group:
//   store   reads a task store directory directly, without a server (dump, stats)
// Later groups (`schedule preview`, HTTP client commands) are added to kGroups.
//
// Exit status: 0 on success, 1 when the work itself failed (the store cannot be opened or read,
// stdout cannot be written), 2 on bad usage (unknown command or flag, missing or bad value).

#include <algorithm>
#include <array>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/rocksdb_task_store.h"
#include "storage/status.h"
#include "storage/task_record.h"
#include "storage/task_store.h"

namespace {

namespace json = boost::json;
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

struct CommandGroup {
  std::string_view name;
  int (*run)(Args args);  // the arguments after the group's name; returns the exit status
  void (*print_usage)(FILE* out);
};

constexpr CommandGroup kGroups[] = {
    {"store", RunStoreGroup, PrintStoreUsage},
};

void PrintUsage(FILE* out) {
  std::fputs(
      "usage: bmos-task GROUP COMMAND [FLAGS]\n"
      "       bmos-task [GROUP] --help\n"
      "\n"
      "The command-line tool of the BMOS task engine.\n",
      out);
  for (const CommandGroup& group : kGroups) {
    std::fputs("\n", out);
    group.print_usage(out);
  }
  std::fputs(
      "\n"
      "Flags take their value as the next argument or after '=' (--limit 10, --limit=10).\n"
      "Exit status: 0 on success, 1 when the store cannot be opened or read (or stdout cannot be\n"
      "written), 2 on bad usage.\n",
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
// --help.
bool ParseFlags(std::string_view command, Args args, std::span<const FlagSpec> specs,
                ParsedFlags* out, bool* help) {
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

int RunStoreGroup(Args args) {
  if (args.empty()) {
    std::fputs("bmos-task store: missing command (dump or stats)\n\n", stderr);
    PrintStoreUsage(stderr);
    return kExitUsage;
  }
  const std::string_view command = args[0];
  if (IsHelp(command)) {
    PrintStoreUsage(stdout);
    return kExitOk;
  }
  if (command == "dump") return RunStoreDump(args.subspan(1));
  if (command == "stats") return RunStoreStats(args.subspan(1));
  std::fprintf(stderr,
               "bmos-task store: unknown command '%.*s' (commands: dump, stats; try "
               "'bmos-task store --help')\n",
               static_cast<int>(command.size()), command.data());
  return kExitUsage;
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
  std::fprintf(stderr, "bmos-task: unknown command group '%s' (groups:", argv[1]);
  for (const CommandGroup& group : kGroups) {
    std::fprintf(stderr, " %.*s", static_cast<int>(group.name.size()), group.name.data());
  }
  std::fputs("; try 'bmos-task --help')\n", stderr);
  return kExitUsage;
}
