// TestCa: a throwaway certificate authority for TLS tests, built with OpenSSL's APIs (no
// openssl CLI): an EC P-256 CA, and leaf certificates with the SANs a test asks for, all
// signed ecdsa-with-SHA256 and written as PEM files into a directory the test owns.
//
//   std::string dir = MakeTempDir("tls-test-");
//   auto ca = TestCa::Create(dir, "ca");                        // dir/ca.crt, dir/ca.key
//   auto leaf = (*ca)->Issue("server", {.dns_names = {"db.test"}, .ips = {"127.0.0.1"}});
//   // leaf->cert_file == dir/server.crt, leaf->key_file == dir/server.key (0600), leaf->der
//   auto crl = (*ca)->WriteCrl("revoked", {leaf->serial});      // dir/revoked.crl
//
// PostgreSQL's server refuses an ssl_key_file that is not 0600 and owned by the server's
// user (or 0640 and owned by root). Key files are written 0600 and owned by the test's
// user; a test that runs as root and starts postgres as another user sets
// LeafSpec::owner_uid/owner_gid so both files are chown'ed to it.
#pragma once

#include <openssl/types.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace interlock::testing {

struct LeafSpec {
  std::string common_name;             // subject CN; empty: the file stem
  std::vector<std::string> dns_names;  // subjectAltName dNSName entries
  std::vector<std::string> ips;        // subjectAltName iPAddress entries ("127.0.0.1", "::1")
  int valid_days = 30;                 // notBefore is an hour ago (clock skew)
  bool expired = false;                // valid from 2 days ago until 1 day ago instead
  // chown(2) for the cert and key files; -1 leaves that id unchanged. Needs root.
  uid_t owner_uid = static_cast<uid_t>(-1);
  gid_t owner_gid = static_cast<gid_t>(-1);
};

struct IssuedCert {
  std::string cert_file;  // PEM certificate, 0644
  std::string key_file;   // PEM PKCS#8 unencrypted private key, 0600
  std::string der;        // the certificate, DER (what a TLS peer presents)
  int64_t serial = 0;     // for WriteCrl
};

namespace test_ca_internal {
struct X509Free {
  void operator()(X509* cert) const;
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const;
};
}  // namespace test_ca_internal

class TestCa {
 public:
  // Generates the CA key and self-signed certificate (CN "Interlock Test CA <name>",
  // basicConstraints CA:TRUE, keyCertSign|cRLSign) and writes <dir>/<name>.crt and
  // <dir>/<name>.key (0600). `dir` must exist.
  static absl::StatusOr<std::unique_ptr<TestCa>> Create(const std::string& dir,
                                                        const std::string& name = "ca");
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_file() const { return cert_file_; }
  const std::string& key_file() const { return key_file_; }

  // A fresh P-256 key and a certificate for it signed by this CA (CA:FALSE,
  // digitalSignature, serverAuth+clientAuth, the SANs in `spec`), written to
  // <dir>/<stem>.crt and <dir>/<stem>.key.
  absl::StatusOr<IssuedCert> Issue(const std::string& stem, const LeafSpec& spec);

  // A v2 CRL signed by this CA revoking `serials` (valid from an hour ago for 7 days),
  // written to <dir>/<stem>.crl. Returns the path.
  absl::StatusOr<std::string> WriteCrl(const std::string& stem,
                                       const std::vector<int64_t>& serials);

 private:
  using X509Ptr = std::unique_ptr<X509, test_ca_internal::X509Free>;
  using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, test_ca_internal::EvpPkeyFree>;

  TestCa(std::string dir, X509Ptr cert, EvpPkeyPtr key, std::string cert_file,
         std::string key_file);

  std::string dir_;
  X509Ptr cert_;
  EvpPkeyPtr key_;
  std::string cert_file_;
  std::string key_file_;
  int64_t next_serial_ = 2;  // the CA is 1
};

}  // namespace interlock::testing
