// The admin API of sales (behind admin_only): PUT, GET, list and DELETE /admin/v1/sales... on the
// sale store's pool (never an I/O thread), each GET with the queue's figures from its sale actor
// (watch_atom) when it answers within the call timeout.

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "surge/actors/errors.hpp"
#include "surge/persistence/errors.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// GET /admin/v1/sales asks at most this many queues for their figures at once; the sales
/// after them are listed with "stats": null.
constexpr std::size_t max_listed_stats = 32;

http_response no_store() {
  auto resp = error_response(503, "unavailable", "the sale store is not available on this node");
  resp.headers.emplace_back("Retry-After", "1");
  return resp;
}

http_response bad_sale_id() {
  return bad_request("a sale id is 1 to 64 letters, digits, '.', '_' or '-', not dots alone");
}

/// The store's refusals as the admin API answers them: a conflict (overlap, a started sale's
/// start or SKUs) is 409 `conflict` with the store's message; a bad argument 400; the rest 503.
http_response store_error(const caf::error& err) {
  auto msg = actors::message_of(err);
  if (persistence::is(err, persistence::errc::conflict) ||
      actors::is(err, actors::errc::conflict)) {
    return error_response(409, "conflict", msg.empty() ? "the sale conflicts with another" : msg);
  }
  if (persistence::is(err, persistence::errc::invalid) || actors::is(err, actors::errc::invalid)) {
    return bad_request(msg.empty() ? "invalid sale" : msg);
  }
  return to_http_error(err);
}

/// This node's pages and listings show sales: render the pages of `skus` anew.
void drop_pages(bridge_env& env, const std::vector<std::string>& skus) {
  for (const auto& sku : skus) {
    drop_cached(env, sku);
  }
}

/// The store changed `sale_id` (now `rec`, or gone when null): this node's index sees it at
/// once, the runtime refreshes and reschedules, and the pages of its SKUs (old and new) are
/// rendered anew.
void stored(bridge_env& env, const std::string& sale_id, const persistence::sale_record* rec) {
  std::vector<std::string> skus;
  if (env.sales) {
    if (auto old = env.sales->find(sale_id)) {
      skus = old->skus;
    }
    if (rec != nullptr) {
      env.sales->put(*rec);
    } else {
      env.sales->remove(sale_id);
    }
  }
  if (rec != nullptr) {
    skus.insert(skus.end(), rec->skus.begin(), rec->skus.end());
  }
  if (env.sales_changed) {
    env.sales_changed();
  }
  drop_pages(env, skus);
}

/// Asks the queue of `sale_id` for its figures within the call timeout (through a caller actor,
/// also when the sale actor is local: a busy or missing queue must not hold the admin's answer).
/// `done(summary or nullptr)` runs exactly once, on a caller's thread.
template <class Done>
void ask_stats(bridge_env& env, const std::string& sale_id, Done done) {
  if (env.sale_queues == nullptr || env.callers.empty()) {
    return done(nullptr);
  }
  auto d = std::make_shared<Done>(std::move(done));
  ask<actors::queue_summary>(
      env, env.sale_queues->acquire(sale_id), [d](actors::queue_summary& s) { (*d)(&s); },
      [d](caf::error&) { (*d)(nullptr); }, actors::watch_atom::value);
}

/// Checks that every SKU of `rec` is a product (its SKU actor knows it), then stores the sale and
/// answers. The SKU reads run at once (the I/O thread does not wait); the store's put on its
/// pool.
void check_skus_then_put(std::shared_ptr<bridge_env> env, persistence::sale_record rec,
                         responder r) {
  struct check {
    std::mutex mtx;
    std::size_t left = 0;
    std::string missing; ///< the first SKU that is no product
    std::optional<caf::error> failure;
  };
  auto state = std::make_shared<check>();
  state->left = rec.skus.size();
  auto shared_rec = std::make_shared<const persistence::sale_record>(std::move(rec));
  auto finish = [env, state, shared_rec, r](const std::string& sku, const caf::error* err) mutable {
    {
      std::lock_guard g{state->mtx};
      if (err != nullptr) {
        if (actors::is(*err, actors::errc::not_found)) {
          if (state->missing.empty()) {
            state->missing = sku;
          }
        } else if (!state->failure) {
          state->failure = *err;
        }
      }
      if (--state->left > 0) {
        return;
      }
    }
    if (!state->missing.empty()) {
      return r(bad_request("'skus' names '" + state->missing + "', which is no product"));
    }
    if (state->failure) {
      return r(to_http_error(*state->failure));
    }
    env->sale_store->submit([env, shared_rec, r](persistence::sale_store* st) mutable {
      if (st == nullptr) {
        return r(no_store());
      }
      auto put = st->put(*shared_rec);
      if (!put) {
        return r(store_error(put.error()));
      }
      stored(*env, put->sale_id, &*put);
      r(json_response(200, sale_json(*put, actors::system_now_ms())));
    });
  };
  for (const auto& sku : shared_rec->skus) {
    ask<actors::product_view>(
        *env, env->skus->acquire_routed(sku),
        [finish, sku](actors::product_view&) mutable { finish(sku, nullptr); },
        [finish, sku](caf::error& err) mutable { finish(sku, &err); }, actors::product_atom::value);
  }
}

} // namespace

