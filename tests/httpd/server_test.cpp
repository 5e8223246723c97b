// The LAN HTTPS server over real TLS on 127.0.0.1: its TLS policy, keep-alive,
// and each limit (headers, bodies, idle and slow clients, connections), with
// the server still answering afterwards.
#include "httpd/server.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "common/certificates.hpp"
#include "https_client.hpp"
#include "run_loop.hpp"

namespace secbox::httpd {
namespace {

using namespace std::chrono_literals;
using secbox::testing::HttpsAnswer;
using secbox::testing::HttpsClient;
using secbox::testing::run_until;
using secbox::testing::TlsChoice;

class HttpsTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  std::unique_ptr<Server> server;
  int handled = 0;
  std::vector<std::shared_ptr<ResponseStream>> streams;
  int streams_closed = 0;

  void make(Settings s = {}) {
    auto cert =
        make_self_signed({"caseta", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(24), false});
    ASSERT_TRUE(cert);
    s.bind_address = "127.0.0.1";
    s.port = 0;
    s.cert_pem = cert.value().cert_pem;
    s.key_pem = cert.value().key_pem;
    server = std::make_unique<Server>(io, s, [this](Request r, Reply reply) {
      ++handled;
      Response res;
      if (r.path == "/stream") {
        // A streamed response: `stream_chunk` bytes at every tick until the
        // server refuses one (the client reads, or it does not).
        res.content_type = "text/event-stream";
        res.stream = [this](std::shared_ptr<ResponseStream> st) {
          streams.push_back(st);
          st->on_closed([this] { ++streams_closed; });
        };
        return reply(std::move(res));
      }
      if (r.path == "/big") {
        // A cached body (the ban list is one), shared and sent as it is.
        static const auto big = std::make_shared<const std::string>([] {
          std::string b(2 * 1024 * 1024 + 7, 'x');
          for (std::size_t i = 0; i < b.size(); i += 4096)
            b[i] = static_cast<char>('a' + (i / 4096) % 26);
          return b;
        }());
        res.shared_body = big;
        return reply(std::move(res));
      }
      res.body = R"({"method":")" + r.method + R"(","path":")" + r.path + R"(","query":")" +
                 r.query + R"(","bytes":)" + std::to_string(r.body.size()) + "}";
      reply(std::move(res));
    });
    server->start();
    ASSERT_GT(server->port(), 0);
  }

  void TearDown() override {
    if (!server) return;
    secbox::testing::stop_and_wait(io, *server);
  }

  // Runs `work` on another thread while the loop serves.
  template <class F>
  auto serve_while(F work) {
    return secbox::testing::serve_while(io, std::move(work));
  }
};

TEST_F(HttpsTest, Tls12And13WithAeadCiphersOnly) {
  make();
  const int port = server->port();
  auto versions = serve_while([port] {
    std::vector<std::string> v;
    HttpsClient t13(port, {TLS1_3_VERSION, TLS1_3_VERSION, "", ""});
    v.push_back(t13.connected() ? t13.tls_version() : "refused");
    HttpsClient t12(port, {TLS1_2_VERSION, TLS1_2_VERSION, "", ""});
    v.push_back(t12.connected()
                    ? std::string(t12.tls_version()) + " " + SSL_get_cipher(t12.native())
                    : "refused");
    HttpsClient t11(port, {TLS1_1_VERSION, TLS1_1_VERSION, "", ""});
    v.push_back(t11.connected() ? t11.tls_version() : "refused");
    HttpsClient cbc(port, {TLS1_2_VERSION, TLS1_2_VERSION,
                           "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA", ""});
    v.push_back(cbc.connected() ? "cbc accepted" : "refused");
    return v;
  });
  EXPECT_EQ(versions[0], "TLSv1.3");
  EXPECT_EQ(versions[1].rfind("TLSv1.2 ECDHE-ECDSA-", 0), 0u) << versions[1];
  EXPECT_NE(versions[1].find("GCM"), std::string::npos) << versions[1];
  EXPECT_EQ(versions[2], "refused");
  EXPECT_EQ(versions[3], "refused");
}

// A HEAD answer carries the GET answer's Content-Length and no body: with
// a body, a kept-alive connection's next response would start inside it.
TEST_F(HttpsTest, HeadGetsHeadersOnlySoTheNextAnswerOnTheConnectionIsWhole) {
  make();
  const int port = server->port();
  auto raw = serve_while([port] {
    HttpsClient c(port);
    c.send_raw(
        "HEAD /api/lan/x HTTP/1.1\r\nHost: caseta\r\n\r\nGET /api/lan/y HTTP/1.1\r\nHost: "
        "caseta\r\n"
        "Connection: close\r\n\r\n");
    return c.read_raw(std::chrono::milliseconds(1500));
  });
  const auto first_end = raw.find("\r\n\r\n");
  ASSERT_NE(first_end, std::string::npos) << raw;
  EXPECT_NE(raw.substr(0, first_end).find("Content-Length: "), std::string::npos) << raw;
  EXPECT_EQ(raw.compare(first_end + 4, 9, "HTTP/1.1 "), 0) << "a body followed the HEAD answer:\n"
                                                           << raw;
  EXPECT_NE(raw.find(R"("path":"/api/lan/y")"), std::string::npos) << raw;
}

