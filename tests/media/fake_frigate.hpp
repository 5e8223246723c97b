#pragma once
// A small fake Frigate for the tests: real HTTP/1.1 on 127.0.0.1, a thread a
// connection. /api/<camera>/latest.jpg answers a JPEG ("front", "hd"), hangs
// ("slow") or 404s; as Frigate 0.16, it takes `height` (a smaller picture,
// here `fake_jpeg('r', height)`) and ignores `h`. /api/<camera>?fps=N
// streams multipart/x-mixed-replace:
// "front" (small frames, each written in three pieces), "hd" (~100 KB
// frames), "stall" (one frame, then silence), "bad" (malformed parts between
// good ones). /api/events pages as Frigate 0.16 does (see serve()), with
// in_progress=1 for the events whose end_time is null; /api/events/<id>
// answers one event or 404. Like Frigate's nginx on port 5000, a JSON answer
// is kept 5 s per URL unless the request has `X-Cache-Bypass: 1`
// (`X-Cache-Status: HIT|MISS|BYPASS`). Everything stops with the object.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <map>
#include <optional>
#include <mutex>
#include <random>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace secbox::testing {

inline std::string fake_jpeg(char fill, std::size_t n) {
  return std::string("\xFF\xD8\xFF\xE0", 4) + std::string(n, fill) + std::string("\xFF\xD9", 2);
}

