// The pairing pages: whatever was pasted, and whatever the cloud said, is
// shown as text, never as markup.
#include "page.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace secbox::pairing {
namespace {

constexpr const char* kHostile = "</textarea><script>alert('x')</script>\"'&";

TEST(PairingPage, HtmlEscapeCoversEveryMarkupCharacter) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(PairingPage, PastedTextBannerAndFieldErrorsAreShownAsText) {
  PageModel m;
  m.hostname = "caseta<b>";
  m.addresses = {"192.0.2.2"};
  m.cloud = "https://cloud.example.com";
  m.form_token = "1.abc";
  m.text = kHostile;
  m.banner = kHostile;
  m.errors = {{"deviceId\"><x", kHostile}};
  const std::string page = render_form(m);
  EXPECT_EQ(page.find("<script>"), std::string::npos) << page;
  EXPECT_EQ(page.find("</textarea><script"), std::string::npos);
  EXPECT_EQ(page.find("caseta<b>"), std::string::npos);
  EXPECT_EQ(page.find("deviceId\"><x"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(page.find("value=\"1.abc\""), std::string::npos) << "the form carries its token";
}

TEST(PairingPage, ThePairedPageLinksTheLanAppByAddress) {
  PageModel m;
  m.hostname = "caseta";
  m.addresses = {"192.0.2.2", "fd00::2"};
  m.lan_port = 8443;
  const auto links = lan_links(m);
  ASSERT_FALSE(links.empty());
  EXPECT_NE(std::find(links.begin(), links.end(), "https://192.0.2.2:8443/"), links.end());
  EXPECT_NE(std::find(links.begin(), links.end(), "https://[fd00::2]:8443/"), links.end());
  const std::string page = render_paired(m, "dev<1>");
  EXPECT_EQ(page.find("dev<1>"), std::string::npos);
  EXPECT_NE(page.find("https://192.0.2.2:8443/"), std::string::npos);
}

}  // namespace
}  // namespace secbox::pairing
