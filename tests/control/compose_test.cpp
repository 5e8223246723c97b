// The guarded compose restart (cloud-protocol §7.3) against a fake compose
// tool that records its calls: every phase's failure path, the bad-config
// matrix (nothing past the failing phase runs and the previous file stays in
// place), time limits, and the rollback.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/compose.hpp"
#include "envfile/guards.hpp"
#include "temp_dir.hpp"

namespace secbox::control {
namespace {

using testing::TempDir;

const char* kEnv =
    "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n"
    "DEVICE_GATEWAY_URL=wss://cloud.example.com/ws/device\nIMAGE_TAG=1.4.2\n";
const char* kLegacy =
    "CLOUD_BASE_URL=https://cloud.example.com\nDEVICE_ID=dev_7Q2x\n"
    "BOOTSTRAP=bt_0123456789abcdef\nMGMT_GATEWAY_URL=wss://gw.example.com/ws/mgmt\n";
const char* kPrevious = "services:\n  app:\n    image: localhost/app:1\n";
const char* kNext =
    "services:\n"
    "  app:\n"
    "    image: localhost/app:${IMAGE_TAG}\n"
    "    environment:\n"
    "      CLOUD_BASE_URL: ${CLOUD_BASE_URL}\n"
    "  web:\n"
    "    image: localhost/web:1\n"
    "    healthcheck:\n"
    "      test: [\"CMD\", \"true\"]\n";

struct Applied {
  ComposeOutcome outcome;
  std::vector<std::string> phases;  // "write:ok", "env-ensure:fail", …
};

class ComposeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir.file("etc").c_str(), 0700);
    ::mkdir(dir.file("fake").c_str(), 0700);
    settings.command = {FAKE_COMPOSE, "--fake-state=" + dir.file("fake")};
    settings.env_file = dir.file("etc/secbox.env");
    settings.legacy_env_file = dir.file("etc/mgmt-agent.env");
    settings.dir = dir.file("compose");
    settings.up_timeout = std::chrono::seconds(10);
    settings.health_timeout = std::chrono::milliseconds(1500);
    settings.health_poll = std::chrono::milliseconds(100);
    settings.tool_timeout = std::chrono::seconds(10);
  }

  void behave(const nlohmann::json& b) { dir.write("fake/behaviour.json", b.dump()); }
  void install_previous() {
    ::mkdir(dir.file("compose").c_str(), 0700);
    ::mkdir(dir.file("compose/gate").c_str(), 0700);
    dir.write("compose/gate/compose.yaml", kPrevious);
  }
  std::string in_service() const { return TempDir::read(dir.file("compose/gate/compose.yaml")); }
  // The file the tool is given: the checked, canonical form of what was sent.
  std::string canonical(const std::string& yaml) const {
    auto c = check_compose(yaml, settings.dir + "/gate", settings.allowance, "gate");
    return c ? c.value().canonical : "not accepted: " + c.error().message;
  }

  Applied apply(const std::string& yaml, const std::string& project = "gate") {
    Applied r;
    r.outcome = run_compose_snapshot(
        settings, project, yaml, [&](std::string_view phase, bool ok, const std::string&) {
          r.phases.push_back(std::string(phase) + (ok ? ":ok" : ":fail"));
        });
    return r;
  }

  std::vector<nlohmann::json> calls() const {
    std::vector<nlohmann::json> out;
    std::istringstream in(TempDir::read(dir.file("fake/calls.jsonl")));
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  int calls_of(const std::string& command) const {
    int n = 0;
    for (const auto& c : calls()) {
      const auto& argv = c["argv"];
      // The subcommand follows -p P -f F.
      if (c["tool"] == "compose" && argv.size() > 4 && argv[4] == command) ++n;
    }
    return n;
  }

  TempDir dir;
  ComposeSettings settings;
};

