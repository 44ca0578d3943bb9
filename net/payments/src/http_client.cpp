#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <exception>

#include "surge/net/beast.hpp"

namespace surge::net::payments::detail {

namespace {

constexpr std::size_t max_idle = 16;

} // namespace

struct http_client::connection {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;

  /// Runs the io_context until the operation started before has completed.
  void run() {
    ioc.restart();
    ioc.run();
  }
};

http_client::http_client(std::string host, uint16_t port)
    : host_(std::move(host))
    , port_(port) {}

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
  c->stream.expires_never();
  std::lock_guard lock{mu_};
  if (idle_.size() < max_idle) {
    idle_.push_back(std::move(c));
  }
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
        conn = std::make_unique<connection>();
        tcp::resolver resolver{conn->ioc};
        tcp::resolver::results_type endpoints;
        conn->stream.expires_at(deadline);
        resolver.async_resolve(host_, std::to_string(port_),
                               [&](beast::error_code e, tcp::resolver::results_type r) {
                                 ec = e;
                                 endpoints = std::move(r);
                               });
        conn->run();
        if (ec) {
          return {outcome::not_sent, 0, {}, "resolve " + host_ + ": " + ec.message()};
        }
        conn->stream.async_connect(endpoints,
                                   [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
        conn->run();
        if (ec) {
          return {outcome::not_sent, 0, {}, "connect: " + ec.message()};
        }
      }
      conn->stream.expires_at(deadline);
      http::async_write(conn->stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
      conn->run();
      if (ec) {
        if (reused && ec != beast::error::timeout) {
          continue; // closed while idle: the request never got in; try a fresh connection
        }
        return {outcome::no_answer, 0, {}, "write: " + ec.message()};
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(1024 * 1024);
      http::async_read(conn->stream, conn->buffer, parser,
                       [&](beast::error_code e, std::size_t) { ec = e; });
      conn->run();
      if (ec) {
        const bool closed_idle = reused && !parser.got_some() &&
                                 (ec == http::error::end_of_stream ||
                                  ec == asio::error::connection_reset || ec == asio::error::eof);
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
