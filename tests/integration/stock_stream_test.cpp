// Live stock (issue 16) on a real node: GET /api/v1/products/{sku}/stock/stream read as
// Server-Sent Events over a raw socket (chunked), stock changed through the admin API and a
// cart, and the stream gauge of /metrics.
#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "api.hpp"

namespace surge::itest {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// One SSE event or comment as it arrived.
struct sse_event {
  std::string id, event, data, comment;
};

/// A raw client of one stock stream: the response head, then events one by one. Reads block;
/// a hang is caught by ctest's timeout.
class sse_client {
 public:
  sse_client(uint16_t port, const std::string& sku, std::optional<std::string> last_id = {})
      : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    std::string req = "GET /api/v1/products/" + sku + "/stock/stream HTTP/1.1\r\nHost: x\r\n";
    if (last_id) {
      req += "Last-Event-ID: " + *last_id + "\r\n";
    }
    req += "Accept: text/event-stream\r\n\r\n";
    asio::write(socket_, asio::buffer(req));
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

  /// The next stock event (comments skipped).
  sse_event next_stock() {
    for (;;) {
      auto ev = next();
      if (ev.event == "stock") {
        return ev;
      }
    }
  }

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
    const auto n = socket_.read_some(asio::buffer(buf), ec);
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

  asio::io_context ioc_;
  tcp::socket socket_;
  std::string raw_; ///< bytes not decoded yet
  std::string head_;
  std::string body_;
  std::string text_; ///< decoded body not yet taken
  int status_ = 0;
};

std::string stock_data(const std::string& sku, int64_t n) {
  return "{\"sku\":\"" + sku + "\",\"available\":" + std::to_string(n) + "}";
}

/// Polls `sample` of /metrics until it equals `want` (bounded: false when it never does).
bool metric_reaches(api& a, const std::string& sample, double want) {
  for (int i = 0; i < 1000; ++i) {
    if (a.metric(sample) == want) {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

} // namespace

TEST_SUITE("stock_stream") {
  TEST_CASE("the first event, changes by the admin and by a cart, coalescing, Last-Event-ID") {
    node_process node;
    api a{node};
    a.add_product({.sku = "tee", .name = "Tee", .price_cents = 1500}, 10);

    sse_client s{a.store_port(), "tee"};
    REQUIRE(s.status() == 200);
    CHECK(s.header("Content-Type") == "text/event-stream");
    CHECK(s.header("Cache-Control") == "no-store");
    CHECK(s.header("X-Accel-Buffering") == "no");
    CHECK(s.header("Transfer-Encoding") == "chunked");
    CHECK(s.first_bytes(13) == "retry: 2000\n\n");
    auto first = s.next();
    CHECK(first.id == "10");
    CHECK(first.event == "stock");
    CHECK(first.data == stock_data("tee", 10));

    // An admin stock change arrives as an event.
    a.set_stock("tee", 7);
    auto ev = s.next_stock();
    CHECK(ev.id == "7");
    CHECK(ev.data == stock_data("tee", 7));

    // A cart's hold too.
    const auto cart = a.create_cart();
    REQUIRE(a.put_item(cart, "tee", 2).status == 200);
    ev = s.next_stock();
    CHECK(ev.id == "5");

    // Many changes in a burst are coalesced: the stream reads the SKU at most 4 times a
    // second, so it sees far fewer figures than there were, and ends at the last one.
    const int changes = 30;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 1; i <= changes; ++i) {
      a.set_stock("tee", 100 + i); // available = on_hand - 2 held
    }
    int events = 0;
    for (;;) {
      ev = s.next_stock();
      ++events;
      if (ev.id == std::to_string(100 + changes - 2)) {
        break;
      }
    }
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    const auto rounds = elapsed / 250ms + 2; // reads that can have happened meanwhile
    CHECK(events <= rounds);
    CHECK(events < changes);

    // Last-Event-ID equal to the current figure: no initial event; the next one is a change.
    sse_client again{a.store_port(), "tee", std::to_string(100 + changes - 2)};
    REQUIRE(again.status() == 200);
    a.set_stock("tee", 50);
    ev = again.next_stock();
    CHECK(ev.id == "48");
    // A stale Last-Event-ID gets the current figure at once.
    sse_client stale{a.store_port(), "tee", "3"};
    CHECK(stale.next_stock().id == "48");
  }

  TEST_CASE("unknown sku, max_streams, and a closed stream leaves") {
    node_config cfg;
    cfg.extra = {"--http.max_streams=2"};
    node_process node{cfg};
    api a{node};
    a.add_product({.sku = "cap", .name = "Cap", .price_cents = 900}, 3);

    sse_client unknown{a.store_port(), "nope"};
    CHECK(unknown.status() == 404);
    CHECK(unknown.header("Content-Type") == "application/json");
    CHECK(unknown.body().find("\"not_found\"") != std::string::npos);

    auto one = std::make_unique<sse_client>(a.store_port(), "cap");
    REQUIRE(one->status() == 200);
    CHECK(one->next_stock().id == "3");
    sse_client two{a.store_port(), "cap"};
    REQUIRE(two.status() == 200);
    CHECK(two.next_stock().id == "3");
    CHECK(a.metric("surge_http_streams_open") == 2);
    sse_client three{a.store_port(), "cap"};
    CHECK(three.status() == 503);
    CHECK(three.body().find("\"unavailable\"") != std::string::npos);
    CHECK_FALSE(three.header("Retry-After").empty());
    CHECK(a.metric("surge_http_stream_events_total") >= 2);

    // The client closes: its stream leaves, and there is room for another.
    one->close();
    one.reset();
    CHECK(metric_reaches(a, "surge_http_streams_open", 1));
    sse_client four{a.store_port(), "cap"};
    REQUIRE(four.status() == 200);
    CHECK(four.next_stock().id == "3");
    a.set_stock("cap", 1);
    CHECK(two.next_stock().id == "1");
    CHECK(four.next_stock().id == "1");

    // A stopping node closes its streams (the clients retry elsewhere) and does not wait for
    // them: node_process::stop() checks a clean exit within its patience.
    node.stop();
    CHECK(two.ends());
    CHECK(four.ends());
  }
}

} // namespace surge::itest
