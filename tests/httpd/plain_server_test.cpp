// The same server core without a certificate: plain HTTP on 127.0.0.1 (the
// pairing form's variant), with its keep-alive, its own refusal bodies and
// headers, a handler's "close", and the limits of time and connections.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "http_call.hpp"
#include "httpd/server.hpp"
#include "run_loop.hpp"

namespace secbox::httpd {
namespace {

using namespace std::chrono_literals;
using secbox::testing::http_call;
using secbox::testing::run_until;
namespace asio = boost::asio;

// A raw connection to the server: what it sends, and what comes back until
// the server closes or `limit` passes.
class RawClient {
 public:
  // From 127.0.0.1, or from `from` (another loopback address: another client).
  explicit RawClient(int port, const char* from = nullptr) : socket_(io_) {
    boost::system::error_code ec;
    if (from) {
      socket_.open(asio::ip::tcp::v4(), ec);
      socket_.bind({asio::ip::make_address(from), 0}, ec);
    }
    socket_.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, ec);
    connected_ = !ec;
  }
  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
    return !ec;
  }
  // Reads what arrives for `limit` (the connection stays open).
  void read_for(std::chrono::milliseconds limit, std::string* out) { read_to_close(limit, out); }
  // Reads until the peer closes (true) or `limit` passes (false).
  bool read_to_close(std::chrono::milliseconds limit, std::string* out = nullptr) {
    const auto end = std::chrono::steady_clock::now() + limit;
    socket_.non_blocking(true);
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      boost::system::error_code ec;
      const auto n = socket_.read_some(asio::buffer(buf), ec);
      if (out) out->append(buf, n);
      if (ec == asio::error::would_block) {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      if (ec) return true;
    }
    return false;
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  bool connected_ = false;
};

class PlainServerTest : public ::testing::Test {
 protected:
  asio::io_context io;
  std::unique_ptr<Server> server;
  int handled = 0;

  void make(Settings s = {}) {
    s.bind_address = "127.0.0.1";
    s.port = 0;
    server = std::make_unique<Server>(io, s, [this](Request r, Reply reply) {
      ++handled;
      if (r.path == "/throw") throw std::runtime_error("a bug meeting a request");
      if (r.path == "/throw-after-answer") {
        reply(Response{});
        throw std::runtime_error("a bug after the answer");
      }
      Response res;
      res.content_type = "text/plain";
      if (r.path == "/bye") res.close = true;
      if (r.path == "/trust" && r.trust) r.trust();  // as the LAN API does for a valid session
      if (r.path == "/framed") res.headers.emplace_back("X-Frame-Options", "SAMEORIGIN");
      res.body =
          r.method + " " + r.path + " " + std::to_string(r.body.size()) + " " + r.header("x-probe");
      reply(std::move(res));
    });
    server->start();
    ASSERT_GT(server->port(), 0);
  }

  void TearDown() override {
    if (!server) return;
    secbox::testing::stop_and_wait(io, *server);
  }

