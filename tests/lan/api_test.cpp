// The guard app's API over real HTTPS, reading a real PostgreSQL replica
// filled through the real sync path: login with PBKDF2 PINs and lockout,
// tokens, the ban list with ETags, the schedule, static files.
#include "lan/api.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <pqxx/pqxx>

#include "common/certificates.hpp"
#include "https_client.hpp"
#include "lan/pin.hpp"
#include "protocol/dispatcher.hpp"
#include "replica/queue.hpp"
#include "replica/reads.hpp"
#include "replica/sync.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"
#include "cloudsim/cloudsim.hpp"
#include "common/url.hpp"
#include "test_database.hpp"

namespace secbox::lan {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::HttpsAnswer;
using secbox::testing::HttpsClient;
using secbox::testing::run_until;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

class LanApiTest : public ::testing::Test {
 protected:
  TestDatabase db;
  TempDir dir;
  boost::asio::io_context io;
  BlockingPool workers{io, 2};
  replica::Database database{io, replica::DatabaseSettings{db.url(), {}}, [](int) {}};
  protocol::MessageIds ids;
  protocol::Dispatcher dispatcher{io, [](const std::string&) { return true; }, ids};
  replica::SyncDown sync{database, dispatcher};
  replica::ReplicaReader reader{database};
  replica::OutboundQueue queue{io, database, dispatcher};  // never welcomed: events stay queued
  std::unique_ptr<LanApi> api;
  LanApiSettings lan_settings;
  std::unique_ptr<httpd::Server> server;
  int applied = 0, sent = 0;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    database.start();
    ASSERT_TRUE(run_until(
        io, [&] { return database.ready(); }, 30s));
    sync.on_applied([this](const std::string&) { ++applied; });
    queue.start();
    snapshot("user", 10,
             json::array({{{"id", "g_1"},
                           {"communityId", "com_1"},
                           {"role", "guard"},
                           {"displayName", "Juan Pérez"},
                           {"pinHash", hash_pin("2468", 10000, "saltsaltsaltsalt")}},
                          {{"id", "g_2"},
                           {"communityId", "com_1"},
                           {"role", "guard"},
                           {"displayName", "Ana"},
                           {"pinHash", hash_pin("1357", 10000, "othersaltothersa")}}}));
    snapshot("banned_visitor", 42,
             json::array({{{"id", "b_1"},
                           {"communityId", "com_1"},
                           {"fullName", "José Núñez"},
                           {"plate", "ABC-123"},
                           {"reason", "Robo"},
                           {"createdAt", "2026-10-01T12:00:00Z"}},
                          {{"id", "b_2"},
                           {"communityId", "com_1"},
                           {"fullName", "Luis Soto"},
                           {"reason", "Agresión"},
                           {"createdAt", "2026-10-02T12:00:00Z"}}}));
    ASSERT_TRUE(run_until(
        io, [&] { return applied == 2; }, 20s));
    bool refreshed = false;
    reader.refresh([&] { refreshed = true; });
    ASSERT_TRUE(run_until(
        io, [&] { return refreshed; }, 10s));

    ::mkdir(dir.file("web").c_str(), 0755);
    dir.write("web/index.html", "<!doctype html><title>Caseta</title>");
    LanApiSettings s;
    s.web_dir = dir.file("web");
    ::mkdir(dir.file("hls").c_str(), 0700);
    ::mkdir(dir.file("hls/gate").c_str(), 0700);
    dir.write("hls/gate/index.m3u8", "#EXTM3U\n#EXTINF:1.0,\nseg-17.ts\n");
    dir.write("hls/gate/seg-17.ts", std::string(1000, 'G'));
    dir.write("secret.txt", "not for guards");
    s.hls_dir = dir.file("hls");
    s.streams = [] {
      return json::array(
          {{{"camera", "gate"}, {"ready", true}, {"hlsUrl", "/hls/gate/index.m3u8"}}});
    };
    s.sessions_file = dir.file("sessions.json");
    s.max_sessions = 10;  // small, so that a test can fill it
    lan_settings = s;
    start_api();
  }

  // The API and its server, as the daemon starts them (sessions read first).
  void start_api() {
    api = std::make_unique<LanApi>(workers, reader, queue, lan_settings, [] {
      return json{{"tunnel", "connected"}};
    });
    api->load_sessions();
    auto cert =
        make_self_signed({"caseta", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(24), false});
    ASSERT_TRUE(cert);
    httpd::Settings hs;
    hs.bind_address = "127.0.0.1";
    hs.port = 0;
    hs.max_per_address =
        64;  // the login tests' bursts come from one address: the PIN limit is under test
    hs.cert_pem = cert.value().cert_pem;
    hs.key_pem = cert.value().key_pem;
    server = std::make_unique<httpd::Server>(io, hs, api->handler());
    server->start();
  }

  void stop_api() {
    if (server) {
      bool stopped = false;
      server->stop([&] { stopped = true; });
      run_until(
          io, [&] { return stopped; }, 5s);
    }
    server.reset();
    api.reset();
  }

