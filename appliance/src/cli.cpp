#include "appliance/cli.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "appliance/app.hpp"
#include "update/update_service.hpp"
#include "update_cli.hpp"
#include "common/log.hpp"
#include "replica/embedded_cluster.hpp"
#include "replica/migrations.hpp"

namespace secbox::appliance {
namespace {

constexpr const char* kUsage = R"(Usage: secbox <command> [options]

The SecBox appliance daemon and its tools.

Commands:
  run                  run the daemon (the event loop and every component)
  migrate              apply the database migrations and exit
  env check [--compose FILE]
                       run the env-file guards offline and print each phase
  doctor               check the env file, database, state dir, disk and clock
  version              print the version, and the versions side by side
  update --file BIN --signature SIG --version V
                       install a signed update without the tunnel (trial and
                       rollback as for update.apply)

Run `secbox <command> --help` for one command's help.

Environment:
  SECBOX_ETC_DIR       where secbox.env lives (default /etc/secbox)
  SECBOX_STATE_DIR     where state lives (default /var/lib/secbox)
  SECBOX_COMPOSE_DIR   the compose projects' folders (default <state>/compose)
Every other setting is read from secbox.env, then from the environment.
)";

constexpr const char* kRunHelp = R"(Usage: secbox run

Runs the daemon in the foreground until SIGTERM or SIGINT; SIGHUP re-reads
secbox.env. Without DATABASE_URL it creates and runs its own PostgreSQL
cluster in $SECBOX_STATE_DIR/pg. Logs are JSON lines on stderr, or readable
lines with SECBOX_ENV=development.
)";

constexpr const char* kMigrateHelp = R"(Usage: secbox migrate

Applies the database migrations this binary carries and exits. Without
DATABASE_URL it starts the embedded cluster for the duration. Refuses (exit 3)
a database whose schema is newer than this binary knows.
)";

constexpr const char* kEnvCheckHelp = R"(Usage: secbox env check [--compose FILE]

Runs the guards that protect a compose restart, without changing anything:
  env-ensure               secbox.env present, or derivable from mgmt-agent.env
  secbox-env-missing-keys  DEVICE_ID and CLOUD_BASE_URL present and non-empty
  env-unresolved-vars      every ${VAR} in FILE resolves from secbox.env alone
Exit 0 when every phase passes, 1 otherwise.
)";

constexpr const char* kDoctorHelp = R"(Usage: secbox doctor

Checks the env file, the configuration, the state dir's permissions, free
disk, the clock and the database, and says how to fix what is wrong.
Exit 0 when nothing failed, 1 otherwise.
)";

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

Result<Config> config_or_report() {
  auto config = load_config(process_environment());
  if (!config) {
    std::cerr << "secbox: bad configuration: " << config.error().message << "\n";
  } else {
    configure_logging(config.value());
  }
  return config;
}

Result<void> ensure_state_dir(const Config& config) {
  const auto& dir = config.paths.state_dir;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{Errc::config, "cannot create the state dir " + dir + ": " + std::strerror(errno) +
                                   " (set SECBOX_STATE_DIR to a writable folder)"};
  }
  return ok();
}

int cmd_run(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kRunHelp, 0;
  if (!args.empty()) return std::cerr << "secbox run: unexpected argument " << args[0] << "\n", 2;
  auto config = config_or_report();
  if (!config) return 2;
  if (auto r = ensure_state_dir(config.value()); !r) {
    std::cerr << "secbox: " << r.error().message << "\n";
    return 2;
  }
  App app(std::move(config).value());
  return app.run();
}

int cmd_migrate(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kMigrateHelp, 0;
  if (!args.empty())
    return std::cerr << "secbox migrate: unexpected argument " << args[0] << "\n", 2;
  auto config = config_or_report();
  if (!config) return 2;
  const Config& c = config.value();
  std::string cs = c.database_url;
  std::unique_ptr<replica::EmbeddedCluster> cluster;
  if (cs.empty()) {
    if (auto r = ensure_state_dir(c); !r)
      return std::cerr << "secbox: " << r.error().message << "\n", 2;
    cluster = std::make_unique<replica::EmbeddedCluster>(
        replica::EmbeddedClusterOptions{c.paths.pg_dir(), c.pg_bin_dir, c.pg_user, "secbox"});
    auto started = cluster->start();
    if (!started) return std::cerr << "secbox migrate: " << started.error().message << "\n", 1;
    cs = started.value();
  }
  auto report = replica::migrate(cs);
  if (cluster) (void)cluster->stop();
  if (!report) {
    std::cerr << "secbox migrate: " << report.error().message << "\n";
    return report.error().code == Errc::schema_newer ? 3 : 1;
  }
  std::cout << "Schema at version " << report.value().to_version << " (was "
            << report.value().from_version << "; applied " << report.value().applied.size()
            << ").\n";
  return 0;
}

int cmd_env(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "check") {
    if (wants_help(args)) return std::cout << kEnvCheckHelp, 0;
    std::cerr << "Usage: secbox env check [--compose FILE]\n";
    return 2;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (wants_help(rest)) return std::cout << kEnvCheckHelp, 0;
  std::string compose;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == "--compose" && i + 1 < rest.size()) {
      compose = rest[++i];
    } else {
      std::cerr << "secbox env check: unexpected argument " << rest[i] << "\n";
      return 2;
    }
  }
  // Paths only: the guards report a broken env file themselves.
  Config c;
  auto env = process_environment();
  if (auto it = env.find("SECBOX_ETC_DIR"); it != env.end() && !it->second.empty()) {
    c.paths.etc_dir = it->second;
  }
  return env_check(c, compose, std::cout);
}

int cmd_doctor(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kDoctorHelp, 0;
  auto config = load_config(process_environment());
  Config c;
  if (config) {
    c = config.value();
  } else {
    auto env = process_environment();
    if (auto it = env.find("SECBOX_ETC_DIR"); it != env.end() && !it->second.empty())
      c.paths.etc_dir = it->second;
    if (auto it = env.find("SECBOX_STATE_DIR"); it != env.end() && !it->second.empty())
      c.paths.state_dir = it->second;
  }
  log::configure(log::Options{false, log::Level::error});  // the report is the output
  return doctor(c, std::cout);
}

}  // namespace

int main_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") return std::cout << kUsage, 0;
  if (cmd == "--version") return std::cout << "secbox " << update::running_version() << "\n", 0;
  if (cmd == "version") return cmd_version(rest, std::cout, std::cerr);
  if (cmd == "update") return cmd_update(rest, std::cout, std::cerr);
  // The recovery script install.sh installs (root's, beside the versions).
  if (cmd == "recover-script") return std::cout << update::recover_script(), 0;
  if (cmd == "run") return cmd_run(rest);
  if (cmd == "migrate") return cmd_migrate(rest);
  if (cmd == "env") return cmd_env(rest);
  if (cmd == "doctor") return cmd_doctor(rest);
  std::cerr << "secbox: unknown command \"" << cmd << "\"\n\n" << kUsage;
  return 2;
}

}  // namespace secbox::appliance
