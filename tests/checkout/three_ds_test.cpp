// 3-D Secure (Strong Customer Authentication) end to end: a real node paying through a real
// surge-paysim whose token tok_3ds makes the gateway ask for the shopper's authentication. The
// shopper's browser is played by the test: it opens the gateway's page, completes or fails it,
// and follows (or not) the redirect back to the node.

#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "checkout_support.hpp"
#include "surge/net/payments/webhook.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

namespace {

/// An http://127.0.0.1:<port><path> URL's port and path (REQUIREs that shape).
std::pair<uint16_t, std::string> local_url(const std::string& url) {
  const std::string prefix = "http://127.0.0.1:";
  REQUIRE_MESSAGE(url.rfind(prefix, 0) == 0, url);
  const auto slash = url.find('/', prefix.size());
  REQUIRE(slash != std::string::npos);
  return {static_cast<uint16_t>(std::stoi(url.substr(prefix.size(), slash - prefix.size()))),
          url.substr(slash)};
}

/// What a 3-D Secure checkout answered: the order, and where the shopper authenticates.
struct pending_action {
  std::string order_id;
  std::string url;
};

/// Checks out `cart` with tok_3ds under `key`: 202, status requires_action, an action URL on the
/// gateway.
pending_action checkout_3ds(api& a, const std::string& cart, const std::string& key) {
  const auto r = checkout(a.store(), cart, key, "tok_3ds");
  REQUIRE_MESSAGE(r.status == 202, describe(r));
  const auto o = parse_json(r.body);
  CHECK(str_of(o, "status") == "requires_action");
  const auto& action = member(o, "action");
  CHECK(str_of(action, "type") == "redirect_to_url");
  pending_action p{str_of(o, "order_id"), str_of(action, "url")};
  CHECK(p.url.find("/3ds/") != std::string::npos);
  return p;
}

/// The shopper on the gateway's page: GET it (a page with both buttons), then POST `choice`
/// ("complete" or "fail"). Returns the POST's answer (a redirect back to the node).
response on_the_page(const std::string& url, const std::string& choice) {
  const auto [port, path] = local_url(url);
  http_client gw{port};
  const auto page = gw.get(path);
  REQUIRE_MESSAGE(page.status == 200, describe(page));
  CHECK(page.body.find(path + "/complete") != std::string::npos);
  CHECK(page.body.find(path + "/fail") != std::string::npos);
  return gw.send(request{"POST", path + "/" + choice, "", {}});
}

std::string status_of(api& a, const std::string& order) {
  const auto r = a.store().get("/api/v1/orders/" + order);
  REQUIRE_MESSAGE(r.status == 200, describe(r));
  return str_of(parse_json(r.body), "status");
}

} // namespace

