#include "surge/runtime/node.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "background.hpp"
#include "fulfilment.hpp"
#include "surge/config/derived.hpp"
#include "surge/config/log.hpp"
#include "surge/net/bridge.hpp"
#include "surge/net/metrics.hpp"
#include "surge/net/metrics_history.hpp"
#include "surge/net/payments/gateway.hpp"
#include "surge/net/server.hpp"
#include "surge/persistence/catalog.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/replicas.hpp"
#include "surge/persistence/sales.hpp"
#include "surge/runtime/entity_layer.hpp"
#include "surge/runtime/wiring.hpp"

namespace surge::runtime {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("node");
  return lg;
}

/// The entries of a comma list of URLs (pg.read_urls), trimmed, empty ones left out.
std::vector<std::string> split_urls(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in{list};
  for (std::string item; std::getline(in, item, ',');) {
    const auto b = item.find_first_not_of(" \t");
    if (b != std::string::npos) {
      out.push_back(item.substr(b, item.find_last_not_of(" \t") - b + 1));
    }
  }
  return out;
}

/// The hooks of the layers below net, connected to `m` (which each of them keeps alive).
entity_layer::observers observers_of(const std::shared_ptr<net::node_metrics>& m) {
  entity_layer::observers o;
  o.storage.journal_commit = [m](double s, std::size_t n) { m->journal_commit(s, n); };
  o.storage.redis_batch = [m](double s, std::size_t n) { m->redis_batch(s, n); };
  o.storage.pg_wait = m->pool_wait("pg");
  o.storage.redis_wait = m->pool_wait("redis");
  o.storage.orders_wait = m->pool_wait("orders");
  o.payments.call = [m](const std::string& gw, std::string_view op, std::string_view outcome,
                        double s) { m->payment_call(gw, op, outcome, s); };
  o.payments.failover = [m](const std::string& gw) { m->payment_failover(gw); };
  o.lease_renewed = [m](double s, bool ok) { m->lease_renewal(s, ok); };
  return o;
}

/// Reads what `e` keeps (actor counts, hold events, breakers, shards) into the registry at each
/// scrape and sample. REQUIRES: `e` outlives every render and sample (the node stops the sampler
/// and the admin server before the entities).
void collect_from(net::node_metrics& m, entity_layer* e) {
  m.on_collect([e](net::node_metrics& into) {
    into.set_actors("sku", e->skus->size());
    into.set_actors("cart", e->carts->size());
    into.set_actors("order", e->orders->size());
    into.set_actors("sale", e->sale_queues->size());
    const auto& h = e->holds;
    into.set_holds(
        h.placed.load(std::memory_order_relaxed), h.expired.load(std::memory_order_relaxed),
        h.confirmed.load(std::memory_order_relaxed), h.released.load(std::memory_order_relaxed));
    for (const auto& b : e->payments->breakers()) {
      into.set_breaker(b.gateway, b.state);
    }
    uint64_t owned = 0;
    for (uint32_t i = 0; i < e->table->shards(); ++i) {
      owned += e->table->get(i).st == cluster::shard_table::state::local ? 1 : 0;
    }
    into.set_shards_owned(owned);
  });
}

/// `v` as a Prometheus label value.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

