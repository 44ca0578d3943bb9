#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <thread>

#include "surge/net/beast.hpp"

namespace surge::itest {

namespace {

using beast_request = http::request<http::string_body>;
using beast_parser = http::response_parser<http::string_body>;

tcp::endpoint loopback(uint16_t port) {
  return tcp::endpoint{asio::ip::make_address_v4("127.0.0.1"), port};
}

beast_request to_beast(const request& r, uint16_t port, const std::string& bearer) {
  beast_request req;
  req.version(11);
  const auto verb = http::string_to_verb(r.method);
  if (verb == http::verb::unknown) {
    req.method_string(r.method);
  } else {
    req.method(verb);
  }
  req.target(r.target);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  bool has_auth = false;
  for (const auto& [name, value] : r.headers) {
    req.insert(name, value);
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    has_auth |= lower == "authorization";
  }
  if (!has_auth && !bearer.empty()) {
    req.set(http::field::authorization, "Bearer " + bearer);
  }
  req.keep_alive(true);
  req.body() = r.body;
  if (req.chunked()) {
    return req; // "Transfer-Encoding: chunked" given: Beast writes the body in chunks
  }
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
    req.prepare_payload();
  }
  return req;
}

response from_beast(http::response<http::string_body>&& res) {
  response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name{f.name_string()};
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.headers[name] = std::string{f.value()};
  }
  out.body = std::move(res.body());
  return out;
}

std::unique_ptr<beast_parser> make_parser() {
  auto p = std::make_unique<beast_parser>();
  p->body_limit(64 * 1024 * 1024);
  p->header_limit(64 * 1024);
  return p;
}

} // namespace

std::string response::header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? std::string{} : it->second;
}

request with_headers(request r, const std::string& name, std::vector<std::string> values) {
  for (auto& v : values) {
    r.headers.emplace_back(name, std::move(v));
  }
  return r;
}

request json_request(std::string method, std::string target, std::string body) {
  return request{std::move(method),
                 std::move(target),
                 std::move(body),
                 {{"Content-Type", "application/json"}}};
}

// -- http_client --------------------------------------------------------------------------------

struct http_client::impl {
  uint16_t port = 0;
  std::chrono::milliseconds timeout{};
  std::string bearer;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  void close() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->socket().close(ignored);
      stream.reset();
    }
    buffer.clear();
  }

  /// Runs the queued operations; they are bounded by the stream's expiry.
  void run() {
    ioc.restart();
    ioc.run();
  }

  beast::error_code connect() {
    stream.emplace(ioc);
    beast::error_code result;
    stream->expires_after(timeout);
    stream->async_connect(loopback(port), [&](beast::error_code ec) { result = ec; });
    run();
    if (result) {
      close();
    }
    return result;
  }
};

http_client::http_client(uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

http_client::~http_client() {
  impl_->close();
}

void http_client::set_bearer(std::string token) {
  impl_->bearer = std::move(token);
}

void http_client::close() {
  impl_->close();
}

uint16_t http_client::port() const {
  return impl_->port;
}

response http_client::send(const request& r) {
  auto& d = *impl_;
  const auto req = to_beast(r, d.port, d.bearer);
  response out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = d.stream.has_value();
    if (!reused) {
      if (auto ec = d.connect()) {
        out.error = "connect to 127.0.0.1:" + std::to_string(d.port) + ": " + ec.message();
        return out;
      }
    }
    // Reading starts with writing: a server may answer early (413, 431) and stop reading.
    auto parser = make_parser();
    beast::error_code write_ec;
    beast::error_code read_ec;
    bool write_done = false;
    bool read_any = false;
    d.stream->expires_after(d.timeout);
    http::async_write(*d.stream, req, [&](beast::error_code ec, std::size_t) {
      write_ec = ec;
      write_done = true;
    });
    http::async_read(*d.stream, d.buffer, *parser, [&](beast::error_code ec, std::size_t n) {
      read_ec = ec;
      read_any = n > 0;
      if (!write_done) {
        d.stream->cancel(); // answered before the whole request was sent
      }
    });
    d.run();
    if (read_ec) {
      d.close();
      // A kept connection the server closed meanwhile: try once on a new one.
      if (reused && !read_any &&
          (read_ec == http::error::end_of_stream || read_ec == asio::error::connection_reset ||
           read_ec == asio::error::broken_pipe || read_ec == asio::error::eof)) {
        continue;
      }
      out.error = r.method + " " + r.target.substr(0, 200) + ": " + read_ec.message() +
                  (write_ec ? " (writing: " + write_ec.message() + ")" : std::string{});
      return out;
    }
    auto res = parser->release();
    const bool keep = res.keep_alive() && !write_ec;
    out = from_beast(std::move(res));
    if (!keep) {
      d.close();
    }
    return out;
  }
  return out;
}

