// surgectl end to end: runs the real binary (SURGECTL_BINARY) against real surge-node child
// processes for the admin commands (one node; two sharing a database for a drain), and against
// a Redis stream filled here with XADD for `orders tail`. Checks the output and the exit codes
// (0 ok, 1 server error / not found / drain timed out, 2 usage, 3 cannot connect). The sales
// commands against a node's admin sales routes.

#include <doctest/doctest.h>

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"
#include "run_program.hpp"
#include "surge/net/customer_auth.hpp"
#include "temp_path.hpp"
#include "test_env.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;

using ctl_result = surge::test::program_result;

/// Runs surgectl with `args` in directory `cwd` (empty: this one) and `env` added to this
/// process' environment without `drop` (a variable that would decide the case otherwise); waits
/// up to `patience`, and returns its exit status and output.
ctl_result run_surgectl(const std::vector<std::string>& args, const std::vector<std::string>& env,
                        const std::string& drop, const std::string& cwd = {},
                        std::chrono::milliseconds patience = 30s) {
  std::vector<std::string> argv{SURGECTL_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  auto env_s = tools::environment([&](std::string_view e) { return !e.starts_with(drop + "="); });
  env_s.insert(env_s.end(), env.begin(), env.end());
  auto r = surge::test::run_program(argv, env_s, patience, cwd);
  if (r.timed_out) {
    FAIL("surgectl did not exit within the patience");
  }
  return r;
}

/// surgectl without $SURGE_ADMIN_TOKEN.
ctl_result run_ctl(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                   std::chrono::milliseconds patience = 30s) {
  return run_surgectl(args, env, "SURGE_ADMIN_TOKEN", {}, patience);
}

/// run_ctl with `dir` as the current directory (where surgectl looks for data/admin.token).
ctl_result run_ctl_in(const std::string& dir, const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {}) {
  return run_surgectl(args, env, "SURGE_ADMIN_TOKEN", dir);
}

/// A directory with data/admin.token (`content`, mode `mode`), removed on destruction.
class token_dir {
 public:
  token_dir(const std::string& content, std::filesystem::perms mode) {
    std::filesystem::create_directories(path() + "/data");
    std::ofstream{path() + "/data/admin.token"} << content;
    std::filesystem::permissions(path() + "/data/admin.token", mode);
  }

  const std::string& path() const { return where_.path(); }

 private:
  surge::test::temp_path where_{"surgectl-token"};
};

std::string show(const ctl_result& r) {
  return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in{s};
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) {
      out.push_back(l);
    }
  }
  return out;
}

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in{s};
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

/// The data row of a `stock` table: SKU ON_HAND HELD SOLD AVAILABLE OWNER EPOCH.
std::vector<std::string> stock_row(const ctl_result& r) {
  const auto ls = lines_of(r.out);
  REQUIRE_MESSAGE(ls.size() == 2, show(r));
  CHECK(words_of(ls[0]) ==
        std::vector<std::string>{"SKU", "ON_HAND", "HELD", "SOLD", "AVAILABLE", "OWNER", "EPOCH"});
  auto w = words_of(ls[1]);
  REQUIRE_MESSAGE(w.size() == 7, show(r));
  return w;
}

std::string admin_url(uint16_t port) {
  return "--admin=http://127.0.0.1:" + std::to_string(port);
}

/// A hiredis connection to the test Redis for XADD.
class redis_writer {
 public:
  redis_writer() {
    // The test URL is redis://host:port/db; the tests' Redis is on loopback.
    const auto url = surge::test::test_redis_url();
    std::string rest = url.substr(8);
    int db = 0;
    if (auto slash = rest.find('/'); slash != std::string::npos) {
      db = rest.size() > slash + 1 ? std::stoi(rest.substr(slash + 1)) : 0;
      rest = rest.substr(0, slash);
    }
    int port = 6379;
    if (auto colon = rest.rfind(':'); colon != std::string::npos) {
      port = std::stoi(rest.substr(colon + 1));
      rest = rest.substr(0, colon);
    }
    c_.reset(redisConnect(rest.c_str(), port));
    REQUIRE((c_ && c_->err == 0));
    if (db != 0) {
      command({"SELECT", std::to_string(db)});
    }
  }

  void command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()));
    REQUIRE(r != nullptr);
    const bool ok = r->type != REDIS_REPLY_ERROR;
    freeReplyObject(r);
    REQUIRE(ok);
  }

  /// XADD of one order event as the outbox relay writes it.
  void add_order(const std::string& stream, int64_t event_id, const std::string& order_id,
                 int64_t total) {
    const std::string payload = R"({"order_id":")" + order_id +
                                R"(","status":"confirmed","cart_id":"c","customer_id":"",)" +
                                R"("total_cents":)" + std::to_string(total) +
                                R"(,"currency":"USD","lines":[{"sku":"A","qty":2,"price_cents":)" +
                                std::to_string(total / 2) + "}]}";
    command({"XADD", stream, "*", "event_id", std::to_string(event_id), "key", order_id, "payload",
             payload});
  }

 private:
  std::unique_ptr<redisContext, decltype(&redisFree)> c_{nullptr, &redisFree};
};

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

} // namespace

