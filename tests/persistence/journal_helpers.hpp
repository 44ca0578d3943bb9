#pragma once

// Small builders and checks shared by the journal and catalog cases.

#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <doctest/doctest.h>

#include "surge/persistence/records.hpp"

namespace surge::test::journal_helpers {

/// A journal batch of `stream` at `seq`, with nothing else committed alongside.
inline persistence::commit_request req(std::string stream, uint64_t seq,
                                       std::string payload = "p") {
  persistence::commit_request r;
  r.batch = persistence::journal_batch{std::move(stream), seq, std::move(payload)};
  return r;
}

inline persistence::product_record product(std::string sku, std::string name, std::string category,
                                           int64_t price, std::string description = {}) {
  return persistence::product_record{std::move(sku), std::move(name), std::move(description),
                                     std::move(category), price};
}

inline void require_ok(const caf::error& err) {
  REQUIRE_MESSAGE(!err, caf::to_string(err));
}

template <class T>
T require_value(caf::expected<T> x) {
  REQUIRE_MESSAGE(x, caf::to_string(x.error()));
  return std::move(*x);
}

/// The skus of a listing, in its order.
inline std::vector<std::string> skus(const std::vector<persistence::product_listing>& xs) {
  std::vector<std::string> out;
  for (const auto& x : xs) {
    out.push_back(x.product.sku);
  }
  return out;
}

} // namespace surge::test::journal_helpers
