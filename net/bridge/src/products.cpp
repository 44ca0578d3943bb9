// Products: GET /api/v1/products/{sku} from the SKU actor, GET /api/v1/products from the
// catalog pool (listings cached by the whole query in bridge_env::listings, as ready responses).

#include <charconv>
#include <optional>
#include <string>
#include <variant>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// The filters of GET /api/v1/products, or the 400 naming the first bad parameter (in the order
/// q, category, cursor, min_price, max_price, limit, then the cursor's form and in_stock).
std::variant<persistence::product_query, http_response> listing_query(const http_request& req) {
  persistence::product_query q;
  std::optional<http_response> refused;
  auto text_param = [&](const char* name, std::size_t max_len, std::string& out) -> bool {
    if (auto v = req.param(name)) {
      if (v->size() > max_len) {
        refused =
            bad_request(std::string{"'"} + name + "' is longer than " + std::to_string(max_len));
        return false;
      }
      out = std::string{*v};
    }
    return true;
  };
  auto int_param = [&](const char* name, int64_t lo, int64_t hi,
                       std::optional<int64_t>& out) -> bool {
    auto v = req.param(name);
    if (!v || v->empty()) {
      return true;
    }
    int64_t x = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc{} || ptr != v->data() + v->size() || x < lo || x > hi) {
      refused = bad_request(std::string{"'"} + name + "' must be an integer between " +
                            std::to_string(lo) + " and " + std::to_string(hi));
      return false;
    }
    out = x;
    return true;
  };
  std::string cursor;
  std::optional<int64_t> limit;
  if (!text_param("q", 200, q.text) || !text_param("category", 100, q.category) ||
      !text_param("cursor", 64, cursor) || !int_param("min_price", 0, max_money, q.min_price) ||
      !int_param("max_price", 0, max_money, q.max_price) || !int_param("limit", 1, 100, limit)) {
    return std::move(*refused);
  }
  if (!cursor.empty() && !valid_sku(cursor)) {
    return bad_request("'cursor' is not a cursor this API returned");
  }
  q.after_sku = cursor;
  q.limit = static_cast<std::size_t>(limit.value_or(20));
  if (auto v = req.param("in_stock")) {
    if (*v == "true" || *v == "1") {
      q.in_stock_only = true;
    } else if (*v == "false" || *v == "0" || v->empty()) {
      q.in_stock_only = false;
    } else {
      return bad_request("'in_stock' must be true or false");
    }
  }
  return q;
}

/// The query in one canonical string: the listing cache's key.
std::string listing_key(const persistence::product_query& q) {
  std::string key = q.text;
  for (const auto* part : {&q.category, &q.after_sku}) {
    key += '\x1f';
    key += *part;
  }
  for (const auto& n : {q.min_price, q.max_price}) {
    key += '\x1f';
    key += n ? std::to_string(*n) : std::string{};
  }
  key += '\x1f' + std::to_string(q.limit) + (q.in_stock_only ? "s" : "a");
  return key;
}

} // namespace

void get_product(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  call<actors::product_view>(*env, env->skus->acquire_routed(p[0]), std::move(r),
                             answer(200, product_json), actors::product_atom::value);
}

void list_products(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&,
                   responder r) {
  auto parsed = listing_query(req);
  if (auto* refused = std::get_if<http_response>(&parsed)) {
    return r(std::move(*refused));
  }
  auto q = std::get<persistence::product_query>(std::move(parsed));
  auto key = listing_key(q);
  const auto asked = page_cache::clock::now();
  uint64_t generation = 0;
  if (env->listings) {
    if (auto hit = env->listings->get(key, asked)) {
      return r(with_ready(hit->ok));
    }
    generation = env->listings->generation();
  }
  env->catalog->submit([env, key = std::move(key), asked, generation, q = std::move(q),
                        r = std::move(r)](persistence::catalog* cat) mutable {
    if (cat == nullptr) {
      return r(error_response(503, "unavailable", "catalog unavailable"));
    }
    auto page = cat->list_products(q);
    if (!page) {
      return r(to_http_error(page.error()));
    }
    // Sent as made once, from the cache too.
    auto ready = make_ready(json_response(200, listing_json(*page, q.limit)));
    if (env->listings) {
      env->listings->put(key,
                         std::make_shared<page_cache::page>(page_cache::page{{}, {}, asked, ready}),
                         generation);
    }
    r(with_ready(std::move(ready)));
  });
}

} // namespace surge::net::bridge
