// 3-D Secure (Strong Customer Authentication) against the real surge-paysim through the gateway
// adapters, both wire styles: tok_3ds answers requires_action with the page's URL, a lookup says
// so while it is open, the page completes or fails it (303 back to the shop), a void abandons
// it; and the signed webhooks paysim posts (--webhook-to), received on a loopback listener here
// and checked with read_webhook().

#include <doctest/doctest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "paysim_process.hpp"
#include "surge/net/json.hpp"
#include "surge/net/payments/gateway.hpp"
#include "surge/net/payments/webhook.hpp"

using namespace std::chrono_literals;
using surge::actors::charge_request;
using surge::actors::funds;
using surge::actors::settle_request;
using surge::net::payments::attempt;
using surge::net::payments::attempt_kind;
using surge::net::payments::gateway;
using surge::net::payments::gateway_kind;
using surge::net::payments::gateway_spec;
using surge::ptest::http_call;
using surge::ptest::paysim_process;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr std::chrono::milliseconds timeout{5000};

/// An adapter of `kind` ("form" or "json") for gateway `i` of `sim`.
std::unique_ptr<gateway> adapter(const paysim_process& sim, const std::string& kind,
                                 std::size_t i = 0) {
  gateway_spec spec{sim.names().at(i), kind == "json" ? gateway_kind::json : gateway_kind::form,
                    "127.0.0.1", sim.port(i), false};
  return surge::net::payments::make_gateway(spec);
}

charge_request three_ds(std::string key, std::string return_url = {}, bool capture = true,
                        int64_t amount = 2599) {
  charge_request r{std::move(key), "order-3ds", amount, "EUR", "tok_3ds", {}};
  r.capture = capture;
  r.return_url = std::move(return_url);
  return r;
}

/// The path (from the first '/' after the scheme) of an http URL.
std::string path_of(const std::string& url) {
  const auto slash = url.find('/', url.find("://") + 3);
  return slash == std::string::npos ? "/" : url.substr(slash);
}

/// The status the gateways' log shows for `key` ("" when it has none).
std::string logged(const paysim_process& sim, const std::string& key) {
  std::string out;
  for (const auto& c : sim.charges()) {
    if (c.key == key && c.status != "failed") {
      out = c.status;
    }
  }
  return out;
}

settle_request settle_of(const attempt& a, const std::string& charge_key, std::string key,
                         int64_t amount = 2599) {
  return {std::move(key), charge_key, "alpha", a.charge_id, amount, "EUR", {}};
}

/// One POST a hook_listener received.
struct received {
  std::string target;
  std::string signature; ///< Stripe-Signature ("" when absent)
  std::string body;
};

/// A loopback HTTP server that records every request and answers 200 (the first `fail_first`
/// requests 500). Its own thread; stopped by the destructor.
class hook_listener {
 public:
  explicit hook_listener(int fail_first = 0)
      : fail_left_(fail_first) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    accept();
    thread_ = std::thread{[this] { ioc_.run(); }};
  }

  ~hook_listener() {
    ioc_.stop();
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  /// The requests received, once there are at least `n` (waits at most `within`).
  std::vector<received> wait_for(std::size_t n, std::chrono::milliseconds within = 10s) {
    std::unique_lock lock{mu_};
    cv_.wait_for(lock, within, [&] { return got_.size() >= n; });
    return got_;
  }

  /// How many requests came (also the failed ones).
  int requests() {
    std::lock_guard lock{mu_};
    return requests_;
  }

 private:
  struct session : std::enable_shared_from_this<session> {
    session(tcp::socket s, hook_listener& o)
        : stream(std::move(s))
        , owner(o) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    hook_listener& owner;

    void read() {
      req = {};
      http::async_read(stream, buffer, req,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (!ec) {
                           self->answer();
                         }
                       });
    }

    void answer() {
      const bool ok = owner.record(req);
      res = {ok ? http::status::ok : http::status::internal_server_error, 11};
      res.keep_alive(req.keep_alive());
      res.body() = ok ? "[accepted]" : "try later";
      res.prepare_payload();
      http::async_write(stream, res,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (!ec && self->res.keep_alive()) {
                            self->read();
                          }
                        });
    }
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        return;
      }
      std::make_shared<session>(std::move(s), *this)->read();
      accept();
    });
  }

  /// True when the request is taken (and recorded), false when it is to fail.
  bool record(const http::request<http::string_body>& req) {
    std::lock_guard lock{mu_};
    ++requests_;
    if (fail_left_ > 0) {
      --fail_left_;
      return false;
    }
    got_.push_back({std::string{req.target()}, std::string{req["Stripe-Signature"]}, req.body()});
    cv_.notify_all();
    return true;
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int fail_left_;             // guarded by mu_
  int requests_ = 0;          // guarded by mu_
  std::vector<received> got_; // guarded by mu_
};