  void TearDown() override {
    stop_api();
    bool queue_stopped = false;
    queue.stop([&] { queue_stopped = true; });
    run_until(
        io, [&] { return queue_stopped; }, 10s);
    bool stopped = false;
    database.stop([&] { stopped = true; });
    run_until(
        io, [&] { return stopped; }, 10s);
  }

  // Rows of outbound_event: type and data, in queue order.
  std::vector<std::pair<std::string, json>> queued() {
    pqxx::connection c(db.url());
    pqxx::work w(c);
    std::vector<std::pair<std::string, json>> out;
    for (const auto& row : w.exec("SELECT type, data::text FROM outbound_event ORDER BY seq")) {
      out.emplace_back(row[0].as<std::string>(), json::parse(row[1].as<std::string>()));
    }
    return out;
  }

  void snapshot(const std::string& entity, std::int64_t version, json rows) {
    dispatcher.dispatch(json{{"v", 1},
                             {"type", "snapshot." + entity},
                             {"id", "c-" + std::to_string(++sent)},
                             {"ts", "2026-11-22T10:00:00Z"},
                             {"payload",
                              {{"snapshotId", "s_" + entity},
                               {"version", version},
                               {"chunk", 1},
                               {"chunks", 1},
                               {"rows", std::move(rows)}}}}
                            .dump());
  }

  template <class F>
  auto serve_while(F work) {
    return secbox::testing::serve_while(io, std::move(work));
  }

  static std::string login_body(const std::string& guard, const std::string& pin) {
    return json{{"guardId", guard}, {"pin", pin}}.dump();
  }
};

TEST_F(LanApiTest, LoginWithThePinFromTheReplicaThenReadTheLists) {
  const int port = server->port();
  auto a = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> v;
    v.push_back(c.call("GET", "/api/lan/ban-list"));  // no token
    v.push_back(c.call("POST", "/api/lan/login", login_body("g_1", "2468"),
                       {{"Content-Type", "application/json"}}));
    const std::string token = json::parse(v.back().body).value("token", "");
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};
    v.push_back(c.call("GET", "/api/lan/ban-list", "", auth));
    auto with_etag = auth;
    with_etag["If-None-Match"] = v.back().headers["etag"];
    v.push_back(c.call("GET", "/api/lan/ban-list", "", with_etag));
    v.push_back(c.call("GET", "/api/lan/schedule?date=2026-11-22", "", auth));
    v.push_back(c.call("GET", "/api/lan/schedule?date=22/11/2026", "", auth));
    v.push_back(c.call("GET", "/api/lan/status", "", auth));
    v.push_back(c.call("POST", "/api/lan/logout", "", auth));
    v.push_back(c.call("GET", "/api/lan/status", "", auth));
    v.push_back(c.call("GET", "/"));
    v.push_back(c.call("GET", "/%2e%2e/%2e%2e/etc/passwd"));
    v.push_back(c.call("GET", "/healthz"));
    return v;
  });
  EXPECT_EQ(a[0].status, 401);
  EXPECT_EQ(json::parse(a[0].body)["error"], "unauthorized");
  ASSERT_EQ(a[1].status, 200) << a[1].body;
  EXPECT_EQ(json::parse(a[1].body)["guard"]["displayName"], "Juan Pérez");
  ASSERT_EQ(a[2].status, 200) << a[2].body;
  auto bans = json::parse(a[2].body);
  EXPECT_EQ(bans["version"], 42);
  EXPECT_EQ(bans["bans"].size(), 2u);
  EXPECT_EQ(a[2].headers["etag"], "\"bans-42\"");
  EXPECT_EQ(a[3].status, 304);
  EXPECT_EQ(a[3].body, "");
  EXPECT_EQ(a[4].status, 200);
  EXPECT_EQ(json::parse(a[4].body)["date"], "2026-11-22");
  EXPECT_EQ(a[5].status, 400);
  EXPECT_EQ(json::parse(a[6].body)["tunnel"], "connected");
  EXPECT_EQ(a[7].status, 200);
  EXPECT_EQ(a[8].status, 401);  // the token died with the logout
  EXPECT_EQ(a[9].status, 200);
  EXPECT_EQ(a[9].headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(a[9].headers["cache-control"], "no-cache");
  EXPECT_EQ(a[10].status, 400);
  EXPECT_EQ(a[11].status, 200);
  EXPECT_EQ(api->sessions(), 0u);
}

