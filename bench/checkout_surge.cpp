// Surge's side of `checkout`: the real checkout path in-process, wired as runtime/src/node.cpp
// wires it: storage pools, commit queue, the order store pool, the payment router over the
// paysim gateway, and the SKU, cart and order directories. Driver actors keep --concurrency
// shopper flows going: create a cart, put 1-3 SKUs in it (each a hold on its SKU actor), then
// check out (order actor: order row, payment, holds confirmed as sold, order confirmed with its
// outbox event). Only the checkout request is timed (send -> 201 order).

#include <caf/all.hpp>

#include "instance.hpp"

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

#include <pqxx/pqxx>
#include <unistd.h>

#include "ask.hpp"
#include "common.hpp"
#include "surge/actors/cart.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sku.hpp"
#include "surge/config/settings.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::bench {

namespace {

using namespace std::chrono_literals;

constexpr int64_t initial_on_hand = 1'000'000'000'000; // never sells out
constexpr auto request_timeout = 30s;
constexpr int max_drivers = 4;

struct drive_shared {
  instance* inst = nullptr;
  const checkout_options* opts = nullptr;
  phases p;
  std::atomic<uint64_t> measured{0};
  std::mutex mtx;
  std::condition_variable cv;
  int running = 0;
  run_result result; ///< merged by each driver when it finishes
  std::map<std::string, int64_t> lines;
};

struct driver_state : client_figures {
  static inline const char* name = "surge.bench.checkout_driver";
  std::unique_ptr<sku_picker> picker;
  std::string prefix;
  uint64_t next = 0;
  int outstanding = 0;
  std::map<std::string, int64_t> lines;
};

using driver_ptr = caf::stateful_actor<driver_state>*;
using shared_ptr = std::shared_ptr<drive_shared>;

void start_flow(driver_ptr self, const shared_ptr& sh);

void finish(driver_ptr self, const shared_ptr& sh) {
  auto& st = self->state;
  {
    std::lock_guard<std::mutex> guard{sh->mtx};
    sh->result.add(st);
    for (const auto& [sku, n] : st.lines) {
      sh->lines[sku] += n;
    }
    --sh->running;
  }
  sh->cv.notify_all();
  self->quit();
}

/// One flow ended (`error` null: a confirmed order); starts the next one or winds down.
void flow_done(driver_ptr self, const shared_ptr& sh, const std::string* error) {
  auto& st = self->state;
  --st.outstanding;
  if (error != nullptr) {
    st.failed(*error);
  }
  if (clock::now() < sh->p.measure_until && !interrupted().load(std::memory_order_relaxed)) {
    start_flow(self, sh);
  } else if (st.outstanding == 0) {
    finish(self, sh);
  }
}

std::string describe(const caf::error& e) {
  return actors::message_of(e) + " (" + caf::to_string(e) + ")";
}

void checkout(driver_ptr self, const shared_ptr& sh, const std::string& cart_id,
              std::vector<std::string> skus) {
  auto& st = self->state;
  const std::string key = st.prefix + "k" + std::to_string(st.next++);
  actors::checkout_request req{key,      cart_id, "card",
                               "tok_ok", "",      actors::deadline_after(request_timeout)};
  const auto t0 = clock::now();
  self->request(sh->inst->orders->acquire(sh->inst->ids->order_id_for(key)), request_timeout,
                actors::checkout_atom::value, std::move(req))
      .then(
          [self, sh, t0, skus = std::move(skus)](actors::order_view& o) {
            const auto t1 = clock::now();
            auto& st = self->state;
            if (o.status != "confirmed" || o.lines.size() != skus.size()) {
              const std::string e = "checkout answered status " + o.status + " with " +
                                    std::to_string(o.lines.size()) + " lines";
              return flow_done(self, sh, &e);
            }
            for (const auto& l : o.lines) {
              st.lines[l.sku] += l.qty;
            }
            st.succeeded(sh->p, t0, t1, sh->measured);
            flow_done(self, sh, nullptr);
          },
          [self, sh](caf::error& err) {
            const std::string e = "checkout: " + describe(err);
            flow_done(self, sh, &e);
          });
}

/// Puts skus[i..] into the cart one after the other, then checks out.
void add_items(driver_ptr self, const shared_ptr& sh, std::string cart_id,
               std::vector<std::string> skus, std::size_t i) {
  if (i == skus.size()) {
    return checkout(self, sh, cart_id, std::move(skus));
  }
  const auto sku = skus[i];
  self->request(sh->inst->carts->acquire(cart_id), request_timeout, actors::item_atom::value, sku,
                int64_t{1}, false, std::string{}, actors::deadline_after(request_timeout),
                std::string{}, std::string{})
      .then(
          [self, sh, cart_id, skus = std::move(skus), i](actors::cart_view&) mutable {
            add_items(self, sh, std::move(cart_id), std::move(skus), i + 1);
          },
          [self, sh](caf::error& err) {
            const std::string e = "add to cart: " + describe(err);
            flow_done(self, sh, &e);
          });
}

void start_flow(driver_ptr self, const shared_ptr& sh) {
  auto& st = self->state;
  ++st.outstanding;
  const std::string cart_id = st.prefix + "c" + std::to_string(st.next++);
  auto skus = st.picker->next();
  self->request(sh->inst->carts->acquire(cart_id), request_timeout, actors::create_atom::value,
                std::string{})
      .then([self, sh, cart_id, skus = std::move(skus)](
                actors::cart_view&) mutable { add_items(self, sh, cart_id, std::move(skus), 0); },
            [self, sh](caf::error& err) {
              const std::string e = "create cart: " + describe(err);
              flow_done(self, sh, &e);
            });
}

caf::behavior driver(driver_ptr self, shared_ptr sh, int id, int quota) {
  self->state.prefix = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(id) + "-";
  self->state.picker =
      std::make_unique<sku_picker>(*sh->opts, 0xc0ffee + static_cast<uint64_t>(id));
  for (int i = 0; i < quota; ++i) {
    start_flow(self, sh);
  }
  return {[](actors::tick_atom) {}};
}

} // namespace

