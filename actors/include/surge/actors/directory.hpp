#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include <caf/actor_addr.hpp>
#include <caf/actor_cast.hpp>

namespace surge::actors {

/// Which actor is the live incarnation of each entity id on this node: activation on first use,
/// passivation without losing a message.
///
/// Every message for an entity is sent to the handle acquire() returns, and acquire() counts it.
/// An idle entity asks try_release() with the number of such messages it has received; the
/// directory forgets it only when the two agree, so no message can be waiting in the mailbox of
/// an incarnation that is about to quit. An entity whose try_release() succeeded must quit
/// without touching storage again; the next acquire() spawns a new incarnation that loads the
/// state from storage.
///
/// Thread-safe (striped locks); called from HTTP I/O threads and actors alike. `spawn` runs under
/// a stripe lock: it must not call back into this directory.
template <class Handle>
class directory {
 public:
  using spawn_fn = std::function<Handle(const std::string& id)>;

  explicit directory(spawn_fn spawn)
      : spawn_(std::move(spawn)) {}
  directory(const directory&) = delete;
  directory& operator=(const directory&) = delete;

  /// The live entity for `id`, spawned if needed; counts one message about to be sent to it.
  Handle acquire(const std::string& id) {
    auto& s = stripe_of(id);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(id);
    if (i == s.entries.end()) {
      i = s.entries.emplace(id, entry{spawn_(id), 0}).first;
    }
    ++i->second.sent;
    return i->second.handle;
  }

  /// Forgets `id` when it still maps to `self` and `received` equals the messages sent to it.
  /// True: the caller must quit.
  bool try_release(const std::string& id, const caf::actor_addr& self, uint64_t received) {
    auto& s = stripe_of(id);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(id);
    if (i == s.entries.end() || i->second.handle.address() != self) {
      return true; // already replaced: nothing can reach this incarnation any more
    }
    if (i->second.sent != received) {
      return false;
    }
    s.entries.erase(i);
    return true;
  }

  /// Forgets `id` if it still maps to `self` (called when an entity terminates).
  void forget(const std::string& id, const caf::actor_addr& self) {
    auto& s = stripe_of(id);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(id);
    if (i != s.entries.end() && i->second.handle.address() == self) {
      s.entries.erase(i);
    }
  }

  /// Live entities right now.
  std::size_t size() const {
    std::size_t n = 0;
    for (auto& s : stripes_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      n += s.entries.size();
    }
    return n;
  }

  /// Calls `f(handle)` for every live entity (e.g. to stop them all at shutdown).
  void for_each(const std::function<void(const Handle&)>& f) const {
    for (auto& s : stripes_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      for (auto& [id, e] : s.entries) {
        f(e.handle);
      }
    }
  }

 private:
  struct entry {
    Handle handle;
    uint64_t sent;
  };
  struct stripe {
    mutable std::mutex mtx;
    std::unordered_map<std::string, entry> entries;
  };

  stripe& stripe_of(const std::string& id) { return stripes_[std::hash<std::string>{}(id) % n]; }

  static constexpr std::size_t n = 64;
  const spawn_fn spawn_;
  std::array<stripe, n> stripes_;
};

} // namespace surge::actors
