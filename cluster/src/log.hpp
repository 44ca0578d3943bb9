#pragma once

// The cluster's logger (spdlog, "cluster") for the sources of this folder.

#include <memory>

#include "surge/config/log.hpp"

namespace surge::cluster::detail {

inline std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("cluster");
  return lg;
}

} // namespace surge::cluster::detail
