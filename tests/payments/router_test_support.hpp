#pragma once

// What the payment_router suites (router_test.cpp over surge-paysim, refund_test.cpp over fake
// gateways) share: the names they use, fast router options and a blocking refund().

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>

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

/// refund() and wait (bounded) for the callback.
inline actors::refund_result refund(net::payments::payment_router& r, actors::refund_request req) {
  auto p = std::make_shared<std::promise<actors::refund_result>>();
  auto f = p->get_future();
  r.refund(std::move(req), [p](actors::refund_result x) { p->set_value(std::move(x)); });
  REQUIRE(f.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  return f.get();
}

} // namespace surge::ptest
