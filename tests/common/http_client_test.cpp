// The one curl client against the cloud simulator's real HTTPS: GET and
// POST answers with their status, the certificate checked, the answer's size
// capped, and the bearer token never in an error; and its streaming GET.
#include "common/http_client.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <optional>

#include "../media/fake_frigate.hpp"
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
  EXPECT_EQ(untrusted.error().code, Errc::network);
  EXPECT_EQ(untrusted.error().message.find(req.bearer), std::string::npos);

  req.ca_file = sim->ca_file();
  req.max_response = 10;
  auto large = post_json(req);
  ASSERT_FALSE(large);
  EXPECT_EQ(large.error().code, Errc::network);
  EXPECT_NE(large.error().message.find("larger than 10 bytes"), std::string::npos);
  EXPECT_EQ(large.error().message.find(req.bearer), std::string::npos);

  HttpRequest none;
  none.url = "http://127.0.0.1:1/";
  none.timeout = std::chrono::milliseconds(2000);
  auto refused = get(none);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::network);
}

}  // namespace
}  // namespace secbox

namespace secbox {
namespace {

// The streaming GET against the fake Frigate's MJPEG streams: the head, then
// the body piece by piece until a handler stops it; a stall ends it through
// the tick; no server is a network error; a refused answer is only a status.
TEST(HttpStream, PiecesArriveUntilAHandlerStopsAndAStallOrARefusalEndsIt) {
  secbox::testing::FakeFrigate frigate;
  StreamRequest req;
  req.url = frigate.url() + "/api/front?fps=20";
  long head_status = 0;
  std::string type, body;
  StreamHandlers h;
  h.on_head = [&](long status, const std::string& t) {
    head_status = status;
    type = t;
    return true;
  };
  h.on_data = [&](std::string_view piece) {
    body.append(piece);
    return body.size() < 20000;  // about ten frames, then stop
  };
  auto done = get_stream(req, h);
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done.value(), 200);
  EXPECT_EQ(head_status, 200);
  EXPECT_EQ(type, "multipart/x-mixed-replace; boundary=frame");
  EXPECT_GE(body.size(), 20000u);
  EXPECT_EQ(body.rfind("--frame\r\n", 0), 0u);

  // One frame, then silence: the tick ends it, without an error.
  req.url = frigate.url() + "/api/stall?fps=20";
  req.low_speed_time = std::chrono::seconds(10);
  std::optional<std::chrono::steady_clock::time_point> last_data;
  bool stall_seen = false;
  StreamHandlers stall;
  stall.on_data = [&](std::string_view) {
    last_data = std::chrono::steady_clock::now();
    return true;
  };
  stall.on_tick = [&] {
    stall_seen = last_data &&
                 std::chrono::steady_clock::now() - *last_data > std::chrono::milliseconds(1500);
    return !stall_seen;
  };
  auto stalled = get_stream(req, stall);
  ASSERT_TRUE(stalled) << stalled.error().message;
  EXPECT_EQ(stalled.value(), 200);
  EXPECT_TRUE(stall_seen) << "ended by the tick, before curl's own 10 s";

  req.url = frigate.url() + "/api/nosuchcamera?fps=1";
  StreamHandlers refuse;
  refuse.on_head = [](long status, const std::string&) { return status == 200; };
  auto refused = get_stream(req, refuse);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused.value(), 404);

  req.url = "http://127.0.0.1:9/api/front";  // the discard port: nothing listens
  req.connect_timeout = std::chrono::milliseconds(2000);
  auto none = get_stream(req, StreamHandlers{});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::network);
}

}  // namespace
}  // namespace secbox
