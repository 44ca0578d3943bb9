#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

#include "pg_products.hpp"
#include "pg_util.hpp"
#include "surge/persistence/catalog.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::persistence {

namespace {

// --- Search text ------------------------------------------------------------------------------

/// What search() makes of a query text. Every part goes to PostgreSQL as a parameter.
struct search_text {
  /// For websearch_to_tsquery('english', ...): the text as typed; empty: no text filter.
  std::string fts;
  /// The last word is being typed: its last lexeme matches as a prefix (`play` finds
  /// PlayStation). False after a space, a closing quote or an excluded -word.
  bool prefix = false;
  /// The whole text, trimmed: an exact, case-insensitive SKU match ranks first.
  std::string sku;
  /// The words to compare with names by trigrams in the typo fallback (quotes and -words out).
  std::string fuzzy;
  /// The -words, as a websearch text of alternatives; empty: none. The typo fallback keeps
  /// excluding them.
  std::string excluded;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/// A letter, a digit or a byte of a non-ASCII character.
bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
}

search_text analyse(const std::string& text) {
  search_text out;
  auto first = text.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string::npos) {
    return out;
  }
  auto last = text.find_last_not_of(" \t\n\r\f\v");
  out.sku = text.substr(first, last - first + 1);
  if (std::none_of(text.begin(), text.end(), is_word_byte)) {
    return out;
  }
  out.fts = text;
  // Tokens split at spaces and quotes; a token outside quotes that starts with '-' is excluded.
  bool quoted = false;
  bool last_excluded = false;
  std::string token;
  auto flush = [&] {
    if (token.empty()) {
      return;
    }
    last_excluded = !quoted && token.size() > 1 && token[0] == '-';
    auto& into = last_excluded ? out.excluded : out.fuzzy;
    if (!into.empty()) {
      into += last_excluded ? " or " : " ";
    }
    into += last_excluded ? token.substr(1) : token;
    token.clear();
  };
  for (char c : text) {
    if (c == '"') {
      flush();
      quoted = !quoted;
    } else if (is_space(c)) {
      flush();
    } else {
      token += c;
    }
  }
  flush();
  out.prefix = !quoted && is_word_byte(text.back()) && !last_excluded;
  return out;
}

// --- Cursor -----------------------------------------------------------------------------------

/// Where a page ended: the sort key and sku of its last product, and the mode of the search
/// ('t' full-text, 'f' with the typo fallback) so that later pages match the same way.
struct search_cursor {
  char mode = 't';
  std::string key;
  std::string sku;
};

constexpr std::string_view cursor_version = "s1";

/// FNV-1a 64 of everything that selects and orders the matches (not limit, not facets), as 16
/// hex digits: a cursor only continues the query that made it.
std::string query_hash(const search_query& q) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](std::string_view part) {
    for (unsigned char c : part) {
      h = (h ^ c) * 0x100000001b3ULL;
    }
    h = (h ^ 0xff) * 0x100000001b3ULL; // a separator no UTF-8 text contains
  };
  mix(q.text);
  mix(q.category);
  mix(q.min_price ? std::to_string(*q.min_price) : "-");
  mix(q.max_price ? std::to_string(*q.max_price) : "-");
  mix(q.in_stock_only ? "1" : "0");
  mix(std::to_string(static_cast<int>(q.sort)));
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) {
    out[static_cast<std::size_t>(i)] = digits[h & 15];
  }
  return out;
}

