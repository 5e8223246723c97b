// The control plane on a real loop with the real dispatcher: registered
// commands (injection attempts refused, time limits kill the process group,
// jobs), the permission matrix, node control with fake systemctl/journalctl,
// env.set through the atomic writer, one compose operation at a time, and the
// tools folder watched.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "common/log.hpp"
#include "control/control_plane.hpp"
#include "control/tools.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "captured_session.hpp"
#include "recording_sink.hpp"
#include "protocol/dispatcher.hpp"
#include "protocol/shapes.hpp"

namespace secbox::control {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;

const std::string kFakeSystemctl =
    std::string(SECBOX_TEST_SOURCE_DIR) + "/tests/control/fake-systemctl";

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir.file("etc").c_str(), 0700);
    ::mkdir(dir.file("etc/tools").c_str(), 0700);
    ::mkdir(dir.file("fake").c_str(), 0700);
    // A copy of the fake, so that its .calls file is this test's own.
    dir.write("fake/systemctl", TempDir::read(kFakeSystemctl), 0755);
    dir.write("etc/secbox.env", "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n");
    settings.compose.command = {FAKE_COMPOSE, "--fake-state=" + dir.file("fake")};
    settings.compose.env_file = dir.file("etc/secbox.env");
    settings.compose.legacy_env_file = dir.file("etc/mgmt-agent.env");
    settings.compose.dir = dir.file("compose");
    settings.compose.health_timeout = 3s;
    settings.compose.health_poll = 100ms;
    settings.tools_dir = dir.file("etc/tools");
    settings.permissions_file = dir.file("etc/control.json");
    settings.systemctl = {dir.file("fake/systemctl")};
    settings.journalctl = {dir.file("fake/systemctl")};
    settings.container_cmd = {dir.file("fake/podman")};
    settings.disk_paths = {"/"};
    settings.max_jobs = 2;
    hooks.health_state = [] { return json{{"uptimeS", 1}, {"version", "0.1.0"}}; };
    hooks.env_changed = [this](std::function<void(std::vector<std::string>)> done) {
      ++env_changes;
      done({"FRIGATE_URL"});  // as the appliance says of a key it applies only at a restart
    };
    hooks.rotate_jwt = [](std::function<void(Result<void>)> done) { done(ok()); };
  }
  void TearDown() override {
    if (plane) {
      bool stopped = false;
      plane->stop([&] { stopped = true; });
      EXPECT_TRUE(run_until(
          io, [&] { return stopped; }, 10s));
    }
  }

  void permit(const json& j) { dir.write("etc/control.json", j.dump()); }
  void start() {
    plane = std::make_unique<ControlPlane>(io, d, events, settings, hooks);
    plane->start();
    ASSERT_TRUE(run_until(
        io, [&] { return loaded(); }, 10s));
  }
  // start() and reload() read control.json and the tools on a worker; each
  // read ends with a log line.
  int reads() const {
    int n = 0;
    for (const auto& l : log_lines) n += l.find("Read control.json") != std::string::npos;
    return n;
  }
  bool loaded() const { return reads() > 0; }
  void reload_and_wait() {
    const int before = reads();
    plane->reload();
    ASSERT_TRUE(run_until(
        io, [&] { return reads() > before; }, 10s));
  }

  // Sends a request; returns its replies (those with re = id) once `count` came.
  std::vector<json> ask(const std::string& type, const json& payload, std::size_t count = 1,
                        std::chrono::milliseconds limit = 20s) {
    const std::string id = "c-" + std::to_string(++next_id);
    d.dispatch(json{
        {"v", 1}, {"type", type}, {"id", id}, {"ts", "2026-11-22T10:00:00Z"}, {"payload", payload}}
                   .dump());
    std::vector<json> out;
    run_until(
        io,
        [&] {
          out.clear();
          for (const auto& m : sent) {
            if (m.value("re", "") == id) out.push_back(m);
          }
          return out.size() >= count;
        },
        limit);
    return out;
  }
  json ask_one(const std::string& type, const json& payload) {
    auto r = ask(type, payload);
    return r.empty() ? json() : r[0];
  }

  TempDir dir;
  boost::asio::io_context io;
  secbox::testing::CapturedSession session{io};
  std::vector<json>& sent = session.sent;
  protocol::Dispatcher& d = session.dispatcher;
  ControlSettings settings;
  ControlHooks hooks;
  secbox::testing::RecordingSink events;
  int env_changes = 0;
  int next_id = 0;
  std::unique_ptr<ControlPlane> plane;
  std::vector<std::string> log_lines;
  struct Sink {
    explicit Sink(std::vector<std::string>& lines) {
      log::set_sink([&lines](std::string_view l) { lines.emplace_back(l); });
    }
    ~Sink() { log::set_sink(nullptr); }
  } sink{log_lines};
};

