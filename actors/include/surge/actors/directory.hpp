#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/actor_cast.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "surge/actors/messages.hpp"
#include "surge/actors/placement.hpp"

namespace surge::actors {

/// A handle from directory::acquire_routed(), and whether it is a stub: the entity lives on
/// another node, so the answer to a call crosses the network and can be lost with that node or
/// link (such a call needs a timeout); a local incarnation always answers or bounces a call.
template <class Handle>
struct routed_handle {
  Handle handle;
  bool remote = false;
};

/// Which actor is the live incarnation of each entity id on this node: activation on first use,
/// passivation without losing a message, and — in a cluster — a stub for entities whose shard
/// this node does not serve.
///
/// Every message for an entity is sent to the handle acquire() returns, and acquire() counts it.
/// An idle entity asks try_release() with the number of such messages it has received; the
/// directory forgets it only when the two agree, so no message can be waiting in the mailbox of
/// an incarnation that is about to quit. An entity whose try_release() succeeded must quit
/// without touching storage again; the next acquire() spawns a new incarnation that loads the
/// state from storage.
///
/// With a placement (cluster/), acquire() spawns the real entity only when this node serves
/// the entity's shard, fenced with the shard's epoch; otherwise it returns a stub (same
/// interface) that forwards every message to the owner, waiting while the shard has none.
/// When the shard leaves this node, release_shard() moves its entities out of reach of
/// acquire() and asks them to hand over (finish, then passivate) or to stop at once.
///
/// Thread-safe (striped locks); called from HTTP I/O threads and actors alike. `spawn` and
/// `stub` run under a stripe lock: they must not call back into this directory.
template <class Handle>
class directory {
 public:
  using spawn_fn = std::function<Handle(const std::string& id, entity_fence fence)>;
  using stub_fn = std::function<Handle(const std::string& id, uint32_t shard)>;

  /// A directory of local, unfenced entities.
  explicit directory(std::function<Handle(const std::string& id)> spawn)
      : spawn_([f = std::move(spawn)](const std::string& id, entity_fence) { return f(id); }) {}

  /// A directory of entities `kind:<id>` placed by `where` (which outlives it).
  directory(std::string kind, spawn_fn spawn, const placement* where, stub_fn stub)
      : kind_(std::move(kind))
      , spawn_(std::move(spawn))
      , stub_(std::move(stub))
      , where_(where)
      , per_shard_(std::make_unique<std::atomic<std::size_t>[]>(where->shards())) {}

  directory(const directory&) = delete;
  directory& operator=(const directory&) = delete;

  /// The entity for `id` (the local incarnation, spawned if needed, or a stub); counts one
  /// message about to be sent to it.
  Handle acquire(const std::string& id) { return *get(id, false); }

  /// acquire(), telling whether the handle is a stub.
  routed_handle<Handle> acquire_routed(const std::string& id) {
    routed_handle<Handle> out;
    out.handle = *get(id, false, &out.remote);
    return out;
  }

  /// The local incarnation of `id` when this node serves its shard (spawned if needed, counted),
  /// else nullopt. For the gateway: it never forwards a forwarded message again.
  std::optional<Handle> acquire_local(const std::string& id) { return get(id, true); }

  /// True while a local incarnation of `id` is reachable (spawned and not passivated).
  bool active(const std::string& id) {
    auto& s = stripe_of(id);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(id);
    return i != s.entries.end() && !i->second.stub;
  }

  /// Forgets `id` when it still maps to `self` and `received` equals the messages sent to it.
  /// True: the caller must quit.
  bool try_release(const std::string& id, const caf::actor_addr& self, uint64_t received) {
    auto& s = stripe_of(id);
    std::lock_guard<std::mutex> guard{s.mtx};
    if (auto i = s.entries.find(id); i != s.entries.end() && i->second.handle.address() == self) {
      if (i->second.sent != received) {
        return false;
      }
      erase(s.entries, i);
      return true;
    }
    if (auto i = find_leaving(s, id, self); i != s.leaving.end()) {
      if (i->second.sent != received) {
        return false;
      }
      erase(s.leaving, i);
    }
    return true; // replaced: nothing can reach this incarnation any more
  }

  /// Forgets `id` if it still maps to `self` (called when an entity terminates).
  void forget(const std::string& id, const caf::actor_addr& self) {
    auto& s = stripe_of(id);
    std::lock_guard<std::mutex> guard{s.mtx};
    if (auto i = s.entries.find(id); i != s.entries.end() && i->second.handle.address() == self) {
      erase(s.entries, i);
    }
    if (auto i = find_leaving(s, id, self); i != s.leaving.end()) {
      erase(s.leaving, i);
    }
  }

  /// The shard leaves this node: its local entities become unreachable through acquire() and
  /// are told (handoff_atom, graceful). Graceful: finish what they hold, then passivate.
  /// Otherwise: answer unavailable and stop at once (the lease is lost; commits would be
  /// fenced anyway). Returns how many were told.
  std::size_t release_shard(uint32_t shard, bool graceful) {
    std::vector<Handle> told;
    for (auto& s : stripes_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      for (auto i = s.entries.begin(); i != s.entries.end();) {
        if (!i->second.stub && i->second.shard == static_cast<int64_t>(shard)) {
          told.push_back(i->second.handle);
          s.leaving.emplace(i->first, std::move(i->second));
          i = s.entries.erase(i);
        } else {
          ++i;
        }
      }
    }
    for (auto& h : told) {
      caf::anon_send(h, handoff_atom::value, graceful);
    }
    return told.size();
  }

