// The sale actor (a sale's waiting room) with SKU actors, on the in-memory fakes AND on real
// PostgreSQL + Redis (TEST_CASE_TEMPLATE): joins, the lottery, admission by stock, sold out and
// back, the end of the sale, restarts. The node's sale index is filled by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "actor_fixture.hpp"
#include "surge/actors/errors.hpp"

using namespace surge;
using namespace surge::actors;
using namespace surge::test;

namespace {

constexpr int64_t hour = 3'600'000;

sale_record sale_of(const std::string& id, std::vector<std::string> skus, int64_t starts,
                    int64_t ends, double rate = 1000, int64_t ttl = hour) {
  sale_record s;
  s.sale_id = id;
  s.name = "Sale " + id;
  s.skus = std::move(skus);
  s.starts_at_ms = starts;
  s.ends_at_ms = ends;
  s.queue_enabled = true;
  s.admission_rate = rate;
  s.pass_ttl_ms = ttl;
  return s;
}

caf::expected<ticket_view> try_join(entity_node& n, const std::string& sale,
                                    const std::string& customer) {
  return n.ask_sale<ticket_view>(sale, join_atom::value, customer, std::string{"rid-join"});
}

ticket_view join(entity_node& n, const std::string& sale, const std::string& customer) {
  auto v = try_join(n, sale, customer);
  REQUIRE_MESSAGE(v, caf::to_string(v.error()));
  return *v;
}

caf::expected<ticket_view> try_get(entity_node& n, const std::string& sale,
                                   const std::string& ticket) {
  return n.ask_sale<ticket_view>(sale, caf::get_atom::value, ticket);
}

ticket_view get(entity_node& n, const std::string& sale, const std::string& ticket) {
  auto v = try_get(n, sale, ticket);
  REQUIRE_MESSAGE(v, caf::to_string(v.error()));
  return *v;
}

queue_summary watch(entity_node& n, const std::string& sale) {
  auto s = n.ask_sale<queue_summary>(sale, watch_atom::value);
  REQUIRE_MESSAGE(s, caf::to_string(s.error()));
  return *s;
}

hold_view hold(entity_node& n, const std::string& sku, const std::string& cart,
               const std::string& customer, int64_t qty, const std::string& sale) {
  hold_request req{cart, customer, qty};
  req.pass_sale = sale;
  auto v = n.ask_sku<hold_view>(sku, hold_atom::value, req);
  REQUIRE_MESSAGE(v, caf::to_string(v.error()));
  return *v;
}

void confirm(entity_node& n, const std::string& sku, const hold_view& h, const std::string& cart) {
  auto s = n.ask_sku<stock_view>(sku, confirm_atom::value, h.hold_id, "o-" + cart, cart, h.qty);
  REQUIRE_MESSAGE(s, caf::to_string(s.error()));
}

/// A cart took stock with the ticket's pass (the bridge's fire-and-forget after an add to cart).
void used(entity_node& n, const std::string& sale, const std::string& ticket) {
  caf::anon_send(n.sales->acquire(sale), used_atom::value, ticket);
}

} // namespace