const char* kNetworkTool = R"({"commands": {
  "ping": {"argv": ["/bin/echo", "ping", "-c", "1", "{host}"], "args": {"host": "^[a-z0-9.-]{1,64}$"}, "timeoutS": 5},
  "sleepy": {"argv": ["/bin/sh", "-c", "sleep 30 & sleep 30; echo never", "sleepy"], "timeoutS": 1},
  "noisy": {"argv": ["/usr/bin/head", "-c", "200000", "/dev/zero"]}
}})";

TEST_F(ControlPlaneTest, ARegisteredCommandRunsAndItsResultComesWithRe) {
  dir.write("etc/tools/network.json", kNetworkTool);
  start();
  auto r = ask("exec.run",
               {{"tool", "network"}, {"command", "ping"}, {"args", {{"host", "gw.local"}}}}, 2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0]["type"], "exec.accepted");
  EXPECT_EQ(r[1]["type"], "exec.result");
  const auto& p = r[1]["payload"];
  EXPECT_EQ(p["jobId"], r[0]["payload"]["jobId"]);
  EXPECT_EQ(p["exitCode"], 0);
  EXPECT_EQ(p["stdout"], "ping -c 1 gw.local\n");
  EXPECT_EQ(p["timedOut"], false);
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::message("exec.result"), p));
  auto job = ask_one("exec.job", {{"jobId", p["jobId"]}});
  EXPECT_EQ(job["type"], "exec.job.result");
  EXPECT_EQ(job["payload"]["state"], "done");
  EXPECT_EQ(job["payload"]["stdout"], "ping -c 1 gw.local\n");
  EXPECT_EQ(ask_one("exec.job", {{"jobId", "job-unknown"}})["payload"]["code"], "not_found");
}

TEST_F(ControlPlaneTest, InjectionAttemptsAreRefusedBeforeAnythingRuns) {
  dir.write("etc/tools/network.json", kNetworkTool);
  start();
  for (const std::string& host : std::vector<std::string>{
           "gw.local; rm -rf /", "$(reboot)", "`id`", "gw\nlocal", "-oProxyCommand=x",
           std::string("gw.local\0x", 10), "ｇｗ.local", "gw.lосal" /* Cyrillic о, с */,
           std::string(300, 'a'), "", "gw local"}) {
    auto r =
        ask_one("exec.run", {{"tool", "network"}, {"command", "ping"}, {"args", {{"host", host}}}});
    EXPECT_EQ(r["type"], "error") << host;
    EXPECT_EQ(r["payload"]["code"], "invalid_args") << host;
  }
  EXPECT_EQ(ask_one("exec.run", {{"tool", "network"},
                                 {"command", "ping"},
                                 {"args", json::object()}})["payload"]["code"],
            "invalid_args");
  EXPECT_EQ(ask_one("exec.run", {{"tool", "network"},
                                 {"command", "ping"},
                                 {"args", {{"host", "gw"}, {"extra", "x"}}}})["payload"]["code"],
            "invalid_args");
  EXPECT_EQ(
      ask_one("exec.run",
              {{"tool", "shell"}, {"command", "sh"}, {"args", json::object()}})["payload"]["code"],
      "not_found");
  EXPECT_EQ(ask_one("exec.run", {{"tool", "network"},
                                 {"command", "rm"},
                                 {"args", json::object()}})["payload"]["code"],
            "not_found");
  for (const auto& m : sent) EXPECT_NE(m["type"], "exec.accepted");
}

// Running and not a zombie.
bool running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

