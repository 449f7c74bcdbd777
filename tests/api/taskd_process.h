// TaskdProcess: runs the real bmos-taskd binary for integration tests, on 127.0.0.1 with an
// ephemeral port (read back from --port-file), a test-chosen JWT secret (BMOS_JWT_SECRET), and
// --with-test-handlers. Start waits (bounded) for the port; Terminate sends SIGTERM and waits
// (bounded) for the exit; the destructor ends a process still running, by its pid only.
//
// Thread-safety: one test thread drives a TaskdProcess.
#ifndef BMOS_TESTS_API_TASKD_PROCESS_H_
#define BMOS_TESTS_API_TASKD_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/jwt.h"

namespace bmos::api::test_util {

inline constexpr char kTestSecret[] = "integration-test-secret-0123456789";

#ifdef BMOS_TASKD_BIN
// The bmos-taskd built with the tests (CMake passes its path).
inline constexpr char kTaskd[] = BMOS_TASKD_BIN;
#endif

// A token for `role` signed with kTestSecret, valid for an hour.
inline std::string TokenFor(const std::string& role, int64_t ttl_seconds = 3600) {
  Claims c;
  c.subject = "test";
  c.role = role;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  c.iat = now;
  c.exp = now + ttl_seconds;
  return SignJwt(kTestSecret, c);
}

class TaskdProcess {
 public:
  // `data_dir` and `extra_args` go to bmos-taskd after the defaults; a later flag wins.
  TaskdProcess(std::string binary, std::string data_dir, std::vector<std::string> extra_args = {})
      : binary_(std::move(binary)), data_dir_(std::move(data_dir)), extra_(std::move(extra_args)) {}
  ~TaskdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  TaskdProcess(const TaskdProcess&) = delete;
  TaskdProcess& operator=(const TaskdProcess&) = delete;

  // Starts the server and waits up to 30 s for its port. False if it exited or never listened
  // (its output is in log()).
  bool Start() {
    port_file_ = data_dir_ + ".port";
    log_file_ = data_dir_ + ".log";
    ::unlink(port_file_.c_str());
    std::vector<std::string> args = {
        binary_,   "--listen",     "127.0.0.1:0", "--port-file",          port_file_,  "--data-dir",
        data_dir_, "--durability", "async",       "--with-test-handlers", "--workers", "2"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::setenv("BMOS_JWT_SECRET", kTestSecret, 1);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(binary_.c_str(), argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream f(port_file_);
      int port = 0;
      if (f >> port && port > 0) {
        port_ = static_cast<uint16_t>(port);
        return true;
      }
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = st;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Sends SIGTERM and waits up to `timeout` for the exit. The exit code, or nullopt if the
  // process did not exit in time (it is then killed) or died by a signal.
  std::optional<int> Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (pid_ <= 0) return std::nullopt;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = st;
        if (WIFEXITED(st)) return WEXITSTATUS(st);
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return std::nullopt;
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  std::string log() const {
    std::ifstream f(log_file_);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }

 private:
  std::string binary_;
  std::string data_dir_;
  std::vector<std::string> extra_;
  std::string port_file_;
  std::string log_file_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int exit_status_ = 0;
};

}  // namespace bmos::api::test_util

#endif  // BMOS_TESTS_API_TASKD_PROCESS_H_
