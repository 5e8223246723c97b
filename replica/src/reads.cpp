#include "replica/reads.hpp"

#include <pqxx/pqxx>

#include "entities.hpp"
#include "session.hpp"

namespace secbox::replica {

using json = nlohmann::json;

namespace {

std::string utc(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

json nullable(const pqxx::field& f) { return f.is_null() ? json() : json(f.as<std::string>()); }

bool is_date(const std::string& d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(d[i]))) return false;
  }
  return true;
}

}  // namespace

void ReplicaReader::refresh(std::function<void()> done) {
  database_.run<std::map<std::string, Freshness>>(
      [](Session& s) -> Result<std::map<std::string, Freshness>> {
        pqxx::read_transaction tx(s.conn());
        auto r = tx.exec("SELECT entity, version, " + utc("last_applied_at") + ", " +
                         utc("last_snapshot_at") + " FROM sync_cursor");
        std::map<std::string, Freshness> out;
        for (const auto& row : r) {
          Freshness f;
          f.cursor = row[1].as<std::int64_t>();
          if (!row[2].is_null()) f.last_applied_at = row[2].as<std::string>();
          if (!row[3].is_null()) f.last_snapshot_at = row[3].as<std::string>();
          out[row[0].as<std::string>()] = f;
        }
        return out;
      },
      [this, done = std::move(done)](Result<std::map<std::string, Freshness>> r) {
        if (r) freshness_ = std::move(r).value();
        if (done) done();
      });
}

std::map<std::string, std::int64_t> ReplicaReader::cursors() const {
  std::map<std::string, std::int64_t> out;
  for (const auto& spec : entity_specs()) {
    auto it = freshness_.find(spec.entity);
    out[spec.entity] = it == freshness_.end() ? 0 : it->second.cursor;
  }
  return out;
}

void ReplicaReader::ban_list(std::function<void(Result<BanList>)> done) {
  database_.run<BanList>(
      [](Session& s) -> Result<BanList> {
        pqxx::read_transaction tx(s.conn());
        BanList out;
        out.version = tx.exec1("SELECT version FROM sync_cursor WHERE entity = 'banned_visitor'")[0]
                          .as<std::int64_t>();
        out.bans = json::array();
        auto r = tx.exec(
            "SELECT id, full_name, plate, photo_url, reason, " + utc("created_at") + ", " +
            utc("expires_at") +
            " FROM banned_visitor WHERE NOT deleted AND (expires_at IS NULL OR expires_at > now())"
            " ORDER BY full_name, id");
        for (const auto& row : r) {
          out.bans.push_back({{"id", row[0].as<std::string>()},
                              {"fullName", row[1].as<std::string>()},
                              {"plate", nullable(row[2])},
                              {"photoUrl", nullable(row[3])},
                              {"reason", row[4].as<std::string>()},
                              {"createdAt", row[5].as<std::string>()},
                              {"expiresAt", nullable(row[6])}});
        }
        return out;
      },
      std::move(done));
}

void ReplicaReader::schedule(const std::string& date, std::function<void(Result<json>)> done) {
  if (!is_date(date)) return done(Error{Errc::invalid, "date must be YYYY-MM-DD"});
  database_.run<json>(
      [date](Session& s) -> Result<json> {
        pqxx::read_transaction tx(s.conn());
        auto tz = tx.exec("SELECT timezone FROM community WHERE NOT deleted ORDER BY id LIMIT 1");
        const std::string zone = tz.empty() ? "UTC" : tz[0][0].as<std::string>();
        json out = json::array();
        try {
          auto r =
              tx.exec_params("SELECT id, unit_id, guest_name, plate, " + utc("valid_from") + ", " +
                                 utc("valid_until") +
                                 ", max_entries, (SELECT label FROM unit WHERE unit.id = unit_id "
                                 "AND NOT unit.deleted)"
                                 " FROM guest_authorization WHERE NOT deleted AND status = 'active'"
                                 " AND valid_from < (($1::date + 1)::timestamp AT TIME ZONE $2)"
                                 " AND valid_until >= ($1::date::timestamp AT TIME ZONE $2)"
                                 " ORDER BY valid_from, guest_name",
                             date, zone);
          for (const auto& row : r) {
            out.push_back({{"id", row[0].as<std::string>()},
                           {"unitId", row[1].as<std::string>()},
                           {"guestName", row[2].as<std::string>()},
                           {"plate", nullable(row[3])},
                           {"validFrom", row[4].as<std::string>()},
                           {"validUntil", row[5].as<std::string>()},
                           {"maxEntries", row[6].is_null() ? json() : json(row[6].as<int>())},
                           {"unitLabel", nullable(row[7])}});
          }
        } catch (const pqxx::data_exception&) {
          return Error{Errc::invalid, "date " + date + " is not a calendar date"};
        }
        return out;
      },
      std::move(done));
}

void ReplicaReader::guard(const std::string& id, std::function<void(Result<Guard>)> done) {
  database_.run<Guard>(
      [id](Session& s) -> Result<Guard> {
        pqxx::read_transaction tx(s.conn());
        auto r = tx.exec_params(
            "SELECT id, community_id, display_name, pin_hash FROM app_user"
            " WHERE id = $1 AND role = 'guard' AND NOT deleted",
            id);
        if (r.empty()) return Error{Errc::not_found, "no guard with that id"};
        Guard g{r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>(),
                std::nullopt};
        if (!r[0][3].is_null()) g.pin_hash = r[0][3].as<std::string>();
        return g;
      },
      std::move(done));
}

void ReplicaReader::guards(std::size_t limit, std::function<void(Result<nlohmann::json>)> done) {
  database_.run<nlohmann::json>(
      [limit](Session& s) -> Result<nlohmann::json> {
        pqxx::read_transaction tx(s.conn());
        auto r = tx.exec_params(
            "SELECT id, display_name FROM app_user WHERE role = 'guard' AND NOT deleted AND "
            "pin_hash IS NOT NULL"
            " ORDER BY display_name, id LIMIT $1",
            static_cast<long long>(limit));
        auto out = nlohmann::json::array();
        for (const auto& row : r)
          out.push_back(
              {{"id", row[0].as<std::string>()}, {"displayName", row[1].as<std::string>()}});
        return out;
      },
      std::move(done));
}

}  // namespace secbox::replica
