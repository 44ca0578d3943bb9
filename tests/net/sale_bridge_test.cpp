// The bridge's pure pieces of sales (issue 17): the sale body's parser, the sale, ticket and
// product JSON, and how a queue stream works a ticket's view out from the queue's summary.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <chrono>
#include <climits>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "encode.hpp"
#include "json_body.hpp"
#include "queue_stream.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"
#include "surge/net/json.hpp"

namespace net = surge::net;
namespace actors = surge::actors;
namespace bridge = surge::net::bridge;
namespace json = surge::net::json;

namespace {

constexpr int64_t t0 = 1795766400000; // 2026-11-27T08:00:00.000Z

json::value parse(const std::string& text) {
  auto v = json::parse(text);
  REQUIRE(std::holds_alternative<json::value>(v));
  return std::get<json::value>(std::move(v));
}

/// The sale body's parse result: the record, or the error message.
std::variant<surge::persistence::sale_record, std::string> sale_of(const std::string& body) {
  std::string err;
  auto rec = bridge::sale_fields(parse(body), "drop-1", err);
  if (!rec) {
    return err;
  }
  return *rec;
}

std::string error_of(const std::string& body) {
  auto r = sale_of(body);
  REQUIRE_MESSAGE(std::holds_alternative<std::string>(r), body);
  return std::get<std::string>(r);
}

const std::string minimal =
    R"({"name":"Drop","skus":["A","B"],)"
    R"("starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z")";

} // namespace

