#include "fanout.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>
#include <utility>

#include "errors.hpp"
#include "surge/net/beast.hpp"
#include "surge/net/text.hpp"

namespace surge::net::bridge {

namespace {

/// The largest part a member may answer (a metrics history is some hundred KiB).
constexpr std::size_t max_part = 16 * 1024 * 1024;

/// One GET on the client's io_context: resolve, connect, write, read, under one deadline.
/// Every step runs on the client's one thread, so its members need no lock.
struct exchange : std::enable_shared_from_this<exchange> {
  exchange(asio::io_context& ioc, std::function<void(peer_client::answer)> d)
      : resolver(ioc)
      , stream(ioc)
      , timer(ioc)
      , done(std::move(d)) {
    parser.body_limit(max_part);
  }

  tcp::resolver resolver;
  beast::tcp_stream stream;
  asio::steady_timer timer;
  beast::flat_buffer buffer;
  http::request<http::empty_body> req;
  http::response_parser<http::string_body> parser;
  std::function<void(peer_client::answer)> done;
  bool finished = false;

  void finish(peer_client::answer a) {
    if (finished) {
      return;
    }
    finished = true;
    timer.cancel();
    resolver.cancel();
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    done(std::move(a));
  }

  void fail(const char* step, const beast::error_code& ec) {
    finish({0, {}, std::string{step} + ": " + ec.message()});
  }

  void start(const std::string& host, const std::string& port, std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    timer.expires_after(timeout);
    timer.async_wait([self, timeout](const beast::error_code& ec) {
      if (!ec) {
        self->finish({0, {}, "no answer within " + std::to_string(timeout.count()) + " ms"});
      }
    });
    resolver.async_resolve(host, port, [self](const beast::error_code& ec, auto results) {
      if (self->finished) {
        return;
      }
      if (ec) {
        return self->fail("resolve", ec);
      }
      self->stream.async_connect(results, [self](const beast::error_code& ec, const auto&) {
        if (self->finished) {
          return;
        }
        if (ec) {
          return self->fail("connect", ec);
        }
        http::async_write(
            self->stream, self->req, [self](const beast::error_code& ec, std::size_t) {
              if (self->finished) {
                return;
              }
              if (ec) {
                return self->fail("write", ec);
              }
              http::async_read(
                  self->stream, self->buffer, self->parser,
                  [self](const beast::error_code& ec, std::size_t) {
                    if (self->finished) {
                      return;
                    }
                    if (ec) {
                      return self->fail("read", ec);
                    }
                    auto& res = self->parser.get();
                    self->finish({static_cast<int>(res.result_int()), std::move(res.body()), {}});
                  });
            });
      });
    });
  }
};

/// "host:port" or "[v6]:port" split; nullopt when there is no port.
std::optional<std::pair<std::string, std::string>> split_host_port(const std::string& hp) {
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon + 1 == hp.size() || colon == 0) {
    return std::nullopt;
  }
  auto host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, hp.substr(colon + 1));
}

/// `path` percent-encoded piece by piece between its slashes.
std::string encode_path(std::string_view path) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const auto slash = path.find('/', start);
    out += text::url_encode(path.substr(start, slash - start));
    if (slash == std::string_view::npos) {
      return out;
    }
    out += '/';
    start = slash + 1;
  }
}

/// The target a member is asked: the path, the query without `scope`, and scope=local.
std::string local_target(const http_request& req) {
  std::string target = encode_path(req.path) + "?";
  for (const auto& [k, v] : req.query) {
    target += text::url_encode(k) + "=" + text::url_encode(v) + "&";
  }
  return target + "scope=local";
}

/// The message of a member's answer that is not a part: its API.md error, or its status.
std::string refusal_of(const peer_client::answer& a) {
  std::string msg = "HTTP " + std::to_string(a.status);
  auto parsed = json::parse(a.body);
  if (auto* v = std::get_if<json::value>(&parsed)) {
    const auto* err = v->find("error");
    const auto* text = err != nullptr ? err->find("message") : nullptr;
    if (text != nullptr && text->is_string()) {
      msg += ": " + std::get<std::string>(text->get());
    }
  }
  return msg;
}

/// What the members gave so far; the last answer merges. Shared by the answers' callbacks.
struct gathering {
  std::mutex mtx;
  std::vector<std::optional<member_part>> parts; // by member; [0] is this node's
  std::vector<std::optional<member_error>> errors;
  std::size_t left = 0;
};

void default_merge(std::shared_ptr<bridge_env>, const http_request&, std::vector<member_part> parts,
                   std::vector<member_error> errors, responder r) {
  r(json_response(200, merged_json(parts, errors)));
}