TEST_SUITE("surgectl") {

  TEST_CASE("usage errors exit 2 with a message; --help lists the commands") {
    auto help = run_ctl({"--help"});
    CHECK_MESSAGE(help.code == 0, show(help));
    for (const char* cmd :
         {"status", "nodes", "shards [--all]", "drain NODE", "--wait", "undrain NODE", "stock get",
          "stock set", "stock add", "orders tail", "orders refund", "SURGECTL_ADMIN"}) {
      CHECK_MESSAGE(help.out.find(cmd) != std::string::npos, cmd);
    }
    const std::vector<std::vector<std::string>> bad = {
        {},
        {"frobnicate"},
        {"--bogus", "status"},
        {"stock"},
        {"stock", "get"},
        {"stock", "get", "a", "b"},
        {"stock", "set", "a"},
        {"stock", "set", "a", "ten"},
        {"stock", "set", "a", "-1"},
        {"stock", "add", "a", "1.5"},
        {"stock", "move", "a", "1"},
        {"status", "extra"},
        {"status", "--count=3"},
        {"nodes", "n1"},
        {"nodes", "--all"},
        {"shards", "extra"},
        {"shards", "--all=yes"},
        {"shards", "--wait"},
        {"drain"},
        {"drain", "n1", "n2"},
        {"drain", ""},
        {"drain", "n1", "--all"},
        {"drain", "n1", "--wait=soon"},
        {"drain", "n1", "--wait=-5"},
        {"drain", "n1", "--wait="},
        {"undrain"},
        {"undrain", "n1", "n2"},
        {"undrain", ""},
        {"undrain", "n1", "--wait"},
        {"stock", "get", "a", "--wait"},
        {"--json=yes", "nodes"},
        {"--admin=ftp://x", "status"},
        {"--admin=http://127.0.0.1:99999", "status"},
        {"orders"},
        {"orders", "tail", "--count=0"},
        {"orders", "tail", "--timeout=soon"},
        {"orders", "tail", "--redis=http://x"},
        {"orders", "refund", "o_1"},
        {"orders", "refund", "--key=k"},
        {"orders", "refund", "o_1", "--key="},
        {"orders", "refund", "o_1", "--key=k", "--line=a"},
        {"orders", "refund", "o_1", "--key=k", "--line=a:0"},
        {"orders", "refund", "o_1", "--key=k", "--count=1"},
        {"orders", "tail", "--key=k"},
        {"stock", "get", "a", "--line=a:1"},
    };
    for (const auto& args : bad) {
      std::string joined;
      for (const auto& a : args) {
        joined += a + " ";
      }
      INFO("surgectl " << joined);
      auto r = run_ctl(args);
      CHECK_MESSAGE(r.code == 2, show(r));
      CHECK_MESSAGE(r.err.find("usage:") != std::string::npos, show(r));
      CHECK(r.out.empty());
    }
  }

  TEST_CASE("unreachable admin port or Redis: exit 3") {
    const auto port = pick_free_port();
    for (const std::vector<std::string>& args : {std::vector<std::string>{"status"},
                                                 {"nodes"},
                                                 {"shards"},
                                                 {"shards", "--all"},
                                                 {"drain", "n1"},
                                                 {"drain", "n1", "--wait=1"},
                                                 {"undrain", "n1"},
                                                 {"stock", "get", "x"},
                                                 {"stock", "set", "x", "3"}}) {
      std::vector<std::string> full{admin_url(port)};
      full.insert(full.end(), args.begin(), args.end());
      auto r = run_ctl(full);
      CHECK_MESSAGE(r.code == 3, show(r));
      CHECK_MESSAGE(r.err.find("cannot connect") != std::string::npos, show(r));
    }
    // SURGECTL_ADMIN names the admin API; --admin beats it.
    auto env = run_ctl({"nodes"}, {"SURGECTL_ADMIN=http://127.0.0.1:" + std::to_string(port)});
    CHECK_MESSAGE(env.code == 3, show(env));
    CHECK_MESSAGE(env.err.find("127.0.0.1:" + std::to_string(port)) != std::string::npos,
                  show(env));
    auto r = run_ctl({"orders", "tail", "--redis=redis://127.0.0.1:" + std::to_string(port) + "/0",
                      "--count=1", "--timeout=1"});
    CHECK_MESSAGE(r.code == 3, show(r));
  }

  TEST_CASE("stock set, add, get against a node") {
    node_process node;
    api a{node};
    a.put_product({.sku = "ctl-1", .name = "Ctl", .price_cents = 250});
    const auto adm = admin_url(node.admin_port());

    auto set = run_ctl({adm, "stock", "set", "ctl-1", "10"});
    REQUIRE_MESSAGE(set.code == 0, show(set));
    auto w = stock_row(set);
    CHECK(w[0] == "ctl-1");
    CHECK(w[1] == "10");
    CHECK(w[2] == "0");
    CHECK(w[3] == "0");
    CHECK(w[4] == "10");

    auto add = run_ctl({adm, "stock", "add", "ctl-1", "5"});
    REQUIRE_MESSAGE(add.code == 0, show(add));
    CHECK(stock_row(add)[1] == "15");
    auto sub = run_ctl({"stock", "add", "ctl-1", "-3", adm}); // flags anywhere
    REQUIRE_MESSAGE(sub.code == 0, show(sub));
    CHECK(stock_row(sub)[1] == "12");
    check_stock(a.stock("ctl-1"), 12, 0, 0);

    // A hold shows up as held; get reads without changing anything.
    auto cart = a.create_cart();
    REQUIRE(a.put_item(cart, "ctl-1", 2).status == 200);
    auto get = run_ctl({adm, "stock", "get", "ctl-1"});
    REQUIRE_MESSAGE(get.code == 0, show(get));
    w = stock_row(get);
    CHECK(w[1] == "12");
    CHECK(w[2] == "2");
    CHECK(w[4] == "10");

    auto js = run_ctl({adm, "--json", "stock", "get", "ctl-1"});
    REQUIRE_MESSAGE(js.code == 0, show(js));
    const auto v = parse_json(js.out);
    CHECK(str_of(v, "sku") == "ctl-1");
    CHECK(int_of(v, "on_hand") == 12);
    CHECK(int_of(v, "held") == 2);
    CHECK(int_of(v, "available") == 10);

    // Server-side errors: exit 1 with the server's error.
    auto unknown = run_ctl({adm, "stock", "get", "no-such-sku"});
    CHECK_MESSAGE(unknown.code == 1, show(unknown));
    CHECK_MESSAGE(unknown.err.find("not_found") != std::string::npos, show(unknown));
    CHECK(unknown.out.empty());
    auto unknown_json = run_ctl({adm, "--json", "stock", "get", "no-such-sku"});
    CHECK_MESSAGE(unknown_json.code == 1, show(unknown_json));
    check_error(response{404, {}, unknown_json.out, {}}, 404, "not_found");
    auto below = run_ctl({adm, "stock", "set", "ctl-1", "1"}); // below held: 409
    CHECK_MESSAGE(below.code == 1, show(below));
    CHECK_MESSAGE(below.err.find("conflict") != std::string::npos, show(below));
    check_stock(a.stock("ctl-1"), 12, 2, 0);

    // orders refund reaches the order with its key (without one the server would answer 400):
    // an order that does not exist is the server's 404.
    auto refund =
        run_ctl({adm, "orders", "refund", "o_nosuchorder", "--key=k-1", "--line=ctl-1:1"});
    CHECK_MESSAGE(refund.code == 1, show(refund));
    CHECK_MESSAGE(refund.err.find("not_found") != std::string::npos, show(refund));
  }

  TEST_CASE("nodes, shards, status: tables and --json against one node; drain of an unknown node") {
    node_process node;
    const auto adm = admin_url(node.admin_port());
    const auto id = "it-" + node.database();
    const auto http = "127.0.0.1:" + std::to_string(node.http_port());
    const auto admin = "127.0.0.1:" + std::to_string(node.admin_port());

    auto nodes = run_ctl({adm, "nodes"});
    REQUIRE_MESSAGE(nodes.code == 0, show(nodes));
    auto ls = lines_of(nodes.out);
    REQUIRE_MESSAGE(ls.size() == 2, show(nodes));
    CHECK(words_of(ls[0]) == std::vector<std::string>{"NODE", "STATUS", "SHARDS", "ACTORS",
                                                      "HEARTBEAT", "ADDRESS", "HTTP", "ADMIN"});
    auto row = words_of(ls[1]);
    REQUIRE_MESSAGE(row.size() == 8, show(nodes));
    CHECK(row[0] == id);
    CHECK(row[1] == "up");
    CHECK(row[2] == "256");
    CHECK(row[4].back() == 's'); // "120ms", "1.2s"
    CHECK(row[5].rfind("127.0.0.1:", 0) == 0);
    CHECK(row[6] == http);
    CHECK(row[7] == admin);
    // Aligned columns: every row starts each column at the header's offset.
    CHECK(ls[1].find(row[1]) == ls[0].find("STATUS"));

    auto nj = run_ctl({adm, "nodes", "--json"});
    REQUIRE_MESSAGE(nj.code == 0, show(nj));
    auto v = parse_json(nj.out);
    CHECK(int_of(v, "shards") == 256);
    CHECK(str_of(v, "this_node") == id);
    REQUIRE(array_of(v, "nodes").size() == 1);
    const auto& n0 = array_of(v, "nodes")[0];
    CHECK(str_of(n0, "node_id") == id);
    CHECK(str_of(n0, "status") == "up");
    CHECK(int_of(n0, "shards") == 256);
    CHECK(str_of(n0, "http_address") == http);

    auto shards = run_ctl({adm, "shards"});
    REQUIRE_MESSAGE(shards.code == 0, show(shards));
    ls = lines_of(shards.out);
    REQUIRE_MESSAGE(ls.size() == 3, show(shards));
    CHECK(words_of(ls[0]) == std::vector<std::string>{"NODE", "STATUS", "SHARDS", "OUT", "IN"});
    CHECK(words_of(ls[1]) == std::vector<std::string>{id, "up", "256", "0", "0"});
    CHECK_MESSAGE(ls[2] == "256 shards, 0 unassigned, 0 moves under way", show(shards));

    auto all = run_ctl({"shards", "--all", adm});
    REQUIRE_MESSAGE(all.code == 0, show(all));
    ls = lines_of(all.out);
    REQUIRE_MESSAGE(ls.size() == 257, show(all));
    CHECK(words_of(ls[0]) == std::vector<std::string>{"SHARD", "OWNER", "EPOCH", "TARGET"});
    for (std::size_t i = 1; i < ls.size(); ++i) {
      const auto w = words_of(ls[i]);
      REQUIRE_MESSAGE(w.size() == 4, ls[i]);
      CHECK(w[0] == std::to_string(i - 1));
      CHECK(w[1] == id);
      CHECK(w[3] == "-");
    }

    auto sj = run_ctl({adm, "--json", "shards", "--all"});
    REQUIRE_MESSAGE(sj.code == 0, show(sj));
    v = parse_json(sj.out);
    const auto& rows = array_of(v, "shards");
    REQUIRE(rows.size() == 256);
    for (const auto& r : rows) {
      CHECK(str_of(r, "owner") == id);
      CHECK(int_of(r, "epoch") >= 1);
    }
    CHECK(parse_json(run_ctl({adm, "--json", "shards"}).out).find("shards") != nullptr);

    auto st = run_ctl({adm, "status"});
    REQUIRE_MESSAGE(st.code == 0, show(st));
    CHECK_MESSAGE(st.out.find("this node  " + id + " (up, 256 shards") != std::string::npos,
                  show(st));
    CHECK_MESSAGE(st.out.find("members    1: 1 up, 0 draining, 0 down, 0 left") !=
                      std::string::npos,
                  show(st));
    CHECK_MESSAGE(st.out.find("shards     256: 256 assigned, 0 unassigned, 0 moving") !=
                      std::string::npos,
                  show(st));
    auto stj = run_ctl({adm, "status", "--json"});
    REQUIRE_MESSAGE(stj.code == 0, show(stj));
    v = parse_json(stj.out);
    CHECK(str_of(member(v, "cluster"), "this_node") == id);
    CHECK(array_of(member(v, "shard_map"), "shards").size() == 256);

    // Draining a node the cluster does not know: exit 1 with the server's not_found, also with
    // --wait (nothing to wait for).
    for (const std::vector<std::string>& extra :
         {std::vector<std::string>{}, std::vector<std::string>{"--wait=30"}}) {
      std::vector<std::string> args{adm, "drain", "no-such-node"};
      args.insert(args.end(), extra.begin(), extra.end());
      auto r = run_ctl(args);
      CHECK_MESSAGE(r.code == 1, show(r));
      CHECK_MESSAGE(r.err.find("not_found") != std::string::npos, show(r));
      CHECK_MESSAGE(r.err.find("no-such-node") != std::string::npos, show(r));
      CHECK(r.out.empty());
    }
    auto dj = run_ctl({adm, "--json", "drain", "no-such-node"});
    CHECK_MESSAGE(dj.code == 1, show(dj));
    check_error(response{404, {}, dj.out, {}}, 404, "not_found");

    // The only member: draining it would leave nobody serving, so the node refuses (409
    // conflict, exit 1) and it stays up. (Before issue 13 it was drained and --wait ran out.)
    auto alone = run_ctl({adm, "drain", id, "--wait=1.5s"});
    CHECK_MESSAGE(alone.code == 1, show(alone));
    CHECK_MESSAGE(alone.out.empty(), show(alone));
    CHECK_MESSAGE(alone.err.find("conflict") != std::string::npos, show(alone));
    nodes = run_ctl({adm, "nodes"});
    REQUIRE_MESSAGE(nodes.code == 0, show(nodes));
    ls = lines_of(nodes.out);
    REQUIRE_MESSAGE(ls.size() == 2, show(nodes));
    CHECK(words_of(ls[1])[1] == "up");

    // Undrain: an unknown node is not_found (exit 1); a member that is up stays up (exit 0).
    auto unknown = run_ctl({adm, "undrain", "no-such-node"});
    CHECK_MESSAGE(unknown.code == 1, show(unknown));
    CHECK_MESSAGE(unknown.err.find("not_found") != std::string::npos, show(unknown));
    auto up = run_ctl({adm, "undrain", id});
    CHECK_MESSAGE(up.code == 0, show(up));
    CHECK_MESSAGE(up.out == "node " + id + ": up\n", show(up));
    auto upj = run_ctl({adm, "--json", "undrain", id});
    CHECK_MESSAGE(upj.code == 0, show(upj));
    CHECK(str_of(parse_json(upj.out), "status") == "up");
  }

  TEST_CASE("drain --wait: a node hands every shard to the other member, then exit 0") {
    // Two members of one cluster: the second node is pointed at the first one's database, and
    // both at one Redis prefix (its keys are removed by `keys`).
    surge::test::redis_test_keys keys;
    node_process first{node_config{.extra = {"--redis.prefix=" + keys.prefix()}}};
    node_process second{node_config{
        .extra = {"--pg.url=" + first.database_url(), "--redis.prefix=" + keys.prefix()}}};
    const auto adm = admin_url(second.admin_port());
    const auto first_id = "it-" + first.database();
    const auto second_id = "it-" + second.database();

    auto nodes = run_ctl({adm, "nodes"});
    REQUIRE_MESSAGE(nodes.code == 0, show(nodes));
    REQUIRE_MESSAGE(lines_of(nodes.out).size() == 3, show(nodes));

    auto drain = run_ctl({adm, "drain", first_id, "--wait=90s"}, {}, 120s);
    REQUIRE_MESSAGE(drain.code == 0, show(drain));
    CHECK_MESSAGE(drain.out == "node " + first_id + ": draining\nnode " + first_id + ": drained\n",
                  show(drain));
    CHECK_MESSAGE(drain.err.find("draining " + first_id + ": ") != std::string::npos,
                  show(drain)); // progress
    CHECK_MESSAGE(drain.err.find(first_id + " drained") != std::string::npos, show(drain));

    auto json = run_ctl({adm, "nodes", "--json"});
    REQUIRE_MESSAGE(json.code == 0, show(json));
    const auto v = parse_json(json.out);
    CHECK(str_of(v, "this_node") == second_id);
    for (const auto& n : array_of(v, "nodes")) {
      if (str_of(n, "node_id") == first_id) {
        CHECK(str_of(n, "status") == "draining");
        CHECK(int_of(n, "shards") == 0);
      } else {
        CHECK(str_of(n, "node_id") == second_id);
        CHECK(str_of(n, "status") == "up");
        CHECK(int_of(n, "shards") == 256);
      }
    }
    auto shards = run_ctl({adm, "shards"});
    REQUIRE_MESSAGE(shards.code == 0, show(shards));
    const auto ls = lines_of(shards.out);
    REQUIRE_MESSAGE(ls.size() == 4, show(shards));
    CHECK(words_of(ls[1]) == std::vector<std::string>{first_id, "draining", "0", "0", "0"});
    CHECK(words_of(ls[2]) == std::vector<std::string>{second_id, "up", "256", "0", "0"});
    auto st = run_ctl({adm, "status"});
    REQUIRE_MESSAGE(st.code == 0, show(st));
    CHECK_MESSAGE(st.out.find("2: 1 up, 1 draining (" + first_id + "), 0 down, 0 left") !=
                      std::string::npos,
                  show(st));
    // Draining a drained node again: accepted, and --wait returns at once.
    auto again = run_ctl({adm, "drain", first_id, "--wait=5"});
    CHECK_MESSAGE(again.code == 0, show(again));
    // The second is now the only member serving: it is not drained.
    auto last = run_ctl({adm, "drain", second_id});
    CHECK_MESSAGE(last.code == 1, show(last));
    CHECK_MESSAGE(last.err.find("conflict") != std::string::npos, show(last));
    // Undrained, the first serves again: then the second may be drained.
    auto back = run_ctl({adm, "undrain", first_id});
    CHECK_MESSAGE(back.code == 0, show(back));
    CHECK_MESSAGE(back.out == "node " + first_id + ": up\n", show(back));
  }

  TEST_CASE("admin token: wrong or missing token exit 1, --token or SURGE_ADMIN_TOKEN work") {
    node_process node{node_config{.admin_token = "secret"}};
    api a{node};
    a.put_product({.sku = "ctl-t", .name = "Tok"});
    const auto adm = admin_url(node.admin_port());

    auto wrong = run_ctl({adm, "--token=nope", "stock", "set", "ctl-t", "7"});
    CHECK_MESSAGE(wrong.code == 1, show(wrong));
    CHECK_MESSAGE(wrong.err.find("unauthorized") != std::string::npos, show(wrong));
    auto none = run_ctl({adm, "status"});
    CHECK_MESSAGE(none.code == 1, show(none));
    // --token beats the environment.
    auto beaten = run_ctl({adm, "--token=nope", "status"}, {"SURGE_ADMIN_TOKEN=secret"});
    CHECK_MESSAGE(beaten.code == 1, show(beaten));
    check_stock(a.stock("ctl-t"), 0, 0, 0);

    auto right = run_ctl({adm, "--token=secret", "stock", "set", "ctl-t", "7"});
    CHECK_MESSAGE(right.code == 0, show(right));
    auto env = run_ctl({adm, "stock", "add", "ctl-t", "1"}, {"SURGE_ADMIN_TOKEN=secret"});
    CHECK_MESSAGE(env.code == 0, show(env));
    check_stock(a.stock("ctl-t"), 8, 0, 0);
  }

  TEST_CASE("admin token from data/admin.token when neither --token nor SURGE_ADMIN_TOKEN") {
    node_process node{node_config{.admin_token = "s3cret-from-file"}};
    api a{node};
    a.put_product({.sku = "ctl-f", .name = "File"});
    const auto adm = admin_url(node.admin_port());
    using std::filesystem::perms;
    const auto owner_only = perms::owner_read | perms::owner_write;

    // What run.sh writes: the token and a newline, mode 0600. No warning.
    token_dir good{"s3cret-from-file\n", owner_only};
    auto set = run_ctl_in(good.path(), {adm, "stock", "set", "ctl-f", "4"});
    REQUIRE_MESSAGE(set.code == 0, show(set));
    CHECK_MESSAGE(set.err.empty(), show(set));
    CHECK(stock_row(set)[1] == "4");
    // Every admin command uses it (drain is a POST: JSON Content-Type, 404 for an unknown node).
    auto nodes = run_ctl_in(good.path(), {adm, "nodes"});
    CHECK_MESSAGE(nodes.code == 0, show(nodes));
    auto drain = run_ctl_in(good.path(), {adm, "drain", "nope"});
    CHECK_MESSAGE(drain.code == 1, show(drain));
    CHECK_MESSAGE(drain.err.find("not_found") != std::string::npos, show(drain));
    // An empty SURGE_ADMIN_TOKEN counts as unset.
    auto empty_env =
        run_ctl_in(good.path(), {adm, "stock", "add", "ctl-f", "1"}, {"SURGE_ADMIN_TOKEN="});
    CHECK_MESSAGE(empty_env.code == 0, show(empty_env));
    check_stock(a.stock("ctl-f"), 5, 0, 0);

    // --token and SURGE_ADMIN_TOKEN beat the file.
    auto flag = run_ctl_in(good.path(), {adm, "--token=nope", "stock", "set", "ctl-f", "9"});
    CHECK_MESSAGE(flag.code == 1, show(flag));
    CHECK_MESSAGE(flag.err.find("unauthorized") != std::string::npos, show(flag));
    auto env =
        run_ctl_in(good.path(), {adm, "stock", "set", "ctl-f", "9"}, {"SURGE_ADMIN_TOKEN=nope"});
    CHECK_MESSAGE(env.code == 1, show(env));
    check_stock(a.stock("ctl-f"), 5, 0, 0);

    // Readable by others: it still works, with a warning naming the file.
    token_dir loose{"s3cret-from-file\n", owner_only | perms::group_read | perms::others_read};
    auto warned = run_ctl_in(loose.path(), {adm, "stock", "add", "ctl-f", "2"});
    CHECK_MESSAGE(warned.code == 0, show(warned));
    CHECK_MESSAGE(warned.err.find("warning") != std::string::npos, show(warned));
    CHECK_MESSAGE(warned.err.find("data/admin.token") != std::string::npos, show(warned));
    CHECK_MESSAGE(warned.err.find("0644") != std::string::npos, show(warned));
    check_stock(a.stock("ctl-f"), 7, 0, 0);

    // A wrong token in the file is refused like any other; no file: no token.
    token_dir wrong{"not-it\n", owner_only};
    auto refused = run_ctl_in(wrong.path(), {adm, "stock", "set", "ctl-f", "1"});
    CHECK_MESSAGE(refused.code == 1, show(refused));
    CHECK_MESSAGE(refused.err.find("unauthorized") != std::string::npos, show(refused));
    auto none = run_ctl_in(good.path() + "/data", {adm, "status"}); // no data/ in there
    CHECK_MESSAGE(none.code == 1, show(none));
    check_stock(a.stock("ctl-f"), 7, 0, 0);
  }

  TEST_CASE("orders tail: each order once, bounded by --count or --timeout") {
    surge::test::redis_test_keys keys;
    const auto stream = keys.prefix() + "orders";
    redis_writer w;
    // At-least-once delivery: o-2 and o-1 come again.
    w.add_order(stream, 1, "o-1", 1000);
    w.add_order(stream, 2, "o-2", 2000);
    w.add_order(stream, 1, "o-1", 1000);
    w.add_order(stream, 3, "o-3", 3050);
    w.add_order(stream, 2, "o-2", 2000);
    const std::vector<std::string> base{"orders", "tail", "--redis=" + keys.url(),
                                        "--stream=" + stream, "--from=0"};

    auto with = [&](std::vector<std::string> more) {
      auto args = base;
      args.insert(args.end(), more.begin(), more.end());
      return args;
    };

    auto r = run_ctl(with({"--count=3"}));
    REQUIRE_MESSAGE(r.code == 0, show(r));
    auto ls = lines_of(r.out);
    REQUIRE_MESSAGE(ls.size() == 4, show(r)); // header + 3
    CHECK(words_of(ls[0]) == std::vector<std::string>{"ORDER_ID", "STATUS", "TOTAL", "LINES"});
    CHECK(words_of(ls[1]) ==
          std::vector<std::string>{"o-1", "confirmed", "10.00", "USD", "A", "x2"});
    CHECK(words_of(ls[2])[0] == "o-2");
    CHECK(words_of(ls[3]) ==
          std::vector<std::string>{"o-3", "confirmed", "30.50", "USD", "A", "x2"});

    // --count larger than the stream: the timeout ends it, still each order once.
    const auto t0 = std::chrono::steady_clock::now();
    r = run_ctl(with({"--count=10", "--timeout=1"}));
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_MESSAGE(r.code == 0, show(r));
    CHECK(lines_of(r.out).size() == 4);
    CHECK(took < 10s);
    for (const char* id : {"o-1 ", "o-2 ", "o-3 "}) {
      CHECK_MESSAGE(count_of(r.out, id) == 1, show(r));
    }

    r = run_ctl(with({"--json", "--count=2"}));
    REQUIRE_MESSAGE(r.code == 0, show(r));
    ls = lines_of(r.out);
    REQUIRE_MESSAGE(ls.size() == 2, show(r));
    CHECK(str_of(parse_json(ls[0]), "order_id") == "o-1");
    CHECK(str_of(parse_json(ls[1]), "order_id") == "o-2");

    // --from=$ (the default): only entries added after the start, duplicates dropped.
    std::thread late{[&] {
      std::this_thread::sleep_for(1500ms);
      redis_writer w2;
      w2.add_order(stream, 3, "o-3", 3050); // a redelivery of an old one: new entry, same key
      w2.add_order(stream, 4, "o-4", 400);
      w2.add_order(stream, 4, "o-4", 400);
      w2.add_order(stream, 5, "o-5", 500);
    }};
    r = run_ctl({"orders", "tail", "--redis=" + keys.url(), "--stream=" + stream, "--count=3",
                 "--timeout=20"});
    late.join();
    REQUIRE_MESSAGE(r.code == 0, show(r));
    ls = lines_of(r.out);
    REQUIRE_MESSAGE(ls.size() == 4, show(r));
    CHECK(words_of(ls[1])[0] == "o-3");
    CHECK(words_of(ls[2])[0] == "o-4");
    CHECK(words_of(ls[3])[0] == "o-5");
  }

} // TEST_SUITE

