#include "lan/certificate.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>

#include "common/atomic_file.hpp"
#include "common/certificates.hpp"
#include "common/time.hpp"

namespace secbox::lan {
namespace {

constexpr auto kRenewBefore = std::chrono::hours(24 * 30);

struct Parsed {
  std::chrono::system_clock::time_point not_after;
  std::vector<std::string> names;  // DNS and IP SANs, as text
  bool key_matches = false;        // the key file holds this certificate's private key
};

// A renewal writes the key, then the certificate: a crash between the two
// leaves a certificate with a key that is not its own, which no TLS context
// accepts. Such a pair is made again, never kept.
bool key_matches(X509* cert, const std::string& key_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  if (!bio) return false;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  const bool ok = key && X509_check_private_key(cert, key.get()) == 1;
  ERR_clear_error();
  return ok;
}

std::optional<Parsed> parse(const std::string& pem, const std::string& key_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return std::nullopt;
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return std::nullopt;
  Parsed p;
  p.key_matches = key_matches(cert.get(), key_pem);
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) return std::nullopt;
  p.not_after = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type == GEN_DNS) {
      p.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                           static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
    } else if (n->type == GEN_IPADD) {
      char* text = nullptr;
      // ipaddress_to_string is not public; print through a BIO instead.
      std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
      GENERAL_NAME_print(out.get(), const_cast<GENERAL_NAME*>(n));
      long len = BIO_get_mem_data(out.get(), &text);
      std::string s(text, static_cast<std::size_t>(len));
      if (s.rfind("IP Address:", 0) == 0) s = s.substr(11);
      std::transform(s.begin(), s.end(), s.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      p.names.push_back(s);
    }
  }
  GENERAL_NAMES_free(sans);
  return p;
}

// OpenSSL prints IPv6 SANs in full ("FD00:0:0:0:0:0:0:5"); compare parsed forms.
std::string canonical_ip(const std::string& text) {
  unsigned char buf[16];
  char out[64];
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1 && inet_ntop(AF_INET6, buf, out, sizeof out))
    return out;
  return text;
}

}  // namespace

Result<LanCertificate> ensure_lan_certificate(const LanCertificateRequest& r) {
  const std::string cert_path = r.dir + "/cert.pem", key_path = r.dir + "/key.pem";
  std::vector<std::string> dns{r.hostname, "secbox.local", "localhost"};
  std::vector<std::string> ips = r.addresses;
  for (const char* lo : {"127.0.0.1", "::1"}) {
    if (std::find(ips.begin(), ips.end(), lo) == ips.end()) ips.emplace_back(lo);
  }
  LanCertificate out;
  auto cert = read_file(cert_path, 1 << 20);
  auto key = read_file(key_path, 1 << 20);
  if (cert && key) {
    if (auto p = parse(cert.value(), key.value())) {
      std::vector<std::string> have;
      for (const auto& n : p->names) have.push_back(canonical_ip(n));
      const bool names_ok =
          std::all_of(dns.begin(), dns.end(),
                      [&](const std::string& n) {
                        return std::find(have.begin(), have.end(), n) != have.end();
                      }) &&
          std::all_of(ips.begin(), ips.end(), [&](const std::string& n) {
            return std::find(have.begin(), have.end(), canonical_ip(n)) != have.end();
          });
      if (names_ok && p->key_matches &&
          p->not_after - std::chrono::system_clock::now() > kRenewBefore) {
        out.cert_pem = std::move(cert).value();
        out.key_pem = std::move(key).value();
        out.not_after = format_rfc3339(p->not_after);
      }
    }
  }
  if (out.cert_pem.empty()) {
    CertRequest req{r.hostname, dns, ips, std::chrono::hours(24 * 825), false};
    auto made = make_self_signed(req);
    if (!made) return made.error();
    ::mkdir(r.dir.c_str(), 0700);
    // The key first: a certificate without its key would be kept next time.
    if (auto w = write_file_atomically(key_path, made.value().key_pem, {0600, std::nullopt}); !w)
      return w.error();
    if (auto w = write_file_atomically(cert_path, made.value().cert_pem, {0644, std::nullopt}); !w)
      return w.error();
    out.cert_pem = made.value().cert_pem;
    out.key_pem = made.value().key_pem;
    out.made_now = true;
    if (auto p = parse(out.cert_pem, out.key_pem)) out.not_after = format_rfc3339(p->not_after);
  }
  auto sha = certificate_sha256(out.cert_pem);
  if (!sha) return sha.error();
  out.sha256 = sha.value();
  return out;
}

}  // namespace secbox::lan
