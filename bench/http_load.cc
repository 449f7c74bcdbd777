#include "bench/http_load.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <memory>
#include <string_view>
#include <thread>
#include <utility>

namespace bmos::bench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using storage::Result;
using storage::Status;
using SteadyClock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

double CpuSeconds(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The run's phases, set by the controlling thread and read by the client threads. Relaxed on
// both sides: a client thread that sees a change one response late only moves that response
// across the window's edge. Everything else the controller reads is read after join().
enum Phase : int { kWarmup = 0, kMeasure = 1, kStop = 2 };

// Log-linear histogram of nanoseconds: exact below 64, then 64 sub-buckets per power of two
// (about 1.6% wide). One writer, no atomics: it is read after its thread is joined.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (41 - kSubBits) * kSub + kSub;  // up to 2^41 ns (36 min)

  void Record(int64_t ns) {
    const uint64_t v = ns < 0 ? 0 : static_cast<uint64_t>(ns);
    ++buckets_[static_cast<size_t>(BucketOf(v))];
    ++count_;
    max_ = std::max(max_, v);
  }
  void MergeFrom(const LatencyHistogram& other) {
    for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }
  // The lower bound of the bucket holding the sample of rank ceil(q * count) (nearest rank, as
  // the other scenarios compute exact quantiles), never above the maximum. 0 when empty.
  int64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += buckets_[static_cast<size_t>(i)];
      if (seen >= rank) return static_cast<int64_t>(std::min(LowerBound(i), max_));
    }
    return static_cast<int64_t>(max_);
  }
  int64_t max() const { return static_cast<int64_t>(max_); }

 private:
  static int BucketOf(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - kSubBits;
    const int index = (shift + 1) * kSub + static_cast<int>((v >> shift) & (kSub - 1));
    return std::min(index, kBuckets - 1);
  }
  static uint64_t LowerBound(int index) {
    if (index < kSub) return static_cast<uint64_t>(index);
    const int shift = index / kSub - 1;
    return static_cast<uint64_t>(kSub + index % kSub) << shift;
  }

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

class Connection;

// One client thread: its io_context, its connections and what they counted. Owned by the
// controller; after start, only the thread itself touches it until `finished` is set and the
// thread is joined.
struct ClientThread {
  explicit ClientThread(const std::atomic<int>* run_phase) : phase(run_phase) {}

  net::io_context ioc{1};
  const std::atomic<int>* phase;
  // Declared after ioc, so destroyed before it: closing a socket needs its io_context.
  std::vector<std::unique_ptr<Connection>> connections;
  LatencyHistogram histogram;
  uint64_t measured = 0;
  uint64_t measured_ok = 0;
  std::array<uint64_t, 1000> status_counts{};  // by status code (000..999)
  uint64_t io_errors = 0;
  std::string first_error;
  // Set with release once run() has returned; the controller polls it with acquire.
  std::atomic<bool> finished{false};
  std::thread thread;

  void Error(std::string what) {
    if (io_errors++ == 0) first_error = std::move(what);
  }
};

// One keep-alive connection in a closed loop: write a request, read its whole response, repeat.
// Touched only by its ClientThread's thread (after the controller's first SendNext).
class Connection {
 public:
  Connection(ClientThread* owner, tcp::socket socket, const std::vector<std::string>* requests,
             size_t first)
      : owner_(owner), socket_(std::move(socket)), requests_(requests), next_(first) {}

  // Sends the next request, unless the run is over.
  void SendNext() {
    if (owner_->phase->load(std::memory_order_relaxed) == kStop) return;  // done: no more work
    const std::string& request = (*requests_)[next_];
    next_ = next_ + 1 == requests_->size() ? 0 : next_ + 1;
    sent_ns_ = NowNs();
    net::async_write(socket_, net::buffer(request),
                     [this](const boost::system::error_code& ec, size_t) {
                       if (ec) return Fail("write: " + ec.message());
                       Read();
                     });
  }

 private:
  static constexpr size_t kBufferBytes = 32 * 1024;

  void Read() {
    socket_.async_read_some(
        net::buffer(buffer_.data() + have_, buffer_.size() - have_),
        [this](const boost::system::error_code& ec, size_t n) {
          if (ec) {
            return Fail(ec == net::error::eof ? "the server closed the connection"
                                              : "read: " + ec.message());
          }
          have_ += n;
          OnBytes();
        });
  }