// ------------------------------------------------------------------------- surgectl sales

namespace {

/// The "field  value" lines of `sales get` / `sales put` as a map.
std::map<std::string, std::string> sale_fields(const ctl_result& r) {
  std::map<std::string, std::string> out;
  for (const auto& l : lines_of(r.out)) {
    const auto gap = l.find("  ");
    REQUIRE_MESSAGE(gap != std::string::npos, show(r));
    const auto value = l.find_first_not_of(' ', gap);
    out[l.substr(0, gap)] = value == std::string::npos ? "" : l.substr(value);
  }
  return out;
}

} // namespace

TEST_SUITE("surgectl sales") {

  TEST_CASE("sales: usage errors exit 2 before any request; --help describes the commands") {
    const auto port = admin_url(pick_free_port()); // nothing listens: a request would exit 3
    const std::vector<std::vector<std::string>> bad = {
        {"sales"},
        {"sales", "frob"},
        {"sales", "list", "extra"},
        {"sales", "get"},
        {"sales", "get", ""},
        {"sales", "get", "a", "b"},
        {"sales", "delete"},
        {"sales", "get", "a", "--name=x"},
        {"sales", "list", "--queue"},
        {"sales", "delete", "a", "--file=x.json"},
        {"sales", "put", "a"},
        {"sales", "put", "a", "--name=N", "--skus=A", "--starts-at=+1h"},
        {"sales", "put", "a", "--name=N", "--skus=A,,B", "--starts-at=+1h", "--ends-at=+2h"},
        {"sales", "put", "a", "--name=N", "--skus=A", "--starts-at=+soon", "--ends-at=+2h"},
        {"sales", "put", "a", "--name=N", "--skus=A", "--starts-at=+1h", "--ends-at=+2h",
         "--limit=-1"},
        {"sales", "put", "a", "--name=N", "--skus=A", "--starts-at=+1h", "--ends-at=+2h",
         "--admission-rate=5"},
        {"sales", "put", "a", "--name=N", "--skus=A", "--starts-at=+1h", "--ends-at=+2h", "--queue",
         "--admission-rate=fast"},
        {"sales", "put", "a", "--name=N", "--skus=A", "--starts-at=+1h", "--ends-at=+2h", "--queue",
         "--pass-ttl=0"},
        {"sales", "put", "a", "--file=/nonexistent/sale.json"},
        {"sales", "put", "a", "--file=x.json", "--name=N"},
        {"sales", "put", "a", "--file=x.json", "--queue"},
        {"sales", "list", "--bogus"},
        {"sales", "list", "--json=yes"},
        {"sales", "get", "a", "--admin=ftp://x"},
    };
    for (const auto& args : bad) {
      std::string joined;
      for (const auto& a : args) {
        joined += a + " ";
      }
      INFO("surgectl " << joined);
      auto full = args;
      full.push_back(port);
      auto r = run_ctl(full);
      CHECK_MESSAGE(r.code == 2, show(r));
      CHECK_MESSAGE(r.err.find("usage:") != std::string::npos, show(r));
      CHECK(r.out.empty());
    }
    // A --file that is not a JSON object is refused before it is sent.
    surge::test::temp_path dir{"surgectl-sale"};
    std::filesystem::create_directories(dir.path());
    for (const char* text : {"{\"name\":", "[1,2]"}) {
      const auto file = dir.path() + "/sale.json";
      std::ofstream{file} << text;
      auto r = run_ctl({"sales", "put", "s1", "--file=" + file, port});
      CHECK_MESSAGE(r.code == 2, show(r));
      CHECK_MESSAGE(r.err.find("sale.json") != std::string::npos, show(r));
    }
    auto help = run_ctl({"sales", "--help"});
    CHECK_MESSAGE(help.code == 0, show(help));
    for (const char* what : {"sales list", "sales get SALE_ID", "--file=sale.json", "--starts-at",
                             "--admission-rate", "--pass-ttl", "sales delete SALE_ID"}) {
      CHECK_MESSAGE(help.out.find(what) != std::string::npos, what);
    }
    auto top = run_ctl({"--help"});
    CHECK(top.out.find("sales put SALE_ID") != std::string::npos);
    // No node: exit 3.
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"sales", "list"},
          {"sales", "get", "s1"},
          {"sales", "delete", "s1"},
          {"sales", "put", "s1", "--name=N", "--skus=A", "--starts-at=+1h", "--ends-at=+2h"}}) {
      auto full = args;
      full.push_back(port);
      auto r = run_ctl(full);
      CHECK_MESSAGE(r.code == 3, show(r));
      CHECK_MESSAGE(r.err.find("cannot connect") != std::string::npos, show(r));
    }
  }

  TEST_CASE("sales put (flags and --file), get, list, delete against a node") {
    node_process node;
    api a{node};
    a.add_product({.sku = "ctl-s1", .name = "Sale one", .price_cents = 500}, 10);
    a.add_product({.sku = "ctl-s2", .name = "Sale two", .price_cents = 700}, 5);
    const auto adm = admin_url(node.admin_port());

    // Made from flags: a start an hour from now, a waiting room at 5 a second, 2-minute passes.
    const auto before = wall_ms();
    auto put = run_ctl({adm, "sales", "put", "ctl-drop", "--name=Ctl drop", "--skus=ctl-s1,ctl-s2",
                        "--starts-at=+1h", "--ends-at=+2h", "--limit=2", "--queue",
                        "--admission-rate=5", "--pass-ttl=2m"});
    REQUIRE_MESSAGE(put.code == 0, show(put));
    auto f = sale_fields(put);
    CHECK(f["sale"] == "ctl-drop");
    CHECK(f["name"] == "Ctl drop");
    CHECK(f["state"] == "scheduled");
    CHECK(f["skus"] == "ctl-s1,ctl-s2");
    CHECK(f["per_customer_limit"] == "2");
    CHECK_MESSAGE(f["queue"].find("/s, pass 120s") != std::string::npos, show(put));
    const auto starts = parse_rfc3339_ms(f["starts_at"]);
    REQUIRE_MESSAGE(starts.has_value(), show(put));
    CHECK(*starts >= before + 3600'000 - 1000);
    CHECK(*starts <= wall_ms() + 3600'000 + 1000);

    // get: the same sale and its queue's figures; --json is the server's object.
    auto get = run_ctl({adm, "sales", "get", "ctl-drop"});
    REQUIRE_MESSAGE(get.code == 0, show(get));
    f = sale_fields(get);
    CHECK(f["sale"] == "ctl-drop");
    CHECK(f["state"] == "scheduled");
    auto js = run_ctl({adm, "--json", "sales", "get", "ctl-drop"});
    REQUIRE_MESSAGE(js.code == 0, show(js));
    auto v = parse_json(js.out);
    CHECK(str_of(v, "sale_id") == "ctl-drop");
    CHECK(array_of(v, "skus").size() == 2);
    CHECK(int_of(v, "per_customer_limit") == 2);
    const auto& q = member(v, "queue");
    CHECK(int_of(q, "pass_ttl") == 120);
    REQUIRE(q.find("enabled") != nullptr);
    CHECK(*q.find("enabled") == json::value{true});
    REQUIRE(v.find("stats") != nullptr);
    if (v.find("stats")->is_object()) { // null only when the queue did not answer in time
      CHECK(int_of(member(v, "stats"), "waiting") == 0);
      CHECK(f["waiting"] == "0");
      // Nothing sold; before the prewarm the queue has read no stock yet ("-": unknown).
      CHECK_MESSAGE((f["sell_through"] == "0.0%" || f["sell_through"] == "-"), show(get));
    }

    // Replaced from a file: renamed, one SKU, no waiting room.
    surge::test::temp_path dir{"surgectl-sale"};
    std::filesystem::create_directories(dir.path());
    const auto file = dir.path() + "/sale.json";
    std::ofstream{file} << R"({"name":"Ctl drop, renamed","skus":["ctl-s1"],"starts_at":")"
                        << f["starts_at"] << R"(","ends_at":")" << f["ends_at"]
                        << R"(","per_customer_limit":0,"queue":{"enabled":false}})";
    auto replaced = run_ctl({"sales", "put", "ctl-drop", "--file=" + file, adm});
    REQUIRE_MESSAGE(replaced.code == 0, show(replaced));
    f = sale_fields(replaced);
    CHECK(f["name"] == "Ctl drop, renamed");
    CHECK(f["skus"] == "ctl-s1");
    CHECK(f["queue"] == "off");

    // A second sale over the same SKU and window: the server's conflict, exit 1.
    auto overlap = run_ctl({adm, "sales", "put", "ctl-other", "--name=Other", "--skus=ctl-s1",
                            "--starts-at=" + f["starts_at"], "--ends-at=" + f["ends_at"]});
    CHECK_MESSAGE(overlap.code == 1, show(overlap));
    CHECK_MESSAGE(overlap.err.find("conflict") != std::string::npos, show(overlap));
    // An unknown SKU: bad_request naming the field.
    auto unknown_sku = run_ctl({adm, "sales", "put", "ctl-other", "--name=Other",
                                "--skus=no-such-sku", "--starts-at=+1h", "--ends-at=+2h"});
    CHECK_MESSAGE(unknown_sku.code == 1, show(unknown_sku));
    CHECK_MESSAGE(unknown_sku.err.find("bad_request") != std::string::npos, show(unknown_sku));
    CHECK_MESSAGE(unknown_sku.err.find("skus") != std::string::npos, show(unknown_sku));
    // A second sale on the other SKU is fine.
    auto other = run_ctl({adm, "sales", "put", "ctl-other", "--name=Other sale", "--skus=ctl-s2",
                          "--starts-at=+1h", "--ends-at=+3h"});
    REQUIRE_MESSAGE(other.code == 0, show(other));

    // list: both, one row each.
    auto list = run_ctl({adm, "sales", "list"});
    REQUIRE_MESSAGE(list.code == 0, show(list));
    auto ls = lines_of(list.out);
    REQUIRE_MESSAGE(ls.size() == 3, show(list));
    CHECK(words_of(ls[0]) == std::vector<std::string>{"SALE_ID", "STATE", "STARTS_AT", "ENDS_AT",
                                                      "SKUS", "QUEUE", "WAITING", "ADMITTED",
                                                      "SOLD", "NAME"});
    std::set<std::string> ids;
    for (std::size_t i = 1; i < ls.size(); ++i) {
      const auto w = words_of(ls[i]);
      REQUIRE_MESSAGE(w.size() >= 10, show(list));
      ids.insert(w[0]);
      CHECK(w[1] == "scheduled");
      CHECK(w[4] == (w[0] == "ctl-drop" ? "ctl-s1" : "ctl-s2"));
      CHECK(w[5] == "off");
    }
    CHECK(ids == std::set<std::string>{"ctl-drop", "ctl-other"});
    auto lj = run_ctl({adm, "sales", "list", "--json"});
    REQUIRE_MESSAGE(lj.code == 0, show(lj));
    CHECK(array_of(parse_json(lj.out), "items").size() == 2);

    // delete: gone; again, and get of it: not_found (exit 1).
    auto del = run_ctl({adm, "sales", "delete", "ctl-drop"});
    CHECK_MESSAGE(del.code == 0, show(del));
    CHECK(del.out == "sale ctl-drop: deleted\n");
    auto again = run_ctl({adm, "sales", "delete", "ctl-drop"});
    CHECK_MESSAGE(again.code == 1, show(again));
    CHECK_MESSAGE(again.err.find("not_found") != std::string::npos, show(again));
    auto gone = run_ctl({adm, "sales", "get", "ctl-drop"});
    CHECK_MESSAGE(gone.code == 1, show(gone));
    CHECK_MESSAGE(gone.err.find("not_found") != std::string::npos, show(gone));
    CHECK(gone.out.empty());
    auto gone_json = run_ctl({adm, "--json", "sales", "get", "ctl-drop"});
    CHECK_MESSAGE(gone_json.code == 1, show(gone_json));
    check_error(response{404, {}, gone_json.out, {}}, 404, "not_found");
    list = run_ctl({adm, "sales", "list"});
    REQUIRE_MESSAGE(list.code == 0, show(list));
    CHECK(lines_of(list.out).size() == 2);
  }

} // TEST_SUITE

