// bmos-taskd: the BMOS task engine behind its HTTP API. Opens the engine on its data directory
// (RocksDB, durable by default), serves the API (api/service.h) with the Beast server, and on
// SIGTERM or SIGINT stops accepting, drains running tasks, flushes the store and exits 0.
//
// Every option is a flag and a BMOS_* environment variable (the flag wins); `--help` lists them.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/jwt.h"
#include "api/server.h"
#include "api/service.h"
#include "api/test_handlers.h"
#include "engine/engine.h"
#include "engine/handlers/handlers.h"
#include "engine/handlers/timetable.h"
#include "engine/scheduler.h"
#include "engine/trigger.h"
#include "storage/allocator.h"

namespace {

using bmos::storage::Result;
using bmos::storage::Status;

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "bmos-data";
  std::string durability = "sync";
  int workers = 4;
  std::vector<std::string> groups;  // NAME:QUEUE[,QUEUE...]:WORKERS
  int io_threads = 2;
  std::string auth = "jwt";
  std::string port_file;
  bool test_handlers = false;
  int64_t max_body_bytes = 2 << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t max_connections = 10'000;
  int64_t read_timeout_ms = 10'000;
  int64_t idle_timeout_ms = 60'000;
  int64_t drain_seconds = 30;
  int64_t retention_hours = 24 * 7;
  int64_t retention_max_count = 1'000'000;
  std::string timezone = "UTC";
  std::string bmos_data_dir;  // empty: DATA_DIR/bmos
  int ml_workers = 1;
  bool bmos_handlers = true;
  bool default_timetable = true;
  bool wal_zero_ahead = true;
};

bool SwitchValue(std::string_view v) { return v.empty() || v == "1" || v == "true"; }

// One option: its flag, environment variable, what it takes, help, and how it is stored.
struct Option {
  const char* flag;  // "--listen"
  const char* env;   // "BMOS_LISTEN"
  const char* arg;   // "HOST:PORT"; nullptr for a switch
  const char* help;
  std::function<Status(Config&, std::string_view)> set;
};

Status ParseInt(std::string_view text, int64_t min, int64_t max, const char* what, int64_t* out) {
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < min || v > max) {
    return Status::InvalidArgument(std::string(what) + ": '" + s + "' is not an integer in " +
                                   std::to_string(min) + ".." + std::to_string(max));
  }
  *out = v;
  return Status::Ok();
}

std::function<Status(Config&, std::string_view)> IntInto(int64_t Config::*field, int64_t min,
                                                         int64_t max, const char* what) {
  return [=](Config& c, std::string_view v) { return ParseInt(v, min, max, what, &(c.*field)); };
}