/// The events of `r` (from the gateway whose endpoint is `ep`) as read_webhook() reads them;
/// fails the check when it refuses them.
std::vector<surge::net::payments::webhook_event>
verified(const surge::net::payments::webhook_endpoint& ep, const received& r) {
  auto read = surge::net::payments::read_webhook(ep, r.signature, r.body, std::time(nullptr), 300s);
  if (auto* refused = std::get_if<surge::net::payments::webhook_refusal>(&read)) {
    FAIL_CHECK("read_webhook refused " << r.body << ": " << refused->message);
    return {};
  }
  return std::get<std::vector<surge::net::payments::webhook_event>>(read);
}

/// The JSON array GET /_webhooks answers on `port`.
surge::net::json::array deliveries(uint16_t port) {
  auto parsed = surge::net::json::parse(http_call(port, "GET", "/_webhooks").body);
  auto* v = std::get_if<surge::net::json::value>(&parsed);
  REQUIRE((v != nullptr && v->is_array()));
  return std::get<surge::net::json::array>(v->get());
}

std::string text(const surge::net::json::value& o, const char* k) {
  const auto* m = o.find(k);
  return m != nullptr && m->is_string() ? std::get<std::string>(m->get()) : std::string{};
}

/// The delivery log once it holds `n` rows none of which is pending: the shop has the request
/// before paysim has its answer, so the log may lag what the shop saw (5 s at most).
surge::net::json::array settled_deliveries(uint16_t port, std::size_t n) {
  auto log = deliveries(port);
  for (int i = 0; i < 250; ++i) {
    const bool settled =
        log.size() >= n && std::none_of(log.begin(), log.end(), [](const auto& row) {
          return text(row, "status") == "pending";
        });
    if (settled) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
    log = deliveries(port);
  }
  return log;
}

int64_t integer(const surge::net::json::value& o, const char* k) {
  const auto* m = o.find(k);
  return m != nullptr && m->is_int() ? std::get<int64_t>(m->get()) : -1;
}

} // namespace

