#include "tls_front.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "surge/net/beast.hpp"

namespace surge::paysim {

namespace {

using namespace std::chrono_literals;

/// One shopper-side TLS connection and its plain connection to the gateway, relayed both ways.
/// Lives in the handlers of its I/O thread (one thread: no strand needed).
class relay : public std::enable_shared_from_this<relay> {
 public:
  relay(tcp::socket s, asio::ssl::context& tls, uint16_t backend_port)
      : front_(beast::tcp_stream{std::move(s)}, tls)
      , back_(front_.get_executor())
      , backend_port_(backend_port) {}

  void start() {
    beast::get_lowest_layer(front_).expires_after(10s);
    front_.async_handshake(asio::ssl::stream_base::server,
                           [self = shared_from_this()](beast::error_code ec) {
                             if (ec) {
                               return self->close();
                             }
                             beast::get_lowest_layer(self->front_).expires_never();
                             self->connect_back();
                           });
  }

 private:
  void connect_back() {
    back_.expires_after(10s);
    back_.async_connect(tcp::endpoint{asio::ip::make_address_v4("127.0.0.1"), backend_port_},
                        [self = shared_from_this()](beast::error_code ec) {
                          if (ec) {
                            return self->close();
                          }
                          self->back_.expires_never();
                          self->pump(self->front_, self->back_, self->up_);
                          self->pump(self->back_, self->front_, self->down_);
                        });
  }

  /// Copies what `from` reads to `to` through `buf` until either side ends (shopper → gateway
  /// and gateway → shopper run one each). `self` keeps the streams and buffers alive.
  template <class From, class To>
  void pump(From& from, To& to, std::array<char, 16 * 1024>& buf) {
    from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to,
                                             &buf](beast::error_code ec, std::size_t n) {
      if (ec) {
        return self->close();
      }
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [self, &from, &to, &buf](beast::error_code ec, std::size_t) {
                          if (ec) {
                            return self->close();
                          }
                          self->pump(from, to, buf);
                        });
    });
  }

  /// Either side ended: so does the other (the pending operations end with errors).
  void close() {
    if (std::exchange(closed_, true)) {
      return;
    }
    beast::error_code ignored;
    auto& front = beast::get_lowest_layer(front_).socket();
    front.shutdown(tcp::socket::shutdown_both, ignored);
    front.close(ignored);
    back_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    back_.socket().close(ignored);
  }

  beast::ssl_stream<beast::tcp_stream> front_;
  beast::tcp_stream back_;
  const uint16_t backend_port_;
  std::array<char, 16 * 1024> up_{};
  std::array<char, 16 * 1024> down_{};
  bool closed_ = false;
};

} // namespace

struct tls_front::impl {
  impl(asio::ssl::context& t, std::string h, uint16_t p, uint16_t b)
      : tls(t)
      , host(std::move(h))
      , port(p)
      , backend_port(b) {}

  asio::ssl::context& tls;
  const std::string host;
  const uint16_t port;
  const uint16_t backend_port;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  uint16_t bound = 0; ///< set by start() before the thread runs
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        return;
      }
      if (!ec) {
        std::make_shared<relay>(std::move(s), tls, backend_port)->start();
      }
      accept(); // a failed accept (e.g. out of descriptors) does not stop the front
    });
  }
};

tls_front::tls_front(asio::ssl::context& tls, std::string host, uint16_t port,
                     uint16_t backend_port)
    : impl_(std::make_unique<impl>(tls, std::move(host), port, backend_port)) {}

tls_front::~tls_front() {
  stop();
}

std::error_code tls_front::start() {
  impl& s = *impl_;
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.host, ec);
  if (ec) {
    return ec;
  }
  if (auto failed = net::listen_on(s.acceptor, tcp::endpoint{address, s.port})) {
    return failed;
  }
  s.bound = s.acceptor.local_endpoint().port();
  s.accept();
  s.thread = std::thread{[&s] { s.ioc.run(); }};
  return {};
}

uint16_t tls_front::port() const {
  return impl_->bound;
}

void tls_front::stop() {
  impl& s = *impl_;
  if (!s.thread.joinable()) {
    return;
  }
  asio::post(s.ioc, [&s] {
    beast::error_code ignored;
    s.acceptor.close(ignored);
  });
  s.ioc.stop();
  s.thread.join();
}

std::shared_ptr<asio::ssl::context> make_server_tls(const std::string& cert_file,
                                                    const std::string& key_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    throw std::runtime_error("--tls-cert: cannot use '" + cert_file + "': " + ec.message());
  }
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) {
    throw std::runtime_error("--tls-key: cannot use '" + key_file + "': " + ec.message());
  }
  return ctx;
}

} // namespace surge::paysim
