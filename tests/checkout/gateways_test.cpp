// Checkout when a gateway is slow or down: an answer that comes after payments.timeout is found
// by looking the charge up by its key (never charged twice), and a first gateway that fails
// hands the charge to the next one.
#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "checkout_support.hpp"
#include "surge/net/payments/webhook.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

/// Checks out `cart` with `key` and tok_slow (the gateway answers after paysim's --slow-ms) and
/// kills the node while it waits for `gateway`, then starts it again: the order is left pending
/// with a charge the node never heard of. Returns once the charge is in that gateway's log.
void lose_the_answer(const paysim_process& ps, node_process& node, const std::string& cart,
                     const std::string& key, const std::string& gateway) {
  response in_flight;
  std::thread client{[&] {
    http_client c{node.http_port(), 20s};
    in_flight = checkout(c, cart, key, "tok_slow");
  }};
  const bool reached = poll_until(
      10s,
      [&] {
        const auto log = charges_for(ps, key);
        return std::any_of(log.begin(), log.end(),
                           [&](const logged_charge& c) { return c.gateway == gateway; });
      },
      10ms);
  node.kill9();
  client.join();
  REQUIRE_MESSAGE(reached, "the charge never reached " << gateway << ": " << describe(in_flight));
  REQUIRE_MESSAGE(in_flight.status == 0, "answered before the kill: " << describe(in_flight));
  node.start();
}

