#include "checker.hpp"

#include <algorithm>
#include <iterator>
#include <set>
#include <sstream>
#include <unordered_map>

#include "surge/config/names.hpp"

namespace surge::chaos {

const char* to_string(operation::kind_t x) {
  static constexpr const char* names[] = {"create_cart", "put_item", "delete_item", "checkout",
                                          "get_order",   "stock",    "probe",       "other"};
  static_assert(std::size(names) ==
                config::count_of(operation::kind_t::create_cart, operation::kind_t::other));
  return config::name_of(x, names, "other");
}

const char* to_string(journal_event::kind_t x) {
  static constexpr const char* names[] = {"product_set",   "stock_set",     "stock_added",
                                          "hold_set",      "hold_released", "hold_confirmed",
                                          "sale_returned", "none"};
  static_assert(std::size(names) ==
                config::count_of(journal_event::kind_t::product_set, journal_event::kind_t::none));
  return config::name_of(x, names, "none");
}

const char* to_string(verdict x) {
  static constexpr const char* names[] = {"PASS", "WARN", "FAIL"};
  static_assert(std::size(names) == config::count_of(verdict::pass, verdict::fail));
  return config::name_of(x, names, "FAIL");
}

namespace {

using kind = journal_event::kind_t;
using op_kind = operation::kind_t;

/// "op#12 checkout cart=c1 key=k1 @node n2 [1000..1200ms] -> 201 order=o_1".
std::string describe(const operation& op, int64_t t0) {
  std::ostringstream s;
  s << "op#" << op.id << " " << to_string(op.kind);
  if (!op.cart_id.empty()) {
    s << " cart=" << op.cart_id;
  }
  if (!op.sku.empty()) {
    s << " sku=" << op.sku;
  }
  if (op.kind == op_kind::put_item || op.kind == op_kind::stock) {
    s << (op.stock_set ? " set=" : " qty=") << op.qty;
  }
  if (!op.idempotency_key.empty()) {
    s << " key=" << op.idempotency_key << " token=" << op.token;
  }
  s << " node#" << op.node << " [" << (op.start_ms - t0) << ".." << (op.end_ms - t0) << "ms] -> "
    << op.status;
  if (!op.error_code.empty()) {
    s << " " << op.error_code;
  }
  if (!op.order_id.empty()) {
    s << " order=" << op.order_id << "/" << op.order_status;
  }
  for (const auto& l : op.lines) {
    s << " line(" << l.sku << " x" << l.qty << (l.hold_id.empty() ? "" : " " + l.hold_id) << ")";
  }
  return s.str();
}

int64_t first_start(const run_data& d) {
  int64_t t0 = 0;
  for (const auto& op : d.history) {
    if (t0 == 0 || op.start_ms < t0) {
      t0 = op.start_ms;
    }
  }
  return t0;
}

void example(promise_result& r, const check_options& o, const std::string& text) {
  r.result = verdict::fail;
  if (r.counter_examples.size() < o.max_examples) {
    r.counter_examples.push_back(text);
  }
}

/// Journal batches grouped by stream, in seq order.
std::map<std::string, std::vector<const journal_batch*>> by_stream(const run_data& d) {
  std::map<std::string, std::vector<const journal_batch*>> out;
  for (const auto& b : d.journal) {
    out[b.stream].push_back(&b);
  }
  for (auto& [stream, v] : out) {
    std::stable_sort(v.begin(), v.end(), [](const journal_batch* a, const journal_batch* b) {
      return a->seq < b->seq;
    });
  }
  return out;
}

std::map<std::string, replayed_sku> replay_all(const run_data& d) {
  std::map<std::string, replayed_sku> out;
  for (const auto& [stream, batches] : by_stream(d)) {
    auto& s = out[sku_of_stream(stream)];
    for (const auto* b : batches) {
      for (const auto& ev : b->events) {
        apply(s, ev);
      }
    }
  }
  return out;
}

} // namespace

std::string sku_of_stream(const std::string& stream) {
  return stream.rfind("sku:", 0) == 0 ? stream.substr(4) : stream;
}

void apply(replayed_sku& s, const journal_event& ev) {
  switch (ev.kind) {
  case kind::stock_set:
    s.on_hand = ev.value;
    break;
  case kind::stock_added:
    s.on_hand += ev.value;
    break;
  case kind::hold_set: {
    auto& h = s.holds[ev.hold_id];
    s.held += ev.qty - h.qty;
    h = ev; // a hold is what its last hold_set says
    break;
  }
  case kind::hold_released:
  case kind::hold_confirmed: {
    auto i = s.holds.find(ev.hold_id);
    if (i == s.holds.end()) {
      break; // already gone: the actor ignores it too
    }
    s.held -= i->second.qty;
    if (ev.kind == kind::hold_confirmed) {
      s.sold += i->second.qty;
      s.sales[ev.hold_id] = {ev.order_id, i->second.qty, false};
    }
    s.holds.erase(i);
    break;
  }
  case kind::sale_returned: {
    auto i = s.sales.find(ev.hold_id);
    if (i == s.sales.end() || i->second.order_id != ev.order_id || i->second.returned) {
      break; // nothing sold under it for that order, or returned before: ignored likewise
    }
    s.sold -= i->second.qty;
    i->second.returned = true;
    break;
  }
  case kind::product_set:
  case kind::none:
    break;
  }
}

int64_t quantile(std::vector<int64_t> v, double q) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(q * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

// ---- G1 ----------------------------------------------------------------------------------------

promise_result check_g1(const run_data& d, const check_options& o) {
  promise_result r{"G1", "no oversell", verdict::pass, {}, {}, {}, {}};
  const int64_t t0 = first_start(d);
  // Acknowledged holds by hold id, to name the operations behind a violation.
  std::unordered_map<std::string, const operation*> ack_of_hold;
  for (const auto& op : d.history) {
    if (op.kind == op_kind::put_item && op.ok()) {
      for (const auto& l : op.lines) {
        if (!l.hold_id.empty()) {
          ack_of_hold[l.hold_id] = &op;
        }
      }
    }
  }
  std::size_t batches = 0;
  std::map<std::string, replayed_sku> final_state;
  for (const auto& [stream, list] : by_stream(d)) {
    replayed_sku s;
    bool reported = false;
    for (const auto* b : list) {
      ++batches;
      for (const auto& ev : b->events) {
        apply(s, ev);
      }
      if (s.held + s.sold > s.on_hand && !reported) {
        reported = true; // one example per SKU: the first batch that breaks it
        std::ostringstream m;
        m << stream << " after seq " << b->seq << " (node " << b->node_id << ", shard " << b->shard
          << ", epoch " << b->epoch << "): held " << s.held << " + sold " << s.sold << " > on_hand "
          << s.on_hand;
        for (const auto& ev : b->events) {
          if (ev.kind == kind::hold_set) {
            m << "; hold_set " << ev.hold_id << " x" << ev.qty;
            if (auto i = ack_of_hold.find(ev.hold_id); i != ack_of_hold.end()) {
              m << " acknowledged by " << describe(*i->second, t0);
            }
          } else if (ev.kind != kind::none) {
            m << "; " << to_string(ev.kind);
          }
        }
        example(r, o, m.str());
      }
    }
    final_state[sku_of_stream(stream)] = std::move(s);
  }
  // Confirmed order lines per SKU must equal what the journal sold.
  std::map<std::string, int64_t> confirmed;
  std::map<std::string, std::vector<std::string>> orders_of;
  for (const auto& ord : d.orders) {
    if (ord.status != "confirmed") {
      continue;
    }
    for (const auto& l : ord.lines) {
      confirmed[l.sku] += l.qty;
      orders_of[l.sku].push_back(ord.order_id);
    }
  }
  std::set<std::string> skus;
  for (const auto& [sku, s] : final_state) {
    skus.insert(sku);
  }
  for (const auto& [sku, q] : confirmed) {
    skus.insert(sku);
  }
  int64_t sold_total = 0;
  for (const auto& sku : skus) {
    const int64_t sold = final_state.count(sku) != 0 ? final_state[sku].sold : 0;
    sold_total += sold;
    const int64_t lines = confirmed.count(sku) != 0 ? confirmed[sku] : 0;
    if (sold != lines) {
      std::ostringstream m;
      m << "sku " << sku << ": journal sold " << sold << " but confirmed order lines add up to "
        << lines;
      const auto& ids = orders_of[sku];
      for (std::size_t i = 0; i < ids.size() && i < 5; ++i) {
        m << (i == 0 ? " (orders " : ", ") << ids[i];
      }
      m << (ids.empty() ? "" : ")");
      example(r, o, m.str());
    }
  }
  r.metrics["skus"] = static_cast<double>(skus.size());
  r.metrics["batches"] = static_cast<double>(batches);
  r.metrics["sold"] = static_cast<double>(sold_total);
  r.summary = std::to_string(skus.size()) + " SKUs, " + std::to_string(batches) +
              " journal batches replayed, held+sold <= on_hand after each; sold " +
              std::to_string(sold_total) + " = confirmed order lines";
  return r;
}

// ---- G2 ----------------------------------------------------------------------------------------

promise_result check_g2(const run_data& d, const check_options& o) {
  promise_result r{"G2", "no lost acknowledgement", verdict::pass, {}, {}, {}, {}};
  const int64_t t0 = first_start(d);
  // hold id -> quantities it was ever set to; stream -> stock values written.
  std::unordered_map<std::string, std::set<int64_t>> hold_qty;
  std::map<std::string, std::multiset<std::pair<bool, int64_t>>> stock_events;
  for (const auto& b : d.journal) {
    const std::string sku = sku_of_stream(b.stream);
    for (const auto& ev : b.events) {
      if (ev.kind == kind::hold_set) {
        hold_qty[ev.hold_id].insert(ev.qty);
      } else if (ev.kind == kind::stock_set || ev.kind == kind::stock_added) {
        stock_events[sku].insert({ev.kind == kind::stock_set, ev.value});
      }
    }
  }
  std::unordered_map<std::string, const order_row*> orders;
  for (const auto& ord : d.orders) {
    orders[ord.order_id] = &ord;
  }
  std::size_t holds = 0;
  std::size_t checkouts = 0;
  std::size_t stocks = 0;
  for (const auto& op : d.history) {
    if (!op.ok()) {
      continue;
    }
    if (op.kind == op_kind::put_item && op.qty > 0) {
      ++holds;
      const seen_line* line = nullptr;
      for (const auto& l : op.lines) {
        if (l.sku == op.sku) {
          line = &l;
        }
      }
      if (line == nullptr || line->hold_id.empty()) {
        example(r, o, "acknowledged without a hold for its SKU in the answer: " + describe(op, t0));
        continue;
      }
      auto i = hold_qty.find(line->hold_id);
      if (i == hold_qty.end()) {
        example(r, o,
                "hold " + line->hold_id +
                    " acknowledged but not in the journal: " + describe(op, t0));
      } else if (i->second.count(line->qty) == 0) {
        example(r, o,
                "hold " + line->hold_id + " acknowledged with qty " + std::to_string(line->qty) +
                    " but never set to it in the journal: " + describe(op, t0));
      }
    } else if (op.kind == op_kind::checkout && op.status == 201) {
      ++checkouts;
      auto i = orders.find(op.order_id);
      if (op.order_id.empty() || i == orders.end()) {
        example(r, o, "order acknowledged (201) but not in PostgreSQL: " + describe(op, t0));
      } else if (op.order_status == "confirmed" && i->second->status != "confirmed") {
        example(r, o,
                "order acknowledged confirmed but PostgreSQL says " + i->second->status + ": " +
                    describe(op, t0));
      }
    } else if (op.kind == op_kind::stock) {
      ++stocks;
      auto& evs = stock_events[op.sku];
      auto i = evs.find({op.stock_set, op.qty});
      if (i == evs.end()) {
        example(r, o, "stock change acknowledged but not in the journal: " + describe(op, t0));
      } else {
        evs.erase(i); // each acknowledgement needs its own event
      }
    }
  }
  r.metrics["holds"] = static_cast<double>(holds);
  r.metrics["orders"] = static_cast<double>(checkouts);
  r.metrics["stock_changes"] = static_cast<double>(stocks);
  r.summary = std::to_string(holds) + " acknowledged holds, " + std::to_string(checkouts) +
              " orders (201), " + std::to_string(stocks) + " stock changes found in PostgreSQL";
  return r;
}

// ---- G3 ----------------------------------------------------------------------------------------

namespace {

/// The gateways' log lines of one key that hold or held money: captured (approved), open
/// (authorized) and voided authorisations.
struct key_money {
  std::vector<const charge_row*> captured;
  std::vector<const charge_row*> open;
  std::vector<const charge_row*> voided;
};

/// "order o_1 cancelled, refund voided", or "no order", for the order of checkout key `key`.
std::string order_text(const std::map<std::string, const order_row*>& order_of_key,
                       const std::string& key) {
  auto i = order_of_key.find(key);
  if (i == order_of_key.end()) {
    return "no order";
  }
  const order_row& o = *i->second;
  return "order " + o.order_id + " " + o.status +
         (o.refund_status.empty() ? "" : ", refund " + o.refund_status);
}

/// "authorized 300 via alpha".
std::string charge_text(const charge_row& c) {
  return c.status + " " + std::to_string(c.amount_cents) + " via " + c.gateway;
}

} // namespace

promise_result check_g3(const run_data& d, const check_options& o) {
  promise_result r{"G3", "exactly once per idempotency key", verdict::pass, {}, {}, {}, {}};
  const int64_t t0 = first_start(d);
  std::map<std::string, std::vector<const operation*>> by_key;
  for (const auto& op : d.history) {
    if (op.kind == op_kind::checkout && !op.idempotency_key.empty()) {
      by_key[op.idempotency_key].push_back(&op);
    }
  }
  std::size_t retried = 0;
  for (auto& [key, ops] : by_key) {
    std::sort(ops.begin(), ops.end(),
              [](const operation* a, const operation* b) { return a->start_ms < b->start_ms; });
    retried += ops.size() > 1 ? 1 : 0;
    const operation* first_ok = nullptr;
    for (const auto* op : ops) {
      if (op->status == 201) {
        if (first_ok == nullptr) {
          first_ok = op;
        } else if (op->order_id != first_ok->order_id) {
          example(r, o,
                  "key " + key + ": two orders acknowledged: " + describe(*first_ok, t0) + " and " +
                      describe(*op, t0));
        }
      } else if (first_ok != nullptr && op->start_ms >= first_ok->end_ms && op->status != 0 &&
                 op->status < 500 && op->status != 422 && op->status != 429) {
        // (No answer, 5xx and 429 say nothing about the key: a 429 is the per-address rate
        // limit refusing the request before anything reads it.)
        example(r, o,
                "key " + key + ": a retry after " + describe(*first_ok, t0) +
                    " did not return the first result: " + describe(*op, t0));
      }
    }
  }
  std::map<std::string, std::vector<const order_row*>> orders_by_key;
  for (const auto& ord : d.orders) {
    orders_by_key[ord.idempotency_key].push_back(&ord);
  }
  for (const auto& [key, list] : orders_by_key) {
    if (list.size() > 1) {
      std::string ids;
      for (const auto* ord : list) {
        ids += " " + ord->order_id;
      }
      example(r, o, "key " + key + ": " + std::to_string(list.size()) + " orders:" + ids);
    }
  }
  // The money, from the gateways' charge and refund logs against the orders' rows (status, the
  // cancellation's refund, the operators' refunds). With payments.capture=after_confirm a key's
  // charge is an authorisation first: captured ("approved") once its order is confirmed, voided
  // when the order is cancelled instead.
  std::map<std::string, const order_row*> order_of_key;
  for (const auto& ord : d.orders) {
    order_of_key[ord.idempotency_key] = &ord;
  }
  std::map<std::string, key_money> money;
  for (const auto& c : d.charges) {
    auto& m = money[c.idempotency_key];
    if (c.status == "approved") {
      m.captured.push_back(&c);
    } else if (c.status == "authorized") {
      m.open.push_back(&c);
    } else if (c.status == "voided") {
      m.voided.push_back(&c);
    }
  }
  // At most one charge per key over all gateways (a failed attempt on the first gateway is not
  // one): never approved twice (a gateway charging twice, a failover after an approval), never
  // both captured and voided, never a second authorisation.
  std::size_t charged_keys = 0;
  for (const auto& [key, m] : money) {
    const std::string order = " (" + order_text(order_of_key, key) + ")";
    charged_keys += m.captured.empty() ? 0 : 1;
    if (m.captured.size() > 1) {
      std::map<std::string, int> per_gateway;
      for (const auto* c : m.captured) {
        per_gateway[c->gateway] += 1;
      }
      std::string where;
      for (const auto& [gw, n] : per_gateway) {
        where += " " + gw + "x" + std::to_string(n);
      }
      example(r, o,
              "key " + key + ": " + std::to_string(m.captured.size()) +
                  " approved charges:" + where + order);
    } else if (!m.captured.empty() && !m.voided.empty()) {
      example(r, o,
              "key " + key + ": both captured (" + charge_text(*m.captured.front()) +
                  ") and voided (" + charge_text(*m.voided.front()) + ")" + order);
    } else if (m.captured.size() + m.open.size() + m.voided.size() > 1) {
      std::string what;
      for (const auto* list : {&m.captured, &m.open, &m.voided}) {
        for (const auto* c : *list) {
          what += (what.empty() ? "" : ", ") + charge_text(*c);
        }
      }
      example(r, o, "key " + key + ": more than one charge or authorisation: " + what + order);
    }
  }
  // Every captured amount belongs to a confirmed order (whole: its total), which keeps it but
  // for what its operators' recorded refunds gave back; a cancelled order's capture was given
  // back whole by its cancellation's refund; any other is money kept for nothing.
  std::size_t captured = 0;
  std::size_t refunded_keys = 0;
  for (const auto& c : d.charges) {
    if (c.status != "approved") {
      continue;
    }
    const std::string head = "key " + c.idempotency_key + ": ";
    auto i = order_of_key.find(c.idempotency_key);
    if (i == order_of_key.end()) {
      example(r, o,
              head + "charged " + std::to_string(c.amount_cents) + " via " + c.gateway +
                  " for an order that is missing, refunded " + std::to_string(c.refunded_cents));
      continue;
    }
    const order_row& ord = *i->second;
    const std::string order = " (" + order_text(order_of_key, c.idempotency_key) + ")";
    if (ord.status == "confirmed") {
      ++captured;
      int64_t given = 0;
      int64_t pending = 0;
      for (const auto& f : ord.refunds) {
        given += f.status == "refunded" ? f.amount_cents : 0;
        pending += f.status == "pending" ? f.amount_cents : 0;
      }
      if (c.refunded_cents < given || c.refunded_cents > given + pending) {
        example(r, o,
                head + "a confirmed order's charge was refunded (" +
                    std::to_string(c.refunded_cents) + " of " + std::to_string(c.amount_cents) +
                    " via " + c.gateway + ") but its operators' refunds recorded give back " +
                    std::to_string(given) +
                    (pending > 0 ? " (" + std::to_string(pending) + " more pending)" : "") + order);
      }
      if (ord.total_cents > 0 && c.amount_cents != ord.total_cents) {
        example(r, o,
                head + "captured " + std::to_string(c.amount_cents) + " via " + c.gateway +
                    " but the order's total is " + std::to_string(ord.total_cents) + order);
      }
      if ((!ord.payment_status.empty() && ord.payment_status != "approved") ||
          (!ord.payment_gateway.empty() && ord.payment_gateway != c.gateway)) {
        example(r, o,
                head + "captured via " + c.gateway + " but the order's payment row says " +
                    ord.payment_status + " via " + ord.payment_gateway + order);
      }
    } else if (ord.status == "cancelled" && c.refunded_cents == c.amount_cents &&
               ord.refund_status == "refunded") {
      ++refunded_keys;
    } else {
      example(r, o,
              head + "charged " + std::to_string(c.amount_cents) + " via " + c.gateway +
                  " for an order that is " + ord.status + ", refunded " +
                  std::to_string(c.refunded_cents) + order);
    }
  }
  // Every void matches a cancelled order whose refund says voided, or a failed order whose
  // payment says voided (3-D Secure given up: released before anything was taken); an
  // authorisation is never left open (neither captured nor voided) once the orders have settled.
  std::size_t voided = 0;
  std::size_t open = 0;
  for (const auto& c : d.charges) {
    auto i = order_of_key.find(c.idempotency_key);
    const std::string order = " (" + order_text(order_of_key, c.idempotency_key) + ")";
    if (c.status == "voided") {
      ++voided;
      const bool cancelled_voided = i != order_of_key.end() && i->second->status == "cancelled" &&
                                    i->second->refund_status == "voided";
      const bool abandoned = i != order_of_key.end() && i->second->status == "failed" &&
                             i->second->payment_status == "voided";
      if (!cancelled_voided && !abandoned) {
        example(r, o,
                "key " + c.idempotency_key + ": an authorisation of " +
                    std::to_string(c.amount_cents) + " voided via " + c.gateway +
                    " for an order that is " +
                    (i == order_of_key.end() ? std::string{"missing"} : i->second->status) +
                    ", not cancelled with its refund voided" + order);
      }
    } else if (c.status == "authorized") {
      ++open;
      example(r, o,
              "key " + c.idempotency_key + ": an authorisation of " +
                  std::to_string(c.amount_cents) + " via " + c.gateway +
                  " left open (neither captured nor voided) at the check" + order);
    }
  }
  // Every refund the gateways made matches the cancellation's refund of its charge's order
  // (key refund-<checkout key>, the whole charge) or an operator's refund recorded for that order
  // (its gateway key and amount).
  std::size_t refunds_made = 0;
  std::set<std::string> refund_keys;
  for (const auto& f : d.refunds) {
    if (f.status != "refunded") {
      continue; // refused or not processed: no money moved
    }
    ++refunds_made;
    refund_keys.insert(f.idempotency_key);
    auto i = order_of_key.find(f.charge_key);
    bool matched = false;
    if (i != order_of_key.end()) {
      const order_row& ord = *i->second;
      matched = ord.status == "cancelled" && ord.refund_status == "refunded" &&
                f.idempotency_key == "refund-" + ord.idempotency_key &&
                (ord.refund_cents == 0 || f.amount_cents == ord.refund_cents);
      for (const auto& op : ord.refunds) {
        matched =
            matched || (op.gateway_key == f.idempotency_key && op.amount_cents == f.amount_cents &&
                        (op.status == "refunded" || op.status == "pending"));
      }
    }
    if (!matched) {
      example(r, o,
              "key " + f.charge_key + ": refund " + f.idempotency_key + " of " +
                  std::to_string(f.amount_cents) + " via " + f.gateway +
                  " matches neither a cancelled order's refund nor an operator's refund recorded "
                  "for the order (" +
                  order_text(order_of_key, f.charge_key) + ")");
    }
  }
  // And the other way round: what the orders say was given back or released, the gateways did;
  // and every order has settled (pending and paid orders, and pending refunds, are settled by the
  // reconciler before the check).
  std::size_t unsettled = 0;
  for (const auto& ord : d.orders) {
    const std::string head =
        "order " + ord.order_id + " (key " + ord.idempotency_key + ", " + ord.status +
        (ord.refund_status.empty() ? "" : ", refund " + ord.refund_status) + "): ";
    auto m = money.find(ord.idempotency_key);
    const bool has_money = m != money.end();
    bool pending_refund = ord.refund_status == "pending";
    for (const auto& op : ord.refunds) {
      pending_refund = pending_refund || op.status == "pending";
      if (op.status == "refunded" && refund_keys.count(op.gateway_key) == 0) {
        example(r, o,
                head + "operator refund " + op.refund_id + " of " +
                    std::to_string(op.amount_cents) +
                    " is recorded refunded but no gateway refunded " + op.gateway_key);
      }
    }
    if (ord.status == "pending" || ord.status == "paid" || pending_refund) {
      ++unsettled;
      example(r, o, head + "not settled at the check");
      continue;
    }
    if (ord.status == "confirmed" && ord.total_cents > 0 &&
        (!has_money || m->second.captured.empty())) {
      example(r, o, head + "confirmed, but no gateway captured its payment");
    }
    if (ord.status == "cancelled" && ord.refund_status == "refunded" &&
        refund_keys.count("refund-" + ord.idempotency_key) == 0) {
      example(r, o,
              head + "its refund is recorded refunded but no gateway refunded refund-" +
                  ord.idempotency_key);
    }
    if (ord.status == "cancelled" && ord.refund_status == "voided" &&
        (!has_money || m->second.voided.empty())) {
      example(r, o, head + "its authorisation is recorded voided but no gateway voided one");
    }
  }
  r.metrics["keys"] = static_cast<double>(by_key.size());
  r.metrics["retried_keys"] = static_cast<double>(retried);
  r.metrics["charged_keys"] = static_cast<double>(charged_keys);
  r.metrics["captured_confirmed"] = static_cast<double>(captured);
  r.metrics["refunded_keys"] = static_cast<double>(refunded_keys);
  r.metrics["voided_keys"] = static_cast<double>(voided);
  r.metrics["open_authorizations"] = static_cast<double>(open);
  r.metrics["refunds_made"] = static_cast<double>(refunds_made);
  r.metrics["unsettled_orders"] = static_cast<double>(unsettled);
  r.metrics["charges_logged"] = static_cast<double>(d.charges.size());
  r.metrics["refunds_logged"] = static_cast<double>(d.refunds.size());
  r.summary = std::to_string(by_key.size()) + " keys (" + std::to_string(retried) + " retried), " +
              std::to_string(d.orders.size()) + " orders, " + std::to_string(d.charges.size()) +
              " gateway log lines, " + std::to_string(d.refunds.size()) +
              " refund log lines: one order and at most one charge per key; " +
              std::to_string(captured) + " captured for confirmed orders, " +
              std::to_string(refunded_keys) + " refunded and " + std::to_string(voided) +
              " voided for cancelled ones, " + std::to_string(refunds_made) +
              " refunds all matched, " + std::to_string(open) + " authorisations left open, " +
              std::to_string(unsettled) + " orders unsettled";
  return r;
}

// ---- G4 ----------------------------------------------------------------------------------------

promise_result check_g4(const run_data& d, const check_options& o) {
  promise_result r{"G4", "one writer per shard", verdict::pass, {}, {}, {}, {}};
  std::map<std::pair<int, int64_t>, std::map<std::string, const journal_batch*>> writers;
  for (const auto& b : d.journal) {
    if (b.shard >= 0) {
      writers[{b.shard, b.epoch}].emplace(b.node_id, &b);
    }
  }
  std::map<std::pair<int, int64_t>, std::set<std::string>> owners;
  for (const auto& h : d.shard_history) {
    if (!h.owner.empty()) {
      owners[{h.shard, h.epoch}].insert(h.owner);
    }
  }
  for (const auto& [se, nodes] : writers) {
    if (nodes.size() > 1) {
      std::string list;
      for (const auto& [node, b] : nodes) {
        list += " " + node + " (" + b->stream + " seq " + std::to_string(b->seq) + ")";
      }
      example(r, o,
              "shard " + std::to_string(se.first) + " epoch " + std::to_string(se.second) +
                  " committed by " + std::to_string(nodes.size()) + " nodes:" + list);
    }
    if (auto i = owners.find(se); i != owners.end() && i->second.size() == 1) {
      for (const auto& [node, b] : nodes) {
        if (i->second.count(node) == 0) {
          example(r, o,
                  "shard " + std::to_string(se.first) + " epoch " + std::to_string(se.second) +
                      " belonged to " + *i->second.begin() + " (shard_history) but " + node +
                      " committed " + b->stream + " seq " + std::to_string(b->seq));
        }
      }
    }
  }
  for (const auto& [se, set] : owners) {
    if (set.size() > 1) {
      std::string list;
      for (const auto& n : set) {
        list += " " + n;
      }
      example(r, o,
              "shard_history gives shard " + std::to_string(se.first) + " epoch " +
                  std::to_string(se.second) + " to several owners:" + list);
    }
  }
  r.metrics["shard_epochs"] = static_cast<double>(writers.size());
  r.metrics["history_rows"] = static_cast<double>(d.shard_history.size());
  r.summary = std::to_string(writers.size()) + " (shard, epoch) pairs with commits, " +
              std::to_string(d.shard_history.size()) +
              " shard_history rows: one committing node per shard and epoch";
  return r;
}

// ---- G5 ----------------------------------------------------------------------------------------

namespace {

/// Faults that take one node out: requests sent to that node itself are left out of G5.
bool node_fault(const std::string& kind) {
  return kind == "kill" || kind == "pause" || kind == "partition" || kind == "crash";
}

/// Faults whose unavailability G5 bounds: the node faults, and the planned ones that move
/// shards between live nodes (rolling-restart, scale), which should cost nothing at all.
bool bounded_fault(const std::string& kind) {
  return node_fault(kind) || kind == "rolling-restart" || kind == "scale";
}

struct window {
  int64_t from = 0;
  int64_t to = 0;
  bool recovered = true;
  uint64_t op = 0; ///< the first failed (or slow) operation
};

} // namespace

promise_result check_g5(const run_data& d, const check_options& o) {
  promise_result r{"G5", "availability", verdict::pass, {}, {}, {}, {}};
  const int64_t t0 = first_start(d);
  std::map<std::string, int> shard_of;
  for (const auto& b : d.journal) {
    if (b.shard >= 0) {
      shard_of[sku_of_stream(b.stream)] = b.shard;
    }
  }
  int64_t run_end = 0;
  for (const auto& op : d.history) {
    run_end = std::max(run_end, op.end_ms);
  }
  // A request sent to a node that was itself down measures that node, not its shards.
  auto node_down = [&](const operation& op) {
    if (op.node < 0 || static_cast<std::size_t>(op.node) >= d.node_ids.size()) {
      return false;
    }
    for (const auto& f : d.faults) {
      if (!f.skipped && node_fault(f.kind) && f.target == d.node_ids[op.node] &&
          op.start_ms <= f.end_ms && op.end_ms >= f.start_ms) {
        return true;
      }
    }
    return false;
  };
  std::map<int, std::vector<const operation*>> ops_of;
  for (const auto& op : d.history) {
    // Shoppers' writes, and the harness's probes of a SKU after one of them failed (so that a
    // rarely bought SKU's recovery is measured when it happens, not at its next purchase).
    if ((op.kind == op_kind::put_item || op.kind == op_kind::delete_item ||
         op.kind == op_kind::probe) &&
        !node_down(op)) {
      if (auto i = shard_of.find(op.sku); i != shard_of.end()) {
        ops_of[i->second].push_back(&op);
      }
    }
  }
  // Unavailable windows per shard: from a failed request (no answer, 5xx) to the end of the
  // next success on the shard, and every success slower than g5_slow_ms; merged.
  std::map<int, std::vector<window>> windows;
  for (auto& [shard, ops] : ops_of) {
    std::sort(ops.begin(), ops.end(),
              [](const operation* a, const operation* b) { return a->start_ms < b->start_ms; });
    std::vector<window> w;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const auto& op = *ops[i];
      const bool failed = op.status == 0 || op.status >= 500;
      if (!failed) {
        if (op.end_ms - op.start_ms > o.g5_slow_ms) {
          w.push_back({op.start_ms, op.end_ms, true, op.id});
        }
        continue;
      }
      window x{op.start_ms, run_end, false, op.id};
      for (std::size_t j = i + 1; j < ops.size(); ++j) {
        const auto& next = *ops[j];
        if (next.status != 0 && next.status < 500) {
          x.to = next.end_ms;
          x.recovered = true;
          break;
        }
      }
      w.push_back(x);
    }
    std::sort(w.begin(), w.end(), [](const window& a, const window& b) { return a.from < b.from; });
    std::vector<window> merged;
    for (const auto& x : w) {
      if (!merged.empty() && x.from <= merged.back().to) {
        merged.back().to = std::max(merged.back().to, x.to);
        merged.back().recovered = merged.back().recovered && x.recovered;
      } else {
        merged.push_back(x);
      }
    }
    windows[shard] = std::move(merged);
  }
  // Each window goes to the latest fault that began before it ended and was healed not long
  // before it began; the rest is "no fault".
  const std::size_t nf = d.faults.size();
  std::vector<std::map<int, int64_t>> worst(nf + 1); // per fault: shard -> longest window
  std::vector<std::pair<window, int>> unrecovered;
  for (const auto& [shard, ws] : windows) {
    for (const auto& x : ws) {
      std::size_t owner = nf;
      for (std::size_t f = 0; f < nf; ++f) {
        const auto& fr = d.faults[f];
        if (!fr.skipped && fr.start_ms <= x.to && fr.end_ms + o.g5_attribution_ms >= x.from) {
          owner = f;
        }
      }
      auto& cell = worst[owner][shard];
      cell = std::max(cell, x.to - x.from);
      if (!x.recovered) {
        unrecovered.push_back({x, shard});
      }
    }
  }
  int64_t node_fault_max = 0;
  std::map<std::string, int64_t> kind_max; // per fault kind: the longest window
  for (std::size_t f = 0; f <= nf; ++f) {
    std::vector<int64_t> v;
    for (const auto& [shard, ms] : worst[f]) {
      v.push_back(ms);
    }
    const int64_t mx = quantile(v, 1.0);
    const int64_t p99 = quantile(v, 0.99);
    std::ostringstream line;
    if (f < nf) {
      const auto& fr = d.faults[f];
      if (fr.skipped) {
        continue;
      }
      kind_max[fr.kind] = std::max(kind_max[fr.kind], mx);
      line << fr.kind << " " << fr.target << (fr.detail.empty() ? "" : " " + fr.detail) << " at "
           << (fr.start_ms - t0) / 1000.0 << "s: ";
      if (bounded_fault(fr.kind)) {
        node_fault_max = std::max(node_fault_max, mx);
        if (mx > o.g5_limit_ms) {
          example(r, o,
                  line.str() + "shards unavailable up to " + std::to_string(mx) + " ms (limit " +
                      std::to_string(o.g5_limit_ms) + " ms)");
        } else if (mx > o.g5_goal_ms && r.result == verdict::pass) {
          r.result = verdict::warn;
        }
      }
    } else {
      line << "no fault running: ";
    }
    line << v.size() << " shards affected, max " << mx << " ms, p99 " << p99 << " ms";
    if (f < nf && !bounded_fault(d.faults[f].kind)) {
      line << " (whole-cluster fault: reported, not bounded)";
    }
    if (!v.empty() || f < nf) {
      r.details.push_back(line.str());
    }
  }
  for (const auto& [x, shard] : unrecovered) {
    example(r, o,
            "shard " + std::to_string(shard) + " failed from " + std::to_string(x.from - t0) +
                " ms (op#" + std::to_string(x.op) +
                ") and never served again before the load stopped");
  }
  r.metrics["node_fault_max_ms"] = static_cast<double>(node_fault_max);
  if (!kind_max.empty()) {
    std::string line = "longest per fault kind:";
    for (const auto& [kind, ms] : kind_max) {
      line += " " + kind + " " + std::to_string(ms) + " ms,";
      r.metrics["max_ms." + kind] = static_cast<double>(ms);
    }
    line.pop_back();
    r.details.push_back(line);
  }
  r.metrics["goal_ms"] = static_cast<double>(o.g5_goal_ms);
  // Shards that changed hands because a lease ran out with no fault to explain it (none running,
  // none healed within the attribution time): a member that could not renew by itself, on a
  // starved CPU or a slow database. Flapping; a WARN with the first of them.
  int64_t unexplained = 0;
  for (const auto& h : d.shard_history) {
    if (h.reason.rfind("failover from ", 0) != 0) {
      continue;
    }
    const bool explained = std::any_of(d.faults.begin(), d.faults.end(), [&](const auto& f) {
      return !f.skipped && h.at_ms >= f.start_ms - 1000 &&
             h.at_ms <= f.end_ms + o.g5_attribution_ms;
    });
    if (!explained && unexplained++ == 0) {
      r.details.push_back("shard " + std::to_string(h.shard) + " changed hands without a fault (" +
                          h.reason + ", epoch " + std::to_string(h.epoch) + " to " + h.owner +
                          ") at " + std::to_string((h.at_ms - t0) / 1000.0) + "s");
      if (r.result == verdict::pass) {
        r.result = verdict::warn;
      }
    }
  }
  r.metrics["failovers_without_fault"] = static_cast<double>(unexplained);
  r.summary =
      "longest unavailability of a shard after a node fault: " + std::to_string(node_fault_max) +
      " ms (goal " + std::to_string(o.g5_goal_ms) + " ms; FAIL above " +
      std::to_string(o.g5_limit_ms) + " ms or never back); " + std::to_string(unexplained) +
      " shard(s) changed hands without a fault";
  return r;
}

// ---- G6 ----------------------------------------------------------------------------------------

promise_result check_g6(const run_data& d, const check_options& o) {
  promise_result r{"G6", "holds expire", verdict::pass, {}, {}, {}, {}};
  std::size_t left = 0;
  std::size_t expired = 0;
  std::vector<int64_t> lateness;
  std::unordered_map<std::string, int64_t> expiry_of;
  for (const auto& b : d.journal) {
    for (const auto& ev : b.events) {
      if (ev.kind == kind::hold_set) {
        expiry_of[ev.hold_id] = ev.expires_at_ms;
      } else if (ev.kind == kind::hold_released && ev.reason == 2 /* EXPIRED */) {
        ++expired;
        if (auto i = expiry_of.find(ev.hold_id); i != expiry_of.end()) {
          lateness.push_back(std::max<int64_t>(0, ev.at_ms - i->second));
        }
      }
    }
  }
  for (const auto& [sku, s] : replay_all(d)) {
    for (const auto& [id, h] : s.holds) {
      ++left;
      if (h.expires_at_ms + o.g6_margin_ms < d.checked_at_ms) {
        example(r, o,
                "sku " + sku + ": hold " + id + " (cart " + h.cart_id + ", x" +
                    std::to_string(h.qty) + ") expired " +
                    std::to_string(d.checked_at_ms - h.expires_at_ms) +
                    " ms before the check and still holds stock");
      }
    }
  }
  r.metrics["holds_open_at_check"] = static_cast<double>(left);
  r.metrics["expired_releases"] = static_cast<double>(expired);
  r.metrics["release_lateness_max_ms"] = static_cast<double>(quantile(lateness, 1.0));
  r.metrics["release_lateness_p99_ms"] = static_cast<double>(quantile(lateness, 0.99));
  r.summary = std::to_string(expired) + " holds released on expiry (late by max " +
              std::to_string(quantile(lateness, 1.0)) + " ms, p99 " +
              std::to_string(quantile(lateness, 0.99)) + " ms); " + std::to_string(left) +
              " open at the check, none past TTL + " + std::to_string(o.g6_margin_ms) + " ms";
  return r;
}

std::vector<promise_result> check_all(const run_data& d, const check_options& o) {
  return {check_g1(d, o), check_g2(d, o), check_g3(d, o),
          check_g4(d, o), check_g5(d, o), check_g6(d, o)};
}

bool all_passed(const std::vector<promise_result>& results) {
  return std::none_of(results.begin(), results.end(),
                      [](const promise_result& r) { return r.result == verdict::fail; });
}

} // namespace surge::chaos
