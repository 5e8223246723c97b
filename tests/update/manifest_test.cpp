// The manifest of cloud-protocol §7.6, with real Ed25519 keys: parsed
// strictly (every field with its type, nothing more, nothing twice, at most
// 4 KiB, at most 30 days valid), and judged in the contract's order: the
// signature first (a manifest for another product signed by another key is
// refused for its signature), then product and target, expiry, the running
// version, the counter, a rolled-back version. The built-in version read
// from a binary's bytes and stamped into a copy.
#include "update/manifest.hpp"

#include <gtest/gtest.h>

#include "common/base64.hpp"
#include "releases.hpp"
#include "update/built_in.hpp"
#include "update/versions.hpp"

#include <nlohmann/json.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

namespace secbox::update {
namespace {

struct Key {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{
      EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free};
  std::string pem(bool is_private) const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (is_private) {
      PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_bio_PUBKEY(bio.get(), pkey.get());
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
  }
};

constexpr std::int64_t kNow = 1796000000;

Manifest sample() {
  Manifest m;
  m.product = "secbox";
  m.target = this_target();
  m.version = "2.0.0";
  m.counter = 5;
  m.sha256 = std::string(64, 'a');
  m.size = 1000;
  m.issued_at = kNow - 3600;
  m.expires_at = kNow + 3600;
  return m;
}

BoxRecord box() {
  BoxRecord b;
  b.running = "1.0.0";
  b.counter = 5;
  b.now = kNow;
  return b;
}

struct Signed {
  std::string manifest, signature;
};

Signed signed_by(const Key& k, const std::string& json) {
  return {base64_encode(json), base64_encode(sign(json, k.pem(true)).value())};
}

TEST(Manifest, RoundTripsAndIsParsedStrictly) {
  const Manifest m = sample();
  auto back = parse_manifest(manifest_json(m));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back.value().version, "2.0.0");
  EXPECT_EQ(back.value().counter, 5u);
  EXPECT_EQ(back.value().expires_at, m.expires_at);

  const std::string j = manifest_json(m);
  auto without_last = j.substr(0, j.size() - 1);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"[]", "not a JSON object"},
      {"not json", "not JSON"},
      {without_last + ",\"extra\":1}", "unknown field extra"},
      {without_last + ",\"version\":\"9.9.9\"}", "twice"},
      {without_last + ",\"nested\":{}}", "an object"},
      {"{\"product\":\"secbox\"}", "has no"},
      {std::string(4097, ' '), "over 4 KiB"},
  };
  for (const auto& [text, says] : bad) {
    auto r = parse_manifest(text);
    ASSERT_FALSE(r) << text.substr(0, 80);
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
  }
  auto field = [&](const std::string& key, const std::string& value) {
    nlohmann::json o = nlohmann::json::parse(j);
    o[key] = nlohmann::json::parse(value);
    return parse_manifest(o.dump());
  };
  EXPECT_FALSE(field("counter", "-1"));
  EXPECT_FALSE(field("counter", "1.5"));
  EXPECT_FALSE(field("counter", "\"5\""));
  EXPECT_FALSE(field("size", "0"));
  EXPECT_FALSE(field("size", "67108865"));
  EXPECT_FALSE(field("sha256", "\"" + std::string(64, 'A') + "\"")) << "lowercase only";
  EXPECT_FALSE(field("version", "\"../etc\""));
  EXPECT_FALSE(field("target", "\"Linux AMD64\""));
  EXPECT_FALSE(field("issuedAt", "\"yesterday\""));
  EXPECT_FALSE(field("expiresAt", "\"2026-11-01T00:00:00Z\"")) << "before issuedAt";
  Manifest long_life = m;
  long_life.expires_at = m.issued_at + 31 * 24 * 3600;
  EXPECT_FALSE(parse_manifest(manifest_json(long_life))) << "more than 30 days";
  EXPECT_TRUE(field("issuedAt", "\"2026-11-29T06:00:00.5+01:00\""))
      << "fractions and offsets are read";
}

