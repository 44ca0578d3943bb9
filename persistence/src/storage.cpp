#include "surge/persistence/storage.hpp"

#include <utility>

namespace surge::persistence {

entity_storage::entity_storage(factories make, sizes n, storage_observer obs)
    : pg_("pg", n.storage_threads, make.journal, std::move(obs.pg_wait))
    , redis_("redis", n.storage_threads, std::move(make.redis), std::move(obs.redis_wait))
    , cart_writes_(make_cart_writer(redis_, n.cart_batch, std::move(obs.redis_batch)))
    , orders_("orders", n.order_threads, std::move(make.orders), std::move(obs.orders_wait))
    , journal_(std::move(make.journal), n.commits, std::move(obs.journal_commit)) {}

entity_storage::~entity_storage() {
  stop();
}

void entity_storage::drain() {
  journal_.stop();
}

void entity_storage::stop() {
  drain();
  // The cart writer has no threads of its own: its batches are jobs of redis_, run by its stop.
  pg_.stop();
  redis_.stop();
  orders_.stop();
}

} // namespace surge::persistence