  template <class F>
  auto serve_while(F work) {
    return secbox::testing::serve_while(io, std::move(work));
  }
};

TEST_F(PlainServerTest, AnswersPlainHttpWithItsHeadersAndKeepsTheConnection) {
  make();
  const int port = server->port();
  const std::string raw = serve_while([port] {
    RawClient c(port);
    c.send(
        "GET /a HTTP/1.1\r\nHost: x\r\nX-Probe: one\r\n\r\n"
        "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        "GET /framed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string out;
    c.read_to_close(5s, &out);
    return out;
  });
  EXPECT_NE(raw.find("GET /a 0 one"), std::string::npos) << raw;
  EXPECT_NE(raw.find("POST /b 3 "), std::string::npos) << raw;
  EXPECT_NE(raw.find("GET /framed 0 "), std::string::npos) << raw;
  EXPECT_NE(raw.find("X-Content-Type-Options: nosniff"), std::string::npos) << raw;
  EXPECT_NE(raw.find("X-Frame-Options: DENY"), std::string::npos) << raw;
  EXPECT_NE(raw.find("X-Frame-Options: SAMEORIGIN"), std::string::npos)
      << "the handler's header wins";
  EXPECT_EQ(handled, 3);
}

// A handler that throws loses its request, never the server: 500 (once: a
// handler that had answered keeps its answer), and the next one is served.
TEST_F(PlainServerTest, AHandlerThatThrowsIsAnswered500AndTheServerGoesOn) {
  make();
  const int port = server->port();
  const auto raw = serve_while([port] {
    std::string out;
    RawClient a(port);
    a.send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
    a.read_to_close(5s, &out);
    RawClient b(port);
    b.send("GET /throw-after-answer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    b.read_to_close(5s, &out);
    RawClient c(port);
    c.send("GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    c.read_to_close(5s, &out);
    return out;
  });
  EXPECT_EQ(raw.find("HTTP/1.1 500"), 0u) << raw;
  EXPECT_NE(raw.find(R"("error":"internal")"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("HTTP/1.1 500", 1), std::string::npos)
      << "the answered request keeps its answer: " << raw;
  EXPECT_NE(raw.find("HTTP/1.1 200"), std::string::npos) << raw;
  EXPECT_NE(raw.find("GET /fine 0 "), std::string::npos) << raw;
  EXPECT_EQ(handled, 3);
}

TEST_F(PlainServerTest, AHandlersCloseEndsTheConnectionAfterItsAnswer) {
  make();
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient c(port);
    c.send("GET /bye HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string out;
    const bool closed = c.read_to_close(3s, &out);
    return std::make_pair(closed, out);
  });
  EXPECT_TRUE(r.first) << "the connection stayed open";
  EXPECT_NE(r.second.find("Connection: close"), std::string::npos) << r.second;
}

TEST_F(PlainServerTest, RefusalsUseTheSettingsBodyAndTheServerStaysUp) {
  Settings s;
  s.body_limit = 1024;
  s.header_limit = 1024;
  s.refusal = [](int status) {
    Response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "refused " + std::to_string(status) + "\n";
    return r;
  };
  make(s);
  const int port = server->port();
  auto a = serve_while([port] {
    std::vector<secbox::testing::HttpAnswer> v;
    v.push_back(http_call(port, "POST", "/p", std::string(4000, 'a'), "text/plain"));
    v.push_back(http_call(port, "GET", "/h", "", "", {{"X-Big", std::string(2000, 'h')}}));
    v.push_back(http_call(port, "GET", "/still-up"));
    return v;
  });
  EXPECT_EQ(a[0].status, 413);
  EXPECT_EQ(a[0].body, "refused 413\n");
  EXPECT_EQ(a[1].status, 431);
  EXPECT_EQ(a[2].status, 200);
  EXPECT_EQ(a[2].body, "GET /still-up 0 ");
}

TEST_F(PlainServerTest, NotHttpGetsA400) {
  make();
  const int port = server->port();
  const std::string raw = serve_while([port] {
    RawClient c(port);
    c.send("NOT HTTP AT ALL\r\n\r\n");
    std::string out;
    c.read_to_close(3s, &out);
    return out;
  });
  EXPECT_EQ(raw.rfind("HTTP/1.1 400 ", 0), 0u) << raw;
  EXPECT_NE(raw.find("bad_request"), std::string::npos) << raw;
}

TEST_F(PlainServerTest, IdleAndSlowClientsAreDropped) {
  Settings s;
  s.idle_time = 1s;
  s.request_time = 1s;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient idle(port);
    RawClient slow(port);
    slow.send("GET / HTTP/1.1\r\nHost: x\r\n");
    bool slow_cut = false;
    for (int i = 0; i < 20 && !slow_cut; ++i) {
      std::this_thread::sleep_for(200ms);
      slow_cut = !slow.send("X");
    }
    const bool idle_cut = idle.read_to_close(3s);
    if (!slow_cut) slow_cut = slow.read_to_close(3s);
    return std::make_tuple(idle_cut, slow_cut, http_call(port, "GET", "/").status);
  });
  EXPECT_TRUE(std::get<0>(r)) << "the idle connection stayed open";
  EXPECT_TRUE(std::get<1>(r)) << "the slow client kept its connection";
  EXPECT_EQ(std::get<2>(r), 200);
  run_until(
      io, [&] { return server->connections() == 0; }, 3s);
  EXPECT_EQ(server->connections(), 0u);
}

TEST_F(PlainServerTest, AFullServerClosesTheConnectionIdleLongest) {
  Settings s;
  s.max_connections = 2;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient first(port);
    std::this_thread::sleep_for(100ms);
    RawClient second(port);
    std::this_thread::sleep_for(100ms);
    const int third = http_call(port, "GET", "/third").status;
    return std::make_pair(third, first.read_to_close(3s));
  });
  EXPECT_EQ(r.first, 200) << "the newcomer was shut out";
  EXPECT_TRUE(r.second) << "the connection idle longest was not closed";
}

