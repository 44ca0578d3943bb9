// POST /admin/v1/products:import: one product per NDJSON line, each applied through its SKU
// actor exactly as PUT /admin/v1/products/{sku} (and, with "stock", POST .../stock {"set"})
// would, so that SKU actors, their journals and the page caches stay right.

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "call.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "surge/net/json_writer.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// The most lines one import may carry.
constexpr std::size_t max_lines = 10000;
/// How many SKUs one import applies at a time at most.
constexpr std::size_t max_in_flight = 8;

struct line_error {
  std::size_t line = 0; ///< from 1
  std::string code;
  std::string message;
};

/// One good line: the product and the stock to set, if any.
struct import_item {
  std::size_t line = 0;
  persistence::product_record product;
  std::optional<int64_t> stock;
};

/// An import under way. Lines of one SKU form a group applied in line order, one after the
/// other (so the last line of a SKU wins); groups run at most max_in_flight at a time; the last
/// one to finish answers. Thread-safe (completions run on caller actors' threads).
class import_run : public std::enable_shared_from_this<import_run> {
 public:
  import_run(std::shared_ptr<bridge_env> env, std::vector<import_item> items,
             std::vector<line_error> errors, responder r)
      : env_(std::move(env))
      , groups_(by_sku(std::move(items)))
      , r_(std::move(r))
      , errors_(std::move(errors)) {}

  void start() {
    if (groups_.empty()) {
      return answer();
    }
    const auto n = std::min(max_in_flight, groups_.size());
    for (std::size_t i = 0; i < n; ++i) {
      next_group();
    }
  }

 private:
  using group = std::vector<import_item>;

  static std::vector<group> by_sku(std::vector<import_item> items) {
    std::vector<group> out;
    std::map<std::string, std::size_t> index;
    for (auto& item : items) {
      auto [at, fresh] = index.emplace(item.product.sku, out.size());
      if (fresh) {
        out.emplace_back();
      }
      out[at->second].push_back(std::move(item));
    }
    return out;
  }

  /// Starts the next group not started yet, if any.
  void next_group() {
    std::size_t g = 0;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (started_ == groups_.size()) {
        return;
      }
      g = started_++;
    }
    apply(g, 0);
  }

  /// Applies line `i` of group `g`: the product, then its stock if any.
  void apply(std::size_t g, std::size_t i) {
    const auto& item = groups_[g][i];
    auto self = shared_from_this();
    ask<actors::product_view>(
        *env_, env_->skus->acquire_routed(item.product.sku),
        [self, g, i](actors::product_view&) {
          drop_cached(*self->env_, self->groups_[g][i].product.sku);
          self->set_stock(g, i);
        },
        [self, g, i](caf::error& err) { self->done(g, i, err); }, actors::product_atom::value,
        item.product);
  }

  void set_stock(std::size_t g, std::size_t i) {
    const auto& item = groups_[g][i];
    if (!item.stock) {
      return done(g, i, caf::none);
    }
    auto self = shared_from_this();
    ask<actors::stock_view>(
        *env_, env_->skus->acquire_routed(item.product.sku),
        [self, g, i](actors::stock_view&) {
          drop_cached(*self->env_, self->groups_[g][i].product.sku);
          self->done(g, i, caf::none);
        },
        [self, g, i](caf::error& err) { self->done(g, i, err); }, actors::stock_atom::value,
        actors::stock_change{true, *item.stock});
  }

  void done(std::size_t g, std::size_t i, const caf::error& err) {
    bool last = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (err) {
        auto e = api_error_of(err);
        errors_.push_back({groups_[g][i].line, std::move(e.code), std::move(e.message)});
      } else {
        ++imported_;
      }
      if (i + 1 == groups_[g].size()) {
        last = ++finished_ == groups_.size();
      }
    }
    if (i + 1 < groups_[g].size()) {
      return apply(g, i + 1);
    }
    if (last) {
      return answer();
    }
    next_group();
  }

  void answer() {
    std::sort(errors_.begin(), errors_.end(),
              [](const auto& a, const auto& b) { return a.line < b.line; });
    json::writer w{64 + errors_.size() * 128};
    w.begin_object().member("imported", static_cast<int64_t>(imported_));
    w.member("failed", static_cast<int64_t>(errors_.size())).key("errors").begin_array();
    for (const auto& e : errors_) {
      w.begin_object().member("line", static_cast<int64_t>(e.line)).member("code", e.code);
      w.member("message", e.message).end_object();
    }
    r_(json_response(200, w.end_array().end_object().take()));
  }

  const std::shared_ptr<bridge_env> env_;
  const std::vector<group> groups_;
  const responder r_;
  std::mutex mtx_;
  std::vector<line_error> errors_; ///< guarded by mtx_ until the answer
  std::size_t started_ = 0;        ///< groups started
  std::size_t finished_ = 0;       ///< groups finished
  std::size_t imported_ = 0;
};

/// Line `n`'s item, or its error.
std::optional<import_item> item_of(std::string_view text, std::size_t n, line_error& err) {
  err = line_error{n, "bad_request", ""};
  auto parsed = json::parse(text);
  if (auto* pe = std::get_if<json::parse_error>(&parsed)) {
    err.message = "malformed JSON: " + pe->message;
    return std::nullopt;
  }
  const auto& obj = std::get<json::value>(parsed);
  if (!obj.is_object()) {
    err.message = "a line must be a JSON object";
    return std::nullopt;
  }
  auto sku = string_field(obj, "sku", 64, true, "", err.message);
  if (!sku) {
    return std::nullopt;
  }
  if (!valid_sku(*sku)) {
    err.message = "'sku' must be 1 to 64 letters, digits, '.', '_' or '-', not dots alone";
    return std::nullopt;
  }
  import_item item;
  item.line = n;
  auto product = product_fields(obj, *sku, err.message);
  if (!product) {
    return std::nullopt;
  }
  item.product = std::move(*product);
  if (const auto* s = obj.find("stock"); s != nullptr && !s->is_null()) {
    auto stock = int_field(obj, "stock", 0, max_money, true, 0, err.message);
    if (!stock) {
      return std::nullopt;
    }
    item.stock = *stock;
  }
  return item;
}

} // namespace

void import_products(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&,
                     responder r) {
  std::vector<import_item> items;
  std::vector<line_error> errors;
  std::string_view body = req.body;
  std::size_t n = 0;
  std::size_t lines = 0;
  while (!body.empty()) {
    const auto nl = body.find('\n');
    auto text = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    ++n;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) {
      continue; // blank lines are skipped (and still counted)
    }
    if (++lines > max_lines) {
      return r(
          error_response(413, "too_large",
                         "an import carries at most " + std::to_string(max_lines) + " products"));
    }
    line_error err;
    if (auto item = item_of(text, n, err)) {
      items.push_back(std::move(*item));
    } else {
      errors.push_back(std::move(err));
    }
  }
  std::make_shared<import_run>(env, std::move(items), std::move(errors), std::move(r))->start();
}

} // namespace surge::net::bridge
