// The wire between nodes, pinned to the cluster protocol version (cluster/protocol.hpp): the
// shape of every message type that crosses it — the types of actors/messages.hpp's type-ID
// block, the typed entity interfaces (sku, cart, order, sale) and the gateway's own messages —
// is written out field by field and hashed. When a shape changes and protocol_version does
// not, the fingerprint below no longer matches: bump protocol_version, make the new node read
// the old shapes for one version, gate their use with cluster_supports(), and append the new
// version's fingerprint here. Also the protocol rules themselves (can_link, the minimum).
#include <doctest/doctest.h>

#include <caf/atom.hpp>
#include <caf/meta/annotation.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "surge/actors/cart.hpp"
#include "surge/actors/messages.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sale.hpp"
#include "surge/actors/sku.hpp"
#include "surge/cluster/gateway.hpp"
#include "surge/cluster/protocol.hpp"

namespace {

using namespace surge::cluster;

/// Writes a type's shape: scalars by kind and width, strings, vectors of shapes, and inspectable
/// structs as their type name and fields in order (a CAF 0.17 inspector that only reads).
struct shape_inspector {
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;
  std::string out;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    out += '{';
    (add(xs), ...);
    out += '}';
  }

  template <class T>
  void add(T& x) {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, caf::meta::type_name_t>) {
      out += x.value;
      out += ':';
    } else if constexpr (std::is_base_of_v<caf::meta::annotation, U>) {
      // other annotations carry no data
    } else {
      shape<U>();
      out += ',';
    }
  }

  template <class T>
  void shape();
};

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {
  using element = T;
};
template <class T>
struct is_atom : std::false_type {};
template <caf::atom_value V>
struct is_atom<caf::atom_constant<V>> : std::true_type {
  static std::string name() { return caf::to_string(V); }
};

template <class T>
void shape_inspector::shape() {
  if constexpr (is_atom<T>::value) {
    out += "@" + is_atom<T>::name();
  } else if constexpr (std::is_same_v<T, bool>) {
    out += "bool";
  } else if constexpr (std::is_integral_v<T>) {
    out += (std::is_signed_v<T> ? "i" : "u") + std::to_string(sizeof(T) * 8);
  } else if constexpr (std::is_floating_point_v<T>) {
    out += "f" + std::to_string(sizeof(T) * 8);
  } else if constexpr (std::is_same_v<T, std::string>) {
    out += "str";
  } else if constexpr (std::is_same_v<T, caf::actor>) {
    out += "actor";
  } else if constexpr (std::is_same_v<T, caf::message>) {
    out += "message";
  } else if constexpr (std::is_same_v<T, void>) {
    out += "void";
  } else if constexpr (is_vector<T>::value) {
    out += '[';
    shape<typename is_vector<T>::element>();
    out += ']';
  } else {
    T x{};
    inspect(*this, x);
  }
}

template <class T>
std::string shape_of() {
  shape_inspector f;
  f.shape<T>();
  return f.out;
}

/// Every type of the type-ID block [I, end).
template <caf::type_id_t I = caf::id_block::surge::begin>
void block_shapes(std::string& out) {
  if constexpr (I < caf::id_block::surge::end) {
    using T = typename caf::type_by_id<I>::type;
    out += std::string{caf::type_name<T>::value} + " = " + shape_of<T>() + "\n";
    block_shapes<I + 1>(out);
  }
}

template <class... Ts>
std::string list_shape() {
  std::string out;
  ((out += shape_of<Ts>() + ","), ...);
  return out;
}

template <class Sig>
struct signature;
template <class... Is, class... Os>
struct signature<caf::typed_mpi<caf::detail::type_list<Is...>, caf::output_tuple<Os...>>> {
  static std::string text() {
    return "(" + list_shape<Is...>() + ") -> (" + list_shape<Os...>() + ")";
  }
};

