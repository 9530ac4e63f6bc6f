// The interception CA (userspace/net/interception_ca.h): the files Init writes and Load
// refuses, the certificates it mints (checked with OpenSSL's verifier and with the openssl
// CLI, as an agent's TLS library would check them), and the trust bundle.
#include "userspace/net/interception_ca.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/privileged.h"
#include "tests/testing/test_ca.h"
#include "userspace/common/file_util.h"

namespace interlock::net {
namespace {

using ::interlock::testing::FakeClock;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpensslFree<X509_STORE_CTX_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpensslFree<X509_STORE_free>>;
using X509InfoStackPtr = std::unique_ptr<STACK_OF(X509_INFO), void (*)(STACK_OF(X509_INFO)*)>;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string Pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string Der(X509* cert) {
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<char*>(der), n > 0 ? static_cast<size_t>(n) : 0);
  OPENSSL_free(der);
  return out;
}

absl::Time TimeOf(const ASN1_TIME* t) {
  struct tm tm {};
  EXPECT_EQ(ASN1_TIME_to_tm(t, &tm), 1);
  return absl::FromTimeT(::timegm(&tm));
}

std::string CommonName(X509* cert) {
  char buf[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

// The certificate's subjectAltName when it has exactly one entry: its type (GEN_DNS,
// GEN_IPADD) and bytes; {-1, ""} otherwise.
using San = std::pair<int, std::string>;
San OnlySan(X509* cert) {
  GeneralNamesPtr sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (sans == nullptr || sk_GENERAL_NAME_num(sans.get()) != 1) return {-1, ""};
  const GENERAL_NAME* san = sk_GENERAL_NAME_value(sans.get(), 0);
  int type = -1;
  const ASN1_STRING* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(san, &type));
  return {type, std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                            static_cast<size_t>(ASN1_STRING_length(value)))};
}

// X509_verify_cert as a TLS client checks a server: the chain to `ca`, purpose sslserver,
// and the host name or IP address. The error string, or "ok".
std::string Verify(X509* leaf, X509* ca, const std::string& name, bool is_ip) {
  X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
  }
  if (X509_verify_cert(ctx.get()) == 1) return "ok";
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

// `openssl verify` on a leaf file: exit status 0 and "OK", or its output.
struct CliResult {
  int exit_code = -1;
  std::string output;
};
CliResult OpensslVerify(const std::string& ca_file, const std::string& leaf_file,
                        const std::string& name, bool is_ip) {
  // Paths come from mkdtemp, names from our own test table: nothing for the shell to read.
  std::string cmd =
      absl::StrCat("openssl verify -CAfile ", ca_file, " -purpose sslserver ",
                   is_ip ? "-verify_ip " : "-verify_hostname ", name, " ", leaf_file, " 2>&1");
  CliResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

size_t CountCertificates(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509InfoStackPtr infos(PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr),
                         [](STACK_OF(X509_INFO) * s) { sk_X509_INFO_pop_free(s, X509_INFO_free); });
  if (infos == nullptr) return 0;
  size_t certs = 0;
  for (int i = 0; i < sk_X509_INFO_num(infos.get()); ++i) {
    if (sk_X509_INFO_value(infos.get(), i)->x509 != nullptr) ++certs;
  }
  return certs;
}

class InterceptionCaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = interlock::testing::MakeTempDir("interlock-ca-");
    ASSERT_FALSE(dir_.empty());
    ca_dir_ = dir_ + "/state";
  }
  void TearDown() override { interlock::testing::RemoveTree(dir_); }

  std::unique_ptr<LocalCa> InitCa() {
    auto ca = LocalCa::Init(ca_dir_, clock_);
    EXPECT_TRUE(ca.ok()) << ca.status();
    return ca.ok() ? *std::move(ca) : nullptr;
  }
  std::string KeyFile() const { return ca_dir_ + "/interception-ca.key"; }
  std::string CertFile() const { return ca_dir_ + "/interception-ca.crt"; }

  std::string dir_;
  std::string ca_dir_;
  // Real time: leaves are checked by verifiers that read the real clock.
  FakeClock clock_{absl::Now()};
};

// ---- Init and Load: the files ----

TEST_F(InterceptionCaTest, InitWritesPrivateKeyAndPublicCert) {
  mode_t old_umask = ::umask(0);  // a permissive umask must not widen the key
  auto ca = InitCa();
  ::umask(old_umask);
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(ModeOf(KeyFile()), 0600u);
  EXPECT_EQ(ModeOf(CertFile()), 0644u);
  EXPECT_EQ(ca->cert_file(), CertFile());
  auto pem = ReadFile(CertFile());
  ASSERT_TRUE(pem.ok());
  EXPECT_EQ(*pem, Pem(ca->cert()));
  // No temp files left behind.
  EXPECT_EQ(::access((KeyFile() + ".tmp." + std::to_string(::getpid())).c_str(), F_OK), -1);
}

