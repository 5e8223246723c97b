// Software updates end to end (cloud-protocol §7.6): the real secbox, run
// from a versions folder by scripts/supervise (which does what the installed
// unit's systemd does: secbox-recover pre-start before each start, restart on
// failure and on exit 75, secbox-recover check every few seconds), updated by
// the cloud simulator over the real tunnel and HTTPS. Every fault ends with
// the box saying hello with a working version and exactly one update_result
// for the attempt; none leaves the box without a running version.
//
// The trial's times are shortened (SECBOX_UPDATE_TRIAL_S=6, DEADLINE_S=25)
// so that the suite fits in CI; the installed box uses 120 s and 300 s. The
// "new versions" are the same code under another version name (a stripped
// copy of the binary under test), or small scripts that fail in the ways a
// bad build does.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <iostream>
#include <thread>

#include "cloudsim/cloudsim.hpp"
#include "paired_box.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"
#include "wait_until.hpp"

namespace secbox {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;
using secbox::testing::wait_until;
using SteadyClock = std::chrono::steady_clock;

constexpr int kTrialS = 6;
constexpr int kDeadlineS = 25;


// The binary under test without its debug sections: the same code, under the
// 256 MiB an update may have (an ASan build with debug info is larger).
const std::string& stripped_binary() {
  static const std::string path = [] {
    const std::string out = std::string(SECBOX_TEST_BUILD_DIR) + "/secbox-stripped-for-updates";
    // Tests run in parallel processes: each makes its own, then renames it into place.
    const std::string tmp = out + ".tmp." + std::to_string(::getpid());
    const std::string cmd = "objcopy --strip-debug '" + std::string(SECBOX_BINARY) + "' '" + tmp + "' && mv '" +
                            tmp + "' '" + out + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "objcopy failed: " << cmd;
    return out;
  }();
  return path;
}

std::string read_link(const std::string& path) {
  char buf[512];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

class UpdateE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db.ok());
    lib = dir.file("lib");
    ASSERT_EQ(std::system(("mkdir -p '" + lib + "/versions/1.0.0' && cp '" + stripped_binary() + "' '" + lib +
                           "/versions/1.0.0/secbox' && ln -s versions/1.0.0 '" + lib + "/current' && ln -s " +
                           "versions/1.0.0 '" + lib + "/known-good' && cp '" + sim->update_public_key_file() + "' '" +
                           dir.file("etc/update.pub") + "'")
                              .c_str()),
              0);
    dir.write("etc/control.json", R"({"update": {"allow": ["apply"]}, "metrics": {"allow": ["get"]}})");
  }

  void TearDown() override {
    stop();
    if (HasFailure()) std::cout << "--- supervisor and daemon log (tail) ---\n" << log().substr(log().size() > 6000 ? log().size() - 6000 : 0) << "\n";
  }

  void start() {
    const std::string log_path = dir.file("supervise.log");
    std::vector<std::string> env{"SECBOX_ETC_DIR=" + dir.file("etc"), "SECBOX_STATE_DIR=" + dir.file("state"),
                                 "SECBOX_VERSIONS_DIR=" + lib, "DATABASE_URL=" + db.url(), "PAIRING_PORT=0",
                                 "LAN_PORT=0", "FRIGATE_URL=http://127.0.0.1:9",
                                 "SECBOX_UPDATE_TRIAL_S=" + std::to_string(kTrialS),
                                 "SECBOX_UPDATE_DEADLINE_S=" + std::to_string(kDeadlineS), "SECBOX_RESTART_S=1",
                                 "SECBOX_CHECK_S=2", "SECBOX_START_LIMIT=5"};
    for (const char* keep : {"PATH", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "ASAN_OPTIONS",
                             "UBSAN_OPTIONS"}) {
      if (const char* v = std::getenv(keep)) env.push_back(std::string(keep) + "=" + v);
    }
    supervisor = ::fork();
    ASSERT_GE(supervisor, 0);
    if (supervisor == 0) {
      ::setpgid(0, 0);
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string script = std::string(SECBOX_TEST_SOURCE_DIR) + "/scripts/supervise";
      std::vector<std::string> args{script, lib, "--state", dir.file("state"), "--etc", dir.file("etc")};
      std::vector<char*> argv, envp;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      for (auto& e : env) envp.push_back(e.data());
      envp.push_back(nullptr);
      ::execve(script.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ::setpgid(supervisor, supervisor);
  }

  void stop() {
    if (supervisor <= 0) return;
    ::kill(-supervisor, SIGTERM);
    int status = 0;
    const bool gone = wait_until([&] { return ::waitpid(supervisor, &status, WNOHANG) == supervisor; }, 15s, 100ms);
    if (!gone) {
      ::kill(-supervisor, SIGKILL);
      ::waitpid(supervisor, &status, 0);
    }
    ::kill(-supervisor, SIGKILL);  // anything of the group left behind
    supervisor = -1;
  }

  std::string log() const { return TempDir::read(dir.file("supervise.log")); }

  // The next hello (a session after `after`) and its version.
  std::optional<cloudsim::Received> hello_after(int after, std::chrono::milliseconds limit) {
    return sim->wait_for(
        [after](const cloudsim::Received& r) {
          return !r.is_binary && r.session > after && r.message.value("type", "") == "hello";
        },
        limit);
  }
  static std::string version_of(const cloudsim::Received& hello) { return hello.message["payload"].value("version", ""); }

  // Distinct update_result events received so far, by clientId.
  std::map<std::string, json> results() const {
    std::map<std::string, json> out;
    for (const auto& r : sim->received()) {
      if (r.is_binary || r.message.value("type", "") != "events.batch") continue;
      for (const auto& e : r.message["payload"].value("events", json::array())) {
        if (e.value("type", "") == "update_result") out[e.value("clientId", "")] = e["data"];
      }
    }
    return out;
  }
  // Waits for the first update_result, then a little longer for a second one
  // that must not come; returns them all.
  std::map<std::string, json> settled_results(std::chrono::milliseconds limit = 90s) {
    wait_until([&] { return !results().empty(); }, limit, 200ms);
    std::this_thread::sleep_for(3s);
    return results();
  }

  // Starts the box and waits for its first hello (version 1.0.0).
  void start_box() {
    start();
    auto h = hello_after(0, 90s);
    ASSERT_TRUE(h) << log();
    ASSERT_EQ(version_of(*h), "1.0.0");
    session = h->session;
    // The first hello is answered; the box may now take requests.
    ASSERT_TRUE(sim->wait_for_type("health.report", 30s));
  }

  json send_update(json payload, const std::string& id) {
    json msg{{"v", 1}, {"type", "update.apply"}, {"id", id}, {"ts", "2026-12-06T10:00:00Z"}, {"payload", payload}};
    EXPECT_TRUE(sim->send_text(msg.dump()));
    return msg;
  }
  std::optional<json> reply_to(const std::string& id, std::chrono::milliseconds limit = 60s) {
    auto r = sim->wait_for([&](const cloudsim::Received& m) { return !m.is_binary && m.message.value("re", "") == id; },
                           limit);
    if (!r) return std::nullopt;
    return r->message;
  }

  // The daemon's pid: the process that runs from the versions folder.
  pid_t daemon_pid() const {
    DIR* d = ::opendir("/proc");
    pid_t found = 0;
    while (d && !found) {
      auto* e = ::readdir(d);
      if (!e) break;
      const pid_t pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      if (read_link("/proc/" + std::string(e->d_name) + "/exe").rfind(lib + "/versions/", 0) == 0 &&
          ::getpgid(pid) == supervisor) {
        found = pid;
      }
    }
    if (d) ::closedir(d);
    return found;
  }

  // SIGKILL to the daemon the moment `now()` holds (polled every 0.2 ms).
  bool kill_when(const std::function<bool()>& now, std::chrono::milliseconds limit) {
    const pid_t pid = daemon_pid();
    if (pid <= 0) return false;
    const auto deadline = SteadyClock::now() + limit;
    while (SteadyClock::now() < deadline) {
      if (now()) {
        ::kill(pid, SIGKILL);
        return true;
      }
      std::this_thread::sleep_for(200us);
    }
    return false;
  }
  std::string state_phase() const {
    std::ifstream in(lib + "/update.state");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("PHASE=", 0) == 0) return line.substr(6);
    }
    return "";
  }

  // Expects the box back on `version` and exactly one update_result with this phase.
  void expect_back_on(const std::string& version, const std::string& phase, bool restarted = true) {
    if (restarted) {
      auto h = hello_after(session, 120s);
      ASSERT_TRUE(h) << "no hello after the fault";
      EXPECT_EQ(version_of(*h), version);
      session = h->session;
    }
    auto all = settled_results();
    ASSERT_EQ(all.size(), 1u) << json(all).dump();
    const auto& data = all.begin()->second;
    EXPECT_EQ(data.value("phase", ""), phase) << data.dump();
    EXPECT_EQ(data.value("ok", true), phase == "done") << data.dump();
    EXPECT_EQ(read_link(lib + "/current"), "versions/" + version);
    EXPECT_NE(daemon_pid(), 0) << "a version runs";
  }

  std::string script(const std::string& name, const std::string& text) {
    return dir.write(name, text, 0755);
  }

  TestDatabase db;
  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim = secbox::testing::paired_simulator(dir);
  std::string lib;
  pid_t supervisor = -1;
  int session = 0;
};