TEST_F(ComposeTest, RunsTheSevenPhasesInOrderAndTheToolSeesOnlyTheCheckedValuesItUses) {
  dir.write("etc/secbox.env", kEnv);
  ::setenv("SECBOX_COMPOSE_LEAK_CHECK", "leaked", 1);
  auto r = apply(kNext);
  ::unsetenv("SECBOX_COMPOSE_LEAK_CHECK");
  EXPECT_TRUE(r.outcome.ok) << r.outcome.detail;
  EXPECT_EQ(r.outcome.phase, "done");
  EXPECT_EQ(r.phases, (std::vector<std::string>{
                          "write:ok", "env-ensure:ok", "secbox-env-missing-keys:ok",
                          "env-unresolved-vars:ok", "compose-up:ok", "health:ok", "done:ok"}));
  EXPECT_EQ(in_service(), canonical(kNext));
  auto all = calls();
  ASSERT_GE(all.size(), 3u);
  ASSERT_GE(all.size(), 4u);
  EXPECT_EQ(all[0]["argv"][4], "config");
  const std::string file = dir.file("compose/gate/compose.yaml");
  EXPECT_EQ(all[1]["argv"][4], "ps") << "the containers from before are listed first";
  EXPECT_EQ(all[2]["argv"], nlohmann::json({"-p", "gate", "-f", file, "up", "-d",
                                            "--force-recreate", "--remove-orphans"}));
  EXPECT_EQ(all[3]["argv"][4], "ps");
  for (const auto& c : all) {
    std::vector<std::string> env = c["env"];
    for (const auto& kv : env) EXPECT_EQ(kv.find("SECBOX_COMPOSE_LEAK_CHECK"), std::string::npos);
    // What the file interpolates, with the env file's values; nothing else of it.
    EXPECT_NE(std::find(env.begin(), env.end(), "IMAGE_TAG=1.4.2"), env.end());
    EXPECT_NE(std::find(env.begin(), env.end(), "CLOUD_BASE_URL=https://cloud.example.com"),
              env.end());
    for (const auto& kv : env)
      EXPECT_NE(kv.rfind("DEVICE_GATEWAY_URL=", 0), 0u) << "not used by the file";
  }
  EXPECT_NE(TempDir::read(dir.file("fake/up-rendered-gate.yaml")).find("localhost/app:1.4.2"),
            std::string::npos);
}

// Debian 12's podman-compose (1.0.3) has no --env-file, no `config` and no
// `ps --format json`, and lets a .env beside the file override the
// environment. The seven phases still hold: the render is skipped and said
// so, health asks podman itself, and a stray .env cannot change a value.
TEST_F(ComposeTest, WorksWithDebian12sPodmanComposeAndAStrayDotEnvCannotOverrideACheckedValue) {
  dir.write("etc/secbox.env", kEnv);
  behave({{"flavor", "podman-compose-1.0.3"}});
  settings.container_command = {FAKE_COMPOSE, "--fake-state=" + dir.file("fake"), "--fake-podman"};
  install_previous();
  dir.write("compose/gate/.env", "IMAGE_TAG=9.9.9-unchecked\n");
  std::vector<std::string> details;
  auto r = run_compose_snapshot(settings, "gate", kNext,
                                [&](std::string_view phase, bool, const std::string& d) {
                                  details.push_back(std::string(phase) + ": " + d);
                                });
  ASSERT_TRUE(r.ok) << r.phase << ": " << r.detail;
  EXPECT_NE(details[0].find("removed a stray .env"), std::string::npos) << details[0];
  EXPECT_NE(details[3].find("no config command"), std::string::npos) << details[3];
  const auto rendered = TempDir::read(dir.file("fake/up-rendered-gate.yaml"));
  EXPECT_NE(rendered.find("localhost/app:1.4.2"), std::string::npos) << rendered;
  int podman_ps = 0;
  for (const auto& c : calls()) {
    if (c["tool"] == "podman") ++podman_ps;
  }
  EXPECT_GE(podman_ps, 1) << "health must come from podman's ps";
  // A service that never gets healthy still rolls back, seen through podman.
  behave({{"flavor", "podman-compose-1.0.3"}, {"unhealthy", {"extra"}}});
  auto bad = apply(std::string(kNext) +
                   "  extra:\n    image: localhost/extra:1\n    healthcheck:\n      test: "
                   "[\"CMD\", \"true\"]\n");
  EXPECT_EQ(bad.outcome.phase, "rollback") << bad.outcome.detail;
  EXPECT_NE(bad.outcome.detail.find("extra: running (unhealthy)"), std::string::npos)
      << bad.outcome.detail;
  EXPECT_EQ(in_service(), canonical(kNext));
}

