// update.apply and the daemon's part of the trial on a real loop with the
// real dispatcher, downloading over real HTTPS from the cloud simulator (its
// own CA, its own Ed25519 release key): the switch after `ack`, each failure
// before it (nothing switched, one update_result with its phase), a cut
// download resumed, busy and forbidden, and at start: an attempt a restart
// cut short, a switch that never happened, a trial that passes, and the
// outcomes secbox-recover left.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cloudsim/cloudsim.hpp"
#include "captured_session.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "update/state.hpp"
#include "update/update_service.hpp"
#include "update/versions.hpp"

namespace secbox::update {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;

struct Queued {
  std::string client_id;
  json data;
};

class UpdateServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir.file("sim").c_str(), 0700);
    sim = std::make_unique<cloudsim::CloudSim>(cloudsim::Options{dir.file("sim")});
    root = dir.file("lib");
    VersionStore store(root);
    dir.write("old-secbox", "#!/bin/sh\necho old\n", 0755);
    ASSERT_TRUE(store.stage("1.0.0", dir.file("old-secbox")));
    ASSERT_TRUE(store.set_current("1.0.0"));
    ASSERT_TRUE(store.set_known_good("1.0.0"));
    dir.write("new-secbox", std::string(300 * 1024, 'x') + "#!/bin/sh\necho new\n", 0755);
    dir.write("secbox.env", "DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://127.0.0.1\n");
    settings.root = root;
    settings.public_key_file = sim->update_public_key_file();
    settings.ca_file = sim->ca_file();
    settings.env_file = dir.file("secbox.env");
    settings.bundle_dir = dir.file("known-good");
    settings.running_version = "1.0.0";
    settings.paired = true;
    settings.retry_pause = 50ms;
    hooks.permission = [this] { return std::make_pair(permission, std::string("update: not allowed")); };
    hooks.queue_result = [this](const std::string& id, json data, std::function<void(bool)> done) {
      queued.push_back({id, std::move(data)});
      done(true);
    };
    hooks.finish_migrations = [this](std::function<void(Result<void>)> done) {
      ++migrations;
      done(ok());
    };
    hooks.restart = [this](const std::string&) { ++restarts; };
  }

  void TearDown() override {
    if (service) {
      bool stopped = false;
      service->stop([&] { stopped = true; });
      EXPECT_TRUE(run_until(io, [&] { return stopped; }, 10s));
    }
  }

  void start() {
    service = std::make_unique<UpdateService>(io, settings, hooks);
    service->attach(d);
    service->start();
    ASSERT_TRUE(run_until(io, [&] { return service->ready(); }, 10s));
  }

  std::vector<json> replies(const std::string& id) { return session.replies_to(id); }

  json apply(const json& payload, std::chrono::milliseconds limit = 20s) {
    const std::string id = "u-" + std::to_string(++next_id);
    d.dispatch(json{{"v", 1}, {"type", "update.apply"}, {"id", id}, {"ts", "2026-12-06T10:00:00Z"}, {"payload", payload}}
                   .dump());
    run_until(io, [&] { return !replies(id).empty(); }, limit);
    auto r = replies(id);
    return r.empty() ? json() : r[0];
  }

  // Waits for the attempt's end: a switch (restart) or a queued failure.
  void settle(std::size_t results) {
    run_until(io, [&] { return restarts > 0 || queued.size() >= results; }, 20s);
    run_until(io, [&] { return false; }, 200ms);  // the state file's removal
  }

  static std::string code(const json& reply) { return reply["payload"].value("code", ""); }

  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim;
  std::string root;
  boost::asio::io_context io;
  secbox::testing::CapturedSession session{io};
  protocol::Dispatcher& d = session.dispatcher;
  UpdateSettings settings;
  UpdateHooks hooks;
  Permission permission = Permission::allowed;
  std::vector<Queued> queued;
  int restarts = 0;
  int migrations = 0;
  int next_id = 0;
  std::unique_ptr<UpdateService> service;
};