class FakeFrigate {
 public:
  FakeFrigate() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~FakeFrigate() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : connections_) t.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }
  // /api/events answers these as Frigate does (see serve()).
  void add_event(nlohmann::json event) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
  }
  // The event with the same id becomes this one (Frigate refining a plate,
  // or ending the event).
  void update_event(nlohmann::json event) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& e : events_) {
      if (e.value("id", "") == event.value("id", "")) e = event;
    }
  }
  std::vector<std::string> event_reads() const {  // /api/events/<id> asked, in order
    std::lock_guard<std::mutex> lock(mutex_);
    return reads_;
  }
  // As Frigate releases before `sort` existed: newest first, always.
  void ignore_sort() { ignore_sort_ = true; }
  std::vector<double> event_queries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return afters_;
  }
  std::vector<std::string> targets() const {  // every request's target, in order
    std::lock_guard<std::mutex> lock(mutex_);
    return targets_;
  }
  int cache_hits() const { return cache_hits_; }

 private:
  bool wait_stop(std::chrono::milliseconds ms) {
    const auto until = std::chrono::steady_clock::now() + ms;
    while (!stop_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return stop_;
  }
  static bool write_all(int c, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  void accept_loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      connections_.emplace_back([this, c] {
        serve(c);
        ::close(c);
      });
    }
  }
  void serve(int c) {
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (stop_ || ::poll(&p, 1, 50) < 0) return;
      if (!(p.revents & POLLIN)) continue;
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<std::size_t>(n));
    }
    ++requests_;
    std::string target = req.substr(4, req.find(' ', 4) - 4);
    std::string path = target.substr(0, target.find('?'));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      targets_.push_back(target);
    }
    std::string lower = req;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    const bool bypass = lower.find("\r\nx-cache-bypass: 1\r\n") != std::string::npos;
    // Frigate's nginx: a JSON answer kept 5 s for its URL.
    const auto answer_json = [&](const std::string& status, const std::string& body) {
      std::string sent = body;
      std::string how = bypass ? "BYPASS" : "MISS";
      {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        auto it = cache_.find(target);
        if (!bypass && it != cache_.end() && now - it->second.first < std::chrono::seconds(5)) {
          sent = it->second.second;
          how = "HIT";
          ++cache_hits_;
        } else if (status.rfind("200", 0) == 0) {
          cache_[target] = {now, body};
        }
      }
      write_all(c, "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nX-Cache-Status: " +
                       how + "\r\nContent-Length: " + std::to_string(sent.size()) +
                       "\r\nConnection: close\r\n\r\n" + sent);
    };
    const auto param = [&](const std::string& k) -> std::optional<std::string> {
      const auto q = target.find('?');
      if (q == std::string::npos) return std::nullopt;
      std::size_t at = q + 1;
      while (at <= target.size()) {
        const auto amp = std::min(target.find('&', at), target.size());
        const std::string kv = target.substr(at, amp - at);
        if (kv.compare(0, k.size() + 1, k + "=") == 0) return kv.substr(k.size() + 1);
        at = amp + 1;
      }
      return std::nullopt;
    };
    int fps = 10;
    if (auto f = target.find("fps="); f != std::string::npos)
      fps = std::max(1, std::atoi(target.c_str() + f + 4));
    if (path.rfind("/api/events/", 0) == 0) {
      const std::string id = path.substr(12);
      std::string body;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        reads_.push_back(id);
        for (const auto& e : events_) {
          if (e.value("id", "") == id) body = e.dump();
        }
      }
      if (body.empty())
        return answer_json("404 Not Found", R"({"success":false,"message":"Event not found"})");
      return answer_json("200 OK", body);
    }
    if (path == "/api/events") {
      // As Frigate's /api/events: `after` and `before` strict (and ignored
      // when 0, as Python's `if after:`), newest first unless sort=date_asc,
      // at most `limit` (100 when not given), and no order among events that
      // share a start time (SQLite's, whatever it is: shuffled here).
      const double after = param("after") ? std::atof(param("after")->c_str()) : 0;
      const double before = param("before") ? std::atof(param("before")->c_str()) : 0;
      const std::size_t limit =
          param("limit") ? std::strtoul(param("limit")->c_str(), nullptr, 10) : 100;
      const bool ascending =
          !ignore_sort_ && param("sort") == std::optional<std::string>("date_asc");
      // in_progress=1: end_time IS NULL; =0: not null.
      const std::optional<std::string> in_progress = param("in_progress");
      nlohmann::json out = nlohmann::json::array();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!in_progress) afters_.push_back(after);
        std::vector<nlohmann::json> match;
        for (const auto& e : events_) {
          const double t = e.value("start_time", 0.0);
          const bool open = !e.contains("end_time") || e["end_time"].is_null();
          if (in_progress && open != (*in_progress == "1")) continue;
          if ((after == 0 || t > after) && (before == 0 || t < before)) match.push_back(e);
        }
        std::shuffle(match.begin(), match.end(), random_);
        std::stable_sort(
            match.begin(), match.end(), [&](const nlohmann::json& a, const nlohmann::json& b) {
              return ascending ? a.value("start_time", 0.0) < b.value("start_time", 0.0)
                               : a.value("start_time", 0.0) > b.value("start_time", 0.0);
            });
        for (std::size_t i = 0; i < match.size() && i < limit; ++i) out.push_back(match[i]);
      }
      return answer_json("200 OK", out.dump());
    }
    if (path.size() > 11 && path.compare(path.size() - 11, 11, "/latest.jpg") == 0) {
      const std::string cam = path.substr(5, path.size() - 16);
      if (cam == "slow") return void(wait_stop(std::chrono::seconds(30)));
      if (cam != "front" && cam != "hd")
        return void(write_all(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
      const auto height = param("height");
      const auto body = height ? fake_jpeg('r', std::strtoul(height->c_str(), nullptr, 10))
                               : fake_jpeg('s', 1000);
      write_all(c, "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
      return;
    }
    const std::string cam = path.substr(5);
    if (cam != "front" && cam != "hd" && cam != "stall" && cam != "bad") {
      return void(write_all(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
    }
    if (!write_all(c,
                   "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n"
                   "Connection: close\r\n\r\n")) {
      return;
    }
    const std::size_t size = cam == "hd" ? 100000 : 2000;
    for (int i = 0; !stop_; ++i) {
      std::string part = "--frame\r\nContent-Type: image/jpeg\r\n\r\n" +
                         fake_jpeg(static_cast<char>('a' + i % 26), size) + "\r\n";
      if (cam == "bad" && i % 2 == 1)
        part = "--frame\r\nContent-Type: text/plain\r\n\r\nnot a picture\r\nGARBAGE";
      // Three pieces: a frame never arrives in one read.
      const std::size_t third = part.size() / 3;
      if (!write_all(c, part.substr(0, third)) || !write_all(c, part.substr(third, third)) ||
          !write_all(c, part.substr(2 * third))) {
        return;
      }
      if (cam == "stall" && i == 0) return void(wait_stop(std::chrono::seconds(60)));
      if (wait_stop(std::chrono::milliseconds(1000 / fps))) return;
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<bool> ignore_sort_{false};
  mutable std::mutex mutex_;
  std::vector<nlohmann::json> events_;
  std::vector<double> afters_;
  std::vector<std::string> reads_;
  std::vector<std::string> targets_;
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::string>> cache_;
  std::atomic<int> cache_hits_{0};
  std::mt19937 random_{std::random_device{}()};
  std::thread acceptor_;
  std::vector<std::thread> connections_;
};

}  // namespace secbox::testing
