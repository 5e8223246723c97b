// The files an update leaves for the next start and for secbox-recover: read
// back only when every value keeps its rules (the folder is the daemon's,
// and secbox-recover runs as root), one clientId per attempt.
#include <unistd.h>

#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include "update/state.hpp"

namespace secbox::update {
namespace {

using secbox::testing::TempDir;

TEST(UpdateState, RoundTripsEveryField) {
  TempDir dir;
  UpdateState s{"0f1e2d3c-aaaa", "1.0.0", "1.1.0-rc.1+b7", "trial", 1700000000, 1700000300, 120, 1};
  ASSERT_TRUE(save_state(dir.path(), s));
  auto back = load_state(dir.path());
  ASSERT_TRUE(back && back.value());
  const auto& b = *back.value();
  EXPECT_EQ(b.attempt, s.attempt);
  EXPECT_EQ(b.from, s.from);
  EXPECT_EQ(b.to, s.to);
  EXPECT_EQ(b.phase, "trial");
  EXPECT_EQ(b.switched_at, 1700000000);
  EXPECT_EQ(b.deadline, 1700000300);
  EXPECT_EQ(b.trial_s, 120);
  EXPECT_EQ(b.starts, 1);
  remove_state(dir.path());
  EXPECT_TRUE(load_state(dir.path()).value() == std::nullopt);
}

TEST(UpdateState, AHostileStateFileIsRefusedNotBelieved) {
  TempDir dir;
  for (const std::string& text : std::vector<std::string>{
           "ATTEMPT=a\nFROM=1.0\nTO=../../bin\nPHASE=trial\n",
           "ATTEMPT=a b\nFROM=1.0\nTO=2.0\nPHASE=trial\n",
           "ATTEMPT=a\nFROM=1.0\nTO=2.0\nPHASE=reboot\n",
           "ATTEMPT=a\nFROM=1.0\nTO=2.0\nPHASE=trial\nDEADLINE=-5\n",
           "ATTEMPT=a\nFROM=1.0\nTO=2.0\nPHASE=trial\nSTARTS=99999999999999999999\n",
           std::string(5000, 'x')}) {
    dir.write("update.state", text);
    auto s = load_state(dir.path());
    EXPECT_FALSE(s) << text.substr(0, 60);
    if (!s) {
      EXPECT_EQ(s.error().code, Errc::invalid);
    }
  }
  UpdateState bad{"a", "1.0", "../x", "trial"};
  EXPECT_FALSE(save_state(dir.path(), bad));
}

TEST(UpdateState, OutcomesAreReadWithTheirDetailOnOneLine) {
  TempDir dir;
  UpdateOutcome o{"att-1", "1.0.0", "2.0.0", false, "rollback", "line one\nline two"};
  ASSERT_TRUE(save_outcome(dir.path(), o));
  dir.write("results/.att-2.tmp.123", "half-written");
  auto all = load_outcomes(dir.path());
  ASSERT_EQ(all.size(), 1u) << "a temp file is not an outcome";
  EXPECT_EQ(all[0].outcome.detail, "line one line two");
  EXPECT_EQ(all[0].outcome.data()["phase"], "rollback");
  EXPECT_EQ(all[0].outcome.data()["ok"], false);
  remove_outcome(all[0].file);
  EXPECT_TRUE(load_outcomes(dir.path()).empty());
}

// A hostile daemon's link: results -> /etc made the next start report
// every file of /etc as a failed rollback.
TEST(UpdateState, AResultsFolderThatIsALinkHoldsNoOutcomes) {
  TempDir dir;
  TempDir elsewhere;
  elsewhere.write("passwd", "root:x:0:0::/root:/bin/sh\n");
  ASSERT_EQ(::symlink(elsewhere.path().c_str(), (dir.path() + "/results").c_str()), 0);
  EXPECT_TRUE(load_outcomes(dir.path()).empty());
  ::unlink((dir.path() + "/results").c_str());
  UpdateOutcome o{"att-1", "1.0.0", "2.0.0", false, "rollback", "why"};
  ASSERT_TRUE(save_outcome(dir.path(), o));
  ASSERT_EQ(
      ::symlink((elsewhere.path() + "/passwd").c_str(), (dir.path() + "/results/att-2").c_str()),
      0);
  auto all = load_outcomes(dir.path());
  ASSERT_EQ(all.size(), 1u) << "a link among the outcomes is not one";
  EXPECT_EQ(all[0].outcome.attempt, "att-1");
}

TEST(UpdateState, OneClientIdPerAttempt) {
  auto of = [](const std::string& attempt) {
    return UpdateOutcome{attempt, "1.0", "2.0", false, "done", ""};
  };
  const auto a = of("att-1"), b = of("att-1"), c = of("att-2");
  EXPECT_EQ(a.client_id(), b.client_id());
  EXPECT_NE(a.client_id(), c.client_id());
  EXPECT_EQ(a.client_id().size(), 36u);
}

}  // namespace
}  // namespace secbox::update