TEST_F(UpdateServiceTest, AGoodUpdateIsAckedStagedSwitchedAndPutOnTrial) {
  start();
  auto reply = apply(sim->update_payload(dir.file("new-secbox"), "2.0.0"));
  EXPECT_EQ(reply.value("type", ""), "ack") << reply.dump();
  ASSERT_TRUE(run_until(io, [&] { return restarts == 1; }, 10s));
  VersionStore store(root);
  EXPECT_EQ(store.current(), "2.0.0");
  EXPECT_EQ(store.known_good(), "1.0.0");
  EXPECT_EQ(TempDir::read(store.binary("2.0.0")), TempDir::read(dir.file("new-secbox")));
  auto state = load_state(root);
  ASSERT_TRUE(state && state.value());
  EXPECT_EQ(state.value()->phase, "trial");
  EXPECT_EQ(state.value()->from, "1.0.0");
  EXPECT_EQ(state.value()->to, "2.0.0");
  EXPECT_EQ(state.value()->deadline - state.value()->switched_at, 300);
  EXPECT_TRUE(queued.empty()) << "the outcome is the trial's, reported by the next version";
  EXPECT_EQ(::access((root + "/downloads/2.0.0.part").c_str(), F_OK), -1) << "no download left behind";
}

TEST_F(UpdateServiceTest, EveryFailureBeforeTheSwitchChangesNothingAndReportsItsPhase) {
  start();
  struct Case {
    std::string name;
    std::function<json()> payload;
    std::string code, phase;
  };
  // Another key: a second simulator's, which the box never pinned.
  ::mkdir(dir.file("other").c_str(), 0700);
  cloudsim::CloudSim other(cloudsim::Options{dir.file("other")});
  dir.write("corrupted", TempDir::read(dir.file("new-secbox")) + "!", 0644);
  const std::vector<Case> cases = {
      {"a wrong sha256",
       [&] {
         auto p = sim->update_payload(dir.file("new-secbox"), "2.0.1");
         p["sha256"] = std::string(64, 'a');
         return p;
       },
       "invalid_args", "verify"},
      {"a bad signature",
       [&] {
         auto p = sim->update_payload(dir.file("new-secbox"), "2.0.2");
         p["signature"] = sim->sign_file(dir.file("old-secbox"));
         return p;
       },
       "invalid_args", "verify"},
      {"a signature by another key",
       [&] {
         auto p = sim->update_payload(dir.file("new-secbox"), "2.0.3");
         p["signature"] = other.sign_file(dir.file("new-secbox"));
         return p;
       },
       "invalid_args", "verify"},
      {"a corrupted download",
       [&] {
         auto p = sim->update_payload(dir.file("new-secbox"), "2.0.4");
         p["url"] = sim->publish("corrupted", dir.file("corrupted"));
         return p;
       },
       "invalid_args", "verify"},
      {"a file larger than announced",
       [&] {
         auto p = sim->update_payload(dir.file("new-secbox"), "2.0.5");
         p["size"] = p["size"].get<std::uint64_t>() - 10;
         return p;
       },
       "invalid_args", "verify"},
      {"a download that fails",
       [&] {
         auto p = sim->update_payload(dir.file("new-secbox"), "2.0.6");
         p["url"] = sim->base_url() + "/files/nothing-here";
         return p;
       },
       "unavailable", "download"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto before = queued.size();
    auto reply = apply(c.payload());
    EXPECT_EQ(reply.value("type", ""), "error") << reply.dump();
    EXPECT_EQ(code(reply), c.code) << reply.dump();
    settle(before + 1);
    ASSERT_EQ(queued.size(), before + 1);
    EXPECT_EQ(queued.back().data["phase"], c.phase);
    EXPECT_EQ(queued.back().data["ok"], false);
    EXPECT_EQ(queued.back().data["fromVersion"], "1.0.0");
    EXPECT_EQ(VersionStore(root).current(), "1.0.0");
    auto state = load_state(root);
    EXPECT_TRUE(state && !state.value()) << "the attempt is over";
  }
  EXPECT_EQ(restarts, 0);
  EXPECT_EQ(VersionStore(root).versions(), std::vector<std::string>{"1.0.0"}) << "nothing was staged";
}

TEST_F(UpdateServiceTest, BadFieldsAreRefusedBeforeAnythingIsDownloaded) {
  start();
  auto good = sim->update_payload(dir.file("new-secbox"), "2.0.0");
  auto with = [&](const char* field, json value) {
    auto p = good;
    p[field] = std::move(value);
    return p;
  };
  const std::vector<std::pair<json, std::string>> cases = {
      {with("version", "../../etc"), "verify"},   {with("version", "1.0.0"), "verify"},
      {with("url", "http://127.0.0.1/x"), "download"}, {with("url", "file:///etc/passwd"), "download"},
      {with("sha256", "abc"), "verify"},          {with("size", 0), "verify"},
      {with("size", (256ull << 20) + 1), "verify"}, {with("signature", ""), "verify"}};
  for (const auto& [p, phase] : cases) {
    const auto before = queued.size();
    auto reply = apply(p);
    EXPECT_EQ(code(reply), "invalid_args") << p.dump();
    ASSERT_EQ(queued.size(), before + 1) << "one update_result for the refused attempt";
    EXPECT_EQ(queued.back().data["phase"], phase) << p.dump();
    EXPECT_NE(queued.back().data["toVersion"], "../../etc");
  }
  EXPECT_EQ(sim->file_requests(), 0);
  EXPECT_EQ(VersionStore(root).versions(), std::vector<std::string>{"1.0.0"});
}

TEST_F(UpdateServiceTest, ForbiddenUnlessControlJsonAllowsIt) {
  permission = Permission::forbidden;
  start();
  EXPECT_EQ(code(apply(sim->update_payload(dir.file("new-secbox"), "2.0.0"))), "forbidden");
  permission = Permission::unavailable;
  EXPECT_EQ(code(apply(sim->update_payload(dir.file("new-secbox"), "2.0.0"))), "unavailable");
  EXPECT_EQ(sim->file_requests(), 0);
}

TEST_F(UpdateServiceTest, ASecondUpdateWhileOneRunsIsBusy) {
  start();
  auto payload = sim->update_payload(dir.file("new-secbox"), "2.0.0");
  d.dispatch(json{{"v", 1}, {"type", "update.apply"}, {"id", "first"}, {"ts", "2026-12-06T10:00:00Z"},
                  {"payload", payload}}
                 .dump());
  EXPECT_EQ(code(apply(sim->update_payload(dir.file("new-secbox"), "2.0.9"))), "busy");
  ASSERT_TRUE(run_until(io, [&] { return restarts == 1; }, 20s));
  EXPECT_EQ(replies("first").at(0).value("type", ""), "ack");
}

TEST_F(UpdateServiceTest, ACutDownloadIsResumedWhereItStopped) {
  start();
  sim->set_download_cut(100 * 1024);
  auto reply = apply(sim->update_payload(dir.file("new-secbox"), "2.0.0"));
  // 300 KiB in three pieces of at most 100 KiB, each try resuming the last.
  EXPECT_EQ(reply.value("type", ""), "error") << "three tries are not enough for four pieces";
  settle(1);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].data["phase"], "download");
  EXPECT_EQ(::access((root + "/downloads/2.0.0.part").c_str(), F_OK), 0) << "what arrived is kept";
  // The cloud asks again: the download goes on from there.
  reply = apply(sim->update_payload(dir.file("new-secbox"), "2.0.0"));
  EXPECT_EQ(reply.value("type", ""), "ack") << reply.dump();
  EXPECT_EQ(sim->file_requests(), 4);
  ASSERT_TRUE(run_until(io, [&] { return restarts == 1; }, 10s));
  EXPECT_EQ(TempDir::read(VersionStore(root).binary("2.0.0")), TempDir::read(dir.file("new-secbox")));
}

