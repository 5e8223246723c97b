#pragma once
// A database of its own for a bench program, on the server pg_virtualenv (or
// the PG* variables) points at; dropped when the program ends.
#include <cstdlib>
#include <string>

#include <pqxx/pqxx>

namespace secbox::bench {

class BenchDatabase {
 public:
  explicit BenchDatabase(std::string name) : name_(std::move(name)) {
    pqxx::connection c(admin());
    pqxx::nontransaction tx(c);
    tx.exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    tx.exec0("CREATE DATABASE " + name_);
  }
  ~BenchDatabase() {
    try {
      pqxx::connection c(admin());
      pqxx::nontransaction tx(c);
      tx.exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
    }
  }
  BenchDatabase(const BenchDatabase&) = delete;
  BenchDatabase& operator=(const BenchDatabase&) = delete;
  std::string url() const { return "dbname=" + name_; }

 private:
  static std::string admin() {
    const char* db = std::getenv("PGDATABASE");
    return std::string("dbname=") + (db ? db : "postgres");
  }
  std::string name_;
};

}  // namespace secbox::bench
