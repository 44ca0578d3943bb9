// surge-chaos's child processes: they must outlive the thread that started them.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "process.hpp"

namespace surge::chaos {

TEST_SUITE("chaos_unit") {
  // PR_SET_PDEATHSIG fires when the *thread* that forked exits. The fault thread restarts
  // redis-server and killed nodes and then ends with the schedule: its children got SIGKILL
  // (a node "exited unexpectedly (signal KILL)" right after the last fault).
  TEST_CASE("a child started by a thread that has ended keeps running") {
    child c;
    const std::string log = "/tmp/surge-chaos-process-test-" + std::to_string(::getpid()) + ".log";
    std::thread starter{[&] {
      c.start({"sleep", "30"}, log);
      // Like the fault thread, live on for a while (the child has set up its death signal).
      std::this_thread::sleep_for(std::chrono::milliseconds{200});
    }};
    starter.join();
    REQUIRE(c.running());
    std::this_thread::sleep_for(std::chrono::milliseconds{300});
    CHECK_MESSAGE(!c.dead(), "the child died: " << c.how_it_ended());
    CHECK(!c.exited());
    c.kill9();
    CHECK(!c.running());
    std::remove(log.c_str());
  }

  TEST_CASE("run_command from a short-lived thread completes") {
    command_result r;
    std::thread t{[&] { r = run_command({"sh", "-c", "sleep 0.2; echo done"}); }};
    t.join();
    CHECK(r.exit_code == 0);
    CHECK(r.output == "done\n");
  }
}

} // namespace surge::chaos
