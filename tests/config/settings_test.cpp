#include "surge/config/settings.hpp"

#include "surge/config/derived.hpp"

#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <unistd.h>

#include "temp_path.hpp"

using namespace surge::config;
using namespace std::chrono_literals;

namespace {

/// A config file in the temp directory, removed on destruction.
class temp_file {
 public:
  explicit temp_file(const std::string& content) { std::ofstream{path()} << content; }

  const std::string& path() const { return where_.path(); }

 private:
  surge::test::temp_path where_{"surge-config-test", ".conf"};
};

node_options load_ok(const std::vector<std::string>& args, const environment& env = {}) {
  auto result = load(args, env);
  if (auto* err = std::get_if<load_error>(&result)) {
    FAIL("unexpected load_error: " << err->message);
  }
  return std::get<invocation>(result).options;
}

std::string load_err(const std::vector<std::string>& args, const environment& env = {}) {
  auto result = load(args, env);
  if (std::holds_alternative<invocation>(result)) {
    FAIL("expected a load_error");
  }
  return std::get<load_error>(result).message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("defaults") {
  auto o = load_ok({});
  CHECK(!o.node_id.empty());
  CHECK(contains(o.node_id, "-" + std::to_string(getpid())));
  CHECK(o.http_host == "127.0.0.1");
  CHECK(o.http_port == 8080);
  CHECK(o.http_io_threads == 2);
  CHECK(o.http_body_limit == 65536);
  CHECK(o.http_request_timeout == 10s);
  CHECK(o.admin_host == "127.0.0.1");
  CHECK(o.admin_port == 9090);
  CHECK(o.admin_token.empty());
  CHECK(o.cluster_host == "127.0.0.1");
  CHECK(o.cluster_port == 4242);
  CHECK(o.cluster_seeds.empty());
  CHECK(o.cluster_shards == 256);
  CHECK(o.pg_url == "postgresql://surge@127.0.0.1:5432/surge");
  CHECK(o.redis_url == "redis://127.0.0.1:6379/0");
  CHECK(o.redis_prefix == "surge:");
  CHECK(o.holds_ttl == 600s);
  CHECK(o.carts_ttl == 604800s);
  CHECK(o.entity_idle == 120s);
  CHECK(o.sku_snapshot_every == 100);
  CHECK(o.journal_writers == 2);
  CHECK(o.journal_max_batch == 512);
  CHECK(o.storage_threads == 4);
  CHECK(o.log_level == "info");
  CHECK(o.log_format == "text");
  CHECK(o.payments_gateways.empty());
}

TEST_CASE("flags") {
  auto result = load({"--migrate-only", "--config", "/nonexistent/but/unused"}, {});
  REQUIRE(std::holds_alternative<load_error>(result)); // the file is read
  CHECK(contains(std::get<load_error>(result).message, "/nonexistent/but/unused"));

  auto ok = load({"--migrate-only"}, {});
  REQUIRE(std::holds_alternative<invocation>(ok));
  CHECK(std::get<invocation>(ok).migrate_only);
  CHECK_FALSE(std::get<invocation>(ok).help);

  auto help = load({"-h"}, {{"SURGE_NOPE", "1"}});
  REQUIRE(std::holds_alternative<invocation>(help));
  CHECK(std::get<invocation>(help).help);
  CHECK(std::get<invocation>(load({"--version"}, {})).version);
}

TEST_CASE("command line forms") {
  auto o = load_ok({"--http.port=1234", "--cluster.seeds", "a:1,b:2", "--log.level", "debug"});
  CHECK(o.http_port == 1234);
  CHECK(o.cluster_seeds == "a:1,b:2");
  CHECK(o.log_level == "debug");
  CHECK(contains(load_err({"--http.port"}), "'http.port'"));
  CHECK(contains(load_err({"positional"}), "'positional'"));
  CHECK(contains(load_err({"-x"}), "'-x'"));
}

TEST_CASE("precedence: command line > environment > file > default") {
  temp_file file("http.port = 1001\n"
                 "admin.port = 1002\n"
                 "cluster.port = 1003\n");
  environment env{{"SURGE_HTTP_PORT", "2001"}, {"SURGE_ADMIN_PORT", "2002"}};
  auto o = load_ok({"--config=" + file.path(), "--http.port=3001"}, env);
  CHECK(o.http_port == 3001);     // command line
  CHECK(o.admin_port == 2002);    // environment
  CHECK(o.cluster_port == 1003);  // file
  CHECK(o.cluster_shards == 256); // default

  SUBCASE("SURGE_CONFIG names the file; --config beats it") {
    temp_file other("cluster.port = 1999\n");
    env["SURGE_CONFIG"] = file.path();
    CHECK(load_ok({}, env).cluster_port == 1003);
    CHECK(load_ok({"--config", other.path()}, env).cluster_port == 1999);
  }
  SUBCASE("SURGE_TEST_ variables are ignored") {
    env["SURGE_TEST_ANYTHING"] = "x";
    CHECK(load_ok({}, env).admin_port == 2002);
  }
}

TEST_CASE("file: groups, comments, quotes") {
  temp_file file("# comment\n"
                 "; another\n"
                 "\n"
                 "node.id = top-level\n"
                 "[http]\n"
                 "port = 8181   # trailing comment\n"
                 "host = \"0.0.0.0\"\n"
                 "[ redis ]\n"
                 "prefix = \"flash sale:\"\n"
                 "[holds]\n"
                 "ttl = 5m\n");
  auto o = load_ok({"--config=" + file.path()});
  CHECK(o.node_id == "top-level");
  CHECK(o.http_port == 8181);
  CHECK(o.http_host == "0.0.0.0");
  CHECK(o.redis_prefix == "flash sale:");
  CHECK(o.holds_ttl == 5min);
}

TEST_CASE("unknown setting is named with its source") {
  auto cli = load_err({"--http.prot=1"});
  CHECK(contains(cli, "'http.prot'"));
  CHECK(contains(cli, "command line"));

  auto env = load_err({}, {{"SURGE_HTTP_PROT", "1"}});
  CHECK(contains(env, "'http.prot'"));
  CHECK(contains(env, "SURGE_HTTP_PROT"));

  temp_file file("http.port = 1\n[http]\nprot = 2\n");
  auto from_file = load_err({"--config=" + file.path()});
  CHECK(contains(from_file, "'http.prot'"));
  CHECK(contains(from_file, file.path() + ":3"));

  auto missing = load_err({"--config=/nonexistent/surge.conf"});
  CHECK(contains(missing, "/nonexistent/surge.conf"));
}

TEST_CASE("ill-typed values are named with source and expectation") {
  CHECK(load_err({"--http.port=abc"}) ==
        "setting 'http.port' (command line): expected an integer in 1..65535, got 'abc'");
  CHECK(contains(load_err({"--http.port=0"}), "'http.port'"));
  CHECK(contains(load_err({"--admin.port=70000"}), "'admin.port'"));
  CHECK(contains(load_err({}, {{"SURGE_CLUSTER_PORT", "-1"}}), "SURGE_CLUSTER_PORT"));
  CHECK(contains(load_err({"--holds.ttl=5x"}), "'holds.ttl'"));
  CHECK(contains(load_err({"--holds.ttl=-1s"}), "got '-1s'"));
  CHECK(contains(load_err({"--holds.ttl=8d"}), "'holds.ttl'")); // above 7d
  CHECK(contains(load_err({"--http.io_threads=65"}), "1..64"));
  CHECK(contains(load_err({"--log.level=loud"}), "trace|debug|info"));
  CHECK(contains(load_err({"--log.format=xml"}), "'log.format'"));
  CHECK(contains(load_err({"--pg.url="}), "'pg.url'"));

  temp_file file("[cluster]\nshards = 0\n");
  auto e = load_err({"--config", file.path()});
  CHECK(contains(e, "'cluster.shards'"));
  CHECK(contains(e, file.path() + ":2"));
}

TEST_CASE("admin.token is required unless admin.host is loopback") {
  auto e = load_err({"--admin.host=0.0.0.0"});
  CHECK(contains(e, "admin.token"));
  CHECK(load_ok({"--admin.host=0.0.0.0", "--admin.token=s3cret"}).admin_token == "s3cret");
  CHECK(load_ok({"--admin.host=127.0.0.2"}).admin_host == "127.0.0.2");
  CHECK(load_ok({"--admin.host=::1"}).admin_host == "::1");
  CHECK(load_ok({"--admin.host=localhost"}).admin_host == "localhost");
  CHECK(contains(load_err({"--admin.host=127.evil.com"}), "admin.token"));
}

TEST_CASE("cluster.host off loopback needs cluster.tls or cluster.insecure") {
  for (const char* host : {"0.0.0.0", "::", "[::]", "10.0.0.11", "192.168.1.5", "node1.internal",
                           "127.evil.com", "::ffff:127.0.0.1"}) {
    INFO("cluster.host=" << host);
    auto e = load_err({std::string{"--cluster.host="} + host});
    CHECK(contains(e, "'cluster.host'"));
    CHECK(contains(e, "cluster.tls"));
    CHECK(contains(e, "cluster.insecure"));
  }
  // The source is named, as for admin.token.
  CHECK(contains(load_err({}, {{"SURGE_CLUSTER_HOST", "0.0.0.0"}}), "SURGE_CLUSTER_HOST"));
  // Loopback needs neither.
  for (const char* host : {"127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"}) {
    INFO("cluster.host=" << host);
    CHECK(load_ok({std::string{"--cluster.host="} + host}).cluster_host == host);
  }
  // Mutual TLS (cert, key and CA still required together) or the operator's explicit choice.
  auto tls =
      load_ok({"--cluster.host=0.0.0.0", "--cluster.advertise=10.0.0.11", "--cluster.tls=true",
               "--cluster.tls_cert=n.pem", "--cluster.tls_key=n.key", "--cluster.tls_ca=ca.pem"});
  CHECK(tls.cluster_tls);
  CHECK(contains(load_err({"--cluster.host=0.0.0.0", "--cluster.tls=true"}), "cluster.tls_cert"));
  auto insecure = load_ok({"--cluster.host=10.0.0.11", "--cluster.insecure=true"});
  CHECK(insecure.cluster_insecure);
  CHECK(insecure.cluster_host == "10.0.0.11");
  CHECK(load_ok({}, {{"SURGE_CLUSTER_HOST", "::"},
                     {"SURGE_CLUSTER_ADVERTISE", "fd00::11"},
                     {"SURGE_CLUSTER_INSECURE", "true"}})
            .cluster_insecure);
  CHECK_FALSE(load_ok({}).cluster_insecure);
  CHECK(contains(load_err({"--cluster.host=0.0.0.0", "--cluster.insecure=false"}),
                 "cluster.insecure"));
}

TEST_CASE("cluster.advertise: the address peers reach; a wildcard cluster.host needs it") {
  // Empty by default: peers reach cluster.host.
  auto d = load_ok({});
  CHECK(d.cluster_advertise.empty());
  CHECK(advertised_cluster_address(d, 4242) == "127.0.0.1:4242");
  // A wildcard bind address without it is refused, naming both settings (and the source).
  for (const char* host : {"0.0.0.0", "::", "[::]"}) {
    INFO("cluster.host=" << host);
    auto e = load_err({std::string{"--cluster.host="} + host, "--cluster.insecure=true"});
    CHECK(contains(e, "'cluster.host'"));
    CHECK(contains(e, "'cluster.advertise'"));
    CHECK(contains(e, "command line"));
  }
  CHECK(contains(load_err({"--cluster.insecure=true"}, {{"SURGE_CLUSTER_HOST", "0.0.0.0"}}),
                 "SURGE_CLUSTER_HOST"));
  // The loopback/TLS rule still looks at the bind address: advertising loopback does not lift it.
  CHECK(contains(load_err({"--cluster.host=0.0.0.0", "--cluster.advertise=127.0.0.1"}),
                 "cluster.insecure"));
  // Bound to every address, advertised as the pod's: host, or host:port (its own port).
  auto pod = load_ok({"--cluster.host=0.0.0.0", "--cluster.insecure=true",
                      "--cluster.advertise=10.1.2.3", "--admin.host=0.0.0.0", "--admin.token=t",
                      "--http.host=0.0.0.0", "--http.port=8081", "--admin.port=9091"});
  CHECK(pod.cluster_host == "0.0.0.0");
  CHECK(pod.cluster_advertise == "10.1.2.3");
  CHECK(advertised_cluster_address(pod, 4242) == "10.1.2.3:4242");
  CHECK(advertised_address(pod, pod.http_host, pod.http_port) == "10.1.2.3:8081");
  CHECK(advertised_address(pod, pod.admin_host, pod.admin_port) == "10.1.2.3:9091");
  auto mapped = load_ok({}, {{"SURGE_CLUSTER_ADVERTISE", "surge-0.surge.shop.svc:14242"}});
  CHECK(advertised_cluster_address(mapped, 4242) == "surge-0.surge.shop.svc:14242");
  // A listener bound to one address is advertised as that address.
  CHECK(advertised_address(mapped, "127.0.0.5", 8080) == "127.0.0.5:8080");
  // IPv6, bracketed in host:port form.
  CHECK(advertised_cluster_address(load_ok({"--cluster.advertise=[::1]:5000"}), 4242) ==
        "[::1]:5000");
  CHECK(advertised_cluster_address(load_ok({"--cluster.advertise=fd00::7"}), 4242) ==
        "[fd00::7]:4242");
  CHECK(advertised_cluster_address(load_ok({"--cluster.host=::1"}), 4242) == "[::1]:4242");
  // Ill-formed or unreachable: an error naming the setting.
  for (const char* bad :
       {"0.0.0.0", "::", "[::]", "0.0.0.0:4242", "host:", "host:0", "host:65536", "host:12x",
        ":4242", "[fd00::1", "[fd00::1]x", "a b", "http://h:1", "h/1", "[]:1"}) {
    INFO("cluster.advertise=" << bad);
    auto e = load_err({std::string{"--cluster.advertise="} + bad});
    CHECK(contains(e, "'cluster.advertise'"));
  }
  CHECK(parse_advertise("node-1.internal")->port == 0);
  CHECK(parse_advertise("[fd00::1]:7")->host == "fd00::1");
  CHECK(parse_advertise("[fd00::1]:7")->port == 7);
}

TEST_CASE("admin.allowed_origins: a comma list of exact origins") {
  CHECK(load_ok({}).admin_allowed_origins.empty());
  CHECK(load_ok({"--admin.allowed_origins=https://ops.example.com, http://127.0.0.1:3000,"})
            .admin_allowed_origins == "https://ops.example.com, http://127.0.0.1:3000,");
  CHECK(load_ok({"--admin.allowed_origins=HTTPS://Ops.Example.com:8443"}).admin_allowed_origins ==
        "HTTPS://Ops.Example.com:8443");
  for (const char* bad : {"ops.example.com", "https://ops.example.com/", "https://a.com/console",
                          "null", "ftp://a.com", "https://", "https://u@a.com", "*"}) {
    INFO("admin.allowed_origins entry " << bad);
    auto e = load_err({std::string{"--admin.allowed_origins=https://ok.com,"} + bad});
    CHECK(contains(e, "'admin.allowed_origins'"));
    CHECK(contains(e, bad));
  }
}

TEST_CASE("pg.read_urls and pg.max_replica_lag: replicas for catalog reads") {
  CHECK(load_ok({}).pg_read_urls.empty());
  CHECK(load_ok({}).pg_max_replica_lag == 2s);
  CHECK(load_ok({"--pg.read_urls=postgresql://a:5433/surge, postgres://b/surge,"}).pg_read_urls ==
        "postgresql://a:5433/surge, postgres://b/surge,");
  CHECK(load_ok({"--pg.max_replica_lag=0ms"}).pg_max_replica_lag == 0ms);
  for (const char* bad : {"host=a dbname=surge", "http://a/surge", "a:5433"}) {
    INFO("pg.read_urls entry " << bad);
    auto e = load_err({std::string{"--pg.read_urls=postgresql://ok/surge,"} + bad});
    CHECK(contains(e, "'pg.read_urls'"));
    CHECK(contains(e, bad));
  }
  CHECK(contains(load_err({"--pg.max_replica_lag=2h"}), "pg.max_replica_lag"));
}

TEST_CASE("parse_duration") {
  std::chrono::milliseconds d{0};
  const std::pair<const char*, std::chrono::milliseconds> good[] = {
      {"250ms", 250ms}, {"30s", 30s}, {"10m", 10min}, {"1h", 1h}, {"2d", 48h}, {"45", 45s}};
  for (const auto& [text, want] : good) {
    CAPTURE(text);
    CHECK(parse_duration(text, d));
    CHECK(d == want);
  }
  d = 7ms;
  for (const char* bad : {"", "5x", "-1s", "1.5s", "s", " 5s", "5s ", "5 s", "+5s",
                          "99999999999999999999s", "9223372036854775807d"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad, d));
  }
  CHECK(d == 7ms);
  CHECK(format_duration(600s) == "10m");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(std::chrono::hours(24 * 7)) == "7d");
}

