// The pairing form over real HTTP on 127.0.0.1, claiming from the cloud
// simulator over real HTTPS.
#include "pairing/pairing_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/write.hpp>
#include <future>
#include <nlohmann/json.hpp>

#include "cloudsim/cloudsim.hpp"
#include "http_call.hpp"
#include "common/certificates.hpp"
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
    sim = std::make_unique<CloudSim>(cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted,
                                                       std::chrono::hours(24)});
    sim->add_bootstrap("dev_pair", kBootstrap);
  }

  void make(PairingSettings s = {}) {
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
    run_until(io, [] { return false; }, 300ms);
    auto c = lan::ensure_lan_certificate({dir.file("lan"), "caseta-test", {"192.0.2.7"}});
    ASSERT_TRUE(c);
    lan_sha = c.value().sha256;
  }

  void TearDown() override {
    if (server) {
      bool stopped = false;
      server->stop([&] { stopped = true; });
      run_until(io, [&] { return stopped; }, 5s);
    }
  }

  HttpAnswer call(const std::string& method, const std::string& target, const std::string& body = "",
                  const std::string& type = "") {
    auto f = std::async(std::launch::async, [=] { return http_call(server->port(), method, target, body, type); });
    run_until(io, [&] { return f.wait_for(0s) == std::future_status::ready; }, 30s);
    return f.get();
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

  HttpAnswer submit(const std::string& text) {
    return call("POST", "/pair", "qr=" + form_encode(text), "application/x-www-form-urlencoded");
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
  EXPECT_NE(a.body.find(lan::fingerprint_for_display(lan_sha)), std::string::npos);
  EXPECT_NE(a.body.find("name=\"qr\""), std::string::npos);
  EXPECT_NE(a.body.find("name=\"viewport\""), std::string::npos);
}

TEST_F(PairingTest, ABadQrIsShownBesideTheFieldAndNothingIsClaimedOrWritten) {
  make();
  auto a = submit(R"({"v":1,"cloudBaseUrl":"http://cloud.example.com","deviceId":"x","bootstrapToken":"bt_0123456789abcdef","gatewayUrl":"wss://gw/ws"})");
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
  sim->set_claim_status(0);
  // Nothing listens there.
  boost::asio::io_context probe;
  boost::asio::ip::tcp::acceptor closed(probe, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const int dead_port = closed.local_endpoint().port();
  closed.close();
  a = submit(qr("http://127.0.0.1:" + std::to_string(dead_port)));
  EXPECT_EQ(a.status, 502);
  EXPECT_NE(a.body.find("could not be reached"), std::string::npos);
  EXPECT_EQ(persisted, 0);
  EXPECT_FALSE(server->paired());
}

TEST_F(PairingTest, BodiesOver8KiBAreRefused) {
  make();
  auto a = call("POST", "/pair", "qr=" + std::string(9000, 'a'), "application/x-www-form-urlencoded");
  EXPECT_EQ(a.status, 413);
  EXPECT_EQ(persisted, 0);
}

TEST_F(PairingTest, ASecondSubmitWhileAClaimIsInFlightIsToldToWait) {
  make();
  sim->set_claim_delay(1500ms);
  const int port = server->port();
  const std::string body = "qr=" + form_encode(qr());
  auto first = std::async(std::launch::async,
                          [=] { return http_call(port, "POST", "/pair", body, "application/x-www-form-urlencoded"); });
  run_until(io, [&] { return !sim->last_claim().is_null(); }, 10s);  // the first is at the cloud
  auto second = std::async(std::launch::async,
                           [=] { return http_call(port, "POST", "/pair", body, "application/x-www-form-urlencoded"); });
  run_until(io, [&] { return first.wait_for(0s) == std::future_status::ready &&
                             second.wait_for(0s) == std::future_status::ready; }, 30s);
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
    const std::string both = "HEAD / HTTP/1.1\r\nHost: caseta\r\n\r\nGET / HTTP/1.1\r\nHost: caseta\r\nConnection: close\r\n\r\n";
    boost::asio::write(s, boost::asio::buffer(both));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (!ec && out.size() < (1u << 20)) out.append(buf, s.read_some(boost::asio::buffer(buf), ec));
    return out;
  });
  run_until(io, [&] { return f.wait_for(0s) == std::future_status::ready; }, 30s);
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

TEST(LanCertificate, MadeOnceKeptAndRemadeWhenTheAddressesChange) {
  TempDir dir;
  auto a = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a.value().made_now);
  EXPECT_EQ(a.value().sha256.size(), 64u);
  struct stat st{};
  ASSERT_EQ(::stat(dir.file("lan/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(b);
  EXPECT_FALSE(b.value().made_now);
  EXPECT_EQ(b.value().sha256, a.value().sha256);
  auto c = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1", "2001:db8::1"}});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c.value().made_now);
  EXPECT_NE(c.value().sha256, a.value().sha256);
  EXPECT_EQ(lan::fingerprint_for_display("0aff"), "0A:FF");
}

TEST(LanCertificate, RemadeUnder30DaysLeftOrWhenTheKeyIsNotItsOwn) {
  TempDir dir;
  auto a = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(a) << a.error().message;
  // 29 days left, the right names: renewed.
  auto near = make_self_signed({"caseta", {"caseta", "secbox.local", "localhost"}, {"192.0.2.1", "127.0.0.1", "::1"},
                                std::chrono::hours(24 * 29), false});
  ASSERT_TRUE(near);
  dir.write("lan/key.pem", near.value().key_pem);
  dir.write("lan/cert.pem", near.value().cert_pem);
  auto b = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(b);
  EXPECT_TRUE(b.value().made_now);
  // A crash between the key's write and the certificate's: a valid
  // certificate beside another key. Kept, the LAN server could not start.
  auto other = make_self_signed({"x", {"x"}, {}, std::chrono::hours(24), false});
  ASSERT_TRUE(other);
  dir.write("lan/key.pem", other.value().key_pem);
  auto c = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c.value().made_now);
  EXPECT_NE(c.value().sha256, b.value().sha256);
  auto d = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(d);
  EXPECT_FALSE(d.value().made_now) << "a sound pair must be kept";
}

}  // namespace
}  // namespace secbox::pairing