TEST_F(ComposeTest, AFileThatInterpolatesANameThatChangesHowProgramsRunIsRefused) {
  dir.write("etc/secbox.env", std::string(kEnv) + "LD_PRELOAD=/tmp/evil.so\n");
  install_previous();
  auto r = apply(
      "services:\n  app:\n    image: localhost/app:1\n    environment:\n      X: ${LD_PRELOAD}\n");
  EXPECT_EQ(r.outcome.phase, "env-unresolved-vars");
  EXPECT_NE(r.outcome.detail.find("LD_PRELOAD"), std::string::npos);
  EXPECT_EQ(calls_of("up"), 0);
  EXPECT_EQ(in_service(), kPrevious);
}

TEST(ComposeEnvironment, ReferencedNamesAndReservedOnes) {
  EXPECT_EQ(envfile::referenced_variables(
                "a: $A\nb: ${B:-x}\nc: $$D ${E_1}x $9 ${}\n  # not $PATH\nd: ${A}"),
            (std::vector<std::string>{"A", "B", "E_1"}));
  for (const char* name : {"PATH", "LD_PRELOAD", "PYTHONPATH", "DOCKER_HOST", "COMPOSE_FILE",
                           "HTTPS_PROXY", "http_proxy", "CONTAINERS_CONF", "LC_ALL", "HOME"}) {
    EXPECT_TRUE(envfile::is_reserved_variable(name)) << name;
  }
  for (const char* name : {"DEVICE_ID", "IMAGE_TAG", "CLOUD_BASE_URL", "PATHWAY", "FRIGATE_URL"}) {
    EXPECT_FALSE(envfile::is_reserved_variable(name)) << name;
  }
  auto env = envfile::parse("IMAGE_TAG=2\nLD_PRELOAD=x\nUNUSED=3\n").value();
  auto out = compose_environment(std::nullopt, "image: a:${IMAGE_TAG}${LD_PRELOAD}", env);
  EXPECT_NE(std::find(out.begin(), out.end(), "IMAGE_TAG=2"), out.end());
  for (const auto& kv : out) {
    EXPECT_NE(kv.rfind("LD_PRELOAD=", 0), 0u);
    EXPECT_NE(kv.rfind("UNUSED=", 0), 0u);
  }
}

