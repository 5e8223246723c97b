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

#include "daemon.hpp"
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
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
            << " ms\n";
  // The embedded postmaster is gone with it.
  struct stat st {};
  EXPECT_NE(::stat(dir.file("state/pg/data/postmaster.pid").c_str(), &st), 0);
  EXPECT_NE(d.log().find("Stopped the embedded database."), std::string::npos);
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
            "BOOTSTRAP=bt_SuperSecretBootstrap01\nDATABASE_URL='" + db.url() + " application_name=pw_Zz9yX8'\n");
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
  auto receive_until = [&](const std::string& wanted, std::chrono::seconds limit, std::vector<std::string>& seen) {
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
