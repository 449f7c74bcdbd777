#include "api/server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/json_writer.h"
#include "storage/callback_batch.h"

namespace bmos::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;
struct Shared;
class DeferredAnswers;

// Hands `response` to `session`'s loop, which writes it. Inside a storage::CallbackBatch (a store
// answering the enqueues of one group commit) the answers wait for the batch's end and then go
// to their loops in one post per loop (DeferredAnswers).
void AnswerOnLoop(std::shared_ptr<Session> session, std::shared_ptr<Shared> shared,
                  ApiResponse response);

// What the server's sessions and in-flight answers share. Held by shared_ptr: an engine thread
// that answers an enqueue after the server stopped still posts into a live io_context (the
// posted handler is then destroyed with it, unrun).
struct Shared {
  ServerOptions options;
  ApiService* service = nullptr;
  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // GUARDED_BY(mu)
  bool stopping = false;                                          // GUARDED_BY(mu)
  std::atomic<size_t> next_loop{0};  // round-robin of accepted connections over `loops`
  // One event loop per I/O thread: a connection lives on one loop, so its handlers never run
  // concurrently (no strand needed) and the loops share no scheduler lock. Destroyed before
  // everything above: handlers they destroy may end sessions, which unregister above.
  std::vector<std::unique_ptr<net::io_context>> loops;

  // Keep each loop's run() going while it has no connection yet (Stop ends it with stop()).
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;

  explicit Shared(int threads) {
    for (int i = 0; i < threads; ++i) {
      // Hint 1: one thread runs each loop (other threads still post into it safely).
      loops.push_back(std::make_unique<net::io_context>(1));
      keep_running.push_back(net::make_work_guard(*loops.back()));
    }
  }
};

using Executor = net::io_context::executor_type;
// The socket and timer carry the loop's concrete executor type: a type-erased executor
// (any_io_executor) costs a copy and a virtual dispatch in every asynchronous operation.
using Socket = net::basic_stream_socket<tcp, Executor>;
using Timer = net::basic_waitable_timer<std::chrono::steady_clock,
                                        net::wait_traits<std::chrono::steady_clock>, Executor>;
using Clock = std::chrono::steady_clock;

