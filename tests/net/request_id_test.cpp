#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include "surge/net/request_id.hpp"

using namespace surge::net;

TEST_CASE("request id: which ids a client may set") {
  CHECK(valid_request_id("a"));
  CHECK(valid_request_id("AZaz09._:-"));
  CHECK(valid_request_id(std::string(128, '7')));
  CHECK_FALSE(valid_request_id(""));
  CHECK_FALSE(valid_request_id(std::string(129, '7')));
  for (const char* bad : {"a b", "a/b", "a\tb", "a\"b", "a,b", "a;b", "a=b", "a+b", "\xc3\xa9"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_request_id(bad));
  }
}

TEST_CASE("request id: new ones are 32 lowercase hex digits, all different") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = new_request_id();
    REQUIRE(id.size() == 32);
    REQUIRE(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    REQUIRE(valid_request_id(id));
    seen.insert(std::move(id));
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("request id: a valid header is kept, anything else replaced") {
  CHECK(request_id_for(std::string_view{"abc-1"}) == "abc-1");
  CHECK(request_id_for(std::nullopt).size() == 32);
  CHECK(request_id_for(std::string_view{""}).size() == 32);
  CHECK(request_id_for(std::string_view{"no spaces"}).size() == 32);
}

TEST_CASE("request id: a forked child does not repeat its parent's ids") {
  (void)new_request_id(); // this thread's batch is filled: the child starts from a copy of it
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const auto id = new_request_id();
    const bool ok = write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  std::string child(32, ' ');
  std::size_t got = 0;
  while (got < child.size()) {
    const auto n = read(fds[0], child.data() + got, child.size() - got);
    REQUIRE(n > 0);
    got += static_cast<std::size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(valid_request_id(child));
  CHECK(child != new_request_id());
}