TEST_F(ControlPlaneTest, ATimeOutKillsTheWholeProcessGroup) {
  // The command leaves a child in the background and says where.
  dir.write("etc/tools/slow.json", R"({"commands": {"sleepy": {"argv": ["/bin/sh", "-c",
      "sleep 30 & echo $! > )" + dir.file("bg.pid") +
                                       R"(; sleep 30"], "timeoutS": 1}}})");
  start();
  auto r =
      ask("exec.run", {{"tool", "slow"}, {"command", "sleepy"}, {"args", json::object()}}, 2, 15s);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1]["payload"]["timedOut"], true);
  EXPECT_LT(r[1]["payload"]["durationMs"].get<int>(), 5000);
  // The background `sleep 30` of the command's shell went with it.
  const pid_t bg = std::stoi(TempDir::read(dir.file("bg.pid")));
  ASSERT_GT(bg, 0);
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(running(bg)) << "a child of the timed-out command is still running";
}

TEST_F(ControlPlaneTest, OutputIsCutAt64KiBAndJobsAreBounded) {
  dir.write("etc/tools/network.json", kNetworkTool);
  start();
  auto r =
      ask("exec.run", {{"tool", "network"}, {"command", "noisy"}, {"args", json::object()}}, 2);
  ASSERT_EQ(r.size(), 2u);
  // NUL bytes are valid UTF-8 and are kept; the cut is at 64 KiB.
  EXPECT_EQ(r[1]["payload"]["stdout"].get<std::string>().size(), 64u * 1024);
  // Two sleepy jobs fill the bound of 2; a third is `busy`.
  ask("exec.run", {{"tool", "network"}, {"command", "sleepy"}, {"args", json::object()}});
  ask("exec.run", {{"tool", "network"}, {"command", "sleepy"}, {"args", json::object()}});
  EXPECT_EQ(ask_one("exec.run", {{"tool", "network"},
                                 {"command", "ping"},
                                 {"args", {{"host", "a"}}}})["payload"]["code"],
            "busy");
}

TEST_F(ControlPlaneTest, TheToolsFolderIsWatched) {
  start();
  EXPECT_EQ(plane->tool_count(), 0u);
  dir.write("etc/tools/network.json", kNetworkTool);
  dir.write("etc/tools/broken.json", R"({"commands": {"x": {"argv": ["relative/path"]}}})");
  ASSERT_TRUE(run_until(
      io, [&] { return plane->tool_count() == 1; }, 10s));
  bool reported = false;
  for (const auto& l : log_lines)
    reported = reported || l.find("broken.json: commands.x.argv[0]") != std::string::npos;
  EXPECT_TRUE(reported);
}

TEST_F(ControlPlaneTest, PermissionMatrix) {
  // No control.json: every section is missing.
  start();
  EXPECT_EQ(ask_one("metrics.get", json::object())["payload"]["code"], "unavailable");
  EXPECT_EQ(ask_one("jwt.rotate", json::object())["payload"]["code"], "unavailable");
  // A section without the operation; a name outside the section's list.
  permit({{"units", {{"allow", {"status"}}, {"names", {"frigate.service"}}}},
          {"env", {{"allow", {"set"}}}}});
  reload_and_wait();
  EXPECT_TRUE(plane->permissions_loaded());
  EXPECT_EQ(ask_one("units.restart", {{"name", "frigate.service"}})["payload"]["code"],
            "forbidden");
  EXPECT_EQ(ask_one("units.status", {{"name", "sshd.service"}})["payload"]["code"], "forbidden");
  EXPECT_EQ(ask_one("units.status", {{"name", "frigate.service"}})["type"], "units.result");
  EXPECT_EQ(ask_one("env.unset", {{"key", "FOO"}})["payload"]["code"], "forbidden");
  EXPECT_EQ(ask_one("metrics.get", json::object())["payload"]["code"], "unavailable");
  // An invalid file allows nothing (fail closed), and says why in the log.
  dir.write("etc/control.json", R"({"units": {"allow": ["status", "reboot"]}})");
  reload_and_wait();
  EXPECT_FALSE(plane->permissions_loaded());
  EXPECT_EQ(ask_one("units.status", {{"name", "frigate.service"}})["payload"]["code"],
            "unavailable");
}

