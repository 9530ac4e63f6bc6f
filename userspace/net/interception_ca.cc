#include "userspace/net/interception_ca.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/net/leaf_name.h"

namespace interlock::net {
namespace {

constexpr absl::string_view kContext = "interception ca";
// RFC 5280 upper bound for a CN (ub-common-name).
constexpr size_t kMaxCommonName = 64;

absl::Status CryptoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(kContext, ": ", what, ": ", TakeOpensslReason()));
}

absl::StatusOr<EvpPkeyPtr> NewP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return CryptoError("generate p-256 key");
  return key;
}

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return CryptoError("random bytes");
  }
  return HexEncode(raw);
}

// Now, in the whole seconds a certificate can say, so that not_after values we keep equal
// the certificates' own.
absl::Time NowInSeconds(const Clock& clock) {
  return absl::FromUnixSeconds(absl::ToUnixSeconds(clock.Now()));
}

bool SetTime(ASN1_TIME* field, absl::Time t) {
  return ASN1_TIME_set(field, absl::ToTimeT(t)) != nullptr;
}

absl::StatusOr<absl::Time> TimeOf(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return CryptoError("certificate time");
  return absl::FromTimeT(::timegm(&tm));
}

// A version 3 certificate for `key` named CN=`cn` (no CN when empty), issued by `issuer`
// (itself when null), with a random positive 128-bit serial.
absl::StatusOr<X509Ptr> NewCertificate(const std::string& cn, EVP_PKEY* key, X509* issuer,
                                       absl::Time not_before, absl::Time not_after) {
  X509Ptr cert(X509_new());
  BignumPtr serial(BN_new());
  if (cert == nullptr || serial == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      !SetTime(X509_getm_notBefore(cert.get()), not_before) ||
      !SetTime(X509_getm_notAfter(cert.get()), not_after) ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return CryptoError("new certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());  // owned by cert
  if (!cn.empty() && X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                                reinterpret_cast<const unsigned char*>(cn.c_str()),
                                                -1, -1, 0) != 1) {
    return CryptoError(absl::StrCat("subject CN=", cn));
  }
  X509_NAME* issuer_name = issuer != nullptr ? X509_get_subject_name(issuer) : subject;
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1) return CryptoError("issuer name");
  return cert;
}

// One extension in openssl.cnf syntax ("critical,CA:TRUE"); `issuer` (or the certificate
// itself when null) is where keyid:always finds the authority key identifier.
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &v3, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {  // X509_add_ext copies
    return CryptoError(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// The subjectAltName for a validated name: built as a GENERAL_NAME rather than as config
// text, so no character of the name is ever read as syntax. Critical when the subject is
// empty (RFC 5280 §4.2.1.6).
absl::Status AddSubjectAltName(X509* cert, const LeafName& name, bool critical) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  GeneralNamePtr entry(a2i_GENERAL_NAME(nullptr, nullptr, nullptr, name.is_ip ? GEN_IPADD : GEN_DNS,
                                        name.text.c_str(), 0));
  if (names == nullptr || entry == nullptr || sk_GENERAL_NAME_push(names.get(), entry.get()) == 0) {
    return CryptoError(absl::StrCat("subjectAltName ", name.text));
  }
  entry.release();  // owned by names
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical ? 1 : 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return CryptoError(absl::StrCat("subjectAltName ", name.text));
  }
  return absl::OkStatus();
}

absl::Status Sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) return CryptoError("sign");
  return absl::OkStatus();
}