// Ban photos come from the box's own origin: the list and a gate check name
// /api/lan/bans/photo?id=, never the cloud's URL; the photo goes to a
// logged-in guard with the type its bytes show; a ban whose URL points into
// the LAN is refused without a connection.
TEST_F(LanApiTest, BanPhotosAreServedByTheBoxNeverFromTheCloudsUrl) {
  cloudsim::CloudSim cloud{cloudsim::Options{dir.path(), 0, cloudsim::CertMode::trusted, 3600s}};
  cloud.start();
  dir.write("b1.png", secbox::testing::kTinyPng);
  const std::string url = cloud.publish("b1.png", dir.file("b1.png"));
  BanPhotoSettings ps;
  ps.dir = dir.file("photos");
  ps.ca_file = cloud.ca_file();
  ps.cloud_origins = [&cloud] { return std::vector<std::string>{url_origin(cloud.base_url())}; };
  BanPhotos photos(io, ps);
  stop_api();
  lan_settings.photos = &photos;
  start_api();
  snapshot("banned_visitor", 43,
           json::array({{{"id", "b_1"},
                         {"communityId", "com_1"},
                         {"fullName", "José Núñez"},
                         {"plate", "ABC-123"},
                         {"photoUrl", url},
                         {"reason", "Robo"},
                         {"createdAt", "2026-10-01T12:00:00Z"}},
                        {{"id", "b_2"},
                         {"communityId", "com_1"},
                         {"fullName", "Luis Soto"},
                         {"photoUrl", "https://192.168.1.1/admin/photo.jpg"},
                         {"reason", "Agresión"},
                         {"createdAt", "2026-10-02T12:00:00Z"}},
                        {{"id", "b_3"},
                         {"communityId", "com_1"},
                         {"fullName", "Sin Foto"},
                         {"reason", "Daños"},
                         {"createdAt", "2026-10-03T12:00:00Z"}}}));
  ASSERT_TRUE(run_until(
      io, [&] { return applied == 3; }, 20s));
  bool refreshed = false;
  reader.refresh([&] { refreshed = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return refreshed; }, 10s));
  api->replica_changed("banned_visitor");
  const int port = server->port();
  auto a = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> v;
    v.push_back(c.call("GET", "/api/lan/bans/photo?id=b_1"));  // no token
    v.push_back(c.call("POST", "/api/lan/login", login_body("g_1", "2468"),
                       {{"Content-Type", "application/json"}}));
    const std::map<std::string, std::string> auth{
        {"Authorization", "Bearer " + json::parse(v.back().body).value("token", "")}};
    v.push_back(c.call("GET", "/api/lan/ban-list", "", auth));
    v.push_back(c.call("GET", "/api/lan/bans/photo?id=b_1", "", auth));
    v.push_back(c.call("GET", "/api/lan/bans/photo?id=b_2", "", auth));
    v.push_back(c.call("GET", "/api/lan/bans/photo?id=b_3", "", auth));
    v.push_back(c.call("POST", "/api/lan/check", json{{"plate", "ABC123"}}.dump(), auth));
    return v;
  });
  EXPECT_EQ(a[0].status, 401);
  ASSERT_EQ(a[2].status, 200) << a[2].body;
  EXPECT_EQ(a[2].body.find("photoUrl"), std::string::npos) << a[2].body;
  EXPECT_EQ(a[2].body.find(url), std::string::npos) << "the cloud's URL reached the app";
  const auto bans = json::parse(a[2].body)["bans"];
  ASSERT_EQ(bans.size(), 3u);
  EXPECT_EQ(bans[0]["photo"], "/api/lan/bans/photo?id=b_1");
  EXPECT_TRUE(bans[2]["photo"].is_null());
  ASSERT_EQ(a[3].status, 200) << a[3].body;
  EXPECT_EQ(a[3].headers["content-type"], "image/png");
  EXPECT_EQ(a[3].body, secbox::testing::kTinyPng);
  EXPECT_EQ(a[4].status, 502) << a[4].body;
  EXPECT_EQ(json::parse(a[4].body)["error"], "photo_refused");
  EXPECT_NE(a[4].body.find("not a public address"), std::string::npos) << a[4].body;
  EXPECT_EQ(a[5].status, 404);
  ASSERT_EQ(a[6].status, 200) << a[6].body;
  EXPECT_EQ(json::parse(a[6].body)["bans"][0]["photo"], "/api/lan/bans/photo?id=b_1");
  EXPECT_EQ(a[6].body.find("photoUrl"), std::string::npos);
  EXPECT_EQ(cloud.file_requests(), 1)
      << "fetched once: ahead of time (the list changed) or on demand";
  stop_api();
}

// The sign-in screen's buttons: without a session, the guards who can sign
// in, by name, with their ids and names only.
TEST_F(LanApiTest, TheGuardsWhoCanSignInAreListedForTheSignInScreen) {
  snapshot(
      "user", 11,
      json::array(
          {{{"id", "g_1"},
            {"communityId", "com_1"},
            {"role", "guard"},
            {"displayName", "Juan Pérez"},
            {"pinHash", hash_pin("2468", 10000, "saltsaltsaltsalt")}},
           {{"id", "g_2"},
            {"communityId", "com_1"},
            {"role", "guard"},
            {"displayName", "Ana"},
            {"pinHash", hash_pin("1357", 10000, "othersaltothersa")}},
           {{"id", "g_3"}, {"communityId", "com_1"}, {"role", "guard"}, {"displayName", "Sin PIN"}},
           {{"id", "a_1"},
            {"communityId", "com_1"},
            {"role", "admin"},
            {"displayName", "Admin"},
            {"pinHash", hash_pin("9999", 10000, "adminsaltadminsa")}}}));
  ASSERT_TRUE(run_until(
      io, [&] { return applied == 3; }, 20s));
  bool refreshed = false;
  reader.refresh([&] { refreshed = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return refreshed; }, 10s));
  api->replica_changed("user");
  const int port = server->port();
  auto a = serve_while([port] { return HttpsClient(port).call("GET", "/api/lan/guards"); });
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(
      json::parse(a.body)["guards"],
      json::parse(R"([{"displayName":"Ana","id":"g_2"},{"displayName":"Juan Pérez","id":"g_1"}])"));
  EXPECT_EQ(a.body.find("pbkdf2"), std::string::npos);
}

