// Software updates end to end (cloud-protocol §7.6): the real secbox, run
// from a versions folder by scripts/supervise (which does what the installed
// unit's systemd does: secbox-recover pre-start before each start, restart on
// failure and on exit 75, secbox-recover check every few seconds), updated by
// the cloud simulator over the real tunnel and HTTPS. Every fault ends with
// the box saying hello with a working version and exactly one update_result
// for the attempt; none leaves the box without a running version.
//
// The trial's times are shortened (SECBOX_UPDATE_TRIAL_S=6, DEADLINE_S=25)
// so that the suite fits in CI; the installed box uses 120 s and 300 s.
// Every offer is a real release (tools/release: a tar+zstd bundle of the
// daemon and the guard app, a manifest signed with the simulator's key). The
// "new versions" are the same code with another version stamped in (a
// stripped copy of the binary under test), or small scripts that fail in the
// ways a bad build does, carrying the version slot a daemon carries. The
// guard app is served from the running version's folder: the LAN answers
// with the new app after an update and the old one after a rollback.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
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
#include "https_client.hpp"
#include "paired_box.hpp"
#include "releases.hpp"
#include "update/built_in.hpp"
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
    const std::string cmd = "objcopy --strip-debug '" + std::string(SECBOX_BINARY) + "' '" + tmp +
                            "' && mv '" + tmp + "' '" + out + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "objcopy failed: " << cmd;
    return out;
  }();
  return path;
}

