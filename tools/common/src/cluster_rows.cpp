#include "surge/tools/cluster_rows.hpp"

#include <stdexcept>

namespace surge::tools {

namespace json = net::json;

namespace {

const json::array& array_member(const json::value& v, const char* key) {
  const auto* m = v.find(key);
  if (m == nullptr || !m->is_array()) {
    throw std::runtime_error(std::string{"the answer has no \""} + key + "\" array");
  }
  return std::get<json::array>(m->get());
}

std::string text(const json::value& v, const char* key) {
  const auto* m = v.find(key);
  return m != nullptr && m->is_string() ? std::get<std::string>(m->get()) : std::string{};
}

int64_t integer(const json::value& v, const char* key, int64_t fallback) {
  const auto* m = v.find(key);
  return m != nullptr && m->is_int() ? std::get<int64_t>(m->get()) : fallback;
}

} // namespace

cluster_view read_cluster(const json::value& answer) {
  cluster_view c;
  for (const auto& n : array_member(answer, "nodes")) {
    node_row r;
    r.node_id = text(n, "node_id");
    r.address = text(n, "address");
    r.http_address = text(n, "http_address");
    r.admin_address = text(n, "admin_address");
    r.status = text(n, "status");
    r.shards = integer(n, "shards", 0);
    r.actors = integer(n, "actors", 0);
    r.heartbeat_age_ms = integer(n, "heartbeat_age_ms", -1);
    c.nodes.push_back(std::move(r));
  }
  c.shards = integer(answer, "shards", 0);
  c.this_node = text(answer, "this_node");
  return c;
}

std::vector<shard_row> read_shards(const json::value& answer) {
  std::vector<shard_row> out;
  for (const auto& s : array_member(answer, "shards")) {
    out.push_back(
        {integer(s, "shard", -1), text(s, "owner"), integer(s, "epoch", 0), text(s, "target")});
  }
  return out;
}

} // namespace surge::tools
