// The LAN certificate keeper: made once and read back the same after a
// restart; its checks run on a worker at their interval and hand a certificate
// over only when a new one was made (the renewal itself, with an expiring
// certificate, is Daemon.RenewsTheLanCertificateWhileRunningWhenItNearsExpiry).
#include "lan_certificate_keeper.hpp"

#include <gtest/gtest.h>

#include "run_loop.hpp"
#include "temp_dir.hpp"

namespace secbox::appliance {
namespace {

using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;

TEST(LanCertificateKeeper, MadeOnceKeptAcrossARestartAndNotHandedOverUnchanged) {
  TempDir state;
  boost::asio::io_context io;
  BlockingPool workers(io, 1);
  std::string first;
  {
    LanCertificateKeeper keeper(io, workers, state.path(), 1s);
    ASSERT_TRUE(keeper.make_now());
    first = keeper.current()->sha256;
    EXPECT_TRUE(keeper.current()->made_now);
  }
  LanCertificateKeeper again(io, workers, state.path(), 1s);
  ASSERT_TRUE(again.make_now());
  EXPECT_EQ(again.current()->sha256, first) << "read back, not made again";
  EXPECT_FALSE(again.current()->made_now);
  int handed = 0;
  again.start([&](const lan::LanCertificate&) { return ++handed > 0; });
  run_until(
      io, [] { return false; }, 2500ms);  // two checks
  EXPECT_EQ(handed, 0) << "a check that made nothing new hands nothing over";
  again.stop();
  EXPECT_EQ(again.current()->sha256, first);
}

}  // namespace
}  // namespace secbox::appliance