/// The surge_sale_* families: the queues of the sale actors living here (`board`), and which
/// sales' pages this node's page cache holds (`sched`; nullptr: none).
std::string sale_metrics(const actors::sale_board& board, const sale_scheduler* sched) {
  const auto queues = board.all();
  std::ostringstream out;
  auto family = [&](const char* name, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n";
    for (const auto& q : queues) {
      out << name << "{sale=\"" << label_value(q.sale_id) << "\"} " << value(q) << '\n';
    }
  };
  using qs = actors::queue_summary;
  family("surge_sale_tickets", "Tickets issued by a sale's waiting room living on this node.",
         [](const qs& q) { return q.tickets; });
  family("surge_sale_waiting", "Tickets of a sale's waiting room not admitted yet.",
         [](const qs& q) { return q.waiting; });
  family("surge_sale_admitted", "Tickets a sale's waiting room admitted (ranks below this).",
         [](const qs& q) { return q.admitted; });
  family("surge_sale_admit_rate", "Shoppers a sale's waiting room admitted per second lately.",
         [](const qs& q) { return q.admit_rate; });
  family("surge_sale_sold", "Units sold of a sale's SKUs, as its waiting room last read them.",
         [](const qs& q) { return q.sold; });
  family("surge_sale_sold_out", "1 while a sale is sold out (nothing available, nothing held).",
         [](const qs& q) { return q.sold_out_at_ms > 0 ? 1 : 0; });
  family("surge_sale_warm", "1 once every SKU of a sale answered since its prewarm began.",
         [](const qs& q) { return q.warm ? 1 : 0; });
  out << "# HELP surge_sale_pages_warm 1 once this node's page cache holds a sale's product "
         "pages (sales in their prewarm window).\n# TYPE surge_sale_pages_warm gauge\n";
  if (sched != nullptr) {
    for (const auto& [id, warm] : sched->pages_warm()) {
      out << "surge_sale_pages_warm{sale=\"" << label_value(id) << "\"} " << (warm ? 1 : 0) << '\n';
    }
  }
  return out.str();
}

} // namespace

struct node::impl {
  explicit impl(config::node_options o)
      : opts(std::move(o)) {}

  const config::node_options opts;

  /// The node's registry (every layer's hooks lead here) and its 15-minute history, sampled
  /// every 5 s on the sampler's thread (stopped first by stop()).
  std::shared_ptr<net::node_metrics> registry;
  std::shared_ptr<net::metrics_history> history;
  std::unique_ptr<net::history_sampler> sampler;
  std::unique_ptr<entity_layer> entities;
  std::unique_ptr<order_reconciler> reconciler;
  std::unique_ptr<hold_sweeper> sweeper;
  std::unique_ptr<outbox_relay> relay;
  /// The fulfilment consumer and webhook dispatchers (nullptr without webhooks.endpoints), and
  /// the admin's delivery log reads (one connection, made on first use).
  std::unique_ptr<fulfilment> fulfil;
  std::unique_ptr<persistence::webhook_pool> webhook_log;
  /// pg.read_urls' replicas and their freshness (nullptr without replicas); probed on its own
  /// thread, shared by the catalog pool's routed catalogs.
  std::shared_ptr<persistence::replica_health> replicas;
  /// Catalog reads for listings (storage.threads connections, made on first use): the bridge's
  /// own pool, so that browsing never queues behind SKU activations on the entities' pools.
  std::unique_ptr<persistence::catalog_pool> catalog;
  /// The admin's order search and timelines (two connections, made on first use): apart from
  /// the order actors' pool, so that a slow search never delays a checkout.
  std::unique_ptr<persistence::order_query_pool> order_queries;
  /// The admin's sale reads and writes (two connections to the primary, made on first use).
  std::unique_ptr<persistence::sale_pool> sale_store;
  /// Keeps the entities' sale index fresh and warms the sales about to start (its own thread);
  /// made last before the servers listen, stopped once they stopped.
  std::unique_ptr<sale_scheduler> sales;
  std::shared_ptr<net::bridge_env> bridge;
  net::cidr_set trusted_proxies;              ///< http.trusted_proxies, parsed by start()
  std::shared_ptr<net::rate_limiter> limiter; ///< limits.ip_*; nullptr when ip_rate is 0
  std::shared_ptr<spdlog::logger> access_log; ///< log.access_file's logger, made by start()
  std::unique_ptr<net::http_server> http;
  std::unique_ptr<net::http_server> admin;
  bool running = false;

