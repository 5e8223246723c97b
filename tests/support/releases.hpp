#pragma once
// Releases for tests (tools/release): a stand-in daemon that carries a
// version slot as a real one does (a small script: the box reads its
// version from its bytes and never runs it during an update), and release
// folders signed with a given key, good or made wrong on purpose.
#include <sys/stat.h>

#include <string>

#include "release/release.hpp"
#include "temp_dir.hpp"

namespace secbox::testing {

// The slot's mark, put together at run time.
inline std::string version_mark() { return std::string("@(#)secbox-") + "slot:"; }

// A daemon stand-in whose built-in version is `version` ("" for none), with
// `pad` bytes of filler so that downloads have some size.
inline std::string fake_daemon(const std::string& version, std::size_t pad = 0) {
  std::string out = "#!/bin/sh\necho stand-in\nexit 0\n" + std::string(pad, '#') + "\n";
  if (!version.empty()) {
    std::string slot = version_mark() + version;
    slot.resize(version_mark().size() + 65, '\0');
    out += slot;
  }
  return out;
}

struct ReleaseOptions {
  std::uint64_t counter = 1;
  std::size_t pad = 0;
  std::string built_in;        // the daemon's own version when it is not the manifest's
  std::string target;          // "": this machine's
  std::int64_t issued_at = 0;  // 0: now
  std::int64_t valid_s = 3600;
  std::string web_index = "<!doctype html><title>guard app</title>";
};

// A release of `version` in <dir>/<name>, signed with `key_file`.
inline release::Release make_test_release(const TempDir& dir, const std::string& name,
                                          const std::string& version, const std::string& key_file,
                                          const ReleaseOptions& o = {}) {
  ::mkdir(dir.file(name + "-src").c_str(), 0755);
  ::mkdir(dir.file(name + "-src/web").c_str(), 0755);
  dir.write(name + "-src/web/index.html", o.web_index, 0644);
  dir.write(name + "-src/secbox", fake_daemon(o.built_in.empty() ? version : o.built_in, o.pad),
            0755);
  release::ReleaseRequest q;
  q.daemon = dir.file(name + "-src/secbox");
  q.web_dir = dir.file(name + "-src/web");
  q.version = version;
  q.counter = o.counter;
  if (!o.target.empty()) q.target = o.target;
  q.key_file = key_file;
  q.issued_at = o.issued_at;
  q.valid_s = o.valid_s;
  q.out_dir = dir.file(name);
  q.stamp = o.built_in.empty();
  q.zstd_level = 3;
  auto r = release::make_release(q);
  if (!r) throw std::runtime_error("make_test_release: " + r.error().message);
  return r.value();
}

}  // namespace secbox::testing