TEST_F(InterceptionCaTest, CaCertificateHasTheRequiredShape) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  X509* cert = ca->cert();
  EXPECT_EQ(X509_check_ca(cert), 1);
  EXPECT_EQ(X509_get_pathlen(cert), 0);
  EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(cert), nullptr);
  for (int nid : {NID_basic_constraints, NID_key_usage}) {
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    ASSERT_GE(idx, 0) << OBJ_nid2sn(nid);
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert, idx)), 1) << OBJ_nid2sn(nid);
  }
  EXPECT_THAT(CommonName(cert), StartsWith("Interlock local interception CA "));
  EXPECT_LE(CommonName(cert).size(), 64u);
  EXPECT_EQ(TimeOf(X509_get0_notBefore(cert)),
            absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now() - absl::Hours(1))));
  EXPECT_EQ(TimeOf(X509_get0_notAfter(cert)) - TimeOf(X509_get0_notBefore(cert)),
            absl::Hours(24 * 3650));
  EXPECT_EQ(ca->not_after(), TimeOf(X509_get0_notAfter(cert)));
  EXPECT_EQ(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  char group[64] = "";
  EVP_PKEY_get_group_name(pub, group, sizeof group, nullptr);
  EXPECT_STREQ(group, "prime256v1");
  // Self-signed, and the signature verifies.
  EXPECT_EQ(X509_verify(cert, pub), 1);
  // A 128-bit serial (top bit set by construction), positive.
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  EXPECT_EQ(BN_num_bits(serial.get()), 128);
  EXPECT_FALSE(BN_is_negative(serial.get()));
}

TEST_F(InterceptionCaTest, TwoCasHaveDifferentNamesSerialsAndKeys) {
  auto a = InitCa();
  auto b = LocalCa::Init(dir_ + "/other", clock_);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(CommonName(a->cert()), CommonName((*b)->cert()));
  EXPECT_NE(
      ASN1_INTEGER_cmp(X509_get0_serialNumber(a->cert()), X509_get0_serialNumber((*b)->cert())), 0);
  EXPECT_NE(EVP_PKEY_eq(X509_get0_pubkey(a->cert()), X509_get0_pubkey((*b)->cert())), 1);
}

TEST_F(InterceptionCaTest, InitRefusesToReplaceAnExistingCa) {
  auto first = InitCa();
  ASSERT_NE(first, nullptr);
  auto key_before = ReadFile(KeyFile());
  auto again = LocalCa::Init(ca_dir_, clock_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("interception-ca.key"));
  EXPECT_EQ(*ReadFile(KeyFile()), *key_before);

  // Only the certificate left over from a half-removed CA: still refused.
  ASSERT_EQ(::unlink(KeyFile().c_str()), 0);
  again = LocalCa::Init(ca_dir_, clock_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
}

TEST_F(InterceptionCaTest, InitReplacesWhenAsked) {
  auto first = InitCa();
  ASSERT_NE(first, nullptr);
  auto second = LocalCa::Init(ca_dir_, clock_, /*replace=*/true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(Der(first->cert()), Der((*second)->cert()));
  EXPECT_EQ(ModeOf(KeyFile()), 0600u);
  auto loaded = LocalCa::Load(ca_dir_, clock_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(Der((*loaded)->cert()), Der((*second)->cert()));
}

TEST_F(InterceptionCaTest, InitDoesNotFollowASymlinkPlantedAtTheTempName) {
  ASSERT_TRUE(MakeDirs(ca_dir_, 0755).ok());
  const std::string victim = dir_ + "/victim";
  const std::string tmp = KeyFile() + ".tmp." + std::to_string(::getpid());
  ASSERT_EQ(::symlink(victim.c_str(), tmp.c_str()), 0);
  auto ca = LocalCa::Init(ca_dir_, clock_);
  EXPECT_FALSE(ca.ok());
  EXPECT_EQ(::access(victim.c_str(), F_OK), -1) << "the key was written through the symlink";
  EXPECT_EQ(::access(KeyFile().c_str(), F_OK), -1);
}

TEST_F(InterceptionCaTest, LoadRoundTrips) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  auto loaded = LocalCa::Load(ca_dir_, clock_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(Der((*loaded)->cert()), Der(ca->cert()));
  EXPECT_EQ((*loaded)->not_after(), ca->not_after());
  // The loaded key signs leaves that chain to the same certificate.
  auto leaf = (*loaded)->MintLeaf("db.internal");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(Verify(leaf->cert.get(), ca->cert(), "db.internal", false), "ok");
}

TEST_F(InterceptionCaTest, LoadRefusesAKeyOthersCanRead) {
  ASSERT_NE(InitCa(), nullptr);
  for (mode_t mode : {0640, 0644, 0604, 0620}) {
    ASSERT_EQ(::chmod(KeyFile().c_str(), mode), 0);
    auto loaded = LocalCa::Load(ca_dir_, clock_);
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kPermissionDenied) << std::oct << mode;
    EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(KeyFile()));
    char mode_text[8];
    std::snprintf(mode_text, sizeof mode_text, "%04o", mode);
    EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(mode_text));
  }
}