TEST_SUITE("three_ds") {

  TEST_CASE("completed: 202 with the gateway's page, holds kept, the redirect back confirms; "
            "one charge") {
    auto [ps, node, a] = paying_store{};
    const auto [lines, cart] = stocked_cart(a, "tds-ok", 1800, 4, 2);
    const auto p = checkout_3ds(a, cart, "key-3ds-ok");
    check_stock(a.stock("tds-ok"), 4, 2, 0); // held while the shopper authenticates
    CHECK(status_of(a, p.order_id) == "requires_action");
    // A retry of the key while the shopper is away: the same answer.
    const auto again = checkout(a.store(), cart, "key-3ds-ok", "tok_3ds");
    CHECK_MESSAGE(again.status == 202, describe(again));
    CHECK(str_of(member(parse_json(again.body), "action"), "url") == p.url);

    const auto done = on_the_page(p.url, "complete");
    REQUIRE_MESSAGE(done.status == 303, describe(done));
    const auto back = done.headers.at("location");
    const auto expected = "http://127.0.0.1:" + std::to_string(node.http_port()) +
                          "/api/v1/orders/" + p.order_id + "/return";
    CHECK_MESSAGE(back.rfind(expected, 0) == 0, back);
    const auto [port, path] = local_url(back);
    CHECK(port == node.http_port());
    const auto landed = a.store().get(path);
    REQUIRE_MESSAGE(landed.status == 200, describe(landed));
    CHECK(str_of(parse_json(landed.body), "order_id") == p.order_id);
    CHECK(poll_until(
        10s, [&] { return status_of(a, p.order_id) == "confirmed"; }, 50ms));
    check_stock(a.stock("tds-ok"), 4, 0, 2);
    const auto log = charges_for(*ps, "key-3ds-ok");
    INFO("charges: " << describe(log));
    CHECK(count_status(log, "approved") == 1);
    CHECK(log.size() == 1);
    // The key again: the confirmed order.
    const auto replay = checkout(a.store(), cart, "key-3ds-ok", "tok_3ds");
    CHECK_MESSAGE(replay.status == 201, describe(replay));
    CHECK(str_of(parse_json(replay.body), "status") == "confirmed");
  }

  TEST_CASE("completed with payments.capture=after_confirm: authorised, then captured") {
    auto [ps, node, a] = paying_store{{}, {"--payments.capture=after_confirm"}};
    const auto [lines, cart] = stocked_cart(a, "tds-ac", 900, 3, 1);
    const auto p = checkout_3ds(a, cart, "key-3ds-ac");
    REQUIRE(on_the_page(p.url, "complete").status == 303);
    a.store().get("/api/v1/orders/" + p.order_id + "/return");
    CHECK(poll_until(
        10s, [&] { return status_of(a, p.order_id) == "confirmed"; }, 50ms));
    check_stock(a.stock("tds-ac"), 3, 0, 1);
    const auto log = charges_for(*ps, "key-3ds-ac");
    INFO("charges: " << describe(log));
    CHECK(count_status(log, "approved") == 1); // captured
  }

  TEST_CASE("failed on the page: the order fails payment_declined, the cart and its holds are "
            "the shopper's again") {
    auto [ps, node, a] = paying_store{};
    const auto [lines, cart] = stocked_cart(a, "tds-no", 1500, 3, 1);
    const auto p = checkout_3ds(a, cart, "key-3ds-no");
    const auto done = on_the_page(p.url, "fail");
    REQUIRE_MESSAGE(done.status == 303, describe(done));
    a.store().get(local_url(done.headers.at("location")).second);
    CHECK(poll_until(
        10s, [&] { return status_of(a, p.order_id) == "failed"; }, 50ms));
    check_stock(a.stock("tds-no"), 3, 1, 0); // still held by the cart
    check_error(checkout(a.store(), cart, "key-3ds-no", "tok_3ds"), 402, "payment_declined");
    // Another card under a new key pays for the same lines.
    const auto paid = checkout(a.store(), cart, "key-3ds-no-2", "tok_ok");
    CHECK_MESSAGE(paid.status == 201, describe(paid));
    check_stock(a.stock("tds-no"), 3, 0, 1);
  }

  TEST_CASE("abandoned: after payments.action_ttl the payment is voided at the gateway, the holds "
            "go back, the order fails") {
    auto [ps, node, a] = paying_store{{}, {"--payments.action_ttl=10s"}};
    const auto [lines, cart] = stocked_cart(a, "tds-gone", 700, 2, 2);
    const auto before = wall_ms();
    const auto p = checkout_3ds(a, cart, "key-3ds-gone");
    check_stock(a.stock("tds-gone"), 2, 2, 0);
    CHECK(poll_until(
        30s, [&] { return status_of(a, p.order_id) == "failed"; }, 200ms));
    CHECK(wall_ms() - before >= 9'000); // not before the window ended
    check_stock(a.stock("tds-gone"), 2, 0, 0);
    const auto log = charges_for(*ps, "key-3ds-gone");
    INFO("charges: " << describe(log));
    CHECK(count_status(log, "voided") == 1);
    CHECK(count_status(log, "approved") == 0);
    // The page no longer takes it; the cart's lines went with the holds.
    const auto [gw_port, gw_path] = local_url(p.url);
    http_client gw{gw_port};
    const auto late = gw.send(request{"POST", gw_path + "/complete", "", {}});
    CHECK_MESSAGE(late.status == 409, describe(late));
    const auto c = a.store().get("/api/v1/carts/" + cart);
    REQUIRE_MESSAGE(c.status == 200, describe(c));
    CHECK(array_of(parse_json(c.body), "items").empty());
    check_error(checkout(a.store(), cart, "key-3ds-gone", "tok_3ds"), 402, "payment_declined");
  }

  TEST_CASE("the gateway's webhook arrives before the shopper is back: confirmed by it; the "
            "redirect then shows the confirmed order") {
    const std::string secret = "whsec_three_ds_test_0123456789";
    auto [ps, node, a] = paying_store{
        {}, {"--payments.webhook_secrets=alpha=" + secret, "--orders.reconcile_interval=1d"}};
    const auto [lines, cart] = stocked_cart(a, "tds-wh", 1100, 2, 1);
    const auto p = checkout_3ds(a, cart, "key-3ds-wh");
    const auto done = on_the_page(p.url, "complete"); // the redirect is not followed yet
    REQUIRE_MESSAGE(done.status == 303, describe(done));
    CHECK(status_of(a, p.order_id) == "requires_action");
    const std::string event =
        R"({"id":"evt_3ds_1","type":"charge.succeeded","data":{"object":{"object":"charge",)"
        R"("id":"ch_3ds","description":")" +
        p.order_id + R"("}}})";
    auto req = json_request("POST", "/api/v1/payments/alpha/webhook", event);
    req.headers.emplace_back("Stripe-Signature",
                             net::payments::form_signature(secret, wall_ms() / 1000, event));
    const auto hooked = a.store().send(req);
    CHECK_MESSAGE(hooked.status == 200, describe(hooked));
    CHECK(poll_until(
        10s, [&] { return status_of(a, p.order_id) == "confirmed"; }, 50ms));
    const auto landed = a.store().get(local_url(done.headers.at("location")).second);
    REQUIRE_MESSAGE(landed.status == 200, describe(landed));
    CHECK(str_of(parse_json(landed.body), "status") == "confirmed");
    CHECK(count_status(charges_for(*ps, "key-3ds-wh"), "approved") == 1);
    check_stock(a.stock("tds-wh"), 2, 0, 1);
  }
}

} // namespace surge::itest
