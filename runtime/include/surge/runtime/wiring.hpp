#pragma once

// The components' options from the node's settings: the one mapping from config::node_options
// (and the values config::derive computes from it) to each component's option struct. The
// structs have no defaults of their own; the node builds them here, and tests that want "a node's
// defaults" build them here from config::defaults() and change what they test.

#include <cstdint>

#include "surge/actors/env.hpp"
#include "surge/cluster/membership_model.hpp"
#include "surge/config/settings.hpp"
#include "surge/net/customer_auth.hpp"
#include "surge/net/http.hpp"
#include "surge/net/payments/payment_router.hpp"
#include "surge/net/rate_limiter.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::runtime {

/// entity.*, holds.*, carts.*, sku.snapshot_every, sales.latency_budget, the customer rule and
/// the derived margins.
actors::entity_options entity_options_of(const config::node_options& opts);

/// redis.url, redis.prefix, redis.timeout.
persistence::redis_options redis_options_of(const config::node_options& opts);

/// journal.writers, journal.max_batch.
persistence::commit_queue::options journal_options_of(const config::node_options& opts);

/// The storefront listener: http.*.
net::server_options storefront_server_of(const config::node_options& opts);

/// The admin listener: the storefront's limits on admin.host and admin.port.
net::server_options admin_server_of(const config::node_options& opts);

/// limits.ip_rate, limits.ip_burst, limits.ip_table.
net::rate_limiter::options limiter_options_of(const config::node_options& opts);

/// auth.*.
net::customer_auth_options customer_auth_of(const config::node_options& opts);

/// payments.* (the gateways themselves come from payments.gateways through parse_gateways).
net::payments::router_options router_options_of(const config::node_options& opts);

/// cluster.* and the addresses this member announces; `cluster_port` is the port the middleman
/// listens on (cluster.port, or the one picked for 0).
cluster::membership_options membership_options_of(const config::node_options& opts,
                                                  uint16_t cluster_port);

} // namespace surge::runtime