response raw_exchange(uint16_t port, const std::string& raw, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  auto parser = make_parser();
  response out;
  beast::error_code result;
  stream.expires_after(timeout);
  stream.async_connect(loopback(port), [&](beast::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    asio::async_write(stream, asio::buffer(raw), [&](beast::error_code wec, std::size_t) {
      if (wec) {
        result = wec;
        return;
      }
      http::async_read(stream, buffer, *parser,
                       [&](beast::error_code rec, std::size_t) { result = rec; });
    });
  });
  ioc.run();
  if (result) {
    out.error = "raw exchange: " + result.message();
    return out;
  }
  return from_beast(parser->release());
}

void require_open_files(std::size_t n) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    throw std::runtime_error("getrlimit(RLIMIT_NOFILE) failed");
  }
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < n) {
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < n) {
      throw std::runtime_error("need " + std::to_string(n) + " open files, but ulimit -n is " +
                               std::to_string(lim.rlim_cur) + " (hard limit " +
                               std::to_string(lim.rlim_max) + ")");
    }
    lim.rlim_cur = n;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      throw std::runtime_error("cannot raise ulimit -n to " + std::to_string(n));
    }
  }
}

// -- send_all -----------------------------------------------------------------------------------

namespace {

struct batch_op {
  explicit batch_op(asio::io_context& ioc)
      : stream(asio::make_strand(ioc)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  beast_request req;
  std::unique_ptr<beast_parser> parser = make_parser();
  response res;
  bool connected = false;
};

struct batch_state {
  asio::io_context ioc;
  std::vector<std::unique_ptr<batch_op>> ops;
  std::atomic<std::size_t> connects_done{0};
  std::chrono::milliseconds timeout{};
  const std::function<void(std::size_t, const response&)>* on_response = nullptr;

  void finish(std::size_t i) {
    auto& op = *ops[i];
    beast::error_code ignored;
    op.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    op.stream.socket().close(ignored);
    if (*on_response) {
      (*on_response)(i, op.res);
    }
  }

  void exchange(std::size_t i) {
    auto& op = *ops[i];
    op.stream.expires_after(timeout);
    http::async_write(op.stream, op.req, [this, i](beast::error_code ec, std::size_t) {
      auto& o = *ops[i];
      if (ec) {
        o.res.error = "write: " + ec.message();
        finish(i);
        return;
      }
      http::async_read(o.stream, o.buffer, *o.parser,
                       [this, i](beast::error_code ec2, std::size_t) {
                         auto& o2 = *ops[i];
                         if (ec2) {
                           o2.res.error = "read: " + ec2.message();
                         } else {
                           o2.res = from_beast(o2.parser->release());
                         }
                         finish(i);
                       });
    });
  }

  /// Once every connection attempt has ended, writes all requests (each on its strand).
  void connect_done() {
    if (connects_done.fetch_add(1) + 1 != ops.size()) {
      return;
    }
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (ops[i]->connected) {
        asio::post(ops[i]->stream.get_executor(), [this, i] { exchange(i); });
      } else {
        asio::post(ops[i]->stream.get_executor(), [this, i] { finish(i); });
      }
    }
  }
};

} // namespace

std::vector<response> send_all(uint16_t port, const std::vector<request>& reqs,
                               const std::function<void(std::size_t, const response&)>& on_response,
                               const batch_options& opts) {
  require_open_files(reqs.size() + 256);
  batch_state st;
  st.timeout = opts.timeout;
  st.on_response = &on_response;
  st.ops.reserve(reqs.size());
  for (const auto& r : reqs) {
    auto op = std::make_unique<batch_op>(st.ioc);
    op->req = to_beast(r, port, {});
    op->req.keep_alive(false);
    st.ops.push_back(std::move(op));
  }
  if (reqs.empty()) {
    return {};
  }
  for (std::size_t i = 0; i < st.ops.size(); ++i) {
    auto& op = *st.ops[i];
    asio::post(op.stream.get_executor(), [&st, i, port] {
      auto& o = *st.ops[i];
      o.stream.expires_after(st.timeout);
      o.stream.async_connect(loopback(port), [&st, i](beast::error_code ec) {
        auto& o2 = *st.ops[i];
        if (ec) {
          o2.res.error = "connect: " + ec.message();
        } else {
          o2.connected = true;
        }
        st.connect_done();
      });
    });
  }
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < std::max<std::size_t>(opts.threads, 1); ++t) {
    threads.emplace_back([&st] { st.ioc.run(); });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::vector<response> out;
  out.reserve(st.ops.size());
  for (auto& op : st.ops) {
    out.push_back(std::move(op->res));
  }
  return out;
}

} // namespace surge::itest
