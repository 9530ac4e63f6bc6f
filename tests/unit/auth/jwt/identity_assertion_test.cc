#include "userspace/auth/jwt/identity_assertion.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/auth/jwt/assertion_key.h"
#include "userspace/auth/jwt/jwt.h"
#include "userspace/common/file_util.h"

namespace interlock::auth::jwt {
namespace {

using ::testing::HasSubstr;

EvpPkeyPtr NewKey(const char* curve = "P-256") { return EvpPkeyPtr(EVP_EC_gen(curve)); }

// OpenSSL's own verification of a JOSE ES256 signature: R || S turned back into
// DER.
bool OpensslVerifiesEs256(EVP_PKEY* key, absl::string_view input, absl::string_view raw) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG_set0(sig, BN_bin2bn(p, 32, nullptr), BN_bin2bn(p + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

AssertionClaims Sample() {
  AssertionClaims c;
  c.aud = "crm-api";
  c.iat = 1700000000;
  c.exp = 1700000060;
  c.jti = "0123abcd";
  c.sid = "s-42";
  c.workload = "billing-agent";
  c.cgroup_path = "/interlock/workloads/billing-agent.1";
  c.uid = 65534;
  c.pid = 4242;
  c.exe = "/usr/bin/curl";
  return c;
}

TEST(AssertionClaimsJson, WorkloadOnlyHasNoTokenMembers) {
  EXPECT_EQ(AssertionClaimsJson(Sample()),
            "{\"iss\":\"interlockd\",\"aud\":\"crm-api\",\"iat\":1700000000,"
            "\"exp\":1700000060,\"jti\":\"0123abcd\","
            "\"sid\":\"s-42\",\"workload\":\"billing-agent\",\"cgroup_path\":"
            "\"/interlock/workloads/billing-agent.1\","
            "\"uid\":65534,\"pid\":4242,\"exe\":\"/usr/bin/curl\"}");
}

TEST(AssertionClaimsJson, TokenMembersAndEscaping) {
  AssertionClaims c = Sample();
  c.has_token = true;
  c.sub = "agent \"7\"\n";
  c.token_iss = "https://idp.test";
  c.groups = {"ops", "a\\b"};
  c.exe = "/tmp/odd\x01name";
  const std::string json = AssertionClaimsJson(c);
  EXPECT_THAT(json, HasSubstr("\"sub\":\"agent \\\"7\\\"\\n\",\"token_iss\":\"https://idp.test\","
                              "\"groups\":[\"ops\",\"a\\\\b\"]}"));
  EXPECT_THAT(json, HasSubstr("\"exe\":\"/tmp/odd\\u0001name\""));
  // It is one JSON object a JSON parser takes as such.
  auto parsed = ParseJsonObject(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->fields().at("sub").string_value(), "agent \"7\"\n");
  EXPECT_EQ(parsed->fields().at("groups").list_value().values_size(), 2);
  EXPECT_EQ(parsed->fields().at("uid").number_value(), 65534);
}

TEST(SignEs256Jws, ThreeBase64UrlPartsAndASignatureOpensslVerifies) {
  EvpPkeyPtr key = NewKey();
  ASSERT_NE(key, nullptr);
  AssertionClaims c = Sample();
  c.has_token = true;
  c.sub = "agent-7";
  c.token_iss = "https://idp.test";
  c.groups = {"analysts"};
  const std::string claims = AssertionClaimsJson(c);
  auto jws = SignEs256Jws(key.get(), "kid-1", claims);
  ASSERT_TRUE(jws.ok()) << jws.status();
  std::vector<std::string> parts = absl::StrSplit(*jws, '.');
  ASSERT_EQ(parts.size(), 3u);
  for (const std::string& part : parts) {
    EXPECT_EQ(part.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos)
        << part;  // base64url, no padding
  }
  auto header = Base64UrlDecode(parts[0]);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(*header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"kid-1\"}");
  auto payload = Base64UrlDecode(parts[1]);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(*payload, claims);
  auto sig = Base64UrlDecode(parts[2]);
  ASSERT_TRUE(sig.ok());
  ASSERT_EQ(sig->size(), 64u);  // R || S, not DER
  const std::string input = absl::StrCat(parts[0], ".", parts[1]);
  EXPECT_TRUE(OpensslVerifiesEs256(key.get(), input, *sig));
  // And the project's own JWS decoder and verifier accept it.
  auto decoded = DecodeJws(*jws);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->kid, "kid-1");
  EXPECT_EQ(decoded->payload.fields().at("workload").string_value(), "billing-agent");
  EXPECT_TRUE(VerifySignature(Alg::kES256, key.get(), decoded->signing_input, decoded->signature).ok());
  // A changed claim does not verify; nor does another key.
  c.workload = "admin";
  const std::string forged = absl::StrCat(parts[0], ".", Base64UrlEncode(AssertionClaimsJson(c)));
  EXPECT_FALSE(OpensslVerifiesEs256(key.get(), forged, *sig));
  EvpPkeyPtr other = NewKey();
  EXPECT_FALSE(OpensslVerifiesEs256(other.get(), input, *sig));
}

TEST(SignEs256Jws, RefusesKeysThatAreNotP256) {
  EvpPkeyPtr p384 = NewKey("P-384");
  ASSERT_NE(p384, nullptr);
  auto jws = SignEs256Jws(p384.get(), "k", "{}");
  EXPECT_TRUE(absl::IsInvalidArgument(jws.status())) << jws.status();
  EvpPkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  EXPECT_TRUE(absl::IsInvalidArgument(SignEs256Jws(ed.get(), "k", "{}").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Es256PublicJwk(ed.get()).status()));
}

// RFC 7638 §3.1's procedure applied to an EC key: the canonical JWK has exactly
// crv, kty, x, y in that order, no whitespace; the thumbprint is its SHA-256 in
// base64url.
TEST(Es256JwkThumbprint, CanonicalMembersAndDigest) {
  EvpPkeyPtr key = NewKey();
  auto jwk = Es256PublicJwk(key.get());
  ASSERT_TRUE(jwk.ok());
  EXPECT_THAT(*jwk, ::testing::MatchesRegex("\\{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"[A-Za-z0-"
                                            "9_-]{43}\",\"y\":\"[A-Za-z0-9_-]{43}\"\\}"));
  auto kid = Es256JwkThumbprint(key.get());
  ASSERT_TRUE(kid.ok());
  EXPECT_EQ(kid->size(), 43u);
  unsigned char md[32];
  unsigned int n = 0;
  ASSERT_EQ(EVP_Digest(jwk->data(), jwk->size(), md, &n, EVP_sha256(), nullptr), 1);
  EXPECT_EQ(*kid, Base64UrlEncode(absl::string_view(reinterpret_cast<char*>(md), n)));
  EXPECT_NE(*kid, *Es256JwkThumbprint(NewKey().get()));
}

class AssertionKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/assertion-key-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::unlink(absl::StrCat(dir_, "/", kAssertionKeyFile).c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_;
};

TEST_F(AssertionKeyTest, InitWrites0600AndLoadGivesTheSameKey) {
  EXPECT_TRUE(absl::IsNotFound(AssertionKey::Load(dir_).status()));
  auto made = AssertionKey::Init(dir_);
  ASSERT_TRUE(made.ok()) << made.status();
  struct stat st;
  ASSERT_EQ(::stat((*made)->file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = AssertionKey::Load(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->kid(), (*made)->kid());
  EXPECT_EQ((*loaded)->public_pem(), (*made)->public_pem());
  EXPECT_THAT((*loaded)->public_pem(), HasSubstr("-----BEGIN PUBLIC KEY-----"));
  EXPECT_THAT((*loaded)->public_jwk(), HasSubstr(absl::StrCat("\"kid\":\"", (*loaded)->kid(), "\",\"alg\":\"ES256\"")));
  // What one signs, the other's public key verifies.
  auto jws = (*loaded)->Sign(Sample());
  ASSERT_TRUE(jws.ok());
  auto decoded = DecodeJws(*jws);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->kid, (*made)->kid());
  EXPECT_TRUE(VerifySignature(Alg::kES256, (*made)->pkey(), decoded->signing_input, decoded->signature).ok());
  // Never replaced by accident.
  EXPECT_TRUE(absl::IsAlreadyExists(AssertionKey::Init(dir_).status()));
  auto replaced = AssertionKey::Init(dir_, /*replace=*/true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_NE((*replaced)->kid(), (*made)->kid());
}

TEST_F(AssertionKeyTest, LoadRefusesAReadableKeyAndGarbage) {
  ASSERT_TRUE(AssertionKey::Init(dir_).ok());
  const std::string file = absl::StrCat(dir_, "/", kAssertionKeyFile);
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  auto loose = AssertionKey::Load(dir_);
  EXPECT_TRUE(absl::IsPermissionDenied(loose.status())) << loose.status();
  ASSERT_TRUE(WriteFileAtomic(file, "not a key\n", 0600).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(AssertionKey::Load(dir_).status()));
  // A valid PEM key of the wrong kind.
  EvpPkeyPtr p384 = NewKey("P-384");
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio, p384.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  ASSERT_TRUE(WriteFileAtomic(file, std::string(data, n), 0600).ok());
  BIO_free(bio);
  auto wrong = AssertionKey::Load(dir_);
  EXPECT_TRUE(absl::IsInvalidArgument(wrong.status())) << wrong.status();
  EXPECT_THAT(wrong.status().message(), HasSubstr("P-256"));
}

}  // namespace
}  // namespace interlock::auth::jwt