TEST_F(InterceptionCaTest, LoadRefusesAKeyOwnedBySomeoneElse) {
  INTERLOCK_REQUIRE_ROOT();
  ASSERT_NE(InitCa(), nullptr);
  ASSERT_EQ(::chown(KeyFile().c_str(), 65534, 65534), 0);
  auto loaded = LocalCa::Load(ca_dir_, clock_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kPermissionDenied) << loaded.status();
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("owned by uid 65534"));
}

TEST_F(InterceptionCaTest, LoadRefusesASymlinkedKey) {
  ASSERT_NE(InitCa(), nullptr);
  ASSERT_EQ(::rename(KeyFile().c_str(), (dir_ + "/real.key").c_str()), 0);
  ASSERT_EQ(::symlink((dir_ + "/real.key").c_str(), KeyFile().c_str()), 0);
  EXPECT_FALSE(LocalCa::Load(ca_dir_, clock_).ok());
}

TEST_F(InterceptionCaTest, LoadRefusesAMismatchedCertificateAndKey) {
  ASSERT_NE(InitCa(), nullptr);
  auto other = LocalCa::Init(dir_ + "/other", clock_);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(WriteFileAtomic(CertFile(), *ReadFile((*other)->cert_file()), 0644).ok());
  auto loaded = LocalCa::Load(ca_dir_, clock_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << loaded.status();
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("does not match"));
}

TEST_F(InterceptionCaTest, LoadRefusesACertificateThatIsNotACa) {
  // A leaf and its own key, matching each other, in the CA's place.
  ASSERT_TRUE(MakeDirs(ca_dir_, 0700).ok());
  auto test_ca = interlock::testing::TestCa::Create(dir_, "test-ca");
  ASSERT_TRUE(test_ca.ok());
  auto leaf = (*test_ca)->Issue("leaf", {.dns_names = {"x.test"}});
  ASSERT_TRUE(leaf.ok());
  ASSERT_TRUE(WriteFileAtomic(CertFile(), *ReadFile(leaf->cert_file), 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(KeyFile(), *ReadFile(leaf->key_file), 0600).ok());
  auto loaded = LocalCa::Load(ca_dir_, clock_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << loaded.status();
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("not a CA"));
}

TEST_F(InterceptionCaTest, LoadReportsMissingAndGarbledFiles) {
  EXPECT_EQ(LocalCa::Load(ca_dir_, clock_).status().code(), absl::StatusCode::kNotFound);
  ASSERT_NE(InitCa(), nullptr);
  ASSERT_TRUE(WriteFileAtomic(CertFile(), "not pem", 0644).ok());
  EXPECT_EQ(LocalCa::Load(ca_dir_, clock_).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- Leaves ----

TEST_F(InterceptionCaTest, LeafForADnsNameVerifiesOnlyForThatName) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  auto leaf = ca->MintLeaf("api.example.com");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(leaf->name, "api.example.com");
  EXPECT_EQ(Verify(leaf->cert.get(), ca->cert(), "api.example.com", false), "ok");
  EXPECT_EQ(Verify(leaf->cert.get(), ca->cert(), "API.Example.COM", false), "ok");
  EXPECT_EQ(Verify(leaf->cert.get(), ca->cert(), "evil.example.com", false), "hostname mismatch");
  EXPECT_EQ(Verify(leaf->cert.get(), ca->cert(), "example.com", false), "hostname mismatch");
  EXPECT_EQ(Verify(leaf->cert.get(), ca->cert(), "1.2.3.4", true), "IP address mismatch");
  // Another CA does not vouch for it.
  auto other = LocalCa::Init(dir_ + "/other", clock_);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(Verify(leaf->cert.get(), (*other)->cert(), "api.example.com", false), "ok");
}

TEST_F(InterceptionCaTest, LeafForAnIpAddressVerifiesOnlyForThatAddress) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  auto v4 = ca->MintLeaf("10.1.2.3");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(Verify(v4->cert.get(), ca->cert(), "10.1.2.3", true), "ok");
  EXPECT_EQ(Verify(v4->cert.get(), ca->cert(), "10.1.2.4", true), "IP address mismatch");
  EXPECT_EQ(OnlySan(v4->cert.get()), (San{GEN_IPADD, std::string("\x0a\x01\x02\x03", 4)}));
  auto v6 = ca->MintLeaf("2001:DB8::0:1");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->name, "2001:db8::1");
  EXPECT_EQ(Verify(v6->cert.get(), ca->cert(), "2001:db8::1", true), "ok");
  EXPECT_EQ(Verify(v6->cert.get(), ca->cert(), "2001:db8::2", true), "IP address mismatch");
}

