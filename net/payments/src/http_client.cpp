#include "surge/net/payments/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "surge/net/beast.hpp"

namespace surge::net::payments::detail {

namespace {

constexpr std::size_t max_idle = 16;

} // namespace

struct http_client::connection {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> plain;                     ///< without TLS
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure; ///< with TLS
  beast::flat_buffer buffer;

  explicit connection(asio::ssl::context* tls) {
    if (tls != nullptr) {
      secure.emplace(ioc, *tls);
    } else {
      plain.emplace(ioc);
    }
  }

  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  /// Calls `f` with the stream requests go through (TLS or plain).
  template <class F>
  void with_stream(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(*plain);
    }
  }

  /// Runs the io_context until the operation started before has completed.
  void run() {
    ioc.restart();
    ioc.run();
  }
};

std::shared_ptr<asio::ssl::context> make_client_tls(const std::string& ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(asio::ssl::verify_peer);
  beast::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) {
      throw std::runtime_error("the system's trust store cannot be read: " + ec.message());
    }
    return ctx;
  }
  std::error_code fs_ec;
  if (!std::filesystem::is_regular_file(ca_file, fs_ec)) {
    throw std::runtime_error("'" + ca_file + "' is not a readable file");
  }
  ctx->load_verify_file(ca_file, ec);
  if (ec) {
    throw std::runtime_error("'" + ca_file + "' holds no usable PEM certificate (" + ec.message() +
                             ")");
  }
  return ctx;
}

http_client::http_client(std::string host, uint16_t port, std::shared_ptr<asio::ssl::context> tls)
    : host_(std::move(host))
    , port_(port)
    , tls_(std::move(tls)) {}

http_client::~http_client() = default;

std::unique_ptr<http_client::connection> http_client::take_idle() {
  std::lock_guard lock{mu_};
  if (idle_.empty()) {
    return nullptr;
  }
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void http_client::give_back(std::unique_ptr<connection> c) {
  c->tcp().expires_never();
  std::lock_guard lock{mu_};
  if (idle_.size() < max_idle) {
    idle_.push_back(std::move(c));
  }
}

std::optional<std::string> http_client::handshake(connection& c) const {
  SSL* ssl = c.secure->native_handle();
  beast::error_code ec;
  asio::ip::make_address(host_, ec);
  if (ec && SSL_set_tlsext_host_name(ssl, host_.c_str()) != 1) { // SNI: names only
    return "tls: cannot set the server name '" + host_ + "'";
  }
  bool wrong_name = false; // the chain verified, the certificate is not for host_
  c.secure->set_verify_callback([&wrong_name, check = asio::ssl::host_name_verification(host_)](
                                    bool preverified, asio::ssl::verify_context& ctx) mutable {
    const bool ok = check(preverified, ctx);
    wrong_name = wrong_name || (preverified && !ok);
    return ok;
  });
  c.secure->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
  c.run();
  if (!ec) {
    return std::nullopt;
  }
  std::string why = "tls handshake with " + host_ + ": " + ec.message();
  if (wrong_name) {
    why += " (the certificate is not for " + host_ + ")";
  } else if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
    why += std::string{" ("} + X509_verify_cert_error_string(verify) + ")";
  }
  return why;
}

exchange_result
http_client::exchange(const std::string& method, const std::string& target,
                      const std::string& content_type, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      std::chrono::milliseconds timeout) {
  using outcome = exchange_result::outcome;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host_ + ":" + std::to_string(port_));
    req.set(http::field::user_agent, "surge-payments");
    req.set(http::field::accept, "application/json");
    if (!content_type.empty()) {
      req.set(http::field::content_type, content_type);
    }
    for (const auto& [k, v] : headers) {
      req.set(k, v);
    }
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();

    for (int round = 0; round < 2; ++round) {
      auto conn = take_idle();
      const bool reused = conn != nullptr;
      beast::error_code ec;
      if (!reused) {
        conn = std::make_unique<connection>(tls_.get());
        tcp::resolver resolver{conn->ioc};
        tcp::resolver::results_type endpoints;
        conn->tcp().expires_at(deadline);
        resolver.async_resolve(host_, std::to_string(port_),
                               [&](beast::error_code e, tcp::resolver::results_type r) {
                                 ec = e;
                                 endpoints = std::move(r);
                               });
        conn->run();
        if (ec) {
          return {outcome::not_sent, 0, {}, "resolve " + host_ + ": " + ec.message()};
        }
        conn->tcp().async_connect(endpoints,
                                  [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
        conn->run();
        if (ec) {
          return {outcome::not_sent, 0, {}, "connect: " + ec.message()};
        }
        if (conn->secure) {
          if (auto failed = handshake(*conn)) {
            return {outcome::not_sent, 0, {}, std::move(*failed)};
          }
        }
      }
      conn->tcp().expires_at(deadline);
      conn->with_stream([&](auto& stream) {
        http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
      });
      conn->run();
      if (ec) {
        if (reused && ec != beast::error::timeout) {
          continue; // closed while idle: the request never got in; try a fresh connection
        }
        return {outcome::no_answer, 0, {}, "write: " + ec.message()};
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(1024 * 1024);
      conn->with_stream([&](auto& stream) {
        http::async_read(stream, conn->buffer, parser,
                         [&](beast::error_code e, std::size_t) { ec = e; });
      });
      conn->run();
      if (ec) {
        const bool closed_idle =
            reused && !parser.got_some() &&
            (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
             ec == asio::error::eof || ec == asio::ssl::error::stream_truncated);
        if (closed_idle) {
          continue; // the server had closed the kept-alive connection before reading the request
        }
        return {outcome::no_answer, 0, {}, "read: " + ec.message()};
      }
      auto res = parser.release();
      exchange_result out{
          outcome::answered, static_cast<int>(res.result_int()), std::move(res.body()), {}};
      if (res.keep_alive()) {
        give_back(std::move(conn));
      }
      return out;
    }
    return {outcome::no_answer, 0, {}, "connection closed twice before an answer"};
  } catch (const std::exception& e) {
    return {outcome::no_answer, 0, {}, std::string{"http client: "} + e.what()};
  }
}

} // namespace surge::net::payments::detail
