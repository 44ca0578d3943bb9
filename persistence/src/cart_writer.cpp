#include <chrono>

#include "surge/persistence/errors.hpp"
#include "surge/persistence/pools.hpp"

namespace surge::persistence {

namespace {

caf::error no_redis() {
  return make_error(errc::unavailable, "no Redis connection");
}

} // namespace

std::unique_ptr<cart_writer>
make_cart_writer(redis_pool& pool, std::size_t max_batch,
                 std::function<void(double seconds, std::size_t writes)> observe) {
  return std::make_unique<cart_writer>(
      pool,
      [observe = std::move(observe)](redis_conn* r, std::vector<cart_write>& batch) {
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
        const auto start = std::chrono::steady_clock::now();
        auto errs = r->carts->put_many(puts);
        if (observe) {
          observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                  puts.size());
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
          batch[i].done(i < errs.size() ? std::move(errs[i]) : no_redis());
        }
      },
      max_batch);
}

} // namespace surge::persistence
