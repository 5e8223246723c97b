#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "envfile/guards.hpp"

namespace secbox::envfile {
namespace {

EnvFile sample_env() {
  EnvFile env;
  env.set("CLOUD_BASE_URL", "https://cloud.example.com");
  env.set("DEVICE_ID", "dev_1");
  env.set("EMPTY", "");
  env.set("PRICE", "cost$5");
  env.set("LITERAL", "${NOT_EXPANDED}");
  return env;
}

std::vector<std::string> names(std::string_view yaml) {
  std::vector<std::string> out;
  for (const auto& p : find_unresolved(yaml, sample_env())) out.push_back(p.variable);
  return out;
}

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(Interpolation, ResolvedReferencesPass) {
  EXPECT_THAT(names("a: ${CLOUD_BASE_URL}\nb: $DEVICE_ID\nc: ${DEVICE_ID:?need it}\n"
                    "d: ${DEVICE_ID?x}\ne: ${MISSING:-fallback}\nf: ${MISSING-fb}\n"
                    "g: ${EMPTY-}\nh: ${DEVICE_ID:+yes}\ni: ${MISSING:+${X}}\n"),
              IsEmpty());
}

TEST(Interpolation, DoubleDollarIsALiteral) {
  EXPECT_THAT(names("cmd: echo $$HOME and $${NOT_A_VAR} and $$$$\n"), IsEmpty());
}

TEST(Interpolation, MissingOrEmptyVariablesAreNamed) {
  EXPECT_THAT(names("a: ${MISSING}\n"), ElementsAre("MISSING"));
  EXPECT_THAT(names("a: $MISSING\n"), ElementsAre("MISSING"));
  EXPECT_THAT(names("a: ${EMPTY}\n"), ElementsAre("EMPTY"));
  EXPECT_THAT(names("a: ${EMPTY:?err}\n"), ElementsAre("EMPTY"));
  EXPECT_THAT(names("a: ${MISSING?err}\n"), ElementsAre("MISSING"));
}

TEST(Interpolation, EveryFailureIsReportedWithItsLine) {
  auto problems = find_unresolved("x: 1\na: ${A}\nb: ${B}\nc: ${A}\n", sample_env());
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].line, 2);
  EXPECT_EQ(problems[1].line, 3);
  EXPECT_EQ(problems[2].line, 4);
  auto r = check_interpolation("a: ${A}\nb: ${B}\nc: ${A}\n", sample_env());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  EXPECT_NE(r.error().message.find("A, B"), std::string::npos) << r.error().message;
}

TEST(Interpolation, NestedDefaultIsNotInterpolatedAgain) {
  // podman-compose 1.0.3 passes the inner ${…} through as a literal.
  EXPECT_THAT(names("a: ${MISSING:-${DEVICE_ID:-x}}\n"), ElementsAre("MISSING"));
  EXPECT_THAT(names("a: ${MISSING-${B}}\n"), ElementsAre("MISSING"));
  // With the outer variable set, the default is never used.
  EXPECT_THAT(names("a: ${DEVICE_ID:-${MISSING:-x}}\n"), IsEmpty());
}

TEST(Interpolation, ColonDashTreatsEmptyAsUnsetButDashDoesNot) {
  EXPECT_THAT(names("a: ${EMPTY:-${X}}\n"), ElementsAre("EMPTY"));
  EXPECT_THAT(names("a: ${EMPTY-${X}}\n"), IsEmpty());
}

TEST(Interpolation, ResolvedValueHoldingDollarFails) {
  EXPECT_THAT(names("a: ${PRICE:-x}\n"), ElementsAre("PRICE"));
  EXPECT_THAT(names("a: ${LITERAL}\n"), ElementsAre("LITERAL"));
  // A lone '$' in a value referenced plainly is a legitimate value (a password).
  EXPECT_THAT(names("a: ${PRICE}\n"), IsEmpty());
}

TEST(Interpolation, SyntaxErrorsAreReported) {
  EXPECT_EQ(find_unresolved("a: ${DEVICE_ID\n", sample_env()).size(), 1u);
  EXPECT_EQ(find_unresolved("a: ${}\n", sample_env()).size(), 1u);
  EXPECT_EQ(find_unresolved("a: ${1X}\n", sample_env()).size(), 1u);
  EXPECT_EQ(find_unresolved("a: ${DEVICE_ID/x/y}\n", sample_env()).size(), 1u);
  EXPECT_EQ(find_unresolved("a: cost $ 5\n", sample_env()).size(), 1u);
  EXPECT_EQ(find_unresolved("a: $", sample_env()).size(), 1u);
}

TEST(Interpolation, FullLineYamlCommentsAreSkipped) {
  EXPECT_THAT(names("# uses ${MISSING}\n  # ${ALSO}\na: 1\n"), IsEmpty());
}

TEST(Interpolation, ValuesNeverAppearInMessages) {
  EnvFile env;
  env.set("SECRET", "s3cr3t$value");
  auto r = check_interpolation("a: ${SECRET:-x}\n", env);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("s3cr3t"), std::string::npos) << r.error().message;
}

TEST(Interpolation, VariablesResolveFromTheEnvFileOnlyNotTheProcessEnvironment) {
  ::setenv("SECBOX_TEST_ONLY_IN_PROCESS_ENV", "1", 1);
  EXPECT_THAT(names("a: ${SECBOX_TEST_ONLY_IN_PROCESS_ENV}\n"),
              ElementsAre("SECBOX_TEST_ONLY_IN_PROCESS_ENV"));
  ::unsetenv("SECBOX_TEST_ONLY_IN_PROCESS_ENV");
}

}  // namespace
}  // namespace secbox::envfile