// What `write` (PEM_write_bio_X509, PEM_write_bio_PrivateKey) writes, as a string.
template <typename Write>
absl::StatusOr<std::string> ToPem(absl::string_view what, Write write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get()) != 1) return CryptoError(absl::StrCat(what, " pem"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  return ToPem("cert", [cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  return ToPem("key", [key](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

// The first object `read` (PEM_read_bio_X509, PEM_read_bio_PrivateKey) finds in `pem`, read
// from `path`. INVALID_ARGUMENT naming the file when there is none.
template <typename Ptr, typename Read>
absl::StatusOr<Ptr> FromPem(absl::string_view what, const std::string& pem, const std::string& path,
                            Read read) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr out(bio != nullptr ? read(bio.get()) : nullptr);
  if (out == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(kContext, ": ", path, ": no ", what, ": ", TakeOpensslReason()));
  }
  return out;
}

absl::StatusOr<X509Ptr> ParseCert(const std::string& pem, const std::string& path) {
  return FromPem<X509Ptr>("certificate", pem, path, [](BIO* bio) {
    return PEM_read_bio_X509(bio, nullptr, NoPassword, nullptr);
  });
}

absl::StatusOr<EvpPkeyPtr> ParseKey(const std::string& pem, const std::string& path) {
  return FromPem<EvpPkeyPtr>("private key", pem, path, [](BIO* bio) {
    return PEM_read_bio_PrivateKey(bio, nullptr, NoPassword, nullptr);
  });
}

// "Interlock local interception CA <hostname> <id>", the hostname cut (and anything but
// printable ASCII replaced) so that the whole fits in a CN.
absl::StatusOr<std::string> CaCommonName() {
  INTERLOCK_ASSIGN_OR_RETURN(std::string id, RandomHex(4));
  char host[256] = "";
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string prefix = "Interlock local interception CA ";
  std::string hostname;
  for (const char* p = host; *p != '\0'; ++p) {
    hostname.push_back(absl::ascii_isgraph(static_cast<unsigned char>(*p)) ? *p : '_');
  }
  if (hostname.empty()) hostname = "localhost";
  hostname.resize(std::min(hostname.size(), kMaxCommonName - prefix.size() - id.size() - 1));
  return absl::StrCat(prefix, hostname, " ", id);
}

template <typename T>
absl::StatusOr<T> InContext(absl::StatusOr<T> r) {
  if (!r.ok()) return Annotate(r.status(), kContext);
  return r;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

}  // namespace

LocalCa::LocalCa(std::string dir, const Clock& clock, X509Ptr cert, EvpPkeyPtr key,
                 EvpPkeyPtr leaf_key, absl::Time not_after)
    : cert_file_(absl::StrCat(dir, "/", kInterceptionCaCertFile)),
      key_file_(absl::StrCat(dir, "/", kInterceptionCaKeyFile)),
      clock_(clock),
      cert_(std::move(cert)),
      key_(std::move(key)),
      leaf_key_(std::move(leaf_key)),
      not_after_(not_after) {}

LocalCa::~LocalCa() = default;

absl::StatusOr<std::unique_ptr<LocalCa>> LocalCa::Init(const std::string& dir, const Clock& clock,
                                                       bool replace) {
  const std::string key_file = absl::StrCat(dir, "/", kInterceptionCaKeyFile);
  const std::string cert_file = absl::StrCat(dir, "/", kInterceptionCaCertFile);
  if (!replace) {
    for (const std::string& path : {key_file, cert_file}) {
      if (Exists(path)) {
        return absl::AlreadyExistsError(
            absl::StrCat(kContext, ": ", path, " exists; refusing to replace the CA"));
      }
    }
  }
  INTERLOCK_RETURN_IF_ERROR(Annotate(MakeDirs(dir, 0700), kContext));

  const absl::Time now = NowInSeconds(clock);
  const absl::Time not_before = now - kBackdate;
  const absl::Time not_after = not_before + kCaValidity;
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  INTERLOCK_ASSIGN_OR_RETURN(std::string cn, CaCommonName());
  INTERLOCK_ASSIGN_OR_RETURN(X509Ptr cert,
                             NewCertificate(cn, key.get(), nullptr, not_before, not_after));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), nullptr, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), nullptr, NID_key_usage, "critical,keyCertSign,cRLSign"));
  INTERLOCK_RETURN_IF_ERROR(AddExtension(cert.get(), nullptr, NID_subject_key_identifier, "hash"));
  INTERLOCK_RETURN_IF_ERROR(Sign(cert.get(), key.get()));

  INTERLOCK_ASSIGN_OR_RETURN(std::string key_pem, KeyPem(key.get()));
  INTERLOCK_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(cert.get()));
  INTERLOCK_RETURN_IF_ERROR(
      Annotate(WriteNewFileAtomic(key_file, key_pem, 0600, replace), kContext));
  absl::Status written = WriteNewFileAtomic(cert_file, cert_pem, 0644, replace);
  if (!written.ok()) {
    ::unlink(key_file.c_str());  // no key without its certificate
    return Annotate(written, kContext);
  }
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr leaf_key, NewP256Key());
  return std::unique_ptr<LocalCa>(
      new LocalCa(dir, clock, std::move(cert), std::move(key), std::move(leaf_key), not_after));
}