TEST_SUITE("payments") {

  TEST_CASE("3-D Secure: requires_action with the page's URL; the page completes it; the shopper "
            "goes back to the return_url") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha"}};
      auto gw = adapter(sim, kind);
      const std::string back = "http://shop.test/checkout/return?order=o1";

      const attempt a = gw->charge(three_ds("k-3ds", back), timeout);
      REQUIRE_MESSAGE(a.kind == attempt_kind::requires_action, a.message);
      CHECK(a.charge_id.rfind("ch_alpha_", 0) == 0);
      CHECK(a.action_url ==
            "http://127.0.0.1:" + std::to_string(sim.port(0)) + "/3ds/" + a.charge_id);
      CHECK(logged(sim, "k-3ds") == "requires_action");

      // While it is open: the same key answers the same; a lookup says requires_action.
      const attempt again = gw->charge(three_ds("k-3ds", back), timeout);
      CHECK(again.kind == attempt_kind::requires_action);
      CHECK(again.charge_id == a.charge_id);
      CHECK(again.action_url == a.action_url);
      const attempt open = gw->lookup("k-3ds", timeout);
      CHECK(open.kind == attempt_kind::requires_action);
      CHECK(open.action_url == a.action_url);
      CHECK(logged(sim, "k-3ds") == "requires_action");
      // Nothing to capture yet.
      CHECK(gw->capture(settle_of(a, "k-3ds", "capture-k-3ds"), timeout).kind ==
            attempt_kind::rejected);

      // The shopper's page: the gateway, the amount, a form for each ending.
      const std::string page = path_of(a.action_url);
      const auto shown = http_call(sim.port(0), "GET", page);
      CHECK(shown.status == 200);
      CHECK(shown.header("Content-Type").rfind("text/html", 0) == 0);
      CHECK(shown.body.find("alpha") != std::string::npos);
      CHECK(shown.body.find("25.99 EUR") != std::string::npos);
      CHECK(shown.body.find(R"(<form method="post" action=")" + page + R"(/complete">)") !=
            std::string::npos);
      CHECK(shown.body.find(R"(<form method="post" action=")" + page + R"(/fail">)") !=
            std::string::npos);

      const auto done = http_call(sim.port(0), "POST", page + "/complete");
      CHECK(done.status == 303);
      CHECK(done.header("Location") == back + "&charge=" + a.charge_id + "&result=succeeded");

      const attempt after = gw->lookup("k-3ds", timeout);
      CHECK(after.kind == attempt_kind::approved);
      CHECK(after.money == funds::captured);
      CHECK(after.charge_id == a.charge_id);
      CHECK(after.action_url.empty());
      CHECK(logged(sim, "k-3ds") == "approved");
      // The key now answers the final result; the page is done.
      const attempt replay = gw->charge(three_ds("k-3ds", back), timeout);
      CHECK(replay.kind == attempt_kind::approved);
      CHECK(replay.charge_id == a.charge_id);
      CHECK(http_call(sim.port(0), "POST", page + "/complete").status == 409);
      CHECK(http_call(sim.port(0), "POST", page + "/fail").status == 409);
      const auto finished = http_call(sim.port(0), "GET", page);
      CHECK(finished.status == 200);
      CHECK(finished.body.find("<form") == std::string::npos);
      // Unknown charges, and another gateway's, are 404.
      CHECK(http_call(sim.port(0), "GET", "/3ds/ch_alpha_999").status == 404);
      CHECK(http_call(sim.port(0), "POST", "/3ds/ch_alpha_999/complete").status == 404);
    }
  }

  TEST_CASE("3-D Secure authorisation (capture=false): complete -> authorized, then captured") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha"}};
      auto gw = adapter(sim, kind);
      const attempt a = gw->charge(three_ds("k-auth", {}, false), timeout);
      REQUIRE_MESSAGE(a.kind == attempt_kind::requires_action, a.message);
      // Without a return_url the page says the outcome itself.
      const auto done = http_call(sim.port(0), "POST", path_of(a.action_url) + "/complete");
      CHECK(done.status == 200);
      CHECK(done.body.find("succeeded") != std::string::npos);
      const attempt after = gw->lookup("k-auth", timeout);
      CHECK(after.kind == attempt_kind::approved);
      CHECK(after.money == funds::authorized);
      CHECK(logged(sim, "k-auth") == "authorized");
      const attempt c = gw->capture(settle_of(a, "k-auth", "capture-k-auth"), timeout);
      CHECK_MESSAGE(c.kind == attempt_kind::approved, c.message);
      CHECK(gw->lookup("k-auth", timeout).money == funds::captured);
      CHECK(logged(sim, "k-auth") == "approved");
    }
  }

  TEST_CASE("3-D Secure: the shopper fails it -> declined, 'authentication failed'") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha"}};
      auto gw = adapter(sim, kind);
      const std::string back = "https://shop.test/return";
      const attempt a = gw->charge(three_ds("k-fail", back), timeout);
      REQUIRE(a.kind == attempt_kind::requires_action);
      const auto failed = http_call(sim.port(0), "POST", path_of(a.action_url) + "/fail");
      CHECK(failed.status == 303);
      CHECK(failed.header("Location") == back + "?charge=" + a.charge_id + "&result=failed");
      const attempt after = gw->lookup("k-fail", timeout);
      CHECK(after.kind == attempt_kind::declined);
      CHECK(after.message == "authentication failed");
      CHECK(logged(sim, "k-fail") == "declined");
      const attempt replay = gw->charge(three_ds("k-fail", back), timeout);
      CHECK(replay.kind == attempt_kind::declined);
      CHECK(replay.charge_id == a.charge_id);
      CHECK(http_call(sim.port(0), "POST", path_of(a.action_url) + "/complete").status == 409);
    }
  }

  TEST_CASE("3-D Secure: a void abandons the charge (voided, nothing taken); completing it "
            "later is 409") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha"}};
      auto gw = adapter(sim, kind);
      const attempt a = gw->charge(three_ds("k-gone", "http://shop.test/r"), timeout);
      REQUIRE(a.kind == attempt_kind::requires_action);
      const attempt v = gw->void_authorization(settle_of(a, "k-gone", "void-k-gone"), timeout);
      CHECK_MESSAGE(v.kind == attempt_kind::approved, v.message);
      CHECK(logged(sim, "k-gone") == "voided");
      const attempt after = gw->lookup("k-gone", timeout);
      CHECK(after.kind == attempt_kind::approved);
      CHECK(after.money == funds::voided);
      CHECK(http_call(sim.port(0), "POST", path_of(a.action_url) + "/complete").status == 409);
      CHECK(logged(sim, "k-gone") == "voided");
      // Voided again: done again; captured: never.
      CHECK(gw->void_authorization(settle_of(a, "k-gone", "void-k-gone"), timeout).kind ==
            attempt_kind::approved);
      CHECK(gw->capture(settle_of(a, "k-gone", "capture-k-gone"), timeout).kind ==
            attempt_kind::rejected);
    }
  }

  TEST_CASE("3-D Secure on the wire: the fields of both styles, bad return URLs refused") {
    paysim_process sim{{"alpha"}};
    const uint16_t p = sim.port(0);
    const std::vector<std::pair<std::string, std::string>> form_h{
        {"Content-Type", "application/x-www-form-urlencoded"}, {"Idempotency-Key", "W1"}};
    const auto f = http_call(
        p, "POST", "/v1/charges",
        "amount=100&currency=eur&source=tok_3ds&description=o-1&return_url=http%3A%2F%2Fs%2Fr",
        form_h);
    CHECK(f.status == 200);
    CHECK(f.body.find(R"("object":"charge","status":"requires_action")") != std::string::npos);
    CHECK(
        f.body.find(
            R"("next_action":{"type":"redirect_to_url","redirect_to_url":{"url":"http://127.0.0.1:)" +
            std::to_string(p) + "/3ds/") != std::string::npos);
    CHECK(f.body.find(R"("return_url":"http://s/r"}})") != std::string::npos);
    CHECK(f.body.find(R"("description":"o-1")") != std::string::npos);
    auto bad_form = form_h;
    bad_form[1].second = "W2";
    CHECK(http_call(p, "POST", "/v1/charges",
                    "amount=100&currency=eur&source=tok_3ds&return_url=javascript%3Aalert(1)",
                    bad_form)
              .status == 400);

    const std::vector<std::pair<std::string, std::string>> json_h{
        {"Content-Type", "application/json"}};
    const auto j = http_call(
        p, "POST", "/payments",
        R"({"reference":"J1","amount":{"value":100,"currency":"EUR"},"paymentMethod":{"token":"tok_3ds"},"returnUrl":"https://s/r?a=b"})",
        json_h);
    CHECK(j.status == 200);
    CHECK(j.body.find(R"("resultCode":"RedirectShopper")") != std::string::npos);
    CHECK(j.body.find(R"("action":{"type":"redirect","method":"GET","url":"http://127.0.0.1:)" +
                      std::to_string(p) + "/3ds/") != std::string::npos);
    CHECK(http_call(p, "GET", "/payments/J1").body == j.body);
    CHECK(
        http_call(
            p, "POST", "/payments",
            R"({"reference":"J2","amount":{"value":100,"currency":"EUR"},"paymentMethod":{"token":"tok_3ds"},"returnUrl":5})",
            json_h)
            .status == 400);
    // Nothing refunded of an open charge.
    const auto open_refund = http_call(
        p, "POST", "/refunds",
        R"({"reference":"JR","paymentReference":"J1","amount":{"value":100,"currency":"EUR"}})",
        json_h);
    CHECK(open_refund.status == 422);
  }

  TEST_CASE("paysim webhooks: 3-D Secure completed and failed, charges, captures and voids, "
            "signed as Surge verifies them (both styles), retried") {
    CHECK(surge::ptest::run_paysim_to_exit({"--gateways=a=127.0.0.1:0",
                                            "--webhook-to=b=http://127.0.0.1:1/h",
                                            "--webhook-secrets=b=whsec_0123456789abcdef"}) == 2);
    CHECK(surge::ptest::run_paysim_to_exit({"--gateways=a=127.0.0.1:0",
                                            "--webhook-to=a=ftp://127.0.0.1:1/h",
                                            "--webhook-secrets=a=whsec_0123456789abcdef"}) == 2);
    CHECK(surge::ptest::run_paysim_to_exit(
              {"--gateways=a=127.0.0.1:0", "--webhook-to=a=http://127.0.0.1:1/h"}) == 2);
    CHECK(surge::ptest::run_paysim_to_exit(
              {"--gateways=a=127.0.0.1:0", "--webhook-secrets=a=whsec_0123456789abcdef"}) == 2);

    hook_listener shop{2}; // the first two posts fail: retried
    const std::string base = "http://127.0.0.1:" + std::to_string(shop.port());
    const std::string form_secret = "whsec_paysim_0123456789";
    const std::string json_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    paysim_process sim{{"alpha", "beta"},
                       {"--webhook-to=alpha=" + base + "/hooks/alpha,beta=" + base + "/hooks/beta",
                        "--webhook-secrets=alpha=" + form_secret + ",beta=" + json_hex}};
    // Surge's side: alpha speaks the form style, beta json; their endpoints as the node reads
    // payments.webhook_secrets.
    const std::vector<gateway_spec> specs{
        {"alpha", gateway_kind::form, "127.0.0.1", sim.port(0), false},
        {"beta", gateway_kind::json, "127.0.0.1", sim.port(1), false}};
    auto parsed = surge::net::payments::parse_webhook_secrets(
        "alpha=" + form_secret + ",beta=" + json_hex, specs);
    REQUIRE(std::holds_alternative<std::map<std::string, surge::net::payments::webhook_endpoint>>(
        parsed));
    const auto endpoints =
        std::get<std::map<std::string, surge::net::payments::webhook_endpoint>>(parsed);
    auto alpha = surge::net::payments::make_gateway(specs[0]);
    auto beta = surge::net::payments::make_gateway(specs[1]);

    // alpha (form): a 3-D Secure charge completed on the page.
    charge_request fa = three_ds("k-form", "http://shop.test/r");
    fa.order_id = "order-form-1";
    const attempt a = alpha->charge(fa, timeout);
    REQUIRE(a.kind == attempt_kind::requires_action);
    CHECK(http_call(sim.port(0), "POST", path_of(a.action_url) + "/complete").status == 303);
    auto got = shop.wait_for(1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].target == "/hooks/alpha");
    CHECK(shop.requests() == 3); // two failed tries, then delivered
    auto events = verified(endpoints.at("alpha"), got[0]);
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == "charge.succeeded");
    CHECK(events[0].charge_id == a.charge_id);
    CHECK(events[0].order_id == "order-form-1");
    // Signed with another secret, it is refused.
    CHECK(std::holds_alternative<surge::net::payments::webhook_refusal>(
        surge::net::payments::read_webhook({gateway_kind::form, "whsec_other_0123456789"},
                                           got[0].signature, got[0].body, std::time(nullptr),
                                           300s)));

    // beta (json): a 3-D Secure charge failed on the page.
    const attempt b = beta->charge(three_ds("k-json"), timeout);
    REQUIRE(b.kind == attempt_kind::requires_action);
    CHECK(http_call(sim.port(1), "POST", path_of(b.action_url) + "/fail").status == 200);
    got = shop.wait_for(2);
    REQUIRE(got.size() == 2);
    CHECK(got[1].target == "/hooks/beta");
    CHECK(got[1].signature.empty());
    events = verified(endpoints.at("beta"), got[1]);
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == "AUTHORISATION");
    CHECK(events[0].charge_id == b.charge_id);
    CHECK(events[0].idempotency_key == "k-json");
    CHECK(events[0].id == b.charge_id + ":AUTHORISATION:false");

    // beta (json): an authorisation approved at once, captured; another voided.
    charge_request auth{"k-auth", "order-auth", 700, "EUR", "tok_ok", {}};
    auth.capture = false;
    const attempt c = beta->charge(auth, timeout);
    REQUIRE(c.kind == attempt_kind::approved);
    CHECK(beta->capture({"capture-k-auth", "k-auth", "beta", c.charge_id, 700, "EUR", {}}, timeout)
              .kind == attempt_kind::approved);
    got = shop.wait_for(4);
    REQUIRE(got.size() == 4);
    auto first = verified(endpoints.at("beta"), got[2]);
    auto second = verified(endpoints.at("beta"), got[3]);
    REQUIRE(first.size() == 1);
    REQUIRE(second.size() == 1);
    CHECK(first[0].type == "AUTHORISATION");
    CHECK(first[0].id == c.charge_id + ":AUTHORISATION:true");
    CHECK(second[0].type == "CAPTURE");
    CHECK(second[0].charge_id == c.charge_id);
    CHECK(second[0].idempotency_key == "k-auth");

    // alpha (form): a 3-D Secure charge abandoned (void), then a plain decline.
    const attempt d = alpha->charge(three_ds("k-void"), timeout);
    REQUIRE(d.kind == attempt_kind::requires_action);
    CHECK(alpha
              ->void_authorization({"void-k-void", "k-void", "alpha", d.charge_id, 2599, "EUR", {}},
                                   timeout)
              .kind == attempt_kind::approved);
    CHECK(alpha->charge({"k-no", "order-no", 100, "EUR", "tok_decline", {}}, timeout).kind ==
          attempt_kind::declined);
    got = shop.wait_for(6);
    REQUIRE(got.size() == 6);
    const auto voided = verified(endpoints.at("alpha"), got[4]);
    const auto declined = verified(endpoints.at("alpha"), got[5]);
    REQUIRE(voided.size() == 1);
    REQUIRE(declined.size() == 1);
    CHECK(voided[0].type == "charge.canceled");
    CHECK(voided[0].charge_id == d.charge_id);
    CHECK(declined[0].type == "charge.failed");
    CHECK(declined[0].order_id == "order-no");

    // The delivery log: every event delivered, the first after three tries.
    const auto log = settled_deliveries(sim.port(0), 6);
    REQUIRE(log.size() == 6);
    for (const auto& row : log) {
      CHECK(text(row, "status") == "delivered");
    }
    CHECK(integer(log[0], "attempts") == 3);
    CHECK(text(log[0], "type") == "charge.succeeded");
    CHECK(text(log[1], "type") == "AUTHORISATION");
  }

} // TEST_SUITE
