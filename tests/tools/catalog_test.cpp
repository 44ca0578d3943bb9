// surgectl catalog: the generator's lines (deterministic, valid JSON each, unique SKUs, the right
// count, categories and prices in range), its usage errors, the queries it draws, and
// `catalog import` into a real surge-node child process, read back through
// GET /api/v1/products?category=...; and the judged search set (tests/data/search) through
// GET /api/v1/search on a node holding it among generated products.

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "api.hpp"
#include "run_program.hpp"
#include "temp_path.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;

/// Runs `surgectl catalog ARGS...` (no admin token from the environment) and returns its result.
surge::test::program_result catalog(std::vector<std::string> args) {
  args.insert(args.begin(), {SURGECTL_BINARY, "catalog"});
  auto env = tools::environment([](std::string_view e) {
    return !e.starts_with("SURGE_ADMIN_TOKEN=") && !e.starts_with("SURGECTL_ADMIN=");
  });
  auto r = surge::test::run_program(args, env, 120s);
  REQUIRE_FALSE_MESSAGE(r.timed_out, "surgectl catalog did not exit in time");
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

/// The 20 categories of the generator's vocabulary, largest first.
const std::vector<std::string> all_categories = {
    "headphones", "smartphones", "laptops", "televisions", "kitchen",      "shoes",  "clothing",
    "gaming",     "furniture",   "cameras", "beauty",      "toys",         "sports", "tools",
    "vacuums",    "watches",     "books",   "garden",      "pet-supplies", "office"};

} // namespace

