#pragma once

#include <memory>
#include <string>

#include "surge/config/settings.hpp"

namespace surge::runtime {

/// One surge-node: storage pools, the journal's commit queue, the actor system with the entity
/// directories, and the storefront and admin HTTP servers.
///
/// Lifecycle (explicit, as the components depend on each other): start() brings the parts up in
/// order — schema migrations, storage pools, commit queue, actor system, directories, HTTP
/// servers — and marks the node ready; stop() reverses it: not ready, HTTP servers stop
/// accepting and drain, entities stop, the commit queue finishes what it holds, pools close.
/// Not copyable; start() and stop() are called from one thread.
class node {
 public:
  explicit node(config::node_options opts);
  ~node(); ///< stop()
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Returns an empty string on success, else what failed (the node is then stopped).
  std::string start();
  void stop();

  uint16_t http_port() const;
  uint16_t admin_port() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Applies migrations on `opts.pg_url`, retrying for up to pg.startup_wait while PostgreSQL is
/// not reachable yet. Empty string on success, else the reason.
std::string migrate_with_retry(const config::node_options& opts);

/// The settings config/ cannot check alone because their grammar lives elsewhere
/// (http.trusted_proxies, payments.gateways, auth.*: key file and secret): "" when they are
/// fine, else a message naming the setting. Touches no database; run it before anything starts.
std::string check_settings(const config::node_options& opts);

} // namespace surge::runtime
