// tools/common's child processes: how a child starts (descriptors, environment, PATH, a failed
// exec), how it is waited for, stopped and killed, what run() captures, and that a child started
// by a thread that has ended lives on. Real processes (sh, sleep), no servers.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "surge/tools/process.hpp"

namespace surge::tools {

namespace {

using namespace std::chrono_literals;

child_spec shell(const std::string& script) {
  child_spec s;
  s.argv = {"sh", "-c", script};
  return s;
}

} // namespace

TEST_SUITE("tools_unit") {
  TEST_CASE("run: exit status, stdout and stderr apart or merged") {
    const auto r = run(shell("echo out; echo err >&2; exit 3"), 10s);
    REQUIRE(!r.timed_out);
    CHECK(exit_code(r.status) == 3);
    CHECK(describe_status(r.status) == "exit status 3");
    CHECK(r.out == "out\n");
    CHECK(r.err == "err\n");
    const auto merged = run(shell("echo one; echo two >&2; echo three"), 10s, true);
    CHECK(merged.out == "one\ntwo\nthree\n");
    CHECK(merged.err.empty());
    const auto cut = run(shell("echo 0123456789"), 10s, false, 4);
    CHECK(cut.out == "0123");
  }

  TEST_CASE("run: the environment given, else this process's; stdin is empty") {
    child_spec s = shell("echo \"[$SURGE_PROCESS_TEST]\"; cat");
    s.env = std::vector<std::string>{"SURGE_PROCESS_TEST=given", "PATH=/usr/bin:/bin"};
    CHECK(run(s, 10s).out == "[given]\n");
    ::setenv("SURGE_PROCESS_TEST", "inherited", 1);
    CHECK(run(shell("echo \"[$SURGE_PROCESS_TEST]\""), 10s).out == "[inherited]\n");
    ::unsetenv("SURGE_PROCESS_TEST");
  }

  TEST_CASE("environment(): this process's, filtered; a working directory") {
    ::setenv("SURGE_PROCESS_TEST", "x", 1);
    const auto all = environment();
    CHECK(std::find(all.begin(), all.end(), "SURGE_PROCESS_TEST=x") != all.end());
    const auto some =
        environment([](std::string_view e) { return !e.starts_with("SURGE_PROCESS_TEST="); });
    CHECK(some.size() + 1 == all.size());
    ::unsetenv("SURGE_PROCESS_TEST");
    child_spec s = shell("pwd");
    s.cwd = "/tmp";
    CHECK(run(s, 10s).out == "/tmp\n");
    s.cwd = "/nonexistent/surge";
    const auto r = run(s, 10s);
    CHECK(exit_code(r.status) == 127);
    CHECK(r.err == "cannot change to /nonexistent/surge\n");
  }

  TEST_CASE("run: a command that outlives the limit is killed") {
    const auto r = run(shell("echo started; exec sleep 30"), 200ms);
    CHECK(r.timed_out);
    CHECK(r.status == -1);
  }

  TEST_CASE("a log file: appended to, or from empty") {
    const std::string log = "/tmp/surge-tools-process-log-" + std::to_string(::getpid());
    std::remove(log.c_str());
    child c;
    child_spec s = shell("echo out; echo err >&2");
    s.log_path = log;
    c.start(s);
    REQUIRE(c.wait(10s) == 0);
    c.start(s);
    REQUIRE(c.wait(10s) == 0);
    CHECK(read_file(log) == "out\nerr\nout\nerr\n");
    s.truncate_log = true;
    c.start(s);
    REQUIRE(c.wait(10s) == 0);
    CHECK(read_file(log) == "out\nerr\n");
    std::remove(log.c_str());
    s.log_path = "/nonexistent/dir/log";
    CHECK_THROWS_AS(c.start(s), std::runtime_error);
    CHECK(!c.running());
  }

  TEST_CASE("a failed exec says why on stderr and exits 127") {
    child_spec s;
    s.argv = {"/nonexistent/surge-no-such-binary", "x"};
    const auto r = run(s, 10s);
    CHECK(exit_code(r.status) == 127);
    CHECK(r.err == "exec /nonexistent/surge-no-such-binary failed, errno 2\n");
  }

  TEST_CASE("no descriptor of this process reaches the child") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const int open_fd = ::fcntl(fds[0], F_DUPFD, 40); // not close-on-exec, above what ls opens
    REQUIRE(open_fd >= 40);
    const auto r = run(shell("ls /proc/self/fd"), 10s);
    ::close(fds[0]);
    ::close(fds[1]);
    ::close(open_fd);
    CHECK(r.out.find("0\n1\n2\n") == 0);
    CHECK(("\n" + r.out).find("\n" + std::to_string(open_fd) + "\n") == std::string::npos);
  }

  TEST_CASE("child: wait, stop, kill9") {
    child c;
    CHECK(!c.running());
    CHECK(c.wait(0ms) == -1); // nothing to wait for
    c.start(shell("exec sleep 30"));
    REQUIRE(c.running());
    CHECK_THROWS_AS(c.start(shell("true")), std::logic_error);
    CHECK(!c.wait(0ms)); // still running
    const auto stopped = c.stop(10s);
    REQUIRE(stopped);
    CHECK(WIFSIGNALED(*stopped));
    CHECK(WTERMSIG(*stopped) == SIGTERM);
    CHECK(exit_code(*stopped) == 128 + SIGTERM);
    CHECK(!c.running());

    c.start(shell("exec sleep 30"));
    c.signal(SIGSTOP); // stop() wakes it first
    const auto resumed = c.stop(10s);
    REQUIRE(resumed);
    CHECK(WTERMSIG(*resumed) == SIGTERM);

    c.start(shell("trap '' TERM; echo ready; while :; do sleep 1; done"));
    const int status = c.kill9();
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    CHECK(!c.running());
    CHECK(c.kill9() == -1);
  }

  // PR_SET_PDEATHSIG fires when the *thread* that forked exits: surge-chaos's fault thread
  // restarts nodes and ends with the schedule, and a test may start a node from a helper thread.
  TEST_CASE("a child started by a thread that has ended lives on") {
    child c;
    std::thread starter{[&] { c.start(shell("sleep 0.3")); }};
    starter.join();
    const auto status = c.wait(30s);
    REQUIRE(status);
    CHECK_MESSAGE(WIFEXITED(*status), describe_status(*status));
    CHECK(exit_code(*status) == 0);
  }

  TEST_CASE("a port that is free; the tail of a log") {
    const auto port = pick_free_port();
    CHECK(port > 0);
    const std::string path = "/tmp/surge-tools-process-test-" + std::to_string(::getpid());
    {
      std::ofstream f{path};
      f << "one\ntwo\n" << std::string(50, 'x') << "\nfour\n";
    }
    CHECK(tail_of(path, 2, 10) == "xxxxxxxxxx...\nfour\n");
    CHECK(tail_of(path, 10) == "one\ntwo\n" + std::string(50, 'x') + "\nfour\n");
    CHECK(read_file(path) == "one\ntwo\n" + std::string(50, 'x') + "\nfour\n");
    std::remove(path.c_str());
    CHECK(read_file(path).empty());
    CHECK(tail_of(path).empty());
  }
}

} // namespace surge::tools
