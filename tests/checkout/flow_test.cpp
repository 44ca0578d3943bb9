// Checkout in the common cases: a paid order, a declined card and a retry, a key reused for
// another checkout, and requests the API refuses (nothing is ever charged for those).
#include <doctest/doctest.h>

#include "checkout_support.hpp"

namespace surge::itest {

namespace {

/// CHECKs that the paysim log has exactly one entry for `key`, approved, for `amount` USD.
void check_one_approved(const paysim_process& ps, const std::string& key, int64_t amount) {
  const auto log = charges_for(ps, key);
  INFO("charges for " << key << ": " << describe(log));
  REQUIRE(log.size() == 1);
  CHECK(log[0].status == "approved");
  CHECK(log[0].amount_cents == amount);
  CHECK(log[0].currency == "usd"); // paysim logs currencies in lower case
}

} // namespace

TEST_SUITE("flow") {

  TEST_CASE("tok_ok: 201 confirmed, the order reads back, held moves to sold, one charge") {
    auto [ps, node, a] = paying_store{};
    add_product(a, "fl-a", 1250, 10);
    add_product(a, "fl-b", 499, 5);
    const std::vector<line_spec> lines{{"fl-a", 2, 1250}, {"fl-b", 1, 499}};
    const auto cart = filled_cart(a, lines);
    check_stock(a.stock("fl-a"), 10, 2, 0);
    check_stock(a.stock("fl-b"), 5, 1, 0);

    const auto before = wall_ms();
    const auto r = checkout(a.store(), cart, "key-happy-1", "tok_ok");
    const auto order = check_order(r, 201, cart, "confirmed", lines, before);
    const auto id = str_of(order, "order_id");

    const auto got = a.store().get("/api/v1/orders/" + id);
    CHECK_MESSAGE(got.status == 200, describe(got));
    CHECK_MESSAGE(same_json(got.body, r.body),
                  "GET order: " << got.body << "\ncheckout: " << r.body);

    check_stock(a.stock("fl-a"), 10, 0, 2);
    check_stock(a.stock("fl-b"), 5, 0, 1);
    const auto c = a.cart(cart);
    INFO("cart after checkout: " << json::serialize(c));
    CHECK(array_of(c, "items").empty());
    CHECK(int_of(c, "total_cents") == 0);
    check_one_approved(*ps, "key-happy-1", 2 * 1250 + 499);

    // The same key again: the first result, byte for byte the same order, no new charge.
    const auto again = checkout(a.store(), cart, "key-happy-1", "tok_ok");
    CHECK_MESSAGE(again.status == 201, describe(again));
    CHECK_MESSAGE(same_json(again.body, r.body), again.body << " vs " << r.body);
    check_one_approved(*ps, "key-happy-1", 2 * 1250 + 499);
    check_stock(a.stock("fl-a"), 10, 0, 2);
    CHECK(ps->charges().size() == 1);
  }

  TEST_CASE("tok_decline: 402, cart and holds stay; a new key with tok_ok confirms") {
    auto [ps, node, a] = paying_store{};
    const auto [lines, cart] = stocked_cart(a, "fl-d", 700, 4, 3);
    const auto cart_before = json::serialize(a.cart(cart));

    const auto declined = checkout(a.store(), cart, "key-decline-1", "tok_decline");
    check_error(declined, 402, "payment_declined");
    CHECK(json::serialize(a.cart(cart)) == cart_before);
    check_stock(a.stock("fl-d"), 4, 3, 0);

    // A retry with the same key gets the first result; the key stays bound to its token.
    check_error(checkout(a.store(), cart, "key-decline-1", "tok_decline"), 402, "payment_declined");
    check_error(checkout(a.store(), cart, "key-decline-1", "tok_ok"), 422, "idempotency_conflict");
    CHECK(json::serialize(a.cart(cart)) == cart_before);
    check_stock(a.stock("fl-d"), 4, 3, 0);
    {
      const auto log = charges_for(*ps, "key-decline-1");
      INFO(describe(log));
      CHECK(log.size() == 1);
      CHECK(count_status(log, "declined") == 1);
      CHECK(count_status(log, "approved") == 0);
    }

    const auto before = wall_ms();
    const auto ok = checkout(a.store(), cart, "key-decline-2", "tok_ok");
    check_order(ok, 201, cart, "confirmed", lines, before);
    check_stock(a.stock("fl-d"), 4, 0, 3);
    CHECK(array_of(a.cart(cart), "items").empty());
    check_one_approved(*ps, "key-decline-2", 2100);
    const auto all = ps->charges();
    INFO("all charges: " << describe(all));
    CHECK(count_status(all, "approved") == 1);
  }

  TEST_CASE("a key used for another cart or token is 422 idempotency_conflict, never charged") {
    auto [ps, node, a] = paying_store{};
    add_product(a, "fl-k", 300, 10);
    const std::vector<line_spec> lines1{{"fl-k", 1, 300}};
    const std::vector<line_spec> lines2{{"fl-k", 2, 300}};
    const auto cart1 = filled_cart(a, lines1);
    const auto cart2 = filled_cart(a, lines2);
    const auto cart2_before = json::serialize(a.cart(cart2));

    const auto before = wall_ms();
    const auto first = checkout(a.store(), cart1, "key-shared", "tok_ok");
    check_order(first, 201, cart1, "confirmed", lines1, before);

    check_error(checkout(a.store(), cart2, "key-shared", "tok_ok"), 422, "idempotency_conflict");
    check_error(checkout(a.store(), cart1, "key-shared", "tok_decline"), 422,
                "idempotency_conflict");
    CHECK(json::serialize(a.cart(cart2)) == cart2_before);
    check_stock(a.stock("fl-k"), 10, 2, 1);
    check_one_approved(*ps, "key-shared", 300);

    // The original request still gets its first result.
    const auto again = checkout(a.store(), cart1, "key-shared", "tok_ok");
    CHECK_MESSAGE(again.status == 201, describe(again));
    CHECK(same_json(again.body, first.body));

    // The conflict left cart2 as it was: with a key of its own it checks out.
    const auto b2 = wall_ms();
    check_order(checkout(a.store(), cart2, "key-other", "tok_ok"), 201, cart2, "confirmed", lines2,
                b2);
    check_stock(a.stock("fl-k"), 10, 0, 3);
    CHECK(ps->charges().size() == 2);
  }

  TEST_CASE("refused requests: empty cart 409, no key 400, bad body 400, unknown cart 404") {
    auto [ps, node, a] = paying_store{};
    add_product(a, "fl-e", 100, 5);

    const auto empty = a.create_cart();
    check_error(checkout(a.store(), empty, "key-empty", "tok_ok"), 409, "empty_cart");
    // A cart whose only line was removed is empty too.
    const auto emptied = filled_cart(a, {{"fl-e", 1, 100}});
    REQUIRE(a.put_item(emptied, "fl-e", 0).status == 200);
    check_error(checkout(a.store(), emptied, "key-emptied", "tok_ok"), 409, "empty_cart");

    const auto cart = filled_cart(a, {{"fl-e", 2, 100}});
    const auto cart_before = json::serialize(a.cart(cart));
    check_error(checkout(a.store(), cart, "", "tok_ok"), 400, "bad_request");

    auto post = [&](const std::string& body) {
      auto req = json_request("POST", "/api/v1/carts/" + cart + "/checkout", body);
      req.headers.emplace_back("Idempotency-Key", "key-bad-body");
      return a.store().send(req);
    };
    check_error(post("{}"), 400, "bad_request");
    check_error(post(R"({"payment":"tok_ok"})"), 400, "bad_request");
    check_error(post(R"({"payment":{"method":"card"}})"), 400, "bad_request");
    check_error(post(R"({"payment":{"token":"tok_ok"}})"), 400, "bad_request");
    check_error(post(R"({"payment":{"method":"card","token":""}})"), 400, "bad_request");
    check_error(post("not json"), 400, "bad_request");
    check_error(post(""), 400, "bad_request");

    check_error(checkout(a.store(), "no-such-cart", "key-unknown-cart", "tok_ok"), 404,
                "not_found");
    check_error(a.store().get("/api/v1/orders/no-such-order"), 404, "not_found");

    // None of that touched the cart, the stock or a gateway.
    CHECK(json::serialize(a.cart(cart)) == cart_before);
    check_stock(a.stock("fl-e"), 5, 2, 0);
    const auto all = ps->charges();
    CHECK_MESSAGE(all.empty(), describe(all));

    // The bad-body key was not consumed: a well-formed request with it checks out.
    const auto before = wall_ms();
    check_order(checkout(a.store(), cart, "key-bad-body", "tok_ok"), 201, cart, "confirmed",
                {{"fl-e", 2, 100}}, before);
  }

} // TEST_SUITE

} // namespace surge::itest
