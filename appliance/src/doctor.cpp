// `secbox doctor`: what is wrong with this box, and how to fix it.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <unistd.h>

#include <ctime>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "appliance/cli.hpp"
#include "common/atomic_file.hpp"
#include "common/net.hpp"
#include "common/time.hpp"
#include "lan/named_certificate.hpp"
#include "replica/embedded_cluster.hpp"
#include "replica/migrations.hpp"

namespace secbox::appliance {
namespace {

enum class Status { ok, warn, fail };

struct Report {
  std::ostream& out;
  int failures = 0;

  void add(Status s, std::string_view check, const std::string& detail,
           const std::string& fix = "") {
    static const char* const kWords[] = {"ok   ", "WARN ", "FAIL "};
    out << kWords[static_cast<int>(s)] << " " << std::left << std::setw(12) << check << detail
        << "\n";
    if (!fix.empty())
      out << "      " << std::setw(12) << ""
          << "fix: " << fix << "\n";
    if (s == Status::fail) ++failures;
  }
};

std::string octal(mode_t m) {
  std::ostringstream s;
  s << std::setfill('0') << std::setw(4) << std::oct << (m & 07777);
  return s.str();
}

void check_env_file(Report& r, const Config& c) {
  const auto path = c.paths.env_file();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    r.add(Status::warn, "env file", path + " does not exist: the box is not paired",
          "pair the box with the form on port " + std::to_string(c.pairing_port));
    return;
  }
  auto parsed = envfile::load(path);
  if (!parsed) {
    r.add(Status::fail, "env file", parsed.error().message, "correct that line of " + path);
    return;
  }
  if ((st.st_mode & 077) != 0) {
    r.add(Status::fail, "env file",
          path + " has mode " + octal(st.st_mode) + "; others can read it", "chmod 600 " + path);
  } else {
    r.add(Status::ok, "env file", path + " (mode " + octal(st.st_mode) + ")");
  }
}

void check_config(Report& r, const Config& c, bool loaded, const std::string& error) {
  if (!loaded) {
    r.add(Status::fail, "config", error, "correct the key named above");
    return;
  }
  if (c.paired()) {
    r.add(Status::ok, "config", "paired as " + c.device_id + " with " + c.cloud_base_url);
  } else {
    r.add(Status::warn, "config", "not paired (no DEVICE_ID and CLOUD_BASE_URL)",
          "pair the box with the form on port " + std::to_string(c.pairing_port));
  }
}

// The cloud the pairing form pairs with (docs/install.md).
void check_cloud(Report& r, const Config& c) {
  if (!c.cloud_pin_error.empty()) {
    r.add(Status::fail, "cloud", c.cloud_pin_error + ": the box pairs with no cloud",
          "run install.sh again with --cloud URL");
  } else if (!c.pinned_cloud.empty()) {
    r.add(Status::ok, "cloud",
          "pairs only with " + c.pinned_cloud + " (" + c.paths.cloud_pin_file() + ")");
  } else if (!c.cloud_base_url.empty()) {
    r.add(Status::warn, "cloud",
          "no " + c.paths.cloud_pin_file() + ": re-pairs only with " + c.cloud_base_url,
          "run install.sh again with --cloud URL to pin it");
  } else {
    r.add(Status::warn, "cloud", "installed without its cloud: the pairing form pairs with none",
          "run install.sh again with --cloud URL");
  }
}

void check_state_dir(Report& r, const Config& c) {
  const auto& dir = c.paths.state_dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    r.add(Status::warn, "state dir", dir + " does not exist yet", "`secbox run` creates it");
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    r.add(Status::fail, "state dir", dir + " is not a folder", "move it aside");
  } else if (st.st_uid != ::geteuid()) {
    r.add(Status::fail, "state dir",
          dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user",
          "chown the folder to the user secbox runs as");
  } else if ((st.st_mode & 066) != 0) {
    r.add(Status::fail, "state dir",
          dir + " has mode " + octal(st.st_mode) + "; others can read or write it",
          "chmod 700 " + dir + " (or 711 when the embedded database runs as another user)");
  } else if (::access(dir.c_str(), W_OK) != 0) {
    r.add(Status::fail, "state dir", dir + " is not writable", "check its permissions");
  } else {
    r.add(Status::ok, "state dir", dir + " (mode " + octal(st.st_mode) + ")");
  }
}

void check_disk(Report& r, const Config& c) {
  struct statvfs vfs {};
  std::string path = c.paths.state_dir;
  if (::statvfs(path.c_str(), &vfs) != 0) {
    path = "/";
    if (::statvfs(path.c_str(), &vfs) != 0) return;
  }
  const double total = static_cast<double>(vfs.f_blocks) * vfs.f_frsize;
  const double avail = static_cast<double>(vfs.f_bavail) * vfs.f_frsize;
  const double pct = total > 0 ? 100.0 * avail / total : 0;
  std::ostringstream detail;
  detail << std::fixed << std::setprecision(1) << avail / (1 << 30) << " GiB free of "
         << total / (1 << 30) << " GiB (" << pct << " %) on " << path;
  if (avail < 512.0 * (1 << 20) || pct < 5) {
    r.add(Status::fail, "disk", detail.str(), "free space: old HLS segments, journal, images");
  } else if (pct < 10) {
    r.add(Status::warn, "disk", detail.str(), "free space before it runs out");
  } else {
    r.add(Status::ok, "disk", detail.str());
  }
}

