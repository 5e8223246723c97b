#include "replica/database.hpp"

#include "replica/migrations.hpp"
#include "session.hpp"

namespace secbox::replica {
namespace {
constexpr std::chrono::milliseconds kMaxRetryDelay{30000};
}

Database::Database(boost::asio::io_context& loop, DatabaseSettings settings,
                   std::function<void(int)> on_fatal)
    : loop_(loop), settings_(std::move(settings)), on_fatal_(std::move(on_fatal)),
      retry_timer_(loop), pool_(loop, 1) {
  if (settings_.url.empty()) {
    cluster_ = std::make_unique<EmbeddedCluster>(settings_.embedded);
  } else {
    connection_string_ = settings_.url;
  }
}

Database::~Database() { pool_.shutdown(); }

Result<void> Database::run_guarded(const std::function<void(Session&)>& body) {
  if (!session_) return Error{Errc::unavailable, "the database is not started yet"};
  try {
    body(*session_);
    return ok();
  } catch (const pqxx::broken_connection& e) {
    session_->reset();
    return Error{Errc::unavailable, std::string("lost the database connection: ") + e.what()};
  } catch (const pqxx::sql_error& e) {
    // A server that went away mid-statement reports it as an SQL error class 57/08.
    const std::string state = e.sqlstate();
    if (state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0) {
      session_->reset();
      return Error{Errc::unavailable, std::string("the database went away: ") + e.what()};
    }
    return Error{Errc::database, e.what()};
  } catch (const std::exception& e) {
    return Error{Errc::database, e.what()};
  }
}

void Database::start() {
  stopping_ = false;
  bring_up();
}

void Database::bring_up() {
  struct Up {
    std::string connection_string;
    MigrationReport report;
  };
  pool_.run(
      [this]() -> Result<Up> {
        std::string cs = connection_string_;
        if (cluster_) {
          auto started = cluster_->start();
          if (!started) return started.error();
          cs = started.value();
        }
        auto report =
            migrate(cs, builtin_migrations(), MigrateOptions{settings_.contract_migrations});
        if (!report) return report.error();
        // Owned by the database thread from here on.
        session_ = std::make_unique<Session>(cs);
        return Up{cs, report.value()};
      },
      [this](Result<Up> r) {
        if (stopping_) return;
        if (!r) {
          const auto& e = r.error();
          if (e.code == Errc::unavailable) return retry_later(e.message);
          log_.error("The database cannot be used; secbox stops.",
                     {{"reason", e.message}, {"code", to_string(e.code)}});
          if (on_fatal_) on_fatal_(e.code == Errc::schema_newer ? 3 : 1);
          return;
        }
        connection_string_ = r.value().connection_string;
        schema_version_ = r.value().report.to_version;
        ready_ = true;
        retry_delay_ = std::chrono::milliseconds(1000);
        log_.info("The database is ready.",
                  {{"schema_version", schema_version_},
                   {"migrations_applied", static_cast<int>(r.value().report.applied.size())},
                   {"embedded", cluster_ != nullptr}});
        if (on_ready_) on_ready_();
      });
}

void Database::apply_contract_migrations(std::function<void(Result<void>)> done) {
  pool_.run(
      [ready = ready_, cs = connection_string_]() -> Result<MigrationReport> {
        if (!ready) return Error{Errc::unavailable, "the database is not up"};
        return migrate(cs, builtin_migrations(), MigrateOptions{true});
      },
      [this, done = std::move(done)](Result<MigrationReport> r) {
        if (!r) return done(r.error());
        settings_.contract_migrations = true;
        if (!r.value().applied.empty()) {
          schema_version_ = r.value().to_version;
          log_.info("Applied the contract migrations that waited for the trial.",
                    {{"applied", static_cast<int>(r.value().applied.size())},
                     {"schema_version", schema_version_}});
        }
        done(ok());
      });
}

void Database::retry_later(const std::string& why) {
  log_.warn("The database is unreachable; retrying in " +
                std::to_string(retry_delay_.count() / 1000.0).substr(0, 4) + " s.",
            {{"reason", why}});
  retry_timer_.expires_after(retry_delay_);
  retry_delay_ = std::min(retry_delay_ * 2, kMaxRetryDelay);
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) bring_up();
  });
}

void Database::stop(std::function<void()> on_stopped) {
  stopping_ = true;
  ready_ = false;
  retry_timer_.cancel();
  // Queued behind whatever task is running, on the same thread.
  pool_.run(
      [this]() -> Result<void> {
        session_.reset();
        if (cluster_) return cluster_->stop();
        return ok();
      },
      [this, on_stopped = std::move(on_stopped)](Result<void> r) {
        if (!r)
          log_.error("Stopping the embedded database failed.", {{"reason", r.error().message}});
        on_stopped();
      });
}

}  // namespace secbox::replica