TEST_SUITE("gateways") {

  TEST_CASE("tok_slow beyond payments.timeout: resolved by lookup, confirmed, one charge") {
    auto [ps, node, a] = paying_store{
        {"--slow-ms=1500"},
        {"--payments.timeout=300ms", "--orders.reconcile_interval=1s", "--orders.settle_after=1s"}};
    const auto [lines, cart] = stocked_cart(a, "gw-s", 2500, 3, 1);

    const auto before = wall_ms();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = checkout(a.store(), cart, "key-slow", "tok_slow");
    const auto took = std::chrono::steady_clock::now() - t0;
    // payments.timeout is honoured: the node did not wait for the slow answer (1.5 s).
    CHECK_MESSAGE(took < 1400ms,
                  "first answer after "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms: " << describe(r));
    if (r.status != 201) {
      // The outcome was not known yet: API.md lets the client retry with the same key (and the
      // reconciler settles the order meanwhile). Only "unavailable" may say so.
      check_error(r, 503, "unavailable");
      MESSAGE("first answer " << describe(r) << "; retrying with the same key");
      int retries = 0;
      poll_until(
          20s,
          [&] {
            ++retries;
            r = checkout(a.store(), cart, "key-slow", "tok_slow");
            return r.status != 503;
          },
          200ms);
      MESSAGE(retries << " retries");
    }
    check_order(r, 201, cart, "confirmed", lines, before);
    check_stock(a.stock("gw-s"), 3, 0, 1);

    const auto log = charges_for(*ps, "key-slow");
    INFO("charges for key-slow: " << describe(log));
    CHECK(count_status(log, "approved") == 1);
    CHECK(log.size() == 1);
    if (!log.empty()) {
      CHECK(log[0].gateway == "alpha"); // no failover while the first outcome is unknown
      CHECK(log[0].amount_cents == 2500);
    }

    // Later retries keep the first result and charge nothing more.
    const auto again = checkout(a.store(), cart, "key-slow", "tok_slow");
    CHECK_MESSAGE(again.status == 201, describe(again));
    CHECK(same_json(again.body, r.body));
    CHECK(count_status(charges_for(*ps, "key-slow"), "approved") == 1);
  }

  TEST_CASE("tok_down_first: confirmed through the second gateway, nothing approved on the first") {
    auto [ps, node, a] = paying_store{};
    const auto [lines, cart] = stocked_cart(a, "gw-d", 1999, 3, 2);

    const auto before = wall_ms();
    const auto r = checkout(a.store(), cart, "key-down-first", "tok_down_first");
    check_order(r, 201, cart, "confirmed", lines, before);
    check_stock(a.stock("gw-d"), 3, 0, 2);

    const auto log = charges_for(*ps, "key-down-first");
    INFO("charges: " << describe(log));
    std::size_t approved_alpha = 0;
    std::size_t approved_beta = 0;
    for (const auto& c : log) {
      approved_alpha += c.gateway == "alpha" && c.status == "approved" ? 1 : 0;
      approved_beta += c.gateway == "beta" && c.status == "approved" ? 1 : 0;
      CHECK(c.amount_cents == 2 * 1999);
    }
    CHECK(approved_alpha == 0);
    CHECK(approved_beta == 1);
    CHECK(count_status(log, "approved") == 1);
  }

  TEST_CASE("the first gateway in an outage: tok_ok is confirmed through the second") {
    auto [ps, node, a] = paying_store{};
    const auto [lines, cart] = stocked_cart(a, "gw-o", 500, 3, 1);
    ps->set_down(0, true);

    const auto before = wall_ms();
    check_order(checkout(a.store(), cart, "key-outage", "tok_ok"), 201, cart, "confirmed", lines,
                before);
    check_stock(a.stock("gw-o"), 3, 0, 1);
    const auto log = charges_for(*ps, "key-outage");
    INFO("charges: " << describe(log));
    CHECK(count_status(log, "approved") == 1);
    for (const auto& c : log) {
      CHECK((c.gateway == "beta" || c.status != "approved"));
    }
  }

  TEST_CASE("every gateway in an outage: 503 unavailable, Surge-Error-Cause: payment, nothing "
            "charged; the key's retry after the outage confirms") {
    auto [ps, node, a] = paying_store{};
    const auto [lines, cart] = stocked_cart(a, "gw-x", 700, 3, 1);
    ps->set_down(0, true);
    ps->set_down(1, true);

    const auto before = wall_ms();
    auto r = checkout(a.store(), cart, "key-down", "tok_ok");
    check_error(r, 503, "unavailable"); // the body keeps API.md's shape
    CHECK_MESSAGE(r.header("surge-error-cause") == "payment", describe(r));
    CHECK(r.header("retry-after") == "1");
    CHECK(count_status(charges_for(*ps, "key-down"), "approved") == 0);

    // Only the gateways' failures name a cause: not, e.g., an unknown cart's checkout (404).
    CHECK(checkout(a.store(), "c_00000000000000000000000000000000", "key-none", "tok_ok")
              .header("surge-error-cause")
              .empty());

    ps->set_down(0, false);
    ps->set_down(1, false);
    // The breakers opened by the outage let one probe through after their cooldown.
    poll_until(
        20s,
        [&] {
          r = checkout(a.store(), cart, "key-down", "tok_ok");
          return r.status != 503;
        },
        250ms);
    check_order(r, 201, cart, "confirmed", lines, before);
    check_stock(a.stock("gw-x"), 3, 0, 1);
    CHECK(count_status(charges_for(*ps, "key-down"), "approved") == 1);
  }

  TEST_CASE("https gateways (payments.ca_file): confirmed over verified TLS, failover included; "
            "an unusable CA file is a start-up error") {
    ptest::test_certs certs;
    certs.make("paysim");
    auto [ps, node, a] =
        paying_store{certs.paysim_flags("paysim"), {"--payments.ca_file=" + certs.ca()}};
    REQUIRE(ps->tls());
    const auto [lines, cart] = stocked_cart(a, "gw-tls", 1250, 5, 1);
    const auto before = wall_ms();
    check_order(checkout(a.store(), cart, "key-tls", "tok_ok"), 201, cart, "confirmed", lines,
                before);
    const auto log = charges_for(*ps, "key-tls");
    INFO("charges: " << describe(log));
    CHECK(count_status(log, "approved") == 1);
    CHECK((log.size() == 1 && log[0].gateway == "alpha"));

    const auto moved = filled_cart(a, {{"gw-tls", 1, 1250}});
    check_order(checkout(a.store(), moved, "key-tls-down", "tok_down_first"), 201, moved,
                "confirmed", {{"gw-tls", 1, 1250}}, before);
    const auto down = charges_for(*ps, "key-tls-down");
    INFO("charges: " << describe(down));
    CHECK(count_status(down, "approved") == 1);
    for (const auto& c : down) {
      CHECK((c.gateway == "beta" || c.status != "approved"));
    }
    check_stock(a.stock("gw-tls"), 5, 0, 2);

    // A CA file that cannot be used stops the node at start, naming the setting.
    auto bad = paying_node(*ps, {"--payments.ca_file=" + certs.dir() + "/no-such-ca.pem"});
    bad.node_id = "bad-ca";
    const auto failure = start_failure(bad);
    REQUIRE(failure.has_value());
    // The node's own words (the harness echoes the command line above them).
    CHECK_MESSAGE(failure->find("surge-node: setting 'payments.ca_file': '" + certs.dir() +
                                "/no-such-ca.pem' is not a readable file") != std::string::npos,
                  *failure);
  }

  TEST_CASE("payments.capture=after_confirm: authorised, holds confirmed, then captured — one "
            "approved charge per order, failover included") {
    auto [ps, node, a] = paying_store{{}, {"--payments.capture=after_confirm"}};
    const auto [lines, cart] = stocked_cart(a, "gw-ac", 1500, 4, 2);
    const auto before = wall_ms();
    check_order(checkout(a.store(), cart, "key-ac", "tok_ok"), 201, cart, "confirmed", lines,
                before);
    auto log = charges_for(*ps, "key-ac");
    INFO("charges: " << describe(log));
    REQUIRE(log.size() == 1);
    CHECK(log[0].status == "approved"); // captured (an open authorisation reads "authorized")
    CHECK(log[0].gateway == "alpha");
    CHECK(log[0].amount_cents == 3000);

    const auto moved = filled_cart(a, {{"gw-ac", 1, 1500}});
    check_order(checkout(a.store(), moved, "key-ac-down", "tok_down_first"), 201, moved,
                "confirmed", {{"gw-ac", 1, 1500}}, before);
    const auto down = charges_for(*ps, "key-ac-down");
    INFO("charges: " << describe(down));
    CHECK(count_status(down, "approved") == 1);
    CHECK(count_status(down, "authorized") == 0);
    check_stock(a.stock("gw-ac"), 4, 0, 3);
    CHECK(ps->refunds().empty());
  }

  TEST_CASE("payments.capture=after_confirm: a hold that expires during the authorisation — "
            "lines back, the authorisation voided, nothing charged") {
    // As hold_expiry's "a hold that expires while another line is being paid", with an
    // authorisation: holds.ttl=8s (2 s margin), tok_slow answered after 4 s.
    auto [ps, node, a] = paying_store{
        {"--slow-ms=4000"}, {"--payments.timeout=10s", "--payments.capture=after_confirm"}, "8s"};
    add_product(a, "ac-a", 800, 5);
    add_product(a, "ac-b", 900, 5);
    const auto cart = filled_cart(a, {{"ac-a", 1, 800}});
    const auto expires_a = expires_of(a.cart(cart), "ac-a");
    REQUIRE(poll_until(
        10s, [&] { return wall_ms() >= expires_a - 2600; }, 10ms));
    const auto rb = a.put_item(cart, "ac-b", 2);
    REQUIRE_MESSAGE(rb.status == 200, describe(rb));
    REQUIRE_MESSAGE(wall_ms() < expires_a - 2100,
                    "too late to start the checkout; machine stalled");

    const auto r = checkout(a.store(), cart, "key-ac-expired", "tok_slow");
    check_error(r, 409, "hold_expired");
    CHECK_MESSAGE(r.body.find("nothing was charged") != std::string::npos, r.body);
    // Authorised once, then released: nothing captured, nothing to refund.
    const auto log = charges_for(*ps, "key-ac-expired");
    INFO("charges: " << describe(log));
    REQUIRE(log.size() == 1);
    CHECK(log[0].status == "voided");
    CHECK(ps->refunds().empty());
    check_stock(a.stock("ac-a"), 5, 0, 0);
    check_stock(a.stock("ac-b"), 5, 0, 0); // B's sale was returned
    const auto o = a.store().get("/api/v1/orders/" + order_id_of(node, "key-ac-expired"));
    REQUIRE_MESSAGE(o.status == 200, describe(o));
    const auto order = parse_json(o.body);
    CHECK(str_of(order, "status") == "cancelled");
    CHECK(str_of(member(order, "refund"), "status") == "voided");
    CHECK(int_of(member(order, "refund"), "amount_cents") == 0); // nothing was given back
    // A retry with the same key answers the same and changes nothing.
    check_error(checkout(a.store(), cart, "key-ac-expired", "tok_slow"), 409, "hold_expired");
    CHECK(charges_for(*ps, "key-ac-expired").size() == 1);
    CHECK(ps->refunds().empty());
    CHECK_MESSAGE(a.put_item(cart, "ac-b", 1).status == 200, "the cart stayed claimed");
  }

  TEST_CASE("a gateway's webhook settles an order whose charge answer was lost; forged, stale, "
            "malformed and unknown-gateway webhooks are refused") {
    const std::string secret = "whsec_gateways_test_0123456789";
    // The node dies while the gateway holds the charge; the reconciler waits a day, so only a
    // retry or the webhook can settle the order after the restart.
    auto [ps, node, a] = paying_store{
        {"--slow-ms=3000"},
        {"--payments.timeout=5s", "--orders.reconcile_interval=1d",
         "--payments.webhook_secrets=alpha=" + secret + ",beta=" + std::string(64, 'a')}};
    const auto [lines, cart] = stocked_cart(a, "gw-wh", 1200, 3, 1);
    const auto before = wall_ms();
    lose_the_answer(*ps, node, cart, "key-wh", "alpha");
    const auto order = order_id_of(node, "key-wh");
    REQUIRE(!order.empty());
    REQUIRE(
        poll_until(10s, [&] { return count_status(charges_for(*ps, "key-wh"), "approved") == 1; }));
    auto status_of = [&] {
      return str_of(parse_json(a.store().get("/api/v1/orders/" + order).body), "status");
    };
    CHECK(status_of() == "pending");

    const std::string event =
        R"({"id":"evt_wh_1","type":"charge.succeeded","data":{"object":{"object":"charge",)"
        R"("id":"ch_wh","description":")" +
        order + R"("}}})";
    auto hook = [&](const std::string& gateway, const std::string& body, std::string signature) {
      auto req = json_request("POST", "/api/v1/payments/" + gateway + "/webhook", body);
      if (!signature.empty()) {
        req.headers.emplace_back("Stripe-Signature", std::move(signature));
      }
      return a.store().send(req);
    };
    const auto now_s = wall_ms() / 1000;
    check_error(hook("gamma", event, net::payments::form_signature(secret, now_s, event)), 404,
                "not_found");
    check_error(
        hook("alpha", event, net::payments::form_signature("not-the-secret-at-all", now_s, event)),
        401, "unauthorized");
    check_error(hook("alpha", event, net::payments::form_signature(secret, now_s - 3600, event)),
                401, "unauthorized");
    check_error(hook("alpha", event, ""), 401, "unauthorized");
    check_error(hook("alpha", "{}", net::payments::form_signature(secret, now_s, "{}")), 400,
                "bad_request");
    check_error(hook("beta",
                     R"({"notificationItems":[{"NotificationRequestItem":{)"
                     R"("pspReference":"p","eventCode":"AUTHORISATION","success":"true",)"
                     R"("merchantReference":"key-wh","amount":{"value":1200,)"
                     R"("currency":"USD"},"additionalData":{"hmacSignature":"AAAA"}}}]})",
                     ""),
                401, "unauthorized");
    std::this_thread::sleep_for(500ms);
    CHECK(status_of() == "pending"); // nothing refused woke the order

    const auto ok = hook("alpha", event, net::payments::form_signature(secret, now_s, event));
    CHECK_MESSAGE(ok.status == 200, ok.status << " " << ok.body);
    CHECK(ok.body == R"({"received":true,"orders":1})");
    CHECK(poll_until(
        10s, [&] { return status_of() == "confirmed"; }, 50ms));
    // Again (gateways retry): the same answer, nothing charged or sold twice.
    CHECK(hook("alpha", event, net::payments::form_signature(secret, now_s, event)).status == 200);
    std::this_thread::sleep_for(300ms);
    check_order(checkout(a.store(), cart, "key-wh", "tok_slow"), 201, cart, "confirmed", lines,
                before - 30000);
    check_stock(a.stock("gw-wh"), 3, 0, 1);
    const auto log = charges_for(*ps, "key-wh");
    INFO("charges: " << describe(log));
    CHECK(log.size() == 1);
    CHECK(count_status(log, "approved") == 1);
  }

  TEST_CASE("a json gateway's signed notification settles an order left pending on it") {
    const std::string key_hex = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    auto [ps, node, a] = paying_store{{"--slow-ms=3000"},
                                      {"--payments.timeout=5s", "--orders.reconcile_interval=1d",
                                       "--payments.webhook_secrets=beta=" + key_hex}};
    ps->set_down(0, true); // the charge moves on to beta, the json gateway
    const auto [lines, cart] = stocked_cart(a, "gw-whj", 800, 2, 1);
    const auto before = wall_ms();
    lose_the_answer(*ps, node, cart, "key-whj", "beta");
    REQUIRE(poll_until(10s,
                       [&] { return count_status(charges_for(*ps, "key-whj"), "approved") == 1; }));
    const auto order = order_id_of(node, "key-whj");
    REQUIRE(!order.empty());
    std::string key;
    for (std::size_t i = 0; i < key_hex.size(); i += 2) {
      key.push_back(static_cast<char>(std::stoi(key_hex.substr(i, 2), nullptr, 16)));
    }
    const auto sig = net::payments::json_item_signature(key, "psp_whj", "", "Shop", "key-whj", 800,
                                                        "USD", "AUTHORISATION", true);
    const std::string body =
        R"({"live":"false","notificationItems":[{"NotificationRequestItem":{)"
        R"("pspReference":"psp_whj","merchantAccountCode":"Shop","merchantReference":"key-whj",)"
        R"("amount":{"value":800,"currency":"USD"},"eventCode":"AUTHORISATION","success":"true",)"
        R"("additionalData":{"hmacSignature":")" +
        sig + R"("}}}]})";
    // The form gateway has no secret here: its webhooks are not taken.
    check_error(a.store().send(json_request("POST", "/api/v1/payments/alpha/webhook", body)), 404,
                "not_found");
    const auto ok = a.store().send(json_request("POST", "/api/v1/payments/beta/webhook", body));
    CHECK_MESSAGE(ok.status == 200, ok.status << " " << ok.body);
    CHECK(ok.body == "[accepted]");
    CHECK(poll_until(
        10s,
        [&] {
          return str_of(parse_json(a.store().get("/api/v1/orders/" + order).body), "status") ==
                 "confirmed";
        },
        50ms));
    ps->set_down(0, false);
    check_order(checkout(a.store(), cart, "key-whj", "tok_slow"), 201, cart, "confirmed", lines,
                before - 30000);
    CHECK(count_status(charges_for(*ps, "key-whj"), "approved") == 1);

    // Secrets that cannot be used stop the node at start, naming the setting, never the secret.
    for (const auto& [value, words] :
         {std::pair<std::string, std::string>{"gamma=" + key_hex,
                                              "'gamma': no such gateway in payments.gateways"},
          {"beta=zz" + key_hex, "'beta': the secret is not hex"},
          {"alpha" + key_hex, "entry 1: expected name=secret"}}) {
      auto bad = paying_node(*ps, {"--payments.webhook_secrets=" + value});
      bad.node_id = "bad-webhook";
      const auto failure = start_failure(bad);
      REQUIRE(failure.has_value());
      const auto said = failure->substr(failure->find("surge-node: setting"));
      CHECK_MESSAGE(said.find("surge-node: setting 'payments.webhook_secrets': " + words) == 0,
                    *failure);
      CHECK_MESSAGE(said.find(key_hex) == std::string::npos, said);
    }
  }

} // TEST_SUITE

} // namespace surge::itest