TEST_F(UpdateE2E, AGoodUpdateRunsItsTrialAndBecomesKnownGood) {
  start_box();
  const auto t0 = SteadyClock::now();
  send_update(sim->update_payload(stripped_binary(), "1.1.0"), "u-good");
  auto reply = reply_to("u-good");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->value("type", ""), "ack") << reply->dump();
  auto h = hello_after(session, 90s);
  ASSERT_TRUE(h);
  const double to_hello = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  EXPECT_EQ(version_of(*h), "1.1.0");
  session = h->session;
  std::cout << "# update.apply to the new version's hello: " << to_hello << " s\n";
  auto all = settled_results(60s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->second.value("phase", ""), "done");
  EXPECT_EQ(all.begin()->second.value("ok", false), true);
  EXPECT_EQ(all.begin()->second.value("fromVersion", ""), "1.0.0");
  EXPECT_EQ(all.begin()->second.value("toVersion", ""), "1.1.0");
  EXPECT_EQ(read_link(lib + "/known-good"), "versions/1.1.0");
  EXPECT_EQ(TempDir::read(dir.file("state/known-good/secbox.env")), TempDir::read(dir.file("etc/secbox.env")));
}

TEST_F(UpdateE2E, FailuresBeforeTheSwitchLeaveTheRunningVersion) {
  start_box();
  ::mkdir(dir.file("other").c_str(), 0700);
  cloudsim::CloudSim other(cloudsim::Options{dir.file("other")});
  // None of these is ever run or staged: a small file makes the same checks
  // fail as a large one would, in less time.
  const std::string release = script("release", "#!/bin/sh\n" + std::string(64 * 1024, '#') + "\nexit 0\n");
  std::string bytes = TempDir::read(release);
  bytes[5000] = 'X';
  const std::string corrupted = dir.write("corrupted", bytes, 0644);
  int n = 0;
  auto attempt = [&](const std::string& what, json payload, const std::string& phase) {
    SCOPED_TRACE(what);
    sim->clear_received();
    const std::string id = "u-f" + std::to_string(++n);
    send_update(std::move(payload), id);
    auto reply = reply_to(id);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->value("type", ""), "error") << reply->dump();
    expect_back_on("1.0.0", phase, false);
  };
  auto good = [&](const std::string& v) { return sim->update_payload(release, v); };
  auto p = good("1.1.1");
  p["url"] = sim->publish("corrupted", corrupted);
  attempt("a corrupted download", p, "verify");
  p = good("1.1.2");
  p["sha256"] = std::string(64, '0');
  attempt("a wrong SHA-256", p, "verify");
  p = good("1.1.3");
  p["signature"] = sim->sign_file(corrupted);
  attempt("a bad signature", p, "verify");
  p = good("1.1.4");
  p["signature"] = other.sign_file(release);
  attempt("a signature by another key", p, "verify");
  p = good("1.1.5");
  p["size"] = (256ull << 20) + 1;
  attempt("a file over the size cap", p, "verify");
  EXPECT_EQ(hello_after(session, 1s), std::nullopt) << "the box never restarted";
}

