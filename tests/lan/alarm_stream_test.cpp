// The guard app's camera alarms over real HTTPS: the stream (server-sent
// events) sends the state at once and each alarm as it is raised, answers
// queue a visitor_entry, the snapshot is served to a signed-in guard only, and
// the stream's limits hold (a session's third stream closes its first; logout
// and a session's end close them). A real replica and queue; Frigate faked
// over HTTP for the snapshot.
#include <gtest/gtest.h>

#include <future>
#include <pqxx/pqxx>

#include "../media/fake_frigate.hpp"
#include "alarms/camera_alarms.hpp"
#include "common/certificates.hpp"
#include "common/ids.hpp"
#include "https_client.hpp"
#include "lan/api.hpp"
#include "lan/pin.hpp"
#include "media/live_feed.hpp"
#include "protocol/dispatcher.hpp"
#include "replica/queue.hpp"
#include "replica/reads.hpp"
#include "replica/sync.hpp"
#include "run_loop.hpp"
#include "sync_messages.hpp"
#include "test_database.hpp"

namespace secbox::lan {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::FakeFrigate;
using secbox::testing::HttpsClient;
using secbox::testing::run_until;
using secbox::testing::TestDatabase;

// Cameras' live feeds behind the LAN API's seam, as the appliance wires them.
struct Feeds final : LiveVideoSource {
  std::map<std::string, media::LiveFeed> feeds;
  std::string type(const std::string& camera) override {
    auto it = feeds.find(camera);
    return it != feeds.end() ? it->second.mime_type() : "";
  }
  std::uint64_t watch(const std::string& camera, Viewer v) override {
    auto it = feeds.find(camera);
    return it == feeds.end()
               ? 0
               : it->second.add({std::move(v.write), std::move(v.waiting), std::move(v.end)});
  }
  void unwatch(const std::string& camera, std::uint64_t id) override {
    if (auto it = feeds.find(camera); it != feeds.end()) it->second.remove(id);
  }
  void piece(const std::string& camera, media::Fmp4Piece::Kind kind, std::string bytes,
             bool key = false) {
    media::Fmp4Piece p;
    p.kind = kind;
    p.bytes = std::move(bytes);
    p.key = key;
    p.codec = "avc1.42c00c";
    feeds[camera].piece(std::move(p));
  }
};

class AlarmStreamTest : public ::testing::Test {
 protected:
  Feeds live;
  TestDatabase db;
  FakeFrigate frigate;
  boost::asio::io_context io;
  BlockingPool workers{io, 2};
  replica::Database database{io, replica::DatabaseSettings{db.url(), {}}, [](int) {}};
  protocol::MessageIds ids;
  protocol::Dispatcher dispatcher{io, [](const std::string&) { return true; }, ids};
  replica::SyncDown sync{database, dispatcher};
  replica::ReplicaReader reader{database};
  replica::OutboundQueue queue{io, database, dispatcher};  // never welcomed: events stay queued
  std::unique_ptr<alarms::CameraAlarms> alarms;
  std::unique_ptr<LanApi> api;
  std::unique_ptr<httpd::Server> server;
  int applied = 0, sent = 0;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    database.start();
    ASSERT_TRUE(run_until(
        io, [&] { return database.ready(); }, 30s));
    sync.on_applied([this](const std::string&) { ++applied; });
    queue.start();
    snapshot("user", json::array({{{"id", "g_1"},
                                   {"communityId", "com_1"},
                                   {"role", "guard"},
                                   {"displayName", "Juan Pérez"},
                                   {"pinHash", hash_pin("2468", 10000, "saltsaltsaltsalt")}},
                                  {{"id", "g_2"},
                                   {"communityId", "com_1"},
                                   {"role", "guard"},
                                   {"displayName", "Ana Ruiz"},
                                   {"pinHash", hash_pin("1357", 10000, "saltsaltsaltsalt")}}}));
    snapshot("banned_visitor", json::array({{{"id", "b_1"},
                                             {"communityId", "com_1"},
                                             {"fullName", "José Núñez"},
                                             {"plate", "ABC-123"},
                                             {"reason", "Robo"},
                                             {"createdAt", "2026-10-01T12:00:00Z"}}}));
    ASSERT_TRUE(run_until(
        io, [&] { return applied == 2; }, 20s));
    alarms::AlarmSettings as;
    as.frigate_url = frigate.url();
    alarms = std::make_unique<alarms::CameraAlarms>(workers, reader, queue, as);
    LanApiSettings ls;
    ls.alarms = alarms.get();
    ls.alarm_ping = 1s;
    ls.alarm_streams = 6;
    ls.live = &live;
    ls.live_streams_per_guard = 2;
    api = std::make_unique<LanApi>(workers, reader, queue, ls, [] { return json::object(); });
    auto cert =
        make_self_signed({"caseta", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(24), false});
    ASSERT_TRUE(cert);
    httpd::Settings hs;
    hs.bind_address = "127.0.0.1";
    hs.port = 0;
    hs.cert_pem = cert.value().cert_pem;
    hs.key_pem = cert.value().key_pem;
    server = std::make_unique<httpd::Server>(io, hs, api->handler());
    server->start();
  }

