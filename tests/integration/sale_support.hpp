#pragma once

// Helpers of the sales tests (issue 17), written against API.md's "Sales and the waiting room"
// only: sale bodies, times, customers with tokens, tickets, polling with a bound.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "api.hpp"
#include "surge/net/customer_auth.hpp"

namespace surge::itest {

/// The customers' token secret of the sales tests' nodes (auth.jwt_secret).
inline const std::string sales_secret(40, 's');

/// Node flags that verify customer tokens signed with sales_secret.
inline std::vector<std::string> customer_auth_flags() {
  return {"--auth.jwt_secret=" + sales_secret};
}

/// A customer token for `customer` (HS256 over sales_secret, 1 h).
inline std::string token_for(const std::string& customer) {
  net::token_claims c;
  c.subject = customer;
  auto t = net::mint_hs256_token(sales_secret, c, std::chrono::system_clock::now());
  REQUIRE(std::holds_alternative<std::string>(t));
  return std::get<std::string>(t);
}

/// RFC 3339 UTC of `ms` (milliseconds since the epoch), e.g. "2026-11-27T08:00:00.250Z".
inline std::string rfc3339(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

/// What PUT /admin/v1/sales/{id} sets.
struct sale_spec {
  std::string name = "Drop";
  std::vector<std::string> skus;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  int64_t per_customer_limit = 0;
  bool queue = false;
  std::string admission_rate = "\"auto\""; ///< JSON text: "\"auto\"" or a number
  std::string pass_ttl = "60";             ///< JSON text: seconds or a duration string
};

inline std::string sale_body(const sale_spec& s) {
  std::string skus;
  for (const auto& sku : s.skus) {
    skus += (skus.empty() ? "\"" : ",\"") + sku + "\"";
  }
  return "{\"name\":\"" + s.name + "\",\"skus\":[" + skus + "],\"starts_at\":\"" +
         rfc3339(s.starts_at_ms) + "\",\"ends_at\":\"" + rfc3339(s.ends_at_ms) +
         "\",\"per_customer_limit\":" + std::to_string(s.per_customer_limit) +
         ",\"queue\":{\"enabled\":" + (s.queue ? "true" : "false") +
         ",\"admission_rate\":" + s.admission_rate + ",\"pass_ttl\":" + s.pass_ttl + "}}";
}

/// PUT the sale through `a`'s admin port; REQUIREs 200 and returns the sale.
inline json::value put_sale(api& a, const std::string& id, const sale_spec& s) {
  auto r = a.admin().put("/admin/v1/sales/" + id, sale_body(s));
  REQUIRE_MESSAGE(r.status == 200, "PUT sale " << id << ": " << describe(r));
  return parse_json(r.body);
}

/// GET /admin/v1/sales/{id}; REQUIREs 200.
inline json::value get_sale(api& a, const std::string& id) {
  auto r = a.admin().get("/admin/v1/sales/" + id);
  REQUIRE_MESSAGE(r.status == 200, "GET sale " << id << ": " << describe(r));
  return parse_json(r.body);
}

/// A shopper: a storefront client of one node carrying the customer's token.
class shopper {
 public:
  shopper(uint16_t port, std::string customer)
      : customer_(std::move(customer))
      , client_(port, std::chrono::seconds{15}) {
    client_.set_bearer(token_for(customer_));
  }

  const std::string& id() const { return customer_; }
  http_client& http() { return client_; }

  /// POST /api/v1/sales/{sale}/queue.
  response join(const std::string& sale) { return client_.post(queue_path(sale), ""); }
  /// GET /api/v1/sales/{sale}/queue/{ticket}.
  response ticket(const std::string& sale, const std::string& t) {
    return client_.get(queue_path(sale) + "/" + t);
  }
  /// POST /api/v1/carts; REQUIREs 201.
  std::string new_cart() {
    auto r = client_.post("/api/v1/carts", "{}");
    REQUIRE_MESSAGE(r.status == 201, describe(r));
    return str_of(parse_json(r.body), "cart_id");
  }
  /// PUT /api/v1/carts/{cart}/items/{sku} {"qty":qty}, with Surge-Pass when `pass` is not empty.
  response add(const std::string& cart, const std::string& sku, int64_t qty,
               const std::string& pass = {}) {
    auto req = json_request("PUT", "/api/v1/carts/" + cart + "/items/" + sku,
                            "{\"qty\":" + std::to_string(qty) + "}");
    if (!pass.empty()) {
      req.headers.emplace_back("Surge-Pass", pass);
    }
    return client_.send(req);
  }

  static std::string queue_path(const std::string& sale) {
    return "/api/v1/sales/" + sale + "/queue";
  }

 private:
  std::string customer_;
  http_client client_;
};

/// Polls `f` every 50 ms until it returns true or `limit` passes; true when it did.
inline bool eventually(std::chrono::milliseconds limit, const std::function<bool()>& f) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (f()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
}

/// A ticket's JSON, and its fields as the API writes them.
struct ticket_state {
  std::string state;
  int64_t position = -1; ///< -1: null
  std::string pass;      ///< "": null
  json::value body;
};

inline ticket_state ticket_of(const json::value& v) {
  ticket_state t;
  t.body = v;
  t.state = str_of(v, "state");
  const auto& pos = member(v, "position");
  t.position = pos.is_null() ? -1 : std::get<int64_t>(pos.get());
  const auto& pass = member(v, "pass");
  t.pass = pass.is_null() ? std::string{} : std::get<std::string>(pass.get());
  return t;
}

/// The ticket JSON has exactly API.md's members.
inline void check_ticket_shape(const json::value& v) {
  CHECK(keys_of(v) == std::vector<std::string>{"eta_s", "pass", "pass_expires_at", "position",
                                               "sale_id", "state", "ticket"});
}

} // namespace surge::itest