TEST(Manifest, OffersAreJudgedInTheContractsOrder) {
  Key key, other;
  const std::string pub = key.pem(false);
  auto judge = [&](const Signed& s, const BoxRecord& b = box()) {
    return check_offer(s.manifest, s.signature, pub, b);
  };
  auto refused = [&](const Result<Offer>& r, const std::string& says) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::forbidden) << r.error().message;
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
  };
  auto good = judge(signed_by(key, manifest_json(sample())));
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(good.value().bytes, manifest_json(sample()));

  Manifest wrong = sample();
  wrong.product = "other";
  refused(judge(signed_by(other, manifest_json(wrong))), "signature");  // the signature comes first
  Signed swapped = signed_by(key, manifest_json(sample()));
  Manifest elsewhere = sample();
  elsewhere.version = "2.0.1";
  swapped.signature = signed_by(key, manifest_json(elsewhere)).signature;
  refused(judge(swapped), "signature");
  refused(judge(signed_by(key, manifest_json(wrong))), "product other");
  wrong = sample();
  wrong.target = "linux-arm64";
  if (this_target() == "linux-arm64") wrong.target = "linux-amd64";
  refused(judge(signed_by(key, manifest_json(wrong))), "this box is " + this_target());
  BoxRecord late = box();
  late.now = kNow + 3600;
  refused(judge(signed_by(key, manifest_json(sample())), late), "expired");
  BoxRecord same = box();
  same.running = "2.0.0";
  refused(judge(signed_by(key, manifest_json(sample())), same), "the one running");
  BoxRecord ahead = box();
  ahead.counter = 6;
  refused(judge(signed_by(key, manifest_json(sample())), ahead), "below this box's 6");
  BoxRecord rolled = box();
  rolled.rolled_back["2.0.0"] = 5;
  refused(judge(signed_by(key, manifest_json(sample())), rolled), "rolled back");
  Manifest higher = sample();
  higher.counter = 6;
  EXPECT_TRUE(judge(signed_by(key, manifest_json(higher)), rolled)) << "a higher counter lifts it";

  // Malformed fields are invalid_args, not refusals.
  auto malformed = [&](const std::string& m, const std::string& s) {
    auto r = check_offer(m, s, pub, box());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::invalid) << r.error().message;
  };
  const Signed ok = signed_by(key, manifest_json(sample()));
  malformed("", ok.signature);
  malformed("%%%", ok.signature);
  malformed(base64_encode(std::string(4097, 'x')), ok.signature);
  malformed(ok.manifest, base64_encode("short"));
  malformed(ok.manifest, "");
  auto no_key = check_offer(ok.manifest, ok.signature, "not a key", box());
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().code, Errc::unavailable);
}

TEST(BuiltInVersion, ReadFromTheBytesAndStampedIntoACopy) {
  using secbox::testing::fake_daemon;
  EXPECT_EQ(built_in_version_of(fake_daemon("1.2.3")).value(), "1.2.3");
  EXPECT_FALSE(built_in_version_of(fake_daemon("")));
  EXPECT_FALSE(built_in_version_of(fake_daemon("1.0.0") + fake_daemon("2.0.0"))) << "two slots";
  auto stamped = stamp_version(fake_daemon("0.1.0"), "2026.12.07+g1");
  ASSERT_TRUE(stamped);
  EXPECT_EQ(stamped.value().size(), fake_daemon("0.1.0").size()) << "in place";
  EXPECT_EQ(built_in_version_of(stamped.value()).value(), "2026.12.07+g1");
  EXPECT_FALSE(stamp_version(fake_daemon("0.1.0"), "../x"));
  EXPECT_FALSE(stamp_version("no slot here", "1.0.0"));
  EXPECT_TRUE(VersionStore::valid_version(built_in_version())) << "this test binary's own";
}

}  // namespace
}  // namespace secbox::update
