#include <gtest/gtest.h>
#include <sys/stat.h>

#include <pqxx/pqxx>

#include "replica/embedded_cluster.hpp"
#include "temp_dir.hpp"

namespace secbox::replica {
namespace {

using secbox::testing::TempDir;

TEST(EmbeddedCluster, InitialisesStartsServesAndStops) {
  TempDir dir;
  ::chmod(dir.path().c_str(), 0711);
  EmbeddedCluster cluster(EmbeddedClusterOptions{dir.file("pg"), "", "", "secbox"});
  auto cs = cluster.start();
  ASSERT_TRUE(cs) << cs.error().message;
  EXPECT_TRUE(cluster.running());
  {
    pqxx::connection c(cs.value());
    pqxx::nontransaction tx(c);
    EXPECT_EQ(tx.exec1("SELECT current_database()")[0].as<std::string>(), "secbox");
    // Reachable on its Unix socket only.
    EXPECT_EQ(tx.exec1("SHOW listen_addresses")[0].as<std::string>(), "");
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("pg/data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  if (::geteuid() == 0) {
    EXPECT_NE(st.st_uid, 0u);  // never run as root
  }

  // A second start adopts the running cluster; a restart keeps the data.
  EmbeddedCluster again(EmbeddedClusterOptions{dir.file("pg"), "", "", "secbox"});
  ASSERT_TRUE(again.start());
  ASSERT_TRUE(again.stop());
  EXPECT_FALSE(cluster.running());
  auto restarted = cluster.start();
  ASSERT_TRUE(restarted) << restarted.error().message;
  ASSERT_TRUE(cluster.stop());
  EXPECT_TRUE(cluster.stop());  // stopping a stopped cluster is fine
}

TEST(EmbeddedCluster, MissingBinariesGiveAClearError) {
  TempDir dir;
  EmbeddedCluster cluster(EmbeddedClusterOptions{dir.file("pg"), "/nonexistent/bin", "", "x"});
  auto r = cluster.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::config);
  EXPECT_NE(r.error().message.find("initdb"), std::string::npos);
}

TEST(EmbeddedCluster, TooLongSocketPathIsRefused) {
  EmbeddedCluster cluster(EmbeddedClusterOptions{"/tmp/" + std::string(120, 'x'), "", "", "x"});
  auto r = cluster.start();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("too long"), std::string::npos);
}

}  // namespace
}  // namespace secbox::replica