run_result run_checkout_surge(const checkout_options& opts, const std::string& db_url,
                              const std::string& redis_prefix, uint16_t gateway_port,
                              checkout_extra& extra) {
  const auto settings = node_settings();
  std::cerr << "[surge] settings: journal.writers=" << settings.journal_writers
            << " storage.threads=" << settings.storage_threads
            << " payments.timeout=" << settings.payments_timeout.count() << "ms"
            << " payments.threads=" << settings.payments_threads
            << " orders.threads=" << settings.orders_threads << "\n";
  run_result res;
  res.system = "Surge (cart, SKU, order actors)";
  instance inst{bench_node_options(settings, db_url, opts.redis_url, redis_prefix,
                                   "alpha=http://127.0.0.1:" + std::to_string(gateway_port))};
  for (int i = 0; i < opts.skus; ++i) {
    persistence::product_record rec;
    rec.sku = sku_picker::name_of(i);
    rec.name = "Item " + std::to_string(i);
    rec.description = "surge-bench checkout";
    rec.category = "bench";
    rec.price_cents = sku_picker::price_of(i);
    ask_sku<actors::product_view>(inst, rec.sku, actors::product_atom::value, rec);
    ask_sku<actors::stock_view>(inst, rec.sku, actors::stock_atom::value,
                                actors::stock_change{true, initial_on_hand});
  }

  auto sh = std::make_shared<drive_shared>();
  sh->inst = &inst;
  sh->opts = &opts;
  const int drivers = std::min(max_drivers, opts.concurrency);
  sh->running = drivers;
  sh->p = phases::starting_now(warmup_for(opts.duration), opts.duration);
  for (int i = 0; i < drivers; ++i) {
    const int quota = opts.concurrency / drivers + (i < opts.concurrency % drivers ? 1 : 0);
    inst.sys->spawn(driver, sh, i, quota);
  }
  report_progress("surge", sh->p, sh->measured, "checkouts");
  {
    std::unique_lock<std::mutex> lock{sh->mtx};
    if (!sh->cv.wait_for(lock, 4 * request_timeout, [&] { return sh->running == 0; })) {
      throw std::runtime_error("the drivers did not finish in time");
    }
    sh->result.system = res.system;
    res = std::move(sh->result);
    extra.lines = sh->lines;
  }
  res.seconds = sh->p.seconds();

  // Every SKU sold exactly the units of the confirmed checkouts and holds nothing any more.
  std::string bad;
  int mismatches = 0;
  for (int i = 0; i < opts.skus; ++i) {
    const auto sku = sku_picker::name_of(i);
    const auto s = ask_sku<actors::stock_view>(inst, sku, actors::stock_atom::value);
    const auto it = extra.lines.find(sku);
    const int64_t expected = it == extra.lines.end() ? 0 : it->second;
    if ((s.sold != expected || s.held != 0) && mismatches++ == 0) {
      bad = sku + " sold " + std::to_string(s.sold) + " held " + std::to_string(s.held) +
            ", ordered " + std::to_string(expected);
    }
  }
  inst.stop();

  // And PostgreSQL has every acknowledged order confirmed, with its lines.
  pqxx::connection c{db_url};
  pqxx::nontransaction tx{c};
  extra.orders_confirmed =
      tx.exec("SELECT count(*) FROM orders WHERE status = 'confirmed'").at(0).at(0).as<int64_t>();
  int line_mismatches = 0;
  std::string bad_line;
  std::map<std::string, int64_t> pg_lines;
  for (const auto& r : tx.exec("SELECT l.sku, sum(l.qty) FROM order_lines l JOIN orders o "
                               "USING (order_id) WHERE o.status = 'confirmed' GROUP BY l.sku")) {
    pg_lines[r[0].as<std::string>()] = r[1].as<int64_t>();
  }
  if (pg_lines != extra.lines) {
    ++line_mismatches;
  }
  if (res.errors > 0) {
    res.failure =
        "surge: " + std::to_string(res.errors) + " checkouts failed, first: " + res.first_error;
  } else if (extra.orders_confirmed != static_cast<int64_t>(res.total_ok)) {
    res.failure = "surge: " + std::to_string(extra.orders_confirmed) +
                  " confirmed orders in PostgreSQL but " + std::to_string(res.total_ok) +
                  " checkouts answered 201";
  } else if (mismatches > 0) {
    res.failure = "surge: " + std::to_string(mismatches) + " SKUs off, e.g. " + bad;
  } else if (line_mismatches > 0) {
    res.failure = "surge: the confirmed order lines in PostgreSQL differ from the acknowledged";
  }
  return res;
}

} // namespace surge::bench
