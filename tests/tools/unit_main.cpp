// surge_tools_common's unit suite (tools_unit): what the tools and surge-bench share.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
