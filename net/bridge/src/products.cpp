// Products: GET /api/v1/products/{sku} from the SKU actor; GET /api/v1/products from the
// catalog pool, and the machinery every catalog read shares (catalog_reads.hpp).

#include <charconv>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "call.hpp"
#include "catalog_reads.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "etag.hpp"
#include "handlers.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"
#include "surge/net/json.hpp"
#include "surge/persistence/errors.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

bool param_reader::refuse(const char* name, std::string_view why) {
  refused = bad_request(std::string{"'"} + name + "' " + std::string{why});
  return false;
}

bool param_reader::only(std::initializer_list<std::string_view> allowed) {
  for (auto i = req_.query.begin(); i != req_.query.end(); i = req_.query.upper_bound(i->first)) {
    bool known = false;
    for (auto name : allowed) {
      known = known || i->first == name;
    }
    // Names are shown only when they are plain, so that a message never echoes odd bytes.
    const bool plain = valid_id(i->first, 64, "._-[]");
    if (!known) {
      refused = bad_request(plain ? "unknown parameter '" + i->first + "'"
                                  : std::string{"unknown parameter"});
      return false;
    }
    if (req_.query.count(i->first) > 1) {
      return refuse(i->first.c_str(), "is given more than once");
    }
  }
  return true;
}

bool param_reader::text(const char* name, std::size_t max_len, std::string& out) {
  if (auto v = req_.param(name)) {
    if (v->size() > max_len) {
      return refuse(name, "is longer than " + std::to_string(max_len));
    }
    if (!json::valid_utf8(*v)) {
      return refuse(name, "is not UTF-8");
    }
    out = std::string{*v};
  }
  return true;
}

bool param_reader::integer(const char* name, int64_t lo, int64_t hi, std::optional<int64_t>& out) {
  auto v = req_.param(name);
  if (!v || v->empty()) {
    return true;
  }
  int64_t x = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
  if (ec != std::errc{} || ptr != v->data() + v->size() || x < lo || x > hi) {
    return refuse(name, "must be an integer between " + std::to_string(lo) + " and " +
                            std::to_string(hi));
  }
  out = x;
  return true;
}

bool param_reader::boolean(const char* name, bool& out) {
  if (auto v = req_.param(name)) {
    if (*v == "true" || *v == "1") {
      out = true;
    } else if (*v == "false" || *v == "0" || v->empty()) {
      out = false;
    } else {
      return refuse(name, "must be true or false");
    }
  }
  return true;
}

namespace {

/// Reads `key` on the catalog pool as the leader of its flight (page_cache::lead) at
/// `generation`: keeps the answer, then tells `leader` (when set) and every waiter.
/// Past catalog.max_queued reads already queued or running, the read is not queued: it and
/// every waiter of its flight get 503 `unavailable` with Retry-After.
void read_catalog(const std::shared_ptr<bridge_env>& env, std::string key, uint64_t generation,
                  catalog_read read, page_cache::waiter leader) {
  auto answer_all = [env](const std::string& key, uint64_t generation,
                          const page_cache::waiter& leader,
                          std::shared_ptr<const page_cache::page> made, http_response failed) {
    auto waiters =
        env->listings ? env->listings->finish(key, generation) : std::vector<page_cache::waiter>{};
    if (leader) {
      waiters.push_back(leader);
    }
    for (auto& w : waiters) {
      w(made, made ? nullptr : &failed);
    }
  };
  if (env->catalog_queued.fetch_add(1) >= env->catalog_max_queued) {
    env->catalog_queued.fetch_sub(1);
    auto busy = error_response(503, "unavailable", "too many catalog reads waiting; try again");
    busy.headers.emplace_back("Retry-After", "1");
    return answer_all(key, generation, leader, nullptr, std::move(busy));
  }
  env->catalog->submit([env, key = std::move(key), generation, read = std::move(read),
                        leader = std::move(leader), answer_all](persistence::catalog* cat) {
    // The primary answers as of now (the statement's snapshot is taken after this).
    const auto started = page_cache::clock::now();
    // The slot is given back before anyone is answered (a client that sends its next read as
    // soon as it has this answer finds it free), or on the way out if nothing answered.
    struct slot {
      bridge_env& e;
      bool held = true;
      void release() {
        if (std::exchange(held, false)) {
          e.catalog_queued.fetch_sub(1);
        }
      }
      ~slot() { release(); }
    } counted{*env};
    auto answer = [&](std::shared_ptr<const page_cache::page> made, http_response failed) {
      counted.release();
      answer_all(key, generation, leader, std::move(made), std::move(failed));
    };
    if (cat == nullptr) {
      return answer(nullptr, error_response(503, "unavailable", "catalog unavailable"));
    }
    auto body = read(*cat);
    if (!body) {
      if (persistence::is(body.error(), persistence::errc::invalid)) {
        auto msg = actors::message_of(body.error());
        return answer(nullptr, bad_request(msg.empty() ? "invalid request" : msg));
      }
      return answer(nullptr, to_http_error(body.error()));
    }
    // As old as its data: a replica's answer is older than the read.
    auto as_of = std::min(started, cat->last_read_fresh_as_of().value_or(started));
    auto pg = cached_page(std::move(*body), "application/json", env->catalog_cache_control, as_of);
    if (env->listings) {
      env->listings->put(key, pg, generation);
    }
    answer(std::move(pg), {});
  });
}

} // namespace

