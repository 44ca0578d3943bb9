#include "surge/runtime/wiring.hpp"

#include <string>

#include "surge/cluster/protocol.hpp"
#include "surge/config/derived.hpp"

namespace surge::runtime {

// Each mapper is one expression naming its struct's members in declaration order (designated
// initialisers: the compiler rejects another order), so it reads side by side with the struct.
// A member left out is zero (the structs' members are zero-initialised), not a compile error:
// the node's and the tests' runs are what check that every member is mapped.

std::string return_url_of(const config::node_options& opts) {
  if (!opts.payments_return_url.empty()) {
    return opts.payments_return_url;
  }
  const bool v6 = opts.http_host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + opts.http_host + "]" : opts.http_host) + ":" +
         std::to_string(opts.http_port) + "/api/v1/orders/{order_id}/return";
}

actors::entity_options entity_options_of(const config::node_options& opts) {
  const auto d = config::derive(opts);
  return {.node_id = opts.node_id,
          .holds_ttl = opts.holds_ttl,
          .holds_max_lifetime = opts.holds_max_lifetime,
          .carts_ttl = opts.carts_ttl,
          .carts_empty_ttl = opts.carts_empty_ttl,
          .cart_claim_lifetime = d.cart_claim_lifetime,
          .verify_customers = d.verify_customers,
          .idle_timeout = opts.entity_idle,
          .call_timeout = opts.entity_call_timeout,
          .snapshot_every = opts.sku_snapshot_every,
          .payment_lease_margin = d.payment_lease_margin,
          .sales_latency_budget = opts.sales_latency_budget,
          .capture_after_confirm = opts.payments_capture == "after_confirm",
          .action_ttl = std::min(opts.payments_action_ttl, opts.holds_ttl),
          .return_url = return_url_of(opts)};
}

persistence::redis_options redis_options_of(const config::node_options& opts) {
  return {.url = opts.redis_url, .prefix = opts.redis_prefix, .timeout = opts.redis_timeout};
}

persistence::commit_queue::options journal_options_of(const config::node_options& opts) {
  return {.writers = opts.journal_writers, .max_batch = opts.journal_max_batch};
}

net::server_options storefront_server_of(const config::node_options& opts) {
  return {.host = opts.http_host,
          .port = opts.http_port,
          .io_threads = opts.http_io_threads,
          .body_limit = opts.http_body_limit,
          .header_limit = opts.http_header_limit,
          .target_limit = opts.http_target_limit,
          .read_timeout = config::derive(opts).http_read_timeout,
          .handler_timeout = opts.http_request_timeout,
          .idle_timeout = opts.http_idle_timeout,
          .max_connections = opts.http_max_connections};
}

net::server_options admin_server_of(const config::node_options& opts) {
  auto so = storefront_server_of(opts);
  so.host = opts.admin_host;
  so.port = opts.admin_port;
  so.io_threads = 1; // operators and Prometheus: one thread is plenty
  so.thread_name = "surge-admin";
  return so;
}

net::rate_limiter::options limiter_options_of(const config::node_options& opts) {
  return {
      .rate = opts.limits_ip_rate, .burst = opts.limits_ip_burst, .table = opts.limits_ip_table};
}

net::customer_auth_options customer_auth_of(const config::node_options& opts) {
  return {.secret = opts.auth_jwt_secret,
          .public_key_file = opts.auth_jwt_public_key,
          .issuer = opts.auth_jwt_issuer,
          .audience = opts.auth_jwt_audience,
          .leeway = std::chrono::duration_cast<std::chrono::seconds>(opts.auth_jwt_leeway),
          .cache_entries = opts.auth_token_cache};
}

net::payments::router_options router_options_of(const config::node_options& opts) {
  return {.timeout = opts.payments_timeout,
          .max_tries = opts.payments_tries,
          .lookup_tries = opts.payments_lookup_tries,
          .backoff_base = opts.payments_backoff,
          .backoff_cap = opts.payments_backoff_cap,
          .breaker_threshold = opts.payments_breaker_threshold,
          .breaker_cooldown = opts.payments_breaker_cooldown,
          .threads = opts.payments_threads,
          .refund_tries = opts.payments_refund_tries,
          .refund_deadline = opts.payments_refund_deadline};
}

cluster::membership_options membership_options_of(const config::node_options& opts,
                                                  uint16_t cluster_port) {
  const auto d = config::derive(opts);
  return {.node_id = opts.node_id,
          .pg_url = opts.pg_url,
          .address = config::advertised_cluster_address(opts, cluster_port),
          .http_address = config::advertised_address(opts, opts.http_host, opts.http_port),
          .admin_address = config::advertised_address(opts, opts.admin_host, opts.admin_port),
          .shards = opts.cluster_shards,
          .heartbeat = opts.cluster_heartbeat,
          .lease = opts.cluster_lease,
          .max_moves = opts.cluster_max_moves,
          .min_age = d.rebalance_min_age,
          .handoff_timeout = d.handoff_timeout,
          .drain_handoff_timeout = d.drain_handoff_timeout,
          .cut_off_grace = d.payment_lease_margin,
          .version = SURGE_VERSION,
          .protocol = cluster::protocol_version};
}

} // namespace surge::runtime
