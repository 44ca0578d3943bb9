#pragma once

// The cluster protocol's version: what two nodes must agree on to link (the gateway's hello),
// and the cluster-wide minimum that features needing every node to be new wait for.
//
// What crosses the wire between nodes (CAF serialization over BASP): the gateway's own
// messages (hello, route) and, inside route, every entity message of the typed protocols
// (actors/sku.hpp, cart.hpp, order.hpp, sale.hpp) with the types of actors/messages.hpp's
// type-ID block and the entities' errors. Their layout is one protocol version:
// tests/cluster/wire_test.cpp fingerprints every one of them and fails when the fingerprint
// changes while `protocol_version` does not (then: bump it, keep the old shapes readable for
// one version, and gate their new use with cluster_supports()).
//
// Compatibility: two nodes link when their versions differ by at most one. The newer node
// speaks the older's version to it (it knows both); a node never uses what its peers cannot
// read until the cluster's minimum (every live member) says all of them can. Standard library.

#include <cstdint>
#include <string_view>
#include <vector>

#include "surge/cluster/node_info.hpp"

namespace surge::cluster {

/// This build's cluster protocol. 1: releases up to surge-r17, whose hello carries no version;
/// 2: the versioned hello (protocol and build version), members record their protocol.
constexpr uint32_t protocol_version = 2;

/// What a peer that sends the unversioned hello (surge-r17 and before), or a member that
/// records no protocol, speaks.
constexpr uint32_t legacy_protocol = 1;

/// True when this node may link with a peer of protocol `peer`: they differ by at most one.
constexpr bool can_link(uint32_t peer, uint32_t mine = protocol_version) {
  return peer >= 1 && (peer > mine ? peer - mine : mine - peer) <= 1;
}

/// The lowest protocol among the live members (status up or draining) of `nodes` (a member
/// that records none counts as legacy_protocol); this build's when there is none.
uint32_t cluster_protocol(const std::vector<node_info>& nodes);

/// Behaviour that needs every live member to understand it, each with the protocol version
/// that brought it. A node uses one only while cluster_supports() says so, and reads the
/// previous form meanwhile.
enum class feature : uint8_t {
  versioned_hello, ///< protocol 2: the hello is a request answered with (protocol, build)
};

/// The protocol version that brought `f`.
uint32_t since(feature f);

/// The feature's name, as GET /admin/v1/cluster lists it.
std::string_view name_of(feature f);

/// Every feature, in the order they came.
const std::vector<feature>& all_features();

/// True when every live member of `nodes` speaks at least since(f).
bool cluster_supports(const std::vector<node_info>& nodes, feature f);

} // namespace surge::cluster