// One connection. Every member is touched only by the thread of the connection's event loop.
//
// Timeouts use one lazy timer per connection: each phase (idle wait, request read, answer write)
// only moves `deadline_`; the timer, armed at most once at a time, wakes at the deadline it was
// armed for and re-arms itself if the deadline moved later. A busy keep-alive connection thus
// costs no timer system call per request.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket&& socket, std::shared_ptr<Shared> shared, bool over_limit)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        shared_(std::move(shared)),
        over_limit_(over_limit),
        // The whole header must fit the read buffer (the parser then enforces the header limit
        // itself); body bytes pass through it in pieces.
        buffer_(shared_->options.max_header_bytes + kReadChunk) {}

  ~Session() {
    shared_->service->metrics().ConnectionClosed();
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->sessions.erase(this);
  }

  // Registers the session (false: the server is stopping) and starts reading.
  bool Start() {
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (shared_->stopping) return false;
      shared_->sessions.emplace(this, weak_from_this());
    }
    shared_->service->metrics().ConnectionOpened();
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      if (self->over_limit_) {
        self->shared_->service->metrics().ConnectionRefused();
        self->keep_alive_ = false;
        return self->WriteError(503, "too many connections; retry later");
      }
      self->WaitForRequest();
    });
    return true;
  }

  // Graceful close, from any thread: an idle connection closes now, a busy one after its answer.
  void PostShutdown() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (!self->busy_) self->Close();
    });
  }

 private:
  // Both hand answers to the session's loop, where they call Write.
  friend class DeferredAnswers;
  friend void AnswerOnLoop(std::shared_ptr<Session>, std::shared_ptr<Shared>, ApiResponse);

  static constexpr size_t kReadChunk = 16 * 1024;

  const ServerOptions& options() const { return shared_->options; }
  HttpMetrics& metrics() const { return shared_->service->metrics(); }

  // Sets the deadline of the phase that starts now; Clock::time_point::max() for none.
  void SetDeadline(Clock::time_point deadline) {
    deadline_ = deadline;
    timed_out_ = false;
    if (timer_armed_ || deadline == Clock::time_point::max()) return;
    ArmTimer();
  }
  void ArmTimer() {
    timer_armed_ = true;
    timer_.expires_at(deadline_);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) { self->OnTimer(ec); });
  }
  void OnTimer(beast::error_code ec) {
    timer_armed_ = false;
    if (ec || closed_ || deadline_ == Clock::time_point::max()) return;
    if (Clock::now() < deadline_) return ArmTimer();  // the deadline moved on meanwhile
    // Expired: cancel the phase's pending operation; its handler sees timed_out_.
    timed_out_ = true;
    beast::error_code ignored;
    socket_.cancel(ignored);
  }

  void WaitForRequest() {
    if (closing_) return Close();
    parser_.emplace();
    parser_->body_limit(options().max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(options().max_header_bytes));
    if (buffer_.size() > 0) return ReadHeader();  // a pipelined request is already here
    // Idle phase: wait for the first byte of the next request for at most idle_timeout.
    SetDeadline(Clock::now() + options().idle_timeout);
    socket_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();  // idle timeout, EOF, reset
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  // The request must arrive whole within read_timeout of its first byte.
  void ReadHeader() {
    SetDeadline(Clock::now() + options().read_timeout);
    http::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    // curl and other clients send `Expect: 100-continue` before a large body and wait for it.
    const auto& header = parser_->get();
    auto expect = header.find(http::field::expect);
    if (expect != header.end() && beast::iequals(expect->value(), "100-continue") &&
        !parser_->is_done()) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->OnReadError(ec);
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->OnRequest();
                     });
  }

  void OnReadError(beast::error_code ec) {
    keep_alive_ = false;
    if (timed_out_) {
      metrics().RequestRejected(HttpMetrics::Rejection::kTimeout);
      return WriteError(408, "request not received within the read timeout");
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      metrics().RequestRejected(HttpMetrics::Rejection::kBodyTooLarge);
      return WriteError(
          413, "request body larger than " + std::to_string(options().max_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      metrics().RequestRejected(HttpMetrics::Rejection::kHeadersTooLarge);
      return WriteError(431, "request header fields larger than " +
                                 std::to_string(options().max_header_bytes) + " bytes");
    }
    // Anything else the parser refused (bad method, target, version, chunk, ...).
    WriteError(400, "malformed HTTP request: " + ec.message());
  }

  void OnRequest() {
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    http10_ = req.version() < 11;
    ApiRequest request;
    request.method = req.method();
    request.target = std::string(req.target());
    request.body = std::move(req.body());
    auto auth = req.find(http::field::authorization);
    if (auth != req.end()) request.authorization = std::string(auth->value());
    busy_ = true;
    // No deadline while the service works: an enqueue may wait for an fsync.
    SetDeadline(Clock::time_point::max());
    // The answer may come from an engine thread: post it back to this connection's loop. The
    // Shared copy keeps the io_context alive for that post even if the server is gone.
    shared_->service->Handle(std::move(request), [self = shared_from_this(),
                                                  shared = shared_](ApiResponse response) mutable {
      AnswerOnLoop(std::move(self), std::move(shared), std::move(response));
    });
  }

  Executor executor() { return socket_.get_executor(); }

  void WriteError(unsigned status, std::string_view detail) {
    ApiResponse r;
    r.status = status;
    r.body = DetailJson(detail);
    if (status >= 400 && status != 503) {
      metrics().Record(shared_->service->unmatched_route(), static_cast<int>(status), 0);
    }
    Write(std::move(r));
  }

  // Serialises the answer by hand into one buffer: the fixed header set needs no field
  // container, and one buffer is one send.
  void Write(ApiResponse r) {
    busy_ = true;
    const bool keep = keep_alive_ && !closing_;
    keep_alive_ = keep;
    out_.clear();
    out_.reserve(160 + r.body.size() + r.allow.size());
    out_.append("HTTP/1.1 ");
    out_.append(std::to_string(r.status));
    out_.push_back(' ');
    const std::string_view reason = http::obsolete_reason(static_cast<http::status>(r.status));
    out_.append(reason.data(), reason.size());
    out_.append("\r\nServer: bmos-taskd\r\nContent-Type: ");
    out_.append(r.content_type);
    out_.append("\r\nContent-Length: ");
    out_.append(std::to_string(r.body.size()));
    if (!r.allow.empty()) out_.append("\r\nAllow: ").append(r.allow);
    if (r.bearer_challenge) out_.append("\r\nWWW-Authenticate: Bearer");
    if (!keep) {
      out_.append("\r\nConnection: close");
    } else if (http10_) {
      out_.append("\r\nConnection: keep-alive");
    }
    out_.append("\r\n\r\n");
    out_.append(r.body);
    SetDeadline(Clock::now() + options().read_timeout);
    net::async_write(socket_, net::buffer(out_),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->busy_ = false;
                       if (ec || !self->keep_alive_) return self->Close();
                       self->WaitForRequest();
                     });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }

  Socket socket_;
  Timer timer_;
  std::shared_ptr<Shared> shared_;
  const bool over_limit_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the answer being written
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timer_armed_ = false;
  bool timed_out_ = false;  // the current phase's deadline passed
  bool keep_alive_ = true;
  bool http10_ = false;
  bool busy_ = false;     // a request is being answered
  bool closing_ = false;  // close after the answer in progress
  bool closed_ = false;
};