TEST_F(UpdateServiceTest, AnAttemptARestartCutShortIsReportedOnceAtStart) {
  UpdateState s{"a1b2", "1.0.0", "2.0.0", "stage"};
  ASSERT_TRUE(save_state(root, s));
  start();
  ASSERT_TRUE(run_until(io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "stage");
  EXPECT_EQ(queued[0].data["ok"], false);
  EXPECT_EQ(queued[0].client_id, (UpdateOutcome{"a1b2", "", "", false, "", ""}).client_id());
  run_until(io, [&] { return false; }, 200ms);
  EXPECT_TRUE(load_state(root).value() == std::nullopt);
  EXPECT_EQ(VersionStore(root).current(), "1.0.0");
}

TEST_F(UpdateServiceTest, ASwitchThatNeverHappenedIsReportedAsTheSwitchsFailure) {
  UpdateState s{"a1b3", "1.0.0", "2.0.0", "trial"};
  s.switched_at = 1;
  s.deadline = 4000000000;
  ASSERT_TRUE(save_state(root, s));  // the power went between the state and the link
  start();
  ASSERT_TRUE(run_until(io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "switch");
  EXPECT_EQ(queued[0].data["ok"], false);
}

TEST_F(UpdateServiceTest, AVersionOnTrialBecomesKnownGoodAfterWelcomeAndItsTrialTime) {
  VersionStore store(root);
  ASSERT_TRUE(store.stage("2.0.0", dir.file("new-secbox")));
  ASSERT_TRUE(store.set_current("2.0.0"));
  UpdateState s{"a1b4", "1.0.0", "2.0.0", "trial"};
  s.switched_at = 1;
  s.deadline = 4000000000;
  s.trial_s = 1;
  s.starts = 1;
  ASSERT_TRUE(save_state(root, s));
  settings.running_version = "2.0.0";
  EXPECT_TRUE(on_trial(root, "2.0.0"));
  start();
  run_until(io, [&] { return false; }, 1500ms);
  EXPECT_TRUE(queued.empty()) << "no welcome yet: still on trial";
  EXPECT_EQ(store.known_good(), "1.0.0");
  EXPECT_EQ(code(apply(sim->update_payload(dir.file("new-secbox"), "3.0.0"))), "busy");
  service->on_welcomed();
  ASSERT_TRUE(run_until(io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "done");
  EXPECT_EQ(queued[0].data["ok"], true);
  EXPECT_EQ(queued[0].client_id, (UpdateOutcome{"a1b4", "", "", false, "", ""}).client_id());
  EXPECT_EQ(store.known_good(), "2.0.0");
  EXPECT_EQ(migrations, 1) << "the contract migrations ran after the trial";
  EXPECT_EQ(TempDir::read(dir.file("known-good/secbox.env")), TempDir::read(dir.file("secbox.env")));
  run_until(io, [&] { return false; }, 200ms);
  EXPECT_FALSE(on_trial(root, "2.0.0"));
  EXPECT_EQ(store.versions(), (std::vector<std::string>{"1.0.0", "2.0.0"}));
  // The next update is taken (not busy): the trial is over.
  auto next = apply(sim->update_payload(dir.file("old-secbox"), "3.0.0"));
  EXPECT_EQ(next.value("type", ""), "ack") << next.dump();
}

TEST_F(UpdateServiceTest, OutcomesSecboxRecoverLeftAreQueuedOnceAndRemoved) {
  UpdateOutcome o{"a1b5", "1.0.0", "2.0.0", false, "rollback", "version 2.0.0 stopped during its trial (start 2)"};
  ASSERT_TRUE(save_outcome(root, o));
  dir.write("lib/results/garbage", "PHASE=\nOK=maybe\n");
  start();
  ASSERT_TRUE(run_until(io, [&] { return queued.size() == 2; }, 10s));
  // In name order: the attempt's, then the unreadable one.
  EXPECT_EQ(queued[0].data["phase"], "rollback");
  EXPECT_EQ(queued[0].data["detail"], o.detail);
  EXPECT_EQ(queued[0].client_id, o.client_id());
  EXPECT_EQ(queued[1].data["phase"], "rollback-failed") << "an unreadable one is still reported";
  run_until(io, [&] { return false; }, 300ms);
  EXPECT_TRUE(load_outcomes(root).empty());
}

TEST_F(UpdateServiceTest, ABoxNotInstalledWithVersionsCannotUpdate) {
  settings.root = dir.file("nothing-here");
  start();
  EXPECT_EQ(code(apply(sim->update_payload(dir.file("new-secbox"), "2.0.0"))), "unavailable");
}

}  // namespace
}  // namespace secbox::update