// The outage's replay: no secbox.env, a legacy file; the box derives the env
// file and the stack comes up with it.
TEST_F(ComposeTest, OutageReplayDerivesTheMissingEnvFileThenBringsTheStackUp) {
  dir.write("etc/mgmt-agent.env", kLegacy);
  auto outage = TempDir::read(std::string(SECBOX_TEST_SOURCE_DIR) +
                              "/tests/golden/outage/docker-compose.yml");
  auto r = apply(outage);
  EXPECT_TRUE(r.outcome.ok) << r.outcome.phase << ": " << r.outcome.detail;
  struct stat st {};
  ASSERT_EQ(::stat(settings.env_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto env = TempDir::read(settings.env_file);
  EXPECT_NE(env.find("DEVICE_GATEWAY_URL=wss://gw.example.com/ws/device"), std::string::npos);
  EXPECT_EQ(calls_of("up"), 1);
}

struct BadConfig {
  const char* name;
  const char* env;     // nullptr: no secbox.env
  const char* legacy;  // nullptr: no mgmt-agent.env
  std::string yaml;
  nlohmann::json behaviour;
  const char* phase;
};

TEST_F(ComposeTest, BadConfigurationsStopBeforeAnyContainerIsTouched) {
  const std::vector<BadConfig> cases = {
      {"env file missing, legacy lacks DEVICE_ID",
       nullptr,
       "CLOUD_BASE_URL=https://cloud.example.com\nMGMT_GATEWAY_URL=wss://gw.example.com/ws/mgmt\n",
       kNext,
       {},
       "secbox-env-missing-keys"},
      {"env file missing and no legacy file", nullptr, nullptr, kNext, {}, "env-ensure"},
      {"env file empty, legacy gateway not .../mgmt",
       "# nothing here\n\n",
       "CLOUD_BASE_URL=https://c.example\nDEVICE_ID=d1\nMGMT_GATEWAY_URL=wss://gw.example.com/ws/"
       "admin\n",
       kNext,
       {},
       "env-ensure"},
      {"DEVICE_ID missing",
       "CLOUD_BASE_URL=https://cloud.example.com\nIMAGE_TAG=1\n",
       nullptr,
       kNext,
       {},
       "secbox-env-missing-keys"},
      {"DEVICE_ID empty",
       "DEVICE_ID=\nCLOUD_BASE_URL=https://cloud.example.com\nIMAGE_TAG=1\n",
       nullptr,
       kNext,
       {},
       "secbox-env-missing-keys"},
      {"nested default",
       kEnv,
       nullptr,
       "services:\n  app:\n    image: x:${A:-${B:-x}}\n",
       {},
       "env-unresolved-vars"},
      {"literal ${ in an env value",
       "DEVICE_ID=d1\nCLOUD_BASE_URL=https://c.example\nIMAGE_TAG='${CLOUD_BASE_URL:-x}'\n",
       nullptr,
       kNext,
       {},
       "env-unresolved-vars"},
      {"unresolvable variable",
       kEnv,
       nullptr,
       "services:\n  app:\n    image: x:${NOT_IN_THE_ENV_FILE}\n",
       {},
       "env-unresolved-vars"},
      {"invalid YAML", kEnv, nullptr, "services:\n  app: [unclosed\n", {}, "write"},
      {"not a compose file", kEnv, nullptr, "- just\n- a list\n", {}, "write"},
      {"the tool's render leaves ${",
       kEnv,
       nullptr,
       kNext,
       {{"render_literal", true}},
       "env-unresolved-vars"},
      {"the tool cannot render",
       kEnv,
       nullptr,
       kNext,
       {{"fail", {"config"}}},
       "env-unresolved-vars"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ::unlink(settings.env_file.c_str());
    ::unlink(settings.legacy_env_file.c_str());
    ::unlink(dir.file("fake/calls.jsonl").c_str());
    if (c.env) dir.write("etc/secbox.env", c.env);
    if (c.legacy) dir.write("etc/mgmt-agent.env", c.legacy);
    behave(c.behaviour.is_null() ? nlohmann::json::object() : c.behaviour);
    install_previous();
    auto r = apply(c.yaml);
    EXPECT_FALSE(r.outcome.ok);
    EXPECT_EQ(r.outcome.phase, c.phase) << r.outcome.detail;
    EXPECT_FALSE(r.outcome.detail.empty());
    EXPECT_EQ(r.phases.back(), std::string(c.phase) + ":fail");
    EXPECT_EQ(calls_of("up"), 0) << "nothing past the failing phase ran";
    EXPECT_EQ(in_service(), kPrevious) << "the previous file is still in place";
  }
}

TEST_F(ComposeTest, ValuesNeverReachTheDetail) {
  dir.write("etc/secbox.env",
            "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\nIMAGE_TAG=s3cr3t-tag\n");
  behave({{"fail", {"up"}}});
  auto r = apply(kNext);
  EXPECT_EQ(r.outcome.phase, "compose-up");
  EXPECT_EQ(r.outcome.detail.find("s3cr3t-tag"), std::string::npos);
  EXPECT_EQ(scrub("image x:s3cr3t-tag", envfile::parse(TempDir::read(settings.env_file)).value()),
            "image x:[redacted]");
}

TEST_F(ComposeTest, AFailedUpPutsThePreviousFileBack) {
  dir.write("etc/secbox.env", kEnv);
  install_previous();
  behave({{"fail", {"up"}}});
  auto r = apply(kNext);
  EXPECT_EQ(r.outcome.phase, "compose-up");
  EXPECT_NE(r.outcome.detail.find("failed as told"), std::string::npos) << r.outcome.detail;
  EXPECT_EQ(in_service(), kPrevious);
  EXPECT_EQ(calls_of("up"), 1);
  EXPECT_EQ(calls_of("ps"), 1) << "only the listing before up";
}

// A development machine (scripts/run) has no container runtime: the file is
// still checked, and the answer says plainly what is missing; the file in
// service stays.
TEST_F(ComposeTest, WithoutAComposeToolTheAnswerSaysNoRuntimeIsInstalled) {
  dir.write("etc/secbox.env", kEnv);
  install_previous();
  settings.command = {"podman-compose-not-installed-here"};
  auto r = apply(kNext);
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_EQ(r.outcome.phase, "compose-up");
  EXPECT_NE(r.outcome.detail.find("no container runtime is installed"), std::string::npos)
      << r.outcome.detail;
  EXPECT_NE(r.outcome.detail.find("podman-compose-not-installed-here"), std::string::npos)
      << r.outcome.detail;
  EXPECT_EQ(r.phases,
            (std::vector<std::string>{"write:ok", "env-ensure:ok", "secbox-env-missing-keys:ok",
                                      "env-unresolved-vars:ok", "compose-up:fail"}));
  EXPECT_EQ(in_service(), kPrevious);
  struct stat st {};
  EXPECT_NE(::stat(dir.file("compose/gate/previous").c_str(), &st), 0) << "no bundle was made";
  EXPECT_FALSE(find_program("sh").empty());
  EXPECT_EQ(find_program("/bin/sh"), "/bin/sh");
  EXPECT_EQ(find_program("podman-compose-not-installed-here"), "");
}

// Debian 12's podman-compose (1.0.3) answers `up -d` on a project whose
// container runs by starting the old container and exiting 0: a changed file
// was reported `done` while the old configuration kept running.
TEST_F(ComposeTest, AChangedFileIsAppliedByAToolThatKeepsRunningContainersUnlessToldToRecreate) {
  dir.write("etc/secbox.env", kEnv);
  behave({{"flavor", "podman-compose-1.0.3"}});
  settings.container_command = {FAKE_COMPOSE, "--fake-state=" + dir.file("fake"), "--fake-podman"};
  const std::string first =
      "services:\n  app:\n    image: localhost/app:1\n    command: [\"one\"]\n";
  const std::string second =
      "services:\n  app:\n    image: localhost/app:1\n    command: [\"two\"]\n";
  ASSERT_TRUE(apply(first).outcome.ok);
  auto r = apply(second);
  ASSERT_TRUE(r.outcome.ok) << r.outcome.phase << ": " << r.outcome.detail;
  auto running = nlohmann::json::parse(TempDir::read(dir.file("fake/running-gate.json")));
  ASSERT_EQ(running.size(), 1u);
  EXPECT_NE(running[0]["config"].get<std::string>().find("two"), std::string::npos)
      << running.dump();
}

// An `up` that exits 0 without making anything (podman-compose 1.0.3 when
// `podman run` fails: it starts the old container and says nothing) must not
// pass health on the containers that were already there.
TEST_F(ComposeTest, AContainerFromBeforeTheApplyDoesNotPassHealth) {
  dir.write("etc/secbox.env", kEnv);
  ASSERT_TRUE(apply(kPrevious).outcome.ok);
  behave({{"noop", {"up"}}});
  auto r = apply(kNext);
  EXPECT_EQ(r.outcome.phase, "rollback-failed") << r.outcome.detail;
  EXPECT_NE(r.outcome.detail.find("app: only a container from before this apply"),
            std::string::npos)
      << r.outcome.detail;
  EXPECT_NE(r.outcome.detail.find("web: no container"), std::string::npos) << r.outcome.detail;
}

TEST_F(ComposeTest, APrivilegedFileIsRefusedAtWriteUnlessControlJsonAllowsIt) {
  dir.write("etc/secbox.env", kEnv);
  install_previous();
  const std::string priv = "services:\n  app:\n    image: localhost/app:1\n    privileged: true\n";
  auto r = apply(priv);
  EXPECT_EQ(r.outcome.phase, "write");
  EXPECT_NE(r.outcome.detail.find("service app.privileged asks for privileged: true"),
            std::string::npos)
      << r.outcome.detail;
  EXPECT_EQ(calls().size(), 0u) << "no tool may run";
  EXPECT_EQ(in_service(), kPrevious);
  struct stat st {};
  EXPECT_NE(::stat(dir.file("compose/gate/compose.yaml.new").c_str(), &st), 0) << "nothing written";
  settings.allowance.allow.insert("privileged");
  EXPECT_TRUE(apply(priv).outcome.ok);
}

// env.set between two applies: the rollback must bring back the values the
// stack last ran with, not the env file as it stood just before the failed
// apply (which held the value that was never tried).
TEST_F(ComposeTest, ARollbackBringsBackTheValuesTheStackLastRanWith) {
  dir.write("etc/secbox.env", kEnv);
  ASSERT_TRUE(apply(kNext).outcome.ok);
  std::string changed = kEnv;
  changed.replace(changed.find("IMAGE_TAG=1.4.2"), 15, "IMAGE_TAG=2.0.0");
  dir.write("etc/secbox.env", changed);
  behave({{"unhealthy", {"extra"}}});
  auto r = apply(std::string(kNext) +
                 "  extra:\n    image: localhost/extra:1\n    healthcheck:\n      test: [\"CMD\", "
                 "\"true\"]\n");
  ASSERT_EQ(r.outcome.phase, "rollback") << r.outcome.detail;
  EXPECT_NE(TempDir::read(dir.file("fake/up-rendered-gate.yaml")).find("localhost/app:1.4.2"),
            std::string::npos)
      << "the rollback's up ran with the values that last worked";
  EXPECT_NE(TempDir::read(dir.file("etc/secbox.env")).find("IMAGE_TAG=1.4.2"), std::string::npos);
}

TEST(ComposePs, IdsAndExitCodesAreRead) {
  auto podman =
      parse_ps_output(R"([{"Id":"d18db51c","Names":["p_app_1"],"State":"exited","ExitCode":3,
      "Labels":{"com.docker.compose.project":"p","com.docker.compose.service":"app"}}])");
  ASSERT_TRUE(podman);
  EXPECT_EQ(podman.value()[0].id, "d18db51c");
  EXPECT_EQ(podman.value()[0].exit_code, 3);
  auto docker =
      parse_ps_output(R"({"ID":"f87c8bee","Name":"p-app-1","Service":"app","State":"running"})");
  ASSERT_TRUE(docker);
  EXPECT_EQ(docker.value()[0].id, "f87c8bee");
  EXPECT_FALSE(docker.value()[0].exit_code);
}

TEST_F(ComposeTest, AHangingUpIsKilledAtItsTimeLimit) {
  dir.write("etc/secbox.env", kEnv);
  install_previous();
  behave({{"hang", {"up"}}});
  settings.up_timeout = std::chrono::milliseconds(800);
  const auto started = std::chrono::steady_clock::now();
  auto r = apply(kNext);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(8));
  EXPECT_EQ(r.outcome.phase, "compose-up");
  EXPECT_NE(r.outcome.detail.find("timed out"), std::string::npos) << r.outcome.detail;
  EXPECT_EQ(in_service(), kPrevious);
}

