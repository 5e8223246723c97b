// The LAN API: the guard app and the cameras' HLS segments, from disk.
#include "api_impl.hpp"

namespace secbox::lan {

// Resolved and read on a worker: the loop never touches the disk.
void LanApi::Impl::static_file(const httpd::Request& r, httpd::Reply reply) {
  struct Loaded {
    Result<StaticFile> file;
    Result<std::string> content = std::string();
  };
  workers.run(
      [dir = settings.web_dir, path = r.path] {
        Loaded l{resolve_static(dir, path)};
        if (l.file) l.content = read_file(l.file.value().path, 8 << 20);
        return l;
      },
      [reply, named = settings.named_origins ? settings.named_origins() : std::string()](Loaded l) {
        if (!l.file) {
          return reply(l.file.error().code == Errc::invalid
                           ? error(400, "bad_path", l.file.error().message)
                           : error(404, "not_found", "No such page."));
        }
        if (!l.content) return reply(error(404, "not_found", "No such page."));
        httpd::Response res;
        res.content_type = l.file.value().content_type;
        res.body = std::move(l.content).value();
        res.headers.emplace_back("Cache-Control", l.file.value().cache_control);
        // The app runs only its own code: scripts, styles, workers and
        // requests from the box (and its named origins); pictures from the
        // box (snapshots and ban photos are blob: URLs); video through
        // hls.js (blob:).
        res.headers.emplace_back("Content-Security-Policy",
                                 app_policy(named));  // with the server's nosniff, no-referrer
        reply(std::move(res));
      });
}

// /hls/<camera>/index.m3u8 or /hls/<camera>/seg-<n>.ts, nothing else: the
// names are checked whole, so no path can leave the camera's folder.
void LanApi::Impl::hls_file(const httpd::Request& r, httpd::Reply reply) {
  static const std::regex kPath(
      R"(^/hls/([a-z0-9][a-z0-9_-]{0,31})/(index\.m3u8|seg-[0-9]{1,20}\.ts)$)");
  std::smatch m;
  if (settings.hls_dir.empty() || !std::regex_match(r.path, m, kPath)) {
    return reply(error(404, "not_found", "No such stream file."));
  }
  const bool playlist = m[2] == "index.m3u8";
  workers.run([path = settings.hls_dir + "/" + m[1].str() + "/" +
                      m[2].str()] { return read_file(path, 16 << 20); },
              [reply, playlist](Result<std::string> content) {
                if (!content)
                  return reply(
                      error(404, "not_found", "No such stream file (the camera may be starting)."));
                httpd::Response res;
                res.content_type = playlist ? "application/vnd.apple.mpegurl" : "video/mp2t";
                // The playlist changes every segment; a segment never changes.
                res.headers.emplace_back("Cache-Control",
                                         playlist ? "no-cache, no-store" : "private, max-age=60");
                res.body = std::move(content).value();
                reply(std::move(res));
              });
}

}  // namespace secbox::lan
