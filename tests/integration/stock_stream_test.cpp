// Live stock (issue 16) on a real node: GET /api/v1/products/{sku}/stock/stream read as
// Server-Sent Events over a raw socket (chunked), stock changed through the admin API and a
// cart, and the stream gauge of /metrics.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "api.hpp"
#include "sse_client.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;

std::string stock_path(const std::string& sku) {
  return "/api/v1/products/" + sku + "/stock/stream";
}

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

    sse_client s{a.store_port(), stock_path("tee")};
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
    sse_client again{a.store_port(), stock_path("tee"), std::to_string(100 + changes - 2)};
    REQUIRE(again.status() == 200);
    a.set_stock("tee", 50);
    ev = again.next_stock();
    CHECK(ev.id == "48");
    // A stale Last-Event-ID gets the current figure at once.
    sse_client stale{a.store_port(), stock_path("tee"), "3"};
    CHECK(stale.next_stock().id == "48");
  }

  TEST_CASE("unknown sku, max_streams, and a closed stream leaves") {
    node_config cfg;
    cfg.extra = {"--http.max_streams=2"};
    node_process node{cfg};
    api a{node};
    a.add_product({.sku = "cap", .name = "Cap", .price_cents = 900}, 3);

    sse_client unknown{a.store_port(), stock_path("nope")};
    CHECK(unknown.status() == 404);
    CHECK(unknown.header("Content-Type") == "application/json");
    CHECK(unknown.body().find("\"not_found\"") != std::string::npos);
    // A refused stream gives its slot back before its client has the answer.
    CHECK(a.metric("surge_http_streams_open") == 0);

    auto one = std::make_unique<sse_client>(a.store_port(), stock_path("cap"));
    REQUIRE(one->status() == 200);
    CHECK(one->next_stock().id == "3");
    sse_client two{a.store_port(), stock_path("cap")};
    REQUIRE(two.status() == 200);
    CHECK(two.next_stock().id == "3");
    CHECK(a.metric("surge_http_streams_open") == 2);
    sse_client three{a.store_port(), stock_path("cap")};
    CHECK(three.status() == 503);
    CHECK(three.body().find("\"unavailable\"") != std::string::npos);
    CHECK_FALSE(three.header("Retry-After").empty());
    CHECK(a.metric("surge_http_stream_events_total") >= 2);

    // The client closes: its stream leaves, and there is room for another.
    one->close();
    one.reset();
    CHECK(metric_reaches(a, "surge_http_streams_open", 1));
    sse_client four{a.store_port(), stock_path("cap")};
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
