#include <gtest/gtest.h>

#include "common/certificates.hpp"
#include "common/process.hpp"
#include "temp_dir.hpp"

namespace secbox {
namespace {

// `openssl verify` is an independent judge of what we made.
std::string openssl(std::vector<std::string> args) {
  ProcessOptions o;
  o.argv = {"openssl"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  auto r = run_process(o);
  return r ? r.value().out + r.value().err + "exit=" + std::to_string(r.value().exit_code)
           : r.error().message;
}

TEST(Certificates, CaSignsALeafThatOpensslVerifies) {
  auto ca = make_self_signed({"SecBox test CA", {}, {}, std::chrono::hours(24), true});
  ASSERT_TRUE(ca) << ca.error().message;
  auto leaf =
      make_signed({"localhost", {"localhost"}, {"127.0.0.1", "::1"}, std::chrono::hours(24), false},
                  ca.value());
  ASSERT_TRUE(leaf) << leaf.error().message;
  testing::TempDir dir;
  auto ca_file = dir.write("ca.pem", ca.value().cert_pem);
  auto leaf_file = dir.write("leaf.pem", leaf.value().cert_pem);
  EXPECT_NE(openssl({"verify", "-CAfile", ca_file, "-verify_ip", "127.0.0.1", leaf_file})
                .find("leaf.pem: OK"),
            std::string::npos);
  EXPECT_NE(openssl({"verify", "-CAfile", ca_file, "-verify_hostname", "localhost", leaf_file})
                .find("OK"),
            std::string::npos);
  EXPECT_EQ(openssl({"verify", "-CAfile", ca_file, "-verify_hostname", "evil.example", leaf_file})
                .find(": OK"),
            std::string::npos);
  const auto text = openssl({"x509", "-in", leaf_file, "-noout", "-text"});
  EXPECT_NE(text.find("ASN1 OID: prime256v1"), std::string::npos);
  EXPECT_NE(text.find("IP Address:0:0:0:0:0:0:0:1"), std::string::npos);
}

TEST(Certificates, FingerprintMatchesOpenssl) {
  auto cert = make_self_signed({"box", {"secbox.local"}, {}, std::chrono::hours(24), false});
  ASSERT_TRUE(cert);
  auto fp = certificate_sha256(cert.value().cert_pem);
  ASSERT_TRUE(fp);
  EXPECT_EQ(fp.value().size(), 64u);
  testing::TempDir dir;
  auto out = openssl({"x509", "-in", dir.write("c.pem", cert.value().cert_pem), "-noout",
                      "-fingerprint", "-sha256"});
  std::string expected;
  for (char c : out.substr(out.find('=') + 1, 95)) {
    if (c != ':') expected.push_back(static_cast<char>(std::tolower(c)));
  }
  EXPECT_EQ(fp.value(), expected);
}

}  // namespace
}  // namespace secbox