// The stripped binary with `version` stamped in, made once per version.
std::string stamped_binary(const std::string& version) {
  static std::map<std::string, std::string> made;
  auto& path = made[version];
  if (!path.empty()) return path;
  const std::string out = std::string(SECBOX_TEST_BUILD_DIR) + "/secbox-stamped-" + version;
  const std::string tmp = out + ".tmp." + std::to_string(::getpid());
  auto bytes = TempDir::read(stripped_binary());
  auto stamped = update::stamp_version(std::move(bytes), version);
  if (!stamped) {
    ADD_FAILURE() << stamped.error().message;
    return path;
  }
  {
    std::ofstream f(tmp, std::ios::binary);
    f << stamped.value();
  }
  ::chmod(tmp.c_str(), 0755);
  ::rename(tmp.c_str(), out.c_str());
  path = out;
  return path;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
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
    // 1.0.0 as install.sh lays a release out: the daemon, its app, its manifest.
    ASSERT_EQ(
        std::system(("mkdir -p '" + lib + "/versions/1.0.0/web' && cp '" + stamped_binary("1.0.0") +
                     "' '" + lib + "/versions/1.0.0/secbox' && ln -s versions/1.0.0 '" + lib +
                     "/current' && ln -s " + "versions/1.0.0 '" + lib + "/known-good' && cp '" +
                     sim->update_public_key_file() + "' '" + dir.file("etc/update.pub") + "'")
                        .c_str()),
        0);
    dir.write("lib/versions/1.0.0/web/index.html", app_page("1.0.0"), 0644);
    dir.write("lib/update.ledger", "COUNTER=1\n", 0644);
    lan_port = free_port();
    dir.write("etc/control.json",
              R"({"update": {"allow": ["apply"]}, "metrics": {"allow": ["get"]}})");
  }

  void TearDown() override {
    stop();
    if (HasFailure())
      std::cout << "--- supervisor and daemon log (tail) ---\n"
                << log().substr(log().size() > 6000 ? log().size() - 6000 : 0) << "\n";
  }

  void start() {
    const std::string log_path = dir.file("supervise.log");
    std::vector<std::string> env{"SECBOX_ETC_DIR=" + dir.file("etc"),
                                 "SECBOX_STATE_DIR=" + dir.file("state"),
                                 "SECBOX_VERSIONS_DIR=" + lib,
                                 "DATABASE_URL=" + db.url(),
                                 "PAIRING_PORT=0",
                                 "LAN_PORT=" + std::to_string(lan_port),
                                 "FRIGATE_URL=http://127.0.0.1:9",
                                 "SECBOX_UPDATE_TRIAL_S=" + std::to_string(kTrialS),
                                 "SECBOX_UPDATE_DEADLINE_S=" + std::to_string(kDeadlineS),
                                 "SECBOX_RESTART_S=1",
                                 "SECBOX_CHECK_S=2",
                                 "SECBOX_START_LIMIT=5"};
    for (const char* keep : {"PATH", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE",
                             "ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
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
      std::vector<std::string> args{script,         lib, "--state", dir.file("state"), "--etc",
                                    dir.file("etc")};
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
    const bool gone = wait_until(
        [&] { return ::waitpid(supervisor, &status, WNOHANG) == supervisor; }, 15s, 100ms);
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
  static std::string version_of(const cloudsim::Received& hello) {
    return hello.message["payload"].value("version", "");
  }

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

  std::string small_release() { return script("small", "#!/bin/sh\n"); }

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
    json msg{{"v", 1},
             {"type", "update.apply"},
             {"id", id},
             {"ts", "2026-12-06T10:00:00Z"},
             {"payload", payload}};
    EXPECT_TRUE(sim->send_text(msg.dump()));
    return msg;
  }
  std::optional<json> reply_to(const std::string& id, std::chrono::milliseconds limit = 60s) {
    auto r = sim->wait_for(
        [&](const cloudsim::Received& m) {
          return !m.is_binary && m.message.value("re", "") == id;
        },
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

  static std::string app_page(const std::string& version) {
    return "<!doctype html><title>guard app " + version + "</title>";
  }

  // A release of `daemon` as `version` (stamped unless `stamp` is false), with
  // a guard app that names its version, signed with the simulator's key.
  json offer(const std::string& daemon, const std::string& version, std::uint64_t counter = 1,
             bool stamp = true) {
    ::mkdir(dir.file("app-" + version).c_str(), 0755);
    dir.write("app-" + version + "/index.html", app_page(version), 0644);
    release::ReleaseRequest q;
    q.daemon = daemon;
    q.web_dir = dir.file("app-" + version);
    q.version = version;
    q.counter = counter;
    q.key_file = sim->update_private_key_file();
    q.valid_s = 3600;
    q.out_dir = dir.file("release-" + version + "-" + std::to_string(++releases));
    q.stamp = stamp;
    q.zstd_level = 1;
    auto r = release::make_release(q);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? sim->update_payload(r.value().dir) : json();
  }

  // A small script that stands for a bad build, with the version slot a
  // daemon carries after its last line.
  std::string script(const std::string& name, const std::string& text) {
    return dir.write(
        name, text + "\nexit 0\n" + secbox::testing::version_mark() + std::string(65, '\0'), 0755);
  }

  // The guard app's page as the LAN serves it now.
  std::string app_now() {
    secbox::testing::HttpsClient c(lan_port);
    return c.call("GET", "/").body;
  }

  TestDatabase db;
  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim = secbox::testing::paired_simulator(dir);
  std::string lib;
  pid_t supervisor = -1;
  int session = 0;
  int lan_port = 0;
  int releases = 0;
};

TEST_F(UpdateE2E, AGoodUpdateRunsItsTrialAndBecomesKnownGoodWithItsApp) {
  start_box();
  EXPECT_NE(app_now().find("guard app 1.0.0"), std::string::npos);
  const auto payload = offer(stamped_binary("1.1.0"), "1.1.0", 2);
  std::cout << "# bundle: " << TempDir::read(dir.file("release-1.1.0-1/secbox.tar.zst")).size()
            << " bytes (the ASan test build; scripts/release measures the real one)\n";
  const auto t0 = SteadyClock::now();
  send_update(payload, "u-good");
  auto reply = reply_to("u-good");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->value("type", ""), "ack") << reply->dump();
  auto h = hello_after(session, 90s);
  ASSERT_TRUE(h);
  const double to_hello = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  EXPECT_EQ(version_of(*h), "1.1.0") << "the built-in version of the new daemon";
  session = h->session;
  std::cout << "# update.apply to the new version's hello: " << to_hello << " s\n";
  EXPECT_NE(app_now().find("guard app 1.1.0"), std::string::npos)
      << "the app switched with the daemon";
  auto all = settled_results(60s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->second.value("phase", ""), "done");
  EXPECT_EQ(all.begin()->second.value("ok", false), true);
  EXPECT_EQ(all.begin()->second.value("fromVersion", ""), "1.0.0");
  EXPECT_EQ(all.begin()->second.value("toVersion", ""), "1.1.0");
  EXPECT_EQ(read_link(lib + "/known-good"), "versions/1.1.0");
  EXPECT_NE(TempDir::read(lib + "/update.ledger").find("COUNTER=2"), std::string::npos)
      << "the counter moved";
  EXPECT_EQ(TempDir::read(dir.file("state/known-good/secbox.env")),
            TempDir::read(dir.file("etc/secbox.env")));
}

TEST_F(UpdateE2E, RefusedOffersLeaveTheRunningVersionAndAreReportedOnceAMinute) {
  start_box();
  ::mkdir(dir.file("other").c_str(), 0700);
  cloudsim::CloudSim other(cloudsim::Options{dir.file("other")});
  const std::string small = script("release", "#!/bin/sh\n" + std::string(64 * 1024, '#'));
  struct Case {
    std::string what;
    json payload;
    std::string code;
  };
  std::vector<Case> cases;
  cases.push_back({"an older release under a newer name (counter 0, the box's is 1)",
                   offer(small, "99.0.0", 0), "forbidden"});
  auto p = offer(small, "1.1.1");
  p["signature"] = offer(small, "1.1.2")["signature"];
  cases.push_back({"a signature over other bytes", p, "forbidden"});
  release::ReleaseRequest q;
  q.daemon = small;
  q.web_dir = dir.file("app-1.1.1");
  q.version = "1.1.3";
  q.counter = 1;
  q.key_file = other.update_private_key_file();
  q.out_dir = dir.file("other-release");
  q.zstd_level = 1;
  ASSERT_TRUE(release::make_release(q));
  cases.push_back({"a signature by another key", sim->update_payload(q.out_dir), "forbidden"});
  cases.push_back({"a daemon of another version", offer(stamped_binary("1.0.0"), "1.1.4", 1, false),
                   "forbidden"});
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string id = "u-f" + std::to_string(++n);
    send_update(c.payload, id);
    auto reply = reply_to(id);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->value("type", ""), "error") << reply->dump();
    EXPECT_EQ((*reply)["payload"].value("code", ""), c.code) << reply->dump();
  }
  // The first refusal is reported; the next ones within the minute are only logged.
  auto all = settled_results();
  ASSERT_EQ(all.size(), 1u) << json(all).dump();
  EXPECT_EQ(all.begin()->second.value("phase", ""), "manifest");
  EXPECT_NE(all.begin()->second.value("detail", "").find("counter 0 is below"), std::string::npos);
  EXPECT_EQ(hello_after(session, 1s), std::nullopt) << "the box never restarted";
  EXPECT_EQ(read_link(lib + "/current"), "versions/1.0.0");
  struct stat st {};
  for (const char* v : {"99.0.0", "1.1.1", "1.1.3", "1.1.4"}) {
    EXPECT_NE(::stat((lib + "/versions/" + v).c_str(), &st), 0) << v << " was never staged";
  }
}

