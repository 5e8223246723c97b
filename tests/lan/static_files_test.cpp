// The guard app's files: only what is really inside the web dir.
#include "lan/static_files.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "temp_dir.hpp"

namespace secbox::lan {
namespace {

using secbox::testing::TempDir;

class StaticFilesTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string web;
  void SetUp() override {
    web = dir.file("web");
    ::mkdir(web.c_str(), 0755);
    ::mkdir((web + "/assets").c_str(), 0755);
    ::mkdir((web + "/sub").c_str(), 0755);
    dir.write("web/index.html", "<!doctype html>");
    dir.write("web/sub/index.html", "sub");
    dir.write("web/assets/app-1a2b.js", "x");
    dir.write("web/manifest.webmanifest", "{}");
    dir.write("secret.env", "TOKEN=x");
    ::symlink(dir.file("secret.env").c_str(), (web + "/leak.txt").c_str());
    ::symlink("/etc", (web + "/etc").c_str());
    ::symlink((web + "/index.html").c_str(), (web + "/inside.html").c_str());
  }
  std::string code_of(const std::string& p) {
    auto r = resolve_static(web, p);
    return r ? "ok" : std::string(to_string(r.error().code));
  }
};

TEST_F(StaticFilesTest, ServesFilesWithTheirTypeAndCaching) {
  auto r = resolve_static(web, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.value().cache_control, "no-cache");
  r = resolve_static(web, "/assets/app-1a2b.js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(r.value().cache_control, "public, max-age=31536000, immutable");
  EXPECT_EQ(resolve_static(web, "/manifest.webmanifest").value().content_type,
            "application/manifest+json");
  EXPECT_EQ(code_of("/sub"), "ok");
  EXPECT_EQ(code_of("/sub/"), "ok");
  EXPECT_EQ(code_of("/inside.html"), "ok");  // a symlink that stays inside
  EXPECT_EQ(code_of("/%61ssets/app-1a2b.js"), "ok");
}

TEST_F(StaticFilesTest, NothingEscapesTheWebDir) {
  for (const std::string p :
       {"/../secret.env", "/assets/../../secret.env", "/%2e%2e/secret.env", "/%2E%2E/secret.env",
        "/assets/%2e%2e/%2e%2e/secret.env", "/..%2fsecret.env", "/./index.html",
        "/index.html%00.png", "/%00", "/..\\secret.env", "/%zz", "/%2", "relative"}) {
    EXPECT_EQ(code_of(p), "invalid") << p;
  }
  for (const std::string p : {"/leak.txt", "/etc/passwd", "/etc", "/missing.js", "/assets/"}) {
    EXPECT_EQ(code_of(p), "not_found") << p;
  }
}

}  // namespace
}  // namespace secbox::lan
