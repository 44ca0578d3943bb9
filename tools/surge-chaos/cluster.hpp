#pragma once

// What a chaos run stands on: a private PostgreSQL 15 and redis-server (so that restarting them
// disturbs nobody else), one surge-paysim with two gateways, and N surge-node processes sharing
// the database and the Redis prefix. Loopback mode: everything listens on 127.0.0.1. netns mode
// (`cluster_options::net` set): node i runs in its namespace on 10.77.0.(11+i), PostgreSQL
// listens on 127.0.0.1 and 10.77.0.2, Redis and paysim on 10.77.0.1 (netplan.hpp), and the
// admin API needs the run's bearer token.
// Owned by the run's main thread; the fault thread calls the fault methods, one at a time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http.hpp"
#include "model.hpp"
#include "netplan.hpp"
#include "process.hpp"
#include "surge/tools/cluster_rows.hpp"

namespace surge::chaos {

struct cluster_options {
  int nodes = 3;
  int spare_nodes = 0;  ///< more nodes prepared (id, ports, namespace) but not started: the
                        ///< `scale` fault starts one (scale-out) and removes one (scale-in)
  std::string work_dir; ///< logs, database files; created
  std::string node_binary;
  std::string paysim_binary;
  std::string pg_bin = "/usr/lib/postgresql/15/bin";
  std::string redis_binary = "redis-server";
  std::string holds_ttl = "5s";
  std::string lease = "2s";
  std::vector<std::string> node_extra; ///< more --name=value for every node
  /// payments.capture of every node: at_checkout or after_confirm ("": the nodes' default,
  /// at_checkout). after_confirm authorises at checkout and captures once the order is confirmed.
  std::string capture;
  const net_layout* net = nullptr; ///< netns mode when set (the network is built already)
  std::string admin_token;         ///< admin.token of every node (netns mode: required)
};

class private_postgres {
 public:
  /// initdb (as user postgres) in `dir`, start on `port`, create database `db` (role surge).
  void start(const cluster_options& o, const std::string& dir, uint16_t port,
             const std::string& db);
  /// pg_ctl stop -m fast, wait `down`, pg_ctl start. Throws when it does not come back.
  void restart(std::chrono::milliseconds down);
  void stop();
  /// For the harness (127.0.0.1).
  std::string url() const;
  /// For the nodes: over `node_host` (netns mode: 10.77.0.2; else 127.0.0.1).
  std::string node_url() const;
  uint16_t port() const { return port_; }
  ~private_postgres();

 private:
  command_result pg_ctl(const std::vector<std::string>& args, std::chrono::milliseconds limit);
  std::string server_options() const;
  std::string bin_;
  std::string node_host_ = "127.0.0.1";
  std::string dir_;
  std::string log_;
  std::string db_;
  uint16_t port_ = 0;
  bool running_ = false;
};

class private_redis {
 public:
  void start(const cluster_options& o, const std::string& dir, uint16_t port);
  /// Stops redis (flush: SIGKILL and its dump deleted, every key lost; keep: SIGTERM, which
  /// saves), waits `down`, starts it again on the same port.
  void restart(bool flush, std::chrono::milliseconds down);
  void stop();
  /// For the nodes (netns mode: over the bridge).
  std::string url() const { return "redis://" + host_ + ":" + std::to_string(port_) + "/0"; }

 private:
  void launch();
  std::string host_ = "127.0.0.1";
  std::string binary_;
  std::string dir_;
  std::string log_;
  uint16_t port_ = 0;
  child proc_;
};

struct node {
  std::string id;
  int index = 0;
  std::string host = "127.0.0.1"; ///< where its HTTP, admin and cluster ports listen
  uint16_t http = 0;
  uint16_t admin = 0;
  uint16_t cluster = 0;
  std::string log;
  child proc;
  std::atomic<bool> up{false}; ///< false from a kill/pause until it serves again
  /// Cut off by a partition, from its start until it serves again after the heal: shoppers
  /// still send to it (G5 leaves those requests out), the prober does not.
  std::atomic<bool> cut_off{false};
  /// A member of the cluster: started by start() or a scale-out, until a scale-in removed it.
  /// Spares and removed nodes are not (the shoppers never pick them: `up` is false too).
  std::atomic<bool> member{false};
};

class cluster_env {
 public:
  explicit cluster_env(cluster_options o);
  ~cluster_env();
  cluster_env(const cluster_env&) = delete;
  cluster_env& operator=(const cluster_env&) = delete;

  /// Starts the servers, paysim and the nodes (one after the other, each until /readyz).
  void start();
  /// Stops everything (nodes, paysim, redis, postgres); idempotent.
  void stop();

  const cluster_options& options() const { return o_; }
  std::vector<std::unique_ptr<node>>& nodes() { return nodes_; }
  std::vector<std::string> node_ids() const;
  private_postgres& pg() { return pg_; }
  private_redis& redis() { return redis_; }
  const std::vector<std::string>& gateway_names() const { return gateway_names_; }
  /// Redis and paysim (and the harness's side of the bridge): 127.0.0.1 or 10.77.0.1.
  std::string server_host() const;
  /// An HTTP client for node `n`'s admin API, with the bearer token when there is one.
  std::unique_ptr<http_client> admin_client(const node& n, std::chrono::milliseconds timeout);
  /// The argv that starts node `i` (`ip netns exec NS surge-node ...` in netns mode).
  std::vector<std::string> node_command(std::size_t i) const;
  uint16_t gateway_port(std::size_t i) const { return gateway_ports_.at(i); }

  /// Starts node `i` (again) and waits up to `patience` for /readyz; false if not ready.
  bool start_node(std::size_t i, std::chrono::milliseconds patience = std::chrono::seconds{60});
  void kill_node(std::size_t i);
  /// The shard map (GET /admin/v1/shards) as a member other than node `avoid` (when there is
  /// one) sees it; empty with `why` set when no member answered.
  std::vector<tools::shard_row> shard_map(std::size_t avoid, std::string& why);
  /// POST /admin/v1/nodes/{id}/drain on node `i`'s own admin API; "" when it answered 202,
  /// else what it answered.
  std::string drain_node(std::size_t i);
  /// POST /_outage on gateway `i`.
  bool set_gateway_down(std::size_t i, bool down);
  /// PUT /_faults {"capture_delay_ms":N} (paysim: every gateway's captures answered N ms late).
  bool set_capture_delay(std::chrono::milliseconds delay);
  /// GET /_charges.
  std::vector<charge_row> charges();
  /// GET /_refunds.
  std::vector<refund_row> refunds();
  /// True when every member answers /readyz and GET /admin/v1/cluster and /admin/v1/shards on
  /// one of them show every member up and every shard owned by a member with no move under way.
  /// `why` says what is missing otherwise.
  bool settled(std::string& why);

 private:
  cluster_options o_;
  private_postgres pg_;
  private_redis redis_;
  child paysim_;
  std::string paysim_log_;
  std::vector<std::string> gateway_names_{"alpha", "beta"};
  std::vector<uint16_t> gateway_ports_;
  std::vector<std::unique_ptr<node>> nodes_;
  std::string redis_prefix_ = "chaos:";
  bool stopped_ = false;
};

} // namespace surge::chaos
