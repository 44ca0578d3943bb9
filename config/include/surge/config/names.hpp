#pragma once

// Names of enumerators for logs and error texts: one table per enumeration instead of a switch
// per to_string(). Standard library only.

#include <cstddef>
#include <iterator>

namespace surge::config {

/// The name of `x` in `names`, which holds the names of an enumeration's values in declaration
/// order starting at the value `first` (the values must be consecutive); `fallback` for a value
/// outside the table. Callers static_assert that the table covers their last enumerator.
template <class E, std::size_t N>
constexpr const char* name_of(E x, const char* const (&names)[N], const char* fallback,
                              E first = E{}) {
  const auto i = static_cast<long long>(x) - static_cast<long long>(first);
  return i >= 0 && i < static_cast<long long>(N) ? names[i] : fallback;
}

/// The number of values from `first` to `last` of an enumeration: the size its name table has.
template <class E>
constexpr std::size_t count_of(E first, E last) {
  return static_cast<std::size_t>(static_cast<long long>(last) - static_cast<long long>(first) + 1);
}

} // namespace surge::config
