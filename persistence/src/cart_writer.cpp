#include "surge/persistence/errors.hpp"
#include "surge/persistence/pools.hpp"

namespace surge::persistence {

namespace {

caf::error no_redis() {
  return make_error(errc::unavailable, "no Redis connection");
}

} // namespace

std::unique_ptr<cart_writer> make_cart_writer(redis_pool& pool, std::size_t max_batch) {
  return std::make_unique<cart_writer>(
      pool,
      [](redis_conn* r, std::vector<cart_write>& batch) {
        if (r == nullptr) {
          for (auto& w : batch) {
            w.done(no_redis());
          }
          return;
        }
        std::vector<cart_put> puts;
        puts.reserve(batch.size());
        for (const auto& w : batch) {
          puts.push_back({w.cart_id, w.payload, w.ttl});
        }
        auto errs = r->carts->put_many(puts);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          batch[i].done(i < errs.size() ? std::move(errs[i]) : no_redis());
        }
      },
      max_batch);
}

} // namespace surge::persistence
