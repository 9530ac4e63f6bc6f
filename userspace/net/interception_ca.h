// The local certificate authority interlockd uses to terminate an agent's HTTPS: a CA key
// and self-signed certificate kept in interlock's state directory, and leaf certificates
// minted on demand for the names agents connect to. `interlock run` makes the agent trust
// the CA through a trust bundle (system CAs + ours) named by SSL_CERT_FILE,
// REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE; NODE_EXTRA_CA_CERTS needs only our certificate.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto ca, LocalCa::Load("/var/lib/interlock", clock));
//   INTERLOCK_ASSIGN_OR_RETURN(MintedLeaf leaf, ca->MintLeaf("api.example.com"));
//   INTERLOCK_RETURN_IF_ERROR(WriteTrustBundle(ca->cert_file(), "/run/interlock/trust.pem"));
//
// The CA: ECDSA P-256, CN "Interlock local interception CA <hostname> <random id>",
// basicConstraints critical CA:TRUE pathlen:0, keyUsage critical keyCertSign+cRLSign, a
// subjectKeyIdentifier, valid from an hour ago for 10 years, a random 128-bit serial.
// Files: <dir>/interception-ca.key (PKCS#8 PEM, 0600, created 0600 and never wider) and
// <dir>/interception-ca.crt (PEM, 0644), each written atomically.
//
// Leaves: ECDSA P-256, one subjectAltName (dNSName or iPAddress) and the same name as CN
// when it fits (64 characters; clients match the SAN), EKU serverAuth, keyUsage
// digitalSignature, CA:FALSE, an authorityKeyIdentifier, valid from an hour ago for 7 days
// (never past the CA), a random serial, ecdsa-with-SHA256. Every leaf of one LocalCa
// certifies the same key, generated in memory when the CA is created or loaded and never
// written anywhere: a leaf key only proves "this interlockd", a fresh key per name would
// cost a key generation per new host and buy nothing, and the key dies with the process.
//
// Time comes from the injected Clock; serials and keys from OpenSSL's CSPRNG.
// Thread-compatibility: const methods may be called concurrently; interlockd calls all of
// this from one event loop thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/clock.h"
#include "userspace/net/openssl_util.h"

namespace interlock::net {

inline constexpr char kInterceptionCaKeyFile[] = "interception-ca.key";
inline constexpr char kInterceptionCaCertFile[] = "interception-ca.crt";
inline constexpr char kSystemTrustBundle[] = "/etc/ssl/certs/ca-certificates.crt";

inline constexpr absl::Duration kCaValidity = absl::Hours(24 * 3650);
inline constexpr absl::Duration kLeafValidity = absl::Hours(24 * 7);
// notBefore is this far in the past, for clients whose clock is a little behind ours.
inline constexpr absl::Duration kBackdate = absl::Hours(1);

// A leaf certificate for one name and the key it certifies (a reference to the CA's shared
// leaf key). Move-only.
struct MintedLeaf {
  std::string name;  // normalised (leaf_name.h)
  X509Ptr cert;
  EvpPkeyPtr key;
  absl::Time not_after;
};

class LocalCa {
 public:
  // Creates a new CA in `dir` (created 0700 when missing). ALREADY_EXISTS when either file
  // exists, unless `replace` (then both are replaced, each atomically; leaves minted by
  // the old CA stop being trusted once agents get the new bundle). Errno codes when the
  // files cannot be written; if the certificate cannot be written the new key is removed.
  static absl::StatusOr<std::unique_ptr<LocalCa>> Init(const std::string& dir, const Clock& clock,
                                                       bool replace = false);
  // Loads the CA Init wrote. PERMISSION_DENIED (naming the file and its mode or owner) when
  // the key file is not a regular file owned by the effective uid with no group/other
  // access; NOT_FOUND when a file is missing; INVALID_ARGUMENT when a file does not parse,
  // the key does not match the certificate, or the certificate is not a CA.
  static absl::StatusOr<std::unique_ptr<LocalCa>> Load(const std::string& dir, const Clock& clock);

  ~LocalCa();
  LocalCa(const LocalCa&) = delete;
  LocalCa& operator=(const LocalCa&) = delete;

  // A leaf for `name`, a DNS name or an IP literal (validated and normalised by
  // NormalizeLeafName: INVALID_ARGUMENT). INTERNAL when OpenSSL fails; FAILED_PRECONDITION
  // when the CA has expired.
  absl::StatusOr<MintedLeaf> MintLeaf(absl::string_view name) const;

  const std::string& cert_file() const { return cert_file_; }
  const std::string& key_file() const { return key_file_; }
  X509* cert() const { return cert_.get(); }  // owned by this object
  absl::Time not_after() const { return not_after_; }
  const Clock& clock() const { return clock_; }

 private:
  LocalCa(std::string dir, const Clock& clock, X509Ptr cert, EvpPkeyPtr key, EvpPkeyPtr leaf_key,
          absl::Time not_after);

  std::string cert_file_;
  std::string key_file_;
  const Clock& clock_;
  X509Ptr cert_;
  EvpPkeyPtr key_;
  EvpPkeyPtr leaf_key_;
  absl::Time not_after_;
};

// Writes `out_path` (0644, atomically): the PEM certificates of `system_bundle_path`, then
// the one in `ca_cert_path`. INVALID_ARGUMENT when `ca_cert_path` holds no certificate;
// errno codes when a file cannot be read or written.
absl::Status WriteTrustBundle(const std::string& ca_cert_path, const std::string& out_path,
                              const std::string& system_bundle_path = kSystemTrustBundle);

}  // namespace interlock::net
