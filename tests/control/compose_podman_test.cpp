// The guarded compose restart (cloud-protocol §7.3) with Debian 12's real
// podman (4.3) and podman-compose (1.0.3) and real containers, made from the
// machine's static busybox (`podman import`). Every file gives its project an
// `internal: true` network (no gateway, no route off the machine); each test
// removes its containers and network.
//
// The tools run as CI does, as root. podman is told (CONTAINERS_CONF) the
// settings this kind of machine needs (runc, cgroupfs, ulimits podman may
// set): STACK.md.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "control/compose.hpp"
#include "temp_dir.hpp"

namespace secbox::control {
namespace {

using testing::TempDir;

const char* kImage = "localhost/secbox-test-busybox:1";

ProcessResult sh(const std::vector<std::string>& argv,
                 std::chrono::seconds limit = std::chrono::seconds(60)) {
  ProcessOptions o;
  o.argv = argv;
  o.timeout = limit;
  auto r = run_process(o);
  return r ? r.value() : ProcessResult{};
}

std::string containers_conf() {
  static const std::string path = [] {
    std::string p = std::filesystem::temp_directory_path() / "secbox-test-containers.conf";
    std::ofstream(p)
        << "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n"
           "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n";
    return p;
  }();
  return path;
}

std::vector<std::string> podman(std::vector<std::string> args) {
  std::vector<std::string> argv{"/usr/bin/env", "CONTAINERS_CONF=" + containers_conf(), "podman"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// The image: /bin/busybox and its links, nothing else.
void make_image() {
  if (sh(podman({"image", "exists", kImage})).succeeded()) return;
  TempDir root;
  ::mkdir(root.file("bin").c_str(), 0755);
  ASSERT_TRUE(sh({"cp", "/bin/busybox", root.file("bin/busybox")}).succeeded())
      << "busybox-static is needed";
  for (const char* l : {"sh", "sleep", "env", "cat", "test", "true", "false", "ls"}) {
    ASSERT_EQ(::symlink("busybox", root.file(std::string("bin/") + l).c_str()), 0);
  }
  auto tar = root.file("../" + std::filesystem::path(root.path()).filename().string() + ".tar");
  ASSERT_TRUE(sh({"tar", "-C", root.path(), "-cf", tar, "."}).succeeded());
  auto imported =
      sh(podman({"import", "--change", "CMD [\"/bin/sleep\",\"100000\"]", tar, kImage}));
  ::unlink(tar.c_str());
  ASSERT_TRUE(imported.succeeded()) << imported.describe();
}

// A service that stops at once on `podman stop` (busybox's sleep as PID 1
// would wait out the 10 s grace).
std::string service(const std::string& name, const std::string& extra) {
  return "  " + name + ":\n    image: " + kImage + "\n    stop_signal: SIGKILL\n" + extra;
}

std::string file_of(const std::string& services) {
  return "services:\n" + services + "networks:\n  default:\n    internal: true\n";
}

const char* kEnv =
    "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n"
    "DEVICE_GATEWAY_URL=wss://cloud.example.com/ws/device\nGREETING=hola\n";

class ComposePodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/podman-compose", X_OK) != 0 || ::access("/usr/bin/podman", X_OK) != 0) {
      FAIL() << "Debian's podman and podman-compose are needed (scripts/install-deps --test "
                "installs them)";
    }
    if (::geteuid() != 0) GTEST_SKIP() << "real containers run as root here (CI runs as root)";
    make_image();
    project = "sbt" + std::to_string(::getpid()) + "x" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
    ::mkdir(dir.file("etc").c_str(), 0700);
    settings.command = {"/usr/bin/env", "CONTAINERS_CONF=" + containers_conf(), "podman-compose"};
    settings.container_command = podman({});
    settings.env_file = dir.file("etc/secbox.env");
    settings.legacy_env_file = dir.file("etc/mgmt-agent.env");
    settings.dir = dir.file("compose");
    settings.up_timeout = std::chrono::seconds(120);
    settings.health_timeout = std::chrono::seconds(8);
    settings.health_poll = std::chrono::milliseconds(300);
    settings.tool_timeout = std::chrono::seconds(30);
  }

  void TearDown() override {
    if (project.empty()) return;
    auto ids = sh(podman({"ps", "-aq", "--filter", "label=com.docker.compose.project=" + project}));
    std::istringstream in(ids.out);
    for (std::string id; std::getline(in, id);) {
      if (!id.empty()) sh(podman({"rm", "-f", "-t", "0", id}));
    }
    sh(podman({"network", "rm", "-f", project + "_default"}));
    auto left =
        sh(podman({"ps", "-aq", "--filter", "label=com.docker.compose.project=" + project}));
    EXPECT_EQ(left.out, "") << "the test's containers must be gone";
    EXPECT_FALSE(sh(podman({"network", "exists", project + "_default"})).succeeded());
  }

