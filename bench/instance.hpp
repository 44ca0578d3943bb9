#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "surge/runtime/entity_layer.hpp"

namespace surge::bench {

/// The node's entity layer (runtime/entity_layer.hpp) as surge-node wires it, a member of the
/// cluster of the bench's database: alone (every shard is its own), or with the other
/// instances of the same run. `opts` come from bench_node_options().
struct instance : runtime::entity_layer {
  explicit instance(const config::node_options& opts)
      : runtime::entity_layer(opts) {
    if (auto err = join_cluster(opts); !err.empty()) {
      throw std::runtime_error("cannot join the cluster: " + err);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{15};
    while (!serving()) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("the bench's node did not get ready within 15 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
  }
};

} // namespace surge::bench
