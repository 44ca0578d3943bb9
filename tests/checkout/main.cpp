// End-to-end checkout tests: see CMakeLists.txt for the suites.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