/// Hex of "s1" NUL mode NUL hash NUL key NUL sku: opaque to clients, and a NUL never occurs in
/// PostgreSQL text.
std::string encode_cursor(const search_cursor& c, const std::string& hash) {
  std::string raw{cursor_version};
  for (const std::string_view part : {std::string_view{&c.mode, 1}, std::string_view{hash},
                                      std::string_view{c.key}, std::string_view{c.sku}}) {
    raw += '\0';
    raw += part;
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

/// Does `key` have the form search_sql's keyset casts it to for `sort`?
bool key_fits(search_sort sort, const std::string& key) {
  auto all = [&key](auto pred) {
    return !key.empty() && std::all_of(key.begin(), key.end(), pred);
  };
  switch (sort) {
  case search_sort::relevance: { // float8 as text
    if (key.size() > 32 || !all([](char c) {
          return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == 'e' || c == '+';
        })) {
      return false;
    }
    double d = 0;
    auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), d);
    return ec == std::errc{} && ptr == key.data() + key.size() && std::isfinite(d);
  }
  case search_sort::price_asc:
  case search_sort::price_desc: {
    int64_t x = 0;
    auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), x);
    return !key.empty() && ec == std::errc{} && ptr == key.data() + key.size();
  }
  case search_sort::newest: // YYYY-MM-DDTHH:MI:SS.US
    return key.size() == 26 && std::all_of(key.begin(), key.end(), [i = 0](char c) mutable {
             const char* shape = "dddd-dd-ddTdd:dd:dd.dddddd";
             const char want = shape[i++];
             return want == 'd' ? (c >= '0' && c <= '9') : c == want;
           });
  case search_sort::name: // text: PostgreSQL refuses bytes that are not UTF-8 (see search())
    return key.size() <= 4096;
  }
  return false;
}

caf::expected<search_cursor> decode_cursor(const std::string& text, const std::string& hash,
                                           search_sort sort) {
  auto bad = [](const char* why) {
    return make_error(errc::invalid, std::string{"cursor: "} + why);
  };
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    return -1;
  };
  if (text.size() % 2 != 0 || text.size() > 8192) {
    return bad("not a cursor of this search");
  }
  std::string raw;
  raw.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    auto hi = nibble(text[i]);
    auto lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) {
      return bad("not a cursor of this search");
    }
    raw += static_cast<char>(hi * 16 + lo);
  }
  std::array<std::string, 5> parts;
  std::size_t n = 0;
  for (char c : raw) {
    if (c == '\0') {
      if (++n == parts.size()) {
        return bad("not a cursor of this search");
      }
    } else {
      parts[n] += c;
    }
  }
  if (n != parts.size() - 1 || parts[0] != cursor_version || parts[1].size() != 1 ||
      (parts[1][0] != 't' && parts[1][0] != 'f')) {
    return bad("not a cursor of this search");
  }
  if (parts[2] != hash) {
    return bad("made by another query (text, filters or sort changed)");
  }
  if (!key_fits(sort, parts[3]) || parts[4].empty() || parts[4].size() > 256) {
    // The hash is no secret: a hand-made cursor must still never reach PostgreSQL as a value
    // it cannot cast.
    return bad("not a cursor of this search");
  }
  return search_cursor{parts[1][0], std::move(parts[3]), std::move(parts[4])};
}

// --- Highlight --------------------------------------------------------------------------------

/// ts_headline marks matches with \x01 ... \x02 (removed from the product text first, so no
/// product can forge one); the statement cuts the excerpt to 320 characters, HTML-escapes it and
/// turns the marks into <em>...</em>. REQUIRES: `escaped` is that; returns it with a mark that
/// the cut left open closed.
std::string close_marks(std::string escaped) {
  std::size_t opened = 0;
  std::size_t closed = 0;
  for (auto at = escaped.find("<em>"); at != std::string::npos; at = escaped.find("<em>", at + 1)) {
    ++opened;
  }
  for (auto at = escaped.find("</em>"); at != std::string::npos;
       at = escaped.find("</em>", at + 1)) {
    ++closed;
  }
  if (opened > closed) {
    escaped += "</em>";
  }
  return escaped;
}

/// Price facet edges in cents: [0, 2500), [2500, 5000), ... [100000, open).
constexpr std::array<int64_t, 7> price_edges{0, 2500, 5000, 10000, 25000, 50000, 100000};

/// Fewer full-text matches than this on a first page: search again with the typo fallback.
constexpr int64_t fuzzy_below = 5;

/// Without a text, total counts exactly up to this bound and reports the bound beyond it.
constexpr int64_t total_bound = 1000;

/// The catalog on one libpqxx connection. Owned and used by one thread at a time.
class pg_catalog final : public catalog {
 public:
  explicit pg_catalog(std::unique_ptr<pqxx::connection> conn)
      : conn_(std::move(conn)) {}

