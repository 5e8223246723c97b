#pragma once
// A small HTTP(S) client for the box's calls to the cloud (claim, refresh-jwt)
// and to Frigate:
// libcurl's easy interface, so it blocks: call it from a BlockingPool task.
// The server certificate is verified against the system trust store plus an
// optional extra CA file. The bearer token never reaches a log or an error.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include <string_view>

#include "common/result.hpp"

namespace secbox {

struct HttpRequest {
  std::string url;
  std::string bearer;     // sent as "Authorization: Bearer …" when not empty
  std::string json_body;  // POSTed as application/json
  std::string ca_file;    // extra trusted CA; empty: the system store only
  std::chrono::milliseconds timeout{15000};
  std::size_t max_response = 1 << 20;
  std::string accept = "application/json";
  std::vector<std::string> headers;      // more "Name: value" lines (no CR or LF: refused)
  std::string protocols = "http,https";  // what the URL may use (curl's names)
  // Set: each address curl would connect to is asked first (after DNS, so a
  // name that resolves elsewhere is caught); false refuses it. Proxies from
  // the environment are then not used. Redirects are never followed.
  std::function<bool(const std::string& address)> allow_address;
  std::function<bool()> cancel;  // asked about once a second; true: stop now (error "network")
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
};

// Errors only when no HTTP answer came back (Errc::network: DNS, connect,
// TLS, time-out, or an answer larger than max_response; Errc::invalid for a
// header that would break the request).
Result<HttpResponse> post_json(const HttpRequest& request);
// The same rules for a GET (json_body is not sent).
Result<HttpResponse> get(const HttpRequest& request);

// A GET whose body is handed over as it arrives, for as long as it lasts (an
// MJPEG stream): no total time limit; connect_timeout until the server
// answers, and the transfer ends when nothing arrives for low_speed_time.
// Each handler may stop the transfer by returning false.
struct StreamHandlers {
  // Once the answer's head is in: its status and Content-Type.
  std::function<bool(long status, const std::string& content_type)> on_head;
  // Each piece of the body, in order.
  std::function<bool(std::string_view piece)> on_data;
  // About once a second, also while nothing arrives (stop and stall checks).
  std::function<bool()> on_tick;
};
struct StreamRequest {
  std::string url;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::seconds low_speed_time{5};
};
// The answer's status (0: none came) once the transfer ends; an Error
// ("network") only when it failed for a reason of its own, not when a
// handler stopped it.
Result<long> get_stream(const StreamRequest& request, const StreamHandlers& handlers);

// A GET saved to a file (a software update, cloud-protocol §7.6): written to
// `path` as it arrives, never more than max_bytes. With `resume`, a partial
// file already at `path` is continued with a Range request; a server that
// answers the whole file instead (200) starts it over. `cancel`, when set,
// stops the transfer about once a second. Errors: Errc::network (no complete
// answer; what arrived stays for a resume; or a status other than 200/206,
// the file removed), Errc::too_large (over max_bytes, removed), Errc::io
// (cannot write).
struct DownloadRequest {
  std::string url;
  std::string path;
  std::string ca_file;  // extra trusted CA, as HttpRequest
  std::uint64_t max_bytes = 0;
  bool resume = true;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::seconds low_speed_time{30};  // under 1 KiB/s this long: failed
  std::function<bool()> cancel;             // true: stop now
};
struct Downloaded {
  std::uint64_t bytes = 0;         // the file's size at the end
  std::uint64_t resumed_from = 0;  // bytes kept from an earlier try
};
Result<Downloaded> download_file(const DownloadRequest& request);

// libcurl's global setup, once per process, from any thread: every user of
// libcurl calls it first.
void curl_init_once();

}  // namespace secbox
