// update.apply and the daemon's part of the trial on a real loop with the
// real dispatcher, downloading over real HTTPS from the cloud simulator (its
// own CA, its own Ed25519 release key), with real releases (tools/release:
// a tar+zstd bundle, a signed manifest): the switch after `ack`; each refusal
// of cloud-protocol §7.6 before anything is staged, answered with its code and
// reported once with its phase; refusals reported at most once a minute; a
// cut download resumed; busy and forbidden; at start: an attempt a restart
// cut short, a switch that never happened, outcomes secbox-recover left, a
// rolled-back version refused until a higher counter; the trial's commit
// (counter, pruning, contract migrations after known-good), never past its
// deadline and never while secbox-recover holds the tree.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cloudsim/cloudsim.hpp"
#include "captured_session.hpp"
#include "recording_sink.hpp"
#include "common/base64.hpp"
#include "releases.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "update/built_in.hpp"
#include "update/manifest.hpp"
#include "update/state.hpp"
#include "update/update_service.hpp"
#include "update/versions.hpp"

namespace secbox::update {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::make_test_release;
using secbox::testing::ReleaseOptions;
using secbox::testing::run_until;
using secbox::testing::TempDir;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class UpdateServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir.file("sim").c_str(), 0700);
    sim = std::make_unique<cloudsim::CloudSim>(cloudsim::Options{dir.file("sim")});
    root = dir.file("lib");
    stage("1.0.0", 1);
    VersionStore store(root);
    ASSERT_TRUE(store.set_current("1.0.0"));
    ASSERT_TRUE(store.set_known_good("1.0.0"));
    dir.write("secbox.env", "DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://127.0.0.1\n");
    settings.root = root;
    settings.public_key_file = sim->update_public_key_file();
    settings.ca_file = sim->ca_file();
    settings.env_file = dir.file("secbox.env");
    settings.bundle_dir = dir.file("known-good");
    settings.running_version = "1.0.0";
    settings.paired = true;
    settings.retry_pause = 50ms;
    settings.refusal_report_interval = 0s;
    hooks.permission = [this]() -> Result<void> {
      if (!refusal) return ok();
      return Error{*refusal, "update: not allowed"};
    };
    hooks.finish_migrations = [this](std::function<void(Result<void>)> done) {
      ++migrations;
      known_good_at_migrations = VersionStore(root).known_good().value_or("");
      done(ok());
    };
    hooks.restart = [this](const std::string&) { ++restarts; };
  }

  void TearDown() override {
    if (service) {
      bool stopped = false;
      service->stop([&] { stopped = true; });
      EXPECT_TRUE(run_until(
          io, [&] { return stopped; }, 10s));
    }
  }

  release::Release make(const std::string& version, ReleaseOptions o = {}) {
    return make_test_release(dir, "rel-" + std::to_string(++releases), version,
                             sim->update_private_key_file(), o);
  }

  // A version staged as an update would have staged it.
  void stage(const std::string& version, std::uint64_t counter) {
    ReleaseOptions o;
    o.counter = counter;
    auto r = make(version, o);
    const int fd = ::open(r.bundle.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto staged = VersionStore(root).stage_bundle(version, fd, TempDir::read(r.manifest));
    ::close(fd);
    ASSERT_TRUE(staged) << staged.error().message;
  }

  json payload(const std::string& version, ReleaseOptions o = {}) {
    return sim->update_payload(make(version, o).dir);
  }

  // A payload for a manifest written here, signed with the simulator's key,
  // for `bundle_bytes` (published).
  json signed_payload(Manifest m, const std::string& bundle_bytes) {
    const std::string name = "hand-" + std::to_string(++releases);
    dir.write(name + ".tar.zst", bundle_bytes, 0644);
    m.size = m.size != 0 ? m.size : bundle_bytes.size();
    if (m.sha256.empty()) {
      auto sha = file_sha256(dir.file(name + ".tar.zst"));
      m.sha256 = sha.value();
    }
    const std::string bytes = manifest_json(m);
    auto sig = sign(bytes, TempDir::read(sim->update_private_key_file()));
    return {{"manifest", base64_encode(bytes)},
            {"signature", base64_encode(sig.value())},
            {"url", sim->publish(name, dir.file(name + ".tar.zst"))}};
  }

  Manifest manifest_for(const std::string& version, std::uint64_t counter = 1) {
    Manifest m;
    m.product = "secbox";
    m.target = this_target();
    m.version = version;
    m.counter = counter;
    m.issued_at = now_s() - 60;
    m.expires_at = now_s() + 3600;
    return m;
  }

  static std::string bundle_of(const std::vector<BundleEntry>& entries) {
    return pack_bundle(entries, 3).value();
  }

  static std::vector<BundleEntry> good_entries(const std::string& version) {
    return {{"secbox", secbox::testing::fake_daemon(version), BundleEntry::Kind::file, 0755},
            {"web", "", BundleEntry::Kind::folder, 0755},
            {"web/index.html", "<title>app</title>", BundleEntry::Kind::file, 0644}};
  }

  void start() {
    service = std::make_unique<UpdateService>(io, d, sink, settings, hooks);
    service->start();
    ASSERT_TRUE(run_until(
        io, [&] { return service->ready(); }, 10s));
  }

  std::vector<json> replies(const std::string& id) { return session.replies_to(id); }

  json apply(const json& p, std::chrono::milliseconds limit = 20s) {
    const std::string id = "u-" + std::to_string(++next_id);
    d.dispatch(json{
        {"v", 1},
        {"type", "update.apply"},
        {"id", id},
        {"ts", "2026-12-06T10:00:00Z"},
        {"payload",
         p}}.dump());
    run_until(
        io, [&] { return !replies(id).empty(); }, limit);
    auto r = replies(id);
    return r.empty() ? json() : r[0];
  }

  // Waits for the attempt's end: a switch (restart) or a queued failure.
  void settle(std::size_t results) {
    run_until(
        io, [&] { return restarts > 0 || queued.size() >= results; }, 20s);
    run_until(
        io, [&] { return false; }, 200ms);  // the state file's removal
  }

  static std::string code(const json& reply) { return reply["payload"].value("code", ""); }

  void expect_nothing_staged() {
    VersionStore store(root);
    EXPECT_EQ(store.current(), "1.0.0");
    EXPECT_EQ(store.versions(), std::vector<std::string>{"1.0.0"}) << "nothing was staged";
    EXPECT_EQ(TempDir::read(root + "/versions/2.0.0.staging/secbox"), "") << "no staging left";
    auto state = load_state(root);
    EXPECT_TRUE(state && !state.value()) << "the attempt is over";
  }

  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim;
  std::string root;
  boost::asio::io_context io;
  secbox::testing::CapturedSession session{io};
  protocol::Dispatcher& d = session.dispatcher;
  UpdateSettings settings;
  UpdateHooks hooks;
  std::optional<Errc> refusal;  // control.json's verdict on update.apply; none: allowed
  secbox::testing::RecordingSink sink;
  std::vector<replica::OutboundEvent>& queued = sink.given;  // every update_result queued
  int restarts = 0;
  int migrations = 0;
  std::string known_good_at_migrations;
  int next_id = 0;
  int releases = 0;
  std::unique_ptr<UpdateService> service;
};