std::vector<Option> Options() {
  return {
      {"--listen", "BMOS_LISTEN", "HOST:PORT",
       "address to serve on; an IPv6 host goes in brackets ([::1]:8080); port 0 picks a free "
       "port. Default: 127.0.0.1:8080",
       [](Config& c, std::string_view v) {
         c.listen = v;
         return Status::Ok();
       }},
      {"--data-dir", "BMOS_DATA_DIR", "DIR",
       "RocksDB task store (and jwt.secret), created when missing. Default: bmos-data",
       [](Config& c, std::string_view v) {
         c.data_dir = v;
         return Status::Ok();
       }},
      {"--durability", "BMOS_DURABILITY", "MODE",
       "sync (fsynced before the answer), async (written, survives a process crash) or memory "
       "(nothing survives). Default: sync",
       [](Config& c, std::string_view v) {
         if (!bmos::storage::ParseDurability(v)) {
           return Status::InvalidArgument("--durability: must be sync, async or memory");
         }
         c.durability = v;
         return Status::Ok();
       }},
      {"--workers", "BMOS_WORKERS", "N",
       "workers of the default group (queue 'default'). Default: 4",
       [](Config& c, std::string_view v) {
         int64_t n;
         if (Status s = ParseInt(v, 1, 256, "--workers", &n); !s.ok()) return s;
         c.workers = static_cast<int>(n);
         return Status::Ok();
       }},
      {"--group", "BMOS_GROUPS", "NAME:QUEUES:N",
       "an extra worker group serving comma-separated QUEUES with N workers, e.g. "
       "ml:training,predictions:1; repeatable (the variable separates groups with ';')",
       [](Config& c, std::string_view v) {
         size_t start = 0;
         while (start <= v.size()) {
           size_t end = v.find(';', start);
           if (end == std::string_view::npos) end = v.size();
           if (end > start) c.groups.emplace_back(v.substr(start, end - start));
           start = end + 1;
         }
         return Status::Ok();
       }},
      {"--io-threads", "BMOS_IO_THREADS", "N", "HTTP I/O threads. Default: 2",
       [](Config& c, std::string_view v) {
         int64_t n;
         if (Status s = ParseInt(v, 1, 256, "--io-threads", &n); !s.ok()) return s;
         c.io_threads = static_cast<int>(n);
         return Status::Ok();
       }},
      {"--auth", "BMOS_AUTH", "jwt|none",
       "jwt: every /api/v1 request needs 'Authorization: Bearer <HS256 JWT>'; none: no checks, "
       "allowed only on a loopback address. Default: jwt",
       [](Config& c, std::string_view v) {
         if (v != "jwt" && v != "none")
           return Status::InvalidArgument("--auth: must be jwt or none");
         c.auth = v;
         return Status::Ok();
       }},
      {"--port-file", "BMOS_PORT_FILE", "FILE",
       "write the port served on to FILE once listening (for --listen with port 0)",
       [](Config& c, std::string_view v) {
         c.port_file = v;
         return Status::Ok();
       }},
      {"--timezone", "BMOS_TIMEZONE", "ZONE",
       "IANA time zone of scheduled jobs whose trigger_config has no \"timezone\". Default: UTC",
       [](Config& c, std::string_view v) {
         if (Result<std::string> z = bmos::engine::FormatIsoWithOffset(0, v); !z.ok()) {
           return Status::InvalidArgument("--timezone: " + z.status().message());
         }
         c.timezone = v;
         return Status::Ok();
       }},
      {"--bmos-data-dir", "BMOS_BMOS_DATA_DIR", "DIR",
       "the BMOS data root: every file path in a BMOS task's data is relative to it and may not "
       "leave it. Default: DATA_DIR/bmos",
       [](Config& c, std::string_view v) {
         if (v.empty()) return Status::InvalidArgument("--bmos-data-dir: must not be empty");
         c.bmos_data_dir = v;
         return Status::Ok();
       }},
      {"--ml-workers", "BMOS_ML_WORKERS", "N",
       "workers of the group 'ml' (queue 'ml'), where the BMOS handlers run, so that training "
       "never holds up short tasks; unused when a --group serves 'ml'. Default: 1",
       [](Config& c, std::string_view v) {
         int64_t n;
         if (Status s = ParseInt(v, 1, 256, "--ml-workers", &n); !s.ok()) return s;
         c.ml_workers = static_cast<int>(n);
         return Status::Ok();
       }},
      {"--no-bmos-handlers", "BMOS_NO_BMOS_HANDLERS", nullptr,
       "do not register the BMOS handlers (process_data, train_model, ...) nor the 'ml' group",
       [](Config& c, std::string_view v) {
         c.bmos_handlers = !SwitchValue(v);
         return Status::Ok();
       }},
      {"--no-default-timetable", "BMOS_NO_DEFAULT_TIMETABLE", nullptr,
       "do not install the default timetable (daily_model_retrain, hourly_data_sync, "
       "weekly_cleanup) on the first start",
       [](Config& c, std::string_view v) {
         c.default_timetable = !SwitchValue(v);
         return Status::Ok();
       }},
      {"--no-wal-zero-ahead", "BMOS_NO_WAL_ZERO_AHEAD", nullptr,
       "sync: grow the write-ahead log with each commit instead of writing it over zeros "
       "written ahead (for copy-on-write file systems such as btrfs or ZFS)",
       [](Config& c, std::string_view v) {
         c.wal_zero_ahead = !SwitchValue(v);
         return Status::Ok();
       }},
      {"--with-test-handlers", "BMOS_TEST_HANDLERS", nullptr,
       "register bmos.noop, bmos.sleep {\"ms\":N}, bmos.fail {\"times\":K} and bmos.echo",
       [](Config& c, std::string_view v) {
         c.test_handlers = SwitchValue(v);
         return Status::Ok();
       }},
      {"--max-body-bytes", "BMOS_MAX_BODY_BYTES", "N",
       "largest request body (413 beyond). Default: 2097152",
       IntInto(&Config::max_body_bytes, 1, int64_t{1} << 30, "--max-body-bytes")},
      {"--max-header-bytes", "BMOS_MAX_HEADER_BYTES", "N",
       "largest request header (431 beyond). Default: 16384",
       IntInto(&Config::max_header_bytes, 1024, 1 << 20, "--max-header-bytes")},
      {"--max-connections", "BMOS_MAX_CONNECTIONS", "N",
       "open connections at most (503 and close beyond). Default: 10000",
       IntInto(&Config::max_connections, 1, 1'000'000, "--max-connections")},
      {"--read-timeout-ms", "BMOS_READ_TIMEOUT_MS", "MS",
       "a request must arrive whole within MS of its first byte (408 and close). Default: 10000",
       IntInto(&Config::read_timeout_ms, 1, 3'600'000, "--read-timeout-ms")},
      {"--idle-timeout-ms", "BMOS_IDLE_TIMEOUT_MS", "MS",
       "an idle keep-alive connection closes after MS. Default: 60000",
       IntInto(&Config::idle_timeout_ms, 1, 3'600'000, "--idle-timeout-ms")},
      {"--drain-seconds", "BMOS_DRAIN_SECONDS", "S",
       "on SIGTERM, how long running tasks may finish before their cancel tokens are set. "
       "Default: 30",
       IntInto(&Config::drain_seconds, 0, 3600, "--drain-seconds")},
      {"--retention-hours", "BMOS_RETENTION_HOURS", "H",
       "finished tasks are purged H hours after they ended (0 keeps them). Default: 168",
       IntInto(&Config::retention_hours, 0, 24 * 3650, "--retention-hours")},
      {"--retention-max-count", "BMOS_RETENTION_MAX_COUNT", "N",
       "keep at most N finished tasks, purging the oldest (0: no cap). Default: 1000000",
       IntInto(&Config::retention_max_count, 0, int64_t{1} << 40, "--retention-max-count")},
  };
}