// Bodies that never finish hold no slot against a newcomer: a full server
// closes the anonymous connection that has waited longest, a request still
// arriving included. (Only idle connections used to be closed: slow bodies
// from the parking lot shut every guard out.)
TEST_F(PlainServerTest, SlowBodiesAreClosedForANewcomer) {
  Settings s;
  s.max_connections = 4;
  s.request_time = 20s;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    std::vector<std::unique_ptr<RawClient>> slow;
    for (int i = 0; i < 4; ++i) {
      slow.push_back(std::make_unique<RawClient>(port));
      slow.back()->send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc");
      std::this_thread::sleep_for(50ms);
    }
    std::vector<int> statuses;
    for (int i = 0; i < 3; ++i) statuses.push_back(http_call(port, "GET", "/guard").status);
    return std::make_pair(statuses, slow.front()->read_to_close(3s));
  });
  EXPECT_EQ(r.first, (std::vector<int>{200, 200, 200})) << "slow bodies shut the newcomers out";
  EXPECT_TRUE(r.second) << "the oldest slow body was closed";
}

// A body that trickles (a byte every 300 ms, under the 1 KiB/s minimum) is
// closed within seconds, though request_time would allow 20 s; one that
// stops is closed after body_stall_time; a body sent at once is read whole.
TEST_F(PlainServerTest, ABodyThatTricklesOrStallsIsClosed) {
  Settings s;
  s.request_time = 20s;
  s.body_stall_time = 2s;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient trickle(port);
    trickle.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    bool cut = false;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 30 && !cut; ++i) {
      std::this_thread::sleep_for(300ms);
      cut = !trickle.send("x") || trickle.read_to_close(1ms);
    }
    const auto trickle_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    RawClient stalled(port);
    stalled.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc");
    const bool stall_cut = stalled.read_to_close(5s);
    auto whole = http_call(port, "POST", "/upload", std::string(60000, 'b'));
    return std::make_tuple(cut, trickle_s, stall_cut, whole.status, whole.body);
  });
  EXPECT_TRUE(std::get<0>(r)) << "the trickling body kept its slot";
  EXPECT_LT(std::get<1>(r), 8.0) << "closed long before request_time (20 s)";
  EXPECT_TRUE(std::get<2>(r)) << "the stalled body kept its slot";
  EXPECT_EQ(std::get<3>(r), 200);
  EXPECT_EQ(std::get<4>(r), "POST /upload 60000 ");
}

// Headers that trickle (a byte every 300 ms) are closed within seconds
// though idle_time and request_time would allow 30 s and 20 s; headers sent
// in pieces at a normal pace, and a pipelined pair, are answered.
TEST_F(PlainServerTest, HeadersThatTrickleAreClosed) {
  Settings s;
  s.idle_time = 30s;
  s.request_time = 20s;
  s.body_stall_time = 2s;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient trickle(port);
    const std::string head =
        "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(200, 'p') + "\r\n\r\n";
    bool cut = false;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < head.size() && i < 40 && !cut; ++i) {
      cut = !trickle.send(head.substr(i, 1)) || trickle.read_to_close(300ms);
    }
    const auto trickle_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    RawClient pieces(port);
    pieces.send("GET /a HTTP/1.1\r\nHo");
    std::this_thread::sleep_for(200ms);
    pieces.send("st: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string answers;
    pieces.read_for(1s, &answers);
    return std::make_tuple(cut, trickle_s, answers);
  });
  EXPECT_TRUE(std::get<0>(r)) << "the trickling headers kept their slot";
  EXPECT_LT(std::get<1>(r), 8.0) << "closed long before idle_time (30 s)";
  EXPECT_NE(std::get<2>(r).find("GET /a 0"), std::string::npos) << std::get<2>(r);
  EXPECT_NE(std::get<2>(r).find("GET /b 0"), std::string::npos) << std::get<2>(r);
}

