#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/message.hpp>
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
  /// How long a message forwarded to a peer's gateway is followed for its answer: the longest
  /// any caller waits for an entity (the bridge's and entity.call_timeout), so that the relay
  /// never gives up before its caller and never outlives it by much.
  std::chrono::milliseconds relay_timeout{};
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

/// Whether doing `msg` (an entity message, as a stub receives it) twice has the effect of doing
/// it once, so that a copy lost with a node may be sent again without asking anyone. Pure;
/// unit-tested. The rule, from the entity interfaces (actors/*.hpp):
///   idempotent: reads ((stock_atom), (product_atom), (get_atom, ...), (watch_atom)); values
///     set as given: a SKU's hold for a cart (hold_atom, hold_request), a cart's line
///     (item_atom, ...), on_hand set (stock_atom, stock_change{set = true}), catalog data
///     (product_atom, product_record); operations keyed so that a repeat is a no-op or meets the
///     first: confirm and return of a hold for an order, a cart's claim by an order and its
///     release (checkout_atom, order_id, begin, principal), a checkout by its idempotency key
///     (checkout_atom, checkout_request), a refund by its key, a sale's join (one ticket per
///     customer), reconcile;
///   not: a stock add (stock_atom, stock_change{set = false}), a cart's create (a repeat answers
///     conflict), a cart's clear (it ends whatever claim stands when it arrives), and anything
///     not listed.
bool idempotent(const caf::message& msg);

/// The node's gateway, published on cluster.port: every message for an entity on another node
/// travels (route_atom, key, hops, message) from a stub to the gateway of the owner (or to the
/// local gateway, which forwards it there), which delegates it to the entity; the entity answers
/// whoever sent the route message last: the stub, or the gateway that forwarded it.
///
/// No request is left waiting when a node goes away: whoever sends a request to a remote
/// gateway (a stub, or a gateway forwarding) sends it as a request of its own, monitors that
/// gateway and relays the answer to the original sender. When the gateway goes down (its node
/// stops, the connection breaks) before answering, every request still outstanding there is
/// re-sent through the current route if it is idempotent() (the local gateway holds it until
/// the shard has an owner again, up to `wait_limit`), else answered at once with unavailable
/// ("outcome unknown": it may or may not have happened). A relay follows its answer for
/// `relay_timeout` at most. Messages that expect no answer are delegated as they are.
///
///   (route_atom, key, hops, message)  -> (the entity's answer)
///       this node serves the shard: delegate to the local entity (acquire_local); another
///       node does (and hops < 2): relay to its gateway; nobody does right now (handover,
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
/// interface (cast from a dynamically typed one) that sends every request as
/// (route_atom, key, 1, message) straight to the owner's gateway when `where` knows a connected
/// owner (one hop), relaying the answer (see spawn_gateway: followed for `relay_timeout`,
/// re-sent or answered unavailable when that gateway goes away), else delegates it to the local
/// `gateway` with hops 0, which waits for an owner. A gateway that went away is never used
/// again by this stub. Passivates like an entity after `idle` without messages and with no
/// relay outstanding, through `release(self, received)` (directory::try_release).
caf::actor spawn_stub(caf::actor_system& sys, std::string key, uint32_t shard,
                      const actors::placement* where, caf::actor gateway,
                      std::chrono::milliseconds idle, std::chrono::milliseconds relay_timeout,
                      std::function<bool(const caf::actor_addr&, uint64_t)> release);

} // namespace surge::cluster