void serve_catalog_read(const std::shared_ptr<bridge_env>& env, const http_request& req,
                        std::string key, catalog_read read, responder r) {
  std::string inm{req.header("if-none-match").value_or("")};
  page_cache::waiter answer = [inm, r](std::shared_ptr<const page_cache::page> made,
                                       const http_response* failed) {
    r(made ? conditional(*made, inm) : http_response{*failed});
  };
  uint64_t generation = 0;
  if (env->listings) {
    const auto now = page_cache::clock::now();
    generation = env->listings->generation();
    if (auto hit = env->listings->get(key, now)) {
      // Past half its life, a popular answer is read again in the background (one read per
      // key) while the cached one, still within its ttl, answers: it never expires under load.
      if (now - hit->rendered >= env->listings->ttl() / 2 &&
          env->listings->lead(key, generation, {})) {
        read_catalog(env, std::move(key), generation, std::move(read), {});
      }
      return r(conditional(*hit, inm));
    }
    // A read of this key in flight answers this request too.
    if (!env->listings->lead(key, generation, answer)) {
      return;
    }
  }
  read_catalog(env, std::move(key), generation, std::move(read), std::move(answer));
}

namespace {

/// The filters of GET /api/v1/products, or the 400 naming the first bad parameter (unknown or
/// repeated ones first, then q, category, cursor, min_price, max_price, limit, then the cursor's
/// form and in_stock).
std::variant<persistence::product_query, http_response> listing_query(const http_request& req) {
  persistence::product_query q;
  param_reader p{req};
  std::string cursor;
  std::optional<int64_t> limit;
  if (!p.only({"q", "category", "min_price", "max_price", "in_stock", "limit", "cursor"}) ||
      !p.text("q", 200, q.text) || !p.text("category", 100, q.category) ||
      !p.text("cursor", 64, cursor) || !p.integer("min_price", 0, max_money, q.min_price) ||
      !p.integer("max_price", 0, max_money, q.max_price) || !p.integer("limit", 1, 100, limit)) {
    return std::move(*p.refused);
  }
  if (!cursor.empty() && !valid_sku(cursor)) {
    return bad_request("'cursor' is not a cursor this API returned");
  }
  q.after_sku = cursor;
  q.limit = static_cast<std::size_t>(limit.value_or(20));
  if (!p.boolean("in_stock", q.in_stock_only)) {
    return std::move(*p.refused);
  }
  return q;
}

/// The query in one canonical string: the listing cache's key.
std::string listing_key(const persistence::product_query& q) {
  return listing_key_builder{"products"}
      .add(q.text)
      .add(q.category)
      .add(q.after_sku)
      .add_number(q.min_price)
      .add_number(q.max_price)
      .add(std::to_string(q.limit))
      .add(q.in_stock_only ? "s" : "a")
      .done();
}

} // namespace

void get_product(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  call<actors::product_view>(
      *env, env->skus->acquire_routed(p[0]), std::move(r),
      [env](actors::product_view& v) {
        return json_response(
            200, product_json(v, sale_lookup{env->sales.get(), actors::system_now_ms()}));
      },
      actors::product_atom::value);
}

void list_products(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&,
                   responder r) {
  auto parsed = listing_query(req);
  if (auto* refused = std::get_if<http_response>(&parsed)) {
    return r(std::move(*refused));
  }
  auto q = std::get<persistence::product_query>(std::move(parsed));
  auto key = listing_key(q);
  serve_catalog_read(
      env, req, std::move(key),
      [q = std::move(q),
       sales = env->sales](persistence::catalog& cat) -> caf::expected<std::string> {
        auto page = cat.list_products(q);
        if (!page) {
          return page.error();
        }
        return listing_json(*page, q.limit, sale_lookup{sales.get(), actors::system_now_ms()});
      },
      std::move(r));
}

} // namespace surge::net::bridge