TEST_CASE_TEMPLATE("joins are journaled; the lottery at the start is recorded and survives "
                   "restarts",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  const int64_t t0 = system_now_ms();
  const auto sale = sale_of("S", {"X"}, t0 + hour, t0 + 2 * hour);
  std::vector<std::string> tickets;
  {
    entity_node n{be, default_opts()};
    n.sale_index.put(sale);
    for (int i = 0; i < 20; ++i) {
      const auto v = join(n, "S", "cust" + std::to_string(i));
      CHECK(v.created);
      CHECK(v.sale_id == "S");
      CHECK(v.state == "waiting");
      CHECK(v.position == 0); // not ranked before the lottery: null
      CHECK(v.rank == -1);
      CHECK(v.eta_s > 3500); // seconds until the start
      CHECK(v.eta_s <= 3600);
      CHECK(v.pass.empty());
      CHECK(n.ids().ticket_seq("S", v.ticket) == static_cast<uint64_t>(i));
      tickets.push_back(v.ticket);
    }
    const auto again = join(n, "S", "cust3");
    CHECK_FALSE(again.created);
    CHECK(again.ticket == tickets[3]);
    CHECK(std::set<std::string>(tickets.begin(), tickets.end()).size() == tickets.size());
    // Forged, foreign and unissued tickets are not found.
    auto forged = tickets[0];
    forged.back() = forged.back() == '0' ? '1' : '0';
    for (const auto& t : {forged, n.ids().ticket_for("T", 1), n.ids().ticket_for("S", 20),
                          std::string{"t1"}, std::string{}}) {
      auto v = try_get(n, "S", t);
      REQUIRE_FALSE(v);
      CHECK(is(v.error(), errc::not_found));
    }
    const auto s = watch(n, "S");
    CHECK(s.tickets == 20);
    CHECK_FALSE(s.ranked);
    CHECK(s.admitted == 0);
    CHECK(s.lottery_seed.empty());
    CHECK(s.phase == "scheduled");
  }
  std::vector<int64_t> ranks;
  std::string seed;
  {
    entity_node n{be, default_opts()}; // a restart: snapshot + journal
    n.sale_index.put(sale);
    for (const auto& t : tickets) {
      const auto v = get(n, "S", t);
      CHECK(v.state == "waiting");
      CHECK(v.rank == -1);
    }
    const auto late = join(n, "S", "cust20");
    CHECK(late.created);
    CHECK(late.ticket == n.ids().ticket_for("S", 20));
    tickets.push_back(late.ticket);
    n.advance_clock(hour + 1000); // past the start: the next command runs the lottery first
    const auto s = watch(n, "S");
    CHECK(s.ranked);
    CHECK(s.lottery_seed.size() == 16);
    CHECK(s.tickets == 21);
    seed = s.lottery_seed;
    std::set<int64_t> seen;
    for (const auto& t : tickets) {
      const auto v = get(n, "S", t);
      REQUIRE(v.rank >= 0);
      CHECK(v.rank < 21);
      seen.insert(v.rank);
      ranks.push_back(v.rank);
    }
    CHECK(seen.size() == 21); // the pre-queue is a permutation of ranks 0..20
    // After the start: FIFO after the pre-queue (no SKU X: nobody is admitted).
    const auto after = join(n, "S", "cust21");
    CHECK(after.rank == 21);
    CHECK(after.position == 22);
    tickets.push_back(after.ticket);
    ranks.push_back(21);
  }
  {
    entity_node n{be, default_opts(), hour + 1000}; // restarted again, clock as before
    n.sale_index.put(sale);
    CHECK(watch(n, "S").lottery_seed == seed);
    for (std::size_t i = 0; i < tickets.size(); ++i) {
      CHECK(get(n, "S", tickets[i]).rank == ranks[i]);
    }
  }
}

