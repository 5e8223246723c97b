#include "common/http_client.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <memory>
#include <mutex>

namespace secbox {
namespace {

struct Sink {
  std::string body;
  std::size_t limit;
  bool overflow = false;
};

std::size_t write_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t bytes = size * n;
  if (sink->body.size() + bytes > sink->limit) {
    sink->overflow = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  sink->body.append(data, bytes);
  return bytes;
}

}  // namespace

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace {

// The server's certificate checked against the system store, plus an extra CA
// when one is given (the cloud's own, CLOUD_CA_FILE).
void verify_server(CURL* c, const std::string& ca_file) {
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
}

// What the streamed transfers share: the URL, no signals, a connect time-out,
// curl's low-speed stop (under `low_speed_limit` bytes/s for that long ends
// it), the body handed to on_data and a tick about once a second.
struct Transfer {
  const std::string& url;
  const char* protocols;
  std::chrono::milliseconds connect_timeout;
  long low_speed_limit;
  std::chrono::seconds low_speed_time;
  curl_write_callback on_data;
  curl_xferinfo_callback on_progress;
  void* ctx;
};
void set_transfer(CURL* c, const Transfer& t) {
  curl_easy_setopt(c, CURLOPT_URL, t.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, t.protocols);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(t.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, t.low_speed_limit);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                   std::max<long>(1, static_cast<long>(t.low_speed_time.count())));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, t.on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, t.ctx);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, t.on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, t.ctx);
}

// CURLOPT_OPENSOCKETFUNCTION: the socket only for an address the request
// allows; a refused one makes curl try the next, then fail to connect.
curl_socket_t open_allowed_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  const auto& allow = *static_cast<const std::function<bool(const std::string&)>*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  char text[INET6_ADDRSTRLEN] = {0};
  const void* bytes = nullptr;
  if (address->family == AF_INET)
    bytes = &reinterpret_cast<const sockaddr_in*>(&address->addr)->sin_addr;
  if (address->family == AF_INET6)
    bytes = &reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_addr;
  if (!bytes || !::inet_ntop(address->family, bytes, text, sizeof text) || !allow(text))
    return CURL_SOCKET_BAD;
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

Result<HttpResponse> perform(const HttpRequest& req, bool post) {
  curl_init_once();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Error{Errc::network, "cannot initialise libcurl"};
  curl_slist* headers = curl_slist_append(nullptr, ("Accept: " + req.accept).c_str());
  if (post) headers = curl_slist_append(headers, "Content-Type: application/json");
  if (!req.bearer.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + req.bearer).c_str());
  }
  for (const auto& h : req.headers) {
    if (h.find_first_of("\r\n") != std::string::npos || h.find(':') == std::string::npos) {
      curl_slist_free_all(headers);
      return Error{Errc::invalid, "a request header is not one \"Name: value\" line"};
    }
    headers = curl_slist_append(headers, h.c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_guard(headers, curl_slist_free_all);
  Sink sink{{}, req.max_response};
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, req.protocols.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (req.allow_address) {
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_allowed_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &req.allow_address);
  }
  if (req.cancel) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(
        c, CURLOPT_XFERINFOFUNCTION,
        +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
          return (*static_cast<const std::function<bool()>*>(user))() ? 1 : 0;
        });
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &req.cancel);
  }
  if (post) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.json_body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.json_body.size()));
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<long long>(req.timeout.count(), 10000)));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  verify_server(c, req.ca_file);
  const CURLcode rc = curl_easy_perform(c);
  if (sink.overflow) {
    return Error{Errc::network,
                 "the answer was larger than " + std::to_string(req.max_response) + " bytes"};
  }
  if (rc != CURLE_OK) {
    return Error{Errc::network, std::string(curl_easy_strerror(rc)) +
                                    (errbuf[0] ? std::string(": ") + errbuf : "")};
  }
  HttpResponse res;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
  char* type = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type)
    res.content_type = type;
  res.body = std::move(sink.body);
  return res;
}

}  // namespace

Result<HttpResponse> post_json(const HttpRequest& request) { return perform(request, true); }
Result<HttpResponse> get(const HttpRequest& request) { return perform(request, false); }

