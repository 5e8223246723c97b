#include "update/manifest.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/time.hpp"
#include "update/versions.hpp"

namespace secbox::update {
namespace {

Error malformed(const std::string& why) { return Error{Errc::invalid, why}; }
Error refused(const std::string& why) { return Error{Errc::forbidden, why}; }

std::int64_t unix_s(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// A flat object of strings and unsigned integers, each key once: what a
// manifest is. Anything else stops the parse (nlohmann's SAX interface).
class FlatObject : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::map<std::string, nlohmann::json> fields;
  std::string error;

  bool null() override { return fail("has a null field"); }
  bool boolean(bool) override { return fail("has a true or false field"); }
  bool number_integer(number_integer_t v) override { return put(v); }
  bool number_unsigned(number_unsigned_t v) override { return put(v); }
  bool number_float(number_float_t, const string_t&) override {
    return fail("has a field that is not an integer");
  }
  bool string(string_t& v) override { return put(v); }
  bool binary(binary_t&) override { return fail("has a binary field"); }
  bool start_object(std::size_t) override {
    if (depth_++ != 0) return fail("has a field that is an object");
    return true;
  }
  bool end_object() override { return --depth_ == 0; }
  bool start_array(std::size_t) override {
    return fail(depth_ == 0 ? "is not a JSON object" : "has a field that is an array");
  }
  bool end_array() override { return false; }
  bool key(string_t& k) override {
    if (fields.count(k) != 0) return fail("gives the field " + k.substr(0, 32) + " twice");
    key_ = k;
    return true;
  }
  bool parse_error(std::size_t at, const std::string&,
                   const nlohmann::detail::exception&) override {
    if (error.empty()) error = "is not JSON (at byte " + std::to_string(at) + ")";
    return false;
  }

 private:
  bool fail(const std::string& why) {
    if (error.empty()) error = why;
    return false;
  }
  bool put(nlohmann::json v) {
    if (depth_ != 1) return fail("is not a JSON object");
    fields[key_] = std::move(v);
    return true;
  }
  int depth_ = 0;
  std::string key_;
};

bool is_lower_hex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> read_key(const std::string& pem,
                                                             bool private_key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* k = nullptr;
  if (bio) {
    k = private_key ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                    : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  }
  return {k, EVP_PKEY_free};
}

}  // namespace

std::string this_target() {
#if defined(__x86_64__)
  return "linux-amd64";
#elif defined(__aarch64__)
  return "linux-arm64";
#else
  return "linux-unknown";
#endif
}

Result<Manifest> parse_manifest(std::string_view json) {
  if (json.size() > kMaxManifestBytes) return malformed("the manifest is over 4 KiB");
  FlatObject sax;
  const bool parsed = nlohmann::json::sax_parse(json.begin(), json.end(), &sax);
  if (!parsed)
    return malformed("the manifest " +
                     (sax.error.empty() ? std::string("is not a JSON object") : sax.error));
  static const std::set<std::string> kFields{"product", "target", "version",  "counter",
                                             "sha256",  "size",   "issuedAt", "expiresAt"};
  for (const auto& [k, v] : sax.fields) {
    if (kFields.count(k) == 0)
      return malformed("the manifest has an unknown field " + k.substr(0, 32));
  }
  for (const auto& k : kFields) {
    if (sax.fields.count(k) == 0) return malformed("the manifest has no " + k);
  }
  auto text = [&](const char* k) -> const std::string* {
    const auto& v = sax.fields[k];
    return v.is_string() ? v.get_ptr<const std::string*>() : nullptr;
  };
  auto count = [&](const char* k) -> std::optional<std::uint64_t> {
    const auto& v = sax.fields[k];
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
      return static_cast<std::uint64_t>(v.get<std::int64_t>());
    return std::nullopt;
  };
  Manifest m;
  for (const char* k : {"product", "target", "version", "sha256", "issuedAt", "expiresAt"}) {
    if (text(k) == nullptr)
      return malformed(std::string("the manifest's ") + k + " is not a string");
  }
  m.product = *text("product");
  m.target = *text("target");
  m.version = *text("version");
  m.sha256 = *text("sha256");
  if (m.product.empty() || m.product.size() > 64)
    return malformed("the manifest's product is not a name");
  if (m.target.empty() || m.target.size() > 64 ||
      m.target.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return malformed("the manifest's target is not a platform name");
  }
  if (!VersionStore::valid_version(m.version)) {
    return malformed(
        "the manifest's version is not 1 to 64 of letters, digits, '.', '+', '_', '-'");
  }
  if (!is_lower_hex64(m.sha256))
    return malformed("the manifest's sha256 is not 64 lowercase hexadecimal digits");
  const auto counter = count("counter");
  const auto size = count("size");
  if (!counter || *counter > (1ull << 53))
    return malformed("the manifest's counter is not an integer of 0 or more");
  if (!size || *size == 0 || *size > kMaxBundleBytes)
    return malformed("the manifest's size is not 1 byte to 64 MiB");
  m.counter = *counter;
  m.size = *size;
  const auto issued = parse_rfc3339(*text("issuedAt"));
  const auto expires = parse_rfc3339(*text("expiresAt"));
  if (!issued || !expires)
    return malformed("the manifest's issuedAt and expiresAt must be RFC 3339 times");
  m.issued_at = unix_s(*issued);
  m.expires_at = unix_s(*expires);
  if (m.expires_at <= m.issued_at || m.expires_at - m.issued_at > kMaxManifestLifeS) {
    return malformed(
        "the manifest's expiresAt must be after its issuedAt, and at most 30 days after");
  }
  return m;
}

std::string manifest_json(const Manifest& m) {
  using std::chrono::seconds;
  using std::chrono::system_clock;
  nlohmann::ordered_json j{
      {"product", m.product},
      {"target", m.target},
      {"version", m.version},
      {"counter", m.counter},
      {"sha256", m.sha256},
      {"size", m.size},
      {"issuedAt", format_rfc3339(system_clock::time_point(seconds(m.issued_at)))},
      {"expiresAt", format_rfc3339(system_clock::time_point(seconds(m.expires_at)))},
  };
  return j.dump();
}

Result<void> verify_signature(std::string_view message, std::string_view signature,
                              const std::string& public_key_pem) {
  auto key = read_key(public_key_pem, false);
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return Error{Errc::unavailable, "the pinned update key is not an Ed25519 public key in PEM"};
  }
  if (signature.size() != 64) return malformed("the signature is not 64 bytes");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return Error{Errc::internal, "the signature cannot be checked"};
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
    return refused("the signature is not the pinned key's signature of this manifest");
  }
  return ok();
}