TEST_CASE("sales: the PUT body, its defaults and each bad field named") {
  auto r = sale_of(minimal + "}");
  REQUIRE(std::holds_alternative<surge::persistence::sale_record>(r));
  auto rec = std::get<surge::persistence::sale_record>(r);
  CHECK(rec.sale_id == "drop-1");
  CHECK(rec.name == "Drop");
  CHECK(rec.skus == std::vector<std::string>{"A", "B"});
  CHECK(rec.starts_at_ms == t0);
  CHECK(rec.ends_at_ms == t0 + 3600000);
  CHECK(rec.per_customer_limit == 0);
  CHECK_FALSE(rec.queue_enabled);
  CHECK(rec.admission_rate == 0); // auto
  CHECK(rec.pass_ttl_ms == 300000);

  auto q = sale_of(minimal + R"(,"per_customer_limit":2,"queue":{"enabled":true,)"
                             R"("admission_rate":12.5,"pass_ttl":"5m"}})");
  REQUIRE(std::holds_alternative<surge::persistence::sale_record>(q));
  rec = std::get<surge::persistence::sale_record>(q);
  CHECK(rec.per_customer_limit == 2);
  CHECK(rec.queue_enabled);
  CHECK(rec.admission_rate == 12.5);
  CHECK(rec.pass_ttl_ms == 300000);
  q = sale_of(minimal + R"(,"queue":{"admission_rate":"auto","pass_ttl":90}})");
  REQUIRE(std::holds_alternative<surge::persistence::sale_record>(q));
  CHECK(std::get<surge::persistence::sale_record>(q).pass_ttl_ms == 90000);

  // Each bad field: the message names it.
  const std::pair<std::string, std::string> bad[] = {
      {R"({"skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'name'"},
      {R"({"name":"","skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'name'"},
      {R"({"name":"D","starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":[],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":"A","starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":["A","A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":["a/b"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":["A"],"ends_at":"2026-11-27T09:00:00Z"})", "'starts_at'"},
      {R"({"name":"D","skus":["A"],"starts_at":"tomorrow","ends_at":"2026-11-27T09:00:00Z"})",
       "'starts_at'"},
      {R"({"name":"D","skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":5})", "'ends_at'"},
      {R"({"name":"D","skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T08:00:00Z"})",
       "'ends_at'"},
      {minimal + R"(,"per_customer_limit":-1})", "'per_customer_limit'"},
      {minimal + R"(,"queue":true})", "'queue'"},
      {minimal + R"(,"queue":{"enabled":"yes"}})", "'queue.enabled'"},
      {minimal + R"(,"queue":{"admission_rate":0}})", "'queue.admission_rate'"},
      {minimal + R"(,"queue":{"admission_rate":"fast"}})", "'queue.admission_rate'"},
      {minimal + R"(,"queue":{"pass_ttl":0}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":"1500ms"}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":"2d"}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":1.5}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":86401}})", "'queue.pass_ttl'"},
  };
  for (const auto& [body, field] : bad) {
    CAPTURE(body);
    CHECK(error_of(body).find(field) != std::string::npos);
  }

  CHECK(bridge::parse_duration_ms("90s") == 90000);
  CHECK(bridge::parse_duration_ms("5m") == 300000);
  CHECK(bridge::parse_duration_ms("1h") == 3600000);
  CHECK(bridge::parse_duration_ms("250ms") == 250);
  CHECK_FALSE(bridge::parse_duration_ms("s"));
  CHECK_FALSE(bridge::parse_duration_ms("5"));
  CHECK_FALSE(bridge::parse_duration_ms("-5s"));
  CHECK_FALSE(bridge::parse_duration_ms("99999999999999999999h"));
}

TEST_CASE("sales: sale, stats and ticket JSON") {
  surge::persistence::sale_record s;
  s.sale_id = "drop-1";
  s.name = "Drop \"1\"";
  s.skus = {"A", "B"};
  s.starts_at_ms = t0;
  s.ends_at_ms = t0 + 3600000;
  s.per_customer_limit = 1;
  s.queue_enabled = true;
  s.admission_rate = 0;
  s.pass_ttl_ms = 90000;
  s.updated_at_ms = t0 - 5000;
  const std::string head =
      R"({"sale_id":"drop-1","name":"Drop \"1\"","skus":["A","B"],)"
      R"("starts_at":"2026-11-27T08:00:00.000Z","ends_at":"2026-11-27T09:00:00.000Z",)"
      R"("per_customer_limit":1,"queue":{"enabled":true,"admission_rate":"auto","pass_ttl":90},)";
  CHECK(bridge::sale_json(s, t0 - 1) ==
        head + R"("state":"scheduled","updated_at":"2026-11-27T07:59:55.000Z"})");
  CHECK(bridge::sale_state(s, t0) == std::string{"live"});
  CHECK(bridge::sale_state(s, t0 + 3600000) == std::string{"ended"});
  CHECK(bridge::sale_json(s, t0, true, nullptr) ==
        head + R"("state":"live","updated_at":"2026-11-27T07:59:55.000Z","stats":null})");

  actors::queue_summary q;
  q.sale_id = "drop-1";
  q.phase = "sold_out";
  q.ranked = true;
  q.tickets = 20;
  q.admitted = 5;
  q.waiting = 15;
  q.admit_rate = 2.5;
  q.available = 0;
  q.held = 0;
  q.sold = 5;
  q.sold_out_at_ms = t0 + 1000;
  q.lottery_seed = "00ff";
  q.warm = true;
  s.admission_rate = 4;
  CHECK(bridge::sale_json(s, t0, true, &q) ==
        R"({"sale_id":"drop-1","name":"Drop \"1\"","skus":["A","B"],)"
        R"("starts_at":"2026-11-27T08:00:00.000Z","ends_at":"2026-11-27T09:00:00.000Z",)"
        R"("per_customer_limit":1,"queue":{"enabled":true,"admission_rate":4,"pass_ttl":90},)"
        R"("state":"live","updated_at":"2026-11-27T07:59:55.000Z","stats":{"waiting":15,)"
        R"("admitted":5,"sold":5,"sold_out_at":"2026-11-27T08:00:01.000Z","lottery_seed":"00ff",)"
        R"("tickets":20,"admit_rate":2.5,"available":0,"held":0,"warm":true,"phase":"sold_out"}})");
  q.sold_out_at_ms = 0;
  q.lottery_seed.clear();
  auto listed = parse(bridge::sales_json({s}, t0, {&q}));
  const auto& item = std::get<json::array>(listed.find("items")->get()).at(0);
  CHECK(item.find("stats")->find("sold_out_at")->is_null());
  CHECK(item.find("stats")->find("lottery_seed")->is_null());

  actors::ticket_view t;
  t.sale_id = "drop-1";
  t.ticket = "t3-abc";
  t.state = "waiting";
  t.position = 0;
  t.eta_s = 42;
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"waiting","position":null,"eta_s":42,)"
        R"("pass":null,"pass_expires_at":null})");
  t.position = 7;
  t.eta_s = -1;
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"waiting","position":7,"eta_s":null,)"
        R"("pass":null,"pass_expires_at":null})");
  t.state = "admitted";
  t.pass = "p.x";
  t.pass_expires_at_ms = t0;
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"admitted","position":null,)"
        R"("eta_s":null,"pass":"p.x","pass_expires_at":"2026-11-27T08:00:00.000Z"})");
  t.state = "sold_out";
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"sold_out","position":null,)"
        R"("eta_s":null,"pass":null,"pass_expires_at":null})");
}

