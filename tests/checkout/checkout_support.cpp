#include "checkout_support.hpp"

#include <caf/error.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <tuple>

#include <pqxx/pqxx>

#include "surge/persistence/orders.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::itest {

std::unique_ptr<paysim_process> start_paysim(std::vector<std::string> extra) {
  return std::make_unique<paysim_process>(std::vector<std::string>{"alpha", "beta"},
                                          std::move(extra));
}

std::string order_id_of(const node_process& node, const std::string& key) {
  pqxx::connection pg{node.database_url()};
  pqxx::nontransaction tx{pg};
  auto rows = tx.exec_params("SELECT order_id FROM orders WHERE idempotency_key = $1", key);
  return rows.empty() ? std::string{} : rows[0][0].as<std::string>();
}

node_config paying_node(const paysim_process& ps, std::vector<std::string> more,
                        std::string holds_ttl) {
  node_config cfg;
  cfg.holds_ttl = std::move(holds_ttl);
  const std::string scheme = ps.tls() ? "https" : "http";
  cfg.extra.push_back("--payments.gateways=alpha=form+" + scheme +
                      "://127.0.0.1:" + std::to_string(ps.port(0)) + ",beta=json+" + scheme +
                      "://127.0.0.1:" + std::to_string(ps.port(1)));
  cfg.extra.insert(cfg.extra.end(), more.begin(), more.end());
  return cfg;
}

node_config joining_node(const paysim_process& ps, const node_process& first,
                         std::vector<std::string> more, std::string holds_ttl) {
  auto cfg = paying_node(ps, std::move(more), std::move(holds_ttl));
  cfg.cluster_with = &first;
  return cfg;
}

paying_store::paying_store(std::vector<std::string> paysim_flags,
                           std::vector<std::string> node_flags, std::string holds_ttl)
    : ps(start_paysim(std::move(paysim_flags)))
    , node(paying_node(*ps, std::move(node_flags), std::move(holds_ttl)))
    , a(node) {}

void add_product(api& a, const std::string& sku, int64_t price_cents, int64_t on_hand) {
  a.put_product({.sku = sku, .name = "Product " + sku, .price_cents = price_cents});
  a.set_stock(sku, on_hand);
}

one_product_cart stocked_cart(api& a, const std::string& sku, int64_t price_cents, int64_t on_hand,
                              int64_t qty) {
  add_product(a, sku, price_cents, on_hand);
  one_product_cart out{{{sku, qty, price_cents}}, ""};
  out.id = filled_cart(a, out.lines);
  return out;
}

std::string filled_cart(api& a, const std::vector<line_spec>& lines) {
  const auto cart = a.create_cart();
  for (const auto& l : lines) {
    auto r = a.put_item(cart, l.sku, l.qty);
    REQUIRE_MESSAGE(r.status == 200, "PUT " << l.sku << " x" << l.qty << ": " << describe(r));
  }
  return cart;
}

std::string payment_body(const std::string& token) {
  return R"({"payment":{"method":"card","token":")" + token + "\"}}";
}

int64_t expires_of(const json::value& cart_json, const std::string& sku) {
  const auto ms = parse_rfc3339_ms(str_of(line_at(cart_json, sku), "hold_expires_at"));
  REQUIRE(ms.has_value());
  return *ms;
}

request checkout_request(const std::string& cart, const std::string& key,
                         const std::string& token) {
  auto req = json_request("POST", "/api/v1/carts/" + cart + "/checkout", payment_body(token));
  if (!key.empty()) {
    req.headers.emplace_back("Idempotency-Key", key);
  }
  return req;
}

response checkout(http_client& c, const std::string& cart, const std::string& key,
                  const std::string& token) {
  return c.send(checkout_request(cart, key, token));
}

json::value check_order(const response& r, int status, const std::string& cart,
                        const std::string& want_status, std::vector<line_spec> lines,
                        int64_t after_ms) {
  REQUIRE_MESSAGE(r.status == status, "want " << status << " order, got " << describe(r));
  auto o = parse_json(r.body);
  INFO("order: " << r.body);
  CHECK(keys_of(o) == std::vector<std::string>{"cart_id", "created_at", "currency", "lines",
                                               "order_id", "status", "total_cents"});
  CHECK(!str_of(o, "order_id").empty());
  CHECK(str_of(o, "cart_id") == cart);
  CHECK(str_of(o, "status") == want_status);
  CHECK(str_of(o, "currency") == "USD");
  int64_t total = 0;
  for (const auto& l : lines) {
    total += l.qty * l.price_cents;
  }
  CHECK(int_of(o, "total_cents") == total);
  using row = std::tuple<std::string, int64_t, int64_t>;
  std::vector<row> got;
  for (const auto& l : array_of(o, "lines")) {
    CHECK(keys_of(l) == std::vector<std::string>{"price_cents", "qty", "sku"});
    got.emplace_back(str_of(l, "sku"), int_of(l, "qty"), int_of(l, "price_cents"));
  }
  std::vector<row> want;
  for (const auto& l : lines) {
    want.emplace_back(l.sku, l.qty, l.price_cents);
  }
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  CHECK(got == want);
  const auto created = parse_rfc3339_ms(str_of(o, "created_at"));
  CHECK_MESSAGE(created.has_value(), "created_at is not RFC 3339 UTC");
  if (created) {
    CHECK(*created >= after_ms - 2000);
    CHECK(*created <= wall_ms() + 2000);
  }
  return o;
}

bool same_json(const std::string& a, const std::string& b) {
  auto pa = json::parse(a);
  auto pb = json::parse(b);
  const auto* va = std::get_if<json::value>(&pa);
  const auto* vb = std::get_if<json::value>(&pb);
  return va != nullptr && vb != nullptr && json::serialize(*va) == json::serialize(*vb);
}

std::vector<logged_charge> charges_for(const paysim_process& ps, const std::string& key) {
  std::vector<logged_charge> out;
  for (auto& c : ps.charges()) {
    if (c.key == key) {
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::size_t count_status(const std::vector<logged_charge>& log, const std::string& status) {
  return static_cast<std::size_t>(std::count_if(
      log.begin(), log.end(), [&](const logged_charge& c) { return c.status == status; }));
}

std::string describe(const std::vector<logged_charge>& log) {
  std::string out = "[";
  for (const auto& c : log) {
    out += (out.size() > 1 ? ", " : "") + c.gateway + " " + c.key + " " +
           std::to_string(c.amount_cents) + " " + c.currency + " " + c.status;
  }
  return out + "]";
}

std::vector<stream_entry> xrange(const std::string& redis_url, const std::string& key) {
  // The product's own stream reader (persistence/redis_store.cpp, tested there), without a key
  // prefix: `key` is the whole key.
  auto stream = persistence::make_redis_event_stream(surge::test::redis_test_options(redis_url));
  if (!stream) {
    throw std::runtime_error("cannot reach Redis at " + redis_url + ": " +
                             caf::to_string(stream.error()));
  }
  std::vector<stream_entry> out;
  std::string after = "0";
  for (int page = 0; page < 1000; ++page) { // bounded: 1,000 pages of 1,000 entries
    auto got = (*stream)->read(key, after, 1000, std::chrono::milliseconds{0});
    if (!got) {
      throw std::runtime_error("XREAD " + key + ": " + caf::to_string(got.error()));
    }
    if (got->empty()) {
      break;
    }
    for (auto& e : *got) {
      stream_entry se;
      se.id = e.id;
      for (auto& [k, v] : e.fields) {
        se.fields[k] = v;
      }
      out.push_back(std::move(se));
    }
    after = out.back().id;
  }
  return out;
}

} // namespace surge::itest