TEST_F(UpdateE2E, KilledDuringTheDownload) {
  start_box();
  sim->set_download_delay(4s);
  send_update(offer(stamped_binary("1.1.0"), "1.1.0"), "u-dl");
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
    send_update(offer(stamped_binary("1.1.0"), v), "u-st" + std::to_string(i));
    struct stat st {};
    landed = kill_when(
        [&] { return ::stat((lib + "/versions/" + v + ".staging").c_str(), &st) == 0; }, 30s);
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
  send_update(offer(stamped_binary("1.1.0"), "1.1.0"), "u-sw");
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
  std::cout << "# the kill landed " << (phase == "switch" ? "before" : "after")
            << " the link moved\n";
}

TEST_F(UpdateE2E, ANewVersionThatExitsAtOnceIsRolledBack) {
  start_box();
  const std::string broken =
      script("exits", "#!/bin/sh\necho 'this build is broken' >&2\nexit 1\n");
  send_update(offer(broken, "1.1.0"), "u-exit");
  ASSERT_TRUE(reply_to("u-exit"));
  expect_back_on("1.0.0", "rollback");
  EXPECT_EQ(read_link(lib + "/known-good"), "versions/1.0.0");
  EXPECT_NE(app_now().find("guard app 1.0.0"), std::string::npos)
      << "the old app came back with the old daemon";
  // Offered again with the same counter: refused, without a download.
  const int files = sim->file_requests();
  send_update(offer(broken, "1.1.0"), "u-again");
  auto again = reply_to("u-again");
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)["payload"].value("code", ""), "forbidden") << again->dump();
  EXPECT_NE((*again)["payload"].value("message", "").find("rolled back"), std::string::npos)
      << again->dump();
  EXPECT_EQ(sim->file_requests(), files);
  struct stat st {};
  EXPECT_NE(::stat((lib + "/versions/1.1.0").c_str(), &st), 0) << "a rolled-back version is pruned";
}