// The answers one thread gave inside its current CallbackBatch, waiting for the batch's end.
// Posted one by one, each answer woke its loop's thread, which on a small machine (often on the
// answering thread's core, which it then took over) wrote that one answer and slept again:
// once per answer instead of once per commit.
class DeferredAnswers {
 public:
  // False outside a batch (or when the batch defers too much else): the caller answers itself.
  static bool Add(std::shared_ptr<Session>& session, std::shared_ptr<Shared>& shared,
                  ApiResponse& response) {
    DeferredAnswers& d = Mine();
    if (d.items_.empty() && !storage::CallbackBatch::Defer(&DeferredAnswers::Flush, &d)) {
      return false;
    }
    d.items_.push_back({std::move(session), std::move(shared), std::move(response)});
    return true;
  }

 private:
  struct Item {
    std::shared_ptr<Session> session;
    std::shared_ptr<Shared> shared;  // keeps the session's loop alive until the post
    ApiResponse response;
  };

  static DeferredAnswers& Mine() {
    static thread_local DeferredAnswers answers;
    return answers;
  }

  // The batch's end: one handler per loop writes that loop's answers, in the order given.
  static void Flush(void* arg, int /*times*/) {
    auto* d = static_cast<DeferredAnswers*>(arg);
    std::vector<Item> items;
    items.swap(d->items_);
    // Most batches hold answers for a few loops: group by loop with a linear scan.
    std::vector<std::vector<Item>> by_loop;
    for (Item& item : items) {
      auto same = std::find_if(by_loop.begin(), by_loop.end(), [&](const std::vector<Item>& g) {
        return g.front().session->executor() == item.session->executor();
      });
      if (same == by_loop.end()) {
        by_loop.emplace_back().push_back(std::move(item));
      } else {
        same->push_back(std::move(item));
      }
    }
    for (std::vector<Item>& group : by_loop) {
      Executor executor = group.front().session->executor();
      net::dispatch(executor, [group = std::move(group)]() mutable {
        for (Item& item : group) item.session->Write(std::move(item.response));
      });
    }
    // Keeps its buffer for the next batch.
    items.clear();
    if (d->items_.empty()) d->items_.swap(items);
  }

  std::vector<Item> items_;
};

void AnswerOnLoop(std::shared_ptr<Session> session, std::shared_ptr<Shared> shared,
                  ApiResponse response) {
  if (DeferredAnswers::Add(session, shared, response)) return;
  Executor executor = session->executor();
  net::dispatch(executor, [self = std::move(session), response = std::move(response)]() mutable {
    self->Write(std::move(response));
  });
}

}  // namespace

