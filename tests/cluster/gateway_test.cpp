// Which entity messages a stub or a gateway may send again when the node it sent them to went
// away before answering (cluster::idempotent), for every command of the entity interfaces.

#include <string>
#include <vector>

#include <caf/all.hpp>

#include <doctest/doctest.h>

#include "surge/actors/messages.hpp"
#include "surge/cluster/gateway.hpp"

using namespace surge;
using surge::cluster::idempotent;

TEST_CASE("idempotent: reads, values set as given and keyed commands are re-sent") {
  using namespace surge::actors;
  const std::string s;
  // SKU
  CHECK(idempotent(
      caf::make_message(hold_atom::value, hold_request{"c1", "", 2, "", false, "", ""})));
  CHECK(idempotent(caf::make_message(confirm_atom::value, s, s, s, int64_t{1})));
  CHECK(idempotent(caf::make_message(return_atom::value, s, s)));
  CHECK(idempotent(caf::make_message(stock_atom::value, stock_change{true, 10})));
  CHECK(idempotent(caf::make_message(stock_atom::value)));
  CHECK(idempotent(caf::make_message(product_atom::value, persistence::product_record{})));
  CHECK(idempotent(caf::make_message(product_atom::value)));
  // cart
  CHECK(idempotent(caf::make_message(caf::get_atom::value, s)));
  CHECK(idempotent(caf::make_message(item_atom::value, std::string{"SKU-1"}, int64_t{3}, false, s,
                                     int64_t{0}, s, s)));
  CHECK(idempotent(caf::make_message(checkout_atom::value, std::string{"o1"}, true, s)));
  CHECK(idempotent(caf::make_message(checkout_atom::value, std::string{"o1"}, false, s)));
  // order
  CHECK(idempotent(
      caf::make_message(checkout_atom::value, checkout_request{"key-1", "c1", "card", "tok_ok"})));
  CHECK(idempotent(caf::make_message(refund_atom::value, order_refund_request{"key-2", {}})));
  CHECK(idempotent(caf::make_message(reconcile_atom::value)));
  // sale
  CHECK(idempotent(caf::make_message(join_atom::value, std::string{"cust"}, s)));
  CHECK(idempotent(caf::make_message(watch_atom::value)));
}

TEST_CASE("idempotent: a stock add, a cart's create and clear, and unknown messages are not") {
  using namespace surge::actors;
  CHECK_FALSE(idempotent(caf::make_message(stock_atom::value, stock_change{false, 10})));
  CHECK_FALSE(idempotent(caf::make_message(create_atom::value, std::string{"cust"})));
  CHECK_FALSE(
      idempotent(caf::make_message(clear_atom::value, std::vector<std::string>{"h1", "h2"})));
  CHECK_FALSE(idempotent(caf::make_message(handoff_atom::value, true)));
  CHECK_FALSE(idempotent(caf::make_message()));
  CHECK_FALSE(idempotent(caf::make_message(std::string{"get"}, 1)));
  CHECK_FALSE(idempotent(caf::make_message(caf::atom("nosuch"))));
  // (stock_atom, x) with anything but a stock_change is no set either
  CHECK_FALSE(idempotent(caf::make_message(stock_atom::value, int64_t{10})));
}