TEST_F(ControlPlaneTest, NodeControlOperations) {
  permit({{"metrics", {{"allow", {"get"}}}},
          {"units", {{"allow", {"status", "restart"}}}},
          {"journal", {{"allow", {"tail"}}}},
          {"env", {{"allow", {"set", "unset"}}}},
          {"jwt", {{"allow", {"rotate"}}}}});
  start();
  auto m = ask_one("metrics.get", json::object());
  ASSERT_EQ(m["type"], "metrics.result") << m.dump();
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::message("metrics.result"), m["payload"]));
  EXPECT_GT(m["payload"]["memory"]["totalBytes"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(m["payload"]["disk"][0]["path"], "/");
  auto only = ask_one("metrics.get", {{"kinds", {"memory"}}});
  EXPECT_EQ(only["payload"].size(), 1u);

  auto st = ask_one("units.status", {{"name", "frigate.service"}});
  ASSERT_EQ(st["type"], "units.result");
  EXPECT_EQ(st["payload"]["activeState"], "active");
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::message("units.result"), st["payload"]));
  EXPECT_EQ(ask_one("units.status", {{"name", "--all"}})["payload"]["code"], "invalid_args");
  EXPECT_EQ(ask_one("units.status", {{"name", "a;b"}})["payload"]["code"], "invalid_args");
  EXPECT_EQ(ask_one("units.restart", {{"name", "frigate.service"}})["type"], "ack");
  auto j = ask_one("journal.tail", {{"unit", "secbox.service"}, {"lines", 2}});
  ASSERT_EQ(j["type"], "journal.result");
  EXPECT_EQ(j["payload"]["lines"], json({"line 1", "line 2"}));
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::message("journal.result"), j["payload"]));
  auto calls = TempDir::read(dir.file("fake/systemctl.calls"));
  EXPECT_NE(calls.find("restart -- frigate.service"), std::string::npos) << calls;

  auto set = ask_one("env.set", {{"key", "FRIGATE_URL"}, {"value", "http://127.0.0.1:5001"}});
  EXPECT_EQ(set["type"], "ack");
  EXPECT_EQ(set["payload"], json({{"key", "FRIGATE_URL"}, {"appliesAt", "restart"}})) << set.dump();
  EXPECT_NE(TempDir::read(settings.compose.env_file).find("FRIGATE_URL=http://127.0.0.1:5001"),
            std::string::npos);
  auto bad = ask_one("env.set", {{"key", "PASSWORD"}, {"value", "hunter22\nINJECTED=1"}});
  EXPECT_EQ(bad["payload"]["code"], "invalid_args");
  EXPECT_EQ(bad.dump().find("hunter22"), std::string::npos) << "values are never echoed";
  EXPECT_EQ(TempDir::read(settings.compose.env_file).find("INJECTED"), std::string::npos);
  EXPECT_EQ(ask_one("env.set", {{"key", "lower"}, {"value", "x"}})["payload"]["code"],
            "invalid_args");
  EXPECT_EQ(ask_one("env.unset", {{"key", "FRIGATE_URL"}})["type"], "ack");
  EXPECT_EQ(ask_one("env.set", {{"key", "IMAGE_TAG"}, {"value", "1.4.3"}})["payload"]["appliesAt"],
            "now");
  EXPECT_EQ(TempDir::read(settings.compose.env_file).find("FRIGATE_URL"), std::string::npos);
  EXPECT_EQ(env_changes, 3);
  struct stat s {};
  ::stat(settings.compose.env_file.c_str(), &s);
  EXPECT_EQ(s.st_mode & 0777, 0600u);
  for (const auto& l : log_lines) EXPECT_EQ(l.find("127.0.0.1:5001"), std::string::npos) << l;
  EXPECT_EQ(ask_one("jwt.rotate", json::object())["type"], "ack");
}

// Without a names list, env.set is for the stack's variables: the box's own
// settings (what it runs, what it serves) need control.json to name each.
TEST_F(ControlPlaneTest, TheBoxsOwnSettingsAreWritableOnlyWhenControlJsonNamesThem) {
  permit({{"env", {{"allow", {"set", "unset"}}}}});
  settings.is_daemon_setting = [](const std::string& k) {
    return k == "COMPOSE_CMD" || k == "LAN_WEB_DIR" || k.rfind("SECBOX_", 0) == 0;
  };
  start();
  for (const char* key : {"COMPOSE_CMD", "LAN_WEB_DIR", "SECBOX_PG_BIN_DIR"}) {
    auto r = ask_one("env.set", {{"key", key}, {"value", "/var/lib/secbox"}});
    EXPECT_EQ(r["payload"]["code"], "forbidden") << key << ": " << r.dump();
    EXPECT_EQ(r.dump().find("/var/lib/secbox"), std::string::npos) << "values are never echoed";
    EXPECT_EQ(ask_one("env.unset", {{"key", key}})["payload"]["code"], "forbidden") << key;
  }
  EXPECT_EQ(TempDir::read(settings.compose.env_file).find("/var/lib/secbox"), std::string::npos);
  EXPECT_EQ(ask_one("env.set", {{"key", "IMAGE_TAG"}, {"value", "1.4.3"}})["type"], "ack")
      << "a stack variable";
  // Named, it is the site's decision.
  permit({{"env", {{"allow", {"set"}}, {"names", {"COMPOSE_CMD", "IMAGE_TAG"}}}}});
  reload_and_wait();
  EXPECT_EQ(ask_one("env.set", {{"key", "COMPOSE_CMD"}, {"value", "podman-compose"}})["type"],
            "ack");
}