  // Parses what has arrived; reads more, or completes the response.
  void OnBytes() {
    const std::string_view data(buffer_.data(), have_);
    if (total_ == 0) {
      const size_t header_end = data.find("\r\n\r\n");
      if (header_end == std::string_view::npos) {
        if (have_ == buffer_.size()) return Fail("response header larger than the buffer");
        return Read();
      }
      if (!ParseHeader(data.substr(0, header_end))) return;  // failed
      total_ = header_end + 4 + content_length_;
      if (total_ > buffer_.size()) return Fail("response larger than the buffer");
    }
    if (have_ < total_) return Read();
    if (have_ > total_) return Fail("bytes beyond the response (the client sends one at a time)");
    const int64_t now = NowNs();
    ++owner_->status_counts[static_cast<size_t>(status_)];
    if (owner_->phase->load(std::memory_order_relaxed) == kMeasure) {
      owner_->histogram.Record(now - sent_ns_);
      ++owner_->measured;
      if (status_ == 200) ++owner_->measured_ok;
    }
    have_ = 0;
    total_ = 0;
    if (close_) {
      return Fail("the server closed the connection after a " + std::to_string(status_) +
                  " answer");
    }
    SendNext();
  }

  // "HTTP/1.1 200 OK\r\nName: value\r\n...": the status, Content-Length and Connection.
  bool ParseHeader(std::string_view header) {
    if (header.size() < 12 || !header.starts_with("HTTP/1.") || header[8] != ' ') {
      Fail("not an HTTP/1.x status line");
      return false;
    }
    status_ = 0;
    for (size_t i = 9; i < 12; ++i) {
      if (header[i] < '0' || header[i] > '9') {
        Fail("bad status code");
        return false;
      }
      status_ = status_ * 10 + (header[i] - '0');
    }
    bool have_length = false;
    close_ = false;
    size_t pos = header.find("\r\n");
    while (pos != std::string_view::npos) {
      const size_t start = pos + 2;
      size_t end = header.find("\r\n", start);
      const std::string_view line =
          header.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      pos = end;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = line.substr(0, colon);
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      if (EqualsIgnoreCase(name, "content-length")) {
        size_t n = 0;
        for (char c : value) {
          if (c < '0' || c > '9') {
            Fail("bad Content-Length");
            return false;
          }
          n = n * 10 + static_cast<size_t>(c - '0');
        }
        content_length_ = n;
        have_length = true;
      } else if (EqualsIgnoreCase(name, "connection")) {
        close_ = EqualsIgnoreCase(value, "close");
      } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
        Fail("Transfer-Encoding is not supported by this client");
        return false;
      }
    }
    if (!have_length) {
      Fail("response without Content-Length");
      return false;
    }
    return true;
  }

  static bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
    if (a.size() != lower.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char c = a[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != lower[i]) return false;
    }
    return true;
  }

  // Counts the error and drops the connection (no more requests on it).
  void Fail(std::string what) {
    owner_->Error(std::move(what));
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  ClientThread* owner_;
  tcp::socket socket_;
  const std::vector<std::string>* requests_;
  size_t next_;
  int64_t sent_ns_ = 0;
  std::array<char, kBufferBytes> buffer_{};
  size_t have_ = 0;            // bytes of the current response in buffer_
  size_t total_ = 0;           // the response's length once its header is parsed; 0 before
  size_t content_length_ = 0;  // of the current response
  int status_ = 0;             // of the current response
  bool close_ = false;         // the current response says `Connection: close`
};

}  // namespace

bool HttpLoadResult::clean() const {
  if (io_errors > 0) return false;
  for (const auto& [status, count] : status_counts) {
    if (status != 200 && count > 0) return false;
  }
  return true;
}

std::string HttpLoadResult::Summary() const {
  std::string out;
  for (const auto& [status, count] : status_counts) {
    if (!out.empty()) out += ", ";
    out += std::to_string(status) + ": " + std::to_string(count);
  }
  if (out.empty()) out = "no responses";
  if (io_errors > 0) {
    out += ", connections lost: " + std::to_string(io_errors) + " (first: " + first_error + ")";
  }
  return out;
}