TEST_F(ComposeTest, AServiceNeverHealthyRollsBackToThePreviousBundle) {
  dir.write("etc/secbox.env", kEnv);
  install_previous();
  behave({{"unhealthy", {"web"}}});
  auto r = apply(kNext);
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_EQ(r.outcome.phase, "rollback") << r.outcome.detail;
  EXPECT_NE(r.outcome.detail.find("web: running (unhealthy)"), std::string::npos)
      << r.outcome.detail;
  EXPECT_EQ(in_service(), canonical(kPrevious))
      << "the previous file runs again, checked and canonical";
  EXPECT_EQ(calls_of("up"), 2);
  EXPECT_EQ(TempDir::read(dir.file("compose/gate/previous/compose.yaml")), kPrevious);
  EXPECT_EQ(TempDir::read(dir.file("compose/gate/previous/secbox.env")), kEnv);
}

TEST_F(ComposeTest, AServiceThatExitsWithNoPreviousFileFailsAtHealth) {
  dir.write("etc/secbox.env", kEnv);
  behave({{"exited", {"app"}}});
  auto r = apply(kNext);
  EXPECT_EQ(r.outcome.phase, "health") << r.outcome.detail;
  EXPECT_NE(r.outcome.detail.find("app: exited"), std::string::npos) << r.outcome.detail;
  EXPECT_EQ(calls_of("up"), 1);
}