TEST_F(UpdateServiceTest, AGoodUpdateIsAckedStagedWithItsAppSwitchedAndPutOnTrial) {
  start();
  ReleaseOptions o;
  o.pad = 300 * 1024;
  o.web_index = "<title>app 2</title>";
  auto reply = apply(payload("2.0.0", o));
  EXPECT_EQ(reply.value("type", ""), "ack") << reply.dump();
  ASSERT_TRUE(run_until(
      io, [&] { return restarts == 1; }, 10s));
  VersionStore store(root);
  EXPECT_EQ(store.current(), "2.0.0");
  EXPECT_EQ(store.known_good(), "1.0.0");
  EXPECT_EQ(built_in_version_of_file(store.binary("2.0.0")).value(), "2.0.0");
  EXPECT_EQ(TempDir::read(root + "/versions/2.0.0/web/index.html"), "<title>app 2</title>")
      << "the app came with it";
  EXPECT_TRUE(parse_manifest(store.manifest_of("2.0.0"))) << "the manifest is kept beside it";
  auto state = load_state(root);
  ASSERT_TRUE(state && state.value());
  EXPECT_EQ(state.value()->phase, "trial");
  EXPECT_EQ(state.value()->from, "1.0.0");
  EXPECT_EQ(state.value()->to, "2.0.0");
  EXPECT_EQ(state.value()->deadline - state.value()->switched_at, 300);
  EXPECT_TRUE(queued.empty()) << "the outcome is the trial's, reported by the next version";
  EXPECT_EQ(::rmdir((root + "/downloads").c_str()), 0) << "no download left behind";
}

