// cloud-protocol §7.7 from the box's side, over the real dispatcher: a welcome
// with a name makes a request whose CSR a real CA (made here) signs; the
// installed chain is checked, kept and served without a restart, read back
// after one, and renewed when a third of its life is left; refused chains
// leave what was served; `unavailable` is asked again later, backing off.
#include "lan_name_keeper.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "captured_session.hpp"
#include "common/certificates.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"

namespace secbox::appliance {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::CapturedSession;
using secbox::testing::run_until;
using secbox::testing::TempDir;

class LanNameKeeperTest : public ::testing::Test {
 protected:
  TempDir state;
  boost::asio::io_context io;
  BlockingPool workers{io, 1};
  std::unique_ptr<CapturedSession> session;  // a restarted box has a new one
  KeyAndCert root, intermediate;
  std::vector<std::string>
      served;  // the sha256 of each certificate handed to the server ("" for none)
  std::unique_ptr<LanNameKeeper> keeper;
  const std::string name = "b7f3k2.box.example.com";
  int ids = 0;

  void SetUp() override {
    root = make_self_signed({"Test Root", {}, {}, std::chrono::hours(24 * 3650), true, 1}).value();
    intermediate =
        make_signed({"Test Intermediate", {}, {}, std::chrono::hours(24 * 1825), true, 0}, root)
            .value();
    state.write("roots.pem", root.cert_pem);
    start();
  }

  void start(std::chrono::seconds check_every = 3600s) {
    LanNameSettings s;
    s.state_dir = state.path();
    s.roots_file = state.file("roots.pem");
    s.check_every = check_every;
    s.first_retry = 1s;
    keeper.reset();
    session = std::make_unique<CapturedSession>(io);
    keeper = std::make_unique<LanNameKeeper>(io, workers, session->dispatcher, s,
                                             [this](const lan::NamedCertificate* c) {
                                               served.push_back(c ? c->sha256 : "");
                                               return true;
                                             });
    keeper->load_now();
  }

  // The next lan_cert.request the box sent (after `after` messages).
  std::optional<json> next_request(std::size_t after, std::chrono::milliseconds limit = 10s) {
    std::optional<json> found;
    run_until(
        io,
        [&] {
          for (std::size_t i = after; i < session->sent.size(); ++i) {
            if (session->sent[i].value("type", "") == "lan_cert.request") found = session->sent[i];
          }
          return found.has_value();
        },
        limit);
    return found;
  }

  void answer(const json& request, const std::string& type, json payload = json::object()) {
    session->dispatcher.dispatch(json{
        {"v", 1},
        {"type", type},
        {"id", "c-" + std::to_string(++ids)},
        {"re", request["id"]},
        {"ts", "2026-12-07T10:00:00Z"},
        {"payload", payload}}.dump());
  }

  // lan_cert.install; the box's reply to it.
  json install(const std::string& chain) {
    const std::string id = "c-" + std::to_string(++ids);
    session->dispatcher.dispatch(json{
        {"v", 1},
        {"type", "lan_cert.install"},
        {"id", id},
        {"ts", "2026-12-07T10:00:00Z"},
        {"payload",
         {{"chain", chain}}}}.dump());
    run_until(
        io, [&] { return !session->replies_to(id).empty(); }, 10s);
    auto r = session->replies_to(id);
    return r.empty() ? json() : r.front();
  }

  std::string issue(const json& request, SignOptions o = {}) {
    return sign_request(request["payload"]["csr"].get<std::string>(), intermediate, o).value() +
           intermediate.cert_pem;
  }
};

TEST_F(LanNameKeeperTest, AWelcomedNameIsRequestedInstalledServedAndKeptAcrossARestart) {
  session->welcome(json{{"serverTime", "2026-12-07T10:00:00Z"}, {"lan", {{"name", name}}}});
  auto request = next_request(0);
  ASSERT_TRUE(request);
  const auto csr = (*request)["payload"]["csr"].get<std::string>();
  EXPECT_NE(csr.find("BEGIN CERTIFICATE REQUEST"), std::string::npos);
  EXPECT_EQ(csr.find("PRIVATE KEY"), std::string::npos) << "the key never leaves the box";
  answer(*request, "ack");
  const auto chain = issue(*request);
  const auto reply = install(chain);
  ASSERT_EQ(reply.value("type", ""), "ack") << reply.dump();
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0], certificate_sha256(chain).value());
  ASSERT_TRUE(keeper->certificate());
  EXPECT_EQ(keeper->certificate()->name, name);
  struct stat st {};
  ASSERT_EQ(::stat(state.file("lan/named.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // A restart: served at once from what was kept, and no new request.
  keeper->stop();
  served.clear();
  start();
  const auto before = session->sent.size();
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0], certificate_sha256(chain).value());
  EXPECT_EQ(keeper->name(), name);
  session->welcome(json{{"serverTime", "2026-12-07T10:00:00Z"}, {"lan", {{"name", name}}}});
  EXPECT_FALSE(next_request(before, 1500ms))
      << "a certificate with most of its life left is not asked for again";
}