  bool healthy() const override { return healthy_; }

  caf::expected<std::vector<product_listing>> list_products(const product_query& q) override;

  caf::expected<search_page> search(const search_query& q) override;

  caf::expected<std::vector<category_count>> categories() override;

 private:
  /// One statement of search() in `mode`, after `after` (empty: the first page).
  search_page run_search(const search_query& q, const search_text& text, char mode,
                         const std::optional<search_cursor>& after, const std::string& hash);

  /// Session settings search relies on, once per connection (see prepare_session).
  void prepare_session();

  const std::unique_ptr<pqxx::connection> conn_;
  bool healthy_ = true;
  bool session_ready_ = false;
};

caf::expected<std::vector<product_listing>> pg_catalog::list_products(const product_query& q) {
  if (!healthy_) {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }
  const auto limit = static_cast<int64_t>(std::clamp<std::size_t>(q.limit, 1, 100));
  // Every filter is a parameter; an unset filter is a NULL (or empty) parameter that the
  // statement skips. A text without any word filters nothing.
  std::optional<std::string> text;
  if (!q.text.empty()) {
    text = q.text;
  }
  std::optional<std::string> category;
  if (!q.category.empty()) {
    category = q.category;
  }
  try {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec_params(
        "SELECT p.sku, p.name, p.description, p.category, p.price_cents, p.currency,"
        " p.per_customer_limit, coalesce(s.on_hand - s.held - s.sold, 0) AS available"
        " FROM products p LEFT JOIN stock s ON s.sku = p.sku"
        " WHERE ($1::text IS NULL OR numnode(plainto_tsquery('simple', $1::text)) = 0"
        "        OR p.search @@ plainto_tsquery('simple', $1::text))"
        "   AND ($2::text IS NULL OR p.category = $2::text)"
        "   AND ($3::bigint IS NULL OR p.price_cents >= $3::bigint)"
        "   AND ($4::bigint IS NULL OR p.price_cents <= $4::bigint)"
        "   AND (NOT $5::boolean OR coalesce(s.on_hand - s.held - s.sold, 0) > 0)"
        "   AND p.sku > $6::text"
        " ORDER BY p.sku LIMIT $7::bigint",
        text, category, q.min_price, q.max_price, q.in_stock_only, q.after_sku, limit);
    std::vector<product_listing> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(product_listing{detail::product_of(row), row[7].as<int64_t>()});
    }
    return out;
  } catch (...) {
    return detail::translate_current(*conn_, healthy_);
  }
}

void pg_catalog::prepare_session() {
  if (session_ready_) {
    return;
  }
  // Stop-word-only texts make websearch_to_tsquery send a NOTICE: not worth a line on stderr.
  // Scores travel in cursors as text: shortest exact float output. Typos: a name is similar
  // enough when word_similarity reaches 0.45 (pg_trgm's default 0.6 misses most one-letter
  // typos of short words).
  pqxx::nontransaction tx{*conn_};
  tx.exec("SET client_min_messages = warning; SET extra_float_digits = 1;"
          " SET pg_trgm.word_similarity_threshold = 0.45");
  session_ready_ = true;
}

caf::expected<search_page> pg_catalog::search(const search_query& q) {
  if (!healthy_) {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }
  const auto hash = query_hash(q);
  std::optional<search_cursor> after;
  if (!q.cursor.empty()) {
    auto decoded = decode_cursor(q.cursor, hash, q.sort);
    if (!decoded) {
      return std::move(decoded.error());
    }
    after = std::move(*decoded);
  }
  const auto text = analyse(q.text);
  try {
    prepare_session();
    if (after) {
      return run_search(q, text, after->mode, after, hash);
    }
    auto page = run_search(q, text, 't', after, hash);
    if (!text.fts.empty() && !text.fuzzy.empty() && page.total < fuzzy_below) {
      return run_search(q, text, 'f', after, hash);
    }
    return page;
  } catch (...) {
    // The values a shopper sends are checked before they get here; a data error (bytes a
    // hand-made cursor carries that are not UTF-8) is that cursor's.
    auto err = detail::translate_current(*conn_, healthy_, {.bad_input_invalid = true});
    if (is(err, errc::invalid)) {
      return make_error(errc::invalid, "cursor: not a cursor of this search");
    }
    return err;
  }
}