Result<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& options) {
  if (options.connections < 1 || options.client_threads < 1 || options.requests.empty() ||
      options.port == 0 || options.duration_s <= 0 || options.warmup_s < 0) {
    return Status::InvalidArgument(
        "http load: connections, client_threads, port, duration must be > 0 and requests "
        "non-empty");
  }
  boost::system::error_code ec;
  const net::ip::address address = net::ip::make_address(options.host, ec);
  if (ec) return Status::InvalidArgument("http load: bad host '" + options.host + "'");
  const tcp::endpoint endpoint(address, options.port);

  std::atomic<int> phase{kWarmup};
  const int thread_count = std::min(options.client_threads, options.connections);
  std::vector<std::unique_ptr<ClientThread>> threads;
  for (int t = 0; t < thread_count; ++t) threads.push_back(std::make_unique<ClientThread>(&phase));

  // Connect every connection before the load starts (blocking; there is nothing to overlap).
  const auto connect_deadline =
      SteadyClock::now() + std::chrono::duration<double>(options.max_wait_s);
  for (int c = 0; c < options.connections; ++c) {
    ClientThread& owner = *threads[static_cast<size_t>(c % thread_count)];
    tcp::socket socket(owner.ioc);
    if (socket.connect(endpoint, ec); ec) {
      return Status::IOError("http load: cannot connect to " + options.host + ":" +
                             std::to_string(options.port) + ": " + ec.message());
    }
    socket.set_option(tcp::no_delay(true), ec);
    owner.connections.push_back(std::make_unique<Connection>(
        &owner, std::move(socket), &options.requests,
        static_cast<size_t>(c) % options.requests.size()));
    if (SteadyClock::now() > connect_deadline) {
      return Status::DeadlineExceeded("http load: connecting took longer than max_wait");
    }
  }

  // The first request of every connection is queued before its thread runs, so run() has work
  // from the start and returns only once every connection has stopped.
  for (auto& t : threads) {
    for (auto& c : t->connections) c->SendNext();
  }
  std::vector<clockid_t> cpu_clocks;
  for (auto& t : threads) {
    ClientThread* raw = t.get();
    t->thread = std::thread([raw] {
      // Named, so that a profile of the whole process (perf --sort comm) separates the client
      // from the server it shares the process with.
      pthread_setname_np(pthread_self(), "http-client");
      raw->ioc.run();
      // Release pairs with the controller's acquire load in AllFinished.
      raw->finished.store(true, std::memory_order_release);
    });
    clockid_t clock{};
    if (pthread_getcpuclockid(t->thread.native_handle(), &clock) == 0) cpu_clocks.push_back(clock);
  }
  auto all_finished = [&] {
    return std::all_of(threads.begin(), threads.end(), [](const auto& t) {
      return t->finished.load(std::memory_order_acquire);
    });
  };
  auto client_cpu = [&] {
    double sum = 0;
    for (clockid_t c : cpu_clocks) sum += CpuSeconds(c);
    return sum;
  };
  // Sleeps `seconds`, waking early when every connection has already failed.
  auto sleep_for = [&](double seconds) {
    const auto until = SteadyClock::now() + std::chrono::duration<double>(seconds);
    while (SteadyClock::now() < until && !all_finished()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };

  sleep_for(options.warmup_s);
  const double client_cpu0 = client_cpu();
  const double process_cpu0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  const auto window_start = SteadyClock::now();
  phase.store(kMeasure, std::memory_order_relaxed);
  sleep_for(options.duration_s);
  phase.store(kStop, std::memory_order_relaxed);
  const auto window_end = SteadyClock::now();
  const double process_cpu1 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  const double client_cpu1 = client_cpu();

  // Each connection finishes the request it has in flight, then its thread runs out of work.
  const auto drain_deadline =
      SteadyClock::now() + std::chrono::duration<double>(options.max_wait_s);
  while (!all_finished() && SteadyClock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool drained = all_finished();
  if (!drained) {
    for (auto& t : threads) t->ioc.stop();
  }
  for (auto& t : threads) t->thread.join();
  if (!drained) {
    return Status::DeadlineExceeded("http load: requests still unanswered " +
                                    std::to_string(options.max_wait_s) + " s after the window");
  }

  HttpLoadResult result;
  result.measured_s = std::chrono::duration<double>(window_end - window_start).count();
  result.client_cpu_s = client_cpu1 - client_cpu0;
  result.process_cpu_s = process_cpu1 - process_cpu0;
  LatencyHistogram merged;
  for (auto& t : threads) {
    merged.MergeFrom(t->histogram);
    result.measured += t->measured;
    result.measured_ok += t->measured_ok;
    for (size_t s = 0; s < t->status_counts.size(); ++s) {
      if (t->status_counts[s] > 0) result.status_counts[static_cast<int>(s)] += t->status_counts[s];
    }
    if (t->io_errors > 0 && result.io_errors == 0) result.first_error = t->first_error;
    result.io_errors += t->io_errors;
  }
  result.p50_ns = merged.Quantile(0.50);
  result.p99_ns = merged.Quantile(0.99);
  result.p999_ns = merged.Quantile(0.999);
  result.max_ns = merged.max();
  return result;
}

}  // namespace bmos::bench
