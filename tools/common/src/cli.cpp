#include "surge/tools/cli.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

namespace surge::tools::cli {

namespace {

const flag* find_flag(const std::vector<flag>& flags, const argument& a) {
  if (!a.is_flag || a.name.empty()) {
    return nullptr;
  }
  const auto it =
      std::find_if(flags.begin(), flags.end(), [&](const flag& f) { return f.name == a.name; });
  return it == flags.end() ? nullptr : &*it;
}

bool takes_a_value(const std::vector<flag>& flags, const std::string& name) {
  const auto it =
      std::find_if(flags.begin(), flags.end(), [&](const flag& f) { return f.name == name; });
  return it == flags.end() || it->what == takes::value;
}

/// "--name=value", "--name", "name=value", "name" as a flag: name only when written with "--".
argument as_flag(const std::string& arg) {
  argument a;
  a.is_flag = true;
  const auto eq = arg.find('=');
  a.text = arg.substr(0, eq);
  if (eq != std::string::npos) {
    a.value = arg.substr(eq + 1);
  }
  if (a.text.size() > 2 && a.text.rfind("--", 0) == 0) {
    a.name = a.text.substr(2);
  }
  return a;
}

argument as_word(const std::string& arg) {
  argument a;
  a.text = arg;
  return a;
}

[[noreturn]] void fail(const syntax& s, problem p, const argument& a) {
  throw usage_error(s.wording(p, a));
}

} // namespace

std::string message(problem p, const argument& a) {
  switch (p) {
  case problem::unknown_flag:
    return "unknown flag " + a.text;
  case problem::missing_value:
    return a.text + " needs a value: " + a.text + "=VALUE";
  case problem::unexpected_value:
    return a.text + " takes no value";
  case problem::unexpected_word:
    return "unexpected argument '" + a.text + "' (flags are --name=value)";
  case problem::given_twice:
    return a.text + " given twice";
  }
  return "bad argument " + a.text;
}

std::vector<argument> read(const std::vector<std::string>& args, const std::vector<flag>& flags,
                           const syntax& s) {
  std::vector<argument> line;
  bool flags_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (flags_done) {
      line.push_back(as_word(arg));
      continue;
    }
    if (std::find(s.help_aliases.begin(), s.help_aliases.end(), arg) != s.help_aliases.end()) {
      line.push_back(as_flag("--help"));
      line.back().text = arg;
      continue;
    }
    if (arg == "--" && s.double_dash_ends_flags) {
      flags_done = true;
      continue;
    }
    if (s.value_after_space) {
      auto a = as_flag(arg);
      if (!a.value && !(a.name.size() > 0 && !takes_a_value(flags, a.name)) &&
          i + 1 < args.size()) {
        a.value = args[++i]; // "--nodes 3"
      }
      line.push_back(std::move(a));
    } else if (arg.size() > 2 && arg.rfind("--", 0) == 0) {
      line.push_back(as_flag(arg));
    } else {
      line.push_back(as_word(arg));
    }
  }
  return line;
}

void check_shape(const std::vector<argument>& line, const syntax& s) {
  std::set<std::string> seen;
  for (const auto& a : line) {
    if (!a.is_flag) {
      if (!s.words) {
        fail(s, problem::unexpected_word, a);
      }
    } else if (s.unique && !seen.insert(a.name).second) {
      fail(s, problem::given_twice, a);
    }
  }
}

bool has(const std::vector<argument>& line, const std::string& name) {
  return std::any_of(line.begin(), line.end(),
                     [&](const argument& a) { return a.is_flag && a.name == name; });
}

outcome apply(const std::vector<argument>& line, const std::vector<flag>& flags, const syntax& s) {
  outcome out;
  std::set<std::string> seen;
  for (const auto& a : line) {
    if (!a.is_flag) {
      if (!s.words) {
        fail(s, problem::unexpected_word, a);
      }
      out.words.push_back(a.text);
      continue;
    }
    const flag* f = find_flag(flags, a);
    if (f == nullptr) {
      fail(s, problem::unknown_flag, a);
    }
    if (f->what == takes::nothing && a.value) {
      fail(s, problem::unexpected_value, a);
    }
    if (f->what == takes::value && (!a.value || (s.empty_is_missing && a.value->empty()))) {
      fail(s, problem::missing_value, a);
    }
    if (s.unique && !seen.insert(a.name).second) {
      fail(s, problem::given_twice, a);
    }
    if (f->set) {
      f->set(a.value);
    }
    if (f->stop) {
      out.stopped = true;
      return out;
    }
  }
  return out;
}

outcome parse(const std::vector<std::string>& args, const std::vector<flag>& flags,
              const syntax& s) {
  return apply(read(args, flags, s), flags, s);
}

std::optional<double> to_number(const std::string& text) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(x)) {
    return std::nullopt;
  }
  return x;
}

std::vector<std::string> split_list(std::string_view list, char sep) {
  std::vector<std::string> out;
  for (std::size_t pos = 0;;) {
    const auto at = list.find(sep, pos);
    out.emplace_back(
        list.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
    if (at == std::string_view::npos) {
      return out;
    }
    pos = at + 1;
  }
}

} // namespace surge::tools::cli
