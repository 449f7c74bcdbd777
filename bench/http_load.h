// HttpLoad: the closed-loop HTTP/1.1 load generator of bmos-taskbench's http scenario.
//
// It opens C keep-alive connections to one server and spreads them over a few client threads,
// each running its own Asio io_context. Every connection sends a prebuilt request, waits for the
// whole response, and only then sends its next request (a closed loop: at most one request in
// flight per connection). The run has a warm-up, whose responses are checked but not measured,
// then the measured window. After the window each connection finishes the request it has in
// flight and stops.
//
// What it measures:
//   - each request, from just before its write to the last byte of its response, into a
//     log-linear histogram in nanoseconds (64 sub-buckets per power of two, about 1.6%);
//   - the responses by status code, over the whole run (warm-up included);
//   - the client threads' CPU time, and the whole process's, over the window.
//
// The response parser is small on purpose: it reads the status line, Content-Length and
// `Connection: close`, and nothing else. It accepts no chunked bodies and no bytes beyond the
// response. It is cheap because the client shares the machine's cores with the server it
// measures.
//
// Thread-safety: RunHttpLoad blocks its caller until the run ends. It starts and joins its own
// client threads, and each connection is touched only by the thread of its io_context.
#ifndef BMOS_BENCH_HTTP_LOAD_H_
#define BMOS_BENCH_HTTP_LOAD_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/status.h"

namespace bmos::bench {

struct HttpLoadOptions {
  // The server: an IPv4 or IPv6 literal and a port. Default: 127.0.0.1, no port (REQUIRED).
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // Keep-alive connections, each with at most one request in flight. Default: 64.
  int connections = 64;
  // Threads that run the connections (connection i belongs to thread i % client_threads). One
  // thread leaves the most CPU to a server on the same machine; more are needed only when one
  // thread cannot keep the connections busy. Default: 1.
  int client_threads = 1;
  // Seconds of load before the window, to reach a steady state. Checked, not measured.
  // Default: 1.
  double warmup_s = 1;
  // Seconds of the measured window. Default: 5.
  double duration_s = 5;
  // Bounds the connect phase and, after the window, the wait for the requests still in flight.
  // A run that overruns ends with a failure instead of hanging. Default: 120.
  double max_wait_s = 120;
  // The complete HTTP/1.1 requests (request line, headers, blank line, body), sent as they are.
  // Connection i starts at request i % size and then cycles through them in order.
  // REQUIRES: not empty; each one keeps the connection open (no `Connection: close`).
  std::vector<std::string> requests;
};

struct HttpLoadResult {
  double measured_s = 0;       // the window's actual length
  uint64_t measured = 0;       // responses completed within the window, any status
  uint64_t measured_ok = 0;    // of which 200
  std::map<int, uint64_t> status_counts;  // every response of the run by status, warm-up too
  uint64_t io_errors = 0;      // connections lost (refused, reset, closed, unparsable answer)
  std::string first_error;     // the first of them, for the failure message; empty when none
  // Latency quantiles of the measured responses, in nanoseconds (a bucket's lower bound; the
  // maximum is exact). 0 when nothing was measured.
  int64_t p50_ns = 0;
  int64_t p99_ns = 0;
  int64_t p999_ns = 0;
  int64_t max_ns = 0;
  double client_cpu_s = 0;   // CPU time of the client threads over the window
  double process_cpu_s = 0;  // CPU time of the whole process over the window

  // True when every response of the run was 200 and no connection was lost.
  bool clean() const;
  // "200: 1234, 503: 2, I/O errors: 1 (first: ...)".
  std::string Summary() const;
};

// Connects every connection (IOError when one cannot connect), then runs the warm-up and the
// window as described above. A run that produced non-200 answers or lost connections still
// returns OK; the caller decides (see HttpLoadResult::clean). DeadlineExceeded when requests
// are still in flight max_wait_s after the window. InvalidArgument for bad options.
storage::Result<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& options);

}  // namespace bmos::bench

#endif  // BMOS_BENCH_HTTP_LOAD_H_
