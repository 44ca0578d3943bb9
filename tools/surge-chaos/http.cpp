#include "http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>
#include <stdexcept>

#include "surge/net/beast.hpp"

namespace surge::chaos {

bool allowed_address(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host.rfind("10.77.0.", 0) == 0;
}

struct http_client::impl {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

http_client::http_client(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : host_(std::move(host))
    , port_(port)
    , timeout_(timeout)
    , impl_(std::make_unique<impl>()) {
  if (!allowed_address(host_)) {
    throw std::invalid_argument("surge-chaos only talks to loopback/private addresses, not " +
                                host_);
  }
}

http_client::~http_client() = default;

void http_client::set_header(std::string name, std::string value) {
  defaults_.emplace_back(std::move(name), std::move(value));
}

void http_client::close() {
  if (impl_->stream) {
    beast::error_code ignored;
    impl_->stream->socket().close(ignored);
    impl_->stream.reset();
  }
  impl_->buffer.clear();
}

http_answer http_client::call(const std::string& method, const std::string& target,
                              const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  http::request<http::string_body> req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  req.set(http::field::host, host_ + ":" + std::to_string(port_));
  for (const auto& [k, v] : defaults_) {
    req.set(k, v);
  }
  for (const auto& [k, v] : headers) {
    req.set(k, v);
  }
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  req.keep_alive(true);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = !impl_->stream.has_value();
    if (fresh) {
      impl_->stream.emplace(impl_->ioc);
    }
    auto& s = *impl_->stream;
    beast::error_code ec;
    http::response<http::string_body> res;
    bool done = false;
    s.expires_after(timeout_);
    auto do_read = [&] {
      http::async_read(s, impl_->buffer, res, [&](beast::error_code e, std::size_t) {
        ec = e;
        done = true;
      });
    };
    auto do_write = [&] {
      http::async_write(s, req, [&](beast::error_code e, std::size_t) {
        if (e) {
          ec = e;
          done = true;
          return;
        }
        do_read();
      });
    };
    if (fresh) {
      s.async_connect(tcp::endpoint{asio::ip::make_address(host_), port_},
                      [&](beast::error_code e) {
                        if (e) {
                          ec = e;
                          done = true;
                          return;
                        }
                        do_write();
                      });
    } else {
      do_write();
    }
    impl_->ioc.restart();
    impl_->ioc.run_for(timeout_ + std::chrono::seconds{1});
    if (!done) {
      close();
      impl_->ioc.restart();
      impl_->ioc.run_for(std::chrono::milliseconds{100}); // let the handlers see the close
      return {0, {}, "timeout", {}};
    }
    if (ec) {
      close();
      // A kept connection the server closed meanwhile: try once on a new one.
      if (!fresh && attempt == 0 && ec != beast::error::timeout) {
        continue;
      }
      return {0, {}, ec == beast::error::timeout ? "timeout" : ec.message(), {}};
    }
    http_answer a{static_cast<int>(res.result_int()),
                  std::move(res.body()),
                  {},
                  std::string{res["Surge-Error-Cause"]}};
    if (!res.keep_alive()) {
      close();
    }
    return a;
  }
  return {0, {}, "unreachable", {}};
}

} // namespace surge::chaos