TEST_F(UpdateE2E, ANewVersionThatIsNotEvenExecutableIsRolledBack) {
  start_box();
  std::string junk(4096, '\0');
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919) % 251);
  send_update(
      offer(dir.write("junk", junk + secbox::testing::version_mark() + std::string(65, '\0')),
            "1.1.0"),
      "u-junk");
  ASSERT_TRUE(reply_to("u-junk"));
  expect_back_on("1.0.0", "rollback");
}

TEST_F(UpdateE2E, ANewVersionThatNeverReachesWelcomeIsRolledBackAtItsDeadline) {
  start_box();
  // Runs (the real daemon) but talks to a gateway where nobody answers.
  const std::string w = script(
      "no-welcome",
      "#!/bin/sh\nd='" + dir.file("etc-nowhere") + "'\nrm -rf \"$d\" && cp -a '" + dir.file("etc") +
          "' \"$d\"\nsed -i "
          "'s#^DEVICE_GATEWAY_URL=.*#DEVICE_GATEWAY_URL=wss://127.0.0.1:9/ws/device#' "
          "\"$d/secbox.env\"\nSECBOX_ETC_DIR=\"$d\" exec '" +
          lib + "/versions/1.0.0/secbox' \"$@\"\n");
  const auto t0 = SteadyClock::now();
  send_update(offer(w, "1.1.0"), "u-nw");
  ASSERT_TRUE(reply_to("u-nw"));
  expect_back_on("1.0.0", "rollback");
  const double took = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  std::cout << "# rolled back " << took << " s after update.apply (deadline " << kDeadlineS
            << " s)\n";
  EXPECT_GE(took, kDeadlineS - 5);
}

TEST_F(UpdateE2E, ANewVersionThatCrashesDuringItsTrialIsRolledBack) {
  start_box();
  // The real daemon, killed by a segfault halfway through its trial.
  const std::string w = script("crashes", "#!/bin/sh\n(sleep " + std::to_string(kTrialS / 2) +
                                              "; kill -SEGV $$) &\nexec '" + lib +
                                              "/versions/1.0.0/secbox' \"$@\"\n");
  send_update(offer(w, "1.1.0"), "u-crash");
  ASSERT_TRUE(reply_to("u-crash"));
  expect_back_on("1.0.0", "rollback");
}

TEST_F(UpdateE2E, AnUpdateWhileAnotherRunsIsBusy) {
  start_box();
  sim->set_download_delay(2s);
  const auto first_offer = offer(stamped_binary("1.1.0"), "1.1.0");
  const auto second_offer = offer(small_release(), "1.1.9");
  send_update(first_offer, "u-first");
  std::this_thread::sleep_for(300ms);
  send_update(second_offer, "u-second");
  auto second = reply_to("u-second");
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["payload"].value("code", ""), "busy") << second->dump();
  sim->set_download_delay(0ms);
  auto first = reply_to("u-first");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->value("type", ""), "ack");
  expect_back_on("1.1.0", "done");
}