  void TearDown() override {
    secbox::testing::stop_and_wait(io, *server);
    server.reset();
    api.reset();
    alarms.reset();
    bool queue_stopped = false;
    queue.stop([&] { queue_stopped = true; });
    run_until(
        io, [&] { return queue_stopped; }, 10s);
    bool db_stopped = false;
    database.stop([&] { db_stopped = true; });
    run_until(
        io, [&] { return db_stopped; }, 10s);
  }

  void snapshot(const std::string& entity, json rows) {
    dispatcher.dispatch(secbox::testing::snapshot_message("c-" + std::to_string(++sent), entity, 3,
                                                          std::move(rows)));
  }

  // Work on another thread while the loop serves.
  template <class F>
  auto serve_while(F work) {
    return secbox::testing::serve_while(io, std::move(work));
  }

  std::string login(const std::string& guard = "g_1", const std::string& pin = "2468") {
    const int port = server->port();
    return serve_while([port, guard, pin] {
      HttpsClient c(port);
      auto a = c.call("POST", "/api/lan/login", json{{"guardId", guard}, {"pin", pin}}.dump(),
                      {{"Content-Type", "application/json"}});
      return json::parse(a.body).value("token", "");
    });
  }

  static std::string stream_request(const std::string& token) {
    return "GET /api/lan/alarms/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           token + "\r\n\r\n";
  }

  std::vector<std::pair<std::string, json>> queued() {
    pqxx::connection c(db.url());
    pqxx::work w(c);
    std::vector<std::pair<std::string, json>> out;
    for (const auto& row : w.exec("SELECT type, data::text FROM outbound_event ORDER BY seq")) {
      out.emplace_back(row[0].as<std::string>(), json::parse(row[1].as<std::string>()));
    }
    return out;
  }
};

// The data of the first `event: <name>` in an SSE text.
json event_data(const std::string& text, const std::string& name) {
  const auto at = text.find("event: " + name + "\ndata: ");
  if (at == std::string::npos) return nullptr;
  const auto start = at + name.size() + 14;
  return json::parse(text.substr(start, text.find('\n', start) - start), nullptr, false);
}

