// Ban photos through the box, fetched from a real HTTPS peer (the cloud
// simulator): kept on disk and in memory, and every way a compromised cloud
// could use the fetch refused before a byte is kept: another address on the
// LAN, plain http, a redirect, something that is not an image, too much.
#include "lan/ban_photos.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <thread>

#include "cloudsim/cloudsim.hpp"
#include "common/url.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"

namespace secbox::lan {
namespace {

using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;

const std::string& kPng = secbox::testing::kTinyPng;

class BanPhotosTest : public ::testing::Test {
 protected:
  TempDir dir;
  boost::asio::io_context io;
  cloudsim::CloudSim cloud{cloudsim::Options{dir.path(), 0, cloudsim::CertMode::trusted, 3600s}};

  void SetUp() override {
    ::mkdir(dir.file("files").c_str(), 0700);
    cloud.start();
  }

  BanPhotoSettings settings() {
    BanPhotoSettings s;
    s.dir = dir.file("photos");
    s.ca_file = cloud.ca_file();
    s.cloud_origins = [this] { return std::vector<std::string>{url_origin(cloud.base_url())}; };
    return s;
  }

  std::string publish(const std::string& name, const std::string& bytes) {
    dir.write("files/" + name, bytes);
    return cloud.publish(name, dir.file("files/" + name));
  }

  Result<Photo> get(BanPhotos& photos, const std::string& url) {
    std::optional<Result<Photo>> got;
    photos.get(url, [&](Result<Photo> r) { got = std::move(r); });
    run_until(
        io, [&] { return got.has_value(); }, 20s);
    if (!got) return Error{Errc::timeout, "no answer"};
    return std::move(*got);
  }

  std::vector<std::string> cached_files() {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.file("photos").c_str())) {
      while (auto* e = ::readdir(d)) {
        if (e->d_name[0] != '.') names.push_back(e->d_name);
      }
      ::closedir(d);
    }
    return names;
  }
};

