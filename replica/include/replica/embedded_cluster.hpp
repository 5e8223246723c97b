#pragma once
// The embedded default database: a private PostgreSQL cluster in the state
// dir, made with the system's PostgreSQL binaries, listening on a Unix socket
// only (no TCP), created on first start and started and stopped with the
// daemon. initdb and postgres refuse to run as root, so when secbox runs as
// root the cluster runs as an unprivileged user (the `secbox` service user,
// created if needed, else `postgres`).
//
// Every method blocks (initdb, pg_ctl): call them on the database thread.
// Owned by Database. Errors are Errc::config, with a sentence saying what to fix.
#include <optional>
#include <string>

#include "common/process.hpp"
#include "common/result.hpp"

namespace secbox::replica {

struct EmbeddedClusterOptions {
  std::string dir;      // e.g. /var/lib/secbox/pg: holds data/, run/ and postgres.log
  std::string bin_dir;  // PostgreSQL's bin dir; empty: the newest /usr/lib/postgresql/*/bin
  std::string user;     // the OS user when running as root; empty: secbox, else postgres
  std::string database = "secbox";
};

class EmbeddedCluster {
 public:
  explicit EmbeddedCluster(EmbeddedClusterOptions options);

  // initdb on first use, then start (or adopt a running postmaster), then
  // create the database; returns the libpq connection string.
  Result<std::string> start();
  // pg_ctl stop -m fast; a no-op when it is not running.
  Result<void> stop();
  bool running() const;

  std::string connection_string(const std::string& database) const;
  const std::string& socket_dir() const { return socket_dir_; }

 private:
  Result<void> resolve();
  Result<void> prepare_dirs();
  Result<void> initdb();
  Result<ProcessResult> pg(std::vector<std::string> argv, std::chrono::milliseconds timeout) const;

  EmbeddedClusterOptions options_;
  std::string data_dir_;
  std::string socket_dir_;
  std::string log_file_;
  std::optional<UserInfo> run_as_;
  bool resolved_ = false;
};

// The newest /usr/lib/postgresql/<N>/bin holding initdb, or empty.
std::string find_postgres_bin_dir();

}  // namespace secbox::replica
