#include "surge/runtime/entity_layer.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <pthread.h>

#include <stdexcept>
#include <thread>

#include "background.hpp"
#include "surge/actors/errors.hpp"
#include "surge/cluster/gateway.hpp"
#include "surge/config/derived.hpp"
#include "surge/config/log.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"
#include "surge/runtime/wiring.hpp"

namespace surge::runtime {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("node");
  return lg;
}

/// Names CAF's threads (scheduler workers, clock, middleman) "surge-caf" for top -H and perf.
struct name_caf_threads : caf::thread_hook {
  void init(caf::actor_system&) override {}
  void thread_started() override { pthread_setname_np(pthread_self(), "surge-caf"); }
  void thread_terminates() override {}
};

std::unique_ptr<net::payments::payment_router>
make_payments(const config::node_options& opts, net::payments::payment_observer observe) {
  auto parsed = net::payments::parse_gateways(opts.payments_gateways);
  if (auto* err = std::get_if<std::string>(&parsed)) {
    throw std::invalid_argument("setting 'payments.gateways': " + *err);
  }
  std::vector<std::unique_ptr<net::payments::gateway>> gws;
  for (const auto& spec : std::get<0>(parsed)) {
    gws.push_back(net::payments::make_gateway(spec, {opts.payments_ca_file}));
  }
  if (gws.empty()) {
    logger()->warn("payments.gateways is empty: every checkout will fail as unavailable");
  }
  return std::make_unique<net::payments::payment_router>(std::move(gws), router_options_of(opts),
                                                         std::move(observe));
}

/// The PostgreSQL connection `made`, or nullptr (the pool retries) after a warning saying why.
template <class Port>
std::unique_ptr<Port> pg_connection(caf::expected<std::unique_ptr<Port>> made) {
  if (!made) {
    logger()->warn("PostgreSQL connection failed: {}", caf::to_string(made.error()));
    return nullptr;
  }
  return std::move(*made);
}

/// The id keys every node of the database shares (ids.secret: configured, or kept in
/// PostgreSQL). Throws std::invalid_argument when the configured secret is not the database's.
std::shared_ptr<const actors::id_keys> shared_id_keys(const config::node_options& opts) {
  persistence::shared_secret_spec spec{
      "ids.secret", opts.ids_secret, actors::random_secret,
      [](const std::string& s) { return actors::id_keys{s}.fingerprint(); }};
  auto secret = persistence::shared_secret(opts.pg_url, spec);
  if (!secret) {
    throw std::invalid_argument(actors::message_of(secret.error()));
  }
  if (opts.ids_secret.empty()) {
    logger()->info("ids.secret is not configured: using the one kept in PostgreSQL");
  }
  return std::make_shared<const actors::id_keys>(std::move(*secret));
}

} // namespace

