// directory and stop_entities() on a bare actor system: stopping a node leaves no entity behind,
// even one that another entity activates while it stops.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <memory>
#include <string>

#include "surge/actors/directory.hpp"

using namespace std::chrono_literals;
using surge::actors::directory;
using surge::actors::stop_entities;

namespace {

using dir_t = directory<caf::actor>;

/// An entity that does nothing but live until told to stop; it leaves `dir` when it terminates.
/// (The state goes in as spawn arguments, not captures: CAF 0.17 dereferences the null tuple of
/// an argument-less spawn, which UBSan reports.)
caf::actor spawn_plain(caf::actor_system& sys, dir_t* dir, const std::string& id) {
  return sys.spawn(
      [](caf::event_based_actor* self, dir_t* dir, const std::string& id) -> caf::behavior {
        self->attach_functor([dir, id, addr = self->address()] { dir->forget(id, addr); });
        return {[](int) {}};
      },
      dir, id);
}

/// An entity that, told to stop, first activates its child in `children` (as a sale or a cart
/// still running reads its SKU), then stops.
caf::actor spawn_parent(caf::actor_system& sys, dir_t* dir, dir_t* children,
                        const std::string& id) {
  return sys.spawn(
      [](caf::event_based_actor* self, dir_t* dir, dir_t* children,
         const std::string& id) -> caf::behavior {
        self->attach_functor([dir, id, addr = self->address()] { dir->forget(id, addr); });
        self->set_exit_handler([self, children, id](caf::exit_msg& m) {
          caf::anon_send(children->acquire("child-" + id), 1);
          self->quit(m.reason);
        });
        return {[](int) {}};
      },
      dir, children, id);
}

template <class Pred>
bool within(std::chrono::milliseconds limit, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

} // namespace

TEST_CASE("stop_entities: entities activated by stopping ones are stopped too") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::unique_ptr<dir_t> children;
  std::unique_ptr<dir_t> parents;
  children = std::make_unique<dir_t>(
      [&](const std::string& id) { return spawn_plain(sys, children.get(), id); });
  parents = std::make_unique<dir_t>(
      [&](const std::string& id) { return spawn_parent(sys, parents.get(), children.get(), id); });
  for (const char* id : {"a", "b", "c"}) {
    caf::anon_send(parents->acquire(id), 1);
  }
  CHECK(parents->size() == 3);
  CHECK(children->size() == 0);

  SUBCASE("one sweep, children first, leaves the children the parents activated") {
    const auto stop = [](const caf::actor& h) {
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    };
    children->for_each(stop);
    parents->for_each(stop);
    CHECK(within(10s, [&] { return parents->size() == 0 && children->size() == 3; }));
  }
  SUBCASE("stop_entities sweeps until none is left") {
    CHECK(stop_entities(10s, *children, *parents));
    CHECK(parents->size() == 0);
    CHECK(children->size() == 0);
  }
  // Whatever is left: the actor system waits for every actor when it goes.
  REQUIRE(stop_entities(10s, *children, *parents));
  CHECK(stop_entities(10s, *children, *parents)); // nothing to stop: at once
}
