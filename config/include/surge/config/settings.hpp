#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace surge::config {

/// Every setting of surge-node, typed. Components receive the parts they need as const values;
/// nothing reads settings from globals. Names, defaults, bounds and help text are declared once,
/// in settings.cpp's table, which also drives --help and validation.
struct node_options {
  std::string node_id;                               ///< node.id (default: hostname-pid)
  std::string http_host;                             ///< http.host
  uint16_t http_port = 0;                            ///< http.port
  std::size_t http_io_threads = 0;                   ///< http.io_threads
  std::size_t http_body_limit = 0;                   ///< http.body_limit (bytes)
  std::chrono::milliseconds http_request_timeout{0}; ///< http.request_timeout
  std::chrono::milliseconds http_page_cache{0};      ///< http.page_cache (0: off)
  std::string admin_host;                            ///< admin.host
  uint16_t admin_port = 0;                           ///< admin.port
  std::string admin_token;                           ///< admin.token
  std::string cluster_host;                          ///< cluster.host
  uint16_t cluster_port = 0;                         ///< cluster.port
  std::string cluster_seeds;                         ///< cluster.seeds
  uint32_t cluster_shards = 0;                       ///< cluster.shards
  std::chrono::milliseconds cluster_heartbeat{0};    ///< cluster.heartbeat
  std::chrono::milliseconds cluster_lease{0};        ///< cluster.lease
  uint32_t cluster_max_moves = 0;                    ///< cluster.max_moves
  std::chrono::milliseconds cluster_handoff_wait{0}; ///< cluster.handoff_wait
  bool cluster_tls = false;                          ///< cluster.tls
  std::string cluster_tls_cert;                      ///< cluster.tls_cert
  std::string cluster_tls_key;                       ///< cluster.tls_key
  std::string cluster_tls_ca;                        ///< cluster.tls_ca
  std::string pg_url;                                ///< pg.url
  std::string redis_url;                             ///< redis.url
  std::string redis_prefix;                          ///< redis.prefix
  std::chrono::milliseconds holds_ttl{0};            ///< holds.ttl
  std::chrono::milliseconds carts_ttl{0};            ///< carts.ttl
  std::chrono::milliseconds entity_idle{0};          ///< entity.idle_timeout
  uint32_t sku_snapshot_every = 0;                   ///< sku.snapshot_every (journal events)
  std::size_t journal_writers = 0;                   ///< journal.writers
  std::size_t journal_max_batch = 0;                 ///< journal.max_batch
  std::size_t storage_threads = 0;                   ///< storage.threads
  std::string log_level;         ///< log.level: trace, debug, info, warn, error, critical, off
  std::string log_format;        ///< log.format: text, json
  std::string payments_gateways; ///< payments.gateways
  std::chrono::milliseconds payments_timeout{0};          ///< payments.timeout
  std::size_t payments_threads = 0;                       ///< payments.threads
  std::size_t orders_threads = 0;                         ///< orders.threads
  std::chrono::milliseconds orders_reconcile_interval{0}; ///< orders.reconcile_interval
  std::chrono::milliseconds orders_settle_after{0};       ///< orders.settle_after
  // Customers, limits and request hygiene (API.md v1 additions). Secrets are never logged.
  std::string auth_jwt_secret;                      ///< auth.jwt_secret (HS256; empty: none)
  std::string auth_jwt_public_key;                  ///< auth.jwt_public_key (PEM file; empty: none)
  std::string auth_jwt_issuer;                      ///< auth.jwt_issuer (empty: not checked)
  std::string auth_jwt_audience;                    ///< auth.jwt_audience (empty: not checked)
  std::string ids_secret;                           ///< ids.secret (empty: kept in PostgreSQL)
  uint32_t limits_ip_rate = 0;                      ///< limits.ip_rate (writes/s; 0: off)
  uint32_t limits_ip_burst = 0;                     ///< limits.ip_burst
  std::size_t limits_ip_table = 0;                  ///< limits.ip_table (addresses tracked)
  std::string http_trusted_proxies;                 ///< http.trusted_proxies (CIDR list)
  std::chrono::milliseconds carts_empty_ttl{0};     ///< carts.empty_ttl
  std::chrono::milliseconds holds_max_lifetime{0};  ///< holds.max_lifetime
  std::string admin_allowed_origins;                ///< admin.allowed_origins (comma list)
  bool cluster_insecure = false;                    ///< cluster.insecure
  std::size_t http_header_limit = 0;                ///< http.header_limit (bytes)
  std::size_t http_target_limit = 0;                ///< http.target_limit (bytes)
  std::chrono::milliseconds http_idle_timeout{0};   ///< http.idle_timeout
  std::size_t http_max_connections = 0;             ///< http.max_connections
  std::chrono::milliseconds redis_timeout{0};       ///< redis.timeout
  std::chrono::milliseconds pg_startup_wait{0};     ///< pg.startup_wait
  std::chrono::milliseconds entity_call_timeout{0}; ///< entity.call_timeout
  std::chrono::milliseconds carts_claim_grace{0};   ///< carts.claim_grace
  int payments_tries = 0;                           ///< payments.tries
  int payments_lookup_tries = 0;                    ///< payments.lookup_tries
  std::chrono::milliseconds payments_backoff{0};    ///< payments.backoff
  std::chrono::milliseconds payments_backoff_cap{0};      ///< payments.backoff_cap
  int payments_breaker_threshold = 0;                     ///< payments.breaker_threshold
  std::chrono::milliseconds payments_breaker_cooldown{0}; ///< payments.breaker_cooldown
  int payments_refund_tries = 0;                          ///< payments.refund_tries
  std::chrono::milliseconds payments_refund_deadline{0};  ///< payments.refund_deadline
  std::chrono::milliseconds orders_relay_interval{0};     ///< orders.relay_interval
  std::chrono::milliseconds auth_jwt_leeway{0};           ///< auth.jwt_leeway
  std::size_t auth_token_cache = 0;                       ///< auth.token_cache
  std::chrono::milliseconds cluster_leave_timeout{0};     ///< cluster.leave_timeout
};

