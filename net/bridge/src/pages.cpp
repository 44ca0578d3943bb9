// GET /p/{sku}: the product page as HTML with ETag and Cache-Control, rendered from the SKU
// actor's product (and the sale that governs the SKU, from bridge_env::sales) and cached in
// bridge_env::pages; warm_pages() renders pages into that cache the same way (a sale's prewarm).

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "etag.hpp"
#include "handlers.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/net/text.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// Product pages: browsers and CDNs keep them 5 s and may serve them 30 s more while they
/// revalidate.
constexpr std::string_view page_cache_control = "public, max-age=5, stale-while-revalidate=30";

using text::append_html;

/// "25.99 EUR".
std::string money(int64_t cents, const std::string& currency) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%lld.%02lld %s", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100), currency.c_str());
  return buf;
}

/// The sale that governs the page's SKU, as a paragraph: its name and its start (or its end once
/// it started), both times as <time> elements in RFC 3339 UTC.
void append_sale(std::string& out, const persistence::sale_record& sale, int64_t now_ms) {
  const std::string state = sale_state(sale, now_ms);
  out += "<p class=\"sale\" data-sale=\"";
  append_html(out, sale.sale_id);
  out += "\" data-state=\"" + state + "\"><strong>";
  append_html(out, sale.name);
  out += "</strong>: ";
  const auto starts = rfc3339_ms(sale.starts_at_ms);
  const auto ends = rfc3339_ms(sale.ends_at_ms);
  if (state == "scheduled") {
    out += "the sale starts at <time datetime=\"" + starts + "\">" + starts + "</time>";
  } else if (state == "live") {
    out += "on sale now, until <time datetime=\"" + ends + "\">" + ends + "</time>";
  } else {
    out += "the sale ended at <time datetime=\"" + ends + "\">" + ends + "</time>";
  }
  if (sale.queue_enabled && state != "ended") {
    out += " (through a waiting room)";
  }
  out += ".</p>";
}

/// The product page: name, price, description, the sale when one governs the SKU, "N available"
/// or "Sold out", category.
std::string product_page(const actors::product_view& v, const actors::sale_index* sales,
                         int64_t now_ms) {
  const auto& p = v.product;
  std::string out = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>";
  append_html(out, p.name);
  out += "</title><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
         "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 "
         "1rem}.price{font-size:1.5rem;font-weight:600}.stock{color:#555}</style></head><body>"
         "<main><h1>";
  append_html(out, p.name);
  out += "</h1><p class=\"price\">";
  append_html(out, money(p.price_cents, p.currency));
  out += "</p><p>";
  append_html(out, p.description);
  out += "</p>";
  if (sales != nullptr) {
    if (auto sale = sales->of_sku(p.sku, now_ms)) {
      append_sale(out, *sale, now_ms);
    }
  }
  out += "<p class=\"stock\" data-sku=\"";
  append_html(out, p.sku);
  out += "\">";
  out += v.available > 0 ? std::to_string(v.available) + " available" : std::string{"Sold out"};
  out += "</p><p>Category: ";
  append_html(out, p.category);
  out += "</p></main></body></html>\n";
  return out;
}

/// The page of `sku` from its product `v`, read after `asked` (as old as the question, not the
/// answer), kept in the page cache when it has one (unless a drop since `generation`).
std::shared_ptr<const page_cache::page> render_page(bridge_env& env, const std::string& sku,
                                                    const actors::product_view& v,
                                                    page_cache::clock::time_point asked,
                                                    uint64_t generation) {
  auto pg = cached_page(product_page(v, env.sales.get(), actors::system_now_ms()),
                        "text/html; charset=utf-8", page_cache_control, asked);
  if (env.pages) {
    env.pages->put(sku, pg, generation);
  }
  return pg;
}

} // namespace

void get_page(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  const auto asked = page_cache::clock::now();
  uint64_t generation = 0;
  if (env->pages) {
    if (auto hit = env->pages->get(p[0], asked)) {
      return r(conditional(*hit, req.header("if-none-match").value_or("")));
    }
    generation = env->pages->generation();
  }
  std::string inm{req.header("if-none-match").value_or("")};
  call<actors::product_view>(
      *env, env->skus->acquire_routed(p[0]), std::move(r),
      [env, sku = p[0], inm, asked, generation](actors::product_view& v) {
        return conditional(*render_page(*env, sku, v, asked, generation), inm);
      },
      actors::product_atom::value);
}

void drop_cached(bridge_env& env, const std::string& sku) {
  if (env.pages) {
    env.pages->drop(sku);
  }
  if (env.listings) {
    env.listings->clear();
  }
}

} // namespace surge::net::bridge

namespace surge::net {

void warm_pages(std::shared_ptr<bridge_env> env, const std::vector<std::string>& skus,
                std::function<void(std::size_t rendered)> done) {
  struct warming {
    std::atomic<std::size_t> left;
    std::atomic<std::size_t> rendered{0};
    std::function<void(std::size_t)> done;
  };
  auto w = std::make_shared<warming>();
  w->left = skus.size() + 1; // + this call, so that `done` runs once, after the last answer
  w->done = std::move(done);
  auto one_done = [w](bool rendered) {
    if (rendered) {
      w->rendered.fetch_add(1);
    }
    if (w->left.fetch_sub(1) == 1 && w->done) {
      w->done(w->rendered.load());
    }
  };
  for (const auto& sku : skus) {
    if (!bridge::valid_sku(sku)) {
      one_done(false);
      continue;
    }
    const auto asked = page_cache::clock::now();
    const uint64_t generation = env->pages ? env->pages->generation() : 0;
    bridge::ask<actors::product_view>(
        *env, env->skus->acquire_routed(sku),
        [env, sku, asked, generation, one_done](actors::product_view& v) {
          bridge::render_page(*env, sku, v, asked, generation);
          one_done(env->pages != nullptr);
        },
        [one_done](caf::error&) { one_done(false); }, actors::product_atom::value);
  }
  one_done(false);
}

} // namespace surge::net
