#include "tests/testing/test_ca.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::testing {

namespace test_ca_internal {
void X509Free::operator()(X509* cert) const { X509_free(cert); }
void EvpPkeyFree::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
}  // namespace test_ca_internal

namespace {

using X509Ptr = std::unique_ptr<X509, test_ca_internal::X509Free>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, test_ca_internal::EvpPkeyFree>;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct ExtensionFree {
  void operator()(X509_EXTENSION* ext) const { X509_EXTENSION_free(ext); }
};
struct CrlFree {
  void operator()(X509_CRL* crl) const { X509_CRL_free(crl); }
};
struct RevokedFree {
  void operator()(X509_REVOKED* rev) const { X509_REVOKED_free(rev); }
};
struct Asn1TimeFree {
  void operator()(ASN1_TIME* t) const { ASN1_TIME_free(t); }
};
struct Asn1IntegerFree {
  void operator()(ASN1_INTEGER* i) const { ASN1_INTEGER_free(i); }
};

constexpr long kHour = 3600;
constexpr long kDay = 24 * kHour;

absl::Status OpensslError(absl::string_view what) {
  unsigned long e = ERR_peek_last_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return absl::InternalError(absl::StrCat("test ca: ", what, ": ", buf));
}

absl::StatusOr<EvpPkeyPtr> GenerateP256() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpensslError("generate p-256 key");
  return key;
}

// Adds one extension in openssl.cnf syntax ("critical,CA:TRUE", "DNS:a,IP:127.0.0.1").
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, ExtensionFree> ext(
      X509V3_EXT_nconf_nid(nullptr, &v3, nid, value.c_str()));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {  // X509_add_ext copies
    return OpensslError(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// An unsigned certificate for `key` named CN=`common_name`, issued by `issuer` (itself
// when null).
absl::StatusOr<X509Ptr> NewCertificate(int64_t serial, const std::string& common_name,
                                       EVP_PKEY* key, X509* issuer, long not_before_s,
                                       long not_after_s) {
  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set_int64(X509_get_serialNumber(cert.get()), serial) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_s) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_s) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpensslError("new certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());  // owned by cert
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(),
                           issuer != nullptr ? X509_get_subject_name(issuer) : subject) != 1) {
    return OpensslError(absl::StrCat("subject CN=", common_name));
  }
  return cert;
}

absl::StatusOr<std::string> ToPem(X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) return OpensslError("pem");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::string> ToPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpensslError("pem key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string ToDer(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  std::string der(len > 0 ? static_cast<size_t>(len) : 0, '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  if (len > 0) i2d_X509(cert, &p);
  return der;
}

absl::Status WriteCertAndKey(X509* cert, EVP_PKEY* key, const std::string& cert_file,
                             const std::string& key_file) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string cert_pem, ToPem(cert));
  INTERLOCK_ASSIGN_OR_RETURN(std::string key_pem, ToPem(key));
  INTERLOCK_RETURN_IF_ERROR(WriteFileAtomic(cert_file, cert_pem, 0644));
  return WriteFileAtomic(key_file, key_pem, 0600);
}

}  // namespace

TestCa::TestCa(std::string dir, X509Ptr cert, EvpPkeyPtr key, std::string cert_file,
               std::string key_file)
    : dir_(std::move(dir)),
      cert_(std::move(cert)),
      key_(std::move(key)),
      cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)) {}

TestCa::~TestCa() = default;

absl::StatusOr<std::unique_ptr<TestCa>> TestCa::Create(const std::string& dir,
                                                       const std::string& name) {
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256());
  INTERLOCK_ASSIGN_OR_RETURN(
      X509Ptr cert, NewCertificate(1, absl::StrCat("Interlock Test CA ", name), key.get(), nullptr,
                                   -kHour, 365 * kDay));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return OpensslError("sign ca");
  std::string cert_file = absl::StrCat(dir, "/", name, ".crt");
  std::string key_file = absl::StrCat(dir, "/", name, ".key");
  INTERLOCK_RETURN_IF_ERROR(WriteCertAndKey(cert.get(), key.get(), cert_file, key_file));
  return std::unique_ptr<TestCa>(
      new TestCa(dir, std::move(cert), std::move(key), std::move(cert_file), std::move(key_file)));
}

