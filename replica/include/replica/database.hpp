#pragma once
// The box's PostgreSQL database as a component: on start it brings up the
// embedded cluster (when no DATABASE_URL is set) and applies the migrations,
// retrying while the server is unreachable; afterwards it runs database work.
//
// All database work runs on one thread of its own, one task at a time, so the
// connection is used serially and the event loop never blocks. run() may be
// called from the loop thread; the callback comes back on the loop thread.
// libpqxx exceptions never escape a task: they become Errors with code
// Errc::unavailable (connection lost; reconnects on the next task) or
// Errc::database.
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "common/blocking.hpp"
#include "common/component.hpp"
#include "common/log.hpp"
#include "replica/embedded_cluster.hpp"

namespace secbox::replica {

class Session;  // wraps the pqxx connection; see src/session.hpp

struct DatabaseSettings {
  std::string url;  // libpq connection string or URI; empty: the embedded cluster
  EmbeddedClusterOptions embedded;
  // false while this version is on trial: contract migrations wait for
  // apply_contract_migrations() (replica/migrations.hpp).
  bool contract_migrations = true;
};

class Database final : public Component {
 public:
  // on_fatal(exit_code): the database can never work with this configuration
  // (newer schema, embedded cluster impossible); the daemon should stop.
  Database(boost::asio::io_context& loop, DatabaseSettings settings,
           std::function<void(int)> on_fatal);
  ~Database() override;

  std::string_view name() const override { return "database"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  // Called on the loop once migrations are applied (again after a restart).
  void on_ready(std::function<void()> callback) { on_ready_ = std::move(callback); }
  bool ready() const { return ready_; }
  int schema_version() const { return schema_version_; }
  // The contract migrations left while on trial, once it has passed. Loop
  // thread; done on the loop with the error of a migration that failed.
  void apply_contract_migrations(std::function<void(Result<void>)> done);

  template <class T>
  void run(std::function<Result<T>(Session&)> task, std::function<void(Result<T>)> done) {
    pool_.run([this, task = std::move(task)]() -> Result<T> { return guarded<T>(task); },
              std::move(done));
  }

 private:
  template <class T>
  Result<T> guarded(const std::function<Result<T>(Session&)>& task) {
    Result<T> out = Error{Errc::internal, "not run"};
    auto status = run_guarded([&](Session& s) { out = task(s); });
    if (!status) return status.error();
    return out;
  }
  Result<void> run_guarded(const std::function<void(Session&)>& body);
  void bring_up();
  void retry_later(const std::string& why);

  boost::asio::io_context& loop_;
  DatabaseSettings settings_;
  std::function<void(int)> on_fatal_;
  std::function<void()> on_ready_;
  log::Logger log_{"database"};
  std::unique_ptr<EmbeddedCluster> cluster_;
  std::unique_ptr<Session> session_;
  std::string connection_string_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::milliseconds retry_delay_{1000};
  bool ready_ = false;
  bool stopping_ = false;
  int schema_version_ = 0;
  BlockingPool pool_;  // last: its thread is joined before the members above go
};

}  // namespace secbox::replica
