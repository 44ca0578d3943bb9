#include "surge/runtime/node.hpp"

#include <caf/all.hpp>

#include <sstream>
#include <thread>

#include "background.hpp"
#include "surge/actors/cart.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sku.hpp"
#include "surge/config/log.hpp"
#include "surge/net/bridge.hpp"
#include "surge/net/payments/payment_router.hpp"
#include "surge/net/server.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::runtime {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("node");
  return lg;
}

} // namespace

struct node::impl {
  explicit impl(config::node_options o) : opts(std::move(o)) {}

  const config::node_options opts;

  std::unique_ptr<actors::pg_pool> pg;
  std::unique_ptr<actors::redis_pool> redis;
  std::unique_ptr<persistence::commit_queue> journal;
  std::unique_ptr<actors::order_pool> orders_pool;
  std::unique_ptr<net::payments::payment_router> payments;
  std::shared_ptr<actors::entity_env> env;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<actors::sku_directory> skus;
  std::unique_ptr<actors::cart_directory> carts;
  std::unique_ptr<actors::order_directory> orders;
  std::unique_ptr<order_reconciler> reconciler;
  std::unique_ptr<outbox_relay> relay;
  std::shared_ptr<net::bridge_env> bridge;
  std::unique_ptr<net::http_server> http;
  std::unique_ptr<net::http_server> admin;
  bool running = false;

  void start_storage() {
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
    journal = std::make_unique<persistence::commit_queue>(
      pg_factory, persistence::commit_queue::options{opts.journal_writers, opts.journal_max_batch});
    orders_pool = std::make_unique<actors::order_pool>(
      "orders", 2, [pg_url]() -> std::unique_ptr<persistence::order_store> {
        auto s = persistence::make_pg_order_store(pg_url);
        if (!s) {
          logger()->warn("PostgreSQL connection failed: {}", caf::to_string(s.error()));
          return nullptr;
        }
        return std::move(*s);
      });
  }

  std::string start_payments() {
    auto parsed = net::payments::parse_gateways(opts.payments_gateways);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      return "setting 'payments.gateways': " + *err;
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
    payments = std::make_unique<net::payments::payment_router>(std::move(gws), ro);
    return {};
  }

