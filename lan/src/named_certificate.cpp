#include "lan/named_certificate.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>
#include <set>

#include "common/atomic_file.hpp"
#include "common/hex.hpp"

namespace secbox::lan {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

constexpr std::size_t kMaxChain = 64 * 1024;
constexpr int kMaxCertificates = 10;

Error failed(const std::string& check, const std::string& why) {
  ERR_clear_error();
  return Error{Errc::invalid, check + ": " + why};
}

std::chrono::system_clock::time_point to_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::set<std::string> dns_names(X509* cert) {
  std::set<std::string> out;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type == GEN_DNS) {
      out.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                  static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
    } else {
      out.insert("(not a DNS name)");
    }
  }
  GENERAL_NAMES_free(sans);
  return out;
}

}  // namespace

bool valid_lan_name(const std::string& name) {
  if (name.empty() || name.size() > 190 || name.front() == '.' || name.back() == '.') return false;
  int labels = 0;
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto dot = std::min(name.find('.', start), name.size());
    const std::string label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    ++labels;
    start = dot + 1;
  }
  return labels >= 2;
}

std::vector<std::string> lan_cert_names(const std::string& name) { return {"*." + name, name}; }

std::string guard_address(const std::string& name, const std::string& ipv4, int port) {
  in_addr a{};
  if (name.empty() || ::inet_pton(AF_INET, ipv4.c_str(), &a) != 1) return "";
  const auto* b = reinterpret_cast<const unsigned char*>(&a);
  const bool is_private = b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) ||
                          (b[0] == 192 && b[1] == 168) || (b[0] == 100 && (b[1] & 0xC0) == 64);
  if (!is_private) return "";
  return "https://" + std::to_string(b[0]) + "-" + std::to_string(b[1]) + "-" +
         std::to_string(b[2]) + "-" + std::to_string(b[3]) + "." + name + ":" +
         std::to_string(port) + "/";
}

bool NamedCertificate::renewal_due(std::chrono::system_clock::time_point now) const {
  return (not_after - now) * 3 < (not_after - not_before);
}

Result<NamedCertificate> check_chain(const std::string& chain_pem, const std::string& key_pem,
                                     const std::string& name, const std::string& roots_file,
                                     std::chrono::system_clock::time_point now) {
  // chain
  if (chain_pem.size() > kMaxChain) return failed("chain", "it is larger than 64 KiB");
  std::vector<Cert> certs;
  {
    Bio bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
    while (certs.size() <= static_cast<std::size_t>(kMaxCertificates)) {
      Cert c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
      if (!c) break;
      certs.push_back(std::move(c));
    }
    ERR_clear_error();
  }
  if (certs.empty()) return failed("chain", "it holds no PEM certificate");
  if (certs.size() > static_cast<std::size_t>(kMaxCertificates))
    return failed("chain", "it holds more than 10 certificates");
  X509* leaf = certs.front().get();
  // key
  Bio kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  Pkey key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!key) return failed("key", "the box has no request key to match it against");
  if (X509_check_private_key(leaf, key.get()) != 1) {
    return failed("key", "the certificate's key is not the key of the box's last request");
  }
  // names
  const auto wanted = lan_cert_names(name);
  const auto got = dns_names(leaf);
  if (got != std::set<std::string>(wanted.begin(), wanted.end())) {
    std::string list;
    for (const auto& n : got) list += (list.empty() ? "" : ", ") + n;
    return failed("names", "the certificate names " +
                               (list.empty() ? std::string("nothing") : list) + ", not exactly " +
                               wanted[0] + " and " + wanted[1]);
  }
  // trust
  Store store(X509_STORE_new());
  if (!store || X509_STORE_set_default_paths(store.get()) != 1)
    return failed("trust", "no trust store");
  if (!roots_file.empty() && X509_STORE_load_file(store.get(), roots_file.c_str()) != 1) {
    return failed("trust", "the roots file " + roots_file + " cannot be read");
  }
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> untrusted(
      sk_X509_new_null(), [](STACK_OF(X509) * s) { sk_X509_free(s); });
  for (std::size_t i = 1; i < certs.size(); ++i) sk_X509_push(untrusted.get(), certs[i].get());
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1)
    return failed("trust", "no context");
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(ctx.get()) != 1) {
    return failed("trust", std::string("the chain does not verify to a trusted root (") +
                               X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())) +
                               ")");
  }
  // validity, of every certificate of the chain as verified
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(ctx.get());
  for (int i = 0; verified && i < sk_X509_num(verified); ++i) {
    X509* c = sk_X509_value(verified, i);
    const std::string which = i == 0 ? "the box's certificate" : "a certificate of its chain";
    if (X509_cmp_time(X509_get0_notBefore(c), const_cast<std::time_t*>(&t)) > 0) {
      return failed("validity", which + " is not valid yet");
    }
    if (X509_cmp_time(X509_get0_notAfter(c), const_cast<std::time_t*>(&t)) < 0) {
      return failed("validity", which + " has expired");
    }
  }
  NamedCertificate out;
  out.name = name;
  out.key_pem = key_pem;
  out.not_before = to_time(X509_get0_notBefore(leaf));
  out.not_after = to_time(X509_get0_notAfter(leaf));
  for (const auto& c : certs) {
    Bio ob(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(ob.get(), c.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(ob.get(), &data);
    out.chain_pem.append(data, static_cast<std::size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(leaf, EVP_sha256(), md, &n);
  out.sha256 = to_hex(md, n);
  return out;
}

Result<void> save_named(const std::string& path, const NamedCertificate& cert) {
  return write_file_atomically(path, cert.key_pem + cert.chain_pem, {0600, std::nullopt});
}

Result<NamedCertificate> load_named(const std::string& path, const std::string& roots_file,
                                    std::chrono::system_clock::time_point now) {
  auto text = read_file(path, 128 * 1024);
  if (!text) return text.error();
  const std::string& all = text.value();
  const auto begin = all.find("-----BEGIN CERTIFICATE-----");
  if (begin == std::string::npos) return Error{Errc::invalid, path + " holds no certificate"};
  const std::string key_pem = all.substr(0, begin), chain_pem = all.substr(begin);
  // The name is the one the certificate was checked for: *.<name>.
  Bio bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
  Cert leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!leaf) return Error{Errc::invalid, path + " holds no readable certificate"};
  std::string name;
  for (const auto& n : dns_names(leaf.get())) {
    if (n.rfind("*.", 0) == 0) name = n.substr(2);
  }
  if (!valid_lan_name(name)) return Error{Errc::invalid, path + " does not name *.<name>"};
  auto checked = check_chain(chain_pem, key_pem, name, roots_file, now);
  if (!checked) return Error{Errc::invalid, path + ": " + checked.error().message};
  return checked;
}

}  // namespace secbox::lan
