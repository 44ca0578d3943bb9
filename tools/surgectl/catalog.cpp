// surgectl catalog: generate (a synthetic catalog as NDJSON), queries (search queries drawn from
// the same vocabulary, for the search benchmark) and import (catalog_import.cpp).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "catalog_vocabulary.hpp"
#include "surge/net/json_writer.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

namespace {

namespace vocab = catalog_vocabulary;

constexpr const char* catalog_usage_text =
    R"(usage: surgectl catalog generate --count=N [--seed=S] [--categories=K]
       surgectl catalog queries --count=N [--seed=S] [--categories=K]
       surgectl [--admin=URL] [--token=T] catalog import [--file=-] [--batch=5000]
                [--concurrency=4] [--max-bytes=65536]

generate  writes N synthetic products as NDJSON on stdout, one per line, in the form
          POST /admin/v1/products:import takes: sku, name, description, category,
          price_cents, currency, stock. Brands, product types and variants make the names
          ("Sony WH-4821 Wireless Noise Cancelling Headphones, Black"), 1 to 3 sentences of the
          type's features the descriptions; K of 20 categories (default 20) with skewed sizes,
          log-normal prices per category, about 8 % of the products out of stock, unique SKUs
          (BRAND-MODEL-VARIANT-INDEX). The same N, S and K always give the same lines, and the
          first M lines of N > M are the lines of M.
queries   writes N distinct search queries drawn from the same vocabulary (K, S as generate), one
          per line as KIND<TAB>Q<TAB>CATEGORY, the kinds in turn: word (a brand or type word),
          prefix (its first 3 to 5 letters), typo (one letter swapped, dropped or changed), words
          (brand and type word; CATEGORY set, empty otherwise). For scripts/benchmarks.sh.
import    reads NDJSON (--file, default stdin "-") and posts it to the admin API's
          POST /admin/v1/products:import in batches of --batch lines (1 to 10000) and at most
          --max-bytes (the node's http.body_limit, 65536 by default), --concurrency batches at
          once (1 to 16); a batch that gets 503 or no answer is sent again (backoff, up to 8
          tries: the import is idempotent per SKU), one that gets 413 as two halves. Progress on
          stderr, then a summary.
          --admin, --token: as for every command (surgectl --help).

  --seed=S          generate, queries: a number (default 1)
  --categories=K    generate, queries: 1 to 20 (default 20)

exit status: 0 ok; 1 a line was refused (the first errors are printed) or stdout failed;
2 usage error; 3 cannot connect (after the retries)
)";

cli_error usage(const std::string& message) {
  return cli_error(exit_usage, message);
}

/// splitmix64: small, fast, and the same sequence everywhere (std distributions are not).
class rng {
 public:
  explicit rng(uint64_t seed)
      : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// In [0, n).
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  /// In [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Standard normal (Box-Muller).
  double normal() {
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  uint64_t s_;
};

/// Letters and digits of `s`, upper case.
std::string alnum_upper(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

/// "Audio-Technica" -> "ADT": the first letter and the next consonants, upper case, 3 letters.
std::string code_of(const std::string& word) {
  const auto letters = alnum_upper(word);
  if (letters.size() <= 3) {
    return letters;
  }
  std::string out{letters[0]};
  for (std::size_t i = 1; i < letters.size() && out.size() < 3; ++i) {
    if (std::string_view{"AEIOU"}.find(letters[i]) == std::string_view::npos) {
      out += letters[i];
    }
  }
  for (std::size_t i = 1; i < letters.size() && out.size() < 3; ++i) {
    out += letters[i];
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

struct gen_options {
  uint64_t count = 0;
  uint64_t seed = 1;
  std::size_t categories = 20;
};

/// Picks categories 0..k-1 with weight 1 / (i + 1)^0.9.
class category_picker {
 public:
  explicit category_picker(std::size_t k) {
    double sum = 0;
    for (std::size_t i = 0; i < k; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), 0.9);
      cumulative_.push_back(sum);
    }
    for (auto& c : cumulative_) {
      c /= sum;
    }
  }
  std::size_t pick(rng& r) const {
    const double u = r.uniform();
    const auto at = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
    return std::min<std::size_t>(static_cast<std::size_t>(at - cumulative_.begin()),
                                 cumulative_.size() - 1);
  }

 private:
  std::vector<double> cumulative_;
};

const char* const model_suffixes[] = {"", "", "", "", "X", "S", "Pro", "Max", "II", "XM5", "Plus"};

/// Product `index`'s line (without the newline).
std::string product_line(rng& r, const category_picker& cats, uint64_t index) {
  const auto& c = vocab::categories()[cats.pick(r)];
  const std::string brand = r.pick(c.brands);
  const std::string type = r.pick(c.types);
  const std::string variant = r.pick(c.variants);
  const std::string suffix =
      model_suffixes[r.below(sizeof model_suffixes / sizeof model_suffixes[0])];
  const std::string model =
      std::string{r.pick(c.prefixes)} + "-" + std::to_string(100 + r.below(9900)) + suffix;
  char idx[24];
  std::snprintf(idx, sizeof idx, "%05llu", static_cast<unsigned long long>(index));
  const std::string sku =
      code_of(brand) + "-" + alnum_upper(model) + "-" + code_of(variant) + "-" + idx;
  const std::string name = brand + " " + model + " " + type + ", " + variant;

  // 1 to 3 sentences from the category's features.
  const auto nf = c.features.size();
  const auto i1 = r.below(nf);
  const std::string f1 = c.features[i1];
  const std::string f2 = c.features[(i1 + 1 + r.below(nf - 1)) % nf]; // another one
  std::string description =
      "The " + brand + " " + model + " " + lower(type) + " with " + f1 + " and " + f2 + ".";
  const auto sentences = 1 + r.below(3);
  if (sentences >= 2) {
    std::string f3 = r.pick(c.features);
    f3[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(f3[0])));
    description += " " + f3 +
                   (r.below(2) == 0 ? " makes it a favourite for everyday use."
                                    : " sets it apart in its class.");
  }
  if (sentences == 3) {
    description += " Available in " + variant + ", backed by a " + std::to_string(1 + r.below(3)) +
                   "-year warranty.";
  }

  // Log-normal price around the category's median, ending in .99.
  const double dollars = c.median_dollars * std::exp(c.sigma * r.normal());
  const int64_t whole = std::clamp<int64_t>(std::llround(dollars), 1, 50000);
  const int64_t price_cents = whole * 100 - 1;
  // About 8 % out of stock; the rest log-uniform from 1 to 1000.
  const int64_t stock =
      r.below(100) < 8 ? 0 : static_cast<int64_t>(std::exp(r.uniform() * std::log(1000.0))) + 1;

  net::json::writer w{name.size() + description.size() + 160};
  w.begin_object()
      .member("sku", sku)
      .member("name", name)
      .member("description", description)
      .member("category", c.slug)
      .member("price_cents", price_cents)
      .member("currency", "USD")
      .member("stock", stock)
      .end_object();
  return w.take();
}

/// Writes `buf` to stdout; throws when it cannot (a closed pipe).
void flush_out(std::string& buf) {
  if (!buf.empty() && std::fwrite(buf.data(), 1, buf.size(), stdout) != buf.size()) {
    throw cli_error(exit_server_error, "cannot write to stdout");
  }
  buf.clear();
}

int generate(const gen_options& o) {
  rng r{o.seed};
  const category_picker cats{o.categories};
  std::string buf;
  buf.reserve(1 << 20);
  for (uint64_t i = 0; i < o.count; ++i) {
    buf += product_line(r, cats, i);
    buf += '\n';
    if (buf.size() > (1 << 20) - 4096) {
      flush_out(buf);
    }
  }
  flush_out(buf);
  if (std::fflush(stdout) != 0) {
    throw cli_error(exit_server_error, "cannot write to stdout");
  }
  return exit_ok;
}

/// The words of `phrase` worth searching for: letters only, 4 or more, lower case.
std::vector<std::string> search_words(const std::string& phrase) {
  std::vector<std::string> out;
  std::string w;
  for (std::size_t i = 0; i <= phrase.size(); ++i) {
    const char c = i < phrase.size() ? phrase[i] : ' ';
    if (std::isalpha(static_cast<unsigned char>(c)) != 0) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      if (w.size() >= 4 && w != "with") {
        out.push_back(w);
      }
      w.clear();
    }
  }
  return out;
}

/// `w` with one edit: adjacent letters swapped, a letter dropped, or a letter changed.
std::string typo_of(rng& r, const std::string& w) {
  std::string t = w;
  const auto p = 1 + r.below(w.size() - 2); // never the first or the last letter
  switch (r.below(3)) {
  case 0:
    std::swap(t[p], t[p + 1]);
    break;
  case 1:
    t.erase(p, 1);
    break;
  default:
    t[p] = t[p] == 'z' ? 'a' : static_cast<char>(t[p] + 1);
  }
  return t == w ? w.substr(0, p) + w.substr(p + 1) : t;
}

int queries(const gen_options& o) {
  rng r{o.seed ^ 0x5eed5eed5eedULL};
  const auto& all = vocab::categories();
  // Brand and type words per category, and the words of every category used.
  std::vector<std::vector<std::string>> type_words(o.categories);
  std::vector<std::string> words;
  std::set<std::string> seen_word;
  for (std::size_t i = 0; i < o.categories; ++i) {
    for (const auto* t : all[i].types) {
      for (auto& w : search_words(t)) {
        type_words[i].push_back(w);
        if (seen_word.insert(w).second) {
          words.push_back(w);
        }
      }
    }
    for (const auto* b : all[i].brands) {
      for (auto& w : search_words(b)) {
        if (seen_word.insert(w).second) {
          words.push_back(w);
        }
      }
    }
  }
  std::vector<std::string> long_words; // 5 letters or more: for prefixes and typos
  std::copy_if(words.begin(), words.end(), std::back_inserter(long_words),
               [](const std::string& w) { return w.size() >= 5; });
  std::set<std::string> emitted;
  std::string buf;
  uint64_t n = 0;
  // Bounded: a small vocabulary may not have N distinct queries.
  for (uint64_t tries = 0; n < o.count && tries < o.count * 50; ++tries) {
    std::string kind;
    std::string q;
    std::string category;
    switch (n % 4) {
    case 0:
      kind = "word";
      q = r.pick(words);
      break;
    case 1: {
      kind = "prefix";
      const auto& w = r.pick(long_words);
      q = w.substr(0, std::min<std::size_t>(w.size() - 1, 3 + r.below(3)));
      break;
    }
    case 2:
      kind = "typo";
      q = typo_of(r, r.pick(long_words));
      break;
    default: {
      kind = "words";
      const auto ci = r.below(o.categories);
      const auto brand = search_words(r.pick(all[ci].brands));
      if (brand.empty() || type_words[ci].empty()) {
        continue;
      }
      q = brand.front() + " " + r.pick(type_words[ci]);
      category = all[ci].slug;
    }
    }
    auto line = kind + "\t" + q + "\t" + category + "\n";
    if (emitted.insert(line).second) {
      buf += line;
      ++n;
    }
  }
  flush_out(buf);
  std::fflush(stdout);
  if (n < o.count) {
    std::cerr << "surgectl: catalog queries: only " << n
              << " distinct queries in this vocabulary\n";
  }
  return exit_ok;
}

} // namespace