TEST_CASE_TEMPLATE("admission follows stock: open passes never exceed it, sold out and back",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  const int64_t t0 = system_now_ms();
  const auto sale = sale_of("D", {"A", "B"}, t0 - 1000, t0 + hour);
  std::vector<std::string> t;
  std::vector<std::string> passes;
  {
    entity_node n{be, default_opts()};
    create_sku(n, "A", 2);
    create_sku(n, "B", 1);
    n.sale_index.put(sale);
    for (int i = 0; i < 6; ++i) {
      const auto v = join(n, "D", "c" + std::to_string(i));
      CHECK(v.rank == i); // the sale had started: FIFO
      t.push_back(v.ticket);
    }
    // 3 units: 3 passes, and no more while they are open.
    REQUIRE(eventually([&] { return watch(n, "D").admitted == 3; }));
    const auto seen = watch(n, "D").updated_at_ms;
    REQUIRE(eventually([&] { return watch(n, "D").updated_at_ms > seen + 1000; }));
    CHECK(watch(n, "D").admitted == 3);
    for (int i = 0; i < 3; ++i) {
      const auto v = get(n, "D", t[i]);
      CHECK(v.state == "admitted");
      CHECK(v.position == 0);
      CHECK(v.pass_expires_at_ms == v.admitted_at_ms + hour);
      const auto p = n.ids().open_pass(v.pass);
      REQUIRE(p);
      CHECK(p->sale_id == "D");
      CHECK(p->customer_id == "c" + std::to_string(i));
      CHECK(p->ticket == t[i]);
      CHECK(p->expires_at_ms == v.pass_expires_at_ms);
      passes.push_back(v.pass);
    }
    for (int i = 3; i < 6; ++i) {
      const auto v = get(n, "D", t[i]);
      CHECK(v.state == "waiting");
      CHECK(v.position == i - 2);
      CHECK(v.pass.empty());
    }
    // The admitted take the stock with their passes.
    const auto h0 = hold(n, "A", "cart0", "c0", 1, "D");
    const auto h1 = hold(n, "A", "cart1", "c1", 1, "D");
    const auto h2 = hold(n, "B", "cart2", "c2", 1, "D");
    for (int i = 0; i < 3; ++i) {
      used(n, "D", t[i]);
    }
    // Nothing available, but held: waiting, not sold out.
    const auto s1 = watch(n, "D").updated_at_ms;
    REQUIRE(eventually([&] { return watch(n, "D").updated_at_ms > s1 + 500; }));
    CHECK(get(n, "D", t[3]).state == "waiting");
    CHECK(watch(n, "D").admitted == 3);
    // A hold given back: admission resumes with the next in line.
    hold(n, "A", "cart1", "c1", 0, "D");
    REQUIRE(eventually([&] { return get(n, "D", t[3]).state == "admitted"; }));
    CHECK(watch(n, "D").admitted == 4);
    CHECK(get(n, "D", t[4]).position == 1);
    const auto h3 = hold(n, "A", "cart3", "c3", 1, "D");
    used(n, "D", t[3]);
    // Everything sold: waiting tickets say sold_out.
    confirm(n, "A", h0, "cart0");
    confirm(n, "B", h2, "cart2");
    confirm(n, "A", h3, "cart3");
    REQUIRE(eventually([&] { return get(n, "D", t[4]).state == "sold_out"; }));
    const auto s = watch(n, "D");
    CHECK(s.phase == "sold_out");
    CHECK(s.sold_out_at_ms > 0);
    CHECK(s.waiting == 0);
    CHECK(s.admitted == 4);
    CHECK(s.available == 0);
    CHECK(s.held == 0);
    CHECK(s.sold == 3);
    CHECK(s.warm);
    CHECK(get(n, "D", t[5]).position == 2); // still in line, should stock come back
    // Stock comes back: waiting again, and the next one is admitted.
    auto r = n.ask_sku<stock_view>("B", stock_atom::value, stock_change{false, 1});
    REQUIRE_MESSAGE(r, caf::to_string(r.error()));
    REQUIRE(eventually([&] { return get(n, "D", t[4]).state == "admitted"; }));
    CHECK(get(n, "D", t[5]).state == "waiting");
    CHECK(get(n, "D", t[5]).position == 1);
    CHECK(watch(n, "D").phase == "open");
    passes.push_back(get(n, "D", t[3]).pass);
    passes.push_back(get(n, "D", t[4]).pass);
    (void)h1;
  }
  {
    // A restart: admitted stays admitted (same passes), positions as they were; the passes
    // still open count against stock (their use was soft state), so nobody more is admitted.
    entity_node n{be, default_opts()};
    n.sale_index.put(sale);
    CHECK(watch(n, "D").admitted == 5);
    for (int i = 0; i < 5; ++i) {
      const auto v = get(n, "D", t[i]);
      CHECK(v.state == "admitted");
      CHECK(v.pass == passes[static_cast<std::size_t>(i)]);
    }
    CHECK(get(n, "D", t[5]).position == 1);
    REQUIRE(eventually([&] { return watch(n, "D").warm; }));
    const auto seen = watch(n, "D").updated_at_ms;
    REQUIRE(eventually([&] { return watch(n, "D").updated_at_ms > seen + 1000; }));
    CHECK(watch(n, "D").admitted == 5);
    CHECK(get(n, "D", t[5]).position == 1);
  }
}