// The guard app follows the daemon in a phone's browser: Chromium with its
// own profile (the app's service worker and caches kept between loads, as on
// a phone; the box's certificate trusted as a phone trusts its CA, so the
// worker registers) shows 1.0.0's app, then 1.1.0's after the update, then 1.2.0's
// while 1.2.0 runs a trial that never reaches welcome, and 1.1.0's again
// after secbox-recover rolls it back. Each app is built by scripts/build-web
// with its version (its service worker names its cache by the content).
TEST_F(UpdateE2E, TheGuardAppInChromiumFollowsTheDaemonThroughAnUpdateAndARollback) {
  auto build_app = [&](const std::string& version) {
    const std::string out = dir.file("built-app-" + version);
    const std::string cmd = "SECBOX_APP_VERSION=" + version + " '" +
                            std::string(SECBOX_TEST_SOURCE_DIR) + "/scripts/build-web' '" + out +
                            "' >/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return out;
  };
  ASSERT_EQ(std::system(("rm -rf '" + lib + "/versions/1.0.0/web' && cp -r '" + build_app("1.0.0") +
                         "' '" + lib + "/versions/1.0.0/web'")
                            .c_str()),
            0);
  const std::string profile = dir.file("chromium-profile");
  auto app_in_chromium = [&](const std::string& want) {
    const std::string cmd = "node '" + std::string(SECBOX_TEST_SOURCE_DIR) +
                            "/tests/web/app_version.mjs' " + std::to_string(lan_port) + " '" +
                            profile + "' '" + dir.file("state/lan/cert.pem") + "' " + want +
                            " 2>&1";
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[4096];
      while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
      const int status = ::pclose(p);
      std::cout << "# Chromium, wanting " << want << ": " << out;
      return status == 0;
    }
    return false;
  };
  auto release_with_app = [&](const std::string& version, std::uint64_t counter) {
    release::ReleaseRequest q;
    q.daemon = stamped_binary(version);
    q.web_dir = build_app(version);
    q.version = version;
    q.counter = counter;
    q.key_file = sim->update_private_key_file();
    q.out_dir = dir.file("release-app-" + version);
    q.zstd_level = 1;
    auto r = release::make_release(q);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return sim->update_payload(q.out_dir);
  };

  start_box();
  EXPECT_TRUE(app_in_chromium("1.0.0"));

  send_update(release_with_app("1.1.0", 1), "u-app-1");
  auto h = hello_after(session, 120s);
  ASSERT_TRUE(h);
  ASSERT_EQ(version_of(*h), "1.1.0");
  session = h->session;
  EXPECT_TRUE(app_in_chromium("1.1.0"))
      << "the new app, though the old one was in the worker's cache";
  ASSERT_EQ(settled_results(60s).size(), 1u) << "1.1.0 committed";
  sim->clear_received();

  // 1.2.0 runs but the cloud never welcomes it: rolled back at its deadline.
  const auto offer_12 = release_with_app("1.2.0", 1);
  sim->set_auto_welcome(false);
  send_update(offer_12, "u-app-2");
  h = hello_after(session, 120s);
  ASSERT_TRUE(h);
  ASSERT_EQ(version_of(*h), "1.2.0");
  session = h->session;
  EXPECT_TRUE(app_in_chromium("1.2.0")) << "the trial's daemon serves its own app";
  wait_until([&] { return read_link(lib + "/current") == "versions/1.1.0"; },
             std::chrono::seconds(kDeadlineS + 30), 500ms);
  sim->set_auto_welcome(true);
  h = hello_after(session, 120s);
  ASSERT_TRUE(h);
  EXPECT_EQ(version_of(*h), "1.1.0");
  EXPECT_TRUE(app_in_chromium("1.1.0")) << "the old app came back with the old daemon";
  auto all = settled_results(60s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->second.value("phase", ""), "rollback");
}

}  // namespace
}  // namespace secbox