/// The websearch tsquery of $1, its last lexeme a prefix when $2.
constexpr const char* tsq =
    "(CASE WHEN $2::boolean THEN regexp_replace(websearch_to_tsquery('english', $1::text)::text,"
    " '''$', ''':*')::tsquery ELSE websearch_to_tsquery('english', $1::text) END)";

/// The SQL of one search page. Assembled from fixed fragments only; every value is a parameter
/// ($1 text, $2 prefix, $3 sku text, $4 fuzzy words, $5 excluded words, $6 category, $7/$8
/// prices, $9 in stock, $10/$11 cursor key and sku, $12 limit + 1). Unnamed statements are
/// planned with their values, so the branches a query does not use fold away. Rows: part 0 the
/// page (rn, product columns, available, score, highlight, sort_key), part 1 the total (n),
/// part 2 category facets (category, n), part 3 price facets (width_bucket in price_cents, n).
std::string search_sql(const search_query& q, bool has_text, bool fuzzy, bool after) {
  // `types` names every parameter's type, as a mode may leave some unused; it is never read.
  std::string sql = "WITH types AS (SELECT $1::text, $2::boolean, $3::text, $4::text, $5::text,"
                    " $6::text, $7::bigint, $8::bigint, $9::boolean, $10::text, $11::text,"
                    " $12::bigint), m AS ";
  // With a text every match is scored anyway: score once, then page, count and facet.
  sql += has_text ? "MATERIALIZED" : "NOT MATERIALIZED";
  // The stock projection is joined only for the page's rows (below): a join over every match
  // costs more than ranking them. in_stock looks rows up one by one, and only when asked.
  sql += " (SELECT p.sku, p.name, p.category, p.price_cents, p.created_at, ";
  if (has_text) {
    // Tiers: exact SKU +3; a full-text match 1 + r/(1+r) with r = ts_rank (name and sku weigh
    // 1.0, description 0.4, category 0.2), +0.5 when the name starts with the text; a name
    // only similar to the words (typo fallback) 0.99 * word_similarity, below all of those.
    sql += "(CASE WHEN lower(p.sku) = lower($3::text) THEN 3.0::float8 ELSE 0.0::float8 END"
           " + CASE WHEN p.search_en @@ ";
    sql += tsq;
    sql += " THEN 1.0::float8 + ts_rank(p.search_en, ";
    sql += tsq;
    sql += ", 32)::float8 + CASE WHEN starts_with(lower(p.name), lower($3::text))"
           " THEN 0.5::float8 ELSE 0.0::float8 END";
    sql += fuzzy ? " ELSE 0.99::float8 * word_similarity(lower($4::text), lower(p.name))::float8"
                   " END)"
                 : " ELSE 0.0::float8 END)";
  } else {
    sql += "0.0::float8";
  }
  sql += " AS score FROM products p WHERE ";
  if (has_text) {
    sql += "(p.search_en @@ ";
    sql += tsq;
    sql += " OR lower(p.sku) = lower($3::text)";
    if (fuzzy) {
      sql += " OR (lower($4::text) <% lower(p.name) AND ($5::text IS NULL"
             " OR NOT p.search_en @@ websearch_to_tsquery('english', $5::text)))";
    }
    sql += ") AND ";
  }
  sql += "($6::text IS NULL OR p.category = $6::text)"
         " AND ($7::bigint IS NULL OR p.price_cents >= $7::bigint)"
         " AND ($8::bigint IS NULL OR p.price_cents <= $8::bigint)"
         " AND (NOT $9::boolean OR EXISTS (SELECT 1 FROM stock s WHERE s.sku = p.sku"
         " AND s.on_hand - s.held - s.sold > 0))),";
  // The keyset: (sort key, sku) of the last product of the page before. A descending key is
  // written `key <= k AND (key < k OR sku > s)` so that an index bounds the scan.
  const char* key = "";
  const char* keyset = "";
  const char* order = "";
  switch (q.sort) {
  case search_sort::relevance:
    key = "m.score::text";
    keyset = "m.score <= $10::float8 AND (m.score < $10::float8 OR m.sku > $11::text)";
    order = "m.score DESC, m.sku";
    break;
  case search_sort::name:
    key = "m.name";
    keyset = "(m.name, m.sku) > ($10::text, $11::text)";
    order = "m.name, m.sku";
    break;
  case search_sort::price_asc:
    key = "m.price_cents::text";
    keyset = "(m.price_cents, m.sku) > ($10::bigint, $11::text)";
    order = "m.price_cents, m.sku";
    break;
  case search_sort::price_desc:
    key = "m.price_cents::text";
    keyset = "m.price_cents <= $10::bigint"
             " AND (m.price_cents < $10::bigint OR m.sku > $11::text)";
    order = "m.price_cents DESC, m.sku";
    break;
  case search_sort::newest:
    key = "to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')";
    keyset = "m.created_at <= ($10::timestamp AT TIME ZONE 'UTC') AND"
             " (m.created_at < ($10::timestamp AT TIME ZONE 'UTC') OR m.sku > $11::text)";
    order = "m.created_at DESC, m.sku";
    break;
  }
  sql += " page AS (SELECT m.*, ";
  sql += key;
  sql += " AS sort_key FROM m";
  if (after) {
    sql += " WHERE ";
    sql += keyset;
  }
  sql += " ORDER BY ";
  sql += order;
  sql += " LIMIT $12::bigint)"
         " SELECT 0 AS part, row_number() OVER (ORDER BY ";
  sql += order; // over the page's rows only, aliased m below
  sql += ") AS rn, p.sku, p.name, p.description, p.category, p.price_cents, p.currency,"
         " p.per_customer_limit, coalesce(s.on_hand - s.held - s.sold, 0), m.score, ";
  if (has_text) {
    sql += "CASE WHEN strpos(h.raw, E'\\x01') > 0 THEN replace(replace(replace(replace(replace("
           "replace(replace(left(h.raw, 320), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '\"',"
           " '&quot;'), '''', '&#39;'), E'\\x01', '<em>'), E'\\x02', '</em>') END";
  } else {
    sql += "NULL::text";
  }
  sql += " AS highlight, m.sort_key, NULL::bigint AS n FROM page m JOIN products p ON p.sku = m.sku"
         " LEFT JOIN stock s ON s.sku = m.sku";
  if (has_text) {
    // Control characters out of the product text: only ts_headline's own marks are \x01/\x02.
    sql += " CROSS JOIN LATERAL (SELECT ts_headline('english', translate(p.name || ' - ' ||"
           " p.description, E'\\x01\\x02', ''), ";
    sql += tsq;
    sql += ", E'StartSel=\\x01, StopSel=\\x02, MaxWords=24, MinWords=8') AS raw) h";
  }
  const std::string nulls = "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL";
  if (has_text) {
    sql += " UNION ALL SELECT 1, " + nulls + ", NULL, count(*) FROM m";
  } else {
    sql += " UNION ALL SELECT 1, " + nulls + ", NULL, least(count(*), " +
           std::to_string(total_bound) + ") FROM (SELECT 1 FROM m LIMIT " +
           std::to_string(total_bound + 1) + ") c";
  }
  if (q.facet_category) {
    sql += " UNION ALL SELECT 2, NULL, NULL, NULL, NULL, m.category COLLATE \"C\", NULL, NULL, "
           "NULL, NULL,"
           " NULL, NULL, NULL, count(*) FROM m WHERE m.category <> '' GROUP BY m.category";
  }
  if (q.facet_price) {
    sql += " UNION ALL SELECT 3, NULL, NULL, NULL, NULL, NULL, width_bucket(m.price_cents, ARRAY[";
    for (std::size_t i = 0; i < price_edges.size(); ++i) {
      sql += (i == 0 ? "" : ",") + std::to_string(price_edges[i]);
    }
    sql += "]::bigint[]), NULL, NULL, NULL, NULL, NULL, NULL, count(*) FROM m GROUP BY 7";
  }
  sql += " ORDER BY 1, 2, 6, 7";
  return sql;
}