TEST_CASE_TEMPLATE("after the end: joins refused, waiting tickets expired, passes run out",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  const int64_t t0 = system_now_ms();
  entity_node n{be, default_opts()};
  create_sku(n, "E", 1);
  n.sale_index.put(sale_of("F", {"E"}, t0 - 1000, t0 + 60'000, 1000, 30'000));
  const auto a = join(n, "F", "a");
  const auto b = join(n, "F", "b");
  REQUIRE(eventually([&] { return get(n, "F", a.ticket).state == "admitted"; }));
  CHECK(get(n, "F", b.ticket).state == "waiting");
  n.advance_clock(61'000); // past the end, and past a's pass (30 s), which ran out unused
  const auto va = get(n, "F", a.ticket);
  CHECK(va.state == "expired");
  CHECK(va.pass.empty());
  CHECK(va.admitted_at_ms > 0);
  auto late = try_join(n, "F", "c");
  REQUIRE_FALSE(late);
  CHECK(is(late.error(), errc::sale_ended));
  CHECK(get(n, "F", b.ticket).state == "expired");
  const auto s = watch(n, "F");
  CHECK(s.phase == "ended");
  CHECK(s.waiting == 0);
  CHECK(s.admitted == 1);
}

TEST_CASE("unknown sales and bad customers are refused") {
  test::fake_backend be;
  entity_node n{be, default_opts()};
  auto j = try_join(n, "nope", "a");
  REQUIRE_FALSE(j);
  CHECK(is(j.error(), errc::not_found));
  auto w = n.ask_sale<queue_summary>("nope", watch_atom::value);
  REQUIRE_FALSE(w);
  CHECK(is(w.error(), errc::not_found));
  const int64_t t0 = system_now_ms();
  n.sale_index.put(sale_of("G", {"X"}, t0 + hour, t0 + 2 * hour));
  auto bad = try_join(n, "G", "");
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), errc::invalid));
  CHECK(join(n, "G", "a").created);
  // Deleted from the index: not found again.
  n.sale_index.remove("G");
  auto gone = try_join(n, "G", "a");
  REQUIRE_FALSE(gone);
  CHECK(is(gone.error(), errc::not_found));
}

TEST_CASE("no answer of the queue gets ahead of the commit of what it shows") {
  test::fake_backend be;
  entity_node n{be, default_opts()};
  const int64_t t0 = system_now_ms();
  n.sale_index.put(sale_of("H", {"X"}, t0 + hour, t0 + 2 * hour));
  CHECK(join(n, "H", "first").created); // the actor is active
  be.fake_journal()->set_commit_delay(std::chrono::milliseconds{200});
  be.fake_journal()->fail_next(persistence::errc::unavailable);
  // A join whose commit fails; the same join again, a get of its ticket and the summary all
  // reflect it: none may succeed.
  caf::scoped_actor self{n.sys()};
  self->send(n.sales->acquire("H"), join_atom::value, std::string{"second"}, std::string{});
  self->send(n.sales->acquire("H"), join_atom::value, std::string{"second"}, std::string{});
  self->send(n.sales->acquire("H"), caf::get_atom::value, n.ids().ticket_for("H", 1));
  self->send(n.sales->acquire("H"), watch_atom::value);
  int errors = 0;
  int i = 0;
  self->receive_for(i, 4)([&](ticket_view&) {}, [&](queue_summary&) {},
                          [&](caf::error& e) {
                            CHECK(is(e, errc::unavailable));
                            ++errors;
                          });
  CHECK(errors == 4);
  // The next incarnation knows only the committed join.
  be.fake_journal()->set_commit_delay(std::chrono::milliseconds{0});
  // (the failed incarnation may still be in the directory for a moment: it bounces)
  REQUIRE(eventually([&] {
    auto w = n.ask_sale<queue_summary>("H", watch_atom::value);
    return w && w->tickets == 1;
  }));
  const auto again = join(n, "H", "second");
  CHECK(again.created);
  CHECK(again.ticket == n.ids().ticket_for("H", 1));
}

TEST_CASE("a warm queue reads its SKUs and publishes its summary; passivated, it leaves the "
          "board") {
  test::fake_backend be;
  entity_node n{be, opts_with([](entity_options& o) { o.idle_timeout = std::chrono::seconds{1}; })};
  create_sku(n, "W1", 5);
  create_sku(n, "W2", 7);
  const int64_t t0 = system_now_ms();
  n.sale_index.put(sale_of("K", {"W1", "W2"}, t0 + hour, t0 + 2 * hour));
  caf::anon_send(n.sales->acquire("K"), warm_atom::value);
  REQUIRE(eventually([&] {
    const auto all = n.sale_board.all();
    return all.size() == 1 && all[0].warm;
  }));
  const auto s = n.sale_board.all().at(0);
  CHECK(s.sale_id == "K");
  CHECK(s.phase == "warming");
  CHECK(s.available == 12);
  CHECK(n.skus->active("W1"));
  CHECK(n.skus->active("W2"));
  // No more warm_atoms: after the warm window and the idle timeout it passivates.
  REQUIRE(eventually([&] { return n.sale_board.all().empty() && !n.sales->active("K"); },
                     std::chrono::seconds{20}));
}
