#pragma once

// Helpers of the checkout tests, written against API.md only: a surge-paysim child with two
// gateways, the node settings that point at it, checkout requests, order checks, the paysim
// charge log per idempotency key, bounded polling, and a raw XRANGE of the node's Redis stream.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"
#include "paysim_process.hpp"

namespace surge::itest {

using ptest::logged_charge;
using ptest::paysim_process;

/// Two gateways, "alpha" (first in failover order, form wire style) and "beta" (json style).
/// `extra` are more surge-paysim flags, e.g. "--slow-ms=1500".
std::unique_ptr<paysim_process> start_paysim(std::vector<std::string> extra = {});

/// node_config for a node paying through `ps` (--payments.gateways; https:// when `ps` serves
/// TLS, and then `more` names payments.ca_file), plus `more` flags.
node_config paying_node(const paysim_process& ps, std::vector<std::string> more = {},
                        std::string holds_ttl = "600s");

/// paying_node(ps, more, holds_ttl) for a node that joins `first`'s cluster.
node_config joining_node(const paysim_process& ps, const node_process& first,
                         std::vector<std::string> more = {}, std::string holds_ttl = "600s");

/// What most checkout cases start from (`auto [ps, node, a] = paying_store{...};`): a surge-paysim
/// started with `paysim_flags`, one node paying through it (paying_node(*ps, node_flags,
/// holds_ttl)) and its API client. Members are made in this order and destroyed in reverse, like
/// locals.
struct paying_store {
  explicit paying_store(std::vector<std::string> paysim_flags = {},
                        std::vector<std::string> node_flags = {}, std::string holds_ttl = "600s");

  std::unique_ptr<paysim_process> ps;
  node_process node;
  api a;
};

/// One order line as API.md writes it.
struct line_spec {
  std::string sku;
  int64_t qty = 0;
  int64_t price_cents = 0;
};

/// Creates (PUT) product `sku` at `price_cents` USD with `on_hand` stock.
void add_product(api& a, const std::string& sku, int64_t price_cents, int64_t on_hand);

/// A new cart holding `lines` (each PUT must answer 200); returns its id.
std::string filled_cart(api& a, const std::vector<line_spec>& lines);

/// A cart of one product: the product and its lines, and the cart's id.
struct one_product_cart {
  std::vector<line_spec> lines;
  std::string id;
};

/// Creates product `sku` at `price_cents` with `on_hand` stock and a new cart holding `qty` of it.
one_product_cart stocked_cart(api& a, const std::string& sku, int64_t price_cents, int64_t on_hand,
                              int64_t qty);

/// hold_expires_at (ms) of the line for `sku` in `cart_json` (REQUIREs one).
int64_t expires_of(const json::value& cart_json, const std::string& sku);

/// {"payment":{"method":"card","token":<token>}}
std::string payment_body(const std::string& token);

/// POST /api/v1/carts/{cart}/checkout with Idempotency-Key `key` (no header when `key` is empty).
request checkout_request(const std::string& cart, const std::string& key, const std::string& token);
response checkout(http_client& c, const std::string& cart, const std::string& key,
                  const std::string& token);

/// CHECKs that `r` is status `status` with an order body of exactly API.md's members: cart
/// `cart`, status `want_status`, `lines` (any order), total = sum of qty*price, USD, created_at
/// an RFC 3339 time within `[after_ms - 2 s, now + 2 s]`. Returns the parsed order.
json::value check_order(const response& r, int status, const std::string& cart,
                        const std::string& want_status, std::vector<line_spec> lines,
                        int64_t after_ms);

/// serialize(parse(a)) == serialize(parse(b)): the same JSON document.
bool same_json(const std::string& a, const std::string& b);

/// The order id the node gave Idempotency-Key `key` (read from its database: order ids are a
/// keyed hash under ids.secret, which a client cannot compute); "" when there is no such order.
std::string order_id_of(const node_process& node, const std::string& key);

/// The charge log entries of every gateway for `key`.
std::vector<logged_charge> charges_for(const paysim_process& ps, const std::string& key);
std::size_t count_status(const std::vector<logged_charge>& log, const std::string& status);
std::string describe(const std::vector<logged_charge>& log);

/// Calls `done()` until it returns true or `patience` has passed (checked every `step`); returns
/// the last value of `done()`.
template <class F>
bool poll_until(std::chrono::milliseconds patience, F&& done,
                std::chrono::milliseconds step = std::chrono::milliseconds{25}) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (int i = 0; i < 1000000; ++i) {
    if (done()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(step); // polling interval, not synchronisation
  }
  return false;
}

/// One entry of a Redis stream.
struct stream_entry {
  std::string id;
  std::map<std::string, std::string> fields;
};

/// XRANGE `key` - + on the Redis at `redis_url` (redis://[:pw@]host[:port][/db]); throws
/// std::runtime_error when Redis cannot be reached or answers an error. A missing key is empty.
std::vector<stream_entry> xrange(const std::string& redis_url, const std::string& key);

} // namespace surge::itest
