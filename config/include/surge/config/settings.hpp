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
/// nothing reads settings from globals. Each setting is declared once, in settings.def (member,
/// type, name, bounds, default, help); the members below are generated from it, in its order,
/// zero or empty until load() or defaults() fills them. The same entries build settings.cpp's
/// table, which drives --help and validation.
struct node_options {
#define SURGE_TEXT(member, name, allow_empty, def, help) std::string member;
#define SURGE_INTEGER(member, type, name, lo, hi, def, help) type member = 0;
#define SURGE_PORT(member, name, def, help) uint16_t member = 0;
#define SURGE_DURATION(member, name, lo, hi, def, help) std::chrono::milliseconds member{0};
#define SURGE_BOOLEAN(member, name, def, help) bool member = false;
#define SURGE_ENUMERATION(member, name, choices, def, help) std::string member;
#define SURGE_FRACTION(member, name, def, help) double member = 0;
#include "surge/config/settings.def"
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

/// True for the addresses that mean "every interface" when listening: 0.0.0.0, :: (optionally
/// bracketed) and the empty host. Peers cannot reach a node at such an address.
bool is_wildcard(std::string_view host);

/// cluster.advertise taken apart: `host` (IPv6 without brackets) and `port` (0: none given).
struct advertised {
  std::string host;
  uint16_t port = 0;
};

/// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; nullopt when the
/// text is none of these, the host is a wildcard, or the port is not 1..65535.
std::optional<advertised> parse_advertise(std::string_view text);

/// The shortest exact spelling of `d` that parse_duration accepts, e.g. "600s" -> "10m",
/// 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);

} // namespace surge::config
