#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace surge::persistence {

/// One row of an entity's journal: a batch of events, serialized by the caller
/// (surge.proto.EventBatch for SKUs). persistence/ never looks inside `payload`.
struct journal_batch {
  std::string stream;  ///< entity key, e.g. "sku:ABC-1"
  uint64_t seq = 0;    ///< 1, 2, 3, ... per stream, no gaps
  std::string payload; ///< opaque bytes
};

/// The state of an entity as of journal batch `seq` (inclusive), serialized by the caller.
struct snapshot {
  std::string stream;
  uint64_t seq = 0;
  std::string payload;
};

/// Catalog data of one product, as the admin API sets it.
struct product_record {
  std::string sku;
  std::string name;
  std::string description;
  std::string category;
  int64_t price_cents = 0;
  std::string currency = "USD";
  int64_t per_customer_limit = 0; ///< 0: no limit
};

/// A sale (API.md "Sales and the waiting room") as the admin API sets it: a window over SKUs,
/// an optional per-customer limit and its waiting room's settings. Times are Unix milliseconds.
struct sale_record {
  std::string sale_id; ///< 1..64 of [A-Za-z0-9._-]
  std::string name;
  std::vector<std::string> skus; ///< 1..100 SKUs, distinct
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;         ///< > starts_at_ms
  int64_t per_customer_limit = 0; ///< units per customer of each SKU of the sale; 0: none
  bool queue_enabled = false;
  /// Shoppers admitted per second; 0: "auto" (as fast as stock and checkout latency allow).
  double admission_rate = 0;
  int64_t pass_ttl_ms = 0;   ///< how long a pass is good for after admission (> 0)
  int64_t updated_at_ms = 0; ///< set by the store on each put
};

/// Stock figures of one SKU, a projection kept beside the journal for listings and filters.
/// The SKU actor is the only writer; the journal is the truth.
struct stock_record {
  std::string sku;
  int64_t on_hand = 0;
  int64_t held = 0;
  int64_t sold = 0;
};

/// What one SKU commits in one go: its journal batch plus, optionally, rows that must change in
/// the same transaction.
struct commit_request {
  journal_batch batch;
  /// The shard lease the committer holds: the commit fails with errc::fenced unless `node` still
  /// owns `shard` at `epoch` (checked in the same transaction). shard < 0: not fenced (a node
  /// without a cluster, and tests).
  int32_t shard = -1;
  uint64_t epoch = 0;
  std::string node;
  std::optional<stock_record> stock;     ///< upserted into the stock projection
  std::optional<product_record> product; ///< upserted into the catalog
  std::optional<snapshot> snap;          ///< upserted into the snapshot table
};

/// Filters of `GET /api/v1/products`.
struct product_query {
  std::string text;     ///< full-text search over name, description, category; empty: all
  std::string category; ///< exact match; empty: any
  std::optional<int64_t> min_price;
  std::optional<int64_t> max_price;
  bool in_stock_only = false;
  std::size_t limit = 20; ///< 1..100
  std::string after_sku;  ///< cursor: only SKUs ordering after this one
};

struct product_listing {
  product_record product;
  int64_t available = 0; ///< on_hand - held - sold from the stock projection, 0 if none
};

/// Orders of `GET /api/v1/search`.
enum class search_sort : uint8_t {
  relevance,  ///< best match first (score descending, then sku); the default with a text
  name,       ///< name, then sku; the default without a text
  price_asc,  ///< price ascending, then sku
  price_desc, ///< price descending, then sku
  newest,     ///< created_at descending, then sku
};

/// One search (API.md "Search and catalog"). Values are already validated by the caller
/// (bridge); the cursor is opaque and checked here.
struct search_query {
  /// Web-search syntax (words, "quoted phrases", -excluded); empty: every product.
  std::string text;
  std::string category; ///< exact match; empty: any
  std::optional<int64_t> min_price;
  std::optional<int64_t> max_price;
  bool in_stock_only = false;
  search_sort sort = search_sort::name;
  std::size_t limit = 20; ///< 1..100
  /// next_cursor of an earlier page of the same query (same text, filters and sort); empty:
  /// the first page. Anything else is errc::invalid with a message naming 'cursor'.
  std::string cursor;
  bool facet_category = false; ///< fill search_page::categories
  bool facet_price = false;    ///< fill search_page::prices
};

/// One result: the product as a listing shows it, its relevance and, when the text matched
/// words of it, a short excerpt with the matches marked <em>...</em> (HTML-escaped otherwise).
struct search_hit {
  product_listing listing;
  double score = 0;      ///< higher is better; 0 when the query has no text
  std::string highlight; ///< empty: none
};

/// A facet value with the number of matching products.
struct category_count {
  std::string category;
  int64_t count = 0;
};

/// A price range [min, max) in cents with the number of matching products; max empty: open.
struct price_bucket {
  int64_t min = 0;
  std::optional<int64_t> max;
  int64_t count = 0;
};

/// A page of search results. Facets and total count every product that matches the text and
/// every filter (not only this page).
struct search_page {
  std::vector<search_hit> items;
  std::optional<std::vector<category_count>> categories; ///< when facet_category was asked
  std::optional<std::vector<price_bucket>> prices;       ///< when facet_price was asked
  int64_t total = 0;       ///< matches, exact up to a bound and estimated beyond it
  std::string next_cursor; ///< empty: this is the last page
};

} // namespace surge::persistence