TEST_F(HttpsTest, KeepAliveServesManyRequestsOnOneConnection) {
  make();
  const int port = server->port();
  auto answers = serve_while([port] {
    HttpsClient c(port);
    std::vector<HttpsAnswer> a;
    for (int i = 0; i < 5; ++i) a.push_back(c.call("GET", "/api/lan/x?i=" + std::to_string(i)));
    a.push_back(c.call("POST", "/p", std::string(1000, 'b')));
    return a;
  });
  ASSERT_EQ(answers.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(answers[i].status, 200);
    EXPECT_EQ(answers[i].body, R"({"method":"GET","path":"/api/lan/x","query":"i=)" +
                                   std::to_string(i) + R"(","bytes":0})");
  }
  EXPECT_NE(answers[5].body.find(R"("bytes":1000)"), std::string::npos);
  EXPECT_EQ(answers[0].headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(handled, 6);
}

TEST_F(HttpsTest, ALargeSharedBodyArrivesWholeTwiceOnOneConnectionInTls12And13) {
  make();
  const int port = server->port();
  auto answers = serve_while([port] {
    std::vector<HttpsAnswer> a;
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
      HttpsClient c(port, {version, version, "", ""});
      for (int i = 0; i < 2; ++i) a.push_back(c.call("GET", "/big"));
    }
    return a;
  });
  ASSERT_EQ(answers.size(), 4u);
  for (const auto& a : answers) {
    EXPECT_EQ(a.status, 200);
    ASSERT_EQ(a.body.size(), 2u * 1024 * 1024 + 7);
    EXPECT_EQ(a.body[4096 * 3], 'd');
    EXPECT_EQ(a.headers.at("content-length"), std::to_string(2 * 1024 * 1024 + 7));
  }
}

TEST_F(HttpsTest, ARenewedCertificateIsPresentedToNewConnectionsWhileOpenOnesGoOn) {
  make();
  const int port = server->port();
  auto renewed = make_self_signed(
      {"caseta", {"localhost"}, {"127.0.0.1", "::1"}, std::chrono::hours(48), false});
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(server->use_certificate(renewed.value().cert_pem, "not a key"))
      << "an unusable pair must be refused";
  auto old_client = std::make_shared<std::unique_ptr<HttpsClient>>();
  const auto before = serve_while([&] {
    *old_client = std::make_unique<HttpsClient>(port);
    return (*old_client)->peer_certificate_pem();
  });
  ASSERT_TRUE(server->use_certificate(renewed.value().cert_pem, renewed.value().key_pem));
  auto after = serve_while([&] {
    std::vector<std::string> v;
    HttpsClient fresh(port);
    v.push_back(fresh.peer_certificate_pem());
    v.push_back(std::to_string(fresh.call("GET", "/new").status));
    v.push_back(std::to_string((*old_client)->call("GET", "/old").status));
    return v;
  });
  auto fingerprint = [](const std::string& pem) {
    auto sha = certificate_sha256(pem);
    return sha ? sha.value() : std::string("unreadable");
  };
  EXPECT_NE(fingerprint(before), fingerprint(renewed.value().cert_pem));
  EXPECT_EQ(fingerprint(after[0]), fingerprint(renewed.value().cert_pem));
  EXPECT_EQ(after[1], "200");
  EXPECT_EQ(after[2], "200") << "a connection made before the renewal must keep working";
  old_client->reset();
}