TEST_F(AlarmStreamTest, ASignedInAppIsSentTheStateThenEachAlarmAndItsAnswer) {
  const std::string token = login();
  ASSERT_FALSE(token.empty());
  const int port = server->port();
  std::promise<void> state_read;
  auto reader_done = std::async(std::launch::async, [&, port] {
    HttpsClient c(port);
    c.send_raw(stream_request(token));
    std::string head = c.read_until("\r\n\r\n", 5s);
    std::string state = c.read_until("\n\n", 5s);
    state += c.read_until("\n\n", 5s);
    state_read.set_value();
    std::string later = c.read_until("event: alarm", 10s);
    later += c.read_until("\n\n", 5s);
    later += c.read_until("\"answer\":{", 10s);
    later += c.read_until("\n\n", 5s);
    later += c.read_until(": ping", 3s);
    return std::make_tuple(head, state, later);
  });
  auto ready = state_read.get_future();
  ASSERT_TRUE(run_until(
      io, [&] { return ready.wait_for(0s) == std::future_status::ready; }, 20s));
  alarms->seen(
      alarms::Sighting{"1733300000.1-abc", "front", "car", "ABC 123", 0.93, "", 0, std::nullopt});
  ASSERT_TRUE(run_until(
      io, [&] { return !alarms->list().empty(); }, 10s));
  const std::string alarm_id = alarms->list()[0]["id"];
  auto answered = serve_while([&, port] {
    HttpsClient c(port);
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token},
                                                  {"Content-Type", "application/json"}};
    std::vector<testing::HttpsAnswer> v;
    v.push_back(c.call(
        "POST", "/api/lan/alarms/answer",
        json{{"alarmId", alarm_id}, {"decision", "allowed"}, {"clientId", random_uuid()}}.dump(),
        auth));
    v.push_back(c.call("POST", "/api/lan/alarms/answer", "not json", auth));
    v.push_back(
        c.call("POST", "/api/lan/alarms/answer",
               json{{"alarmId", random_uuid()}, {"decision", "denied"}, {"clientId", random_uuid()}}
                   .dump(),
               auth));
    v.push_back(c.call(
        "POST", "/api/lan/alarms/answer",
        json{{"alarmId", alarm_id}, {"decision", "denied"}, {"clientId", random_uuid()}}.dump(),
        auth));
    v.push_back(c.call("GET", "/api/lan/alarms", "", auth));
    return v;
  });
  ASSERT_EQ(answered.size(), 5u);
  EXPECT_EQ(answered[0].status, 400) << "letting a banned visitor in needs a reason";
  EXPECT_EQ(answered[1].status, 400);
  EXPECT_EQ(answered[2].status, 404);
  EXPECT_EQ(answered[3].status, 201) << answered[3].body;
  EXPECT_EQ(json::parse(answered[4].body)["alarms"][0]["answer"]["decision"], "denied");

  std::string head, state, later;
  auto got = reader_done.wait_for(0s);
  ASSERT_TRUE(run_until(
      io, [&] { return (got = reader_done.wait_for(0s)) == std::future_status::ready; }, 30s));
  std::tie(head, state, later) = reader_done.get();
  EXPECT_NE(head.find("HTTP/1.1 200"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_EQ(event_data(state, "state"), (json{{"alarms", json::array()}, {"boot", alarms->boot()}}))
      << state;
  EXPECT_EQ(alarms->boot().size(), 36u);
  const json raised = event_data(later, "alarm");
  ASSERT_TRUE(raised.is_object()) << later;
  EXPECT_EQ(raised["ban"]["fullName"], "José Núñez");
  EXPECT_EQ(raised["read"], "ABC 123");
  EXPECT_NE(later.find("\"decision\":\"denied\""), std::string::npos) << later;
  EXPECT_NE(later.find(": ping"), std::string::npos) << "the stream's keepalive comment";

  auto events = queued();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].first, "ban_hit");
  EXPECT_EQ(events[1].first, "visitor_entry");
  EXPECT_EQ(events[1].second["guardId"], "g_1");
  EXPECT_EQ(events[1].second["decision"], "denied");
}

