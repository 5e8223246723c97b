// The real `secbox` binary as a child process: start, readiness, signals, exit.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>
#include <thread>

#include "common/atomic_file.hpp"
#include "common/certificates.hpp"
#include "common/net.hpp"
#include "daemon.hpp"
#include "https_client.hpp"
#include "replica/migrations.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"

namespace secbox {
namespace {

using namespace std::chrono_literals;
using secbox::testing::Daemon;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

TEST(Daemon, RunsWithTheEmbeddedDatabaseAndStopsOnSigtermWithin5s) {
  TempDir dir;
  Daemon d(dir);
  d.start();
  ASSERT_TRUE(d.wait_for_log("secbox is running", 60s)) << d.log();
  {
    pqxx::connection c("host=" + dir.file("state/pg/run") + " port=5432 user=secbox dbname=secbox");
    pqxx::nontransaction tx(c);
    // Every migration the binary carries.
    EXPECT_EQ(tx.exec1("SELECT max(version) FROM schema_migrations")[0].as<int>(),
              replica::builtin_migrations().back().version);
  }
  const auto t0 = std::chrono::steady_clock::now();
  d.signal(SIGTERM);
  auto code = d.wait_exit(5s);
  ASSERT_TRUE(code) << "still running 5 s after SIGTERM\n" << d.log();
  EXPECT_EQ(*code, 0) << d.log();
  std::cout << "[ figure ] stop after SIGTERM took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count()
            << " ms\n";
  // The embedded postmaster is gone with it.
  struct stat st {};
  EXPECT_NE(::stat(dir.file("state/pg/data/postmaster.pid").c_str(), &st), 0);
  EXPECT_NE(d.log().find("Stopped the embedded database."), std::string::npos);
}

// A box runs for years: its LAN certificate is renewed while it runs, and new
// connections get the new one without a restart.
TEST(Daemon, RenewsTheLanCertificateWhileRunningWhenItNearsExpiry) {
  TempDir dir;
  Daemon d(dir, {"LAN_CERT_CHECK_S=1"});
  d.start();
  // The LAN server starts once the database is ready, after "secbox is running".
  ASSERT_TRUE(d.wait_for_log("LAN server ready.", 60s)) << d.log();
  const std::string log = d.log();
  const auto at = log.find("LAN server ready.\",\"port\":");
  ASSERT_NE(at, std::string::npos) << log;
  const int port = std::atoi(log.c_str() + at + 26);
  // The box's names, 10 days left: what the box would hold after 815 days.
  std::vector<std::string> ips = lan_addresses();
  ips.insert(ips.end(), {"127.0.0.1", "::1"});
  auto near = make_self_signed({host_name(),
                                {host_name(), "secbox.local", "localhost"},
                                ips,
                                std::chrono::hours(24 * 10),
                                false});
  ASSERT_TRUE(near);
  ASSERT_TRUE(write_file_atomically(dir.file("state/lan/key.pem"), near.value().key_pem,
                                    {0600, std::nullopt}));
  ASSERT_TRUE(write_file_atomically(dir.file("state/lan/cert.pem"), near.value().cert_pem,
                                    {0644, std::nullopt}));
  ASSERT_TRUE(d.wait_for_log("Renewed the LAN certificate.", 15s)) << d.log();
  auto sha = [](const std::string& pem) {
    auto s = certificate_sha256(pem);
    return s ? s.value() : std::string("unreadable");
  };
  auto on_disk = read_file(dir.file("state/lan/cert.pem"), 1 << 20);
  ASSERT_TRUE(on_disk);
  EXPECT_NE(sha(on_disk.value()), sha(near.value().cert_pem));
  secbox::testing::HttpsClient c(port);
  ASSERT_TRUE(c.connected()) << d.log();
  EXPECT_EQ(sha(c.peer_certificate_pem()), sha(on_disk.value()))
      << "the server must present the renewed certificate";
  auto metrics = c.call("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  const std::string gauge =
      "\nsecbox_lan_certificate_expiry_timestamp_seconds ";  // the sample, not its HELP
  const auto g = metrics.body.find(gauge);
  ASSERT_NE(g, std::string::npos) << metrics.body;
  const double expiry = std::atof(metrics.body.c_str() + g + gauge.size());
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(expiry - now, 800.0 * 86400) << "the renewed certificate is good for 825 days";
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

// /metrics told anyone on the LAN whether cameras, Frigate and the tunnel
// were up. Only the configured scrapers read it: here neither this client's
// address (127.0.0.1) nor a wrong token, only the right token.
TEST(Daemon, MetricsAnswerOnlyTheConfiguredScrapers) {
  TempDir dir;
  const std::string token = "scrape-0123456789abcdef";
  Daemon d(dir, {"METRICS_ALLOW=192.0.2.10,fd00::/64", "METRICS_TOKEN=" + token});
  d.start();
  ASSERT_TRUE(d.wait_for_log("LAN server ready.", 60s)) << d.log();
  const std::string log = d.log();
  const auto at = log.find("LAN server ready.\",\"port\":");
  ASSERT_NE(at, std::string::npos) << log;
  secbox::testing::HttpsClient c(std::atoi(log.c_str() + at + 26));
  ASSERT_TRUE(c.connected()) << d.log();
  auto anonymous = c.call("GET", "/metrics");
  EXPECT_EQ(anonymous.status, 403) << anonymous.body;
  EXPECT_EQ(anonymous.body.find("secbox_"), std::string::npos) << "no figure in the refusal";
  auto wrong = c.call("GET", "/metrics", "", {{"Authorization", "Bearer scrape-0123456789abcdeX"}});
  EXPECT_EQ(wrong.status, 403);
  auto scraper = c.call("GET", "/metrics", "", {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(scraper.status, 200);
  EXPECT_NE(scraper.body.find("secbox_http_requests_total"), std::string::npos) << scraper.body;
  EXPECT_EQ(d.log().find(token), std::string::npos) << "the token is a secret";
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

TEST(Daemon, SigintStopsAndASecondStartReusesTheCluster) {
  TempDir dir;
  {
    Daemon d(dir);
    d.start();
    ASSERT_TRUE(d.wait_for_log("secbox is running", 60s)) << d.log();
    d.signal(SIGINT);
    EXPECT_EQ(d.wait_exit(5s), 0);
  }
  Daemon again(dir);
  again.start();
  ASSERT_TRUE(again.wait_for_log("secbox is running", 60s)) << again.log();
  EXPECT_EQ(again.log().find("Creating the embedded database cluster"), std::string::npos);
  EXPECT_NE(again.log().find("\"migrations_applied\":0"), std::string::npos) << again.log();
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait_exit(5s), 0);
}

TEST(Daemon, BadConfigExitsWith2NamingTheKeyAndTheFile) {
  TempDir dir;
  Daemon d(dir);
  dir.write("etc/secbox.env", "LAN_PORT=http\n");
  d.start();
  EXPECT_EQ(d.wait_exit(10s), 2);
  EXPECT_NE(d.log().find("LAN_PORT in " + dir.file("etc/secbox.env")), std::string::npos)
      << d.log();
}

TEST(Daemon, SighupRereadsTheConfigAndKeepsTheOldOneWhenTheNewIsBad) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(d.wait_for_log("secbox is running", 30s)) << d.log();
  dir.write("etc/secbox.env", "SECBOX_LOG_LEVEL=nonsense\n");
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_log("keeping the current one", 10s)) << d.log();
  dir.write("etc/secbox.env", "SECBOX_LOG_LEVEL=warn\n");
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_log("Configuration reloaded", 10s)) << d.log();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0);
  // Running at warn now: the info line about stopping is no longer written.
  EXPECT_EQ(d.log().find("Stopping (SIGTERM)"), std::string::npos) << d.log();
}

TEST(Daemon, SecretsFromTheEnvFileNeverReachTheLog) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  Daemon d(dir, {"SECBOX_LOG_LEVEL=debug"});
  ::mkdir(dir.file("etc").c_str(), 0700);
  dir.write("etc/secbox.env",
            "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n"
            "BOOTSTRAP=bt_SuperSecretBootstrap01\nDATABASE_URL='" +
                db.url() + " application_name=pw_Zz9yX8'\n");
  d.start();
  ASSERT_TRUE(d.wait_for_log("secbox is running", 30s)) << d.log();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0);
  EXPECT_EQ(d.log().find("bt_SuperSecretBootstrap01"), std::string::npos) << d.log();
  EXPECT_EQ(d.log().find("pw_Zz9yX8"), std::string::npos) << d.log();
}