// One route table drives the dispatch and the metrics' labels: every answer
// is counted under its route's path, an API path asked with another method
// is no route (401 without a session, like any unknown API path), a page's
// path with another method is 405, and whatever else is "other" or
// "static", so the label set stays bounded.
TEST_F(LanApiTest, OneRouteTableDispatchesAndLabelsEveryAnswer) {
  const int port = server->port();
  auto calls = serve_while([port] {
    std::vector<std::pair<std::string, int>> out;
    for (const auto& [method, path] :
         std::vector<std::pair<std::string, std::string>>{{"GET", "/healthz"},
                                                          {"POST", "/metrics"},
                                                          {"GET", "/api/lan/login"},
                                                          {"GET", "/api/lan/nope"},
                                                          {"GET", "/api/lan/ban-list"},
                                                          {"GET", "/no-such-page.html"}}) {
      out.emplace_back(method + " " + path, HttpsClient(port).call(method, path).status);
    }
    out.emplace_back("metrics", 0);
    auto m = HttpsClient(port).call("GET", "/metrics");
    out.back().second = m.status;
    out.emplace_back(m.body, 0);
    return out;
  });
  ASSERT_EQ(calls.size(), 8u);
  EXPECT_EQ(calls[0].second, 200);  // /healthz, any method
  EXPECT_EQ(calls[1].second, 405);  // POST /metrics
  EXPECT_EQ(calls[2].second, 401);  // GET /api/lan/login: no route, and no session
  EXPECT_EQ(calls[3].second, 401);
  EXPECT_EQ(calls[4].second, 401);
  EXPECT_EQ(calls[5].second, 404);
  EXPECT_EQ(calls[6].second, 200) << "GET /metrics from 127.0.0.1";
  const std::string& body = calls[7].first;
  for (const char* line :
       {R"(secbox_http_requests_total{route="/healthz",status="200"} 1)",
        R"(secbox_http_requests_total{route="/metrics",status="405"} 1)",
        R"(secbox_http_requests_total{route="/api/lan/login",status="401"} 1)",
        R"(secbox_http_requests_total{route="other",status="401"} 1)",
        R"(secbox_http_requests_total{route="/api/lan/ban-list",status="401"} 1)",
        R"(secbox_http_requests_total{route="static",status="404"} 1)"}) {
    EXPECT_NE(body.find(line), std::string::npos) << line << "\n" << body;
  }
}

// 40 wrong PINs at once for one guard: the attempts being checked count, so
// at most the limit (5) are checked and the rest are refused with 429. (The
// failure count used to be read before the lookup and PBKDF2 and written
// after them: all 40 were checked.)
TEST_F(LanApiTest, ConcurrentWrongPinsAreLimitedWhileTheyAreBeingChecked) {
  const int port = server->port();
  auto statuses = serve_while([port] {
    std::vector<std::future<int>> calls;
    for (int i = 0; i < 40; ++i) {
      calls.push_back(std::async(std::launch::async, [port, i] {
        return HttpsClient(port, {}, std::chrono::seconds(30))
            .call("POST", "/api/lan/login", login_body("g_1", std::to_string(1000 + i)),
                  {{"Content-Type", "application/json"}})
            .status;
      }));
    }
    std::map<int, int> by_status;
    for (auto& c : calls) by_status[c.get()]++;
    return by_status;
  });
  EXPECT_LE(statuses[401], 5) << "checked beyond the limit";
  EXPECT_EQ(statuses[401] + statuses[429], 40);
  EXPECT_GE(statuses[429], 35);
}

// Made-up guard ids cost memory no more: a refused attempt adds nothing,
// and an unknown guard is checked against a decoy hash, as long as a known
// one (ids cannot be told apart by the time an answer takes).
TEST_F(LanApiTest, UnknownGuardIdsCostAPinCheckAndNoMemory) {
  const int port = server->port();
  const auto checks_before = api->pin_checks();
  auto first = serve_while([port] {
    HttpsClient c(port);
    return c
        .call("POST", "/api/lan/login", login_body("g_never_seen", "1234"),
              {{"Content-Type", "application/json"}})
        .status;
  });
  EXPECT_EQ(first, 401);
  EXPECT_EQ(api->pin_checks(), checks_before + 1) << "an unknown guard skipped the PIN check";
  auto statuses = serve_while([port] {
    std::map<int, int> by_status;
    HttpsClient c(port);
    for (int i = 0; i < 2000; ++i) {
      by_status[c.call("POST", "/api/lan/login",
                       login_body("g_made_up_" + std::to_string(i), "1234"),
                       {{"Content-Type", "application/json"}})
                    .status]++;
    }
    return by_status;
  });
  EXPECT_EQ(statuses[429], 2000 - 4) << "the address is blocked after 5 failures";
  // The checked ones only: 5 in the guard table, 5 in the guard-on-address
  // table, 1 for the address, and one to spare.
  EXPECT_LE(api->login_failure_entries(), 12u) << "2,000 made-up ids left entries behind";
  EXPECT_EQ(api->pin_checks(), checks_before + 5);
}