TEST_F(ComposeTest, ARollbackThatFailsToo) {
  dir.write("etc/secbox.env", kEnv);
  install_previous();
  behave({{"unhealthy", {"web"}}, {"fail_up_on_call", 2}});
  auto r = apply(kNext);
  EXPECT_EQ(r.outcome.phase, "rollback-failed") << r.outcome.detail;
  EXPECT_NE(r.outcome.detail.find("rollback failed too"), std::string::npos);
}

TEST_F(ComposeTest, ProjectNamesAreChecked) {
  dir.write("etc/secbox.env", kEnv);
  for (const char* bad : {"", "../x", "Gate", "-x", "a/b", "a b"}) {
    auto r = apply(kNext, bad);
    EXPECT_EQ(r.outcome.phase, "write") << bad;
  }
  EXPECT_EQ(calls().size(), 0u);
}

TEST_F(ComposeTest, GuardProjectChecksTheFileInService) {
  dir.write("etc/secbox.env", kEnv);
  install_previous();
  EXPECT_TRUE(guard_project(settings, "gate"));
  dir.write("compose/gate/compose.yaml", "services:\n  app:\n    image: x:${MISSING}\n");
  auto r = guard_project(settings, "gate");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  EXPECT_EQ(r.error().message.rfind("env-unresolved-vars: ", 0), 0u) << r.error().message;
  EXPECT_EQ(guard_project(settings, "other").error().code, Errc::not_found);
}

