#pragma once

// Checks and calls shared by the end-to-end tests, written against API.md only.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.hpp"
#include "node_process.hpp"
#include "surge/net/json.hpp"
#include "surge/persistence/records.hpp"

namespace surge::itest {

namespace json = surge::net::json;

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp "YYYY-MM-DDTHH:MM:SS[.fff]Z";
/// nullopt when `s` is not one.
std::optional<int64_t> parse_rfc3339_ms(const std::string& s);

/// Now, in milliseconds since the epoch (the node's clock is the same machine's).
int64_t wall_ms();

/// `body` parsed as JSON (REQUIREs that it parses).
json::value parse_json(const std::string& body);

/// Member `key` of object `obj` (REQUIREs that `obj` is an object with that member).
const json::value& member(const json::value& obj, std::string_view key);
int64_t int_of(const json::value& obj, std::string_view key);
std::string str_of(const json::value& obj, std::string_view key);
const json::array& array_of(const json::value& obj, std::string_view key);

/// The member names of object `obj`, sorted.
std::vector<std::string> keys_of(const json::value& obj);

/// Empty when `r` is an error response with `status` in API.md's shape
/// {"error":{"code":"...","message":"..."}} (exactly these members, non-empty strings) whose code
/// is `code` (any code when `code` is empty); otherwise what is wrong.
std::string error_mismatch(const response& r, int status, std::string_view code);

/// CHECKs error_mismatch(r, status, code) is empty.
void check_error(const response& r, int status, std::string_view code = {});

/// "<status> <error> <body>" for assertion messages.
std::string describe(const response& r);

/// Waits (bounded by `limit`, polling) until a session of the database at `database_url` waits
/// for a lock (fault injection: a test holds a table lock, the node's statement queues on it).
/// True once one does, false when the time is up.
bool wait_for_lock_waiter(const std::string& database_url,
                          std::chrono::milliseconds limit = std::chrono::seconds{10});

/// PUT /admin/v1/products/{sku}: the catalog data the admin API sets (price 0 and no limit
/// unless given).
using product_spec = persistence::product_record;
std::string product_body(const product_spec& p);

/// The node's storefront and admin APIs (admin calls carry the node's token).
class api {
 public:
  explicit api(const node_process& node);

  http_client& store() { return store_; }
  http_client& admin() { return admin_; }
  uint16_t store_port() const { return store_.port(); }

  /// PUT /admin/v1/products/{sku}; REQUIREs 200 and returns the product.
  json::value put_product(const product_spec& p);
  /// POST /admin/v1/products/{sku}/stock {"set":n}; REQUIREs 200 and returns the stock.
  json::value set_stock(const std::string& sku, int64_t on_hand);
  /// put_product(p), then set_stock(p.sku, on_hand); returns the stock.
  json::value add_product(const product_spec& p, int64_t on_hand);
  /// GET /admin/v1/products/{sku}/stock; REQUIREs 200.
  json::value stock(const std::string& sku);
  /// GET /api/v1/products/{sku}; REQUIREs 200.
  json::value product(const std::string& sku);
  /// POST /api/v1/carts; REQUIREs 201 and returns the cart id.
  std::string create_cart(const std::string& customer_id = {});
  /// `n` carts created concurrently; REQUIREs all 201 and distinct ids.
  std::vector<std::string> create_carts(std::size_t n);
  /// GET /api/v1/carts/{id} of every id, concurrently (send_all); the responses in that order.
  std::vector<response> get_carts(const std::vector<std::string>& cart_ids);
  /// GET /api/v1/carts/{id}; REQUIREs 200.
  json::value cart(const std::string& cart_id);
  /// PUT /api/v1/carts/{id}/items/{sku} {"qty":qty}.
  response put_item(const std::string& cart_id, const std::string& sku, int64_t qty);
  /// The value of a sample in GET /metrics, e.g. `surge_entities_active{kind="sku"}`; REQUIREs
  /// that /metrics answers 200 and has it.
  double metric(const std::string& sample);

 private:
  http_client store_;
  http_client admin_;
};

/// The line of `cart` for `sku`, or nullptr.
const json::value* line_of(const json::value& cart, std::string_view sku);
/// The line of `cart` for `sku` (REQUIREs that there is one). Mind the lifetime of `cart`.
const json::value& line_at(const json::value& cart, std::string_view sku);

/// CHECKs the stock's on_hand/held/sold and that available = on_hand - held - sold.
void check_stock(const json::value& stock, int64_t on_hand, int64_t held, int64_t sold);

} // namespace surge::itest