  /// Local incarnations (reachable or leaving) of `shard`: a handover completes at 0. O(1).
  std::size_t local_count(uint32_t shard) const {
    return per_shard_ && shard < where_->shards()
               ? per_shard_[shard].load(std::memory_order_relaxed)
               : 0;
  }

  /// Live local entities right now (stubs not counted). O(1).
  std::size_t size() const { return live_.load(std::memory_order_relaxed); }

  /// Calls `f(handle)` for every live actor, stubs included (e.g. to stop them at shutdown).
  void for_each(const std::function<void(const Handle&)>& f) const {
    visit_all([&](const entry& e) { f(e.handle); });
  }

 private:
  struct entry {
    Handle handle;
    uint64_t sent = 0;
    int64_t shard = -1; ///< -1: unplaced
    uint64_t epoch = 0;
    bool stub = false;
  };
  struct stripe {
    mutable std::mutex mtx;
    std::unordered_map<std::string, entry> entries;
    /// Incarnations that acquire() no longer returns (handing over, or replaced), until they
    /// quit; several per id are possible.
    std::unordered_multimap<std::string, entry> leaving;
  };

  std::optional<Handle> get(const std::string& id, bool local_only, bool* stub = nullptr) {
    placement::route r;
    uint32_t shard = 0;
    if (where_ != nullptr) {
      shard = where_->shard_of(kind_, id);
      r = where_->resolve(shard);
      if (local_only && r.at != placement::where::local) {
        return std::nullopt;
      }
    }
    auto& s = stripe_of(id);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(id);
    if (i != s.entries.end() && where_ != nullptr) {
      const bool local = r.at == placement::where::local;
      // A stub while the shard is ours now, or an incarnation of an older epoch (the shard
      // went away and came back): replace it. A stale incarnation finishes as if handed over.
      // Either way the old actor stays in `leaving` until it quits (a stub when idle), so
      // that it is still found by try_release() and by for_each() at shutdown.
      if ((i->second.stub && local) || (!i->second.stub && local && i->second.epoch != r.epoch)) {
        if (!i->second.stub) {
          caf::anon_send(i->second.handle, handoff_atom::value, false);
        }
        s.leaving.emplace(id, std::move(i->second));
        s.entries.erase(i);
        i = s.entries.end();
      }
    }
    if (i == s.entries.end()) {
      entry e;
      if (where_ == nullptr) {
        e.handle = spawn_(id, entity_fence{});
      } else if (r.at == placement::where::local) {
        e.handle = spawn_(id, entity_fence{static_cast<int32_t>(shard), r.epoch});
        e.shard = shard;
        e.epoch = r.epoch;
      } else {
        e.handle = stub_(id, shard);
        e.shard = shard;
        e.stub = true;
      }
      if (!e.stub) {
        count(e, 1);
      }
      i = s.entries.emplace(id, std::move(e)).first;
    }
    ++i->second.sent;
    if (stub != nullptr) {
      *stub = i->second.stub;
    }
    return i->second.handle;
  }

  stripe& stripe_of(const std::string& id) { return stripes_[std::hash<std::string>{}(id) % n]; }

  /// Calls `f(entry)` for every entry, reachable or leaving, stripe by stripe under its lock.
  template <class F>
  void visit_all(F&& f) const {
    for (auto& s : stripes_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      for (const auto& [id, e] : s.entries) {
        f(e);
      }
      for (const auto& [id, e] : s.leaving) {
        f(e);
      }
    }
  }

  /// Erases an entry, keeping the count of live entities.
  template <class Map>
  void erase(Map& map, typename Map::iterator i) {
    if (!i->second.stub) {
      count(i->second, -1);
    }
    map.erase(i);
  }

  /// Adds `delta` to the live entities, in all and of the entity's shard.
  void count(const entry& e, int delta) {
    const auto d = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(delta));
    live_.fetch_add(d, std::memory_order_relaxed);
    if (per_shard_ && e.shard >= 0) {
      per_shard_[static_cast<std::size_t>(e.shard)].fetch_add(d, std::memory_order_relaxed);
    }
  }

  /// The leaving incarnation `self` of `id`, or leaving.end(). Under the stripe's lock.
  static auto find_leaving(stripe& s, const std::string& id, const caf::actor_addr& self) {
    auto [first, last] = s.leaving.equal_range(id);
    for (auto i = first; i != last; ++i) {
      if (i->second.handle.address() == self) {
        return i;
      }
    }
    return s.leaving.end();
  }

  static constexpr std::size_t n = 64;
  const std::string kind_;
  const spawn_fn spawn_;
  const stub_fn stub_;
  const placement* where_ = nullptr;
  std::array<stripe, n> stripes_;
  std::atomic<std::size_t> live_{0};
  /// Live entities per shard (placed directories only).
  std::unique_ptr<std::atomic<std::size_t>[]> per_shard_;
};

/// Stops every actor of `dirs` (an exit, user_shutdown), and again after a pause, until no local
/// entity is left in any of them or `patience` runs out; true when none is left. One sweep is not
/// enough: an entity still running may activate another one after it (a sale or a cart its SKU,
/// an order its cart), which would live on until its idle timeout while the actor system waits
/// for every actor.
template <class... Dirs>
bool stop_entities(std::chrono::milliseconds patience, Dirs&... dirs) {
  const auto stop = [](const auto& h) { caf::anon_send_exit(h, caf::exit_reason::user_shutdown); };
  const auto deadline = std::chrono::steady_clock::now() + patience;
  constexpr auto longest = std::chrono::milliseconds{100};
  for (auto pause = std::chrono::milliseconds{2};; pause = std::min(pause * 2, longest)) {
    (dirs.for_each(stop), ...);
    if (((dirs.size() == 0) && ...)) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(pause); // the exits on their way
  }
}

} // namespace surge::actors
