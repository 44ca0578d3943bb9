#pragma once

// The cluster as the admin API shows it (shared/API.md), read the same way by every tool:
// GET /admin/v1/cluster is a cluster_view (one node_row per member), GET /admin/v1/shards a list
// of shard_row. The node writes these answers from net/bridge's cluster_admin rows; this is the
// reading side (surgectl's tables, surge-chaos's "settled" check, surge-bench failover's owners).

#include <cstdint>
#include <string>
#include <vector>

#include "surge/net/json.hpp"

namespace surge::tools {

/// One member of GET /admin/v1/cluster's "nodes".
struct node_row {
  std::string node_id;
  std::string address;           ///< cluster (CAF) address
  std::string http_address;      ///< storefront
  std::string admin_address;     ///< admin API
  std::string status;            ///< up, draining, left, down
  int64_t shards = 0;            ///< shards it owns
  int64_t actors = 0;            ///< live entity actors
  int64_t heartbeat_age_ms = -1; ///< -1: not reported
};

/// GET /admin/v1/cluster.
struct cluster_view {
  std::vector<node_row> nodes;
  int64_t shards = 0;    ///< cluster.shards
  std::string this_node; ///< the node that answered
};

/// One row of GET /admin/v1/shards's "shards".
struct shard_row {
  int64_t shard = -1;
  std::string owner; ///< empty: unassigned
  int64_t epoch = 0;
  std::string target; ///< empty: no move planned
};

/// The answer of GET /admin/v1/cluster. A member that is absent or of another type reads as its
/// default. Throws std::runtime_error ("the answer has no \"nodes\" array") for another answer.
cluster_view read_cluster(const net::json::value& answer);

/// The answer of GET /admin/v1/shards, in its order. Throws std::runtime_error ("the answer has
/// no \"shards\" array") for another answer.
std::vector<shard_row> read_shards(const net::json::value& answer);

} // namespace surge::tools
