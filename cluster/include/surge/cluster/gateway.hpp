#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

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
  std::string node_id;   ///< this node's
  std::string version;   ///< this node's build version, told to peers in the hello
  uint32_t protocol = 0; ///< the protocol it speaks (protocol.hpp); 0: protocol_version
};

using connect_peer_atom = caf::atom_constant<caf::atom("peer")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;

/// The gateway's own messages as they cross the wire (see spawn_gateway), declared as an
/// interface so that tests/cluster/wire_test.cpp fingerprints them with the entities' ones.
using gateway_wire = caf::typed_actor<
    caf::replies_to<actors::route_atom, std::string, uint32_t, caf::message>::with<caf::message>,
    caf::replies_to<hello_atom, std::string, caf::actor, uint32_t, std::string>::with<uint32_t,
                                                                                      std::string>,
    caf::reacts_to<hello_atom, std::string, caf::actor>>;

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
///       (asynchronously, bounded), then ask it (hello_atom, this node, this gateway, protocol,
///       build version) -> (protocol, build version) over that connection, so that one
///       connection serves both directions (membership connects only to peers with a greater
///       node id). A peer whose protocol this node cannot link with (protocol.hpp can_link) is
///       refused: logged as an error, not entered. A peer that does not understand the request
///       (a release before protocol versions answers unexpected_message) is a legacy_protocol
///       peer: it is told the unversioned (hello_atom, this node, this gateway) instead. An
///       entered peer is monitored and dropped from the table when the connection goes down.
///   (hello_atom, node, gateway, protocol, build) -> (protocol, build)  a peer's versioned
///       hello: entered as above when can_link(protocol), else refused with an error answer.
///   (hello_atom, node, gateway)  the unversioned hello of a legacy_protocol peer: entered when
///       can_link(legacy_protocol).
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