void check_clock(Report& r) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (tm.tm_year + 1900 < 2025) {
    r.add(Status::fail, "clock",
          std::string("the clock says ") + buf + "; TLS certificates and tokens will not validate",
          "enable NTP: timedatectl set-ntp true");
    return;
  }
  timex tx{};
  const int state = ::adjtimex(&tx);
  if (state == TIME_ERROR || (tx.status & STA_UNSYNC)) {
    r.add(Status::warn, "clock", std::string(buf) + ", not synchronised by NTP",
          "enable NTP: timedatectl set-ntp true");
  } else {
    r.add(Status::ok, "clock", std::string(buf) + ", synchronised");
  }
}

// cloud-protocol §7.7: the certificate phones trust, and the address guards
// open; the bare addresses with the self-signed certificate otherwise.
void check_lan_certificate(Report& r, const Config& c) {
  const std::string dir = c.paths.state_dir + "/lan";
  auto name = read_file(dir + "/name", 1024);
  if (!name) {
    r.add(Status::ok, "lan cert", "self-signed: the cloud has given the box no name",
          "phones warn until a name and its certificate come from the cloud");
    return;
  }
  std::string n = name.value();
  while (!n.empty() && (n.back() == '\n' || n.back() == ' ')) n.pop_back();
  auto cert =
      lan::load_named(dir + "/named.pem", c.lan_cert_roots_file, std::chrono::system_clock::now());
  if (!cert || cert.value().name != n) {
    r.add(Status::warn, "lan cert",
          "named " + n + ", but no trusted certificate is served" +
              (cert ? std::string() : " (" + cert.error().message + ")"),
          "the box asks the cloud again; see the logs of lan.cert");
    return;
  }
  std::string addresses;
  for (const auto& a : c.guard_addresses()) {
    const auto link = lan::guard_address(n, a, c.lan_port);
    if (!link.empty()) addresses += (addresses.empty() ? "" : ", ") + link;
  }
  r.add(Status::ok, "lan cert",
        "trusted for *." + n + " until " + format_rfc3339(cert.value().not_after) +
            (addresses.empty() ? "; the box has no private IPv4 address to name"
                               : "; guards open " + addresses));
}

void check_database(Report& r, const Config& c) {
  const int known = replica::builtin_migrations().back().version;
  std::string cs = c.database_url;
  if (cs.empty()) {
    if (replica::find_postgres_bin_dir().empty() && c.pg_bin_dir.empty()) {
      r.add(Status::fail, "database",
            "no DATABASE_URL and no PostgreSQL binaries for the embedded one",
            "apt-get install postgresql, or set DATABASE_URL");
      return;
    }
    struct stat st {};
    if (::stat((c.paths.pg_dir() + "/data/PG_VERSION").c_str(), &st) != 0) {
      r.add(Status::warn, "database", "the embedded database is not created yet",
            "`secbox run` creates it in " + c.paths.pg_dir());
      return;
    }
    replica::EmbeddedCluster cluster({c.paths.pg_dir(), c.pg_bin_dir, c.pg_user, "secbox"});
    cs = cluster.connection_string("secbox") + " connect_timeout=3";
  } else {
    cs += (cs.find("://") != std::string::npos ? "" : " connect_timeout=3");
  }
  auto v = replica::schema_version(cs);
  if (!v) {
    r.add(c.database_url.empty() ? Status::warn : Status::fail, "database",
          c.database_url.empty() ? "the embedded database is not running"
                                 : "cannot reach DATABASE_URL: " + v.error().message,
          c.database_url.empty() ? "`secbox run` starts it" : "check the server and DATABASE_URL");
    return;
  }
  if (v.value() > known) {
    r.add(Status::fail, "database",
          "schema version " + std::to_string(v.value()) + " is newer than this secbox (" +
              std::to_string(known) + ")",
          "install the newer secbox that migrated it");
  } else if (v.value() < known) {
    r.add(Status::warn, "database",
          "schema version " + std::to_string(v.value()) + " of " + std::to_string(known),
          "secbox migrate");
  } else {
    r.add(Status::ok, "database", "reachable, schema version " + std::to_string(v.value()));
  }
}

}  // namespace

int doctor(const Config& config, std::ostream& out) {
  Report r{out};
  auto loaded = load_config(process_environment());
  check_env_file(r, config);
  check_config(r, config, static_cast<bool>(loaded), loaded ? "" : loaded.error().message);
  check_cloud(r, config);
  check_state_dir(r, config);
  check_disk(r, config);
  check_clock(r);
  check_lan_certificate(r, config);
  check_database(r, config);
  out << (r.failures == 0 ? "No problems found.\n"
                          : std::to_string(r.failures) + " problem(s) found.\n");
  return r.failures == 0 ? 0 : 1;
}

}  // namespace secbox::appliance
