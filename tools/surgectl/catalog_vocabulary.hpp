#pragma once

// The vocabulary of `surgectl catalog generate` and `catalog queries` (catalog.cpp): 20
// categories, each with its brands, product types, model prefixes, variants, features and a
// log-normal price (median and sigma). Plain ASCII without quotes or backslashes.

#include <vector>

namespace surge::ctl::catalog_vocabulary {

struct category {
  const char* slug;      ///< the product's "category"
  double median_dollars; ///< the median price
  double sigma;          ///< of ln(price)
  std::vector<const char*> brands;
  std::vector<const char*> types;    ///< "Wireless Noise Cancelling Headphones"
  std::vector<const char*> prefixes; ///< of model codes: "WH" -> "WH-1000XM5"
  std::vector<const char*> variants; ///< the attribute after the comma: "Black", "55 inch"
  std::vector<const char*> features; ///< phrases for descriptions: "active noise cancellation"
};

/// In order of size: the first is the largest (generate gives category i the weight
/// 1 / (i + 1)^0.9).
const std::vector<category>& categories();

} // namespace surge::ctl::catalog_vocabulary
