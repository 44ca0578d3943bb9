// tools/common's command-line parser: how arguments are read, which problem each bad one is, in
// which order, and the common wording. The tools' own flags are tested with the tools (tests/load,
// tests/tools' surgectl, tests/payments' paysim flags).

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "surge/tools/cli.hpp"

namespace surge::tools::cli {

namespace {

/// A small tool: --name=V, --count=N (an integer), --fast (a switch), --wait[=D], --help (stops).
struct fixture {
  std::string name;
  int count = 0;
  bool fast = false;
  std::optional<std::string> wait;
  bool wait_given = false;
  bool help = false;

  std::vector<flag> flags() {
    return {
        {"name", takes::value, assign(name)},
        {"count", takes::value,
         [this](const std::optional<std::string>& v) {
           const auto n = to_integer<int>(*v);
           if (!n) {
             throw usage_error("--count must be an integer, got '" + *v + "'");
           }
           count = *n;
         }},
        {"fast", takes::nothing, enable(fast)},
        {"wait", takes::optional,
         [this](const std::optional<std::string>& v) {
           wait_given = true;
           wait = v;
         }},
        {"help", takes::nothing, enable(help), true},
    };
  }
};

/// The usage_error message of parsing `args`, or "" when it parses.
std::string error_of(const std::vector<std::string>& args, const syntax& s = {}) {
  fixture f;
  try {
    parse(args, f.flags(), s);
  } catch (const usage_error& e) {
    return e.what();
  }
  return {};
}

syntax with_words() {
  syntax s;
  s.words = true;
  s.double_dash_ends_flags = true;
  return s;
}

} // namespace

TEST_SUITE("tools_unit") {
  TEST_CASE("flags in any order with words; values as written") {
    fixture f;
    const auto out = parse({"drain", "--name=a=b", "n1", "--fast", "--count=-7", "--wait"},
                           f.flags(), with_words());
    CHECK(out.words == std::vector<std::string>{"drain", "n1"});
    CHECK(!out.stopped);
    CHECK(f.name == "a=b");
    CHECK(f.count == -7);
    CHECK(f.fast);
    CHECK(f.wait_given);
    CHECK(!f.wait);
    fixture g;
    parse({"--wait=", "--name=x", "--name=y"}, g.flags(), with_words());
    CHECK(g.wait == std::string{});
    CHECK(g.name == "y"); // not unique: the last one counts
  }

  TEST_CASE("-- ends the flags; '-x' and '-' are words") {
    fixture f;
    const auto out = parse({"-x", "--", "--fast", "-"}, f.flags(), with_words());
    CHECK(out.words == std::vector<std::string>{"-x", "--fast", "-"});
    CHECK(!f.fast);
  }

  TEST_CASE("each problem in the common wording") {
    CHECK(error_of({"--bogus"}) == "unknown flag --bogus");
    CHECK(error_of({"--=x"}) == "unknown flag --");
    CHECK(error_of({"--name"}) == "--name needs a value: --name=VALUE");
    CHECK(error_of({"--name="}) == "--name needs a value: --name=VALUE");
    CHECK(error_of({"--fast=yes"}) == "--fast takes no value");
    CHECK(error_of({"--fast="}) == "--fast takes no value");
    CHECK(error_of({"extra"}) == "unexpected argument 'extra' (flags are --name=value)");
    CHECK(error_of({"--"}) == "unexpected argument '--' (flags are --name=value)");
    CHECK(error_of({"--count=x"}) == "--count must be an integer, got 'x'");
    syntax unique;
    unique.unique = true;
    CHECK(error_of({"--fast", "--fast"}, unique) == "--fast given twice");
    syntax empty_ok;
    empty_ok.empty_is_missing = false;
    CHECK(error_of({"--name="}, empty_ok).empty());
    CHECK(error_of({"--name"}, empty_ok) == "--name needs a value: --name=VALUE");
  }

  TEST_CASE("the first problem in order wins; a stopping flag ends the line") {
    CHECK(error_of({"--bogus", "--name"}) == "unknown flag --bogus");
    CHECK(error_of({"--name", "--bogus"}) == "--name needs a value: --name=VALUE");
    CHECK(error_of({"--help", "--bogus", "extra"}).empty());
    CHECK(error_of({"--count=x", "--help"}) == "--count must be an integer, got 'x'");
    fixture f;
    const auto out = parse({"--fast", "--help", "--count=3"}, f.flags(), {});
    CHECK(out.stopped);
    CHECK(f.help);
    CHECK(f.fast);
    CHECK(f.count == 0);
    // Unique: a repeated flag is reported after what is wrong with its value.
    syntax unique;
    unique.unique = true;
    CHECK(error_of({"--name=a", "--name="}, unique) == "--name needs a value: --name=VALUE");
    CHECK(error_of({"--help", "--fast", "--fast"}, unique).empty());
  }

  TEST_CASE("help aliases, anywhere") {
    syntax s;
    s.help_aliases = {"-h"};
    fixture f;
    CHECK(parse({"--fast", "-h", "--bogus"}, f.flags(), s).stopped);
    CHECK(f.help);
    CHECK(error_of({"-h=1"}, s) == "unexpected argument '-h=1' (flags are --name=value)");
  }

  TEST_CASE("check_shape: words and repeats before any flag is looked up") {
    syntax s;
    s.unique = true;
    fixture f;
    const auto flags = f.flags();
    const auto line = read({"--bogus", "--count=1", "--count=2"}, flags, s);
    CHECK_THROWS_WITH_AS(check_shape(line, s), "--count given twice", usage_error);
    const auto words = read({"--bogus", "extra"}, flags, s);
    CHECK_THROWS_WITH_AS(check_shape(words, s),
                         "unexpected argument 'extra' (flags are --name=value)", usage_error);
    const auto fine = read({"--bogus", "--help"}, flags, s);
    CHECK_NOTHROW(check_shape(fine, s));
    CHECK(has(fine, "help"));
    CHECK(!has(fine, "fast"));
  }

  TEST_CASE("values after a space: every argument is a flag") {
    syntax s;
    s.value_after_space = true;
    fixture f;
    const auto out = parse({"--count", "3", "--fast", "--name", "--fast"}, f.flags(), s);
    CHECK(out.words.empty());
    CHECK(f.count == 3);
    CHECK(f.fast);
    CHECK(f.name == "--fast"); // a flag that takes a value takes the next argument, whatever it is
    const auto line = read({"extra", "1", "--bogus"}, f.flags(), s);
    REQUIRE(line.size() == 2);
    CHECK(line[0].is_flag);
    CHECK(line[0].text == "extra");
    CHECK(line[0].name.empty()); // not written with "--": never one of the tool's flags
    CHECK(line[0].value == std::string{"1"});
    CHECK(!line[1].value);
    CHECK(error_of({"extra", "1"}, s) == "unknown flag extra");
    CHECK(error_of({"--count"}, s) == "--count needs a value: --count=VALUE");
  }

  TEST_CASE("a tool's own wording gets the problem and the argument") {
    syntax s;
    s.wording = [](problem p, const argument& a) {
      return p == problem::unknown_flag ? a.text + " is not a flag of 'token'" : message(p, a);
    };
    CHECK(error_of({"--admin=x"}, s) == "--admin is not a flag of 'token'");
    CHECK(error_of({"--name"}, s) == "--name needs a value: --name=VALUE");
  }

  TEST_CASE("values: whole-text integers and numbers, lists") {
    CHECK(to_integer<int>("42") == 42);
    CHECK(to_integer<int>("-42") == -42);
    CHECK(!to_integer<unsigned>("-1"));
    CHECK(!to_integer<int>("+1"));
    CHECK(!to_integer<int>("1x"));
    CHECK(!to_integer<int>(""));
    CHECK(!to_integer<int>(" 1"));
    CHECK(!to_integer<int>("99999999999"));
    CHECK(to_integer<uint64_t>("18446744073709551615") == UINT64_MAX);
    CHECK(to_number("2.5") == 2.5);
    CHECK(to_number("-1e3") == -1000.0);
    CHECK(!to_number("inf"));
    CHECK(!to_number("nan"));
    CHECK(!to_number("1.5s"));
    CHECK(!to_number(""));
    CHECK(split_list("a,b") == std::vector<std::string>{"a", "b"});
    CHECK(split_list("") == std::vector<std::string>{""});
    CHECK(split_list("a,") == std::vector<std::string>{"a", ""});
    CHECK(split_list("a:b", ':') == std::vector<std::string>{"a", "b"});
  }
}

} // namespace surge::tools::cli