void PrintHelp(const std::vector<Option>& options) {
  std::printf(
      "usage: bmos-taskd [OPTIONS]\n\n"
      "Serves the BMOS task engine over HTTP (API under /api/v1, GET /health, GET /metrics).\n"
      "Each option may also be set by its environment variable; a flag wins over the variable.\n"
      "The JWT secret comes from BMOS_JWT_SECRET or, when unset, from DIR/jwt.secret (created\n"
      "with mode 0600 on first start). Mint a token with: bmos-task token --role admin\n\n");
  for (const Option& o : options) {
    std::string left = std::string(o.flag) + (o.arg ? std::string(" ") + o.arg : "");
    std::printf("  %-28s %s\n  %-28s (env %s)\n", left.c_str(), o.help, "", o.env);
  }
  std::printf("  %-28s %s\n  %-28s %s\n", "--help", "this text", "--version", "print the version");
}

// Environment first, then flags (so flags win). Exit code 2 on a usage error.
Status ParseConfig(int argc, char** argv, Config& config, bool* help, bool* version) {
  const std::vector<Option> options = Options();
  for (const Option& o : options) {
    const char* v = std::getenv(o.env);
    if (v == nullptr || *v == '\0') continue;
    if (Status s = o.set(config, v); !s.ok()) {
      return Status::InvalidArgument(std::string(o.env) + ": " + s.message());
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      PrintHelp(options);
      *help = true;
      return Status::Ok();
    }
    if (a == "--version") {
      *version = true;
      return Status::Ok();
    }
    std::string_view value;
    bool has_value = false;
    if (size_t eq = a.find('='); eq != std::string_view::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    const Option* found = nullptr;
    for (const Option& o : options) {
      if (a == o.flag) found = &o;
    }
    if (found == nullptr) {
      return Status::InvalidArgument("unknown option '" + std::string(a) + "' (see --help)");
    }
    if (found->arg == nullptr) {
      if (has_value) return Status::InvalidArgument(std::string(a) + " takes no value");
    } else if (!has_value) {
      if (i + 1 >= argc) return Status::InvalidArgument(std::string(a) + " needs " + found->arg);
      value = argv[++i];
    }
    if (Status s = found->set(config, value); !s.ok()) return s;
  }
  return Status::Ok();
}

// "127.0.0.1:8080" / "[::1]:8080" -> host and port.
Status SplitListen(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("--listen: '" + listen + "' is not HOST:PORT");
  }
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  int64_t p;
  if (Status s = ParseInt(listen.substr(colon + 1), 0, 65535, "--listen port", &p); !s.ok()) {
    return s;
  }
  if (h == "localhost") h = "127.0.0.1";
  *host = h;
  *port = static_cast<uint16_t>(p);
  return Status::Ok();
}

