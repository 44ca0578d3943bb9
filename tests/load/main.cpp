// surge-load's suites: unit (histogram, Zipf sampler, flags) and integration (the real binary
// against a real surge-node).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