  /// The client-address and rate-limit settings (API.md "Customers, limits and request
  /// hygiene"); an error names the setting. Runs before anything starts.
  std::string build_limits() {
    auto parsed = net::cidr_set::parse(opts.http_trusted_proxies);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      return "setting 'http.trusted_proxies': " + *err;
    }
    trusted_proxies = std::get<net::cidr_set>(std::move(parsed));
    std::string proxies;
    for (const auto& b : trusted_proxies.blocks()) {
      proxies += (proxies.empty() ? "" : ",") + b.to_string();
    }
    if (opts.limits_ip_rate > 0) {
      limiter = std::make_shared<net::rate_limiter>(limiter_options_of(opts));
      logger()->info("storefront writes limited to {}/s, burst {}, per client address; trusted "
                     "proxies: {}",
                     opts.limits_ip_rate, opts.limits_ip_burst, proxies.empty() ? "none" : proxies);
    } else {
      logger()->info("storefront write limits are off (limits.ip_rate=0)");
    }
    return {};
  }

  /// The access log (log.access_*): an error names the setting. Runs before anything starts.
  std::string build_access_log() {
    auto made = surge::log::make_access_logger(opts.log_access_file);
    if (!made.logger) {
      return "setting 'log.access_file' ('" + opts.log_access_file + "'): " + made.error;
    }
    access_log = std::move(made.logger);
    return {};
  }

  std::string start_http() {
    auto& e = *entities;
    auto verifier = net::customer_verifier::make(customer_auth_of(opts));
    if (auto* err = std::get_if<net::auth_error>(&verifier)) {
      return err->message;
    }
    auto customers =
        std::make_shared<const net::customer_verifier>(std::get<net::customer_verifier>(verifier));
    if (customers->enabled()) {
      logger()->info("customer tokens verified ({}){}{}", customers->algorithms(),
                     opts.auth_jwt_issuer.empty() ? "" : ", issuer " + opts.auth_jwt_issuer,
                     opts.auth_jwt_audience.empty() ? "" : ", audience " + opts.auth_jwt_audience);
    } else {
      logger()->warn("customer tokens are NOT verified (auth.jwt_secret and auth.jwt_public_key "
                     "are empty): customer ids in request bodies are trusted, and per-customer "
                     "limits count whatever a client claims. Development only.");
    }
    bridge = std::make_shared<net::bridge_env>();
    bridge->customers = std::move(customers);
    if (opts.auth_dev_login) {
      // load() refused auth.dev_login without auth.jwt_secret.
      bridge->dev_login =
          std::make_shared<const net::customer_auth_options>(customer_auth_of(opts));
      logger()->warn("DEV SIGN-IN: auth.dev_login=true: POST /api/v1/dev/login hands anyone a "
                     "token of any customer they name. Development and demos only.");
    }
    bridge->ids = e.ids;
    bridge->skus = e.skus.get();
    bridge->carts = e.carts.get();
    bridge->orders = e.orders.get();
    persistence::catalog_pool::factory_fn catalog_factory =
        [url = opts.pg_url]() -> std::unique_ptr<persistence::catalog> {
      auto c = persistence::make_pg_catalog(url);
      if (!c) {
        logger()->warn("PostgreSQL connection failed (catalog): {}", caf::to_string(c.error()));
        return nullptr;
      }
      return std::move(*c);
    };
    if (auto urls = split_urls(opts.pg_read_urls); !urls.empty()) {
      // A replica further behind than the catalog's answers may be (search.stock_lag less what
      // a CDN may keep) is skipped too: its answers would break search.stock_lag.
      const auto max_lag =
          std::min(opts.pg_max_replica_lag, config::derive(opts).catalog_fresh_for);
      logger()->info("catalog reads go to {} read replica(s) no more than {}ms behind, else to "
                     "the primary",
                     urls.size(), max_lag.count());
      persistence::replica_health::observers obs;
      obs.lag = [m = registry](std::size_t i, double s) { m->replica_probe(i + 1, s >= 0, s); };
      obs.read = [m = registry](std::size_t i) {
        m->catalog_read(i == persistence::replica_health::primary ? 0 : i + 1);
      };
      replicas = std::make_shared<persistence::replica_health>(
          opts.pg_url, std::move(urls), max_lag, std::chrono::milliseconds{200}, std::move(obs));
      catalog_factory = [h = replicas]() -> std::unique_ptr<persistence::catalog> {
        return persistence::make_routed_catalog(h, [](const std::string& url) {
          auto c = persistence::make_pg_catalog(url);
          if (!c) {
            logger()->warn("PostgreSQL connection failed (catalog): {}", caf::to_string(c.error()));
          }
          return c;
        });
      };
    }
    catalog = std::make_unique<persistence::catalog_pool>("catalog", opts.storage_threads,
                                                          std::move(catalog_factory),
                                                          registry->pool_wait("catalog"));
    bridge->catalog = catalog.get();
    bridge->catalog_max_queued = opts.catalog_max_queued;
    order_queries = std::make_unique<persistence::order_query_pool>(
        "order-queries", 2, [url = opts.pg_url]() -> std::unique_ptr<persistence::order_query> {
          auto q = persistence::make_pg_order_query(url);
          if (!q) {
            logger()->warn("PostgreSQL connection failed (order queries): {}",
                           caf::to_string(q.error()));
            return nullptr;
          }
          return std::move(*q);
        });
    bridge->order_queries = order_queries.get();
    webhook_log = std::make_unique<persistence::webhook_pool>(
        "webhook-log", 1, [url = opts.pg_url]() -> std::unique_ptr<persistence::webhook_store> {
          auto w = persistence::make_pg_webhook_store(url);
          if (!w) {
            logger()->warn("PostgreSQL connection failed (webhook log): {}",
                           caf::to_string(w.error()));
            return nullptr;
          }
          return std::move(*w);
        });
    bridge->webhook_log = webhook_log.get();
    if (auto t = parse_webhook_targets(opts.webhooks_endpoints, opts.webhooks_secrets);
        t.index() == 0) {
      for (const auto& x : std::get<0>(t)) {
        bridge->webhook_endpoints.emplace_back(x.name, net::payments::to_string(x.url));
      }
    }
    bridge->sale_queues = e.sale_queues.get();
    bridge->sales = e.sales;
    sale_store = std::make_unique<persistence::sale_pool>(
        "sales", 2, [url = opts.pg_url]() -> std::unique_ptr<persistence::sale_store> {
          auto st = persistence::make_pg_sale_store(url);
          if (!st->healthy()) {
            logger()->warn("PostgreSQL connection failed (sales)");
          }
          return st; // unhealthy: answers unavailable, and the next job makes a new one
        });
    bridge->sale_store = sale_store.get();
    // The scheduler is made below, before the servers take requests.
    bridge->sales_changed = [this] {
      if (sales) {
        sales->wake();
      }
    };
    const auto derived = config::derive(opts);
    bridge->system = e.sys.get();
    bridge->callers = net::spawn_callers(*e.sys, derived.bridge_callers);
    bridge->call_timeout = derived.bridge_call_timeout;
    if (opts.http_page_cache.count() > 0) {
      bridge->pages = std::make_shared<net::page_cache>(opts.http_page_cache);
    }
    if (derived.catalog_cache_ttl.count() > 0) {
      bridge->listings = std::make_shared<net::page_cache>(derived.catalog_cache_ttl, 16384);
    }
    bridge->catalog_cache_control =
        derived.catalog_max_age.count() > 0
            ? "public, max-age=" + std::to_string(derived.catalog_max_age.count())
            : std::string{"public, no-cache"};
    bridge->limiter = limiter;
    bridge->trusted_proxies = trusted_proxies;
    bridge->admin_token = opts.admin_token;
    bridge->admin_allowed_origins = opts.admin_allowed_origins;
    bridge->cors_origins = opts.http_cors_origins;
    bridge->node_id = opts.node_id;
    bridge->access_log = access_log;
    bridge->access_sample = opts.log_access_sample;
    bridge->cluster_address = config::advertised_cluster_address(opts, opts.cluster_port);
    bridge->shards = opts.cluster_shards;
    bridge->max_streams = opts.http_max_streams;
    bridge->registry = registry;
    bridge->history = history;
    if (auto* m = e.members.get()) {
      bridge->cluster.serving = [m] { return m->ready(); };
      bridge->cluster.nodes = [m] { return m->nodes(); };
      bridge->cluster.shards = [m] { return m->shard_map(); };
      using change = net::cluster_admin::change;
      bridge->cluster.drain = [m](const std::string& node, net::cluster_admin::change_done done) {
        m->ask_drain(node, [done = std::move(done)](auto answer) {
          using persistence::drain_outcome;
          done(!answer                                  ? change::unavailable
               : *answer == drain_outcome::draining     ? change::done
               : *answer == drain_outcome::last_serving ? change::refused
                                                        : change::not_found);
        });
      };
      bridge->cluster.undrain = [m](const std::string& node, net::cluster_admin::change_done done) {
        m->ask_undrain(node, [done = std::move(done)](caf::expected<bool> found) {
          done(!found ? change::unavailable : *found ? change::done : change::not_found);
        });
      };
    }
    bridge->hot_skus = e.hot_skus.get();
    if (auto* p = e.payments.get()) {
      bridge->payment_stats = [p] { return p->stats(); };
    }
    // check_settings() refuses gateways and webhook secrets that do not parse (none are taken).
    const auto gateways = net::payments::parse_gateways(opts.payments_gateways);
    const auto* specs = std::get_if<0>(&gateways);
    auto hooks = net::payments::parse_webhook_secrets(
        specs != nullptr ? opts.payments_webhook_secrets : std::string{},
        specs != nullptr ? *specs : std::vector<net::payments::gateway_spec>{});
    if (auto* eps = std::get_if<0>(&hooks); eps != nullptr && !eps->empty()) {
      bridge->webhooks = std::move(*eps);
      bridge->webhook_tolerance =
          std::chrono::duration_cast<std::chrono::seconds>(opts.payments_webhook_tolerance);
      std::string names;
      for (const auto& [name, ep] : bridge->webhooks) {
        names += (names.empty() ? "" : ", ") + name;
      }
      logger()->info("taking signed webhooks from gateway(s) {} at "
                     "/api/v1/payments/{{gateway}}/webhook",
                     names);
    }
    auto* jq = &e.storage->journal();
    bridge->extra_metrics = [this, jq] {
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
      return out.str() + sale_metrics(*entities->sale_stats, sales.get()) +
             (fulfil ? fulfil->metrics_text() : std::string{});
    };
    sales = std::make_unique<sale_scheduler>(
        sale_scheduler::options{
            .pg_url = opts.pg_url, .refresh = opts.sales_refresh, .prewarm = opts.sales_prewarm},
        e.sales, e.sale_queues.get(), e.sale_stats.get(),
        [b = bridge](const std::vector<std::string>& skus, std::function<void(std::size_t)> done) {
          net::warm_pages(b, skus, std::move(done));
        },
        actors::system_now_ms);

    if (auto err = listen(http, storefront_server_of(opts), net::make_storefront_router(bridge),
                          "http", net::http_kind::shopper);
        !err.empty()) {
      return err;
    }
    return listen(admin, admin_server_of(opts), net::make_admin_router(bridge), "admin",
                  net::http_kind::admin);
  }

  /// Starts `server` on `so`, serving `routes` through the bridge. "" when it listens, else the
  /// error text naming the listener `what`.
  std::string listen(std::unique_ptr<net::http_server>& server, const net::server_options& so,
                     net::router routes, const char* what, net::http_kind kind) {
    auto shared = std::make_shared<const net::router>(std::move(routes));
    server = std::make_unique<net::http_server>(so, net::make_handler(bridge, shared, kind));
    if (auto ec = server->start()) {
      return "cannot listen on " + so.host + ":" + std::to_string(so.port) + " (" + what +
             "): " + ec.message();
    }
    return {};
  }

  void start_background() {
    reconciler = std::make_unique<order_reconciler>(
        opts.pg_url, entities->orders.get(), opts.orders_reconcile_interval,
        opts.orders_settle_after, std::min(opts.payments_action_ttl, opts.holds_ttl));
    relay = std::make_unique<outbox_relay>(opts.pg_url, redis_options_of(opts),
                                           opts.orders_relay_interval);
    sweeper = std::make_unique<hold_sweeper>(opts.pg_url, entities->skus.get(),
                                             config::derive(opts).hold_sweep_interval);
    // check_settings() parsed them before the node started.
    auto targets =
        std::get<0>(parse_webhook_targets(opts.webhooks_endpoints, opts.webhooks_secrets));
    if (!targets.empty()) {
      fulfil = std::make_unique<fulfilment>(
          fulfilment::options{.pg_url = opts.pg_url,
                              .redis = redis_options_of(opts),
                              .consumer = opts.node_id,
                              .targets = std::move(targets),
                              .ca_file = opts.webhooks_ca_file,
                              .timeout = opts.webhooks_timeout,
                              .retry = {.base = opts.webhooks_retry_base,
                                        .max = opts.webhooks_retry_max,
                                        .give_up_after = opts.webhooks_retry_for},
                              .concurrency = opts.webhooks_concurrency,
                              .claim_idle = opts.webhooks_claim_idle,
                              .max_attempts = opts.webhooks_max_attempts});
    }
    sampler = std::make_unique<net::history_sampler>(*registry, *history, std::chrono::seconds{5},
                                                     actors::system_now_ms);
  }
};

