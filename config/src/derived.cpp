#include "surge/config/derived.hpp"

#include <algorithm>

namespace surge::config {

derived_options derive(const node_options& opts) {
  using std::chrono::milliseconds;
  derived_options d;
  d.bridge_call_timeout =
      std::max(opts.http_request_timeout - milliseconds{500}, milliseconds{500});
  d.bridge_callers = std::max<std::size_t>(opts.http_io_threads, 2);
  d.http_read_timeout = opts.http_request_timeout;
  d.payment_lease_margin =
      std::min(milliseconds{1000}, (opts.cluster_lease - opts.cluster_heartbeat) / 2);
  d.stub_idle = std::max(opts.entity_idle, milliseconds{30000});
  d.rebalance_min_age = std::max(opts.cluster_lease, milliseconds{1000});
  d.handoff_timeout =
      std::max(std::min(opts.cluster_handoff_wait, opts.cluster_lease / 2), milliseconds{1000});
  d.drain_handoff_timeout = std::max(opts.cluster_handoff_wait, milliseconds{1000});
  d.hold_sweep_interval = std::clamp(opts.holds_ttl / 2, milliseconds{1000}, milliseconds{30000});
  d.cart_claim_lifetime =
      std::max(opts.holds_max_lifetime, opts.holds_ttl) + opts.carts_claim_grace;
  d.middleman_connection_timeout = std::max(4 * opts.cluster_heartbeat, opts.cluster_lease / 2);
  d.catalog_max_age =
      std::chrono::seconds{opts.search_stock_lag >= std::chrono::seconds{2} ? 1 : 0};
  d.catalog_fresh_for = opts.search_stock_lag - d.catalog_max_age;
  d.catalog_cache_ttl = std::min(opts.http_page_cache, d.catalog_fresh_for);
  d.verify_customers = !opts.auth_jwt_secret.empty() || !opts.auth_jwt_public_key.empty();
  return d;
}

namespace {

std::string join_host_port(const std::string& host, uint16_t port) {
  const bool v6 = !host.empty() && host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

} // namespace

std::string advertised_cluster_address(const node_options& opts, uint16_t port) {
  if (auto a = parse_advertise(opts.cluster_advertise)) {
    return join_host_port(a->host, a->port != 0 ? a->port : port);
  }
  return join_host_port(opts.cluster_host, port);
}

std::string advertised_address(const node_options& opts, const std::string& bind_host,
                               uint16_t port) {
  if (!is_wildcard(bind_host)) {
    return join_host_port(bind_host, port);
  }
  if (auto a = parse_advertise(opts.cluster_advertise)) {
    return join_host_port(a->host, port);
  }
  return join_host_port(is_wildcard(opts.cluster_host) ? "127.0.0.1" : opts.cluster_host, port);
}

} // namespace surge::config