  void start_actors() {
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

  void start_background() {
    reconciler = std::make_unique<order_reconciler>(opts.pg_url, orders.get(),
                                                    opts.orders_reconcile_interval,
                                                    opts.orders_settle_after);
    persistence::redis_options ropts;
    ropts.url = opts.redis_url;
    ropts.prefix = opts.redis_prefix;
    relay = std::make_unique<outbox_relay>(opts.pg_url, ropts, std::chrono::milliseconds{200});
  }

  std::string start_http() {
    bridge = std::make_shared<net::bridge_env>();
    bridge->sys = sys.get();
    bridge->skus = skus.get();
    bridge->carts = carts.get();
    bridge->orders = orders.get();
    bridge->pg = pg.get();
    bridge->callers = net::spawn_callers(*sys, std::max<std::size_t>(opts.http_io_threads, 2));
    bridge->call_timeout = opts.http_request_timeout - std::chrono::milliseconds{500};
    if (bridge->call_timeout < std::chrono::milliseconds{500}) {
      bridge->call_timeout = std::chrono::milliseconds{500};
    }
    bridge->admin_token = opts.admin_token;
    bridge->node_id = opts.node_id;
    bridge->cluster_address = opts.cluster_host + ":" + std::to_string(opts.cluster_port);
    bridge->shards = opts.cluster_shards;
    auto* jq = journal.get();
    bridge->extra_metrics = [jq] {
      auto s = jq->stats();
      std::ostringstream out;
      out << "# HELP surge_journal_transactions_total Journal transactions committed.\n"
             "# TYPE surge_journal_transactions_total counter\n"
          << "surge_journal_transactions_total " << s.transactions << "\n"
          << "# HELP surge_journal_requests_total Entity batches committed.\n"
             "# TYPE surge_journal_requests_total counter\n"
          << "surge_journal_requests_total " << s.requests << "\n"
          << "# HELP surge_journal_failures_total Entity batches that failed to commit.\n"
             "# TYPE surge_journal_failures_total counter\n"
          << "surge_journal_failures_total " << s.failures << "\n";
      return out.str();
    };

    net::server_options so;
    so.host = opts.http_host;
    so.port = opts.http_port;
    so.io_threads = opts.http_io_threads;
    so.body_limit = opts.http_body_limit;
    so.handler_timeout = opts.http_request_timeout;
    auto store = std::make_shared<const net::router>(net::make_storefront_router(bridge));
    http = std::make_unique<net::http_server>(so, net::make_handler(bridge, store));
    if (auto ec = http->start()) {
      return "cannot listen on " + so.host + ":" + std::to_string(so.port) + " (http): "
             + ec.message();
    }
    net::server_options ao = so;
    ao.host = opts.admin_host;
    ao.port = opts.admin_port;
    ao.io_threads = 1;
    auto adm = std::make_shared<const net::router>(net::make_admin_router(bridge));
    admin = std::make_unique<net::http_server>(ao, net::make_handler(bridge, adm));
    if (auto ec = admin->start()) {
      return "cannot listen on " + ao.host + ":" + std::to_string(ao.port) + " (admin): "
             + ec.message();
    }
    return {};
  }
};

node::node(config::node_options opts) : impl_(std::make_unique<impl>(std::move(opts))) {}

node::~node() {
  stop();
}

std::string node::start() {
  auto& d = *impl_;
  d.running = true;
  d.start_storage();
  if (auto err = d.start_payments(); !err.empty()) {
    stop();
    return err;
  }
  d.start_actors();
  if (auto err = d.start_http(); !err.empty()) {
    stop();
    return err;
  }
  d.start_background();
  d.bridge->ready.store(true);
  logger()->info("node {} serving: storefront http://{}:{} admin http://{}:{}", d.opts.node_id,
                 d.opts.http_host, d.http->port(), d.opts.admin_host, d.admin->port());
  return {};
}

void node::stop() {
  auto& d = *impl_;
  if (!d.running) {
    return;
  }
  d.running = false;
  if (d.bridge) {
    d.bridge->ready.store(false);
  }
  // Stop taking requests and let those in flight finish (they wait on their commits).
  if (d.http) {
    d.http->stop();
  }
  if (d.admin) {
    d.admin->stop();
  }
  d.reconciler.reset();
  d.relay.reset();
  // Entities hold no unacknowledged promises once HTTP is drained; stop them all.
  if (d.sys) {
    auto stop_all = [](const auto& h) { caf::anon_send_exit(h, caf::exit_reason::user_shutdown); };
    d.skus->for_each(stop_all);
    d.carts->for_each(stop_all);
    d.orders->for_each(stop_all);
    for (auto& c : d.bridge->callers) {
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
    }
  }
  if (d.journal) {
    d.journal->stop();
  }
  d.sys.reset(); // waits for every actor to finish
  if (d.pg) {
    d.pg->stop();
  }
  if (d.redis) {
    d.redis->stop();
  }
  if (d.orders_pool) {
    d.orders_pool->stop();
  }
  d.payments.reset();
  logger()->info("node {} stopped", d.opts.node_id);
}

uint16_t node::http_port() const {
  return impl_->http ? impl_->http->port() : 0;
}

uint16_t node::admin_port() const {
  return impl_->admin ? impl_->admin->port() : 0;
}

std::string migrate_with_retry(const config::node_options& opts, std::chrono::seconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  auto delay = std::chrono::milliseconds{100};
  for (;;) {
    auto err = persistence::migrate(opts.pg_url);
    if (!err) {
      return {};
    }
    if (!persistence::is(err, persistence::errc::unavailable)
        || std::chrono::steady_clock::now() + delay > deadline) {
      return "schema migration on " + opts.pg_url + " failed: " + caf::to_string(err);
    }
    logger()->warn("PostgreSQL not reachable yet ({}); retrying", caf::to_string(err));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds{2000});
  }
}

} // namespace surge::runtime