bool IsLoopback(const std::string& host) { return host == "::1" || host.rfind("127.", 0) == 0; }

Result<std::vector<bmos::engine::WorkerGroupOptions>> Groups(const Config& c) {
  std::vector<bmos::engine::WorkerGroupOptions> groups;
  bmos::engine::WorkerGroupOptions def;
  def.workers = c.workers;
  groups.push_back(def);
  for (const std::string& g : c.groups) {
    const size_t a = g.find(':');
    const size_t b = g.rfind(':');
    if (a == std::string::npos || a == b) {
      return Status::InvalidArgument("--group: '" + g + "' is not NAME:QUEUES:N");
    }
    bmos::engine::WorkerGroupOptions o;
    o.name = g.substr(0, a);
    o.queues.clear();
    std::string queues = g.substr(a + 1, b - a - 1);
    size_t start = 0;
    while (start <= queues.size()) {
      size_t end = queues.find(',', start);
      if (end == std::string::npos) end = queues.size();
      if (end > start) o.queues.push_back(queues.substr(start, end - start));
      start = end + 1;
    }
    int64_t n;
    if (Status s = ParseInt(g.substr(b + 1), 1, 256, "--group workers", &n); !s.ok()) return s;
    o.workers = static_cast<int>(n);
    groups.push_back(std::move(o));
  }
  // The BMOS handlers' queue, in a group of its own unless one was given.
  bool ml_served = false;
  for (const auto& g : groups) {
    for (const std::string& q : g.queues) ml_served = ml_served || q == "ml";
  }
  if (c.bmos_handlers && !ml_served) {
    bmos::engine::WorkerGroupOptions ml;
    ml.name = "ml";
    ml.queues = {"ml"};
    ml.workers = c.ml_workers;
    groups.push_back(std::move(ml));
  }
  return groups;
}

int Fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "bmos-taskd: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  bool help = false, version = false;
  if (Status s = ParseConfig(argc, argv, config, &help, &version); !s.ok()) {
    return Fail(s.message(), 2);
  }
  if (help) return 0;
  if (version) {
    std::printf("bmos-taskd 0.1.0 (malloc: %s)\n", bmos::storage::AllocatorName().c_str());
    return 0;
  }
  std::string host;
  uint16_t port = 0;
  if (Status s = SplitListen(config.listen, &host, &port); !s.ok()) return Fail(s.message(), 2);
  if (config.auth == "none" && !IsLoopback(host)) {
    return Fail("--auth none serves without authentication and is refused on " + host +
                    ": listen on a loopback address (127.0.0.1 or [::1]) or use --auth jwt",
                2);
  }

  // Block the stop signals in every thread we start; main waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  bmos::engine::EngineOptions eo;
  eo.durability = *bmos::storage::ParseDurability(config.durability);
  eo.data_dir = config.data_dir;
  eo.wal_zero_ahead = config.wal_zero_ahead;
  Result<std::vector<bmos::engine::WorkerGroupOptions>> groups = Groups(config);
  if (!groups.ok()) return Fail(groups.status().message(), 2);
  eo.groups = std::move(groups).value();
  eo.retention.max_age = std::chrono::hours(config.retention_hours);
  eo.retention.max_count = static_cast<uint64_t>(config.retention_max_count);

  Result<std::unique_ptr<bmos::engine::Engine>> opened = bmos::engine::Engine::Open(eo);
  if (!opened.ok()) return Fail("cannot open the engine: " + opened.status().ToString());
  std::unique_ptr<bmos::engine::Engine> engine = std::move(opened).value();
  // After the engine: on a first start the store creates the data directory, and the secret
  // then joins it (the store refuses to be created in a directory that already holds files).
  std::string secret;
  if (config.auth == "jwt") {
    Result<std::string> s = bmos::api::ResolveSecret(config.data_dir);
    if (!s.ok()) return Fail("JWT secret: " + s.status().message());
    secret = std::move(s).value();
  }
  if (config.test_handlers) {
    if (Status s = bmos::api::RegisterTestHandlers(*engine); !s.ok()) return Fail(s.ToString());
  }
  if (config.bmos_handlers) {
    bmos::engine::handlers::BmosHandlerOptions ho;
    ho.data_root = config.bmos_data_dir.empty() ? std::filesystem::path(config.data_dir) / "bmos"
                                                : std::filesystem::path(config.bmos_data_dir);
    if (Status s = bmos::engine::handlers::RegisterBmosHandlers(*engine, ho); !s.ok()) {
      return Fail("BMOS handlers: " + s.ToString());
    }
  }

  // After the handlers: jobs name them. Runs missed while the server was down are handled now.
  bmos::engine::SchedulerOptions sched_options;
  sched_options.default_timezone = config.timezone;
  Result<std::unique_ptr<bmos::engine::Scheduler>> scheduler =
      bmos::engine::Scheduler::Open(engine.get(), sched_options);
  if (!scheduler.ok()) return Fail("cannot start the scheduler: " + scheduler.status().ToString());
  if (config.bmos_handlers && config.default_timetable) {
    // Once per store: a marker beside it remembers that the jobs were installed, so a default
    // job the user deleted stays deleted. In memory mode nothing persists: installed each start.
    std::filesystem::path marker;
    if (eo.durability != bmos::storage::Durability::kMemory) {
      marker = std::filesystem::path(config.data_dir) / "default-timetable.installed";
    }
    Result<std::vector<std::string>> added =
        bmos::engine::handlers::InstallDefaultTimetable(**scheduler, marker);
    if (!added.ok()) return Fail("default timetable: " + added.status().ToString());
    if (!added->empty()) {
      std::string names;
      for (const std::string& id : *added) names += (names.empty() ? "" : ", ") + id;
      std::printf("bmos-taskd: default timetable installed: %s\n", names.c_str());
    }
  }

  bmos::api::ApiServiceOptions so;
  so.auth = config.auth == "jwt";
  so.jwt_secret = secret;
  so.scheduler = scheduler->get();
  Result<std::unique_ptr<bmos::api::ApiService>> service =
      bmos::api::ApiService::Create(engine.get(), so);
  if (!service.ok()) return Fail(service.status().ToString());

  bmos::api::ServerOptions server_options;
  server_options.address = host;
  server_options.port = port;
  server_options.io_threads = config.io_threads;
  server_options.max_body_bytes = static_cast<size_t>(config.max_body_bytes);
  server_options.max_header_bytes = static_cast<size_t>(config.max_header_bytes);
  server_options.max_connections = static_cast<size_t>(config.max_connections);
  server_options.read_timeout = std::chrono::milliseconds(config.read_timeout_ms);
  server_options.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  Result<std::unique_ptr<bmos::api::Server>> server =
      bmos::api::Server::Start(server_options, service->get());
  if (!server.ok()) return Fail(server.status().ToString());

  const std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::printf("bmos-taskd: listening on http://%s:%u (durability %s, auth %s, data %s)\n",
              shown_host.c_str(), (*server)->port(), config.durability.c_str(), config.auth.c_str(),
              config.data_dir.c_str());
  std::fflush(stdout);
  if (!config.port_file.empty()) {
    // Written whole under a temporary name and renamed, so a reader never sees a partial port.
    const std::string tmp = config.port_file + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << (*server)->port() << "\n";
      if (!f) return Fail("cannot write --port-file " + tmp);
    }
    if (std::rename(tmp.c_str(), config.port_file.c_str()) != 0) {
      return Fail("cannot write --port-file " + config.port_file + ": " + std::strerror(errno));
    }
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::printf("bmos-taskd: %s: draining (up to %llds for running tasks)\n",
              sig == SIGTERM ? "SIGTERM" : "SIGINT", static_cast<long long>(config.drain_seconds));
  std::fflush(stdout);
  // Stop taking connections and requests, let running tasks finish (their outcomes are written),
  // answer what is in flight, then close. Tasks still waiting stay in the store for the next
  // start.
  (*server)->StopAccepting();
  (*service)->SetDraining();
  (*scheduler)->Stop();  // no new runs; statistics written
  Status stopped = engine->Stop(std::chrono::seconds(config.drain_seconds));
  (*server)->Stop(std::chrono::seconds(5));
  server->reset();
  scheduler->reset();
  engine.reset();  // closes the store (flushed by Stop)
  if (!stopped.ok()) return Fail("stop: " + stopped.ToString());
  std::printf("bmos-taskd: stopped\n");
  return 0;
}
