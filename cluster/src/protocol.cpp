#include "surge/cluster/protocol.hpp"

#include <algorithm>

namespace surge::cluster {

uint32_t cluster_protocol(const std::vector<node_info>& nodes) {
  uint32_t low = 0;
  for (const auto& n : nodes) {
    if (n.status != "up" && n.status != "draining") {
      continue;
    }
    const uint32_t p = n.protocol != 0 ? n.protocol : legacy_protocol;
    low = low == 0 ? p : std::min(low, p);
  }
  return low == 0 ? protocol_version : low;
}

uint32_t since(feature f) {
  switch (f) {
  case feature::versioned_hello:
    return 2;
  }
  return protocol_version + 1; // unknown: never supported
}

std::string_view name_of(feature f) {
  switch (f) {
  case feature::versioned_hello:
    return "versioned_hello";
  }
  return "unknown";
}

const std::vector<feature>& all_features() {
  static const std::vector<feature> all{feature::versioned_hello};
  return all;
}

bool cluster_supports(const std::vector<node_info>& nodes, feature f) {
  return cluster_protocol(nodes) >= since(f);
}

} // namespace surge::cluster
