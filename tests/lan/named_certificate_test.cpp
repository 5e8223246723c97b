// The LAN certificate of cloud-protocol §7.7 with real X.509: a root and an
// intermediate CA made here sign the box's own request, and every check of
// lan_cert.install is shown failing on its own: another key, another name,
// an untrusted root, an expired or not yet valid certificate, no PEM.
#include "lan/named_certificate.hpp"

#include <gtest/gtest.h>

#include "common/certificates.hpp"
#include "temp_dir.hpp"

namespace secbox::lan {
namespace {

using namespace std::chrono_literals;
using secbox::testing::TempDir;
using Clock = std::chrono::system_clock;

class NamedCertificateTest : public ::testing::Test {
 protected:
  TempDir dir;
  KeyAndCert root, intermediate, other_root;
  KeyAndRequest request;
  const std::string name = "b7f3k2.box.example.com";

  void SetUp() override {
    root = make_self_signed({"Test Root", {}, {}, std::chrono::hours(24 * 3650), true, 1}).value();
    intermediate =
        make_signed({"Test Intermediate", {}, {}, std::chrono::hours(24 * 1825), true, 0}, root)
            .value();
    other_root =
        make_self_signed({"Other Root", {}, {}, std::chrono::hours(24 * 3650), true, 1}).value();
    dir.write("roots.pem", root.cert_pem);
    dir.write("other-roots.pem", other_root.cert_pem);
    request = make_request(name, lan_cert_names(name)).value();
  }

  std::string issue(const std::string& csr, SignOptions o = {}) {
    return sign_request(csr, intermediate, o).value() + intermediate.cert_pem;
  }
  std::string why(const Result<NamedCertificate>& r) { return r ? "accepted" : r.error().message; }
};

TEST_F(NamedCertificateTest, TheBoxsRequestSignedThroughAnIntermediateIsAccepted) {
  EXPECT_NE(request.csr_pem.find("BEGIN CERTIFICATE REQUEST"), std::string::npos);
  const auto chain = issue(request.csr_pem);
  auto r = check_chain(chain, request.key_pem, name, dir.file("roots.pem"), Clock::now());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().name, name);
  EXPECT_EQ(r.value().sha256.size(), 64u);
  EXPECT_EQ(r.value().not_after - r.value().not_before, std::chrono::hours(24 * 90));
  EXPECT_FALSE(r.value().renewal_due(Clock::now()));
  EXPECT_FALSE(r.value().renewal_due(Clock::now() + std::chrono::hours(24 * 58)));
  EXPECT_TRUE(r.value().renewal_due(Clock::now() + std::chrono::hours(24 * 61)));

  // Kept in one file, 0600, and read back with the same checks.
  ASSERT_TRUE(save_named(dir.file("named.pem"), r.value()));
  auto loaded = load_named(dir.file("named.pem"), dir.file("roots.pem"), Clock::now());
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded.value().name, name);
  EXPECT_EQ(loaded.value().sha256, r.value().sha256);
  EXPECT_FALSE(load_named(dir.file("named.pem"), dir.file("other-roots.pem"), Clock::now()));
}

TEST_F(NamedCertificateTest, EachCheckNamesWhatFailed) {
  const auto now = Clock::now();
  const auto good = issue(request.csr_pem);
  const auto roots = dir.file("roots.pem");
  EXPECT_EQ(
      why(check_chain("not a certificate", request.key_pem, name, roots, now)).rfind("chain: ", 0),
      0u);
  EXPECT_EQ(why(check_chain(std::string(70000, 'x'), request.key_pem, name, roots, now))
                .rfind("chain: ", 0),
            0u);
  // A chain for another key (someone else's request for the same names).
  const auto stranger = make_request(name, lan_cert_names(name)).value();
  EXPECT_EQ(why(check_chain(issue(stranger.csr_pem), request.key_pem, name, roots, now))
                .rfind("key: ", 0),
            0u);
  // Another name: the box asked for this one.
  EXPECT_EQ(why(check_chain(good, request.key_pem, "other.box.example.com", roots, now))
                .rfind("names: ", 0),
            0u);
  const auto only_wildcard = make_request(name, {"*." + name}).value();
  EXPECT_EQ(why(check_chain(issue(only_wildcard.csr_pem), only_wildcard.key_pem, name, roots, now))
                .rfind("names: ", 0),
            0u);
  // An untrusted root; the leaf alone, without its intermediate.
  EXPECT_EQ(why(check_chain(good, request.key_pem, name, dir.file("other-roots.pem"), now))
                .rfind("trust: ", 0),
            0u);
  const auto leaf_only = sign_request(request.csr_pem, intermediate).value();
  EXPECT_EQ(why(check_chain(leaf_only, request.key_pem, name, roots, now)).rfind("trust: ", 0), 0u);
  // Expired, and not yet valid.
  SignOptions old;
  old.backdate = std::chrono::hours(48);
  old.validity = std::chrono::hours(24);
  EXPECT_EQ(why(check_chain(issue(request.csr_pem, old), request.key_pem, name, roots, now)),
            "validity: the box's certificate has expired");
  EXPECT_EQ(why(check_chain(good, request.key_pem, name, roots, now - std::chrono::hours(48))),
            "validity: the box's certificate is not valid yet");
}

TEST(LanNames, NamesAndGuardAddresses) {
  EXPECT_TRUE(valid_lan_name("b7f3k2.box.example.com"));
  EXPECT_FALSE(valid_lan_name("localhost"));
  EXPECT_FALSE(valid_lan_name("B7.box.example.com"));
  EXPECT_FALSE(valid_lan_name("a..b"));
  EXPECT_FALSE(valid_lan_name("-a.b"));
  EXPECT_FALSE(valid_lan_name("*.box.example.com"));
  EXPECT_FALSE(valid_lan_name(std::string(200, 'a') + ".com"));
  EXPECT_EQ(guard_address("b7.box.example.com", "192.168.1.20", 8443),
            "https://192-168-1-20.b7.box.example.com:8443/");
  EXPECT_EQ(guard_address("b7.box.example.com", "10.0.0.5", 8443),
            "https://10-0-0-5.b7.box.example.com:8443/");
  EXPECT_EQ(guard_address("b7.box.example.com", "172.20.1.1", 8443),
            "https://172-20-1-1.b7.box.example.com:8443/");
  EXPECT_EQ(guard_address("b7.box.example.com", "100.64.3.4", 8443),
            "https://100-64-3-4.b7.box.example.com:8443/");
  EXPECT_EQ(guard_address("b7.box.example.com", "8.8.8.8", 8443), "");
  EXPECT_EQ(guard_address("b7.box.example.com", "172.32.0.1", 8443), "");
  EXPECT_EQ(guard_address("b7.box.example.com", "fd00::5", 8443), "");
  EXPECT_EQ(guard_address("", "192.168.1.20", 8443), "");
}

}  // namespace
}  // namespace secbox::lan
