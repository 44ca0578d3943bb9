#include "call.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <thread>

namespace surge::net {

namespace bridge {

const caf::actor& pick_caller(bridge_env& env) {
  thread_local std::size_t next = std::hash<std::thread::id>{}(std::this_thread::get_id());
  return env.callers[next++ % env.callers.size()];
}

} // namespace bridge

std::vector<caf::actor> spawn_callers(caf::actor_system& sys, std::size_t n) {
  std::vector<caf::actor> out;
  // The index argument is not needed by the actor; CAF 0.17.6 dereferences a null argument
  // tuple when a function actor takes no arguments (UBSan reports it), so give it one.
  auto caller = [](caf::event_based_actor* self, std::size_t) -> caf::behavior {
    return {[self](bridge::call_job& job) { job.run(self); }};
  };
  for (std::size_t i = 0; i < std::max<std::size_t>(n, 1); ++i) {
    out.push_back(sys.spawn(caller, i));
  }
  return out;
}

} // namespace surge::net