Result<std::string> sign(std::string_view message, const std::string& private_key_pem) {
  auto key = read_key(private_key_pem, true);
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return malformed("the signing key is not an Ed25519 private key in PEM");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char out[64];
  std::size_t n = sizeof out;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), out, &n, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return Error{Errc::internal, "cannot sign"};
  }
  return std::string(reinterpret_cast<const char*>(out), n);
}

Result<Offer> check_offer(std::string_view manifest_b64, std::string_view signature_b64,
                          const std::string& public_key_pem, const BoxRecord& box,
                          std::string* version_seen) {
  // Malformed fields first: nothing is judged from a field that cannot be read.
  if (manifest_b64.empty() || manifest_b64.size() > (kMaxManifestBytes + 2) / 3 * 4) {
    return malformed("manifest must be the base64 of at most 4 KiB");
  }
  auto bytes = base64_decode(manifest_b64);
  if (!bytes || bytes->empty()) return malformed("manifest is not base64");
  if (bytes->size() > kMaxManifestBytes) return malformed("the manifest is over 4 KiB");
  auto signature = signature_b64.size() <= 100 ? base64_decode(signature_b64) : std::nullopt;
  if (!signature || signature->size() != 64)
    return malformed("signature is not the base64 of 64 bytes");

  // Then the contract's order, the first refusal wins.
  if (auto v = verify_signature(*bytes, *signature, public_key_pem); !v) return v.error();
  auto parsed = parse_manifest(*bytes);
  if (!parsed) return parsed.error();
  const Manifest& m = parsed.value();
  if (version_seen != nullptr) *version_seen = m.version;
  if (m.product != "secbox")
    return refused("the manifest is for product " + m.product + ", not secbox");
  if (m.target != box.target)
    return refused("the manifest is for " + m.target + ", and this box is " + box.target);
  if (box.now >= m.expires_at) {
    return refused(
        "the manifest expired at " +
        format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(m.expires_at))));
  }
  if (m.version == box.running) return refused("version " + m.version + " is the one running");
  if (m.counter < box.counter) {
    return refused("the manifest's counter " + std::to_string(m.counter) + " is below this box's " +
                   std::to_string(box.counter) + " (a release older than one it has run)");
  }
  if (auto it = box.rolled_back.find(m.version);
      it != box.rolled_back.end() && m.counter <= it->second) {
    return refused("version " + m.version +
                   " was rolled back on this box; it is refused until a higher counter than " +
                   std::to_string(it->second));
  }
  return Offer{m, std::move(*bytes)};
}

}  // namespace secbox::update
