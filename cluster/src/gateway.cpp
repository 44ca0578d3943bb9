#include "surge/cluster/gateway.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman_actor.hpp>

#include <algorithm>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include "log.hpp"
#include "surge/actors/errors.hpp"
#include "surge/cluster/protocol.hpp"

namespace surge::cluster {

namespace {

using clock = std::chrono::steady_clock;

using detail::logger;

/// Delegations between gateways before a message waits where it is: views of the map that
/// disagree for a moment (a handover) must not bounce a message to and fro.
constexpr uint32_t max_hops = 2;
constexpr auto retry_every = std::chrono::milliseconds{10};
/// How often a relayer looks whether the shards of its outstanding requests changed owner.
constexpr auto reroute_every = std::chrono::milliseconds{25};

/// A relayer's own timer for reroute_outstanding (never crosses the wire).
using reroute_atom = caf::atom_constant<caf::atom("reroute")>;

/// A message sent to a remote gateway as a request whose answer comes back here: `route` is
/// the whole (route_atom, key, hops, message) as sent (shared, not copied), `rp` the promise of
/// the original sender, `to` the gateway it went to (monitored), `mid` the answer's id, and
/// `shard` the key's shard, owned at `epoch` when it was sent.
struct relayed {
  caf::message_id mid;
  caf::actor_addr to;
  caf::message route;
  caf::response_promise rp;
  uint32_t shard = 0;
  uint64_t epoch = 0;
};

/// Takes the entry of answer `mid` out of `xs`; nullopt when it was settled already (the
/// gateway it went to went away and the message was re-sent or failed).
std::optional<caf::response_promise> take_relayed(std::vector<relayed>& xs, caf::message_id mid) {
  for (auto& x : xs) {
    if (x.mid == mid) {
      auto rp = std::move(x.rp);
      if (&x != &xs.back()) {
        x = std::move(xs.back());
      }
      xs.pop_back();
      return rp;
    }
  }
  return std::nullopt;
}

/// Moves the entries of `xs` for which `take(entry)` says so out of `xs`, in one pass (the
/// predicate is asked once per entry: a moved-from entry is never asked or left behind).
template <class Pred>
std::vector<relayed> take_if(std::vector<relayed>& xs, Pred take) {
  std::vector<relayed> out;
  std::vector<relayed> kept;
  for (auto& x : xs) {
    (take(x) ? out : kept).push_back(std::move(x));
  }
  xs = std::move(kept);
  return out;
}

/// Takes every entry sent to `to` out of `xs`.
std::vector<relayed> take_sent_to(std::vector<relayed>& xs, const caf::actor_addr& to) {
  return take_if(xs, [&](const relayed& x) { return x.to == to; });
}

/// Passes an answer of type T back to the original sender.
template <class T, class Self>
auto relay_answer(Self self, caf::message_id mid) {
  return [self, mid](T& x) {
    if (auto rp = take_relayed(self->state.relays, mid)) {
      rp->deliver(std::move(x));
    }
  };
}

/// The handler of the answer `mid` to a relayed request: the answers of the entity interfaces
/// are matched by type; any other answer reaches the error handler as sec::unexpected_response
/// carrying it (CAF 0.17) and is passed on as it is.
template <class Self>
caf::behavior relay_answers(Self self, caf::message_id mid) {
  auto on_error = [self, mid](caf::error& err) {
    auto rp = take_relayed(self->state.relays, mid);
    if (!rp) {
      return;
    }
    if (err == caf::sec::unexpected_response) {
      rp->deliver(std::move(err.context()));
    } else {
      rp->deliver(std::move(err));
    }
  };
  return {relay_answer<actors::hold_view>(self, mid),
          relay_answer<actors::stock_view>(self, mid),
          relay_answer<actors::product_view>(self, mid),
          relay_answer<actors::cart_view>(self, mid),
          relay_answer<actors::order_view>(self, mid),
          relay_answer<actors::refund_view>(self, mid),
          relay_answer<actors::ticket_view>(self, mid),
          relay_answer<actors::queue_summary>(self, mid),
          on_error};
}

/// Sends `route` to the remote gateway of `r` (the route of `shard`) as a request of `self`
/// (its state has `relays`, `relay_timeout` and `reroute_armed`) and relays the answer to `rp`.
/// The caller monitors the gateway.
template <class Self>
void relay(Self self, const actors::placement::route& r, uint32_t shard, caf::message route,
           caf::response_promise rp) {
  auto& st = self->state;
  auto mid = self->request(r.gateway, st.relay_timeout, route).id();
  st.relays.push_back(
      relayed{mid, r.gateway.address(), std::move(route), std::move(rp), shard, r.epoch});
  self->add_multiplexed_response_handler(mid, relay_answers(self, mid));
  if (!st.reroute_armed) {
    st.reroute_armed = true;
    self->delayed_send(self, reroute_every, reroute_atom::value);
  }
}

/// Takes out of `xs` the idempotent requests whose shard has an owner at a newer epoch than
/// the one they were sent to (`where` says): that owner lost the shard while they were on their
/// way (its node paused, cut off, or handing over), and it may never answer or answer only
/// after its caller gave up. Sending them again to the new owner has the effect of sending them
/// once (idempotent()); the old owner's late answer is then dropped. The others stay: their
/// outcome is the old owner's to tell (or their node's going away: down_msg).
std::vector<relayed> take_rerouted(std::vector<relayed>& xs, const actors::placement& where) {
  return take_if(xs, [&](const relayed& x) {
    const auto r = where.resolve(x.shard);
    return r.at != actors::placement::where::none && r.epoch > x.epoch &&
           idempotent(x.route.get_as<caf::message>(3));
  });
}

/// The reroute timer fired: re-arms it while requests are outstanding.
template <class Self>
void rearm_reroute(Self self) {
  auto& st = self->state;
  st.reroute_armed = !st.relays.empty();
  if (st.reroute_armed) {
    self->delayed_send(self, reroute_every, reroute_atom::value);
  }
}

caf::error lost_on_the_way(const std::string& key) {
  return actors::make_error(actors::errc::unavailable,
                            "the node serving " + key +
                                " went away while handling the request; its outcome is unknown");
}

struct held_message {
  std::string key;
  uint32_t hops = 0;
  caf::message msg;
  caf::response_promise rp;
  clock::time_point deadline;
};

struct gateway_state {
  static inline const char* name = "surge.gateway";
  gateway_links links;
  std::deque<held_message> held;
  bool retry_armed = false;
  std::unordered_map<caf::actor_addr, std::string> peers; ///< monitored gateway -> node id
  std::vector<relayed> relays; ///< messages forwarded to peers' gateways, not answered yet
  std::chrono::milliseconds relay_timeout{};
  bool reroute_armed = false;
};

using gateway_ptr = caf::stateful_actor<gateway_state>*;

/// The local incarnation for `key` when this node serves its shard.
std::optional<caf::actor> local_entity(gateway_state& st, const std::string& kind,
                                       const std::string& id) {
  auto cast = [](const auto& h) -> std::optional<caf::actor> {
    if (!h) {
      return std::nullopt;
    }
    return caf::actor_cast<caf::actor>(*h);
  };
  if (kind == "sku") {
    return cast(st.links.skus->acquire_local(id));
  }
  if (kind == "cart") {
    return cast(st.links.carts->acquire_local(id));
  }
  if (kind == "order") {
    return cast(st.links.orders->acquire_local(id));
  }
  if (kind == "sale" && st.links.sales != nullptr) {
    return cast(st.links.sales->acquire_local(id));
  }
  return std::nullopt;
}

/// Delegates `m` to the entity or to the owner's gateway; false when nobody serves it now.
bool try_dispatch(gateway_ptr self, held_message& m) {
  auto& st = self->state;
  const auto colon = m.key.find(':');
  if (colon == std::string::npos) {
    m.rp.deliver(actors::make_error(actors::errc::invalid, "bad entity key " + m.key));
    return true;
  }
  if (auto h = local_entity(st, m.key.substr(0, colon), m.key.substr(colon + 1))) {
    m.rp.delegate(*h, std::move(m.msg));
    return true;
  }
  const std::string_view key{m.key};
  const auto shard = st.links.table->shard_of(key.substr(0, colon), key.substr(colon + 1));
  auto r = st.links.table->resolve(shard);
  if (r.at == actors::placement::where::remote && r.gateway && m.hops < max_hops) {
    // Every peer in the table is monitored (add_peer): if it goes away first, the down handler
    // re-sends or fails what is still outstanding there.
    relay(self, r, shard,
          caf::make_message(actors::route_atom::value, std::move(m.key), m.hops + 1,
                            std::move(m.msg)),
          std::move(m.rp));
    return true;
  }
  return false;
}

void arm_retry(gateway_ptr self) {
  auto& st = self->state;
  if (!st.retry_armed && !st.held.empty()) {
    st.retry_armed = true;
    self->delayed_send(self, retry_every, actors::tick_atom::value);
    st.links.table->refresh_soon();
  }
}

void retry_held(gateway_ptr self) {
  auto& st = self->state;
  st.retry_armed = false;
  const auto now = clock::now();
  std::deque<held_message> still;
  while (!st.held.empty()) {
    auto m = std::move(st.held.front());
    st.held.pop_front();
    m.hops = 0; // it waited here: the view has moved on since
    if (try_dispatch(self, m)) {
      continue;
    }
    if (now >= m.deadline) {
      m.rp.deliver(actors::make_error(actors::errc::unavailable,
                                      "no node serves " + m.key + " right now; retry shortly"));
      continue;
    }
    still.push_back(std::move(m));
  }
  st.held = std::move(still);
  arm_retry(self);
}

/// The protocol this node speaks.
uint32_t my_protocol(const gateway_state& st) {
  return st.links.protocol != 0 ? st.links.protocol : protocol_version;
}

/// Logs why `node` is not linked: its protocol is too far from this node's.
void log_refused(const gateway_state& st, const std::string& node, uint32_t protocol,
                 const std::string& build) {
  const auto mine = my_protocol(st);
  logger()->error("refusing node {} (build {}): it speaks cluster protocol {}, this node speaks {} "
                  "and links only with protocols {}..{}; upgrade one version at a time",
                  node, build.empty() ? "unknown" : build, protocol, mine, mine - 1, mine + 1);
}

/// Enters `gw` as the gateway of `node` and monitors it (the monitor fires when the
/// connection goes down).
void add_peer(gateway_ptr self, const std::string& node, const caf::actor& gw) {
  auto& st = self->state;
  self->monitor(gw);
  st.peers[gw.address()] = node;
  st.links.table->set_peer(node, gw);
  st.links.table->refresh_soon();
}

/// Sends relayed requests on their way again through the current route (or holds them here
/// until the shard has an owner); the ones not idempotent() are answered unavailable.
void redispatch(gateway_ptr self, std::vector<relayed> xs) {
  auto& st = self->state;
  for (auto& x : xs) {
    auto key = x.route.get_as<std::string>(1);
    const auto& msg = x.route.get_as<caf::message>(3);
    if (!idempotent(msg)) {
      x.rp.deliver(lost_on_the_way(key));
      continue;
    }
    held_message m{std::move(key), 0, msg, std::move(x.rp), clock::now() + st.links.wait_limit};
    if (!try_dispatch(self, m)) {
      st.held.push_back(std::move(m));
    }
  }
  arm_retry(self);
}

/// The messages forwarded to `gw`, which went away: the idempotent ones go to the shard's
/// current owner (or wait here for one), the others are answered unavailable.
void resend_lost(gateway_ptr self, const caf::actor_addr& gw) {
  auto lost = take_sent_to(self->state.relays, gw);
  if (!lost.empty()) {
    logger()->info("{} request(s) in flight to a lost node: re-sent the idempotent ones",
                   lost.size());
    redispatch(self, std::move(lost));
  }
}

caf::behavior gateway_main(gateway_ptr self, gateway_links links) {
  self->state.relay_timeout = links.relay_timeout;
  self->state.links = std::move(links);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    resend_lost(self, dm.source);
    auto i = st.peers.find(dm.source);
    if (i == st.peers.end()) {
      return;
    }
    logger()->warn("connection to node {} lost ({})", i->second, caf::to_string(dm.reason));
    if (st.links.table->peer(i->second).address() == dm.source) {
      st.links.table->drop_peer(i->second);
    }
    st.links.table->suspect(i->second); // membership asks whether its process died
    st.peers.erase(i);
  });
  return {
      [=](actors::route_atom, std::string& key, uint32_t hops,
          caf::message& msg) -> caf::result<caf::message> {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        held_message m{std::move(key), hops, std::move(msg), rp,
                       clock::now() + st.links.wait_limit};
        if (!try_dispatch(self, m)) {
          st.held.push_back(std::move(m));
          arm_retry(self);
        }
        return rp;
      },
      [=](actors::tick_atom) { retry_held(self); },
      [=](reroute_atom) {
        auto moved = take_rerouted(self->state.relays, *self->state.links.table);
        if (!moved.empty()) {
          logger()->info("{} request(s) in flight to a node that lost their shard: re-sent to "
                         "the new owner",
                         moved.size());
          redispatch(self, std::move(moved));
        }
        rearm_reroute(self);
      },
      [=](hello_atom, const std::string& node, caf::actor& gw, uint32_t protocol,
          const std::string& build) -> caf::result<uint32_t, std::string> {
        auto& st = self->state;
        if (!can_link(protocol, my_protocol(st))) {
          log_refused(st, node, protocol, build);
          return actors::make_error(actors::errc::invalid, "node " + st.links.node_id +
                                                               " speaks cluster protocol " +
                                                               std::to_string(my_protocol(st)) +
                                                               ", not " + std::to_string(protocol));
        }
        if (gw && node != st.links.node_id) {
          add_peer(self, node, gw);
          logger()->info("node {} connected (cluster protocol {}, build {})", node, protocol,
                         build);
        }
        return {my_protocol(st), st.links.version};
      },
      [=](hello_atom, const std::string& node, caf::actor& gw) {
        // The unversioned hello of a release before protocol versions.
        auto& st = self->state;
        if (!can_link(legacy_protocol, my_protocol(st))) {
          log_refused(st, node, legacy_protocol, {});
          return;
        }
        if (gw && node != st.links.node_id) {
          add_peer(self, node, gw);
          logger()->info("node {} connected (cluster protocol {}: unversioned hello)", node,
                         legacy_protocol);
        }
      },
      [=](connect_peer_atom, const std::string& node, const std::string& host, uint16_t port) {
        auto& st = self->state;
        if (!st.links.connector) {
          return;
        }
        self->request(st.links.connector, std::chrono::seconds{3}, caf::connect_atom::value, host,
                      port)
            .then(
                [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
                  if (!ptr) {
                    logger()->warn("node {} at {}:{} published no gateway", node, host, port);
                    return;
                  }
                  auto h = caf::actor_cast<caf::actor>(ptr);
                  auto& s = self->state;
                  self->request(h, std::chrono::seconds{3}, hello_atom::value, s.links.node_id,
                                caf::actor_cast<caf::actor>(self), my_protocol(s), s.links.version)
                      .then(
                          [=](uint32_t protocol, const std::string& build) {
                            if (!can_link(protocol, my_protocol(self->state))) {
                              log_refused(self->state, node, protocol, build);
                              return;
                            }
                            add_peer(self, node, h);
                            logger()->info("connected to node {} at {}:{} (cluster protocol {}, "
                                           "build {})",
                                           node, host, port, protocol, build);
                          },
                          [=](caf::error& err) {
                            if (err != caf::sec::unexpected_message) {
                              // Refused (its log says why), or no answer: membership asks
                              // again on a later round.
                              logger()->warn("node {} at {}:{} did not link: {}", node, host, port,
                                             caf::to_string(err));
                              return;
                            }
                            // A release before protocol versions: the unversioned hello.
                            if (!can_link(legacy_protocol, my_protocol(self->state))) {
                              log_refused(self->state, node, legacy_protocol, {});
                              return;
                            }
                            add_peer(self, node, h);
                            self->send(h, hello_atom::value, self->state.links.node_id,
                                       caf::actor_cast<caf::actor>(self));
                            logger()->info("connected to node {} at {}:{} (cluster protocol {}: "
                                           "unversioned hello)",
                                           node, host, port, legacy_protocol);
                          });
                },
                [=](caf::error& err) {
                  logger()->debug("cannot connect to node {} at {}:{}: {}", node, host, port,
                                  caf::to_string(err));
                });
      },
  };
}