// ------------------------------------------------------------------------- surgectl token
// Minted tokens are checked with the node's own verifier (net/customer_auth.hpp); no node runs.

namespace {

/// Runs `surgectl ARGS` in directory `cwd` (data/jwt.secret is looked up there) with this
/// environment minus SURGE_AUTH_JWT_SECRET, plus `env`.
ctl_result run_token(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                     const std::vector<std::string>& env = {}) {
  return run_surgectl(args, env, "SURGE_AUTH_JWT_SECRET", cwd.string());
}

/// An empty temporary directory, removed with its content.
struct scratch_dir {
  scratch_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "surgectl-token-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    const auto p = path / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  std::filesystem::path path;
};

net::customer_verifier token_verifier(const std::string& secret, const std::string& issuer = {},
                                      const std::string& audience = {}) {
  net::customer_auth_options o;
  o.secret = secret;
  o.issuer = issuer;
  o.audience = audience;
  o.leeway = std::chrono::seconds{30};
  auto v = net::customer_verifier::make(o);
  REQUIRE(std::holds_alternative<net::customer_verifier>(v));
  return std::get<net::customer_verifier>(std::move(v));
}

/// The customer a printed token verifies as (with `v`, now), or "" (and a failed check).
std::string verified_id(const net::customer_verifier& v, const ctl_result& r) {
  const auto ls = lines_of(r.out);
  REQUIRE_MESSAGE(ls.size() == 1, show(r));
  auto res = v.verify(ls[0], std::chrono::system_clock::now());
  if (auto* f = std::get_if<net::auth_refusal>(&res)) {
    FAIL_CHECK("refused (", net::to_string(f->code), "): ", f->reason);
    return {};
  }
  return std::get<net::verified_customer>(res).id;
}

/// True when `v` refuses the printed token.
bool refused_by(const net::customer_verifier& v, const ctl_result& r) {
  const auto ls = lines_of(r.out);
  REQUIRE_MESSAGE(ls.size() == 1, show(r));
  return std::holds_alternative<net::auth_refusal>(
      v.verify(ls[0], std::chrono::system_clock::now()));
}

const std::string secret_a = "surgectl-token-test-secret-a-0123456789"; // test-only
const std::string secret_b = "surgectl-token-test-secret-b-0123456789";

} // namespace