/// Asks every other member up or draining for its part and merges them with `own`.
void gather(std::shared_ptr<bridge_env> env, http_request req, json::value own,
            const merge_handler& merge, responder r) {
  std::vector<cluster_admin::node_row> peers;
  for (auto& n :
       env->cluster.nodes ? env->cluster.nodes() : std::vector<cluster_admin::node_row>{}) {
    if (n.node_id != env->node_id && (n.status == "up" || n.status == "draining")) {
      peers.push_back(std::move(n));
    }
  }
  auto g = std::make_shared<gathering>();
  g->parts.resize(peers.size() + 1);
  g->errors.resize(peers.size() + 1);
  g->parts[0] = member_part{env->node_id, std::move(own)};
  g->left = peers.size();
  auto shared_req = std::make_shared<const http_request>(std::move(req));
  auto finish = [env, g, shared_req, merge, r]() {
    std::vector<member_part> parts;
    std::vector<member_error> errors;
    for (std::size_t i = 0; i < g->parts.size(); ++i) {
      if (g->parts[i]) {
        parts.push_back(std::move(*g->parts[i]));
      } else if (g->errors[i]) {
        errors.push_back(std::move(*g->errors[i]));
      }
    }
    merge(env, *shared_req, std::move(parts), std::move(errors), r);
  };
  if (peers.empty()) {
    return finish();
  }
  const auto target = local_target(*shared_req);
  const auto auth = std::string{shared_req->header("authorization").value_or("")};
  for (std::size_t i = 0; i < peers.size(); ++i) {
    auto on_answer = [g, i, node = peers[i].node_id, finish](peer_client::answer a) {
      std::optional<member_part> part;
      std::optional<member_error> error;
      if (a.status == 200) {
        auto parsed = json::parse(a.body);
        if (auto* v = std::get_if<json::value>(&parsed)) {
          part = member_part{node, std::move(*v)};
        } else {
          error = member_error{node, "not JSON: " + std::get<json::parse_error>(parsed).message};
        }
      } else {
        error = member_error{node, a.status == 0 ? a.error : refusal_of(a)};
      }
      bool last = false;
      {
        std::lock_guard<std::mutex> guard{g->mtx};
        g->parts[i + 1] = std::move(part);
        g->errors[i + 1] = std::move(error);
        last = --g->left == 0;
      }
      if (last) {
        finish();
      }
    };
    if (!env->peers) {
      on_answer({0, {}, "this node asks no other member (no peer client)"});
      continue;
    }
    env->peers->get(peers[i].admin_address, target, auth, peer_timeout, std::move(on_answer));
  }
}

} // namespace

struct peer_client::state {
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      ioc.get_executor()};
  std::mutex mtx;
  bool stopped = false; // guarded by mtx
  std::thread thread;
};

peer_client::peer_client()
    : state_(std::make_shared<state>()) {
  // The thread holds the state too: should the last owner let go on this very thread (from
  // within a callback), the state outlives it until run() returns.
  state_->thread = std::thread([s = state_] {
    pthread_setname_np(pthread_self(), "surge-fanout");
    s->ioc.run();
  });
}

peer_client::~peer_client() {
  stop();
}

void peer_client::stop() {
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    if (state_->stopped) {
      return;
    }
    state_->stopped = true;
  }
  // Exchanges in flight end within their deadline; then run() runs out of work.
  asio::post(state_->ioc, [s = state_] { s->work.reset(); });
  if (state_->thread.get_id() == std::this_thread::get_id()) {
    state_->thread.detach();
  } else if (state_->thread.joinable()) {
    state_->thread.join();
  }
}

void peer_client::get(const std::string& host_port, std::string target, std::string authorization,
                      std::chrono::milliseconds timeout, std::function<void(answer)> done) {
  auto hp = split_host_port(host_port);
  if (!hp) {
    return done({0, {}, "no admin address (" + host_port + ")"});
  }
  std::unique_lock<std::mutex> lock{state_->mtx};
  if (state_->stopped) {
    lock.unlock();
    return done({0, {}, "this node is stopping"});
  }
  auto ex = std::make_shared<exchange>(state_->ioc, std::move(done));
  ex->req.method(http::verb::get);
  ex->req.target(target);
  ex->req.version(11);
  ex->req.set(http::field::host, host_port);
  ex->req.set(http::field::connection, "close");
  if (!authorization.empty()) {
    ex->req.set(http::field::authorization, authorization);
  }
  // Posted under the lock: ahead of stop()'s release of the work guard, so that it runs.
  asio::post(state_->ioc, [ex, host = hp->first, port = hp->second, timeout] {
    ex->start(host, port, timeout);
  });
}

void write_errors(json::writer& w, const std::vector<member_error>& errors) {
  w.begin_array();
  for (const auto& e : errors) {
    w.begin_object().member("node_id", e.node_id).member("message", e.message).end_object();
  }
  w.end_array();
}

std::string merged_json(const std::vector<member_part>& parts,
                        const std::vector<member_error>& errors) {
  json::writer w{256 + parts.size() * 1024};
  w.begin_object().key("nodes").begin_array();
  for (const auto& p : parts) {
    w.write(p.body);
  }
  w.end_array().key("errors");
  write_errors(w, errors);
  return w.end_object().take();
}

std::function<endpoint> cluster_wide(local_handler local, merge_handler merge) {
  if (!merge) {
    merge = default_merge;
  }
  return [local, merge](std::shared_ptr<bridge_env> env, http_request&& req, path_params&&,
                        responder r) {
    const auto scope = req.param("scope");
    if (scope && *scope != "local") {
      return r(bad_request("'scope' must be \"local\" (this node only) or absent (the cluster)"));
    }
    const bool only_here = scope.has_value();
    req.query.erase("scope");
    auto mine = local(*env, req);
    if (only_here || mine.status != 200) {
      return r(std::move(mine));
    }
    auto parsed = json::parse(mine.body);
    if (!std::holds_alternative<json::value>(parsed)) {
      return r(error_response(500, "internal", "this node's part is not JSON"));
    }
    gather(std::move(env), std::move(req), std::get<json::value>(std::move(parsed)), merge,
           std::move(r));
  };
}

} // namespace surge::net::bridge