  ComposeOutcome apply(const std::string& yaml) {
    return run_compose_snapshot(settings, project, yaml,
                                [](std::string_view, bool, const std::string&) {});
  }

  struct Running {
    std::string id;
    std::string state;
  };
  Running container(const std::string& svc) {
    auto r = sh(podman({"ps", "-a", "--format", "json", "--filter",
                        "label=com.docker.compose.project=" + project}));
    auto list = parse_ps_output(r.out);
    if (!list) return {};
    for (const auto& c : list.value()) {
      if (c.service == svc) return {c.id, c.state};
    }
    return {};
  }
  std::string env_in(const std::string& svc, const std::string& key) {
    auto r = sh(podman({"exec", project + "_" + svc + "_1", "/bin/env"}));
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
    }
    return "(unset)";
  }

  TempDir dir;
  ComposeSettings settings;
  std::string project;
};

std::string with_greeting(const std::string& value_expr, const std::string& extra = "") {
  return file_of(service("app", "    environment:\n      GREETING: " + value_expr + "\n" + extra));
}

TEST_F(ComposePodmanTest, AChangedFileRunsInANewContainerWithTheNewValues) {
  dir.write("etc/secbox.env", kEnv);
  auto first = apply(with_greeting("${GREETING}"));
  ASSERT_TRUE(first.ok) << first.phase << ": " << first.detail;
  const auto before = container("app");
  EXPECT_EQ(before.state, "running");
  EXPECT_EQ(env_in("app", "GREETING"), "hola");

  // A new env value and a new command: 1.0.3's plain `up -d` would start the
  // old container again and exit 0.
  dir.write("etc/secbox.env", std::string(kEnv) + "GREETING=adios\n");
  const auto started = std::chrono::steady_clock::now();
  auto second = apply(with_greeting("${GREETING}", "    command: [\"/bin/sleep\", \"200000\"]\n"));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  ASSERT_TRUE(second.ok) << second.phase << ": " << second.detail;
  const auto after = container("app");
  EXPECT_NE(after.id, before.id) << "the container must be made again";
  EXPECT_EQ(env_in("app", "GREETING"), "adios");
  auto inspect = sh(podman({"inspect", "--format", "{{.Config.Cmd}}", after.id}));
  EXPECT_NE(inspect.out.find("200000"), std::string::npos) << inspect.out;
  std::cout << "compose.snapshot of a changed one-service file to done: " << ms << " ms\n";
}

TEST_F(ComposePodmanTest, TwoServicesToDoneAndTheFigure) {
  dir.write("etc/secbox.env", kEnv);
  const std::string two =
      file_of(service("app", "    environment:\n      DEVICE_ID: ${DEVICE_ID}\n") +
              service("web",
                      "    healthcheck:\n      test: [\"CMD\", \"/bin/true\"]\n"
                      "      interval: 1s\n"));
  const auto started = std::chrono::steady_clock::now();
  auto r = apply(two);
  const auto first_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
  ASSERT_TRUE(r.ok) << r.phase << ": " << r.detail;
  const auto again_started = std::chrono::steady_clock::now();
  auto again = apply(two);
  const auto again_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - again_started)
                            .count();
  ASSERT_TRUE(again.ok) << again.phase << ": " << again.detail;
  EXPECT_EQ(container("web").state, "running");
  std::cout << "compose.snapshot of a two-service file (one health check) to done: first "
            << first_ms << " ms, over running containers " << again_ms << " ms\n";
}

TEST_F(ComposePodmanTest, BadFilesAndAMissingKeyLeaveTheRunningContainerUntouched) {
  dir.write("etc/secbox.env", kEnv);
  ASSERT_TRUE(apply(with_greeting("${GREETING}")).ok);
  const auto before = container("app");

  auto unresolved = apply(file_of(service("app",
                                          "    environment:\n      T: ${MEDIA_TOKEN}\n"
                                          "      R: ${RELAY_URL:-${FALLBACK_RELAY}}\n")));
  EXPECT_EQ(unresolved.phase, "env-unresolved-vars") << unresolved.detail;
  EXPECT_EQ(container("app").id, before.id);

  dir.write("etc/secbox.env", "CLOUD_BASE_URL=https://cloud.example.com\nGREETING=hola\n");
  auto outage = apply(with_greeting("${GREETING}", "    command: [\"/bin/sleep\", \"3\"]\n"));
  EXPECT_EQ(outage.phase, "secbox-env-missing-keys") << outage.detail;
  EXPECT_EQ(container("app").id, before.id);
  EXPECT_EQ(container("app").state, "running");

  auto privileged = apply(with_greeting("${GREETING}", "    privileged: true\n"));
  EXPECT_EQ(privileged.phase, "write") << privileged.detail;
  EXPECT_EQ(container("app").id, before.id);
  EXPECT_EQ(env_in("app", "GREETING"), "hola");
}

