// surgectl end to end: the real binary against a real surge-node child process and real Redis.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