struct Server::Impl {
  std::shared_ptr<Shared> shared;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool stopped = false;  // GUARDED_BY(stop_mu)
  std::mutex stop_mu;
  std::atomic<bool> accepting{true};

  void Accept() {
    acceptor->async_accept(shared
                               ->loops[shared->next_loop.fetch_add(1, std::memory_order_relaxed) %
                                       shared->loops.size()]
                               ->get_executor(),
                           [this](beast::error_code ec, Socket socket) {
                             if (ec == net::error::operation_aborted) return;  // closed
                             if (!ec) {
                               beast::error_code ignored;
                               socket.set_option(tcp::no_delay(true), ignored);
                               size_t live;
                               {
                                 std::lock_guard<std::mutex> lock(shared->mu);
                                 live = shared->sessions.size();
                               }
                               auto session = std::make_shared<Session>(
                                   std::move(socket), shared,
                                   live >= shared->options.max_connections);
                               if (!session->Start()) return;
                             }
                             // Errors of one accept (EMFILE, a reset) do not stop the loop.
                             Accept();
                           });
  }
};

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, ApiService* service) {
  if (options.io_threads < 1 || options.io_threads > 256) {
    return Status::InvalidArgument("io_threads: must be within 1..256");
  }
  if (options.max_body_bytes == 0 || options.max_header_bytes < 1024 ||
      options.max_connections == 0) {
    return Status::InvalidArgument(
        "limits: max_body_bytes and max_connections must be > 0, max_header_bytes >= 1024");
  }
  if (options.read_timeout.count() <= 0 || options.idle_timeout.count() <= 0) {
    return Status::InvalidArgument("timeouts: must be > 0");
  }
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(options.address, ec);
  if (ec) {
    return Status::InvalidArgument("listen address '" + options.address +
                                   "' is not an IPv4 or IPv6 address");
  }
  auto impl = std::make_unique<Impl>();
  impl->shared = std::make_shared<Shared>(options.io_threads);
  impl->shared->options = options;
  impl->shared->service = service;
  impl->acceptor = std::make_unique<tcp::acceptor>(impl->shared->loops[0]->get_executor());
  const tcp::endpoint endpoint(address, options.port);
  const std::string where = options.address + ":" + std::to_string(options.port);
  if (impl->acceptor->open(endpoint.protocol(), ec); ec) {
    return Status::IOError("cannot open a socket for " + where + ": " + ec.message());
  }
  (void)impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (impl->acceptor->bind(endpoint, ec); ec) {
    return Status::IOError("cannot listen on " + where + ": " + ec.message());
  }
  if (impl->acceptor->listen(net::socket_base::max_listen_connections, ec); ec) {
    return Status::IOError("cannot listen on " + where + ": " + ec.message());
  }
  impl->port = impl->acceptor->local_endpoint(ec).port();
  impl->Accept();
  for (int i = 0; i < options.io_threads; ++i) {
    impl->threads.emplace_back([loop = impl->shared->loops[i].get()] { loop->run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

uint16_t Server::port() const { return impl_->port; }

void Server::StopAccepting() {
  if (!impl_->accepting.exchange(false, std::memory_order_acq_rel)) return;
  // The acceptor belongs to the first loop; close it there (the I/O threads still run).
  std::promise<void> done;
  net::post(impl_->acceptor->get_executor(), [this, &done] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
    done.set_value();
  });
  done.get_future().wait();
}

void Server::Stop(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> stop_lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  StopAccepting();
  Shared& shared = *impl_->shared;
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    shared.stopping = true;
    for (auto& [raw, weak] : shared.sessions) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  for (auto& s : sessions) s->PostShutdown();
  sessions.clear();
  // Bounded wait for the sessions to finish their answers and close.
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(shared.mu);
      if (shared.sessions.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // What is left (a connection whose answer never came) is dropped with the event loop.
  for (auto& loop : shared.loops) loop->stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace bmos::api