TEST_SUITE("surgectl token") {

  TEST_CASE("token: prints an HS256 token that the node's verifier accepts") {
    scratch_dir dir;
    const auto file = dir.write("s.txt", secret_a + "\n");
    const auto t0 = std::chrono::system_clock::now();
    auto r = run_token({"token", "--customer=alice", "--secret-file=" + file}, dir.path);
    const auto t1 = std::chrono::system_clock::now();
    REQUIRE_MESSAGE(r.code == 0, show(r));
    CHECK(r.err.empty());
    CHECK(r.out.find(secret_a) == std::string::npos);
    CHECK(verified_id(token_verifier(secret_a), r) == "alice");
    CHECK(refused_by(token_verifier(secret_b), r));
    // Default lifetime one hour.
    auto res = token_verifier(secret_a).verify(lines_of(r.out)[0], t0);
    REQUIRE(std::holds_alternative<net::verified_customer>(res));
    const auto exp = std::get<net::verified_customer>(res).expires;
    CHECK(exp >= std::chrono::time_point_cast<std::chrono::seconds>(t0) + 3600s);
    CHECK(exp <= t1 + 3600s);

    // --ttl, --issuer, --audience.
    auto r2 =
        run_token({"token", "--customer=bob@example.com", "--ttl=90s",
                   "--issuer=https://id.example", "--audience=surge", "--secret-file=" + file},
                  dir.path);
    REQUIRE_MESSAGE(r2.code == 0, show(r2));
    CHECK(verified_id(token_verifier(secret_a, "https://id.example", "surge"), r2) ==
          "bob@example.com");
    auto res2 = token_verifier(secret_a).verify(lines_of(r2.out)[0], t0);
    REQUIRE(std::holds_alternative<net::verified_customer>(res2));
    CHECK(std::get<net::verified_customer>(res2).expires <= std::chrono::system_clock::now() + 90s);
    CHECK(refused_by(token_verifier(secret_a, "https://other.example"), r2));
  }

  TEST_CASE("token: the secret comes from --secret-file, else SURGE_AUTH_JWT_SECRET, else "
            "data/jwt.secret") {
    scratch_dir dir;
    const auto file_a = dir.write("a.txt", secret_a);
    dir.write("data/jwt.secret", secret_b + "\r\n");
    // --secret-file beats the environment and data/jwt.secret.
    auto r = run_token({"token", "--customer=c1", "--secret-file=" + file_a}, dir.path,
                       {"SURGE_AUTH_JWT_SECRET=" + secret_b});
    REQUIRE_MESSAGE(r.code == 0, show(r));
    CHECK(verified_id(token_verifier(secret_a), r) == "c1");
    // The environment beats data/jwt.secret.
    r = run_token({"token", "--customer=c2"}, dir.path, {"SURGE_AUTH_JWT_SECRET=" + secret_a});
    REQUIRE_MESSAGE(r.code == 0, show(r));
    CHECK(verified_id(token_verifier(secret_a), r) == "c2");
    // data/jwt.secret in the current directory, without its line break.
    r = run_token({"token", "--customer=c3"}, dir.path);
    REQUIRE_MESSAGE(r.code == 0, show(r));
    CHECK(verified_id(token_verifier(secret_b), r) == "c3");
  }

  TEST_CASE("token: no usable secret exits 1 and never prints the secret") {
    scratch_dir dir;
    auto none = run_token({"token", "--customer=alice"}, dir.path);
    CHECK_MESSAGE(none.code == 1, show(none));
    CHECK(none.out.empty());
    CHECK_MESSAGE(none.err.find("SURGE_AUTH_JWT_SECRET") != std::string::npos, show(none));
    CHECK_MESSAGE(none.err.find("data/jwt.secret") != std::string::npos, show(none));

    auto missing = run_token({"token", "--customer=alice", "--secret-file=absent.txt"}, dir.path,
                             {"SURGE_AUTH_JWT_SECRET=" + secret_a});
    CHECK_MESSAGE(missing.code == 1, show(missing));
    CHECK(missing.out.empty());

    const auto empty = dir.write("empty.txt", "\n");
    auto blank = run_token({"token", "--customer=alice", "--secret-file=" + empty}, dir.path);
    CHECK_MESSAGE(blank.code == 1, show(blank));

    const std::string short_secret = "too-short-secret-xyz";
    auto weak = run_token({"token", "--customer=alice"}, dir.path,
                          {"SURGE_AUTH_JWT_SECRET=" + short_secret});
    CHECK_MESSAGE(weak.code == 1, show(weak));
    CHECK_MESSAGE(weak.err.find("32") != std::string::npos, show(weak));
    CHECK(weak.out.empty());
    CHECK(weak.err.find(short_secret) == std::string::npos);
  }

  TEST_CASE("token: usage errors exit 2; --help describes it") {
    scratch_dir dir;
    const auto file = dir.write("s.txt", secret_a);
    const std::vector<std::vector<std::string>> bad = {
        {"token"},
        {"token", "--customer="},
        {"token", "--customer"},
        {"token", "--customer=alice", "--ttl=soon"},
        {"token", "--customer=alice", "--ttl=0"},
        {"token", "--customer=alice", "--ttl=-1h"},
        {"token", "--customer=alice", "--ttl="},
        {"token", "--customer=a\nb"},
        {"token", "--customer=" + std::string(256, 'x')},
        {"token", "--customer=alice", "--customer=bob"},
        {"token", "--customer=alice", "--admin=http://127.0.0.1:1"},
        {"token", "--customer=alice", "--json"},
        {"token", "--customer=alice", "extra"},
        {"--json", "token", "--customer=alice"},
    };
    for (const auto& args : bad) {
      auto with_file = args;
      with_file.push_back("--secret-file=" + file);
      auto r = run_token(with_file, dir.path);
      CHECK_MESSAGE(r.code == 2, show(r));
      CHECK(r.out.empty());
      CHECK_FALSE(r.err.empty());
    }
    auto help = run_token({"token", "--help"}, dir.path);
    CHECK_MESSAGE(help.code == 0, show(help));
    CHECK(help.out.find("--customer=ID") != std::string::npos);
    CHECK(help.out.find("data/jwt.secret") != std::string::npos);
    auto top = run_token({"--help"}, dir.path);
    CHECK_MESSAGE(top.code == 0, show(top));
    CHECK(top.out.find("token --customer=ID") != std::string::npos);
  }

} // TEST_SUITE

} // namespace surge::itest
