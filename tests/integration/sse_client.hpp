#pragma once

// A raw Server-Sent Events client for the end-to-end tests (stock streams, queue streams): the
// response head over a plain socket, then the chunked body's events one by one.

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace surge::itest {

namespace sse {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
} // namespace sse

/// One SSE event or comment as it arrived.
struct sse_event {
  std::string id, event, data, comment;
};

/// A raw client of one event stream: the response head, then events one by one. Reads block;
/// a hang is caught by ctest's timeout.
class sse_client {
 public:
  /// GET `target` (e.g. "/api/v1/products/tee/stock/stream") with Last-Event-ID when given.
  sse_client(uint16_t port, const std::string& target, std::optional<std::string> last_id = {})
      : socket_(ioc_) {
    socket_.connect(sse::tcp::endpoint(sse::asio::ip::make_address("127.0.0.1"), port));
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n";
    if (last_id) {
      req += "Last-Event-ID: " + *last_id + "\r\n";
    }
    req += "Accept: text/event-stream\r\n\r\n";
    sse::asio::write(socket_, sse::asio::buffer(req));
    while (raw_.find("\r\n\r\n") == std::string::npos) {
      REQUIRE(fill());
    }
    const auto end = raw_.find("\r\n\r\n");
    head_ = raw_.substr(0, end + 2);
    raw_.erase(0, end + 4);
    status_ = std::stoi(head_.substr(9, 3));
    if (status_ != 200) {
      const auto cl = header("Content-Length");
      REQUIRE_FALSE(cl.empty());
      while (raw_.size() < std::stoul(cl)) {
        REQUIRE(fill());
      }
      body_ = raw_;
    }
  }

  int status() const { return status_; }
  const std::string& body() const { return body_; }
  /// The value of header `name` (as the server spells it), or "".
  std::string header(const std::string& name) const {
    const auto at = head_.find("\r\n" + name + ": ");
    if (at == std::string::npos) {
      return {};
    }
    const auto from = at + name.size() + 4;
    return head_.substr(from, head_.find("\r\n", from) - from);
  }

  /// The body's text so far must start with `prefix` (reads until it is long enough).
  std::string first_bytes(std::size_t n) {
    while (text_.size() < n) {
      REQUIRE(more_text());
    }
    return text_.substr(0, n);
  }

  /// The next event or comment (a "retry:" block is skipped).
  sse_event next() {
    for (;;) {
      auto end = text_.find("\n\n");
      while (end == std::string::npos) {
        REQUIRE(more_text());
        end = text_.find("\n\n");
      }
      const std::string block = text_.substr(0, end);
      text_.erase(0, end + 2);
      sse_event ev;
      std::size_t pos = 0;
      bool retry_only = true;
      while (pos <= block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string::npos) {
          nl = block.size();
        }
        const std::string line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.rfind("retry: ", 0) == 0) {
          continue;
        }
        retry_only = false;
        if (line.rfind(":", 0) == 0) {
          ev.comment = line.substr(1);
        } else if (line.rfind("id: ", 0) == 0) {
          ev.id = line.substr(4);
        } else if (line.rfind("event: ", 0) == 0) {
          ev.event = line.substr(7);
        } else if (line.rfind("data: ", 0) == 0) {
          ev.data = line.substr(6);
        }
      }
      if (!retry_only) {
        return ev;
      }
    }
  }

  /// The next event named `name` (comments and other events skipped).
  sse_event next_named(const std::string& name) {
    for (;;) {
      auto ev = next();
      if (ev.event == name) {
        return ev;
      }
    }
  }

  /// The next stock event (comments skipped).
  sse_event next_stock() { return next_named("stock"); }

  /// Reads to the end of the body: true when the stream ended (last chunk or close).
  bool ends() {
    while (more_text()) {
    }
    return true;
  }

  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  bool fill() {
    char buf[4096];
    boost::system::error_code ec;
    const auto n = socket_.read_some(sse::asio::buffer(buf), ec);
    raw_.append(buf, n);
    return !ec || n > 0;
  }

  /// Decodes one more chunk of the body into text_.
  bool more_text() {
    auto eol = raw_.find("\r\n");
    while (eol == std::string::npos) {
      if (!fill()) {
        return false;
      }
      eol = raw_.find("\r\n");
    }
    const auto size = std::stoul(raw_.substr(0, eol), nullptr, 16);
    if (size == 0) {
      return false; // the last chunk
    }
    while (raw_.size() < eol + 2 + size + 2) {
      if (!fill()) {
        return false;
      }
    }
    text_.append(raw_, eol + 2, size);
    raw_.erase(0, eol + 2 + size + 2);
    return true;
  }

  sse::asio::io_context ioc_;
  sse::tcp::socket socket_;
  std::string raw_; ///< bytes not decoded yet
  std::string head_;
  std::string body_;
  std::string text_; ///< decoded body not yet taken
  int status_ = 0;
};

} // namespace surge::itest
