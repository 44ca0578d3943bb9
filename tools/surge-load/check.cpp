// The admin client (one blocking Boost.Beast keep-alive connection, reopened once when the server
// has closed it) and the cross-check that reads the stock through it.

#include "check.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdio>
#include <optional>

#include "surge/net/beast.hpp"
#include "surge/net/json.hpp"
#include "surge/tools/text.hpp"

namespace surge::load {

namespace json = surge::net::json;

struct admin_client::impl {
  explicit impl(const options& o)
      : o_(o) {}

  admin_answer exchange(http::verb method, const std::string& path, const std::string& body) {
    admin_answer a;
    beast::error_code ec;
    if (!stream_) {
      stream_.emplace(io_);
      stream_->expires_after(o_.timeout);
      stream_->connect(tcp::endpoint{asio::ip::make_address_v4(o_.admin.address), o_.admin.port},
                       ec);
      if (ec) {
        stream_.reset();
        a.error = "cannot connect to the admin API at " + o_.admin.url() + ": " + ec.message();
        return a;
      }
    }
    http::request<http::string_body> req{method, path, 11};
    req.set(http::field::host, o_.admin.host + ":" + std::to_string(o_.admin.port));
    req.set(http::field::user_agent, "surge-load");
    req.set(http::field::accept, "application/json");
    if (!o_.admin_token.empty()) {
      req.set(http::field::authorization, "Bearer " + o_.admin_token);
    }
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    req.keep_alive(true);
    stream_->expires_after(o_.timeout);
    http::write(*stream_, req, ec);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    if (!ec) {
      http::read(*stream_, buf, res, ec);
    }
    if (ec) {
      stream_.reset();
      a.error = "no answer from the admin API at " + o_.admin.url() + ": " + ec.message();
      return a;
    }
    if (!res.keep_alive()) {
      stream_.reset();
    }
    a.status = static_cast<int>(res.result_int());
    a.body = std::move(res.body());
    return a;
  }