TEST_F(InterceptionCaTest, LeafVerifiesWithTheOpensslCli) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  struct Case {
    const char* name;
    bool is_ip;
  };
  for (const Case& c : {Case{"api.internal", false}, Case{"127.0.0.9", true}, Case{"::1", true}}) {
    auto leaf = ca->MintLeaf(c.name);
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    const std::string leaf_file = dir_ + "/leaf.pem";
    ASSERT_TRUE(WriteFileAtomic(leaf_file, Pem(leaf->cert.get()), 0644).ok());
    CliResult ok = OpensslVerify(ca->cert_file(), leaf_file, c.name, c.is_ip);
    EXPECT_EQ(ok.exit_code, 0) << c.name << ": " << ok.output;
    EXPECT_THAT(ok.output, HasSubstr(": OK")) << c.name;
    CliResult wrong = OpensslVerify(ca->cert_file(), leaf_file,
                                    c.is_ip ? "127.0.0.10" : "other.internal", c.is_ip);
    EXPECT_NE(wrong.exit_code, 0) << c.name << ": " << wrong.output;
  }
}

TEST_F(InterceptionCaTest, LeafHasTheRequiredShape) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  auto leaf = ca->MintLeaf("Shop.Example.");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  X509* cert = leaf->cert.get();
  EXPECT_EQ(leaf->name, "shop.example");
  EXPECT_EQ(CommonName(cert), "shop.example");
  EXPECT_EQ(OnlySan(cert), (San{GEN_DNS, "shop.example"}));
  EXPECT_EQ(X509_check_ca(cert), 0);
  // basicConstraints present, critical, CA:FALSE (X509_check_ca alone would also pass a
  // CA:TRUE leaf whose keyUsage lacks keyCertSign).
  EXPECT_EQ(X509_get_extension_flags(cert) & (EXFLAG_BCONS | EXFLAG_CA),
            static_cast<uint32_t>(EXFLAG_BCONS));
  for (int nid : {NID_basic_constraints, NID_key_usage}) {
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    ASSERT_GE(idx, 0) << OBJ_nid2sn(nid);
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert, idx)), 1) << OBJ_nid2sn(nid);
  }
  EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert), static_cast<uint32_t>(XKU_SSL_SERVER));
  ASSERT_NE(X509_get0_authority_key_id(cert), nullptr);
  EXPECT_EQ(
      ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert), X509_get0_subject_key_id(ca->cert())),
      0);
  EXPECT_EQ(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
  absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(TimeOf(X509_get0_notBefore(cert)), now - absl::Hours(1));
  EXPECT_EQ(TimeOf(X509_get0_notAfter(cert)), now + absl::Hours(24 * 7));
  EXPECT_EQ(leaf->not_after, now + absl::Hours(24 * 7));
  EXPECT_EQ(X509_check_private_key(cert, leaf->key.get()), 1);
}

TEST_F(InterceptionCaTest, LeafForANameTooLongForACnHasOnlyACriticalSan) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  const std::string name = std::string(60, 'a') + ".example.com";  // 72 > 64
  auto leaf = ca->MintLeaf(name);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(leaf->cert.get())), 0);
  EXPECT_EQ(OnlySan(leaf->cert.get()), (San{GEN_DNS, name}));
  int idx = X509_get_ext_by_NID(leaf->cert.get(), NID_subject_alt_name, -1);
  ASSERT_GE(idx, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(leaf->cert.get(), idx)), 1);
  EXPECT_EQ(Verify(leaf->cert.get(), ca->cert(), name, false), "ok");
  // With a CN, the SAN is not critical.
  auto short_leaf = ca->MintLeaf("short.example");
  ASSERT_TRUE(short_leaf.ok());
  idx = X509_get_ext_by_NID(short_leaf->cert.get(), NID_subject_alt_name, -1);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(short_leaf->cert.get(), idx)), 0);
}