// scripts/run on a development machine: no podman. containers.list says so
// plainly instead of passing on an exec error.
TEST_F(ControlPlaneTest, WithoutAContainerRuntimeContainersListSaysNoneIsInstalled) {
  permit({{"containers", {{"allow", {"list", "restart"}}}}});
  settings.container_cmd = {"podman-not-installed-here"};
  start();
  auto list = ask_one("containers.list", json::object());
  EXPECT_EQ(list["payload"]["code"], "unavailable") << list.dump();
  EXPECT_NE(list["payload"]["message"].get<std::string>().find("no container runtime is installed"),
            std::string::npos)
      << list.dump();
  auto restart = ask_one("containers.restart", {{"name", "frigate"}});
  EXPECT_EQ(restart["payload"]["code"], "unavailable") << restart.dump();
}

TEST_F(ControlPlaneTest, OneComposeOperationAtATimeAndTheOutcomeIsQueued) {
  dir.write("fake/behaviour.json", R"({"unhealthy": ["web"]})");
  start();
  const json snapshot{
      {"project", "gate"},
      {"yaml", "services:\n  web:\n    image: x\n    healthcheck: {test: [CMD, 'true']}\n"}};
  const std::string first = "c-first";
  d.dispatch(json{
      {"v", 1}, {"type", "compose.snapshot"}, {"id", first}, {"ts", "t"}, {"payload", snapshot}}
                 .dump());
  auto second = ask_one("compose.snapshot", snapshot);
  EXPECT_EQ(second["payload"]["code"], "busy") << second.dump();
  json result;
  ASSERT_TRUE(run_until(
      io,
      [&] {
        for (const auto& m : sent) {
          if (m.value("re", "") == first) result = m;
        }
        return !result.is_null();
      },
      20s));
  EXPECT_EQ(result["type"], "compose.result") << result.dump();
  EXPECT_EQ(result["payload"]["ok"], false);
  EXPECT_EQ(result["payload"]["phase"], "health");
  ASSERT_EQ(events.given.size(), 1u);
  EXPECT_EQ(events.given[0].type, "compose_result");
  EXPECT_EQ(events.given[0].client_id.size(), 36u) << "a UUID";
  EXPECT_EQ(events.given[0].data["project"], "gate");
  EXPECT_EQ(events.given[0].data["phase"], "health");
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::event_data("compose_result"),
                                       events.given[0].data));
}

TEST_F(ControlPlaneTest, StoppingKillsARunningComposeAndAnswersNothingLate) {
  dir.write("fake/behaviour.json", R"({"hang": ["up"]})");
  start();
  d.dispatch(json{{"v", 1},
                  {"type", "compose.snapshot"},
                  {"id", "c-x"},
                  {"ts", "t"},
                  {"payload", {{"project", "gate"}, {"yaml", "services:\n  web:\n    image: x\n"}}}}
                 .dump());
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return TempDir::read(dir.file("fake/calls.jsonl")).find("\"up\"") != std::string::npos;
      },
      10s));
  const auto started = std::chrono::steady_clock::now();
  bool stopped = false;
  plane->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return stopped; }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  plane.reset();
  // Only this test's fake (tests run side by side under ctest -j).
  const std::string mine =
      "pgrep -f 'fake-compos[e] --fake-state=" + dir.file("fake") + "' >/dev/null";
  EXPECT_NE(std::system(mine.c_str()), 0) << "the compose child is still running";
}

}  // namespace
}  // namespace secbox::control