TEST_CASE("sales: product JSON carries the sale that governs its SKU") {
  actors::sale_index index;
  surge::persistence::sale_record s;
  s.sale_id = "drop-1";
  s.name = "Drop";
  s.skus = {"A"};
  s.starts_at_ms = t0;
  s.ends_at_ms = t0 + 60000;
  s.pass_ttl_ms = 300000;
  index.put(s);
  actors::product_view v;
  v.product.sku = "A";
  v.product.name = "A";
  v.product.currency = "EUR";
  v.available = 3;
  const std::string plain = bridge::product_json(v);
  CHECK(bridge::product_json(v, {}) == plain);
  CHECK(bridge::product_json(v, {&index, t0 - 1}) ==
        plain.substr(0, plain.size() - 1) +
            R"(,"sale":{"sale_id":"drop-1","name":"Drop","starts_at":"2026-11-27T08:00:00.000Z",)"
            R"("ends_at":"2026-11-27T08:01:00.000Z","state":"scheduled",)"
            R"("queue":{"enabled":false,"admission_rate":"auto","pass_ttl":300}}})");
  v.product.sku = "B";
  CHECK(bridge::product_json(v, {&index, t0}).find("\"sale\"") == std::string::npos);
}

TEST_CASE("sales: a queue stream's view from the ticket and the queue's summary") {
  actors::ticket_view base;
  base.sale_id = "s";
  base.ticket = "t9-x";
  base.state = "waiting";
  base.rank = -1;
  base.eta_s = 100;
  actors::queue_summary q;
  q.sale_id = "s";
  q.phase = "warming";

  surge::persistence::sale_record sale;
  sale.starts_at_ms = t0;
  sale.ends_at_ms = t0 + 3600000;
  const auto* def = &sale;
  // Before the lottery: no position, eta counting down to the start; ranked: ask again.
  auto step = bridge::follow(base, q, def, t0 - 30500);
  CHECK(step.view.state == "waiting");
  CHECK(step.view.position == 0);
  CHECK(step.view.eta_s == 31);
  CHECK_FALSE(step.refetch);
  q.phase = "open";
  q.ranked = true;
  CHECK(bridge::follow(base, q, def, t0 + 10).refetch);

  // Ranked: position from admitted, never above the ticket's own, eta from the rate.
  base.rank = 9;
  base.position = 10;
  q.admitted = 4;
  q.admit_rate = 2;
  step = bridge::follow(base, q, def, t0 + 10);
  CHECK_FALSE(step.refetch);
  CHECK(step.view.position == 6);
  CHECK(step.view.eta_s == 3);
  q.admitted = 0; // an older summary than the ticket's answer
  CHECK(bridge::follow(base, q, def, t0 + 10).view.position == 10);
  q.admit_rate = 0;
  q.admitted = 4;
  CHECK(bridge::follow(base, q, def, t0 + 10).view.eta_s == -1);
  sale.admission_rate = 4; // no admissions lately: the sale's fixed rate
  CHECK(bridge::follow(base, q, def, t0 + 10).view.eta_s == 2);
  CHECK(bridge::follow(base, q, nullptr, t0 + 10).view.eta_s == -1);

  // Sold out and back.
  q.phase = "sold_out";
  CHECK(bridge::follow(base, q, def, t0 + 10).view.state == "sold_out");
  base.state = "sold_out";
  q.phase = "open";
  CHECK(bridge::follow(base, q, def, t0 + 10).view.state == "waiting");

  // Admitted now: ask for the pass.
  base.state = "waiting";
  q.admitted = 10;
  CHECK(bridge::follow(base, q, def, t0 + 10).refetch);

  // The sale ended: a waiting ticket expired.
  q.phase = "ended";
  q.admitted = 4;
  step = bridge::follow(base, q, def, t0 + 10);
  CHECK(step.view.state == "expired");
  CHECK(step.view.position == 0);

  // Admitted: until the pass expires.
  base.state = "admitted";
  base.pass = "p";
  base.pass_expires_at_ms = t0 + 1000;
  q.phase = "open";
  CHECK(bridge::follow(base, q, def, t0 + 999).view.state == "admitted");
  step = bridge::follow(base, q, def, t0 + 1000);
  CHECK(step.view.state == "expired");
  CHECK(step.view.pass.empty());

  CHECK(bridge::eta_moved(-1, 5));
  CHECK(bridge::eta_moved(5, -1));
  CHECK_FALSE(bridge::eta_moved(-1, -1));
  CHECK_FALSE(bridge::eta_moved(60, 59));
  CHECK_FALSE(bridge::eta_moved(60, 50));
  CHECK(bridge::eta_moved(60, 48));
  CHECK(bridge::eta_moved(4, 2));
  CHECK_FALSE(bridge::eta_moved(3, 2));
}

