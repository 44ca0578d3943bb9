#include "collect.hpp"

#include <map>
#include <stdexcept>

#include <pqxx/pqxx>

#include "journal_codec.hpp"

namespace surge::chaos {

void collect_database(const std::string& pg_url, run_data& d) {
  pqxx::connection c{pg_url};
  pqxx::read_transaction tx{c};
  for (const auto& row :
       tx.exec("SELECT stream, seq, payload, COALESCE(shard, -1), COALESCE(epoch, -1), "
               "COALESCE(node_id, ''), (extract(epoch FROM committed_at) * 1000)::bigint "
               "FROM sku_journal ORDER BY stream, seq")) {
    journal_batch b;
    b.stream = row[0].as<std::string>();
    b.seq = row[1].as<int64_t>();
    pqxx::binarystring payload{row[2]};
    b.shard = row[3].as<int>();
    b.epoch = row[4].as<int64_t>();
    b.node_id = row[5].as<std::string>();
    b.committed_at_ms = row[6].is_null() ? 0 : row[6].as<int64_t>();
    auto events = decode_batch(payload.str());
    if (!events) {
      throw std::runtime_error("sku_journal " + b.stream + " seq " + std::to_string(b.seq) +
                               ": payload is not an EventBatch");
    }
    b.events = std::move(*events);
    d.journal.push_back(std::move(b));
  }
  for (const auto& row :
       tx.exec("SELECT shard, epoch, COALESCE(owner, ''), reason, "
               "(extract(epoch FROM at) * 1000)::bigint FROM shard_history ORDER BY id")) {
    d.shard_history.push_back({row[0].as<int>(), row[1].as<int64_t>(), row[2].as<std::string>(),
                               row[3].as<std::string>(), row[4].as<int64_t>()});
  }
  std::map<std::string, std::size_t> index;
  for (const auto& row :
       tx.exec("SELECT o.order_id, o.idempotency_key, o.status, COALESCE(o.cart_id, ''), "
               "o.total_cents, COALESCE(o.refund_status, ''), o.refunded_cents, "
               "COALESCE(p.status, ''), COALESCE(p.gateway, '') "
               "FROM orders o LEFT JOIN payments p ON p.order_id = o.order_id "
               "ORDER BY o.order_id")) {
    index[row[0].as<std::string>()] = d.orders.size();
    order_row o;
    o.order_id = row[0].as<std::string>();
    o.idempotency_key = row[1].as<std::string>();
    o.status = row[2].as<std::string>();
    o.cart_id = row[3].as<std::string>();
    o.total_cents = row[4].as<int64_t>();
    o.refund_status = row[5].as<std::string>();
    o.refund_cents = row[6].as<int64_t>();
    o.payment_status = row[7].as<std::string>();
    o.payment_gateway = row[8].as<std::string>();
    d.orders.push_back(std::move(o));
  }
  for (const auto& row : tx.exec("SELECT order_id, refund_id, gateway_key, status, amount_cents "
                                 "FROM order_refunds ORDER BY order_id, created_at")) {
    if (auto i = index.find(row[0].as<std::string>()); i != index.end()) {
      d.orders[i->second].refunds.push_back({row[1].as<std::string>(), row[2].as<std::string>(),
                                             row[3].as<std::string>(), row[4].as<int64_t>()});
    }
  }
  for (const auto& row : tx.exec("SELECT order_id, sku, qty, COALESCE(hold_id, '') "
                                 "FROM order_lines ORDER BY order_id, line")) {
    if (auto i = index.find(row[0].as<std::string>()); i != index.end()) {
      d.orders[i->second].lines.push_back(
          {row[1].as<std::string>(), row[2].as<int64_t>(), row[3].as<std::string>()});
    }
  }
}

int64_t unsettled_orders(const std::string& pg_url) {
  pqxx::connection c{pg_url};
  pqxx::read_transaction tx{c};
  return tx
      .exec1("SELECT count(*) FROM orders o WHERE status IN ('pending', 'paid')"
             " OR refund_status = 'pending' OR EXISTS (SELECT 1 FROM order_refunds r"
             " WHERE r.order_id = o.order_id AND r.status = 'pending')")[0]
      .as<int64_t>();
}

} // namespace surge::chaos
