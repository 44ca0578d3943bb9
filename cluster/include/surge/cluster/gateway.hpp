#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "surge/actors/cart.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sale.hpp"
#include "surge/actors/sku.hpp"
#include "surge/cluster/shard_table.hpp"

namespace surge::cluster {

/// What the gateway reaches on its node. Everything outlives the gateway.
struct gateway_links {
  shard_table* table = nullptr;
  actors::sku_directory* skus = nullptr;
  actors::cart_directory* carts = nullptr;
  actors::order_directory* orders = nullptr;
  actors::sale_directory* sales = nullptr; ///< waiting rooms (kind "sale"); nullptr: none here
  /// How long a message waits for its shard to get an owner (handover, failover) before it is
  /// answered with unavailable (cluster.handoff_wait).
  std::chrono::milliseconds wait_limit{};
  /// The CAF middleman (or the OpenSSL manager) actor that opens connections to peers.
  caf::actor connector;
  std::string node_id; ///< this node's
};

using connect_peer_atom = caf::atom_constant<caf::atom("peer")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;

/// The node's gateway, published on cluster.port: every message for an entity on another node
/// travels (route_atom, key, hops, message) from a stub to the local gateway, which delegates
/// it to the gateway of the owner, which delegates it to the entity; the entity answers the
/// original sender directly. Delegation keeps the sender, so nothing waits on the way.
///
///   (route_atom, key, hops, message)  -> (the entity's answer)
///       this node serves the shard: delegate to the local entity (acquire_local); another
///       node does (and hops < 2): delegate to its gateway; nobody does right now (handover,
///       failover, peer not connected): hold the message, re-resolve every few milliseconds
///       and ask membership to read the map again; after `wait_limit`: unavailable.
///   (connect_peer_atom, node, host, port)  connect to a peer's gateway through the middleman
///       (asynchronously, bounded); on success it is entered in the table and monitored, and
///       dropped from it when the connection goes down; then the peer is told
///       (hello_atom, this node, this gateway) over that connection, so that one connection
///       serves both directions (membership connects only to peers with a greater node id).
caf::actor spawn_gateway(caf::actor_system& sys, gateway_links links);

/// A stub for entity `kind:id` whose shard this node does not serve: an actor of the entity's
/// interface (cast from a dynamically typed one) that delegates every message as
/// (route_atom, key, hops, message) straight to the owner's gateway when `where` knows a
/// connected owner (one hop), else to the local `gateway`, which waits for one. Passivates like
/// an entity after `idle` through `release(self, received)` (directory::try_release).
caf::actor spawn_stub(caf::actor_system& sys, std::string key, uint32_t shard,
                      const actors::placement* where, caf::actor gateway,
                      std::chrono::milliseconds idle,
                      std::function<bool(const caf::actor_addr&, uint64_t)> release);

} // namespace surge::cluster