absl::StatusOr<IssuedCert> TestCa::Issue(const std::string& stem, const LeafSpec& spec) {
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256());
  long not_before = spec.expired ? -2 * kDay : -kHour;
  long not_after = spec.expired ? -kDay : spec.valid_days * kDay;
  int64_t serial = next_serial_++;
  INTERLOCK_ASSIGN_OR_RETURN(
      X509Ptr cert, NewCertificate(serial, spec.common_name.empty() ? stem : spec.common_name,
                                   key.get(), cert_.get(), not_before, not_after));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_basic_constraints, "critical,CA:FALSE"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_key_usage, "critical,digitalSignature"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_subject_key_identifier, "hash"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_authority_key_identifier, "keyid:always"));
  std::vector<std::string> sans;
  for (const std::string& d : spec.dns_names) sans.push_back(absl::StrCat("DNS:", d));
  for (const std::string& ip : spec.ips) sans.push_back(absl::StrCat("IP:", ip));
  if (!sans.empty()) {
    INTERLOCK_RETURN_IF_ERROR(
        AddExtension(cert.get(), cert_.get(), NID_subject_alt_name, absl::StrJoin(sans, ",")));
  }
  if (X509_sign(cert.get(), key_.get(), EVP_sha256()) <= 0) {
    return OpensslError(absl::StrCat("sign ", stem));
  }
  IssuedCert out;
  out.cert_file = absl::StrCat(dir_, "/", stem, ".crt");
  out.key_file = absl::StrCat(dir_, "/", stem, ".key");
  out.der = ToDer(cert.get());
  out.serial = serial;
  INTERLOCK_RETURN_IF_ERROR(WriteCertAndKey(cert.get(), key.get(), out.cert_file, out.key_file));
  if (spec.owner_uid != static_cast<uid_t>(-1) || spec.owner_gid != static_cast<gid_t>(-1)) {
    for (const std::string& path : {out.cert_file, out.key_file}) {
      if (::chown(path.c_str(), spec.owner_uid, spec.owner_gid) != 0) {
        return ErrnoStatus(errno, absl::StrCat("test ca: chown ", path));
      }
    }
  }
  return out;
}

absl::StatusOr<std::string> TestCa::WriteCrl(const std::string& stem,
                                             const std::vector<int64_t>& serials) {
  std::unique_ptr<X509_CRL, CrlFree> crl(X509_CRL_new());
  std::unique_ptr<ASN1_TIME, Asn1TimeFree> last_update(X509_gmtime_adj(nullptr, -kHour));
  std::unique_ptr<ASN1_TIME, Asn1TimeFree> next_update(X509_gmtime_adj(nullptr, 7 * kDay));
  if (crl == nullptr || last_update == nullptr || next_update == nullptr ||
      X509_CRL_set_version(crl.get(), 1) != 1 ||  // 1 is v2
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(cert_.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return OpensslError("new crl");
  }
  for (int64_t serial : serials) {
    std::unique_ptr<X509_REVOKED, RevokedFree> revoked(X509_REVOKED_new());
    std::unique_ptr<ASN1_INTEGER, Asn1IntegerFree> number(ASN1_INTEGER_new());
    if (revoked == nullptr || number == nullptr ||
        ASN1_INTEGER_set_int64(number.get(), serial) != 1 ||
        X509_REVOKED_set_serialNumber(revoked.get(), number.get()) != 1 ||  // copies
        X509_REVOKED_set_revocationDate(revoked.get(), last_update.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), revoked.get()) != 1) {
      return OpensslError(absl::StrCat("revoke serial ", serial));
    }
    (void)revoked.release();  // owned by the CRL now
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), key_.get(), EVP_sha256()) <= 0) {
    return OpensslError("sign crl");
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) {
    return OpensslError("pem crl");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::string path = absl::StrCat(dir_, "/", stem, ".crl");
  INTERLOCK_RETURN_IF_ERROR(
      WriteFileAtomic(path, absl::string_view(data, static_cast<size_t>(n)), 0644));
  return path;
}

}  // namespace interlock::testing