TEST_F(BanPhotosTest, APhotoIsFetchedOnceThenServedFromMemoryAndFromDiskWithTheCloudDown) {
  const std::string url = publish("b_1.png", kPng);
  {
    BanPhotos photos(io, settings());
    auto first = get(photos, url);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first.value().content_type, "image/png");
    EXPECT_EQ(*first.value().bytes, kPng);
    auto again = get(photos, url);
    ASSERT_TRUE(again);
    EXPECT_EQ(cloud.file_requests(), 1) << "the second one came from memory";
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("photos").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(cached_files().size(), 1u);
  ASSERT_EQ(::stat(dir.file("photos/" + cached_files()[0]).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  cloud.stop();  // the internet is down; the box restarted
  BanPhotos photos(io, settings());
  auto kept = get(photos, url);
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ(*kept.value().bytes, kPng);
}

TEST_F(BanPhotosTest, AnAddressOnTheLanThatIsNotTheCloudsIsNeverConnectedTo) {
  // Another HTTPS server on this host, trusted, serving a real image: what
  // a camera or the router would be on the booth's LAN.
  ::mkdir(dir.file("lan").c_str(), 0700);
  cloudsim::CloudSim lan_device{
      cloudsim::Options{dir.file("lan"), 0, cloudsim::CertMode::trusted, 3600s}};
  lan_device.start();
  dir.write("files/lan.png", kPng);
  const std::string lan_url = lan_device.publish("lan.png", dir.file("files/lan.png"));
  BanPhotos photos(io, settings());
  auto r = get(photos, lan_url);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  EXPECT_NE(r.error().message.find("not a public address"), std::string::npos) << r.error().message;
  EXPECT_EQ(lan_device.file_requests(), 0) << "the LAN device was reached";
  // localhost at the cloud's port is another origin as well.
  const std::string by_name =
      "https://localhost:" + std::to_string(url_port(cloud.base_url())) + "/files/x.png";
  auto named = get(photos, by_name);
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().code, Errc::invalid);
  EXPECT_EQ(cloud.file_requests(), 0);
  EXPECT_EQ(photos.refused(), 2u);
}

TEST_F(BanPhotosTest, PlainHttpRedirectsNonImagesAndOversizedAnswersAreRefused) {
  BanPhotoSettings s = settings();
  s.max_bytes = 64 * 1024;
  BanPhotos photos(io, s);
  auto reason = [&](const std::string& url) {
    auto r = get(photos, url);
    if (r) return std::string("fetched");
    return std::string(to_string(r.error().code)) + ": " + r.error().message;
  };
  EXPECT_NE(reason("http://" + cloud.base_url().substr(8) + "/files/a.png").find("not https"),
            std::string::npos);
  EXPECT_NE(
      reason("https://user:pw@" + cloud.base_url().substr(8) + "/files/a.png").find("user name"),
      std::string::npos);
  const std::string target = publish("real.png", kPng);
  cloud.redirect("moved.png", target);
  EXPECT_NE(reason(cloud.base_url() + "/files/moved.png").find("redirect"), std::string::npos);
  EXPECT_NE(reason(publish("page.png", "<html><script>alert(1)</script></html>"))
                .find("not a JPEG, PNG or WebP"),
            std::string::npos);
  EXPECT_NE(
      reason(publish("huge.png", kPng + std::string(100 * 1024, 'x'))).find("larger than 65536"),
      std::string::npos);
  EXPECT_NE(reason(cloud.base_url() + "/files/missing.png").find("answered 404"),
            std::string::npos);
  EXPECT_TRUE(cached_files().empty()) << "nothing refused is kept";

  // A refused URL is not fetched again before retry_after.
  const int before = cloud.file_requests();
  EXPECT_NE(reason(cloud.base_url() + "/files/page.png").find("invalid"), std::string::npos);
  EXPECT_EQ(cloud.file_requests(), before);
  EXPECT_EQ(reason(target), "fetched");
}

TEST_F(BanPhotosTest, TheDiskCacheStaysUnderItsBoundOldestFirst) {
  BanPhotoSettings s = settings();
  s.max_total = 25 * 1024;
  s.memory_bytes = 0;
  BanPhotos photos(io, s);
  std::vector<std::string> urls;
  for (int i = 0; i < 4; ++i) {
    urls.push_back(publish("p" + std::to_string(i) + ".png",
                           kPng + std::string(10 * 1024, static_cast<char>('a' + i))));
    ASSERT_TRUE(get(photos, urls.back()));
    std::this_thread::sleep_for(20ms);  // distinct modification times
  }
  EXPECT_EQ(cached_files().size(), 2u);
  const int before = cloud.file_requests();
  ASSERT_TRUE(get(photos, urls[3]));
  EXPECT_EQ(cloud.file_requests(), before) << "the newest is kept";
  ASSERT_TRUE(get(photos, urls[0]));
  EXPECT_EQ(cloud.file_requests(), before + 1) << "the oldest was dropped";
}

TEST_F(BanPhotosTest, PrefetchFetchesEachPhotoOnceInTheBackground) {
  BanPhotos photos(io, settings());
  std::vector<std::string> urls;
  for (int i = 0; i < 5; ++i) urls.push_back(publish("f" + std::to_string(i) + ".png", kPng));
  photos.prefetch(urls);
  photos.prefetch(urls);  // again before it is done: nothing twice
  ASSERT_TRUE(run_until(
      io, [&] { return photos.fetched() == 5; }, 20s));
  EXPECT_EQ(cloud.file_requests(), 5);
  EXPECT_EQ(cached_files().size(), 5u);
}

TEST(BanPhotoChecks, UrlsAndImageTypes) {
  EXPECT_TRUE(BanPhotos::check_url("https://cdn.example.com/bans/b_1.jpg?sig=abc"));
  EXPECT_FALSE(BanPhotos::check_url("http://cdn.example.com/b.jpg"));
  EXPECT_FALSE(BanPhotos::check_url("file:///etc/shadow"));
  EXPECT_FALSE(BanPhotos::check_url("https://"));
  EXPECT_FALSE(BanPhotos::check_url("https://a b/c"));
  EXPECT_FALSE(BanPhotos::check_url("https://x@evil/c"));
  EXPECT_FALSE(BanPhotos::check_url("https://host:99999/c"));
  EXPECT_FALSE(BanPhotos::check_url("https://h/" + std::string(3000, 'a')));
  EXPECT_EQ(BanPhotos::image_type(std::string("\xff\xd8\xff\xe0", 4)), "image/jpeg");
  EXPECT_EQ(BanPhotos::image_type(kPng), "image/png");
  EXPECT_EQ(BanPhotos::image_type(std::string("RIFF\x10\x00\x00\x00WEBPVP8 ", 16)), "image/webp");
  EXPECT_EQ(BanPhotos::image_type("<svg onload=alert(1)>"), "");
  EXPECT_EQ(BanPhotos::image_type(""), "");
}

}  // namespace
}  // namespace secbox::lan
