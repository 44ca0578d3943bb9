// Which entity messages a stub or a gateway may send again when the node it sent them to went
// away before answering (cluster::idempotent), for every command of the entity interfaces; and
// a stub's re-send when the shard of a request in flight changes owner.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <doctest/doctest.h>

#include "surge/actors/messages.hpp"
#include "surge/cluster/gateway.hpp"
#include "surge/cluster/shard_table.hpp"

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

// A stub's request at a node that lost the shard meanwhile (paused, cut off): once this node's
// map names a newer owner, an idempotent request goes there; any other waits for its answer.
namespace {

using namespace std::chrono_literals;

struct two_owners {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  cluster::shard_table table{"n1", 8};
  const uint32_t shard = table.shard_of("sku", "A");
  std::shared_ptr<std::atomic<int>> old_hits = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> new_hits = std::make_shared<std::atomic<int>>(0);
  caf::actor old_owner; ///< n2's gateway: takes every request and never answers (paused)
  caf::actor new_owner; ///< n3's gateway: answers at once
  caf::actor local;     ///< this node's gateway: not asked here

  two_owners() {
    old_owner = sys.spawn([hits = old_hits](caf::event_based_actor* self) -> caf::behavior {
      auto stuck = std::make_shared<std::vector<caf::response_promise>>();
      return {[=](actors::route_atom, const std::string&, uint32_t,
                  const caf::message&) -> caf::result<actors::stock_view> {
        ++*hits;
        stuck->push_back(self->make_response_promise());
        return caf::delegated<actors::stock_view>{};
      }};
    });
    new_owner = sys.spawn([hits = new_hits]() -> caf::behavior {
      return {[=](actors::route_atom, const std::string&, uint32_t, const caf::message&) {
        ++*hits;
        return actors::stock_view{"A", 5, 0, 0, 5, "n3", 8};
      }};
    });
    local = sys.spawn([]() -> caf::behavior { return {[](actors::route_atom) {}}; });
    table.set_peer("n2", old_owner);
    table.set_peer("n3", new_owner);
    table.set(shard, cluster::shard_table::state::remote, 7, "n2");
  }

  ~two_owners() {
    for (const auto& a : {old_owner, new_owner, local}) {
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
  }

  caf::actor stub(std::chrono::milliseconds relay_timeout) {
    return cluster::spawn_stub(sys, "sku:A", shard, &table, local, 30s, relay_timeout,
                               [](const caf::actor_addr&, uint64_t) { return false; });
  }

  /// Once the old owner has the request: the map moves the shard to n3 at epoch 8.
  std::thread move_when_asked() {
    return std::thread([this] {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (old_hits->load() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(2ms);
      }
      table.set(shard, cluster::shard_table::state::remote, 8, "n3");
    });
  }
};

} // namespace

TEST_CASE("a stub re-sends an idempotent request to the shard's new owner") {
  two_owners c;
  auto stub = c.stub(20s); // far longer than the test: only the re-send can answer in time
  auto mover = c.move_when_asked();
  caf::scoped_actor me{c.sys};
  std::optional<actors::stock_view> got;
  std::string error;
  me->request(stub, 20s, actors::stock_atom::value)
      .receive([&](actors::stock_view& v) { got = std::move(v); },
               [&](caf::error& e) { error = caf::to_string(e); });
  mover.join();
  REQUIRE_MESSAGE(got, error);
  CHECK(got->owner_node == "n3");
  CHECK(c.old_hits->load() == 1);
  CHECK(c.new_hits->load() == 1);
  caf::anon_send_exit(stub, caf::exit_reason::user_shutdown);
}

TEST_CASE("a stub leaves a request that is not idempotent with the owner it was sent to") {
  two_owners c;
  auto stub = c.stub(1500ms);
  auto mover = c.move_when_asked();
  caf::scoped_actor me{c.sys};
  bool answered = false;
  caf::error error;
  // A stock add: doing it twice would add twice.
  me->request(stub, 20s, actors::stock_atom::value, actors::stock_change{false, 3})
      .receive([&](actors::stock_view&) { answered = true; }, [&](caf::error& e) { error = e; });
  mover.join();
  CHECK_FALSE(answered);
  CHECK(error == caf::sec::request_timeout); // the relay's own timeout, not a re-send
  CHECK(c.old_hits->load() == 1);
  CHECK(c.new_hits->load() == 0);
  caf::anon_send_exit(stub, caf::exit_reason::user_shutdown);
}