TEST_F(ComposePodmanTest, WithNoEnvFileTheLegacyOneIsDerivedThenTheStackComesUp) {
  dir.write("etc/mgmt-agent.env",
            "CLOUD_BASE_URL=https://"
            "cloud.example.com\nDEVICE_ID=dev_7Q2x\nBOOTSTRAP=bt_0123456789abcdef\n"
            "MGMT_GATEWAY_URL=wss://gw.example.com/ws/mgmt\n");
  auto r = apply(file_of(service("app", "    environment:\n      GW: ${DEVICE_GATEWAY_URL}\n")));
  ASSERT_TRUE(r.ok) << r.phase << ": " << r.detail;
  EXPECT_EQ(env_in("app", "GW"), "wss://gw.example.com/ws/device");
}

TEST_F(ComposePodmanTest, AContainerThatExitsAtOnceRollsBackToThePreviousContainerAndValues) {
  dir.write("etc/secbox.env", kEnv);
  ASSERT_TRUE(apply(with_greeting("${GREETING}")).ok);
  const auto good = container("app");
  dir.write("etc/secbox.env", std::string(kEnv) + "GREETING=roto\n");
  auto r = apply(with_greeting("${GREETING}", "    command: [\"/bin/sh\", \"-c\", \"exit 3\"]\n"));
  EXPECT_EQ(r.phase, "rollback") << r.detail;
  EXPECT_NE(r.detail.find("app: exited (exit code 3)"), std::string::npos) << r.detail;
  const auto back = container("app");
  EXPECT_EQ(back.state, "running");
  EXPECT_NE(back.id, good.id) << "the rollback makes the previous configuration again";
  EXPECT_EQ(env_in("app", "GREETING"), "hola") << "the previous values, from the previous env file";
}

TEST_F(ComposePodmanTest, AHealthCheckThatNeverPassesRollsBack) {
  dir.write("etc/secbox.env", kEnv);
  ASSERT_TRUE(apply(with_greeting("${GREETING}")).ok);
  auto r = apply(with_greeting("${GREETING}",
                               "    healthcheck:\n      test: [\"CMD\", \"/bin/false\"]\n"
                               "      interval: 1s\n      retries: 1\n"));
  EXPECT_EQ(r.phase, "rollback") << r.detail;
  EXPECT_NE(r.detail.find("unhealthy"), std::string::npos) << r.detail;
  EXPECT_EQ(container("app").state, "running");
  auto hc = sh(podman({"inspect", "--format", "{{.Config.Healthcheck}}", container("app").id}));
  EXPECT_EQ(hc.out.find("false"), std::string::npos)
      << "the previous file has no failing check: " << hc.out;
}

TEST_F(ComposePodmanTest, ARollbackThatFailsTooIsRollbackFailed) {
  // The previous file's health check reads a file in the project's folder;
  // once it is gone the previous file cannot come back healthy either.
  dir.write("etc/secbox.env", kEnv);
  ::mkdir(dir.file("compose").c_str(), 0750);
  ::mkdir(dir.file("compose/" + project).c_str(), 0750);
  ::mkdir(dir.file("compose/" + project + "/state").c_str(), 0755);
  dir.write("compose/" + project + "/state/ok", "1");
  const std::string checked =
      "    volumes: [\"./state:/state\"]\n"
      "    healthcheck:\n      test: [\"CMD\", \"/bin/test\", \"-e\", \"/state/ok\"]\n"
      "      interval: 1s\n      retries: 1\n";
  ASSERT_TRUE(apply(file_of(service("app", checked))).ok);
  ::unlink(dir.file("compose/" + project + "/state/ok").c_str());
  auto r = apply(file_of(service("app", "    command: [\"/bin/sh\", \"-c\", \"exit 4\"]\n")));
  EXPECT_EQ(r.phase, "rollback-failed") << r.detail;
}

