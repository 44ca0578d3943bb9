#include "etag.hpp"

namespace surge::net::bridge {

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  // A list of entity tags, possibly weak (W/"..."), or "*".
  std::size_t pos = 0;
  while (pos < if_none_match.size()) {
    auto comma = if_none_match.find(',', pos);
    auto tok = if_none_match.substr(pos, comma == std::string_view::npos ? std::string_view::npos
                                                                         : comma - pos);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) {
      tok.remove_prefix(1);
    }
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) {
      tok.remove_suffix(1);
    }
    if (tok.substr(0, 2) == "W/") {
      tok.remove_prefix(2);
    }
    if (tok == "*" || tok == etag) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    pos = comma + 1;
  }
  return false;
}

} // namespace surge::net::bridge
