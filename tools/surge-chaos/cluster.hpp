#pragma once

// What a chaos run stands on: a private PostgreSQL 15 and redis-server (so that restarting them
// disturbs nobody else), one surge-paysim with two gateways, and N surge-node processes sharing
// the database and the Redis prefix. Everything listens on 127.0.0.1 (loopback mode).
// Owned by the run's main thread; the fault thread calls the fault methods, one at a time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model.hpp"
#include "process.hpp"

namespace surge::chaos {

struct cluster_options {
  int nodes = 3;
  std::string work_dir; ///< logs, database files; created
  std::string node_binary;
  std::string paysim_binary;
  std::string pg_bin = "/usr/lib/postgresql/15/bin";
  std::string redis_binary = "redis-server";
  std::string holds_ttl = "5s";
  std::string lease = "2s";
  std::vector<std::string> node_extra; ///< more --name=value for every node
};

class private_postgres {
 public:
  /// initdb (as user postgres) in `dir`, start on `port`, create database `db` (role surge).
  void start(const cluster_options& o, const std::string& dir, uint16_t port,
             const std::string& db);
  /// pg_ctl stop -m fast, wait `down`, pg_ctl start. Throws when it does not come back.
  void restart(std::chrono::milliseconds down);
  void stop();
  std::string url() const;
  uint16_t port() const { return port_; }
  ~private_postgres();

 private:
  command_result pg_ctl(const std::vector<std::string>& args, std::chrono::milliseconds limit);
  std::string bin_;
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
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  void launch();
  std::string binary_;
  std::string dir_;
  std::string log_;
  uint16_t port_ = 0;
  child proc_;
};

struct node {
  std::string id;
  uint16_t http = 0;
  uint16_t admin = 0;
  uint16_t cluster = 0;
  std::string log;
  child proc;
  std::atomic<bool> up{false}; ///< false from a kill/pause until it serves again
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
  uint16_t gateway_port(std::size_t i) const { return gateway_ports_.at(i); }

  /// Starts node `i` (again) and waits up to `patience` for /readyz; false if not ready.
  bool start_node(std::size_t i, std::chrono::milliseconds patience = std::chrono::seconds{60});
  void kill_node(std::size_t i);
  /// POST /_outage on gateway `i`.
  bool set_gateway_down(std::size_t i, bool down);
  /// GET /_charges.
  std::vector<charge_row> charges();
  /// True when every node answers /readyz and GET /admin/v1/cluster and /admin/v1/shards on
  /// one of them show every node up and every shard owned by an up node with no move under way.
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
