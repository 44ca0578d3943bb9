#include "surge/runtime/entity_layer.hpp"

#include <caf/all.hpp>

#include <stdexcept>
#include <thread>

#include "surge/config/log.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::runtime {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("node");
  return lg;
}

std::unique_ptr<net::payments::payment_router> make_payments(const config::node_options& opts) {
  auto parsed = net::payments::parse_gateways(opts.payments_gateways);
  if (auto* err = std::get_if<std::string>(&parsed)) {
    throw std::invalid_argument("setting 'payments.gateways': " + *err);
  }
  std::vector<std::unique_ptr<net::payments::gateway>> gws;
  for (const auto& spec : std::get<0>(parsed)) {
    gws.push_back(net::payments::make_gateway(spec));
  }
  if (gws.empty()) {
    logger()->warn("payments.gateways is empty: every checkout will fail as unavailable");
  }
  net::payments::router_options ro;
  ro.timeout = opts.payments_timeout;
  ro.threads = opts.payments_threads;
  return std::make_unique<net::payments::payment_router>(std::move(gws), ro);
}

} // namespace

entity_layer::entity_layer(const config::node_options& opts) {
  payments = make_payments(opts); // first: the only part that can refuse the settings
  auto pg_url = opts.pg_url;
  auto pg_factory = [pg_url]() -> std::unique_ptr<persistence::journal> {
    auto j = persistence::make_pg_journal(pg_url);
    if (!j) {
      logger()->warn("PostgreSQL connection failed: {}", caf::to_string(j.error()));
      return nullptr;
    }
    return std::move(*j);
  };
  pg = std::make_unique<actors::pg_pool>("pg", opts.storage_threads, pg_factory);
  persistence::redis_options ropts;
  ropts.url = opts.redis_url;
  ropts.prefix = opts.redis_prefix;
  redis = std::make_unique<actors::redis_pool>(
      "redis", opts.storage_threads, [ropts]() -> std::unique_ptr<actors::redis_conn> {
        auto snaps = persistence::make_redis_snapshot_cache(ropts);
        auto carts = persistence::make_redis_cart_store(ropts);
        if (!snaps || !carts) {
          logger()->warn("Redis connection failed: {}",
                         caf::to_string(!snaps ? snaps.error() : carts.error()));
          return nullptr;
        }
        auto conn = std::make_unique<actors::redis_conn>();
        conn->snapshots = std::move(*snaps);
        conn->carts = std::move(*carts);
        return conn;
      });
  orders_pool = std::make_unique<actors::order_pool>(
      "orders", opts.orders_threads, [pg_url]() -> std::unique_ptr<persistence::order_store> {
        auto s = persistence::make_pg_order_store(pg_url);
        if (!s) {
          logger()->warn("PostgreSQL connection failed: {}", caf::to_string(s.error()));
          return nullptr;
        }
        return std::move(*s);
      });
  journal = std::make_unique<persistence::commit_queue>(
      pg_factory, persistence::commit_queue::options{opts.journal_writers, opts.journal_max_batch});

  env = std::make_shared<actors::entity_env>();
  env->opts.node_id = opts.node_id;
  env->opts.holds_ttl = opts.holds_ttl;
  env->opts.carts_ttl = opts.carts_ttl;
  env->opts.idle_timeout = opts.entity_idle;
  env->opts.snapshot_every = opts.sku_snapshot_every;
  env->journal = journal.get();
  env->pg = pg.get();
  env->redis = redis.get();
  env->orders = orders_pool.get();
  env->payments = payments.get();
  env->now_ms = actors::system_now_ms;

  cfg = std::make_unique<caf::actor_system_config>();
  // One scheduler thread per core: more only spin; blocking work has its own threads.
  cfg->set("scheduler.max-threads",
           static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
  actors::register_message_types(*cfg);
  sys = std::make_unique<caf::actor_system>(*cfg);
  std::shared_ptr<const actors::entity_env> cenv = env;
  auto* s = sys.get();
  skus = std::make_unique<actors::sku_directory>([s, cenv, this](const std::string& id) {
    return actors::spawn_sku(*s, id, cenv, skus.get());
  });
  carts = std::make_unique<actors::cart_directory>([s, cenv, this](const std::string& id) {
    return actors::spawn_cart(*s, id, cenv, carts.get(), skus.get());
  });
  orders = std::make_unique<actors::order_directory>([s, cenv, this](const std::string& id) {
    return actors::spawn_order(*s, id, cenv,
                               actors::order_links{orders.get(), carts.get(), skus.get()});
  });
}

entity_layer::~entity_layer() {
  stop();
}

void entity_layer::stop() {
  if (sys) {
    auto stop_all = [](const auto& h) { caf::anon_send_exit(h, caf::exit_reason::user_shutdown); };
    skus->for_each(stop_all);
    carts->for_each(stop_all);
    orders->for_each(stop_all);
  }
  if (journal) {
    journal->stop();
  }
  sys.reset(); // waits for every actor to finish
  if (pg) {
    pg->stop();
  }
  if (redis) {
    redis->stop();
  }
  if (orders_pool) {
    orders_pool->stop();
  }
  payments.reset();
}

} // namespace surge::runtime
