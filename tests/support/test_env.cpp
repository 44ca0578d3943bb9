#include "test_env.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>

#include <hiredis/hiredis.h>
#include <pqxx/pqxx>
#include <unistd.h>

#include "surge/persistence/pg.hpp"

namespace surge::test {

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string{v} : std::string{fallback};
}

/// "<pid>_<n>_<random>": unique across processes and within one.
std::string unique_suffix(char sep) {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  std::mt19937_64 gen{(static_cast<uint64_t>(rd()) << 32) ^ rd()};
  const auto n = counter.fetch_add(1);
  return std::to_string(::getpid()) + sep + std::to_string(n) + sep +
         std::to_string(gen() % 1000000000ULL);
}

std::string make_db_name() {
  return "surge_t_" + unique_suffix('_');
}

struct redis_target {
  std::string host;
  int port = 6379;
  std::string password;
  int db = 0;
};

/// Minimal redis://[:pw@]host[:port][/db] parsing for the fixtures.
redis_target parse_redis(const std::string& url) {
  redis_target t;
  std::string rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    auto auth = rest.substr(0, at);
    t.password = auth.substr(auth.find(':') == std::string::npos ? 0 : auth.find(':') + 1);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    auto db = rest.substr(slash + 1);
    t.db = db.empty() ? 0 : std::stoi(db);
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    t.port = std::stoi(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  t.host = rest;
  return t;
}

using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

reply_ptr run(redisContext* c, const std::string& what, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  auto* r = static_cast<redisReply*>(redisvCommand(c, fmt, ap));
  va_end(ap);
  if (r == nullptr) {
    throw std::runtime_error("Redis " + what + " failed: " + c->errstr);
  }
  if (r->type == REDIS_REPLY_ERROR) {
    std::string msg{r->str, r->len};
    freeReplyObject(r);
    throw std::runtime_error("Redis " + what + " failed: " + msg);
  }
  return reply_ptr{r, &freeReplyObject};
}

std::unique_ptr<redisContext, decltype(&redisFree)> redis_connect(const std::string& url) {
  redis_target t;
  try {
    t = parse_redis(url);
  } catch (const std::exception&) {
    throw std::runtime_error("cannot parse SURGE_TEST_REDIS_URL=" + url);
  }
  timeval tv{2, 0};
  std::unique_ptr<redisContext, decltype(&redisFree)> c{
      redisConnectWithTimeout(t.host.c_str(), t.port, tv), &redisFree};
  if (!c || c->err != 0) {
    throw std::runtime_error("cannot reach Redis at " + url +
                             " (set SURGE_TEST_REDIS_URL or run scripts/services.sh start): " +
                             (c ? c->errstr : "out of memory"));
  }
  redisSetTimeout(c.get(), tv);
  if (!t.password.empty()) {
    run(c.get(), "AUTH", "AUTH %b", t.password.data(), t.password.size());
  }
  if (t.db != 0) {
    run(c.get(), "SELECT", "SELECT %d", t.db);
  }
  return c;
}

} // namespace

std::string test_pg_admin_url() {
  return env_or("SURGE_TEST_PG_URL", "postgresql://surge@127.0.0.1:5432/postgres");
}

std::string test_pg_replica_url() {
  return env_or("SURGE_TEST_PG_REPLICA_URL", "");
}

std::string test_redis_url() {
  return env_or("SURGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0");
}

std::string pg_url_with_database(const std::string& url, const std::string& db) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    throw std::runtime_error("SURGE_TEST_PG_URL must be a postgresql:// URI, got " + url);
  }
  const auto query = url.find('?', scheme_end + 3);
  const auto path = url.find('/', scheme_end + 3);
  const auto authority_end = std::min(path, query);
  std::string out = url.substr(0, authority_end == std::string::npos ? url.size() : authority_end);
  out += '/' + db;
  if (query != std::string::npos) {
    out += url.substr(query);
  }
  return out;
}

pg_test_db::pg_test_db(bool migrated)
    : admin_url_(test_pg_admin_url())
    , name_(make_db_name())
    , url_(pg_url_with_database(admin_url_, name_)) {
  try {
    pqxx::connection admin{admin_url_};
    pqxx::nontransaction tx{admin};
    tx.exec("CREATE DATABASE " + tx.quote_name(name_));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot create a test database via SURGE_TEST_PG_URL=" + admin_url_ +
                             " (is PostgreSQL running? scripts/services.sh start): " + e.what());
  }
  if (!migrated) {
    return;
  }
  if (auto err = persistence::migrate(url_)) {
    throw std::runtime_error("migrate(" + url_ + ") failed: " + caf::to_string(err));
  }
}

pg_test_db::~pg_test_db() {
  try {
    pqxx::connection admin{admin_url_};
    pqxx::nontransaction tx{admin};
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception&) {
    // Best effort: a leftover surge_t_* database is harmless and names its process.
  }
}

std::string redis_test_prefix() {
  return "surge_t:" + unique_suffix(':') + ":";
}

std::size_t delete_redis_keys(const std::string& redis_url, const std::string& prefix) {
  auto c = redis_connect(redis_url);
  const std::string pattern = prefix + "*";
  std::string cursor = "0";
  std::size_t deleted = 0;
  do {
    auto r = run(c.get(), "SCAN", "SCAN %s MATCH %b COUNT 500", cursor.c_str(), pattern.data(),
                 pattern.size());
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      throw std::runtime_error("unexpected SCAN reply");
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    const auto* keys = r->element[1];
    for (std::size_t i = 0; i < keys->elements; ++i) {
      auto d = run(c.get(), "DEL", "DEL %b", keys->element[i]->str, keys->element[i]->len);
      deleted += static_cast<std::size_t>(d->integer);
    }
  } while (cursor != "0");
  return deleted;
}

redis_test_keys::redis_test_keys()
    : url_(test_redis_url())
    , prefix_(redis_test_prefix()) {
  auto c = redis_connect(url_);
  run(c.get(), "PING", "PING");
}

redis_test_keys::~redis_test_keys() {
  try {
    delete_redis_keys(url_, prefix_);
  } catch (const std::exception&) {
    // Best effort: keys carry the process id in their prefix.
  }
}

persistence::redis_options redis_test_options(const std::string& url, const std::string& prefix) {
  persistence::redis_options o;
  o.timeout = std::chrono::seconds{2};
  o.url = url;
  o.prefix = prefix;
  return o;
}

persistence::redis_options redis_test_keys::options() const {
  return redis_test_options(url_, prefix_);
}

} // namespace surge::test
