#include "encode.hpp"

#include "surge/cluster/protocol.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace surge::net {

namespace bridge {

namespace {

/// Bytes a product object takes besides its strings (keys, punctuation, numbers).
constexpr std::size_t product_overhead = 160;

std::size_t product_size(const persistence::product_record& p) {
  return product_overhead + p.sku.size() + p.name.size() + p.description.size() +
         p.category.size() + p.currency.size();
}

} // namespace

void write_product(json::writer& w, const persistence::product_record& p, int64_t available) {
  w.begin_object();
  write_product_members(w, p, available);
  w.end_object();
}

void write_product_members(json::writer& w, const persistence::product_record& p,
                           int64_t available) {
  w.member("sku", p.sku).member("name", p.name).member("description", p.description);
  w.member("category", p.category).member("price_cents", p.price_cents);
  w.member("currency", p.currency).member("available", std::max<int64_t>(available, 0));
  w.member("per_customer_limit", p.per_customer_limit);
}

std::string product_json(const actors::product_view& v) {
  json::writer w{product_size(v.product)};
  write_product(w, v.product, v.available);
  return w.take();
}

namespace {

/// A rate per second: a whole one as an integer (20, not 20.0).
void write_rate(json::writer& w, double rate) {
  if (rate == std::floor(rate) && std::fabs(rate) < 1e15) {
    w.integer(static_cast<int64_t>(rate));
  } else {
    w.number(rate);
  }
}

void write_queue(json::writer& w, const persistence::sale_record& s) {
  w.key("queue").begin_object().member("enabled", s.queue_enabled).key("admission_rate");
  if (s.admission_rate > 0) {
    write_rate(w, s.admission_rate);
  } else {
    w.string("auto");
  }
  w.member("pass_ttl", s.pass_ttl_ms / 1000).end_object();
}

/// The "sale" member of a product whose SKU a sale governs; nothing when none does.
void write_product_sale(json::writer& w, const std::string& sku, sale_lookup sales) {
  if (sales.index == nullptr) {
    return;
  }
  auto sale = sales.index->of_sku(sku, sales.now_ms);
  if (!sale) {
    return;
  }
  w.key("sale").begin_object().member("sale_id", sale->sale_id).member("name", sale->name);
  w.member("starts_at", rfc3339_ms(sale->starts_at_ms));
  w.member("ends_at", rfc3339_ms(sale->ends_at_ms));
  w.member("state", sale_state(*sale, sales.now_ms));
  write_queue(w, *sale);
  w.end_object();
}

} // namespace

std::string product_json(const actors::product_view& v, sale_lookup sales) {
  json::writer w{product_size(v.product) + 320};
  w.begin_object();
  write_product_members(w, v.product, v.available);
  write_product_sale(w, v.product.sku, sales);
  return w.end_object().take();
}

std::string listing_json(const std::vector<persistence::product_listing>& page, std::size_t limit,
                         sale_lookup sales) {
  std::size_t size = 48;
  for (const auto& item : page) {
    size += product_size(item.product);
  }
  json::writer w{size};
  w.begin_object().key("items").begin_array();
  for (const auto& item : page) {
    w.begin_object();
    write_product_members(w, item.product, item.available);
    write_product_sale(w, item.product.sku, sales);
    w.end_object();
  }
  w.end_array().key("next_cursor");
  if (page.size() == limit && !page.empty()) {
    w.string(page.back().product.sku);
  } else {
    w.null();
  }
  return w.end_object().take();
}

std::string search_json(const persistence::search_page& page, sale_lookup sales) {
  std::size_t size = 96;
  for (const auto& hit : page.items) {
    size += product_size(hit.listing.product) + 32 + hit.highlight.size();
  }
  json::writer w{size};
  w.begin_object().key("items").begin_array();
  for (const auto& hit : page.items) {
    w.begin_object();
    write_product_members(w, hit.listing.product, hit.listing.available);
    w.key("score").number(hit.score);
    if (!hit.highlight.empty()) {
      w.member("highlight", hit.highlight);
    }
    write_product_sale(w, hit.listing.product.sku, sales);
    w.end_object();
  }
  w.end_array().key("facets").begin_object();
  if (page.categories) {
    w.key("category").begin_array();
    for (const auto& c : *page.categories) {
      w.begin_object().member("value", c.category).member("count", c.count).end_object();
    }
    w.end_array();
  }
  if (page.prices) {
    w.key("price").begin_array();
    for (const auto& b : *page.prices) {
      w.begin_object().member("min", b.min);
      if (b.max) {
        w.member("max", *b.max);
      } else {
        w.member_null("max");
      }
      w.member("count", b.count).end_object();
    }
    w.end_array();
  }
  w.end_object().member("total", page.total).key("next_cursor");
  if (page.next_cursor.empty()) {
    w.null();
  } else {
    w.string(page.next_cursor);
  }
  return w.end_object().take();
}

std::string categories_json(const std::vector<persistence::category_count>& categories) {
  json::writer w{32 + categories.size() * 48};
  w.begin_object().key("items").begin_array();
  for (const auto& c : categories) {
    w.begin_object().member("category", c.category).member("count", c.count).end_object();
  }
  return w.end_array().end_object().take();
}

std::string cart_json(const actors::cart_view& c) {
  json::writer w{128 + c.items.size() * 192};
  w.begin_object().member("cart_id", c.cart_id).member("customer_id", c.customer_id);
  w.key("items").begin_array();
  for (const auto& l : c.items) {
    w.begin_object().member("sku", l.sku).member("qty", l.qty);
    w.member("price_cents", l.price_cents).member("hold_id", l.hold_id);
    w.member("hold_expires_at", rfc3339_ms(l.hold_expires_at_ms)).end_object();
  }
  w.end_array().member("total_cents", c.total_cents);
  if (c.currency.empty()) {
    w.member_null("currency"); // no line yet: the first one fixes it
  } else {
    w.member("currency", c.currency);
  }
  return w.end_object().take();
}

std::string order_json(const actors::order_view& o) {
  json::writer w{256 + o.lines.size() * 96};
  w.begin_object();
  write_order_members(w, o);
  return w.end_object().take();
}

void write_order_members(json::writer& w, const actors::order_view& o) {
  w.member("order_id", o.order_id).member("cart_id", o.cart_id);
  w.member("status", o.status).key("lines").begin_array();
  for (const auto& l : o.lines) {
    w.begin_object().member("sku", l.sku).member("qty", l.qty);
    w.member("price_cents", l.price_cents).end_object();
  }
  w.end_array().member("total_cents", o.total_cents).member("currency", o.currency);
  w.member("created_at", rfc3339_ms(o.created_at_ms));
  if (o.status == "requires_action") {
    // 3-D Secure: where the shopper authenticates (the order's reason while it waits).
    w.key("action").begin_object().member("type", "redirect_to_url");
    w.member("url", o.reason).end_object();
  }
  if (!o.refund_status.empty()) {
    // A cancelled order that had been charged says what became of the money.
    w.key("refund").begin_object().member("status", o.refund_status);
    w.member("amount_cents", o.refunded_cents).end_object();
  }
}

std::string stock_json(const actors::stock_view& s) {
  json::writer w{160 + s.sku.size() + s.owner_node.size()};
  w.begin_object().member("sku", s.sku).member("on_hand", s.on_hand).member("held", s.held);
  w.member("sold", s.sold).member("available", s.available);
  w.member("owner_node", s.owner_node).member("epoch", static_cast<int64_t>(s.epoch));
  return w.end_object().take();
}

std::string cluster_json(const std::vector<cluster_admin::node_row>& nodes, uint32_t shards,
                         std::string_view this_node) {
  json::writer w{64 + nodes.size() * 256};
  w.begin_object().key("nodes").begin_array();
  for (const auto& n : nodes) {
    w.begin_object().member("node_id", n.node_id).member("address", n.address);
    w.member("http_address", n.http_address).member("admin_address", n.admin_address);
    w.member("status", n.status).member("shards", static_cast<int64_t>(n.shards));
    w.member("actors", static_cast<int64_t>(n.actors));
    w.member("heartbeat_age_ms", n.heartbeat_age_ms);
    if (!n.version.empty()) {
      w.member("version", n.version);
    }
    // A member that records no protocol is a release before protocol versions.
    w.member("protocol",
             static_cast<int64_t>(n.protocol != 0 ? n.protocol : cluster::legacy_protocol));
    w.end_object();
  }
  w.end_array().member("shards", static_cast<int64_t>(shards)).member("this_node", this_node);
  // The cluster's minimum protocol over live members, and the features it allows (protocol.hpp).
  w.member("min_protocol", static_cast<int64_t>(cluster::cluster_protocol(nodes)));
  w.key("features").begin_array();
  for (auto f : cluster::all_features()) {
    if (cluster::cluster_supports(nodes, f)) {
      w.string(cluster::name_of(f));
    }
  }
  w.end_array();
  return w.end_object().take();
}

std::string shards_json(const std::vector<cluster_admin::shard_row>& shards) {
  json::writer w{16 + shards.size() * 80};
  w.begin_object().key("shards").begin_array();
  for (const auto& s : shards) {
    w.begin_object().member("shard", static_cast<int64_t>(s.shard)).member("owner", s.owner);
    w.member("epoch", static_cast<int64_t>(s.epoch)).member("target", s.target).end_object();
  }
  return w.end_array().end_object().take();
}

std::string member_status_json(std::string_view node_id, std::string_view status) {
  json::writer w{40 + node_id.size()};
  w.begin_object().member("node_id", node_id).member("status", status);
  return w.end_object().take();
}

const char* sale_state(const persistence::sale_record& s, int64_t now_ms) {
  if (now_ms < s.starts_at_ms) {
    return "scheduled";
  }
  return now_ms < s.ends_at_ms ? "live" : "ended";
}

void write_sale(json::writer& w, const persistence::sale_record& s, int64_t now_ms,
                bool stats_member, const actors::queue_summary* stats) {
  w.begin_object().member("sale_id", s.sale_id).member("name", s.name);
  w.key("skus").begin_array();
  for (const auto& sku : s.skus) {
    w.string(sku);
  }
  w.end_array().member("starts_at", rfc3339_ms(s.starts_at_ms));
  w.member("ends_at", rfc3339_ms(s.ends_at_ms));
  w.member("per_customer_limit", s.per_customer_limit);
  write_queue(w, s);
  w.member("state", sale_state(s, now_ms)).member("updated_at", rfc3339_ms(s.updated_at_ms));
  if (stats_member) {
    w.key("stats");
    if (stats == nullptr) {
      w.null();
    } else {
      w.begin_object().member("waiting", stats->waiting).member("admitted", stats->admitted);
      w.member("sold", stats->sold).key("sold_out_at");
      if (stats->sold_out_at_ms > 0) {
        w.string(rfc3339_ms(stats->sold_out_at_ms));
      } else {
        w.null();
      }
      w.key("lottery_seed");
      if (stats->lottery_seed.empty()) {
        w.null();
      } else {
        w.string(stats->lottery_seed);
      }
      w.member("tickets", stats->tickets).key("admit_rate");
      write_rate(w, stats->admit_rate);
      w.member("available", stats->available).member("held", stats->held);
      w.member("warm", stats->warm).member("phase", stats->phase).end_object();
    }
  }
  w.end_object();
}

std::string sale_json(const persistence::sale_record& s, int64_t now_ms, bool stats_member,
                      const actors::queue_summary* stats) {
  json::writer w{512 + s.name.size() + s.skus.size() * 24};
  write_sale(w, s, now_ms, stats_member, stats);
  return w.take();
}

std::string sales_json(const std::vector<persistence::sale_record>& sales, int64_t now_ms,
                       const std::vector<const actors::queue_summary*>& stats) {
  json::writer w{32 + sales.size() * 768};
  w.begin_object().key("items").begin_array();
  for (std::size_t i = 0; i < sales.size(); ++i) {
    write_sale(w, sales[i], now_ms, true, i < stats.size() ? stats[i] : nullptr);
  }
  return w.end_array().end_object().take();
}

std::string ticket_json(const actors::ticket_view& t) {
  json::writer w{160 + t.sale_id.size() + t.ticket.size() + t.pass.size()};
  w.begin_object().member("sale_id", t.sale_id).member("ticket", t.ticket);
  w.member("state", t.state);
  const bool waiting = t.state == "waiting";
  if (waiting && t.position > 0) {
    w.member("position", t.position);
  } else {
    w.member_null("position");
  }
  if (waiting && t.eta_s >= 0) {
    w.member("eta_s", t.eta_s);
  } else {
    w.member_null("eta_s");
  }
  if (t.state == "admitted" && !t.pass.empty()) {
    w.member("pass", t.pass).member("pass_expires_at", rfc3339_ms(t.pass_expires_at_ms));
  } else {
    w.member_null("pass").member_null("pass_expires_at");
  }
  return w.end_object().take();
}

std::string status_json(std::string_view status) {
  json::writer w{16 + status.size()};
  return w.begin_object().member("status", status).end_object().take();
}

} // namespace bridge

std::string rfc3339_ms(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

} // namespace surge::net