node::node(config::node_options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {}

node::~node() {
  stop();
}

std::string node::start() {
  auto& d = *impl_;
  if (auto err = d.build_limits(); !err.empty()) {
    return err;
  }
  if (auto err = d.build_access_log(); !err.empty()) {
    return err;
  }
  d.running = true;
  // config refuses a non-loopback cluster.host without TLS unless cluster.insecure says so.
  if (d.opts.cluster_insecure && !d.opts.cluster_tls && !config::is_loopback(d.opts.cluster_host)) {
    logger()->warn("INSECURE: cluster.insecure=true and cluster.tls is off: the cluster port {}:{} "
                   "authenticates nobody, so ANY host that reaches it can act as a member of this "
                   "cluster (confirm holds, set stock). Use cluster.tls=true (mutual TLS) unless "
                   "this network is private to the members",
                   d.opts.cluster_host, d.opts.cluster_port);
  }
  d.registry = std::make_shared<net::node_metrics>(d.opts.node_id, SURGE_VERSION);
  d.history = std::make_shared<net::metrics_history>(180, 5);
  try {
    d.entities = std::make_unique<entity_layer>(d.opts, observers_of(d.registry));
    collect_from(*d.registry, d.entities.get());
  } catch (const std::invalid_argument& e) {
    stop();
    return e.what();
  }
  if (auto err = d.entities->join_cluster(d.opts); !err.empty()) {
    stop();
    return err;
  }
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
  if (d.sampler) {
    d.sampler->stop(); // it reads the entities
  }
  // /readyz answers 503 from now on and responses say Connection: close, so that a load
  // balancer stops sending here and drops its kept-alive connections to this node.
  const auto stop_began = std::chrono::steady_clock::now();
  const bool was_serving = d.bridge && d.bridge->ready.exchange(false);
  if (d.http) {
    d.http->drain();
  }
  // Hand every shard to other members first (requests keep being served, by forwarding, while
  // the load balancer notices /readyz); then stop taking requests.
  if (d.entities) {
    d.entities->leave_cluster(d.opts.cluster_leave_timeout);
  }
  // A node that owned nothing leaves at once: keep serving for the rest of http.drain_grace so
  // that the load balancer's health checks see /readyz fail before the listener closes.
  if (was_serving && d.http) {
    const auto grace_end = stop_began + d.opts.http_drain_grace;
    if (std::chrono::steady_clock::now() < grace_end) {
      logger()->info("node {}: /readyz is 503; serving for {} ms more before the listeners close "
                     "(http.drain_grace)",
                     d.opts.node_id,
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                         grace_end - std::chrono::steady_clock::now())
                         .count());
      std::this_thread::sleep_until(grace_end);
    }
  }
  // Stop taking requests and let those in flight finish (they wait on their commits).
  if (d.http) {
    d.http->stop();
  }
  if (d.bridge) {
    net::stop_streams(*d.bridge); // the stock watcher (its streams closed with the server)
  }
  if (d.admin) {
    d.admin->stop();
  }
  if (d.bridge) {
    net::stop_peers(*d.bridge); // cluster-wide requests still asking other members
  }
  if (d.catalog) {
    d.catalog->stop(); // answers the listings still queued
  }
  if (d.order_queries) {
    d.order_queries->stop();
  }
  if (d.sale_store) {
    d.sale_store->stop();
  }
  d.sales.reset(); // before the entities: it sends to the sale actors and renders pages
  d.reconciler.reset();
  d.sweeper.reset();
  d.relay.reset();
  d.fulfil.reset();
  if (d.webhook_log) {
    d.webhook_log->stop();
  }
  if (d.bridge) {
    for (auto& c : d.bridge->callers) {
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
    }
  }
  // Entities hold no unacknowledged promises once HTTP is drained.
  if (d.entities) {
    d.entities->stop();
  }
  logger()->info("node {} stopped", d.opts.node_id);
}

