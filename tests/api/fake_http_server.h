// FakeHttpServer: a scripted HTTP/1.1 server for client tests. It listens on a loopback port
// chosen by the kernel, records every request it reads, and answers each as the test's handler
// says: a response (kept alive or not, optionally closing the connection right after it), a
// close without any answer, or silence (the connection is held open, nothing is sent).
//
// It runs Beast's asynchronous operations (plain callbacks: g++ 12 warns falsely about
// Asio's coroutine frames under -fsanitize=address) on one background thread; the destructor stops
// that thread and closes every connection. Thread-safety: the handler runs on the server thread;
// requests() and connections() may be called from any thread.
#ifndef BMOS_TESTS_API_FAKE_HTTP_SERVER_H_
#define BMOS_TESTS_API_FAKE_HTTP_SERVER_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bmos::test_util {

// A loopback TCP port that is bound but not listening: a connection to it is refused, and,
// unlike a port closed after use, no other test running at the same time can take it over.
// port() is 0 if no port could be bound.
class RefusingPort {
 public:
  RefusingPort() : socket_(ioc_) {
    boost::system::error_code ec;
    socket_.open(boost::asio::ip::tcp::v4(), ec);
    if (!ec) socket_.bind({boost::asio::ip::address_v4::loopback(), 0}, ec);
    if (!ec) port_ = socket_.local_endpoint(ec).port();
    if (ec) port_ = 0;
  }
  uint16_t port() const { return port_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  uint16_t port_ = 0;
};

class FakeHttpServer {
 public:
  // A request as the server read it.
  struct Seen {
    int connection = 0;  // 1 for the first connection accepted, 2 for the next...
    std::string method;
    std::string target;
    std::string body;
    std::map<std::string, std::string> headers;  // names in lower case
  };

  struct Reply {
    enum class Kind {
      kAnswer,              // send the response below
      kCloseWithoutAnswer,  // close the connection without sending anything
      kHang,                // send nothing and keep the connection open
    };
    Kind kind = Kind::kAnswer;
    int status = 200;
    std::string body = "{}";
    std::string content_type = "application/json";
    bool keep_alive = true;    // false: "Connection: close", then close
    bool close_after = false;  // close right after the response although it said keep-alive
  };

  using Handler = std::function<Reply(const Seen&)>;

  // Listens on `address` ("127.0.0.1" or "::1"), port 0. ok() is false when that failed.
  explicit FakeHttpServer(Handler handler, const std::string& address = "127.0.0.1")
      : handler_(std::move(handler)) {
    namespace net = boost::asio;
    boost::system::error_code ec;
    const net::ip::tcp::endpoint endpoint(net::ip::make_address(address, ec), 0);
    if (ec) return;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return;
    port_ = acceptor_.local_endpoint().port();
    host_ = address.find(':') != std::string::npos ? "[" + address + "]" : address;
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~FakeHttpServer() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  std::string url() const { return "http://" + host_ + ":" + std::to_string(port_); }

  std::vector<Seen> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  // Connections accepted so far.
  int connections() const { return connections_.load(std::memory_order_acquire); }

 private:
  // One connection: read a request, answer as the handler says, repeat. Owned by the pending
  // operation's handler (shared_from_this); freed when the connection ends or the io_context is
  // destroyed.
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(FakeHttpServer* server, boost::asio::ip::tcp::socket socket, int connection)
        : server_(server),
          socket_(std::move(socket)),
          timer_(socket_.get_executor()),
          connection_(connection) {}

    void Read() {
      namespace http = boost::beast::http;
      req_ = {};
      http::async_read(socket_, buffer_, req_,
                       [self = shared_from_this()](boost::system::error_code ec, size_t) {
                         if (!ec) self->Answer();
                       });
    }

   private:
    void Answer() {
      namespace http = boost::beast::http;
      Seen seen;
      seen.connection = connection_;
      seen.method = std::string(req_.method_string());
      seen.target = std::string(req_.target());
      seen.body = req_.body();
      for (const auto& field : req_) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        seen.headers[name] = std::string(field.value());
      }
      {
        std::lock_guard<std::mutex> lock(server_->mu_);
        server_->seen_.push_back(seen);
      }
      reply_ = server_->handler_(seen);
      if (reply_.kind == Reply::Kind::kCloseWithoutAnswer) {
        Close();
        return;
      }
      if (reply_.kind == Reply::Kind::kHang) {
        timer_.expires_after(std::chrono::hours(1));
        timer_.async_wait([self = shared_from_this()](boost::system::error_code) {});
        return;
      }
      res_ = {static_cast<http::status>(reply_.status), 11};
      res_.set(http::field::server, "fake");
      if (!reply_.content_type.empty()) res_.set(http::field::content_type, reply_.content_type);
      res_.body() = reply_.body;
      res_.keep_alive(reply_.keep_alive);
      res_.prepare_payload();
      http::async_write(socket_, res_,
                        [self = shared_from_this()](boost::system::error_code ec, size_t) {
                          if (ec || !self->reply_.keep_alive || self->reply_.close_after) {
                            self->Close();
                          } else {
                            self->Read();
                          }
                        });
    }

    void Close() {
      boost::system::error_code ignored;
      socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
      socket_.close(ignored);
    }

    FakeHttpServer* server_;  // outlives every session (it stops the io_context first)
    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer timer_;
    int connection_;
    boost::beast::flat_buffer buffer_;
    boost::beast::http::request<boost::beast::http::string_body> req_;
    boost::beast::http::response<boost::beast::http::string_body> res_;
    Reply reply_;
  };

  void Accept() {
    acceptor_.async_accept(
        [this](boost::system::error_code ec, boost::asio::ip::tcp::socket socket) {
          if (ec) return;
          // Release pairs with the acquire in connections().
          const int n = connections_.fetch_add(1, std::memory_order_acq_rel) + 1;
          std::make_shared<Session>(this, std::move(socket), n)->Read();
          Accept();
        });
  }

  Handler handler_;
  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::string host_;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;  // guarded by mu_
  std::atomic<int> connections_{0};
};

}  // namespace bmos::test_util

#endif  // BMOS_TESTS_API_FAKE_HTTP_SERVER_H_