// A restart (an update, a power cut) does not sign the guards out; a logout
// still ends the session for good. The file holds no token.
TEST_F(LanApiTest, SessionsOutliveARestartButNotALogout) {
  const std::map<std::string, std::string> as_json{{"Content-Type", "application/json"}};
  int port = server->port();
  auto tokens = serve_while([port, as_json] {
    std::vector<std::string> t;
    for (const auto& [guard, pin] : {std::pair{"g_1", "2468"}, std::pair{"g_2", "1357"}}) {
      auto a = HttpsClient(port).call("POST", "/api/lan/login", login_body(guard, pin), as_json);
      t.push_back(json::parse(a.body).value("token", ""));
    }
    return t;
  });
  ASSERT_EQ(tokens.size(), 2u);
  ASSERT_FALSE(tokens[0].empty());
  // The file is written off the loop: wait until it holds both.
  ASSERT_TRUE(run_until(
      io, [&] { return TempDir::read(dir.file("sessions.json")).find("g_2") != std::string::npos; },
      5s));
  const std::string saved = TempDir::read(dir.file("sessions.json"));
  EXPECT_EQ(saved.find(tokens[0]), std::string::npos) << "a token reached the file";
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("sessions.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  stop_api();
  start_api();
  port = server->port();
  auto after_restart = serve_while([port, tokens] {
    std::vector<int> v;
    HttpsClient c(port);
    v.push_back(
        c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer " + tokens[0]}}).status);
    v.push_back(
        c.call("POST", "/api/lan/logout", "", {{"Authorization", "Bearer " + tokens[1]}}).status);
    v.push_back(
        c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer not-a-token"}}).status);
    return v;
  });
  EXPECT_EQ(after_restart, (std::vector<int>{200, 200, 401}));
  ASSERT_TRUE(run_until(
      io, [&] { return TempDir::read(dir.file("sessions.json")).find("g_2") == std::string::npos; },
      5s));

  stop_api();
  start_api();
  port = server->port();
  auto last = serve_while([port, tokens] {
    HttpsClient c(port);
    return std::vector<int>{
        c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer " + tokens[0]}}).status,
        c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer " + tokens[1]}}).status};
  });
  EXPECT_EQ(last, (std::vector<int>{200, 401})) << "the logged-out session came back";
  EXPECT_EQ(api->sessions(), 1u);
}

// The community removes a guard, or gives one a new PIN: their sessions end
// at once (the phone may be lost, or the PIN known), the others go on.
TEST_F(LanApiTest, ARemovedGuardOrANewPinEndsTheirSessions) {
  const std::map<std::string, std::string> as_json{{"Content-Type", "application/json"}};
  auto login_all = [&](const std::vector<std::pair<std::string, std::string>>& who) {
    const int port = server->port();
    return serve_while([port, who, as_json] {
      std::vector<std::string> t;
      for (const auto& [guard, pin] : who) {
        auto a = HttpsClient(port).call("POST", "/api/lan/login", login_body(guard, pin), as_json);
        t.push_back(json::parse(a.body).value("token", ""));
      }
      return t;
    });
  };
  auto statuses = [&](const std::vector<std::string>& tokens) {
    const int port = server->port();
    return serve_while([port, tokens] {
      std::vector<int> v;
      HttpsClient c(port);
      for (const auto& t : tokens)
        v.push_back(
            c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer " + t}}).status);
      return v;
    });
  };
  auto tokens = login_all({{"g_1", "2468"}, {"g_2", "1357"}});
  ASSERT_EQ(statuses(tokens), (std::vector<int>{200, 200}));
  // Same guards, same PINs (another field changed): nobody is signed out.
  snapshot("user", 11,
           json::array({{{"id", "g_1"},
                         {"communityId", "com_1"},
                         {"role", "guard"},
                         {"displayName", "Juan P."},
                         {"pinHash", hash_pin("2468", 10000, "saltsaltsaltsalt")}},
                        {{"id", "g_2"},
                         {"communityId", "com_1"},
                         {"role", "guard"},
                         {"displayName", "Ana"},
                         {"pinHash", hash_pin("1357", 10000, "othersaltothersa")}}}));
  ASSERT_TRUE(run_until(
      io, [&] { return applied == 3; }, 20s));
  api->replica_changed("user");
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(statuses(tokens), (std::vector<int>{200, 200}));
  // g_1 gets a new PIN; g_2 is removed.
  snapshot("user", 12,
           json::array({{{"id", "g_1"},
                         {"communityId", "com_1"},
                         {"role", "guard"},
                         {"displayName", "Juan P."},
                         {"pinHash", hash_pin("8642", 10000, "saltsaltsaltsalt")}}}));
  ASSERT_TRUE(run_until(
      io, [&] { return applied == 4; }, 20s));
  api->replica_changed("user");
  ASSERT_TRUE(run_until(
      io, [&] { return api->sessions() == 0; }, 5s));
  EXPECT_EQ(statuses(tokens), (std::vector<int>{401, 401}));
  auto again = login_all({{"g_1", "8642"}});
  EXPECT_EQ(statuses(again), (std::vector<int>{200}));
}

TEST_F(LanApiTest, StreamsAndTheirHlsFilesGoToALoggedInGuardOnly) {
  const int port = server->port();
  auto a = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> v;
    v.push_back(c.call("GET", "/hls/gate/index.m3u8"));  // no token
    v.push_back(c.call("POST", "/api/lan/login", login_body("g_1", "2468"),
                       {{"Content-Type", "application/json"}}));
    const std::map<std::string, std::string> auth{
        {"Authorization", "Bearer " + json::parse(v.back().body).value("token", "")}};
    v.push_back(c.call("GET", "/api/lan/streams", "", auth));
    v.push_back(c.call("GET", "/hls/gate/index.m3u8", "", auth));
    v.push_back(c.call("GET", "/hls/gate/seg-17.ts", "", auth));
    for (const char* bad :
         {"/hls/gate/../../secret.txt", "/hls/gate/%2e%2e/x", "/hls/Gate/index.m3u8",
          "/hls/gate/seg-1.ts.bak", "/hls/gate/", "/hls/other/index.m3u8"}) {
      v.push_back(c.call("GET", bad, "", auth));
    }
    return v;
  });
  EXPECT_EQ(a[0].status, 401);
  ASSERT_EQ(a[2].status, 200);
  EXPECT_EQ(json::parse(a[2].body)["streams"][0]["hlsUrl"], "/hls/gate/index.m3u8");
  EXPECT_EQ(a[3].status, 200);
  EXPECT_EQ(a[3].headers["content-type"], "application/vnd.apple.mpegurl");
  EXPECT_EQ(a[3].headers["cache-control"], "no-cache, no-store");
  EXPECT_EQ(a[4].status, 200);
  EXPECT_EQ(a[4].headers["content-type"], "video/mp2t");
  EXPECT_EQ(a[4].body, std::string(1000, 'G'));
  for (std::size_t i = 5; i < a.size(); ++i) {
    EXPECT_EQ(a[i].status, 404) << i;
    EXPECT_EQ(a[i].body.find("not for guards"), std::string::npos);
  }
}

TEST_F(LanApiTest, FiveWrongPinsFromAnAddressAreLimitedWithRetryAfterAndBadBodiesAreNamed) {
  const int port = server->port();
  auto a = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> v;
    for (int i = 0; i < 5; ++i)
      v.push_back(c.call("POST", "/api/lan/login", login_body("g_2", "0000")));
    v.push_back(c.call("POST", "/api/lan/login",
                       login_body("g_2", "1357")));  // right, but from that address
    v.push_back(c.call("POST", "/api/lan/login", "{not json"));
    v.push_back(c.call("POST", "/api/lan/login", R"({"guardId":7,"pin":"1"})"));
    v.push_back(c.call("POST", "/api/lan/login", R"({"guardId":"g_1","pin":["2468"]})"));
    v.push_back(c.call("POST", "/api/lan/login", login_body("nobody", "1234")));
    return v;
  });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a[i].status, 401) << i;
  EXPECT_EQ(a[5].status, 429);
  EXPECT_GT(std::stoi(a[5].headers["retry-after"]), 0);
  EXPECT_EQ(json::parse(a[6].body)["error"], "bad_json");
  EXPECT_EQ(json::parse(a[7].body)["error"], "invalid_guard_id");
  EXPECT_EQ(json::parse(a[8].body)["error"], "invalid_pin");
  // The address has had its 5 failures too: everyone from it waits.
  EXPECT_EQ(a[9].status, 429);
}