  const options& o_;
  asio::io_context io_;
  std::optional<beast::tcp_stream> stream_;
};

admin_client::admin_client(const options& o)
    : impl_(std::make_unique<impl>(o)) {}

admin_client::~admin_client() = default;

admin_answer admin_client::get(const std::string& path) {
  const bool reused = impl_->stream_.has_value();
  auto a = impl_->exchange(http::verb::get, path, {});
  if (a.status == 0 && reused) {
    a = impl_->exchange(http::verb::get, path, {});
  }
  return a;
}

admin_answer admin_client::send(const std::string& method, const std::string& path,
                                const std::string& body) {
  const bool reused = impl_->stream_.has_value();
  const auto verb = http::string_to_verb(method);
  if (reused) {
    // A kept connection the server may have closed meanwhile: a fresh one, so that a write is
    // never sent twice.
    impl_->stream_.reset();
  }
  return impl_->exchange(verb, path, body);
}

namespace {

bool int_member(const json::value& v, const char* key, int64_t& out) {
  const auto* m = v.find(key);
  if (m == nullptr || !m->is_int()) {
    return false;
  }
  out = std::get<int64_t>(m->get());
  return true;
}

std::string list_of(const std::vector<std::string>& xs) {
  std::string out;
  for (std::size_t i = 0; i < xs.size() && i < 5; ++i) {
    out += (i == 0 ? "" : "; ") + xs[i];
  }
  if (xs.size() > 5) {
    out += "; and " + std::to_string(xs.size() - 5) + " more";
  }
  return out;
}

} // namespace

check_result cross_check(const options& o, const run_result& r) {
  check_result c;
  if (!o.check) {
    return c;
  }
  c.performed = true;
  admin_client admin{o};
  for (const auto& [sku, tally] : r.skus) {
    const auto a = admin.get("/admin/v1/products/" + tools::path_segment(sku) + "/stock");
    if (a.status == 0) {
      c.passed = false;
      c.error = a.error + " (--admin=URL; --no-check skips the cross-check)";
      return c;
    }
    if (a.status == 404) {
      c.stocks[sku] = stock_view{0, 0, 0, false};
      continue;
    }
    auto parsed = json::parse(a.body);
    const auto* v = std::get_if<json::value>(&parsed);
    stock_view s;
    if (a.status != 200 || v == nullptr || !v->is_object() ||
        !int_member(*v, "on_hand", s.on_hand) || !int_member(*v, "held", s.held) ||
        !int_member(*v, "sold", s.sold)) {
      c.passed = false;
      c.error = "GET /admin/v1/products/" + sku + "/stock answered " + std::to_string(a.status) +
                ": " + a.body.substr(0, 300) +
                (a.status == 401 ? " (--admin-token or $SURGE_ADMIN_TOKEN)" : "");
      return c;
    }
    c.stocks[sku] = s;
  }

  const auto add = [&](bool ok, std::string name, std::string detail) {
    c.lines.push_back({ok ? "PASS" : "FAIL", std::move(name), std::move(detail)});
    c.passed = c.passed && ok;
  };
  const auto n = std::to_string(c.stocks.size());
  const auto replays = [&] {
    add(r.out.replay_mismatch == 0, "resubmitted checkouts return the same order",
        std::to_string(r.out.replays) + " same, " + std::to_string(r.out.replay_mismatch) +
            " different");
  };
  if (c.stocks.empty()) {
    c.lines.push_back({"SKIP", "stock", "no hold was asked for: no SKU to check"});
    replays();
    return c;
  }

  std::vector<std::string> bad;
  for (const auto& [sku, s] : c.stocks) {
    if (s.held + s.sold > s.on_hand) {
      bad.push_back(sku + ": held " + std::to_string(s.held) + " + sold " + std::to_string(s.sold) +
                    " > on_hand " + std::to_string(s.on_hand));
    }
  }
  add(bad.empty(), "held + sold <= on_hand", bad.empty() ? n + "/" + n + " SKUs" : list_of(bad));

  // Checks, as `name`, that each SKU's `have` count on the node is at least what this run
  // believes in `want` (`seen` says what that is); `pass` follows the sum of `want` in the detail
  // of a pass.
  const auto at_least = [&](std::string name, const char* have_word, int64_t stock_view::*have,
                            int64_t sku_tally::*want, const char* seen, const std::string& pass) {
    std::vector<std::string> short_of;
    int64_t sum = 0;
    for (const auto& [sku, s] : c.stocks) {
      const auto w = r.skus.at(sku).*want;
      sum += w;
      if (s.*have < w) {
        short_of.push_back(sku + ": " + have_word + " " + std::to_string(s.*have) + " < " +
                           std::to_string(w) + seen);
      }
    }
    add(short_of.empty(), std::move(name),
        short_of.empty() ? n + "/" + n + " SKUs, " + std::to_string(sum) + pass
                         : list_of(short_of));
  };
  at_least("sold >= units of confirmed orders seen", "sold", &stock_view::sold,
           &sku_tally::confirmed_units, " units in confirmed orders",
           " units in " + std::to_string(r.out.orders) + " orders");

  const auto ttl_s = std::chrono::duration<double>(o.holds_ttl).count();
  const double age_s =
      r.first_hold
          ? std::chrono::duration<double>(std::chrono::steady_clock::now() - *r.first_hold).count()
          : 0.0;
  char age[96];
  std::snprintf(age, sizeof age, "first hold %.1fs ago, holds TTL %.0fs", age_s, ttl_s);
  if (age_s < ttl_s) {
    c.live_checked = true;
    at_least("held >= holds believed live", "held", &stock_view::held, &sku_tally::live_holds,
             " units believed held", std::string{" units; "} + age);
  } else {
    c.lines.push_back({"SKIP", "held >= holds believed live",
                       std::string{"the run outlasted the holds: "} + age + " (--holds-ttl)"});
  }

  replays();
  return c;
}

} // namespace surge::load