entity_layer::entity_layer(const config::node_options& opts, observers obs)
    : lease_renewed_(std::move(obs.lease_renewed)) {
  // first: the settings it can refuse need no database
  payments = make_payments(opts, std::move(obs.payments));
  ids = shared_id_keys(opts);
  auto pg_url = opts.pg_url;
  persistence::entity_storage::factories make;
  make.journal = [pg_url] { return pg_connection(persistence::make_pg_journal(pg_url)); };
  make.redis = [ropts = redis_options_of(opts)]() -> std::unique_ptr<actors::redis_conn> {
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
  };
  make.orders = [pg_url] { return pg_connection(persistence::make_pg_order_store(pg_url)); };
  storage = std::make_unique<persistence::entity_storage>(
      std::move(make),
      persistence::entity_storage::sizes{opts.storage_threads, opts.orders_threads,
                                         journal_options_of(opts), persistence::default_cart_batch},
      std::move(obs.storage));
  env = std::make_shared<actors::entity_env>(actors::make_entity_env(
      entity_options_of(opts), *storage, payments.get(), nullptr, actors::system_now_ms));
  env->hot_skus = hot_skus.get();
  env->holds = &holds;
  env->sales = sales.get();
  env->sale_stats = sale_stats.get();
  env->ids = ids; // the bridge's too (node.cpp): passes signed here verify there
  // The sales as they are now, before any hold can reach a SKU here: a sale SKU is gated from
  // the first request. The node's sale_scheduler keeps the index fresh from then on.
  if (auto err =
          load_sales(*persistence::make_pg_sale_store(pg_url), *sales, actors::system_now_ms())) {
    logger()->warn("cannot read the sales yet ({}): no sale is gated until they are read",
                   caf::to_string(err));
  }

  cfg = std::make_unique<caf::actor_system_config>();
  cfg->add_thread_hook<name_caf_threads>();
  // One scheduler thread per core: more only spin; blocking work has its own threads.
  cfg->set("scheduler.max-threads",
           static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
  // Nodes talk through the middleman (BASP). Heartbeats are off by default in CAF 0.17: on, so
  // that a silent peer connection is noticed and closed.
  cfg->load<caf::io::middleman>();
  cfg->set("middleman.heartbeat-interval", caf::timespan{opts.cluster_heartbeat});
  cfg->set("middleman.connection-timeout",
           caf::timespan{config::derive(opts).middleman_connection_timeout});
  if (opts.cluster_tls) {
    cfg->load<caf::openssl::manager>();
    cfg->openssl_certificate = opts.cluster_tls_cert;
    cfg->openssl_key = opts.cluster_tls_key;
    cfg->openssl_cafile = opts.cluster_tls_ca; // peers must present a certificate it signed
  }
  actors::register_message_types(*cfg);
  sys = std::make_unique<caf::actor_system>(*cfg);
  table = std::make_unique<cluster::shard_table>(opts.node_id, opts.cluster_shards);
  env->cluster = table.get();
  std::shared_ptr<const actors::entity_env> cenv = env;
  auto* s = sys.get();
  const auto stub_idle = config::derive(opts).stub_idle;
  // A relayed request is followed as long as its longest-waiting caller waits.
  const auto relay_timeout =
      std::max(config::derive(opts).bridge_call_timeout, opts.entity_call_timeout);
  // A stub of `Handle`'s interface for `kind:id`, passivated through `dir`.
  auto stub_of = [this, s, stub_idle, relay_timeout]<class Handle>(
                     std::string kind, std::unique_ptr<actors::directory<Handle>>* dir) {
    return [this, s, stub_idle, relay_timeout, kind, dir](const std::string& id, uint32_t shard) {
      auto release = [dir, id](const caf::actor_addr& a, uint64_t n) {
        return (*dir)->try_release(id, a, n);
      };
      return caf::actor_cast<Handle>(cluster::spawn_stub(*s, kind + ":" + id, shard, table.get(),
                                                         gateway, stub_idle, relay_timeout,
                                                         std::move(release)));
    };
  };
  auto* pl = table.get();
  skus = std::make_unique<actors::sku_directory>(
      "sku",
      [s, cenv, this](const std::string& id, actors::entity_fence f) {
        return actors::spawn_sku(*s, id, cenv, skus.get(), f);
      },
      pl, stub_of(std::string{"sku"}, &skus));
  carts = std::make_unique<actors::cart_directory>(
      "cart",
      [s, cenv, this](const std::string& id, actors::entity_fence) {
        return actors::spawn_cart(*s, id, cenv, carts.get(), skus.get());
      },
      pl, stub_of(std::string{"cart"}, &carts));
  orders = std::make_unique<actors::order_directory>(
      "order",
      [s, cenv, this](const std::string& id, actors::entity_fence f) {
        return actors::spawn_order(*s, id, cenv,
                                   actors::order_links{orders.get(), carts.get(), skus.get()}, f);
      },
      pl, stub_of(std::string{"order"}, &orders));
  sale_queues = std::make_unique<actors::sale_directory>(
      "sale",
      [s, cenv, this](const std::string& id, actors::entity_fence f) {
        return actors::spawn_sale(*s, id, cenv, sale_queues.get(), skus.get(), f);
      },
      pl, stub_of(std::string{"sale"}, &sale_queues));

  cluster::gateway_links links;
  links.table = table.get();
  links.skus = skus.get();
  links.carts = carts.get();
  links.orders = orders.get();
  links.sales = sale_queues.get();
  links.wait_limit = opts.cluster_handoff_wait;
  links.relay_timeout = relay_timeout;
  links.node_id = opts.node_id;
  links.version = SURGE_VERSION;
  links.connector = opts.cluster_tls
                        ? caf::actor_cast<caf::actor>(sys->openssl_manager().actor_handle())
                        : caf::actor_cast<caf::actor>(sys->middleman().actor_handle());
  gateway = cluster::spawn_gateway(*sys, std::move(links));
  table->set_local_gateway(gateway);
}

std::string entity_layer::join_cluster(const config::node_options& opts) {
  auto published =
      opts.cluster_tls
          ? caf::openssl::publish(gateway, opts.cluster_port, opts.cluster_host.c_str(), true)
          : sys->middleman().publish(gateway, opts.cluster_port, opts.cluster_host.c_str(), true);
  if (!published) {
    return "cannot listen on " + opts.cluster_host + ":" + std::to_string(opts.cluster_port) +
           " (cluster): " + sys->render(published.error());
  }
  auto mo = membership_options_of(opts, *published);
  cluster::membership_hooks hooks;
  hooks.release = [this](uint32_t shard, bool graceful) {
    skus->release_shard(shard, graceful);
    carts->release_shard(shard, graceful);
    orders->release_shard(shard, graceful);
    sale_queues->release_shard(shard, graceful);
  };
  hooks.local_count = [this](uint32_t shard) {
    return skus->local_count(shard) + carts->local_count(shard) + orders->local_count(shard) +
           sale_queues->local_count(shard);
  };
  hooks.wake_sku = [this](const std::string& sku) {
    caf::anon_send(skus->acquire(sku), actors::stock_atom::value);
  };
  hooks.actors = [this] {
    return static_cast<uint64_t>(skus->size() + carts->size() + orders->size() +
                                 sale_queues->size());
  };
  hooks.lease_renewed = lease_renewed_;
  auto gw = gateway;
  hooks.connect = [gw](const std::string& node, const std::string& host, uint16_t port) {
    caf::anon_send(gw, cluster::connect_peer_atom::value, node, host, port);
  };
  members = std::make_unique<cluster::membership>(std::move(mo), *table, std::move(hooks));
  return members->start();
}

void entity_layer::leave_cluster(std::chrono::milliseconds patience) {
  if (members) {
    members->leave(patience);
  }
}

entity_layer::~entity_layer() {
  stop();
}

void entity_layer::stop() {
  if (members) {
    members->stop(); // before the entities: no shard changes hands while they stop
  }
  if (sys) {
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    if (!actors::stop_entities(std::chrono::seconds{10}, *sale_queues, *orders, *carts, *skus)) {
      logger()->warn("entities still running 10 s after the stop; waiting for them");
    }
  }
  if (storage) {
    storage->drain(); // actors waiting on a commit get their answer
  }
  sys.reset(); // waits for every actor to finish
  if (storage) {
    storage->stop();
  }
  payments.reset();
}

} // namespace surge::runtime