TEST_CASE("help_text mentions every setting") {
  auto help = help_text("surge-node");
  CHECK(contains(help, "Usage: surge-node"));
  for (const char* flag : {"--help", "--version", "--migrate-only", "--config"}) {
    CHECK(contains(help, flag));
  }
  for (const char* name : {"node.id",
                           "http.host",
                           "http.port",
                           "http.io_threads",
                           "http.body_limit",
                           "http.request_timeout",
                           "admin.host",
                           "admin.port",
                           "admin.token",
                           "cluster.host",
                           "cluster.port",
                           "cluster.seeds",
                           "cluster.shards",
                           "pg.url",
                           "redis.url",
                           "redis.prefix",
                           "holds.ttl",
                           "carts.ttl",
                           "entity.idle_timeout",
                           "sku.snapshot_every",
                           "journal.writers",
                           "journal.max_batch",
                           "storage.threads",
                           "log.level",
                           "log.format",
                           "payments.gateways",
                           "http.header_limit",
                           "http.target_limit",
                           "http.idle_timeout",
                           "http.max_connections",
                           "http.max_streams",
                           "redis.timeout",
                           "pg.startup_wait",
                           "entity.call_timeout",
                           "carts.claim_grace",
                           "payments.tries",
                           "payments.lookup_tries",
                           "payments.backoff",
                           "payments.backoff_cap",
                           "payments.breaker_threshold",
                           "payments.breaker_cooldown",
                           "payments.refund_tries",
                           "payments.refund_deadline",
                           "orders.relay_interval",
                           "auth.jwt_leeway",
                           "auth.token_cache",
                           "cluster.leave_timeout",
                           "http.drain_grace",
                           "sales.prewarm",
                           "sales.latency_budget",
                           "sales.refresh"}) {
    CAPTURE(name);
    CHECK(contains(help, std::string{"--"} + name + "="));
  }
  CHECK(contains(help, "SURGE_HTTP_PORT"));
  CHECK(contains(help, "SURGE_ENTITY_IDLE_TIMEOUT"));
}

