#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "listener_options.hpp"
#include "surge/net/json.hpp"
#include "surge/net/router.hpp"
#include "surge/net/server.hpp"

using namespace surge::net;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

using response = bhttp::response<bhttp::string_body>;

/// A synchronous Beast client on one connection. Hangs are caught by the ctest timeout.
class client {
 public:
  explicit client(uint16_t port)
      : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  response request(bhttp::verb method, std::string target, std::string body = {},
                   std::vector<std::pair<std::string, std::string>> headers = {},
                   unsigned version = 11) {
    send(method, std::move(target), std::move(body), std::move(headers), version);
    return read();
  }

  void send(bhttp::verb method, std::string target, std::string body = {},
            std::vector<std::pair<std::string, std::string>> headers = {}, unsigned version = 11) {
    bhttp::request<bhttp::string_body> req{method, target, version};
    req.set(bhttp::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) {
      req.set(k, v);
    }
    req.body() = std::move(body);
    req.prepare_payload();
    bhttp::write(socket_, req);
  }

  void send_raw(std::string_view raw) {
    asio::write(socket_, asio::buffer(raw.data(), raw.size()));
  }

  response read() {
    response res;
    bhttp::read(socket_, buffer_, res);
    return res;
  }

  /// True when the server has closed the connection (the next read sees end of stream/reset).
  bool closed_by_server() {
    response res;
    beast::error_code ec;
    bhttp::read(socket_, buffer_, res, ec);
    return ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::eof;
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

std::string error_code_of(const response& r) {
  auto v = json::parse(r.body());
  REQUIRE(std::holds_alternative<json::value>(v));
  const auto* e = std::get<json::value>(v).find("error");
  REQUIRE(e != nullptr);
  return std::get<std::string>(e->find("code")->get());
}

http_response text(std::string body, int status = 200) {
  http_response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

/// Joins helper threads that answer requests late.
struct late_threads {
  std::mutex mu;
  std::vector<std::thread> threads;
  void spawn(std::function<void()> f) {
    std::lock_guard lk(mu);
    threads.emplace_back(std::move(f));
  }
  ~late_threads() {
    for (auto& t : threads) {
      t.join();
    }
  }
};

} // namespace

TEST_CASE("server: keep-alive, headers, Connection: close and HTTP/1.0") {
  auto opts = surge::test::listener();
  http_server srv(opts, [](http_request&& req, responder r) {
    http_response resp;
    resp.body = "{\"path\":";
    json::append_quoted(resp.body, req.path);
    resp.body += ",\"body\":";
    json::append_quoted(resp.body, req.body);
    resp.body += "}";
    resp.headers.emplace_back("X-Method", req.method);
    resp.headers.emplace_back("X-Bad", "a\r\nInjected: 1"); // dropped
    r(std::move(resp));
  });
  REQUIRE_FALSE(srv.start());
  REQUIRE(srv.port() != 0);

  {
    client c(srv.port());
    for (int i = 0; i < 5; ++i) {
      auto res =
          c.request(bhttp::verb::post, "/echo/" + std::to_string(i), "b" + std::to_string(i));
      CHECK(res.result_int() == 200);
      CHECK(res.keep_alive());
      CHECK(res[bhttp::field::server] == "surge");
      CHECK(res[bhttp::field::content_type] == "application/json");
      CHECK(res[bhttp::field::content_length] == std::to_string(res.body().size()));
      CHECK(res["X-Method"] == "POST");
      CHECK(res.count("Injected") == 0);
      CHECK(res.body() == "{\"path\":\"/echo/" + std::to_string(i) + "\",\"body\":\"b" +
                              std::to_string(i) + "\"}");
    }
    CHECK(srv.open_connections() == 1);
    auto res = c.request(bhttp::verb::get, "/last", {}, {{"Connection", "close"}});
    CHECK(res.result_int() == 200);
    CHECK_FALSE(res.keep_alive());
    CHECK(c.closed_by_server());
  }
  {
    client c(srv.port());
    auto res = c.request(bhttp::verb::get, "/old", {}, {}, 10);
    CHECK(res.result_int() == 200);
    CHECK(res.version() == 10);
    CHECK_FALSE(res.keep_alive());
    CHECK(c.closed_by_server());
  }
  {
    client c(srv.port());
    auto res = c.request(bhttp::verb::get, "/old", {}, {{"Connection", "keep-alive"}}, 10);
    CHECK(res.keep_alive());
    res = c.request(bhttp::verb::get, "/again", {}, {{"Connection", "keep-alive"}}, 10);
    CHECK(res.result_int() == 200);
  }
  {
    // Two pipelined requests in one write: answered in order.
    client c(srv.port());
    c.send_raw("GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c.read().body().find("/p1") != std::string::npos);
    CHECK(c.read().body().find("/p2") != std::string::npos);
  }
  CHECK(srv.requests_served() == 11);
  srv.stop();
}

TEST_CASE("server: drain() answers with Connection: close but keeps accepting") {
  auto opts = surge::test::listener();
  http_server srv(opts, [](http_request&&, responder r) {
    http_response resp;
    resp.body = "{}";
    r(std::move(resp));
  });
  REQUIRE_FALSE(srv.start());
  client kept(srv.port());
  auto res = kept.request(bhttp::verb::get, "/a");
  CHECK(res.keep_alive());

  srv.drain();
  srv.drain(); // idempotent
  // The kept-alive connection gets its next answer, then the server closes it.
  res = kept.request(bhttp::verb::get, "/b");
  CHECK(res.result_int() == 200);
  CHECK_FALSE(res.keep_alive());
  CHECK(kept.closed_by_server());
  // New connections are still accepted and served, one request each.
  for (int i = 0; i < 3; ++i) {
    client c(srv.port());
    res = c.request(bhttp::verb::get, "/c");
    CHECK(res.result_int() == 200);
    CHECK_FALSE(res.keep_alive());
    CHECK(c.closed_by_server());
  }
  CHECK(srv.requests_served() == 5);
  srv.stop();
}

TEST_CASE("server: responder called from another thread, once") {
  late_threads late;
  std::atomic<int> extra_calls{0};
  auto opts = surge::test::listener();
  http_server srv(opts, [&](http_request&& req, responder r) {
    late.spawn([&, r, path = req.path] {
      std::this_thread::sleep_for(50ms); // the work being slow, not synchronisation
      r(text("late " + path));
      r(text("second answer", 500)); // ignored
      extra_calls.fetch_add(1);
    });
  });
  REQUIRE_FALSE(srv.start());
  client c(srv.port());
  for (int i = 0; i < 3; ++i) {
    auto res = c.request(bhttp::verb::get, "/slow" + std::to_string(i));
    CHECK(res.result_int() == 200);
    CHECK(res.body() == "late /slow" + std::to_string(i));
    CHECK(res[bhttp::field::content_type] == "text/plain");
  }
  CHECK(srv.requests_served() == 3);
}

TEST_CASE("server: handler timeout answers 503, the late answer is ignored") {
  std::mutex mu;
  std::vector<responder> parked;
  auto opts = surge::test::listener();
  opts.handler_timeout = 100ms;
  http_server srv(opts, [&](http_request&& req, responder r) {
    if (req.path == "/ok") {
      r(text("ok"));
      return;
    }
    if (req.path == "/throw") {
      throw std::runtime_error("boom");
    }
    std::lock_guard lk(mu);
    parked.push_back(std::move(r));
  });
  REQUIRE_FALSE(srv.start());
  client c(srv.port());
  auto res = c.request(bhttp::verb::get, "/never");
  CHECK(res.result_int() == 503);
  CHECK(error_code_of(res) == "unavailable");
  CHECK(res.keep_alive());
  {
    std::lock_guard lk(mu);
    REQUIRE(parked.size() == 1);
    parked[0](text("too late")); // ignored
  }
  res = c.request(bhttp::verb::get, "/ok");
  CHECK(res.result_int() == 200);
  CHECK(res.body() == "ok");
  res = c.request(bhttp::verb::get, "/throw");
  CHECK(res.result_int() == 500);
  res = c.request(bhttp::verb::get, "/ok");
  CHECK(res.body() == "ok");
}

TEST_CASE("server: limit errors over the socket, then the connection is closed") {
  auto opts = surge::test::listener();
  opts.body_limit = 1024;
  opts.header_limit = 2048;
  opts.target_limit = 512;
  std::atomic<int> handled{0};
  http_server srv(opts, [&](http_request&&, responder r) {
    handled.fetch_add(1);
    r(text("ok"));
  });
  REQUIRE_FALSE(srv.start());
  {
    client c(srv.port());
    CHECK(c.request(bhttp::verb::get, "/fine").result_int() == 200);
    c.send_raw("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
               std::string(100000, 'x'));
    auto res = c.read();
    CHECK(res.result_int() == 413);
    CHECK(error_code_of(res) == "too_large");
    CHECK_FALSE(res.keep_alive());
    CHECK(c.closed_by_server());
  }
  // {what is sent, the status, the error code (empty: not checked)}: each on a connection of
  // its own, which the server closes after answering.
  const std::tuple<std::string, int, std::string> refused[] = {
      {"POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "400\r\n" +
           std::string(1024, 'x') + "\r\n1\r\nx\r\n0\r\n\r\n",
       413, ""},
      {"GET /x HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n", 431, ""},
      {"GET /" + std::string(1000, 'a') + " HTTP/1.1\r\n\r\n", 414, ""},
      {"HELLO\x01 there\r\n\r\n", 400, "bad_request"},
      {"GET /a%zz HTTP/1.1\r\n\r\n", 400, ""},
  };
  for (const auto& [raw, status, code] : refused) {
    CAPTURE(status);
    client c(srv.port());
    c.send_raw(raw);
    auto res = c.read();
    CHECK(res.result_int() == status);
    if (!code.empty()) {
      CHECK(error_code_of(res) == code);
    }
    CHECK(c.closed_by_server());
  }
  {
    // Expect: 100-continue gets its interim response, then the final one.
    client c(srv.port());
    c.send_raw("PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    auto cont = c.read();
    CHECK(cont.result_int() == 100);
    c.send_raw("abc");
    CHECK(c.read().result_int() == 200);
  }
  CHECK(handled.load() == 2);
}

TEST_CASE("server: idle keep-alive connections are closed") {
  auto opts = surge::test::listener();
  opts.idle_timeout = 100ms;
  opts.read_timeout = 50ms; // shorter, but it bounds requests, not the wait for one
  http_server srv(opts, [](http_request&&, responder r) { r(text("ok")); });
  REQUIRE_FALSE(srv.start());
  client c(srv.port());
  CHECK(c.request(bhttp::verb::get, "/").result_int() == 200);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(c.closed_by_server()); // silently: no 408 for a connection between requests
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("server: a request not whole within read_timeout gets 408 timeout, then close") {
  auto opts = surge::test::listener();
  opts.read_timeout = 300ms;
  opts.idle_timeout = 60s;
  std::atomic<int> handled{0};
  http_server srv(opts, [&](http_request&&, responder r) {
    handled.fetch_add(1);
    r(text("ok"));
  });
  REQUIRE_FALSE(srv.start());
  auto expect_408 = [](client& c) {
    auto res = c.read();
    CHECK(res.result_int() == 408);
    CHECK(error_code_of(res) == "timeout");
    CHECK(res[bhttp::field::content_type] == "application/json");
    CHECK_FALSE(res.keep_alive());
    CHECK(c.closed_by_server());
  };
  // Sends `raw` on a new connection and never the rest: the request times out.
  auto cut_short = [&](const std::string& raw) {
    client c(srv.port());
    c.send_raw(raw);
    expect_408(c);
  };
  SUBCASE("header cut short") {
    cut_short("GET /slow HTTP/1.1\r\nHost: x\r\n");
  }
  SUBCASE("body cut short") {
    cut_short("PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"q");
  }
  SUBCASE("chunked body cut short") {
    cut_short("PUT /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n");
  }
  SUBCASE("after 100 Continue, no body") {
    client c(srv.port());
    c.send_raw("PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    CHECK(c.read().result_int() == 100);
    expect_408(c);
  }
  SUBCASE("a new connection that sends nothing") {
    client c(srv.port());
    expect_408(c);
  }
  SUBCASE("the second request of a kept-alive connection, cut short") {
    client c(srv.port());
    CHECK(c.request(bhttp::verb::get, "/first").result_int() == 200);
    c.send_raw("GET /second HTTP/1.1\r\nHo");
    expect_408(c);
  }
  srv.stop();
  CHECK(handled.load() <= 1);
}

TEST_CASE("server: Host and Transfer-Encoding hygiene over the socket") {
  auto opts = surge::test::listener();
  std::atomic<int> handled{0};
  http_server srv(opts, [&](http_request&&, responder r) {
    handled.fetch_add(1);
    r(text("ok"));
  });
  REQUIRE_FALSE(srv.start());
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const std::string bad[] = {
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" + body,
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n" + body,
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n" + body,
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n" + body,
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + body,
  };
  for (const auto& raw : bad) {
    CAPTURE(raw);
    client c(srv.port());
    c.send_raw(raw);
    auto res = c.read();
    CHECK(res.result_int() == 400);
    CHECK(error_code_of(res) == "bad_request");
    CHECK(c.closed_by_server());
  }
  CHECK(handled.load() == 0);
  {
    // HTTP/1.0 without Host, and HTTP/1.1 chunked, are served.
    client c(srv.port());
    c.send_raw("GET /old HTTP/1.0\r\n\r\n");
    CHECK(c.read().result_int() == 200);
    client d(srv.port());
    d.send_raw("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
    CHECK(d.read().result_int() == 200);
  }
  CHECK(handled.load() == 2);
  srv.stop();
}

TEST_CASE("server: the request carries the connection's peer address") {
  auto opts = surge::test::listener();
  http_server srv(opts, [](http_request&& req, responder r) { r(text(req.peer.to_string())); });
  REQUIRE_FALSE(srv.start());
  client c(srv.port());
  CHECK(c.request(bhttp::verb::get, "/").body() == "127.0.0.1");
  // X-Forwarded-For does not change the peer.
  CHECK(c.request(bhttp::verb::get, "/", {}, {{"X-Forwarded-For", "198.51.100.1"}}).body() ==
        "127.0.0.1");
  srv.stop();
}

TEST_CASE("server: 200 concurrent connections") {
  constexpr int connections = 200;
  constexpr int per_connection = 3;
  auto opts = surge::test::listener();
  opts.io_threads = 2;
  http_server srv(opts, [](http_request&& req, responder r) { r(text(req.path)); });
  REQUIRE_FALSE(srv.start());

  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  threads.reserve(connections);
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back([&, i] {
      try {
        client c(srv.port());
        for (int j = 0; j < per_connection; ++j) {
          const std::string target = "/c" + std::to_string(i) + "/r" + std::to_string(j);
          auto res = c.request(bhttp::verb::get, target);
          if (res.result_int() == 200 && res.body() == target) {
            ok.fetch_add(1);
          } else {
            failed.fetch_add(1);
          }
        }
      } catch (const std::exception&) {
        failed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(ok.load() == connections * per_connection);
  CHECK(failed.load() == 0);
  CHECK(srv.requests_served() == static_cast<uint64_t>(connections * per_connection));
  CHECK(std::chrono::steady_clock::now() - t0 < 30s);
}

TEST_CASE("server: max_connections") {
  auto opts = surge::test::listener();
  opts.max_connections = 2;
  http_server srv(opts, [](http_request&&, responder r) { r(text("ok")); });
  REQUIRE_FALSE(srv.start());
  client a(srv.port());
  client b(srv.port());
  CHECK(a.request(bhttp::verb::get, "/").result_int() == 200);
  CHECK(b.request(bhttp::verb::get, "/").result_int() == 200);
  CHECK(srv.open_connections() == 2);
  client c(srv.port()); // accepted and closed at once
  CHECK(c.closed_by_server());
  CHECK(a.request(bhttp::verb::get, "/").result_int() == 200);
}

TEST_CASE("server: stop() lets in-flight requests finish") {
  late_threads late;
  std::promise<void> arrived;
  auto opts = surge::test::listener();
  http_server srv(opts, [&](http_request&&, responder r) {
    arrived.set_value();
    late.spawn([r] {
      std::this_thread::sleep_for(200ms); // slow work
      r(text("finished"));
    });
  });
  REQUIRE_FALSE(srv.start());
  client idle(srv.port());
  client c(srv.port());
  c.send(bhttp::verb::get, "/work");
  arrived.get_future().wait();
  srv.stop(5s);
  auto res = c.read();
  CHECK(res.result_int() == 200);
  CHECK(res.body() == "finished");
  CHECK_FALSE(res.keep_alive());
  CHECK(c.closed_by_server());
  CHECK(idle.closed_by_server());
  srv.stop(); // twice: no effect
  CHECK(srv.requests_served() == 1);
  // No longer accepting.
  beast::error_code ec;
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port()), ec);
  CHECK(ec);
}

TEST_CASE("server: stop() closes requests that outlast the grace period") {
  std::mutex mu;
  std::vector<responder> parked;
  std::promise<void> arrived;
  responder survivor;
  {
    auto opts = surge::test::listener();
    opts.io_threads = 3;
    http_server srv(opts, [&](http_request&&, responder r) {
      std::lock_guard lk(mu);
      parked.push_back(std::move(r));
      arrived.set_value();
    });
    REQUIRE_FALSE(srv.start());
    client c(srv.port());
    c.send(bhttp::verb::get, "/stuck");
    arrived.get_future().wait();
    const auto t0 = std::chrono::steady_clock::now();
    srv.stop(100ms);
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    CHECK(c.closed_by_server());
    std::lock_guard lk(mu);
    REQUIRE(parked.size() == 1);
    survivor = parked[0];
  }
  // The server is gone: calling the responder does nothing.
  survivor(text("after destruction"));
}

TEST_CASE("server: HEAD is answered by the GET route with its headers and no body") {
  auto opts = surge::test::listener();
  router rt;
  rt.add("GET", "/thing", [](http_request&&, path_params&&, responder r) { r(text("hello")); });
  http_server srv(
      opts, [&rt](http_request&& req, responder r) { rt.dispatch(std::move(req), std::move(r)); });
  REQUIRE_FALSE(srv.start());
  asio::io_context ioc;
  tcp::socket sock{ioc};
  sock.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), srv.port()});
  const std::string req = "HEAD /thing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  asio::write(sock, asio::buffer(req));
  std::string all;
  beast::error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) { // until the server closes (bounded)
    char buf[512];
    auto n = sock.read_some(asio::buffer(buf), ec);
    all.append(buf, n);
  }
  CHECK(all.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(all.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(all.size() >= 4);
  CHECK(all.substr(all.size() - 4) == "\r\n\r\n"); // headers only
  // A method no route has: 405 naming GET and HEAD.
  client c(srv.port());
  auto res = c.request(bhttp::verb::put, "/thing");
  CHECK(res.result_int() == 405);
  CHECK(res[bhttp::field::allow] == "GET, HEAD");
  srv.stop();
}

TEST_CASE("server: X-Request-Id is kept when valid, else made, and echoed on every response") {
  auto opts = surge::test::listener();
  opts.handler_timeout = 100ms;
  opts.body_limit = 1024;
  std::mutex mu;
  std::vector<responder> parked;
  std::string seen; // the id the handler got last
  http_server srv(opts, [&](http_request&& req, responder r) {
    std::lock_guard lk(mu);
    seen = req.request_id;
    if (req.path == "/never") {
      parked.push_back(std::move(r));
      return;
    }
    if (req.path == "/throw") {
      throw std::runtime_error("boom");
    }
    r(text("ok", req.path == "/missing" ? 404 : 200));
  });
  REQUIRE_FALSE(srv.start());
  auto id_of = [&] {
    std::lock_guard lk(mu);
    return seen;
  };
  auto is_made = [](const std::string& id) {
    return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  client c(srv.port());

  auto res = c.request(bhttp::verb::get, "/ok", {}, {{"X-Request-Id", "a.B_c:9-z"}});
  CHECK(res["X-Request-Id"] == "a.B_c:9-z");
  CHECK(id_of() == "a.B_c:9-z");
  const std::string longest(128, 'x');
  res = c.request(bhttp::verb::get, "/ok", {}, {{"X-Request-Id", longest}});
  CHECK(res["X-Request-Id"] == longest);

  // Absent, too long, or with other characters: a new one, different each time.
  res = c.request(bhttp::verb::get, "/ok");
  const std::string first{res["X-Request-Id"]};
  CHECK(is_made(first));
  CHECK(id_of() == first);
  for (const std::string& bad :
       {std::string(129, 'x'), std::string{"a b"}, std::string{"a/b"}, std::string{"\xc3\xa9"}}) {
    res = c.request(bhttp::verb::get, "/ok", {}, {{"X-Request-Id", bad}});
    CHECK(is_made(std::string{res["X-Request-Id"]}));
    CHECK(res["X-Request-Id"] != first);
  }

  // The server's own answers to a request carry it: 4xx of the handler, 503, 500, 413.
  res = c.request(bhttp::verb::get, "/missing", {}, {{"X-Request-Id", "r404"}});
  CHECK(res.result_int() == 404);
  CHECK(res["X-Request-Id"] == "r404");
  res = c.request(bhttp::verb::get, "/never", {}, {{"X-Request-Id", "r503"}});
  CHECK(res.result_int() == 503);
  CHECK(res["X-Request-Id"] == "r503");
  res = c.request(bhttp::verb::get, "/throw", {}, {{"X-Request-Id", "r500"}});
  CHECK(res.result_int() == 500);
  CHECK(res["X-Request-Id"] == "r500");
  // A chunked body over the limit is refused once the header is in; a Content-Length over it is
  // refused while the header is read, before the request has an id.
  c.send_raw("POST /big HTTP/1.1\r\nHost: x\r\nX-Request-Id: r413\r\n"
             "Transfer-Encoding: chunked\r\n\r\n1388\r\n" +
             std::string(5000, 'x') + "\r\n0\r\n\r\n");
  res = c.read();
  CHECK(res.result_int() == 413);
  CHECK(res["X-Request-Id"] == "r413");
  std::lock_guard lk(mu);
  parked.clear();
}

namespace {

/// Everything the server sends on one connection for `raw` (followed by a request that closes
/// it): read until the server closes (bounded).
std::string exchange(uint16_t port, const std::string& raw) {
  asio::io_context ioc;
  tcp::socket sock{ioc};
  sock.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
  const std::string all_in = raw + "GET /plain/end HTTP/1.1\r\nHost: x\r\nX-Request-Id: "
                                   "rid-end\r\nConnection: close\r\n\r\n";
  asio::write(sock, asio::buffer(all_in));
  std::string all;
  beast::error_code ec;
  for (int i = 0; i < 1000 && !ec; ++i) {
    char buf[4096];
    auto n = sock.read_some(asio::buffer(buf), ec);
    all.append(buf, n);
  }
  return all;
}

/// The responses the ready-response test sends, by name.
http_response sample_response(std::string_view name) {
  http_response r;
  if (name == "page") {
    r.content_type = "text/html; charset=utf-8";
    r.headers.emplace_back("ETag", "\"0123456789abcdef\"");
    r.headers.emplace_back("Cache-Control", "public, max-age=5, stale-while-revalidate=30");
    r.body = "<!doctype html>\n<p>" + std::string(3000, 'x') + "</p>\n";
  } else if (name == "not-modified") {
    r.status = 304;
    r.content_type = "text/html; charset=utf-8";
    r.headers.emplace_back("ETag", "\"0123456789abcdef\"");
  } else if (name == "no-content") {
    r.status = 204;
  } else if (name == "empty") {
    r.body.clear();
  } else if (name == "error") {
    r = error_response(404, "not_found", "no such thing");
  } else if (name == "odd") {
    r.status = 700; // sent as 500
    r.content_type = "bad\r\ntype";
    r.headers.emplace_back("X-Bad", "a\r\nInjected: 1");
    r.headers.emplace_back("X-Good", "yes");
    r.body = "{}";
  }
  return r;
}

} // namespace

TEST_CASE("server: a ready response is sent byte for byte as the plain one") {
  auto opts = surge::test::listener();
  late_threads late;
  // /plain/NAME answers sample_response(NAME), /ready/NAME its ready form inside the handler
  // call, /later/NAME the ready form from another thread.
  http_server srv(opts, [&late](http_request&& req, responder r) {
    const auto& kind = req.segments.at(0);
    auto resp = sample_response(req.segments.at(1));
    if (kind == "plain") {
      r(std::move(resp));
    } else if (kind == "ready") {
      r(with_ready(make_ready(resp)));
    } else {
      late.spawn([r, resp = std::move(resp)] { r(with_ready(make_ready(resp))); });
    }
  });
  REQUIRE_FALSE(srv.start());

  for (std::string name : {"page", "not-modified", "no-content", "empty", "error", "odd"}) {
    for (std::string method : {"GET", "HEAD"}) {
      for (std::string tail : {"HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n", "HTTP/1.0\r\n",
                               "HTTP/1.0\r\nConnection: keep-alive\r\n"}) {
        CAPTURE(name);
        CAPTURE(method);
        CAPTURE(tail);
        auto raw = [&](std::string_view kind) {
          return method + " /" + std::string{kind} + "/" + name + " " + tail +
                 "Host: x\r\nX-Request-Id: rid-1\r\n\r\n";
        };
        const auto plain = exchange(srv.port(), raw("plain"));
        CHECK(plain.rfind("HTTP/1.", 0) == 0);
        CHECK(plain.find("\r\n\r\n") != std::string::npos);
        CHECK(exchange(srv.port(), raw("ready")) == plain);
        CHECK(exchange(srv.port(), raw("later")) == plain);
      }
    }
  }
  const auto page = exchange(srv.port(), "GET /ready/page HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(page.find("Content-Length: " + std::to_string(sample_response("page").body.size()) +
                  "\r\n") != std::string::npos);
  CHECK(page.find("ETag: \"0123456789abcdef\"\r\n") != std::string::npos);
  srv.stop();
}

TEST_CASE("server: the exact bytes of a response (status line, header order, length, HEAD)") {
  // Pinned as Beast's serializer wrote them before the server wrote heads itself.
  auto opts = surge::test::listener();
  http_server srv(opts, [](http_request&&, responder r) { r(sample_response("odd")); });
  REQUIRE_FALSE(srv.start());
  CHECK(exchange(srv.port(), "GET /x HTTP/1.1\r\nHost: x\r\nX-Request-Id: rid-7\r\n"
                             "Connection: close\r\n\r\n") ==
        "HTTP/1.1 500 Internal Server Error\r\nServer: surge\r\nX-Good: yes\r\n"
        "X-Request-Id: rid-7\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
  CHECK(exchange(srv.port(), "HEAD /x HTTP/1.0\r\nHost: x\r\nX-Request-Id: rid-8\r\n\r\n") ==
        "HTTP/1.0 500 Internal Server Error\r\nServer: surge\r\nX-Good: yes\r\n"
        "X-Request-Id: rid-8\r\nContent-Length: 2\r\n\r\n");
}
TEST_CASE("server: plain() and body_size() read a ready response's fields") {
  const auto resp = sample_response("page");
  const auto ready = with_ready(make_ready(resp));
  CHECK(ready.status == 200);
  CHECK(ready.body.empty());
  CHECK(ready.body_size() == resp.body.size());
  const auto back = plain(ready);
  CHECK_FALSE(back.ready);
  CHECK(back.status == resp.status);
  CHECK(back.content_type == resp.content_type);
  CHECK(back.headers == resp.headers);
  CHECK(back.body == resp.body);
  const auto nm = make_ready(sample_response("not-modified"));
  CHECK(nm->body.empty());
  CHECK(nm->length_line == "Content-Length: 0\r\n");
  CHECK(nm->head.find("Content-Type") == std::string::npos);
}

// --- Streamed responses (http_response::stream) ---

namespace {

/// A raw client of one streamed response: sends `raw`, then reads what arrives.
class stream_client {
 public:
  stream_client(uint16_t port, const std::string& raw)
      : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::write(socket_, asio::buffer(raw));
  }

  /// Reads until `what` has arrived (true) or the server closed the connection (false).
  bool read_until(std::string_view what) {
    while (got_.find(what) == std::string::npos) {
      char buf[4096];
      beast::error_code ec;
      const auto n = socket_.read_some(asio::buffer(buf), ec);
      got_.append(buf, n);
      if (ec) {
        return got_.find(what) != std::string::npos;
      }
    }
    return true;
  }

  /// Reads until the server closes the connection; true when it did (EOF or reset).
  bool read_to_close() {
    for (;;) {
      char buf[4096];
      beast::error_code ec;
      const auto n = socket_.read_some(asio::buffer(buf), ec);
      got_.append(buf, n);
      if (ec) {
        return ec == asio::error::eof || ec == asio::error::connection_reset;
      }
    }
  }

  const std::string& got() const { return got_; }
  std::string head() const { return got_.substr(0, got_.find("\r\n\r\n") + 4); }
  std::string body() const { return got_.substr(got_.find("\r\n\r\n") + 4); }
  void close() {
    beast::error_code ignored;
    socket_.close(ignored);
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  std::string got_;
};

/// The data of a chunked body (`raw`, up to and including the last chunk); "!" when malformed.
std::string unchunk(std::string_view raw) {
  std::string out;
  for (;;) {
    const auto eol = raw.find("\r\n");
    if (eol == std::string_view::npos) {
      return "!";
    }
    const auto size = std::stoul(std::string(raw.substr(0, eol)), nullptr, 16);
    raw.remove_prefix(eol + 2);
    if (size == 0) {
      return raw == "\r\n" ? out : "!";
    }
    if (raw.size() < size + 2 || raw.substr(size, 2) != "\r\n") {
      return "!";
    }
    out.append(raw.substr(0, size));
    raw.remove_prefix(size + 2);
  }
}

/// A server whose every request is answered with a stream, its sink handed to the test.
struct stream_server {
  explicit stream_server(server_options opts = surge::test::listener())
      : srv(opts, [this](http_request&&, responder r) {
        http_response resp;
        resp.content_type = "text/event-stream";
        resp.headers.emplace_back("Cache-Control", "no-store");
        resp.stream = [this](std::shared_ptr<stream_sink> s) {
          s->on_close([this] { closed.set_value(); });
          sinks.set_value(std::move(s));
        };
        r(std::move(resp));
      }) {
    REQUIRE_FALSE(srv.start());
  }

  std::promise<std::shared_ptr<stream_sink>> sinks;
  std::promise<void> closed; ///< set by the stream's on_close
  http_server srv;
};

constexpr std::string_view get11 = "GET /s HTTP/1.1\r\nHost: x\r\nX-Request-Id: rid-s\r\n\r\n";

} // namespace

TEST_CASE("server: a streamed response is chunked and its pieces arrive in order") {
  stream_server ss;
  stream_client c(ss.srv.port(), std::string(get11));
  auto sink = ss.sinks.get_future().get();
  std::string expected;
  std::thread producer([&] {
    for (int i = 0; i < 2000; ++i) {
      CHECK(sink->send("piece-" + std::to_string(i) + "\n"));
    }
    sink->send(""); // nothing
    sink->close();
  });
  for (int i = 0; i < 2000; ++i) {
    expected += "piece-" + std::to_string(i) + "\n";
  }
  producer.join();
  CHECK(c.read_to_close());
  const auto head = c.head();
  CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(head.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(head.find("Content-Type: text/event-stream\r\n") != std::string::npos);
  CHECK(head.find("Cache-Control: no-store\r\n") != std::string::npos);
  CHECK(head.find("X-Request-Id: rid-s\r\n") != std::string::npos);
  CHECK(head.find("Content-Length") == std::string::npos);
  CHECK(unchunk(c.body()) == expected);
  ss.closed.get_future().get();
  CHECK_FALSE(sink->open());
  CHECK_FALSE(sink->send("late"));
  CHECK(ss.srv.requests_served() == 1);
}

TEST_CASE("server: a stream closed by the client tells the producer") {
  stream_server ss;
  stream_client c(ss.srv.port(), std::string(get11));
  auto sink = ss.sinks.get_future().get();
  CHECK(sink->send("hello"));
  CHECK(c.read_until("5\r\nhello\r\n"));
  c.close();
  ss.closed.get_future().get();
  CHECK_FALSE(sink->open());
  CHECK_FALSE(sink->send("gone"));
  bool called = false;
  sink->on_close([&] { called = true; }); // ended already: at once
  CHECK(called);
}

TEST_CASE("server: a streaming client that does not read is dropped") {
  SUBCASE("too much queued") {
    auto opts = surge::test::listener();
    opts.stream_queue_limit = 64 * 1024;
    stream_server ss(opts);
    stream_client c(ss.srv.port(), std::string(get11));
    auto sink = ss.sinks.get_future().get();
    auto closed = ss.closed.get_future();
    const std::string piece(16 * 1024, 'x');
    // The socket buffers fill, then the queue passes the limit: dropped.
    while (closed.wait_for(0s) != std::future_status::ready) {
      sink->send(piece);
      std::this_thread::yield();
    }
    CHECK_FALSE(sink->open());
  }
  SUBCASE("a write not taken within read_timeout") {
    auto opts = surge::test::listener();
    opts.stream_queue_limit = 256 * 1024 * 1024;
    opts.read_timeout = 300ms;
    stream_server ss(opts);
    stream_client c(ss.srv.port(), std::string(get11));
    auto sink = ss.sinks.get_future().get();
    for (int i = 0; i < 64; ++i) {
      sink->send(std::string(1024 * 1024, 'y')); // more than the socket buffers hold
    }
    ss.closed.get_future().get();
    CHECK_FALSE(sink->open());
  }
}

TEST_CASE("server: a stream over HTTP/1.0 is delimited by the close") {
  stream_server ss;
  stream_client c(ss.srv.port(), "GET /s HTTP/1.0\r\nHost: x\r\n\r\n");
  auto sink = ss.sinks.get_future().get();
  sink->send("one ");
  sink->send("two");
  sink->close();
  CHECK(c.read_to_close());
  CHECK(c.head().rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
  CHECK(c.head().find("Transfer-Encoding") == std::string::npos);
  CHECK(c.head().find("Content-Length") == std::string::npos);
  CHECK(c.body() == "one two");
  ss.closed.get_future().get();
}

TEST_CASE("server: HEAD of a stream gets the head alone") {
  stream_server ss;
  stream_client c(ss.srv.port(), "HEAD /s HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(c.read_to_close());
  CHECK(c.head().find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(c.body().empty());
}

TEST_CASE("server: stop() does not wait for open streams, and closes them") {
  stream_server ss;
  stream_client c(ss.srv.port(), std::string(get11));
  auto sink = ss.sinks.get_future().get();
  CHECK(sink->send("before"));
  CHECK(c.read_until("before"));
  const auto t0 = std::chrono::steady_clock::now();
  ss.srv.stop(10s);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s); // not the grace period
  ss.closed.get_future().get();
  CHECK(c.read_to_close());
  CHECK_FALSE(sink->send("after"));
}