TEST_F(UpdateServiceTest, EveryRefusalComesBeforeAnythingIsStagedAndIsReportedOnce) {
  ASSERT_TRUE(save_ledger(root, Ledger{5, {}}));
  start();
  struct Case {
    std::string name;
    std::function<json()> payload;
    std::string code, phase;
  };
  ::mkdir(dir.file("other").c_str(), 0700);
  cloudsim::CloudSim other(cloudsim::Options{dir.file("other")});  // a key the box never pinned
  const std::string good = bundle_of(good_entries("2.0.0"));
  auto with_entries = [&](std::vector<BundleEntry> extra) {
    auto entries = good_entries("2.0.0");
    for (auto& e : extra) entries.push_back(std::move(e));
    return signed_payload(manifest_for("2.0.0", 5), bundle_of(entries));
  };
  using K = BundleEntry::Kind;
  const std::vector<Case> cases = {
      {"a signature over other bytes",
       [&] {
         auto p = signed_payload(manifest_for("2.0.0", 5), good);
         p["signature"] = signed_payload(manifest_for("2.0.1", 5), good)["signature"];
         return p;
       },
       "forbidden", "manifest"},
      {"a signature by another key",
       [&] {
         ReleaseOptions o;
         o.counter = 5;
         return sim->update_payload(
             make_test_release(dir, "other-rel", "2.0.0", other.update_private_key_file(), o).dir);
       },
       "forbidden", "manifest"},
      {"another product",
       [&] {
         auto m = manifest_for("2.0.0", 5);
         m.product = "notsecbox";
         return signed_payload(m, good);
       },
       "forbidden", "manifest"},
      {"another target",
       [&] {
         ReleaseOptions o;
         o.counter = 5;
         o.target = "linux-riscv64";
         return payload("2.0.0", o);
       },
       "forbidden", "manifest"},
      {"an expired manifest",
       [&] {
         ReleaseOptions o;
         o.counter = 5;
         o.issued_at = now_s() - 7200;
         o.valid_s = 3600;
         return payload("2.0.0", o);
       },
       "forbidden", "manifest"},
      {"the running version",
       [&] {
         ReleaseOptions o;
         o.counter = 5;
         return payload("1.0.0", o);
       },
       "forbidden", "manifest"},
      {"an older release under a newer name (counter below the box's)",
       [&] {
         ReleaseOptions o;
         o.counter = 4;
         return payload("99.0.0", o);
       },
       "forbidden", "manifest"},
      {"a manifest over 4 KiB",
       [&] {
         auto p = signed_payload(manifest_for("2.0.0", 5), good);
         p["manifest"] = base64_encode(std::string(4097, ' '));
         return p;
       },
       "invalid_args", "manifest"},
      {"a bundle whose daemon is another version",
       [&] {
         ReleaseOptions o;
         o.counter = 5;
         o.built_in = "0.1.0";
         return payload("2.0.0", o);
       },
       "forbidden", "verify"},
      {"a bundle that is not the manifest's (SHA-256)",
       [&] {
         auto m = manifest_for("2.0.0", 5);
         m.sha256 = std::string(64, 'a');
         return signed_payload(m, good);
       },
       "forbidden", "verify"},
      {"a bundle larger than the manifest says",
       [&] {
         auto m = manifest_for("2.0.0", 5);
         m.size = good.size() - 10;
         return signed_payload(m, good);
       },
       "forbidden", "verify"},
      {"a tar with a link",
       [&] {
         return with_entries({{"web/passwd", "/etc/passwd", K::symlink, 0777}});
       },
       "forbidden", "verify"},
      {"a tar with a hard link",
       [&] {
         return with_entries({{"web/x", "secbox", K::hardlink, 0644}});
       },
       "forbidden", "verify"},
      {"a tar with ..",
       [&] {
         return with_entries({{"web/../../escaped", "x", K::file, 0644}});
       },
       "forbidden", "verify"},
      {"a tar with an absolute name",
       [&] {
         return with_entries({{"/tmp/escaped", "x", K::file, 0644}});
       },
       "forbidden", "verify"},
      {"a tar with a device node",
       [&] {
         return with_entries({{"web/null", "", K::device, 0666}});
       },
       "forbidden", "verify"},
      {"a tar with something besides secbox and web/",
       [&] {
         return with_entries({{"lib.so", "x", K::file, 0644}});
       },
       "forbidden", "verify"},
      {"a tar over the unpacked cap (256 MiB and a byte of zeros: a few KiB compressed)",
       [&] {
         return with_entries({{"web/zeros", std::string((256u << 20) + 1, '\0'), K::file, 0644}});
       },
       "forbidden", "verify"},
      {"a download that fails",
       [&] {
         auto p = signed_payload(manifest_for("2.0.0", 5), good);
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
    ASSERT_EQ(queued.size(), before + 1) << "reported once";
    EXPECT_EQ(queued.back().data["phase"], c.phase) << queued.back().data.dump();
    EXPECT_EQ(queued.back().data["ok"], false);
    EXPECT_EQ(queued.back().data["fromVersion"], "1.0.0");
    expect_nothing_staged();
  }
  EXPECT_EQ(restarts, 0);
  EXPECT_EQ(TempDir::read(dir.file("escaped")), "") << "nothing written outside staging";
  struct stat st {};
  EXPECT_NE(::lstat("/tmp/escaped", &st), 0);
}

TEST_F(UpdateServiceTest, MalformedFieldsAreRefusedBeforeAnythingIsDownloaded) {
  start();
  auto good = payload("2.0.0");
  auto with = [&](const char* field, json value) {
    auto p = good;
    p[field] = std::move(value);
    return p;
  };
  // Refused by the box's reading of the fields: answered and reported.
  const std::vector<json> cases = {with("manifest", "not base64!"), with("signature", ""),
                                   with("signature", base64_encode("short")),
                                   with("url", "http://127.0.0.1/x"),
                                   with("url", "file:///etc/passwd")};
  for (const auto& p : cases) {
    const auto before = queued.size();
    auto reply = apply(p);
    EXPECT_EQ(code(reply), "invalid_args") << p.dump();
    settle(before + 1);
    ASSERT_EQ(queued.size(), before + 1) << "one update_result for the refused attempt";
    EXPECT_EQ(queued.back().data["phase"], "manifest") << p.dump();
  }
  // Refused by the message's shape (protocol/shapes): answered by the dispatcher.
  for (const auto& p : {with("manifest", 12), json::object(), with("url", nullptr)}) {
    EXPECT_EQ(code(apply(p)), "invalid_args") << p.dump();
  }
  EXPECT_EQ(sim->file_requests(), 0);
  expect_nothing_staged();
}

TEST_F(UpdateServiceTest, RefusedOffersQueueAtMostOneResultAMinute) {
  settings.refusal_report_interval = 60s;
  start();
  ReleaseOptions o;
  o.target = "linux-riscv64";
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(code(apply(payload("2.0." + std::to_string(i), o))), "forbidden")
        << "each is still answered";
  }
  run_until(
      io, [&] { return false; }, 300ms);
  EXPECT_EQ(queued.size(), 1u) << "a looping cloud does not fill the queue";
}

TEST_F(UpdateServiceTest, ForbiddenUnlessControlJsonAllowsIt) {
  refusal = Errc::forbidden;
  start();
  EXPECT_EQ(code(apply(payload("2.0.0"))), "forbidden");
  refusal = Errc::unavailable;
  EXPECT_EQ(code(apply(payload("2.0.0"))), "unavailable");
  EXPECT_EQ(sim->file_requests(), 0);
}

TEST_F(UpdateServiceTest, ASecondUpdateWhileOneRunsIsBusy) {
  start();
  auto first = payload("2.0.0");
  d.dispatch(json{
      {"v", 1},
      {"type", "update.apply"},
      {"id", "first"},
      {"ts", "2026-12-06T10:00:00Z"},
      {"payload",
       first}}.dump());
  EXPECT_EQ(code(apply(payload("2.0.9"))), "busy");
  ASSERT_TRUE(run_until(
      io, [&] { return restarts == 1; }, 20s));
  EXPECT_EQ(replies("first").at(0).value("type", ""), "ack");
}

TEST_F(UpdateServiceTest, ACutDownloadIsResumedWhereItStopped) {
  start();
  ReleaseOptions o;
  o.web_index = std::string(20000, 'a');
  std::uint32_t x = 12345;  // bytes zstd cannot shrink, so the download has some size
  for (auto& c : o.web_index) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  auto r = make("2.0.0", o);
  const auto size = r.fields.size;
  ASSERT_GT(size, 4000u);
  sim->set_download_cut(std::max<std::uint64_t>(1, size / 4 + 1));
  auto p = sim->update_payload(r.dir);
  auto reply = apply(p);
  // Four pieces, three tries: not enough.
  EXPECT_EQ(reply.value("type", ""), "error") << "three tries are not enough for four pieces";
  settle(1);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].data["phase"], "download");
  EXPECT_EQ(::access((root + "/downloads/" + r.fields.sha256 + ".part").c_str(), F_OK), 0)
      << "what arrived is kept";
  // The cloud asks again: the download goes on from there.
  reply = apply(p);
  EXPECT_EQ(reply.value("type", ""), "ack") << reply.dump();
  EXPECT_EQ(sim->file_requests(), 4);
  ASSERT_TRUE(run_until(
      io, [&] { return restarts == 1; }, 10s));
  EXPECT_EQ(built_in_version_of_file(VersionStore(root).binary("2.0.0")).value(), "2.0.0");
}

