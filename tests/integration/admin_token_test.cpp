// admin.token: every admin route wants "Authorization: Bearer <token>"; health checks and the
// storefront do not.
#include <doctest/doctest.h>

#include <algorithm>

#include <string>
#include <vector>

#include "api.hpp"

namespace surge::itest {

TEST_SUITE("admin_token") {

  TEST_CASE("with --admin.token: no or wrong token 401, right token 200, /healthz open") {
    node_process node{node_config{.admin_token = "secret"}};
    http_client admin{node.admin_port()}; // sends no token unless told
    api a{node};                          // sends the right one

    struct route {
      std::string method;
      std::string target;
      std::string body;
    };
    const std::vector<route> routes{
        {"PUT", "/admin/v1/products/tok-1", R"({"name":"Token","price_cents":100})"},
        {"POST", "/admin/v1/products/tok-1/stock", R"({"set":5})"},
        {"GET", "/admin/v1/products/tok-1/stock", ""},
        {"GET", "/admin/v1/cluster", ""},
        {"GET", "/metrics", ""},
    };
    for (const auto& rt : routes) {
      INFO(rt.method << " " << rt.target);
      auto req = json_request(rt.method, rt.target, rt.body);
      check_error(admin.send(req), 401);
      for (const char* wrong :
           {"Bearer secreT", "Bearer secret2", "Bearer ", "secret", "Basic c2VjcmV0"}) {
        INFO("Authorization: " << wrong);
        auto bad = req;
        bad.headers.emplace_back("Authorization", wrong);
        check_error(admin.send(bad), 401);
      }
      auto good = req;
      good.headers.emplace_back("Authorization", "Bearer secret");
      auto r = admin.send(good);
      CHECK_MESSAGE(r.status == 200, describe(r));
    }
    // Only the authorized changes happened.
    check_stock(a.stock("tok-1"), 5, 0, 0);

    auto cluster = a.admin().get("/admin/v1/cluster");
    REQUIRE_MESSAGE(cluster.status == 200, describe(cluster));
    const auto c = parse_json(cluster.body);
    // API.md's members (more may follow them).
    auto has_all = [](const json::value& obj, std::vector<std::string> want) {
      const auto keys = keys_of(obj);
      return std::all_of(want.begin(), want.end(), [&](const std::string& k) {
        return std::find(keys.begin(), keys.end(), k) != keys.end();
      });
    };
    CHECK(has_all(c, {"nodes", "shards"}));
    CHECK(int_of(c, "shards") == 256);
    REQUIRE(array_of(c, "nodes").size() == 1);
    const auto& n = array_of(c, "nodes")[0];
    CHECK(has_all(n, {"actors", "address", "node_id", "shards", "status"}));
    CHECK(str_of(n, "status") == "up");
    CHECK(int_of(n, "shards") == 256); // a cluster of one owns every shard
    CHECK(a.metric("surge_up") == 1);

    // Health checks need no token, on either port; nor does the storefront.
    CHECK(admin.get("/healthz").status == 200);
    CHECK(admin.get("/readyz").status == 200);
    http_client store{node.http_port()};
    CHECK(store.get("/healthz").status == 200);
    auto p = store.get("/api/v1/products/tok-1");
    CHECK_MESSAGE(p.status == 200, describe(p));
    // The storefront has no admin routes.
    auto req = json_request("POST", "/admin/v1/products/tok-1/stock", R"({"set":9})");
    req.headers.emplace_back("Authorization", "Bearer secret");
    CHECK(store.send(req).status == 404);
    check_stock(a.stock("tok-1"), 5, 0, 0);
  }

} // TEST_SUITE

} // namespace surge::itest