search_page pg_catalog::run_search(const search_query& q, const search_text& text, char mode,
                                   const std::optional<search_cursor>& after,
                                   const std::string& hash) {
  const bool has_text = !text.fts.empty();
  const bool fuzzy = has_text && mode == 'f';
  std::optional<std::string> fts;
  std::optional<std::string> fuzzy_words;
  std::optional<std::string> excluded;
  if (has_text) {
    fts = text.fts;
  }
  if (fuzzy) {
    fuzzy_words = text.fuzzy;
    if (!text.excluded.empty()) {
      excluded = text.excluded;
    }
  }
  std::optional<std::string> category;
  if (!q.category.empty()) {
    category = q.category;
  }
  std::optional<std::string> after_key;
  std::optional<std::string> after_sku;
  if (after) {
    after_key = after->key;
    after_sku = after->sku;
  }
  const auto limit = static_cast<int64_t>(std::clamp<std::size_t>(q.limit, 1, 100));

  pqxx::nontransaction tx{*conn_};
  auto rows = tx.exec_params(search_sql(q, has_text, fuzzy, after.has_value()), fts, text.prefix,
                             text.sku, fuzzy_words, excluded, category, q.min_price, q.max_price,
                             q.in_stock_only, after_key, after_sku, limit + 1);
  search_page page;
  std::string last_key;
  for (const auto& row : rows) {
    switch (row[0].as<int>()) {
    case 0: {
      if (static_cast<int64_t>(page.items.size()) == limit) {
        // The extra row: there is a next page, after the last product of this one.
        page.next_cursor = encode_cursor(
            search_cursor{mode, last_key, page.items.back().listing.product.sku}, hash);
        break;
      }
      product_listing listing{detail::product_of(row.slice(2, 9)), row[9].as<int64_t>()};
      search_hit hit{std::move(listing), row[10].as<double>(),
                     row[11].is_null() ? std::string{} : close_marks(row[11].as<std::string>())};
      last_key = row[12].as<std::string>();
      page.items.push_back(std::move(hit));
      break;
    }
    case 1:
      page.total = row[13].as<int64_t>();
      break;
    case 2:
      if (!page.categories) {
        page.categories.emplace();
      }
      page.categories->push_back(category_count{row[5].as<std::string>(), row[13].as<int64_t>()});
      break;
    case 3: {
      if (!page.prices) {
        page.prices.emplace();
      }
      // width_bucket: 1 for [edges[0], edges[1]), ..., edges.size() for the open end.
      const auto b = static_cast<std::size_t>(std::clamp<int64_t>(
                         row[6].as<int64_t>(), 1, static_cast<int64_t>(price_edges.size()))) -
                     1;
      price_bucket bucket{price_edges[b], std::nullopt, row[13].as<int64_t>()};
      if (b + 1 < price_edges.size()) {
        bucket.max = price_edges[b + 1];
      }
      page.prices->push_back(bucket);
      break;
    }
    default:
      break;
    }
  }
  if (q.facet_category && !page.categories) {
    page.categories.emplace();
  }
  if (q.facet_price && !page.prices) {
    page.prices.emplace();
  }
  return page;
}

caf::expected<std::vector<category_count>> pg_catalog::categories() {
  if (!healthy_) {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }
  try {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec("SELECT category, count(*) FROM products WHERE category <> ''"
                        " GROUP BY category ORDER BY category COLLATE \"C\"");
    std::vector<category_count> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(category_count{row[0].as<std::string>(), row[1].as<int64_t>()});
    }
    return out;
  } catch (...) {
    return detail::translate_current(*conn_, healthy_);
  }
}

} // namespace

caf::expected<std::unique_ptr<catalog>> make_pg_catalog(const std::string& url) {
  return detail::open_adapter<catalog, pg_catalog>(url);
}

} // namespace surge::persistence
