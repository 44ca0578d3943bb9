#include "cluster.hpp"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include <pqxx/pqxx>

#include "http.hpp"
#include "surge/net/json.hpp"
#include "surge/tools/cluster_rows.hpp"

namespace surge::chaos {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
namespace fs = std::filesystem;
namespace json = surge::net::json;

namespace {

std::string str(const json::value& v, std::string_view key) {
  const auto* f = v.find(key);
  if (f == nullptr || !f->is_string()) {
    return {};
  }
  return std::get<std::string>(f->get());
}

int64_t num(const json::value& v, std::string_view key) {
  const auto* f = v.find(key);
  if (f == nullptr || !f->is_int()) {
    return 0;
  }
  return std::get<int64_t>(f->get());
}

std::optional<json::value> parse(const std::string& body) {
  auto p = json::parse(body);
  if (auto* v = std::get_if<json::value>(&p)) {
    return std::move(*v);
  }
  return std::nullopt;
}

void chown_postgres(const std::string& path) {
  run_command({"chown", "-R", "postgres:postgres", path}, 30s);
}

} // namespace

// ---- PostgreSQL --------------------------------------------------------------------------------

command_result private_postgres::pg_ctl(const std::vector<std::string>& args,
                                        std::chrono::milliseconds limit) {
  std::vector<std::string> argv{"runuser", "-u", "postgres", "--", bin_ + "/pg_ctl", "-D", dir_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, limit);
}

void private_postgres::start(const cluster_options& o, const std::string& dir, uint16_t port,
                             const std::string& db) {
  bin_ = o.pg_bin;
  dir_ = dir + "/data";
  log_ = dir + "/postgres.log";
  db_ = db;
  port_ = port;
  node_host_ = o.net != nullptr ? o.net->pg_address() : "127.0.0.1";
  fs::remove_all(dir);
  fs::create_directories(dir_);
  chown_postgres(dir);
  auto r = run_command({"runuser", "-u", "postgres", "--", bin_ + "/initdb", "-D", dir_, "-U",
                        "surge", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"},
                       120s);
  if (r.exit_code != 0) {
    throw std::runtime_error("initdb failed:\n" + r.output);
  }
  if (node_host_ != "127.0.0.1") {
    // initdb's pg_hba.conf trusts loopback only; the nodes come from their namespaces.
    std::ofstream hba{dir_ + "/pg_hba.conf", std::ios::app};
    hba << "host all all " << o.net->subnet << ".0/24 trust\n";
  }
  r = pg_ctl({"-l", log_, "-w", "-t", "60", "-o", server_options(), "start"}, 90s);
  if (r.exit_code != 0) {
    throw std::runtime_error("pg_ctl start failed:\n" + r.output + tail_of(log_));
  }
  running_ = true;
  pqxx::connection c{"postgresql://surge@127.0.0.1:" + std::to_string(port) + "/postgres"};
  pqxx::nontransaction tx{c};
  tx.exec("CREATE DATABASE " + tx.quote_name(db));
}

void private_postgres::restart(std::chrono::milliseconds down) {
  auto r = pg_ctl({"-m", "fast", "-w", "-t", "60", "stop"}, 90s);
  if (r.exit_code != 0) {
    throw std::runtime_error("pg_ctl stop failed:\n" + r.output);
  }
  std::this_thread::sleep_for(down);
  r = pg_ctl({"-l", log_, "-w", "-t", "60", "-o", server_options(), "start"}, 90s);
  if (r.exit_code != 0) {
    throw std::runtime_error("pg_ctl start failed:\n" + r.output + tail_of(log_));
  }
}

std::string private_postgres::server_options() const {
  // netns mode: the harness on loopback, the nodes over the bridge (10.77.0.2 only).
  const std::string listen =
      node_host_ == "127.0.0.1" ? std::string{"127.0.0.1"} : "127.0.0.1," + node_host_;
  return "-c listen_addresses=" + listen + " -c port=" + std::to_string(port_) +
         " -c unix_socket_directories=" + fs::path(dir_).parent_path().string() +
         " -c max_connections=400 -c fsync=off -c full_page_writes=off"
         " -c shared_buffers=64MB"
         // In postgres.log (kept with --keep): what waited on a lock, and slow statements.
         " -c log_lock_waits=on -c deadlock_timeout=200ms -c log_min_duration_statement=400";
}

void private_postgres::stop() {
  if (running_) {
    pg_ctl({"-m", "immediate", "-w", "-t", "30", "stop"}, 45s);
    running_ = false;
  }
}

private_postgres::~private_postgres() {
  stop();
}

std::string private_postgres::url() const {
  return "postgresql://surge@127.0.0.1:" + std::to_string(port_) + "/" + db_;
}

std::string private_postgres::node_url() const {
  return "postgresql://surge@" + node_host_ + ":" + std::to_string(port_) + "/" + db_;
}

// ---- Redis -------------------------------------------------------------------------------------

void private_redis::start(const cluster_options& o, const std::string& dir, uint16_t port) {
  binary_ = o.redis_binary;
  dir_ = dir;
  log_ = dir + "/redis.log";
  port_ = port;
  host_ = o.net != nullptr ? o.net->hub_address() : "127.0.0.1";
  fs::remove_all(dir);
  fs::create_directories(dir);
  launch();
}

void private_redis::launch() {
  std::vector<std::string> argv{binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1"};
  if (host_ != "127.0.0.1") {
    argv.push_back(host_); // --bind 127.0.0.1 10.77.0.1
  }
  // A memory cap and no eviction, as scripts/services.sh runs it: a full Redis refuses writes
  // and never drops a cart that holds stock.
  for (const char* a :
       {"--dir", dir_.c_str(), "--save", "3600 1", "--appendonly", "no", "--protected-mode", "no",
        "--maxmemory", "1gb", "--maxmemory-policy", "noeviction"}) {
    argv.emplace_back(a);
  }
  proc_.start(argv, log_);
  for (int i = 0; i < 500; ++i) {
    if (proc_.exited()) {
      throw std::runtime_error("redis-server exited:\n" + tail_of(log_));
    }
    if (tail_of(log_, 5).find("Ready to accept connections") != std::string::npos) {
      return;
    }
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("redis-server not ready in 10 s:\n" + tail_of(log_));
}

void private_redis::restart(bool flush, std::chrono::milliseconds down) {
  if (flush) {
    proc_.kill9();
    fs::remove(dir_ + "/dump.rdb");
  } else {
    proc_.stop(20s); // SIGTERM: saves the dump (a save point is configured)
  }
  std::this_thread::sleep_for(down);
  // The log grows: wait for the line of this start only.
  fs::resize_file(log_, 0);
  launch();
}

void private_redis::stop() {
  proc_.kill9();
}

// ---- the cluster -------------------------------------------------------------------------------

cluster_env::cluster_env(cluster_options o)
    : o_(std::move(o)) {}

cluster_env::~cluster_env() {
  stop();
}

std::vector<std::string> cluster_env::node_ids() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) {
    out.push_back(n->id);
  }
  return out;
}

void cluster_env::start() {
  fs::create_directories(o_.work_dir);
  pg_.start(o_, o_.work_dir + "/pg", pick_free_port(), "surge_chaos");
  redis_.start(o_, o_.work_dir + "/redis", pick_free_port());

  std::string gateways;
  for (const auto& g : gateway_names_) {
    gateway_ports_.push_back(pick_free_port());
    gateways += (gateways.empty() ? "" : ",") + g + "=" + server_host() + ":" +
                std::to_string(gateway_ports_.back());
  }
  paysim_log_ = o_.work_dir + "/paysim.log";
  paysim_.start({o_.paysim_binary, "--gateways=" + gateways, "--slow-ms=2500"}, paysim_log_);
  for (int i = 0;; ++i) {
    http_client c{server_host(), gateway_ports_.back(), 1s};
    if (c.call("GET", "/healthz").status == 200) {
      break;
    }
    if (paysim_.exited() || i > 300) {
      throw std::runtime_error("surge-paysim did not start:\n" + tail_of(paysim_log_));
    }
    std::this_thread::sleep_for(20ms);
  }

  for (int i = 0; i < o_.nodes + o_.spare_nodes; ++i) {
    auto n = std::make_unique<node>();
    n->id = "n" + std::to_string(i + 1);
    n->index = i;
    n->host = o_.net != nullptr ? o_.net->node_address(i) : "127.0.0.1";
    std::set<uint16_t> used;
    for (int tries = 0; used.size() < 3 && tries < 100; ++tries) {
      used.insert(pick_free_port());
    }
    auto it = used.begin();
    n->http = *it++;
    n->admin = *it++;
    n->cluster = *it;
    n->log = o_.work_dir + "/" + n->id + ".log";
    nodes_.push_back(std::move(n));
  }
  // The spares (o_.spare_nodes) wait for a scale-out.
  for (std::size_t i = 0; i < static_cast<std::size_t>(o_.nodes); ++i) {
    if (!start_node(i)) {
      throw std::runtime_error("node " + nodes_[i]->id + " did not get ready:\n" +
                               tail_of(nodes_[i]->log));
    }
    nodes_[i]->member = true;
  }
}

std::string cluster_env::server_host() const {
  return o_.net != nullptr ? o_.net->hub_address() : "127.0.0.1";
}

std::unique_ptr<http_client> cluster_env::admin_client(const node& n,
                                                       std::chrono::milliseconds timeout) {
  auto c = std::make_unique<http_client>(n.host, n.admin, timeout);
  if (!o_.admin_token.empty()) {
    c->set_header("Authorization", "Bearer " + o_.admin_token);
  }
  return c;
}

std::vector<std::string> cluster_env::node_command(std::size_t i) const {
  const auto& n = *nodes_.at(i);
  std::string gateways;
  for (std::size_t g = 0; g < gateway_names_.size(); ++g) {
    gateways += (gateways.empty() ? "" : ",") + gateway_names_[g] + "=" +
                (g % 2 == 0 ? "form" : "json") + "+http://" + server_host() + ":" +
                std::to_string(gateway_ports_[g]);
  }
  std::vector<std::string> argv{
      o_.node_binary,
      "--node.id=" + n.id,
      "--http.port=" + std::to_string(n.http),
      "--admin.port=" + std::to_string(n.admin),
      "--cluster.port=" + std::to_string(n.cluster),
      "--pg.url=" + pg_.node_url(),
      "--redis.url=" + redis_.url(),
      "--redis.prefix=" + redis_prefix_,
      "--holds.ttl=" + o_.holds_ttl,
      "--cluster.lease=" + o_.lease,
      "--payments.gateways=" + gateways,
      "--orders.settle_after=3s",
      "--orders.reconcile_interval=1s",
      "--log.level=info",
  };
  if (!o_.capture.empty()) {
    argv.push_back("--payments.capture=" + o_.capture);
  }
  // Storefront limits stay on (limits.ip_*); the harness's shoppers each name their own client
  // address in X-Forwarded-For, which a node believes only from a trusted proxy: the address
  // the harness connects from (the hub in netns mode, loopback otherwise).
  argv.push_back("--http.trusted_proxies=127.0.0.1/32,::1/128" +
                 (o_.net != nullptr ? "," + server_host() + "/32" : std::string{}));
  if (o_.net != nullptr) {
    // Every listener on the node's namespace address; the admin API then needs its token.
    for (const char* k : {"--http.host=", "--admin.host=", "--cluster.host="}) {
      argv.push_back(k + n.host);
    }
    // A non-loopback cluster.host needs mutual TLS or this explicit choice: the run's bridge is
    // private to this machine's namespaces.
    argv.emplace_back("--cluster.insecure=true");
  }
  if (!o_.admin_token.empty()) {
    argv.push_back("--admin.token=" + o_.admin_token);
  }
  argv.insert(argv.end(), o_.node_extra.begin(), o_.node_extra.end());
  // ip netns exec switches namespaces and execs in place: the pid is surge-node's own (SIGSTOP,
  // SIGKILL reach it).
  return o_.net != nullptr ? in_node_ns(*o_.net, static_cast<int>(i), argv) : argv;
}

bool cluster_env::start_node(std::size_t i, std::chrono::milliseconds patience) {
  auto& n = *nodes_.at(i);
  n.proc.start(node_command(i), n.log);
  const auto deadline = steady::now() + patience;
  http_client probe{n.host, n.http, 1s};
  while (steady::now() < deadline) {
    if (n.proc.exited()) {
      return false;
    }
    if (probe.call("GET", "/readyz").status == 200) {
      n.up = true;
      return true;
    }
    probe.close();
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void cluster_env::kill_node(std::size_t i) {
  nodes_.at(i)->up = false;
  nodes_.at(i)->proc.kill9();
}

bool cluster_env::set_gateway_down(std::size_t i, bool down) {
  http_client c{server_host(), gateway_ports_.at(i), 3s};
  return c.call("POST", "/_outage", down ? R"({"down":true})" : R"({"down":false})").status == 200;
}

bool cluster_env::set_capture_delay(std::chrono::milliseconds delay) {
  http_client c{server_host(), gateway_ports_.at(0), 3s};
  return c.call("PUT", "/_faults", R"({"capture_delay_ms":)" + std::to_string(delay.count()) + "}")
             .status == 200;
}

std::vector<charge_row> cluster_env::charges() {
  http_client c{server_host(), gateway_ports_.at(0), 30s};
  auto a = c.call("GET", "/_charges");
  if (a.status != 200) {
    throw std::runtime_error("GET /_charges: " + std::to_string(a.status) + " " + a.error);
  }
  auto v = parse(a.body);
  if (!v || !v->is_array()) {
    throw std::runtime_error("GET /_charges: not a JSON array");
  }
  std::vector<charge_row> out;
  for (const auto& e : std::get<json::array>(v->get())) {
    out.push_back({str(e, "gateway"), str(e, "idempotency_key"), num(e, "amount_cents"),
                   str(e, "status"), num(e, "refunded_cents")});
  }
  return out;
}

std::vector<refund_row> cluster_env::refunds() {
  http_client c{server_host(), gateway_ports_.at(0), 30s};
  auto a = c.call("GET", "/_refunds");
  if (a.status != 200) {
    throw std::runtime_error("GET /_refunds: " + std::to_string(a.status) + " " + a.error);
  }
  auto v = parse(a.body);
  if (!v || !v->is_array()) {
    throw std::runtime_error("GET /_refunds: not a JSON array");
  }
  std::vector<refund_row> out;
  for (const auto& e : std::get<json::array>(v->get())) {
    out.push_back({str(e, "gateway"), str(e, "idempotency_key"), str(e, "charge_idempotency_key"),
                   num(e, "amount_cents"), str(e, "status")});
  }
  return out;
}

std::vector<tools::shard_row> cluster_env::shard_map(std::size_t avoid, std::string& why) {
  why.clear();
  for (int round = 0; round < 2; ++round) { // another member first, then `avoid` itself
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->member.load() || (round == 0) == (i == avoid)) {
        continue;
      }
      auto admin = admin_client(*nodes_[i], 3s);
      auto a = admin->call("GET", "/admin/v1/shards");
      auto v = parse(a.body);
      if (a.status == 200 && v) {
        try {
          return tools::read_shards(*v);
        } catch (const std::runtime_error& e) {
          why = nodes_[i]->id + ": " + e.what();
          continue;
        }
      }
      why = nodes_[i]->id + " answered GET /admin/v1/shards with " + std::to_string(a.status) +
            (a.error.empty() ? "" : " " + a.error);
    }
  }
  if (why.empty()) {
    why = "no member to ask";
  }
  return {};
}

std::string cluster_env::drain_node(std::size_t i) {
  auto& n = *nodes_.at(i);
  auto admin = admin_client(n, 5s);
  auto a = admin->call("POST", "/admin/v1/nodes/" + n.id + "/drain");
  if (a.status == 202) {
    return {};
  }
  return "POST /admin/v1/nodes/" + n.id + "/drain answered " + std::to_string(a.status) + " " +
         (a.status == 0 ? a.error : a.body);
}

bool cluster_env::settled(std::string& why) {
  std::set<std::string> up_ids;
  const node* asked = nullptr;
  for (const auto& n : nodes_) {
    if (!n->member.load()) {
      continue;
    }
    asked = asked != nullptr ? asked : n.get();
    if (!n->proc.running() || n->proc.exited()) {
      why = n->id + " is not running";
      return false;
    }
    http_client c{n->host, n->http, 2s};
    if (c.call("GET", "/readyz").status != 200) {
      why = n->id + " is not ready";
      return false;
    }
  }
  if (asked == nullptr) {
    why = "no member";
    return false;
  }
  auto admin = admin_client(*asked, 5s);
  auto cl = admin->call("GET", "/admin/v1/cluster");
  auto sh = admin->call("GET", "/admin/v1/shards");
  auto cv = parse(cl.body);
  auto sv = parse(sh.body);
  if (cl.status != 200 || sh.status != 200 || !cv || !sv) {
    why = "admin API of " + asked->id + " did not answer";
    return false;
  }
  try {
    for (const auto& m : tools::read_cluster(*cv).nodes) {
      if (m.status == "up") {
        up_ids.insert(m.node_id);
      }
    }
  } catch (const std::runtime_error&) {
    // no members: the first node is named below
  }
  for (const auto& n : nodes_) {
    if (n->member.load() && up_ids.count(n->id) == 0) {
      why = n->id + " is not up in /admin/v1/cluster";
      return false;
    }
  }
  std::vector<tools::shard_row> shards;
  try {
    shards = tools::read_shards(*sv);
  } catch (const std::runtime_error&) {
    // no shard map
  }
  if (shards.empty()) {
    why = "no shard map";
    return false;
  }
  int unowned = 0;
  int moving = 0;
  std::set<std::string> members;
  for (const auto& n : nodes_) {
    if (n->member.load()) {
      members.insert(n->id);
    }
  }
  for (const auto& sh : shards) {
    unowned += up_ids.count(sh.owner) == 0 || members.count(sh.owner) == 0 ? 1 : 0;
    moving += sh.target.empty() ? 0 : 1;
  }
  if (unowned > 0 || moving > 0) {
    why = std::to_string(unowned) + " shards without a live member as owner, " +
          std::to_string(moving) + " moving";
    return false;
  }
  return true;
}

void cluster_env::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  for (auto& n : nodes_) {
    n->proc.stop(10s);
  }
  paysim_.stop(5s);
  redis_.stop();
  pg_.stop();
}

} // namespace surge::chaos
