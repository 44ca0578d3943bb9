#pragma once

#include <cstdint>
#include <optional>
#include <string>

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

} // namespace surge::persistence