// Someone in the parking lot guesses g_2's PIN from another address: five
// wrong PINs block that address (and that guard on it), never the guard: its
// own phone signs in from its address, slowed down while the guessing lasts.
// Guessing stays as slow as before from each address (5 checked per window).
TEST_F(LanApiTest, WrongPinsFromElsewhereSlowTheGuardButNeverLockItOut) {
  const int port = server->port();
  const auto checks_before = api->pin_checks();
  auto a = serve_while([port] {
    std::vector<HttpsAnswer> v;
    HttpsClient attacker(port, {}, std::chrono::seconds(30), "127.0.0.2");
    for (int i = 0; i < 7; ++i)
      v.push_back(
          attacker.call("POST", "/api/lan/login", login_body("g_2", std::to_string(1000 + i))));
    HttpsClient phone(port, {}, std::chrono::seconds(30), "127.0.0.3");
    v.push_back(phone.call("POST", "/api/lan/login", login_body("g_2", "1357")));
    // The attacker's address stays blocked, for every guard.
    v.push_back(attacker.call("POST", "/api/lan/login", login_body("g_1", "2468")));
    return v;
  });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a[i].status, 401) << i;
  EXPECT_EQ(a[5].status, 429) << "the guessing address is limited";
  EXPECT_EQ(a[6].status, 429);
  EXPECT_EQ(a[7].status, 200) << "the guard's own phone signs in: " << a[7].body;
  EXPECT_EQ(a[8].status, 429);
  EXPECT_EQ(api->pin_checks(), checks_before + 6)
      << "five guesses and the guard's own PIN were checked";
  EXPECT_EQ(api->slowed_logins(), 1u)
      << "the guard's sign-in waited while its PIN was being guessed";
}

