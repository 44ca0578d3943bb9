// admin.token: every admin route wants "Authorization: Bearer <token>"; health checks and the
// storefront do not. Admin hygiene (API.md, issue 11 finding 5): after the token, an Origin must be
// the console's own or in admin.allowed_origins (403), and POST/PUT need Content-Type
// application/json (415), so that a web page in a browser on the operator's machine cannot
// change stock.
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

  TEST_CASE("admin writes need Content-Type application/json: 415 otherwise, nothing changes") {
    node_process node{node_config{.admin_token = "secret"}};
    api a{node};
    a.add_product({.sku = "ct-1", .name = "Typed", .price_cents = 300}, 5);
    http_client admin{node.admin_port()};
    admin.set_bearer("secret");

    auto with_type = [](std::string method, std::string target, std::string body,
                        std::vector<std::string> types) {
      return with_headers(request{std::move(method), std::move(target), std::move(body), {}},
                          "Content-Type", std::move(types));
    };
    const std::vector<std::vector<std::string>> refused{
        {"text/plain"},
        {"text/plain;charset=UTF-8"},
        {}, // none at all
        {"application/x-www-form-urlencoded"},
        {"multipart/form-data; boundary=x"},
        {"application/jsonp"},
        {"application/json-patch+json"},
        {"application/*"},
        {""},
        {"application/json", "text/plain"}, // two headers: not one JSON media type
    };
    for (const auto& types : refused) {
      std::string shown;
      for (const auto& t : types) {
        shown += "[" + t + "]";
      }
      INFO("Content-Type " << (types.empty() ? std::string{"(none)"} : shown));
      check_error(
          admin.send(with_type("POST", "/admin/v1/products/ct-1/stock", R"({"set":9})", types)),
          415, "unsupported_media_type");
      check_error(admin.send(with_type("PUT", "/admin/v1/products/ct-1",
                                       R"({"name":"Changed","price_cents":1})", types)),
                  415, "unsupported_media_type");
      check_error(admin.send(with_type("POST", "/admin/v1/nodes/nope/drain", "", types)), 415,
                  "unsupported_media_type");
    }
    // Nothing changed.
    check_stock(a.stock("ct-1"), 5, 0, 0);
    CHECK(str_of(a.product("ct-1"), "name") == "Typed");
    CHECK(int_of(a.product("ct-1"), "price_cents") == 300);

    // JSON, with parameters and in any case, passes; reads need no Content-Type.
    for (const char* t : {"application/json", "application/json; charset=utf-8",
                          "Application/JSON;charset=UTF-8", " application/json "}) {
      INFO("Content-Type [" << t << "]");
      auto r = admin.send(with_type("POST", "/admin/v1/products/ct-1/stock", R"({"add":1})", {t}));
      CHECK_MESSAGE(r.status == 200, describe(r));
    }
    check_stock(a.stock("ct-1"), 9, 0, 0);
    auto get = admin.get("/admin/v1/products/ct-1/stock");
    CHECK_MESSAGE(get.status == 200, describe(get));
    auto renamed =
        admin.send(with_type("PUT", "/admin/v1/products/ct-1",
                             R"({"name":"Renamed","price_cents":300})", {"application/json"}));
    CHECK_MESSAGE(renamed.status == 200, describe(renamed));
    CHECK(str_of(a.product("ct-1"), "name") == "Renamed");
    // A drain with JSON gets past the checks (404: no such node).
    check_error(
        admin.send(with_type("POST", "/admin/v1/nodes/nope/drain", "", {"application/json"})), 404,
        "not_found");

    // The token comes first: without it, 401 whatever the Content-Type.
    auto anon = with_type("POST", "/admin/v1/products/ct-1/stock", R"({"set":1})", {"text/plain"});
    anon.headers.emplace_back("Authorization", "Bearer wrong");
    check_error(admin.send(anon), 401, "unauthorized");
    check_stock(a.stock("ct-1"), 9, 0, 0);
  }

  TEST_CASE("admin requests with a foreign Origin are 403; the console's own and allowed pass") {
    node_process node{node_config{
        .admin_token = "secret",
        .extra = {"--admin.allowed_origins=https://ops.example.com, HTTP://Console.Example:8443"}}};
    api a{node};
    a.add_product({.sku = "or-1", .name = "Origin", .price_cents = 300}, 5);
    http_client admin{node.admin_port()};
    admin.set_bearer("secret");
    const std::string own = "127.0.0.1:" + std::to_string(node.admin_port()); // the Host it sends

    // `method` `target` with one Origin header per entry of `origins`.
    auto from = [](std::vector<std::string> origins, std::string method, std::string target,
                   std::string body) {
      return with_headers(method == "GET"
                              ? request{"GET", std::move(target), {}, {}}
                              : json_request(std::move(method), std::move(target), std::move(body)),
                          "Origin", std::move(origins));
    };
    const std::vector<std::vector<std::string>> foreign{
        {"https://evil.example"},
        {"null"},
        {"http://127.0.0.1:" + std::to_string(node.http_port())}, // another port of this host
        {"http://localhost:" + std::to_string(node.admin_port())},
        {"ftp://" + own},
        {"http://" + own + "/"},
        {"http://" + own + ".evil.example"},
        {"https://ops.example.com:8443"},
        {"https://ops.example.com.evil.example"},
        {"http://ops.example.com"}, // the allowed one is https
        {"https://console.example:8443"},
        {""},
        {"https://evil.example", "https://ops.example.com"}, // two Origin headers
    };
    for (const auto& o : foreign) {
      INFO("Origin [" << o.front() << "] (" << o.size() << " header(s))");
      check_error(admin.send(from(o, "POST", "/admin/v1/products/or-1/stock", R"({"set":9})")), 403,
                  "forbidden");
      check_error(admin.send(from(o, "PUT", "/admin/v1/products/or-1",
                                  R"({"name":"Evil","price_cents":1})")),
                  403, "forbidden");
      check_error(admin.send(from(o, "GET", "/admin/v1/products/or-1/stock", "")), 403,
                  "forbidden");
      check_error(admin.send(from(o, "GET", "/metrics", "")), 403, "forbidden");
    }
    check_stock(a.stock("or-1"), 5, 0, 0);
    CHECK(str_of(a.product("or-1"), "name") == "Origin");

    // The console's own origin (either scheme) and the allowed ones, in any case, pass.
    const std::vector<std::string> accepted{
        "http://" + own,           "https://" + own,          "HTTP://" + own,
        "https://ops.example.com", "HTTPS://OPS.Example.COM", "http://console.example:8443",
    };
    int64_t on_hand = 5;
    for (const auto& o : accepted) {
      INFO("Origin [" << o << "]");
      auto r = admin.send(from({o}, "POST", "/admin/v1/products/or-1/stock", R"({"add":1})"));
      CHECK_MESSAGE(r.status == 200, describe(r));
      ++on_hand;
      r = admin.send(from({o}, "GET", "/admin/v1/products/or-1/stock", ""));
      CHECK_MESSAGE(r.status == 200, describe(r));
    }
    check_stock(a.stock("or-1"), on_hand, 0, 0);

    // Order: token (401), then Origin (403), then Content-Type (415).
    auto req = request{"POST",
                       "/admin/v1/products/or-1/stock",
                       R"({"set":1})",
                       {{"Content-Type", "text/plain"}, {"Origin", "https://evil.example"}}};
    auto no_token = req;
    no_token.headers.emplace_back("Authorization", "Bearer nope");
    check_error(admin.send(no_token), 401, "unauthorized");
    check_error(admin.send(req), 403, "forbidden");
    req.headers[1].second = "https://ops.example.com";
    check_error(admin.send(req), 415, "unsupported_media_type");
    check_stock(a.stock("or-1"), on_hand, 0, 0);
    // The storefront does not check Origin (shoppers' browsers are its clients).
    http_client store{node.http_port()};
    auto p = store.send(from({"https://evil.example"}, "GET", "/api/v1/products/or-1", ""));
    CHECK_MESSAGE(p.status == 200, describe(p));
  }

  TEST_CASE("without admin.token (loopback): a browser page still cannot change stock") {
    // Issue 11, finding 5: the admin API open on loopback took text/plain bodies from any Origin,
    // which a page's fetch() can send without a CORS preflight.
    node_process node;
    api a{node};
    a.add_product({.sku = "op-1", .name = "Open", .price_cents = 300}, 5);
    http_client admin{node.admin_port()};
    // What fetch("http://127.0.0.1:9090/...", {method: "POST", mode: "no-cors", body}) sends.
    check_error(admin.send(request{"POST",
                                   "/admin/v1/products/op-1/stock",
                                   R"({"set":0})",
                                   {{"Content-Type", "text/plain;charset=UTF-8"},
                                    {"Origin", "https://evil.example"}}}),
                403, "forbidden");
    check_error(admin.send(request{"POST",
                                   "/admin/v1/products/op-1/stock",
                                   R"({"set":0})",
                                   {{"Content-Type", "text/plain;charset=UTF-8"}}}),
                415, "unsupported_media_type");
    check_error(admin.send(request{
                    "PUT",
                    "/admin/v1/products/op-1",
                    R"({"name":"Evil","price_cents":1})",
                    {{"Content-Type", "application/json"}, {"Origin", "https://evil.example"}}}),
                403, "forbidden");
    check_stock(a.stock("op-1"), 5, 0, 0);
    CHECK(str_of(a.product("op-1"), "name") == "Open");
    // curl and surgectl (no Origin, JSON) still work.
    auto r = admin.post("/admin/v1/products/op-1/stock", R"({"set":7})");
    CHECK_MESSAGE(r.status == 200, describe(r));
    check_stock(a.stock("op-1"), 7, 0, 0);
  }

} // TEST_SUITE

} // namespace surge::itest
