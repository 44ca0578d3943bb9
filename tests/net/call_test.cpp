// The bridge's direct calls to local entities (net/bridge/src/call.hpp): a reply sink runs
// exactly one of ok/failed — on the answer, on CAF's bounce when the entity has gone, and when
// the entity drops its promise without answering.

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>

#include "call.hpp"

namespace {

using namespace std::chrono_literals;

// The test actors take an unused int: CAF 0.17.6 dereferences a null argument tuple when a
// function actor takes none (UBSan reports it; see spawn_callers).

struct outcome {
  int ok = 0;
  int failed = 0;
  std::string value;
  caf::error error;
};

/// Calls `dest` with (x) through ask_local and waits (bounded) for the one outcome.
template <class Handle>
outcome ask_and_wait(caf::actor_system& sys, const Handle& dest, std::string x) {
  auto done = std::make_shared<std::promise<outcome>>();
  auto fut = done->get_future();
  auto counts = std::make_shared<outcome>();
  surge::net::bridge::ask_local<std::string>(
      sys, dest,
      [done, counts](std::string& v) {
        ++counts->ok;
        counts->value = v;
        done->set_value(*counts);
      },
      [done, counts](caf::error& err) {
        ++counts->failed;
        counts->error = err;
        done->set_value(*counts);
      },
      std::move(x));
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  return fut.get();
}

} // namespace

TEST_CASE("ask_local: the answer runs ok once, with the entity's reply") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto echo = sys.spawn(
      [](int) -> caf::behavior { return {[](const std::string& s) { return "echo " + s; }}; }, 0);
  for (int i = 0; i < 100; ++i) {
    auto out = ask_and_wait(sys, echo, "x" + std::to_string(i));
    CHECK(out.ok == 1);
    CHECK(out.failed == 0);
    CHECK(out.value == "echo x" + std::to_string(i));
  }
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}

TEST_CASE("ask_local: an error reply runs failed with that error") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto refuse = sys.spawn(
      [](int) -> caf::behavior {
        return {[](const std::string&) -> caf::result<std::string> {
          return caf::make_error(caf::sec::invalid_argument);
        }};
      },
      0);
  auto out = ask_and_wait(sys, refuse, "x");
  CHECK(out.ok == 0);
  CHECK(out.failed == 1);
  CHECK(out.error == caf::make_error(caf::sec::invalid_argument));
  caf::anon_send_exit(refuse, caf::exit_reason::user_shutdown);
}

TEST_CASE("ask_local: a call to an entity that has gone is bounced into failed") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto gone =
      sys.spawn([](int) -> caf::behavior { return {[](const std::string& s) { return s; }}; }, 0);
  {
    caf::scoped_actor self{sys};
    self->monitor(gone);
    self->send_exit(gone, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {});
  }
  auto out = ask_and_wait(sys, gone, "x");
  CHECK(out.ok == 0);
  CHECK(out.failed == 1);
}

TEST_CASE("ask_local: a promise dropped without an answer runs failed (no leak, no hang)") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  // Takes the promise and lets it go unanswered.
  auto dropper = sys.spawn(
      [](caf::event_based_actor* self, int) -> caf::behavior {
        return {[self](const std::string&) -> caf::result<std::string> {
          auto rp = self->make_response_promise<std::string>();
          return caf::delegated<std::string>{}; // rp goes out of scope unanswered
        }};
      },
      0);
  auto out = ask_and_wait(sys, dropper, "x");
  CHECK(out.ok == 0);
  CHECK(out.failed == 1);
  CHECK(out.error == caf::make_error(caf::sec::request_receiver_down));
  caf::anon_send_exit(dropper, caf::exit_reason::user_shutdown);
}
