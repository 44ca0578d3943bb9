// The tools' number and table formatting (tools/common's text.hpp).

#include <doctest/doctest.h>

#include "surge/tools/text.hpp"

namespace surge::tools {

TEST_SUITE("tools_unit") {
  TEST_CASE("numbers") {
    CHECK(fixed(1.005, 1) == "1.0");
    CHECK(fixed(2.5, 0) == "2");
    CHECK(fixed(-3.14159, 3) == "-3.142");
    CHECK(grouped(0) == "0");
    CHECK(grouped(999) == "999");
    CHECK(grouped(1000) == "1,000");
    CHECK(grouped(1234567) == "1,234,567");
    CHECK(grouped(UINT64_MAX) == "18,446,744,073,709,551,615");
  }

  TEST_CASE("tables: aligned columns, two spaces apart, no trailing spaces") {
    CHECK(format_table({{"NODE", "SHARDS", "ADDRESS"}, {"n1", "256", "127.0.0.1:7001"}},
                       {false, true, false}) == "NODE  SHARDS  ADDRESS\n"
                                                "n1       256  127.0.0.1:7001\n");
    CHECK(format_table({{"a", "bb"}, {"ccc"}}, {}) == "a    bb\nccc\n");
    CHECK(format_table({}, {}).empty());
  }

  TEST_CASE("path segments") {
    CHECK(path_segment("PS5-BF_1.x~") == "PS5-BF_1.x~");
    CHECK(path_segment("a/b c%") == "a%2Fb%20c%25");
    CHECK(path_segment("\xc3\xa9") == "%C3%A9");
  }
}

} // namespace surge::tools
