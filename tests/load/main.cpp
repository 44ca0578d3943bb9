// surge-load's suites: unit (Zipf sampler, flags) and integration (the real binary against a real
// surge-node). The latency histogram it shares with surge-bench is tested in tests/tools.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
