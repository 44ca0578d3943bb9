#include "surge/persistence/storage.hpp"

#include <utility>

namespace surge::persistence {

entity_storage::entity_storage(factories make, sizes n)
    : pg_("pg", n.storage_threads, make.journal)
    , redis_("redis", n.storage_threads, std::move(make.redis))
    , cart_writes_(make_cart_writer(redis_, n.cart_batch))
    , orders_("orders", n.order_threads, std::move(make.orders))
    , journal_(std::move(make.journal), n.commits) {}

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
