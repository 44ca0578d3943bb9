#include "surge/persistence/errors.hpp"

namespace surge::persistence {

const char* to_string(errc x) {
  switch (x) {
  case errc::unavailable:
    return "unavailable";
  case errc::conflict:
    return "conflict";
  case errc::corrupt:
    return "corrupt";
  case errc::invalid:
    return "invalid";
  case errc::fenced:
    return "fenced";
  }
  return "unknown";
}

} // namespace surge::persistence