TEST(ComposePs, ReadsDockerAndPodmanOutput) {
  auto docker = parse_ps_output(
      R"({"Name":"gate-web-1","Service":"web","Project":"gate","State":"running","Health":"healthy"})"
      "\n"
      R"({"Names":"other","Labels":"a=b,com.docker.compose.service=db,com.docker.compose.project=p","State":"exited"})");
  ASSERT_TRUE(docker);
  ASSERT_EQ(docker.value().size(), 2u);
  EXPECT_EQ(docker.value()[0].health, "healthy");
  EXPECT_EQ(docker.value()[1].service, "db");
  EXPECT_EQ(docker.value()[1].project, "p");
  auto podman = parse_ps_output(
      R"j([{"Names":["gate_web_1"],"State":"running","Status":"Up 2 minutes (unhealthy)",
          "Labels":{"com.docker.compose.service":"web","com.docker.compose.project":"gate"}}])j");
  ASSERT_TRUE(podman);
  EXPECT_EQ(podman.value()[0].name, "gate_web_1");
  EXPECT_EQ(podman.value()[0].health, "unhealthy");
  EXPECT_TRUE(parse_ps_output("").value().empty());
  EXPECT_FALSE(parse_ps_output("not json"));
  EXPECT_FALSE(parse_ps_output("[1]"));
}

}  // namespace
}  // namespace secbox::control