Result<long> get_stream(const StreamRequest& request, const StreamHandlers& handlers) {
  curl_init_once();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Error{Errc::network, "cannot initialise libcurl"};
  struct Ctx {
    CURL* curl;
    const StreamHandlers& handlers;
    bool answered = false;
    bool stopped = false;  // by a handler
    long status = 0;
  } ctx{curl.get(), handlers};
  auto on_data = +[](char* data, std::size_t size, std::size_t n, void* user) -> std::size_t {
    auto* c = static_cast<Ctx*>(user);
    if (!c->answered) {
      c->answered = true;
      curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
      char* type = nullptr;
      curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &type);
      if (c->handlers.on_head && !c->handlers.on_head(c->status, type ? type : "")) {
        c->stopped = true;
        return 0;
      }
    }
    if (c->handlers.on_data && !c->handlers.on_data(std::string_view(data, size * n))) {
      c->stopped = true;
      return 0;
    }
    return size * n;
  };
  auto on_progress = +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
    auto* c = static_cast<Ctx*>(user);
    if (c->handlers.on_tick && !c->handlers.on_tick()) {
      c->stopped = true;
      return 1;
    }
    return 0;
  };
  CURL* c = curl.get();
  // An endless stream: under 1 byte/s for low_speed_time ends it.
  set_transfer(c, Transfer{request.url, "http,https", request.connect_timeout, 1L,
                           request.low_speed_time, on_data, on_progress, &ctx});
  const CURLcode rc = curl_easy_perform(c);
  if (!ctx.answered)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ctx.status);  // an answer with no body
  if (rc != CURLE_OK && !ctx.stopped) return Error{Errc::network, curl_easy_strerror(rc)};
  return ctx.status;
}

Result<Downloaded> download_file(const DownloadRequest& request) {
  curl_init_once();
  Downloaded out;
  struct stat st {};
  if (request.resume && ::stat(request.path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<std::uint64_t>(st.st_size) <= request.max_bytes) {
    out.resumed_from = static_cast<std::uint64_t>(st.st_size);
  }
  const int fd = ::open(request.path.c_str(),
                        O_WRONLY | O_CREAT | O_CLOEXEC | (out.resumed_from ? 0 : O_TRUNC), 0600);
  if (fd < 0) return Error{Errc::io, "cannot write " + request.path + ": " + std::strerror(errno)};
  if (out.resumed_from > 0 && ::lseek(fd, static_cast<off_t>(out.resumed_from), SEEK_SET) < 0) {
    ::close(fd);
    return Error{Errc::io, "cannot seek in " + request.path + ": " + std::strerror(errno)};
  }
  struct Ctx {
    CURL* curl = nullptr;
    int fd;
    const DownloadRequest& req;
    std::uint64_t written;  // bytes in the file
    bool checked = false;   // the status was looked at
    long status = 0;
    bool too_large = false, bad_status = false, write_failed = false, cancelled = false;
  } ctx{nullptr, fd, request, out.resumed_from};
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    ::close(fd);
    return Error{Errc::network, "cannot initialise libcurl"};
  }
  ctx.curl = curl.get();
  auto on_data = +[](char* data, std::size_t size, std::size_t n, void* user) -> std::size_t {
    auto* c = static_cast<Ctx*>(user);
    const std::size_t bytes = size * n;
    if (!c->checked) {
      c->checked = true;
      curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
      if (c->status == 200 && c->written > 0) {
        // The server sends the whole file: start it over.
        if (::ftruncate(c->fd, 0) != 0 || ::lseek(c->fd, 0, SEEK_SET) != 0) {
          c->write_failed = true;
          return 0;
        }
        c->written = 0;
      } else if (c->status != 200 && c->status != 206) {
        c->bad_status = true;
        return 0;
      }
    }
    if (c->written + bytes > c->req.max_bytes) {
      c->too_large = true;
      return 0;
    }
    for (std::size_t off = 0; off < bytes;) {
      const ssize_t w = ::write(c->fd, data + off, bytes - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        c->write_failed = true;
        return 0;
      }
      off += static_cast<std::size_t>(w);
    }
    c->written += bytes;
    return bytes;
  };
  auto on_progress = +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
    auto* c = static_cast<Ctx*>(user);
    if (c->req.cancel && c->req.cancel()) {
      c->cancelled = true;
      return 1;
    }
    return 0;
  };
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  // https only (cloud-protocol §7.6); a download under 1 KiB/s that long has stalled.
  set_transfer(c, Transfer{request.url, "https", request.connect_timeout, 1024L,
                           request.low_speed_time, on_data, on_progress, &ctx});
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  verify_server(c, request.ca_file);
  if (out.resumed_from > 0) {
    curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(out.resumed_from));
  }
  const CURLcode rc = curl_easy_perform(c);
  if (!ctx.checked) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ctx.status);
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  out.bytes = ctx.written;
  if (ctx.too_large) {
    ::unlink(request.path.c_str());
    return Error{Errc::too_large,
                 "the file is larger than " + std::to_string(request.max_bytes) + " bytes"};
  }
  if (ctx.write_failed || !synced)
    return Error{Errc::io, "cannot write " + request.path + ": " + std::strerror(errno)};
  if (ctx.bad_status || (rc == CURLE_OK && ctx.status != 200 && ctx.status != 206)) {
    ::unlink(request.path.c_str());
    return Error{Errc::network, "the server answered " + std::to_string(ctx.status)};
  }
  if (ctx.cancelled) return Error{Errc::network, "the download was stopped"};
  if (rc != CURLE_OK) {
    return Error{Errc::network, std::string(curl_easy_strerror(rc)) +
                                    (errbuf[0] ? std::string(": ") + errbuf : "")};
  }
  return out;
}

}  // namespace secbox