TEST_F(AlarmStreamTest, TheSnapshotAndTheStreamNeedASession) {
  alarms->seen(alarms::Sighting{"e-1", "front", "car", "ABC123", 0.95, "", 0, std::nullopt});
  ASSERT_TRUE(run_until(
      io, [&] { return !alarms->list().empty() && alarms->list()[0]["hasSnapshot"] == true; },
      10s));
  const std::string alarm_id = alarms->list()[0]["id"];
  const std::string token = login();
  const int port = server->port();
  auto v = serve_while([&, port] {
    HttpsClient c(port);
    std::vector<testing::HttpsAnswer> out;
    out.push_back(c.call("GET", "/api/lan/alarms/snapshot?id=" + alarm_id));
    out.push_back(c.call("GET", "/api/lan/alarms/stream"));
    out.push_back(c.call("GET", "/api/lan/alarms/snapshot?id=" + alarm_id, "",
                         {{"Authorization", "Bearer " + token}}));
    out.push_back(c.call("GET", "/api/lan/alarms/snapshot?id=nope", "",
                         {{"Authorization", "Bearer " + token}}));
    return out;
  });
  EXPECT_EQ(v[0].status, 401);
  EXPECT_EQ(v[1].status, 401);
  EXPECT_EQ(v[2].status, 200);
  EXPECT_EQ(v[2].headers["content-type"], "image/jpeg");
  EXPECT_EQ(v[2].body.compare(0, 2, "\xFF\xD8"), 0);
  EXPECT_EQ(v[3].status, 404);
}

TEST_F(AlarmStreamTest, ASessionsThirdStreamClosesItsFirstAndLogoutClosesTheRest) {
  const std::string token = login();
  const int port = server->port();
  auto closed = serve_while([&, port] {
    HttpsClient a(port), b(port), c(port);
    a.send_raw(stream_request(token));
    a.read_until("event: state", 5s);
    b.send_raw(stream_request(token));
    b.read_until("event: state", 5s);
    c.send_raw(stream_request(token));
    c.read_until("event: state", 5s);
    a.read_until("never sent", 3s);
    const bool first_closed = a.closed();
    HttpsClient d(port);
    d.call("POST", "/api/lan/logout", "", {{"Authorization", "Bearer " + token}});
    b.read_until("never sent", 3s);
    c.read_until("never sent", 3s);
    return std::make_tuple(first_closed, b.closed(), c.closed());
  });
  EXPECT_TRUE(std::get<0>(closed)) << "the oldest of the session's streams made room";
  EXPECT_TRUE(std::get<1>(closed)) << "logout closed the others";
  EXPECT_TRUE(std::get<2>(closed));
}

// One guard signed in on many sessions cannot take another guard's alarm
// stream: its new streams close its own oldest (4 a guard), and when all 6
// places are taken, the guard holding the most gives one up.
TEST_F(AlarmStreamTest, OneGuardsStreamsNeverTakeAnotherGuards) {
  const std::string other = login("g_2", "1357");
  std::vector<std::string> tokens;
  for (int i = 0; i < 4; ++i) tokens.push_back(login());
  const int port = server->port();
  auto result = serve_while([&, port] {
    HttpsClient x(port);
    x.send_raw(stream_request(other));
    x.read_until("event: state", 5s);
    std::vector<std::unique_ptr<HttpsClient>> mine;
    for (const auto& t : tokens) {
      for (int k = 0; k < 2; ++k) {
        mine.push_back(std::make_unique<HttpsClient>(port));
        mine.back()->send_raw(stream_request(t));
        mine.back()->read_until("event: state", 5s);
      }
    }
    x.read_until("never sent", 2s);
    std::vector<bool> closed;
    for (auto& c : mine) {
      c->read_until("never sent", 300ms);
      closed.push_back(c->closed());
    }
    return std::make_pair(x.closed(), closed);
  });
  EXPECT_FALSE(result.first) << "g_2's stream was taken by g_1's";
  const auto& closed = result.second;
  ASSERT_EQ(closed.size(), 8u);
  EXPECT_EQ(std::count(closed.begin(), closed.end(), false), 4)
      << "g_1 keeps 4 streams, its newest";
  for (std::size_t i = 4; i < 8; ++i) EXPECT_FALSE(closed[i]) << i;
}