TEST_CASE("process_environment") {
  ::setenv("SURGE_TEST_PROCESS_ENV", "x=y", 1);
  auto env = process_environment();
  CHECK(env["SURGE_TEST_PROCESS_ENV"] == "x=y");
  ::unsetenv("SURGE_TEST_PROCESS_ENV");
}

TEST_CASE("log.access_sample: a number in 0..1; log.access_file: any path, empty by default") {
  auto d = load_ok({});
  CHECK(d.log_access_sample == 1.0);
  CHECK(d.log_access_file.empty());
  CHECK(load_ok({"--log.access_sample=0"}).log_access_sample == 0.0);
  CHECK(load_ok({"--log.access_sample=0.25"}).log_access_sample == 0.25);
  CHECK(load_ok({"--log.access_sample=.5"}).log_access_sample == 0.5);
  CHECK(load_ok({}, {{"SURGE_LOG_ACCESS_SAMPLE", "1.0"}}).log_access_sample == 1.0);
  const auto help = help_text("surge-node");
  CHECK(contains(help, "log.access_sample"));
  CHECK(contains(help, "log.access_file"));
  CHECK(load_ok({"--log.access_file=/var/log/surge/access.log"}).log_access_file ==
        "/var/log/surge/access.log");
  for (const char* bad : {"1.5", "-0.1", "2", "", "nan", "inf", "1e-1", "+0.5", "0.5x", "."}) {
    CAPTURE(bad);
    CHECK(load_err({std::string{"--log.access_sample="} + bad}) ==
          std::string{"setting 'log.access_sample' (command line): expected a number in 0..1 "
                      "(e.g. 0.25), got '"} +
              bad + "'");
  }
}