// One guard's logins (a PIN shared, a script) never end another guard's
// session: a guard's new session replaces its own oldest beyond 8, and a full
// table (10 here) takes one from the guard holding the most.
TEST_F(LanApiTest, OneGuardsLoginsNeverEndAnotherGuardsSession) {
  const int port = server->port();
  auto a = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> v;
    v.push_back(c.call("POST", "/api/lan/login", login_body("g_2", "1357")));
    const std::string other = json::parse(v[0].body).value("token", "");
    std::vector<std::string> mine;
    for (int i = 0; i < 12; ++i) {
      mine.push_back(json::parse(c.call("POST", "/api/lan/login", login_body("g_1", "2468")).body)
                         .value("token", ""));
    }
    v.push_back(c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer " + other}}));
    v.push_back(
        c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer " + mine.front()}}));
    v.push_back(c.call("GET", "/api/lan/status", "", {{"Authorization", "Bearer " + mine.back()}}));
    return v;
  });
  EXPECT_EQ(a[1].status, 200) << "g_2's session survived g_1's twelve logins";
  EXPECT_EQ(a[2].status, 401) << "g_1's oldest session made room";
  EXPECT_EQ(a[3].status, 200);
  EXPECT_EQ(api->sessions(), 9u) << "8 of g_1's and g_2's";
}

TEST_F(LanApiTest, EntriesAndNotesAreQueuedOnceAsTheLoggedInGuardAndChecksFindBans) {
  const int port = server->port();
  auto a = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> v;
    const auto login = c.call("POST", "/api/lan/login", login_body("g_1", "2468"));
    const std::map<std::string, std::string> auth{
        {"Authorization", "Bearer " + json::parse(login.body).value("token", "")}};
    const std::string entry =
        R"({"clientId":"6f1c2a8e-4b1d-4c3e-9a7f-0d5e8b2c1a90","name":"María Gómez",)"
        R"("plate":"XYZ-987","decision":"allowed","guardId":"g_2","occurredAt":"2026-11-22T09:58:00Z"})";
    v.push_back(c.call("POST", "/api/lan/entries", entry, auth));
    v.push_back(c.call("POST", "/api/lan/entries", entry, auth));  // the app retrying
    v.push_back(c.call(
        "POST", "/api/lan/entries",
        R"({"clientId":"7f1c2a8e-4b1d-4c3e-9a7f-0d5e8b2c1a91","name":"X","decision":"maybe"})",
        auth));
    v.push_back(c.call("POST", "/api/lan/entries", R"({"name":"X","decision":"allowed"})", auth));
    v.push_back(c.call(
        "POST", "/api/lan/entries",
        R"({"clientId":"8f1c2a8e-4b1d-4c3e-9a7f-0d5e8b2c1a92","name":"X","decision":"denied","occurredAt":"yesterday"})",
        auth));
    v.push_back(c.call(
        "POST", "/api/lan/notes",
        R"({"clientId":"9f1c2a8e-4b1d-4c3e-9a7f-0d5e8b2c1a93","text":"Portón lento"})", auth));
    v.push_back(c.call("POST", "/api/lan/check", R"({"plate":"abc 123"})", auth));
    v.push_back(c.call("POST", "/api/lan/check", R"({"name":"jose  NUNEZ"})", auth));
    v.push_back(c.call("POST", "/api/lan/check", R"({"plate":"ZZZ-000"})", auth));
    v.push_back(c.call("POST", "/api/lan/check", R"({})", auth));
    v.push_back(c.call("POST", "/api/lan/entries", entry));  // no token
    return v;
  });
  EXPECT_EQ(a[0].status, 201) << a[0].body;
  EXPECT_EQ(json::parse(a[0].body)["duplicate"], false);
  EXPECT_EQ(a[1].status, 200);
  EXPECT_EQ(json::parse(a[1].body)["duplicate"], true);
  EXPECT_EQ(json::parse(a[1].body)["seq"], json::parse(a[0].body)["seq"]);
  EXPECT_EQ(a[2].status, 400);
  EXPECT_EQ(json::parse(a[2].body)["error"], "invalid_event");
  EXPECT_NE(json::parse(a[2].body)["hint"].get<std::string>().find("decision"), std::string::npos)
      << a[2].body;
  EXPECT_EQ(json::parse(a[3].body)["error"], "invalid_client_id");
  EXPECT_EQ(json::parse(a[4].body)["error"], "invalid_occurred_at");
  EXPECT_EQ(a[5].status, 201);
  EXPECT_EQ(json::parse(a[6].body)["banned"], true);
  EXPECT_EQ(json::parse(a[6].body)["bans"][0]["id"], "b_1");
  EXPECT_EQ(json::parse(a[6].body)["banHitRecorded"], true);
  EXPECT_EQ(json::parse(a[6].body)["alarm"], "raised");
  EXPECT_EQ(json::parse(a[7].body)["banned"], true);
  // The same ban checked again by name within 10 minutes: the same alarm.
  EXPECT_EQ(json::parse(a[7].body)["alarm"], "repeat");
  EXPECT_EQ(json::parse(a[7].body)["banHitRecorded"], false);
  EXPECT_EQ(json::parse(a[8].body)["banned"], false);
  EXPECT_EQ(a[9].status, 400);
  EXPECT_EQ(a[10].status, 401);

  const auto rows = queued();
  ASSERT_EQ(rows.size(), 3u);  // one entry, one note, one ban hit; nothing twice, nothing invalid
  EXPECT_EQ(rows[0].first, "visitor_entry");
  EXPECT_EQ(rows[0].second["guardId"], "g_1");  // the session's guard, not the body's
  EXPECT_EQ(rows[0].second["name"], "María Gómez");
  EXPECT_EQ(rows[1].first, "guard_note");
  EXPECT_EQ(rows[1].second["text"], "Portón lento");
  EXPECT_EQ(rows[2].first, "ban_hit");
  EXPECT_EQ(rows[2].second["bannedVisitorId"], "b_1");
}

