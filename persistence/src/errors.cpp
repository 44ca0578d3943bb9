#include "surge/persistence/errors.hpp"

#include <iterator>

#include "surge/config/names.hpp"

namespace surge::persistence {

const char* to_string(errc x) {
  static constexpr const char* names[] = {"unavailable", "conflict", "corrupt", "invalid",
                                          "fenced"};
  static_assert(std::size(names) == config::count_of(errc::unavailable, errc::fenced));
  return config::name_of(x, names, "unknown", errc::unavailable);
}

} // namespace surge::persistence