struct stub_state {
  static inline const char* name = "surge.stub";
  std::string key;
  uint32_t shard = 0;
  const actors::placement* where = nullptr;
  caf::actor gateway;
  std::chrono::milliseconds idle{30000};
  std::chrono::milliseconds relay_timeout{};
  std::function<bool(const caf::actor_addr&, uint64_t)> release;
  uint64_t received = 0;
  clock::time_point last_active;
  std::vector<relayed> relays;          ///< requests sent to remote gateways, not answered yet
  std::vector<caf::actor_addr> watched; ///< remote gateways monitored (relays went there)
  std::vector<caf::actor_addr> gone;    ///< remote gateways that went away: never again
  bool reroute_armed = false;
};

using stub_ptr = caf::stateful_actor<stub_state>*;

bool contains(const std::vector<caf::actor_addr>& xs, const caf::actor_addr& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

/// Sends `msg` for the stub's entity on its way: to the owner's gateway as a relayed request
/// when this node knows a connected owner (one hop), else (or when that owner's gateway is one
/// that went away) delegated to the local gateway, which waits for an owner and relays itself.
void stub_route(stub_ptr self, caf::message msg, caf::response_promise rp) {
  auto& s = self->state;
  auto r = s.where->resolve(s.shard);
  if (r.at == actors::placement::where::remote && r.gateway &&
      !contains(s.gone, r.gateway.address())) {
    if (!contains(s.watched, r.gateway.address())) {
      self->monitor(r.gateway); // a gateway gone already: the down_msg comes at once
      s.watched.push_back(r.gateway.address());
    }
    relay(self, r, s.shard,
          caf::make_message(actors::route_atom::value, s.key, uint32_t{1}, std::move(msg)),
          std::move(rp));
    return;
  }
  rp.delegate(s.gateway, actors::route_atom::value, s.key, uint32_t{0}, std::move(msg));
}

caf::behavior stub_main(stub_ptr self, std::string key, uint32_t shard,
                        const actors::placement* where, caf::actor gateway,
                        std::chrono::milliseconds idle, std::chrono::milliseconds relay_timeout,
                        std::function<bool(const caf::actor_addr&, uint64_t)> release) {
  auto& st = self->state;
  st.key = std::move(key);
  st.shard = shard;
  st.where = where;
  st.gateway = std::move(gateway);
  st.idle = idle;
  st.relay_timeout = relay_timeout;
  st.release = std::move(release);
  st.last_active = clock::now();
  // Every entity message goes on its way with the key. A request is relayed (its answer comes
  // back through here); a message nobody waits for is delegated as it is.
  self->set_default_handler(
      [](caf::scheduled_actor* ptr, caf::message_view& x) -> caf::result<caf::message> {
        auto* me = static_cast<stub_ptr>(ptr);
        auto& s = me->state;
        ++s.received;
        s.last_active = clock::now();
        auto rp = me->make_response_promise();
        if (!me->current_message_id().is_request()) {
          rp.delegate(s.gateway, actors::route_atom::value, s.key, uint32_t{0},
                      x.move_content_to_message());
          return rp;
        }
        stub_route(me, x.move_content_to_message(), rp);
        return rp;
      });
  // A remote gateway went away (its node stopped or the connection broke): what was sent there
  // and not answered is re-sent through the current route when it is idempotent, else answered
  // unavailable (its outcome is unknown) at once.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    s.watched.erase(std::remove(s.watched.begin(), s.watched.end(), dm.source), s.watched.end());
    if (!contains(s.gone, dm.source)) {
      s.gone.push_back(dm.source);
    }
    for (auto& x : take_sent_to(s.relays, dm.source)) {
      const auto& msg = x.route.get_as<caf::message>(3);
      if (idempotent(msg)) {
        logger()->info("{}: its node went away mid-request ({}); re-sent", s.key,
                       caf::to_string(dm.reason));
        stub_route(self, msg, std::move(x.rp));
      } else {
        logger()->info("{}: its node went away mid-request ({}); outcome unknown", s.key,
                       caf::to_string(dm.reason));
        x.rp.deliver(lost_on_the_way(s.key));
      }
    }
  });
  self->delayed_send(self, idle, actors::tick_atom::value);
  return {
      [=](reroute_atom) {
        auto& s = self->state;
        for (auto& x : take_rerouted(s.relays, *s.where)) {
          logger()->info("{}: its shard moved mid-request (epoch {} -> {}); re-sent", s.key,
                         x.epoch, s.where->resolve(s.shard).epoch);
          stub_route(self, x.route.get_as<caf::message>(3), std::move(x.rp));
        }
        rearm_reroute(self);
      },
      [=](actors::tick_atom) {
        auto& s = self->state;
        if (s.relays.empty() && clock::now() - s.last_active >= s.idle &&
            s.release(self->address(), s.received)) {
          for (const auto& gw : s.watched) {
            self->demonitor(gw); // proxies outlive stubs: leave no monitor behind
          }
          self->quit();
          return;
        }
        self->delayed_send(self, s.idle, actors::tick_atom::value);
      },
  };
}

} // namespace