TEST_F(UpdateServiceTest, AnAttemptARestartCutShortIsReportedOnceAtStart) {
  UpdateState s{"a1b2", "1.0.0", "2.0.0", "stage"};
  ASSERT_TRUE(save_state(root, s));
  start();
  ASSERT_TRUE(run_until(
      io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "stage");
  EXPECT_EQ(queued[0].data["ok"], false);
  EXPECT_EQ(queued[0].client_id, (UpdateOutcome{"a1b2", "", "", false, "", ""}).client_id());
  run_until(
      io, [&] { return false; }, 200ms);
  EXPECT_TRUE(load_state(root).value() == std::nullopt);
  EXPECT_EQ(VersionStore(root).current(), "1.0.0");
}

TEST_F(UpdateServiceTest, ASwitchThatNeverHappenedIsReportedAsTheSwitchsFailure) {
  UpdateState s{"a1b3", "1.0.0", "2.0.0", "trial"};
  s.switched_at = 1;
  s.deadline = 4000000000;
  ASSERT_TRUE(save_state(root, s));  // the power went between the state and the link
  start();
  ASSERT_TRUE(run_until(
      io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "switch");
  EXPECT_EQ(queued[0].data["ok"], false);
}

class TrialTest : public UpdateServiceTest {
 protected:
  void put_on_trial(std::int64_t deadline) {
    stage("0.9.0", 0);  // an old version below every counter: pruned at the commit
    stage("2.0.0", 7);
    VersionStore store(root);
    ASSERT_TRUE(store.set_current("2.0.0"));
    UpdateState s{"a1b4", "1.0.0", "2.0.0", "trial"};
    s.switched_at = now_s();
    s.deadline = deadline;
    s.trial_s = 1;
    s.starts = 1;
    ASSERT_TRUE(save_state(root, s));
    settings.running_version = "2.0.0";
    EXPECT_TRUE(on_trial(root, "2.0.0"));
  }
};

TEST_F(TrialTest, AVersionOnTrialCommitsAfterWelcomeAndItsTrialTimeThenRunsItsContractMigrations) {
  put_on_trial(now_s() + 300);
  start();
  run_until(
      io, [&] { return false; }, 1500ms);
  EXPECT_TRUE(queued.empty()) << "no welcome yet: still on trial";
  VersionStore store(root);
  EXPECT_EQ(store.known_good(), "1.0.0");
  EXPECT_EQ(code(apply(payload("3.0.0"))), "busy");
  session.welcome();
  ASSERT_TRUE(run_until(
      io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "done");
  EXPECT_EQ(queued[0].data["ok"], true);
  EXPECT_EQ(queued[0].data["toVersion"], "2.0.0");
  EXPECT_EQ(queued[0].client_id, (UpdateOutcome{"a1b4", "", "", false, "", ""}).client_id());
  EXPECT_EQ(store.known_good(), "2.0.0");
  EXPECT_EQ(migrations, 1) << "the contract migrations ran after the trial";
  EXPECT_EQ(known_good_at_migrations, "2.0.0") << "and only once known-good had moved";
  EXPECT_EQ(load_ledger(root).value().counter, 7u)
      << "the box's counter is the committed version's";
  EXPECT_EQ(TempDir::read(dir.file("known-good/secbox.env")),
            TempDir::read(dir.file("secbox.env")));
  run_until(
      io, [&] { return false; }, 200ms);
  EXPECT_FALSE(on_trial(root, "2.0.0"));
  EXPECT_EQ(store.versions(), (std::vector<std::string>{"2.0.0"}))
      << "versions below the counter will never run again: pruned";
  // The next update is taken (not busy): the trial is over; one below the
  // counter is not.
  ReleaseOptions low;
  low.counter = 6;
  EXPECT_EQ(code(apply(payload("3.0.0", low))), "forbidden");
  ReleaseOptions same;
  same.counter = 7;
  auto next = apply(payload("3.0.0", same));
  EXPECT_EQ(next.value("type", ""), "ack") << next.dump();
}

TEST_F(TrialTest, ATrialThatPassesAfterItsDeadlineIsNotCommitted) {
  put_on_trial(now_s() - 1);
  start();
  session.welcome();
  run_until(
      io, [&] { return false; }, 2500ms);
  EXPECT_EQ(VersionStore(root).known_good(), "1.0.0")
      << "the timer rolls it back; the commit does not race it";
  EXPECT_EQ(migrations, 0) << "no contract migration for a version that did not commit";
  EXPECT_TRUE(queued.empty());
  EXPECT_EQ(load_ledger(root).value().counter, 0u);
}

TEST_F(TrialTest, TheCommitWaitsWhileSecboxRecoverHoldsTheTree) {
  put_on_trial(now_s() + 300);
  const int lock = ::open((root + "/update.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(::flock(lock, LOCK_EX), 0);  // as `flock -w 10 9` in secbox-recover
  start();
  session.welcome();
  run_until(
      io, [&] { return false; }, 2500ms);
  EXPECT_EQ(VersionStore(root).known_good(), "1.0.0") << "no commit while the lock is held";
  ::close(lock);
  ASSERT_TRUE(run_until(
      io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "done");
  EXPECT_EQ(VersionStore(root).known_good(), "2.0.0");
}

TEST_F(UpdateServiceTest, ARolledBackVersionIsRefusedUntilAHigherCounter) {
  stage("2.0.0", 3);
  UpdateOutcome o{"a1b6", "1.0.0",    "2.0.0",
                  false,  "rollback", "version 2.0.0 stopped during its trial (start 2)"};
  ASSERT_TRUE(save_outcome(root, o));
  start();
  ASSERT_TRUE(run_until(
      io, [&] { return !queued.empty(); }, 10s));
  EXPECT_EQ(queued[0].data["phase"], "rollback");
  EXPECT_EQ(load_ledger(root).value().rolled_back.at("2.0.0"), 3u);
  EXPECT_EQ(VersionStore(root).versions(), std::vector<std::string>{"1.0.0"})
      << "it will not run again: pruned";
  ReleaseOptions same;
  same.counter = 3;
  auto again = apply(payload("2.0.0", same));
  EXPECT_EQ(code(again), "forbidden") << again.dump();
  EXPECT_NE(again["payload"].value("message", "").find("rolled back"), std::string::npos)
      << again.dump();
  ReleaseOptions higher;
  higher.counter = 4;
  EXPECT_EQ(apply(payload("2.0.0", higher)).value("type", ""), "ack");
}

TEST_F(UpdateServiceTest, OutcomesSecboxRecoverLeftAreQueuedOnceAndRemoved) {
  UpdateOutcome o{"a1b5", "1.0.0",    "2.0.0",
                  false,  "rollback", "version 2.0.0 stopped during its trial (start 2)"};
  ASSERT_TRUE(save_outcome(root, o));
  dir.write("lib/results/garbage", "PHASE=\nOK=maybe\n");
  start();
  ASSERT_TRUE(run_until(
      io, [&] { return queued.size() == 2; }, 10s));
  // In name order: the attempt's, then the unreadable one.
  EXPECT_EQ(queued[0].data["phase"], "rollback");
  EXPECT_EQ(queued[0].data["detail"], o.detail);
  EXPECT_EQ(queued[0].client_id, o.client_id());
  EXPECT_EQ(queued[1].data["phase"], "rollback-failed") << "an unreadable one is still reported";
  run_until(
      io, [&] { return false; }, 300ms);
  EXPECT_TRUE(load_outcomes(root).empty());
}

TEST_F(UpdateServiceTest, ABoxNotInstalledWithVersionsCannotUpdate) {
  settings.root = dir.file("nothing-here");
  start();
  EXPECT_EQ(code(apply(payload("2.0.0"))), "unavailable");
}

}  // namespace
}  // namespace secbox::update
