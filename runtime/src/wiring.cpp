#include "surge/runtime/wiring.hpp"

#include <string>

#include "surge/config/derived.hpp"

namespace surge::runtime {

namespace {

std::string host_port(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

} // namespace

actors::entity_options entity_options_of(const config::node_options& opts) {
  const auto d = config::derive(opts);
  actors::entity_options e;
  e.node_id = opts.node_id;
  e.holds_ttl = opts.holds_ttl;
  e.holds_max_lifetime = opts.holds_max_lifetime;
  e.carts_ttl = opts.carts_ttl;
  e.carts_empty_ttl = opts.carts_empty_ttl;
  e.cart_claim_lifetime = d.cart_claim_lifetime;
  e.verify_customers = d.verify_customers;
  e.idle_timeout = opts.entity_idle;
  e.call_timeout = opts.entity_call_timeout;
  e.snapshot_every = opts.sku_snapshot_every;
  e.payment_lease_margin = d.payment_lease_margin;
  return e;
}

persistence::redis_options redis_options_of(const config::node_options& opts) {
  return {opts.redis_url, opts.redis_prefix, opts.redis_timeout};
}

persistence::commit_queue::options journal_options_of(const config::node_options& opts) {
  return {opts.journal_writers, opts.journal_max_batch};
}

net::server_options storefront_server_of(const config::node_options& opts) {
  net::server_options so;
  so.host = opts.http_host;
  so.port = opts.http_port;
  so.io_threads = opts.http_io_threads;
  so.body_limit = opts.http_body_limit;
  so.header_limit = opts.http_header_limit;
  so.target_limit = opts.http_target_limit;
  so.read_timeout = config::derive(opts).http_read_timeout;
  so.handler_timeout = opts.http_request_timeout;
  so.idle_timeout = opts.http_idle_timeout;
  so.max_connections = opts.http_max_connections;
  return so;
}

net::server_options admin_server_of(const config::node_options& opts) {
  auto so = storefront_server_of(opts);
  so.host = opts.admin_host;
  so.port = opts.admin_port;
  so.io_threads = 1; // operators and Prometheus: one thread is plenty
  return so;
}

net::rate_limiter::options limiter_options_of(const config::node_options& opts) {
  return {opts.limits_ip_rate, opts.limits_ip_burst, opts.limits_ip_table};
}

net::customer_auth_options customer_auth_of(const config::node_options& opts) {
  net::customer_auth_options a;
  a.secret = opts.auth_jwt_secret;
  a.public_key_file = opts.auth_jwt_public_key;
  a.issuer = opts.auth_jwt_issuer;
  a.audience = opts.auth_jwt_audience;
  a.leeway = std::chrono::duration_cast<std::chrono::seconds>(opts.auth_jwt_leeway);
  a.cache_entries = opts.auth_token_cache;
  return a;
}

net::payments::router_options router_options_of(const config::node_options& opts) {
  net::payments::router_options ro;
  ro.timeout = opts.payments_timeout;
  ro.max_tries = opts.payments_tries;
  ro.lookup_tries = opts.payments_lookup_tries;
  ro.backoff_base = opts.payments_backoff;
  ro.backoff_cap = opts.payments_backoff_cap;
  ro.breaker_threshold = opts.payments_breaker_threshold;
  ro.breaker_cooldown = opts.payments_breaker_cooldown;
  ro.threads = opts.payments_threads;
  ro.refund_tries = opts.payments_refund_tries;
  ro.refund_deadline = opts.payments_refund_deadline;
  return ro;
}

cluster::membership_options membership_options_of(const config::node_options& opts,
                                                  uint16_t cluster_port) {
  const auto d = config::derive(opts);
  cluster::membership_options mo;
  mo.node_id = opts.node_id;
  mo.pg_url = opts.pg_url;
  mo.address = host_port(opts.cluster_host, cluster_port);
  mo.http_address = host_port(opts.http_host, opts.http_port);
  mo.admin_address = host_port(opts.admin_host, opts.admin_port);
  mo.shards = opts.cluster_shards;
  mo.heartbeat = opts.cluster_heartbeat;
  mo.lease = opts.cluster_lease;
  mo.max_moves = opts.cluster_max_moves;
  mo.min_age = d.rebalance_min_age;
  mo.handoff_timeout = d.handoff_timeout;
  return mo;
}

} // namespace surge::runtime
