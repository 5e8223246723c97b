#include "replica/embedded_cluster.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <pqxx/pqxx>

#include "common/log.hpp"

namespace secbox::replica {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const log::Logger& logger() {
  static const log::Logger l("embedded_db");
  return l;
}

constexpr int kPort = 5432;  // only names the socket file: there is no TCP listener

Error fail(const std::string& message) { return Error{Errc::config, message}; }

// A value for a libpq keyword/value connection string.
std::string quote_conninfo(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

Result<void> make_dir(const std::string& path, mode_t mode, const std::optional<UserInfo>& owner) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return fail("cannot create " + path + ": " + std::strerror(errno));
  }
  if (owner && ::chown(path.c_str(), owner->uid, owner->gid) != 0) {
    return fail("cannot give " + path + " to " + owner->name + ": " + std::strerror(errno));
  }
  if (::chmod(path.c_str(), mode) != 0) {
    return fail("cannot set the mode of " + path + ": " + std::strerror(errno));
  }
  return ok();
}

}  // namespace

std::string find_postgres_bin_dir() {
  std::error_code ec;
  std::vector<std::pair<int, std::string>> found;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb", ec)) continue;
    try {
      found.emplace_back(std::stoi(entry.path().filename().string()), bin.string());
    } catch (const std::exception&) {
    }
  }
  if (found.empty()) return "";
  std::sort(found.begin(), found.end());
  return found.back().second;
}

EmbeddedCluster::EmbeddedCluster(EmbeddedClusterOptions options)
    : options_(std::move(options)), data_dir_(options_.dir + "/data"),
      socket_dir_(options_.dir + "/run"), log_file_(options_.dir + "/postgres.log") {}

Result<void> EmbeddedCluster::resolve() {
  if (resolved_) return ok();
  if (options_.bin_dir.empty()) options_.bin_dir = find_postgres_bin_dir();
  if (options_.bin_dir.empty() || ::access((options_.bin_dir + "/initdb").c_str(), X_OK) != 0) {
    return fail(
        "PostgreSQL's initdb was not found (install the Debian package `postgresql`, set "
        "SECBOX_PG_BIN_DIR, or set DATABASE_URL to use an existing server)");
  }
  // libpq's socket path limit (sun_path) is 107 bytes.
  if (socket_dir_.size() + std::strlen("/.s.PGSQL.5432") > 107) {
    return fail("the state dir path is too long for a Unix socket (" + socket_dir_ +
                "); use a shorter SECBOX_STATE_DIR");
  }
  if (options_.dir.find_first_of("'\"\n\\$`") != std::string::npos) {
    return fail("the state dir path holds a quote, backslash, $ or newline: " + options_.dir);
  }
  if (::geteuid() == 0) {
    std::string name = options_.user;
    if (name.empty()) {
      if (lookup_user("secbox")) {
        name = "secbox";
      } else {
        ProcessOptions add;
        add.argv = {"useradd",      "--system", "--no-create-home",  "--home-dir",
                    "/nonexistent", "--shell",  "/usr/sbin/nologin", "secbox"};
        auto r = run_process(add);
        if (r && r.value().succeeded()) {
          logger().info("Created the system user secbox to run the embedded database.");
          name = "secbox";
        } else {
          name = "postgres";
        }
      }
    }
    run_as_ = lookup_user(name);
    if (!run_as_) {
      return fail("the user " + name +
                  " does not exist; PostgreSQL refuses to run as root, so the embedded "
                  "database needs an unprivileged user (set SECBOX_PG_USER)");
    }
    if (run_as_->uid == 0) return fail("SECBOX_PG_USER must not be root");
  }
  resolved_ = true;
  return ok();
}

Result<ProcessResult> EmbeddedCluster::pg(std::vector<std::string> argv,
                                          milliseconds timeout) const {
  ProcessOptions o;
  argv[0] = options_.bin_dir + "/" + argv[0];
  o.argv = std::move(argv);
  o.run_as = run_as_;
  o.timeout = timeout;
  o.cwd = "/";
  // A clean, predictable environment: no PG* variables of ours leak in.
  o.env = std::vector<std::string>{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "LANG=C.UTF-8"};
  return run_process(o);
}