// What reached the host of one container, as podman inspect has it: empty
// when nothing of the host beyond the project's folder did.
std::string host_reach(const nlohmann::json& c, const std::string& project_dir) {
  std::string found;
  const auto& hc = c.value("HostConfig", nlohmann::json::object());
  if (hc.value("Privileged", false)) found += " privileged";
  if (hc.contains("CapAdd") && hc["CapAdd"].is_array() && !hc["CapAdd"].empty())
    found += " cap_add " + hc["CapAdd"].dump();
  if (hc.contains("Devices") && hc["Devices"].is_array() && !hc["Devices"].empty())
    found += " devices";
  for (const char* ns :
       {"NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"}) {
    const auto mode = hc.value(ns, std::string());
    if (mode == "host" || mode.rfind("ns:", 0) == 0 || mode.rfind("container:", 0) == 0)
      found += " " + std::string(ns) + "=" + mode;
  }
  for (const auto& m : c.value("Mounts", nlohmann::json::array())) {
    if (m.value("Type", std::string()) != "bind") continue;
    const auto source = m.value("Source", std::string());
    if (source.rfind(project_dir + "/", 0) != 0) found += " bind " + source;
  }
  return found;
}

// The hostile corpus (tests/golden/compose-hostile) sent to a project that
// control.json allows nothing privileged, through the real podman-compose:
// what is refused starts nothing; what runs holds nothing of the host,
// checked on every container with podman inspect.
TEST_F(ComposePodmanTest, TheHostileCorpusReachesNothingOfTheHost) {
  // Every file here that runs must come up: a container may stay "created"
  // for over 8 s while podman starts it on a CI machine busy with the
  // fuzzers beside the tests (52-two-services.yaml did).
  settings.health_timeout = std::chrono::seconds(30);
  dir.write("etc/secbox.env", kEnv);
  const std::string project_dir = dir.file("compose/" + project);
  int refused = 0;
  int ran = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(SECBOX_TEST_SOURCE_DIR) +
                                                               "/tests/golden/compose-hostile")) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    std::string yaml = text.str();
    for (auto at = yaml.find("localhost/app:1"); at != std::string::npos;
         at = yaml.find("localhost/app:1", at)) {
      yaml.replace(at, 15, kImage);
    }
    auto r = apply(yaml);
    if (yaml.rfind("# refused:", 0) == 0) {
      EXPECT_EQ(r.phase, "write") << entry.path() << ": " << r.detail;
      ++refused;
    } else {
      EXPECT_TRUE(r.ok) << entry.path() << ": " << r.phase << ": " << r.detail;
      ++ran;
    }
    auto ids = sh(podman({"ps", "-aq", "--filter", "label=com.docker.compose.project=" + project}));
    std::istringstream lines(ids.out);
    for (std::string id; std::getline(lines, id);) {
      if (id.empty()) continue;
      auto inspected = sh(podman({"inspect", id}));
      auto j = nlohmann::json::parse(inspected.out, nullptr, false);
      ASSERT_TRUE(j.is_array() && !j.empty()) << inspected.describe();
      EXPECT_EQ(host_reach(j[0], project_dir), "") << entry.path();
    }
  }
  EXPECT_GE(refused, 40);
  EXPECT_GE(ran, 4);
  std::cout << "# hostile corpus with podman-compose: " << refused << " refused at write, " << ran
            << " ran with nothing of the host\n";
}

// An earlier container of the project turns a folder it mounts into links
// to `/`; the next file binds a path through them. The link is seen just
// before the tool mounts, and nothing of the host is mounted.
TEST_F(ComposePodmanTest, ALinkMadeByAnEarlierContainerIsNotFollowed) {
  dir.write("etc/secbox.env", kEnv);
  ::mkdir(dir.file("compose").c_str(), 0750);
  const std::string project_dir = dir.file("compose/" + project);
  ::mkdir(project_dir.c_str(), 0750);
  ::mkdir((project_dir + "/data").c_str(), 0777);
  auto first = apply(file_of(
      service("app",
              "    volumes: [\"./data:/data\"]\n"
              "    command: [\"/bin/sh\", \"-c\", \"ln -s / /data/root; exec sleep 100000\"]\n")));
  ASSERT_TRUE(first.ok) << first.phase << ": " << first.detail;
  struct stat st {};
  for (int i = 0; i < 50 && ::lstat((project_dir + "/data/root").c_str(), &st) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(S_ISLNK(st.st_mode)) << "the container made its link";
  const auto before = container("app");
  auto second = apply(file_of(service("app", "    volumes: [\"./data/root/etc:/host-etc\"]\n")));
  EXPECT_EQ(second.phase, "compose-up") << second.detail;
  EXPECT_NE(second.detail.find("data/root is a link"), std::string::npos) << second.detail;
  EXPECT_EQ(container("app").id, before.id) << "the running container is left as it was";
  auto inspected = nlohmann::json::parse(sh(podman({"inspect", before.id})).out, nullptr, false);
  ASSERT_TRUE(inspected.is_array() && !inspected.empty());
  EXPECT_EQ(host_reach(inspected[0], project_dir), "");
}

}  // namespace
}  // namespace secbox::control