// A body over the limit is answered 413 and what still arrives is read for
// 2 s in all: one that trickles after the refusal (a byte every 300 ms,
// each read once re-armed the 2 s) does not keep its slot.
TEST_F(PlainServerTest, ARefusedBodyThatTricklesIsDrainedTwoSecondsAtMost) {
  Settings s;
  s.body_limit = 1024;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient trickle(port);
    trickle.send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    bool cut = false;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 40 && !cut; ++i) {
      std::this_thread::sleep_for(300ms);
      cut = !trickle.send("x") || trickle.read_to_close(1ms);
    }
    return std::make_pair(
        cut, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
  EXPECT_TRUE(r.first) << "the refused body kept its slot";
  EXPECT_LT(r.second, 4.0);
}

// A full server takes the slot from the address holding the most waiting
// connections: a lone phone's connection, though it has waited longest (its
// TLS handshake, its first request), stays while three slow bodies from one
// address hold the rest. (The oldest anywhere used to go: the phone.)
TEST_F(PlainServerTest, AFullServerTakesTheSlotFromTheAddressHoldingTheMost) {
  Settings s;
  s.max_connections = 4;
  s.request_time = 20s;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient phone(port, "127.0.0.2");
    std::this_thread::sleep_for(100ms);
    std::vector<std::unique_ptr<RawClient>> flood;
    for (int i = 0; i < 3; ++i) {
      flood.push_back(std::make_unique<RawClient>(port));
      flood.back()->send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
      std::this_thread::sleep_for(50ms);
    }
    const int newcomer = http_call(port, "GET", "/newcomer").status;
    const bool flood_cut = flood.front()->read_to_close(1s);
    phone.send("GET /phone HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string answer;
    phone.read_for(1s, &answer);
    return std::make_tuple(newcomer, flood_cut, answer);
  });
  EXPECT_EQ(std::get<0>(r), 200);
  EXPECT_TRUE(std::get<1>(r)) << "the flood's oldest connection stayed";
  EXPECT_NE(std::get<2>(r).find("GET /phone 0"), std::string::npos)
      << "the phone's connection was closed";
}

// A connection that has shown a valid session (Request::trust) is never
// closed for a newcomer, though it idles longest: the anonymous one goes.
TEST_F(PlainServerTest, AConnectionThatShowedASessionIsNeverClosedForANewcomer) {
  Settings s;
  s.max_connections = 2;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    RawClient guard(port);
    guard.send("GET /trust HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string first;
    guard.read_for(500ms, &first);
    std::this_thread::sleep_for(100ms);
    RawClient anonymous(port);
    anonymous.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc");
    std::this_thread::sleep_for(100ms);
    const int newcomer = http_call(port, "GET", "/new").status;
    guard.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string again;
    guard.read_for(1s, &again);
    return std::make_tuple(first, newcomer, again, anonymous.read_to_close(3s));
  });
  EXPECT_NE(std::get<0>(r).find("200 OK"), std::string::npos) << std::get<0>(r);
  EXPECT_EQ(std::get<1>(r), 200);
  EXPECT_NE(std::get<2>(r).find("GET /again"), std::string::npos)
      << "the guard's connection was closed";
  EXPECT_TRUE(std::get<3>(r)) << "the anonymous one should have made room";
}

TEST_F(PlainServerTest, APlainServerTakesNoCertificate) {
  make();
  EXPECT_FALSE(server->use_certificate("not a cert", "not a key"));
  EXPECT_EQ(server->name(), "http");
}

}  // namespace
}  // namespace secbox::httpd
