// The real `secbox` binary as a child process: start, readiness, signals, exit.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
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

}  // namespace
}  // namespace secbox
