// The one curl client against the cloud simulator's real HTTPS: GET and
// POST answers with their status, the certificate checked, the answer's size
// capped, and the bearer token never in an error.
#include "common/http_client.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "cloudsim/cloudsim.hpp"
#include "temp_dir.hpp"

namespace secbox {
namespace {

using secbox::testing::TempDir;

class HttpClientTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim;
  void SetUp() override {
    ::mkdir(dir.file("sim").c_str(), 0700);
    sim = std::make_unique<cloudsim::CloudSim>(
        cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  }
};

TEST_F(HttpClientTest, GetAndPostAnswerWithTheirStatusOverVerifiedTls) {
  HttpRequest get_req;
  get_req.url = sim->base_url() + "/no/such/route";
  get_req.ca_file = sim->ca_file();
  auto got = get(get_req);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value().status, 404);
  EXPECT_NE(got.value().body.find("no such route"), std::string::npos);

  HttpRequest post;
  post.url = sim->base_url() + "/api/devices/refresh-jwt";
  post.ca_file = sim->ca_file();
  post.bearer = sim->issue_token("dev_1");
  post.json_body = "{}";
  auto posted = post_json(post);
  ASSERT_TRUE(posted) << posted.error().message;
  EXPECT_EQ(posted.value().status, 200) << posted.value().body;
  EXPECT_NE(posted.value().body.find("deviceJwt"), std::string::npos);
}

TEST_F(HttpClientTest, AnUntrustedCertificateALargeAnswerAndNoServerAreNetworkErrors) {
  HttpRequest req;
  req.url = sim->base_url() + "/api/devices/refresh-jwt";
  req.bearer = sim->issue_token("dev_1");
  req.json_body = "{}";
  auto untrusted = post_json(req);  // the simulator's CA is not given
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, "network");
  EXPECT_EQ(untrusted.error().message.find(req.bearer), std::string::npos);

  req.ca_file = sim->ca_file();
  req.max_response = 10;
  auto large = post_json(req);
  ASSERT_FALSE(large);
  EXPECT_EQ(large.error().code, "network");
  EXPECT_NE(large.error().message.find("larger than 10 bytes"), std::string::npos);
  EXPECT_EQ(large.error().message.find(req.bearer), std::string::npos);

  HttpRequest none;
  none.url = "http://127.0.0.1:1/";
  none.timeout = std::chrono::milliseconds(2000);
  auto refused = get(none);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "network");
}

}  // namespace
}  // namespace secbox
