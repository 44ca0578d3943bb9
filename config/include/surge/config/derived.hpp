#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "surge/config/settings.hpp"

namespace surge::config {

/// Every value the node computes from its settings rather than reads, in one place: the formula
/// and its reason live here, next to the settings they come from, and nowhere else.
/// runtime/wiring.cpp hands them to the components, whose option structs have no defaults.
struct derived_options {
  /// How long the bridge waits for an entity: http.request_timeout less 500 ms kept for the
  /// answer, at least 500 ms. It is the deadline each request's entity calls travel with.
  std::chrono::milliseconds bridge_call_timeout{0};
  /// Caller actors of the bridge: max(http.io_threads, 2), so that one slow reply never holds
  /// every I/O thread's calls.
  std::size_t bridge_callers = 0;
  /// A request must arrive whole within http.request_timeout (API.md: 408 past it).
  std::chrono::milliseconds http_read_timeout{0};
  /// How much lease a node must have left to send a charge: min(1 s, (cluster.lease -
  /// cluster.heartbeat) / 2), more than a request takes to reach a gateway, so that no charge
  /// lands once another node may own the order.
  std::chrono::milliseconds payment_lease_margin{0};
  /// Idle time after which a remote entity's stub (a route to its owner) is dropped:
  /// max(entity.idle_timeout, 30 s); stubs are cheap and re-resolving costs a round trip.
  std::chrono::milliseconds stub_idle{0};
  /// A new member takes orphans at once but rebalanced shards only after this age:
  /// max(cluster.lease, 1 s), so that a node that flaps does not pull shards to and fro.
  std::chrono::milliseconds rebalance_min_age{0};
  /// How long the owner waits for a handed-over shard's entities to finish before it stops them
  /// and completes the handover anyway (what they were doing fails or is resumed by the next
  /// owner from PostgreSQL): max(min(cluster.handoff_wait, cluster.lease / 2), 1 s). Every
  /// request to the shard waits meanwhile, so a busy entity (an order in a payment call, a cart
  /// waiting on a SKU elsewhere) must not hold a hot shard for long.
  std::chrono::milliseconds handoff_timeout{0};
  /// The same while the owner drains (a planned stop, where in-flight work such as a slow
  /// gateway call may finish): max(cluster.handoff_wait, 1 s).
  std::chrono::milliseconds drain_handoff_timeout{0};
  /// How often expired holds are swept: holds.ttl / 2, within [1 s, 30 s].
  std::chrono::milliseconds hold_sweep_interval{0};
  /// How long a checkout's claim on its cart stands at most: longer than any hold it protects
  /// can live (max(holds.max_lifetime, holds.ttl)) by carts.claim_grace, so that the claim of
  /// an order that vanished ends by itself after every hold it covered has expired.
  std::chrono::milliseconds cart_claim_lifetime{0};
  /// CAF's middleman drops a silent peer connection after max(4 * cluster.heartbeat,
  /// cluster.lease / 2) (BASP heartbeats every cluster.heartbeat): a peer that stopped talking
  /// to this node is suspected well within a lease (membership: expire_if_gone, cut off).
  std::chrono::milliseconds middleman_connection_timeout{0};
  /// How long browsers and CDNs may keep a listing, search or category answer (Cache-Control
  /// max-age): 1 s when search.stock_lag is at least 2 s, else 0 (they revalidate every time).
  std::chrono::seconds catalog_max_age{0};
  /// How old the data of a listing or search answer may be when the node sends it:
  /// search.stock_lag - catalog_max_age, so that a copy a CDN keeps is never staler than
  /// search.stock_lag. Bounds the node's listing cache and the replicas it reads.
  std::chrono::milliseconds catalog_fresh_for{0};
  /// How long the node keeps a listing or search answer: min(http.page_cache,
  /// catalog_fresh_for), counted from when its data was read.
  std::chrono::milliseconds catalog_cache_ttl{0};
  /// Customers are verified when auth.jwt_secret or auth.jwt_public_key is set.
  bool verify_customers = false;
};

/// The values above for `opts` (which load() has validated). Pure; never throws.
derived_options derive(const node_options& opts);

/// The host:port other members reach this node's cluster port at (its `members` address):
/// cluster.advertise, with `port` (the port the node listens on) when it names none; else
/// cluster.host:port. An IPv6 host is bracketed. REQUIRES: load() validated `opts`.
std::string advertised_cluster_address(const node_options& opts, uint16_t port);

/// The host:port other members (and tools reading GET /admin/v1/cluster) reach a listener bound
/// to bind_host:port at: bind_host itself, or, when it is a wildcard (0.0.0.0, ::), the host of
/// cluster.advertise (the pod's address), else of cluster.host. An IPv6 host is bracketed.
std::string advertised_address(const node_options& opts, const std::string& bind_host,
                               uint16_t port);

} // namespace surge::config
