#pragma once

// The JSON bodies the bridge answers with (private to the bridge): API.md's product, cart,
// order and stock objects and the listing, admin and health bodies, each written once with a
// json::writer. Pure functions; their exact bytes are pinned by tests/net/bridge_test.cpp.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "surge/actors/messages.hpp"
#include "surge/net/bridge.hpp"
#include "surge/net/json_writer.hpp"
#include "surge/persistence/records.hpp"

namespace surge::net::bridge {

/// API.md's product object as the next value of `w`; a negative `available` shows as 0.
void write_product(json::writer& w, const persistence::product_record& p, int64_t available);

/// The members of API.md's product object, into the object `w` is in.
void write_product_members(json::writer& w, const persistence::product_record& p,
                           int64_t available);

std::string product_json(const actors::product_view& v);

/// The sales of products: which sale governs a SKU at a moment (sale_index::of_sku). A null
/// index (no sales) adds nothing.
struct sale_lookup {
  const actors::sale_index* index = nullptr;
  int64_t now_ms = 0;
};

/// product_json with "sale":{"sale_id","name","starts_at","ends_at","state","queue":{"enabled",
/// "admission_rate","pass_ttl"}} when a sale governs the SKU (absent otherwise).
std::string product_json(const actors::product_view& v, sale_lookup sales);

/// {"items":[product...],"next_cursor":...}: the cursor is the last sku when the page is full
/// (`limit` items), else null. Each product has its "sale" as product_json shows it.
std::string listing_json(const std::vector<persistence::product_listing>& page, std::size_t limit,
                         sale_lookup sales = {});

/// GET /api/v1/search: {"items":[product + "score" (+ "highlight")],"facets":{"category":
/// [{"value","count"}],"price":[{"min","max","count"}]},"total","next_cursor"}; a facet is there
/// only when asked, a price range's open end is null, next_cursor null on the last page.
std::string search_json(const persistence::search_page& page, sale_lookup sales = {});

/// GET /api/v1/categories: {"items":[{"category","count"}]}.
std::string categories_json(const std::vector<persistence::category_count>& categories);

/// API.md's cart object; an empty cart's currency is null.
std::string cart_json(const actors::cart_view& c);

/// API.md's order object, with "refund":{"status","amount_cents"} when a charged order was
/// cancelled.
std::string order_json(const actors::order_view& o);

/// order_json's members, written into the object `w` is in (for bodies that add to an order).
void write_order_members(json::writer& w, const actors::order_view& o);

/// API.md's stock object.
std::string stock_json(const actors::stock_view& s);

/// GET /admin/v1/cluster: {"nodes":[...],"shards":N,"this_node":...}; a node's "version" is left
/// out when it is not recorded (empty).
std::string cluster_json(const std::vector<cluster_admin::node_row>& nodes, uint32_t shards,
                         std::string_view this_node);

/// GET /admin/v1/shards: {"shards":[{"shard","owner","epoch","target"}...]}.
std::string shards_json(const std::vector<cluster_admin::shard_row>& shards);

/// POST /admin/v1/nodes/{node_id}/drain and /undrain: {"node_id":...,"status":...}.
std::string member_status_json(std::string_view node_id, std::string_view status);

/// A sale's state at `now_ms`: "scheduled" before starts_at, "live" until ends_at, then "ended".
const char* sale_state(const persistence::sale_record& s, int64_t now_ms);

/// The sale object of the admin API (common brief "HTTP contract additions"): {"sale_id","name",
/// "skus","starts_at","ends_at","per_customer_limit","queue":{"enabled","admission_rate" (number
/// or "auto"),"pass_ttl" (seconds)},"state","updated_at"}; with `stats_member` also "stats":
/// stats_object(*stats), or null when `stats` is null (the queue did not answer).
void write_sale(json::writer& w, const persistence::sale_record& s, int64_t now_ms,
                bool stats_member = false, const actors::queue_summary* stats = nullptr);
std::string sale_json(const persistence::sale_record& s, int64_t now_ms, bool stats_member = false,
                      const actors::queue_summary* stats = nullptr);

/// GET /admin/v1/sales: {"items":[sale + "stats"...]}; `stats[i]` may be null.
std::string sales_json(const std::vector<persistence::sale_record>& sales, int64_t now_ms,
                       const std::vector<const actors::queue_summary*>& stats);

/// A ticket as API.md shows it: {"sale_id","ticket","state","position","eta_s","pass",
/// "pass_expires_at"}; position and eta_s only while waiting (null before the lottery, or when
/// unknown), the pass and its expiry only while admitted (null otherwise).
std::string ticket_json(const actors::ticket_view& t);

/// {"status":...}: /healthz, /readyz.
std::string status_json(std::string_view status);

} // namespace surge::net::bridge