uint16_t node::http_port() const {
  return impl_->http ? impl_->http->port() : 0;
}

uint16_t node::admin_port() const {
  return impl_->admin ? impl_->admin->port() : 0;
}

std::string check_settings(const config::node_options& opts) {
  if (auto parsed = net::cidr_set::parse(opts.http_trusted_proxies);
      auto* err = std::get_if<std::string>(&parsed)) {
    return "setting 'http.trusted_proxies': " + *err;
  }
  auto gateways = net::payments::parse_gateways(opts.payments_gateways);
  if (auto* err = std::get_if<std::string>(&gateways)) {
    return "setting 'payments.gateways': " + *err;
  }
  const auto& specs = std::get<0>(gateways);
  if (std::any_of(specs.begin(), specs.end(), [](const auto& g) { return g.tls; })) {
    if (auto err = net::payments::check_tls({opts.payments_ca_file}); !err.empty()) {
      return "setting 'payments.ca_file': " + err;
    }
  }
  if (auto hooks = net::payments::parse_webhook_secrets(opts.payments_webhook_secrets, specs);
      auto* err = std::get_if<std::string>(&hooks)) {
    return "setting 'payments.webhook_secrets': " + *err;
  }
  auto targets = parse_webhook_targets(opts.webhooks_endpoints, opts.webhooks_secrets);
  if (auto* err = std::get_if<std::string>(&targets)) {
    return "setting '" + err->substr(0, err->find(':')) + "'" + err->substr(err->find(':'));
  }
  const auto& ts = std::get<0>(targets);
  if (std::any_of(ts.begin(), ts.end(), [](const auto& t) { return t.url.tls; })) {
    if (auto err = net::payments::check_tls({opts.webhooks_ca_file}); !err.empty()) {
      return "setting 'webhooks.ca_file': " + err;
    }
  }
  if (auto verifier = net::customer_verifier::make(customer_auth_of(opts));
      auto* err = std::get_if<net::auth_error>(&verifier)) {
    return err->message;
  }
  return {};
}

std::string migrate_with_retry(const config::node_options& opts) {
  auto deadline = std::chrono::steady_clock::now() + opts.pg_startup_wait;
  auto delay = std::chrono::milliseconds{100};
  for (;;) {
    auto err = persistence::migrate(opts.pg_url);
    if (!err) {
      return {};
    }
    if (!persistence::is(err, persistence::errc::unavailable) ||
        std::chrono::steady_clock::now() + delay > deadline) {
      return "schema migration on " + opts.pg_url + " failed: " + caf::to_string(err);
    }
    logger()->warn("PostgreSQL not reachable yet ({}); retrying", caf::to_string(err));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds{2000});
  }
}

} // namespace surge::runtime