// cloud-protocol §7.7: a client that asks for <label>.<name> (SNI) gets the
// named certificate from the next handshake on; one that asks for nothing
// (the bare IP address), another name, or two labels under it gets the
// server's own; a connection made before keeps working.
TEST_F(HttpsTest, ANamedCertificateIsPresentedToClientsAskingForItsNames) {
  make();
  const int port = server->port();
  auto ca = make_self_signed({"Test CA", {}, {}, std::chrono::hours(48), true, 0}).value();
  auto named = make_signed({"b7.box.example.com",
                            {"*.b7.box.example.com", "b7.box.example.com"},
                            {},
                            std::chrono::hours(24),
                            false},
                           ca)
                   .value();
  auto own = serve_while([&] { return HttpsClient(port).peer_certificate_pem(); });
  auto before = std::make_shared<std::unique_ptr<HttpsClient>>();
  serve_while([&] {
    *before = std::make_unique<HttpsClient>(port);
    return 0;
  });
  EXPECT_FALSE(server->use_named_certificate("b7.box.example.com", named.cert_pem, "not a key"));
  ASSERT_TRUE(server->use_named_certificate("b7.box.example.com", named.cert_pem + ca.cert_pem,
                                            named.key_pem));
  auto presented = [&](const std::string& sni) {
    return serve_while([&] {
      TlsChoice t;
      t.server_name = sni;
      HttpsClient c(port, t);
      const auto pem = c.peer_certificate_pem();
      const int status = c.call("GET", "/").status;
      auto sha = certificate_sha256(pem);
      return std::make_pair(sha ? sha.value() : std::string("none"), status);
    });
  };
  const auto own_sha = certificate_sha256(own).value();
  const auto named_sha = certificate_sha256(named.cert_pem).value();
  EXPECT_EQ(presented("10-0-0-5.b7.box.example.com"), std::make_pair(named_sha, 200));
  EXPECT_EQ(presented("10-0-0-5.B7.Box.Example.com"), std::make_pair(named_sha, 200));
  EXPECT_EQ(presented("b7.box.example.com").first, named_sha);
  EXPECT_EQ(presented("").first, own_sha) << "the bare address keeps the box's own certificate";
  EXPECT_EQ(presented("caseta.lan").first, own_sha);
  EXPECT_EQ(presented("a.b.b7.box.example.com").first, own_sha)
      << "two labels under the name: not covered";
  EXPECT_EQ(presented("evilb7.box.example.com").first, own_sha);
  EXPECT_EQ(serve_while([&] { return (*before)->call("GET", "/old").status; }), 200);
  ASSERT_TRUE(server->use_named_certificate("", "", ""));
  EXPECT_EQ(presented("10-0-0-5.b7.box.example.com").first, own_sha);
  before->reset();
}

// A client that asks for a large body and leaves: the server's sends meet a
// closed socket (EPIPE). They must not raise SIGPIPE, which would end this
// test binary, as it would end the daemon.
TEST_F(HttpsTest, ClientsLeavingInTheMiddleOfALargeBodyDoNotHurtTheServer) {
  make();
  const int port = server->port();
  auto status = serve_while([port] {
    for (int i = 0; i < 5; ++i) {
      HttpsClient leaver(port);
      leaver.send_raw("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    }  // closed with the answer unread
    std::this_thread::sleep_for(300ms);
    return HttpsClient(port).call("GET", "/big").status;
  });
  EXPECT_EQ(status, 200);
  run_until(
      io, [&] { return server->connections() == 0; }, 5s);
  EXPECT_EQ(server->connections(), 0u);
}

TEST_F(HttpsTest, OversizedHeadersAndBodiesAreRefusedAndTheServerStaysUp) {
  make();
  const int port = server->port();
  auto answers = serve_while([port] {
    std::vector<HttpsAnswer> a;
    a.push_back(HttpsClient(port).call("GET", "/", "", {{"X-Big", std::string(10000, 'h')}}));
    a.push_back(HttpsClient(port).call("POST", "/", std::string(70 * 1024, 'b')));
    HttpsClient garbage(port);
    garbage.send_raw("NOT HTTP AT ALL\r\n\r\n");
    a.push_back(HttpsClient(port).call("GET", "/still-up"));
    return a;
  });
  EXPECT_EQ(answers[0].status, 431);
  EXPECT_EQ(answers[1].status, 413);
  EXPECT_NE(answers[1].body.find("body_too_large"), std::string::npos);
  EXPECT_EQ(answers[2].status, 200);
}

TEST_F(HttpsTest, IdleAndSlowClientsAreDroppedWhileOthersAreServed) {
  Settings s;
  s.idle_time = 1s;
  s.request_time = 1s;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    std::vector<bool> v;
    HttpsClient idle(port);
    HttpsClient slow(port);
    // A slowloris: a header line, then one byte at a time.
    slow.send_raw("GET / HTTP/1.1\r\nHost: x\r\n");
    bool slow_cut = false;
    for (int i = 0; i < 20 && !slow_cut; ++i) {
      std::this_thread::sleep_for(200ms);
      slow_cut = !slow.send_raw("X");
    }
    v.push_back(idle.closed_within(3s));
    v.push_back(slow_cut || slow.closed_within(3s));
    v.push_back(HttpsClient(port).call("GET", "/").status == 200);
    return v;
  });
  EXPECT_TRUE(r[0]) << "the idle connection stayed open";
  EXPECT_TRUE(r[1]) << "the slow client kept its connection";
  EXPECT_TRUE(r[2]);
  run_until(
      io, [&] { return server->connections() == 0; }, 3s);
  EXPECT_EQ(server->connections(), 0u);
}