TEST_CASE("http.cors_origins: origins of any scheme, or '*'") {
  CHECK(load_ok({}).http_cors_origins.empty());
  CHECK(load_ok({"--http.cors_origins=https://shop.example, http://localhost:3000,*,"})
            .http_cors_origins == "https://shop.example, http://localhost:3000,*,");
  CHECK(
      load_ok({"--http.cors_origins=capacitor://localhost,http://[::1]:8080"}).http_cors_origins ==
      "capacitor://localhost,http://[::1]:8080");
  for (const char* bad :
       {"shop.example", "https://shop.example/", "https://a.com/p", "null", "https://",
        "https://u@a.com", "https://a.com:", "https://a.com:8x", "1x://a.com", "://a.com", "**"}) {
    INFO("http.cors_origins entry " << bad);
    auto e = load_err({std::string{"--http.cors_origins=https://ok.com,"} + bad});
    CHECK(contains(e, "'http.cors_origins'"));
    CHECK(contains(e, bad));
  }
}

TEST_CASE("auth.dev_login: off by default; on needs auth.jwt_secret") {
  CHECK_FALSE(load_ok({}).auth_dev_login);
  const std::string secret = "--auth.jwt_secret=" + std::string(32, 's');
  CHECK(load_ok({"--auth.dev_login=true", secret}).auth_dev_login);
  auto e = load_err({"--auth.dev_login=true"});
  CHECK(contains(e, "auth.dev_login"));
  CHECK(contains(e, "auth.jwt_secret"));
}
