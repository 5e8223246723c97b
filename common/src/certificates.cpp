#include "common/certificates.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "common/hex.hpp"

namespace secbox {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

Error tls_error(const std::string& what) {
  char buf[256] = "unknown error";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Error{Errc::network, what + ": " + buf};
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `req`; its key made anew, or `subject_key` (a request's).
Result<KeyAndCert> make(const CertRequest& req, EVP_PKEY* issuer_key, X509* issuer_cert,
                        EVP_PKEY* subject_key = nullptr, long backdate_s = 3600,
                        long validity_s = -1) {
  Pkey key(subject_key ? (EVP_PKEY_up_ref(subject_key), subject_key) : EVP_EC_gen("P-256"));
  if (!key) return tls_error("cannot generate a P-256 key");
  Cert cert(X509_new());
  if (!cert) return tls_error("cannot allocate a certificate");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return tls_error("no randomness for the serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -backdate_s);  // tolerate small clock skew
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  validity_s >= 0
                      ? validity_s - backdate_s
                      : std::chrono::duration_cast<std::chrono::seconds>(req.validity).count());
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(req.common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer_cert ? X509_get_subject_name(issuer_cert) : name);
  X509* issuer_for_ext = issuer_cert ? issuer_cert : cert.get();
  bool ok = add_ext(cert.get(), issuer_for_ext, NID_basic_constraints,
                    req.is_ca ? "critical,CA:TRUE,pathlen:" + std::to_string(req.path_length)
                              : "critical,CA:FALSE") &&
            add_ext(cert.get(), issuer_for_ext, NID_key_usage,
                    req.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
            add_ext(cert.get(), issuer_for_ext, NID_subject_key_identifier, "hash");
  if (ok && issuer_cert) {
    ok = add_ext(cert.get(), issuer_for_ext, NID_authority_key_identifier, "keyid:always");
  }
  if (ok && !req.is_ca) ok = add_ext(cert.get(), issuer_for_ext, NID_ext_key_usage, "serverAuth");
  std::string san;
  for (const auto& d : req.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : req.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (ok && !san.empty()) ok = add_ext(cert.get(), issuer_for_ext, NID_subject_alt_name, san);
  if (!ok) return tls_error("cannot add the certificate's extensions");
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key.get(), EVP_sha256()) == 0) {
    return tls_error("cannot sign the certificate");
  }
  Bio key_bio(BIO_new(BIO_s_mem())), cert_bio(BIO_new(BIO_s_mem()));
  // A request's key is its owner's: only its public half is here.
  if ((!subject_key && PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0,
                                                nullptr, nullptr) != 1) ||
      PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1) {
    return tls_error("cannot write PEM");
  }
  return KeyAndCert{subject_key ? std::string() : bio_text(key_bio.get()),
                    bio_text(cert_bio.get())};
}

}  // namespace

Result<KeyAndCert> make_self_signed(const CertRequest& request) {
  return make(request, nullptr, nullptr);
}

Result<KeyAndCert> make_signed(const CertRequest& request, const KeyAndCert& issuer) {
  Bio kb(BIO_new_mem_buf(issuer.key_pem.data(), static_cast<int>(issuer.key_pem.size())));
  Bio cb(BIO_new_mem_buf(issuer.cert_pem.data(), static_cast<int>(issuer.cert_pem.size())));
  Pkey key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  Cert cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!key || !cert) return tls_error("cannot read the issuer's key or certificate");
  return make(request, key.get(), cert.get());
}

Result<KeyAndRequest> make_request(const std::string& common_name,
                                   const std::vector<std::string>& dns_names) {
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) return tls_error("cannot generate a P-256 key");
  std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>> req(X509_REQ_new());
  if (!req) return tls_error("cannot allocate a request");
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_REQ_set_pubkey(req.get(), key.get());
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  const bool added =
      ext && sk_X509_EXTENSION_push(exts, ext) > 0 && X509_REQ_add_extensions(req.get(), exts) == 1;
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  if (!added) return tls_error("cannot add the request's names");
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) == 0)
    return tls_error("cannot sign the request");
  Bio key_bio(BIO_new(BIO_s_mem())), req_bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_X509_REQ(req_bio.get(), req.get()) != 1) {
    return tls_error("cannot write PEM");
  }
  return KeyAndRequest{bio_text(key_bio.get()), bio_text(req_bio.get())};
}

namespace {
using Request = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;

Request read_request(const std::string& csr_pem) {
  Bio rb(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  Request req(PEM_read_bio_X509_REQ(rb.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return req;
}

std::vector<std::string> dns_names_of(X509_REQ* req) {
  std::vector<std::string> out;
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext));
    for (int j = 0; names && j < sk_GENERAL_NAME_num(names); ++j) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, j);
      if (n->type != GEN_DNS) continue;
      const auto* s = n->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(names);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return out;
}
}  // namespace

Result<std::vector<std::string>> request_dns_names(const std::string& csr_pem) {
  auto req = read_request(csr_pem);
  if (!req) return Error{Errc::invalid, "it is not a PEM certificate request"};
  Pkey key(X509_REQ_get_pubkey(req.get()));
  if (!key || X509_REQ_verify(req.get(), key.get()) != 1) {
    ERR_clear_error();
    return Error{Errc::invalid, "its signature is not valid"};
  }
  return dns_names_of(req.get());
}

Result<std::string> sign_request(const std::string& csr_pem, const KeyAndCert& issuer,
                                 const SignOptions& options) {
  auto req = read_request(csr_pem);
  if (!req) return tls_error("cannot read the request");
  Pkey subject(X509_REQ_get_pubkey(req.get()));
  if (!subject || X509_REQ_verify(req.get(), subject.get()) != 1)
    return tls_error("the request's signature is not valid");
  CertRequest cr;
  cr.dns_names = dns_names_of(req.get());
  if (cr.dns_names.empty()) return Error{Errc::invalid, "the request names no DNS name"};
  cr.common_name = cr.dns_names.back();
  Bio kb(BIO_new_mem_buf(issuer.key_pem.data(), static_cast<int>(issuer.key_pem.size())));
  Bio cb(BIO_new_mem_buf(issuer.cert_pem.data(), static_cast<int>(issuer.cert_pem.size())));
  Pkey key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  Cert cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!key || !cert) return tls_error("cannot read the issuer's key or certificate");
  auto made =
      make(cr, key.get(), cert.get(), subject.get(), static_cast<long>(options.backdate.count()),
           static_cast<long>(options.validity.count()));
  if (!made) return made.error();
  return made.value().cert_pem;
}

Result<std::string> certificate_sha256(const std::string& cert_pem) {
  Bio b(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  Cert cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!cert) return tls_error("cannot read the certificate");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &n) != 1) return tls_error("cannot hash it");
  return to_hex(md, n);
}

}  // namespace secbox