TEST_F(InterceptionCaTest, LeavesShareOneKeyButNotSerials) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  auto a = ca->MintLeaf("a.test");
  auto b = ca->MintLeaf("a.test");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(EVP_PKEY_eq(a->key.get(), b->key.get()), 1);
  EXPECT_NE(EVP_PKEY_eq(a->key.get(), X509_get0_pubkey(ca->cert())), 1);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a->cert.get()),
                             X509_get0_serialNumber(b->cert.get())),
            0);
}

TEST_F(InterceptionCaTest, LeafNeverOutlivesTheCa) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  clock_.Advance(ca->not_after() - clock_.Now() - absl::Hours(48));
  auto leaf = ca->MintLeaf("late.test");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(leaf->not_after, ca->not_after());
  EXPECT_EQ(TimeOf(X509_get0_notAfter(leaf->cert.get())), ca->not_after());
  clock_.Advance(absl::Hours(48));
  EXPECT_EQ(ca->MintLeaf("late.test").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(InterceptionCaTest, MintLeafRefusesInvalidNames) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  for (absl::string_view name : {"*.example.com", "a..b", "-a.com", "999.1.1.1", ""}) {
    EXPECT_EQ(ca->MintLeaf(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(ca->MintLeaf(absl::string_view("exa\0mple", 8)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- The trust bundle ----

TEST_F(InterceptionCaTest, TrustBundleIsTheSystemCasThenOurs) {
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  auto one = interlock::testing::TestCa::Create(dir_, "sys1");
  auto two = interlock::testing::TestCa::Create(dir_, "sys2");
  ASSERT_TRUE(one.ok() && two.ok());
  // A system bundle whose last line has no newline.
  std::string system =
      *ReadFile((*one)->cert_file()) + "# comment between\n" + *ReadFile((*two)->cert_file());
  while (!system.empty() && system.back() == '\n') system.pop_back();
  const std::string system_file = dir_ + "/system.pem";
  ASSERT_TRUE(WriteFileAtomic(system_file, system, 0644).ok());

  const std::string out = dir_ + "/bundle.pem";
  ASSERT_TRUE(WriteTrustBundle(ca->cert_file(), out, system_file).ok());
  EXPECT_EQ(ModeOf(out), 0644u);
  auto bundle = ReadFile(out);
  ASSERT_TRUE(bundle.ok());
  EXPECT_TRUE(absl::StartsWith(*bundle, system));
  EXPECT_TRUE(absl::EndsWith(*bundle, Pem(ca->cert())));
  EXPECT_EQ(CountCertificates(*bundle), 3u);
}

TEST_F(InterceptionCaTest, TrustBundleFromTheRealSystemBundle) {
  if (::access(kSystemTrustBundle, R_OK) != 0) GTEST_SKIP() << "no " << kSystemTrustBundle;
  auto ca = InitCa();
  ASSERT_NE(ca, nullptr);
  const std::string out = dir_ + "/bundle.pem";
  ASSERT_TRUE(WriteTrustBundle(ca->cert_file(), out).ok());
  size_t system_certs = CountCertificates(*ReadFile(kSystemTrustBundle));
  ASSERT_GT(system_certs, 0u);
  EXPECT_EQ(CountCertificates(*ReadFile(out)), system_certs + 1);
  // A leaf of ours verifies against the bundle with the CLI, as curl would.
  auto leaf = ca->MintLeaf("bundle.test");
  ASSERT_TRUE(leaf.ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/leaf.pem", Pem(leaf->cert.get()), 0644).ok());
  EXPECT_EQ(OpensslVerify(out, dir_ + "/leaf.pem", "bundle.test", false).exit_code, 0);
}

TEST_F(InterceptionCaTest, TrustBundleRefusesACaFileWithoutACertificate) {
  const std::string bogus = dir_ + "/bogus.crt";
  ASSERT_TRUE(WriteFileAtomic(bogus, "nothing here\n", 0644).ok());
  const std::string system_file = dir_ + "/system.pem";
  ASSERT_TRUE(WriteFileAtomic(system_file, "", 0644).ok());
  const std::string out = dir_ + "/bundle.pem";
  EXPECT_EQ(WriteTrustBundle(bogus, out, system_file).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteTrustBundle(dir_ + "/missing.crt", out, system_file).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(::access(out.c_str(), F_OK), -1);
}

}  // namespace
}  // namespace interlock::net
