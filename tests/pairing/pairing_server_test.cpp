// The pairing form over real HTTP on 127.0.0.1, claiming from the cloud
// simulator over real HTTPS.
#include "pairing/pairing_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/write.hpp>
#include <future>
#include <nlohmann/json.hpp>

#include "cloudsim/cloudsim.hpp"
#include "form_token.hpp"
#include "http_call.hpp"
#include "common/certificates.hpp"
#include "common/hex.hpp"
#include "lan/certificate.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"

namespace secbox::pairing {
namespace {

using namespace std::chrono_literals;
using cloudsim::CloudSim;
using secbox::testing::http_call;
using secbox::testing::HttpAnswer;
using secbox::testing::run_until;
using secbox::testing::TempDir;
using json = nlohmann::json;

const std::string kBootstrap = "bt_pairing_test_0123456789";

std::string form_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class PairingTest : public ::testing::Test {
 protected:
  TempDir dir;
  boost::asio::io_context io;
  BlockingPool workers{io, 2};
  std::unique_ptr<CloudSim> sim;
  std::unique_ptr<PairingServer> server;
  int persisted = 0, paired_calls = 0;
  QrCode saved_qr;
  ClaimOutcome saved_claim;
  std::string lan_sha;

  void SetUp() override {
    ::mkdir(dir.file("sim").c_str(), 0700);
    sim = std::make_unique<CloudSim>(
        cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
    sim->add_bootstrap("dev_pair", kBootstrap);
  }

  // The box is installed for the simulator's cloud unless a test says otherwise.
  void make(PairingSettings s = {}, bool pin_the_simulator = true) {
    if (pin_the_simulator && s.allowed_cloud.empty()) s.allowed_cloud = sim->base_url();
    s.bind_address = "127.0.0.1";
    s.port = 0;
    s.hostname = "caseta-test";
    s.version = "0.1.0-test";
    s.ca_file = sim->ca_file();
    PairingHooks h;
    h.lan_fingerprint = [this]() -> Result<std::string> {
      auto c = lan::ensure_lan_certificate({dir.file("lan"), "caseta-test", {"192.0.2.7"}});
      if (!c) return c.error();
      return c.value().sha256;
    };
    h.addresses = [] { return std::vector<std::string>{"192.0.2.7", "2001:db8::7"}; };
    h.persist = [this](const QrCode& qr, const ClaimOutcome& claim) -> Result<void> {
      ++persisted;
      saved_qr = qr;
      saved_claim = claim;
      return ok();
    };
    h.on_paired = [this] { ++paired_calls; };
    server = std::make_unique<PairingServer>(io, workers, std::move(s), std::move(h));
    server->start();
    ASSERT_GT(server->port(), 0);
    // The page's facts (certificate, addresses) are made off the loop.
    run_until(
        io, [] { return false; }, 300ms);
    auto c = lan::ensure_lan_certificate({dir.file("lan"), "caseta-test", {"192.0.2.7"}});
    ASSERT_TRUE(c);
    lan_sha = c.value().sha256;
  }

  void TearDown() override {
    if (server) {
      bool stopped = false;
      server->stop([&] { stopped = true; });
      run_until(
          io, [&] { return stopped; }, 5s);
    }
  }

  HttpAnswer call(const std::string& method, const std::string& target,
                  const std::string& body = "", const std::string& type = "",
                  const secbox::testing::HttpHeaders& headers = {}) {
    auto f = std::async(std::launch::async, [=] {
      return http_call(server->port(), method, target, body, type, headers);
    });
    run_until(
        io, [&] { return f.wait_for(0s) == std::future_status::ready; }, 30s);
    return f.get();
  }

  // The form's token, as a browser reads it from the page.
  std::string form_token() {
    auto page = call("GET", "/");
    const std::string marker = "name=\"form\" value=\"";
    auto at = page.body.find(marker);
    if (at == std::string::npos) return "";
    at += marker.size();
    return page.body.substr(at, page.body.find('"', at) - at);
  }

  std::string qr(const std::string& cloud = "", const std::string& token = kBootstrap) {
    return json{{"v", 1},
                {"cloudBaseUrl", cloud.empty() ? sim->base_url() : cloud},
                {"deviceId", "dev_pair"},
                {"bootstrapToken", token},
                {"gatewayUrl", sim->gateway_url()},
                {"communityId", "com_1"}}
        .dump();
  }

  // As the browser sends the form: its token, the page's Origin.
  HttpAnswer submit(const std::string& text, const secbox::testing::HttpHeaders& headers = {}) {
    const std::string origin = "http://127.0.0.1:" + std::to_string(server->port());
    auto h = headers;
    h.emplace("Origin", origin);
    return call("POST", "/pair", "form=" + form_encode(form_token()) + "&qr=" + form_encode(text),
                "application/x-www-form-urlencoded", h);
  }
};

TEST_F(PairingTest, TheFormSaysWhatTheBoxIsWithItsAddressesAndCertificateFingerprint) {
  make();
  auto a = call("GET", "/");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(a.headers["cache-control"], "no-store");
  EXPECT_NE(a.body.find("Pair this SecBox"), std::string::npos);
  EXPECT_NE(a.body.find("caseta-test"), std::string::npos);
  EXPECT_NE(a.body.find("192.0.2.7"), std::string::npos);
  EXPECT_NE(a.body.find("2001:db8::7"), std::string::npos);
  EXPECT_NE(a.body.find(secbox::fingerprint_for_display(lan_sha)), std::string::npos);
  EXPECT_NE(a.body.find("name=\"qr\""), std::string::npos);
  EXPECT_NE(a.body.find("name=\"viewport\""), std::string::npos);
}

TEST_F(PairingTest, ABadQrIsShownBesideTheFieldAndNothingIsClaimedOrWritten) {
  make();
  auto a = submit(
      R"({"v":1,"cloudBaseUrl":"http://cloud.example.com","deviceId":"x","bootstrapToken":"bt_0123456789abcdef","gatewayUrl":"wss://gw/ws"})");
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.body.find("data-field=\"cloudBaseUrl\""), std::string::npos);
  EXPECT_NE(a.body.find("data-field=\"deviceId\""), std::string::npos);
  EXPECT_NE(a.body.find("aria-invalid=\"true\""), std::string::npos);
  // What was pasted comes back, escaped, to be fixed.
  EXPECT_NE(a.body.find("&quot;deviceId&quot;:&quot;x&quot;"), std::string::npos);
  a = submit("<script>alert(1)</script>");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.body.find("<script>"), std::string::npos);
  EXPECT_TRUE(sim->last_claim().is_null());
  EXPECT_EQ(persisted, 0);
}

TEST_F(PairingTest, PairsThroughTheCloudThenAnswersGoneWithTheLanLink) {
  make();
  auto a = submit(qr());
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_NE(a.body.find("Paired"), std::string::npos);
  EXPECT_NE(a.body.find("https://192.0.2.7:8443/"), std::string::npos);
  EXPECT_EQ(persisted, 1);
  EXPECT_EQ(paired_calls, 1);
  EXPECT_EQ(saved_qr.device_id, "dev_pair");
  EXPECT_EQ(saved_claim.gateway_url, sim->gateway_url());
  EXPECT_EQ(std::count(saved_claim.device_jwt.begin(), saved_claim.device_jwt.end(), '.'), 2);
  const auto claim = sim->last_claim();
  EXPECT_EQ(claim["lanCertSha256"], lan_sha);
  EXPECT_EQ(claim["hostname"], "caseta-test");
  EXPECT_EQ(claim["version"], "0.1.0-test");
  EXPECT_TRUE(server->paired());

  a = call("GET", "/");
  EXPECT_EQ(a.status, 410);
  EXPECT_NE(a.body.find("https://192.0.2.7:8443/"), std::string::npos);
  a = submit(qr());
  EXPECT_EQ(a.status, 410);
  EXPECT_EQ(persisted, 1);

  server->reopen();  // needs-pairing (§3)
  a = call("GET", "/");
  EXPECT_EQ(a.status, 200);
  EXPECT_NE(a.body.find("must be paired again"), std::string::npos);
}

TEST_F(PairingTest, JsonInJsonOut) {
  make();
  auto a = call("POST", "/pair", R"({"v":1})", "application/json");
  EXPECT_EQ(a.status, 400);
  auto body = json::parse(a.body);
  EXPECT_EQ(body["error"], "invalid_qr");
  EXPECT_GE(body["fields"].size(), 4u);
  a = call("POST", "/pair", qr(), "application/json");
  ASSERT_EQ(a.status, 200) << a.body;
  body = json::parse(a.body);
  EXPECT_EQ(body["status"], "paired");
  EXPECT_EQ(body["deviceId"], "dev_pair");
}

TEST_F(PairingTest, WrongOrUsedTokensAndAnUnreachableCloudAreSaidPlainlyAndNothingIsWritten) {
  make();
  auto a = submit(qr("", "bt_not_the_right_one_000"));
  EXPECT_EQ(a.status, 403);
  EXPECT_NE(a.body.find("does not accept this bootstrap token"), std::string::npos);
  EXPECT_NE(a.body.find("id=\"banner\""), std::string::npos);
  sim->set_claim_status(409);
  a = submit(qr());
  EXPECT_EQ(a.status, 403);
  EXPECT_NE(a.body.find("already used"), std::string::npos);
  sim->set_claim_status(503);
  a = submit(qr());
  EXPECT_EQ(a.status, 502);
  EXPECT_NE(a.body.find("unavailable"), std::string::npos);
  sim->set_claim_status(400);
  a = submit(qr());
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.body.find("refused the claim: simulated"), std::string::npos);
  EXPECT_EQ(persisted, 0);
  EXPECT_FALSE(server->paired());
}

TEST_F(PairingTest, ACloudThatIsDownIsSaidPlainly) {
  // Installed for a cloud where nothing listens.
  boost::asio::io_context probe;
  boost::asio::ip::tcp::acceptor closed(probe, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string dead = "http://127.0.0.1:" + std::to_string(closed.local_endpoint().port());
  closed.close();
  PairingSettings s;
  s.allowed_cloud = dead;
  make(s);
  auto a = submit(qr(dead));
  EXPECT_EQ(a.status, 502);
  EXPECT_NE(a.body.find("could not be reached"), std::string::npos);
  EXPECT_EQ(persisted, 0);
  EXPECT_FALSE(server->paired());
}

// The hijack: a QR naming the attacker's cloud. Refused beside the field,
// and nothing reaches any cloud.
TEST_F(PairingTest, AQrForAnotherCloudIsRefusedAndNoClaimIsMade) {
  ::mkdir(dir.file("other").c_str(), 0700);
  CloudSim other(
      cloudsim::Options{dir.file("other"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  other.add_bootstrap("dev_pair", kBootstrap);
  make();
  auto foreign = json::parse(qr(other.base_url()));
  foreign["gatewayUrl"] = other.gateway_url();
  auto a = submit(foreign.dump());
  EXPECT_EQ(a.status, 400) << a.body;
  EXPECT_NE(a.body.find("data-field=\"cloudBaseUrl\""), std::string::npos);
  EXPECT_NE(a.body.find("installed for (" + sim->base_url() + ")"), std::string::npos);
  a = call("POST", "/pair", foreign.dump(), "application/json");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(json::parse(a.body)["error"], "foreign_cloud");
  EXPECT_TRUE(other.last_claim().is_null());
  EXPECT_TRUE(sim->last_claim().is_null());
  EXPECT_EQ(persisted, 0);
  // The page says which cloud the box pairs with.
  EXPECT_NE(call("GET", "/").body.find("id=\"cloud\">" + sim->base_url()), std::string::npos);
}

// Pinned to secbox.com.mx, the box took a gateway at attacker.com.mx: the
// site was "everything after the first dot" (com.mx). The public suffix
// list decides; the refusal comes before any claim or connection.
TEST_F(PairingTest, AGatewayOnlyUnderTheSamePublicSuffixIsAnotherSite) {
  PairingSettings s;
  s.allowed_cloud = "https://secbox.com.mx";
  make(s);
  auto foreign = json::parse(qr("https://secbox.com.mx"));
  foreign["gatewayUrl"] = "wss://attacker.com.mx/ws/device";
  auto a = call("POST", "/pair", foreign.dump(), "application/json");
  EXPECT_EQ(a.status, 400) << a.body;
  EXPECT_EQ(json::parse(a.body)["error"], "foreign_cloud");
  EXPECT_NE(a.body.find("gatewayUrl"), std::string::npos) << a.body;
  EXPECT_TRUE(sim->last_claim().is_null());
  EXPECT_EQ(persisted, 0);
  EXPECT_FALSE(server->paired());
}

TEST_F(PairingTest, ABoxInstalledWithoutACloudPairsWithNone) {
  make({}, false);
  auto page = call("GET", "/");
  EXPECT_NE(page.body.find("pairs with no cloud"), std::string::npos);
  auto a = submit(qr());
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.body.find("--cloud"), std::string::npos);
  EXPECT_TRUE(sim->last_claim().is_null());
}

// Needs-pairing (§3) on a box in service: the form is back, and still only
// for the same cloud.
TEST_F(PairingTest, ABoxThatNeedsPairingAgainRepairsOnlyWithTheSameCloud) {
  PairingSettings s;
  s.paired = true;
  make(s);
  server->reopen();
  ::mkdir(dir.file("other").c_str(), 0700);
  CloudSim other(
      cloudsim::Options{dir.file("other"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  other.add_bootstrap("dev_pair", kBootstrap);
  auto a = call("POST", "/pair", qr(other.base_url()), "application/json");
  EXPECT_EQ(a.status, 400);
  EXPECT_TRUE(other.last_claim().is_null());
  a = submit(qr());
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(persisted, 1);
}

// A web page a guard's phone opens posts to the box: refused, whatever it
// carries.
TEST_F(PairingTest, CrossSitePostsAreRefused) {
  make();
  const std::string body = "qr=" + form_encode(qr());
  for (const secbox::testing::HttpHeaders& h :
       std::vector<secbox::testing::HttpHeaders>{{{"Origin", "http://evil.example"}},
                                                 {{"Origin", "null"}},
                                                 {{"Origin", "http://127.0.0.1:1"}},
                                                 {{"Sec-Fetch-Site", "cross-site"}},
                                                 {{"Sec-Fetch-Site", "same-site"}}}) {
    auto a = call("POST", "/pair", "form=" + form_encode(form_token()) + "&" + body,
                  "application/x-www-form-urlencoded", h);
    EXPECT_EQ(a.status, 403) << h.begin()->second;
    EXPECT_EQ(json::parse(a.body)["error"], "cross_site");
    a = call("POST", "/pair", qr(), "application/json", h);
    EXPECT_EQ(a.status, 403) << h.begin()->second;
  }
  EXPECT_TRUE(sim->last_claim().is_null());
  EXPECT_EQ(persisted, 0);
}

// DNS rebinding: a page on evil.example whose name now points at the box
// could read the form (its token) and post it as same-origin. The Host says.
TEST_F(PairingTest, RequestsForAnotherHostNameAreRefused) {
  make();
  for (const char* host : {"evil.example", "evil.example:8080", "caseta-test.evil.example",
                           "127.0.0.1.evil.example", "[::1", "caseta-test:x"}) {
    auto a = call("GET", "/", "", "", {{"Host", host}});
    EXPECT_EQ(a.status, 421) << host;
    a = call("POST", "/pair", qr(), "application/json", {{"Host", host}});
    EXPECT_EQ(a.status, 421) << host;
  }
  for (const char* host :
       {"127.0.0.1", "192.0.2.7:8080", "[2001:db8::7]:8080", "[::1]", "localhost:8080",
        "caseta-test", "CASETA-TEST.local:8080", "caseta-test.lan", "caseta-test.home.arpa"}) {
    EXPECT_EQ(call("GET", "/", "", "", {{"Host", host}}).status, 200) << host;
  }
  EXPECT_TRUE(sim->last_claim().is_null());
}

TEST_F(PairingTest, AFormPostNeedsTheFormsOwnFreshToken) {
  make();
  const std::string origin = "http://127.0.0.1:" + std::to_string(server->port());
  FormTokens elsewhere;  // another box's (or a restarted one's) key
  const auto now = std::chrono::system_clock::now();
  for (const std::string& token : {std::string(), std::string("garbage"), std::string("1.00"),
                                   elsewhere.issue(), form_token() + "0"}) {
    auto a = call("POST", "/pair", "form=" + form_encode(token) + "&qr=" + form_encode(qr()),
                  "application/x-www-form-urlencoded", {{"Origin", origin}});
    EXPECT_EQ(a.status, 403) << token;
    EXPECT_NE(a.body.find("Press the button again"), std::string::npos);
    // The pasted text comes back, with a fresh token to send it.
    EXPECT_NE(a.body.find("dev_pair"), std::string::npos);
    EXPECT_NE(a.body.find("name=\"form\" value=\""), std::string::npos);
  }
  EXPECT_TRUE(sim->last_claim().is_null());
  // Tokens expire (two hours) and are bound to their issue time.
  FormTokens t;
  EXPECT_TRUE(t.valid(t.issue(now), now + std::chrono::minutes(119)));
  EXPECT_FALSE(t.valid(t.issue(now), now + std::chrono::minutes(121)));
  EXPECT_FALSE(t.valid(t.issue(now + std::chrono::hours(1)), now));
  auto token = t.issue(now);
  token[0] = token[0] == '1' ? '2' : '1';
  EXPECT_FALSE(t.valid(token, now));
  // The form's own token pairs.
  EXPECT_EQ(submit(qr()).status, 200);
}

// A cloud that never answers the claim must not keep the administrator
// out: the claim gives up at its time limit and the next one goes through.
TEST_F(PairingTest, ASlowClaimIsBoundedAndTheNextOneGoesThrough) {
  PairingSettings s;
  s.claim_timeout = 1000ms;
  make(s);
  sim->set_claim_delay(2500ms);
  const auto start = std::chrono::steady_clock::now();
  auto a = submit(qr());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(a.status, 502) << a.body;
  EXPECT_NE(a.body.find("could not be reached"), std::string::npos);
  EXPECT_LT(took, 2400ms);
  sim->set_claim_delay(0ms);
  // The simulator answers one request at a time: let it finish the slow one.
  // It did claim the box once the box had given up: the token is spent, and
  // the administrator makes a new QR code.
  run_until(
      io, [] { return false; }, 2000ms);
  sim->add_bootstrap("dev_pair", kBootstrap + "_2");
  a = submit(qr("", kBootstrap));
  EXPECT_EQ(a.status, 403) << a.body;
  a = submit(qr("", kBootstrap + "_2"));
  EXPECT_EQ(a.status, 200) << a.body;
}

TEST_F(PairingTest, BodiesOver8KiBAreRefused) {
  make();
  auto a =
      call("POST", "/pair", "qr=" + std::string(9000, 'a'), "application/x-www-form-urlencoded");
  EXPECT_EQ(a.status, 413);
  EXPECT_EQ(persisted, 0);
}

TEST_F(PairingTest, ASecondSubmitWhileAClaimIsInFlightIsToldToWait) {
  make();
  sim->set_claim_delay(1500ms);
  const int port = server->port();
  const std::string body = "form=" + form_encode(form_token()) + "&qr=" + form_encode(qr());
  auto first = std::async(std::launch::async, [=] {
    return http_call(port, "POST", "/pair", body, "application/x-www-form-urlencoded");
  });
  run_until(
      io, [&] { return !sim->last_claim().is_null(); }, 10s);  // the first is at the cloud
  auto second = std::async(std::launch::async, [=] {
    return http_call(port, "POST", "/pair", body, "application/x-www-form-urlencoded");
  });
  run_until(
      io,
      [&] {
        return first.wait_for(0s) == std::future_status::ready &&
               second.wait_for(0s) == std::future_status::ready;
      },
      30s);
  auto a = first.get(), b = second.get();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(b.status, 429);
  EXPECT_NE(b.body.find("already in progress"), std::string::npos);
  EXPECT_EQ(persisted, 1);
}

// HEAD / then GET / on one connection: the HEAD answer has no body, so the
// GET answer starts right after its headers.
TEST_F(PairingTest, HeadGetsHeadersOnlyOnAKeptAliveConnection) {
  make();
  const int port = server->port();
  auto f = std::async(std::launch::async, [port] {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    const std::string both =
        "HEAD / HTTP/1.1\r\nHost: caseta-test\r\n\r\nGET / HTTP/1.1\r\nHost: "
        "caseta-test\r\nConnection: close\r\n\r\n";
    boost::asio::write(s, boost::asio::buffer(both));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (!ec && out.size() < (1u << 20))
      out.append(buf, s.read_some(boost::asio::buffer(buf), ec));
    return out;
  });
  run_until(
      io, [&] { return f.wait_for(0s) == std::future_status::ready; }, 30s);
  const std::string raw = f.get();
  const auto first_end = raw.find("\r\n\r\n");
  ASSERT_NE(first_end, std::string::npos) << raw;
  EXPECT_EQ(raw.compare(first_end + 4, 9, "HTTP/1.1 "), 0) << "a body followed the HEAD answer";
  EXPECT_NE(raw.find("<form"), std::string::npos) << "the GET answer is whole";
}

TEST_F(PairingTest, OtherPathsAndMethods) {
  make();
  EXPECT_EQ(call("GET", "/../etc/passwd").status, 404);
  EXPECT_EQ(call("DELETE", "/").status, 405);
  EXPECT_EQ(call("GET", "/pair").status, 405);
  EXPECT_EQ(call("POST", "/pair", "x", "text/plain").status, 415);
}

}  // namespace
}  // namespace secbox::pairing
