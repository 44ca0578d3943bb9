// Observability tests against a real Prometheus: see CMakeLists.txt.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
