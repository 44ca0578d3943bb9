#include "surge/cluster/gateway.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman_actor.hpp>

#include <deque>
#include <unordered_map>

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
  auto r = st.links.table->resolve(
      st.links.table->shard_of(key.substr(0, colon), key.substr(colon + 1)));
  if (r.at == actors::placement::where::remote && r.gateway && m.hops < max_hops) {
    m.rp.delegate(r.gateway, actors::route_atom::value, m.key, m.hops + 1, std::move(m.msg));
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

caf::behavior gateway_main(gateway_ptr self, gateway_links links) {
  self->state.links = std::move(links);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.peers.find(dm.source);
    if (i == st.peers.end()) {
      return;
    }
    logger()->warn("connection to node {} lost ({})", i->second, caf::to_string(dm.reason));
    if (st.links.table->peer(i->second).address() == dm.source) {
      st.links.table->drop_peer(i->second);
    }
    st.peers.erase(i);
    st.links.table->refresh_soon();
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
  std::function<bool(const caf::actor_addr&, uint64_t)> release;
  uint64_t received = 0;
  clock::time_point last_active;
};

using stub_ptr = caf::stateful_actor<stub_state>*;

caf::behavior stub_main(stub_ptr self, std::string key, uint32_t shard,
                        const actors::placement* where, caf::actor gateway,
                        std::chrono::milliseconds idle,
                        std::function<bool(const caf::actor_addr&, uint64_t)> release) {
  auto& st = self->state;
  st.key = std::move(key);
  st.shard = shard;
  st.where = where;
  st.gateway = std::move(gateway);
  st.idle = idle;
  st.release = std::move(release);
  st.last_active = clock::now();
  // Every entity message: delegate to the gateway with the key (the answer goes straight back
  // to the original sender).
  self->set_default_handler(
      [](caf::scheduled_actor* ptr, caf::message_view& x) -> caf::result<caf::message> {
        auto* me = static_cast<stub_ptr>(ptr);
        auto& s = me->state;
        ++s.received;
        s.last_active = clock::now();
        auto rp = me->make_response_promise();
        auto r = s.where->resolve(s.shard);
        if (r.at == actors::placement::where::remote && r.gateway) {
          rp.delegate(r.gateway, actors::route_atom::value, s.key, uint32_t{1},
                      x.move_content_to_message());
        } else {
          rp.delegate(s.gateway, actors::route_atom::value, s.key, uint32_t{0},
                      x.move_content_to_message());
        }
        return rp;
      });
  self->delayed_send(self, idle, actors::tick_atom::value);
  return {
      [=](actors::tick_atom) {
        auto& s = self->state;
        if (clock::now() - s.last_active >= s.idle && s.release(self->address(), s.received)) {
          self->quit();
          return;
        }
        self->delayed_send(self, s.idle, actors::tick_atom::value);
      },
  };
}

} // namespace

caf::actor spawn_gateway(caf::actor_system& sys, gateway_links links) {
  return sys.spawn(gateway_main, std::move(links));
}

caf::actor spawn_stub(caf::actor_system& sys, std::string key, uint32_t shard,
                      const actors::placement* where, caf::actor gateway,
                      std::chrono::milliseconds idle,
                      std::function<bool(const caf::actor_addr&, uint64_t)> release) {
  return sys.spawn(stub_main, std::move(key), shard, where, std::move(gateway), idle,
                   std::move(release));
}

} // namespace surge::cluster
