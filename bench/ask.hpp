#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include "surge/actors/errors.hpp"
#include "surge/runtime/entity_layer.hpp"

namespace surge::bench {

/// Sends (xs...) to the SKU `sku` of `layer` and waits (at most 30 s) for its `Result`; throws
/// std::runtime_error with the error otherwise. For set-up and checks, not the measured load.
template <class Result, class... Ts>
Result ask_sku(runtime::entity_layer& layer, const std::string& sku, Ts&&... xs) {
  caf::scoped_actor self{*layer.sys};
  std::optional<Result> out;
  std::string err;
  self->request(layer.skus->acquire(sku), std::chrono::seconds{30}, std::forward<Ts>(xs)...)
      .receive(
          [&](Result& r) { out = std::move(r); },
          [&](caf::error& e) { err = actors::message_of(e) + " (" + caf::to_string(e) + ")"; });
  if (!out) {
    throw std::runtime_error("SKU " + sku + " request failed: " + err);
  }
  return std::move(*out);
}

} // namespace surge::bench
