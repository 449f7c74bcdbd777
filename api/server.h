// Server: the Boost.Beast HTTP/1.1 front end of bmos-taskd. Asynchronous (Asio), keep-alive,
// a fixed pool of I/O threads, each running its own event loop; connections are spread over the
// loops round-robin and stay on theirs, so a connection's state has one owner thread. Requests go
// to an ApiService; answers that come later (an enqueue waits for its record to be durable) are
// posted back to the connection's loop.
//
// Limits, each with a clear answer: body size (413), header size (431), connections (503 to the
// connection over the limit, then close), an idle keep-alive connection is closed after
// idle_timeout, and a request must arrive whole within read_timeout of its first byte (a client
// that sends one byte a second is dropped). Malformed HTTP gets 400 and the connection closes.
//
// Thread-safety: Start, port, StopAccepting and Stop may be called from any thread; Stop joins
// the I/O threads (REQUIRES: not called from one of them).
#ifndef BMOS_API_SERVER_H_
#define BMOS_API_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/service.h"
#include "storage/status.h"

namespace bmos::api {

struct ServerOptions {
  // IPv4 or IPv6 literal to listen on. Default: "127.0.0.1".
  std::string address = "127.0.0.1";
  // TCP port; 0 picks a free one (see Server::port). Default: 8080.
  uint16_t port = 8080;
  // Threads running the Asio event loop (parsing, auth, JSON, engine calls). Default: 2.
  int io_threads = 2;
  // Largest request body; larger ones get 413 before the body is read. Default: 2 MiB.
  size_t max_body_bytes = 2u << 20;
  // Largest request line plus headers; larger ones get 431. Default: 16 KiB.
  size_t max_header_bytes = 16u << 10;
  // A request must arrive whole within this time of its first byte; a slower client gets 408
  // and the connection closes. Answers must be written within it too. Default: 10 s.
  std::chrono::milliseconds read_timeout{10'000};
  // A keep-alive connection with no request for this long is closed. Default: 60 s.
  std::chrono::milliseconds idle_timeout{60'000};
  // Open connections at most; the next one is answered 503 and closed. Default: 10,000.
  size_t max_connections = 10'000;
};

class Server {
 public:
  // Binds, listens and starts the I/O threads. InvalidArgument for bad options (address, zero
  // threads or limits); IOError when the address cannot be bound (in use, not local).
  // `service` must outlive the server.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, ApiService* service);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Stop().
  ~Server();

  // The port the server listens on (the one the OS picked when options.port was 0).
  uint16_t port() const;

  // Closes the listening socket: new connections are refused by the OS; open ones stay.
  void StopAccepting();

  // Stops accepting, closes every connection once its request in progress (if any) has been
  // answered or `grace` has passed, and joins the I/O threads. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5'000));

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bmos::api

#endif  // BMOS_API_SERVER_H_