TEST_F(UpdateE2E, KilledDuringTheDownload) {
  start_box();
  sim->set_download_delay(4s);
  send_update(sim->update_payload(stripped_binary(), "1.1.0"), "u-dl");
  ASSERT_TRUE(kill_when([&] { return state_phase() == "download"; }, 20s));
  sim->set_download_delay(0ms);
  expect_back_on("1.0.0", "download");
}

TEST_F(UpdateE2E, KilledDuringTheStaging) {
  start_box();
  // The staging copy is short: try a few versions until the kill lands in it.
  bool landed = false;
  for (int i = 0; i < 4 && !landed; ++i) {
    const std::string v = "1.2." + std::to_string(i);
    sim->clear_received();
    send_update(sim->update_payload(stripped_binary(), v), "u-st" + std::to_string(i));
    struct stat st {};
    landed = kill_when([&] { return ::stat((lib + "/versions/" + v + ".staging").c_str(), &st) == 0; }, 30s);
    if (!landed) {
      // Staged and switched before the kill: the update went through; start over from it.
      std::cout << "# the staging of " << v << " was too quick to kill; trying again\n";
      auto h = hello_after(session, 60s);
      ASSERT_TRUE(h);
      session = h->session;
      settled_results(60s);
      continue;
    }
    expect_back_on(read_link(lib + "/current").substr(9), "stage");
  }
  EXPECT_TRUE(landed) << "no kill landed inside a staging";
}