// A one-letter name matches half the list: refused. A part of a name is a
// lookup shown to the guard, not an alarm; alarms per guard are bounded.
TEST_F(LanApiTest, OnlyAStrongMatchRaisesAnAlarmAndAGuardsAlarmsAreBounded) {
  const int port = server->port();
  std::vector<json> bans;
  for (int i = 0; i < 30; ++i) {
    bans.push_back({{"id", "b_" + std::to_string(i)},
                    {"communityId", "com_1"},
                    {"fullName", "Visitante Prohibido " + std::to_string(i)},
                    {"plate", "PLT-" + std::to_string(1000 + i)},
                    {"reason", "Robo"},
                    {"createdAt", "2026-10-01T12:00:00Z"}});
  }
  const int before = applied;
  snapshot("banned_visitor", 43, bans);
  ASSERT_TRUE(run_until(
      io, [&] { return applied == before + 1; }, 20s));
  bool refreshed = false;
  reader.refresh([&] { refreshed = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return refreshed; }, 10s));
  auto a = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> v;
    const auto login = c.call("POST", "/api/lan/login", login_body("g_1", "2468"));
    const std::map<std::string, std::string> auth{
        {"Authorization", "Bearer " + json::parse(login.body).value("token", "")}};
    v.push_back(c.call("POST", "/api/lan/check", R"({"name":"a"})", auth));
    v.push_back(c.call("POST", "/api/lan/check", R"({"name":" v i "})", auth));
    v.push_back(c.call("POST", "/api/lan/check", R"({"plate":"P"})", auth));
    v.push_back(c.call("POST", "/api/lan/check", R"({"name":"vis"})", auth));  // a part: a lookup
    v.push_back(
        c.call("POST", "/api/lan/check", R"({"name":"prohibido"})", auth));  // one word: a lookup
    for (int i = 0; i < 25; ++i) {
      v.push_back(c.call("POST", "/api/lan/check",
                         json{{"plate", "plt " + std::to_string(1000 + i)}}.dump(), auth));
    }
    return v;
  });
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a[i].status, 400) << i;
    EXPECT_EQ(json::parse(a[i].body)["error"], "check_too_short");
  }
  EXPECT_EQ(json::parse(a[3].body)["bans"].size(), 30u);
  EXPECT_EQ(json::parse(a[3].body)["alarm"], "weak_match");
  EXPECT_EQ(json::parse(a[4].body)["alarm"], "weak_match");
  int raised = 0, limited = 0;
  for (std::size_t i = 5; i < a.size(); ++i) {
    const auto body = json::parse(a[i].body);
    EXPECT_EQ(body["banned"], true);
    raised += body["alarm"] == "raised";
    limited += body["alarm"] == "limit";
  }
  EXPECT_EQ(raised, 20);
  EXPECT_EQ(limited, 5);
  const auto rows = queued();
  EXPECT_EQ(rows.size(), 20u);  // 20 ban hits an hour from one guard, no more
}

TEST_F(LanApiTest, WhileTheDatabaseIsDownAnEntryIsRefusedNeverFalselyAccepted) {
  const int port = server->port();
  const auto token = serve_while([port] {
    return json::parse(
               HttpsClient(port).call("POST", "/api/lan/login", login_body("g_1", "2468")).body)
        .value("token", "");
  });
  bool stopped = false;
  database.stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return stopped; }, 10s));
  auto a = serve_while([port, token] {
    return HttpsClient(port).call(
        "POST", "/api/lan/entries",
        R"({"clientId":"af1c2a8e-4b1d-4c3e-9a7f-0d5e8b2c1a94","name":"X","decision":"allowed"})",
        {{"Authorization", "Bearer " + token}});
  });
  EXPECT_EQ(a.status, 503) << a.body;
  EXPECT_NE(a.body.find("NOT saved"), std::string::npos);
}

TEST(GateCheck, PlatesAndNamesAreComparedTheWayGuardsTypeThem) {
  EXPECT_EQ(LanApi::normalize_plate(" abc-123 "), "ABC123");
  EXPECT_EQ(LanApi::normalize_plate("Abc 1-2.3"), "ABC123");
  EXPECT_EQ(LanApi::normalize_name("José  NÚÑEZ "), "jose nunez");
  EXPECT_EQ(LanApi::normalize_name("Ana María Çelik"), "ana maria celik");
}

}  // namespace
}  // namespace secbox::lan
