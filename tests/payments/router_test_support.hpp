#pragma once

// What the payment_router suites (router_test.cpp over surge-paysim, refund_test.cpp over fake
// gateways), authorize_test.cpp and tls_test.cpp share: the names they use, fast router options, a
// router over a payments.gateways setting and a blocking refund().

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "surge/net/payments/payment_router.hpp"

namespace surge::ptest::router_names {

using namespace surge::net::payments;
using surge::actors::charge_request;
using surge::actors::charge_result;
using surge::actors::charge_status;
using surge::actors::refund_request;
using surge::actors::refund_result;
using surge::actors::refund_status;
using surge::actors::settle_request;
using surge::actors::settle_result;
using surge::actors::settle_status;
using namespace std::chrono_literals;

} // namespace surge::ptest::router_names

namespace surge::ptest {

/// Router options for tests: fast retries (1-5 ms backoff), 2 threads, the breaker off (a
/// threshold of 100) unless a case tests it, 5 refund tries within 30 s.
inline net::payments::router_options fast_router_options() {
  using namespace std::chrono_literals;
  net::payments::router_options o;
  o.timeout = 1000ms;
  o.max_tries = 3;
  o.lookup_tries = 4;
  o.backoff_base = 1ms;
  o.backoff_cap = 5ms;
  o.breaker_threshold = 100;
  o.breaker_cooldown = 5000ms;
  o.refund_tries = 5;
  o.refund_deadline = 30s;
  o.threads = 2;
  return o;
}

/// fast_router_options() for the cases against surge-paysim: 10-40 ms backoff, 4 threads,
/// refunds within 8 s.
inline net::payments::router_options paysim_router_options() {
  using namespace std::chrono_literals;
  auto o = fast_router_options();
  o.backoff_base = 10ms;
  o.backoff_cap = 40ms;
  o.threads = 4;
  o.refund_deadline = 8000ms;
  return o;
}

/// A router over the gateways of `setting` (payments.gateways' syntax) with options `o`.
inline std::unique_ptr<net::payments::payment_router>
make_router(const std::string& setting, net::payments::router_options o = paysim_router_options()) {
  auto parsed = net::payments::parse_gateways(setting);
  REQUIRE(std::holds_alternative<std::vector<net::payments::gateway_spec>>(parsed));
  std::vector<std::unique_ptr<net::payments::gateway>> gws;
  for (const auto& spec : std::get<std::vector<net::payments::gateway_spec>>(parsed)) {
    gws.push_back(net::payments::make_gateway(spec));
  }
  return std::make_unique<net::payments::payment_router>(std::move(gws), o);
}

/// refund() and wait (bounded) for the callback.
inline actors::refund_result refund(net::payments::payment_router& r, actors::refund_request req) {
  auto p = std::make_shared<std::promise<actors::refund_result>>();
  auto f = p->get_future();
  r.refund(std::move(req), [p](actors::refund_result x) { p->set_value(std::move(x)); });
  REQUIRE(f.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  return f.get();
}

} // namespace surge::ptest