namespace {

/// What the scripted sale actor answers, set by the test (any thread).
struct scripted_queue {
  std::mutex mu;
  actors::queue_summary summary;
  actors::ticket_view ticket; ///< the answer to every (get_atom, ticket)
  int summaries = 0;          ///< (watch_atom) calls
  int gets = 0;               ///< (get_atom, ticket) calls
};

actors::sale_actor::behavior_type scripted_sale(actors::sale_actor::pointer,
                                                std::shared_ptr<scripted_queue> q) {
  return {
      [](actors::join_atom, const std::string&,
         const std::string&) -> caf::result<actors::ticket_view> {
        return actors::make_error(actors::errc::invalid, "not scripted");
      },
      [q](caf::get_atom, const std::string&) {
        std::lock_guard lk{q->mu};
        ++q->gets;
        return q->ticket;
      },
      [q](actors::watch_atom) {
        std::lock_guard lk{q->mu};
        ++q->summaries;
        return q->summary;
      },
      [](actors::used_atom, const std::string&) {},
      [](actors::warm_atom) {},
      [](actors::handoff_atom, bool) {},
  };
}

/// A stream that keeps what it was sent.
class recording_sink final : public net::stream_sink {
 public:
  bool send(std::string data) override {
    std::lock_guard lk{mu_};
    if (closed_) {
      return false;
    }
    sent_.push_back(std::move(data));
    return true;
  }
  void close() override {
    std::function<void()> f;
    {
      std::lock_guard lk{mu_};
      if (closed_) {
        return;
      }
      closed_ = true;
      f = std::move(on_close_);
    }
    if (f) {
      f();
    }
  }
  bool open() const override {
    std::lock_guard lk{mu_};
    return !closed_;
  }
  void on_close(std::function<void()> f) override {
    std::unique_lock lk{mu_};
    if (closed_) {
      lk.unlock();
      f();
      return;
    }
    on_close_ = std::move(f);
  }
  std::vector<std::string> sent() const {
    std::lock_guard lk{mu_};
    return sent_;
  }
  /// The data of the position events sent, in order.
  std::vector<json::value> events() const {
    std::vector<json::value> out;
    for (const auto& s : sent()) {
      const std::string prefix = "event: position\ndata: ";
      if (s.rfind(prefix, 0) == 0) {
        out.push_back(parse(s.substr(prefix.size(), s.size() - prefix.size() - 2)));
      }
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> sent_;
  bool closed_ = false;
  std::function<void()> on_close_;
};

/// Waits (bounded, 10 s) until `f` holds.
template <class F>
bool within_10s(F f) {
  for (int i = 0; i < 1000; ++i) {
    if (f()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return false;
}

} // namespace

TEST_CASE("sales: queue_watcher asks once per sale per round and each ticket only when it must") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto q = std::make_shared<scripted_queue>();
  actors::sale_directory queues{
      [&sys, q](const std::string&) { return sys.spawn(scripted_sale, q); }};
  auto env = std::make_shared<net::bridge_env>();
  env->sale_queues = &queues;
  env->system = &sys;
  env->callers = net::spawn_callers(sys, 1);
  env->call_timeout = std::chrono::seconds{5};
  env->sales = std::make_shared<actors::sale_index>();
  surge::persistence::sale_record s;
  s.sale_id = "s";
  s.name = "S";
  s.skus = {"A"};
  s.starts_at_ms = actors::system_now_ms() - 1000;
  s.ends_at_ms = s.starts_at_ms + 3600000;
  s.queue_enabled = true;
  s.pass_ttl_ms = 60000;
  env->sales->put(s);
  {
    std::lock_guard lk{q->mu};
    q->summary.sale_id = "s";
    q->summary.phase = "open";
    q->summary.ranked = true;
    q->summary.admitted = 0;
    q->summary.admit_rate = 1;
  }
  auto watcher = std::make_shared<bridge::queue_watcher>(*env, std::chrono::milliseconds{20},
                                                         std::chrono::seconds{60});
  // 50 streams: rank r shows position r + 1.
  std::vector<std::shared_ptr<recording_sink>> sinks;
  for (int r = 0; r < 50; ++r) {
    actors::ticket_view t;
    t.sale_id = "s";
    t.ticket = "t" + std::to_string(r);
    t.state = "waiting";
    t.rank = r;
    t.position = r + 1;
    t.eta_s = r + 1;
    auto sink = std::make_shared<recording_sink>();
    watcher->subscribe(sink, t, t, bridge::ticket_json(t), nullptr);
    sinks.push_back(sink);
  }
  CHECK(watcher->streams() == 50);
  CHECK(watcher->watched() == 1);
  REQUIRE(within_10s([&] {
    std::lock_guard lk{q->mu};
    return q->summaries >= 5;
  }));
  {
    std::lock_guard lk{q->mu};
    CHECK(q->gets == 0); // nothing changed for any ticket: no ticket asked
    // Two admitted: every position moves down by 2.
    q->summary.admitted = 2;
    q->ticket.sale_id = "s";
    q->ticket.ticket = "t0";
    q->ticket.state = "admitted";
    q->ticket.rank = 0;
    q->ticket.pass = "pass-0";
    q->ticket.pass_expires_at_ms = actors::system_now_ms() + 60000;
  }
  REQUIRE(within_10s([&] {
    auto ev = sinks[10]->events();
    return !ev.empty() && std::get<int64_t>(ev.back().find("position")->get()) == 9;
  }));
  // Ranks 0 and 1 are admitted now: their streams asked their tickets (once each) for the pass.
  REQUIRE(within_10s([&] {
    auto ev = sinks[0]->events();
    return !ev.empty() && std::get<std::string>(ev.back().find("state")->get()) == "admitted";
  }));
  CHECK(std::get<std::string>(sinks[0]->events().back().find("pass")->get()) == "pass-0");
  {
    std::lock_guard lk{q->mu};
    CHECK(q->gets <= 4); // ranks 0 and 1; at most a retry each
    // Sold out: every waiting stream says so, with no position.
    q->summary.phase = "sold_out";
  }
  REQUIRE(within_10s([&] {
    auto ev = sinks[49]->events();
    return !ev.empty() && std::get<std::string>(ev.back().find("state")->get()) == "sold_out";
  }));
  CHECK(sinks[49]->events().back().find("position")->is_null());
  // Positions never grew on any stream.
  for (const auto& sink : sinks) {
    int64_t last = INT64_MAX;
    for (const auto& ev : sink->events()) {
      if (const auto* p = ev.find("position"); p != nullptr && p->is_int()) {
        CHECK(std::get<int64_t>(p->get()) <= last);
        last = std::get<int64_t>(p->get());
      }
    }
  }
  {
    std::lock_guard lk{q->mu};
    CHECK(q->gets <= 4);
  }
  // A stream that ends leaves; stop() closes the rest.
  sinks[5]->close();
  CHECK(watcher->streams() == 49);
  watcher->stop();
  CHECK_FALSE(sinks[7]->open());
  CHECK(watcher->streams() == 0);
  for (auto& c : env->callers) {
    caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  }
  queues.for_each([](const auto& h) { caf::anon_send_exit(h, caf::exit_reason::user_shutdown); });
}
