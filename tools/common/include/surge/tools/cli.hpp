#pragma once

// The one command-line parser of the tools and surge-bench. A tool declares its flags once, in a
// table: the name, what the flag takes, where its value goes. The parser reads the arguments in
// the order given and throws a usage_error for the first problem, with a message that names the
// flag; the tool prints it and exits with its usage status (2). Help text, exit codes and the
// checks between flags stay in the tool.
//
//   --name=value   a flag and its value (the value may be empty: "--name=")
//   --name         a flag without a value
//   word           a plain argument (a command, a node id), where the tool takes them
//   --             the end of the flags, where the tool says so: all that follows is a word
//
// Pure functions over strings: no I/O, no global state, usable from any thread.

#include <charconv>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace surge::tools::cli {

/// A bad command line. what() is the message for stderr, without the program's name.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What a flag takes.
enum class takes {
  nothing,  ///< --name; "--name=..." is a problem::unexpected_value
  value,    ///< --name=VALUE; without one, problem::missing_value
  optional, ///< --name or --name=VALUE
};

/// What a flag does with its value.
using setter = std::function<void(const std::optional<std::string>& value)>;

/// A `set` for a flag that takes a value: stores it in `out` (a std::string or
/// std::optional<std::string>, which must outlive the parse).
template <class String>
setter assign(String& out) {
  return [&out](const std::optional<std::string>& v) { out = *v; };
}

/// A `set` that makes `out` true (a switch).
inline setter enable(bool& out) {
  return [&out](const std::optional<std::string>&) { out = true; };
}

/// One flag of a tool.
struct flag {
  std::string name; ///< without the leading "--"
  takes what = takes::value;
  /// Receives the value as written (nullopt: none; for takes::value never nullopt). May throw
  /// usage_error for a bad value.
  setter set;
  /// Parsing ends after this flag: what follows is not read (--help).
  bool stop = false;
};

/// One argument as the parser read it.
struct argument {
  std::string text;                 ///< as written, up to '=': "--nodes", "-h", "extra"
  std::string name;                 ///< a flag's name: `text` without "--"; "" for a word
  std::optional<std::string> value; ///< after '=' (or the next argument, see syntax)
  bool is_flag = false;             ///< false: a plain word
};

/// What can be wrong with an argument.
enum class problem {
  unknown_flag,     ///< not in the tool's table
  missing_value,    ///< a flag that takes a value got none
  unexpected_value, ///< a flag that takes nothing got one
  unexpected_word,  ///< a plain argument, and the tool takes none
  given_twice,      ///< the same flag again, and the tool takes each once
};

/// The tools' common wording of `p` for `a`:
///   unknown flag --x | --x needs a value: --x=VALUE | --x takes no value |
///   unexpected argument 'w' (flags are --name=value) | --x given twice
std::string message(problem p, const argument& a);

/// How a tool's command line is written.
struct syntax {
  /// Plain arguments are collected in outcome::words; otherwise each is unexpected_word.
  bool words = false;
  /// "--" ends the flags: every argument after it is a word.
  bool double_dash_ends_flags = false;
  /// "--name value" as well as "--name=value": an argument without '=' that is not a flag taking
  /// nothing takes the next argument as its value. Then every argument is a flag: one that does
  /// not start with "--" is an unknown flag named as written.
  bool value_after_space = false;
  /// "--name=" is a missing_value for a flag that takes a value (otherwise it gets "").
  bool empty_is_missing = true;
  /// A flag given twice is given_twice.
  bool unique = false;
  /// Arguments that stand for --help wherever they are, e.g. "-h".
  std::vector<std::string> help_aliases;
  /// The message of each problem; the tools' common wording unless a tool keeps its own.
  std::function<std::string(problem, const argument&)> wording = message;
};

/// Splits `args` into arguments (`flags` says which flags take nothing, for value_after_space).
/// Finds no problem: see check_shape() and apply().
std::vector<argument> read(const std::vector<std::string>& args, const std::vector<flag>& flags,
                           const syntax& s);

/// Throws usage_error for the first word (where the tool takes none) or repeated flag (where
/// flags are unique) of `line`, in order, before any flag is looked up: for a tool that answers
/// --help on any well-formed line.
void check_shape(const std::vector<argument>& line, const syntax& s);

/// True when `line` has the flag `name`.
bool has(const std::vector<argument>& line, const std::string& name);

/// What apply() leaves to the tool.
struct outcome {
  std::vector<std::string> words; ///< the plain arguments, in order
  bool stopped = false;           ///< a flag with `stop` ended parsing
};

/// Applies `line` in order: for each argument, a word is collected (or unexpected_word); a flag is
/// looked up (unknown_flag), its value checked against what it takes (missing_value,
/// unexpected_value), refused when repeated (given_twice, where unique), then set; a flag with
/// `stop` ends it. Throws usage_error for the first problem, and whatever a `set` throws.
outcome apply(const std::vector<argument>& line, const std::vector<flag>& flags, const syntax& s);

/// apply(read(args, flags, s), flags, s).
outcome parse(const std::vector<std::string>& args, const std::vector<flag>& flags,
              const syntax& s);

// ------------------------------------------------------------------------------ values

/// `text` as an integer of type T, all of it (decimal, a '-' only for signed T, no '+', no
/// spaces); nullopt otherwise or when out of T's range.
template <class T>
std::optional<T> to_integer(std::string_view text) {
  static_assert(std::is_integral_v<T>);
  T x{};
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, x);
  if (text.empty() || ec != std::errc{} || p != end) {
    return std::nullopt;
  }
  return x;
}

/// `text` as a finite number, all of it (strtod's syntax); nullopt otherwise.
std::optional<double> to_number(const std::string& text);

/// `list` split at every `sep`: "a,b" -> {"a", "b"}, "" -> {""}, "a," -> {"a", ""}.
std::vector<std::string> split_list(std::string_view list, char sep = ',');

} // namespace surge::tools::cli
