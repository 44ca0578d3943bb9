#pragma once

// The pure parts of `surgectl roll` (tools/surgectl/roll.cpp): which nodes, in which order, the
// restart command of one node, and the rules that say when a node is drained and when the
// cluster is balanced again. They read the cluster as cluster_rows.hpp reads the admin API; no
// I/O here.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "surge/tools/cluster_rows.hpp"

namespace surge::tools::roll {

/// A plan or a command that cannot be made; what() says why, for the operator.
struct plan_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// "n1,n2,n3" -> {"n1","n2","n3"} (spaces around names trimmed). Throws plan_error for an empty
/// list, an empty name or a name given twice.
std::vector<std::string> split_nodes(const std::string& list);

/// The nodes to roll, in order: `order` when given (each must be a member whose status is not
/// "left" or "down"), else every member that is up or draining, by id. Throws plan_error naming
/// the first node that is not a member (or has left), or when fewer than two members are up
/// (a drain needs another member to take the shards).
std::vector<std::string> plan(const cluster_view& c, const std::vector<std::string>& order);

/// True when `node` may stand in a shell command as it is: [A-Za-z0-9._-]+, not starting with '-'.
bool safe_node_id(const std::string& node);

/// `tmpl` with every "{node}" replaced by `node`. Throws plan_error when `tmpl` has no "{node}"
/// (the command would restart the same process for every node), or when `node` is not
/// safe_node_id (it goes to a shell).
std::string restart_command(const std::string& tmpl, const std::string& node);

/// What the shard map says about the cluster (GET /admin/v1/shards with GET /admin/v1/cluster).
struct shard_counts {
  int64_t total = 0;                ///< rows of the shard map
  int64_t unassigned = 0;           ///< no owner
  int64_t moving = 0;               ///< a move under way (a target is set)
  std::vector<std::string> up;      ///< members whose status is "up", in the cluster's order
  std::vector<int64_t> owned_by_up; ///< shards each of `up` owns (same order)
  int64_t owned_by(const std::string& node) const;
  std::vector<std::pair<std::string, int64_t>> owners; ///< shards per owner (any status)
};

shard_counts count_shards(const cluster_view& c, const std::vector<shard_row>& shards);

/// A verdict and, when it is no, why not (for the progress lines and the timeout message).
struct verdict {
  bool ok = false;
  std::string why; ///< empty when ok
};

/// `node` has handed everything over: it owns no shard, and no move is under way (a move to
/// or from any member: the map is still changing).
verdict drained(const shard_counts& k, const std::string& node);

/// The cluster is balanced again with `node` in it: `node` is up, every shard has an owner, no
/// move is under way, and the up members' shard counts differ by at most one (the allocator's
/// own rule, cluster/src/allocator.cpp), so `node` owns its share: total / up, rounded down
/// or up.
verdict balanced(const cluster_view& c, const shard_counts& k, const std::string& node);

/// The cluster is settled (before a roll): every shard has an owner and no move is under way.
verdict settled(const shard_counts& k);

/// "host:port" -> {host, port}; a wildcard host ("0.0.0.0", "::", "[::]", "") is replaced by
/// `fallback_host`. Throws plan_error for a missing or bad port.
std::pair<std::string, uint16_t> reach(const std::string& address,
                                       const std::string& fallback_host);

} // namespace surge::tools::roll