template <class Interface>
struct interface_shape;
template <class... Sigs>
struct interface_shape<caf::typed_actor<Sigs...>> {
  static std::string text() {
    std::string out;
    ((out += "  " + signature<Sigs>::text() + "\n"), ...);
    return out;
  }
};

/// The whole wire, as text.
std::string wire_shapes() {
  std::string out;
  block_shapes(out);
  out += "sku_actor:\n" + interface_shape<surge::actors::sku_actor>::text();
  out += "cart_actor:\n" + interface_shape<surge::actors::cart_actor>::text();
  out += "order_actor:\n" + interface_shape<surge::actors::order_actor>::text();
  out += "sale_actor:\n" + interface_shape<surge::actors::sale_actor>::text();
  out += "gateway:\n" + interface_shape<gateway_wire>::text();
  return out;
}

std::string fnv1a_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h = (h ^ c) * 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

/// Protocol version -> the fingerprint of its wire. Append a row with each bump; never edit one.
const std::vector<std::pair<uint32_t, std::string>> golden{
    {2, "3e2deea2dd3225e9"},
};

node_info member(const std::string& id, const std::string& status, uint32_t protocol) {
  node_info n;
  n.node_id = id;
  n.status = status;
  n.protocol = protocol;
  return n;
}

} // namespace

TEST_SUITE("cluster_wire") {

  TEST_CASE("wire: every type that crosses nodes has the shape its protocol version pinned") {
    const auto shapes = wire_shapes();
    const auto print = fnv1a_hex(shapes);
    std::string pinned;
    for (const auto& [version, fp] : golden) {
      if (version == protocol_version) {
        pinned = fp;
      }
    }
    INFO("the wire as this build sees it:\n" << shapes);
    CHECK_MESSAGE(!pinned.empty(), "no fingerprint pinned for protocol_version "
                                       << protocol_version << ": append {" << protocol_version
                                       << ", \"" << print << "\"} to `golden`");
    CHECK_MESSAGE(print == pinned, "the wire changed (fingerprint "
                                       << print << ", protocol " << protocol_version << " pinned "
                                       << pinned
                                       << "): bump cluster::protocol_version "
                                          "(protocol.hpp) and append its fingerprint");
    // The shapes see into nested types and field order (a sanity check of the inspector).
    CHECK(shapes.find("surge.cart_view:str,str,[{surge.cart_line_view:str,i64,i64,str,str,i64,}],"
                      "i64,str,") != std::string::npos);
    CHECK(shapes.find("(@hello,str,actor,u32,str,) -> (u32,str,)") != std::string::npos);
  }

  TEST_CASE("protocol: nodes link one version apart at most; the minimum counts live members") {
    CHECK(can_link(protocol_version));
    CHECK(can_link(protocol_version - 1));
    CHECK(can_link(protocol_version + 1)); // a newer node speaks this node's version to it
    CHECK_FALSE(can_link(protocol_version + 2));
    CHECK_FALSE(can_link(0));
    CHECK(can_link(legacy_protocol, 2));
    CHECK_FALSE(can_link(legacy_protocol, 3));

    CHECK(cluster_protocol({}) == protocol_version);
    const std::vector<node_info> mixed{member("a", "up", 2), member("b", "draining", 0),
                                       member("c", "up", 2)};
    CHECK(cluster_protocol(mixed) == legacy_protocol); // 0: recorded none, a legacy node
    CHECK_FALSE(cluster_supports(mixed, feature::versioned_hello));
    // The legacy member leaves or dies: the feature is allowed.
    for (const char* gone : {"left", "down"}) {
      auto later = mixed;
      later[1].status = gone;
      CHECK(cluster_protocol(later) == 2);
      CHECK(cluster_supports(later, feature::versioned_hello));
    }
    CHECK(name_of(feature::versioned_hello) == "versioned_hello");
    CHECK(since(feature::versioned_hello) == 2);
    CHECK(all_features().size() == 1);
  }
}
