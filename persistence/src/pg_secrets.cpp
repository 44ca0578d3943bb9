#include <optional>

#include "pg_util.hpp"
#include "surge/persistence/pg.hpp"

namespace surge::persistence {
namespace {

std::optional<std::string> read_row(pqxx::work& tx, const std::string& name) {
  auto rows = tx.exec_params("SELECT value FROM shared_secrets WHERE name = $1", name);
  if (rows.empty()) {
    return std::nullopt;
  }
  return rows[0][0].as<std::string>();
}

void insert_row(pqxx::work& tx, const std::string& name, const std::string& value) {
  tx.exec_params("INSERT INTO shared_secrets(name, value) VALUES ($1, $2)"
                 " ON CONFLICT (name) DO NOTHING",
                 name, value);
}

} // namespace

caf::expected<std::string> shared_secret(const std::string& url, const shared_secret_spec& spec) {
  auto connected = detail::connect(url);
  if (!connected) {
    return std::move(connected.error());
  }
  auto& conn = **connected;
  bool healthy = true;
  const std::string fp_name = spec.name + ".fingerprint";
  try {
    // READ COMMITTED: an insert that meets another node's uncommitted one waits for it, then
    // does nothing, and the reads that follow see the winner.
    pqxx::work tx{conn};
    if (!spec.configured.empty()) {
      insert_row(tx, fp_name, spec.fingerprint_of(spec.configured));
      auto kept = read_row(tx, fp_name);
      tx.commit();
      if (kept != spec.fingerprint_of(spec.configured)) {
        return make_error(errc::conflict,
                          "setting '" + spec.name +
                              "' is not the secret this database was first used with (its "
                              "fingerprint differs); every node must use the same one. If the "
                              "database keeps a generated secret, configure that one: SELECT "
                              "value FROM shared_secrets WHERE name = '" +
                              spec.name + "'");
      }
      return spec.configured;
    }
    if (read_row(tx, fp_name) && !read_row(tx, spec.name)) {
      tx.commit();
      return make_error(errc::conflict, "setting '" + spec.name +
                                            "' is empty, but this database was used with a "
                                            "configured one; configure the same secret");
    }
    const std::string fresh = spec.generate();
    insert_row(tx, spec.name, fresh);
    insert_row(tx, fp_name, spec.fingerprint_of(fresh));
    auto value = read_row(tx, spec.name);
    auto fp = read_row(tx, fp_name);
    tx.commit();
    if (!value || !fp || *fp != spec.fingerprint_of(*value)) {
      return make_error(errc::conflict, "the '" + spec.name +
                                            "' kept in the database does not match its "
                                            "fingerprint; configure the secret explicitly");
    }
    return *value;
  } catch (...) {
    return detail::translate_current(conn, healthy);
  }
}

} // namespace surge::persistence
