#pragma once

// Boost.Asio and Boost.Beast under the short names the tree's HTTP code writes — asio, beast,
// http, tcp — declared once for every file that speaks HTTP through Beast: the storefront
// server, the gateway client, and the tools', benchmarks' and tests' clients. Include it from
// .cpp files only: no interface of net/ exposes a Beast type. Each file still includes the
// Beast headers it uses.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/field.hpp>

namespace surge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace net {

/// Opens `acceptor` listening on `at` (address reuse, the system's backlog), as every server of
/// the tree does: the storefront and admin servers, surge-paysim's TLS front, surge-webhook-sink.
/// On failure the acceptor is closed again and the error returned. Defined in net/src/server.cpp.
boost::system::error_code listen_on(tcp::acceptor& acceptor, const tcp::endpoint& at);

} // namespace net

} // namespace surge
