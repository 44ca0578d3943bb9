#include "access_log.hpp"

#include <chrono>
#include <random>

#include <spdlog/logger.h>

#include "surge/config/log.hpp"
#include "surge/net/json_writer.hpp"
#include "surge/net/request_id.hpp"

namespace surge::net::bridge {

namespace {

/// splitmix64, one per thread, seeded once from std::random_device: cheap and good enough to
/// pick a share of requests.
uint64_t next_random() {
  thread_local uint64_t x =
      (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace

std::string access_line(const access_entry& e) {
  json::writer w{256 + e.path.size() + e.route.size() + e.request_id.size()};
  w.begin_object().member("time", rfc3339_ms(e.time_ms)).member("request_id", e.request_id);
  w.member("method", e.method).member("route", e.route).member("path", e.path);
  w.member("status", e.status)
      .key("duration_ms")
      .number(static_cast<double>(static_cast<int64_t>(e.duration_ms * 1000.0 + 0.5)) / 1000.0);
  w.member("client", e.client).member("node", e.node).member("bytes", e.bytes);
  return w.end_object().take();
}

bool draw_sample(double sample) {
  if (sample >= 1.0) {
    return true;
  }
  if (sample <= 0.0) {
    return false;
  }
  // 53 random bits as a double in [0, 1).
  return static_cast<double>(next_random() >> 11) * 0x1.0p-53 < sample;
}

bool access_written(double sample, bool sampled, int status) {
  return sample > 0.0 && (sampled || status >= 500);
}

handler with_access_log(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r,
                        handler next) {
  return [env, r, next = std::move(next)](http_request&& req, responder resp) {
    if (req.request_id.empty()) {
      req.request_id = request_id_for(req.header("x-request-id"));
    }
    log::request_scope scope{req.request_id};
    const double sample = env->access_sample;
    if (!env->access_log || sample <= 0.0) {
      next(std::move(req), std::move(resp));
      return;
    }
    struct pending {
      int64_t time_ms;
      std::chrono::steady_clock::time_point start;
      bool sampled;
      std::string request_id, method, route, path, client;
    };
    auto route = r->pattern_of(req);
    auto p = std::make_shared<const pending>(pending{
        unix_ms_now(), std::chrono::steady_clock::now(), draw_sample(sample), req.request_id,
        req.method, std::string{route.empty() ? std::string_view{"unmatched"} : route}, req.path,
        client_address(req.peer, req.header("x-forwarded-for"), env->trusted_proxies).to_string()});
    next(std::move(req), [env, p, sample, resp = std::move(resp)](http_response out) {
      if (access_written(sample, p->sampled, out.status)) {
        const std::chrono::duration<double, std::milli> took =
            std::chrono::steady_clock::now() - p->start;
        const auto line =
            access_line({p->time_ms, p->request_id, p->method, p->route, p->path, out.status,
                         took.count(), p->client, env->node_id, out.body_size()});
        env->access_log->log(spdlog::level::info, spdlog::string_view_t{line.data(), line.size()});
      }
      resp(std::move(out));
    });
  };
}

} // namespace surge::net::bridge