TEST_SUITE("surgectl catalog") {

  TEST_CASE("generate: deterministic per seed, valid lines, unique SKUs, ranges") {
    const auto a = catalog({"generate", "--count=3000", "--seed=5"});
    REQUIRE_MESSAGE(a.code == 0, a.err);
    const auto again = catalog({"generate", "--count=3000", "--seed=5"});
    CHECK(again.out == a.out);
    const auto other = catalog({"generate", "--count=3000", "--seed=6"});
    CHECK(other.out != a.out);
    // The first M lines of a larger count are the lines of M.
    const auto shorter = catalog({"generate", "--count=1000", "--seed=5"});
    CHECK(a.out.starts_with(shorter.out));

    const auto lines = lines_of(a.out);
    REQUIRE(lines.size() == 3000);
    std::set<std::string> skus;
    std::map<std::string, int> per_category;
    int out_of_stock = 0;
    for (const auto& l : lines) {
      const auto v = parse_json(l);
      REQUIRE(v.is_object());
      const auto sku = str_of(v, "sku");
      CHECK_MESSAGE(skus.insert(sku).second, "duplicate SKU " << sku);
      CHECK(sku.size() <= 64);
      const auto name = str_of(v, "name");
      CHECK_FALSE(name.empty());
      CHECK(name.size() <= 200);
      CHECK(str_of(v, "description").size() > name.size() / 2);
      CHECK(str_of(v, "currency") == "USD");
      const auto price = int_of(v, "price_cents");
      CHECK(price >= 99);
      CHECK(price <= 5'000'000);
      CHECK(price % 100 == 99);
      const auto stock = int_of(v, "stock");
      CHECK(stock >= 0);
      CHECK(stock <= 1001);
      out_of_stock += stock == 0 ? 1 : 0;
      ++per_category[str_of(v, "category")];
    }
    CHECK(per_category.size() == all_categories.size());
    for (const auto& [c, n] : per_category) {
      CHECK_MESSAGE(
          std::find(all_categories.begin(), all_categories.end(), c) != all_categories.end(), c);
    }
    // Skewed: the first category is much larger than the last.
    CHECK(per_category["headphones"] > 5 * per_category["office"]);
    CHECK(out_of_stock > 0);
    CHECK(out_of_stock < 600);

    const auto few = catalog({"generate", "--count=500", "--categories=3"});
    REQUIRE(few.code == 0);
    std::set<std::string> cats;
    for (const auto& l : lines_of(few.out)) {
      cats.insert(str_of(parse_json(l), "category"));
    }
    CHECK(cats == std::set<std::string>{"headphones", "smartphones", "laptops"});
  }

  TEST_CASE("queries: the kinds in turn, distinct, from the vocabulary") {
    const auto r = catalog({"queries", "--count=200", "--seed=3"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 200);
    CHECK(std::set<std::string>(lines.begin(), lines.end()).size() == 200);
    const std::vector<std::string> kinds = {"word", "prefix", "typo", "words"};
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const auto tab1 = lines[i].find('\t');
      const auto tab2 = lines[i].find('\t', tab1 + 1);
      REQUIRE(tab2 != std::string::npos);
      CHECK(lines[i].substr(0, tab1) == kinds[i % 4]);
      CHECK(tab2 > tab1 + 1); // a query
      const auto category = lines[i].substr(tab2 + 1);
      CHECK((i % 4 == 3) == !category.empty());
    }
  }

  TEST_CASE("usage errors exit 2 with a message") {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {},
             {"generate"},
             {"generate", "--count=0"},
             {"generate", "--count=x"},
             {"generate", "--count=10", "--categories=21"},
             {"generate", "--count=10", "--seed=-1"},
             {"generate", "--count=10", "--bogus"},
             {"generate", "--count=10", "--batch=5"},
             {"import", "--count=10"},
             {"import", "--batch=10001"},
             {"import", "--concurrency=0"},
             {"frobnicate", "--count=1"},
             {"generate", "extra", "--count=1"},
         }) {
      const auto r = catalog(args);
      CHECK_MESSAGE(r.code == 2, "args: " << args.size() << " " << r.err);
      CHECK_FALSE(r.err.empty());
      CHECK(r.out.empty());
    }
    const auto help = catalog({"--help"});
    CHECK(help.code == 0);
    CHECK(help.out.find("catalog generate --count=N") != std::string::npos);
  }

  TEST_CASE("import: 2,000 generated products into a node, read back by category") {
    node_process node;
    api a{node};
    surge::test::temp_path file{"catalog", ".ndjson"};
    const auto gen = catalog({"generate", "--count=2000", "--seed=11", "--categories=5"});
    REQUIRE(gen.code == 0);
    std::ofstream{file.path()} << gen.out;
    const auto admin = "--admin=http://127.0.0.1:" + std::to_string(node.admin_port());
    // Small batches: several requests, several at once.
    const auto imp = catalog({"import", "--file=" + file.path(), admin, "--batch=300"});
    REQUIRE_MESSAGE(imp.code == 0, imp.err);
    CHECK(imp.err.find("2,000 imported, 0 refused") != std::string::npos);

    // Expected: every product of each category, by SKU.
    std::map<std::string, std::map<std::string, json::value>> expected;
    for (const auto& l : lines_of(gen.out)) {
      auto v = parse_json(l);
      expected[str_of(v, "category")][str_of(v, "sku")] = v;
    }
    REQUIRE(expected.size() == 5);
    for (const auto& [category, products] : expected) {
      std::map<std::string, json::value> got;
      std::string cursor;
      for (int page = 0; page < 100; ++page) {
        auto r = a.store().get("/api/v1/products?category=" + category + "&limit=100" +
                               (cursor.empty() ? "" : "&cursor=" + cursor));
        REQUIRE_MESSAGE(r.status == 200, describe(r));
        const auto body = parse_json(r.body);
        for (const auto& item : array_of(body, "items")) {
          got[str_of(item, "sku")] = item;
        }
        const auto& next = member(body, "next_cursor");
        if (next.is_null()) {
          break;
        }
        cursor = std::get<std::string>(next.get());
      }
      REQUIRE_MESSAGE(got.size() == products.size(), category);
      for (const auto& [sku, want] : products) {
        REQUIRE_MESSAGE(got.count(sku) == 1, sku);
        const auto& item = got.at(sku);
        CHECK(str_of(item, "name") == str_of(want, "name"));
        CHECK(str_of(item, "description") == str_of(want, "description"));
        CHECK(int_of(item, "price_cents") == int_of(want, "price_cents"));
      }
    }
    // Stock came along: one product's on_hand is its line's "stock".
    const auto& [sku, want] = *expected.begin()->second.begin();
    CHECK(int_of(a.stock(sku), "on_hand") == int_of(want, "stock"));
  }

  TEST_CASE("import: a refused line exits 1 and names the line; the others are imported") {
    node_process node;
    surge::test::temp_path file{"catalog-bad", ".ndjson"};
    std::ofstream{file.path()} << R"({"sku":"OK-1","name":"One","price_cents":100})"
                               << "\n\n"
                               << R"({"sku":"BAD SKU","name":"Two","price_cents":100})"
                               << "\n"
                               << R"({"sku":"OK-2","name":"Three","price_cents":-5})"
                               << "\n"
                               << R"({"sku":"OK-3","name":"Four","price_cents":100})"
                               << "\n";
    const auto r = catalog({"import", "--file=" + file.path(),
                            "--admin=http://127.0.0.1:" + std::to_string(node.admin_port())});
    CHECK_MESSAGE(r.code == 1, r.err);
    CHECK(r.err.find("line 3: bad_request") != std::string::npos);
    CHECK(r.err.find("line 4: bad_request") != std::string::npos);
    CHECK(r.err.find("2 imported, 2 refused") != std::string::npos);
  }

  TEST_CASE("import: no node at the address exits 3 after its retries") {
    surge::test::temp_path file{"catalog-none", ".ndjson"};
    std::ofstream{file.path()} << R"({"sku":"A","name":"A","price_cents":1})"
                               << "\n";
    // Port 1 on loopback: nothing listens there (connection refused at once).
    const auto r = catalog({"import", "--file=" + file.path(), "--admin=http://127.0.0.1:1"});
    CHECK_MESSAGE(r.code == 3, r.err);
    CHECK(r.err.find("no answer after 8 tries") != std::string::npos);
  }

  TEST_CASE("judged search set over HTTP: every expected SKU in the top 5; then among 2,000 "
            "generated products") {
    node_process node;
    api a{node};
    const auto admin = "--admin=http://127.0.0.1:" + std::to_string(node.admin_port());
    auto import = [&](const std::string& file) {
      const auto imp = catalog({"import", "--file=" + file, admin});
      REQUIRE_MESSAGE(imp.code == 0, imp.err);
    };
    struct tally {
      int queries = 0;
      int all_in_top5 = 0; ///< queries with every expected SKU in the top 5
      double precision = 0;
    };
    // Runs every judged query; `strict` kinds must have every expected SKU in the top 5.
    auto run_set = [&](const std::string& label, const std::set<std::string>& strict) {
      std::ifstream in{SURGE_SEARCH_DATA_DIR "/judged_queries.tsv"};
      REQUIRE(in);
      std::map<std::string, tally> by_kind;
      for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') {
          continue;
        }
        std::istringstream fields{line};
        std::string text, expected, kind;
        std::getline(fields, text, '\t');
        std::getline(fields, expected, '\t');
        std::getline(fields, kind, '\t');
        std::vector<std::string> want;
        std::istringstream list{expected};
        for (std::string sku; std::getline(list, sku, ',');) {
          want.push_back(sku);
        }
        std::string encoded;
        for (unsigned char c : text) {
          char buf[4];
          std::snprintf(buf, sizeof(buf), "%%%02X", c);
          encoded += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string{buf};
        }
        auto r = a.store().get("/api/v1/search?limit=5&q=" + encoded);
        REQUIRE_MESSAGE(r.status == 200, text << ": " << describe(r));
        const auto body = parse_json(r.body);
        std::vector<std::string> top;
        for (const auto& item : array_of(body, "items")) {
          top.push_back(str_of(item, "sku"));
        }
        int found = 0;
        for (const auto& sku : want) {
          const bool hit = std::find(top.begin(), top.end(), sku) != top.end();
          if (strict.count(kind) != 0 || strict.count("*") != 0) {
            CHECK_MESSAGE(hit, label << ": '" << text << "' (" << kind << "): " << sku
                                     << " not in the top 5");
          }
          found += hit;
        }
        // Precision@5 as tests/data/search/README.md defines it for this set.
        const double p = static_cast<double>(found) /
                         static_cast<double>(std::clamp<std::size_t>(want.size(), 1, 5));
        for (auto* t : {&by_kind[kind], &by_kind["overall"]}) {
          ++t->queries;
          t->all_in_top5 += found == static_cast<int>(want.size());
          t->precision += p;
        }
      }
      CHECK(by_kind["overall"].queries >= 30);
      for (const auto& [kind, t] : by_kind) {
        MESSAGE(label << ": " << kind << ": " << t.queries << " queries, " << t.all_in_top5
                      << " with every expected SKU in the top 5, precision@5 "
                      << t.precision / t.queries);
      }
    };
    import(SURGE_SEARCH_DATA_DIR "/judged_catalog.ndjson");
    run_set("judged catalog", {"*"});
    // Among 2,000 generated products, generic words ("headphone", "samsung tv") find many
    // equally good products, so only what names one product must still come first.
    surge::test::temp_path noise{"noise", ".ndjson"};
    const auto gen = catalog({"generate", "--count=2000", "--seed=15"});
    REQUIRE(gen.code == 0);
    std::ofstream{noise.path()} << gen.out;
    import(noise.path());
    run_set("judged catalog + 2,000 generated", {"exact-sku", "word", "exclusion"});
  }
}

} // namespace surge::itest
