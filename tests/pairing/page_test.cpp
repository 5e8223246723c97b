// The pairing pages: whatever was pasted, and whatever the cloud said, is
// shown as text, never as markup.
#include "page.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace secbox::pairing {
namespace {

constexpr const char* kHostile = "</textarea><script>alert('x')</script>\"'&";

TEST(PairingPage, HtmlEscapeCoversEveryMarkupCharacter) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
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

// cloud-protocol §7.7: once the cloud installed a certificate for the box's
// name, the named address (trusted by phones) comes first; the bare
// addresses stay for where a router refuses private DNS answers.
TEST(PairingPage, TheNamedAddressComesFirstOnceTheBoxHasOne) {
  PageModel m;
  m.hostname = "caseta";
  m.addresses = {"192.168.1.20"};
  m.named_links = {"https://192-168-1-20.b7.box.example.com:8443/"};
  const auto links = lan_links(m);
  EXPECT_EQ(links, (std::vector<std::string>{"https://192-168-1-20.b7.box.example.com:8443/",
                                             "https://192.168.1.20:8443/"}));
  EXPECT_NE(render_gone(m).find("https://192-168-1-20.b7.box.example.com:8443/"),
            std::string::npos);
}

}  // namespace
}  // namespace secbox::pairing