TEST_F(LanNameKeeperTest, RefusedChainsAnswerTheirCheckAndLeaveWhatWasServed) {
  session->welcome(json{{"serverTime", "2026-12-07T10:00:00Z"}, {"lan", {{"name", name}}}});
  auto request = next_request(0);
  ASSERT_TRUE(request);
  answer(*request, "ack");
  ASSERT_EQ(install(issue(*request)).value("type", ""), "ack");
  const auto good = served.back();

  auto refused = [&](const std::string& chain) {
    const auto r = install(chain);
    return r.value("type", "") == "error" ? r["payload"]["message"].get<std::string>() : r.dump();
  };
  const auto stranger = make_request(name, lan::lan_cert_names(name)).value();
  EXPECT_EQ(refused(sign_request(stranger.csr_pem, intermediate).value() + intermediate.cert_pem)
                .rfind("key: ", 0),
            0u);
  const auto other = make_self_signed({"Other", {}, {}, std::chrono::hours(48), true, 1}).value();
  EXPECT_EQ(refused(sign_request((*request)["payload"]["csr"].get<std::string>(), other).value())
                .rfind("trust: ", 0),
            0u);
  SignOptions old;
  old.backdate = 48h;
  old.validity = 24h;
  EXPECT_EQ(refused(issue(*request, old)).rfind("validity: ", 0), 0u);
  EXPECT_EQ(refused("garbage").rfind("chain: ", 0), 0u);
  for (const auto& m : session->sent) {
    if (m.value("type", "") == "error") {
      EXPECT_EQ(m["payload"]["code"], "invalid_args");
    }
  }
  EXPECT_EQ(served, std::vector<std::string>{good}) << "what was served stays";
  EXPECT_FALSE(keeper->last_problem().empty());
}

TEST_F(LanNameKeeperTest, UnavailableIsAskedAgainLaterAndANearlyExpiredCertificateIsRenewed) {
  keeper->stop();
  start(1s);
  session->welcome(json{{"serverTime", "2026-12-07T10:00:00Z"}, {"lan", {{"name", name}}}});
  auto first = next_request(0);
  ASSERT_TRUE(first);
  const auto t0 = std::chrono::steady_clock::now();
  answer(*first, "error", {{"code", "unavailable"}, {"message", "the ACME server is busy"}});
  auto second = next_request(session->sent.size());
  ASSERT_TRUE(second) << "asked again after the back-off";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  answer(*second, "ack");
  // A certificate with under a third of its life left: 90 s long, 70 s gone.
  SignOptions short_lived;
  short_lived.backdate = 70s;
  short_lived.validity = 90s;
  ASSERT_EQ(install(issue(*second, short_lived)).value("type", ""), "ack");
  const auto after_install = session->sent.size();
  auto renewal = next_request(after_install, 5s);
  ASSERT_TRUE(renewal) << "no renewal of a certificate near its end";
  answer(*renewal, "ack");
  ASSERT_EQ(install(issue(*renewal)).value("type", ""), "ack");
  ASSERT_EQ(served.size(), 2u);
  EXPECT_NE(served[0], served[1]);
  EXPECT_FALSE(keeper->certificate()->renewal_due(std::chrono::system_clock::now()));
}

TEST_F(LanNameKeeperTest, WithoutANameNothingIsRequestedAndABadNameIsIgnored) {
  session->welcome(json{{"serverTime", "2026-12-07T10:00:00Z"}});
  session->welcome(json{{"serverTime", "2026-12-07T10:00:00Z"}, {"lan", {{"name", "Not A Name"}}}});
  EXPECT_FALSE(next_request(0, 1500ms));
  EXPECT_EQ(keeper->name(), "");
}

}  // namespace
}  // namespace secbox::appliance