void put_sale(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  if (!valid_sale_id(p[0])) {
    return r(bad_sale_id());
  }
  auto body = object_body(req, false, r);
  if (!body) {
    return;
  }
  std::string err;
  auto rec = sale_fields(*body, p[0], err);
  if (!rec) {
    return r(bad_request(err));
  }
  if (env->sale_store == nullptr) {
    return r(no_store());
  }
  check_skus_then_put(std::move(env), std::move(*rec), std::move(r));
}

void get_sale(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  if (!valid_sale_id(p[0])) {
    return r(not_found("no such sale"));
  }
  if (env->sale_store == nullptr) {
    return r(no_store());
  }
  env->sale_store->submit([env, id = p[0], r](persistence::sale_store* st) mutable {
    if (st == nullptr) {
      return r(no_store());
    }
    auto got = st->get(id);
    if (!got) {
      return r(store_error(got.error()));
    }
    if (!*got) {
      return r(not_found("no such sale: " + id));
    }
    ask_stats(*env, id, [rec = std::move(**got), r](const actors::queue_summary* s) mutable {
      r(json_response(200, sale_json(rec, actors::system_now_ms(), true, s)));
    });
  });
}

void list_sales(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&, responder r) {
  if (!req.query.empty()) {
    return r(bad_request("unknown parameter '" + req.query.begin()->first + "'"));
  }
  if (env->sale_store == nullptr) {
    return r(no_store());
  }
  env->sale_store->submit([env, r](persistence::sale_store* st) mutable {
    if (st == nullptr) {
      return r(no_store());
    }
    auto all = st->list(0);
    if (!all) {
      return r(store_error(all.error()));
    }
    struct gather {
      std::mutex mtx;
      std::vector<persistence::sale_record> sales;
      std::vector<std::optional<actors::queue_summary>> stats;
      std::size_t left = 0;
    };
    auto g = std::make_shared<gather>();
    g->sales = std::move(*all);
    g->stats.resize(g->sales.size());
    const auto asked = std::min(g->sales.size(), max_listed_stats);
    auto answer = [g, r]() mutable {
      std::vector<const actors::queue_summary*> ptrs;
      for (const auto& s : g->stats) {
        ptrs.push_back(s ? &*s : nullptr);
      }
      r(json_response(200, sales_json(g->sales, actors::system_now_ms(), ptrs)));
    };
    if (asked == 0) {
      return answer();
    }
    g->left = asked;
    for (std::size_t i = 0; i < asked; ++i) {
      ask_stats(*env, g->sales[i].sale_id, [g, i, answer](const actors::queue_summary* s) mutable {
        {
          std::lock_guard lk{g->mtx};
          if (s != nullptr) {
            g->stats[i] = *s;
          }
          if (--g->left > 0) {
            return;
          }
        }
        answer();
      });
    }
  });
}

void delete_sale(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  if (!valid_sale_id(p[0])) {
    return r(not_found("no such sale"));
  }
  if (env->sale_store == nullptr) {
    return r(no_store());
  }
  env->sale_store->submit([env, id = p[0], r](persistence::sale_store* st) mutable {
    if (st == nullptr) {
      return r(no_store());
    }
    auto gone = st->remove(id);
    if (!gone) {
      return r(store_error(gone.error()));
    }
    if (!*gone) {
      return r(not_found("no such sale: " + id));
    }
    stored(*env, id, nullptr);
    http_response resp;
    resp.status = 204;
    r(std::move(resp));
  });
}

} // namespace surge::net::bridge
