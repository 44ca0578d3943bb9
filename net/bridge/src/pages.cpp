// GET /p/{sku}: the product page as HTML with ETag and Cache-Control, rendered from the SKU
// actor's product and cached in bridge_env::pages.

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "call.hpp"
#include "errors.hpp"
#include "etag.hpp"
#include "handlers.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// Product pages: browsers and CDNs keep them 5 s and may serve them 30 s more while they
/// revalidate.
constexpr std::string_view page_cache_control = "public, max-age=5, stale-while-revalidate=30";

/// Appends `s` escaped for HTML text and attribute values (& < > " '); other bytes unchanged.
void append_html(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
}

/// "25.99 EUR".
std::string money(int64_t cents, const std::string& currency) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%lld.%02lld %s", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100), currency.c_str());
  return buf;
}

/// The product page: name, price, description, "N available" or "Sold out", category.
std::string product_page(const actors::product_view& v) {
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
  out += "</p><p class=\"stock\" data-sku=\"";
  append_html(out, p.sku);
  out += "\">";
  out += v.available > 0 ? std::to_string(v.available) + " available" : std::string{"Sold out"};
  out += "</p><p>Category: ";
  append_html(out, p.category);
  out += "</p></main></body></html>\n";
  return out;
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
        // As old as the question, not the answer.
        auto pg =
            cached_page(product_page(v), "text/html; charset=utf-8", page_cache_control, asked);
        auto resp = conditional(*pg, inm);
        if (env->pages) {
          env->pages->put(sku, std::move(pg), generation);
        }
        return resp;
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