bool idempotent(const caf::message& msg) {
  // The commands that may be done twice (gateway.hpp has the rule and its reasons); every
  // other command, and anything not listed, is not.
  static constexpr caf::atom_value repeatable[] = {
      caf::get_atom::value,          // reads
      actors::watch_atom::value,     // a read
      actors::product_atom::value,   // a read, or catalog data set as given
      actors::hold_atom::value,      // the cart's hold set to qty
      actors::item_atom::value,      // the cart's line set to qty
      actors::confirm_atom::value,   // (hold, order): once; again is a no-op
      actors::return_atom::value,    // (hold, order): once; again is a no-op
      actors::checkout_atom::value,  // a cart's claim by an order; a checkout by its key
      actors::refund_atom::value,    // by its idempotency key
      actors::join_atom::value,      // the customer's one ticket
      actors::reconcile_atom::value, // settles what is left
  };
  if (msg.empty() || !msg.match_element<caf::atom_value>(0)) {
    return false;
  }
  const auto cmd = msg.get_as<caf::atom_value>(0);
  if (cmd == actors::stock_atom::value) {
    // (stock_atom) reads; (stock_atom, stock_change) sets, or adds when !set.
    return msg.size() == 1 || (msg.match_elements<caf::atom_value, actors::stock_change>() &&
                               msg.get_as<actors::stock_change>(1).set);
  }
  return std::find(std::begin(repeatable), std::end(repeatable), cmd) != std::end(repeatable);
}

caf::actor spawn_gateway(caf::actor_system& sys, gateway_links links) {
  return sys.spawn(gateway_main, std::move(links));
}

caf::actor spawn_stub(caf::actor_system& sys, std::string key, uint32_t shard,
                      const actors::placement* where, caf::actor gateway,
                      std::chrono::milliseconds idle, std::chrono::milliseconds relay_timeout,
                      std::function<bool(const caf::actor_addr&, uint64_t)> release) {
  return sys.spawn(stub_main, std::move(key), shard, where, std::move(gateway), idle, relay_timeout,
                   std::move(release));
}

} // namespace surge::cluster