// A ban whose reason is 300 KB: its alarm reaches the stream cut to a few
// KiB (the stream stays open, as does the next one's catch-up), and the whole
// record is one request away. Today's 256 KiB backlog would close every
// stream at the alarm, and again at each reconnect.
TEST_F(AlarmStreamTest, AnOversizedAlarmIsCutAndSilencesNoStream) {
  const std::string huge(300 * 1000, 'x');
  snapshot("banned_visitor", json::array({{{"id", "b_1"},
                                           {"communityId", "com_1"},
                                           {"fullName", "José Núñez"},
                                           {"plate", "ABC-123"},
                                           {"reason", huge},
                                           {"createdAt", "2026-10-01T12:00:00Z"}}}));
  ASSERT_TRUE(run_until(
      io, [&] { return applied == 3; }, 20s));
  alarms->bans_changed();
  const std::string token = login();
  const int port = server->port();
  std::promise<void> state_read;
  auto first = std::async(std::launch::async, [&, port] {
    HttpsClient c(port);
    c.send_raw(stream_request(token));
    c.read_until("event: state", 5s);
    c.read_until("\n\n", 5s);
    state_read.set_value();
    std::string later = c.read_until("event: alarm", 15s);
    later += c.read_until("\n\n", 5s);
    later += c.read_until(": ping", 3s);
    return std::make_pair(later, c.closed());
  });
  auto ready = state_read.get_future();
  ASSERT_TRUE(run_until(
      io, [&] { return ready.wait_for(0s) == std::future_status::ready; }, 20s));
  run_until(
      io, [&] { return false; }, 500ms);  // the ban list read again (bans_changed)
  alarms->seen(alarms::Sighting{"e-big", "front", "car", "ABC 123", 0.95, "", 0, std::nullopt});
  ASSERT_TRUE(run_until(
      io, [&] { return !alarms->list().empty(); }, 10s));
  ASSERT_TRUE(run_until(
      io, [&] { return first.wait_for(0s) == std::future_status::ready; }, 30s));
  const auto [later, closed] = first.get();
  const json pushed = event_data(later, "alarm");
  ASSERT_TRUE(pushed.is_object()) << later.substr(0, 300);
  EXPECT_EQ(pushed["truncated"], true);
  EXPECT_LE(pushed["ban"]["reason"].get<std::string>().size(), 204u);
  EXPECT_LT(later.size(), 8000u) << "one alarm message stays a few KiB";
  EXPECT_FALSE(closed) << "the stream stayed open";
  const std::string id = alarms->list()[0]["id"];
  auto again = serve_while([&, port] {
    HttpsClient c(port);
    c.send_raw(stream_request(token));
    std::string state = c.read_until("event: state", 5s);
    state += c.read_until("\n\n", 5s);
    c.read_until(": ping", 3s);
    const bool open = !c.closed();
    HttpsClient d(port);
    auto whole =
        d.call("GET", "/api/lan/alarms?id=" + id, "", {{"Authorization", "Bearer " + token}});
    return std::make_tuple(state, open, whole);
  });
  const json state = event_data(std::get<0>(again), "state");
  ASSERT_TRUE(state.is_object());
  ASSERT_EQ(state["alarms"].size(), 1u);
  EXPECT_EQ(state["alarms"][0]["truncated"], true);
  EXPECT_TRUE(std::get<1>(again)) << "a reconnect's catch-up does not close it";
  EXPECT_EQ(std::get<2>(again).status, 200);
  // The record by id: the alarm as kept, its ban's reason at 4 KiB (each
  // kept alarm holds a copy; the ban list has the reason whole).
  const auto kept =
      json::parse(std::get<2>(again).body)["alarm"]["ban"]["reason"].get<std::string>();
  EXPECT_GT(kept.size(), 4000u) << "more than the push carries";
  EXPECT_LE(kept.size(), 4096u + 3);
  EXPECT_EQ(kept.compare(0, 4000, huge, 0, 4000), 0);
}

