#pragma once
// A fresh, empty database per test on the throwaway PostgreSQL server that
// scripts/test starts (reached through the PG* variables, as libpq does).
// Dropped when the test ends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <pqxx/pqxx>
#include <string>

namespace secbox::testing {

class TestDatabase {
 public:
  TestDatabase() {
    static std::atomic<int> counter{0};
    name_ = "secbox_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    try {
      pqxx::connection admin(admin_string());
      pqxx::nontransaction tx(admin);
      tx.exec0("DROP DATABASE IF EXISTS " + name_);
      tx.exec0("CREATE DATABASE " + name_);
      created_ = true;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "No test PostgreSQL server: " << e.what()
                    << "\nRun the tests through scripts/test, which starts one, or set PGHOST, "
                       "PGPORT, PGUSER and PGPASSWORD for a server where this user may create "
                       "databases.";
    }
  }
  ~TestDatabase() {
    if (!created_) return;
    try {
      pqxx::connection admin(admin_string());
      pqxx::nontransaction tx(admin);
      tx.exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
    }
  }
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  bool ok() const { return created_; }
  // A libpq connection string: the PG* variables fill in the rest.
  std::string url() const { return "dbname=" + name_; }
  const std::string& name() const { return name_; }

 private:
  static std::string admin_string() {
    const char* db = std::getenv("PGDATABASE");
    return std::string("dbname=") + (db ? db : "postgres");
  }
  std::string name_;
  bool created_ = false;
};

}  // namespace secbox::testing
