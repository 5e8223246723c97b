#pragma once
// The pqxx connection behind Database, used only on the database thread.
// Private to replica/: libpqxx stays out of the public headers.
#include <memory>
#include <pqxx/pqxx>
#include <string>

namespace secbox::replica {

class Session {
 public:
  explicit Session(std::string connection_string)
      : connection_string_(std::move(connection_string)) {}

  // Connects on first use and after a lost connection.
  pqxx::connection& conn() {
    if (!conn_ || !conn_->is_open()) {
      conn_.reset();
      conn_ = std::make_unique<pqxx::connection>(connection_string_);
    }
    return *conn_;
  }
  void reset() { conn_.reset(); }

 private:
  std::string connection_string_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace secbox::replica