absl::StatusOr<std::unique_ptr<LocalCa>> LocalCa::Load(const std::string& dir, const Clock& clock) {
  const std::string key_file = absl::StrCat(dir, "/", kInterceptionCaKeyFile);
  const std::string cert_file = absl::StrCat(dir, "/", kInterceptionCaCertFile);
  INTERLOCK_ASSIGN_OR_RETURN(std::string key_pem, InContext(ReadPrivateFile(key_file)));
  INTERLOCK_ASSIGN_OR_RETURN(std::string cert_pem, InContext(ReadFile(cert_file)));
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr key, ParseKey(key_pem, key_file));
  INTERLOCK_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem, cert_file));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(kContext, ": ", key_file, " does not match ",
                                                   cert_file, ": ", TakeOpensslReason()));
  }
  // 1: basicConstraints CA:TRUE (and keyCertSign when keyUsage is present); the other
  // non-zero answers are legacy v1 / Netscape CAs, which we never write.
  if (X509_check_ca(cert.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(kContext, ": ", cert_file, ": not a CA certificate"));
  }
  INTERLOCK_ASSIGN_OR_RETURN(absl::Time not_after, TimeOf(X509_get0_notAfter(cert.get())));
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr leaf_key, NewP256Key());
  return std::unique_ptr<LocalCa>(
      new LocalCa(dir, clock, std::move(cert), std::move(key), std::move(leaf_key), not_after));
}

absl::StatusOr<MintedLeaf> LocalCa::MintLeaf(absl::string_view name) const {
  INTERLOCK_ASSIGN_OR_RETURN(LeafName leaf_name, NormalizeLeafName(name));
  const absl::Time now = NowInSeconds(clock_);
  if (now >= not_after_) {
    return absl::FailedPreconditionError(
        absl::StrCat(kContext, ": ", cert_file_, " expired at ", absl::FormatTime(not_after_)));
  }
  const absl::Time not_after = std::min(now + kLeafValidity, not_after_);
  // A CN longer than 64 characters is not allowed; clients match the SAN anyway.
  const std::string cn = leaf_name.text.size() <= kMaxCommonName ? leaf_name.text : "";
  INTERLOCK_ASSIGN_OR_RETURN(
      X509Ptr cert, NewCertificate(cn, leaf_key_.get(), cert_.get(), now - kBackdate, not_after));
  INTERLOCK_RETURN_IF_ERROR(AddSubjectAltName(cert.get(), leaf_name, /*critical=*/cn.empty()));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_basic_constraints, "critical,CA:FALSE"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_key_usage, "critical,digitalSignature"));
  INTERLOCK_RETURN_IF_ERROR(AddExtension(cert.get(), cert_.get(), NID_ext_key_usage, "serverAuth"));
  INTERLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert_.get(), NID_authority_key_identifier, "keyid:always"));
  INTERLOCK_RETURN_IF_ERROR(Sign(cert.get(), key_.get()));
  EVP_PKEY_up_ref(leaf_key_.get());
  return MintedLeaf{.name = std::move(leaf_name.text),
                    .cert = std::move(cert),
                    .key = EvpPkeyPtr(leaf_key_.get()),
                    .not_after = not_after};
}

absl::Status WriteTrustBundle(const std::string& ca_cert_path, const std::string& out_path,
                              const std::string& system_bundle_path) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string system, InContext(ReadFile(system_bundle_path)));
  INTERLOCK_ASSIGN_OR_RETURN(std::string ours, InContext(ReadFile(ca_cert_path)));
  INTERLOCK_RETURN_IF_ERROR(ParseCert(ours, ca_cert_path).status());
  if (!system.empty() && system.back() != '\n') system.push_back('\n');
  return Annotate(WriteFileAtomic(out_path, absl::StrCat(system, ours), 0644), kContext);
}

}  // namespace interlock::net
