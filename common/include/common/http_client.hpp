#pragma once
// A small HTTP(S) client for the box's calls to the cloud (claim, refresh-jwt)
// and to Frigate:
// libcurl's easy interface, so it blocks: call it from a BlockingPool task.
// The server certificate is verified against the system trust store plus an
// optional extra CA file. The bearer token never reaches a log or an error.
#include <chrono>
#include <string>

#include "common/result.hpp"

namespace secbox {

struct HttpRequest {
  std::string url;
  std::string bearer;     // sent as "Authorization: Bearer …" when not empty
  std::string json_body;  // POSTed as application/json
  std::string ca_file;    // extra trusted CA; empty: the system store only
  std::chrono::milliseconds timeout{15000};
  std::size_t max_response = 1 << 20;
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Errors only when no HTTP answer came back (code "network": DNS, connect,
// TLS, time-out, or an answer larger than max_response).
Result<HttpResponse> post_json(const HttpRequest& request);
// The same rules for a GET (json_body is not sent).
Result<HttpResponse> get(const HttpRequest& request);

// libcurl's global setup, once per process, from any thread: every user of
// libcurl calls it first.
void curl_init_once();

}  // namespace secbox