/// The defaults of every setting (the table's), as load() gives them with no command line,
/// environment or file. node.id is computed (hostname-pid).
node_options defaults();

/// What the command line asked for besides settings.
struct invocation {
  node_options options;
  bool help = false;         ///< --help / -h
  bool version = false;      ///< --version
  bool migrate_only = false; ///< --migrate-only
  std::string config_file;   ///< --config=FILE (empty: none)
};

/// A start-up error; `message` names the setting, e.g.
/// "unknown setting 'http.prot' (command line)" or
/// "setting 'http.port' (environment SURGE_HTTP_PORT): expected an integer in 1..65535, got 'x'".
struct load_error {
  std::string message;
};

using environment = std::map<std::string, std::string>;

/// Loads settings with the precedence command line > environment (SURGE_* variables; a SURGE_
/// variable that names no setting is an error, except SURGE_TEST_* and those in
/// `ignored_env_prefixes`) > file given by --config (`name = value` lines, or `[group]` sections
/// with `key = value`; '#' comments; values may be double-quoted) > defaults.
/// Command-line arguments are `--name=value` or `--name value`; boolean flags as above.
///
/// `args` are the arguments after the program name (argv[1..argc)). `env` is usually
/// process_environment(). SURGE_CONFIG in `env` names the config file when --config is absent.
/// With --help or --version, only the command line's shape is checked and `options` holds the
/// defaults. Never throws: every failure, including an unreadable config file, is a load_error.
std::variant<invocation, load_error> load(const std::vector<std::string>& args,
                                          const environment& env);

/// As above, additionally ignoring SURGE_ variables whose names start with one of
/// `ignored_env_prefixes` (e.g. "SURGE_PAYSIM_" for a tool sharing the environment).
std::variant<invocation, load_error> load(const std::vector<std::string>& args,
                                          const environment& env,
                                          const std::vector<std::string>& ignored_env_prefixes);

/// The process environment as a map.
environment process_environment();

/// Text for --help: usage, the flags, then every setting with its default and meaning.
std::string help_text(const std::string& program);

/// Durations are written "250ms", "30s", "10m", "1h" or a bare number of seconds.
/// Returns false for anything else (negative, overflow, unknown unit).
/// Fractions ("1.5s") are rejected. A 'd' suffix means days. On false, `out` is unchanged.
bool parse_duration(const std::string& text, std::chrono::milliseconds& out);

/// A duration as the tools take it on their command lines: a number, fractions allowed, with
/// unit ms, s, m or h, or a bare number of seconds ("1.5", "250ms", "2m"), rounded to the
/// millisecond. nullopt for anything else, a negative value or one beyond a year. Callers
/// apply their own bounds.
std::optional<std::chrono::milliseconds> parse_cli_duration(const std::string& text);

/// True for 127.x.x.x, ::1 (optionally bracketed) and localhost: the addresses only this host
/// reaches (the admin.token and cluster.host rules).
bool is_loopback(std::string_view host);

/// The shortest exact spelling of `d` that parse_duration accepts, e.g. "600s" -> "10m",
/// 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);

} // namespace surge::config