int cmd_catalog(const std::vector<std::string>& args) {
  auto parsed = parse_own_flags(args, "catalog",
                                {"count", "seed", "categories", "file", "batch", "concurrency",
                                 "max-bytes", "admin", "token"});
  const auto& flags = parsed.values;
  const auto& words = parsed.words;
  const bool help = parsed.help;
  if (help) {
    std::cout << catalog_usage_text;
    return exit_ok;
  }
  if (words.size() != 2) {
    throw usage(words.size() < 2 ? "missing arguments: surgectl catalog generate|queries|import"
                                 : "too many arguments: surgectl catalog " + words[1]);
  }
  const auto& sub = words[1];
  const auto only = [&flags, &sub](std::initializer_list<const char*> allowed) {
    for (const auto& [name, v] : flags) {
      if (std::find_if(allowed.begin(), allowed.end(),
                       [&name](const char* a) { return name == a; }) == allowed.end()) {
        throw usage("--" + name + " is not a flag of 'catalog " + sub + "'");
      }
    }
  };
  const auto number = [&flags](const char* name, uint64_t lo, uint64_t hi, uint64_t fallback) {
    const auto it = flags.find(name);
    if (it == flags.end()) {
      return fallback;
    }
    const auto x = cli::to_integer<uint64_t>(it->second);
    if (!x || *x < lo || *x > hi) {
      throw usage(std::string{"--"} + name + " expects an integer from " + std::to_string(lo) +
                  " to " + std::to_string(hi) + ", got '" + it->second + "'");
    }
    return *x;
  };
  if (sub == "generate" || sub == "queries") {
    only({"count", "seed", "categories"});
    if (flags.count("count") == 0) {
      throw usage("catalog " + sub + " needs --count=N");
    }
    gen_options o;
    o.count = number("count", 1, 100'000'000, 0);
    o.seed = number("seed", 0, UINT64_MAX, 1);
    o.categories = number("categories", 1, vocab::categories().size(), vocab::categories().size());
    return sub == "generate" ? generate(o) : queries(o);
  }
  if (sub == "import") {
    only({"file", "batch", "concurrency", "max-bytes", "admin", "token"});
    import_options o;
    o.batch = number("batch", 1, 10000, o.batch);
    o.concurrency = number("concurrency", 1, 16, o.concurrency);
    o.max_bytes = number("max-bytes", 1024, 1 << 30, o.max_bytes);
    if (const auto f = flags.find("file"); f != flags.end()) {
      o.file = f->second;
    }
    std::optional<std::string> admin;
    std::optional<std::string> token;
    if (const auto a = flags.find("admin"); a != flags.end()) {
      admin = a->second;
    }
    if (const auto t = flags.find("token"); t != flags.end()) {
      token = t->second;
    }
    return catalog_import(open_session(admin, token), o);
  }
  throw usage("unknown catalog command '" + sub + "' (generate, queries, import)");
}

} // namespace surge::ctl
