#pragma once

// Cluster-wide admin routes (private to the bridge): one node answers for the whole cluster by
// asking every other member's admin API for its local part, in parallel, and merging the parts.
//
// The contract (shared/contract13.md, "Cluster"): the node asks every member whose status is up
// or draining at its admin_address, with the request's path and query plus `scope=local` and
// the request's own Authorization header, 2 s each, all at once, and never blocks an I/O
// thread; its own part is computed here, not over HTTP. The default merge answers
// {"nodes":[each member's local body...],"errors":[{"node_id","message"}...]}.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handlers.hpp"
#include "surge/net/json.hpp"
#include "surge/net/json_writer.hpp"

namespace surge::net::bridge {

/// How long a member has to answer its part.
constexpr std::chrono::milliseconds peer_timeout{2000};

/// GET requests to other members' admin APIs, asynchronous (Boost.Beast) on a thread of its own;
/// no connection is kept. Thread-safe. Lifecycle: made by make_admin_router (bridge_env::peers);
/// stop() (also run by the destructor) refuses new requests, lets those in flight end (each
/// within its timeout) and joins the thread.
class peer_client {
 public:
  /// What a member answered: `status` and `body`, or (status 0) why there is no answer.
  struct answer {
    int status = 0;
    std::string body;
    std::string error;
  };

  peer_client();
  ~peer_client();
  peer_client(const peer_client&) = delete;
  peer_client& operator=(const peer_client&) = delete;

  /// GET `target` from `host_port` ("host:port", "[v6]:port") with `authorization` (none when
  /// empty), within `timeout` for resolving, connecting, writing and reading together. `done`
  /// runs exactly once, on the client's thread (on the caller's when stopped).
  void get(const std::string& host_port, std::string target, std::string authorization,
           std::chrono::milliseconds timeout, std::function<void(answer)> done);

  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;
};

/// One member's part of a cluster-wide answer.
struct member_part {
  std::string node_id;
  json::value body;
};

/// A member that did not give its part.
struct member_error {
  std::string node_id;
  std::string message;
};

/// This node's part of a cluster-wide route: its answer to `?scope=local` (`req` comes without
/// the scope parameter). A 200 whose body is JSON is the part; anything else (a 400 for a bad
/// parameter) is the route's answer as it is. Runs on the I/O thread: must not block.
using local_handler = std::function<http_response(bridge_env& env, const http_request& req)>;

/// Makes the route's answer from the parts (this node's first, then the others in node order)
/// and the errors; `req` comes without the scope parameter. Calls `r` exactly once, from any
/// thread.
using merge_handler = std::function<void(std::shared_ptr<bridge_env> env, const http_request& req,
                                         std::vector<member_part> parts,
                                         std::vector<member_error> errors, responder r)>;

/// The handler of a cluster-wide GET: `?scope=local` answers local() as it is; without `scope`,
/// local() and every other member up or draining (env.cluster.nodes) give their parts, and
/// `merge` (by default {"nodes":[...],"errors":[...]}) answers. Another scope is 400.
std::function<endpoint> cluster_wide(local_handler local, merge_handler merge = {});

/// {"nodes":[part bodies...],"errors":[{"node_id","message"}...]}.
std::string merged_json(const std::vector<member_part>& parts,
                        const std::vector<member_error>& errors);

/// Writes `errors` as the value of "errors" in `w`.
void write_errors(json::writer& w, const std::vector<member_error>& errors);

} // namespace surge::net::bridge
