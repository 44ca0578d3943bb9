#pragma once

// Small formatting pieces every tool prints with, so that numbers and tables look the same in
// surgectl, surge-load, surge-chaos and surge-bench. Pure functions.

#include <cstdint>
#include <string>
#include <vector>

namespace surge::tools {

/// `x` with `decimals` digits after the point ("%.*f").
std::string fixed(double x, int decimals);

/// 1234567 -> "1,234,567".
std::string grouped(uint64_t n);

/// `rows` as aligned columns, two spaces apart, one line each: the columns marked in `right`
/// right-aligned, the others left-aligned (without trailing spaces in the last column).
std::string format_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<bool>& right);

/// `s` percent-encoded as one URL path segment (RFC 3986 unreserved characters stay).
std::string path_segment(const std::string& s);

} // namespace surge::tools