// systemd's notify protocol, received the way systemd does: a datagram
// socket named by NOTIFY_SOCKET.
TEST(Daemon, TellsSystemdItIsReadyFeedsTheWatchdogFromItsLoopAndSaysWhenItStops) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  const std::string path = dir.file("notify.sock");
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::chmod(path.c_str(), 0666);
  timeval tv{0, 200 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto receive_until = [&](const std::string& wanted, std::chrono::seconds limit,
                           std::vector<std::string>& seen) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[512];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) continue;
      seen.emplace_back(buf, static_cast<std::size_t>(n));
      if (seen.back().find(wanted) != std::string::npos) return true;
    }
    return false;
  };

  Daemon d(dir, {"DATABASE_URL=" + db.url(), "NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=300000"});
  d.start();
  std::vector<std::string> seen;
  ASSERT_TRUE(receive_until("READY=1", 30s, seen)) << d.log();
  // Fed every half period (150 ms): at least 5 more within 2 s.
  int feeds = 0;
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    std::vector<std::string> more;
    if (receive_until("WATCHDOG=1", 1s, more)) ++feeds;
  }
  EXPECT_GE(feeds, 5);
  d.signal(SIGTERM);
  EXPECT_TRUE(receive_until("STOPPING=1", 5s, seen)) << d.log();
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
  ::close(fd);
}

}  // namespace
}  // namespace secbox