TEST_F(UpdateE2E, APowerCutAtTheSwitch) {
  start_box();
  send_update(sim->update_payload(stripped_binary(), "1.1.0"), "u-sw");
  ASSERT_TRUE(kill_when([&] { return state_phase() == "trial"; }, 60s));
  // Before the link moved, 1.0.0 runs again and reports the switch; after it,
  // 1.1.0 starts its trial and passes it. Either way: one result, a version up.
  auto h = hello_after(session, 90s);
  ASSERT_TRUE(h);
  session = h->session;
  auto all = settled_results(60s);
  ASSERT_EQ(all.size(), 1u) << json(all).dump();
  const auto phase = all.begin()->second.value("phase", "");
  if (version_of(*h) == "1.0.0") {
    EXPECT_EQ(phase, "switch");
  } else {
    EXPECT_EQ(version_of(*h), "1.1.0");
    EXPECT_EQ(phase, "done");
  }
  std::cout << "# the kill landed " << (phase == "switch" ? "before" : "after") << " the link moved\n";
}

TEST_F(UpdateE2E, ANewVersionThatExitsAtOnceIsRolledBack) {
  start_box();
  send_update(sim->update_payload(script("exits", "#!/bin/sh\necho 'this build is broken' >&2\nexit 1\n"), "1.1.0"),
              "u-exit");
  ASSERT_TRUE(reply_to("u-exit"));
  expect_back_on("1.0.0", "rollback");
  EXPECT_EQ(read_link(lib + "/known-good"), "versions/1.0.0");
}

TEST_F(UpdateE2E, ANewVersionThatIsNotEvenExecutableIsRolledBack) {
  start_box();
  std::string junk(4096, '\0');
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919) % 251);
  send_update(sim->update_payload(dir.write("junk", junk), "1.1.0"), "u-junk");
  ASSERT_TRUE(reply_to("u-junk"));
  expect_back_on("1.0.0", "rollback");
}

TEST_F(UpdateE2E, ANewVersionThatNeverReachesWelcomeIsRolledBackAtItsDeadline) {
  start_box();
  // Runs (the real daemon) but talks to a gateway where nobody answers.
  const std::string w = script(
      "no-welcome", "#!/bin/sh\nd='" + dir.file("etc-nowhere") + "'\nrm -rf \"$d\" && cp -a '" + dir.file("etc") +
                        "' \"$d\"\nsed -i 's#^DEVICE_GATEWAY_URL=.*#DEVICE_GATEWAY_URL=wss://127.0.0.1:9/ws/device#' "
                        "\"$d/secbox.env\"\nSECBOX_ETC_DIR=\"$d\" exec '" +
                        lib + "/versions/1.0.0/secbox' \"$@\"\n");
  const auto t0 = SteadyClock::now();
  send_update(sim->update_payload(w, "1.1.0"), "u-nw");
  ASSERT_TRUE(reply_to("u-nw"));
  expect_back_on("1.0.0", "rollback");
  const double took = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  std::cout << "# rolled back " << took << " s after update.apply (deadline " << kDeadlineS << " s)\n";
  EXPECT_GE(took, kDeadlineS - 5);
}

TEST_F(UpdateE2E, ANewVersionThatCrashesDuringItsTrialIsRolledBack) {
  start_box();
  // The real daemon, killed by a segfault halfway through its trial.
  const std::string w = script("crashes", "#!/bin/sh\n(sleep " + std::to_string(kTrialS / 2) +
                                              "; kill -SEGV $$) &\nexec '" + lib + "/versions/1.0.0/secbox' \"$@\"\n");
  send_update(sim->update_payload(w, "1.1.0"), "u-crash");
  ASSERT_TRUE(reply_to("u-crash"));
  expect_back_on("1.0.0", "rollback");
}

TEST_F(UpdateE2E, AnUpdateWhileAnotherRunsIsBusy) {
  start_box();
  sim->set_download_delay(2s);
  send_update(sim->update_payload(stripped_binary(), "1.1.0"), "u-first");
  std::this_thread::sleep_for(300ms);
  send_update(sim->update_payload(stripped_binary(), "1.1.9"), "u-second");
  auto second = reply_to("u-second");
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["payload"].value("code", ""), "busy") << second->dump();
  sim->set_download_delay(0ms);
  auto first = reply_to("u-first");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->value("type", ""), "ack");
  expect_back_on("1.1.0", "done");
}

}  // namespace
}  // namespace secbox