// Idle connections held open from one address (measured: 64 from
// 127.0.0.1 shut out a guard at 127.0.0.2 with ECONNRESET). One address gets
// at most max_per_address; a full server closes the connection idle longest
// for a newcomer.
TEST_F(HttpsTest, OneAddressCannotTakeEverySlot) {
  Settings s;
  s.max_per_address = 3;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    std::vector<int> v;
    std::vector<std::unique_ptr<HttpsClient>> held;
    for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<HttpsClient>(port));
    HttpsClient fourth(port);
    v.push_back(fourth.connected() ? fourth.call("GET", "/").status : 0);
    HttpsClient guard(port, {}, std::chrono::seconds(10), "127.0.0.2");
    v.push_back(guard.connected() ? guard.call("GET", "/").status : 0);
    return v;
  });
  EXPECT_EQ(r[0], 0) << "a fourth connection from one address";
  EXPECT_EQ(r[1], 200) << "another address is served";
}

TEST_F(HttpsTest, AFullServerClosesTheConnectionIdleLongestForANewcomer) {
  Settings s;
  s.max_connections = 3;
  make(s);
  const int port = server->port();
  auto r = serve_while([port] {
    std::vector<int> v;
    std::vector<std::unique_ptr<HttpsClient>> held;
    for (int i = 0; i < 3; ++i) {
      held.push_back(std::make_unique<HttpsClient>(port, TlsChoice{}, std::chrono::seconds(10),
                                                   "127.0.0." + std::to_string(10 + i)));
      std::this_thread::sleep_for(50ms);
    }
    HttpsClient guard(port, {}, std::chrono::seconds(10), "127.0.0.2");
    v.push_back(guard.connected() ? guard.call("GET", "/").status : 0);
    v.push_back(held[0]->closed_within(std::chrono::seconds(3)) ? 1
                                                                : 0);  // the oldest idle one went
    v.push_back(held[2]->call("GET", "/").status);  // the newest idle one is still served
    return v;
  });
  EXPECT_EQ(r[0], 200) << "the guard was shut out";
  EXPECT_EQ(r[1], 1) << "the connection idle longest was closed";
  EXPECT_EQ(r[2], 200) << "the newest idle one stays";
}

}  // namespace
}  // namespace secbox::httpd

namespace secbox::httpd {
namespace {

// A streamed response (the alarm feed) to a client that stops reading: the
// bytes waiting are bounded, the stream is closed and says so, and the server
// goes on answering; one that reads gets every chunk in order.
TEST_F(HttpsTest, AStreamToAClientThatDoesNotReadIsClosedAtItsBacklog) {
  Settings s;
  s.stream_backlog = 64 * 1024;
  make(s);
  const int port = server->port();
  std::unique_ptr<HttpsClient> reader_conn, sleeper_conn;
  const std::string request = "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_TRUE(serve_while([&] {
    reader_conn = std::make_unique<HttpsClient>(port);
    return reader_conn->send_raw(request);
  }));
  ASSERT_TRUE(run_until(
      io, [&] { return streams.size() == 1; }, 10s));
  ASSERT_TRUE(serve_while([&] {
    sleeper_conn = std::make_unique<HttpsClient>(port);
    return sleeper_conn->send_raw(request);
  }));
  HttpsClient& reader = *reader_conn;
  ASSERT_TRUE(run_until(
      io, [&] { return streams.size() == 2; }, 10s));
  // The reader: ten numbered chunks, in order.
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(streams[0]->write("data: " + std::to_string(i) + "\n\n"));
  auto got = serve_while([&] { return reader.read_until("data: 9\n\n", 10s); });
  std::string want;
  for (int i = 0; i < 10; ++i) want += "data: " + std::to_string(i) + "\n\n";
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  EXPECT_EQ(got.find("Content-Length"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - want.size()), want);
  // The sleeper: 16 KiB chunks until one is refused, bounded in count.
  const std::string chunk(16 * 1024, 'z');
  int written = 0;
  bool refused = false;
  for (int i = 0; i < 4000 && !refused; ++i) {
    refused = !streams[1]->write(chunk);
    if (!refused) ++written;
    run_until(
        io, [] { return false; }, 1ms);
  }
  EXPECT_TRUE(refused) << written << " chunks were taken";
  EXPECT_TRUE(streams[1]->closed());
  EXPECT_EQ(streams_closed, 1) << "only the sleeper's";
  EXPECT_FALSE(streams[0]->closed());
  auto after = serve_while([port] { return HttpsClient(port).call("GET", "/after").status; });
  EXPECT_EQ(after, 200);
  streams[0]->close();
  EXPECT_TRUE(run_until(
      io, [&] { return streams_closed == 2; }, 5s));
  EXPECT_TRUE(serve_while([&] {
    reader.read_until("never", 3s);
    return reader.closed();
  }));
}

}  // namespace
}  // namespace secbox::httpd
