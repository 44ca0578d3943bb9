// GET /api/v1/search and GET /api/v1/categories (API.md "Search and catalog"): parameters
// checked here, the search itself in persistence (catalog::search), answers cached and
// conditional as every catalog read (catalog_reads.hpp).

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "catalog_reads.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "surge/actors/deadline.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// The longest cursor persistence hands out is far shorter; anything longer is not one.
constexpr std::size_t max_cursor = 512;

std::optional<persistence::search_sort> sort_of(std::string_view s) {
  using persistence::search_sort;
  if (s == "relevance") {
    return search_sort::relevance;
  }
  if (s == "name") {
    return search_sort::name;
  }
  if (s == "price_asc") {
    return search_sort::price_asc;
  }
  if (s == "price_desc") {
    return search_sort::price_desc;
  }
  if (s == "newest") {
    return search_sort::newest;
  }
  return std::nullopt;
}

/// The search of `req`, or the 400 naming the first bad parameter (unknown or repeated ones
/// first, then in the order of API.md's table).
std::variant<persistence::search_query, http_response> search_query_of(const http_request& req) {
  persistence::search_query q;
  param_reader p{req};
  std::optional<int64_t> limit;
  std::string sort;
  std::string facets;
  if (!p.only({"q", "category", "min_price", "max_price", "in_stock", "sort", "limit", "cursor",
               "facets"}) ||
      !p.text("q", 200, q.text) || !p.text("category", 100, q.category) ||
      !p.integer("min_price", 0, max_money, q.min_price) ||
      !p.integer("max_price", 0, max_money, q.max_price) ||
      !p.boolean("in_stock", q.in_stock_only) || !p.text("sort", 16, sort) ||
      !p.integer("limit", 1, 100, limit) || !p.text("cursor", max_cursor, q.cursor) ||
      !p.text("facets", 64, facets)) {
    return std::move(*p.refused);
  }
  if (q.min_price && q.max_price && *q.min_price > *q.max_price) {
    return bad_request("'min_price' is more than 'max_price'");
  }
  // A text of blanks is no text (websearch syntax ignores them anyway).
  if (q.text.find_first_not_of(" \t\r\n") == std::string::npos) {
    q.text.clear();
  }
  if (sort.empty()) {
    q.sort = q.text.empty() ? persistence::search_sort::name : persistence::search_sort::relevance;
  } else if (auto s = sort_of(sort)) {
    q.sort = *s;
  } else {
    return bad_request("'sort' must be one of relevance, name, price_asc, price_desc, newest");
  }
  q.limit = static_cast<std::size_t>(limit.value_or(20));
  if (!q.cursor.empty() && !valid_id(q.cursor, max_cursor, "_-=")) {
    return bad_request("'cursor' is not a cursor this API returned");
  }
  for (std::size_t pos = 0; pos < facets.size();) {
    auto comma = facets.find(',', pos);
    auto name = std::string_view{facets}.substr(pos, comma == std::string::npos ? std::string::npos
                                                                                : comma - pos);
    if (name == "category") {
      q.facet_category = true;
    } else if (name == "price") {
      q.facet_price = true;
    } else if (!name.empty()) {
      return bad_request("'facets' must be a comma list of category, price");
    }
    pos = comma == std::string::npos ? facets.size() : comma + 1;
  }
  return q;
}

/// The search in one canonical string: its cache key.
std::string search_key(const persistence::search_query& q) {
  const char flags[] = {q.in_stock_only ? 's' : 'a', q.facet_category ? 'c' : '-',
                        q.facet_price ? 'p' : '-', '\0'};
  return listing_key_builder{"search"}
      .add(q.text)
      .add(q.category)
      .add(q.cursor)
      .add_number(q.min_price)
      .add_number(q.max_price)
      .add(std::to_string(q.limit))
      .add(std::to_string(static_cast<int>(q.sort)))
      .add(flags)
      .done();
}

} // namespace

void search_products(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&,
                     responder r) {
  auto parsed = search_query_of(req);
  if (auto* refused = std::get_if<http_response>(&parsed)) {
    return r(std::move(*refused));
  }
  auto q = std::get<persistence::search_query>(std::move(parsed));
  auto key = search_key(q);
  serve_catalog_read(
      env, req, std::move(key),
      [q = std::move(q),
       sales = env->sales](persistence::catalog& cat) -> caf::expected<std::string> {
        auto page = cat.search(q);
        if (!page) {
          return page.error();
        }
        return search_json(*page, sale_lookup{sales.get(), actors::system_now_ms()});
      },
      std::move(r));
}

void list_categories(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&,
                     responder r) {
  param_reader p{req};
  if (!p.only({})) {
    return r(std::move(*p.refused));
  }
  serve_catalog_read(
      env, req, "categories",
      [](persistence::catalog& cat) -> caf::expected<std::string> {
        auto all = cat.categories();
        if (!all) {
          return all.error();
        }
        return categories_json(*all);
      },
      std::move(r));
}

} // namespace surge::net::bridge
