#pragma once

// The cluster as the admin API shows it: one row per member and one per shard. Written by
// membership, read by the HTTP bridge (net/bridge's cluster_admin). Standard library only.

#include <cstdint>
#include <string>

namespace surge::cluster {

/// One row of GET /admin/v1/cluster.
struct node_info {
  std::string node_id;
  std::string address;
  std::string http_address;
  std::string admin_address;
  std::string status; ///< up, draining, left, down (lease expired)
  uint32_t shards = 0;
  uint64_t actors = 0;
  int64_t heartbeat_age_ms = 0;
  std::string version = {}; ///< its build version; empty: not recorded
  /// Its cluster protocol (protocol.hpp); 0: not recorded (a release before protocol versions,
  /// or another incarnation of the node id recorded it), read as legacy_protocol.
  uint32_t protocol = 0;
};

/// One row of GET /admin/v1/shards.
struct shard_info {
  uint32_t shard = 0;
  std::string owner;
  uint64_t epoch = 0;
  std::string target;
};

} // namespace surge::cluster
