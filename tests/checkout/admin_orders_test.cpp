// The console's orders and catalog on a real node paying through a real surge-paysim: refunds of
// one line and of the rest (through each wire style's gateway: alpha speaks the form style, beta
// the JSON one), seen in the order's timeline and in paysim's refund log; the order search by
// status, customer and time; an NDJSON import with a bad line in the middle.
#include <doctest/doctest.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "checkout_support.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

namespace {

/// `unix_ms` as RFC 3339 UTC with milliseconds.
std::string iso(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string{buf} + "." + std::to_string(1000 + unix_ms % 1000).substr(1) + "Z";
}

/// POST /admin/v1/orders/{id}/refunds with Idempotency-Key `key` and `body`.
response post_refund(api& a, const std::string& id, const std::string& key,
                     const std::string& body) {
  request rq{"POST",
             "/admin/v1/orders/" + id + "/refunds",
             body,
             {{"Content-Type", "application/json"}, {"Idempotency-Key", key}}};
  return a.admin().send(rq);
}

json::value get_json(http_client& c, const std::string& target) {
  const auto r = c.get(target);
  REQUIRE_MESSAGE(r.status == 200, target << ": " << describe(r));
  return parse_json(r.body);
}

/// The events of the order's timeline, in order.
std::vector<std::string> events_of(const json::value& order) {
  std::vector<std::string> out;
  for (const auto& e : array_of(order, "timeline")) {
    out.push_back(str_of(e, "event"));
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

/// Refunds one line, then the rest, of a confirmed order paid with `token` (which `gateway`
/// approves), and checks the answers, the order and paysim's log.
void refund_line_then_rest(const std::string& token, const std::string& gateway) {
  auto [ps, node, a] = paying_store{};
  add_product(a, "rf-a", 1250, 10);
  add_product(a, "rf-b", 499, 5);
  const auto cart = filled_cart(a, {{"rf-a", 2, 1250}, {"rf-b", 1, 499}});
  const auto r = checkout(a.store(), cart, "key-rf-" + gateway, token);
  REQUIRE_MESSAGE(r.status == 201, describe(r));
  const auto id = str_of(parse_json(r.body), "order_id");

  check_error(post_refund(a, id, "", "{}"), 400, "bad_request"); // the key is required
  request no_key{
      "POST", "/admin/v1/orders/" + id + "/refunds", "{}", {{"Content-Type", "application/json"}}};
  check_error(a.admin().send(no_key), 400, "bad_request");

  const auto one = post_refund(a, id, "adm-1", R"({"lines":[{"sku":"rf-a","qty":1}]})");
  REQUIRE_MESSAGE(one.status == 201, describe(one));
  const auto one_body = parse_json(one.body);
  CHECK(str_of(one_body, "status") == "refunded");
  CHECK(int_of(one_body, "amount_cents") == 1250);
  CHECK(str_of(one_body, "order_id") == id);
  // The same key and body: the same refund, 200; another body: 422.
  const auto again = post_refund(a, id, "adm-1", R"({"lines":[{"sku":"rf-a","qty":1}]})");
  CHECK_MESSAGE(again.status == 200, describe(again));
  CHECK(str_of(parse_json(again.body), "refund_id") == str_of(one_body, "refund_id"));
  check_error(post_refund(a, id, "adm-1", "{}"), 422, "idempotency_conflict");
  check_error(post_refund(a, id, "adm-2", R"({"lines":[{"sku":"rf-b","qty":2}]})"), 409,
              "not_refundable");

  const auto rest = post_refund(a, id, "adm-3", "{}");
  REQUIRE_MESSAGE(rest.status == 201, describe(rest));
  CHECK(int_of(parse_json(rest.body), "amount_cents") == 1250 + 499);
  check_error(post_refund(a, id, "adm-4", "{}"), 409, "not_refundable");

  // paysim: two refunds of the charge, through the gateway that took it.
  std::size_t refunded = 0;
  int64_t amount = 0;
  for (const auto& l : ps->refunds()) {
    if (l.charge_key == "key-rf-" + gateway || l.gateway == gateway) {
      CHECK(l.gateway == gateway);
      refunded += l.status == "refunded" ? 1 : 0;
      amount += l.status == "refunded" ? l.amount_cents : 0;
    }
  }
  CHECK(refunded == 2);
  CHECK(amount == 2999);

  // The order: its payment, both refunds, and a timeline of what is stored.
  const auto order = get_json(a.admin(), "/admin/v1/orders/" + id);
  INFO(json::serialize(order));
  CHECK(str_of(order, "status") == "confirmed");
  CHECK(str_of(member(order, "payment"), "gateway") == gateway);
  CHECK(int_of(order, "refunded_cents") == 2999);
  REQUIRE(array_of(order, "refunds").size() == 2);
  const auto events = events_of(order);
  for (const char* e :
       {"created", "claimed", "charged", "confirmed", "refund_requested", "refunded"}) {
    CHECK_MESSAGE(has(events, e), e);
  }
  CHECK(events.front() == "claimed"); // the cart is claimed before the order row exists
  // The outbox relay delivers the confirmation and the refunds' events.
  CHECK(poll_until(10s, [&] {
    return has(events_of(get_json(a.admin(), "/admin/v1/orders/" + id)), "outbox_delivered");
  }));
  check_error(a.admin().get("/admin/v1/orders/nosuchorder"), 404, "not_found");
}

} // namespace

TEST_SUITE("admin_orders") {

  TEST_CASE("refund one line, then the rest, through the form-style gateway (alpha)") {
    refund_line_then_rest("tok_ok", "alpha");
  }

  TEST_CASE("refund one line, then the rest, through the JSON-style gateway (beta)") {
    refund_line_then_rest("tok_down_first", "beta");
  }

  TEST_CASE("orders search: by status, customer, id prefix and time, newest first, paged") {
    auto [ps, node, a] = paying_store{};
    add_product(a, "sr-a", 100, 100);
    const auto t_before = wall_ms();
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
      auto created = a.store().post("/api/v1/carts",
                                    R"({"customer_id":"cust-)" + std::to_string(i % 2) + R"("})");
      REQUIRE(created.status == 201);
      const auto cart = str_of(parse_json(created.body), "cart_id");
      REQUIRE(a.put_item(cart, "sr-a", 1).status == 200);
      const auto r = checkout(a.store(), cart, "key-sr-" + std::to_string(i),
                              i == 2 ? "tok_decline" : "tok_ok");
      REQUIRE(r.status == (i == 2 ? 402 : 201));
      ids.push_back(order_id_of(node, "key-sr-" + std::to_string(i)));
    }
    auto& c = a.admin();
    auto items = [&](const std::string& query) {
      return array_of(get_json(c, "/admin/v1/orders" + query), "items");
    };
    const auto all = items("");
    REQUIRE(all.size() == 3);
    CHECK(str_of(all[0], "order_id") == ids[2]); // newest first
    CHECK(str_of(all[2], "order_id") == ids[0]);
    CHECK(str_of(all[2], "gateway") == "alpha");
    CHECK(int_of(all[2], "refunded_cents") == 0);
    CHECK(items("?status=failed").size() == 1);
    CHECK(items("?status=confirmed").size() == 2);
    CHECK(items("?customer=cust-0").size() == 2);
    CHECK(items("?customer=cust-0&status=confirmed").size() == 1);
    CHECK(items("?q=" + ids[1]).size() == 1);
    CHECK(items("?q=" + ids[1].substr(0, 30)).size() >= 1);
    CHECK(items("?since=" + iso(t_before - 60'000)).size() == 3);
    CHECK(items("?until=" + iso(t_before - 60'000)).empty());
    // Keyset pages: 2 + 1, nothing twice.
    const auto p1 = get_json(c, "/admin/v1/orders?limit=2");
    REQUIRE(array_of(p1, "items").size() == 2);
    const auto cursor = str_of(p1, "next_cursor");
    const auto p2 = get_json(c, "/admin/v1/orders?limit=2&cursor=" + cursor);
    REQUIRE(array_of(p2, "items").size() == 1);
    CHECK(str_of(array_of(p2, "items")[0], "order_id") == ids[0]);
    CHECK(member(p2, "next_cursor").is_null());
    for (const char* bad : {"?status=lost", "?limit=0", "?limit=101", "?since=yesterday",
                            "?cursor=nope", "?colour=red", "?q=a%20b"}) {
      check_error(c.get(std::string{"/admin/v1/orders"} + bad), 400, "bad_request");
    }
  }

  TEST_CASE("NDJSON import: good lines applied through the SKU actors, a bad line in the middle "
            "reported by number; the admin listing shows them") {
    auto [ps, node, a] = paying_store{};
    const std::string body =
        R"({"sku":"im-1","name":"One","price_cents":100,"currency":"USD","stock":5})"
        "\n\n"
        R"({"sku":"im-2","name":"","price_cents":100})"
        "\n"
        "{not json\n"
        R"({"sku":"im-3","name":"Three","category":"tools","price_cents":300})"
        "\n";
    request rq{
        "POST", "/admin/v1/products:import", body, {{"Content-Type", "application/x-ndjson"}}};
    const auto r = a.admin().send(rq);
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    const auto out = parse_json(r.body);
    INFO(r.body);
    CHECK(int_of(out, "imported") == 2);
    CHECK(int_of(out, "failed") == 2);
    const auto& errors = array_of(out, "errors");
    REQUIRE(errors.size() == 2);
    CHECK(int_of(errors[0], "line") == 3);
    CHECK(str_of(errors[0], "code") == "bad_request");
    CHECK(int_of(errors[1], "line") == 4);
    check_stock(a.stock("im-1"), 5, 0, 0);
    CHECK(str_of(a.product("im-3"), "category") == "tools");
    CHECK(a.store().get("/api/v1/products/im-2").status == 404);
    const auto listing = get_json(a.admin(), "/admin/v1/products?limit=10");
    std::set<std::string> skus;
    for (const auto& p : array_of(listing, "items")) {
      skus.insert(str_of(p, "sku"));
    }
    CHECK(skus == std::set<std::string>{"im-1", "im-3"});
    // Other routes still want JSON.
    request put{"PUT",
                "/admin/v1/products/im-9",
                R"({"name":"x","price_cents":1})",
                {{"Content-Type", "application/x-ndjson"}}};
    check_error(a.admin().send(put), 415, "unsupported_media_type");
  }
}

} // namespace surge::itest