Result<void> EmbeddedCluster::prepare_dirs() {
  if (auto r = make_dir(options_.dir, 0700, run_as_); !r) return r;
  if (auto r = make_dir(socket_dir_, 0700, run_as_); !r) return r;
  if (run_as_) {
    // The cluster user must be able to reach its folder through every parent.
    ProcessOptions probe;
    probe.argv = {"/usr/bin/test", "-w", options_.dir};
    probe.run_as = run_as_;
    auto r = run_process(probe);
    if (!r || !r.value().succeeded()) {
      const auto parent = fs::path(options_.dir).parent_path();
      struct stat st {};
      // Our own state dir may be opened for traversal only (no listing).
      if (::stat(parent.c_str(), &st) == 0 && st.st_uid == 0 && !(st.st_mode & S_IXOTH)) {
        ::chmod(parent.c_str(), (st.st_mode & 07777) | S_IXOTH);
        r = run_process(probe);
      }
    }
    if (!r || !r.value().succeeded()) {
      return fail("the database user " + run_as_->name + " cannot reach " + options_.dir +
                  "; make its parent folders traversable (chmod o+x) or set SECBOX_STATE_DIR "
                  "to a folder under /var/lib");
    }
  }
  return ok();
}

Result<void> EmbeddedCluster::initdb() {
  if (::access((data_dir_ + "/PG_VERSION").c_str(), F_OK) == 0) return ok();
  std::error_code ec;
  if (fs::exists(data_dir_, ec) && !fs::is_empty(data_dir_, ec)) {
    return fail(data_dir_ + " exists but holds no cluster (no PG_VERSION); move it aside");
  }
  logger().info("Creating the embedded database cluster; this happens once.",
                {{"dir", data_dir_}, {"user", run_as_ ? run_as_->name : std::string("(self)")}});
  auto r = pg({"initdb", "-D", data_dir_, "-U", "secbox", "--auth-local=trust",
               "--auth-host=reject", "-E", "UTF8", "--locale=C.UTF-8"},
              milliseconds(120000));
  if (!r) return fail(r.error().message);
  if (!r.value().succeeded()) {
    return fail("initdb failed: " + r.value().describe());
  }
  return ok();
}

bool EmbeddedCluster::running() const {
  if (!resolved_) return false;
  auto r = pg({"pg_ctl", "-D", data_dir_, "status"}, milliseconds(10000));
  return r && r.value().exit_code == 0;
}

Result<std::string> EmbeddedCluster::start() {
  if (auto r = resolve(); !r) return r.error();
  if (auto r = prepare_dirs(); !r) return r.error();
  if (auto r = initdb(); !r) return r.error();
  if (running()) {
    logger().info("Adopting the embedded database that is already running.");
  } else {
    // Unix socket only, in a folder only the cluster user can enter.
    const std::string opts = "-k '" + socket_dir_ + "' -p " + std::to_string(kPort) +
                             " -c listen_addresses='' -c unix_socket_permissions=0700" +
                             // No JIT: the service runs with MemoryDenyWriteExecute (install.sh).
                             " -c jit=off";
    auto r = pg({"pg_ctl", "-D", data_dir_, "-l", log_file_, "-w", "-t", "60", "-o", opts, "start"},
                milliseconds(70000));
    if (!r) return fail(r.error().message);
    if (!r.value().succeeded()) {
      return fail("the embedded database did not start (see " + log_file_ +
                  "): " + r.value().describe());
    }
    logger().info("Started the embedded database.", {{"socket_dir", socket_dir_}});
  }
  try {
    pqxx::connection admin(connection_string("postgres"));
    pqxx::nontransaction tx(admin);
    auto exists = tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", options_.database);
    if (exists.empty()) tx.exec0("CREATE DATABASE " + tx.quote_name(options_.database));
  } catch (const std::exception& e) {
    return fail(std::string("cannot create the database in the embedded cluster: ") + e.what());
  }
  return connection_string(options_.database);
}

Result<void> EmbeddedCluster::stop() {
  if (!resolved_ || !running()) return ok();
  auto r =
      pg({"pg_ctl", "-D", data_dir_, "-m", "fast", "-w", "-t", "20", "stop"}, milliseconds(25000));
  if (!r) return fail(r.error().message);
  if (!r.value().succeeded()) return fail("pg_ctl stop failed: " + r.value().describe());
  logger().info("Stopped the embedded database.");
  return ok();
}

std::string EmbeddedCluster::connection_string(const std::string& database) const {
  // Everything pinned, so that PG* variables in our environment cannot redirect it.
  return "host=" + quote_conninfo(socket_dir_) + " port=" + std::to_string(kPort) +
         " user=secbox sslmode=disable gssencmode=disable dbname=" + quote_conninfo(database);
}

}  // namespace secbox::replica