// A camera's live video to a signed-in guard: the init segment and the
// fragments since the last keyframe at once, then each new one, with the
// codec in the Content-Type; none before the camera has a picture; a
// guard's third stream closes its first; logout closes the rest.
TEST_F(AlarmStreamTest, LiveVideoGoesToASignedInGuardFromTheLastKeyframe) {
  live.feeds["gate"];  // a camera without a picture yet
  const std::string token = login();
  const int port = server->port();
  auto before = serve_while([&, port] {
    HttpsClient c(port);
    std::vector<testing::HttpsAnswer> out;
    out.push_back(c.call("GET", "/api/lan/cameras/live?camera=gate"));
    out.push_back(c.call("GET", "/api/lan/cameras/live?camera=gate", "",
                         {{"Authorization", "Bearer " + token}}));
    out.push_back(c.call("GET", "/api/lan/cameras/live?camera=../x", "",
                         {{"Authorization", "Bearer " + token}}));
    out.push_back(c.call("GET", "/api/lan/cameras/live?camera=nope", "",
                         {{"Authorization", "Bearer " + token}}));
    return out;
  });
  EXPECT_EQ(before[0].status, 401);
  EXPECT_EQ(before[1].status, 404) << "no picture yet: the app plays HLS";
  EXPECT_EQ(before[2].status, 400);
  EXPECT_EQ(before[3].status, 404);

  live.piece("gate", media::Fmp4Piece::Kind::init, "[init]");
  live.piece("gate", media::Fmp4Piece::Kind::fragment, "[key-1]", true);
  live.piece("gate", media::Fmp4Piece::Kind::fragment, "[delta-1]");
  const auto request =
      "GET /api/lan/cameras/live?camera=gate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
      "Bearer " +
      token + "\r\n\r\n";
  std::promise<void> first_read;
  auto reader_done = std::async(std::launch::async, [&, port] {
    HttpsClient c(port);
    c.send_raw(request);
    std::string head = c.read_until("\r\n\r\n", 5s);
    std::string first = c.read_until("[delta-1]", 5s);
    first_read.set_value();
    std::string later = c.read_until("[delta-2]", 10s);
    return std::make_tuple(head, first, later);
  });
  auto ready = first_read.get_future();
  ASSERT_TRUE(run_until(
      io, [&] { return ready.wait_for(0s) == std::future_status::ready; }, 20s));
  live.piece("gate", media::Fmp4Piece::Kind::fragment, "[delta-2]");
  auto got = reader_done.wait_for(0s);
  ASSERT_TRUE(run_until(
      io, [&] { return (got = reader_done.wait_for(0s)) == std::future_status::ready; }, 20s));
  auto [head, first, later] = reader_done.get();
  EXPECT_NE(head.find("HTTP/1.1 200"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Type: video/mp4; codecs=\"avc1.42c00c\""), std::string::npos)
      << head;
  EXPECT_NE(head.find("Cache-Control: no-store"), std::string::npos) << head;
  EXPECT_EQ(first, "[init][key-1][delta-1]") << "a picture at once: from the last keyframe";
  EXPECT_EQ(later, "[delta-2]");
  // A phone that went away is seen at the next writes (a frame every 33 ms).
  for (int i = 0; i < 50 && live.feeds["gate"].viewers() > 0; ++i) {
    live.piece("gate", media::Fmp4Piece::Kind::fragment, "[delta-" + std::to_string(i + 3) + "]");
    run_until(
        io, [] { return false; }, 30ms);
  }
  EXPECT_EQ(live.feeds["gate"].viewers(), 0u) << "a closed stream leaves the feed";

  auto closed = serve_while([&, port] {
    HttpsClient a(port), b(port), c(port);
    a.send_raw(request);
    a.read_until("[key-1]", 5s);
    b.send_raw(request);
    b.read_until("[key-1]", 5s);
    c.send_raw(request);
    c.read_until("[key-1]", 5s);
    a.read_until("never sent", 3s);
    const bool first_closed = a.closed();
    HttpsClient d(port);
    d.call("POST", "/api/lan/logout", "", {{"Authorization", "Bearer " + token}});
    b.read_until("never sent", 3s);
    c.read_until("never sent", 3s);
    return std::make_tuple(first_closed, b.closed(), c.closed());
  });
  EXPECT_TRUE(std::get<0>(closed)) << "the guard's oldest live stream made room";
  EXPECT_TRUE(std::get<1>(closed)) << "logout closed the others";
  EXPECT_TRUE(std::get<2>(closed));
  EXPECT_EQ(live.feeds["gate"].viewers(), 0u);
}

}  // namespace
}  // namespace secbox::lan
